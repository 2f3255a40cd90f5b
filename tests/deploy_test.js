// The Kubernetes manifests of deploy/ are valid and agree with each other and with shoald:
//  - every object validates against the Kubernetes OpenAPI schemas (npm kubernetes-models with
//    @kubernetes-models/validate; they check types, required fields and enums, not unknown fields);
//  - kustomization.yaml lists every manifest of deploy/ and nothing missing;
//  - selectors match the pod labels of their workload (DaemonSet, StatefulSet, Job), Services
//    and PodDisruptionBudgets select pods that exist, a StatefulSet's serviceName is a headless
//    Service selecting its pods;
//  - every ConfigMap and Secret (and key) a volume or an env names exists;
//  - ports: probes and Service targetPorts name container ports; the DaemonSet's ports are the
//    config file's listen and metrics ports, the prometheus.io/port annotation the metrics port;
//  - paths: --config, token-file, data-dir and the socket sit on the right volumes; the preStop
//    drain uses the config's socket and ends within terminationGracePeriodSeconds; job examples
//    mount the DaemonSet's socket directory; the etcd URLs name members of the etcd StatefulSet;
//  - shoald accepts the config file with the DaemonSet's flags (shoald --check-config).
// Then it breaks each kind of reference on purpose (a selector, a key, a port, the config) and
// checks that every break is caught, so the checks cannot pass vacuously.
// Usage: node tests/deploy_test.js SHOALD_BINARY   (NODE_PATH: testenv/node_modules)
"use strict";
const fs = require("fs");
const os = require("os");
const path = require("path");
const { execFileSync } = require("child_process");
const YAML = require("yaml");

const deployDir = path.join(__dirname, "..", "deploy");
const shoald = process.argv[2];
if (!shoald || !fs.existsSync(shoald)) {
  console.error("usage: node tests/deploy_test.js SHOALD_BINARY (build it first: make build)");
  process.exit(2);
}

// Every manifest: {file, doc} for each YAML document of deploy/*.yaml and deploy/examples/*.yaml.
function loadManifests() {
  const out = [];
  for (const dir of [deployDir, path.join(deployDir, "examples")]) {
    for (const f of fs.readdirSync(dir).filter((n) => n.endsWith(".yaml")).sort()) {
      const file = path.relative(deployDir, path.join(dir, f));
      for (const d of YAML.parseAllDocuments(fs.readFileSync(path.join(dir, f), "utf8"))) {
        if (d.errors.length) throw new Error(`${file}: ${d.errors[0].message}`);
        const doc = d.toJS();
        if (doc) out.push({ file, doc });
      }
    }
  }
  return out;
}

// The kubernetes-models class of an object: kubernetes-models/<group>/<version>/<Kind>.
function modelOf(doc) {
  const [group, version] = doc.apiVersion.includes("/") ? doc.apiVersion.split("/") : [null, doc.apiVersion];
  const mod = require(group ? `kubernetes-models/${group}/${version}/${doc.kind}` : `kubernetes-models/${version}/${doc.kind}`);
  return mod[doc.kind];
}

const workloadKinds = new Set(["DaemonSet", "StatefulSet", "Deployment", "Job"]);
const matches = (selector, labels) =>
  Object.entries(selector || {}).every(([k, v]) => labels && labels[k] === v) && Object.keys(selector || {}).length > 0;
const podSpecOf = (doc) => doc.spec.template.spec;
const containersOf = (spec) => [...(spec.initContainers || []), ...(spec.containers || [])];
const flagValue = (args, name) => {
  for (const a of args || []) if (a.startsWith(`--${name}=`)) return a.slice(name.length + 3);
  return undefined;
};
const portOf = (hostPort) => Number(hostPort.slice(hostPort.lastIndexOf(":") + 1));
// The path of `file` as a container sees it through its mounts: {mount, volume} or null.
const mountFor = (container, file) =>
  (container.volumeMounts || []).find((m) => file === m.mountPath || file.startsWith(m.mountPath + "/")) || null;
// shoald.conf's `name = value` lines.
function parseConfig(text) {
  const out = {};
  for (const line of text.split("\n")) {
    const t = line.trim();
    if (!t || t.startsWith("#") || t.startsWith(";")) continue;
    const eq = t.indexOf("=");
    out[t.slice(0, eq).trim()] = t.slice(eq + 1).trim().replace(/^"(.*)"$/, "$1");
  }
  return out;
}

// Every problem found in `manifests` (an empty list: all good). `runShoald` false skips the
// shoald run (the mutations below change nothing it would see, except the one that asks).
function check(manifests, { runShoald = true } = {}) {
  const errors = [];
  const err = (file, what) => errors.push(`${file}: ${what}`);
  const objects = manifests.filter((m) => m.doc.kind !== "Kustomization");
  const byKind = (kind) => objects.filter((m) => m.doc.kind === kind);
  const named = (kind, name) => byKind(kind).find((m) => m.doc.metadata.name === name);

  // kustomization.yaml: every top-level manifest listed, every listed file present.
  const kust = manifests.find((m) => m.doc.kind === "Kustomization");
  if (!kust) err("kustomization.yaml", "missing");
  const files = new Set(manifests.filter((m) => !m.file.includes("/")).map((m) => m.file));
  files.delete("kustomization.yaml");
  for (const r of (kust && kust.doc.resources) || []) if (!files.has(r)) err("kustomization.yaml", `lists ${r}, which is not in deploy/`);
  for (const f of files) if (kust && !kust.doc.resources.includes(f)) err("kustomization.yaml", `does not list ${f}`);

  // The schemas.
  for (const { file, doc } of objects) {
    try {
      new (modelOf(doc))(doc).validate();
    } catch (e) {
      err(file, `${doc.kind} ${doc.metadata && doc.metadata.name}: ${e.message}`);
    }
  }

  // Workloads: selectors and template labels; ConfigMap/Secret references; probe ports.
  const workloads = objects.filter((m) => workloadKinds.has(m.doc.kind));
  const podLabels = workloads.map((m) => m.doc.spec.template.metadata.labels);
  for (const { file, doc } of workloads) {
    const spec = podSpecOf(doc);
    const labels = doc.spec.template.metadata.labels;
    if (doc.kind !== "Job" && !matches(doc.spec.selector.matchLabels, labels)) {
      err(file, `${doc.kind} ${doc.metadata.name}: selector ${JSON.stringify(doc.spec.selector.matchLabels)} does not match its pods' labels`);
    }
    const keyExists = (kind, name, key, where) => {
      const obj = named(kind, name);
      if (!obj) return err(file, `${where}: no ${kind} ${name}`);
      const keys = new Set([...Object.keys(obj.doc.data || {}), ...Object.keys(obj.doc.stringData || {})]);
      if (key !== undefined && !keys.has(key)) err(file, `${where}: ${kind} ${name} has no key ${key}`);
    };
    for (const v of spec.volumes || []) {
      if (v.configMap) for (const it of v.configMap.items || [{}]) keyExists("ConfigMap", v.configMap.name, it.key, `volume ${v.name}`);
      if (v.secret) for (const it of v.secret.items || [{}]) keyExists("Secret", v.secret.secretName, it.key, `volume ${v.name}`);
    }
    for (const c of containersOf(spec)) {
      for (const e of c.env || []) {
        const ref = e.valueFrom && (e.valueFrom.secretKeyRef || e.valueFrom.configMapKeyRef);
        if (ref && !ref.optional) keyExists(e.valueFrom.secretKeyRef ? "Secret" : "ConfigMap", ref.name, ref.key, `env ${e.name}`);
      }
      const claims = (doc.spec.volumeClaimTemplates || []).map((t) => ({ name: t.metadata.name }));
      for (const m of c.volumeMounts || []) {
        if (![...(spec.volumes || []), ...claims].some((v) => v.name === m.name)) err(file, `container ${c.name} mounts volume ${m.name}, which the pod does not have`);
      }
      const portNames = new Set((c.ports || []).map((p) => p.name));
      const portNumbers = new Set((c.ports || []).map((p) => p.containerPort));
      for (const probe of ["startupProbe", "livenessProbe", "readinessProbe"]) {
        const p = c[probe] && (c[probe].httpGet || c[probe].tcpSocket);
        if (p && !(portNames.has(p.port) || portNumbers.has(p.port))) err(file, `container ${c.name}: ${probe} port ${p.port} is not one of its ports`);
      }
    }
  }

  // Services and PDBs select pods that exist; targetPorts are ports of those pods.
  for (const { file, doc } of byKind("Service")) {
    const selected = workloads.filter((w) => matches(doc.spec.selector, w.doc.spec.template.metadata.labels));
    if (!selected.length) { err(file, `Service ${doc.metadata.name} selects no pods`); continue; }
    for (const p of doc.spec.ports) {
      const target = p.targetPort === undefined ? p.port : p.targetPort;
      const has = selected.some((w) => containersOf(podSpecOf(w.doc)).some((c) => (c.ports || []).some((cp) => cp.name === target || cp.containerPort === target)));
      if (!has) err(file, `Service ${doc.metadata.name}: targetPort ${target} is no container port of its pods`);
    }
    const promPort = (doc.metadata.annotations || {})["prometheus.io/port"];
    if (promPort !== undefined && !doc.spec.ports.some((p) => String(p.port) === promPort)) {
      err(file, `Service ${doc.metadata.name}: prometheus.io/port ${promPort} is none of its ports`);
    }
  }
  for (const { file, doc } of byKind("PodDisruptionBudget")) {
    if (!podLabels.some((l) => matches(doc.spec.selector.matchLabels, l))) err(file, `PodDisruptionBudget ${doc.metadata.name} selects no pods`);
  }
  for (const { file, doc } of byKind("StatefulSet")) {
    const svc = named("Service", doc.spec.serviceName);
    if (!svc) err(file, `StatefulSet ${doc.metadata.name}: no Service ${doc.spec.serviceName}`);
    else if (svc.doc.spec.clusterIP !== "None" || !matches(svc.doc.spec.selector, doc.spec.template.metadata.labels)) {
      err(file, `StatefulSet ${doc.metadata.name}: Service ${doc.spec.serviceName} is not headless over its pods`);
    }
  }

  // The node: the DaemonSet running shoald, against its config file.
  const ds = byKind("DaemonSet").find((m) => containersOf(podSpecOf(m.doc)).some((c) => c.name === "shoald"));
  if (!ds) { err("daemonset.yaml", "no DaemonSet with a shoald container"); return errors; }
  const f = ds.file;
  const spec = podSpecOf(ds.doc);
  const c = spec.containers.find((x) => x.name === "shoald");
  const configPath = flagValue(c.args, "config");
  const configMount = configPath && mountFor(c, configPath);
  const configVolume = configMount && spec.volumes.find((v) => v.name === configMount.name);
  if (!configVolume || !configVolume.configMap) { err(f, `--config ${configPath} is not on a ConfigMap volume`); return errors; }
  const cmKey = configMount.subPath
    ? (configVolume.configMap.items || []).find((it) => it.path === configMount.subPath)?.key || configMount.subPath
    : path.relative(configMount.mountPath, configPath);
  const cm = named("ConfigMap", configVolume.configMap.name);
  const text = cm && cm.doc.data && cm.doc.data[cmKey];
  if (text === undefined) { err(f, `--config ${configPath}: ConfigMap ${configVolume.configMap.name} has no key ${cmKey}`); return errors; }
  const conf = parseConfig(text);
  const setting = (name) => flagValue(c.args, name) ?? conf[name];
  const port = (name) => (c.ports || []).find((p) => p.name === name);
  if (!port("shoal") || portOf(setting("listen")) !== port("shoal").containerPort) err(f, `listen ${setting("listen")} is not the container port "shoal"`);
  if (!port("metrics") || portOf(setting("metrics")) !== port("metrics").containerPort) err(f, `metrics ${setting("metrics")} is not the container port "metrics"`);
  const advertise = flagValue(c.args, "advertise");
  if (!advertise || portOf(advertise) !== portOf(setting("listen"))) err(f, `--advertise ${advertise} is not on the listen port`);
  const onVolume = (file, kind) => {
    const m = mountFor(c, file);
    const v = m && spec.volumes.find((x) => x.name === m.name);
    if (!v || !v[kind]) return err(f, `${file} is not on a ${kind} volume of container shoald`), null;
    return { m, v };
  };
  const dataDir = onVolume(setting("data-dir"), "hostPath");
  const socket = setting("socket");
  const sock = socket && onVolume(socket, "hostPath");
  const token = setting("token-file") && onVolume(setting("token-file"), "secret");
  if (token) {
    const rel = path.relative(token.m.mountPath, setting("token-file"));
    const items = token.v.secret.items;
    if (items && !items.some((it) => it.path === rel)) err(f, `token-file ${setting("token-file")}: the Secret volume has no item at ${rel}`);
  }
  for (const e of c.env || []) {
    if (e.name === "SHOAL_TOKEN_FILE" && e.value !== setting("token-file")) err(f, `SHOAL_TOKEN_FILE ${e.value} is not token-file ${setting("token-file")}`);
  }
  if (dataDir && sock && dataDir.v.hostPath.path === sock.v.hostPath.path) err(f, "the data dir and the socket share a hostPath");
  // The preStop drain: this node's socket, within the grace period.
  const pre = c.lifecycle && c.lifecycle.preStop && c.lifecycle.preStop.exec && c.lifecycle.preStop.exec.command;
  if (!pre || pre[0] !== "/usr/bin/shoal" || pre[1] !== "drain") err(f, "no preStop `shoal drain`");
  else {
    if (!pre.includes(`unix:${socket}`)) err(f, `preStop drains ${pre[pre.length - 1]}, not this node's socket unix:${socket}`);
    const t = Number(pre[pre.indexOf("--timeout") + 1]);
    if (!(pre.includes("--timeout") && t > 0 && t < spec.terminationGracePeriodSeconds)) {
      err(f, `preStop drain --timeout ${t} is not within terminationGracePeriodSeconds ${spec.terminationGracePeriodSeconds}`);
    }
  }
  for (const [probe, want] of [["readinessProbe", "/readyz"], ["livenessProbe", "/healthz"]]) {
    if (!c[probe] || !c[probe].httpGet || c[probe].httpGet.path !== want) err(f, `${probe} is not GET ${want}`);
  }
  // The etcd URLs: members of the StatefulSet, on its Service's client port.
  for (const url of (setting("etcd") || "").split(",").filter(Boolean)) {
    const u = new URL(url);
    const [pod, svc] = u.hostname.split(".");
    const sts = byKind("StatefulSet").find((s) => s.doc.spec.serviceName === svc);
    if (!sts) continue;  // an etcd outside these manifests
    const n = Number(pod.slice(sts.doc.metadata.name.length + 1));
    if (!pod.startsWith(sts.doc.metadata.name + "-") || !(n >= 0 && n < sts.doc.spec.replicas)) err("config.yaml", `etcd ${url}: no member ${pod} in StatefulSet ${sts.doc.metadata.name}`);
    const service = named("Service", svc);
    if (service && !service.doc.spec.ports.some((p) => p.port === Number(u.port))) err("config.yaml", `etcd ${url}: Service ${svc} has no port ${u.port}`);
  }
  // Job examples reach the node through the DaemonSet's socket directory.
  for (const { file, doc } of byKind("Job")) {
    for (const jc of containersOf(podSpecOf(doc))) {
      const cacheArg = (jc.args || [])[(jc.args || []).indexOf("--cache") + 1];
      if (!(jc.args || []).includes("--cache") || !cacheArg.startsWith("unix:")) continue;
      const m = mountFor(jc, cacheArg.slice(5));
      const v = m && podSpecOf(doc).volumes.find((x) => x.name === m.name);
      if (cacheArg !== `unix:${socket}` || !v || !v.hostPath || !sock || v.hostPath.path !== sock.v.hostPath.path) {
        err(file, `container ${jc.name}: --cache ${cacheArg} is not the node's socket on its hostPath`);
      }
    }
  }
  // shoald itself: the config file and the DaemonSet's flags, $(VAR)s as a node would have them.
  if (runShoald) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "shoal-deploy-test-"));
    try {
      const file = path.join(dir, "shoald.conf");
      fs.writeFileSync(file, text);
      const vars = { NODE_NAME: "aks-gpupool-12345678-vmss000000", HOST_IP: "10.224.0.4" };
      const args = c.args.map((a) => (a.startsWith("--config=") ? `--config=${file}` : a.replace(/\$\((\w+)\)/g, (_, v) => vars[v])));
      execFileSync(shoald, [...args, "--check-config"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    } catch (e) {
      err(cm.file, `shoald --check-config refused the config: ${(e.stderr || e.message).trim()}`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
  return errors;
}

// --- run --------------------------------------------------------------------------------------
const manifests = loadManifests();
const kinds = manifests.map((m) => `${m.doc.kind}/${m.doc.metadata ? m.doc.metadata.name : ""}`);
console.log(`deploy_test: ${manifests.length} objects: ${kinds.join(", ")}`);
let failed = false;
const errors = check(manifests);
if (errors.length) {
  failed = true;
  console.error("deploy_test: FAILED:\n  " + errors.join("\n  "));
} else {
  console.log("ok: every manifest valid, every reference resolved, shoald accepts the config");
}

// Each break must be caught: a deep copy of the manifests, one change, at least one new error.
const find = (ms, kind, name) => ms.find((m) => m.doc.kind === kind && m.doc.metadata.name === name).doc;
const nodeContainer = (ms) => find(ms, "DaemonSet", "shoal-node").spec.template.spec.containers[0];
const setConf = (ms, key, value) => {
  const cm = find(ms, "ConfigMap", "shoal-config");
  cm.data["shoald.conf"] = cm.data["shoald.conf"].replace(new RegExp(`^${key} = .*$`, "m"), `${key} = ${value}`);
};
const breaks = [
  ["the DaemonSet's selector", (ms) => { find(ms, "DaemonSet", "shoal-node").spec.selector.matchLabels["app.kubernetes.io/component"] = "nodes"; }],
  ["the DaemonSet's pod labels", (ms) => { delete find(ms, "DaemonSet", "shoal-node").spec.template.metadata.labels["app.kubernetes.io/component"]; }],
  ["the metrics Service's selector", (ms) => { find(ms, "Service", "shoal-metrics").spec.selector["app.kubernetes.io/name"] = "shoald"; }],
  ["the metrics Service's targetPort", (ms) => { find(ms, "Service", "shoal-metrics").spec.ports[0].targetPort = "metric"; }],
  ["the PDB's selector", (ms) => { find(ms, "PodDisruptionBudget", "shoal-node").spec.selector.matchLabels["app.kubernetes.io/name"] = "shoal-nodes"; }],
  ["the etcd StatefulSet's serviceName", (ms) => { find(ms, "StatefulSet", "shoal-etcd").spec.serviceName = "etcd"; }],
  ["a Secret key (token)", (ms) => { const s = find(ms, "Secret", "shoal-secrets"); s.stringData.tokens = s.stringData.token; delete s.stringData.token; }],
  ["a Secret key used by env", (ms) => { delete find(ms, "Secret", "shoal-secrets").stringData["azure-storage-key"]; }],
  ["the ConfigMap's key", (ms) => { const cm = find(ms, "ConfigMap", "shoal-config"); cm.data["shoal.conf"] = cm.data["shoald.conf"]; delete cm.data["shoald.conf"]; }],
  ["the readiness probe's port", (ms) => { nodeContainer(ms).readinessProbe.httpGet.port = "http"; }],
  ["the config's listen port", (ms) => setConf(ms, "listen", "0.0.0.0:7071")],
  ["the config's metrics port", (ms) => setConf(ms, "metrics", "0.0.0.0:9091")],
  ["the config's socket", (ms) => setConf(ms, "socket", "/run/shoald.sock")],
  ["the config's token-file", (ms) => setConf(ms, "token-file", "/etc/shoal/token")],
  ["a config key shoald does not know", (ms) => setConf(ms, "capacity", "1500GiB\n    capasity = 1TiB")],
  ["a config value shoald refuses", (ms) => setConf(ms, "capacity", "lots")],
  ["the preStop's timeout", (ms) => { const cmd = nodeContainer(ms).lifecycle.preStop.exec.command; cmd[cmd.indexOf("--timeout") + 1] = "900"; }],
  ["the etcd member count", (ms) => { find(ms, "StatefulSet", "shoal-etcd").spec.replicas = 2; }],
  ["a schema type (a port as text)", (ms) => { nodeContainer(ms).ports[0].containerPort = "7070"; }],
  ["a required field (the Service's ports)", (ms) => { delete find(ms, "Service", "shoal-etcd").spec.ports[0].port; }],
  ["the job's socket hostPath", (ms) => { find(ms, "Job", "shoal-example-read").spec.template.spec.volumes[0].hostPath.path = "/run/shoald"; }],
  ["kustomization's resources", (ms) => { ms.find((m) => m.doc.kind === "Kustomization").doc.resources.pop(); }],
];
const asksShoald = new Set(["a config key shoald does not know", "a config value shoald refuses"]);
for (const [what, mutate] of breaks) {
  const copy = JSON.parse(JSON.stringify(manifests));
  mutate(copy);
  const found = check(copy, { runShoald: asksShoald.has(what) }).filter((e) => !errors.includes(e));
  if (found.length === 0) {
    failed = true;
    console.error(`deploy_test: FAILED: breaking ${what} went unnoticed`);
  } else {
    console.log(`ok: breaking ${what} is caught: ${found[0]}`);
  }
}
if (failed) process.exit(1);
console.log("deploy_test: PASSED");

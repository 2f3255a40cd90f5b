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
//  - paths: --config, token-file, credentials (the front door's keys), data-dir and the socket
//    sit on the right volumes; the preStop drain uses the config's socket and ends within
//    terminationGracePeriodSeconds; job examples mount the DaemonSet's socket directory, or
//    reach the front door at $(HOST_IP) on the listen port naming a bucket the config serves;
//    job examples name further nodes (--cache SOCKET,NAME.NAMESPACE.svc:PORT) by a Service over
//    the node's pods on its listen port; the etcd URLs name members of the etcd StatefulSet;
//  - job examples carry the node DaemonSet's nodeSelector and tolerate every taint it tolerates;
//  - shoald accepts the config file with the DaemonSet's flags (shoald --check-config).
// The overlays of deploy-overlays/ are rendered as `kubectl apply -k` renders them: deploy/'s
// kustomization, then the overlay's resources and generated Secrets, its JSON patches (RFC 6902 add, remove, replace
// and test; a path that does not exist is an error), namespace and images; a kustomization
// field or patch kind not rendered here is an error too. The rendered objects, with the job
// examples, pass the same checks (but the file list) and each overlay's own:
//  - workload-identity (AKS workload identity instead of the account key): the node's pods run
//    as a ServiceAccount of the set, in their namespace, annotated with
//    azure.workload.identity/client-id, and carry the label azure.workload.identity/use: "true";
//    AZURE_STORAGE_ACCOUNT stays; no env AZURE_STORAGE_KEY, no Secret key azure-storage-key;
//  - tls: --tls-cert, --tls-key and --tls-ca are files of a cert-manager CSI volume issuing each
//    pod a certificate that names the DNS name of each Service over the nodes' listen port, one of
//    which is --tls-name (what peers check, as nodes are reached at host IPs the driver cannot
//    write into a certificate: it expands no variable in ip-sans); probes on the plain metrics port;
//  - tls-secret: the same flags, names and probes, with one certificate for every node in a
//    Secret kustomize makes from certs/ (here: certificates make-certs.sh makes in a temporary
//    directory): the files are keys of a Secret in the node's namespace its user can read, and
//    openssl finds the certificate signed by the CA for server use, unexpired, naming each name,
//    with --tls-key its key;
//  - mtls (on top of tls): --tls-client-ca is the same volume's CA, the node's certificate is for
//    client use too (it presents it to peers), and its job examples (the overlay's examples/,
//    instead of deploy/'s) reach nodes over https:// with a certificate of their own for client
//    use from the nodes' issuer, the nodes' CA and name (SHOAL_TLS_CERT, _KEY, _CA, _NAME).
// Then it breaks each kind of reference on purpose (a selector, a key, a port, the config, the
// door's job, the overlays' patches, ServiceAccount, namespace and certificate) and checks that
// every break is caught, so the checks cannot pass vacuously.
// Usage: node tests/deploy_test.js SHOALD_BINARY   (NODE_PATH: testenv/node_modules)
"use strict";
const fs = require("fs");
const os = require("os");
const path = require("path");
const { execFileSync } = require("child_process");
const YAML = require("yaml");
// YAML 1.1, as kubectl and kustomize read manifests: 0440 is octal (288), not 440.
const yamlOptions = { version: "1.1" };

const repoDir = path.join(__dirname, "..");
const deployDir = path.join(repoDir, "deploy");
const overlaysDir = path.join(repoDir, "deploy-overlays");
const shoald = process.argv[2];
if (!shoald || !fs.existsSync(shoald)) {
  console.error("usage: node tests/deploy_test.js SHOALD_BINARY (build it first: make build)");
  process.exit(2);
}

// The YAML documents of a file (`label` names it in errors), empty ones left out.
function parseYaml(file, label) {
  const out = [];
  for (const d of YAML.parseAllDocuments(fs.readFileSync(file, "utf8"), yamlOptions)) {
    if (d.errors.length) throw new Error(`${label}: ${d.errors[0].message}`);
    const doc = d.toJS();
    if (doc) out.push(doc);
  }
  return out;
}

// Every manifest: {file, doc} for each YAML document of deploy/*.yaml and deploy/examples/*.yaml
// (file relative to deploy/). Only files: deploy/'s folders other than examples/ are not read.
function loadManifests() {
  const out = [];
  for (const dir of [deployDir, path.join(deployDir, "examples")]) {
    for (const f of fs.readdirSync(dir).filter((n) => n.endsWith(".yaml")).sort()) {
      const file = path.relative(deployDir, path.join(dir, f));
      for (const doc of parseYaml(path.join(dir, f), file)) out.push({ file, doc });
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
// The node: the DaemonSet that runs shoald.
const isNode = (m) => m.doc.kind === "DaemonSet" && containersOf(podSpecOf(m.doc)).some((c) => c.name === "shoald");
// The node in rendered objects: its DaemonSet {file, doc}, pod spec and shoald container.
const noNode = "deploy/daemonset.yaml: no DaemonSet with a shoald container";
function nodeParts(rendered) {
  const ds = rendered.find(isNode);
  if (!ds) return null;
  const spec = podSpecOf(ds.doc);
  return { ds, spec, c: spec.containers.find((x) => x.name === "shoald") };
}

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

// --- kustomize: what `kubectl apply -k DIR` renders, for the fields these kustomizations use --
// Anything else (another kustomization field, a strategic-merge patch, a JSON patch op other
// than add, remove, replace and test, a target selector other than group, version, kind, name
// and namespace) is an error, never passed over.
const kustomizationFields = new Set(["apiVersion", "kind", "namespace", "resources", "patches", "images", "secretGenerator"]);
const clusterScoped = new Set(["Namespace", "ClusterRole", "ClusterRoleBinding", "PersistentVolume", "StorageClass", "PriorityClass", "CustomResourceDefinition"]);
const inside = (p, dir) => {
  const r = path.relative(dir, p);
  return r === "" || !(r === ".." || r.startsWith(".." + path.sep) || path.isAbsolute(r));
};

// A kustomization as read from disk: {dir, kust, resources, files}. A directory it lists is read
// as a kustomization of its own, a file as its YAML documents ({file, docs}); `files` holds the
// text of the patch files it names. kustomize's two rules on what may be listed hold: a file in
// or below the kustomization's directory, and no directory that contains one of the
// kustomizations being read (its "cycle detected": why the overlay is not under deploy/).
// `generators` holds each secretGenerator's files as read ({name, type, options, data: key ->
// base64}, a file not there as {missing: its path}), through `read(absolutePath)` (the file's
// bytes, or undefined when there is none), which a test points elsewhere.
const readIfThere = (p) => (fs.existsSync(p) ? fs.readFileSync(p) : undefined);
function readKustomization(dir, within = [], read = readIfThere) {
  const rel = path.relative(repoDir, dir) || ".";
  const where = `${rel}/kustomization.yaml`;
  if (!fs.existsSync(path.join(dir, "kustomization.yaml"))) throw new Error(`${rel}: no kustomization.yaml`);
  const [kust] = parseYaml(path.join(dir, "kustomization.yaml"), where);
  const roots = [...within, dir];
  const resources = (kust.resources || []).map((r) => {
    const p = path.join(dir, r);
    if (!fs.existsSync(p)) throw new Error(`${where}: resource ${r} does not exist`);
    if (fs.statSync(p).isDirectory()) {
      const root = roots.find((v) => inside(v, p));
      if (root) throw new Error(`${where}: resource ${r} contains ${path.relative(repoDir, root) || "."}, which kustomize refuses (cycle)`);
      return readKustomization(p, roots, read);
    }
    if (!inside(p, dir)) throw new Error(`${where}: resource ${r} is not in or below ${rel}, which kustomize refuses`);
    return { file: path.relative(repoDir, p), docs: parseYaml(p, path.relative(repoDir, p)) };
  });
  const files = {};
  for (const { path: f } of kust.patches || []) {
    if (f === undefined) continue;
    if (!inside(path.join(dir, f), dir)) throw new Error(`${where}: patch ${f} is not in or below ${rel}, which kustomize refuses`);
    files[f] = fs.readFileSync(path.join(dir, f), "utf8");
  }
  const generators = (kust.secretGenerator || []).map((g, i) => {
    const what = `${where}: secretGenerator[${i}]`;
    for (const f of Object.keys(g)) if (!["name", "type", "files", "options"].includes(f)) throw new Error(`${what}: ${f} is not rendered by this test`);
    const data = {};
    for (const entry of g.files || []) {
      const eq = entry.indexOf("=");
      const [key, file] = eq < 0 ? [path.basename(entry), entry] : [entry.slice(0, eq), entry.slice(eq + 1)];
      if (!inside(path.join(dir, file), dir)) throw new Error(`${what}: file ${file} is not in or below ${rel}, which kustomize refuses`);
      const bytes = read(path.join(dir, file));
      data[key] = bytes === undefined ? { missing: `${rel}/${file}` } : bytes.toString("base64");
    }
    return { name: g.name, type: g.type, options: g.options, data };
  });
  return { dir: rel, kust, resources, files, generators };
}

// The objects kustomize renders from `k` ({file, doc}, file where the object was written): its
// resources (a listed kustomization rendered first), then its patches, namespace and images, in
// kustomize's order (patches see the objects before this kustomization's namespace and images).
function render(k) {
  const where = `${k.dir}/kustomization.yaml`;
  for (const f of Object.keys(k.kust)) if (!kustomizationFields.has(f)) throw new Error(`${where}: ${f} is not rendered by this test`);
  const out = [];
  for (const r of k.resources) {
    if (r.kust) out.push(...render(r));
    else for (const doc of r.docs) out.push({ file: r.file, doc: structuredClone(doc) });
  }
  // A generated Secret's name gets a hash of its data unless disableNameSuffixHash; this test
  // does not compute kustomize's hash, so it renders only generators without one.
  for (const [i, g] of (k.generators || []).entries()) {
    const what = `${where}: secretGenerator[${i}] ${g.name}`;
    const options = g.options || {};
    for (const f of Object.keys(options)) if (f !== "disableNameSuffixHash") throw new Error(`${what}: options.${f} is not rendered by this test`);
    if (options.disableNameSuffixHash !== true) throw new Error(`${what}: a name with kustomize's hash suffix is not rendered by this test (options: disableNameSuffixHash: true)`);
    for (const v of Object.values(g.data)) if (v.missing) throw new Error(`${what}: ${v.missing} does not exist`);
    out.push({ file: `${k.dir}/kustomization.yaml`, doc: { apiVersion: "v1", kind: "Secret", metadata: { name: g.name }, type: g.type || "Opaque", data: { ...g.data } } });
  }
  const ids = new Set();
  for (const { file, doc } of out) {
    const id = `${doc.kind} ${doc.metadata.namespace || ""}/${doc.metadata.name}`;
    if (ids.has(id)) throw new Error(`${where}: ${file}: a second ${id}`);
    ids.add(id);
  }
  for (const [i, p] of (k.kust.patches || []).entries()) {
    const what = `${where}: patches[${i}]`;
    for (const f of Object.keys(p)) if (!["target", "patch", "path"].includes(f)) throw new Error(`${what}: ${f} is not rendered by this test`);
    const t = p.target || {};
    for (const f of Object.keys(t)) if (!["group", "version", "kind", "name", "namespace"].includes(f)) throw new Error(`${what}: target ${f} is not rendered by this test`);
    if (!t.kind) throw new Error(`${what}: no target kind`);
    const ops = YAML.parse(p.patch !== undefined ? p.patch : k.files[p.path] || "", yamlOptions);
    if (!Array.isArray(ops)) throw new Error(`${what}: not a JSON patch (a list of ops); strategic-merge patches are not rendered by this test`);
    // name and namespace are anchored regular expressions, as in kustomize.
    const full = (re, s) => new RegExp(`^(?:${re})$`).test(s);
    const targets = out.filter(({ doc }) => {
      const [group, version] = doc.apiVersion.includes("/") ? doc.apiVersion.split("/") : ["", doc.apiVersion];
      return doc.kind === t.kind && (t.group === undefined || t.group === group) && (t.version === undefined || t.version === version) &&
        (t.name === undefined || full(t.name, doc.metadata.name)) && (t.namespace === undefined || full(t.namespace, doc.metadata.namespace || ""));
    });
    // kustomize passes over a target that matches nothing; here it is an error: the patch changes nothing.
    if (!targets.length) throw new Error(`${what}: target ${JSON.stringify(t)} matches no object`);
    for (const { file, doc } of targets) {
      for (const op of ops) {
        try {
          applyOp(doc, op);
        } catch (e) {
          throw new Error(`${what} on ${file} (${doc.kind} ${doc.metadata.name}): ${e.message}`);
        }
      }
    }
  }
  if (k.kust.namespace) {
    for (const { doc } of out) {
      if (doc.kind === "Namespace") doc.metadata.name = k.kust.namespace;  // kustomize renames it
      else if (!clusterScoped.has(doc.kind)) doc.metadata.namespace = k.kust.namespace;
    }
  }
  for (const img of k.kust.images || []) {
    for (const f of Object.keys(img)) if (!["name", "newName", "newTag", "digest"].includes(f)) throw new Error(`${where}: images: ${f} is not rendered by this test`);
    for (const { doc } of out.filter((m) => m.doc.spec && m.doc.spec.template && m.doc.spec.template.spec)) {
      for (const c of containersOf(podSpecOf(doc))) {
        // name[:tag][@digest], the tag after the last colon that follows the last slash.
        const digest = c.image.indexOf("@");
        let name = digest < 0 ? c.image : c.image.slice(0, digest);
        let rest = digest < 0 ? "" : c.image.slice(digest);
        const colon = name.lastIndexOf(":");
        if (colon > name.lastIndexOf("/")) [name, rest] = [name.slice(0, colon), name.slice(colon) + rest];
        if (name !== img.name) continue;
        c.image = (img.newName || name) + (img.digest ? `@${img.digest}` : img.newTag !== undefined ? `:${img.newTag}` : rest);
      }
    }
  }
  return out;
}

// RFC 6902 on `doc`, in place: add, remove, replace and test, the path an RFC 6901 pointer.
// Every member or index on the path must exist, the last one too except for add (which may
// create a member, or insert at an index up to the array's length, or at "-"). Throws otherwise.
const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);
const arrayIndex = (token, limit) => (/^(0|[1-9][0-9]*)$/.test(token) && Number(token) < limit ? Number(token) : -1);
const hasMember = (v, token) => (Array.isArray(v) ? arrayIndex(token, v.length) >= 0 : isObject(v) && Object.hasOwn(v, token));
const member = (v, token) => (Array.isArray(v) ? v[Number(token)] : v[token]);
function equal(a, b) {
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((x, i) => equal(x, b[i]));
  if (isObject(a)) return isObject(b) && Object.keys(a).length === Object.keys(b).length && Object.keys(a).every((n) => Object.hasOwn(b, n) && equal(a[n], b[n]));
  return a === b;
}
function applyOp(doc, op) {
  const name = `${op.op} ${op.path}`;
  if (typeof op.path !== "string" || !op.path.startsWith("/")) throw new Error(`${name}: the path is not a JSON pointer to a member`);
  const tokens = op.path.slice(1).split("/").map((t) => t.replace(/~1/g, "/").replace(/~0/g, "~"));
  const last = tokens.pop();
  let parent = doc;
  for (const [i, t] of tokens.entries()) {
    if (!hasMember(parent, t)) throw new Error(`${name}: ${op.path.split("/").slice(0, i + 2).join("/")} does not exist`);
    parent = member(parent, t);
  }
  if (!["add", "remove", "replace", "test"].includes(op.op)) throw new Error(`${name}: not an op this test applies (add, remove, replace, test)`);
  if (op.op !== "remove" && !Object.hasOwn(op, "value")) throw new Error(`${name}: no value`);
  if (op.op === "add") {
    if (Array.isArray(parent)) {
      const i = last === "-" ? parent.length : arrayIndex(last, parent.length + 1);
      if (i < 0) throw new Error(`${name}: index ${last} is past the array's end (${parent.length})`);
      parent.splice(i, 0, structuredClone(op.value));
    } else if (isObject(parent)) {
      parent[last] = structuredClone(op.value);
    } else {
      throw new Error(`${name}: its parent is not an object or an array`);
    }
    return;
  }
  if (!hasMember(parent, last)) throw new Error(`${name}: ${op.path} does not exist`);
  if (op.op === "remove") {
    if (Array.isArray(parent)) parent.splice(Number(last), 1);
    else delete parent[last];
  } else if (op.op === "replace") {
    parent[Array.isArray(parent) ? Number(last) : last] = structuredClone(op.value);
  } else if (!equal(member(parent, last), op.value)) {
    throw new Error(`${name}: the value is ${JSON.stringify(member(parent, last))}, not ${JSON.stringify(op.value)}`);
  }
}

// Every problem found in `manifests` (an empty list: all good). `runShoald` false skips the
// shoald run (the mutations below change nothing it would see, except the one that asks);
// `listing` false skips comparing kustomization.yaml with deploy/'s files (for a rendered set).
function check(manifests, { runShoald = true, listing = true } = {}) {
  const errors = [];
  const err = (file, what) => errors.push(`${file}: ${what}`);
  const objects = manifests.filter((m) => m.doc.kind !== "Kustomization");
  const byKind = (kind) => objects.filter((m) => m.doc.kind === kind);
  const named = (kind, name) => byKind(kind).find((m) => m.doc.metadata.name === name);

  // kustomization.yaml: every top-level manifest listed, every listed file present.
  if (listing) {
    const kust = manifests.find((m) => m.doc.kind === "Kustomization");
    if (!kust) err("kustomization.yaml", "missing");
    const files = new Set(manifests.filter((m) => !m.file.includes("/")).map((m) => m.file));
    files.delete("kustomization.yaml");
    for (const r of (kust && kust.doc.resources) || []) if (!files.has(r)) err("kustomization.yaml", `lists ${r}, which is not in deploy/`);
    for (const f of files) if (kust && !kust.doc.resources.includes(f)) err("kustomization.yaml", `does not list ${f}`);
  }

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
  const ds = objects.find(isNode);
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
  for (const name of ["token-file", "credentials"]) {  // files the Secret holds
    const secret = setting(name) && onVolume(setting(name), "secret");
    if (!secret) continue;
    const rel = path.relative(secret.m.mountPath, setting(name));
    const items = secret.v.secret.items;
    if (items && !items.some((it) => it.path === rel)) err(f, `${name} ${setting(name)}: the Secret volume has no item at ${rel}`);
  }
  // The front door: its buckets (repeated `bucket = "NAME=URL"` lines), served with keys.
  const buckets = text.split("\n").map((l) => l.trim().match(/^bucket\s*=\s*"?([^=\s"]+)=/)).filter(Boolean).map((m) => m[1]);
  if (buckets.length && !setting("credentials")) err(cm.file, "bucket lines without credentials (the door's keys)");
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
    if (!pod.startsWith(sts.doc.metadata.name + "-") || !(n >= 0 && n < sts.doc.spec.replicas)) err(cm.file, `etcd ${url}: no member ${pod} in StatefulSet ${sts.doc.metadata.name}`);
    const service = named("Service", svc);
    if (service && !service.doc.spec.ports.some((p) => p.port === Number(u.port))) err(cm.file, `etcd ${url}: Service ${svc} has no port ${u.port}`);
  }
  // Job examples run where the node runs: the DaemonSet's nodeSelector, and each taint it
  // tolerates (the GPU pool's) tolerated by the job's pod too, or the job never lands there.
  for (const { file, doc } of byKind("Job")) {
    const js = podSpecOf(doc);
    for (const [k, v] of Object.entries(spec.nodeSelector || {})) {
      if ((js.nodeSelector || {})[k] !== v) err(file, `nodeSelector ${k}: ${(js.nodeSelector || {})[k] || "unset"}, not the node DaemonSet's ${v}`);
    }
    for (const t of spec.tolerations || []) {
      if (!(js.tolerations || []).some((u) => equal(u, t))) err(file, `does not tolerate ${t.key}${t.value ? "=" + t.value : ""}:${t.effect || ""}, which the node DaemonSet tolerates (the pool's taint)`);
    }
  }
  // Job examples reach the node through the DaemonSet's socket directory; the nodes they name
  // after it (--cache A,B) are Services over the node's pods, on the node's listen port.
  for (const { file, doc } of byKind("Job")) {
    for (const jc of containersOf(podSpecOf(doc))) {
      if (!(jc.args || []).includes("--cache")) continue;
      const [first, ...others] = jc.args[jc.args.indexOf("--cache") + 1].split(",");
      if (first.startsWith("unix:")) {
        const m = mountFor(jc, first.slice(5));
        const v = m && podSpecOf(doc).volumes.find((x) => x.name === m.name);
        if (first !== `unix:${socket}` || !v || !v.hostPath || !sock || v.hostPath.path !== sock.v.hostPath.path) {
          err(file, `container ${jc.name}: --cache ${first} is not the node's socket on its hostPath`);
        }
      }
      for (const other of others) {
        const [host, port] = other.replace(/^https?:\/\//, "").split(":");
        const [name, ns, svcWord] = host.split(".");
        const svc = named("Service", name);
        const nodePod = svc && workloads.find((w) => isNode(w) && matches(svc.doc.spec.selector, w.doc.spec.template.metadata.labels));
        const sp = svc && svc.doc.spec.ports.find((p) => p.port === Number(port));
        const target = sp && (sp.targetPort === undefined ? sp.port : sp.targetPort);
        const nodePort = nodePod && containersOf(podSpecOf(nodePod.doc)).flatMap((c) => c.ports || []).find((cp) => cp.name === target || cp.containerPort === target);
        const kust = manifests.find((m) => m.doc.kind === "Kustomization");
        const svcNs = svc && (svc.doc.metadata.namespace || (kust && kust.doc.namespace));
        if (svcWord !== "svc" || ns !== svcNs || !nodePod || !nodePort ||
            nodePort.containerPort !== portOf(setting("listen"))) {
          err(file, `container ${jc.name}: --cache ${other} is not NAME.NAMESPACE.svc:PORT of a Service over the node's pods on its listen port`);
        }
      }
    }
  }
  // Job examples reach the door by their host's IP on the node's port, naming a bucket it serves.
  for (const { file, doc } of byKind("Job")) {
    for (const jc of containersOf(podSpecOf(doc))) {
      const env = jc.env || [];
      const endpoint = env.find((e) => e.name === "AWS_ENDPOINT_URL");
      if (!endpoint) continue;
      const hostIp = env.find((e) => e.name === "HOST_IP");
      if (!hostIp || !hostIp.valueFrom || !hostIp.valueFrom.fieldRef || hostIp.valueFrom.fieldRef.fieldPath !== "status.hostIP") {
        err(file, `container ${jc.name}: no env HOST_IP from status.hostIP`);
      }
      const url = new URL(endpoint.value.replace("$(HOST_IP)", "10.224.0.4"));
      if (endpoint.value.indexOf("$(HOST_IP)") < 0 || Number(url.port) !== portOf(setting("listen"))) {
        err(file, `container ${jc.name}: AWS_ENDPOINT_URL ${endpoint.value} is not $(HOST_IP) on the node's listen port ${portOf(setting("listen"))}`);
      }
      for (const [, bucket] of [...(jc.args || []).join(" ").matchAll(/s3:\/\/([^/\s]+)/g)]) {
        if (!buckets.includes(bucket)) err(file, `container ${jc.name}: s3://${bucket} is no bucket of the node's config (${buckets.join(", ") || "none"})`);
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

// What the workload identity overlay is for, on its rendered objects (an empty list: all there):
// the node's pods run as a ServiceAccount of the set, in their own namespace (the federated
// credential names both), that names the managed identity; they carry the label the webhook
// injects the identity's variables by; AZURE_STORAGE_ACCOUNT stays, and nothing names the
// account key any more.
function checkIdentity(rendered) {
  const errors = [];
  const err = (file, what) => errors.push(`${file}: ${what}`);
  const node = nodeParts(rendered);
  if (!node) return [noNode];
  const { ds, spec } = node;
  const account = spec.serviceAccountName;
  const ns = ds.doc.metadata.namespace;
  const sa = rendered.find((m) => m.doc.kind === "ServiceAccount" && m.doc.metadata.name === account && m.doc.metadata.namespace === ns);
  if (!account) err(ds.file, `DaemonSet ${ds.doc.metadata.name}: the pods have no serviceAccountName`);
  else if (!sa) err(ds.file, `DaemonSet ${ds.doc.metadata.name}: serviceAccountName ${account}: no ServiceAccount ${account} in namespace ${ns}`);
  else if (!(sa.doc.metadata.annotations || {})["azure.workload.identity/client-id"]) err(sa.file, `ServiceAccount ${account}: no annotation azure.workload.identity/client-id`);
  const use = (ds.doc.spec.template.metadata.labels || {})["azure.workload.identity/use"];
  if (use !== "true") err(ds.file, `DaemonSet ${ds.doc.metadata.name}: the pods' label azure.workload.identity/use is ${JSON.stringify(use)}, not "true"`);
  const shoaldEnv = spec.containers.find((c) => c.name === "shoald").env || [];
  if (!shoaldEnv.some((e) => e.name === "AZURE_STORAGE_ACCOUNT")) err(ds.file, "container shoald: no env AZURE_STORAGE_ACCOUNT (the account's name)");
  for (const { file, doc } of rendered) {
    for (const c of doc.spec && doc.spec.template ? containersOf(podSpecOf(doc)) : []) {
      for (const e of c.env || []) {
        const ref = e.valueFrom && e.valueFrom.secretKeyRef;
        if (e.name === "AZURE_STORAGE_KEY" || (ref && ref.key === "azure-storage-key")) err(file, `container ${c.name}: env ${e.name} still carries the account key`);
      }
    }
    if (doc.kind === "Secret" && ["data", "stringData"].some((f) => Object.hasOwn(doc[f] || {}, "azure-storage-key"))) {
      err(file, `Secret ${doc.metadata.name} still has the key azure-storage-key`);
    }
  }
  return errors;
}

// A pod's cert-manager CSI volume holding `file` as seen by container `c` (undefined if none).
function certVolumeFor(spec, c, file) {
  const m = file && mountFor(c, file);
  const v = m && (spec.volumes || []).find((x) => x.name === m.name);
  return v && v.csi && v.csi.driver === "csi.cert-manager.io" ? v : undefined;
}
const attrsOf = (v) => (v && v.csi && v.csi.volumeAttributes) || {};
const usagesOf = (v) => (attrsOf(v)["csi.cert-manager.io/key-usages"] || "digital signature,key encipherment").split(",").map((u) => u.trim());
// Usable for `use` ("client auth", "server auth"): the driver's default usages carry no extended
// key usage, which a TLS library takes as any; listed ones must name it.
const allows = (v, use) => !usagesOf(v).some((u) => u.endsWith(" auth")) || usagesOf(v).includes(use);

// What every TLS overlay gives the node, on its rendered objects: shoald's --tls-cert, --tls-key
// and --tls-ca are files on volumes mounted in its container; peers and clients reach a node at
// its host's IP (hostNetwork), which no certificate here names, so the certificate names each
// Service over the nodes' listen port and --tls-name is one of those names; the probes use the
// plain metrics port. `certificate` checks how the overlay holds the certificate: it gets the
// node's parts, `files` (flag -> {file, mount, volume}) and `needed` (the DNS names the
// certificate must carry, each with why).
function checkTlsWith(rendered, certificate) {
  const errors = [];
  const err = (file, what) => errors.push(`${file}: ${what}`);
  const node = nodeParts(rendered);
  if (!node) return [noNode];
  const { ds, spec, c } = node;
  const files = {};
  for (const flag of ["tls-cert", "tls-key", "tls-ca"]) {
    const file = flagValue(c.args, flag);
    const m = file && mountFor(c, file);
    const v = m && spec.volumes.find((x) => x.name === m.name);
    if (!file) err(ds.file, `container shoald: no --${flag}`);
    else if (!v) err(ds.file, `container shoald: --${flag} ${file} is on no volume`);
    else files[flag] = { file, mount: m, volume: v };
  }
  const tlsName = flagValue(c.args, "tls-name");
  if (!tlsName) err(ds.file, "container shoald: no --tls-name: peers reach each other at host IPs, which no certificate names");
  const needed = tlsName ? [{ name: tlsName, why: "the --tls-name peers check" }] : [];
  const listen = c.ports.find((p) => p.name === "shoal");
  for (const svc of rendered.filter((m) => m.doc.kind === "Service" && matches(m.doc.spec.selector, ds.doc.spec.template.metadata.labels))) {
    if (!svc.doc.spec.ports.some((p) => p.targetPort === "shoal" || (listen && p.targetPort === listen.containerPort))) continue;
    needed.push({ name: `${svc.doc.metadata.name}.${svc.doc.metadata.namespace}.svc`, why: "the Service clients reach any node by" });
  }
  certificate({ ...node, files, needed, err, rendered });
  for (const probe of ["startupProbe", "livenessProbe", "readinessProbe"]) {
    const port = c[probe] && c[probe].httpGet && c[probe].httpGet.port;
    if (port !== "metrics") err(ds.file, `container shoald: ${probe} on port ${port}, which speaks TLS: the probe's plain GET fails there`);
  }
  return errors;
}

// The TLS overlay (deploy-overlays/tls): the three files are on a cert-manager CSI volume, which
// issues each pod a certificate from an issuer; the driver expands no variable in ip-sans (such
// a certificate would never be issued); the certificate names every needed name and is for
// server use.
const checkTls = (rendered) => checkTlsWith(rendered, ({ ds, files, needed, err }) => {
  for (const v of new Set(Object.values(files).map((f) => f.volume))) {
    const attrs = attrsOf(v);
    if (!v.csi || v.csi.driver !== "csi.cert-manager.io") {
      err(ds.file, `volume ${v.name}: not cert-manager's CSI driver (a certificate per node)`);
      continue;
    }
    if ((attrs["csi.cert-manager.io/ip-sans"] || "").includes("$")) {
      err(ds.file, `volume ${v.name}: ip-sans ${attrs["csi.cert-manager.io/ip-sans"]}: the CSI driver expands no variable there, so no certificate would be issued`);
    }
    if (!attrs["csi.cert-manager.io/issuer-name"]) err(ds.file, `volume ${v.name}: no issuer`);
    if (!allows(v, "server auth")) err(ds.file, `volume ${v.name}: key-usages ${attrs["csi.cert-manager.io/key-usages"]} leave out server auth`);
    const names = (attrs["csi.cert-manager.io/dns-names"] || "").split(",").map((n) => n.trim());
    for (const { name, why } of needed) if (!names.includes(name)) err(ds.file, `volume ${v.name}: the certificate does not name ${name}, ${why}`);
  }
});

// `openssl ARGS` (stdin `input`): {ok, out} with stdout and stderr together.
function openssl(args, input) {
  try {
    return { ok: true, out: execFileSync("openssl", args, { input, stdio: ["pipe", "pipe", "pipe"] }).toString() };
  } catch (e) {
    return { ok: false, out: `${e.stdout || ""}${e.stderr || e.message}`.trim() };
  }
}

// The TLS overlay with a certificate held in a Secret (deploy-overlays/tls-secret): the three
// files are keys of a Secret of the nodes' own namespace, readable by the container's user; the
// files themselves are checked with openssl: the certificate is signed by the CA, is for server
// use, has not expired, names every needed name, and the key is its key.
const checkTlsSecret = (rendered) => checkTlsWith(rendered, ({ ds, spec, c, files, needed, err }) => {
  const ns = ds.doc.metadata.namespace || "";
  const pem = {};
  const readable = new Set();
  for (const [flag, { file, mount, volume: v }] of Object.entries(files)) {
    if (!v.secret) {
      err(ds.file, `--${flag} ${file}: volume ${v.name} is not a Secret`);
      continue;
    }
    const name = v.secret.secretName;
    const secret = rendered.find((m) => m.doc.kind === "Secret" && m.doc.metadata.name === name && (m.doc.metadata.namespace || "") === ns);
    if (!secret) {
      err(ds.file, `volume ${v.name}: no Secret ${name} in namespace ${ns || "(none)"}, the node's: a pod mounts Secrets of its own namespace only`);
      continue;
    }
    const rel = path.posix.relative(mount.mountPath, file);
    const item = v.secret.items ? v.secret.items.find((it) => it.path === rel) : { key: rel };
    const data = secret.doc.data || {};
    const strings = secret.doc.stringData || {};
    if (!item || (!Object.hasOwn(data, item.key) && !Object.hasOwn(strings, item.key))) {
      err(ds.file, `--${flag} ${file}: Secret ${name} has no key ${item ? item.key : rel}`);
      continue;
    }
    pem[flag] = Object.hasOwn(strings, item.key) ? Buffer.from(strings[item.key]) : Buffer.from(data[item.key], "base64");
    // Secret files belong to root: the node reads them through the group (fsGroup) or as other.
    const mode = v.secret.defaultMode === undefined ? 0o644 : v.secret.defaultMode;
    const user = (c.securityContext || {}).runAsUser;
    if (!readable.has(v) && user !== 0 && !(mode & 0o004) && !((mode & 0o040) && (spec.securityContext || {}).fsGroup !== undefined)) {
      err(ds.file, `volume ${v.name}: defaultMode 0${mode.toString(8)}: the container's user ${user} cannot read ${file}`);
    }
    readable.add(v);
  }
  if (!pem["tls-cert"] || !pem["tls-key"] || !pem["tls-ca"]) return;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "deploy-test-"));
  try {
    const [cert, key, ca] = ["cert.pem", "key.pem", "ca.pem"].map((f) => path.join(tmp, f));
    fs.writeFileSync(cert, pem["tls-cert"]);
    fs.writeFileSync(key, pem["tls-key"]);
    fs.writeFileSync(ca, pem["tls-ca"]);
    const bad = (what) => err(ds.file, `the Secret's certificate ${what}`);
    const verify = openssl(["verify", "-CAfile", ca, "-purpose", "sslserver", cert]);
    if (!verify.ok) bad(`is not one the CA in --tls-ca signed for server use: ${verify.out.split("\n").join("; ")}`);
    if (!openssl(["x509", "-in", cert, "-noout", "-checkend", "0"]).ok) bad("has expired");
    for (const { name, why } of needed) {
      const r = openssl(["x509", "-in", cert, "-noout", "-checkhost", name]);
      if (!r.ok || !r.out.includes("does match")) bad(`does not name ${name}, ${why}`);
    }
    const certKey = openssl(["x509", "-in", cert, "-noout", "-pubkey"]);
    const keyKey = openssl(["pkey", "-in", key, "-pubout"]);
    if (!certKey.ok || !keyKey.ok || certKey.out !== keyKey.out) bad(`and the key in --tls-key do not go together${keyKey.ok ? "" : ` (${keyKey.out})`}`);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

// What the client-certificate overlay adds, on its rendered objects and job examples: the node
// asks for client certificates signed by the CA of its own certificate's volume, and that
// certificate is for client use as well (the node presents it to its peers); each job that names
// a node over TCP does so with https:// and presents a certificate for client use issued by the
// nodes' issuer, checks the node against the nodes' CA and --tls-name; at least one job does.
function checkMtls(rendered) {
  const errors = [];
  const err = (file, what) => errors.push(`${file}: ${what}`);
  const node = nodeParts(rendered);
  if (!node) return [noNode];
  const { ds, spec, c } = node;
  const nodeCert = certVolumeFor(spec, c, flagValue(c.args, "tls-cert"));
  const clientCa = flagValue(c.args, "tls-client-ca");
  if (!clientCa) err(ds.file, "container shoald: no --tls-client-ca");
  else if (!nodeCert || certVolumeFor(spec, c, clientCa) !== nodeCert) err(ds.file, `container shoald: --tls-client-ca ${clientCa} is not the CA of the node's own certificate volume`);
  if (nodeCert && !allows(nodeCert, "client auth")) err(ds.file, `volume ${nodeCert.name}: key-usages ${attrsOf(nodeCert)["csi.cert-manager.io/key-usages"]} leave out client auth: peers would refuse the certificate the node presents`);
  const issuer = attrsOf(nodeCert)["csi.cert-manager.io/issuer-name"];
  const tlsName = flagValue(c.args, "tls-name");
  let clients = 0;
  for (const { file, doc } of rendered.filter((m) => m.doc.kind === "Job")) {
    const pod = podSpecOf(doc);
    for (const jc of containersOf(pod)) {
      if (!(jc.args || []).includes("--cache")) continue;
      const tcp = jc.args[jc.args.indexOf("--cache") + 1].split(",").filter((n) => !n.startsWith("unix:"));
      if (!tcp.length) continue;
      clients++;
      for (const n of tcp) if (!n.startsWith("https://")) err(file, `container ${jc.name}: --cache ${n} is not https://, which the nodes serve`);
      const env = Object.fromEntries((jc.env || []).filter((e) => e.value !== undefined).map((e) => [e.name, e.value]));
      for (const name of ["SHOAL_TLS_CERT", "SHOAL_TLS_KEY", "SHOAL_TLS_CA"]) {
        const v = certVolumeFor(pod, jc, env[name]);
        if (!v) err(file, `container ${jc.name}: ${name} ${env[name] || "(unset)"} is no file of a cert-manager CSI volume`);
        else if (attrsOf(v)["csi.cert-manager.io/issuer-name"] !== issuer) err(file, `container ${jc.name}: ${name}'s certificate is issued by ${attrsOf(v)["csi.cert-manager.io/issuer-name"]}, not the nodes' ${issuer}`);
        else if (name === "SHOAL_TLS_CERT" && !allows(v, "client auth")) err(file, `volume ${v.name}: key-usages ${attrsOf(v)["csi.cert-manager.io/key-usages"]} leave out client auth: the nodes would refuse it`);
      }
      if (tlsName && env.SHOAL_TLS_NAME !== tlsName) err(file, `container ${jc.name}: SHOAL_TLS_NAME is ${env.SHOAL_TLS_NAME || "unset"}, not ${tlsName}, the name the nodes' certificates carry`);
    }
  }
  if (!clients) errors.push("no job example reaches a node over TCP with a client certificate");
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
const expectCaught = (what, found) => {
  if (found.length === 0) {
    failed = true;
    console.error(`deploy_test: FAILED: breaking ${what} went unnoticed`);
  } else {
    console.log(`ok: breaking ${what} is caught: ${found[0]}`);
  }
};
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
  ["the job's second node's port", (ms) => { const a = find(ms, "Job", "shoal-example-read").spec.template.spec.containers[0].args; a[a.indexOf("--cache") + 1] = a[a.indexOf("--cache") + 1].replace(":7070", ":9070"); }],
  ["the nodes' Service's selector", (ms) => { find(ms, "Service", "shoal-nodes").spec.selector["app.kubernetes.io/component"] = "etcd"; }],
  ["the door's keys file item", (ms) => { find(ms, "DaemonSet", "shoal-node").spec.template.spec.volumes.find((v) => v.name === "secret").secret.items.pop(); }],
  ["the door's credentials", (ms) => setConf(ms, "credentials", "/etc/shoal/door-keys")],
  ["the door job's endpoint port", (ms) => { find(ms, "Job", "shoal-example-door").spec.template.spec.containers[0].env.find((e) => e.name === "AWS_ENDPOINT_URL").value = "http://$(HOST_IP):9070"; }],
  ["the door job's bucket", (ms) => { setConf(ms, "bucket", "\"models=az://models\""); }],
  ["the door job's key", (ms) => { delete find(ms, "Secret", "shoal-door-client").stringData["aws-secret-access-key"]; }],
  ["the mount job's tolerations", (ms) => { find(ms, "Job", "shoal-example-train").spec.template.spec.tolerations.pop(); }],
  ["the door job's nodeSelector", (ms) => { delete find(ms, "Job", "shoal-example-door").spec.template.spec.nodeSelector; }],
  ["kustomization's resources", (ms) => { ms.find((m) => m.doc.kind === "Kustomization").doc.resources.pop(); }],
];
const asksShoald = new Set(["a config key shoald does not know", "a config value shoald refuses"]);
for (const [what, mutate] of breaks) {
  const copy = JSON.parse(JSON.stringify(manifests));
  mutate(copy);
  expectCaught(what, check(copy, { runShoald: asksShoald.has(what) }).filter((e) => !errors.includes(e)));
}
// The overlays: each rendered, then the same checks on what it renders (with the job examples,
// applied beside it) and its own. A render that throws is one error. Then each break of an
// overlay must be caught: a deep copy of what was read (the overlay and deploy/ under it), one
// change, a render error or at least one new error.
const examples = manifests.filter((m) => m.file.startsWith("examples/")).map((m) => ({ file: `deploy/${m.file}`, doc: m.doc }));
const patchOf = (k, kind) => k.kust.patches.find((p) => p.target.kind === kind);
const editOps = (k, kind, edit) => {
  const p = patchOf(k, kind);
  p.patch = YAML.stringify(edit(YAML.parse(p.patch, yamlOptions)), yamlOptions);
};
const readDoc = (k, kind, name) => {
  for (const r of k.resources) {
    const d = r.kust ? readDoc(r, kind, name) : r.docs.find((x) => x.kind === kind && x.metadata.name === name);
    if (d) return d;
  }
  return undefined;
};
const overlays = [
  {
    dir: "workload-identity",
    own: checkIdentity,
    says: "the node runs as its ServiceAccount without the account key",
    breaks: [
      ["a patch path that does not exist (env/5)", (k) => editOps(k, "DaemonSet", (ops) => ops.map((o) => ({ ...o, path: o.path.replace("/env/4", "/env/5") })))],
      ["deploy/'s env with an entry before the key's", (k) => { readDoc(k, "DaemonSet", "shoal-node").spec.template.spec.containers[0].env.unshift({ name: "TZ", value: "UTC" }); }],
      ["a patch target that names no object", (k) => { patchOf(k, "Secret").target.name = "shoal-secret"; }],
      ["a kustomization field not rendered here", (k) => { k.kust.commonLabels = { team: "ml" }; }],
      ["the serviceAccountName", (k) => editOps(k, "DaemonSet", (ops) => ops.map((o) => (o.path.endsWith("/serviceAccountName") ? { ...o, value: "shoal" } : o)))],
      ["the ServiceAccount's client-id", (k) => { delete readDoc(k, "ServiceAccount", "shoal-node").metadata.annotations["azure.workload.identity/client-id"]; }],
      ["the overlay's namespace", (k) => { delete k.kust.namespace; }],
      ["the workload identity pod label", (k) => editOps(k, "DaemonSet", (ops) => ops.filter((o) => !o.path.includes("azure.workload.identity")))],
      ["the removal of env AZURE_STORAGE_KEY", (k) => editOps(k, "DaemonSet", (ops) => ops.filter((o) => o.op !== "remove"))],
      ["the removal of the Secret's azure-storage-key", (k) => { k.kust.patches = k.kust.patches.filter((p) => p.target.kind !== "Secret"); }],
      ["AZURE_STORAGE_ACCOUNT (removed too)", (k) => editOps(k, "DaemonSet", (ops) => [...ops, { op: "remove", path: "/spec/template/spec/containers/0/env/3" }])],
    ],
  },
  {
    dir: "tls",
    own: checkTls,
    says: "each node serves and calls over TLS with a certificate of its own from cert-manager's CSI driver naming the nodes' Service, probed on the plain port",
    breaks: [
      ["the --tls-ca flag", (k) => editOps(k, "DaemonSet", (ops) => ops.filter((o) => !String(o.value).startsWith("--tls-ca")))],
      ["the certificate's mount path", (k) => editOps(k, "DaemonSet", (ops) => ops.map((o) => (o.value && o.value.mountPath ? { ...o, value: { ...o.value, mountPath: "/etc/tls" } } : o)))],
      ["the certificate's DNS name", (k) => editOps(k, "DaemonSet", (ops) => ops.map((o) => (o.value && o.value.csi ? { ...o, value: { ...o.value, csi: { ...o.value.csi, volumeAttributes: { ...o.value.csi.volumeAttributes, "csi.cert-manager.io/dns-names": "shoal-nodes" } } } } : o)))],
      ["ip-sans with a variable the driver does not expand", (k) => editOps(k, "DaemonSet", (ops) => ops.map((o) => (o.value && o.value.csi ? { ...o, value: { ...o.value, csi: { ...o.value.csi, volumeAttributes: { ...o.value.csi.volumeAttributes, "csi.cert-manager.io/ip-sans": "${POD_IP}" } } } } : o)))],
      ["the --tls-name flag", (k) => editOps(k, "DaemonSet", (ops) => ops.filter((o) => !String(o.value).startsWith("--tls-name")))],
      ["a --tls-name the certificate does not name", (k) => editOps(k, "DaemonSet", (ops) => ops.map((o) => (String(o.value).startsWith("--tls-name") ? { ...o, value: "--tls-name=shoal.shoal.svc" } : o)))],
      ["server auth left out of the key usages", (k) => editOps(k, "DaemonSet", (ops) => ops.map((o) => (o.value && o.value.csi ? { ...o, value: { ...o.value, csi: { ...o.value.csi, volumeAttributes: { ...o.value.csi.volumeAttributes, "csi.cert-manager.io/key-usages": "digital signature,key encipherment,client auth" } } } } : o)))],
      ["a probe left on the TLS port", (k) => editOps(k, "DaemonSet", (ops) => ops.filter((o) => !o.path.includes("readinessProbe")))],
      ["a probe on a port the pod does not have", (k) => editOps(k, "DaemonSet", (ops) => ops.map((o) => (o.path.includes("livenessProbe") ? { ...o, value: "metric" } : o)))],
      ["a patch on a container that moved", (k) => { readDoc(k, "DaemonSet", "shoal-node").spec.template.spec.containers.unshift({ name: "sidecar", image: "shoal" }); }],
    ],
  },
  {
    dir: "mtls",
    own: (set) => [...checkTls(set), ...checkMtls(set)],
    ownExamples: true,
    says: "nodes ask every TCP client for a certificate of the nodes' CA, present their own to peers, and the job example holds one",
    breaks: [
      ["the --tls-client-ca flag", (k) => editOps(k, "DaemonSet", (ops) => ops.filter((o) => !String(o.value).startsWith("--tls-client-ca")))],
      ["client auth left out of the node's key usages", (k) => editOps(k, "DaemonSet", (ops) => ops.map((o) => (o.path.endsWith("key-usages") ? { ...o, value: "digital signature,key encipherment,server auth" } : o)))],
      ["the volume index the key usages are added at", (k) => editOps(k, "DaemonSet", (ops) => ops.map((o) => ({ ...o, path: o.path.replace("/volumes/5/", "/volumes/4/") })))],
      ["client auth left out of the job's key usages", (k) => { k.examples[0].doc.spec.template.spec.volumes[0].csi.volumeAttributes["csi.cert-manager.io/key-usages"] = "digital signature,key encipherment,server auth"; }],
      ["the job's certificate from another issuer", (k) => { k.examples[0].doc.spec.template.spec.volumes[0].csi.volumeAttributes["csi.cert-manager.io/issuer-name"] = "letsencrypt"; }],
      ["the job's key on no certificate volume", (k) => { k.examples[0].doc.spec.template.spec.containers[0].env.find((e) => e.name === "SHOAL_TLS_KEY").value = "/etc/shoal/secret/tls.key"; }],
      ["the job's SHOAL_TLS_NAME", (k) => { k.examples[0].doc.spec.template.spec.containers[0].env = k.examples[0].doc.spec.template.spec.containers[0].env.filter((e) => e.name !== "SHOAL_TLS_NAME"); }],
      ["the job's node over http://", (k) => { const a = k.examples[0].doc.spec.template.spec.containers[0].args; a[a.indexOf("--cache") + 1] = a[a.indexOf("--cache") + 1].replace("https://$(HOST_IP)", "http://$(HOST_IP)"); }],
      ["every job example", (k) => { k.examples = []; }],
    ],
  },
  {
    dir: "tls-secret",
    own: checkTlsSecret,
    // certs/ is where make-certs.sh writes (never committed): the test makes its own there.
    certs: true,
    says: "each node serves and calls over TLS with the certificate of a Secret made by make-certs.sh, naming the nodes' Service, probed on the plain port",
    breaks: [
      ["a certificate naming another name", (k) => swapCerts(k, ["tls.crt", "tls.key", "ca.crt"])],
      ["a CA that did not sign the certificate", (k) => swapCerts(k, ["ca.crt"])],
      ["a key of another certificate", (k) => swapCerts(k, ["tls.key"])],
      ["the Secret's ca.crt", (k) => { delete k.generators[0].data["ca.crt"]; }],
      ["a file of the Secret not made", (k) => { k.generators[0].data["tls.key"] = { missing: "deploy-overlays/tls-secret/certs/tls.key" }; }],
      ["the overlay's namespace (the Secret's)", (k) => { delete k.kust.namespace; }],
      ["the volume's Secret name", (k) => editOps(k, "DaemonSet", (ops) => ops.map((o) => (o.value && o.value.secret ? { ...o, value: { ...o.value, secret: { ...o.value.secret, secretName: "shoal-tl" } } } : o)))],
      ["a defaultMode the node's user cannot read", (k) => editOps(k, "DaemonSet", (ops) => ops.map((o) => (o.value && o.value.secret ? { ...o, value: { ...o.value, secret: { ...o.value.secret, defaultMode: 0o400 } } } : o)))],
      ["the certificate's mount path", (k) => editOps(k, "DaemonSet", (ops) => ops.map((o) => (o.value && o.value.mountPath ? { ...o, value: { ...o.value, mountPath: "/etc/tls" } } : o)))],
      ["a --tls-name the certificate does not name", (k) => editOps(k, "DaemonSet", (ops) => ops.map((o) => (String(o.value).startsWith("--tls-name") ? { ...o, value: "--tls-name=shoal.shoal.svc" } : o)))],
      ["a probe left on the TLS port", (k) => editOps(k, "DaemonSet", (ops) => ops.filter((o) => !o.path.includes("startupProbe")))],
    ],
  },
];
// Certificates made by deploy-overlays/tls-secret/make-certs.sh, as the tls-secret overlay's
// certs/ would hold them: `made` for the name the overlay's nodes check, `other` for another
// name and CA (for the breaks).
const certsDir = fs.mkdtempSync(path.join(os.tmpdir(), "deploy-test-certs-"));
process.on("exit", () => fs.rmSync(certsDir, { recursive: true, force: true }));
const makeCerts = (sub, ...args) => {
  execFileSync(path.join(overlaysDir, "tls-secret", "make-certs.sh"), [path.join(certsDir, sub), ...args], { stdio: ["ignore", "pipe", "inherit"] });
  return path.join(certsDir, sub);
};
const madeCerts = makeCerts("made");
const otherCerts = makeCerts("other", "shoal.example");
const swapCerts = (k, keys) => {
  for (const key of keys) k.generators[0].data[key] = fs.readFileSync(path.join(otherCerts, key)).toString("base64");
};
// An overlay's own job examples (its examples/ folder), as {file, doc}.
const ownExamples = (dir) => fs.readdirSync(path.join(dir, "examples")).filter((f) => f.endsWith(".yaml")).sort()
  .flatMap((f) => parseYaml(path.join(dir, "examples", f), path.relative(repoDir, path.join(dir, "examples", f))).map((doc) => ({ file: path.relative(repoDir, path.join(dir, "examples", f)), doc })));
for (const o of overlays) {
  const dir = path.join(overlaysDir, o.dir);
  const name = path.relative(repoDir, dir);
  const checkOverlay = (k, opts) => {
    let rendered;
    try {
      rendered = render(k);
    } catch (e) {
      return { errors: [e.message] };
    }
    const set = [...rendered, ...(k.examples || examples)];
    return { rendered, errors: [...check(set, { ...opts, listing: false }), ...o.own(set)] };
  };
  let overlay = null;
  try {
    const certs = path.join(dir, "certs");
    overlay = readKustomization(dir, [], o.certs ? (p) => readIfThere(inside(p, certs) ? path.join(madeCerts, path.relative(certs, p)) : p) : readIfThere);
    if (o.ownExamples) overlay.examples = ownExamples(dir);
  } catch (e) {
    failed = true;
    console.error(`deploy_test: FAILED: ${e.message}`);
    continue;
  }
  const { rendered, errors: overlayErrors } = checkOverlay(overlay);
  if (rendered) {
    const ids = rendered.map((m) => `${m.doc.kind}/${m.doc.metadata.name}`);
    console.log(`deploy_test: ${name} renders ${rendered.length} objects: ${ids.join(", ")}`);
  }
  if (overlayErrors.length) {
    failed = true;
    console.error(`deploy_test: FAILED: ${name}:\n  ` + overlayErrors.join("\n  "));
  } else {
    console.log(`ok: ${name}: every object valid, every reference resolved, ${o.says}`);
  }
  for (const [what, mutate] of o.breaks) {
    const copy = structuredClone(overlay);
    mutate(copy);
    expectCaught(`${what} in ${name}`, checkOverlay(copy, { runShoald: false }).errors.filter((e) => !overlayErrors.includes(e)));
  }
}
if (failed) process.exit(1);
console.log("deploy_test: PASSED");

#!/usr/bin/env python3
"""soak: a 4-node Shoal cluster for N minutes under mixed writes, overwrites and reads, while
members are killed (-9 and SIGTERM) and restarted on their data dirs, the store answers 503s
and drops connections, and one member's disk fills up; at the end every acknowledged write is
checked byte-for-byte in the store.

usage: python3 bench/soak.py [--minutes 30] [--round-minutes 10] [--workers 3] [--seed 1]
                             [--kill-every 40] [--fault-every 60] [--disk-every 90]
                             [--min-free-gb 10] [--out FILE] [--keep-logs]

What runs (every server on a free loopback port, every process stopped by its PID at the end):
  Azurite (--disableTelemetry) behind src/testing/fault_proxy.js; 4 shoald with --peers,
  --replicas 2 and --down-grace 5 (so a member down longer than 5 s has its writes uploaded
  by its copies' holders); member n3's data dir is a 1 GiB tmpfs (root only; without root the
  full-disk fault is skipped and the report says so).
Workers each loop over: write a new object (70%: 1-256 KiB, 25%: 1-8 MiB, 5%: 16-48 MiB),
  overwrite one of their own objects, or read one of their own objects back through a random
  member and compare its sha256 with what may be there. Each op goes through a random member.
Faults (each on its own timer, jittered):
  kill:  a random member gets SIGKILL or SIGTERM (alternating), stays down 2-12 s, restarts.
  store: for 20 s the proxy answers 30% of requests 503 and drops 3% of connections.
  disk:  n3's tmpfs is filled to the last byte for 15 s, then freed.
Rounds: the --minutes of load are cut into rounds of --round-minutes, each under its own prefix
(rN/); the checks between rounds come on top (a 30-minute run takes about 45). At the end of
each: faults stop, every member is up, `shoal flush --wait` for the round's prefix
through one member (cluster-wide: copies of dead members' writes included), then every object
of the round is read from Azurite directly (not through the proxy or a node). An object is
lost when the store does not hold the last acknowledged version or a version written after it
(a write whose answer never came, e.g. its node was killed, may or may not have been applied).
Then the round's objects are deleted through a member (`shoal rm -r --cache`) and the store's
listing of the prefix must be empty. Azurite runs with its extent garbage collection every
minute (its default is 10), so the space of deleted rounds comes back while the soak runs: a
30-minute run without rounds wrote over 60 GB. A round ends early, and the run stops before
a new one, when the soak's filesystem has less than --min-free-gb free.

Writes the summary as JSON to --out (default bench/results/soak.json) and prints it.
Exit status: 0 when nothing acknowledged was lost, every flush and round delete succeeded and
every read returned the last acknowledged version or one written after it (an older
acknowledged version is a wrong read too, and so is "does not exist": only acknowledged
objects are read); 1 otherwise, and then the members', Azurite's and
the proxy's logs are kept in DIR-logs (printed; with --keep-logs, always); 2 on usage errors.
The summary's samples name up to 5 reads of each kind that failed (object, member, time).
"""
import argparse
import atexit
import hashlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "build", "bin")
SHOAL, SHOALD = os.path.join(BIN, "shoal"), os.path.join(BIN, "shoald")
AZURITE = os.path.join(ROOT, "testenv", "node_modules", ".bin", "azurite-blob")
AZURITE_DIST = os.path.join(ROOT, "testenv", "node_modules", "azurite", "dist", "src")
# Azurite's blob service as it ships, with its garbage collection of unreferenced extent files
# every minute, on files untouched for a minute (Azurite: 10 and 10 minutes). Its constants are
# read when the collector starts, so setting them before main.js runs is enough.
AZURITE_QUICK_GC = """
const [dist, ...args] = process.argv.slice(1);
require(dist + "/blob/utils/constants.js").DEFAULT_GC_INTERVAL_MS = 60 * 1000;
require(dist + "/common/utils/constants.js").DEFAULT_EXTENT_GC_PROTECT_TIME_IN_MS = 60 * 1000;
process.argv = [process.argv[0], "azurite-blob", ...args];
require(dist + "/blob/main.js");
"""
PROXY = os.path.join(ROOT, "src", "testing", "fault_proxy.js")
ACCOUNT = "devstoreaccount1"
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
CONTAINER = "soak"
NODES = 4
DISK_NODE = 3
TMPFS_SIZE = 1 << 30
START = time.time()


def log(msg):
    print(f"[soak {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, seconds=20):
    end = time.time() + seconds
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.1)
    return False


def connection_string(port):
    return (f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
            f"BlobEndpoint=http://127.0.0.1:{port}/{ACCOUNT};")


class Counters:
    def __init__(self):
        self.mu = threading.Lock()
        self.c = {}
        self.samples = {}

    def add(self, name, n=1, sample=None):
        with self.mu:
            self.c[name] = self.c.get(name, 0) + n
            if sample is not None and len(self.samples.setdefault(name, [])) < 5:
                self.samples[name].append(sample)


class Cluster:
    """Azurite, the fault proxy and the members; every process is stopped by its PID."""

    def __init__(self, tmp, counters):
        self.tmp, self.counters = tmp, counters
        self.procs = []  # (name, Popen) of servers, stopped at exit
        self.nodes = [None] * NODES
        self.ports = [free_port() for _ in range(NODES)]
        self.up = [False] * NODES
        self.mu = threading.Lock()
        self.closing = False  # set by stop_all: no member is started after it
        self.tmpfs = None
        self.store_dir = os.path.join(tmp, "azurite")
        self.store_peak = 0  # bytes of Azurite's files, at most, as sampled

    def store_bytes(self):
        b = tree_bytes(self.store_dir)
        self.store_peak = max(self.store_peak, b)
        return b

    def start(self):
        az_port = free_port()
        self.azurite = self._spawn("azurite", ["node", "-e", AZURITE_QUICK_GC, AZURITE_DIST, "--blobHost", "127.0.0.1", "--blobPort", str(az_port),
                                               "--location", self.store_dir, "--silent",
                                               "--skipApiVersionCheck", "--loose", "--disableTelemetry"])
        if not wait_port(az_port):
            sys.exit("soak: Azurite did not start: " + self._log("azurite"))
        self.direct = connection_string(az_port)
        port_file = os.path.join(self.tmp, "proxy.port")
        self._spawn("proxy", ["node", PROXY, "--upstream", f"http://127.0.0.1:{az_port}", "--listen", "127.0.0.1:0",
                              "--port-file", port_file, "--seed", "7"])
        for _ in range(200):
            if os.path.exists(port_file) and open(port_file).read().strip():
                break
            time.sleep(0.05)
        self.proxy_port = int(open(port_file).read())
        if not wait_port(self.proxy_port):
            sys.exit("soak: fault proxy did not start: " + self._log("proxy"))
        mb = subprocess.run([SHOAL, "mb", f"az://{CONTAINER}"], env=self.env(direct=True), capture_output=True, text=True)
        if mb.returncode != 0:
            sys.exit("soak: could not create the container: " + mb.stderr)
        if os.geteuid() == 0:
            d = os.path.join(self.tmp, "tmpfs")
            os.makedirs(d)
            r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE}", "tmpfs", d], capture_output=True, text=True)
            if r.returncode == 0:
                self.tmpfs = d
            else:
                log("no tmpfs for the full-disk fault: " + r.stderr.strip())
        for i in range(NODES):
            self.start_node(i)

    def _spawn(self, name, argv, env=None):
        f = open(os.path.join(self.tmp, name + ".log"), "ab")
        p = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        self.procs.append((name, p))
        return p

    def _log(self, name, tail=2000):
        try:
            return open(os.path.join(self.tmp, name + ".log"), errors="replace").read()[-tail:]
        except OSError:
            return ""

    def env(self, direct=False):
        e = dict(os.environ)
        e["AZURE_STORAGE_CONNECTION_STRING"] = self.direct if direct else connection_string(self.proxy_port)
        return e

    def data_dir(self, i):
        if i == DISK_NODE and self.tmpfs:
            return os.path.join(self.tmpfs, "data")
        return os.path.join(self.tmp, f"n{i}")

    def endpoint(self, i):
        return f"127.0.0.1:{self.ports[i]}"

    def start_node(self, i):
        peers = ",".join(f"n{j}=127.0.0.1:{self.ports[j]}" for j in range(NODES))
        with self.mu:  # with stop_all's check: a member is started and stopped, or not started
            if self.closing:
                return
            p = self._spawn(f"n{i}", [SHOALD, "--listen", self.endpoint(i), "--node-id", f"n{i}", "--peers", peers,
                                      "--data-dir", self.data_dir(i), "--capacity", "768MiB", "--replicas", "2",
                                      "--down-grace", "5"], env=self.env())
        if not wait_port(self.ports[i], 30):
            sys.exit(f"soak: n{i} did not start: " + self._log(f"n{i}"))
        with self.mu:
            self.nodes[i] = p
            self.up[i] = True

    def stop_node(self, i, sig):
        with self.mu:
            p, self.up[i] = self.nodes[i], False
        p.send_signal(sig)
        try:
            p.wait(60)
        except subprocess.TimeoutExpired:
            self.counters.add("shutdowns that took over 60 s (then killed)", sample=f"n{i}")
            p.kill()
            p.wait()
        if sig == signal.SIGTERM and p.returncode != 0:
            self.counters.add("SIGTERM exits not 0", sample=f"n{i}: {p.returncode}")

    def random_up(self, rng, avoid=None):
        with self.mu:
            ups = [i for i in range(NODES) if self.up[i] and i != avoid]
        return rng.choice(ups) if ups else None

    def proxy(self, path, body=None):
        req = urllib.request.Request(f"http://127.0.0.1:{self.proxy_port}/__proxy/{path}",
                                     data=json.dumps(body).encode() if body is not None else None,
                                     method="POST" if body is not None else "GET")
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read() or b"{}")

    def stop_all(self):
        with self.mu:
            self.closing = True
        for name, p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
        for name, p in reversed(self.procs):
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if self.tmpfs:
            subprocess.run(["umount", "-l", self.tmpfs], capture_output=True)
            self.tmpfs = None


def classify(err):
    e = err.lower()
    for needle, name in (("changed (etag", "object replaced while read"),
                         ("no longer held by the nodes", "412: no longer held by the nodes that took it"), ("disk full", "disk full"), ("no space", "disk full"), ("connect", "node unreachable"),
                         ("busy", "busy"), ("503", "store 503"), ("timed out", "timeout"), ("timeout", "timeout")):
        if needle in e:
            return name
    return "other"


class Worker(threading.Thread):
    """Writes, overwrites and reads its own objects; keeps, per object, the versions that may be
    in the store: the last acknowledged one and every attempt after it whose answer never came."""

    def __init__(self, n, cluster, counters, seed, deadline, tmp, prefix):
        super().__init__(daemon=True)
        self.n, self.cluster, self.counters, self.deadline = n, cluster, counters, deadline
        self.prefix = prefix  # the round's: rN/
        self.rng = random.Random(seed * 1000 + n)
        self.tmp = tmp
        self.objects = {}  # key -> {"acked": sha|None, "maybe": set(sha), "size": {sha: n}}
        self.next = 0

    def url(self, key):
        return f"az://{CONTAINER}/{self.prefix}w{self.n}/{key}"

    def size(self):
        r = self.rng.random()
        if r < 0.70:
            return self.rng.randint(1 << 10, 256 << 10)
        if r < 0.95:
            return self.rng.randint(1 << 20, 8 << 20)
        return self.rng.randint(16 << 20, 48 << 20)

    def write(self, key):
        node = self.cluster.random_up(self.rng)
        if node is None:
            time.sleep(0.5)
            return
        data = self.rng.randbytes(self.size())
        sha = hashlib.sha256(data).hexdigest()
        path = os.path.join(self.tmp, f"w{self.n}.bin")
        with open(path, "wb") as f:
            f.write(data)
        o = self.objects.setdefault(key, {"acked": None, "maybe": set(), "size": {}, "history": []})
        o["maybe"].add(sha)
        o["size"][sha] = len(data)
        t = time.time()
        r = subprocess.run([SHOAL, "cp", "-q", "--cache", self.cluster.endpoint(node), path, self.url(key)],
                           env=self.cluster.env(), capture_output=True, text=True)
        o["history"].append((sha, f"n{node}", round(t - START, 1), r.returncode == 0))
        if r.returncode == 0:
            o["acked"], o["maybe"] = sha, {sha}
            self.counters.add("writes acknowledged")
            self.counters.add("bytes acknowledged", len(data))
        else:
            why = classify(r.stderr)
            self.counters.add(f"writes refused: {why}", sample=r.stderr.strip()[-300:] if why == "other" else None)

    def read(self, key):
        o = self.objects[key]
        node = self.cluster.random_up(self.rng)
        if node is None:
            time.sleep(0.5)
            return
        t = time.time()
        p = subprocess.Popen([SHOAL, "cat", "--cache", self.cluster.endpoint(node), self.url(key)],
                             env=self.cluster.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        h, n = hashlib.sha256(), 0
        while True:
            b = p.stdout.read(1 << 20)
            if not b:
                break
            h.update(b)
            n += len(b)
        err = p.stderr.read().decode(errors="replace")
        p.wait()
        if p.returncode != 0:
            if "HTTP 404" in err or "does not exist" in err:  # every object read was acknowledged
                self.counters.add("reads with wrong bytes", sample=f"{self.url(key)} via n{node} at {t - START:.1f} s: "
                                  f"not found; last acknowledged: {describe(o, o['acked'])}")
                return
            why = classify(err)
            self.counters.add(f"reads failed: {why}",
                              sample=f"{self.url(key)} via n{node} at {t - START:.1f} s: {err.strip()[-300:]}")
            return
        self.counters.add("reads done")
        self.counters.add("bytes read", n)
        possible = o["maybe"] | ({o["acked"]} if o["acked"] else set())
        if h.hexdigest() not in possible:
            # An older acknowledged version is still a wrong answer: the read came after the newer ack.
            self.counters.add("reads with wrong bytes", sample=f"{self.url(key)} via n{node} at {t - START:.1f} s: "
                              f"{describe(o, h.hexdigest())}; last acknowledged: {describe(o, o['acked'])}")

    def run(self):
        while time.time() < self.deadline:
            r = self.rng.random()
            readable = [k for k, o in self.objects.items() if o["acked"]]
            try:
                if r < 0.45 or not readable:
                    self.write(f"k{self.next}")
                    self.next += 1
                elif r < 0.60:
                    self.write(self.rng.choice(readable))
                    self.counters.add("overwrites attempted")
                else:
                    self.read(self.rng.choice(readable))
            except Exception as e:  # the soak's own failure: say it and go on
                self.counters.add("driver errors", sample=repr(e))


def describe(o, sha):
    """Which write of an object these bytes are: 'write 2 of 3 (n1 at 40.2 s, acknowledged)'."""
    h = o["history"]
    for i, (s, node, t, acked) in enumerate(h):
        if s == sha:
            return f"write {i + 1} of {len(h)} ({node} at {t} s, {'acknowledged' if acked else 'not acknowledged'})"
    return "bytes no write of it had"


def jittered(rng, every):
    return every * rng.uniform(0.6, 1.4)


def killer(cluster, counters, rng, every, stop):
    sig = signal.SIGKILL
    while not stop.wait(jittered(rng, every)):
        i = cluster.random_up(rng)
        if i is None:
            continue
        name = "SIGKILL" if sig == signal.SIGKILL else "SIGTERM"
        down = rng.uniform(2, 12)
        log(f"{name} n{i}, down {down:.0f} s (at {time.time() - START:.1f} s)")
        cluster.stop_node(i, sig)
        counters.add(f"members stopped by {name}")
        stop.wait(down)
        cluster.start_node(i)
        counters.add("members restarted")
        sig = signal.SIGTERM if sig == signal.SIGKILL else signal.SIGKILL


def store_faults(cluster, counters, rng, every, stop):
    while not stop.wait(jittered(rng, every)):
        log("store: 30% 503s, 3% dropped connections for 20 s")
        cluster.proxy("config", {"errorRate": 0.3, "dropRate": 0.03})
        counters.add("store fault periods")
        stop.wait(20)
        cluster.proxy("config", {"errorRate": 0, "dropRate": 0})


def disk_faults(cluster, counters, rng, every, stop):
    if not cluster.tmpfs:
        return
    balloon = os.path.join(cluster.tmpfs, "balloon")
    while not stop.wait(jittered(rng, every)):
        st = os.statvfs(cluster.tmpfs)
        free = st.f_bavail * st.f_frsize
        log(f"disk: filling n{DISK_NODE}'s disk ({free >> 20} MiB free) for 15 s")
        try:
            with open(balloon, "wb") as f:
                while True:  # to the last byte: ENOSPC ends it
                    f.write(b"\0" * (1 << 20))
        except OSError:
            pass
        counters.add("full-disk periods")
        stop.wait(15)
        os.unlink(balloon)


def disk_free(path):
    return shutil.disk_usage(path).free


def tree_bytes(path):
    """Bytes a directory's files take on disk."""
    total = 0
    for d, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(d, f)).st_blocks * 512
            except OSError:
                pass
    return total


def run_round(cluster, counters, a, r, deadline, tmp, rng, t0):
    """Workers and faults until `deadline` (or until the disk runs low); returns the workers."""
    stop = threading.Event()
    faults = [threading.Thread(target=f, args=(cluster, counters, random.Random(rng.random()), every, stop), daemon=True)
              for f, every in ((killer, a.kill_every), (store_faults, a.fault_every), (disk_faults, a.disk_every))]
    workers = [Worker(n, cluster, counters, a.seed * 100 + r, deadline, tmp, f"r{r}/") for n in range(a.workers)]
    for t in faults + workers:
        t.start()
    last = time.time()
    while any(w.is_alive() for w in workers):
        time.sleep(1)
        if disk_free(tmp) < a.min_free_gb << 30 and workers[0].deadline > time.time():
            log(f"round {r}: {disk_free(tmp) / (1 << 30):.1f} GiB free on the soak's filesystem; ending the round")
            counters.add("rounds ended early for disk space")
            for w in workers:
                w.deadline = time.time()
        if time.time() - last >= 60:
            last = time.time()
            with counters.mu:
                c = dict(counters.c)
            log(f"{(last - t0) / 60:.0f} min (round {r}): {c.get('writes acknowledged', 0)} writes acknowledged, "
                f"{c.get('reads done', 0)} reads, "
                f"{c.get('members stopped by SIGKILL', 0) + c.get('members stopped by SIGTERM', 0)} stops, "
                f"store's files {cluster.store_bytes() / (1 << 30):.1f} GiB")
    stop.set()
    for t in faults:
        t.join()
    return workers


def settle(cluster):
    """Faults off and every member up."""
    cluster.proxy("config", {"errorRate": 0, "dropRate": 0})
    for i in range(NODES):
        if not cluster.up[i]:
            cluster.start_node(i)


class Check:
    """What the store holds of every acknowledged write, summed over the rounds."""

    def __init__(self):
        self.lost, self.checked, self.unacked_absent = [], 0, 0
        self.bytes_checked, self.bytes_lost = 0, 0  # of each object's last acknowledged write

    def round(self, cluster, workers):
        for w in workers:
            for key, o in w.objects.items():
                self.object(cluster, w.url(key), o)

    def object(self, cluster, url, o):
        r = subprocess.run([SHOAL, "cat", url], env=cluster.env(direct=True), capture_output=True)
        got = hashlib.sha256(r.stdout).hexdigest() if r.returncode == 0 else None
        if o["acked"] is None:  # never acknowledged: absent or one of its attempts
            if got is not None and got not in o["maybe"]:
                self.lost.append(f"{url}: never acknowledged, yet the store has bytes no attempt wrote")
            self.unacked_absent += got is None
            return
        self.checked += 1
        acked_bytes = o["size"][o["acked"]]
        self.bytes_checked += acked_bytes
        if got is None or got not in o["maybe"]:
            self.bytes_lost += acked_bytes
        if got is None:
            self.lost.append(f"{url}: acknowledged, not in the store ({r.stderr.decode(errors='replace').strip()[-200:]})")
        elif got not in o["maybe"]:
            self.lost.append(f"{url}: the store has {describe(o, got)}, not the last acknowledged "
                             f"{describe(o, o['acked'])}")


def delete_round(cluster, counters, r):
    """Deletes the round's objects through a member; the store's listing must then be empty."""
    prefix = f"az://{CONTAINER}/r{r}/"
    rm = subprocess.run([SHOAL, "rm", "-r", "-q", "--cache", cluster.endpoint(0), prefix], env=cluster.env(),
                        capture_output=True, text=True)
    if rm.returncode != 0:
        counters.add("round deletes failed", sample=rm.stderr.strip()[-300:])
    ls = subprocess.run([SHOAL, "ls", "-r", prefix], env=cluster.env(direct=True), capture_output=True, text=True)
    left = [line for line in ls.stdout.splitlines() if line.strip()]
    if ls.returncode != 0:
        counters.add("round deletes failed", sample="listing after delete: " + ls.stderr.strip()[-300:])
    elif left:
        counters.add("objects left in the store after their round's delete", len(left), sample=left[0])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0], epilog="See the header of bench/soak.py.")
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--round-minutes", type=float, default=10,
                    help="minutes per round: its writes are checked in the store, then deleted")
    ap.add_argument("--workers", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--kill-every", type=float, default=40, help="seconds between member stops (jittered)")
    ap.add_argument("--fault-every", type=float, default=60, help="seconds between store fault periods")
    ap.add_argument("--disk-every", type=float, default=90, help="seconds between full-disk periods")
    ap.add_argument("--min-free-gb", type=int, default=10,
                    help="end the round (and the run) when the soak's filesystem has less free")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "soak.json"))
    ap.add_argument("--keep-logs", action="store_true",
                    help="keep the members', the store's and the proxy's logs in DIR-logs even when the run passes")
    a = ap.parse_args()
    if a.minutes <= 0 or a.workers <= 0 or a.round_minutes <= 0:
        ap.error("--minutes, --round-minutes and --workers must be positive")
    for f in (SHOAL, SHOALD, AZURITE):
        if not os.access(f, os.X_OK):
            sys.exit(f"soak: {f} is missing: run make test (it builds and installs the test servers)")

    tmp = tempfile.mkdtemp(prefix="shoal-soak-")
    if disk_free(tmp) < (a.min_free_gb + 5) << 30:
        shutil.rmtree(tmp, ignore_errors=True)
        sys.exit(f"soak: {disk_free(tmp) / (1 << 30):.1f} GiB free where it writes ({os.path.dirname(tmp)}); "
                 f"it needs --min-free-gb {a.min_free_gb} plus 5 (set TMPDIR or a lower --min-free-gb)")
    counters = Counters()
    cluster = Cluster(tmp, counters)

    def cleanup():
        cluster.stop_all()
        if kept_logs[0]:  # a failed run: its members', the store's and the proxy's logs stay
            os.makedirs(kept_logs[0], exist_ok=True)
            for f in os.listdir(tmp):
                if f.endswith(".log"):
                    shutil.copy(os.path.join(tmp, f), kept_logs[0])
        shutil.rmtree(tmp, ignore_errors=True)
    kept_logs = [None]
    atexit.register(cleanup)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))

    cluster.start()
    log(f"4 members up ({', '.join(cluster.endpoint(i) for i in range(NODES))}), store behind the proxy at "
        f"{cluster.proxy_port}; running {a.minutes:g} min in rounds of {a.round_minutes:g} with {a.workers} workers")
    t0 = time.time()
    rng = random.Random(a.seed)
    check, flush_s, rounds, ran = Check(), [], 0, 0.0
    # --minutes of load: the rounds' checks and deletes come on top.
    while ran < a.minutes * 60 - 1:
        if disk_free(tmp) < a.min_free_gb << 30:
            log(f"{disk_free(tmp) / (1 << 30):.1f} GiB free on the soak's filesystem: no new round")
            counters.add("rounds not started for disk space")
            break
        r, began = rounds, time.time()
        length = min(a.round_minutes * 60, a.minutes * 60 - ran)
        workers = run_round(cluster, counters, a, r, began + length, tmp, rng, t0)
        ran += time.time() - began
        rounds += 1
        cluster.store_bytes()
        settle(cluster)
        log(f"round {r}: faults off; waiting for every acknowledged write to be durable (shoal flush --wait)")
        t1 = time.time()
        flush = subprocess.run([SHOAL, "flush", "--wait", "-q", "--timeout", "1200", "--cache", cluster.endpoint(0),
                                f"az://{CONTAINER}/r{r}/"], env=cluster.env(), capture_output=True, text=True)
        flush_s.append(round(time.time() - t1, 1))
        if flush.returncode != 0:
            counters.add("flush failed", sample=flush.stderr.strip()[-300:])
        log(f"round {r}: checking its {sum(len(w.objects) for w in workers)} objects in the store, directly")
        lost_before = len(check.lost)
        check.round(cluster, workers)
        log(f"round {r}: {len(check.lost) - lost_before} lost; deleting its objects")
        delete_round(cluster, counters, r)

    stats = cluster.proxy("stats")
    with counters.mu:
        c = dict(counters.c)
        samples = dict(counters.samples)
    summary = {
        "minutes": round(ran / 60, 1), "rounds": rounds, "workers": a.workers, "seed": a.seed,
        "counts": dict(sorted(c.items())),
        "store": {"requests": stats.get("requests"), "injected_errors_503": stats.get("injected_errors"),
                  "dropped_connections": stats.get("dropped"), "files_peak_gib": round(cluster.store_peak / (1 << 30), 1)},
        "full_disk_fault": bool(cluster.tmpfs),
        "flush_seconds": flush_s,
        "objects_acknowledged": check.checked, "objects_never_acknowledged_absent": check.unacked_absent,
        "objects_lost": len(check.lost), "acknowledged_bytes": check.bytes_checked,
        "acknowledged_bytes_lost": check.bytes_lost,
        "lost": check.lost[:20], "samples": samples,
    }
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(summary, f, indent=1)
    print(json.dumps(summary, indent=1))
    bad = (check.lost or c.get("reads with wrong bytes") or c.get("flush failed") or not rounds
           or c.get("objects left in the store after their round's delete") or c.get("round deletes failed"))
    if bad or a.keep_logs:
        kept_logs[0] = tmp.rstrip("/") + "-logs"
        log(f"the members' and servers' logs are kept in {kept_logs[0]}")
    log(("FAILED: " if bad else "ok: ") + f"{len(check.lost)} of {check.checked} acknowledged objects lost "
        f"({check.bytes_lost:,} of {check.bytes_checked:,} acknowledged bytes), "
        f"{c.get('reads with wrong bytes', 0)} wrong reads, {rounds} rounds; summary in {a.out}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

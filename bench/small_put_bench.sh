#!/usr/bin/env bash
# Where a small write's time goes on the nodes: N PUTs of S bytes, serial on each of C
# connections (each waiting for its answer, as a `cp` through a mount does per file; C = 16 is
# what a mount with --async-close keeps in flight) through node a of a two-node
# cluster (--replicas 2) over Azurite behind the counting proxy. Prints the PUTs per second, the
# latency (mean, p50, p90 after the first 50), the CPU time each node spent per PUT (/proc/PID/stat, so the uploads
# to the store running meanwhile are in a's), and the context switches per PUT on each node by
# thread name (shoald-io, -serve, -copy, -upload, -peer...). A diagnostic, not a comparison:
# run it before and after a change to the write path, e.g. with node flags:
#
#   bash bench/small_put_bench.sh [--puts 600] [--size 64KiB] [--connections 1]
#        [--flags "--pack-below 0"]
set -euo pipefail
cd "$(dirname "$0")/.."
PUTS=600 SIZE=64KiB CONNECTIONS=1 NODE_FLAGS=""
BENCH=small_put_bench
source bench/lib.sh
declare -A FLAGS=([--puts]=PUTS [--size]=SIZE [--connections]=CONNECTIONS [--flags]=NODE_FLAGS)
parse_flags "$@"
SHOAL=${SHOAL:-build/bin/shoal} SHOALD=${SHOALD:-build/bin/shoald}
need "$SHOAL" "$SHOALD" testenv/node_modules/.bin/azurite-blob
BYTES=$(size_bytes "$SIZE")
TMP=$(mktemp -d "${TMPDIR:-/tmp}/small_put_bench.XXXXXX")
start_azurite
start_proxy
export AZURE_STORAGE_CONNECTION_STRING="$(azurite_connection "$AZ_PORT")"
"$SHOAL" mb az://puts > /dev/null
pa=$(free_port) pb=$(free_port)
for x in a b; do
  port=$pa; [[ $x == b ]] && port=$pb
  # shellcheck disable=SC2086
  AZURE_STORAGE_CONNECTION_STRING="$(azurite_connection "$PROXY_PORT")" "$SHOALD" --listen "127.0.0.1:$port" \
    --data-dir "$TMP/node-$x" --capacity 4GiB --replicas 2 --peers "a=127.0.0.1:$pa,b=127.0.0.1:$pb" \
    $NODE_FLAGS > "$TMP/node-$x.log" 2>&1 &
  PIDS+=($!)
done
wait_port "$pa" || die "node a did not start: $(tail -3 "$TMP/node-a.log")"
wait_port "$pb" || die "node b did not start: $(tail -3 "$TMP/node-b.log")"
log "$PUTS PUTs of $SIZE on $CONNECTIONS connection(s) through node a (flags: ${NODE_FLAGS:-none})"
python3 - "$pa" "${PIDS[-2]}" "${PIDS[-1]}" "$PUTS" "$BYTES" "$CONNECTIONS" <<'PY'
import glob, http.client, os, sys, threading, time, urllib.parse
port, pids, n, size, conns = int(sys.argv[1]), sys.argv[2:4], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
def cpu(p):
    f = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
def switches(p):  # by thread name
    by = {}
    for path in glob.glob(f"/proc/{p}/task/*/status"):
        try:
            name, count = None, 0
            for line in open(path):
                if line.startswith("Name:"): name = line.split(None, 1)[1].strip()
                if "ctxt_switches" in line: count += int(line.split()[1])
            by[name] = by.get(name, 0) + count
        except OSError:
            pass  # a thread that ended
    return by
body = os.urandom(size)
took, failed = [], []
def run(first):
    conn = http.client.HTTPConnection("127.0.0.1", port)
    for i in range(first, n, conns):
        url = urllib.parse.quote(f"az://puts/f{i:06d}", safe="")
        t = time.perf_counter()
        conn.request("PUT", "/v1/object?url=" + url, body=body)
        r = conn.getresponse(); r.read()
        took.append(time.perf_counter() - t)
        if r.status != 201: failed.append(f"PUT {i}: HTTP {r.status}")
cpu0, sw0, t0 = [cpu(p) for p in pids], [switches(p) for p in pids], time.perf_counter()
threads = [threading.Thread(target=run, args=(c,)) for c in range(conns)]
for t in threads: t.start()
for t in threads: t.join()
wall = time.perf_counter() - t0
cpu1, sw1 = [cpu(p) for p in pids], [switches(p) for p in pids]
if failed: sys.exit("; ".join(failed[:3]))
print(f"{n / wall:.0f} PUTs/s ({n} in {wall:.2f} s on {conns} connection(s))")
print(f"cpu per PUT: node a {1000 * (cpu1[0] - cpu0[0]) / n:.2f} ms, node b {1000 * (cpu1[1] - cpu0[1]) / n:.2f} ms")
for i, x in enumerate("ab"):
    per = {k: round((v - sw0[i].get(k, 0)) / n, 1) for k, v in sw1[i].items() if v - sw0[i].get(k, 0) > 0}
    print(f"context switches per PUT, node {x}: {sum(per.values()):.1f} {dict(sorted(per.items()))}")
s = sorted(took[50:]) or sorted(took)
print(f"latency: mean {1000 * sum(s) / len(s):.2f} ms, p50 {1000 * s[len(s) // 2]:.2f}, p90 {1000 * s[int(len(s) * .9)]:.2f}")
PY

#!/usr/bin/env bash
# Fan-out read: one client reads a warm object whose chunks are spread over 4 shoalds, each
# held to --egress-limit L, and the same through one shoald held to L. With the client
# fetching chunks from every owner at once, the cluster read should approach 4 L.
#
#   bash bench/cluster_read_bench.sh [--size 1GiB] [--limit 64MiB] [--runs 3] [--out bench/results]
#
# The object lives in a local directory (file://), so the store is not what is measured: the
# reads are warm (each node read it once before timing). Reads go to a pipe (wc -c checks the
# length); the bytes are checked once with sha256, untimed. Everything it starts is stopped by
# PID on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE=1GiB LIMIT=64MiB RUNS=3 OUT=bench/results
BENCH=cluster_read_bench
source bench/lib.sh
declare -A FLAGS=([--size]=SIZE [--limit]=LIMIT [--runs]=RUNS [--out]=OUT)
parse_flags "$@"
SHOAL=build/bin/shoal SHOALD=build/bin/shoald
for bin in "$SHOAL" "$SHOALD"; do
  [[ -x "$bin" ]] || { echo "cluster_read_bench: $bin is missing: run make build" >&2; exit 1; }
done
BYTES=$(size_bytes "$SIZE") LIMIT_BYTES=$(size_bytes "$LIMIT")
TMP=$(mktemp -d /tmp/cluster_read_bench.XXXXXX)

mkdir -p "$TMP/store"
log "writing a $SIZE object"
head -c "$BYTES" /dev/urandom > "$TMP/store/obj"
SUM=$(sha256sum < "$TMP/store/obj" | cut -d' ' -f1)
URL="file://$TMP/store/obj"

# start_cluster NAME N: N shoalds with --egress-limit, in one static cluster; sets ENTRY.
start_cluster() {
  local name="$1" n="$2" peers="" ports=() i
  for i in $(seq "$n"); do ports+=("$(free_port)"); peers+="${peers:+,}$name$i=127.0.0.1:${ports[-1]}"; done
  for i in $(seq "$n"); do
    "$SHOALD" --listen "127.0.0.1:${ports[$((i-1))]}" --data-dir "$TMP/$name$i" --capacity 4GiB \
      --egress-limit "$LIMIT" $([[ $n -gt 1 ]] && echo --peers "$peers") > "$TMP/$name$i.log" 2>&1 &
    PIDS+=($!)
  done
  for i in $(seq "$n"); do wait_port "${ports[$((i-1))]}" || { cat "$TMP/$name$i.log" >&2; exit 1; }; done
  sleep 0.5  # let the members settle on their first epoch
  ENTRY="127.0.0.1:${ports[0]}"
}

RESULTS="$TMP/results.tsv"; : > "$RESULTS"
verify_read() { verify "$1" "$SHOAL" cat --cache "$2" "$URL"; }

start_cluster one 1
ONE="$ENTRY"
start_cluster four 4
FOUR="$ENTRY"
timed "1 node" cold "$SHOAL" cat --cache "$ONE" "$URL"
timed "4 nodes" cold "$SHOAL" cat --cache "$FOUR" "$URL"
for run in $(seq "$RUNS"); do
  timed "1 node" warm "$SHOAL" cat --cache "$ONE" "$URL"
  timed "4 nodes" warm "$SHOAL" cat --cache "$FOUR" "$URL"
done
verify_read "1 node" "$ONE"
verify_read "4 nodes" "$FOUR"
log "both returned the object's exact bytes (sha256)"

mkdir -p "$OUT"
python3 - "$RESULTS" "$BYTES" "$OUT" "$SIZE" "$RUNS" "$LIMIT_BYTES" "$LIMIT" <<'PY'
import sys, json, statistics, datetime, os
path, size, out, size_text, runs, limit, limit_text = sys.argv[1:8]
size, limit = int(size), int(limit)
rows = [l.rstrip('\n').split('\t') for l in open(path)]
by = {}
for name, phase, secs in rows:
    by.setdefault((name, phase), []).append(float(secs))
mib = lambda b: b / 1048576
lines = ["| read through | nodes x limit | phase | MiB/s median (min-max) | of the nodes' combined limit |", "|---|---|---|---|---|"]
summary = {}
for name, nodes in (("1 node", 1), ("4 nodes", 4)):
    for phase in ("warm", "cold"):
        v = by.get((name, phase))
        if not v: continue
        r = [mib(size) / s for s in v]
        med = statistics.median(r)
        frac = med / (nodes * mib(limit))
        summary[f"{name} {phase}"] = {"mib_s": r, "fraction_of_limit": frac}
        lines.append(f"| {name} | {nodes} x {limit_text}/s | {phase} | {med:.0f} ({min(r):.0f}-{max(r):.0f}) | {frac:.2f} |")
when = datetime.datetime.utcnow().strftime('%Y-%m-%dT%H:%M:%SZ')
md = "\n".join(lines) + f"\n\n{size_text} object in a local directory (file://), `shoal cat --cache` to a pipe, " \
     f"every shoald at --egress-limit {limit_text}; {runs} warm runs (cold: one), {when}, {os.cpu_count()} cores. " \
     "Cold reads also fill each node's disk. Bytes checked once with sha256.\n"
open(os.path.join(out, "cluster_read_bench.md"), "w").write(md)
json.dump({"size": size, "egress_limit": limit, "runs": int(runs), "date": when, "results": summary},
          open(os.path.join(out, "cluster_read_bench.json"), "w"), indent=1)
print(md)
PY

#!/usr/bin/env bash
# Fan-out read: one client reads an object whose chunks are spread over 4 shoalds, each held
# to --egress-limit L, and the same through one shoald held to L, cold and warm. With the
# client fetching chunks from every owner at once, the cluster read should approach 4 L.
# Scale-out: a 4th node joins a warm cluster of 3; the bytes the store serves for the next
# read of the object are what the join cost.
#
#   bash bench/cluster_read_bench.sh [--size 1GiB] [--limit 64MiB] [--runs 3] [--out bench/results]
#
# The object lives in a local directory (file://), so the store is not what is measured. Reads go to a pipe (wc -c checks the
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

# start_cluster NAME N [MEMBERS] [FLAGS...]: nodes 1..N of a static cluster of MEMBERS (default
# N) nodes NAME1..NAMEm, ports picked on first use; sets ENTRY and appends to CLUSTER_PIDS.
# Node N+1.. can join later: start_node NAME I MEMBERS.
declare -A PORT
start_node() {
  local name="$1" i="$2" members="$3" peers="" j; shift 3
  for j in $(seq "$members"); do
    [[ -n "${PORT[$name$j]:-}" ]] || PORT[$name$j]=$(free_port)
    peers+="${peers:+,}$name$j=127.0.0.1:${PORT[$name$j]}"
  done
  "$SHOALD" --listen "127.0.0.1:${PORT[$name$i]}" --data-dir "$TMP/$name$i" --capacity 4GiB \
    $([[ $members -gt 1 ]] && echo --peers "$peers") "$@" > "$TMP/$name$i.log" 2>&1 &
  PIDS+=($!); CLUSTER_PIDS+=($!)
  wait_port "${PORT[$name$i]}" || { cat "$TMP/$name$i.log" >&2; exit 1; }
}
start_cluster() {
  local name="$1" n="$2" members="${3:-$2}" i; shift 2; [[ $# -gt 0 ]] && shift
  for i in $(seq "$n"); do start_node "$name" "$i" "$members" "$@"; done
  ENTRY="127.0.0.1:${PORT[${name}1]}"
  (( members > 1 )) && wait_members "$name" "$n" "$members"
  return 0
}
# wait_members NAME N MEMBERS: until nodes 1..N all see MEMBERS members at the same epoch (a read
# before that can reach a node that does not know it owns a chunk yet, and fetch it twice).
wait_members() {
  local name="$1" n="$2" members="$3" i epoch agreed
  for _ in $(seq 300); do
    agreed=1 epoch=""
    for i in $(seq "$n"); do
      local ep="127.0.0.1:${PORT[$name$i]}"
      [[ "$(node_metric "$ep" shoal_cluster_members)" == "$members" ]] || { agreed=0; break; }
      local e; e=$(node_metric "$ep" shoal_cluster_epoch)
      [[ -z "$epoch" || "$e" == "$epoch" ]] || { agreed=0; break; }
      epoch=$e
    done
    (( agreed )) && return 0
    sleep 0.1
  done
  die "$name: the nodes did not agree on $members members in 30 s"
}
stop_clusters() {
  kill "${CLUSTER_PIDS[@]}" 2> /dev/null || true; wait "${CLUSTER_PIDS[@]}" 2> /dev/null || true
  CLUSTER_PIDS=()
}
node_metric() { curl -sf "http://$1/metrics" | awk -v n="$2" '$1 == n { print $2 }'; }
# store_bytes NAME N: bytes nodes NAME1..N read from the store, in all.
store_bytes() {
  local total=0 i
  for i in $(seq "$2"); do total=$((total + $(node_metric "127.0.0.1:${PORT[$1$i]}" shoal_store_get_bytes_total))); done
  echo "$total"
}

RESULTS="$TMP/results.tsv"; : > "$RESULTS"
verify_read() { verify "$1" "$SHOAL" cat --cache "$2" "$URL"; }
CLUSTER_PIDS=()
for run in $(seq "$RUNS"); do  # every run from empty caches: one cold read, then a warm one
  start_cluster "one$run" 1 1 --egress-limit "$LIMIT"
  ONE="$ENTRY"
  start_cluster "four$run" 4 4 --egress-limit "$LIMIT"
  FOUR="$ENTRY"
  timed "1 node" cold "$SHOAL" cat --cache "$ONE" "$URL"
  timed "4 nodes" cold "$SHOAL" cat --cache "$FOUR" "$URL"
  timed "1 node" warm "$SHOAL" cat --cache "$ONE" "$URL"
  timed "4 nodes" warm "$SHOAL" cat --cache "$FOUR" "$URL"
  if (( run == RUNS )); then verify_read "1 node" "$ONE"; verify_read "4 nodes" "$FOUR"; fi
  stop_clusters

  # Scale-out: a fourth node joins a warm cluster of three; the object is read again. What the
  # store serves for that second read is what the join cost (a node that starts empty and
  # fetched its share from the store would cost a quarter of the object).
  start_cluster "grow$run" 3 3
  "$SHOAL" cat --cache "$ENTRY" "$URL" > /dev/null
  before=$(store_bytes "grow$run" 3)
  start_node "grow$run" 4 4
  wait_members "grow$run" 4 4
  (( before >= BYTES )) || die "scale-out: the cold read cost the store $before bytes, less than the object: the count is wrong"
  verify "scale-out" "$SHOAL" cat --cache "$ENTRY" "$URL"
  reread=$(( $(store_bytes "grow$run" 4) - before ))
  moved=$(node_metric "127.0.0.1:${PORT[grow${run}4]}" shoal_previous_owner_hits_total)
  (( moved > 0 )) || die "scale-out: the new node served no chunk it took from a previous owner"
  printf '%s\t%s\t%s\n' "scale-out" reread "$reread" >> "$RESULTS"
  log "scale-out run $run: the store served $((reread >> 20)) MiB for the read after the join (cold: $((before >> 20)) MiB); the new node took $moved chunks from their previous owners"
  stop_clusters
done
log "both returned the object's exact bytes (sha256)"

mkdir -p "$OUT"
python3 - "$RESULTS" "$BYTES" "$OUT" "$SIZE" "$RUNS" "$LIMIT_BYTES" "$LIMIT" <<'PY'
import sys, json, statistics, datetime, os
path, size, out, size_text, runs, limit, limit_text = sys.argv[1:8]
size, limit = int(size), int(limit)
rows = [l.rstrip('\n').split('\t') for l in open(path)]
by = {}
reread = [int(float(v)) for name, phase, v in rows if name == "scale-out"]
for name, phase, secs in rows:
    if name != "scale-out":
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
if reread:
    lines += ["", "| scale-out: a 4th node joins a warm cluster of 3 | store bytes for the next read, median (min-max) | of the object |",
              "|---|---|---|",
              f"| shoal | {statistics.median(reread) / 2**20:.1f} MiB ({min(reread) / 2**20:.1f}-{max(reread) / 2**20:.1f}) | "
              f"{statistics.median(reread) / size:.3f} |"]
md = "\n".join(lines) + f"\n\n{size_text} object in a local directory (file://), `shoal cat --cache` to a pipe, " \
     f"every shoald at --egress-limit {limit_text} (scale-out: no limit); {runs} runs, each from empty caches (a cold " \
     f"read, then a warm one), {when}, {os.cpu_count()} cores. Cold reads also fill each node's disk. Bytes checked " \
     "with sha256.\n"
open(os.path.join(out, "cluster_read_bench.md"), "w").write(md)
json.dump({"size": size, "egress_limit": limit, "runs": int(runs), "date": when, "results": summary,
           "scale_out_reread_bytes": reread},
          open(os.path.join(out, "cluster_read_bench.json"), "w"), indent=1)
print(md)
PY

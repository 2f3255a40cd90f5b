#!/usr/bin/env bash
# One node holding thousands of connections: a reader gets a warm object through a shoald alone,
# then while the same node holds --idle keep-alive connections that never send a byte and
# --slow connections that send their request header one byte a second (shoal-load, one
# process). Reported: the reader's rate under load against its rate alone, the node's threads
# and peak RSS under load, and how many slow connections the node closed at its header timeout.
#
#   bash bench/connections_bench.sh [--size 256MiB] [--runs 3] [--idle 10000] [--slow 1000]
#        [--out bench/results]
#
# The object is on the local-directory backend (file://): a warm read never reaches the store,
# so only the node is measured. The reader is `shoal cat --cache` (8 ranged requests in flight).
# Everything it starts is stopped by PID on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE=256MiB RUNS=3 OUT=bench/results IDLE=10000 SLOW=1000
BENCH=connections_bench
source bench/lib.sh
declare -A FLAGS=([--size]=SIZE [--runs]=RUNS [--out]=OUT [--idle]=IDLE [--slow]=SLOW)
parse_flags "$@"
SHOAL=build/bin/shoal SHOALD=build/bin/shoald LOAD=build/bin/shoal-load
need "$SHOAL" "$SHOALD" "$LOAD"
BYTES=$(size_bytes "$SIZE")
TMP=$(mktemp -d /tmp/connections_bench.XXXXXX)
mkdir -p "$TMP/store"
head -c "$BYTES" /dev/urandom > "$TMP/store/obj"
SUM=$(sha256sum < "$TMP/store/obj" | cut -d' ' -f1)
URL="file://$TMP/store/obj"

NODE_PORT=$(free_port)
"$SHOALD" --listen "127.0.0.1:$NODE_PORT" --data-dir "$TMP/data" --capacity 4GiB --header-timeout 10 \
  > "$TMP/shoald.log" 2>&1 &
NODE_PID=$!; PIDS+=($NODE_PID)
wait_port "$NODE_PORT" || { cat "$TMP/shoald.log" >&2; exit 1; }
EP="127.0.0.1:$NODE_PORT"
metric() { curl -sS --max-time 10 "http://$EP/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
status() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$NODE_PID/status"; }

verify "shoal cat --cache (cold)" "$SHOAL" cat --cache "$EP" "$URL"  # fills the cache
RESULTS="$TMP/results.tsv"; : > "$RESULTS"
for run in $(seq "$RUNS"); do timed "shoal cat --cache" alone "$SHOAL" cat --cache "$EP" "$URL"; done
threads_alone=$(status Threads)

log "opening $IDLE idle and $SLOW slow connections (shoal-load)"
"$LOAD" --node "$EP" --idle "$IDLE" --slow "$SLOW" --slow-interval-ms 1000 --seconds 25 > "$TMP/load.json" 2> "$TMP/load.err" &
LOAD_PID=$!; PIDS+=($LOAD_PID)
want=$(( IDLE + SLOW ))
for _ in $(seq 600); do
  open=$(metric shoal_connections_open); [[ -n "$open" ]] && (( open >= want )) && break; sleep 0.1
done
(( open >= want )) || die "the node holds $open connections, not $want: $(cat "$TMP/load.err")"
log "the node holds $open connections"
threads_max=0
for run in $(seq "$RUNS"); do
  timed "shoal cat --cache" loaded "$SHOAL" cat --cache "$EP" "$URL"
  t=$(status Threads); (( t > threads_max )) && threads_max=$t
done
slow_timeouts_during=$(metric 'shoal_connection_timeouts_total{phase="header"}')
verify "shoal cat --cache (loaded)" "$SHOAL" cat --cache "$EP" "$URL"
wait "$LOAD_PID" || die "shoal-load failed: $(cat "$TMP/load.err")"
rss_peak_kb=$(status VmHWM | tr -d ' kB')
slow_timeouts=$(metric 'shoal_connection_timeouts_total{phase="header"}')
log "node: $threads_alone threads alone, at most $threads_max loaded; peak RSS $(( rss_peak_kb / 1024 )) MiB; header timeouts $slow_timeouts"

mkdir -p "$OUT"
python3 - "$RESULTS" "$BYTES" "$OUT" "$SIZE" "$RUNS" "$TMP/load.json" "$threads_alone" "$threads_max" \
  "$rss_peak_kb" "$slow_timeouts" "$slow_timeouts_during" "$IDLE" "$SLOW" <<'PY'
import sys, json, statistics, datetime, os
(path, size, out, size_text, runs, load_path, threads_alone, threads_max, rss_kb, slow_timeouts,
 slow_during, idle, slow) = sys.argv[1:14]
size = int(size)
rows = [l.rstrip('\n').split('\t') for l in open(path)]
rate = {ph: [size / 1048576 / float(s) for n, p, s in rows if p == ph] for ph in ("alone", "loaded")}
load = json.load(open(load_path))
med = {p: statistics.median(v) for p, v in rate.items()}
cores = os.cpu_count()
when = datetime.datetime.utcnow().strftime('%Y-%m-%dT%H:%M:%SZ')
lines = [
  "| measure | value |", "|---|---|",
  f"| warm read alone, MiB/s median (min-max) | {med['alone']:.0f} ({min(rate['alone']):.0f}-{max(rate['alone']):.0f}) |",
  f"| warm read with {int(idle):,} idle + {int(slow):,} slow connections held | {med['loaded']:.0f} ({min(rate['loaded']):.0f}-{max(rate['loaded']):.0f}) |",
  f"| loaded / alone | {med['loaded'] / med['alone']:.2f} |",
  f"| node threads alone / loaded (cores: {cores}) | {threads_alone} / {threads_max} |",
  f"| node peak RSS | {int(rss_kb) / 1024:.0f} MiB |",
  f"| slow connections closed by the header timeout (10 s) | {slow_timeouts} of {load['slow_opened']} (0 while the reads ran: {slow_during}) |",
  f"| idle connections still open at the end | {load['idle_open_at_end']} of {load['idle_opened']} |",
]
md = "\n".join(lines) + f"\n\n{size_text} object on file://, {runs} runs each, {when}, {cores} cores; reader `shoal cat --cache`.\n"
open(os.path.join(out, "connections_bench.md"), "w").write(md)
json.dump({"size": size, "runs": int(runs), "date": when, "idle": int(idle), "slow": int(slow),
           "rates_mib_s": rate, "ratio": med['loaded'] / med['alone'], "threads_alone": int(threads_alone),
           "threads_loaded": int(threads_max), "rss_peak_kib": int(rss_kb), "header_timeouts": int(slow_timeouts),
           "header_timeouts_during_reads": int(slow_during), "load": load},
          open(os.path.join(out, "connections_bench.json"), "w"), indent=1)
print(md)
PY

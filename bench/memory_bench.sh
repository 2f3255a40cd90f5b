#!/usr/bin/env bash
# A node's memory over many small writes: --rounds rounds of --writes writes of a few bytes
# each (8 keep-alive connections, PUT /v1/object), every one waited for until durable, the
# store a local directory (file://) so only the node is measured. After each round: the node's
# RSS and peak RSS (/proc/PID/status), and what it keeps per write (cached chunks, settled
# writes it is home of, aliases). Bounded memory means the later rounds add nothing: reported
# is the RSS after the last round against the RSS after the first.
#
#   bash bench/memory_bench.sh [--rounds 4] [--writes 100000] [--max-chunks 65536]
#        [--shoald build/bin/shoald] [--out bench/results]
#
# --max-chunks is passed to the node (its default, 4,194,304, is far above what a run writes;
# the figure here shows the bound at work). --shoald runs another build, e.g. an older one to
# compare. Everything it starts is stopped by PID on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=4 WRITES=100000 MAX_CHUNKS=65536 OUT=bench/results SHOALD=build/bin/shoald
BENCH=memory_bench
source bench/lib.sh
declare -A FLAGS=([--rounds]=ROUNDS [--writes]=WRITES [--max-chunks]=MAX_CHUNKS [--out]=OUT [--shoald]=SHOALD)
parse_flags "$@"
need "$SHOALD"
TMP=$(mktemp -d /tmp/memory_bench.XXXXXX)
mkdir -p "$TMP/store"
PORT=$(free_port)
FLAGS_MAX=()
"$SHOALD" --help | grep -q -- --max-chunks && FLAGS_MAX=(--max-chunks "$MAX_CHUNKS")
# --metadata-ttl 5: what the node remembers of each name expires within the pause below.
"$SHOALD" --listen "127.0.0.1:$PORT" --data-dir "$TMP/data" --no-fsync --chunk-size 1MiB --capacity 1GiB \
  --metadata-ttl 5 "${FLAGS_MAX[@]}" > "$TMP/shoald.log" 2>&1 &
NODE_PID=$!; PIDS+=($NODE_PID)
wait_port "$PORT" || { cat "$TMP/shoald.log" >&2; exit 1; }
EP="127.0.0.1:$PORT"
metric() { curl -sS --max-time 10 "http://$EP/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
status() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$NODE_PID/status"; }

RESULTS="$TMP/rounds.tsv"; : > "$RESULTS"
echo -e "0\t$(status VmRSS)\t$(status VmHWM)\t0\t0\t0" >> "$RESULTS"
for round in $(seq "$ROUNDS"); do
  log "round $round: $WRITES writes"
  python3 - "$EP" "$TMP/store/r$round" "$WRITES" <<'PY'
import http.client, sys, threading, urllib.parse
endpoint, root, total = sys.argv[1], sys.argv[2], int(sys.argv[3])
host, port = endpoint.rsplit(":", 1)
errors = []
def writer(w, count):
    c = http.client.HTTPConnection(host, int(port), timeout=60)
    for i in range(count):
        url = "file://%s/w%d/%d" % (root, w, i)
        c.request("PUT", "/v1/object?url=" + urllib.parse.quote(url, safe=""), body=("object %d/%d" % (w, i)).encode())
        r = c.getresponse(); r.read()
        if r.status != 201:
            errors.append("%s: HTTP %d" % (url, r.status)); return
threads = [threading.Thread(target=writer, args=(w, total // 8 + (w < total % 8))) for w in range(8)]
for t in threads: t.start()
for t in threads: t.join()
if errors: sys.exit("a write failed: " + errors[0])
PY
  for _ in $(seq 600); do [[ "$(metric shoal_staged_objects)" == "0" ]] && break; sleep 0.5; done
  [[ "$(metric shoal_staged_objects)" == "0" ]] || die "writes still not durable after 300 s"
  sleep 6  # past --metadata-ttl
  echo -e "$round\t$(status VmRSS)\t$(status VmHWM)\t$(metric shoal_cache_chunks)\t$(metric shoal_homed_entries)\t$(metric shoal_memory_aliases)" >> "$RESULTS"
  log "round $round: RSS $(status VmRSS) KiB"
done

mkdir -p "$OUT"
python3 - "$RESULTS" "$OUT" "$WRITES" "$MAX_CHUNKS" "${#FLAGS_MAX[@]}" <<'PY'
import sys, json, datetime, os
path, out, writes, max_chunks, bounded = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5] != "0"
rows = [[int(x or 0) for x in l.split('\t')] for l in open(path)]
when = datetime.datetime.utcnow().strftime('%Y-%m-%dT%H:%M:%SZ')
lines = ["| after round | writes | RSS MiB | peak RSS MiB | cached chunks | settled writes kept | aliases |",
         "|---|---|---|---|---|---|---|"]
for r, rss, hwm, chunks, homed, aliases in rows:
    lines.append(f"| {r} | {r * writes:,} | {rss / 1024:.0f} | {hwm / 1024:.0f} | {chunks:,} | {homed:,} | {aliases:,} |")
first, last = rows[1][1], rows[-1][1]
ratio = last / first
md = ("\n".join(lines) + f"\n\nRSS after the last round / after the first: {ratio:.2f} "
      f"({'--max-chunks ' + max_chunks if bounded else 'a node without --max-chunks'}), {when}.\n")
open(os.path.join(out, "memory_bench.md"), "w").write(md)
json.dump({"date": when, "writes_per_round": writes, "max_chunks": int(max_chunks) if bounded else None,
           "rounds": [dict(zip(["round", "rss_kib", "peak_kib", "cached_chunks", "homed_entries", "aliases"], r)) for r in rows],
           "last_over_first": ratio}, open(os.path.join(out, "memory_bench.json"), "w"), indent=1)
print(md)
PY

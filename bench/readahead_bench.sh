#!/usr/bin/env bash
# One sequential reader of a cold object through a node, in front of a store that is far away:
# each connection held to --bandwidth after --latency-ms (the fault proxy), so a store's rate
# grows with the fetches at once. Compares the node's read-ahead as it is (each object's window
# grows from 4 chunks up to --readahead while its readers catch up with it) with the window held
# at 4 (`--readahead 4`, what every node did before), and with `shoal cat` reading the store
# directly (8 ranged requests at once, keeping nothing).
#
#   bash bench/readahead_bench.sh [--size 256MiB] [--runs 3] [--latency-ms 50] [--bandwidth 20MB]
#        [--fetch-threads 16] [--out bench/results]
#
# The reader is one `curl` GET of the whole object (a reader that asks for one thing at a time,
# like a file read through a mount or `open().read()`), to a fresh node with an empty cache each
# time. --fetch-threads is the node's bound on fetches at once (its default is 32, or 2 per core
# on larger hosts). Writes OUT/readahead_bench.{json,md}; every reader's bytes are checked once.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE=256MiB RUNS=3 OUT=bench/results LATENCY_MS=50 BANDWIDTH=20MB FETCH_THREADS=16
BENCH=readahead_bench
source bench/lib.sh
declare -A FLAGS=([--size]=SIZE [--runs]=RUNS [--out]=OUT [--latency-ms]=LATENCY_MS [--bandwidth]=BANDWIDTH
                  [--fetch-threads]=FETCH_THREADS)
parse_flags "$@"
SHOAL=build/bin/shoal SHOALD=build/bin/shoald
need "$SHOAL" "$SHOALD" testenv/node_modules/.bin/azurite-blob
BYTES=$(size_bytes "$SIZE")
TMP=$(mktemp -d /tmp/readahead_bench.XXXXXX)

start_azurite
export AZURE_STORAGE_CONNECTION_STRING="$(azurite_connection "$AZ_PORT")"
log "writing a $SIZE object to Azurite"
head -c "$BYTES" /dev/urandom > "$TMP/obj"
"$SHOAL" mb az://readahead > /dev/null
"$SHOAL" cp -q "$TMP/obj" az://readahead/obj
SUM=$(sha256sum < "$TMP/obj" | cut -d' ' -f1)
rm -f "$TMP/obj"
start_proxy --latency-ms "$LATENCY_MS" --bandwidth "$BANDWIDTH"
STORE="$(azurite_connection "$PROXY_PORT")"

# node_read NAME CHECK [SHOALD FLAGS...]: a fresh node in front of the proxy, one cold GET of
# the object through it (timed), then the node stopped and its cache removed.
node_read() {
  local name="$1" check="$2"; shift 2
  local port dir pid
  port=$(free_port); dir="$TMP/node-$RANDOM"
  AZURE_STORAGE_CONNECTION_STRING="$STORE" "$SHOALD" --listen "127.0.0.1:$port" --data-dir "$dir" \
    --capacity 8GiB --fetch-threads "$FETCH_THREADS" "$@" > "$TMP/shoald.log" 2>&1 &
  pid=$!; PIDS+=($pid)
  wait_port "$port" || { cat "$TMP/shoald.log" >&2; exit 1; }
  local url="http://127.0.0.1:$port/v1/object?url=az%3A%2F%2Freadahead%2Fobj"
  if [[ $check == check ]]; then
    verify "$name" curl -sSf "$url"
  else
    timed "$name" cold curl -sSf "$url"
  fi
  kill "$pid"; wait "$pid" 2> /dev/null || true
  rm -rf "$dir"
  # The next node's chunks go into new pages too, not into the ones just freed (on a VM that
  # hands freed memory back to its host, those are cheaper to fill: bench/limits.sh).
  sleep 5
}

RESULTS="$TMP/results.tsv"; : > "$RESULTS"
for run in $(seq "$RUNS"); do
  # Alternate the order, so neither setting always runs on a machine warmed by the other.
  if (( run % 2 )); then
    node_read "node, read-ahead growing" time
    node_read "node, read-ahead held at 4" time --readahead 4
  else
    node_read "node, read-ahead held at 4" time --readahead 4
    node_read "node, read-ahead growing" time
  fi
  timed "shoal cat, store directly" cold env AZURE_STORAGE_CONNECTION_STRING="$STORE" "$SHOAL" cat az://readahead/obj
done
node_read "node, read-ahead growing" check
node_read "node, read-ahead held at 4" check --readahead 4
log "every reader returned the object's exact bytes (sha256)"

mkdir -p "$OUT"
python3 - "$RESULTS" "$BYTES" "$OUT" "$SIZE" "$RUNS" "$LATENCY_MS" "$BANDWIDTH" "$FETCH_THREADS" <<'PY'
import sys, json, statistics, datetime, os
path, size, out, size_text, runs, latency, bandwidth, fetch_threads = sys.argv[1:9]
size = int(size)
by = {}
for line in open(path):
    name, phase, secs = line.rstrip("\n").split("\t")
    by.setdefault(name, []).append(size / 2**20 / float(secs))
order = ["node, read-ahead growing", "node, read-ahead held at 4", "shoal cat, store directly"]
base = statistics.median(by["node, read-ahead held at 4"])
lines = ["| reader | MiB/s median (min-max) | vs read-ahead held at 4 |", "|---|---|---|"]
for name in order:
    v = by[name]
    lines.append(f"| {name} | {statistics.median(v):.0f} ({min(v):.0f}-{max(v):.0f}) | {statistics.median(v) / base:.2f} |")
date = datetime.datetime.utcnow().strftime("%Y-%m-%dT%H:%M:%SZ")
md = "\n".join(lines) + (
    f"\n\nOne cold {size_text} object read by one `curl` GET through a fresh node (`--fetch-threads "
    f"{fetch_threads}`), the store (Azurite) behind the fault proxy: {latency} ms before each answer, "
    f"{bandwidth}/s per connection. `shoal cat` reads the store directly, 8 ranges at once. {runs} run(s), "
    f"{date}, {os.cpu_count()} cores. `bash bench/readahead_bench.sh` gives these figures.\n")
open(os.path.join(out, "readahead_bench.md"), "w").write(md)
json.dump({"date": date, "size": size_text, "runs": int(runs), "latency_ms": int(latency), "bandwidth": bandwidth,
           "fetch_threads": int(fetch_threads), "mib_s": by}, open(os.path.join(out, "readahead_bench.json"), "w"),
          indent=1)
print(md)
PY

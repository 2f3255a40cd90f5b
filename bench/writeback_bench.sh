#!/usr/bin/env bash
# Checkpoint write-back: W writers of S bytes each, through shoald (write-back) against the
# copy-script way (dd conv=fsync to local disk, then `rclone copy` to the store), in one run,
# on the same disk and the same shaped Azurite.
#
#   bash bench/writeback_bench.sh [--size 256MiB] [--writers 4] [--runs 3]
#        [--latency-ms 20] [--bandwidth 100MB] [--out bench/results]
#
# time-to-unblock: until every writer has returned (dd: data fsynced on local disk; shoal cp
#   --cache: data fsynced on the node's disk and journaled).
# time-to-durable: until every byte is committed in the object store (baseline: dd, then
#   rclone copy of the directory; shoal: until `shoal flush --wait` returns).
# The store is Azurite behind src/testing/fault_proxy.js (--latency-ms to first byte,
# --bandwidth per connection), for both. Every object is checked with sha256 afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE=256MiB WRITERS=4 RUNS=3 LATENCY_MS=20 BANDWIDTH=100MB OUT=bench/results
BENCH=writeback_bench
source bench/lib.sh
declare -A FLAGS=([--size]=SIZE [--writers]=WRITERS [--runs]=RUNS [--latency-ms]=LATENCY_MS [--bandwidth]=BANDWIDTH [--out]=OUT)
parse_flags "$@"
SHOAL=build/bin/shoal SHOALD=build/bin/shoald RCLONE=${RCLONE:-rclone}
for bin in "$SHOAL" "$SHOALD" testenv/node_modules/.bin/azurite-blob; do
  [[ -x "$bin" ]] || { echo "writeback_bench: $bin is missing: run make bench" >&2; exit 1; }
done
command -v "$RCLONE" > /dev/null || { echo "writeback_bench: rclone not found: run make deps-test" >&2; exit 1; }
BYTES=$(size_bytes "$SIZE")
# Everything on the disk under bench/ (the same disk for dd, rclone's source and shoald).
TMP=$(mktemp -d "$PWD/bench/.writeback.XXXXXX")
now() { date +%s.%N; }
secs() { python3 -c "print(round($2-$1,3))"; }

start_azurite
start_proxy --latency-ms "$LATENCY_MS" --bandwidth "$BANDWIDTH"
ACCOUNT=$AZ_ACCOUNT KEY=$AZ_KEY
SHAPED="http://127.0.0.1:$PROXY_PORT/$ACCOUNT"
export AZURE_STORAGE_CONNECTION_STRING="$(azurite_connection "$PROXY_PORT")"
DIRECT="$(azurite_connection "$AZ_PORT")"
cat > "$TMP/rclone.conf" <<EOF
[az]
type = azureblob
account = $ACCOUNT
key = $KEY
endpoint = $SHAPED
use_emulator = true
EOF
# rclone as tuned in bench/copy_bench.sh, with one transfer per writer.
RCLONE_FLAGS=(-q --no-check-dest --transfers "$WRITERS" --azureblob-chunk-size 8Mi
              --azureblob-upload-concurrency 16 --azureblob-disable-checksum)
log "Azurite on $AZ_PORT, shaped proxy on $PROXY_PORT (${LATENCY_MS} ms, $BANDWIDTH/s per connection)"
AZURE_STORAGE_CONNECTION_STRING="$DIRECT" "$SHOAL" mb az://wbbench > /dev/null

NODE_PORT=$(free_port)
"$SHOALD" --listen "127.0.0.1:$NODE_PORT" --data-dir "$TMP/shoald" --capacity 16GiB ${SHOALD_FLAGS:-} > "$TMP/shoald.log" 2>&1 &
PIDS+=($!)
wait_port "$NODE_PORT" || { cat "$TMP/shoald.log" >&2; die "shoald did not start"; }
NODE="127.0.0.1:$NODE_PORT"

log "writing $WRITERS source files of $SIZE"
mkdir -p "$TMP/src"
for i in $(seq "$WRITERS"); do head -c "$BYTES" /dev/urandom > "$TMP/src/part-$i.bin"; done
declare -A SUM
for i in $(seq "$WRITERS"); do SUM[$i]=$(sha256sum < "$TMP/src/part-$i.bin" | cut -d' ' -f1); done
cat "$TMP"/src/*.bin > /dev/null  # both systems read their sources from the page cache

RESULTS="$TMP/results.tsv"; : > "$RESULTS"
record() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >> "$RESULTS"; log "$(printf '%-22s run %s  %-9s %7.2f s' "$1" "$2" "$3" "$4")"; }
check() { # check PREFIX: every part in the store is byte-identical (read straight from Azurite)
  for i in $(seq "$WRITERS"); do
    got=$(AZURE_STORAGE_CONNECTION_STRING="$DIRECT" "$SHOAL" cat "az://wbbench/$1/part-$i.bin" | sha256sum | cut -d' ' -f1)
    [[ "$got" == "${SUM[$i]}" ]] || die "az://wbbench/$1/part-$i.bin differs from its source"
  done
}

# Lets the disk finish what the last phase left (write-back, discards of deleted files), which
# otherwise lands on whichever system runs next.
settle() { sync; sleep 3; }
baseline() { # dd conv=fsync of every part in parallel, then rclone copy of the directory
  local run="$1" dir="$TMP/local-$1" t0 t1 t2
  mkdir -p "$dir"; settle
  t0=$(now)
  for i in $(seq "$WRITERS"); do
    dd if="$TMP/src/part-$i.bin" of="$dir/part-$i.bin" bs=8M conv=fsync status=none &
  done
  wait_jobs
  t1=$(now)
  "$RCLONE" --config "$TMP/rclone.conf" copy "${RCLONE_FLAGS[@]}" "$dir" "az:wbbench/base-$run"
  t2=$(now)
  record "dd + rclone copy" "$run" unblock "$(secs "$t0" "$t1")"
  record "dd + rclone copy" "$run" durable "$(secs "$t0" "$t2")"
  check "base-$run"
  rm -rf "$dir"
}
shoal_run() { # shoal cp --cache of every part in parallel, then flush --wait
  local run="$1" t0 t1 t2
  settle
  t0=$(now)
  for i in $(seq "$WRITERS"); do
    "$SHOAL" cp -q --cache "$NODE" "$TMP/src/part-$i.bin" "az://wbbench/shoal-$run/" &
  done
  wait_jobs
  t1=$(now)
  "$SHOAL" flush -q --wait --cache "$NODE" "az://wbbench/shoal-$run/" > /dev/null
  t2=$(now)
  record "shoal (write-back)" "$run" unblock "$(secs "$t0" "$t1")"
  record "shoal (write-back)" "$run" durable "$(secs "$t0" "$t2")"
  check "shoal-$run"
}
# Waits for the background writers; fails if any did.
wait_jobs() { local p; for p in $(jobs -pr); do [[ " ${PIDS[*]} " == *" $p "* ]] && continue; wait "$p" || die "a writer failed"; done; }

for run in $(seq "$RUNS"); do
  if (( run % 2 == 1 )); then baseline "$run"; shoal_run "$run"; else shoal_run "$run"; baseline "$run"; fi
  AZURE_STORAGE_CONNECTION_STRING="$DIRECT" "$SHOAL" rm -r "az://wbbench/base-$run" 2> /dev/null
  AZURE_STORAGE_CONNECTION_STRING="$DIRECT" "$SHOAL" rm -r "az://wbbench/shoal-$run" 2> /dev/null
done
log "every object in the store matched its source (sha256)"

mkdir -p "$OUT"
python3 - "$RESULTS" "$OUT" "$SIZE" "$WRITERS" "$RUNS" "$LATENCY_MS" "$BANDWIDTH" <<'PY'
import sys, json, statistics, datetime, os
path, out, size, writers, runs, latency, bw = sys.argv[1:8]
rows = [l.rstrip('\n').split('\t') for l in open(path)]
by = {}
for name, run, phase, s in rows:
    by.setdefault((name, phase), []).append(float(s))
def cell(name, phase):
    v = by[(name, phase)]
    return statistics.median(v), min(v), max(v)
base, shoal = "dd + rclone copy", "shoal (write-back)"
lines = ["| metric | dd conv=fsync + rclone copy, s median (min-max) | shoal write-back, s median (min-max) | shoal / baseline |",
         "|---|---|---|---|"]
for phase, label in (("unblock", "time-to-unblock"), ("durable", "time-to-durable")):
    b, s = cell(base, phase), cell(shoal, phase)
    lines.append(f"| {label} | {b[0]:.2f} ({b[1]:.2f}-{b[2]:.2f}) | {s[0]:.2f} ({s[1]:.2f}-{s[2]:.2f}) | {s[0]/b[0]:.2f} |")
when = datetime.datetime.utcnow().strftime('%Y-%m-%dT%H:%M:%SZ')
md = "\n".join(lines) + (f"\n\n{writers} writers x {size}, {runs} runs, Azurite behind the fault proxy "
     f"({latency} ms to first byte, {bw}/s per connection), {when}, {os.cpu_count()} cores. "
     "Lower is better; unblock goal: shoal <= 1.1x dd. Every object was checked with sha256.\n")
open(os.path.join(out, "writeback_bench.md"), "w").write(md)
json.dump({"size": size, "writers": int(writers), "runs": int(runs), "latency_ms": int(latency),
           "bandwidth_per_connection": bw, "date": when,
           "timings_s": [{"system": n, "run": int(r), "metric": p, "seconds": float(s)} for n, r, p, s in rows]},
          open(os.path.join(out, "writeback_bench.json"), "w"), indent=1)
print(md)
PY

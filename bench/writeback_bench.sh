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
# survives the writer's node dying: the writers' host dies the moment they unblock (everything
#   on it killed with -9, its disk gone). baseline: the rclone copy that would have followed dies
#   with it. shoal: the writers wrote through node a of a two-node cluster (--replicas 2,
#   --down-grace 2), so each write was also on node b when it was acknowledged; b uploads them.
#   Counted: objects of the W that reach the store, intact, within 300 s.
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
need "$SHOAL" "$SHOALD" testenv/node_modules/.bin/azurite-blob
need_rclone
BYTES=$(size_bytes "$SIZE")
# Everything on the disk under bench/ (the same disk for dd, rclone's source and shoald).
TMP=$(mktemp -d "$PWD/bench/.writeback.XXXXXX")
now() { date +%s.%N; }
secs() { python3 -c "print(round($2-$1,3))"; }

start_azurite
start_proxy --latency-ms "$LATENCY_MS" --bandwidth "$BANDWIDTH"
SHAPED="http://127.0.0.1:$PROXY_PORT/$AZ_ACCOUNT"
export AZURE_STORAGE_CONNECTION_STRING="$(azurite_connection "$PROXY_PORT")"
DIRECT="$(azurite_connection "$AZ_PORT")"
rclone_conf "$TMP/rclone.conf" "$SHAPED"
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
  dd_all "$dir"
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
# dd_all DIR: every part written to DIR by its own `dd bs=8M conv=fsync`, all at once.
dd_all() {
  for i in $(seq "$WRITERS"); do dd if="$TMP/src/part-$i.bin" of="$1/part-$i.bin" bs=8M conv=fsync status=none & done
  wait_jobs
}
# wait_in_store PREFIX: waits up to 300 s for every part to be in the store (an upload appears
# whole or not at all, so a stat is enough to poll); prints how many are there intact.
wait_in_store() {
  local n i
  for _ in $(seq 600); do
    n=0
    for i in $(seq "$WRITERS"); do
      AZURE_STORAGE_CONNECTION_STRING="$DIRECT" "$SHOAL" stat "az://wbbench/$1/part-$i.bin" > /dev/null 2>&1 && n=$((n + 1))
    done
    (( n == WRITERS )) && break
    sleep 0.5
  done
  in_store "$1"
}
# in_store PREFIX: how many of the parts are in the store, each byte-identical to its source.
in_store() {
  local n=0 i
  for i in $(seq "$WRITERS"); do
    got=$(AZURE_STORAGE_CONNECTION_STRING="$DIRECT" "$SHOAL" cat "az://wbbench/$1/part-$i.bin" 2> /dev/null | sha256sum | cut -d' ' -f1)
    [[ "$got" == "${SUM[$i]}" ]] && n=$((n + 1))
  done
  echo "$n"
}
baseline_death() { # dd conv=fsync, and the host dies as the writers return: no rclone copy
  local run="$1" dir="$TMP/death-$1" rc
  mkdir -p "$dir"; settle
  dd_all "$dir"
  "$RCLONE" --config "$TMP/rclone.conf" copy "${RCLONE_FLAGS[@]}" "$dir" "az:wbbench/base-death-$run" &
  rc=$!
  kill -9 "$rc"; wait "$rc" 2> /dev/null || true
  rm -rf "$dir"  # the host's disk went with it
  record "dd + rclone copy" "$run" survived "$(in_store "base-death-$run")"
}
shoal_death() { # through node a of a 2-node cluster; a dies (kill -9, disk removed) as they return
  local run="$1" pa pb a b t1 t2 n=0
  pa=$(free_port); pb=$(free_port)
  local peers="a=127.0.0.1:$pa,b=127.0.0.1:$pb" common=(--capacity 16GiB --replicas 2 --down-grace 2)
  "$SHOALD" --listen "127.0.0.1:$pa" --data-dir "$TMP/pair-a-$run" --peers "$peers" "${common[@]}" > "$TMP/pair-a.log" 2>&1 &
  a=$!; PIDS+=($a)
  "$SHOALD" --listen "127.0.0.1:$pb" --data-dir "$TMP/pair-b-$run" --peers "$peers" "${common[@]}" > "$TMP/pair-b.log" 2>&1 &
  b=$!; PIDS+=($b)
  wait_port "$pa" && wait_port "$pb" || { cat "$TMP"/pair-*.log >&2; die "the two-node cluster did not start"; }
  sleep 0.5; settle
  for i in $(seq "$WRITERS"); do
    "$SHOAL" cp -q --cache "127.0.0.1:$pa" "$TMP/src/part-$i.bin" "az://wbbench/shoal-death-$run/" &
  done
  wait_jobs
  kill -9 "$a"; wait "$a" 2> /dev/null || true
  rm -rf "$TMP/pair-a-$run"
  t1=$(now)
  n=$(wait_in_store "shoal-death-$run")
  t2=$(now)
  record "shoal (write-back)" "$run" survived "$n"
  (( n == WRITERS )) && record "shoal (write-back)" "$run" durable-after-death "$(secs "$t1" "$t2")"
  kill "$b"; wait "$b" 2> /dev/null || true
  rm -rf "$TMP/pair-b-$run"
}
direct_run() { # shoal cp of every part straight to the store: unblocked once durable
  local run="$1" t0 t1
  settle
  t0=$(now)
  for i in $(seq "$WRITERS"); do
    "$SHOAL" cp -q "$TMP/src/part-$i.bin" "az://wbbench/direct-$run/" &
  done
  wait_jobs
  t1=$(now)
  record "shoal cp (no cache)" "$run" unblock "$(secs "$t0" "$t1")"
  record "shoal cp (no cache)" "$run" durable "$(secs "$t0" "$t1")"
  check "direct-$run"
}
rmount_run() { # dd conv=fsync into rclone mount --vfs-cache-mode full; durable once all are in the store
  local run="$1" mnt="$TMP/rmnt-$1" t0 t1 t2 n=0
  rclone_mount "$TMP/rclone.conf" az:wbbench "$mnt" "$TMP/rcache-$run"
  mkdir -p "$mnt/rmount-$run"; settle
  t0=$(now)
  dd_all "$mnt/rmount-$run"
  t1=$(now)
  n=$(wait_in_store "rmount-$run")
  t2=$(now)
  (( n == WRITERS )) || die "rclone mount uploaded $n of $WRITERS parts in 300 s"
  record "rclone mount" "$run" unblock "$(secs "$t0" "$t1")"
  record "rclone mount" "$run" durable "$(secs "$t0" "$t2")"
  unmount_rclone "$mnt"
  rm -rf "$TMP/rcache-$run"
}
rmount_death() { # the same, and the host dies as the writers return (rclone kill -9, cache gone)
  local run="$1" mnt="$TMP/rmnt-d$1"
  rclone_mount "$TMP/rclone.conf" az:wbbench "$mnt" "$TMP/rcache-d$run"
  mkdir -p "$mnt/rmount-death-$run"; settle
  dd_all "$mnt/rmount-death-$run"
  kill -9 "$RCLONE_MOUNT_PID"; wait "$RCLONE_MOUNT_PID" 2> /dev/null || true
  umount -l "$mnt" 2> /dev/null || fusermount3 -uz "$mnt" 2> /dev/null || true
  rm -rf "$TMP/rcache-d$run"
  record "rclone mount" "$run" survived "$(in_store "rmount-death-$run")"
}
# Waits for the background writers; fails if any did.
wait_jobs() { local p; for p in $(jobs -pr); do [[ " ${PIDS[*]} " == *" $p "* ]] && continue; wait "$p" || die "a writer failed"; done; }

for run in $(seq "$RUNS"); do
  if (( run % 2 == 1 )); then baseline "$run"; shoal_run "$run"; else shoal_run "$run"; baseline "$run"; fi
  rmount_run "$run"
  direct_run "$run"
  baseline_death "$run"
  rmount_death "$run"
  shoal_death "$run"
  AZURE_STORAGE_CONNECTION_STRING="$DIRECT" "$SHOAL" rm -r "az://wbbench/base-$run" 2> /dev/null
  AZURE_STORAGE_CONNECTION_STRING="$DIRECT" "$SHOAL" rm -r "az://wbbench/shoal-$run" 2> /dev/null
  AZURE_STORAGE_CONNECTION_STRING="$DIRECT" "$SHOAL" rm -r "az://wbbench/shoal-death-$run" 2> /dev/null || true
  for p in base-death rmount rmount-death direct; do
    AZURE_STORAGE_CONNECTION_STRING="$DIRECT" "$SHOAL" rm -r "az://wbbench/$p-$run" 2> /dev/null || true
  done
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
base, rmount, direct, shoal = "dd + rclone copy", "rclone mount", "shoal cp (no cache)", "shoal (write-back)"
lines = ["| metric | straight to the store (shoal cp, no cache) | dd conv=fsync + rclone copy | "
         "rclone mount --vfs-cache-mode full | shoal write-back | shoal / direct | shoal / copy script | "
         "shoal / rclone mount |", "|---|---|---|---|---|---|---|---|"]
fmt = lambda c: f"{c[0]:.2f} ({c[1]:.2f}-{c[2]:.2f})"
for phase, label in (("unblock", "time-to-unblock, s"), ("durable", "time-to-durable, s")):
    d, b, r, s = cell(direct, phase), cell(base, phase), cell(rmount, phase), cell(shoal, phase)
    lines.append(f"| {label} | {fmt(d)} | {fmt(b)} | {fmt(r)} | {fmt(s)} | {s[0]/d[0]:.2f} | {s[0]/b[0]:.2f} | "
                 f"{s[0]/r[0]:.2f} |")
def survived(name):
    v = [int(x) for x in by.get((name, "survived"), [])]
    whole = sum(1 for x in v if x == int(writers))
    return f"{whole} of {len(v)} runs ({', '.join(f'{x}/{writers}' for x in v)} objects in the store)"
lines.append(f"| survives the writer's host dying at unblock | yes: in the store before it unblocks | "
             f"{survived(base)} | {survived(rmount)} | {survived(shoal)} | | | |")
after = by.get((shoal, "durable-after-death"), [])
if after:
    lines.append(f"| durable after the death, s (shoal: node b uploads) | n/a | n/a | n/a | "
                 f"{statistics.median(after):.2f} ({min(after):.2f}-{max(after):.2f}) | | | |")
when = datetime.datetime.utcnow().strftime('%Y-%m-%dT%H:%M:%SZ')
md = "\n".join(lines) + (f"\n\n{writers} writers x {size}, {runs} runs, Azurite behind the fault proxy "
     f"({latency} ms to first byte, {bw}/s per connection), {when}, {os.cpu_count()} cores. "
     "Lower is better; unblock goal: shoal <= 1.1x dd. Every object was checked with sha256. rclone mount: "
     "rclone mount --vfs-cache-mode full --vfs-fast-fingerprint with its defaults (uploads start 5 s after close). "
     "Survival: the host dies as its writers return (kill -9 of all on it, its disk removed); shoal's "
     "writers wrote through one node of two (--replicas 2, --down-grace 2).\n")
open(os.path.join(out, "writeback_bench.md"), "w").write(md)
json.dump({"size": size, "writers": int(writers), "runs": int(runs), "latency_ms": int(latency),
           "bandwidth_per_connection": bw, "date": when,
           "timings_s": [{"system": n, "run": int(r), "metric": p, "seconds": float(s)} for n, r, p, s in rows
                         if p != "survived"],
           "survived": [{"system": n, "run": int(r), "objects_in_store": int(s), "of": int(writers)}
                        for n, r, p, s in rows if p == "survived"]},
          open(os.path.join(out, "writeback_bench.json"), "w"), indent=1)
print(md)
PY

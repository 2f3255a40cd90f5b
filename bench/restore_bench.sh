#!/usr/bin/env bash
# Restore elsewhere: R ranks each write a shard of S bytes, the step is committed, and a job on
# another host loads every shard. Timed from the start of the writes until that host has every
# byte on its disk, three ways, on the same shaped Azurite:
#
#   bash bench/restore_bench.sh [--size 128MiB] [--ranks 4] [--runs 3]
#        [--latency-ms 20] [--bandwidth 100MB] [--out bench/results]
#
# copy script: each rank `dd bs=8M conv=fsync` to local disk, then `rclone copy` of the
#   directory up to the store, then `rclone copy` of it down on the other host.
# shoal: a cluster of 3 members (--replicas 2); rank i writes with `shoal cp --cache` through
#   member i mod 3, rank 0 runs `shoal commit --expect R` (it returns once the marker is on two
#   nodes, before the upload), and the other host, a fourth node started with --reader, runs
#   `shoal latest` and `shoal cp -r --cache` of the step it names.
# shoal, writers' node killed: the same, and member 1 (which took ranks 0 and 3, and the
#   marker) is killed with -9 the moment the commit returns; the shards come from their copies.
# Every restored shard is checked with sha256 afterwards, untimed. Everything it starts is
# stopped by PID on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE=128MiB RANKS=4 RUNS=3 LATENCY_MS=20 BANDWIDTH=100MB OUT=bench/results
BENCH=restore_bench
source bench/lib.sh
declare -A FLAGS=([--size]=SIZE [--ranks]=RANKS [--runs]=RUNS [--latency-ms]=LATENCY_MS [--bandwidth]=BANDWIDTH [--out]=OUT)
parse_flags "$@"
SHOAL=build/bin/shoal SHOALD=build/bin/shoald RCLONE=${RCLONE:-rclone}
need "$SHOAL" "$SHOALD" testenv/node_modules/.bin/azurite-blob
need_rclone
BYTES=$(size_bytes "$SIZE")
TMP=$(mktemp -d "$PWD/bench/.restore.XXXXXX")  # the same disk for every system
now() { date +%s.%N; }
secs() { python3 -c "print(round($2-$1,3))"; }

start_azurite
start_proxy --latency-ms "$LATENCY_MS" --bandwidth "$BANDWIDTH"
SHAPED="http://127.0.0.1:$PROXY_PORT/$AZ_ACCOUNT"
export AZURE_STORAGE_CONNECTION_STRING="$(azurite_connection "$PROXY_PORT")"
DIRECT="$(azurite_connection "$AZ_PORT")"
rclone_conf "$TMP/rclone.conf" "$SHAPED"
RCLONE_FLAGS=(-q --no-check-dest --transfers "$RANKS" --azureblob-chunk-size 8Mi
              --azureblob-upload-concurrency 16 --azureblob-disable-checksum --multi-thread-streams 4)
log "Azurite on $AZ_PORT, shaped proxy on $PROXY_PORT (${LATENCY_MS} ms, $BANDWIDTH/s per connection)"
AZURE_STORAGE_CONNECTION_STRING="$DIRECT" "$SHOAL" mb az://restore > /dev/null

log "writing $RANKS shards of $SIZE"
mkdir -p "$TMP/src"
declare -A SUM
for i in $(seq 0 $((RANKS - 1))); do
  head -c "$BYTES" /dev/urandom > "$TMP/src/rank-$i"
  SUM[$i]=$(sha256sum < "$TMP/src/rank-$i" | cut -d' ' -f1)
done
cat "$TMP"/src/* > /dev/null  # every system reads its sources from the page cache

RESULTS="$TMP/results.tsv"; : > "$RESULTS"
record() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >> "$RESULTS"; log "$(printf '%-32s run %s %7.2f s' "$1" "$2" "$3")"; }
check() { # check DIR: every rank's shard in DIR is byte-identical to its source
  for i in $(seq 0 $((RANKS - 1))); do
    [[ "$(sha256sum < "$1/rank-$i" | cut -d' ' -f1)" == "${SUM[$i]}" ]] || die "$1/rank-$i differs from its source"
  done
}
settle() { sync; sleep 3; }
wait_jobs() { local p; for p in "$@"; do wait "$p" || die "a writer failed"; done; }

baseline() { # dd conv=fsync of each shard, rclone copy up, rclone copy down elsewhere
  local run="$1" dir="$TMP/base-$run" there="$TMP/elsewhere-$run" pids=() i t0 t1
  mkdir -p "$dir"
  settle
  t0=$(now)
  for i in $(seq 0 $((RANKS - 1))); do
    dd if="$TMP/src/rank-$i" of="$dir/rank-$i" bs=8M conv=fsync status=none & pids+=($!)
  done
  wait_jobs "${pids[@]}"
  local t_written t_up
  t_written=$(now)
  "$RCLONE" --config "$TMP/rclone.conf" copy "${RCLONE_FLAGS[@]}" "$dir" "az:restore/base-$run/step1"
  t_up=$(now)
  "$RCLONE" --config "$TMP/rclone.conf" copy "${RCLONE_FLAGS[@]}" "az:restore/base-$run/step1" "$there"
  sync -f "$there/rank-0"
  t1=$(now)
  record "copy script" "$run" "$(secs "$t0" "$t1")"
  echo "$(secs "$t0" "$t_written")" >> "$TMP/dd.txt"
  log "  phases: dd conv=fsync $(secs "$t0" "$t_written") s, upload $(secs "$t_written" "$t_up") s," \
      "download $(secs "$t_up" "$t1") s"
  check "$there"
  rm -rf "$dir" "$there"
}

# A fresh cluster for each shoal run: members m1..m3 and the reader r.
declare -A PORT
start_cluster() {
  local run="$1" peers="" i
  for i in 1 2 3; do PORT[m$i]=$(free_port); peers+="${peers:+,}m$i=127.0.0.1:${PORT[m$i]}"; done
  PORT[r]=$(free_port)
  NODE_PIDS=()
  for i in 1 2 3; do
    "$SHOALD" --listen "127.0.0.1:${PORT[m$i]}" --data-dir "$TMP/c$run/m$i" --capacity 8GiB --peers "$peers" \
      --replicas 2 --down-grace 3 > "$TMP/c$run-m$i.log" 2>&1 &
    PIDS+=($!); NODE_PIDS+=($!)
  done
  ready() { # ready NAME...: each answers /readyz with 200 (30 s at most)
    local i
    for i in "$@"; do
      wait_port "${PORT[$i]}" || { cat "$TMP/c$run-$i.log" >&2; die "shoald $i did not start"; }
      for _ in $(seq 300); do
        [[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${PORT[$i]}/readyz")" == 200 ]] && break
        sleep 0.1
      done
    done
  }
  ready m1 m2 m3
  "$SHOALD" --listen "127.0.0.1:${PORT[r]}" --data-dir "$TMP/c$run/r" --capacity 8GiB --peers "$peers" \
    --reader --node-id r > "$TMP/c$run-r.log" 2>&1 &
  PIDS+=($!); NODE_PIDS+=($!)
  ready r
}
stop_cluster() { kill "${NODE_PIDS[@]}" 2> /dev/null || true; wait "${NODE_PIDS[@]}" 2> /dev/null || true; }

shoal_run() { # shoal_run NAME RUN KILL: writes through the members, commit, restore through the reader
  local name="$1" run="$2" kill="$3" step="az://restore/shoal-$2-$3/step1/" there="$TMP/restored-$2-$3" pids=() i t0 t1
  start_cluster "$run-$kill"
  settle
  t0=$(now)
  for i in $(seq 0 $((RANKS - 1))); do
    "$SHOAL" cp -q --cache "127.0.0.1:${PORT[m$((i % 3 + 1))]}" "$TMP/src/rank-$i" "${step}rank-$i" & pids+=($!)
  done
  wait_jobs "${pids[@]}"
  local t_written t_committed t_found
  t_written=$(now)
  "$SHOAL" commit -q --expect "$RANKS" --timeout 300 --cache "127.0.0.1:${PORT[m1]}" "$step" > /dev/null
  t_committed=$(now)
  if [[ "$kill" == 1 ]]; then kill -9 "${NODE_PIDS[0]}"; fi
  # Right after a kill the object's next home may not know the marker yet (until the copy's
  # holder notices, within a few seconds): the job asks again, and that wait is in its time.
  local found="" tries
  for tries in $(seq 50); do
    found=$("$SHOAL" latest --cache "127.0.0.1:${PORT[r]}" "${step%step1/}" 2> /dev/null) && break
    sleep 0.2
  done
  [[ "$found" == "$step" ]] || die "shoal latest through the reader named '$found', not $step"
  (( tries == 1 )) || log "shoal latest found the step at its attempt $tries"
  t_found=$(now)
  "$SHOAL" cp -r -q --cache "127.0.0.1:${PORT[r]}" "$step" "$there/"
  sync -f "$there/rank-0"
  t1=$(now)
  record "$name" "$run" "$(secs "$t0" "$t1")"
  log "  phases: writes acknowledged $(secs "$t0" "$t_written") s, commit $(secs "$t_written" "$t_committed") s," \
      "latest $(secs "$t_committed" "$t_found") s, read through the reader $(secs "$t_found" "$t1") s"
  check "$there"
  rm -rf "$there"
  stop_cluster
  rm -rf "$TMP/c$run-$kill"
}

for run in $(seq "$RUNS"); do
  if (( run % 2 == 1 )); then baseline "$run"; shoal_run "shoal" "$run" 0; else shoal_run "shoal" "$run" 0; baseline "$run"; fi
  shoal_run "shoal, writers' node killed" "$run" 1
done
log "every restored shard matched its source (sha256)"

mkdir -p "$OUT"
python3 - "$RESULTS" "$OUT" "$SIZE" "$RANKS" "$RUNS" "$LATENCY_MS" "$BANDWIDTH" "$TMP/dd.txt" "$BYTES" <<'PY'
import sys, json, statistics, datetime, os
path, out, size, ranks, runs, latency, bw, ddfile, nbytes = sys.argv[1:10]
dd = statistics.median(float(l) for l in open(ddfile))
disk_rate = int(ranks) * int(nbytes) / dd  # bytes/s the disk takes with fsync (the dd phase)
rows = [l.rstrip('\n').split('\t') for l in open(path)]
by = {}
for name, run, s in rows:
    by.setdefault(name, []).append(float(s))
base = statistics.median(by["copy script"])
lines = ["| system | time to restore elsewhere, s median (min-max) | / copy script |", "|---|---|---|"]
for name in ("copy script", "shoal", "shoal, writers' node killed"):
    v = by[name]
    lines.append(f"| {name} | {statistics.median(v):.2f} ({min(v):.2f}-{max(v):.2f}) | {statistics.median(v)/base:.2f} |")
when = datetime.datetime.utcnow().strftime('%Y-%m-%dT%H:%M:%SZ')
md = "\n".join(lines) + (f"\n\n{ranks} ranks x {size}, {runs} runs, Azurite behind the fault proxy ({latency} ms to "
     f"first byte, {bw}/s per connection), {when}, {os.cpu_count()} cores. From the start of the writes until "
     "the other host has every byte on its disk. Copy script: dd conv=fsync, rclone copy up, rclone copy down. "
     "Shoal: shoal cp --cache through 3 members (--replicas 2), shoal commit --expect, then shoal latest and "
     "shoal cp -r --cache through a --reader node; killed: the member that took ranks 0 and 3 and the marker is "
     "killed -9 as the commit returns. Goal: shoal <= 0.3x the copy script. Every shard checked with sha256.\n"
     f"\nEvery host here shares one disk, which took the {ranks} shards with fsync in {dd:.2f} s "
     f"({disk_rate/1e6:.0f} MB/s, the dd phase). The copy script writes the shards' bytes to it twice "
     f"(dd, the download); Shoal four times (the writer's chunks, the copy on a second member, the "
     f"reader's cache, the restored files): {4*dd:.2f} s of disk alone, "
     f"{4*dd/base:.2f}x the copy script's time, where separate hosts have a disk each.\n")
open(os.path.join(out, "restore_bench.md"), "w").write(md)
json.dump({"size": size, "ranks": int(ranks), "runs": int(runs), "latency_ms": int(latency),
           "bandwidth_per_connection": bw, "date": when, "dd_fsync_s": dd, "disk_bytes_per_s": disk_rate,
           "timings_s": [{"system": n, "run": int(r), "seconds": float(s)} for n, r, s in rows]},
          open(os.path.join(out, "restore_bench.json"), "w"), indent=1)
print(md)
PY

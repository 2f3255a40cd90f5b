#!/usr/bin/env bash
# Every benchmark in one run, then one report (`make bench` runs this):
#   limits              the machine's loopback (iperf3) and disk (fio) limits
#   fuse_floor          what any FUSE mount costs here: libfuse's passthrough_ll over a file in
#                       the page cache (needs root; skipped otherwise)
#   copy_bench          one object copied up and down: shoal cp against rclone copy, raw and shaped
#   writeback_bench     checkpoint fan-out write: shoal write-back against dd + rclone copy, rclone
#                       mount and shoal cp straight to the store; whether the data survives the
#                       writer's host dying right after it unblocks
#   restore_bench       a checkpoint of 4 ranks committed and loaded whole on another host: shoal
#                       (also with the writers' node killed) against dd + rclone copy up and down
#   node_read_bench     cold and warm reads, Azurite raw and shaped: shoald against nginx
#                       proxy_cache, rclone mount and the store direct
#   readahead_bench     one sequential reader of a cold object behind a far store (50 ms, 20 MB/s per
#                       connection): the node's growing read-ahead against a window held at 4
#   cluster_read_bench  a read spread over 4 nodes; scale-out (a node joins a warm cluster)
#   fanin_bench         fan-in: R readers of one cold object, Shoal against nginx and the store
#   mount_bench         files: shoal mount against the library and rclone mount
#   connections_bench   one node holding 10,000 idle and 1,000 slow connections while a reader
#                       reads a warm object: its rate against no load, the node's threads and RSS
#   door_bench          the front door with unmodified boto3 and Azure SDK: warm and cold reads and
#                       uploads against shoal cat, the store direct and a local dd conv=fsync
#   accounts_bench      two storage accounts through one node, one answering half its requests 503:
#                       the healthy account's upload rate against a run where both are clean
#   report.py           bench/results/report.md, report.json and plots/*.png from all of them
#
#   bash bench/all.sh [--scale 1] [--runs 3] [--latency-ms 20] [--bandwidth 100MB] [--out bench/results]
#
# --scale multiplies every size. At 1 (the default) the run takes about 15 minutes on a 2-core
# machine; --scale 4 gives each script's own default sizes (1 GiB objects, 4 x 256 MiB
# checkpoints). Each figure is the median of --runs runs, with min and max. --latency-ms and
# --bandwidth shape the store where a bench runs against the shaping proxy (copy, checkpoint
# write, reads): time to first byte and bytes/s per connection.
set -euo pipefail
cd "$(dirname "$0")/.."
SCALE=1 RUNS=3 OUT=bench/results LATENCY_MS=20 BANDWIDTH=100MB
BENCH=all
source bench/lib.sh
declare -A FLAGS=([--scale]=SCALE [--runs]=RUNS [--out]=OUT [--latency-ms]=LATENCY_MS [--bandwidth]=BANDWIDTH)
parse_flags "$@"
[[ "$SCALE" =~ ^[1-9][0-9]*$ ]] || die "--scale must be a whole number from 1 up"
(( RUNS >= 3 )) || log "fewer than 3 runs: the report's medians are not the issue's standard"
mib() { echo "$(( $1 * SCALE ))MiB"; }
started=$(date +%s)
step() {
  local name="$1"; shift
  log "== $name $* =="
  local t0; t0=$(date +%s)
  bash "bench/$name.sh" "$@" --out "$OUT"
  log "== $name took $(( $(date +%s) - t0 )) s =="
}
step limits --size "$(mib 256)"
if [[ $(id -u) == 0 ]]; then step fuse_floor --size "$(mib 256)" --runs "$RUNS"; else log "not root: no fuse_floor"; fi
SHAPE=(--latency-ms "$LATENCY_MS" --bandwidth "$BANDWIDTH")
step copy_bench --size "$(mib 256)" --runs "$RUNS" "${SHAPE[@]}"
step writeback_bench --size "$(mib 64)" --writers 4 --runs "$RUNS" "${SHAPE[@]}"
step restore_bench --size "$(mib 32)" --ranks 4 --runs "$RUNS" "${SHAPE[@]}"
step node_read_bench --size "$(mib 256)" --runs "$RUNS" "${SHAPE[@]}"
step readahead_bench --size "$(mib 256)" --runs "$RUNS"
step cluster_read_bench --size "$(mib 256)" --runs "$RUNS"
step fanin_bench --size "$(mib 64)" --runs "$RUNS"
step mount_bench --size "$(mib 256)" --runs "$RUNS"
step connections_bench --size "$(mib 256)" --runs "$RUNS"
step door_bench --size "$(mib 256)" --runs "$RUNS" "${SHAPE[@]}"
step accounts_bench --size "$(mib 16)" --runs "$RUNS"
/usr/bin/python3 bench/report.py --results "$OUT" > /dev/null  # Debian's python3-matplotlib draws the plots
log "all done in $(( ($(date +%s) - started) / 60 )) min: $OUT/report.md (plots in $OUT/plots/)"

#!/usr/bin/env bash
# `shoal mount` against the library it is built on, over Azurite, in one run (a fresh shoald
# per run, so runs do not inherit each other's chunks or uploads):
#   write: a file of S bytes written through the mount (dd bs=1M, close included) against
#          `shoal cp --cache` of the same file; both end when the node has it (write-back).
#   read:  the same object, warm on the node, read through a fresh mount (dd bs=1M, so the
#          kernel's page cache starts cold) against `shoal cat --cache` and the Python binding
#          (shoal.Client.open(...).read in 8 MiB pieces), all to /dev/null.
#
#   bash bench/mount_bench.sh [--size 1GiB] [--runs 3] [--out bench/results]
#
# SHOALD_FLAGS: more flags for shoald (e.g. "--no-fsync", to see what the disk's sync costs a
# write against rclone mount, whose close does not sync). MOUNT_FLAGS: more flags for the
# mounts (with --async-close the timed write runs until `sync FILE` returned, i.e. until the
# node acknowledged it, as the close does otherwise).
#
# Goal: the mount at >= 0.7x the library's rate for both. Every object is checked (sha256).
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE=1GiB RUNS=3 OUT=bench/results
BENCH=mount_bench
source bench/lib.sh
declare -A FLAGS=([--size]=SIZE [--runs]=RUNS [--out]=OUT)
parse_flags "$@"
SHOAL=build/bin/shoal SHOALD=build/bin/shoald
for bin in "$SHOAL" "$SHOALD" testenv/node_modules/.bin/azurite-blob build/python/shoal/__init__.py; do
  [[ -e "$bin" ]] || { echo "mount_bench: $bin is missing: run make bench" >&2; exit 1; }
done
BYTES=$(size_bytes "$SIZE")
TMP=$(mktemp -d "$PWD/bench/.mount.XXXXXX")
MNT="$TMP/mnt"; mkdir -p "$MNT"
unmount_all() { mountpoint -q "$MNT" && "$SHOAL" unmount "$MNT" 2>/dev/null || true; }
trap 'unmount_all; bench_cleanup' EXIT
now() { date +%s.%N; }
secs() { python3 -c "print(round($2-$1,3))"; }

start_azurite
export AZURE_STORAGE_CONNECTION_STRING="$(azurite_connection "$AZ_PORT")"
"$SHOAL" mb az://mbench > /dev/null
rclone_conf "$TMP/rclone.conf" "http://127.0.0.1:$AZ_PORT/$AZ_ACCOUNT"
log "Azurite on $AZ_PORT; writing a $SIZE source file"
head -c "$BYTES" /dev/urandom > "$TMP/src.bin"
SUM=$(sha256sum < "$TMP/src.bin" | cut -d' ' -f1)
cat "$TMP/src.bin" > /dev/null  # every writer reads it from the page cache

# Each run has a node of its own, stopped and its disk removed at the run's end, so runs do not
# inherit each other's chunks or uploads.
start_node() {
  NODE_PORT=$(free_port)
  "$SHOALD" --listen "127.0.0.1:$NODE_PORT" --socket "$TMP/shoald-$1.sock" --data-dir "$TMP/shoald-$1" \
    --capacity 16GiB ${SHOALD_FLAGS:-} > "$TMP/shoald.log" 2>&1 &
  NODE_PID=$!
  PIDS+=($NODE_PID)
  wait_port "$NODE_PORT" || { cat "$TMP/shoald.log" >&2; die "shoald did not start"; }
  NODE="unix:$TMP/shoald-$1.sock"  # the host's own node, as a mount and a trainer reach it
}
stop_node() {
  kill "$NODE_PID"; wait "$NODE_PID" 2>/dev/null || true
  rm -rf "$TMP/shoald-$1"
  "$SHOAL" rm -r az://mbench/ > /dev/null 2>&1 || true
}
RESULTS="$TMP/results.tsv"; : > "$RESULTS"
record() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >> "$RESULTS"; log "$(printf '%-28s run %s %-5s %7.2f s' "$1" "$2" "$3" "$4")"; }
mount_it() { "$SHOAL" mount ${MOUNT_FLAGS:-} --cache "$NODE" az://mbench/ "$MNT" 2> "$TMP/mount.log" || { cat "$TMP/mount.log" >&2; die "mount failed"; }; }
# Each measure starts once earlier writes are uploaded: a background upload would take CPU from it.
settle_disk() { sync; sleep 2; }
settle() { "$SHOAL" flush --wait -q --cache "$NODE" az://mbench/ > /dev/null; settle_disk; }
py_read() {
  PYTHONPATH=build/python /usr/bin/python3 -c '
import sys, shoal
f = shoal.Client(cache=sys.argv[1]).open(sys.argv[2], "rb")
n = 0
while True:
    b = f.read(8 << 20)
    if not b: break
    n += len(b)
assert n == int(sys.argv[3]), n' "$NODE" "$1" "$BYTES"
}
for run in $(seq "$RUNS"); do
  start_node "$run"
  # write: alternate which goes first
  for which in $( (( run % 2 )) && echo "cp mount" || echo "mount cp"); do
    settle
    if [[ $which == cp ]]; then
      t0=$(now); "$SHOAL" cp -q --cache "$NODE" "$TMP/src.bin" "az://mbench/cp-$run.bin"; t1=$(now)
      record "shoal cp --cache" "$run" write "$(secs "$t0" "$t1")"
    else
      mount_it
      t0=$(now); dd if="$TMP/src.bin" of="$MNT/mnt-$run.bin" bs=1M status=none
      if [[ ${MOUNT_FLAGS:-} == *--async-close* ]]; then sync "$MNT/mnt-$run.bin"; fi
      t1=$(now)
      unmount_all
      record "shoal mount (dd bs=1M)" "$run" write "$(secs "$t0" "$t1")"
    fi
  done
  # read the object cp wrote (warm: on the node's disk). The page cache is dropped first, when
  # we may, so that files earlier runs left behind do not squeeze later ones; then the node's
  # chunks and the source are read once, untimed, so every reader finds the same warm node.
  if [[ -w /proc/sys/vm/drop_caches ]]; then sync; echo 1 > /proc/sys/vm/drop_caches; fi
  "$SHOAL" cat --cache "$NODE" "az://mbench/cp-$run.bin" > /dev/null
  cat "$TMP/src.bin" > /dev/null
  for which in $( (( run % 2 )) && echo "lib py mount" || echo "mount py lib"); do
    settle
    case $which in
      lib) t0=$(now); "$SHOAL" cat --cache "$NODE" "az://mbench/cp-$run.bin" > /dev/null; t1=$(now)
           record "shoal cat --cache" "$run" read "$(secs "$t0" "$t1")" ;;
      py)  t0=$(now); py_read "az://mbench/cp-$run.bin"; t1=$(now)
           record "python shoal.Client" "$run" read "$(secs "$t0" "$t1")" ;;
      mount) mount_it
           t0=$(now); dd if="$MNT/cp-$run.bin" of=/dev/null bs=1M status=none; t1=$(now)
           unmount_all
           record "shoal mount (dd bs=1M)" "$run" read "$(secs "$t0" "$t1")" ;;
    esac
  done
  # every byte right: both objects, through the mount and through the library
  mount_it
  [[ "$(sha256sum < "$MNT/mnt-$run.bin" | cut -d' ' -f1)" == "$SUM" ]] || die "the mount's file differs"
  unmount_all
  [[ "$("$SHOAL" cat --cache "$NODE" "az://mbench/mnt-$run.bin" | sha256sum | cut -d' ' -f1)" == "$SUM" ]] || die "mnt-$run.bin differs"
  [[ "$("$SHOAL" cat --cache "$NODE" "az://mbench/cp-$run.bin" | sha256sum | cut -d' ' -f1)" == "$SUM" ]] || die "cp-$run.bin differs"
  stop_node "$run"
  # The BlobFuse-style peer: rclone mount --vfs-cache-mode full. The same file written through
  # it; once uploaded, read through a fresh mount over the same cache (warm: the file is in it).
  settle_disk
  rclone_mount "$TMP/rclone.conf" az:mbench "$TMP/rmnt" "$TMP/rcache-$run"
  t0=$(now); dd if="$TMP/src.bin" of="$TMP/rmnt/rc-$run.bin" bs=1M status=none; t1=$(now)
  record "rclone mount (dd bs=1M)" "$run" write "$(secs "$t0" "$t1")"
  for _ in $(seq 600); do "$SHOAL" stat "az://mbench/rc-$run.bin" > /dev/null 2>&1 && break; sleep 0.5; done
  unmount_rclone "$TMP/rmnt"
  rclone_mount "$TMP/rclone.conf" az:mbench "$TMP/rmnt" "$TMP/rcache-$run"
  settle_disk
  t0=$(now); dd if="$TMP/rmnt/rc-$run.bin" of=/dev/null bs=1M status=none; t1=$(now)
  record "rclone mount (dd bs=1M)" "$run" read "$(secs "$t0" "$t1")"
  [[ "$(sha256sum < "$TMP/rmnt/rc-$run.bin" | cut -d' ' -f1)" == "$SUM" ]] || die "rclone mount's file differs"
  unmount_rclone "$TMP/rmnt"
  [[ "$("$SHOAL" cat "az://mbench/rc-$run.bin" | sha256sum | cut -d' ' -f1)" == "$SUM" ]] || die "rc-$run.bin differs in the store"
  "$SHOAL" rm "az://mbench/rc-$run.bin" > /dev/null
  rm -rf "$TMP/rcache-$run"
done
log "every object matched its source (sha256)"

mkdir -p "$OUT"
python3 - "$RESULTS" "$OUT" "$SIZE" "$BYTES" "$RUNS" <<'PY'
import sys, json, statistics, datetime, os
path, out, size, nbytes, runs = sys.argv[1:6]
nbytes = int(nbytes)
rows = [l.rstrip('\n').split('\t') for l in open(path)]
by = {}
for name, run, phase, s in rows:
    by.setdefault((name, phase), []).append(float(s))
def cell(name, phase):
    v = by[(name, phase)]
    return statistics.median(v), min(v), max(v)
mib = lambda s: nbytes / s / 2**20
lines = ["| phase | system | s, median (min-max) | MiB/s | mount / library |", "|---|---|---|---|---|"]
for phase, lib, others in (("write", "shoal cp --cache", ["shoal mount (dd bs=1M)", "rclone mount (dd bs=1M)"]),
                           ("read", "shoal cat --cache", ["python shoal.Client", "shoal mount (dd bs=1M)",
                                                          "rclone mount (dd bs=1M)"])):
    base = cell(lib, phase)[0]
    for name in [lib] + others:
        m, lo, hi = cell(name, phase)
        lines.append(f"| {phase} | {name} | {m:.2f} ({lo:.2f}-{hi:.2f}) | {mib(m):.0f} | {base/m:.2f} |")
when = datetime.datetime.utcnow().strftime('%Y-%m-%dT%H:%M:%SZ')
md = "\n".join(lines) + (f"\n\n{size} file, {runs} runs, a fresh shoald per run over Azurite (writes: write-back, done when the "
     f"node has them; reads: warm on the node, through a fresh mount each run), {when}, {os.cpu_count()} cores. "
     "The last column is the rate against the library's (shoal cp / shoal cat); goal >= 0.7 for shoal mount. "
     "rclone mount: --vfs-cache-mode full --vfs-fast-fingerprint to Azurite directly; its write ends at close "
     "(the upload follows); its read is through a fresh mount with the file in its cache. "
     "Every object was checked with sha256.\n")
open(os.path.join(out, "mount_bench.md"), "w").write(md)
json.dump({"size": size, "runs": int(runs), "date": when,
           "timings_s": [{"system": n, "run": int(r), "phase": p, "seconds": float(s)} for n, r, p, s in rows]},
          open(os.path.join(out, "mount_bench.json"), "w"), indent=1)
print(md)
PY

#!/usr/bin/env bash
# What `shoal mount`'s two read modes cost at each read size: one object warm on a node (the
# local-directory backend: no store in the way), read through a fresh mount with dd at block
# sizes from 4 KiB to 8 MiB, in the default mode (files of 32 MiB and more bypass the kernel's
# page cache: direct I/O) and with --kernel-cache (every read through the page cache, with the
# kernel's read-ahead); `shoal cat` from the same node for scale.
#
#   bash bench/mount_read_sizes.sh [--size 256MiB] [--runs 3] [--out bench/results]
#
# Direct I/O makes every read call a round trip to the mount: large reads gain, small ones lose.
# docs/mount.md has the table this writes (results/mount_read_sizes.md).
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE=256MiB RUNS=3 OUT=bench/results
BENCH=mount_read_sizes
source bench/lib.sh
declare -A FLAGS=([--size]=SIZE [--runs]=RUNS [--out]=OUT)
parse_flags "$@"
SHOAL=build/bin/shoal SHOALD=build/bin/shoald
for bin in "$SHOAL" "$SHOALD"; do [[ -x "$bin" ]] || die "$bin is missing: run make build"; done
BYTES=$(size_bytes "$SIZE")
TMP=$(mktemp -d "$PWD/bench/.readsizes.XXXXXX")
MNT="$TMP/mnt"; mkdir -p "$MNT" "$TMP/store"
unmount_all() { mountpoint -q "$MNT" && "$SHOAL" unmount "$MNT" 2>/dev/null || true; }
trap 'unmount_all; bench_cleanup' EXIT

"$SHOALD" --listen 127.0.0.1:0 --socket "$TMP/shoald.sock" --data-dir "$TMP/node" --capacity 8GiB > "$TMP/shoald.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do [[ -S "$TMP/shoald.sock" ]] && break; sleep 0.1; done
[[ -S "$TMP/shoald.sock" ]] || { cat "$TMP/shoald.log" >&2; die "shoald did not start"; }
NODE="unix:$TMP/shoald.sock" URL="file://$TMP/store/obj.bin"
head -c "$BYTES" /dev/urandom > "$TMP/src.bin"
SUM=$(sha256sum < "$TMP/src.bin" | cut -d' ' -f1)
"$SHOAL" cp -q --cache "$NODE" "$TMP/src.bin" "$URL"
"$SHOAL" flush --wait -q --cache "$NODE" "file://$TMP/store/" > /dev/null
rm "$TMP/src.bin"
[[ "$("$SHOAL" cat --cache "$NODE" "$URL" | sha256sum | cut -d' ' -f1)" == "$SUM" ]] || die "the object differs"
sync; sleep 1

RESULTS="$TMP/results.tsv"; : > "$RESULTS"
now() { date +%s.%N; }
record() {
  local s; s=$(python3 -c "print(round($4-$3,3))")
  printf '%s\t%s\t%s\n' "$1" "$2" "$s" >> "$RESULTS"
  log "$(printf '%-16s %-6s %7.3f s' "$1" "$2" "$s")"
}
for run in $(seq "$RUNS"); do
  t0=$(now); "$SHOAL" cat --cache "$NODE" "$URL" > /dev/null; t1=$(now)
  record "shoal cat" "-" "$t0" "$t1"
  for mode in default --kernel-cache; do
    for bs in 4k 32k 128k 1M 8M; do
      "$SHOAL" mount --cache "$NODE" "file://$TMP/store/" "$MNT" $([[ $mode == default ]] || echo "$mode") 2> "$TMP/mount.log" \
        || { cat "$TMP/mount.log" >&2; die "mount failed"; }
      t0=$(now); dd if="$MNT/obj.bin" of=/dev/null bs="$bs" status=none; t1=$(now)
      unmount_all
      record "$mode" "$bs" "$t0" "$t1"
    done
  done
done

mkdir -p "$OUT"
python3 - "$RESULTS" "$OUT" "$SIZE" "$BYTES" "$RUNS" <<'PY'
import sys, json, statistics, datetime, os
path, out, size, nbytes, runs = sys.argv[1:6]
nbytes = int(nbytes)
rows = [l.rstrip('\n').split('\t') for l in open(path)]
by = {}
for mode, bs, s in rows:
    by.setdefault((mode, bs), []).append(float(s))
med = lambda k: statistics.median(by[k])
cell = lambda k: f"{med(k):.3f} ({min(by[k]):.3f}-{max(by[k]):.3f}) | {nbytes / med(k) / 2**20:.0f}"
cat = med(("shoal cat", "-"))
lines = ["| dd bs | default (direct I/O): s, median (min-max) | MiB/s | --kernel-cache: s, median (min-max) | MiB/s | default / --kernel-cache |",
         "|---|---|---|---|---|---|"]
for bs in ("4k", "32k", "128k", "1M", "8M"):
    d, k = ("default", bs), ("--kernel-cache", bs)
    lines.append(f"| {bs} | {cell(d)} | {cell(k)} | {med(k) / med(d):.2f} |")
when = datetime.datetime.utcnow().strftime('%Y-%m-%dT%H:%M:%SZ')
md = "\n".join(lines) + (f"\n\nOne {size} object warm on a node (local-directory backend), read with dd through a fresh "
     f"mount per read, {runs} runs, {when}, {os.cpu_count()} cores. `shoal cat` from the same node: "
     f"{cat:.3f} s ({nbytes / cat / 2**20:.0f} MiB/s). The last column above 1: direct I/O is faster.\n")
open(os.path.join(out, "mount_read_sizes.md"), "w").write(md)
json.dump({"size": size, "runs": int(runs), "date": when,
           "timings_s": [{"mode": m, "bs": b, "seconds": float(s)} for m, b, s in rows]},
          open(os.path.join(out, "mount_read_sizes.json"), "w"), indent=1)
print(md)
PY

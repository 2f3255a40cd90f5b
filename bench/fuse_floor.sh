#!/usr/bin/env bash
# What any FUSE mount costs on this machine, whatever serves it: a file of S bytes, in the page
# cache, read with dd bs=1M directly and through libfuse's own passthrough_ll example (built
# from /usr/share/doc/libfuse3-dev/examples, which Debian's libfuse3-dev ships), with the
# kernel's page cache (read-ahead raised to 4 MiB after INIT, as shoal mount does) and with
# direct_io (-o cache=never). passthrough_ll's server only copies bytes it already has in
# memory, so this is what the kernel's FUSE read path itself costs; shoal mount reads through
# the same path (compare bench/results/mount_bench.md).
#
#   bash bench/fuse_floor.sh [--size 1GiB] [--runs 3] [--out bench/results]
#
# Needs root (mounting, and the read-ahead in sysfs). Writes OUT/fuse_floor.{md,json}.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE=1GiB RUNS=3 OUT=bench/results
BENCH=fuse_floor
source bench/lib.sh
declare -A FLAGS=([--size]=SIZE [--runs]=RUNS [--out]=OUT)
parse_flags "$@"
EX=/usr/share/doc/libfuse3-dev/examples
[[ -f $EX/passthrough_ll.c ]] || die "$EX/passthrough_ll.c is missing: install libfuse3-dev"
TMP=$(mktemp -d "$PWD/bench/.fuse_floor.XXXXXX")
MNT="$TMP/mnt"
trap '{ mountpoint -q "$MNT" && fusermount3 -u "$MNT"; } || true; bench_cleanup' EXIT
mkdir -p "$TMP/src" "$MNT"
cp "$EX/passthrough_ll.c" "$EX/passthrough_helpers.h" "$TMP/"
gcc -O2 "$TMP/passthrough_ll.c" $(pkg-config --cflags --libs fuse3) -o "$TMP/passthrough_ll" \
  || die "could not build passthrough_ll"
BYTES=$(size_bytes "$SIZE")
head -c "$BYTES" /dev/urandom > "$TMP/src/f"
RESULTS="$TMP/results.tsv"; : > "$RESULTS"
read_once() { # read_once NAME FILE
  cat "$TMP/src/f" > /dev/null  # the source in the page cache
  local t0 t1; t0=$(date +%s.%N); dd if="$2" of=/dev/null bs=1M status=none; t1=$(date +%s.%N)
  printf '%s\t%s\n' "$1" "$(python3 -c "print(round($t1-$t0,3))")" >> "$RESULTS"
  log "$(printf '%-36s %6.2f s' "$1" "$(python3 -c "print($t1-$t0)")")"
}
for run in $(seq "$RUNS"); do
  read_once "dd, no FUSE" "$TMP/src/f"
  for mode in "page cache" "direct_io"; do
    "$TMP/passthrough_ll" -o source="$TMP/src" -o max_threads=16 \
      $([[ $mode == direct_io ]] && echo -o cache=never) "$MNT"
    ls "$MNT" > /dev/null  # the first request after INIT: the read-ahead can be raised now
    dev=$(awk -v m="$MNT" '$5 == m { print $3 }' /proc/self/mountinfo | tail -1)
    echo 4096 > "/sys/class/bdi/$dev/read_ahead_kb" || die "cannot raise the read-ahead (not root?)"
    read_once "passthrough_ll, $mode" "$MNT/f"
    fusermount3 -u "$MNT"
  done
done
mkdir -p "$OUT"
python3 - "$RESULTS" "$OUT" "$SIZE" "$BYTES" "$RUNS" <<'PY'
import sys, json, statistics, datetime, os
path, out, size, nbytes, runs = sys.argv[1:6]
rows = [l.rstrip("\n").split("\t") for l in open(path)]
by = {}
for name, s in rows:
    by.setdefault(name, []).append(float(s))
base = statistics.median(by["dd, no FUSE"])
lines = ["| read of the file | s, median (min-max) | MiB/s | vs no FUSE |", "|---|---|---|---|"]
for name, v in by.items():
    m = statistics.median(v)
    lines.append(f"| {name} | {m:.2f} ({min(v):.2f}-{max(v):.2f}) | {int(nbytes) / 2**20 / m:.0f} | {base / m:.2f} |")
when = datetime.datetime.utcnow().strftime("%Y-%m-%dT%H:%M:%SZ")
md = "\n".join(lines) + (f"\n\n{size} file in the page cache, dd bs=1M to /dev/null, {runs} runs, {when}, "
                         f"{os.cpu_count()} cores. passthrough_ll is libfuse's example, unchanged.\n")
open(os.path.join(out, "fuse_floor.md"), "w").write(md)
json.dump({"size": size, "runs": int(runs), "date": when,
           "timings_s": [{"read": n, "seconds": float(s)} for n, s in rows]},
          open(os.path.join(out, "fuse_floor.json"), "w"), indent=1)
print(md)
PY

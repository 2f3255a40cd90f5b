#!/usr/bin/env bash
# Many small files through `shoal mount` against `rclone mount --vfs-cache-mode full`, over the
# same Azurite behind the counting fault proxy, in one run:
#   write: `cp -r` of N files of S bytes (in directories of 1,000) into a mount. shoal: a mount
#          on node a of a two-node cluster (--replicas 2), so every close returns once the file
#          is on a's disk and on b's; rclone: its close returns with the file in its local cache
#          (its upload follows, 5 s later by default). The store's requests are counted until
#          every file is in the store (untimed).
#   read:  once every file is in the store (waited for, untimed), R parallel readers (Python,
#          each reads whole files of its share of the list) through another mount: shoal's on
#          node b, rclone's a fresh mount with an empty cache (another host).
#   warm:  the same read again through a fresh mount over the same node (rclone: the same
#          cache); the store's requests during it are counted at the proxy (goal: 0).
#   find:  `find MNT | wc -l` through the warm mount, timed, with the store's requests counted.
#   refind: the same `find` again (the listings the first one made are in the node's listing cache).
#
#   bash bench/smallfiles_bench.sh [--files 20000] [--size 64KiB] [--readers 8] [--runs 1]
#        [--out bench/results]
#
# Quick mode: --files 2000. Goal (docs/mount.md): files/s each way >= 1.5x rclone mount's, and
# 0 store requests on the warm read. The nodes run with --metadata-ttl 3600 so that a long run's
# warm read is within the TTL of the first (as the DataLoader test in tests/mount_test.cc).
# Every file read back is compared with its source (diff -r), untimed.
set -euo pipefail
cd "$(dirname "$0")/.."
FILES=20000 SIZE=64KiB READERS=8 RUNS=1 OUT=bench/results
BENCH=smallfiles_bench
source bench/lib.sh
declare -A FLAGS=([--files]=FILES [--size]=SIZE [--readers]=READERS [--runs]=RUNS [--out]=OUT)
parse_flags "$@"
SHOAL=${SHOAL:-build/bin/shoal} SHOALD=${SHOALD:-build/bin/shoald} RCLONE=${RCLONE:-rclone}
need "$SHOAL" "$SHOALD" testenv/node_modules/.bin/azurite-blob
need_rclone
BYTES=$(size_bytes "$SIZE")
TMP=$(mktemp -d "$PWD/bench/.smallfiles.XXXXXX")
MOUNTS=()
unmount_all() {
  for m in "${MOUNTS[@]}"; do
    if mountpoint -q "$m"; then fusermount3 -u "$m" 2> /dev/null || umount -l "$m" 2> /dev/null || true; fi
  done
}
trap 'unmount_all; bench_cleanup' EXIT
now() { date +%s.%N; }
secs() { python3 -c "print(round($2-$1,3))"; }

# fresh_store: an empty Azurite and a new counting proxy in place of the running ones. Each
# system's run starts on one, so neither finds the other's 20,000 objects in the store (Azurite
# slows as it holds more), and none is deleted between runs (Azurite deleted 20,000 blobs in
# about 30 minutes).
AZ_PID="" PROXY_PID=""
fresh_store() {
  if [[ -n "$AZ_PID" ]]; then
    kill "$AZ_PID" "$PROXY_PID" 2> /dev/null || true
    wait "$AZ_PID" "$PROXY_PID" 2> /dev/null || true
  fi
  rm -rf "$TMP/azurite" "$TMP/proxy.port"
  start_azurite; AZ_PID=${PIDS[-1]}
  start_proxy; PROXY_PID=${PIDS[-1]}
  export AZURE_STORAGE_CONNECTION_STRING="$(azurite_connection "$AZ_PORT")"  # untimed checks: straight to Azurite
  "$SHOAL" mb az://sfbench > /dev/null
  rclone_conf "$TMP/rclone.conf" "http://127.0.0.1:$PROXY_PORT/$AZ_ACCOUNT"
}
fresh_store
proxy_reset() { curl -sf -X POST "http://127.0.0.1:$PROXY_PORT/__proxy/reset" > /dev/null; }
# The store's requests since the last reset (by method on stderr, for the log).
proxy_requests() {
  curl -sf "http://127.0.0.1:$PROXY_PORT/__proxy/stats" |
    python3 -c 'import json,sys; s=json.load(sys.stdin); print(s["requests"]); print("  by method:", s["by_method"], file=sys.stderr)'
}

log "Azurite on $AZ_PORT, counting proxy on $PROXY_PORT; writing $FILES source files of $SIZE"
python3 - "$TMP/src" "$FILES" "$BYTES" <<'PY'
import os, sys
root, n, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for i in range(n):
    d = os.path.join(root, "d%03d" % (i // 1000))
    if i % 1000 == 0: os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%05d.bin" % i), "wb") as f: f.write(os.urandom(size))
PY
(cd "$TMP" && find src -type f | sort) > "$TMP/list"
[[ $(wc -l < "$TMP/list") == "$FILES" ]] || die "made $(wc -l < "$TMP/list") files, not $FILES"
DIRS=$(( (FILES + 999) / 1000 ))

# read_all ROOT: R readers, each reading whole files of its share of the list under ROOT.
read_all() {
  python3 - "$1" "$TMP/list" "$READERS" "$BYTES" <<'PY'
import os, sys
root, lst, readers, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
names = open(lst).read().split()
pids = []
for r in range(readers):
    pid = os.fork()
    if pid == 0:
        bad = 0
        for name in names[r::readers]:
            fd = os.open(os.path.join(root, name), os.O_RDONLY)
            n = 0
            while True:
                b = os.read(fd, 1 << 20)
                if not b: break
                n += len(b)
            os.close(fd)
            bad += n != size
        os._exit(1 if bad else 0)
    pids.append(pid)
sys.exit(1 if any(os.waitpid(p, 0)[1] for p in pids) else 0)
PY
}

RESULTS="$TMP/results.tsv"; : > "$RESULTS"
# record SYSTEM RUN PHASE SECONDS [STORE_REQUESTS]
record() {
  printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "${5:-}" >> "$RESULTS"
  log "$(printf '%-14s run %s %-6s %8.2f s %s' "$1" "$2" "$3" "$4" "${5:+($5 store requests)}")"
}
settle_disk() { sync; sleep 2; }
mount_shoal() { # NODE_SOCKET MNT [PREFIX [FLAGS...]]
  local sock="$1" mnt="$2" prefix="${3:-shoal}"; shift 2; shift || true
  mkdir -p "$mnt"; MOUNTS+=("$mnt")
  "$SHOAL" mount "$@" --cache "unix:$sock" "az://sfbench/$prefix/" "$mnt" 2>> "$TMP/mount.log" ||
    { cat "$TMP/mount.log" >&2; die "mount failed"; }
}
unmount_shoal() { "$SHOAL" unmount "$1" 2> /dev/null || fusermount3 -u "$1" 2> /dev/null || true; }
in_store() { "$SHOAL" ls -r "az://sfbench/$1/" 2> /dev/null | wc -l; }
wait_in_store() { # PREFIX: until every file is in the store (10 min at most)
  for _ in $(seq 1200); do [[ $(in_store "$1") -ge $FILES ]] && return 0; sleep 0.5; done
  die "only $(in_store "$1") of $FILES files of $1 reached the store"
}

shoal_run() {
  local run="$1" pa pb t0 t1 n
  pa=$(free_port); pb=$(free_port)
  local peers="a=127.0.0.1:$pa,b=127.0.0.1:$pb"
  local common=(--capacity 16GiB --replicas 2 --metadata-ttl 3600 --peers "$peers" ${SHOALD_FLAGS:-})
  for x in a b; do
    local port; [[ $x == a ]] && port=$pa || port=$pb
    # The nodes reach the store through the counting proxy.
    AZURE_STORAGE_CONNECTION_STRING="$(azurite_connection "$PROXY_PORT")" "$SHOALD" --listen "127.0.0.1:$port" \
      --socket "$TMP/$x.sock" --data-dir "$TMP/node-$x-$run" "${common[@]}" > "$TMP/node-$x.log" 2>&1 &
    PIDS+=($!); eval "NODE_PID_$x=$!"
  done
  wait_port "$pa" && wait_port "$pb" || { cat "$TMP"/node-*.log >&2; die "the two-node cluster did not start"; }
  sleep 0.5
  settle_disk
  mount_shoal "$TMP/a.sock" "$TMP/ma"
  proxy_reset
  t0=$(now); cp -r "$TMP/src" "$TMP/ma/"; t1=$(now)
  unmount_shoal "$TMP/ma"
  "$SHOAL" flush --wait -q --cache "unix:$TMP/a.sock" az://sfbench/shoal/ > /dev/null
  record "shoal mount" "$run" write "$(secs "$t0" "$t1")" "$(proxy_requests)"
  # Again with --async-close (close returns once the mount holds the file), timed until
  # `sync DIR` returned: every file then acknowledged as above, on both nodes' disks.
  settle_disk
  mount_shoal "$TMP/a.sock" "$TMP/mac" shoal-async --async-close
  proxy_reset
  t0=$(now); cp -r "$TMP/src" "$TMP/mac/"; sync "$TMP/mac/src"; t1=$(now)
  "$SHOAL" flush --wait -q --cache "unix:$TMP/a.sock" az://sfbench/shoal-async/ > /dev/null
  record "shoal mount --async-close" "$run" write "$(secs "$t0" "$t1")" "$(proxy_requests)"
  diff -r "$TMP/src" "$TMP/mac/src" > /dev/null || die "the files written with --async-close differ from their sources"
  unmount_shoal "$TMP/mac"
  settle_disk
  mount_shoal "$TMP/b.sock" "$TMP/mb"
  proxy_reset
  t0=$(now); read_all "$TMP/mb" || die "a shoal reader got a short file"; t1=$(now)
  record "shoal mount" "$run" read "$(secs "$t0" "$t1")" "$(proxy_requests)"
  unmount_shoal "$TMP/mb"
  settle_disk
  mount_shoal "$TMP/b.sock" "$TMP/mb"
  proxy_reset
  t0=$(now); read_all "$TMP/mb" || die "a shoal reader got a short file"; t1=$(now)
  record "shoal mount" "$run" warm "$(secs "$t0" "$t1")" "$(proxy_requests)"
  proxy_reset
  t0=$(now); n=$(find "$TMP/mb" | wc -l); t1=$(now)
  record "shoal mount" "$run" find "$(secs "$t0" "$t1")" "$(proxy_requests)"
  [[ $n == $(( FILES + DIRS + 2 )) ]] || die "find through the shoal mount saw $n entries, not $(( FILES + DIRS + 2 ))"
  proxy_reset
  t0=$(now); n=$(find "$TMP/mb" | wc -l); t1=$(now)
  record "shoal mount" "$run" refind "$(secs "$t0" "$t1")" "$(proxy_requests)"
  [[ $n == $(( FILES + DIRS + 2 )) ]] || die "find again through the shoal mount saw $n entries, not $(( FILES + DIRS + 2 ))"
  diff -r "$TMP/src" "$TMP/mb/src" > /dev/null || die "the files read through node b differ from their sources"
  unmount_shoal "$TMP/mb"
  for x in a b; do eval "kill \$NODE_PID_$x; wait \$NODE_PID_$x 2> /dev/null || true"; done
  rm -rf "$TMP/node-a-$run" "$TMP/node-b-$run"
}

rclone_run() {
  local run="$1" t0 t1 n
  settle_disk
  rclone_mount "$TMP/rclone.conf" az:sfbench/rclone "$TMP/rw" "$TMP/rcache-w-$run"
  MOUNTS+=("$TMP/rw")
  proxy_reset
  t0=$(now); cp -r "$TMP/src" "$TMP/rw/"; t1=$(now)
  wait_in_store rclone
  record "rclone mount" "$run" write "$(secs "$t0" "$t1")" "$(proxy_requests)"
  unmount_rclone "$TMP/rw"
  rm -rf "$TMP/rcache-w-$run"
  settle_disk
  # another host: a mount with an empty cache; then again over the same cache (warm)
  rclone_mount "$TMP/rclone.conf" az:sfbench/rclone "$TMP/rr" "$TMP/rcache-r-$run"
  MOUNTS+=("$TMP/rr")
  proxy_reset
  t0=$(now); read_all "$TMP/rr" || die "an rclone reader got a short file"; t1=$(now)
  record "rclone mount" "$run" read "$(secs "$t0" "$t1")" "$(proxy_requests)"
  unmount_rclone "$TMP/rr"
  settle_disk
  rclone_mount "$TMP/rclone.conf" az:sfbench/rclone "$TMP/rr" "$TMP/rcache-r-$run"
  proxy_reset
  t0=$(now); read_all "$TMP/rr" || die "an rclone reader got a short file"; t1=$(now)
  record "rclone mount" "$run" warm "$(secs "$t0" "$t1")" "$(proxy_requests)"
  proxy_reset
  t0=$(now); n=$(find "$TMP/rr" | wc -l); t1=$(now)
  record "rclone mount" "$run" find "$(secs "$t0" "$t1")" "$(proxy_requests)"
  [[ $n == $(( FILES + DIRS + 2 )) ]] || die "find through rclone mount saw $n entries, not $(( FILES + DIRS + 2 ))"
  proxy_reset
  t0=$(now); n=$(find "$TMP/rr" | wc -l); t1=$(now)
  record "rclone mount" "$run" refind "$(secs "$t0" "$t1")" "$(proxy_requests)"
  diff -r "$TMP/src" "$TMP/rr/src" > /dev/null || die "the files read through rclone mount differ from their sources"
  unmount_rclone "$TMP/rr"
  rm -rf "$TMP/rcache-r-$run"
}

for run in $(seq "$RUNS"); do
  if (( run % 2 )); then
    shoal_run "$run"; fresh_store; rclone_run "$run"
  else
    rclone_run "$run"; fresh_store; shoal_run "$run"
  fi
  (( run == RUNS )) || fresh_store
done
log "every file read back matched its source"

mkdir -p "$OUT"
python3 - "$RESULTS" "$OUT" "$FILES" "$SIZE" "$READERS" "$RUNS" <<'PY'
import sys, json, statistics, datetime, os
path, out, files, size, readers, runs = sys.argv[1:7]
files = int(files)
rows = [l.rstrip('\n').split('\t') for l in open(path)]
by, reqs = {}, {}
for name, run, phase, s, r in rows:
    by.setdefault((name, phase), []).append(float(s))
    if r != "": reqs.setdefault((name, phase), []).append(int(r))
def cell(name, phase):
    v = by[(name, phase)]
    return statistics.median(v), min(v), max(v)
what = {"write": f"cp -r of {files} files", "read": f"{readers} readers, another host",
        "warm": f"{readers} readers again", "find": "find | wc -l", "refind": "find | wc -l again"}
lines = ["| phase | system | s, median (min-max) | files/s | store requests | shoal / rclone |",
         "|---|---|---|---|---|---|"]
for phase in ("write", "read", "warm", "find", "refind"):
    base = cell("rclone mount", phase)[0]
    for name in ("shoal mount", "shoal mount --async-close", "rclone mount"):
        if (name, phase) not in by: continue
        m, lo, hi = cell(name, phase)
        r = reqs.get((name, phase))
        rq = "-" if r is None else (str(r[0]) if len(set(r)) == 1 else f"{min(r)}-{max(r)}")
        ratio = f"{base/m:.2f}" if name != "rclone mount" else ""
        lines.append(f"| {phase} ({what[phase]}) | {name} | {m:.2f} ({lo:.2f}-{hi:.2f}) | {files/m:.0f} | {rq} | {ratio} |")
when = datetime.datetime.utcnow().strftime('%Y-%m-%dT%H:%M:%SZ')
md = "\n".join(lines) + (
    f"\n\n{files} files of {size} in directories of 1,000, {runs} run(s), {when}, {os.cpu_count()} cores; Azurite behind "
    "the counting proxy for both. shoal: `cp -r` into a mount on node a of a two-node cluster (--replicas 2: each "
    "close returns once the file is on both nodes' disks; with --async-close, close returns once the mount holds the "
    "file, and the time runs until `sync DIR` returned, every file then on both nodes' disks), read through mounts on "
    "node b after the uploads. rclone "
    "mount: --vfs-cache-mode full --vfs-fast-fingerprint, its close returns with the file in its local cache; read "
    "through a mount with an empty cache, then again over the same cache. Store requests: counted at the proxy "
    "during that phase (the write's: until every file is in the store). Last column: rclone's time / shoal's (above 1: shoal faster; goal >= 1.5). "
    "Every file read back matched its source.\n")
open(os.path.join(out, "smallfiles_bench.md"), "w").write(md)
json.dump({"files": files, "size": size, "readers": int(readers), "runs": int(runs), "date": when,
           "timings_s": [{"system": n, "run": int(r), "phase": p, "seconds": float(s),
                          "store_requests": (int(q) if q != "" else None)} for n, r, p, s, q in rows]},
          open(os.path.join(out, "smallfiles_bench.json"), "w"), indent=1)
print(md)
PY

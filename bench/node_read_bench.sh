#!/usr/bin/env bash
# Reads of one object through a cache, cold and warm: shoald against nginx proxy_cache and a
# BlobFuse-style mount (rclone mount --vfs-cache-mode full), all in front of the same Azurite,
# in one run; and the same object straight from Azurite. Each run starts every cache empty:
# one cold read each, then the warm reads.
#
#   bash bench/node_read_bench.sh [--size 1GiB] [--runs 3] [--latency-ms 20] [--bandwidth 100MB]
#        [--out bench/results]
#
# SHOALD_FLAGS: more flags for shoald (e.g. "--sendfile false", to measure the buffered path).
#
# Every run is done twice: with Azurite raw, and behind the shaping proxy (--latency-ms to
# first byte, --bandwidth per connection). "shoal cat (no cache)" reads the store directly.
#
# Reads go to /dev/null. "curl" rows use one HTTP connection to each server (same client,
# so the comparison is of the servers, warm); the "shoal cat --cache" row is Shoal's own client
# (8 ranged requests in flight), cold and warm; the mount is read with cat. Everything it starts is stopped by
# PID on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE=1GiB RUNS=3 OUT=bench/results LATENCY_MS=20 BANDWIDTH=100MB
BENCH=node_read_bench
source bench/lib.sh
declare -A FLAGS=([--size]=SIZE [--runs]=RUNS [--out]=OUT [--latency-ms]=LATENCY_MS [--bandwidth]=BANDWIDTH)
parse_flags "$@"
SHOAL=build/bin/shoal SHOALD=build/bin/shoald NGINX=${NGINX:-/usr/sbin/nginx}
need "$SHOAL" "$SHOALD" "$NGINX" testenv/node_modules/.bin/azurite-blob
BYTES=$(size_bytes "$SIZE")
TMP=$(mktemp -d /tmp/node_read_bench.XXXXXX)

start_azurite
export AZURE_STORAGE_CONNECTION_STRING="$(azurite_connection "$AZ_PORT")"
log "writing a $SIZE object to Azurite"
head -c "$BYTES" /dev/urandom > "$TMP/obj"
"$SHOAL" mb az://readbench
"$SHOAL" cp -q "$TMP/obj" az://readbench/obj
SUM=$(sha256sum < "$TMP/obj" | cut -d' ' -f1)
rm -f "$TMP/obj"
# nginx cannot sign Shared Key requests: it forwards a read-only SAS the client sends.
SAS=$(node tests/sdk_interop.js azure-sas rl - -)

start_proxy --latency-ms "$LATENCY_MS" --bandwidth "$BANDWIDTH"

# start_caches RUN PORT: a fresh shoald, nginx and rclone mount, each with an empty cache of its
# own, in front of the store at 127.0.0.1:PORT (Azurite, or the shaping proxy in front of it).
start_caches() {
  local run="$1" up="$2"
  rclone_conf "$TMP/rclone.conf" "http://127.0.0.1:$up/$AZ_ACCOUNT"
  NODE_PORT=$(free_port)
  AZURE_STORAGE_CONNECTION_STRING="$(azurite_connection "$up")" "$SHOALD" --listen "127.0.0.1:$NODE_PORT" --data-dir "$TMP/shoald-$run" --capacity 8GiB ${SHOALD_FLAGS:-} > "$TMP/shoald.log" 2>&1 &
  NODE_PID=$!; PIDS+=($NODE_PID)
  wait_port "$NODE_PORT" || { cat "$TMP/shoald.log" >&2; exit 1; }

  start_nginx_cache "$TMP/nginx-$run" "$up" 2

  rclone_mount "$TMP/rclone.conf" az:readbench "$TMP/rmnt" "$TMP/rcache-$run"
  NGINX_URL="http://127.0.0.1:$NGINX_PORT/devstoreaccount1/readbench/obj?$SAS"
  NODE_URL="http://127.0.0.1:$NODE_PORT/v1/object?url=az%3A%2F%2Freadbench%2Fobj"
}
stop_caches() {
  unmount_rclone "$TMP/rmnt"
  kill "$NODE_PID" "$NGINX_PID" 2> /dev/null || true
  wait "$NODE_PID" "$NGINX_PID" 2> /dev/null || true
  rm -rf "$TMP/shoald-$1" "$TMP/nginx-$1" "$TMP/rcache-$1"
}

RESULTS="$TMP/results.tsv"; : > "$RESULTS"
for run in $(seq "$RUNS"); do
  for setting in raw shaped; do
    up=$AZ_PORT; [[ $setting == shaped ]] && up=$PROXY_PORT
    start_caches "$run" "$up"
    timed "curl -> nginx proxy_cache" "$setting cold" curl -sSf "$NGINX_URL"
    timed "shoal cat --cache" "$setting cold" "$SHOAL" cat --cache "127.0.0.1:$NODE_PORT" az://readbench/obj
    timed "shoal cat (no cache)" "$setting cold" \
      env AZURE_STORAGE_CONNECTION_STRING="$(azurite_connection "$up")" "$SHOAL" cat az://readbench/obj
    timed "rclone mount (vfs full)" "$setting cold" cat "$TMP/rmnt/obj"
    timed "curl -> nginx proxy_cache" "$setting warm" curl -sSf "$NGINX_URL"
    timed "curl -> shoald" "$setting warm" curl -sSf "$NODE_URL"
    timed "shoal cat --cache" "$setting warm" "$SHOAL" cat --cache "127.0.0.1:$NODE_PORT" az://readbench/obj
    timed "rclone mount (vfs full)" "$setting warm" cat "$TMP/rmnt/obj"
    if (( run == RUNS )); then
      verify nginx curl -sSf "$NGINX_URL"
      verify shoald curl -sSf "$NODE_URL"
      verify "shoal cat --cache" "$SHOAL" cat --cache "127.0.0.1:$NODE_PORT" az://readbench/obj
      verify "rclone mount" cat "$TMP/rmnt/obj"
    fi
    stop_caches "$run"
  done
done
log "all readers returned the object's exact bytes (sha256)"

mkdir -p "$OUT"
python3 - "$RESULTS" "$BYTES" "$OUT" "$SIZE" "$RUNS" "$LATENCY_MS" "$BANDWIDTH" <<'PY'
import sys, json, statistics, datetime, os
path, size, out, size_text, runs, latency, bandwidth = sys.argv[1:8]
size = int(size)
rows = [l.rstrip('\n').split('\t') for l in open(path)]
by = {}
for name, phase, secs in rows:
    by.setdefault((name, phase), []).append(float(secs))
mib = lambda s: size / 1048576 / s
def cell(name, phase):
    v = by.get((name, phase))
    if not v: return None
    r = [mib(s) for s in v]
    return statistics.median(r), min(r), max(r)
order = ["curl -> nginx proxy_cache", "curl -> shoald", "shoal cat --cache", "shoal cat (no cache)",
         "rclone mount (vfs full)"]
lines = ["| store | phase | reader | MiB/s median (min-max) | vs nginx, same store and phase |", "|---|---|---|---|---|"]
for setting in ("raw", "shaped"):
    for phase in ("cold", "warm"):
        nginx = cell(order[0], f"{setting} {phase}")
        for name in order:
            c = cell(name, f"{setting} {phase}")
            if c is None: continue
            lines.append(f"| {setting} | {phase} | {name} | {c[0]:.0f} ({c[1]:.0f}-{c[2]:.0f}) | {c[0]/nginx[0]:.2f} |")
when = datetime.datetime.utcnow().strftime('%Y-%m-%dT%H:%M:%SZ')
md = "\n".join(lines) + f"\n\n{size_text} object, {runs} runs, each with fresh caches (one cold read, then warm ones), {when}, {os.cpu_count()} cores. " \
     f"Store: Azurite raw, and behind the shaping proxy ({latency} ms to first byte, {bandwidth}/s per connection). " \
     "Reads go to a pipe (wc -c checks the length); each reader's bytes were also checked once with sha256. " \
     "rclone mount: --vfs-cache-mode full --vfs-fast-fingerprint, read with cat.\n"
open(os.path.join(out, "node_read_bench.md"), "w").write(md)
json.dump({"size": size, "runs": int(runs), "date": when, "latency_ms": int(latency), "bandwidth_per_connection": bandwidth,
           "timings_s": [
    {"reader": n, "phase": p, "seconds": float(s)} for n, p, s in rows]},
    open(os.path.join(out, "node_read_bench.json"), "w"), indent=1)
print(md)
PY

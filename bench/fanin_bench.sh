#!/usr/bin/env bash
# Fan-in: R readers on R hosts load the same cold object at once (a model at job start).
# Every host's link is held to L bytes/s out (--egress-limit; nginx limit_rate). Azurite
# behind the counting proxy (src/testing/fault_proxy.js) is the object store, so every row
# also says what the store served.
#
#   bash bench/fanin_bench.sh [--size 256MiB] [--readers 16] [--limit 16MiB] [--runs 3] [--out bench/results]
#                             [--direct 4 (--fan-in-direct)] [--readahead 4 (reader nodes' --readahead)]
#                             [--only-on (just the first row)]
#
# The default L is low on purpose: this one 2-core machine plays 20 hosts, and at 64MiB/s per
# host it runs out of CPU before the emulated links fill (then every row measures the CPU).
#
# Rows, each run from cold (fresh caches):
#   Shoal, fan-in on   4 member shoalds + one shoald --reader per reader host, each reader a
#                      `shoal cat --cache unix:SOCKET` through its host's node. Owners send each
#                      chunk to 4 readers and send the others to readers that have it.
#   Shoal, fan-in off  the same with --fan-in-direct 0: every reader's node gets every chunk
#                      from its owner.
#   nginx proxy_cache  4 nginx caches (proxy_cache_lock, lock timeouts raised), readers spread
#                      over them, limit_rate L / (readers / 4) per connection: the same L per host.
#   direct             every reader `shoal cat` straight from the store (no cache, no limit:
#                      the store's side is not held to L here).
# Times are wall-clock for all R readers to finish; readers write to a pipe (wc -c checks the
# length) and one reader per row is checked with sha256 afterwards, untimed.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE=256MiB READERS=16 LIMIT=16MiB RUNS=3 OUT=bench/results MEMBERS=4 READAHEAD=4 DIRECT=4 ONLY_ON=
BENCH=fanin_bench
source bench/lib.sh
declare -A FLAGS=([--size]=SIZE [--readers]=READERS [--limit]=LIMIT [--runs]=RUNS [--out]=OUT [--readahead]=READAHEAD [--direct]=DIRECT)
declare -A SWITCHES=([--only-on]=ONLY_ON)
parse_flags "$@"
SHOAL=build/bin/shoal SHOALD=build/bin/shoald NGINX=${NGINX:-/usr/sbin/nginx}
need "$SHOAL" "$SHOALD" "$NGINX" testenv/node_modules/.bin/azurite-blob
BYTES=$(size_bytes "$SIZE") LIMIT_BYTES=$(size_bytes "$LIMIT")
(( READERS % MEMBERS == 0 )) || die "--readers must be a multiple of $MEMBERS"
TMP=$(mktemp -d /tmp/fanin_bench.XXXXXX)

start_azurite
start_proxy
export AZURE_STORAGE_CONNECTION_STRING="$(azurite_connection "$PROXY_PORT")"
log "writing a $SIZE object to Azurite"
head -c "$BYTES" /dev/urandom > "$TMP/obj"
"$SHOAL" mb az://faninbench
"$SHOAL" cp -q "$TMP/obj" az://faninbench/model.bin
SUM=$(sha256sum < "$TMP/obj" | cut -d' ' -f1)
rm -f "$TMP/obj"
URL=az://faninbench/model.bin
SAS=$(AZURE_STORAGE_CONNECTION_STRING="$(azurite_connection "$AZ_PORT")" node tests/sdk_interop.js azure-sas rl - -)

store_bytes() { curl -sf "http://127.0.0.1:$PROXY_PORT/__proxy/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["upstream_response_bytes"])'; }

# stop_all: stops what the last row started (the store stays).
ROW_PIDS=()
stop_all() {
  local m
  for m in "$TMP"/rmnt*; do [[ -d "$m" ]] && { fusermount3 -u "$m" 2> /dev/null || umount -l "$m" 2> /dev/null || true; }; done
  for p in "${ROW_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${ROW_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  ROW_PIDS=()
}

# start_shoal DIRECT: 4 members and READERS reader nodes, fresh data dirs; sets SOCKETS, NODES.
start_shoal() {
  local direct="$1" peers="" ports=() i dir="$TMP/shoal"
  rm -rf "$dir"; mkdir -p "$dir"
  for i in $(seq "$MEMBERS"); do ports+=("$(free_port)"); peers+="${peers:+,}n$i=127.0.0.1:${ports[-1]}"; done
  NODES=()
  for i in $(seq "$MEMBERS"); do
    "$SHOALD" --listen "127.0.0.1:${ports[$((i-1))]}" --data-dir "$dir/n$i" --capacity 4GiB --peers "$peers" \
      --egress-limit "$LIMIT" --fan-in-direct "$direct" > "$dir/n$i.log" 2>&1 &
    ROW_PIDS+=($!); PIDS+=($!); NODES+=("127.0.0.1:${ports[$((i-1))]}")
  done
  for i in $(seq "$MEMBERS"); do wait_port "${ports[$((i-1))]}" || die "member $i: $(cat "$dir/n$i.log")"; done
  sleep 0.5  # the members settle on their first epoch
  SOCKETS=()
  for i in $(seq "$READERS"); do
    local port; port=$(free_port)
    "$SHOALD" --reader --node-id "r$i" --peers "$peers" --listen "127.0.0.1:$port" --socket "$dir/r$i.sock" \
      --data-dir "$dir/r$i" --capacity 4GiB --egress-limit "$LIMIT" --fan-in-direct "$direct" \
      --readahead "$READAHEAD" > "$dir/r$i.log" 2>&1 &
    ROW_PIDS+=($!); PIDS+=($!); NODES+=("127.0.0.1:$port")
    SOCKETS+=("unix:$dir/r$i.sock")
    wait_port "$port" || die "reader $i: $(cat "$dir/r$i.log")"
  done
}

# start_nginx: 4 caches in front of the store, fresh; sets NGINX_PORTS.
start_nginx() {
  local i per_conn=$(( LIMIT_BYTES / (READERS / MEMBERS) ))
  NGINX_PORTS=()
  for i in $(seq "$MEMBERS"); do
    start_nginx_cache "$TMP/nginx$i" "$PROXY_PORT" 1 "$per_conn"
    ROW_PIDS+=("$NGINX_PID"); NGINX_PORTS+=("$NGINX_PORT")
  done
}

# start_rclone_mounts: one BlobFuse-style mount per reader host (rclone mount --vfs-cache-mode
# full), each with an empty cache, all through the counting proxy.
start_rclone_mounts() {
  local i
  rclone_conf "$TMP/rclone.conf" "http://127.0.0.1:$PROXY_PORT/$AZ_ACCOUNT"
  for i in $(seq 0 $((READERS-1))); do
    rm -rf "$TMP/rcache$i"
    rclone_mount "$TMP/rclone.conf" az:faninbench "$TMP/rmnt$i" "$TMP/rcache$i"
    ROW_PIDS+=("$RCLONE_MOUNT_PID")
  done
}

# read_as SYSTEM I: reader I of SYSTEM reads the object to stdout.
read_as() {
  case "$1" in
    shoal) "$SHOAL" cat --cache "${SOCKETS[$2]}" "$URL" ;;
    nginx) curl -sSf "http://127.0.0.1:${NGINX_PORTS[$(( $2 % MEMBERS ))]}/devstoreaccount1/faninbench/model.bin?$SAS" ;;
    direct) "$SHOAL" cat "$URL" ;;
    rclone) cat "$TMP/rmnt$2/model.bin" ;;
  esac
}

RESULTS="$TMP/results.tsv"; : > "$RESULTS"
# fan_in NAME SYSTEM: all readers at once; appends "NAME seconds store_bytes max_node_bytes".
fan_in() {
  local name="$1" system="$2" i t0 t1 before pids=()
  before=$(store_bytes)
  t0=$(date +%s.%N)
  for i in $(seq 0 $((READERS-1))); do
    ( got=$(read_as "$system" "$i" | wc -c); [[ "$got" == "$BYTES" ]] || { echo "reader $i got $got bytes" >&2; exit 1; } ) &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || die "$name: a reader failed"; done
  t1=$(date +%s.%N)
  local served=$(( $(store_bytes) - before )) most=0
  if [[ "$system" == shoal ]]; then
    most=$(for n in "${NODES[@]}"; do
      curl -sf "http://$n/metrics" | awk '/^shoal_bytes_served_total /{a=$2} /^shoal_bytes_served_local_total /{b=$2} END{printf "%d\n", a-b}'
    done | sort -n | tail -1)
  elif [[ "$system" == nginx ]]; then
    most=$(( BYTES * READERS / MEMBERS ))  # each cache sends every one of its readers the object
  fi
  printf '%s\t%s\t%s\t%s\n' "$name" "$(python3 -c "print(round($t1-$t0,3))")" "$served" "$most" >> "$RESULTS"
  log "$(printf '%-22s %7.2f s, store served %s MiB, busiest node sent %s MiB' "$name" \
    "$(python3 -c "print($t1-$t0)")" $((served >> 20)) $((most >> 20)))"
}

# verify_reader NAME SYSTEM: the last reader's bytes (Shoal's came down the deepest trees) are
# right; nginx's first reader (a re-read there is held to its limit_rate).
verify_reader() {
  local i=$((READERS-1)); [[ "$2" == nginx ]] && i=0
  verify "$1 reader $i" read_as "$2" "$i"
}

for run in $(seq "$RUNS"); do
  start_shoal "$DIRECT"
  fan_in "Shoal, fan-in on" shoal
  [[ $run == 1 ]] && verify_reader "Shoal, fan-in on" shoal
  stop_all
  [[ -n "$ONLY_ON" ]] && continue
  start_shoal 0
  fan_in "Shoal, fan-in off" shoal
  [[ $run == 1 ]] && verify_reader "Shoal, fan-in off" shoal
  stop_all
  start_nginx
  fan_in "nginx proxy_cache" nginx
  [[ $run == 1 ]] && verify_reader "nginx proxy_cache" nginx
  stop_all
  fan_in "direct from the store" direct
  start_rclone_mounts
  fan_in "rclone mount per host" rclone
  [[ $run == 1 ]] && verify_reader "rclone mount per host" rclone
  stop_all
done
verify "direct from the store" "$SHOAL" cat "$URL"
log "every row's readers returned the object's exact bytes (sha256, one reader per row)"

# The fan-in model at this run's parameters (shoal-sim fan-in), to set beside the measurement.
build/bin/shoal-sim fan-in --readers "$READERS" --members "$MEMBERS" --size-mib $((BYTES >> 20)) \
  --link-mib-s $((LIMIT_BYTES >> 20)) --direct "$DIRECT" --json "$TMP/model.json" > /dev/null 2>&1 \
  || die "shoal-sim fan-in failed"

mkdir -p "$OUT"
python3 - "$TMP/model.json" "$RESULTS" "$BYTES" "$OUT" "$SIZE" "$RUNS" "$READERS" "$LIMIT_BYTES" "$LIMIT" "$MEMBERS" <<'PY'
import sys, json, statistics, datetime, os
model_path, path, size, out, size_text, runs, readers, limit, limit_text, members = sys.argv[1:11]
model = json.load(open(model_path))["results"][0]
size, readers, limit, members = int(size), int(readers), int(limit), int(members)
rows = [l.rstrip('\n').split('\t') for l in open(path)]
by = {}
for name, secs, store, most in rows:
    by.setdefault(name, []).append((float(secs), int(store), int(most)))
mib = lambda b: b / 1048576
order = ["Shoal, fan-in on", "Shoal, fan-in off", "nginx proxy_cache", "direct from the store", "rclone mount per host"]
on = statistics.median(s for s, _, _ in by[order[0]])
# Ideal with every host's link at L: the R copies leave M + R links at once.
ideal = size * readers / ((members + readers) * limit)
lines = ["| system | completion s, median (min-max) | vs Shoal fan-in on | store served | busiest node sent |",
         "|---|---|---|---|---|"]
summary = {}
for name in order:
    v = by.get(name)
    if not v: continue
    t = [s for s, _, _ in v]
    med = statistics.median(t)
    store = statistics.median(x for _, x, _ in v)
    most = statistics.median(x for _, _, x in v)
    summary[name] = {"seconds": t, "store_bytes": [x for _, x, _ in v], "busiest_node_bytes": [x for _, _, x in v]}
    most_cell = f"{mib(most):.0f} MiB ({most / size:.2f} x object)" if most else "n/a (no node between)"
    lines.append(f"| {name} | {med:.1f} ({min(t):.1f}-{max(t):.1f}) | {med / on:.2f} | "
                 f"{mib(store):.0f} MiB ({store / size:.2f} x object) | {most_cell} |")
lines.append(f"| model of fan-in on (shoal-sim fan-in) | {model['model_s']:.1f} | {model['model_s'] / on:.2f} | "
             f"{model['store_mib']:.0f} MiB | {model['busiest_mib']:.0f} MiB |")
when = datetime.datetime.utcnow().strftime('%Y-%m-%dT%H:%M:%SZ')
md = "\n".join(lines) + (
    f"\n\n{readers} readers of one cold {size_text} object in Azurite (behind the counting proxy), every host's link "
    f"held to {limit_text}/s out; {members} member nodes; {runs} runs each, {when}, {os.cpu_count()} cores. "
    f"Ideal with every link busy: {ideal:.1f} s ({readers} copies over {members}+{readers} links). "
    "Busiest node: bytes sent over TCP (to other nodes and remote clients; a reader's own host reads over the "
    "Unix socket). nginx: 4 caches, each sends the object to its readers. Direct readers and rclone mounts are "
    "not held to the limit (the store's side is not). rclone mount: one `rclone mount --vfs-cache-mode full` "
    "per reader host, read with cat.\n")
open(os.path.join(out, "fanin_bench.md"), "w").write(md)
json.dump({"size": size, "readers": readers, "members": members, "egress_limit": limit, "runs": int(runs),
           "date": when, "ideal_seconds": ideal, "model": model, "results": summary},
          open(os.path.join(out, "fanin_bench.json"), "w"), indent=1)
print(md)
PY

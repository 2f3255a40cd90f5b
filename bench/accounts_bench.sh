#!/usr/bin/env bash
# Two storage accounts through one node: does a throttling account slow the other one down?
# Two Azurite instances are two accounts (az://bench@east/, az://bench@west/), each behind
# src/testing/fault_proxy.js (--latency-ms to first byte, --bandwidth per connection, so each
# looks like a store across a network). W writers per account write F files of S bytes at
# once through one shoald (write-back); east's upload rate (its bytes over the time from the
# first write to its last object durable) is measured twice: with west answering half of its
# requests 503, and with west clean. The figure is the ratio of the two (target >= 0.8: the
# healthy account keeps at least 80% of its rate while the other throttles). Every object is
# checked with sha256 afterwards.
#
#   bash bench/accounts_bench.sh [--files 8] [--size 16MiB] [--latency-ms 20] [--bandwidth 50MB]
#        [--error-rate 0.5] [--runs 2] [--out bench/results]
set -euo pipefail
cd "$(dirname "$0")/.."
FILES=8 SIZE=16MiB LATENCY_MS=20 BANDWIDTH=50MB ERROR_RATE=0.5 RUNS=2 OUT=bench/results
BENCH=accounts_bench
source bench/lib.sh
declare -A FLAGS=([--files]=FILES [--size]=SIZE [--latency-ms]=LATENCY_MS [--bandwidth]=BANDWIDTH
                  [--error-rate]=ERROR_RATE [--runs]=RUNS [--out]=OUT)
parse_flags "$@"
SHOAL=build/bin/shoal SHOALD=build/bin/shoald
need "$SHOAL" "$SHOALD" testenv/node_modules/.bin/azurite-blob
BYTES=$(size_bytes "$SIZE")
BW=$(size_bytes "$BANDWIDTH")
TMP=$(mktemp -d /tmp/accounts_bench.XXXXXX)
mkdir -p "$OUT"

# azurite NAME: an Azurite of its own (data in $TMP/NAME), behind a fault proxy; sets
# PORT_<NAME> (the proxy's) and PROXY_<NAME>_PID.
azurite() {
  local name="$1" port
  port=$(free_port)
  testenv/node_modules/.bin/azurite-blob --blobHost 127.0.0.1 --blobPort "$port" --location "$TMP/$name" \
    --silent --skipApiVersionCheck --loose --disableTelemetry > "$TMP/$name.azurite.log" 2>&1 &
  PIDS+=($!)
  wait_port "$port" || die "Azurite $name did not start: $(cat "$TMP/$name.azurite.log")"
  node src/testing/fault_proxy.js --upstream "http://127.0.0.1:$port" --listen 127.0.0.1:0 \
    --port-file "$TMP/$name.proxy.port" --latency-ms "$LATENCY_MS" --bandwidth "$BW" > "$TMP/$name.proxy.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 200); do [[ -s "$TMP/$name.proxy.port" ]] && break; sleep 0.05; done
  printf -v "PORT_$name" '%s' "$(cat "$TMP/$name.proxy.port")"
  wait_port "$(cat "$TMP/$name.proxy.port")" || die "fault proxy of $name did not start"
}
azurite east
azurite west
# configure PORT ERROR_RATE: the proxy's faults now (latency and bandwidth kept).
configure() {
  curl -sS -X POST "http://127.0.0.1:$1/__proxy/config" -H 'Content-Type: application/json' \
    -d "{\"latencyMs\":$LATENCY_MS,\"bandwidth\":$BW,\"errorRate\":$2,\"seed\":$RANDOM}" > /dev/null
}
export SHOAL_AZ_EAST_AZURE_STORAGE_CONNECTION_STRING="$(azurite_connection "$PORT_east")"
export SHOAL_AZ_WEST_AZURE_STORAGE_CONNECTION_STRING="$(azurite_connection "$PORT_west")"
"$SHOAL" mb az://bench@east > /dev/null 2>&1 || true
"$SHOAL" mb az://bench@west > /dev/null 2>&1 || true
for i in $(seq "$FILES"); do
  head -c "$BYTES" /dev/urandom > "$TMP/f$i"
done
SUM=$(cat "$TMP"/f* | sha256sum | cut -d' ' -f1)

# run LABEL WEST_ERROR_RATE: one node, both accounts written at once; prints east's and west's
# rates (bytes/s) and west's 503s.
run() {
  local label="$1" rate="$2" node_dir="$TMP/node.$1.$RANDOM" t0 t1 metrics
  configure "$PORT_east" 0
  configure "$PORT_west" "$rate"
  mkdir -p "$node_dir"
  "$SHOALD" --data-dir "$node_dir/data" --listen 127.0.0.1:0 --port-file "$node_dir/port" --capacity 8GiB \
    --chunk-size 4MiB --upload-concurrency 8 --no-fsync > "$node_dir/log" 2>&1 &
  local pid=$!
  PIDS+=($pid)
  for _ in $(seq 200); do [[ -s "$node_dir/port" ]] && break; sleep 0.05; done
  local node="127.0.0.1:$(cat "$node_dir/port")"
  t0=$(date +%s.%N)
  local writers=()
  for acct in east west; do
    for i in $(seq "$FILES"); do
      "$SHOAL" cp -q --cache "$node" "$TMP/f$i" "az://bench@$acct/$label/f$i" &
      writers+=($!)
    done
  done
  wait_for() {  # until ACCOUNT's uploads reach FILES; prints the time
    local acct="$1"
    while :; do
      local n
      n=$(curl -sS "http://$node/metrics" | awk -v k="shoal_account_uploads_total{account=\"az@$acct\"}" '$1 == k { print $2 }')
      [[ "${n:-0}" -ge "$FILES" ]] && { date +%s.%N; return; }
      sleep 0.05
    done
  }
  local t_east t_west
  t_east=$(wait_for east)
  t_west=$(wait_for west)
  for w in "${writers[@]}"; do wait "$w" || die "$label: a writer failed"; done
  metrics=$(curl -sS "http://$node/metrics")
  kill "$pid"; wait "$pid" 2> /dev/null || true
  for acct in east west; do
    local got
    got=$(for i in $(seq "$FILES"); do "$SHOAL" cat "az://bench@$acct/$label/f$i"; done | sha256sum | cut -d' ' -f1)
    [[ "$got" == "$SUM" ]] || die "$label: az://bench@$acct/$label/ has wrong bytes"
  done
  local total=$((FILES * BYTES))
  local east_rate west_rate throttles
  east_rate=$(python3 -c "print($total / ($t_east - $t0))")
  west_rate=$(python3 -c "print($total / ($t_west - $t0))")
  throttles=$(awk '$1 == "shoal_account_store_throttles_total{account=\"az@west\"}" { print $2 }' <<< "$metrics")
  log "$(printf '%-10s east %7.1f MB/s  west %7.1f MB/s  west 503s %s' "$label" \
    "$(python3 -c "print($east_rate/1e6)")" "$(python3 -c "print($west_rate/1e6)")" "$throttles")"
  echo "$east_rate $west_rate $throttles"
}

log "$FILES files of $SIZE per account, proxies: $LATENCY_MS ms, $BANDWIDTH/s per connection; west faulty: $ERROR_RATE 503s"
RESULTS="$TMP/results"
: > "$RESULTS"
for r in $(seq "$RUNS"); do
  echo "clean $(run "clean$r" 0)" >> "$RESULTS"
  echo "faulty $(run "faulty$r" "$ERROR_RATE")" >> "$RESULTS"
done
python3 - "$RESULTS" "$OUT" "$FILES" "$SIZE" "$LATENCY_MS" "$BANDWIDTH" "$ERROR_RATE" <<'PY'
import json, statistics, sys
results, out, files, size, latency, bandwidth, error_rate = sys.argv[1:]
rows = [l.split() for l in open(results) if l.strip()]
east = {k: [float(r[1]) for r in rows if r[0] == k] for k in ("clean", "faulty")}
west = {k: [float(r[2]) for r in rows if r[0] == k] for k in ("clean", "faulty")}
throttles = [int(float(r[3] or 0)) for r in rows if r[0] == "faulty"]
ratio = statistics.median(east["faulty"]) / statistics.median(east["clean"])
report = {"files": int(files), "size": size, "latency_ms": int(latency), "bandwidth": bandwidth,
          "west_error_rate": float(error_rate), "east_rate_clean": east["clean"], "east_rate_faulty": east["faulty"],
          "west_rate_clean": west["clean"], "west_rate_faulty": west["faulty"], "west_503s": throttles,
          "east_ratio": round(ratio, 3)}
json.dump(report, open(f"{out}/accounts_bench.json", "w"), indent=2)
mb = lambda v: f"{statistics.median(v) / 1e6:.1f} MB/s"
with open(f"{out}/accounts_bench.md", "w") as f:
    f.write("# Two accounts, one throttling (bench/accounts_bench.sh)\n\n"
            f"{files} files of {size} per account written at once through one shoald; each Azurite behind the fault "
            f"proxy ({latency} ms, {bandwidth}/s per connection); west answers {error_rate} of requests 503 in the "
            "faulty runs. Medians of the runs.\n\n"
            "| run | east upload rate | west upload rate | west 503s |\n|---|---|---|---|\n"
            f"| west clean | {mb(east['clean'])} | {mb(west['clean'])} | 0 |\n"
            f"| west 50% 503 | {mb(east['faulty'])} | {mb(west['faulty'])} | {throttles} |\n\n"
            f"east's rate with west throttling / without: **{ratio:.2f}** (target >= 0.8)\n")
print(f"east rate ratio (west faulty / clean): {ratio:.3f}")
PY

#!/usr/bin/env bash
# The front door with unmodified SDKs (bench/door_client.py: Debian's boto3 and azure.storage.blob)
# against what a user would otherwise do, in the same run. One shoald serves a door bucket in
# front of Azurite behind the shaping proxy (--latency-ms to first byte, --bandwidth per
# connection). For each of S3 (boto3) and Azure Blob (the Azure SDK):
#   warm    the SDK's download of a cached object through the door, against `shoal cat --cache`
#           of it (target: the SDK at >= 0.9x shoal's rate). Two more rows tell the door's part
#           from the SDK's own: curl fetching the same ranges as the SDK, as many at once, through
#           the door (the door's rate for that pattern), and the SDK against a bare sendfile
#           server (bench/range_server.py: the SDK's own floor, whatever the server)
#   cold    the SDK's download of an object the node has not seen, through the door, against the
#           Azure SDK reading the shaped store directly (the store is Azure Blob here, so its own
#           SDK is the direct reader for both) (target >= 0.9x)
#   upload  the SDK's upload through the door, answered once acknowledged (fsynced on the node,
#           journaled), against `dd conv=fsync` of the same bytes to local disk (target <= 1.2x
#           the time); and the SDK's upload to range_server.py, which reads and drops the bytes
#           (the SDK's own cost of sending them)
# Every read is checked with sha256. Figures are medians of --runs runs.
#
#   bash bench/door_bench.sh [--size 1GiB] [--runs 3] [--latency-ms 20] [--bandwidth 100MB]
#        [--out bench/results]
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE=1GiB RUNS=3 LATENCY_MS=20 BANDWIDTH=100MB OUT=bench/results
BENCH=door_bench
source bench/lib.sh
declare -A FLAGS=([--size]=SIZE [--runs]=RUNS [--latency-ms]=LATENCY_MS [--bandwidth]=BANDWIDTH [--out]=OUT)
parse_flags "$@"
SHOAL=build/bin/shoal SHOALD=build/bin/shoald PY=/usr/bin/python3
need "$SHOAL" "$SHOALD" testenv/node_modules/.bin/azurite-blob
"$PY" -c "import boto3, azure.storage.blob" 2> /dev/null || die "boto3 and azure.storage.blob are missing: make deps-test"
BYTES=$(size_bytes "$SIZE")
BW=$(size_bytes "$BANDWIDTH")
TMP=$(mktemp -d /tmp/door_bench.XXXXXX)
mkdir -p "$OUT"
RESULTS="$TMP/results"
: > "$RESULTS"

start_azurite
start_proxy --latency-ms "$LATENCY_MS" --bandwidth "$BW"
export AZURE_STORAGE_CONNECTION_STRING="$(azurite_connection "$AZ_PORT")"  # setup: straight to Azurite
"$SHOAL" mb az://bench > /dev/null 2>&1 || true
head -c "$BYTES" /dev/urandom > "$TMP/object"
SUM=$(sha256sum "$TMP/object" | cut -d' ' -f1)
for r in $(seq "$RUNS"); do
  for k in s3 az; do "$SHOAL" cp -q "$TMP/object" "az://bench/cold/$k-$r"; done
done
"$SHOAL" cp -q "$TMP/object" az://bench/direct

# The door's key: one `both` key (an S3 key id and an Azure account name at once).
SECRET=$(head -c 32 /dev/urandom | base64 -w0)
echo "both shoalbench $SECRET bench:read-write" > "$TMP/keys"
export DOOR_KEY="shoalbench:$SECRET"
AZ_DIRECT="$(azurite_connection "$PROXY_PORT")"
AZURE_STORAGE_CONNECTION_STRING="$AZ_DIRECT" "$SHOALD" --data-dir "$TMP/node" --listen 127.0.0.1:0 \
  --port-file "$TMP/node.port" --capacity $((4 * BYTES + (1 << 30))) --bucket bench=az://bench \
  --credentials "$TMP/keys" > "$TMP/node.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 200); do [[ -s "$TMP/node.port" ]] && break; sleep 0.05; done
NODE="127.0.0.1:$(cat "$TMP/node.port")"
wait_port "${NODE#*:}" || die "shoald did not start: $(cat "$TMP/node.log")"
AZ_DOOR="DefaultEndpointsProtocol=http;AccountName=shoalbench;AccountKey=$SECRET;BlobEndpoint=http://$NODE/shoalbench;"

# The SDKs' floor: a bare file server of the same bytes.
python3 bench/range_server.py "$TMP/bare.port" "$TMP/object" > "$TMP/bare.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 200); do [[ -s "$TMP/bare.port" ]] && break; sleep 0.05; done
BARE="127.0.0.1:$(cat "$TMP/bare.port")"
wait_port "${BARE#*:}" || die "range_server.py did not start: $(cat "$TMP/bare.log")"
AZ_BARE="DefaultEndpointsProtocol=http;AccountName=shoalbench;AccountKey=$SECRET;BlobEndpoint=http://$BARE/shoalbench;"

# ranges URL FIRST CHUNK PARALLEL: curl reads the object as an SDK does: its first FIRST bytes
# alone (0: none), then the rest in CHUNK-byte ranges, PARALLEL at once.
ranges() {
  local url="$1" first="$2" chunk="$3" par="$4" cfg="$TMP/ranges.cfg" off
  if (( first > 0 )); then curl -sS --fail -o /dev/null -r "0-$((first - 1))" "$url" || return 1; fi
  : > "$cfg"
  for ((off = first; off < BYTES; off += chunk)); do
    (( off > first )) && echo next >> "$cfg"
    printf 'url = "%s"\nrange = %d-%d\noutput = /dev/null\n' "$url" "$off" \
      "$(( off + chunk < BYTES ? off + chunk - 1 : BYTES - 1 ))" >> "$cfg"
  done
  curl -sS --no-progress-meter --fail -Z --parallel-max "$par" -K "$cfg"
}

# sdk NAME PHASE OP WHERE KEY [FILE]: one door_client.py operation, its seconds to $RESULTS.
sdk() {
  local name="$1" phase="$2" op="$3" where="$4" key="$5" file="${6:-}" out
  out=$("$PY" bench/door_client.py "$op" "$where" bench "$key" ${file:+"$file"}) || die "$name failed"
  read -r secs digest <<< "$out"
  if [[ "$op" == *-get && "$digest" != "$SUM" ]]; then die "$name returned wrong bytes"; fi
  printf '%s\t%s\t%s\n' "$name" "$phase" "$secs" >> "$RESULTS"
  log "$(printf '%-34s %-6s %7.2f s' "$name" "$phase" "$secs")"
}
# clock NAME PHASE CMD...: CMD's seconds to $RESULTS.
clock() {
  local name="$1" phase="$2" t0 t1; shift 2
  t0=$(date +%s.%N); "$@" > /dev/null; t1=$(date +%s.%N)
  printf '%s\t%s\t%s\n' "$name" "$phase" "$(python3 -c "print(round($t1-$t0,3))")" >> "$RESULTS"
  log "$(printf '%-34s %-6s %7.2f s' "$name" "$phase" "$(python3 -c "print($t1-$t0)")")"
}

log "$SIZE object; store behind the proxy at $LATENCY_MS ms, $BANDWIDTH/s per connection; $RUNS runs"
for r in $(seq "$RUNS"); do
  sdk "boto3 via door" cold s3-get "http://$NODE" "cold/s3-$r"
  sdk "azure sdk via door" cold az-get "$AZ_DOOR" "cold/az-$r"
  sdk "azure sdk, store direct" cold az-get "$AZ_DIRECT" direct
  verify "shoal cat --cache" "$SHOAL" cat --cache "$NODE" "az://bench/cold/s3-$r"
  clock "shoal cat --cache" warm "$SHOAL" cat --cache "$NODE" "az://bench/cold/s3-$r"
  sdk "boto3 via door" warm s3-get "http://$NODE" "cold/s3-$r"
  sdk "azure sdk via door" warm az-get "$AZ_DOOR" "cold/s3-$r"
  # The same ranges, as many at once, with curl: boto3's (a HEAD, 8 MiB, 10 at once) and the
  # Azure SDK's (32 MiB first, then 4 MiB, 8 at once).
  clock "curl, boto3's ranges, via door" warm ranges "$("$PY" bench/door_client.py s3-url "http://$NODE" bench "cold/s3-$r")" 0 $((8 << 20)) 10
  clock "curl, azure's ranges, via door" warm ranges "$("$PY" bench/door_client.py az-url "$AZ_DOOR" bench "cold/s3-$r")" $((32 << 20)) $((4 << 20)) 8
  sdk "boto3, bare file server" floor s3-get "http://$BARE" bench "cold/s3-$r"
  sdk "azure sdk, bare file server" floor az-get "$AZ_BARE" bench "cold/s3-$r"
  clock "dd conv=fsync (local disk)" upload dd if="$TMP/object" of="$TMP/local" bs=8M conv=fsync status=none
  rm -f "$TMP/local"
  sdk "boto3 via door" upload s3-put "http://$NODE" "up/s3-$r" "$TMP/object"
  sdk "azure sdk via door" upload az-put "$AZ_DOOR" "up/az-$r" "$TMP/object"
  sdk "boto3, bare sink" upload s3-put "http://$BARE" "up/s3-$r" "$TMP/object"
  sdk "azure sdk, bare sink" upload az-put "$AZ_BARE" "up/az-$r" "$TMP/object"
  # Uploads to the store finish before the next run's figures are taken.
  for _ in $(seq 600); do
    curl -sS "http://$NODE/metrics" | grep -q '^shoal_staged_objects 0$' && break
    sleep 0.5
  done
done
for r in $(seq "$RUNS"); do
  for k in s3 az; do verify "upload $k-$r" "$SHOAL" cat "az://bench/up/$k-$r"; done
done

python3 - "$RESULTS" "$OUT" "$SIZE" "$LATENCY_MS" "$BANDWIDTH" "$RUNS" <<'PY'
import collections, json, statistics, sys
results, out, size, latency, bandwidth, runs = sys.argv[1:]
t = collections.defaultdict(list)
for line in open(results):
    name, phase, secs = line.rstrip("\n").split("\t")
    t[(name, phase)].append(float(secs))
med = {k: statistics.median(v) for k, v in t.items()}
def ratio(a, b): return round(med[a] / med[b], 3)
figures = {
    "s3_warm_vs_shoal_cat": ratio(("shoal cat --cache", "warm"), ("boto3 via door", "warm")),
    "s3_cold_vs_store_direct": ratio(("azure sdk, store direct", "cold"), ("boto3 via door", "cold")),
    "s3_upload_vs_local_disk": ratio(("boto3 via door", "upload"), ("dd conv=fsync (local disk)", "upload")),
    "azure_warm_vs_shoal_cat": ratio(("shoal cat --cache", "warm"), ("azure sdk via door", "warm")),
    "azure_cold_vs_store_direct": ratio(("azure sdk, store direct", "cold"), ("azure sdk via door", "cold")),
    "azure_upload_vs_local_disk": ratio(("azure sdk via door", "upload"), ("dd conv=fsync (local disk)", "upload")),
    # The door's part of a warm read, and the SDK's own floor.
    "s3_ranges_via_door_vs_shoal_cat": ratio(("shoal cat --cache", "warm"), ("curl, boto3's ranges, via door", "warm")),
    "azure_ranges_via_door_vs_shoal_cat": ratio(("shoal cat --cache", "warm"), ("curl, azure's ranges, via door", "warm")),
    "s3_warm_vs_bare_server": ratio(("boto3, bare file server", "floor"), ("boto3 via door", "warm")),
    "azure_warm_vs_bare_server": ratio(("azure sdk, bare file server", "floor"), ("azure sdk via door", "warm")),
    # The SDK's own cost of sending the bytes, against the same dd.
    "s3_upload_to_bare_sink_vs_local_disk": ratio(("boto3, bare sink", "upload"), ("dd conv=fsync (local disk)", "upload")),
    "azure_upload_to_bare_sink_vs_local_disk": ratio(("azure sdk, bare sink", "upload"), ("dd conv=fsync (local disk)", "upload")),
}
report = {"size": size, "latency_ms": int(latency), "bandwidth": bandwidth, "runs": int(runs),
          "seconds": {f"{n} / {p}": v for (n, p), v in t.items()}, "ratios": figures}
json.dump(report, open(f"{out}/door_bench.json", "w"), indent=2)
rows = "".join(f"| {n} | {p} | {med[(n, p)]:.2f} s | {min(v):.2f}-{max(v):.2f} s |\n" for (n, p), v in sorted(t.items()))
targets = {"s3_warm_vs_shoal_cat": ">= 0.9", "s3_cold_vs_store_direct": ">= 0.9", "s3_upload_vs_local_disk": "<= 1.2",
           "azure_warm_vs_shoal_cat": ">= 0.9", "azure_cold_vs_store_direct": ">= 0.9",
           "azure_upload_vs_local_disk": "<= 1.2", "s3_ranges_via_door_vs_shoal_cat": ">= 0.9",
           "azure_ranges_via_door_vs_shoal_cat": ">= 0.9", "s3_warm_vs_bare_server": ">= 0.9",
           "azure_warm_vs_bare_server": ">= 0.9", "s3_upload_to_bare_sink_vs_local_disk": "(floor)",
           "azure_upload_to_bare_sink_vs_local_disk": "(floor)"}
with open(f"{out}/door_bench.md", "w") as f:
    f.write("# The front door with unmodified SDKs (bench/door_bench.sh)\n\n"
            f"One {size} object; the store (Azurite) behind the shaping proxy at {latency} ms to first byte, "
            f"{bandwidth}/s per connection; medians of {runs} runs. Reads and writes ratios are rates "
            "(the peer's time over the SDK's); upload ratios are times (the SDK's acknowledgement over a "
            "local `dd conv=fsync`).\n\n| who | phase | median | range |\n|---|---|---|---|\n" + rows +
            "\n| figure | value | target |\n|---|---|---|\n" +
            "".join(f"| {k} | {v} | {targets[k]} |\n" for k, v in figures.items()))
for k, v in figures.items():
    print(f"{k}: {v} (target {targets[k]})")
PY

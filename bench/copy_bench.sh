#!/usr/bin/env bash
# copy_bench.sh - object-copy benchmark: `shoal cp` against `rclone copyto` on Azurite.
#
# Uploads a random file of --size to Azurite and downloads a reference blob back, --runs
# times per tool, in two settings:
#   raw     clients talk straight to Azurite
#   shaped  clients talk to Azurite through src/testing/fault_proxy.js, which adds
#           --latency-ms to every request and caps every connection at --bandwidth
# Tools are interleaved within each run (the tool that goes first alternates from run to
# run) so both see the same machine conditions. Every copy is verified: downloads with
# cmp against the source file, uploads by blob size, and once per setting each tool's
# upload is downloaded back by the other tool and compared with cmp.
# Writes OUT/copy_bench.json (raw timings) and OUT/copy_bench.md (table), and prints the
# table. Everything it starts listens on 127.0.0.1 only and is stopped by PID on exit.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
SHOAL="${SHOAL:-$ROOT/build/bin/shoal}"
AZURITE="$ROOT/testenv/node_modules/.bin/azurite-blob"
PROXY_JS="$ROOT/src/testing/fault_proxy.js"
RCLONE="${RCLONE:-rclone}"

SIZE_ARG="1GiB"
RUNS=3
LATENCY_MS=20
BANDWIDTH="100MB"
OUT="$ROOT/bench/results"

usage() {
  cat <<EOF
usage: bash bench/copy_bench.sh [--size 1GiB] [--runs 3] [--latency-ms 20] [--bandwidth 100MB] [--out bench/results]

Times 'shoal cp' and 'rclone copyto' uploading and downloading one object of --size on
Azurite, straight (raw) and through the fault proxy (shaped: --latency-ms per request,
--bandwidth per connection), --runs times each, and verifies every copy.

  --size SIZE        object size (default 1GiB); KiB/MiB/GiB = x1024, K/KB/M/MB/G/GB = x1000
  --runs N           timed copies per tool, direction and setting (default 3)
  --latency-ms N     shaped setting: delay added to every request (default 20)
  --bandwidth RATE   shaped setting: cap per connection, in bytes/s, fault_proxy syntax
                     (default 100MB = 100e6 B/s; MiB etc. = x1024)
  --out DIR          where copy_bench.json and copy_bench.md go (default bench/results)
  -h, --help         this text

Environment: SHOAL (default build/bin/shoal), RCLONE (default rclone).
Needs node, rclone, /usr/bin/time, cmp, and Azurite in testenv/node_modules (make deps-test).
EOF
}

while [[ $# -gt 0 ]]; do
  case "$1" in
    --size) SIZE_ARG="${2:?--size needs a value}"; shift 2 ;;
    --size=*) SIZE_ARG="${1#*=}"; shift ;;
    --runs) RUNS="${2:?--runs needs a value}"; shift 2 ;;
    --runs=*) RUNS="${1#*=}"; shift ;;
    --latency-ms) LATENCY_MS="${2:?--latency-ms needs a value}"; shift 2 ;;
    --latency-ms=*) LATENCY_MS="${1#*=}"; shift ;;
    --bandwidth) BANDWIDTH="${2:?--bandwidth needs a value}"; shift 2 ;;
    --bandwidth=*) BANDWIDTH="${1#*=}"; shift ;;
    --out) OUT="${2:?--out needs a value}"; shift 2 ;;
    --out=*) OUT="${1#*=}"; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "copy_bench: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done

die() { echo "copy_bench: $*" >&2; exit 1; }
log() { echo "[copy_bench $(date +%H:%M:%S)] $*" >&2; }

# "1GiB" -> 1073741824, "100MB" -> 100000000, "4096" -> 4096
parse_size() {
  local s="$1" n unit mult
  [[ "$s" =~ ^([0-9]+)([KkMmGgTt]?)(i?)[Bb]?$ ]] || return 1
  n="${BASH_REMATCH[1]}"; unit="${BASH_REMATCH[2]^^}"
  local base=1000; [[ -n "${BASH_REMATCH[3]}" ]] && base=1024
  case "$unit" in
    "") mult=1 ;; K) mult=$base ;; M) mult=$((base * base)) ;;
    G) mult=$((base * base * base)) ;; T) mult=$((base * base * base * base)) ;;
  esac
  echo $((n * mult))
}
SIZE="$(parse_size "$SIZE_ARG")" || die "bad --size: $SIZE_ARG"
[[ "$SIZE" -gt 0 ]] || die "--size must be > 0"
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || die "bad --runs: $RUNS"
[[ "$LATENCY_MS" =~ ^[0-9]+$ ]] || die "bad --latency-ms: $LATENCY_MS"
[[ "$BANDWIDTH" =~ ^[0-9]+(\.[0-9]+)?[KkMmGg]?i?[Bb]?$ ]] || die "bad --bandwidth: $BANDWIDTH"
mkdir -p "$OUT"; OUT="$(cd "$OUT" && pwd)"

[[ -x "$SHOAL" ]] || die "$SHOAL not found: run 'make build'"
[[ -x "$AZURITE" ]] || die "$AZURITE not found: run 'make deps-test'"
for t in node "$RCLONE" cmp; do command -v "$t" > /dev/null || die "$t not found: run 'make deps-test'"; done
[[ -x /usr/bin/time ]] || die "/usr/bin/time not found (Debian package 'time')"

# ---------------------------------------------------------------- the two tools' flags
# shoal: its defaults (8 MiB parts, 8 in flight), progress bar off.
SHOAL_FLAGS=(-q)
# rclone 1.60, tuned on this machine (see bench/README.md):
#  --no-check-dest                   never skip or compare against the destination
#  --azureblob-chunk-size 8Mi        upload blocks of 8 MiB (default 4 MiB), like shoal's parts
#  --azureblob-upload-concurrency 16 blocks in flight per upload (the 1.60 default, made explicit)
#  --azureblob-disable-checksum      do not read the whole file for an MD5 before uploading
#                                    (shoal stores no MD5 either; cmp verifies the bytes)
#  --multi-thread-streams 8          ranged GETs in parallel per download, as shoal's -j 8
#  --multi-thread-cutoff 16Mi        use them from 16 MiB up (default 250 MiB)
#  --ignore-checksum                 no MD5 re-read after a download (cmp verifies the bytes)
RCLONE_COMMON=(-q --no-check-dest)
RCLONE_UP_FLAGS=(--azureblob-chunk-size 8Mi --azureblob-upload-concurrency 16 --azureblob-disable-checksum)
RCLONE_DOWN_FLAGS=(--multi-thread-streams 8 --multi-thread-cutoff 16Mi --ignore-checksum)

# ---------------------------------------------------------------- processes and cleanup
TMP="$(mktemp -d /tmp/copy_bench.XXXXXX)"
PIDS=()
cleanup() {
  local rc=$?
  for pid in "${PIDS[@]}"; do kill "$pid" 2> /dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2> /dev/null || true; done
  rm -rf "$TMP"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
wait_port() { # wait_port PORT PID: until something listens on 127.0.0.1:PORT, or PID died
  for _ in $(seq 200); do
    kill -0 "$2" 2> /dev/null || return 1
    node -e 'const c=require("net").connect(+process.argv[1],"127.0.0.1",()=>{c.end();process.exit(0)});c.on("error",()=>process.exit(1))' "$1" && return 0
    sleep 0.1
  done
  return 1
}

ACCOUNT=devstoreaccount1
KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
CONTAINER=copybench

AZ_PORT=""
for _ in 1 2 3; do # a port picked free may be taken before Azurite binds it: retry
  port="$(free_port)"
  mkdir -p "$TMP/azurite"
  "$AZURITE" --blobHost 127.0.0.1 --blobPort "$port" --location "$TMP/azurite" --silent \
    --skipApiVersionCheck --loose --disableTelemetry > "$TMP/azurite.log" 2>&1 &
  pid=$!
  if wait_port "$port" "$pid"; then AZ_PORT="$port"; PIDS+=("$pid"); break; fi
  kill "$pid" 2> /dev/null || true; wait "$pid" 2> /dev/null || true
done
[[ -n "$AZ_PORT" ]] || { cat "$TMP/azurite.log" >&2; die "Azurite did not start"; }

node "$PROXY_JS" --upstream "http://127.0.0.1:$AZ_PORT" --listen 127.0.0.1:0 --port-file "$TMP/proxy.port" \
  --latency-ms "$LATENCY_MS" --bandwidth "$BANDWIDTH" > "$TMP/proxy.log" 2>&1 &
PROXY_PID=$!; PIDS+=("$PROXY_PID")
for _ in $(seq 200); do [[ -s "$TMP/proxy.port" ]] && break; kill -0 "$PROXY_PID" 2> /dev/null || break; sleep 0.05; done
[[ -s "$TMP/proxy.port" ]] || { cat "$TMP/proxy.log" >&2; die "fault proxy did not start"; }
PROXY_PORT="$(cat "$TMP/proxy.port")"
wait_port "$PROXY_PORT" "$PROXY_PID" || die "fault proxy not reachable"
log "Azurite on 127.0.0.1:$AZ_PORT, fault proxy on 127.0.0.1:$PROXY_PORT (latency ${LATENCY_MS} ms, ${BANDWIDTH}/s per connection)"

endpoint_of() { # endpoint_of SETTING
  case "$1" in
    raw) echo "http://127.0.0.1:$AZ_PORT/$ACCOUNT" ;;
    shaped) echo "http://127.0.0.1:$PROXY_PORT/$ACCOUNT" ;;
  esac
}
# rclone 1.60: with use_emulator = true the endpoint is used as given; without it the
# endpoint is taken as a host suffix (https://ACCOUNT.ENDPOINT) and lookups go to DNS.
for setting in raw shaped; do
  cat > "$TMP/rclone-$setting.conf" <<EOF
[az]
type = azureblob
account = $ACCOUNT
key = $KEY
endpoint = $(endpoint_of "$setting")
use_emulator = true
EOF
done
shoal_env() { # shoal_env SETTING -> connection string
  echo "DefaultEndpointsProtocol=http;AccountName=$ACCOUNT;AccountKey=$KEY;BlobEndpoint=$(endpoint_of "$1");"
}

# Run a private copy of the shoal binary, so a rebuild during the benchmark cannot swap it.
for _ in $(seq 60); do
  cp "$SHOAL" "$TMP/shoal" 2> /dev/null && "$TMP/shoal" --version > /dev/null 2>&1 && break
  rm -f "$TMP/shoal"; sleep 5 # being rebuilt: wait for the linker to finish
done
[[ -x "$TMP/shoal" ]] || die "could not run a copy of $SHOAL"
SHOAL="$TMP/shoal"

# ---------------------------------------------------------------- data
SRC="$TMP/src.bin"
log "writing $SIZE bytes of random data"
head -c "$SIZE" /dev/urandom > "$SRC"
[[ "$(stat -c %s "$SRC")" == "$SIZE" ]] || die "could not write the source file"
mkdir -p "$TMP/dl"

export AZURE_STORAGE_CONNECTION_STRING; AZURE_STORAGE_CONNECTION_STRING="$(shoal_env raw)"
"$SHOAL" mb "az://$CONTAINER" > /dev/null
# Reference blob for the downloads, written once (untimed) straight to Azurite.
REF="ref.bin"
"$SHOAL" cp -q "$SRC" "az://$CONTAINER/$REF"

# ---------------------------------------------------------------- one copy
# run_copy SETTING TOOL DIRECTION NAME: times one copy, verifies it, appends a record.
RECORDS="$TMP/records.tsv"; : > "$RECORDS"
CHECKS="$TMP/checks.tsv"; : > "$CHECKS"
copy_cmd() { # copy_cmd SETTING TOOL SRC DST DIRECTION: sets CMD to the copy command line
  local setting="$1" tool="$2" src="$3" dst="$4" dir="$5"
  if [[ "$tool" == shoal ]]; then
    CMD=(env "AZURE_STORAGE_CONNECTION_STRING=$(shoal_env "$setting")" "$SHOAL" cp "${SHOAL_FLAGS[@]}" "$src" "$dst")
  elif [[ "$dir" == upload ]]; then
    CMD=("$RCLONE" --config "$TMP/rclone-$setting.conf" copyto "${RCLONE_COMMON[@]}" "${RCLONE_UP_FLAGS[@]}" "$src" "$dst")
  else
    CMD=("$RCLONE" --config "$TMP/rclone-$setting.conf" copyto "${RCLONE_COMMON[@]}" "${RCLONE_DOWN_FLAGS[@]}" "$src" "$dst")
  fi
}
url_of() { # url_of TOOL NAME
  if [[ "$1" == shoal ]]; then echo "az://$CONTAINER/$2"; else echo "az:$CONTAINER/$2"; fi
}
blob_size() { # blob_size NAME (straight to Azurite)
  AZURE_STORAGE_CONNECTION_STRING="$(shoal_env raw)" "$SHOAL" stat "az://$CONTAINER/$1" | awk '$1 == "size:" {print $2}'
}
run_copy() {
  local setting="$1" tool="$2" dir="$3" name="$4" run="$5" order="$6"
  local src dst local_out="" t0 t1 rss secs verified
  if [[ "$dir" == upload ]]; then
    src="$SRC"; dst="$(url_of "$tool" "$name")"
  else
    src="$(url_of "$tool" "$REF")"; local_out="$TMP/dl/$name"; dst="$local_out"
  fi
  copy_cmd "$setting" "$tool" "$src" "$dst" "$dir"
  # /usr/bin/time's %M is the "Maximum resident set size" of -v: the copy process's peak RSS.
  t0="$(date +%s.%N)"
  if ! /usr/bin/time -f '%M' -o "$TMP/rss" "${CMD[@]}" 2> "$TMP/copy.err"; then
    cat "$TMP/copy.err" >&2
    die "$tool $dir ($setting, run $run) failed"
  fi
  t1="$(date +%s.%N)"
  rss="$(tail -n 1 "$TMP/rss")"
  secs="$(node -e 'console.log((process.argv[2] - process.argv[1]).toFixed(3))' "$t0" "$t1")"
  if [[ "$dir" == download ]]; then
    cmp "$SRC" "$local_out" || die "$tool download ($setting, run $run): content differs from the source"
    rm -f "$local_out"; verified="cmp"
  else
    local got; got="$(blob_size "$name")"
    [[ "$got" == "$SIZE" ]] || die "$tool upload ($setting, run $run): blob size $got, expected $SIZE"
    verified="size"
  fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$setting" "$dir" "$tool" "$run" "$order" "$secs" "$rss" "$verified" >> "$RECORDS"
  log "$(printf '%-6s %-8s run %d/%d  %-6s %8.2f s  %8.1f MiB/s  peak RSS %6.1f MiB' "$setting" "$dir" "$run" "$RUNS" "$tool" "$secs" \
    "$(node -e 'console.log(process.argv[1] / 1048576 / process.argv[2])' "$SIZE" "$secs")" "$(node -e 'console.log(process.argv[1] / 1024)' "$rss")")"
}
# cross_check SETTING UPLOADER NAME: the other tool downloads UPLOADER's blob; cmp.
cross_check() {
  local setting="$1" uploader="$2" name="$3" reader out="$TMP/dl/check.bin"
  if [[ "$uploader" == shoal ]]; then reader=rclone; else reader=shoal; fi
  copy_cmd raw "$reader" "$(url_of "$reader" "$name")" "$out" download
  "${CMD[@]}" 2> "$TMP/copy.err" || { cat "$TMP/copy.err" >&2; die "cross-check download failed"; }
  cmp "$SRC" "$out" || die "$uploader's upload ($setting) read back by $reader differs from the source"
  rm -f "$out"
  printf '%s\t%s\t%s\t%s\n' "$setting" "$uploader" "$reader" "cmp ok" >> "$CHECKS"
  log "cross-check ($setting): $uploader's upload read back by $reader: cmp ok"
}

# ---------------------------------------------------------------- the runs
START_ISO="$(date -u +%Y-%m-%dT%H:%M:%SZ)"; LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"
for setting in raw shaped; do
  for run in $(seq "$RUNS"); do
    if (( run % 2 == 1 )); then tools=(shoal rclone); else tools=(rclone shoal); fi
    for dir in upload download; do
      order=1
      for tool in "${tools[@]}"; do
        run_copy "$setting" "$tool" "$dir" "$setting-$tool-$run.bin" "$run" "$order"
        order=$((order + 1))
      done
    done
    if (( run == 1 )); then
      for tool in shoal rclone; do cross_check "$setting" "$tool" "$setting-$tool-$run.bin"; done
    fi
    for tool in shoal rclone; do # keep Azurite's disk use to about one run
      AZURE_STORAGE_CONNECTION_STRING="$(shoal_env raw)" "$SHOAL" rm "az://$CONTAINER/$setting-$tool-$run.bin" > /dev/null
    done
  done
done
END_ISO="$(date -u +%Y-%m-%dT%H:%M:%SZ)"; LOAD_END="$(cut -d' ' -f1-3 /proc/loadavg)"

# ---------------------------------------------------------------- report
SHOAL_VERSION="$("$SHOAL" --version 2>&1 | awk 'NR == 1')"
RCLONE_VERSION="$("$RCLONE" version 2>&1 | awk 'NR == 1')"
AZURITE_VERSION="$("$AZURITE" --version 2>&1 | awk 'NR == 1')"
NODE_VERSION="$(node --version)"
NPROC="$(nproc)"
KERNEL="$(uname -r)"
CPU_MODEL="$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo 2> /dev/null || true)"
MEM_KB="$(awk '/^MemTotal/ {print $2}' /proc/meminfo 2> /dev/null || echo 0)"
COMMAND="bash bench/copy_bench.sh --size $SIZE_ARG --runs $RUNS --latency-ms $LATENCY_MS --bandwidth $BANDWIDTH"

export CB_RECORDS="$RECORDS" CB_CHECKS="$CHECKS" CB_OUT="$OUT" CB_SIZE="$SIZE" CB_SIZE_ARG="$SIZE_ARG" CB_RUNS="$RUNS" \
  CB_LATENCY_MS="$LATENCY_MS" CB_BANDWIDTH="$BANDWIDTH" CB_START="$START_ISO" CB_END="$END_ISO" \
  CB_SHOAL_VERSION="$SHOAL_VERSION" CB_RCLONE_VERSION="$RCLONE_VERSION" CB_AZURITE_VERSION="$AZURITE_VERSION" \
  CB_NODE_VERSION="$NODE_VERSION" CB_NPROC="$NPROC" CB_CPU="$CPU_MODEL" CB_MEM_KB="$MEM_KB" CB_KERNEL="$KERNEL" \
  CB_LOAD_START="$LOAD_START" CB_LOAD_END="$LOAD_END" \
  CB_COMMAND="$COMMAND" CB_SHOAL_FLAGS="${SHOAL_FLAGS[*]}" CB_RCLONE_COMMON="${RCLONE_COMMON[*]}" \
  CB_RCLONE_UP="${RCLONE_UP_FLAGS[*]}" CB_RCLONE_DOWN="${RCLONE_DOWN_FLAGS[*]}"
node - <<'EOF'
const fs = require('fs');
const E = process.env;
const size = Number(E.CB_SIZE);
const MiB = 1048576;
const lines = (f) => fs.readFileSync(f, 'utf8').split('\n').filter(Boolean).map((l) => l.split('\t'));
const measurements = lines(E.CB_RECORDS).map(([setting, direction, tool, run, order, secs, rss, verified]) => ({
  setting, direction, tool, run: +run, order_in_run: +order, seconds: +secs, bytes: size,
  mib_per_s: +(size / MiB / +secs).toFixed(2), max_rss_kib: +rss, verified,
}));
const cross_checks = lines(E.CB_CHECKS).map(([setting, uploaded_by, read_back_by, result]) => ({ setting, uploaded_by, read_back_by, result }));
const median = (a) => { const s = [...a].sort((x, y) => x - y), n = s.length; return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2; };
const summary = [];
for (const setting of ['raw', 'shaped']) for (const direction of ['upload', 'download']) {
  const row = { setting, direction };
  for (const tool of ['shoal', 'rclone']) {
    const m = measurements.filter((x) => x.setting === setting && x.direction === direction && x.tool === tool);
    const r = m.map((x) => size / MiB / x.seconds);
    row[tool] = { runs: m.length, median_mib_per_s: +median(r).toFixed(1), min_mib_per_s: +Math.min(...r).toFixed(1),
      max_mib_per_s: +Math.max(...r).toFixed(1), median_seconds: +median(m.map((x) => x.seconds)).toFixed(3),
      peak_rss_mib: +(Math.max(...m.map((x) => x.max_rss_kib)) / 1024).toFixed(1) };
  }
  row.ratio_shoal_over_rclone = +(row.shoal.median_mib_per_s / row.rclone.median_mib_per_s).toFixed(2);
  summary.push(row);
}
const json = {
  benchmark: 'copy_bench', command: E.CB_COMMAND, started: E.CB_START, finished: E.CB_END,
  size_bytes: size, size_arg: E.CB_SIZE_ARG, runs: +E.CB_RUNS,
  machine: { nproc: +E.CB_NPROC, cpu: E.CB_CPU, mem_total_kib: +E.CB_MEM_KB, kernel: E.CB_KERNEL,
    loadavg_1_5_15_at_start: E.CB_LOAD_START, loadavg_1_5_15_at_end: E.CB_LOAD_END },
  settings: {
    raw: { description: 'clients talk straight to Azurite' },
    shaped: { description: 'clients talk to Azurite through src/testing/fault_proxy.js',
      latency_ms: +E.CB_LATENCY_MS, bandwidth_per_connection: E.CB_BANDWIDTH },
  },
  tools: {
    shoal: { version: E.CB_SHOAL_VERSION, command: `shoal cp ${E.CB_SHOAL_FLAGS} SRC DST` },
    rclone: { version: E.CB_RCLONE_VERSION,
      upload_command: `rclone copyto ${E.CB_RCLONE_COMMON} ${E.CB_RCLONE_UP} SRC DST`,
      download_command: `rclone copyto ${E.CB_RCLONE_COMMON} ${E.CB_RCLONE_DOWN} SRC DST` },
    azurite: { version: E.CB_AZURITE_VERSION }, node: { version: E.CB_NODE_VERSION },
  },
  method: 'per run, per direction: both tools one after the other (first tool alternates by run); ' +
    'seconds = wall time of the copy process; download source is one reference blob; ' +
    'downloads verified with cmp, uploads by blob size plus one cross-tool read-back per setting',
  measurements, cross_checks, summary,
};
fs.writeFileSync(`${E.CB_OUT}/copy_bench.json`, JSON.stringify(json, null, 2) + '\n');

const sizeText = size % (1 << 30) === 0 ? `${size / (1 << 30)} GiB` : size % MiB === 0 ? `${size / MiB} MiB` : `${size} bytes`;
const f = (t) => `${t.median_mib_per_s.toFixed(1)} (${t.min_mib_per_s.toFixed(1)}-${t.max_mib_per_s.toFixed(1)})`;
const settingText = { raw: 'raw', shaped: `shaped (${E.CB_LATENCY_MS} ms, ${E.CB_BANDWIDTH}/s per conn.)` };
let md = `| Setting | Direction | shoal MiB/s median (min-max) | rclone MiB/s median (min-max) | shoal/rclone | shoal peak RSS | rclone peak RSS |\n`;
md += `|---|---|---|---|---|---|---|\n`;
for (const r of summary) {
  md += `| ${settingText[r.setting]} | ${r.direction} | ${f(r.shoal)} | ${f(r.rclone)} | ${r.ratio_shoal_over_rclone.toFixed(2)} | ` +
    `${r.shoal.peak_rss_mib.toFixed(0)} MiB | ${r.rclone.peak_rss_mib.toFixed(0)} MiB |\n`;
}
md += `\n${sizeText} object, ${E.CB_RUNS} runs per cell, ${E.CB_START} on ${E.CB_NPROC} cores (${E.CB_CPU || 'unknown CPU'}; ` +
  `load average ${E.CB_LOAD_START.split(' ')[0]} at start, ${E.CB_LOAD_END.split(' ')[0]} at end). ` +
  `Ratio = shoal median / rclone median; above 1 means shoal was faster. Every copy was verified ` +
  `(downloads with cmp, uploads by size and one cross-tool read-back per setting).\n`;
md += `\nAzurite (${E.CB_AZURITE_VERSION}) is single-threaded Node and ingest-bound (about 45-50 MiB/s on one ` +
  `connection, measured on this kind of machine), so the upload rows measure Azurite as much as the clients. ` +
  `In the shaped setting the fault proxy is another single-threaded Node process on the same machine.\n`;
md += `\nCommand: \`${E.CB_COMMAND}\`  \n${E.CB_SHOAL_VERSION}: \`shoal cp ${E.CB_SHOAL_FLAGS}\` (defaults: 8 MiB parts, 8 in flight)  \n` +
  `${E.CB_RCLONE_VERSION}: upload \`rclone copyto ${E.CB_RCLONE_COMMON} ${E.CB_RCLONE_UP}\`, ` +
  `download \`rclone copyto ${E.CB_RCLONE_COMMON} ${E.CB_RCLONE_DOWN}\`\n`;
fs.writeFileSync(`${E.CB_OUT}/copy_bench.md`, md);
process.stdout.write(md);
EOF
log "wrote $OUT/copy_bench.json and $OUT/copy_bench.md"

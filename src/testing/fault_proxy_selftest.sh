#!/usr/bin/env bash
# Self-test for fault_proxy.js: starts a tiny upstream and the proxy (ports chosen by the
# OS, 127.0.0.1 only), checks every feature with curl, kills what it started on exit.
# Prints "N passed, M failed"; exit status 1 on any failure.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PROXY_JS="$HERE/fault_proxy.js"
TMP="$(mktemp -d)"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT

PASS=0; FAIL=0
ok()   { PASS=$((PASS + 1)); echo "ok   - $1"; }
fail() { FAIL=$((FAIL + 1)); echo "FAIL - $1"; }
check() { # check NAME ACTUAL EXPECTED
  if [[ "$2" == "$3" ]]; then ok "$1"; else fail "$1 (got '$2', expected '$3')"; fi
}
wait_file() { for _ in $(seq 100); do [[ -s "$1" ]] && return 0; sleep 0.05; done; echo "timeout waiting for $1" >&2; exit 1; }
jget() { # jget FIELD.PATH < json
  node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{let v=JSON.parse(s);for(const k of process.argv[1].split("."))v=v[k];console.log(typeof v==="object"?JSON.stringify(v):v)})' "$1"
}

# ---- upstream: GET /obj = deterministic 8 MiB, HEAD /obj, PUT -> byte count,
#      GET /host -> Host header, GET /puts -> {"complete":n,"aborted":n}
cat > "$TMP/upstream.js" <<'EOF'
const http = require('http');
const OBJ = Buffer.alloc(8 * 1024 * 1024);
for (let i = 0; i < OBJ.length; i++) OBJ[i] = (i * 31 + (i >> 13)) & 0xff;
const puts = { complete: 0, aborted: 0 };
http.createServer((req, res) => {
  if (req.method === 'PUT') {
    let n = 0;
    req.on('data', (c) => { n += c.length; });
    req.on('end', () => { puts.complete++; res.end(String(n)); });
    req.on('aborted', () => { puts.aborted++; });
    return;
  }
  if (req.url === '/obj') {
    res.writeHead(200, { 'Content-Length': OBJ.length, 'Content-Type': 'application/octet-stream' });
    return req.method === 'HEAD' ? res.end() : res.end(OBJ);
  }
  if (req.url === '/host') return res.end(req.headers.host);
  if (req.url === '/puts') return res.end(JSON.stringify(puts));
  res.writeHead(404); res.end();
}).listen(0, '127.0.0.1', function () {
  require('fs').writeFileSync(process.argv[2] + '.tmp', String(this.address().port));
  require('fs').renameSync(process.argv[2] + '.tmp', process.argv[2]);
});
EOF
node "$TMP/upstream.js" "$TMP/up.port" & PIDS+=($!)
wait_file "$TMP/up.port"; UP="http://127.0.0.1:$(cat "$TMP/up.port")"

node "$PROXY_JS" --upstream "$UP" --port-file "$TMP/px.port" --seed 7 > "$TMP/px.out" 2>&1 & PIDS+=($!)
wait_file "$TMP/px.port"; PX="http://127.0.0.1:$(cat "$TMP/px.port")"
sleep 0.1
check "startup line" "$(cat "$TMP/px.out")" "fault_proxy listening on 127.0.0.1:$(cat "$TMP/px.port")"

cfg() { curl -sS -X POST --data "$1" "$PX/__proxy/config" > /dev/null; }
stats() { curl -sS "$PX/__proxy/stats" | jget "$1"; }

# ---- plain forwarding
want=$(curl -sS "$UP/obj" | sha256sum)
check "GET byte-identical" "$(curl -sS "$PX/obj" | sha256sum)" "$want"
check "HEAD Content-Length" "$(curl -sSI "$PX/obj" | tr -d '\r' | awk -F': ' 'tolower($1)=="content-length"{print $2}')" "8388608"
head -c $((4 * 1024 * 1024)) /dev/urandom > "$TMP/put.bin"
check "PUT 4 MiB reaches upstream whole" "$(curl -sS -T "$TMP/put.bin" "$PX/put")" "4194304"
check "Host header unchanged" "$(curl -sS -H 'Host: bucket.s3.example:9000' "$PX/host")" "bucket.s3.example:9000"
check "client keep-alive reused" "$(curl -sS -o /dev/null -o /dev/null -w '%{num_connects} ' "$PX/obj" "$PX/obj")" "1 0 "

# ---- stats count exactly the bytes the upstream served
curl -sS -X POST "$PX/__proxy/reset" > /dev/null
curl -sS -o /dev/null "$PX/obj"; curl -sS -o /dev/null "$PX/obj"; curl -sSI -o /dev/null "$PX/obj"
check "stats upstream_response_bytes" "$(stats upstream_response_bytes)" "16777216"
check "stats by_method" "$(stats by_method)" '{"GET":2,"HEAD":1}'
check "stats forwarded" "$(stats forwarded)" "3"

# ---- injected errors
cfg '{"errorRate":1,"retryAfter":2}'
out=$(curl -sS -D "$TMP/h" -T "$TMP/put.bin" -w '%{http_code}' "$PX/put")
check "error-rate 1 -> 503" "${out: -3}" "503"
[[ "$out" == *"<Code>ServerBusy</Code>"* ]] && ok "503 XML body" || fail "503 XML body ($out)"
check "Retry-After" "$(tr -d '\r' < "$TMP/h" | awk -F': ' 'tolower($1)=="retry-after"{print $2}')" "2"
cfg '{"errorCodes":[429],"retryAfter":null}'
check "error-codes 429" "$(curl -sS -o /dev/null -w '%{http_code}' "$PX/obj")" "429"
check "injected errors do not reach upstream" "$(stats upstream_response_bytes)" "16777216"
check "stats injected_errors" "$(stats injected_errors)" "2"
cfg '{"errorCodes":[503],"errorMethods":["PUT"]}'
check "error-methods PUT: a GET passes" "$(curl -sS -o /dev/null -w '%{http_code}' "$PX/obj")" "200"
check "error-methods PUT: a PUT is refused" "$(curl -sS -o /dev/null -w '%{http_code}' -T "$TMP/put.bin" "$PX/put")" "503"
cfg '{"errorMethods":[]}'
# errorFirst: the next N requests refused whatever the rate, then the rate again; a 401 as Azure's
cfg '{"errorRate":0,"errorCodes":[401],"errorFirst":2}'
check "error-first 2: a 401" "$(curl -sS -D "$TMP/h" -o /dev/null -w '%{http_code}' "$PX/obj")" "401"
check "a 401's x-ms-error-code" "$(tr -d '\r' < "$TMP/h" | awk -F': ' 'tolower($1)=="x-ms-error-code"{print $2}')" "InvalidAuthenticationInfo"
check "error-first 2: a second 401, then through" "$(curl -sS -o /dev/null -o /dev/null -w '%{http_code} ' "$PX/obj" "$PX/obj")" "401 200 "
cfg '{"errorCodes":[503]}'

# ---- seed makes the fault sequence reproducible
seq_codes() { for _ in $(seq 20); do curl -sS -o /dev/null -w '%{http_code} ' "$PX/host"; done; }
cfg '{"errorRate":0.5,"errorCodes":[503],"seed":42}'; a=$(seq_codes)
cfg '{"seed":42}'; b=$(seq_codes)
[[ "$a" == "$b" && "$a" == *503* && "$a" == *200* ]] && ok "seeded fault sequence reproducible" || fail "seed ($a / $b)"
cfg '{"errorRate":0}'

# ---- dropped connections
curl -sS -X POST "$PX/__proxy/reset" > /dev/null
cfg '{"dropRate":1}'
rc=0; curl -sS -o "$TMP/part" "$PX/obj" 2> /dev/null || rc=$?
got=$(stat -c %s "$TMP/part")
[[ $rc -ne 0 && $got -gt 0 && $got -lt 8388608 ]] && ok "drop GET: partial transfer (rc=$rc, $got bytes)" || fail "drop GET (rc=$rc, $got bytes)"
before=$(curl -sS "$UP/puts")
rc=0; curl -sS -o /dev/null -T "$TMP/put.bin" "$PX/put" 2> /dev/null || rc=$?
sleep 0.2; after=$(curl -sS "$UP/puts")
[[ $rc -ne 0 ]] && ok "drop PUT: curl fails (rc=$rc)" || fail "drop PUT: curl succeeded"
check "drop PUT: upstream saw no complete PUT" "$(jget complete <<< "$after")" "$(jget complete <<< "$before")"
check "drop PUT: upstream saw an aborted PUT" "$(jget aborted <<< "$after")" "$(( $(jget aborted <<< "$before") + 1 ))"
check "stats dropped" "$(stats dropped)" "2"
cfg '{"dropRate":0}'

# ---- latency and bandwidth
cfg '{"latencyMs":300}'
t=$(curl -sS -o /dev/null -w '%{time_starttransfer}' "$PX/host")
node -e 'process.exit(+process.argv[1] >= 0.3 ? 0 : 1)' "$t" && ok "latency 300 ms (ttfb ${t}s)" || fail "latency (ttfb ${t}s)"
cfg '{"latencyMs":0,"bandwidth":"4MiB"}'
t=$(curl -sS -o "$TMP/slow" -w '%{time_total}' "$PX/obj")
node -e 'process.exit(+process.argv[1] >= 1.5 && +process.argv[1] < 4 ? 0 : 1)' "$t" && ok "bandwidth 4MiB/s: 8 MiB in ${t}s" || fail "bandwidth (${t}s)"
check "throttled GET byte-identical" "$(sha256sum < "$TMP/slow")" "$want"
curl -sS -X POST "$PX/__proxy/reset" > /dev/null
start=$(date +%s.%N)
curl -sS -o /dev/null "$PX/obj" & p1=$!; curl -sS -o /dev/null "$PX/obj" & p2=$!
wait $p1 $p2
t=$(node -e 'console.log((process.argv[2] - process.argv[1]).toFixed(2))' "$start" "$(date +%s.%N)")
node -e 'process.exit(+process.argv[1] < 3.2 ? 0 : 1)' "$t" && ok "bandwidth is per connection (2 parallel in ${t}s)" || fail "parallel bandwidth (${t}s)"
check "two GETs at once, counted" "$(jget most_in_flight <<<"$(curl -sS "$PX/__proxy/stats")")" "2"
cfg '{"bandwidth":0}'

# ---- reset zeroes
curl -sS -X POST "$PX/__proxy/reset" > /dev/null
check "reset zeroes" "$(curl -sS "$PX/__proxy/stats")" '{"requests":0,"by_method":{},"forwarded":0,"injected_errors":0,"dropped":0,"upstream_response_bytes":0,"upstream_response_bytes_by_method":{},"client_request_body_bytes":0,"part_requests":0,"part_body_bytes":0,"most_in_flight":0,"in_flight":0}'

# ---- part uploads (S3 UploadPart, Azure Put Block) are counted apart, others are not
head -c 1000 /dev/zero | curl -sS -X PUT --data-binary @- "$PX/k?partNumber=1&uploadId=u" > /dev/null
head -c 700 /dev/zero | curl -sS -X PUT --data-binary @- "$PX/k?comp=block&blockid=Yg%3D%3D" > /dev/null
head -c 300 /dev/zero | curl -sS -X PUT --data-binary @- "$PX/k?comp=blocklist" > /dev/null
S=$(curl -sS "$PX/__proxy/stats")
check "part uploads counted" "$(jget part_requests <<<"$S") $(jget part_body_bytes <<<"$S") $(jget in_flight <<<"$S") $(jget most_in_flight <<<"$S")" "2 1700 0 1"
curl -sS -X POST "$PX/__proxy/reset" > /dev/null

# ---- command-line flags and upstream down -> 502
free_port=$(node -e 's=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
node "$PROXY_JS" --upstream "http://127.0.0.1:$free_port" --listen 127.0.0.1:0 --port-file "$TMP/px2.port" \
  --latency-ms 5 --bandwidth 100MB --error-codes 503,429 --retry-after 3 > /dev/null 2>&1 & PIDS+=($!)
wait_file "$TMP/px2.port"; PX2="http://127.0.0.1:$(cat "$TMP/px2.port")"
conf=$(curl -sS "$PX2/__proxy/config")
check "flags parsed" "$(jget bandwidth <<< "$conf") $(jget errorCodes <<< "$conf") $(jget retryAfter <<< "$conf")" "100000000 [503,429] 3"
check "upstream down -> 502" "$(curl -sS -o /dev/null -w '%{http_code}' "$PX2/obj")" "502"

echo "$PASS passed, $FAIL failed"
[[ $FAIL -eq 0 ]]

# Shared by the bench scripts: source it after setting BENCH (the script's name, for messages).
# Provides PIDS (stopped on exit, with $TMP removed), log, die, free_port, wait_port,
# size_bytes, and timed/verify for readers of an object of $BYTES bytes.

PIDS=()
bench_cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [[ -n "${TMP:-}" ]]; then rm -rf "$TMP"; fi
}
trap bench_cleanup EXIT

log() { echo "[$BENCH $(date +%H:%M:%S)] $*" >&2; }

# parse_flags "$@": the script's flags. Each `--name VALUE` whose name is a key of the script's
# FLAGS (declare -A FLAGS=([--size]=SIZE ...)) sets that variable; each `--name` in SWITCHES sets
# its variable to 1; -h/--help prints the script's header comment. Anything else is refused.
parse_flags() {
  declare -p FLAGS &> /dev/null || declare -gA FLAGS=()
  declare -p SWITCHES &> /dev/null || declare -gA SWITCHES=()
  while [[ $# -gt 0 ]]; do
    if [[ "$1" == -h || "$1" == --help ]]; then
      awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$0"; exit 0
    elif [[ -n "${FLAGS[$1]:-}" ]]; then
      [[ $# -ge 2 ]] || { echo "$BENCH: $1 needs a value (see --help)" >&2; exit 2; }
      printf -v "${FLAGS[$1]}" '%s' "$2"; shift 2
    elif [[ -n "${SWITCHES[$1]:-}" ]]; then
      printf -v "${SWITCHES[$1]}" '%s' 1; shift
    else
      echo "$BENCH: unknown flag $1 (see --help)" >&2; exit 2
    fi
  done
}
die() { echo "$BENCH: $*" >&2; exit 1; }
# need FILE...: each is an executable, else the bench stops and says to run make bench.
need() { local f; for f in "$@"; do [[ -x "$f" ]] || die "$f is missing: run make bench"; done; }
# need_rclone: $RCLONE runs, else the bench stops and says how to install it.
need_rclone() { command -v "$RCLONE" > /dev/null || die "rclone not found: run make deps-test"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (echo > /dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }

# size_bytes 1GiB -> 1073741824 (K/M/G/T decimal, Ki/Mi/Gi/Ti binary).
size_bytes() {
  python3 -c "
import re,sys; m=re.fullmatch(r'(\d+)\s*([KMGT]i?B?)?', sys.argv[1]); n=int(m.group(1)); u=(m.group(2) or '').rstrip('B')
print(n*{'':1,'K':1000,'M':10**6,'G':10**9,'T':10**12,'Ki':1024,'Mi':1024**2,'Gi':1024**3,'Ti':1024**4}[u])" "$1"
}

# timed NAME PHASE CMD...: runs CMD, checks it wrote $BYTES bytes, appends "NAME PHASE seconds"
# to $RESULTS. (Hashing inside the timing would cap every row at the hash's speed: check the
# bytes once, untimed, with verify.)
timed() {
  local name="$1" phase="$2"; shift 2
  local t0 t1 got
  t0=$(date +%s.%N)
  got=$("$@" | wc -c)
  t1=$(date +%s.%N)
  [[ "$got" == "$BYTES" ]] || die "$name returned $got bytes, not $BYTES"
  printf '%s\t%s\t%s\n' "$name" "$phase" "$(python3 -c "print(round($t1-$t0,3))")" >> "$RESULTS"
  log "$(printf '%-34s %-5s %7.2f s' "$name" "$phase" "$(python3 -c "print($t1-$t0)")")"
}

# verify NAME CMD...: CMD's output has sha256 $SUM.
verify() {
  local name="$1"; shift
  [[ "$("$@" | sha256sum | cut -d' ' -f1)" == "$SUM" ]] || die "$name returned wrong bytes"
}

# Azurite's well-known development account.
AZ_ACCOUNT=devstoreaccount1
AZ_KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
# azurite_connection PORT: the connection string for that account at 127.0.0.1:PORT.
azurite_connection() {
  echo "DefaultEndpointsProtocol=http;AccountName=$AZ_ACCOUNT;AccountKey=$AZ_KEY;BlobEndpoint=http://127.0.0.1:$1/$AZ_ACCOUNT;"
}
# start_azurite: Azurite on a free loopback port, data in $TMP/azurite; sets AZ_PORT.
start_azurite() {
  AZ_PORT=$(free_port)
  testenv/node_modules/.bin/azurite-blob --blobHost 127.0.0.1 --blobPort "$AZ_PORT" --location "$TMP/azurite" \
    --silent --skipApiVersionCheck --loose --disableTelemetry > "$TMP/azurite.log" 2>&1 &
  PIDS+=($!)
  wait_port "$AZ_PORT" || die "Azurite did not start: $(cat "$TMP/azurite.log")"
}
# start_proxy [FLAGS]: the fault proxy (src/testing/fault_proxy.js, which also counts what the
# store served) in front of Azurite; sets PROXY_PORT.
start_proxy() {
  node src/testing/fault_proxy.js --upstream "http://127.0.0.1:$AZ_PORT" --listen 127.0.0.1:0 \
    --port-file "$TMP/proxy.port" "$@" > "$TMP/proxy.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 200); do [[ -s "$TMP/proxy.port" ]] && break; sleep 0.05; done
  PROXY_PORT=$(cat "$TMP/proxy.port")
  wait_port "$PROXY_PORT" || die "fault proxy did not start: $(cat "$TMP/proxy.log")"
}
# rclone_conf FILE ENDPOINT: an rclone config whose remote `az` is Azurite's account at
# ENDPOINT (http://127.0.0.1:PORT/devstoreaccount1). Debian's rclone 1.60 needs the endpoint
# set explicitly: with use_emulator alone it tries an outside host.
rclone_conf() {
  cat > "$1" <<CONF
[az]
type = azureblob
account = $AZ_ACCOUNT
key = $AZ_KEY
endpoint = $2
use_emulator = true
CONF
}
# rclone_mount CONF REMOTE MNT CACHE_DIR [FLAGS...]: the BlobFuse-style mount (rclone mount
# --vfs-cache-mode full, --vfs-fast-fingerprint so a re-read keeps the local cache), in the
# background until it is mounted; sets RCLONE_MOUNT_PID. unmount_rclone MNT ends it.
rclone_mount() {
  local conf="$1" remote="$2" mnt="$3" cache="$4"; shift 4
  mkdir -p "$mnt" "$cache"
  rclone --config "$conf" mount "$remote" "$mnt" --vfs-cache-mode full --vfs-fast-fingerprint \
    --cache-dir "$cache" "$@" > "$cache.log" 2>&1 &
  RCLONE_MOUNT_PID=$!
  PIDS+=($RCLONE_MOUNT_PID)
  for _ in $(seq 200); do mountpoint -q "$mnt" && return 0; sleep 0.05; done
  die "rclone mount of $remote did not come up: $(cat "$cache.log")"
}
unmount_rclone() {
  if mountpoint -q "$1"; then fusermount3 -u "$1" 2> /dev/null || umount -l "$1" 2> /dev/null || true; fi
  if [[ -n "${RCLONE_MOUNT_PID:-}" ]]; then wait "$RCLONE_MOUNT_PID" 2> /dev/null || true; fi
}
# start_nginx_cache DIR UPSTREAM_PORT WORKERS [LIMIT_RATE]: the LOTA-style caching proxy (nginx
# proxy_cache + proxy_cache_lock, lock timeouts raised to minutes as PEERS.md says, tcp_nopush
# off) in front of 127.0.0.1:UPSTREAM_PORT, with an empty cache in DIR; LIMIT_RATE bytes/s per
# connection (0: none). Sets NGINX_PORT and NGINX_PID.
start_nginx_cache() {
  local d="$1" up="$2" workers="$3" rate="${4:-0}"
  NGINX_PORT=$(free_port)
  rm -rf "$d"; mkdir -p "$d/cache" "$d/tmp"
  cat > "$d/nginx.conf" <<CONF
daemon off;
user $(id -un);  # workers write the cache under this temp dir
worker_processes $workers;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on; tcp_nopush off;
  client_body_temp_path $d/tmp; proxy_temp_path $d/tmp;
  fastcgi_temp_path $d/tmp; uwsgi_temp_path $d/tmp; scgi_temp_path $d/tmp;
  proxy_cache_path $d/cache levels=1:2 keys_zone=blob:64m max_size=20g inactive=1d use_temp_path=off;
  upstream store { server 127.0.0.1:$up; keepalive 16; }
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location / {
      proxy_pass http://store;
      proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_cache blob; proxy_cache_key \$uri; proxy_cache_valid 200 206 1d;
      proxy_cache_lock on; proxy_cache_lock_timeout 10m; proxy_cache_lock_age 10m;
      proxy_read_timeout 10m;
      limit_rate $rate;
    }
  }
}
CONF
  "${NGINX:-/usr/sbin/nginx}" -c "$d/nginx.conf" -p "$d" &
  NGINX_PID=$!
  PIDS+=($NGINX_PID)
  wait_port "$NGINX_PORT" || die "nginx did not start: $(cat "$d/error.log")"
}

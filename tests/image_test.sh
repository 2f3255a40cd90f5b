#!/usr/bin/env bash
# The container image holds everything shoald, shoal and `shoal mount` need: builds it with
# scripts/image.sh, unpacks it with umoci, and inside the unpacked root only (chroot, in a mount
# namespace of its own with /dev and /proc as a container runtime makes them), as the image's
# non-root user: shoald --help and --version, shoal --version, a shoald on 127.0.0.1 over a
# file:// store inside the root, an object written through it with `shoal cp --cache`, read
# back through it and through `shoal mount` (FUSE, by the image's fusermount3), and the object
# in the store byte-identical; shoald stopped by its PID.
# Usage: tests/image_test.sh BUILD_DIR   (ctest passes it). Run by a user who is not root, it
# runs itself again through `sudo -n` (as `make test` installs packages with sudo); exit 77
# (skipped) when that is not allowed without a password.
set -euo pipefail

build=$(cd "${1:?usage: image_test.sh BUILD_DIR}" && pwd)
src=$(cd "$(dirname "$0")/.." && pwd)
if [ "$(id -u)" != 0 ]; then
  if command -v sudo > /dev/null && sudo -n true 2> /dev/null; then
    exec sudo -n bash "$0" "$build"
  fi
  echo "image_test: needs root (the image records file owners; chroot) and sudo asks for a password; skipped (run it as root: sudo bash tests/image_test.sh $build)" >&2
  exit 77
fi

fail() { echo "image_test: FAILED: $*" >&2; exit 1; }
check() {  # check WHAT WANT GOT
  [ "$2" = "$3" ] || fail "$1: wanted '$2', got '$3'"
  echo "ok: $1"
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/shoal-image-test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

bash "$src/scripts/image.sh" --bin "$build/bin" --out "$tmp/image" --tag test --archive "$tmp/image.tar"
# The image's configuration: non-root, entrypoint shoald.
read -r user entrypoint < <(python3 - "$tmp/image" <<'EOF'
import json, sys
layout = sys.argv[1]
index = json.load(open(layout + "/index.json"))
m = [d for d in index["manifests"] if d["annotations"]["org.opencontainers.image.ref.name"] == "test"][0]
blob = lambda digest: json.load(open(layout + "/blobs/sha256/" + digest.split(":")[1]))
config = blob(blob(m["digest"])["config"]["digest"])["config"]
print(config["User"], ",".join(config["Entrypoint"]))
EOF
)
check "image user" "10001:10001" "$user"
check "image entrypoint" "/usr/bin/shoald" "$entrypoint"
tar -tf "$tmp/image.tar" | grep -qx './index.json' || fail "the archive has no index.json"

umoci unpack --image "$tmp/image:test" "$tmp/bundle" >/dev/null
root=$tmp/bundle/rootfs
[ -u "$root/usr/bin/fusermount3" ] || fail "fusermount3 lost its setuid bit"
head -c $((20 * 1024 * 1024 + 12345)) /dev/urandom > "$root/tmp/in.bin"
mkdir -p "$root/tmp/store" "$root/tmp/mnt"
chown 10001:10001 "$root/tmp/store" "$root/tmp/mnt"

# Everything below runs in a mount namespace of its own: the /dev and /proc mounts, and the FUSE
# mount if it is left behind, go with it.
unshare --mount --propagation private bash -s "$root" <<'INNER'
set -euo pipefail
root=$1
fail() { echo "image_test: FAILED: $*" >&2; exit 1; }
check() { [ "$2" = "$3" ] || fail "$1: wanted '$2', got '$3'"; echo "ok: $1"; }
# /dev as runc makes it for a container given the FUSE device: a tmpfs with the usual nodes.
mount -t tmpfs -o mode=755,nosuid tmpfs "$root/dev"
for node in null:1:3 zero:1:5 full:1:7 random:1:8 urandom:1:9 tty:5:0 fuse:10:229; do
  IFS=: read -r name major minor <<<"$node"
  mknod -m 666 "$root/dev/$name" c "$major" "$minor"
done
ln -s /proc/self/fd "$root/dev/fd"
mount -t proc proc "$root/proc"
in_image() { chroot --userspec=10001:10001 "$root" "$@"; }

check "shoald --help" "shoald: the Shoal cache node." "$(in_image /usr/bin/shoald --help | head -c 29)"
check "shoald --version" "shoald" "$(in_image /usr/bin/shoald --version | cut -d' ' -f1)"
check "shoal --version" "shoal" "$(in_image /usr/bin/shoal --version | cut -d' ' -f1)"
in_image /usr/bin/fusermount3 --version >/dev/null 2>&1 || fail "fusermount3 does not run in the image"
echo "ok: fusermount3 runs"

# chroot itself, not a function around it: $! must be the PID shoald runs as (chroot execs it).
chroot --userspec=10001:10001 "$root" /usr/bin/shoald --listen 127.0.0.1:0 --port-file /tmp/port --data-dir /var/lib/shoal/cache \
  --capacity 256MiB --socket /run/shoal/shoal.sock 2>"$root/tmp/shoald.log" &
pid=$!
stop() {
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
trap stop EXIT
for _ in $(seq 1 500); do
  [ -s "$root/tmp/port" ] && break
  kill -0 "$pid" 2>/dev/null || { cat "$root/tmp/shoald.log" >&2; fail "shoald exited at start"; }
  sleep 0.02
done
[ -s "$root/tmp/port" ] || fail "shoald wrote no port file in 10 s"
node=127.0.0.1:$(cat "$root/tmp/port")
check "shoald runs as the image's user" "10001" "$(awk '/^Uid:/ {print $2}' "/proc/$pid/status")"
check "readiness of a node alone" "ready" "$(curl -sS "http://$node/readyz")"

url=file:///tmp/store/run1/obj.bin
in_image /usr/bin/shoal cp -q --cache "$node" /tmp/in.bin "$url"
in_image /usr/bin/shoal flush -q --wait --cache "$node" file:///tmp/store/run1/
cmp "$root/tmp/in.bin" "$root/tmp/store/run1/obj.bin" || fail "the object in the store differs from what was written"
echo "ok: written through the node, in the store byte-identical"
in_image /usr/bin/shoal cp -q --cache "$node" "$url" /tmp/out.bin
cmp "$root/tmp/in.bin" "$root/tmp/out.bin" || fail "read back through the node: bytes differ"
echo "ok: read back through the node byte-identical"
in_image /usr/bin/shoal cp -q --cache unix:/run/shoal/shoal.sock "$url" /tmp/out2.bin
cmp "$root/tmp/in.bin" "$root/tmp/out2.bin" || fail "read back through the Unix socket: bytes differ"
echo "ok: read back through the node's Unix socket byte-identical"

# The DaemonSet's preStop: `shoal drain` of the node by its socket. A node alone refuses (it has
# nobody to hand writes to): its answer proves the request reached it.
drain=$(in_image /usr/bin/shoal drain --timeout 10 unix:/run/shoal/shoal.sock 2>&1) && fail "drain of a node alone succeeded"
case $drain in *"this node is not in a cluster"*) echo "ok: shoal drain unix:PATH reaches the node" ;;
  *) fail "shoal drain unix:PATH: $drain" ;; esac

if [ -c /dev/fuse ]; then  # the machine has FUSE (modprobe fuse)
  # --allow-other (user_allow_other in the image's /etc/fuse.conf) lets this root read it.
  in_image /usr/bin/shoal mount --allow-other --cache "$node" file:///tmp/store/run1/ /tmp/mnt
  cmp "$root/tmp/in.bin" "$root/tmp/mnt/obj.bin" || fail "read through shoal mount: bytes differ"
  in_image /usr/bin/shoal unmount /tmp/mnt
  echo "ok: read through shoal mount (the image's fusermount3) byte-identical"
else
  fail "no /dev/fuse on this machine: shoal mount cannot be checked (modprobe fuse)"
fi

kill -TERM "$pid"
wait "$pid" && rc=0 || rc=$?
trap - EXIT
check "shoald stopped by SIGTERM, exit code" "0" "$rc"
INNER
echo "image_test: PASSED"

#!/usr/bin/env bash
# `make demo`: a 3-node Shoal cluster on loopback over the embedded local-directory backend
# (file:// URLs: no server, no credentials). It writes a checkpoint through the cluster
# (fan-out write, replicated, then committed), reads a dataset whose chunks are spread over
# the nodes (fan-out read), has six readers load one model file at once (fan-in), and prints
# what reached the object store and what each node did. Everything it starts is stopped by
# PID, and its temp dir removed, on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
SHOAL=${SHOAL:-build/bin/shoal} SHOALD=${SHOALD:-build/bin/shoald}
WORK=$(mktemp -d /tmp/shoal-demo-XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
STORE="file://$WORK/store"
mkdir -p "$WORK/store"

bold() { printf '\n\033[1m%s\033[0m\n' "$*"; }
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
metric() { curl -sf "http://$1/metrics" | awk -v m="shoal_$2" '$1 == m {print $2}'; }
store_bytes() { local t=0; for n in "${NODES[@]}"; do t=$((t + $(metric "$n" store_get_bytes_total))); done; echo "$t"; }
mib() { echo "$(($1 >> 20)) MiB"; }

bold "1. Three shoald nodes on loopback, one cluster (static --peers), writes kept on 2 nodes"
NODES=() PEERS=""
for i in 1 2 3; do
  port=$(free_port)
  NODES+=("127.0.0.1:$port")
  PEERS+="${PEERS:+,}node$i=127.0.0.1:$port"
done
for i in 0 1 2; do
  "$SHOALD" --listen "${NODES[$i]}" --peers "$PEERS" --data-dir "$WORK/node$((i + 1))" --capacity 2GiB \
    --replicas 2 > "$WORK/node$((i + 1)).log" 2>&1 &
  PIDS+=($!)
done
for n in "${NODES[@]}"; do
  for _ in $(seq 100); do curl -sf "http://$n/healthz" > /dev/null && break; sleep 0.1; done
done
sleep 0.3
echo "shoald --peers $PEERS --replicas 2 ..."
grep -h "node .* of 3" "$WORK"/node*.log

bold "2. Fan-out write: 6 ranks write their checkpoint shards at once, each through a node"
mkdir -p "$WORK/ckpt"
for r in 0 1 2 3 4 5; do head -c $((24 << 20)) /dev/urandom > "$WORK/ckpt/rank-$r.pt"; done
for r in 0 1 2 3 4 5; do
  "$SHOAL" cp -q --cache "${NODES[$((r % 3))]}" "$WORK/ckpt/rank-$r.pt" "$STORE/ckpt/step-100/rank-$r.pt" &
done
wait_ranks=0
for job in $(jobs -p); do
  [[ " ${PIDS[*]} " == *" $job "* ]] && continue
  wait "$job" || wait_ranks=1
done
[[ $wait_ranks == 0 ]] || { echo "a rank's write failed" >&2; exit 1; }
echo "6 x 24 MiB acknowledged: each on its node's disk and copied to a second node"
step "$SHOAL" stat --cache "${NODES[0]}" "$STORE/ckpt/step-100/rank-0.pt"
echo "(commit waits until every node has uploaded what it took under the prefix, then marks it complete)"
step "$SHOAL" commit --cache "${NODES[0]}" "$STORE/ckpt/step-100"
printf '\n\033[1m$ %s\033[0m\n' "shoal cat $STORE/ckpt/step-100/_SHOAL_COMMITTED | head"
"$SHOAL" cat "$STORE/ckpt/step-100/_SHOAL_COMMITTED" | head -9
echo " ..."
for r in 0 1 2 3 4 5; do
  "$SHOAL" cat "$STORE/ckpt/step-100/rank-$r.pt" | cmp - "$WORK/ckpt/rank-$r.pt"
done
echo "(every shard in the store is byte-identical to what its rank wrote)"

bold "3. Fan-out read: a 256 MiB dataset file, its 8 MiB chunks spread over the 3 nodes"
head -c $((256 << 20)) /dev/urandom > "$WORK/store/data.bin"
before=$(store_bytes)
printf '\033[1m$ %s\033[0m\n' "shoal cat --cache ${NODES[0]} $STORE/data.bin | sha256sum"
"$SHOAL" cat --cache "${NODES[0]}" "$STORE/data.bin" | sha256sum
sha256sum < "$WORK/store/data.bin"
echo "object store served $(mib $(($(store_bytes) - before))) for a 256 MiB file (each chunk once, by its owner):"
for i in 0 1 2; do echo "  node$((i + 1)) fetched $(mib "$(metric "${NODES[$i]}" store_get_bytes_total)")"; done
before=$(store_bytes)
"$SHOAL" cat --cache "${NODES[1]}" "$STORE/data.bin" > /dev/null
echo "read again (warm, through node2): the object store served $(mib $(($(store_bytes) - before)))"

bold "4. Fan-in: 6 readers load the same 128 MiB model at once, through all 3 nodes"
head -c $((128 << 20)) /dev/urandom > "$WORK/store/model.bin"
want=$(sha256sum < "$WORK/store/model.bin" | cut -d' ' -f1)
before=$(store_bytes)
for r in 0 1 2 3 4 5; do
  ("$SHOAL" cat --cache "${NODES[$((r % 3))]}" "$STORE/model.bin" | sha256sum | cut -d' ' -f1 > "$WORK/reader-$r") &
done
wait $(jobs -p | grep -vxF -f <(printf '%s\n' "${PIDS[@]}")) 2>/dev/null || true
for r in 0 1 2 3 4 5; do [[ "$(cat "$WORK/reader-$r")" == "$want" ]] || { echo "reader $r got wrong bytes" >&2; exit 1; }; done
echo "6 readers got the model's exact bytes; the object store served $(mib $(($(store_bytes) - before))) (not 6 x 128 MiB)"

bold "5. What each node did"
step "$SHOAL" status --cache "${NODES[0]}"

echo
echo "Done: all nodes stopped. The same commands work on az://container/key"
echo "(AZURE_STORAGE_CONNECTION_STRING) and s3://bucket/key (AWS_* variables); see README.md."

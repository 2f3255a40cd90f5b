#!/usr/bin/env bash
# `make demo`: a round trip through the embedded local-directory backend (file:// URLs),
# the one that needs no server and no credentials. Everything lives in a temp dir that is
# removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
SHOAL=${SHOAL:-build/bin/shoal}
WORK=$(mktemp -d /tmp/shoal-demo-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
STORE="file://$WORK/store"

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

echo "Shoal demo: objects in a local directory store at $STORE"
head -c $((64 << 20)) /dev/urandom > "$WORK/model.bin"
mkdir -p "$WORK/checkpoint/shards"
for i in 0 1 2 3; do head -c $((3 << 20)) /dev/urandom > "$WORK/checkpoint/shards/rank-$i.pt"; done
echo '{"step": 100, "ranks": 4}' > "$WORK/checkpoint/meta.json"

step "$SHOAL" cp "$WORK/model.bin" "$STORE/models/model.bin"
step "$SHOAL" stat "$STORE/models/model.bin"
step "$SHOAL" cp -r "$WORK/checkpoint" "$STORE/ckpt/step-100"
step "$SHOAL" ls "$STORE/ckpt/step-100/"
step "$SHOAL" ls -r "$STORE/ckpt/"
step "$SHOAL" cat "$STORE/ckpt/step-100/meta.json"
step "$SHOAL" cp "$STORE/models/model.bin" "$WORK/model.copy"
step cmp "$WORK/model.bin" "$WORK/model.copy"
echo "(identical)"
printf '\n\033[1m$ echo hello | shoal cp - %s/notes/hello.txt && shoal cat ...\033[0m\n' "$STORE"
echo "hello from a pipe" | "$SHOAL" cp - "$STORE/notes/hello.txt"
"$SHOAL" cat "$STORE/notes/hello.txt"
printf '\n\033[1m$ shoal cat %s/no/such/object   (a failure: one line, exit code 1)\033[0m\n' "$STORE"
"$SHOAL" cat "$STORE/no/such/object" || echo "(exit code $?)"
step "$SHOAL" rm -r "$STORE/ckpt"
echo
echo "Done. The same commands work on az://container/key (AZURE_STORAGE_CONNECTION_STRING) and"
echo "s3://bucket/key (AWS_* variables); see README.md."

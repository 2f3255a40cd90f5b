#!/usr/bin/env bash
# The machine's reference limits, so every benchmark figure can also be read as a fraction of
# what the hardware allows:
#   loopback  iperf3 over 127.0.0.1, one TCP stream and four (server and client on free ports,
#             both on this machine: the figure is what one host can push through its own stack)
#   disk      fio sequential write (with an fsync at the end) and read of a file in bench/,
#             the directory the benches keep their data in, direct I/O, 1 MiB blocks, 16 in flight
#
#   bash bench/limits.sh [--size 1GiB] [--seconds 3] [--out bench/results]
#
# Writes OUT/limits.json and OUT/limits.md. Everything it starts is stopped by PID on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE=1GiB SECONDS_EACH=3 OUT=bench/results
BENCH=limits
source bench/lib.sh
declare -A FLAGS=([--size]=SIZE [--seconds]=SECONDS_EACH [--out]=OUT)
parse_flags "$@"
for bin in iperf3 fio; do
  command -v "$bin" > /dev/null || die "$bin is missing: run make bench (it installs $bin)"
done
TMP=$(mktemp -d "$PWD/bench/.limits.XXXXXX")
mkdir -p "$OUT"

PORT=$(free_port)
iperf3 --server --bind 127.0.0.1 --port "$PORT" > "$TMP/iperf3-server.log" 2>&1 &
PIDS+=($!)
wait_port "$PORT" || die "iperf3 server did not start: $(cat "$TMP/iperf3-server.log")"
for streams in 1 4; do
  log "loopback: iperf3, $streams stream(s), ${SECONDS_EACH}s"
  iperf3 --client 127.0.0.1 --port "$PORT" --time "$SECONDS_EACH" --parallel "$streams" --json \
    > "$TMP/iperf3-$streams.json" || die "iperf3 failed: $(cat "$TMP/iperf3-$streams.json")"
done

log "disk: fio sequential write and read of $SIZE in bench/ (direct I/O, 1 MiB blocks, 16 in flight)"
for rw in write read; do
  fio --name="seq$rw" --filename="$TMP/fio.dat" --rw="$rw" --bs=1M --size="$(size_bytes "$SIZE")" \
    --direct=1 --ioengine=libaio --iodepth=16 --end_fsync=1 --output-format=json > "$TMP/fio-$rw.json" \
    || die "fio $rw failed: $(cat "$TMP/fio-$rw.json")"
done

python3 - "$TMP" "$OUT" "$SIZE" <<'PY'
import json, os, sys, datetime
tmp, out, size = sys.argv[1:4]
def iperf(n):
    d = json.load(open(f"{tmp}/iperf3-{n}.json"))
    return d["end"]["sum_received"]["bits_per_second"] / 8 / 2**20
def fio(rw):
    job = json.load(open(f"{tmp}/fio-{rw}.json"))["jobs"][0][rw]
    return job["bw_bytes"] / 2**20
limits = {"date": datetime.datetime.utcnow().strftime("%Y-%m-%dT%H:%M:%SZ"), "cores": os.cpu_count(),
          "loopback_mib_s": {"1_stream": round(iperf(1), 1), "4_streams": round(iperf(4), 1)},
          "disk_mib_s": {"seq_write": round(fio("write"), 1), "seq_read": round(fio("read"), 1)},
          "disk_test_size": size}
json.dump(limits, open(os.path.join(out, "limits.json"), "w"), indent=1)
md = ("| limit | MiB/s |\n|---|---|\n"
      f"| loopback TCP, 1 stream (iperf3) | {limits['loopback_mib_s']['1_stream']:.0f} |\n"
      f"| loopback TCP, 4 streams (iperf3) | {limits['loopback_mib_s']['4_streams']:.0f} |\n"
      f"| disk sequential write, direct, 1 MiB (fio) | {limits['disk_mib_s']['seq_write']:.0f} |\n"
      f"| disk sequential read, direct, 1 MiB (fio) | {limits['disk_mib_s']['seq_read']:.0f} |\n"
      f"\n{limits['date']}, {limits['cores']} cores; disk figures for a {size} file in bench/.\n")
open(os.path.join(out, "limits.md"), "w").write(md)
print(md)
PY

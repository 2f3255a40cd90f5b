#!/usr/bin/env bash
# The machine's reference limits, so every benchmark figure can also be read as a fraction of
# what the hardware allows:
#   loopback  iperf3 over 127.0.0.1, one TCP stream and four (server and client on free ports,
#             both on this machine: the figure is what one host can push through its own stack)
#   disk      fio sequential write (with an fsync at the end) and read of a file in bench/,
#             the directory the benches keep their data in, direct I/O, 1 MiB blocks, 16 in flight
#   memory    buffered writes of a file in bench/ in 8 MiB blocks (what a cache does with what it
#             fetches): once into pages the kernel must find (a new file, written 4 s after the
#             last one was removed), once into pages it holds (the same file written again). On a
#             virtual machine that hands freed memory back to its host (virtio-balloon free page
#             reporting), the first costs a fault in the host per page and can be 10x slower;
#             every byte a cache keeps that it did not have pays it, a reader that keeps nothing
#             does not.
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

log "memory: buffered writes of $SIZE into new pages (after 4 s) and into pages held"
python3 - "$TMP/pages.dat" "$(size_bytes "$SIZE")" > "$TMP/pages.json" <<'PY'
import json, os, sys, time
path, size = sys.argv[1], int(sys.argv[2])
block = os.urandom(8 << 20)
def write(flags):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | flags, 0o644)
    t = time.monotonic()
    for off in range(0, size, len(block)):
        os.pwrite(fd, block[: min(len(block), size - off)], off)
    took = time.monotonic() - t
    os.close(fd)
    return size / 2**20 / took
time.sleep(4)  # pages freed before now are back with the host, if it takes them
fresh = write(os.O_TRUNC)
held = write(0)
os.unlink(path)
json.dump({"new_pages": round(fresh, 1), "held_pages": round(held, 1)}, sys.stdout)
PY

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
          "page_cache_write_mib_s": json.load(open(f"{tmp}/pages.json")),
          "disk_test_size": size}
json.dump(limits, open(os.path.join(out, "limits.json"), "w"), indent=1)
md = ("| limit | MiB/s |\n|---|---|\n"
      f"| loopback TCP, 1 stream (iperf3) | {limits['loopback_mib_s']['1_stream']:.0f} |\n"
      f"| loopback TCP, 4 streams (iperf3) | {limits['loopback_mib_s']['4_streams']:.0f} |\n"
      f"| disk sequential write, direct, 1 MiB (fio) | {limits['disk_mib_s']['seq_write']:.0f} |\n"
      f"| disk sequential read, direct, 1 MiB (fio) | {limits['disk_mib_s']['seq_read']:.0f} |\n"
      f"| buffered write into new pages, 8 MiB blocks | {limits['page_cache_write_mib_s']['new_pages']:.0f} |\n"
      f"| buffered write into pages already held, 8 MiB blocks | {limits['page_cache_write_mib_s']['held_pages']:.0f} |\n"
      f"\n{limits['date']}, {limits['cores']} cores; disk figures for a {size} file in bench/.\n")
open(os.path.join(out, "limits.md"), "w").write(md)
print(md)
PY

#!/usr/bin/env bash
# Builds the fuzz targets (tests/fuzz/CMakeLists.txt: clang, libFuzzer, ASan + UBSan) into
# BUILD_DIR and runs each over its seed corpus for a bounded number of inputs. Fails on any
# crash, leak, sanitizer report or broken invariant (libFuzzer exits non-zero and leaves the
# input as BUILD_DIR/artifacts/TARGET/crash-*).
#   tests/fuzz/run.sh [BUILD_DIR]            default build-fuzz
#   FUZZ_RUNS=N          inputs per target (default: view 150000, journal 20000, pack 10000, door 100000,
#                        chunked and request 250000; about 8-10 s each on an idle core)
#   FUZZ_MAX_SECONDS=S   time cap per target, a safety net (default 40)
#   FUZZ_TARGETS="view journal"   a subset
#   SHOAL_BUILD_LOCK=FILE  build under flock FILE (default /tmp/shoal-build.lock; empty: no lock)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="${1:-$here/../../build-fuzz}"
max_seconds="${FUZZ_MAX_SECONDS:-40}"
targets="${FUZZ_TARGETS:-view journal pack chunked request door}"
lock="${SHOAL_BUILD_LOCK-/tmp/shoal-build.lock}"
cxx="${FUZZ_CXX:-clang++}"

locked() { if [ -n "$lock" ]; then flock "$lock" "$@"; else "$@"; fi; }

if ! command -v "$cxx" >/dev/null; then
  echo "fuzz: $cxx not found: install clang and libclang-rt-14-dev (make deps-test)" >&2
  exit 1
fi
if [ ! -f "$build/CMakeCache.txt" ]; then
  locked cmake -S "$here" -B "$build" -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
# shellcheck disable=SC2086
locked cmake --build "$build" -j2 --target $(for t in $targets; do echo "${t}_fuzz"; done)

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"
failed=0
for t in $targets; do
  # The committed seeds are read, never written: new inputs go to a scratch corpus.
  work="$build/corpus/$t"
  artifacts="$build/artifacts/$t"
  mkdir -p "$work" "$artifacts"
  max_len=4096
  case $t in
    view) runs=150000 max_len=65536 ;;  # a view is at least 4 KiB of owners
    journal) runs=20000 ;;               # each input is also three journal replays, on tmpfs
    pack) runs=10000 max_len=20000 ;;    # two chunk store opens each; a pack's entries are 4 KiB apart
    door) runs=100000 ;;                 # credentials, both verifiers and the body decoder
    *) runs=250000 ;;
  esac
  runs="${FUZZ_RUNS:-$runs}"
  start=$(date +%s)
  if "$build/${t}_fuzz" -runs="$runs" -max_total_time="$max_seconds" -max_len="$max_len" \
       -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$artifacts/" \
       "$work" "$here/corpus/$t" >"$build/$t.log" 2>&1; then
    stats=$(grep -E '^stat::number_of_executed_units' "$build/$t.log" | awk '{print $2}')
    echo "fuzz: $t: ok, ${stats:-?} inputs in $(( $(date +%s) - start )) s"
  else
    echo "fuzz: $t: FAILED after $(( $(date +%s) - start )) s; log $build/$t.log, inputs in $artifacts/" >&2
    grep -E 'ERROR|runtime error|invariant failed|SUMMARY' "$build/$t.log" | head -20 >&2 || true
    failed=1
  fi
done
exit "$failed"

# Shoal's entry points. Each target installs what it needs on a Debian 12 machine
# (apt-get for libraries and tools, npm into testenv/node_modules for test servers).
#   make build   binaries in build/bin (shoal)
#   make test    every test (unit, and integration against Azurite, s3rver, etcd, the fault proxy)
#   make demo    a 3-node cluster on loopback over the local-directory backend
#   make image   the container image, an OCI layout in build/image (scripts/image.sh, umoci; docs/image.md)
#   make bench   every benchmark (bench/all.sh: the three patterns against the store direct,
#                a copy script, rclone mount and nginx proxy_cache, with the machine's limits)
#                and one report, bench/results/report.md; BENCH_FLAGS="--scale 4" for larger sizes
#   make test SANITIZE=address,undefined   (or SANITIZE=1) everything built with ASan + UBSan into
#                build-asan and tested there; SANITIZE=thread: ThreadSanitizer into build-tsan.
#                CTEST_FLAGS="-R 'node|engine'" picks tests. Reports of every process (the test
#                binaries and the shoald/shoal they start) go to BUILD_DIR/sanitizer/; any fails the run.
#   The fuzz targets (tests/fuzz/, clang's libFuzzer) run in every `make test` as the test `fuzz`.
#   TEST_JOBS=N  tests run N at a time (default 3: most wait on servers and timers, not the CPU;
#                the long binaries are split into parts, CMakeLists.txt's SHARDS). TEST_JOBS=1: one by one.

SANITIZE ?=
ifeq ($(SANITIZE),1)
override SANITIZE := address,undefined
endif
ifneq ($(SANITIZE),)
ifneq ($(findstring thread,$(SANITIZE)),)
BUILD_DIR ?= build-tsan
else
BUILD_DIR ?= build-asan
endif
endif
BUILD_DIR ?= build
JOBS ?= 2
TEST_JOBS ?= 3
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# Libraries and tools the build links or the tests/benchmarks run.
DEB_BUILD := g++ cmake make pkg-config libcurl4-openssl-dev libssl-dev libpugixml-dev \
             libcli11-dev nlohmann-json3-dev libxxhash-dev libboost-dev libgtest-dev libgmock-dev \
             libfuse3-dev fuse3 pybind11-dev python3-dev
DEB_TEST  := nodejs npm rclone time curl etcd-server python3-torch umoci ca-certificates python3-boto3 python3-azure \
             clang libclang-rt-14-dev openssl
DEB_BENCH := nginx-light iperf3 fio python3-matplotlib
# What scripts/image.sh assembles the image with (ca-certificates: the bundle it copies in).
DEB_IMAGE := umoci ca-certificates fuse3

.PHONY: all build test demo bench image deps-build deps-test deps-bench deps-image clean format

all: build

# Installs those of the Debian packages $(1) that are missing.
define apt-install-missing
@missing=$$(for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
if [ -n "$$missing" ]; then \
  echo "installing: $$missing"; \
  $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
fi
endef

deps-build:
	$(call apt-install-missing,$(DEB_BUILD))

deps-test: deps-build
	@missing=$$(for p in $(DEB_TEST); do \
	  case $$p in nodejs) command -v node >/dev/null || echo $$p;; npm) command -v npm >/dev/null || echo $$p;; \
	  *) dpkg -s $$p >/dev/null 2>&1 || echo $$p;; esac; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing: $$missing"; \
	  $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi
	@if [ ! -x testenv/node_modules/.bin/azurite-blob ] || [ ! -x testenv/node_modules/.bin/s3rver ] \
	    || [ ! -d testenv/node_modules/@azure/storage-blob ] || [ ! -d testenv/node_modules/@aws-sdk/client-s3 ] \
	    || [ ! -d testenv/node_modules/kubernetes-models ] || [ ! -d testenv/node_modules/yaml ]; then \
	  echo "installing test servers, SDKs and the Kubernetes schemas into testenv/node_modules (npm)"; \
	  cd testenv && npm install --no-audit --no-fund --loglevel=error; \
	fi

$(BUILD_DIR)/CMakeCache.txt:
	cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" $(if $(SANITIZE),-DSHOAL_SANITIZE=$(SANITIZE))

build: deps-build $(BUILD_DIR)/CMakeCache.txt
	cmake --build $(BUILD_DIR) -j$(JOBS)

# Sanitized runs: every process writes its reports to files (a shoald's stderr is not the test's),
# and the run fails if there is any.
SANITIZER_LOGS = $(abspath $(BUILD_DIR))/sanitizer
SANITIZER_ENV = $(if $(SANITIZE),ASAN_OPTIONS=log_path=$(SANITIZER_LOGS)/asan:detect_leaks=1 \
  UBSAN_OPTIONS=log_path=$(SANITIZER_LOGS)/ubsan:print_stacktrace=1:halt_on_error=1 \
  TSAN_OPTIONS=log_path=$(SANITIZER_LOGS)/tsan:second_deadlock_stack=1)

test: deps-test build
	$(if $(SANITIZE),rm -rf $(SANITIZER_LOGS) && mkdir -p $(SANITIZER_LOGS))
	cd $(BUILD_DIR) && $(SANITIZER_ENV) ctest --output-on-failure --timeout 1800 -j$(TEST_JOBS) $(CTEST_FLAGS)
	$(if $(SANITIZE),@if [ -n "$$(ls -A $(SANITIZER_LOGS))" ]; then \
	  echo "sanitizer reports in $(SANITIZER_LOGS):"; head -n 40 $(SANITIZER_LOGS)/*; exit 1; fi)

demo: deps-build build
	bash scripts/demo.sh

deps-image: deps-build
	$(call apt-install-missing,$(DEB_IMAGE))

# Only the two programs the image holds are built (not the tests): a fresh clone's image
# does not wait for the whole build.
image: deps-image $(BUILD_DIR)/CMakeCache.txt
	cmake --build $(BUILD_DIR) -j$(JOBS) --target shoald shoal
	$(SUDO) bash scripts/image.sh --bin $(BUILD_DIR)/bin --out $(BUILD_DIR)/image

deps-bench: deps-test
	$(call apt-install-missing,$(DEB_BENCH))

bench: deps-bench build
	bash bench/all.sh $(BENCH_FLAGS)

format:
	clang-format -i $$(git ls-files '*.cc' '*.h')

clean:
	rm -rf $(BUILD_DIR)

# cce4long front end. A newcomer needs two commands: `make demo` and `make test`.
# Every target installs what it needs (Debian packages via apt-get) first.

SHELL := /bin/bash
BUILD_DIR ?= build
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= $(shell nproc)
CTEST_ARGS ?=
# Debug info of $(BUILD_DIR) (docs/build.md): lines (-g1, what CI builds: file:line
# in backtraces and perf, no local variables in a debugger) or full (-g).
# Read when $(BUILD_DIR) is first configured.
DEBUG_INFO ?= lines
# 1: `make test` builds the fuzz targets (build-fuzz/, SCHED_IDLE) while ctest
# runs, then fuzz-smoke only runs them (docs/build.md). 0: one after the other.
FUZZ_OVERLAP ?= 1

# Debian packages the build, tests, demo and benchmarks need.
DEB_PACKAGES := build-essential cmake ninja-build pkg-config git \
  libssl-dev libfuse3-dev fuse3 libgtest-dev libgmock-dev nlohmann-json3-dev \
  libyaml-cpp-dev libarchive-dev libsqlite3-dev \
  clang clang-format clang-tidy libclang-rt-14-dev \
  python3 python3-cryptography python3-jsonschema python3-yaml linux-perf \
  gocryptfs fio hyperfine time procps util-linux xxd skopeo sqlite3 libboost-dev libsecp256k1-dev libcrypto++-dev lld \
  nodejs libcurl4-openssl-dev \
  apparmor runc busybox-static libseccomp-dev curl \
  zlib1g-dev libbz2-dev liblzma-dev chromium \
  python3-matplotlib python3-numpy python3-pil python3-pandas python3-openpyxl \
  python3-nbclient python3-nbformat python3-ipykernel
# Explore sessions' local backend (docs/explore/local.md): Debian's Jupyter Notebook server.
DEB_PACKAGES += python3-notebook python3-jupyter-server
# The diagrams (`make diagrams`, docs/img/*.dot): Graphviz and the one font they name.
DEB_PACKAGES += graphviz fonts-dejavu-core

.PHONY: all deps node-deps build test fuzz-smoke demo bench bench-plane fuzz lint format asan tsan ubsan clean help

all: build

help:
	@echo "make demo   - install deps, build, run a Privacy Mode job end to end (plane, agent,"
	@echo "               DecryptFS, sandbox, Output Gate, download), a leaking job held and"
	@echo "               rejected by a reviewer, the audit trail, then DecryptFS tamper detection"
	@echo "make test   - install deps, build, run every test (needs root and /dev/fuse), then"
	@echo "               fuzz-smoke: every libFuzzer target on its seeds + FUZZ_SMOKE_SECONDS (5) each"
	@echo "               (DEBUG_INFO=full for -g instead of -g1, FUZZ_OVERLAP=0 to build the fuzz targets after ctest: docs/build.md)"
	@echo "make bench  - DecryptFS benchmark against plain disk and gocryptfs, then bench-plane"
	@echo "make bench-plane - cce-plane job submissions/s and latency over HTTPS (bench/plane)"
	@echo "               (make bench also runs bench/attest: full key releases/s, and"
	@echo "               bench/job: a Privacy Mode job's overhead, submit -> gated, and"
	@echo "               bench/gate: Output Gate detection rate, false holds, MB/s,"
	@echo "               bench/explore: desensitizer MB/s, bench/ledger: rental checks/s of"
	@echo "               the ethereum index against the embedded ledger)"
	@echo "make fuzz   - libFuzzer targets (clang + ASan), FUZZ_SECONDS each (default 600)"
	@echo "make lint   - clang-format check and clang-tidy"
	@echo "make diagrams - render docs/img/*.dot (Graphviz) to the committed SVGs beside them"
	@echo "make asan | tsan | ubsan - sanitizer builds running the test suite"

deps:
	@missing=$$(for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
	  echo "deps: installing:" $$missing; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	else echo "deps: all Debian packages present"; fi

# The npm packages (package.json) only the targets that run node need: the
# tests (jose, ethers, anvil, solc, playwright-core), the demo (playwright-core
# drives chromium through the Explore notebook, step 10) and the ledger
# benchmark (anvil). `make`/`make build` never runs npm. `npm ci` runs only
# when node_modules is missing or older than package-lock.json (npm ci writes
# node_modules/.package-lock.json last).
node-deps: deps
	@if [ -f package.json ]; then \
	  command -v npm >/dev/null || { SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	    $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends npm; }; \
	  if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then \
	    npm ci --no-audit --no-fund; else echo "node-deps: node_modules is current"; fi; \
	fi

$(BUILD_DIR)/build.ninja:
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DCCE_DEBUG_INFO=$(DEBUG_INFO)

build: deps $(BUILD_DIR)/build.ninja
	cmake --build $(BUILD_DIR) -j $(JOBS)

test: build node-deps
	@bg=; if [ "$(FUZZ_OVERLAP)" = 1 ] && command -v clang++ >/dev/null; then \
	  mkdir -p build-fuzz; echo "test: building the fuzz targets at idle priority (build-fuzz/overlap.log)"; \
	  JOBS=$(JOBS) chrt --idle 0 ./scripts/fuzz.sh --build-only >build-fuzz/overlap.log 2>&1 & bg=$$!; \
	fi; \
	(cd $(BUILD_DIR) && ctest --output-on-failure --timeout 900 -j 2 $(CTEST_ARGS)); rc=$$?; \
	if [ -n "$$bg" ]; then wait $$bg || echo "test: the overlapped fuzz build failed; fuzz-smoke retries it"; fi; \
	exit $$rc
	JOBS=$(JOBS) ./scripts/fuzz-smoke.sh

# clang + ASan build of the fuzz targets only (build-fuzz/), seeds replayed,
# then a few seconds of fuzzing each; fails if a target crashes or clang is missing.
fuzz-smoke: deps
	JOBS=$(JOBS) ./scripts/fuzz-smoke.sh

demo: build node-deps
	./scripts/demo.sh $(BUILD_DIR)/bin

bench: build node-deps
	./bench/decryptfs/run.sh --bin-dir $(BUILD_DIR)/bin
	./bench/plane/run.sh --bin-dir $(BUILD_DIR)/bin --kill-check
	$(BUILD_DIR)/bin/attest_bench --releases 3000 --clients 16 --rounds 3
	./bench/attest/profile.sh --bin-dir $(BUILD_DIR)/bin --releases 1200 --side plane --brief
	./bench/attest/profile.sh --bin-dir $(BUILD_DIR)/bin --releases 1200 --side client --brief
	$(BUILD_DIR)/bin/ledger_bench
	./bench/job/run.sh --bin-dir $(BUILD_DIR)/bin
	./bench/gate/run.sh --bin-dir $(BUILD_DIR)/bin
	./bench/explore/run.sh --bin-dir $(BUILD_DIR)/bin

bench-plane: build
	./bench/plane/run.sh --bin-dir $(BUILD_DIR)/bin --kill-check

fuzz: deps
	JOBS=$(JOBS) ./scripts/fuzz.sh

lint: deps $(BUILD_DIR)/build.ninja
	git ls-files '*.cc' '*.h' | xargs clang-format --dry-run -Werror
	git ls-files 'src/*.cc' 'cmd/*.cc' | grep -v -e '_test.cc$$' -e '_fuzz.cc$$' | \
	  xargs clang-tidy -p $(BUILD_DIR) --quiet --warnings-as-errors='*'

format:
	git ls-files '*.cc' '*.h' | xargs clang-format -i

define sanitizer_build
	cmake -S . -B build-$(1) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCCE_SANITIZER=$(2)
	cmake --build build-$(1) -j $(JOBS)
	cd build-$(1) && ctest --output-on-failure --timeout 1800 $(CTEST_ARGS)
endef

asan: deps node-deps
	$(call sanitizer_build,asan,address)

tsan: deps node-deps
	$(call sanitizer_build,tsan,thread)

ubsan: deps node-deps
	$(call sanitizer_build,ubsan,undefined)

# The diagrams in docs/: every docs/img/*.dot rendered to the .svg beside it,
# which is committed; CTest diagrams_current fails when one is stale.
.PHONY: diagrams
diagrams: deps
	@for f in docs/img/*.dot; do \
	  echo "dot -Tsvg $$f -o $${f%.dot}.svg"; dot -Tsvg "$$f" -o "$${f%.dot}.svg" || exit 1; \
	done

# The python-data base image of script jobs (docs/explore/script-jobs.md):
# Debian's python3.11, numpy and pandas as an OCI layout, offline from
# `apt-get download` (cached in $(BUILD_DIR)/python-data-cache). Rebuilt only
# when the builder changes; push it as an operator:
#   cce image push $(BUILD_DIR)/python-data-oci --name library/python-data:3.11
.PHONY: python-data-image
python-data-image: $(BUILD_DIR)/python-data-oci/index.json
$(BUILD_DIR)/python-data-oci/index.json: scripts/build-python-data-image.py
	/usr/bin/python3 scripts/build-python-data-image.py --out $(BUILD_DIR)/python-data-oci \
	  --cache $(BUILD_DIR)/python-data-cache --ref library/python-data:3.11

clean:
	rm -rf $(BUILD_DIR) build-asan build-tsan build-ubsan build-fuzz

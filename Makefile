# SPDX-License-Identifier: MIT
# tierpool: a thin driver over CMake.
#
#   make               release build in build/
#   make test          dependencies, release build, ctest
#   make test-asan     the same in build-asan/ with AddressSanitizer + UBSan
#   make test-tsan     the same in build-tsan/ with ThreadSanitizer
#   make test-secure   the secure build (-DTP_SECURE=ON) in build-secure/, its `secure` tests
#   make test-debug    the invariant-checking build (-DTP_DEBUG=ON) in build-debug/: unit,
#                      differential, fuzz seeds and thread tests
#   make test-fuzz     libFuzzer harnesses in build-fuzz/ (clang, ASan+UBSan), FUZZ_SECONDS=30 each
#   make bench         dependencies (and benchmark peers), then bench/run.py
#   make bench-quick   fewer, shorter runs (CI's smoke test, under 3 minutes)
#   make install PREFIX=/usr/local
#   make uninstall     remove what the last make install installed
#   make deb           Debian packages (CPack) in build-deb/: libtierpool0, libtierpool-dev, tierpool
#   make size-classes  regenerate src/size_class_table.inc
#   make clean         remove the build folders
#
# `make test` and `make bench` first run tools/install-deps.sh, which checks
# for the tools (and, for bench, the peer allocators) and installs what is
# missing when run as root on Debian.

BUILD      ?= build
BUILD_ASAN ?= build-asan
BUILD_TSAN ?= build-tsan
BUILD_FUZZ ?= build-fuzz
BUILD_SECURE ?= build-secure
BUILD_DEBUG ?= build-debug
BUILD_DEB  ?= build-deb
FUZZ_SECONDS ?= 30
PREFIX     ?= /usr/local
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE      ?= cmake
CTEST      ?= ctest
PYTHON     ?= python3

# Sanitizer runs stop at the first report and print a stack for UBSan.
SAN_ENV = ASAN_OPTIONS=abort_on_error=1:detect_leaks=1 \
          UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
          TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
# ThreadSanitizer (GCC 12) cannot map its shadow under the high ASLR entropy
# of recent kernels; running with address randomisation off avoids that.
NO_ASLR = $(shell setarch $$(uname -m) -R true >/dev/null 2>&1 && echo setarch $$(uname -m) -R)

# configure_build DIR, CMAKE-FLAGS
define configure_build
	$(CMAKE) -S . -B $(1) $(2)
	$(CMAKE) --build $(1) -j $(JOBS)
endef

RELEASE_FLAGS = -DCMAKE_BUILD_TYPE=Release
SAN_FLAGS     = -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTP_BUILD_BENCH=OFF

.PHONY: all build deps deps-bench test test-asan test-tsan test-secure test-debug test-fuzz fuzz-run bench bench-quick install uninstall deb clean size-classes help

all: build

build:
	$(call configure_build,$(BUILD),$(RELEASE_FLAGS))

deps:
	tools/install-deps.sh test

deps-bench:
	tools/install-deps.sh all

test: deps
	$(call configure_build,$(BUILD),$(RELEASE_FLAGS))
	cd $(BUILD) && $(CTEST) --output-on-failure -j $(JOBS)

test-asan: deps
	$(call configure_build,$(BUILD_ASAN),$(SAN_FLAGS) -DTP_SANITIZE=address)
	cd $(BUILD_ASAN) && $(SAN_ENV) $(CTEST) --output-on-failure -j $(JOBS)

test-tsan: deps
	$(call configure_build,$(BUILD_TSAN),$(SAN_FLAGS) -DTP_SANITIZE=thread)
	cd $(BUILD_TSAN) && $(SAN_ENV) $(NO_ASLR) $(CTEST) --output-on-failure -j $(JOBS)

# The white-box unit tests assume the default heap layout; the `secure`
# label holds what must pass in a secure build.
test-secure: deps
	$(call configure_build,$(BUILD_SECURE),$(RELEASE_FLAGS) -DTP_SECURE=ON -DTP_BUILD_BENCH=OFF)
	cd $(BUILD_SECURE) && $(CTEST) --output-on-failure -j $(JOBS) -L secure

# The invariants of internal.h checked as the tests run (docs/design.md):
# the white-box, differential, fuzz-seed and thread tests, which reach every
# slow path and page transition; a broken invariant aborts its test.
test-debug: deps
	$(call configure_build,$(BUILD_DEBUG),$(SAN_FLAGS) -DTP_DEBUG=ON)
	cd $(BUILD_DEBUG) && $(CTEST) --output-on-failure -j $(JOBS) -L 'unit|differential|fuzz|threads'

# The libFuzzer harnesses of tests/fuzz (docs/fuzzing.md): the library with
# ASan+UBSan and coverage, built by clang; each harness runs FUZZ_SECONDS over
# a copy of its seeds and any crash fails. Without clang's libFuzzer it says
# "skipped" and succeeds (not under CI, where install-deps.sh requires it).
test-fuzz: deps
	@if tools/install-deps.sh fuzz; then $(MAKE) --no-print-directory fuzz-run; \
	else echo "test-fuzz: skipped: needs clang's libFuzzer"; fi

fuzz-run:
	CC=clang CXX=clang++ $(CMAKE) -S . -B $(BUILD_FUZZ) $(SAN_FLAGS) -DTP_SANITIZE=address -DTP_FUZZ=ON
	$(CMAKE) --build $(BUILD_FUZZ) -j $(JOBS) --target fuzz_api fuzz_options fuzz_segment
	tests/fuzz/run.sh $(BUILD_FUZZ) $(FUZZ_SECONDS)

# BENCH_RUNS=N: interleaved runs per figure (default 5, quick 3).
bench: deps-bench
	$(PYTHON) bench/run.py --build-dir $(BUILD) $(if $(BENCH_RUNS),--runs $(BENCH_RUNS))

bench-quick: deps-bench
	$(PYTHON) bench/run.py --build-dir $(BUILD) --quick $(if $(BENCH_RUNS),--runs $(BENCH_RUNS))

# tierpool.pc is written at configure time with CMAKE_INSTALL_PREFIX in it,
# which `cmake --install --prefix` does not change: configure with PREFIX too.
install:
	$(call configure_build,$(BUILD),$(RELEASE_FLAGS) -DCMAKE_INSTALL_PREFIX=$(abspath $(PREFIX)))
	$(CMAKE) --install $(BUILD) --prefix $(abspath $(PREFIX))

uninstall:
	$(CMAKE) --build $(BUILD) --target uninstall

# Packages for /usr, built apart from the tests: dpkg -i build-deb/*.deb.
deb:
	tools/install-deps.sh deb
	$(call configure_build,$(BUILD_DEB),$(RELEASE_FLAGS) -DCMAKE_INSTALL_PREFIX=/usr -DTP_DEB=ON -DTP_BUILD_TESTS=OFF -DTP_BUILD_BENCH=OFF)
	rm -f $(BUILD_DEB)/*.deb
	cd $(BUILD_DEB) && cpack -G DEB
	@ls -1 $(BUILD_DEB)/*.deb

# The generator writes to a temporary file first, so a failed run leaves the
# checked-in table as it was.
size-classes:
	mkdir -p $(BUILD)
	$(CC) -O2 -Wall -Wextra -o $(BUILD)/gen_size_classes tools/gen_size_classes.c
	$(BUILD)/gen_size_classes > src/size_class_table.inc.tmp
	mv src/size_class_table.inc.tmp src/size_class_table.inc

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) $(BUILD_TSAN) $(BUILD_FUZZ) $(BUILD_SECURE) $(BUILD_DEBUG) $(BUILD_DEB)

help:
	@sed -n '3,18p' Makefile | sed 's/^# *//'

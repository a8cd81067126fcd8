# Thin wrapper around Meson: the targets a user and CI need.
#   make            build (build/)
#   make check      every test suite: unit, kernel, golden config, fuzz (short), lab (after
#                   pyflakes over the Python code: a misnamed helper fails at once);
#                   in the normal and the ASan+UBSan build
#   make demo       run egressd in a lab of network namespaces with a live view
#   make bench      benchmarks (bench/)
#   make install    PREFIX=/usr/local DESTDIR=
#   make deps       install missing Debian packages
# LAB_JOBS=N (default 2) runs the lab tests in N worker processes (pytest-xdist, one test
# file per worker at a time: a file's tests share their topology); LAB_JOBS=0 runs them in
# one process, one after another.
PREFIX ?= /usr/local
DESTDIR ?=
BUILD ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
MESON_OPTS ?= -Dwerror=true
# Debian's interpreter, which has python3-pytest (another python3 may come first in PATH).
PYTHON ?= /usr/bin/python3
PYTEST ?= $(PYTHON) -m pytest
LAB_JOBS ?= 2
LAB_XDIST = -n $(LAB_JOBS) --dist loadfile
DEPS_STAMP = .deps-stamp

.PHONY: all build deps check check-unit check-asan check-fuzz check-lab demo bench install clean

all: build

deps:
	@scripts/deps.sh

# Re-run the dependency check when its list changes; otherwise it costs nothing.
$(DEPS_STAMP): scripts/debian-packages scripts/deps.sh
	@scripts/deps.sh
	@touch $@

$(BUILD)/build.ninja: | $(DEPS_STAMP)
	meson setup $(BUILD) $(MESON_OPTS) --prefix=$(PREFIX)

$(ASAN_BUILD)/build.ninja: | $(DEPS_STAMP)
	meson setup $(ASAN_BUILD) $(MESON_OPTS) -Db_sanitize=address,undefined -Db_lundef=false

$(FUZZ_BUILD)/build.ninja: | $(DEPS_STAMP)
	CC=clang meson setup $(FUZZ_BUILD) $(MESON_OPTS) -Dfuzz=true -Dtests=false \
		-Db_sanitize=address,undefined -Db_lundef=false

build: $(DEPS_STAMP) $(BUILD)/build.ninja
	ninja -C $(BUILD)

check-unit: build
	meson test -C $(BUILD) --no-suite fuzz --print-errorlogs

check-asan: $(ASAN_BUILD)/build.ninja
	ninja -C $(ASAN_BUILD)
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		meson test -C $(ASAN_BUILD) --no-suite fuzz --print-errorlogs

check-fuzz: $(FUZZ_BUILD)/build.ninja
	ninja -C $(FUZZ_BUILD)
	meson test -C $(FUZZ_BUILD) --suite fuzz --print-errorlogs

# Lab tests run against both builds of egressd; the lab's own tests once. They need root: a
# missing tool, egressd binary or required kernel feature fails them; only a test marked
# optional_feature skips (-rs lists why).
check-lab: build $(ASAN_BUILD)/build.ninja
	@[ "$$(id -u)" = 0 ] || { echo "check-lab: the lab tests need root (network namespaces)" >&2; exit 1; }
	ninja -C $(ASAN_BUILD)
	$(PYTHON) -m pyflakes tests/lab bench scripts
	EGRESSD=$(CURDIR)/$(ASAN_BUILD)/src/cmd/egressd \
		ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		$(PYTEST) -q -rs $(LAB_XDIST) -m daemon \
		--junitxml=$(ASAN_BUILD)/meson-logs/lab-daemon.xml tests/lab
	EGRESSD=$(CURDIR)/$(BUILD)/src/cmd/egressd \
		$(PYTEST) -q -rs $(LAB_XDIST) --junitxml=$(BUILD)/meson-logs/lab.xml tests/lab

# Ends with the count of skipped tests and their reasons, from every suite's log.
check: check-unit check-asan check-fuzz check-lab
	@$(PYTHON) scripts/check-skips.py $(BUILD)/meson-logs/testlog.json \
		$(ASAN_BUILD)/meson-logs/testlog.json $(FUZZ_BUILD)/meson-logs/testlog.json \
		$(ASAN_BUILD)/meson-logs/lab-daemon.xml $(BUILD)/meson-logs/lab.xml

demo: build
	$(PYTHON) tests/lab/demo.py --egressd $(CURDIR)/$(BUILD)/src/cmd/egressd $(DEMO_ARGS)

bench: build
	$(PYTHON) bench/run.py --egressd $(CURDIR)/$(BUILD)/src/cmd/egressd $(BENCH_ARGS)

install: build
	meson configure $(BUILD) --prefix=$(PREFIX)
	ninja -C $(BUILD)
	DESTDIR=$(DESTDIR) meson install -C $(BUILD) --no-rebuild

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD) $(DEPS_STAMP)

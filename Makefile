# payloadfs — one entry point: all, check, crash, powerloss, bench, demo, install, clean
# (deb and check-deb: the Debian package, packaging/README.md)
# (and fuzz, fuzz-run, valgrind for the test tiers beside check).
# Flags: CFLAGS is yours (default -O2 -g); what the build needs is added with
# override. SANITIZE=address,undefined builds with sanitizers. V=1 is verbose.

CC      ?= gcc
CFLAGS  ?= -O2 -g
PREFIX  ?= /usr/local
DESTDIR ?=
BUILD   ?= build
SANITIZE ?=

PKGS := fuse3 liblz4 libxxhash liburing
# What every compile needs (the fuzz build uses it too).
REQ_CFLAGS := -std=c11 -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 \
	-Wall -Wextra -Werror -MMD -MP -I. -pthread \
	$(shell pkg-config --cflags $(PKGS) 2>/dev/null)
ifneq ($(FAULT),0)
REQ_CFLAGS += -DPFS_FAULT_INJECTION=1
endif
override CFLAGS += $(REQ_CFLAGS)
ifneq ($(SANITIZE),)
override CFLAGS  += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
override LDFLAGS += -fsanitize=$(SANITIZE)
endif
# librados (librados-dev) ships no .pc file either: plain -lrados.
LDLIBS_CORE := -llmdb -lrados $(shell pkg-config --libs liblz4 libxxhash liburing 2>/dev/null) -pthread
LDLIBS_FUSE := $(shell pkg-config --libs fuse3 2>/dev/null)

ifeq ($(V),1)
Q :=
else
Q := @
endif

CORE_SRC := $(sort $(wildcard cache/*.c index/*.c))
FS_SRC   := $(sort $(wildcard fs/*.c))
CTL_SRC  := $(sort $(wildcard tools/*.c))
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
BENCH_SRC := $(sort $(wildcard tests/bench/*.c))
STRESS_SRC := $(sort $(wildcard tests/stress/*.c))

CORE_OBJ := $(CORE_SRC:%.c=$(BUILD)/%.o)
FS_OBJ   := $(FS_SRC:%.c=$(BUILD)/%.o)
CTL_OBJ  := $(CTL_SRC:%.c=$(BUILD)/%.o)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
BENCH_BIN := $(BENCH_SRC:tests/bench/%.c=$(BUILD)/bench/%)
STRESS_BIN := $(STRESS_SRC:tests/stress/%.c=$(BUILD)/stress/%)
CORE_LIB := $(BUILD)/libpayloadcore.a

all: $(BUILD)/payloadfs $(BUILD)/payloadctl lib $(BUILD)/tests/pltool

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(CORE_LIB): $(CORE_OBJ)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && $(AR) rcs $@ $^

$(BUILD)/payloadfs: $(FS_OBJ) $(CORE_LIB)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(FS_OBJ) $(CORE_LIB) $(LDLIBS_FUSE) $(LDLIBS_CORE)

$(BUILD)/payloadctl: $(CTL_OBJ) $(CORE_LIB)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(CTL_OBJ) $(CORE_LIB) $(LDLIBS_CORE)

$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(CORE_LIB)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(CORE_LIB) $(LDLIBS_CORE)

$(BUILD)/bench/%: $(BUILD)/tests/bench/%.o
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $<

# mkbigstore (big stores for mount-time figures), bench_rados (the RADOS
# backend itself) and bench_rlog (index log appends) link the core.
$(BUILD)/bench/mkbigstore $(BUILD)/bench/bench_rados $(BUILD)/bench/bench_rlog: $(BUILD)/bench/%: $(BUILD)/tests/bench/%.o $(CORE_LIB)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(CORE_LIB) $(LDLIBS_CORE)

# commit_times.so: an LD_PRELOAD shim that times index log appends and LMDB
# commits inside the daemon (tests/bench/run.sh, figure rados).
$(BUILD)/bench/commit_times.so: tests/bench/shim/commit_times.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) -fPIC -shared $(LDFLAGS) -o $@ $< -ldl

$(BUILD)/stress/%: $(BUILD)/tests/stress/%.o
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $<

# test_fsck and test_ctl drive payloadctl's commands in-process: they also
# link the tool's objects (all but main's).
CTL_LIB_OBJ := $(filter-out $(BUILD)/tools/payloadctl.o,$(CTL_OBJ))
CTL_TESTS := $(BUILD)/tests/test_fsck $(BUILD)/tests/test_ctl
$(CTL_TESTS): $(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(CTL_LIB_OBJ) $(CORE_LIB)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(CTL_LIB_OBJ) $(CORE_LIB) $(LDLIBS_CORE)

# test_fnode tests the daemon's node table (no FUSE headers in it).
$(BUILD)/tests/test_fnode: $(BUILD)/tests/unit/test_fnode.o $(BUILD)/fs/fnode.o $(CORE_LIB)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/fs/fnode.o $(CORE_LIB) $(LDLIBS_CORE)

# test_killpriv tests the setuid/setgid rule (no FUSE headers in it).
$(BUILD)/tests/test_killpriv: $(BUILD)/tests/unit/test_killpriv.o $(BUILD)/fs/killpriv.o $(CORE_LIB)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/fs/killpriv.o $(CORE_LIB) $(LDLIBS_CORE)

# test_initflags tests the INIT reply patch (no FUSE headers in it).
$(BUILD)/tests/test_initflags: $(BUILD)/tests/unit/test_initflags.o $(BUILD)/fs/initflags.o $(CORE_LIB)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/fs/initflags.o $(CORE_LIB) $(LDLIBS_CORE)

# ---- libpayload (lib/payload.h, docs/payload.3): the core compiled again
# position-independent, with lib/payload.c, into one shared library that
# exports only payload_* (lib/payload.map).
LIB_SO_VERSION := 0.1.0
LIB_SONAME := libpayload.so.0
LIB_SO := $(BUILD)/libpayload.so.$(LIB_SO_VERSION)
LIB_PIC_OBJ := $(CORE_SRC:%.c=$(BUILD)/pic/%.o) $(patsubst %.c,$(BUILD)/pic/%.o,$(sort $(wildcard lib/*.c)))

$(BUILD)/pic/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -fPIC -fvisibility=hidden -c -o $@ $<

$(LIB_SO): $(LIB_PIC_OBJ) lib/payload.map
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -shared -Wl,-soname,$(LIB_SONAME) \
		-Wl,--version-script=lib/payload.map -Wl,-z,defs -o $@ $(LIB_PIC_OBJ) $(LDLIBS_CORE)
	$(Q)ln -sf $(notdir $@) $(BUILD)/$(LIB_SONAME) && ln -sf $(LIB_SONAME) $(BUILD)/libpayload.so

# made again at every build: it holds PREFIX and LIBDIR of the command line
$(BUILD)/payload.pc: lib/payload.pc.in FORCE
	@mkdir -p $(dir $@)
	$(Q)sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@VERSION@|$(LIB_SO_VERSION)|' $< > $@

FORCE:

lib: $(LIB_SO) $(BUILD)/payload.pc

# test_libpayload, test_libasync and test_follow link the shared library (its public API only).
$(BUILD)/tests/test_libpayload $(BUILD)/tests/test_libasync $(BUILD)/tests/test_follow: $(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(LIB_SO) $(CORE_LIB)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< -L$(BUILD) -lpayload -Wl,-rpath,$(abspath $(BUILD)) \
		$(CORE_LIB) $(LDLIBS_CORE)

# libget, libbatch, libfollow: the library's bench figures (tests/bench/libget.sh, libfollow.sh).
$(BUILD)/bench/libget $(BUILD)/bench/libbatch $(BUILD)/bench/libfollow: $(BUILD)/bench/%: $(BUILD)/tests/bench/%.o $(LIB_SO)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< -L$(BUILD) -lpayload -Wl,-rpath,$(abspath $(BUILD)) -pthread

# bench-lib: that figure alone (docs/benchmarks.md "The library").
bench-lib: all $(BUILD)/bench/libget $(BUILD)/bench/libbatch $(BUILD)/bench/libfollow
	$(Q)tests/bench/libget.sh $(BUILD)
	$(Q)tests/bench/libfollow.sh $(BUILD)

# bench-follow: the stream-follow figure alone (tests/bench/follow.sh).
bench-follow: all $(BUILD)/bench/follow
	$(Q)tests/bench/follow.sh $(BUILD)

# pltool: a small client of the library for the end-to-end tests.
$(BUILD)/tests/pltool: tests/lib/pltool.c $(LIB_SO)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< -L$(BUILD) -lpayload -Wl,-rpath,$(abspath $(BUILD))

unit: $(UNIT_BIN)

# ---- fuzzing: libFuzzer harnesses tests/fuzz/fuzz_*.c, built with clang
# against the core sources (compiled again with the fuzzer's coverage and
# ASan+UBSan: SANITIZE does not apply) into $(BUILD)/fuzz/.
FUZZ_CC     ?= clang
FUZZ_CFLAGS ?= -O1 -g
FUZZ_TIME   ?= 60
FUZZ_SAN    := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_DIR    := $(BUILD)/fuzz
FUZZ_SRC    := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BIN    := $(FUZZ_SRC:tests/fuzz/%.c=$(FUZZ_DIR)/%)
FUZZ_LIB    := $(FUZZ_DIR)/libpayloadcore.a
FUZZ_CORE_OBJ := $(CORE_SRC:%.c=$(FUZZ_DIR)/obj/%.o)
# The check tier fuzzes each harness this long (seconds); a sanitizer
# build only replays the seed corpus (the fuzzers are the same binaries).
CHECK_FUZZ_TIME ?= $(if $(SANITIZE),0,20)

$(FUZZ_DIR)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  FUZZCC  $<")
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) $(REQ_CFLAGS) $(FUZZ_SAN) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_LIB): $(FUZZ_CORE_OBJ)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && $(AR) rcs $@ $^

$(FUZZ_DIR)/fuzz_%: $(FUZZ_DIR)/obj/tests/fuzz/fuzz_%.o $(FUZZ_LIB)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $< $(FUZZ_LIB) $(LDLIBS_CORE)

fuzz: $(FUZZ_BIN)

# fuzz-run: fuzz each harness for FUZZ_TIME seconds (0: replay the seeds).
fuzz-run: fuzz
	$(Q)FUZZ_TIME=$(FUZZ_TIME) tests/fuzz/run.sh $(BUILD)

# fuzz-corpus: regenerate the binary seeds in tests/fuzz/corpus/ from the
# real encoders.
fuzz-corpus: $(BUILD)/tests/fuzz/gen_corpus
	$(Q)$(BUILD)/tests/fuzz/gen_corpus tests/fuzz/corpus

$(BUILD)/tests/fuzz/gen_corpus: $(BUILD)/tests/fuzz/gen_corpus.o $(CORE_LIB)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(CORE_LIB) $(LDLIBS_CORE)

# valgrind: every unit binary under valgrind memcheck (tests/valgrind.sh).
valgrind: unit
	$(Q)tests/valgrind.sh $(BUILD)

# The power-loss explorer's LD_PRELOAD shim (tests/crash/plshim.c): for the
# tests only, and built without SANITIZE (a preloaded library cannot bring
# its own sanitizer runtime).
SHIM := $(BUILD)/crash/plshim.so
$(SHIM): tests/crash/plshim.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  SHIM    $@")
	$(Q)$(CC) -O2 -g -std=gnu11 -Wall -Wextra -Werror -fPIC -shared -o $@ $< -ldl -pthread

# check: unit tests, a short fuzz run (when clang and libFuzzer are
# installed), then end-to-end tests; the last line is "N passed, N failed".
check: all unit $(STRESS_BIN) $(SHIM)
	$(Q)if tests/fuzz/have-libfuzzer.sh "$(FUZZ_CC)"; then $(MAKE) --no-print-directory fuzz || true; fi
	$(Q)FUZZ_CC="$(FUZZ_CC)" FUZZ_TIME=$(CHECK_FUZZ_TIME) tests/run-all.sh $(BUILD)

# crash: the crash harness's long mode (tests/crash/README.md):
# `make crash ROUNDS=500 [SEED=N]`; prints rounds, operations, kills and a verdict.
ROUNDS ?= 200
crash: all
	$(Q)tests/crash/crash.py --build $(BUILD) --cases --rounds $(ROUNDS) --startup-rounds 32 $(if $(SEED),--seed $(SEED))

# crash-rados: the crash harness's long mode over a RADOS store, on a
# throwaway cluster (tests/rados/with-cluster.sh; stopped by PID at the end):
# `make crash-rados ROUNDS=200 [SEED=N]`.
crash-rados: all
	$(Q)tests/rados/with-cluster.sh /usr/bin/python3 tests/crash/crash.py --rados --build $(BUILD) --cases --rounds $(ROUNDS) $(if $(SEED),--seed $(SEED))

# powerloss: the power-loss explorer's long mode (tests/crash/README.md,
# "Power loss"): thousands of crash states; SEED= to replay one run,
# PL_BUDGET= seconds of states per scenario.
powerloss: all $(SHIM)
	$(Q)tests/crash/powerloss.py --build $(BUILD) --long $(if $(SEED),--seed $(SEED))

# stress: the concurrency stress test and the fsx exerciser in their long
# modes (tests/stress/README.md): SECONDS= of stress, FSX_OPS= per seed,
# FSX_SEEDS= how many seeds, SEED= to replay one run.
SECONDS ?= 600
FSX_OPS ?= 100000
FSX_SEEDS ?= 3
stress: all $(STRESS_BIN)
	$(Q)STRESS_SECONDS=$(SECONDS) FSX_OPS=$(FSX_OPS) FSX_SEEDS=$(FSX_SEEDS) tests/stress/run.sh $(BUILD) long

# bench: installs its peers when missing (bindfs, squashfuse, ...), then
# measures; not part of check. See docs/benchmarks.md for the knobs.
bench: all $(BENCH_BIN) $(BUILD)/bench/commit_times.so
	$(Q)packaging/install-deps.sh --bench
	$(Q)tests/bench/libget.sh $(BUILD)
	$(Q)tests/bench/follow.sh $(BUILD)
	$(Q)tests/bench/libfollow.sh $(BUILD)
	$(Q)tests/bench/run.sh $(BUILD)

# bench-charts: publish the last `make bench` (BUILD/bench/chart.tsv) as
# docs/bench-chart.tsv, drawn into docs/bench-figures.svg and
# docs/bench-targets.svg, the charts that docs/benchmarks.md shows (make
# bench itself draws into BUILD/bench/).
bench-charts:
	$(Q)cp $(BUILD)/bench/chart.tsv docs/bench-chart.tsv
	$(Q)tests/bench/chart.sh docs/bench-chart.tsv docs/bench

# bench-rados: `rados bench` (1 MiB objects, 16 ops in flight, write and
# seq) and the RADOS backend's own figures (bench_rados) on one throwaway
# cluster (tests/bench/rados.sh); not part of check.
bench-rados: $(BUILD)/bench/bench_rados
	$(Q)tests/bench/rados.sh $(BUILD)

demo: all
	$(Q)packaging/demo.sh $(BUILD)

# install: the binaries, man pages and docs; the mount helper (its man
# page: a link to payloadfs.8), the systemd units and the bash completion
# when packaging/ has them. debian/rules runs
# it with PREFIX=/usr SBINDIR=/sbin UNITDIR=/lib/systemd/system
# LIBDIR=/usr/lib/MULTIARCH PYDIR=/usr/lib/python3/dist-packages.
SBINDIR ?= $(PREFIX)/sbin
UNITDIR ?= $(PREFIX)/lib/systemd/system
DOCDIR  ?= $(PREFIX)/share/doc/payloadfs
COMPDIR ?= $(PREFIX)/share/bash-completion/completions
INSTALL_DOCS := README.md $(wildcard docs/*.md docs/bench-*.svg)
install: all install-lib
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/man/man8
	install -m 755 $(BUILD)/payloadfs $(BUILD)/payloadctl $(DESTDIR)$(PREFIX)/bin/
	install -m 644 docs/payloadctl.1 $(DESTDIR)$(PREFIX)/share/man/man1/
	install -m 644 docs/payloadfs.8 $(DESTDIR)$(PREFIX)/share/man/man8/
	install -d $(DESTDIR)$(DOCDIR)
	install -m 644 $(INSTALL_DOCS) $(DESTDIR)$(DOCDIR)/
	$(Q)set -e; \
	if [ -f packaging/mount.fuse.payloadfs ]; then \
		install -d $(DESTDIR)$(SBINDIR); \
		install -m 755 packaging/mount.fuse.payloadfs $(DESTDIR)$(SBINDIR)/; \
		ln -sf payloadfs.8 $(DESTDIR)$(PREFIX)/share/man/man8/mount.fuse.payloadfs.8; fi; \
	if [ -f packaging/systemd/payloadfs@.service ]; then \
		install -d $(DESTDIR)$(UNITDIR); \
		install -m 644 packaging/systemd/payloadfs@.service $(DESTDIR)$(UNITDIR)/; fi; \
	if [ -f packaging/systemd/mnt-payload.mount ]; then \
		install -d $(DESTDIR)$(DOCDIR)/examples; \
		install -m 644 packaging/systemd/mnt-payload.mount $(DESTDIR)$(DOCDIR)/examples/; fi; \
	if [ -f packaging/bash-completion/payloadctl ]; then \
		install -d $(DESTDIR)$(COMPDIR); \
		install -m 644 packaging/bash-completion/payloadctl $(DESTDIR)$(COMPDIR)/; fi

# deb: payloadfs_*.deb with dpkg-buildpackage -us -uc -b, in a copy of the
# tree under $(BUILD)/deb (packaging/deb.sh; packaging/README.md).
deb:
	$(Q)packaging/deb.sh $(BUILD)

# check-deb: build the package, install it into a throwaway root and mount
# a store with the installed binary (tests/deb/check-deb.sh; TAP).
check-deb:
	$(Q)tests/deb/check-deb.sh $(BUILD)

# install-lib: libpayload, payload.h, payload.pc, payload(3) and the
# Python package payloadfs (docs/guide.md "The library"); `install`
# depends on it. ldconfig runs when DESTDIR is empty.
LIBDIR ?= $(PREFIX)/lib
# Debian's /usr/bin/python3 looks in $(PREFIX)/lib/python3.N/dist-packages
# for PREFIX=/usr/local (site.getsitepackages()).
PYVER := $(shell /usr/bin/python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || echo 3)
PYDIR ?= $(PREFIX)/lib/python$(PYVER)/dist-packages
install-lib: lib
	install -d $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/share/man/man3
	install -m 644 $(LIB_SO) $(DESTDIR)$(LIBDIR)/
	ln -sf libpayload.so.$(LIB_SO_VERSION) $(DESTDIR)$(LIBDIR)/$(LIB_SONAME)
	ln -sf $(LIB_SONAME) $(DESTDIR)$(LIBDIR)/libpayload.so
	install -m 644 lib/payload.h $(DESTDIR)$(PREFIX)/include/
	install -m 644 $(BUILD)/payload.pc $(DESTDIR)$(LIBDIR)/pkgconfig/
	install -m 644 docs/payload.3 $(DESTDIR)$(PREFIX)/share/man/man3/
	install -d $(DESTDIR)$(PYDIR)/payloadfs
	install -m 644 python/payloadfs/__init__.py python/payloadfs/zarr.py python/payloadfs/_queue.py python/payloadfs/follow.py $(DESTDIR)$(PYDIR)/payloadfs/
	$(if $(DESTDIR),,-ldconfig)

clean:
	rm -rf $(BUILD)

.PHONY: deb check-deb bench-charts all lib install-lib bench-lib bench-follow FORCE unit check crash crash-rados powerloss bench bench-rados stress demo install clean fuzz fuzz-run fuzz-corpus valgrind
.SECONDARY:

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

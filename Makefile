# evring - plain GNU make, objects out of tree in build/.
#
#   make                 build/libevring.a, build/libevring.so.VERSION
#                        (with the .so.MAJOR and .so links), build/evringd,
#                        build/evring-bench (never installs anything)
#   make install         copy them, the headers, evring.pc and the man pages
#                        under DESTDIR/PREFIX; make uninstall removes them
#   make install-systemd the unit files of docs/systemd/
#   make run             install what is missing, build, start evringd
#   make test            install what is missing, build, run every test
#                        (both backends); ends with "N passed, N failed,
#                        N skipped"
#   make examples        build the examples
#   make check           the suite under ASan+UBSan, then the threaded
#                        tests under ThreadSanitizer (make check-tsan)
#   make check-layers    the layer rule: core/ never reaches protocols/;
#                        nothing above core/ includes core/internal.h
#   make V=1             show the commands
#   make WERROR=1        warnings are errors (CI)
#   make MIMALLOC=0      build without mimalloc
#   make check-buildflags build with dpkg-buildflags' flags into
#                        build/dpkg and check that they took effect
#   CPPFLAGS, CFLAGS and LDFLAGS are honoured (dpkg-buildflags).
#
# Sources are found by wildcard: the library is core/*.c, core/backend/*.c
# and protocols/*.c; the daemon core/evringd/*.c; each examples/NAME/ is
# one program, or one module evringd loads (NAME.so) when its source
# exports one (EVR_MODULE_EXPORT); each tests/test_*.c one test program.

CC ?= cc
V ?= 0
SANITIZE ?=
MIMALLOC ?= 1
WERROR ?= 0

ifeq ($(SANITIZE),thread)
BUILD ?= build/tsan
MIMALLOC := 0
else ifneq ($(SANITIZE),)
BUILD ?= build/san
MIMALLOC := 0
else
BUILD ?= build
endif

ifeq ($(V),0)
Q := @
say = @printf '  %-6s %s\n' $(1) $(2);
else
Q :=
say =
endif

WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes
ifeq ($(WERROR),1)
WARN += -Werror
endif
OPT ?= -O2
# Public headers are reached as a user of the installed library reaches
# them: "evring.h" and "evring/line.h" (build/include/evring/ holds links
# to the public headers of protocols/).
INC := -Icore -I$(BUILD)/include
CFLAGS_ALL := -std=c11 -D_GNU_SOURCE $(OPT) -g -fPIC $(WARN) -MMD -MP \
	$(INC) $(CPPFLAGS) $(CFLAGS)
LDFLAGS_ALL := $(LDFLAGS)
ifneq ($(SANITIZE),)
CFLAGS_ALL += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer \
	-fno-sanitize-recover=all
LDFLAGS_ALL += -fsanitize=$(SANITIZE)
endif
LIBS := -luring

# The version is written once, in core/evring.h.
version_part = $(shell sed -n 's/^\#define EVR_VERSION_$(1)[[:space:]]*\([0-9]*\).*/\1/p' \
	core/evring.h)
VERSION_MAJOR := $(call version_part,MAJOR)
VERSION := $(VERSION_MAJOR).$(call version_part,MINOR).$(call version_part,PATCH)
SONAME := libevring.so.$(VERSION_MAJOR)
SHLIB := libevring.so.$(VERSION)
ifeq ($(MIMALLOC),1)
# mimalloc replaces malloc for the whole process; --no-as-needed keeps the
# dependency although no mimalloc symbol is named.
ALLOC_LIBS := -Wl,--no-as-needed -lmimalloc -Wl,--as-needed
endif

LIB_SRCS := $(wildcard core/*.c core/backend/*.c protocols/*.c)
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
DAEMON_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard core/evringd/*.c))
BENCH_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard bench/*.c))

# The public headers, and where they are reached from.
PUBLIC_PROTO_HDRS := protocols/modules.h protocols/builtin.def \
	protocols/line.h protocols/daytime.h protocols/tcpmux.h
PUBLIC_LINKS := $(PUBLIC_PROTO_HDRS:protocols/%=$(BUILD)/include/evring/%)

TEST_SRCS := $(wildcard tests/test_*.c)
TEST_BINS := $(TEST_SRCS:tests/%.c=$(BUILD)/tests/%)
TEST_HELPER_OBJS := $(BUILD)/obj/tests/harness.o $(BUILD)/obj/tests/loopsrv.o \
	$(BUILD)/obj/tests/evd_conf.o
TEST_MODULES := $(BUILD)/tests/module-bad-abi.so \
	$(BUILD)/tests/module-no-symbol.so $(BUILD)/tests/module-missing-call.so
TEST_TOOLS := $(BUILD)/tests/seccomp-launch $(BUILD)/tests/listen-fds \
	$(BUILD)/tests/child-report $(BUILD)/tests/mailbox-stress $(TEST_MODULES)
TEST_OBJS := $(TEST_SRCS:%.c=$(BUILD)/obj/%.o) $(TEST_HELPER_OBJS)

EXAMPLE_SRCS := $(wildcard examples/*/*.c)
EXAMPLE_DIRS := $(sort $(dir $(EXAMPLE_SRCS)))
MODULE_DIRS := $(sort $(dir $(shell grep -l '^EVR_MODULE_EXPORT' \
	$(EXAMPLE_SRCS))))
EXAMPLE_BINS := $(patsubst examples/%/,$(BUILD)/examples/%,\
	$(filter-out $(MODULE_DIRS),$(EXAMPLE_DIRS))) \
	$(patsubst examples/%/,$(BUILD)/examples/%.so,$(MODULE_DIRS))

# Test objects are built through pattern rules: keep them, or make deletes
# them as intermediates and recompiles every test on every run.
.SECONDARY: $(TEST_OBJS) $(PUBLIC_LINKS)

.PHONY: all deps run test test-build examples clean check check-tsan \
	check-layers check-format format bench bench-quick bench-scaling \
	bench-spawn bench-floor peers valgrind soak \
	install uninstall install-systemd check-buildflags

all: $(BUILD)/libevring.a $(BUILD)/libevring.so $(BUILD)/$(SONAME) \
	$(BUILD)/evringd $(BUILD)/evring-bench

# ---- Debian packages -----------------------------------------------------

# What building needs (checked by every build, never installed by it);
# what `make run` adds; what `make test` adds: every program a test runs.
BUILD_PKGS := gcc make libc6-dev liburing-dev libmimalloc-dev
RUN_PKGS := netbase tzdata
TEST_PKGS := $(RUN_PKGS) libcriterion-dev netcat-openbsd util-linux \
	pkg-config rdate socat libfaketime mandoc binutils dpkg-dev man-db \
	systemd haproxy coreutils dash python3-prometheus-client

# $(call pkgs,PACKAGES,INSTALL): the missing ones among PACKAGES are
# installed when INSTALL is 1 and we are root; otherwise the apt-get
# command is printed and the make fails. Off Debian, a reminder only.
pkgs = $(Q)if ! command -v dpkg-query >/dev/null 2>&1; then \
		echo "deps: not a Debian system; make sure these are" \
		     "installed: $(1)"; \
	else \
		missing=""; \
		for p in $(1); do \
			dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | \
				grep -q 'ok installed' || missing="$$missing $$p"; \
		done; \
		if [ -n "$$missing" ]; then \
			if [ "$(2)" = 1 ] && [ "$$(id -u)" = 0 ]; then \
				echo "deps: installing$$missing"; \
				apt-get update -qq && \
				DEBIAN_FRONTEND=noninteractive apt-get install \
					-y -qq --no-install-recommends $$missing \
					>/dev/null || exit 1; \
			else \
				echo "deps: missing Debian packages:$$missing"; \
				echo "deps: run: sudo apt-get update &&" \
				     "sudo apt-get install -y$$missing"; \
				exit 1; \
			fi; \
		fi; \
	fi

$(BUILD)/.pkgs-build: Makefile
	$(call pkgs,$(BUILD_PKGS),0)
	$(Q)mkdir -p $(@D) && touch $@

# The README's two commands install what they need (as root).
deps:
	$(call pkgs,$(BUILD_PKGS) $(TEST_PKGS),1)

# ---- library and daemon --------------------------------------------------

$(BUILD)/include/evring/%: protocols/%
	$(Q)mkdir -p $(@D)
	$(Q)ln -sf $(abspath $<) $@

$(BUILD)/obj/%.o: %.c | $(BUILD)/.pkgs-build $(PUBLIC_LINKS)
	$(call say,CC,$<)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS_ALL) -c $< -o $@

$(BUILD)/libevring.a: $(LIB_OBJS)
	$(call say,AR,$@)
	$(Q)rm -f $@
	$(Q)ar rcs $@ $^

# Exports are pinned by the version script: the evr_ API and nothing else.
# The file carries the full version; the soname (what programs record and
# the loader looks for) the major one; libevring.so is what -levring finds.
$(BUILD)/$(SHLIB): $(LIB_OBJS) core/evring.map
	$(call say,LD,$@)
	$(Q)$(CC) -shared -o $@ $(LIB_OBJS) -Wl,-soname,$(SONAME) \
		-Wl,--version-script=core/evring.map $(LDFLAGS_ALL) $(LIBS)

$(BUILD)/$(SONAME): $(BUILD)/$(SHLIB)
	$(Q)ln -sf $(SHLIB) $@

$(BUILD)/libevring.so: $(BUILD)/$(SONAME)
	$(Q)ln -sf $(SONAME) $@

# evringd exports the evr_ API to the modules it loads (modload.c): the
# whole library goes in, and the dynamic list exports evr_* and nothing
# else.
$(BUILD)/evringd: $(DAEMON_OBJS) $(BUILD)/libevring.a core/evringd/exports.list
	$(call say,LD,$@)
	$(Q)$(CC) -o $@ $(DAEMON_OBJS) -Wl,--whole-archive \
		$(BUILD)/libevring.a -Wl,--no-whole-archive \
		-Wl,--dynamic-list=core/evringd/exports.list $(LDFLAGS_ALL) \
		$(LIBS) $(ALLOC_LIBS)

$(BUILD)/evring-bench: $(BENCH_OBJS) $(BUILD)/libevring.a
	$(call say,LD,$@)
	$(Q)$(CC) -o $@ $(BENCH_OBJS) $(BUILD)/libevring.a $(LDFLAGS_ALL) \
		$(LIBS) $(ALLOC_LIBS)

# ---- install ---------------------------------------------------------------

# GNU directory variables (the lower-case names work too). Headers:
# <evring.h> at INCLUDEDIR, the protocols' headers under <evring/...>,
# exactly as in-tree code reaches them (-Icore -I$(BUILD)/include).
# Nothing here builds with other flags or installs packages: `make install`
# copies what `make` built.
prefix ?= /usr/local
PREFIX ?= $(prefix)
exec_prefix ?= $(PREFIX)
bindir ?= $(exec_prefix)/bin
sbindir ?= $(exec_prefix)/sbin
libdir ?= $(exec_prefix)/lib
includedir ?= $(PREFIX)/include
mandir ?= $(PREFIX)/share/man
BINDIR ?= $(bindir)
SBINDIR ?= $(sbindir)
LIBDIR ?= $(libdir)
INCLUDEDIR ?= $(includedir)
MANDIR ?= $(mandir)
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
INSTALL ?= install

MAN_PAGES := $(wildcard docs/man/*.[1-8])
# Unit files: not part of install (a package puts them where its systemd
# looks); make install-systemd writes them with ExecStart in $(SBINDIR).
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
UNITS := $(wildcard docs/systemd/*.service docs/systemd/*.socket)

# The paths install writes, relative to DESTDIR; uninstall removes these.
INSTALLED = $(LIBDIR)/libevring.a $(LIBDIR)/$(SHLIB) $(LIBDIR)/$(SONAME) \
	$(LIBDIR)/libevring.so $(INCLUDEDIR)/evring.h \
	$(PUBLIC_PROTO_HDRS:protocols/%=$(INCLUDEDIR)/evring/%) \
	$(PKGCONFIGDIR)/evring.pc $(SBINDIR)/evringd $(BINDIR)/evring-bench \
	$(foreach m,$(MAN_PAGES),$(MANDIR)/man$(subst .,,$(suffix $(m)))/$(notdir $(m)))

# evring.pc is written at install time: it names the directories of this
# install (never DESTDIR), and nothing is written in the build directory,
# so that installs to several DESTDIRs may run at once.
install: all
	$(call say,INSTALL,$(DESTDIR)$(PREFIX))
	$(Q)$(INSTALL) -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(PKGCONFIGDIR) \
		$(DESTDIR)$(INCLUDEDIR)/evring $(DESTDIR)$(SBINDIR) \
		$(DESTDIR)$(BINDIR)
	$(Q)$(INSTALL) -m 0644 $(BUILD)/libevring.a $(DESTDIR)$(LIBDIR)/
	$(Q)$(INSTALL) -m 0755 $(BUILD)/$(SHLIB) $(DESTDIR)$(LIBDIR)/
	$(Q)ln -sf $(SHLIB) $(DESTDIR)$(LIBDIR)/$(SONAME)
	$(Q)ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libevring.so
	$(Q)$(INSTALL) -m 0644 core/evring.h $(DESTDIR)$(INCLUDEDIR)/
	$(Q)$(INSTALL) -m 0644 $(PUBLIC_PROTO_HDRS) \
		$(DESTDIR)$(INCLUDEDIR)/evring/
	$(Q)sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' \
		-e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' -e 's|@VERSION@|$(VERSION)|g' \
		core/evring.pc.in >$(DESTDIR)$(PKGCONFIGDIR)/evring.pc
	$(Q)chmod 0644 $(DESTDIR)$(PKGCONFIGDIR)/evring.pc
	$(Q)$(INSTALL) -m 0755 $(BUILD)/evringd $(DESTDIR)$(SBINDIR)/
	$(Q)$(INSTALL) -m 0755 $(BUILD)/evring-bench $(DESTDIR)$(BINDIR)/
	$(Q)for m in $(MAN_PAGES); do \
		d=$(DESTDIR)$(MANDIR)/man$${m##*.}; \
		$(INSTALL) -d $$d && $(INSTALL) -m 0644 $$m $$d/ || exit 1; \
	done

uninstall: FORCE
	$(call say,RM,$(DESTDIR)$(PREFIX))
	$(Q)rm -f $(addprefix $(DESTDIR),$(INSTALLED)) \
		$(addprefix $(DESTDIR)$(SYSTEMDUNITDIR)/,$(notdir $(UNITS)))
	$(Q)rmdir $(DESTDIR)$(INCLUDEDIR)/evring 2>/dev/null || true

install-systemd: FORCE
	$(call say,INSTALL,$(DESTDIR)$(SYSTEMDUNITDIR))
	$(Q)$(INSTALL) -d $(DESTDIR)$(SYSTEMDUNITDIR)
	$(Q)for u in $(UNITS); do \
		t=$(DESTDIR)$(SYSTEMDUNITDIR)/$${u##*/}; \
		sed 's|/usr/sbin/evringd|$(SBINDIR)/evringd|g' $$u >$$t && \
		chmod 0644 $$t || exit 1; \
	done

FORCE:

# ---- the layer rule --------------------------------------------------------

# core/ (the library; its daemon in core/evringd/ is a program above it)
# never includes or calls anything of protocols/; protocols/, the daemon,
# examples/ and bench/ use the public headers only, never core/internal.h.
LIB_CORE_FILES = $(wildcard core/*.[ch] core/backend/*.[ch])
ABOVE_CORE_FILES = $(wildcard protocols/*.[ch] protocols/*.def \
	core/evringd/*.[ch] examples/*/*.[ch] bench/*.[ch] bench/*/*.[ch])
PROTO_SYMS = $(shell sed -n 's/^EVR_BUILTIN(\([a-z0-9_]*\)).*/evr_proto_\1/p' \
	protocols/builtin.def) evr_proto_find evr_proto_at \
	evr_proto_register evr_line_ evr_daytime_ evr_tcpmux_ evr__line_ \
	evr__http_

check-layers:
	$(Q)bad=$$(grep -nE '#[[:space:]]*include[[:space:]]*[<"]([^">]*/)?(protocols/|line|daytime|tcpmux|modules|http|builtin)' \
		$(LIB_CORE_FILES)); \
	if [ -n "$$bad" ]; then \
		echo "check-layers: core/ includes protocols/:"; \
		echo "$$bad"; exit 1; fi; \
	bad=$$(grep -nwE '($(subst $(eval) ,|,$(strip $(PROTO_SYMS))))[a-z0-9_]*' \
		$(LIB_CORE_FILES)); \
	if [ -n "$$bad" ]; then \
		echo "check-layers: core/ names a symbol of protocols/:"; \
		echo "$$bad"; exit 1; fi; \
	bad=$$(grep -nE '#[[:space:]]*include[[:space:]]*[<"]([^">]*/)?(internal|backend/backend|uring_compat)\.h' \
		$(ABOVE_CORE_FILES)); \
	if [ -n "$$bad" ]; then \
		echo "check-layers: above core/, only the public headers:"; \
		echo "$$bad"; exit 1; fi; \
	echo "check-layers: core/ stands alone; nothing above it includes core/internal.h"

# ---- benchmarks (never part of the tests) ---------------------------------

BENCH_PKGS := wrk nginx libuv1-dev libevent-dev gnuplot-nox python3 curl \
	util-linux
PEERS := $(BUILD)/peers/epoll_echo $(BUILD)/peers/epoll_daytime \
	$(BUILD)/peers/epoll_udp_echo $(BUILD)/peers/uv_echo \
	$(BUILD)/peers/event_echo $(BUILD)/peers/epoll_client

# The latency histogram's standard deviation takes a square root.
$(BUILD)/evring-bench: LIBS += -lm

$(BUILD)/.pkgs-bench: Makefile
	$(call pkgs,$(BENCH_PKGS),1)
	$(Q)mkdir -p $(@D) && touch $@

$(BUILD)/peers/uv_echo: bench/peers/uv_echo.c bench/peers/peer.h \
		$(BUILD)/.pkgs-bench
	$(call say,LD,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS_ALL) -o $@ $< $(LDFLAGS_ALL) -luv

$(BUILD)/peers/event_echo: bench/peers/event_echo.c bench/peers/peer.h \
		$(BUILD)/.pkgs-bench
	$(call say,LD,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS_ALL) -o $@ $< $(LDFLAGS_ALL) -levent

$(BUILD)/peers/%: bench/peers/%.c bench/peers/peer.h \
		$(BUILD)/.pkgs-bench
	$(call say,LD,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS_ALL) -o $@ $< $(LDFLAGS_ALL)

peers: $(PEERS)

$(BUILD)/mailbox-bench: $(BUILD)/obj/bench/tools/mailbox_bench.o \
		$(BUILD)/libevring.a
	$(call say,LD,$@)
	$(Q)$(CC) -o $@ $< $(BUILD)/libevring.a $(LDFLAGS_ALL) $(LIBS) \
		$(ALLOC_LIBS) -pthread

# Programs started while echo clients talk (bench/spawn.sh): spawn
# latency, and the echo round trips of the others.
$(BUILD)/bench/spawn-load: bench/tools/spawn_load.c bench/hist.c \
		| $(BUILD)/.pkgs-build
	$(call say,LD,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS_ALL) -o $@ $^ $(LDFLAGS_ALL) -pthread -lm

bench-spawn: all $(BUILD)/bench/spawn-load
	bench/spawn.sh $(BUILD)

# What io_uring itself reaches here: servers and a client with every
# io_uring technique and nothing else (bench/floor/uring_floor.c), against
# evringd, evring-bench and the peers; about 6 minutes, writes
# $(BUILD)/bench/floor/floor.md only.
$(BUILD)/bench/uring-floor: bench/floor/uring_floor.c bench/peers/peer.h \
		| $(BUILD)/.pkgs-build
	$(call say,LD,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS_ALL) -o $@ $< $(LDFLAGS_ALL) -luring

bench-floor: all $(PEERS) $(BUILD)/bench/uring-floor
	bench/floor.sh $(BUILD)

# The full matrix, 5 interleaved rounds (about 30 minutes; REPEAT=N for
# another count): the committed results, bench/results/latest.md and its
# PNG plots. A one-minute subset in one round: $(BUILD)/bench/quick/, never
# the committed results.
bench: all $(PEERS) $(BUILD)/mailbox-bench
	bench/run.sh full $(BUILD)

bench-quick: all $(PEERS)
	bench/run.sh quick $(BUILD)

# One loop against two (evringd --threads 1 and 2), the mailbox's wake-ups
# (MSG_RING against an eventfd) and the system calls of a steady load
# (strace -f -c): about 6 minutes; its section of bench/results/latest.md.
bench-scaling: all $(BUILD)/mailbox-bench
	bench/scaling.sh $(BUILD)

# ---- run -----------------------------------------------------------------

# Standard ports as root, else shifted by 10000 (10007, 10013); on the
# loopback addresses only (::1 where the kernel has IPv6): a quick start
# serves no other machine. make run RUN_ARGS='-s echo -s daytime' serves
# every interface.
RUN_ARGS ?= -s echo -s daytime -b 127.0.0.1 \
	$(if $(wildcard /proc/net/if_inet6),-b ::1) \
	$(if $(filter 0,$(shell id -u)),,--port-offset 10000)

run:
	$(Q)$(MAKE) --no-print-directory deps
	$(Q)$(MAKE) --no-print-directory $(BUILD)/evringd
	$(BUILD)/evringd $(RUN_ARGS)

# ---- examples ------------------------------------------------------------

$(BUILD)/examples/%: examples/%/*.c $(BUILD)/libevring.a
	$(call say,LD,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS_ALL) -o $@ $(filter %.c,$^) $(BUILD)/libevring.a \
		$(LDFLAGS_ALL) $(LIBS) $(ALLOC_LIBS)

# A module: linked against nothing, its evr_ calls resolved in evringd.
$(BUILD)/examples/%.so: examples/%/*.c | $(BUILD)/.pkgs-build $(PUBLIC_LINKS)
	$(call say,LD,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS_ALL) -shared -o $@ $(filter %.c,$^) $(LDFLAGS_ALL)

examples: $(EXAMPLE_BINS)

# ---- tests ---------------------------------------------------------------

$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(TEST_HELPER_OBJS) \
		$(BUILD)/libevring.a
	$(call say,LD,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) -o $@ $< $(TEST_HELPER_OBJS) $(BUILD)/libevring.a \
		$(LDFLAGS_ALL) -lcriterion $(LIBS) -pthread

$(BUILD)/tests/seccomp-launch: tests/tools/seccomp_launch.c | $(BUILD)/.pkgs-build
	$(call say,LD,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS_ALL) -o $@ $< $(LDFLAGS_ALL)

$(BUILD)/tests/listen-fds: tests/tools/listen_fds.c | $(BUILD)/.pkgs-build
	$(call say,LD,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS_ALL) -o $@ $< $(LDFLAGS_ALL)

$(BUILD)/tests/mailbox-stress: $(BUILD)/obj/tests/tools/mailbox_stress.o \
		$(BUILD)/libevring.a
	$(call say,LD,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) -o $@ $< $(BUILD)/libevring.a $(LDFLAGS_ALL) $(LIBS) -pthread

$(BUILD)/tests/child-report: tests/tools/child_report.c | $(BUILD)/.pkgs-build
	$(call say,LD,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS_ALL) -o $@ $< $(LDFLAGS_ALL)

# Modules evringd must refuse (tests/tools/bad_module.c says which).
$(BUILD)/tests/module-bad-abi.so: BAD_MODULE := -DBAD_ABI
$(BUILD)/tests/module-no-symbol.so: BAD_MODULE := -DNO_SYMBOL
$(BUILD)/tests/module-missing-call.so: BAD_MODULE := -DMISSING_CALL
$(BUILD)/tests/module-%.so: tests/tools/bad_module.c | $(BUILD)/.pkgs-build \
		$(PUBLIC_LINKS)
	$(call say,LD,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS_ALL) $(BAD_MODULE) -shared -o $@ $< $(LDFLAGS_ALL)

TEST_JOBS ?= 2

test-build: all examples $(TEST_BINS) $(TEST_TOOLS)

# Every test program runs even when one fails; tests/run.sh sums them up.
test:
	$(Q)$(MAKE) --no-print-directory deps
	$(Q)$(MAKE) --no-print-directory test-build
	$(Q)EVRINGD=$(abspath $(BUILD)/evringd) EVRING_BUILD=$(abspath $(BUILD)) \
		tests/run.sh $(TEST_JOBS) $(TEST_BINS)

# ---- fuzzing -------------------------------------------------------------

# libFuzzer targets, tests/fuzz/fuzz_*.c, each linked with the whole
# library. Targets and library objects are built with clang under
# ASan+UBSan and the fuzzer's coverage, into $(BUILD)/fuzz/ (the normal
# build is not touched). Each target runs for FUZZ_SECONDS on a scratch
# copy of its seeds, tests/fuzz/corpus_NAME/, in $(BUILD)/fuzz/work/, so
# what it learns does not litter the repository. Any crash, leak, UB or
# timeout fails the make; the input is kept in $(BUILD)/fuzz/artifacts/ and
# the log in $(BUILD)/fuzz/NAME.log. Replay one with: $(BUILD)/fuzz/NAME
# INPUT.
#
#   make fuzz            every target for FUZZ_SECONDS (60) seconds
#   make fuzz-quick      every target for 10 seconds (CI)

FUZZ_SECONDS ?= 60
FUZZ_CC ?= clang
FUZZ_PKGS := clang libclang-rt-14-dev
FUZZ_SAN := -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
	-fno-omit-frame-pointer
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -O1 -g $(WARN) -MMD -MP $(INC) \
	$(FUZZ_SAN)
# Inputs up to 16 KiB: past the HTTP head limit (8192) and the line limit.
FUZZ_OPTS ?= -max_len=16384 -timeout=30 -print_final_stats=1
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS := $(FUZZ_SRCS:tests/fuzz/%.c=$(BUILD)/fuzz/%)
FUZZ_LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/fuzz/obj/%.o)

.PHONY: fuzz fuzz-quick
# Built through pattern rules only: keep them, or make deletes them.
.SECONDARY: $(FUZZ_LIB_OBJS) \
	$(FUZZ_SRCS:tests/fuzz/%.c=$(BUILD)/fuzz/obj/tests/fuzz/%.o)

$(BUILD)/.pkgs-fuzz: Makefile
	$(call pkgs,$(FUZZ_PKGS),1)
	$(Q)mkdir -p $(@D) && touch $@

$(BUILD)/fuzz/obj/%.o: %.c | $(BUILD)/.pkgs-build $(BUILD)/.pkgs-fuzz \
		$(PUBLIC_LINKS)
	$(call say,FUZZCC,$<)
	$(Q)mkdir -p $(@D)
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -c $< -o $@

$(BUILD)/fuzz/fuzz_%: $(BUILD)/fuzz/obj/tests/fuzz/fuzz_%.o $(FUZZ_LIB_OBJS)
	$(call say,LD,$@)
	$(Q)$(FUZZ_CC) $(FUZZ_SAN) -o $@ $^ $(LIBS)

# evringd's inetd.conf parser is pure and stands alone: its target links
# it too.
$(BUILD)/fuzz/fuzz_config: $(BUILD)/fuzz/obj/core/evringd/config.o

# $(1): seconds per target. Every target runs; the summary names the ones
# that failed. UBSan prints the stack of what it reports.
fuzz_run = $(Q)failed=""; \
	for b in $(FUZZ_BINS); do \
		name=$$(basename $$b); \
		work=$(BUILD)/fuzz/work/$$name; \
		log=$(BUILD)/fuzz/$$name.log; \
		rm -rf $$work; mkdir -p $$work $(BUILD)/fuzz/artifacts; \
		seeds=tests/fuzz/corpus_$${name\#fuzz_}; \
		if [ -d $$seeds ]; then cp -R $$seeds/. $$work/ || exit 1; fi; \
		echo "== $$name: $(1) s (log: $$log)"; \
		if UBSAN_OPTIONS=print_stacktrace=1 $$b $(FUZZ_OPTS) \
			-max_total_time=$(1) \
			-artifact_prefix=$(BUILD)/fuzz/artifacts/$$name- \
			$$work >$$log 2>&1; then \
			grep -E '^\#[0-9]+[[:space:]]+DONE|^stat::(number_of|average)' \
				$$log; \
		else \
			tail -n 40 $$log; \
			failed="$$failed $$name"; \
		fi; \
	done; \
	if [ -n "$$failed" ]; then \
		echo "FUZZ FAILED:$$failed (inputs in $(BUILD)/fuzz/artifacts/)"; \
		exit 1; \
	fi; \
	echo "fuzz: no target found a problem in $(1) s"

fuzz: $(FUZZ_BINS)
	$(call fuzz_run,$(FUZZ_SECONDS))

fuzz-quick: $(FUZZ_BINS)
	$(call fuzz_run,10)

# ---- checkers ------------------------------------------------------------

# The whole suite under ASan and UBSan (objects in build/san), then the
# threaded tests under ThreadSanitizer.
check:
	$(MAKE) SANITIZE=address,undefined test
	$(MAKE) check-tsan

# The programs that run threads (evringd's loop groups, the chat example,
# the mailbox stress) built with ThreadSanitizer in build/tsan, driven by
# the test programs of the normal build: Criterion itself cannot run under
# TSan (its inheritable arena collides with TSan's memory layout). A race
# report stops the program with exit status 66, which fails the test that
# started it.
TSAN_BUILD := build/tsan
TSAN_TESTS := test_group test_mailbox test_chat test_echo test_services \
	test_reload test_spawn test_tcpmux
TSAN_ENV := EVRINGD=$(abspath $(TSAN_BUILD)/evringd) \
	EVRING_BUILD=$(abspath $(TSAN_BUILD)) EVRING_TSAN=1 \
	TSAN_OPTIONS="halt_on_error=1 exitcode=66 second_deadlock_stack=1"

check-tsan:
	$(Q)$(MAKE) --no-print-directory deps
	$(Q)$(MAKE) --no-print-directory test-build
	$(Q)$(MAKE) --no-print-directory SANITIZE=thread BUILD=$(TSAN_BUILD) \
		$(TSAN_BUILD)/evringd examples \
		$(TEST_TOOLS:$(BUILD)/%=$(TSAN_BUILD)/%)
	$(Q)$(TSAN_ENV) tests/run.sh 1 $(TSAN_TESTS:%=$(BUILD)/tests/%)

# The suite under valgrind's memcheck, any error or definite leak failing
# the run: test programs run under valgrind, and so does every evringd they
# start (EVRING_WRAP). valgrind cannot follow io_uring (it does not model
# the rings the kernel writes, and keeps signals blocked inside
# io_uring_enter), so the io_uring suites are left to `make check`.
VG_BUILD := build/vg
# Tests of timing or CPU use (valgrind slows the code 20-50x), of volume
# (a thousand programs started) and of privilege changes are left out,
# and so are the suites that run other programs (install: make and cc;
# man: mandoc; units: systemd-analyze; haproxy, whose health checks run
# on a clock), and the syslog test, whose evringd runs in a mount
# namespace with a /dev of its own; they run in `make test` and `make
# check`.
VG_SKIP := !(privileged_*|emfile_*|dribbling_*|syslog_*|a_thousand_*)
VALGRIND := valgrind -q --error-exitcode=99 --leak-check=full \
	--errors-for-leak-kinds=definite
valgrind:
	$(Q)command -v valgrind >/dev/null || { \
		echo "valgrind: run: apt-get install -y valgrind"; exit 1; }
	$(MAKE) MIMALLOC=0 BUILD=$(VG_BUILD) all examples \
		$(TEST_BINS:$(BUILD)/%=$(VG_BUILD)/%) \
		$(TEST_TOOLS:$(BUILD)/%=$(VG_BUILD)/%)
	$(Q)failed=""; \
	for t in $(TEST_BINS:$(BUILD)/%=$(VG_BUILD)/%); do \
		echo "== valgrind $$t"; \
		EVRINGD=$(abspath $(VG_BUILD)/evringd) \
		EVRING_BUILD=$(abspath $(VG_BUILD)) \
		EVRING_WRAP="$(VALGRIND)" \
			$(VALGRIND) --trace-children=yes \
			--trace-children-skip='*valgrind*' $$t --short-filename \
			--filter '!(*_io_uring|backend_*|install|man|units|haproxy_*)/$(VG_SKIP)' \
			|| failed="$$failed $$(basename $$t)"; \
	done; \
	if [ -n "$$failed" ]; then echo "FAILED:$$failed"; exit 1; fi; \
	echo "valgrind: no error, no definite leak"

# A mixed load against evringd for SOAK_SECONDS (default 10 minutes):
# memory, descriptors and pooled buffers must be as flat at the end as
# at the start. Not part of CI.
SOAK_SECONDS ?= 600
soak: all
	tests/soak.sh $(BUILD) $(SOAK_SECONDS)

# ---- Debian's build flags ------------------------------------------------

# A Debian package builds with dpkg-buildflags (hardening=+all, as hardened
# daemons do). Build with them into build/dpkg and check that they took
# effect: -D_FORTIFY_SOURCE from CPPFLAGS (glibc's checked __*_chk calls),
# the stack protector from CFLAGS, RELRO and BIND_NOW from LDFLAGS.
DPKG_BUILD := build/dpkg
dpkg_flags = $$(DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags --get $(1))

check-buildflags:
	$(Q)command -v dpkg-buildflags >/dev/null && command -v readelf \
		>/dev/null || { echo "check-buildflags: run: apt-get" \
		"install -y dpkg-dev binutils"; exit 1; }
	$(Q)$(MAKE) --no-print-directory BUILD=$(DPKG_BUILD) \
		CPPFLAGS="$(call dpkg_flags,CPPFLAGS)" \
		CFLAGS="$(call dpkg_flags,CFLAGS)" \
		LDFLAGS="$(call dpkg_flags,LDFLAGS)" all
	$(Q)for f in $(DPKG_BUILD)/evringd $(DPKG_BUILD)/evring-bench \
		$(DPKG_BUILD)/$(SHLIB); do \
		chk=$$(nm -D --undefined-only $$f | grep -c '__[a-z_]*_chk@'); \
		[ "$$chk" -gt 0 ] || { echo "$$f: no fortified call" \
			"(CPPFLAGS lost?)"; exit 1; }; \
		nm -D --undefined-only $$f | grep -q __stack_chk_fail || { \
			echo "$$f: no stack protector (CFLAGS lost?)"; exit 1; }; \
		readelf -lW $$f | grep -q GNU_RELRO && readelf -dW $$f | \
			grep -q BIND_NOW || { echo "$$f: no RELRO or" \
			"BIND_NOW (LDFLAGS lost?)"; exit 1; }; \
		echo "check-buildflags: $$f: $$chk fortified functions," \
			"stack protector, RELRO, BIND_NOW"; \
	done

# ---- housekeeping --------------------------------------------------------

FORMAT_SRCS = $(wildcard core/*.[ch] core/*/*.[ch] protocols/*.[ch] \
	tests/*.[ch] tests/*/*.[ch] examples/*/*.[ch] bench/*.[ch] \
	bench/peers/*.[ch] bench/tools/*.[ch] bench/floor/*.[ch])

format:
	clang-format -i $(FORMAT_SRCS)

check-format:
	clang-format --dry-run -Werror $(FORMAT_SRCS)

clean:
	rm -rf build

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# hitld — GNU make build. `make help` lists the targets.
#
# Objects go to $(B) (build/ by default, build/asan for the sanitizer
# variant), so the normal and the sanitizer build can sit side by side.

VERSION     := 0.1.0
PREFIX      ?= /usr/local
BINDIR      ?= $(PREFIX)/bin
SBINDIR     ?= $(PREFIX)/sbin
LIBDIR      ?= $(PREFIX)/lib
INCLUDEDIR  ?= $(PREFIX)/include
MANDIR      ?= $(PREFIX)/share/man
DATADIR     ?= $(PREFIX)/share
SYSCONFDIR  ?= /etc
UNITDIR     ?= /lib/systemd/system
SYSUSERSDIR ?= /usr/lib/sysusers.d
TMPFILESDIR ?= /usr/lib/tmpfiles.d
CATALOGDIR  ?= /usr/lib/systemd/catalog
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
BASHCOMPDIR ?= $(DATADIR)/bash-completion/completions
DESTDIR     ?=

CC          ?= cc
PKG_CONFIG  ?= pkg-config
PYTHON      ?= python3
SAN         ?=
B           ?= build

PKGS := libsystemd libcurl json-c libconfig libmicrohttpd
TEST_PKGS := cmocka

# Hardening: fortify needs optimisation, so -O2 unless the caller says
# otherwise; the sanitizer variant uses -O1 and no fortify (they clash).
WARN      := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
             -Wformat=2 -Wno-unused-parameter -Wvla -Wdate-time
ifeq ($(SAN),)
OPT       ?= -O2 -g
HARDEN    := -D_FORTIFY_SOURCE=2 -fstack-protector-strong -fstack-clash-protection \
             -fcf-protection -fPIE
HARDEN_LD := -pie -Wl,-z,relro -Wl,-z,now -Wl,-z,noexecstack
else
OPT       ?= -O1 -g -fno-omit-frame-pointer
HARDEN    := -fPIE -fsanitize=address,undefined -fno-sanitize-recover=all
HARDEN_LD := -pie -fsanitize=address,undefined -Wl,-z,relro -Wl,-z,now
endif

PKG_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null)
TEST_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(TEST_PKGS) 2>/dev/null)
TEST_LIBS   := $(shell $(PKG_CONFIG) --libs $(TEST_PKGS) 2>/dev/null)

CPPFLAGS  += -D_GNU_SOURCE -DHITLD_VERSION='"$(VERSION)"' -iquote daemon -iquote client
CFLAGS    += -std=c17 $(OPT) $(WARN) $(HARDEN) $(PKG_CFLAGS) -MMD -MP
LDFLAGS   += $(HARDEN_LD)

DAEMON_SRC  := $(filter-out daemon/main.c,$(wildcard daemon/*.c))
DAEMON_OBJ  := $(DAEMON_SRC:%.c=$(B)/%.o)
CLIENT_LIB_SRC := client/hitlclient.c client/hitlclient_calls.c
CLIENT_LIB_OBJ := $(CLIENT_LIB_SRC:%.c=$(B)/%.o)
CLIENT_PIC_OBJ := $(CLIENT_LIB_SRC:%.c=$(B)/pic/%.o)
UNIT_SRC    := $(wildcard tests/unit/test_*.c)
UNIT_BIN    := $(UNIT_SRC:%.c=$(B)/%)
UNIT_HELPER_SRC := $(filter-out $(UNIT_SRC),$(wildcard tests/unit/*.c))
UNIT_HELPER_OBJ := $(UNIT_HELPER_SRC:%.c=$(B)/%.o)

# $(call relpath,TO,FROM): TO as a path relative to the directory FROM.
relpath = $(shell realpath -m --relative-to='$(2)' '$(1)')

PROGRAMS := $(B)/hitld $(if $(wildcard client/hitlctl.c),$(B)/hitlctl)
LIBS_OUT := $(if $(wildcard $(CLIENT_LIB_SRC)),$(B)/libhitlclient.a $(B)/libhitlclient.so)
# The functions hitlclient.h declares: `man hitl_client_connect` opens hitlclient(3).
CLIENT_FUNCS := $(shell grep -o '^[A-Za-z][A-Za-z0-9_ ]*[ *]hitl_[a-z0-9_]*' client/hitlclient.h | grep -o 'hitl_[a-z0-9_]*$$')

.PHONY: all help deps mcp-sdk check check-unit check-emulator check-integration \
        check-asan demo programs install uninstall clean crash-long deb lintian check-deb
.DEFAULT_GOAL := all
# Keep the objects of chained rules (unit tests) so re-runs do not rebuild them.
.SECONDARY:

all: $(PROGRAMS) $(LIBS_OUT) $(UNIT_BIN)

help:
	@echo "make            build hitld, hitlctl, the client library and unit tests"
	@echo "make demo       install missing deps, build, run a request end to end"
	@echo "make check      install missing deps, build (-Werror), run every test"
	@echo "make mcp-sdk    npm ci the MCP client SDK test_mcp.py uses into build/mcp-sdk"
	@echo "make install    install (honours DESTDIR, PREFIX, LIBDIR, ...)"
	@echo "make deb        Debian packages into $(DEB_OUT) (dpkg-buildpackage)"
	@echo "make check-deb  build, lintian, install, upgrade, remove, purge the packages"
	@echo "make crash-long the long kill -9 campaign (500 kills)"
	@echo "make fuzz       run each libFuzzer target for FUZZ_SECONDS (300)"
	@echo "make bench      run the benchmarks, write bench/REPORT.md"
	@echo "make clean      remove build/"

deps:
	@./scripts/install-deps

# The MCP test's client SDK (npm, pinned in tests/mcp/), for the tests only.
MCP_SDK_DIR ?= build/mcp-sdk
mcp-sdk:
	@./scripts/install-deps --mcp-sdk $(MCP_SDK_DIR)

$(B)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(B)/pic/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -fPIC -c -o $@ $<

$(B)/tests/unit/%.o: tests/unit/%.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(TEST_CFLAGS) -c -o $@ $<

$(B)/libhitld.a: $(DAEMON_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(B)/hitld: $(B)/daemon/main.o $(B)/libhitld.a
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(B)/libhitlclient.a: $(CLIENT_LIB_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(B)/libhitlclient.so: $(CLIENT_PIC_OBJ)
	$(CC) -shared -Wl,-soname,libhitlclient.so.0 $(filter-out -pie,$(LDFLAGS)) -o $@ $^ $(shell $(PKG_CONFIG) --libs json-c)

# hitlctl: main and the verb table in client/hitlctl.c, its layers in
# client/ctl_*.c, and the MCP server (client/mcp*.c), which is part of it.
CTL_OBJ := $(patsubst %.c,$(B)/%.o,$(wildcard client/ctl_*.c))
MCP_OBJ := $(patsubst %.c,$(B)/%.o,$(wildcard client/mcp*.c))

$(B)/hitlctl: $(B)/client/hitlctl.o $(CTL_OBJ) $(MCP_OBJ) $(B)/libhitlclient.a
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(B)/tests/unit/test_mcp_tools: $(B)/client/mcp_tools.o
# hitlctl's request.submit params (client/ctl_params.c), linked before the library they call;
# json_object_new_string() wrapped so the test can make it fail.
$(B)/tests/unit/test_ctl_params: $(B)/tests/unit/test_ctl_params.o $(B)/client/ctl_params.o $(B)/client/ctl_input.o \
                                 $(B)/client/ctl_output.o $(B)/libhitlclient.a
	$(CC) $(LDFLAGS) -Wl,--wrap=json_object_new_string -o $@ $^ $(TEST_LIBS) $(PKG_LIBS)

# hitlctl's output: the terminal filter, tables, shorten() (client/ctl_output.c).
$(B)/tests/unit/test_ctl_output: $(B)/tests/unit/test_ctl_output.o $(B)/client/ctl_output.o $(B)/libhitlclient.a
	$(CC) $(LDFLAGS) -o $@ $^ $(TEST_LIBS) $(PKG_LIBS)

$(B)/tests/unit/test_%: $(B)/tests/unit/test_%.o $(UNIT_HELPER_OBJ) $(B)/libhitld.a $(if $(wildcard $(CLIENT_LIB_SRC)),$(B)/libhitlclient.a)
	$(CC) $(LDFLAGS) -o $@ $^ $(TEST_LIBS) $(PKG_LIBS)

# The tests. Each runner prints its own results; tests/run-suite adds them
# up and ends with one "N passed, N failed" line.
check: deps mcp-sdk
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory SAN=1 B=build/asan all
	@./tests/run-suite --build $(B) --asan-build build/asan

check-unit: all
	@./tests/run-suite --build $(B) --only unit

check-emulator:
	@./tests/run-suite --build $(B) --only emulator

check-integration: all mcp-sdk
	@./tests/run-suite --build $(B) --only integration

check-asan:
	@$(MAKE) --no-print-directory SAN=1 B=build/asan all
	@./tests/run-suite --build build/asan --only unit,integration

# The long crash campaign (the short one runs in make check): ~8 minutes.
crash-long: all
	@$(PYTHON) tests/crash/campaign.py --build $(B) --kills 500 --clients 8

demo: deps
	@$(MAKE) --no-print-directory all
	@./scripts/demo --build $(B)

# What gets installed; unlike all, no unit tests (a package build needs no cmocka).
programs: $(PROGRAMS) $(LIBS_OUT)

install: programs
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(BINDIR)
	install -m 0755 $(B)/hitld $(DESTDIR)$(SBINDIR)/hitld
	$(if $(wildcard $(B)/hitlctl),install -m 0755 $(B)/hitlctl $(DESTDIR)$(BINDIR)/hitlctl)
	install -d $(DESTDIR)$(SYSCONFDIR)/hitld
	@# An administrator's configuration is never overwritten.
	test -e $(DESTDIR)$(SYSCONFDIR)/hitld/hitld.conf || \
		install -m 0644 etc/hitld.conf $(DESTDIR)$(SYSCONFDIR)/hitld/hitld.conf
	install -d $(DESTDIR)$(UNITDIR)
	for f in $(wildcard systemd/*.service systemd/*.socket); do \
		sed -e 's|/usr/sbin/hitld|$(SBINDIR)/hitld|g' $$f > $(DESTDIR)$(UNITDIR)/$$(basename $$f) && \
		chmod 0644 $(DESTDIR)$(UNITDIR)/$$(basename $$f) || exit 1; done
	$(if $(wildcard systemd/hitld.sysusers),install -D -m 0644 systemd/hitld.sysusers $(DESTDIR)$(SYSUSERSDIR)/hitld.conf)
	$(if $(wildcard systemd/hitld.tmpfiles),install -D -m 0644 systemd/hitld.tmpfiles $(DESTDIR)$(TMPFILESDIR)/hitld.conf)
	$(if $(wildcard systemd/hitld.catalog),install -D -m 0644 systemd/hitld.catalog $(DESTDIR)$(CATALOGDIR)/hitld.catalog)
	for f in $(wildcard docs/*.[1-8]); do \
		s=$${f##*.}; install -D -m 0644 $$f $(DESTDIR)$(MANDIR)/man$$s/$$(basename $$f); done
	$(if $(LIBS_OUT),for f in $(CLIENT_FUNCS); do ln -sf hitlclient.3 $(DESTDIR)$(MANDIR)/man3/$$f.3 || exit 1; done)
	$(if $(LIBS_OUT),install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR))
	$(if $(LIBS_OUT),install -m 0644 $(B)/libhitlclient.a $(DESTDIR)$(LIBDIR)/)
	$(if $(LIBS_OUT),install -m 0755 $(B)/libhitlclient.so $(DESTDIR)$(LIBDIR)/libhitlclient.so.0)
	$(if $(LIBS_OUT),ln -sf libhitlclient.so.0 $(DESTDIR)$(LIBDIR)/libhitlclient.so)
	$(if $(LIBS_OUT),install -m 0644 client/hitlclient.h client/hitlerrors.h $(DESTDIR)$(INCLUDEDIR)/)
	$(if $(LIBS_OUT),install -d $(DESTDIR)$(PKGCONFIGDIR))
	$(if $(LIBS_OUT),sed -e 's|@PREFIX_REL@|$(call relpath,$(PREFIX),$(PKGCONFIGDIR))|' \
		-e 's|@LIBDIR_REL@|$(call relpath,$(LIBDIR),$(PKGCONFIGDIR))|' \
		-e 's|@INCLUDEDIR_REL@|$(call relpath,$(INCLUDEDIR),$(PKGCONFIGDIR))|' \
		-e 's|@VERSION@|$(VERSION)|' client/hitlclient.pc.in > $(DESTDIR)$(PKGCONFIGDIR)/hitlclient.pc)
	install -D -m 0644 contrib/bash-completion/hitlctl $(DESTDIR)$(BASHCOMPDIR)/hitlctl
	install -D -m 0644 docs/PROTOCOL.md $(DESTDIR)$(DATADIR)/doc/hitld/PROTOCOL.md

uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/hitld $(DESTDIR)$(BINDIR)/hitlctl
	rm -f $(addprefix $(DESTDIR)$(UNITDIR)/,$(notdir $(wildcard systemd/*.service systemd/*.socket)))
	rm -f $(DESTDIR)$(SYSUSERSDIR)/hitld.conf $(DESTDIR)$(TMPFILESDIR)/hitld.conf $(DESTDIR)$(CATALOGDIR)/hitld.catalog
	rm -f $(addprefix $(DESTDIR)$(MANDIR)/man1/,hitlctl.1) $(addprefix $(DESTDIR)$(MANDIR)/man3/,hitlclient.3 $(CLIENT_FUNCS:=.3)) $(addprefix $(DESTDIR)$(MANDIR)/man5/,hitld.conf.5) $(addprefix $(DESTDIR)$(MANDIR)/man8/,hitld.8)
	rm -f $(DESTDIR)$(LIBDIR)/libhitlclient.a $(DESTDIR)$(LIBDIR)/libhitlclient.so $(DESTDIR)$(LIBDIR)/libhitlclient.so.0
	rm -f $(DESTDIR)$(INCLUDEDIR)/hitlclient.h $(DESTDIR)$(INCLUDEDIR)/hitlerrors.h $(DESTDIR)$(PKGCONFIGDIR)/hitlclient.pc
	rm -f $(DESTDIR)$(BASHCOMPDIR)/hitlctl $(DESTDIR)$(DATADIR)/doc/hitld/PROTOCOL.md
	@echo "Left in place: $(SYSCONFDIR)/hitld/ (configuration) and /var/lib/hitld (the outbox)."

# Debian packages. dpkg-buildpackage writes its results next to the source
# tree, so the tree is copied to $(DEB_OUT)/src (without build/ and .git) and
# the .deb, .buildinfo and .changes files land in $(DEB_OUT). The tests are
# not run inside the package build (nocheck): make check runs them.
DEB_OUT ?= $(B)/deb
deb: deps
	rm -rf $(DEB_OUT) && mkdir -p $(DEB_OUT)/src
	tar -cf - --exclude=./build --exclude=./.git --exclude='./$(B)' . | tar -xf - -C $(DEB_OUT)/src
	cd $(DEB_OUT)/src && DEB_BUILD_OPTIONS="nocheck parallel=2 $(DEB_BUILD_OPTIONS)" \
		dpkg-buildpackage -us -uc -b
	@ls $(DEB_OUT)/*.deb

lintian:
	lintian --fail-on error,warning --info $(DEB_OUT)/*.changes

# Builds, checks with lintian, installs, upgrades, removes and purges the
# packages on this machine (root; restores it as it was): tests/deb/run-check,
# which make check runs too.
check-deb: deps
	@./tests/run-suite --build $(B) --only deb

clean:
	rm -rf build

-include tests/fuzz/fuzz.mk
-include bench/bench.mk
# (Not the package build's copy under $(DEB_OUT), whose tree has *.d directories.)
-include $(shell find $(B) -path '$(DEB_OUT)' -prune -o -name '*.d' -type f -print 2>/dev/null)

# tests/fuzz/fuzz.mk — libFuzzer targets (included by the Makefile).
#
#   make fuzz-build    build build/fuzz/fuzz_* (clang, -fsanitize=fuzzer,address,undefined)
#   make fuzz          run every target for FUZZ_SECONDS (default 300) each
#   make fuzz-check    run every target for 30 s each (what `make check` does via run-check)
#
# The daemon's sources are compiled again here with clang and coverage
# instrumentation (-fsanitize=fuzzer-no-link) into build/fuzz/, never mixed
# with the gcc objects of build/ or build/asan/.

FUZZ_CC      ?= clang
FUZZ_B       := build/fuzz
FUZZ_SECONDS ?= 300
FUZZ_TARGETS := fuzz_rpc fuzz_apiparse fuzz_record fuzz_config fuzz_validate fuzz_seglog fuzz_callback

FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_CFLAGS  := -std=c17 -O1 -g -fno-omit-frame-pointer $(WARN) $(FUZZ_SAN) $(PKG_CFLAGS) -MMD -MP
FUZZ_CPPFLAGS := -D_GNU_SOURCE -DHITLD_VERSION='"$(VERSION)"' -DHITLD_FUZZING=1 -iquote daemon -iquote client

FUZZ_DAEMON_SRC := $(filter-out daemon/main.c,$(wildcard daemon/*.c))
FUZZ_DAEMON_OBJ := $(FUZZ_DAEMON_SRC:%.c=$(FUZZ_B)/%.o)
FUZZ_HELPER_OBJ := $(FUZZ_B)/tests/fuzz/fuzz_common.o
FUZZ_BIN        := $(FUZZ_TARGETS:%=$(FUZZ_B)/%)

.PHONY: fuzz-build fuzz fuzz-check

fuzz-build: $(FUZZ_BIN)

$(FUZZ_B)/daemon/%.o: daemon/%.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CPPFLAGS) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_B)/tests/fuzz/%.o: tests/fuzz/%.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CPPFLAGS) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_B)/libhitld.a: $(FUZZ_DAEMON_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(FUZZ_B)/fuzz_%: $(FUZZ_B)/tests/fuzz/fuzz_%.o $(FUZZ_HELPER_OBJ) $(FUZZ_B)/libhitld.a
	$(FUZZ_CC) -fsanitize=fuzzer $(FUZZ_SAN) -o $@ $^ $(PKG_LIBS)

fuzz: fuzz-build
	@FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_NO_BUILD=1 ./tests/fuzz/run-check

fuzz-check: fuzz-build
	@FUZZ_SECONDS=30 FUZZ_NO_BUILD=1 ./tests/fuzz/run-check

-include $(wildcard $(FUZZ_B)/daemon/*.d $(FUZZ_B)/tests/fuzz/*.d)

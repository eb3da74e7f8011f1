# bench/bench.mk — the benchmark tools and `make bench` (bench/README.md).
# Included by the top-level Makefile; everything lands in $(B)/bench/.

BENCH_TOOLS := $(B)/bench/loadgen $(B)/bench/echo_server $(B)/bench/fsync_loop

.PHONY: bench bench-tools
bench-tools: $(BENCH_TOOLS)

bench: all $(BENCH_TOOLS)
	@./bench/run --build $(B)

$(B)/bench/loadgen: $(B)/bench/loadgen.o
	$(CC) $(LDFLAGS) -pthread -o $@ $^

$(B)/bench/echo_server: $(B)/bench/echo_server.o
	$(CC) $(LDFLAGS) -pthread -o $@ $^

$(B)/bench/%: $(B)/bench/%.o
	$(CC) $(LDFLAGS) -o $@ $^

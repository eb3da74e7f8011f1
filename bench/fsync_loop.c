/* fsync_loop.c — the baseline for the durable-submit benchmark: what the file
 * system allows for one durable file at a time, done the way STYLE.md says a
 * file is made durable (write tmp, fsync, rename, fsync the directory), in a
 * loop. Prints one JSON line. Benchmark tool only. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"

#define FSYNC_SAMPLES_MAX 1000000

static uint64_t now_ns(void) {
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t) ts.tv_sec * 1000000000ULL + (uint64_t) ts.tv_nsec;
}

static int durable_write(int dirfd, const char *name, const char *data, size_t len) {
	_cleanup_(closep) int fd = -EBADF;
	char tmp[128];

	snprintf(tmp, sizeof tmp, "%s.tmp", name);
	fd = openat(dirfd, tmp, O_CREAT | O_EXCL | O_CLOEXEC | O_WRONLY, 0600);
	if (fd < 0)
		return -errno;
	if (write(fd, data, len) != (ssize_t) len || fsync(fd) < 0) {
		int k = errno ? -errno : -EIO;

		unlinkat(dirfd, tmp, 0);
		return k;
	}
	if (renameat(dirfd, tmp, dirfd, name) < 0 || fsync(dirfd) < 0)
		return -errno;
	return 0;
}

static int cmp_u64(const void *a, const void *b) {
	uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
	_cleanup_(closep) int dirfd = -EBADF;
	_cleanup_(freep) char *data = NULL;
	_cleanup_(freep) uint64_t *samples = NULL;
	double duration;
	size_t size, n = 0;
	uint64_t t0, end;

	if (argc != 4) {
		fprintf(stderr, "usage: fsync_loop DIR BYTES SECONDS\n");
		return 2;
	}
	size = strtoul(argv[2], NULL, 10);
	duration = strtod(argv[3], NULL);
	dirfd = open(argv[1], O_DIRECTORY | O_CLOEXEC | O_RDONLY);
	data = malloc(size ? size : 1);
	samples = calloc(FSYNC_SAMPLES_MAX, sizeof(uint64_t));
	if (dirfd < 0 || !data || !samples || !(duration > 0)) {
		fprintf(stderr, "fsync_loop: cannot open %s or allocate\n", argv[1]);
		return 1;
	}
	memset(data, 'x', size);

	t0 = now_ns();
	end = t0 + (uint64_t) (duration * 1e9);
	while (n < FSYNC_SAMPLES_MAX) {
		uint64_t t = now_ns();
		char name[64];
		int k;

		if (t >= end)
			break;
		snprintf(name, sizeof name, "f%zu.json", n);
		k = durable_write(dirfd, name, data, size);
		if (k < 0) {
			fprintf(stderr, "fsync_loop: %s\n", strerror(-k));
			return 1;
		}
		samples[n++] = now_ns() - t;
	}
	double secs = (double) (now_ns() - t0) / 1e9;
	qsort(samples, n, sizeof *samples, cmp_u64);
	printf("{\"count\":%zu,\"seconds\":%.3f,\"rps\":%.1f,\"p50_us\":%.1f,\"p99_us\":%.1f}\n", n, secs,
	       (double) n / secs, n ? (double) samples[n / 2] / 1e3 : 0.0,
	       n ? (double) samples[(size_t) ((double) (n - 1) * 0.99)] / 1e3 : 0.0);
	return 0;
}

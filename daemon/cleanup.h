/* cleanup.h — scope-bound release of memory, descriptors and library objects.
 * Every resource a function acquires is declared with _cleanup_(…) so that an
 * early return cannot leak it; TAKE_PTR/TAKE_FD hand ownership on. */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <json-c/json.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _sentinel_ __attribute__((sentinel))
#define _fallthrough_ __attribute__((fallthrough))

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))

#define TAKE_PTR(p)                          \
	({                                   \
		__typeof__(p) _p_ = (p);     \
		(p) = NULL;                  \
		_p_;                         \
	})

#define TAKE_FD(fd)                          \
	({                                   \
		int _fd_ = (fd);             \
		(fd) = -EBADF;               \
		_fd_;                        \
	})

static inline void freep(void *p) {
	free(*(void **) p);
}

static inline void closep(int *fd) {
	if (*fd >= 0) {
		int saved = errno;
		close(*fd);
		errno = saved;
	}
}

static inline void fclosep(FILE **f) {
	if (*f)
		fclose(*f);
}

static inline void json_object_putp(json_object **j) {
	if (*j)
		json_object_put(*j);
}

static inline void json_tokener_freep(json_tokener **t) {
	if (*t)
		json_tokener_free(*t);
}

/* Frees a NULL-terminated array of strings. */
static inline void strv_freep(char ***v) {
	if (!*v)
		return;
	for (char **s = *v; *s; s++)
		free(*s);
	free(*v);
}

/* Wipes secrets before freeing them. */
static inline void erase_and_freep(char **p) {
	if (*p) {
		explicit_bzero(*p, strlen(*p));
		free(*p);
	}
}

static inline int negative_errno(void) {
	/* For the paths where errno is known to be set, but the compiler cannot
	 * tell that it is non-zero. */
	return errno > 0 ? -errno : -EIO;
}

static inline const char *strna(const char *s) {
	return s ? s : "n/a";
}

static inline bool streq_ptr(const char *a, const char *b) {
	if (!a || !b)
		return a == b;
	return strcmp(a, b) == 0;
}

#define streq(a, b) (strcmp((a), (b)) == 0)

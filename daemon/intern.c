/* intern.c — the interned strings: a chained hash table of refcounted copies. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "intern.h"

typedef struct Interned {
	struct Interned *next;
	uint32_t hash;
	uint32_t refs;   /* the Records holding it: the outbox's (outbox.max_requests ≤ 10^7) and copies in flight */
	char s[];
} Interned;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static Interned **buckets;
static size_t n_buckets, n_held;

static uint32_t hash_string(const char *s) {
	uint32_t h = 2166136261u;   /* FNV-1a */

	for (; *s; s++)
		h = (h ^ (unsigned char) *s) * 16777619u;
	return h;
}

static Interned *interned_of(const char *s) {
	return (Interned *) (void *) (s - offsetof(Interned, s));
}

/* Doubles the table when it holds more strings than buckets; a failed growth only
 * makes the chains longer. Called with the lock held. */
static void table_grow(void) {
	size_t n = n_buckets ? 2 * n_buckets : 16;
	Interned **b;

	if (n_held < n_buckets)
		return;
	b = calloc(n, sizeof *b);
	if (!b)
		return;
	for (size_t i = 0; i < n_buckets; i++)
		for (Interned *e = buckets[i], *next; e; e = next) {
			next = e->next;
			e->next = b[e->hash & (n - 1)];
			b[e->hash & (n - 1)] = e;
		}
	free(buckets);
	buckets = b;
	n_buckets = n;
}

int intern_string(const char *s, const char **ret) {
	uint32_t h;
	size_t len;
	Interned *e;

	if (!s) {
		*ret = NULL;
		return 0;
	}
	h = hash_string(s);
	len = strlen(s);
	pthread_mutex_lock(&lock);
	if (n_buckets)
		for (e = buckets[h & (n_buckets - 1)]; e; e = e->next)
			if (e->hash == h && strcmp(e->s, s) == 0) {
				e->refs++;
				pthread_mutex_unlock(&lock);
				*ret = e->s;
				return 0;
			}
	table_grow();
	e = n_buckets ? malloc(sizeof *e + len + 1) : NULL;
	if (!e) {
		pthread_mutex_unlock(&lock);
		return -ENOMEM;
	}
	e->hash = h;
	e->refs = 1;
	memcpy(e->s, s, len + 1);
	e->next = buckets[h & (n_buckets - 1)];
	buckets[h & (n_buckets - 1)] = e;
	n_held++;
	pthread_mutex_unlock(&lock);
	*ret = e->s;
	return 0;
}

const char *intern_ref(const char *s) {
	if (s) {
		pthread_mutex_lock(&lock);
		interned_of(s)->refs++;
		pthread_mutex_unlock(&lock);
	}
	return s;
}

void intern_unref(const char *s) {
	Interned *e, **p;

	if (!s)
		return;
	e = interned_of(s);
	pthread_mutex_lock(&lock);
	if (--e->refs > 0) {
		pthread_mutex_unlock(&lock);
		return;
	}
	for (p = &buckets[e->hash & (n_buckets - 1)]; *p != e; p = &(*p)->next)
		;
	*p = e->next;
	n_held--;
	if (n_held == 0) {
		/* The table goes with its last string: nothing stays of a loop that ended. */
		free(buckets);
		buckets = NULL;
		n_buckets = 0;
	}
	pthread_mutex_unlock(&lock);
	free(e);
}

size_t intern_count(void) {
	size_t n;

	pthread_mutex_lock(&lock);
	n = n_held;
	pthread_mutex_unlock(&lock);
	return n;
}

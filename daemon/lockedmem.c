/* lockedmem.c — see lockedmem.h. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "lockedmem.h"
#include "log.h"

#define LOCKED_ARENA_SLOTS_MAX 64U

struct LockedArena {
	char *base;
	size_t map_size;
	size_t slot_size;
	size_t n_slots;
	uint64_t used;         /* bit i: slot i taken */
	bool locked;
};

int locked_arena_new(size_t slot_size, size_t n_slots, LockedArena **ret) {
	LockedArena *a;
	long page = sysconf(_SC_PAGESIZE);
	size_t want;
	void *p;

	if (slot_size == 0 || n_slots == 0 || n_slots > LOCKED_ARENA_SLOTS_MAX || slot_size > 1U << 20 || !ret)
		return -EINVAL;
	if (page <= 0)
		page = 4096;
	want = slot_size * n_slots;
	want = (want + (size_t) page - 1) / (size_t) page * (size_t) page;

	a = calloc(1, sizeof *a);
	if (!a)
		return -ENOMEM;
	p = mmap(NULL, want, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		free(a);
		return -ENOMEM;
	}
	*a = (LockedArena) { .base = p, .map_size = want, .slot_size = slot_size, .n_slots = n_slots };

	/* Best effort: RLIMIT_MEMLOCK (64 KiB or more by default) easily covers
	 * the few pages asked for; a sandbox that forbids mlock costs only the
	 * promise that the key is never written to swap. */
	if (mlock(p, want) < 0)
		log_warning_errno(errno, "Could not lock the API key's memory in RAM (it may be swapped out): %m");
	else
		a->locked = true;
	(void) madvise(p, want, MADV_DONTDUMP);
	(void) madvise(p, want, MADV_WIPEONFORK);
	*ret = a;
	return 0;
}

LockedArena *locked_arena_free(LockedArena *a) {
	if (!a)
		return NULL;
	explicit_bzero(a->base, a->map_size);
	if (a->locked)
		(void) munlock(a->base, a->map_size);
	(void) munmap(a->base, a->map_size);
	free(a);
	return NULL;
}

char *locked_arena_get(LockedArena *a) {
	if (!a)
		return NULL;
	for (size_t i = 0; i < a->n_slots; i++)
		if (!(a->used & (UINT64_C(1) << i))) {
			a->used |= UINT64_C(1) << i;
			return a->base + i * a->slot_size;
		}
	return NULL;
}

void locked_arena_put(LockedArena *a, char *slot) {
	size_t i;

	if (!a || !slot)
		return;
	i = (size_t) (slot - a->base) / a->slot_size;
	if (slot < a->base || i >= a->n_slots || a->base + i * a->slot_size != slot)
		return; /* not ours: never wipe someone else's memory */
	explicit_bzero(slot, a->slot_size);
	a->used &= ~(UINT64_C(1) << i);
}

bool locked_arena_is_locked(const LockedArena *a) {
	return a && a->locked;
}

size_t locked_arena_slot_size(const LockedArena *a) {
	return a ? a->slot_size : 0;
}

/* lockedmem.h — a small arena of fixed-size slots for secrets (the API key and
 * the Authorization lines built from it). One anonymous mapping, locked in RAM
 * (mlock, best effort: without it the arena still works but may be swapped),
 * left out of core dumps (MADV_DONTDUMP) and zeroed in a forked child
 * (MADV_WIPEONFORK). A slot is wiped when it is given back, the whole arena
 * when it is freed. Used by api.c; not thread-safe (one event loop). */
#pragma once

#include <stdbool.h>
#include <stddef.h>

typedef struct LockedArena LockedArena;

/* slot_size and n_slots at least 1; n_slots at most 64. */
int locked_arena_new(size_t slot_size, size_t n_slots, LockedArena **ret);
/* Wipes, unlocks and unmaps. */
LockedArena *locked_arena_free(LockedArena *a);
static inline void locked_arena_freep(LockedArena **a) {
	if (*a)
		locked_arena_free(*a);
}

/* A zeroed slot of slot_size bytes, or NULL when every slot is taken. */
char *locked_arena_get(LockedArena *a);
/* Wipes the slot and gives it back; NULL is a no-op. */
void locked_arena_put(LockedArena *a, char *slot);
/* Are the arena's pages locked in RAM (mlock succeeded)? */
bool locked_arena_is_locked(const LockedArena *a);
size_t locked_arena_slot_size(const LockedArena *a);

/* precedence.c — see precedence.h. */
#include <grp.h>
#include <pwd.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "manager.h"
#include "precedence.h"

#define CACHE_SIZE 64
#define GROUPS_MAX 256

typedef struct CachedAnswer {
	uid_t uid;
	bool yes;
	usec_t at;   /* monotonic; 0 = empty slot */
} CachedAnswer;

/* One daemon, one cache; the key it was filled for empties it when it changes. */
static struct {
	char group[256];
	CachedAnswer entries[CACHE_SIZE];
	size_t next;
} cache;

static bool uid_in_group(uid_t uid, const char *group) {
	gid_t groups[GROUPS_MAX];
	int n = (int) ELEMENTSOF(groups);
	struct group *gr;
	struct passwd *pw;

	gr = getgrnam(group);
	if (!gr)
		return false;
	pw = getpwuid(uid);
	if (!pw)
		return false;
	if (pw->pw_gid == gr->gr_gid)
		return true;
	if (getgrouplist(pw->pw_name, pw->pw_gid, groups, &n) < 0)
		return false;
	for (int i = 0; i < n; i++)
		if (groups[i] == gr->gr_gid)
			return true;
	return false;
}

bool precedence_has(uid_t uid, void *userdata) {
	Manager *m = userdata;
	const char *group = m->config ? m->config->queue_precedence_group : NULL;
	usec_t now = now_monotonic();
	CachedAnswer *slot;
	bool yes;

	if (!group || !*group)
		return false;
	if (uid == 0 || uid == geteuid())
		return true;
	if (!streq(cache.group, group)) {
		memset(&cache, 0, sizeof cache);
		snprintf(cache.group, sizeof cache.group, "%s", group);
	}
	for (size_t i = 0; i < CACHE_SIZE; i++)
		if (cache.entries[i].at != 0 && cache.entries[i].uid == uid && now - cache.entries[i].at < PRECEDENCE_CACHE_TTL)
			return cache.entries[i].yes;

	yes = uid_in_group(uid, group);
	slot = &cache.entries[cache.next];
	cache.next = (cache.next + 1) % CACHE_SIZE;
	*slot = (CachedAnswer) { .uid = uid, .yes = yes, .at = now ? now : 1 };
	return yes;
}

void precedence_attach(Manager *m) {
	m->sched.precedence = precedence_has;
	m->sched.precedence_userdata = m;
}

/* keylife.c — see keylife.h. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cleanup.h"
#include "keylife.h"
#include "store.h"

#define KEYLIFE_FILE_MAX (64U * 1024U)

bool keylife_id_is_valid(const char *id) {
	size_t n;

	if (!id)
		return false;
	n = strlen(id);
	if (n == 0 || n >= KEYLIFE_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (id[i] <= ' ' || id[i] > '~')
			return false;
	return true;
}

static KeyLifeEntry *find(KeyLife *kl, const char *id) {
	for (size_t i = 0; i < kl->n; i++)
		if (streq(kl->e[i].id, id))
			return &kl->e[i];
	return NULL;
}

const KeyLifeEntry *keylife_get(const KeyLife *kl, const char *id) {
	return id ? find((KeyLife *) kl, id) : NULL;
}

static KeyLifeEntry *add(KeyLife *kl, const char *id, usec_t now) {
	KeyLifeEntry *slot;

	if (kl->n < KEYLIFE_MAX)
		slot = &kl->e[kl->n++];
	else {
		/* Forget the key first used longest ago: the current one is
		 * never it (it is being added now). */
		slot = &kl->e[0];
		for (size_t i = 1; i < kl->n; i++)
			if (kl->e[i].first_used < slot->first_used)
				slot = &kl->e[i];
	}
	*slot = (KeyLifeEntry) { .first_used = now };
	snprintf(slot->id, sizeof slot->id, "%s", id);
	return slot;
}

int keylife_note_used(KeyLife *kl, const char *id, usec_t now) {
	KeyLifeEntry *e;

	if (!kl || !keylife_id_is_valid(id))
		return -EINVAL;
	e = find(kl, id);
	if (e) {
		e->retired_at = 0;
		return 0;
	}
	add(kl, id, now);
	return 1;
}

int keylife_retire(KeyLife *kl, const char *id, usec_t now) {
	KeyLifeEntry *e;

	if (!kl || !keylife_id_is_valid(id))
		return -EINVAL;
	e = find(kl, id);
	if (!e) {
		e = add(kl, id, now);
		e->retired_at = now ? now : 1;
		return -ENOENT;
	}
	e->retired_at = now ? now : 1;
	return 0;
}

bool keylife_is_retired(const KeyLife *kl, const char *id) {
	const KeyLifeEntry *e = keylife_get(kl, id);

	return e && e->retired_at > 0;
}

unsigned keylife_age_days(const KeyLife *kl, const char *id, usec_t now) {
	const KeyLifeEntry *e = keylife_get(kl, id);

	if (!e || e->first_used == 0 || now <= e->first_used)
		return 0;
	return (unsigned) ((now - e->first_used) / (24 * USEC_PER_HOUR));
}

bool keylife_notice_due(const KeyLife *kl, const char *id, unsigned rotate_after_days, usec_t last_notice, usec_t now) {
	if (rotate_after_days == 0 || !keylife_get(kl, id))
		return false;
	if (keylife_age_days(kl, id, now) < rotate_after_days)
		return false;
	return last_notice == 0 || usec_sub(now, last_notice) >= KEYLIFE_NOTICE_INTERVAL;
}

int keylife_to_json(const KeyLife *kl, json_object **ret) {
	_cleanup_(json_object_putp) json_object *root = json_object_new_object(), *keys = json_object_new_array();

	if (!root || !keys)
		return -ENOMEM;
	for (size_t i = 0; i < kl->n; i++) {
		json_object *o = json_object_new_object();

		if (!o)
			return -ENOMEM;
		json_object_object_add(o, "api_key_id", json_object_new_string(kl->e[i].id));
		json_object_object_add(o, "first_used_us", json_object_new_uint64(kl->e[i].first_used));
		json_object_object_add(o, "retired_us", json_object_new_uint64(kl->e[i].retired_at));
		json_object_array_add(keys, o);
	}
	json_object_object_add(root, "version", json_object_new_int(1));
	json_object_object_add(root, "keys", TAKE_PTR(keys));
	*ret = TAKE_PTR(root);
	return 0;
}

static int get_usec(json_object *o, const char *name, usec_t *ret) {
	json_object *v = json_object_object_get(o, name);

	if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0)
		return -EBADMSG;
	*ret = json_object_get_uint64(v);
	return 0;
}

int keylife_from_json(KeyLife *kl, json_object *j) {
	json_object *keys = j ? json_object_object_get(j, "keys") : NULL;
	KeyLife n = {};

	if (!json_object_is_type(keys, json_type_array) || json_object_array_length(keys) > KEYLIFE_MAX)
		return -EBADMSG;
	for (size_t i = 0; i < json_object_array_length(keys); i++) {
		json_object *o = json_object_array_get_idx(keys, i);
		const char *id = json_object_get_string(json_object_object_get(o, "api_key_id"));
		KeyLifeEntry *e;

		if (!json_object_is_type(o, json_type_object) || !keylife_id_is_valid(id) || find(&n, id))
			return -EBADMSG;
		e = &n.e[n.n++];
		snprintf(e->id, sizeof e->id, "%s", id);
		if (get_usec(o, "first_used_us", &e->first_used) < 0 || get_usec(o, "retired_us", &e->retired_at) < 0)
			return -EBADMSG;
	}
	*kl = n;
	return 0;
}

int keylife_load(int dirfd, KeyLife *kl) {
	_cleanup_(freep) char *data = NULL;
	_cleanup_(json_object_putp) json_object *j = NULL;
	size_t len;
	int k;

	*kl = (KeyLife) {};
	k = store_read_file(dirfd, KEYLIFE_FILE, KEYLIFE_FILE_MAX, &data, &len);
	if (k < 0)
		return k;
	j = json_tokener_parse(data);
	return keylife_from_json(kl, j);
}

int keylife_save(int dirfd, const KeyLife *kl) {
	_cleanup_(json_object_putp) json_object *j = NULL;
	const char *s;
	int k;

	k = keylife_to_json(kl, &j);
	if (k < 0)
		return k;
	s = json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN);
	if (!s)
		return -ENOMEM;
	return store_write_file(dirfd, KEYLIFE_FILE, s, strlen(s));
}

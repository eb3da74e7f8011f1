/* keyswitch.c — see engine.h: the key's lifecycle (its id, first use and age,
 * keylife.h) and the standby key: tested with GET /test when the current key
 * is refused (or on `key.rotate`), and made the current key when HITL.sh
 * accepts it. Nothing queued is lost or sent twice by a switch: a create
 * refused as unauthorised did not happen and goes back to the queue; one
 * whose outcome is unknown stays "submitting" and is reconciled, and the
 * switch (key_changed_at) makes its absence from the new key's listing prove
 * nothing (reconcile.c), so it is never created a second time. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "log.h"
#include "msgid.h"

static const char *const standby_state_table[_STANDBY_STATE_MAX] = {
	[STANDBY_NONE] = "none",
	[STANDBY_LOADED] = "untested",
	[STANDBY_TESTING] = "testing",
	[STANDBY_REFUSED] = "refused",
};

const char *standby_state_to_string(StandbyState s) {
	return s >= 0 && s < _STANDBY_STATE_MAX ? standby_state_table[s] : NULL;
}

static KeyLife *life(Manager *m) {
	KeySwitch *ks = &m->ks;
	int k;

	if (!ks->life_loaded && m->outbox) {
		k = keylife_load(outbox_state_dirfd(m->outbox), &ks->life);
		if (k < 0 && k != -ENOENT)
			log_warning_errno(k, "Failed to read %s/%s (the keys hitld has used), starting afresh: %m", m->state_dir,
			                  KEYLIFE_FILE);
		ks->life_loaded = true;
	}
	return &ks->life;
}

static void life_save(Manager *m) {
	int k;

	if (!m->outbox)
		return;
	k = keylife_save(outbox_state_dirfd(m->outbox), life(m));
	if (k < 0)
		log_warning_errno(k, "Failed to write %s/%s (the keys hitld has used): %m", m->state_dir, KEYLIFE_FILE);
}

static void notice_check(Manager *m);

static int on_notice_timer(sd_event_source *s, uint64_t usec, void *userdata) {
	notice_check(userdata);
	return 0;
}

/* The age notice (api.rotate_after_days): due now, then again a day later
 * while the key stays in use; the timer wakes for it even when hitld is idle. */
static void notice_check(Manager *m) {
	KeySwitch *ks = &m->ks;
	unsigned days = m->config->api_rotate_after_days;
	const KeyLifeEntry *e;
	usec_t now = now_realtime(), next;

	if (!m->api_key_id || days == 0 || !(e = keylife_get(life(m), m->api_key_id))) {
		if (ks->notice_timer)
			sd_event_source_set_enabled(ks->notice_timer, SD_EVENT_OFF);
		return;
	}
	if (keylife_notice_due(life(m), m->api_key_id, days, ks->notice_at, now)) {
		char age[16], first[ISO8601_MAX];
		unsigned n = keylife_age_days(life(m), m->api_key_id, now);

		snprintf(age, sizeof age, "%u", n);
		log_event(LOG_NOTICE, MID_KEY_OLD, LOG_FIELDS({ "HITL_API_KEY_ID", m->api_key_id }, { "HITL_KEY_AGE_DAYS", age }),
		          "The API key (id %s) has been in use since %s, %u days, longer than api.rotate_after_days (%u). "
		          "Rotate it: see hitld(8), \"Key rotation\".",
		          m->api_key_id, format_iso8601(e->first_used, first), n, days);
		ks->notice_at = now;
	}
	next = ks->notice_at ? usec_add(ks->notice_at, KEYLIFE_NOTICE_INTERVAL)
	                     : usec_add(e->first_used, (usec_t) days * 24 * USEC_PER_HOUR);
	if (!ks->notice_timer) {
		if (sd_event_add_time(m->event, &ks->notice_timer, CLOCK_REALTIME, next, USEC_PER_MINUTE, on_notice_timer, m) < 0)
			return;
	} else
		sd_event_source_set_time(ks->notice_timer, next);
	sd_event_source_set_enabled(ks->notice_timer, SD_EVENT_ONESHOT);
}

/* Makes the tested standby the current key. */
static void switch_to_standby(Manager *m, const char *id) {
	KeySwitch *ks = &m->ks;
	_cleanup_(freep) char *old_id = m->api_key_id ? strdup(m->api_key_id) : NULL;
	usec_t now = now_realtime();
	int k;

	k = api_promote_standby_key(m->api);
	if (k < 0) {
		log_error_errno(k, "Failed to switch to the standby API key: %m");
		return;
	}
	ks->on_standby = true;
	ks->standby = STANDBY_NONE;
	m->key_source = ks->standby_source;
	ks->switched_at = now;
	manager_set_string(&ks->switch_reason, ks->test_reason);
	/* Creates sent with the old key are in no listing of the new one: their
	 * absence there proves nothing (reconcile_settle). */
	m->key_changed_at = now;
	m->key_state = KEY_VALID;
	m->probe_failures = 0;
	m->next_probe_at = 0;
	manager_set_string(&m->key_error, NULL);
	if (m->breaker == APIERR_KEY)
		health_breaker_close(m);
	ks->worked = true;
	ks->worked_at = now;
	ks->loss_logged = ks->retired_logged = false;
	ks->identify_tried = true;
	ks->notice_at = 0;
	if (old_id && keylife_id_is_valid(old_id)) {
		(void) keylife_retire(life(m), old_id, now);
		life_save(m);
	}
	manager_set_string(&m->api_key_id, NULL);

	log_event(LOG_WARNING, MID_KEY_SWITCHED,
	          LOG_FIELDS({ "HITL_API_KEY_ID", strna(id) }, { "HITL_OLD_API_KEY_ID", strna(old_id) },
	                     { "HITL_REASON", strna(ks->switch_reason) }),
	          "Switched to the standby API key (id %s, from the %s) because %s; the previous key (id %s) is no longer "
	          "used. Queued requests go on with the new key; none is lost or created twice.",
	          strna(id), secret_source_to_string(ks->standby_source), strna(ks->switch_reason), strna(old_id));
	keyswitch_identified(m, id);
	manager_status_changed(m);
}

static void on_standby_tested(ApiClient *c, const ApiResult *res, void *userdata) {
	Manager *m = userdata;
	KeySwitch *ks = &m->ks;
	manager_key_rotated_t done = ks->rotated;
	void *done_userdata = ks->rotated_userdata;
	char what[256];
	int error = 0;

	ks->test_call = NULL;
	ks->rotated = NULL;
	ks->rotated_userdata = NULL;
	health_describe(res, what, sizeof what);
	if (res->http_status == 200 && !res->api_error && res->data) {
		switch_to_standby(m, json_object_get_string(json_object_object_get(res->data, "api_key_id")));
		snprintf(what, sizeof what, "switched to the standby key");
	} else if (res->http_status == 401 || res->http_status == 403) {
		char status[16];

		snprintf(status, sizeof status, "%ld", res->http_status);
		ks->standby = STANDBY_REFUSED;
		manager_set_string(&ks->standby_error, what);
		log_event(LOG_ERR, MID_KEY_STANDBY_REFUSED, LOG_FIELDS({ "HITL_HTTP_STATUS", status }, { "HITL_REASON", what }),
		          "HITL.sh refused the standby API key (%s); hitld stays on the current key%s.", what,
		          m->key_state == KEY_INVALID || m->breaker == APIERR_KEY
		                  ? ", which is refused too: remote calls wait until a working key is loaded (systemctl reload hitld, "
		                    "or hitlctl key rotate once HITL.sh accepts the standby)"
		                  : "");
		error = -EKEYREJECTED;
	} else {
		ks->standby = STANDBY_LOADED;
		log_warning("Testing the standby API key had no usable answer (%s); hitld stays on the current key and "
		            "tests the standby again when the current key is refused next.", what);
		error = -EIO;
	}
	free(ks->test_reason);
	ks->test_reason = NULL;
	if (done)
		done(m, error, what, done_userdata);
	manager_status_changed(m);
	manager_kick(m);
}

static int start_test(Manager *m, const char *reason) {
	KeySwitch *ks = &m->ks;
	int k;

	if (ks->test_call)
		return -EBUSY;
	if (!api_has_standby_key(m->api))
		return -ENOKEY;
	/* The standby's own budget pays for it, not the current key's ledger. */
	k = api_test_standby_key(m->api, on_standby_tested, m, &ks->test_call);
	if (k < 0) {
		ks->test_call = NULL;
		return log_warning_errno(k, "Failed to test the standby API key: %m");
	}
	/* In the usage history: a key probe, for everyone. */
	api_call_tag(ks->test_call, &(UsageTag) { .kind = USAGE_PROBE, .uid = USAGE_UID_SHARED });
	ks->standby = STANDBY_TESTING;
	manager_set_string(&ks->test_reason, reason);
	log_notice("Testing the standby API key with GET /test: %s.", reason);
	manager_status_changed(m);
	return 0;
}

int manager_key_rotate(Manager *m, manager_key_rotated_t done, void *userdata) {
	KeySwitch *ks = &m->ks;
	int k;

	if (ks->standby == STANDBY_NONE || !api_has_standby_key(m->api))
		return -ENOKEY;
	if (ks->test_call) {
		if (ks->rotated)
			return -EBUSY;
		/* A test the refused key started: its outcome is this one's. */
		ks->rotated = done;
		ks->rotated_userdata = userdata;
		return 0;
	}
	k = start_test(m, "an administrator asked for it (key.rotate)");
	if (k < 0)
		return k;
	ks->rotated = done;
	ks->rotated_userdata = userdata;
	return 0;
}

void manager_key_rotate_forget(Manager *m, void *userdata) {
	if (m->ks.rotated_userdata == userdata) {
		m->ks.rotated = NULL;
		m->ks.rotated_userdata = NULL;
	}
}

/* A test in flight would promote a key it did not test. */
static void test_cancel(Manager *m, const char *why) {
	KeySwitch *ks = &m->ks;
	manager_key_rotated_t done = ks->rotated;

	if (!ks->test_call)
		return;
	api_call_cancel(ks->test_call);
	ks->test_call = NULL;
	ks->rotated = NULL;
	free(ks->test_reason);
	ks->test_reason = NULL;
	if (done)
		done(m, -ECANCELED, why, ks->rotated_userdata);
	ks->rotated_userdata = NULL;
}

void keyswitch_load_standby(Manager *m, bool reload) {
	KeySwitch *ks = &m->ks;
	_cleanup_(erase_and_freep) char *key = NULL;
	SecretSource source;
	int k;

	test_cancel(m, "the standby key was reloaded while it was being tested");
	k = secret_load_standby(m->config->api_next_key_file, &key, &source);
	if (k >= 0)
		k = api_set_standby_key(m->api, key);
	if (k < 0) {
		(void) api_set_standby_key(m->api, NULL);
		ks->standby = STANDBY_NONE;
		manager_set_string(&ks->standby_error, k == -ENOKEY ? NULL : strerror(-k));
		return;
	}
	ks->standby = STANDBY_LOADED;
	ks->standby_source = source;
	manager_set_string(&ks->standby_error, NULL);
	log_info("Standby API key %s from the %s; it is tested when the current key is refused.",
	         reload ? "reloaded" : "loaded", secret_source_to_string(source));
}

void keyswitch_key_loaded(Manager *m) {
	KeySwitch *ks = &m->ks;

	ks->on_standby = false;
	ks->identify_tried = false;
	ks->worked = false;
	ks->loss_logged = false;
	ks->retired_logged = false;
	ks->notice_at = 0;
}

bool keyswitch_reply_is_stale(Manager *m, const ApiResult *res) {
	return res->key_serial != api_key_serial(m->api);
}

bool keyswitch_is_refusal(Manager *m, const ApiResult *res) {
	return res->http_status == 401 || (res->http_status == 403 && health_classify(m, CALL_POLL, res, NULL) == APIERR_KEY);
}

void keyswitch_refused(Manager *m, const ApiResult *res) {
	KeySwitch *ks = &m->ks;
	char what[256], reason[320];

	health_describe(res, what, sizeof what);
	if (ks->worked && !ks->loss_logged) {
		char status[16], since[ISO8601_MAX];

		snprintf(status, sizeof status, "%ld", res->http_status);
		log_event(LOG_WARNING, MID_KEY_LOST,
		          LOG_FIELDS({ "HITL_HTTP_STATUS", status }, { "HITL_API_KEY_ID", strna(m->api_key_id) },
		                     { "HITL_REASON", what }),
		          "HITL.sh refuses the API key (id %s) that worked until %s (%s): it was deactivated, revoked or "
		          "replaced elsewhere. %s",
		          strna(m->api_key_id), format_iso8601(ks->worked_at, since), what,
		          ks->standby == STANDBY_LOADED || ks->standby == STANDBY_TESTING
		                  ? "hitld tests the standby key."
		                  : "No usable standby key: creates wait until a working key is loaded (systemctl reload hitld).");
		ks->loss_logged = true;
	}
	if (ks->standby != STANDBY_LOADED)
		return;
	snprintf(reason, sizeof reason, "HITL.sh refused the current key (%s)", what);
	(void) start_test(m, reason);
}

void keyswitch_worked(Manager *m) {
	KeySwitch *ks = &m->ks;

	ks->worked = true;
	ks->worked_at = now_realtime();
	ks->loss_logged = false;
}

void keyswitch_identified(Manager *m, const char *id) {
	KeySwitch *ks = &m->ks;
	const KeyLifeEntry *e;
	bool was_retired;
	int k;

	manager_set_string(&m->api_key_id, id);
	if (!keylife_id_is_valid(id))
		return;
	e = keylife_get(life(m), id);
	if (e && e->retired_at > 0 && !ks->on_standby) {
		/* A key hitld switched away from, found again in the old
		 * credential by a restart or reload: the standby takes over
		 * again if it is there. */
		char when[ISO8601_MAX];

		if (ks->standby == STANDBY_LOADED && start_test(m, "the current key was retired (hitld switched away from it before)") >= 0)
			return;
		if (!ks->retired_logged)
			log_warning("The API key (id %s) is in use again although hitld switched away from it on %s; "
			            "put the new key in its place (hitld(8), \"Key rotation\").",
			            id, format_iso8601(e->retired_at, when));
		ks->retired_logged = true;
	}
	was_retired = e && e->retired_at > 0;
	k = keylife_note_used(life(m), id, now_realtime());
	if (k > 0 || was_retired)
		life_save(m);   /* its first use, or no longer retired: the operator put it back */
	notice_check(m);
}

bool keyswitch_identify_first(Manager *m) {
	KeyLife *kl;

	if (m->ks.standby != STANDBY_LOADED || m->ks.on_standby)
		return false;
	kl = life(m);
	for (size_t i = 0; i < kl->n; i++)
		if (kl->e[i].retired_at > 0)
			return true;
	return false;
}

void keyswitch_free(Manager *m) {
	KeySwitch *ks = &m->ks;

	if (ks->test_call)
		api_call_cancel(ks->test_call);
	ks->test_call = NULL;
	ks->notice_timer = sd_event_source_disable_unref(ks->notice_timer);
	free(ks->standby_error);
	free(ks->test_reason);
	free(ks->switch_reason);
}

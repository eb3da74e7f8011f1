/* apierr.c — see apierr.h. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "apierr.h"
#include "cleanup.h"

static const char *const class_table[_APIERR_CLASS_MAX] = {
	[APIERR_NONE] = "none",
	[APIERR_TRANSIENT] = "transient",
	[APIERR_RATE] = "rate",
	[APIERR_KEY_INVALID] = "key-invalid",
	[APIERR_REQUEST] = "request",
	[APIERR_LOOP] = "loop",
	[APIERR_KEY] = "key",
	[APIERR_ACCOUNT] = "account",
	[APIERR_ENDPOINT] = "endpoint",
};

const char *apierr_class_to_string(ApiErrClass c) {
	return c >= 0 && c < _APIERR_CLASS_MAX ? class_table[c] : NULL;
}

/* Does text contain word at the start of a word (case-insensitive)? "plan"
 * is in "plan limit" and "Plans", not in "explanation". */
static bool has_word(const char *text, const char *word) {
	size_t n = strlen(word);

	if (!text)
		return false;
	for (const char *p = text; *p; p++) {
		if (p != text && isalnum((unsigned char) p[-1]))
			continue;
		if (strncasecmp(p, word, n) == 0)
			return true;
	}
	return false;
}

static bool says_any(const ApiErrInput *in, const char *const *words) {
	const char *data = NULL;

	/* The wording of a spent quota is undocumented: data may be a string
	 * or an object; its text is searched as serialised. */
	if (in->data)
		data = json_object_is_type(in->data, json_type_string) ? json_object_get_string(in->data)
		                                                       : json_object_to_json_string(in->data);
	for (size_t i = 0; words[i]; i++)
		if (has_word(in->msg, words[i]) || has_word(data, words[i]))
			return true;
	return false;
}

static const char *const account_words[] = {
	"quota", "plan", "billing", "subscription", "payment", "credit", "upgrade", "monthly", NULL,
};
static const char *const inactive_words[] = { "inactive", "disabled", "deactivated", "suspended", NULL };
static const char *const no_members_words[] = { "no active members", NULL };

static bool says(const ApiErrInput *in, const char *phrase) {
	const char *const words[] = { phrase, NULL };

	return says_any(in, words);
}

ApiErrClass apierr_classify(const ApiErrInput *in) {
	long s;

	if (!in)
		return _APIERR_CLASS_INVALID;
	s = in->http_status;
	if (s <= 0)
		return APIERR_TRANSIENT;
	/* HITL.sh never redirects an API call: one that does points elsewhere
	 * now (an endpoint moved or retired, a captive portal). hitld follows
	 * no redirect with the key on it. */
	if (s >= 300 && s < 400)
		return APIERR_ENDPOINT;
	if (s >= 200 && s < 300)
		return in->body_invalid || in->envelope_error ? APIERR_TRANSIENT : APIERR_NONE;
	if (s >= 500 || s < 200)
		return APIERR_TRANSIENT;

	switch (s) {
	case 401:
		return APIERR_KEY_INVALID;
	case 402:
		return APIERR_ACCOUNT;
	case 403:
		if (says_any(in, inactive_words))
			return APIERR_KEY;
		if (says_any(in, account_words))
			return APIERR_ACCOUNT;
		/* "Only loop creators can create requests", "Access denied to this
		 * request": about the loop or request asked for. */
		return APIERR_REQUEST;
	case 429:
		/* The documented 429 carries the rate headers; one without them
		 * that talks of a quota or plan is the month's allowance. */
		if (!in->has_rate_headers && says_any(in, account_words))
			return APIERR_ACCOUNT;
		return APIERR_RATE;
	case 405:
	case 410:
		return APIERR_ENDPOINT;
	case 404:
		if (says(in, "route not found"))
			return APIERR_ENDPOINT;
		/* "Loop not found" for a loop that has taken creates before: the
		 * loop endpoints went, not the loop. */
		if (in->loop_known && (in->kind == CALL_CREATE || in->kind == CALL_RECONCILE))
			return APIERR_ENDPOINT;
		return APIERR_REQUEST;
	case 400:
		if (says_any(in, no_members_words))
			return APIERR_LOOP;
		if (says_any(in, account_words))
			return APIERR_ACCOUNT;
		return APIERR_REQUEST;
	default:
		if (says_any(in, account_words))
			return APIERR_ACCOUNT;
		return APIERR_REQUEST;
	}
}

void apierr_describe(long http_status, const char *msg, json_object *data, char *buf, size_t size) {
	const char *detail = data && json_object_is_type(data, json_type_string) ? json_object_get_string(data) : NULL;
	size_t n;

	if (size == 0)
		return;
	if (http_status > 0)
		snprintf(buf, size, "HTTP %ld: %s%s%s", http_status, msg && *msg ? msg : "(no message)",
		         detail && *detail ? ": " : "", detail && *detail ? detail : "");
	else
		snprintf(buf, size, "%s", msg && *msg ? msg : "no reply");
	/* Server words go to status and the journal: no control characters. */
	n = strlen(buf);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char) buf[i] < 0x20 || buf[i] == 0x7f)
			buf[i] = ' ';
}

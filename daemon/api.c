/* api.c — see api.h. */
#include <curl/curl.h>
#include <stdint.h>
#include <strings.h>

#include "api.h"
#include "secret.h"
#include "apiparse.h"
#include "baseurl.h"
#include "cleanup.h"
#include "curl_cleanup.h"
#include "curl_glue.h"
#include "lockedmem.h"
#include "log.h"

#ifndef HITLD_VERSION
#define HITLD_VERSION "0"
#endif

#define API_TIMEOUT_DEFAULT_S 30U
#define API_CONNECT_TIMEOUT_MAX_S 10U
/* Only the rate-limit lines are kept (apiparse_header_wanted), so this is ample. */
#define API_HEADER_BLOCK_MAX 4096U

#define AUTH_PREFIX "Authorization: Bearer "
/* Every call keeps its own copy of the Authorization line (a rotation must not
 * change a call in flight), and api_set_key() holds the old and the new line
 * for a moment. */
#define AUTH_SLOT_SIZE 544U
#define AUTH_SLOTS (API_MAX_IN_FLIGHT + 3U)   /* + the standby key's line */
_Static_assert(sizeof(AUTH_PREFIX) + SECRET_KEY_MAX <= AUTH_SLOT_SIZE, "Authorization line fits a slot");

struct ApiClient {
	sd_event *event;
	CurlGlue *glue;
	char *base_url;        /* normalised, no trailing '/' */
	char *ca_file;
	unsigned timeout_s;
	bool plain_loopback;   /* http:// to loopback: never through a proxy */
	LockedArena *secrets;  /* locked, undumpable home of every Authorization line */
	char *auth;            /* "Authorization: Bearer <key>" in a secrets slot, or NULL: no key */
	char *standby_auth;    /* the standby key's line (a secrets slot), or NULL */
	unsigned key_serial;   /* which key is current: changes with every api_set_key/promote */
	struct ApiCall *calls;
	unsigned n_calls;
	api_sending_t sending;
	api_ended_t ended;
	void *observer_userdata;
};

struct ApiCall {
	ApiClient *client;
	CURL *easy;            /* owned by the glue once added */
	api_done_t done;
	void *userdata;
	char *auth;            /* this call's Authorization line (a secrets slot): wiped on free */
	unsigned key_serial;   /* the client's key_serial when it started; ~0U: the standby key */
	/* curl reads the header list in place, so the line is never copied into
	 * a list curl allocated; curl's own request buffers are wiped by the
	 * allocator curl_glue gives it. */
	struct curl_slist headers[4];

	char *body;            /* response body, NUL-terminated, ≤ API_RESPONSE_BODY_MAX bytes */
	size_t body_len, body_alloc;
	bool body_oversize;

	char header_block[API_HEADER_BLOCK_MAX];
	size_t header_len;

	bool reached_send;     /* CURLOPT_PREREQFUNCTION ran: the request may be on the wire */
	bool delivering;       /* inside done() */
	char errbuf[CURL_ERROR_SIZE];
	usec_t started_at;
	char method[8];
	UsageTag tag;
	uint64_t cookie;       /* from the observer's sending() */
	struct ApiCall *prev, *next;
};

/* Frees the call's own memory; the easy handle must be gone or detached. */
static void call_free(ApiCall *call) {
	if (!call)
		return;
	locked_arena_put(call->client->secrets, call->auth);
	free(call->body);
	free(call);
}

static void call_freep(ApiCall **call) {
	if (!*call)
		return;
	/* Only before curl_glue_add(): afterwards the glue owns the easy. */
	if ((*call)->easy)
		curl_easy_cleanup((*call)->easy);
	call_free(*call);
}

static void client_unlink(ApiClient *c, ApiCall *call) {
	if (call->next)
		call->next->prev = call->prev;
	if (call->prev)
		call->prev->next = call->next;
	else
		c->calls = call->next;
	call->prev = call->next = NULL;
	c->n_calls--;
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata) {
	ApiCall *call = userdata;
	size_t n = size * nmemb;

	if (n > API_RESPONSE_BODY_MAX - call->body_len) {
		call->body_oversize = true;
		return 0; /* anything but n aborts the transfer */
	}
	if (call->body_len + n + 1 > call->body_alloc) {
		size_t want = call->body_alloc ? call->body_alloc : 4096;
		char *p;

		while (want < call->body_len + n + 1)
			want *= 2;
		if (want > API_RESPONSE_BODY_MAX + 1)
			want = API_RESPONSE_BODY_MAX + 1;
		p = realloc(call->body, want);
		if (!p)
			return 0;
		call->body = p;
		call->body_alloc = want;
	}
	memcpy(call->body + call->body_len, ptr, n);
	call->body_len += n;
	call->body[call->body_len] = '\0';
	return n;
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *userdata) {
	ApiCall *call = userdata;
	size_t n = size * nitems;

	/* A status line starts a new response (after a 1xx): forget the old one. */
	if (n >= 5 && memcmp(buf, "HTTP/", 5) == 0) {
		call->header_len = 0;
		return n;
	}
	if (apiparse_header_wanted(buf, n) && n + 1 <= sizeof(call->header_block) - call->header_len) {
		memcpy(call->header_block + call->header_len, buf, n);
		call->header_len += n;
		if (buf[n - 1] != '\n')
			call->header_block[call->header_len++] = '\n';
	}
	return n;
}

static int on_prereq(void *clientp, char *conn_primary_ip, char *conn_local_ip,
                     int conn_primary_port, int conn_local_port) {
	ApiCall *call = clientp;

	/* Connected (TLS done) and about to send: from here on a failure leaves
	 * the outcome unknown. */
	call->reached_send = true;
	/* Before the request leaves: the usage history counts it durably first
	 * (once: a fresh connection per call, so curl never sends it twice). */
	if (call->client->sending && call->cookie == 0)
		call->cookie = call->client->sending(call->client, &call->tag, call->client->observer_userdata);
	return CURL_PREREQFUNC_OK;
}

#define REDACTED "[redacted]"

/* s with every occurrence of key replaced by REDACTED (malloc'd), or NULL
 * when s does not hold the key (or on ENOMEM, when the caller drops s). */
static char *redact_string(const char *s, const char *key, size_t key_len, bool *ret_oom) {
	size_t hits = 0, n = strlen(s), r_len = strlen(REDACTED);
	const char *p;
	char *out, *w;

	for (p = s; (p = strstr(p, key)); p += key_len)
		hits++;
	if (hits == 0)
		return NULL;
	out = malloc(n - hits * key_len + hits * r_len + 1);
	if (!out) {
		*ret_oom = true;
		return NULL;
	}
	for (p = s, w = out;;) {
		const char *k = strstr(p, key);

		if (!k) {
			strcpy(w, p);
			break;
		}
		memcpy(w, p, (size_t) (k - p));
		w += k - p;
		memcpy(w, REDACTED, r_len);
		w += r_len;
		p = k + key_len;
	}
	return out;
}

/* Replaces the key in every string and member name of o. The parser bounds
 * the depth (APIPARSE_JSON_DEPTH). Returns -ENOMEM when a string holding the
 * key could not be rewritten: then the reply must not be passed on. */
static int redact_json(json_object *o, const char *key, size_t key_len) {
	bool oom = false;

	switch (json_object_get_type(o)) {
	case json_type_string: {
		_cleanup_(freep) char *clean = redact_string(json_object_get_string(o), key, key_len, &oom);

		if (oom)
			return -ENOMEM;
		if (clean && json_object_set_string(o, clean) != 1)
			return -ENOMEM;
		return 0;
	}
	case json_type_array:
		for (size_t i = 0, n = json_object_array_length(o); i < n; i++)
			if (redact_json(json_object_array_get_idx(o, i), key, key_len) < 0)
				return -ENOMEM;
		return 0;
	case json_type_object: {
		struct json_object_iterator it, end = json_object_iter_end(o);
		const char *bad;

		for (it = json_object_iter_begin(o); !json_object_iter_equal(&it, &end); json_object_iter_next(&it))
			if (redact_json(json_object_iter_peek_value(&it), key, key_len) < 0)
				return -ENOMEM;
		/* A member name holding the key: rename it (rare, so one at a time). */
		for (;;) {
			_cleanup_(freep) char *clean = NULL;
			json_object *value;

			bad = NULL;
			end = json_object_iter_end(o);
			for (it = json_object_iter_begin(o); !json_object_iter_equal(&it, &end); json_object_iter_next(&it))
				if (strstr(json_object_iter_peek_name(&it), key)) {
					bad = json_object_iter_peek_name(&it);
					break;
				}
			if (!bad)
				return 0;
			clean = redact_string(bad, key, key_len, &oom);
			if (!clean)
				return -ENOMEM;
			value = json_object_get(json_object_iter_peek_value(&it));
			json_object_object_del(o, bad);
			if (json_object_object_add(o, clean, value) < 0) {
				json_object_put(value);
				return -ENOMEM;
			}
		}
	}
	default:
		return 0;
	}
}

static int redact_one(ApiCall *call, json_object *root, const char *key) {
	size_t key_len = strlen(key);
	_cleanup_(freep) char *err = NULL;
	bool oom = false;

	err = redact_string(call->errbuf, key, key_len, &oom);
	if (err || oom)
		snprintf(call->errbuf, sizeof(call->errbuf), "%s", err ? err : REDACTED);
	return root ? redact_json(root, key, key_len) : 0;
}

/* Everything the server said (and curl's error text) leaves api.c through
 * here: a server that echoes the key must not put it into status, a
 * request's last_error or the journal. The key the call was made with, and
 * the current one if a rotation came in between. */
static int redact_reply(ApiCall *call, json_object *root) {
	const char *sent = call->auth + strlen(AUTH_PREFIX), *now = call->client->auth,
	           *standby = call->client->standby_auth;
	int r;

	r = redact_one(call, root, sent);
	if (r >= 0 && now && !streq(now + strlen(AUTH_PREFIX), sent))
		r = redact_one(call, root, now + strlen(AUTH_PREFIX));
	if (r >= 0 && standby && !streq(standby + strlen(AUTH_PREFIX), sent))
		r = redact_one(call, root, standby + strlen(AUTH_PREFIX));
	return r;
}

static void on_done(CurlGlue *g, CURL *easy, CURLcode result, void *userdata) {
	ApiCall *call = userdata;
	ApiClient *c = call->client;
	_cleanup_(json_object_putp) json_object *root = NULL;
	ApiResult res = {
		.key_serial = call->key_serial,
		.started_at = call->started_at,
		.finished_at = now_realtime(),
	};

	(void) apiparse_header_block(call->header_block, call->header_len, &res.rate);

	if (call->body_oversize)
		result = CURLE_FILESIZE_EXCEEDED;
	if (result == CURLE_OK) {
		long status = 0;

		(void) curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
		if (status < 100 || status > 599) {
			result = CURLE_WEIRD_SERVER_REPLY;
			snprintf(call->errbuf, sizeof(call->errbuf), "No valid HTTP status (%ld)", status);
		} else
			res.http_status = status;
	}

	if (redact_reply(call, NULL) < 0) /* errbuf only; the body below */
		result = CURLE_OUT_OF_MEMORY;
	if (result != CURLE_OK) {
		res.curl_code = (int) result;
		res.maybe_sent = call->reached_send || result == CURLE_FILESIZE_EXCEEDED;
		if (result == CURLE_FILESIZE_EXCEEDED)
			res.error_text = "Response body larger than 4 MiB";
		else
			res.error_text = call->errbuf[0] ? call->errbuf : curl_easy_strerror(result);
	} else {
		bool envelope_error = false;
		const char *msg = NULL;
		json_object *data = NULL;

		if (apiparse_envelope(call->body, call->body_len, &root, &envelope_error, &msg, &data) < 0 ||
		    redact_reply(call, root) < 0) {
			res.body_invalid = true;
			res.api_error = true;
		} else {
			json_object *m = NULL;

			/* Redaction may have replaced the strings msg and data point into. */
			msg = json_object_object_get_ex(root, "msg", &m) && m ? json_object_get_string(m) : NULL;
			data = json_object_object_get(root, "data");
			res.root = root;
			res.msg = msg;
			res.data = data;
			res.api_error = envelope_error || res.http_status < 200 || res.http_status > 299;
		}
	}

	log_debug("HITL.sh %s call finished: HTTP %ld, curl %d%s%s, %llu ms.", call->method,
	          res.http_status, res.curl_code, res.maybe_sent ? ", maybe sent" : "",
	          res.body_invalid ? ", invalid body" : "",
	          (unsigned long long) (usec_sub(res.finished_at, res.started_at) / USEC_PER_MSEC));

	client_unlink(c, call);
	call->delivering = true;
	if (c->ended)
		c->ended(c, &call->tag, call->cookie, &res, c->observer_userdata);
	if (call->done)
		call->done(c, &res, call->userdata);

	/* The glue cleans easy up after we return; let it point at nothing of ours. */
	(void) curl_easy_setopt(easy, CURLOPT_HTTPHEADER, NULL);
	(void) curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, NULL);
	call_free(call);
}

/* Validates base_url (baseurl.h: the rule --check-config applies too) and
 * returns its normalised form without trailing '/'. */
static int base_url_check(const char *base_url, char **ret_url, bool *ret_plain_loopback) {
	_cleanup_(curl_urlp) CURLU *u = NULL;
	_cleanup_(curl_freep) char *url = NULL;
	bool plain_loopback = false;
	const char *reason;
	char *copy;
	size_t n;
	int r;

	r = baseurl_check(base_url, &plain_loopback, &reason);
	if (r < 0)
		return log_error_errno(r, "Refusing HITL.sh base URL: %s.", reason);
	u = curl_url();
	if (!u)
		return -ENOMEM;
	if (curl_url_set(u, CURLUPART_URL, base_url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_URL, &url, 0) != CURLUE_OK)
		return -EINVAL;
	n = strlen(url);
	while (n > 0 && url[n - 1] == '/')
		n--;
	if (n > API_PATH_MAX)
		return log_error_errno(EINVAL, "HITL.sh base URL is too long.");
	copy = strndup(url, n);
	if (!copy)
		return -ENOMEM;
	*ret_url = copy;
	*ret_plain_loopback = plain_loopback;
	return 0;
}

ApiClient *api_free(ApiClient *c) {
	if (!c)
		return NULL;

	while (c->calls) {
		ApiCall *call = c->calls;

		client_unlink(c, call);
		curl_glue_remove(c->glue, call->easy);
		call_free(call);
	}
	curl_glue_free(c->glue);
	locked_arena_free(c->secrets);
	free(c->base_url);
	free(c->ca_file);
	sd_event_unref(c->event);
	free(c);
	return NULL;
}

int api_new(sd_event *e, const ApiConfig *config, ApiClient **ret) {
	_cleanup_(api_freep) ApiClient *c = NULL;
	int r;

	if (!e || !config || !ret)
		return -EINVAL;

	c = calloc(1, sizeof(ApiClient));
	if (!c)
		return -ENOMEM;
	c->event = sd_event_ref(e);
	c->timeout_s = config->timeout_s > 0 ? config->timeout_s : API_TIMEOUT_DEFAULT_S;

	r = base_url_check(config->base_url, &c->base_url, &c->plain_loopback);
	if (r < 0)
		return r;
	if (config->ca_file) {
		c->ca_file = strdup(config->ca_file);
		if (!c->ca_file)
			return -ENOMEM;
	}

	r = locked_arena_new(AUTH_SLOT_SIZE, AUTH_SLOTS, &c->secrets);
	if (r < 0)
		return r;
	r = curl_glue_new(e, &c->glue);
	if (r < 0)
		return r;

	*ret = TAKE_PTR(c);
	return 0;
}

/* The Authorization line for key in a fresh secrets slot (*ret NULL for no key). */
static int auth_line(ApiClient *c, const char *key, char **ret) {
	char *line = NULL;

	if (key) {
		size_t n = strlen(key);

		/* It goes into an HTTP header: no CR/LF, no spaces, nothing odd; the
		 * one rule for a key is secret.c's. */
		if (!secret_key_is_valid(key))
			return -EINVAL;
		line = locked_arena_get(c->secrets);
		if (!line)
			return -ENOMEM;
		memcpy(line, AUTH_PREFIX, strlen(AUTH_PREFIX));
		memcpy(line + strlen(AUTH_PREFIX), key, n + 1);
	}
	*ret = line;
	return 0;
}

/* The Authorization line for key into *slot, in locked memory; the old one
 * wiped. */
static int set_auth(ApiClient *c, const char *key, char **slot) {
	char *line;
	int r;

	if (!c)
		return -EINVAL;
	r = auth_line(c, key, &line);
	if (r < 0)
		return r;
	locked_arena_put(c->secrets, *slot);
	*slot = line;
	return 0;
}

int api_set_key(ApiClient *c, const char *key) {
	int r = set_auth(c, key, c ? &c->auth : NULL);

	if (r < 0)
		return r;
	c->key_serial = (c->key_serial + 1) % API_KEY_SERIAL_STANDBY;
	return 0;
}

bool api_has_key(const ApiClient *c) {
	return c && c->auth;
}

int api_set_standby_key(ApiClient *c, const char *key) {
	return set_auth(c, key, c ? &c->standby_auth : NULL);
}

bool api_has_standby_key(const ApiClient *c) {
	return c && c->standby_auth;
}

int api_promote_standby_key(ApiClient *c) {
	if (!c)
		return -EINVAL;
	if (!c->standby_auth)
		return -ENOKEY;
	/* The slot moves, no copy is made; the old key's line is wiped. Calls
	 * in flight keep their own copies of the old line. */
	locked_arena_put(c->secrets, c->auth);
	c->auth = TAKE_PTR(c->standby_auth);
	c->key_serial = (c->key_serial + 1) % API_KEY_SERIAL_STANDBY;
	return 0;
}

unsigned api_key_serial(const ApiClient *c) {
	return c ? c->key_serial : 0;
}

unsigned api_in_flight(const ApiClient *c) {
	return c ? c->n_calls : 0;
}

static bool path_is_valid(const char *path) {
	size_t n;

	if (!path || path[0] != '/')
		return false;
	n = strlen(path);
	if (n > API_PATH_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (path[i] < 0x21 || path[i] > 0x7e)
			return false;
	return true;
}

static int easy_setup(ApiClient *c, ApiCall *call, const char *method, const char *url,
                      const char *body, size_t body_len) {
	CURL *easy = call->easy;
	unsigned connect_s = c->timeout_s < API_CONNECT_TIMEOUT_MAX_S ? c->timeout_s
	                                                              : API_CONNECT_TIMEOUT_MAX_S;
	bool ok = true;

#define SET(opt, val) (ok = ok && curl_easy_setopt(easy, (opt), (val)) == CURLE_OK)
	SET(CURLOPT_URL, url);
	SET(CURLOPT_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_SSL_VERIFYPEER, 1L);
	SET(CURLOPT_SSL_VERIFYHOST, 2L);
	if (c->ca_file)
		SET(CURLOPT_CAINFO, c->ca_file);
	if (c->plain_loopback)
		SET(CURLOPT_PROXY, ""); /* no proxy from the environment for loopback */
	SET(CURLOPT_TIMEOUT_MS, (long) c->timeout_s * 1000L);
	SET(CURLOPT_CONNECTTIMEOUT_MS, (long) connect_s * 1000L);
	SET(CURLOPT_USERAGENT, "hitld/" HITLD_VERSION);
	SET(CURLOPT_HTTPHEADER, call->headers);
	SET(CURLOPT_ERRORBUFFER, call->errbuf);
	SET(CURLOPT_WRITEFUNCTION, on_body);
	SET(CURLOPT_WRITEDATA, call);
	SET(CURLOPT_HEADERFUNCTION, on_header);
	SET(CURLOPT_HEADERDATA, call);
	SET(CURLOPT_PREREQFUNCTION, on_prereq);
	SET(CURLOPT_PREREQDATA, call);
	SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t) API_RESPONSE_BODY_MAX);
	/* One exchange per connection: curl silently resends a request when a
	 * reused connection dies before any answer, and HITL.sh has no
	 * idempotency key. At ≤100 calls an hour reuse buys nothing anyway. */
	SET(CURLOPT_FRESH_CONNECT, 1L);
	SET(CURLOPT_FORBID_REUSE, 1L);

	if (streq(method, "GET"))
		SET(CURLOPT_HTTPGET, 1L);
	else {
		if (streq(method, "POST"))
			SET(CURLOPT_POST, 1L);
		else
			SET(CURLOPT_CUSTOMREQUEST, method);
		if (body || streq(method, "POST")) {
			SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) body_len);
			SET(CURLOPT_COPYPOSTFIELDS, body ? body : "");
		}
	}
#undef SET
	return ok ? 0 : -EIO;
}

/* Takes a secrets slot for the call's copy of the Authorization line and
 * links the call's header list; curl only reads the list (CURLOPT_HTTPHEADER). */
static int headers_build(ApiClient *c, ApiCall *call, const char *auth, bool with_body) {
	char *lines[ELEMENTSOF(call->headers)] = {
		NULL,
		(char *) "Accept: application/json",
		(char *) (with_body ? "Content-Type: application/json" : "Content-Type:"),
		(char *) "Expect:",
	};

	call->auth = locked_arena_get(c->secrets);
	if (!call->auth)
		return -ENOMEM;
	memcpy(call->auth, auth, AUTH_SLOT_SIZE);
	lines[0] = call->auth;
	for (size_t i = 0; i < ELEMENTSOF(call->headers); i++)
		call->headers[i] = (struct curl_slist) {
			.data = lines[i],
			.next = i + 1 < ELEMENTSOF(call->headers) ? &call->headers[i + 1] : NULL,
		};
	return 0;
}

static int call_with(ApiClient *c, bool standby, const char *method, const char *path, json_object *body,
                     api_done_t done, void *userdata, ApiCall **ret_call) {
	const char *auth = standby ? c->standby_auth : c->auth;
	_cleanup_(call_freep) ApiCall *call = NULL;
	_cleanup_(freep) char *url = NULL;
	const char *body_str = NULL;
	size_t body_len = 0;
	ApiCall *started;
	int r;

	if (!c || !method || !path_is_valid(path))
		return -EINVAL;
	if (!streq(method, "GET") && !streq(method, "POST") && !streq(method, "PUT") &&
	    !streq(method, "DELETE"))
		return -EINVAL;
	if (body && streq(method, "GET"))
		return -EINVAL;
	if (!auth)
		return -ENOKEY;
	if (c->n_calls >= API_MAX_IN_FLIGHT)
		return -EBUSY;

	if (body) {
		body_str = json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN |
		                                                JSON_C_TO_STRING_NOSLASHESCAPE);
		if (!body_str)
			return -ENOMEM;
		body_len = strlen(body_str);
		if (body_len > API_REQUEST_BODY_MAX)
			return -E2BIG;
	}
	if (asprintf(&url, "%s%s", c->base_url, path) < 0) {
		url = NULL;
		return -ENOMEM;
	}

	call = calloc(1, sizeof(ApiCall));
	if (!call)
		return -ENOMEM;
	*call = (ApiCall) { .client = c, .done = done, .userdata = userdata,
	                    .tag = { .kind = USAGE_POLL, .uid = USAGE_UID_SHARED } };
	snprintf(call->method, sizeof(call->method), "%s", method);

	call->key_serial = standby ? API_KEY_SERIAL_STANDBY : c->key_serial;
	r = headers_build(c, call, auth, body);
	if (r < 0)
		return r;
	call->easy = curl_easy_init();
	if (!call->easy)
		return -ENOMEM;
	r = easy_setup(c, call, method, url, body_str, body_len);
	if (r < 0)
		return r;

	call->started_at = now_realtime();
	started = TAKE_PTR(call);
	r = curl_glue_add(c->glue, started->easy, on_done, started);
	if (r < 0) { /* the glue has cleaned up the easy handle */
		call_free(started);
		return r;
	}

	started->next = c->calls;
	if (c->calls)
		c->calls->prev = started;
	c->calls = started;
	c->n_calls++;

	if (ret_call)
		*ret_call = started;
	return 0;
}

int api_call(ApiClient *c, const char *method, const char *path, json_object *body,
             api_done_t done, void *userdata, ApiCall **ret_call) {
	if (!c)
		return -EINVAL;
	return call_with(c, false, method, path, body, done, userdata, ret_call);
}

int api_test_standby_key(ApiClient *c, api_done_t done, void *ud, ApiCall **ret) {
	if (!c)
		return -EINVAL;
	return call_with(c, true, "GET", "/test", NULL, done, ud, ret);
}

void api_call_cancel(ApiCall *call) {
	ApiClient *c;

	if (!call || call->delivering)
		return;
	c = call->client;
	client_unlink(c, call);
	if (c->ended) {
		ApiResult res = { .maybe_sent = call->reached_send, .started_at = call->started_at,
		                  .finished_at = now_realtime(), .error_text = "Cancelled" };

		c->ended(c, &call->tag, call->cookie, &res, c->observer_userdata);
	}
	curl_glue_remove(c->glue, call->easy);
	call_free(call);
}

void api_set_observer(ApiClient *c, api_sending_t sending, api_ended_t ended, void *userdata) {
	c->sending = sending;
	c->ended = ended;
	c->observer_userdata = userdata;
}

void api_call_tag(ApiCall *call, const UsageTag *tag) {
	if (call && tag)
		call->tag = *tag;
}

int api_test_key(ApiClient *c, api_done_t done, void *ud, ApiCall **ret) {
	return api_call(c, "GET", "/test", NULL, done, ud, ret);
}

int api_create_request(ApiClient *c, const char *loop_id, json_object *body, api_done_t done,
                       void *ud, ApiCall **ret) {
	char path[64];

	if (!apiparse_id_is_valid(loop_id) || !json_object_is_type(body, json_type_object))
		return -EINVAL;
	snprintf(path, sizeof(path), "/api/loops/%s/requests", loop_id);
	return api_call(c, "POST", path, body, done, ud, ret);
}

static bool string_in(const char *s, const char *const *set, size_t n) {
	for (size_t i = 0; i < n; i++)
		if (streq(s, set[i]))
			return true;
	return false;
}

int api_list_requests(ApiClient *c, const char *status, unsigned limit, unsigned offset,
                      const char *sort, api_done_t done, void *ud, ApiCall **ret) {
	static const char *const statuses[] = { "pending", "claimed", "completed", "timeout", "cancelled" };
	static const char *const sorts[] = { "created_at_desc", "created_at_asc", "priority_desc", "status_asc" };
	char path[160];

	if (status && !string_in(status, statuses, ELEMENTSOF(statuses)))
		return -EINVAL;
	if (sort && !string_in(sort, sorts, ELEMENTSOF(sorts)))
		return -EINVAL;
	if (limit < 1 || limit > 100)
		return -EINVAL;

	snprintf(path, sizeof(path), "/api/requests?%s%s%slimit=%u&offset=%u%s%s",
	         status ? "status=" : "", status ? status : "", status ? "&" : "", limit, offset,
	         sort ? "&sort=" : "", sort ? sort : "");
	return api_call(c, "GET", path, NULL, done, ud, ret);
}

static int request_call(ApiClient *c, const char *method, const char *id, const char *suffix,
                        json_object *body, api_done_t done, void *ud, ApiCall **ret) {
	char path[80];

	if (!apiparse_id_is_valid(id))
		return -EINVAL;
	snprintf(path, sizeof(path), "/api/requests/%s%s", id, suffix);
	return api_call(c, method, path, body, done, ud, ret);
}

int api_get_request(ApiClient *c, const char *id, api_done_t done, void *ud, ApiCall **ret) {
	return request_call(c, "GET", id, "", NULL, done, ud, ret);
}

int api_cancel_request(ApiClient *c, const char *id, api_done_t done, void *ud, ApiCall **ret) {
	return request_call(c, "DELETE", id, "", NULL, done, ud, ret);
}

int api_feedback(ApiClient *c, const char *id, json_object *feedback_obj, api_done_t done,
                 void *ud, ApiCall **ret) {
	_cleanup_(json_object_putp) json_object *body = NULL;

	if (!json_object_is_type(feedback_obj, json_type_object))
		return -EINVAL;
	body = json_object_new_object();
	if (!body)
		return -ENOMEM;
	if (json_object_object_add(body, "feedback", json_object_get(feedback_obj)) < 0) {
		json_object_put(feedback_obj);
		return -ENOMEM;
	}
	return request_call(c, "POST", id, "/feedback", body, done, ud, ret);
}

static bool loop_suffix_is_valid(const char *suffix) {
	static const char members[] = "/members/";

	if (streq(suffix, "/members") || streq(suffix, "/requests"))
		return true;
	return strncmp(suffix, members, strlen(members)) == 0 &&
	       apiparse_id_is_valid(suffix + strlen(members));
}

int api_loop_call(ApiClient *c, const char *method, const char *loop_id, const char *suffix,
                  json_object *body, api_done_t done, void *ud, ApiCall **ret) {
	char path[128];

	if (loop_id && !apiparse_id_is_valid(loop_id))
		return -EINVAL;
	if (suffix && (!loop_id || !loop_suffix_is_valid(suffix)))
		return -EINVAL;

	snprintf(path, sizeof(path), "/api/loops%s%s%s", loop_id ? "/" : "", loop_id ? loop_id : "",
	         suffix ? suffix : "");
	return api_call(c, method, path, body, done, ud, ret);
}

/* callback.c — see callback.h. */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "callback.h"
#include "cleanup.h"

#define CALLBACK_JSON_DEPTH 32

static bool is_lower_hex(char c) {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

int callback_token_new(char ret[static CALLBACK_TOKEN_HEX + 1]) {
	static const char hex[] = "0123456789abcdef";
	uint8_t raw[CALLBACK_TOKEN_HEX / 2];
	ssize_t n;

	do
		n = getrandom(raw, sizeof raw, 0);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t) sizeof raw)
		return -EIO;
	for (size_t i = 0; i < sizeof raw; i++) {
		ret[2 * i] = hex[raw[i] >> 4];
		ret[2 * i + 1] = hex[raw[i] & 15];
	}
	ret[CALLBACK_TOKEN_HEX] = '\0';
	explicit_bzero(raw, sizeof raw);
	return 0;
}

bool callback_token_is_valid(const char *s) {
	if (!s)
		return false;
	for (size_t i = 0; i < CALLBACK_TOKEN_HEX; i++)
		if (!is_lower_hex(s[i]))
			return false;
	return s[CALLBACK_TOKEN_HEX] == '\0';
}

bool callback_token_equal(const char *a, const char *b) {
	volatile uint8_t diff = 0;

	/* Validity is not the secret (the format is public): checking it first
	 * leaks nothing about the token's digits. */
	if (!callback_token_is_valid(a) || !callback_token_is_valid(b))
		return false;
	for (size_t i = 0; i < CALLBACK_TOKEN_HEX; i++)
		diff |= (uint8_t) a[i] ^ (uint8_t) b[i];
	return diff == 0;
}

int callback_url_format(const char *public_url, const char *id, const char *token, char **ret) {
	size_t n;

	if (!public_url || !ret || !record_id_is_valid(id) || !callback_token_is_valid(token))
		return -EINVAL;
	n = strlen(public_url);
	if (n == 0)
		return -EINVAL;
	if (asprintf(ret, "%s%s%s.%s", public_url, public_url[n - 1] == '/' ? "" : "/", id, token) < 0)
		return -ENOMEM;
	return 0;
}

int callback_capability_parse(const char *path, char ret_id[static RECORD_ID_MAX],
                              char ret_token[static CALLBACK_TOKEN_HEX + 1]) {
	const char *seg, *dot;
	char id[RECORD_ID_MAX];
	size_t id_len;

	if (!path)
		return -ENOENT;
	seg = strrchr(path, '/');
	seg = seg ? seg + 1 : path;
	dot = strchr(seg, '.');
	if (!dot)
		return -ENOENT;
	id_len = (size_t) (dot - seg);
	if (id_len == 0 || id_len >= RECORD_ID_MAX)
		return -ENOENT;
	memcpy(id, seg, id_len);
	id[id_len] = '\0';
	if (!record_id_is_valid(id) || !callback_token_is_valid(dot + 1))
		return -ENOENT;
	memcpy(ret_id, id, id_len + 1);
	memcpy(ret_token, dot + 1, CALLBACK_TOKEN_HEX + 1);
	return 0;
}

int callback_parse(const char *body, size_t size, json_object **ret_root, RemoteRequest *ret) {
	_cleanup_(json_object_putp) json_object *root = NULL;
	json_object *obj, *data, *request, *event;
	RemoteRequest rr;
	int k;

	if (!ret_root || !ret || size > CALLBACK_BODY_MAX)
		return -EBADMSG;
	k = apiparse_json_object(body, size, CALLBACK_JSON_DEPTH, &root);
	if (k < 0)
		return k;

	/* §6.1 puts the request's fields at the top; the older account
	 * webhooks (§6.2) nest them in data.request (or data). */
	obj = root;
	if (!json_object_object_get_ex(root, "request_id", NULL) && json_object_object_get_ex(root, "data", &data) &&
	    json_object_is_type(data, json_type_object))
		obj = json_object_object_get_ex(data, "request", &request) &&
		                      json_object_is_type(request, json_type_object)
		              ? request
		              : data;
	k = apiparse_remote_request(obj, &rr);
	if (k < 0)
		return k;

	/* No status word we know: the event names the outcome. */
	if (rr.status_unknown && json_object_object_get_ex(root, "event", &event) &&
	    json_object_is_type(event, json_type_string)) {
		const char *e = json_object_get_string(event), *status;

		if (strncmp(e, "request.", 8) == 0 && (status = apiparse_status_from_word(e + 8))) {
			snprintf(rr.status, sizeof rr.status, "%s", status);
			rr.status_unknown = false;
		}
	}
	/* An unknown word with response_data reads as completed (apiparse.h). */
	if (!apiparse_status_is_final(rr.status))
		return -EBADMSG;

	*ret = rr;
	*ret_root = TAKE_PTR(root);
	return 0;
}

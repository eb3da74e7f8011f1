/* fuzz_callback.c — what a stranger on the internet can send hitld's webhook
 * (issue 17), on arbitrary bytes: the first line is the request path, the
 * rest the body. The path goes through callback_capability_parse(), the body
 * through callback_parse(). Properties: no crash, no leak; a capability that
 * parses has a valid id and a valid 64-digit token and formats back to the
 * same last segment (callback_url_format); a token is equal to itself and to
 * nothing one digit off; a body accepted is at most CALLBACK_BODY_MAX bytes
 * with a valid request id and a final status (completed, timeout, cancelled,
 * failed), out-parameters untouched on failure, and accepting it again gives
 * the same reading. */
#include <string.h>

#include "apiparse.h"
#include "callback.h"
#include "cleanup.h"
#include "fuzz_common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
	fuzz_quiet_logs();
	return 0;
}

static void check_path(const char *path) {
	char id[RECORD_ID_MAX], token[CALLBACK_TOKEN_HEX + 1], other[CALLBACK_TOKEN_HEX + 1];
	_cleanup_(freep) char *url = NULL;
	const char *seg;
	int k;

	memset(id, 0x5A, sizeof id);
	memset(token, 0x5A, sizeof token);
	k = callback_capability_parse(path, id, token);
	if (k < 0) {
		FUZZ_CHECK(k == -ENOENT, "capability_parse: unexpected error %d", k);
		FUZZ_CHECK(id[0] == 0x5A && token[0] == 0x5A, "capability_parse wrote on failure");
		return;
	}
	FUZZ_CHECK(record_id_is_valid(id), "accepted id %.40s", id);
	FUZZ_CHECK(callback_token_is_valid(token), "accepted token %.70s", token);
	FUZZ_CHECK(callback_token_equal(token, token), "token not equal to itself");
	memcpy(other, token, sizeof other);
	other[CALLBACK_TOKEN_HEX - 1] = other[CALLBACK_TOKEN_HEX - 1] == '0' ? '1' : '0';
	FUZZ_CHECK(!callback_token_equal(token, other), "token equal to one a digit off");
	FUZZ_CHECK(callback_url_format("https://example.com/h", id, token, &url) == 0, "valid capability unformattable");
	seg = strrchr(path, '/');
	seg = seg ? seg + 1 : path;
	FUZZ_CHECK(streq(strrchr(url, '/') + 1, seg), "capability %s formats back as %s", seg, url);
}

static void check_body(const char *body, size_t size) {
	_cleanup_(json_object_putp) json_object *root = NULL, *again_root = NULL;
	RemoteRequest rr, untouched, again;
	int k;

	memset(&rr, 0xA5, sizeof rr);
	untouched = rr;
	k = callback_parse(body, size, &root, &rr);
	if (k < 0) {
		FUZZ_CHECK(k == -EBADMSG || k == -ENOMEM, "callback_parse: unexpected error %d", k);
		FUZZ_CHECK(memcmp(&rr, &untouched, sizeof rr) == 0, "callback_parse wrote on failure");
		FUZZ_CHECK(root == NULL, "callback_parse left a root on failure");
		return;
	}
	FUZZ_CHECK(size > 0 && size <= CALLBACK_BODY_MAX, "accepted a body of %zu bytes", size);
	FUZZ_CHECK(root != NULL, "no root");
	FUZZ_CHECK(apiparse_id_is_valid(rr.id), "accepted id %.30s", rr.id);
	FUZZ_CHECK(apiparse_status_is_final(rr.status), "accepted status %.16s", rr.status);
	FUZZ_CHECK(callback_parse(body, size, &again_root, &again) == 0, "second reading failed");
	FUZZ_CHECK(streq(again.id, rr.id) && streq(again.status, rr.status), "second reading differs");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	const char *text = (const char *) data;
	const char *nl = memchr(text, '\n', size);
	size_t plen = nl ? (size_t) (nl - text) : size;
	_cleanup_(freep) char *path = NULL;

	/* The path as libmicrohttpd hands it over: a C string. */
	path = strndup(text, plen);
	if (!path)
		return 0;
	check_path(path);
	if (nl)
		check_body(nl + 1, size - plen - 1);
	return 0;
}

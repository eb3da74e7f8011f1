/* callback.h — HITL.sh's per-request callbacks (docs/HITL-API.md "Callbacks"):
 * the capability that names one request in its callback URL, and the
 * reading of a callback's body. HITL.sh signs nothing it sends to a
 * request's callback_url, so the URL itself is the authentication: hitld
 * gives each create a URL ending in "<local id>.<token>", the token 256 bits
 * from getrandom(), kept with the record and compared in constant time.
 * Pure apart from callback_token_new() (getrandom); no clock. The fuzz target
 * tests/fuzz/fuzz_callback.c feeds callback_parse() and
 * callback_capability_parse(). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <json-c/json.h>

#include "apiparse.h"
#include "record.h"

#define CALLBACK_TOKEN_HEX 64                 /* 256 bits as lowercase hex */
#define CALLBACK_BODY_MAX (64U * 1024U)       /* a bigger body is refused (413) unread */
/* "<id>.<token>": the last path segment of a callback URL. */
#define CALLBACK_CAPABILITY_MAX (RECORD_ID_MAX + 1 + CALLBACK_TOKEN_HEX + 1)

/* A new token: CALLBACK_TOKEN_HEX lowercase hex digits and a NUL. -EIO if
 * getrandom() fails (never a weaker source). */
int callback_token_new(char ret[static CALLBACK_TOKEN_HEX + 1]);
/* Exactly CALLBACK_TOKEN_HEX lowercase hex digits? (What record_from_json
 * accepts for the stored token.) */
bool callback_token_is_valid(const char *s);
/* Equal tokens? Both must be valid; the time taken does not depend on where
 * they differ (CRYPTO_memcmp's rule), so a wrong guess teaches nothing. */
bool callback_token_equal(const char *a, const char *b);

/* public_url + "/" + id + "." + token (no second '/' after a public_url
 * ending in one), malloc'd. -EINVAL for a bad id or token. */
int callback_url_format(const char *public_url, const char *id, const char *token, char **ret);
/* From the path of a POST (what the reverse proxy forwarded, any prefix):
 * its last segment split into id and token. -ENOENT if it is not
 * "<valid id>.<valid token>" (a query string is not part of it: -ENOENT). */
int callback_capability_parse(const char *path, char ret_id[static RECORD_ID_MAX],
                              char ret_token[static CALLBACK_TOKEN_HEX + 1]);

/* A callback's body, read by the tolerant reader: the §6.1 object
 * ({event, request_id, status, response_data, response_by{user_id}, …}), or
 * the older account-webhook envelope {event, data: {request: {…}}}; unknown
 * fields are ignored. The status comes from "status", else from "event"
 * ("request.completed" → completed). Only a final outcome is a callback:
 * -EBADMSG for anything else (not one JSON object, no valid request_id, a
 * status that is not final, a body of 0 or over CALLBACK_BODY_MAX bytes, a
 * NUL, bad UTF-8, nesting deeper than 32). On success *ret_root holds the
 * parsed document and *ret borrows from it. */
int callback_parse(const char *body, size_t size, json_object **ret_root, RemoteRequest *ret);

/* inbox.c — see inbox.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "callback.h"
#include "cleanup.h"
#include "engine.h"
#include "inbox.h"
#include "log.h"
#include "webhook.h"

struct Inbox {
	Manager *manager;
	WebhookServer *server;
	char *listen;          /* webhook.listen as configured, NULL: off or activated */
	char address[64];      /* where the server listens (getsockname) */
	bool activated;        /* on the socket systemd passed (hitld-webhook.socket) */
};

/* The state a final callback status leads to. */
static RequestState state_of(const char *status) {
	if (streq(status, "completed"))
		return REQUEST_COMPLETED;
	if (streq(status, "timeout"))
		return REQUEST_TIMEOUT;
	if (streq(status, "cancelled"))
		return REQUEST_CANCELLED;
	if (streq(status, "failed"))
		return REQUEST_FAILED;
	return _REQUEST_STATE_INVALID;
}

static unsigned on_callback(const char *path, const char *body, size_t size, const char **ret_reason,
                            void *userdata) {
	Inbox *in = userdata;
	Manager *m = in->manager;
	_cleanup_(json_object_putp) json_object *root = NULL;
	char id[RECORD_ID_MAX], token[CALLBACK_TOKEN_HEX + 1];
	RemoteRequest rr;
	Record *r;
	int k;

	if (callback_capability_parse(path, id, token) < 0) {
		*ret_reason = "the URL is not a callback URL hitld gave out";
		return 404;
	}
	r = outbox_get(m->outbox, id);
	if (!r || !callback_token_equal(token, r->callback_token) || r->state == REQUEST_QUEUED) {
		*ret_reason = "no request has this callback URL (wrong token)";
		return 404;
	}
	if (callback_parse(body, size, &root, &rr) < 0) {
		*ret_reason = "the body is not a final callback (HITL-API.md, Callbacks)";
		return 400;
	}
	if (r->remote_id && !streq(r->remote_id, rr.id)) {
		*ret_reason = "the body names another HITL.sh request than this URL's";
		return 400;
	}
	if (request_state_is_terminal(r->state)) {
		/* HITL.sh may deliver twice: the same outcome again is fine. */
		if (state_of(rr.status) == r->state)
			return 200;
		*ret_reason = "the request already has another outcome (a used token)";
		return 404;
	}
	k = manager_apply_remote(m, r, &rr);
	if (k < 0) {
		*ret_reason = "the outcome could not be stored; HITL.sh should try again";
		return 503;
	}
	log_debug("Request %s: callback from HITL.sh applied (%s).", r->id, rr.status);
	return 200;
}

int inbox_new(Manager *m, Inbox **ret) {
	_cleanup_(freep) Inbox *in = NULL;
	_cleanup_(closep) int fd = TAKE_FD(m->webhook_fd);
	int k;

	in = calloc(1, sizeof *in);
	if (!in)
		return -ENOMEM;
	in->manager = m;
	if (fd >= 0 && !m->config->webhook_public_url) {
		log_warning("systemd passed a webhook socket (hitld-webhook.socket) but webhook.public_url is not set: "
		            "callbacks stay off.");
		*ret = TAKE_PTR(in);
		return 0;
	}
	if (fd >= 0) {
		if (m->config->webhook_listen)
			log_notice("webhook.listen %s is not used: systemd passed the webhook socket (hitld-webhook.socket).",
			           m->config->webhook_listen);
		in->activated = true;
	} else if (m->config->webhook_listen) {
		k = webhook_bind(m->config->webhook_listen, &fd);
		if (k < 0)
			return k;
		in->listen = strdup(m->config->webhook_listen);
		if (!in->listen)
			return -ENOMEM;
	} else {
		*ret = TAKE_PTR(in);
		return 0;
	}
	if (webhook_socket_address(fd, in->address, sizeof in->address) < 0)
		snprintf(in->address, sizeof in->address, "?");
	k = webhook_server_new(m->event, TAKE_FD(fd), m->config->webhook_max_connections, m->config->webhook_timeout_s,
	                       on_callback, in, &in->server);
	if (k < 0) {
		free(in->listen);
		return k;
	}
	log_info("Receiving HITL.sh's callbacks on %s%s for %s.", in->address,
	         in->activated ? " (socket activation)" : "", m->config->webhook_public_url);
	*ret = TAKE_PTR(in);
	return 0;
}

Inbox *inbox_free(Inbox *in) {
	if (!in)
		return NULL;
	webhook_server_free(in->server);
	free(in->listen);
	free(in);
	return NULL;
}

int inbox_callback_url(Manager *m, Record *r, char **ret_url) {
	Inbox *in = m->inbox;
	int k;

	*ret_url = NULL;
	if (!in || !in->server || !m->config->webhook_public_url)
		return 0;
	k = manager_need_params(m, r);
	if (k < 0)
		return k;
	if (json_object_object_get(r->params, "callback_url"))
		return 0;   /* the client's own receiver: polled as ever */
	if (!r->callback_token) {
		char token[CALLBACK_TOKEN_HEX + 1];

		k = callback_token_new(token);
		if (k < 0)
			return log_error_errno(k, "Failed to make a callback token for request %s: %m", r->id);
		r->callback_token = strdup(token);
		explicit_bzero(token, sizeof token);
		if (!r->callback_token)
			return -ENOMEM;
	}
	return callback_url_format(m->config->webhook_public_url, r->id, r->callback_token, ret_url);
}

bool inbox_receiving(Manager *m, usec_t *ret_last_at) {
	Inbox *in = m->inbox;
	const WebhookStats *st = in && in->server ? webhook_server_stats(in->server) : NULL;

	if (ret_last_at)
		*ret_last_at = st ? st->last_at : 0;
	return st && m->config->webhook_public_url;
}

void inbox_status_facts(Manager *m, StatusFacts *f) {
	Inbox *in = m->inbox;
	const WebhookStats *st = in && in->server ? webhook_server_stats(in->server) : NULL;
	StatusNumbers *n = &f->num;

	n->webhook_enabled = st != NULL;
	n->webhook_activated = st && in->activated;
	n->webhook_received = st ? (int64_t) st->received : 0;
	n->webhook_rejected = st ? (int64_t) st->rejected : 0;
	n->webhook_last_at = st ? (int64_t) st->last_at : 0;
	n->webhook_last_rejected_at = st ? (int64_t) st->last_rejected_at : 0;
	f->str[STATUS_WEBHOOK_LISTEN] = st ? in->address : NULL;
	f->str[STATUS_WEBHOOK_PUBLIC_URL] = st ? m->config->webhook_public_url : NULL;
}

void inbox_reload(Manager *m) {
	Inbox *in = m->inbox;

	if (in && in->server && !m->config->webhook_public_url)
		log_warning("webhook.public_url was removed: new requests are polled; the listener stays until "
		            "hitld restarts.");
}

/* manager.h — the daemon's one object: owns the event loop, the outbox, the
 * budget, the HITL.sh client and the socket server, and runs the remote work
 * (create, workflow trigger, poll, cancel, feedback, reconcile, key probe) one background call at
 * a time, when the budget allows. The socket methods (methods.h, remote.h)
 * act on it through the functions below; it never calls them: the methods
 * register their dispatcher (manager_set_dispatch) and a submit is answered
 * through the callback it was queued with (docs/ARCHITECTURE.md).
 * Promises of the work engine: a create is sent again only when it provably
 * did not happen (no 2xx, and a reconcile found nothing); a reconcile ends
 * within a bounded number of calls; every failed call backs off and an
 * outage is logged once; an error about the key, the account or the endpoint
 * (apierr.h) pauses creates and fails nothing (hitld(8), "When HITL.sh
 * refuses"); a refused key makes way for the standby key once HITL.sh has
 * accepted it, and a reply about a key since replaced changes nothing about
 * the current one (keyswitch.c, hitld(8) "Key rotation"). The engine is one
 * module in several files (engine.h lists them); this header is all the
 * layers above it see. */
#pragma once

#include <stdbool.h>
#include <systemd/sd-event.h>

#include "api.h"
#include "apierr.h"
#include "budget.h"
#include "config.h"
#include "config_keys.h"
#include "keylife.h"
#include "listener.h"
#include "outbox.h"
#include "plan.h"
#include "record.h"
#include "rpc.h"
#include "sched.h"
#include "secret.h"
#include "status_reply.h"
#include "usage_store.h"

typedef enum KeyState {
	KEY_MISSING,   /* no source had a key */
	KEY_UNKNOWN,   /* loaded, not yet used */
	KEY_VALID,     /* the server accepted it */
	KEY_INVALID,   /* the server said 401: all remote traffic stopped, probing */
	_KEY_STATE_MAX,
	_KEY_STATE_INVALID = -EINVAL,
} KeyState;


/* The standby key (keyswitch.c; hitld(8), "Key rotation"). */
typedef enum StandbyState {
	STANDBY_NONE,      /* no standby key is loaded */
	STANDBY_LOADED,    /* loaded, not tested yet */
	STANDBY_TESTING,   /* GET /test with it is in flight */
	STANDBY_REFUSED,   /* HITL.sh refused it: never switched to until a reload loads one again */
	_STANDBY_STATE_MAX,
	_STANDBY_STATE_INVALID = -EINVAL,
} StandbyState;

typedef struct Manager Manager;
/* The end of a `key.rotate`: error 0, the standby key is the current key now;
 * else why not (-ENOKEY no standby, -EKEYREJECTED HITL.sh refused it, -EIO
 * the test had no usable reply), msg in words. */
typedef void (*manager_key_rotated_t)(Manager *m, int error, const char *msg, void *userdata);

/* The key's lifecycle: its age, the standby key, switches (keyswitch.c). */
typedef struct KeySwitch {
	KeyLife life;             /* STATE_DIR/keys.json */
	bool life_loaded;
	StandbyState standby;
	SecretSource standby_source;
	char *standby_error;      /* why the standby was refused, or NULL */
	ApiCall *test_call;       /* the standby's GET /test */
	char *test_reason;        /* why it is being tested */
	manager_key_rotated_t rotated;  /* a key.rotate waits for test_call */
	void *rotated_userdata;
	bool on_standby;          /* the current key came from the standby */
	usec_t switched_at;
	char *switch_reason;
	bool identify_tried;      /* the identity GET /test went for this key */
	bool worked;              /* the current key had a reply other than a refusal */
	usec_t worked_at;
	bool loss_logged;         /* "refused after it had worked": said for this refusal */
	bool retired_logged;      /* "a retired key is in use" said for this key */
	usec_t notice_at;         /* the age notice was given (this process) */
	sd_event_source *notice_timer;
} KeySwitch;

typedef struct Telemetry Telemetry;
typedef struct Waiter Waiter;
typedef struct Inbox Inbox;
typedef struct PendingSubmit PendingSubmit;
typedef struct Watch Watch;

/* A loop whose creates pause (HITL.sh: no active members), until a probe. */
struct LoopPause {
	char loop_id[64];
	char *reason;
	usec_t until;          /* the next create in the loop may go then (the probe) */
	unsigned failures;
};

typedef struct ManagerOptions {
	const char *config_path;
	bool config_must_exist;
	const char *socket_path;   /* override, or NULL */
	const char *state_dir;     /* override, or NULL */
} ManagerOptions;

struct Manager {
	sd_event *event;
	ManagerOptions options;
	Config *config;
	char *socket_path;         /* effective; owned: a reload frees the old config */
	char *state_dir;           /* effective; owned */
	int state_lock_fd;         /* flock on state_dir/hitld.lock, held for the process's life */

	Outbox *outbox;
	Budget budget;
	SchedState sched;
	ApiClient *api;
	RpcServer *rpc;
	int listen_fd;
	bool listen_inherited;
	ListenerFile socket_file;  /* the socket file we bound, watched by socket_timer */
	sd_event_source *socket_timer;

	sd_event_source *work_timer;
	sd_event_source *status_defer;
	bool shutting_down;
	bool paused;
	usec_t started_at;

	/* The one background call in flight. */
	ApiCall *work_call;
	WorkKind work_kind;
	char work_record[RECORD_ID_MAX];
	char *work_loop;           /* poll by loop: the loop being listed */
	unsigned consecutive_failures;
	usec_t backoff_until;
	bool outage_logged;        /* this failure streak was logged (once per outage) */
	usec_t last_attempt_at;    /* the last background call started */
	usec_t last_error_at;

	/* Reconcile of one record (rec_id): bounded pages and reads. */
	char rec_id[RECORD_ID_MAX];
	unsigned rec_offset, rec_calls;
	bool rec_listing_done;     /* the listing reached requests older than the record */
	char rec_candidates[8][25];
	size_t n_rec_candidates, rec_next_candidate;

	/* The circuit breaker: creates pause for an error about the key, the
	 * account or the endpoint (apierr.h); probed with backoff. */
	ApiErrClass breaker;       /* APIERR_NONE: closed */
	char *breaker_reason;
	usec_t breaker_since, breaker_probe_at;
	unsigned breaker_failures;
	bool breaker_by_create;    /* opened by a create: only a create closes it */
	/* Loops whose creates pause (no active members). */
	struct LoopPause *loop_pauses;
	size_t n_loop_pauses;
	/* Identical create refusals in a row, for different requests. */
	long repeat_status;
	char *repeat_msg;
	unsigned repeat_count;

	/* Polling. */
	usec_t next_poll_at;       /* 0: nothing pending was seen yet */
	bool poll_in_round;        /* a list round is under way (more pages to come) */
	uint64_t poll_round;
	usec_t poll_round_started_at;
	unsigned poll_offset;      /* list paging within one round */
	unsigned poll_pages;
	/* While callbacks arrive, polls sweep (sweep.h). */
	PollState poll_state;
	usec_t last_poll_at;       /* the last poll call started */
	usec_t poll_miss_at;       /* a poll last found final a request with hitld's callback URL */

	/* Key and API health. */
	KeyState key_state;
	SecretSource key_source;
	char *key_error;
	/* The last key load (start or reload), for daemon.reload's reply: 0
	 * loaded, -ENOKEY no source had a key, else why the key was refused;
	 * key_load_kept: the previous key stayed in use. */
	int key_load_result;
	bool key_load_kept;
	/* The last reload's changed keys that wait for the next start
	 * (config_keys.h), for daemon.reload's reply. */
	const char *restart_needed[CONFIG_KEYS_N];
	size_t n_restart_needed;
	char *api_key_id;
	usec_t key_changed_at;     /* a reload loaded a key (perhaps another one) */
	unsigned probe_failures;
	usec_t next_probe_at;
	bool reachable;
	usec_t last_ok_at;
	usec_t budget_spent_window;  /* window_end of the last MID_BUDGET_EXHAUSTED entry */
	/* The usage history (accounting.c) and the last MID_FOREIGN_USE entry's window and count. */
	UsageStore *usage;
	int64_t foreign_logged_window;
	uint32_t foreign_logged;
	char *last_error;

	Waiter *waiters;
	Watch *watches;
	usec_t positions_at;       /* monotonic time of the queue position snapshot */
	/* Group commit: submits accepted in this loop iteration, made durable
	 * together and only then acknowledged. */
	PendingSubmit *pending;
	size_t n_pending;
	sd_event_source *commit_defer;
	sd_event_source *commit_timer;

	Telemetry *telemetry;      /* forecasts, warnings, metrics (telemetry.h) */
	/* HITL.sh's callbacks (inbox.h): the webhook listener and its counts;
	 * the socket systemd passed for it (hitld-webhook.socket) until inbox
	 * takes it, else -EBADF. */
	Inbox *inbox;
	int webhook_fd;

	/* The socket server's dispatcher, registered by the methods layer. */
	rpc_dispatch_t dispatch;
	void *dispatch_userdata;
	uint64_t rng;

	KeySwitch ks;
};

int manager_new(const ManagerOptions *options, Manager **ret);
Manager *manager_free(Manager *m);
static inline void manager_freep(Manager **m) {
	if (*m)
		manager_free(*m);
}

/* Who answers the socket's calls (the methods layer registers itself:
 * methods_new()). Before manager_startup(), which refuses to start without. */
void manager_set_dispatch(Manager *m, rpc_dispatch_t dispatch, void *userdata);

/* Loads config, key, outbox, socket; then READY=1. */
int manager_startup(Manager *m);
int manager_run(Manager *m);

/* Re-reads config and key (SIGHUP, daemon.reload). Keeps the old ones on
 * error. Applies every key config_keys.h marks reload (the budget's to the
 * window in progress, budget_reconfigure()); a changed start-only key keeps
 * its value in m->config and is named in one warning and in
 * restart_needed. */
int manager_reload(Manager *m);

/* Has the socket file we bound been removed or replaced (checked now; logged once)? Always
 * false for a socket passed by systemd. */
bool manager_socket_replaced(Manager *m);

/* Something changed that may give the scheduler work: run it soon. */
void manager_kick(Manager *m);

/* A record changed state or content: persist it, tell waiters and watchers.
 * Returns the outbox error if it could not be made durable. */
int manager_record_changed(Manager *m, Record *r);

/* r was changed and saved by the caller: tell waiters and watchers, rerun
 * the scheduler. For changes a client asked for, which must be durable
 * before anyone hears of them. */
void manager_record_saved(Manager *m, Record *r);

/* The client form of r (PROTOCOL.md §3), params read back if needed. */
int manager_record_json(Manager *m, Record *r, json_object **ret);
/* r->params made available (see outbox_need_params). */
int manager_need_params(Manager *m, Record *r);

/* Tells waiters and watchers about r (already saved). */
void manager_notify(Manager *m, Record *r);

/* The end of a queued submit: error 0, r is durable and in the outbox (the
 * callback answers the client, then waiters and watchers hear of it); error
 * < 0, r could not be stored (logged) and is freed when the callback returns. */
typedef void (*manager_submitted_t)(Manager *m, Record *r, int error, void *userdata);
/* Queues a new record for the next group commit, which calls done once it is
 * durable or failed (sd-event and libcurl style: the engine calls back, it
 * does not know who asked). Takes r on success. */
int manager_submit(Manager *m, Record *r, manager_submitted_t done, void *userdata);
/* Makes every queued submit durable now and calls each one's done. */
void manager_commit(Manager *m);
/* Queued (not yet durable) submits of uid, and the one with this client_ref. */
size_t manager_pending_of_uid(Manager *m, uid_t uid);
Record *manager_pending_client_ref(Manager *m, uid_t uid, const char *client_ref);

/* Is the peer an administrator (uid 0, the daemon's uid, socket.admin_group)? */
bool manager_peer_is_admin(Manager *m, uid_t uid, gid_t gid);

/* Waiting and watching (notify.c; methods_request.c and methods.c use these). */
int manager_add_waiter(Manager *m, RpcCall *call, Record *r, usec_t timeout);
int manager_add_watch(Manager *m, RpcConn *conn, uid_t uid, bool admin, json_object *ids, size_t *ret_count);

/* Every HITL.sh response passes through here: budget, 429 pause, key
 * validity and API health are updated from it. */
void manager_observe_response(Manager *m, const ApiResult *res);
/* Counts a call about to be made against the budget (persisted). */
void manager_charge(Manager *m, CallKind kind);
/* Counts a client's interactive call about to be made, and charges it to uid's
 * share (none for an admin); persisted with the ledger. */
void manager_charge_interactive(Manager *m, uid_t uid, bool admin);

/* key.test (remote.c) is about to ask HITL.sh about the key: a key it
 * refused may be the very thing being tested, so the probe is allowed. */
void manager_key_test_begin(Manager *m);
/* What key.test learnt: the key's id at HITL.sh (NULL: not said). */
void manager_set_api_key_id(Manager *m, const char *id);

/* `key.rotate`: tests the standby key with GET /test and, if HITL.sh accepts
 * it, makes it the current key; done is called once either way (not after
 * manager_key_rotate_forget()). -ENOKEY: no standby is loaded; -EBUSY: a
 * test of it is under way already (done is not called then). */
int manager_key_rotate(Manager *m, manager_key_rotated_t done, void *userdata);
/* The client that asked has gone: done is not called. */
void manager_key_rotate_forget(Manager *m, void *userdata);
const char *standby_state_to_string(StandbyState s);

double manager_random(Manager *m);   /* in [0, 1) */
void manager_set_paused(Manager *m, bool paused);

/* accounting.c: the `usage` method (PROTOCOL.md; a non-admin sees its own
 * calls only) and the facts of status's api.foreign (status_reply.h). */
void accounting_method_usage(Manager *m, RpcCall *call, bool admin);
void accounting_status_facts(Manager *m, StatusNumbers *n);

const char *key_state_to_string(KeyState s);

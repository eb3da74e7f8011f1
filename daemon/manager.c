/* manager.c — see manager.h: the Manager's life (start, reload, signals,
 * shutdown), its configuration and key, the socket it listens on, and the
 * records it changes (persisted, logged, failed). The remote work is in
 * work.c and outcome.c, the rest of the engine in the files engine.h names. */
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>
#include <systemd/sd-daemon.h>

#include "cleanup.h"
#include "commit.h"
#include "engine.h"
#include "inbox.h"
#include "listener.h"
#include "log.h"
#include "manager.h"
#include "msgid.h"
#include "notify.h"
#include "persist.h"
#include "precedence.h"
#include "statelock.h"
#include "sweep.h"
#include "telemetry.h"
#include "work.h"

#define SHUTDOWN_GRACE (5 * USEC_PER_SEC)
#define SOCKET_CHECK_INTERVAL (5 * USEC_PER_SEC)   /* an lstat() every 5 s */
/* What a connection may have unsent, and calls it may have unanswered
 * (PROTOCOL.md §2, §7); the rest of the socket's bounds are configured. */
#define SOCKET_MAX_OUTPUT_BYTES (4 * 1024 * 1024)
#define SOCKET_MAX_PENDING_CALLS 64

static const char *const key_state_table[_KEY_STATE_MAX] = {
	[KEY_MISSING] = "missing",
	[KEY_UNKNOWN] = "unknown",
	[KEY_VALID] = "valid",
	[KEY_INVALID] = "invalid",
};

const char *key_state_to_string(KeyState s) {
	return s >= 0 && s < _KEY_STATE_MAX ? key_state_table[s] : NULL;
}

double manager_random(Manager *m) {
	/* xorshift64*: jitter only, never security. */
	m->rng ^= m->rng >> 12;
	m->rng ^= m->rng << 25;
	m->rng ^= m->rng >> 27;
	return (double) ((m->rng * 0x2545F4914F6CDD1DULL) >> 11) / (double) (1ULL << 53);
}

static void set_string(char **p, const char *s) {
	free(*p);
	*p = s ? strdup(s) : NULL;
}

int manager_need_params(Manager *m, Record *r) {
	int k = outbox_need_params(m->outbox, r);

	if (k < 0)
		log_error_errno(k, "Failed to read back request %s from the state directory: %m", r->id);
	return k;
}

int manager_record_json(Manager *m, Record *r, json_object **ret) {
	int k = manager_need_params(m, r);

	if (k < 0)
		return k;
	return record_to_protocol(r, ret);
}

/* ------------------------------------------------------------------ records */

void manager_record_saved(Manager *m, Record *r) {
	manager_notify(m, r);
	manager_status_changed(m);
	manager_kick(m);
}

int manager_record_changed(Manager *m, Record *r) {
	int k;

	free(r->protocol_text);
	r->protocol_text = NULL;
	r->updated_at = now_realtime();
	k = outbox_save(m->outbox, r);
	if (k < 0)
		log_error_errno(k, "Failed to save request %s: %m", r->id);
	/* Even an unsaved change is the truth in memory; the next save retries. */
	manager_record_saved(m, r);
	return k;
}

void request_log_full(const char *code_file, const char *code_line, const char *func, Manager *m,
                             Record *r, int prio, const char *mid, const char *fmt, ...) {
	char uid[16], status[8] = "";
	va_list ap;

	snprintf(uid, sizeof uid, "%u", (unsigned) r->owner_uid);
	if (r->error && json_object_object_get(r->error, "http_status"))
		snprintf(status, sizeof status, "%d",
		         json_object_get_int(json_object_object_get(r->error, "http_status")));
	va_start(ap, fmt);
	log_internalv_full(code_file, code_line, func, prio, 0, mid,
	                   LOG_FIELDS({ "HITL_REQUEST_ID", r->id }, { "HITL_REMOTE_ID", r->remote_id },
	                              { "HITL_LOOP_ID", r->loop_id }, { "HITL_UID", uid },
	                              { "HITL_STATE", request_state_to_string(r->state) },
	                              { "HITL_HTTP_STATUS", status[0] ? status : NULL }),
	                   fmt, ap);
	va_end(ap);
}

/* The one way the engine fails a request (engine.h). */
int manager_fail_request_full(const char *code_file, const char *code_line, const char *func, Manager *m, Record *r,
                              const char *code, const char *message, long http_status, bool unsent, const char *why) {
	int k;

	k = record_fail(r, code, message, http_status, unsent);
	if (k < 0)
		return k;
	request_log_full(code_file, code_line, func, m, r, LOG_WARNING, MID_REQUEST_FAILED, "Request %s failed: %s", r->id,
	                 why);
	manager_record_changed(m, r);
	return 0;
}

void trigger_log_full(const char *code_file, const char *code_line, const char *func, Manager *m,
                             Record *r, int prio, const char *mid, const char *fmt, ...) {
	char uid[16];
	va_list ap;

	snprintf(uid, sizeof uid, "%u", (unsigned) r->owner_uid);
	va_start(ap, fmt);
	log_internalv_full(code_file, code_line, func, prio, 0, mid,
	                   LOG_FIELDS({ "HITL_REQUEST_ID", r->id }, { "HITL_WORKFLOW_ID", r->loop_id },
	                              { "HITL_UID", uid }, { "HITL_STATE", request_state_to_string(r->state) },
	                              { "HITL_EXECUTION_ID",
	                                json_object_get_string(json_object_object_get(r->result, "execution_id")) }),
	                   fmt, ap);
	va_end(ap);
}

/* For health.c and reconcile.c (engine.h). */
void manager_set_string(char **p, const char *s) {
	set_string(p, s);
}

void manager_set_dispatch(Manager *m, rpc_dispatch_t dispatch, void *userdata) {
	m->dispatch = dispatch;
	m->dispatch_userdata = userdata;
}

void manager_key_test_begin(Manager *m) {
	if (m->key_state == KEY_INVALID)
		m->key_state = KEY_UNKNOWN;
}

void manager_set_api_key_id(Manager *m, const char *id) {
	keyswitch_identified(m, id);
}

/* ------------------------------------------------------------------ admin check */

bool manager_peer_is_admin(Manager *m, uid_t uid, gid_t gid) {
	const char *group = m->config->socket_admin_group;
	struct group *gr;
	struct passwd *pw;
	gid_t groups[256];
	int n = (int) ELEMENTSOF(groups);

	if (uid == 0 || uid == geteuid())
		return true;
	if (!group || !*group)
		return false;
	gr = getgrnam(group);
	if (!gr)
		return false;
	if (gid == gr->gr_gid)
		return true;
	pw = getpwuid(uid);
	if (!pw)
		return false;
	if (getgrouplist(pw->pw_name, pw->pw_gid, groups, &n) < 0)
		return false;
	for (int i = 0; i < n; i++)
		if (groups[i] == gr->gr_gid)
			return true;
	return false;
}

/* ------------------------------------------------------------------ life cycle */

/* After damage in the log, a queued record may really have been
 * "submitting" or later (the newer entries were in the damaged bytes):
 * only a reconcile can tell, never a second create. It reconciles against
 * what HITL.sh created since its newest surviving entry. */
static void suspect_damaged(Manager *m) {
	size_t n = 0;
	bool durable = true;

	for (Record *r = outbox_first(m->outbox); r; r = outbox_next(m->outbox, r)) {
		if (!r->log_damaged_after || record_mark_suspect(r) < 0)
			continue;
		if (manager_record_changed(m, r) < 0)
			/* Still reconciled in this run; the damage stays in the
			 * log, so the next start finds it again. */
			durable = false;
		n++;
	}
	if (durable)
		outbox_release_damaged(m->outbox);
	if (n > 0)
		log_event(LOG_WARNING, MID_RECONCILED, LOG_NO_FIELDS,
		          "The outbox log was damaged after the newest entry of %zu queued requests: they may have been "
		          "sent already, so each is reconciled with HITL.sh before it is created.", n);
}

static void config_freep(Config **c) {
	if (*c)
		config_free(*c);
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
	Manager *m = userdata;

	if (si->ssi_signo == SIGHUP) {
		(void) manager_reload(m);
		return 0;
	}

	if (m->shutting_down)
		return 0;
	/* What was received is made durable and acknowledged before we go. */
	manager_commit(m);
	m->shutting_down = true;
	sd_notify(false, "STOPPING=1\nSTATUS=Shutting down.");
	log_event(LOG_INFO, MID_DAEMON_STOPPING, LOG_NO_FIELDS, "Shutting down (signal %u).", si->ssi_signo);
	rpc_server_stop_reading(m->rpc);
	sd_event_source_set_enabled(m->work_timer, SD_EVENT_OFF);

	/* Anyone still waiting hears why. */
	notify_end_waiters(m);

	if (!m->work_call)
		return sd_event_exit(m->event, 0);
	/* Give the call in flight a moment to finish so its outcome is recorded. */
	return sd_event_add_time_relative(m->event, NULL, CLOCK_MONOTONIC, SHUTDOWN_GRACE, USEC_PER_MSEC,
	                                  NULL, NULL);
}

/* A writer of the socket's directory could put its own socket in our place; notice it. */
static int on_socket_timer(sd_event_source *s, uint64_t usec, void *userdata) {
	Manager *m = userdata;

	if (manager_socket_replaced(m)) {
		manager_status_changed(m);
		return sd_event_source_set_enabled(s, SD_EVENT_OFF);
	}
	return sd_event_source_set_time_relative(s, SOCKET_CHECK_INTERVAL);
}

bool manager_socket_replaced(Manager *m) {
	if (m->listen_inherited || m->listen_fd < 0)
		return false;
	return listener_verify(m->socket_path, &m->socket_file) < 0;
}

/* Administrators are not held to the per-uid share of the loop's time. */
static bool rpc_exempt_admin(uid_t uid, gid_t gid, void *userdata) {
	return manager_peer_is_admin(userdata, uid, gid);
}

/* The socket server's bounds from the configuration, at start and on reload. */
static RpcLimits socket_limits(const Config *c) {
	return (RpcLimits) {
		.max_message_bytes = c->socket_max_message_bytes,
		.max_output_bytes = SOCKET_MAX_OUTPUT_BYTES,
		.max_connections = c->socket_max_connections,
		.max_connections_per_uid = c->socket_max_connections_per_uid,
		.idle_timeout = (usec_t) c->socket_idle_timeout_s * USEC_PER_SEC,
		.max_pending_calls = SOCKET_MAX_PENDING_CALLS,
		.max_output_bytes_per_uid = (size_t) c->socket_max_output_mb_per_uid * 1024 * 1024,
		.max_output_bytes_total = (size_t) c->socket_max_output_mb_total * 1024 * 1024,
		.max_input_bytes_per_uid = (size_t) c->socket_max_input_mb_per_uid * 1024 * 1024,
		.max_input_bytes_total = (size_t) c->socket_max_input_mb_total * 1024 * 1024,
		.cpu_percent_per_uid = c->socket_cpu_percent_per_uid,
	};
}

static BudgetConfig budget_config(const Config *c) {
	return (BudgetConfig) {
		.limit_per_hour = c->budget_limit_per_hour,
		.poll_reserve = c->budget_poll_reserve,
		.window = (usec_t) c->budget_window_s * USEC_PER_SEC,
		.interactive_per_uid = c->budget_interactive_per_uid,
		.interactive_total = c->budget_interactive_total,
	};
}

/* What a reload applies beyond the keys read where they are used
 * (config_keys.h). */
static void apply_config(Manager *m) {
	RpcLimits limits = socket_limits(m->config);
	BudgetConfig bc = budget_config(m->config);
	usec_t now = now_realtime(), poll_at;

	log_set_max_level(m->config->log_level);
	budget_reconfigure(&m->budget, &bc, now);
	if (m->rpc) {
		rpc_server_set_limits(m->rpc, &limits);
		/* socket.admin_group: the open connections' exemption too. */
		rpc_server_set_exempt(m->rpc, rpc_exempt_admin, m);
	}
	outbox_set_min_free(m->outbox, (uint64_t) m->config->outbox_min_free_mb * 1024 * 1024);
	/* A shorter poll interval applies to the poll already planned too. */
	poll_at = usec_add(now, plan_poll_interval(&m->budget, (usec_t) m->config->budget_min_poll_interval_s * USEC_PER_SEC,
	                                           now, outbox_count_state(m->outbox, REQUEST_QUEUED)));
	if (m->next_poll_at > poll_at)
		m->next_poll_at = poll_at;
}

/* One warning names every changed key that waits for the next start. */
static void log_restart_needed(Manager *m) {
	char keys[CONFIG_KEYS_N * 40] = "";
	size_t len = 0;

	if (m->n_restart_needed == 0)
		return;
	for (size_t i = 0; i < m->n_restart_needed; i++)
		len += (size_t) snprintf(keys + len, len < sizeof keys ? sizeof keys - len : 0, "%s%s",
		                         i > 0 ? ", " : "", m->restart_needed[i]);
	log_event(LOG_WARNING, MID_CONFIG_RESTART_NEEDED, LOG_FIELDS({ "HITL_CONFIG_KEYS", keys }),
	          "Reload: changes to %s take effect at the next start (systemctl restart hitld).", keys);
}

static int load_key(Manager *m, bool reload) {
	_cleanup_(erase_and_freep) char *key = NULL;
	SecretSource source;
	int k;

	k = secret_load(m->config->api_key_file, &key, &source);
	m->key_load_result = k < 0 ? k : 0;
	m->key_load_kept = k < 0 && reload && api_has_key(m->api);
	if (k == -ENOKEY) {
		if (reload && api_has_key(m->api)) {
			log_warning("No API key found on reload; keeping the current one.");
			return 0;
		}
		log_error("No API key: set LoadCredential=hitl-api-key:… in the unit, api.key_file in %s, or HITL_API_KEY. "
		          "Requests are accepted and queued until a key is supplied (systemctl reload hitld).",
		          m->config->path ? m->config->path : "the configuration");
		m->key_state = KEY_MISSING;
		return 0;
	}
	if (k < 0) {
		if (reload && api_has_key(m->api)) {
			log_warning("The new API key was refused; keeping the current one.");
			return 0;
		}
		m->key_state = KEY_MISSING;
		return k;
	}
	k = api_set_key(m->api, key);
	if (k < 0) {
		m->key_load_result = k;
		m->key_load_kept = reload && api_has_key(m->api);
		return k;
	}
	m->key_source = source;
	m->key_state = KEY_UNKNOWN;
	keyswitch_key_loaded(m);
	if (reload)
		/* The listing a reconcile reads shows only this key's requests. */
		m->key_changed_at = now_realtime();
	m->probe_failures = 0;
	m->next_probe_at = 0;
	set_string(&m->key_error, NULL);
	set_string(&m->api_key_id, NULL);
	log_event(LOG_INFO, MID_KEY_LOADED, LOG_FIELDS({ "HITL_KEY_SOURCE", secret_source_to_string(source) }),
	          "API key %s from the %s.", reload ? "reloaded" : "loaded", secret_source_to_string(source));
	return 0;
}

int manager_reload(Manager *m) {
	_cleanup_(config_freep) Config *c = NULL;
	_cleanup_(freep) char *error = NULL;
	int k;

	sd_notify(false, "RELOADING=1\nSTATUS=Reloading configuration.");
	k = config_load(m->options.config_path, m->options.config_must_exist, &c, &error);
	if (k < 0)
		log_error("Reload failed, keeping the current configuration: %s", error ? error : strerror(-k));
	else {
		/* What is bound at start stays as it is (config_keys.h says
		 * which keys): m->config holds what is in effect. */
		m->n_restart_needed = config_reload_keep(c, m->config, m->restart_needed);
		log_restart_needed(m);
		config_free(m->config);
		m->config = TAKE_PTR(c);
		apply_config(m);
		telemetry_reload(m->telemetry);
		inbox_reload(m);
		log_event(LOG_INFO, MID_CONFIG_RELOADED, LOG_NO_FIELDS, "Configuration reloaded.");
	}
	(void) load_key(m, true);
	keyswitch_load_standby(m, true);
	sd_notify(false, "READY=1");
	manager_status_changed(m);
	manager_kick(m);
	return k;
}

int manager_new(const ManagerOptions *options, Manager **ret) {
	_cleanup_(manager_freep) Manager *m = NULL;
	int k;

	m = calloc(1, sizeof *m);
	if (!m)
		return -ENOMEM;
	m->options = *options;
	m->listen_fd = -EBADF;
	m->webhook_fd = -EBADF;
	m->state_lock_fd = -EBADF;
	if (getrandom(&m->rng, sizeof m->rng, 0) != sizeof m->rng || m->rng == 0)
		m->rng = now_monotonic() | 1;

	k = sd_event_default(&m->event);
	if (k < 0)
		return k;
	*ret = TAKE_PTR(m);
	return 0;
}

/* The configuration, and the paths it names unless the command line did. */
static int startup_config(Manager *m) {
	_cleanup_(freep) char *error = NULL;
	int k;

	k = config_load(m->options.config_path, m->options.config_must_exist, &m->config, &error);
	if (k < 0) {
		log_error("%s", error ? error : "Failed to load the configuration.");
		return k;
	}
	log_set_max_level(m->config->log_level);
	m->socket_path = strdup(m->options.socket_path ? m->options.socket_path : m->config->socket_path);
	m->state_dir = strdup(m->options.state_dir ? m->options.state_dir : m->config->outbox_state_dir);
	if (!m->socket_path || !m->state_dir)
		return log_error_errno(ENOMEM, "Out of memory.");
	return 0;
}

static void startup_signals(Manager *m) {
	sigset_t mask;

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	(void) sd_event_add_signal(m->event, NULL, SIGTERM, on_signal, m);
	(void) sd_event_add_signal(m->event, NULL, SIGINT, on_signal, m);
	(void) sd_event_add_signal(m->event, NULL, SIGHUP, on_signal, m);
	(void) sd_event_set_watchdog(m->event, true);
}

/* The HITL.sh client and its key. */
static int startup_api(Manager *m) {
	ApiConfig api_config = {
		.base_url = m->config->api_base_url,
		.ca_file = m->config->api_ca_file,
		.timeout_s = m->config->api_timeout_s,
	};
	int k;

	k = api_new(m->event, &api_config, &m->api);
	if (k < 0)
		return log_error_errno(k, "Refusing api.base_url %s: %m", m->config->api_base_url);
	k = load_key(m, false);
	if (k < 0)
		return k;
	keyswitch_load_standby(m, false);
	return 0;
}

/* The outbox (damage reconciled before any create), the usage history, the
 * budget ledger and the pause flag. */
static int startup_state(Manager *m, usec_t now) {
	BudgetConfig bc = budget_config(m->config);
	int k;

	k = outbox_open(m->state_dir, &m->outbox);
	if (k < 0)
		return log_error_errno(k, "Failed to open the outbox in %s: %m", m->state_dir);
	outbox_set_min_free(m->outbox, (uint64_t) m->config->outbox_min_free_mb * 1024 * 1024);
	suspect_damaged(m);
	k = accounting_start(m);
	if (k < 0)
		return k;

	budget_init(&m->budget, &bc, now);
	precedence_attach(m);
	persist_load(m);
	return 0;
}

/* The control socket (inherited or bound, then watched) and its server. */
static int startup_socket(Manager *m) {
	RpcLimits limits = socket_limits(m->config);
	gid_t gid = (gid_t) -1;
	int k;

	if (m->config->socket_group && *m->config->socket_group) {
		struct group *gr = getgrnam(m->config->socket_group);
		if (gr)
			gid = gr->gr_gid;
		else
			log_warning("socket.group %s does not exist; leaving the socket's group as it is.",
			            m->config->socket_group);
	}
	k = listener_open_all(m->socket_path, m->config->socket_mode, gid, &m->listen_fd, &m->listen_inherited,
	                      &m->webhook_fd);
	if (k < 0)
		return log_error_errno(k, "Failed to listen on %s: %m", m->socket_path);
	if (!m->listen_inherited) {
		k = listener_identify(m->socket_path, &m->socket_file);
		if (k < 0)
			return log_error_errno(k, "Cannot examine the socket %s just bound: %m", m->socket_path);
		k = sd_event_add_time_relative(m->event, &m->socket_timer, CLOCK_MONOTONIC, SOCKET_CHECK_INTERVAL,
		                               USEC_PER_SEC, on_socket_timer, m);
		if (k < 0)
			return k;
	}

	if (!m->dispatch)
		return log_error_errno(-EINVAL, "No socket methods were registered.");
	k = rpc_server_new(m->event, m->listen_fd, &limits, m->dispatch, m->dispatch_userdata, &m->rpc);
	if (k < 0)
		return log_error_errno(k, "Failed to set up the socket server: %m");
	rpc_server_set_exempt(m->rpc, rpc_exempt_admin, m);
	return 0;
}

static void log_started(Manager *m) {
	char queued[16], pending[16];

	snprintf(queued, sizeof queued, "%zu", outbox_count_state(m->outbox, REQUEST_QUEUED));
	snprintf(pending, sizeof pending, "%zu", outbox_count_state(m->outbox, REQUEST_PENDING));
	log_event(LOG_INFO, MID_DAEMON_STARTED, LOG_FIELDS({ "HITL_QUEUED", queued }, { "HITL_PENDING", pending }),
	          "hitld %s started: %zu requests recovered (%s queued, %s pending, %u quarantined), listening on %s%s.",
	          HITLD_VERSION, outbox_size(m->outbox), queued, pending, outbox_quarantined(m->outbox),
	          m->socket_path, m->listen_inherited ? " (socket activation)" : "");
}

int manager_startup(Manager *m) {
	usec_t now = now_realtime();
	int k;

	k = startup_config(m);
	if (k < 0)
		return k;
	m->started_at = now;
	startup_signals(m);

	/* Before anything reads or writes the state: one hitld per state directory. */
	m->state_lock_fd = statelock_acquire(m->state_dir);
	if (m->state_lock_fd < 0)
		return m->state_lock_fd;

	k = startup_api(m);
	if (k < 0)
		return k;
	k = startup_state(m, now);
	if (k < 0)
		return k;
	k = startup_socket(m);
	if (k < 0)
		return k;

	k = work_setup(m);
	if (k < 0)
		return k;
	k = notify_start(m);
	if (k < 0)
		return k;
	k = commit_start(m);
	if (k < 0)
		return k;
	k = telemetry_new(m, &m->telemetry);
	if (k < 0)
		return k;
	k = inbox_new(m, &m->inbox);
	if (k < 0)
		return log_error_errno(k, "Failed to set up the webhook listener: %m");
	sweep_init(m, now_realtime());

	log_started(m);
	notify_status_now(m);
	sd_notify(false, "READY=1");
	return 0;
}

int manager_run(Manager *m) {
	return sd_event_loop(m->event);
}

Manager *manager_free(Manager *m) {
	if (!m)
		return NULL;
	notify_end_waiters(m);
	m->rpc = rpc_server_free(m->rpc);   /* frees watches through their connections */
	m->inbox = inbox_free(m->inbox);
	closep(&m->webhook_fd);
	sd_event_source_disable_unref(m->socket_timer);
	/* A replaced socket file is someone else's now: leave it for whoever looks into it. */
	if (m->listen_fd >= 0)
		listener_close(m->listen_fd, listener_verify(m->socket_path, &m->socket_file) < 0 ? NULL : m->socket_path,
		               m->listen_inherited);
	keyswitch_free(m);
	accounting_stop(m);
	m->api = api_free(m->api);
	sd_event_source_disable_unref(m->work_timer);
	sd_event_source_disable_unref(m->status_defer);
	commit_free(m);
	m->telemetry = telemetry_free(m->telemetry);
	m->outbox = outbox_free(m->outbox);
	config_free(m->config);
	free(m->work_loop);
	free(m->key_error);
	free(m->api_key_id);
	free(m->last_error);
	free(m->breaker_reason);
	free(m->repeat_msg);
	for (size_t i = 0; i < m->n_loop_pauses; i++)
		free(m->loop_pauses[i].reason);
	free(m->loop_pauses);
	free(m->socket_path);
	free(m->state_dir);
	closep(&m->state_lock_fd);   /* last: the outbox is closed */
	sd_event_unref(m->event);
	free(m);
	return NULL;
}

/* Configuration: defaults, strict reading of /etc/hitld/hitld.conf with
 * errors that name file, line and key, and a dump that reads back the same. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>
#include <syslog.h>

#include "cleanup.h"
#include "baseurl.h"
#include "config.h"
#include "unit_tmpdir.h"

static void config_freep(Config **c) {
	*c = config_free(*c);
}

static char tmp_dir[] = "/tmp/test_config.XXXXXX";
static unsigned file_counter;

static int setup_dir(void **state) {
	return mkdtemp(tmp_dir) ? 0 : -1;
}

static int teardown_dir(void **state) {
	return unit_rm_tree(tmp_dir);
}

/* A fresh temp file holding text; returns its malloc'd path. */
static char *write_file_n(const char *text, size_t len) {
	char *path = NULL;
	FILE *f;

	assert_true(asprintf(&path, "%s/hitld-%u.conf", tmp_dir, ++file_counter) > 0);
	f = fopen(path, "we");
	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
	return path;
}

static char *write_file(const char *text) {
	return write_file_n(text, strlen(text));
}

static Config *load_ok(const char *text) {
	_cleanup_(freep) char *path = write_file(text);
	_cleanup_(freep) char *error = NULL;
	Config *c = NULL;
	int r;

	r = config_load(path, true, &c, &error);
	if (r < 0)
		fail_msg("config_load failed: %d %s", r, strna(error));
	assert_non_null(c);
	assert_string_equal(c->path, path);
	return c;
}

/* Loads text, expects -EINVAL and a message that starts with
 * "PATH:LINE: KEY: " (KEY NULL: "PATH:LINE: ") and contains needle. */
static void expect_error(const char *text, unsigned line, const char *key, const char *needle) {
	_cleanup_(freep) char *path = write_file(text);
	_cleanup_(freep) char *error = NULL;
	_cleanup_(freep) char *prefix = NULL;
	Config *c = NULL;
	int r;

	r = config_load(path, true, &c, &error);
	assert_int_equal(r, -EINVAL);
	assert_null(c);
	assert_non_null(error);
	if (key)
		assert_true(asprintf(&prefix, "%s:%u: %s: ", path, line, key) > 0);
	else
		assert_true(asprintf(&prefix, "%s:%u: ", path, line) > 0);
	if (strncmp(error, prefix, strlen(prefix)) != 0)
		fail_msg("error \"%s\" does not start with \"%s\"", error, prefix);
	if (needle && !strstr(error, needle))
		fail_msg("error \"%s\" does not contain \"%s\"", error, needle);
	assert_null(strchr(error, '\n'));
}

static void assert_defaults(const Config *c) {
	assert_string_equal(c->api_base_url, "https://api.hitl.sh/v1");
	assert_null(c->api_key_file);
	assert_int_equal(c->api_timeout_s, 30);
	assert_null(c->api_ca_file);
	assert_int_equal(c->api_loop_cache_ttl_s, 300);
	assert_int_equal(c->budget_limit_per_hour, 100);
	assert_int_equal(c->budget_poll_reserve, 10);
	assert_int_equal(c->budget_min_poll_interval_s, 30);
	assert_int_equal(c->budget_window_s, 3600);
	assert_string_equal(c->socket_path, "/run/hitld.sock");
	assert_int_equal(c->socket_mode, 0660);
	assert_string_equal(c->socket_group, "hitl");
	assert_string_equal(c->socket_admin_group, "");
	assert_int_equal(c->socket_max_connections_per_uid, 32);
	assert_int_equal(c->socket_max_connections, 1024);
	assert_int_equal(c->socket_max_message_bytes, 1048576);
	assert_int_equal(c->socket_idle_timeout_s, 300);
	assert_int_equal(c->socket_max_input_mb_per_uid, 8);
	assert_int_equal(c->socket_max_input_mb_total, 64);
	assert_int_equal(c->socket_loop_writes, LOOP_WRITES_ADMIN);
	assert_string_equal(c->outbox_state_dir, "/var/lib/hitld");
	assert_int_equal(c->outbox_max_requests, 100000);
	assert_int_equal(c->outbox_max_per_uid, 1000);
	assert_int_equal(c->outbox_min_free_mb, 16);
	assert_int_equal(c->outbox_max_lifetime_s, 604800);
	assert_int_equal(c->outbox_retention_days, 30);
	assert_int_equal(c->log_level, LOG_INFO);
	assert_int_equal(c->budget_warn_drain_hours, 24);
	assert_null(c->metrics_textfile);
	assert_int_equal(c->metrics_interval_s, 60);
}

static void assert_same_config(const Config *a, const Config *b) {
	assert_true(streq_ptr(a->api_base_url, b->api_base_url));
	assert_true(streq_ptr(a->api_key_file, b->api_key_file));
	assert_int_equal(a->api_timeout_s, b->api_timeout_s);
	assert_true(streq_ptr(a->api_ca_file, b->api_ca_file));
	assert_int_equal(a->api_loop_cache_ttl_s, b->api_loop_cache_ttl_s);
	assert_int_equal(a->budget_limit_per_hour, b->budget_limit_per_hour);
	assert_int_equal(a->budget_poll_reserve, b->budget_poll_reserve);
	assert_int_equal(a->budget_min_poll_interval_s, b->budget_min_poll_interval_s);
	assert_int_equal(a->budget_window_s, b->budget_window_s);
	assert_true(streq_ptr(a->socket_path, b->socket_path));
	assert_int_equal(a->socket_mode, b->socket_mode);
	assert_true(streq_ptr(a->socket_group, b->socket_group));
	assert_true(streq_ptr(a->socket_admin_group, b->socket_admin_group));
	assert_int_equal(a->socket_max_connections_per_uid, b->socket_max_connections_per_uid);
	assert_int_equal(a->socket_max_connections, b->socket_max_connections);
	assert_int_equal(a->socket_max_message_bytes, b->socket_max_message_bytes);
	assert_int_equal(a->socket_idle_timeout_s, b->socket_idle_timeout_s);
	assert_int_equal(a->socket_max_input_mb_per_uid, b->socket_max_input_mb_per_uid);
	assert_int_equal(a->socket_max_input_mb_total, b->socket_max_input_mb_total);
	assert_int_equal(a->socket_loop_writes, b->socket_loop_writes);
	assert_true(streq_ptr(a->outbox_state_dir, b->outbox_state_dir));
	assert_int_equal(a->outbox_max_requests, b->outbox_max_requests);
	assert_int_equal(a->outbox_max_per_uid, b->outbox_max_per_uid);
	assert_int_equal(a->outbox_min_free_mb, b->outbox_min_free_mb);
	assert_int_equal(a->outbox_max_lifetime_s, b->outbox_max_lifetime_s);
	assert_int_equal(a->outbox_retention_days, b->outbox_retention_days);
	assert_int_equal(a->log_level, b->log_level);
}

static const char full_file[] =
	"# every key, none at its default\n"
	"api = {\n"
	"  base_url = \"http://127.0.0.1:8080/v1\";\n"
	"  key_file = \"/etc/hitld/key\";\n"
	"  timeout_s = 45;\n"
	"  ca_file = \"/etc/ssl/hitl-ca.pem\";\n"
	"  loop_cache_ttl_s = 0;\n"
	"};\n"
	"budget: {\n"
	"  limit_per_hour = 500;\n"
	"  poll_reserve = 250;\n"
	"  min_poll_interval_s = 5;\n"
	"  window_s = 60;\n"
	"};\n"
	"socket = {\n"
	"  path = \"/tmp/h.sock\";\n"
	"  mode = \"0600\";\n"
	"  group = \"\";\n"
	"  admin_group = \"wheel\";\n"
	"  max_connections_per_uid = 4;\n"
	"  max_connections = 8;\n"
	"  max_message_bytes = 16777216;\n"
	"  idle_timeout_s = 86400;\n"
	"  max_input_mb_per_uid = 1024;\n"
	"  max_input_mb_total = 65536;\n"
	"  loop_writes = \"all\";\n"
	"};\n"
	"outbox = {\n"
	"  state_dir = \"/srv/hitld\";\n"
	"  max_requests = 10000000;\n"
	"  max_per_uid = 7;\n"
	"  min_free_mb = 0;\n"
	"  max_lifetime_s = 60;\n"
	"  retention_days = 0;\n"
	"};\n"
	"log = {\n"
	"  level = \"debug\";\n"
	"};\n";

static void assert_full_file_values(const Config *c) {
	assert_string_equal(c->api_base_url, "http://127.0.0.1:8080/v1");
	assert_string_equal(c->api_key_file, "/etc/hitld/key");
	assert_int_equal(c->api_timeout_s, 45);
	assert_string_equal(c->api_ca_file, "/etc/ssl/hitl-ca.pem");
	assert_int_equal(c->api_loop_cache_ttl_s, 0);
	assert_int_equal(c->budget_limit_per_hour, 500);
	assert_int_equal(c->budget_poll_reserve, 250);
	assert_int_equal(c->budget_min_poll_interval_s, 5);
	assert_int_equal(c->budget_window_s, 60);
	assert_string_equal(c->socket_path, "/tmp/h.sock");
	assert_int_equal(c->socket_mode, 0600);
	assert_string_equal(c->socket_group, "");
	assert_string_equal(c->socket_admin_group, "wheel");
	assert_int_equal(c->socket_max_connections_per_uid, 4);
	assert_int_equal(c->socket_max_connections, 8);
	assert_int_equal(c->socket_max_message_bytes, 16777216);
	assert_int_equal(c->socket_idle_timeout_s, 86400);
	assert_int_equal(c->socket_max_input_mb_per_uid, 1024);
	assert_int_equal(c->socket_max_input_mb_total, 65536);
	assert_int_equal(c->socket_loop_writes, LOOP_WRITES_ALL);
	assert_string_equal(c->outbox_state_dir, "/srv/hitld");
	assert_int_equal(c->outbox_max_requests, 10000000);
	assert_int_equal(c->outbox_max_per_uid, 7);
	assert_int_equal(c->outbox_min_free_mb, 0);
	assert_int_equal(c->outbox_max_lifetime_s, 60);
	assert_int_equal(c->outbox_retention_days, 0);
	assert_int_equal(c->log_level, LOG_DEBUG);
}

/* ---- defaults and must_exist ---- */

static void test_config_new_default_holds_documented_defaults(void **state) {
	_cleanup_(config_freep) Config *c = NULL;

	assert_int_equal(config_new_default(&c), 0);
	assert_null(c->path);
	assert_defaults(c);
}

static void test_config_missing_file_gives_defaults_when_optional(void **state) {
	_cleanup_(config_freep) Config *c = NULL;
	_cleanup_(freep) char *path = NULL;
	char *error = NULL;

	assert_true(asprintf(&path, "%s/does-not-exist.conf", tmp_dir) > 0);
	assert_int_equal(config_load(path, false, &c, &error), 0);
	assert_null(error);
	assert_non_null(c);
	assert_null(c->path);
	assert_defaults(c);
}

static void test_config_missing_file_is_an_error_when_required(void **state) {
	_cleanup_(freep) char *path = NULL;
	_cleanup_(freep) char *error = NULL;
	_cleanup_(freep) char *expected = NULL;
	Config *c = NULL;

	assert_true(asprintf(&path, "%s/does-not-exist.conf", tmp_dir) > 0);
	assert_int_equal(config_load(path, true, &c, &error), -ENOENT);
	assert_null(c);
	assert_true(asprintf(&expected, "%s: %s", path, strerror(ENOENT)) > 0);
	assert_string_equal(error, expected);
}

static void test_config_optional_file_that_cannot_be_read_is_still_an_error(void **state) {
	/* Only "missing" falls back to the defaults; a directory does not. */
	_cleanup_(freep) char *error = NULL;
	Config *c = NULL;

	assert_int_equal(config_load(tmp_dir, false, &c, &error), -EISDIR);
	assert_null(c);
	assert_non_null(strstr(error, "is a directory"));
}

static void test_config_empty_file_gives_defaults_and_records_path(void **state) {
	_cleanup_(config_freep) Config *c = load_ok("");

	assert_defaults(c);
}

static void test_config_error_pointer_may_be_null(void **state) {
	_cleanup_(freep) char *path = write_file("api = { bogus = 1; };\n");
	Config *c = NULL;

	assert_int_equal(config_load(path, true, &c, NULL), -EINVAL);
	assert_null(c);
}

/* ---- every key ---- */

static void test_config_full_file_overrides_every_key(void **state) {
	_cleanup_(config_freep) Config *c = load_ok(full_file);

	assert_full_file_values(c);
}

static void test_config_keys_left_out_keep_their_defaults(void **state) {
	_cleanup_(config_freep) Config *c = load_ok("api = { timeout_s = 10; };\nlog = {};\n");

	assert_int_equal(c->api_timeout_s, 10);
	assert_string_equal(c->api_base_url, "https://api.hitl.sh/v1");
	assert_int_equal(c->budget_limit_per_hour, 100);
	assert_int_equal(c->log_level, LOG_INFO);
}

static void test_config_int64_literal_is_accepted_when_it_fits(void **state) {
	_cleanup_(config_freep) Config *c = load_ok("outbox = { max_lifetime_s = 86400L; };\n");

	assert_int_equal(c->outbox_max_lifetime_s, 86400);
}

static void test_config_hex_integer_is_accepted(void **state) {
	_cleanup_(config_freep) Config *c = load_ok("api = { timeout_s = 0x10; };\n");

	assert_int_equal(c->api_timeout_s, 16);
}

/* ---- webhook (issue 17) ---- */

static Config *dump_and_reload(const Config *c);

static void test_config_webhook_is_off_by_default_and_reads_back(void **state) {
	_cleanup_(config_freep) Config *d = load_ok(""), *c = NULL, *again = NULL;

	assert_null(d->webhook_listen);
	assert_null(d->webhook_public_url);
	assert_int_equal(d->webhook_max_connections, 64);
	assert_int_equal(d->webhook_timeout_s, 10);
	c = load_ok("webhook = {\n  listen = \"[::1]:8089\";\n  public_url = \"https://example.com/hitl/\";\n"
	            "  max_connections = 4096;\n  timeout_s = 1;\n};\n");
	assert_string_equal(c->webhook_listen, "[::1]:8089");
	assert_string_equal(c->webhook_public_url, "https://example.com/hitl/");
	assert_int_equal(c->webhook_max_connections, 4096);
	assert_int_equal(c->webhook_timeout_s, 1);
	again = dump_and_reload(c);
	assert_string_equal(again->webhook_listen, "[::1]:8089");
	assert_string_equal(again->webhook_public_url, "https://example.com/hitl/");
	assert_int_equal(again->webhook_max_connections, 4096);
}

static void test_config_webhook_sweep_interval(void **state) {
	_cleanup_(config_freep) Config *d = load_ok(""), *c = NULL, *again = NULL;

	assert_int_equal(d->webhook_sweep_interval_s, 1800);
	c = load_ok("webhook = {\n  sweep_interval_s = 10;\n};\n");
	assert_int_equal(c->webhook_sweep_interval_s, 10);
	again = dump_and_reload(c);
	assert_int_equal(again->webhook_sweep_interval_s, 10);
	expect_error("webhook = {\n  sweep_interval_s = 0;\n};\n", 2, "webhook.sweep_interval_s", "");
	expect_error("webhook = {\n  sweep_interval_s = 86401;\n};\n", 2, "webhook.sweep_interval_s", "");
}

static void test_config_webhook_bad_values(void **state) {
	expect_error("webhook = {\n  listen = \"localhost:8089\";\n  public_url = \"https://x.example/h\";\n};\n", 2,
	             "webhook.listen", "numeric address and port");
	expect_error("webhook = {\n  listen = \"127.0.0.1:0\";\n};\n", 2, "webhook.listen", "numeric address");
	expect_error("webhook = {\n  listen = \"127.0.0.1:8089\";\n};\n", 2, "webhook.listen", "needs webhook.public_url");
	/* The URL HITL.sh posts to must be https (or http to loopback), without a password. */
	expect_error("webhook = {\n  public_url = \"http://example.com/h\";\n};\n", 2, "webhook.public_url", "");
	expect_error("webhook = {\n  public_url = \"https://u:p@example.com/h\";\n};\n", 2, "webhook.public_url",
	             "user information");
	expect_error("webhook = {\n  max_connections = 0;\n};\n", 2, "webhook.max_connections", "out of range");
	expect_error("webhook = {\n  timeout_s = 301;\n};\n", 2, "webhook.timeout_s", "out of range");
}

/* ---- unknown names ---- */

static void test_config_unknown_key_names_file_line_and_key(void **state) {
	expect_error("# comment\napi = {\n  timeout_s = 5;\n  bogus = 1;\n};\n", 4, "api.bogus", "unknown key");
}

static void test_config_unknown_group_names_file_line_and_group(void **state) {
	expect_error("api = {};\n\nproxy = {\n  url = \"x\";\n};\n", 3, "proxy", "unknown group");
}

static void test_config_unknown_top_level_scalar_is_an_unknown_group(void **state) {
	expect_error("timeout_s = 5;\n", 1, "timeout_s", "unknown group");
}

static void test_config_key_of_another_group_is_unknown(void **state) {
	expect_error("budget = {\n  timeout_s = 5;\n};\n", 2, "budget.timeout_s", "unknown key");
}

static void test_config_keys_are_case_sensitive(void **state) {
	expect_error("api = {\n  Timeout_s = 5;\n};\n", 2, "api.Timeout_s", "unknown key");
	expect_error("API = {};\n", 1, "API", "unknown group");
}

static void test_config_nested_group_is_an_unknown_key(void **state) {
	expect_error("api = {\n  tls = { verify = true; };\n};\n", 2, "api.tls", "unknown key");
}

/* ---- types ---- */

static void test_config_string_where_integer_expected_is_a_type_error(void **state) {
	expect_error("budget = {\n  limit_per_hour = 100;\n\n  poll_reserve = \"10\";\n};\n", 4, "budget.poll_reserve",
	             "expected an integer, got a string");
}

static void test_config_integer_where_string_expected_is_a_type_error(void **state) {
	expect_error("outbox = {\n  state_dir = 5;\n};\n", 2, "outbox.state_dir", "expected a string, got an integer");
}

static void test_config_float_is_a_type_error(void **state) {
	expect_error("api = {\n  timeout_s = 30.5;\n};\n", 2, "api.timeout_s", "expected an integer, got a float");
}

static void test_config_boolean_is_a_type_error(void **state) {
	expect_error("socket = {\n  loop_writes = true;\n};\n", 2, "socket.loop_writes", "expected a string, got a boolean");
	expect_error("api = {\n  timeout_s = false;\n};\n", 2, "api.timeout_s", "expected an integer, got a boolean");
}

static void test_config_array_and_list_are_type_errors(void **state) {
	expect_error("socket = {\n  group = [ \"a\", \"b\" ];\n};\n", 2, "socket.group", "expected a string, got an array");
	expect_error("socket = {\n  group = ( \"a\" );\n};\n", 2, "socket.group", "expected a string, got a list");
}

static void test_config_group_given_as_scalar_is_a_type_error(void **state) {
	expect_error("\napi = 5;\n", 2, "api", "expected a group, got an integer");
}

/* ---- ranges ---- */

static void test_config_value_above_range_names_the_range(void **state) {
	expect_error("api = {\n  timeout_s = 301;\n};\n", 2, "api.timeout_s", "301 is out of range 1..300");
}

static void test_config_value_below_range_names_the_range(void **state) {
	expect_error("outbox = {\n  max_lifetime_s = 59;\n};\n", 2, "outbox.max_lifetime_s", "59 is out of range 60..31536000");
	expect_error("api = {\n  timeout_s = 0;\n};\n", 2, "api.timeout_s", "0 is out of range 1..300");
}

static void test_config_negative_value_is_out_of_range(void **state) {
	expect_error("socket = {\n  idle_timeout_s = -1;\n};\n", 2, "socket.idle_timeout_s", "-1 is out of range 1..86400");
}

static void test_config_range_bounds_are_inclusive(void **state) {
	_cleanup_(config_freep) Config *c = load_ok(
		"api = { timeout_s = 300; loop_cache_ttl_s = 86400; };\n"
		"socket = { max_message_bytes = 1024; max_connections = 65536; max_connections_per_uid = 1024; };\n"
		"outbox = { max_lifetime_s = 31536000; retention_days = 3650; };\n");

	assert_int_equal(c->api_timeout_s, 300);
	assert_int_equal(c->api_loop_cache_ttl_s, 86400);
	assert_int_equal(c->socket_max_message_bytes, 1024);
	assert_int_equal(c->socket_max_connections, 65536);
	assert_int_equal(c->outbox_max_lifetime_s, 31536000);
	assert_int_equal(c->outbox_retention_days, 3650);
}

static void test_config_integer_that_overflows_int_is_out_of_range_not_wrapped(void **state) {
	/* libconfig 1.5 would read 4294967356 as 60, a valid lifetime. */
	expect_error("outbox = {\n  max_lifetime_s = 4294967356;\n};\n", 2, "outbox.max_lifetime_s",
	             "4294967356 is out of range 60..31536000");
	expect_error("api = {\n  timeout_s = 0x10000001E;\n};\n", 2, "api.timeout_s", "0x10000001E is out of range");
	expect_error("api = {\n  timeout_s = 99999999999999999999L;\n};\n", 2, "api.timeout_s", "out of range");
}

static void test_config_overflowing_integer_on_its_own_line_is_still_an_error(void **state) {
	expect_error("outbox = {\n  max_lifetime_s =\n    4294967356;\n};\n", 2, "outbox.max_lifetime_s",
	             "4294967356 is out of range");
}

static void test_config_overflowing_integer_is_blamed_on_its_own_key(void **state) {
	/* Two keys on one line: the in-range one is not blamed. */
	expect_error("outbox = { max_lifetime_s = 60; retention_days = 4294967356; };\n", 1, "outbox.retention_days",
	             "4294967356 is out of range 0..3650");
}

static void test_config_poll_reserve_above_half_the_limit_is_an_error(void **state) {
	expect_error("budget = {\n  limit_per_hour = 20;\n  poll_reserve = 11;\n};\n", 3, "budget.poll_reserve",
	             "11 is out of range 0..10");
}

static void test_config_default_poll_reserve_shrinks_to_half_a_small_limit(void **state) {
	_cleanup_(config_freep) Config *c = load_ok("budget = { limit_per_hour = 6; };\n");

	assert_int_equal(c->budget_poll_reserve, 3);
}

static void test_config_interactive_shares_scale_with_the_limit_unless_set(void **state) {
	_cleanup_(config_freep) Config *c = load_ok("budget = { limit_per_hour = 1000; };\n");
	_cleanup_(config_freep) Config *small = load_ok("budget = { limit_per_hour = 10; };\n");
	_cleanup_(config_freep) Config *set = load_ok("budget = { interactive_per_uid = 0; interactive_total = 90; };\n"
	                                              "queue = { precedence_group = \"wheel\"; };\n");

	assert_int_equal(c->budget_interactive_per_uid, 50);
	assert_int_equal(c->budget_interactive_total, 200);
	assert_int_equal(small->budget_interactive_per_uid, 1);
	assert_int_equal(small->budget_interactive_total, 2);
	assert_int_equal(set->budget_interactive_per_uid, 0);
	assert_int_equal(set->budget_interactive_total, 90);
	assert_string_equal(set->queue_precedence_group, "wheel");
}

static void test_config_interactive_shares_must_nest_and_leave_the_reserve(void **state) {
	expect_error("budget = {\n  interactive_total = 91;\n};\n", 2, "budget.interactive_total",
	             "91 is out of range 0..90");
	expect_error("budget = {\n  interactive_total = 4;\n  interactive_per_uid = 5;\n};\n", 3,
	             "budget.interactive_per_uid", "5 is out of range 0..4");
}

/* ---- strings with rules ---- */

static void test_config_metrics_and_drain_warning(void **state) {
	_cleanup_(config_freep) Config *c = load_ok(
		"budget = { warn_drain_hours = 0; };\n"
		"metrics = { textfile = \"/var/lib/prometheus/node-exporter/hitld.prom\"; interval_s = 15; };\n");

	assert_int_equal(c->budget_warn_drain_hours, 0);
	assert_string_equal(c->metrics_textfile, "/var/lib/prometheus/node-exporter/hitld.prom");
	assert_int_equal(c->metrics_interval_s, 15);
	expect_error("budget = {\n  warn_drain_hours = 8761;\n};\n", 2, "budget.warn_drain_hours",
	             "8761 is out of range 0..8760");
	expect_error("metrics = {\n  interval_s = 0;\n};\n", 2, "metrics.interval_s", "0 is out of range 1..86400");
	expect_error("metrics = {\n  textfile = \"hitld.prom\";\n};\n", 2, "metrics.textfile", "absolute");
	expect_error("metrics = {\n  textfile = \"/var/lib/hitld.txt\";\n};\n", 2, "metrics.textfile", ".prom");
	expect_error("metrics = {\n  textfile = \"/var/lib/.prom\";\n};\n", 2, "metrics.textfile", ".prom");
}

static void test_config_relative_paths_are_refused(void **state) {
	expect_error("api = {\n  key_file = \"etc/key\";\n};\n", 2, "api.key_file", "absolute path");
	expect_error("api = {\n  ca_file = \"ca.pem\";\n};\n", 2, "api.ca_file", "absolute path");
	expect_error("outbox = {\n  state_dir = \"./state\";\n};\n", 2, "outbox.state_dir", "absolute path");
	expect_error("socket = {\n  path = \"hitld.sock\";\n};\n", 2, "socket.path", "absolute path");
	expect_error("api = {\n  key_file = \"\";\n};\n", 2, "api.key_file", "absolute path");
}

static void test_config_socket_path_must_fit_sun_path(void **state) {
	char text[300], path[120];
	_cleanup_(config_freep) Config *c = NULL;

	/* 107 bytes is the longest that fits with its NUL. */
	memset(path, 'a', sizeof(path));
	path[0] = '/';
	path[107] = '\0';
	snprintf(text, sizeof(text), "socket = {\n  path = \"%s\";\n};\n", path);
	c = load_ok(text);
	assert_int_equal(strlen(c->socket_path), 107);

	path[107] = 'a';
	path[108] = '\0';
	snprintf(text, sizeof(text), "socket = {\n  path = \"%s\";\n};\n", path);
	expect_error(text, 2, "socket.path", "longer than 107 bytes");
}

static void test_config_base_url_needs_http_or_https(void **state) {
	_cleanup_(config_freep) Config *c = load_ok("api = { base_url = \"https://example.org/v1\"; };\n");

	assert_string_equal(c->api_base_url, "https://example.org/v1");
	expect_error("api = {\n  base_url = \"ftp://example.org\";\n};\n", 2, "api.base_url", "https:// or http://");
	expect_error("api = {\n  base_url = \"api.hitl.sh/v1\";\n};\n", 2, "api.base_url", "https:// or http://");
	expect_error("api = {\n  base_url = \"https://\";\n};\n", 2, "api.base_url", "no host");
}

/* The daemon refuses plain http:// to anything but loopback; so must the file check
 * (--check-config used to accept what the daemon then refused). */
static void test_config_base_url_plain_http_only_to_loopback(void **state) {
	static const char *const good[] = { "http://127.0.0.1:8080/v1", "http://127.9.9.9/v1", "http://localhost/v1",
		                            "http://LOCALHOST:1/v1", "http://[::1]:9/v1", "https://api.example.com/v1" };
	static const char *const bad[] = { "http://api.hitl.sh/v1", "http://10.0.0.1/v1", "http://[::2]/v1",
		                           "http://127.0.0.1.example.com/v1", "http://localhost.evil/v1" };
	char text[256];

	for (size_t i = 0; i < ELEMENTSOF(good); i++) {
		snprintf(text, sizeof text, "api = { base_url = \"%s\"; };\n", good[i]);
		_cleanup_(config_freep) Config *c = load_ok(text);
		assert_string_equal(c->api_base_url, good[i]);
		assert_int_equal(baseurl_check(good[i], NULL, NULL), 0);
	}
	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		snprintf(text, sizeof text, "api = {\n  base_url = \"%s\";\n};\n", bad[i]);
		expect_error(text, 2, "api.base_url", "loopback");
	}
	expect_error("api = {\n  base_url = \"http://u:secretpw@127.0.0.1/v1\";\n};\n", 2, "api.base_url",
	             "user information");
}

static void test_config_bad_group_name_is_refused(void **state) {
	expect_error("socket = {\n  group = \"a:b\";\n};\n", 2, "socket.group", "group name");
	expect_error("socket = {\n  admin_group = \"-x\";\n};\n", 2, "socket.admin_group", "group name");
}

static void test_config_error_quotes_control_characters_of_values(void **state) {
	/* A value echoed in a message cannot break the log line. */
	expect_error("socket = {\n  loop_writes = \"a\\nb\";\n};\n", 2, "socket.loop_writes", "\"a\\nb\"");
}

/* ---- socket.mode ---- */

static void test_config_mode_as_octal_string(void **state) {
	_cleanup_(config_freep) Config *c = load_ok("socket = { mode = \"0640\"; };\n");

	assert_int_equal(c->socket_mode, 0640);
	c = config_free(c);
	c = load_ok("socket = { mode = \"600\"; };\n");
	assert_int_equal(c->socket_mode, 0600);
}

static void test_config_mode_as_integer_is_decimal(void **state) {
	_cleanup_(config_freep) Config *c = load_ok("socket = { mode = 432; };\n");

	assert_int_equal(c->socket_mode, 0660);
}

static void test_config_mode_0660_written_as_integer_is_refused_with_a_hint(void **state) {
	/* libconfig reads 0660 as decimal 660: refuse rather than chmod 01224. */
	expect_error("socket = {\n  mode = 0660;\n};\n", 2, "socket.mode", "write the mode as a string such as \"0660\"");
}

static void test_config_mode_string_must_be_octal_and_at_most_0777(void **state) {
	expect_error("socket = {\n  mode = \"0999\";\n};\n", 2, "socket.mode", "octal");
	expect_error("socket = {\n  mode = \"rw-rw----\";\n};\n", 2, "socket.mode", "octal");
	expect_error("socket = {\n  mode = \"\";\n};\n", 2, "socket.mode", "octal");
	expect_error("socket = {\n  mode = \"01777\";\n};\n", 2, "socket.mode", "out of range");
}

static void test_config_mode_of_wrong_type_is_refused(void **state) {
	expect_error("socket = {\n  mode = 6.6;\n};\n", 2, "socket.mode", "got a float");
}

/* ---- enumerations ---- */

static void test_config_loop_writes_accepts_admin_and_all_only(void **state) {
	_cleanup_(config_freep) Config *c = load_ok("socket = { loop_writes = \"all\"; };\n");

	assert_int_equal(c->socket_loop_writes, LOOP_WRITES_ALL);
	c = config_free(c);
	c = load_ok("socket = { loop_writes = \"admin\"; };\n");
	assert_int_equal(c->socket_loop_writes, LOOP_WRITES_ADMIN);
	expect_error("socket = {\n  loop_writes = \"everyone\";\n};\n", 2, "socket.loop_writes",
	             "expected \"admin\" or \"all\", got \"everyone\"");
	expect_error("socket = {\n  loop_writes = \"ALL\";\n};\n", 2, "socket.loop_writes", "expected \"admin\" or \"all\"");
}

static void test_config_loop_writes_string_conversions(void **state) {
	assert_string_equal(config_loop_writes_to_string(LOOP_WRITES_ADMIN), "admin");
	assert_string_equal(config_loop_writes_to_string(LOOP_WRITES_ALL), "all");
	assert_null(config_loop_writes_to_string(_LOOP_WRITES_MAX));
	assert_int_equal(config_loop_writes_from_string("all"), LOOP_WRITES_ALL);
	assert_int_equal(config_loop_writes_from_string("nope"), _LOOP_WRITES_INVALID);
	assert_int_equal(config_loop_writes_from_string(NULL), _LOOP_WRITES_INVALID);
}

static void test_config_log_level_names(void **state) {
	_cleanup_(config_freep) Config *c = load_ok("log = { level = \"warning\"; };\n");

	assert_int_equal(c->log_level, LOG_WARNING);
	expect_error("log = {\n  level = \"loud\";\n};\n", 2, "log.level", "expected one of emerg");
	expect_error("log = {\n  level = 7;\n};\n", 2, "log.level", "expected a string, got an integer");
}

/* ---- the file as a whole ---- */

static void test_config_syntax_error_names_file_and_line(void **state) {
	expect_error("api = {\n  timeout_s = 5;\n  base_url = ;\n};\n", 3, NULL, "syntax error");
	expect_error("api = {\n  timeout_s = 5\n", 3, NULL, NULL);
}

static void test_config_duplicate_key_is_an_error(void **state) {
	expect_error("api = {\n  timeout_s = 5;\n  timeout_s = 6;\n};\n", 3, NULL, "duplicate");
	expect_error("api = {};\napi = {};\n", 2, NULL, "duplicate");
}

static void test_config_include_is_refused(void **state) {
	/* Even an include of a valid file: a config is one file. */
	_cleanup_(freep) char *inc = write_file("api = { timeout_s = 7; };\n");
	_cleanup_(freep) char *text = NULL;

	assert_true(asprintf(&text, "# one file only\n@include \"%s\"\n", inc) > 0);
	expect_error(text, 2, NULL, "@include is not allowed");
	free(text);
	assert_true(asprintf(&text, "log = {};\n   @include \"%s\"\n", inc) > 0);
	expect_error(text, 2, NULL, "@include");
}

static void test_config_include_inside_string_or_comment_is_harmless(void **state) {
	_cleanup_(config_freep) Config *c =
		load_ok("# @include \"/etc/passwd\"\n/* @include \"x\" */\nsocket = { group = \"@include\"; };\n");

	assert_string_equal(c->socket_group, "@include");
}

static void test_config_file_larger_than_1mib_is_refused(void **state) {
	size_t len = CONFIG_FILE_SIZE_MAX + 1;
	_cleanup_(freep) char *text = malloc(len);
	_cleanup_(freep) char *path = NULL;
	_cleanup_(freep) char *error = NULL;
	Config *c = NULL;

	assert_non_null(text);
	memset(text, '\n', len);
	path = write_file_n(text, len);
	assert_int_equal(config_load(path, true, &c, &error), -EFBIG);
	assert_null(c);
	assert_non_null(strstr(error, "larger than 1 MiB"));
}

static void test_config_file_of_exactly_1mib_is_read(void **state) {
	size_t len = CONFIG_FILE_SIZE_MAX;
	_cleanup_(freep) char *text = malloc(len);
	_cleanup_(freep) char *path = NULL;
	_cleanup_(freep) char *error = NULL;
	_cleanup_(config_freep) Config *c = NULL;
	const char body[] = "api = { timeout_s = 9; };\n";

	assert_non_null(text);
	memset(text, ' ', len);
	memcpy(text, body, strlen(body));
	path = write_file_n(text, len);
	assert_int_equal(config_load(path, true, &c, &error), 0);
	assert_int_equal(c->api_timeout_s, 9);
}

static void test_config_nul_byte_is_refused(void **state) {
	static const char text[] = "api = {\n  timeout_s = 5;\0\n};\n";
	_cleanup_(freep) char *path = write_file_n(text, sizeof(text) - 1);
	_cleanup_(freep) char *error = NULL;
	_cleanup_(freep) char *prefix = NULL;
	Config *c = NULL;

	assert_int_equal(config_load(path, true, &c, &error), -EINVAL);
	assert_true(asprintf(&prefix, "%s:2: NUL byte", path) > 0);
	assert_int_equal(strncmp(error, prefix, strlen(prefix)), 0);
}

static void test_config_fifo_is_refused_without_blocking(void **state) {
	_cleanup_(freep) char *path = NULL;
	_cleanup_(freep) char *error = NULL;
	Config *c = NULL;

	assert_true(asprintf(&path, "%s/fifo.conf", tmp_dir) > 0);
	assert_int_equal(mkfifo(path, 0600), 0);
	assert_int_equal(config_load(path, true, &c, &error), -EINVAL);
	assert_non_null(strstr(error, "not a regular file"));
}

/* ---- dump ---- */

static Config *dump_and_reload(const Config *c) {
	_cleanup_(freep) char *text = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&text, &size);

	assert_non_null(f);
	config_dump(c, f);
	assert_int_equal(fclose(f), 0);
	return load_ok(text);
}

static void test_config_dump_of_full_file_reads_back_the_same(void **state) {
	_cleanup_(config_freep) Config *c = load_ok(full_file);
	_cleanup_(config_freep) Config *again = dump_and_reload(c);

	assert_same_config(c, again);
	assert_full_file_values(again);
}

static void test_config_dump_of_defaults_reads_back_the_defaults(void **state) {
	_cleanup_(config_freep) Config *c = NULL;
	_cleanup_(config_freep) Config *again = NULL;

	assert_int_equal(config_new_default(&c), 0);
	again = dump_and_reload(c);
	assert_same_config(c, again);
	assert_null(again->api_key_file);
	assert_null(again->api_ca_file);
}

static void test_config_dump_escapes_strings(void **state) {
	_cleanup_(config_freep) Config *c = load_ok(
		"api = { key_file = \"/etc/we\\\"ird\\\\key \\x41\xc3\xa9\"; };\n");
	_cleanup_(config_freep) Config *again = NULL;

	assert_string_equal(c->api_key_file, "/etc/we\"ird\\key A\xc3\xa9");
	free(c->outbox_state_dir);
	c->outbox_state_dir = strdup("/var/lib/with\"quote\\and\nnewline");
	assert_non_null(c->outbox_state_dir);
	/* A newline in a path is refused on load; escaped in the dump, it still
	 * reaches the path check instead of breaking the syntax. */
	{
		_cleanup_(freep) char *text = NULL;
		size_t size = 0;
		FILE *f = open_memstream(&text, &size);
		assert_non_null(f);
		config_dump(c, f);
		assert_int_equal(fclose(f), 0);
		assert_non_null(strstr(text, "state_dir = \"/var/lib/with\\\"quote\\\\and\\nnewline\";"));
		_cleanup_(freep) char *path = write_file(text);
		_cleanup_(freep) char *error = NULL;
		Config *bad = NULL;
		assert_int_equal(config_load(path, true, &bad, &error), -EINVAL);
		assert_non_null(strstr(error, ": outbox.state_dir: path contains control characters"));
	}
	free(c->outbox_state_dir);
	c->outbox_state_dir = strdup("/var/lib/h");
	assert_non_null(c->outbox_state_dir);
	again = dump_and_reload(c);
	assert_same_config(c, again);
}

static void test_config_dump_mode_is_an_octal_string(void **state) {
	_cleanup_(config_freep) Config *c = NULL;
	_cleanup_(freep) char *text = NULL;
	size_t size = 0;
	FILE *f;

	assert_int_equal(config_new_default(&c), 0);
	c->socket_mode = 0600;
	f = open_memstream(&text, &size);
	assert_non_null(f);
	config_dump(c, f);
	assert_int_equal(fclose(f), 0);
	assert_non_null(strstr(text, "\tmode = \"0600\";\n"));
}

/* ---- the shipped example file and man page ---- */

/* Key names from a dump of the defaults ("\tname = …" and "\t# name is not set"). */
static char **key_names(void) {
	_cleanup_(config_freep) Config *c = NULL;
	_cleanup_(freep) char *text = NULL;
	size_t size = 0, n = 0;
	char **names = calloc(64, sizeof(char *));
	FILE *f;

	assert_non_null(names);
	assert_int_equal(config_new_default(&c), 0);
	f = open_memstream(&text, &size);
	assert_non_null(f);
	config_dump(c, f);
	assert_int_equal(fclose(f), 0);
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		char name[64];
		int end = 0;
		if (line[0] != '\t')
			continue;
		if ((sscanf(line, "\t# %63[a-z_] is not set%n", name, &end) == 1 && end > 0) ||
		    sscanf(line, "\t%63[a-z_] =", name) == 1) {
			assert_true(n < 63);
			names[n++] = strdup(name);
		}
	}
	assert_true(n >= 25);
	return names;
}

static void test_config_shipped_example_lists_every_key(void **state) {
	_cleanup_(strv_freep) char **names = key_names();
	_cleanup_(freep) char *text = unit_read_repo_file("etc/hitld.conf");

	for (char **n = names; *n; n++) {
		char needle[80];
		snprintf(needle, sizeof(needle), "\t#%s = ", *n);
		if (!strstr(text, needle))
			fail_msg("etc/hitld.conf does not list %s", *n);
	}
}

static void test_config_shipped_example_loads_and_uncommented_gives_defaults(void **state) {
	_cleanup_(freep) char *text = unit_read_repo_file("etc/hitld.conf");
	_cleanup_(config_freep) Config *c = NULL;
	_cleanup_(config_freep) Config *uncommented = NULL;
	_cleanup_(config_freep) Config *defaults = NULL;
	_cleanup_(freep) char *out = NULL;
	size_t size = 0;
	FILE *f;

	c = load_ok(text);
	assert_defaults(c);

	/* Turn every "\t#key = value;" line into a setting. */
	f = open_memstream(&out, &size);
	assert_non_null(f);
	for (const char *p = text; *p;) {
		const char *eol = strchrnul(p, '\n');
		if (p[0] == '\t' && p[1] == '#' && p[2] >= 'a' && p[2] <= 'z') {
			fputc('\t', f);
			p += 2;
		}
		fwrite(p, 1, (size_t) (eol - p), f);
		fputc('\n', f);
		p = *eol ? eol + 1 : eol;
	}
	assert_int_equal(fclose(f), 0);
	uncommented = load_ok(out);
	assert_int_equal(config_new_default(&defaults), 0);
	/* The two keys without a default show an example value. */
	assert_non_null(uncommented->api_key_file);
	assert_non_null(uncommented->api_ca_file);
	defaults->api_key_file = strdup(uncommented->api_key_file);
	defaults->api_ca_file = strdup(uncommented->api_ca_file);
	assert_same_config(defaults, uncommented);
}

static void test_config_man_page_documents_every_key(void **state) {
	_cleanup_(strv_freep) char **names = key_names();
	_cleanup_(freep) char *text = unit_read_repo_file("docs/hitld.conf.5");

	for (char **n = names; *n; n++) {
		char needle[80];
		snprintf(needle, sizeof(needle), "\n.B %s\n", *n);
		if (!strstr(text, needle))
			fail_msg("docs/hitld.conf.5 does not document %s", *n);
	}
}

int main(void) {
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config_new_default_holds_documented_defaults),
		cmocka_unit_test(test_config_missing_file_gives_defaults_when_optional),
		cmocka_unit_test(test_config_missing_file_is_an_error_when_required),
		cmocka_unit_test(test_config_optional_file_that_cannot_be_read_is_still_an_error),
		cmocka_unit_test(test_config_empty_file_gives_defaults_and_records_path),
		cmocka_unit_test(test_config_error_pointer_may_be_null),
		cmocka_unit_test(test_config_full_file_overrides_every_key),
		cmocka_unit_test(test_config_keys_left_out_keep_their_defaults),
		cmocka_unit_test(test_config_int64_literal_is_accepted_when_it_fits),
		cmocka_unit_test(test_config_hex_integer_is_accepted),
		cmocka_unit_test(test_config_webhook_is_off_by_default_and_reads_back),
		cmocka_unit_test(test_config_webhook_bad_values),
		cmocka_unit_test(test_config_webhook_sweep_interval),
		cmocka_unit_test(test_config_unknown_key_names_file_line_and_key),
		cmocka_unit_test(test_config_unknown_group_names_file_line_and_group),
		cmocka_unit_test(test_config_unknown_top_level_scalar_is_an_unknown_group),
		cmocka_unit_test(test_config_key_of_another_group_is_unknown),
		cmocka_unit_test(test_config_keys_are_case_sensitive),
		cmocka_unit_test(test_config_nested_group_is_an_unknown_key),
		cmocka_unit_test(test_config_string_where_integer_expected_is_a_type_error),
		cmocka_unit_test(test_config_integer_where_string_expected_is_a_type_error),
		cmocka_unit_test(test_config_float_is_a_type_error),
		cmocka_unit_test(test_config_boolean_is_a_type_error),
		cmocka_unit_test(test_config_array_and_list_are_type_errors),
		cmocka_unit_test(test_config_group_given_as_scalar_is_a_type_error),
		cmocka_unit_test(test_config_value_above_range_names_the_range),
		cmocka_unit_test(test_config_value_below_range_names_the_range),
		cmocka_unit_test(test_config_negative_value_is_out_of_range),
		cmocka_unit_test(test_config_range_bounds_are_inclusive),
		cmocka_unit_test(test_config_integer_that_overflows_int_is_out_of_range_not_wrapped),
		cmocka_unit_test(test_config_overflowing_integer_on_its_own_line_is_still_an_error),
		cmocka_unit_test(test_config_overflowing_integer_is_blamed_on_its_own_key),
		cmocka_unit_test(test_config_poll_reserve_above_half_the_limit_is_an_error),
		cmocka_unit_test(test_config_interactive_shares_scale_with_the_limit_unless_set),
		cmocka_unit_test(test_config_interactive_shares_must_nest_and_leave_the_reserve),
		cmocka_unit_test(test_config_default_poll_reserve_shrinks_to_half_a_small_limit),
		cmocka_unit_test(test_config_metrics_and_drain_warning),
		cmocka_unit_test(test_config_relative_paths_are_refused),
		cmocka_unit_test(test_config_socket_path_must_fit_sun_path),
		cmocka_unit_test(test_config_base_url_needs_http_or_https),
		cmocka_unit_test(test_config_base_url_plain_http_only_to_loopback),
		cmocka_unit_test(test_config_bad_group_name_is_refused),
		cmocka_unit_test(test_config_error_quotes_control_characters_of_values),
		cmocka_unit_test(test_config_mode_as_octal_string),
		cmocka_unit_test(test_config_mode_as_integer_is_decimal),
		cmocka_unit_test(test_config_mode_0660_written_as_integer_is_refused_with_a_hint),
		cmocka_unit_test(test_config_mode_string_must_be_octal_and_at_most_0777),
		cmocka_unit_test(test_config_mode_of_wrong_type_is_refused),
		cmocka_unit_test(test_config_loop_writes_accepts_admin_and_all_only),
		cmocka_unit_test(test_config_loop_writes_string_conversions),
		cmocka_unit_test(test_config_log_level_names),
		cmocka_unit_test(test_config_syntax_error_names_file_and_line),
		cmocka_unit_test(test_config_duplicate_key_is_an_error),
		cmocka_unit_test(test_config_include_is_refused),
		cmocka_unit_test(test_config_include_inside_string_or_comment_is_harmless),
		cmocka_unit_test(test_config_file_larger_than_1mib_is_refused),
		cmocka_unit_test(test_config_file_of_exactly_1mib_is_read),
		cmocka_unit_test(test_config_nul_byte_is_refused),
		cmocka_unit_test(test_config_fifo_is_refused_without_blocking),
		cmocka_unit_test(test_config_dump_of_full_file_reads_back_the_same),
		cmocka_unit_test(test_config_dump_of_defaults_reads_back_the_defaults),
		cmocka_unit_test(test_config_dump_escapes_strings),
		cmocka_unit_test(test_config_dump_mode_is_an_octal_string),
		cmocka_unit_test(test_config_shipped_example_lists_every_key),
		cmocka_unit_test(test_config_shipped_example_loads_and_uncommented_gives_defaults),
		cmocka_unit_test(test_config_man_page_documents_every_key),
	};

	return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}

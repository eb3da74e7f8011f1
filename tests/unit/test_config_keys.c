/* The table of hitld.conf's keys (config_keys.h): hitld.conf(5) says of
 * every key what the table says (a reload applies it, or it takes effect at
 * the next start), and config_reload_keep() keeps and names exactly the
 * changed start-only keys. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "config.h"
#include "unit_tmpdir.h"
#include "config_keys.h"

#define MAN_PAGE "docs/hitld.conf.5"
#define SAYS_RELOAD "\nA reload applies it.\n"
#define SAYS_START "\nTakes effect at the next start, not on reload.\n"

/* Counts needle in [p, end). */
static unsigned count_in(const char *p, const char *end, const char *needle) {
	unsigned n = 0;

	for (const char *q = p; (q = strstr(q, needle)) && q < end; q++)
		n++;
	return n;
}

static void test_the_man_page_says_of_every_key_what_the_table_says(void **state) {
	_cleanup_(freep) char *text = unit_read_repo_file(MAN_PAGE);

	for (size_t i = 0; i < CONFIG_KEYS_N; i++) {
		const KeyDef *k = &config_keys[i];
		char section[64], entry[80];
		const char *s, *e, *end, *next_sh;

		snprintf(section, sizeof section, "\n.SH \"THE %s GROUP\"\n", k->group);
		s = strstr(text, section);
		if (!s)
			fail_msg("%s has no section %s", MAN_PAGE, section + 1);
		next_sh = strstr(s + 1, "\n.SH ");
		snprintf(entry, sizeof entry, "\n.TP\n.B %s\n", k->name);
		e = strstr(s, entry);
		if (!e || (next_sh && e > next_sh))
			fail_msg("%s does not document %s in its group", MAN_PAGE, k->key);
		/* The entry runs to the next key or section. */
		end = strstr(e + 1, "\n.TP\n");
		if (!end || (next_sh && end > next_sh))
			end = next_sh ? next_sh : e + strlen(e);
		/* The phrase's leading newline may be the entry's last one. */
		end++;
		if (count_in(e, end, SAYS_RELOAD) != (k->reload ? 1U : 0U) ||
		    count_in(e, end, SAYS_START) != (k->reload ? 0U : 1U))
			fail_msg("%s: %s must say \"%s\" once (and not the other)", MAN_PAGE, k->key,
			         k->reload ? "A reload applies it." : "Takes effect at the next start, not on reload.");
	}
}

static void test_every_key_has_a_distinct_name_and_the_table_is_whole(void **state) {
	for (size_t i = 0; i < CONFIG_KEYS_N; i++) {
		char key[64];

		assert_non_null(config_keys[i].group);
		assert_non_null(config_keys[i].name);
		snprintf(key, sizeof key, "%s.%s", config_keys[i].group, config_keys[i].name);
		assert_string_equal(key, config_keys[i].key);
		for (size_t j = 0; j < i; j++)
			assert_string_not_equal(config_keys[i].key, config_keys[j].key);
	}
}

static void configp(Config **c) {
	*c = config_free(*c);
}

static void test_reload_keep_names_and_keeps_the_changed_start_only_keys(void **state) {
	_cleanup_(configp) Config *running = NULL, *loaded = NULL;
	const char *changed[CONFIG_KEYS_N];
	size_t n;

	assert_int_equal(config_new_default(&running), 0);
	assert_int_equal(config_new_default(&loaded), 0);
	assert_int_equal(config_reload_keep(loaded, running, changed), 0);

	/* Start-only: a string, an unsigned, a mode, an unset string set. */
	free(loaded->api_base_url);
	loaded->api_base_url = strdup("http://127.0.0.1:1/v1");
	loaded->api_timeout_s = 7;
	loaded->socket_mode = 0600;
	loaded->webhook_listen = strdup("127.0.0.1:8089");
	/* Reloadable: applied, never named. */
	loaded->budget_limit_per_hour = 40;
	loaded->budget_window_s = 20;
	loaded->log_level = 3;
	free(loaded->socket_admin_group);
	loaded->socket_admin_group = strdup("wheel");

	n = config_reload_keep(loaded, running, changed);
	assert_int_equal(n, 4);
	/* In the table's order. */
	assert_string_equal(changed[0], "api.base_url");
	assert_string_equal(changed[1], "api.timeout_s");
	assert_string_equal(changed[2], "socket.mode");
	assert_string_equal(changed[3], "webhook.listen");

	/* loaded holds what stays in effect... */
	assert_string_equal(loaded->api_base_url, "https://api.hitl.sh/v1");
	assert_int_equal(loaded->api_timeout_s, 30);
	assert_int_equal(loaded->socket_mode, 0660);
	assert_null(loaded->webhook_listen);
	assert_int_equal(loaded->budget_limit_per_hour, 40);
	assert_int_equal(loaded->budget_window_s, 20);
	assert_int_equal(loaded->log_level, 3);
	assert_string_equal(loaded->socket_admin_group, "wheel");
	/* ... and running, to be freed, what waits for the next start. */
	assert_string_equal(running->api_base_url, "http://127.0.0.1:1/v1");
	assert_string_equal(running->webhook_listen, "127.0.0.1:8089");

	/* The next reload of the same file names them again. */
	_cleanup_(configp) Config *again = NULL;
	assert_int_equal(config_new_default(&again), 0);
	free(again->api_base_url);
	again->api_base_url = strdup("http://127.0.0.1:1/v1");
	assert_int_equal(config_reload_keep(again, loaded, changed), 1);
	assert_string_equal(changed[0], "api.base_url");
}

int main(void) {
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_the_man_page_says_of_every_key_what_the_table_says),
		cmocka_unit_test(test_every_key_has_a_distinct_name_and_the_table_is_whole),
		cmocka_unit_test(test_reload_keep_names_and_keeps_the_changed_start_only_keys),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

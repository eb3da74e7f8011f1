/* test_ctl_output.c — hitlctl's human output (client/ctl_output.c) as it
 * reaches the terminal: the escape filter, tables whose columns line up in
 * display columns once their cells are escaped (a control byte shown as
 * \xHH is 4 columns, a CJK character 2, a combining mark 0), and shorten()
 * cutting in display columns. The expected widths are written out by hand,
 * not computed with the code under test. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "cleanup.h"
#include "ctl_output.h"

/* What fn(arg) writes to stdout, once through the terminal filter. */
static char *capture(void (*fn)(const void *arg), const void *arg) {
	FILE *f = tmpfile();
	int saved;
	long size;
	char *out;

	assert_non_null(f);
	fflush(stdout);
	saved = dup(STDOUT_FILENO);
	assert_true(saved >= 0);
	assert_true(dup2(fileno(f), STDOUT_FILENO) >= 0);
	fn(arg);
	term_filter_finish();
	assert_true(dup2(saved, STDOUT_FILENO) >= 0);
	close(saved);
	size = lseek(fileno(f), 0, SEEK_END);
	assert_true(size >= 0);
	out = calloc(1, (size_t) size + 1);
	assert_non_null(out);
	assert_int_equal(pread(fileno(f), out, (size_t) size, 0), size);
	fclose(f);
	return out;
}

static void print_table(const void *arg) {
	table_print(arg);
}

static void print_raw(const void *arg) {
	fputs(arg, stdout);
}

/* Appends a row of a two-column table whose first column is 11 display
 * columns wide: shown, padded from its width (given by hand) to 11 + 2. */
static void want_row(char *buf, size_t size, const char *shown, size_t columns, const char *last) {
	size_t used = strlen(buf);

	assert_true(columns <= 11);
	snprintf(buf + used, size - used, "%s%*s%s\n", shown, (int) (13 - columns), "", last);
}

static void test_table_columns_line_up_as_shown(void **state) {
	/* name as sent, as shown, and its width on the terminal */
	static const struct {
		const char *name, *shown;
		size_t columns;
	} rows[] = {
		{ "ctl\x01x", "ctl\\x01x", 8 },                  /* a control byte: \x01 is 4 columns */
		{ "\xE5\x90\x8D\xE5\x89\x8D", "\xE5\x90\x8D\xE5\x89\x8D", 4 }, /* 名前: two wide characters */
		{ "cafe\xCC\x81", "cafe\xCC\x81", 4 },           /* café with a combining acute: 0 columns */
		{ "bad\xFF", "bad\\xFF", 7 },                    /* not UTF-8 */
		{ "\xE2\x80\xAErtl", "\\u202Ertl", 9 },          /* a bidi override */
		{ "tab\there", "tab\\x09here", 11 },             /* a tab would jump to the next tab stop */
	};
	Table t = { .n_columns = 2, .headers = { "NAME", "N" } };
	char want[1024] = "";
	_cleanup_(freep) char *got = NULL;

	for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
		char n[8];
		const char *values[2] = { rows[i].name, n };

		snprintf(n, sizeof n, "%zu", i + 1);
		assert_int_equal(table_add(&t, values), 0);
	}
	got = capture(print_table, &t);
	table_free(&t);
	want_row(want, sizeof want, "NAME", 4, "N");
	for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
		char n[8];

		snprintf(n, sizeof n, "%zu", i + 1);
		want_row(want, sizeof want, rows[i].shown, rows[i].columns, n);
	}
	assert_string_equal(got, want);
}

static void test_a_wide_column_in_the_middle_keeps_the_next_one_aligned(void **state) {
	/* 日本語 is 6 columns; "x\x1b" shows as x\x1B, 5 columns. */
	Table t = { .n_columns = 3, .headers = { "ID", "NAME", "MEMBERS" } };
	const char *a[3] = { "a1", "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E", "1" }, *b[3] = { "b22", "x\x1b", "2" };
	_cleanup_(freep) char *got = NULL;

	assert_int_equal(table_add(&t, a), 0);
	assert_int_equal(table_add(&t, b), 0);
	got = capture(print_table, &t);
	table_free(&t);
	assert_string_equal(got, "ID   NAME    MEMBERS\n"
	                         "a1   \xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E  1\n"
	                         "b22  x\\x1B   2\n");
}

static void assert_shortened(const char *s, size_t max, const char *want) {
	_cleanup_(freep) char *got = shorten(s, max);

	assert_non_null(got);
	assert_string_equal(got, want);
}

static void test_shorten_cuts_in_display_columns_as_shown(void **state) {
	/* 名前名前名前: 12 columns; cut to 7, three fit with the ellipsis. */
	assert_shortened("\xE5\x90\x8D\xE5\x89\x8D\xE5\x90\x8D\xE5\x89\x8D\xE5\x90\x8D\xE5\x89\x8D", 7,
	                 "\xE5\x90\x8D\xE5\x89\x8D\xE5\x90\x8D…");
	assert_shortened("\xE5\x90\x8D\xE5\x89\x8D\xE5\x90\x8D\xE5\x89\x8D\xE5\x90\x8D\xE5\x89\x8D", 12,
	                 "\xE5\x90\x8D\xE5\x89\x8D\xE5\x90\x8D\xE5\x89\x8D\xE5\x90\x8D\xE5\x89\x8D");
	/* An escape is 4 columns and never cut in half. */
	assert_shortened("abc\x01" "def", 10, "abc\\x01def");
	assert_shortened("abc\x01" "def", 6, "abc…");
	/* A combining mark stays with its letter. */
	assert_shortened("e\xCC\x81" "e\xCC\x81" "e\xCC\x81", 3, "e\xCC\x81" "e\xCC\x81" "e\xCC\x81");
	assert_shortened("e\xCC\x81" "e\xCC\x81" "e\xCC\x81", 2, "e\xCC\x81…");
	/* The first line only; a tab shown as an escape. */
	assert_shortened("line one\nline two", 50, "line one…");
	assert_shortened("tab\tx", 50, "tab\\x09x");
	assert_shortened("", 50, "");
	assert_shortened(NULL, 50, "");
}

/* The filter itself, as every byte of stdout sees it (a guard for the
 * shared escaping code): tab and newline pass, the rest as documented. */
static void test_filter_escapes_what_it_documents(void **state) {
	_cleanup_(freep) char *got = capture(print_raw, "a\x1b[31m\xE2\x80\xAE" "b\t\n\xC2\x9B" "c\x7f\xE2\x82");

	assert_string_equal(got, "a\\x1B[31m\\u202Eb\t\n\\u009Bc\\x7F\\xE2\\x82");
}

int main(void) {
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table_columns_line_up_as_shown),
		cmocka_unit_test(test_a_wide_column_in_the_middle_keeps_the_next_one_aligned),
		cmocka_unit_test(test_shorten_cuts_in_display_columns_as_shown),
		cmocka_unit_test(test_filter_escapes_what_it_documents),
	};

	/* Widths are the user's locale's; the test's is a UTF-8 one. */
	setenv("LC_ALL", "C.UTF-8", 1);
	term_filter_install();
	return cmocka_run_group_tests(tests, NULL, NULL);
}

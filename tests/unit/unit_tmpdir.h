/* unit_tmpdir.h — temporary directories for the unit tests that need real
 * files (outbox, seglog, store, config, listener, pathtrust): one removal
 * for all of them instead of a copy in each test file; and the reading of a
 * file of the repository (a man page, the example configuration) that a test
 * checks against the code. */
#pragma once

/* Removes dir and everything below it, not following symlinks. 0 or -1. */
int unit_rm_tree(const char *dir);

/* mkdtemp(tmpl), then mode 0755: a directory the pathtrust walk accepts
 * (mkdtemp gives 0700, and the walk above it, /tmp and /, must be trusted for
 * a test on it to mean anything). 0 or -1. */
int unit_mkdtemp_trusted(char *tmpl);

/* The repository's file path (relative to the top directory, where the unit
 * tests run) as a NUL-terminated string to free. Fails the test if it cannot
 * be read: a check of the docs against the code must not pass by skipping. */
char *unit_read_repo_file(const char *path);

/* unit_tmpdir.h — temporary directories for the unit tests that need real
 * files (outbox, seglog, store, config, listener, pathtrust): one removal
 * for all of them instead of a copy in each test file. */
#pragma once

/* Removes dir and everything below it, not following symlinks. 0 or -1. */
int unit_rm_tree(const char *dir);

/* mkdtemp(tmpl), then mode 0755: a directory the pathtrust walk accepts
 * (mkdtemp gives 0700, and the walk above it, /tmp and /, must be trusted for
 * a test on it to mean anything). 0 or -1. */
int unit_mkdtemp_trusted(char *tmpl);

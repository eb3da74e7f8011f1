/* unit_tmpdir.h — temporary directories for the unit tests that need real
 * files (outbox, seglog, store, config, listener, pathtrust): one removal
 * for all of them instead of a copy in each test file. */
#pragma once

/* Removes dir and everything below it, not following symlinks. 0 or -1. */
int unit_rm_tree(const char *dir);

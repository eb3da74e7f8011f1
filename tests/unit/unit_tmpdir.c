/* unit_tmpdir.c — see unit_tmpdir.h. */
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "store.h"
#include "unit_tmpdir.h"

#define REPO_FILE_MAX (4U << 20)

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw) {
	(void) st;
	(void) type;
	(void) ftw;
	return remove(path);
}

int unit_rm_tree(const char *dir) {
	return nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int unit_mkdtemp_trusted(char *tmpl) {
	if (!mkdtemp(tmpl))
		return -1;
	return chmod(tmpl, 0755);
}

char *unit_read_repo_file(const char *path) {
	char *text = NULL;
	size_t len;
	int r = store_read_file(AT_FDCWD, path, REPO_FILE_MAX, &text, &len);

	if (r < 0)
		fail_msg("cannot read %s (run from the repository's top directory): %s", path, strerror(-r));
	return text;
}

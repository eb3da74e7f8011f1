/* unit_tmpdir.c — see unit_tmpdir.h. */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "unit_tmpdir.h"

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

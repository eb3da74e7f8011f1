/* ctl_input.c — what hitlctl reads from its user besides flags: bounded
 * files and stdin, JSON texts, numbers, yes/no words (see ctl_input.h). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cleanup.h"
#include "ctl_input.h"

int read_bounded(const char *path, size_t max, char **ret, size_t *ret_len) {
	_cleanup_(fclosep) FILE *f = NULL;
	_cleanup_(freep) char *buf = NULL;
	size_t len = 0, size = 0;
	FILE *in = stdin;

	if (!streq(path, "-")) {
		f = fopen(path, "re");
		if (!f)
			return negative_errno();
		in = f;
	}
	for (;;) {
		size_t n;

		if (size - len < 4096) {
			char *b;

			size = size ? size * 2 : 8192;
			b = realloc(buf, size + 1);
			if (!b)
				return -ENOMEM;
			buf = b;
		}
		n = fread(buf + len, 1, size - len, in);
		len += n;
		if (len > max)
			return -EFBIG;
		if (n == 0) {
			if (ferror(in))
				return -EIO;
			break;
		}
	}
	buf[len] = 0;
	if (memchr(buf, 0, len))
		return -EBADMSG;
	*ret = TAKE_PTR(buf);
	if (ret_len)
		*ret_len = len;
	return 0;
}

json_object *parse_json_text(const char *text) {
	enum json_tokener_error jerr;
	json_object *j = json_tokener_parse_verbose(text, &jerr);

	return jerr == json_tokener_success ? j : NULL;
}

/* A number as JSON: an integer when it is one, else a double; NULL if not a number. */
json_object *parse_number(const char *s) {
	char *end;
	long long i;
	double d;

	errno = 0;
	i = strtoll(s, &end, 10);
	if (*s && !*end && errno == 0)
		return json_object_new_int64(i);
	errno = 0;
	d = strtod(s, &end);
	if (*s && !*end && errno == 0 && isfinite(d))
		return json_object_new_double(d);
	return NULL;
}

int parse_bool_word(const char *s, bool *ret) {
	static const char *const yes[] = { "yes", "y", "true", "1", "on" }, *const no[] = { "no", "n", "false", "0", "off" };

	for (size_t i = 0; i < ELEMENTSOF(yes); i++)
		if (strcasecmp(s, yes[i]) == 0) {
			*ret = true;
			return 0;
		}
	for (size_t i = 0; i < ELEMENTSOF(no); i++)
		if (strcasecmp(s, no[i]) == 0) {
			*ret = false;
			return 0;
		}
	return -EINVAL;
}

int strv_push(char ***v, size_t *n, const char *s) {
	size_t i = *n;
	char **nv = realloc(*v, (i + 2) * sizeof(char *));

	if (!nv)
		return -ENOMEM;
	*v = nv;
	nv[i] = strdup(s);
	if (!nv[i])
		return -ENOMEM;
	nv[i + 1] = NULL;
	*n = i + 1;
	return 0;
}

void strv_free(char **v) {
	for (char **p = v; p && *p; p++)
		free(*p);
	free(v);
}

/* log.c — see log.h. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <systemd/sd-journal.h>

#include "log.h"

static int max_level = LOG_INFO;
static LogTarget target = LOG_TARGET_STDERR;

#define LOG_FIELDS_MAX 24
#define LOG_LINE_MAX 4096
#define JOURNAL_SOCKET "/run/systemd/journal/socket"

static bool stderr_is_journal(void) {
	const char *e = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2)
		return false;
	if (fstat(STDERR_FILENO, &st) < 0)
		return false;
	return (unsigned long long) st.st_dev == dev && (unsigned long long) st.st_ino == ino;
}

void log_setup(LogTarget t) {
	if (t == LOG_TARGET_AUTO)
		t = stderr_is_journal() ? LOG_TARGET_JOURNAL : LOG_TARGET_STDERR;
	target = t;
}

LogTarget log_get_target(void) {
	return target;
}

void log_set_max_level(int level) {
	max_level = level;
}

int log_get_max_level(void) {
	return max_level;
}

int log_level_from_string(const char *s) {
	static const char *const names[] = {
		[LOG_EMERG] = "emerg", [LOG_ALERT] = "alert", [LOG_CRIT] = "crit",
		[LOG_ERR] = "err", [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice",
		[LOG_INFO] = "info", [LOG_DEBUG] = "debug",
	};

	if (!s)
		return -EINVAL;
	if (strcasecmp(s, "error") == 0)
		return LOG_ERR;
	for (size_t i = 0; i < ELEMENTSOF(names); i++)
		if (strcasecmp(s, names[i]) == 0)
			return (int) i;
	return -EINVAL;
}

/* Returns < 0 when the entry did not reach journald. */
static int log_to_journal(const char *code_file, const char *code_line, const char *func, int priority,
                          const char *message_id, const LogField *fields, const char *message) {
	char buf[LOG_FIELDS_MAX + 4][LOG_LINE_MAX];
	struct iovec iov[LOG_FIELDS_MAX + 4];
	size_t n = 0;

	snprintf(buf[n], LOG_LINE_MAX, "PRIORITY=%d", priority);
	iov[n].iov_base = buf[n];
	iov[n].iov_len = strlen(buf[n]);
	n++;
	/* As for lines on stderr: "journalctl -t hitld" finds them. */
	snprintf(buf[n], LOG_LINE_MAX, "SYSLOG_IDENTIFIER=%s", program_invocation_short_name);
	iov[n].iov_base = buf[n];
	iov[n].iov_len = strlen(buf[n]);
	n++;
	snprintf(buf[n], LOG_LINE_MAX, "MESSAGE=%s", message);
	iov[n].iov_base = buf[n];
	iov[n].iov_len = strlen(buf[n]);
	n++;
	if (message_id) {
		snprintf(buf[n], LOG_LINE_MAX, "MESSAGE_ID=%s", message_id);
		iov[n].iov_base = buf[n];
		iov[n].iov_len = strlen(buf[n]);
		n++;
	}
	for (const LogField *f = fields; f && f->name && n < ELEMENTSOF(iov); f++) {
		if (!f->value)
			continue;
		snprintf(buf[n], LOG_LINE_MAX, "%s=%s", f->name, f->value);
		iov[n].iov_base = buf[n];
		iov[n].iov_len = strlen(buf[n]);
		n++;
	}
	/* sd_journal_sendv() reports success when the journal socket does not
	 * exist ("fail silently"): check, so that the line is not lost. */
	if (access(JOURNAL_SOCKET, F_OK) < 0)
		return -errno;
	return sd_journal_sendv_with_location(code_file, code_line, func, iov, (int) n);
}

static void log_to_stderr(int priority, const char *message) {
	/* One write per line, so lines of concurrent writers do not interleave. */
	char line[LOG_LINE_MAX + 8];
	int n = snprintf(line, sizeof line, "<%d>%s\n", priority, message);

	if (n < 0)
		return;
	if ((size_t) n >= sizeof line) {
		n = (int) sizeof line - 1;
		line[n - 1] = '\n';
	}
	(void) !write(STDERR_FILENO, line, (size_t) n);
}

int log_internalv_full(const char *code_file, const char *code_line, const char *func, int priority,
                       int error, const char *message_id, const LogField *fields, const char *format,
                       va_list ap) {
	char message[LOG_LINE_MAX];
	int saved = errno;

	if (error < 0)
		error = -error;
	if (LOG_PRI(priority) > max_level)
		return -error;

	errno = error;
	vsnprintf(message, sizeof message, format, ap);
	/* Keep each entry on one line on stderr and in MESSAGE=. */
	for (char *p = message; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';

	/* Without a journal, the same line goes to stderr. */
	if (target != LOG_TARGET_JOURNAL || log_to_journal(code_file, code_line, func, LOG_PRI(priority), message_id, fields,
	                                                  message) < 0)
		log_to_stderr(LOG_PRI(priority), message);

	errno = saved;
	return -error;
}

int log_internal_full(const char *code_file, const char *code_line, const char *func, int priority,
                      int error, const char *message_id, const LogField *fields, const char *format, ...) {
	va_list ap;
	int r;

	va_start(ap, format);
	r = log_internalv_full(code_file, code_line, func, priority, error, message_id, fields, format, ap);
	va_end(ap);
	return r;
}

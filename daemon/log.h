/* log.h — the one log module. Writes structured entries to the journal
 * (sd_journal_send, with MESSAGE_ID and HITL_* fields) when stderr is connected
 * to journald, else one line per entry to stderr with a "<N>" priority prefix
 * that journald and humans both read. Never given secrets: callers pass no key,
 * no Authorization header. */
#pragma once

#include <stdarg.h>
#include <syslog.h>

#include "cleanup.h"

typedef enum LogTarget {
	LOG_TARGET_AUTO,
	LOG_TARGET_STDERR,
	LOG_TARGET_JOURNAL,
	_LOG_TARGET_MAX,
	_LOG_TARGET_INVALID = -EINVAL,
} LogTarget;

/* One structured field: name is an upper-case journal field name
 * ("HITL_REQUEST_ID"), value a string (NULL fields are skipped). */
typedef struct LogField {
	const char *name;
	const char *value;
} LogField;

#define LOG_FIELDS(...) ((const LogField[]) { __VA_ARGS__, { NULL, NULL } })
#define LOG_NO_FIELDS ((const LogField[]) { { NULL, NULL } })

void log_setup(LogTarget target);
void log_set_max_level(int level);
int log_get_max_level(void);
int log_level_from_string(const char *s);
LogTarget log_get_target(void);

/* Logs message (printf format) at priority with an optional MESSAGE_ID (a
 * 32-hex-digit id, or NULL) and fields. %m is expanded from errno as usual.
 * Returns -abs(error) when error != 0, else 0, so callers can
 * "return log_…errno(r, …)". */
int log_internal_full(const char *code_file, const char *code_line, const char *func, int priority,
                      int error, const char *message_id, const LogField *fields, const char *format, ...)
	_printf_(8, 9);
int log_internalv_full(const char *code_file, const char *code_line, const char *func, int priority,
                       int error, const char *message_id, const LogField *fields, const char *format,
                       va_list ap) _printf_(8, 0);

/* The call site, in the form sd_journal_sendv_with_location() takes: journal
 * entries carry the CODE_FILE/CODE_LINE/CODE_FUNC of the code that logged,
 * not of this module. A wrapper that logs for its callers (engine.h's
 * request_log) is a macro too, so that the location stays its caller's. */
#define LOG_STRINGIFY_(x) #x
#define LOG_STRINGIFY(x) LOG_STRINGIFY_(x)
#define LOG_LOCATION "CODE_FILE=" __FILE__, "CODE_LINE=" LOG_STRINGIFY(__LINE__), __func__

#define log_internal(...) log_internal_full(LOG_LOCATION, __VA_ARGS__)
#define log_internalv(...) log_internalv_full(LOG_LOCATION, __VA_ARGS__)

#define log_full_errno(prio, error, ...) log_internal((prio), (error), NULL, NULL, __VA_ARGS__)
#define log_debug(...)   log_full_errno(LOG_DEBUG, 0, __VA_ARGS__)
#define log_info(...)    log_full_errno(LOG_INFO, 0, __VA_ARGS__)
#define log_notice(...)  log_full_errno(LOG_NOTICE, 0, __VA_ARGS__)
#define log_warning(...) log_full_errno(LOG_WARNING, 0, __VA_ARGS__)
#define log_error(...)   log_full_errno(LOG_ERR, 0, __VA_ARGS__)
#define log_debug_errno(e, ...)   log_full_errno(LOG_DEBUG, (e), __VA_ARGS__)
#define log_info_errno(e, ...)    log_full_errno(LOG_INFO, (e), __VA_ARGS__)
#define log_warning_errno(e, ...) log_full_errno(LOG_WARNING, (e), __VA_ARGS__)
#define log_error_errno(e, ...)   log_full_errno(LOG_ERR, (e), __VA_ARGS__)

/* An event of consequence: stable message id plus fields. */
#define log_event(prio, message_id, fields, ...) \
	log_internal((prio), 0, (message_id), (fields), __VA_ARGS__)

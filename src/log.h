/* log.h: one line per event on stderr, with a level and key=value fields. */
#ifndef HOOKCAST_LOG_H
#define HOOKCAST_LOG_H

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* Sets the threshold; safe to call from any thread at any time. */
void log_set_level(enum log_level level);
/* Parses "error", "warn", "info" or "debug"; -1 if it is none of them. */
int log_level_parse(const char *name, enum log_level *out);
int log_enabled(enum log_level level);

/*
 * Each call writes one line with a single write(2):
 *   ts=2026-11-23T05:43:39.123Z level=warn msg="MSG" FIELDS
 * FIELDS is a printf format for the key=value part and may be NULL; a
 * string from outside goes in through log_value().  Control bytes left in
 * the line are escaped all the same, so a call never writes two lines.
 * log_warn() and fatal() append error="strerror(errno)"; the x variants do not.
 */
void log_error(const char *msg, const char *fields, ...)
    __attribute__((format(printf, 2, 3)));
void log_warn(const char *msg, const char *fields, ...)
    __attribute__((format(printf, 2, 3)));
void log_warnx(const char *msg, const char *fields, ...)
    __attribute__((format(printf, 2, 3)));
void log_info(const char *msg, const char *fields, ...)
    __attribute__((format(printf, 2, 3)));
void log_debug(const char *msg, const char *fields, ...)
    __attribute__((format(printf, 2, 3)));
/*
 * Writes S (NULL: "") into BUF as one logfmt value and returns BUF, for a
 * "%s" in FIELDS: as it is when it is printable ASCII with no blank, '"',
 * '\\' or '=', otherwise in double quotes with '"' and '\\' escaped.  In
 * either form a byte that is not printable ASCII is written as \n, \r, \t
 * or \xHH, so text from outside (an address, a query parameter, a library's
 * error message) can neither end the line nor forge a field.  A value that
 * does not fit in LEN is cut, and still well formed.
 */
#define LOG_VALUE_MAX 512
const char *log_value(char *buf, size_t len, const char *s);

/* Start-up only: logs at error level and exits 1. */
void fatalx(const char *msg, const char *fields, ...)
    __attribute__((format(printf, 2, 3), noreturn));

#endif

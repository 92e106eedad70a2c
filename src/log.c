/* log.c: leveled, single-write log lines on stderr (journald adds the rest). */
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static _Atomic int log_threshold = LOG_INFO;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

void
log_set_level(enum log_level level)
{
	atomic_store(&log_threshold, (int)level);
}

int
log_level_parse(const char *name, enum log_level *out)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]);
	     i++)
		if (strcmp(name, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	return -1;
}

int
log_enabled(enum log_level level)
{
	return (int)level <= atomic_load(&log_threshold);
}

/*
 * Appends S to OUT (of LEN bytes, N used) for a log line: a byte that is not
 * printable ASCII is written as \n, \r, \t or \xHH, and so are '"' and
 * '\\' when ESC_QUOTES (inside a quoted value).  Returns the new N; what
 * does not fit is dropped, never half an escape.
 */
static size_t
log_escape(char *out, size_t len, size_t n, const char *s, int esc_quotes)
{
	static const char hex[] = "0123456789abcdef";
	char e[4];
	size_t k;

	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		k = 0;
		if (c == '\n')
			e[k++] = '\\', e[k++] = 'n';
		else if (c == '\r')
			e[k++] = '\\', e[k++] = 'r';
		else if (c == '\t')
			e[k++] = '\\', e[k++] = 't';
		else if (c < 0x20 || c >= 0x7f)
			e[k++] = '\\', e[k++] = 'x', e[k++] = hex[c >> 4],
			e[k++] = hex[c & 0xf];
		else if (esc_quotes && (c == '"' || c == '\\'))
			e[k++] = '\\', e[k++] = (char)c;
		else
			e[k++] = (char)c;
		if (n + k >= len)
			break;
		memcpy(out + n, e, k);
		n += k;
	}
	out[n] = '\0';
	return n;
}

const char *
log_value(char *buf, size_t len, const char *s)
{
	const unsigned char *p;
	size_t n;

	if (s == NULL)
		s = "";
	/* Bare when no logfmt reader can mistake it: no blank, quote, '='. */
	for (p = (const unsigned char *)s;
	     *p > 0x20 && *p < 0x7f && *p != '"' && *p != '\\' && *p != '=';
	     p++)
		;
	if (*p == '\0' && p != (const unsigned char *)s &&
	    (size_t)(p - (const unsigned char *)s) < len) {
		memcpy(buf, s, (size_t)(p - (const unsigned char *)s) + 1);
		return buf;
	}
	buf[0] = '"';
	n = log_escape(buf, len - 1, 1, s, 1);
	buf[n++] = '"';
	buf[n] = '\0';
	return buf;
}

/*
 * Formats the whole line into one buffer so concurrent lines never
 * interleave, then escapes any control byte left in it: whatever a caller
 * passed, one call is one line.  FIELDS is the callers' checked format.
 */
static void log_vemit(enum log_level, const char *, int, const char *, va_list)
    __attribute__((format(printf, 4, 0)));

static void
log_vemit(enum log_level level, const char *msg, int err, const char *fields,
    va_list ap)
{
	char raw[2048], line[2048 + 2], value[256], ebuf[128];
	struct timespec ts;
	struct tm tm;
	size_t n;
	int r;

	raw[0] = '\0';
	if (fields != NULL)
		vsnprintf(raw, sizeof(raw), fields, ap);
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(line, sizeof(line), "ts=%Y-%m-%dT%H:%M:%S", &tm);
	r = snprintf(line + n, sizeof(line) - n, ".%03ldZ level=%s msg=\"",
	    ts.tv_nsec / 1000000, level_names[level]);
	n += (r > 0) ? (size_t)r : 0;
	n = log_escape(line, sizeof(line) - 2, n, msg, 1);
	n = log_escape(line, sizeof(line) - 2, n, "\"", 0);
	if (raw[0] != '\0') {
		n = log_escape(line, sizeof(line) - 2, n, " ", 0);
		n = log_escape(line, sizeof(line) - 2, n, raw, 0);
	}
	if (err != 0) {
		n = log_escape(line, sizeof(line) - 2, n, " error=", 0);
		/* strerror_r (GNU's): any thread logs, and strerror races. */
		n = log_escape(line, sizeof(line) - 2, n,
		    log_value(value, sizeof(value),
			strerror_r(err, ebuf, sizeof(ebuf))),
		    0);
	}
	line[n++] = '\n';
	/* A failed write to stderr has nowhere better to be reported. */
	if (write(STDERR_FILENO, line, n) < 0)
		return;
}

#define LOG_FUNC(name, level, with_errno) \
	void name(const char *msg, const char *fields, ...) \
	{ \
		int saved = errno; \
		va_list ap; \
\
		if (!log_enabled(level)) \
			return; \
		va_start(ap, fields); \
		log_vemit(level, msg, (with_errno) ? saved : 0, fields, ap); \
		va_end(ap); \
		errno = saved; \
	}

LOG_FUNC(log_error, LOG_ERROR, 0)
LOG_FUNC(log_warn, LOG_WARN, 1)
LOG_FUNC(log_warnx, LOG_WARN, 0)
LOG_FUNC(log_info, LOG_INFO, 0)
LOG_FUNC(log_debug, LOG_DEBUG, 0)

void
fatalx(const char *msg, const char *fields, ...)
{
	va_list ap;

	va_start(ap, fields);
	log_vemit(LOG_ERROR, msg, 0, fields, ap);
	va_end(ap);
	exit(1); /* NOLINT(concurrency-mt-unsafe): start-up, one thread */
}

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
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
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

/* Formats the whole line into one buffer so concurrent lines never interleave. */
static void
log_vemit(enum log_level level, const char *msg, int err, const char *fields,
    va_list ap)
{
	char line[2048];
	struct timespec ts;
	struct tm tm;
	size_t n;
	int r;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(line, sizeof(line), "ts=%Y-%m-%dT%H:%M:%S", &tm);
	r = snprintf(line + n, sizeof(line) - n, ".%03ldZ level=%s msg=\"%s\"",
	    ts.tv_nsec / 1000000, level_names[level], msg);
	n += (r > 0) ? (size_t)r : 0;
	if (fields != NULL && n + 1 < sizeof(line)) {
		line[n++] = ' ';
		r = vsnprintf(line + n, sizeof(line) - n, fields, ap);
		n += (r > 0) ? (size_t)r : 0;
	}
	if (err != 0 && n < sizeof(line)) {
		r = snprintf(line + n, sizeof(line) - n, " error=\"%s\"",
		    strerror(err));
		n += (r > 0) ? (size_t)r : 0;
	}
	if (n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	/* A failed write to stderr has nowhere better to be reported. */
	if (write(STDERR_FILENO, line, n) < 0)
		return;
}

#define LOG_FUNC(name, level, with_errno)				\
void									\
name(const char *msg, const char *fields, ...)				\
{									\
	int saved = errno;						\
	va_list ap;							\
									\
	if (!log_enabled(level))					\
		return;							\
	va_start(ap, fields);						\
	log_vemit(level, msg, (with_errno) ? saved : 0, fields, ap);	\
	va_end(ap);							\
	errno = saved;							\
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
	exit(1);
}

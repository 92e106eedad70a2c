/* notify.c: sd_notify(3): ready, reloading, stopping, status, watchdog. */
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <systemd/sd-daemon.h>

#include "log.h"
#include "notify.h"

static pthread_once_t notify_once = PTHREAD_ONCE_INIT;
static uint64_t watchdog_usec;	       /* 0: no watchdog; set once */
static _Atomic uint64_t watchdog_last; /* monotonic µs of the last ping */
static atomic_int watchdog_failed;     /* a failed ping was logged */

/* The environment is read once: nothing in hookcast changes it later. */
static void
notify_init(void)
{
	uint64_t usec;

	if (sd_watchdog_enabled(0, &usec) > 0)
		watchdog_usec = usec;
}

static uint64_t
mono_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* Sends STATE; 0 sent or no manager, -1 (logged unless QUIET) on failure. */
static int
notify_send(const char *state, int quiet)
{
	char ebuf[128];
	int rc;

	if ((rc = sd_notify(0, state)) >= 0)
		return 0;
	/* The first assignment names the message: READY=1, WATCHDOG=1... */
	if (!quiet)
		log_warnx("cannot notify the service manager",
		    "state=%.*s "
		    "error=\"%s\"",
		    (int)strcspn(state, "\n"), state,
		    strerror_r(-rc, ebuf, sizeof(ebuf)));
	return -1;
}

void
notify_ready(void)
{
	notify_send("READY=1\nSTATUS=Accepting requests and delivering", 0);
}

void
notify_reloading(void)
{
	char state[128];

	/* systemd matches the reload to its own clock by this timestamp. */
	snprintf(state, sizeof(state),
	    "RELOADING=1\nMONOTONIC_USEC=%llu\n"
	    "STATUS=Reloading the configuration",
	    (unsigned long long)mono_usec());
	notify_send(state, 0);
}

void
notify_stopping(void)
{
	notify_send("STOPPING=1\nSTATUS=Stopping: letting deliveries in "
		    "flight finish",
	    0);
}

void
notify_status(const char *fmt, ...)
{
	char state[512] = "STATUS=";
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(state + 7, sizeof(state) - 7, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	/* A newline would start another assignment, not continue the text. */
	for (char *p = state + 7; *p != '\0'; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	notify_send(state, 0);
}

uint64_t
notify_watchdog_usec(void)
{
	pthread_once(&notify_once, notify_init);
	return watchdog_usec;
}

void
notify_watchdog(void)
{
	uint64_t now, last;

	pthread_once(&notify_once, notify_init);
	if (watchdog_usec == 0)
		return;
	now = mono_usec();
	last = atomic_load_explicit(&watchdog_last, memory_order_relaxed);
	if (last != 0 && now - last < watchdog_usec / 2)
		return;
	atomic_store_explicit(&watchdog_last, now, memory_order_relaxed);
	/* Pinged for ever: one line when it starts failing is enough. */
	if (notify_send("WATCHDOG=1", atomic_load(&watchdog_failed)) == -1)
		atomic_store(&watchdog_failed, 1);
	else
		atomic_store(&watchdog_failed, 0);
}

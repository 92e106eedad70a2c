/*
 * ticker.c: a thread that runs one function at the times it is told.
 *
 * DESIGN
 * The thread waits on a condition variable bound to CLOCK_MONOTONIC, so a
 * wall-clock step neither fires it early nor holds it back; the caller's
 * due() decides when, and may follow the wall clock itself.  ticker_stop()
 * sets t_stop under t_lock, signals and joins.  t_lock guards t_stop alone
 * and is never held with another lock, nor while due() or run() runs.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "log.h"
#include "ticker.h"

struct ticker {
	pthread_t t_thread;
	pthread_mutex_t t_lock;
	pthread_cond_t t_cond;
	int t_stop; /* under t_lock */
	int64_t (*t_due)(void *, int64_t);
	void (*t_run)(void *);
	void *t_arg;
};

static void *
ticker_loop(void *arg)
{
	struct ticker *t = arg;
	struct timespec ts;
	int64_t due;
	int stop;

	for (;;) {
		due = t->t_due(t->t_arg, clock_mono_ms());
		ts.tv_sec = (time_t)(due / 1000);
		ts.tv_nsec = (long)(due % 1000) * 1000000L;
		pthread_mutex_lock(&t->t_lock);
		while (!t->t_stop &&
		    pthread_cond_timedwait(&t->t_cond, &t->t_lock, &ts) !=
			ETIMEDOUT)
			;
		stop = t->t_stop;
		pthread_mutex_unlock(&t->t_lock);
		if (stop)
			break;
		t->t_run(t->t_arg);
	}
	return NULL;
}

struct ticker *
ticker_start(const char *name, int64_t (*due)(void *, int64_t),
    void (*run)(void *), void *arg)
{
	pthread_condattr_t attr;
	struct ticker *t;
	char ebuf[128];
	int rc;

	if ((t = calloc(1, sizeof(*t))) == NULL) {
		log_error("cannot start thread", "thread=%s reason=nomem",
		    name);
		return NULL;
	}
	t->t_due = due;
	t->t_run = run;
	t->t_arg = arg;
	pthread_mutex_init(&t->t_lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&t->t_cond, &attr);
	pthread_condattr_destroy(&attr);
	if ((rc = pthread_create(&t->t_thread, NULL, ticker_loop, t)) != 0) {
		log_error("cannot start thread", "thread=%s error=\"%s\"", name,
		    strerror_r(rc, ebuf, sizeof(ebuf)));
		pthread_cond_destroy(&t->t_cond);
		pthread_mutex_destroy(&t->t_lock);
		free(t);
		return NULL;
	}
	return t;
}

void
ticker_stop(struct ticker *t)
{
	if (t == NULL)
		return;
	pthread_mutex_lock(&t->t_lock);
	t->t_stop = 1;
	pthread_cond_signal(&t->t_cond);
	pthread_mutex_unlock(&t->t_lock);
	pthread_join(t->t_thread, NULL);
	pthread_cond_destroy(&t->t_cond);
	pthread_mutex_destroy(&t->t_lock);
	free(t);
}

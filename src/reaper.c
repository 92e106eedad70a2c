/*
 * reaper.c: evicts subscribers that stopped sending keep-alives.
 *
 * DESIGN
 * One thread waits on a condition variable bound to CLOCK_MONOTONIC, so a
 * wall-clock jump neither evicts everyone nor no one.  reaper_stop() sets
 * r_stop under r_lock, signals and joins.  Eviction itself takes the
 * subscriber map's write lock inside subs_reap(); r_lock is never held then.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "log.h"
#include "reaper.h"

struct reaper {
	pthread_t	 r_thread;
	pthread_mutex_t	 r_lock;
	pthread_cond_t	 r_cond;
	int		 r_stop;	/* under r_lock */
	struct subs	*r_subs;
	struct deliver	*r_deliver;
	long		 r_ttl_ms;
	long		 r_interval_ms;
};

static void
reaper_run_once(struct reaper *r)
{
	char la[LOG_VALUE_MAX];
	int64_t now = clock_mono_ms();
	struct sub **gone;
	size_t n;

	n = subs_reap(r->r_subs, now - r->r_ttl_ms, &gone);
	if (n == 0)
		return;
	deliver_wake(r->r_deliver);
	for (size_t i = 0; i < n; i++) {
		log_info("subscriber evicted", "address=%s idle_ms=%lld",
		    log_value(la, sizeof(la), sub_address(gone[i])),
		    (long long)(now - sub_keepalive_mono(gone[i])));
		sub_unref(gone[i]);
	}
	free(gone);
}

static void *
reaper_loop(void *arg)
{
	struct reaper *r = arg;
	struct timespec next;

	clock_gettime(CLOCK_MONOTONIC, &next);
	pthread_mutex_lock(&r->r_lock);
	while (!r->r_stop) {
		next.tv_sec += r->r_interval_ms / 1000;
		next.tv_nsec += (r->r_interval_ms % 1000) * 1000000L;
		if (next.tv_nsec >= 1000000000L) {
			next.tv_sec++;
			next.tv_nsec -= 1000000000L;
		}
		while (!r->r_stop && pthread_cond_timedwait(&r->r_cond,
		    &r->r_lock, &next) != ETIMEDOUT)
			;
		if (r->r_stop)
			break;
		pthread_mutex_unlock(&r->r_lock);
		reaper_run_once(r);
		pthread_mutex_lock(&r->r_lock);
	}
	pthread_mutex_unlock(&r->r_lock);
	return NULL;
}

struct reaper *
reaper_start(struct subs *s, struct deliver *d, long ttl_ms, long interval_ms)
{
	pthread_condattr_t attr;
	struct reaper *r;
	int rc;

	if ((r = calloc(1, sizeof(*r))) == NULL) {
		log_error("cannot start reaper", "reason=nomem");
		return NULL;
	}
	r->r_subs = s;
	r->r_deliver = d;
	r->r_ttl_ms = ttl_ms;
	r->r_interval_ms = interval_ms;
	pthread_mutex_init(&r->r_lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&r->r_cond, &attr);
	pthread_condattr_destroy(&attr);
	if ((rc = pthread_create(&r->r_thread, NULL, reaper_loop, r)) != 0) {
		log_error("cannot start reaper", "error=\"%s\"", strerror(rc));
		pthread_cond_destroy(&r->r_cond);
		pthread_mutex_destroy(&r->r_lock);
		free(r);
		return NULL;
	}
	return r;
}

void
reaper_stop(struct reaper *r)
{
	if (r == NULL)
		return;
	pthread_mutex_lock(&r->r_lock);
	r->r_stop = 1;
	pthread_cond_signal(&r->r_cond);
	pthread_mutex_unlock(&r->r_lock);
	pthread_join(r->r_thread, NULL);
	pthread_cond_destroy(&r->r_cond);
	pthread_mutex_destroy(&r->r_lock);
	free(r);
}

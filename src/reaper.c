/*
 * reaper.c: evicts subscribers that stopped sending keep-alives.
 *
 * DESIGN
 * A ticker (ticker.c) runs a round every rpr_interval_ms of the monotonic
 * clock, so a wall-clock jump neither evicts everyone nor no one.
 * Eviction takes the subscriber map's write lock inside subs_reap(); the
 * reaper has no lock of its own; a reload changes its TTL and interval
 * through atomics.
 */
#include <stdatomic.h>
#include <stdlib.h>

#include "clock.h"
#include "log.h"
#include "metrics.h"
#include "reaper.h"
#include "ticker.h"

struct reaper {
	struct ticker *rpr_ticker;
	struct subs *rpr_subs;
	/* Changed by a reload (reaper_set) while the ticker reads them. */
	_Atomic long rpr_ttl_ms;
	_Atomic long rpr_interval_ms;
	int64_t rpr_next; /* the ticker's: the next round, 0 none yet */
};

static void
reaper_run(void *arg)
{
	struct reaper *r = arg;
	char la[LOG_VALUE_MAX];
	int64_t now = clock_mono_ms();
	struct sub **gone;
	size_t n;

	n = subs_reap(r->rpr_subs, now - atomic_load(&r->rpr_ttl_ms), &gone);
	if (n == 0)
		return;
	metrics_evictions(n);
	/* Their removals reach delivery through the store, once committed. */
	for (size_t i = 0; i < n; i++) {
		log_info("subscriber evicted", "address=%s idle_ms=%lld",
		    log_value(la, sizeof(la), sub_address(gone[i])),
		    (long long)(now - sub_keepalive_mono(gone[i])));
		sub_unref(gone[i]);
	}
	free(gone);
}

/* Rounds keep to their interval, however long each one takes. */
static int64_t
reaper_due(void *arg, int64_t now)
{
	struct reaper *r = arg;

	r->rpr_next = (r->rpr_next != 0 ? r->rpr_next : now) +
	    atomic_load(&r->rpr_interval_ms);
	return r->rpr_next;
}

struct reaper *
reaper_start(struct subs *s, long ttl_ms, long interval_ms)
{
	struct reaper *r;

	if ((r = calloc(1, sizeof(*r))) == NULL) {
		log_error("cannot start reaper", "reason=nomem");
		return NULL;
	}
	r->rpr_subs = s;
	r->rpr_ttl_ms = ttl_ms;
	r->rpr_interval_ms = interval_ms;
	if ((r->rpr_ticker = ticker_start("reaper", reaper_due, reaper_run,
		 r)) == NULL) {
		free(r);
		return NULL;
	}
	return r;
}

void
reaper_set(struct reaper *r, long ttl_ms, long interval_ms)
{
	atomic_store(&r->rpr_ttl_ms, ttl_ms);
	atomic_store(&r->rpr_interval_ms, interval_ms);
}

void
reaper_stop(struct reaper *r)
{
	if (r == NULL)
		return;
	ticker_stop(r->rpr_ticker);
	free(r);
}

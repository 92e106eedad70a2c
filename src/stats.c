/*
 * stats.c: the last ten minutes of deliveries and publishes, for /stats.
 *
 * DESIGN
 * A ticker (ticker.c) wakes just past each multiple of STATS_INTERVAL_S
 * seconds of the wall clock (aimed afresh each time, so that a clock step
 * only moves the next wake-up) and closes the interval: how much
 * metrics.c's counters grew during it goes into a ring.  A request closes
 * whatever is due as well, then copies the ring out.  s_lock guards the
 * ring; it is never held with another lock, nor while formatting.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "metrics.h"
#include "stats.h"
#include "ticker.h"

#define INTERVAL_MS (STATS_INTERVAL_S * 1000L)
#define CLOSED	    (STATS_POINTS - 1) /* the intervals before the current */

struct point {
	int64_t p_index; /* which interval: unix seconds / 10 */
	uint64_t p_delivered, p_failed, p_accepted;
};

struct stats {
	struct ticker *s_ticker;
	pthread_mutex_t s_lock;
	int64_t s_index;	      /* the current interval */
	struct metrics_totals s_base; /* the counters at its start */
	struct point s_ring[CLOSED];  /* by p_index % CLOSED */
};

/* How much the counters grew from BASE to NOW. */
static struct point
growth(const struct metrics_totals *now, const struct metrics_totals *base)
{
	struct point p = { 0 };

	p.p_accepted = now->accepted - base->accepted;
	p.p_delivered = now->deliveries[METRICS_OK] -
	    base->deliveries[METRICS_OK];
	for (size_t i = 0; i < METRICS_RESULTS; i++)
		if (i != METRICS_OK)
			p.p_failed += now->deliveries[i] - base->deliveries[i];
	return p;
}

void
stats_sample(struct stats *s, int64_t now_ms)
{
	int64_t index = now_ms / INTERVAL_MS;
	struct metrics_totals t;

	pthread_mutex_lock(&s->s_lock);
	if (index > s->s_index) {
		/*
		 * Everything since the interval began is its own, even when
		 * the sample comes late; the intervals skipped, if any, count
		 * zero.
		 */
		metrics_totals(&t);
		s->s_ring[s->s_index % CLOSED] = growth(&t, &s->s_base);
		s->s_ring[s->s_index % CLOSED].p_index = s->s_index;
		s->s_base = t;
		s->s_index = index;
	}
	pthread_mutex_unlock(&s->s_lock);
}

char *
stats_render(struct stats *s, int64_t now_ms, size_t *len)
{
	struct point ring[CLOSED], cur;
	struct metrics_totals base, t;
	char *buf = NULL;
	size_t size = 0;
	int64_t index;
	FILE *f;
	int bad;

	stats_sample(s, now_ms);
	pthread_mutex_lock(&s->s_lock);
	memcpy(ring, s->s_ring, sizeof(ring));
	index = s->s_index;
	base = s->s_base;
	pthread_mutex_unlock(&s->s_lock);
	/* Read after the base: the counters only grow, so this never underflows. */
	metrics_totals(&t);
	cur = growth(&t, &base);

	if ((f = open_memstream(&buf, &size)) == NULL)
		return NULL;
	fprintf(f, "{\"interval_s\":%d,\"now\":%" PRId64 ",\"points\":[",
	    STATS_INTERVAL_S, now_ms / 1000);
	for (int64_t k = index - CLOSED; k <= index; k++) {
		struct point p = { 0 };

		if (k == index)
			p = cur;
		else if (k >= 0 && ring[k % CLOSED].p_index == k)
			p = ring[k % CLOSED];
		fprintf(f,
		    "%s{\"t\":%" PRId64 ",\"delivered\":%" PRIu64
		    ",\"failed\":%" PRIu64 ",\"accepted\":%" PRIu64 "}",
		    k > index - CLOSED ? "," : "", k * STATS_INTERVAL_S,
		    p.p_delivered, p.p_failed, p.p_accepted);
	}
	fputs("]}\n", f);
	bad = ferror(f);
	if (fclose(f) != 0 || bad) {
		free(buf);
		return NULL;
	}
	*len = size;
	return buf;
}

/* Just past the next boundary of the wall clock. */
static int64_t
stats_due(void *arg, int64_t now)
{
	(void)arg;
	return now + INTERVAL_MS - clock_real_ms() % INTERVAL_MS + 1;
}

static void
stats_run(void *arg)
{
	stats_sample(arg, clock_real_ms());
}

struct stats *
stats_start(void)
{
	struct stats *s;

	if ((s = calloc(1, sizeof(*s))) == NULL) {
		log_error("cannot start stats", "reason=nomem");
		return NULL;
	}
	for (size_t i = 0; i < CLOSED; i++)
		s->s_ring[i].p_index = -1;
	s->s_index = clock_real_ms() / INTERVAL_MS;
	metrics_totals(&s->s_base);
	pthread_mutex_init(&s->s_lock, NULL);
	if ((s->s_ticker = ticker_start("stats", stats_due, stats_run, s)) ==
	    NULL) {
		pthread_mutex_destroy(&s->s_lock);
		free(s);
		return NULL;
	}
	return s;
}

void
stats_stop(struct stats *s)
{
	if (s == NULL)
		return;
	ticker_stop(s->s_ticker);
	pthread_mutex_destroy(&s->s_lock);
	free(s);
}

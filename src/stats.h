/* stats.h: deliveries and publishes per 10-second interval, for GET /stats. */
#ifndef HOOKCAST_STATS_H
#define HOOKCAST_STATS_H

#include <stddef.h>
#include <stdint.h>

#define STATS_INTERVAL_S 10
#define STATS_POINTS	 60 /* ten minutes, the current one last */

struct stats;

/*
 * Starts the thread that closes an interval at each multiple of
 * STATS_INTERVAL_S seconds of the wall clock, sampling metrics_totals().
 * NULL (logged) on failure.
 */
struct stats *stats_start(void);
/* Stops and joins the thread, then frees.  NULL-safe. */
void stats_stop(struct stats *s);

/*
 * Closes the intervals that ended by NOW_MS (wall clock): what the thread
 * does at each boundary.  A clock that stepped back closes nothing.
 */
void stats_sample(struct stats *s, int64_t now_ms);

/*
 * The JSON of /stats as of NOW_MS:
 *   {"interval_s":10,"now":S,"points":[{"t":S,"delivered":N,"failed":N,
 *    "accepted":N},...]}
 * always STATS_POINTS points, oldest first, the current partial interval
 * last; an interval before the start counts zero.  Returns a malloc'd
 * buffer of *len bytes (the caller frees it), or NULL when out of memory.
 */
char *stats_render(struct stats *s, int64_t now_ms, size_t *len);

#endif

/* reaper.h: the thread that evicts subscribers whose keep-alive ran out. */
#ifndef HOOKCAST_REAPER_H
#define HOOKCAST_REAPER_H

#include "subs.h"

struct reaper;

/*
 * Every INTERVAL_MS, evicts the subscribers of S not kept alive within the
 * last TTL_MS (the map's hooks pass the removals on).  NULL (logged) if the
 * thread cannot start.
 */
struct reaper *reaper_start(struct subs *s, long ttl_ms, long interval_ms);
/*
 * Reload: the next round judges by TTL_MS, and the one after starts
 * INTERVAL_MS after it.
 */
void reaper_set(struct reaper *r, long ttl_ms, long interval_ms);
/* Stops and joins the thread, then frees it.  NULL-safe. */
void reaper_stop(struct reaper *r);

#endif

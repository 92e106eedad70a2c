/* ticker.h: a thread that runs one function at the times it is told, until stopped. */
#ifndef HOOKCAST_TICKER_H
#define HOOKCAST_TICKER_H

#include <stdint.h>

struct ticker;

/*
 * Starts a thread that asks DUE(ARG, NOW) (NOW: monotonic ms) when to run
 * next, as a monotonic ms, sleeps until then, calls RUN(ARG), and asks
 * again.  Both run on the thread, with no lock held.  NAME is for the log.
 * NULL (logged) if the thread cannot start.
 */
struct ticker *ticker_start(const char *name,
    int64_t (*due)(void *arg, int64_t now), void (*run)(void *arg), void *arg);
/* Wakes the thread, lets a RUN under way finish, joins and frees.  NULL-safe. */
void ticker_stop(struct ticker *t);

#endif

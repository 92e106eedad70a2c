/* deliver.h: the delivery thread, sole owner of every libcurl handle. */
#ifndef HOOKCAST_DELIVER_H
#define HOOKCAST_DELIVER_H

#include "config.h"
#include "msg.h"
#include "subs.h"

struct deliver;

/* Creates the multi handle and starts the thread; NULL (logged) on failure. */
struct deliver *deliver_start(const struct config *cfg);

/*
 * Stops taking work, lets queued and in-flight deliveries finish for up to
 * GRACE_MS, abandons (and logs) the rest, joins the thread and frees
 * everything.  NULL-safe.
 */
void deliver_stop(struct deliver *d, long grace_ms);

/*
 * The subs_hooks of the subscriber map: they run under its write lock, so
 * they only queue the change.  The next deliver_publish() or deliver_wake()
 * makes the thread act on it; commands are handled in the order queued.
 * deliver_on_add returns -1 when out of memory (the map then refuses the
 * subscriber); deliver_on_remove needs no memory and cannot fail.
 */
int deliver_on_add(struct sub *sub, void *d);
void deliver_on_remove(struct sub *sub, void *d);
void deliver_wake(struct deliver *d);

/*
 * Queues M for every subscriber the thread knows when it gets to it (so
 * every registration queued before this call).  Takes its own reference.
 * Returns -1 when out of memory; nothing is queued then.
 */
int deliver_publish(struct deliver *d, struct msg *m);

/*
 * 1 when more than half of the subscribers have FIFOs over half full, or
 * half a FIFO's worth of publishes (at least 64) waits in the inbox: the
 * daemon as a whole is not keeping up, and publishers should be told to
 * wait (503) rather than have messages dropped.  A minority of slow
 * subscribers never makes it 1; they lose their oldest messages instead.
 */
int deliver_overloaded(struct deliver *d);

#endif

/* route.h: which targets a published message goes to, by topic. */
#ifndef HOOKCAST_ROUTE_H
#define HOOKCAST_ROUTE_H

#include <stdint.h>

#include "deliver_internal.h"
#include "msg.h"

/*
 * Delivery-internal (see deliver_internal.h): the delivery thread's list
 * of targets (d_targets), and struct route, which files them by topic.
 * Not locked: only the delivery thread uses it.
 */
struct route;

/* NULL, logged, when out of memory. */
struct route *route_new(void);
void route_free(struct route *r); /* NULL-safe */

/*
 * Adds T to D's targets and files it by its topics: 0, or -1 (nothing
 * changed) when out of memory.  The caller resizes the connection cache.
 */
int route_add_target(struct dthread *d, struct target *t);
void route_remove_target(struct dthread *d, struct target *t);
/* D's target whose store id is ID, or NULL. */
struct target *route_find(struct dthread *d, int64_t id);

/*
 * M, committed (the caller's reference is taken), becomes D's newest
 * message and is offered to every target whose topics it matches.
 */
void route_publish(struct dthread *d, struct msg *m);
/*
 * T's topics are now TOPICS (whose reference this takes): routing follows
 * from the next message on; what is pending stays routed as it was.
 */
void route_retopic(struct dthread *d, struct target *t, struct topics *topics);

#endif

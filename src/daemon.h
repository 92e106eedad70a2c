/* daemon.h: the whole stack, started and stopped in one order. */
#ifndef HOOKCAST_DAEMON_H
#define HOOKCAST_DAEMON_H

#include "config.h"

struct daemon;
struct api;
struct deliver;
struct store;
struct subs;

/*
 * The parts daemon_start starts besides the core (the store, the
 * subscriber map wired to it, delivery wired to the store).
 */
#define DAEMON_API    0x1 /* the HTTP front end and the /stats sampler */
#define DAEMON_REAPER 0x2 /* keep-alive eviction */
#define DAEMON_ALL    (DAEMON_API | DAEMON_REAPER)

/*
 * Opens the store, puts its subscribers back, starts delivery, the store's
 * writer and the PARTS asked for, in that order.  CFG is borrowed until
 * daemon_stop.  NULL, with the failing part logged ("start-up failed") and
 * whatever had started stopped again, on failure.
 */
struct daemon *daemon_start(const struct config *cfg, int parts);

/*
 * Reload: hands CFG (a config_share() copy) to every part.  -1, with
 * nothing changed, when the front end refuses it (out of memory).
 */
int daemon_reload(struct daemon *dm, const struct config *cfg);

/*
 * Stops everything in the order that loses nothing: store requests
 * answered, front end, sampler and reaper stopped, delivery given GRACE_MS
 * for what is in flight, the store's queue committed.  NULL-safe.
 */
void daemon_stop(struct daemon *dm, long grace_ms);

/* Its parts, borrowed; NULL for a part not started. */
struct store *daemon_store(const struct daemon *dm);
struct subs *daemon_subs(const struct daemon *dm);
struct deliver *daemon_deliver(const struct daemon *dm);
struct api *daemon_api(const struct daemon *dm);

#endif

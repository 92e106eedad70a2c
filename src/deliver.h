/* deliver.h: the delivery threads, sole owners of every libcurl handle. */
#ifndef HOOKCAST_DELIVER_H
#define HOOKCAST_DELIVER_H

#include <sys/socket.h>

#include "config.h"
#include "metrics.h"
#include "msg.h"
#include "subs.h"

struct deliver;
struct store;
struct store_replay;

/* delivery_threads at most; a thread owns whole shards (SUBS_SHARDS). */
#define DELIVER_THREADS_MAX CONFIG_THREADS_MAX

/*
 * Starts cfg->delivery_threads threads, each with its own multi handle,
 * owning the shards s with s % delivery_threads == its index (0-based), and
 * with them the subscribers in those shards; NULL (logged) on failure.
 * ST is where backlogs are read back from and progress, retries and dead
 * letters go; LAST_SEQ the newest message already stored.  SUBS is the map
 * a subscriber answering 410 Gone is removed from.
 */
struct deliver *deliver_start(const struct config *cfg, struct store *st,
    struct subs *subs, uint64_t last_seq);

/*
 * What deliver_start() would refuse in CFG that the config parser cannot
 * see (an unreadable ca_file): -1 with the reason in ERR (and errno set).
 */
int deliver_check(const struct config *cfg, char err[CONFIG_ERRLEN]);

/*
 * Reload: the thread takes CFG (a config_share() copy; it holds its own
 * reference) for everything it decides from now on.  Settings config.c
 * marks as needing a restart must be unchanged in CFG.
 */
void deliver_reload(struct deliver *d, const struct config *cfg);

/*
 * Starts nothing new, lets the deliveries in flight finish for up to
 * GRACE_MS, abandons the rest (they stay in the store, to be sent again),
 * saves every subscriber's progress, joins the thread and frees everything.
 * NULL-safe.
 */
void deliver_stop(struct deliver *d, long grace_ms);

/*
 * A subscriber the store has committed (its store id and first message are
 * set), and one that has left the map.  Commands are handled in the order
 * queued, once deliver_wake() is called (the store calls it once for all it
 * passes on from one commit).  deliver_on_add returns -1 when out of
 * memory; deliver_on_remove needs no memory and cannot fail.
 */
int deliver_on_add(struct sub *sub, struct topics *topics, const char *secret,
    void *d);
void deliver_on_remove(struct sub *sub, void *d);
/*
 * Its topics or secret changed (committed; TOPICS and SECRET as they were
 * then): -1, logged, when out of memory.
 */
int deliver_on_change(struct sub *sub, struct topics *topics,
    const char *secret, void *d);
void deliver_wake(struct deliver *d);

int deliver_threads(const struct deliver *d);
/*
 * Monotonic ms when thread I last went round its loop, which it does every
 * 50 ms when idle and at least once a second when busy: a heartbeat much
 * older than that means the thread is stuck.
 */
int64_t deliver_thread_heartbeat(const struct deliver *d, int i);

/* Thread I's figures for /metrics, as of now. */
void deliver_thread_figures(const struct deliver *d, int i,
    struct metrics_thread *f);
/* Delivery attempts in progress, on every thread. */
long deliver_in_flight(const struct deliver *d);

/* The API listens at SA (with its port): deliveries never connect there. */
void deliver_set_self(struct deliver *d, const struct sockaddr *sa, size_t len);

/*
 * Queues M, committed, for every subscriber the thread knows when it gets
 * to it (after the next deliver_wake).  Takes its own reference.  -1 when
 * out of memory.
 */
int deliver_publish(struct deliver *d, struct msg *m);

/* Dead letters the store turned back into retries (due now). */
void deliver_replay(struct deliver *d, const struct store_replay *items,
    size_t n);

#endif

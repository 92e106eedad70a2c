/* subs.h: the subscriber map, keyed by address, under one rwlock. */
#ifndef HOOKCAST_SUBS_H
#define HOOKCAST_SUBS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>

#include "sign.h"

struct subs;
struct sub;
struct topics;

/* Delivery figures of one subscriber; written by the delivery thread, read by anyone. */
struct sub_counters {
	atomic_uint_fast64_t queued;
	atomic_uint_fast64_t in_flight;
	atomic_uint_fast64_t delivered;
	atomic_uint_fast64_t failed;
	atomic_uint_fast64_t retrying;
};

#define SUB_ERRLEN 160

/*
 * Called with the map's write lock held, in the order the changes happen:
 * on_add when a subscriber enters the map, on_remove when it leaves,
 * on_change once its topics or secret have changed (it reads the new ones;
 * when it returns -1 the change is undone and subs_add answers
 * SUBS_NOMEM).  Each
 * receives a borrowed pointer (take a reference with sub_ref to keep it) and
 * must not block or call back into the map.  When on_add returns -1 the
 * subscriber is not added and subs_add answers SUBS_NOMEM.
 */
struct subs_hooks {
	int (*on_add)(struct sub *, void *);
	void (*on_remove)(struct sub *, void *);
	int (*on_change)(struct sub *, void *); /* topics or secret */
	void *arg;
};

struct subs *subs_new(size_t max, const struct subs_hooks *hooks);
/* Frees the map and drops its references; the hooks are not called. */
void subs_free(struct subs *s);

/* Refreshes ADDRESS's keep-alive: 0 if it is registered, -1 if not. */
int subs_keepalive(struct subs *s, const char *address, int64_t real_ms,
    int64_t mono_ms);

/*
 * What a registration sets besides the address.  has_topics: TOPICS (NULL:
 * every topic) replaces the set; otherwise a refresh keeps it.  SECRET
 * ("whsec_..", checked) replaces the subscriber's own; NULL keeps it.
 */
struct sub_opts {
	int has_topics;
	struct topics *topics; /* borrowed; the map takes a reference */
	const char *secret;
};

enum subs_add_result {
	SUBS_ADDED,
	SUBS_REFRESHED,
	SUBS_CHANGED,
	SUBS_FULL,
	SUBS_NOMEM
};
/*
 * Registers ADDRESS (events go to URL, which the map takes over on
 * SUBS_ADDED and otherwise leaves to the caller) with OPTS (NULL: none), or,
 * if it is there, refreshes it: SUBS_CHANGED when OPTS changed its topics
 * or secret, SUBS_REFRESHED when they were as asked already.
 */
enum subs_add_result subs_add(struct subs *s, const char *address, CURLU *url,
    const char *url_text, const struct sub_opts *opts, int64_t real_ms,
    int64_t mono_ms);

/*
 * Counts the subscribers a message on TOPICS (NULL: none) goes to and
 * passes the count to THEN, under the same read lock: what THEN queues for
 * the store is thereby ordered against every change to the map, whose hooks
 * queue theirs under the write lock.  Returns what THEN returns.
 */
int subs_count_then(struct subs *s, const struct topics *topics,
    int (*then)(void *, size_t), void *arg);
/*
 * The same for N messages at once: COUNTS[i] for a message on TOPICS[i],
 * then THEN(ARG), all under one read lock.
 */
int subs_count_each_then(struct subs *s, const struct topics *const *topics,
    size_t n, size_t *counts, int (*then)(void *), void *arg);

/* Why a subscriber left the map. */
enum sub_end { SUB_DEREGISTERED, SUB_EVICTED, SUB_GONE };

/* Removes ADDRESS, noting WHY: 0 if it was registered, -1 if not. */
int subs_remove(struct subs *s, const char *address, enum sub_end why);

/* Removes SUB itself, not another registered at its address since: 0 or -1. */
int subs_remove_sub(struct subs *s, struct sub *sub, enum sub_end why);

/* A subscriber as the store kept it, to be put back at start-up. */
struct sub_saved {
	const char *address;
	const char *url_text;
	int64_t registered_real;
	int64_t keepalive_real, keepalive_mono;
	int64_t store_id;
	uint64_t start;	    /* first message sequence not yet done */
	const char *topics; /* as topics_text() wrote them; NULL, "": none */
	const char *secret; /* NULL, "": none */
};
/* Like subs_add (the hooks run), for a subscriber read back from the store. */
enum subs_add_result subs_restore(struct subs *s, const struct sub_saved *saved,
    CURLU *url);

/*
 * Removes every subscriber whose last keep-alive is before CUTOFF_MONO.
 * Returns them in *gone (an array of references the caller drops with
 * sub_unref, then frees) and their count.
 */
size_t subs_reap(struct subs *s, int64_t cutoff_mono, struct sub ***gone);

/*
 * References to every subscriber, sorted by address, in *out (free each with
 * sub_unref, then the array).  Returns the count, or -1 when out of memory.
 */
long subs_snapshot(struct subs *s, struct sub ***out);
size_t subs_count(struct subs *s);
/* Reload: new registrations are refused beyond MAX; none is evicted for it. */
void subs_set_max(struct subs *s, size_t max);

/* Totals over every subscriber, for /metrics. */
struct subs_census {
	uint64_t active, failing;  /* by sub_state */
	uint64_t queued, retrying; /* their sub_counters, summed */
};
/* Takes the totals under the read lock, which it holds for nothing else. */
void subs_census(struct subs *s, struct subs_census *out);

struct sub *sub_ref(struct sub *sub);
void sub_unref(struct sub *sub);

const char *sub_address(const struct sub *sub);

/*
 * Shards: a subscriber belongs to shard subs_shard_of(its address) for
 * its whole life, the unit in which delivery (and, later, a cluster node)
 * owns subscribers.  The function is part of the interface and must never
 * change: the 64-bit FNV-1a hash (offset basis 0xcbf29ce484222325, prime
 * 0x100000001b3) of the address's bytes as registered (the map's key),
 * modulo SUBS_SHARDS.  doc/api.md documents it; tests check it against an
 * independent implementation.
 */
#define SUBS_SHARDS 64
unsigned subs_shard_of(const char *address);
unsigned sub_shard(const struct sub *sub);
const char *sub_url_text(const struct sub *sub);
const CURLU *sub_url(const struct sub *sub);
int64_t sub_registered_ms(const struct sub *sub);
int64_t sub_keepalive_ms(const struct sub *sub); /* wall clock */
int64_t sub_keepalive_mono(const struct sub *sub);
struct sub_counters *sub_counters(struct sub *sub);
void sub_set_error(struct sub *sub, const char *error);
/* Copies the last delivery error ("" for none) into buf. */
void sub_get_error(struct sub *sub, char buf[SUB_ERRLEN]);
/* Its topics now: a reference the caller drops (NULL: every topic). */
struct topics *sub_topics(struct sub *sub);
/* Its own secret now, copied into buf ("" for none); never listed or logged. */
void sub_get_secret(struct sub *sub, char buf[SIGN_SECRET_MAX + 1]);

/*
 * The store's row for the subscriber and the first message sequence it is
 * to get; the store sets them before the delivery thread hears of it.
 */
int64_t sub_store_id(const struct sub *sub);
uint64_t sub_start(const struct sub *sub);
void sub_set_store(struct sub *sub, int64_t id, uint64_t start);

/* Written by the delivery thread; shown in the listing. */
enum sub_state { SUB_ACTIVE, SUB_FAILING };
enum sub_state sub_state(const struct sub *sub);
void sub_set_state(struct sub *sub, enum sub_state st);

/* 1 for a subscriber subs_restore put back (it may have retries saved). */
int sub_restored(const struct sub *sub);

/* Why it left the map; meaningful once on_remove has run. */
enum sub_end sub_end(const struct sub *sub);
/* WHY in words ("deregistered", "evicted", "gone"), for logs and dead letters. */
const char *sub_end_reason(enum sub_end why);

/* One slot the delivery thread alone reads and writes. */
void *sub_deliver_state(const struct sub *sub);
void sub_set_deliver_state(struct sub *sub, void *state);
/* And one for the store's hooks. */
void *sub_store_state(const struct sub *sub);
void sub_set_store_state(struct sub *sub, void *state);

#endif

/* target.h: one subscriber's queue: FIFO, stored backlog, retries. */
#ifndef HOOKCAST_TARGET_H
#define HOOKCAST_TARGET_H

#include <assert.h>
#include <stdatomic.h>
#include <stdint.h>

#include "deliver_internal.h"
#include "msg.h"

/*
 * Delivery-internal (see deliver_internal.h): every function runs on the
 * delivery thread.  The small ones the per-delivery path calls are inline
 * here so that splitting the files cost that path no call.
 */

/* What a target would start next (target_next). */
enum target_work {
	TARGET_IDLE,   /* nothing now */
	TARGET_RETRY,  /* its first retry, due */
	TARGET_FIFO,   /* its FIFO's head */
	TARGET_STORED, /* a backlog to read back from the store */
};

/*
 * A new target for SUB (referenced) with TOPICS (referenced) and its own
 * SECRET (NULL or "": none).  NULL, logged, when out of memory or when the
 * secret cannot be used: it would sign with the wrong key.
 */
struct target *target_new(struct sub *sub, struct topics *topics,
    const char *secret);

/*
 * The store committed it and FILED says whether route_add_target() took
 * it: then T's backlog and retries are read back when it is restored;
 * otherwise (out of memory) it is marked removed (tg_index SIZE_MAX), its
 * subscriber says so, and its remove command frees it.
 */
void target_attach(struct dthread *d, struct target *t, int filed);
/*
 * The subscriber has left (and route_remove_target() has dropped T): what
 * it had not started becomes dead letters (dead_letter_on_evict), and when
 * its last delivery in flight is over the store turns its retries into
 * dead letters too and forgets it.
 */
void target_detach(struct dthread *d, struct target *t);
/* Frees T once nothing refers to it: removed, idle and off the ready list. */
void target_release(struct dthread *d, struct target *t);

/* Reads T's next page of backlog into its FIFO. */
void target_refill(struct dthread *d, struct target *t);
/* Empties T's FIFO into the store's backlog, to be read back later. */
void target_spill(struct dthread *d, struct target *t);
/* Drops T's FIFO (the messages stay in the store). */
void target_clear(struct target *t);
/* The first message of T not yet started: FIFO head, or stored backlog. */
uint64_t target_unsent(const struct dthread *d, const struct target *t);
/*
 * T's topics changed from OLD (whose reference this takes): what is
 * pending stays routed by OLD.
 */
void target_keep_topics(struct dthread *d, struct target *t,
    struct topics *old);

/* Files R (its message reference moves to T) among T's retries. */
void target_retry_add(struct dthread *d, struct target *t,
    const struct target_retry *r);
/* 1 if a retry of message SEQ is among T's. */
int target_retry_find(const struct target *t, uint64_t seq);
/* Takes T's first retry into OUT. */
void target_retry_take(struct target *t, struct target_retry *out);

/* Doubles T's FIFO: 0, or -1 (unchanged) when out of memory. */
int target_grow(struct target *t);
/* A failing target is active again, its retries due at once. */
void target_revive(struct dthread *d, struct target *t);
/*
 * A failing target whose probe has used up the schedule: everything it has
 * pending becomes a dead letter, and it starts afresh with new messages.
 * REAL: wall-clock ms, now.
 */
void target_give_up(struct dthread *d, struct target *t, int64_t real);

static inline long
target_max_in_flight(const struct dthread *d)
{
	return d->d_cfg->ordered ? 1 : d->d_cfg->max_in_flight;
}

/*
 * What T would start next.  A failing subscriber only gets its retry
 * probe, one at a time; an ordered one holds everything behind a retry.
 */
static inline enum target_work
target_next(const struct dthread *d, const struct target *t)
{
	if (t->tg_removed || t->tg_gone ||
	    t->tg_in_flight >= target_max_in_flight(d))
		return TARGET_IDLE;
	if (t->tg_nretries > 0 && t->tg_retries[0].tr_due <= d->d_now)
		return t->tg_state == SUB_FAILING && t->tg_in_flight > 0 ?
		    TARGET_IDLE :
		    TARGET_RETRY;
	if (t->tg_state == SUB_FAILING ||
	    (d->d_cfg->ordered && t->tg_nretries > 0))
		return TARGET_IDLE;
	if (t->tg_len > 0)
		return TARGET_FIFO;
	if (t->tg_stored && t->tg_next <= d->d_last_seq)
		return TARGET_STORED;
	return TARGET_IDLE;
}

/* Puts T at the end of the ready list if it has work it may start. */
static inline void
target_ready_push(struct dthread *d, struct target *t)
{
	if (t->tg_ready || target_next(d, t) == TARGET_IDLE)
		return;
	t->tg_ready = 1;
	t->tg_ready_next = NULL;
	if (d->d_ready_tail != NULL)
		d->d_ready_tail->tg_ready_next = t;
	else
		d->d_ready_head = t;
	d->d_ready_tail = t;
}

static inline struct target *
target_ready_pop(struct dthread *d)
{
	struct target *t = d->d_ready_head;

	if (t != NULL) {
		d->d_ready_head = t->tg_ready_next;
		if (d->d_ready_head == NULL)
			d->d_ready_tail = NULL;
		t->tg_ready = 0;
	}
	return t;
}

/* The counters the listing shows: FIFO plus stored backlog, and retries. */
static inline void
target_count(const struct dthread *d, struct target *t)
{
	uint64_t backlog = t->tg_len;

	if (t->tg_stored && t->tg_next <= d->d_last_seq)
		backlog += d->d_last_seq - t->tg_next + 1;
	atomic_store(&sub_counters(t->tg_sub)->queued, backlog);
	atomic_store(&sub_counters(t->tg_sub)->retrying, t->tg_nretries);
}

/* Takes the head of T's FIFO (not empty), with its reference. */
static inline struct msg *
target_shift(struct target *t)
{
	struct msg *m;

	assert(t->tg_len > 0);
	m = t->tg_ring[t->tg_head];
	t->tg_head = (t->tg_head + 1) % t->tg_cap;
	t->tg_len--;
	return m;
}

/* Appends M (a new reference) to T's FIFO; -1 when out of memory. */
static inline int
target_push(struct target *t, struct msg *m)
{
	if (t->tg_len == t->tg_cap && target_grow(t) == -1)
		return -1;
	t->tg_ring[(t->tg_head + t->tg_len) % t->tg_cap] = msg_ref(m);
	t->tg_len++;
	return 0;
}

/*
 * Queues M (the caller keeps its reference) for T, or leaves it in the
 * store when T's FIFO is full, or long while TIGHT (bodies in memory pass
 * max_queued_bytes): then it is read back later, in order.  Called for
 * every subscriber of every message: inline.
 */
static inline void
target_offer(struct dthread *d, struct target *t, struct msg *m, int tight)
{
	size_t limit = (size_t)d->d_cfg->queue_limit;
	size_t spill = (size_t)target_max_in_flight(d) * 2;

	if (!t->tg_stored && t->tg_state == SUB_ACTIVE && t->tg_len < limit &&
	    !(tight && t->tg_len >= spill) && target_push(t, m) == 0) {
		target_ready_push(d, t);
		return;
	}
	if (!t->tg_stored) {
		t->tg_stored = 1;
		t->tg_next = d->d_last_seq;
	}
	target_ready_push(d, t);
}

/* A success: a failing target becomes active, its retries due at once. */
static inline void
target_recovered(struct dthread *d, struct target *t)
{
	t->tg_fails = 0;
	if (t->tg_state == SUB_FAILING)
		target_revive(d, t);
}

#endif

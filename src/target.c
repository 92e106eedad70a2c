/* target.c: one subscriber's queue: FIFO, stored backlog, retries. */
/*
 * Runs on the delivery thread only (see src/README.md and the DESIGN block
 * of deliver.c).  A target's FIFO holds at most queue_limit message
 * references; past that, or while bodies in memory pass max_queued_bytes,
 * the messages wait in the store (tg_stored, from tg_next to d_last_seq)
 * and are read back a page at a time when the FIFO is empty.  Its retries
 * are kept ordered by due time (by seq when ordered).
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "clock.h"
#include "log.h"
#include "sign.h"
#include "store.h"
#include "target.h"
#include "topics.h"

#define RING_MIN 16
#define PAGE	 64   /* messages read back from the store at once */
#define SCAN_MAX 4096 /* stored messages looked at a read, with topics */

struct target *
target_new(struct sub *sub, struct topics *topics, const char *secret)
{
	char la[LOG_VALUE_MAX];
	struct target *t;

	if ((t = calloc(1, sizeof(*t))) == NULL) {
		log_error("cannot track subscriber", "address=%s reason=nomem",
		    log_value(la, sizeof(la), sub_address(sub)));
		return NULL;
	}
	/* A secret that cannot be used would sign with the wrong key: refuse. */
	if (secret != NULL && *secret != '\0' &&
	    (t->tg_signer = signer_new(secret)) == NULL) {
		log_error("cannot track subscriber",
		    "address=%s reason=\""
		    "secret refused by libcrypto\"",
		    log_value(la, sizeof(la), sub_address(sub)));
		free(t);
		return NULL;
	}
	t->tg_topics = topics_ref(topics);
	t->tg_sub = sub_ref(sub);
	return t;
}

static uint64_t
ring_seq(const struct target *t, size_t i)
{
	return msg_seq(t->tg_ring[(t->tg_head + i) % t->tg_cap]);
}

int
target_grow(struct target *t)
{
	size_t ncap = t->tg_cap ? t->tg_cap * 2 : RING_MIN;
	struct msg **r;

	/* Not logged: the message waits in the store instead. */
	if ((r = malloc(ncap * sizeof(*r))) == NULL)
		return -1;
	for (size_t i = 0; i < t->tg_len; i++)
		r[i] = t->tg_ring[(t->tg_head + i) % t->tg_cap];
	free(t->tg_ring);
	t->tg_ring = r;
	t->tg_cap = ncap;
	t->tg_head = 0;
	return 0;
}

uint64_t
target_unsent(const struct dthread *d, const struct target *t)
{
	if (t->tg_len > 0)
		return ring_seq(t, 0);
	return t->tg_stored ? t->tg_next : d->d_last_seq + 1;
}

void
target_clear(struct target *t)
{
	while (t->tg_len > 0)
		msg_unref(target_shift(t));
}

void
target_spill(struct dthread *d, struct target *t)
{
	t->tg_next = target_unsent(d, t);
	t->tg_stored = 1;
	target_clear(t);
	free(t->tg_ring);
	t->tg_ring = NULL;
	t->tg_cap = t->tg_head = 0;
}

/* The topics message SEQ was routed to T by. */
static const struct topics *
target_topics_at(const struct target *t, uint64_t seq)
{
	for (size_t i = 0; i < t->tg_nsegs; i++)
		if (seq <= t->tg_segs[i].ts_until)
			return t->tg_segs[i].ts_topics;
	return t->tg_topics;
}

/* Forgets the topics of messages before FROM: none of them is pending. */
static void
segs_prune(struct target *t, uint64_t from)
{
	size_t n = 0;

	while (n < t->tg_nsegs && t->tg_segs[n].ts_until < from)
		topics_unref(t->tg_segs[n++].ts_topics);
	if (n == 0)
		return;
	memmove(t->tg_segs, t->tg_segs + n,
	    (t->tg_nsegs - n) * sizeof(*t->tg_segs));
	t->tg_nsegs -= n;
}

/*
 * LO..last_seq, less what is already a retry, become dead letters for T:
 * each stretch filtered by the topics that routed it.
 */
static void
target_dead_range(struct dthread *d, struct target *t, uint64_t lo,
    const char *reason)
{
	for (size_t i = 0; i < t->tg_nsegs && lo <= d->d_last_seq; i++) {
		uint64_t hi = t->tg_segs[i].ts_until;

		if (hi < lo)
			continue;
		store_dead_range(d->d_store, t->tg_id, sub_address(t->tg_sub),
		    lo, hi, topics_text(t->tg_segs[i].ts_topics), reason);
		lo = hi + 1;
	}
	if (lo <= d->d_last_seq)
		store_dead_range(d->d_store, t->tg_id, sub_address(t->tg_sub),
		    lo, d->d_last_seq, topics_text(t->tg_topics), reason);
}

void
target_refill(struct dthread *d, struct target *t)
{
	char la[LOG_VALUE_MAX];
	const struct topics *topics;
	struct msg *page[PAGE];
	uint64_t next, hi = d->d_last_seq;
	long n;

	segs_prune(t, t->tg_next);
	topics = target_topics_at(t, t->tg_next);
	if (t->tg_nsegs > 0 && t->tg_segs[0].ts_until < hi)
		hi = t->tg_segs[0].ts_until;
	/* Others' messages are skipped a stretch at a time (xfer_dispatch). */
	if (topics != NULL && hi - t->tg_next >= SCAN_MAX)
		hi = t->tg_next + SCAN_MAX - 1;
	n = store_read_page(d->d_reader, t->tg_next, hi, topics_text(topics),
	    PAGE, page, &next);
	if (n == -1)
		return; /* logged; tried again on the next tick */
	/* With topics, a stretch of others' messages is nothing to worry about. */
	if (n == 0 && topics == NULL)
		log_error("stored messages missing",
		    "address=%s from=%llu "
		    "to=%llu",
		    log_value(la, sizeof(la), sub_address(t->tg_sub)),
		    (unsigned long long)t->tg_next,
		    (unsigned long long)d->d_last_seq);
	for (long i = 0; i < n; i++) {
		if (target_push(t, page[i]) == -1) {
			next = msg_seq(page[i]);
			for (long j = i; j < n; j++)
				msg_unref(page[j]);
			break;
		}
		msg_unref(page[i]);
	}
	t->tg_next = next;
	if (t->tg_next > d->d_last_seq)
		t->tg_stored = 0;
}

void
target_retry_add(struct dthread *d, struct target *t,
    const struct target_retry *r)
{
	char la[LOG_VALUE_MAX];
	struct target_retry *v;
	size_t i;

	if ((v = array_grow(t->tg_retries, &t->tg_retries_cap,
		 t->tg_nretries + 1, sizeof(*v))) == NULL) {
		/* The row is in the store: it comes back at the next start. */
		log_error("retry kept in the store only",
		    "address=%s "
		    "reason=nomem",
		    log_value(la, sizeof(la), sub_address(t->tg_sub)));
		msg_unref(r->tr_msg);
		return;
	}
	t->tg_retries = v;
	for (i = t->tg_nretries; i > 0; i--) {
		const struct target_retry *p = &t->tg_retries[i - 1];

		if (d->d_cfg->ordered ? p->tr_seq <= r->tr_seq :
					p->tr_due <= r->tr_due)
			break;
		t->tg_retries[i] = *p;
	}
	t->tg_retries[i] = *r;
	t->tg_nretries++;
}

int
target_retry_find(const struct target *t, uint64_t seq)
{
	for (size_t i = 0; i < t->tg_nretries; i++)
		if (t->tg_retries[i].tr_seq == seq)
			return 1;
	return 0;
}

void
target_retry_take(struct target *t, struct target_retry *out)
{
	assert(t->tg_nretries > 0);
	*out = t->tg_retries[0];
	memmove(t->tg_retries, t->tg_retries + 1,
	    --t->tg_nretries * sizeof(*t->tg_retries));
}

static void
retries_clear(struct target *t)
{
	for (size_t i = 0; i < t->tg_nretries; i++)
		msg_unref(t->tg_retries[i].tr_msg);
	t->tg_nretries = 0;
}

void
target_release(struct dthread *d, struct target *t)
{
	assert(t->tg_in_flight >= 0);
	if (!t->tg_removed || t->tg_in_flight > 0 || t->tg_ready)
		return;
	if (t->tg_id != 0)
		store_sub_gone(d->d_store, t->tg_id, sub_address(t->tg_sub),
		    sub_end_reason(sub_end(t->tg_sub)),
		    d->d_cfg->dead_letter_on_evict);
	retries_clear(t);
	free(t->tg_retries);
	sub_unref(t->tg_sub);
	topics_unref(t->tg_topics);
	for (size_t i = 0; i < t->tg_nsegs; i++)
		topics_unref(t->tg_segs[i].ts_topics);
	free(t->tg_segs);
	signer_free(t->tg_signer);
	free(t->tg_ring);
	free(t);
}

/* Retries the store kept for a subscriber that is back after a restart. */
static void
load_retries(struct dthread *d, struct target *t, uint64_t start)
{
	struct store_attempt *v;
	int64_t real = clock_real_ms();
	long n;

	if ((n = store_read_retries(d->d_reader, t->tg_id, &v)) <= 0)
		return;
	for (long i = 0; i < n; i++) {
		struct target_retry r = {
			.tr_seq = v[i].seq,
			.tr_attempts = v[i].attempts,
			.tr_first = v[i].first_at,
			.tr_due = d->d_now +
			    (v[i].next_at > real ? v[i].next_at - real : 0),
		};

		/* Saved as a retry after the last cursor: it is sent as new. */
		if (v[i].seq >= start) {
			store_retry_done(d->d_store, t->tg_id, v[i].seq);
			continue;
		}
		target_retry_add(d, t, &r);
	}
	free(v);
}

void
target_attach(struct dthread *d, struct target *t, int filed)
{
	char la[LOG_VALUE_MAX];
	uint64_t start = sub_start(t->tg_sub);

	t->tg_id = sub_store_id(t->tg_sub);
	t->tg_state = SUB_ACTIVE;
	sub_set_state(t->tg_sub, SUB_ACTIVE);
	if (!filed) {
		/* The subscriber stays listed but gets nothing: say so loudly. */
		log_error("cannot track subscriber", "address=%s reason=nomem",
		    log_value(la, sizeof(la), sub_address(t->tg_sub)));
		sub_set_error(t->tg_sub, "out of memory: not receiving");
		t->tg_removed = 1;
		t->tg_index = SIZE_MAX;
		return;
	}
	/* Restored: its backlog is in the store, and maybe retries too. */
	if (start != 0 && start <= d->d_last_seq) {
		t->tg_stored = 1;
		t->tg_next = start;
	}
	t->tg_saved = start;
	/* A new subscriber's retries can only come from a replay (CMD_REPLAY). */
	if (sub_restored(t->tg_sub))
		load_retries(d, t, start);
	target_count(d, t);
	target_ready_push(d, t);
}

void
target_detach(struct dthread *d, struct target *t)
{
	char la[LOG_VALUE_MAX];
	const char *reason = sub_end_reason(sub_end(t->tg_sub));
	uint64_t lo = target_unsent(d, t);
	uint64_t pending = d->d_last_seq + 1 - lo + t->tg_nretries;

	if (d->d_cfg->dead_letter_on_evict && lo <= d->d_last_seq)
		target_dead_range(d, t, lo, reason);
	target_clear(t);
	retries_clear(t);
	t->tg_removed = 1;
	if (pending > 0)
		log_info(d->d_cfg->dead_letter_on_evict ?
			"pending deliveries "
			"are dead letters" :
			"pending deliveries discarded",
		    "address=%s reason=%s count=%llu",
		    log_value(la, sizeof(la), sub_address(t->tg_sub)), reason,
		    (unsigned long long)pending);
	target_release(d, t);
}

void
target_revive(struct dthread *d, struct target *t)
{
	char la[LOG_VALUE_MAX];

	t->tg_state = SUB_ACTIVE;
	sub_set_state(t->tg_sub, SUB_ACTIVE);
	for (size_t i = 0; i < t->tg_nretries; i++)
		t->tg_retries[i].tr_due = d->d_now;
	log_info("subscriber recovered", "address=%s",
	    log_value(la, sizeof(la), sub_address(t->tg_sub)));
}

void
target_give_up(struct dthread *d, struct target *t, int64_t real)
{
	char la[LOG_VALUE_MAX];
	uint64_t lo = target_unsent(d, t);
	size_t n = t->tg_nretries;

	for (size_t i = 0; i < t->tg_nretries; i++) {
		struct target_retry *r = &t->tg_retries[i];
		struct store_attempt a = { .sub_id = t->tg_id,
			.seq = r->tr_seq,
			.attempts = r->tr_attempts,
			.first_at = r->tr_first,
			.last_at = real };

		sub_get_error(t->tg_sub, a.error);
		store_dead(d->d_store, &a, sub_address(t->tg_sub),
		    "retries exhausted");
	}
	retries_clear(t);
	if (lo <= d->d_last_seq)
		target_dead_range(d, t, lo, "retries exhausted");
	target_clear(t);
	t->tg_stored = 0;
	log_warnx("subscriber failed for its whole retry schedule: its pending "
		  "messages are dead letters",
	    "address=%s retries=%zu "
	    "unsent=%llu",
	    log_value(la, sizeof(la), sub_address(t->tg_sub)), n,
	    (unsigned long long)(d->d_last_seq + 1 - lo));
	t->tg_fails = 0;
	t->tg_state = SUB_ACTIVE;
	sub_set_state(t->tg_sub, SUB_ACTIVE);
}

void
target_keep_topics(struct dthread *d, struct target *t, struct topics *old)
{
	char la[LOG_VALUE_MAX];
	struct topic_seg *v;

	segs_prune(t, target_unsent(d, t));
	if (target_unsent(d, t) <= d->d_last_seq &&
	    (t->tg_nsegs == 0 ||
		t->tg_segs[t->tg_nsegs - 1].ts_until < d->d_last_seq)) {
		v = realloc(t->tg_segs, (t->tg_nsegs + 1) * sizeof(*v));
		if (v != NULL) {
			t->tg_segs = v;
			t->tg_segs[t->tg_nsegs].ts_until = d->d_last_seq;
			t->tg_segs[t->tg_nsegs++].ts_topics = old;
			return;
		}
		log_error("pending messages routed by the new topics",
		    "address=%s reason=nomem",
		    log_value(la, sizeof(la), sub_address(t->tg_sub)));
	}
	topics_unref(old);
}

/*
 * store.c: the store's front: its queue, its API, health, start and stop.
 *
 * DESIGN
 * The store is the one writer of durable state.  Everyone hands it
 * operations through a FIFO under st_q_lock: the front end's requests (a
 * publish, a batch of them, a barrier, the dead-letter endpoints), the subscriber map's
 * hooks, and delivery's progress, retries and dead letters.  One thread,
 * the writer (store_batch.c), takes what has queued up and applies it in
 * one transaction of the backend (a group commit), then answers the
 * requests and hands what it committed to the sink (delivery), in commit
 * order.  The backend (store_sqlite*.c: SQLite in WAL mode, the default)
 * sits behind struct store_backend_ops (store_backend.h); nothing here or
 * above knows which one runs.
 *
 * Messages are numbered by `seq`, here, not by the backend.  A subscriber
 * is owed every message from its cursor on; a message is deleted once every
 * cursor has passed it and no retry or dead letter refers to it.
 *
 * Threads and locks: src/README.md.  In short, the map's rwlock, then
 * st_q_lock (the hooks run under the map's lock); st_fwd_lock, then
 * delivery's inbox lock (the sink is called under st_fwd_lock).
 *
 * Health (/readyz): a failed write leaves its reason in st_fault, a full
 * disk sets st_full as well; the writer clears st_fault when a write
 * commits, and while it is set tries a small one every second, so that the
 * store is seen usable again with no traffic.  The writer stamps st_beat
 * each round.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "log.h"
#include "store.h"
#include "store_int.h"
#include "topics.h"

/* ---- the queue ----------------------------------------------------------- */

static void
enqueue(struct store *st, struct op *o)
{
	o->o_next = NULL;
	pthread_mutex_lock(&st->st_q_lock);
	*st->st_q_tail = o;
	st->st_q_tail = &o->o_next;
	pthread_cond_signal(&st->st_q_cond);
	pthread_mutex_unlock(&st->st_q_lock);
}

/*
 * An operation of TYPE about message SEQ for subscriber SUB_ID, with a copy
 * of ADDRESS (may be NULL).  NULL, logged, when out of memory: delivery's
 * reports are then lost (a restart resends, at least once).
 */
static struct op *
op_new(enum op_type type, int64_t sub_id, uint64_t seq, const char *address)
{
	struct op *o = calloc(1, sizeof(*o));

	if (o != NULL && address != NULL &&
	    (o->o_address = strdup(address)) == NULL) {
		free(o);
		o = NULL;
	}
	if (o == NULL) {
		log_error("store operation lost", "reason=nomem type=%d",
		    (int)type);
		return NULL;
	}
	o->o_type = type;
	o->o_at.sub_id = sub_id;
	o->o_at.seq = seq;
	return o;
}

void
store_op_free(struct op *o)
{
	sub_unref(o->o_sub);
	free(o->o_address);
	topics_unref(o->o_topics);
	free(o->o_topics_text);
	explicit_bzero(o->o_secret, sizeof(o->o_secret));
	free(o);
}

/* The subscriber's topics and secret now (the map's lock is held). */
static void
op_snapshot(struct op *o, struct sub *sub)
{
	o->o_topics = sub_topics(sub);
	sub_get_secret(sub, o->o_secret);
}

int
store_submit(struct store *st, struct store_req *req)
{
	struct op *o;

	if ((o = calloc(1, sizeof(*o))) == NULL)
		return -1;
	o->o_type = OP_REQUEST;
	o->o_req = req;
	req->r_status = STORE_OK;
	pthread_mutex_lock(&st->st_q_lock);
	if (st->st_closed) {
		pthread_mutex_unlock(&st->st_q_lock);
		free(o);
		return -1;
	}
	st->st_requests_queued++;
	*st->st_q_tail = o;
	st->st_q_tail = &o->o_next;
	pthread_cond_signal(&st->st_q_cond);
	pthread_mutex_unlock(&st->st_q_lock);
	return 0;
}

void
store_req_release(struct store_req *req)
{
	if (req == NULL)
		return;
	free(req->r_dead);
	free(req->r_dead_text);
	free(req->r_replay);
	req->r_dead = NULL;
	req->r_dead_text = NULL;
	req->r_ndead = 0;
	req->r_replay = NULL;
	req->r_nreplay = 0;
}

int
store_on_add(struct sub *sub, void *arg)
{
	struct store *st = arg;
	struct op *add, *rm;

	/* Both now, so that the removal can never fail for want of memory. */
	if ((add = calloc(1, sizeof(*add))) == NULL)
		return -1;
	if ((rm = calloc(1, sizeof(*rm))) == NULL) {
		free(add);
		return -1;
	}
	add->o_type = OP_SUB_ADD;
	add->o_sub = sub_ref(sub);
	op_snapshot(add, sub);
	rm->o_type = OP_SUB_REMOVE;
	rm->o_sub = sub_ref(sub);
	add->o_rm = rm;
	sub_set_store_state(sub, rm);
	enqueue(st, add);
	return 0;
}

int
store_on_change(struct sub *sub, void *arg)
{
	struct op *o;

	if ((o = calloc(1, sizeof(*o))) == NULL)
		return -1;
	o->o_type = OP_SUB_UPDATE;
	o->o_sub = sub_ref(sub);
	o->o_rm = sub_store_state(sub); /* in the map: it has one */
	op_snapshot(o, sub);
	enqueue(arg, o);
	return 0;
}

void
store_on_remove(struct sub *sub, void *arg)
{
	struct op *rm = sub_store_state(sub);

	sub_set_store_state(sub, NULL);
	enqueue(arg, rm);
}

void
store_progress(struct store *st, int64_t sub_id, uint64_t cursor)
{
	struct op *o;

	if ((o = op_new(OP_PROGRESS, sub_id, cursor, NULL)) != NULL)
		enqueue(st, o);
}

void
store_retry(struct store *st, const struct store_attempt *a)
{
	struct op *o;

	if ((o = op_new(OP_RETRY, a->sub_id, a->seq, NULL)) == NULL)
		return;
	o->o_at = *a;
	enqueue(st, o);
}

void
store_retry_done(struct store *st, int64_t sub_id, uint64_t seq)
{
	struct op *o;

	if ((o = op_new(OP_RETRY_DONE, sub_id, seq, NULL)) != NULL)
		enqueue(st, o);
}

void
store_dead(struct store *st, const struct store_attempt *a, const char *address,
    const char *reason)
{
	struct op *o;

	if ((o = op_new(OP_DEAD, a->sub_id, a->seq, address)) == NULL)
		return;
	o->o_at = *a;
	o->o_reason = reason;
	enqueue(st, o);
}

void
store_dead_range(struct store *st, int64_t sub_id, const char *address,
    uint64_t lo, uint64_t hi, const char *topics, const char *reason)
{
	char la[LOG_VALUE_MAX];
	struct op *o;

	if (lo > hi || (o = op_new(OP_DEAD_RANGE, sub_id, 0, address)) == NULL)
		return;
	if (topics != NULL && *topics != '\0' &&
	    (o->o_topics_text = strdup(topics)) == NULL) {
		/* Every message of the range then: more, never fewer. */
		log_error("dead letters not filtered by topic",
		    "address=%s "
		    "reason=nomem",
		    log_value(la, sizeof(la), address));
	}
	o->o_lo = lo;
	o->o_hi = hi;
	o->o_reason = reason;
	enqueue(st, o);
}

void
store_sub_gone(struct store *st, int64_t sub_id, const char *address,
    const char *reason, int dead)
{
	struct op *o;

	if ((o = op_new(OP_SUB_GONE, sub_id, 0, address)) == NULL)
		return;
	o->o_reason = reason;
	o->o_dead = dead;
	enqueue(st, o);
}

/* ---- health -------------------------------------------------------------- */

size_t
store_backlog_bytes(const struct store *st)
{
	return atomic_load(&st->st_backlog);
}

int
store_disk_full(const struct store *st)
{
	return atomic_load(&st->st_full);
}

int
store_health(struct store *st, char *why, size_t len)
{
	const char *fault;
	int closed;

	pthread_mutex_lock(&st->st_q_lock);
	closed = st->st_closed;
	pthread_mutex_unlock(&st->st_q_lock);
	if (closed)
		snprintf(why, len, "closed (shutting down)");
	else if (atomic_load(&st->st_full))
		snprintf(why, len, "disk full");
	else if ((fault = atomic_load(&st->st_fault)) != NULL)
		snprintf(why, len, "writes failing: %s", fault);
	else
		return 0;
	return -1;
}

int64_t
store_heartbeat(const struct store *st)
{
	return atomic_load_explicit(&st->st_beat, memory_order_relaxed);
}

uint64_t
store_last_seq(const struct store *st)
{
	return atomic_load(&st->st_last_seq);
}

/* A failed write, logged at most every 10 s: the disk may stay full a while. */
void
store_log_error(struct store *st, const char *what, enum store_res res)
{
	char lp[LOG_VALUE_MAX], lv[LOG_VALUE_MAX];
	static _Atomic int64_t last;
	int64_t now = clock_mono_ms();

	if (now - atomic_load(&last) < 10000)
		return;
	atomic_store(&last, now);
	log_error(what, "path=%s error=%s",
	    log_value(lp, sizeof(lp), st->st_where),
	    log_value(lv, sizeof(lv),
		res == SR_FULL ? "disk full" :
				 st->st_ops->sbo_error(st->st_b)));
}

/* A write committed after writes had failed: the store is usable again. */
void
store_writable(struct store *st)
{
	if (atomic_exchange(&st->st_fault, NULL) != NULL)
		log_info("store writable again", "path=%s", st->st_where);
}

/* ---- start and stop ------------------------------------------------------ */

static void
store_free(struct store *st)
{
	if (st == NULL)
		return;
	if (st->st_b != NULL)
		st->st_ops->sbo_close(st->st_b);
	for (size_t i = 0; i < st->st_nknown; i++)
		sub_unref(st->st_known[i].k_sub);
	free(st->st_known);
	config_release(st->st_cfg_ref);
	pthread_mutex_destroy(&st->st_q_lock);
	pthread_mutex_destroy(&st->st_fwd_lock);
	pthread_cond_destroy(&st->st_q_cond);
	pthread_cond_destroy(&st->st_q_idle);
	free(st);
}

struct store *
store_open(const struct config *cfg)
{
	char lp[LOG_VALUE_MAX];
	struct store_boot boot = { 0 };
	pthread_condattr_t a;
	struct store *st;

	if ((st = calloc(1, sizeof(*st))) == NULL) {
		log_error("cannot open store", "reason=nomem");
		return NULL;
	}
	st->st_ops = &store_sqlite_ops;
	st->st_cfg = cfg;
	st->st_q_tail = &st->st_q_head;
	pthread_mutex_init(&st->st_q_lock, NULL);
	pthread_mutex_init(&st->st_fwd_lock, NULL);
	/* The writer's timed wait runs on the monotonic clock. */
	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(&st->st_q_cond, &a);
	pthread_condattr_destroy(&a);
	pthread_cond_init(&st->st_q_idle, NULL);
	if ((st->st_b = st->st_ops->sbo_open(cfg, &boot)) == NULL)
		goto fail;
	snprintf(st->st_where, sizeof(st->st_where), "%s", boot.sb_where);
	/*
	 * Numbers are never handed out twice: a clean stop may have collected
	 * every message, but cursors, retries and dead letters still name the
	 * numbers they have seen.
	 */
	st->st_next_seq = boot.sb_last_seq + 1;
	atomic_store(&st->st_last_seq, boot.sb_last_seq);
	atomic_store(&st->st_backlog, boot.sb_bytes);
	log_info("store open", "path=%s messages_bytes=%zu last_seq=%llu",
	    log_value(lp, sizeof(lp), st->st_where), boot.sb_bytes,
	    (unsigned long long)boot.sb_last_seq);
	return st;

fail:
	store_free(st);
	return NULL;
}

int
store_restore(struct store *st, struct subs *s)
{
	return store_restore_subs(st, s);
}

int
store_start(struct store *st, const struct store_sink *sink)
{
	char ebuf[128];
	int rc;

	st->st_sink = *sink;
	st->st_attached = 1;
	st->st_next_periodic = clock_mono_ms() + PERIODIC_MS;
	st->st_next_sweep = clock_mono_ms() + PERIODIC_MS;
	atomic_store(&st->st_beat, clock_mono_ms());
	if ((rc = pthread_create(&st->st_thread, NULL, store_writer, st)) !=
	    0) {
		log_error("cannot start store", "error=\"%s\"",
		    strerror_r(rc, ebuf, sizeof(ebuf)));
		return -1;
	}
	st->st_started = 1;
	return 0;
}

void
store_detach(struct store *st)
{
	if (st == NULL)
		return;
	pthread_mutex_lock(&st->st_fwd_lock);
	st->st_attached = 0;
	pthread_mutex_unlock(&st->st_fwd_lock);
}

void
store_close_requests(struct store *st)
{
	if (st == NULL)
		return;
	pthread_mutex_lock(&st->st_q_lock);
	st->st_closed = 1;
	while (st->st_started && st->st_requests_queued > 0)
		pthread_cond_wait(&st->st_q_idle, &st->st_q_lock);
	pthread_mutex_unlock(&st->st_q_lock);
}

/*
 * A reload: retention, limits and windows follow the new configuration
 * from the batch it is queued in on (store_batch.c applies it).
 */
static void
config_done(struct store_req *req)
{
	config_release(req->r_config);
	free(req);
}

int
store_reload(struct store *st, const struct config *cfg)
{
	struct store_req *req;

	if ((req = calloc(1, sizeof(*req))) == NULL)
		return -1;
	req->r_type = REQ_CONFIG;
	req->r_done = config_done;
	req->r_config = config_hold(cfg);
	if (store_submit(st, req) == -1) {
		config_done(req);
		return -1;
	}
	return 0;
}

/* Frees the removal store_on_add set aside for SUB. */
static void
forget(struct sub *sub)
{
	struct op *rm = sub_store_state(sub);

	if (rm != NULL) {
		sub_set_store_state(sub, NULL);
		store_op_free(rm);
	}
}

void
store_stop(struct store *st)
{
	struct op *o, *next;

	if (st == NULL)
		return;
	pthread_mutex_lock(&st->st_q_lock);
	st->st_closed = 1;
	st->st_stopping = 1;
	pthread_cond_signal(&st->st_q_cond);
	pthread_mutex_unlock(&st->st_q_lock);
	if (st->st_started)
		pthread_join(st->st_thread, NULL);
	/* What could not be written (a full disk) is lost here. */
	for (o = st->st_q_head; o != NULL; o = next) {
		next = o->o_next;
		if (o->o_type == OP_SUB_ADD)
			forget(o->o_sub);
		if (o->o_type == OP_REQUEST) {
			o->o_req->r_status = STORE_CLOSED;
			o->o_req->r_done(o->o_req);
			free(o);
			continue;
		}
		store_op_free(o);
	}
	st->st_q_head = NULL;
	/* What the last progress freed, so that a clean stop leaves no garbage. */
	st->st_next_periodic = 0;
	store_maintain(st);
	/* Subscribers still registered keep their removal, never to be queued. */
	for (size_t i = 0; i < st->st_nknown; i++)
		forget(st->st_known[i].k_sub);
	store_free(st);
}

/* ---- delivery's reader -------------------------------------------------- */

struct store_reader {
	const struct store_backend_ops *rd_ops;
	struct store_backend_reader *rd_b;
};

struct store_reader *
store_reader_open(struct store *st)
{
	struct store_reader *r;

	if ((r = calloc(1, sizeof(*r))) == NULL) {
		log_error("cannot read store", "path=%s reason=nomem",
		    st->st_where);
		return NULL;
	}
	r->rd_ops = st->st_ops;
	if ((r->rd_b = st->st_ops->sbo_reader_open(st->st_b)) == NULL) {
		free(r);
		return NULL;
	}
	return r;
}

void
store_reader_close(struct store_reader *r)
{
	if (r == NULL)
		return;
	r->rd_ops->sbo_reader_close(r->rd_b);
	free(r);
}

long
store_read_page(struct store_reader *r, uint64_t lo, uint64_t hi,
    const char *topics, size_t max, struct msg **out, uint64_t *next)
{
	return r->rd_ops->sbo_read_page(r->rd_b, lo, hi, topics, max, out,
	    next);
}

struct msg *
store_read_msg(struct store_reader *r, uint64_t seq)
{
	return r->rd_ops->sbo_read_msg(r->rd_b, seq);
}

long
store_read_retries(struct store_reader *r, int64_t sub_id,
    struct store_attempt **out)
{
	return r->rd_ops->sbo_read_retries(r->rd_b, sub_id, out);
}

/*
 * store_batch.c: the writer thread: group commit, then answers and the sink.
 *
 * DESIGN
 * The writer takes whatever has queued up (at most BATCH_MAX operations)
 * and applies it in one backend transaction, so one fsync serves every
 * publish that arrived while the previous one ran.  Only after the commit
 * does it answer the requests (their r_done resumes the suspended HTTP
 * connection) and hand messages and subscribers to the sink, in commit
 * order, under st_fwd_lock.  A failed transaction fails its requests (the
 * client retries) and puts the rest back at the head of the queue.  A
 * batch of publishes (/sendMessages) is one request, so nothing queued
 * comes between its messages; the backend writes it whole or not at all
 * (sbo_publish_batch), and one it refuses fails that request alone.  Between
 * batches, and at least every PERIODIC_MS, it runs maintenance
 * (store_maint.c).  Threads and locks: src/README.md.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "metrics.h"
#include "store.h"
#include "store_int.h"
#include "topics.h"

#define BATCH_MAX     1024 /* operations a transaction */
#define RETRY_WAIT_MS 200  /* after a failed commit */

/*
 * A reload: retention, limits and windows follow the new configuration
 * from this batch on.  Not a change of the backend's data, so it holds
 * whether the batch commits or not: fail_batch applies it when the batch
 * failed before reaching it, and r_count keeps it from being applied twice.
 */
static void
apply_config(struct store *st, struct store_req *req)
{
	const struct config *old = st->st_cfg_ref;

	if (req->r_count != 0)
		return;
	st->st_cfg = st->st_cfg_ref = req->r_config;
	st->st_ops->sbo_set_config(st->st_b, st->st_cfg);
	req->r_config = old;
	req->r_count = 1;
}

/*
 * A batch of publishes: numbered in a row, nothing of the queue between
 * them, and committed with the rest of the transaction or not at all.  Its
 * numbers are used up when it was refused (SR_SKIP), as one publish's are.
 */
static enum store_res
apply_batch(struct store *st, struct store_req *req, int64_t now)
{
	enum store_res res;
	size_t used = 0;

	res = st->st_ops->sbo_publish_batch(st->st_b, req->r_pubs, req->r_npubs,
	    st->st_next_seq, now);
	for (size_t i = 0; i < req->r_npubs; i++)
		if (res == SR_SKIP || !req->r_pubs[i].sp_repeat)
			used++;
	st->st_next_seq += used;
	return res;
}

/* Committed: a new message counted and handed to the sink. */
static void
pass_on(struct store *st, struct msg *m)
{
	const struct store_sink *k = &st->st_sink;

	atomic_fetch_add(&st->st_backlog, msg_len(m));
	atomic_store(&st->st_last_seq, msg_seq(m));
	metrics_accepted();
	if (st->st_attached && k->sk_publish(m, k->sk_arg) == -1)
		log_error("message not queued for delivery",
		    "message=%s reason=nomem", msg_id(m));
}

static enum store_res
apply_request(struct store *st, struct store_req *req, int64_t now)
{
	const struct store_backend_ops *ops = st->st_ops;
	enum store_res res;

	switch (req->r_type) {
	case REQ_PUBLISH:
		/*
		 * Its number is used up unless the key was seen, even if its
		 * row was refused (SR_SKIP): a later row may already hold it.
		 * A failed batch gives every number back (fail_batch).
		 */
		res = ops->sbo_publish(st->st_b, req, st->st_next_seq, now);
		if (!req->r_repeat)
			st->st_next_seq++;
		return res;
	case REQ_PUBLISH_BATCH:
		return apply_batch(st, req, now);
	case REQ_SYNC:
		return SR_OK;
	case REQ_DL_LIST:
		return ops->sbo_dead_list(st->st_b, req);
	case REQ_DL_REPLAY:
		return ops->sbo_dead_replay(st->st_b, req, now);
	case REQ_DL_PURGE:
		return ops->sbo_dead_purge(st->st_b, req);
	case REQ_CONFIG:
		apply_config(st, req);
		return SR_OK;
	}
	STORE_IMPOSSIBLE("unknown request", "type=%d", (int)req->r_type);
}

/* Applies one operation inside the open transaction. */
static enum store_res
apply(struct store *st, struct op *o, int64_t now)
{
	const struct store_backend_ops *ops = st->st_ops;
	struct store_backend *b = st->st_b;
	struct sub *sub = o->o_sub;
	enum store_res res;

	switch (o->o_type) {
	case OP_REQUEST:
		return apply_request(st, o->o_req, now);
	case OP_SUB_ADD:
		if (sub_store_id(sub) != 0)
			return SR_OK; /* restored: the row is there */
		if ((res = ops->sbo_sub_add(b, sub, o->o_topics, o->o_secret,
			 st->st_next_seq, &o->o_at.sub_id)) != SR_OK)
			return res;
		/* Seen at once by a removal later in this batch; undone on failure. */
		sub_set_store(sub, o->o_at.sub_id, st->st_next_seq);
		return SR_OK;
	case OP_SUB_REMOVE:
		if (sub_store_id(sub) == 0)
			return SR_OK;
		return ops->sbo_sub_remove(b, sub_store_id(sub), sub_end(sub));
	case OP_SUB_UPDATE:
		if (sub_store_id(sub) == 0)
			return SR_OK;
		return ops->sbo_sub_update(b, sub_store_id(sub), o->o_topics,
		    o->o_secret);
	case OP_PROGRESS:
		return ops->sbo_progress(b, o->o_at.sub_id, o->o_at.seq);
	case OP_RETRY:
		return ops->sbo_retry_set(b, &o->o_at);
	case OP_RETRY_DONE:
		return ops->sbo_retry_done(b, o->o_at.sub_id, o->o_at.seq);
	case OP_DEAD:
		return ops->sbo_dead_record(b, &o->o_at, o->o_address,
		    o->o_reason, now);
	case OP_DEAD_RANGE:
		return ops->sbo_dead_range(b, o->o_at.sub_id, o->o_address,
		    o->o_lo, o->o_hi, o->o_topics_text, o->o_reason, now);
	case OP_SUB_GONE:
		return ops->sbo_dead_sub_gone(b, o->o_at.sub_id, o->o_address,
		    o->o_reason, o->o_dead, now);
	}
	STORE_IMPOSSIBLE("unknown operation", "type=%d", (int)o->o_type);
}

/* After the commit: answers, and the sink's share, in commit order. */
static void
complete(struct store *st, struct op *o)
{
	const struct store_sink *k = &st->st_sink;
	struct store_req *req = o->o_req;
	char la[LOG_VALUE_MAX];

	pthread_mutex_lock(&st->st_fwd_lock);
	switch (o->o_type) {
	case OP_REQUEST:
		if (req->r_type == REQ_PUBLISH && req->r_status == STORE_OK &&
		    !req->r_repeat) {
			pass_on(st, req->r_msg);
		} else if (req->r_type == REQ_PUBLISH_BATCH &&
		    req->r_status == STORE_OK) {
			for (size_t i = 0; i < req->r_npubs; i++)
				if (!req->r_pubs[i].sp_repeat)
					pass_on(st, req->r_pubs[i].sp_msg);
		} else if (req->r_type == REQ_DL_REPLAY) {
			if (st->st_attached && req->r_status == STORE_OK &&
			    req->r_nreplay > 0)
				k->sk_replay(req->r_replay, req->r_nreplay,
				    k->sk_arg);
			free(req->r_replay);
			req->r_replay = NULL;
			req->r_nreplay = 0;
		}
		break;
	case OP_SUB_ADD:
		store_known_add(st, o->o_sub);
		if (!st->st_attached)
			break;
		if (k->sk_sub_add(o->o_sub, o->o_topics, o->o_secret,
			k->sk_arg) == 0)
			o->o_rm->o_tracked = 1;
		else
			log_error("cannot track subscriber",
			    "address=%s "
			    "reason=nomem",
			    log_value(la, sizeof(la), sub_address(o->o_sub)));
		break;
	case OP_SUB_UPDATE:
		if (st->st_attached && o->o_rm != NULL && o->o_rm->o_tracked)
			k->sk_sub_change(o->o_sub, o->o_topics, o->o_secret,
			    k->sk_arg);
		break;
	case OP_SUB_REMOVE:
		store_known_remove(st, o->o_sub);
		if (st->st_attached && o->o_tracked)
			k->sk_sub_remove(o->o_sub, k->sk_arg);
		break;
	default:
		break;
	}
	pthread_mutex_unlock(&st->st_fwd_lock);
	if (o->o_type == OP_REQUEST)
		req->r_done(req);
	store_op_free(o);
}

/* A failed transaction: the requests are told, the rest is tried again. */
static struct op *
fail_batch(struct store *st, struct op *ops, enum store_res res, uint64_t seq0)
{
	struct op *again = NULL, **tail = &again, *o, *next;

	st->st_next_seq = seq0;
	for (o = ops; o != NULL; o = o->o_next)
		if (o->o_type == OP_SUB_ADD && o->o_at.sub_id != 0) {
			sub_set_store(o->o_sub, 0, 0);
			o->o_at.sub_id = 0;
		}
	for (o = ops; o != NULL; o = next) {
		next = o->o_next;
		if (o->o_type == OP_REQUEST) {
			struct store_req *req = o->o_req;

			if (req->r_type == REQ_CONFIG)
				apply_config(st, req);
			store_req_release(req);
			req->r_status = res == SR_FULL ? STORE_FULL :
							 STORE_ERROR;
			req->r_done(req);
			free(o);
			continue;
		}
		o->o_next = NULL;
		*tail = o;
		tail = &o->o_next;
	}
	return again;
}

static void
requeue_front(struct store *st, struct op *ops)
{
	struct op *last;

	if (ops == NULL)
		return;
	for (last = ops; last->o_next != NULL; last = last->o_next)
		;
	pthread_mutex_lock(&st->st_q_lock);
	last->o_next = st->st_q_head;
	if (st->st_q_head == NULL)
		st->st_q_tail = &last->o_next;
	st->st_q_head = ops;
	pthread_mutex_unlock(&st->st_q_lock);
}

/* N requests of a batch are answered: store_close_requests may go on. */
static void
requests_done(struct store *st, long n)
{
	if (n == 0)
		return;
	pthread_mutex_lock(&st->st_q_lock);
	st->st_requests_queued -= n;
	if (st->st_requests_queued == 0)
		pthread_cond_broadcast(&st->st_q_idle);
	pthread_mutex_unlock(&st->st_q_lock);
}

/* Runs OPS (a list) in one transaction.  Returns what must run again. */
static struct op *
run_batch(struct store *st, struct op *ops)
{
	const struct store_backend_ops *bo = st->st_ops;
	char lv[LOG_VALUE_MAX];
	int64_t now = clock_real_ms();
	uint64_t seq0 = st->st_next_seq;
	struct op *o, *next;
	long requests = 0;
	enum store_res res;

	if ((res = bo->sbo_begin(st->st_b)) != SR_OK)
		goto fail;
	for (o = ops; o != NULL; o = o->o_next) {
		if ((res = apply(st, o, now)) == SR_SKIP) {
			/* A row that cannot be written is logged and skipped. */
			log_error("store operation failed", "type=%d error=%s",
			    (int)o->o_type,
			    log_value(lv, sizeof(lv), bo->sbo_error(st->st_b)));
			if (o->o_type == OP_REQUEST)
				o->o_req->r_status = STORE_ERROR;
			continue;
		}
		if (res != SR_OK)
			goto fail;
	}
	if ((res = bo->sbo_commit(st->st_b)) != SR_OK)
		goto fail;
	/* A write went through: the store is usable (again). */
	if (bo->sbo_wrote(st->st_b))
		store_writable(st);
	for (o = ops; o != NULL; o = next) {
		next = o->o_next;
		if (o->o_type == OP_REQUEST)
			requests++;
		complete(st, o);
	}
	/* One wakeup for everything this commit passed on. */
	pthread_mutex_lock(&st->st_fwd_lock);
	if (st->st_attached)
		st->st_sink.sk_wake(st->st_sink.sk_arg);
	pthread_mutex_unlock(&st->st_fwd_lock);
	requests_done(st, requests);
	return NULL;

fail:
	bo->sbo_rollback(st->st_b);
	atomic_store(&st->st_fault, bo->sbo_error(st->st_b));
	if (res == SR_FULL) {
		atomic_store(&st->st_full, 1);
		/* At once, before anything else takes the space given back. */
		bo->sbo_full(st->st_b, 1);
	}
	store_log_error(st, "store commit failed", res);
	for (o = ops; o != NULL; o = o->o_next)
		if (o->o_type == OP_REQUEST)
			requests++;
	ops = fail_batch(st, ops, res, seq0);
	requests_done(st, requests);
	return ops;
}

void *
store_writer(void *arg)
{
	struct store *st = arg;
	struct op *ops, *again = NULL, **tail, *o;
	struct timespec ts;
	int n, stop;

	for (;;) {
		atomic_store_explicit(&st->st_beat, clock_mono_ms(),
		    memory_order_relaxed);
		pthread_mutex_lock(&st->st_q_lock);
		if (again == NULL && st->st_q_head == NULL &&
		    !st->st_stopping) {
			clock_gettime(CLOCK_MONOTONIC, &ts);
			ts.tv_nsec += PERIODIC_MS * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&st->st_q_cond, &st->st_q_lock,
			    &ts);
		}
		/* Take up to BATCH_MAX operations, in order. */
		ops = st->st_q_head;
		tail = &ops;
		for (n = 0, o = ops; o != NULL && n < BATCH_MAX; n++) {
			tail = &o->o_next;
			o = o->o_next;
		}
		st->st_q_head = o;
		if (o == NULL)
			st->st_q_tail = &st->st_q_head;
		*tail = NULL;
		stop = st->st_stopping && st->st_q_head == NULL;
		pthread_mutex_unlock(&st->st_q_lock);

		if (ops != NULL) {
			again = run_batch(st, ops);
			if (again != NULL) {
				requeue_front(st, again);
				if (stop)
					break;
				usleep(RETRY_WAIT_MS * 1000);
				continue;
			}
		}
		store_maintain(st);
		if (stop && ops == NULL)
			break;
	}
	return NULL;
}

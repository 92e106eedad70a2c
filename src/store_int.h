/* store_int.h: the neutral store's own: the op queue, struct store. */
#ifndef HOOKCAST_STORE_INT_H
#define HOOKCAST_STORE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "config.h"
#include "log.h"
#include "msg.h"
#include "sign.h"
#include "store.h"
#include "store_backend.h"
#include "subs.h"

/*
 * An impossible state (an unknown op type, a broken invariant): retrying
 * cannot help, and failing the batch would retry it for ever.
 */
#define STORE_IMPOSSIBLE(what, ...) \
	do { \
		log_error("store: impossible state: " what, __VA_ARGS__); \
		abort(); \
	} while (0)

/* ---- the op queue (store.c) ---------------------------------------------- */

enum op_type {
	OP_REQUEST, /* a struct store_req */
	OP_SUB_ADD,
	OP_SUB_REMOVE,
	OP_SUB_UPDATE, /* its topics or secret */
	OP_PROGRESS,
	OP_RETRY,
	OP_RETRY_DONE,
	OP_DEAD,
	OP_DEAD_RANGE,
	OP_SUB_GONE,
};

struct op {
	struct op *o_next;
	enum op_type o_type;
	struct store_req *o_req;
	struct sub *o_sub;	   /* a reference */
	struct store_attempt o_at; /* sub_id, seq, ... */
	uint64_t o_lo, o_hi;
	char *o_address;
	const char *o_reason; /* a literal */
	int o_dead;
	/*
	 * OP_SUB_ADD, OP_SUB_UPDATE: the subscriber's topics and secret when
	 * the change was made, under the map's lock, so that what is saved
	 * and what delivery routes by follow the order of changes.
	 * OP_DEAD_RANGE: the topics its messages were routed by.
	 */
	struct topics *o_topics;
	char o_secret[SIGN_SECRET_MAX + 1];
	char *o_topics_text;
	/*
	 * OP_SUB_ADD, OP_SUB_UPDATE: the subscriber's OP_SUB_REMOVE, which
	 * outlives them (it is queued after them); OP_SUB_REMOVE: whether the
	 * sink took the subscriber, and so is to hear of its changes.
	 */
	struct op *o_rm;
	int o_tracked;
};

/* ---- the neutral part ---------------------------------------------------- */

/* What the writer remembers of a live subscriber, to save its keep-alive. */
struct known {
	struct sub *k_sub;
	int64_t k_saved_ka;
};

struct store {
	const struct store_backend_ops *st_ops;
	struct store_backend *st_b;
	const struct config *st_cfg;
	const struct config *st_cfg_ref; /* held since a reload, or NULL */
	char st_where[1100];		 /* for logs */
	pthread_t st_thread;
	int st_started;
	struct store_sink st_sink;
	int st_attached; /* st_sink is to be called */

	pthread_mutex_t st_fwd_lock; /* guards st_attached */
	pthread_mutex_t st_q_lock;
	pthread_cond_t st_q_cond; /* work queued, or stopping */
	pthread_cond_t st_q_idle; /* requests_queued fell to 0 */
	struct op *st_q_head, **st_q_tail;
	long st_requests_queued;
	int st_closed; /* no new requests */
	int st_stopping;

	atomic_size_t st_backlog; /* bytes of bodies stored */
	atomic_int st_full;
	/* Why the last write failed (a static string), NULL: none. */
	_Atomic(const char *) st_fault;
	_Atomic int64_t st_beat;      /* mono ms: the writer went round */
	_Atomic uint64_t st_last_seq; /* read by store_last_seq */

	/* The writer's own. */
	uint64_t st_next_seq;
	int64_t st_next_periodic, st_next_sweep;
	int64_t st_next_second;
	struct known *st_known;
	size_t st_nknown, st_known_cap;
};

/* store.c */
void store_op_free(struct op *o);
void store_log_error(struct store *st, const char *what, enum store_res res);
void store_writable(struct store *st);

/* store_batch.c: the writer thread. */
void *store_writer(void *st);

/* store_maint.c: every PERIODIC_MS, on the writer thread. */
#define PERIODIC_MS 100
void store_maintain(struct store *st);
/* The subscribers whose keep-alives it saves. */
void store_known_add(struct store *st, struct sub *sub);
void store_known_remove(struct store *st, struct sub *sub);

/* store_restore.c */
int store_restore_subs(struct store *st, struct subs *s);

#endif

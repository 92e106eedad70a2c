/* deliver_internal.h: the state the delivery thread's files share. */
#ifndef HOOKCAST_DELIVER_INTERNAL_H
#define HOOKCAST_DELIVER_INTERNAL_H

/*
 * Only deliver.c, target.c, route.c and xfer.c include this header.  They
 * are one module, delivery, split by concept; struct dthread is one
 * delivery thread and everything it owns, and each of those files works on
 * one at a time; the structs below
 * are not opaque between them because the per-delivery path reads and
 * writes their fields from several of those files, and an accessor call
 * per field would be work added to every delivery.  Nothing outside
 * delivery may include it: deliver.h is the module's public face.
 *
 * Every field from d_targets on belongs to the delivery thread, which
 * needs no lock for them; the comment on each group names the file that
 * writes it.  Threads, locks and their order: see src/README.md and the DESIGN
 * block of deliver.c.
 */

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <curl/curl.h>

#include "config.h"
#include "deliver.h"
#include "sign.h"
#include "subs.h"

struct evloop;
struct route;
struct signer;
struct store_reader;
struct topics;
struct xfer;

#define LOG_EVERY_MS 10000 /* a subscriber's repeated failures, at most */
#define SLOW_MS	     1000  /* in flight longer: no longer counted */

/* Commands from other threads, in commit order, through the inbox. */
enum cmd_type {
	CMD_ADD,
	CMD_REMOVE,
	CMD_UPDATE,
	CMD_PUBLISH,
	CMD_REPLAY,
	CMD_CONFIG
};

struct cmd {
	struct cmd *ic_next;
	enum cmd_type ic_type;
	void *ic_arg;			/* target, update, msg, replay */
	size_t ic_n;			/* CMD_REPLAY: items in ic_arg */
	const struct config *ic_config; /* CMD_CONFIG: a reference */
};

/* A delivery that failed and waits for its next attempt. */
struct target_retry {
	uint64_t tr_seq;
	struct msg *tr_msg; /* NULL: read it from the store when due */
	int tr_attempts;    /* failed so far */
	int64_t tr_due;	    /* monotonic ms */
	int64_t tr_first;   /* wall-clock ms of the first attempt */
};

/* A subscriber that fails or overflows does so every message: log it rarely. */
struct ratelog {
	int64_t rl_last;	/* monotonic ms of the last line, 0: none */
	unsigned long rl_quiet; /* events since, not logged */
};

struct topic_seg {
	uint64_t ts_until;
	struct topics *ts_topics;
};

/*
 * A webhook-signature a thread made (xfer.c): message SK_SEQ's, by signer
 * SK_KEY (signer_key()), for second SK_TS.  Fan-out delivers a message to
 * a thread's subscribers close together, so these, by seq (subscribers
 * less than SIG_KEPT messages apart share them), spare all but one HMAC a
 * message, a secret and a second.  A thread's own: no lock, no sharing.
 */
#define SIG_KEPT 256
struct sig_kept {
	uint64_t sk_seq;
	uint64_t sk_key;
	int64_t sk_ts; /* 0: none */
	char sk_value[SIGN_VALUE_MAX];
};

/* One subscriber, as the delivery thread sees it (target.c). */
struct target {
	struct cmd tg_add, tg_remove; /* embedded: never allocated later */
	struct sub *tg_sub;
	size_t tg_index;	  /* in d_targets while live */
	struct topics *tg_topics; /* NULL: every topic */
	size_t tg_every;	  /* route.c's; SIZE_MAX: filed nowhere */
	struct signer *tg_signer; /* its own secret's, or NULL */
	/*
	 * Routing is decided when a message is published: after a change of
	 * topics, what was pending before it (in the FIFO or in the store)
	 * stays judged by the topics of then.  tg_segs[i] holds the topics
	 * that routed the messages up to ts_until, oldest first.
	 */
	struct topic_seg *tg_segs;
	size_t tg_nsegs;
	int64_t tg_id;	      /* the store's */
	struct msg **tg_ring; /* FIFO of references, in seq order */
	size_t tg_cap, tg_head, tg_len;
	/*
	 * Backlog in the store: messages tg_next..d_last_seq are for this
	 * subscriber but not in the FIFO; they are read back when it empties.
	 */
	int tg_stored;
	uint64_t tg_next;
	uint64_t tg_saved;		 /* cursor last sent to the store */
	uint64_t tg_low;		 /* scratch: lowest seq in flight */
	struct target_retry *tg_retries; /* by due time (by seq when ordered) */
	size_t tg_nretries, tg_retries_cap;
	int tg_fails; /* consecutive */
	enum sub_state tg_state;
	long tg_in_flight;
	int tg_removed;
	int tg_gone;  /* answered 410: its removal is on its way */
	int tg_ready; /* on the ready list */
	struct target *tg_ready_next;
	struct ratelog tg_fail_log;
};

/* One delivery thread: it owns the shards s with s % threads == d_index. */
struct dthread {
	struct deliver *d_all; /* the threads it is one of */
	int d_index;
	const struct config *d_cfg;
	const struct config *d_cfg_ref; /* held since a reload, or NULL */
	unsigned d_reloads;		/* configs taken since the start */
	struct store *d_store;
	struct subs *d_subs;
	struct store_reader *d_reader;
	pthread_t d_thread;
	int d_started;	     /* d_thread runs (or ran) */
	int d_wedged_said;   /* thread 0: a stuck sibling logged */
	struct evloop *d_ev; /* epoll and the CURLM */
	long d_max_open;     /* connections the fd limit allows */

	/* The inbox: any thread, under d_inbox_lock (deliver.c). */
	pthread_mutex_t d_inbox_lock;
	struct cmd *d_inbox_head, **d_inbox_tail;
	atomic_bool d_pending; /* the inbox had commands since the last drain */
	atomic_bool d_woken;   /* a wakeup is already on its way */
	atomic_bool d_stopping;
	_Atomic int64_t d_deadline; /* monotonic ms, once stopping */
	/* For /readyz and /metrics: written by the thread, read by anyone. */
	_Atomic int64_t d_beat;		 /* monotonic ms of the last round */
	atomic_long d_flying;		 /* d_in_flight, as last changed */
	atomic_long d_count;		 /* d_ntargets, as last changed */
	atomic_uint_fast64_t d_attempts; /* delivery attempts ended */
	/* The API's own address: deliver_set_self(), before store_start(). */
	struct sockaddr_storage d_self;
	atomic_bool d_self_known;

	/* Every subscriber's target, and routing by topic (route.c). */
	struct target **d_targets;
	size_t d_ntargets, d_targets_cap;
	struct route *d_route;
	/* Targets with work and a free slot, round-robin (target.c). */
	struct target *d_ready_head, *d_ready_tail;
	/* Transfers: free handles, and those added, oldest first (xfer.c). */
	struct xfer *d_xfer_free;
	struct xfer *d_active_head, *d_active_tail;
	struct xfer *d_active_young; /* the first not yet slow */
	long d_in_flight;
	long d_fast;		    /* of them, not yet slow */
	long d_max_transfers;	    /* its share of max_transfers */
	struct ratelog d_nomem_log; /* no handle for a transfer */
	struct signer *d_signer;    /* signing_secret's, or NULL */
	/* The webhook-timestamp line of second d_stamp_sec (0: none yet). */
	int64_t d_stamp_sec;
	size_t d_stamp_len;
	char d_stamp_line[40];
	struct sig_kept d_sigs[SIG_KEPT]; /* by seq % SIG_KEPT */
	uint64_t d_rng;			  /* retry jitter */
	char d_user_agent[64];
	int d_http2; /* libcurl has HTTP/2 (nghttp2): checked at start */
	struct curl_slist *d_resolve; /* HOOKCAST_TEST_RESOLVE's, or NULL */
	/* The loop (deliver.c). */
	uint64_t d_last_seq; /* the newest message fanned out */
	int64_t d_now;	     /* monotonic ms, this round */
	int64_t d_next_tick; /* retries due, progress */
	int64_t d_next_progress;
	int d_rescan;	 /* a backlog read is under way: no sleep */
	int d_max_sleep; /* ms: a watchdog interval / 4 */
};

#endif

/*
 * deliver.c: fan-out and HTTP delivery over one libcurl multi handle.
 *
 * DESIGN
 * One thread runs deliver_loop() and is the only one to touch the CURLM and
 * CURL handles.  The store's writer thread hands it commands (a subscriber
 * added or removed, a message published, dead letters replayed), each once
 * committed and in commit order, through the inbox, a FIFO under inbox_lock,
 * and wakes it through an eventfd.  The thread holds inbox_lock only to take
 * the whole list; it takes the map's lock only through subs_remove() (a 410),
 * holding nothing else.
 *
 * The loop drives libcurl's socket interface (curl_multi_socket_action)
 * from its own epoll set, rather than curl_multi_poll()/curl_multi_perform()
 * with curl_multi_wakeup(): libcurl 7.88's perform polls every transfer in
 * flight on every call, which cost more than the deliveries themselves at a
 * few hundred in flight.  Idle connections stay in the epoll set (struct
 * fdslot) and the connection cache is sized to every subscriber's.
 *
 * For every subscriber the thread keeps a struct target: a FIFO of message
 * references (at most queue_limit; shorter while bodies in memory pass
 * max_queued_bytes), its retries ordered by due time, and its transfers in
 * flight, at most max_in_flight (1 when ordered).  A FIFO that is full stops
 * taking messages: the target then has a backlog in the store (t_stored,
 * from t_next to last_seq), read back a page at a time when the FIFO is
 * empty.  Nothing is dropped.  A target with work and a free slot waits in
 * a round-robin ready list; transfers start from it while fewer than
 * max_transfers are in flight, not counting those in flight for over
 * SLOW_MS.  A subscriber that hangs or refuses therefore holds only its own
 * slots and the others keep their rate.
 *
 * A failed attempt becomes a retry (saved in the store first) due after the
 * schedule's jittered wait; failure_threshold failures in a row make the
 * target failing: its FIFO goes back to the store and only one retry at a
 * time is tried until one succeeds.  Once a second each target's cursor
 * (the first message not yet done, retries aside) is saved, so that a
 * restart resumes from it.
 *
 * Every connection libcurl opens goes through on_open(), on this thread,
 * with the address it is about to connect to: the egress policy is checked
 * there, after DNS, and a denial's reason is kept in the transfer until it
 * fails (note_failure makes it the subscriber's last error).
 *
 * The loop pings the service manager's watchdog (notify_watchdog) on every
 * turn and never sleeps longer than a quarter of its interval, so the pings
 * stop exactly when this thread is wedged, and then systemd restarts the
 * daemon.
 *
 * A target is allocated by deliver_on_add (so that removing a subscriber
 * never needs memory) with both of its commands embedded; from the moment
 * its add command is queued it belongs to this thread.
 *
 * For /metrics and /readyz the thread counts each attempt's result and
 * time (metrics.c), and publishes its heartbeat (each round of the loop)
 * and its count in flight in relaxed atomics: no lock, a few adds and
 * stores a delivery.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <curl/curl.h>

#include "addr.h"
#include "clock.h"
#include "deliver.h"
#include "egress.h"
#include "log.h"
#include "metrics.h"
#include "notify.h"
#include "retry.h"
#include "sign.h"
#include "store.h"
#include "topics.h"

enum cmd_type { CMD_ADD, CMD_REMOVE, CMD_UPDATE, CMD_PUBLISH, CMD_REPLAY,
    CMD_CONFIG };

struct cmd {
	struct cmd	*next;
	enum cmd_type	 type;
	void		*arg;		/* target, sub, msg, replay, config */
	size_t		 n;		/* CMD_REPLAY: items in arg */
};

/* A delivery that failed and waits for its next attempt. */
struct retry {
	uint64_t	 r_seq;
	struct msg	*r_msg;		/* NULL: read it from the store when due */
	int		 r_attempts;	/* failed so far */
	int64_t		 r_due;		/* monotonic ms */
	int64_t		 r_first;	/* wall-clock ms of the first attempt */
};

/* A subscriber that fails or overflows does so every message: log it rarely. */
struct ratelog {
	int64_t		 rl_last;	/* monotonic ms of the last line, 0: none */
	unsigned long	 rl_quiet;	/* events since, not logged */
};

struct target {
	struct cmd	 t_add, t_remove;	/* embedded: never allocated later */
	struct sub	*t_sub;
	size_t		 t_index;	/* in deliver.targets while live */
	struct topics	*t_topics;	/* NULL: every topic */
	size_t		 t_every;	/* in deliver.every, when t_topics is NULL */
	struct signer	*t_signer;	/* its own secret's, or NULL */
	/*
	 * Routing is decided when a message is published: after a change of
	 * topics, what was pending before it (in the FIFO or in the store)
	 * stays judged by the topics of then.  t_segs[i] holds the topics
	 * that routed the messages up to ts_until, oldest first.
	 */
	struct topic_seg *t_segs;
	size_t		 t_nsegs;
	int64_t		 t_id;		/* the store's */
	struct msg	**t_ring;	/* FIFO of references, in seq order */
	size_t		 t_cap, t_head, t_len;
	/*
	 * Backlog in the store: messages t_next..d->last_seq are for this
	 * subscriber but not in the FIFO; they are read back when it empties.
	 */
	int		 t_stored;
	uint64_t	 t_next;
	uint64_t	 t_saved;	/* cursor last sent to the store */
	uint64_t	 t_low;		/* scratch: lowest seq in flight */
	struct retry	*t_retries;	/* by due time (by seq when ordered) */
	size_t		 t_nretries, t_retries_cap;
	int		 t_fails;	/* consecutive */
	enum sub_state	 t_state;
	long		 t_in_flight;
	int		 t_removed;
	int		 t_gone;	/* answered 410: its removal is on its way */
	int		 t_ready;	/* on the ready list */
	struct target	*t_ready_next;
	struct ratelog	 t_fail_log;
};

struct topic_seg {
	uint64_t	 ts_until;
	struct topics	*ts_topics;
};

struct xfer {
	struct xfer	*x_next;	/* free list, or the active list */
	struct xfer	*x_prev;	/* active list */
	int64_t		 x_start;	/* monotonic ms */
	int		 x_slow;	/* no longer counted in d->fast */
	CURL		*x_easy;
	struct target	*x_target;
	struct msg	*x_msg;
	int		 x_retry;	/* an attempt of a struct retry */
	int		 x_attempts;	/* failed before this one */
	int64_t		 x_first;	/* wall-clock ms of the first attempt */
	struct deliver	*x_d;		/* for on_open */
	char		 x_err[CURL_ERROR_SIZE];
	/* This attempt's own headers, chained in front of the message's. */
	struct curl_slist x_hdr[2];
	char		 x_stamp[40];
	char		 x_sig[24 + SIGN_VALUE_MAX];
	char		 x_denied[EGRESS_REASONLEN];	/* by on_open, "": no */
};

struct deliver {
	const struct config	*cfg;
	const struct config	*cfg_ref;	/* held since a reload, or NULL */
	struct store		*store;
	struct subs		*subs;
	struct store_reader	*reader;
	pthread_t		 thread;
	CURLM			*multi;
	int			 epfd;		/* the multi handle's sockets */
	int			 wakefd;	/* eventfd: the inbox has work */
	int64_t			 timer;		/* libcurl's deadline, -1: none */
	long			 max_open;	/* connections the fd limit allows */
	struct fdslot		*slots;		/* by descriptor */
	size_t			 nslots;

	pthread_mutex_t		 inbox_lock;
	struct cmd		*inbox_head, **inbox_tail;
	atomic_bool		 woken;		/* a wakeup is already on its way */
	atomic_bool		 stopping;
	_Atomic int64_t		 deadline;	/* monotonic ms, once stopping */
	/* For /readyz and /metrics: written by the thread, read by anyone. */
	_Atomic int64_t		 beat;		/* monotonic ms of the last round */
	atomic_long		 flying;	/* in_flight, as of the last change */

	/* Everything below belongs to the delivery thread. */
	struct target		**targets;
	size_t			 ntargets, targets_cap;
	/* Routing: targets by topic, and those that take every topic. */
	struct topic_index	*index;
	struct target		**every;
	size_t			 nevery, every_cap;
	struct topic_vec	 route;		/* scratch for one message */
	struct signer		*signer;	/* signing_secret's, or NULL */
	struct target		*ready_head, *ready_tail;
	struct xfer		*xfer_free;
	/* Transfers added to the multi handle, oldest first. */
	struct xfer		*active_head, *active_tail;
	struct xfer		*active_young;	/* the first not yet slow */
	long			 in_flight;
	long			 fast;		/* of them, not yet slow */
	size_t			 queued;	/* messages in all FIFOs */
	uint64_t		 last_seq;	/* the newest message fanned out */
	uint64_t		 rng;		/* retry jitter */
	int64_t			 now;		/* monotonic ms, this round */
	int64_t			 next_tick;	/* retries due, progress */
	int64_t			 next_progress;
	int			 rescan;	/* a backlog read is under way: no sleep */
	int			 max_sleep;	/* ms: a watchdog interval / 4 */
	/* The API's own address (deliver_set_self, before store_start). */
	struct sockaddr_storage	 self;
	atomic_bool		 self_known;
	char			 user_agent[64];
	struct curl_slist	*resolve;	/* HOOKCAST_TEST_RESOLVE's, or NULL */
};

/* A subscriber's new topics and signer, as of the commit that changed them. */
struct update {
	struct cmd	 u_cmd;
	struct sub	*u_sub;
	struct topics	*u_topics;
	struct signer	*u_signer;
};

static void
update_free(struct update *u)
{
	sub_unref(u->u_sub);
	topics_unref(u->u_topics);
	signer_free(u->u_signer);
	free(u);
}

#define RING_MIN	16
#define LOG_EVERY_MS	10000
#define PAGE		64	/* messages read back from the store at once */
#define SCAN_MAX	4096	/* stored messages looked at a read, with topics */
#define TICK_MS		50	/* how often due retries are looked for */
#define PROGRESS_MS	1000	/* how often cursors are saved */

/* 1 if a line may be logged now; otherwise counts the event as left out. */
static int
ratelog_allow(struct ratelog *rl)
{
	int64_t now = clock_mono_ms();

	if (rl->rl_last != 0 && now - rl->rl_last < LOG_EVERY_MS) {
		rl->rl_quiet++;
		return 0;
	}
	rl->rl_last = now;
	return 1;
}

static void
inbox_push(struct deliver *d, struct cmd *c)
{
	c->next = NULL;
	pthread_mutex_lock(&d->inbox_lock);
	*d->inbox_tail = c;
	d->inbox_tail = &c->next;
	pthread_mutex_unlock(&d->inbox_lock);
}

static void
wake_thread(struct deliver *d)
{
	uint64_t one = 1;

	/* EAGAIN means the counter is already non-zero: the thread will wake. */
	if (write(d->wakefd, &one, sizeof(one)) < 0)
		return;
}

void
deliver_set_self(struct deliver *d, const struct sockaddr *sa, size_t len)
{
	if (len > sizeof(d->self))
		return;
	memcpy(&d->self, sa, len);
	atomic_store(&d->self_known, true);
}

void
deliver_wake(struct deliver *d)
{
	/* One wakeup is enough for any number of commands queued before it. */
	if (!atomic_exchange(&d->woken, true))
		wake_thread(d);
}

int
deliver_on_add(struct sub *sub, const struct topics *topics,
    const char *secret, void *arg)
{
	struct deliver *d = arg;
	struct target *t;

	if ((t = calloc(1, sizeof(*t))) == NULL)
		return -1;
	/* A secret that cannot be used would sign with the wrong key: refuse. */
	if (secret != NULL && *secret != '\0' &&
	    (t->t_signer = signer_new(secret)) == NULL) {
		free(t);
		return -1;
	}
	t->t_topics = topics_ref((struct topics *)(uintptr_t)topics);
	sub_set_deliver_state(sub, t);
	t->t_sub = sub_ref(sub);
	t->t_add.type = CMD_ADD;
	t->t_add.arg = t;
	t->t_remove.type = CMD_REMOVE;
	t->t_remove.arg = t;
	inbox_push(d, &t->t_add);
	return 0;
}

void
deliver_on_remove(struct sub *sub, void *arg)
{
	struct target *t = sub_deliver_state(sub);

	inbox_push(arg, &t->t_remove);
}

int
deliver_on_change(struct sub *sub, const struct topics *topics,
    const char *secret, void *arg)
{
	char la[LOG_VALUE_MAX];
	struct update *u;

	if ((u = calloc(1, sizeof(*u))) == NULL ||
	    (secret != NULL && *secret != '\0' &&
	    (u->u_signer = signer_new(secret)) == NULL)) {
		free(u);
		log_error("new topics or secret not in effect until restart",
		    "address=%s reason=nomem",
		    log_value(la, sizeof(la), sub_address(sub)));
		return -1;
	}
	u->u_sub = sub_ref(sub);
	u->u_topics = topics_ref((struct topics *)(uintptr_t)topics);
	u->u_cmd.type = CMD_UPDATE;
	u->u_cmd.arg = u;
	inbox_push(arg, &u->u_cmd);
	return 0;
}

int
deliver_publish(struct deliver *d, struct msg *m)
{
	struct cmd *c;

	if ((c = malloc(sizeof(*c))) == NULL)
		return -1;
	c->type = CMD_PUBLISH;
	c->arg = msg_ref(m);
	inbox_push(d, c);
	return 0;
}

void
deliver_replay(struct deliver *d, const struct store_replay *items, size_t n)
{
	struct cmd *c;

	if (n == 0)
		return;
	if ((c = malloc(sizeof(*c))) == NULL ||
	    (c->arg = malloc(n * sizeof(*items))) == NULL) {
		/* The rows are retries now: they are picked up at the next start. */
		free(c);
		log_error("replay not queued until restart", "count=%zu "
		    "reason=nomem", n);
		return;
	}
	memcpy(c->arg, items, n * sizeof(*items));
	c->type = CMD_REPLAY;
	c->n = n;
	inbox_push(d, c);
	deliver_wake(d);
}

/* ---- the delivery thread ---------------------------------------------- */

static long
target_max_in_flight(const struct deliver *d)
{
	return d->cfg->ordered ? 1 : d->cfg->max_in_flight;
}

static uint64_t
ring_seq(const struct target *t, size_t i)
{
	return msg_seq(t->t_ring[(t->t_head + i) % t->t_cap]);
}

/*
 * What T would start next: 1 its first retry (due), 2 its FIFO's head, 3 a
 * backlog to read back from the store first; 0 nothing now.  A failing
 * subscriber only gets its retry probe, one at a time; an ordered one holds
 * everything behind a retry.
 */
static int
target_next(const struct deliver *d, const struct target *t)
{
	if (t->t_removed || t->t_gone ||
	    t->t_in_flight >= target_max_in_flight(d))
		return 0;
	if (t->t_nretries > 0 && t->t_retries[0].r_due <= d->now)
		return t->t_state == SUB_FAILING && t->t_in_flight > 0 ? 0 : 1;
	if (t->t_state == SUB_FAILING || (d->cfg->ordered && t->t_nretries > 0))
		return 0;
	if (t->t_len > 0)
		return 2;
	if (t->t_stored && t->t_next <= d->last_seq)
		return 3;
	return 0;
}

static void
ready_push(struct deliver *d, struct target *t)
{
	if (t->t_ready || target_next(d, t) == 0)
		return;
	t->t_ready = 1;
	t->t_ready_next = NULL;
	if (d->ready_tail != NULL)
		d->ready_tail->t_ready_next = t;
	else
		d->ready_head = t;
	d->ready_tail = t;
}

static struct target *
ready_pop(struct deliver *d)
{
	struct target *t = d->ready_head;

	if (t != NULL) {
		d->ready_head = t->t_ready_next;
		if (d->ready_head == NULL)
			d->ready_tail = NULL;
		t->t_ready = 0;
	}
	return t;
}

/* The counters the listing shows: FIFO plus stored backlog, and retries. */
static void
target_count(struct deliver *d, struct target *t)
{
	uint64_t backlog = t->t_len;

	if (t->t_stored && t->t_next <= d->last_seq)
		backlog += d->last_seq - t->t_next + 1;
	atomic_store(&sub_counters(t->t_sub)->queued, backlog);
	atomic_store(&sub_counters(t->t_sub)->retrying, t->t_nretries);
}

static struct msg *
target_shift(struct deliver *d, struct target *t)
{
	struct msg *m = t->t_ring[t->t_head];

	t->t_head = (t->t_head + 1) % t->t_cap;
	t->t_len--;
	d->queued--;
	return m;
}

/* Appends M (a new reference) to T's FIFO; -1 when out of memory. */
static int
target_push(struct deliver *d, struct target *t, struct msg *m)
{
	if (t->t_len == t->t_cap) {
		size_t ncap = t->t_cap ? t->t_cap * 2 : RING_MIN;
		struct msg **r;

		if ((r = malloc(ncap * sizeof(*r))) == NULL)
			return -1;
		for (size_t i = 0; i < t->t_len; i++)
			r[i] = t->t_ring[(t->t_head + i) % t->t_cap];
		free(t->t_ring);
		t->t_ring = r;
		t->t_cap = ncap;
		t->t_head = 0;
	}
	t->t_ring[(t->t_head + t->t_len) % t->t_cap] = msg_ref(m);
	t->t_len++;
	d->queued++;
	return 0;
}

/* The first message of T not yet started: FIFO head, or stored backlog. */
static uint64_t
target_unsent(const struct deliver *d, const struct target *t)
{
	if (t->t_len > 0)
		return ring_seq(t, 0);
	return t->t_stored ? t->t_next : d->last_seq + 1;
}

static void
target_clear(struct deliver *d, struct target *t)
{
	while (t->t_len > 0)
		msg_unref(target_shift(d, t));
}

/* Empties T's FIFO into the store's backlog: those messages are read back later. */
static void
target_spill(struct deliver *d, struct target *t)
{
	t->t_next = target_unsent(d, t);
	t->t_stored = 1;
	target_clear(d, t);
	free(t->t_ring);
	t->t_ring = NULL;
	t->t_cap = t->t_head = 0;
}

/* The topics message SEQ was routed to T by. */
static const struct topics *
target_topics_at(const struct target *t, uint64_t seq)
{
	for (size_t i = 0; i < t->t_nsegs; i++)
		if (seq <= t->t_segs[i].ts_until)
			return t->t_segs[i].ts_topics;
	return t->t_topics;
}

/* Forgets the topics of messages before FROM: none of them is pending. */
static void
segs_prune(struct target *t, uint64_t from)
{
	size_t n = 0;

	while (n < t->t_nsegs && t->t_segs[n].ts_until < from)
		topics_unref(t->t_segs[n++].ts_topics);
	if (n == 0)
		return;
	memmove(t->t_segs, t->t_segs + n, (t->t_nsegs - n) *
	    sizeof(*t->t_segs));
	t->t_nsegs -= n;
}

/*
 * LO..last_seq, less what is already a retry, become dead letters for T:
 * each stretch filtered by the topics that routed it.
 */
static void
target_dead_range(struct deliver *d, struct target *t, uint64_t lo,
    const char *reason)
{
	for (size_t i = 0; i < t->t_nsegs && lo <= d->last_seq; i++) {
		uint64_t hi = t->t_segs[i].ts_until;

		if (hi < lo)
			continue;
		store_dead_range(d->store, t->t_id, sub_address(t->t_sub), lo,
		    hi, topics_text(t->t_segs[i].ts_topics), reason);
		lo = hi + 1;
	}
	if (lo <= d->last_seq)
		store_dead_range(d->store, t->t_id, sub_address(t->t_sub), lo,
		    d->last_seq, topics_text(t->t_topics), reason);
}

/* Reads T's next page of backlog into its FIFO. */
static void
target_refill(struct deliver *d, struct target *t)
{
	char la[LOG_VALUE_MAX];
	const struct topics *topics;
	struct msg *page[PAGE];
	uint64_t next, hi = d->last_seq;
	long n;

	segs_prune(t, t->t_next);
	topics = target_topics_at(t, t->t_next);
	if (t->t_nsegs > 0 && t->t_segs[0].ts_until < hi)
		hi = t->t_segs[0].ts_until;
	/* Other topics' messages are skipped a stretch at a time (dispatch). */
	if (topics != NULL && hi - t->t_next >= SCAN_MAX)
		hi = t->t_next + SCAN_MAX - 1;
	n = store_read_page(d->reader, t->t_next, hi, topics_text(topics),
	    PAGE, page, &next);
	if (n == -1)
		return;		/* logged; tried again on the next tick */
	/* With topics, a stretch of others' messages is nothing to worry about. */
	if (n == 0 && topics == NULL)
		log_error("stored messages missing", "address=%s from=%llu "
		    "to=%llu", log_value(la, sizeof(la), sub_address(t->t_sub)),
		    (unsigned long long)t->t_next,
		    (unsigned long long)d->last_seq);
	for (long i = 0; i < n; i++) {
		if (target_push(d, t, page[i]) == -1) {
			next = msg_seq(page[i]);
			for (long j = i; j < n; j++)
				msg_unref(page[j]);
			break;
		}
		msg_unref(page[i]);
	}
	t->t_next = next;
	if (t->t_next > d->last_seq)
		t->t_stored = 0;
}

static void
retry_insert(struct deliver *d, struct target *t, const struct retry *r)
{
	char la[LOG_VALUE_MAX];
	size_t i;

	if (t->t_nretries == t->t_retries_cap) {
		size_t n = t->t_retries_cap ? t->t_retries_cap * 2 : 8;
		struct retry *v = realloc(t->t_retries, n * sizeof(*v));

		if (v == NULL) {
			/* The row is in the store: it comes back at the next start. */
			log_error("retry kept in the store only", "address=%s "
			    "reason=nomem",
			    log_value(la, sizeof(la), sub_address(t->t_sub)));
			msg_unref(r->r_msg);
			return;
		}
		t->t_retries = v;
		t->t_retries_cap = n;
	}
	for (i = t->t_nretries; i > 0; i--) {
		const struct retry *p = &t->t_retries[i - 1];

		if (d->cfg->ordered ? p->r_seq <= r->r_seq :
		    p->r_due <= r->r_due)
			break;
		t->t_retries[i] = *p;
	}
	t->t_retries[i] = *r;
	t->t_nretries++;
}

static int
retry_find(const struct target *t, uint64_t seq)
{
	for (size_t i = 0; i < t->t_nretries; i++)
		if (t->t_retries[i].r_seq == seq)
			return 1;
	return 0;
}

static void
retry_take(struct target *t, struct retry *out)
{
	*out = t->t_retries[0];
	memmove(t->t_retries, t->t_retries + 1,
	    --t->t_nretries * sizeof(*t->t_retries));
}

static void
retries_clear(struct target *t)
{
	for (size_t i = 0; i < t->t_nretries; i++)
		msg_unref(t->t_retries[i].r_msg);
	t->t_nretries = 0;
}

/* Frees T once nothing refers to it: removed, idle and off the ready list. */
static void
target_release(struct deliver *d, struct target *t)
{
	if (!t->t_removed || t->t_in_flight > 0 || t->t_ready)
		return;
	if (t->t_id != 0)
		store_sub_gone(d->store, t->t_id, sub_address(t->t_sub),
		    sub_end_reason(sub_end(t->t_sub)),
		    d->cfg->dead_letter_on_evict);
	retries_clear(t);
	free(t->t_retries);
	sub_unref(t->t_sub);
	topics_unref(t->t_topics);
	for (size_t i = 0; i < t->t_nsegs; i++)
		topics_unref(t->t_segs[i].ts_topics);
	free(t->t_segs);
	signer_free(t->t_signer);
	free(t->t_ring);
	free(t);
}

/*
 * Room in libcurl's cache for every subscriber's idle connections: when the
 * cache is smaller than what the subscribers keep open, it closes one
 * connection for every one it opens, and deliveries pay a TCP handshake
 * each.  Bounded by the descriptors left over from the HTTP front end.
 */
static void
size_conn_cache(struct deliver *d)
{
	long want = (long)d->ntargets * target_max_in_flight(d);

	if (want < d->cfg->max_transfers)
		want = d->cfg->max_transfers;
	if (want > d->max_open)
		want = d->max_open;
	curl_multi_setopt(d->multi, CURLMOPT_MAXCONNECTS, want);
}

/* Files T for routing by its topics: 0, or -1 (unchanged) when out of memory. */
static int
route_add(struct deliver *d, struct target *t)
{
	if (t->t_topics != NULL)
		return topic_index_add(d->index, t->t_topics, t);
	if (d->nevery == d->every_cap) {
		size_t ncap = d->every_cap ? d->every_cap * 2 : 64;
		struct target **v = realloc(d->every, ncap * sizeof(*v));

		if (v == NULL)
			return -1;
		d->every = v;
		d->every_cap = ncap;
	}
	t->t_every = d->nevery;
	d->every[d->nevery++] = t;
	return 0;
}

static void
route_remove(struct deliver *d, struct target *t)
{
	struct target *last;

	if (t->t_topics != NULL) {
		topic_index_remove(d->index, t->t_topics, t);
		return;
	}
	last = d->every[--d->nevery];
	d->every[t->t_every] = last;
	last->t_every = t->t_every;
}

static int
targets_add(struct deliver *d, struct target *t)
{
	if (route_add(d, t) == -1)
		return -1;
	if (d->ntargets == d->targets_cap) {
		size_t ncap = d->targets_cap ? d->targets_cap * 2 : 64;
		struct target **v = realloc(d->targets, ncap * sizeof(*v));

		if (v == NULL) {
			route_remove(d, t);
			return -1;
		}
		d->targets = v;
		d->targets_cap = ncap;
	}
	t->t_index = d->ntargets;
	d->targets[d->ntargets++] = t;
	size_conn_cache(d);
	return 0;
}

static void
targets_remove(struct deliver *d, struct target *t)
{
	struct target *last = d->targets[--d->ntargets];

	route_remove(d, t);
	d->targets[t->t_index] = last;
	last->t_index = t->t_index;
	size_conn_cache(d);
}

/*
 * The subscriber has left: what it had not started becomes dead letters
 * (dead_letter_on_evict), and when its last delivery in flight is over the
 * store turns its retries into dead letters too and forgets it.
 */
static void
handle_remove(struct deliver *d, struct target *t)
{
	char la[LOG_VALUE_MAX];
	const char *reason = sub_end_reason(sub_end(t->t_sub));
	uint64_t lo = target_unsent(d, t);
	uint64_t pending = d->last_seq + 1 - lo + t->t_nretries;

	targets_remove(d, t);
	if (d->cfg->dead_letter_on_evict && lo <= d->last_seq)
		target_dead_range(d, t, lo, reason);
	target_clear(d, t);
	retries_clear(t);
	t->t_removed = 1;
	if (pending > 0)
		log_info(d->cfg->dead_letter_on_evict ? "pending deliveries "
		    "are dead letters" : "pending deliveries discarded",
		    "address=%s reason=%s count=%llu",
		    log_value(la, sizeof(la), sub_address(t->t_sub)), reason,
		    (unsigned long long)pending);
	target_release(d, t);
}

/*
 * New topics or a new secret, committed: routing and signing follow from
 * the next message on.  What is pending stays routed as it was.
 */
static void
handle_update(struct deliver *d, struct update *u)
{
	char la[LOG_VALUE_MAX];
	struct target *t = sub_deliver_state(u->u_sub);
	struct topics *old;

	if (t == NULL || t->t_removed || t->t_index == SIZE_MAX)
		return;
	signer_free(t->t_signer);
	t->t_signer = u->u_signer;
	u->u_signer = NULL;
	if (topics_equal(u->u_topics, t->t_topics))
		return;
	route_remove(d, t);
	old = t->t_topics;
	t->t_topics = u->u_topics;
	u->u_topics = NULL;
	if (route_add(d, t) == -1) {
		/* Routed as if for every topic rather than not at all. */
		log_error("new topics not in effect", "address=%s "
		    "reason=nomem",
		    log_value(la, sizeof(la), sub_address(t->t_sub)));
		topics_unref(t->t_topics);
		t->t_topics = NULL;
		if (route_add(d, t) == -1)
			sub_set_error(t->t_sub, "out of memory: not receiving");
	}
	segs_prune(t, target_unsent(d, t));
	if (target_unsent(d, t) <= d->last_seq &&
	    (t->t_nsegs == 0 || t->t_segs[t->t_nsegs - 1].ts_until <
	    d->last_seq)) {
		struct topic_seg *v = realloc(t->t_segs, (t->t_nsegs + 1) *
		    sizeof(*v));

		if (v != NULL) {
			t->t_segs = v;
			t->t_segs[t->t_nsegs].ts_until = d->last_seq;
			t->t_segs[t->t_nsegs++].ts_topics = old;
			return;
		}
		log_error("pending messages routed by the new topics",
		    "address=%s reason=nomem",
		    log_value(la, sizeof(la), sub_address(t->t_sub)));
	}
	topics_unref(old);
}

/* Retries the store kept for a subscriber that is back after a restart. */
static void
load_retries(struct deliver *d, struct target *t, uint64_t start)
{
	struct store_attempt *v;
	int64_t real = clock_real_ms();
	long n;

	if ((n = store_read_retries(d->reader, t->t_id, &v)) <= 0)
		return;
	for (long i = 0; i < n; i++) {
		struct retry r = {
			.r_seq = v[i].seq,
			.r_attempts = v[i].attempts,
			.r_first = v[i].first_at,
			.r_due = d->now + (v[i].next_at > real ?
			    v[i].next_at - real : 0),
		};

		/* Saved as a retry after the last cursor: it is sent as new. */
		if (v[i].seq >= start) {
			store_retry_done(d->store, t->t_id, v[i].seq);
			continue;
		}
		retry_insert(d, t, &r);
	}
	free(v);
}

static void
handle_add(struct deliver *d, struct target *t)
{
	char la[LOG_VALUE_MAX];
	uint64_t start = sub_start(t->t_sub);

	t->t_id = sub_store_id(t->t_sub);
	t->t_state = SUB_ACTIVE;
	sub_set_state(t->t_sub, SUB_ACTIVE);
	if (targets_add(d, t) == -1) {
		/* The subscriber stays listed but gets nothing: say so loudly. */
		log_error("cannot track subscriber", "address=%s reason=nomem",
		    log_value(la, sizeof(la), sub_address(t->t_sub)));
		sub_set_error(t->t_sub, "out of memory: not receiving");
		t->t_removed = 1;
		t->t_index = SIZE_MAX;
		return;
	}
	/* Restored: its backlog is in the store, and maybe retries too. */
	if (start != 0 && start <= d->last_seq) {
		t->t_stored = 1;
		t->t_next = start;
	}
	t->t_saved = start;
	/* A new subscriber's retries can only come from a replay (CMD_REPLAY). */
	if (sub_restored(t->t_sub))
		load_retries(d, t, start);
	target_count(d, t);
	ready_push(d, t);
}

/*
 * A FIFO that is full, or long while bodies in memory pass max_queued_bytes,
 * stops taking messages: they wait in the store and are read back in order.
 */
static void
publish_to(struct deliver *d, struct target *t, struct msg *m, int tight)
{
	size_t limit = (size_t)d->cfg->queue_limit;
	size_t spill = (size_t)target_max_in_flight(d) * 2;

	if (!t->t_stored && t->t_state == SUB_ACTIVE &&
	    t->t_len < limit && !(tight && t->t_len >= spill) &&
	    target_push(d, t, m) == 0) {
		ready_push(d, t);
		return;
	}
	if (!t->t_stored) {
		t->t_stored = 1;
		t->t_next = d->last_seq;
	}
	ready_push(d, t);
}

/*
 * A message with topics goes to the targets filed under them and to those
 * that take every topic: the work is in proportion to who gets it.
 */
static void
handle_publish(struct deliver *d, struct msg *m)
{
	const struct topics *topics = msg_topics(m);
	int tight = msg_bytes_alive() > d->cfg->max_queued_bytes;

	d->last_seq = msg_seq(m);
	if (topics == NULL || topic_index_match(d->index, topics,
	    &d->route) == -1) {
		for (size_t i = 0; i < d->ntargets; i++)
			if (topics_match(d->targets[i]->t_topics, topics))
				publish_to(d, d->targets[i], m, tight);
	} else {
		for (size_t i = 0; i < d->route.n; i++)
			publish_to(d, d->route.v[i], m, tight);
		for (size_t i = 0; i < d->nevery; i++)
			publish_to(d, d->every[i], m, tight);
	}
	msg_unref(m);
}

static struct target *
target_by_id(struct deliver *d, int64_t id)
{
	for (size_t i = 0; i < d->ntargets; i++)
		if (d->targets[i]->t_id == id)
			return d->targets[i];
	return NULL;
}

static void
handle_replay(struct deliver *d, const struct store_replay *items, size_t n)
{
	int64_t real = clock_real_ms();

	for (size_t i = 0; i < n; i++) {
		struct target *t = target_by_id(d, items[i].rp_sub_id);
		struct retry r = { .r_seq = items[i].rp_seq, .r_due = d->now,
		    .r_first = real };

		if (t == NULL)
			continue;	/* gone since: the store dead-letters it */
		/* A restored one may have read this retry back already. */
		if (sub_restored(t->t_sub) && retry_find(t, r.r_seq))
			continue;
		retry_insert(d, t, &r);
		target_count(d, t);
		ready_push(d, t);
	}
}

/*
 * A reload: everything read per transfer or per decision (timeouts, limits,
 * retry schedule, egress policy, CA file, signing secret) follows CFG from
 * now on; transfers in flight finish as they started.
 */
static void
handle_config(struct deliver *d, const struct config *cfg)
{
	struct signer *sg = NULL;

	if (strcmp(cfg->signing_secret, d->cfg->signing_secret) != 0) {
		if (*cfg->signing_secret != '\0' &&
		    (sg = signer_new(cfg->signing_secret)) == NULL) {
			/* Signing with the old key beats not signing. */
			log_error("reload not applied to deliveries", "reason="
			    "\"signing_secret refused by libcrypto\"");
			config_release(cfg);
			return;
		}
		signer_free(d->signer);
		d->signer = sg;
	}
	config_release(d->cfg_ref);
	d->cfg = d->cfg_ref = cfg;
	if (d->max_open < cfg->max_transfers)
		d->max_open = cfg->max_transfers;
	size_conn_cache(d);
}

static void
drain_inbox(struct deliver *d)
{
	struct cmd *c, *next;

	atomic_store(&d->woken, false);
	pthread_mutex_lock(&d->inbox_lock);
	c = d->inbox_head;
	d->inbox_head = NULL;
	d->inbox_tail = &d->inbox_head;
	pthread_mutex_unlock(&d->inbox_lock);

	for (; c != NULL; c = next) {
		next = c->next;
		switch (c->type) {
		case CMD_ADD:
			handle_add(d, c->arg);
			break;
		case CMD_REMOVE:
			if (((struct target *)c->arg)->t_index != SIZE_MAX)
				handle_remove(d, c->arg);
			else
				target_release(d, c->arg);
			break;
		case CMD_UPDATE:
			handle_update(d, c->arg);
			update_free(c->arg);
			break;
		case CMD_PUBLISH:
			handle_publish(d, c->arg);
			free(c);
			break;
		case CMD_REPLAY:
			handle_replay(d, c->arg, c->n);
			free(c->arg);
			free(c);
			break;
		case CMD_CONFIG:
			handle_config(d, c->arg);
			free(c);
			break;
		}
	}
}

/*
 * libcurl's socket interface: it says which sockets to watch for what, and
 * when to call it back; the loop below does the watching with epoll.  Each
 * wakeup then costs work in proportion to the sockets that are ready, not to
 * the transfers in flight.
 */
/*
 * What the epoll set holds for one descriptor.  For connections libcurl
 * opened through on_open(), removal is lazy: when a connection goes idle
 * its registration stays, so reusing it for the next delivery needs no
 * epoll_ctl at all.  on_close() learns of every such close, so a slot is
 * never trusted for a descriptor number that was closed and reused.
 */
struct fdslot {
	uint32_t	fs_events;	/* registered in epoll, 0: not */
	uint8_t		fs_conn;	/* opened by on_open */
	uint8_t		fs_want;	/* libcurl watches it now */
};

static struct fdslot *
fd_slot(struct deliver *d, int fd)
{
	static struct fdslot none;

	if (fd < 0)
		return &none;
	if ((size_t)fd >= d->nslots) {
		size_t n = d->nslots ? d->nslots : 256;
		struct fdslot *v;

		while (n <= (size_t)fd)
			n *= 2;
		if ((v = realloc(d->slots, n * sizeof(*v))) == NULL) {
			none = (struct fdslot){ 0 };
			return &none;	/* then every change is a real syscall */
		}
		memset(v + d->nslots, 0, (n - d->nslots) * sizeof(*v));
		d->slots = v;
		d->nslots = n;
	}
	return &d->slots[fd];
}

static void
fd_watch(struct deliver *d, int fd, uint32_t events)
{
	struct fdslot *fs = fd_slot(d, fd);
	struct epoll_event ev = { .events = events, .data.fd = fd };

	fs->fs_want = 1;
	if (fs->fs_conn && fs->fs_events == events)
		return;
	if (epoll_ctl(d->epfd, fs->fs_events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD,
	    fd, &ev) == -1 && epoll_ctl(d->epfd, fs->fs_events ?
	    EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd, &ev) == -1) {
		log_warn("epoll_ctl failed", "fd=%d", fd);
		return;
	}
	fs->fs_events = events;
}

static void
fd_unwatch(struct deliver *d, int fd)
{
	struct fdslot *fs = fd_slot(d, fd);

	fs->fs_want = 0;
	if (fs->fs_conn)
		return;		/* lazy: see struct fdslot */
	epoll_ctl(d->epfd, EPOLL_CTL_DEL, fd, NULL);
	fs->fs_events = 0;
}

/*
 * Every connection libcurl opens comes here with the address it is about
 * to connect to, after any DNS lookup: the egress policy is checked on
 * that, so a name that resolves (or rebinds) to a denied address gets no
 * connection.  The reason waits in the transfer for xfer_failed; libcurl
 * then tries the name's next address, or fails with COULDNT_CONNECT.
 */
/* 1, with the reason kept in X for xfer_failed, if X may not reach SA. */
static int
egress_denied(struct xfer *x, const struct sockaddr *sa)
{
	struct deliver *d = x->x_d;
	char why[EGRESS_REASONLEN], la[LOG_VALUE_MAX], lv[LOG_VALUE_MAX];

	if (atomic_load(&d->self_known) &&
	    egress_is_self(sa, (struct sockaddr *)&d->self))
		snprintf(why, sizeof(why), "%s", EGRESS_SELF);
	else if (egress_check(&d->cfg->deny_targets, &d->cfg->allow_targets,
	    sa, why) == EGRESS_ALLOW)
		return 0;
	memcpy(x->x_denied, why, sizeof(why));
	log_debug("connection not allowed", "address=%s reason=%s",
	    log_value(la, sizeof(la), sub_address(x->x_target->t_sub)),
	    log_value(lv, sizeof(lv), why));
	return 1;
}

static curl_socket_t
on_open(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
	struct xfer *x = arg;
	struct deliver *d = x->x_d;
	int fd;

	if (purpose != CURLSOCKTYPE_IPCXN || egress_denied(x, &a->addr))
		return CURL_SOCKET_BAD;
	fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
	if (fd == -1)
		return CURL_SOCKET_BAD;
	*fd_slot(d, fd) = (struct fdslot){ .fs_conn = 1 };
	return fd;
}

/*
 * Just before each request is sent, on a new connection or one kept alive:
 * once a reload may have changed the egress policy, a connection made
 * before it is judged again by the policy of now.
 */
static int
on_prereq(void *arg, char *peer_ip, char *local_ip, int peer_port,
    int local_port)
{
	struct xfer *x = arg;
	struct sockaddr_storage ss;

	(void)local_ip;
	(void)local_port;
	/* Until a reload, on_open's verdict on the connection still holds. */
	if (x->x_d->cfg_ref == NULL)
		return CURL_PREREQFUNC_OK;
	/* Not an address (it cannot be): left AF_UNSPEC, which is denied. */
	addr_ip(peer_ip, (unsigned int)peer_port, &ss);
	return egress_denied(x, (struct sockaddr *)&ss) ?
	    CURL_PREREQFUNC_ABORT : CURL_PREREQFUNC_OK;
}

static int
on_close(void *arg, curl_socket_t fd)
{
	struct deliver *d = arg;

	/* Closing drops the epoll registration too. */
	*fd_slot(d, fd) = (struct fdslot){ 0 };
	return close(fd);
}

static int
on_socket(CURL *e, curl_socket_t fd, int what, void *arg, void *known)
{
	struct deliver *d = arg;

	(void)e;
	(void)known;
	if (what == CURL_POLL_REMOVE)
		fd_unwatch(d, fd);
	else
		fd_watch(d, fd, ((what & CURL_POLL_IN) ? EPOLLIN : 0) |
		    ((what & CURL_POLL_OUT) ? EPOLLOUT : 0));
	return 0;
}

/* Subscribers' answers are not kept: only their status code counts. */
static size_t
discard_body(char *ptr, size_t size, size_t nmemb, void *arg)
{
	(void)ptr;
	(void)arg;
	return size * nmemb;
}

static struct xfer *
xfer_get(struct deliver *d)
{
	struct xfer *x = d->xfer_free;
	CURL *e;

	if (x != NULL) {
		d->xfer_free = x->x_next;
		return x;
	}
	if ((x = calloc(1, sizeof(*x))) == NULL)
		return NULL;
	if ((e = curl_easy_init()) == NULL) {
		free(x);
		return NULL;
	}
	x->x_easy = e;
	x->x_d = d;
	/* Everything that is the same for every delivery is set once here. */
	curl_easy_setopt(e, CURLOPT_PRIVATE, x);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->x_err);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	/*
	 * No proxy, not even one from http_proxy and the like: through a proxy
	 * on_open would judge the proxy's address, not the subscriber's.
	 */
	curl_easy_setopt(e, CURLOPT_PROXY, "");
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(e, CURLOPT_USERAGENT, d->user_agent);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
	    d->cfg->connect_timeout * 1000L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, d->cfg->delivery_timeout * 1000L);
	curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard_body);
	/* libcurl's defaults, spelt out: https:// subscribers are verified. */
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, d->cfg->tls_verify ? 1L : 0L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, d->cfg->tls_verify ? 2L : 0L);
	if (d->cfg->ca_file[0] != '\0') {
		/* The file replaces the system's CAs rather than adding to them. */
		curl_easy_setopt(e, CURLOPT_CAINFO, d->cfg->ca_file);
		curl_easy_setopt(e, CURLOPT_CAPATH, NULL);
	}
	if (d->resolve != NULL)
		curl_easy_setopt(e, CURLOPT_RESOLVE, d->resolve);
	curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, on_open);
	curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, x);
	curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, on_prereq);
	curl_easy_setopt(e, CURLOPT_PREREQDATA, x);
	curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, on_close);
	curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, d);
	return x;
}

static void
xfer_unlink(struct deliver *d, struct xfer *x)
{
	if (x == d->active_young)
		d->active_young = x->x_next;
	if (x->x_prev != NULL)
		x->x_prev->x_next = x->x_next;
	else
		d->active_head = x->x_next;
	if (x->x_next != NULL)
		x->x_next->x_prev = x->x_prev;
	else
		d->active_tail = x->x_prev;
	if (!x->x_slow)
		d->fast--;
	d->in_flight--;
	atomic_store_explicit(&d->flying, d->in_flight, memory_order_relaxed);
}

static void
xfer_put(struct deliver *d, struct xfer *x)
{
	x->x_target = NULL;
	x->x_msg = NULL;
	x->x_next = d->xfer_free;
	d->xfer_free = x;
}

static void
xfer_free_all(struct deliver *d)
{
	struct xfer *x, *next;

	for (x = d->xfer_free; x != NULL; x = next) {
		next = x->x_next;
		curl_easy_cleanup(x->x_easy);
		free(x);
	}
	d->xfer_free = NULL;
}

/*
 * This attempt's webhook-timestamp and, when a secret applies, its
 * webhook-signature (Standard Webhooks: over id.timestamp.body), put in
 * front of the message's own headers without copying them: curl_slist is a
 * public struct, and X holds the two nodes until the transfer is done.
 * The signature is kept with the message: its other subscribers in the
 * same second get it without another HMAC.
 */
static int
attempt_headers(struct deliver *d, struct target *t, struct xfer *x,
    struct msg *m)
{
	char la[LOG_VALUE_MAX];
	struct curl_slist *rest = (struct curl_slist *)(uintptr_t)
	    msg_headers(m);
	int64_t ts = clock_real_ms() / 1000;
	char sig[SIGN_VALUE_MAX];
	const char *kept;
	struct signer *sg;

	sg = t->t_signer != NULL ? t->t_signer : d->signer;

	snprintf(x->x_stamp, sizeof(x->x_stamp), "webhook-timestamp: %lld",
	    (long long)ts);
	x->x_hdr[0].data = x->x_stamp;
	x->x_hdr[0].next = rest;
	if (sg == NULL)
		return 0;
	if ((kept = msg_sig(m, signer_key(sg), ts)) == NULL) {
		if (signer_sign(sg, msg_id(m), ts, msg_body(m), msg_len(m),
		    sig) == -1) {
			log_error("cannot sign delivery", "address=%s "
			    "message=%s",
			    log_value(la, sizeof(la), sub_address(t->t_sub)),
			    msg_id(m));
			return -1;
		}
		msg_keep_sig(m, signer_key(sg), ts, sig);
		kept = sig;
	}
	snprintf(x->x_sig, sizeof(x->x_sig), "webhook-signature: %s", kept);
	x->x_hdr[0].next = &x->x_hdr[1];
	x->x_hdr[1].data = x->x_sig;
	x->x_hdr[1].next = rest;
	return 0;
}

/*
 * Starts one delivery for T: its first retry when KIND is 1, else its
 * FIFO's head.  -1 if it cannot (nothing is lost: T keeps its work).
 */
static int
xfer_start(struct deliver *d, struct target *t, int kind)
{
	char la[LOG_VALUE_MAX];
	struct retry r = { 0 };
	struct xfer *x;
	struct msg *m;
	CURL *e;

	if (kind == 1) {
		m = t->t_retries[0].r_msg;
		if (m == NULL &&
		    (m = store_read_msg(d->reader, t->t_retries[0].r_seq)) ==
		    NULL) {
			log_error("retry without its message dropped",
			    "address=%s seq=%llu",
			    log_value(la, sizeof(la), sub_address(t->t_sub)),
			    (unsigned long long)t->t_retries[0].r_seq);
			retry_take(t, &r);
			store_retry_done(d->store, t->t_id, r.r_seq);
			return 0;
		}
		t->t_retries[0].r_msg = m;
	} else
		m = t->t_ring[t->t_head];
	if ((x = xfer_get(d)) == NULL)
		return -1;
	e = x->x_easy;
	x->x_err[0] = '\0';
	x->x_denied[0] = '\0';
	if (attempt_headers(d, t, x, m) == -1) {
		xfer_put(d, x);
		return -1;
	}
	curl_easy_setopt(e, CURLOPT_CURLU, sub_url(t->t_sub));
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->x_hdr);
	curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)msg_len(m));
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, msg_body(m));
	x->x_target = t;	/* before libcurl can call on_open */
	if (curl_multi_add_handle(d->multi, e) != CURLM_OK) {
		xfer_put(d, x);
		return -1;
	}
	if (kind == 1) {
		retry_take(t, &r);
		x->x_msg = r.r_msg;	/* the retry's reference moves here */
		x->x_retry = 1;
		x->x_attempts = r.r_attempts;
		x->x_first = r.r_first;
	} else {
		x->x_msg = target_shift(d, t);	/* so does the FIFO's */
		x->x_retry = 0;
		x->x_attempts = 0;
		x->x_first = 0;
	}
	x->x_start = d->now;
	x->x_slow = 0;
	x->x_next = NULL;
	x->x_prev = d->active_tail;
	if (x->x_prev != NULL)
		x->x_prev->x_next = x;
	else
		d->active_head = x;
	d->active_tail = x;
	if (d->active_young == NULL)
		d->active_young = x;
	t->t_in_flight++;
	d->in_flight++;
	atomic_store_explicit(&d->flying, d->in_flight, memory_order_relaxed);
	d->fast++;
	atomic_store(&sub_counters(t->t_sub)->in_flight,
	    (uint_fast64_t)t->t_in_flight);
	target_count(d, t);
	return 0;
}

/*
 * A transfer in flight for SLOW_MS stops counting against max_transfers:
 * a subscriber that hangs, however many of them, then holds only its own
 * max_in_flight slots.  (The descriptor budget still bounds the total.)
 */
#define SLOW_MS	1000

static void
age_transfers(struct deliver *d)
{
	struct xfer *x;

	while ((x = d->active_young) != NULL && d->now - x->x_start >= SLOW_MS) {
		x->x_slow = 1;
		d->fast--;
		d->active_young = x->x_next;
	}
}

/* Starts transfers round-robin over the ready targets while slots are free. */
static void
dispatch(struct deliver *d)
{
	struct target *t, *again = NULL;
	int kind;

	age_transfers(d);
	while (d->fast < d->cfg->max_transfers && d->in_flight < d->max_open &&
	    (t = ready_pop(d)) != NULL) {
		if (t->t_removed) {
			target_release(d, t);
			continue;
		}
		if ((kind = target_next(d, t)) == 3) {
			uint64_t from = t->t_next;

			target_refill(d, t);
			kind = target_next(d, t);
			/* Read past other topics' messages only: on at once. */
			if (kind == 3 && t->t_next > from) {
				t->t_ready_next = again;
				again = t;
				continue;
			}
		}
		/* 3 still: a read error, which the tick tries again. */
		if (kind == 0 || kind == 3)
			continue;
		if (xfer_start(d, t, kind) == -1) {
			/* Out of memory or handles: try again on the next round. */
			ready_push(d, t);
			break;
		}
		ready_push(d, t);
	}
	for (d->rescan = again != NULL; (t = again) != NULL; ) {
		again = t->t_ready_next;
		ready_push(d, t);
	}
}

static void
note_failure(struct target *t, const struct msg *m, long status,
    CURLcode rc, const char *detail, char err[SUB_ERRLEN])
{
	char la[LOG_VALUE_MAX], lv[LOG_VALUE_MAX];

	if (status != 0 && rc == CURLE_OK)
		snprintf(err, SUB_ERRLEN, "HTTP %ld", status);
	else
		snprintf(err, SUB_ERRLEN, "%.159s", *detail ? detail :
		    curl_easy_strerror(rc));
	atomic_fetch_add(&sub_counters(t->t_sub)->failed, 1);
	sub_set_error(t->t_sub, err);

	if (!ratelog_allow(&t->t_fail_log))
		return;
	log_warnx("delivery failed", "address=%s message=%s status=%ld "
	    "error=%s suppressed=%lu",
	    log_value(la, sizeof(la), sub_address(t->t_sub)), msg_id(m), status,
	    log_value(lv, sizeof(lv), err), t->t_fail_log.rl_quiet);
	t->t_fail_log.rl_quiet = 0;
}

/* One success makes a failing subscriber active, its retries due at once. */
static void
target_recovered(struct deliver *d, struct target *t)
{
	char la[LOG_VALUE_MAX];

	t->t_fails = 0;
	if (t->t_state != SUB_FAILING)
		return;
	t->t_state = SUB_ACTIVE;
	sub_set_state(t->t_sub, SUB_ACTIVE);
	for (size_t i = 0; i < t->t_nretries; i++)
		t->t_retries[i].r_due = d->now;
	log_info("subscriber recovered", "address=%s",
	    log_value(la, sizeof(la), sub_address(t->t_sub)));
}

/*
 * A failing subscriber whose probe has used up the schedule: everything it
 * has pending becomes a dead letter, and it starts afresh with new messages.
 */
static void
target_give_up(struct deliver *d, struct target *t, int64_t real)
{
	char la[LOG_VALUE_MAX];
	uint64_t lo = target_unsent(d, t);
	size_t n = t->t_nretries;

	for (size_t i = 0; i < t->t_nretries; i++) {
		struct retry *r = &t->t_retries[i];
		struct store_attempt a = { .sub_id = t->t_id, .seq = r->r_seq,
		    .attempts = r->r_attempts, .first_at = r->r_first,
		    .last_at = real };

		sub_get_error(t->t_sub, a.error);
		store_dead(d->store, &a, sub_address(t->t_sub),
		    "retries exhausted");
	}
	retries_clear(t);
	if (lo <= d->last_seq)
		target_dead_range(d, t, lo, "retries exhausted");
	target_clear(d, t);
	t->t_stored = 0;
	log_warnx("subscriber failed for its whole retry schedule: its pending "
	    "messages are dead letters", "address=%s retries=%zu "
	    "unsent=%llu", log_value(la, sizeof(la), sub_address(t->t_sub)),
	    n, (unsigned long long)(d->last_seq + 1 - lo));
	t->t_fails = 0;
	t->t_state = SUB_ACTIVE;
	sub_set_state(t->t_sub, SUB_ACTIVE);
}

/* When to try again after a failed attempt; -1: never (a dead letter). */
static long
next_delay(struct deliver *d, CURL *e, long status, int attempt, int64_t real)
{
	struct curl_header *h;

	if ((status == 429 || status == 503) && curl_easy_header(e,
	    "Retry-After", 0, CURLH_HEADER, -1, &h) == CURLHE_OK) {
		long ms = retry_after_ms(h->value, real);

		if (ms >= 0)
			return attempt > d->cfg->retry_count ? -1 : ms;
	}
	return retry_delay_ms(d->cfg, attempt, &d->rng);
}

static void
xfer_failed(struct deliver *d, struct xfer *x, CURL *e, long status,
    CURLcode rc)
{
	char la[LOG_VALUE_MAX];
	struct target *t = x->x_target;
	int64_t real = clock_real_ms();
	struct store_attempt a = { .sub_id = t->t_id, .seq = msg_seq(x->x_msg),
	    .attempts = x->x_attempts + 1, .first_at = x->x_first ? x->x_first :
	    real, .last_at = real, .status = rc == CURLE_OK ? status : 0 };
	const char *detail = x->x_err;
	char denied[SUB_ERRLEN];
	long delay;

	/* Refused by on_open: the policy's reason says more than libcurl's. */
	if ((rc == CURLE_COULDNT_CONNECT || rc == CURLE_ABORTED_BY_CALLBACK) &&
	    x->x_denied[0] != '\0') {
		snprintf(denied, sizeof(denied), "egress denied: %s",
		    x->x_denied);
		detail = denied;
	}
	note_failure(t, x->x_msg, status, rc, detail, a.error);
	t->t_fails++;
	if (status == 410 && rc == CURLE_OK && !t->t_removed && !t->t_gone) {
		log_warnx("subscriber answered 410 Gone: deregistered",
		    "address=%s",
		    log_value(la, sizeof(la), sub_address(t->t_sub)));
		/* Nothing more is sent; the store dead-letters what is pending. */
		t->t_gone = 1;
		subs_remove_sub(d->subs, t->t_sub, SUB_GONE);
	}
	delay = next_delay(d, e, status, a.attempts, real);
	if (delay < 0 && !t->t_removed) {
		store_dead(d->store, &a, sub_address(t->t_sub),
		    "retries exhausted");
		log_warnx("delivery gave up: dead letter", "address=%s "
		    "message=%s attempts=%d",
		    log_value(la, sizeof(la), sub_address(t->t_sub)),
		    msg_id(x->x_msg), a.attempts);
		if (t->t_state == SUB_FAILING)
			target_give_up(d, t, real);
		return;
	}
	if (delay < 0)
		delay = 0;
	/* Saved even for a removed subscriber: the store dead-letters its retries. */
	a.next_at = real + delay;
	store_retry(d->store, &a);
	if (!t->t_removed && !t->t_gone) {
		struct retry r = { .r_seq = a.seq, .r_msg = msg_ref(x->x_msg),
		    .r_attempts = a.attempts, .r_due = d->now + delay,
		    .r_first = a.first_at };

		retry_insert(d, t, &r);
		metrics_retry();
	}
	if (t->t_state == SUB_ACTIVE && t->t_fails >= d->cfg->failure_threshold &&
	    !t->t_removed) {
		t->t_state = SUB_FAILING;
		sub_set_state(t->t_sub, SUB_FAILING);
		target_spill(d, t);
		log_warnx("subscriber failing: only retry probes until it "
		    "answers", "address=%s consecutive_failures=%d",
		    log_value(la, sizeof(la), sub_address(t->t_sub)),
		    t->t_fails);
	}
}

/*
 * How an attempt ended, for hookcast_deliveries_total.  A timeout is
 * libcurl's (connect_timeout or delivery_timeout); refused is a connection
 * the peer refused (ECONNREFUSED: nothing listens there) or on_open did
 * (the egress policy); anything else that is not a 2xx answer failed.
 */
static enum metrics_result
attempt_result(CURL *e, const struct xfer *x, long status, CURLcode rc)
{
	long err = 0;

	if (rc == CURLE_OK)
		return status >= 200 && status < 300 ? METRICS_OK :
		    METRICS_FAILED;
	if (rc == CURLE_OPERATION_TIMEDOUT)
		return METRICS_TIMEOUT;
	if (rc == CURLE_COULDNT_CONNECT && (x->x_denied[0] != '\0' ||
	    (curl_easy_getinfo(e, CURLINFO_OS_ERRNO, &err) == CURLE_OK &&
	    err == ECONNREFUSED)))
		return METRICS_REFUSED;
	return METRICS_FAILED;
}

static void
xfer_done(struct deliver *d, CURL *e, CURLcode rc)
{
	enum metrics_result result;
	char la[LOG_VALUE_MAX];
	struct xfer *x = NULL;
	struct target *t;
	curl_off_t us = 0;
	long status = 0;

	curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&x);
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_getinfo(e, CURLINFO_TOTAL_TIME_T, &us);
	result = attempt_result(e, x, status, rc);
	metrics_delivery(result, (int64_t)us);
	curl_multi_remove_handle(d->multi, e);
	xfer_unlink(d, x);
	t = x->x_target;

	if (result == METRICS_OK) {
		metrics_delivered_after(clock_real_ms() - msg_created(x->x_msg));
		atomic_fetch_add(&sub_counters(t->t_sub)->delivered, 1);
		/* Every delivery passes here: no formatting unless shown. */
		if (log_enabled(LOG_DEBUG))
			log_debug("delivered", "address=%s message=%s "
			    "status=%ld",
			    log_value(la, sizeof(la), sub_address(t->t_sub)),
			    msg_id(x->x_msg), status);
		if (x->x_retry)
			store_retry_done(d->store, t->t_id, msg_seq(x->x_msg));
		target_recovered(d, t);
	} else
		xfer_failed(d, x, e, status, rc);

	msg_unref(x->x_msg);
	xfer_put(d, x);
	t->t_in_flight--;
	atomic_store(&sub_counters(t->t_sub)->in_flight,
	    (uint_fast64_t)t->t_in_flight);
	target_count(d, t);
	if (t->t_removed)
		target_release(d, t);
	else
		ready_push(d, t);
}

static void
reap_done(struct deliver *d)
{
	struct { CURL *e; CURLcode rc; } done[64];
	struct CURLMsg *cm;
	int left, n;

	/*
	 * Take the messages before removing their handles: in libcurl 7.88
	 * curl_multi_remove_handle() walks the messages still unread, which
	 * made a large batch of completions cost the square of its size.
	 */
	do {
		n = 0;
		while (n < (int)(sizeof(done) / sizeof(done[0])) &&
		    (cm = curl_multi_info_read(d->multi, &left)) != NULL)
			if (cm->msg == CURLMSG_DONE) {
				done[n].e = cm->easy_handle;
				done[n++].rc = cm->data.result;
			}
		for (int i = 0; i < n; i++)
			xfer_done(d, done[i].e, done[i].rc);
	} while (n > 0);
}

/*
 * Saves each subscriber's cursor: the first message not yet done, which is
 * the lowest of its deliveries in flight (not counting retries, which the
 * store keeps on their own) and what it has not started.
 */
static void
save_progress(struct deliver *d)
{
	struct xfer *x;

	for (size_t i = 0; i < d->ntargets; i++)
		d->targets[i]->t_low = target_unsent(d, d->targets[i]);
	for (x = d->active_head; x != NULL; x = x->x_next)
		if (!x->x_retry && !x->x_target->t_removed &&
		    msg_seq(x->x_msg) < x->x_target->t_low)
			x->x_target->t_low = msg_seq(x->x_msg);
	for (size_t i = 0; i < d->ntargets; i++) {
		struct target *t = d->targets[i];

		if (t->t_low > t->t_saved && t->t_id != 0) {
			store_progress(d->store, t->t_id, t->t_low);
			t->t_saved = t->t_low;
		}
	}
}

/* Every TICK_MS: retries that came due, and now and then the cursors. */
static void
tick(struct deliver *d)
{
	if (d->now < d->next_tick)
		return;
	d->next_tick = d->now + TICK_MS;
	for (size_t i = 0; i < d->ntargets; i++) {
		struct target *t = d->targets[i];

		/* A failing target whose probe is gone (dropped) would wait forever. */
		if (t->t_state == SUB_FAILING && t->t_nretries == 0 &&
		    t->t_in_flight == 0) {
			t->t_state = SUB_ACTIVE;
			t->t_fails = 0;
			sub_set_state(t->t_sub, SUB_ACTIVE);
		}
		if (t->t_nretries > 0 || t->t_stored)
			ready_push(d, t);
		target_count(d, t);
	}
	if (d->now >= d->next_progress) {
		d->next_progress = d->now + PROGRESS_MS;
		save_progress(d);
	}
}

/*
 * Aborts every transfer in flight and empties every FIFO: they stay in the
 * store (the cursors were saved first) and are sent again after a restart.
 */
static void
abandon_all(struct deliver *d)
{
	long flying = d->in_flight;
	struct xfer *x;

	while ((x = d->active_head) != NULL) {
		struct target *t = x->x_target;

		curl_multi_remove_handle(d->multi, x->x_easy);
		xfer_unlink(d, x);
		msg_unref(x->x_msg);
		xfer_put(d, x);
		t->t_in_flight--;
		target_release(d, t);
	}
	for (size_t i = 0; i < d->ntargets; i++)
		target_clear(d, d->targets[i]);
	if (flying > 0)
		log_warnx("shutdown grace period over: deliveries in flight "
		    "abandoned (kept in the store)", "in_flight=%ld", flying);
}

/* With nothing in flight: frees every target, live or waiting to be freed. */
static void
release_all(struct deliver *d)
{
	struct target *t;

	while ((t = ready_pop(d)) != NULL)
		if (t->t_removed)
			target_release(d, t);
	while (d->ntargets > 0) {
		t = d->targets[0];
		targets_remove(d, t);
		target_clear(d, t);
		t->t_id = 0;	/* still registered: the store keeps it */
		t->t_removed = 1;
		target_release(d, t);
	}
}

static int
on_timer(CURLM *multi, long timeout_ms, void *arg)
{
	struct deliver *d = arg;

	(void)multi;
	d->timer = timeout_ms < 0 ? -1 : clock_mono_ms() + timeout_ms;
	return 0;
}

/* How long epoll may sleep: until libcurl's timer, at most MAX_MS. */
static int
wait_ms(const struct deliver *d, int64_t now, int max_ms)
{
	if (d->timer < 0)
		return max_ms;
	if (d->timer <= now)
		return 0;
	return d->timer - now < max_ms ? (int)(d->timer - now) : max_ms;
}

#define EVENTS_MAX	256

static void *
deliver_loop(void *arg)
{
	struct deliver *d = arg;
	struct epoll_event ev[EVENTS_MAX];
	int running, n, limit;
	int64_t now;
	uint64_t count;

	for (;;) {
		notify_watchdog();
		d->now = clock_mono_ms();
		/* Each round is proof of life: every TICK_MS at least, when idle. */
		atomic_store_explicit(&d->beat, d->now, memory_order_relaxed);
		drain_inbox(d);
		/* Stopping: nothing new starts; what is queued stays stored. */
		if (atomic_load(&d->stopping)) {
			if (d->in_flight == 0 ||
			    d->now >= atomic_load(&d->deadline)) {
				save_progress(d);
				abandon_all(d);
				break;
			}
		} else {
			tick(d);
			dispatch(d);
		}
		now = clock_mono_ms();
		limit = atomic_load(&d->stopping) ? 100 : d->rescan ? 0 :
		    TICK_MS;
		/* Work waits for slots: wake when the oldest transfer turns slow. */
		if (d->ready_head != NULL && d->active_young != NULL &&
		    d->fast >= d->cfg->max_transfers) {
			int64_t until = d->active_young->x_start + SLOW_MS - now;

			limit = until > 0 ? (int)until : 0;
		}
		if (limit > d->max_sleep)
			limit = d->max_sleep;
		n = epoll_wait(d->epfd, ev, EVENTS_MAX, wait_ms(d, now, limit));
		for (int i = 0; i < n; i++) {
			int fd = ev[i].data.fd, mask = 0;

			if (fd == d->wakefd) {
				if (read(d->wakefd, &count, sizeof(count)) < 0)
					continue;
				continue;
			}
			if (!fd_slot(d, fd)->fs_want) {
				/* An idle connection closed or spoke: stop watching. */
				epoll_ctl(d->epfd, EPOLL_CTL_DEL, fd, NULL);
				fd_slot(d, fd)->fs_events = 0;
				continue;
			}
			if (ev[i].events & EPOLLIN)
				mask |= CURL_CSELECT_IN;
			if (ev[i].events & EPOLLOUT)
				mask |= CURL_CSELECT_OUT;
			if (ev[i].events & (EPOLLERR | EPOLLHUP))
				mask |= CURL_CSELECT_ERR;
			curl_multi_socket_action(d->multi, fd, mask, &running);
		}
		if (d->timer >= 0 && d->timer <= clock_mono_ms()) {
			d->timer = -1;
			curl_multi_socket_action(d->multi, CURL_SOCKET_TIMEOUT,
			    0, &running);
		}
		reap_done(d);
	}
	return NULL;
}

/* ---- start and stop --------------------------------------------------- */

static void
deliver_free(struct deliver *d)
{
	struct cmd *c, *next;

	if (d == NULL)
		return;
	/* Commands nobody will act on: publishes and replays own memory. */
	for (c = d->inbox_head; c != NULL; c = next) {
		next = c->next;
		if (c->type == CMD_PUBLISH) {
			msg_unref(c->arg);
			free(c);
		} else if (c->type == CMD_UPDATE) {
			update_free(c->arg);
		} else if (c->type == CMD_REPLAY) {
			free(c->arg);
			free(c);
		} else if (c->type == CMD_CONFIG) {
			config_release(c->arg);
			free(c);
		}
	}
	release_all(d);
	free(d->targets);
	free(d->every);
	free(d->route.v);
	topic_index_free(d->index);
	signer_free(d->signer);
	xfer_free_all(d);
	curl_multi_cleanup(d->multi);
	curl_slist_free_all(d->resolve);
	config_release(d->cfg_ref);
	free(d->slots);
	if (d->epfd >= 0)
		close(d->epfd);
	if (d->wakefd >= 0)
		close(d->wakefd);
	store_reader_close(d->reader);
	pthread_mutex_destroy(&d->inbox_lock);
	free(d);
}

/*
 * For tests only, and on purpose no configuration key or flag:
 * HOOKCAST_TEST_RESOLVE holds CURLOPT_RESOLVE entries, blank-separated
 * ("api.localhost:80:[::a9fe:a9fe] x.localhost:8080:127.0.0.2"), so that
 * the integration tests can have a name resolve to any address with no DNS
 * and no change to /etc/hosts.  It decides what a name resolves to and no
 * more: on_open judges each of those addresses as it judges what DNS says.
 * libcurl keeps the entries in the multi handle's DNS cache for good.
 */
static int
test_resolve(struct deliver *d)
{
	const char *env = getenv("HOOKCAST_TEST_RESOLVE"), *p;
	char entry[256], lv[LOG_VALUE_MAX];
	struct curl_slist *l;
	size_t len;

	if (env == NULL || *env == '\0')
		return 0;
	for (p = env; *(p += strspn(p, " \t")) != '\0'; p += len) {
		len = strcspn(p, " \t");
		if (len >= sizeof(entry)) {
			log_error("cannot start delivery", "reason=\""
			    "HOOKCAST_TEST_RESOLVE: an entry is too long\"");
			return -1;
		}
		memcpy(entry, p, len);
		entry[len] = '\0';
		if ((l = curl_slist_append(d->resolve, entry)) == NULL) {
			log_error("cannot start delivery", "reason=nomem");
			return -1;
		}
		d->resolve = l;
	}
	log_warnx("HOOKCAST_TEST_RESOLVE is set: names resolve as it says "
	    "(for tests only)", "resolve=%s", log_value(lv, sizeof(lv), env));
	return 0;
}

int
deliver_check(const struct config *cfg, char err[CONFIG_ERRLEN])
{
	int fd, e;

	/* Unreadable, it would fail every https delivery: say so now. */
	if (cfg->ca_file[0] == '\0')
		return 0;
	if ((fd = open(cfg->ca_file, O_RDONLY | O_CLOEXEC)) == -1) {
		e = errno;
		snprintf(err, CONFIG_ERRLEN, "ca_file %.160s: %s", cfg->ca_file,
		    strerror(e));
		errno = e;
		return -1;
	}
	close(fd);
	return 0;
}

void
deliver_reload(struct deliver *d, const struct config *cfg)
{
	struct cmd *c;

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		log_error("reload not applied to deliveries", "reason=nomem");
		return;
	}
	c->type = CMD_CONFIG;
	c->arg = (void *)(uintptr_t)config_hold(cfg);
	inbox_push(d, c);
	deliver_wake(d);
}

struct deliver *
deliver_start(const struct config *cfg, struct store *st, struct subs *subs,
    uint64_t last_seq)
{
	char err[CONFIG_ERRLEN], lp[LOG_VALUE_MAX];
	struct deliver *d;
	struct rlimit rl;
	uint64_t wd;
	int rc;

	if (deliver_check(cfg, err) == -1) {
		log_error("cannot read ca_file", "ca_file=%s error=\"%s\"",
		    log_value(lp, sizeof(lp), cfg->ca_file), strerror(errno));
		return NULL;
	}
	if (!cfg->tls_verify)
		log_warnx("tls_verify is off: deliveries to https:// "
		    "subscribers accept any certificate", "tls_verify=no");
	if ((d = calloc(1, sizeof(*d))) == NULL) {
		log_error("cannot start delivery", "reason=nomem");
		return NULL;
	}
	d->cfg = cfg;
	d->store = st;
	d->subs = subs;
	d->last_seq = last_seq;
	d->rng = retry_seed();
	d->epfd = d->wakefd = -1;
	d->inbox_tail = &d->inbox_head;
	pthread_mutex_init(&d->inbox_lock, NULL);
	snprintf(d->user_agent, sizeof(d->user_agent), "hookcast/%s",
	    HOOKCAST_VERSION);
	if ((d->multi = curl_multi_init()) == NULL) {
		log_error("cannot start delivery", "reason=\"curl_multi_init "
		    "failed\"");
		deliver_free(d);
		return NULL;
	}
	if (test_resolve(d) == -1) {
		deliver_free(d);
		return NULL;
	}
	d->timer = -1;
	/* Idle, the loop still turns four times a watchdog interval. */
	d->max_sleep = INT_MAX;
	if ((wd = notify_watchdog_usec() / 4000) < INT_MAX &&
	    notify_watchdog_usec() > 0)
		d->max_sleep = wd > 0 ? (int)wd : 1;
	if ((d->index = topic_index_new()) == NULL) {
		log_error("cannot start delivery", "reason=nomem");
		deliver_free(d);
		return NULL;
	}
	if (*cfg->signing_secret != '\0' &&
	    (d->signer = signer_new(cfg->signing_secret)) == NULL) {
		log_error("cannot start delivery", "reason=\"signing_secret "
		    "refused by libcrypto\"");
		deliver_free(d);
		return NULL;
	}
	if ((d->reader = store_reader_open(st)) == NULL) {
		deliver_free(d);
		return NULL;
	}
	if ((d->epfd = epoll_create1(EPOLL_CLOEXEC)) == -1 ||
	    (d->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1 ||
	    epoll_ctl(d->epfd, EPOLL_CTL_ADD, d->wakefd, &(struct epoll_event){
	    .events = EPOLLIN, .data.fd = d->wakefd }) == -1) {
		log_warn("cannot start delivery", NULL);
		deliver_free(d);
		return NULL;
	}
	curl_multi_setopt(d->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
	curl_multi_setopt(d->multi, CURLMOPT_SOCKETDATA, d);
	curl_multi_setopt(d->multi, CURLMOPT_TIMERFUNCTION, on_timer);
	curl_multi_setopt(d->multi, CURLMOPT_TIMERDATA, d);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		d->max_open = (long)rl.rlim_cur - cfg->max_connections - 64;
	else
		d->max_open = LONG_MAX;
	if (d->max_open < cfg->max_transfers)
		d->max_open = cfg->max_transfers;
	size_conn_cache(d);
	atomic_store(&d->beat, clock_mono_ms());
	if ((rc = pthread_create(&d->thread, NULL, deliver_loop, d)) != 0) {
		log_error("cannot start delivery", "error=\"%s\"",
		    strerror(rc));
		deliver_free(d);
		return NULL;
	}
	return d;
}

int64_t
deliver_heartbeat(const struct deliver *d)
{
	return atomic_load_explicit(&((struct deliver *)(uintptr_t)d)->beat,
	    memory_order_relaxed);
}

long
deliver_in_flight(const struct deliver *d)
{
	return atomic_load_explicit(&((struct deliver *)(uintptr_t)d)->flying,
	    memory_order_relaxed);
}

void
deliver_stop(struct deliver *d, long grace_ms)
{
	if (d == NULL)
		return;
	atomic_store(&d->deadline, clock_mono_ms() + grace_ms);
	atomic_store(&d->stopping, true);
	wake_thread(d);
	pthread_join(d->thread, NULL);
	drain_inbox(d);
	deliver_free(d);
}

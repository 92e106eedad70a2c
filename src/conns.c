/*
 * conns.c: the front end's open connections: deadlines for slow clients, and
 * room at the limit.
 *
 * DESIGN
 * libmicrohttpd 0.9.75 closes a connection only when it has been silent for
 * client_timeout; a client that sends a byte of its headers every few
 * seconds keeps its connection for ever, and enough of them fill
 * max_connections.  It has no header or body deadline of its own, so this
 * table keeps one for each connection, the way nginx's
 * client_header_timeout and Apache's mod_reqtimeout do:
 *
 *   headers  due header_timeout after the connection is accepted (TLS
 *            handshake included) or, on a kept-alive connection, after its
 *            next request line has arrived;
 *   idle     a kept-alive connection's next request line is due
 *            client_timeout after the previous answer, however it trickles;
 *   body     due body_timeout after the headers, plus one second for every
 *            body_min_rate bytes received: a body slower than that on
 *            average is cut, a large one at a fair pace is not;
 *   answering  (the request is complete, waits on the store or is being
 *            sent) has no deadline here: that is hookcast's own time.
 *
 * api.c reports each step from libmicrohttpd's callbacks (connection
 * notifier, URI logger, handler, completion), all on the connection's own
 * thread.  A ticker (ticker.c) calls conns_sweep(), which cuts what is late
 * with shutdown(2): the connection's thread then reads end-of-file and
 * closes it the ordinary way, so nothing of libmicrohttpd's is touched from
 * another thread.  Such a cut closes without an answer, as nginx does.
 *
 * At max_connections, libmicrohttpd's accept policy asks conns_admit()
 * whether a new connection may come in: room is made by cutting the oldest
 * request whose headers (failing that, whose body) are still arriving.  A
 * probe or a publisher is answered in milliseconds, so under a slow-client
 * flood it is never the oldest, while a trickling client is always cut
 * before it; a connection that is idle between requests or being answered
 * is never cut to make room, so a publisher holding one keeps it.
 *
 * Locking: cs_lock guards the list, c_cut and the counts; it is held by
 * conns_open, conns_close, conns_admit and conns_sweep, and never while
 * another lock is taken.  Because libmicrohttpd calls the connection
 * notifier's "closed" (conns_close) before it closes the socket, a
 * shutdown(2) made under cs_lock always reaches the right socket.  A
 * connection's phase and its start are one atomic word, so the sweeper
 * never pairs a new phase with an old start; the per-call path (the
 * handler) takes no lock.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "conns.h"
#include "log.h"
#include "metrics.h"

enum phase { PH_HEAD, PH_BODY, PH_BUSY, PH_IDLE };

struct conn {
	struct conn *c_next, *c_prev;
	int c_fd;
	int c_cut;		  /* shut down, not yet closed; cs_lock */
	_Atomic uint64_t c_state; /* start ms << 2 | phase */
	_Atomic uint64_t c_bytes; /* body bytes of this request */
};

struct conns {
	pthread_mutex_t cs_lock;
	struct conn *cs_head;
	long cs_max;
	long cs_open, cs_cut;	       /* cs_lock */
	struct conns_counts cs_counts; /* cs_lock */
	_Atomic int64_t cs_header_ms, cs_idle_ms, cs_body_ms;
	_Atomic uint64_t cs_body_rate;
};

static uint64_t
state(enum phase ph, int64_t now)
{
	return (uint64_t)now << 2 | (uint64_t)ph;
}

static enum phase
state_phase(uint64_t s)
{
	return (enum phase)(s & 3);
}

static int64_t
state_start(uint64_t s)
{
	return (int64_t)(s >> 2);
}

struct conns *
conns_new(long max, const struct conns_limits *lim)
{
	struct conns *cs;

	if ((cs = calloc(1, sizeof(*cs))) == NULL)
		return NULL;
	pthread_mutex_init(&cs->cs_lock, NULL);
	cs->cs_max = max;
	conns_set_limits(cs, lim);
	return cs;
}

void
conns_free(struct conns *cs)
{
	struct conn *c, *next;

	if (cs == NULL)
		return;
	for (c = cs->cs_head; c != NULL; c = next) {
		next = c->c_next;
		free(c);
	}
	pthread_mutex_destroy(&cs->cs_lock);
	free(cs);
}

void
conns_set_limits(struct conns *cs, const struct conns_limits *lim)
{
	atomic_store(&cs->cs_header_ms, lim->cl_header_ms);
	atomic_store(&cs->cs_idle_ms, lim->cl_idle_ms);
	atomic_store(&cs->cs_body_ms, lim->cl_body_ms);
	atomic_store(&cs->cs_body_rate,
	    lim->cl_body_rate > 0 ? (uint64_t)lim->cl_body_rate : 1);
}

/* When C's current phase ends, INT64_MAX for none. */
static int64_t
deadline(const struct conns *cs, const struct conn *c)
{
	uint64_t s = atomic_load(&c->c_state), bytes;
	int64_t start = state_start(s);

	switch (state_phase(s)) {
	case PH_HEAD:
		return start + atomic_load(&cs->cs_header_ms);
	case PH_IDLE:
		return start + atomic_load(&cs->cs_idle_ms);
	case PH_BODY:
		bytes = atomic_load(&c->c_bytes) /
		    atomic_load(&cs->cs_body_rate);
		if (bytes > (uint64_t)INT64_MAX / 2000)
			return INT64_MAX;
		return start + atomic_load(&cs->cs_body_ms) +
		    (int64_t)bytes * 1000;
	case PH_BUSY:
		break;
	}
	return INT64_MAX;
}

/* Shuts C's socket down, so that its own thread closes it.  Under cs_lock. */
static void
cut(struct conns *cs, struct conn *c)
{
	/* ENOTCONN: the client is gone already; its thread will see it. */
	if (shutdown(c->c_fd, SHUT_RDWR) == -1 && errno != ENOTCONN)
		log_warn("cannot cut a slow connection", "fd=%d", c->c_fd);
	c->c_cut = 1;
	cs->cs_cut++;
}

int
conns_admit(struct conns *cs, int64_t now)
{
	struct conn *c, *oldest = NULL;
	enum phase ph, best = PH_BUSY;
	int64_t start, best_start = 0;
	int ok = 1;

	(void)now;
	pthread_mutex_lock(&cs->cs_lock);
	if (cs->cs_open - cs->cs_cut < cs->cs_max)
		goto out;
	ok = 0;
	if (cs->cs_open >= cs->cs_max + CONNS_SLACK)
		goto refuse;
	/* The oldest still sending headers; failing that, a body. */
	for (c = cs->cs_head; c != NULL; c = c->c_next) {
		uint64_t s = atomic_load(&c->c_state);

		if (c->c_cut)
			continue;
		ph = state_phase(s);
		start = state_start(s);
		if (ph != PH_HEAD && ph != PH_BODY)
			continue;
		if (oldest == NULL || ph < best ||
		    (ph == best && start < best_start)) {
			oldest = c;
			best = ph;
			best_start = start;
		}
	}
	if (oldest != NULL) {
		cut(cs, oldest);
		cs->cs_counts.cc_evicted++;
		metrics_conn_cut(METRICS_CUT_ROOM);
		ok = 1;
		goto out;
	}
refuse:
	cs->cs_counts.cc_refused++;
	metrics_conn_refused(0);
out:
	pthread_mutex_unlock(&cs->cs_lock);
	return ok;
}

struct conn *
conns_open(struct conns *cs, int fd, int64_t now)
{
	struct conn *c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->c_fd = fd;
	atomic_init(&c->c_state, state(PH_HEAD, now));
	pthread_mutex_lock(&cs->cs_lock);
	c->c_next = cs->cs_head;
	if (cs->cs_head != NULL)
		cs->cs_head->c_prev = c;
	cs->cs_head = c;
	cs->cs_open++;
	pthread_mutex_unlock(&cs->cs_lock);
	return c;
}

void
conns_close(struct conns *cs, struct conn *c)
{
	if (c == NULL)
		return;
	pthread_mutex_lock(&cs->cs_lock);
	if (c->c_prev != NULL)
		c->c_prev->c_next = c->c_next;
	else
		cs->cs_head = c->c_next;
	if (c->c_next != NULL)
		c->c_next->c_prev = c->c_prev;
	cs->cs_open--;
	if (c->c_cut)
		cs->cs_cut--;
	pthread_mutex_unlock(&cs->cs_lock);
	free(c);
}

void
conn_request_line(struct conn *c, int64_t now)
{
	/* The first request's headers stay due from the accept. */
	if (c != NULL && state_phase(atomic_load(&c->c_state)) != PH_HEAD)
		atomic_store(&c->c_state, state(PH_HEAD, now));
}

void
conn_handler_call(struct conn *c, size_t n, int64_t now)
{
	uint64_t s;

	if (c == NULL)
		return;
	s = atomic_load(&c->c_state);
	switch (state_phase(s)) {
	case PH_HEAD:
	case PH_IDLE:
		/* The first call: the headers are in; the body's clock starts. */
		atomic_store(&c->c_bytes, 0);
		atomic_store(&c->c_state, state(PH_BODY, now));
		break;
	case PH_BODY:
		if (n > 0)
			atomic_fetch_add(&c->c_bytes, n);
		else
			atomic_store(&c->c_state, state(PH_BUSY, now));
		break;
	case PH_BUSY:
		break;
	}
}

void
conn_answered(struct conn *c, int64_t now)
{
	if (c != NULL)
		atomic_store(&c->c_state, state(PH_IDLE, now));
}

int64_t
conns_sweep(struct conns *cs, int64_t now)
{
	int64_t next = now + 1000, d;
	struct conn *c;

	pthread_mutex_lock(&cs->cs_lock);
	for (c = cs->cs_head; c != NULL; c = c->c_next) {
		if (c->c_cut)
			continue;
		if ((d = deadline(cs, c)) > now) {
			if (d < next)
				next = d;
			continue;
		}
		switch (state_phase(atomic_load(&c->c_state))) {
		case PH_HEAD:
			cs->cs_counts.cc_header++;
			metrics_conn_cut(METRICS_CUT_HEADER);
			break;
		case PH_BODY:
			cs->cs_counts.cc_body++;
			metrics_conn_cut(METRICS_CUT_BODY);
			break;
		default:
			cs->cs_counts.cc_idle++;
			metrics_conn_cut(METRICS_CUT_IDLE);
			break;
		}
		cut(cs, c);
	}
	pthread_mutex_unlock(&cs->cs_lock);
	return next;
}

void
conns_refused_per_ip(struct conns *cs)
{
	metrics_conn_refused(1);
	pthread_mutex_lock(&cs->cs_lock);
	cs->cs_counts.cc_per_ip++;
	pthread_mutex_unlock(&cs->cs_lock);
}

void
conns_take_counts(struct conns *cs, struct conns_counts *out)
{
	pthread_mutex_lock(&cs->cs_lock);
	*out = cs->cs_counts;
	cs->cs_counts = (struct conns_counts){ 0 };
	pthread_mutex_unlock(&cs->cs_lock);
}

void
conns_census(struct conns *cs, long *open, long *cutting)
{
	pthread_mutex_lock(&cs->cs_lock);
	*open = cs->cs_open;
	*cutting = cs->cs_cut;
	pthread_mutex_unlock(&cs->cs_lock);
}

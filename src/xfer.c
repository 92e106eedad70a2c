/* xfer.c: transfers: the handle pool, headers, start and outcome. */
/*
 * Runs on the delivery thread only (see src/README.md and the DESIGN block
 * of deliver.c).  A transfer is one attempt to deliver one message to one
 * target, on an easy handle from a pool that is never shrunk.  Transfers
 * start round-robin over the ready targets while fewer than max_transfers
 * are in flight, not counting those in flight for over SLOW_MS: a
 * subscriber that hangs, however many of them, then holds only its own
 * max_in_flight slots (the descriptor budget still bounds the total).
 *
 * When a transfer ends, success makes a failing target active again; a
 * failure is saved in the store as a retry, due after the schedule's
 * jittered wait (or Retry-After), or becomes a dead letter once the
 * schedule is used up; failure_threshold failures in a row make the target
 * failing; 410 Gone removes the subscriber.
 *
 * Every connection libcurl opens goes through on_open() with the address
 * it is about to connect to: the egress policy is checked there, after
 * DNS, and a denial's reason is kept in the transfer until it fails.
 *
 * An https:// subscriber is offered HTTP/2 by ALPN (unless http2 is off);
 * where its server takes it, its transfers are streams of one connection,
 * at most max_in_flight of them like any transfers.  http:// subscribers
 * get HTTP/1.1 keep-alive, never h2c.  libcurl 7.88 mishandles an HTTP/2
 * server that answers before it has read the body (answered_h2): such an
 * answer counts when it ends in an error, and ends the transfer when it
 * turns slow; where libcurl failed before reading it, the message is sent
 * again, as after any failure.
 */
#include <assert.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <curl/curl.h>

#include "addr.h"
#include "clock.h"
#include "egress.h"
#include "evloop.h"
#include "log.h"
#include "metrics.h"
#include "retry.h"
#include "sign.h"
#include "store.h"
#include "target.h"
#include "xfer.h"

#define SIG_NAME "webhook-signature: "

struct xfer {
	struct xfer *x_next; /* free list, or the active list */
	struct xfer *x_prev; /* active list */
	int64_t x_start;     /* monotonic ms */
	int x_slow;	     /* no longer counted in d_fast */
	CURL *x_easy;
	struct target *x_target;
	struct msg *x_msg;
	int x_retry;	     /* an attempt of a target_retry */
	int x_attempts;	     /* failed before this one */
	int64_t x_first;     /* wall-clock ms of the first attempt */
	struct dthread *x_d; /* for on_open */
	unsigned x_reloads;  /* d_reloads when its options were set */
	char x_err[CURL_ERROR_SIZE];
	/*
	 * This attempt's own headers and the two every request has (x_hdr[2]
	 * and [3], see xfer_get), chained in front of the message's.
	 */
	struct curl_slist x_hdr[4];
	char x_stamp[40];
	char x_sig[24 + SIGN_VALUE_MAX];
	char x_denied[EGRESS_REASONLEN]; /* by on_open, "": no */
	int x_h2; /* set for HTTP/2 over TLS (xfer_set_version), 0: HTTP/1.1 */
};

/*
 * libcurl's default Accept header, left out.  Not const only because
 * curl_slist's data is not.
 */
static char no_accept[] = "Accept:";

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

/*
 * 1, with the reason kept in X for xfer_failed, if X may not reach SA.
 * Every connection libcurl opens comes here (on_open) with the address it
 * is about to connect to, after any DNS lookup, so a name that resolves
 * (or rebinds) to a denied address gets no connection; libcurl then tries
 * the name's next address, or fails with COULDNT_CONNECT.
 */
static int
egress_denied(struct xfer *x, const struct sockaddr *sa)
{
	struct dthread *d = x->x_d;
	char why[EGRESS_REASONLEN], la[LOG_VALUE_MAX], lv[LOG_VALUE_MAX];

	if (atomic_load(&d->d_self_known) &&
	    egress_is_self(sa, (struct sockaddr *)&d->d_self))
		snprintf(why, sizeof(why), "%s", EGRESS_SELF);
	else if (egress_check(&d->d_cfg->deny_targets, &d->d_cfg->allow_targets,
		     sa, why) == EGRESS_ALLOW)
		return 0;
	memcpy(x->x_denied, why, sizeof(why));
	log_debug("connection not allowed", "address=%s reason=%s",
	    log_value(la, sizeof(la), sub_address(x->x_target->tg_sub)),
	    log_value(lv, sizeof(lv), why));
	return 1;
}

static curl_socket_t
on_open(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
	struct xfer *x = arg;
	struct dthread *d = x->x_d;

	if (purpose != CURLSOCKTYPE_IPCXN || egress_denied(x, &a->addr))
		return CURL_SOCKET_BAD;
	return evloop_open_socket(d->d_ev, a);
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
	if (x->x_d->d_cfg_ref == NULL)
		return CURL_PREREQFUNC_OK;
	/* Not an address (it cannot be): left AF_UNSPEC, which is denied. */
	addr_ip(peer_ip, (unsigned int)peer_port, &ss);
	return egress_denied(x, (struct sockaddr *)&ss) ?
	    CURL_PREREQFUNC_ABORT :
	    CURL_PREREQFUNC_OK;
}

/* Subscribers' answers are not kept: only their status code counts. */
static size_t
discard_body(char *ptr, size_t size, size_t nmemb, void *arg)
{
	(void)ptr;
	(void)arg;
	return size * nmemb;
}

/*
 * A transfer could not start (out of memory or handles): dispatch tries
 * again every round, so this is logged rarely.
 */
static void
postponed(struct dthread *d, const char *why)
{
	if (!ratelog_allow(&d->d_nomem_log))
		return;
	log_error("delivery postponed", "reason=\"%s\" suppressed=%lu", why,
	    d->d_nomem_log.rl_quiet);
	d->d_nomem_log.rl_quiet = 0;
}

static struct xfer *
xfer_get(struct dthread *d)
{
	struct xfer *x = d->d_xfer_free;
	CURL *e;

	if (x != NULL) {
		d->d_xfer_free = x->x_next;
		return x;
	}
	if ((x = calloc(1, sizeof(*x))) == NULL ||
	    (e = curl_easy_init()) == NULL) {
		postponed(d, "no memory for a transfer");
		free(x);
		return NULL;
	}
	x->x_easy = e;
	x->x_d = d;
	x->x_reloads = d->d_reloads;
	/*
	 * The User-Agent line is a header of our own rather than
	 * CURLOPT_USERAGENT, which libcurl 7.88 formats anew (aprintf) for
	 * every transfer: each byte its printf writes costs about a hundred
	 * instructions.
	 */
	x->x_hdr[2].data = d->d_user_agent;
	x->x_hdr[2].next = &x->x_hdr[3];
	x->x_hdr[3].data = no_accept;
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
	/*
	 * No proxy for any host, said outright: otherwise libcurl reads
	 * no_proxy and NO_PROXY from the environment for every transfer.
	 */
	curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
	    d->d_cfg->connect_timeout * 1000L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS,
	    d->d_cfg->delivery_timeout * 1000L);
	curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard_body);
	/* libcurl's defaults, spelt out: https:// subscribers are verified. */
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER,
	    d->d_cfg->tls_verify ? 1L : 0L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST,
	    d->d_cfg->tls_verify ? 2L : 0L);
	if (d->d_cfg->ca_file[0] != '\0') {
		/* The file replaces the system's CAs rather than adding to them. */
		curl_easy_setopt(e, CURLOPT_CAINFO, d->d_cfg->ca_file);
		/* A variadic argument: NULL itself may be a plain 0. */
		curl_easy_setopt(e, CURLOPT_CAPATH, (char *)NULL);
	}
	if (d->d_resolve != NULL)
		curl_easy_setopt(e, CURLOPT_RESOLVE, d->d_resolve);
	curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, on_open);
	curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, x);
	curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, on_prereq);
	curl_easy_setopt(e, CURLOPT_PREREQDATA, x);
	evloop_setup_easy(d->d_ev, e);
	return x;
}

static void
xfer_unlink(struct dthread *d, struct xfer *x)
{
	if (x == d->d_active_young)
		d->d_active_young = x->x_next;
	if (x->x_prev != NULL)
		x->x_prev->x_next = x->x_next;
	else
		d->d_active_head = x->x_next;
	if (x->x_next != NULL)
		x->x_next->x_prev = x->x_prev;
	else
		d->d_active_tail = x->x_prev;
	if (!x->x_slow)
		d->d_fast--;
	d->d_in_flight--;
	assert(d->d_in_flight >= 0 && d->d_fast >= 0);
	atomic_store_explicit(&d->d_flying, d->d_in_flight,
	    memory_order_relaxed);
}

static void
xfer_put(struct dthread *d, struct xfer *x)
{
	/* Set from the config before a reload: not used again. */
	if (x->x_reloads != d->d_reloads) {
		curl_easy_cleanup(x->x_easy);
		free(x);
		return;
	}
	x->x_target = NULL;
	x->x_msg = NULL;
	x->x_next = d->d_xfer_free;
	d->d_xfer_free = x;
}

void
xfer_free_all(struct dthread *d)
{
	struct xfer *x, *next;

	for (x = d->d_xfer_free; x != NULL; x = next) {
		next = x->x_next;
		curl_easy_cleanup(x->x_easy);
		free(x);
	}
	d->d_xfer_free = NULL;
}

/*
 * This attempt's webhook-timestamp and, when a secret applies, its
 * webhook-signature (Standard Webhooks: over id.timestamp.body), put in
 * front of the two fixed nodes and the message's own headers without
 * copying them: curl_slist is a public struct, and X holds the nodes until
 * the transfer is done.
 * The signature is kept by the thread (d_sigs): the message's other
 * subscribers on this thread in the same second get it without another
 * HMAC.
 */
static int
attempt_headers(struct dthread *d, struct target *t, struct xfer *x,
    struct msg *m)
{
	char la[LOG_VALUE_MAX];
	struct curl_slist *rest = &x->x_hdr[2];
	int64_t ts = clock_real_ms() / 1000;
	struct sig_kept *kept;
	struct signer *sg;
	size_t len;

	sg = t->tg_signer != NULL ? t->tg_signer : d->d_signer;
	x->x_hdr[3].next = msg_headers(m);
	/* Formatted once a second (per thread), copied for each attempt. */
	if (ts != d->d_stamp_sec) {
		d->d_stamp_len = (size_t)snprintf(d->d_stamp_line,
		    sizeof(d->d_stamp_line), "webhook-timestamp: %lld",
		    (long long)ts);
		d->d_stamp_sec = ts;
	}
	memcpy(x->x_stamp, d->d_stamp_line, d->d_stamp_len + 1);
	x->x_hdr[0].data = x->x_stamp;
	x->x_hdr[0].next = rest;
	if (sg == NULL)
		return 0;
	kept = &d->d_sigs[msg_seq(m) % SIG_KEPT];
	if (kept->sk_seq != msg_seq(m) || kept->sk_key != signer_key(sg) ||
	    kept->sk_ts != ts) {
		kept->sk_ts = 0;
		if (signer_sign(sg, msg_id(m), ts, msg_body(m), msg_len(m),
			kept->sk_value) == -1) {
			log_error("cannot sign delivery",
			    "address=%s "
			    "message=%s",
			    log_value(la, sizeof(la), sub_address(t->tg_sub)),
			    msg_id(m));
			return -1;
		}
		kept->sk_seq = msg_seq(m);
		kept->sk_key = signer_key(sg);
		kept->sk_ts = ts;
	}
	len = strlen(kept->sk_value);
	memcpy(x->x_sig, SIG_NAME, sizeof(SIG_NAME) - 1);
	memcpy(x->x_sig + sizeof(SIG_NAME) - 1, kept->sk_value, len + 1);
	x->x_hdr[0].next = &x->x_hdr[1];
	x->x_hdr[1].data = x->x_sig;
	x->x_hdr[1].next = rest;
	return 0;
}

long
xfer_http_version(int http2, const char *url)
{
	return http2 && strncasecmp(url, "https://", 8) == 0 ?
	    (long)CURL_HTTP_VERSION_2TLS :
	    (long)CURL_HTTP_VERSION_1_1;
}

/*
 * X's handle asks for the HTTP version T's deliveries use.  PIPEWAIT makes
 * a subscriber's concurrent transfers wait for its first connection's ALPN
 * and then share it as streams, rather than each opening a connection of
 * its own; never with HTTP/1.1, where libcurl would hold all of them but
 * one until the first answer.  Handles are pooled across subscribers: the
 * options are set only when they change.
 */
static void
xfer_set_version(struct dthread *d, struct xfer *x, const struct target *t)
{
	long v = xfer_http_version(d->d_http2 && d->d_cfg->http2,
	    sub_url_text(t->tg_sub));
	int h2 = v != (long)CURL_HTTP_VERSION_1_1;

	if (h2 == x->x_h2)
		return;
	curl_easy_setopt(x->x_easy, CURLOPT_HTTP_VERSION, v);
	curl_easy_setopt(x->x_easy, CURLOPT_PIPEWAIT, (long)h2);
	x->x_h2 = h2;
}

/*
 * Starts one delivery for T: its first retry when KIND is TARGET_RETRY,
 * else its FIFO's head.  -1, logged, if it cannot (nothing is lost: T
 * keeps its work).  0 also when a retry whose message is gone is dropped.
 */
static int
xfer_start(struct dthread *d, struct target *t, enum target_work kind)
{
	char la[LOG_VALUE_MAX];
	struct target_retry r = { 0 };
	struct xfer *x;
	struct msg *m;
	CURL *e;

	if (kind == TARGET_RETRY) {
		m = t->tg_retries[0].tr_msg;
		if (m == NULL &&
		    (m = store_read_msg(d->d_reader,
			 t->tg_retries[0].tr_seq)) == NULL) {
			log_error("retry without its message dropped",
			    "address=%s seq=%llu",
			    log_value(la, sizeof(la), sub_address(t->tg_sub)),
			    (unsigned long long)t->tg_retries[0].tr_seq);
			target_retry_take(t, &r);
			store_retry_done(d->d_store, t->tg_id, r.tr_seq);
			return 0;
		}
		t->tg_retries[0].tr_msg = m;
	} else
		m = t->tg_ring[t->tg_head];
	if ((x = xfer_get(d)) == NULL)
		return -1;
	e = x->x_easy;
	x->x_err[0] = '\0';
	x->x_denied[0] = '\0';
	if (attempt_headers(d, t, x, m) == -1)
		goto fail;
	curl_easy_setopt(e, CURLOPT_CURLU, sub_url(t->tg_sub));
	xfer_set_version(d, x, t);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->x_hdr);
	curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
	    (curl_off_t)msg_len(m));
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, msg_body(m));
	x->x_target = t; /* before libcurl can call on_open */
	if (evloop_add(d->d_ev, e) == -1) {
		postponed(d, "curl_multi_add_handle failed");
		goto fail;
	}
	if (kind == TARGET_RETRY) {
		target_retry_take(t, &r);
		x->x_msg = r.tr_msg; /* the retry's reference moves here */
		x->x_retry = 1;
		x->x_attempts = r.tr_attempts;
		x->x_first = r.tr_first;
	} else {
		x->x_msg = target_shift(t); /* so does the FIFO's */
		x->x_retry = 0;
		x->x_attempts = 0;
		x->x_first = 0;
	}
	x->x_start = d->d_now;
	x->x_slow = 0;
	x->x_next = NULL;
	x->x_prev = d->d_active_tail;
	if (x->x_prev != NULL)
		x->x_prev->x_next = x;
	else
		d->d_active_head = x;
	d->d_active_tail = x;
	if (d->d_active_young == NULL)
		d->d_active_young = x;
	t->tg_in_flight++;
	d->d_in_flight++;
	atomic_store_explicit(&d->d_flying, d->d_in_flight,
	    memory_order_relaxed);
	d->d_fast++;
	atomic_store(&sub_counters(t->tg_sub)->in_flight,
	    (uint_fast64_t)t->tg_in_flight);
	target_count(d, t);
	return 0;
fail:
	xfer_put(d, x);
	return -1;
}

static void xfer_answered(struct dthread *d, struct xfer *from,
    const struct xfer *to);

static void
xfer_age(struct dthread *d)
{
	struct xfer *x, *from = d->d_active_young;

	while ((x = d->d_active_young) != NULL &&
	    d->d_now - x->x_start >= SLOW_MS) {
		x->x_slow = 1;
		d->d_fast--;
		d->d_active_young = x->x_next;
	}
	if (from != d->d_active_young)
		xfer_answered(d, from, d->d_active_young);
}

void
xfer_dispatch(struct dthread *d)
{
	struct target *t, *again = NULL;
	enum target_work kind;

	xfer_age(d);
	while (d->d_fast < d->d_max_transfers &&
	    d->d_in_flight < d->d_max_open &&
	    (t = target_ready_pop(d)) != NULL) {
		if (t->tg_removed) {
			target_release(d, t);
			continue;
		}
		if ((kind = target_next(d, t)) == TARGET_STORED) {
			uint64_t from = t->tg_next;

			target_refill(d, t);
			kind = target_next(d, t);
			/* Read past other topics' messages only: on at once. */
			if (kind == TARGET_STORED && t->tg_next > from) {
				t->tg_ready_next = again;
				again = t;
				continue;
			}
		}
		/* Still TARGET_STORED: a read error; the tick tries again. */
		if (kind == TARGET_IDLE || kind == TARGET_STORED)
			continue;
		if (xfer_start(d, t, kind) == -1) {
			/* Out of memory or handles: try again on the next round. */
			target_ready_push(d, t);
			break;
		}
		target_ready_push(d, t);
	}
	for (d->d_rescan = again != NULL; (t = again) != NULL;) {
		again = t->tg_ready_next;
		target_ready_push(d, t);
	}
}

static void
note_failure(struct target *t, const struct msg *m, long status, CURLcode rc,
    const char *detail, char err[SUB_ERRLEN])
{
	char la[LOG_VALUE_MAX], lv[LOG_VALUE_MAX];

	if (status != 0 && rc == CURLE_OK)
		snprintf(err, SUB_ERRLEN, "HTTP %ld", status);
	else
		snprintf(err, SUB_ERRLEN, "%.159s",
		    *detail ? detail : curl_easy_strerror(rc));
	atomic_fetch_add(&sub_counters(t->tg_sub)->failed, 1);
	sub_set_error(t->tg_sub, err);

	if (!ratelog_allow(&t->tg_fail_log))
		return;
	log_warnx("delivery failed",
	    "address=%s message=%s status=%ld "
	    "error=%s suppressed=%lu",
	    log_value(la, sizeof(la), sub_address(t->tg_sub)), msg_id(m),
	    status, log_value(lv, sizeof(lv), err), t->tg_fail_log.rl_quiet);
	t->tg_fail_log.rl_quiet = 0;
}

/* When to try again after a failed attempt; -1: never (a dead letter). */
static long
next_delay(struct dthread *d, CURL *e, long status, int attempt, int64_t real)
{
	struct curl_header *h;

	if ((status == 429 || status == 503) &&
	    curl_easy_header(e, "Retry-After", 0, CURLH_HEADER, -1, &h) ==
		CURLHE_OK) {
		long ms = retry_after_ms(h->value, real);

		if (ms >= 0)
			return attempt > d->d_cfg->retry_count ? -1 : ms;
	}
	return retry_delay_ms(d->d_cfg, attempt, &d->d_rng);
}

static void
xfer_failed(struct dthread *d, struct xfer *x, CURL *e, long status,
    CURLcode rc)
{
	char la[LOG_VALUE_MAX];
	struct target *t = x->x_target;
	int64_t real = clock_real_ms();
	struct store_attempt a = { .sub_id = t->tg_id,
		.seq = msg_seq(x->x_msg),
		.attempts = x->x_attempts + 1,
		.first_at = x->x_first ? x->x_first : real,
		.last_at = real,
		.status = rc == CURLE_OK ? status : 0 };
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
	t->tg_fails++;
	if (status == 410 && rc == CURLE_OK && !t->tg_removed && !t->tg_gone) {
		log_warnx("subscriber answered 410 Gone: deregistered",
		    "address=%s",
		    log_value(la, sizeof(la), sub_address(t->tg_sub)));
		/* Nothing more is sent; the store dead-letters what is pending. */
		t->tg_gone = 1;
		subs_remove_sub(d->d_subs, t->tg_sub, SUB_GONE);
	}
	delay = next_delay(d, e, status, a.attempts, real);
	if (delay < 0 && !t->tg_removed) {
		store_dead(d->d_store, &a, sub_address(t->tg_sub),
		    "retries exhausted");
		log_warnx("delivery gave up: dead letter",
		    "address=%s "
		    "message=%s attempts=%d",
		    log_value(la, sizeof(la), sub_address(t->tg_sub)),
		    msg_id(x->x_msg), a.attempts);
		if (t->tg_state == SUB_FAILING)
			target_give_up(d, t, real);
		return;
	}
	if (delay < 0)
		delay = 0;
	/* Saved even for a removed subscriber: the store dead-letters its retries. */
	a.next_at = real + delay;
	store_retry(d->d_store, &a);
	if (!t->tg_removed && !t->tg_gone) {
		struct target_retry r = { .tr_seq = a.seq,
			.tr_msg = msg_ref(x->x_msg),
			.tr_attempts = a.attempts,
			.tr_due = d->d_now + delay,
			.tr_first = a.first_at };

		target_retry_add(d, t, &r);
		metrics_retry();
	}
	if (t->tg_state == SUB_ACTIVE &&
	    t->tg_fails >= d->d_cfg->failure_threshold && !t->tg_removed) {
		t->tg_state = SUB_FAILING;
		sub_set_state(t->tg_sub, SUB_FAILING);
		target_spill(d, t);
		log_warnx("subscriber failing: only retry probes until it "
			  "answers",
		    "address=%s consecutive_failures=%d",
		    log_value(la, sizeof(la), sub_address(t->tg_sub)),
		    t->tg_fails);
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
	if (rc == CURLE_COULDNT_CONNECT &&
	    (x->x_denied[0] != '\0' ||
		(curl_easy_getinfo(e, CURLINFO_OS_ERRNO, &err) == CURLE_OK &&
		    err == ECONNREFUSED)))
		return METRICS_REFUSED;
	return METRICS_FAILED;
}

/*
 * 1 if E is an HTTP/2 transfer whose answer is in, whole: its status, and
 * all the body it said it had.  libcurl 7.88 can still fail such a
 * transfer, or leave it waiting, when the server answered and closed the
 * stream before the last of the request body went out (nginx's `return
 * 204` does; curl issue 22984): CURLE_HTTP2_STREAM or CURLE_SEND_ERROR, or
 * nothing until delivery_timeout.
 */
static int
answered_h2(CURL *e, long status)
{
	curl_off_t len = -1, got = 0;
	long v = 0;

	if (status < 200 ||
	    curl_easy_getinfo(e, CURLINFO_HTTP_VERSION, &v) != CURLE_OK ||
	    v != CURL_HTTP_VERSION_2_0)
		return 0;
	curl_easy_getinfo(e, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &len);
	curl_easy_getinfo(e, CURLINFO_SIZE_DOWNLOAD_T, &got);
	return len < 0 || got == len;
}

/*
 * Such an answer is the subscriber's, as it would be over HTTP/1.1:
 * CURLE_OK, so that 2xx, 3xx, 410 and 429 are acted on alike.
 */
static CURLcode
answered_early(CURL *e, long status, CURLcode rc)
{
	if ((rc == CURLE_HTTP2_STREAM || rc == CURLE_SEND_ERROR) &&
	    answered_h2(e, status))
		return CURLE_OK;
	return rc;
}

void
xfer_on_done(void *arg, CURL *e, CURLcode rc)
{
	struct dthread *d = arg;
	enum metrics_result result;
	char la[LOG_VALUE_MAX];
	struct xfer *x = NULL;
	struct target *t;
	curl_off_t us = 0;
	long status = 0;

	curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&x);
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_getinfo(e, CURLINFO_TOTAL_TIME_T, &us);
	rc = answered_early(e, status, rc);
	result = attempt_result(e, x, status, rc);
	metrics_delivery(result, (int64_t)us);
	atomic_fetch_add_explicit(&d->d_attempts, 1, memory_order_relaxed);
	evloop_remove(d->d_ev, e);
	xfer_unlink(d, x);
	t = x->x_target;

	if (result == METRICS_OK) {
		metrics_delivered_after(clock_real_ms() -
		    msg_created(x->x_msg));
		atomic_fetch_add(&sub_counters(t->tg_sub)->delivered, 1);
		/* Every delivery passes here: no formatting unless shown. */
		if (log_enabled(LOG_DEBUG))
			log_debug("delivered",
			    "address=%s message=%s "
			    "status=%ld",
			    log_value(la, sizeof(la), sub_address(t->tg_sub)),
			    msg_id(x->x_msg), status);
		if (x->x_retry)
			store_retry_done(d->d_store, t->tg_id,
			    msg_seq(x->x_msg));
		target_recovered(d, t);
	} else
		xfer_failed(d, x, e, status, rc);

	msg_unref(x->x_msg);
	xfer_put(d, x);
	t->tg_in_flight--;
	assert(t->tg_in_flight >= 0);
	atomic_store(&sub_counters(t->tg_sub)->in_flight,
	    (uint_fast64_t)t->tg_in_flight);
	target_count(d, t);
	if (t->tg_removed)
		target_release(d, t);
	else
		target_ready_push(d, t);
}

/*
 * Of the transfers from FROM up to TO, which just turned slow: an HTTP/2
 * one whose answer is in is over, whatever libcurl waits for (see
 * answered_h2), rather than holding its slot until delivery_timeout.
 */
static void
xfer_answered(struct dthread *d, struct xfer *from, const struct xfer *to)
{
	struct xfer *x, *next;
	long status;

	for (x = from; x != to; x = next) {
		next = x->x_next;
		status = 0;
		if (x->x_h2 &&
		    curl_easy_getinfo(x->x_easy, CURLINFO_RESPONSE_CODE,
			&status) == CURLE_OK &&
		    answered_h2(x->x_easy, status))
			xfer_on_done(d, x->x_easy, CURLE_HTTP2_STREAM);
	}
}

int64_t
xfer_slow_at(const struct dthread *d)
{
	return d->d_active_young != NULL ?
	    d->d_active_young->x_start + SLOW_MS :
	    -1;
}

void
xfer_lower_cursors(struct dthread *d)
{
	struct xfer *x;

	for (x = d->d_active_head; x != NULL; x = x->x_next)
		if (!x->x_retry && !x->x_target->tg_removed &&
		    msg_seq(x->x_msg) < x->x_target->tg_low)
			x->x_target->tg_low = msg_seq(x->x_msg);
}

long
xfer_abandon_all(struct dthread *d)
{
	long flying = d->d_in_flight;
	struct xfer *x;

	while ((x = d->d_active_head) != NULL) {
		struct target *t = x->x_target;

		evloop_remove(d->d_ev, x->x_easy);
		xfer_unlink(d, x);
		msg_unref(x->x_msg);
		xfer_put(d, x);
		t->tg_in_flight--;
		target_release(d, t);
	}
	return flying;
}

/*
 * Room in libcurl's cache for every subscriber's idle connections: when the
 * cache is smaller than what the subscribers keep open, it closes one
 * connection for every one it opens, and deliveries pay a TCP handshake
 * each.  Bounded by the descriptors left over from the HTTP front end.
 */
void
xfer_size_cache(struct dthread *d)
{
	long want = (long)d->d_ntargets * target_max_in_flight(d);

	if (want < d->d_max_transfers)
		want = d->d_max_transfers;
	if (want > d->d_max_open)
		want = d->d_max_open;
	evloop_set_maxconnects(d->d_ev, want);
	/* One HTTP/2 connection can carry a subscriber's whole cap. */
	evloop_set_max_streams(d->d_ev, target_max_in_flight(d));
}

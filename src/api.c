/*
 * api.c: the HTTP endpoints over libmicrohttpd.
 *
 * DESIGN
 * libmicrohttpd runs its own epoll threads (http_threads of them) and calls
 * api_handle() on them.  A handler parses and validates, then hands over: a
 * registration goes into the subscriber map (subs.c, its rwlock), a message
 * to the store's writer (store.c).  What must be durable before it is
 * answered (a publish, a new registration, a removal, the dead-letter
 * endpoints) suspends its connection until the writer has committed it and
 * resumes it; nothing here waits on the network or the disk.  A request body is read incrementally into a buffer
 * that never grows past max_body; a larger body, announced or chunked, gets
 * 413 as soon as it is known to be too large.
 *
 * Access control: each route names the scope it needs (routes[]).  With the
 * headers in, a request is judged in this order: its path (404), its method
 * (405), whether a page of another origin sent it (403, auth_cross_site),
 * its token (401), then everything else; so a refused request is answered
 * before any of its body reaches a handler, and changes nothing.
 *
 * Every answer is counted (metrics.c) by its route and status.  /metrics
 * takes its gauges from their owners when scraped: the map's totals under
 * its read lock (subs_census), the rest from atomics; /readyz reads the
 * store's state and both threads' heartbeats, and takes no lock but the
 * store's queue mutex, briefly.
 *
 * The dashboard's three files are embedded (dashboard.c) and each answered
 * with one response made at start and shared by every request.
 *
 * Slow clients: libmicrohttpd's callbacks tell conns.c each connection's
 * progress (accepted, request line, handler calls, answered, closed) and
 * its accept policy asks it for room at max_connections; a ticker thread
 * (a_sweeper) cuts what is past its deadline.  conns.c's DESIGN block says
 * why that is the way libmicrohttpd 0.9.75 allows.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "addr.h"
#include "api.h"
#include "auth.h"
#include "clock.h"
#include "conns.h"
#include "dashboard.h"
#include "deadletters.h"
#include "deliver.h"
#include "egress.h"
#include "listing.h"
#include "log.h"
#include "metrics.h"
#include "msg.h"
#include "params.h"
#include "sign.h"
#include "stats.h"
#include "store.h"
#include "ticker.h"
#include "tls.h"
#include "topics.h"

/* EP_OTHER: a path that is no route's, for the request counter. */
enum endpoint { EP_REGISTER, EP_DEREGISTER, EP_SEND, EP_LIST, EP_DEAD,
    EP_REPLAY, EP_METRICS, EP_STATS, EP_HEALTHZ, EP_READYZ, EP_PAGE,
    EP_SCRIPT, EP_STYLE, EP_OTHER };

static const struct route {
	const char	*path;
	const char	*allow;		/* the methods it answers */
	const char	*wrong_method;	/* the seed's text */
	enum auth_scope	 scope;		/* whose token it needs */
} routes[] = {
	[EP_REGISTER] = { "/registerAndKeepAlive", "POST",
	    "Error: Only POST accepted", AUTH_SUBSCRIBE },
	[EP_DEREGISTER] = { "/deregister", "DELETE",
	    "Error: Only DELETE accepted", AUTH_SUBSCRIBE },
	[EP_SEND] = { "/sendMessage", "POST",
	    "Error: Only POST accepted", AUTH_PUBLISH },
	[EP_LIST] = { "/listSubscribers", "GET, HEAD",
	    "Error: Only GET accepted", AUTH_ADMIN },
	[EP_DEAD] = { "/deadLetters", "GET, HEAD, DELETE",
	    "Error: Only GET or DELETE accepted", AUTH_ADMIN },
	[EP_REPLAY] = { "/deadLetters/replay", "POST",
	    "Error: Only POST accepted", AUTH_ADMIN },
	[EP_METRICS] = { "/metrics", "GET, HEAD",
	    "Error: Only GET accepted", AUTH_ADMIN },
	[EP_STATS] = { "/stats", "GET, HEAD",
	    "Error: Only GET accepted", AUTH_ADMIN },
	/* Probes carry no token, and what they answer tells nothing secret. */
	[EP_HEALTHZ] = { "/healthz", "GET, HEAD",
	    "Error: Only GET accepted", AUTH_PUBLIC },
	[EP_READYZ] = { "/readyz", "GET, HEAD",
	    "Error: Only GET accepted", AUTH_PUBLIC },
	/* The dashboard: it shows what the admin endpoints do. */
	[EP_PAGE] = { "/", "GET, HEAD", "Error: Only GET accepted", AUTH_ADMIN },
	[EP_SCRIPT] = { "/dashboard.js", "GET, HEAD",
	    "Error: Only GET accepted", AUTH_ADMIN },
	[EP_STYLE] = { "/dashboard.css", "GET, HEAD",
	    "Error: Only GET accepted", AUTH_ADMIN },
};

/* The dashboard's file each of its endpoints answers with. */
static const enum dashboard_part parts[] = {
	[EP_PAGE] = DASHBOARD_PAGE,
	[EP_SCRIPT] = DASHBOARD_SCRIPT,
	[EP_STYLE] = DASHBOARD_STYLE,
};

_Static_assert(sizeof(routes) / sizeof(routes[0]) == EP_OTHER,
    "a route for every endpoint");
_Static_assert(EP_OTHER < METRICS_ENDPOINTS_MAX,
    "every endpoint and other fit the request counter");

/* Not ready when a thread has not gone round its loop for this long. */
#define READY_STALE_MS	5000

struct api {
	const struct config	*cfg;
	struct subs		*subs;
	struct store		*store;
	struct deliver		*deliver;
	struct stats		*stats;
	struct MHD_Daemon	*daemon;
	struct MHD_Response	*success;	/* shared by every 200 */
	struct MHD_Response	*files[DASHBOARD_PARTS];	/* the same */
	struct auth		*auth;
	struct tls		*tls;		/* HTTPS: kept until the daemon stops */
	/*
	 * cfg and auth change on a reload, under the write lock; handlers
	 * read them under the read lock (api_handle).  cfg_ref is the
	 * reference api_reload() took, NULL for the caller's first one.
	 */
	pthread_rwlock_t	 conf_lock;
	const struct config	*cfg_ref;
	struct sockaddr_storage	 self;		/* where it listens, with its port */
	int			 fd;		/* listening, until libmicrohttpd has it */
	struct conns		*conns;		/* deadlines and room: conns.c */
	struct ticker		*sweeper;	/* runs conns_sweep */
	int64_t			 sweep_next;	/* the sweeper's: when to run */
	int64_t			 swept_logged;	/* the sweeper's: last count line */
};

/*
 * A request between its headers and the end of its body.  /sendMessage gets
 * one of its own; the other endpoints share read-only static ones, since
 * they only discard whatever body a client sends.  Answering after the body
 * is read keeps the connection alive for the client's next request.
 */
struct upload {
	enum endpoint	 u_ep;
	int	 u_static;	/* one of bodiless[]: never freed */
	char	*u_data;
	size_t	 u_len, u_cap;
	int	 u_too_large;	/* past max_body: discarding, then 413 */
	/* Waiting on the store, with the connection suspended. */
	struct MHD_Connection	*u_conn;
	struct api		*u_api;
	atomic_int		 u_waiting;	/* 1 submitted, 2 answered */
	struct store_req	 u_req;
	int			 u_json;	/* /sendMessage: answer in JSON */
	char			 u_key[256];	/* its Idempotency-Key, "" none */
};

static enum MHD_Result
answer(struct MHD_Connection *c, unsigned int status, const char *ctype,
    const char *body, size_t len, enum MHD_ResponseMemoryMode mode,
    const char *hdr, const char *value)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(len, (void *)(uintptr_t)body, mode);
	if (r == NULL) {
		if (mode == MHD_RESPMEM_MUST_FREE)
			free((void *)(uintptr_t)body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	if (hdr != NULL)
		MHD_add_response_header(r, hdr, value);
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

/* TEXT is a literal: the response points at it, uncopied. */
static enum MHD_Result
answer_text(struct MHD_Connection *c, unsigned int status, const char *text)
{
	return answer(c, status, "text/plain; charset=utf-8", text,
	    strlen(text), MHD_RESPMEM_PERSISTENT, NULL, NULL);
}

static enum MHD_Result answer_fmt(struct MHD_Connection *c,
    unsigned int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static enum MHD_Result
answer_fmt(struct MHD_Connection *c, unsigned int status, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0)
		return MHD_NO;
	return answer(c, status, "text/plain; charset=utf-8", buf,
	    strlen(buf), MHD_RESPMEM_MUST_COPY, NULL, NULL);
}

static enum MHD_Result
answer_success(struct api *a, struct MHD_Connection *c)
{
	return MHD_queue_response(c, MHD_HTTP_OK, a->success);
}

static enum MHD_Result
answer_busy(struct MHD_Connection *c, const char *text)
{
	return answer(c, MHD_HTTP_SERVICE_UNAVAILABLE,
	    "text/plain; charset=utf-8", text, strlen(text),
	    MHD_RESPMEM_PERSISTENT, MHD_HTTP_HEADER_RETRY_AFTER, "1");
}

static enum MHD_Result
answer_too_large(const struct api *a, struct MHD_Connection *c)
{
	return answer_fmt(c, MHD_HTTP_CONTENT_TOO_LARGE,
	    "Error: Message larger than max_body (%zu bytes).",
	    a->cfg->max_body);
}

/* 400 for an address that cannot be used; the empty case keeps the seed's text. */
static enum MHD_Result
answer_bad_address(struct MHD_Connection *c, enum addr_status st)
{
	if (st == ADDR_EMPTY)
		return answer_text(c, MHD_HTTP_BAD_REQUEST,
		    "Error:Wrong input address.");
	if (st == ADDR_NOMEM)
		return answer_busy(c, "Error: Out of memory, retry later.");
	return answer_fmt(c, MHD_HTTP_BAD_REQUEST,
	    "Error:Wrong input address: %s.", addr_strerror(st));
}

/*
 * What a page of hookcast's is sent with: CSP (what it may load and run,
 * and that no other site may frame it), the same refusal of frames for
 * browsers without CSP, no guessing of content types, no Referer leaking
 * its address, and no use of a cached copy without asking.
 */
static void
add_page_headers(struct MHD_Response *r, const char *csp)
{
	if (csp != NULL) {
		MHD_add_response_header(r, "Content-Security-Policy", csp);
		MHD_add_response_header(r, "X-Frame-Options", "DENY");
		MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
	}
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
}

/* The server-rendered listing (?format=html); takes BODY. */
static enum MHD_Result
answer_page(struct MHD_Connection *c, char *body, size_t len)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	if (r == NULL) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
	    listing_content_type(LISTING_HTML));
	MHD_add_response_header(r, MHD_HTTP_HEADER_VARY, "Accept");
	add_page_headers(r, LISTING_HTML_CSP);
	ret = MHD_queue_response(c, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

/* The client's address, for log lines. */
static void
client_address(struct MHD_Connection *c, char *buf, size_t len)
{
	const union MHD_ConnectionInfo *ci;
	const struct sockaddr *sa;

	snprintf(buf, len, "-");
	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci == NULL || (sa = ci->client_addr) == NULL)
		return;
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)
		    sa)->sin_addr, buf, (socklen_t)len);
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)
		    sa)->sin6_addr, buf, (socklen_t)len);
}

/* Refusals of one kind, logged once a second at most. */
struct refusals {
	_Atomic int64_t	 r_logged;	/* when the last line was written */
	atomic_long	 r_count;	/* refused since */
};

/*
 * Counts one refusal; returns how many to log now (this one included), or
 * 0 when a line was written less than a second ago.
 */
static long
refusal_to_log(struct refusals *r)
{
	long n = atomic_fetch_add(&r->r_count, 1) + 1;
	int64_t now = clock_mono_ms(), then = atomic_load(&r->r_logged);

	if (now - then < 1000 ||
	    !atomic_compare_exchange_strong(&r->r_logged, &then, now))
		return 0;
	atomic_fetch_sub(&r->r_count, n);
	return n;
}

/*
 * 401 with a challenge for each scheme: Basic first, so that a browser
 * asks for a user name and password (the token), and Bearer (RFC 6750).
 * Logged once a second at most, with how many were refused since the last
 * line, so a client hammering with a wrong token cannot flood the log.
 * Neither the header nor anything from it is logged.
 */
static enum MHD_Result
answer_unauthorized(struct MHD_Connection *c, enum endpoint ep,
    enum auth_verdict v)
{
	static struct refusals refusals;
	const char *scope = auth_scope_name(routes[ep].scope), *bearer;
	char body[256], client[INET6_ADDRSTRLEN];
	struct MHD_Response *r;
	enum MHD_Result ret;
	long n;

	if ((n = refusal_to_log(&refusals)) > 0) {
		client_address(c, client, sizeof(client));
		/* A browser always asks without a token first: not a warning. */
		(v == AUTH_MISSING ? log_info : log_warnx)("request "
		    "unauthorized", "path=%s scope=%s reason=%s client=%s "
		    "refused=%ld", routes[ep].path, scope,
		    auth_verdict_name(v), client, n);
	}

	switch (v) {
	case AUTH_MISSING:
		snprintf(body, sizeof(body), "Error: Unauthorized: %s needs the "
		    "%s token (Authorization: Bearer TOKEN, or Basic with the "
		    "token as password).", routes[ep].path, scope);
		bearer = "Bearer realm=\"hookcast\"";
		break;
	case AUTH_MALFORMED:
		snprintf(body, sizeof(body), "Error: Unauthorized: the "
		    "Authorization header is neither Bearer TOKEN nor Basic "
		    "base64(user:TOKEN).");
		bearer = "Bearer realm=\"hookcast\", error=\"invalid_request\"";
		break;
	default:
		snprintf(body, sizeof(body), "Error: Unauthorized: wrong %s "
		    "token.", scope);
		bearer = "Bearer realm=\"hookcast\", error=\"invalid_token\"";
		break;
	}
	r = MHD_create_response_from_buffer(strlen(body), body,
	    MHD_RESPMEM_MUST_COPY);
	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
	    "text/plain; charset=utf-8");
	MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
	    "Basic realm=\"hookcast\", charset=\"UTF-8\"");
	MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, bearer);
	ret = MHD_queue_response(c, MHD_HTTP_UNAUTHORIZED, r);
	MHD_destroy_response(r);
	return ret;
}

/*
 * 403 for a request that would change something, sent by a page of another
 * origin (auth_cross_site).  Logged once a second at most; the Origin is
 * not logged, being whatever the other site says.
 */
static enum MHD_Result
answer_cross_site(struct MHD_Connection *c, enum endpoint ep)
{
	static struct refusals refusals;
	char client[INET6_ADDRSTRLEN];
	long n;

	if ((n = refusal_to_log(&refusals)) > 0) {
		client_address(c, client, sizeof(client));
		log_warnx("cross-origin request refused", "path=%s client=%s "
		    "refused=%ld", routes[ep].path, client, n);
	}
	return answer_text(c, MHD_HTTP_FORBIDDEN, "Error: Forbidden: a page "
	    "of another origin may not change anything here (Origin or "
	    "Sec-Fetch-Site says it came from one).");
}

static const char *
query(struct MHD_Connection *c, const char *key)
{
	return MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, key);
}

static enum MHD_Result
collect_topic(void *cls, enum MHD_ValueKind kind, const char *key,
    const char *value)
{
	(void)kind;
	if (strcmp(key, "topic") == 0)
		params_topic_add(cls, value);
	return MHD_YES;
}

/*
 * The request's topics: for a subscriber PATTERNS allows "name.*" and "*".
 * Returns MHD_YES with *out set (NULL when none; *given says whether any
 * topic argument was there), or the 400 / 503 already queued in *ret.
 */
static int
request_topics(struct MHD_Connection *c, int patterns, struct topics **out,
    int *given, enum MHD_Result *ret)
{
	struct params_topics pt = { .pt_n = 0 };
	char err[TOPICS_ERRLEN];

	*out = NULL;
	MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, collect_topic, &pt);
	*given = pt.pt_n > 0;
	if (pt.pt_over) {
		*ret = answer_fmt(c, MHD_HTTP_BAD_REQUEST, "Error: More than "
		    "%d topics.", TOPICS_MAX);
		return -1;
	}
	switch (topics_parse(pt.pt_v, pt.pt_n, patterns, out, err)) {
	case TOPICS_OK:
		return 0;
	case TOPICS_INVALID:
		*ret = answer_fmt(c, MHD_HTTP_BAD_REQUEST, "%s", err);
		return -1;
	case TOPICS_NOMEM:
		break;
	}
	*ret = answer_busy(c, "Error: Out of memory, retry later.");
	return -1;
}

/* On the store thread: the request is done; its answer goes out on the next call. */
static void
store_answered(struct store_req *req)
{
	struct upload *u = req->r_arg;

	atomic_store(&u->u_waiting, 2);
	MHD_resume_connection(u->u_conn);
}

/*
 * Hands U's request to the store and suspends C until it is committed:
 * libmicrohttpd's threads go on serving other connections meanwhile.
 */
/* A publish is queued together with its count of subscribers (subs_count_then). */
static int
submit_counted(void *arg, size_t n)
{
	struct upload *u = arg;

	u->u_req.r_fanout = (long)n;
	return store_submit(u->u_api->store, &u->u_req);
}

static enum MHD_Result
wait_store(struct api *a, struct MHD_Connection *c, struct upload *u)
{
	int rc;

	u->u_conn = c;
	u->u_api = a;
	u->u_req.r_done = store_answered;
	u->u_req.r_arg = u;
	atomic_store(&u->u_waiting, 1);
	MHD_suspend_connection(c);
	if (u->u_req.r_type == REQ_PUBLISH)
		rc = subs_count_then(a->subs, msg_topics(u->u_req.r_msg),
		    submit_counted, u);
	else
		rc = store_submit(a->store, &u->u_req);
	if (rc == -1) {
		u->u_req.r_status = STORE_CLOSED;
		atomic_store(&u->u_waiting, 2);
		MHD_resume_connection(c);
	}
	return MHD_YES;
}

/* A request of its own for an endpoint that has to wait on the store. */
static struct upload *
upload_new(enum endpoint ep, void **con_cls)
{
	struct upload *u = calloc(1, sizeof(*u));

	if (u != NULL) {
		u->u_ep = ep;
		*con_cls = u;
	}
	return u;
}

/*
 * A registration may also name topics (replacing the set the subscriber
 * had) and a secret of its own; a bare keep-alive keeps both.
 */
static enum MHD_Result
handle_register(struct api *a, struct MHD_Connection *c, void **con_cls)
{
	struct upload *u;
	const char *address = query(c, "address");
	const char *secret = query(c, "secret");
	int64_t real = clock_real_ms(), mono = clock_mono_ms();
	struct sub_opts opts = { 0, NULL, NULL };
	char bad[SIGN_ERRLEN];
	enum subs_add_result r;
	enum MHD_Result ret;
	enum addr_status st;
	struct sockaddr_storage ss;
	char why[EGRESS_REASONLEN];
	char la[LOG_VALUE_MAX], lv[LOG_VALUE_MAX];
	CURLU *url;
	char *text;

	if (address == NULL || *address == '\0')
		return answer_bad_address(c, ADDR_EMPTY);
	if (request_topics(c, 1, &opts.topics, &opts.has_topics, &ret) == -1)
		return ret;
	if (secret != NULL) {
		if (sign_check(secret, 1, bad) == -1) {
			topics_unref(opts.topics);
			/* A query string reads '+' as a space. */
			return answer_fmt(c, MHD_HTTP_BAD_REQUEST, "Error: Wrong "
			    "secret: %s%s.", bad, strchr(secret, ' ') != NULL ?
			    " (a + in a query string reads as a space: send it "
			    "as %2B)" : "");
		}
		opts.secret = secret;
	}
	if (!opts.has_topics && opts.secret == NULL &&
	    subs_keepalive(a->subs, address, real, mono) == 0)
		return answer_success(a, c);
	if ((st = addr_parse(address, &url, &text)) != ADDR_OK) {
		topics_unref(opts.topics);
		return answer_bad_address(c, st);
	}
	/*
	 * A literal address the egress policy denies could never be delivered
	 * to: refuse it now.  A name is judged at each connection instead, by
	 * what it resolves to then (deliver.c).
	 */
	if (addr_literal(url, &ss) == 0 &&
	    (egress_is_self((struct sockaddr *)&ss, (struct sockaddr *)&a->self) ?
	    snprintf(why, sizeof(why), "%s", EGRESS_SELF) > 0 :
	    egress_check(&a->cfg->deny_targets, &a->cfg->allow_targets,
	    (struct sockaddr *)&ss, why) == EGRESS_DENY)) {
		curl_url_cleanup(url);
		curl_free(text);
		topics_unref(opts.topics);
		log_warnx("registration refused", "address=%s reason=%s",
		    log_value(la, sizeof(la), address),
		    log_value(lv, sizeof(lv), why));
		return answer_fmt(c, MHD_HTTP_FORBIDDEN, "Error: Address not "
		    "allowed: %s.", why);
	}

	r = subs_add(a->subs, address, url, text, &opts, real, mono);
	switch (r) {
	case SUBS_ADDED:
	case SUBS_CHANGED:
		if (r == SUBS_ADDED)
			log_info("subscriber registered", "address=%s url=%s "
			    "topics=%s signed=%s",
			    log_value(la, sizeof(la), address),
			    log_value(lv, sizeof(lv), text),
			    opts.topics ? topics_text(opts.topics) : "*",
			    opts.secret ? "own" : "-");
		else
			log_info("subscriber changed", "address=%s topics=%s "
			    "secret=%s", log_value(la, sizeof(la), address),
			    topics_text(opts.topics),
			    opts.secret ? "new" : "kept");
		if (r == SUBS_CHANGED)
			curl_url_cleanup(url);
		curl_free(text);
		topics_unref(opts.topics);
		/* Answered once the change is committed. */
		if ((u = upload_new(EP_REGISTER, con_cls)) == NULL)
			return answer_success(a, c);
		u->u_req.r_type = REQ_SYNC;
		return wait_store(a, c, u);
	case SUBS_REFRESHED:
		curl_url_cleanup(url);
		curl_free(text);
		topics_unref(opts.topics);
		return answer_success(a, c);
	case SUBS_FULL:
		curl_url_cleanup(url);
		curl_free(text);
		topics_unref(opts.topics);
		log_warnx("registration refused", "address=%s "
		    "reason=max_subscribers limit=%ld",
		    log_value(la, sizeof(la), address),
		    a->cfg->max_subscribers);
		return answer_text(c, MHD_HTTP_SERVICE_UNAVAILABLE,
		    "Error: Too many subscribers (max_subscribers).");
	case SUBS_NOMEM:
		break;
	}
	curl_url_cleanup(url);
	curl_free(text);
	topics_unref(opts.topics);
	log_error("registration failed", "address=%s reason=nomem",
	    log_value(la, sizeof(la), address));
	return answer_busy(c, "Error: Out of memory, retry later.");
}

static enum MHD_Result
handle_deregister(struct api *a, struct MHD_Connection *c, void **con_cls)
{
	const char *address = query(c, "address");
	char la[LOG_VALUE_MAX];
	enum addr_status st;
	struct upload *u;
	CURLU *url;
	char *text;

	if (address == NULL || *address == '\0')
		return answer_bad_address(c, ADDR_EMPTY);
	if (subs_remove(a->subs, address, SUB_DEREGISTERED) == 0) {
		log_info("subscriber deregistered", "address=%s",
		    log_value(la, sizeof(la), address));
		if ((u = upload_new(EP_DEREGISTER, con_cls)) == NULL)
			return answer_success(a, c);
		u->u_req.r_type = REQ_SYNC;
		return wait_store(a, c, u);
	}
	/* Not registered: fine (idempotent), unless it never could have been. */
	if ((st = addr_parse(address, &url, &text)) != ADDR_OK)
		return answer_bad_address(c, st);
	curl_url_cleanup(url);
	curl_free(text);
	return answer_success(a, c);
}

static enum MHD_Result
handle_list(struct api *a, struct MHD_Connection *c)
{
	enum listing_format f;
	struct sub **subs;
	const char *format = query(c, "format");
	char *body;
	size_t len = 0;
	long n;

	if (listing_negotiate(format, MHD_lookup_connection_value(c,
	    MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT), &f) == -1)
		return answer_text(c, MHD_HTTP_BAD_REQUEST,
		    "Error: Unknown format (use text, json or html).");
	/* A browser gets the dashboard; ?format=html the table without script. */
	if (f == LISTING_HTML && format == NULL)
		return MHD_queue_response(c, MHD_HTTP_OK,
		    a->files[DASHBOARD_PAGE]);
	if ((n = subs_snapshot(a->subs, &subs)) == -1)
		return answer_busy(c, "Error: Out of memory, retry later.");
	body = listing_render(f, subs, (size_t)n, a->cfg->keepalive_ttl * 1000,
	    clock_real_ms(), &len);
	for (long i = 0; i < n; i++)
		sub_unref(subs[i]);
	free(subs);
	if (body == NULL)
		return answer_busy(c, "Error: Out of memory, retry later.");
	if (f == LISTING_HTML)
		return answer_page(c, body, len);
	return answer(c, MHD_HTTP_OK, listing_content_type(f), body, len,
	    MHD_RESPMEM_MUST_FREE, MHD_HTTP_HEADER_VARY, "Accept");
}

/* GET /metrics: the counters, and the gauges as their owners have them now. */
static enum MHD_Result
handle_metrics(struct api *a, struct MHD_Connection *c)
{
	const char *names[EP_OTHER + 1];
	struct metrics_gauges g;
	struct subs_census sc;
	long open, cutting;
	size_t len = 0;
	char *body;

	for (size_t i = 0; i < EP_OTHER; i++)
		names[i] = routes[i].path;
	names[EP_OTHER] = "other";
	subs_census(a->subs, &sc);
	g.active = sc.active;
	g.failing = sc.failing;
	g.queued = sc.queued;
	g.retrying = sc.retrying;
	g.in_flight = (uint64_t)deliver_in_flight(a->deliver);
	g.backlog_bytes = store_backlog_bytes(a->store);
	conns_census(a->conns, &open, &cutting);
	g.http_connections = (uint64_t)open;
	if ((body = metrics_render(&g, names, EP_OTHER + 1, &len)) == NULL)
		return answer_busy(c, "Error: Out of memory, retry later.");
	return answer(c, MHD_HTTP_OK, "text/plain; version=0.0.4; "
	    "charset=utf-8", body, len, MHD_RESPMEM_MUST_FREE, NULL, NULL);
}

/* GET /stats: the last ten minutes, for the dashboard's chart. */
static enum MHD_Result
handle_stats(struct api *a, struct MHD_Connection *c)
{
	size_t len = 0;
	char *body;

	if ((body = stats_render(a->stats, clock_real_ms(), &len)) == NULL)
		return answer_busy(c, "Error: Out of memory, retry later.");
	return answer(c, MHD_HTTP_OK, "application/json", body, len,
	    MHD_RESPMEM_MUST_FREE, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
}

/*
 * GET /readyz: 200 while the store takes writes and its writer thread and
 * the delivery thread go round their loops; otherwise 503 and why, on one
 * line.
 */
static enum MHD_Result
handle_readyz(struct api *a, struct MHD_Connection *c)
{
	int64_t now = clock_mono_ms(), age;
	char why[160];

	if (store_health(a->store, why, sizeof(why)) == -1)
		return answer_fmt(c, MHD_HTTP_SERVICE_UNAVAILABLE, "store: %s\n",
		    why);
	if ((age = now - store_heartbeat(a->store)) > READY_STALE_MS)
		return answer_fmt(c, MHD_HTTP_SERVICE_UNAVAILABLE, "store: "
		    "writer thread stuck for %lld s\n", (long long)age / 1000);
	if ((age = now - deliver_heartbeat(a->deliver)) > READY_STALE_MS)
		return answer_fmt(c, MHD_HTTP_SERVICE_UNAVAILABLE, "delivery "
		    "thread: no heartbeat for %lld s\n", (long long)age / 1000);
	return answer_text(c, MHD_HTTP_OK, "ok\n");
}

/*
 * Back-pressure: say no (503) rather than accept more than the store may
 * hold (max_backlog_bytes), or, should the delivery thread fall so far
 * behind that bodies in memory reach twice max_queued_bytes, more than
 * memory may.  A full disk is answered by the failed commit itself.
 * Logged once a second at most.
 */
static const char *
refuse_publish(const struct api *a, size_t more)
{
	static _Atomic int64_t last_log;
	const char *why, *text = "Error: Queue full, retry later.";
	int64_t now, then;

	if (store_disk_full(a->store)) {
		why = "disk_full";
		text = "Error: Disk full, retry later.";
	}
	else if (store_backlog_bytes(a->store) + more > a->cfg->max_backlog_bytes)
		why = "max_backlog_bytes";
	else if (msg_bytes_alive() + more > a->cfg->max_queued_bytes * 2)
		why = "max_queued_bytes";
	else
		return NULL;
	now = clock_mono_ms();
	then = atomic_load(&last_log);
	if (now - then >= 1000 &&
	    atomic_compare_exchange_strong(&last_log, &then, now))
		log_warnx("publishing refused: backlog full", "reason=%s "
		    "backlog_bytes=%zu memory_bytes=%zu", why,
		    store_backlog_bytes(a->store), msg_bytes_alive());
	return text;
}

/* Bodies up to this size are read before being refused, and preallocated. */
#define EARLY_REFUSAL_BYTES	(64 * 1024)

/* The first call for /sendMessage: refuse early what is worth refusing early. */
static enum MHD_Result
send_begin(struct api *a, struct MHD_Connection *c, void **con_cls)
{
	const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_CONTENT_LENGTH);
	unsigned long long announced;
	const char *no;
	struct upload *u;

	if ((announced = params_content_length(cl)) > a->cfg->max_body)
		return answer_too_large(a, c);
	/*
	 * Answering before the body is read makes libmicrohttpd close the
	 * connection; a publisher told to retry had better keep it.  So only a
	 * large body is refused here; a small one is read and refused after.
	 */
	if (announced > EARLY_REFUSAL_BYTES &&
	    (no = refuse_publish(a, (size_t)announced)) != NULL)
		return answer_busy(c, no);
	if ((u = calloc(1, sizeof(*u))) == NULL)
		return answer_busy(c, "Error: Out of memory, retry later.");
	u->u_ep = EP_SEND;
	/*
	 * Room for what is announced, up to a point: a Content-Length is only
	 * a promise, and idle connections promising max_body each must not
	 * pin max_body each.  Past it the buffer grows as bytes arrive.
	 */
	u->u_cap = announced < EARLY_REFUSAL_BYTES ? (size_t)announced :
	    EARLY_REFUSAL_BYTES;
	if (u->u_cap > 0 && (u->u_data = malloc(u->u_cap)) == NULL) {
		free(u);
		return answer_busy(c, "Error: Out of memory, retry later.");
	}
	*con_cls = u;
	return MHD_YES;
}

/*
 * libmicrohttpd 0.9.75 cannot queue a response in the middle of a body, so a
 * chunked body that grows past max_body is read to its end and discarded,
 * then answered 413.  One that goes on past DISCARD_MAX is cut off instead.
 */
#define DISCARD_MAX(a)	((a)->cfg->max_body * 8 + (1u << 20))

static enum MHD_Result
send_data(struct api *a, struct upload *u, const char *data, size_t len)
{
	if (u->u_too_large || len > a->cfg->max_body - u->u_len) {
		if (!u->u_too_large) {
			u->u_too_large = 1;
			free(u->u_data);
			u->u_data = NULL;
			u->u_cap = 0;
		}
		u->u_len += len;
		return u->u_len > DISCARD_MAX(a) ? MHD_NO : MHD_YES;
	}
	if (u->u_len + len > u->u_cap) {
		size_t cap = u->u_cap ? u->u_cap : 4096;
		char *p;

		while (cap < u->u_len + len)
			cap *= 2;
		if (cap > a->cfg->max_body)
			cap = a->cfg->max_body;
		if ((p = realloc(u->u_data, cap)) == NULL)
			return MHD_NO;
		u->u_data = p;
		u->u_cap = cap;
	}
	memcpy(u->u_data + u->u_len, data, len);
	u->u_len += len;
	return MHD_YES;
}

static enum MHD_Result
send_end(struct api *a, struct MHD_Connection *c, struct upload *u)
{
	const char *ctype = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_CONTENT_TYPE);
	const char *key = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
	    "Idempotency-Key");
	const char *accept = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_ACCEPT);
	struct topics *topics;
	enum MHD_Result ret;
	const char *no;
	struct msg *m;
	int given;

	if (u->u_too_large)
		return answer_too_large(a, c);
	if (ctype != NULL && strlen(ctype) > MSG_CTYPE_MAX)
		return answer_text(c, MHD_HTTP_BAD_REQUEST,
		    "Error: Content-Type longer than 256 bytes.");
	if (ctype != NULL && !params_ctype_ok(ctype))
		return answer_text(c, MHD_HTTP_BAD_REQUEST,
		    "Error: Content-Type holds a control character.");
	if (key != NULL && !params_key_ok(key))
		return answer_text(c, MHD_HTTP_BAD_REQUEST, "Error: "
		    "Idempotency-Key must be 1 to 255 printable ASCII "
		    "characters.");
	if (request_topics(c, 0, &topics, &given, &ret) == -1)
		return ret;
	if ((no = refuse_publish(a, u->u_len)) != NULL) {
		topics_unref(topics);
		return answer_busy(c, no);
	}
	if ((m = msg_new(NULL, ctype, u->u_data, u->u_len)) == NULL) {
		topics_unref(topics);
		return answer_busy(c, "Error: Out of memory, retry later.");
	}
	msg_set_topics(m, topics);
	free(u->u_data);
	u->u_data = NULL;
	u->u_json = params_wants_json(accept);
	u->u_req.r_type = REQ_PUBLISH;
	u->u_req.r_msg = m;
	if (key != NULL) {
		snprintf(u->u_key, sizeof(u->u_key), "%s", key);
		u->u_req.r_key = u->u_key;
	}
	return wait_store(a, c, u);
}

/*
 * "success", or {"id": ..., "subscribers": N} for Accept: application/json;
 * the message's id in Webhook-Id (and Message-Id, as before).  A repeated
 * Idempotency-Key gets the first message's id and Idempotent-Replayed.
 */
static enum MHD_Result
answer_published(struct MHD_Connection *c, struct upload *u)
{
	struct store_req *req = &u->u_req;
	const char *id = req->r_repeat ? req->r_first : msg_id(req->r_msg);
	struct MHD_Response *r;
	enum MHD_Result ret;
	char body[160];
	int n;

	if (u->u_json)
		n = snprintf(body, sizeof(body), "{\"id\":\"%s\",\"subscribers\":"
		    "%ld%s}\n", id, req->r_fanout, req->r_repeat ?
		    ",\"duplicate\":true" : "");
	else
		n = snprintf(body, sizeof(body), "success");
	r = MHD_create_response_from_buffer((size_t)n, body,
	    MHD_RESPMEM_MUST_COPY);
	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, u->u_json ?
	    "application/json" : "text/plain; charset=utf-8");
	MHD_add_response_header(r, "Webhook-Id", id);
	MHD_add_response_header(r, "Message-Id", id);
	MHD_add_response_header(r, MHD_HTTP_HEADER_VARY, "Accept");
	if (req->r_repeat)
		MHD_add_response_header(r, "Idempotent-Replayed", "true");
	ret = MHD_queue_response(c, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

/* GET, DELETE /deadLetters and POST /deadLetters/replay. */
static enum MHD_Result
handle_dead(struct api *a, struct MHD_Connection *c, enum endpoint ep,
    const char *method, void **con_cls)
{
	const char *address = query(c, "address"), *id = query(c, "id");
	const char *limit = query(c, "limit"), *format = query(c, "format");
	enum listing_format f = LISTING_TEXT;
	struct upload *u;
	long n = PARAMS_LIMIT_DEFAULT;

	if (address != NULL && *address == '\0')
		address = NULL;
	if (id != NULL && *id == '\0')
		id = NULL;
	if (limit != NULL && params_limit(limit, &n) == -1)
		return answer_text(c, MHD_HTTP_BAD_REQUEST,
		    "Error: limit must be a number from 1 to 100000.");
	if (strcmp(method, "DELETE") == 0 || ep == EP_REPLAY) {
		if (address == NULL && id == NULL)
			return answer_text(c, MHD_HTTP_BAD_REQUEST,
			    "Error: address or id required.");
	} else if (listing_negotiate(format, MHD_lookup_connection_value(c,
	    MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT), &f) == -1)
		return answer_text(c, MHD_HTTP_BAD_REQUEST,
		    "Error: Unknown format (use text or json).");
	if ((u = upload_new(ep, con_cls)) == NULL)
		return answer_busy(c, "Error: Out of memory, retry later.");
	/* The query strings live as long as the connection's request. */
	u->u_req.r_address = address;
	u->u_req.r_id = id;
	u->u_req.r_limit = n;
	u->u_req.r_json = f == LISTING_JSON;
	if (ep == EP_REPLAY)
		u->u_req.r_type = REQ_DL_REPLAY;
	else if (strcmp(method, "DELETE") == 0)
		u->u_req.r_type = REQ_DL_PURGE;
	else
		u->u_req.r_type = REQ_DL_LIST;
	return wait_store(a, c, u);
}

/* The answer to a request the store has done. */
static enum MHD_Result
answer_stored(struct api *a, struct MHD_Connection *c, struct upload *u)
{
	struct store_req *req = &u->u_req;
	char la[LOG_VALUE_MAX], li[LOG_VALUE_MAX];
	char *body;
	size_t len;

	switch (req->r_status) {
	case STORE_OK:
		break;
	case STORE_FULL:
		return answer_busy(c, "Error: Disk full, retry later.");
	case STORE_CLOSED:
		return answer_busy(c, "Error: Shutting down, retry later.");
	case STORE_CONFLICT:
		return answer_fmt(c, MHD_HTTP_CONFLICT, "Error: %.300s is not "
		    "registered.", req->r_address);
	case STORE_ERROR:
	default:
		return answer_busy(c, "Error: Store failed, retry later.");
	}
	switch (req->r_type) {
	case REQ_PUBLISH:
		if (req->r_repeat)
			log_debug("message repeated", "message=%s",
			    req->r_first);
		else
			log_debug("message accepted", "message=%s seq=%llu "
			    "bytes=%zu topics=%s", msg_id(req->r_msg),
			    (unsigned long long)msg_seq(req->r_msg),
			    msg_len(req->r_msg),
			    topics_text(msg_topics(req->r_msg)));
		return answer_published(c, u);
	case REQ_SYNC:
		return answer_success(a, c);
	case REQ_DL_LIST:
		if ((body = deadletters_render(req->r_dead, req->r_ndead,
		    req->r_json, &len)) == NULL)
			return answer_busy(c, "Error: Store failed, retry later.");
		return answer(c, MHD_HTTP_OK, req->r_json ? "application/json" :
		    "text/plain; charset=utf-8", body, len,
		    MHD_RESPMEM_MUST_FREE, MHD_HTTP_HEADER_VARY, "Accept");
	case REQ_DL_REPLAY:
		log_info("dead letters replayed", "address=%s id=%s count=%ld",
		    log_value(la, sizeof(la), req->r_address ? req->r_address :
		    "-"), log_value(li, sizeof(li), req->r_id ? req->r_id :
		    "-"), req->r_count);
		return answer_fmt(c, MHD_HTTP_OK, "replayed %ld\n", req->r_count);
	case REQ_DL_PURGE:
		log_info("dead letters purged", "address=%s id=%s count=%ld",
		    log_value(la, sizeof(la), req->r_address ? req->r_address :
		    "-"), log_value(li, sizeof(li), req->r_id ? req->r_id :
		    "-"), req->r_count);
		return answer_fmt(c, MHD_HTTP_OK, "purged %ld\n", req->r_count);
	case REQ_CONFIG:		/* the store's own, never a client's */
		break;
	}
	return MHD_NO;
}

static struct upload bodiless[] = {
	[EP_REGISTER] = { .u_ep = EP_REGISTER, .u_static = 1 },
	[EP_DEREGISTER] = { .u_ep = EP_DEREGISTER, .u_static = 1 },
	[EP_LIST] = { .u_ep = EP_LIST, .u_static = 1 },
	[EP_DEAD] = { .u_ep = EP_DEAD, .u_static = 1 },
	[EP_REPLAY] = { .u_ep = EP_REPLAY, .u_static = 1 },
	[EP_METRICS] = { .u_ep = EP_METRICS, .u_static = 1 },
	[EP_STATS] = { .u_ep = EP_STATS, .u_static = 1 },
	[EP_HEALTHZ] = { .u_ep = EP_HEALTHZ, .u_static = 1 },
	[EP_READYZ] = { .u_ep = EP_READYZ, .u_static = 1 },
	[EP_PAGE] = { .u_ep = EP_PAGE, .u_static = 1 },
	[EP_SCRIPT] = { .u_ep = EP_SCRIPT, .u_static = 1 },
	[EP_STYLE] = { .u_ep = EP_STYLE, .u_static = 1 },
};

/* The connection's entry in the conns table, NULL if it has none. */
static struct conn *
conn_of(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci;

	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return ci != NULL ? ci->socket_context : NULL;
}

/* libmicrohttpd's accept policy: room at max_connections (conns_admit). */
static enum MHD_Result
api_accept(void *cls, const struct sockaddr *sa, socklen_t len)
{
	struct api *a = cls;

	(void)sa;
	(void)len;
	return conns_admit(a->conns, clock_mono_ms()) ? MHD_YES : MHD_NO;
}

/* A connection accepted or closing; before its socket is closed. */
static void
api_connection(void *cls, struct MHD_Connection *c, void **socket_context,
    enum MHD_ConnectionNotificationCode toe)
{
	const union MHD_ConnectionInfo *ci;
	struct api *a = cls;

	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
		*socket_context = ci == NULL ? NULL :
		    conns_open(a->conns, ci->connect_fd, clock_mono_ms());
	} else {
		conns_close(a->conns, *socket_context);
		*socket_context = NULL;
	}
}

/*
 * The request line is in (libmicrohttpd's URI logger, which is how it
 * tells that a kept-alive connection has begun its next request).  The
 * NULL returned leaves the handler's *con_cls NULL on its first call.
 */
static void *
api_request_line(void *cls, const char *uri, struct MHD_Connection *c)
{
	(void)cls;
	(void)uri;
	conn_request_line(conn_of(c), clock_mono_ms());
	return NULL;
}

static struct conns_limits
limits_of(const struct config *cfg)
{
	return (struct conns_limits){
		.cl_header_ms = cfg->header_timeout * 1000,
		.cl_idle_ms = cfg->client_timeout * 1000,
		.cl_body_ms = cfg->body_timeout * 1000,
		.cl_body_rate = cfg->body_min_rate,
	};
}

/* The sweeper wakes at the next deadline, and at least once a second. */
static int64_t
sweep_due(void *arg, int64_t now)
{
	struct api *a = arg;

	return a->sweep_next != 0 ? a->sweep_next : now;
}

/*
 * Cuts what is late, then logs what was cut or refused: one line of each
 * kind a second at most, with how many since the last line.
 */
static void
sweep_run(void *arg)
{
	struct api *a = arg;
	struct conns_counts n;
	int64_t now = clock_mono_ms();

	a->sweep_next = conns_sweep(a->conns, now);
	if (now - a->swept_logged < 1000)
		return;
	conns_take_counts(a->conns, &n);
	if (n.cc_header + n.cc_body + n.cc_idle > 0)
		log_warnx("slow requests cut", "headers=%ld body=%ld idle=%ld",
		    n.cc_header, n.cc_body, n.cc_idle);
	if (n.cc_evicted + n.cc_refused + n.cc_per_ip > 0)
		log_warnx("connection limit reached", "cut_oldest=%ld "
		    "refused=%ld refused_per_ip=%ld", n.cc_evicted,
		    n.cc_refused, n.cc_per_ip);
	a->swept_logged = now;
}

/* One call for a request: *EP is set to the route it is for, or EP_OTHER. */
static enum MHD_Result
api_serve(struct api *a, struct MHD_Connection *c, const char *url,
    const char *method, const char *data, size_t *data_size, void **con_cls,
    enum endpoint *epp)
{
	struct upload *u = *con_cls;
	enum auth_verdict v;
	enum endpoint ep;
	size_t len;

	if (u != NULL) {
		*epp = u->u_ep;
		len = *data_size;
		*data_size = 0;		/* always: everything offered is consumed */
		if (!u->u_static && atomic_load(&u->u_waiting) != 0)
			return atomic_load(&u->u_waiting) == 2 ?
			    answer_stored(a, c, u) : MHD_YES;
		switch (u->u_ep) {
		case EP_SEND:
			if (len > 0)
				return send_data(a, u, data, len);
			return send_end(a, c, u);
		case EP_REGISTER:
			return len > 0 ? MHD_YES : handle_register(a, c,
			    con_cls);
		case EP_DEREGISTER:
			return len > 0 ? MHD_YES : handle_deregister(a, c,
			    con_cls);
		case EP_LIST:
			return len > 0 ? MHD_YES : handle_list(a, c);
		case EP_DEAD:
		case EP_REPLAY:
			return len > 0 ? MHD_YES : handle_dead(a, c, u->u_ep,
			    method, con_cls);
		case EP_METRICS:
			return len > 0 ? MHD_YES : handle_metrics(a, c);
		case EP_STATS:
			return len > 0 ? MHD_YES : handle_stats(a, c);
		case EP_HEALTHZ:
			return len > 0 ? MHD_YES : answer_text(c, MHD_HTTP_OK,
			    "ok\n");
		case EP_READYZ:
			return len > 0 ? MHD_YES : handle_readyz(a, c);
		case EP_PAGE:
		case EP_SCRIPT:
		case EP_STYLE:
			return len > 0 ? MHD_YES : MHD_queue_response(c,
			    MHD_HTTP_OK, a->files[parts[u->u_ep]]);
		case EP_OTHER:
			break;
		}
		return MHD_NO;
	}

	url = params_path(url);
	for (ep = 0; ep < EP_OTHER; ep++)
		if (strcmp(url, routes[ep].path) == 0)
			break;
	*epp = ep;
	if (ep == EP_OTHER)
		return answer_text(c, MHD_HTTP_NOT_FOUND,
		    "404 page not found\n");
	if (!params_method_allowed(routes[ep].allow, method))
		return answer(c, MHD_HTTP_METHOD_NOT_ALLOWED,
		    "text/plain; charset=utf-8", routes[ep].wrong_method,
		    strlen(routes[ep].wrong_method), MHD_RESPMEM_PERSISTENT,
		    MHD_HTTP_HEADER_ALLOW, routes[ep].allow);
	if (auth_cross_site(method, MHD_lookup_connection_value(c,
	    MHD_HEADER_KIND, "Sec-Fetch-Site"), MHD_lookup_connection_value(c,
	    MHD_HEADER_KIND, MHD_HTTP_HEADER_ORIGIN),
	    MHD_lookup_connection_value(c, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_HOST)))
		return answer_cross_site(c, ep);
	v = auth_check(a->auth, routes[ep].scope, MHD_lookup_connection_value(c,
	    MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION));
	if (v == AUTH_ERROR)
		return answer_busy(c, "Error: Out of memory, retry later.");
	if (v != AUTH_OK)
		return answer_unauthorized(c, ep, v);
	if (ep == EP_SEND)
		return send_begin(a, c, con_cls);
	*con_cls = &bodiless[ep];
	return MHD_YES;
}

/*
 * libmicrohttpd's handler.  Each answer is counted once, by its route and
 * its status: libmicrohttpd calls the handler no more for a request once a
 * response is queued, so a status on the connection after a call is the
 * one that call queued.  Every call runs with the configuration and
 * tokens of one moment: api_reload() swaps them under the write lock,
 * never under a handler.
 */
static enum MHD_Result
api_handle(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *data,
    size_t *data_size, void **con_cls)
{
	const union MHD_ConnectionInfo *ci;
	struct api *a = cls;
	enum endpoint ep = EP_OTHER;
	enum MHD_Result ret;

	(void)version;
	conn_handler_call(conn_of(c), *data_size, clock_mono_ms());
	pthread_rwlock_rdlock(&a->conf_lock);
	ret = api_serve(a, c, url, method, data, data_size, con_cls, &ep);
	pthread_rwlock_unlock(&a->conf_lock);
	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_HTTP_STATUS);
	if (ci != NULL && ci->http_status != 0)
		metrics_http(ep, ci->http_status);
	return ret;
}

static void
api_completed(void *cls, struct MHD_Connection *c, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct upload *u = *con_cls;

	(void)cls;
	(void)toe;
	conn_answered(conn_of(c), clock_mono_ms());
	if (u != NULL && !u->u_static) {
		free(u->u_data);
		msg_unref(u->u_req.r_msg);
		store_req_release(&u->u_req);
		free(u);
		*con_cls = NULL;
	}
}

/*
 * libmicrohttpd's messages.  Most are about one client's connection (it
 * closed mid-request, it sent something malformed), so a flood of clients
 * would make a flood of lines: one line a second at most, the latest
 * message with how many there were since the last line.
 */
static void
api_mhd_log(void *cls, const char *fmt, va_list ap)
{
	static struct refusals lines;
	char buf[512], lv[LOG_VALUE_MAX];
	struct api *a = cls;
	long count;
	size_t n;

	/*
	 * Once for each connection it refuses: counted, and logged by the
	 * sweeper once a second.  hookcast's accept policy (conns_admit)
	 * keeps the total, so in libmicrohttpd's words this is the per-IP
	 * limit.
	 */
	if (strncmp(fmt, "Server reached connection limit", 31) == 0) {
		if (a->conns != NULL)
			conns_refused_per_ip(a->conns);
		return;
	}
	if ((count = refusal_to_log(&lines)) == 0)
		return;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	n = strlen(buf);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	log_warnx("http", "detail=%s lines=%ld", log_value(lv, sizeof(lv), buf),
	    count);
}

/* Resolves cfg->listen ("host:port", "[v6]:port") to one socket address. */
static int
resolve_listen(const char *listen, struct sockaddr_storage *ss)
{
	char host[256], *port, la[LOG_VALUE_MAX], lv[LOG_VALUE_MAX];
	struct addrinfo hints, *res;
	int rc;

	snprintf(host, sizeof(host), "%s", listen);
	if ((port = strrchr(host, ':')) == NULL)
		return -1;
	*port++ = '\0';
	if (host[0] == '[') {
		size_t n = strlen(host);

		if (n < 2 || host[n - 1] != ']')
			return -1;
		host[n - 1] = '\0';
		memmove(host, host + 1, n - 1);
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	if ((rc = getaddrinfo(host, port, &hints, &res)) != 0) {
		log_error("cannot resolve listen address", "listen=%s "
		    "error=%s", log_value(la, sizeof(la), listen),
		    log_value(lv, sizeof(lv), gai_strerror(rc)));
		return -1;
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	freeaddrinfo(res);
	return 0;
}

/*
 * A listening socket on SS, its address with the port it got in BOUND.
 * hookcast binds it rather than libmicrohttpd so that its own address is
 * known before the first request can arrive (egress_is_self).
 */
static int
open_listen(const char *where, const struct sockaddr_storage *ss,
    struct sockaddr_storage *bound)
{
	socklen_t len = ss->ss_family == AF_INET6 ?
	    sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
	char la[LOG_VALUE_MAX], lv[LOG_VALUE_MAX];
	int fd, on = 1;

	fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		goto fail;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) == -1 ||
	    (ss->ss_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6,
	    IPV6_V6ONLY, &on, sizeof(on)) == -1) ||
	    bind(fd, (const struct sockaddr *)ss, len) == -1 ||
	    listen(fd, SOMAXCONN) == -1 ||
	    getsockname(fd, (struct sockaddr *)bound, &len) == -1)
		goto fail;
	return fd;
fail:
	log_error("cannot listen", "listen=%s error=%s",
	    log_value(la, sizeof(la), where),
	    log_value(lv, sizeof(lv), strerror(errno)));
	if (fd != -1)
		close(fd);
	return -1;
}

/* Listening beyond loopback with a scope open to anyone deserves a warning. */
static void
warn_exposed(const struct api *a)
{
	char scopes[64], lv[LOG_VALUE_MAX];

	if (auth_exposed(a->auth, (const struct sockaddr *)&a->self, scopes,
	    sizeof(scopes)) > 0)
		log_warnx("endpoints open to the network", "listen=%s "
		    "open_scopes=%s hint=\"set publish_token, subscribe_token "
		    "and admin_token, or listen on loopback\"",
		    log_value(lv, sizeof(lv), a->cfg->listen), scopes);
}

/* The access tokens CFG sets, as auth_new() takes them. */
static struct auth *
auth_of(const struct config *cfg)
{
	const char *tokens[AUTH_SCOPES] = {
		[AUTH_PUBLISH] = cfg->publish_token,
		[AUTH_SUBSCRIBE] = cfg->subscribe_token,
		[AUTH_ADMIN] = cfg->admin_token,
	};

	return auth_new(tokens);
}

struct api *
api_open(const struct config *cfg)
{
	static const char ok[] = "success";
	struct conns_limits lim;
	pthread_rwlockattr_t attr;
	struct sockaddr_storage ss;
	char lv[LOG_VALUE_MAX];
	struct api *a;

	if ((a = calloc(1, sizeof(*a))) == NULL)
		return NULL;
	a->cfg = cfg;
	a->fd = -1;
	/* A reload must not wait behind a steady stream of requests. */
	pthread_rwlockattr_init(&attr);
	pthread_rwlockattr_setkind_np(&attr,
	    PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&a->conf_lock, &attr);
	pthread_rwlockattr_destroy(&attr);
	a->success = MHD_create_response_from_buffer(sizeof(ok) - 1,
	    (void *)(uintptr_t)ok, MHD_RESPMEM_PERSISTENT);
	if (a->success == NULL)
		goto fail;
	MHD_add_response_header(a->success, MHD_HTTP_HEADER_CONTENT_TYPE,
	    "text/plain; charset=utf-8");
	for (int i = 0; i < DASHBOARD_PARTS; i++) {
		const struct dashboard_file *f = dashboard_file(i);

		a->files[i] = MHD_create_response_from_buffer((size_t)(f->df_end -
		    f->df_data), (void *)(uintptr_t)f->df_data,
		    MHD_RESPMEM_PERSISTENT);
		if (a->files[i] == NULL)
			goto fail;
		MHD_add_response_header(a->files[i],
		    MHD_HTTP_HEADER_CONTENT_TYPE, f->df_ctype);
		/* The page also answers /listSubscribers, by Accept. */
		if (i == DASHBOARD_PAGE)
			MHD_add_response_header(a->files[i],
			    MHD_HTTP_HEADER_VARY, "Accept");
		add_page_headers(a->files[i], i == DASHBOARD_PAGE ?
		    DASHBOARD_CSP : NULL);
	}
	if ((a->auth = auth_of(cfg)) == NULL)
		goto fail;
	if (cfg->tls_cert[0] != '\0') {
		if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
			log_error("cannot serve HTTPS: this libmicrohttpd has no "
			    "TLS support", "tls_cert=%s",
			    log_value(lv, sizeof(lv), cfg->tls_cert));
			goto fail;
		}
		if ((a->tls = tls_load(cfg->tls_cert, cfg->tls_key)) == NULL)
			goto fail;
	}
	lim = limits_of(cfg);
	if ((a->conns = conns_new(cfg->max_connections, &lim)) == NULL)
		goto fail;
	if (resolve_listen(cfg->listen, &ss) == -1 ||
	    (a->fd = open_listen(cfg->listen, &ss, &a->self)) == -1)
		goto fail;
	return a;

fail:
	api_stop(a);
	return NULL;
}

int
api_run(struct api *a, const struct api_parts *p)
{
	struct MHD_OptionItem tls[] = {
		{ MHD_OPTION_END, 0, NULL },	/* filled in for HTTPS */
		{ MHD_OPTION_END, 0, NULL },
		{ MHD_OPTION_END, 0, NULL },
		{ MHD_OPTION_END, 0, NULL },
	};
	const struct config *cfg = a->cfg;
	char host[INET6_ADDRSTRLEN], lv[LOG_VALUE_MAX];
	unsigned int flags;

	a->subs = p->subs;
	a->store = p->store;
	a->deliver = p->deliver;
	a->stats = p->stats;
	flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC |
	    MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME;
	if (a->self.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	if (a->tls != NULL) {
		flags |= MHD_USE_TLS;
		tls[0] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_CERT, 0,
		    (void *)(uintptr_t)tls_cert(a->tls) };
		tls[1] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_KEY, 0,
		    (void *)(uintptr_t)tls_key(a->tls) };
		/* TLS 1.2 and later: GnuTLS's default still has 1.0 and 1.1. */
		tls[2] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_PRIORITIES, 0,
		    (void *)(uintptr_t)"NORMAL:-VERS-TLS1.0:-VERS-TLS1.1:"
		    "-VERS-DTLS1.0" };
	}
	/*
	 * max_connections is kept by the accept policy (api_accept), which
	 * can make room; libmicrohttpd splits its own limit between its
	 * threads, so that one is only a backstop, set past anything the
	 * policy admits.
	 */
	a->daemon = MHD_start_daemon(flags, 0, api_accept, a, api_handle, a,
	    MHD_OPTION_EXTERNAL_LOGGER, api_mhd_log, a,
	    MHD_OPTION_LISTEN_SOCKET, a->fd,
	    MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)cfg->http_threads,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)cfg->client_timeout,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned int)((cfg->max_connections +
	    CONNS_SLACK) * cfg->http_threads),
	    MHD_OPTION_PER_IP_CONNECTION_LIMIT,
	    (unsigned int)cfg->max_conns_per_ip,
	    MHD_OPTION_NOTIFY_CONNECTION, api_connection, a,
	    MHD_OPTION_URI_LOG_CALLBACK, api_request_line, a,
	    MHD_OPTION_NOTIFY_COMPLETED, api_completed, a,
	    MHD_OPTION_ARRAY, tls,
	    MHD_OPTION_END);
	if (a->daemon == NULL) {
		log_error("cannot listen", "listen=%s",
		    log_value(lv, sizeof(lv), cfg->listen));
		return -1;
	}
	a->fd = -1;			/* libmicrohttpd's now */
	if ((a->sweeper = ticker_start("conns", sweep_due, sweep_run,
	    a)) == NULL)
		return -1;
	if (a->self.ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&a->self)->sin6_addr,
		    host, sizeof(host));
	else
		inet_ntop(AF_INET, &((struct sockaddr_in *)&a->self)->sin_addr,
		    host, sizeof(host));
	log_info("listening", a->self.ss_family == AF_INET6 ?
	    "listen=[%s]:%u%s" : "listen=%s:%u%s", host, api_port(a),
	    a->tls != NULL ? " tls=yes" : "");
	warn_exposed(a);
	return 0;
}

struct api *
api_start(const struct config *cfg, const struct api_parts *p)
{
	struct api *a;

	if ((a = api_open(cfg)) == NULL)
		return NULL;
	if (api_run(a, p) == -1) {
		api_stop(a);
		return NULL;
	}
	return a;
}

int
api_reload(struct api *a, const struct config *cfg)
{
	const struct config *old_ref;
	struct auth *auth, *old_auth;
	struct conns_limits lim;

	if ((auth = auth_of(cfg)) == NULL)
		return -1;
	pthread_rwlock_wrlock(&a->conf_lock);
	old_ref = a->cfg_ref;
	old_auth = a->auth;
	a->cfg = a->cfg_ref = config_hold(cfg);
	a->auth = auth;
	pthread_rwlock_unlock(&a->conf_lock);
	lim = limits_of(cfg);
	conns_set_limits(a->conns, &lim);
	auth_free(old_auth);
	config_release(old_ref);
	warn_exposed(a);
	return 0;
}

const struct sockaddr *
api_self(const struct api *a)
{
	return (const struct sockaddr *)&a->self;
}

unsigned int
api_port(const struct api *a)
{
	if (a->self.ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)&a->self)->sin6_port);
	return ntohs(((const struct sockaddr_in *)&a->self)->sin_port);
}

void
api_stop(struct api *a)
{
	if (a == NULL)
		return;
	ticker_stop(a->sweeper);
	if (a->daemon != NULL)
		MHD_stop_daemon(a->daemon);
	conns_free(a->conns);
	if (a->fd != -1)
		close(a->fd);
	if (a->success != NULL)
		MHD_destroy_response(a->success);
	for (int i = 0; i < DASHBOARD_PARTS; i++)
		if (a->files[i] != NULL)
			MHD_destroy_response(a->files[i]);
	auth_free(a->auth);
	tls_free(a->tls);
	config_release(a->cfg_ref);
	pthread_rwlock_destroy(&a->conf_lock);
	free(a);
}

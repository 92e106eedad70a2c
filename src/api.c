/*
 * api.c: the HTTP server: libmicrohttpd's daemon, the endpoints, a request's calls.
 *
 * The listening socket is api_listen.c and the auth gate api_gate.c; the
 * handlers, grouped by resource, are api_subs.c, api_send.c, api_dead.c
 * and api_ops.c, and see the server only through http.h.
 *
 * DESIGN
 * Threads: libmicrohttpd runs http_threads epoll threads of its own; on
 * them it calls api_handle(), hence every handler, and the connection hooks
 * (api_accept, api_connection, api_request_line, api_completed).  A handler
 * parses and validates, then hands over: a registration goes into the
 * subscriber map (subs.c), a message to the store's writer thread.  What
 * must be durable before it is answered (a publish, a new registration, a
 * removal, the dead-letter endpoints) suspends its connection (http_wait),
 * and the writer resumes it once committed; nothing here waits on the
 * network or the disk.  A ticker thread (the sweeper) cuts slow
 * connections; api_reload() runs on main's thread.
 *
 * Locks: every handler call runs under sv_conf_lock's read lock, which
 * api_reload() takes for writing to swap the configuration and tokens, so
 * a call sees one moment's.  What handlers take below it, and the order
 * of every lock in the daemon, is in src/README.md.
 *
 * Access control: each endpoint names the scope it needs (endpoints[]).
 * With the headers in, a request is judged in this order: its path (404),
 * its method (405), whether a page of another origin sent it (403,
 * auth_cross_site), its token (401), then everything else; so a refused
 * request is answered before any of its body reaches a handler, and
 * changes nothing.
 *
 * Bodies: a request body is read incrementally into a buffer that never
 * grows past max_body (http_req_append); a larger body, announced or
 * chunked, gets 413 as soon as it is known to be too large.  An endpoint
 * that wants no body discards it.
 *
 * Every answer is counted (metrics.c) by its endpoint and status.  The
 * dashboard's three files are embedded (dashboard.c) and each answered
 * with one response made at start and shared by every request.
 *
 * Slow clients: libmicrohttpd's callbacks tell conns.c each connection's
 * progress (accepted, request line, handler calls, answered, closed) and
 * its accept policy asks it for room at max_connections; the sweeper cuts
 * what is past its deadline.  conns.c's DESIGN block says why that is the
 * way libmicrohttpd 0.9.75 allows.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <microhttpd.h>

#include "api.h"
#include "api_dead.h"
#include "api_gate.h"
#include "api_listen.h"
#include "api_ops.h"
#include "api_send.h"
#include "api_subs.h"
#include "auth.h"
#include "clock.h"
#include "conns.h"
#include "dashboard.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "params.h"
#include "ticker.h"
#include "tls.h"

/* EP_OTHER: a path that is no endpoint's, for the request counter. */
enum endpoint_id {
	EP_REGISTER,
	EP_DEREGISTER,
	EP_SEND,
	EP_SEND_BATCH,
	EP_LIST,
	EP_DEAD,
	EP_REPLAY,
	EP_METRICS,
	EP_STATS,
	EP_HEALTHZ,
	EP_READYZ,
	EP_PAGE,
	EP_SCRIPT,
	EP_STYLE,
	EP_OTHER
};

static const struct endpoint {
	const char *ep_path;
	const char *ep_allow;	     /* the methods it answers */
	const char *ep_wrong_method; /* the seed's text */
	enum auth_scope ep_scope;    /* whose token it needs */
	/*
	 * With the headers in and the gate passed: takes the request for
	 * its body (http_req_new) or answers.  NULL: any body is discarded.
	 */
	http_handler *ep_begin;
	http_handler *ep_serve; /* with the body in */
} endpoints[] = {
	[EP_REGISTER] = { "/registerAndKeepAlive", "POST",
	    "Error: Only POST accepted", AUTH_SUBSCRIBE, NULL,
	    api_subs_register },
	[EP_DEREGISTER] = { "/deregister", "DELETE",
	    "Error: Only DELETE accepted", AUTH_SUBSCRIBE, NULL,
	    api_subs_deregister },
	[EP_SEND] = { "/sendMessage", "POST", "Error: Only POST accepted",
	    AUTH_PUBLISH, api_send_begin, api_send_end },
	[EP_SEND_BATCH] = { "/sendMessages", "POST",
	    "Error: Only POST accepted", AUTH_PUBLISH, api_send_begin,
	    api_send_batch_end },
	[EP_LIST] = { "/listSubscribers", "GET, HEAD",
	    "Error: Only GET accepted", AUTH_ADMIN, NULL, api_subs_list },
	[EP_DEAD] = { "/deadLetters", "GET, HEAD, DELETE",
	    "Error: Only GET or DELETE accepted", AUTH_ADMIN, NULL,
	    api_dead_serve },
	[EP_REPLAY] = { "/deadLetters/replay", "POST",
	    "Error: Only POST accepted", AUTH_ADMIN, NULL, api_dead_replay },
	[EP_METRICS] = { "/metrics", "GET, HEAD", "Error: Only GET accepted",
	    AUTH_ADMIN, NULL, api_ops_metrics },
	[EP_STATS] = { "/stats", "GET, HEAD", "Error: Only GET accepted",
	    AUTH_ADMIN, NULL, api_ops_stats },
	/* Probes carry no token, and what they answer tells nothing secret. */
	[EP_HEALTHZ] = { "/healthz", "GET, HEAD", "Error: Only GET accepted",
	    AUTH_PUBLIC, NULL, api_ops_healthz },
	[EP_READYZ] = { "/readyz", "GET, HEAD", "Error: Only GET accepted",
	    AUTH_PUBLIC, NULL, api_ops_readyz },
	/* The dashboard: it shows what the admin endpoints do. */
	[EP_PAGE] = { "/", "GET, HEAD", "Error: Only GET accepted", AUTH_ADMIN,
	    NULL, api_ops_page },
	[EP_SCRIPT] = { "/dashboard.js", "GET, HEAD",
	    "Error: Only GET accepted", AUTH_ADMIN, NULL, api_ops_script },
	[EP_STYLE] = { "/dashboard.css", "GET, HEAD",
	    "Error: Only GET accepted", AUTH_ADMIN, NULL, api_ops_style },
};

_Static_assert(sizeof(endpoints) / sizeof(endpoints[0]) == EP_OTHER,
    "an entry for every endpoint");
_Static_assert(EP_OTHER < METRICS_ENDPOINTS_MAX,
    "every endpoint and other fit the request counter");

/*
 * The requests of the endpoints without a body: read-only, shared by every
 * request of theirs, never freed.
 */
static struct http_req bodiless[] = {
	[EP_REGISTER] = { .hr_ep = EP_REGISTER, .hr_static = 1 },
	[EP_DEREGISTER] = { .hr_ep = EP_DEREGISTER, .hr_static = 1 },
	[EP_LIST] = { .hr_ep = EP_LIST, .hr_static = 1 },
	[EP_DEAD] = { .hr_ep = EP_DEAD, .hr_static = 1 },
	[EP_REPLAY] = { .hr_ep = EP_REPLAY, .hr_static = 1 },
	[EP_METRICS] = { .hr_ep = EP_METRICS, .hr_static = 1 },
	[EP_STATS] = { .hr_ep = EP_STATS, .hr_static = 1 },
	[EP_HEALTHZ] = { .hr_ep = EP_HEALTHZ, .hr_static = 1 },
	[EP_READYZ] = { .hr_ep = EP_READYZ, .hr_static = 1 },
	[EP_PAGE] = { .hr_ep = EP_PAGE, .hr_static = 1 },
	[EP_SCRIPT] = { .hr_ep = EP_SCRIPT, .hr_static = 1 },
	[EP_STYLE] = { .hr_ep = EP_STYLE, .hr_static = 1 },
};

struct api {
	/*
	 * What the handlers see.  he_cfg and sv_auth change on a reload,
	 * under the write lock; handlers read them under the read lock
	 * (api_handle).  sv_cfg_ref is the reference api_reload() took, NULL
	 * for the caller's first one.
	 */
	struct http_env sv_env;
	pthread_rwlock_t sv_conf_lock;
	const struct config *sv_cfg_ref;
	struct auth *sv_auth;
	struct MHD_Daemon *sv_daemon;
	struct tls *sv_tls; /* HTTPS: kept until the daemon stops */
	struct sockaddr_storage sv_self; /* where it listens, with its port */
	int sv_fd;		   /* listening, until libmicrohttpd has it */
	struct conns *sv_conns;	   /* deadlines and room: conns.c */
	struct ticker *sv_sweeper; /* runs conns_sweep */
	int64_t sv_sweep_next;	   /* the sweeper's: when to run */
	int64_t sv_swept_logged;   /* the sweeper's: last count line */
	const char *sv_labels[EP_OTHER + 1]; /* he_labels */
};

/*
 * With the headers in: the path (404), the method (405), then the gate
 * (api_gate_pass).  Sets CALL's endpoint (EP_OTHER: none).  0 when the
 * request may go on to it; otherwise -1 with the refusal's result in *ret.
 */
static int
check_request(struct api *a, struct http_call *call, const char *url,
    enum MHD_Result *ret)
{
	const struct endpoint *e;
	int i;

	url = params_path(url);
	for (i = 0; i < EP_OTHER; i++)
		if (strcmp(url, endpoints[i].ep_path) == 0)
			break;
	call->hc_ep = i;
	if (i == EP_OTHER) {
		*ret = http_text(call, MHD_HTTP_NOT_FOUND,
		    "404 page not found\n");
		return -1;
	}
	e = &endpoints[i];
	call->hc_path = e->ep_path;
	if (!params_method_allowed(e->ep_allow, call->hc_method)) {
		*ret = http_answer(call, MHD_HTTP_METHOD_NOT_ALLOWED, HTTP_TEXT,
		    e->ep_wrong_method, strlen(e->ep_wrong_method),
		    MHD_HTTP_HEADER_ALLOW, e->ep_allow);
		return -1;
	}
	return api_gate_pass(call, a->sv_auth, e->ep_scope, ret);
}

/*
 * One call for a request.  The first passes the gate and begins its
 * endpoint; the next ones bring its body, then its end; one that waits on
 * the store is called again once the store is done.
 */
static enum MHD_Result
api_serve(struct api *a, struct http_call *call, const char *url,
    const char *data, size_t *data_size)
{
	struct http_req *rq = *call->hc_slot;
	enum MHD_Result ret;
	size_t len;

	if (rq == NULL) {
		if (check_request(a, call, url, &ret) == -1)
			return ret;
		if (endpoints[call->hc_ep].ep_begin != NULL)
			return endpoints[call->hc_ep].ep_begin(call);
		*call->hc_slot = &bodiless[call->hc_ep];
		return MHD_YES;
	}

	call->hc_ep = rq->hr_ep;
	call->hc_path = endpoints[rq->hr_ep].ep_path;
	len = *data_size;
	*data_size = 0; /* always: everything offered is consumed */
	switch (http_req_state(rq)) {
	case HTTP_READING:
		break;
	case HTTP_WAITING:
		return MHD_YES;
	case HTTP_STORED:
		return http_resume(call, rq);
	}
	if (len > 0)
		return rq->hr_static ? MHD_YES :
				       http_req_append(call, rq, data, len);
	if (rq->hr_too_large)
		return http_too_large(call);
	return endpoints[rq->hr_ep].ep_serve(call);
}

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
	return conns_admit(a->sv_conns, clock_mono_ms()) ? MHD_YES : MHD_NO;
}

/* A connection accepted or closing; before its socket is closed. */
static void
api_connection(void *cls, struct MHD_Connection *c, void **socket_context,
    enum MHD_ConnectionNotificationCode toe)
{
	const union MHD_ConnectionInfo *ci;
	struct api *a = cls;

	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		ci = MHD_get_connection_info(c,
		    MHD_CONNECTION_INFO_CONNECTION_FD);
		*socket_context = ci == NULL ?
		    NULL :
		    conns_open(a->sv_conns, ci->connect_fd, clock_mono_ms());
	} else {
		conns_close(a->sv_conns, *socket_context);
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

	return a->sv_sweep_next != 0 ? a->sv_sweep_next : now;
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

	a->sv_sweep_next = conns_sweep(a->sv_conns, now);
	if (now - a->sv_swept_logged < 1000)
		return;
	conns_take_counts(a->sv_conns, &n);
	if (n.cc_header + n.cc_body + n.cc_idle > 0)
		log_warnx("slow requests cut", "headers=%ld body=%ld idle=%ld",
		    n.cc_header, n.cc_body, n.cc_idle);
	if (n.cc_evicted + n.cc_refused + n.cc_per_ip > 0)
		log_warnx("connection limit reached",
		    "cut_oldest=%ld "
		    "refused=%ld refused_per_ip=%ld",
		    n.cc_evicted, n.cc_refused, n.cc_per_ip);
	a->sv_swept_logged = now;
}

/*
 * libmicrohttpd's handler.  Each answer is counted once, by its endpoint and
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
	struct http_call call = {
		.hc_conn = c,
		.hc_method = method,
		.hc_path = "other",
		.hc_ep = EP_OTHER,
		.hc_env = &a->sv_env,
		.hc_slot = con_cls,
	};
	enum MHD_Result ret;

	(void)version;
	conn_handler_call(conn_of(c), *data_size, clock_mono_ms());
	pthread_rwlock_rdlock(&a->sv_conf_lock);
	ret = api_serve(a, &call, url, data, data_size);
	pthread_rwlock_unlock(&a->sv_conf_lock);
	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_HTTP_STATUS);
	if (ci != NULL && ci->http_status != 0)
		metrics_http(call.hc_ep, ci->http_status);
	return ret;
}

static void
api_completed(void *cls, struct MHD_Connection *c, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)toe;
	conn_answered(conn_of(c), clock_mono_ms());
	http_req_free(*con_cls);
	*con_cls = NULL;
}

/*
 * libmicrohttpd's messages.  Most are about one client's connection (it
 * closed mid-request, it sent something malformed), so a flood of clients
 * would make a flood of lines: one line a second at most, the latest
 * message with how many there were since the last line.
 */
static void api_mhd_log(void *cls, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static void
api_mhd_log(void *cls, const char *fmt, va_list ap)
{
	static struct http_lograte lines;
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
		if (a->sv_conns != NULL)
			conns_refused_per_ip(a->sv_conns);
		return;
	}
	if ((count = http_lograte_due(&lines)) == 0)
		return;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	n = strlen(buf);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	log_warnx("http", "detail=%s lines=%ld", log_value(lv, sizeof(lv), buf),
	    count);
}

/* Listening beyond loopback with a scope open to anyone deserves a warning. */
static void
warn_exposed(const struct api *a)
{
	char scopes[64], lv[LOG_VALUE_MAX];

	if (auth_exposed(a->sv_auth, (const struct sockaddr *)&a->sv_self,
		scopes, sizeof(scopes)) > 0)
		log_warnx("endpoints open to the network",
		    "listen=%s "
		    "open_scopes=%s hint=\"set publish_token, subscribe_token "
		    "and admin_token, or listen on loopback\"",
		    log_value(lv, sizeof(lv), a->sv_env.he_cfg->listen),
		    scopes);
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

/* The answers made once, shared by every request: "success", the files. */
static int
make_shared(struct http_env *env)
{
	static const char ok[] = "success";
	const struct dashboard_file *f;

	env->he_success = MHD_create_response_from_buffer(sizeof(ok) - 1,
	    http_mhd_readonly(ok), MHD_RESPMEM_PERSISTENT);
	if (env->he_success == NULL)
		goto fail;
	MHD_add_response_header(env->he_success, MHD_HTTP_HEADER_CONTENT_TYPE,
	    HTTP_TEXT);
	for (int i = 0; i < DASHBOARD_PARTS; i++) {
		f = dashboard_file(i);
		env->he_files[i] = MHD_create_response_from_buffer(
		    (size_t)(f->df_end - f->df_data),
		    http_mhd_readonly(f->df_data), MHD_RESPMEM_PERSISTENT);
		if (env->he_files[i] == NULL)
			goto fail;
		MHD_add_response_header(env->he_files[i],
		    MHD_HTTP_HEADER_CONTENT_TYPE, f->df_ctype);
		/* The page also answers /listSubscribers, by Accept. */
		if (i == DASHBOARD_PAGE)
			MHD_add_response_header(env->he_files[i],
			    MHD_HTTP_HEADER_VARY, "Accept");
		http_page_headers(env->he_files[i],
		    i == DASHBOARD_PAGE ? DASHBOARD_CSP : NULL);
	}
	return 0;

fail:
	log_error("cannot start the API", "reason=nomem");
	return -1;
}

struct api *
api_open(const struct config *cfg)
{
	struct conns_limits lim;
	pthread_rwlockattr_t attr;
	char lv[LOG_VALUE_MAX];
	struct api *a;

	if ((a = calloc(1, sizeof(*a))) == NULL) {
		log_error("cannot start the API", "reason=nomem");
		return NULL;
	}
	a->sv_env.he_cfg = cfg;
	a->sv_env.he_self = (const struct sockaddr *)&a->sv_self;
	for (int i = 0; i < EP_OTHER; i++)
		a->sv_labels[i] = endpoints[i].ep_path;
	a->sv_labels[EP_OTHER] = "other";
	a->sv_env.he_labels = a->sv_labels;
	a->sv_env.he_nlabels = EP_OTHER + 1;
	a->sv_fd = -1;
	/* A reload must not wait behind a steady stream of requests. */
	pthread_rwlockattr_init(&attr);
	pthread_rwlockattr_setkind_np(&attr,
	    PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&a->sv_conf_lock, &attr);
	pthread_rwlockattr_destroy(&attr);
	if (make_shared(&a->sv_env) == -1)
		goto fail;
	if ((a->sv_auth = auth_of(cfg)) == NULL) {
		log_error("cannot start the API", "reason=nomem");
		goto fail;
	}
	if (cfg->tls_cert[0] != '\0') {
		if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
			log_error(
			    "cannot serve HTTPS: this libmicrohttpd has no "
			    "TLS support",
			    "tls_cert=%s",
			    log_value(lv, sizeof(lv), cfg->tls_cert));
			goto fail;
		}
		if ((a->sv_tls = tls_load(cfg->tls_cert, cfg->tls_key)) == NULL)
			goto fail;
	}
	lim = limits_of(cfg);
	if ((a->sv_conns = conns_new(cfg->max_connections, &lim)) == NULL) {
		log_error("cannot start the API", "reason=nomem");
		goto fail;
	}
	a->sv_env.he_conns = a->sv_conns;
	if ((a->sv_fd = api_listen_open(cfg->listen, &a->sv_self)) == -1)
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
		{ MHD_OPTION_END, 0, NULL }, /* filled in for HTTPS */
		{ MHD_OPTION_END, 0, NULL },
		{ MHD_OPTION_END, 0, NULL },
		{ MHD_OPTION_END, 0, NULL },
	};
	const struct config *cfg = a->sv_env.he_cfg;
	char where[API_LISTEN_NAMELEN], lv[LOG_VALUE_MAX];
	unsigned int flags;

	a->sv_env.he_subs = p->subs;
	a->sv_env.he_store = p->store;
	a->sv_env.he_deliver = p->deliver;
	a->sv_env.he_stats = p->stats;
	flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC |
	    MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME;
	if (a->sv_self.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	if (a->sv_tls != NULL) {
		flags |= MHD_USE_TLS;
		tls[0] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_CERT, 0,
			http_mhd_readonly(tls_cert(a->sv_tls)) };
		tls[1] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_KEY, 0,
			http_mhd_readonly(tls_key(a->sv_tls)) };
		/* TLS 1.2 and later: GnuTLS's default still has 1.0 and 1.1. */
		tls[2] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_PRIORITIES,
			0,
			http_mhd_readonly("NORMAL:-VERS-TLS1.0:-VERS-TLS1.1:"
					  "-VERS-DTLS1.0") };
	}
	/*
	 * max_connections is kept by the accept policy (api_accept), which
	 * can make room; libmicrohttpd splits its own limit between its
	 * threads, so that one is only a backstop, set past anything the
	 * policy admits.
	 */
	a->sv_daemon = MHD_start_daemon(flags, 0, api_accept, a, api_handle, a,
	    MHD_OPTION_EXTERNAL_LOGGER, api_mhd_log, a,
	    MHD_OPTION_LISTEN_SOCKET, a->sv_fd, MHD_OPTION_THREAD_POOL_SIZE,
	    (unsigned int)cfg->http_threads, MHD_OPTION_CONNECTION_TIMEOUT,
	    (unsigned int)cfg->client_timeout, MHD_OPTION_CONNECTION_LIMIT,
	    (unsigned int)((cfg->max_connections + CONNS_SLACK) *
		cfg->http_threads),
	    MHD_OPTION_PER_IP_CONNECTION_LIMIT,
	    (unsigned int)cfg->max_conns_per_ip, MHD_OPTION_NOTIFY_CONNECTION,
	    api_connection, a, MHD_OPTION_URI_LOG_CALLBACK, api_request_line, a,
	    MHD_OPTION_NOTIFY_COMPLETED, api_completed, a, MHD_OPTION_ARRAY,
	    tls, MHD_OPTION_END);
	if (a->sv_daemon == NULL) {
		log_error("cannot listen", "listen=%s",
		    log_value(lv, sizeof(lv), cfg->listen));
		return -1;
	}
	a->sv_fd = -1; /* libmicrohttpd's now */
	if ((a->sv_sweeper = ticker_start("conns", sweep_due, sweep_run, a)) ==
	    NULL)
		return -1;
	api_listen_name(&a->sv_self, where, sizeof(where));
	log_info("listening", "listen=%s%s", where,
	    a->sv_tls != NULL ? " tls=yes" : "");
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
	pthread_rwlock_wrlock(&a->sv_conf_lock);
	old_ref = a->sv_cfg_ref;
	old_auth = a->sv_auth;
	a->sv_env.he_cfg = a->sv_cfg_ref = config_hold(cfg);
	a->sv_auth = auth;
	pthread_rwlock_unlock(&a->sv_conf_lock);
	lim = limits_of(cfg);
	conns_set_limits(a->sv_conns, &lim);
	auth_free(old_auth);
	config_release(old_ref);
	warn_exposed(a);
	return 0;
}

const struct sockaddr *
api_self(const struct api *a)
{
	return (const struct sockaddr *)&a->sv_self;
}

unsigned int
api_port(const struct api *a)
{
	return api_listen_port(&a->sv_self);
}

void
api_stop(struct api *a)
{
	if (a == NULL)
		return;
	ticker_stop(a->sv_sweeper);
	if (a->sv_daemon != NULL)
		MHD_stop_daemon(a->sv_daemon);
	conns_free(a->sv_conns);
	if (a->sv_fd != -1)
		close(a->sv_fd);
	if (a->sv_env.he_success != NULL)
		MHD_destroy_response(a->sv_env.he_success);
	for (int i = 0; i < DASHBOARD_PARTS; i++)
		if (a->sv_env.he_files[i] != NULL)
			MHD_destroy_response(a->sv_env.he_files[i]);
	auth_free(a->sv_auth);
	tls_free(a->sv_tls);
	config_release(a->sv_cfg_ref);
	pthread_rwlock_destroy(&a->sv_conf_lock);
	free(a);
}

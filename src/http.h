/* http.h: what the server (api.c) hands a handler (api_*.c): the request, its state, and how to answer. */
#ifndef HOOKCAST_HTTP_H
#define HOOKCAST_HTTP_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "config.h"
#include "dashboard.h"
#include "store.h"
#include "topics.h"

struct batch;
struct conns;
struct deliver;
struct stats;
struct subs;

/*
 * The server's parts as every handler sees them.  The server owns it: it
 * changes he_cfg only under its write lock (api_reload), and a handler
 * runs under the read lock, so within one call it is one moment's.
 */
struct http_env {
	const struct config *he_cfg;
	struct subs *he_subs;
	struct store *he_store;
	struct deliver *he_deliver;	/* heartbeat, in flight */
	struct stats *he_stats;		/* /stats */
	struct conns *he_conns;		/* open connections */
	const struct sockaddr *he_self; /* where it listens, port too */
	/* Made at start and shared by every request: "success", the files. */
	struct MHD_Response *he_success;
	struct MHD_Response *he_files[DASHBOARD_PARTS];
	/* The request counter's labels: each endpoint's path, then "other". */
	const char *const *he_labels;
	size_t he_nlabels;
};

/* One call of libmicrohttpd's for a request, as the server hands it on. */
struct http_call {
	struct MHD_Connection *hc_conn;
	const char *hc_method;
	const char *hc_path; /* its endpoint's */
	int hc_ep;	     /* its endpoint: the server's index */
	const struct http_env *hc_env;
	void **hc_slot; /* con_cls: its http_req */
};

/*
 * An endpoint's handler: queues an answer (or suspends the connection) and
 * returns MHD_YES, or MHD_NO to close the connection.
 */
typedef enum MHD_Result http_handler(const struct http_call *call);

enum http_state {
	HTTP_READING, /* its body is arriving */
	HTTP_WAITING, /* handed to the store, connection suspended */
	HTTP_STORED,  /* the store is done: answer on the next call */
};

struct http_req;
/* What answers a request once the store is done with it (STORE_OK only). */
typedef enum MHD_Result http_stored(const struct http_call *call,
    struct http_req *rq);

/*
 * A request between its headers and its answer, in *hc_slot.  One whose
 * body is kept (/sendMessage) or that waits on the store has one of its
 * own (http_req_new); the others share the server's static ones
 * (hr_static), since they only discard whatever body a client sends.
 * Answering after the body is read keeps the connection alive for the
 * client's next request.
 */
struct http_req {
	int hr_ep;	  /* its endpoint: the server's index */
	int hr_static;	  /* shared: never written */
	int hr_json;	  /* answer in JSON */
	int hr_too_large; /* past max_body: 413 at its end */
	char *hr_body;	  /* what has arrived of it */
	size_t hr_len, hr_cap;
	char hr_key[256];	/* Idempotency-Key, "" none */
	struct batch *hr_batch; /* /sendMessages: hr_sreq.r_pubs' owner */
	/* Waiting on the store, with the connection suspended. */
	struct MHD_Connection *hr_conn;
	const struct http_env *hr_env;
	http_stored *hr_stored;
	atomic_int hr_state; /* enum http_state */
	struct store_req hr_sreq;
};

/* Bodies up to this size get their whole buffer at once (http_req_new). */
#define HTTP_PREALLOC_MAX ((size_t)64 * 1024)

/*
 * A request of its own for CALL's endpoint, in *hc_slot, with room for
 * ANNOUNCED body bytes up to HTTP_PREALLOC_MAX.  NULL (logged) if out of
 * memory, with *hc_slot unchanged.
 */
struct http_req *http_req_new(const struct http_call *call, size_t announced);
/*
 * Frees RQ, its body and what its store request holds.  NULL-safe; a
 * static one is left alone.
 */
void http_req_free(struct http_req *rq);
enum http_state http_req_state(const struct http_req *rq);
/*
 * LEN more body bytes.  Past max_body the body is dropped and the rest
 * only counted (hr_too_large: answer 413 at its end), since libmicrohttpd
 * 0.9.75 cannot answer in the middle of a body; MHD_NO, closing the
 * connection, once that goes on far past it, or if out of memory.
 */
enum MHD_Result http_req_append(const struct http_call *call,
    struct http_req *rq, const char *data, size_t len);

/*
 * Hands RQ->hr_sreq to the store (a publish with its count of subscribers,
 * a batch with each message's)
 * and suspends the connection until the store's writer is done with it;
 * STORED answers on the next call (http_resume).  libmicrohttpd's threads
 * serve other connections meanwhile.
 */
enum MHD_Result http_wait(const struct http_call *call, struct http_req *rq,
    http_stored *stored);
/* The answer to a request the store is done with: a failure, or RQ's STORED. */
enum MHD_Result http_resume(const struct http_call *call, struct http_req *rq);

/*
 * The query argument KEY, or the header NAME; NULL when absent.  Valid for
 * the request's life.
 */
const char *http_query(const struct http_call *call, const char *key);
const char *http_header(const struct http_call *call, const char *name);
/*
 * The request's topic arguments; PATTERNS allows "name.*" and "*" (a
 * subscriber's).  0 with *out set (NULL when none; *given says whether
 * any topic argument was there), or -1 with the 400 or 503 queued in *ret.
 */
int http_topics(const struct http_call *call, int patterns, struct topics **out,
    int *given, enum MHD_Result *ret);

/*
 * P as the void * that libmicrohttpd's API declares for memory it only
 * reads: a response body it is told is persistent (MHD_RESPMEM_PERSISTENT)
 * and an option's string (MHD_OPTION_HTTPS_MEM_CERT and the like).  The one
 * place hookcast drops a const for libmicrohttpd, and only for memory it
 * neither writes nor frees.
 */
void *http_mhd_readonly(const void *p);

#define HTTP_TEXT  "text/plain; charset=utf-8"
#define HTTP_NOMEM "Error: Out of memory, retry later."

/*
 * Queues an answer of LEN bytes of BODY, which outlives it (a literal, a
 * static) and is not copied, with one more header HDR (or NULL).
 */
enum MHD_Result http_answer(const struct http_call *call, unsigned int status,
    const char *ctype, const char *body, size_t len, const char *hdr,
    const char *value);
/* The same with BODY from malloc, which is the answer's: freed even on failure. */
enum MHD_Result http_answer_free(const struct http_call *call,
    unsigned int status, const char *ctype, char *body, size_t len,
    const char *hdr, const char *value);
/* Plain text: TEXT is a literal, which the answer points at uncopied. */
enum MHD_Result http_text(const struct http_call *call, unsigned int status,
    const char *text);
/* Plain text, formatted (up to 511 bytes). */
enum MHD_Result http_fmt(const struct http_call *call, unsigned int status,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* 503 with Retry-After: 1; TEXT is a literal. */
enum MHD_Result http_busy(const struct http_call *call, const char *text);
/* 503, logged as out of memory in FUNC (the caller's __func__). */
enum MHD_Result http_nomem(const struct http_call *call, const char *func);
/*
 * No answer could be made (out of memory): logged as in FUNC, and MHD_NO,
 * which closes the connection.
 */
enum MHD_Result http_unanswered(const struct http_call *call, const char *func);
/* 200 "success", the one shared answer. */
enum MHD_Result http_success(const struct http_call *call);
/* 413, naming max_body. */
enum MHD_Result http_too_large(const struct http_call *call);
/* 200 with one of the dashboard's files, each one shared answer. */
enum MHD_Result http_file(const struct http_call *call,
    enum dashboard_part part);
/*
 * Lines of one kind written once a second at most, however many requests
 * would write one.  Zero-initialised; any thread.
 */
struct http_lograte {
	_Atomic int64_t lr_logged; /* when the last line was written */
	atomic_long lr_count;	   /* events since */
};
/*
 * Counts one event; returns how many to log now (this one included), or 0
 * when a line was written less than a second ago.
 */
long http_lograte_due(struct http_lograte *lr);

/*
 * The headers a page is sent with: CSP (NULL: none, and none of the two
 * that go with it), no guessing of content types, no cached copy used
 * without asking.
 */
void http_page_headers(struct MHD_Response *r, const char *csp);

#endif

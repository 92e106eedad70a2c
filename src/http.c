/* http.c: what every handler shares: a request's body, its wait on the store, its answers. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "clock.h"
#include "http.h"
#include "log.h"
#include "msg.h"
#include "params.h"
#include "subs.h"

struct http_req *
http_req_new(const struct http_call *call, size_t announced)
{
	struct http_req *rq;

	if ((rq = calloc(1, sizeof(*rq))) == NULL)
		goto fail;
	rq->hr_ep = call->hc_ep;
	rq->hr_env = call->hc_env;
	/*
	 * Room for what is announced, up to a point: a Content-Length is only
	 * a promise, and idle connections promising max_body each must not
	 * pin max_body each.  Past it the buffer grows as bytes arrive.
	 */
	rq->hr_cap = announced;
	if (rq->hr_cap > HTTP_PREALLOC_MAX)
		rq->hr_cap = HTTP_PREALLOC_MAX;
	if (rq->hr_cap > 0 && (rq->hr_body = malloc(rq->hr_cap)) == NULL)
		goto fail;
	*call->hc_slot = rq;
	return rq;

fail:
	free(rq);
	log_error("request failed", "path=%s reason=nomem", call->hc_path);
	return NULL;
}

void
http_req_free(struct http_req *rq)
{
	if (rq == NULL || rq->hr_static)
		return;
	free(rq->hr_body);
	msg_unref(rq->hr_sreq.r_msg);
	batch_free(rq->hr_batch);
	store_req_release(&rq->hr_sreq);
	free(rq);
}

enum http_state
http_req_state(const struct http_req *rq)
{
	if (rq->hr_static)
		return HTTP_READING;
	return (enum http_state)atomic_load(&rq->hr_state);
}

/* A body that goes on past this is cut off rather than read to its end. */
#define DISCARD_MAX(cfg) ((cfg)->max_body * 8 + (1u << 20))

enum MHD_Result
http_req_append(const struct http_call *call, struct http_req *rq,
    const char *data, size_t len)
{
	const struct config *cfg = call->hc_env->he_cfg;
	size_t cap;
	char *p;

	if (rq->hr_too_large || len > cfg->max_body - rq->hr_len) {
		if (!rq->hr_too_large) {
			rq->hr_too_large = 1;
			free(rq->hr_body);
			rq->hr_body = NULL;
			rq->hr_cap = 0;
		}
		rq->hr_len += len;
		return rq->hr_len > DISCARD_MAX(cfg) ? MHD_NO : MHD_YES;
	}
	if (rq->hr_len + len > rq->hr_cap) {
		cap = rq->hr_cap ? rq->hr_cap : 4096;
		while (cap < rq->hr_len + len)
			cap *= 2;
		if (cap > cfg->max_body)
			cap = cfg->max_body;
		if ((p = realloc(rq->hr_body, cap)) == NULL) {
			log_error("request failed",
			    "path=%s reason=nomem "
			    "bytes=%zu",
			    call->hc_path, cap);
			return MHD_NO;
		}
		rq->hr_body = p;
		rq->hr_cap = cap;
	}
	memcpy(rq->hr_body + rq->hr_len, data, len);
	rq->hr_len += len;
	return MHD_YES;
}

/* On the store thread: done; the answer goes out on the next call. */
static void
stored(struct store_req *sreq)
{
	struct http_req *rq = sreq->r_arg;

	atomic_store(&rq->hr_state, HTTP_STORED);
	MHD_resume_connection(rq->hr_conn);
}

/* A publish is queued with its count of subscribers (subs_count_then). */
static int
submit_counted(void *arg, size_t n)
{
	struct http_req *rq = arg;

	rq->hr_sreq.r_fanout = (long)n;
	return store_submit(rq->hr_env->he_store, &rq->hr_sreq);
}

/* A batch is queued with each message's count (subs_count_each_then). */
static int
submit_batch(void *arg)
{
	struct http_req *rq = arg;

	batch_set_fanouts(rq->hr_batch);
	return store_submit(rq->hr_env->he_store, &rq->hr_sreq);
}

enum MHD_Result
http_wait(const struct http_call *call, struct http_req *rq,
    http_stored *answer)
{
	const struct http_env *env = call->hc_env;
	int rc;

	rq->hr_conn = call->hc_conn;
	rq->hr_stored = answer;
	rq->hr_sreq.r_done = stored;
	rq->hr_sreq.r_arg = rq;
	atomic_store(&rq->hr_state, HTTP_WAITING);
	MHD_suspend_connection(call->hc_conn);
	if (rq->hr_sreq.r_type == REQ_PUBLISH)
		rc = subs_count_then(env->he_subs,
		    msg_topics(rq->hr_sreq.r_msg), submit_counted, rq);
	else if (rq->hr_sreq.r_type == REQ_PUBLISH_BATCH)
		rc = subs_count_each_then(env->he_subs,
		    batch_topics(rq->hr_batch), batch_count(rq->hr_batch),
		    batch_counts(rq->hr_batch), submit_batch, rq);
	else
		rc = store_submit(env->he_store, &rq->hr_sreq);
	if (rc == -1) {
		rq->hr_sreq.r_status = STORE_CLOSED;
		atomic_store(&rq->hr_state, HTTP_STORED);
		MHD_resume_connection(call->hc_conn);
	}
	return MHD_YES;
}

enum MHD_Result
http_resume(const struct http_call *call, struct http_req *rq)
{
	switch (rq->hr_sreq.r_status) {
	case STORE_OK:
		return rq->hr_stored(call, rq);
	case STORE_FULL:
		return http_busy(call, "Error: Disk full, retry later.");
	case STORE_CLOSED:
		return http_busy(call, "Error: Shutting down, retry later.");
	case STORE_CONFLICT:
		return http_fmt(call, MHD_HTTP_CONFLICT,
		    "Error: %.300s is not "
		    "registered.",
		    rq->hr_sreq.r_address);
	case STORE_ERROR:
		break;
	}
	return http_busy(call, "Error: Store failed, retry later.");
}

const char *
http_query(const struct http_call *call, const char *key)
{
	return MHD_lookup_connection_value(call->hc_conn, MHD_GET_ARGUMENT_KIND,
	    key);
}

const char *
http_header(const struct http_call *call, const char *name)
{
	return MHD_lookup_connection_value(call->hc_conn, MHD_HEADER_KIND,
	    name);
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

int
http_topics(const struct http_call *call, int patterns, struct topics **out,
    int *given, enum MHD_Result *ret)
{
	struct params_topics pt = { .pt_n = 0 };
	char err[TOPICS_ERRLEN];

	*out = NULL;
	MHD_get_connection_values(call->hc_conn, MHD_GET_ARGUMENT_KIND,
	    collect_topic, &pt);
	*given = pt.pt_n > 0;
	switch (params_topics_parse(&pt, patterns, out, err)) {
	case TOPICS_OK:
		return 0;
	case TOPICS_INVALID:
		*ret = http_fmt(call, MHD_HTTP_BAD_REQUEST, "%s", err);
		return -1;
	case TOPICS_NOMEM:
		break;
	}
	*ret = http_nomem(call, __func__);
	return -1;
}

void *
http_mhd_readonly(const void *p)
{
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wcast-qual"
	return (void *)p;
#pragma GCC diagnostic pop
}

/* Queues R (NULL: it could not be made) with CTYPE and HDR (or NULL). */
static enum MHD_Result
answer(const struct http_call *call, unsigned int status, const char *ctype,
    struct MHD_Response *r, const char *hdr, const char *value)
{
	enum MHD_Result ret;

	if (r == NULL)
		return http_unanswered(call, __func__);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	if (hdr != NULL)
		MHD_add_response_header(r, hdr, value);
	ret = MHD_queue_response(call->hc_conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

enum MHD_Result
http_answer(const struct http_call *call, unsigned int status,
    const char *ctype, const char *body, size_t len, const char *hdr,
    const char *value)
{
	return answer(call, status, ctype,
	    MHD_create_response_from_buffer(len, http_mhd_readonly(body),
		MHD_RESPMEM_PERSISTENT),
	    hdr, value);
}

enum MHD_Result
http_answer_free(const struct http_call *call, unsigned int status,
    const char *ctype, char *body, size_t len, const char *hdr,
    const char *value)
{
	struct MHD_Response *r;

	if ((r = MHD_create_response_from_buffer(len, body,
		 MHD_RESPMEM_MUST_FREE)) == NULL)
		free(body);
	return answer(call, status, ctype, r, hdr, value);
}

enum MHD_Result
http_text(const struct http_call *call, unsigned int status, const char *text)
{
	return http_answer(call, status, HTTP_TEXT, text, strlen(text), NULL,
	    NULL);
}

enum MHD_Result
http_fmt(const struct http_call *call, unsigned int status, const char *fmt,
    ...)
{
	char buf[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0)
		return MHD_NO;
	return answer(call, status, HTTP_TEXT,
	    MHD_create_response_from_buffer(strlen(buf), buf,
		MHD_RESPMEM_MUST_COPY),
	    NULL, NULL);
}

enum MHD_Result
http_busy(const struct http_call *call, const char *text)
{
	return http_answer(call, MHD_HTTP_SERVICE_UNAVAILABLE, HTTP_TEXT, text,
	    strlen(text), MHD_HTTP_HEADER_RETRY_AFTER, "1");
}

enum MHD_Result
http_nomem(const struct http_call *call, const char *func)
{
	log_error("request failed", "path=%s reason=nomem in=%s", call->hc_path,
	    func);
	return http_busy(call, HTTP_NOMEM);
}

enum MHD_Result
http_unanswered(const struct http_call *call, const char *func)
{
	log_error("cannot answer", "path=%s reason=nomem in=%s", call->hc_path,
	    func);
	return MHD_NO;
}

enum MHD_Result
http_success(const struct http_call *call)
{
	return MHD_queue_response(call->hc_conn, MHD_HTTP_OK,
	    call->hc_env->he_success);
}

enum MHD_Result
http_too_large(const struct http_call *call)
{
	return http_fmt(call, MHD_HTTP_CONTENT_TOO_LARGE,
	    "Error: Message larger than max_body (%zu bytes).",
	    call->hc_env->he_cfg->max_body);
}

enum MHD_Result
http_file(const struct http_call *call, enum dashboard_part part)
{
	return MHD_queue_response(call->hc_conn, MHD_HTTP_OK,
	    call->hc_env->he_files[part]);
}

/*
 * CSP says what a page may load and run, and that no other site may frame
 * it; X-Frame-Options says the latter to browsers without CSP; and no
 * Referer leaks its address.
 */
void
http_page_headers(struct MHD_Response *r, const char *csp)
{
	if (csp != NULL) {
		MHD_add_response_header(r, "Content-Security-Policy", csp);
		MHD_add_response_header(r, "X-Frame-Options", "DENY");
		MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
	}
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
}

long
http_lograte_due(struct http_lograte *lr)
{
	long n = atomic_fetch_add(&lr->lr_count, 1) + 1;
	int64_t now = clock_mono_ms(), then = atomic_load(&lr->lr_logged);

	if (now - then < 1000 ||
	    !atomic_compare_exchange_strong(&lr->lr_logged, &then, now))
		return 0;
	atomic_fetch_sub(&lr->lr_count, n);
	return n;
}

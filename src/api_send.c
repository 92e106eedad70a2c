/* api_send.c: POST /sendMessage and /sendMessages: back-pressure, the body made messages, and the answer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_send.h"
#include "batch.h"
#include "log.h"
#include "msg.h"
#include "params.h"
#include "store.h"
#include "topics.h"

/*
 * Back-pressure: say no (503) rather than accept more than the store may
 * hold (max_backlog_bytes), or, should the delivery thread fall so far
 * behind that bodies in memory reach twice max_queued_bytes, more than
 * memory may.  A full disk is answered by the failed commit itself.
 * Logged once a second at most.  Returns the answer's text, or NULL to
 * take MORE bytes.
 */
static const char *
refuse_publish(const struct http_env *env, size_t more)
{
	static struct http_lograte lines;
	const struct config *cfg = env->he_cfg;
	const char *why, *text = "Error: Queue full, retry later.";

	if (store_disk_full(env->he_store)) {
		why = "disk_full";
		text = "Error: Disk full, retry later.";
	} else if (store_backlog_bytes(env->he_store) + more >
	    cfg->max_backlog_bytes)
		why = "max_backlog_bytes";
	else if (msg_bytes_alive() + more > cfg->max_queued_bytes * 2)
		why = "max_queued_bytes";
	else
		return NULL;
	if (http_lograte_due(&lines) > 0)
		log_warnx("publishing refused: backlog full",
		    "reason=%s "
		    "backlog_bytes=%zu memory_bytes=%zu",
		    why, store_backlog_bytes(env->he_store), msg_bytes_alive());
	return text;
}

enum MHD_Result
api_send_begin(const struct http_call *call)
{
	unsigned long long announced;
	const char *no;

	announced = params_content_length(http_header(call,
	    MHD_HTTP_HEADER_CONTENT_LENGTH));
	if (announced > call->hc_env->he_cfg->max_body)
		return http_too_large(call);
	/*
	 * Answering before the body is read makes libmicrohttpd close the
	 * connection; a publisher told to retry had better keep it.  So only a
	 * large body is refused here; one small enough to be preallocated is
	 * read and refused after.
	 */
	if (announced > HTTP_PREALLOC_MAX &&
	    (no = refuse_publish(call->hc_env, (size_t)announced)) != NULL)
		return http_busy(call, no);
	if (http_req_new(call, (size_t)announced) == NULL)
		return http_busy(call, HTTP_NOMEM);
	return MHD_YES;
}

/*
 * "success", or {"id": ..., "subscribers": N} for Accept: application/json;
 * the message's id in Webhook-Id (and Message-Id, as before).  A repeated
 * Idempotency-Key gets the first message's id and Idempotent-Replayed.
 */
static enum MHD_Result
answer_published(const struct http_call *call, struct http_req *rq)
{
	struct store_req *sreq = &rq->hr_sreq;
	const char *id = sreq->r_repeat ? sreq->r_first : msg_id(sreq->r_msg);
	struct MHD_Response *r;
	enum MHD_Result ret;
	char body[160];
	int n;

	if (sreq->r_repeat)
		log_debug("message repeated", "message=%s", sreq->r_first);
	else
		log_debug("message accepted",
		    "message=%s seq=%llu bytes=%zu "
		    "topics=%s",
		    msg_id(sreq->r_msg),
		    (unsigned long long)msg_seq(sreq->r_msg),
		    msg_len(sreq->r_msg), topics_text(msg_topics(sreq->r_msg)));
	if (rq->hr_json)
		n = snprintf(body, sizeof(body),
		    "{\"id\":\"%s\",\"subscribers\":"
		    "%ld%s}\n",
		    id, sreq->r_fanout,
		    sreq->r_repeat ? ",\"duplicate\":true" : "");
	else
		n = snprintf(body, sizeof(body), "success");
	r = MHD_create_response_from_buffer((size_t)n, body,
	    MHD_RESPMEM_MUST_COPY);
	if (r == NULL)
		return http_unanswered(call, __func__);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
	    rq->hr_json ? "application/json" : HTTP_TEXT);
	MHD_add_response_header(r, "Webhook-Id", id);
	MHD_add_response_header(r, "Message-Id", id);
	MHD_add_response_header(r, MHD_HTTP_HEADER_VARY, "Accept");
	if (sreq->r_repeat)
		MHD_add_response_header(r, "Idempotent-Replayed", "true");
	ret = MHD_queue_response(call->hc_conn, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

enum MHD_Result
api_send_end(const struct http_call *call)
{
	struct http_req *rq = *call->hc_slot;
	const char *ctype = http_header(call, MHD_HTTP_HEADER_CONTENT_TYPE);
	const char *key = http_header(call, "Idempotency-Key");
	struct topics *topics;
	enum MHD_Result ret;
	const char *no;
	struct msg *m;
	int given;

	if ((no = params_publish_check(ctype, key)) != NULL)
		return http_fmt(call, MHD_HTTP_BAD_REQUEST, "Error: %s", no);
	if (http_topics(call, 0, &topics, &given, &ret) == -1)
		return ret;
	if ((no = refuse_publish(call->hc_env, rq->hr_len)) != NULL) {
		topics_unref(topics);
		return http_busy(call, no);
	}
	if ((m = msg_new(NULL, ctype, rq->hr_body, rq->hr_len)) == NULL) {
		topics_unref(topics);
		return http_nomem(call, __func__);
	}
	msg_set_topics(m, topics);
	free(rq->hr_body);
	rq->hr_body = NULL;
	rq->hr_json = params_wants_json(http_header(call,
	    MHD_HTTP_HEADER_ACCEPT));
	rq->hr_sreq.r_type = REQ_PUBLISH;
	rq->hr_sreq.r_msg = m;
	if (key != NULL) {
		snprintf(rq->hr_key, sizeof(rq->hr_key), "%s", key);
		rq->hr_sreq.r_key = rq->hr_key;
	}
	return http_wait(call, rq, answer_published);
}

/*
 * A batch's answer: a JSON array with each message's {"id": ...,
 * "subscribers": N}, in order, and "duplicate": true where its key was
 * seen (the first message's id then, as /sendMessage answers).
 */
static enum MHD_Result
answer_batch(const struct http_call *call, struct http_req *rq)
{
	const struct store_pub *p = rq->hr_sreq.r_pubs;
	size_t n = rq->hr_sreq.r_npubs, at = 0, cap;
	char *body;

	/* {"id":"<36>","subscribers":<20>,"duplicate":true}, */
	cap = n * (MSG_IDLEN + 72) + 4;
	if ((body = malloc(cap)) == NULL)
		return http_nomem(call, __func__);
	body[at++] = '[';
	for (size_t i = 0; i < n; i++)
		at += (size_t)snprintf(body + at, cap - at,
		    "%s{\"id\":\"%s\",\"subscribers\":%ld%s}", i ? "," : "",
		    p[i].sp_repeat ? p[i].sp_first : msg_id(p[i].sp_msg),
		    p[i].sp_fanout,
		    p[i].sp_repeat ? ",\"duplicate\":true" : "");
	at += (size_t)snprintf(body + at, cap - at, "]\n");
	log_debug("batch accepted", "messages=%zu bytes=%zu", n,
	    batch_bytes(rq->hr_batch));
	return http_answer_free(call, MHD_HTTP_OK, "application/json", body, at,
	    NULL, NULL);
}

enum MHD_Result
api_send_batch_end(const struct http_call *call)
{
	struct http_req *rq = *call->hc_slot;
	char err[BATCH_ERRLEN];
	struct batch *b;
	const char *no;

	/* A batch's messages say these each; one for all would be a guess. */
	if (http_query(call, "topic") != NULL)
		return http_text(call, MHD_HTTP_BAD_REQUEST,
		    "Error: A batch's topics go in each message's "
		    "\"topic\".");
	if (http_header(call, "Idempotency-Key") != NULL)
		return http_text(call, MHD_HTTP_BAD_REQUEST,
		    "Error: A batch's idempotency keys go in each "
		    "message's \"idempotency_key\".");
	switch (batch_parse(rq->hr_body, rq->hr_len,
	    call->hc_env->he_cfg->max_batch, &b, err)) {
	case BATCH_OK:
		break;
	case BATCH_INVALID:
		return http_fmt(call, MHD_HTTP_BAD_REQUEST, "%s", err);
	case BATCH_NOMEM:
		return http_nomem(call, __func__);
	}
	if ((no = refuse_publish(call->hc_env, batch_bytes(b))) != NULL) {
		batch_free(b);
		return http_busy(call, no);
	}
	free(rq->hr_body);
	rq->hr_body = NULL;
	rq->hr_batch = b;
	rq->hr_sreq.r_type = REQ_PUBLISH_BATCH;
	rq->hr_sreq.r_pubs = batch_pubs(b);
	rq->hr_sreq.r_npubs = batch_count(b);
	return http_wait(call, rq, answer_batch);
}

/* api_dead.c: the dead-letter endpoints: list, purge and replay, each done by the store. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_dead.h"
#include "deadletters.h"
#include "listing.h"
#include "log.h"
#include "params.h"
#include "store.h"

/*
 * A page's cursor, "RANGE.SEQ" (where it ended, in the store's terms; a
 * client only hands it back), into *range and *seq: 0, or -1 if malformed.
 */
static int
parse_after(const char *text, int64_t *range, uint64_t *seq)
{
	unsigned long long r, q;
	char *end;

	if (*text < '0' || *text > '9')
		return -1;
	errno = 0;
	r = strtoull(text, &end, 10);
	if (errno != 0 || *end != '.' || r > INT64_MAX || end[1] < '0' ||
	    end[1] > '9')
		return -1;
	q = strtoull(end + 1, &end, 10);
	if (errno != 0 || *end != '\0' || q > INT64_MAX)
		return -1;
	*range = (int64_t)r;
	*seq = (uint64_t)q;
	return 0;
}

/* A page of dead letters, with the next page's cursor in a header too. */
static enum MHD_Result
answer_list(const struct http_call *call, const struct store_req *req)
{
	struct MHD_Response *r;
	enum MHD_Result ret;
	char next[48] = "";
	char *body;
	size_t len;

	if (req->r_next_range != 0)
		snprintf(next, sizeof(next), "%" PRId64 ".%" PRIu64,
		    req->r_next_range, req->r_next_seq);
	if ((body = deadletters_render_page(req->r_dead, req->r_ndead,
		 req->r_json, req->r_next_range != 0 ? next : NULL, &len)) ==
	    NULL)
		return http_busy(call, "Error: Store failed, retry later.");
	if ((r = MHD_create_response_from_buffer(len, body,
		 MHD_RESPMEM_MUST_FREE)) == NULL) {
		free(body);
		return http_unanswered(call, __func__);
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
	    req->r_json ? "application/json" : HTTP_TEXT);
	MHD_add_response_header(r, MHD_HTTP_HEADER_VARY, "Accept");
	if (req->r_next_range != 0)
		MHD_add_response_header(r, "Dead-Letters-Next", next);
	ret = MHD_queue_response(call->hc_conn, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

/* A replay or a purge, done: logged, and its count answered. */
static enum MHD_Result
answer_count(const struct http_call *call, const struct store_req *req,
    const char *verb)
{
	char la[LOG_VALUE_MAX], li[LOG_VALUE_MAX], what[32];

	snprintf(what, sizeof(what), "dead letters %s", verb);
	log_info(what, "address=%s id=%s count=%ld",
	    log_value(la, sizeof(la), req->r_address ? req->r_address : "-"),
	    log_value(li, sizeof(li), req->r_id ? req->r_id : "-"),
	    req->r_count);
	return http_fmt(call, MHD_HTTP_OK, "%s %ld\n", verb, req->r_count);
}

/* The answer to a dead-letter request the store has done. */
static enum MHD_Result
answer_stored(const struct http_call *call, struct http_req *u)
{
	struct store_req *req = &u->hr_sreq;

	switch (req->r_type) {
	case REQ_DL_LIST:
		return answer_list(call, req);
	case REQ_DL_REPLAY:
		return answer_count(call, req, "replayed");
	case REQ_DL_PURGE:
		return answer_count(call, req, "purged");
	case REQ_PUBLISH:
	case REQ_PUBLISH_BATCH:
	case REQ_SYNC:
	case REQ_CONFIG:
		break;
	}
	log_error("impossible: a dead-letter answer for another request",
	    "type=%d", (int)req->r_type);
	abort();
}

/* GET, DELETE /deadLetters (REPLAY 0) and POST /deadLetters/replay. */
static enum MHD_Result
handle_dead(const struct http_call *call, int replay)
{
	const char *address = http_query(call, "address");
	const char *id = http_query(call, "id");
	const char *limit = http_query(call, "limit");
	const char *format = http_query(call, "format");
	const char *after = http_query(call, "after");
	const char *method = call->hc_method;
	enum listing_format f = LISTING_TEXT;
	struct http_req *u;
	/* A replay does everything it selects, up to the most a call may. */
	long n = replay ? PARAMS_LIMIT_MAX : PARAMS_LIMIT_DEFAULT;
	int64_t after_range = 0;
	uint64_t after_seq = 0;

	if (address != NULL && *address == '\0')
		address = NULL;
	if (id != NULL && *id == '\0')
		id = NULL;
	if (limit != NULL && params_limit(limit, &n) == -1)
		return http_text(call, MHD_HTTP_BAD_REQUEST,
		    "Error: limit must be a number from 1 to 100000.");
	if (after != NULL && *after != '\0' &&
	    parse_after(after, &after_range, &after_seq) == -1)
		return http_text(call, MHD_HTTP_BAD_REQUEST,
		    "Error: after must be the next value of a previous page.");
	if (strcmp(method, "DELETE") == 0 || replay) {
		if (address == NULL && id == NULL)
			return http_text(call, MHD_HTTP_BAD_REQUEST,
			    "Error: address or id required.");
	} else if (listing_negotiate(format,
		       http_header(call, MHD_HTTP_HEADER_ACCEPT), &f) == -1)
		return http_text(call, MHD_HTTP_BAD_REQUEST,
		    "Error: Unknown format (use text or json).");
	if ((u = http_req_new(call, 0)) == NULL)
		return http_busy(call, HTTP_NOMEM);
	/* The query strings live as long as the connection's request. */
	u->hr_sreq.r_address = address;
	u->hr_sreq.r_id = id;
	u->hr_sreq.r_limit = n;
	u->hr_sreq.r_after_range = after_range;
	u->hr_sreq.r_after_seq = after_seq;
	u->hr_sreq.r_json = f == LISTING_JSON;
	if (replay)
		u->hr_sreq.r_type = REQ_DL_REPLAY;
	else if (strcmp(method, "DELETE") == 0)
		u->hr_sreq.r_type = REQ_DL_PURGE;
	else
		u->hr_sreq.r_type = REQ_DL_LIST;
	return http_wait(call, u, answer_stored);
}

enum MHD_Result
api_dead_serve(const struct http_call *call)
{
	return handle_dead(call, 0);
}

enum MHD_Result
api_dead_replay(const struct http_call *call)
{
	return handle_dead(call, 1);
}

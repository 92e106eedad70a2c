/* api_dead.c: the dead-letter endpoints: list, purge and replay, each done by the store. */
#include <stdlib.h>
#include <string.h>

#include "api_dead.h"
#include "deadletters.h"
#include "listing.h"
#include "log.h"
#include "params.h"
#include "store.h"

/* The answer to a dead-letter request the store has done. */
static enum MHD_Result
answer_stored(const struct http_call *call, struct http_req *u)
{
	struct store_req *req = &u->hr_sreq;
	char la[LOG_VALUE_MAX], li[LOG_VALUE_MAX];
	char *body;
	size_t len;

	switch (req->r_type) {
	case REQ_DL_LIST:
		if ((body = deadletters_render(req->r_dead, req->r_ndead,
		    req->r_json, &len)) == NULL)
			return http_busy(call, "Error: Store failed, retry later.");
		return http_answer_free(call, MHD_HTTP_OK, req->r_json ?
		    "application/json" : HTTP_TEXT, body, len,
		    MHD_HTTP_HEADER_VARY, "Accept");
	case REQ_DL_REPLAY:
		log_info("dead letters replayed", "address=%s id=%s count=%ld",
		    log_value(la, sizeof(la), req->r_address ? req->r_address :
		    "-"), log_value(li, sizeof(li), req->r_id ? req->r_id :
		    "-"), req->r_count);
		return http_fmt(call, MHD_HTTP_OK, "replayed %ld\n",
		    req->r_count);
	case REQ_DL_PURGE:
		log_info("dead letters purged", "address=%s id=%s count=%ld",
		    log_value(la, sizeof(la), req->r_address ? req->r_address :
		    "-"), log_value(li, sizeof(li), req->r_id ? req->r_id :
		    "-"), req->r_count);
		return http_fmt(call, MHD_HTTP_OK, "purged %ld\n", req->r_count);
	case REQ_PUBLISH:
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
	const char *method = call->hc_method;
	enum listing_format f = LISTING_TEXT;
	struct http_req *u;
	long n = PARAMS_LIMIT_DEFAULT;

	if (address != NULL && *address == '\0')
		address = NULL;
	if (id != NULL && *id == '\0')
		id = NULL;
	if (limit != NULL && params_limit(limit, &n) == -1)
		return http_text(call, MHD_HTTP_BAD_REQUEST,
		    "Error: limit must be a number from 1 to 100000.");
	if (strcmp(method, "DELETE") == 0 || replay) {
		if (address == NULL && id == NULL)
			return http_text(call, MHD_HTTP_BAD_REQUEST,
			    "Error: address or id required.");
	} else if (listing_negotiate(format, http_header(call,
	    MHD_HTTP_HEADER_ACCEPT), &f) == -1)
		return http_text(call, MHD_HTTP_BAD_REQUEST,
		    "Error: Unknown format (use text or json).");
	if ((u = http_req_new(call, 0)) == NULL)
		return http_busy(call, HTTP_NOMEM);
	/* The query strings live as long as the connection's request. */
	u->hr_sreq.r_address = address;
	u->hr_sreq.r_id = id;
	u->hr_sreq.r_limit = n;
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

/* api_subs.c: the subscriber endpoints: /registerAndKeepAlive, /deregister, /listSubscribers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "api_subs.h"
#include "clock.h"
#include "egress.h"
#include "listing.h"
#include "log.h"
#include "sign.h"
#include "subs.h"
#include "topics.h"

/* 400 for an address that cannot be used; the empty case keeps the seed's text. */
static enum MHD_Result
answer_bad_address(const struct http_call *call, enum addr_status st)
{
	if (st == ADDR_EMPTY)
		return http_text(call, MHD_HTTP_BAD_REQUEST,
		    "Error:Wrong input address.");
	if (st == ADDR_NOMEM)
		return http_nomem(call, __func__);
	return http_fmt(call, MHD_HTTP_BAD_REQUEST,
	    "Error:Wrong input address: %s.", addr_strerror(st));
}

/* A registration or removal is committed: "success". */
static enum MHD_Result
answer_synced(const struct http_call *call, struct http_req *rq)
{
	(void)rq;
	return http_success(call);
}

/*
 * Answers once what the map queued for the store is committed; should
 * that wait be out of memory, now, as the change is made all the same.
 */
static enum MHD_Result
wait_synced(const struct http_call *call)
{
	struct http_req *rq;

	if ((rq = http_req_new(call, 0)) == NULL)
		return http_success(call);
	rq->hr_sreq.r_type = REQ_SYNC;
	return http_wait(call, rq, answer_synced);
}

/* Whether the egress policy denies the literal address SS; why in WHY. */
static int
denied(const struct http_env *env, const struct sockaddr_storage *ss,
    char why[EGRESS_REASONLEN])
{
	const struct sockaddr *sa = (const struct sockaddr *)ss;

	if (egress_is_self(sa, env->he_self))
		return snprintf(why, EGRESS_REASONLEN, "%s", EGRESS_SELF) > 0;
	return egress_check(&env->he_cfg->deny_targets,
		   &env->he_cfg->allow_targets, sa, why) == EGRESS_DENY;
}

/*
 * A registration may also name topics (replacing the set the subscriber
 * had) and a secret of its own; a bare keep-alive keeps both.
 */
enum MHD_Result
api_subs_register(const struct http_call *call)
{
	const struct http_env *env = call->hc_env;
	const char *address = http_query(call, "address");
	const char *secret = http_query(call, "secret");
	int64_t real = clock_real_ms(), mono = clock_mono_ms();
	struct sub_opts opts = { 0, NULL, NULL };
	char bad[SIGN_ERRLEN];
	enum MHD_Result ret;
	enum addr_status st;
	struct sockaddr_storage ss;
	char why[EGRESS_REASONLEN];
	char la[LOG_VALUE_MAX], lv[LOG_VALUE_MAX];
	CURLU *url = NULL;
	char *text = NULL;

	if (address == NULL || *address == '\0')
		return answer_bad_address(call, ADDR_EMPTY);
	if (http_topics(call, 1, &opts.topics, &opts.has_topics, &ret) == -1)
		return ret;
	if (secret != NULL) {
		if (sign_check(secret, 1, bad) == -1) {
			/* A query string reads '+' as a space. */
			ret = http_fmt(call, MHD_HTTP_BAD_REQUEST,
			    "Error: Wrong "
			    "secret: %s%s.",
			    bad,
			    strchr(secret, ' ') != NULL ?
				" (a + in a query string reads as a space: send it "
				"as %2B)" :
				"");
			goto done;
		}
		opts.secret = secret;
	}
	if (!opts.has_topics && opts.secret == NULL &&
	    subs_keepalive(env->he_subs, address, real, mono) == 0) {
		ret = http_success(call);
		goto done;
	}
	if ((st = addr_parse(address, &url, &text)) != ADDR_OK) {
		ret = answer_bad_address(call, st);
		goto done;
	}
	/*
	 * A literal address the egress policy denies could never be delivered
	 * to: refuse it now.  A name is judged at each connection instead, by
	 * what it resolves to then (deliver.c).
	 */
	if (addr_literal(url, &ss) == 0 && denied(env, &ss, why)) {
		log_warnx("registration refused", "address=%s reason=%s",
		    log_value(la, sizeof(la), address),
		    log_value(lv, sizeof(lv), why));
		ret = http_fmt(call, MHD_HTTP_FORBIDDEN,
		    "Error: Address not "
		    "allowed: %s.",
		    why);
		goto done;
	}

	switch (subs_add(env->he_subs, address, url, text, &opts, real, mono)) {
	case SUBS_ADDED:
		url = NULL; /* the map's now */
		log_info("subscriber registered",
		    "address=%s url=%s "
		    "topics=%s signed=%s",
		    log_value(la, sizeof(la), address),
		    log_value(lv, sizeof(lv), text),
		    opts.topics ? topics_text(opts.topics) : "*",
		    opts.secret ? "own" : "-");
		ret = wait_synced(call);
		break;
	case SUBS_CHANGED:
		log_info("subscriber changed",
		    "address=%s topics=%s "
		    "secret=%s",
		    log_value(la, sizeof(la), address),
		    topics_text(opts.topics), opts.secret ? "new" : "kept");
		ret = wait_synced(call);
		break;
	case SUBS_REFRESHED:
		ret = http_success(call);
		break;
	case SUBS_FULL:
		log_warnx("registration refused",
		    "address=%s "
		    "reason=max_subscribers limit=%ld",
		    log_value(la, sizeof(la), address),
		    env->he_cfg->max_subscribers);
		ret = http_text(call, MHD_HTTP_SERVICE_UNAVAILABLE,
		    "Error: Too many subscribers (max_subscribers).");
		break;
	case SUBS_NOMEM:
	default:
		log_error("registration failed", "address=%s reason=nomem",
		    log_value(la, sizeof(la), address));
		ret = http_busy(call, HTTP_NOMEM);
		break;
	}

done:
	curl_url_cleanup(url);
	curl_free(text);
	topics_unref(opts.topics);
	return ret;
}

enum MHD_Result
api_subs_deregister(const struct http_call *call)
{
	const char *address = http_query(call, "address");
	char la[LOG_VALUE_MAX];
	enum addr_status st;
	CURLU *url;
	char *text;

	if (address == NULL || *address == '\0')
		return answer_bad_address(call, ADDR_EMPTY);
	if (subs_remove(call->hc_env->he_subs, address, SUB_DEREGISTERED) ==
	    0) {
		log_info("subscriber deregistered", "address=%s",
		    log_value(la, sizeof(la), address));
		return wait_synced(call);
	}
	/* Not registered: fine (idempotent), unless it never could have been. */
	if ((st = addr_parse(address, &url, &text)) != ADDR_OK)
		return answer_bad_address(call, st);
	curl_url_cleanup(url);
	curl_free(text);
	return http_success(call);
}

/* The server-rendered listing (?format=html); takes BODY. */
static enum MHD_Result
answer_page(const struct http_call *call, char *body, size_t len)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	if (r == NULL) {
		free(body);
		return http_unanswered(call, __func__);
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
	    listing_content_type(LISTING_HTML));
	MHD_add_response_header(r, MHD_HTTP_HEADER_VARY, "Accept");
	http_page_headers(r, LISTING_HTML_CSP);
	ret = MHD_queue_response(call->hc_conn, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

enum MHD_Result
api_subs_list(const struct http_call *call)
{
	const struct http_env *env = call->hc_env;
	const char *format = http_query(call, "format");
	enum listing_format f;
	struct sub **subs;
	char *body;
	size_t len = 0;
	long n;

	if (listing_negotiate(format, http_header(call, MHD_HTTP_HEADER_ACCEPT),
		&f) == -1)
		return http_text(call, MHD_HTTP_BAD_REQUEST,
		    "Error: Unknown format (use text, json or html).");
	/* A browser gets the dashboard; ?format=html the table without script. */
	if (f == LISTING_HTML && format == NULL)
		return http_file(call, DASHBOARD_PAGE);
	if ((n = subs_snapshot(env->he_subs, &subs)) == -1)
		return http_nomem(call, __func__);
	body = listing_render(f, subs, (size_t)n,
	    env->he_cfg->keepalive_ttl * 1000, clock_real_ms(), &len);
	for (long i = 0; i < n; i++)
		sub_unref(subs[i]);
	free(subs);
	if (body == NULL)
		return http_nomem(call, __func__);
	if (f == LISTING_HTML)
		return answer_page(call, body, len);
	return http_answer_free(call, MHD_HTTP_OK, listing_content_type(f),
	    body, len, MHD_HTTP_HEADER_VARY, "Accept");
}

/* api_gate.c: who may call an endpoint: the origin and token checks, and their refusals. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "api_gate.h"
#include "log.h"

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
		inet_ntop(AF_INET,
		    &((const struct sockaddr_in *)(const void *)sa)->sin_addr,
		    buf, (socklen_t)len);
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6,
		    &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
		    buf, (socklen_t)len);
}

/*
 * 401 with a challenge for each scheme: Basic first, so that a browser
 * asks for a user name and password (the token), and Bearer (RFC 6750).
 * Logged once a second at most, with how many were refused since the last
 * line, so a client hammering with a wrong token cannot flood the log.
 * Neither the header nor anything from it is logged.
 */
static enum MHD_Result
answer_unauthorized(const struct http_call *call, enum auth_scope sc,
    enum auth_verdict v)
{
	static struct http_lograte refusals;
	const char *scope = auth_scope_name(sc), *bearer;
	char body[256], client[INET6_ADDRSTRLEN];
	struct MHD_Response *r;
	enum MHD_Result ret;
	long n;

	if ((n = http_lograte_due(&refusals)) > 0) {
		client_address(call->hc_conn, client, sizeof(client));
		/* A browser always asks without a token first: not a warning. */
		(v == AUTH_MISSING ? log_info : log_warnx)("request "
							   "unauthorized",
		    "path=%s scope=%s reason=%s client=%s "
		    "refused=%ld",
		    call->hc_path, scope, auth_verdict_name(v), client, n);
	}

	switch (v) {
	case AUTH_MISSING:
		snprintf(body, sizeof(body),
		    "Error: Unauthorized: %s needs the "
		    "%s token (Authorization: Bearer TOKEN, or Basic with the "
		    "token as password).",
		    call->hc_path, scope);
		bearer = "Bearer realm=\"hookcast\"";
		break;
	case AUTH_MALFORMED:
		snprintf(body, sizeof(body),
		    "Error: Unauthorized: the "
		    "Authorization header is neither Bearer TOKEN nor Basic "
		    "base64(user:TOKEN).");
		bearer = "Bearer realm=\"hookcast\", error=\"invalid_request\"";
		break;
	default:
		snprintf(body, sizeof(body),
		    "Error: Unauthorized: wrong %s "
		    "token.",
		    scope);
		bearer = "Bearer realm=\"hookcast\", error=\"invalid_token\"";
		break;
	}
	r = MHD_create_response_from_buffer(strlen(body), body,
	    MHD_RESPMEM_MUST_COPY);
	if (r == NULL)
		return http_unanswered(call, __func__);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, HTTP_TEXT);
	MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
	    "Basic realm=\"hookcast\", charset=\"UTF-8\"");
	MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, bearer);
	ret = MHD_queue_response(call->hc_conn, MHD_HTTP_UNAUTHORIZED, r);
	MHD_destroy_response(r);
	return ret;
}

/*
 * 403 for a request that would change something, sent by a page of another
 * origin (auth_cross_site).  Logged once a second at most; the Origin is
 * not logged, being whatever the other site says.
 */
static enum MHD_Result
answer_cross_site(const struct http_call *call)
{
	static struct http_lograte refusals;
	char client[INET6_ADDRSTRLEN];
	long n;

	if ((n = http_lograte_due(&refusals)) > 0) {
		client_address(call->hc_conn, client, sizeof(client));
		log_warnx("cross-origin request refused",
		    "path=%s client=%s "
		    "refused=%ld",
		    call->hc_path, client, n);
	}
	return http_text(call, MHD_HTTP_FORBIDDEN,
	    "Error: Forbidden: a page "
	    "of another origin may not change anything here (Origin or "
	    "Sec-Fetch-Site says it came from one).");
}

int
api_gate_pass(const struct http_call *call, const struct auth *auth,
    enum auth_scope scope, enum MHD_Result *ret)
{
	enum auth_verdict v;

	if (auth_cross_site(call->hc_method,
		http_header(call, "Sec-Fetch-Site"),
		http_header(call, MHD_HTTP_HEADER_ORIGIN),
		http_header(call, MHD_HTTP_HEADER_HOST)))
		*ret = answer_cross_site(call);
	else if ((v = auth_check(auth, scope,
		      http_header(call, MHD_HTTP_HEADER_AUTHORIZATION))) ==
	    AUTH_ERROR)
		*ret = http_nomem(call, __func__);
	else if (v != AUTH_OK)
		*ret = answer_unauthorized(call, scope, v);
	else
		return 0;
	return -1;
}

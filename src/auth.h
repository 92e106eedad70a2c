/* auth.h: access control: each scope's token, and whether a request carries it. */
#ifndef HOOKCAST_AUTH_H
#define HOOKCAST_AUTH_H

#include <stddef.h>
#include <sys/socket.h>

/* What an endpoint needs; every route in api.c names one. */
enum auth_scope { AUTH_PUBLIC, AUTH_PUBLISH, AUTH_SUBSCRIBE, AUTH_ADMIN };
#define AUTH_SCOPES 4

enum auth_verdict {
	AUTH_OK,	/* the scope is open, or the token is right */
	AUTH_MISSING,	/* no Authorization header, or an empty one */
	AUTH_MALFORMED, /* not "Bearer TOKEN" nor "Basic base64(user:TOKEN)" */
	AUTH_WRONG,	/* well formed, but not the scope's token */
	AUTH_ERROR	/* out of memory: nothing was judged */
};

struct auth;

/*
 * Keeps a digest of tokens[scope] for each scope; NULL or "" leaves that
 * scope open, and AUTH_PUBLIC is always open.  The tokens are not kept.
 * NULL on allocation failure.
 */
struct auth *auth_new(const char *const tokens[AUTH_SCOPES]);
void auth_free(struct auth *a);

/*
 * Judges HEADER, an Authorization header's value or NULL, against SCOPE's
 * token: "Bearer TOKEN", or "Basic " and the base64 of "USER:TOKEN" with any
 * USER; the scheme's case does not matter.  The comparison takes the same
 * time whatever the header holds and however long the token is.
 */
enum auth_verdict auth_check(const struct auth *a, enum auth_scope scope,
    const char *header);

/*
 * Whether a request comes from a page of another origin and, changing
 * something, must be refused: a browser attaches its Basic credentials, and
 * reaches an open scope, whichever site's page sends it (cross-site request
 * forgery).  The rule is that of Go's http.CrossOriginProtection: GET, HEAD
 * and OPTIONS never are; otherwise FETCH_SITE (Sec-Fetch-Site, which every
 * current browser sends) decides, only "same-origin" and "none" (the user's
 * own navigation) passing; without it, an ORIGIN whose host[:port] is not
 * HOST (the Host header) is refused.  A request with neither header (curl,
 * a library, a service) is not a browser's and passes.  Any argument but
 * METHOD may be NULL.  Returns 1 to refuse, 0 to let it through.
 */
int auth_cross_site(const char *method, const char *fetch_site,
    const char *origin, const char *host);

/* "publish", "subscribe", "admin" ("public" for AUTH_PUBLIC). */
const char *auth_scope_name(enum auth_scope scope);
/* "missing", "malformed", "wrong", ...: for log lines. */
const char *auth_verdict_name(enum auth_verdict v);

/*
 * Whether a daemon listening on SA serves open endpoints beyond this host:
 * SA is not a loopback address (a wildcard such as 0.0.0.0 is not) and at
 * least one scope has no token.  Returns the number of open scopes and
 * writes their names, comma-separated, to BUF; 0 (and "") otherwise.
 */
int auth_exposed(const struct auth *a, const struct sockaddr *sa, char *buf,
    size_t len);

#endif

/* auth.c: access control: each scope's token, and whether a request carries it. */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "auth.h"

#define AUTH_DIGEST    32 /* SHA-256 */
/* The longest Basic credential decoded: a token and a generous user name. */
#define AUTH_BASIC_MAX 1023
#define B64_ALPHABET \
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz" \
	"0123456789+/"

static const char *const scope_names[] = {
	[AUTH_PUBLIC] = "public",
	[AUTH_PUBLISH] = "publish",
	[AUTH_SUBSCRIBE] = "subscribe",
	[AUTH_ADMIN] = "admin",
};

static const char *const verdict_names[] = {
	[AUTH_OK] = "ok",
	[AUTH_MISSING] = "missing",
	[AUTH_MALFORMED] = "malformed",
	[AUTH_WRONG] = "wrong",
	[AUTH_ERROR] = "error",
};

/*
 * Only digests are kept: comparing two SHA-256 digests with CRYPTO_memcmp
 * takes the same time whatever was presented, and reveals neither where
 * it differs from the token nor how long the token is.
 */
struct auth {
	int a_set[AUTH_SCOPES];
	unsigned char a_digest[AUTH_SCOPES][AUTH_DIGEST];
};

static int
digest(const void *p, size_t len, unsigned char out[AUTH_DIGEST])
{
	unsigned int n = 0;

	if (EVP_Digest(p, len, out, &n, EVP_sha256(), NULL) != 1 ||
	    n != AUTH_DIGEST)
		return -1;
	return 0;
}

struct auth *
auth_new(const char *const tokens[AUTH_SCOPES])
{
	struct auth *a;

	if ((a = calloc(1, sizeof(*a))) == NULL)
		return NULL;
	for (int s = AUTH_PUBLIC + 1; s < AUTH_SCOPES; s++) {
		if (tokens[s] == NULL || *tokens[s] == '\0')
			continue;
		if (digest(tokens[s], strlen(tokens[s]), a->a_digest[s]) ==
		    -1) {
			free(a);
			return NULL;
		}
		a->a_set[s] = 1;
	}
	return a;
}

void
auth_free(struct auth *a)
{
	if (a != NULL)
		OPENSSL_cleanse(a, sizeof(*a));
	free(a);
}

/*
 * The password of a Basic credential (RFC 7617): base64 of "user:password",
 * the user name being everything before the first colon.  Sets *pass and
 * *passlen inside OUT; -1 if CRED is not strict, padded base64 of a string
 * with a colon.
 */
static int
basic_password(const char *cred, size_t len, unsigned char *out,
    const unsigned char **pass, size_t *passlen)
{
	size_t body = strspn(cred, B64_ALPHABET), pad;
	const unsigned char *colon;
	int n;

	/* EVP_DecodeBlock reads '=' as zero bits anywhere; allow it only as padding. */
	pad = len - body;
	if (len == 0 || len % 4 != 0 || pad > 2 ||
	    strspn(cred + body, "=") != pad || len / 4 * 3 > AUTH_BASIC_MAX)
		return -1;
	if ((n = EVP_DecodeBlock(out, (const unsigned char *)cred, (int)len)) <
	    (int)pad)
		return -1;
	n -= (int)pad;
	if ((colon = memchr(out, ':', (size_t)n)) == NULL)
		return -1;
	*pass = colon + 1;
	*passlen = (size_t)n - (size_t)(*pass - out);
	return 0;
}

enum auth_verdict
auth_check(const struct auth *a, enum auth_scope scope, const char *header)
{
	unsigned char got[AUTH_DIGEST], buf[AUTH_BASIC_MAX + 1];
	const unsigned char *pass;
	const char *cred;
	size_t scheme, len, passlen;
	int rc;

	if (!a->a_set[scope])
		return AUTH_OK;
	if (header == NULL)
		return AUTH_MISSING;
	header += strspn(header, " \t");
	if (*header == '\0')
		return AUTH_MISSING;
	/* SCHEME 1*SP CREDENTIALS, trailing blanks ignored. */
	scheme = strcspn(header, " \t");
	cred = header + scheme;
	cred += strspn(cred, " \t");
	len = strlen(cred);
	while (len > 0 && (cred[len - 1] == ' ' || cred[len - 1] == '\t'))
		len--;
	if (len == 0 || strcspn(cred, " \t") < len)
		return AUTH_MALFORMED;

	if (scheme == 6 && strncasecmp(header, "Bearer", 6) == 0)
		rc = digest(cred, len, got);
	else if (scheme == 5 && strncasecmp(header, "Basic", 5) == 0) {
		if (basic_password(cred, len, buf, &pass, &passlen) == -1) {
			OPENSSL_cleanse(buf, sizeof(buf));
			return AUTH_MALFORMED;
		}
		rc = digest(pass, passlen, got);
		OPENSSL_cleanse(buf, sizeof(buf));
	} else
		return AUTH_MALFORMED;
	if (rc == -1)
		return AUTH_ERROR;
	return CRYPTO_memcmp(got, a->a_digest[scope], AUTH_DIGEST) == 0 ?
	    AUTH_OK :
	    AUTH_WRONG;
}

int
auth_cross_site(const char *method, const char *fetch_site, const char *origin,
    const char *host)
{
	const char *h;

	if (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0 ||
	    strcmp(method, "OPTIONS") == 0)
		return 0;
	if (fetch_site != NULL && *fetch_site != '\0')
		return strcasecmp(fetch_site, "same-origin") != 0 &&
		    strcasecmp(fetch_site, "none") != 0;
	if (origin == NULL || *origin == '\0')
		return 0;
	/* "scheme://host[:port]"; "null" (a sandboxed or file: page) has none. */
	if ((h = strstr(origin, "://")) == NULL || host == NULL)
		return 1;
	return strcasecmp(h + 3, host) != 0;
}

const char *
auth_scope_name(enum auth_scope scope)
{
	return scope_names[scope];
}

const char *
auth_verdict_name(enum auth_verdict v)
{
	return verdict_names[v];
}

/* 127.0.0.0/8, ::1, and 127.0.0.0/8 mapped into IPv6. */
static int
is_loopback(const struct sockaddr *sa)
{
	const struct in6_addr *a6;

	if (sa->sa_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)(const void *)sa)
				  ->sin_addr.s_addr) >>
			   24) == 127;
	if (sa->sa_family != AF_INET6)
		return 0;
	a6 = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
	return IN6_IS_ADDR_LOOPBACK(a6) ||
	    (IN6_IS_ADDR_V4MAPPED(a6) && a6->s6_addr[12] == 127);
}

int
auth_exposed(const struct auth *a, const struct sockaddr *sa, char *buf,
    size_t len)
{
	size_t n = 0;
	int open = 0;

	if (len > 0)
		buf[0] = '\0';
	if (is_loopback(sa))
		return 0;
	for (int s = AUTH_PUBLIC + 1; s < AUTH_SCOPES; s++) {
		if (a->a_set[s])
			continue;
		if (n < len)
			n += (size_t)snprintf(buf + n, len - n, "%s%s",
			    open ? "," : "", scope_names[s]);
		open++;
	}
	return open;
}

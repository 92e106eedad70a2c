/* check_auth.c: Authorization headers judged against each scope's token. */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/evp.h>

#include "auth.h"
#include "unit.h"

#define PUB	"pub-0123456789abcdef"
#define SUB	"sub-0123456789abcdef"
#define ADM	"adm-0123456789abcdef"

static struct auth *
all_set(void)
{
	const char *tokens[AUTH_SCOPES] = { NULL, PUB, SUB, ADM };
	struct auth *a = auth_new(tokens);

	ck_assert_ptr_nonnull(a);
	return a;
}

/* "Basic " and the base64 of S, as a client would send it. */
static const char *
basic(const char *s)
{
	static char hdr[2048];
	int n;

	memcpy(hdr, "Basic ", sizeof("Basic "));	/* with its NUL */
	n = EVP_EncodeBlock((unsigned char *)hdr + 6, (const unsigned char *)s,
	    (int)strlen(s));
	ck_assert_int_gt(n, 0);
	return hdr;
}

START_TEST(unset_means_open)
{
	const char *tokens[AUTH_SCOPES] = { NULL, NULL, "", ADM };
	struct auth *a = auth_new(tokens);

	ck_assert_ptr_nonnull(a);
	ck_assert_int_eq(auth_check(a, AUTH_PUBLIC, NULL), AUTH_OK);
	ck_assert_int_eq(auth_check(a, AUTH_PUBLISH, NULL), AUTH_OK);
	ck_assert_int_eq(auth_check(a, AUTH_SUBSCRIBE, NULL), AUTH_OK);
	ck_assert_int_eq(auth_check(a, AUTH_ADMIN, "Bearer " ADM), AUTH_OK);
	/* An open scope ignores whatever is sent, even a wrong token. */
	ck_assert_int_eq(auth_check(a, AUTH_PUBLISH, "Bearer " ADM), AUTH_OK);
	ck_assert_int_eq(auth_check(a, AUTH_SUBSCRIBE, "Bearer nope"), AUTH_OK);
	ck_assert_int_eq(auth_check(a, AUTH_PUBLIC, "garbage"), AUTH_OK);
	ck_assert_int_eq(auth_check(a, AUTH_ADMIN, NULL), AUTH_MISSING);
	auth_free(a);
	auth_free(NULL);
}
END_TEST

START_TEST(bearer)
{
	struct auth *a = all_set();

	ck_assert_int_eq(auth_check(a, AUTH_PUBLISH, "Bearer " PUB), AUTH_OK);
	ck_assert_int_eq(auth_check(a, AUTH_SUBSCRIBE, "Bearer " SUB), AUTH_OK);
	ck_assert_int_eq(auth_check(a, AUTH_ADMIN, "Bearer " ADM), AUTH_OK);
	/* The scheme is case-insensitive (RFC 9110 11.1); blanks around are fine. */
	ck_assert_int_eq(auth_check(a, AUTH_ADMIN, "bearer " ADM), AUTH_OK);
	ck_assert_int_eq(auth_check(a, AUTH_ADMIN, "BEARER " ADM), AUTH_OK);
	ck_assert_int_eq(auth_check(a, AUTH_ADMIN, "  Bearer \t " ADM "  "),
	    AUTH_OK);
	/* Each scope has its own token. */
	ck_assert_int_eq(auth_check(a, AUTH_ADMIN, "Bearer " PUB), AUTH_WRONG);
	ck_assert_int_eq(auth_check(a, AUTH_PUBLISH, "Bearer " ADM), AUTH_WRONG);
	/* The token's case matters. */
	ck_assert_int_eq(auth_check(a, AUTH_ADMIN, "Bearer ADM-0123456789ABCDEF"),
	    AUTH_WRONG);
	auth_free(a);
}
END_TEST

START_TEST(prefixes_and_extensions_are_wrong)
{
	struct auth *a = all_set();
	char hdr[128];

	/* Every proper prefix of the token, down to one character. */
	for (size_t n = 1; n < strlen(ADM); n++) {
		snprintf(hdr, sizeof(hdr), "Bearer %.*s", (int)n, ADM);
		ck_assert_int_eq(auth_check(a, AUTH_ADMIN, hdr), AUTH_WRONG);
	}
	ck_assert_int_eq(auth_check(a, AUTH_ADMIN, "Bearer " ADM "x"),
	    AUTH_WRONG);
	ck_assert_int_eq(auth_check(a, AUTH_ADMIN, "Bearer x" ADM), AUTH_WRONG);
	ck_assert_int_eq(auth_check(a, AUTH_ADMIN, basic("u:adm-0123")),
	    AUTH_WRONG);
	ck_assert_int_eq(auth_check(a, AUTH_ADMIN, basic("u:" ADM "0")),
	    AUTH_WRONG);
	auth_free(a);
}
END_TEST

/*
 * The whole digest is compared: a wrong token whose SHA-256 begins like the
 * right one's (found by trying, 65536 tries on average) is still wrong.
 */
START_TEST(near_digest_is_wrong)
{
	unsigned char want[32], got[32];
	unsigned int len;
	char guess[64];
	struct auth *a = all_set();
	long i;

	ck_assert_int_eq(EVP_Digest(ADM, strlen(ADM), want, &len, EVP_sha256(),
	    NULL), 1);
	for (i = 0; i < 4000000; i++) {
		snprintf(guess, sizeof(guess), "guess-%ld", i);
		ck_assert_int_eq(EVP_Digest(guess, strlen(guess), got, &len,
		    EVP_sha256(), NULL), 1);
		if (memcmp(got, want, 2) == 0)
			break;
	}
	ck_assert_int_lt(i, 4000000);
	snprintf(guess, sizeof(guess), "Bearer guess-%ld", i);
	ck_assert_int_eq(auth_check(a, AUTH_ADMIN, guess), AUTH_WRONG);
	auth_free(a);
}
END_TEST

START_TEST(basic_any_user)
{
	struct auth *a = all_set();

	ck_assert_int_eq(auth_check(a, AUTH_ADMIN, basic("operator:" ADM)),
	    AUTH_OK);
	ck_assert_int_eq(auth_check(a, AUTH_ADMIN, basic("x:" ADM)), AUTH_OK);
	/* An empty user name, as a browser sends when only a password is typed. */
	ck_assert_int_eq(auth_check(a, AUTH_ADMIN, basic(":" ADM)), AUTH_OK);
	ck_assert_int_eq(auth_check(a, AUTH_PUBLISH, basic("ci:" PUB)), AUTH_OK);
	ck_assert_int_eq(auth_check(a, AUTH_ADMIN, "basic YTphZG0tMDEyMzQ1Njc4"
	    "OWFiY2RlZg=="), AUTH_OK);	/* a:adm-0123456789abcdef */
	/* The user name ends at the first colon; the password may hold more. */
	ck_assert_int_eq(auth_check(a, AUTH_ADMIN, basic("a:b:" ADM)),
	    AUTH_WRONG);
	/* The token as the user name, not the password, is no good. */
	ck_assert_int_eq(auth_check(a, AUTH_ADMIN, basic(ADM ":")), AUTH_WRONG);
	ck_assert_int_eq(auth_check(a, AUTH_ADMIN, basic(ADM ":x")), AUTH_WRONG);
	ck_assert_int_eq(auth_check(a, AUTH_ADMIN, basic("u:" PUB)), AUTH_WRONG);
	auth_free(a);
}
END_TEST

START_TEST(basic_padding)
{
	const char *tokens[AUTH_SCOPES] = { NULL, NULL, NULL,
	    "0123456789abcdef" };
	struct auth *a = auth_new(tokens);

	ck_assert_ptr_nonnull(a);
	/* Decoded lengths 18, 19, 20: padding "", "==" and "=". */
	ck_assert_int_eq(auth_check(a, AUTH_ADMIN, basic("a:0123456789abcdef")),
	    AUTH_OK);
	ck_assert_str_eq(basic("ab:0123456789abcdef") +
	    strlen(basic("ab:0123456789abcdef")) - 2, "==");
	ck_assert_int_eq(auth_check(a, AUTH_ADMIN, basic("ab:0123456789abcdef")),
	    AUTH_OK);
	ck_assert_int_eq(auth_check(a, AUTH_ADMIN,
	    basic("abc:0123456789abcdef")), AUTH_OK);
	/* The padding counts: without it the length is not a multiple of 4. */
	ck_assert_int_eq(auth_check(a, AUTH_ADMIN,
	    "Basic YWI6MDEyMzQ1Njc4OWFiY2RlZg"), AUTH_MALFORMED);
	auth_free(a);
}
END_TEST

START_TEST(malformed)
{
	static const char *const bad[] = {
		"Bearer",			/* no credentials */
		"Bearer    ",
		"Bearer a b",			/* two words */
		"Basic",
		"Basic !!!!",			/* not base64 */
		"Basic YWRt LTAx",		/* a blank inside */
		"Basic YWRtLTA",		/* length not a multiple of 4 */
		"Basic Y=Rt",			/* '=' not at the end */
		"Basic QU=D",
		"Basic YTpiY2=k",
		"Basic YW==RtLTAx",
		"Basic YQ===",			/* too much padding */
		"Basic ====",
		"Basic YWRtLTAxMjM0NTY3ODlhYmNkZWY=",	/* no colon */
		"Digest username=\"a\"",	/* another scheme */
		/* NOLINTNEXTLINE(bugprone-suspicious-missing-comma): one header */
		"Token " ADM,
		"Bearer:" ADM,			/* no blank after the scheme */
		"BearerX " ADM,
		ADM,				/* no scheme at all */
	};
	struct auth *a = all_set();

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(auth_check(a, AUTH_ADMIN, bad[i]) == AUTH_MALFORMED,
		    "\"%s\" is not malformed", bad[i]);
	ck_assert_int_eq(auth_check(a, AUTH_ADMIN, NULL), AUTH_MISSING);
	ck_assert_int_eq(auth_check(a, AUTH_ADMIN, ""), AUTH_MISSING);
	ck_assert_int_eq(auth_check(a, AUTH_ADMIN, " \t "), AUTH_MISSING);
	auth_free(a);
}
END_TEST

START_TEST(long_credentials)
{
	struct auth *a = all_set();
	static char user[1100], hdr[4096];

	/* A long user name beside the right token still works... */
	memset(user, 'u', 900);
	snprintf(user + 900, sizeof(user) - 900, ":%s", ADM);
	ck_assert_int_eq(auth_check(a, AUTH_ADMIN, basic(user)), AUTH_OK);
	/* ...up to a point, past which it is refused, never overflows. */
	memset(user, 'u', 1050);
	snprintf(user + 1050, sizeof(user) - 1050, ":%s", ADM);
	ck_assert_int_eq(auth_check(a, AUTH_ADMIN, basic(user)),
	    AUTH_MALFORMED);
	/* A huge Bearer credential is just wrong. */
	memcpy(hdr, "Bearer ", 7);
	memset(hdr + 7, 'A', sizeof(hdr) - 8);
	hdr[sizeof(hdr) - 1] = '\0';
	ck_assert_int_eq(auth_check(a, AUTH_ADMIN, hdr), AUTH_WRONG);
	auth_free(a);
}
END_TEST

START_TEST(names)
{
	ck_assert_str_eq(auth_scope_name(AUTH_PUBLISH), "publish");
	ck_assert_str_eq(auth_scope_name(AUTH_SUBSCRIBE), "subscribe");
	ck_assert_str_eq(auth_scope_name(AUTH_ADMIN), "admin");
	ck_assert_str_eq(auth_verdict_name(AUTH_MISSING), "missing");
	ck_assert_str_eq(auth_verdict_name(AUTH_WRONG), "wrong");
}
END_TEST

static int
exposed4(const struct auth *a, const char *ip, char *buf, size_t len)
{
	struct sockaddr_in sin;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	ck_assert_int_eq(inet_pton(AF_INET, ip, &sin.sin_addr), 1);
	return auth_exposed(a, (struct sockaddr *)&sin, buf, len);
}

static int
exposed6(const struct auth *a, const char *ip, char *buf, size_t len)
{
	struct sockaddr_in6 sin6;

	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	ck_assert_int_eq(inet_pton(AF_INET6, ip, &sin6.sin6_addr), 1);
	return auth_exposed(a, (struct sockaddr *)&sin6, buf, len);
}

START_TEST(open_on_the_network)
{
	const char *none[AUTH_SCOPES] = { NULL, NULL, NULL, NULL };
	const char *some[AUTH_SCOPES] = { NULL, PUB, NULL, ADM };
	struct auth *open = auth_new(none), *part = auth_new(some);
	struct auth *closed = all_set();
	char buf[64];

	ck_assert_ptr_nonnull(open);
	ck_assert_ptr_nonnull(part);
	/* Loopback, in every spelling: no warning whatever is open. */
	ck_assert_int_eq(exposed4(open, "127.0.0.1", buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "");
	ck_assert_int_eq(exposed4(open, "127.1.2.3", buf, sizeof(buf)), 0);
	ck_assert_int_eq(exposed6(open, "::1", buf, sizeof(buf)), 0);
	ck_assert_int_eq(exposed6(open, "::ffff:127.0.0.1", buf, sizeof(buf)),
	    0);
	/* Wildcards and real interfaces, with open scopes named. */
	ck_assert_int_eq(exposed4(open, "0.0.0.0", buf, sizeof(buf)), 3);
	ck_assert_str_eq(buf, "publish,subscribe,admin");
	ck_assert_int_eq(exposed6(open, "::", buf, sizeof(buf)), 3);
	ck_assert_int_eq(exposed4(open, "10.0.0.7", buf, sizeof(buf)), 3);
	ck_assert_int_eq(exposed4(open, "128.0.0.1", buf, sizeof(buf)), 3);
	ck_assert_int_eq(exposed6(open, "::ffff:10.0.0.7", buf, sizeof(buf)), 3);
	ck_assert_int_eq(exposed4(part, "0.0.0.0", buf, sizeof(buf)), 1);
	ck_assert_str_eq(buf, "subscribe");
	/* Every scope with a token: nothing to warn about anywhere. */
	ck_assert_int_eq(exposed4(closed, "0.0.0.0", buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "");
	ck_assert_int_eq(exposed6(closed, "2001:db8::1", buf, sizeof(buf)), 0);
	/* A short buffer is cut, never overrun. */
	ck_assert_int_eq(exposed4(open, "0.0.0.0", buf, 9), 3);
	ck_assert_str_eq(buf, "publish,");
	auth_free(open);
	auth_free(part);
	auth_free(closed);
}
END_TEST

START_TEST(cross_site)
{
	const char *host = "127.0.0.1:3000";

	/* Reading never changes anything: always through. */
	ck_assert_int_eq(auth_cross_site("GET", "cross-site",
	    "http://evil.example", host), 0);
	ck_assert_int_eq(auth_cross_site("HEAD", "cross-site", NULL, host), 0);
	/* curl, a library, a service: neither header. */
	ck_assert_int_eq(auth_cross_site("POST", NULL, NULL, host), 0);
	ck_assert_int_eq(auth_cross_site("DELETE", "", "", host), 0);
	/* Sec-Fetch-Site decides when present, whatever Origin says. */
	ck_assert_int_eq(auth_cross_site("POST", "same-origin",
	    "http://proxy.example", host), 0);
	ck_assert_int_eq(auth_cross_site("POST", "none", NULL, host), 0);
	ck_assert_int_eq(auth_cross_site("POST", "Same-Origin", NULL, host), 0);
	ck_assert_int_eq(auth_cross_site("POST", "cross-site",
	    "http://127.0.0.1:3000", host), 1);
	/* Another port of the same host is the same site, not the same origin. */
	ck_assert_int_eq(auth_cross_site("DELETE", "same-site", NULL, host), 1);
	ck_assert_int_eq(auth_cross_site("POST", "bogus", NULL, host), 1);
	/* Without it, Origin's host and port against Host. */
	ck_assert_int_eq(auth_cross_site("POST", NULL, "http://127.0.0.1:3000",
	    host), 0);
	ck_assert_int_eq(auth_cross_site("POST", NULL, "https://HOOKS.example",
	    "hooks.example"), 0);
	ck_assert_int_eq(auth_cross_site("POST", NULL, "http://127.0.0.1:3001",
	    host), 1);
	ck_assert_int_eq(auth_cross_site("DELETE", NULL, "http://evil.example",
	    host), 1);
	ck_assert_int_eq(auth_cross_site("POST", NULL, "null", host), 1);
	ck_assert_int_eq(auth_cross_site("POST", NULL, "http://127.0.0.1:3000",
	    NULL), 1);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("auth");
	TCase *tc = tcase_create("auth");

	tcase_add_test(tc, unset_means_open);
	tcase_add_test(tc, bearer);
	tcase_add_test(tc, prefixes_and_extensions_are_wrong);
	tcase_add_test(tc, near_digest_is_wrong);
	tcase_add_test(tc, basic_any_user);
	tcase_add_test(tc, basic_padding);
	tcase_add_test(tc, malformed);
	tcase_add_test(tc, long_credentials);
	tcase_add_test(tc, names);
	tcase_add_test(tc, open_on_the_network);
	tcase_add_test(tc, cross_site);
	suite_add_tcase(s, tc);
	return unit_run(s);
}

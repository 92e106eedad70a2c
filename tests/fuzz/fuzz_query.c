/*
 * fuzz_query.c: a request line's method and target as the API reads them:
 * the path (params_path), the method against each route's list, and the
 * query string's address, topic, secret, format, limit and id values, each
 * through the check its endpoint makes.
 *
 * Input: "METHOD TARGET", e.g. "GET /deadLetters?limit=5&address=h:1".
 * The query string is split and unescaped as libmicrohttpd does it.
 */
#include <strings.h>

#include <microhttpd.h>

#include "addr.h"
#include "fuzz.h"
#include "listing.h"
#include "params.h"
#include "sign.h"
#include "topics.h"

#define ARGS	(TOPICS_MAX + 16)

/* The routes' method lists (api.c's routes[]). */
static const char *const allows[] = { "POST", "DELETE", "GET, HEAD",
    "GET, HEAD, DELETE" };

/* What params_method_allowed must say: METHOD is one of ALLOW's words. */
static int
listed(const char *allow, const char *method)
{
	char list[32], *w, *save = NULL;

	snprintf(list, sizeof(list), "%s", allow);
	for (w = strtok_r(list, ", ", &save); w != NULL;
	    w = strtok_r(NULL, ", ", &save))
		if (strcmp(w, method) == 0)
			return 1;
	return 0;
}

static void
check_target(const char *target)
{
	const char *path = params_path(target);

	/* A part of the target, or the "/" of an absolute form with no path. */
	if (strncasecmp(target, "http://", 7) != 0 &&
	    strncasecmp(target, "https://", 8) != 0)
		FUZZ_CHECK(path == target);
	else
		FUZZ_CHECK(*path == '/' && (strcmp(path, "/") == 0 ||
		    (path > target && path < target + strlen(target))));
}

static void
check_limit(const char *value)
{
	long n = -7, again = -7;
	char text[32];

	if (params_limit(value, &n) == -1) {
		FUZZ_CHECK(n == -7);
		return;
	}
	FUZZ_CHECK(n >= 1 && n <= PARAMS_LIMIT_MAX);
	snprintf(text, sizeof(text), "%ld", n);
	FUZZ_CHECK(params_limit(text, &again) == 0 && again == n);
}

static void
check_format(const char *value)
{
	enum listing_format f = (enum listing_format)-1;
	int known = strcmp(value, "text") == 0 || strcmp(value, "json") == 0 ||
	    strcmp(value, "html") == 0;

	FUZZ_CHECK(listing_negotiate(value, "application/json", &f) ==
	    (known ? 0 : -1));
	if (!known)
		FUZZ_CHECK(f == (enum listing_format)-1);
	else
		FUZZ_CHECK(strcmp(value, (const char *[]){ "text", "json",
		    "html" }[f]) == 0);
}

static void
check_secret(const char *value)
{
	char err[SIGN_ERRLEN];

	memset(err, 'x', sizeof(err));
	if (sign_check(value, 1, err) == 0)
		return;
	FUZZ_CHECK(fuzz_terminated(err, sizeof(err)) && *err != '\0');
	/*
	 * The reason never repeats a secret: no 12 bytes of base64 from the
	 * value (no reason holds such a run of its own).
	 */
	for (const char *p = value; *p != '\0'; ) {
		size_t run = strspn(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
		    "abcdefghijklmnopqrstuvwxyz0123456789+/=");
		char part[13];

		if (run >= sizeof(part) - 1) {
			memcpy(part, p, sizeof(part) - 1);
			part[sizeof(part) - 1] = '\0';
			FUZZ_CHECK(strstr(err, part) == NULL);
		}
		p += run > 0 ? run : 1;
	}
}

static void
check_address(const char *value)
{
	CURLU *u;
	char *text;

	if (*value == '\0')
		return;		/* "Error:Wrong input address." before parsing */
	if (addr_parse(value, &u, &text) == ADDR_OK) {
		curl_url_cleanup(u);
		curl_free(text);
	} else
		FUZZ_CHECK(u == NULL && text == NULL);
}

static void
check_topics(struct params_topics *pt, size_t given)
{
	char err[TOPICS_ERRLEN];
	struct topics *t;

	FUZZ_CHECK(pt->pt_n == (given < TOPICS_MAX ? given : TOPICS_MAX));
	FUZZ_CHECK(pt->pt_over == (given > TOPICS_MAX));
	if (pt->pt_over)
		return;		/* 400 before parsing */
	for (int patterns = 0; patterns <= 1; patterns++) {
		t = NULL;
		if (topics_parse(pt->pt_v, pt->pt_n, patterns, &t, err) ==
		    TOPICS_OK)
			topics_unref(t);
		else
			FUZZ_CHECK(t == NULL);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_string(data, size), *line[2], *arg[ARGS], *q;
	struct params_topics pt = { .pt_n = 0 };
	size_t n, topics = 0;

	if (fuzz_split(s, ' ', line, 2) < 2) {
		free(s);
		return 0;
	}
	for (size_t i = 0; i < sizeof(allows) / sizeof(allows[0]); i++)
		FUZZ_CHECK(params_method_allowed(allows[i], line[0]) ==
		    listed(allows[i], line[0]));
	check_target(line[1]);

	if ((q = strchr(line[1], '?')) == NULL) {
		free(s);
		return 0;
	}
	n = fuzz_split(q + 1, '&', arg, ARGS);
	for (size_t i = 0; i < n; i++) {
		char *key = arg[i], *value = strchr(key, '=');

		if (value != NULL)
			*value++ = '\0';
		else
			value = key + strlen(key);
		for (char *p = value; *p != '\0'; p++)
			if (*p == '+')
				*p = ' ';
		MHD_http_unescape(key);
		MHD_http_unescape(value);
		if (strcmp(key, "topic") == 0) {
			params_topic_add(&pt, value);
			topics++;
		} else if (strcmp(key, "address") == 0)
			check_address(value);
		else if (strcmp(key, "secret") == 0)
			check_secret(value);
		else if (strcmp(key, "format") == 0)
			check_format(value);
		else if (strcmp(key, "limit") == 0)
			check_limit(value);
		/* id: a bound SQL parameter, compared, never parsed. */
	}
	check_topics(&pt, topics);
	free(s);
	return 0;
}

/*
 * fuzz_headers.c: the request headers the API reads besides Accept and
 * Authorization: Idempotency-Key, Content-Length, Content-Type (which goes
 * out again on every delivery, msg_new), and the cross-origin rule's
 * Sec-Fetch-Site, Origin and Host (auth_cross_site).
 *
 * Input: "Name: value" lines; a line "METHOD" without a colon sets the
 * method for the cross-origin rule.  Names are matched without case, as
 * libmicrohttpd looks them up.
 */
#include <strings.h>

#include "auth.h"
#include "fuzz.h"
#include "msg.h"
#include "params.h"

#define LINES	16

static void
check_key(const char *key)
{
	size_t n = strlen(key);
	int ok = params_key_ok(key);

	FUZZ_CHECK(ok == (n >= 1 && n <= PARAMS_KEY_MAX &&
	    strspn(key, " !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRS"
	    "TUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~") == n));
}

static void
check_ctype(const char *ctype)
{
	const struct curl_slist *h;
	struct msg *m;

	/* api.c refuses these with 400 before making the message. */
	if (strlen(ctype) > MSG_CTYPE_MAX) {
		FUZZ_CHECK(msg_new(NULL, ctype, "x", 1) == NULL);
		return;
	}
	if (!params_ctype_ok(ctype)) {
		FUZZ_CHECK(strpbrk(ctype, "\r\n\v\f\x01\x1f\x7f") != NULL ||
		    strlen(ctype) > strspn(ctype, "\t !\"#$%&'()*+,-./0123456789"
		    ":;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopq"
		    "rstuvwxyz{|}~\x80\x81\xff"));
		return;
	}
	FUZZ_CHECK((m = msg_new(NULL, ctype, "body", 4)) != NULL);
	FUZZ_CHECK(strcmp(msg_ctype(m), *ctype != '\0' ? ctype :
	    "application/octet-stream") == 0);
	/* Each delivery header is one line: no value can add another. */
	for (h = msg_headers(m); h != NULL; h = h->next)
		for (const unsigned char *p = (const unsigned char *)h->data;
		    *p != '\0'; p++)
			FUZZ_CHECK(*p >= 0x20 || *p == '\t');
	FUZZ_CHECK(msg_len(m) == 4 && memcmp(msg_body(m), "body", 4) == 0);
	msg_unref(m);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_string(data, size), *line[LINES];
	const char *method = "POST", *site = NULL, *origin = NULL, *host = NULL;
	size_t n = fuzz_split(s, '\n', line, LINES);
	int cross;

	for (size_t i = 0; i < n; i++) {
		char *name = line[i], *value = strchr(name, ':');

		if (value == NULL) {
			method = name;
			continue;
		}
		*value++ = '\0';
		value += strspn(value, " \t");
		if (strcasecmp(name, "Idempotency-Key") == 0)
			check_key(value);
		else if (strcasecmp(name, "Content-Length") == 0) {
			unsigned long long a = params_content_length(value);

			FUZZ_CHECK(a == strtoull(value, NULL, 10));
		} else if (strcasecmp(name, "Content-Type") == 0)
			check_ctype(value);
		else if (strcasecmp(name, "Sec-Fetch-Site") == 0)
			site = value;
		else if (strcasecmp(name, "Origin") == 0)
			origin = value;
		else if (strcasecmp(name, "Host") == 0)
			host = value;
	}
	FUZZ_CHECK(params_content_length(NULL) == 0);

	cross = auth_cross_site(method, site, origin, host);
	FUZZ_CHECK(cross == 0 || cross == 1);
	/* Reading never changes anything: no GET is refused. */
	if (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0 ||
	    strcmp(method, "OPTIONS") == 0)
		FUZZ_CHECK(cross == 0);
	/* Neither browser header: a client that is no browser's page. */
	if ((site == NULL || *site == '\0') && (origin == NULL ||
	    *origin == '\0'))
		FUZZ_CHECK(cross == 0);
	/* The browser's own word wins, and only same-origin or none pass. */
	if (site != NULL && *site != '\0' && strcmp(method, "GET") != 0 &&
	    strcmp(method, "HEAD") != 0 && strcmp(method, "OPTIONS") != 0)
		FUZZ_CHECK(cross == !(strcasecmp(site, "same-origin") == 0 ||
		    strcasecmp(site, "none") == 0));
	free(s);
	return 0;
}

/*
 * fuzz_addr.c: a subscriber address (?address=) through the registration's
 * checks: addr_parse, the literal-address conversion and the egress policy.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <strings.h>

#include "addr.h"
#include "egress.h"
#include "fuzz.h"

/* The port a parsed URL says, or its scheme's default. */
static long
url_port(CURLU *u)
{
	char *port = NULL;
	long n;

	FUZZ_CHECK(curl_url_get(u, CURLUPART_PORT, &port,
	    CURLU_DEFAULT_PORT) == CURLUE_OK);
	n = strtol(port, NULL, 10);
	curl_free(port);
	return n;
}

static void
check_literal(CURLU *u, CURLU *again)
{
	struct sockaddr_storage ss, ss2, self;
	struct egress_list none = { .el_count = 0 };
	char reason[EGRESS_REASONLEN];
	enum egress_verdict v;
	int rc;

	rc = addr_literal(u, &ss);
	/* The store keeps the URL's text: read back, it is the same place. */
	FUZZ_CHECK(addr_literal(again, &ss2) == rc);
	if (rc == -1)
		return;
	FUZZ_CHECK(memcmp(&ss, &ss2, sizeof(ss)) == 0);
	FUZZ_CHECK(ss.ss_family == AF_INET || ss.ss_family == AF_INET6);
	if (ss.ss_family == AF_INET)
		FUZZ_CHECK(ntohs(((struct sockaddr_in *)&ss)->sin_port) ==
		    url_port(u));
	else
		FUZZ_CHECK(ntohs(((struct sockaddr_in6 *)&ss)->sin6_port) ==
		    url_port(u));

	/* What handle_register asks next. */
	FUZZ_CHECK(addr_ip("127.0.0.1", 3000, &self) == 0);
	(void)egress_is_self((struct sockaddr *)&ss, (struct sockaddr *)&self);
	memset(reason, 'x', sizeof(reason));
	v = egress_check(&none, &none, (struct sockaddr *)&ss, reason);
	FUZZ_CHECK(v == EGRESS_ALLOW || v == EGRESS_DENY);
	FUZZ_CHECK(fuzz_terminated(reason, sizeof(reason)));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *a = fuzz_string(data, size), *text = NULL, *text2 = NULL;
	char *scheme = NULL;
	CURLU *u = NULL, *u2 = NULL;
	enum addr_status st;

	st = addr_parse(a, &u, &text);
	FUZZ_CHECK(addr_strerror(st) != NULL);
	if (st != ADDR_OK) {
		/* Nothing is allocated on error. */
		FUZZ_CHECK(u == NULL && text == NULL);
		FUZZ_CHECK(st == ADDR_EMPTY ? *a == '\0' :
		    *addr_strerror(st) != '\0');
		free(a);
		return 0;
	}
	FUZZ_CHECK(*a != '\0' && strlen(a) <= ADDR_MAX);
	/* Nothing but what a URL may hold: no blank, quote or control byte. */
	FUZZ_CHECK(strpbrk(a, " \t\r\n\"<>\\^`{|}") == NULL);
	FUZZ_CHECK(strncmp(text, "http://", 7) == 0 ||
	    strncmp(text, "https://", 8) == 0);
	FUZZ_CHECK(curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK);
	FUZZ_CHECK(strcmp(scheme, "http") == 0 || strcmp(scheme, "https") == 0);
	curl_free(scheme);
	FUZZ_CHECK(url_port(u) >= 1 && url_port(u) <= 65535);
	/* The host:port form goes to /event there. */
	if (strstr(a, "://") == NULL)
		FUZZ_CHECK(strncmp(text, "http://", 7) == 0 &&
		    strlen(text) > 6 && strcmp(text + strlen(text) - 6,
		    "/event") == 0);

	/*
	 * The URL text is what the listing shows and the store keeps, and
	 * the store reads it back with curl_url_set: the same URL again.
	 * (libcurl decodes a host's %XX, so the text may hold bytes past
	 * ASCII that addr_parse itself would refuse.)
	 */
	FUZZ_CHECK((u2 = curl_url()) != NULL);
	FUZZ_CHECK(curl_url_set(u2, CURLUPART_URL, text, 0) == CURLUE_OK);
	FUZZ_CHECK(curl_url_get(u2, CURLUPART_URL, &text2, 0) == CURLUE_OK);
	FUZZ_CHECK(strcmp(text, text2) == 0);
	check_literal(u, u2);
	curl_free(text2);
	text2 = NULL;
	/* Given as an address, it is taken, and renders the same. */
	if (strlen(text) <= ADDR_MAX && strspn(text, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789-._~:/?#[]@!$&'()*+,;=%") ==
	    strlen(text)) {
		CURLU *u3;

		FUZZ_CHECK(addr_parse(text, &u3, &text2) == ADDR_OK);
		FUZZ_CHECK(strcmp(text, text2) == 0);
		curl_url_cleanup(u3);
	}

	curl_url_cleanup(u2);
	curl_free(text2);
	curl_url_cleanup(u);
	curl_free(text);
	free(a);
	return 0;
}

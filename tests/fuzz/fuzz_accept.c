/*
 * fuzz_accept.c: the Accept negotiation of /listSubscribers and
 * /deadLetters (listing_negotiate, with and without ?format=), and the
 * publish answer's choice of JSON (params_wants_json).
 *
 * Input: an Accept value; one that starts with "format=NAME\n" also
 * carries a ?format= value.
 */

#include "fuzz.h"
#include "listing.h"
#include "params.h"

static const char *const media[] = { "text/plain", "application/json",
    "text/html" };

/* Some range of ACCEPT could match TYPE: the type, its type/x, or x/x. */
static int
may_match(const char *accept, const char *type)
{
	char major[32];
	size_t n = (size_t)(strchr(type, '/') - type);

	snprintf(major, sizeof(major), "%.*s/*", (int)n, type);
	return strcasestr(accept, type) != NULL ||
	    strcasestr(accept, major) != NULL || strstr(accept, "*/*") != NULL;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_string(data, size), *header = s, *format = NULL;
	enum listing_format f = (enum listing_format)-1, g;

	if (strncmp(s, "format=", 7) == 0 && strchr(s, '\n') != NULL) {
		format = s + 7;
		header = strchr(s, '\n');
		*header++ = '\0';
	}

	if (format != NULL) {
		int known = strcmp(format, "text") == 0 ||
		    strcmp(format, "json") == 0 || strcmp(format, "html") == 0;

		/* ?format= wins whatever Accept says, or is refused. */
		FUZZ_CHECK(listing_negotiate(format, header, &f) ==
		    (known ? 0 : -1));
		FUZZ_CHECK(known || f == (enum listing_format)-1);
	}

	FUZZ_CHECK(listing_negotiate(NULL, header, &f) == 0);
	FUZZ_CHECK(f == LISTING_TEXT || f == LISTING_JSON || f == LISTING_HTML);
	FUZZ_CHECK(listing_content_type(f) != NULL);
	/* Plain text unless something asked for the winner. */
	if (f != LISTING_TEXT)
		FUZZ_CHECK(may_match(header, media[f]));
	if (*header == '\0')
		FUZZ_CHECK(f == LISTING_TEXT);
	/* The same question, the same answer. */
	FUZZ_CHECK(listing_negotiate(NULL, header, &g) == 0 && g == f);
	/* An absent header is no preference at all. */
	FUZZ_CHECK(listing_negotiate(NULL, NULL, &g) == 0 && g == LISTING_TEXT);

	FUZZ_CHECK(params_wants_json(header) ==
	    (strstr(header, "application/json") != NULL));
	free(s);
	return 0;
}

/* listing.h: /listSubscribers rendered as text, JSON or an HTML page. */
#ifndef HOOKCAST_LISTING_H
#define HOOKCAST_LISTING_H

#include <stddef.h>
#include <stdint.h>

#include "subs.h"

enum listing_format { LISTING_TEXT, LISTING_JSON, LISTING_HTML };

/*
 * Picks the format: FORMAT (the ?format= value: text, json or html) wins;
 * otherwise the best of the three by ACCEPT's q-values, plain text on a tie
 * or with no Accept at all.  Either may be NULL.  Returns -1, leaving *out
 * unchanged, when FORMAT names something else.
 */
int listing_negotiate(const char *format, const char *accept,
    enum listing_format *out);
const char *listing_content_type(enum listing_format f);

/*
 * The HTML listing's Content-Security-Policy: its own inline style, and
 * nothing else at all (it has no script, and no site may frame it).
 */
#define LISTING_HTML_CSP \
	"default-src 'none'; style-src 'unsafe-inline'; " \
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

/*
 * Renders N subscribers as of NOW_MS (wall clock) with keep-alive TTL_MS.
 * Returns a malloc'd buffer of *len bytes, or NULL when out of memory.
 */
char *listing_render(enum listing_format f, struct sub **subs, size_t n,
    long ttl_ms, int64_t now_ms, size_t *len);

#endif

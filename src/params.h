/* params.h: the query-string and header values the API reads, checked apart from libmicrohttpd. */
#ifndef HOOKCAST_PARAMS_H
#define HOOKCAST_PARAMS_H

#include <stddef.h>

#include "topics.h"

#define PARAMS_LIMIT_DEFAULT 1000 /* dead letters listed without ?limit= */
#define PARAMS_LIMIT_MAX     100000
#define PARAMS_KEY_MAX	     255 /* bytes in an Idempotency-Key */

/*
 * ?limit=: a whole number from 1 to PARAMS_LIMIT_MAX (strtol's reading, so
 * leading blanks and a sign pass).  0 with it in *out, or -1 with *out
 * unchanged.
 */
int params_limit(const char *s, long *out);

/* An Idempotency-Key: 1 if it is 1 to 255 printable ASCII characters. */
int params_key_ok(const char *key);

/*
 * Content-Length as the publish path reads it before the body: strtoull's
 * value, 0 for none.  libmicrohttpd has refused a malformed one already;
 * an absurd one reads as huge, and is refused as too large.
 */
unsigned long long params_content_length(const char *cl);

/*
 * 1 when a publisher's Content-Type may go out again as a delivery header:
 * no control byte but HTAB (RFC 9110 5.5).  A bare CR would end the line
 * early for many subscribers' parsers, letting the value add a header of
 * the publisher's choosing to every delivery.  Its length is judged apart.
 */
int params_ctype_ok(const char *ctype);

/* 1 when ACCEPT (or NULL) asks for the publish answer in JSON. */
int params_wants_json(const char *accept);

/*
 * The path a request line's target names: itself, or for the absolute form
 * "http://host/path" (RFC 9112 3.2.2) the "/path" in it ("/" when none).
 * Points into URL.
 */
const char *params_path(const char *url);

/* 1 when METHOD is one of the ALLOW list ("GET, HEAD"). */
int params_method_allowed(const char *allow, const char *method);

/*
 * The `topic` query values in the order given, each one topic or a
 * comma-separated list, as topics_parse() takes them; over is set once
 * more than TOPICS_MAX were given (the rest are dropped).  Zero it first.
 * The values are borrowed.
 */
struct params_topics {
	const char *pt_v[TOPICS_MAX];
	size_t pt_n;
	int pt_over;
};
void params_topic_add(struct params_topics *pt, const char *value);
/*
 * topics_parse() of what PT collected, "More than 64 topics." too: the
 * result and *out as topics_parse() leaves them, the reason in err.
 */
enum topics_status params_topics_parse(const struct params_topics *pt,
    int patterns, struct topics **out, char err[TOPICS_ERRLEN]);

/*
 * What is wrong with a publish's Content-Type and Idempotency-Key (either
 * may be NULL: not given), as a sentence to follow "Error: "; NULL when
 * both will do.  /sendMessage's headers and /sendMessages' items alike.
 */
const char *params_publish_check(const char *ctype, const char *key);

#endif

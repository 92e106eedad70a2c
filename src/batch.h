/* batch.h: a /sendMessages body: its JSON array checked and made messages. */
#ifndef HOOKCAST_BATCH_H
#define HOOKCAST_BATCH_H

#include <stddef.h>

#include "store.h"
#include "topics.h"

#define BATCH_ERRLEN 320

/* The messages of one /sendMessages, ready for the store. */
struct batch;

enum batch_status { BATCH_OK, BATCH_INVALID, BATCH_NOMEM };

/*
 * Reads BODY (LEN bytes, no NUL needed): a JSON array of 1 to MAX objects,
 * each with exactly one of "body" (a string, sent as its UTF-8 bytes) and
 * "body_base64" (padded standard base64, sent decoded), and optionally
 * "topic" (an array of strings, or one string; each a topic or a
 * comma-separated list, as ?topic= takes them), "content_type" and
 * "idempotency_key" (strings, judged as /sendMessage judges its headers).
 * A null value is the field left out; any other field is refused.  On
 * BATCH_OK *out holds the batch (the caller's: batch_free), each message
 * with its topics set; on BATCH_INVALID err says what is wrong, naming the
 * item ("Error: item 3: ...", counting from 0).  Nothing is kept on error.
 */
enum batch_status batch_parse(const char *body, size_t len, long max,
    struct batch **out, char err[BATCH_ERRLEN]);
void batch_free(struct batch *b); /* NULL-safe */

size_t batch_count(const struct batch *b);
/* Bytes of all its bodies, as back-pressure counts them. */
size_t batch_bytes(const struct batch *b);
/* Its messages, in order, as the store takes them (REQ_PUBLISH_BATCH). */
struct store_pub *batch_pubs(struct batch *b);
/*
 * Each message's topics, and room for as many counts, for
 * subs_count_each_then(); batch_set_fanouts() copies the counts into the
 * messages.
 */
const struct topics *const *batch_topics(const struct batch *b);
size_t *batch_counts(struct batch *b);
void batch_set_fanouts(struct batch *b);

#endif

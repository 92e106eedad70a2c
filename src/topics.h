/* topics.h: topic names, the topic sets of subscribers and messages, and the index that routes by them. */
#ifndef HOOKCAST_TOPICS_H
#define HOOKCAST_TOPICS_H

#include <stddef.h>

#define TOPIC_MAX     128 /* bytes in a name, ".*" aside */
#define TOPICS_MAX    64  /* topics a subscriber or a message may name */
#define TOPICS_ERRLEN 200

/*
 * An immutable, reference-counted set of topics, kept sorted.  A name is
 * [A-Za-z0-9._-]{1,128}; a subscriber's set may also hold patterns, a name
 * followed by ".*", which match every topic that begins with the name and a
 * dot ("orders.*" matches "orders.paid" and "orders.eu.paid", not
 * "orders").  NULL stands for the empty set: a subscriber with no topics
 * gets everything, a message with none goes to everyone.
 */
struct topics;

enum topics_status { TOPICS_OK, TOPICS_INVALID, TOPICS_NOMEM };

/*
 * Builds the set named by VALUES (N query values, each one topic or a
 * comma-separated list).  PATTERNS allows "name.*" entries, and a lone "*"
 * for "every topic" (the empty set).  On TOPICS_OK *out holds the set (NULL
 * when empty; the caller owns the reference); on TOPICS_INVALID err says
 * what is wrong; nothing is allocated on error.
 */
enum topics_status topics_parse(const char *const *values, size_t n,
    int patterns, struct topics **out, char err[TOPICS_ERRLEN]);

struct topics *topics_ref(struct topics *t);
void topics_unref(struct topics *t); /* NULL-safe */

size_t topics_count(const struct topics *t); /* 0 for NULL */
const char *topics_at(const struct topics *t, size_t i);
/* "a,b.*,c": the sorted set as it is stored and listed ("" for NULL). */
const char *topics_text(const struct topics *t);
int topics_equal(const struct topics *a, const struct topics *b);

/* 1 when a message on MSG goes to a subscriber of SUB. */
int topics_match(const struct topics *sub, const struct topics *msg);
/* The same on the stored text forms (for the store's SQL function). */
int topics_match_text(const char *sub, const char *msg);

/*
 * Members (opaque pointers) filed under the topics of their set, so that a
 * message finds its subscribers in O(its topics), not O(subscribers).
 * Members with the empty set are not filed: the caller knows them all.
 * Not locked: its owner serializes access.
 */
struct topic_index;

struct topic_index *topic_index_new(void);
void topic_index_free(struct topic_index *idx); /* NULL-safe */
/* Files M under every entry of T (nothing for NULL): 0, or -1 (unchanged) when out of memory. */
int topic_index_add(struct topic_index *idx, const struct topics *t, void *m);
void topic_index_remove(struct topic_index *idx, const struct topics *t,
    void *m);

/* A growable array of members, reused from one match to the next. */
struct topic_vec {
	void **v;
	size_t n, cap;
};

/*
 * Sets OUT to the members whose topic set matches MSG (not NULL), each once.
 * -1 when out of memory (OUT then holds a part of them).
 */
int topic_index_match(const struct topic_index *idx, const struct topics *msg,
    struct topic_vec *out);

#endif

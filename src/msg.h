/* msg.h: a published message, held once and shared by reference count. */
#ifndef HOOKCAST_MSG_H
#define HOOKCAST_MSG_H

#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>

struct topics;

struct msg;

#define MSG_CTYPE_MAX 256
#define MSG_IDLEN     36 /* "msg_" and 32 hex digits */

/*
 * Copies BODY and builds the delivery headers once (Content-Type CTYPE, or
 * application/octet-stream when NULL or empty; webhook-id ID, or a new
 * random one when ID is NULL).  The caller holds the one reference.
 * Returns NULL when out of memory or when CTYPE or ID is too long.
 */
struct msg *msg_new(const char *id, const char *ctype, const void *body,
    size_t len);
struct msg *msg_ref(struct msg *m);
/* Drops a reference; the last one frees the message.  NULL-safe. */
void msg_unref(struct msg *m);

const char *msg_body(const struct msg *m);
size_t msg_len(const struct msg *m);
/* The webhook-id: the same for every delivery of the message, ever. */
const char *msg_id(const struct msg *m);
const char *msg_ctype(const struct msg *m);
/* The store's sequence number, 0 until the store assigns it. */
uint64_t msg_seq(const struct msg *m);
void msg_set_seq(struct msg *m, uint64_t seq);
/* Wall-clock ms of its commit (the store's `created`), 0 until committed. */
int64_t msg_created(const struct msg *m);
void msg_set_created(struct msg *m, int64_t real_ms);
/*
 * The topics it was published on (NULL: none, it goes to everyone).  Set
 * once, before the message is shared; the message takes the reference.
 */
const struct topics *msg_topics(const struct msg *m);
void msg_set_topics(struct msg *m, struct topics *t);
/*
 * Request headers for every delivery of this message; owned by the message
 * and never changed.  Not const only because a transfer chains its own
 * headers in front of them, and curl's list has no const form.
 */
struct curl_slist *msg_headers(const struct msg *m);

/* Bytes of message bodies alive in the process right now. */
size_t msg_bytes_alive(void);

#endif

/* msg.h: a published message, held once and shared by reference count. */
#ifndef HOOKCAST_MSG_H
#define HOOKCAST_MSG_H

#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>

struct msg;

#define MSG_CTYPE_MAX	256

/*
 * Copies BODY and builds the delivery headers once (Content-Type CTYPE, or
 * application/octet-stream when NULL or empty).  The caller holds the one
 * reference.  Returns NULL when out of memory.
 */
struct msg *msg_new(const char *ctype, const void *body, size_t len);
struct msg *msg_ref(struct msg *m);
/* Drops a reference; the last one frees the message.  NULL-safe. */
void msg_unref(struct msg *m);

const char *msg_body(const struct msg *m);
size_t msg_len(const struct msg *m);
uint64_t msg_id(const struct msg *m);
/* Request headers for every delivery of this message; owned by the message. */
const struct curl_slist *msg_headers(const struct msg *m);

/* Bytes of message bodies alive in the process right now. */
size_t msg_bytes_alive(void);

#endif

/* msg.c: reference-counted message bodies and the byte count behind back-pressure. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "msg.h"
#include "topics.h"

struct msg {
	atomic_uint msg_refs;
	uint64_t msg_seq;
	int64_t msg_created;
	struct topics *msg_topics;
	char msg_id[MSG_IDLEN + 1];
	char msg_ctype[MSG_CTYPE_MAX + 1];
	size_t msg_len;
	struct curl_slist *msg_headers;
	char msg_body[];
};

static atomic_size_t bytes_alive;

/*
 * "msg_" and 128 random bits in hex: unique without coordination.  The
 * kernel's random bytes are fetched a page at a time per thread: one
 * system call a publish was a tenth of the cost of taking one.
 */
static int
new_id(char id[MSG_IDLEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	static _Thread_local unsigned char pool[4096];
	static _Thread_local size_t used = sizeof(pool);
	unsigned char *r;

	if (used == sizeof(pool)) {
		if (getrandom(pool, sizeof(pool), 0) != (ssize_t)sizeof(pool))
			return -1;
		used = 0;
	}
	r = pool + used;
	used += 16;
	memcpy(id, "msg_", 4);
	for (size_t i = 0; i < 16; i++) {
		id[4 + 2 * i] = hex[r[i] >> 4];
		id[5 + 2 * i] = hex[r[i] & 15];
	}
	id[MSG_IDLEN] = '\0';
	return 0;
}

struct msg *
msg_new(const char *id, const char *ctype, const void *body, size_t len)
{
	char line[sizeof("Content-Type: ") + MSG_CTYPE_MAX];
	char idbuf[MSG_IDLEN + 1];
	struct curl_slist *h = NULL, *t;
	struct msg *m;

	if (ctype == NULL || *ctype == '\0')
		ctype = "application/octet-stream";
	if (strlen(ctype) > MSG_CTYPE_MAX)
		return NULL;
	if (id == NULL) {
		if (new_id(idbuf) == -1)
			return NULL;
		id = idbuf;
	} else if (strlen(id) > MSG_IDLEN)
		return NULL;
	snprintf(line, sizeof(line), "Content-Type: %s", ctype);
	if ((t = curl_slist_append(h, line)) == NULL)
		goto fail;
	h = t;
	snprintf(line, sizeof(line), "webhook-id: %s", id);
	if ((t = curl_slist_append(h, line)) == NULL)
		goto fail;
	h = t;
	/* An empty Expect stops libcurl waiting for 100-continue on big bodies. */
	if ((t = curl_slist_append(h, "Expect:")) == NULL)
		goto fail;
	h = t;
	if ((m = malloc(sizeof(*m) + len)) == NULL)
		goto fail;
	atomic_init(&m->msg_refs, 1);
	m->msg_seq = 0;
	m->msg_created = 0;
	m->msg_topics = NULL;
	snprintf(m->msg_id, sizeof(m->msg_id), "%s", id);
	snprintf(m->msg_ctype, sizeof(m->msg_ctype), "%s", ctype);
	m->msg_len = len;
	m->msg_headers = h;
	if (len > 0)
		memcpy(m->msg_body, body, len);
	atomic_fetch_add(&bytes_alive, len);
	return m;

fail:
	curl_slist_free_all(h);
	return NULL;
}

struct msg *
msg_ref(struct msg *m)
{
	atomic_fetch_add_explicit(&m->msg_refs, 1, memory_order_relaxed);
	return m;
}

void
msg_unref(struct msg *m)
{
	if (m == NULL)
		return;
	if (atomic_fetch_sub_explicit(&m->msg_refs, 1, memory_order_acq_rel) !=
	    1)
		return;
	atomic_fetch_sub(&bytes_alive, m->msg_len);
	curl_slist_free_all(m->msg_headers);
	topics_unref(m->msg_topics);
	free(m);
}

const char *
msg_body(const struct msg *m)
{
	return m->msg_body;
}

size_t
msg_len(const struct msg *m)
{
	return m->msg_len;
}

const char *
msg_id(const struct msg *m)
{
	return m->msg_id;
}

const char *
msg_ctype(const struct msg *m)
{
	return m->msg_ctype;
}

uint64_t
msg_seq(const struct msg *m)
{
	return m->msg_seq;
}

void
msg_set_seq(struct msg *m, uint64_t seq)
{
	m->msg_seq = seq;
}

int64_t
msg_created(const struct msg *m)
{
	return m->msg_created;
}

void
msg_set_created(struct msg *m, int64_t real_ms)
{
	m->msg_created = real_ms;
}

const struct topics *
msg_topics(const struct msg *m)
{
	return m->msg_topics;
}

void
msg_set_topics(struct msg *m, struct topics *t)
{
	topics_unref(m->msg_topics);
	m->msg_topics = t;
}

struct curl_slist *
msg_headers(const struct msg *m)
{
	return m->msg_headers;
}

size_t
msg_bytes_alive(void)
{
	return atomic_load(&bytes_alive);
}

/* batch.c: a /sendMessages body: its JSON array checked and made messages. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "batch.h"
#include "msg.h"
#include "params.h"

struct batch {
	size_t b_n;
	size_t b_bytes;
	struct store_pub *b_pubs;
	char **b_keys;			/* the pubs' sp_key, owned */
	const struct topics **b_topics; /* borrowed from the messages */
	size_t *b_counts;
};

/* "Error: " and the rest, printf-style; BATCH_INVALID. */
static enum batch_status invalid(char err[BATCH_ERRLEN], const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static enum batch_status
invalid(char err[BATCH_ERRLEN], const char *fmt, ...)
{
	va_list ap;
	int n;

	n = snprintf(err, BATCH_ERRLEN, "Error: ");
	va_start(ap, fmt);
	vsnprintf(err + n, BATCH_ERRLEN - (size_t)n, fmt, ap);
	va_end(ap);
	return BATCH_INVALID;
}

static int
b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/*
 * Strict, padded standard base64 (RFC 4648 4): S (LEN bytes) decoded into
 * OUT (room for LEN / 4 * 3), its length in *outlen; -1 if S is not that.
 */
static int
b64_decode(const char *s, size_t len, unsigned char *out, size_t *outlen)
{
	size_t pad = 0, o = 0;
	unsigned int acc = 0;

	if (len % 4 != 0)
		return -1;
	if (len > 0 && s[len - 1] == '=')
		pad = len > 1 && s[len - 2] == '=' ? 2 : 1;
	for (size_t i = 0; i < len - pad; i++) {
		int v = b64_value((unsigned char)s[i]);

		if (v < 0)
			return -1;
		acc = acc << 6 | (unsigned int)v;
		if (i % 4 == 3) {
			out[o++] = (unsigned char)(acc >> 16);
			out[o++] = (unsigned char)(acc >> 8);
			out[o++] = (unsigned char)acc;
			acc = 0;
		}
	}
	/* The last group's unused bits must be zero: one spelling a body. */
	if (pad == 1) {
		if (acc & 0x3)
			return -1;
		out[o++] = (unsigned char)(acc >> 10);
		out[o++] = (unsigned char)(acc >> 2);
	} else if (pad == 2) {
		if (acc & 0xf)
			return -1;
		out[o++] = (unsigned char)(acc >> 4);
	}
	*outlen = o;
	return 0;
}

/*
 * cJSON ends its strings at a NUL, so a "\u0000" in one, or a NUL byte
 * (which it takes in a string), would cut a body short without a word:
 * such a body goes in body_base64.  A backslash only ever appears in a
 * string, where it escapes the character after it.
 */
static int
has_nul(const char *s, size_t len)
{
	if (memchr(s, '\0', len) != NULL)
		return 1;
	for (size_t i = 0; i + 1 < len; i++) {
		if (s[i] != '\\')
			continue;
		if (s[i + 1] == 'u' && i + 5 < len &&
		    memcmp(s + i + 2, "0000", 4) == 0)
			return 1;
		i++;
	}
	return 0;
}

/* The string F: 0 with *out (NULL for absent or null), or -1. */
static int
string_field(const cJSON *f, const char **out)
{
	*out = NULL;
	if (f == NULL || cJSON_IsNull(f))
		return 0;
	if (!cJSON_IsString(f))
		return -1;
	*out = f->valuestring;
	return 0;
}

/* Item I's topics (NULL: none): BATCH_OK or not, with err set. */
static enum batch_status
item_topics(const cJSON *f, size_t i, struct topics **out,
    char err[BATCH_ERRLEN])
{
	struct params_topics pt = { .pt_n = 0 };
	char terr[TOPICS_ERRLEN];
	const cJSON *t;

	*out = NULL;
	if (f == NULL || cJSON_IsNull(f))
		return BATCH_OK;
	if (cJSON_IsString(f))
		params_topic_add(&pt, f->valuestring);
	else if (cJSON_IsArray(f)) {
		cJSON_ArrayForEach(t, f)
		{
			if (!cJSON_IsString(t))
				return invalid(err,
				    "item %zu: \"topic\" is an array of "
				    "strings.",
				    i);
			params_topic_add(&pt, t->valuestring);
		}
	} else
		return invalid(err,
		    "item %zu: \"topic\" is an array of strings, or a "
		    "string.",
		    i);
	switch (params_topics_parse(&pt, 0, out, terr)) {
	case TOPICS_OK:
		return BATCH_OK;
	case TOPICS_INVALID:
		/* Its own "Error: " goes after the item's. */
		return invalid(err, "item %zu: %s", i,
		    strncmp(terr, "Error: ", 7) == 0 ? terr + 7 : terr);
	case TOPICS_NOMEM:
		break;
	}
	return BATCH_NOMEM;
}

/* The fields an item may have; anything else is a mistake to point out. */
enum field { F_BODY, F_BODY64, F_TOPIC, F_CTYPE, F_KEY, NFIELDS };
static const char *const field_names[NFIELDS] = {
	[F_BODY] = "body",
	[F_BODY64] = "body_base64",
	[F_TOPIC] = "topic",
	[F_CTYPE] = "content_type",
	[F_KEY] = "idempotency_key",
};

/*
 * Item I (ITEM) into P, its key's copy in *KEYP: BATCH_OK, or not with
 * err set and nothing kept.
 */
static enum batch_status
item_parse(const cJSON *item, size_t i, struct store_pub *p, char **keyp,
    char err[BATCH_ERRLEN])
{
	const cJSON *f[NFIELDS] = { NULL }, *c;
	const char *body, *body64, *ctype, *key, *no;
	unsigned char *decoded = NULL;
	struct topics *topics = NULL;
	enum batch_status st;
	size_t len;
	int k;

	if (!cJSON_IsObject(item))
		return invalid(err, "item %zu: not an object.", i);
	cJSON_ArrayForEach(c, item)
	{
		for (k = 0; k < NFIELDS; k++)
			if (strcmp(c->string, field_names[k]) == 0)
				break;
		if (k == NFIELDS)
			return invalid(err,
			    "item %zu: unknown field \"%.64s\".", i, c->string);
		if (f[k] != NULL)
			return invalid(err, "item %zu: \"%s\" given twice.", i,
			    field_names[k]);
		f[k] = c;
	}
	if (string_field(f[F_BODY], &body) == -1 ||
	    string_field(f[F_BODY64], &body64) == -1)
		return invalid(err,
		    "item %zu: \"body\" and \"body_base64\" are "
		    "strings.",
		    i);
	if ((body == NULL) == (body64 == NULL))
		return invalid(err,
		    "item %zu: exactly one of \"body\" and "
		    "\"body_base64\" is needed.",
		    i);
	if (string_field(f[F_CTYPE], &ctype) == -1)
		return invalid(err, "item %zu: \"content_type\" is a string.",
		    i);
	if (string_field(f[F_KEY], &key) == -1)
		return invalid(err,
		    "item %zu: \"idempotency_key\" is a "
		    "string.",
		    i);
	if ((no = params_publish_check(ctype, key)) != NULL)
		return invalid(err, "item %zu: %s", i, no);
	if ((st = item_topics(f[F_TOPIC], i, &topics, err)) != BATCH_OK)
		return st;
	if (body64 != NULL) {
		len = strlen(body64);
		if ((decoded = malloc(len / 4 * 3 + 1)) == NULL)
			goto nomem;
		if (b64_decode(body64, len, decoded, &len) == -1) {
			free(decoded);
			topics_unref(topics);
			return invalid(err,
			    "item %zu: \"body_base64\" is not "
			    "padded standard base64.",
			    i);
		}
		body = (const char *)decoded;
	} else
		len = strlen(body);
	if ((key != NULL && (*keyp = strdup(key)) == NULL) ||
	    (p->sp_msg = msg_new(NULL, ctype, body, len)) == NULL)
		goto nomem;
	msg_set_topics(p->sp_msg, topics);
	p->sp_key = *keyp;
	free(decoded);
	return BATCH_OK;

nomem:
	free(decoded);
	topics_unref(topics);
	free(*keyp);
	*keyp = NULL;
	return BATCH_NOMEM;
}

enum batch_status
batch_parse(const char *body, size_t len, long max, struct batch **out,
    char err[BATCH_ERRLEN])
{
	enum batch_status st = BATCH_NOMEM;
	const char *end = NULL;
	struct batch *b = NULL;
	const cJSON *item;
	cJSON *root;
	size_t n, i = 0;

	*out = NULL;
	if (len == 0)
		return invalid(err,
		    "No body: a JSON array of messages is "
		    "expected.");
	if (has_nul(body, len))
		return invalid(err,
		    "A NUL (\\u0000) in a string: send such a body in "
		    "\"body_base64\".");
	if ((root = cJSON_ParseWithLengthOpts(body, len, &end, 0)) == NULL) {
		if (end == NULL)
			return BATCH_NOMEM;
		return invalid(err,
		    "Not JSON (at byte %zu): a JSON array of "
		    "messages is expected.",
		    (size_t)(end - body));
	}
	/* Only blanks after the array. */
	while (end < body + len && strchr(" \t\r\n", *end) != NULL)
		end++;
	if (end != body + len) {
		st = invalid(err,
		    "Not JSON (at byte %zu): more after the "
		    "array.",
		    (size_t)(end - body));
		goto fail;
	}
	if (!cJSON_IsArray(root)) {
		st = invalid(err, "A JSON array of messages is expected.");
		goto fail;
	}
	if ((n = (size_t)cJSON_GetArraySize(root)) == 0) {
		st = invalid(err, "No messages: the array is empty.");
		goto fail;
	}
	if (n > (size_t)max) {
		st = invalid(err,
		    "item %ld: more than max_batch (%ld) messages "
		    "in one batch.",
		    max, max);
		goto fail;
	}
	if ((b = calloc(1, sizeof(*b))) == NULL ||
	    (b->b_pubs = calloc(n, sizeof(b->b_pubs[0]))) == NULL ||
	    (b->b_keys = calloc(n, sizeof(b->b_keys[0]))) == NULL ||
	    (b->b_topics = calloc(n, sizeof(b->b_topics[0]))) == NULL ||
	    (b->b_counts = calloc(n, sizeof(b->b_counts[0]))) == NULL)
		goto fail;
	cJSON_ArrayForEach(item, root)
	{
		if ((st = item_parse(item, i, &b->b_pubs[i], &b->b_keys[i],
			 err)) != BATCH_OK)
			goto fail;
		b->b_topics[i] = msg_topics(b->b_pubs[i].sp_msg);
		b->b_bytes += msg_len(b->b_pubs[i].sp_msg);
		b->b_n = ++i;
	}
	cJSON_Delete(root);
	*out = b;
	return BATCH_OK;

fail:
	cJSON_Delete(root);
	batch_free(b);
	return st;
}

void
batch_free(struct batch *b)
{
	if (b == NULL)
		return;
	for (size_t i = 0; i < b->b_n; i++) {
		msg_unref(b->b_pubs[i].sp_msg);
		free(b->b_keys[i]);
	}
	free(b->b_pubs);
	free(b->b_keys);
	free(b->b_topics);
	free(b->b_counts);
	free(b);
}

size_t
batch_count(const struct batch *b)
{
	return b->b_n;
}

size_t
batch_bytes(const struct batch *b)
{
	return b->b_bytes;
}

struct store_pub *
batch_pubs(struct batch *b)
{
	return b->b_pubs;
}

const struct topics *const *
batch_topics(const struct batch *b)
{
	return b->b_topics;
}

size_t *
batch_counts(struct batch *b)
{
	return b->b_counts;
}

void
batch_set_fanouts(struct batch *b)
{
	for (size_t i = 0; i < b->b_n; i++)
		b->b_pubs[i].sp_fanout = (long)b->b_counts[i];
}

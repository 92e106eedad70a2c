/* listing.c: the subscriber listing in the seed's text, JSON and HTML. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cJSON.h>

#include "clock.h"
#include "listing.h"
#include "topics.h"

/* The three formats, in enum listing_format order: one row each. */
static const struct format {
	const char *f_name;  /* ?format= */
	const char *f_media; /* matched against Accept */
	const char *f_ctype; /* Content-Type answered */
} formats[] = {
	[LISTING_TEXT] = { "text", "text/plain", "text/plain; charset=utf-8" },
	[LISTING_JSON] = { "json", "application/json", "application/json" },
	[LISTING_HTML] = { "html", "text/html", "text/html; charset=utf-8" },
};
#define NFORMATS (sizeof(formats) / sizeof(formats[0]))

const char *
listing_content_type(enum listing_format f)
{
	return formats[f].f_ctype;
}

/*
 * How well the media range R (length RLEN, parameters stripped) matches
 * TYPE: 3 exactly, 2 by type/x, 1 by x/x, 0 not at all.
 */
static int
range_match(const char *r, size_t rlen, const char *type)
{
	const char *slash = strchr(type, '/');
	size_t major = (size_t)(slash - type);

	if (rlen == strlen(type) && strncasecmp(r, type, rlen) == 0)
		return 3;
	if (rlen == major + 2 && strncasecmp(r, type, major + 1) == 0 &&
	    r[major + 1] == '*')
		return 2;
	if (rlen == 3 && strncmp(r, "*/*", 3) == 0)
		return 1;
	return 0;
}

/* The q-value ACCEPT gives TYPE, taken from its most specific matching range. */
static double
accept_q(const char *accept, const char *type)
{
	const char *p = accept;
	double q = 0.0;
	int best = 0;

	while (*p != '\0') {
		const char *end = p + strcspn(p, ","), *semi, *qp;
		size_t rlen;
		double rq = 1.0;
		int m;

		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		semi = memchr(p, ';', (size_t)(end - p));
		rlen = (size_t)((semi != NULL ? semi : end) - p);
		while (rlen > 0 && (p[rlen - 1] == ' ' || p[rlen - 1] == '\t'))
			rlen--;
		for (qp = semi; qp != NULL && qp < end;
		     qp = memchr(qp + 1, ';', (size_t)(end - qp - 1))) {
			const char *v = qp + 1;

			while (*v == ' ' || *v == '\t')
				v++;
			if ((v[0] == 'q' || v[0] == 'Q') && v[1] == '=')
				rq = strtod(v + 2, NULL);
		}
		if ((m = range_match(p, rlen, type)) > best) {
			best = m;
			q = rq;
		}
		p = (*end == ',') ? end + 1 : end;
	}
	return q;
}

int
listing_negotiate(const char *format, const char *accept,
    enum listing_format *out)
{
	enum listing_format pick = LISTING_TEXT;
	double best = 0.0, q;

	if (format != NULL) {
		for (size_t i = 0; i < NFORMATS; i++)
			if (strcmp(format, formats[i].f_name) == 0) {
				*out = (enum listing_format)i;
				return 0;
			}
		return -1;
	}
	if (accept != NULL && *accept != '\0')
		for (size_t i = 0; i < NFORMATS; i++)
			if ((q = accept_q(accept, formats[i].f_media)) > best) {
				best = q;
				pick = (enum listing_format)i;
			}
	*out = pick;
	return 0;
}

/* ---- a growable output buffer ------------------------------------------ */

struct buf {
	char *b_data;
	size_t b_len, b_cap;
	int b_oom;
};

static void
buf_reserve(struct buf *b, size_t more)
{
	char *p;
	size_t cap;

	if (b->b_oom || b->b_len + more < b->b_cap)
		return;
	cap = b->b_cap ? b->b_cap : 4096;
	while (cap <= b->b_len + more)
		cap *= 2;
	if ((p = realloc(b->b_data, cap)) == NULL) {
		b->b_oom = 1;
		return;
	}
	b->b_data = p;
	b->b_cap = cap;
}

static void
buf_add(struct buf *b, const char *s, size_t n)
{
	buf_reserve(b, n);
	if (b->b_oom)
		return;
	memcpy(b->b_data + b->b_len, s, n);
	b->b_len += n;
}

static void buf_printf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	buf_reserve(b, (size_t)n + 1);
	if (b->b_oom)
		return;
	va_start(ap, fmt);
	vsnprintf(b->b_data + b->b_len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->b_len += (size_t)n;
}

/* Appends S with the five characters HTML gives meaning to escaped. */
static void
buf_html(struct buf *b, const char *s)
{
	for (; *s != '\0'; s++) {
		switch (*s) {
		case '&':
			buf_add(b, "&amp;", 5);
			break;
		case '<':
			buf_add(b, "&lt;", 4);
			break;
		case '>':
			buf_add(b, "&gt;", 4);
			break;
		case '"':
			buf_add(b, "&quot;", 6);
			break;
		case '\'':
			buf_add(b, "&#39;", 5);
			break;
		default:
			buf_add(b, s, 1);
			break;
		}
	}
}

static char *
buf_finish(struct buf *b, size_t *len)
{
	if (b->b_oom) {
		free(b->b_data);
		return NULL;
	}
	buf_reserve(b, 1); /* a zero-length listing still gets a buffer */
	if (b->b_oom) {
		free(b->b_data);
		return NULL;
	}
	*len = b->b_len;
	return b->b_data;
}

/* ---- the three renderings ---------------------------------------------- */

/* The seed's line: fmt.Fprintln(w, address, " : ", time) puts a space between operands. */
static char *
render_text(struct sub **subs, size_t n, size_t *len)
{
	char ka[CLOCK_RFC3339_LEN];
	struct buf b = { 0 };

	for (size_t i = 0; i < n; i++) {
		struct topics *t = sub_topics(subs[i]);

		clock_rfc3339(sub_keepalive_ms(subs[i]), ka);
		/* The seed's line; topics and a failing state follow it. */
		buf_printf(&b, "%s  :  %s%s%s%s\n", sub_address(subs[i]), ka,
		    t != NULL ? "  topics=" : "", topics_text(t),
		    sub_state(subs[i]) == SUB_FAILING ? "  failing" : "");
		topics_unref(t);
	}
	return buf_finish(&b, len);
}

static void
json_add_count(cJSON *o, const char *key, atomic_uint_fast64_t *v)
{
	char num[24];

	/* Raw: cJSON would print the double through "%1.15g" and sscanf it back. */
	snprintf(num, sizeof(num), "%llu", (unsigned long long)atomic_load(v));
	cJSON_AddRawToObject(o, key, num);
}

/* "topics": [...], empty for a subscriber that takes every topic. */
static void
json_add_topics(cJSON *o, struct sub *s)
{
	struct topics *t = sub_topics(s);
	cJSON *arr = cJSON_AddArrayToObject(o, "topics");

	for (size_t i = 0; arr != NULL && i < topics_count(t); i++)
		cJSON_AddItemToArray(arr, cJSON_CreateString(topics_at(t, i)));
	topics_unref(t);
}

static cJSON *
json_subscriber(struct sub *s, long ttl_ms)
{
	char t[CLOCK_RFC3339_LEN], err[SUB_ERRLEN];
	char secret[SIGN_SECRET_MAX + 1];
	struct sub_counters *c = sub_counters(s);
	int64_t ka = sub_keepalive_ms(s);
	cJSON *o;

	if ((o = cJSON_CreateObject()) == NULL)
		return NULL;
	cJSON_AddStringToObject(o, "address", sub_address(s));
	cJSON_AddStringToObject(o, "url", sub_url_text(s));
	cJSON_AddNumberToObject(o, "shard", (double)sub_shard(s));
	clock_rfc3339(sub_registered_ms(s), t);
	cJSON_AddStringToObject(o, "registered_at", t);
	clock_rfc3339(ka, t);
	cJSON_AddStringToObject(o, "last_keepalive", t);
	clock_rfc3339(ka + ttl_ms, t);
	cJSON_AddStringToObject(o, "expires_at", t);
	cJSON_AddStringToObject(o, "state",
	    sub_state(s) == SUB_FAILING ? "failing" : "active");
	json_add_topics(o, s);
	sub_get_secret(s, secret);
	/* Whether it has a secret of its own; never the secret. */
	cJSON_AddBoolToObject(o, "own_secret", *secret != '\0');
	explicit_bzero(secret, sizeof(secret));
	json_add_count(o, "queued", &c->queued);
	json_add_count(o, "in_flight", &c->in_flight);
	json_add_count(o, "delivered", &c->delivered);
	json_add_count(o, "failed", &c->failed);
	json_add_count(o, "retrying", &c->retrying);
	sub_get_error(s, err);
	if (err[0] != '\0')
		cJSON_AddStringToObject(o, "last_error", err);
	else
		cJSON_AddNullToObject(o, "last_error");
	return o;
}

/*
 * {"subscribers":[...]}, one object at a time: cJSON encodes each into the
 * output buffer and it is freed at once, so 10,000 subscribers never need
 * 10,000 trees of nodes.
 */
static char *
render_json(struct sub **subs, size_t n, long ttl_ms, size_t *len)
{
	static const char head[] = "{\"subscribers\":[", tail[] = "]}";
	struct buf b = { 0 };

	buf_reserve(&b, 64 + n * 320); /* about what one subscriber takes */
	buf_add(&b, head, sizeof(head) - 1);
	for (size_t i = 0; i < n && !b.b_oom; i++) {
		cJSON *o = json_subscriber(subs[i], ttl_ms);
		size_t room = 512;

		if (o == NULL) {
			b.b_oom = 1;
			break;
		}
		if (i > 0)
			buf_add(&b, ",", 1);
		for (;;) {
			buf_reserve(&b, room);
			if (b.b_oom)
				break;
			if (cJSON_PrintPreallocated(o, b.b_data + b.b_len,
				(int)(b.b_cap - b.b_len), 0)) {
				b.b_len += strlen(b.b_data + b.b_len);
				break;
			}
			room *= 2;
		}
		cJSON_Delete(o);
	}
	buf_add(&b, tail, sizeof(tail) - 1);
	return buf_finish(&b, len);
}

static const char html_head[] =
    "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
    "<meta name=\"viewport\" content=\"width=device-width\">"
    "<meta http-equiv=\"refresh\" content=\"5\">"
    "<title>hookcast subscribers</title><style>"
    "body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}"
    "table{border-collapse:collapse;width:100%}"
    "th,td{padding:.35em .6em;border-bottom:1px solid #ddd;text-align:left}"
    "th{background:#f4f4f4}td.n{text-align:right;font-variant-numeric:"
    "tabular-nums}.err{color:#b00}.muted{color:#888}"
    "</style></head><body>\n";

static char *
render_html(struct sub **subs, size_t n, long ttl_ms, int64_t now_ms,
    size_t *len)
{
	char ka[CLOCK_RFC3339_LEN], err[SUB_ERRLEN];
	struct buf b = { 0 };
	struct topics *t;

	buf_add(&b, html_head, sizeof(html_head) - 1);
	buf_printf(&b,
	    "<h1>hookcast subscribers</h1>\n<p>%zu registered; "
	    "keep-alive TTL %lds.</p>\n",
	    n, ttl_ms / 1000);
	if (n == 0)
		buf_printf(&b, "<p class=\"muted\">No subscribers.</p>\n");
	else
		buf_printf(&b,
		    "<table><thead><tr><th>Address</th><th>URL</th>"
		    "<th>Topics</th><th>Last keep-alive (UTC)</th><th>Expires in</th>"
		    "<th>Queued</th><th>In flight</th><th>Delivered</th>"
		    "<th>Failed</th><th>Retrying</th><th>State</th><th>Last error</th></tr>"
		    "</thead><tbody>\n");
	for (size_t i = 0; i < n; i++) {
		struct sub *s = subs[i];
		struct sub_counters *c = sub_counters(s);
		int64_t left = sub_keepalive_ms(s) + ttl_ms - now_ms;

		clock_rfc3339(sub_keepalive_ms(s), ka);
		sub_get_error(s, err);
		buf_add(&b, "<tr><td>", 8);
		buf_html(&b, sub_address(s));
		buf_add(&b, "</td><td>", 9);
		buf_html(&b, sub_url_text(s));
		buf_add(&b, "</td><td>", 9);
		t = sub_topics(s);
		buf_html(&b, t != NULL ? topics_text(t) : "(all)");
		topics_unref(t);
		buf_printf(&b,
		    "</td><td>%s</td><td class=\"n\">%llds</td>"
		    "<td class=\"n\">%llu</td><td class=\"n\">%llu</td>"
		    "<td class=\"n\">%llu</td><td class=\"n\">%llu</td>"
		    "<td class=\"n\">%llu</td><td>%s</td><td class=\"err\">",
		    ka, (long long)(left > 0 ? left / 1000 : 0),
		    (unsigned long long)atomic_load(&c->queued),
		    (unsigned long long)atomic_load(&c->in_flight),
		    (unsigned long long)atomic_load(&c->delivered),
		    (unsigned long long)atomic_load(&c->failed),
		    (unsigned long long)atomic_load(&c->retrying),
		    sub_state(s) == SUB_FAILING ? "failing" : "active");
		buf_html(&b, err);
		buf_add(&b, "</td></tr>\n", 11);
	}
	if (n > 0)
		buf_printf(&b, "</tbody></table>\n");
	buf_printf(&b, "</body></html>\n");
	return buf_finish(&b, len);
}

char *
listing_render(enum listing_format f, struct sub **subs, size_t n, long ttl_ms,
    int64_t now_ms, size_t *len)
{
	switch (f) {
	case LISTING_JSON:
		return render_json(subs, n, ttl_ms, len);
	case LISTING_HTML:
		return render_html(subs, n, ttl_ms, now_ms, len);
	default:
		return render_text(subs, n, len);
	}
}

/*
 * metrics.c: counters and histograms for GET /metrics, counted lock-free.
 *
 * Every count is a relaxed atomic add: no count orders anything else, and a
 * scrape only needs each value to be one that was true at some moment.  The
 * delivery thread, the hot path, pays three to five adds per attempt.  What
 * the delivery thread writes and what the HTTP threads write sit on cache
 * lines of their own, so neither side's adds bounce the other's lines.
 * Gauges are not kept here: api_ops.c takes them from their owners when
 * scraped.
 */
#include <inttypes.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

/* Bucket bounds (le) in microseconds, with their labels. */
static const struct bound {
	int64_t b_us;
	const char *b_le;
} bounds[] = {
	{ 1000, "0.001" },
	{ 2500, "0.0025" },
	{ 5000, "0.005" },
	{ 10000, "0.01" },
	{ 25000, "0.025" },
	{ 50000, "0.05" },
	{ 100000, "0.1" },
	{ 250000, "0.25" },
	{ 500000, "0.5" },
	{ 1000000, "1" },
	{ 2500000, "2.5" },
	{ 5000000, "5" },
	{ 10000000, "10" },
	{ 30000000, "30" },
	{ 60000000, "60" },
	/* Only for publish to delivery, which retries stretch. */
	{ 300000000, "300" },
	{ 3600000000, "3600" },
};
#define NBOUNDS	       (sizeof(bounds) / sizeof(bounds[0]))
#define ATTEMPT_BOUNDS 15 /* one attempt lasts delivery_timeout at most */

struct histogram {
	size_t h_nbounds; /* the first h_nbounds of bounds[] */
	/* Per bucket, not cumulative (one add an observation); last: +Inf. */
	atomic_uint_fast64_t h_counts[NBOUNDS + 1];
	atomic_uint_fast64_t h_sum_us;
};

#define ADD(v, n) atomic_fetch_add_explicit(&(v), (n), memory_order_relaxed)
#define GET(v)	  ((uint64_t)atomic_load_explicit(&(v), memory_order_relaxed))

#define STATUS_MIN 100
#define STATUS_MAX 599

static struct {
	/* The delivery thread's. */
	_Alignas(64) atomic_uint_fast64_t deliveries[METRICS_RESULTS];
	atomic_uint_fast64_t retries;
	struct histogram attempt;
	struct histogram publish;
	/* The others': the store's writer, the reaper, the HTTP threads. */
	_Alignas(64) atomic_uint_fast64_t accepted;
	atomic_uint_fast64_t dead_letters;
	atomic_uint_fast64_t evictions;
	atomic_uint_fast64_t cuts[METRICS_CUTS];
	atomic_uint_fast64_t refusals[2]; /* max_connections, per IP */
	atomic_uint_fast64_t http[METRICS_ENDPOINTS_MAX]
				 [STATUS_MAX - STATUS_MIN + 1];
} m = {
	.attempt = { .h_nbounds = ATTEMPT_BOUNDS },
	.publish = { .h_nbounds = NBOUNDS },
};

static const char *const result_names[METRICS_RESULTS] = {
	[METRICS_OK] = "ok",
	[METRICS_FAILED] = "failed",
	[METRICS_TIMEOUT] = "timeout",
	[METRICS_REFUSED] = "refused",
};

static const char *const cut_names[METRICS_CUTS] = {
	[METRICS_CUT_HEADER] = "header",
	[METRICS_CUT_BODY] = "body",
	[METRICS_CUT_IDLE] = "idle",
	[METRICS_CUT_ROOM] = "room",
};

static void
observe(struct histogram *h, int64_t us)
{
	size_t i = 0;

	if (us < 0)
		us = 0; /* the wall clock stepped back */
	while (i < h->h_nbounds && us > bounds[i].b_us)
		i++;
	ADD(h->h_counts[i], 1);
	ADD(h->h_sum_us, (uint_fast64_t)us);
}

void
metrics_accepted(void)
{
	ADD(m.accepted, 1);
}

void
metrics_delivery(enum metrics_result r, int64_t duration_us)
{
	ADD(m.deliveries[r], 1);
	observe(&m.attempt, duration_us);
}

void
metrics_delivered_after(int64_t age_ms)
{
	observe(&m.publish, age_ms * 1000);
}

void
metrics_retry(void)
{
	ADD(m.retries, 1);
}

void
metrics_dead_letters(uint64_t n)
{
	ADD(m.dead_letters, n);
}

void
metrics_evictions(uint64_t n)
{
	ADD(m.evictions, n);
}

void
metrics_conn_cut(enum metrics_cut why)
{
	ADD(m.cuts[why], 1);
}

void
metrics_conn_refused(int per_ip)
{
	ADD(m.refusals[per_ip != 0], 1);
}

void
metrics_http(size_t endpoint, unsigned int status)
{
	if (endpoint < METRICS_ENDPOINTS_MAX && status >= STATUS_MIN &&
	    status <= STATUS_MAX)
		ADD(m.http[endpoint][status - STATUS_MIN], 1);
}

void
metrics_totals(struct metrics_totals *out)
{
	out->accepted = GET(m.accepted);
	for (size_t i = 0; i < METRICS_RESULTS; i++)
		out->deliveries[i] = GET(m.deliveries[i]);
}

/* ---- the text exposition format ---------------------------------------- */

static void
family(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
counter(FILE *f, const char *name, const char *help, uint64_t v)
{
	family(f, name, "counter", help);
	fprintf(f, "%s %" PRIu64 "\n", name, v);
}

static void
gauge(FILE *f, const char *name, const char *help, uint64_t v)
{
	family(f, name, "gauge", help);
	fprintf(f, "%s %" PRIu64 "\n", name, v);
}

/* A label value, with the three characters the format escapes escaped. */
static void
label_value(FILE *f, const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '\\' || *s == '"')
			fputc('\\', f);
		if (*s == '\n')
			fputs("\\n", f);
		else
			fputc(*s, f);
	}
}

/*
 * Cumulative buckets, and a count that is their total: read once, so that
 * _count always equals the +Inf bucket, whatever is observed meanwhile.
 */
static void
histogram(FILE *f, const char *name, const char *help, struct histogram *h)
{
	uint64_t total = 0;

	family(f, name, "histogram", help);
	for (size_t i = 0; i <= h->h_nbounds; i++) {
		total += GET(h->h_counts[i]);
		fprintf(f, "%s_bucket{le=\"%s\"} %" PRIu64 "\n", name,
		    i < h->h_nbounds ? bounds[i].b_le : "+Inf", total);
	}
	fprintf(f, "%s_sum %" PRIu64 ".%06" PRIu64 "\n%s_count %" PRIu64 "\n",
	    name, GET(h->h_sum_us) / 1000000, GET(h->h_sum_us) % 1000000, name,
	    total);
}

/*
 * One of the delivery threads' families: a series a thread, the
 * uint64_t at OFFSET in each struct metrics_thread (in microseconds, shown
 * as seconds, when MICROS).
 */
static void
per_thread(FILE *f, const char *name, const char *type, const char *help,
    const struct metrics_thread *t, size_t n, size_t offset, int micros)
{
	family(f, name, type, help);
	for (size_t i = 0; i < n; i++) {
		uint64_t v;

		memcpy(&v, (const char *)&t[i] + offset, sizeof(v));
		if (micros)
			fprintf(f,
			    "%s{thread=\"%zu\"} %" PRIu64 ".%06" PRIu64 "\n",
			    name, i, v / 1000000, v % 1000000);
		else
			fprintf(f, "%s{thread=\"%zu\"} %" PRIu64 "\n", name, i,
			    v);
	}
}

/* The delivery threads' families. */
static void
threads(FILE *f, const struct metrics_thread *t, size_t n)
{
	per_thread(f, "hookcast_delivery_thread_subscribers", "gauge",
	    "Subscribers a delivery thread owns (those in its shards).", t, n,
	    offsetof(struct metrics_thread, mt_subscribers), 0);
	per_thread(f, "hookcast_delivery_thread_in_flight", "gauge",
	    "Delivery attempts in progress on a delivery thread.", t, n,
	    offsetof(struct metrics_thread, mt_in_flight), 0);
	per_thread(f, "hookcast_delivery_thread_deliveries_total", "counter",
	    "Delivery attempts a delivery thread ended, whatever their "
	    "result.",
	    t, n, offsetof(struct metrics_thread, mt_attempts), 0);
	per_thread(f, "hookcast_delivery_thread_busy_seconds_total", "counter",
	    "CPU time a delivery thread has used.", t, n,
	    offsetof(struct metrics_thread, mt_busy_us), 1);
}

char *
metrics_render(const struct metrics_gauges *g, const char *const endpoints[],
    size_t n, size_t *len)
{
	char *buf = NULL;
	size_t size = 0;
	FILE *f;
	int bad;

	if ((f = open_memstream(&buf, &size)) == NULL)
		return NULL;
	counter(f, "hookcast_messages_accepted_total",
	    "Messages /sendMessage and "
	    "/sendMessages accepted (committed to the store); a repeated Idempotency-Key is "
	    "not counted again.",
	    GET(m.accepted));
	family(f, "hookcast_deliveries_total", "counter",
	    "Delivery attempts "
	    "by how they ended: ok, the subscriber answered 2xx; timeout, "
	    "connect_timeout or delivery_timeout ran out; refused, the "
	    "connection was refused (nothing listening) or the egress policy "
	    "denied it; failed, anything else (a non-2xx answer, a redirect, "
	    "DNS, TLS or a broken connection).");
	for (size_t i = 0; i < METRICS_RESULTS; i++)
		fprintf(f,
		    "hookcast_deliveries_total{result=\"%s\"} %" PRIu64 "\n",
		    result_names[i], GET(m.deliveries[i]));
	counter(f, "hookcast_retries_total",
	    "Failed delivery attempts that "
	    "were scheduled to be tried again.",
	    GET(m.retries));
	counter(f, "hookcast_dead_letters_total",
	    "Deliveries recorded as dead "
	    "letters: retries exhausted, or pending when their subscriber was "
	    "evicted, deregistered or answered 410.",
	    GET(m.dead_letters));
	counter(f, "hookcast_evictions_total",
	    "Subscribers the reaper evicted "
	    "for want of a keep-alive within keepalive_ttl.",
	    GET(m.evictions));
	family(f, "hookcast_http_requests_total", "counter",
	    "HTTP requests "
	    "answered, by endpoint (the route's path; other for an unknown "
	    "path) and status code.");
	for (size_t e = 0; e < n && e < METRICS_ENDPOINTS_MAX; e++)
		for (unsigned s = STATUS_MIN; s <= STATUS_MAX; s++) {
			uint64_t v = GET(m.http[e][s - STATUS_MIN]);

			if (v == 0)
				continue;
			fputs("hookcast_http_requests_total{endpoint=\"", f);
			label_value(f, endpoints[e]);
			fprintf(f, "\",code=\"%u\"} %" PRIu64 "\n", s, v);
		}
	family(f, "hookcast_http_connections_cut_total", "counter",
	    "Client "
	    "connections hookcast closed itself: header, headers not complete "
	    "within header_timeout; body, a body below body_min_rate; idle, a "
	    "kept-alive connection's next request not begun within "
	    "client_timeout; room, the oldest incomplete request, cut at "
	    "max_connections for a new connection.");
	for (size_t i = 0; i < METRICS_CUTS; i++)
		fprintf(f,
		    "hookcast_http_connections_cut_total{reason=\"%s\"} %" PRIu64
		    "\n",
		    cut_names[i], GET(m.cuts[i]));
	family(f, "hookcast_http_connections_refused_total", "counter",
	    "Client connections refused at accept: limit, max_connections "
	    "with nothing incomplete to cut; per_ip, max_conns_per_ip.");
	fprintf(f,
	    "hookcast_http_connections_refused_total{reason=\"limit\"} %" PRIu64
	    "\nhookcast_http_connections_refused_total{reason="
	    "\"per_ip\"} %" PRIu64 "\n",
	    GET(m.refusals[0]), GET(m.refusals[1]));
	gauge(f, "hookcast_http_connections", "Client connections open.",
	    g->http_connections);
	family(f, "hookcast_subscribers", "gauge",
	    "Registered subscribers by "
	    "state: active, or failing (failure_threshold failures in a row; "
	    "only retry probes are sent).");
	fprintf(f,
	    "hookcast_subscribers{state=\"active\"} %" PRIu64 "\n"
	    "hookcast_subscribers{state=\"failing\"} %" PRIu64 "\n",
	    g->active, g->failing);
	gauge(f, "hookcast_queued_messages",
	    "Messages waiting for their first "
	    "attempt, counted once for each subscriber they wait for, in memory "
	    "and in the store.",
	    g->queued);
	gauge(f, "hookcast_retries_waiting",
	    "Failed deliveries waiting for "
	    "their next attempt.",
	    g->retrying);
	gauge(f, "hookcast_deliveries_in_flight",
	    "Delivery attempts in "
	    "progress.",
	    g->in_flight);
	gauge(f, "hookcast_backlog_bytes",
	    "Bytes of message bodies in the "
	    "store (what max_backlog_bytes limits).",
	    g->backlog_bytes);
	threads(f, g->threads, g->nthreads);
	histogram(f, "hookcast_delivery_duration_seconds",
	    "How long one "
	    "delivery attempt took, whatever its result (libcurl's total "
	    "time).",
	    &m.attempt);
	histogram(f, "hookcast_publish_to_delivery_seconds",
	    "From a message's "
	    "commit to its successful delivery to a subscriber, retries "
	    "included; one observation per subscriber.",
	    &m.publish);
	bad = ferror(f);
	if (fclose(f) != 0 || bad) {
		free(buf);
		return NULL;
	}
	*len = size;
	return buf;
}

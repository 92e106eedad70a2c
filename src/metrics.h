/* metrics.h: the process's counters and histograms, and their Prometheus text. */
#ifndef HOOKCAST_METRICS_H
#define HOOKCAST_METRICS_H

#include <stddef.h>
#include <stdint.h>

/*
 * The counters are the process's own: they start at zero, only grow, and
 * need no set-up.  Every function that counts is a relaxed atomic add or
 * two, safe from any thread.
 */

/* How one delivery attempt ended: hookcast_deliveries_total's result label. */
enum metrics_result {
	METRICS_OK,	 /* the subscriber answered 2xx */
	METRICS_FAILED,	 /* any other answer, or an error not below */
	METRICS_TIMEOUT, /* connect_timeout or delivery_timeout ran out */
	METRICS_REFUSED, /* connection refused, or denied by the egress policy */
};
#define METRICS_RESULTS 4

/* Endpoints hookcast_http_requests_total can tell apart (api.c names them). */
#define METRICS_ENDPOINTS_MAX 16

/* A publish committed (an idempotent repeat is not one). */
void metrics_accepted(void);
/* One attempt ended as R after DURATION_US (libcurl's total time). */
void metrics_delivery(enum metrics_result r, int64_t duration_us);
/* A successful delivery of a message committed AGE_MS ago. */
void metrics_delivered_after(int64_t age_ms);
/* A failed attempt that will be tried again. */
void metrics_retry(void);
void metrics_dead_letters(uint64_t n);
void metrics_evictions(uint64_t n);
/* Why the front end closed a client's connection itself (conns.c). */
enum metrics_cut {
	METRICS_CUT_HEADER, /* headers past header_timeout */
	METRICS_CUT_BODY,   /* body below body_min_rate */
	METRICS_CUT_IDLE,   /* next request line past client_timeout */
	METRICS_CUT_ROOM,   /* the oldest incomplete, at max_connections */
};
#define METRICS_CUTS 4
void metrics_conn_cut(enum metrics_cut why);
/* A connection refused at accept: PER_IP, max_conns_per_ip; else max_connections. */
void metrics_conn_refused(int per_ip);
/* A request to ENDPOINT (< METRICS_ENDPOINTS_MAX) answered STATUS (100..599). */
void metrics_http(size_t endpoint, unsigned int status);

/* What /stats samples. */
struct metrics_totals {
	uint64_t accepted;
	uint64_t deliveries[METRICS_RESULTS];
};
void metrics_totals(struct metrics_totals *out);

/* One delivery thread's figures, taken from it at scrape time. */
struct metrics_thread {
	uint64_t mt_subscribers; /* the subscribers it owns */
	uint64_t mt_in_flight;
	uint64_t mt_attempts; /* delivery attempts ended, ever */
	uint64_t mt_busy_us;  /* its CPU time */
};

/* Figures the caller takes at scrape time, from their owners. */
struct metrics_gauges {
	uint64_t active, failing; /* subscribers by state */
	uint64_t queued;	  /* deliveries waiting to start */
	uint64_t retrying;	  /* retries waiting to be due */
	uint64_t in_flight;
	uint64_t backlog_bytes;
	uint64_t http_connections;	      /* client connections open */
	const struct metrics_thread *threads; /* [nthreads], by index */
	size_t nthreads;
};

/*
 * The text exposition format (0.0.4) of every series, with G's gauges and
 * ENDPOINTS[i] as the endpoint label of metrics_http(i, ...), for i < N.
 * Returns a malloc'd buffer of *len bytes (the caller frees it), or NULL
 * when out of memory.
 */
char *metrics_render(const struct metrics_gauges *g,
    const char *const endpoints[], size_t n, size_t *len);

#endif

/* check_metrics.c: the exposition format, histogram buckets, and counts from many threads. */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "unit.h"

static const char *const endpoints[] = { "/sendMessage", "other",
    "we\"ird\\path" };
#define NENDPOINTS	(sizeof(endpoints) / sizeof(endpoints[0]))

static char *
render(const struct metrics_gauges *g)
{
	struct metrics_gauges none = { 0 };
	size_t len = 0;
	char *text;

	text = metrics_render(g != NULL ? g : &none, endpoints, NENDPOINTS,
	    &len);
	ck_assert_ptr_nonnull(text);
	ck_assert_uint_eq(strlen(text), len);
	return text;
}

/* The value of SERIES (name and labels, exactly as written), or -1 if absent. */
static double
value(const char *text, const char *series)
{
	size_t n = strlen(series);
	const char *p = text;

	while ((p = strstr(p, series)) != NULL) {
		if ((p == text || p[-1] == '\n') && p[n] == ' ')
			return strtod(p + n + 1, NULL);
		p += n;
	}
	return -1;
}

static double
must(const char *text, const char *series)
{
	double v = value(text, series);

	ck_assert_msg(v >= 0, "%s missing from:\n%s", series, text);
	return v;
}

/* How much SERIES grew; one absent before (a request series) was at zero. */
static double
delta(const char *after, const char *before, const char *series)
{
	double was = value(before, series);

	return must(after, series) - (was < 0 ? 0 : was);
}

/*
 * Line by line: each family's HELP, then its TYPE, then only its own
 * samples, each `name{label="value",...} number`; no family twice.
 */
static void
check_format(const char *text)
{
	char family[128] = "", type[16] = "", seen[4096] = " ";
	const char *line = text, *end;

	ck_assert(text[0] != '\0' && text[strlen(text) - 1] == '\n');
	for (; *line != '\0'; line = end + 1) {
		char name[128], key[160];
		const char *p;
		char *num;
		size_t n;

		end = strchr(line, '\n');
		ck_assert_ptr_nonnull(end);
		if (strncmp(line, "# HELP ", 7) == 0) {
			n = strcspn(line + 7, " \n");
			ck_assert_uint_lt(n, sizeof(family));
			snprintf(family, sizeof(family), "%.*s", (int)n, line + 7);
			ck_assert_msg(line[7 + n] == ' ' && end > line + 8 + n,
			    "HELP of %s has no text", family);
			snprintf(key, sizeof(key), " %s ", family);
			ck_assert_msg(strstr(seen, key) == NULL, "%s twice",
			    family);
			ck_assert_uint_lt(strlen(seen) + strlen(key),
			    sizeof(seen));
			snprintf(seen + strlen(seen), sizeof(seen) - strlen(seen),
			    "%s", key + 1);
			type[0] = '\0';
			continue;
		}
		if (strncmp(line, "# TYPE ", 7) == 0) {
			n = strlen(family);
			ck_assert_msg(n > 0 && strncmp(line + 7, family, n) == 0 &&
			    line[7 + n] == ' ', "TYPE without its HELP: %.*s",
			    (int)(end - line), line);
			snprintf(type, sizeof(type), "%.*s",
			    (int)(end - line - 8 - n), line + 8 + n);
			ck_assert_msg(strcmp(type, "counter") == 0 ||
			    strcmp(type, "gauge") == 0 ||
			    strcmp(type, "histogram") == 0, "type %s", type);
			continue;
		}
		ck_assert_msg(line[0] != '#', "stray comment: %.*s",
		    (int)(end - line), line);
		ck_assert_msg(type[0] != '\0', "sample before TYPE: %.*s",
		    (int)(end - line), line);
		n = strcspn(line, "{ ");
		snprintf(name, sizeof(name), "%.*s", (int)n, line);
		if (strcmp(type, "histogram") == 0)
			ck_assert_msg(strncmp(name, family, strlen(family)) == 0 &&
			    (strcmp(name + strlen(family), "_bucket") == 0 ||
			    strcmp(name + strlen(family), "_sum") == 0 ||
			    strcmp(name + strlen(family), "_count") == 0),
			    "%s in histogram %s", name, family);
		else
			ck_assert_str_eq(name, family);
		p = line + n;
		if (*p == '{') {
			/* label="value" pairs; a value escapes \ " and newline. */
			for (p++; *p != '}'; ) {
				p += strspn(p, "abcdefghijklmnopqrstuvwxyz_");
				ck_assert_msg(p[0] == '=' && p[1] == '"',
				    "label in %.*s", (int)(end - line), line);
				for (p += 2; *p != '"'; p++) {
					ck_assert(*p != '\n' && *p != '\0');
					if (*p == '\\') {
						p++;
						ck_assert(*p == '\\' ||
						    *p == '"' || *p == 'n');
					}
				}
				p++;
				if (*p == ',')
					p++;
				else
					ck_assert_msg(*p == '}', "labels in "
					    "%.*s", (int)(end - line), line);
			}
			p++;
		}
		ck_assert_msg(*p == ' ', "no value: %.*s", (int)(end - line),
		    line);
		strtod(p + 1, &num);
		ck_assert_msg(num == end && num > p + 1, "value of %.*s",
		    (int)(end - line), line);
	}
}

START_TEST(exposition_format)
{
	static const struct metrics_thread threads[] = {
		{ .mt_subscribers = 5, .mt_in_flight = 1, .mt_attempts = 70,
		    .mt_busy_us = 2500000 },
		{ .mt_subscribers = 2, .mt_in_flight = 3, .mt_attempts = 9,
		    .mt_busy_us = 1 },
	};
	struct metrics_gauges g = { .active = 3, .failing = 1, .queued = 7,
	    .retrying = 2, .in_flight = 4, .backlog_bytes = 12345,
	    .http_connections = 9, .threads = threads, .nthreads = 2 };
	char *before = render(NULL), *text;
	static const char *const families[] = {
		"hookcast_messages_accepted_total", "hookcast_deliveries_total",
		"hookcast_retries_total", "hookcast_dead_letters_total",
		"hookcast_evictions_total", "hookcast_http_requests_total",
		"hookcast_http_connections_cut_total",
		"hookcast_http_connections_refused_total",
		"hookcast_http_connections",
		"hookcast_subscribers", "hookcast_queued_messages",
		"hookcast_retries_waiting", "hookcast_deliveries_in_flight",
		"hookcast_backlog_bytes", "hookcast_delivery_duration_seconds",
		"hookcast_publish_to_delivery_seconds",
		"hookcast_delivery_thread_subscribers",
		"hookcast_delivery_thread_in_flight",
		"hookcast_delivery_thread_deliveries_total",
		"hookcast_delivery_thread_busy_seconds_total",
	};
	char help[160];

	metrics_accepted();
	metrics_accepted();
	metrics_retry();
	metrics_dead_letters(5);
	metrics_evictions(2);
	metrics_conn_cut(METRICS_CUT_HEADER);
	metrics_conn_cut(METRICS_CUT_ROOM);
	metrics_conn_cut(METRICS_CUT_ROOM);
	metrics_conn_refused(1);
	metrics_http(0, 200);
	metrics_http(0, 200);
	metrics_http(1, 404);
	metrics_http(2, 401);
	/* Out of range: not counted anywhere. */
	metrics_http(0, 99);
	metrics_http(0, 600);
	metrics_http(METRICS_ENDPOINTS_MAX, 200);
	text = render(&g);
	check_format(before);
	check_format(text);
	for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
		snprintf(help, sizeof(help), "# HELP %s ", families[i]);
		ck_assert_msg(strstr(text, help) != NULL, "no %s", families[i]);
	}
	ck_assert(strstr(text, "# TYPE hookcast_deliveries_total counter\n"));
	ck_assert(strstr(text, "# TYPE hookcast_subscribers gauge\n"));
	/* One series a delivery thread, by its index. */
	ck_assert(strstr(text,
	    "hookcast_delivery_thread_subscribers{thread=\"0\"} 5\n"
	    "hookcast_delivery_thread_subscribers{thread=\"1\"} 2\n"));
	ck_assert(strstr(text,
	    "hookcast_delivery_thread_in_flight{thread=\"1\"} 3\n"));
	ck_assert(strstr(text,
	    "hookcast_delivery_thread_deliveries_total{thread=\"0\"} 70\n"));
	ck_assert(strstr(text,
	    "hookcast_delivery_thread_busy_seconds_total{thread=\"0\"} "
	    "2.500000\n"
	    "hookcast_delivery_thread_busy_seconds_total{thread=\"1\"} "
	    "0.000001\n"));
	ck_assert(strstr(text, "# TYPE hookcast_delivery_duration_seconds "
	    "histogram\n"));

	ck_assert_double_eq(delta(text, before,
	    "hookcast_messages_accepted_total"), 2);
	ck_assert_double_eq(delta(text, before, "hookcast_retries_total"), 1);
	ck_assert_double_eq(delta(text, before, "hookcast_dead_letters_total"),
	    5);
	ck_assert_double_eq(delta(text, before, "hookcast_evictions_total"), 2);
	ck_assert_double_eq(delta(text, before, "hookcast_http_connections_cut_"
	    "total{reason=\"header\"}"), 1);
	ck_assert_double_eq(delta(text, before, "hookcast_http_connections_cut_"
	    "total{reason=\"room\"}"), 2);
	ck_assert_double_eq(delta(text, before, "hookcast_http_connections_cut_"
	    "total{reason=\"body\"}"), 0);
	ck_assert_double_eq(delta(text, before, "hookcast_http_connections_"
	    "refused_total{reason=\"per_ip\"}"), 1);
	ck_assert_double_eq(delta(text, before, "hookcast_http_connections_"
	    "refused_total{reason=\"limit\"}"), 0);
	/* Every result is there from the start, even at zero. */
	ck_assert_double_ge(must(before,
	    "hookcast_deliveries_total{result=\"ok\"}"), 0);
	must(before, "hookcast_deliveries_total{result=\"failed\"}");
	must(before, "hookcast_deliveries_total{result=\"timeout\"}");
	must(before, "hookcast_deliveries_total{result=\"refused\"}");
	/* A request series appears once it counts; labels are escaped. */
	ck_assert_double_eq(delta(text, before, "hookcast_http_requests_total{"
	    "endpoint=\"/sendMessage\",code=\"200\"}"), 2);
	must(text, "hookcast_http_requests_total{endpoint=\"other\",code="
	    "\"404\"}");
	must(text, "hookcast_http_requests_total{endpoint=\"we\\\"ird\\\\path\","
	    "code=\"401\"}");
	ck_assert(strstr(text, "code=\"99\"") == NULL);
	ck_assert(strstr(text, "code=\"600\"") == NULL);
	/* The gauges are the caller's, as given. */
	ck_assert_double_eq(must(text, "hookcast_subscribers{state=\"active\"}"),
	    3);
	ck_assert_double_eq(must(text,
	    "hookcast_subscribers{state=\"failing\"}"), 1);
	ck_assert_double_eq(must(text, "hookcast_queued_messages"), 7);
	ck_assert_double_eq(must(text, "hookcast_retries_waiting"), 2);
	ck_assert_double_eq(must(text, "hookcast_http_connections"), 9);
	ck_assert_double_eq(must(text, "hookcast_deliveries_in_flight"), 4);
	ck_assert_double_eq(must(text, "hookcast_backlog_bytes"), 12345);
	free(before);
	free(text);
}
END_TEST

#define ATTEMPT(le)	"hookcast_delivery_duration_seconds_bucket{le=\"" le "\"}"
#define PUBLISH(le)	"hookcast_publish_to_delivery_seconds_bucket{le=\"" le "\"}"

/* le is inclusive; buckets are cumulative; _count is the +Inf bucket. */
START_TEST(histogram_buckets)
{
	char *before = render(NULL), *text;

	metrics_delivery(METRICS_OK, 1000);		/* exactly 1 ms */
	metrics_delivery(METRICS_FAILED, 1001);		/* just past it */
	metrics_delivery(METRICS_TIMEOUT, 60000000);	/* exactly 60 s */
	metrics_delivery(METRICS_REFUSED, 60000001);	/* past the last */
	metrics_delivery(METRICS_OK, -5);		/* a clock step: 0 */
	metrics_delivered_after(250);
	metrics_delivered_after(300000);		/* 5 min: le 300 */
	metrics_delivered_after(3600001);		/* past an hour */
	text = render(NULL);
	check_format(text);

	ck_assert_double_eq(delta(text, before, ATTEMPT("0.001")), 2);
	ck_assert_double_eq(delta(text, before, ATTEMPT("0.0025")), 3);
	ck_assert_double_eq(delta(text, before, ATTEMPT("30")), 3);
	ck_assert_double_eq(delta(text, before, ATTEMPT("60")), 4);
	ck_assert_double_eq(delta(text, before, ATTEMPT("+Inf")), 5);
	ck_assert_double_eq(delta(text, before,
	    "hookcast_delivery_duration_seconds_count"), 5);
	ck_assert_double_eq_tol(delta(text, before,
	    "hookcast_delivery_duration_seconds_sum"), 120.002002, 1e-6);
	/* Attempts end at delivery_timeout: no bucket past 60 s. */
	ck_assert_double_eq(value(text, ATTEMPT("300")), -1);
	ck_assert_double_eq(delta(text, before,
	    "hookcast_deliveries_total{result=\"ok\"}"), 2);
	ck_assert_double_eq(delta(text, before,
	    "hookcast_deliveries_total{result=\"refused\"}"), 1);

	ck_assert_double_eq(delta(text, before, PUBLISH("0.1")), 0);
	ck_assert_double_eq(delta(text, before, PUBLISH("0.25")), 1);
	ck_assert_double_eq(delta(text, before, PUBLISH("60")), 1);
	ck_assert_double_eq(delta(text, before, PUBLISH("300")), 2);
	ck_assert_double_eq(delta(text, before, PUBLISH("3600")), 2);
	ck_assert_double_eq(delta(text, before, PUBLISH("+Inf")), 3);
	ck_assert_double_eq(delta(text, before,
	    "hookcast_publish_to_delivery_seconds_count"), 3);
	ck_assert_double_eq_tol(delta(text, before,
	    "hookcast_publish_to_delivery_seconds_sum"), 3900.251, 1e-6);
	free(before);
	free(text);
}
END_TEST

enum { THREADS = 4, EACH = 50000 };

static void *
hammer(void *arg)
{
	int id = *(int *)arg;

	for (int i = 0; i < EACH; i++) {
		metrics_delivery((enum metrics_result)((i + id) %
		    METRICS_RESULTS), 2000);
		metrics_accepted();
		metrics_http((size_t)id % NENDPOINTS, 200);
	}
	return NULL;
}

/* Relaxed adds lose nothing: every count from every thread is there. */
START_TEST(counts_from_threads)
{
	struct metrics_totals t0, t1;
	pthread_t th[THREADS];
	int ids[THREADS];
	char *before = render(NULL), *text;
	const uint64_t total = (uint64_t)THREADS * EACH;
	uint64_t all = 0;

	metrics_totals(&t0);
	for (int i = 0; i < THREADS; i++) {
		ids[i] = i;
		ck_assert_int_eq(pthread_create(&th[i], NULL, hammer, &ids[i]),
		    0);
	}
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	metrics_totals(&t1);
	text = render(NULL);
	ck_assert_uint_eq(t1.accepted - t0.accepted, total);
	for (int r = 0; r < METRICS_RESULTS; r++) {
		ck_assert_uint_eq(t1.deliveries[r] - t0.deliveries[r],
		    total / METRICS_RESULTS);
		all += t1.deliveries[r] - t0.deliveries[r];
	}
	ck_assert_uint_eq(all, total);
	ck_assert_double_eq(delta(text, before, ATTEMPT("0.0025")),
	    (double)total);
	ck_assert_double_eq(delta(text, before,
	    "hookcast_delivery_duration_seconds_count"), THREADS * EACH);
	ck_assert_double_eq(delta(text, before,
	    "hookcast_messages_accepted_total"), THREADS * EACH);
	/* Threads 0 and 3 both count endpoint 0. */
	ck_assert_double_eq(delta(text, before, "hookcast_http_requests_total{"
	    "endpoint=\"/sendMessage\",code=\"200\"}"), 2 * EACH);
	free(before);
	free(text);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("metrics");
	TCase *tc = tcase_create("metrics");

	tcase_add_test(tc, exposition_format);
	tcase_add_test(tc, histogram_buckets);
	tcase_add_test(tc, counts_from_threads);
	suite_add_tcase(s, tc);
	return unit_run(s);
}

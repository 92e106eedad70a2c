/* check_stats.c: /stats's JSON: sixty 10-second points, what each counted, and the ring. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "clock.h"
#include "metrics.h"
#include "stats.h"
#include "unit.h"

/*
 * The tests run their own clock an hour ahead of the real one, so that the
 * thread, which samples the real clock, never closes an interval of theirs.
 */
#define AHEAD_MS	(3600 * 1000L)

static struct stats *s;

/* MS in whole seconds, cut as /stats cuts its times. */
static double
whole_s(int64_t ms)
{
	int64_t sec = ms / 1000;

	return (double)sec;
}

static void
setup(void)
{
	s = stats_start();
	ck_assert_ptr_nonnull(s);
}

static void
teardown(void)
{
	stats_stop(s);
}

/* /stats as of NOW_MS, parsed, with its shape checked. */
static cJSON *
render(int64_t now_ms)
{
	cJSON *root, *points, *p;
	int64_t prev = -1;
	size_t len = 0;
	char *text;

	text = stats_render(s, now_ms, &len);
	ck_assert_ptr_nonnull(text);
	ck_assert_uint_eq(strlen(text), len);
	root = cJSON_Parse(text);
	ck_assert_msg(root != NULL, "not JSON: %s", text);
	free(text);
	ck_assert_int_eq(cJSON_GetArraySize(root), 3);
	ck_assert_double_eq(cJSON_GetObjectItem(root, "interval_s")->valuedouble,
	    10);
	ck_assert_double_eq(cJSON_GetObjectItem(root, "now")->valuedouble,
	    whole_s(now_ms));
	points = cJSON_GetObjectItem(root, "points");
	ck_assert_int_eq(cJSON_GetArraySize(points), STATS_POINTS);
	cJSON_ArrayForEach(p, points) {
		double t = cJSON_GetObjectItem(p, "t")->valuedouble;

		ck_assert_int_eq(cJSON_GetArraySize(p), 4);
		ck_assert(cJSON_IsNumber(cJSON_GetObjectItem(p, "delivered")));
		ck_assert(cJSON_IsNumber(cJSON_GetObjectItem(p, "failed")));
		ck_assert(cJSON_IsNumber(cJSON_GetObjectItem(p, "accepted")));
		ck_assert(prev < 0 || t == prev + 10);
		prev = (int64_t)t;
	}
	return root;
}

/* Point I (0 is the oldest, -1 the current one): {t, delivered, failed, accepted}. */
static void
point(cJSON *root, int i, double out[4])
{
	cJSON *points = cJSON_GetObjectItem(root, "points");
	cJSON *p = cJSON_GetArrayItem(points, i < 0 ? STATS_POINTS + i : i);

	out[0] = cJSON_GetObjectItem(p, "t")->valuedouble;
	out[1] = cJSON_GetObjectItem(p, "delivered")->valuedouble;
	out[2] = cJSON_GetObjectItem(p, "failed")->valuedouble;
	out[3] = cJSON_GetObjectItem(p, "accepted")->valuedouble;
}

static void
count(int ok, int not_ok, int accepted)
{
	for (int i = 0; i < ok; i++)
		metrics_delivery(METRICS_OK, 1000);
	for (int i = 0; i < not_ok; i++)
		metrics_delivery((enum metrics_result)(1 + i % 3), 1000);
	for (int i = 0; i < accepted; i++)
		metrics_accepted();
}

/* Sixty points ending with the interval NOW is in; before the start they are 0. */
START_TEST(shape_and_times)
{
	int64_t now = clock_real_ms();
	cJSON *root = render(now);
	double first[4], last[4];

	point(root, 0, first);
	point(root, -1, last);
	ck_assert_double_eq(last[0], whole_s(now / 10000 * 10000));
	ck_assert_double_eq(first[0], last[0] - 590);
	ck_assert_double_eq(first[1] + first[2] + first[3], 0);
	cJSON_Delete(root);
}
END_TEST

/* delivered: deliveries ok; failed: every other result; accepted: publishes. */
START_TEST(intervals_count_their_own)
{
	int64_t t0 = (clock_real_ms() + AHEAD_MS) / 10000 * 10000 + 2000;
	double p[4];
	cJSON *root;

	stats_sample(s, t0);
	count(2, 3, 4);
	root = render(t0 + 5000);
	point(root, -1, p);
	ck_assert_double_eq(p[0], whole_s(t0) - 2);
	ck_assert_double_eq(p[1], 2);
	ck_assert_double_eq(p[2], 3);
	ck_assert_double_eq(p[3], 4);
	cJSON_Delete(root);

	/* The next interval: the last one closed, a new one counting. */
	count(1, 0, 1);
	root = render(t0 + 10000);
	point(root, -2, p);
	ck_assert_double_eq(p[1], 3);
	ck_assert_double_eq(p[2], 3);
	ck_assert_double_eq(p[3], 5);
	point(root, -1, p);
	ck_assert_double_eq(p[0], whole_s(t0) - 2 + 10);
	ck_assert_double_eq(p[1] + p[2] + p[3], 0);
	cJSON_Delete(root);

	/* A quiet interval, then one with counts: the quiet one is 0. */
	stats_sample(s, t0 + 20000);
	count(0, 7, 0);
	root = render(t0 + 30000);
	point(root, -4, p);
	ck_assert_double_eq(p[1], 3);
	point(root, -3, p);
	ck_assert_double_eq(p[1] + p[2] + p[3], 0);
	point(root, -2, p);
	ck_assert_double_eq(p[2], 7);
	cJSON_Delete(root);

	/* A clock that steps back closes nothing and moves no point. */
	count(0, 0, 1);
	root = render(t0);
	point(root, -1, p);
	ck_assert_double_eq(p[0], whole_s(t0) - 2 + 30);
	ck_assert_double_eq(p[3], 1);
	cJSON_Delete(root);

	/* Ten minutes on, the first intervals have left the window. */
	root = render(t0 + 10000L * STATS_POINTS + 30000);
	for (int i = 0; i < STATS_POINTS - 1; i++) {
		point(root, i, p);
		ck_assert_double_eq(p[1] + p[2] + p[3], 0);
	}
	cJSON_Delete(root);
}
END_TEST

/* A sample a while after its boundary gives the interval all it counted. */
START_TEST(late_sample_keeps_counts)
{
	int64_t t0 = (clock_real_ms() + AHEAD_MS) / 10000 * 10000;
	double p[4];
	cJSON *root;

	stats_sample(s, t0);
	count(5, 0, 0);
	stats_sample(s, t0 + 10000L * 3 + 10);
	root = render(t0 + 10000L * 3 + 20);
	point(root, -4, p);
	ck_assert_double_eq(p[0], whole_s(t0));
	ck_assert_double_eq(p[1], 5);
	for (int i = -3; i <= -1; i++) {
		point(root, i, p);
		ck_assert_double_eq(p[1], 0);
	}
	cJSON_Delete(root);
}
END_TEST

int
main(void)
{
	Suite *su = suite_create("stats");
	TCase *tc = tcase_create("stats");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, shape_and_times);
	tcase_add_test(tc, intervals_count_their_own);
	tcase_add_test(tc, late_sample_keeps_counts);
	suite_add_tcase(su, tc);
	return unit_run(su);
}

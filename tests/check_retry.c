/* check_retry.c: the retry schedule, full jitter and Retry-After. */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "retry.h"
#include "unit.h"

/* Sun, 06 Nov 1994 08:49:37 GMT (RFC 9110's example) is 784111777 s. */
#define EXAMPLE_S	784111777LL

static void
schedule(struct config *c, const char *text)
{
	config_init(c);
	ck_assert_int_eq(config_parse_schedule(text, c->retry_schedule,
	    &c->retry_count), 0);
}

/* Full jitter: uniform in [0, cap], so spread over the whole range. */
START_TEST(delay_within_and_across_the_range)
{
	struct config c;
	uint64_t rng = retry_seed();
	enum { DRAWS = 20000 };

	ck_assert_uint_ne(rng, 0);
	schedule(&c, "100ms 1s 2m");
	for (int attempt = 1; attempt <= 3; attempt++) {
		long cap = c.retry_schedule[attempt - 1], lo = cap, hi = 0;
		long below = 0, above = 0;
		double sum = 0;

		for (int i = 0; i < DRAWS; i++) {
			long d = retry_delay_ms(&c, attempt, &rng);

			ck_assert_int_ge(d, 0);
			ck_assert_int_le(d, cap);
			if (d < lo)
				lo = d;
			if (d > hi)
				hi = d;
			if (d < cap / 2)
				below++;
			else
				above++;
			sum += (double)d;
		}
		/* Not always 0, not always the cap: both ends are reached. */
		ck_assert_msg(lo <= cap / 50, "attempt %d: lowest %ld of %ld",
		    attempt, lo, cap);
		ck_assert_msg(hi >= cap - cap / 50, "attempt %d: highest %ld of "
		    "%ld", attempt, hi, cap);
		/* Uniform: the mean is near the middle, both halves get used. */
		ck_assert_msg(sum / DRAWS > cap * 0.45 && sum / DRAWS < cap * 0.55,
		    "attempt %d: mean %.1f of %ld", attempt, sum / DRAWS, cap);
		ck_assert_int_gt(below, DRAWS * 4 / 10);
		ck_assert_int_gt(above, DRAWS * 4 / 10);
	}
}
END_TEST

START_TEST(delay_past_the_schedule)
{
	struct config c;
	uint64_t rng = 0x9e3779b97f4a7c15ULL;

	schedule(&c, "100ms 1s 2m");
	ck_assert_int_eq(retry_delay_ms(&c, 4, &rng), -1);
	ck_assert_int_eq(retry_delay_ms(&c, 100, &rng), -1);
	ck_assert_int_eq(retry_delay_ms(&c, 0, &rng), -1);
	/* The default schedule has nine entries. */
	config_init(&c);
	ck_assert_int_ge(retry_delay_ms(&c, 9, &rng), 0);
	ck_assert_int_le(retry_delay_ms(&c, 9, &rng), 2L * 3600 * 1000);
	ck_assert_int_eq(retry_delay_ms(&c, 10, &rng), -1);
	/* The generator moves on: two draws in a row are not stuck. */
	{
		long first = retry_delay_ms(&c, 8, &rng);
		int differ = 0;

		for (int i = 0; i < 10; i++)
			differ |= retry_delay_ms(&c, 8, &rng) != first;
		ck_assert(differ);
	}
}
END_TEST

START_TEST(retry_after_seconds)
{
	int64_t now = EXAMPLE_S * 1000;

	ck_assert_int_eq(retry_after_ms("2", now), 2000);
	ck_assert_int_eq(retry_after_ms("120", now), 120000);
	ck_assert_int_eq(retry_after_ms(" 3 ", now), 3000);
	/* Clamped to 1 s .. 1 h. */
	ck_assert_int_eq(retry_after_ms("0", now), 1000);
	ck_assert_int_eq(retry_after_ms("1", now), 1000);
	ck_assert_int_eq(retry_after_ms("3600", now), 3600000);
	ck_assert_int_eq(retry_after_ms("999999", now), 3600000);
	ck_assert_int_eq(retry_after_ms("99999999999999999999999", now),
	    3600000);
}
END_TEST

START_TEST(retry_after_dates)
{
	/* Ten seconds before RFC 9110's example date. */
	int64_t now = (EXAMPLE_S - 10) * 1000;

	ck_assert_int_eq(retry_after_ms("Sun, 06 Nov 1994 08:49:37 GMT", now),
	    10000);
	/* The two obsolete forms a recipient must accept too. */
	ck_assert_int_eq(retry_after_ms("Sunday, 06-Nov-94 08:49:37 GMT", now),
	    10000);
	ck_assert_int_eq(retry_after_ms("Sun Nov  6 08:49:37 1994", now),
	    10000);
	/* Not whole seconds from now: the difference is kept in ms. */
	ck_assert_int_eq(retry_after_ms("Sun, 06 Nov 1994 08:49:37 GMT",
	    now + 250), 9750);
	/* A date in the past, or now, waits the minimum; far off, the maximum. */
	ck_assert_int_eq(retry_after_ms("Sun, 06 Nov 1994 08:49:17 GMT", now),
	    1000);
	ck_assert_int_eq(retry_after_ms("Sun, 06 Nov 1994 08:49:27 GMT", now),
	    1000);
	ck_assert_int_eq(retry_after_ms("Mon, 07 Nov 1994 08:49:37 GMT", now),
	    3600000);
	/*
	 * Years whose milliseconds overflow 64 bits (found by fuzz_retry_after;
	 * the UBSan build aborted on them): the maximum, and the minimum.
	 */
	ck_assert_int_eq(retry_after_ms("T486400001 Jan18", now), 3600000);
	ck_assert_int_eq(retry_after_ms("Sun, 06 Nov 1994 08:49:37 GMT",
	    INT64_MAX), 1000);
}
END_TEST

START_TEST(retry_after_garbage)
{
	static const char *const bad[] = {
		"", "   ", "soon", "2x", "2 seconds", "1.5", "-5", "+5",
		"Funday, 99 Foo 1994", "0x10",
	};
	int64_t now = EXAMPLE_S * 1000;

	ck_assert_int_eq(retry_after_ms(NULL, now), -1);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(retry_after_ms(bad[i], now) == -1,
		    "\"%s\" gave %ld", bad[i], retry_after_ms(bad[i], now));
}
END_TEST

START_TEST(schedule_parsing)
{
	long ms[RETRY_MAX], want[RETRY_MAX];
	char text[RETRY_MAX * 8 + 16];
	int n = -1;
	size_t len = 0;

	ck_assert_int_eq(config_parse_schedule("100ms 1s 2m", ms, &n), 0);
	ck_assert_int_eq(n, 3);
	ck_assert_int_eq(ms[0], 100);
	ck_assert_int_eq(ms[1], 1000);
	ck_assert_int_eq(ms[2], 120000);
	ck_assert_int_eq(config_parse_schedule("10ms 5 1h 1d", ms, &n), 0);
	ck_assert_int_eq(n, 4);
	ck_assert_int_eq(ms[0], 10);
	ck_assert_int_eq(ms[1], 5000);	/* a bare number is seconds */
	ck_assert_int_eq(ms[2], 3600000);
	ck_assert_int_eq(ms[3], 86400000);

	/* Refused, and the output left as it was. */
	memcpy(want, ms, sizeof(ms));
	n = 4;
	ck_assert_int_eq(config_parse_schedule("", ms, &n), -1);
	ck_assert_int_eq(config_parse_schedule("   ", ms, &n), -1);
	/* A word as long as the parser's buffer, bare (an "s" goes after it). */
	ck_assert_int_eq(config_parse_schedule("1111111111111111111111111111111",
	    ms, &n), -1);
	ck_assert_int_eq(config_parse_schedule("5ms", ms, &n), -1);
	ck_assert_int_eq(config_parse_schedule("9ms", ms, &n), -1);
	ck_assert_int_eq(config_parse_schedule("1x", ms, &n), -1);
	ck_assert_int_eq(config_parse_schedule("1s 1x", ms, &n), -1);
	ck_assert_int_eq(config_parse_schedule("2d", ms, &n), -1);
	ck_assert_int_eq(config_parse_schedule("-1s", ms, &n), -1);
	ck_assert_int_eq(config_parse_schedule("1.5s", ms, &n), -1);
	ck_assert_int_eq(n, 4);
	ck_assert_mem_eq(ms, want, 4 * sizeof(*ms));

	/* RETRY_MAX entries are fine, one more is not. */
	for (int i = 0; i < RETRY_MAX; i++)
		len += (size_t)snprintf(text + len, sizeof(text) - len, "%s%ds",
		    i ? " " : "", i + 1);
	ck_assert_int_eq(config_parse_schedule(text, ms, &n), 0);
	ck_assert_int_eq(n, RETRY_MAX);
	ck_assert_int_eq(ms[RETRY_MAX - 1], RETRY_MAX * 1000L);
	snprintf(text + len, sizeof(text) - len, " 1s");
	ck_assert_int_eq(config_parse_schedule(text, ms, &n), -1);
	ck_assert_int_eq(n, RETRY_MAX);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("retry");
	TCase *tc = tcase_create("retry");

	tcase_add_test(tc, delay_within_and_across_the_range);
	tcase_add_test(tc, delay_past_the_schedule);
	tcase_add_test(tc, retry_after_seconds);
	tcase_add_test(tc, retry_after_dates);
	tcase_add_test(tc, retry_after_garbage);
	tcase_add_test(tc, schedule_parsing);
	suite_add_tcase(s, tc);
	return unit_run(s);
}

/* check_clock.c: the timestamp format and the two clocks. */
#include <check.h>

#include "clock.h"
#include "unit.h"

START_TEST(rfc3339)
{
	char b[CLOCK_RFC3339_LEN];

	clock_rfc3339(0, b);
	ck_assert_str_eq(b, "1970-01-01T00:00:00Z");
	clock_rfc3339(1795412619999LL, b);
	ck_assert_str_eq(b, "2026-11-23T05:43:39Z");
}
END_TEST

START_TEST(clocks_move_forward)
{
	int64_t m = clock_mono_ms(), r = clock_real_ms();

	ck_assert_int_gt(r, 1700000000000LL);
	ck_assert_int_ge(clock_mono_ms(), m);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("clock");
	TCase *tc = tcase_create("clock");

	tcase_add_test(tc, rfc3339);
	tcase_add_test(tc, clocks_move_forward);
	suite_add_tcase(s, tc);
	return unit_run(s);
}

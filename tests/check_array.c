/* check_array.c: growing an array by doubling. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>

#include "array.h"
#include "unit.h"

START_TEST(grows_by_doubling_and_keeps_the_contents)
{
	size_t cap = 0;
	int *v = NULL, *w;

	for (int i = 0; i < 1000; i++) {
		w = array_grow(v, &cap, (size_t)i + 1, sizeof(*v));
		ck_assert_ptr_nonnull(w);
		v = w;
		v[i] = i;
		ck_assert_uint_ge(cap, (size_t)i + 1);
	}
	/* 16, then doublings: 1,024 holds the thousand. */
	ck_assert_uint_eq(cap, 1024);
	for (int i = 0; i < 1000; i++)
		ck_assert_int_eq(v[i], i);
	/* Room enough: the same array, the same capacity. */
	ck_assert_ptr_eq(array_grow(v, &cap, 1000, sizeof(*v)), v);
	ck_assert_uint_eq(cap, 1024);
	/* A jump past the next doubling lands on a doubling that holds it. */
	v = array_grow(v, &cap, 5000, sizeof(*v));
	ck_assert_ptr_nonnull(v);
	ck_assert_uint_eq(cap, 8192);
	free(v);
}
END_TEST

START_TEST(overflow_fails_and_leaves_the_array)
{
	size_t cap = 0;
	char *p = array_grow(NULL, &cap, 10, 1);

	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(cap, 16);
	p[0] = 'x';
	ck_assert_ptr_null(array_grow(p, &cap, SIZE_MAX / 2 + 2, 1));
	ck_assert_ptr_null(array_grow(p, &cap, SIZE_MAX / 8, 16));
	ck_assert_uint_eq(cap, 16);
	ck_assert_int_eq(p[0], 'x');
	free(p);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("array");
	TCase *tc = tcase_create("array");

	tcase_add_test(tc, grows_by_doubling_and_keeps_the_contents);
	tcase_add_test(tc, overflow_fails_and_leaves_the_array);
	suite_add_tcase(s, tc);
	return unit_run(s);
}

/* check_dashboard.c: the dashboard's files, as embedded in the binary. */
#include <check.h>
#include <string.h>

#include "dashboard.h"
#include "unit.h"

START_TEST(files_are_whole_strings)
{
	for (int i = 0; i < DASHBOARD_PARTS; i++) {
		const struct dashboard_file *f = dashboard_file(i);
		size_t len = (size_t)(f->df_end - f->df_data);

		ck_assert_uint_gt(len, 500);
		/* Whole: no NUL inside, one after. */
		ck_assert_uint_eq(strlen(f->df_data), len);
		ck_assert_int_eq(f->df_path[0], '/');
	}
	ck_assert_int_eq(strncmp(dashboard_file(DASHBOARD_PAGE)->df_data,
	    "<!DOCTYPE html>", 15), 0);
}
END_TEST

START_TEST(page_loads_its_own_files_only)
{
	const char *page = dashboard_file(DASHBOARD_PAGE)->df_data;
	char want[128];

	snprintf(want, sizeof(want), "<script src=\"%s\" defer></script>",
	    dashboard_file(DASHBOARD_SCRIPT)->df_path);
	ck_assert_ptr_nonnull(strstr(page, want));
	snprintf(want, sizeof(want), "<link rel=\"stylesheet\" href=\"%s\">",
	    dashboard_file(DASHBOARD_STYLE)->df_path);
	ck_assert_ptr_nonnull(strstr(page, want));
	/* One script element, and it is the file: the CSP forbids inline code. */
	ck_assert_ptr_null(strstr(strstr(page, "<script") + 1, "<script"));
	ck_assert_ptr_null(strstr(page, "<style"));
	ck_assert_ptr_null(strstr(page, "//"));	/* no scheme-relative or full URL */
	ck_assert_ptr_null(strstr(DASHBOARD_CSP, "unsafe"));
	ck_assert_ptr_nonnull(strstr(DASHBOARD_CSP, "frame-ancestors 'none'"));
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("dashboard");
	TCase *tc = tcase_create("dashboard");

	tcase_add_test(tc, files_are_whole_strings);
	tcase_add_test(tc, page_loads_its_own_files_only);
	suite_add_tcase(s, tc);
	return unit_run(s);
}

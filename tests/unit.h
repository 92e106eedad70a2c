/* unit.h: the one main() every check suite shares. */
#ifndef HOOKCAST_UNIT_H
#define HOOKCAST_UNIT_H

#include <check.h>
#include <stdlib.h>

/* Runs every test of S and returns the process exit status. */
static inline int
unit_run(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

#endif

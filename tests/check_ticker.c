/* check_ticker.c: a ticker runs at the times its due() gives, and stops at once. */
#include <check.h>
#include <stdatomic.h>
#include <unistd.h>

#include "clock.h"
#include "ticker.h"
#include "unit.h"

struct probe {
	int64_t		 p_every;	/* ms between runs */
	atomic_int	 p_runs;
	_Atomic int64_t	 p_late;	/* the latest run's delay past its due time */
	int64_t		 p_due;
};

static int64_t
probe_due(void *arg, int64_t now)
{
	struct probe *p = arg;

	p->p_due = now + p->p_every;
	return p->p_due;
}

static void
probe_run(void *arg)
{
	struct probe *p = arg;

	atomic_store(&p->p_late, clock_mono_ms() - p->p_due);
	atomic_fetch_add(&p->p_runs, 1);
}

START_TEST(runs_when_due)
{
	struct probe p = { .p_every = 50 };
	struct ticker *t = ticker_start("test", probe_due, probe_run, &p);

	ck_assert_ptr_nonnull(t);
	/* The window the runs are counted in: this sleep is the measurement. */
	usleep(520 * 1000);
	ticker_stop(t);
	/* Ten rounds of 50 ms fit in 520 ms; never early. */
	ck_assert_int_ge(atomic_load(&p.p_runs), 5);
	ck_assert_int_le(atomic_load(&p.p_runs), 10);
	ck_assert_int_ge(atomic_load(&p.p_late), 0);
}
END_TEST

START_TEST(stops_at_once)
{
	struct probe p = { .p_every = 3600L * 1000 };
	struct ticker *t = ticker_start("test", probe_due, probe_run, &p);
	int64_t t0;

	ck_assert_ptr_nonnull(t);
	/*
	 * Nothing to await: the ticker shows no sign of having reached its
	 * hour-long wait.  The sleep gives it the time to, so that the stop
	 * below interrupts that wait rather than racing the thread's start.
	 */
	usleep(50 * 1000);
	t0 = clock_mono_ms();
	ticker_stop(t);
	ck_assert_int_lt(clock_mono_ms() - t0, 500);
	ck_assert_int_eq(atomic_load(&p.p_runs), 0);
	ticker_stop(NULL);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("ticker");
	TCase *tc = tcase_create("ticker");

	tcase_add_test(tc, runs_when_due);
	tcase_add_test(tc, stops_at_once);
	suite_add_tcase(s, tc);
	return unit_run(s);
}

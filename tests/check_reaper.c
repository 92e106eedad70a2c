/* check_reaper.c: silent subscribers go, live ones stay, stop is prompt. */
#include <check.h>
#include <unistd.h>

#include "clock.h"
#include "reaper.h"
#include "unit.h"

static enum subs_add_result
add(struct subs *s, const char *address)
{
	CURLU *u = curl_url();
	enum subs_add_result r = subs_add(s, address, u, "http://x/event",
	    clock_real_ms(), clock_mono_ms());

	if (r != SUBS_ADDED)
		curl_url_cleanup(u);
	return r;
}

START_TEST(evicts_after_ttl)
{
	struct config cfg;
	struct deliver *d;
	struct subs *s;
	struct reaper *r;
	struct subs_hooks hooks = { deliver_on_add, deliver_on_remove, NULL };

	config_init(&cfg);
	d = deliver_start(&cfg);
	hooks.arg = d;
	s = subs_new(10, &hooks);
	ck_assert_int_eq(add(s, "silent:1"), SUBS_ADDED);
	ck_assert_int_eq(add(s, "chatty:1"), SUBS_ADDED);
	r = reaper_start(s, d, 300, 100);
	ck_assert_ptr_nonnull(r);
	for (int i = 0; i < 8; i++) {
		usleep(100000);
		subs_keepalive(s, "chatty:1", clock_real_ms(), clock_mono_ms());
	}
	ck_assert_int_eq(subs_keepalive(s, "silent:1", 0, clock_mono_ms()), -1);
	ck_assert_int_eq(subs_keepalive(s, "chatty:1", clock_real_ms(),
	    clock_mono_ms()), 0);
	ck_assert_uint_eq(subs_count(s), 1);
	reaper_stop(r);
	deliver_stop(d, 0);
	subs_free(s);
}
END_TEST

START_TEST(stops_without_waiting_for_the_interval)
{
	struct config cfg;
	struct deliver *d;
	struct subs *s;
	struct reaper *r;
	int64_t t0;

	config_init(&cfg);
	d = deliver_start(&cfg);
	s = subs_new(10, NULL);
	r = reaper_start(s, d, 1000, 3600 * 1000);
	t0 = clock_mono_ms();
	reaper_stop(r);
	ck_assert_int_lt(clock_mono_ms() - t0, 1000);
	reaper_stop(NULL);
	deliver_stop(d, 0);
	subs_free(s);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("reaper");
	TCase *tc = tcase_create("reaper");

	tcase_add_test(tc, evicts_after_ttl);
	tcase_add_test(tc, stops_without_waiting_for_the_interval);
	suite_add_tcase(s, tc);
	return unit_run(s);
}

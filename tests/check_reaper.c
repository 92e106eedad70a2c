/* check_reaper.c: silent subscribers go (their pending messages dead letters), live ones stay, stop is prompt. */
#include <check.h>
#include <unistd.h>

#include "addr.h"
#include "clock.h"
#include "deliver.h"
#include "log.h"
#include "reaper.h"
#include "store.h"
#include "unit.h"

static char dir[64];
static struct config cfg;
static struct unit_stack stack;

static void
setup(void)
{
	unit_tempdir(dir);
	config_init(&cfg);
	snprintf(cfg.data_dir, sizeof(cfg.data_dir), "%s", dir);
	cfg.durability = DURABILITY_OFF;
	memset(&stack, 0, sizeof(stack));
}

static void
teardown(void)
{
	unit_stack_stop(&stack, 0);
	unit_rmdir(dir);
}

static enum subs_add_result
add(struct subs *s, const char *address)
{
	CURLU *u;
	char *text;
	enum subs_add_result r;

	ck_assert_int_eq(addr_parse(address, &u, &text), ADDR_OK);
	r = subs_add(s, address, u, text, NULL, clock_real_ms(), clock_mono_ms());
	curl_free(text);
	if (r != SUBS_ADDED)
		curl_url_cleanup(u);
	return r;
}

static void
publish(int n)
{
	for (int i = 0; i < n; i++) {
		struct msg *m = msg_new(NULL, NULL, "hello", 5);

		ck_assert_int_eq(unit_publish(stack.store, m), STORE_OK);
		msg_unref(m);
	}
}

/* Lines of the text form of ADDRESS's dead letters with REASON. */
static int
count_dead(const char *address, const char *reason)
{
	char needle[64], *text, *p;
	int n = 0;

	snprintf(needle, sizeof(needle), "reason=%s\n", reason);
	text = unit_dead_letters(stack.store, address, 0);
	for (p = text; (p = strstr(p, needle)) != NULL; p++)
		n++;
	free(text);
	return n;
}

struct dead_want {
	const char	*dw_address, *dw_reason;
	int		 dw_want;
};

static int
dead_at_least(void *arg)
{
	const struct dead_want *w = arg;

	return count_dead(w->dw_address, w->dw_reason) >= w->dw_want;
}

static int
no_subscribers(void *arg)
{
	(void)arg;
	return subs_count(stack.subs) == 0;
}

/* Keeps 127.0.0.2:9 alive while waiting for the silent one to go. */
static int
only_the_live_one_left(void *arg)
{
	(void)arg;
	subs_keepalive(stack.subs, "127.0.0.2:9", clock_real_ms(),
	    clock_mono_ms());
	return subs_count(stack.subs) <= 1;
}

static int
nothing_in_flight(void *arg)
{
	(void)arg;
	return deliver_in_flight(stack.deliver) == 0;
}

START_TEST(evicts_after_ttl)
{
	struct reaper *r;

	unit_stack_start(&stack, &cfg, 10);
	ck_assert_int_eq(add(stack.subs, "127.0.0.1:9"), SUBS_ADDED);
	ck_assert_int_eq(add(stack.subs, "127.0.0.2:9"), SUBS_ADDED);
	/*
	 * A keep-alive every poll (a few ms) against a TTL of 1 s: this
	 * thread may be held up a while (sanitizers, a loaded machine) before
	 * a keep-alive is late.  Waits (10 s at most) until the silent one is
	 * gone.
	 */
	r = reaper_start(stack.subs, 1000, 100);
	ck_assert_ptr_nonnull(r);
	wait_until(only_the_live_one_left, NULL, UNIT_WAIT_MS);
	ck_assert_int_eq(subs_keepalive(stack.subs, "127.0.0.1:9", 0,
	    clock_mono_ms()), -1);
	ck_assert_int_eq(subs_keepalive(stack.subs, "127.0.0.2:9",
	    clock_real_ms(), clock_mono_ms()), 0);
	ck_assert_uint_eq(subs_count(stack.subs), 1);
	reaper_stop(r);
	/* Nothing was pending: nothing is dead. */
	ck_assert_int_eq(count_dead("127.0.0.1:9", "evicted"), 0);
	/* Evicted for good: not back after a restart. */
	unit_sync(stack.store);
	unit_stack_stop(&stack, 0);
	unit_stack_start(&stack, &cfg, 10);
	ck_assert_uint_eq(subs_count(stack.subs), 1);
	ck_assert_int_eq(subs_keepalive(stack.subs, "127.0.0.1:9", 0,
	    clock_mono_ms()), -1);
}
END_TEST

/* What an evicted subscriber had pending becomes dead letters, reason evicted. */
static void
evict_with_pending(int dead_letter_on_evict)
{
	char a[64];
	unsigned port;
	int hfd = unit_hang_listen(&port);
	struct reaper *r;

	cfg.delivery_timeout = 1;
	cfg.max_in_flight = 2;
	cfg.dead_letter_on_evict = dead_letter_on_evict;
	unit_stack_start(&stack, &cfg, 10);
	snprintf(a, sizeof(a), "127.0.0.1:%u", port);
	ck_assert_int_eq(add(stack.subs, a), SUBS_ADDED);
	publish(4);
	r = reaper_start(stack.subs, 300, 100);
	ck_assert_ptr_nonnull(r);
	wait_until(no_subscribers, NULL, 2000);
	reaper_stop(r);
	if (dead_letter_on_evict) {
		struct dead_want w = { a, "evicted", 4 };

		wait_until(dead_at_least, &w, UNIT_WAIT_MS);
		ck_assert_int_eq(count_dead(a, "evicted"), 4);
	} else {
		char *text;

		/*
		 * The two transfers in flight time out (delivery_timeout 1
		 * s); whatever they would write is committed by the sync.
		 */
		wait_until(nothing_in_flight, NULL, UNIT_WAIT_MS);
		unit_sync(stack.store);
		text = unit_dead_letters(stack.store, NULL, 0);
		ck_assert_str_eq(text, "");
		free(text);
	}
	close(hfd);
}

START_TEST(evicted_pending_become_dead_letters)
{
	evict_with_pending(1);
}
END_TEST

START_TEST(evicted_pending_discarded_when_told)
{
	evict_with_pending(0);
}
END_TEST

START_TEST(stops_without_waiting_for_the_interval)
{
	struct reaper *r;
	int64_t t0;

	unit_stack_start(&stack, &cfg, 10);
	r = reaper_start(stack.subs, 1000, 3600L * 1000);
	ck_assert_ptr_nonnull(r);
	t0 = clock_mono_ms();
	reaper_stop(r);
	ck_assert_int_lt(clock_mono_ms() - t0, 1000);
	reaper_stop(NULL);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("reaper");
	TCase *tc = tcase_create("reaper");

	curl_global_init(CURL_GLOBAL_DEFAULT);
	log_set_level(LOG_ERROR);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, evicts_after_ttl);
	tcase_add_test(tc, evicted_pending_become_dead_letters);
	tcase_add_test(tc, evicted_pending_discarded_when_told);
	tcase_add_test(tc, stops_without_waiting_for_the_interval);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);
	return unit_run(s);
}

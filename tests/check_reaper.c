/* check_reaper.c: silent subscribers go (their pending messages dead letters), live ones stay, stop is prompt. */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <sys/socket.h>
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

/* A socket that completes TCP handshakes (backlog) but never answers. */
static int
hang_start(unsigned *port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(listen(fd, 64), 0);
	getsockname(fd, (struct sockaddr *)&sin, &len);
	*port = ntohs(sin.sin_port);
	return fd;
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

/* Lines of the text form of ADDRESS's dead letters with REASON, within 10 s. */
static int
count_dead(const char *address, const char *reason, int want)
{
	char needle[64];
	int n = 0;

	snprintf(needle, sizeof(needle), "reason=%s\n", reason);
	for (int i = 0; i < 200; i++) {
		char *text = unit_dead_letters(stack.store, address, 0), *p;

		n = 0;
		for (p = text; (p = strstr(p, needle)) != NULL; p++)
			n++;
		free(text);
		if (n >= want)
			break;
		usleep(50000);
	}
	return n;
}

START_TEST(evicts_after_ttl)
{
	struct reaper *r;

	unit_stack_start(&stack, &cfg, 10);
	ck_assert_int_eq(add(stack.subs, "127.0.0.1:9"), SUBS_ADDED);
	ck_assert_int_eq(add(stack.subs, "127.0.0.2:9"), SUBS_ADDED);
	/*
	 * A keep-alive every 50 ms against a TTL of 1 s: this thread may be
	 * held up a while (sanitizers, a loaded machine) before a keep-alive
	 * is late.  Waits (10 s at most) until the silent one is gone.
	 */
	r = reaper_start(stack.subs, 1000, 100);
	ck_assert_ptr_nonnull(r);
	for (int i = 0; i < 200 && subs_count(stack.subs) > 1; i++) {
		usleep(50000);
		subs_keepalive(stack.subs, "127.0.0.2:9", clock_real_ms(),
		    clock_mono_ms());
	}
	ck_assert_int_eq(subs_keepalive(stack.subs, "127.0.0.1:9", 0,
	    clock_mono_ms()), -1);
	ck_assert_int_eq(subs_keepalive(stack.subs, "127.0.0.2:9",
	    clock_real_ms(), clock_mono_ms()), 0);
	ck_assert_uint_eq(subs_count(stack.subs), 1);
	reaper_stop(r);
	/* Nothing was pending: nothing is dead. */
	ck_assert_int_eq(count_dead("127.0.0.1:9", "evicted", 0), 0);
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
	int hfd = hang_start(&port);
	struct reaper *r;

	cfg.delivery_timeout = 1;
	cfg.max_in_flight = 2;
	cfg.dead_letter_on_evict = dead_letter_on_evict;
	unit_stack_start(&stack, &cfg, 10);
	snprintf(a, sizeof(a), "127.0.0.1:%u", port);
	ck_assert_int_eq(add(stack.subs, a), SUBS_ADDED);
	publish(4);
	r = reaper_start(stack.subs, 300, 100);
	for (int i = 0; i < 100 && subs_count(stack.subs) > 0; i++)
		usleep(20000);
	ck_assert_uint_eq(subs_count(stack.subs), 0);
	reaper_stop(r);
	if (dead_letter_on_evict)
		ck_assert_int_eq(count_dead(a, "evicted", 4), 4);
	else {
		char *text;

		usleep(1500000);	/* the transfers in flight time out */
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
	r = reaper_start(stack.subs, 1000, 3600 * 1000);
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

/* check_subs.c: the subscriber map: add, refresh, remove, reap, snapshot, hooks. */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "subs.h"
#include "topics.h"
#include "unit.h"

static int adds, removes, fail_add;
static enum sub_end last_end;

static int
on_add(struct sub *sub, void *arg)
{
	(void)sub;
	(void)arg;
	if (fail_add)
		return -1;
	adds++;
	return 0;
}

static void
on_remove(struct sub *sub, void *arg)
{
	(void)arg;
	removes++;
	last_end = sub_end(sub);
}

static const struct subs_hooks hooks = { on_add, on_remove, NULL, NULL };

static enum subs_add_result
add(struct subs *s, const char *address, int64_t mono)
{
	CURLU *u = curl_url();
	enum subs_add_result r;

	ck_assert_ptr_nonnull(u);
	r = subs_add(s, address, u, "http://x/event", NULL, 1000 + mono, mono);
	if (r != SUBS_ADDED)
		curl_url_cleanup(u);
	return r;
}

static void
setup(void)
{
	adds = removes = fail_add = 0;
	last_end = (enum sub_end)-1;
}

START_TEST(add_refresh_remove)
{
	struct subs *s = subs_new(10, &hooks);

	ck_assert_int_eq(subs_keepalive(s, "a:1", 5, 5), -1);
	ck_assert_int_eq(add(s, "a:1", 10), SUBS_ADDED);
	ck_assert_int_eq(add(s, "a:1", 20), SUBS_REFRESHED);
	ck_assert_int_eq(subs_keepalive(s, "a:1", 1030, 30), 0);
	ck_assert_uint_eq(subs_count(s), 1);
	ck_assert_int_eq(adds, 1);
	ck_assert_int_eq(subs_remove(s, "a:1", SUB_DEREGISTERED), 0);
	ck_assert_int_eq(subs_remove(s, "a:1", SUB_DEREGISTERED), -1);
	ck_assert_int_eq(removes, 1);
	ck_assert_uint_eq(subs_count(s), 0);
	subs_free(s);
}
END_TEST

START_TEST(limit_and_failed_hook)
{
	struct subs *s = subs_new(2, &hooks);

	ck_assert_int_eq(add(s, "a:1", 1), SUBS_ADDED);
	ck_assert_int_eq(add(s, "b:1", 1), SUBS_ADDED);
	ck_assert_int_eq(add(s, "c:1", 1), SUBS_FULL);
	ck_assert_int_eq(add(s, "a:1", 2), SUBS_REFRESHED);
	ck_assert_uint_eq(subs_count(s), 2);
	ck_assert_int_eq(subs_remove(s, "b:1", SUB_DEREGISTERED), 0);
	fail_add = 1;
	ck_assert_int_eq(add(s, "c:1", 1), SUBS_NOMEM);
	ck_assert_uint_eq(subs_count(s), 1);
	ck_assert_int_eq(subs_keepalive(s, "c:1", 1, 1), -1);
	subs_free(s);
}
END_TEST

START_TEST(snapshot_sorted_with_fields)
{
	struct subs *s = subs_new(100, &hooks);
	struct sub **v;
	char err[SUB_ERRLEN];
	long n;

	ck_assert_int_eq(add(s, "c:1", 3), SUBS_ADDED);
	ck_assert_int_eq(add(s, "a:1", 1), SUBS_ADDED);
	ck_assert_int_eq(add(s, "b:1", 2), SUBS_ADDED);
	ck_assert_int_eq(subs_keepalive(s, "b:1", 5555, 55), 0);
	n = subs_snapshot(s, &v);
	ck_assert_int_eq(n, 3);
	ck_assert_str_eq(sub_address(v[0]), "a:1");
	ck_assert_str_eq(sub_address(v[1]), "b:1");
	ck_assert_str_eq(sub_address(v[2]), "c:1");
	ck_assert_int_eq(sub_registered_ms(v[1]), 1002);
	ck_assert_int_eq(sub_keepalive_ms(v[1]), 5555);
	ck_assert_int_eq(sub_keepalive_mono(v[1]), 55);
	sub_get_error(v[0], err);
	ck_assert_str_eq(err, "");
	sub_set_error(v[0], "HTTP 500");
	sub_get_error(v[0], err);
	ck_assert_str_eq(err, "HTTP 500");
	/* A snapshot outlives removal: its references keep the subscribers. */
	ck_assert_int_eq(subs_remove(s, "a:1", SUB_DEREGISTERED), 0);
	ck_assert_str_eq(sub_address(v[0]), "a:1");
	for (long i = 0; i < n; i++)
		sub_unref(v[i]);
	free(v);
	subs_free(s);
}
END_TEST

/*
 * The shard function is part of the interface (cluster nodes will lease
 * shards by it): the published FNV-1a 64 test vectors, modulo 64, and a
 * subscriber keeps the shard of its address.
 */
START_TEST(shard_is_fnv1a_of_the_address)
{
	struct subs *s = subs_new(10, &hooks);
	struct sub **v;
	long n;

	ck_assert_uint_eq(subs_shard_of(""), 0xcbf29ce484222325ULL % 64);
	ck_assert_uint_eq(subs_shard_of("a"), 0xaf63dc4c8601ec8cULL % 64);
	ck_assert_uint_eq(subs_shard_of("foobar"), 0x85944171f73967e8ULL % 64);
	ck_assert_uint_eq(subs_shard_of("127.0.0.1:8080"), 12);
	ck_assert_uint_eq(subs_shard_of("[::1]:9000"), 39);
	ck_assert_int_eq(add(s, "127.0.0.1:8080", 1), SUBS_ADDED);
	n = subs_snapshot(s, &v);
	ck_assert_int_eq(n, 1);
	ck_assert_uint_eq(sub_shard(v[0]), 12);
	sub_unref(v[0]);
	free(v);
	subs_free(s);
}
END_TEST

START_TEST(reap_only_the_silent)
{
	struct subs *s = subs_new(100, &hooks);
	struct sub **gone;
	size_t n;

	ck_assert_int_eq(add(s, "old:1", 100), SUBS_ADDED);
	ck_assert_int_eq(add(s, "new:1", 900), SUBS_ADDED);
	ck_assert_int_eq(add(s, "kept:1", 100), SUBS_ADDED);
	ck_assert_int_eq(subs_keepalive(s, "kept:1", 0, 950), 0);
	n = subs_reap(s, 500, &gone);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(sub_address(gone[0]), "old:1");
	ck_assert_int_eq(removes, 1);
	sub_unref(gone[0]);
	free(gone);
	ck_assert_uint_eq(subs_count(s), 2);
	ck_assert_int_eq(subs_keepalive(s, "old:1", 0, 0), -1);
	subs_free(s);
}
END_TEST

/* Many subscribers: lookups stay exact through every table growth. */
START_TEST(ten_thousand)
{
	struct subs *s = subs_new(20000, &hooks);
	char a[32];

	for (int i = 0; i < 10000; i++) {
		snprintf(a, sizeof(a), "10.0.%d.%d:80", i / 256, i % 256);
		ck_assert_int_eq(add(s, a, i), SUBS_ADDED);
	}
	ck_assert_uint_eq(subs_count(s), 10000);
	for (int i = 0; i < 10000; i++) {
		snprintf(a, sizeof(a), "10.0.%d.%d:80", i / 256, i % 256);
		ck_assert_int_eq(subs_keepalive(s, a, 1, 1), 0);
	}
	for (int i = 0; i < 10000; i += 2) {
		snprintf(a, sizeof(a), "10.0.%d.%d:80", i / 256, i % 256);
		ck_assert_int_eq(subs_remove(s, a, SUB_DEREGISTERED), 0);
	}
	ck_assert_uint_eq(subs_count(s), 5000);
	subs_free(s);
}
END_TEST

/* The remove hook learns why the subscriber left. */
START_TEST(removal_reasons)
{
	struct subs *s = subs_new(10, &hooks);
	struct sub **gone;

	add(s, "a:1", 10);
	add(s, "b:1", 10);
	add(s, "c:1", 1000);
	ck_assert_int_eq(subs_remove(s, "a:1", SUB_DEREGISTERED), 0);
	ck_assert_int_eq(last_end, SUB_DEREGISTERED);
	ck_assert_int_eq(subs_remove(s, "c:1", SUB_GONE), 0);
	ck_assert_int_eq(last_end, SUB_GONE);
	ck_assert_uint_eq(subs_reap(s, 500, &gone), 1);
	ck_assert_int_eq(last_end, SUB_EVICTED);
	ck_assert_int_eq(sub_end(gone[0]), SUB_EVICTED);
	sub_unref(gone[0]);
	free(gone);
	/* Not registered: nothing happens, whatever the reason. */
	ck_assert_int_eq(subs_remove(s, "a:1", SUB_GONE), -1);
	ck_assert_int_eq(removes, 3);
	ck_assert_uint_eq(subs_count(s), 0);
	subs_free(s);
}
END_TEST

/* A subscriber read back from the store keeps its times, row and cursor. */
START_TEST(restore_keeps_saved_fields)
{
	struct subs *s = subs_new(10, &hooks);
	struct sub_saved sv = {
		.address = "r:1", .url_text = "http://r:1/event",
		.registered_real = 1111, .keepalive_real = 2222,
		.keepalive_mono = 33, .store_id = 7, .start = 99,
	};
	struct sub **v;
	CURLU *u = curl_url();

	ck_assert_ptr_nonnull(u);
	ck_assert_int_eq(subs_restore(s, &sv, u), SUBS_ADDED);
	ck_assert_int_eq(adds, 1);
	ck_assert_int_eq(subs_snapshot(s, &v), 1);
	ck_assert_str_eq(sub_address(v[0]), "r:1");
	ck_assert_str_eq(sub_url_text(v[0]), "http://r:1/event");
	ck_assert_ptr_eq(sub_url(v[0]), u);
	ck_assert_int_eq(sub_registered_ms(v[0]), 1111);
	ck_assert_int_eq(sub_keepalive_ms(v[0]), 2222);
	ck_assert_int_eq(sub_keepalive_mono(v[0]), 33);
	ck_assert_int_eq(sub_store_id(v[0]), 7);
	ck_assert_uint_eq(sub_start(v[0]), 99);
	ck_assert_int_eq(sub_state(v[0]), SUB_ACTIVE);
	/* An old keep-alive is reaped like any other. */
	sub_unref(v[0]);
	free(v);
	ck_assert_uint_eq(subs_reap(s, 34, &v), 1);
	ck_assert_int_eq(removes, 1);
	sub_unref(v[0]);
	free(v);
	ck_assert_uint_eq(subs_count(s), 0);
	subs_free(s);
}
END_TEST

START_TEST(state_and_store_fields)
{
	struct subs *s = subs_new(10, &hooks);
	struct sub **v;

	add(s, "a:1", 1);
	ck_assert_int_eq(subs_snapshot(s, &v), 1);
	ck_assert_int_eq(sub_state(v[0]), SUB_ACTIVE);
	ck_assert_int_eq(sub_store_id(v[0]), 0);
	ck_assert_uint_eq(sub_start(v[0]), 0);
	sub_set_state(v[0], SUB_FAILING);
	ck_assert_int_eq(sub_state(v[0]), SUB_FAILING);
	sub_set_state(v[0], SUB_ACTIVE);
	ck_assert_int_eq(sub_state(v[0]), SUB_ACTIVE);
	sub_set_store(v[0], 12, 345);
	ck_assert_int_eq(sub_store_id(v[0]), 12);
	ck_assert_uint_eq(sub_start(v[0]), 345);
	ck_assert_ptr_null(sub_store_state(v[0]));
	sub_set_store_state(v[0], v);
	ck_assert_ptr_eq(sub_store_state(v[0]), v);
	sub_set_store_state(v[0], NULL);
	sub_unref(v[0]);
	free(v);
	subs_free(s);
}
END_TEST

struct worker {
	struct subs	*s;
	int		 id;
};

static void *
churn(void *arg)
{
	struct worker *w = arg;
	char a[32];

	for (int i = 0; i < 2000; i++) {
		CURLU *u = curl_url();

		snprintf(a, sizeof(a), "h%d:%d", w->id, 1 + i % 50);
		if (subs_add(w->s, a, u, "http://x/", NULL, 1, 1) != SUBS_ADDED)
			curl_url_cleanup(u);
		subs_keepalive(w->s, a, 2, 2);
		if (i % 3 == 0)
			subs_remove(w->s, a, SUB_DEREGISTERED);
	}
	return NULL;
}

START_TEST(concurrent_churn)
{
	static const struct subs_hooks none = { NULL, NULL, NULL, NULL };
	struct subs *s = subs_new(100000, &none);
	struct worker w[8];
	pthread_t t[8];
	struct sub **v, **gone;
	long n;

	for (int i = 0; i < 8; i++) {
		w[i].s = s;
		w[i].id = i;
		ck_assert_int_eq(pthread_create(&t[i], NULL, churn, &w[i]), 0);
	}
	for (int i = 0; i < 8; i++)
		pthread_join(t[i], NULL);
	n = subs_snapshot(s, &v);
	ck_assert_int_eq(n, (long)subs_count(s));
	ck_assert_int_le(n, 8L * 50);
	for (long i = 0; i < n; i++)
		sub_unref(v[i]);
	free(v);
	ck_assert_uint_eq(subs_reap(s, 10, &gone), (size_t)n);
	for (long i = 0; i < n; i++)
		sub_unref(gone[i]);
	free(gone);
	subs_free(s);
}
END_TEST

static int then_called;

static int
then_count(void *arg)
{
	then_called = *(int *)arg;
	return 7;
}

/* Topic sets from one "a,b" spec each (NULL: none). */
static struct topics *
topics_of(const char *spec)
{
	struct topics *t = NULL;
	char err[TOPICS_ERRLEN];

	if (spec != NULL)
		ck_assert_int_eq(topics_parse(&spec, 1, 1, &t, err), TOPICS_OK);
	return t;
}

/* Each message of a batch counted by its own topics, then THEN once. */
START_TEST(count_each_then)
{
	struct subs *s = subs_new(10, &hooks);
	static const char *const subs_topics[] = { NULL, "orders.*", "eu",
		"orders.paid,eu" };
	struct topics *own[4] = { NULL };
	const struct topics *msgs[4];
	size_t counts[4];
	int arg = 42;

	for (int i = 0; i < 4; i++) {
		struct sub_opts o = { .has_topics = 1,
		    .topics = topics_of(subs_topics[i]) };
		char address[16];
		CURLU *u = curl_url();

		snprintf(address, sizeof(address), "s:%d", i);
		ck_assert_int_eq(subs_add(s, address, u, "http://x/event", &o,
		    1000, 1), SUBS_ADDED);
		topics_unref(o.topics);
	}
	own[1] = topics_of("orders.paid");
	own[2] = topics_of("eu");
	own[3] = topics_of("us");
	for (int i = 0; i < 4; i++)
		msgs[i] = own[i];
	ck_assert_int_eq(subs_count_each_then(s, msgs, 4, counts, then_count,
	    &arg), 7);
	ck_assert_int_eq(then_called, 42);
	ck_assert_uint_eq(counts[0], 4); /* no topic: everyone */
	ck_assert_uint_eq(counts[1], 3); /* everything, orders.*, orders.paid */
	ck_assert_uint_eq(counts[2], 3); /* everything, eu, eu */
	ck_assert_uint_eq(counts[3], 1); /* everything */
	for (int i = 0; i < 4; i++)
		topics_unref(own[i]);
	subs_free(s);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("subs");
	TCase *tc = tcase_create("subs");

	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, add_refresh_remove);
	tcase_add_test(tc, count_each_then);
	tcase_add_test(tc, limit_and_failed_hook);
	tcase_add_test(tc, snapshot_sorted_with_fields);
	tcase_add_test(tc, shard_is_fnv1a_of_the_address);
	tcase_add_test(tc, reap_only_the_silent);
	tcase_add_test(tc, removal_reasons);
	tcase_add_test(tc, restore_keeps_saved_fields);
	tcase_add_test(tc, state_and_store_fields);
	tcase_add_test(tc, ten_thousand);
	tcase_add_test(tc, concurrent_churn);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	return unit_run(s);
}

/* check_topics.c: topic parsing, matching and the routing index. */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "topics.h"
#include "unit.h"

static struct topics *
parse(const char *text, int patterns)
{
	char err[TOPICS_ERRLEN];
	struct topics *t = NULL;
	const char *v[] = { text };

	ck_assert_int_eq(topics_parse(v, 1, patterns, &t, err), TOPICS_OK);
	return t;
}

static void
refused(const char *const *v, size_t n, int patterns, const char *why)
{
	char err[TOPICS_ERRLEN] = "";
	struct topics *t = (struct topics *)1;

	ck_assert_int_eq(topics_parse(v, n, patterns, &t, err),
	    TOPICS_INVALID);
	ck_assert_ptr_null(t);
	ck_assert_msg(strstr(err, why) != NULL, "\"%s\" lacks \"%s\"", err, why);
}

START_TEST(parse_sorts_dedupes_and_joins)
{
	const char *v[] = { "orders", "billing,orders.*", "billing" };
	char err[TOPICS_ERRLEN];
	struct topics *t, *same;

	ck_assert_int_eq(topics_parse(v, 3, 1, &t, err), TOPICS_OK);
	ck_assert_uint_eq(topics_count(t), 3);
	ck_assert_str_eq(topics_text(t), "billing,orders,orders.*");
	ck_assert_str_eq(topics_at(t, 1), "orders");
	same = parse("orders.*,orders,billing", 1);
	ck_assert(topics_equal(t, same));
	topics_unref(same);
	same = parse("orders", 1);
	ck_assert(!topics_equal(t, same));
	topics_unref(same);
	topics_unref(t);

	/* No topics, and "*" alone, are the empty set: NULL. */
	ck_assert_int_eq(topics_parse(v, 0, 1, &t, err), TOPICS_OK);
	ck_assert_ptr_null(t);
	ck_assert_ptr_null(parse("*", 1));
	ck_assert_str_eq(topics_text(NULL), "");
	ck_assert_uint_eq(topics_count(NULL), 0);
}
END_TEST

START_TEST(parse_refuses_with_a_reason)
{
	char big[TOPIC_MAX + 2], many[TOPICS_MAX * 3 + 8] = "";
	const char *v[1];

	v[0] = "orders!"; refused(v, 1, 1, "Invalid topic \"orders!\"");
	v[0] = ""; refused(v, 1, 1, "Empty topic");
	v[0] = "a,,b"; refused(v, 1, 1, "Empty topic");
	v[0] = "a,"; refused(v, 1, 1, "Empty topic");
	v[0] = "has space"; refused(v, 1, 1, "Invalid topic");
	v[0] = "orders.*"; refused(v, 1, 0, "Invalid topic");	/* a message's */
	v[0] = "*"; refused(v, 1, 0, "Invalid topic");
	v[0] = ".*"; refused(v, 1, 1, "Invalid topic");
	v[0] = "or*ders"; refused(v, 1, 1, "Invalid topic");
	v[0] = "*,orders"; refused(v, 1, 1, "cannot be combined");
	memset(big, 'x', TOPIC_MAX + 1);
	big[TOPIC_MAX + 1] = '\0';
	v[0] = big; refused(v, 1, 1, "1 to 128");
	big[TOPIC_MAX] = '\0';
	topics_unref(parse(big, 0));
	for (int i = 0; i <= TOPICS_MAX; i++)
		snprintf(many + strlen(many), sizeof(many) - strlen(many),
		    "%s%d", i ? "," : "", i);
	v[0] = many; refused(v, 1, 1, "More than 64 topics");
}
END_TEST

START_TEST(match_exact_prefix_and_empty)
{
	struct topics *sub = parse("billing,orders.*", 1);
	struct topics *exact = parse("orders", 0);
	struct topics *deep = parse("orders.eu.paid", 0);
	struct topics *paid = parse("orders.paid", 0);
	struct topics *other = parse("shipping,ordersx.y", 0);
	struct topics *mixed = parse("shipping,billing", 0);

	ck_assert(!topics_match(sub, exact));	/* "orders.*" is below orders */
	ck_assert(topics_match(sub, paid));
	ck_assert(topics_match(sub, deep));
	ck_assert(!topics_match(sub, other));
	ck_assert(topics_match(sub, mixed));
	ck_assert(topics_match(NULL, other));	/* no topics: everything */
	ck_assert(topics_match(sub, NULL));	/* no topic: everyone */
	/* The stored text forms agree. */
	ck_assert(!topics_match_text("billing,orders.*", "orders"));
	ck_assert(topics_match_text("billing,orders.*", "orders.paid"));
	ck_assert(topics_match_text("billing,orders.*", "orders.eu.paid"));
	ck_assert(!topics_match_text("billing,orders.*", "shipping,ordersx.y"));
	ck_assert(topics_match_text("billing,orders.*", "shipping,billing"));
	ck_assert(!topics_match_text("billing", "billin"));
	ck_assert(!topics_match_text("billin", "billing"));
	ck_assert(topics_match_text("", "x"));
	ck_assert(topics_match_text("x", NULL));
	topics_unref(sub);
	topics_unref(exact);
	topics_unref(deep);
	topics_unref(paid);
	topics_unref(other);
	topics_unref(mixed);
}
END_TEST

static int
has(const struct topic_vec *v, const void *m)
{
	int n = 0;

	for (size_t i = 0; i < v->n; i++)
		n += v->v[i] == m;
	return n;
}

/* 1,000 members over 50 topics, routed the same as topics_match says. */
START_TEST(index_agrees_with_match)
{
	enum { MEMBERS = 1000, TOPICS = 50 };
	static struct topics *sets[MEMBERS];
	static int member[MEMBERS];
	struct topic_index *idx = topic_index_new();
	struct topic_vec v = { 0 };
	char text[128];

	ck_assert_ptr_nonnull(idx);
	for (int i = 0; i < MEMBERS; i++) {
		/* A topic, sometimes a second, sometimes a prefix. */
		int n = snprintf(text, sizeof(text), "t%d.x", i % TOPICS);

		if (i % 7 == 0)
			snprintf(text + n, sizeof(text) - n, ",t%d.*",
			    (i + 3) % TOPICS);
		if (i % 11 == 0)
			snprintf(text, sizeof(text), "t%d.*,t%d.x", i % TOPICS,
			    i % TOPICS);
		sets[i] = parse(text, 1);
		ck_assert_int_eq(topic_index_add(idx, sets[i], &member[i]), 0);
	}
	for (int k = 0; k < TOPICS; k++) {
		struct topics *msg;
		size_t want = 0;

		snprintf(text, sizeof(text), "t%d.x", k);
		msg = parse(text, 0);
		ck_assert_int_eq(topic_index_match(idx, msg, &v), 0);
		for (int i = 0; i < MEMBERS; i++) {
			int m = topics_match(sets[i], msg);

			ck_assert_int_eq(has(&v, &member[i]), m);
			want += (size_t)m;
		}
		ck_assert_uint_eq(v.n, want);
		topics_unref(msg);
	}
	/* Removed members are routed no more; the others still are. */
	for (int i = 0; i < MEMBERS; i += 2)
		topic_index_remove(idx, sets[i], &member[i]);
	for (int k = 0; k < TOPICS; k++) {
		struct topics *msg;

		snprintf(text, sizeof(text), "t%d.x", k);
		msg = parse(text, 0);
		ck_assert_int_eq(topic_index_match(idx, msg, &v), 0);
		for (int i = 0; i < MEMBERS; i++)
			ck_assert_int_eq(has(&v, &member[i]),
			    i % 2 == 1 && topics_match(sets[i], msg));
		topics_unref(msg);
	}
	for (int i = 1; i < MEMBERS; i += 2)
		topic_index_remove(idx, sets[i], &member[i]);
	for (int i = 0; i < MEMBERS; i++)
		topics_unref(sets[i]);
	free(v.v);
	topic_index_free(idx);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("topics");
	TCase *tc = tcase_create("topics");

	tcase_add_test(tc, parse_sorts_dedupes_and_joins);
	tcase_add_test(tc, parse_refuses_with_a_reason);
	tcase_add_test(tc, match_exact_prefix_and_empty);
	tcase_add_test(tc, index_agrees_with_match);
	suite_add_tcase(s, tc);
	return unit_run(s);
}

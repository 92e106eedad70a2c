/* check_params.c: the query-string and header values the API reads. */
#include <check.h>
#include <string.h>

#include "params.h"
#include "unit.h"

static long
limit_of(const char *s)
{
	long n = -7;

	ck_assert_int_eq(params_limit(s, &n), 0);
	return n;
}

START_TEST(limit)
{
	static const char *const bad[] = { "", "0", "-1", "100001", "5x", "x",
	    "1.5", "99999999999999999999", " ", "5 " };
	long n = -7;

	ck_assert_int_eq(limit_of("1"), 1);
	ck_assert_int_eq(limit_of("100000"), PARAMS_LIMIT_MAX);
	ck_assert_int_eq(limit_of("0042"), 42);
	/* strtol's reading, as before it moved here. */
	ck_assert_int_eq(limit_of(" +5"), 5);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(params_limit(bad[i], &n) == -1, "\"%s\"", bad[i]);
		ck_assert_int_eq(n, -7);
	}
}
END_TEST

START_TEST(idempotency_key)
{
	char big[PARAMS_KEY_MAX + 2];

	ck_assert(params_key_ok("order-42-paid"));
	ck_assert(params_key_ok(" ~"));
	ck_assert(!params_key_ok(""));
	ck_assert(!params_key_ok("a\tb"));
	ck_assert(!params_key_ok("caf\xc3\xa9"));
	ck_assert(!params_key_ok("a\x7f"));
	memset(big, 'k', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	ck_assert(!params_key_ok(big));
	big[PARAMS_KEY_MAX] = '\0';
	ck_assert(params_key_ok(big));
}
END_TEST

START_TEST(content_length_and_accept)
{
	ck_assert_uint_eq(params_content_length(NULL), 0);
	ck_assert_uint_eq(params_content_length("42"), 42);
	/* Overflow reads as huge, so it is refused as too large. */
	ck_assert_uint_eq(params_content_length("99999999999999999999999"),
	    (unsigned long long)-1);
	ck_assert(params_wants_json("text/plain, application/json;q=0.5"));
	ck_assert(!params_wants_json("*/*"));
	ck_assert(!params_wants_json(NULL));
}
END_TEST

/*
 * A publisher's Content-Type is every delivery's: a bare CR in it reached
 * subscribers as a header of the publisher's making (found by fuzzing).
 */
START_TEST(content_type)
{
	ck_assert(params_ctype_ok("application/json; charset=utf-8"));
	ck_assert(params_ctype_ok("text/plain;\tq=\"x y\""));
	ck_assert(params_ctype_ok("caf\xc3\xa9/x"));	/* obs-text */
	ck_assert(params_ctype_ok(""));
	ck_assert(!params_ctype_ok("text/plain\rX-Injected: yes"));
	ck_assert(!params_ctype_ok("text/plain\nX: y"));
	ck_assert(!params_ctype_ok("a\x0b" "b"));
	ck_assert(!params_ctype_ok("a\x01"));
	ck_assert(!params_ctype_ok("a\x7f"));
}
END_TEST

START_TEST(path_and_method)
{
	const char *u = "http://localhost:3000/healthz";

	ck_assert_str_eq(params_path("/healthz"), "/healthz");
	ck_assert_ptr_eq(params_path(u), u + 21);
	ck_assert_str_eq(params_path("HTTPS://h/x?y"), "/x?y");
	ck_assert_str_eq(params_path("http://h"), "/");
	ck_assert(params_method_allowed("GET, HEAD, DELETE", "HEAD"));
	ck_assert(params_method_allowed("GET, HEAD, DELETE", "DELETE"));
	ck_assert(params_method_allowed("POST", "POST"));
	ck_assert(!params_method_allowed("GET, HEAD", "GE"));
	ck_assert(!params_method_allowed("GET, HEAD", "EAD"));
	ck_assert(!params_method_allowed("GET, HEAD", "GET,"));
	ck_assert(!params_method_allowed("GET, HEAD", ""));
	ck_assert(!params_method_allowed("POST", "post"));
}
END_TEST

START_TEST(topics_collected)
{
	struct params_topics pt = { .pt_n = 0 };

	params_topic_add(&pt, "a,b");
	params_topic_add(&pt, NULL);
	ck_assert_uint_eq(pt.pt_n, 2);
	ck_assert_str_eq(pt.pt_v[0], "a,b");
	ck_assert_str_eq(pt.pt_v[1], "");
	ck_assert(!pt.pt_over);
	for (int i = 2; i < TOPICS_MAX; i++)
		params_topic_add(&pt, "t");
	ck_assert(!pt.pt_over);
	params_topic_add(&pt, "one too many");
	ck_assert(pt.pt_over);
	ck_assert_uint_eq(pt.pt_n, TOPICS_MAX);
}
END_TEST

/* What /sendMessage and /sendMessages both say of a bad type or key. */
START_TEST(publish_check)
{
	char long_type[300];

	memset(long_type, 'a', 257);
	long_type[257] = '\0';
	ck_assert_ptr_null(params_publish_check(NULL, NULL));
	ck_assert_ptr_null(params_publish_check("text/plain", "k"));
	ck_assert_str_eq(params_publish_check(long_type, NULL),
	    "Content-Type longer than 256 bytes.");
	long_type[256] = '\0';
	ck_assert_ptr_null(params_publish_check(long_type, NULL));
	ck_assert_str_eq(params_publish_check("a\nb", NULL),
	    "Content-Type holds a control character.");
	ck_assert_str_eq(params_publish_check(NULL, ""),
	    "Idempotency-Key must be 1 to 255 printable ASCII characters.");
}
END_TEST

START_TEST(topics_parsed)
{
	struct params_topics pt = { .pt_n = 0 };
	char err[TOPICS_ERRLEN];
	struct topics *t = (struct topics *)1;

	ck_assert_int_eq(params_topics_parse(&pt, 0, &t, err), TOPICS_OK);
	ck_assert_ptr_null(t);
	params_topic_add(&pt, "b,a");
	ck_assert_int_eq(params_topics_parse(&pt, 0, &t, err), TOPICS_OK);
	ck_assert_str_eq(topics_text(t), "a,b");
	topics_unref(t);
	for (int i = 1; i <= TOPICS_MAX; i++)
		params_topic_add(&pt, "t");
	ck_assert_int_eq(params_topics_parse(&pt, 0, &t, err),
	    TOPICS_INVALID);
	ck_assert_ptr_null(t);
	ck_assert_str_eq(err, "Error: More than 64 topics.");
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("params");
	TCase *tc = tcase_create("params");

	tcase_add_test(tc, limit);
	tcase_add_test(tc, idempotency_key);
	tcase_add_test(tc, content_length_and_accept);
	tcase_add_test(tc, content_type);
	tcase_add_test(tc, path_and_method);
	tcase_add_test(tc, topics_collected);
	tcase_add_test(tc, publish_check);
	tcase_add_test(tc, topics_parsed);
	suite_add_tcase(s, tc);
	return unit_run(s);
}

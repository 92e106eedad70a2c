/* check_msg.c: message bodies held once, headers built once, bytes accounted. */
#include <check.h>
#include <string.h>

#include "msg.h"
#include "unit.h"

START_TEST(body_and_headers)
{
	static const char body[] = { 'a', 0, 'b', (char)0xff };
	size_t before = msg_bytes_alive();
	struct msg *m = msg_new("application/json", body, sizeof(body));
	const struct curl_slist *h;

	ck_assert_ptr_nonnull(m);
	ck_assert_uint_eq(msg_len(m), 4);
	ck_assert_mem_eq(msg_body(m), body, 4);
	h = msg_headers(m);
	ck_assert_str_eq(h->data, "Content-Type: application/json");
	ck_assert_str_eq(h->next->data, "Expect:");
	ck_assert_uint_eq(msg_bytes_alive(), before + 4);
	msg_unref(m);
	ck_assert_uint_eq(msg_bytes_alive(), before);
}
END_TEST

START_TEST(default_type_and_limits)
{
	char big[MSG_CTYPE_MAX + 2];
	struct msg *m = msg_new(NULL, "", 0), *m2;

	ck_assert_ptr_nonnull(m);
	ck_assert_str_eq(msg_headers(m)->data,
	    "Content-Type: application/octet-stream");
	m2 = msg_new("", "x", 1);
	ck_assert_str_eq(msg_headers(m2)->data,
	    "Content-Type: application/octet-stream");
	ck_assert_uint_gt(msg_id(m2), msg_id(m));
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	ck_assert_ptr_null(msg_new(big, "x", 1));
	msg_unref(m);
	msg_unref(m2);
	msg_unref(NULL);
}
END_TEST

START_TEST(shared_by_reference)
{
	size_t before = msg_bytes_alive();
	struct msg *m = msg_new(NULL, "hello", 5);

	for (int i = 0; i < 100; i++)
		msg_ref(m);
	ck_assert_uint_eq(msg_bytes_alive(), before + 5);
	for (int i = 0; i < 100; i++)
		msg_unref(m);
	ck_assert_mem_eq(msg_body(m), "hello", 5);
	msg_unref(m);
	ck_assert_uint_eq(msg_bytes_alive(), before);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("msg");
	TCase *tc = tcase_create("msg");

	tcase_add_test(tc, body_and_headers);
	tcase_add_test(tc, default_type_and_limits);
	tcase_add_test(tc, shared_by_reference);
	suite_add_tcase(s, tc);
	return unit_run(s);
}

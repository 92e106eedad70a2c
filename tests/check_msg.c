/* check_msg.c: message bodies held once, headers and webhook-id built once, bytes accounted. */
#include <check.h>
#include <string.h>

#include "msg.h"
#include "unit.h"

/* "msg_" and 32 lower-case hex digits. */
static int
is_msg_id(const char *id)
{
	if (strlen(id) != MSG_IDLEN || strncmp(id, "msg_", 4) != 0)
		return 0;
	return strspn(id + 4, "0123456789abcdef") == 32;
}

START_TEST(body_and_headers)
{
	static const char body[] = { 'a', 0, 'b', (char)0xff };
	size_t before = msg_bytes_alive();
	struct msg *m = msg_new(NULL, "application/json", body, sizeof(body));
	const struct curl_slist *h;
	char want[64];

	ck_assert_ptr_nonnull(m);
	ck_assert_uint_eq(msg_len(m), 4);
	ck_assert_mem_eq(msg_body(m), body, 4);
	ck_assert_str_eq(msg_ctype(m), "application/json");
	ck_assert_msg(is_msg_id(msg_id(m)), "id \"%s\"", msg_id(m));
	ck_assert_uint_eq(msg_seq(m), 0);
	msg_set_seq(m, 42);
	ck_assert_uint_eq(msg_seq(m), 42);
	h = msg_headers(m);
	ck_assert_str_eq(h->data, "Content-Type: application/json");
	snprintf(want, sizeof(want), "webhook-id: %s", msg_id(m));
	ck_assert_str_eq(h->next->data, want);
	ck_assert_str_eq(h->next->next->data, "Expect:");
	ck_assert_ptr_null(h->next->next->next);
	ck_assert_uint_eq(msg_bytes_alive(), before + 4);
	msg_unref(m);
	ck_assert_uint_eq(msg_bytes_alive(), before);
}
END_TEST

START_TEST(given_id_is_kept)
{
	static const char id[] = "msg_0123456789abcdef0123456789abcdef";
	struct msg *m = msg_new(id, "text/plain", "x", 1);

	ck_assert_ptr_nonnull(m);
	ck_assert_str_eq(msg_id(m), id);
	ck_assert_str_eq(msg_headers(m)->next->data,
	    "webhook-id: msg_0123456789abcdef0123456789abcdef");
	msg_unref(m);
	/* One character too many is refused, not cut short. */
	ck_assert_ptr_null(msg_new("msg_0123456789abcdef0123456789abcdef0",
	    NULL, "x", 1));
}
END_TEST

START_TEST(random_ids_differ)
{
	struct msg *m[64];

	for (int i = 0; i < 64; i++) {
		m[i] = msg_new(NULL, NULL, "x", 1);
		ck_assert_ptr_nonnull(m[i]);
		ck_assert_msg(is_msg_id(msg_id(m[i])), "id \"%s\"",
		    msg_id(m[i]));
		for (int j = 0; j < i; j++)
			ck_assert_str_ne(msg_id(m[i]), msg_id(m[j]));
	}
	for (int i = 0; i < 64; i++)
		msg_unref(m[i]);
}
END_TEST

START_TEST(default_type_and_limits)
{
	char big[MSG_CTYPE_MAX + 2];
	struct msg *m = msg_new(NULL, NULL, "", 0), *m2;

	ck_assert_ptr_nonnull(m);
	ck_assert_str_eq(msg_headers(m)->data,
	    "Content-Type: application/octet-stream");
	ck_assert_str_eq(msg_ctype(m), "application/octet-stream");
	m2 = msg_new(NULL, "", "x", 1);
	ck_assert_str_eq(msg_headers(m2)->data,
	    "Content-Type: application/octet-stream");
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	ck_assert_ptr_null(msg_new(NULL, big, "x", 1));
	big[MSG_CTYPE_MAX] = '\0';	/* exactly the limit is fine */
	msg_unref(m2);
	ck_assert_ptr_nonnull(m2 = msg_new(NULL, big, "x", 1));
	msg_unref(m);
	msg_unref(m2);
	msg_unref(NULL);
}
END_TEST

START_TEST(shared_by_reference)
{
	size_t before = msg_bytes_alive();
	struct msg *m = msg_new(NULL, NULL, "hello", 5);

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
	tcase_add_test(tc, given_id_is_kept);
	tcase_add_test(tc, random_ids_differ);
	tcase_add_test(tc, default_type_and_limits);
	tcase_add_test(tc, shared_by_reference);
	suite_add_tcase(s, tc);
	return unit_run(s);
}

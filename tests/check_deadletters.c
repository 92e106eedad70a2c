/* check_deadletters.c: /deadLetters as text and JSON, from the store's rows. */
#include <check.h>
#include <cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "deadletters.h"
#include "unit.h"

/* 2026-11-23T05:43:39Z is 1795412619 seconds after the epoch. */
static const struct store_dead rows[] = {
	{ .sd_msg_id = "msg_1", .sd_address = "a.example:1",
	    .sd_attempts = 3, .sd_first_at = 1795412619000LL,
	    .sd_last_at = 1795412619000LL, .sd_dead_at = 1795412619000LL,
	    .sd_status = 503, .sd_error = "HTTP 503",
	    .sd_reason = "retries exhausted" },
	{ .sd_msg_id = "msg_2", .sd_address = "b.example:2",
	    .sd_attempts = 0, .sd_dead_at = 1795412619000LL,
	    .sd_error = "", .sd_reason = "deregistered" },
};

START_TEST(text_one_line_each)
{
	size_t len;
	char *out = deadletters_render(rows, 2, 0, &len);

	ck_assert_ptr_nonnull(out);
	ck_assert_uint_eq(len, strlen(out));
	ck_assert_str_eq(out,
	    "msg_1  a.example:1  attempts=3  last=\"HTTP 503\"  "
	    "dead=2026-11-23T05:43:39Z  reason=retries exhausted\n"
	    "msg_2  b.example:2  attempts=0  last=\"-\"  "
	    "dead=2026-11-23T05:43:39Z  reason=deregistered\n");
	free(out);

	/* None: an empty body, not an error. */
	out = deadletters_render(NULL, 0, 0, &len);
	ck_assert_ptr_nonnull(out);
	ck_assert_uint_eq(len, 0);
	free(out);
}
END_TEST

START_TEST(json_fields_and_nulls)
{
	size_t len;
	char *out = deadletters_render(rows, 2, 1, &len);
	cJSON *root, *arr, *o;

	ck_assert_ptr_nonnull(out);
	ck_assert_uint_eq(len, strlen(out));
	ck_assert_ptr_nonnull(root = cJSON_Parse(out));
	arr = cJSON_GetObjectItem(root, "dead_letters");
	ck_assert_int_eq(cJSON_GetArraySize(arr), 2);
	o = cJSON_GetArrayItem(arr, 0);
	ck_assert_str_eq(cJSON_GetObjectItem(o, "id")->valuestring, "msg_1");
	ck_assert_str_eq(cJSON_GetObjectItem(o, "address")->valuestring,
	    "a.example:1");
	ck_assert_int_eq(cJSON_GetObjectItem(o, "attempts")->valueint, 3);
	ck_assert_int_eq(cJSON_GetObjectItem(o, "last_status")->valueint, 503);
	ck_assert_str_eq(cJSON_GetObjectItem(o, "last_error")->valuestring,
	    "HTTP 503");
	ck_assert_str_eq(cJSON_GetObjectItem(o, "first_attempt")->valuestring,
	    "2026-11-23T05:43:39Z");
	ck_assert_str_eq(cJSON_GetObjectItem(o, "dead_at")->valuestring,
	    "2026-11-23T05:43:39Z");
	ck_assert_str_eq(cJSON_GetObjectItem(o, "reason")->valuestring,
	    "retries exhausted");
	/* Never attempted: no first or last attempt. */
	o = cJSON_GetArrayItem(arr, 1);
	ck_assert(cJSON_IsNull(cJSON_GetObjectItem(o, "first_attempt")));
	ck_assert(cJSON_IsNull(cJSON_GetObjectItem(o, "last_attempt")));
	cJSON_Delete(root);
	free(out);

	out = deadletters_render(NULL, 0, 1, &len);
	ck_assert_str_eq(out, "{\"dead_letters\":[]}");
	free(out);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("deadletters");
	TCase *tc = tcase_create("deadletters");

	tcase_add_test(tc, text_one_line_each);
	tcase_add_test(tc, json_fields_and_nulls);
	suite_add_tcase(s, tc);
	return unit_run(s);
}

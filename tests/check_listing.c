/* check_listing.c: format negotiation and the three renderings. */
#include <check.h>
#include <cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "listing.h"
#include "unit.h"

static enum listing_format
pick(const char *format, const char *accept)
{
	enum listing_format f = (enum listing_format)-1;

	ck_assert_int_eq(listing_negotiate(format, accept, &f), 0);
	return f;
}

START_TEST(negotiation)
{
	enum listing_format f = LISTING_HTML;

	ck_assert_int_eq(pick(NULL, NULL), LISTING_TEXT);
	ck_assert_int_eq(pick(NULL, "*/*"), LISTING_TEXT);
	ck_assert_int_eq(pick(NULL, "application/json"), LISTING_JSON);
	ck_assert_int_eq(pick(NULL, "text/html,application/xhtml+xml,"
	    "application/xml;q=0.9,image/avif,*/*;q=0.8"), LISTING_HTML);
	ck_assert_int_eq(pick(NULL, "application/json;q=0.5, text/plain"),
	    LISTING_TEXT);
	ck_assert_int_eq(pick(NULL, "text/*;q=0.3, application/json;q=0.4"),
	    LISTING_JSON);
	ck_assert_int_eq(pick(NULL, "text/html;q=0, */*"), LISTING_TEXT);
	ck_assert_int_eq(pick(NULL, "image/png"), LISTING_TEXT);
	ck_assert_int_eq(pick("json", "text/html"), LISTING_JSON);
	ck_assert_int_eq(pick("html", NULL), LISTING_HTML);
	ck_assert_int_eq(pick("text", "application/json"), LISTING_TEXT);
	ck_assert_int_eq(listing_negotiate("xml", NULL, &f), -1);
	ck_assert_int_eq(f, LISTING_HTML);
}
END_TEST

static struct subs *map;
static struct sub **v;
static long n;

static void
setup(void)
{
	static const char *const addrs[] = { "b.example:2", "a<x>&\"'.example:1" };

	map = subs_new(10, NULL);
	for (size_t i = 0; i < 2; i++) {
		CURLU *u = curl_url();

		/* 2026-11-23T05:43:39Z is 1795412619 seconds after the epoch. */
		ck_assert_int_eq(subs_add(map, addrs[i], u,
		    "http://h/event", NULL, 1795412619000LL, 1), SUBS_ADDED);
	}
	n = subs_snapshot(map, &v);
	ck_assert_int_eq(n, 2);
	atomic_store(&sub_counters(v[1])->delivered, 7);
	atomic_store(&sub_counters(v[1])->failed, 2);
	sub_set_error(v[1], "HTTP 503");
}

static void
teardown(void)
{
	for (long i = 0; i < n; i++)
		sub_unref(v[i]);
	free(v);
	subs_free(map);
}

START_TEST(text_is_the_seeds)
{
	size_t len;
	char *out = listing_render(LISTING_TEXT, v, 2, 120000, 0, &len);

	ck_assert_ptr_nonnull(out);
	ck_assert_uint_eq(len, strlen(out));
	ck_assert_str_eq(out,
	    "a<x>&\"'.example:1  :  2026-11-23T05:43:39Z\n"
	    "b.example:2  :  2026-11-23T05:43:39Z\n");
	free(out);
	out = listing_render(LISTING_TEXT, v, 0, 120000, 0, &len);
	ck_assert_uint_eq(len, 0);
	free(out);
	/* A failing subscriber's line says so after the seed's; others stay. */
	sub_set_state(v[1], SUB_FAILING);
	out = listing_render(LISTING_TEXT, v, 2, 120000, 0, &len);
	ck_assert_ptr_nonnull(out);
	ck_assert_str_eq(out,
	    "a<x>&\"'.example:1  :  2026-11-23T05:43:39Z\n"
	    "b.example:2  :  2026-11-23T05:43:39Z  failing\n");
	free(out);
}
END_TEST

START_TEST(json_fields)
{
	size_t len;
	char *out;
	cJSON *root, *arr, *b;

	sub_set_state(v[1], SUB_FAILING);
	atomic_store(&sub_counters(v[1])->retrying, 3);
	atomic_store(&sub_counters(v[1])->queued, 11);
	out = listing_render(LISTING_JSON, v, 2, 120000, 0, &len);
	ck_assert_ptr_nonnull(out);
	root = cJSON_ParseWithLength(out, len);
	ck_assert_ptr_nonnull(root);
	arr = cJSON_GetObjectItem(root, "subscribers");
	ck_assert_int_eq(cJSON_GetArraySize(arr), 2);
	b = cJSON_GetArrayItem(arr, 1);
	ck_assert_str_eq(cJSON_GetObjectItem(b, "address")->valuestring,
	    "b.example:2");
	ck_assert_str_eq(cJSON_GetObjectItem(b, "url")->valuestring,
	    "http://h/event");
	ck_assert_str_eq(cJSON_GetObjectItem(b, "registered_at")->valuestring,
	    "2026-11-23T05:43:39Z");
	ck_assert_str_eq(cJSON_GetObjectItem(b, "last_keepalive")->valuestring,
	    "2026-11-23T05:43:39Z");
	ck_assert_str_eq(cJSON_GetObjectItem(b, "expires_at")->valuestring,
	    "2026-11-23T05:45:39Z");
	ck_assert_int_eq(cJSON_GetObjectItem(b, "delivered")->valueint, 7);
	ck_assert_int_eq(cJSON_GetObjectItem(b, "failed")->valueint, 2);
	ck_assert_int_eq(cJSON_GetObjectItem(b, "queued")->valueint, 11);
	ck_assert_int_eq(cJSON_GetObjectItem(b, "in_flight")->valueint, 0);
	ck_assert_int_eq(cJSON_GetObjectItem(b, "retrying")->valueint, 3);
	ck_assert_ptr_null(cJSON_GetObjectItem(b, "dropped"));
	ck_assert_str_eq(cJSON_GetObjectItem(b, "state")->valuestring,
	    "failing");
	ck_assert_str_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(arr, 0),
	    "state")->valuestring, "active");
	ck_assert_int_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(arr, 0),
	    "retrying")->valueint, 0);
	ck_assert_str_eq(cJSON_GetObjectItem(b, "last_error")->valuestring,
	    "HTTP 503");
	ck_assert(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetArrayItem(arr, 0),
	    "last_error")));
	cJSON_Delete(root);
	free(out);
}
END_TEST

START_TEST(html_escapes_and_stands_alone)
{
	size_t len;
	char *out;

	sub_set_state(v[1], SUB_FAILING);
	out = listing_render(LISTING_HTML, v, 2, 120000,
	    1795412619000LL + 20000, &len);
	ck_assert_ptr_nonnull(out);
	ck_assert_ptr_nonnull(strstr(out, "<th>State</th>"));
	ck_assert_ptr_nonnull(strstr(out, "<th>Retrying</th>"));
	ck_assert_ptr_null(strstr(out, "Dropped"));
	ck_assert_ptr_nonnull(strstr(out, ">failing<"));
	ck_assert_ptr_nonnull(strstr(out, ">active<"));
	ck_assert_ptr_nonnull(strstr(out, "<!DOCTYPE html>"));
	ck_assert_ptr_nonnull(strstr(out, "a&lt;x&gt;&amp;&quot;&#39;.example:1"));
	ck_assert_ptr_null(strstr(out, "<x>"));
	ck_assert_ptr_nonnull(strstr(out, "HTTP 503"));
	ck_assert_ptr_nonnull(strstr(out, ">100s<"));	/* time to eviction */
	ck_assert_ptr_null(strstr(out, "src="));
	ck_assert_ptr_null(strstr(out, "<link"));
	free(out);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("listing");
	TCase *neg = tcase_create("negotiate");
	TCase *tc = tcase_create("render");

	tcase_add_test(neg, negotiation);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, text_is_the_seeds);
	tcase_add_test(tc, json_fields);
	tcase_add_test(tc, html_escapes_and_stands_alone);
	suite_add_tcase(s, neg);
	suite_add_tcase(s, tc);
	return unit_run(s);
}

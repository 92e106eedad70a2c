/* check_api.c: routing, methods, validation and answers of the HTTP front end. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api.h"
#include "unit.h"

static struct config cfg;
static struct deliver *dl;
static struct subs *map;
static struct api *api;

struct reply {
	long	status;
	char	body[4096];
	size_t	len;
	char	allow[64];
	char	ctype[128];
	char	retry[16];
};

static size_t
on_body(char *p, size_t size, size_t n, void *arg)
{
	struct reply *r = arg;
	size_t len = size * n, room = sizeof(r->body) - 1 - r->len;

	memcpy(r->body + r->len, p, len < room ? len : room);
	r->len += len < room ? len : room;
	r->body[r->len] = '\0';
	return len;
}

static void
grab(const char *line, size_t len, const char *name, char *out, size_t outlen)
{
	size_t n = strlen(name);

	if (len > n && strncasecmp(line, name, n) == 0) {
		snprintf(out, outlen, "%.*s", (int)(len - n), line + n);
		out[strcspn(out, "\r\n")] = '\0';
	}
}

static size_t
on_header(char *p, size_t size, size_t n, void *arg)
{
	struct reply *r = arg;

	grab(p, size * n, "Allow: ", r->allow, sizeof(r->allow));
	grab(p, size * n, "Content-Type: ", r->ctype, sizeof(r->ctype));
	grab(p, size * n, "Retry-After: ", r->retry, sizeof(r->retry));
	return size * n;
}

static struct reply
call(const char *method, const char *path, const char *body,
    const char *header)
{
	struct curl_slist *h = NULL;
	struct reply r = { 0 };
	char url[2400];
	CURL *e = curl_easy_init();

	snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", api_port(api), path);
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
	if (body != NULL)
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
	if (header != NULL)
		h = curl_slist_append(h, header);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, &r);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, &r);
	ck_assert_int_eq(curl_easy_perform(e), CURLE_OK);
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &r.status);
	curl_easy_cleanup(e);
	curl_slist_free_all(h);
	return r;
}

static void
setup(void)
{
	struct subs_hooks hooks = { deliver_on_add, deliver_on_remove, NULL };

	config_init(&cfg);
	snprintf(cfg.listen, sizeof(cfg.listen), "127.0.0.1:0");
	cfg.max_body = 16;
	cfg.max_subscribers = 2;
	dl = deliver_start(&cfg);
	hooks.arg = dl;
	map = subs_new((size_t)cfg.max_subscribers, &hooks);
	api = api_start(&cfg, map, dl);
	ck_assert_ptr_nonnull(api);
	ck_assert_uint_gt(api_port(api), 0);
}

static void
teardown(void)
{
	api_stop(api);
	deliver_stop(dl, 0);
	subs_free(map);
}

START_TEST(register_list_deregister)
{
	struct reply r;

	r = call("POST", "/registerAndKeepAlive?address=127.0.0.1:9", NULL, NULL);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.body, "success");
	ck_assert_str_eq(r.ctype, "text/plain; charset=utf-8");
	r = call("GET", "/listSubscribers", NULL, NULL);
	ck_assert_int_eq(r.status, 200);
	ck_assert_int_eq(strncmp(r.body, "127.0.0.1:9  :  20", 18), 0);
	r = call("GET", "/listSubscribers", NULL, "Accept: application/json");
	ck_assert_str_eq(r.ctype, "application/json");
	ck_assert_ptr_nonnull(strstr(r.body, "\"url\":\"http://127.0.0.1:9/event\""));
	r = call("GET", "/listSubscribers?format=html", NULL, NULL);
	ck_assert_str_eq(r.ctype, "text/html; charset=utf-8");
	r = call("GET", "/listSubscribers?format=yaml", NULL, NULL);
	ck_assert_int_eq(r.status, 400);
	r = call("DELETE", "/deregister?address=127.0.0.1:9", NULL, NULL);
	ck_assert_int_eq(r.status, 200);
	ck_assert_uint_eq(subs_count(map), 0);
	r = call("DELETE", "/deregister?address=127.0.0.1:9", NULL, NULL);
	ck_assert_int_eq(r.status, 200);
}
END_TEST

START_TEST(bad_addresses_change_nothing)
{
	struct reply r;

	r = call("POST", "/registerAndKeepAlive", NULL, NULL);
	ck_assert_int_eq(r.status, 400);
	ck_assert_str_eq(r.body, "Error:Wrong input address.");
	r = call("POST", "/registerAndKeepAlive?address=", NULL, NULL);
	ck_assert_str_eq(r.body, "Error:Wrong input address.");
	r = call("POST", "/registerAndKeepAlive?address=h:0", NULL, NULL);
	ck_assert_int_eq(r.status, 400);
	ck_assert_str_eq(r.body, "Error:Wrong input address: port must be a "
	    "number from 1 to 65535.");
	r = call("DELETE", "/deregister?address=ftp://h:21", NULL, NULL);
	ck_assert_int_eq(r.status, 400);
	ck_assert_uint_eq(subs_count(map), 0);
}
END_TEST

START_TEST(methods_and_paths)
{
	struct reply r;

	r = call("GET", "/registerAndKeepAlive?address=h:1", NULL, NULL);
	ck_assert_int_eq(r.status, 405);
	ck_assert_str_eq(r.allow, "POST");
	ck_assert_str_eq(r.body, "Error: Only POST accepted");
	r = call("POST", "/deregister?address=h:1", NULL, NULL);
	ck_assert_int_eq(r.status, 405);
	ck_assert_str_eq(r.allow, "DELETE");
	ck_assert_str_eq(r.body, "Error: Only DELETE accepted");
	r = call("POST", "/listSubscribers", NULL, NULL);
	ck_assert_int_eq(r.status, 405);
	ck_assert_str_eq(r.allow, "GET, HEAD");
	ck_assert_str_eq(r.body, "Error: Only GET accepted");
	r = call("GET", "/sendMessage", NULL, NULL);
	ck_assert_int_eq(r.status, 405);
	r = call("GET", "/nope", NULL, NULL);
	ck_assert_int_eq(r.status, 404);
	ck_assert_str_eq(r.body, "404 page not found\n");
	ck_assert_uint_eq(subs_count(map), 0);
}
END_TEST

START_TEST(publish_limits)
{
	struct reply r;

	r = call("POST", "/sendMessage", "sixteen bytes ok", NULL);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.body, "success");
	r = call("POST", "/sendMessage", "seventeen bytes!!", NULL);
	ck_assert_int_eq(r.status, 413);
	ck_assert_ptr_nonnull(strstr(r.body, "max_body"));
}
END_TEST

START_TEST(subscriber_limit)
{
	struct reply r;

	ck_assert_int_eq(call("POST", "/registerAndKeepAlive?address=a:1", NULL,
	    NULL).status, 200);
	ck_assert_int_eq(call("POST", "/registerAndKeepAlive?address=b:1", NULL,
	    NULL).status, 200);
	r = call("POST", "/registerAndKeepAlive?address=c:1", NULL, NULL);
	ck_assert_int_eq(r.status, 503);
	ck_assert_ptr_nonnull(strstr(r.body, "max_subscribers"));
	/* A keep-alive of one already registered still works at the limit. */
	ck_assert_int_eq(call("POST", "/registerAndKeepAlive?address=a:1", NULL,
	    NULL).status, 200);
	ck_assert_uint_eq(subs_count(map), 2);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("api");
	TCase *tc = tcase_create("api");

	curl_global_init(CURL_GLOBAL_DEFAULT);
	log_set_level(LOG_WARN);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, register_list_deregister);
	tcase_add_test(tc, bad_addresses_change_nothing);
	tcase_add_test(tc, methods_and_paths);
	tcase_add_test(tc, publish_limits);
	tcase_add_test(tc, subscriber_limit);
	suite_add_tcase(s, tc);
	return unit_run(s);
}

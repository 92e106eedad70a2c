/* check_api.c: routing, methods, validation and answers of the HTTP front end. */
#include <check.h>
#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sys/socket.h>
#include <unistd.h>

#include "api.h"
#include "dashboard.h"
#include "deliver.h"
#include "store.h"
#include "unit.h"

static char dir[64];
static struct config cfg;
static struct unit_stack stack;
static struct subs *map;
static struct api *api;

struct reply {
	long	status;
	char	body[4096];
	size_t	len;
	char	allow[64];
	char	ctype[128];
	char	retry[16];
	char	msgid[64];
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
	grab(p, size * n, "Message-Id: ", r->msgid, sizeof(r->msgid));
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

/* Settings a test changes go in before start(). */
static void
setup(void)
{
	unit_tempdir(dir);
	config_init(&cfg);
	snprintf(cfg.listen, sizeof(cfg.listen), "127.0.0.1:0");
	snprintf(cfg.data_dir, sizeof(cfg.data_dir), "%s", dir);
	cfg.durability = DURABILITY_OFF;
	cfg.max_body = 16;
	cfg.max_subscribers = 2;
	memset(&stack, 0, sizeof(stack));
	api = NULL;
}

static void
start(void)
{
	unit_stack_start_parts(&stack, &cfg, (size_t)cfg.max_subscribers,
	    DAEMON_API);
	map = stack.subs;
	api = stack.api;
	ck_assert_ptr_nonnull(api);
	ck_assert_uint_gt(api_port(api), 0);
}

static void
teardown(void)
{
	unit_stack_stop(&stack, 0);
	unit_rmdir(dir);
}

START_TEST(register_list_deregister)
{
	struct reply r;

	start();

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
	ck_assert_ptr_nonnull(strstr(r.body, "\"state\":\"active\""));
	ck_assert_ptr_nonnull(strstr(r.body, "\"retrying\":0"));
	ck_assert_ptr_null(strstr(r.body, "dropped"));
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

START_TEST(dashboard_files)
{
	const struct dashboard_file *page = dashboard_file(DASHBOARD_PAGE);
	struct reply r;

	start();

	r = call("GET", "/", NULL, NULL);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.ctype, "text/html; charset=utf-8");
	ck_assert_uint_eq(r.len, (size_t)(page->df_end - page->df_data));
	ck_assert_str_eq(r.body, page->df_data);
	/* A browser's Accept on the listing, without ?format=, gets the same. */
	r = call("GET", "/listSubscribers", NULL, "Accept: text/html");
	ck_assert_str_eq(r.body, page->df_data);
	r = call("GET", "/listSubscribers?format=html", NULL, "Accept: text/html");
	ck_assert_ptr_nonnull(strstr(r.body, "hookcast subscribers"));
	ck_assert_ptr_null(strstr(r.body, "<script"));
	r = call("GET", "/dashboard.js", NULL, NULL);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.ctype, "text/javascript; charset=utf-8");
	r = call("GET", "/dashboard.css", NULL, NULL);
	ck_assert_str_eq(r.ctype, "text/css; charset=utf-8");
	r = call("DELETE", "/dashboard.css", NULL, NULL);
	ck_assert_int_eq(r.status, 405);
	ck_assert_str_eq(r.allow, "GET, HEAD");
}
END_TEST

START_TEST(cross_site_changes_refused)
{
	char origin[64];
	struct reply r;

	start();

	r = call("POST", "/registerAndKeepAlive?address=127.0.0.1:9", NULL,
	    "Origin: http://evil.example");
	ck_assert_int_eq(r.status, 403);
	r = call("POST", "/registerAndKeepAlive?address=127.0.0.1:9", NULL,
	    "Sec-Fetch-Site: same-site");
	ck_assert_int_eq(r.status, 403);
	ck_assert_uint_eq(subs_count(map), 0);
	r = call("POST", "/deadLetters/replay?address=127.0.0.1:9", NULL,
	    "Sec-Fetch-Site: cross-site");
	ck_assert_int_eq(r.status, 403);
	/* Reading is not a change. */
	r = call("GET", "/listSubscribers", NULL, "Sec-Fetch-Site: cross-site");
	ck_assert_int_eq(r.status, 200);
	snprintf(origin, sizeof(origin), "Origin: http://127.0.0.1:%u",
	    api_port(api));
	r = call("POST", "/registerAndKeepAlive?address=127.0.0.1:9", NULL,
	    origin);
	ck_assert_int_eq(r.status, 200);
	ck_assert_uint_eq(subs_count(map), 1);
}
END_TEST

START_TEST(bad_addresses_change_nothing)
{
	struct reply r;

	start();

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
	/* 0%2e21: libcurl would have made it the name "0.21", 0.0.0.21. */
	r = call("POST", "/registerAndKeepAlive?address=http://0%252e21:80/",
	    NULL, NULL);
	ck_assert_int_eq(r.status, 400);
	ck_assert_str_eq(r.body, "Error:Wrong input address: the host may not "
	    "be percent-encoded.");
	ck_assert_uint_eq(subs_count(map), 0);
}
END_TEST

START_TEST(methods_and_paths)
{
	struct reply r;

	start();

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
	/* "GET, HEAD" holds neither "GE" nor "EAD". */
	r = call("GE", "/listSubscribers", NULL, NULL);
	ck_assert_int_eq(r.status, 405);
	r = call("EAD", "/listSubscribers", NULL, NULL);
	ck_assert_int_eq(r.status, 405);
	for (size_t i = 0; i < 4; i++) {
		static const char *const probes[] = { "/metrics", "/stats",
		    "/healthz", "/readyz" };

		r = call("POST", probes[i], NULL, NULL);
		ck_assert_int_eq(r.status, 405);
		ck_assert_str_eq(r.allow, "GET, HEAD");
		ck_assert_str_eq(r.body, "Error: Only GET accepted");
	}
	ck_assert_uint_eq(subs_count(map), 0);
}
END_TEST

START_TEST(probes_metrics_and_stats)
{
	struct reply r;

	start();
	r = call("GET", "/healthz", NULL, NULL);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.body, "ok\n");
	r = call("GET", "/readyz", NULL, NULL);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.body, "ok\n");
	ck_assert_int_eq(call("POST", "/sendMessage", "one", NULL).status, 200);
	r = call("GET", "/metrics", NULL, NULL);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.ctype, "text/plain; version=0.0.4; charset=utf-8");
	/* Each answer above is counted, by route and status. */
	ck_assert_ptr_nonnull(strstr(r.body, "\nhookcast_http_requests_total{"
	    "endpoint=\"/healthz\",code=\"200\"} 1\n"));
	ck_assert_ptr_nonnull(strstr(r.body, "\nhookcast_http_requests_total{"
	    "endpoint=\"/readyz\",code=\"200\"} 1\n"));
	ck_assert_ptr_nonnull(strstr(r.body, "\nhookcast_http_requests_total{"
	    "endpoint=\"/sendMessage\",code=\"200\"} 1\n"));
	ck_assert_ptr_nonnull(strstr(r.body, "\nhookcast_backlog_bytes 3\n"));
	r = call("GET", "/stats", NULL, NULL);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.ctype, "application/json");
	ck_assert_int_eq(strncmp(r.body, "{\"interval_s\":10,\"now\":", 23), 0);
	/*
	 * The one publish is in the open point, or in the last closed one
	 * when a 10-s boundary fell between the publish and this request.
	 */
	{
		cJSON *doc = cJSON_Parse(r.body), *p;
		double accepted = 0;

		ck_assert_ptr_nonnull(doc);
		cJSON_ArrayForEach(p, cJSON_GetObjectItem(doc, "points"))
			accepted += cJSON_GetNumberValue(
			    cJSON_GetObjectItem(p, "accepted"));
		cJSON_Delete(doc);
		ck_assert(accepted == 1);
	}
}
END_TEST

/* A subscriber that answers 410 once GATE has a byte to read. */
struct gone {
	int		 g_listen, g_gate[2];
	pthread_t	 g_thread;
};

static void *
gone_serve(void *arg)
{
	static const char answer[] = "HTTP/1.1 410 Gone\r\n"
	    "Content-Length: 0\r\nConnection: close\r\n\r\n";
	struct gone *g = arg;
	char buf[4096], c;
	int fd;

	if ((fd = accept(g->g_listen, NULL, NULL)) == -1)
		return NULL;
	if (read(fd, buf, sizeof(buf)) > 0 && read(g->g_gate[0], &c, 1) == 1 &&
	    write(fd, answer, sizeof(answer) - 1) < 0)
		c = 0;
	close(fd);
	return NULL;
}

struct stuck {
	struct gone	*s_gone;
	struct reply	 s_reply;	/* the first /readyz that was not 200 */
};

/* For unit_poll: GET /readyz into ARG (a struct reply); is it 200? */
static int
readyz_ok(void *arg)
{
	struct reply *r = arg;

	*r = call("GET", "/readyz", NULL, NULL);
	return r->status == 200;
}

static int
readyz_not_ok(void *arg)
{
	return !readyz_ok(arg);
}

/*
 * Under the map's read lock: opens the gate, then polls /readyz until it
 * is not 200 (10 s at most); the caller checks the answer it kept.
 */
static int
poll_ready_locked(void *arg, size_t n)
{
	struct stuck *s = arg;

	(void)n;
	if (write(s->s_gone->g_gate[1], "x", 1) != 1)
		return -1;
	/* 410 makes the delivery thread wait for the write lock: stuck. */
	return unit_poll(readyz_not_ok, &s->s_reply, 10000) ? 0 : -1;
}

/*
 * A delivery thread that stops going round its loop makes /readyz say so
 * within READY_STALE_MS (5 s), and it is ready again once the thread moves.
 */
START_TEST(readyz_reports_a_stuck_delivery_thread)
{
	struct gone g;
	struct stuck s = { .s_gone = &g };
	char path[128], address[64];
	int thread, secs;
	struct reply r;
	unsigned port;

	/* Three threads: the stuck one is whichever owns the shard. */
	cfg.delivery_threads = 3;
	start();
	g.g_listen = unit_hang_listen(&port);
	ck_assert_int_eq(pipe(g.g_gate), 0);
	ck_assert_int_eq(pthread_create(&g.g_thread, NULL, gone_serve, &g), 0);
	snprintf(address, sizeof(address), "127.0.0.1:%u", port);
	snprintf(path, sizeof(path), "/registerAndKeepAlive?address=%s",
	    address);
	ck_assert_int_eq(call("POST", path, NULL, NULL).status, 200);
	ck_assert_int_eq(call("POST", "/sendMessage", "gone", NULL).status, 200);
	ck_assert_msg(subs_count_then(map, NULL, poll_ready_locked, &s) == 0,
	    "/readyz still %ld after 10 s", s.s_reply.status);
	ck_assert_int_eq(s.s_reply.status, 503);
	/* It names the thread: the one that owns the subscriber's shard. */
	ck_assert_msg(sscanf(s.s_reply.body,
			  "delivery thread %d: no heartbeat for %d s\n",
			  &thread, &secs) == 2 &&
		thread == (int)(subs_shard_of(address) % cfg.delivery_threads) &&
		secs >= 5,
	    "%s", s.s_reply.body);
	wait_until(readyz_ok, &r, 5000);
	pthread_join(g.g_thread, NULL);
	close(g.g_listen);
	close(g.g_gate[0]);
	close(g.g_gate[1]);
}
END_TEST

START_TEST(publish_limits)
{
	struct reply r;

	start();

	r = call("POST", "/sendMessage", "sixteen bytes ok", NULL);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.body, "success");
	/* Committed by now, under the id it will be delivered with. */
	ck_assert_uint_eq(strlen(r.msgid), 36);
	ck_assert_int_eq(strncmp(r.msgid, "msg_", 4), 0);
	ck_assert_uint_eq(strspn(r.msgid + 4, "0123456789abcdef"), 32);
	ck_assert_uint_eq(store_last_seq(stack.store), 1);
	r = call("POST", "/sendMessage", "seventeen bytes!!", NULL);
	ck_assert_int_eq(r.status, 413);
	ck_assert_ptr_nonnull(strstr(r.body, "max_body"));
	/* A Content-Type that would add a line to every delivery's headers. */
	r = call("POST", "/sendMessage", "x", "Content-Type: text/plain\r"
	    "X-Injected: yes");
	ck_assert_int_eq(r.status, 400);
	ck_assert_str_eq(r.body, "Error: Content-Type holds a control "
	    "character.");
	ck_assert_uint_eq(store_last_seq(stack.store), 1);
}
END_TEST

START_TEST(batch_publish)
{
	struct reply r;

	cfg.max_batch = 1;
	start();

	/* Committed by now, numbered, with its id in the answer. */
	r = call("POST", "/sendMessages", "[{\"body\":\"a\"}]",
	    "Content-Type: text/plain");
	ck_assert_int_eq(r.status, 200);
	ck_assert_int_eq(strncmp(r.body, "[{\"id\":\"msg_", 10), 0);
	ck_assert_ptr_nonnull(strstr(r.body, "\"subscribers\":0}]"));
	ck_assert_uint_eq(store_last_seq(stack.store), 1);
	/* Past max_body (16 here): the whole request. */
	r = call("POST", "/sendMessages", "[{\"body\":\"abcd\"}]", NULL);
	ck_assert_int_eq(r.status, 413);
	r = call("POST", "/sendMessages", "[{\"bod\":\"a\"}]", NULL);
	ck_assert_int_eq(r.status, 400);
	ck_assert_str_eq(r.body, "Error: item 0: unknown field \"bod\".");
	r = call("POST", "/sendMessages", "[{},{}]", NULL);
	ck_assert_int_eq(r.status, 400);
	ck_assert_str_eq(r.body,
	    "Error: item 1: more than max_batch (1) messages in one batch.");
	r = call("GET", "/sendMessages", NULL, NULL);
	ck_assert_int_eq(r.status, 405);
	ck_assert_uint_eq(store_last_seq(stack.store), 1);
}
END_TEST

START_TEST(subscriber_limit)
{
	struct reply r;

	start();

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

static int
lines(const char *text)
{
	int n = 0;

	for (; (text = strchr(text, '\n')) != NULL; text++)
		n++;
	return n;
}

struct listing {
	const char	*l_path;
	int		 l_want;
	struct reply	 l_reply;
};

/* For wait_until: GET l_path has at least l_want lines; kept in l_reply. */
static int
listing_has(void *arg)
{
	struct listing *l = arg;

	l->l_reply = call("GET", l->l_path, NULL, NULL);
	return lines(l->l_reply.body) >= l->l_want;
}

static int
backlog_empty(void *arg)
{
	(void)arg;
	return store_backlog_bytes(stack.store) == 0;
}

/*
 * Past max_backlog_bytes in the store, publishes are refused with 503 and
 * Retry-After; what was accepted stays, and once the backlog is gone
 * publishing works again.
 */
START_TEST(backlog_limit)
{
	char path[128];
	unsigned port;
	int hfd = unit_hang_listen(&port);
	struct listing dl = { .l_want = 3 };
	struct reply r;

	cfg.max_backlog_bytes = 40;
	cfg.delivery_timeout = 1;	/* the transfers in flight give up */
	start();
	snprintf(path, sizeof(path), "/registerAndKeepAlive?address=127.0.0.1:%u",
	    port);
	ck_assert_int_eq(call("POST", path, NULL, NULL).status, 200);
	/* The subscriber never answers: its messages stay in the store. */
	ck_assert_int_eq(call("POST", "/sendMessage", "sixteen bytes ok",
	    NULL).status, 200);
	ck_assert_int_eq(call("POST", "/sendMessage", "sixteen bytes ok",
	    NULL).status, 200);
	ck_assert_uint_eq(store_backlog_bytes(stack.store), 32);
	r = call("POST", "/sendMessage", "sixteen bytes ok", NULL);
	ck_assert_int_eq(r.status, 503);
	ck_assert_str_eq(r.retry, "1");
	ck_assert_str_eq(r.msgid, "");
	ck_assert_str_eq(r.body, "Error: Queue full, retry later.");
	/* A smaller one still fits. */
	ck_assert_int_eq(call("POST", "/sendMessage", "8 bytes!", NULL).status,
	    200);
	ck_assert_int_eq(call("POST", "/sendMessage", "1", NULL).status, 503);
	ck_assert_uint_eq(store_backlog_bytes(stack.store), 40);
	ck_assert_uint_eq(store_last_seq(stack.store), 3);

	/* Deregistered: its three messages are dead letters, still stored... */
	snprintf(path, sizeof(path), "/deregister?address=127.0.0.1:%u", port);
	ck_assert_int_eq(call("DELETE", path, NULL, NULL).status, 200);
	snprintf(path, sizeof(path), "/deadLetters?address=127.0.0.1:%u", port);
	dl.l_path = path;
	wait_until(listing_has, &dl, 5000);
	r = dl.l_reply;
	ck_assert_msg(lines(r.body) == 3, "dead letters: %s", r.body);
	for (const char *p = r.body; (p = strchr(p, '\n')) != NULL; p++)
		ck_assert_int_eq(strncmp(p - 19, "reason=deregistered\n", 20),
		    0);
	ck_assert_int_eq(call("POST", "/sendMessage", "1", NULL).status, 503);
	/* ...until they are purged: then the store lets the bodies go. */
	r = call("DELETE", path, NULL, NULL);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.body, "purged 3\n");
	wait_until(backlog_empty, NULL, 3000);
	ck_assert_int_eq(call("POST", "/sendMessage", "sixteen bytes ok",
	    NULL).status, 200);
	close(hfd);
}
END_TEST

START_TEST(dead_letter_endpoints)
{
	struct reply r;

	start();
	r = call("GET", "/deadLetters", NULL, NULL);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.ctype, "text/plain; charset=utf-8");
	ck_assert_str_eq(r.body, "");
	r = call("GET", "/deadLetters?format=json", NULL, NULL);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.ctype, "application/json");
	ck_assert_str_eq(r.body, "{\"dead_letters\":[]}");
	r = call("GET", "/deadLetters", NULL, "Accept: application/json");
	ck_assert_str_eq(r.ctype, "application/json");
	r = call("GET", "/deadLetters?limit=0", NULL, NULL);
	ck_assert_int_eq(r.status, 400);
	r = call("GET", "/deadLetters?limit=100001", NULL, NULL);
	ck_assert_int_eq(r.status, 400);
	r = call("GET", "/deadLetters?limit=100000&address=h:1", NULL, NULL);
	ck_assert_int_eq(r.status, 200);

	r = call("POST", "/deadLetters/replay", NULL, NULL);
	ck_assert_int_eq(r.status, 400);
	ck_assert_str_eq(r.body, "Error: address or id required.");
	r = call("POST", "/deadLetters/replay?address=127.0.0.1:9", NULL, NULL);
	ck_assert_int_eq(r.status, 409);
	ck_assert_int_eq(call("POST", "/registerAndKeepAlive?address=127.0.0.1:9",
	    NULL, NULL).status, 200);
	r = call("POST", "/deadLetters/replay?address=127.0.0.1:9", NULL, NULL);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.body, "replayed 0\n");

	r = call("DELETE", "/deadLetters", NULL, NULL);
	ck_assert_int_eq(r.status, 400);
	r = call("DELETE", "/deadLetters?id=msg_0123456789abcdef0123456789abcdef",
	    NULL, NULL);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.body, "purged 0\n");

	r = call("PUT", "/deadLetters", NULL, NULL);
	ck_assert_int_eq(r.status, 405);
	ck_assert_str_eq(r.allow, "GET, HEAD, DELETE");
	r = call("GET", "/deadLetters/replay?address=127.0.0.1:9", NULL, NULL);
	ck_assert_int_eq(r.status, 405);
	ck_assert_str_eq(r.allow, "POST");
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
	tcase_add_test(tc, dashboard_files);
	tcase_add_test(tc, cross_site_changes_refused);
	tcase_add_test(tc, bad_addresses_change_nothing);
	tcase_add_test(tc, methods_and_paths);
	tcase_add_test(tc, publish_limits);
	tcase_add_test(tc, batch_publish);
	tcase_add_test(tc, subscriber_limit);
	tcase_add_test(tc, backlog_limit);
	tcase_add_test(tc, dead_letter_endpoints);
	tcase_add_test(tc, probes_metrics_and_stats);
	tcase_add_test(tc, readyz_reports_a_stuck_delivery_thread);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);
	return unit_run(s);
}

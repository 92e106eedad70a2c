/* check_deliver.c: fan-out, FIFO limits and failures against a real HTTP sink. */
#include <arpa/inet.h>
#include <check.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "addr.h"
#include "deliver.h"
#include "unit.h"

/* ---- a sink that counts what it receives -------------------------------- */

static pthread_mutex_t sink_lock = PTHREAD_MUTEX_INITIALIZER;
static int sink_count, sink_bad;

struct req {
	size_t	len;
	char	body[64];
};

static enum MHD_Result
sink_handle(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *data,
    size_t *size, void **con_cls)
{
	struct req *r = *con_cls;
	struct MHD_Response *resp;
	const char *ua, *ct, *expect;
	enum MHD_Result ret;

	(void)cls, (void)url, (void)version;
	if (r == NULL) {
		*con_cls = calloc(1, sizeof(*r));
		return MHD_YES;
	}
	if (*size > 0) {
		size_t n = *size < sizeof(r->body) - r->len ? *size :
		    sizeof(r->body) - r->len;
		memcpy(r->body + r->len, data, n);
		r->len += n;
		*size = 0;
		return MHD_YES;
	}
	ua = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "User-Agent");
	ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
	expect = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Expect");
	pthread_mutex_lock(&sink_lock);
	sink_count++;
	if (strcmp(method, "POST") != 0 || ua == NULL ||
	    strncmp(ua, "hookcast/", 9) != 0 || ct == NULL ||
	    strcmp(ct, "text/x-test") != 0 || expect != NULL ||
	    r->len != 5 || memcmp(r->body, "hello", 5) != 0)
		sink_bad++;
	pthread_mutex_unlock(&sink_lock);
	resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
	ret = MHD_queue_response(c, 204, resp);
	MHD_destroy_response(resp);
	return ret;
}

static void
sink_done(void *cls, struct MHD_Connection *c, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	(void)cls, (void)c, (void)toe;
	free(*con_cls);
	*con_cls = NULL;
}

static struct MHD_Daemon *
sink_start(unsigned *port)
{
	struct MHD_Daemon *d = MHD_start_daemon(
	    MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, 0, NULL, NULL,
	    sink_handle, NULL, MHD_OPTION_NOTIFY_COMPLETED, sink_done, NULL,
	    MHD_OPTION_THREAD_POOL_SIZE, 2u, MHD_OPTION_END);

	ck_assert_ptr_nonnull(d);
	*port = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT)->port;
	return d;
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

/* ---- the daemon's side -------------------------------------------------- */

static struct config cfg;
static struct deliver *dl;
static struct subs *map;

/* Settings a test changes go in before start(): the thread reads cfg. */
static void
setup(void)
{
	config_init(&cfg);
	cfg.queue_limit = 5;
	cfg.max_in_flight = 2;
	cfg.delivery_timeout = 30;
	sink_count = sink_bad = 0;
	dl = NULL;
	map = NULL;
}

static void
start(void)
{
	struct subs_hooks hooks = { deliver_on_add, deliver_on_remove, NULL };

	dl = deliver_start(&cfg);
	ck_assert_ptr_nonnull(dl);
	hooks.arg = dl;
	map = subs_new(100, &hooks);
}

static void
teardown(void)
{
	deliver_stop(dl, 0);
	subs_free(map);
}

static struct sub *
subscribe(const char *address)
{
	struct sub **v;
	CURLU *u;
	char *text;
	long n;
	struct sub *found = NULL;

	ck_assert_int_eq(addr_parse(address, &u, &text), ADDR_OK);
	ck_assert_int_eq(subs_add(map, address, u, text, 0, 0), SUBS_ADDED);
	curl_free(text);
	deliver_wake(dl);
	n = subs_snapshot(map, &v);
	for (long i = 0; i < n; i++) {
		if (strcmp(sub_address(v[i]), address) == 0)
			found = v[i];
		else
			sub_unref(v[i]);
	}
	free(v);
	return found;	/* the caller's reference */
}

static void
publish(int n)
{
	for (int i = 0; i < n; i++) {
		struct msg *m = msg_new("text/x-test", "hello", 5);

		ck_assert_int_eq(deliver_publish(dl, m), 0);
		msg_unref(m);
	}
}

static int
wait_for(atomic_uint_fast64_t *v, uint_fast64_t want)
{
	for (int i = 0; i < 500 && atomic_load(v) < want; i++)
		usleep(10000);
	return atomic_load(v) == want;
}

START_TEST(fans_out_to_everyone)
{
	char a[64];
	unsigned port;
	struct MHD_Daemon *sink = sink_start(&port);
	struct sub *s[3];

	cfg.queue_limit = 1000;
	start();
	for (int i = 0; i < 3; i++) {
		snprintf(a, sizeof(a), "http://127.0.0.1:%u/s%d", port, i);
		s[i] = subscribe(a);
	}
	publish(200);
	for (int i = 0; i < 3; i++) {
		ck_assert(wait_for(&sub_counters(s[i])->delivered, 200));
		ck_assert_uint_eq(atomic_load(&sub_counters(s[i])->failed), 0);
		ck_assert_uint_eq(atomic_load(&sub_counters(s[i])->dropped), 0);
		ck_assert_uint_le(atomic_load(&sub_counters(s[i])->in_flight), 2);
		sub_unref(s[i]);
	}
	ck_assert_int_eq(sink_count, 600);
	ck_assert_int_eq(sink_bad, 0);
	MHD_stop_daemon(sink);
}
END_TEST

START_TEST(hanging_subscriber_holds_only_its_slots)
{
	char a[64];
	unsigned port, hport;
	struct MHD_Daemon *sink = sink_start(&port);
	int hfd = hang_start(&hport);
	struct sub *ok, *hang;

	start();
	snprintf(a, sizeof(a), "127.0.0.1:%u", hport);
	hang = subscribe(a);
	snprintf(a, sizeof(a), "127.0.0.1:%u", port);
	ok = subscribe(a);
	/*
	 * queue_limit 5 and max_in_flight 2: two transfers hang, at most five
	 * wait, and every other message was dropped (how many of each depends
	 * on whether the thread started a transfer between two publishes).
	 */
	publish(20);
	ck_assert(wait_for(&sub_counters(hang)->in_flight, 2));
	usleep(100000);
	ck_assert_uint_le(atomic_load(&sub_counters(hang)->queued), 5);
	ck_assert_uint_ge(atomic_load(&sub_counters(hang)->dropped), 13);
	ck_assert_uint_eq(atomic_load(&sub_counters(hang)->queued) +
	    atomic_load(&sub_counters(hang)->dropped) + 2, 20);
	/* The healthy subscriber got what its own FIFO kept. */
	ck_assert(wait_for(&sub_counters(ok)->delivered, 20 -
	    atomic_load(&sub_counters(ok)->dropped)));
	ck_assert_uint_ge(atomic_load(&sub_counters(ok)->delivered), 5);
	sub_unref(ok);
	sub_unref(hang);
	MHD_stop_daemon(sink);
	close(hfd);
}
END_TEST

/* Hanging subscribers fill max_transfers, but only until their transfers turn slow. */
START_TEST(hanging_subscribers_do_not_starve_the_rest)
{
	char a[64];
	unsigned port, hport[3];
	struct MHD_Daemon *sink = sink_start(&port);
	int hfd[3];
	struct sub *ok, *hang[3];

	cfg.max_transfers = 4;
	cfg.queue_limit = 100;
	start();
	for (int i = 0; i < 3; i++) {
		hfd[i] = hang_start(&hport[i]);
		snprintf(a, sizeof(a), "127.0.0.1:%u", hport[i]);
		hang[i] = subscribe(a);
	}
	snprintf(a, sizeof(a), "127.0.0.1:%u", port);
	ok = subscribe(a);
	publish(10);
	/* 3 x 2 hanging transfers want more than the 4 slots there are... */
	ck_assert(wait_for(&sub_counters(ok)->delivered, 10));
	/* ...and once they are slow, every hanging one holds its own two. */
	for (int i = 0; i < 3; i++) {
		ck_assert(wait_for(&sub_counters(hang[i])->in_flight, 2));
		sub_unref(hang[i]);
		close(hfd[i]);
	}
	sub_unref(ok);
	MHD_stop_daemon(sink);
}
END_TEST

START_TEST(refused_is_counted_with_its_reason)
{
	char a[64], err[SUB_ERRLEN];
	unsigned port;
	int fd = hang_start(&port);
	struct sub *s;

	close(fd);	/* nothing listens there now */
	start();
	snprintf(a, sizeof(a), "127.0.0.1:%u", port);
	s = subscribe(a);
	publish(3);
	ck_assert(wait_for(&sub_counters(s)->failed, 3));
	ck_assert_uint_eq(atomic_load(&sub_counters(s)->delivered), 0);
	sub_get_error(s, err);
	ck_assert_msg(strstr(err, "onnect") != NULL, "last error \"%s\"", err);
	sub_unref(s);
}
END_TEST

START_TEST(removed_subscriber_gets_nothing_more)
{
	char a[64];
	unsigned port;
	struct MHD_Daemon *sink = sink_start(&port);
	struct sub *s;

	start();
	snprintf(a, sizeof(a), "127.0.0.1:%u", port);
	s = subscribe(a);
	publish(1);
	ck_assert(wait_for(&sub_counters(s)->delivered, 1));
	ck_assert_int_eq(subs_remove(map, a), 0);
	deliver_wake(dl);
	publish(5);
	usleep(200000);
	ck_assert_uint_eq(atomic_load(&sub_counters(s)->delivered), 1);
	ck_assert_int_eq(sink_count, 1);
	sub_unref(s);
	MHD_stop_daemon(sink);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("deliver");
	TCase *tc = tcase_create("deliver");

	curl_global_init(CURL_GLOBAL_DEFAULT);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, fans_out_to_everyone);
	tcase_add_test(tc, hanging_subscriber_holds_only_its_slots);
	tcase_add_test(tc, hanging_subscribers_do_not_starve_the_rest);
	tcase_add_test(tc, refused_is_counted_with_its_reason);
	tcase_add_test(tc, removed_subscriber_gets_nothing_more);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);
	return unit_run(s);
}

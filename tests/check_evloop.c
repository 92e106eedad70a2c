/* check_evloop.c: the epoll set that drives a libcurl multi handle. */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>

#include "clock.h"
#include "evloop.h"
#include "unit.h"

struct done {
	int		 n;
	CURL		*easy;
	CURLcode	 rc;
};

static void
on_done(void *arg, CURL *e, CURLcode rc)
{
	struct done *dn = arg;

	dn->n++;
	dn->easy = e;
	dn->rc = rc;
}

START_TEST(wake_ends_the_wait)
{
	struct done dn = { 0 };
	struct evloop *ev = evloop_new(on_done, &dn);
	int64_t t0;

	ck_assert_ptr_nonnull(ev);
	evloop_wake(ev);
	t0 = clock_mono_ms();
	evloop_poll(ev, t0, 5000);
	ck_assert_int_lt(clock_mono_ms() - t0, 1000);
	ck_assert_int_eq(dn.n, 0);
	evloop_free(ev);
}
END_TEST

START_TEST(idle_wait_lasts_max_ms)
{
	struct done dn = { 0 };
	struct evloop *ev = evloop_new(on_done, &dn);
	int64_t t0 = clock_mono_ms();

	ck_assert_ptr_nonnull(ev);
	evloop_poll(ev, t0, 100);
	ck_assert_int_ge(clock_mono_ms() - t0, 90);
	ck_assert_int_eq(dn.n, 0);
	evloop_free(ev);
}
END_TEST

static void *
wake_later(void *arg)
{
	usleep(50 * 1000);
	evloop_wake(arg);
	return NULL;
}

START_TEST(wake_from_another_thread)
{
	struct done dn = { 0 };
	struct evloop *ev = evloop_new(on_done, &dn);
	pthread_t th;
	int64_t t0;

	ck_assert_ptr_nonnull(ev);
	ck_assert_int_eq(pthread_create(&th, NULL, wake_later, ev), 0);
	t0 = clock_mono_ms();
	evloop_poll(ev, t0, 5000);
	ck_assert_int_lt(clock_mono_ms() - t0, 2000);
	pthread_join(th, NULL);
	evloop_free(ev);
}
END_TEST

/* Answers every request on one kept-alive connection, until it closes. */
struct server {
	int		 lfd;
	int		 requests;
};

static void *
serve(void *arg)
{
	static const char answer[] = "HTTP/1.1 200 OK\r\n"
	    "Content-Length: 2\r\n\r\nok";
	struct server *sv = arg;
	char buf[4096];
	size_t have = 0;
	ssize_t n;
	char *end;
	int fd;

	if ((fd = accept(sv->lfd, NULL, NULL)) == -1)
		return NULL;
	while ((n = read(fd, buf + have, sizeof(buf) - 1 - have)) > 0) {
		have += (size_t)n;
		buf[have] = '\0';
		while ((end = strstr(buf, "\r\n\r\n")) != NULL) {
			sv->requests++;
			if (write(fd, answer, sizeof(answer) - 1) < 0)
				goto done;
			have -= (size_t)(end + 4 - buf);
			memmove(buf, end + 4, have + 1);
		}
	}
done:
	close(fd);
	return NULL;
}

static curl_socket_t
open_through(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
	(void)purpose;
	return evloop_open_socket(arg, a);
}

static size_t
discard(char *ptr, size_t size, size_t nmemb, void *arg)
{
	(void)ptr;
	(void)arg;
	return size * nmemb;
}

static void
run_until_done(struct evloop *ev, struct done *dn, int want)
{
	int64_t stop = clock_mono_ms() + 5000;

	while (dn->n < want && clock_mono_ms() < stop)
		evloop_poll(ev, clock_mono_ms(), 50);
}

START_TEST(transfers_end_through_the_callback)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
	    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sin);
	struct server sv = { 0 };
	struct done dn = { 0 };
	struct evloop *ev;
	pthread_t th;
	char url[64];
	long status = 0;
	CURL *e;

	sv.lfd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(sv.lfd, 0);
	ck_assert_int_eq(bind(sv.lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(listen(sv.lfd, 4), 0);
	ck_assert_int_eq(getsockname(sv.lfd, (struct sockaddr *)&sin, &len), 0);
	ck_assert_int_eq(pthread_create(&th, NULL, serve, &sv), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/",
	    ntohs(sin.sin_port));

	ev = evloop_new(on_done, &dn);
	ck_assert_ptr_nonnull(ev);
	e = curl_easy_init();
	ck_assert_ptr_nonnull(e);
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, open_through);
	curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, ev);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
	evloop_setup_easy(ev, e);

	/* Twice: the second reuses the idle connection left in the set. */
	for (int i = 1; i <= 2; i++) {
		ck_assert_int_eq(evloop_add(ev, e), 0);
		run_until_done(ev, &dn, i);
		ck_assert_int_eq(dn.n, i);
		ck_assert_ptr_eq(dn.easy, e);
		ck_assert_int_eq(dn.rc, CURLE_OK);
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
		ck_assert_int_eq(status, 200);
		evloop_remove(ev, e);
	}
	ck_assert_int_eq(sv.requests, 2);

	curl_easy_cleanup(e);
	/* Closes the kept connection: the server sees it end. */
	evloop_free(ev);
	pthread_join(th, NULL);
	close(sv.lfd);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("evloop");
	TCase *tc = tcase_create("evloop");

	curl_global_init(CURL_GLOBAL_DEFAULT);
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, wake_ends_the_wait);
	tcase_add_test(tc, idle_wait_lasts_max_ms);
	tcase_add_test(tc, wake_from_another_thread);
	tcase_add_test(tc, transfers_end_through_the_callback);
	suite_add_tcase(s, tc);
	return unit_run(s);
}

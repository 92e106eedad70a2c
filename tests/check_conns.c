/* check_conns.c: slow requests are cut at their deadlines, and the oldest incomplete one makes room. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conns.h"
#include "unit.h"

/* header 2 s, idle 5 s, body 3 s + 1 s a KiB. */
static const struct conns_limits lim = {
	.cl_header_ms = 2000, .cl_idle_ms = 5000, .cl_body_ms = 3000,
	.cl_body_rate = 1024,
};

/* A connected pair: [0] the table's socket, [1] the client's. */
struct pair {
	int	 fd[2];
};

static void
pair_open(struct pair *p)
{
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, p->fd), 0);
	ck_assert_int_eq(fcntl(p->fd[1], F_SETFL, O_NONBLOCK), 0);
}

static void
pair_close(struct pair *p)
{
	close(p->fd[0]);
	close(p->fd[1]);
}

/* Whether the server's side was shut down, as the client sees it. */
static int
was_cut(const struct pair *p)
{
	char b;
	ssize_t n = read(p->fd[1], &b, 1);

	if (n == 0)
		return 1;
	ck_assert_int_eq(n, -1);
	ck_assert_int_eq(errno, EAGAIN);
	return 0;
}

START_TEST(headers_due_from_accept)
{
	struct conns *cs = conns_new(10, &lim);
	struct conns_counts n;
	struct pair p;
	struct conn *c;

	pair_open(&p);
	c = conns_open(cs, p.fd[0], 1000);
	ck_assert_ptr_nonnull(c);
	/* Nothing is due before 3000; the sweeper is told when to come back. */
	ck_assert_int_eq(conns_sweep(cs, 2000), 3000);
	ck_assert_int_eq(conns_sweep(cs, 2999), 3000);
	ck_assert(!was_cut(&p));
	/* Trickling does not move the deadline: only the headers' end does. */
	conns_sweep(cs, 3000);
	ck_assert(was_cut(&p));
	conns_take_counts(cs, &n);
	ck_assert_int_eq(n.cc_header, 1);
	ck_assert_int_eq(n.cc_body + n.cc_idle + n.cc_evicted, 0);
	/* Cut once: a later round leaves it to its thread to close. */
	conns_sweep(cs, 10000);
	conns_take_counts(cs, &n);
	ck_assert_int_eq(n.cc_header, 0);
	conns_close(cs, c);
	pair_close(&p);
	conns_free(cs);
}
END_TEST

START_TEST(body_at_the_minimum_rate)
{
	struct conns *cs = conns_new(10, &lim);
	struct conns_counts n;
	struct pair fast, slow;
	struct conn *f, *s;

	pair_open(&fast);
	pair_open(&slow);
	f = conns_open(cs, fast.fd[0], 0);
	s = conns_open(cs, slow.fd[0], 0);
	/* Headers in at 1000: first handler call. */
	conn_handler_call(f, 0, 1000);
	conn_handler_call(s, 0, 1000);
	ck_assert_int_eq(conns_sweep(cs, 1500), 2500);
	/* 10 KiB buys ten seconds past the grace; 1 KiB one. */
	conn_handler_call(f, 10UL * 1024, 2000);
	conn_handler_call(s, 1024, 2000);
	conns_sweep(cs, 4999);
	ck_assert(!was_cut(&fast));
	ck_assert(!was_cut(&slow));
	conns_sweep(cs, 5000);
	ck_assert(!was_cut(&fast));
	ck_assert(was_cut(&slow));
	/* The fast one's body ends: answering has no deadline here. */
	conn_handler_call(f, 0, 6000);
	conns_sweep(cs, 100000);
	ck_assert(!was_cut(&fast));
	conns_take_counts(cs, &n);
	ck_assert_int_eq(n.cc_body, 1);
	ck_assert_int_eq(n.cc_header, 0);
	conns_close(cs, f);
	conns_close(cs, s);
	pair_close(&fast);
	pair_close(&slow);
	conns_free(cs);
}
END_TEST

START_TEST(kept_alive_connection)
{
	struct conns *cs = conns_new(10, &lim);
	struct conns_counts n;
	struct pair p, q;
	struct conn *c, *d;

	pair_open(&p);
	pair_open(&q);
	c = conns_open(cs, p.fd[0], 0);
	/* A whole request, answered at 500. */
	conn_handler_call(c, 0, 100);
	conn_handler_call(c, 0, 100);
	conn_answered(c, 500);
	/* Idle: the next request line is due by 5500, not by a header deadline. */
	conns_sweep(cs, 4000);
	ck_assert(!was_cut(&p));
	conn_request_line(c, 5000);
	/* From the request line, the headers have header_timeout. */
	conns_sweep(cs, 6999);
	ck_assert(!was_cut(&p));
	conns_sweep(cs, 7000);
	ck_assert(was_cut(&p));
	/* One that never starts its next request is cut at client_timeout. */
	d = conns_open(cs, q.fd[0], 10000);
	conn_handler_call(d, 0, 10000);
	conn_handler_call(d, 0, 10000);
	conn_answered(d, 10000);
	conns_sweep(cs, 14999);
	ck_assert(!was_cut(&q));
	conns_sweep(cs, 15000);
	ck_assert(was_cut(&q));
	conns_take_counts(cs, &n);
	ck_assert_int_eq(n.cc_header, 1);
	ck_assert_int_eq(n.cc_idle, 1);
	conns_close(cs, c);
	conns_close(cs, d);
	pair_close(&p);
	pair_close(&q);
	conns_free(cs);
}
END_TEST

START_TEST(room_from_the_oldest_incomplete)
{
	struct conns *cs = conns_new(3, &lim);
	struct pair idle, body, head, young;
	struct conn *ci, *cb, *ch, *cy;
	struct conns_counts n;
	long open, cutting;

	pair_open(&idle);
	pair_open(&body);
	pair_open(&head);
	pair_open(&young);
	ck_assert(conns_admit(cs, 0));
	ci = conns_open(cs, idle.fd[0], 0);	/* the oldest, but kept alive */
	conn_handler_call(ci, 0, 0);
	conn_handler_call(ci, 0, 0);
	conn_answered(ci, 10);
	ck_assert(conns_admit(cs, 100));
	cb = conns_open(cs, body.fd[0], 100);	/* sending a body */
	conn_handler_call(cb, 0, 100);
	ck_assert(conns_admit(cs, 200));
	ch = conns_open(cs, head.fd[0], 200);	/* still sending headers */
	/* Full: the one still on its headers goes first, though younger. */
	ck_assert(conns_admit(cs, 300));
	ck_assert(was_cut(&head));
	ck_assert(!was_cut(&body));
	conns_census(cs, &open, &cutting);
	ck_assert_int_eq(open, 3);
	ck_assert_int_eq(cutting, 1);
	cy = conns_open(cs, young.fd[0], 300);
	conns_close(cs, ch);
	/* Full again: the new one is on its headers and is the youngest. */
	ck_assert(conns_admit(cs, 400));
	ck_assert(was_cut(&young));
	ck_assert(!was_cut(&body));
	conns_close(cs, cy);
	/* With the body's connection done too, nothing can be cut: refused. */
	cy = conns_open(cs, young.fd[0], 400);
	conn_handler_call(cy, 0, 400);
	conn_handler_call(cy, 0, 400);
	ck_assert(conns_admit(cs, 500));
	ck_assert(was_cut(&body));
	conns_close(cs, cb);
	cb = conns_open(cs, body.fd[0], 500);
	conn_handler_call(cb, 0, 500);
	conn_handler_call(cb, 0, 500);
	ck_assert(!conns_admit(cs, 600));
	ck_assert(!was_cut(&idle));
	conns_take_counts(cs, &n);
	ck_assert_int_eq(n.cc_evicted, 3);
	ck_assert_int_eq(n.cc_refused, 1);
	/* A slot freed is a slot for the next. */
	conns_close(cs, cb);
	ck_assert(conns_admit(cs, 700));
	conns_close(cs, ci);
	conns_close(cs, cy);
	conns_census(cs, &open, &cutting);
	ck_assert_int_eq(open, 0);
	ck_assert_int_eq(cutting, 0);
	pair_close(&idle);
	pair_close(&body);
	pair_close(&head);
	pair_close(&young);
	conns_free(cs);
}
END_TEST

START_TEST(reload_changes_deadlines)
{
	struct conns_limits longer = lim;
	struct conns *cs = conns_new(10, &lim);
	struct pair p;
	struct conn *c;

	pair_open(&p);
	c = conns_open(cs, p.fd[0], 0);
	longer.cl_header_ms = 60000;
	conns_set_limits(cs, &longer);
	conns_sweep(cs, 59999);
	ck_assert(!was_cut(&p));
	conns_set_limits(cs, &lim);
	conns_sweep(cs, 59999);
	ck_assert(was_cut(&p));
	conns_close(cs, c);
	pair_close(&p);
	conns_free(cs);
	/* Out-of-memory paths pass NULL around; it is a no-op. */
	conn_handler_call(NULL, 5, 0);
	conn_request_line(NULL, 0);
	conn_answered(NULL, 0);
	conns_free(NULL);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("conns");
	TCase *tc = tcase_create("conns");

	tcase_add_test(tc, headers_due_from_accept);
	tcase_add_test(tc, body_at_the_minimum_rate);
	tcase_add_test(tc, kept_alive_connection);
	tcase_add_test(tc, room_from_the_oldest_incomplete);
	tcase_add_test(tc, reload_changes_deadlines);
	suite_add_tcase(s, tc);
	return unit_run(s);
}

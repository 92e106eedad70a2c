/* check_notify.c: what reaches NOTIFY_SOCKET, how often the watchdog is fed. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "notify.h"
#include "unit.h"

/*
 * notify.c reads the environment once per process; each test runs in its
 * own fork (CK_FORK=yes, as make unit runs them), so each sets its own.
 */
static int sock = -1;
static char path[108];

static void
setup(void)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct timeval tv = { 0, 200000 };

	snprintf(path, sizeof(path), "/tmp/hookcast-notify.%d", (int)getpid());
	unlink(path);
	memcpy(sun.sun_path, path, strlen(path) + 1);
	sock = socket(AF_UNIX, SOCK_DGRAM, 0);
	ck_assert_int_ge(sock, 0);
	ck_assert_int_eq(bind(sock, (struct sockaddr *)&sun, sizeof(sun)), 0);
	setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	unit_setenv("NOTIFY_SOCKET", path);
	unit_unsetenv("WATCHDOG_USEC");
	unit_unsetenv("WATCHDOG_PID");
}

static void
teardown(void)
{
	close(sock);
	unlink(path);
}

/* The next datagram, or "" when none came within 200 ms. */
static const char *
next_message(void)
{
	static char buf[1024];
	ssize_t n = recv(sock, buf, sizeof(buf) - 1, 0);

	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

static uint64_t
now_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

START_TEST(states_and_status)
{
	const char *m;
	uint64_t before, at;

	notify_ready();
	m = next_message();
	ck_assert_int_eq(strncmp(m, "READY=1\nSTATUS=", 15), 0);
	ck_assert_uint_gt(strlen(m), 15);

	before = now_usec();
	notify_reloading();
	m = next_message();
	ck_assert_int_eq(strncmp(m, "RELOADING=1\nMONOTONIC_USEC=", 27), 0);
	at = strtoull(m + 27, NULL, 10);
	/* CLOCK_MONOTONIC, as systemd compares it with its own. */
	ck_assert_uint_ge(at, before);
	ck_assert_uint_le(at, now_usec());
	ck_assert_ptr_nonnull(strstr(m, "\nSTATUS="));

	notify_stopping();
	ck_assert_int_eq(strncmp(next_message(), "STOPPING=1\nSTATUS=", 18), 0);

	/* A newline in the text cannot smuggle in another assignment. */
	notify_status("%d subscribers\nREADY=1", 3);
	ck_assert_str_eq(next_message(), "STATUS=3 subscribers READY=1");

	/* No watchdog asked for: nothing, however often it is called. */
	ck_assert_uint_eq(notify_watchdog_usec(), 0);
	for (int i = 0; i < 1000; i++)
		notify_watchdog();
	ck_assert_str_eq(next_message(), "");
}
END_TEST

START_TEST(watchdog_every_half_interval)
{
	char buf[64];
	uint64_t start;
	ssize_t n;
	int pings = 0;

	unit_setenv("WATCHDOG_USEC", "100000");
	ck_assert_uint_eq(notify_watchdog_usec(), 100000);
	/*
	 * Called as often as a busy loop would, for 480 ms: the first ping at
	 * once, then one each 50 ms, so 10 at most.  Read as they come: a full
	 * socket queue would hold up the sender.
	 */
	start = now_usec();
	while (now_usec() - start < 480000) {
		notify_watchdog();
		while ((n = recv(sock, buf, sizeof(buf) - 1,
		    MSG_DONTWAIT)) > 0) {
			buf[n] = '\0';
			ck_assert_str_eq(buf, "WATCHDOG=1");
			pings++;
		}
		/* Paces the busy loop; the 480 ms window is what is measured. */
		usleep(1000);
	}
	ck_assert_int_ge(pings, 4);
	ck_assert_int_le(pings, 10);
}
END_TEST

/* WATCHDOG_USEC as systemd sets it, with WATCHDOG_PID naming PID. */
static void
watchdog_env(const char *usec, pid_t pid)
{
	char text[32];

	snprintf(text, sizeof(text), "%d", (int)pid);
	unit_setenv("WATCHDOG_USEC", usec);
	unit_setenv("WATCHDOG_PID", text);
}

START_TEST(watchdog_for_another_process_is_not_ours)
{
	watchdog_env("100000", getppid());
	ck_assert_uint_eq(notify_watchdog_usec(), 0);
	notify_watchdog();
	ck_assert_str_eq(next_message(), "");
}
END_TEST

START_TEST(watchdog_for_this_process)
{
	watchdog_env("2000000", getpid());
	ck_assert_uint_eq(notify_watchdog_usec(), 2000000);
	notify_watchdog();
	notify_watchdog();
	ck_assert_str_eq(next_message(), "WATCHDOG=1");
	ck_assert_str_eq(next_message(), "");
}
END_TEST

START_TEST(without_notify_socket_nothing_fails)
{
	unit_unsetenv("NOTIFY_SOCKET");
	unit_setenv("WATCHDOG_USEC", "100000");
	notify_ready();
	notify_reloading();
	notify_status("x");
	notify_watchdog();
	notify_stopping();
	ck_assert_str_eq(next_message(), "");
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("notify");
	TCase *tc = tcase_create("notify");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, states_and_status);
	tcase_add_test(tc, watchdog_every_half_interval);
	tcase_add_test(tc, watchdog_for_another_process_is_not_ours);
	tcase_add_test(tc, watchdog_for_this_process);
	tcase_add_test(tc, without_notify_socket_nothing_fails);
	suite_add_tcase(s, tc);
	return unit_run(s);
}

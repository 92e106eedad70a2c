/* unit.c: what every check suite repeats: main(), temp directories, listeners, waits. */
#include <arpa/inet.h>
#include <check.h>
#include <dirent.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "unit.h"

/* How often unit_poll asks: short next to any wait a test does. */
#define POLL_EVERY_US	5000

/*
 * Where unit_tempdir makes its directories: one a suite, removed when the
 * suite is over, so that a failed test (whose teardown does not run) leaves
 * nothing behind either.
 */
static char tempbase[64];

void
unit_rmdir(const char *path)
{
	char sub[1400];
	struct dirent *e;
	struct stat sb;
	DIR *d;

	if (path == NULL || *path == '\0' || lstat(path, &sb) == -1)
		return;
	if (!S_ISDIR(sb.st_mode)) {
		unlink(path);
		return;
	}
	if ((d = opendir(path)) != NULL) {
		while ((e = readdir(d)) != NULL) {
			if (strcmp(e->d_name, ".") == 0 ||
			    strcmp(e->d_name, "..") == 0)
				continue;
			if (snprintf(sub, sizeof(sub), "%s/%s", path,
			    e->d_name) < (int)sizeof(sub))
				unit_rmdir(sub);
		}
		closedir(d);
	}
	rmdir(path);
}

int
unit_run(Suite *s)
{
	SRunner *sr;
	int failed;

	snprintf(tempbase, sizeof(tempbase), "/tmp/hookcast-unit.XXXXXX");
	if (mkdtemp(tempbase) == NULL)
		tempbase[0] = '\0';
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	unit_rmdir(tempbase);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

void
unit_tempdir(char dir[64])
{
	ck_assert_int_lt(snprintf(dir, 64, "%s/t.XXXXXX",
	    tempbase[0] != '\0' ? tempbase : "/tmp"), 64);
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

int
unit_hang_listen(unsigned *port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	ck_assert_int_ge(fd, 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(listen(fd, 64), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	*port = ntohs(sin.sin_port);
	return fd;
}

unsigned
unit_refused_port(void)
{
	unsigned port;

	close(unit_hang_listen(&port));
	return port;
}

int
unit_poll(int (*pred)(void *), void *arg, int timeout_ms)
{
	int64_t end = clock_mono_ms() + timeout_ms;

	for (;;) {
		if (pred(arg))
			return 1;
		if (clock_mono_ms() >= end)
			break;
		usleep(POLL_EVERY_US);
	}
	/* One last look: the sleep may have overslept the deadline. */
	return pred(arg) != 0;
}

void
unit_setenv(const char *name, const char *value)
{
	/* NOLINTNEXTLINE(concurrency-mt-unsafe): no other thread (unit.h) */
	ck_assert_int_eq(setenv(name, value, 1), 0);
}

void
unit_unsetenv(const char *name)
{
	/* NOLINTNEXTLINE(concurrency-mt-unsafe): no other thread (unit.h) */
	ck_assert_int_eq(unsetenv(name), 0);
}

/* check_api_listen.c: the listening socket: binding, the port it got, its name, bad addresses. */
#include <check.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "api_listen.h"
#include "unit.h"

START_TEST(ipv4_port_zero_gets_a_port)
{
	struct sockaddr_storage ss;
	char name[API_LISTEN_NAMELEN], want[API_LISTEN_NAMELEN];
	int fd;

	fd = api_listen_open("127.0.0.1:0", &ss);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ss.ss_family, AF_INET);
	ck_assert_uint_gt(api_listen_port(&ss), 0);
	api_listen_name(&ss, name, sizeof(name));
	snprintf(want, sizeof(want), "127.0.0.1:%u", api_listen_port(&ss));
	ck_assert_str_eq(name, want);
	close(fd);
}
END_TEST

START_TEST(ipv6_name_is_bracketed)
{
	struct sockaddr_storage ss;
	char name[API_LISTEN_NAMELEN], want[API_LISTEN_NAMELEN];
	int fd;

	/* A machine without IPv6 loopback has nothing to test here. */
	if ((fd = api_listen_open("[::1]:0", &ss)) == -1)
		return;
	ck_assert_int_eq(ss.ss_family, AF_INET6);
	api_listen_name(&ss, name, sizeof(name));
	snprintf(want, sizeof(want), "[::1]:%u", api_listen_port(&ss));
	ck_assert_str_eq(name, want);
	close(fd);
}
END_TEST

START_TEST(a_port_in_use_is_refused)
{
	struct sockaddr_storage ss, ss2;
	char where[64];
	int fd;

	fd = api_listen_open("127.0.0.1:0", &ss);
	ck_assert_int_ge(fd, 0);
	snprintf(where, sizeof(where), "127.0.0.1:%u", api_listen_port(&ss));
	ck_assert_int_eq(api_listen_open(where, &ss2), -1);
	close(fd);
}
END_TEST

START_TEST(malformed_addresses_are_refused)
{
	/* No name here: a test makes no DNS lookup. */
	static const char *const bad[] = {
		"127.0.0.1", "[::1:0", "[]:0", "127.0.0.1:http", "",
	};
	struct sockaddr_storage ss;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(api_listen_open(bad[i], &ss) == -1, "%s", bad[i]);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("api_listen");
	TCase *tc = tcase_create("api_listen");

	tcase_add_test(tc, ipv4_port_zero_gets_a_port);
	tcase_add_test(tc, ipv6_name_is_bracketed);
	tcase_add_test(tc, a_port_in_use_is_refused);
	tcase_add_test(tc, malformed_addresses_are_refused);
	suite_add_tcase(s, tc);
	return unit_run(s);
}

/* check_addr.c: which subscriber addresses are accepted and where their events go. */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <string.h>

#include "addr.h"
#include "unit.h"

static void
expect_url(const char *address, const char *want)
{
	CURLU *u;
	char *text;

	ck_assert_int_eq(addr_parse(address, &u, &text), ADDR_OK);
	ck_assert_ptr_nonnull(u);
	ck_assert_str_eq(text, want);
	curl_free(text);
	curl_url_cleanup(u);
}

static void
expect_status(const char *address, enum addr_status want)
{
	CURLU *u = (CURLU *)1;
	char *text = (char *)1;

	ck_assert_int_eq(addr_parse(address, &u, &text), want);
	ck_assert_ptr_null(u);
	ck_assert_ptr_null(text);
}

START_TEST(host_port)
{
	expect_url("127.0.0.1:8080", "http://127.0.0.1:8080/event");
	expect_url("svc.internal:1", "http://svc.internal:1/event");
	expect_url("[::1]:65535", "http://[::1]:65535/event");
}
END_TEST

START_TEST(full_urls)
{
	expect_url("http://10.0.0.7:8080/hooks/in", "http://10.0.0.7:8080/hooks/in");
	expect_url("https://example.com/x?y=1", "https://example.com/x?y=1");
	expect_url("HTTP://example.com/", "http://example.com/");
}
END_TEST

START_TEST(rejected)
{
	char big[ADDR_MAX + 8];

	expect_status(NULL, ADDR_EMPTY);
	expect_status("", ADDR_EMPTY);
	expect_status("localhost", ADDR_NO_PORT);
	expect_status("localhost:", ADDR_NO_PORT);
	expect_status("[::1]", ADDR_NO_PORT);
	expect_status("localhost:0", ADDR_BAD_PORT);
	expect_status("localhost:65536", ADDR_BAD_PORT);
	expect_status("localhost:99999999", ADDR_BAD_PORT);
	expect_status("localhost:http", ADDR_BAD_PORT);
	expect_status("http://localhost:0/", ADDR_BAD_PORT);
	expect_status("http://localhost:70000/", ADDR_BAD_PORT);
	expect_status("ftp://localhost:21", ADDR_BAD_SCHEME);
	expect_status("file:///etc/passwd", ADDR_BAD_SCHEME);
	expect_status("gopher://h:70/", ADDR_BAD_SCHEME);
	expect_status("host:80/path", ADDR_MALFORMED);
	expect_status("user@host:80", ADDR_MALFORMED);
	expect_status("::1:80", ADDR_MALFORMED);
	expect_status(":80", ADDR_MALFORMED);
	expect_status("ho st:80", ADDR_MALFORMED);
	expect_status("host:80\r\n", ADDR_MALFORMED);
	expect_status("h<o>st:80", ADDR_MALFORMED);
	expect_status("http://h/\"x\"", ADDR_MALFORMED);
	expect_status("h\xc3\xa9:80", ADDR_MALFORMED);
	expect_status("http://", ADDR_MALFORMED);
	/*
	 * A percent-encoded host (found by fuzz_addr): libcurl decodes it
	 * after judging it, so "0%2e21" was the name "0.21", a spelling of
	 * 0.0.0.21 that registration took for a name, not a denied literal.
	 */
	expect_status("http://0%2e21/", ADDR_BAD_HOST);
	expect_status("169.254.169%2e254:80", ADDR_BAD_HOST);
	expect_status("http://u:p@169%2e254.169.254:80/", ADDR_BAD_HOST);
	expect_status("http://h%e2:1/", ADDR_BAD_HOST);
	expect_status("http://@0%2e21/", ADDR_BAD_HOST);
	/* libcurl would read the path as the host. */
	expect_status("http:///0%2e21/", ADDR_MALFORMED);
	expect_status("http:///%", ADDR_MALFORMED);
	/* In the user name, the path or an IPv6 zone it is fine. */
	expect_url("http://u%40x:p%25@h:1/p%2e?q=%2e",
	    "http://u%40x:p%25@h:1/p%2e?q=%2e");
	expect_url("https://[fe80::1%25eth0]:8443/x",
	    "https://[fe80::1%25eth0]:8443/x");
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	memcpy(big + sizeof(big) - 4, ":80", 3);
	expect_status(big, ADDR_TOO_LONG);
}
END_TEST

START_TEST(messages)
{
	ck_assert_str_eq(addr_strerror(ADDR_EMPTY), "");
	ck_assert_ptr_nonnull(strstr(addr_strerror(ADDR_BAD_PORT), "65535"));
	ck_assert_ptr_nonnull(strstr(addr_strerror(ADDR_BAD_SCHEME), "http"));
	ck_assert_ptr_nonnull(strstr(addr_strerror(ADDR_TOO_LONG), "2048"));
	ck_assert_ptr_nonnull(strstr(addr_strerror(ADDR_BAD_HOST), "percent"));
	ck_assert_ptr_nonnull(strstr(addr_strerror(ADDR_NO_PORT), "port"));
}
END_TEST

/* The literal address of ADDRESS's host as text, or "" for a name. */
static void
expect_literal(const char *address, const char *want)
{
	struct sockaddr_storage ss;
	char text[INET6_ADDRSTRLEN] = "";
	CURLU *u;
	char *url;

	ck_assert_int_eq(addr_parse(address, &u, &url), ADDR_OK);
	if (addr_literal(u, &ss) == 0) {
		if (ss.ss_family == AF_INET)
			inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr,
			    text, sizeof(text));
		else {
			ck_assert_int_eq(ss.ss_family, AF_INET6);
			inet_ntop(AF_INET6,
			    &((struct sockaddr_in6 *)&ss)->sin6_addr, text,
			    sizeof(text));
		}
	}
	ck_assert_msg(strcmp(text, want) == 0, "%s: \"%s\", expected \"%s\"",
	    address, text, want);
	curl_free(url);
	curl_url_cleanup(u);
}

START_TEST(literal_hosts)
{
	expect_literal("169.254.169.254:80", "169.254.169.254");
	expect_literal("[::1]:80", "::1");
	expect_literal("https://[fe80::1%25eth0]:8443/x", "fe80::1");
	expect_literal("http://[::FFFF:A9FE:A9FE]:80/", "::ffff:169.254.169.254");
	/* However an IPv4 address is spelt, it is the same address. */
	expect_literal("http://0xa9fea9fe:80/", "169.254.169.254");
	expect_literal("http://2852039166:80/", "169.254.169.254");
	expect_literal("http://169.254.43518:80/", "169.254.169.254");
	/* Names are judged when they are resolved, not here. */
	expect_literal("localhost:80", "");
	expect_literal("https://metadata.google.internal/", "");
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("addr");
	TCase *tc = tcase_create("addr");

	tcase_add_test(tc, host_port);
	tcase_add_test(tc, full_urls);
	tcase_add_test(tc, rejected);
	tcase_add_test(tc, messages);
	tcase_add_test(tc, literal_hosts);
	suite_add_tcase(s, tc);
	return unit_run(s);
}

/* check_egress.c: CIDR lists, and which addresses a delivery may connect to. */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/un.h>

#include "egress.h"
#include "unit.h"

static struct egress_list deny, allow;

static void
lists(const char *d, const char *a)
{
	char err[EGRESS_ERRLEN];

	ck_assert_msg(egress_parse(d, &deny, err) == 0, "%s: %s", d, err);
	ck_assert_msg(egress_parse(a, &allow, err) == 0, "%s: %s", a, err);
}

/* ADDR (IPv4 or IPv6 text) and PORT as a socket address in SS. */
static struct sockaddr *
sockaddr_of(const char *addr, unsigned int port, struct sockaddr_storage *ss)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, addr, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
	} else {
		ck_assert_int_eq(inet_pton(AF_INET6, addr, &sin6->sin6_addr), 1);
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
	}
	return (struct sockaddr *)ss;
}

/* The verdict on ADDR (IPv4 or IPv6 text), its reason in WHY. */
static enum egress_verdict
judge(const char *addr, char why[EGRESS_REASONLEN])
{
	struct sockaddr_storage ss;

	return egress_check(&deny, &allow, sockaddr_of(addr, 80, &ss), why);
}

/* Whether ADDR:PORT is hookcast's own API when it listens on LISTEN:8080. */
static int
is_self(const char *addr, unsigned int port, const char *listen)
{
	struct sockaddr_storage a, l;

	return egress_is_self(sockaddr_of(addr, port, &a),
	    sockaddr_of(listen, 8080, &l));
}

static void
expect(const char *addr, enum egress_verdict want, const char *reason)
{
	char why[EGRESS_REASONLEN] = "";

	ck_assert_msg(judge(addr, why) == want, "%s: %s (%s)", addr,
	    want == EGRESS_DENY ? "allowed, expected denied" :
	    "denied, expected allowed", why);
	if (reason != NULL)
		ck_assert_str_eq(why, reason);
}

static void
bad(const char *text, const char *fragment)
{
	struct egress_list l;
	char err[EGRESS_ERRLEN] = "";

	l.el_count = 7;
	ck_assert_msg(egress_parse(text, &l, err) == -1, "accepted \"%s\"",
	    text);
	ck_assert_msg(strstr(err, fragment) != NULL, "\"%s\": error \"%s\" "
	    "lacks \"%s\"", text, err, fragment);
	ck_assert_int_eq(l.el_count, 7);	/* unchanged */
}

START_TEST(parse_and_format)
{
	struct egress_list l;
	char err[EGRESS_ERRLEN], buf[512];

	ck_assert_int_eq(egress_parse("10.0.0.0/8, 192.168.1.7  fd00::/8\t"
	    "::ffff:10.1.0.0/112 2001:db8::1 0.0.0.0/0 ::/0", &l, err), 0);
	ck_assert_int_eq(l.el_count, 7);
	egress_format(&l, buf, sizeof(buf));
	ck_assert_str_eq(buf, "10.0.0.0/8 192.168.1.7/32 fd00::/8 "
	    "::ffff:10.1.0.0/112 2001:db8::1/128 0.0.0.0/0 ::/0");

	ck_assert_int_eq(egress_parse("", &l, err), 0);
	ck_assert_int_eq(l.el_count, 0);
	egress_format(&l, buf, sizeof(buf));
	ck_assert_str_eq(buf, "");
	ck_assert_int_eq(egress_parse(" , ", &l, err), 0);
	ck_assert_int_eq(l.el_count, 0);
}
END_TEST

START_TEST(malformed)
{
	char many[(EGRESS_MAX + 1) * 16] = "";

	bad("10.0.0.0/33", "more than 32");
	bad("fd00::/129", "more than 128");
	bad("10.0.0.1/8", "bits set past its /8");
	bad("fd00::1/64", "bits set past its /64");
	bad("10.0.0/8", "\"10.0.0/8\" is not an IPv4 or IPv6");
	bad("10.0.0.0/", "is not an IPv4 or IPv6");
	bad("10.0.0.0/-1", "is not an IPv4 or IPv6");
	bad("10.0.0.0/8/8", "is not an IPv4 or IPv6");
	bad("10.0.0.0/08x", "is not an IPv4 or IPv6");
	bad("/8", "is not an IPv4 or IPv6");
	bad("example.com", "\"example.com\" is not");
	bad("fe80::1%eth0", "is not an IPv4 or IPv6");
	bad("1.2.3.4 256.0.0.0/8", "\"256.0.0.0/8\"");
	bad("0x0a000000/8", "is not an IPv4 or IPv6");
	for (int i = 0; i <= EGRESS_MAX; i++)
		snprintf(many + strlen(many), sizeof(many) - strlen(many),
		    "10.0.%d.0/24 ", i);
	bad(many, "more than 64 entries");
}
END_TEST

START_TEST(builtin_denials)
{
	lists("", "");
	expect("169.254.169.254", EGRESS_DENY, "169.254.169.254 is in "
	    "deny_targets 169.254.0.0/16 (built in)");
	expect("0.0.0.0", EGRESS_DENY, "0.0.0.0 is in deny_targets 0.0.0.0/8 "
	    "(built in)");
	expect("0.1.2.3", EGRESS_DENY, NULL);
	expect("fe80::1", EGRESS_DENY, "fe80::1 is in deny_targets fe80::/10 "
	    "(built in)");
	expect("febf:ffff::1", EGRESS_DENY, NULL);
	expect("::", EGRESS_DENY, ":: is in deny_targets ::/128 (built in)");
	/* Private ranges and loopback stay allowed. */
	expect("169.253.255.255", EGRESS_ALLOW, "169.253.255.255 is in no list");
	expect("169.255.0.0", EGRESS_ALLOW, NULL);
	expect("fec0::1", EGRESS_ALLOW, NULL);
	expect("10.1.2.3", EGRESS_ALLOW, NULL);
	expect("192.168.0.1", EGRESS_ALLOW, NULL);
	expect("127.0.0.1", EGRESS_ALLOW, NULL);
	expect("::1", EGRESS_ALLOW, NULL);
	expect("2001:db8::1", EGRESS_ALLOW, NULL);
}
END_TEST

/* An IPv4-mapped IPv6 address is the IPv4 address, for every list. */
START_TEST(mapped_is_ipv4)
{
	lists("10.0.0.0/8", "");
	expect("::ffff:169.254.169.254", EGRESS_DENY, "169.254.169.254 is in "
	    "deny_targets 169.254.0.0/16 (built in)");
	expect("::ffff:0.0.0.1", EGRESS_DENY, NULL);
	expect("::ffff:10.9.8.7", EGRESS_DENY, "10.9.8.7 is in deny_targets "
	    "10.0.0.0/8");
	expect("::ffff:11.0.0.1", EGRESS_ALLOW, NULL);
	/* Not mapped: the IPv4-compatible and NAT64 forms are other addresses. */
	expect("::10.9.8.7", EGRESS_ALLOW, NULL);
	expect("64:ff9b::10.9.8.7", EGRESS_ALLOW, NULL);

	/* Written in the mapped form, an entry still covers plain IPv4. */
	lists("::ffff:192.168.0.0/112", "");
	expect("192.168.3.4", EGRESS_DENY, "192.168.3.4 is in deny_targets "
	    "::ffff:192.168.0.0/112");
	lists("", "::ffff:10.0.0.0/104");
	expect("10.1.1.1", EGRESS_ALLOW, NULL);
	expect("11.1.1.1", EGRESS_DENY, NULL);
	/* An IPv4 entry never covers a real IPv6 address, whatever its bits. */
	lists("0.0.0.0/0", "");
	expect("1.2.3.4", EGRESS_DENY, NULL);
	expect("2001:db8::1", EGRESS_ALLOW, NULL);
	expect("::ffff:1.2.3.4", EGRESS_DENY, NULL);
}
END_TEST

START_TEST(longest_prefix_decides)
{
	lists("10.0.0.0/8 10.1.2.0/24 fd00::/8", "169.254.169.254/32 "
	    "10.1.0.0/16 10.1.2.3 fd00:1::/32");
	/* allow /32 beats the built-in /16: one metadata address opened. */
	expect("169.254.169.254", EGRESS_ALLOW, "169.254.169.254 is in "
	    "allow_targets 169.254.169.254/32");
	expect("169.254.169.253", EGRESS_DENY, NULL);
	expect("10.9.9.9", EGRESS_DENY, "10.9.9.9 is in deny_targets 10.0.0.0/8");
	expect("10.1.9.9", EGRESS_ALLOW, "10.1.9.9 is in allow_targets "
	    "10.1.0.0/16");
	expect("10.1.2.4", EGRESS_DENY, "10.1.2.4 is in deny_targets "
	    "10.1.2.0/24");
	expect("10.1.2.3", EGRESS_ALLOW, "10.1.2.3 is in allow_targets "
	    "10.1.2.3/32");
	expect("fd00:1::5", EGRESS_ALLOW, NULL);
	expect("fd00:2::5", EGRESS_DENY, "fd00:2::5 is in deny_targets fd00::/8");
	/* Addresses in no list: allow_targets is set, so denied. */
	expect("8.8.8.8", EGRESS_DENY, "8.8.8.8 is not in allow_targets");
	expect("2001:db8::1", EGRESS_DENY, NULL);

	/* The same prefix in both lists: deny. */
	lists("192.168.0.0/16", "192.168.0.0/16");
	expect("192.168.1.1", EGRESS_DENY, "192.168.1.1 is in deny_targets "
	    "192.168.0.0/16");
	/* Prefixes that are not multiples of 8. */
	lists("172.16.0.0/12 2001:db8:8000::/33", "");
	expect("172.16.0.0", EGRESS_DENY, NULL);
	expect("172.31.255.255", EGRESS_DENY, NULL);
	expect("172.15.255.255", EGRESS_ALLOW, NULL);
	expect("172.32.0.0", EGRESS_ALLOW, NULL);
	expect("2001:db8:8000::1", EGRESS_DENY, NULL);
	expect("2001:db8:ffff:ffff::1", EGRESS_DENY, NULL);
	expect("2001:db8:7fff:ffff::1", EGRESS_ALLOW, NULL);
	lists("172.16.0.0/12", "172.31.255.0/31");
	expect("172.31.255.1", EGRESS_ALLOW, NULL);
	expect("172.31.255.2", EGRESS_DENY, NULL);
}
END_TEST

START_TEST(allow_only)
{
	lists("", "10.0.0.0/8 fd00::/8");
	expect("10.200.0.1", EGRESS_ALLOW, "10.200.0.1 is in allow_targets "
	    "10.0.0.0/8");
	expect("fd12::1", EGRESS_ALLOW, NULL);
	expect("::ffff:10.0.0.1", EGRESS_ALLOW, NULL);
	expect("11.0.0.1", EGRESS_DENY, "11.0.0.1 is not in allow_targets");
	expect("127.0.0.1", EGRESS_DENY, NULL);
	expect("::1", EGRESS_DENY, NULL);
	/* The built-in denials hold inside an allowed range too. */
	lists("", "0.0.0.0/0 ::/0");
	expect("169.254.1.1", EGRESS_DENY, NULL);
	expect("fe80::2", EGRESS_DENY, NULL);
	expect("1.1.1.1", EGRESS_ALLOW, NULL);
}
END_TEST

START_TEST(other_families_denied)
{
	struct sockaddr_un sun;
	char why[EGRESS_REASONLEN];

	lists("", "");
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	ck_assert_int_eq(egress_check(&deny, &allow, (struct sockaddr *)&sun,
	    why), EGRESS_DENY);
	ck_assert_ptr_nonnull(strstr(why, "not IPv4 or IPv6"));
	/* No reason asked for: the verdict alone. */
	ck_assert_int_eq(egress_check(&deny, &allow, (struct sockaddr *)&sun,
	    NULL), EGRESS_DENY);
}
END_TEST

START_TEST(own_api)
{
	/* Listening on one address: that address and port, in any spelling. */
	ck_assert(is_self("127.0.0.1", 8080, "127.0.0.1"));
	ck_assert(is_self("::ffff:127.0.0.1", 8080, "127.0.0.1"));
	ck_assert(!is_self("127.0.0.1", 8081, "127.0.0.1"));
	ck_assert(!is_self("127.0.0.2", 8080, "127.0.0.1"));	/* another bind */
	ck_assert(!is_self("::1", 8080, "127.0.0.1"));
	ck_assert(is_self("::1", 8080, "::1"));
	/* On a wildcard: loopback and the host's own addresses too. */
	ck_assert(is_self("127.0.0.1", 8080, "0.0.0.0"));
	ck_assert(is_self("127.9.9.9", 8080, "0.0.0.0"));
	ck_assert(is_self("::1", 8080, "::"));
	ck_assert(!is_self("192.0.2.1", 8080, "0.0.0.0"));	/* not ours */
	ck_assert(!is_self("127.0.0.1", 8081, "0.0.0.0"));
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("egress");
	TCase *tc = tcase_create("egress");

	tcase_add_test(tc, parse_and_format);
	tcase_add_test(tc, malformed);
	tcase_add_test(tc, builtin_denials);
	tcase_add_test(tc, mapped_is_ipv4);
	tcase_add_test(tc, longest_prefix_decides);
	tcase_add_test(tc, allow_only);
	tcase_add_test(tc, other_families_denied);
	tcase_add_test(tc, own_api);
	suite_add_tcase(s, tc);
	return unit_run(s);
}

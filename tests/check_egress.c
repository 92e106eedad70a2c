/* check_egress.c: CIDR lists, and which addresses a delivery may connect to. */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
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
	expect("::ffff:192.0.2.1", EGRESS_ALLOW, "192.0.2.1 is in no list");

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

/*
 * The forms that carry an IPv4 address are judged by it too: IPv4-compatible
 * ::/96 (but :: and ::1), NAT64's 64:ff9b::/96 and 6to4's 2002::/16.
 */
START_TEST(carried_ipv4_is_judged)
{
	static const char *const metadata[] = {
		"::a9fe:a9fe", "::169.254.169.254", "64:ff9b::a9fe:a9fe",
		"64:ff9b::169.254.169.254", "2002:a9fe:a9fe::",
		"2002:a9fe:a9fe:1:2:3:4:5",
	};

	lists("", "");
	expect("::a9fe:a9fe", EGRESS_DENY, "::169.254.169.254 embeds "
	    "169.254.169.254, which is in deny_targets 169.254.0.0/16 "
	    "(built in)");
	expect("64:ff9b::a9fe:a9fe", EGRESS_DENY, "64:ff9b::a9fe:a9fe embeds "
	    "169.254.169.254, which is in deny_targets 169.254.0.0/16 "
	    "(built in)");
	expect("2002:a9fe:a9fe::", EGRESS_DENY, "2002:a9fe:a9fe:: embeds "
	    "169.254.169.254, which is in deny_targets 169.254.0.0/16 "
	    "(built in)");
	for (size_t i = 0; i < sizeof(metadata) / sizeof(metadata[0]); i++)
		expect(metadata[i], EGRESS_DENY, NULL);
	/* 0.0.0.0/8 carried: "this host" again. */
	expect("::2", EGRESS_DENY, "::2 embeds 0.0.0.2, which is in "
	    "deny_targets 0.0.0.0/8 (built in)");
	expect("64:ff9b::", EGRESS_DENY, NULL);
	expect("2002::", EGRESS_DENY, NULL);
	/* :: is the unspecified address, ::1 loopback: not 0.0.0.0 or 0.0.0.1. */
	expect("::", EGRESS_DENY, ":: is in deny_targets ::/128 (built in)");
	expect("::1", EGRESS_ALLOW, "::1 is in no list");

	/* Allowed addresses stay allowed in every form. */
	expect("192.0.2.1", EGRESS_ALLOW, NULL);
	expect("::ffff:192.0.2.1", EGRESS_ALLOW, NULL);
	expect("::192.0.2.1", EGRESS_ALLOW, "::192.0.2.1 is in no list");
	expect("64:ff9b::192.0.2.1", EGRESS_ALLOW, NULL);
	expect("2002:c000:201::", EGRESS_ALLOW, NULL);
	expect("2002:c000:201:ffff::1", EGRESS_ALLOW, NULL);

	/* The neighbours of each prefix carry nothing. */
	expect("::1:a9fe:a9fe", EGRESS_ALLOW, NULL);
	expect("::fffe:a9fe:a9fe", EGRESS_ALLOW, NULL);
	expect("64:ff9b:0:0:0:1:a9fe:a9fe", EGRESS_ALLOW, NULL);
	expect("64:ff9a::a9fe:a9fe", EGRESS_ALLOW, NULL);
	expect("2003:a9fe:a9fe::", EGRESS_ALLOW, NULL);
	expect("2001:a9fe:a9fe::", EGRESS_ALLOW, NULL);
	/*
	 * A network-specific NAT64 prefix (here RFC 8215's local-use one) says
	 * nowhere where its IPv4 address sits: a site that has one denies it.
	 */
	expect("64:ff9b:1::a9fe:a9fe", EGRESS_ALLOW, NULL);
	lists("64:ff9b:1::/48", "");
	expect("64:ff9b:1::a9fe:a9fe", EGRESS_DENY, "64:ff9b:1::a9fe:a9fe is "
	    "in deny_targets 64:ff9b:1::/48");

	/* deny_targets, however written, covers the carried address. */
	lists("10.0.0.0/8", "");
	expect("::10.9.8.7", EGRESS_DENY, "::10.9.8.7 embeds 10.9.8.7, which "
	    "is in deny_targets 10.0.0.0/8");
	expect("64:ff9b::a09:807", EGRESS_DENY, NULL);
	expect("2002:a09:807::1", EGRESS_DENY, "2002:a09:807::1 embeds "
	    "10.9.8.7, which is in deny_targets 10.0.0.0/8");
	expect("64:ff9b::b00:1", EGRESS_ALLOW, NULL);
	expect("2002:b00:1::", EGRESS_ALLOW, NULL);
	lists("::ffff:10.0.0.0/104", "");
	expect("64:ff9b::10.1.1.1", EGRESS_DENY, NULL);
	/* ...and an entry for the IPv6 form decides for it, as for any. */
	lists("64:ff9b::/96 2002::/16", "");
	expect("64:ff9b::192.0.2.1", EGRESS_DENY, "64:ff9b::c000:201 is in "
	    "deny_targets 64:ff9b::/96");
	expect("2002:c000:201::", EGRESS_DENY, NULL);
	expect("::192.0.2.1", EGRESS_ALLOW, NULL);
	/* A longer allow for the carried address does not open a denied form. */
	lists("64:ff9b::/96", "192.0.2.1");
	expect("64:ff9b::192.0.2.1", EGRESS_DENY, NULL);
	expect("192.0.2.1", EGRESS_ALLOW, NULL);
	/* Nor does an allow for the IPv6 form open a denied carried address. */
	lists("10.0.0.0/8", "64:ff9b::a09:807");
	expect("64:ff9b::a09:807", EGRESS_DENY, "64:ff9b::a09:807 embeds "
	    "10.9.8.7, which is in deny_targets 10.0.0.0/8");
	lists("", "0.0.0.0/0 ::/0");
	expect("64:ff9b::a9fe:a9fe", EGRESS_DENY, NULL);
	expect("2002:a9fe:1::", EGRESS_DENY, NULL);
}
END_TEST

/* In allow-list mode both the address and the IPv4 one it carries must be allowed. */
START_TEST(carried_ipv4_allow_only)
{
	lists("", "10.0.0.0/8");
	expect("::ffff:10.1.1.1", EGRESS_ALLOW, NULL);
	expect("::10.1.1.1", EGRESS_DENY, "::10.1.1.1 is not in allow_targets");
	expect("64:ff9b::a01:101", EGRESS_DENY, NULL);
	expect("2002:a01:101::", EGRESS_DENY, NULL);
	lists("", "10.0.0.0/8 64:ff9b::/96 2002::/16");
	expect("64:ff9b::a01:101", EGRESS_ALLOW, "64:ff9b::a01:101 is in "
	    "allow_targets 64:ff9b::/96");
	expect("2002:a01:101::", EGRESS_ALLOW, NULL);
	expect("64:ff9b::b01:101", EGRESS_DENY, "64:ff9b::b01:101 embeds "
	    "11.1.1.1, which is not in allow_targets");
	expect("2002:b01:101::", EGRESS_DENY, NULL);
	expect("::10.1.1.1", EGRESS_DENY, NULL);
	/* What the integration tests run with: loopback, and nothing else. */
	lists("", "127.0.0.0/8 ::1/128");
	expect("127.0.0.2", EGRESS_ALLOW, NULL);
	expect("::ffff:127.0.0.1", EGRESS_ALLOW, NULL);
	expect("::1", EGRESS_ALLOW, "::1 is in allow_targets ::1/128");
	expect("::127.0.0.1", EGRESS_DENY, NULL);
	/* A denial by an entry says more than an absence from allow_targets. */
	expect("::a9fe:a9fe", EGRESS_DENY, "::169.254.169.254 embeds "
	    "169.254.169.254, which is in deny_targets 169.254.0.0/16 "
	    "(built in)");
	expect("fd00:ec2::254", EGRESS_DENY, "fd00:ec2::254 is in deny_targets "
	    "fd00:ec2::254/128 (built in)");
	expect("64:ff9b::7f00:1", EGRESS_DENY, NULL);
	expect("2002:7f00:1::", EGRESS_DENY, NULL);
	expect("::2", EGRESS_DENY, NULL);
	expect("10.1.2.3", EGRESS_DENY, "10.1.2.3 is not in allow_targets");
}
END_TEST

/* The text of the repository's FILE from START (included) to END, or NULL. */
static char *
doc_part(const char *file, const char *start, const char *end)
{
	/* This file is tests/check_egress.c: the repository is above it. */
	const char *self = __FILE__, *tail = "tests/check_egress.c";
	size_t root = strlen(self) - strlen(tail);
	char path[1024], *text, *from, *to;
	long size;
	FILE *f;

	ck_assert_str_eq(self + root, tail);
	snprintf(path, sizeof(path), "%.*s%s", (int)root, self, file);
	f = fopen(path, "r");
	ck_assert_msg(f != NULL, "%s: cannot open (run from the repository)",
	    path);
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	rewind(f);
	text = calloc(1, (size_t)size + 1);
	ck_assert_ptr_nonnull(text);
	ck_assert_int_eq(fread(text, 1, (size_t)size, f), size);
	fclose(f);
	from = strstr(text, start);
	ck_assert_msg(from != NULL, "%s: no \"%s\"", file, start);
	to = strstr(from + strlen(start), end);
	ck_assert_msg(to != NULL, "%s: nothing ends \"%s\"", file, start);
	*to = '\0';
	memmove(text, from, strlen(from) + 1);
	return text;
}

/*
 * The CIDRs a piece of documentation names, as egress_format writes them:
 * each word made of address characters with a '/' that egress_parse takes.
 */
static void
doc_cidrs(const char *text, char out[][48], int *n)
{
	const char *chars = "0123456789abcdefABCDEF:./";
	struct egress_list one;
	char word[64], err[EGRESS_ERRLEN];
	size_t len;

	*n = 0;
	for (const char *p = text; *p != '\0'; p += len) {
		if ((len = strspn(p, chars)) == 0) {
			len = 1;
			continue;
		}
		if (len >= sizeof(word) || memchr(p, '/', len) == NULL)
			continue;
		memcpy(word, p, len);
		word[len] = '\0';
		/* The full stop that ends a sentence. */
		if (word[len - 1] == '.')
			word[len - 1] = '\0';
		if (egress_parse(word, &one, err) == 0 && one.el_count == 1) {
			ck_assert_int_lt(*n, 16);
			egress_format(&one, out[(*n)++], 48);
		}
	}
}

/* The built-in list, as documented in every place that lists it. */
START_TEST(builtin_is_the_documented_text)
{
	static const struct {
		const char *file, *start, *end;
	} docs[] = {
		{ "doc/configuration.md", "| `deny_targets` |", "\n" },
		{ "doc/security.md", "- **Always denied** (built in):", "\n- " },
		{ "etc/hookcast.8", "on top of the built-in", "\nOf all" },
		{ "etc/hookcast.conf", "# Always denied, built in:",
		    "deny_targets adds" },
	};
	struct egress_list table;
	char err[EGRESS_ERRLEN], want[16][48], got[16][48];
	int nwant, ngot;

	ck_assert_msg(egress_parse(EGRESS_BUILTIN, &table, err) == 0, "%s",
	    err);
	for (int i = 0; i < table.el_count; i++) {
		struct egress_list one = { .el_net = { table.el_net[i] },
		    .el_count = 1 };

		egress_format(&one, want[i], sizeof(want[i]));
	}
	nwant = table.el_count;
	ck_assert_int_eq(nwant, 5);
	for (size_t d = 0; d < sizeof(docs) / sizeof(docs[0]); d++) {
		char *text = doc_part(docs[d].file, docs[d].start, docs[d].end);

		doc_cidrs(text, got, &ngot);
		ck_assert_msg(ngot == nwant, "%s lists %d built-in CIDRs, the "
		    "table has %d: \"%s\"", docs[d].file, ngot, nwant, text);
		for (int i = 0; i < nwant; i++) {
			int found = 0;

			for (int j = 0; j < ngot; j++)
				found |= strcmp(want[i], got[j]) == 0;
			ck_assert_msg(found, "%s does not list %s: \"%s\"",
			    docs[d].file, want[i], text);
		}
		free(text);
	}
}
END_TEST

/*
 * ADDR plus DELTA (-1 or +1) as one 128-bit number, into OUT; 0 if that
 * wraps around.
 */
static int
step(const uint8_t addr[16], int delta, uint8_t out[16])
{
	memcpy(out, addr, 16);
	for (int i = 15; i >= 0; i--) {
		out[i] = (uint8_t)(out[i] + delta);
		if (out[i] != (delta > 0 ? 0x00 : 0xff))
			return 1;
	}
	return 0;
}

/* ADDR (16 bytes, IPv4-mapped when V4) as text. */
static void
text_of(const uint8_t addr[16], int v4, char buf[INET6_ADDRSTRLEN])
{
	inet_ntop(v4 ? AF_INET : AF_INET6, v4 ? addr + 12 : addr, buf,
	    INET6_ADDRSTRLEN);
}

/*
 * Each built-in entry, by its text: its first and last address are denied
 * for that entry, and the addresses just outside it are not (fd00:ec2::54,
 * which the table once held instead of fd00:ec2::254, among them).
 */
START_TEST(builtin_entries_deny_what_they_say)
{
	struct egress_list table;
	char err[EGRESS_ERRLEN], at[INET6_ADDRSTRLEN], why[EGRESS_REASONLEN];
	char net[64], want[EGRESS_REASONLEN];

	lists("", "");
	ck_assert_int_eq(egress_parse(EGRESS_BUILTIN, &table, err), 0);
	for (int i = 0; i < table.el_count; i++) {
		const struct egress_net *n = &table.el_net[i];
		struct egress_list one = { .el_net = { *n }, .el_count = 1 };
		uint8_t first[16], last[16], out[16];

		egress_format(&one, net, sizeof(net));
		memcpy(first, n->en_addr, 16);
		memcpy(last, n->en_addr, 16);
		for (unsigned int b = n->en_bits; b < 128; b++)
			last[b / 8] |= (uint8_t)(0x80 >> (b % 8));
		text_of(first, n->en_v4, at);
		snprintf(want, sizeof(want), "%s is in deny_targets %s "
		    "(built in)", at, net);
		expect(at, EGRESS_DENY, want);
		text_of(last, n->en_v4, at);
		snprintf(want, sizeof(want), "%s is in deny_targets %s "
		    "(built in)", at, net);
		expect(at, EGRESS_DENY, want);
		/* Outside: allowed, or denied by another entry, never this one. */
		if (step(first, -1, out) && (!n->en_v4 || out[11] == 0xff)) {
			text_of(out, n->en_v4, at);
			judge(at, why);
			ck_assert_msg(strstr(why, net) == NULL, "%s: %s", at, why);
		}
		if (step(last, +1, out) && (!n->en_v4 || out[11] == 0xff)) {
			text_of(out, n->en_v4, at);
			judge(at, why);
			ck_assert_msg(strstr(why, net) == NULL, "%s: %s", at, why);
		}
	}
	expect("fd00:ec2::254", EGRESS_DENY, "fd00:ec2::254 is in deny_targets "
	    "fd00:ec2::254/128 (built in)");
	expect("fd00:ec2::54", EGRESS_ALLOW, NULL);
	expect("fd00:ec2::253", EGRESS_ALLOW, NULL);
	expect("fd00:ec2::255", EGRESS_ALLOW, NULL);
	expect("fd00:ec2:0:0:0:0:0:0254", EGRESS_DENY, NULL);
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
	tcase_add_test(tc, carried_ipv4_is_judged);
	tcase_add_test(tc, carried_ipv4_allow_only);
	tcase_add_test(tc, builtin_is_the_documented_text);
	tcase_add_test(tc, builtin_entries_deny_what_they_say);
	tcase_add_test(tc, longest_prefix_decides);
	tcase_add_test(tc, allow_only);
	tcase_add_test(tc, other_families_denied);
	tcase_add_test(tc, own_api);
	suite_add_tcase(s, tc);
	return unit_run(s);
}

/* egress.c: CIDR lists and the longest-prefix check of a delivery's address. */
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "egress.h"

#define V4_MAPPED	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff

/*
 * Always denied, whatever the lists say short of a longer allow_targets
 * entry: link-local (cloud metadata services live at 169.254.169.254),
 * and the "this host" addresses 0.0.0.0/8 and ::, which Linux connects
 * to the local machine; and fd00:ec2::254, AWS's metadata over IPv6.
 */
static const struct egress_list builtin = {
	.el_net = {
		{ .en_addr = { V4_MAPPED, 169, 254 }, .en_bits = 96 + 16,
		    .en_v4 = 1 },
		{ .en_addr = { V4_MAPPED }, .en_bits = 96 + 8, .en_v4 = 1 },
		{ .en_addr = { 0xfe, 0x80 }, .en_bits = 10 },
		{ .en_addr = { 0 }, .en_bits = 128 },
		/* AWS's metadata service over IPv6, inside the private fd00::/8. */
		{ .en_addr = { 0xfd, 0x00, 0x0e, 0xc2, [15] = 0x54 },
		    .en_bits = 128 },
	},
	.el_count = 5,
};

static const uint8_t v4_prefix[12] = { V4_MAPPED };

/* 1 if the first BITS bits of A and B are the same. */
static int
prefix_eq(const uint8_t *a, const uint8_t *b, unsigned int bits)
{
	unsigned int bytes = bits / 8, rest = bits % 8;
	uint8_t mask;

	if (memcmp(a, b, bytes) != 0)
		return 0;
	if (rest == 0)
		return 1;
	mask = (uint8_t)(0xff << (8 - rest));
	return ((a[bytes] ^ b[bytes]) & mask) == 0;
}

/* 1 if no bit past the first BITS is set. */
static int
host_bits_clear(const uint8_t *a, unsigned int bits)
{
	for (unsigned int i = bits; i < 128; i++)
		if (a[i / 8] & (0x80 >> (i % 8)))
			return 0;
	return 1;
}

/* "ADDRESS[/BITS]" into N; -1 with the reason in err. */
static int
parse_net(const char *word, struct egress_net *n, char err[EGRESS_ERRLEN])
{
	char addr[INET6_ADDRSTRLEN + 1];
	const char *slash = strchr(word, '/');
	size_t len = slash != NULL ? (size_t)(slash - word) : strlen(word);
	unsigned int bits, max;
	struct in_addr v4;

	if (len == 0 || len >= sizeof(addr))
		goto malformed;
	memcpy(addr, word, len);
	addr[len] = '\0';
	memset(n, 0, sizeof(*n));
	if (inet_pton(AF_INET, addr, &v4) == 1) {
		memcpy(n->en_addr, v4_prefix, sizeof(v4_prefix));
		memcpy(n->en_addr + 12, &v4, 4);
		n->en_v4 = 1;
		max = 32;
	} else if (inet_pton(AF_INET6, addr, n->en_addr) == 1)
		max = 128;
	else
		goto malformed;
	bits = max;
	if (slash != NULL) {
		const char *p = slash + 1;

		if (*p == '\0' || strlen(p) > 3 ||
		    strspn(p, "0123456789") != strlen(p))
			goto malformed;
		bits = 0;
		for (; *p != '\0'; p++)
			bits = bits * 10 + (unsigned int)(*p - '0');
		if (bits > max) {
			snprintf(err, EGRESS_ERRLEN, "\"%.64s\": the prefix "
			    "length is more than %u", word, max);
			return -1;
		}
	}
	n->en_bits = (uint8_t)(bits + (n->en_v4 ? 96 : 0));
	/* 10.0.0.1/8 is most likely a typo; saying so beats guessing. */
	if (!host_bits_clear(n->en_addr, n->en_bits)) {
		snprintf(err, EGRESS_ERRLEN, "\"%.64s\" has bits set past its "
		    "/%u prefix", word, bits);
		return -1;
	}
	return 0;

malformed:
	snprintf(err, EGRESS_ERRLEN, "\"%.64s\" is not an IPv4 or IPv6 "
	    "address or ADDRESS/BITS", word);
	return -1;
}

int
egress_parse(const char *s, struct egress_list *out, char err[EGRESS_ERRLEN])
{
	struct egress_list tmp;
	char word[128];
	size_t len;

	tmp.el_count = 0;
	for (;;) {
		s += strspn(s, " \t,");
		if (*s == '\0')
			break;
		len = strcspn(s, " \t,");
		if (len >= sizeof(word)) {
			snprintf(err, EGRESS_ERRLEN, "\"%.64s...\" is not an "
			    "IPv4 or IPv6 address or ADDRESS/BITS", s);
			return -1;
		}
		memcpy(word, s, len);
		word[len] = '\0';
		s += len;
		if (tmp.el_count == EGRESS_MAX) {
			snprintf(err, EGRESS_ERRLEN, "more than %d entries",
			    EGRESS_MAX);
			return -1;
		}
		if (parse_net(word, &tmp.el_net[tmp.el_count], err) == -1)
			return -1;
		tmp.el_count++;
	}
	memcpy(out->el_net, tmp.el_net, (size_t)tmp.el_count *
	    sizeof(tmp.el_net[0]));
	out->el_count = tmp.el_count;
	return 0;
}

/* ADDR (16 bytes) as text: dotted quad for an IPv4-mapped one when V4. */
static void
addr_text(const uint8_t *addr, int v4, char buf[INET6_ADDRSTRLEN])
{
	if (v4)
		inet_ntop(AF_INET, addr + 12, buf, INET6_ADDRSTRLEN);
	else
		inet_ntop(AF_INET6, addr, buf, INET6_ADDRSTRLEN);
}

static void
net_text(const struct egress_net *n, char buf[INET6_ADDRSTRLEN + 4])
{
	char a[INET6_ADDRSTRLEN];

	addr_text(n->en_addr, n->en_v4, a);
	snprintf(buf, INET6_ADDRSTRLEN + 4, "%s/%u", a,
	    n->en_bits - (n->en_v4 ? 96 : 0));
}

void
egress_format(const struct egress_list *list, char *buf, size_t len)
{
	char net[INET6_ADDRSTRLEN + 4];
	size_t n = 0;
	int r;

	if (len == 0)
		return;
	buf[0] = '\0';
	for (int i = 0; i < list->el_count && n < len; i++) {
		net_text(&list->el_net[i], net);
		if ((r = snprintf(buf + n, len - n, "%s%s", i ? " " : "",
		    net)) < 0)
			break;
		n += (size_t)r;
	}
}

/* The entry of LIST with the longest prefix matching ADDR, if longer than BEST's. */
static void
best_match(const struct egress_list *list, const uint8_t *addr,
    const struct egress_net **best)
{
	for (int i = 0; i < list->el_count; i++) {
		const struct egress_net *n = &list->el_net[i];

		if ((*best == NULL || n->en_bits > (*best)->en_bits) &&
		    prefix_eq(n->en_addr, addr, n->en_bits))
			*best = n;
	}
}

/* SA's address as 16 bytes (IPv4 mapped) and its port; -1 for another family. */
static int
addr_port(const struct sockaddr *sa, uint8_t a[16], unsigned int *port)
{
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;

	if (sa->sa_family == AF_INET) {
		memcpy(&sin, sa, sizeof(sin));
		memcpy(a, v4_prefix, sizeof(v4_prefix));
		memcpy(a + 12, &sin.sin_addr, 4);
		*port = ntohs(sin.sin_port);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		memcpy(&sin6, sa, sizeof(sin6));
		memcpy(a, &sin6.sin6_addr, 16);
		*port = ntohs(sin6.sin6_port);
		return 0;
	}
	return -1;
}

enum egress_verdict
egress_check(const struct egress_list *deny, const struct egress_list *allow,
    const struct sockaddr *sa, char reason[EGRESS_REASONLEN])
{
	const struct egress_net *d = NULL, *a = NULL, *b = NULL;
	char at[INET6_ADDRSTRLEN], net[INET6_ADDRSTRLEN + 4];
	unsigned int port;
	uint8_t addr[16];
	int v4;

	if (addr_port(sa, addr, &port) == -1) {
		if (reason != NULL)
			snprintf(reason, EGRESS_REASONLEN, "address family %d "
			    "is not IPv4 or IPv6", sa->sa_family);
		return EGRESS_DENY;
	}
	v4 = memcmp(addr, v4_prefix, sizeof(v4_prefix)) == 0;

	best_match(&builtin, addr, &b);
	best_match(deny, addr, &d);
	if (b != NULL && (d == NULL || b->en_bits > d->en_bits))
		d = b;
	best_match(allow, addr, &a);
	/* The longer prefix decides; of two the same length, deny. */
	if (d != NULL && a != NULL && a->en_bits > d->en_bits)
		d = NULL;
	if (reason != NULL) {
		addr_text(addr, v4, at);
		if (d != NULL) {
			net_text(d, net);
			snprintf(reason, EGRESS_REASONLEN, "%s is in "
			    "deny_targets %s%s", at, net, d == b ?
			    " (built in)" : "");
		} else if (a != NULL) {
			net_text(a, net);
			snprintf(reason, EGRESS_REASONLEN, "%s is in "
			    "allow_targets %s", at, net);
		} else if (allow->el_count > 0)
			snprintf(reason, EGRESS_REASONLEN, "%s is not in "
			    "allow_targets", at);
		else
			snprintf(reason, EGRESS_REASONLEN, "%s is in no list",
			    at);
	}
	if (d != NULL || (a == NULL && allow->el_count > 0))
		return EGRESS_DENY;
	return EGRESS_ALLOW;
}

static int
is_loopback(const uint8_t a[16])
{
	static const uint8_t v6[16] = { [15] = 1 };

	return memcmp(a, v6, 16) == 0 ||
	    (memcmp(a, v4_prefix, 12) == 0 && a[12] == 127);
}

static int
is_any(const uint8_t a[16])
{
	static const uint8_t zero[16];

	return memcmp(a, zero, 16) == 0 ||
	    (memcmp(a, v4_prefix, 12) == 0 && memcmp(a + 12, zero, 4) == 0);
}

/* 1 if A is one of this host's addresses. */
static int
is_local(const uint8_t a[16])
{
	struct ifaddrs *ifs, *i;
	uint8_t b[16];
	unsigned int port;
	int found = 0;

	if (getifaddrs(&ifs) == -1)
		return 0;
	for (i = ifs; i != NULL && !found; i = i->ifa_next)
		if (i->ifa_addr != NULL && addr_port(i->ifa_addr, b, &port) == 0)
			found = memcmp(a, b, 16) == 0;
	freeifaddrs(ifs);
	return found;
}

int
egress_is_self(const struct sockaddr *sa, const struct sockaddr *listen)
{
	uint8_t a[16], l[16];
	unsigned int port, lport;

	if (addr_port(sa, a, &port) == -1 || addr_port(listen, l, &lport) == -1 ||
	    port != lport || lport == 0)
		return 0;
	if (memcmp(a, l, 16) == 0)
		return 1;
	/* On a wildcard it answers on every address the host has. */
	return is_any(l) && (is_loopback(a) || is_any(a) || is_local(a));
}

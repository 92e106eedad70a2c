/* egress.c: CIDR lists and the longest-prefix check of a delivery's address. */
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <ctype.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "egress.h"

#define V4_MAPPED 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff

static const uint8_t v4_prefix[12] = { V4_MAPPED };
/* NAT64's well-known prefix, 64:ff9b::/96 (RFC 6052). */
static const uint8_t nat64_prefix[12] = { 0x00, 0x64, 0xff, 0x9b };

/*
 * EGRESS_BUILTIN, parsed by egress_parse on first use, so that the table
 * is the documented text and cannot say something else.  Should the text
 * ever fail to parse, builtin_ok stays 0 and every address is denied.
 */
static struct egress_list builtin;
static int builtin_ok;
static pthread_once_t builtin_once = PTHREAD_ONCE_INIT;

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
			snprintf(err, EGRESS_ERRLEN,
			    "\"%.64s\": the prefix "
			    "length is more than %u",
			    word, max);
			return -1;
		}
	}
	n->en_bits = (uint8_t)(bits + (n->en_v4 ? 96 : 0));
	/* 10.0.0.1/8 is most likely a typo; saying so beats guessing. */
	if (!host_bits_clear(n->en_addr, n->en_bits)) {
		snprintf(err, EGRESS_ERRLEN,
		    "\"%.64s\" has bits set past its "
		    "/%u prefix",
		    word, bits);
		return -1;
	}
	return 0;

malformed:
	snprintf(err, EGRESS_ERRLEN,
	    "\"%.64s\" is not an IPv4 or IPv6 "
	    "address or ADDRESS/BITS",
	    word);
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
			snprintf(err, EGRESS_ERRLEN,
			    "\"%.64s...\" is not an "
			    "IPv4 or IPv6 address or ADDRESS/BITS",
			    s);
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
	memcpy(out->el_net, tmp.el_net,
	    (size_t)tmp.el_count * sizeof(tmp.el_net[0]));
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
	snprintf(buf, INET6_ADDRSTRLEN + 4, "%s/%d", a,
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

static void
builtin_parse(void)
{
	char err[EGRESS_ERRLEN];

	builtin_ok = egress_parse(EGRESS_BUILTIN, &builtin, err) == 0;
}

/*
 * The IPv4 address (IPv4-mapped, in V4) that the IPv6 address A carries:
 * IPv4-compatible ::a.b.c.d, NAT64 64:ff9b::a.b.c.d, 6to4 2002:AABB:CCDD::.
 * :: and ::1 are the unspecified and loopback addresses, not 0.0.0.0 and
 * 0.0.0.1.  0 if A carries none; an IPv4-mapped A is the IPv4 address
 * itself already.
 */
static int
carried_v4(const uint8_t a[16], uint8_t v4[16])
{
	static const uint8_t zero[15];
	const uint8_t *p;

	/* IPv4-compatible (but not :: or ::1), or NAT64. */
	if ((memcmp(a, zero, 12) == 0 &&
		!(memcmp(a + 12, zero, 3) == 0 && a[15] <= 1)) ||
	    memcmp(a, nat64_prefix, 12) == 0)
		p = a + 12;
	else if (a[0] == 0x20 && a[1] == 0x02)
		p = a + 2;
	else
		return 0;
	memcpy(v4, v4_prefix, sizeof(v4_prefix));
	memcpy(v4 + 12, p, 4);
	return 1;
}

/* What decided an address: the entry (NULL: none matched) and the verdict. */
struct ruling {
	const struct egress_net *ru_net;
	int ru_deny;
	int ru_builtin; /* ru_net is a built-in entry */
};

static struct ruling
rule(const struct egress_list *deny, const struct egress_list *allow,
    const uint8_t addr[16])
{
	const struct egress_net *d = NULL, *a = NULL, *b = NULL;

	best_match(&builtin, addr, &b);
	best_match(deny, addr, &d);
	if (b != NULL && (d == NULL || b->en_bits > d->en_bits))
		d = b;
	best_match(allow, addr, &a);
	/* The longer prefix decides; of two the same length, deny. */
	if (d != NULL && (a == NULL || d->en_bits >= a->en_bits))
		return (struct ruling){ d, 1, d == b };
	if (a != NULL)
		return (struct ruling){ a, 0, 0 };
	return (struct ruling){ NULL, allow->el_count > 0, 0 };
}

/* "WHO is in deny_targets 10.0.0.0/8" and the like, for R. */
static void
ruling_text(const struct ruling *r, const char *who,
    char reason[EGRESS_REASONLEN])
{
	char net[INET6_ADDRSTRLEN + 4];

	if (r->ru_net != NULL) {
		net_text(r->ru_net, net);
		snprintf(reason, EGRESS_REASONLEN, "%s is in %s %s%s", who,
		    r->ru_deny ? "deny_targets" : "allow_targets", net,
		    r->ru_builtin ? " (built in)" : "");
	} else
		snprintf(reason, EGRESS_REASONLEN, "%s is %s", who,
		    r->ru_deny ? "not in allow_targets" : "in no list");
}

enum egress_verdict
egress_check(const struct egress_list *deny, const struct egress_list *allow,
    const struct sockaddr *sa, char reason[EGRESS_REASONLEN])
{
	char at[INET6_ADDRSTRLEN], at4[INET6_ADDRSTRLEN];
	char who[2 * INET6_ADDRSTRLEN + 16];
	struct ruling r, r4 = { NULL, 0, 0 };
	unsigned int port;
	uint8_t addr[16], v4[16];
	int carries;

	if (addr_port(sa, addr, &port) == -1) {
		if (reason != NULL)
			snprintf(reason, EGRESS_REASONLEN,
			    "address family %d "
			    "is not IPv4 or IPv6",
			    sa->sa_family);
		return EGRESS_DENY;
	}
	pthread_once(&builtin_once, builtin_parse);
	if (!builtin_ok) {
		if (reason != NULL)
			snprintf(reason, EGRESS_REASONLEN,
			    "the built-in "
			    "deny_targets do not parse");
		return EGRESS_DENY;
	}
	if (reason != NULL)
		addr_text(addr, memcmp(addr, v4_prefix, 12) == 0, at);
	r = rule(deny, allow, addr);
	/*
	 * An address that carries an IPv4 one may reach it, through a NAT64
	 * gateway, a 6to4 relay or an automatic tunnel: both must be allowed.
	 */
	if ((carries = carried_v4(addr, v4)))
		r4 = rule(deny, allow, v4);
	/*
	 * The carried address's ruling is the reason when it alone denies, or
	 * when it names an entry and the address's own is only its absence
	 * from allow_targets.
	 */
	if (carries && r4.ru_deny &&
	    (!r.ru_deny || (r.ru_net == NULL && r4.ru_net != NULL))) {
		if (reason != NULL) {
			addr_text(v4, 1, at4);
			snprintf(who, sizeof(who), "%s embeds %s, which", at,
			    at4);
			ruling_text(&r4, who, reason);
		}
		return EGRESS_DENY;
	}
	if (reason != NULL)
		ruling_text(&r, at, reason);
	return r.ru_deny ? EGRESS_DENY : EGRESS_ALLOW;
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
		if (i->ifa_addr != NULL &&
		    addr_port(i->ifa_addr, b, &port) == 0)
			found = memcmp(a, b, 16) == 0;
	freeifaddrs(ifs);
	return found;
}

int
egress_is_self(const struct sockaddr *sa, const struct sockaddr *listen)
{
	uint8_t a[16], l[16];
	unsigned int port, lport;

	if (addr_port(sa, a, &port) == -1 ||
	    addr_port(listen, l, &lport) == -1 || port != lport || lport == 0)
		return 0;
	if (memcmp(a, l, 16) == 0)
		return 1;
	/* On a wildcard it answers on every address the host has. */
	return is_any(l) && (is_loopback(a) || is_any(a) || is_local(a));
}

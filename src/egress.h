/* egress.h: which addresses deliveries may connect to (deny_targets, allow_targets). */
#ifndef HOOKCAST_EGRESS_H
#define HOOKCAST_EGRESS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define EGRESS_MAX	 64 /* entries in one list */
#define EGRESS_ERRLEN	 200
#define EGRESS_REASONLEN 144

/*
 * Always denied, whatever the lists say short of a longer allow_targets
 * entry: link-local (cloud metadata services live at 169.254.169.254), the
 * "this host" addresses 0.0.0.0/8 and ::, which Linux connects to the local
 * machine, and fd00:ec2::254, AWS's metadata service over IPv6.  The text
 * is the table: egress.c parses it with egress_parse, and the README lists
 * the same CIDRs (check_egress compares them).
 */
#define EGRESS_BUILTIN \
	"169.254.0.0/16 0.0.0.0/8 fe80::/10 ::/128 fd00:ec2::254/128"

/*
 * One network.  An IPv4 network is kept in its IPv4-mapped IPv6 form
 * (::ffff:a.b.c.d, prefix + 96), so that one comparison serves both
 * families and an IPv4-mapped IPv6 address is judged as the IPv4 one.
 */
struct egress_net {
	uint8_t en_addr[16];
	uint8_t en_bits; /* 0 to 128, in the IPv6 space */
	uint8_t en_v4;	 /* written as IPv4: printed as IPv4 */
};

/* A list of networks: plain data, part of struct config. */
struct egress_list {
	struct egress_net el_net[EGRESS_MAX];
	int el_count;
};

/*
 * Parses CIDRs separated by spaces or commas ("10.0.0.0/8 fd00::/8"); an
 * address without /BITS is one host.  On error returns -1 with the entry
 * and what is wrong with it in err, and leaves OUT unchanged.
 */
int egress_parse(const char *s, struct egress_list *out,
    char err[EGRESS_ERRLEN]);

/* Writes LIST back in the same form ("" when empty). */
void egress_format(const struct egress_list *list, char *buf, size_t len);

enum egress_verdict { EGRESS_ALLOW, EGRESS_DENY };

/*
 * Judges the IPv4 or IPv6 address SA against EGRESS_BUILTIN, DENY and
 * ALLOW: the matching entry with the longest prefix decides, deny on a tie;
 * an address that matches nothing is allowed when ALLOW is empty and denied
 * otherwise.  An IPv6 address that carries an IPv4 one (IPv4-compatible
 * ::a.b.c.d other than :: and ::1, NAT64 64:ff9b::a.b.c.d, 6to4
 * 2002:AABB:CCDD::) is allowed only if both it and that IPv4 address are;
 * an IPv4-mapped one (::ffff:a.b.c.d) is the IPv4 address.  Any other
 * family is denied.  If REASON is not NULL it gets a sentence saying why
 * ("169.254.169.254 is in deny_targets 169.254.0.0/16 (built in)").
 * Reads only its arguments and the built-in table: any thread.
 */
enum egress_verdict egress_check(const struct egress_list *deny,
    const struct egress_list *allow, const struct sockaddr *sa,
    char reason[EGRESS_REASONLEN]);

/*
 * 1 when SA (address and port) is hookcast's own API, which listens on
 * LISTEN (address and the port it got): the same port on loopback, on the
 * listen address, or, when that is a wildcard, on any of this host's
 * addresses.  Delivering there would publish every message again, for ever.
 */
#define EGRESS_SELF \
	"that is hookcast's own API (each delivery would " \
	"publish the message again)"
int egress_is_self(const struct sockaddr *sa, const struct sockaddr *listen);

#endif

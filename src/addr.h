/* addr.h: checks a subscriber address and turns it into the URL events go to. */
#ifndef HOOKCAST_ADDR_H
#define HOOKCAST_ADDR_H

#include <sys/socket.h>

#include <curl/curl.h>

#define ADDR_MAX 2048

enum addr_status {
	ADDR_OK,
	ADDR_EMPTY,
	ADDR_TOO_LONG,
	ADDR_MALFORMED,
	ADDR_NO_PORT,
	ADDR_BAD_PORT,
	ADDR_BAD_SCHEME,
	ADDR_BAD_HOST, /* percent-encoded: %XX outside an IPv6 zone */
	ADDR_NOMEM
};

/*
 * ADDRESS is "host:port" (events go to http://host:port/event) or a full
 * http:// or https:// URL (events go to it as given).  On ADDR_OK, *url is
 * the parsed URL (free with curl_url_cleanup) and *text its string form
 * (free with curl_free).  On any other status nothing is allocated.
 */
enum addr_status addr_parse(const char *address, CURLU **url, char **text);

/*
 * When URL's host is a literal IPv4 or IPv6 address, writes it and the
 * port (the scheme's default if none) to SS and returns 0; -1 for a name
 * (or when out of memory).
 */
int addr_literal(CURLU *url, struct sockaddr_storage *ss);

/*
 * IP, an IPv4 or IPv6 address as text (no brackets), and PORT into SS: 0,
 * or -1 with SS zeroed (family AF_UNSPEC) when IP is neither.
 */
int addr_ip(const char *ip, unsigned int port, struct sockaddr_storage *ss);

/* What is wrong, as the end of "Wrong input address: ..." ("" for ADDR_EMPTY). */
const char *addr_strerror(enum addr_status status);

#endif

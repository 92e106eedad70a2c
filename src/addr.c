/* addr.c: subscriber address validation, with libcurl's URL parser doing the parsing. */
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "addr.h"

#define URL_CHARS \
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz" \
	"0123456789-._~:/?#[]@!$&'()*+,;=%"

const char *
addr_strerror(enum addr_status status)
{
	switch (status) {
	case ADDR_OK:
	case ADDR_EMPTY:
		return "";
	case ADDR_TOO_LONG:
		return "longer than 2048 bytes";
	case ADDR_MALFORMED:
		return "not host:port or an http:// or https:// URL";
	case ADDR_NO_PORT:
		return "no port (expected host:port)";
	case ADDR_BAD_PORT:
		return "port must be a number from 1 to 65535";
	case ADDR_BAD_SCHEME:
		return "scheme must be http or https";
	case ADDR_BAD_HOST:
		return "the host may not be percent-encoded";
	case ADDR_NOMEM:
		return "out of memory";
	}
	return "unknown";
}

/* 1 if S is all digits and names a port from 1 to 65535. */
static int
port_ok(const char *s)
{
	long v = 0;

	if (*s == '\0' || strlen(s) > 5)
		return 0;
	for (; *s != '\0'; s++) {
		if (!isdigit((unsigned char)*s))
			return 0;
		v = v * 10 + (*s - '0');
	}
	return v >= 1 && v <= 65535;
}

/* The host:port form: a port is required, and nothing but host and port. */
static enum addr_status
check_hostport(const char *a)
{
	const char *colon;

	if (strpbrk(a, "/?#@\\") != NULL)
		return ADDR_MALFORMED;
	colon = strrchr(a, ':');
	if (a[0] == '[') {
		const char *close = strchr(a, ']');

		if (close == NULL)
			return ADDR_MALFORMED;
		if (close[1] == '\0')
			return ADDR_NO_PORT;
		if (close[1] != ':')
			return ADDR_MALFORMED;
		colon = close + 1;
	} else if (colon != NULL && strchr(a, ':') != colon)
		return ADDR_MALFORMED; /* a bare IPv6 address needs brackets */
	if (colon == NULL || colon[1] == '\0')
		return ADDR_NO_PORT;
	if (colon == a)
		return ADDR_MALFORMED;
	return port_ok(colon + 1) ? ADDR_OK : ADDR_BAD_PORT;
}

/*
 * The host of A (after any "scheme://" and "user@", up to the path) as
 * written.  A percent-encoded one is refused: libcurl decodes it, but only
 * after it has judged what the host is, so "0%2e21" became the name
 * "0.21", which addr_literal cannot read and the resolver reads as
 * 0.0.0.21; and the URL text is then not what libcurl makes of it when
 * the store reads it back.  A bracketed IPv6 literal may carry a zone
 * ("%25eth0").  libcurl also takes "http:///host" for "http://host":
 * no host where one is written is malformed.
 */
static enum addr_status
check_host(const char *a)
{
	const char *h = strstr(a, "://"), *end, *p;

	h = h != NULL ? h + 3 : a;
	if (*h == '/')
		return ADDR_MALFORMED;
	end = h + strcspn(h, "/?#");
	for (p = h; p < end; p++)
		if (*p == '@')
			h = p + 1;
	if (*h != '[' && memchr(h, '%', (size_t)(end - h)) != NULL)
		return ADDR_BAD_HOST;
	return ADDR_OK;
}

enum addr_status
addr_parse(const char *address, CURLU **url, char **text)
{
	enum addr_status st = ADDR_OK;
	const char *sep;
	char *buf = NULL, *port = NULL;
	CURLU *u = NULL;
	CURLUcode rc;

	*url = NULL;
	*text = NULL;
	if (address == NULL || *address == '\0')
		return ADDR_EMPTY;
	if (strlen(address) > ADDR_MAX)
		return ADDR_TOO_LONG;
	/* Only what RFC 3986 lets stand in a URL: no spaces, quotes or 8-bit bytes. */
	if (address[strspn(address, URL_CHARS)] != '\0')
		return ADDR_MALFORMED;

	if ((sep = strstr(address, "://")) != NULL) {
		size_t n = (size_t)(sep - address);

		if (!((n == 4 && strncasecmp(address, "http", 4) == 0) ||
			(n == 5 && strncasecmp(address, "https", 5) == 0)))
			return ADDR_BAD_SCHEME;
		if ((st = check_host(address)) != ADDR_OK)
			return st;
	} else {
		if ((st = check_hostport(address)) != ADDR_OK ||
		    (st = check_host(address)) != ADDR_OK)
			return st;
		if ((buf = malloc(strlen(address) + sizeof("http:///event"))) ==
		    NULL)
			return ADDR_NOMEM;
		sprintf(buf, "http://%s/event", address);
	}

	if ((u = curl_url()) == NULL) {
		st = ADDR_NOMEM;
		goto fail;
	}
	rc = curl_url_set(u, CURLUPART_URL, buf != NULL ? buf : address, 0);
	if (rc == CURLUE_BAD_PORT_NUMBER) {
		st = ADDR_BAD_PORT;
		goto fail;
	}
	if (rc == CURLUE_OUT_OF_MEMORY) {
		st = ADDR_NOMEM;
		goto fail;
	}
	if (rc != CURLUE_OK) {
		st = ADDR_MALFORMED;
		goto fail;
	}
	/* libcurl takes port 0; a subscriber cannot listen there. */
	if (curl_url_get(u, CURLUPART_PORT, &port, 0) == CURLUE_OK &&
	    !port_ok(port)) {
		st = ADDR_BAD_PORT;
		goto fail;
	}
	if (curl_url_get(u, CURLUPART_URL, text, 0) != CURLUE_OK) {
		st = ADDR_MALFORMED;
		goto fail;
	}
	curl_free(port);
	free(buf);
	*url = u;
	return ADDR_OK;

fail:
	curl_free(port);
	curl_url_cleanup(u);
	free(buf);
	return st;
}

int
addr_ip(const char *ip, unsigned int port, struct sockaddr_storage *ss)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, ip, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		return 0;
	}
	if (inet_pton(AF_INET6, ip, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		return 0;
	}
	return -1;
}

int
addr_literal(CURLU *url, struct sockaddr_storage *ss)
{
	char *host = NULL, *ip;
	size_t len;
	int rc;

	char *port = NULL;
	long pnum;

	/* libcurl gives an IPv4 address in dotted form whatever way it was written. */
	if (curl_url_get(url, CURLUPART_HOST, &host, 0) != CURLUE_OK)
		return -1;
	if (curl_url_get(url, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) !=
	    CURLUE_OK) {
		curl_free(host);
		return -1;
	}
	pnum = strtol(port, NULL, 10);
	curl_free(port);
	len = strlen(host);
	/* "169.254.169.254." is the same address to the resolver. */
	if (len > 1 && host[len - 1] == '.')
		host[--len] = '\0';
	ip = host;
	/* An IPv6 literal, and only that, comes in brackets. */
	if (len > 2 && host[0] == '[' && host[len - 1] == ']') {
		host[len - 1] = '\0';
		ip = host + 1;
	}
	rc = addr_ip(ip, (unsigned int)pnum, ss);
	curl_free(host);
	return rc;
}

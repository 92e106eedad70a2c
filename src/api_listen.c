/* api_listen.c: the socket the HTTP server listens on, which hookcast binds for libmicrohttpd. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "api_listen.h"
#include "log.h"

/* Resolves cfg->listen ("host:port", "[v6]:port") to one socket address. */
static int
resolve_listen(const char *listen, struct sockaddr_storage *ss)
{
	char host[256], *port, la[LOG_VALUE_MAX], lv[LOG_VALUE_MAX];
	struct addrinfo hints, *res;
	size_t n;
	int rc;

	snprintf(host, sizeof(host), "%s", listen);
	if ((port = strrchr(host, ':')) == NULL)
		goto malformed;
	*port++ = '\0';
	if (host[0] == '[') {
		if ((n = strlen(host)) < 2 || host[n - 1] != ']')
			goto malformed;
		host[n - 1] = '\0';
		memmove(host, host + 1, n - 1);
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	if ((rc = getaddrinfo(host, port, &hints, &res)) != 0) {
		log_error("cannot resolve listen address",
		    "listen=%s "
		    "error=%s",
		    log_value(la, sizeof(la), listen),
		    log_value(lv, sizeof(lv), gai_strerror(rc)));
		return -1;
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	freeaddrinfo(res);
	return 0;

malformed:
	log_error("cannot resolve listen address", "listen=%s error=%s",
	    log_value(la, sizeof(la), listen),
	    log_value(lv, sizeof(lv), "neither host:port nor [v6]:port"));
	return -1;
}

/* A listening socket on SS, with its address and the port it got in BOUND. */
static int
bind_listen(const char *where, const struct sockaddr_storage *ss,
    struct sockaddr_storage *bound)
{
	socklen_t len = ss->ss_family == AF_INET6 ?
	    sizeof(struct sockaddr_in6) :
	    sizeof(struct sockaddr_in);
	char la[LOG_VALUE_MAX], lv[LOG_VALUE_MAX], ebuf[128];
	int fd, on = 1;

	fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (fd == -1)
		goto fail;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) == -1 ||
	    (ss->ss_family == AF_INET6 &&
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on)) ==
		    -1) ||
	    bind(fd, (const struct sockaddr *)ss, len) == -1 ||
	    listen(fd, SOMAXCONN) == -1 ||
	    getsockname(fd, (struct sockaddr *)bound, &len) == -1)
		goto fail;
	return fd;

fail:
	/* The reason by hand: this is an error, and only log_warn appends it. */
	log_error("cannot listen", "listen=%s error=%s",
	    log_value(la, sizeof(la), where),
	    log_value(lv, sizeof(lv), strerror_r(errno, ebuf, sizeof(ebuf))));
	if (fd != -1)
		close(fd);
	return -1;
}

int
api_listen_open(const char *listen, struct sockaddr_storage *bound)
{
	struct sockaddr_storage ss;

	if (resolve_listen(listen, &ss) == -1)
		return -1;
	return bind_listen(listen, &ss, bound);
}

unsigned int
api_listen_port(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
	return ntohs(((const struct sockaddr_in *)ss)->sin_port);
}

void
api_listen_name(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN] = "";

	if (ss->ss_family == AF_INET6) {
		inet_ntop(AF_INET6,
		    &((const struct sockaddr_in6 *)ss)->sin6_addr, host,
		    sizeof(host));
		snprintf(buf, len, "[%s]:%u", host, api_listen_port(ss));
	} else {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr,
		    host, sizeof(host));
		snprintf(buf, len, "%s:%u", host, api_listen_port(ss));
	}
}

/* api_listen.h: the socket the HTTP server listens on, which hookcast binds for libmicrohttpd. */
#ifndef HOOKCAST_API_LISTEN_H
#define HOOKCAST_API_LISTEN_H

#include <netinet/in.h>
#include <stddef.h>
#include <sys/socket.h>

/*
 * A listening socket (non-blocking, close-on-exec) on LISTEN ("host:port",
 * "[v6]:port"; port 0: the kernel's choice), with the address it got,
 * port included, in *BOUND.  Bound here rather than by libmicrohttpd so
 * that hookcast knows its own address before the first request can arrive
 * (egress_is_self).  -1 (logged) on failure.
 */
int api_listen_open(const char *listen, struct sockaddr_storage *bound);
/* SS's port. */
unsigned int api_listen_port(const struct sockaddr_storage *ss);
/* SS as "host:port" or "[v6]:port", for the log. */
#define API_LISTEN_NAMELEN (INET6_ADDRSTRLEN + 8)
void api_listen_name(const struct sockaddr_storage *ss, char *buf, size_t len);

#endif

/* api.h: the HTTP front end (libmicrohttpd): parse, validate, hand over, answer. */
#ifndef HOOKCAST_API_H
#define HOOKCAST_API_H

#include <sys/socket.h>

#include "config.h"
#include "store.h"
#include "subs.h"

struct api;
struct deliver;
struct stats;

/* What the endpoints hand work to and read from; borrowed, none NULL. */
struct api_parts {
	struct subs *subs;
	struct store *store;
	struct deliver *deliver; /* its heartbeat and transfers in flight */
	struct stats *stats;	 /* /stats */
};

/*
 * Binds cfg->listen and loads the HTTPS files, serving nothing yet, so that
 * its address is known (api_self) before anything is delivered; NULL
 * (logged) on failure.
 */
struct api *api_open(const struct config *cfg);
/* Starts serving on what api_open bound; -1 (logged) on failure. */
int api_run(struct api *a, const struct api_parts *p);
/* api_open and api_run in one. */
struct api *api_start(const struct config *cfg, const struct api_parts *p);
/*
 * Reload: from now on requests are judged by CFG (a config_share() copy, of
 * which it takes a reference), with CFG's tokens.  Only settings read per
 * request change: limits, tokens, egress policy, keep-alive TTL.  -1, with
 * nothing changed, if out of memory.
 */
int api_reload(struct api *a, const struct config *cfg);
/* The port it listens on (the kernel's choice when cfg->listen says 0). */
unsigned int api_port(const struct api *a);
/* Its address with that port (a struct sockaddr_storage). */
const struct sockaddr *api_self(const struct api *a);
/*
 * Stops listening, lets the handlers running now return, closes every
 * connection, joins libmicrohttpd's threads and frees.  NULL-safe.
 * (MHD_quiesce_daemon() is not used: in 0.9.75 with a thread pool and epoll
 * it races its own workers and can abort the process.)
 */
void api_stop(struct api *a);

#endif

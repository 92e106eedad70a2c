/* evloop.h: an epoll set that drives one libcurl multi handle. */
#ifndef HOOKCAST_EVLOOP_H
#define HOOKCAST_EVLOOP_H

#include <stdint.h>

#include <curl/curl.h>

/*
 * The event loop of one thread, in the spirit of Redis's ae.c: it knows
 * sockets, libcurl's socket and timer callbacks and a wake-up descriptor,
 * and nothing of what the transfers are for.  Its owner registers a
 * callback for each finished transfer.  Not locked: one thread uses it,
 * except for evloop_wake(), which any thread may call.  See src/README.md
 * for which thread that is.
 */
struct evloop;

/* Called on the loop's thread for each transfer that is over. */
typedef void evloop_done_fn(void *arg, CURL *easy, CURLcode rc);

/*
 * Creates the multi handle, the epoll set and the wake-up descriptor;
 * DONE (with ARG) hears of every finished transfer.  NULL, logged, on
 * failure.
 */
struct evloop *evloop_new(evloop_done_fn *done, void *arg);
/*
 * Closes the multi handle (and the connections it keeps), then the
 * descriptors.  Every easy handle must have been removed first.  NULL-safe.
 */
void evloop_free(struct evloop *ev);

/*
 * Sets up E's socket callbacks so that the loop hears of every connection
 * E closes.  Once per easy handle, before its first transfer.
 */
void evloop_setup_easy(struct evloop *ev, CURL *e);
/*
 * For a CURLOPT_OPENSOCKETFUNCTION: opens the socket A describes and
 * remembers it as a connection, whose epoll registration may outlive its
 * use (see struct fdslot).  CURL_SOCKET_BAD when socket(2) fails.
 */
curl_socket_t evloop_open_socket(struct evloop *ev,
    const struct curl_sockaddr *a);

/*
 * curl_multi_add_handle(): -1 when libcurl refuses (out of memory), not
 * logged: the caller keeps its work and tries again on its next round.
 */
int evloop_add(struct evloop *ev, CURL *e);
void evloop_remove(struct evloop *ev, CURL *e);
/* Connections libcurl keeps open when idle (CURLMOPT_MAXCONNECTS). */
void evloop_set_maxconnects(struct evloop *ev, long n);
/*
 * Streams libcurl starts on one HTTP/2 connection before it opens another
 * (CURLMOPT_MAX_CONCURRENT_STREAMS): N, at least libcurl's default of 100.
 */
void evloop_set_max_streams(struct evloop *ev, long n);

/*
 * Waits until a socket is ready, libcurl's timer is due, evloop_wake() is
 * called, or MAX_MS passes (NOW: monotonic ms, the caller's clock of this
 * round); then lets libcurl act on what is ready and reports each finished
 * transfer to the done callback.
 */
void evloop_poll(struct evloop *ev, int64_t now, int max_ms);

/* Ends the current or the next evloop_poll()'s wait.  Any thread. */
void evloop_wake(struct evloop *ev);

#endif

/* xfer.h: transfers: the handle pool, headers, start and outcome. */
#ifndef HOOKCAST_XFER_H
#define HOOKCAST_XFER_H

#include <stdint.h>

#include <curl/curl.h>

#include "deliver_internal.h"

/*
 * Delivery-internal (see deliver_internal.h): everything here runs on the
 * delivery thread.  struct xfer stays opaque; D holds the pool and the
 * list of transfers in flight.
 */

/*
 * Starts transfers round-robin over D's ready targets while slots are
 * free, reading backlogs back from the store as targets need them.
 */
void xfer_dispatch(struct dthread *d);
/*
 * The evloop's done callback (ARG: the struct dthread): acts on how the
 * transfer on E ended, and frees its slot.
 */
void xfer_on_done(void *arg, CURL *e, CURLcode rc);

/* Monotonic ms when the oldest transfer not yet slow turns slow; -1: none. */
int64_t xfer_slow_at(const struct dthread *d);
/* Lowers each target's tg_low to the first message it has in flight. */
void xfer_lower_cursors(struct dthread *d);
/*
 * Aborts every transfer in flight (their messages stay in the store) and
 * returns how many there were.
 */
long xfer_abandon_all(struct dthread *d);
/* Frees the pool; nothing may be in flight. */
void xfer_free_all(struct dthread *d);
/*
 * Sizes libcurl's connection cache to D's targets, and its HTTP/2 streams
 * a connection to a subscriber's cap.
 */
void xfer_size_cache(struct dthread *d);
/*
 * The CURLOPT_HTTP_VERSION a delivery to URL asks for: HTTP/2 offered by
 * ALPN (CURL_HTTP_VERSION_2TLS) to an https:// URL when HTTP2 is set (the
 * http2 setting, and libcurl can), else HTTP/1.1; never h2c over http://.
 */
long xfer_http_version(int http2, const char *url);

#endif

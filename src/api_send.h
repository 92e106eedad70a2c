/* api_send.h: the publishing endpoints, as api.c's endpoint table calls it. */
#ifndef HOOKCAST_API_SEND_H
#define HOOKCAST_API_SEND_H

#include "http.h"

/*
 * POST /sendMessage[?topic=T...] or /sendMessages, with the headers in: refuses what is
 * worth refusing before the body (past max_body: 413; a large body while
 * the backlog is full: 503), or takes the request for its body.
 */
enum MHD_Result api_send_begin(const struct http_call *call);
/*
 * With the body in (and no larger than max_body): makes it a message and
 * hands it to the store, answered once committed.
 */
enum MHD_Result api_send_end(const struct http_call *call);
/*
 * POST /sendMessages, with the body in (api_send_begin began it): a JSON
 * array of messages (batch.h), 400 naming the first bad one, or all of
 * them handed to the store in one request, answered once committed with
 * each one's id and count of subscribers.
 */
enum MHD_Result api_send_batch_end(const struct http_call *call);

#endif

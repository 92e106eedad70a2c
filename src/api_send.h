/* api_send.h: the publishing endpoint, as api.c's endpoint table calls it. */
#ifndef HOOKCAST_API_SEND_H
#define HOOKCAST_API_SEND_H

#include "http.h"

/*
 * POST /sendMessage[?topic=T...], with the headers in: refuses what is
 * worth refusing before the body (past max_body: 413; a large body while
 * the backlog is full: 503), or takes the request for its body.
 */
enum MHD_Result api_send_begin(const struct http_call *call);
/*
 * With the body in (and no larger than max_body): makes it a message and
 * hands it to the store, answered once committed.
 */
enum MHD_Result api_send_end(const struct http_call *call);

#endif

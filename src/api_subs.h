/* api_subs.h: the subscriber endpoints, as api.c's endpoint table calls them. */
#ifndef HOOKCAST_API_SUBS_H
#define HOOKCAST_API_SUBS_H

#include "http.h"

/*
 * POST /registerAndKeepAlive?address=URL[&topic=T...][&secret=S]: adds,
 * changes or keeps alive a subscriber; a change is answered once committed.
 */
enum MHD_Result api_subs_register(const struct http_call *call);
/*
 * DELETE /deregister?address=URL: idempotent; a removal is answered once
 * committed.
 */
enum MHD_Result api_subs_deregister(const struct http_call *call);
/*
 * GET /listSubscribers: text, JSON or HTML by ?format= or Accept; a browser
 * (HTML by Accept only) gets the dashboard.
 */
enum MHD_Result api_subs_list(const struct http_call *call);

#endif

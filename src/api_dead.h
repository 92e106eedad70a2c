/* api_dead.h: the dead-letter endpoints, as api.c's endpoint table calls them. */
#ifndef HOOKCAST_API_DEAD_H
#define HOOKCAST_API_DEAD_H

#include "http.h"

/*
 * GET /deadLetters[?address=&id=&limit=&format=] lists them (text or JSON);
 * DELETE /deadLetters?address=|id= purges them.  Answered once the store
 * has done it.
 */
enum MHD_Result api_dead_serve(const struct http_call *call);
/* POST /deadLetters/replay?address=|id=: back to retries, once committed. */
enum MHD_Result api_dead_replay(const struct http_call *call);

#endif

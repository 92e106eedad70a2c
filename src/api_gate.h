/* api_gate.h: who may call an endpoint: the origin and token checks, and their refusals. */
#ifndef HOOKCAST_API_GATE_H
#define HOOKCAST_API_GATE_H

#include "auth.h"
#include "http.h"

/*
 * Judges CALL, with its headers in, for an endpoint of SCOPE by AUTH's tokens:
 * first whether a page of another origin sent it (403, auth_cross_site),
 * then its token (401, with a challenge for Basic and Bearer).  0 when it
 * may go on; otherwise -1 with the refusal (or a 503 when out of memory)
 * queued and its result in *ret.  Refusals are logged once a second at
 * most, with how many since the last line.
 */
int api_gate_pass(const struct http_call *call, const struct auth *auth,
    enum auth_scope scope, enum MHD_Result *ret);

#endif

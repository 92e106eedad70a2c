/* api_ops.h: the operators' endpoints, as api.c's endpoint table calls them. */
#ifndef HOOKCAST_API_OPS_H
#define HOOKCAST_API_OPS_H

#include "http.h"

/* GET /healthz: "ok" while the process answers. */
enum MHD_Result api_ops_healthz(const struct http_call *call);
/*
 * GET /readyz: 200 while the store takes writes and its writer thread and
 * the delivery thread go round their loops; otherwise 503 and why, on one
 * line.
 */
enum MHD_Result api_ops_readyz(const struct http_call *call);
/* GET /metrics: the counters, and the gauges as their owners have them now. */
enum MHD_Result api_ops_metrics(const struct http_call *call);
/* GET /stats: the last ten minutes, for the dashboard's chart. */
enum MHD_Result api_ops_stats(const struct http_call *call);
/* GET /, /dashboard.js, /dashboard.css: the dashboard's files (dashboard.c). */
enum MHD_Result api_ops_page(const struct http_call *call);
enum MHD_Result api_ops_script(const struct http_call *call);
enum MHD_Result api_ops_style(const struct http_call *call);

#endif

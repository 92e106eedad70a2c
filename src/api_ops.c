/* api_ops.c: what operators and their tools read: probes, /metrics, /stats and the dashboard. */
#include <stdint.h>

#include "api_ops.h"
#include "clock.h"
#include "conns.h"
#include "deliver.h"
#include "metrics.h"
#include "msg.h"
#include "stats.h"
#include "store.h"
#include "subs.h"

/* Not ready when a thread has not gone round its loop for this long. */
#define READY_STALE_MS 5000

enum MHD_Result
api_ops_healthz(const struct http_call *call)
{
	return http_text(call, MHD_HTTP_OK, "ok\n");
}

/*
 * The store's state, its writer's heartbeat and every delivery thread's; no
 * lock but the store's
 * queue mutex, briefly.
 */
enum MHD_Result
api_ops_readyz(const struct http_call *call)
{
	const struct http_env *env = call->hc_env;
	int64_t now = clock_mono_ms(), age;
	char why[160];

	if (store_health(env->he_store, why, sizeof(why)) == -1)
		return http_fmt(call, MHD_HTTP_SERVICE_UNAVAILABLE,
		    "store: %s\n", why);
	if ((age = now - store_heartbeat(env->he_store)) > READY_STALE_MS)
		return http_fmt(call, MHD_HTTP_SERVICE_UNAVAILABLE,
		    "store: "
		    "writer thread stuck for %lld s\n",
		    (long long)age / 1000);
	for (int i = 0; i < deliver_threads(env->he_deliver); i++)
		if ((age = now - deliver_thread_heartbeat(env->he_deliver, i)) >
		    READY_STALE_MS)
			return http_fmt(call, MHD_HTTP_SERVICE_UNAVAILABLE,
			    "delivery thread %d: no heartbeat for %lld s\n", i,
			    (long long)age / 1000);
	return http_text(call, MHD_HTTP_OK, "ok\n");
}

/*
 * The gauges come from their owners when scraped: the map's totals under
 * its read lock (subs_census), the rest from atomics.
 */
enum MHD_Result
api_ops_metrics(const struct http_call *call)
{
	const struct http_env *env = call->hc_env;
	struct metrics_thread threads[DELIVER_THREADS_MAX];
	struct metrics_gauges g;
	struct subs_census sc;
	long open, cutting;
	size_t len = 0;
	char *body;

	subs_census(env->he_subs, &sc);
	g.active = sc.active;
	g.failing = sc.failing;
	g.queued = sc.queued;
	g.retrying = sc.retrying;
	g.in_flight = (uint64_t)deliver_in_flight(env->he_deliver);
	g.nthreads = (size_t)deliver_threads(env->he_deliver);
	for (size_t i = 0; i < g.nthreads; i++)
		deliver_thread_figures(env->he_deliver, (int)i, &threads[i]);
	g.threads = threads;
	g.backlog_bytes = store_backlog_bytes(env->he_store);
	conns_census(env->he_conns, &open, &cutting);
	g.http_connections = (uint64_t)open;
	if ((body = metrics_render(&g, env->he_labels, env->he_nlabels,
		 &len)) == NULL)
		return http_nomem(call, __func__);
	return http_answer_free(call, MHD_HTTP_OK,
	    "text/plain; version=0.0.4; "
	    "charset=utf-8",
	    body, len, NULL, NULL);
}

enum MHD_Result
api_ops_stats(const struct http_call *call)
{
	size_t len = 0;
	char *body;

	if ((body = stats_render(call->hc_env->he_stats, clock_real_ms(),
		 &len)) == NULL)
		return http_nomem(call, __func__);
	return http_answer_free(call, MHD_HTTP_OK, "application/json", body,
	    len, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
}

enum MHD_Result
api_ops_page(const struct http_call *call)
{
	return http_file(call, DASHBOARD_PAGE);
}

enum MHD_Result
api_ops_script(const struct http_call *call)
{
	return http_file(call, DASHBOARD_SCRIPT);
}

enum MHD_Result
api_ops_style(const struct http_call *call)
{
	return http_file(call, DASHBOARD_STYLE);
}

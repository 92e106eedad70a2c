/*
 * daemon.c: the whole stack, started and stopped in one order.
 *
 * main() and the unit tests both go through here, so what the tests run is
 * wired, and shut down, exactly as the daemon is.  Data flows one way: the
 * front end hands work to the store and the subscriber map; the map's hooks
 * queue its changes for the store; the store hands what it has committed to
 * delivery through the sink wired here.  See src/README.md.
 */
#include <stdlib.h>

#include "api.h"
#include "daemon.h"
#include "deliver.h"
#include "log.h"
#include "reaper.h"
#include "stats.h"
#include "store.h"
#include "subs.h"

struct daemon {
	struct store *dm_store;
	struct subs *dm_subs;
	struct api *dm_api;
	struct deliver *dm_deliver;
	struct reaper *dm_reaper;
	struct stats *dm_stats;
};

/* The store's sink: committed work goes to delivery. */
static int
sink_publish(struct msg *m, void *arg)
{
	return deliver_publish(arg, m);
}

static void
sink_replay(const struct store_replay *items, size_t n, void *arg)
{
	deliver_replay(arg, items, n);
}

static void
sink_wake(void *arg)
{
	deliver_wake(arg);
}

struct daemon *
daemon_start(const struct config *cfg, int parts)
{
	char lp[LOG_VALUE_MAX];
	struct subs_hooks hooks;
	struct store_sink sink;
	struct api_parts ap;
	struct daemon *dm;

	if ((dm = calloc(1, sizeof(*dm))) == NULL) {
		log_error("start-up failed", "part=daemon reason=nomem");
		return NULL;
	}
	if ((dm->dm_store = store_open(cfg)) == NULL) {
		log_error("start-up failed", "part=store data_dir=%s",
		    log_value(lp, sizeof(lp), cfg->data_dir));
		goto fail;
	}
	/* Registrations go to the store, which passes them on once committed. */
	hooks = (struct subs_hooks){ .on_add = store_on_add,
		.on_remove = store_on_remove,
		.on_change = store_on_change,
		.arg = dm->dm_store };
	if ((dm->dm_subs = subs_new((size_t)cfg->max_subscribers, &hooks)) ==
	    NULL) {
		log_error("start-up failed", "part=subs reason=nomem");
		goto fail;
	}
	if (store_restore(dm->dm_store, dm->dm_subs) == -1) {
		log_error("start-up failed", "part=store data_dir=%s",
		    log_value(lp, sizeof(lp), cfg->data_dir));
		goto fail;
	}
	/* Bound now, so that its own address is known before any delivery. */
	if ((parts & DAEMON_API) && (dm->dm_api = api_open(cfg)) == NULL) {
		log_error("start-up failed", "part=api");
		goto fail;
	}
	if ((dm->dm_deliver = deliver_start(cfg, dm->dm_store, dm->dm_subs,
		 store_last_seq(dm->dm_store))) == NULL) {
		log_error("start-up failed", "part=deliver");
		goto fail;
	}
	/* Delivering to itself would publish every message again, for ever. */
	if (dm->dm_api != NULL)
		deliver_set_self(dm->dm_deliver, api_self(dm->dm_api),
		    sizeof(struct sockaddr_storage));
	sink = (struct store_sink){ .sk_publish = sink_publish,
		.sk_replay = sink_replay,
		.sk_sub_add = deliver_on_add,
		.sk_sub_change = deliver_on_change,
		.sk_sub_remove = deliver_on_remove,
		.sk_wake = sink_wake,
		.sk_arg = dm->dm_deliver };
	if (store_start(dm->dm_store, &sink) == -1) {
		log_error("start-up failed", "part=store");
		goto fail;
	}
	if ((parts & DAEMON_REAPER) &&
	    (dm->dm_reaper = reaper_start(dm->dm_subs,
		 cfg->keepalive_ttl * 1000, cfg->reap_interval * 1000)) ==
		NULL) {
		log_error("start-up failed", "part=reaper");
		goto fail;
	}
	if (parts & DAEMON_API) {
		if ((dm->dm_stats = stats_start()) == NULL) {
			log_error("start-up failed", "part=stats");
			goto fail;
		}
		ap = (struct api_parts){ .subs = dm->dm_subs,
			.store = dm->dm_store,
			.deliver = dm->dm_deliver,
			.stats = dm->dm_stats };
		if (api_run(dm->dm_api, &ap) == -1) {
			log_error("start-up failed", "part=api");
			goto fail;
		}
	}
	return dm;

fail:
	daemon_stop(dm, 0);
	return NULL;
}

int
daemon_reload(struct daemon *dm, const struct config *cfg)
{
	if (dm->dm_api != NULL && api_reload(dm->dm_api, cfg) == -1)
		return -1;
	subs_set_max(dm->dm_subs, (size_t)cfg->max_subscribers);
	if (dm->dm_reaper != NULL)
		reaper_set(dm->dm_reaper, cfg->keepalive_ttl * 1000,
		    cfg->reap_interval * 1000);
	deliver_reload(dm->dm_deliver, cfg);
	if (store_reload(dm->dm_store, cfg) == -1)
		log_error("reload not applied to the store", "reason=nomem");
	return 0;
}

void
daemon_stop(struct daemon *dm, long grace_ms)
{
	if (dm == NULL)
		return;
	/*
	 * Publishes already queued are committed and answered; then the front
	 * end and the reaper stop; deliveries in flight get the grace period,
	 * and what is left stays in the store for the next start.
	 */
	store_close_requests(dm->dm_store);
	api_stop(dm->dm_api);
	stats_stop(dm->dm_stats);
	reaper_stop(dm->dm_reaper);
	store_detach(dm->dm_store);
	deliver_stop(dm->dm_deliver, grace_ms);
	store_stop(dm->dm_store);
	subs_free(dm->dm_subs);
	free(dm);
}

struct store *
daemon_store(const struct daemon *dm)
{
	return dm->dm_store;
}

struct subs *
daemon_subs(const struct daemon *dm)
{
	return dm->dm_subs;
}

struct deliver *
daemon_deliver(const struct daemon *dm)
{
	return dm->dm_deliver;
}

struct api *
daemon_api(const struct daemon *dm)
{
	return dm->dm_api;
}

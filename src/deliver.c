/* deliver.c: the delivery thread: its loop, its inbox, start and stop. */
/*
 * DESIGN
 * delivery_threads threads each run deliver_loop() on a struct dthread of
 * their own and are the only ones to touch its CURLM and CURL handles and
 * everything in it below the inbox.  A subscriber belongs to the thread
 * that owns its shard (owner(): sub_shard() % threads), for as long as it
 * is registered: its FIFO, backlog, retries, cursor, connections and
 * transfers all live there, so its order and isolation need no lock across
 * threads.  The store's writer thread hands committed work over through
 * each thread's inbox, a FIFO under d_inbox_lock, in commit order: a
 * subscriber added, changed or removed to its owner only; a published
 * message to every thread (a reference each to the one body: every thread
 * needs every sequence number, and routes the message to its own
 * subscribers); replayed dead letters to every thread, which each take
 * their own.  deliver_wake() wakes, through its event loop's eventfd, each
 * thread whose inbox got something; the reload path queues a new config
 * to every thread the same way.  A thread holds d_inbox_lock only to take
 * the whole list; it takes the map's lock only through subs_remove_sub()
 * (a 410), holding nothing else.  The lock order of the whole daemon is in
 * src/README.md.
 *
 * Each round of the loop: publish the heartbeat (thread 0 also pings the
 * watchdog, while every thread's heartbeat is fresh), act on the inbox,
 * look for retries that came due (every TICK_MS) and save the cursors
 * (every PROGRESS_MS), start what the ready targets have (xfer.c), then
 * wait in the event loop (evloop.c) for sockets, libcurl's timer or the
 * next wake-up, at most a quarter of the watchdog interval, so that the
 * pings stop when any thread is wedged.
 *
 * The rest of delivery, one concept a file, each working on one thread:
 *   target.c  a subscriber's FIFO, backlog in the store, retries, ready list
 *   route.c   which targets a published message goes to, by topic
 *   xfer.c    transfers: handle pool, headers, start, and their outcome
 *   evloop.c  epoll and libcurl's socket and timer callbacks (knows no
 *             targets)
 * deliver_internal.h holds the structs they share.
 *
 * A target is allocated by deliver_on_add (so that removing a subscriber
 * never needs memory) with both of its commands embedded; from the moment
 * its add command is queued it belongs to its owner.  Once a second each
 * target's cursor (the first message not yet done, retries aside) is
 * saved, so that a restart resumes from it, on whichever thread then owns
 * the shard.
 *
 * For /metrics and /readyz each thread counts each attempt's result and
 * time (metrics.c), and publishes its heartbeat (each round of the loop),
 * its count in flight, its subscribers and its attempts in relaxed
 * atomics: no lock, a few adds and stores a delivery.  Its CPU time is
 * read from outside (pthread_getcpuclockid), costing it nothing.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "clock.h"
#include "deliver.h"
#include "deliver_internal.h"
#include "evloop.h"
#include "log.h"
#include "notify.h"
#include "retry.h"
#include "route.h"
#include "sign.h"
#include "store.h"
#include "target.h"
#include "topics.h"
#include "xfer.h"

#define TICK_MS	    50	 /* how often due retries are looked for */
#define PROGRESS_MS 1000 /* how often cursors are saved */

/* Every delivery thread; a subscriber's belongs to its shard's (owner()). */
struct deliver {
	int dl_n;
	long dl_fds;	  /* descriptors for delivery, in all */
	long dl_stale_ms; /* a heartbeat older: the thread is stuck */
	int dl_http2;	  /* libcurl speaks HTTP/2 (has nghttp2) */
	struct dthread *dl_threads[];
};

/* A subscriber's new topics and signer, as of the commit that changed them. */
struct update {
	struct cmd up_cmd;
	struct sub *up_sub;
	struct topics *up_topics;
	struct signer *up_signer;
};

static void
update_free(struct update *u)
{
	sub_unref(u->up_sub);
	topics_unref(u->up_topics);
	signer_free(u->up_signer);
	free(u);
}

static void
inbox_push(struct dthread *d, struct cmd *c)
{
	c->ic_next = NULL;
	pthread_mutex_lock(&d->d_inbox_lock);
	*d->d_inbox_tail = c;
	d->d_inbox_tail = &c->ic_next;
	pthread_mutex_unlock(&d->d_inbox_lock);
	atomic_store(&d->d_pending, true);
}

/* The thread that owns SUB's shard. */
static struct dthread *
owner(const struct deliver *dl, const struct sub *sub)
{
	return dl->dl_threads[sub_shard(sub) % (unsigned)dl->dl_n];
}

void
deliver_set_self(struct deliver *dl, const struct sockaddr *sa, size_t len)
{
	if (len > sizeof(struct sockaddr_storage))
		return;
	for (int i = 0; i < dl->dl_n; i++) {
		struct dthread *d = dl->dl_threads[i];

		memcpy(&d->d_self, sa, len);
		atomic_store(&d->d_self_known, true);
	}
}

void
deliver_wake(struct deliver *dl)
{
	/*
	 * Only threads with commands queued; and one wakeup is enough for any
	 * number of commands queued before it.
	 */
	for (int i = 0; i < dl->dl_n; i++) {
		struct dthread *d = dl->dl_threads[i];

		if (atomic_load(&d->d_pending) &&
		    !atomic_exchange(&d->d_woken, true))
			evloop_wake(d->d_ev);
	}
}

int
deliver_on_add(struct sub *sub, struct topics *topics, const char *secret,
    void *arg)
{
	struct target *t;

	if ((t = target_new(sub, topics, secret)) == NULL)
		return -1;
	sub_set_deliver_state(sub, t);
	t->tg_add.ic_type = CMD_ADD;
	t->tg_add.ic_arg = t;
	t->tg_remove.ic_type = CMD_REMOVE;
	t->tg_remove.ic_arg = t;
	inbox_push(owner(arg, sub), &t->tg_add);
	return 0;
}

void
deliver_on_remove(struct sub *sub, void *arg)
{
	struct target *t = sub_deliver_state(sub);

	/* Not tracked (deliver_on_add failed): nothing to undo. */
	if (t != NULL)
		inbox_push(owner(arg, sub), &t->tg_remove);
}

int
deliver_on_change(struct sub *sub, struct topics *topics, const char *secret,
    void *arg)
{
	char la[LOG_VALUE_MAX];
	struct update *u;

	if ((u = calloc(1, sizeof(*u))) == NULL ||
	    (secret != NULL && *secret != '\0' &&
		(u->up_signer = signer_new(secret)) == NULL)) {
		free(u);
		log_error("new topics or secret not in effect until restart",
		    "address=%s reason=nomem",
		    log_value(la, sizeof(la), sub_address(sub)));
		return -1;
	}
	u->up_sub = sub_ref(sub);
	u->up_topics = topics_ref(topics);
	u->up_cmd.ic_type = CMD_UPDATE;
	u->up_cmd.ic_arg = u;
	inbox_push(owner(arg, sub), &u->up_cmd);
	return 0;
}

/*
 * Every thread gets every message, the body by reference: a thread routes
 * it to its own subscribers, and needs its sequence number either way (a
 * backlog in the store runs up to the newest message).  All or nothing.
 */
int
deliver_publish(struct deliver *dl, struct msg *m)
{
	struct cmd *c[DELIVER_THREADS_MAX];
	int i;

	for (i = 0; i < dl->dl_n; i++)
		if ((c[i] = malloc(sizeof(*c[i]))) == NULL) {
			while (i-- > 0)
				free(c[i]);
			log_error("message not queued for delivery",
			    "message=%s reason=nomem", msg_id(m));
			return -1;
		}
	for (i = 0; i < dl->dl_n; i++) {
		c[i]->ic_type = CMD_PUBLISH;
		c[i]->ic_arg = msg_ref(m);
		inbox_push(dl->dl_threads[i], c[i]);
	}
	return 0;
}

/*
 * The items go to every thread: each finds its own subscribers among them
 * by store id and leaves the rest.
 */
void
deliver_replay(struct deliver *dl, const struct store_replay *items, size_t n)
{
	struct cmd *c;

	if (n == 0)
		return;
	for (int i = 0; i < dl->dl_n; i++) {
		if ((c = malloc(sizeof(*c))) == NULL ||
		    (c->ic_arg = malloc(n * sizeof(*items))) == NULL) {
			/* The rows are retries now: picked up at the next start. */
			free(c);
			log_error("replay not queued until restart",
			    "count=%zu thread=%d reason=nomem", n, i);
			continue;
		}
		memcpy(c->ic_arg, items, n * sizeof(*items));
		c->ic_type = CMD_REPLAY;
		c->ic_n = n;
		inbox_push(dl->dl_threads[i], c);
	}
	deliver_wake(dl);
}

static void
handle_replay(struct dthread *d, const struct store_replay *items, size_t n)
{
	int64_t real = clock_real_ms();

	for (size_t i = 0; i < n; i++) {
		struct target *t = route_find(d, items[i].rp_sub_id);
		struct target_retry r = { .tr_seq = items[i].rp_seq,
			.tr_due = d->d_now,
			.tr_first = real };

		if (t == NULL)
			continue; /* gone since: the store dead-letters it */
		/* A restored one may have read this retry back already. */
		if (sub_restored(t->tg_sub) && target_retry_find(t, r.tr_seq))
			continue;
		target_retry_add(d, t, &r);
		target_count(d, t);
		target_ready_push(d, t);
	}
}

/*
 * max_transfers is the whole daemon's: each thread may run its share,
 * rounded up, and so may the descriptors left for delivery (dl_fds).
 */
static void
share_limits(struct dthread *d, const struct config *cfg)
{
	long n = d->d_all->dl_n;

	d->d_max_transfers = (cfg->max_transfers + n - 1) / n;
	d->d_max_open = d->d_all->dl_fds / n;
	if (d->d_max_open < d->d_max_transfers)
		d->d_max_open = d->d_max_transfers;
}

/*
 * A reload: everything read per transfer or per decision (timeouts, limits,
 * retry schedule, egress policy, CA file, signing secret) follows CFG from
 * now on; transfers in flight finish as they started.
 */
static void
handle_config(struct dthread *d, const struct config *cfg)
{
	struct signer *sg = NULL;

	if (strcmp(cfg->signing_secret, d->d_cfg->signing_secret) != 0) {
		if (*cfg->signing_secret != '\0' &&
		    (sg = signer_new(cfg->signing_secret)) == NULL) {
			/* Signing with the old key beats not signing. */
			log_error("reload not applied to deliveries",
			    "reason="
			    "\"signing_secret refused by libcrypto\"");
			config_release(cfg);
			return;
		}
		signer_free(d->d_signer);
		d->d_signer = sg;
	}
	config_release(d->d_cfg_ref);
	d->d_cfg = d->d_cfg_ref = cfg;
	d->d_reloads++;
	/*
	 * Idle handles have the old timeouts, CA file and verification set:
	 * gone, as are those in flight once they are done (xfer_put).
	 */
	xfer_free_all(d);
	share_limits(d, cfg);
	xfer_size_cache(d);
}

/*
 * New topics or a new secret, committed: routing and signing follow from
 * the next message on.  What is pending stays routed as it was.
 */
static void
handle_update(struct dthread *d, struct update *u)
{
	struct target *t = sub_deliver_state(u->up_sub);

	if (t == NULL || t->tg_removed || t->tg_index == SIZE_MAX)
		return;
	signer_free(t->tg_signer);
	t->tg_signer = u->up_signer;
	u->up_signer = NULL;
	route_retopic(d, t, u->up_topics);
	u->up_topics = NULL;
}

static void
handle_add(struct dthread *d, struct target *t)
{
	int filed = route_add_target(d, t) == 0;

	if (filed)
		xfer_size_cache(d);
	target_attach(d, t, filed);
	atomic_store_explicit(&d->d_count, (long)d->d_ntargets,
	    memory_order_relaxed);
}

static void
handle_remove(struct dthread *d, struct target *t)
{
	/* Never filed (out of memory when added): only freed. */
	if (t->tg_index == SIZE_MAX) {
		target_release(d, t);
		return;
	}
	route_remove_target(d, t);
	xfer_size_cache(d);
	target_detach(d, t);
	atomic_store_explicit(&d->d_count, (long)d->d_ntargets,
	    memory_order_relaxed);
}

/* Only this file queues commands: an unknown one is memory gone bad. */
static void
cmd_unknown(const struct cmd *c)
{
	log_error("unknown delivery command: aborting", "type=%d",
	    (int)c->ic_type);
	abort();
}

static void
drain_inbox(struct dthread *d)
{
	struct cmd *c, *next;

	atomic_store(&d->d_woken, false);
	atomic_store(&d->d_pending, false);
	pthread_mutex_lock(&d->d_inbox_lock);
	c = d->d_inbox_head;
	d->d_inbox_head = NULL;
	d->d_inbox_tail = &d->d_inbox_head;
	pthread_mutex_unlock(&d->d_inbox_lock);

	for (; c != NULL; c = next) {
		next = c->ic_next;
		switch (c->ic_type) {
		case CMD_ADD:
			handle_add(d, c->ic_arg);
			break;
		case CMD_REMOVE:
			handle_remove(d, c->ic_arg);
			break;
		case CMD_UPDATE:
			handle_update(d, c->ic_arg);
			update_free(c->ic_arg);
			break;
		case CMD_PUBLISH:
			route_publish(d, c->ic_arg);
			free(c);
			break;
		case CMD_REPLAY:
			handle_replay(d, c->ic_arg, c->ic_n);
			free(c->ic_arg);
			free(c);
			break;
		case CMD_CONFIG:
			handle_config(d, c->ic_config);
			free(c);
			break;
		default:
			cmd_unknown(c);
		}
	}
}

/*
 * Saves each subscriber's cursor: the first message not yet done, which is
 * the lowest of its deliveries in flight (not counting retries, which the
 * store keeps on their own) and what it has not started.
 */
static void
save_progress(struct dthread *d)
{
	for (size_t i = 0; i < d->d_ntargets; i++)
		d->d_targets[i]->tg_low = target_unsent(d, d->d_targets[i]);
	xfer_lower_cursors(d);
	for (size_t i = 0; i < d->d_ntargets; i++) {
		struct target *t = d->d_targets[i];

		if (t->tg_low > t->tg_saved && t->tg_id != 0) {
			store_progress(d->d_store, t->tg_id, t->tg_low);
			t->tg_saved = t->tg_low;
		}
	}
}

/* Every TICK_MS: retries that came due, and now and then the cursors. */
static void
tick(struct dthread *d)
{
	if (d->d_now < d->d_next_tick)
		return;
	d->d_next_tick = d->d_now + TICK_MS;
	for (size_t i = 0; i < d->d_ntargets; i++) {
		struct target *t = d->d_targets[i];

		/* A failing target whose probe is gone (dropped) would wait forever. */
		if (t->tg_state == SUB_FAILING && t->tg_nretries == 0 &&
		    t->tg_in_flight == 0) {
			t->tg_state = SUB_ACTIVE;
			t->tg_fails = 0;
			sub_set_state(t->tg_sub, SUB_ACTIVE);
		}
		if (t->tg_nretries > 0 || t->tg_stored)
			target_ready_push(d, t);
		target_count(d, t);
	}
	if (d->d_now >= d->d_next_progress) {
		d->d_next_progress = d->d_now + PROGRESS_MS;
		save_progress(d);
	}
}

/*
 * Aborts every transfer in flight and empties every FIFO: they stay in the
 * store (the cursors were saved first) and are sent again after a restart.
 */
static void
abandon_all(struct dthread *d)
{
	long flying = xfer_abandon_all(d);

	for (size_t i = 0; i < d->d_ntargets; i++)
		target_clear(d->d_targets[i]);
	if (flying > 0)
		log_warnx("shutdown grace period over: deliveries in flight "
			  "abandoned (kept in the store)",
		    "in_flight=%ld", flying);
}

/* With nothing in flight: frees every target, live or waiting to be freed. */
static void
release_all(struct dthread *d)
{
	struct target *t;

	while ((t = target_ready_pop(d)) != NULL)
		if (t->tg_removed)
			target_release(d, t);
	while (d->d_ntargets > 0) {
		t = d->d_targets[0];
		route_remove_target(d, t);
		target_clear(t);
		t->tg_id = 0; /* still registered: the store keeps it */
		t->tg_removed = 1;
		target_release(d, t);
	}
}

/*
 * The watchdog hears from thread 0 alone, and only while every thread has
 * gone round its loop within half the watchdog interval: a wedged thread
 * stops the pings, and says which it is once.
 */
static void
watchdog(struct dthread *d)
{
	const struct deliver *dl = d->d_all;
	int64_t age;

	if (d->d_index != 0)
		return;
	for (int i = 1; i < dl->dl_n; i++) {
		age = d->d_now - deliver_thread_heartbeat(dl, i);
		if (age > dl->dl_stale_ms) {
			if (!d->d_wedged_said)
				log_error("delivery thread stuck: watchdog "
					  "not pinged",
				    "thread=%d silent_ms=%lld", i,
				    (long long)age);
			d->d_wedged_said = 1;
			return;
		}
	}
	d->d_wedged_said = 0;
	notify_watchdog();
}

static void *
deliver_loop(void *arg)
{
	struct dthread *d = arg;
	int64_t now, slow;
	int limit;

	for (;;) {
		d->d_now = clock_mono_ms();
		/* Each round is proof of life: every TICK_MS at least, when idle. */
		atomic_store_explicit(&d->d_beat, d->d_now,
		    memory_order_relaxed);
		watchdog(d);
		drain_inbox(d);
		/* Stopping: nothing new starts; what is queued stays stored. */
		if (atomic_load(&d->d_stopping)) {
			if (d->d_in_flight == 0 ||
			    d->d_now >= atomic_load(&d->d_deadline)) {
				save_progress(d);
				abandon_all(d);
				break;
			}
		} else {
			tick(d);
			xfer_dispatch(d);
		}
		now = clock_mono_ms();
		limit = atomic_load(&d->d_stopping) ? 100 :
		    d->d_rescan			    ? 0 :
						      TICK_MS;
		/* Work waits for slots: wake when the oldest transfer turns slow. */
		if (d->d_ready_head != NULL &&
		    d->d_fast >= d->d_max_transfers &&
		    (slow = xfer_slow_at(d)) != -1)
			limit = slow > now ? (int)(slow - now) : 0;
		if (limit > d->d_max_sleep)
			limit = d->d_max_sleep;
		evloop_poll(d->d_ev, now, limit);
	}
	return NULL;
}

static void
dthread_free(struct dthread *d)
{
	struct cmd *c, *next;

	if (d == NULL)
		return;
	/* Commands nobody will act on: publishes and replays own memory. */
	for (c = d->d_inbox_head; c != NULL; c = next) {
		next = c->ic_next;
		if (c->ic_type == CMD_PUBLISH) {
			msg_unref(c->ic_arg);
			free(c);
		} else if (c->ic_type == CMD_UPDATE) {
			update_free(c->ic_arg);
		} else if (c->ic_type == CMD_REPLAY) {
			free(c->ic_arg);
			free(c);
		} else if (c->ic_type == CMD_CONFIG) {
			config_release(c->ic_config);
			free(c);
		} else if (c->ic_type != CMD_ADD && c->ic_type != CMD_REMOVE)
			cmd_unknown(c);
	}
	release_all(d);
	free(d->d_targets);
	route_free(d->d_route);
	signer_free(d->d_signer);
	/* Easy handles go before the multi handle, as libcurl wants. */
	xfer_free_all(d);
	evloop_free(d->d_ev);
	curl_slist_free_all(d->d_resolve);
	config_release(d->d_cfg_ref);
	store_reader_close(d->d_reader);
	pthread_mutex_destroy(&d->d_inbox_lock);
	free(d);
}

/*
 * For tests only, and on purpose no configuration key or flag:
 * HOOKCAST_TEST_RESOLVE holds CURLOPT_RESOLVE entries, blank-separated
 * ("api.localhost:80:[::a9fe:a9fe] x.localhost:8080:127.0.0.2"), so that
 * the integration tests can have a name resolve to any address with no DNS
 * and no change to /etc/hosts.  It decides what a name resolves to and no
 * more: on_open judges each of those addresses as it judges what DNS says.
 * libcurl keeps the entries in the multi handle's DNS cache for good.
 */
static int
test_resolve(struct dthread *d)
{
	const char *env = getenv("HOOKCAST_TEST_RESOLVE"), *p;
	char entry[256], lv[LOG_VALUE_MAX];
	struct curl_slist *l;
	size_t len;

	if (env == NULL || *env == '\0')
		return 0;
	for (p = env; *(p += strspn(p, " \t")) != '\0'; p += len) {
		len = strcspn(p, " \t");
		if (len >= sizeof(entry)) {
			log_error("cannot start delivery",
			    "reason=\""
			    "HOOKCAST_TEST_RESOLVE: an entry is too long\"");
			return -1;
		}
		memcpy(entry, p, len);
		entry[len] = '\0';
		if ((l = curl_slist_append(d->d_resolve, entry)) == NULL) {
			log_error("cannot start delivery", "reason=nomem");
			return -1;
		}
		d->d_resolve = l;
	}
	if (d->d_index == 0)
		log_warnx("HOOKCAST_TEST_RESOLVE is set: names resolve as it "
			  "says (for tests only)",
		    "resolve=%s", log_value(lv, sizeof(lv), env));
	return 0;
}

int
deliver_check(const struct config *cfg, char err[CONFIG_ERRLEN])
{
	char ebuf[128];
	int fd, e;

	/* Unreadable, it would fail every https delivery: say so now. */
	if (cfg->ca_file[0] == '\0')
		return 0;
	if ((fd = open(cfg->ca_file, O_RDONLY | O_CLOEXEC)) == -1) {
		e = errno;
		snprintf(err, CONFIG_ERRLEN, "ca_file %.160s: %s", cfg->ca_file,
		    strerror_r(e, ebuf, sizeof(ebuf)));
		errno = e;
		return -1;
	}
	close(fd);
	return 0;
}

void
deliver_reload(struct deliver *dl, const struct config *cfg)
{
	struct cmd *c;

	for (int i = 0; i < dl->dl_n; i++) {
		if ((c = calloc(1, sizeof(*c))) == NULL) {
			log_error("reload not applied to deliveries",
			    "thread=%d reason=nomem", i);
			continue;
		}
		c->ic_type = CMD_CONFIG;
		c->ic_config = config_hold(cfg);
		inbox_push(dl->dl_threads[i], c);
	}
	deliver_wake(dl);
}

/* One thread's state, not yet running; NULL (logged) on failure. */
static struct dthread *
dthread_new(struct deliver *dl, int index, const struct config *cfg,
    struct store *st, struct subs *subs, uint64_t last_seq)
{
	struct dthread *d;
	uint64_t wd;

	if ((d = calloc(1, sizeof(*d))) == NULL) {
		log_error("cannot start delivery", "reason=nomem");
		return NULL;
	}
	d->d_all = dl;
	d->d_index = index;
	d->d_http2 = dl->dl_http2;
	d->d_cfg = cfg;
	d->d_store = st;
	d->d_subs = subs;
	d->d_last_seq = last_seq;
	d->d_rng = retry_seed();
	d->d_inbox_tail = &d->d_inbox_head;
	pthread_mutex_init(&d->d_inbox_lock, NULL);
	snprintf(d->d_user_agent, sizeof(d->d_user_agent),
	    "User-Agent: hookcast/%s", HOOKCAST_VERSION);
	if ((d->d_ev = evloop_new(xfer_on_done, d)) == NULL ||
	    test_resolve(d) == -1)
		goto fail;
	/* Idle, the loop still turns four times a watchdog interval. */
	d->d_max_sleep = INT_MAX;
	if ((wd = notify_watchdog_usec() / 4000) < INT_MAX &&
	    notify_watchdog_usec() > 0)
		d->d_max_sleep = wd > 0 ? (int)wd : 1;
	if ((d->d_route = route_new()) == NULL)
		goto fail;
	if (*cfg->signing_secret != '\0' &&
	    (d->d_signer = signer_new(cfg->signing_secret)) == NULL) {
		log_error("cannot start delivery",
		    "reason=\"signing_secret "
		    "refused by libcrypto\"");
		goto fail;
	}
	/* Logged by the store. */
	if ((d->d_reader = store_reader_open(st)) == NULL)
		goto fail;
	share_limits(d, cfg);
	xfer_size_cache(d);
	atomic_store(&d->d_beat, clock_mono_ms());
	return d;
fail:
	dthread_free(d);
	return NULL;
}

/* Joins every thread started and frees them all. */
static void
deliver_free(struct deliver *dl)
{
	for (int i = 0; i < dl->dl_n; i++) {
		struct dthread *d = dl->dl_threads[i];

		if (d != NULL && d->d_started) {
			pthread_join(d->d_thread, NULL);
			drain_inbox(d);
		}
		dthread_free(d);
	}
	free(dl);
}

/* Tells every thread started to stop by DEADLINE, and wakes it. */
static void
deliver_signal_stop(struct deliver *dl, int64_t deadline)
{
	for (int i = 0; i < dl->dl_n; i++) {
		struct dthread *d = dl->dl_threads[i];

		if (d == NULL || !d->d_started)
			continue;
		atomic_store(&d->d_deadline, deadline);
		atomic_store(&d->d_stopping, true);
		evloop_wake(d->d_ev);
	}
}

struct deliver *
deliver_start(const struct config *cfg, struct store *st, struct subs *subs,
    uint64_t last_seq)
{
	char err[CONFIG_ERRLEN], lp[LOG_VALUE_MAX], ebuf[128], name[32];
	struct deliver *dl;
	struct rlimit rl;
	int rc, n = (int)cfg->delivery_threads;

	if (deliver_check(cfg, err) == -1) {
		log_error("cannot read ca_file", "ca_file=%s error=\"%s\"",
		    log_value(lp, sizeof(lp), cfg->ca_file),
		    strerror_r(errno, ebuf, sizeof(ebuf)));
		return NULL;
	}
	if (!cfg->tls_verify)
		log_warnx("tls_verify is off: deliveries to https:// "
			  "subscribers accept any certificate",
		    "tls_verify=no");
	assert(n >= 1 && n <= DELIVER_THREADS_MAX);
	if ((dl = calloc(1,
		 sizeof(*dl) + (size_t)n * sizeof(dl->dl_threads[0]))) ==
	    NULL) {
		log_error("cannot start delivery", "reason=nomem");
		return NULL;
	}
	dl->dl_n = n;
	/* Without it, https:// stays on HTTP/1.1 whatever http2 says. */
	dl->dl_http2 = (curl_version_info(CURLVERSION_NOW)->features &
			   CURL_VERSION_HTTP2) != 0;
	if (cfg->http2 && !dl->dl_http2)
		log_warnx("libcurl has no HTTP/2 (nghttp2): https:// "
			  "deliveries use HTTP/1.1",
		    "http2=yes");
	/* What the HTTP front end may not need of the descriptors. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		dl->dl_fds = (long)rl.rlim_cur - cfg->max_connections - 64;
	else
		dl->dl_fds = LONG_MAX;
	/* A quarter of the watchdog interval at most between rounds: twice that. */
	dl->dl_stale_ms = LONG_MAX;
	if (notify_watchdog_usec() > 0)
		dl->dl_stale_ms = (long)(notify_watchdog_usec() / 2000);
	for (int i = 0; i < n; i++)
		if ((dl->dl_threads[i] = dthread_new(dl, i, cfg, st, subs,
			 last_seq)) == NULL)
			goto fail;
	for (int i = 0; i < n; i++) {
		struct dthread *d = dl->dl_threads[i];

		if ((rc = pthread_create(&d->d_thread, NULL, deliver_loop,
			 d)) != 0) {
			log_error("cannot start delivery",
			    "thread=%d error=\"%s\"", i,
			    strerror_r(rc, ebuf, sizeof(ebuf)));
			goto fail;
		}
		d->d_started = 1;
		snprintf(name, sizeof(name), "deliver-%d", i);
		(void)pthread_setname_np(d->d_thread, name);
	}
	log_info("delivery started", "threads=%d max_transfers_per_thread=%ld",
	    n, dl->dl_threads[0]->d_max_transfers);
	return dl;
fail:
	deliver_signal_stop(dl, 0);
	deliver_free(dl);
	return NULL;
}

int
deliver_threads(const struct deliver *dl)
{
	return dl->dl_n;
}

int64_t
deliver_thread_heartbeat(const struct deliver *dl, int i)
{
	return atomic_load_explicit(&dl->dl_threads[i]->d_beat,
	    memory_order_relaxed);
}

void
deliver_thread_figures(const struct deliver *dl, int i,
    struct metrics_thread *f)
{
	const struct dthread *d = dl->dl_threads[i];
	struct timespec ts;
	clockid_t cid;

	f->mt_subscribers = (uint64_t)atomic_load_explicit(&d->d_count,
	    memory_order_relaxed);
	f->mt_in_flight = (uint64_t)atomic_load_explicit(&d->d_flying,
	    memory_order_relaxed);
	f->mt_attempts = (uint64_t)atomic_load_explicit(&d->d_attempts,
	    memory_order_relaxed);
	/* The thread's CPU time, read from here: nothing on its own path. */
	f->mt_busy_us = 0;
	if (pthread_getcpuclockid(d->d_thread, &cid) == 0 &&
	    clock_gettime(cid, &ts) == 0)
		f->mt_busy_us = (uint64_t)ts.tv_sec * 1000000 +
		    (uint64_t)ts.tv_nsec / 1000;
}

long
deliver_in_flight(const struct deliver *dl)
{
	long sum = 0;

	for (int i = 0; i < dl->dl_n; i++)
		sum += atomic_load_explicit(&dl->dl_threads[i]->d_flying,
		    memory_order_relaxed);
	return sum;
}

void
deliver_stop(struct deliver *dl, long grace_ms)
{
	if (dl == NULL)
		return;
	/* Every thread's grace period runs at once. */
	deliver_signal_stop(dl, clock_mono_ms() + grace_ms);
	deliver_free(dl);
}

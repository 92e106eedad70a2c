/* unit.h: what every check suite shares: main(), temp directories, a hanging listener, wait_until, the daemon's stack. */
#ifndef HOOKCAST_UNIT_H
#define HOOKCAST_UNIT_H

#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The timeout of a wait for something the daemon does soon (tests/unit.c). */
#define UNIT_WAIT_MS	10000

/* Runs every test of S and returns the process exit status. */
int	unit_run(Suite *s);

/* A fresh directory, for a data_dir; unit_run removes it with the suite's. */
void	unit_tempdir(char dir[64]);
/* Removes PATH, and what is in it if it is a directory. */
void	unit_rmdir(const char *path);

/*
 * A socket on 127.0.0.1 that completes TCP handshakes (its backlog) but
 * never answers: a subscriber that hangs.  Returns the fd the caller
 * closes; *PORT is its port.
 */
int	unit_hang_listen(unsigned *port);
/* A port on 127.0.0.1 that nothing listens on: connections are refused. */
unsigned unit_refused_port(void);

/*
 * Asks PRED(ARG) every few milliseconds until it is true (1) or
 * TIMEOUT_MS have passed (0).  Tests use wait_until, which fails them.
 */
int	unit_poll(int (*pred)(void *), void *arg, int timeout_ms);

/*
 * setenv(NAME, VALUE, 1) and unsetenv(NAME), failing the test if they fail.
 * glibc's are MT-Unsafe: only while the suite runs no thread of its own.
 */
void	unit_setenv(const char *name, const char *value);
void	unit_unsetenv(const char *name);

/*
 * Waits until PRED(ARG) is true; after TIMEOUT_MS the test fails at the
 * caller's line, naming PRED.  For what the daemon does on its own
 * threads: a fixed sleep is either too short on a loaded machine or too
 * long everywhere else.
 */
#define wait_until(pred, arg, timeout_ms)				\
	ck_assert_msg(unit_poll((pred), (arg), (timeout_ms)),		\
	    "timed out after %d ms waiting for %s", (int)(timeout_ms), #pred)

/*
 * The daemon's stack, started and stopped by daemon.c as main() does it:
 * store, subscriber map (its hooks go to the store), delivery, and the
 * PARTS asked for (DAEMON_API, DAEMON_REAPER).  Only for suites that
 * include store.h and deliver.h.
 */
#if defined(HOOKCAST_STORE_H) && defined(HOOKCAST_DELIVER_H)
#include "daemon.h"
#include "deadletters.h"

struct unit_stack {
	struct daemon	*daemon;
	struct store	*store;
	struct subs	*subs;
	struct deliver	*deliver;
	struct api	*api;
};

/* CFG->data_dir must be set; the stack reads CFG until it is stopped. */
static inline void
unit_stack_start_parts(struct unit_stack *k, const struct config *cfg,
    size_t max_subs, int parts)
{
	k->daemon = daemon_start(cfg, parts);
	ck_assert_ptr_nonnull(k->daemon);
	k->store = daemon_store(k->daemon);
	k->subs = daemon_subs(k->daemon);
	k->deliver = daemon_deliver(k->daemon);
	k->api = daemon_api(k->daemon);
	subs_set_max(k->subs, max_subs);
}

/* The core alone: no front end, no reaper. */
static inline void
unit_stack_start(struct unit_stack *k, const struct config *cfg,
    size_t max_subs)
{
	unit_stack_start_parts(k, cfg, max_subs, 0);
}

/* main()'s shutdown (the caller stops a reaper of its own first). */
static inline void
unit_stack_stop(struct unit_stack *k, long grace_ms)
{
	if (k->daemon == NULL)
		return;
	daemon_stop(k->daemon, grace_ms);
	memset(k, 0, sizeof(*k));
}

/* A store request done synchronously: submit, then wait for r_done. */
struct unit_wait {
	pthread_mutex_t	 lock;
	pthread_cond_t	 cond;
	int		 done;
};

static inline void
unit_req_done(struct store_req *req)
{
	struct unit_wait *w = req->r_arg;

	pthread_mutex_lock(&w->lock);
	w->done = 1;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

/* Fills in r_done and r_arg; returns r_status. */
static inline enum store_status
unit_request(struct store *st, struct store_req *req)
{
	struct unit_wait w = { PTHREAD_MUTEX_INITIALIZER,
	    PTHREAD_COND_INITIALIZER, 0 };

	req->r_done = unit_req_done;
	req->r_arg = &w;
	ck_assert_int_eq(store_submit(st, req), 0);
	pthread_mutex_lock(&w.lock);
	while (!w.done)
		pthread_cond_wait(&w.cond, &w.lock);
	pthread_mutex_unlock(&w.lock);
	req->r_arg = NULL;	/* W goes with this frame */
	return req->r_status;
}

/* Publishes M as /sendMessage does: committed, then fanned out. */
static inline enum store_status
unit_publish(struct store *st, struct msg *m)
{
	struct store_req req = { .r_type = REQ_PUBLISH, .r_msg = m };

	return unit_request(st, &req);
}

/* Waits until everything queued for the store before now is committed. */
static inline void
unit_sync(struct store *st)
{
	struct store_req req = { .r_type = REQ_SYNC };

	ck_assert_int_eq(unit_request(st, &req), STORE_OK);
}

/* The dead letters, rendered as the API does (text or JSON); caller frees. */
static inline char *
unit_dead_letters(struct store *st, const char *address, int json)
{
	struct store_req req = { .r_type = REQ_DL_LIST, .r_address = address,
	    .r_limit = 1000, .r_json = json };
	char *out;
	size_t len;

	ck_assert_int_eq(unit_request(st, &req), STORE_OK);
	out = deadletters_render(req.r_dead, req.r_ndead, json, &len);
	ck_assert_ptr_nonnull(out);
	store_req_release(&req);
	return out;
}
#endif

#endif

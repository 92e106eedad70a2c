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
 * Waits until PRED(ARG) is true; after TIMEOUT_MS the test fails at the
 * caller's line, naming PRED.  For what the daemon does on its own
 * threads: a fixed sleep is either too short on a loaded machine or too
 * long everywhere else.
 */
#define wait_until(pred, arg, timeout_ms)				\
	ck_assert_msg(unit_poll((pred), (arg), (timeout_ms)),		\
	    "timed out after %d ms waiting for %s", (int)(timeout_ms), #pred)

/*
 * The daemon's stack as main() builds it, minus the front end and the
 * reaper: store, subscriber map (its hooks go to the store), delivery
 * thread.  Only for suites that include store.h and deliver.h.
 */
#if defined(HOOKCAST_STORE_H) && defined(HOOKCAST_DELIVER_H)
struct unit_stack {
	struct store	*store;
	struct subs	*subs;
	struct deliver	*deliver;
};

/* CFG->data_dir must be set; the stack reads CFG until it is stopped. */
static inline void
unit_stack_start(struct unit_stack *k, const struct config *cfg,
    size_t max_subs)
{
	struct subs_hooks hooks = { store_on_add, store_on_remove,
	    store_on_change, NULL };

	k->store = store_open(cfg);
	ck_assert_ptr_nonnull(k->store);
	hooks.arg = k->store;
	k->subs = subs_new(max_subs, &hooks);
	ck_assert_ptr_nonnull(k->subs);
	ck_assert_int_eq(store_restore(k->store, k->subs), 0);
	k->deliver = deliver_start(cfg, k->store, k->subs,
	    store_last_seq(k->store));
	ck_assert_ptr_nonnull(k->deliver);
	ck_assert_int_eq(store_start(k->store, k->deliver), 0);
}

/* main()'s shutdown order (the caller stops any front end or reaper first). */
static inline void
unit_stack_stop(struct unit_stack *k, long grace_ms)
{
	if (k->store == NULL)
		return;
	store_close_requests(k->store);
	store_detach(k->store);
	deliver_stop(k->deliver, grace_ms);
	store_stop(k->store);
	subs_free(k->subs);
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

/* The dead letters (text, or JSON); the caller frees the answer. */
static inline char *
unit_dead_letters(struct store *st, const char *address, int json)
{
	struct store_req req = { .r_type = REQ_DL_LIST, .r_address = address,
	    .r_limit = 1000, .r_json = json };
	char *out;

	ck_assert_int_eq(unit_request(st, &req), STORE_OK);
	if ((out = malloc(req.r_len + 1)) == NULL)
		ck_abort_msg("out of memory");
	if (req.r_len > 0)
		memcpy(out, req.r_body, req.r_len);
	out[req.r_len] = '\0';
	free(req.r_body);
	return out;
}
#endif

#endif

/* unit.h: the one main() every check suite shares, and the daemon's stack. */
#ifndef HOOKCAST_UNIT_H
#define HOOKCAST_UNIT_H

#include <check.h>
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Removes PATH, and what is in it if it is a directory. */
static inline void
unit_rmdir(const char *path)
{
	char sub[1400];
	struct dirent *e;
	struct stat sb;
	DIR *d;

	if (path == NULL || *path == '\0' || lstat(path, &sb) == -1)
		return;
	if (!S_ISDIR(sb.st_mode)) {
		unlink(path);
		return;
	}
	if ((d = opendir(path)) != NULL) {
		while ((e = readdir(d)) != NULL) {
			if (strcmp(e->d_name, ".") == 0 ||
			    strcmp(e->d_name, "..") == 0)
				continue;
			if (snprintf(sub, sizeof(sub), "%s/%s", path,
			    e->d_name) < (int)sizeof(sub))
				unit_rmdir(sub);
		}
		closedir(d);
	}
	rmdir(path);
}

/*
 * Where unit_tempdir makes its directories: one a suite, removed when the
 * suite is over, so that a failed test (whose teardown does not run) leaves
 * nothing behind either.
 */
static char unit_tempbase[64];

/* Runs every test of S and returns the process exit status. */
static inline int
unit_run(Suite *s)
{
	SRunner *sr;
	int failed;

	snprintf(unit_tempbase, sizeof(unit_tempbase),
	    "/tmp/hookcast-unit.XXXXXX");
	if (mkdtemp(unit_tempbase) == NULL)
		unit_tempbase[0] = '\0';
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	unit_rmdir(unit_tempbase);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/* A fresh directory, for a data_dir. */
static inline void
unit_tempdir(char dir[64])
{
	ck_assert_int_lt(snprintf(dir, 64, "%s/t.XXXXXX",
	    unit_tempbase[0] != '\0' ? unit_tempbase : "/tmp"), 64);
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

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

/* The dead letters (text, or JSON), rendered as the API does; the caller frees. */
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

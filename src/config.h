/* config.h: every setting, its default, and how files and flags set it. */
#ifndef HOOKCAST_CONFIG_H
#define HOOKCAST_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "egress.h"
#include "log.h"

#define CONFIG_ERRLEN	 256
#define RETRY_MAX	 32  /* entries in retry_schedule */
#define CONFIG_TOKEN_MAX 256 /* bytes in an access token */

/* SQLite's synchronous setting: what a commit survives (see README). */
enum durability { DURABILITY_OFF, DURABILITY_NORMAL, DURABILITY_FULL };

/*
 * All of hookcast's settings.  Plain data: filled by config_init(),
 * config_load() and config_set(), then read-only; a reload makes a new one
 * (config_share) rather than changing the one in use.
 * Durations are in seconds (retry_schedule in milliseconds), sizes in bytes.
 */
/* delivery_threads at most (a thread owns whole shards: 64 of them). */
#define CONFIG_THREADS_MAX 64

struct config {
	char listen[256]; /* HOST:PORT */
	long keepalive_ttl;
	long reap_interval;
	size_t max_body;
	long max_batch; /* messages a /sendMessages */
	enum log_level log_level;
	long queue_limit;      /* messages a subscriber */
	long max_in_flight;    /* transfers a subscriber */
	long max_transfers;    /* transfers in all */
	long delivery_threads; /* 1..CONFIG_THREADS_MAX; default: CPUs online */
	long connect_timeout;
	long delivery_timeout;
	size_t max_queued_bytes;
	long shutdown_grace;
	long client_timeout;
	long header_timeout;  /* request line and headers */
	long body_timeout;    /* a body's grace, then... */
	size_t body_min_rate; /* ...bytes a second on average */
	long max_conns_per_ip;
	long max_connections;
	long http_threads;
	long max_subscribers;
	char data_dir[1024];
	enum durability durability;
	long retry_schedule[RETRY_MAX]; /* ms */
	int retry_count;
	long failure_threshold;
	int ordered;
	size_t max_backlog_bytes;
	int dead_letter_on_evict;
	long dead_letter_retention;
	long dead_letter_max;
	char signing_secret[256]; /* "whsec_..", or two; "" none */
	long idempotency_window;
	/* Access tokens (auth.c), "" for an open scope; never logged. */
	char publish_token[CONFIG_TOKEN_MAX + 1];
	char subscribe_token[CONFIG_TOKEN_MAX + 1];
	char admin_token[CONFIG_TOKEN_MAX + 1];
	/* Egress policy and TLS. */
	struct egress_list deny_targets; /* beyond the built-in ones */
	struct egress_list allow_targets;
	char ca_file[1024]; /* "": libcurl's default */
	int tls_verify;
	int http2;	     /* offer HTTP/2 to https:// subscribers */
	char tls_cert[1024]; /* "": plain HTTP front end */
	char tls_key[1024];
	/* Set by config_share to the copy's reference count, else NULL. */
	struct shared_config *shared;
};

/* Fills every field with its default. */
void config_init(struct config *cfg);

/*
 * Sets KEY (underscores; a leading "--" and dashes are accepted) to VALUE.
 * On error returns -1, writes the reason to err and leaves cfg unchanged.
 */
int config_set(struct config *cfg, const char *key, const char *value,
    char err[CONFIG_ERRLEN]);

/*
 * Reads `key value` lines (# starts a comment) from PATH.  On error returns
 * -1 with "PATH:LINE: reason" (or "PATH: strerror") in err; settings from
 * lines before the bad one may have been applied.
 */
int config_load(struct config *cfg, const char *path, char err[CONFIG_ERRLEN]);

/*
 * config_load's reading, from FP (a file, or fmemopen() of a buffer);
 * PATH only names it in err.  FP is left open.
 */
int config_read(struct config *cfg, FILE *fp, const char *path,
    char err[CONFIG_ERRLEN]);

/*
 * Sets each token key that has an environment variable HOOKCAST_<KEY>
 * (HOOKCAST_PUBLISH_TOKEN, ...) to its value; an empty one is an error.
 * Called between config_load() and the command line, which overrides it.
 * On error returns -1 with "VARIABLE: reason" in err (never the value);
 * variables before the bad one may have been applied.
 */
int config_load_env(struct config *cfg, char err[CONFIG_ERRLEN]);

/* Checks settings that depend on each other; -1 with err on a conflict. */
int config_validate(const struct config *cfg, char err[CONFIG_ERRLEN]);

/*
 * Writes every key with its current value, one `key value` line each; a
 * token as "(set)", or as a comment when unset, so a dump is safe to show
 * (and one with tokens does not load back).
 */
void config_dump(const struct config *cfg, char *buf, size_t len);

/*
 * Reload: compares NEXT, a configuration just read, with CUR, the running
 * one.  A key that cannot change while running gets CUR's value back in
 * NEXT and its name in RESTART; the names of the keys that do change go to
 * CHANGED (both space-separated, "" for none).  Returns how many change.
 */
int config_reconcile(struct config *next, const struct config *cur,
    char *changed, size_t clen, char *restart, size_t rlen);

/*
 * A copy of CFG shared between threads by reference: config_share makes it
 * (one reference, the caller's; NULL if out of memory), config_hold adds a
 * reference, config_release drops one and frees (wiped) with the last.
 * Only pointers from config_share may be held or released.
 */
const struct config *config_share(const struct config *cfg);
const struct config *config_hold(const struct config *cfg);
void config_release(const struct config *cfg);

/* Value parsers, shared with the tests: -1 on anything malformed or out of range. */
int config_parse_duration(const char *s, long min, long max, long *out);
int config_parse_size(const char *s, size_t min, size_t max, size_t *out);
/* "1s 5s 30s": at most RETRY_MAX delays of 10ms to 1d (units ms, s, m, h, d). */
int config_parse_schedule(const char *s, long ms[RETRY_MAX], int *count);

#endif

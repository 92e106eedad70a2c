/* store.h: the durable store, its writer thread, and the sink it feeds. */
#ifndef HOOKCAST_STORE_H
#define HOOKCAST_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "msg.h"
#include "subs.h"

struct store;
struct topics;

enum store_status {
	STORE_OK,
	STORE_FULL,	/* the disk is full: retry later */
	STORE_ERROR,	/* the backend failed: retry later */
	STORE_CLOSED,	/* shutting down */
	STORE_CONFLICT, /* replay: the address is not registered */
};

enum store_req_type {
	REQ_PUBLISH,	   /* commit r_msg (unless r_key was seen) */
	REQ_PUBLISH_BATCH, /* commit r_pubs, all or none, in order */
	REQ_SYNC,	   /* wait until what was queued before is committed */
	REQ_DL_LIST,	   /* dead letters: r_dead, r_ndead */
	REQ_DL_REPLAY,	   /* dead letters back to retries: r_count */
	REQ_DL_PURGE,	   /* dead letters deleted: r_count */
	REQ_CONFIG,	   /* store_reload()'s own */
};

/*
 * One message of a REQ_PUBLISH_BATCH: what a REQ_PUBLISH's r_msg, r_key,
 * r_fanout, r_repeat and r_first are to it.
 */
struct store_pub {
	struct msg *sp_msg; /* the caller's */
	const char *sp_key; /* Idempotency-Key, or NULL */
	long sp_fanout;	    /* subscribers it goes to (saved with sp_key) */
	int sp_repeat;	    /* out: sp_key was seen; nothing committed */
	char sp_first[MSG_IDLEN + 1]; /* out: the first message's id */
};

/*
 * A request from the front end.  r_done is called on the store thread once
 * the transaction it was part of has committed (or failed: r_status); it
 * must not block.  The request belongs to the store from store_submit()
 * until then.
 */
struct store_req {
	enum store_req_type r_type;
	void (*r_done)(struct store_req *);
	void *r_arg;
	enum store_status r_status;
	/*
	 * REQ_CONFIG: a reference to the new configuration; once applied, to
	 * the one it replaced, released with the request.
	 */
	const struct config *r_config;
	struct msg *r_msg; /* REQ_PUBLISH; the caller's */
	const char *r_key; /* REQ_PUBLISH: Idempotency-Key, or NULL */
	long r_fanout;	   /* subscribers it goes to (saved with r_key) */
	int r_repeat;	   /* out: r_key was seen; nothing committed */
	char r_first[MSG_IDLEN + 1]; /* out: the first message's id */
	/*
	 * REQ_PUBLISH_BATCH: the messages, the caller's.  Committed in one
	 * transaction with consecutive numbers, in this order, or not at
	 * all: one that cannot be written fails the request (STORE_ERROR)
	 * and writes none of them.
	 */
	struct store_pub *r_pubs;
	size_t r_npubs;
	const char *r_address; /* dead letters: filters, or NULL */
	const char *r_id;
	long r_limit; /* 0: no limit */
	/*
	 * REQ_DL_LIST pages: in, where the last page ended (0 0: at the
	 * start); out, where this one did when it was full (0 0: no more).
	 */
	int64_t r_after_range;
	uint64_t r_after_seq;
	int64_t r_next_range;
	uint64_t r_next_seq;
	int r_json; /* the caller's: the store ignores it */
	/* REQ_DL_LIST: the rows; the caller's, freed by store_req_release. */
	struct store_dead *r_dead;
	size_t r_ndead;
	char *r_dead_text; /* r_dead's strings */
	long r_count;
	/* REQ_DL_REPLAY: what goes back to delivery; the store's own. */
	struct store_replay *r_replay;
	size_t r_nreplay;
};

/* One dead letter, as REQ_DL_LIST lists it (times: wall-clock ms, 0 none). */
struct store_dead {
	const char *sd_msg_id;
	const char *sd_address;
	int sd_attempts;
	int64_t sd_first_at, sd_last_at, sd_dead_at;
	long sd_status;	      /* the last HTTP status, 0: none */
	const char *sd_error; /* the last error, "" for none */
	const char *sd_reason;
};

/* Frees what the store returned in REQ (r_dead) and clears it.  NULL-safe. */
void store_req_release(struct store_req *req);

/* A dead letter turned back into a retry, due now, for delivery. */
struct store_replay {
	int64_t rp_sub_id;
	uint64_t rp_seq;
};

/*
 * Where the store hands what it has committed, in commit order, on the
 * writer thread; daemon.c wires it to delivery (data flows one way: the
 * store never calls delivery by name).  None of them may block.
 * sk_sub_add gets a subscriber once its row is committed (its store id and
 * first message set) with its topics and secret as of that change; the
 * sink takes its own reference to the topics, so they are not const.  When
 * it returns -1 (out of memory) the store passes on none of that
 * subscriber's later changes or its removal.  sk_wake follows everything
 * one commit passed on.
 */
struct store_sink {
	int (*sk_publish)(struct msg *, void *);
	void (*sk_replay)(const struct store_replay *, size_t, void *);
	int (*sk_sub_add)(struct sub *, struct topics *, const char *, void *);
	int (*sk_sub_change)(struct sub *, struct topics *, const char *,
	    void *);
	void (*sk_sub_remove)(struct sub *, void *);
	void (*sk_wake)(void *);
	void *sk_arg;
};

/*
 * Opens the backend (SQLite: DATA_DIR/hookcast.db, created if need be),
 * checks it and locks the directory against a second daemon.  NULL, with
 * the reason logged, when the directory is unusable or the database
 * unreadable or corrupt; nothing is overwritten then.
 */
struct store *store_open(const struct config *cfg);

/*
 * Puts the saved subscribers back into S (their hooks queue them for the
 * store thread) and turns what subscribers removed before a crash left
 * pending into dead letters.  Before store_start.  -1 on a database error.
 */
int store_restore(struct store *st, struct subs *s);

/* The newest message's sequence number (0 for none). */
uint64_t store_last_seq(const struct store *st);

/* Starts the writer thread; what it commits it passes on to SINK (copied). */
int store_start(struct store *st, const struct store_sink *sink);

/* From now on nothing is passed to the sink (it is stopping).  NULL-safe. */
void store_detach(struct store *st);

/* Refuses new requests (STORE_CLOSED) and waits until the queued ones are done. */
void store_close_requests(struct store *st);

/* Commits what is still queued, stops the thread and closes.  NULL-safe. */
void store_stop(struct store *st);

/* Queues REQ; -1 (nothing queued) when closed or out of memory. */
int store_submit(struct store *st, struct store_req *req);
/*
 * Reload: dead-letter limits and the idempotency window follow CFG (a
 * config_share() copy; the store takes its own reference) from the next
 * batch on.  -1 if out of memory or closed.
 */
int store_reload(struct store *st, const struct config *cfg);

/* Bytes of message bodies in the store, and whether the disk was full. */
size_t store_backlog_bytes(const struct store *st);
int store_disk_full(const struct store *st);

/*
 * Whether the store takes writes: 0, or -1 with why not in WHY (LEN
 * bytes): it is closed, the disk is full (until the reserve is back), or
 * the last write failed (until a write succeeds; one is tried every second).
 */
int store_health(struct store *st, char *why, size_t len);
/*
 * Monotonic ms when the writer thread last went round its loop: at least
 * every 100 ms, unless one transaction holds it longer.
 */
int64_t store_heartbeat(const struct store *st);

/* The subscriber map's hooks (see subs.h): they queue the change. */
int store_on_add(struct sub *sub, void *st);
void store_on_remove(struct sub *sub, void *st);
int store_on_change(struct sub *sub, void *st);

/* ---- for the delivery thread: progress, retries, dead letters ---- */

/* One delivery's history, as a retry or a dead letter keeps it. */
struct store_attempt {
	int64_t sub_id;
	uint64_t seq;
	int attempts;
	int64_t first_at, last_at, next_at; /* wall-clock ms */
	long status;			    /* HTTP status, 0: none */
	char error[SUB_ERRLEN];
};

/* Everything before CURSOR is done for subscriber SUB_ID. */
void store_progress(struct store *st, int64_t sub_id, uint64_t cursor);
void store_retry(struct store *st, const struct store_attempt *a);
void store_retry_done(struct store *st, int64_t sub_id, uint64_t seq);
void store_dead(struct store *st, const struct store_attempt *a,
    const char *address, const char *reason);
/*
 * Messages LO..HI that went to a subscriber of TOPICS (topics_text(); "" or
 * NULL: every topic) and were never attempted (no retry of SUB_ID's) become
 * dead letters for ADDRESS.
 */
void store_dead_range(struct store *st, int64_t sub_id, const char *address,
    uint64_t lo, uint64_t hi, const char *topics, const char *reason);
/* The subscriber's retries become dead letters (if DEAD) and its row goes. */
void store_sub_gone(struct store *st, int64_t sub_id, const char *address,
    const char *reason, int dead);

/* A read-only connection for one thread. */
struct store_reader;
struct store_reader *store_reader_open(struct store *st);
void store_reader_close(struct store_reader *r);
/*
 * Up to MAX messages with LO <= seq <= HI that a subscriber of TOPICS
 * (topics_text(); "" for every topic) gets, oldest first; -1 on error.
 * *next is where the following page starts: past HI once all are read.
 */
long store_read_page(struct store_reader *r, uint64_t lo, uint64_t hi,
    const char *topics, size_t max, struct msg **out, uint64_t *next);
struct msg *store_read_msg(struct store_reader *r, uint64_t seq);
/* SUB_ID's retries in *out (free() it); their count, -1 on error. */
long store_read_retries(struct store_reader *r, int64_t sub_id,
    struct store_attempt **out);

#endif

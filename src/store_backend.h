/* store_backend.h: the interface a store backend implements. */
#ifndef HOOKCAST_STORE_BACKEND_H
#define HOOKCAST_STORE_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "msg.h"
#include "store.h"
#include "subs.h"

/* What a backend operation came to. */
enum store_res {
	SR_OK,
	SR_SKIP, /* this operation's data was refused: the batch goes on */
	SR_FULL, /* no space: the batch is tried again */
	SR_FAIL, /* the backend failed: the batch is tried again */
};

/* What a backend found when it opened. */
struct store_boot {
	uint64_t sb_last_seq; /* the highest sequence any row names */
	size_t sb_bytes;      /* bytes of message bodies held */
	char sb_where[1100];  /* for logs: a path, an address */
};

struct store_backend;
struct store_backend_reader;

/*
 * A backend: what the writer thread (and, for readers, delivery) calls.
 * Every operation but open, close and the readers runs on the writer
 * thread, inside begin .. commit (or rollback), except where noted.  An
 * operation that fails leaves its reason for error(), a string that lives
 * as long as the program.  The neutral part (store.c) owns sequence
 * numbers, the queue, group commit, health and the order of everything; a
 * backend only keeps and reads rows.
 */
struct store_backend_ops {
	const char *sbo_name;

	/* Opens (and checks) it for CFG; NULL, logged, when unusable. */
	struct store_backend *(*sbo_open)(const struct config *cfg,
	    struct store_boot *boot);
	/* Folds back and closes what the writer left.  NULL-safe. */
	void (*sbo_close)(struct store_backend *b);
	/* Limits and windows follow CFG from the next operation on. */
	void (*sbo_set_config)(struct store_backend *b,
	    const struct config *cfg);
	/* Why the last operation failed. */
	const char *(*sbo_error)(struct store_backend *b);

	enum store_res (*sbo_begin)(struct store_backend *b);
	/* Also counts the dead letters the transaction added (metrics). */
	enum store_res (*sbo_commit)(struct store_backend *b);
	void (*sbo_rollback)(struct store_backend *b);
	/* Whether anything was written since begin. */
	int (*sbo_wrote)(struct store_backend *b);

	/* REQ_PUBLISH: r_msg numbered SEQ (unless r_key was seen: r_repeat). */
	enum store_res (*sbo_publish)(struct store_backend *b,
	    struct store_req *req, uint64_t seq, int64_t now);
	/*
	 * REQ_PUBLISH_BATCH: all of P[0..N) or none.  Numbered from SEQ on,
	 * in order, one number each but those whose key was seen (sp_repeat:
	 * none).  SR_SKIP: one was refused, and none of them is written.
	 */
	enum store_res (*sbo_publish_batch)(struct store_backend *b,
	    struct store_pub *p, size_t n, uint64_t seq, int64_t now);
	/* A new subscriber, owed messages from CURSOR on: its id in *id. */
	enum store_res (*sbo_sub_add)(struct store_backend *b, struct sub *sub,
	    const struct topics *topics, const char *secret, uint64_t cursor,
	    int64_t *id);
	enum store_res (*sbo_sub_update)(struct store_backend *b, int64_t id,
	    const struct topics *topics, const char *secret);
	/* Marks it removed, for WHY (its pending work is settled later). */
	enum store_res (*sbo_sub_remove)(struct store_backend *b, int64_t id,
	    enum sub_end why);
	enum store_res (*sbo_sub_keepalive)(struct store_backend *b, int64_t id,
	    int64_t keepalive_ms);
	enum store_res (*sbo_progress)(struct store_backend *b, int64_t id,
	    uint64_t cursor);
	enum store_res (*sbo_retry_set)(struct store_backend *b,
	    const struct store_attempt *a);
	enum store_res (*sbo_retry_done)(struct store_backend *b, int64_t id,
	    uint64_t seq);

	/* Dead letters. */
	/* A retry (A) becomes a dead letter for ADDRESS. */
	enum store_res (*sbo_dead_record)(struct store_backend *b,
	    const struct store_attempt *a, const char *address,
	    const char *reason, int64_t now);
	/*
	 * LO..HI of TOPICS not attempted yet (no retry of ID's), recorded by
	 * reference: in time independent of HI - LO.
	 */
	enum store_res (*sbo_dead_range)(struct store_backend *b, int64_t id,
	    const char *address, uint64_t lo, uint64_t hi, const char *topics,
	    const char *reason, int64_t now);
	/* ID's retries become dead letters (if DEAD); its row goes. */
	enum store_res (*sbo_dead_sub_gone)(struct store_backend *b, int64_t id,
	    const char *address, const char *reason, int dead, int64_t now);
	/* REQ_DL_LIST: r_dead, r_ndead, a page from r_after_*; r_next_*. */
	enum store_res (*sbo_dead_list)(struct store_backend *b,
	    struct store_req *req);
	/* REQ_DL_REPLAY: r_replay, r_nreplay, r_count (r_status CONFLICT). */
	enum store_res (*sbo_dead_replay)(struct store_backend *b,
	    struct store_req *req, int64_t now);
	/* REQ_DL_PURGE: r_count. */
	enum store_res (*sbo_dead_purge)(struct store_backend *b,
	    struct store_req *req);
	/*
	 * Retention and dead_letter_max, counted in messages (a range counts
	 * its span): how many went in *n.
	 */
	enum store_res (*sbo_dead_expire)(struct store_backend *b,
	    int64_t before, long *n);
	enum store_res (*sbo_dead_trim)(struct store_backend *b, long keep,
	    long *n);

	/* Maintenance. */
	enum store_res (*sbo_idem_expire)(struct store_backend *b,
	    int64_t before);
	/* A small write that finds out whether writing works again. */
	enum store_res (*sbo_probe)(struct store_backend *b);
	/*
	 * Deletes the messages no one refers to any more, below NEXT_SEQ
	 * (ALL: everywhere, not just where something changed); the bytes of
	 * bodies freed in *freed.
	 */
	enum store_res (*sbo_collect)(struct store_backend *b, int all,
	    uint64_t next_seq, size_t *freed);
	/*
	 * Outside a transaction, once a second: gives space back (FULL: the
	 * disk is full).  1 when the disk has room to take writes again.
	 */
	int (*sbo_tidy)(struct store_backend *b, int full);
	/* The disk filled up: make room to delete (NOW: at once). */
	void (*sbo_full)(struct store_backend *b, int now);

	/*
	 * Restore (before the writer starts): calls FN with every saved
	 * subscriber (REMOVED: those marked removed, with why they left, an
	 * enum sub_end as saved, which may be out of range; else the live
	 * ones, oldest first, with -1) until it returns -1.  -1 on a read
	 * error (logged) or FN's -1.
	 */
	int (*sbo_saved_subs)(struct store_backend *b, int removed,
	    int (*fn)(void *, const struct sub_saved *, int), void *arg);

	/* Readers: a connection of their own, for one other thread. */
	struct store_backend_reader *(*sbo_reader_open)(
	    struct store_backend *b);
	void (*sbo_reader_close)(struct store_backend_reader *r);
	long (*sbo_read_page)(struct store_backend_reader *r, uint64_t lo,
	    uint64_t hi, const char *topics, size_t max, struct msg **out,
	    uint64_t *next);
	struct msg *(*sbo_read_msg)(struct store_backend_reader *r,
	    uint64_t seq);
	long (*sbo_read_retries)(struct store_backend_reader *r, int64_t sub_id,
	    struct store_attempt **out);
};

/* The embedded default (store_sqlite*.c). */
extern const struct store_backend_ops store_sqlite_ops;

#endif

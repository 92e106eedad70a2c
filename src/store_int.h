/* store_int.h: shared by the store's files: op queue, backend interface. */
#ifndef HOOKCAST_STORE_INT_H
#define HOOKCAST_STORE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "config.h"
#include "log.h"
#include "msg.h"
#include "sign.h"
#include "store.h"
#include "subs.h"

/*
 * An impossible state (an unknown op type, a broken invariant): retrying
 * cannot help, and failing the batch would retry it for ever.
 */
#define STORE_IMPOSSIBLE(what, ...) do {				\
	log_error("store: impossible state: " what, __VA_ARGS__);	\
	abort();							\
} while (0)

/* ---- the op queue (store.c) ---------------------------------------------- */

enum op_type {
	OP_REQUEST,	/* a struct store_req */
	OP_SUB_ADD,
	OP_SUB_REMOVE,
	OP_SUB_UPDATE,	/* its topics or secret */
	OP_PROGRESS,
	OP_RETRY,
	OP_RETRY_DONE,
	OP_DEAD,
	OP_DEAD_RANGE,
	OP_SUB_GONE,
};

struct op {
	struct op		*o_next;
	enum op_type		 o_type;
	struct store_req	*o_req;
	struct sub		*o_sub;		/* a reference */
	struct store_attempt	 o_at;		/* sub_id, seq, ... */
	uint64_t		 o_lo, o_hi;
	char			*o_address;
	const char		*o_reason;	/* a literal */
	int			 o_dead;
	/*
	 * OP_SUB_ADD, OP_SUB_UPDATE: the subscriber's topics and secret when
	 * the change was made, under the map's lock, so that what is saved
	 * and what delivery routes by follow the order of changes.
	 * OP_DEAD_RANGE: the topics its messages were routed by.
	 */
	struct topics		*o_topics;
	char			 o_secret[SIGN_SECRET_MAX + 1];
	char			*o_topics_text;
	/*
	 * OP_SUB_ADD, OP_SUB_UPDATE: the subscriber's OP_SUB_REMOVE, which
	 * outlives them (it is queued after them); OP_SUB_REMOVE: whether the
	 * sink took the subscriber, and so is to hear of its changes.
	 */
	struct op		*o_rm;
	int			 o_tracked;
};

/* ---- the backend ------------------------------------------------------- */

/* What a backend operation came to. */
enum store_res {
	SR_OK,
	SR_SKIP,	/* this operation's data was refused: the batch goes on */
	SR_FULL,	/* no space: the batch is tried again */
	SR_FAIL,	/* the backend failed: the batch is tried again */
};

/* What a backend found when it opened. */
struct store_boot {
	uint64_t	 sb_last_seq;	/* the highest sequence any row names */
	size_t		 sb_bytes;	/* bytes of message bodies held */
	char		 sb_where[1100];	/* for logs: a path, an address */
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
	const char	*sbo_name;

	/* Opens (and checks) it for CFG; NULL, logged, when unusable. */
	struct store_backend *(*sbo_open)(const struct config *cfg,
	    struct store_boot *boot);
	/* Folds back and closes what the writer left.  NULL-safe. */
	void	(*sbo_close)(struct store_backend *b);
	/* Limits and windows follow CFG from the next operation on. */
	void	(*sbo_set_config)(struct store_backend *b,
		    const struct config *cfg);
	/* Why the last operation failed. */
	const char *(*sbo_error)(struct store_backend *b);

	enum store_res	(*sbo_begin)(struct store_backend *b);
	/* Also counts the dead letters the transaction added (metrics). */
	enum store_res	(*sbo_commit)(struct store_backend *b);
	void		(*sbo_rollback)(struct store_backend *b);
	/* Whether anything was written since begin. */
	int		(*sbo_wrote)(struct store_backend *b);

	/* REQ_PUBLISH: r_msg numbered SEQ (unless r_key was seen: r_repeat). */
	enum store_res	(*sbo_publish)(struct store_backend *b,
		    struct store_req *req, uint64_t seq, int64_t now);
	/* A new subscriber, owed messages from CURSOR on: its id in *id. */
	enum store_res	(*sbo_sub_add)(struct store_backend *b, struct sub *sub,
		    const struct topics *topics, const char *secret,
		    uint64_t cursor, int64_t *id);
	enum store_res	(*sbo_sub_update)(struct store_backend *b, int64_t id,
		    const struct topics *topics, const char *secret);
	/* Marks it removed, for WHY (its pending work is settled later). */
	enum store_res	(*sbo_sub_remove)(struct store_backend *b, int64_t id,
		    enum sub_end why);
	enum store_res	(*sbo_sub_keepalive)(struct store_backend *b,
		    int64_t id, int64_t keepalive_ms);
	enum store_res	(*sbo_progress)(struct store_backend *b, int64_t id,
		    uint64_t cursor);
	enum store_res	(*sbo_retry_set)(struct store_backend *b,
		    const struct store_attempt *a);
	enum store_res	(*sbo_retry_done)(struct store_backend *b, int64_t id,
		    uint64_t seq);

	/* Dead letters. */
	/* A retry (A) becomes a dead letter for ADDRESS. */
	enum store_res	(*sbo_dead_record)(struct store_backend *b,
		    const struct store_attempt *a, const char *address,
		    const char *reason, int64_t now);
	/* LO..HI of TOPICS not attempted yet (no retry of ID's). */
	enum store_res	(*sbo_dead_range)(struct store_backend *b, int64_t id,
		    const char *address, uint64_t lo, uint64_t hi,
		    const char *topics, const char *reason, int64_t now);
	/* ID's retries become dead letters (if DEAD); its row goes. */
	enum store_res	(*sbo_dead_sub_gone)(struct store_backend *b,
		    int64_t id, const char *address, const char *reason,
		    int dead, int64_t now);
	/* REQ_DL_LIST: r_dead, r_ndead. */
	enum store_res	(*sbo_dead_list)(struct store_backend *b,
		    struct store_req *req);
	/* REQ_DL_REPLAY: r_replay, r_nreplay, r_count (r_status CONFLICT). */
	enum store_res	(*sbo_dead_replay)(struct store_backend *b,
		    struct store_req *req, int64_t now);
	/* REQ_DL_PURGE: r_count. */
	enum store_res	(*sbo_dead_purge)(struct store_backend *b,
		    struct store_req *req);
	/* Retention and dead_letter_max: how many went in *n. */
	enum store_res	(*sbo_dead_expire)(struct store_backend *b,
		    int64_t before, long *n);
	enum store_res	(*sbo_dead_trim)(struct store_backend *b, long keep,
		    long *n);

	/* Maintenance. */
	enum store_res	(*sbo_idem_expire)(struct store_backend *b,
		    int64_t before);
	/* A small write that finds out whether writing works again. */
	enum store_res	(*sbo_probe)(struct store_backend *b);
	/*
	 * Deletes the messages no one refers to any more, below NEXT_SEQ
	 * (ALL: everywhere, not just where something changed); the bytes of
	 * bodies freed in *freed.
	 */
	enum store_res	(*sbo_collect)(struct store_backend *b, int all,
		    uint64_t next_seq, size_t *freed);
	/*
	 * Outside a transaction, once a second: gives space back (FULL: the
	 * disk is full).  1 when the disk has room to take writes again.
	 */
	int		(*sbo_tidy)(struct store_backend *b, int full);
	/* The disk filled up: make room to delete (NOW: at once). */
	void		(*sbo_full)(struct store_backend *b, int now);

	/*
	 * Restore (before the writer starts): calls FN with every saved
	 * subscriber (REMOVED: those marked removed, with why + 1; else the
	 * live ones, oldest first, with 0) until it returns -1.  -1, logged,
	 * on a read error, or FN's -1.
	 */
	int	(*sbo_saved_subs)(struct store_backend *b, int removed,
		    int (*fn)(void *, const struct sub_saved *, int),
		    void *arg);

	/* Readers: a connection of their own, for one other thread. */
	struct store_backend_reader *(*sbo_reader_open)(
		    struct store_backend *b);
	void	(*sbo_reader_close)(struct store_backend_reader *r);
	long	(*sbo_read_page)(struct store_backend_reader *r, uint64_t lo,
		    uint64_t hi, const char *topics, size_t max,
		    struct msg **out, uint64_t *next);
	struct msg *(*sbo_read_msg)(struct store_backend_reader *r,
		    uint64_t seq);
	long	(*sbo_read_retries)(struct store_backend_reader *r,
		    int64_t sub_id, struct store_attempt **out);
};

/* The embedded default (store_sqlite*.c). */
extern const struct store_backend_ops store_sqlite_ops;

/* ---- the neutral part ---------------------------------------------------- */

/* What the writer remembers of a live subscriber, to save its keep-alive. */
struct known {
	struct sub	*k_sub;
	int64_t		 k_saved_ka;
};

struct store {
	const struct store_backend_ops *st_ops;
	struct store_backend	*st_b;
	const struct config	*st_cfg;
	const struct config	*st_cfg_ref;	/* held since a reload, or NULL */
	char			 st_where[1100];	/* for logs */
	pthread_t		 st_thread;
	int			 st_started;
	struct store_sink	 st_sink;
	int			 st_attached;	/* st_sink is to be called */

	pthread_mutex_t		 st_fwd_lock;	/* guards st_attached */
	pthread_mutex_t		 st_q_lock;
	pthread_cond_t		 st_q_cond;	/* work queued, or stopping */
	pthread_cond_t		 st_q_idle;	/* requests_queued fell to 0 */
	struct op		*st_q_head, **st_q_tail;
	long			 st_requests_queued;
	int			 st_closed;	/* no new requests */
	int			 st_stopping;

	atomic_size_t		 st_backlog;	/* bytes of bodies stored */
	atomic_int		 st_full;
	/* Why the last write failed (a static string), NULL: none. */
	_Atomic(const char *)	 st_fault;
	_Atomic int64_t		 st_beat;	/* mono ms: the writer went round */
	_Atomic uint64_t	 st_last_seq;	/* read by store_last_seq */

	/* The writer's own. */
	uint64_t		 st_next_seq;
	int64_t			 st_next_periodic, st_next_sweep;
	int64_t			 st_next_second;
	struct known		*st_known;
	size_t			 st_nknown, st_known_cap;
};

/* store.c */
void store_op_free(struct op *o);
void store_log_error(struct store *st, const char *what, enum store_res res);
void store_writable(struct store *st);

/* store_batch.c: the writer thread. */
void *store_writer(void *st);

/* store_maint.c: every PERIODIC_MS, on the writer thread. */
#define PERIODIC_MS	100
void store_maintain(struct store *st);
/* The subscribers whose keep-alives it saves. */
void store_known_add(struct store *st, struct sub *sub);
void store_known_remove(struct store *st, struct sub *sub);

/* store_restore.c */
int store_restore_subs(struct store *st, struct subs *s);

#endif

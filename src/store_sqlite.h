/* store_sqlite.h: shared by the SQLite backend's files (store_sqlite*.c). */
#ifndef HOOKCAST_STORE_SQLITE_H
#define HOOKCAST_STORE_SQLITE_H

#include <stdint.h>

#include <sqlite3.h>

#include "config.h"
#include "store_backend.h"

enum stmt {
	S_BEGIN,
	S_COMMIT,
	S_ROLLBACK,
	S_SAVEPOINT,
	S_RELEASE,
	S_ROLLBACK_TO,
	S_MSG_INSERT,
	S_SUB_INSERT,
	S_SUB_REMOVE,
	S_SUB_CURSOR,
	S_SUB_KA,
	S_SUB_DELETE,
	S_SUB_LOOKUP,
	S_SUB_UPDATE,
	S_IDEM_GET,
	S_IDEM_SET,
	S_IDEM_EXPIRE,
	S_RETRY_SET,
	S_RETRY_DEL,
	S_RETRY_DEL_SUB,
	S_DEAD_ONE,
	S_DEAD_RANGE,
	S_DEAD_RETRIES,
	S_GC,
	S_GC_GAPS,
	S_FLOOR,
	S_DL_EXPIRE,
	S_DL_TRIM,
	S_DL_TOTAL,
	S_DL_TRIM_LOW,
	S_CUT_TAIL,
	S_CUT_HEAD,
	S_CUT_LOW,
	S_CUT_ALL,
	S_DL_SEQ,
	NSTMTS
};

/* The SQLite backend: one read-write connection, the writer's alone. */
struct store_backend {
	const struct config *sq_cfg;
	char sq_path[1100];
	int sq_lockfd;
	sqlite3 *sq_db;
	sqlite3_stmt *sq_stmt[NSTMTS];
	const char *sq_error;	/* why the last call failed */
	int64_t sq_changes;	/* total changes at begin */
	uint64_t sq_dead_added; /* this transaction's */
	/* Collection starts here: below it nothing became garbage since. */
	uint64_t sq_gc_from;

	char sq_reserve[1100];
	uint64_t sq_reserve_size;
	int sq_reserved; /* the reserve file is there */
};

/* store_sqlite.c */
/* What RC (an SQLite code) comes to, with its reason kept for sbo_error. */
enum store_res sqlite_res(struct store_backend *b, int rc);
/* Resets S for another use and runs it once to completion: the SQLite code. */
int sqlite_step_done(sqlite3_stmt *s);
/* Binds TEXT, or NULL for NULL; with _or_null, "" as NULL too. */
void sqlite_bind_text(sqlite3_stmt *s, int i, const char *text);
void sqlite_bind_text_or_null(sqlite3_stmt *s, int i, const char *text);
int sqlite_exec(sqlite3 *db, const char *text);
int sqlite_query_int(sqlite3 *db, const char *text, int64_t *out);
/* hc_topics_match(subscriber's topics, message's topics), for the queries. */
int sqlite_match_function(sqlite3 *db);

/* store_sqlite_ops.c: publishes, subscribers, cursors, retries. */
enum store_res sqlite_publish(struct store_backend *b, struct store_req *req,
    uint64_t seq, int64_t now);
enum store_res sqlite_publish_batch(struct store_backend *b,
    struct store_pub *p, size_t n, uint64_t seq, int64_t now);
enum store_res sqlite_sub_add(struct store_backend *b, struct sub *sub,
    const struct topics *topics, const char *secret, uint64_t cursor,
    int64_t *id);
enum store_res sqlite_sub_update(struct store_backend *b, int64_t id,
    const struct topics *topics, const char *secret);
enum store_res sqlite_sub_remove(struct store_backend *b, int64_t id,
    enum sub_end why);
enum store_res sqlite_sub_keepalive(struct store_backend *b, int64_t id,
    int64_t keepalive_ms);
enum store_res sqlite_progress(struct store_backend *b, int64_t id,
    uint64_t cursor);
enum store_res sqlite_retry_set(struct store_backend *b,
    const struct store_attempt *a);
enum store_res sqlite_retry_done(struct store_backend *b, int64_t id,
    uint64_t seq);

/* store_sqlite_dead.c: dead letters. */
enum store_res sqlite_dead_record(struct store_backend *b,
    const struct store_attempt *a, const char *address, const char *reason,
    int64_t now);
enum store_res sqlite_dead_range(struct store_backend *b, int64_t id,
    const char *address, uint64_t lo, uint64_t hi, const char *topics,
    const char *reason, int64_t now);
enum store_res sqlite_dead_sub_gone(struct store_backend *b, int64_t id,
    const char *address, const char *reason, int dead, int64_t now);
enum store_res sqlite_dead_list(struct store_backend *b, struct store_req *req);
enum store_res sqlite_dead_replay(struct store_backend *b,
    struct store_req *req, int64_t now);
enum store_res sqlite_dead_purge(struct store_backend *b,
    struct store_req *req);
enum store_res sqlite_dead_expire(struct store_backend *b, int64_t before,
    long *n);
enum store_res sqlite_dead_trim(struct store_backend *b, long keep, long *n);

/* store_sqlite_maint.c: collection, the disk reserve, the WAL. */
void sqlite_reserve_init(struct store_backend *b);
enum store_res sqlite_idem_expire(struct store_backend *b, int64_t before);
enum store_res sqlite_probe(struct store_backend *b);
enum store_res sqlite_collect(struct store_backend *b, int all,
    uint64_t next_seq, size_t *freed);
int sqlite_tidy(struct store_backend *b, int full);
void sqlite_full(struct store_backend *b, int now);

/* store_sqlite_read.c: reading back, on a connection of one's own. */
int sqlite_saved_subs(struct store_backend *b, int removed,
    int (*fn)(void *, const struct sub_saved *, int), void *arg);
struct store_backend_reader *sqlite_reader_open(struct store_backend *b);
void sqlite_reader_close(struct store_backend_reader *r);
long sqlite_read_page(struct store_backend_reader *r, uint64_t lo, uint64_t hi,
    const char *topics, size_t max, struct msg **out, uint64_t *next);
struct msg *sqlite_read_msg(struct store_backend_reader *r, uint64_t seq);
long sqlite_read_retries(struct store_backend_reader *r, int64_t sub_id,
    struct store_attempt **out);

#endif

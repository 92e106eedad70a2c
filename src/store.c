/*
 * store.c: messages, subscribers, retries and dead letters in SQLite.
 *
 * DESIGN
 * One database, DATA_DIR/hookcast.db, in WAL mode.  One thread (the writer)
 * owns the read-write connection.  Everyone else hands it operations through
 * a FIFO under q_lock: the front end's requests (a publish, a barrier, the
 * dead-letter endpoints), the subscriber map's hooks, and the delivery
 * thread's progress, retries and dead letters.  The writer takes whatever
 * has queued up (at most BATCH_MAX operations) and applies it in one
 * transaction: a group commit, so one fsync serves every publish that
 * arrived while the previous one ran.  Only after COMMIT does it answer the
 * requests (their r_done resumes the suspended HTTP connection) and pass
 * messages and subscribers on to the delivery thread, in commit order.
 *
 * Messages are numbered by `seq`.  A subscriber's row holds `cursor`: every
 * message before it is done for that subscriber (delivered, or kept as a
 * retry or dead letter).  A message is deleted once every cursor has passed
 * it and no retry or dead letter refers to it.  A body is stored once, on
 * its own row, however many subscribers it goes to.
 *
 * Lock order: the subscriber map's rwlock, then q_lock (the hooks run under
 * the map's lock); the writer holds q_lock only to take the queue.
 *
 * The delivery thread reads with a connection of its own (store_reader):
 * WAL lets it read committed rows while the writer writes.
 *
 * Health (/readyz): a failed write leaves its SQLite code in `fault`, a
 * full disk sets `full` as well; the writer clears `fault` when a write
 * commits, and while it is set tries a small one every second, so that the
 * store is seen usable again with no traffic.  The writer's loop stamps
 * `beat` each round.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <sqlite3.h>

#include "clock.h"
#include "log.h"
#include "metrics.h"
#include "store.h"
#include "topics.h"

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
	 * and what the delivery thread routes by follow the order of changes.
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

/* What the writer remembers of a live subscriber, to save its keep-alive. */
struct known {
	struct sub	*k_sub;
	int64_t		 k_saved_ka;
};

enum stmt {
	S_BEGIN, S_COMMIT, S_ROLLBACK,
	S_MSG_INSERT,
	S_SUB_INSERT, S_SUB_REMOVE, S_SUB_CURSOR, S_SUB_KA, S_SUB_DELETE,
	S_SUB_LOOKUP, S_SUB_UPDATE,
	S_IDEM_GET, S_IDEM_SET, S_IDEM_EXPIRE,
	S_RETRY_SET, S_RETRY_DEL, S_RETRY_DEL_SUB,
	S_DEAD_ONE, S_DEAD_RANGE, S_DEAD_RETRIES,
	S_GC, S_FLOOR,
	S_DL_EXPIRE, S_DL_TRIM,
	NSTMTS
};

static const char *const sql[NSTMTS] = {
	[S_BEGIN] = "BEGIN IMMEDIATE",
	[S_COMMIT] = "COMMIT",
	[S_ROLLBACK] = "ROLLBACK",
	[S_MSG_INSERT] = "INSERT INTO messages(seq, id, ctype, created, body, "
	    "topics) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	[S_SUB_INSERT] = "INSERT INTO subscribers(address, url, "
	    "registered_at, last_keepalive, cursor, topics, secret) "
	    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
	[S_SUB_UPDATE] = "UPDATE subscribers SET topics = ?2, secret = ?3 "
	    "WHERE id = ?1",
	[S_IDEM_GET] = "SELECT msg_id, subscribers FROM idempotency "
	    "WHERE key = ?1 AND created >= ?2",
	[S_IDEM_SET] = "INSERT OR REPLACE INTO idempotency(key, msg_id, "
	    "subscribers, created) VALUES (?1, ?2, ?3, ?4)",
	[S_IDEM_EXPIRE] = "DELETE FROM idempotency WHERE created < ?1",
	[S_SUB_REMOVE] = "UPDATE subscribers SET removed = ?2 WHERE id = ?1",
	[S_SUB_CURSOR] = "UPDATE subscribers SET cursor = ?2 WHERE id = ?1 "
	    "AND cursor < ?2",
	[S_SUB_KA] = "UPDATE subscribers SET last_keepalive = ?2 WHERE id = ?1",
	[S_SUB_DELETE] = "DELETE FROM subscribers WHERE id = ?1",
	[S_SUB_LOOKUP] = "SELECT id FROM subscribers WHERE address = ?1 AND "
	    "removed = 0",
	[S_RETRY_SET] = "INSERT OR REPLACE INTO retries(sub, seq, attempts, "
	    "first_at, last_at, next_at, last_status, last_error) "
	    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
	[S_RETRY_DEL] = "DELETE FROM retries WHERE sub = ?1 AND seq = ?2",
	[S_RETRY_DEL_SUB] = "DELETE FROM retries WHERE sub = ?1",
	[S_DEAD_ONE] = "INSERT INTO dead_letters(address, seq, msg_id, "
	    "attempts, first_at, last_at, dead_at, last_status, last_error, "
	    "reason) SELECT ?1, seq, id, ?3, ?4, ?5, ?6, ?7, ?8, ?9 "
	    "FROM messages WHERE seq = ?2",
	[S_DEAD_RANGE] = "INSERT INTO dead_letters(address, seq, msg_id, "
	    "attempts, first_at, last_at, dead_at, last_status, last_error, "
	    "reason) SELECT ?1, seq, id, 0, 0, 0, ?4, 0, '', ?5 "
	    "FROM messages WHERE seq BETWEEN ?2 AND ?3 AND seq NOT IN "
	    "(SELECT seq FROM retries WHERE sub = ?6) AND hc_topics_match(?7, "
	    "topics)",
	[S_DEAD_RETRIES] = "INSERT INTO dead_letters(address, seq, msg_id, "
	    "attempts, first_at, last_at, dead_at, last_status, last_error, "
	    "reason) SELECT ?2, r.seq, m.id, r.attempts, r.first_at, r.last_at, "
	    "?3, r.last_status, r.last_error, ?4 FROM retries r "
	    "JOIN messages m ON m.seq = r.seq WHERE r.sub = ?1",
	[S_GC] = "DELETE FROM messages WHERE seq >= ?1 AND seq < ?2 AND "
	    "NOT EXISTS (SELECT 1 FROM retries r WHERE r.seq = messages.seq) "
	    "AND NOT EXISTS (SELECT 1 FROM dead_letters d "
	    "WHERE d.seq = messages.seq) RETURNING length(body)",
	[S_FLOOR] = "SELECT min(cursor) FROM subscribers",
	[S_DL_EXPIRE] = "DELETE FROM dead_letters WHERE dead_at < ?1",
	[S_DL_TRIM] = "DELETE FROM dead_letters WHERE id <= (SELECT id FROM "
	    "dead_letters ORDER BY id DESC LIMIT 1 OFFSET ?1)",
};

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS messages ("
    " seq INTEGER PRIMARY KEY,"
    " id TEXT NOT NULL,"
    " ctype TEXT NOT NULL,"
    " created INTEGER NOT NULL,"
    " body BLOB NOT NULL,"
    " topics TEXT);"
    "CREATE TABLE IF NOT EXISTS subscribers ("
    " id INTEGER PRIMARY KEY,"
    " address TEXT NOT NULL,"
    " url TEXT NOT NULL,"
    " topics TEXT,"
    " registered_at INTEGER NOT NULL,"
    " last_keepalive INTEGER NOT NULL,"
    " cursor INTEGER NOT NULL,"
    " removed INTEGER NOT NULL DEFAULT 0,"
    " secret TEXT);"
    "CREATE INDEX IF NOT EXISTS subscribers_address ON subscribers(address);"
    "CREATE TABLE IF NOT EXISTS retries ("
    " sub INTEGER NOT NULL,"
    " seq INTEGER NOT NULL,"
    " attempts INTEGER NOT NULL,"
    " first_at INTEGER NOT NULL,"
    " last_at INTEGER NOT NULL,"
    " next_at INTEGER NOT NULL,"
    " last_status INTEGER NOT NULL,"
    " last_error TEXT NOT NULL,"
    " PRIMARY KEY (sub, seq)) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS retries_seq ON retries(seq);"
    "CREATE TABLE IF NOT EXISTS dead_letters ("
    " id INTEGER PRIMARY KEY,"
    " address TEXT NOT NULL,"
    " seq INTEGER NOT NULL,"
    " msg_id TEXT NOT NULL,"
    " attempts INTEGER NOT NULL,"
    " first_at INTEGER NOT NULL,"
    " last_at INTEGER NOT NULL,"
    " dead_at INTEGER NOT NULL,"
    " last_status INTEGER NOT NULL,"
    " last_error TEXT NOT NULL,"
    " reason TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS dead_letters_address ON dead_letters(address);"
    "CREATE INDEX IF NOT EXISTS dead_letters_seq ON dead_letters(seq);"
    "CREATE INDEX IF NOT EXISTS dead_letters_msg ON dead_letters(msg_id);"
    "CREATE TABLE IF NOT EXISTS idempotency ("
    " key TEXT PRIMARY KEY,"
    " msg_id TEXT NOT NULL,"
    " subscribers INTEGER NOT NULL,"
    " created INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS idempotency_created ON idempotency(created);";

/* Version 1 (hookcast 0.1 before topics) lacks two columns; the rest is new tables. */
static const char migrate_1[] =
    "ALTER TABLE messages ADD COLUMN topics TEXT;"
    "ALTER TABLE subscribers ADD COLUMN secret TEXT;";

#define SCHEMA_VERSION	2
#define BATCH_MAX	1024		/* operations a transaction */
#define PERIODIC_MS	100		/* garbage collection: small, often */
#define KEEPALIVE_MS	1000		/* keep-alives saved, WAL folded back */
#define SWEEP_MS	60000		/* full collection, dead-letter bounds */
#define RETRY_WAIT_MS	200		/* after a failed commit */
/*
 * Space kept in DATA_DIR/hookcast.reserve: RESERVE_BYTES, or an eighth of
 * a small filesystem.  SQLite needs room to write even a DELETE, and the
 * WAL needs room in the database to be folded back into it, so a disk that
 * filled up could never be emptied again.  The reserve is given back the
 * moment the disk is full and taken again once there is room; the WAL is
 * kept to half the reserve (checkpointed at that size) so that folding it
 * back always fits.
 */
#define RESERVE_BYTES	(4 << 20)

/* The removed column: why a subscriber left (0: it has not). */
static const char *const end_reasons[] = {
	[SUB_DEREGISTERED] = "deregistered",
	[SUB_EVICTED] = "evicted",
	[SUB_GONE] = "gone",
};

struct store {
	const struct config	*cfg;
	const struct config	*cfg_ref;	/* held since a reload, or NULL */
	char			 path[1100];
	int			 lockfd;
	sqlite3			*db;
	sqlite3_stmt		*stmt[NSTMTS];
	pthread_t		 thread;
	int			 started;
	struct store_sink	 sink;
	int			 attached;	/* sink is to be called */

	pthread_mutex_t		 fwd_lock;	/* guards attached */
	pthread_mutex_t		 q_lock;
	pthread_cond_t		 q_cond;	/* work queued, or stopping */
	pthread_cond_t		 q_idle;	/* requests_queued fell to 0 */
	struct op		*q_head, **q_tail;
	long			 requests_queued;
	int			 closed;	/* no new requests */
	int			 stopping;

	char			 reserve[1100];
	uint64_t		 reserve_size;
	int			 reserved;	/* the reserve file is there */
	atomic_size_t		 backlog;	/* bytes of bodies stored */
	atomic_int		 full;
	atomic_int		 fault;		/* the last failed write's code, 0: none */
	_Atomic int64_t		 beat;		/* monotonic ms: the writer went round */
	_Atomic uint64_t	 last_seq;	/* read by store_last_seq */

	/* The writer's own. */
	uint64_t		 next_seq;
	uint64_t		 gc_from;
	int64_t			 next_periodic, next_sweep, next_second;
	uint64_t		 dead_added;	/* dead letters in this transaction */
	struct known		*known;
	size_t			 nknown, known_cap;
};

/* ---- opening ------------------------------------------------------------- */

static int
exec_sql(sqlite3 *db, const char *text)
{
	char lv[LOG_VALUE_MAX], ls[LOG_VALUE_MAX], sqltext[61];
	char *err = NULL;

	if (sqlite3_exec(db, text, NULL, NULL, &err) != SQLITE_OK) {
		snprintf(sqltext, sizeof(sqltext), "%s", text);
		log_error("database statement failed", "error=%s sql=%s",
		    log_value(lv, sizeof(lv), err != NULL ? err :
		    sqlite3_errmsg(db)), log_value(ls, sizeof(ls), sqltext));
		sqlite3_free(err);
		return -1;
	}
	return 0;
}

static int
query_int(sqlite3 *db, const char *text, int64_t *out)
{
	sqlite3_stmt *s;
	int rc;

	if (sqlite3_prepare_v2(db, text, -1, &s, NULL) != SQLITE_OK)
		return -1;
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

/* The directory exists (one level is created), is ours alone, and is writable. */
static int
open_dir(struct store *st)
{
	char lp[LOG_VALUE_MAX];
	const char *dir = st->cfg->data_dir;
	char lock[1100];

	if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
		log_error("cannot use data_dir", "path=%s error=\"%s\"",
		    log_value(lp, sizeof(lp), dir),
		    strerror(errno));
		return -1;
	}
	snprintf(lock, sizeof(lock), "%s/hookcast.lock", dir);
	if ((st->lockfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) == -1) {
		log_error("cannot use data_dir", "path=%s error=\"%s\"",
		    log_value(lp, sizeof(lp), dir),
		    strerror(errno));
		return -1;
	}
	if (flock(st->lockfd, LOCK_EX | LOCK_NB) == -1) {
		log_error("cannot use data_dir", "path=%s error=\"%s\"",
		    log_value(lp, sizeof(lp), dir),
		    errno == EWOULDBLOCK ? "in use by another hookcast" :
		    strerror(errno));
		return -1;
	}
	return 0;
}

/* The reserve's size for this filesystem, and the WAL limit that goes with it. */
static void
reserve_size(struct store *st)
{
	struct statvfs vfs;
	char pragma[96];
	uint64_t size = RESERVE_BYTES;
	long pages;

	if (statvfs(st->cfg->data_dir, &vfs) == 0 &&
	    (uint64_t)vfs.f_blocks * vfs.f_frsize / 8 < size)
		size = (uint64_t)vfs.f_blocks * vfs.f_frsize / 8;
	st->reserve_size = size;
	pages = (long)(size / 2 / 4096);
	if (pages < 8)
		pages = 8;
	snprintf(pragma, sizeof(pragma), "PRAGMA wal_autocheckpoint = %ld",
	    pages);
	exec_sql(st->db, pragma);
	snprintf(pragma, sizeof(pragma), "PRAGMA journal_size_limit = %llu",
	    (unsigned long long)size / 2);
	exec_sql(st->db, pragma);
}

/* Takes the reserve when that much is free beyond it. */
static void
reserve_take(struct store *st)
{
	struct statvfs vfs;
	int fd;

	if (st->reserved || statvfs(st->cfg->data_dir, &vfs) == -1 ||
	    (uint64_t)vfs.f_bavail * vfs.f_frsize < 2 * st->reserve_size)
		return;
	if ((fd = open(st->reserve, O_WRONLY | O_CREAT | O_CLOEXEC, 0600)) ==
	    -1)
		return;
	if (posix_fallocate(fd, 0, (off_t)st->reserve_size) == 0)
		st->reserved = 1;
	else
		unlink(st->reserve);
	close(fd);
}

static void
reserve_release(struct store *st)
{
	char lp[LOG_VALUE_MAX];

	if (!st->reserved)
		return;
	st->reserved = 0;
	if (unlink(st->reserve) == 0)
		log_warnx("disk full: reserve released so that deliveries can "
		    "make room", "path=%s",
		    log_value(lp, sizeof(lp), st->reserve));
}

/* hc_topics_match(subscriber's topics, message's topics), for the queries. */
static void
sql_topics_match(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	(void)argc;
	sqlite3_result_int(ctx, topics_match_text(
	    (const char *)sqlite3_value_text(argv[0]),
	    (const char *)sqlite3_value_text(argv[1])));
}

static int
match_function(sqlite3 *db)
{
	char lv[LOG_VALUE_MAX];

	if (sqlite3_create_function(db, "hc_topics_match", 2, SQLITE_UTF8 |
	    SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS, NULL, sql_topics_match,
	    NULL, NULL) != SQLITE_OK) {
		log_error("cannot open store", "error=%s",
		    log_value(lv, sizeof(lv), sqlite3_errmsg(db)));
		return -1;
	}
	return 0;
}

static int
open_db(struct store *st)
{
	char lp[LOG_VALUE_MAX], lv[LOG_VALUE_MAX], corrupt[160];
	static const char *const sync_pragma[] = {
		[DURABILITY_OFF] = "PRAGMA synchronous = OFF",
		[DURABILITY_NORMAL] = "PRAGMA synchronous = NORMAL",
		[DURABILITY_FULL] = "PRAGMA synchronous = FULL",
	};
	int64_t version = 0, tables = 0, ours = 0;
	const char *why;
	int rc;

	rc = sqlite3_open_v2(st->path, &st->db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK)
		goto fail;
	sqlite3_busy_timeout(st->db, 5000);
	sqlite3_extended_result_codes(st->db, 1);
	/*
	 * Everything is checked before anything is written, so that a file
	 * refused is left exactly as it was.  The first read of the header:
	 * a file that is not a database fails here.
	 */
	if (query_int(st->db, "PRAGMA user_version", &version) == -1 ||
	    query_int(st->db, "SELECT count(*) FROM sqlite_schema", &tables) ==
	    -1 || query_int(st->db, "SELECT count(*) FROM sqlite_schema WHERE "
	    "name = 'messages'", &ours) == -1)
		goto fail_msg;
	if ((tables > 0 && (ours == 0 || version == 0)) ||
	    version > SCHEMA_VERSION) {
		log_error("cannot open store", "path=%s error=\"%s (left as it "
		    "is)\"", log_value(lp, sizeof(lp), st->path),
		    tables > 0 && (ours == 0 || version == 0) ?
		    "not a hookcast database" : "written by a newer hookcast");
		return -1;
	}
	/* A damaged page anywhere is found now, not in the middle of a delivery. */
	{
		sqlite3_stmt *s;
		const unsigned char *res = NULL;

		if (sqlite3_prepare_v2(st->db, "PRAGMA quick_check(1)", -1, &s,
		    NULL) != SQLITE_OK)
			goto fail_msg;
		if (sqlite3_step(s) == SQLITE_ROW)
			res = sqlite3_column_text(s, 0);
		if (res == NULL || strcmp((const char *)res, "ok") != 0) {
			snprintf(corrupt, sizeof(corrupt), "database is "
			    "corrupt: %.100s (left as it is)", res != NULL ?
			    (const char *)res : sqlite3_errmsg(st->db));
			log_error("cannot open store", "path=%s error=%s",
			    log_value(lp, sizeof(lp), st->path),
			    log_value(lv, sizeof(lv), corrupt));
			sqlite3_finalize(s);
			return -1;
		}
		sqlite3_finalize(s);
	}
	/*
	 * Incremental vacuum (it only takes effect on a new database, before
	 * anything else writes it): the pages a drained backlog leaves free
	 * can be given back to the filesystem.
	 */
	if ((rc = sqlite3_exec(st->db, "PRAGMA auto_vacuum = INCREMENTAL",
	    NULL, NULL, NULL)) != SQLITE_OK ||
	    (rc = sqlite3_exec(st->db, "PRAGMA journal_mode = WAL", NULL, NULL,
	    NULL)) != SQLITE_OK)
		goto fail;
	/* Zeroing freed pages would write every deleted body twice. */
	if (exec_sql(st->db, "PRAGMA secure_delete = OFF") == -1 ||
	    exec_sql(st->db, sync_pragma[st->cfg->durability]) == -1 ||
	    exec_sql(st->db, "PRAGMA foreign_keys = OFF") == -1 ||
	    exec_sql(st->db, "BEGIN") == -1 ||
	    (version == 1 && exec_sql(st->db, migrate_1) == -1) ||
	    exec_sql(st->db, schema) == -1 ||
	    exec_sql(st->db, "PRAGMA user_version = 2") == -1 ||
	    exec_sql(st->db, "COMMIT") == -1 || match_function(st->db) == -1)
		return -1;
	if (version == 1)
		log_info("store upgraded", "path=%s from=1 to=%d",
		    log_value(lp, sizeof(lp), st->path), SCHEMA_VERSION);
	for (int i = 0; i < NSTMTS; i++)
		if (sqlite3_prepare_v3(st->db, sql[i], -1,
		    SQLITE_PREPARE_PERSISTENT, &st->stmt[i], NULL) != SQLITE_OK) {
			log_error("cannot open store", "path=%s error=%s",
			    log_value(lp, sizeof(lp), st->path),
			    log_value(lv, sizeof(lv), sqlite3_errmsg(st->db)));
			return -1;
		}
	return 0;

fail_msg:
	rc = sqlite3_errcode(st->db);
fail:
	why = st->db != NULL ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc);
	log_error("cannot open store", "path=%s error=%s",
	    log_value(lp, sizeof(lp), st->path), log_value(lv, sizeof(lv),
	    (rc & 0xff) == SQLITE_NOTADB || (rc & 0xff) == SQLITE_CORRUPT ?
	    "not a hookcast database, or corrupt (left as it is)" : why));
	return -1;
}

static void
store_free(struct store *st)
{
	if (st == NULL)
		return;
	for (int i = 0; i < NSTMTS; i++)
		sqlite3_finalize(st->stmt[i]);
	if (st->db != NULL)
		sqlite3_close(st->db);
	if (st->lockfd >= 0)
		close(st->lockfd);
	for (size_t i = 0; i < st->nknown; i++)
		sub_unref(st->known[i].k_sub);
	free(st->known);
	config_release(st->cfg_ref);
	pthread_mutex_destroy(&st->q_lock);
	pthread_mutex_destroy(&st->fwd_lock);
	pthread_cond_destroy(&st->q_cond);
	pthread_cond_destroy(&st->q_idle);
	free(st);
}

struct store *
store_open(const struct config *cfg)
{
	char lp[LOG_VALUE_MAX], lv[LOG_VALUE_MAX];
	struct store *st;
	int64_t last = 0, bytes = 0;

	if ((st = calloc(1, sizeof(*st))) == NULL)
		return NULL;
	st->cfg = cfg;
	st->lockfd = -1;
	st->q_tail = &st->q_head;
	pthread_mutex_init(&st->q_lock, NULL);
	pthread_mutex_init(&st->fwd_lock, NULL);
	pthread_cond_init(&st->q_cond, NULL);
	pthread_cond_init(&st->q_idle, NULL);
	snprintf(st->path, sizeof(st->path), "%s/hookcast.db", cfg->data_dir);
	if (open_dir(st) == -1 || open_db(st) == -1)
		goto fail;
	snprintf(st->reserve, sizeof(st->reserve), "%s/hookcast.reserve",
	    cfg->data_dir);
	reserve_size(st);
	reserve_take(st);
	/*
	 * Numbers are never handed out twice: a clean stop may have collected
	 * every message, but cursors, retries and dead letters still name the
	 * numbers they have seen.
	 */
	if (query_int(st->db, "SELECT max(coalesce((SELECT max(seq) FROM "
	    "messages), 0), coalesce((SELECT max(cursor) - 1 FROM subscribers), "
	    "0), coalesce((SELECT max(seq) FROM retries), 0), coalesce((SELECT "
	    "max(seq) FROM dead_letters), 0))", &last) == -1 ||
	    query_int(st->db, "SELECT total(length(body)) FROM messages",
	    &bytes) == -1) {
		log_error("cannot open store", "path=%s error=%s",
		    log_value(lp, sizeof(lp), st->path),
		    log_value(lv, sizeof(lv), sqlite3_errmsg(st->db)));
		goto fail;
	}
	st->next_seq = (uint64_t)last + 1;
	atomic_store(&st->last_seq, (uint64_t)last);
	atomic_store(&st->backlog, (size_t)bytes);
	log_info("store open", "path=%s messages_bytes=%lld last_seq=%lld",
	    log_value(lp, sizeof(lp), st->path), (long long)bytes,
	    (long long)last);
	return st;

fail:
	store_free(st);
	return NULL;
}

/* ---- the queue ----------------------------------------------------------- */

static void
enqueue(struct store *st, struct op *o)
{
	o->o_next = NULL;
	pthread_mutex_lock(&st->q_lock);
	*st->q_tail = o;
	st->q_tail = &o->o_next;
	pthread_cond_signal(&st->q_cond);
	pthread_mutex_unlock(&st->q_lock);
}

/*
 * An operation of TYPE about message SEQ for subscriber SUB_ID, with a copy
 * of ADDRESS (may be NULL).  NULL, logged, when out of memory: the delivery
 * thread's reports are then lost (a restart resends, at least once).
 */
static struct op *
op_new(enum op_type type, int64_t sub_id, uint64_t seq, const char *address)
{
	struct op *o = calloc(1, sizeof(*o));

	if (o != NULL && address != NULL &&
	    (o->o_address = strdup(address)) == NULL) {
		free(o);
		o = NULL;
	}
	if (o == NULL) {
		log_error("store operation lost", "reason=nomem type=%d",
		    (int)type);
		return NULL;
	}
	o->o_type = type;
	o->o_at.sub_id = sub_id;
	o->o_at.seq = seq;
	return o;
}

static void
op_free(struct op *o)
{
	sub_unref(o->o_sub);
	free(o->o_address);
	topics_unref(o->o_topics);
	free(o->o_topics_text);
	explicit_bzero(o->o_secret, sizeof(o->o_secret));
	free(o);
}

/* The subscriber's topics and secret now (the map's lock is held). */
static void
op_snapshot(struct op *o, struct sub *sub)
{
	o->o_topics = sub_topics(sub);
	sub_get_secret(sub, o->o_secret);
}

int
store_submit(struct store *st, struct store_req *req)
{
	struct op *o;

	if ((o = calloc(1, sizeof(*o))) == NULL)
		return -1;
	o->o_type = OP_REQUEST;
	o->o_req = req;
	req->r_status = STORE_OK;
	pthread_mutex_lock(&st->q_lock);
	if (st->closed) {
		pthread_mutex_unlock(&st->q_lock);
		free(o);
		return -1;
	}
	st->requests_queued++;
	*st->q_tail = o;
	st->q_tail = &o->o_next;
	pthread_cond_signal(&st->q_cond);
	pthread_mutex_unlock(&st->q_lock);
	return 0;
}

int
store_on_add(struct sub *sub, void *arg)
{
	struct store *st = arg;
	struct op *add, *rm;

	/* Both now, so that the removal can never fail for want of memory. */
	if ((add = calloc(1, sizeof(*add))) == NULL)
		return -1;
	if ((rm = calloc(1, sizeof(*rm))) == NULL) {
		free(add);
		return -1;
	}
	add->o_type = OP_SUB_ADD;
	add->o_sub = sub_ref(sub);
	op_snapshot(add, sub);
	rm->o_type = OP_SUB_REMOVE;
	rm->o_sub = sub_ref(sub);
	add->o_rm = rm;
	sub_set_store_state(sub, rm);
	enqueue(st, add);
	return 0;
}

int
store_on_change(struct sub *sub, void *arg)
{
	struct op *o;

	if ((o = calloc(1, sizeof(*o))) == NULL)
		return -1;
	o->o_type = OP_SUB_UPDATE;
	o->o_sub = sub_ref(sub);
	o->o_rm = sub_store_state(sub);		/* in the map: it has one */
	op_snapshot(o, sub);
	enqueue(arg, o);
	return 0;
}

void
store_on_remove(struct sub *sub, void *arg)
{
	struct op *rm = sub_store_state(sub);

	sub_set_store_state(sub, NULL);
	enqueue(arg, rm);
}

void
store_progress(struct store *st, int64_t sub_id, uint64_t cursor)
{
	struct op *o;

	if ((o = op_new(OP_PROGRESS, sub_id, cursor, NULL)) != NULL)
		enqueue(st, o);
}

void
store_retry(struct store *st, const struct store_attempt *a)
{
	struct op *o;

	if ((o = op_new(OP_RETRY, a->sub_id, a->seq, NULL)) == NULL)
		return;
	o->o_at = *a;
	enqueue(st, o);
}

void
store_retry_done(struct store *st, int64_t sub_id, uint64_t seq)
{
	struct op *o;

	if ((o = op_new(OP_RETRY_DONE, sub_id, seq, NULL)) != NULL)
		enqueue(st, o);
}

void
store_dead(struct store *st, const struct store_attempt *a,
    const char *address, const char *reason)
{
	struct op *o;

	if ((o = op_new(OP_DEAD, a->sub_id, a->seq, address)) == NULL)
		return;
	o->o_at = *a;
	o->o_reason = reason;
	enqueue(st, o);
}

void
store_dead_range(struct store *st, int64_t sub_id, const char *address,
    uint64_t lo, uint64_t hi, const char *topics, const char *reason)
{
	char la[LOG_VALUE_MAX];
	struct op *o;

	if (lo > hi || (o = op_new(OP_DEAD_RANGE, sub_id, 0, address)) == NULL)
		return;
	if (topics != NULL && *topics != '\0' &&
	    (o->o_topics_text = strdup(topics)) == NULL) {
		/* Every message of the range then: more, never fewer. */
		log_error("dead letters not filtered by topic", "address=%s "
		    "reason=nomem", log_value(la, sizeof(la), address));
	}
	o->o_lo = lo;
	o->o_hi = hi;
	o->o_reason = reason;
	enqueue(st, o);
}

void
store_sub_gone(struct store *st, int64_t sub_id, const char *address,
    const char *reason, int dead)
{
	struct op *o;

	if ((o = op_new(OP_SUB_GONE, sub_id, 0, address)) == NULL)
		return;
	o->o_reason = reason;
	o->o_dead = dead;
	enqueue(st, o);
}

size_t
store_backlog_bytes(const struct store *st)
{
	return atomic_load(&((struct store *)(uintptr_t)st)->backlog);
}

int
store_disk_full(const struct store *st)
{
	return atomic_load(&((struct store *)(uintptr_t)st)->full);
}

int
store_health(struct store *st, char *why, size_t len)
{
	int closed, fault;

	pthread_mutex_lock(&st->q_lock);
	closed = st->closed;
	pthread_mutex_unlock(&st->q_lock);
	if (closed)
		snprintf(why, len, "closed (shutting down)");
	else if (atomic_load(&st->full))
		snprintf(why, len, "disk full");
	else if ((fault = atomic_load(&st->fault)) != 0)
		snprintf(why, len, "writes failing: %s", sqlite3_errstr(fault));
	else
		return 0;
	return -1;
}

int64_t
store_heartbeat(const struct store *st)
{
	return atomic_load_explicit(&((struct store *)(uintptr_t)st)->beat,
	    memory_order_relaxed);
}

uint64_t
store_last_seq(const struct store *st)
{
	return atomic_load(&((struct store *)(uintptr_t)st)->last_seq);
}

/* ---- the writer ---------------------------------------------------------- */

/* Resets S for another use and runs it once to completion: the SQLite code. */
static int
step_done(sqlite3_stmt *s)
{
	int rc = sqlite3_step(s);

	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

static void
bind_text(sqlite3_stmt *s, int i, const char *text)
{
	if (text != NULL)
		sqlite3_bind_text(s, i, text, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(s, i);
}

static void
known_add(struct store *st, struct sub *sub)
{
	if (st->nknown == st->known_cap) {
		size_t n = st->known_cap ? st->known_cap * 2 : 64;
		struct known *v = realloc(st->known, n * sizeof(*v));

		if (v == NULL)
			return;		/* its keep-alives are saved no more */
		st->known = v;
		st->known_cap = n;
	}
	st->known[st->nknown].k_sub = sub_ref(sub);
	st->known[st->nknown++].k_saved_ka = sub_keepalive_ms(sub);
}

static void
known_remove(struct store *st, struct sub *sub)
{
	for (size_t i = 0; i < st->nknown; i++)
		if (st->known[i].k_sub == sub) {
			sub_unref(sub);
			st->known[i] = st->known[--st->nknown];
			return;
		}
}

/*
 * A publish whose Idempotency-Key was seen within idempotency_window
 * commits nothing and answers with the first message's id.  Keys are looked
 * up here, on the one writer, so two publishers racing with the same key
 * are put in order: the second sees the first.
 */
static int
apply_publish(struct store *st, struct store_req *req, int64_t now)
{
	sqlite3_stmt *s = st->stmt[S_MSG_INSERT];
	struct msg *m = req->r_msg;
	const char *topics = topics_text(msg_topics(m));
	int rc;

	req->r_repeat = 0;
	if (req->r_key != NULL) {
		sqlite3_stmt *g = st->stmt[S_IDEM_GET];

		sqlite3_bind_text(g, 1, req->r_key, -1, SQLITE_STATIC);
		sqlite3_bind_int64(g, 2, now - st->cfg->idempotency_window *
		    1000);
		if ((rc = sqlite3_step(g)) == SQLITE_ROW) {
			req->r_repeat = 1;
			snprintf(req->r_first, sizeof(req->r_first), "%s",
			    (const char *)sqlite3_column_text(g, 0));
			req->r_fanout = (long)sqlite3_column_int64(g, 1);
		}
		sqlite3_reset(g);
		if (rc != SQLITE_ROW && rc != SQLITE_DONE)
			return rc;
		if (req->r_repeat)
			return SQLITE_OK;
	}
	msg_set_seq(m, st->next_seq);
	msg_set_created(m, now);
	sqlite3_bind_int64(s, 1, (sqlite3_int64)st->next_seq);
	sqlite3_bind_text(s, 2, msg_id(m), -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, msg_ctype(m), -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 4, now);
	sqlite3_bind_blob64(s, 5, msg_body(m), msg_len(m), SQLITE_STATIC);
	if (*topics != '\0')
		sqlite3_bind_text(s, 6, topics, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(s, 6);
	st->next_seq++;
	if ((rc = step_done(s)) != SQLITE_OK || req->r_key == NULL)
		return rc;
	s = st->stmt[S_IDEM_SET];
	sqlite3_bind_text(s, 1, req->r_key, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, msg_id(m), -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, req->r_fanout);
	sqlite3_bind_int64(s, 4, now);
	return step_done(s);
}

/* Binds TEXT, or NULL for an empty one. */
static void
bind_text_or_null(sqlite3_stmt *s, int i, const char *text)
{
	if (text != NULL && *text != '\0')
		sqlite3_bind_text(s, i, text, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(s, i);
}

/* Saves the topics and secret O carries with statement S's ?A, ?A+1. */
static void
bind_sub_opts(sqlite3_stmt *s, int a, const struct op *o)
{
	bind_text_or_null(s, a, topics_text(o->o_topics));
	bind_text_or_null(s, a + 1, o->o_secret);
}

/* Appends one dead letter's JSON or text form to OUT. */
static int
render_dead(sqlite3_stmt *s, int json, cJSON *arr, char **buf, size_t *len,
    size_t *cap)
{
	char dead[40], first[40], last[40], line[1200];
	const char *id = (const char *)sqlite3_column_text(s, 0);
	const char *address = (const char *)sqlite3_column_text(s, 1);
	int attempts = sqlite3_column_int(s, 2);
	int64_t first_at = sqlite3_column_int64(s, 3);
	int64_t last_at = sqlite3_column_int64(s, 4);
	int64_t dead_at = sqlite3_column_int64(s, 5);
	long status = (long)sqlite3_column_int64(s, 6);
	const char *error = (const char *)sqlite3_column_text(s, 7);
	const char *reason = (const char *)sqlite3_column_text(s, 8);
	int n;

	clock_rfc3339(dead_at, dead);
	if (json) {
		cJSON *o = cJSON_CreateObject();

		if (o == NULL || !cJSON_AddItemToArray(arr, o))
			return -1;
		clock_rfc3339(first_at, first);
		clock_rfc3339(last_at, last);
		if (cJSON_AddStringToObject(o, "id", id) == NULL ||
		    cJSON_AddStringToObject(o, "address", address) == NULL ||
		    cJSON_AddNumberToObject(o, "attempts", attempts) == NULL ||
		    cJSON_AddNumberToObject(o, "last_status", status) == NULL ||
		    cJSON_AddStringToObject(o, "last_error", error) == NULL ||
		    (first_at ? cJSON_AddStringToObject(o, "first_attempt",
		    first) : cJSON_AddNullToObject(o, "first_attempt")) == NULL ||
		    (last_at ? cJSON_AddStringToObject(o, "last_attempt",
		    last) : cJSON_AddNullToObject(o, "last_attempt")) == NULL ||
		    cJSON_AddStringToObject(o, "dead_at", dead) == NULL ||
		    cJSON_AddStringToObject(o, "reason", reason) == NULL)
			return -1;
		return 0;
	}
	n = snprintf(line, sizeof(line), "%s  %s  attempts=%d  last=\"%s\"  "
	    "dead=%s  reason=%s\n", id, address, attempts,
	    *error ? error : "-", dead, reason);
	if (n < 0)
		return -1;
	if ((size_t)n >= sizeof(line))
		n = sizeof(line) - 1;
	if (*len + (size_t)n + 1 > *cap) {
		size_t ncap = *cap ? *cap * 2 : 4096;
		char *p;

		while (ncap < *len + (size_t)n + 1)
			ncap *= 2;
		if ((p = realloc(*buf, ncap)) == NULL)
			return -1;
		*buf = p;
		*cap = ncap;
	}
	memcpy(*buf + *len, line, (size_t)n + 1);
	*len += (size_t)n;
	return 0;
}

static const char dl_filter[] = " WHERE (?1 IS NULL OR d.address = ?1) AND "
    "(?2 IS NULL OR d.msg_id = ?2)";

static int
apply_dl_list(struct store *st, struct store_req *req)
{
	char q[512];
	sqlite3_stmt *s;
	cJSON *root = NULL, *arr = NULL;
	char *buf = NULL;
	size_t len = 0, cap = 0;
	int rc;

	snprintf(q, sizeof(q), "SELECT d.msg_id, d.address, d.attempts, "
	    "d.first_at, d.last_at, d.dead_at, d.last_status, d.last_error, "
	    "d.reason FROM dead_letters d%s ORDER BY d.id LIMIT ?3", dl_filter);
	if ((rc = sqlite3_prepare_v2(st->db, q, -1, &s, NULL)) != SQLITE_OK)
		return rc;
	bind_text(s, 1, req->r_address);
	bind_text(s, 2, req->r_id);
	sqlite3_bind_int64(s, 3, req->r_limit);
	if (req->r_json && ((root = cJSON_CreateObject()) == NULL ||
	    (arr = cJSON_AddArrayToObject(root, "dead_letters")) == NULL))
		goto nomem;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		if (render_dead(s, req->r_json, arr, &buf, &len, &cap) == -1)
			goto nomem;
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE) {
		cJSON_Delete(root);
		free(buf);
		return rc;
	}
	if (req->r_json) {
		if ((buf = cJSON_PrintUnformatted(root)) == NULL) {
			cJSON_Delete(root);
			req->r_status = STORE_ERROR;
			return SQLITE_OK;
		}
		len = strlen(buf);
		cJSON_Delete(root);
	} else if (buf == NULL && (buf = strdup("")) == NULL) {
		req->r_status = STORE_ERROR;
		return SQLITE_OK;
	}
	req->r_body = buf;
	req->r_len = len;
	return SQLITE_OK;

nomem:
	sqlite3_finalize(s);
	cJSON_Delete(root);
	free(buf);
	req->r_status = STORE_ERROR;
	return SQLITE_OK;
}

static int
apply_dl_purge(struct store *st, struct store_req *req)
{
	char q[256];
	sqlite3_stmt *s;
	int rc;

	snprintf(q, sizeof(q), "DELETE FROM dead_letters AS d%s", dl_filter);
	if ((rc = sqlite3_prepare_v2(st->db, q, -1, &s, NULL)) != SQLITE_OK)
		return rc;
	bind_text(s, 1, req->r_address);
	bind_text(s, 2, req->r_id);
	rc = sqlite3_step(s);
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE)
		return rc;
	req->r_count = sqlite3_changes(st->db);
	st->gc_from = 0;	/* their messages may go now */
	return SQLITE_OK;
}

/*
 * Dead letters back into retries for the subscriber registered now at their
 * address.  The pairs to hand to delivery after the commit are kept in the
 * request's r_replay.
 */
static int
apply_dl_replay(struct store *st, struct store_req *req, int64_t now)
{
	char q[512];
	sqlite3_stmt *s, *ins = st->stmt[S_RETRY_SET];
	struct dl_replay {
		int64_t		 dead_id;
		int64_t		 sub_id;
		uint64_t	 seq;
	} *items = NULL;
	struct store_replay *out = NULL;
	size_t n = 0, cap = 0;
	int rc;

	if (req->r_address != NULL) {
		sqlite3_stmt *l = st->stmt[S_SUB_LOOKUP];

		sqlite3_bind_text(l, 1, req->r_address, -1, SQLITE_STATIC);
		rc = sqlite3_step(l);
		sqlite3_reset(l);
		sqlite3_clear_bindings(l);
		if (rc == SQLITE_DONE) {
			req->r_status = STORE_CONFLICT;
			return SQLITE_OK;
		}
		if (rc != SQLITE_ROW)
			return rc;
	}
	snprintf(q, sizeof(q), "SELECT d.id, d.seq, s.id FROM dead_letters d "
	    "JOIN subscribers s ON s.address = d.address AND s.removed = 0%s "
	    "ORDER BY s.id, d.seq, d.id", dl_filter);
	if ((rc = sqlite3_prepare_v2(st->db, q, -1, &s, NULL)) != SQLITE_OK)
		return rc;
	bind_text(s, 1, req->r_address);
	bind_text(s, 2, req->r_id);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			struct dl_replay *v = realloc(items,
			    ncap * sizeof(*v));

			if (v == NULL) {
				rc = SQLITE_NOMEM;
				break;
			}
			items = v;
			cap = ncap;
		}
		items[n].dead_id = sqlite3_column_int64(s, 0);
		items[n].seq = (uint64_t)sqlite3_column_int64(s, 1);
		items[n++].sub_id = sqlite3_column_int64(s, 2);
	}
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE) {
		free(items);
		return rc;
	}
	rc = SQLITE_OK;
	for (size_t i = 0; i < n; i++) {
		char del[64];

		sqlite3_bind_int64(ins, 1, items[i].sub_id);
		sqlite3_bind_int64(ins, 2, (sqlite3_int64)items[i].seq);
		sqlite3_bind_int(ins, 3, 0);
		sqlite3_bind_int64(ins, 4, now);
		sqlite3_bind_int64(ins, 5, 0);
		sqlite3_bind_int64(ins, 6, now);
		sqlite3_bind_int(ins, 7, 0);
		sqlite3_bind_text(ins, 8, "", -1, SQLITE_STATIC);
		if ((rc = step_done(ins)) != SQLITE_OK)
			break;
		snprintf(del, sizeof(del), "DELETE FROM dead_letters WHERE "
		    "id = %lld", (long long)items[i].dead_id);
		if ((rc = sqlite3_exec(st->db, del, NULL, NULL, NULL)) !=
		    SQLITE_OK)
			break;
	}
	if (rc != SQLITE_OK) {
		free(items);
		return rc;
	}
	/* Two dead letters of one message for one subscriber: one delivery. */
	{
		size_t k = 0;

		for (size_t i = 0; i < n; i++)
			if (k == 0 || items[k - 1].sub_id != items[i].sub_id ||
			    items[k - 1].seq != items[i].seq)
				items[k++] = items[i];
		n = k;
	}
	if (n > 0 && (out = calloc(n, sizeof(*out))) == NULL) {
		free(items);
		return SQLITE_NOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		out[i].rp_sub_id = items[i].sub_id;
		out[i].rp_seq = items[i].seq;
	}
	free(items);
	req->r_count = (long)n;
	req->r_replay = n > 0 ? out : NULL;
	req->r_nreplay = n;
	return SQLITE_OK;
}

static int
apply_dead(struct store *st, struct op *o, int64_t now)
{
	sqlite3_stmt *s = st->stmt[S_DEAD_ONE];
	int rc;

	if (st->cfg->dead_letter_max > 0) {
		sqlite3_bind_text(s, 1, o->o_address, -1, SQLITE_STATIC);
		sqlite3_bind_int64(s, 2, (sqlite3_int64)o->o_at.seq);
		sqlite3_bind_int(s, 3, o->o_at.attempts);
		sqlite3_bind_int64(s, 4, o->o_at.first_at);
		sqlite3_bind_int64(s, 5, o->o_at.last_at);
		sqlite3_bind_int64(s, 6, now);
		sqlite3_bind_int64(s, 7, o->o_at.status);
		sqlite3_bind_text(s, 8, o->o_at.error, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 9, o->o_reason, -1, SQLITE_STATIC);
		if ((rc = step_done(s)) != SQLITE_OK)
			return rc;
		st->dead_added += (uint64_t)sqlite3_changes(st->db);
	}
	s = st->stmt[S_RETRY_DEL];
	sqlite3_bind_int64(s, 1, o->o_at.sub_id);
	sqlite3_bind_int64(s, 2, (sqlite3_int64)o->o_at.seq);
	if (o->o_at.seq < st->gc_from)
		st->gc_from = o->o_at.seq;
	return step_done(s);
}

static int
apply_sub_gone(struct store *st, int64_t sub_id, const char *address,
    const char *reason, int dead, int64_t now)
{
	sqlite3_stmt *s;
	int rc;

	if (dead && st->cfg->dead_letter_max > 0) {
		s = st->stmt[S_DEAD_RETRIES];
		sqlite3_bind_int64(s, 1, sub_id);
		sqlite3_bind_text(s, 2, address, -1, SQLITE_STATIC);
		sqlite3_bind_int64(s, 3, now);
		sqlite3_bind_text(s, 4, reason, -1, SQLITE_STATIC);
		if ((rc = step_done(s)) != SQLITE_OK)
			return rc;
		st->dead_added += (uint64_t)sqlite3_changes(st->db);
	}
	s = st->stmt[S_RETRY_DEL_SUB];
	sqlite3_bind_int64(s, 1, sub_id);
	if ((rc = step_done(s)) != SQLITE_OK)
		return rc;
	st->gc_from = 0;	/* their messages may be garbage now */
	s = st->stmt[S_SUB_DELETE];
	sqlite3_bind_int64(s, 1, sub_id);
	return step_done(s);
}

/* LO..HI that a subscriber of TOPICS ("": every topic) was owed, as dead letters. */
static int
apply_dead_range(struct store *st, int64_t sub_id, const char *address,
    uint64_t lo, uint64_t hi, const char *topics, const char *reason,
    int64_t now)
{
	sqlite3_stmt *s = st->stmt[S_DEAD_RANGE];
	int rc;

	if (st->cfg->dead_letter_max == 0)
		return SQLITE_OK;
	sqlite3_bind_int64(s, 6, sub_id);
	sqlite3_bind_text(s, 7, topics != NULL ? topics : "", -1,
	    SQLITE_STATIC);
	sqlite3_bind_text(s, 1, address, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, (sqlite3_int64)lo);
	sqlite3_bind_int64(s, 3, (sqlite3_int64)hi);
	sqlite3_bind_int64(s, 4, now);
	sqlite3_bind_text(s, 5, reason, -1, SQLITE_STATIC);
	if ((rc = step_done(s)) == SQLITE_OK)
		st->dead_added += (uint64_t)sqlite3_changes(st->db);
	return rc;
}

/*
 * A reload: retention, limits and windows follow the new configuration
 * from this batch on.  Not a database change, so it holds whether the
 * batch commits or not: fail_batch applies it when the batch failed before
 * reaching it, and r_count keeps it from being applied twice.
 */
static void
apply_config(struct store *st, struct store_req *req)
{
	const struct config *old = st->cfg_ref;

	if (req->r_count != 0)
		return;
	st->cfg = st->cfg_ref = req->r_arg;
	req->r_arg = (void *)(uintptr_t)old;
	req->r_count = 1;
}

/* On the store thread: lets go of the configuration it replaced. */
static void
config_done(struct store_req *req)
{
	config_release(req->r_arg);
	free(req);
}

int
store_reload(struct store *st, const struct config *cfg)
{
	struct store_req *req;

	if ((req = calloc(1, sizeof(*req))) == NULL)
		return -1;
	req->r_type = REQ_CONFIG;
	req->r_done = config_done;
	req->r_arg = (void *)(uintptr_t)config_hold(cfg);
	if (store_submit(st, req) == -1) {
		config_done(req);
		return -1;
	}
	return 0;
}

/* Applies one operation inside the open transaction: an SQLite code. */
static int
apply(struct store *st, struct op *o, int64_t now)
{
	sqlite3_stmt *s;
	struct sub *sub = o->o_sub;
	int rc;

	switch (o->o_type) {
	case OP_REQUEST:
		switch (o->o_req->r_type) {
		case REQ_PUBLISH:
			return apply_publish(st, o->o_req, now);
		case REQ_SYNC:
			return SQLITE_OK;
		case REQ_DL_LIST:
			return apply_dl_list(st, o->o_req);
		case REQ_DL_REPLAY:
			return apply_dl_replay(st, o->o_req, now);
		case REQ_DL_PURGE:
			return apply_dl_purge(st, o->o_req);
		case REQ_CONFIG:
			apply_config(st, o->o_req);
			return SQLITE_OK;
		}
		return SQLITE_MISUSE;
	case OP_SUB_ADD:
		if (sub_store_id(sub) != 0)
			return SQLITE_OK;	/* restored: the row is there */
		s = st->stmt[S_SUB_INSERT];
		sqlite3_bind_text(s, 1, sub_address(sub), -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 2, sub_url_text(sub), -1, SQLITE_STATIC);
		sqlite3_bind_int64(s, 3, sub_registered_ms(sub));
		sqlite3_bind_int64(s, 4, sub_keepalive_ms(sub));
		sqlite3_bind_int64(s, 5, (sqlite3_int64)st->next_seq);
		bind_sub_opts(s, 6, o);
		if ((rc = step_done(s)) != SQLITE_OK)
			return rc;
		/* Seen at once by a removal later in this batch; undone on failure. */
		o->o_at.sub_id = sqlite3_last_insert_rowid(st->db);
		sub_set_store(sub, o->o_at.sub_id, st->next_seq);
		return SQLITE_OK;
	case OP_SUB_REMOVE:
		if (sub_store_id(sub) == 0)
			return SQLITE_OK;
		s = st->stmt[S_SUB_REMOVE];
		sqlite3_bind_int64(s, 1, sub_store_id(sub));
		sqlite3_bind_int(s, 2, 1 + (int)sub_end(sub));
		return step_done(s);
	case OP_SUB_UPDATE:
		if (sub_store_id(sub) == 0)
			return SQLITE_OK;
		s = st->stmt[S_SUB_UPDATE];
		sqlite3_bind_int64(s, 1, sub_store_id(sub));
		bind_sub_opts(s, 2, o);
		return step_done(s);
	case OP_PROGRESS:
		s = st->stmt[S_SUB_CURSOR];
		sqlite3_bind_int64(s, 1, o->o_at.sub_id);
		sqlite3_bind_int64(s, 2, (sqlite3_int64)o->o_at.seq);
		return step_done(s);
	case OP_RETRY:
		s = st->stmt[S_RETRY_SET];
		sqlite3_bind_int64(s, 1, o->o_at.sub_id);
		sqlite3_bind_int64(s, 2, (sqlite3_int64)o->o_at.seq);
		sqlite3_bind_int(s, 3, o->o_at.attempts);
		sqlite3_bind_int64(s, 4, o->o_at.first_at);
		sqlite3_bind_int64(s, 5, o->o_at.last_at);
		sqlite3_bind_int64(s, 6, o->o_at.next_at);
		sqlite3_bind_int64(s, 7, o->o_at.status);
		sqlite3_bind_text(s, 8, o->o_at.error, -1, SQLITE_STATIC);
		return step_done(s);
	case OP_RETRY_DONE:
		s = st->stmt[S_RETRY_DEL];
		sqlite3_bind_int64(s, 1, o->o_at.sub_id);
		sqlite3_bind_int64(s, 2, (sqlite3_int64)o->o_at.seq);
		/* Its message may be garbage now, behind the collector. */
		if (o->o_at.seq < st->gc_from)
			st->gc_from = o->o_at.seq;
		return step_done(s);
	case OP_DEAD:
		return apply_dead(st, o, now);
	case OP_DEAD_RANGE:
		return apply_dead_range(st, o->o_at.sub_id, o->o_address,
		    o->o_lo, o->o_hi, o->o_topics_text, o->o_reason, now);
	case OP_SUB_GONE:
		return apply_sub_gone(st, o->o_at.sub_id, o->o_address,
		    o->o_reason, o->o_dead, now);
	}
	return SQLITE_MISUSE;
}

/* After COMMIT: answers, and the delivery thread's share, in commit order. */
static void
complete(struct store *st, struct op *o)
{
	char la[LOG_VALUE_MAX];
	struct store_req *req = o->o_req;

	pthread_mutex_lock(&st->fwd_lock);
	switch (o->o_type) {
	case OP_REQUEST:
		if (req->r_type == REQ_PUBLISH && req->r_status == STORE_OK &&
		    !req->r_repeat) {
			atomic_fetch_add(&st->backlog, msg_len(req->r_msg));
			atomic_store(&st->last_seq, msg_seq(req->r_msg));
			metrics_accepted();
			if (st->attached && st->sink.sk_publish(req->r_msg,
			    st->sink.sk_arg) == -1)
				log_error("message not queued for delivery",
				    "message=%s reason=nomem", msg_id(req->r_msg));
		} else if (req->r_type == REQ_DL_REPLAY) {
			if (st->attached && req->r_status == STORE_OK &&
			    req->r_nreplay > 0)
				st->sink.sk_replay(req->r_replay,
				    req->r_nreplay, st->sink.sk_arg);
			free(req->r_replay);
			req->r_replay = NULL;
			req->r_nreplay = 0;
		}
		break;
	case OP_SUB_ADD:
		known_add(st, o->o_sub);
		if (!st->attached)
			break;
		if (st->sink.sk_sub_add(o->o_sub, o->o_topics, o->o_secret,
		    st->sink.sk_arg) == 0)
			o->o_rm->o_tracked = 1;
		else
			log_error("cannot track subscriber", "address=%s "
			    "reason=nomem",
			    log_value(la, sizeof(la), sub_address(o->o_sub)));
		break;
	case OP_SUB_UPDATE:
		if (st->attached && o->o_rm != NULL && o->o_rm->o_tracked)
			st->sink.sk_sub_change(o->o_sub, o->o_topics,
			    o->o_secret, st->sink.sk_arg);
		break;
	case OP_SUB_REMOVE:
		known_remove(st, o->o_sub);
		if (st->attached && o->o_tracked)
			st->sink.sk_sub_remove(o->o_sub, st->sink.sk_arg);
		break;
	default:
		break;
	}
	pthread_mutex_unlock(&st->fwd_lock);
	if (o->o_type == OP_REQUEST)
		req->r_done(req);
	op_free(o);
}

void
store_detach(struct store *st)
{
	if (st == NULL)
		return;
	pthread_mutex_lock(&st->fwd_lock);
	st->attached = 0;
	pthread_mutex_unlock(&st->fwd_lock);
}

/* A failed transaction: the requests are told, the rest is tried again. */
static struct op *
fail_batch(struct store *st, struct op *ops, int rc, uint64_t seq0)
{
	struct op *again = NULL, **tail = &again, *o, *next;
	int full = (rc & 0xff) == SQLITE_FULL;

	st->next_seq = seq0;
	for (o = ops; o != NULL; o = o->o_next)
		if (o->o_type == OP_SUB_ADD && o->o_at.sub_id != 0) {
			sub_set_store(o->o_sub, 0, 0);
			o->o_at.sub_id = 0;
		}
	for (o = ops; o != NULL; o = next) {
		next = o->o_next;
		if (o->o_type == OP_REQUEST) {
			struct store_req *req = o->o_req;

			if (req->r_type == REQ_CONFIG)
				apply_config(st, req);
			else if (req->r_type == REQ_DL_LIST)
				free(req->r_body);
			free(req->r_replay);
			req->r_replay = NULL;
			req->r_nreplay = 0;
			req->r_body = NULL;
			req->r_len = 0;
			req->r_status = full ? STORE_FULL : STORE_ERROR;
			req->r_done(req);
			free(o);
			continue;
		}
		o->o_next = NULL;
		*tail = o;
		tail = &o->o_next;
	}
	return again;
}

static void
requeue_front(struct store *st, struct op *ops)
{
	struct op *last;

	if (ops == NULL)
		return;
	for (last = ops; last->o_next != NULL; last = last->o_next)
		;
	pthread_mutex_lock(&st->q_lock);
	last->o_next = st->q_head;
	if (st->q_head == NULL)
		st->q_tail = &last->o_next;
	st->q_head = ops;
	pthread_mutex_unlock(&st->q_lock);
}

static void
log_db_error(struct store *st, const char *what, int rc)
{
	char lp[LOG_VALUE_MAX], lv[LOG_VALUE_MAX];
	static int64_t last;
	int64_t now = clock_mono_ms();

	if (now - last < 10000)
		return;
	last = now;
	log_error(what, "path=%s error=%s", log_value(lp, sizeof(lp), st->path),
	    log_value(lv, sizeof(lv), (rc & 0xff) == SQLITE_FULL ?
	    "disk full" : sqlite3_errstr(rc)));
}

/* A write committed after writes had failed: the store is usable again. */
static void
store_writable(struct store *st)
{
	if (atomic_exchange(&st->fault, 0) != 0)
		log_info("store writable again", "path=%s", st->path);
}

/* Runs OPS (a list) in one transaction.  Returns what must run again. */
static struct op *
run_batch(struct store *st, struct op *ops)
{
	char lv[LOG_VALUE_MAX];
	int64_t now = clock_real_ms();
	int64_t changes = sqlite3_total_changes64(st->db);
	uint64_t seq0 = st->next_seq;
	struct op *o, *next;
	long requests = 0;
	int rc;

	st->dead_added = 0;
	if ((rc = step_done(st->stmt[S_BEGIN])) != SQLITE_OK)
		goto fail;
	for (o = ops; o != NULL; o = o->o_next) {
		if ((rc = apply(st, o, now)) != SQLITE_OK) {
			int kind = rc & 0xff;

			/* A row that cannot be written is logged and skipped. */
			if (kind == SQLITE_CONSTRAINT || kind == SQLITE_MISMATCH ||
			    kind == SQLITE_TOOBIG || kind == SQLITE_RANGE) {
				log_error("store operation failed", "type=%d "
				    "error=%s", (int)o->o_type, log_value(lv,
				    sizeof(lv), sqlite3_errstr(rc)));
				if (o->o_type == OP_REQUEST)
					o->o_req->r_status = STORE_ERROR;
				continue;
			}
			goto fail;
		}
	}
	if ((rc = step_done(st->stmt[S_COMMIT])) != SQLITE_OK)
		goto fail;
	metrics_dead_letters(st->dead_added);
	/* A write went through: the store is usable (again). */
	if (sqlite3_total_changes64(st->db) != changes)
		store_writable(st);
	for (o = ops; o != NULL; o = next) {
		next = o->o_next;
		if (o->o_type == OP_REQUEST)
			requests++;
		complete(st, o);
	}
	/* One wakeup for everything this commit passed on. */
	pthread_mutex_lock(&st->fwd_lock);
	if (st->attached)
		st->sink.sk_wake(st->sink.sk_arg);
	pthread_mutex_unlock(&st->fwd_lock);
	if (requests > 0) {
		pthread_mutex_lock(&st->q_lock);
		st->requests_queued -= requests;
		if (st->requests_queued == 0)
			pthread_cond_broadcast(&st->q_idle);
		pthread_mutex_unlock(&st->q_lock);
	}
	return NULL;

fail:
	if (!sqlite3_get_autocommit(st->db))
		step_done(st->stmt[S_ROLLBACK]);
	atomic_store(&st->fault, rc);
	if ((rc & 0xff) == SQLITE_FULL) {
		atomic_store(&st->full, 1);
		reserve_release(st);
		/* At once, before anything else takes the space given back. */
		sqlite3_wal_checkpoint_v2(st->db, NULL,
		    SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
	}
	log_db_error(st, "store commit failed", rc);
	for (o = ops; o != NULL; o = o->o_next)
		if (o->o_type == OP_REQUEST)
			requests++;
	ops = fail_batch(st, ops, rc, seq0);
	if (requests > 0) {
		pthread_mutex_lock(&st->q_lock);
		st->requests_queued -= requests;
		if (st->requests_queued == 0)
			pthread_cond_broadcast(&st->q_idle);
		pthread_mutex_unlock(&st->q_lock);
	}
	return ops;
}

/* Deletes the messages no one needs any more, from FROM on. */
static int
collect(struct store *st, uint64_t from)
{
	sqlite3_stmt *f = st->stmt[S_FLOOR], *g = st->stmt[S_GC];
	uint64_t floor = st->next_seq;
	size_t freed = 0;
	int rc;

	if ((rc = sqlite3_step(f)) == SQLITE_ROW &&
	    sqlite3_column_type(f, 0) != SQLITE_NULL &&
	    (uint64_t)sqlite3_column_int64(f, 0) < floor)
		floor = (uint64_t)sqlite3_column_int64(f, 0);
	sqlite3_reset(f);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return rc;
	if (floor <= from)
		return SQLITE_OK;
	sqlite3_bind_int64(g, 1, (sqlite3_int64)from);
	sqlite3_bind_int64(g, 2, (sqlite3_int64)floor);
	while ((rc = sqlite3_step(g)) == SQLITE_ROW)
		freed += (size_t)sqlite3_column_int64(g, 0);
	sqlite3_reset(g);
	if (rc != SQLITE_DONE)
		return rc;
	if (freed > atomic_load(&st->backlog))
		freed = atomic_load(&st->backlog);
	atomic_fetch_sub(&st->backlog, freed);
	st->gc_from = floor;
	return SQLITE_OK;
}

/*
 * Every PERIODIC_MS the garbage (a tenth of a second's worth: a short
 * transaction that does not hold publishers up); every second keep-alives
 * and the WAL; once a minute a full collection and the dead-letter bounds.
 */
static void
periodic(struct store *st)
{
	char lp[LOG_VALUE_MAX];
	int64_t mono = clock_mono_ms(), now = clock_real_ms();
	int sweep = mono >= st->next_sweep, second, probe;
	int64_t free_pages = 0, pages = 0;
	char vacuum[64];
	sqlite3_stmt *s;
	int rc;

	if (mono < st->next_periodic)
		return;
	st->next_periodic = mono + PERIODIC_MS;
	second = mono >= st->next_second;
	/*
	 * Once a write has failed, a small one each second (the header page,
	 * rewritten as it is) finds out whether writing works again, with no
	 * publish needed to try: /readyz follows st->fault.
	 */
	probe = second && atomic_load(&st->fault) != 0;
	if ((rc = step_done(st->stmt[S_BEGIN])) != SQLITE_OK)
		goto fail;
	if (probe && (rc = sqlite3_exec(st->db, "PRAGMA user_version = 2",
	    NULL, NULL, NULL)) != SQLITE_OK)
		goto fail;
	s = st->stmt[S_SUB_KA];
	for (size_t i = 0; second && i < st->nknown; i++) {
		struct known *k = &st->known[i];
		int64_t ka = sub_keepalive_ms(k->k_sub);

		if (ka == k->k_saved_ka || sub_store_id(k->k_sub) == 0)
			continue;
		sqlite3_bind_int64(s, 1, sub_store_id(k->k_sub));
		sqlite3_bind_int64(s, 2, ka);
		if ((rc = step_done(s)) != SQLITE_OK)
			goto fail;
		k->k_saved_ka = ka;
	}

	if (sweep) {
		s = st->stmt[S_IDEM_EXPIRE];
		sqlite3_bind_int64(s, 1, now -
		    st->cfg->idempotency_window * 1000);
		if ((rc = step_done(s)) != SQLITE_OK)
			goto fail;
		s = st->stmt[S_DL_EXPIRE];
		sqlite3_bind_int64(s, 1, now -
		    st->cfg->dead_letter_retention * 1000);
		if ((rc = step_done(s)) != SQLITE_OK)
			goto fail;
		if (sqlite3_changes(st->db) > 0)
			log_info("dead letters expired", "count=%d",
			    sqlite3_changes(st->db));
		s = st->stmt[S_DL_TRIM];
		/* Keeps the newest dead_letter_max: the one past them and older go. */
		sqlite3_bind_int64(s, 1, st->cfg->dead_letter_max);
		if ((rc = step_done(s)) != SQLITE_OK)
			goto fail;
		if (sqlite3_changes(st->db) > 0)
			log_warnx("dead letters over dead_letter_max deleted",
			    "count=%d", sqlite3_changes(st->db));
	}
	/* After the dead-letter bounds, so that what they free goes now. */
	if ((rc = collect(st, sweep ? 0 : st->gc_from)) != SQLITE_OK)
		goto fail;
	if ((rc = step_done(st->stmt[S_COMMIT])) != SQLITE_OK)
		goto fail;
	if (probe)
		store_writable(st);
	if (sweep)
		st->next_sweep = mono + SWEEP_MS;
	if (!second)
		return;
	st->next_second = mono + KEEPALIVE_MS;
	/*
	 * Fold the log back into the database every second, so that it is
	 * reused from its start rather than grown; after a full disk, also
	 * cut it short so that the space deletions freed comes back.  The
	 * disk counts as full (publishes refused) until the reserve is back.
	 */
	sqlite3_wal_checkpoint_v2(st->db, NULL, atomic_load(&st->full) ?
	    SQLITE_CHECKPOINT_TRUNCATE : SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
	/*
	 * Once most of the file is free (a backlog has drained), or the disk
	 * is full, free pages past a quarter of the reserve go back to the
	 * filesystem, a few at a time: each step is a transaction that must
	 * fit in the space there is, and the checkpoint after it makes the
	 * file shorter.  While the file is mostly in use, new messages reuse
	 * the free pages and moving them would only be wasted writes.
	 */
	snprintf(vacuum, sizeof(vacuum), "PRAGMA incremental_vacuum(%llu)",
	    (unsigned long long)(st->reserve_size / 2 / 4096 + 1));
	if (query_int(st->db, "PRAGMA freelist_count", &free_pages) == 0 &&
	    query_int(st->db, "PRAGMA page_count", &pages) == 0 &&
	    (uint64_t)free_pages * 4096 > st->reserve_size / 4 &&
	    (free_pages * 2 > pages || !st->reserved) &&
	    sqlite3_exec(st->db, vacuum, NULL, NULL, NULL) == SQLITE_OK)
		sqlite3_wal_checkpoint_v2(st->db, NULL,
		    SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
	if (!st->reserved) {
		reserve_take(st);
		if (st->reserved && atomic_exchange(&st->full, 0))
			log_info("disk space back: publishing again", "path=%s",
			    log_value(lp, sizeof(lp), st->path));
	}
	return;

fail:
	if (!sqlite3_get_autocommit(st->db))
		step_done(st->stmt[S_ROLLBACK]);
	atomic_store(&st->fault, rc);
	if ((rc & 0xff) == SQLITE_FULL)
		reserve_release(st);
	log_db_error(st, "store maintenance failed", rc);
	st->gc_from = 0;
}

static void *
store_loop(void *arg)
{
	struct store *st = arg;
	struct op *ops, *again = NULL, **tail, *o;
	struct timespec ts;
	int n, stop;

	for (;;) {
		atomic_store_explicit(&st->beat, clock_mono_ms(),
		    memory_order_relaxed);
		pthread_mutex_lock(&st->q_lock);
		if (again == NULL && st->q_head == NULL && !st->stopping) {
			clock_gettime(CLOCK_MONOTONIC, &ts);
			ts.tv_nsec += PERIODIC_MS * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&st->q_cond, &st->q_lock, &ts);
		}
		/* Take up to BATCH_MAX operations, in order. */
		ops = st->q_head;
		tail = &ops;
		for (n = 0, o = ops; o != NULL && n < BATCH_MAX; n++) {
			tail = &o->o_next;
			o = o->o_next;
		}
		st->q_head = o;
		if (o == NULL)
			st->q_tail = &st->q_head;
		*tail = NULL;
		stop = st->stopping && st->q_head == NULL;
		pthread_mutex_unlock(&st->q_lock);

		if (ops != NULL) {
			again = run_batch(st, ops);
			if (again != NULL) {
				requeue_front(st, again);
				if (stop)
					break;
				usleep(RETRY_WAIT_MS * 1000);
				continue;
			}
		}
		periodic(st);
		if (stop && ops == NULL)
			break;
	}
	return NULL;
}

static pthread_condattr_t *
monotonic_attr(pthread_condattr_t *a)
{
	pthread_condattr_init(a);
	pthread_condattr_setclock(a, CLOCK_MONOTONIC);
	return a;
}

int
store_start(struct store *st, const struct store_sink *sink)
{
	pthread_condattr_t a;
	int rc;

	st->sink = *sink;
	st->attached = 1;
	pthread_cond_destroy(&st->q_cond);
	pthread_cond_init(&st->q_cond, monotonic_attr(&a));
	pthread_condattr_destroy(&a);
	st->next_periodic = clock_mono_ms() + PERIODIC_MS;
	st->next_sweep = clock_mono_ms() + PERIODIC_MS;
	atomic_store(&st->beat, clock_mono_ms());
	if ((rc = pthread_create(&st->thread, NULL, store_loop, st)) != 0) {
		log_error("cannot start store", "error=\"%s\"", strerror(rc));
		return -1;
	}
	st->started = 1;
	return 0;
}

void
store_close_requests(struct store *st)
{
	if (st == NULL)
		return;
	pthread_mutex_lock(&st->q_lock);
	st->closed = 1;
	while (st->started && st->requests_queued > 0)
		pthread_cond_wait(&st->q_idle, &st->q_lock);
	pthread_mutex_unlock(&st->q_lock);
}

/* Frees the removal store_on_add set aside for SUB. */
static void
forget(struct sub *sub)
{
	struct op *rm = sub_store_state(sub);

	if (rm != NULL) {
		sub_set_store_state(sub, NULL);
		op_free(rm);
	}
}

void
store_stop(struct store *st)
{
	struct op *o, *next;

	if (st == NULL)
		return;
	pthread_mutex_lock(&st->q_lock);
	st->closed = 1;
	st->stopping = 1;
	pthread_cond_signal(&st->q_cond);
	pthread_mutex_unlock(&st->q_lock);
	if (st->started)
		pthread_join(st->thread, NULL);
	/* What could not be written (a full disk) is lost here. */
	for (o = st->q_head; o != NULL; o = next) {
		next = o->o_next;
		if (o->o_type == OP_SUB_ADD)
			forget(o->o_sub);
		if (o->o_type == OP_REQUEST) {
			o->o_req->r_status = STORE_CLOSED;
			o->o_req->r_done(o->o_req);
			free(o);
			continue;
		}
		op_free(o);
	}
	st->q_head = NULL;
	/* What the last progress freed, so that a clean stop leaves no garbage. */
	st->next_periodic = 0;
	periodic(st);
	/* Subscribers still registered keep their removal, never to be queued. */
	for (size_t i = 0; i < st->nknown; i++)
		forget(st->known[i].k_sub);
	sqlite3_wal_checkpoint_v2(st->db, NULL, SQLITE_CHECKPOINT_TRUNCATE,
	    NULL, NULL);
	store_free(st);
}

/* ---- restoring ----------------------------------------------------------- */

/* Subscribers removed before a crash (or not restored): what they had pending is dead. */
static int
drop_removed(struct store *st, int64_t now, size_t *dropped)
{
	sqlite3_stmt *q;
	int rc;

	st->dead_added = 0;
	if (exec_sql(st->db, "BEGIN") == -1)
		return -1;
	if (sqlite3_prepare_v2(st->db, "SELECT id, address, cursor, removed, "
	    "topics FROM subscribers WHERE removed != 0", -1, &q, NULL) !=
	    SQLITE_OK)
		return -1;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(q, 0);
		const char *address = (const char *)sqlite3_column_text(q, 1);
		uint64_t cursor = (uint64_t)sqlite3_column_int64(q, 2);
		int why = sqlite3_column_int(q, 3) - 1;
		const char *reason = why >= 0 && why <= SUB_GONE ?
		    end_reasons[why] : "deregistered";
		int dead = st->cfg->dead_letter_on_evict;

		const char *topics = (const char *)sqlite3_column_text(q, 4);

		if ((dead && (rc = apply_dead_range(st, id, address, cursor,
		    st->next_seq - 1, topics, reason, now)) != SQLITE_OK) ||
		    (rc = apply_sub_gone(st, id, address, reason, dead, now)) !=
		    SQLITE_OK)
			break;
		(*dropped)++;
	}
	sqlite3_finalize(q);
	if (rc != SQLITE_DONE || exec_sql(st->db, "COMMIT") == -1)
		return -1;
	metrics_dead_letters(st->dead_added);
	return 0;
}

int
store_restore(struct store *st, struct subs *s)
{
	char la[LOG_VALUE_MAX], lp[LOG_VALUE_MAX], lv[LOG_VALUE_MAX];
	sqlite3_stmt *q;
	int64_t now = clock_real_ms(), mono = clock_mono_ms();
	int64_t *skipped = NULL;
	size_t restored = 0, dropped = 0, nskipped = 0;
	int rc;

	if (sqlite3_prepare_v2(st->db, "SELECT id, address, url, "
	    "registered_at, last_keepalive, cursor, topics, secret "
	    "FROM subscribers WHERE removed = 0 ORDER BY id", -1, &q, NULL) !=
	    SQLITE_OK)
		goto fail;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		struct sub_saved sv = {
			.store_id = sqlite3_column_int64(q, 0),
			.address = (const char *)sqlite3_column_text(q, 1),
			.url_text = (const char *)sqlite3_column_text(q, 2),
			.registered_real = sqlite3_column_int64(q, 3),
			.keepalive_real = sqlite3_column_int64(q, 4),
			.start = (uint64_t)sqlite3_column_int64(q, 5),
			.topics = (const char *)sqlite3_column_text(q, 6),
			.secret = (const char *)sqlite3_column_text(q, 7),
		};
		CURLU *u = curl_url();
		int64_t *v;

		/* The keep-alive clock ran on while the daemon was down. */
		sv.keepalive_mono = mono - (now - sv.keepalive_real);
		if (u != NULL && curl_url_set(u, CURLUPART_URL, sv.url_text,
		    0) == CURLUE_OK && subs_restore(s, &sv, u) == SUBS_ADDED) {
			restored++;
			continue;
		}
		/* Not listed, so not kept: it leaves as if deregistered. */
		curl_url_cleanup(u);
		log_warnx("saved subscriber not restored: deregistered",
		    "address=%s url=%s", log_value(la, sizeof(la), sv.address),
		    log_value(lv, sizeof(lv), sv.url_text));
		if ((v = realloc(skipped, (nskipped + 1) * sizeof(*v))) ==
		    NULL) {
			sqlite3_finalize(q);
			free(skipped);
			goto fail;
		}
		skipped = v;
		skipped[nskipped++] = sv.store_id;
	}
	sqlite3_finalize(q);
	if (rc != SQLITE_DONE)
		goto fail;
	for (size_t i = 0; i < nskipped; i++) {
		sqlite3_stmt *r = st->stmt[S_SUB_REMOVE];

		sqlite3_bind_int64(r, 1, skipped[i]);
		sqlite3_bind_int(r, 2, 1 + (int)SUB_DEREGISTERED);
		if (step_done(r) != SQLITE_OK) {
			free(skipped);
			goto fail;
		}
	}
	free(skipped);
	if (drop_removed(st, now, &dropped) == -1)
		goto fail;
	log_info("store restored", "subscribers=%zu removed_before=%zu",
	    restored, dropped);
	return 0;

fail:
	log_error("cannot read store", "path=%s error=%s",
	    log_value(lp, sizeof(lp), st->path),
	    log_value(lv, sizeof(lv), sqlite3_errmsg(st->db)));
	if (!sqlite3_get_autocommit(st->db))
		exec_sql(st->db, "ROLLBACK");
	return -1;
}

/* ---- the reader ---------------------------------------------------------- */

struct store_reader {
	sqlite3		*db;
	sqlite3_stmt	*page, *one, *retries;
};

struct store_reader *
store_reader_open(struct store *st)
{
	char lp[LOG_VALUE_MAX], lv[LOG_VALUE_MAX];
	struct store_reader *r;

	if ((r = calloc(1, sizeof(*r))) == NULL)
		return NULL;
	if (sqlite3_open_v2(st->path, &r->db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK ||
	    match_function(r->db) == -1 ||
	    sqlite3_prepare_v3(r->db, "SELECT seq, id, ctype, body, topics, "
	    "created FROM messages WHERE seq BETWEEN ?1 AND ?2 AND (?4 = '' OR "
	    "hc_topics_match(?4, topics)) ORDER BY seq LIMIT ?3", -1,
	    SQLITE_PREPARE_PERSISTENT, &r->page, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v3(r->db, "SELECT seq, id, ctype, body, topics, "
	    "created FROM messages WHERE seq = ?1", -1,
	    SQLITE_PREPARE_PERSISTENT, &r->one, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v3(r->db, "SELECT seq, attempts, first_at, "
	    "last_at, next_at, last_status, last_error FROM retries "
	    "WHERE sub = ?1 ORDER BY seq", -1, SQLITE_PREPARE_PERSISTENT,
	    &r->retries, NULL) != SQLITE_OK) {
		log_error("cannot read store", "path=%s error=%s",
		    log_value(lp, sizeof(lp), st->path), log_value(lv,
		    sizeof(lv), r->db != NULL ? sqlite3_errmsg(r->db) :
		    "nomem"));
		store_reader_close(r);
		return NULL;
	}
	sqlite3_busy_timeout(r->db, 5000);
	return r;
}

void
store_reader_close(struct store_reader *r)
{
	if (r == NULL)
		return;
	sqlite3_finalize(r->page);
	sqlite3_finalize(r->one);
	sqlite3_finalize(r->retries);
	sqlite3_close(r->db);
	free(r);
}

static struct msg *
row_msg(sqlite3_stmt *s)
{
	const char *topics = (const char *)sqlite3_column_text(s, 4);
	char err[TOPICS_ERRLEN];
	struct topics *t = NULL;
	struct msg *m;

	/* Written by topics_text(); a row tampered with goes to everyone. */
	if (topics != NULL && *topics != '\0' &&
	    topics_parse(&topics, 1, 0, &t, err) == TOPICS_NOMEM)
		return NULL;
	m = msg_new((const char *)sqlite3_column_text(s, 1),
	    (const char *)sqlite3_column_text(s, 2), sqlite3_column_blob(s, 3),
	    (size_t)sqlite3_column_bytes(s, 3));
	if (m == NULL) {
		topics_unref(t);
		return NULL;
	}
	msg_set_seq(m, (uint64_t)sqlite3_column_int64(s, 0));
	msg_set_created(m, sqlite3_column_int64(s, 5));
	msg_set_topics(m, t);
	return m;
}

long
store_read_page(struct store_reader *r, uint64_t lo, uint64_t hi,
    const char *topics, size_t max, struct msg **out, uint64_t *next)
{
	char lv[LOG_VALUE_MAX];
	int rc, short_read = 0;
	long n = 0;

	sqlite3_bind_int64(r->page, 1, (sqlite3_int64)lo);
	sqlite3_bind_int64(r->page, 2, (sqlite3_int64)hi);
	sqlite3_bind_int64(r->page, 3, (sqlite3_int64)max);
	sqlite3_bind_text(r->page, 4, topics, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(r->page)) == SQLITE_ROW) {
		if ((out[n] = row_msg(r->page)) == NULL) {
			short_read = 1;		/* out of memory: the rest later */
			break;
		}
		n++;
	}
	sqlite3_reset(r->page);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		log_error("store read failed", "error=%s",
		    log_value(lv, sizeof(lv), sqlite3_errmsg(r->db)));
		while (n > 0)
			msg_unref(out[--n]);
		return -1;
	}
	if ((size_t)n == max || short_read)
		*next = n > 0 ? msg_seq(out[n - 1]) + 1 : lo;
	else
		*next = hi + 1;
	return n;
}

struct msg *
store_read_msg(struct store_reader *r, uint64_t seq)
{
	struct msg *m = NULL;

	sqlite3_bind_int64(r->one, 1, (sqlite3_int64)seq);
	if (sqlite3_step(r->one) == SQLITE_ROW)
		m = row_msg(r->one);
	sqlite3_reset(r->one);
	return m;
}

long
store_read_retries(struct store_reader *r, int64_t sub_id,
    struct store_attempt **out)
{
	struct store_attempt *v = NULL;
	size_t n = 0, cap = 0;
	int rc;

	*out = NULL;
	sqlite3_bind_int64(r->retries, 1, sub_id);
	while ((rc = sqlite3_step(r->retries)) == SQLITE_ROW) {
		struct store_attempt *a;

		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			struct store_attempt *t = realloc(v, ncap * sizeof(*t));

			if (t == NULL)
				break;
			v = t;
			cap = ncap;
		}
		a = &v[n++];
		memset(a, 0, sizeof(*a));
		a->sub_id = sub_id;
		a->seq = (uint64_t)sqlite3_column_int64(r->retries, 0);
		a->attempts = sqlite3_column_int(r->retries, 1);
		a->first_at = sqlite3_column_int64(r->retries, 2);
		a->last_at = sqlite3_column_int64(r->retries, 3);
		a->next_at = sqlite3_column_int64(r->retries, 4);
		a->status = (long)sqlite3_column_int64(r->retries, 5);
		snprintf(a->error, sizeof(a->error), "%s",
		    (const char *)sqlite3_column_text(r->retries, 6));
	}
	sqlite3_reset(r->retries);
	if (rc != SQLITE_DONE) {
		free(v);
		return -1;
	}
	*out = v;
	return (long)n;
}

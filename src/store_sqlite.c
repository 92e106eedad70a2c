/*
 * store_sqlite.c: the SQLite backend: schema, statements, lock, open, check.
 *
 * One database, DATA_DIR/hookcast.db, in WAL mode.  The writer thread owns
 * the read-write connection; each reader (delivery) opens its own, and WAL
 * lets it read committed rows while the writer writes.  A body is stored
 * once, on its own row, however many subscribers it goes to.  The other
 * store_sqlite_*.c files hold the operations; this one opens, closes and
 * runs transactions, and maps SQLite's codes to enum store_res so that no
 * SQLite code leaves the backend.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "log.h"
#include "metrics.h"
#include "store_backend.h"
#include "store_sqlite.h"
#include "topics.h"

static const char *const sql[NSTMTS] = {
	[S_BEGIN] = "BEGIN IMMEDIATE",
	[S_COMMIT] = "COMMIT",
	[S_ROLLBACK] = "ROLLBACK",
	/* Around a batch of publishes (sqlite_publish_batch). */
	[S_SAVEPOINT] = "SAVEPOINT publish_batch",
	[S_RELEASE] = "RELEASE publish_batch",
	[S_ROLLBACK_TO] = "ROLLBACK TO publish_batch",
	[S_MSG_INSERT] = "INSERT INTO messages(seq, id, ctype, created, body, "
			 "topics) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	[S_SUB_INSERT] =
	    "INSERT INTO subscribers(address, url, "
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
	/* A retry that ran out: a range of one, with its history. */
	[S_DEAD_ONE] =
	    "INSERT INTO dead_ranges(address, lo, hi, topics, "
	    "attempts, first_at, last_at, dead_at, last_status, last_error, "
	    "reason) SELECT ?1, seq, seq, NULL, ?3, ?4, ?5, ?6, ?7, ?8, ?9 "
	    "FROM messages WHERE seq = ?2",
	/*
	 * ?2..?3, less sub ?6's retries (they become dead letters of their
	 * own): one range for each stretch between them.
	 */
	[S_DEAD_RANGE] =
	    "WITH r(s) AS (SELECT ?2 - 1 UNION ALL SELECT seq "
	    "FROM retries WHERE sub = ?6 AND seq BETWEEN ?2 AND ?3 UNION ALL "
	    "SELECT ?3 + 1), g(lo, hi) AS (SELECT s + 1, lead(s) OVER "
	    "(ORDER BY s) - 1 FROM r) INSERT INTO dead_ranges(address, lo, hi, "
	    "topics, attempts, first_at, last_at, dead_at, last_status, "
	    "last_error, reason) SELECT ?1, lo, hi, ?7, 0, 0, 0, ?4, 0, '', ?5 "
	    "FROM g WHERE hi >= lo ORDER BY lo RETURNING hi - lo + 1",
	[S_DEAD_RETRIES] =
	    "INSERT INTO dead_ranges(address, lo, hi, topics, "
	    "attempts, first_at, last_at, dead_at, last_status, last_error, "
	    "reason) SELECT ?2, r.seq, r.seq, NULL, r.attempts, r.first_at, "
	    "r.last_at, ?3, r.last_status, r.last_error, ?4 FROM retries r "
	    "JOIN messages m ON m.seq = r.seq WHERE r.sub = ?1 ORDER BY r.seq",
	/* A dead letter of one message is looked up; longer ones: S_GC_GAPS. */
	[S_GC] =
	    "DELETE FROM messages WHERE seq >= ?1 AND seq < ?2 AND "
	    "NOT EXISTS (SELECT 1 FROM retries r WHERE r.seq = messages.seq) "
	    "AND NOT EXISTS (SELECT 1 FROM dead_ranges d WHERE "
	    "d.lo = messages.seq AND d.hi = messages.seq) "
	    "RETURNING length(body)",
	/*
	 * The stretches of ?1..?2 - 1 that no dead-letter range longer than
	 * one covers (a range keeps its whole span, whatever its topics): a
	 * range's low end past the highest end before it opens a gap.  The
	 * long ranges are few (removals), the ones of one many (retries that
	 * ran out), so these are looked up message by message instead.
	 */
	[S_GC_GAPS] =
	    "WITH r AS (SELECT lo, hi FROM dead_ranges WHERE "
	    "hi > lo AND hi >= ?1 AND lo < ?2), e AS (SELECT lo, max(hi) "
	    "OVER (ORDER BY lo ROWS BETWEEN UNBOUNDED PRECEDING AND 1 "
	    "PRECEDING) AS prev FROM r) SELECT coalesce(prev + 1, ?1), lo - 1 "
	    "FROM e WHERE prev IS NULL OR lo > prev + 1 UNION ALL "
	    "SELECT coalesce((SELECT max(hi) FROM r) + "
	    "1, ?1), ?2 - 1",
	[S_FLOOR] = "SELECT min(cursor) FROM subscribers",
	[S_DL_EXPIRE] = "DELETE FROM dead_ranges WHERE dead_at < ?1 "
			"RETURNING hi - lo + 1",
	/* dead_letter_max: whole ranges past the newest ?1 messages go ... */
	[S_DL_TRIM] =
	    "DELETE FROM dead_ranges WHERE id IN (SELECT id FROM "
	    "(SELECT id, sum(hi - lo + 1) OVER (ORDER BY id DESC) - (hi - lo + "
	    "1) AS newer FROM dead_ranges) WHERE newer >= ?1) "
	    "RETURNING hi - lo + 1",
	/* ... and the oldest left loses its low end past the line. */
	[S_DL_TOTAL] = "SELECT coalesce(sum(hi - lo + 1), 0) FROM dead_ranges",
	[S_DL_TRIM_LOW] = "UPDATE dead_ranges SET lo = lo + ?1 WHERE id = "
			  "(SELECT min(id) FROM dead_ranges)",
	/* Cutting ?2..?3 out of range ?1: the part above first, ... */
	[S_CUT_TAIL] =
	    "INSERT INTO dead_ranges(address, lo, hi, topics, "
	    "attempts, first_at, last_at, dead_at, last_status, last_error, "
	    "reason) SELECT address, ?3 + 1, hi, topics, attempts, first_at, "
	    "last_at, dead_at, last_status, last_error, reason FROM "
	    "dead_ranges WHERE id = ?1 AND lo < ?2 AND hi > ?3",
	/* ... then what is left of the range: below, above, or nothing. */
	[S_CUT_HEAD] = "UPDATE dead_ranges SET hi = ?2 - 1 WHERE id = ?1 AND "
		       "lo < ?2 AND hi >= ?2",
	[S_CUT_LOW] = "UPDATE dead_ranges SET lo = ?3 + 1 WHERE id = ?1 AND "
		      "lo >= ?2 AND lo <= ?3 AND hi > ?3",
	[S_CUT_ALL] = "DELETE FROM dead_ranges WHERE id = ?1 AND lo >= ?2 AND "
		      "hi <= ?3",
	/* A message's number, by its id, among those dead letters keep. */
	[S_DL_SEQ] =
	    "SELECT seq FROM messages WHERE seq >= (SELECT min(lo) "
	    "FROM dead_ranges) AND seq <= (SELECT max(hi) FROM dead_ranges) "
	    "AND id = ?1",
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
    /*
     * Dead letters by reference: the messages LO..HI (of TOPICS; NULL:
     * all) that ADDRESS was owed.  One that ran out of retries is a range
     * of one with its history; the others' attempts are 0.
     */
    "CREATE TABLE IF NOT EXISTS dead_ranges ("
    " id INTEGER PRIMARY KEY,"
    " address TEXT NOT NULL,"
    " lo INTEGER NOT NULL,"
    " hi INTEGER NOT NULL,"
    " topics TEXT,"
    " attempts INTEGER NOT NULL,"
    " first_at INTEGER NOT NULL,"
    " last_at INTEGER NOT NULL,"
    " dead_at INTEGER NOT NULL,"
    " last_status INTEGER NOT NULL,"
    " last_error TEXT NOT NULL,"
    " reason TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS dead_ranges_address ON dead_ranges(address);"
    "CREATE INDEX IF NOT EXISTS dead_ranges_lo ON dead_ranges(lo);"
    "CREATE INDEX IF NOT EXISTS dead_ranges_long ON dead_ranges(lo) "
    "WHERE hi > lo;"
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

/*
 * Version 2 kept a row, and a message id, for every dead letter: each
 * becomes a range of one, in the same order, with its history.
 */
static const char migrate_2[] =
    "INSERT INTO dead_ranges(address, lo, hi, topics, attempts, first_at, "
    "last_at, dead_at, last_status, last_error, reason) SELECT address, seq, "
    "seq, NULL, attempts, first_at, last_at, dead_at, last_status, "
    "last_error, reason FROM dead_letters ORDER BY id;"
    "DROP TABLE dead_letters;";

#define SCHEMA_VERSION 3

int
sqlite_exec(sqlite3 *db, const char *text)
{
	char lv[LOG_VALUE_MAX], ls[LOG_VALUE_MAX], sqltext[61];
	char *err = NULL;

	if (sqlite3_exec(db, text, NULL, NULL, &err) != SQLITE_OK) {
		snprintf(sqltext, sizeof(sqltext), "%s", text);
		log_error("database statement failed", "error=%s sql=%s",
		    log_value(lv, sizeof(lv),
			err != NULL ? err : sqlite3_errmsg(db)),
		    log_value(ls, sizeof(ls), sqltext));
		sqlite3_free(err);
		return -1;
	}
	return 0;
}

int
sqlite_query_int(sqlite3 *db, const char *text, int64_t *out)
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
open_dir(struct store_backend *b)
{
	char lp[LOG_VALUE_MAX], ebuf[128];
	const char *dir = b->sq_cfg->data_dir;
	char lock[1100];

	if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
		log_error("cannot use data_dir", "path=%s error=\"%s\"",
		    log_value(lp, sizeof(lp), dir),
		    strerror_r(errno, ebuf, sizeof(ebuf)));
		return -1;
	}
	snprintf(lock, sizeof(lock), "%s/hookcast.lock", dir);
	if ((b->sq_lockfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) ==
	    -1) {
		log_error("cannot use data_dir", "path=%s error=\"%s\"",
		    log_value(lp, sizeof(lp), dir),
		    strerror_r(errno, ebuf, sizeof(ebuf)));
		return -1;
	}
	if (flock(b->sq_lockfd, LOCK_EX | LOCK_NB) == -1) {
		log_error("cannot use data_dir", "path=%s error=\"%s\"",
		    log_value(lp, sizeof(lp), dir),
		    errno == EWOULDBLOCK ?
			"in use by another hookcast" :
			strerror_r(errno, ebuf, sizeof(ebuf)));
		return -1;
	}
	return 0;
}

/* hc_topics_match(subscriber's topics, message's topics), for the queries. */
static void
sql_topics_match(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	(void)argc;
	sqlite3_result_int(ctx,
	    topics_match_text((const char *)sqlite3_value_text(argv[0]),
		(const char *)sqlite3_value_text(argv[1])));
}

int
sqlite_match_function(sqlite3 *db)
{
	char lv[LOG_VALUE_MAX];

	if (sqlite3_create_function(db, "hc_topics_match", 2,
		SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS, NULL,
		sql_topics_match, NULL, NULL) != SQLITE_OK) {
		log_error("cannot open store", "error=%s",
		    log_value(lv, sizeof(lv), sqlite3_errmsg(db)));
		return -1;
	}
	return 0;
}

/*
 * A damaged page anywhere is found now, not in the middle of a delivery:
 * SQLITE_OK, -1 (logged: corrupt), or the SQLite code of a failed read.
 */
static int
check_pages(struct store_backend *b)
{
	char lp[LOG_VALUE_MAX], lv[LOG_VALUE_MAX], corrupt[160];
	const unsigned char *res = NULL;
	sqlite3_stmt *s;

	if (sqlite3_prepare_v2(b->sq_db, "PRAGMA quick_check(1)", -1, &s,
		NULL) != SQLITE_OK)
		return sqlite3_errcode(b->sq_db);
	if (sqlite3_step(s) == SQLITE_ROW)
		res = sqlite3_column_text(s, 0);
	if (res == NULL || strcmp((const char *)res, "ok") != 0) {
		snprintf(corrupt, sizeof(corrupt),
		    "database is corrupt: "
		    "%.100s (left as it is)",
		    res != NULL ? (const char *)res : sqlite3_errmsg(b->sq_db));
		log_error("cannot open store", "path=%s error=%s",
		    log_value(lp, sizeof(lp), b->sq_path),
		    log_value(lv, sizeof(lv), corrupt));
		sqlite3_finalize(s);
		return -1;
	}
	sqlite3_finalize(s);
	return SQLITE_OK;
}

static int
open_db(struct store_backend *b)
{
	char lp[LOG_VALUE_MAX], lv[LOG_VALUE_MAX];
	static const char *const sync_pragma[] = {
		[DURABILITY_OFF] = "PRAGMA synchronous = OFF",
		[DURABILITY_NORMAL] = "PRAGMA synchronous = NORMAL",
		[DURABILITY_FULL] = "PRAGMA synchronous = FULL",
	};
	int64_t version = 0, tables = 0, ours = 0;
	const char *why;
	int rc;

	rc = sqlite3_open_v2(b->sq_path, &b->sq_db,
	    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
	    NULL);
	if (rc != SQLITE_OK)
		goto fail;
	sqlite3_busy_timeout(b->sq_db, 5000);
	sqlite3_extended_result_codes(b->sq_db, 1);
	/*
	 * Everything is checked before anything is written, so that a file
	 * refused is left exactly as it was.  The first read of the header:
	 * a file that is not a database fails here.
	 */
	if (sqlite_query_int(b->sq_db, "PRAGMA user_version", &version) == -1 ||
	    sqlite_query_int(b->sq_db,
		"SELECT count(*) FROM "
		"sqlite_schema",
		&tables) == -1 ||
	    sqlite_query_int(b->sq_db,
		"SELECT count(*) FROM sqlite_schema WHERE name = 'messages'",
		&ours) == -1) {
		rc = sqlite3_errcode(b->sq_db);
		goto fail;
	}
	if ((tables > 0 && (ours == 0 || version == 0)) ||
	    version > SCHEMA_VERSION) {
		log_error("cannot open store",
		    "path=%s error=\"%s (left as it "
		    "is)\"",
		    log_value(lp, sizeof(lp), b->sq_path),
		    tables > 0 && (ours == 0 || version == 0) ?
			"not a hookcast database" :
			"written by a newer hookcast");
		return -1;
	}
	if ((rc = check_pages(b)) != SQLITE_OK) {
		if (rc == -1)
			return -1;
		goto fail;
	}
	/*
	 * Incremental vacuum (it only takes effect on a new database, before
	 * anything else writes it): the pages a drained backlog leaves free
	 * can be given back to the filesystem.
	 */
	if ((rc = sqlite3_exec(b->sq_db, "PRAGMA auto_vacuum = INCREMENTAL",
		 NULL, NULL, NULL)) != SQLITE_OK ||
	    (rc = sqlite3_exec(b->sq_db, "PRAGMA journal_mode = WAL", NULL,
		 NULL, NULL)) != SQLITE_OK)
		goto fail;
	/* Zeroing freed pages would write every deleted body twice. */
	if (sqlite_exec(b->sq_db, "PRAGMA secure_delete = OFF") == -1 ||
	    sqlite_exec(b->sq_db, sync_pragma[b->sq_cfg->durability]) == -1 ||
	    sqlite_exec(b->sq_db, "PRAGMA foreign_keys = OFF") == -1 ||
	    sqlite_exec(b->sq_db, "BEGIN") == -1 ||
	    (version == 1 && sqlite_exec(b->sq_db, migrate_1) == -1) ||
	    sqlite_exec(b->sq_db, schema) == -1 ||
	    ((version == 1 || version == 2) &&
		sqlite_exec(b->sq_db, migrate_2) == -1) ||
	    sqlite_exec(b->sq_db, "PRAGMA user_version = 3") == -1 ||
	    sqlite_exec(b->sq_db, "COMMIT") == -1 ||
	    sqlite_match_function(b->sq_db) == -1)
		return -1;
	if (version == 1 || version == 2)
		log_info("store upgraded", "path=%s from=%lld to=%d",
		    log_value(lp, sizeof(lp), b->sq_path), (long long)version,
		    SCHEMA_VERSION);
	for (int i = 0; i < NSTMTS; i++)
		if (sqlite3_prepare_v3(b->sq_db, sql[i], -1,
			SQLITE_PREPARE_PERSISTENT, &b->sq_stmt[i],
			NULL) != SQLITE_OK) {
			log_error("cannot open store", "path=%s error=%s",
			    log_value(lp, sizeof(lp), b->sq_path),
			    log_value(lv, sizeof(lv),
				sqlite3_errmsg(b->sq_db)));
			return -1;
		}
	return 0;

fail:
	why = b->sq_db != NULL ? sqlite3_errmsg(b->sq_db) : sqlite3_errstr(rc);
	log_error("cannot open store", "path=%s error=%s",
	    log_value(lp, sizeof(lp), b->sq_path),
	    log_value(lv, sizeof(lv),
		(rc & 0xff) == SQLITE_NOTADB || (rc & 0xff) == SQLITE_CORRUPT ?
		    "not a hookcast database, or corrupt (left as it is)" :
		    why));
	return -1;
}

/* Closes and frees B as it is, writing nothing.  NULL-safe. */
static void
sqlite_free(struct store_backend *b)
{
	if (b == NULL)
		return;
	for (int i = 0; i < NSTMTS; i++)
		sqlite3_finalize(b->sq_stmt[i]);
	if (b->sq_db != NULL)
		sqlite3_close(b->sq_db);
	if (b->sq_lockfd >= 0)
		close(b->sq_lockfd);
	free(b);
}

/* The log folded back whole first, so that a clean stop leaves no WAL. */
static void
sqlite_close(struct store_backend *b)
{
	if (b != NULL && b->sq_db != NULL)
		sqlite3_wal_checkpoint_v2(b->sq_db, NULL,
		    SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
	sqlite_free(b);
}

static struct store_backend *
sqlite_open(const struct config *cfg, struct store_boot *boot)
{
	char lp[LOG_VALUE_MAX], lv[LOG_VALUE_MAX];
	struct store_backend *b;
	int64_t last = 0, bytes = 0;

	if ((b = calloc(1, sizeof(*b))) == NULL) {
		log_error("cannot open store", "reason=nomem");
		return NULL;
	}
	b->sq_cfg = cfg;
	b->sq_lockfd = -1;
	snprintf(b->sq_path, sizeof(b->sq_path), "%s/hookcast.db",
	    cfg->data_dir);
	if (open_dir(b) == -1 || open_db(b) == -1)
		goto fail;
	sqlite_reserve_init(b);
	/* The highest number anything names: see store_open. */
	if (sqlite_query_int(b->sq_db,
		"SELECT max(coalesce((SELECT max(seq) "
		"FROM messages), 0), coalesce((SELECT max(cursor) - 1 FROM "
		"subscribers), 0), coalesce((SELECT max(seq) FROM retries), 0), "
		"coalesce((SELECT max(hi) FROM dead_ranges), 0))",
		&last) == -1 ||
	    sqlite_query_int(b->sq_db,
		"SELECT total(length(body)) FROM "
		"messages",
		&bytes) == -1) {
		log_error("cannot open store", "path=%s error=%s",
		    log_value(lp, sizeof(lp), b->sq_path),
		    log_value(lv, sizeof(lv), sqlite3_errmsg(b->sq_db)));
		goto fail;
	}
	boot->sb_last_seq = (uint64_t)last;
	boot->sb_bytes = (size_t)bytes;
	snprintf(boot->sb_where, sizeof(boot->sb_where), "%s", b->sq_path);
	return b;

fail:
	sqlite_free(b);
	return NULL;
}

static void
sqlite_set_config(struct store_backend *b, const struct config *cfg)
{
	b->sq_cfg = cfg;
}

static const char *
sqlite_error(struct store_backend *b)
{
	return b->sq_error != NULL ? b->sq_error : "unknown error";
}

enum store_res
sqlite_res(struct store_backend *b, int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_ROW:
	case SQLITE_DONE:
		return SR_OK;
	}
	b->sq_error = sqlite3_errstr(rc);
	switch (rc & 0xff) {
	case SQLITE_FULL:
		return SR_FULL;
	/* A row that cannot be written: logged and skipped. */
	case SQLITE_CONSTRAINT:
	case SQLITE_MISMATCH:
	case SQLITE_TOOBIG:
	case SQLITE_RANGE:
		return SR_SKIP;
	}
	return SR_FAIL;
}

int
sqlite_step_done(sqlite3_stmt *s)
{
	int rc = sqlite3_step(s);

	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

void
sqlite_bind_text(sqlite3_stmt *s, int i, const char *text)
{
	if (text != NULL)
		sqlite3_bind_text(s, i, text, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(s, i);
}

void
sqlite_bind_text_or_null(sqlite3_stmt *s, int i, const char *text)
{
	if (text != NULL && *text != '\0')
		sqlite3_bind_text(s, i, text, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(s, i);
}

static enum store_res
sqlite_begin(struct store_backend *b)
{
	b->sq_dead_added = 0;
	b->sq_changes = sqlite3_total_changes64(b->sq_db);
	return sqlite_res(b, sqlite_step_done(b->sq_stmt[S_BEGIN]));
}

static enum store_res
sqlite_commit(struct store_backend *b)
{
	enum store_res res;

	if ((res = sqlite_res(b, sqlite_step_done(b->sq_stmt[S_COMMIT]))) ==
	    SR_OK)
		metrics_dead_letters(b->sq_dead_added);
	return res;
}

static void
sqlite_rollback(struct store_backend *b)
{
	if (!sqlite3_get_autocommit(b->sq_db))
		sqlite_step_done(b->sq_stmt[S_ROLLBACK]);
	/* Whatever the transaction lowered it to is forgotten: start over. */
	b->sq_gc_from = 0;
}

static int
sqlite_wrote(struct store_backend *b)
{
	return sqlite3_total_changes64(b->sq_db) != b->sq_changes;
}

const struct store_backend_ops store_sqlite_ops = {
	.sbo_name = "sqlite",
	.sbo_open = sqlite_open,
	.sbo_close = sqlite_close,
	.sbo_set_config = sqlite_set_config,
	.sbo_error = sqlite_error,
	.sbo_begin = sqlite_begin,
	.sbo_commit = sqlite_commit,
	.sbo_rollback = sqlite_rollback,
	.sbo_wrote = sqlite_wrote,
	.sbo_publish = sqlite_publish,
	.sbo_publish_batch = sqlite_publish_batch,
	.sbo_sub_add = sqlite_sub_add,
	.sbo_sub_update = sqlite_sub_update,
	.sbo_sub_remove = sqlite_sub_remove,
	.sbo_sub_keepalive = sqlite_sub_keepalive,
	.sbo_progress = sqlite_progress,
	.sbo_retry_set = sqlite_retry_set,
	.sbo_retry_done = sqlite_retry_done,
	.sbo_dead_record = sqlite_dead_record,
	.sbo_dead_range = sqlite_dead_range,
	.sbo_dead_sub_gone = sqlite_dead_sub_gone,
	.sbo_dead_list = sqlite_dead_list,
	.sbo_dead_replay = sqlite_dead_replay,
	.sbo_dead_purge = sqlite_dead_purge,
	.sbo_dead_expire = sqlite_dead_expire,
	.sbo_dead_trim = sqlite_dead_trim,
	.sbo_idem_expire = sqlite_idem_expire,
	.sbo_probe = sqlite_probe,
	.sbo_collect = sqlite_collect,
	.sbo_tidy = sqlite_tidy,
	.sbo_full = sqlite_full,
	.sbo_saved_subs = sqlite_saved_subs,
	.sbo_reader_open = sqlite_reader_open,
	.sbo_reader_close = sqlite_reader_close,
	.sbo_read_page = sqlite_read_page,
	.sbo_read_msg = sqlite_read_msg,
	.sbo_read_retries = sqlite_read_retries,
};

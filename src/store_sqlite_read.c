/* store_sqlite_read.c: SQLite reads: saved subscribers, and readers' pages. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "array.h"
#include "log.h"
#include "msg.h"
#include "store_backend.h"
#include "store_sqlite.h"
#include "topics.h"

int
sqlite_saved_subs(struct store_backend *b, int removed,
    int (*fn)(void *, const struct sub_saved *, int), void *arg)
{
	char lp[LOG_VALUE_MAX], lv[LOG_VALUE_MAX];
	sqlite3_stmt *q;
	int rc;

	if (sqlite3_prepare_v2(b->sq_db,
		removed ?
		    "SELECT id, address, url, "
		    "registered_at, last_keepalive, cursor, topics, secret, removed "
		    "FROM subscribers WHERE removed != 0" :
		    "SELECT id, address, url, "
		    "registered_at, last_keepalive, cursor, topics, secret, removed "
		    "FROM subscribers WHERE removed = 0 ORDER BY id",
		-1, &q, NULL) != SQLITE_OK)
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

		if (fn(arg, &sv, sqlite3_column_int(q, 8) - 1) == -1) {
			sqlite3_finalize(q);
			return -1;
		}
	}
	sqlite3_finalize(q);
	if (rc == SQLITE_DONE)
		return 0;
fail:
	b->sq_error = sqlite3_errstr(sqlite3_errcode(b->sq_db));
	log_error("cannot read store", "path=%s error=%s",
	    log_value(lp, sizeof(lp), b->sq_path),
	    log_value(lv, sizeof(lv), sqlite3_errmsg(b->sq_db)));
	return -1;
}

/* ---- readers ------------------------------------------------------------- */

struct store_backend_reader {
	sqlite3 *rd_db;
	sqlite3_stmt *rd_page, *rd_one, *rd_retries;
};

struct store_backend_reader *
sqlite_reader_open(struct store_backend *b)
{
	char lp[LOG_VALUE_MAX], lv[LOG_VALUE_MAX];
	struct store_backend_reader *r;

	if ((r = calloc(1, sizeof(*r))) == NULL) {
		log_error("cannot read store", "path=%s reason=nomem",
		    log_value(lp, sizeof(lp), b->sq_path));
		return NULL;
	}
	if (sqlite3_open_v2(b->sq_path, &r->rd_db,
		SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
		NULL) != SQLITE_OK ||
	    sqlite_match_function(r->rd_db) == -1 ||
	    sqlite3_prepare_v3(r->rd_db,
		"SELECT seq, id, ctype, body, topics, "
		"created FROM messages WHERE seq BETWEEN ?1 AND ?2 AND (?4 = '' OR "
		"hc_topics_match(?4, topics)) ORDER BY seq LIMIT ?3",
		-1, SQLITE_PREPARE_PERSISTENT, &r->rd_page,
		NULL) != SQLITE_OK ||
	    sqlite3_prepare_v3(r->rd_db,
		"SELECT seq, id, ctype, body, topics, "
		"created FROM messages WHERE seq = ?1",
		-1, SQLITE_PREPARE_PERSISTENT, &r->rd_one, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v3(r->rd_db,
		"SELECT seq, attempts, first_at, "
		"last_at, next_at, last_status, last_error FROM retries "
		"WHERE sub = ?1 ORDER BY seq",
		-1, SQLITE_PREPARE_PERSISTENT, &r->rd_retries,
		NULL) != SQLITE_OK) {
		log_error("cannot read store", "path=%s error=%s",
		    log_value(lp, sizeof(lp), b->sq_path),
		    log_value(lv, sizeof(lv),
			r->rd_db != NULL ? sqlite3_errmsg(r->rd_db) : "nomem"));
		sqlite_reader_close(r);
		return NULL;
	}
	sqlite3_busy_timeout(r->rd_db, 5000);
	return r;
}

void
sqlite_reader_close(struct store_backend_reader *r)
{
	if (r == NULL)
		return;
	sqlite3_finalize(r->rd_page);
	sqlite3_finalize(r->rd_one);
	sqlite3_finalize(r->rd_retries);
	sqlite3_close(r->rd_db);
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
sqlite_read_page(struct store_backend_reader *r, uint64_t lo, uint64_t hi,
    const char *topics, size_t max, struct msg **out, uint64_t *next)
{
	char lv[LOG_VALUE_MAX];
	int rc, short_read = 0;
	long n = 0;

	sqlite3_bind_int64(r->rd_page, 1, (sqlite3_int64)lo);
	sqlite3_bind_int64(r->rd_page, 2, (sqlite3_int64)hi);
	sqlite3_bind_int64(r->rd_page, 3, (sqlite3_int64)max);
	sqlite3_bind_text(r->rd_page, 4, topics, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(r->rd_page)) == SQLITE_ROW) {
		if ((out[n] = row_msg(r->rd_page)) == NULL) {
			short_read = 1; /* out of memory: the rest later */
			break;
		}
		n++;
	}
	sqlite3_reset(r->rd_page);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		log_error("store read failed", "error=%s",
		    log_value(lv, sizeof(lv), sqlite3_errmsg(r->rd_db)));
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
sqlite_read_msg(struct store_backend_reader *r, uint64_t seq)
{
	struct msg *m = NULL;

	sqlite3_bind_int64(r->rd_one, 1, (sqlite3_int64)seq);
	if (sqlite3_step(r->rd_one) == SQLITE_ROW)
		m = row_msg(r->rd_one);
	sqlite3_reset(r->rd_one);
	return m;
}

long
sqlite_read_retries(struct store_backend_reader *r, int64_t sub_id,
    struct store_attempt **out)
{
	struct store_attempt *v = NULL;
	size_t n = 0, cap = 0;
	int rc;

	*out = NULL;
	sqlite3_bind_int64(r->rd_retries, 1, sub_id);
	while ((rc = sqlite3_step(r->rd_retries)) == SQLITE_ROW) {
		struct store_attempt *a,
		    *t = array_grow(v, &cap, n + 1, sizeof(*v));

		if (t == NULL)
			break;
		v = t;
		a = &v[n++];
		memset(a, 0, sizeof(*a));
		a->sub_id = sub_id;
		a->seq = (uint64_t)sqlite3_column_int64(r->rd_retries, 0);
		a->attempts = sqlite3_column_int(r->rd_retries, 1);
		a->first_at = sqlite3_column_int64(r->rd_retries, 2);
		a->last_at = sqlite3_column_int64(r->rd_retries, 3);
		a->next_at = sqlite3_column_int64(r->rd_retries, 4);
		a->status = (long)sqlite3_column_int64(r->rd_retries, 5);
		snprintf(a->error, sizeof(a->error), "%s",
		    (const char *)sqlite3_column_text(r->rd_retries, 6));
	}
	sqlite3_reset(r->rd_retries);
	if (rc != SQLITE_DONE) {
		free(v);
		return -1;
	}
	*out = v;
	return (long)n;
}

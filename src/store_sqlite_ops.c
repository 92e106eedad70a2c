/* store_sqlite_ops.c: SQLite writes: publishes, subscribers, cursors, retries. */
#include <stdio.h>
#include <string.h>

#include <sqlite3.h>

#include "msg.h"
#include "store_backend.h"
#include "store_sqlite.h"
#include "topics.h"

/*
 * A publish whose Idempotency-Key was seen within idempotency_window
 * commits nothing and answers with the first message's id.  Keys are looked
 * up here, on the one writer, so two publishers racing with the same key
 * are put in order: the second sees the first.  That holds inside a batch
 * too: a key given twice in one is seen by its second message.
 */
static enum store_res
publish_one(struct store_backend *b, struct store_pub *p, uint64_t seq,
    int64_t now)
{
	sqlite3_stmt *s = b->sq_stmt[S_MSG_INSERT];
	struct msg *m = p->sp_msg;
	const char *topics = topics_text(msg_topics(m));
	int rc;

	p->sp_repeat = 0;
	if (p->sp_key != NULL) {
		sqlite3_stmt *g = b->sq_stmt[S_IDEM_GET];

		sqlite3_bind_text(g, 1, p->sp_key, -1, SQLITE_STATIC);
		sqlite3_bind_int64(g, 2,
		    now - b->sq_cfg->idempotency_window * 1000);
		if ((rc = sqlite3_step(g)) == SQLITE_ROW) {
			p->sp_repeat = 1;
			snprintf(p->sp_first, sizeof(p->sp_first), "%s",
			    (const char *)sqlite3_column_text(g, 0));
			p->sp_fanout = (long)sqlite3_column_int64(g, 1);
		}
		sqlite3_reset(g);
		if (rc != SQLITE_ROW && rc != SQLITE_DONE)
			return sqlite_res(b, rc);
		if (p->sp_repeat)
			return SR_OK;
	}
	msg_set_seq(m, seq);
	msg_set_created(m, now);
	sqlite3_bind_int64(s, 1, (sqlite3_int64)seq);
	sqlite3_bind_text(s, 2, msg_id(m), -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, msg_ctype(m), -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 4, now);
	sqlite3_bind_blob64(s, 5, msg_body(m), msg_len(m), SQLITE_STATIC);
	if (*topics != '\0')
		sqlite3_bind_text(s, 6, topics, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(s, 6);
	if ((rc = sqlite_step_done(s)) != SQLITE_OK || p->sp_key == NULL)
		return sqlite_res(b, rc);
	s = b->sq_stmt[S_IDEM_SET];
	sqlite3_bind_text(s, 1, p->sp_key, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, msg_id(m), -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, p->sp_fanout);
	sqlite3_bind_int64(s, 4, now);
	return sqlite_res(b, sqlite_step_done(s));
}

enum store_res
sqlite_publish(struct store_backend *b, struct store_req *req, uint64_t seq,
    int64_t now)
{
	struct store_pub p = { .sp_msg = req->r_msg,
		.sp_key = req->r_key,
		.sp_fanout = req->r_fanout };
	enum store_res res = publish_one(b, &p, seq, now);

	req->r_repeat = p.sp_repeat;
	if (p.sp_repeat) {
		memcpy(req->r_first, p.sp_first, sizeof(req->r_first));
		req->r_fanout = p.sp_fanout;
	}
	return res;
}

/*
 * A batch inside the writer's transaction: a savepoint around it, so that
 * a message refused (SR_SKIP) takes back those before it and the rest of
 * the transaction goes on.  A failure of the backend (SR_FULL, SR_FAIL)
 * fails the whole transaction, which the writer rolls back.
 */
enum store_res
sqlite_publish_batch(struct store_backend *b, struct store_pub *p, size_t n,
    uint64_t seq, int64_t now)
{
	enum store_res res;
	const char *why;
	int rc;

	if ((res = sqlite_res(b, sqlite_step_done(b->sq_stmt[S_SAVEPOINT]))) !=
	    SR_OK)
		return res == SR_SKIP ? SR_FAIL : res;
	for (size_t i = 0; i < n; i++) {
		if ((res = publish_one(b, &p[i], seq, now)) != SR_OK)
			break;
		if (!p[i].sp_repeat)
			seq++;
	}
	if (res == SR_OK)
		return sqlite_res(b, sqlite_step_done(b->sq_stmt[S_RELEASE]));
	if (res != SR_SKIP)
		return res;
	/* Keep the refusal's reason: undoing must not overwrite it. */
	why = b->sq_error;
	if ((rc = sqlite_step_done(b->sq_stmt[S_ROLLBACK_TO])) != SQLITE_OK ||
	    (rc = sqlite_step_done(b->sq_stmt[S_RELEASE])) != SQLITE_OK)
		return sqlite_res(b, rc) == SR_FULL ? SR_FULL : SR_FAIL;
	b->sq_error = why;
	return SR_SKIP;
}

enum store_res
sqlite_sub_add(struct store_backend *b, struct sub *sub,
    const struct topics *topics, const char *secret, uint64_t cursor,
    int64_t *id)
{
	sqlite3_stmt *s = b->sq_stmt[S_SUB_INSERT];
	int rc;

	sqlite3_bind_text(s, 1, sub_address(sub), -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, sub_url_text(sub), -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, sub_registered_ms(sub));
	sqlite3_bind_int64(s, 4, sub_keepalive_ms(sub));
	sqlite3_bind_int64(s, 5, (sqlite3_int64)cursor);
	sqlite_bind_text_or_null(s, 6, topics_text(topics));
	sqlite_bind_text_or_null(s, 7, secret);
	if ((rc = sqlite_step_done(s)) != SQLITE_OK)
		return sqlite_res(b, rc);
	*id = sqlite3_last_insert_rowid(b->sq_db);
	return SR_OK;
}

enum store_res
sqlite_sub_update(struct store_backend *b, int64_t id,
    const struct topics *topics, const char *secret)
{
	sqlite3_stmt *s = b->sq_stmt[S_SUB_UPDATE];

	sqlite3_bind_int64(s, 1, id);
	sqlite_bind_text_or_null(s, 2, topics_text(topics));
	sqlite_bind_text_or_null(s, 3, secret);
	return sqlite_res(b, sqlite_step_done(s));
}

/* The removed column: why + 1 (0: it has not left). */
enum store_res
sqlite_sub_remove(struct store_backend *b, int64_t id, enum sub_end why)
{
	sqlite3_stmt *s = b->sq_stmt[S_SUB_REMOVE];

	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int(s, 2, 1 + (int)why);
	return sqlite_res(b, sqlite_step_done(s));
}

enum store_res
sqlite_sub_keepalive(struct store_backend *b, int64_t id, int64_t ka)
{
	sqlite3_stmt *s = b->sq_stmt[S_SUB_KA];

	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int64(s, 2, ka);
	return sqlite_res(b, sqlite_step_done(s));
}

enum store_res
sqlite_progress(struct store_backend *b, int64_t id, uint64_t cursor)
{
	sqlite3_stmt *s = b->sq_stmt[S_SUB_CURSOR];

	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int64(s, 2, (sqlite3_int64)cursor);
	return sqlite_res(b, sqlite_step_done(s));
}

enum store_res
sqlite_retry_set(struct store_backend *b, const struct store_attempt *a)
{
	sqlite3_stmt *s = b->sq_stmt[S_RETRY_SET];

	sqlite3_bind_int64(s, 1, a->sub_id);
	sqlite3_bind_int64(s, 2, (sqlite3_int64)a->seq);
	sqlite3_bind_int(s, 3, a->attempts);
	sqlite3_bind_int64(s, 4, a->first_at);
	sqlite3_bind_int64(s, 5, a->last_at);
	sqlite3_bind_int64(s, 6, a->next_at);
	sqlite3_bind_int64(s, 7, a->status);
	sqlite3_bind_text(s, 8, a->error, -1, SQLITE_STATIC);
	return sqlite_res(b, sqlite_step_done(s));
}

enum store_res
sqlite_retry_done(struct store_backend *b, int64_t id, uint64_t seq)
{
	sqlite3_stmt *s = b->sq_stmt[S_RETRY_DEL];

	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int64(s, 2, (sqlite3_int64)seq);
	/* Its message may be garbage now, behind the collector. */
	if (seq < b->sq_gc_from)
		b->sq_gc_from = seq;
	return sqlite_res(b, sqlite_step_done(s));
}

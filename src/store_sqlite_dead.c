/*
 * store_sqlite_dead.c: the SQLite backend's dead letters, kept by reference.
 *
 * A dead letter is a message a subscriber was owed, named by a row of
 * dead_ranges: an address, a stretch of sequence numbers LO..HI, the topics
 * the subscriber had (NULL: all), a reason and a time.  A removal records
 * one row however long its backlog; a retry that ran out is a range of one
 * that keeps its history.  The messages of a range are found by joining
 * messages on seq between LO and HI, keeping those its topics match (the
 * way delivery's backlog pages are read), so the listing, replay and purge
 * expand ranges as they page through them, oldest range first.  Replaying
 * or purging part of a range trims or splits it.  A range keeps every body
 * in its span (store_sqlite_maint.c), so it can be expanded as long as it
 * lives; dead_letter_max and the retention drop whole old ranges or trim
 * their low ends, counting a range's span.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "array.h"
#include "store_backend.h"
#include "store_sqlite.h"

/*
 * The endpoints' filters, on ranges D joined to their messages M: ?1
 * address, ?2 the sequence number of a message id (NULL: any); and only
 * the messages a range's topics match.
 */
#define DL_FILTER \
	" (?1 IS NULL OR d.address = ?1) AND (?2 IS NULL OR " \
	"(d.lo <= ?2 AND d.hi >= ?2 AND m.seq = ?2)) AND " \
	"(d.topics IS NULL OR hc_topics_match(d.topics, m.topics))"

enum store_res
sqlite_dead_record(struct store_backend *b, const struct store_attempt *a,
    const char *address, const char *reason, int64_t now)
{
	sqlite3_stmt *s = b->sq_stmt[S_DEAD_ONE];
	int rc;

	if (b->sq_cfg->dead_letter_max > 0) {
		sqlite3_bind_text(s, 1, address, -1, SQLITE_STATIC);
		sqlite3_bind_int64(s, 2, (sqlite3_int64)a->seq);
		sqlite3_bind_int(s, 3, a->attempts);
		sqlite3_bind_int64(s, 4, a->first_at);
		sqlite3_bind_int64(s, 5, a->last_at);
		sqlite3_bind_int64(s, 6, now);
		sqlite3_bind_int64(s, 7, a->status);
		sqlite3_bind_text(s, 8, a->error, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 9, reason, -1, SQLITE_STATIC);
		if ((rc = sqlite_step_done(s)) != SQLITE_OK)
			return sqlite_res(b, rc);
		b->sq_dead_added += (uint64_t)sqlite3_changes(b->sq_db);
	}
	s = b->sq_stmt[S_RETRY_DEL];
	sqlite3_bind_int64(s, 1, a->sub_id);
	sqlite3_bind_int64(s, 2, (sqlite3_int64)a->seq);
	if (a->seq < b->sq_gc_from)
		b->sq_gc_from = a->seq;
	return sqlite_res(b, sqlite_step_done(s));
}

enum store_res
sqlite_dead_sub_gone(struct store_backend *b, int64_t id, const char *address,
    const char *reason, int dead, int64_t now)
{
	sqlite3_stmt *s;
	int rc;

	if (dead && b->sq_cfg->dead_letter_max > 0) {
		s = b->sq_stmt[S_DEAD_RETRIES];
		sqlite3_bind_int64(s, 1, id);
		sqlite3_bind_text(s, 2, address, -1, SQLITE_STATIC);
		sqlite3_bind_int64(s, 3, now);
		sqlite3_bind_text(s, 4, reason, -1, SQLITE_STATIC);
		if ((rc = sqlite_step_done(s)) != SQLITE_OK)
			return sqlite_res(b, rc);
		b->sq_dead_added += (uint64_t)sqlite3_changes(b->sq_db);
	}
	s = b->sq_stmt[S_RETRY_DEL_SUB];
	sqlite3_bind_int64(s, 1, id);
	if ((rc = sqlite_step_done(s)) != SQLITE_OK)
		return sqlite_res(b, rc);
	b->sq_gc_from = 0; /* their messages may be garbage now */
	s = b->sq_stmt[S_SUB_DELETE];
	sqlite3_bind_int64(s, 1, id);
	return sqlite_res(b, sqlite_step_done(s));
}

/*
 * LO..HI that a subscriber of TOPICS ("": all) was owed, as dead letters:
 * one row (one more for each of its retries in the stretch, which
 * sub_gone records with their history), whatever the length.  The count
 * for the metric is the span: for a subscriber with topics, an upper bound.
 */
enum store_res
sqlite_dead_range(struct store_backend *b, int64_t id, const char *address,
    uint64_t lo, uint64_t hi, const char *topics, const char *reason,
    int64_t now)
{
	sqlite3_stmt *s = b->sq_stmt[S_DEAD_RANGE];
	int rc;

	if (b->sq_cfg->dead_letter_max == 0)
		return SR_OK;
	sqlite3_bind_text(s, 1, address, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, (sqlite3_int64)lo);
	sqlite3_bind_int64(s, 3, (sqlite3_int64)hi);
	sqlite3_bind_int64(s, 4, now);
	sqlite3_bind_text(s, 5, reason, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 6, id);
	sqlite_bind_text_or_null(s, 7, topics);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		b->sq_dead_added += (uint64_t)sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return sqlite_res(b, rc);
}

/* Takes FROM..TO out of range ID: it shrinks, splits in two, or goes. */
static int
range_cut(struct store_backend *b, int64_t id, uint64_t from, uint64_t to)
{
	static const enum stmt steps[] = {
		S_CUT_TAIL,
		S_CUT_HEAD,
		S_CUT_LOW,
		S_CUT_ALL,
	};
	int rc;

	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		sqlite3_stmt *s = b->sq_stmt[steps[i]];

		sqlite3_bind_int64(s, 1, id);
		sqlite3_bind_int64(s, 2, (sqlite3_int64)from);
		sqlite3_bind_int64(s, 3, (sqlite3_int64)to);
		if ((rc = sqlite_step_done(s)) != SQLITE_OK)
			return rc;
	}
	if (from < b->sq_gc_from)
		b->sq_gc_from = from; /* what it kept may go now */
	return SQLITE_OK;
}

/*
 * Binds the filters of REQ to S (?1, ?2): 1 when they can match, 0 when the
 * message id names no dead letter, or an SQLite code (negated) on error.
 */
static int
bind_filters(struct store_backend *b, struct store_req *req, sqlite3_stmt *s,
    int64_t *seq)
{
	sqlite3_stmt *q = b->sq_stmt[S_DL_SEQ];
	int rc;

	*seq = -1;
	sqlite_bind_text(s, 1, req->r_address);
	if (req->r_id == NULL) {
		sqlite3_bind_null(s, 2);
		return 1;
	}
	sqlite3_bind_text(q, 1, req->r_id, -1, SQLITE_STATIC);
	if ((rc = sqlite3_step(q)) == SQLITE_ROW)
		*seq = sqlite3_column_int64(q, 0);
	sqlite3_reset(q);
	sqlite3_clear_bindings(q);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return -rc;
	if (*seq == -1)
		return 0;
	sqlite3_bind_int64(s, 2, *seq);
	return 1;
}

/*
 * Q prepared, with REQ's filters bound (bind_filters, which sets *SEQ): 1
 * with the statement in *OUT; else, nothing left to finalize, 0 when the
 * message id names no dead letter, or an SQLite code (negated) on error.
 */
static int
prepare_filtered(struct store_backend *b, struct store_req *req, const char *q,
    sqlite3_stmt **out, int64_t *seq)
{
	int rc;

	*seq = -1;
	if ((rc = sqlite3_prepare_v2(b->sq_db, q, -1, out, NULL)) != SQLITE_OK)
		return -rc;
	if ((rc = bind_filters(b, req, *out, seq)) <= 0)
		sqlite3_finalize(*out);
	return rc;
}

/* Appends TEXT to the growing *buf: its offset, or -1 when out of memory. */
static long
text_add(char **buf, size_t *len, size_t *cap, const char *text)
{
	size_t n = strlen(text != NULL ? text : "") + 1;
	long at = (long)*len;
	char *p;

	if ((p = array_grow(*buf, cap, *len + n, 1)) == NULL)
		return -1;
	*buf = p;
	memcpy(*buf + *len, text != NULL ? text : "", n);
	*len += n;
	return at;
}

/*
 * A page of dead letters, oldest range first and in order within each, up
 * to r_limit, from past r_after_range/r_after_seq; where a full page ended
 * goes in r_next_range/r_next_seq.  Their strings go into one buffer
 * (r_dead_text) and are pointed at once it has stopped moving.  Out of
 * memory: r_status STORE_ERROR, the batch goes on.
 */
enum store_res
sqlite_dead_list(struct store_backend *b, struct store_req *req)
{
	static const char q[] =
	    "SELECT d.id, m.seq, m.id, d.address, "
	    "d.attempts, d.first_at, d.last_at, d.dead_at, d.last_status, "
	    "d.last_error, d.reason FROM dead_ranges d JOIN messages m ON "
	    "m.seq >= max(d.lo, CASE WHEN d.id = ?4 THEN ?5 + 1 ELSE 0 END) "
	    "AND m.seq <= d.hi WHERE d.id >= ?4 AND" DL_FILTER
	    " ORDER BY d.id, m.seq LIMIT ?3";
	struct store_dead *rows = NULL;
	struct {
		long id, address, error, reason;
	} *at = NULL;
	size_t n = 0, cap = 0, acap = 0, len = 0, tcap = 0;
	int64_t last_range = 0, seq;
	uint64_t last_seq = 0;
	char *text = NULL;
	sqlite3_stmt *s;
	int rc;

	if ((rc = prepare_filtered(b, req, q, &s, &seq)) <= 0)
		return sqlite_res(b, -rc);
	sqlite3_bind_int64(s, 3, req->r_limit > 0 ? req->r_limit : -1);
	sqlite3_bind_int64(s, 4, req->r_after_range);
	sqlite3_bind_int64(s, 5, (sqlite3_int64)req->r_after_seq);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct store_dead *v;
		void *w;

		if ((v = array_grow(rows, &cap, n + 1, sizeof(*rows))) == NULL)
			goto nomem;
		rows = v;
		if ((w = array_grow(at, &acap, n + 1, sizeof(*at))) == NULL)
			goto nomem;
		at = w;
		memset(&rows[n], 0, sizeof(rows[n]));
		last_range = sqlite3_column_int64(s, 0);
		last_seq = (uint64_t)sqlite3_column_int64(s, 1);
		rows[n].sd_attempts = sqlite3_column_int(s, 4);
		rows[n].sd_first_at = sqlite3_column_int64(s, 5);
		rows[n].sd_last_at = sqlite3_column_int64(s, 6);
		rows[n].sd_dead_at = sqlite3_column_int64(s, 7);
		rows[n].sd_status = (long)sqlite3_column_int64(s, 8);
		if ((at[n].id = text_add(&text, &len, &tcap,
			 (const char *)sqlite3_column_text(s, 2))) == -1 ||
		    (at[n].address = text_add(&text, &len, &tcap,
			 (const char *)sqlite3_column_text(s, 3))) == -1 ||
		    (at[n].error = text_add(&text, &len, &tcap,
			 (const char *)sqlite3_column_text(s, 9))) == -1 ||
		    (at[n].reason = text_add(&text, &len, &tcap,
			 (const char *)sqlite3_column_text(s, 10))) == -1)
			goto nomem;
		n++;
	}
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE) {
		free(rows);
		free(at);
		free(text);
		return sqlite_res(b, rc);
	}
	for (size_t i = 0; i < n; i++) {
		rows[i].sd_msg_id = text + at[i].id;
		rows[i].sd_address = text + at[i].address;
		rows[i].sd_error = text + at[i].error;
		rows[i].sd_reason = text + at[i].reason;
	}
	free(at);
	req->r_dead = rows;
	req->r_ndead = n;
	req->r_dead_text = text;
	if (n > 0 && (long)n == req->r_limit) {
		req->r_next_range = last_range;
		req->r_next_seq = last_seq;
	}
	return SR_OK;

nomem:
	sqlite3_finalize(s);
	free(rows);
	free(at);
	free(text);
	req->r_status = STORE_ERROR;
	return SR_OK;
}

/* Runs the one-off query Q with REQ's filters: its changes, or counts. */
static int
run_filtered(struct store_backend *b, struct store_req *req, const char *q,
    long *count)
{
	sqlite3_stmt *s;
	int64_t seq;
	int rc;

	*count = 0;
	if ((rc = prepare_filtered(b, req, q, &s, &seq)) <= 0)
		return -rc;
	if ((rc = sqlite3_step(s)) == SQLITE_ROW)
		*count = (long)sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* The first column of every row of S (then finalized): *out, free() it. */
static int
column_ids(sqlite3_stmt *s, int64_t **out, size_t *nout)
{
	int64_t *v = NULL;
	size_t n = 0, cap = 0;
	int rc;

	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		int64_t *w = array_grow(v, &cap, n + 1, sizeof(*v));

		if (w == NULL) {
			rc = SQLITE_NOMEM;
			break;
		}
		v = w;
		v[n++] = sqlite3_column_int64(s, 0);
	}
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE) {
		free(v);
		return rc;
	}
	*out = v;
	*nout = n;
	return SQLITE_OK;
}

/*
 * By address: the ranges go whole (the count of their messages first).
 * By message id: each range holding it (that its topics match) loses it.
 */
enum store_res
sqlite_dead_purge(struct store_backend *b, struct store_req *req)
{
	static const char count[] =
	    "SELECT count(*) FROM dead_ranges d JOIN "
	    "messages m ON m.seq BETWEEN d.lo AND d.hi WHERE" DL_FILTER;
	static const char ids[] = "SELECT d.id FROM dead_ranges d JOIN "
				  "messages m ON m.seq = ?2 WHERE" DL_FILTER;
	int64_t *v = NULL, seq;
	size_t n = 0;
	sqlite3_stmt *s;
	int rc;

	req->r_count = 0;
	if (req->r_id == NULL) {
		if ((rc = run_filtered(b, req, count, &req->r_count)) !=
			SQLITE_OK ||
		    (rc = run_filtered(b, req,
			 "DELETE FROM dead_ranges AS d "
			 "WHERE ?1 IS NULL OR d.address = ?1",
			 &(long){ 0 })) != SQLITE_OK)
			return sqlite_res(b, rc);
		b->sq_gc_from = 0; /* their messages may go now */
		return SR_OK;
	}
	if ((rc = prepare_filtered(b, req, ids, &s, &seq)) <= 0)
		return sqlite_res(b, -rc);
	/* The ranges' ids first: the statement reads what range_cut changes. */
	if ((rc = column_ids(s, &v, &n)) != SQLITE_OK)
		return sqlite_res(b, rc);
	for (size_t i = 0; i < n && rc == SQLITE_OK; i++)
		rc = range_cut(b, v[i], (uint64_t)seq, (uint64_t)seq);
	free(v);
	if (rc != SQLITE_OK)
		return sqlite_res(b, rc);
	req->r_count = (long)n;
	return SR_OK;
}

/* One dead letter on its way back to a retry. */
struct dl_replay {
	int64_t dr_range;
	int64_t dr_sub_id;
	uint64_t dr_seq;
};

/*
 * Up to r_limit of the dead letters REQ selects whose address has a
 * subscriber now, with its id, oldest range first.
 */
static int
replay_select(struct store_backend *b, struct store_req *req,
    struct dl_replay **out, size_t *nout)
{
	/* The subscriber looked up per range: the ranges lead, in order. */
	static const char q[] =
	    "SELECT d.id, m.seq, (SELECT s.id FROM "
	    "subscribers s WHERE s.address = d.address AND s.removed = 0) "
	    "FROM dead_ranges d JOIN messages m ON m.seq BETWEEN d.lo AND d.hi "
	    "WHERE EXISTS (SELECT 1 FROM subscribers s WHERE s.address = "
	    "d.address AND s.removed = 0) AND" DL_FILTER
	    " ORDER BY d.id, m.seq LIMIT ?3";
	struct dl_replay *items = NULL;
	size_t n = 0, cap = 0;
	sqlite3_stmt *s;
	int64_t seq;
	int rc;

	*out = NULL;
	*nout = 0;
	if ((rc = prepare_filtered(b, req, q, &s, &seq)) <= 0)
		return -rc;
	sqlite3_bind_int64(s, 3, req->r_limit > 0 ? req->r_limit : -1);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct dl_replay *v = array_grow(items, &cap, n + 1,
		    sizeof(*items));

		if (v == NULL) {
			rc = SQLITE_NOMEM;
			break;
		}
		items = v;
		items[n].dr_range = sqlite3_column_int64(s, 0);
		items[n].dr_seq = (uint64_t)sqlite3_column_int64(s, 1);
		items[n++].dr_sub_id = sqlite3_column_int64(s, 2);
	}
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE) {
		free(items);
		return rc;
	}
	*out = items;
	*nout = n;
	return SQLITE_OK;
}

static int
replay_cmp(const void *x, const void *y)
{
	const struct store_replay *a = x, *b = y;

	if (a->rp_sub_id != b->rp_sub_id)
		return a->rp_sub_id < b->rp_sub_id ? -1 : 1;
	return a->rp_seq < b->rp_seq ? -1 : a->rp_seq > b->rp_seq;
}

/*
 * Takes the replayed out of their ranges: by message id, that message;
 * otherwise each range up to the last one replayed, and once the page was
 * not full every range the filter selects is spent.
 */
static int
replay_cut(struct store_backend *b, struct store_req *req,
    const struct dl_replay *items, size_t n)
{
	int rc = SQLITE_OK;

	for (size_t i = 0; i < n && rc == SQLITE_OK; i++) {
		if (i + 1 < n && items[i + 1].dr_range == items[i].dr_range &&
		    req->r_id == NULL)
			continue;
		rc = range_cut(b, items[i].dr_range,
		    req->r_id != NULL ? items[i].dr_seq : 0, items[i].dr_seq);
	}
	if (rc != SQLITE_OK || req->r_id != NULL || (long)n == req->r_limit)
		return rc;
	return run_filtered(b, req,
	    "DELETE FROM dead_ranges AS d WHERE "
	    "(?1 IS NULL OR d.address = ?1) AND d.address IN (SELECT address "
	    "FROM subscribers WHERE removed = 0)",
	    &(long){ 0 });
}

/*
 * Up to r_limit dead letters back into retries for the subscriber
 * registered now at their address; what to hand to delivery after the
 * commit goes in r_replay.
 */
enum store_res
sqlite_dead_replay(struct store_backend *b, struct store_req *req, int64_t now)
{
	sqlite3_stmt *ins = b->sq_stmt[S_RETRY_SET];
	struct dl_replay *items = NULL;
	struct store_replay *out = NULL;
	size_t n = 0, k = 0;
	int rc;

	if (req->r_address != NULL) {
		sqlite3_stmt *l = b->sq_stmt[S_SUB_LOOKUP];

		sqlite3_bind_text(l, 1, req->r_address, -1, SQLITE_STATIC);
		rc = sqlite3_step(l);
		sqlite3_reset(l);
		sqlite3_clear_bindings(l);
		if (rc == SQLITE_DONE) {
			req->r_status = STORE_CONFLICT;
			return SR_OK;
		}
		if (rc != SQLITE_ROW)
			return sqlite_res(b, rc);
	}
	if ((rc = replay_select(b, req, &items, &n)) != SQLITE_OK)
		return sqlite_res(b, rc);
	for (size_t i = 0; i < n; i++) {
		sqlite3_bind_int64(ins, 1, items[i].dr_sub_id);
		sqlite3_bind_int64(ins, 2, (sqlite3_int64)items[i].dr_seq);
		sqlite3_bind_int(ins, 3, 0);
		sqlite3_bind_int64(ins, 4, now);
		sqlite3_bind_int64(ins, 5, 0);
		sqlite3_bind_int64(ins, 6, now);
		sqlite3_bind_int(ins, 7, 0);
		sqlite3_bind_text(ins, 8, "", -1, SQLITE_STATIC);
		if ((rc = sqlite_step_done(ins)) != SQLITE_OK)
			goto fail;
	}
	if ((rc = replay_cut(b, req, items, n)) != SQLITE_OK)
		goto fail;
	if (n > 0 && (out = calloc(n, sizeof(*out))) == NULL) {
		rc = SQLITE_NOMEM;
		goto fail;
	}
	for (size_t i = 0; i < n; i++) {
		out[i].rp_sub_id = items[i].dr_sub_id;
		out[i].rp_seq = items[i].dr_seq;
	}
	/* Two dead letters of one message for one subscriber: one delivery. */
	if (n > 0)
		qsort(out, n, sizeof(*out), replay_cmp);
	for (size_t i = 0; i < n; i++)
		if (k == 0 || replay_cmp(&out[k - 1], &out[i]) != 0)
			out[k++] = out[i];
	free(items);
	req->r_count = (long)k;
	req->r_replay = out;
	req->r_nreplay = k;
	return SR_OK;

fail:
	free(items);
	return sqlite_res(b, rc);
}

/* Steps S (bound) to the end, adding up its one column in *n. */
static int
step_sum(sqlite3_stmt *s, long *n)
{
	int rc;

	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		*n += (long)sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* Ranges recorded before BEFORE: how many messages they spanned in *n. */
enum store_res
sqlite_dead_expire(struct store_backend *b, int64_t before, long *n)
{
	sqlite3_stmt *s = b->sq_stmt[S_DL_EXPIRE];

	sqlite3_bind_int64(s, 1, before);
	return sqlite_res(b, step_sum(s, n));
}

/*
 * Keeps the newest KEEP messages (counting spans): older ranges go whole,
 * and the one across the line loses its low end.
 */
enum store_res
sqlite_dead_trim(struct store_backend *b, long keep, long *n)
{
	sqlite3_stmt *s = b->sq_stmt[S_DL_TRIM];
	int64_t total = 0;
	int rc;

	sqlite3_bind_int64(s, 1, keep);
	if ((rc = step_sum(s, n)) != SQLITE_OK)
		return sqlite_res(b, rc);
	s = b->sq_stmt[S_DL_TOTAL];
	if ((rc = sqlite3_step(s)) == SQLITE_ROW)
		total = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	if (rc != SQLITE_ROW)
		return sqlite_res(b, rc);
	if (total <= keep)
		return SR_OK;
	s = b->sq_stmt[S_DL_TRIM_LOW];
	sqlite3_bind_int64(s, 1, total - keep);
	if ((rc = sqlite_step_done(s)) != SQLITE_OK)
		return sqlite_res(b, rc);
	*n += (long)(total - keep);
	return SR_OK;
}

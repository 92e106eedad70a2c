/* store_sqlite_dead.c: the SQLite backend's dead letters. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "store_backend.h"
#include "store_sqlite.h"

/* The filters of the endpoints: ?1 address, ?2 message id (NULL: any). */
static const char dl_filter[] = " WHERE (?1 IS NULL OR d.address = ?1) AND "
    "(?2 IS NULL OR d.msg_id = ?2)";

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
	b->sq_gc_from = 0;	/* their messages may be garbage now */
	s = b->sq_stmt[S_SUB_DELETE];
	sqlite3_bind_int64(s, 1, id);
	return sqlite_res(b, sqlite_step_done(s));
}

/* LO..HI that a subscriber of TOPICS ("": all) was owed, as dead letters. */
enum store_res
sqlite_dead_range(struct store_backend *b, int64_t id, const char *address,
    uint64_t lo, uint64_t hi, const char *topics, const char *reason,
    int64_t now)
{
	sqlite3_stmt *s = b->sq_stmt[S_DEAD_RANGE];
	int rc;

	if (b->sq_cfg->dead_letter_max == 0)
		return SR_OK;
	sqlite3_bind_int64(s, 6, id);
	sqlite3_bind_text(s, 7, topics != NULL ? topics : "", -1,
	    SQLITE_STATIC);
	sqlite3_bind_text(s, 1, address, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, (sqlite3_int64)lo);
	sqlite3_bind_int64(s, 3, (sqlite3_int64)hi);
	sqlite3_bind_int64(s, 4, now);
	sqlite3_bind_text(s, 5, reason, -1, SQLITE_STATIC);
	if ((rc = sqlite_step_done(s)) == SQLITE_OK)
		b->sq_dead_added += (uint64_t)sqlite3_changes(b->sq_db);
	return sqlite_res(b, rc);
}

/* Appends TEXT to the growing *buf: its offset, or -1 when out of memory. */
static long
text_add(char **buf, size_t *len, size_t *cap, const char *text)
{
	size_t n = strlen(text != NULL ? text : "") + 1;
	long at = (long)*len;

	if (*len + n > *cap) {
		size_t ncap = *cap ? *cap * 2 : 4096;
		char *p;

		while (ncap < *len + n)
			ncap *= 2;
		if ((p = realloc(*buf, ncap)) == NULL)
			return -1;
		*buf = p;
		*cap = ncap;
	}
	memcpy(*buf + *len, text != NULL ? text : "", n);
	*len += n;
	return at;
}

/*
 * The rows, oldest first, up to r_limit.  Their strings go into one buffer
 * (r_dead_text) and are pointed at once it has stopped moving.  Out of
 * memory: r_status STORE_ERROR, the batch goes on.
 */
enum store_res
sqlite_dead_list(struct store_backend *b, struct store_req *req)
{
	char q[512];
	struct store_dead *rows = NULL;
	struct { long id, address, error, reason; } *at = NULL;
	size_t n = 0, cap = 0, len = 0, tcap = 0;
	char *text = NULL;
	sqlite3_stmt *s;
	int rc;

	snprintf(q, sizeof(q), "SELECT d.msg_id, d.address, d.attempts, "
	    "d.first_at, d.last_at, d.dead_at, d.last_status, d.last_error, "
	    "d.reason FROM dead_letters d%s ORDER BY d.id LIMIT ?3", dl_filter);
	if ((rc = sqlite3_prepare_v2(b->sq_db, q, -1, &s, NULL)) != SQLITE_OK)
		return sqlite_res(b, rc);
	sqlite_bind_text(s, 1, req->r_address);
	sqlite_bind_text(s, 2, req->r_id);
	sqlite3_bind_int64(s, 3, req->r_limit);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			struct store_dead *v = realloc(rows, ncap * sizeof(*v));
			void *w;

			if (v == NULL)
				goto nomem;
			rows = v;
			if ((w = realloc(at, ncap * sizeof(*at))) == NULL)
				goto nomem;
			at = w;
			cap = ncap;
		}
		memset(&rows[n], 0, sizeof(rows[n]));
		rows[n].sd_attempts = sqlite3_column_int(s, 2);
		rows[n].sd_first_at = sqlite3_column_int64(s, 3);
		rows[n].sd_last_at = sqlite3_column_int64(s, 4);
		rows[n].sd_dead_at = sqlite3_column_int64(s, 5);
		rows[n].sd_status = (long)sqlite3_column_int64(s, 6);
		if ((at[n].id = text_add(&text, &len, &tcap,
		    (const char *)sqlite3_column_text(s, 0))) == -1 ||
		    (at[n].address = text_add(&text, &len, &tcap,
		    (const char *)sqlite3_column_text(s, 1))) == -1 ||
		    (at[n].error = text_add(&text, &len, &tcap,
		    (const char *)sqlite3_column_text(s, 7))) == -1 ||
		    (at[n].reason = text_add(&text, &len, &tcap,
		    (const char *)sqlite3_column_text(s, 8))) == -1)
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
	return SR_OK;

nomem:
	sqlite3_finalize(s);
	free(rows);
	free(at);
	free(text);
	req->r_status = STORE_ERROR;
	return SR_OK;
}

enum store_res
sqlite_dead_purge(struct store_backend *b, struct store_req *req)
{
	char q[256];
	sqlite3_stmt *s;
	int rc;

	snprintf(q, sizeof(q), "DELETE FROM dead_letters AS d%s", dl_filter);
	if ((rc = sqlite3_prepare_v2(b->sq_db, q, -1, &s, NULL)) != SQLITE_OK)
		return sqlite_res(b, rc);
	sqlite_bind_text(s, 1, req->r_address);
	sqlite_bind_text(s, 2, req->r_id);
	rc = sqlite3_step(s);
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE)
		return sqlite_res(b, rc);
	req->r_count = sqlite3_changes(b->sq_db);
	b->sq_gc_from = 0;	/* their messages may go now */
	return SR_OK;
}

/* One dead letter on its way back to a retry. */
struct dl_replay {
	int64_t		 dr_dead_id;
	int64_t		 dr_sub_id;
	uint64_t	 dr_seq;
};

/* The dead letters REQ selects, with who is registered at their address now. */
static int
replay_select(struct store_backend *b, struct store_req *req,
    struct dl_replay **out, size_t *nout)
{
	char q[512];
	struct dl_replay *items = NULL;
	size_t n = 0, cap = 0;
	sqlite3_stmt *s;
	int rc;

	snprintf(q, sizeof(q), "SELECT d.id, d.seq, s.id FROM dead_letters d "
	    "JOIN subscribers s ON s.address = d.address AND s.removed = 0%s "
	    "ORDER BY s.id, d.seq, d.id", dl_filter);
	if ((rc = sqlite3_prepare_v2(b->sq_db, q, -1, &s, NULL)) != SQLITE_OK)
		return rc;
	sqlite_bind_text(s, 1, req->r_address);
	sqlite_bind_text(s, 2, req->r_id);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			struct dl_replay *v = realloc(items, ncap * sizeof(*v));

			if (v == NULL) {
				rc = SQLITE_NOMEM;
				break;
			}
			items = v;
			cap = ncap;
		}
		items[n].dr_dead_id = sqlite3_column_int64(s, 0);
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

/*
 * Dead letters back into retries for the subscriber registered now at their
 * address; what to hand to delivery after the commit goes in r_replay.
 */
enum store_res
sqlite_dead_replay(struct store_backend *b, struct store_req *req,
    int64_t now)
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
		char del[64];

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
		snprintf(del, sizeof(del), "DELETE FROM dead_letters WHERE "
		    "id = %lld", (long long)items[i].dr_dead_id);
		if ((rc = sqlite3_exec(b->sq_db, del, NULL, NULL, NULL)) !=
		    SQLITE_OK)
			goto fail;
	}
	if (n > 0 && (out = calloc(n, sizeof(*out))) == NULL) {
		rc = SQLITE_NOMEM;
		goto fail;
	}
	/* Two dead letters of one message for one subscriber: one delivery. */
	for (size_t i = 0; i < n; i++)
		if (k == 0 || out[k - 1].rp_sub_id != items[i].dr_sub_id ||
		    out[k - 1].rp_seq != items[i].dr_seq) {
			out[k].rp_sub_id = items[i].dr_sub_id;
			out[k++].rp_seq = items[i].dr_seq;
		}
	free(items);
	req->r_count = (long)k;
	req->r_replay = out;
	req->r_nreplay = k;
	return SR_OK;

fail:
	free(items);
	return sqlite_res(b, rc);
}

enum store_res
sqlite_dead_expire(struct store_backend *b, int64_t before, long *n)
{
	sqlite3_stmt *s = b->sq_stmt[S_DL_EXPIRE];
	int rc;

	sqlite3_bind_int64(s, 1, before);
	if ((rc = sqlite_step_done(s)) != SQLITE_OK)
		return sqlite_res(b, rc);
	*n = sqlite3_changes(b->sq_db);
	return SR_OK;
}

/* Keeps the newest KEEP: the one past them and older go. */
enum store_res
sqlite_dead_trim(struct store_backend *b, long keep, long *n)
{
	sqlite3_stmt *s = b->sq_stmt[S_DL_TRIM];
	int rc;

	sqlite3_bind_int64(s, 1, keep);
	if ((rc = sqlite_step_done(s)) != SQLITE_OK)
		return sqlite_res(b, rc);
	*n = sqlite3_changes(b->sq_db);
	return SR_OK;
}

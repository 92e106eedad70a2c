/* store_sqlite_maint.c: SQLite upkeep: collection, the disk reserve, the WAL. */
#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <sqlite3.h>

#include "array.h"
#include "log.h"
#include "store_backend.h"
#include "store_sqlite.h"

/*
 * Space kept in DATA_DIR/hookcast.reserve: RESERVE_BYTES, or an eighth of
 * a small filesystem.  SQLite needs room to write even a DELETE, and the
 * WAL needs room in the database to be folded back into it, so a disk that
 * filled up could never be emptied again.  The reserve is given back the
 * moment the disk is full and taken again once there is room; the WAL is
 * kept to half the reserve (checkpointed at that size) so that folding it
 * back always fits.
 */
#define RESERVE_BYTES (4 << 20)

/* The reserve's size for this filesystem, and the WAL limit that goes with it. */
static void
reserve_size(struct store_backend *b)
{
	struct statvfs vfs;
	char pragma[96];
	uint64_t size = RESERVE_BYTES;
	long pages;

	if (statvfs(b->sq_cfg->data_dir, &vfs) == 0 &&
	    (uint64_t)vfs.f_blocks * vfs.f_frsize / 8 < size)
		size = (uint64_t)vfs.f_blocks * vfs.f_frsize / 8;
	b->sq_reserve_size = size;
	pages = (long)(size / 2 / 4096);
	if (pages < 8)
		pages = 8;
	snprintf(pragma, sizeof(pragma), "PRAGMA wal_autocheckpoint = %ld",
	    pages);
	sqlite_exec(b->sq_db, pragma);
	snprintf(pragma, sizeof(pragma), "PRAGMA journal_size_limit = %llu",
	    (unsigned long long)size / 2);
	sqlite_exec(b->sq_db, pragma);
}

/* Takes the reserve when that much is free beyond it. */
static void
reserve_take(struct store_backend *b)
{
	struct statvfs vfs;
	int fd;

	if (b->sq_reserved || statvfs(b->sq_cfg->data_dir, &vfs) == -1 ||
	    (uint64_t)vfs.f_bavail * vfs.f_frsize < 2 * b->sq_reserve_size)
		return;
	if ((fd = open(b->sq_reserve, O_WRONLY | O_CREAT | O_CLOEXEC, 0600)) ==
	    -1)
		return;
	if (posix_fallocate(fd, 0, (off_t)b->sq_reserve_size) == 0)
		b->sq_reserved = 1;
	else
		unlink(b->sq_reserve);
	close(fd);
}

static void
reserve_release(struct store_backend *b)
{
	char lp[LOG_VALUE_MAX];

	if (!b->sq_reserved)
		return;
	b->sq_reserved = 0;
	if (unlink(b->sq_reserve) == 0)
		log_warnx("disk full: reserve released so that deliveries can "
			  "make room",
		    "path=%s", log_value(lp, sizeof(lp), b->sq_reserve));
}

void
sqlite_reserve_init(struct store_backend *b)
{
	snprintf(b->sq_reserve, sizeof(b->sq_reserve), "%s/hookcast.reserve",
	    b->sq_cfg->data_dir);
	reserve_size(b);
	reserve_take(b);
}

void
sqlite_full(struct store_backend *b, int now)
{
	reserve_release(b);
	if (now)
		sqlite3_wal_checkpoint_v2(b->sq_db, NULL,
		    SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
}

enum store_res
sqlite_idem_expire(struct store_backend *b, int64_t before)
{
	sqlite3_stmt *s = b->sq_stmt[S_IDEM_EXPIRE];

	sqlite3_bind_int64(s, 1, before);
	return sqlite_res(b, sqlite_step_done(s));
}

/* The header page, rewritten as it is. */
enum store_res
sqlite_probe(struct store_backend *b)
{
	return sqlite_res(b,
	    sqlite3_exec(b->sq_db, "PRAGMA user_version = 3", NULL, NULL,
		NULL));
}

/* Deletes FROM..TO - 1 but for what retries name: the bytes in *freed. */
static int
collect_stretch(struct store_backend *b, uint64_t from, uint64_t to,
    size_t *freed)
{
	sqlite3_stmt *g = b->sq_stmt[S_GC];
	int rc;

	sqlite3_bind_int64(g, 1, (sqlite3_int64)from);
	sqlite3_bind_int64(g, 2, (sqlite3_int64)to);
	while ((rc = sqlite3_step(g)) == SQLITE_ROW)
		*freed += (size_t)sqlite3_column_int64(g, 0);
	sqlite3_reset(g);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/*
 * Deletes the messages no one needs any more, from sq_gc_from (ALL: 0) on:
 * below every cursor, named by no retry, and in no dead-letter range.  The
 * ranges longer than one (removals) are few: the stretches between them
 * are found first and each deleted in one go.
 */
enum store_res
sqlite_collect(struct store_backend *b, int all, uint64_t next_seq,
    size_t *freed)
{
	sqlite3_stmt *f = b->sq_stmt[S_FLOOR], *gaps = b->sq_stmt[S_GC_GAPS];
	uint64_t floor = next_seq, from = all ? 0 : b->sq_gc_from;
	uint64_t *v = NULL;
	size_t n = 0, cap = 0;
	int rc;

	*freed = 0;
	if ((rc = sqlite3_step(f)) == SQLITE_ROW &&
	    sqlite3_column_type(f, 0) != SQLITE_NULL &&
	    (uint64_t)sqlite3_column_int64(f, 0) < floor)
		floor = (uint64_t)sqlite3_column_int64(f, 0);
	sqlite3_reset(f);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return sqlite_res(b, rc);
	if (floor <= from)
		return SR_OK;
	/* Read whole before deleting: the statement reads what is deleted. */
	sqlite3_bind_int64(gaps, 1, (sqlite3_int64)from);
	sqlite3_bind_int64(gaps, 2, (sqlite3_int64)floor);
	while ((rc = sqlite3_step(gaps)) == SQLITE_ROW) {
		int64_t lo = sqlite3_column_int64(gaps, 0);
		int64_t hi = sqlite3_column_int64(gaps, 1);
		uint64_t *w;

		if (hi < lo)
			continue;
		if ((w = array_grow(v, &cap, n + 2, sizeof(*v))) == NULL) {
			rc = SQLITE_NOMEM;
			break;
		}
		v = w;
		v[n++] = (uint64_t)lo;
		v[n++] = (uint64_t)hi + 1;
	}
	sqlite3_reset(gaps);
	sqlite3_clear_bindings(gaps);
	if (rc != SQLITE_DONE)
		goto fail;
	for (size_t i = 0; i < n; i += 2)
		if ((rc = collect_stretch(b, v[i], v[i + 1], freed)) !=
		    SQLITE_OK)
			goto fail;
	free(v);
	b->sq_gc_from = floor;
	return SR_OK;

fail:
	free(v);
	return sqlite_res(b, rc);
}

int
sqlite_tidy(struct store_backend *b, int full)
{
	int64_t free_pages = 0, pages = 0;
	char vacuum[64];

	/*
	 * Fold the log back into the database every second, so that it is
	 * reused from its start rather than grown; after a full disk, also
	 * cut it short so that the space deletions freed comes back.  The
	 * disk counts as full (publishes refused) until the reserve is back.
	 */
	sqlite3_wal_checkpoint_v2(b->sq_db, NULL,
	    full ? SQLITE_CHECKPOINT_TRUNCATE : SQLITE_CHECKPOINT_PASSIVE, NULL,
	    NULL);
	/*
	 * Once most of the file is free (a backlog has drained), or the disk
	 * is full, free pages past a quarter of the reserve go back to the
	 * filesystem, a few at a time: each step is a transaction that must
	 * fit in the space there is, and the checkpoint after it makes the
	 * file shorter.  While the file is mostly in use, new messages reuse
	 * the free pages and moving them would only be wasted writes.
	 */
	snprintf(vacuum, sizeof(vacuum),
	    "PRAGMA incremental_vacuum(%" PRIu64 ")",
	    b->sq_reserve_size / 2 / 4096 + 1);
	if (sqlite_query_int(b->sq_db, "PRAGMA freelist_count", &free_pages) ==
		0 &&
	    sqlite_query_int(b->sq_db, "PRAGMA page_count", &pages) == 0 &&
	    (uint64_t)free_pages * 4096 > b->sq_reserve_size / 4 &&
	    (free_pages * 2 > pages || !b->sq_reserved) &&
	    sqlite3_exec(b->sq_db, vacuum, NULL, NULL, NULL) == SQLITE_OK)
		sqlite3_wal_checkpoint_v2(b->sq_db, NULL,
		    SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
	if (!b->sq_reserved) {
		reserve_take(b);
		return b->sq_reserved;
	}
	return 0;
}

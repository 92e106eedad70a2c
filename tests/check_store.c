/* check_store.c: the durable store: what a restart keeps, what it refuses to open. */
#include <check.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "addr.h"
#include "clock.h"
#include "deliver.h"
#include "log.h"
#include "store.h"
#include "unit.h"

static char dir[64];
static struct config cfg;
static struct unit_stack stack;

static void
setup(void)
{
	unit_tempdir(dir);
	config_init(&cfg);
	snprintf(cfg.data_dir, sizeof(cfg.data_dir), "%s", dir);
	memset(&stack, 0, sizeof(stack));
}

static void
teardown(void)
{
	unit_stack_stop(&stack, 0);
	unit_rmdir(dir);
}

static void
subscribe(const char *address, int64_t real_ms)
{
	CURLU *u;
	char *text;

	ck_assert_int_eq(addr_parse(address, &u, &text), ADDR_OK);
	ck_assert_int_eq(subs_add(stack.subs, address, u, text, NULL, real_ms,
	    clock_mono_ms()), SUBS_ADDED);
	curl_free(text);
}

static struct sub *
only_subscriber(void)
{
	struct sub **v, *s;

	ck_assert_int_eq(subs_snapshot(stack.subs, &v), 1);
	s = v[0];
	free(v);
	return s;	/* the caller's reference */
}

/* Reads FILE whole into BUF; its length. */
static size_t
slurp(const char *file, char *buf, size_t cap)
{
	int fd = open(file, O_RDONLY);
	ssize_t n;

	ck_assert_int_ge(fd, 0);
	n = read(fd, buf, cap);
	ck_assert_int_ge(n, 0);
	close(fd);
	return (size_t)n;
}

static void
spit(const char *file, const char *buf, size_t len)
{
	int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, buf, len), (ssize_t)len);
	close(fd);
}

/* Lines of the text form of ADDRESS's dead letters. */
static int
count_dead(const char *address)
{
	char *text = unit_dead_letters(stack.store, address, 0);
	int lines = 0;

	for (char *p = text; (p = strchr(p, '\n')) != NULL; p++)
		lines++;
	free(text);
	return lines;
}

/* For wait_until: 10.0.0.1:80 has at most *ARG dead letters. */
static int
dead_at_most(void *arg)
{
	return count_dead("10.0.0.1:80") <= *(const int *)arg;
}

START_TEST(restart_keeps_a_subscriber)
{
	int64_t registered = clock_real_ms() - 5000;
	struct sub *s;
	int64_t id;

	unit_stack_start(&stack, &cfg, 10);
	subscribe("127.0.0.1:9", registered);
	unit_sync(stack.store);
	s = only_subscriber();
	id = sub_store_id(s);
	ck_assert_int_gt(id, 0);
	sub_unref(s);
	unit_stack_stop(&stack, 0);

	unit_stack_start(&stack, &cfg, 10);
	ck_assert_uint_eq(subs_count(stack.subs), 1);
	s = only_subscriber();
	ck_assert_str_eq(sub_address(s), "127.0.0.1:9");
	ck_assert_str_eq(sub_url_text(s), "http://127.0.0.1:9/event");
	ck_assert_int_eq(sub_registered_ms(s), registered);
	ck_assert_int_eq(sub_keepalive_ms(s), registered);
	/* The keep-alive clock ran on: it is as old on the monotonic clock. */
	ck_assert_int_le(sub_keepalive_mono(s), clock_mono_ms() - 4900);
	ck_assert_int_eq(sub_store_id(s), id);
	sub_unref(s);

	/* Deregistered, it stays gone after the next restart. */
	ck_assert_int_eq(subs_remove(stack.subs, "127.0.0.1:9",
	    SUB_DEREGISTERED), 0);
	unit_sync(stack.store);
	unit_stack_stop(&stack, 0);
	unit_stack_start(&stack, &cfg, 10);
	ck_assert_uint_eq(subs_count(stack.subs), 0);
}
END_TEST

/* Messages a subscriber has not had yet are still there after a restart. */
START_TEST(restart_keeps_pending_messages)
{
	char address[64], ids[3][MSG_IDLEN + 1];
	struct store_reader *r;
	struct msg *page[8];
	uint64_t next;
	unsigned port;
	int hfd = unit_hang_listen(&port);
	long n;

	cfg.durability = DURABILITY_NORMAL;
	unit_stack_start(&stack, &cfg, 10);
	snprintf(address, sizeof(address), "127.0.0.1:%u", port);
	subscribe(address, clock_real_ms());
	for (int i = 0; i < 3; i++) {
		char body[16];
		struct msg *m;

		snprintf(body, sizeof(body), "body%d", i);
		m = msg_new(NULL, "text/x-test", body, 5);
		ck_assert_int_eq(unit_publish(stack.store, m), STORE_OK);
		ck_assert_uint_eq(msg_seq(m), (uint64_t)i + 1);
		snprintf(ids[i], sizeof(ids[i]), "%s", msg_id(m));
		msg_unref(m);
	}
	ck_assert_uint_eq(store_last_seq(stack.store), 3);
	ck_assert_uint_eq(store_backlog_bytes(stack.store), 15);
	unit_stack_stop(&stack, 0);

	unit_stack_start(&stack, &cfg, 10);
	ck_assert_uint_eq(store_last_seq(stack.store), 3);
	ck_assert_uint_eq(store_backlog_bytes(stack.store), 15);
	r = store_reader_open(stack.store);
	ck_assert_ptr_nonnull(r);
	n = store_read_page(r, 1, 3, "", 8, page, &next);
	ck_assert_int_eq(n, 3);
	ck_assert_uint_eq(next, 4);
	for (int i = 0; i < 3; i++) {
		char body[16];

		snprintf(body, sizeof(body), "body%d", i);
		ck_assert_uint_eq(msg_seq(page[i]), (uint64_t)i + 1);
		ck_assert_str_eq(msg_id(page[i]), ids[i]);
		ck_assert_str_eq(msg_ctype(page[i]), "text/x-test");
		ck_assert_uint_eq(msg_len(page[i]), 5);
		ck_assert_mem_eq(msg_body(page[i]), body, 5);
		msg_unref(page[i]);
	}
	store_reader_close(r);
	/* The next message continues the numbering. */
	{
		struct msg *m = msg_new(NULL, NULL, "x", 1);

		ck_assert_int_eq(unit_publish(stack.store, m), STORE_OK);
		ck_assert_uint_eq(msg_seq(m), 4);
		msg_unref(m);
	}
	unit_stack_stop(&stack, 0);
	close(hfd);
}
END_TEST

START_TEST(garbage_database_is_refused_and_left_alone)
{
	char file[128], before[8192], after[8192];
	size_t len, len2;
	struct stat sb;

	snprintf(file, sizeof(file), "%s/hookcast.db", dir);
	for (size_t i = 0; i < sizeof(before); i++)
		before[i] = "this is not a database\n"[i % 23];
	spit(file, before, sizeof(before));
	ck_assert_ptr_null(store_open(&cfg));
	len = slurp(file, after, sizeof(after));
	ck_assert_uint_eq(len, sizeof(before));
	ck_assert_mem_eq(after, before, len);
	/* Nothing was added beside it that the next start could trip on. */
	snprintf(file, sizeof(file), "%s/hookcast.db-wal", dir);
	ck_assert_int_eq(stat(file, &sb) == 0 && sb.st_size > 0, 0);

	/* A real database with its pages overwritten is refused too. */
	snprintf(file, sizeof(file), "%s/hookcast.db", dir);
	ck_assert_int_eq(unlink(file), 0);
	unit_stack_start(&stack, &cfg, 10);
	subscribe("127.0.0.1:9", clock_real_ms());
	unit_sync(stack.store);
	unit_stack_stop(&stack, 0);
	snprintf(file, sizeof(file), "%s/hookcast.db", dir);
	len = slurp(file, before, sizeof(before));
	ck_assert_uint_ge(len, 4096);
	memset(before + 100, 0xa5, len - 100);	/* all but the header */
	spit(file, before, len);
	ck_assert_ptr_null(store_open(&cfg));
	len2 = slurp(file, after, sizeof(after));
	ck_assert_uint_eq(len2, len);
	ck_assert_mem_eq(after, before, len);
}
END_TEST

/* hookcast's first schema (user_version 1), as databases of that version hold it. */
static const char schema_v1[] =
    "CREATE TABLE messages (seq INTEGER PRIMARY KEY, id TEXT NOT NULL,"
    " ctype TEXT NOT NULL, created INTEGER NOT NULL, body BLOB NOT NULL);"
    "CREATE TABLE subscribers (id INTEGER PRIMARY KEY, address TEXT NOT NULL,"
    " url TEXT NOT NULL, topics TEXT, registered_at INTEGER NOT NULL,"
    " last_keepalive INTEGER NOT NULL, cursor INTEGER NOT NULL,"
    " removed INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE retries (sub INTEGER NOT NULL, seq INTEGER NOT NULL,"
    " attempts INTEGER NOT NULL, first_at INTEGER NOT NULL,"
    " last_at INTEGER NOT NULL, next_at INTEGER NOT NULL,"
    " last_status INTEGER NOT NULL, last_error TEXT NOT NULL,"
    " PRIMARY KEY (sub, seq)) WITHOUT ROWID;"
    "CREATE TABLE dead_letters (id INTEGER PRIMARY KEY, address TEXT NOT NULL,"
    " seq INTEGER NOT NULL, msg_id TEXT NOT NULL, attempts INTEGER NOT NULL,"
    " first_at INTEGER NOT NULL, last_at INTEGER NOT NULL,"
    " dead_at INTEGER NOT NULL, last_status INTEGER NOT NULL,"
    " last_error TEXT NOT NULL, reason TEXT NOT NULL);"
    "PRAGMA user_version = 1;";

/* Runs SQL on the data directory's database, the store stopped. */
static void
db_exec(const char *sql)
{
	char file[128];
	sqlite3 *db;

	snprintf(file, sizeof(file), "%s/hookcast.db", dir);
	ck_assert_int_eq(sqlite3_open(file, &db), SQLITE_OK);
	ck_assert_msg(sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK,
	    "%s", sqlite3_errmsg(db));
	sqlite3_close(db);
}

/* The first row of query SQL on that database: its two integer columns. */
static void
db_row2(const char *sql, int64_t *a, int64_t *b)
{
	char file[128];
	sqlite3_stmt *q;
	sqlite3 *db;

	snprintf(file, sizeof(file), "%s/hookcast.db", dir);
	ck_assert_int_eq(sqlite3_open(file, &db), SQLITE_OK);
	ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &q, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(q), SQLITE_ROW);
	*a = sqlite3_column_int64(q, 0);
	*b = sqlite3_column_int64(q, 1);
	sqlite3_finalize(q);
	sqlite3_close(db);
}

/* A version 1 database is upgraded in place and keeps what it held. */
START_TEST(version_1_database_is_upgraded)
{
	char sql[512];
	struct sub *s;
	int64_t now = clock_real_ms(), version = 0, cols = 0;

	db_exec(schema_v1);
	snprintf(sql, sizeof(sql), "INSERT INTO subscribers(address, url, "
	    "registered_at, last_keepalive, cursor) VALUES ('127.0.0.1:9', "
	    "'http://127.0.0.1:9/event', %lld, %lld, 1);"
	    "INSERT INTO messages VALUES (1, 'msg_0123456789abcdef0123456789abcdef',"
	    " 'text/plain', %lld, 'hello');", (long long)now, (long long)now,
	    (long long)now);
	db_exec(sql);

	unit_stack_start(&stack, &cfg, 10);
	ck_assert_uint_eq(store_last_seq(stack.store), 1);
	ck_assert_uint_eq(store_backlog_bytes(stack.store), 5);
	s = only_subscriber();
	ck_assert_str_eq(sub_address(s), "127.0.0.1:9");
	ck_assert_ptr_null(sub_topics(s));	/* every topic, as before */
	sub_unref(s);
	unit_stack_stop(&stack, 0);

	db_row2("SELECT (SELECT user_version "
		"FROM pragma_user_version), (SELECT count(*) FROM "
		"pragma_table_info('messages') WHERE name = 'topics') + (SELECT "
		"count(*) FROM pragma_table_info('subscribers') WHERE name = "
		"'secret') + (SELECT count(*) FROM sqlite_schema WHERE name = "
		"'idempotency')",
	    &version, &cols);
	ck_assert_int_eq(version, 3);
	ck_assert_int_eq(cols, 3);
}
END_TEST

/* Version 2 kept a row per dead letter: they come through the upgrade. */
/* hookcast's second schema (user_version 2), with two dead letters. */
static const char schema_v2[] =
    "CREATE TABLE messages (seq INTEGER PRIMARY KEY, id TEXT NOT NULL,"
    " ctype TEXT NOT NULL, created INTEGER NOT NULL, body BLOB NOT NULL,"
    " topics TEXT);"
    "CREATE TABLE subscribers (id INTEGER PRIMARY KEY, address TEXT NOT "
    "NULL, url TEXT NOT NULL, topics TEXT, registered_at INTEGER NOT NULL,"
    " last_keepalive INTEGER NOT NULL, cursor INTEGER NOT NULL,"
    " removed INTEGER NOT NULL DEFAULT 0, secret TEXT);"
    "CREATE TABLE retries (sub INTEGER NOT NULL, seq INTEGER NOT NULL,"
    " attempts INTEGER NOT NULL, first_at INTEGER NOT NULL,"
    " last_at INTEGER NOT NULL, next_at INTEGER NOT NULL,"
    " last_status INTEGER NOT NULL, last_error TEXT NOT NULL,"
    " PRIMARY KEY (sub, seq)) WITHOUT ROWID;"
    "CREATE TABLE dead_letters (id INTEGER PRIMARY KEY, address TEXT NOT "
    "NULL, seq INTEGER NOT NULL, msg_id TEXT NOT NULL, attempts INTEGER "
    "NOT NULL, first_at INTEGER NOT NULL, last_at INTEGER NOT NULL,"
    " dead_at INTEGER NOT NULL, last_status INTEGER NOT NULL,"
    " last_error TEXT NOT NULL, reason TEXT NOT NULL);"
    "CREATE INDEX dead_letters_seq ON dead_letters(seq);"
    "CREATE TABLE idempotency (key TEXT PRIMARY KEY, msg_id TEXT NOT NULL,"
    " subscribers INTEGER NOT NULL, created INTEGER NOT NULL) "
    "WITHOUT ROWID;"
    "INSERT INTO messages VALUES"
    " (1, 'msg_0123456789abcdef0123456789abcd01', 'text/plain', 1, 'one',"
    " NULL), (2, 'msg_0123456789abcdef0123456789abcd02', 'text/plain', 1,"
    " 'two', NULL);"
    "INSERT INTO dead_letters(address, seq, msg_id, attempts, first_at,"
    " last_at, dead_at, last_status, last_error, reason) VALUES"
    " ('10.0.0.1:80', 2, 'msg_0123456789abcdef0123456789abcd02', 3, 1, 2,"
    " 4102444800000, 500, 'HTTP 500', 'retries exhausted'),"
    " ('10.0.0.2:80', 1, 'msg_0123456789abcdef0123456789abcd01', 0, 0, 0,"
    " 4102444800000, 0, '', 'deregistered');"
    "PRAGMA user_version = 2;";

START_TEST(version_2_dead_letters_are_kept)
{
	int64_t version = 0, old = 1;
	char *text;

	db_exec(schema_v2);

	unit_stack_start(&stack, &cfg, 10);
	ck_assert_uint_eq(store_last_seq(stack.store), 2);
	ck_assert_int_eq(count_dead("10.0.0.1:80"), 1);
	ck_assert_int_eq(count_dead("10.0.0.2:80"), 1);
	text = unit_dead_letters(stack.store, "10.0.0.1:80", 0);
	ck_assert_ptr_nonnull(strstr(text,
	    "msg_0123456789abcdef0123456789abcd02  10.0.0.1:80  attempts=3  "
	    "last=\"HTTP 500\""));
	free(text);
	text = unit_dead_letters(stack.store, "10.0.0.2:80", 0);
	ck_assert_ptr_nonnull(strstr(text,
	    "msg_0123456789abcdef0123456789abcd01  10.0.0.2:80  attempts=0"));
	free(text);
	unit_stack_stop(&stack, 0);

	db_row2("SELECT (SELECT user_version FROM pragma_user_version), "
		"(SELECT count(*) FROM sqlite_schema WHERE name = 'dead_letters')",
	    &version, &old);
	ck_assert_int_eq(version, 3);
	ck_assert_int_eq(old, 0);
}
END_TEST

/* For wait_until: the store holds exactly *ARG bytes of bodies. */
static int
backlog_is(void *arg)
{
	return store_backlog_bytes(stack.store) == *(const size_t *)arg;
}

/*
 * A dead-letter range keeps the bodies it spans, and only those, once no
 * cursor or retry needs them; purged, they go too.
 */
START_TEST(a_dead_letter_range_keeps_its_bodies)
{
	char address[64];
	unsigned port;
	int hfd = unit_hang_listen(&port);
	uint64_t seq[10];
	size_t five = 5UL * 5, none = 0;
	struct store_req req = { .r_type = REQ_DL_PURGE,
	    .r_address = "10.0.0.9:80" };

	cfg.dead_letter_on_evict = 0;	/* the subscriber's backlog: not kept */
	cfg.delivery_timeout = 1;
	unit_stack_start(&stack, &cfg, 10);
	snprintf(address, sizeof(address), "127.0.0.1:%u", port);
	subscribe(address, clock_real_ms());	/* its cursor keeps them all */
	unit_sync(stack.store);
	for (int i = 0; i < 10; i++) {
		struct msg *m = msg_new(NULL, NULL, "hello", 5);

		ck_assert_int_eq(unit_publish(stack.store, m), STORE_OK);
		seq[i] = msg_seq(m);
		msg_unref(m);
	}
	store_dead_range(stack.store, 0, "10.0.0.9:80", seq[3], seq[7], NULL,
	    "deregistered");
	unit_sync(stack.store);
	ck_assert_int_eq(count_dead("10.0.0.9:80"), 5);
	ck_assert_int_eq(subs_remove(stack.subs, address, SUB_DEREGISTERED), 0);
	wait_until(backlog_is, &five, UNIT_WAIT_MS);
	ck_assert_int_eq(count_dead("10.0.0.9:80"), 5);
	ck_assert_int_eq(unit_request(stack.store, &req), STORE_OK);
	ck_assert_int_eq(req.r_count, 5);
	wait_until(backlog_is, &none, UNIT_WAIT_MS);
	ck_assert_int_eq(count_dead("10.0.0.9:80"), 0);
	unit_stack_stop(&stack, 0);
	close(hfd);
}
END_TEST

/* dead_letter_max counts a range's messages: the oldest lose their low end. */
START_TEST(dead_letter_max_trims_a_range)
{
	char address[64], ids[6][MSG_IDLEN + 1], *text;
	unsigned port;
	int hfd = unit_hang_listen(&port), three = 3;
	uint64_t seq[6];

	cfg.durability = DURABILITY_NORMAL;
	cfg.dead_letter_max = 10;
	unit_stack_start(&stack, &cfg, 10);
	snprintf(address, sizeof(address), "127.0.0.1:%u", port);
	subscribe(address, clock_real_ms());	/* its cursor keeps the rows */
	unit_sync(stack.store);
	for (int i = 0; i < 6; i++) {
		struct msg *m = msg_new(NULL, NULL, "x", 1);

		ck_assert_int_eq(unit_publish(stack.store, m), STORE_OK);
		snprintf(ids[i], sizeof(ids[i]), "%s", msg_id(m));
		seq[i] = msg_seq(m);
		msg_unref(m);
	}
	/* Two ranges: 0..3, then 4..5 (newer). */
	store_dead_range(stack.store, 0, "10.0.0.1:80", seq[0], seq[3], NULL,
	    "deregistered");
	store_dead_range(stack.store, 0, "10.0.0.1:80", seq[4], seq[5], NULL,
	    "evicted");
	unit_sync(stack.store);
	ck_assert_int_eq(count_dead("10.0.0.1:80"), 6);
	unit_stack_stop(&stack, 0);

	cfg.dead_letter_max = 3;
	unit_stack_start(&stack, &cfg, 10);
	wait_until(dead_at_most, &three, UNIT_WAIT_MS);
	text = unit_dead_letters(stack.store, "10.0.0.1:80", 0);
	for (int i = 0; i < 3; i++)
		ck_assert_ptr_null(strstr(text, ids[i]));
	for (int i = 3; i < 6; i++)
		ck_assert_ptr_nonnull(strstr(text, ids[i]));
	free(text);
	ck_assert_int_eq(count_dead("10.0.0.1:80"), 3);
	unit_stack_stop(&stack, 0);
	close(hfd);
}
END_TEST

START_TEST(unusable_or_busy_data_dir)
{
	struct config c2 = cfg;
	char file[128];
	struct store *st;

	/* A second daemon on the same directory is refused. */
	ck_assert_ptr_nonnull(st = store_open(&cfg));
	ck_assert_ptr_null(store_open(&c2));
	store_stop(st);
	ck_assert_ptr_nonnull(st = store_open(&c2));
	store_stop(st);

	/* A path that cannot be a directory. */
	snprintf(file, sizeof(file), "%s/file", dir);
	spit(file, "x", 1);
	snprintf(c2.data_dir, sizeof(c2.data_dir), "%s/file/sub", dir);
	ck_assert_ptr_null(store_open(&c2));
	/* Only one level is created. */
	snprintf(c2.data_dir, sizeof(c2.data_dir), "%s/a/b", dir);
	ck_assert_ptr_null(store_open(&c2));
	snprintf(c2.data_dir, sizeof(c2.data_dir), "%s/a", dir);
	ck_assert_ptr_nonnull(st = store_open(&c2));
	store_stop(st);
	unit_rmdir(c2.data_dir);
}
END_TEST

/* dead_letter_max keeps exactly that many dead letters: the newest. */
START_TEST(dead_letter_max_keeps_the_newest)
{
	char address[64], ids[5][MSG_IDLEN + 1], *text;
	unsigned port;
	int hfd = unit_hang_listen(&port), lines = 0;

	/* Above the five: the sweep shortly after this start keeps them all. */
	cfg.durability = DURABILITY_NORMAL;
	cfg.dead_letter_max = 10;
	unit_stack_start(&stack, &cfg, 10);
	snprintf(address, sizeof(address), "127.0.0.1:%u", port);
	subscribe(address, clock_real_ms());	/* its cursor keeps the rows */
	unit_sync(stack.store);
	for (int i = 0; i < 5; i++) {
		struct msg *m = msg_new(NULL, NULL, "x", 1);
		struct store_attempt a = { .attempts = 1 };

		ck_assert_int_eq(unit_publish(stack.store, m), STORE_OK);
		snprintf(ids[i], sizeof(ids[i]), "%s", msg_id(m));
		a.seq = msg_seq(m);
		store_dead(stack.store, &a, "10.0.0.1:80", "retries exhausted");
		msg_unref(m);
	}
	unit_sync(stack.store);
	ck_assert_int_eq(count_dead("10.0.0.1:80"), 5);
	unit_stack_stop(&stack, 0);

	/* Lowered: the bounds are applied shortly after a start (10 s at most). */
	cfg.dead_letter_max = 2;
	unit_stack_start(&stack, &cfg, 10);
	wait_until(dead_at_most, &(int){ 2 }, UNIT_WAIT_MS);
	text = unit_dead_letters(stack.store, "10.0.0.1:80", 0);
	for (char *p = text; (p = strchr(p, '\n')) != NULL; p++)
		lines++;
	ck_assert_int_eq(lines, 2);
	ck_assert_ptr_null(strstr(text, ids[2]));
	ck_assert_ptr_nonnull(strstr(text, ids[3]));
	ck_assert_ptr_nonnull(strstr(text, ids[4]));
	free(text);
	unit_stack_stop(&stack, 0);
	close(hfd);
}
END_TEST

#define WHYLEN	160

/* For unit_poll: store_health() says healthy; ARG (WHYLEN bytes) says why not. */
static int
store_healthy(void *arg)
{
	return store_health(stack.store, arg, WHYLEN) == 0;
}

/*
 * Writes that fail for real (the file size limit at 0: every write gets
 * EFBIG) make the store unhealthy, and it stays so while they fail; once
 * writing works again the writer finds out by itself, with no request.
 */
START_TEST(health_follows_failing_writes)
{
	struct rlimit was, none = { 0, 0 };
	struct msg *m;
	char why[WHYLEN];

	signal(SIGXFSZ, SIG_IGN);	/* else the first EFBIG kills the test */
	cfg.durability = DURABILITY_NORMAL;
	unit_stack_start(&stack, &cfg, 10);
	ck_assert_int_eq(store_health(stack.store, why, sizeof(why)), 0);
	ck_assert_int_ge(store_heartbeat(stack.store), clock_mono_ms() - 1000);

	ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &was), 0);
	none.rlim_max = was.rlim_max;
	ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &none), 0);
	m = msg_new(NULL, NULL, "lost", 4);
	ck_assert_int_eq(unit_publish(stack.store, m), STORE_ERROR);
	msg_unref(m);
	ck_assert_int_eq(store_health(stack.store, why, sizeof(why)), -1);
	ck_assert_msg(strncmp(why, "writes failing: ", 16) == 0, "%s", why);
	/*
	 * The writer's probes (one a second) fail too.  It must stay
	 * unhealthy, so a sleep over two probes is the point here.
	 */
	usleep(2500 * 1000);
	ck_assert_int_eq(store_health(stack.store, why, sizeof(why)), -1);
	ck_assert_int_ge(store_heartbeat(stack.store), clock_mono_ms() - 1000);

	ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &was), 0);
	ck_assert_msg(unit_poll(store_healthy, why, 5000), "still: %s", why);
	m = msg_new(NULL, NULL, "kept", 4);
	ck_assert_int_eq(unit_publish(stack.store, m), STORE_OK);
	msg_unref(m);

	store_close_requests(stack.store);
	ck_assert_int_eq(store_health(stack.store, why, sizeof(why)), -1);
	ck_assert_str_eq(why, "closed (shutting down)");
}
END_TEST

/* N messages BODIES[i] (keys KEYS[i], NULL none) as one batch; r_status. */
static enum store_status
publish_batch(struct store_pub *p, const char *const *bodies,
    const char *const *keys, size_t n)
{
	struct store_req req = { .r_type = REQ_PUBLISH_BATCH, .r_pubs = p,
	    .r_npubs = n };

	for (size_t i = 0; i < n; i++) {
		memset(&p[i], 0, sizeof(p[i]));
		p[i].sp_msg = msg_new(NULL, "text/x-test", bodies[i],
		    strlen(bodies[i]));
		ck_assert_ptr_nonnull(p[i].sp_msg);
		p[i].sp_key = keys != NULL ? keys[i] : NULL;
		p[i].sp_fanout = (long)i;
	}
	return unit_request(stack.store, &req);
}

static void
unref_batch(struct store_pub *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		msg_unref(p[i].sp_msg);
}

/* How many messages LO..HI the store holds. */
static long
count_messages(uint64_t lo, uint64_t hi)
{
	struct store_reader *r = store_reader_open(stack.store);
	struct msg *page[16];
	uint64_t next;
	long n;

	ck_assert_ptr_nonnull(r);
	n = store_read_page(r, lo, hi, "", 16, page, &next);
	ck_assert_int_ge(n, 0);
	for (long i = 0; i < n; i++)
		msg_unref(page[i]);
	store_reader_close(r);
	return n;
}

/*
 * A batch takes consecutive numbers in its order, and a key it gives twice
 * makes its second message a repeat of the first, as two publishes would;
 * it is all there after a restart.
 */
START_TEST(a_batch_commits_in_order)
{
	static const char *const bodies[] = { "one", "two", "three", "four" };
	static const char *const keys[] = { "k", NULL, "k", "j" };
	struct store_pub p[4];
	struct store_req req = { .r_type = REQ_PUBLISH, .r_key = "j" };
	struct store_reader *r;
	char address[64];
	struct msg *m;
	unsigned port;
	int hfd = unit_hang_listen(&port);

	cfg.durability = DURABILITY_NORMAL;
	unit_stack_start(&stack, &cfg, 10);
	/* Someone still owed them, so that a clean stop keeps them. */
	snprintf(address, sizeof(address), "127.0.0.1:%u", port);
	subscribe(address, clock_real_ms());
	m = msg_new(NULL, NULL, "first", 5);
	ck_assert_int_eq(unit_publish(stack.store, m), STORE_OK);
	msg_unref(m);

	ck_assert_int_eq(publish_batch(p, bodies, keys, 4), STORE_OK);
	ck_assert_uint_eq(msg_seq(p[0].sp_msg), 2);
	ck_assert_uint_eq(msg_seq(p[1].sp_msg), 3);
	ck_assert(!p[0].sp_repeat && !p[1].sp_repeat && !p[3].sp_repeat);
	ck_assert(p[2].sp_repeat);
	ck_assert_str_eq(p[2].sp_first, msg_id(p[0].sp_msg));
	ck_assert_int_eq(p[2].sp_fanout, 0); /* the first one's count */
	ck_assert_int_eq(p[1].sp_fanout, 1);
	ck_assert_uint_eq(msg_seq(p[3].sp_msg), 4);
	ck_assert_uint_eq(store_last_seq(stack.store), 4);
	ck_assert_uint_eq(store_backlog_bytes(stack.store), 5 + 3 + 3 + 4);

	/* A later publish with a key of the batch's is a repeat. */
	req.r_msg = msg_new(NULL, NULL, "again", 5);
	ck_assert_int_eq(unit_request(stack.store, &req), STORE_OK);
	ck_assert(req.r_repeat);
	ck_assert_str_eq(req.r_first, msg_id(p[3].sp_msg));
	ck_assert_int_eq(req.r_fanout, 3);
	msg_unref(req.r_msg);
	unit_stack_stop(&stack, 0);

	unit_stack_start(&stack, &cfg, 10);
	ck_assert_uint_eq(store_last_seq(stack.store), 4);
	r = store_reader_open(stack.store);
	for (uint64_t seq = 2; seq <= 4; seq++) {
		const struct msg *want = p[seq == 4 ? 3 : seq - 2].sp_msg;

		m = store_read_msg(r, seq);
		ck_assert_ptr_nonnull(m);
		ck_assert_str_eq(msg_id(m), msg_id(want));
		ck_assert_uint_eq(msg_len(m), msg_len(want));
		ck_assert_mem_eq(msg_body(m), msg_body(want), msg_len(m));
		msg_unref(m);
	}
	store_reader_close(r);
	unref_batch(p, 4);
	unit_stack_stop(&stack, 0);
	close(hfd);
}
END_TEST

/*
 * One message the backend refuses takes its whole batch back, key and
 * all, and nothing else: a publish queued behind it commits, and the next
 * batch goes through.
 */
START_TEST(a_refused_message_takes_its_batch_back)
{
	static const char *const bad[] = { "a", "b", "bad", "c" };
	static const char *const keys[] = { "ka", NULL, NULL, NULL };
	static const char *const good[] = { "d", "e" };
	struct store_pub p[4], q[2];
	struct store_req after = { .r_type = REQ_PUBLISH, .r_key = "ka" };

	cfg.durability = DURABILITY_NORMAL;
	unit_stack_start(&stack, &cfg, 10);
	unit_stack_stop(&stack, 0);
	/* The database refuses one body, as it would a row it cannot hold. */
	db_exec("CREATE TRIGGER refuse BEFORE INSERT ON messages WHEN "
		"NEW.body = CAST('bad' AS BLOB) BEGIN SELECT RAISE(ABORT, "
		"'refused'); END;");

	unit_stack_start(&stack, &cfg, 10);
	ck_assert_int_eq(publish_batch(p, bad, keys, 4), STORE_ERROR);
	ck_assert_uint_eq(store_last_seq(stack.store), 0);
	ck_assert_uint_eq(store_backlog_bytes(stack.store), 0);
	ck_assert_int_eq(count_messages(1, 100), 0);
	unref_batch(p, 4);

	/*
	 * Again with a publish queued right behind it, most likely in the
	 * same transaction: it commits.
	 */
	{
		struct store_req req = { .r_type = REQ_PUBLISH_BATCH,
		    .r_pubs = p, .r_npubs = 4 };
		struct unit_wait w1 = { PTHREAD_MUTEX_INITIALIZER,
		    PTHREAD_COND_INITIALIZER, 0 }, w2 = w1;

		for (size_t i = 0; i < 4; i++) {
			memset(&p[i], 0, sizeof(p[i]));
			p[i].sp_msg = msg_new(NULL, NULL, bad[i],
			    strlen(bad[i]));
		}
		p[0].sp_key = "ka";
		after.r_msg = msg_new(NULL, NULL, "after", 5);
		req.r_done = after.r_done = unit_req_done;
		req.r_arg = &w1;
		after.r_arg = &w2;
		ck_assert_int_eq(store_submit(stack.store, &req), 0);
		ck_assert_int_eq(store_submit(stack.store, &after), 0);
		pthread_mutex_lock(&w2.lock);
		while (!w2.done)
			pthread_cond_wait(&w2.cond, &w2.lock);
		pthread_mutex_unlock(&w2.lock);
		pthread_mutex_lock(&w1.lock);
		while (!w1.done)
			pthread_cond_wait(&w1.cond, &w1.lock);
		pthread_mutex_unlock(&w1.lock);
		ck_assert_int_eq(req.r_status, STORE_ERROR);
		ck_assert_int_eq(after.r_status, STORE_OK);
		ck_assert(!after.r_repeat); /* the batch's key was taken back */
		ck_assert_int_eq(count_messages(1, 100), 1);
		msg_unref(after.r_msg);
		unref_batch(p, 4);
	}
	ck_assert_int_eq(publish_batch(q, good, NULL, 2), STORE_OK);
	ck_assert_uint_eq(msg_seq(q[1].sp_msg), msg_seq(q[0].sp_msg) + 1);
	ck_assert_int_eq(count_messages(1, 100), 3);
	unref_batch(q, 2);
}
END_TEST

/* A batch the disk cannot take fails whole, and is not half there later. */
START_TEST(a_failed_commit_fails_the_whole_batch)
{
	static const char *const bodies[] = { "x", "y", "z" };
	struct rlimit was, none = { 0, 0 };
	struct store_pub p[3];
	char why[WHYLEN];

	signal(SIGXFSZ, SIG_IGN);
	cfg.durability = DURABILITY_NORMAL;
	unit_stack_start(&stack, &cfg, 10);
	ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &was), 0);
	none.rlim_max = was.rlim_max;
	ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &none), 0);
	ck_assert_int_eq(publish_batch(p, bodies, NULL, 3), STORE_ERROR);
	unref_batch(p, 3);
	ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &was), 0);
	ck_assert_msg(unit_poll(store_healthy, why, 5000), "still: %s", why);
	ck_assert_uint_eq(store_last_seq(stack.store), 0);
	ck_assert_int_eq(count_messages(1, 100), 0);
	ck_assert_int_eq(publish_batch(p, bodies, NULL, 3), STORE_OK);
	ck_assert_uint_eq(msg_seq(p[0].sp_msg), 1);
	ck_assert_uint_eq(msg_seq(p[2].sp_msg), 3);
	ck_assert_int_eq(count_messages(1, 100), 3);
	unref_batch(p, 3);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("store");
	TCase *tc = tcase_create("store");

	curl_global_init(CURL_GLOBAL_DEFAULT);
	log_set_level(LOG_ERROR);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, restart_keeps_a_subscriber);
	tcase_add_test(tc, restart_keeps_pending_messages);
	tcase_add_test(tc, garbage_database_is_refused_and_left_alone);
	tcase_add_test(tc, unusable_or_busy_data_dir);
	tcase_add_test(tc, dead_letter_max_keeps_the_newest);
	tcase_add_test(tc, version_1_database_is_upgraded);
	tcase_add_test(tc, version_2_dead_letters_are_kept);
	tcase_add_test(tc, a_dead_letter_range_keeps_its_bodies);
	tcase_add_test(tc, dead_letter_max_trims_a_range);
	tcase_add_test(tc, health_follows_failing_writes);
	tcase_add_test(tc, a_batch_commits_in_order);
	tcase_add_test(tc, a_refused_message_takes_its_batch_back);
	tcase_add_test(tc, a_failed_commit_fails_the_whole_batch);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);
	return unit_run(s);
}

/*
 * check_deliver.c: fan-out, backlogs read back from the store, retries,
 * failing subscribers, dead letters and restarts, against a real HTTP sink.
 */
#include <check.h>
#include <cJSON.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "addr.h"
#include "clock.h"
#include "deliver.h"
#include "log.h"
#include "store.h"
#include "unit.h"

/* ---- a sink that records what it receives ------------------------------- */

#define MAXMSG	1000

static pthread_mutex_t sink_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t sink_cond = PTHREAD_COND_INITIALIZER;
static int sink_count, sink_bad;
static int seen[MAXMSG];			/* requests, by message number */
static char seen_id[MAXMSG][MSG_IDLEN + 1];	/* their webhook-id */
static int64_t sink_times[16];			/* monotonic ms of the first requests */
/* How it answers. */
static int sink_status = 204;		/* from the request after the first ones: */
static int sink_first_n, sink_first_status;	/* the first N get this */
static const char *sink_retry_after;	/* with the first ones' answer */
/* Until opened: 1 holds every request, 2 those for a message seen before. */
static int sink_closed_gate;

struct req {
	size_t	len;
	char	body[64];
};

static void
gate_open(void)
{
	pthread_mutex_lock(&sink_lock);
	sink_closed_gate = 0;
	pthread_cond_broadcast(&sink_cond);
	pthread_mutex_unlock(&sink_lock);
}

static void
set_status(int status)
{
	pthread_mutex_lock(&sink_lock);
	sink_status = status;
	pthread_mutex_unlock(&sink_lock);
}

static int
sink_get(const int *v)
{
	int n;

	pthread_mutex_lock(&sink_lock);
	n = *v;
	pthread_mutex_unlock(&sink_lock);
	return n;
}

/*
 * Bodies are "m0042": message 42.  A message seen again must carry the
 * webhook-id it came with the first time.
 */
static enum MHD_Result
sink_handle(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *data,
    size_t *size, void **con_cls)
{
	struct req *r = *con_cls;
	struct MHD_Response *resp;
	const char *ua, *ct, *expect, *id;
	enum MHD_Result ret;
	int n = -1, status, first;

	(void)cls, (void)url, (void)version;
	if (r == NULL) {
		*con_cls = calloc(1, sizeof(*r));
		return MHD_YES;
	}
	if (*size > 0) {
		size_t k = *size < sizeof(r->body) - 1 - r->len ? *size :
		    sizeof(r->body) - 1 - r->len;
		memcpy(r->body + r->len, data, k);
		r->len += k;
		*size = 0;
		return MHD_YES;
	}
	ua = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "User-Agent");
	ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
	expect = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Expect");
	id = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "webhook-id");
	if (r->len == 5 && r->body[0] == 'm')
		n = atoi(r->body + 1);
	pthread_mutex_lock(&sink_lock);
	while (sink_closed_gate == 1 || (sink_closed_gate == 2 && n >= 0 &&
	    n < MAXMSG && seen[n] > 0))
		pthread_cond_wait(&sink_cond, &sink_lock);
	if (sink_count < 16)
		sink_times[sink_count] = clock_mono_ms();
	first = sink_count < sink_first_n;
	sink_count++;
	if (strcmp(method, "POST") != 0 || ua == NULL ||
	    strncmp(ua, "hookcast/", 9) != 0 || ct == NULL ||
	    strcmp(ct, "text/x-test") != 0 || expect != NULL || id == NULL ||
	    strlen(id) != MSG_IDLEN || strncmp(id, "msg_", 4) != 0 ||
	    n < 0 || n >= MAXMSG)
		sink_bad++;
	else {
		if (seen[n]++ == 0)
			snprintf(seen_id[n], sizeof(seen_id[n]), "%s", id);
		else if (strcmp(seen_id[n], id) != 0)
			sink_bad++;
	}
	status = first ? sink_first_status : sink_status;
	pthread_cond_broadcast(&sink_cond);
	pthread_mutex_unlock(&sink_lock);
	resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
	if (first && sink_retry_after != NULL)
		MHD_add_response_header(resp, "Retry-After", sink_retry_after);
	ret = MHD_queue_response(c, (unsigned)status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static void
sink_done(void *cls, struct MHD_Connection *c, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	(void)cls, (void)c, (void)toe;
	free(*con_cls);
	*con_cls = NULL;
}

/* A thread a connection, so that a held request holds only itself. */
static struct MHD_Daemon *
sink_start(unsigned *port)
{
	struct MHD_Daemon *d = MHD_start_daemon(
	    MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0,
	    NULL, NULL, sink_handle, NULL, MHD_OPTION_NOTIFY_COMPLETED,
	    sink_done, NULL, MHD_OPTION_END);

	ck_assert_ptr_nonnull(d);
	*port = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT)->port;
	return d;
}

static void
sink_stop(struct MHD_Daemon *d)
{
	gate_open();
	MHD_stop_daemon(d);
}

/* ---- the daemon's side -------------------------------------------------- */

static char dir[64];
static struct config cfg;
static struct unit_stack stack;
static char pub_id[MAXMSG][MSG_IDLEN + 1];	/* webhook-ids, by number */
static int published;

/* Settings a test changes go in before start(): the threads read cfg. */
static void
setup(void)
{
	unit_tempdir(dir);
	config_init(&cfg);
	snprintf(cfg.data_dir, sizeof(cfg.data_dir), "%s", dir);
	cfg.durability = DURABILITY_OFF;
	cfg.queue_limit = 5;
	cfg.max_in_flight = 2;
	cfg.delivery_timeout = 30;
	memset(&stack, 0, sizeof(stack));
	published = 0;
}

static void
start(void)
{
	unit_stack_start(&stack, &cfg, 100);
}

static void
teardown(void)
{
	unit_stack_stop(&stack, 0);
	unit_rmdir(dir);
}

static void
set_schedule(const char *text)
{
	ck_assert_int_eq(config_parse_schedule(text, cfg.retry_schedule,
	    &cfg.retry_count), 0);
}

/* A reference to the subscriber registered at ADDRESS. */
static struct sub *
find_sub(const char *address)
{
	struct sub **v, *found = NULL;
	long n = subs_snapshot(stack.subs, &v);

	for (long i = 0; i < n; i++) {
		if (strcmp(sub_address(v[i]), address) == 0)
			found = v[i];
		else
			sub_unref(v[i]);
	}
	free(v);
	ck_assert_ptr_nonnull(found);
	return found;	/* the caller's reference */
}

/* Registers ADDRESS; the store passes it on to the delivery thread. */
static struct sub *
subscribe(const char *address)
{
	CURLU *u;
	char *text;

	ck_assert_int_eq(addr_parse(address, &u, &text), ADDR_OK);
	ck_assert_int_eq(subs_add(stack.subs, address, u, text, NULL,
	    clock_real_ms(), clock_mono_ms()), SUBS_ADDED);
	curl_free(text);
	return find_sub(address);
}

/* Publishes N messages, numbered on from the last, through the store. */
static void
publish(int n)
{
	for (int i = 0; i < n; i++) {
		char body[16];
		struct msg *m;

		ck_assert_int_lt(published, MAXMSG);
		snprintf(body, sizeof(body), "m%04d", published);
		m = msg_new(NULL, "text/x-test", body, 5);
		ck_assert_ptr_nonnull(m);
		ck_assert_int_eq(unit_publish(stack.store, m), STORE_OK);
		snprintf(pub_id[published++], MSG_IDLEN + 1, "%s", msg_id(m));
		msg_unref(m);
	}
}

struct counter_want {
	atomic_uint_fast64_t	*cw_v;
	uint_fast64_t		 cw_want;
};

static int
counter_is(void *arg)
{
	const struct counter_want *w = arg;

	return atomic_load(w->cw_v) == w->cw_want;
}

/*
 * Waits (10 s at most) until the counter *V is exactly WANT, going up or
 * down (a queue draining to 0 waits too); else fails, saying where it is.
 */
#define wait_for(v, want)	wait_counter((v), (want), #v, __LINE__)

static void
wait_counter(atomic_uint_fast64_t *v, uint_fast64_t want, const char *name,
    int line)
{
	struct counter_want w = { v, want };

	if (!unit_poll(counter_is, &w, UNIT_WAIT_MS))
		ck_abort_msg("line %d: %s is %ju after %d ms, not %ju", line,
		    name, (uintmax_t)atomic_load(v), UNIT_WAIT_MS,
		    (uintmax_t)want);
}

struct state_want {
	struct sub		*sw_sub;
	enum sub_state		 sw_want;
};

static int
state_is(void *arg)
{
	const struct state_want *w = arg;

	return sub_state(w->sw_sub) == w->sw_want;
}

static void
wait_state(struct sub *s, enum sub_state want)
{
	struct state_want w = { s, want };

	wait_until(state_is, &w, UNIT_WAIT_MS);
}

/* For wait_until: the store holds at most *ARG bytes of bodies. */
static int
backlog_at_most(void *arg)
{
	return store_backlog_bytes(stack.store) <= *(const size_t *)arg;
}

static int
no_subscribers(void *arg)
{
	(void)arg;
	return subs_count(stack.subs) == 0;
}

/* Every message published so far reached the sink N times with its own id. */
static void
assert_seen(int n)
{
	pthread_mutex_lock(&sink_lock);
	for (int i = 0; i < published; i++) {
		ck_assert_msg(seen[i] == n, "message %d seen %d times", i,
		    seen[i]);
		ck_assert_str_eq(seen_id[i], pub_id[i]);
	}
	ck_assert_int_eq(sink_bad, 0);
	pthread_mutex_unlock(&sink_lock);
}

/* The dead letters for ADDRESS, as JSON; the caller frees it. */
static cJSON *
dead_letters(const char *address)
{
	char *text = unit_dead_letters(stack.store, address, 1);
	cJSON *root = cJSON_Parse(text), *arr;

	ck_assert_msg(root != NULL, "not JSON: %s", text);
	free(text);
	arr = cJSON_DetachItemFromObject(root, "dead_letters");
	cJSON_Delete(root);
	ck_assert(cJSON_IsArray(arr));
	return arr;
}

struct dead_want {
	const char	*dw_address;
	int		 dw_want;
};

static int
dead_at_least(void *arg)
{
	const struct dead_want *w = arg;
	cJSON *arr = dead_letters(w->dw_address);
	int n = cJSON_GetArraySize(arr);

	cJSON_Delete(arr);
	return n >= w->dw_want;
}

/* Waits until ADDRESS has WANT dead letters (10 s at most); returns them. */
static cJSON *
wait_dead(const char *address, int want)
{
	struct dead_want w = { address, want };
	cJSON *arr;

	wait_until(dead_at_least, &w, UNIT_WAIT_MS);
	arr = dead_letters(address);
	ck_assert_int_eq(cJSON_GetArraySize(arr), want);
	return arr;
}

static const char *
field_str(const cJSON *o, const char *name)
{
	const cJSON *f = cJSON_GetObjectItem(o, name);

	ck_assert_msg(cJSON_IsString(f), "no string \"%s\"", name);
	return f->valuestring;
}

static int
field_int(const cJSON *o, const char *name)
{
	const cJSON *f = cJSON_GetObjectItem(o, name);

	ck_assert_msg(cJSON_IsNumber(f), "no number \"%s\"", name);
	return f->valueint;
}

/* ---- the tests ---------------------------------------------------------- */

START_TEST(fans_out_to_everyone)
{
	char a[64];
	unsigned port;
	struct MHD_Daemon *sink = sink_start(&port);
	struct sub *s[3];

	cfg.queue_limit = 1000;
	start();
	for (int i = 0; i < 3; i++) {
		snprintf(a, sizeof(a), "http://127.0.0.1:%u/s%d", port, i);
		s[i] = subscribe(a);
	}
	publish(200);
	for (int i = 0; i < 3; i++) {
		wait_for(&sub_counters(s[i])->delivered, 200);
		ck_assert_uint_eq(atomic_load(&sub_counters(s[i])->failed), 0);
		ck_assert_uint_eq(atomic_load(&sub_counters(s[i])->retrying), 0);
		ck_assert_uint_le(atomic_load(&sub_counters(s[i])->in_flight), 2);
		ck_assert_int_eq(sub_state(s[i]), SUB_ACTIVE);
	}
	ck_assert_int_eq(sink_get(&sink_count), 600);
	assert_seen(3);
	for (int i = 0; i < 3; i++) {
		wait_for(&sub_counters(s[i])->queued, 0);
		sub_unref(s[i]);
	}
	sink_stop(sink);
}
END_TEST

/*
 * A subscriber that takes its time loses nothing: what does not fit its
 * FIFO (queue_limit 5) waits in the store and is read back, in order.
 */
START_TEST(slow_backlog_waits_in_the_store)
{
	char a[64];
	unsigned port;
	struct MHD_Daemon *sink = sink_start(&port);
	struct sub *s;

	sink_closed_gate = 1;
	start();
	snprintf(a, sizeof(a), "127.0.0.1:%u", port);
	s = subscribe(a);
	publish(300);
	wait_for(&sub_counters(s)->in_flight, 2);
	ck_assert_uint_eq(store_backlog_bytes(stack.store), 300UL * 5);
	ck_assert_uint_eq(atomic_load(&sub_counters(s)->delivered), 0);
	gate_open();
	wait_for(&sub_counters(s)->delivered, 300);
	wait_for(&sub_counters(s)->queued, 0);
	ck_assert_uint_eq(atomic_load(&sub_counters(s)->failed), 0);
	ck_assert_int_eq(sink_get(&sink_count), 300);
	assert_seen(1);
	/* Delivered everywhere: the store lets the bodies go (about 1 s later). */
	wait_until(backlog_at_most, &(size_t){ 0 }, 3000);
	sub_unref(s);
	sink_stop(sink);
}
END_TEST

START_TEST(hanging_subscriber_holds_only_its_slots)
{
	char a[64];
	unsigned port, hport;
	struct MHD_Daemon *sink = sink_start(&port);
	int hfd = unit_hang_listen(&hport);
	struct sub *ok, *hang;

	start();
	snprintf(a, sizeof(a), "127.0.0.1:%u", hport);
	hang = subscribe(a);
	snprintf(a, sizeof(a), "127.0.0.1:%u", port);
	ok = subscribe(a);
	/*
	 * queue_limit 5 and max_in_flight 2: two transfers hang, and the
	 * other 18 wait (in the FIFO or the store) rather than being dropped.
	 */
	publish(20);
	wait_for(&sub_counters(hang)->in_flight, 2);
	/* The healthy subscriber got every message. */
	wait_for(&sub_counters(ok)->delivered, 20);
	wait_for(&sub_counters(ok)->queued, 0);
	assert_seen(1);
	/*
	 * The hanging one still needs all 20: the store keeps every body.
	 * What is proved is that nothing happens, so this sleep is the
	 * point: long enough for the collector (every 100 ms) and the
	 * once-a-second jobs to have had their chance to let a body go.
	 */
	usleep(1500000);
	ck_assert_uint_eq(store_backlog_bytes(stack.store), 20UL * 5);
	ck_assert_uint_eq(atomic_load(&sub_counters(hang)->in_flight), 2);
	ck_assert_uint_eq(atomic_load(&sub_counters(hang)->delivered), 0);
	sub_unref(ok);
	sub_unref(hang);
	sink_stop(sink);
	close(hfd);
}
END_TEST

/*
 * The listing's "queued" is everything waiting for the subscriber, in its
 * FIFO or in the store, also while its slots are all taken.
 */
START_TEST(queued_counts_the_whole_backlog)
{
	char a[64];
	unsigned hport;
	int hfd = unit_hang_listen(&hport);
	struct sub *hang;

	start();
	snprintf(a, sizeof(a), "127.0.0.1:%u", hport);
	hang = subscribe(a);
	publish(2);
	wait_for(&sub_counters(hang)->in_flight, 2);
	publish(18);
	wait_for(&sub_counters(hang)->queued, 18);
	sub_unref(hang);
	close(hfd);
}
END_TEST

/* Hanging subscribers fill max_transfers, but only until their transfers turn slow. */
START_TEST(hanging_subscribers_do_not_starve_the_rest)
{
	char a[64];
	unsigned port, hport[3];
	struct MHD_Daemon *sink = sink_start(&port);
	int hfd[3];
	struct sub *ok, *hang[3];

	cfg.max_transfers = 4;
	cfg.queue_limit = 100;
	start();
	for (int i = 0; i < 3; i++) {
		hfd[i] = unit_hang_listen(&hport[i]);
		snprintf(a, sizeof(a), "127.0.0.1:%u", hport[i]);
		hang[i] = subscribe(a);
	}
	snprintf(a, sizeof(a), "127.0.0.1:%u", port);
	ok = subscribe(a);
	publish(10);
	/* 3 x 2 hanging transfers want more than the 4 slots there are... */
	wait_for(&sub_counters(ok)->delivered, 10);
	/* ...and once they are slow, every hanging one holds its own two. */
	for (int i = 0; i < 3; i++) {
		wait_for(&sub_counters(hang[i])->in_flight, 2);
		sub_unref(hang[i]);
		close(hfd[i]);
	}
	sub_unref(ok);
	sink_stop(sink);
}
END_TEST

/* A refused delivery is counted, its reason kept, and it waits for a retry. */
START_TEST(refused_is_counted_and_kept_for_retry)
{
	char a[64], err[SUB_ERRLEN];
	struct sub *s;
	cJSON *dl;

	set_schedule("1h");
	start();
	snprintf(a, sizeof(a), "127.0.0.1:%u", unit_refused_port());
	s = subscribe(a);
	publish(3);
	wait_for(&sub_counters(s)->failed, 3);
	wait_for(&sub_counters(s)->retrying, 3);
	ck_assert_uint_eq(atomic_load(&sub_counters(s)->delivered), 0);
	ck_assert_uint_eq(atomic_load(&sub_counters(s)->queued), 0);
	sub_get_error(s, err);
	ck_assert_msg(strstr(err, "onnect") != NULL, "last error \"%s\"", err);
	ck_assert_int_eq(sub_state(s), SUB_ACTIVE);	/* 3 < failure_threshold */
	dl = dead_letters(a);
	ck_assert_int_eq(cJSON_GetArraySize(dl), 0);
	cJSON_Delete(dl);
	/* Kept, not delivered: the bodies stay in the store. */
	ck_assert_uint_eq(store_backlog_bytes(stack.store), 3UL * 5);
	sub_unref(s);
}
END_TEST

/* A retry is the same message: the same webhook-id every attempt. */
START_TEST(retry_succeeds_with_the_same_id)
{
	char a[64], err[SUB_ERRLEN];
	unsigned port;
	struct MHD_Daemon *sink = sink_start(&port);
	struct sub *s;

	sink_first_n = 2;
	sink_first_status = 500;
	set_schedule("10ms 10ms 10ms");
	start();
	snprintf(a, sizeof(a), "127.0.0.1:%u", port);
	s = subscribe(a);
	publish(1);
	wait_for(&sub_counters(s)->delivered, 1);
	ck_assert_uint_eq(atomic_load(&sub_counters(s)->failed), 2);
	wait_for(&sub_counters(s)->retrying, 0);
	sub_get_error(s, err);
	ck_assert_str_eq(err, "HTTP 500");
	ck_assert_int_eq(sink_get(&sink_count), 3);
	assert_seen(3);
	sub_unref(s);
	sink_stop(sink);
}
END_TEST

/* 429/503 with Retry-After: the next attempt waits that long, not the schedule. */
START_TEST(retry_after_is_honoured)
{
	char a[64];
	unsigned port;
	struct MHD_Daemon *sink = sink_start(&port);
	struct sub *s;
	int64_t gap;

	sink_first_n = 1;
	sink_first_status = 503;
	sink_retry_after = "1";
	set_schedule("10ms");
	start();
	snprintf(a, sizeof(a), "127.0.0.1:%u", port);
	s = subscribe(a);
	publish(1);
	wait_for(&sub_counters(s)->delivered, 1);
	ck_assert_int_eq(sink_get(&sink_count), 2);
	pthread_mutex_lock(&sink_lock);
	gap = sink_times[1] - sink_times[0];
	pthread_mutex_unlock(&sink_lock);
	ck_assert_msg(gap >= 950 && gap < 3000, "retried after %lld ms",
	    (long long)gap);
	assert_seen(2);
	sub_unref(s);
	sink_stop(sink);
}
END_TEST

/*
 * A message waiting for a retry keeps its body in the store, even once the
 * collector has passed it; delivered on the retry, it is let go.
 */
START_TEST(retried_body_is_let_go)
{
	char a[64];
	unsigned port;
	struct MHD_Daemon *sink = sink_start(&port);
	struct sub *s;

	sink_first_n = 1;
	sink_first_status = 503;
	sink_retry_after = "1";
	sink_closed_gate = 2;	/* the retry of message 0 waits for gate_open */
	start();
	snprintf(a, sizeof(a), "127.0.0.1:%u", port);
	s = subscribe(a);
	publish(1);
	wait_for(&sub_counters(s)->failed, 1);
	publish(1);
	wait_for(&sub_counters(s)->delivered, 1);
	/* Message 1 is collected; message 0 cannot have been delivered yet. */
	wait_until(backlog_at_most, &(size_t){ 5 }, 5000);
	ck_assert_uint_eq(store_backlog_bytes(stack.store), 5);
	ck_assert_uint_eq(atomic_load(&sub_counters(s)->delivered), 1);
	gate_open();
	wait_for(&sub_counters(s)->delivered, 2);
	/* Let go within 5 s of the last delivery. */
	wait_until(backlog_at_most, &(size_t){ 0 }, 5000);
	ck_assert_int_eq(sink_get(&sink_count), 3);
	pthread_mutex_lock(&sink_lock);
	ck_assert_int_eq(seen[0], 2);
	ck_assert_int_eq(seen[1], 1);
	pthread_mutex_unlock(&sink_lock);
	sub_unref(s);
	sink_stop(sink);
}
END_TEST

/* The last entry of the schedule failed: a dead letter, with its history. */
START_TEST(exhausted_retries_become_dead_letters)
{
	char a[64];
	unsigned port;
	struct MHD_Daemon *sink = sink_start(&port);
	struct sub *s;
	cJSON *dl;

	sink_status = 500;
	cfg.failure_threshold = 1000;
	set_schedule("10ms 20ms");
	start();
	snprintf(a, sizeof(a), "127.0.0.1:%u", port);
	s = subscribe(a);
	publish(2);
	wait_for(&sub_counters(s)->failed, 6);
	dl = wait_dead(a, 2);
	for (int i = 0; i < 2; i++) {
		cJSON *o = cJSON_GetArrayItem(dl, i);
		const char *id = field_str(o, "id");

		ck_assert(strcmp(id, pub_id[0]) == 0 || strcmp(id, pub_id[1]) ==
		    0);
		ck_assert_str_eq(field_str(o, "address"), a);
		ck_assert_int_eq(field_int(o, "attempts"), 3);
		ck_assert_int_eq(field_int(o, "last_status"), 500);
		ck_assert_str_eq(field_str(o, "last_error"), "HTTP 500");
		ck_assert_str_eq(field_str(o, "reason"), "retries exhausted");
		ck_assert_int_eq(strlen(field_str(o, "dead_at")), 20);
	}
	ck_assert_str_ne(field_str(cJSON_GetArrayItem(dl, 0), "id"),
	    field_str(cJSON_GetArrayItem(dl, 1), "id"));
	cJSON_Delete(dl);
	wait_for(&sub_counters(s)->retrying, 0);
	ck_assert_uint_eq(atomic_load(&sub_counters(s)->delivered), 0);
	ck_assert_int_eq(sink_get(&sink_count), 6);
	assert_seen(3);

	/* Replayed once the subscriber works again: delivered, no longer dead. */
	set_status(204);
	{
		struct store_req req = { .r_type = REQ_DL_REPLAY,
		    .r_address = a };

		ck_assert_int_eq(unit_request(stack.store, &req), STORE_OK);
		ck_assert_int_eq(req.r_count, 2);
	}
	wait_for(&sub_counters(s)->delivered, 2);
	assert_seen(4);
	dl = dead_letters(a);
	ck_assert_int_eq(cJSON_GetArraySize(dl), 0);
	cJSON_Delete(dl);
	sub_unref(s);
	sink_stop(sink);
}
END_TEST

/*
 * failure_threshold consecutive failures make a subscriber failing: one
 * retry probe at a time, nothing new; one success makes it active again
 * and everything it missed follows.
 */
START_TEST(failing_subscriber_probes_then_recovers)
{
	char a[64], sched[32 * 7];
	unsigned port;
	struct MHD_Daemon *sink = sink_start(&port);
	struct sub *s;
	int before;

	sink_status = 500;
	cfg.failure_threshold = 2;
	sched[0] = '\0';
	for (int i = 0; i < 30; i++)
		snprintf(sched + strlen(sched), sizeof(sched) - strlen(sched),
		    "100ms ");
	set_schedule(sched);
	start();
	snprintf(a, sizeof(a), "127.0.0.1:%u", port);
	s = subscribe(a);
	publish(3);
	wait_state(s, SUB_FAILING);
	publish(3);
	before = sink_get(&sink_count);
	/*
	 * A window, not a wait: in_flight must stay at most 1 all through
	 * it, so the sleeps are the sampling, and the window's length (about
	 * three retry intervals) is what the counts below are measured over.
	 */
	for (int i = 0; i < 60; i++) {
		ck_assert_uint_le(atomic_load(&sub_counters(s)->in_flight), 1);
		usleep(5000);
	}
	/* It is probed, but not flooded. */
	ck_assert_int_gt(sink_get(&sink_count), before);
	ck_assert_int_lt(sink_get(&sink_count), before + 20);
	ck_assert_int_eq(sub_state(s), SUB_FAILING);
	ck_assert_uint_eq(atomic_load(&sub_counters(s)->delivered), 0);

	set_status(204);
	wait_for(&sub_counters(s)->delivered, 6);
	ck_assert_int_eq(sub_state(s), SUB_ACTIVE);
	wait_for(&sub_counters(s)->retrying, 0);
	wait_for(&sub_counters(s)->queued, 0);
	pthread_mutex_lock(&sink_lock);
	for (int i = 0; i < published; i++) {
		ck_assert_msg(seen[i] >= 1, "message %d never sent", i);
		ck_assert_str_eq(seen_id[i], pub_id[i]);
	}
	ck_assert_int_eq(sink_bad, 0);
	pthread_mutex_unlock(&sink_lock);
	sub_unref(s);
	sink_stop(sink);
}
END_TEST

/* 410 Gone: deregistered; what it had pending is a dead letter. */
START_TEST(gone_deregisters)
{
	char a[64];
	unsigned port;
	struct MHD_Daemon *sink = sink_start(&port);
	struct sub *s;
	cJSON *dl;

	sink_status = 410;
	sink_closed_gate = 1;	/* all five published before the first answer */
	cfg.queue_limit = 100;
	start();
	snprintf(a, sizeof(a), "127.0.0.1:%u", port);
	s = subscribe(a);
	publish(5);
	wait_for(&sub_counters(s)->in_flight, 2);
	gate_open();
	wait_until(no_subscribers, NULL, 5000);
	dl = wait_dead(a, 5);
	for (int i = 0; i < 5; i++)
		ck_assert_str_eq(field_str(cJSON_GetArrayItem(dl, i), "reason"),
		    "gone");
	cJSON_Delete(dl);
	/* Nothing more was sent once it said so (two were in flight at most). */
	ck_assert_int_le(sink_get(&sink_count), 2);
	/* Proving that nothing more comes: a sleep is the point here. */
	usleep(200000);
	ck_assert_int_le(sink_get(&sink_count), 2);
	ck_assert_uint_eq(atomic_load(&sub_counters(s)->delivered), 0);
	sub_unref(s);
	sink_stop(sink);
}
END_TEST

START_TEST(removed_subscriber_gets_nothing_more)
{
	char a[64];
	unsigned port;
	struct MHD_Daemon *sink = sink_start(&port);
	struct sub *s;
	cJSON *dl;

	start();
	snprintf(a, sizeof(a), "127.0.0.1:%u", port);
	s = subscribe(a);
	publish(1);
	wait_for(&sub_counters(s)->delivered, 1);
	ck_assert_int_eq(subs_remove(stack.subs, a, SUB_DEREGISTERED), 0);
	publish(5);
	/* Proving that nothing more comes: a sleep is the point here. */
	usleep(200000);
	ck_assert_uint_eq(atomic_load(&sub_counters(s)->delivered), 1);
	ck_assert_int_eq(sink_get(&sink_count), 1);
	/* It had nothing pending: no dead letters either. */
	dl = dead_letters(a);
	ck_assert_int_eq(cJSON_GetArraySize(dl), 0);
	cJSON_Delete(dl);
	sub_unref(s);
	sink_stop(sink);
}
END_TEST

/* Deregistered with deliveries pending: they become dead letters. */
START_TEST(deregistered_pending_become_dead_letters)
{
	char a[64];
	unsigned hport;
	int hfd = unit_hang_listen(&hport);
	struct sub *s;
	cJSON *dl;

	cfg.delivery_timeout = 1;
	start();
	snprintf(a, sizeof(a), "127.0.0.1:%u", hport);
	s = subscribe(a);
	publish(5);
	wait_for(&sub_counters(s)->in_flight, 2);
	ck_assert_int_eq(subs_remove(stack.subs, a, SUB_DEREGISTERED), 0);
	/* Three never started at once; two more when their transfers time out. */
	dl = wait_dead(a, 5);
	for (int i = 0; i < 5; i++)
		ck_assert_str_eq(field_str(cJSON_GetArrayItem(dl, i), "reason"),
		    "deregistered");
	cJSON_Delete(dl);
	sub_unref(s);
	close(hfd);
}
END_TEST

/*
 * Deliveries unfinished at shutdown are sent again after a restart, with
 * the same webhook-id (at least once).
 */
START_TEST(restart_resumes_unfinished_deliveries)
{
	char a[64];
	unsigned port;
	struct MHD_Daemon *sink = sink_start(&port);
	struct sub *s;

	sink_closed_gate = 1;
	start();
	snprintf(a, sizeof(a), "127.0.0.1:%u", port);
	s = subscribe(a);
	publish(8);
	wait_for(&sub_counters(s)->in_flight, 2);
	sub_unref(s);
	unit_stack_stop(&stack, 0);	/* grace 0: the two are abandoned */

	start();
	ck_assert_uint_eq(subs_count(stack.subs), 1);
	s = find_sub(a);
	gate_open();
	wait_for(&sub_counters(s)->delivered, 8);
	wait_for(&sub_counters(s)->queued, 0);
	pthread_mutex_lock(&sink_lock);
	for (int i = 0; i < published; i++) {
		ck_assert_msg(seen[i] >= 1, "message %d never sent", i);
		ck_assert_str_eq(seen_id[i], pub_id[i]);
	}
	ck_assert_int_eq(sink_bad, 0);
	pthread_mutex_unlock(&sink_lock);
	/* The ones abandoned in flight came again; the rest came once. */
	ck_assert_int_le(sink_get(&sink_count), 8 + 2);
	sub_unref(s);
	sink_stop(sink);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("deliver");
	TCase *tc = tcase_create("deliver");

	curl_global_init(CURL_GLOBAL_DEFAULT);
	log_set_level(LOG_ERROR);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, fans_out_to_everyone);
	tcase_add_test(tc, slow_backlog_waits_in_the_store);
	tcase_add_test(tc, hanging_subscriber_holds_only_its_slots);
	tcase_add_test(tc, queued_counts_the_whole_backlog);
	tcase_add_test(tc, hanging_subscribers_do_not_starve_the_rest);
	tcase_add_test(tc, refused_is_counted_and_kept_for_retry);
	tcase_add_test(tc, retry_succeeds_with_the_same_id);
	tcase_add_test(tc, retry_after_is_honoured);
	tcase_add_test(tc, retried_body_is_let_go);
	tcase_add_test(tc, exhausted_retries_become_dead_letters);
	tcase_add_test(tc, failing_subscriber_probes_then_recovers);
	tcase_add_test(tc, gone_deregisters);
	tcase_add_test(tc, removed_subscriber_gets_nothing_more);
	tcase_add_test(tc, deregistered_pending_become_dead_letters);
	tcase_add_test(tc, restart_resumes_unfinished_deliveries);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	return unit_run(s);
}

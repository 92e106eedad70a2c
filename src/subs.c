/*
 * subs.c: the subscriber map.
 *
 * DESIGN
 * A chained hash table keyed by address under one pthread_rwlock_t.
 * libmicrohttpd threads take the read lock to refresh a keep-alive (an
 * atomic store on the subscriber) and the write lock to add or remove; the
 * reaper takes the write lock to evict.  The lock is held only around table
 * operations and the on_add/on_remove/on_change hooks, which just queue an
 * operation for the store (lock order: subs rwlock, then the store's queue
 * mutex).  A publish is queued under the read lock as well, with its count
 * of subscribers, so that count and its place among the changes agree.
 * Subscribers are reference counted so readers can copy pointers out under
 * the read lock and look at them after it is released; their strings are
 * immutable, their clocks and counters atomic, their last error behind a
 * small mutex of their own.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "htab.h"
#include "subs.h"
#include "topics.h"

struct sub {
	atomic_uint sub_refs;
	struct hnode sub_node; /* keyed by sub_address; map lock */
	char *sub_address;
	unsigned sub_shard; /* subs_shard_of(sub_address), fixed */
	char *sub_url_text;
	CURLU *sub_url;
	int64_t sub_registered;
	_Atomic int64_t sub_ka_real;
	_Atomic int64_t sub_ka_mono;
	struct sub_counters sub_counters;
	/*
	 * sub_topics and sub_secret change under both the map's write lock
	 * and sub_lock: either is enough to read them.
	 */
	pthread_mutex_t sub_lock; /* guards the three below */
	char sub_error[SUB_ERRLEN];
	struct topics *sub_topics; /* NULL: every topic */
	char sub_secret[SIGN_SECRET_MAX + 1];
	void *sub_deliver;
	void *sub_store;
	_Atomic int64_t sub_store_id; /* row in the store, 0: none yet */
	_Atomic uint64_t sub_start;   /* first message sequence it gets */
	atomic_int sub_state;	      /* enum sub_state */
	enum sub_end sub_end;	      /* why it left; set under the map lock */
	int sub_restored;	      /* read back from the store */
};

struct subs {
	pthread_rwlock_t lock;
	struct htab table; /* struct sub by address */
	size_t max;
	struct subs_hooks hooks;
	struct topic_index *index; /* subscribers by topic */
	size_t every;		   /* those with no topics */
};

#define SUB_OF(n) HNODE_OWNER(n, struct sub, sub_node)

struct subs *
subs_new(size_t max, const struct subs_hooks *hooks)
{
	struct subs *s;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	if (htab_init(&s->table) == -1) {
		free(s);
		return NULL;
	}
	if ((s->index = topic_index_new()) == NULL) {
		htab_destroy(&s->table);
		free(s);
		return NULL;
	}
	s->max = max;
	if (hooks != NULL)
		s->hooks = *hooks;
	pthread_rwlock_init(&s->lock, NULL);
	return s;
}

void
subs_free(struct subs *s)
{
	struct hnode *n, *next;

	if (s == NULL)
		return;
	for (size_t i = 0; i < s->table.ht_n; i++)
		for (n = s->table.ht_buckets[i]; n != NULL; n = next) {
			next = n->hn_next;
			sub_unref(SUB_OF(n));
		}
	htab_destroy(&s->table);
	topic_index_free(s->index);
	pthread_rwlock_destroy(&s->lock);
	free(s);
}

static void
sub_touch(struct sub *sub, int64_t real_ms, int64_t mono_ms)
{
	atomic_store(&sub->sub_ka_real, real_ms);
	atomic_store(&sub->sub_ka_mono, mono_ms);
}

int
subs_keepalive(struct subs *s, const char *address, int64_t real_ms,
    int64_t mono_ms)
{
	uint64_t h = htab_hash(&s->table, address);
	struct hnode *n;

	pthread_rwlock_rdlock(&s->lock);
	n = *htab_slot(&s->table, address, h);
	if (n != NULL)
		sub_touch(SUB_OF(n), real_ms, mono_ms);
	pthread_rwlock_unlock(&s->lock);
	return n != NULL ? 0 : -1;
}

static struct sub *
sub_new(const char *address, uint64_t h, CURLU *url, const char *url_text,
    const struct sub_opts *opts, int64_t real_ms, int64_t mono_ms)
{
	struct sub *sub;

	if ((sub = calloc(1, sizeof(*sub))) == NULL)
		return NULL;
	if ((sub->sub_address = strdup(address)) == NULL ||
	    (sub->sub_url_text = strdup(url_text)) == NULL) {
		free(sub->sub_address);
		free(sub);
		return NULL;
	}
	atomic_init(&sub->sub_refs, 1);
	sub->sub_node.hn_hash = h;
	sub->sub_node.hn_key = sub->sub_address;
	sub->sub_shard = subs_shard_of(sub->sub_address);
	sub->sub_url = url;
	sub->sub_registered = real_ms;
	atomic_init(&sub->sub_ka_real, real_ms);
	atomic_init(&sub->sub_ka_mono, mono_ms);
	pthread_mutex_init(&sub->sub_lock, NULL);
	if (opts != NULL) {
		sub->sub_topics = topics_ref(opts->topics);
		if (opts->secret != NULL)
			snprintf(sub->sub_secret, sizeof(sub->sub_secret), "%s",
			    opts->secret);
	}
	return sub;
}

/* Files SUB in the topic index: 0, or -1 when out of memory.  Write lock held. */
static int
subs_file(struct subs *s, struct sub *sub)
{
	if (sub->sub_topics == NULL) {
		s->every++;
		return 0;
	}
	return topic_index_add(s->index, sub->sub_topics, sub);
}

static void
subs_unfile(struct subs *s, struct sub *sub)
{
	if (sub->sub_topics == NULL)
		s->every--;
	else
		topic_index_remove(s->index, sub->sub_topics, sub);
}

/*
 * Gives SUB (in the map) the topics and secret OPTS asks for, if they
 * differ: SUBS_CHANGED, SUBS_REFRESHED (nothing to do) or SUBS_NOMEM
 * (nothing changed).  Write lock held.
 */
static enum subs_add_result
subs_change(struct subs *s, struct sub *sub, const struct sub_opts *opts)
{
	int topics = opts->has_topics &&
	    !topics_equal(sub->sub_topics, opts->topics);
	int secret = opts->secret != NULL &&
	    strcmp(sub->sub_secret, opts->secret) != 0;
	struct topics *old = sub->sub_topics;
	char old_secret[SIGN_SECRET_MAX + 1];

	if (!topics && !secret)
		return SUBS_REFRESHED;
	/* Filed under the new set first, so that failing changes nothing. */
	if (topics && opts->topics != NULL &&
	    topic_index_add(s->index, opts->topics, sub) == -1)
		return SUBS_NOMEM;
	/* Installed before the hook, which takes its snapshot of them. */
	memcpy(old_secret, sub->sub_secret, sizeof(old_secret));
	pthread_mutex_lock(&sub->sub_lock);
	if (topics)
		sub->sub_topics = topics_ref(opts->topics);
	if (secret)
		snprintf(sub->sub_secret, sizeof(sub->sub_secret), "%s",
		    opts->secret);
	pthread_mutex_unlock(&sub->sub_lock);
	if (s->hooks.on_change != NULL &&
	    s->hooks.on_change(sub, s->hooks.arg) == -1) {
		pthread_mutex_lock(&sub->sub_lock);
		if (topics) {
			topics_unref(sub->sub_topics);
			sub->sub_topics = old;
		}
		memcpy(sub->sub_secret, old_secret, sizeof(old_secret));
		pthread_mutex_unlock(&sub->sub_lock);
		if (topics && opts->topics != NULL)
			topic_index_remove(s->index, opts->topics, sub);
		explicit_bzero(old_secret, sizeof(old_secret));
		return SUBS_NOMEM;
	}
	explicit_bzero(old_secret, sizeof(old_secret));
	if (topics) {
		if (old == NULL)
			s->every--;
		else
			topic_index_remove(s->index, old, sub);
		if (opts->topics == NULL)
			s->every++;
		topics_unref(old);
	}
	return SUBS_CHANGED;
}

/*
 * Inserts SUB (its one reference passes to the map) unless ADDRESS is
 * there; then that one is refreshed and given what OPTS asks for.
 */
static enum subs_add_result
subs_insert(struct subs *s, struct sub *sub, const struct sub_opts *opts,
    int64_t real_ms, int64_t mono_ms)
{
	enum subs_add_result r = SUBS_ADDED;
	struct hnode **pp;

	pthread_rwlock_wrlock(&s->lock);
	pp = htab_slot(&s->table, sub->sub_address, sub->sub_node.hn_hash);
	if (*pp != NULL) {
		sub_touch(SUB_OF(*pp), real_ms, mono_ms);
		r = opts != NULL ? subs_change(s, SUB_OF(*pp), opts) :
				   SUBS_REFRESHED;
	} else if (s->table.ht_count >= s->max) {
		r = SUBS_FULL;
	} else if (subs_file(s, sub) == -1) {
		r = SUBS_NOMEM;
	} else if (s->hooks.on_add != NULL &&
	    s->hooks.on_add(sub, s->hooks.arg) == -1) {
		subs_unfile(s, sub);
		r = SUBS_NOMEM;
	} else
		htab_link(&s->table, pp, &sub->sub_node);
	pthread_rwlock_unlock(&s->lock);

	if (r != SUBS_ADDED) {
		sub->sub_url = NULL; /* still the caller's */
		sub_unref(sub);
	}
	return r;
}

enum subs_add_result
subs_add(struct subs *s, const char *address, CURLU *url, const char *url_text,
    const struct sub_opts *opts, int64_t real_ms, int64_t mono_ms)
{
	struct sub *sub;

	/* Allocate outside the lock; most of the time it is needed. */
	if ((sub = sub_new(address, htab_hash(&s->table, address), url,
		 url_text, opts, real_ms, mono_ms)) == NULL)
		return SUBS_NOMEM;
	return subs_insert(s, sub, opts, real_ms, mono_ms);
}

enum subs_add_result
subs_restore(struct subs *s, const struct sub_saved *saved, CURLU *url)
{
	struct sub_opts opts = { 1, NULL, saved->secret };
	char err[TOPICS_ERRLEN];
	const char *text = saved->topics;
	enum subs_add_result r;
	struct sub *sub;

	char bad[SIGN_ERRLEN];

	/*
	 * Written by topics_text() and checked by sign_check(): they read back,
	 * unless the row was tampered with.  Such a subscriber is not put back
	 * (it could only be misrouted, or signed with no key).
	 */
	if (text != NULL && *text != '\0' &&
	    topics_parse(&text, 1, 1, &opts.topics, err) != TOPICS_OK)
		return SUBS_NOMEM;
	if (saved->secret != NULL && *saved->secret != '\0' &&
	    sign_check(saved->secret, 1, bad) == -1) {
		topics_unref(opts.topics);
		return SUBS_NOMEM;
	}
	if ((sub = sub_new(saved->address, htab_hash(&s->table, saved->address),
		 url, saved->url_text, &opts, saved->keepalive_real,
		 saved->keepalive_mono)) == NULL) {
		topics_unref(opts.topics);
		return SUBS_NOMEM;
	}
	topics_unref(opts.topics);
	sub->sub_registered = saved->registered_real;
	atomic_init(&sub->sub_store_id, saved->store_id);
	atomic_init(&sub->sub_start, saved->start);
	sub->sub_restored = 1;
	r = subs_insert(s, sub, NULL, saved->keepalive_real,
	    saved->keepalive_mono);
	return r;
}

/* Unlinks *PP; the map's reference passes to the caller.  Write lock held. */
static struct sub *
subs_unlink(struct subs *s, struct hnode **pp)
{
	struct sub *sub = SUB_OF(htab_unlink(&s->table, pp));

	subs_unfile(s, sub);
	if (s->hooks.on_remove != NULL)
		s->hooks.on_remove(sub, s->hooks.arg);
	return sub;
}

/* Removes ADDRESS's entry if it is WHICH (any entry when WHICH is NULL). */
static int
subs_remove_if(struct subs *s, const char *address, uint64_t h,
    const struct sub *which, enum sub_end why)
{
	struct hnode **pp;
	struct sub *sub = NULL;

	pthread_rwlock_wrlock(&s->lock);
	pp = htab_slot(&s->table, address, h);
	if (*pp != NULL && (which == NULL || SUB_OF(*pp) == which)) {
		SUB_OF(*pp)->sub_end = why;
		sub = subs_unlink(s, pp);
	}
	pthread_rwlock_unlock(&s->lock);
	if (sub == NULL)
		return -1;
	sub_unref(sub);
	return 0;
}

int
subs_remove(struct subs *s, const char *address, enum sub_end why)
{
	return subs_remove_if(s, address, htab_hash(&s->table, address), NULL,
	    why);
}

int
subs_remove_sub(struct subs *s, struct sub *which, enum sub_end why)
{
	return subs_remove_if(s, which->sub_address, which->sub_node.hn_hash,
	    which, why);
}

size_t
subs_reap(struct subs *s, int64_t cutoff_mono, struct sub ***gone)
{
	struct sub **out = NULL, **t;
	struct hnode **pp;
	size_t n = 0, cap = 0;

	*gone = NULL;
	pthread_rwlock_wrlock(&s->lock);
	for (size_t i = 0; i < s->table.ht_n; i++) {
		pp = &s->table.ht_buckets[i];
		while (*pp != NULL) {
			if (atomic_load(&SUB_OF(*pp)->sub_ka_mono) >=
			    cutoff_mono) {
				pp = &(*pp)->hn_next;
				continue;
			}
			/* Out of memory: the rest waits a round. */
			if ((t = array_grow(out, &cap, n + 1, sizeof(*out))) ==
			    NULL)
				goto done;
			out = t;
			SUB_OF(*pp)->sub_end = SUB_EVICTED;
			out[n++] = subs_unlink(s, pp);
		}
	}
done:
	pthread_rwlock_unlock(&s->lock);
	*gone = out;
	return n;
}

static int
sub_cmp(const void *a, const void *b)
{
	const struct sub *x = *(struct sub *const *)a;
	const struct sub *y = *(struct sub *const *)b;

	return strcmp(x->sub_address, y->sub_address);
}

long
subs_snapshot(struct subs *s, struct sub ***out)
{
	struct sub **v;
	struct hnode *e;
	size_t n = 0;

	*out = NULL;
	pthread_rwlock_rdlock(&s->lock);
	v = malloc((s->table.ht_count ? s->table.ht_count : 1) * sizeof(*v));
	if (v == NULL) {
		pthread_rwlock_unlock(&s->lock);
		return -1;
	}
	for (size_t i = 0; i < s->table.ht_n; i++)
		for (e = s->table.ht_buckets[i]; e != NULL; e = e->hn_next)
			v[n++] = sub_ref(SUB_OF(e));
	pthread_rwlock_unlock(&s->lock);
	qsort(v, n, sizeof(*v), sub_cmp);
	*out = v;
	return (long)n;
}

void
subs_set_max(struct subs *s, size_t max)
{
	pthread_rwlock_wrlock(&s->lock);
	s->max = max;
	pthread_rwlock_unlock(&s->lock);
}

size_t
subs_count(struct subs *s)
{
	size_t n;

	pthread_rwlock_rdlock(&s->lock);
	n = s->table.ht_count;
	pthread_rwlock_unlock(&s->lock);
	return n;
}

void
subs_census(struct subs *s, struct subs_census *out)
{
	struct hnode *e;

	memset(out, 0, sizeof(*out));
	pthread_rwlock_rdlock(&s->lock);
	for (size_t i = 0; i < s->table.ht_n; i++)
		for (e = s->table.ht_buckets[i]; e != NULL; e = e->hn_next) {
			struct sub *sub = SUB_OF(e);

			if (sub_state(sub) == SUB_FAILING)
				out->failing++;
			else
				out->active++;
			out->queued += atomic_load(&sub->sub_counters.queued);
			out->retrying +=
			    atomic_load(&sub->sub_counters.retrying);
		}
	pthread_rwlock_unlock(&s->lock);
}

int
subs_count_then(struct subs *s, const struct topics *topics,
    int (*then)(void *, size_t), void *arg)
{
	struct topic_vec v = { 0 };
	size_t n;
	int r;

	pthread_rwlock_rdlock(&s->lock);
	/* Every topic; or out of memory: at most all of them. */
	if (topics == NULL || topic_index_match(s->index, topics, &v) == -1)
		n = s->table.ht_count;
	else
		n = s->every + v.n;
	r = then(arg, n);
	pthread_rwlock_unlock(&s->lock);
	free(v.v);
	return r;
}

int
subs_count_each_then(struct subs *s, const struct topics *const *topics,
    size_t n, size_t *counts, int (*then)(void *), void *arg)
{
	struct topic_vec v = { 0 };
	int r;

	pthread_rwlock_rdlock(&s->lock);
	for (size_t i = 0; i < n; i++)
		if (topics[i] == NULL ||
		    topic_index_match(s->index, topics[i], &v) == -1)
			counts[i] = s->table.ht_count;
		else
			counts[i] = s->every + v.n;
	r = then(arg);
	pthread_rwlock_unlock(&s->lock);
	free(v.v);
	return r;
}

struct sub *
sub_ref(struct sub *sub)
{
	atomic_fetch_add_explicit(&sub->sub_refs, 1, memory_order_relaxed);
	return sub;
}

void
sub_unref(struct sub *sub)
{
	if (sub == NULL ||
	    atomic_fetch_sub_explicit(&sub->sub_refs, 1,
		memory_order_acq_rel) != 1)
		return;
	curl_url_cleanup(sub->sub_url);
	topics_unref(sub->sub_topics);
	explicit_bzero(sub->sub_secret, sizeof(sub->sub_secret));
	pthread_mutex_destroy(&sub->sub_lock);
	free(sub->sub_url_text);
	free(sub->sub_address);
	free(sub);
}

const char *
sub_address(const struct sub *sub)
{
	return sub->sub_address;
}

unsigned
subs_shard_of(const char *address)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	const unsigned char *p;

	for (p = (const unsigned char *)address; *p != '\0'; p++) {
		h ^= *p;
		h *= 0x100000001b3ULL;
	}
	return (unsigned)(h % SUBS_SHARDS);
}

unsigned
sub_shard(const struct sub *sub)
{
	return sub->sub_shard;
}

const char *
sub_url_text(const struct sub *sub)
{
	return sub->sub_url_text;
}

const CURLU *
sub_url(const struct sub *sub)
{
	return sub->sub_url;
}

int64_t
sub_registered_ms(const struct sub *sub)
{
	return sub->sub_registered;
}

int64_t
sub_keepalive_ms(const struct sub *sub)
{
	return atomic_load(&sub->sub_ka_real);
}

int64_t
sub_keepalive_mono(const struct sub *sub)
{
	return atomic_load(&sub->sub_ka_mono);
}

struct sub_counters *
sub_counters(struct sub *sub)
{
	return &sub->sub_counters;
}

void
sub_set_error(struct sub *sub, const char *error)
{
	pthread_mutex_lock(&sub->sub_lock);
	strncpy(sub->sub_error, error, sizeof(sub->sub_error) - 1);
	sub->sub_error[sizeof(sub->sub_error) - 1] = '\0';
	pthread_mutex_unlock(&sub->sub_lock);
}

void
sub_get_error(struct sub *sub, char buf[SUB_ERRLEN])
{
	pthread_mutex_lock(&sub->sub_lock);
	memcpy(buf, sub->sub_error, SUB_ERRLEN);
	pthread_mutex_unlock(&sub->sub_lock);
}

struct topics *
sub_topics(struct sub *sub)
{
	struct topics *t;

	pthread_mutex_lock(&sub->sub_lock);
	t = topics_ref(sub->sub_topics);
	pthread_mutex_unlock(&sub->sub_lock);
	return t;
}

void
sub_get_secret(struct sub *sub, char buf[SIGN_SECRET_MAX + 1])
{
	pthread_mutex_lock(&sub->sub_lock);
	memcpy(buf, sub->sub_secret, SIGN_SECRET_MAX + 1);
	pthread_mutex_unlock(&sub->sub_lock);
}

void *
sub_deliver_state(const struct sub *sub)
{
	return sub->sub_deliver;
}

void
sub_set_deliver_state(struct sub *sub, void *state)
{
	sub->sub_deliver = state;
}

int64_t
sub_store_id(const struct sub *sub)
{
	return atomic_load(&sub->sub_store_id);
}

uint64_t
sub_start(const struct sub *sub)
{
	return atomic_load(&sub->sub_start);
}

void
sub_set_store(struct sub *sub, int64_t id, uint64_t start)
{
	atomic_store(&sub->sub_start, start);
	atomic_store(&sub->sub_store_id, id);
}

enum sub_state
sub_state(const struct sub *sub)
{
	return (enum sub_state)atomic_load(&sub->sub_state);
}

void
sub_set_state(struct sub *sub, enum sub_state st)
{
	atomic_store(&sub->sub_state, (int)st);
}

enum sub_end
sub_end(const struct sub *sub)
{
	return sub->sub_end;
}

const char *
sub_end_reason(enum sub_end why)
{
	static const char *const reasons[] = {
		[SUB_DEREGISTERED] = "deregistered",
		[SUB_EVICTED] = "evicted",
		[SUB_GONE] = "gone",
	};

	if ((unsigned)why >= sizeof(reasons) / sizeof(reasons[0]))
		abort(); /* not an enum sub_end: a caller's bug */
	return reasons[why];
}

void *
sub_store_state(const struct sub *sub)
{
	return sub->sub_store;
}

void
sub_set_store_state(struct sub *sub, void *state)
{
	sub->sub_store = state;
}

int
sub_restored(const struct sub *sub)
{
	return sub->sub_restored;
}

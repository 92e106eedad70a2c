/* topics.c: topic sets (parsed once, immutable, shared) and the routing index. */
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "htab.h"
#include "topics.h"

struct topics {
	atomic_uint t_refs;
	size_t t_n;
	char *t_text;	       /* "a,b.*,c" */
	const char *t_names[]; /* sorted; then the strings, then t_text */
};

/* A name, or with PATTERNS a name and ".*": its length, or 0 when invalid. */
static size_t
topic_check(const char *s, size_t len, int patterns)
{
	size_t name = len;

	if (patterns && len > 2 && s[len - 2] == '.' && s[len - 1] == '*')
		name = len - 2;
	if (name == 0 || name > TOPIC_MAX)
		return 0;
	for (size_t i = 0; i < name; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			(c >= '0' && c <= '9') || c == '.' || c == '_' ||
			c == '-'))
			return 0;
	}
	return len;
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

enum topics_status
topics_parse(const char *const *values, size_t n, int patterns,
    struct topics **out, char err[TOPICS_ERRLEN])
{
	const char *tok[TOPICS_MAX];
	size_t toklen[TOPICS_MAX], ntok = 0, bytes = 0, uniq;
	const char *names[TOPICS_MAX];
	int every = 0;
	struct topics *t;
	char *p;

	*out = NULL;
	for (size_t v = 0; v < n; v++) {
		const char *s = values[v] != NULL ? values[v] : "";

		for (;;) {
			const char *comma = strchr(s, ',');
			size_t len = comma != NULL ? (size_t)(comma - s) :
						     strlen(s);

			if (patterns && len == 1 && *s == '*')
				every = 1;
			else if (len == 0) {
				snprintf(err, TOPICS_ERRLEN,
				    "Error: Empty topic "
				    "name.");
				return TOPICS_INVALID;
			} else if (topic_check(s, len, patterns) == 0) {
				snprintf(err, TOPICS_ERRLEN,
				    "Error: Invalid "
				    "topic \"%.*s\": a topic is 1 to %d of "
				    "A-Z a-z 0-9 . _ -%s.",
				    len > 64 ? 64 : (int)len, s, TOPIC_MAX,
				    patterns ? ", optionally followed by .*" :
					       "");
				return TOPICS_INVALID;
			} else if (ntok == TOPICS_MAX) {
				snprintf(err, TOPICS_ERRLEN,
				    "Error: More than "
				    "%d topics.",
				    TOPICS_MAX);
				return TOPICS_INVALID;
			} else {
				tok[ntok] = s;
				toklen[ntok++] = len;
			}
			if (comma == NULL)
				break;
			s = comma + 1;
		}
	}
	if (every && ntok > 0) {
		snprintf(err, TOPICS_ERRLEN,
		    "Error: Topic \"*\" (every topic) "
		    "cannot be combined with others.");
		return TOPICS_INVALID;
	}
	if (ntok == 0)
		return TOPICS_OK;

	for (size_t i = 0; i < ntok; i++)
		bytes += 2 * (toklen[i] + 1);
	t = malloc(sizeof(*t) + ntok * sizeof(t->t_names[0]) + bytes);
	if (t == NULL)
		return TOPICS_NOMEM;
	p = (char *)&t->t_names[ntok];
	for (size_t i = 0; i < ntok; i++) {
		memcpy(p, tok[i], toklen[i]);
		p[toklen[i]] = '\0';
		names[i] = p;
		p += toklen[i] + 1;
	}
	qsort(names, ntok, sizeof(names[0]), name_cmp);
	uniq = 0;
	for (size_t i = 0; i < ntok; i++)
		if (uniq == 0 || strcmp(names[uniq - 1], names[i]) != 0)
			names[uniq++] = names[i];
	atomic_init(&t->t_refs, 1);
	t->t_n = uniq;
	t->t_text = p;
	for (size_t i = 0; i < uniq; i++) {
		size_t len = strlen(names[i]);

		t->t_names[i] = names[i];
		if (i > 0)
			*p++ = ',';
		memcpy(p, names[i], len);
		p += len;
	}
	*p = '\0';
	*out = t;
	return TOPICS_OK;
}

struct topics *
topics_ref(struct topics *t)
{
	if (t != NULL)
		atomic_fetch_add_explicit(&t->t_refs, 1, memory_order_relaxed);
	return t;
}

void
topics_unref(struct topics *t)
{
	if (t != NULL &&
	    atomic_fetch_sub_explicit(&t->t_refs, 1, memory_order_acq_rel) == 1)
		free(t);
}

size_t
topics_count(const struct topics *t)
{
	return t != NULL ? t->t_n : 0;
}

const char *
topics_at(const struct topics *t, size_t i)
{
	return t->t_names[i];
}

const char *
topics_text(const struct topics *t)
{
	return t != NULL ? t->t_text : "";
}

int
topics_equal(const struct topics *a, const struct topics *b)
{
	return strcmp(topics_text(a), topics_text(b)) == 0;
}

static int
topics_has(const struct topics *t, const char *name)
{
	size_t lo = 0, hi = t->t_n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(t->t_names[mid], name);

		if (c == 0)
			return 1;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

/*
 * Calls FN with every key a subscriber's set may hold that TOPIC matches:
 * the topic itself, then "a.*", "a.b.*", ... for each dot in it.  Stops at
 * the first nonzero answer and returns it.
 */
static int
topic_keys(const char *topic, int (*fn)(const char *, void *), void *arg)
{
	char key[TOPIC_MAX + 3];
	size_t len = strlen(topic);
	int r;

	if ((r = fn(topic, arg)) != 0)
		return r;
	for (size_t i = 0; i < len && i < TOPIC_MAX; i++) {
		if (topic[i] != '.' || i == 0 || i + 1 == len)
			continue;
		memcpy(key, topic, i + 1);
		key[i + 1] = '*';
		key[i + 2] = '\0';
		if ((r = fn(key, arg)) != 0)
			return r;
	}
	return 0;
}

/* has_key's argument: topic_keys passes it on as it is. */
struct has_arg {
	const struct topics *ha_set;
};

static int
has_key(const char *key, void *arg)
{
	const struct has_arg *ha = arg;

	return topics_has(ha->ha_set, key);
}

int
topics_match(const struct topics *sub, const struct topics *msg)
{
	struct has_arg ha = { sub };

	if (sub == NULL || msg == NULL)
		return 1;
	for (size_t i = 0; i < msg->t_n; i++)
		if (topic_keys(msg->t_names[i], has_key, &ha))
			return 1;
	return 0;
}

/* One entry of a comma list: "orders.*" matches "orders.x", a name itself. */
static int
entry_match(const char *e, size_t elen, const char *t, size_t tlen)
{
	if (elen > 2 && e[elen - 1] == '*' && e[elen - 2] == '.')
		return tlen > elen - 1 && memcmp(e, t, elen - 1) == 0;
	return elen == tlen && memcmp(e, t, elen) == 0;
}

int
topics_match_text(const char *sub, const char *msg)
{
	if (sub == NULL || *sub == '\0' || msg == NULL || *msg == '\0')
		return 1;
	for (const char *t = msg; *t != '\0';) {
		size_t tlen = strcspn(t, ",");

		for (const char *e = sub; *e != '\0';) {
			size_t elen = strcspn(e, ",");

			if (entry_match(e, elen, t, tlen))
				return 1;
			e += elen + (e[elen] == ',');
		}
		t += tlen + (t[tlen] == ',');
	}
	return 0;
}

/* ---- the index -------------------------------------------------------- */

struct entry {
	struct hnode e_node; /* keyed by e_key */
	void **e_members;
	size_t e_n, e_cap;
	char e_key[];
};

struct topic_index {
	struct htab entries;
};

struct topic_index *
topic_index_new(void)
{
	struct topic_index *idx;

	if ((idx = calloc(1, sizeof(*idx))) == NULL)
		return NULL;
	if (htab_init(&idx->entries) == -1) {
		free(idx);
		return NULL;
	}
	return idx;
}

void
topic_index_free(struct topic_index *idx)
{
	struct hnode *n, *next;

	if (idx == NULL)
		return;
	for (size_t i = 0; i < idx->entries.ht_n; i++)
		for (n = idx->entries.ht_buckets[i]; n != NULL; n = next) {
			struct entry *e = HNODE_OWNER(n, struct entry, e_node);

			next = n->hn_next;
			free(e->e_members);
			free(e);
		}
	htab_destroy(&idx->entries);
	free(idx);
}

/* KEY's entry, or NULL; *slot (if asked) is where it is or would go. */
static struct entry *
entry_find(const struct topic_index *idx, const char *key, struct hnode ***slot,
    uint64_t *hash)
{
	uint64_t h = htab_hash(&idx->entries, key);
	struct hnode **pp = htab_slot(&idx->entries, key, h);

	if (slot != NULL) {
		*slot = pp;
		*hash = h;
	}
	return *pp != NULL ? HNODE_OWNER(*pp, struct entry, e_node) : NULL;
}

static void
entry_drop(struct topic_index *idx, const char *key, const void *m)
{
	struct hnode **pp;
	uint64_t h;
	struct entry *e = entry_find(idx, key, &pp, &h);

	if (e == NULL)
		return;
	for (size_t i = 0; i < e->e_n; i++)
		if (e->e_members[i] == m) {
			e->e_members[i] = e->e_members[--e->e_n];
			break;
		}
	if (e->e_n == 0) {
		htab_unlink(&idx->entries, pp);
		free(e->e_members);
		free(e);
	}
}

int
topic_index_add(struct topic_index *idx, const struct topics *t, void *m)
{
	for (size_t i = 0; i < topics_count(t); i++) {
		const char *key = t->t_names[i];
		struct hnode **pp;
		uint64_t h;
		struct entry *e = entry_find(idx, key, &pp, &h);
		void **v;

		if (e == NULL) {
			size_t len = strlen(key);

			if ((e = calloc(1, sizeof(*e) + len + 1)) == NULL)
				goto fail;
			memcpy(e->e_key, key, len + 1);
			e->e_node.hn_hash = h;
			e->e_node.hn_key = e->e_key;
			htab_link(&idx->entries, pp, &e->e_node);
		}
		if ((v = array_grow(e->e_members, &e->e_cap, e->e_n + 1,
			 sizeof(*v))) == NULL) {
			if (e->e_n == 0)
				entry_drop(idx, key, m);
			goto fail;
		}
		e->e_members = v;
		e->e_members[e->e_n++] = m;
		continue;
fail:
		while (i-- > 0)
			entry_drop(idx, t->t_names[i], m);
		return -1;
	}
	return 0;
}

void
topic_index_remove(struct topic_index *idx, const struct topics *t, void *m)
{
	for (size_t i = 0; i < topics_count(t); i++)
		entry_drop(idx, t->t_names[i], m);
}

struct match {
	const struct topic_index *idx;
	struct topic_vec *out;
	int lists; /* that added members */
	int nomem;
};

static int
collect(const char *key, void *arg)
{
	struct match *mt = arg;
	struct topic_vec *out = mt->out;
	struct entry *e = entry_find(mt->idx, key, NULL, NULL);
	void **v;

	if (e == NULL)
		return 0;
	if (out->n + e->e_n > out->cap) {
		if ((v = array_grow(out->v, &out->cap, out->n + e->e_n,
			 sizeof(*v))) == NULL) {
			mt->nomem = 1;
			return 1;
		}
		out->v = v;
	}
	memcpy(out->v + out->n, e->e_members, e->e_n * sizeof(void *));
	out->n += e->e_n;
	mt->lists++;
	return 0;
}

static int
ptr_cmp(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t) * (void *const *)a;
	uintptr_t y = (uintptr_t) * (void *const *)b;

	return x < y ? -1 : x > y;
}

int
topic_index_match(const struct topic_index *idx, const struct topics *msg,
    struct topic_vec *out)
{
	struct match mt = { idx, out, 0, 0 };
	size_t uniq = 0;

	out->n = 0;
	for (size_t i = 0; i < msg->t_n && !mt.nomem; i++)
		topic_keys(msg->t_names[i], collect, &mt);
	if (mt.nomem)
		return -1;
	/* Several keys matched: a member filed under two of them counts once. */
	if (mt.lists > 1) {
		qsort(out->v, out->n, sizeof(out->v[0]), ptr_cmp);
		for (size_t i = 0; i < out->n; i++)
			if (uniq == 0 || out->v[uniq - 1] != out->v[i])
				out->v[uniq++] = out->v[i];
		out->n = uniq;
	}
	return 0;
}

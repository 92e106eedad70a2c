/* htab.c: seeded FNV-1a over chained buckets that double as the table fills. */
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "htab.h"

#define HTAB_MIN_BUCKETS 16

int
htab_init(struct htab *t)
{
	memset(t, 0, sizeof(*t));
	if ((t->ht_buckets = calloc(HTAB_MIN_BUCKETS,
		 sizeof(*t->ht_buckets))) == NULL)
		return -1;
	t->ht_n = HTAB_MIN_BUCKETS;
	if (getrandom(&t->ht_seed, sizeof(t->ht_seed), 0) != sizeof(t->ht_seed))
		t->ht_seed = (uint64_t)(uintptr_t)t->ht_buckets;
	return 0;
}

void
htab_destroy(struct htab *t)
{
	free(t->ht_buckets);
	t->ht_buckets = NULL;
	t->ht_n = t->ht_count = 0;
}

/* FNV-1a, then a finalizer so that the low bits (the bucket) are mixed. */
uint64_t
htab_hash(const struct htab *t, const char *key)
{
	uint64_t h = 0xcbf29ce484222325ULL ^ t->ht_seed;

	for (; *key != '\0'; key++) {
		h ^= (unsigned char)*key;
		h *= 0x100000001b3ULL;
	}
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return h;
}

struct hnode **
htab_slot(const struct htab *t, const char *key, uint64_t h)
{
	struct hnode **pp = &t->ht_buckets[h & (t->ht_n - 1)];

	while (*pp != NULL &&
	    ((*pp)->hn_hash != h || strcmp((*pp)->hn_key, key) != 0))
		pp = &(*pp)->hn_next;
	return pp;
}

static void
htab_grow(struct htab *t)
{
	size_t n = t->ht_n * 2;
	struct hnode **nb, *e, *next;

	if ((nb = calloc(n, sizeof(*nb))) == NULL)
		return;
	for (size_t i = 0; i < t->ht_n; i++)
		for (e = t->ht_buckets[i]; e != NULL; e = next) {
			next = e->hn_next;
			e->hn_next = nb[e->hn_hash & (n - 1)];
			nb[e->hn_hash & (n - 1)] = e;
		}
	free(t->ht_buckets);
	t->ht_buckets = nb;
	t->ht_n = n;
}

void
htab_link(struct htab *t, struct hnode **at, struct hnode *n)
{
	n->hn_next = NULL;
	*at = n;
	if (++t->ht_count > t->ht_n)
		htab_grow(t);
}

struct hnode *
htab_unlink(struct htab *t, struct hnode **pp)
{
	struct hnode *n = *pp;

	*pp = n->hn_next;
	n->hn_next = NULL;
	t->ht_count--;
	return n;
}

/* htab.h: a chained hash table keyed by strings; its owner embeds the nodes. */
#ifndef HOOKCAST_HTAB_H
#define HOOKCAST_HTAB_H

#include <stddef.h>
#include <stdint.h>

/* Embedded in what the table holds; the key is the owner's string. */
struct hnode {
	struct hnode *hn_next;
	uint64_t hn_hash;
	const char *hn_key;
};

/* The struct holding NODE, a struct hnode that is its MEMBER. */
#define HNODE_OWNER(node, type, member) \
	((type *)(void *)((char *)(node)-offsetof(type, member)))

/*
 * Not locked: the owner serializes access.  Walk it with
 * for (i < ht_n) for (pp = &ht_buckets[i]; *pp != NULL; ...).
 */
struct htab {
	struct hnode **ht_buckets;
	size_t ht_n; /* buckets: a power of two */
	size_t ht_count;
	uint64_t ht_seed; /* keys come from outside: hashes are seeded */
};

/* An empty table: 0, or -1 when out of memory. */
int htab_init(struct htab *t);
/* Frees the buckets; the nodes belong to the owner. */
void htab_destroy(struct htab *t);

uint64_t htab_hash(const struct htab *t, const char *key);
/* The link that points at KEY's node (hash H), or at its chain's NULL end. */
struct hnode **htab_slot(const struct htab *t, const char *key, uint64_t h);
/*
 * Puts N (hn_hash and hn_key set) where htab_slot said KEY is not, then
 * doubles the buckets when they are fewer than the nodes (if memory allows:
 * otherwise the table only gets slower).
 */
void htab_link(struct htab *t, struct hnode **at, struct hnode *n);
/* Takes the node *PP out; returns it. */
struct hnode *htab_unlink(struct htab *t, struct hnode **pp);

#endif

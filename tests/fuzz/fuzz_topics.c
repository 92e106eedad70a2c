/*
 * fuzz_topics.c: topic names, patterns and lists (?topic=) through
 * topics_parse, and the three ways a message is matched to a subscriber:
 * on sets, on stored text, and through the routing index.
 *
 * Input: a subscriber's topic values, one a line, then a NUL, then a
 * message's.  No NUL: the same values serve as both.
 */
#include "fuzz.h"
#include "topics.h"

#define VALUES	(TOPICS_MAX + 8)	/* past the limit, to reach it */

static int
name_ok(const char *s, int patterns)
{
	size_t len = strlen(s), name = len;

	if (patterns && len > 2 && strcmp(s + len - 2, ".*") == 0)
		name = len - 2;
	if (name == 0 || name > TOPIC_MAX)
		return 0;
	/* The name's bytes are all of the set; a pattern's ".*" follows. */
	return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789._-") == (name == len ? len : name + 1);
}

/* Parses the lines of TEXT; checks what any result must hold. */
static enum topics_status
parse(char *text, int patterns, struct topics **out)
{
	char *v[VALUES], err[TOPICS_ERRLEN];
	size_t n = fuzz_split(text, '\n', v, VALUES);
	enum topics_status st;
	struct topics *again;
	const char *t;

	memset(err, 'x', sizeof(err));
	st = topics_parse((const char *const *)v, n, patterns, out, err);
	if (st != TOPICS_OK) {
		FUZZ_CHECK(st == TOPICS_INVALID);
		FUZZ_CHECK(*out == NULL);
		FUZZ_CHECK(fuzz_terminated(err, sizeof(err)));
		FUZZ_CHECK(strncmp(err, "Error: ", 7) == 0);
		return st;
	}
	FUZZ_CHECK(topics_count(*out) <= TOPICS_MAX);
	FUZZ_CHECK((*out == NULL) == (topics_count(*out) == 0));
	for (size_t i = 0; i < topics_count(*out); i++) {
		FUZZ_CHECK(name_ok(topics_at(*out, i), patterns));
		/* Sorted, each once. */
		if (i > 0)
			FUZZ_CHECK(strcmp(topics_at(*out, i - 1),
			    topics_at(*out, i)) < 0);
	}
	/* The stored and listed text reads back as the same set. */
	t = topics_text(*out);
	again = NULL;
	if (*t != '\0') {
		char err2[TOPICS_ERRLEN];

		FUZZ_CHECK(topics_parse(&t, 1, patterns, &again, err2) ==
		    TOPICS_OK);
		FUZZ_CHECK(topics_equal(*out, again));
		topics_unref(again);
	}
	return st;
}

static void
check_routing(struct topics *sub, struct topics *msg)
{
	struct topic_index *idx;
	struct topic_vec vec = { NULL, 0, 0 };
	int m = topics_match(sub, msg), found = 0;
	void *member = (void *)(uintptr_t)0x5u, *other = (void *)(uintptr_t)0x7u;

	/* The store's SQL function, on the text it keeps, agrees. */
	FUZZ_CHECK(topics_match_text(topics_text(sub), topics_text(msg)) == m);
	if (sub == NULL || msg == NULL)
		return;

	FUZZ_CHECK((idx = topic_index_new()) != NULL);
	FUZZ_CHECK(topic_index_add(idx, sub, member) == 0);
	/* A message's own set, as a subscriber's, takes that message. */
	FUZZ_CHECK(topic_index_add(idx, msg, other) == 0);
	FUZZ_CHECK(topic_index_match(idx, msg, &vec) == 0);
	for (size_t i = 0; i < vec.n; i++) {
		FUZZ_CHECK(vec.v[i] == member || vec.v[i] == other);
		/* Each once. */
		for (size_t j = 0; j < i; j++)
			FUZZ_CHECK(vec.v[i] != vec.v[j]);
		found |= vec.v[i] == member ? 1 : 2;
	}
	FUZZ_CHECK(((found & 1) != 0) == m);
	FUZZ_CHECK((found & 2) != 0);
	topic_index_remove(idx, sub, member);
	topic_index_remove(idx, msg, other);
	FUZZ_CHECK(topic_index_match(idx, msg, &vec) == 0);
	FUZZ_CHECK(vec.n == 0);
	free(vec.v);
	topic_index_free(idx);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, '\0', size);
	size_t slen = nul != NULL ? (size_t)(nul - data) : size;
	char *s = fuzz_string(data, slen), *s0 = fuzz_string(data, slen);
	char *m = nul != NULL ? fuzz_string(nul + 1, size - slen - 1) :
	    fuzz_string(data, slen);
	char *m1 = strdup(m);
	struct topics *sub = NULL, *msg = NULL, *plain = NULL, *as_pat = NULL;

	FUZZ_CHECK(m1 != NULL);
	/*
	 * What is valid without patterns is valid with them, and the same
	 * set: patterns only add "name.*" and "*".
	 */
	if (parse(s0, 0, &plain) == TOPICS_OK) {
		FUZZ_CHECK(parse(s, 1, &sub) == TOPICS_OK);
		FUZZ_CHECK(topics_equal(plain, sub));
	} else
		(void)parse(s, 1, &sub);
	(void)parse(m1, 1, &as_pat);
	if (parse(m, 0, &msg) == TOPICS_OK)
		check_routing(sub, msg);

	topics_unref(as_pat);
	topics_unref(plain);
	topics_unref(sub);
	topics_unref(msg);
	free(m1);
	free(m);
	free(s0);
	free(s);
	return 0;
}

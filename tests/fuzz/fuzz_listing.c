/*
 * fuzz_listing.c: what the API writes from what clients sent.  No endpoint
 * parses a JSON body (a published body is passed on unread), so the JSON
 * that cJSON handles is the listing's: a subscriber's address, URL, topics
 * and last delivery error rendered as JSON (which must parse back to the
 * same strings), HTML (where they can add no markup) and text (where they
 * can add no line).
 *
 * Input: "ADDRESS\nTOPICS\nERROR"; the error may hold any byte but NUL.
 * The address and topics are kept only if the API would take them.
 */
#include <cJSON.h>

#include "addr.h"
#include "fuzz.h"
#include "listing.h"
#include "subs.h"
#include "topics.h"

#define NOW_MS	1795412619000LL

static const char marks[] = "<>\"'&";

static void
count_marks(const char *out, size_t len, size_t counts[sizeof(marks) - 1])
{
	memset(counts, 0, (sizeof(marks) - 1) * sizeof(counts[0]));
	for (size_t i = 0; i < len; i++) {
		const char *m = memchr(marks, out[i], sizeof(marks) - 1);

		FUZZ_CHECK(out[i] != '\0');
		if (m != NULL)
			counts[m - marks]++;
	}
}

static const char *
json_string(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	FUZZ_CHECK(cJSON_IsString(v));
	return v->valuestring;
}

/* A map of two subscribers: "a.example:1", and one as the input says. */
static struct subs *
make_map(char *address, const char *topics, const char *error)
{
	struct sub_opts opts = { 0, NULL, NULL };
	char terr[TOPICS_ERRLEN];
	struct subs *map;
	CURLU *u;
	char *text;

	FUZZ_CHECK((map = subs_new(4, NULL)) != NULL);
	FUZZ_CHECK(addr_parse("a.example:1", &u, &text) == ADDR_OK);
	FUZZ_CHECK(subs_add(map, "a.example:1", u, text, NULL, NOW_MS, 1) ==
	    SUBS_ADDED);
	curl_free(text);
	if (strcmp(address, "a.example:1") == 0 ||
	    addr_parse(address, &u, &text) != ADDR_OK) {
		memcpy(address, "b.example:2", sizeof("b.example:2"));
		FUZZ_CHECK(addr_parse(address, &u, &text) == ADDR_OK);
	}
	if (topics != NULL && topics_parse(&topics, 1, 1, &opts.topics,
	    terr) == TOPICS_OK)
		opts.has_topics = 1;
	FUZZ_CHECK(subs_add(map, address, u, text, &opts, NOW_MS - 5000, 2) ==
	    SUBS_ADDED);
	curl_free(text);
	topics_unref(opts.topics);
	if (error != NULL) {
		struct sub **v;
		long n = subs_snapshot(map, &v);

		for (long i = 0; i < n; i++) {
			if (strcmp(sub_address(v[i]), address) == 0) {
				sub_set_error(v[i], error);
				sub_set_state(v[i], SUB_FAILING);
			}
			sub_unref(v[i]);
		}
		free(v);
	}
	return map;
}

static void
check_json(struct sub **v, const char *out, size_t len)
{
	const cJSON *arr, *o, *t;
	char err[SUB_ERRLEN];
	cJSON *root;

	FUZZ_CHECK((root = cJSON_ParseWithLength(out, len)) != NULL);
	arr = cJSON_GetObjectItemCaseSensitive(root, "subscribers");
	FUZZ_CHECK(cJSON_GetArraySize(arr) == 2);
	for (int i = 0; i < 2; i++) {
		struct topics *tp = sub_topics(v[i]);
		const cJSON *e;

		o = cJSON_GetArrayItem(arr, i);
		FUZZ_CHECK(strcmp(json_string(o, "address"),
		    sub_address(v[i])) == 0);
		FUZZ_CHECK(strcmp(json_string(o, "url"), sub_url_text(v[i])) ==
		    0);
		t = cJSON_GetObjectItemCaseSensitive(o, "topics");
		FUZZ_CHECK(cJSON_GetArraySize(t) == (int)topics_count(tp));
		for (size_t j = 0; j < topics_count(tp); j++)
			FUZZ_CHECK(strcmp(cJSON_GetArrayItem(t, (int)j)->
			    valuestring, topics_at(tp, j)) == 0);
		topics_unref(tp);
		sub_get_error(v[i], err);
		e = cJSON_GetObjectItemCaseSensitive(o, "last_error");
		if (*err == '\0')
			FUZZ_CHECK(cJSON_IsNull(e));
		else
			FUZZ_CHECK(strcmp(json_string(o, "last_error"), err) ==
			    0);
	}
	cJSON_Delete(root);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static size_t plain[sizeof(marks) - 1];
	static int have_plain;
	char *s = fuzz_string(data, size), *f[3] = { NULL, NULL, NULL };
	char *address;
	size_t counts[sizeof(marks) - 1], len, n;
	struct sub **v;
	struct subs *map;
	char *out;

	if (!have_plain) {
		char a[] = "b.example:2";

		map = make_map(a, NULL, "HTTP 503");
		FUZZ_CHECK(subs_snapshot(map, &v) == 2);
		out = listing_render(LISTING_HTML, v, 2, 120000, NOW_MS, &len);
		FUZZ_CHECK(out != NULL);
		count_marks(out, len, plain);
		free(out);
		sub_unref(v[0]);
		sub_unref(v[1]);
		free(v);
		subs_free(map);
		have_plain = 1;
	}

	n = fuzz_split(s, '\n', f, 3);
	FUZZ_CHECK((address = malloc(strlen(f[0]) + 16)) != NULL);
	memcpy(address, f[0], strlen(f[0]) + 1);
	map = make_map(address, n > 1 ? f[1] : NULL, n > 2 ? f[2] : NULL);
	FUZZ_CHECK(subs_snapshot(map, &v) == 2);

	FUZZ_CHECK((out = listing_render(LISTING_JSON, v, 2, 120000, NOW_MS,
	    &len)) != NULL);
	check_json(v, out, len);
	free(out);

	/* Markup is the page's own: the same count whatever the strings. */
	FUZZ_CHECK((out = listing_render(LISTING_HTML, v, 2, 120000, NOW_MS,
	    &len)) != NULL);
	count_marks(out, len, counts);
	FUZZ_CHECK(memcmp(counts, plain, 4 * sizeof(plain[0])) == 0);
	FUZZ_CHECK(counts[4] >= plain[4]);	/* &amp; and the like */
	free(out);

	/* One line a subscriber. */
	FUZZ_CHECK((out = listing_render(LISTING_TEXT, v, 2, 120000, NOW_MS,
	    &len)) != NULL);
	FUZZ_CHECK(len > 0 && out[len - 1] == '\n');
	n = 0;
	for (size_t i = 0; i < len; i++)
		n += out[i] == '\n' || out[i] == '\r';
	FUZZ_CHECK(n == 2);
	free(out);

	sub_unref(v[0]);
	sub_unref(v[1]);
	free(v);
	subs_free(map);
	free(address);
	free(s);
	return 0;
}

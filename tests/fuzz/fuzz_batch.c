/*
 * fuzz_batch.c: a /sendMessages body (batch_parse): any bytes, read as a
 * JSON array of messages.
 *
 * Input: the body.  max_batch is 8, so that the limit is reached too.
 */
#include "batch.h"
#include "fuzz.h"
#include "msg.h"
#include "params.h"

#define MAX 8

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[BATCH_ERRLEN], err2[BATCH_ERRLEN];
	struct batch *b = NULL, *again = NULL;
	enum batch_status st, st2;
	const struct topics *const *t;
	struct store_pub *p;
	size_t bytes = 0;

	memset(err, 'x', sizeof(err));
	st = batch_parse((const char *)data, size, MAX, &b, err);
	FUZZ_CHECK(st != BATCH_NOMEM);
	if (st == BATCH_INVALID) {
		FUZZ_CHECK(b == NULL);
		FUZZ_CHECK(fuzz_terminated(err, sizeof(err)));
		FUZZ_CHECK(strncmp(err, "Error: ", 7) == 0);
		/* The same input is refused for the same reason. */
		st2 = batch_parse((const char *)data, size, MAX, &again, err2);
		FUZZ_CHECK(st2 == BATCH_INVALID && again == NULL);
		FUZZ_CHECK(strcmp(err, err2) == 0);
		return 0;
	}
	FUZZ_CHECK(b != NULL);
	FUZZ_CHECK(batch_count(b) >= 1 && batch_count(b) <= MAX);
	p = batch_pubs(b);
	t = batch_topics(b);
	for (size_t i = 0; i < batch_count(b); i++) {
		FUZZ_CHECK(p[i].sp_msg != NULL);
		FUZZ_CHECK(t[i] == msg_topics(p[i].sp_msg));
		FUZZ_CHECK(topics_count(t[i]) <= TOPICS_MAX);
		FUZZ_CHECK(p[i].sp_key == NULL || params_key_ok(p[i].sp_key));
		FUZZ_CHECK(params_publish_check(msg_ctype(p[i].sp_msg),
			       p[i].sp_key) == NULL);
		FUZZ_CHECK(!p[i].sp_repeat);
		bytes += msg_len(p[i].sp_msg);
	}
	FUZZ_CHECK(bytes == batch_bytes(b));
	/* No more than max_batch: one fewer allowed is a refusal. */
	st2 = batch_parse((const char *)data, size, (long)batch_count(b) - 1,
	    &again, err2);
	FUZZ_CHECK(st2 == BATCH_INVALID && again == NULL);
	FUZZ_CHECK(strstr(err2, "max_batch") != NULL);
	batch_free(again);
	batch_free(b);
	return 0;
}

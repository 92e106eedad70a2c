/* check_batch.c: a /sendMessages body read into messages, and every way it can be wrong. */
#include <check.h>
#include <string.h>

#include "batch.h"
#include "msg.h"
#include "unit.h"

static char err[BATCH_ERRLEN];

/* BODY's parse, which must fail; its error. */
static const char *
refused(const char *body, long max)
{
	struct batch *b = (struct batch *)1;

	ck_assert_int_eq(batch_parse(body, strlen(body), max, &b, err),
	    BATCH_INVALID);
	ck_assert_ptr_null(b);
	return err;
}

static struct batch *
parsed(const char *body, long max)
{
	struct batch *b = NULL;

	ck_assert_msg(batch_parse(body, strlen(body), max, &b, err) ==
		BATCH_OK,
	    "%s: %s", body, err);
	ck_assert_ptr_nonnull(b);
	return b;
}

START_TEST(messages_in_order)
{
	const char *body =
	    "[{\"body\":\"one\",\"topic\":[\"orders.paid\",\"eu\"]},"
	    " {\"body_base64\":\"AAEC/w==\",\"content_type\":\"application/x\","
	    "  \"idempotency_key\":\"k-1\"},\n"
	    " {\"body\":\"caf\\u00e9\",\"topic\":\"a,b\",\"content_type\":null,"
	    "  \"idempotency_key\":null, \"body_base64\":null},"
	    " {\"body\":\"\"}]  \n";
	struct batch *b = parsed(body, 1000);
	struct store_pub *p = batch_pubs(b);
	const struct topics *const *t = batch_topics(b);
	size_t *counts = batch_counts(b);

	ck_assert_uint_eq(batch_count(b), 4);
	ck_assert_uint_eq(batch_bytes(b), 3 + 4 + 5 + 0);
	ck_assert_uint_eq(msg_len(p[0].sp_msg), 3);
	ck_assert_mem_eq(msg_body(p[0].sp_msg), "one", 3);
	ck_assert_str_eq(topics_text(msg_topics(p[0].sp_msg)), "eu,orders.paid");
	ck_assert_ptr_eq(t[0], msg_topics(p[0].sp_msg));
	ck_assert_str_eq(msg_ctype(p[0].sp_msg), "application/octet-stream");
	ck_assert_ptr_null(p[0].sp_key);
	ck_assert_uint_eq(msg_len(p[1].sp_msg), 4);
	ck_assert_mem_eq(msg_body(p[1].sp_msg), "\x00\x01\x02\xff", 4);
	ck_assert_str_eq(msg_ctype(p[1].sp_msg), "application/x");
	ck_assert_str_eq(p[1].sp_key, "k-1");
	ck_assert_ptr_null(msg_topics(p[1].sp_msg));
	ck_assert_ptr_null(t[1]);
	ck_assert_mem_eq(msg_body(p[2].sp_msg), "caf\xc3\xa9", 5);
	ck_assert_str_eq(topics_text(msg_topics(p[2].sp_msg)), "a,b");
	ck_assert_ptr_null(p[2].sp_key);
	ck_assert_uint_eq(msg_len(p[3].sp_msg), 0);
	/* Every message its own webhook-id. */
	for (int i = 0; i < 4; i++)
		for (int j = i + 1; j < 4; j++)
			ck_assert_str_ne(msg_id(p[i].sp_msg),
			    msg_id(p[j].sp_msg));
	counts[0] = 3;
	counts[1] = 0;
	counts[2] = 7;
	counts[3] = 1;
	batch_set_fanouts(b);
	ck_assert_int_eq(p[0].sp_fanout, 3);
	ck_assert_int_eq(p[2].sp_fanout, 7);
	batch_free(b);
	batch_free(NULL);
}
END_TEST

START_TEST(the_whole_is_wrong)
{
	ck_assert_str_eq(refused("", 10),
	    "Error: No body: a JSON array of messages is expected.");
	ck_assert_str_eq(refused("[{\"body\":\"x\"}", 10),
	    "Error: Not JSON (at byte 12): a JSON array of messages is "
	    "expected.");
	ck_assert_str_eq(refused("[{\"body\":\"x\"}] [", 10),
	    "Error: Not JSON (at byte 15): more after the array.");
	ck_assert_str_eq(refused("{\"body\":\"x\"}", 10),
	    "Error: A JSON array of messages is expected.");
	ck_assert_str_eq(refused("\"x\"", 10),
	    "Error: A JSON array of messages is expected.");
	ck_assert_str_eq(refused("[]", 10),
	    "Error: No messages: the array is empty.");
	ck_assert_str_eq(refused("[{\"body\":\"a\"},{\"body\":\"b\"},"
				 "{\"body\":\"c\"}]",
			     2),
	    "Error: item 2: more than max_batch (2) messages in one batch.");
	ck_assert_str_eq(refused("[{\"body\":\"a\\u0000b\"}]", 10),
	    "Error: A NUL (\\u0000) in a string: send such a body in "
	    "\"body_base64\".");
	{
		struct batch *b = (struct batch *)1;

		/* A NUL byte as it is, which cJSON would take in a string. */
		ck_assert_int_eq(batch_parse("[{\"body\":\"a\0b\"}]", 16, 10,
				     &b, err),
		    BATCH_INVALID);
		ck_assert_ptr_null(b);
		ck_assert_str_eq(err,
		    "Error: A NUL (\\u0000) in a string: send such a body "
		    "in \"body_base64\".");
	}
	/* An escaped backslash before "u0000" is no NUL. */
	batch_free(parsed("[{\"body\":\"a\\\\u0000b\"}]", 10));
}
END_TEST

START_TEST(an_item_is_wrong)
{
	static const struct {
		const char *item, *err;
	} cases[] = {
		{ "3", "not an object." },
		{ "[]", "not an object." },
		{ "{}", "exactly one of \"body\" and \"body_base64\" is needed." },
		{ "{\"body\":\"a\",\"body_base64\":\"YQ==\"}",
		    "exactly one of \"body\" and \"body_base64\" is needed." },
		{ "{\"body\":null}",
		    "exactly one of \"body\" and \"body_base64\" is needed." },
		{ "{\"body\":3}",
		    "\"body\" and \"body_base64\" are strings." },
		{ "{\"body_base64\":[\"YQ==\"]}",
		    "\"body\" and \"body_base64\" are strings." },
		{ "{\"body_base64\":\"YQ\"}",
		    "\"body_base64\" is not padded standard base64." },
		{ "{\"body_base64\":\"Y===\"}",
		    "\"body_base64\" is not padded standard base64." },
		{ "{\"body_base64\":\"YR==\"}",
		    "\"body_base64\" is not padded standard base64." },
		{ "{\"body_base64\":\"a-_b\"}",
		    "\"body_base64\" is not padded standard base64." },
		{ "{\"body_base64\":\"YQ==YQ==\"}",
		    "\"body_base64\" is not padded standard base64." },
		{ "{\"body\":\"a\",\"topics\":[\"x\"]}",
		    "unknown field \"topics\"." },
		{ "{\"body\":\"a\",\"body\":\"b\"}", "\"body\" given twice." },
		{ "{\"body\":\"a\",\"topic\":3}",
		    "\"topic\" is an array of strings, or a string." },
		{ "{\"body\":\"a\",\"topic\":[\"x\",1]}",
		    "\"topic\" is an array of strings." },
		{ "{\"body\":\"a\",\"topic\":[\"bad topic\"]}",
		    "Invalid topic \"bad topic\": a topic is 1 to 128 of A-Z "
		    "a-z 0-9 . _ -." },
		{ "{\"body\":\"a\",\"topic\":[\"\"]}", "Empty topic name." },
		{ "{\"body\":\"a\",\"topic\":[\"x.*\"]}",
		    "Invalid topic \"x.*\": a topic is 1 to 128 of A-Z a-z "
		    "0-9 . _ -." },
		{ "{\"body\":\"a\",\"content_type\":1}",
		    "\"content_type\" is a string." },
		{ "{\"body\":\"a\",\"content_type\":\"text/plain\\r\\nX: y\"}",
		    "Content-Type holds a control character." },
		{ "{\"body\":\"a\",\"idempotency_key\":\"\"}",
		    "Idempotency-Key must be 1 to 255 printable ASCII "
		    "characters." },
		{ "{\"body\":\"a\",\"idempotency_key\":\"caf\\u00e9\"}",
		    "Idempotency-Key must be 1 to 255 printable ASCII "
		    "characters." },
		{ "{\"body\":\"a\",\"idempotency_key\":5}",
		    "\"idempotency_key\" is a string." },
	};
	char body[512], want[512];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		/* Third in the batch, after two good ones. */
		snprintf(body, sizeof(body),
		    "[{\"body\":\"ok\"},{\"body_base64\":\"b2s=\"},%s,"
		    "{\"body\":\"later\"}]",
		    cases[i].item);
		snprintf(want, sizeof(want), "Error: item 2: %s", cases[i].err);
		ck_assert_str_eq(refused(body, 10), want);
	}
}
END_TEST

START_TEST(limits)
{
	char ctype[MSG_CTYPE_MAX + 2], body[2048];
	struct batch *b;
	int n;

	memset(ctype, 't', sizeof(ctype) - 1);
	ctype[sizeof(ctype) - 1] = '\0';
	snprintf(body, sizeof(body), "[{\"body\":\"a\",\"content_type\":\"%s\"}]",
	    ctype);
	ck_assert_str_eq(refused(body, 10),
	    "Error: item 0: Content-Type longer than 256 bytes.");
	ctype[MSG_CTYPE_MAX] = '\0';
	snprintf(body, sizeof(body), "[{\"body\":\"a\",\"content_type\":\"%s\"}]",
	    ctype);
	batch_free(parsed(body, 10));

	/* 65 topics are one too many, as on /sendMessage. */
	n = snprintf(body, sizeof(body), "[{\"body\":\"a\",\"topic\":[");
	for (int i = 0; i < TOPICS_MAX + 1; i++)
		n += snprintf(body + n, sizeof(body) - (size_t)n, "%s\"t%d\"",
		    i ? "," : "", i);
	snprintf(body + n, sizeof(body) - (size_t)n, "]}]");
	ck_assert_str_eq(refused(body, 10),
	    "Error: item 0: More than 64 topics.");

	/* max_batch exactly. */
	n = snprintf(body, sizeof(body), "[");
	for (int i = 0; i < 5; i++)
		n += snprintf(body + n, sizeof(body) - (size_t)n,
		    "%s{\"body\":\"%d\"}", i ? "," : "", i);
	snprintf(body + n, sizeof(body) - (size_t)n, "]");
	b = parsed(body, 5);
	ck_assert_uint_eq(batch_count(b), 5);
	ck_assert_mem_eq(msg_body(batch_pubs(b)[4].sp_msg), "4", 1);
	batch_free(b);
	refused(body, 4);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("batch");
	TCase *tc = tcase_create("batch");

	tcase_add_test(tc, messages_in_order);
	tcase_add_test(tc, the_whole_is_wrong);
	tcase_add_test(tc, an_item_is_wrong);
	tcase_add_test(tc, limits);
	suite_add_tcase(s, tc);
	return unit_run(s);
}

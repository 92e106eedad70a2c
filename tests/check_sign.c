/* check_sign.c: whsec_ secrets and Standard Webhooks v1 signatures. */
#include <check.h>
#include <string.h>

#include "sign.h"
#include "unit.h"

/* The example of the Standard Webhooks specification's own test suite. */
#define SECRET	"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define ID	"msg_p5jXN8AQM9LWM0D4loKWxJek"
#define TS	1614265330
#define BODY	"{\"test\": 2432232314}"
#define SIG	"v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
/* 32 bytes of key. */
#define OTHER	"whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

START_TEST(signs_the_specification_example)
{
	char out[SIGN_VALUE_MAX];
	struct signer *sg = signer_new(SECRET);

	ck_assert_ptr_nonnull(sg);
	ck_assert_int_eq(signer_sign(sg, ID, TS, BODY, strlen(BODY), out), 0);
	ck_assert_str_eq(out, SIG);
	/* The state starts over each time: the same input, the same answer. */
	ck_assert_int_eq(signer_sign(sg, ID, TS, BODY, strlen(BODY), out), 0);
	ck_assert_str_eq(out, SIG);
	/* Anything else signed gives something else. */
	ck_assert_int_eq(signer_sign(sg, ID, TS + 1, BODY, strlen(BODY), out),
	    0);
	ck_assert_str_ne(out, SIG);
	ck_assert_int_eq(signer_sign(sg, ID, TS, BODY, strlen(BODY) - 1, out),
	    0);
	ck_assert_str_ne(out, SIG);
	/* The last value is kept for the next subscriber, per id. */
	ck_assert_int_eq(signer_sign(sg, ID, TS, BODY, strlen(BODY), out), 0);
	ck_assert_str_eq(out, SIG);
	ck_assert_int_eq(signer_sign(sg, "msg_p5jXN8AQM9LWM0D4loKWxJel", TS, BODY,
	    strlen(BODY), out), 0);
	ck_assert_str_ne(out, SIG);
	ck_assert_int_eq(signer_sign(sg, ID, TS, BODY, strlen(BODY), out), 0);
	ck_assert_str_eq(out, SIG);
	signer_free(sg);
}
END_TEST

START_TEST(two_secrets_give_two_signatures)
{
	char out[SIGN_VALUE_MAX], other[SIGN_VALUE_MAX];
	struct signer *sg = signer_new(SECRET "  " OTHER);
	struct signer *o = signer_new(OTHER);

	ck_assert_ptr_nonnull(sg);
	ck_assert_ptr_nonnull(o);
	ck_assert_int_eq(signer_sign(sg, ID, TS, BODY, strlen(BODY), out), 0);
	ck_assert_int_eq(signer_sign(o, ID, TS, BODY, strlen(BODY), other), 0);
	ck_assert_uint_eq(strlen(out), 2 * 47 + 1);
	ck_assert(strncmp(out, SIG " ", strlen(SIG) + 1) == 0);
	ck_assert_str_eq(out + strlen(SIG) + 1, other);
	/* What a signature kept with a message is known by: never shared. */
	ck_assert_uint_ne(signer_key(sg), 0);
	ck_assert_uint_ne(signer_key(o), 0);
	ck_assert_uint_ne(signer_key(sg), signer_key(o));
	signer_free(sg);
	signer_free(o);
	signer_free(NULL);
}
END_TEST

START_TEST(bad_secrets_are_refused_with_a_reason)
{
	static const char *const bad[] = {
		"", "   ", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_",
		"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS",	/* not a multiple of 4 */
		"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS!",
		"whsec_MfKQ9r8GKYqrTwjUPD8ILPZI=2LaLaSw",	/* = inside */
		"whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFQ==",	/* 22 bytes */
		/* 66 bytes */
		/* NOLINTNEXTLINE(bugprone-suspicious-missing-comma): one secret */
		"whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygp"
		"KissLS4vMDEyMzQ1Njc4OTo7PD0+P0BB",
		SECRET " " OTHER " " SECRET,
	};
	char err[SIGN_ERRLEN];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		ck_assert_msg(sign_check(bad[i], SIGN_SECRETS, err) == -1,
		    "accepted \"%s\"", bad[i]);
		ck_assert(err[0] != '\0');
		/* The reason never repeats a secret. */
		ck_assert_ptr_null(strstr(err, "MfKQ9r8"));
		ck_assert_ptr_null(signer_new(bad[i]));
	}
	/* One secret where one is allowed; two where two are. */
	ck_assert_int_eq(sign_check(SECRET, 1, err), 0);
	ck_assert_int_eq(sign_check(SECRET " " OTHER, 1, err), -1);
	ck_assert_int_eq(sign_check(SECRET " " OTHER, 2, err), 0);
	/* 24 and 64 bytes are the bounds. */
	ck_assert_int_eq(sign_check("whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYX",
	    1, err), 0);
	ck_assert_int_eq(sign_check("whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXG"
	    "BkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw==", 1, err),
	    0);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("sign");
	TCase *tc = tcase_create("sign");

	tcase_add_test(tc, signs_the_specification_example);
	tcase_add_test(tc, two_secrets_give_two_signatures);
	tcase_add_test(tc, bad_secrets_are_refused_with_a_reason);
	suite_add_tcase(s, tc);
	return unit_run(s);
}

/*
 * fuzz_secret.c: whsec_ secrets (signing_secret, ?secret=) through
 * sign_check and signer_new, and the signatures made with what they
 * decode to, checked against libcrypto's one-shot HMAC.
 *
 * Input: the secret text; whatever follows a NUL is the message body.
 */
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "config.h"
#include "fuzz.h"
#include "sign.h"

#define B64	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

/*
 * The key of the one secret at S (LEN bytes), decoded plainly: 0 with
 * it in KEY, -1 if it is not a good one.
 */
static int
decode(const char *s, size_t len, unsigned char *key, size_t *keylen)
{
	size_t body, pad;
	int n;

	if (len < 6 || memcmp(s, "whsec_", 6) != 0)
		return -1;
	s += 6;
	len -= 6;
	for (body = 0; body < len && strchr(B64, s[body]) != NULL &&
	    s[body] != '\0'; body++)
		;
	for (pad = 0; body + pad < len && s[body + pad] == '='; pad++)
		;
	if (len == 0 || len % 4 != 0 || body + pad != len || pad > 2 ||
	    len > 88)
		return -1;
	if ((n = EVP_DecodeBlock(key, (const unsigned char *)s, (int)len)) < 0)
		return -1;
	*keylen = (size_t)n - pad;
	return *keylen >= SIGN_KEY_MIN && *keylen <= SIGN_KEY_MAX ? 0 : -1;
}

/* The secrets of TEXT split on blanks; -1 if any is bad or none is there. */
static int
keys(const char *text, unsigned char key[][96], size_t *keylen, int max)
{
	int n = 0;

	for (const char *s = text; ; ) {
		size_t len;

		s += strspn(s, " \t");
		if (*s == '\0')
			break;
		len = strcspn(s, " \t");
		if (n == max || decode(s, len, key[n], &keylen[n]) == -1)
			return -1;
		n++;
		s += len;
	}
	return n > 0 ? n : -1;
}

static void
check_signatures(const char *text, int nkeys, unsigned char key[][96],
    const size_t *keylen, const uint8_t *body, size_t blen)
{
	static const char id[] = "msg_0123456789abcdef0123456789abcdef";
	const int64_t ts = 1795412619;
	char out[SIGN_VALUE_MAX], again[SIGN_VALUE_MAX], want[SIGN_VALUE_MAX];
	unsigned char mac[EVP_MAX_MD_SIZE], *signed_text;
	struct signer *sg;
	size_t at = 0, slen;
	unsigned int maclen;

	FUZZ_CHECK((sg = signer_new(text)) != NULL);
	FUZZ_CHECK(signer_key(sg) != 0);
	FUZZ_CHECK(signer_sign(sg, id, ts, body, blen, out) == 0);
	FUZZ_CHECK(fuzz_terminated(out, sizeof(out)));
	/* A signer starts each signature afresh. */
	FUZZ_CHECK(signer_sign(sg, id, ts, body, blen, again) == 0);
	FUZZ_CHECK(strcmp(out, again) == 0);

	slen = sizeof(id) - 1 + 12 + blen;
	FUZZ_CHECK((signed_text = malloc(slen + 1)) != NULL);
	slen = (size_t)snprintf((char *)signed_text, slen + 1, "%s.%lld.", id,
	    (long long)ts);
	if (blen > 0)
		memcpy(signed_text + slen, body, blen);
	slen += blen;
	for (int i = 0; i < nkeys; i++) {
		FUZZ_CHECK(HMAC(EVP_sha256(), key[i], (int)keylen[i],
		    signed_text, slen, mac, &maclen) != NULL && maclen == 32);
		if (i > 0)
			want[at++] = ' ';
		memcpy(want + at, "v1,", 3);
		at += 3;
		at += (size_t)EVP_EncodeBlock((unsigned char *)want + at, mac,
		    32);
	}
	want[at] = '\0';
	FUZZ_CHECK(strcmp(out, want) == 0);
	free(signed_text);
	signer_free(sg);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, '\0', size);
	size_t tlen = nul != NULL ? (size_t)(nul - data) : size;
	char *text = fuzz_string(data, tlen), err[SIGN_ERRLEN];
	char cerr[CONFIG_ERRLEN];
	unsigned char key[SIGN_SECRETS][96];
	size_t keylen[SIGN_SECRETS];
	struct config *cfg;
	int one, two, n;

	memset(err, 'x', sizeof(err));
	one = sign_check(text, 1, err);
	if (one == -1)
		FUZZ_CHECK(fuzz_terminated(err, sizeof(err)) && *err != '\0');
	two = sign_check(text, SIGN_SECRETS, err);
	/* What one secret may be, two may be too. */
	FUZZ_CHECK(one == -1 || two == 0);
	n = keys(text, key, keylen, SIGN_SECRETS);
	FUZZ_CHECK((two == 0) == (n > 0));
	FUZZ_CHECK((one == 0) == (n == 1 && keys(text, key, keylen, 1) == 1));

	/* signing_secret takes what sign_check takes, if it fits. */
	FUZZ_CHECK((cfg = malloc(sizeof(*cfg))) != NULL);
	config_init(cfg);
	FUZZ_CHECK((config_set(cfg, "signing_secret", text, cerr) == 0) ==
	    (two == 0 && strlen(text) < sizeof(cfg->signing_secret)));
	free(cfg);

	if (two == 0) {
		/* An accepted secret decodes to a key of 24 to 64 bytes. */
		for (int i = 0; i < n; i++)
			FUZZ_CHECK(keylen[i] >= SIGN_KEY_MIN &&
			    keylen[i] <= SIGN_KEY_MAX);
		check_signatures(text, n, key, keylen, nul != NULL ? nul + 1 :
		    data, nul != NULL ? size - tlen - 1 : 0);
	} else
		FUZZ_CHECK(signer_new(text) == NULL);
	free(text);
	return 0;
}

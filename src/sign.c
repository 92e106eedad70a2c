/* sign.c: whsec_ secrets decoded and HMAC-SHA256 signatures made with libcrypto. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "sign.h"

/*
 * Each signer has a key no other signer of the process has had, so that a
 * signature a delivery thread keeps (d_sigs, xfer.c) is known to be this
 * signer's:
 * a signer made on a reload may sit at the address of the one it replaced.
 */
struct signer {
	int sg_n;
	EVP_MAC_CTX *sg_ctx[SIGN_SECRETS];
	uint64_t sg_key;
};

static _Atomic uint64_t last_key;

#define PREFIX	   "whsec_"
#define PREFIX_LEN 6
#define B64_MAX	   ((SIGN_KEY_MAX + 2) / 3 * 4UL)

/*
 * The key of the secret S..S+LEN: 0 with the bytes in key, or -1 with the
 * reason in err.  Padded standard base64, as Standard Webhooks writes it.
 */
static int
decode(const char *s, size_t len, unsigned char key[B64_MAX / 4 * 3],
    size_t *keylen, char err[SIGN_ERRLEN])
{
	const char *b = s + PREFIX_LEN;
	size_t blen = len - PREFIX_LEN, pad = 0;
	int n;

	if (len < PREFIX_LEN || memcmp(s, PREFIX, PREFIX_LEN) != 0) {
		snprintf(err, SIGN_ERRLEN, "a secret starts with \"whsec_\"");
		return -1;
	}
	if (blen == 0 || blen % 4 != 0 || blen > B64_MAX)
		goto bad;
	for (size_t i = 0; i < blen; i++) {
		char c = b[i];

		if (c == '=' && i >= blen - 2) {
			pad++;
			continue;
		}
		if (pad > 0 ||
		    !((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
			(c >= '0' && c <= '9') || c == '+' || c == '/'))
			goto bad;
	}
	if ((n = EVP_DecodeBlock(key, (const unsigned char *)b, (int)blen)) < 0)
		goto bad;
	*keylen = (size_t)n - pad;
	if (*keylen < SIGN_KEY_MIN || *keylen > SIGN_KEY_MAX) {
		OPENSSL_cleanse(key, (size_t)n);
		snprintf(err, SIGN_ERRLEN,
		    "a secret's key is %d to %d bytes, "
		    "this one %zu",
		    SIGN_KEY_MIN, SIGN_KEY_MAX, *keylen);
		return -1;
	}
	return 0;
bad:
	snprintf(err, SIGN_ERRLEN,
	    "after \"whsec_\" a secret is base64 "
	    "(A-Z a-z 0-9 + /, padded with =) of %d to %d bytes",
	    SIGN_KEY_MIN, SIGN_KEY_MAX);
	return -1;
}

/* Calls FN on each space-separated secret of TEXT; stops at the first -1. */
static int
each_secret(const char *text, int max, char err[SIGN_ERRLEN],
    int (*fn)(const unsigned char *, size_t, void *), void *arg)
{
	unsigned char key[B64_MAX / 4 * 3];
	size_t keylen;
	int n = 0, r = 0;

	for (const char *s = text;;) {
		size_t len;

		s += strspn(s, " \t");
		if (*s == '\0')
			break;
		len = strcspn(s, " \t");
		if (++n > max) {
			snprintf(err, SIGN_ERRLEN, "at most %d secret%s", max,
			    max > 1 ? "s, separated by a space" : "");
			return -1;
		}
		if (decode(s, len, key, &keylen, err) == -1)
			return -1;
		if (fn != NULL)
			r = fn(key, keylen, arg);
		OPENSSL_cleanse(key, sizeof(key));
		if (r == -1) {
			snprintf(err, SIGN_ERRLEN, "libcrypto refused the key");
			return -1;
		}
		s += len;
	}
	if (n == 0) {
		snprintf(err, SIGN_ERRLEN, "no secret given");
		return -1;
	}
	return 0;
}

int
sign_check(const char *text, int max, char err[SIGN_ERRLEN])
{
	return each_secret(text, max, err, NULL, NULL);
}

static EVP_MAC *hmac;
static pthread_once_t hmac_once = PTHREAD_ONCE_INIT;

static void
hmac_fetch(void)
{
	hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
}

static int
add_key(const unsigned char *key, size_t len, void *arg)
{
	struct signer *sg = arg;
	/* OSSL_PARAM takes a char *, which it only reads. */
	char digest[] = "SHA256";
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest,
		    0),
		OSSL_PARAM_construct_end(),
	};
	EVP_MAC_CTX *ctx;

	if ((ctx = EVP_MAC_CTX_new(hmac)) == NULL)
		return -1;
	if (EVP_MAC_init(ctx, key, len, params) != 1) {
		EVP_MAC_CTX_free(ctx);
		return -1;
	}
	sg->sg_ctx[sg->sg_n++] = ctx;
	return 0;
}

struct signer *
signer_new(const char *text)
{
	char err[SIGN_ERRLEN];
	struct signer *sg;

	pthread_once(&hmac_once, hmac_fetch);
	if (hmac == NULL || (sg = calloc(1, sizeof(*sg))) == NULL)
		return NULL;
	if (each_secret(text, SIGN_SECRETS, err, add_key, sg) == -1) {
		signer_free(sg);
		return NULL;
	}
	sg->sg_key = atomic_fetch_add(&last_key, 1) + 1;
	return sg;
}

uint64_t
signer_key(const struct signer *sg)
{
	return sg->sg_key;
}

void
signer_free(struct signer *sg)
{
	if (sg == NULL)
		return;
	for (int i = 0; i < sg->sg_n; i++)
		EVP_MAC_CTX_free(sg->sg_ctx[i]);
	free(sg);
}

int
signer_sign(struct signer *sg, const char *id, int64_t ts, const void *body,
    size_t len, char out[SIGN_VALUE_MAX])
{
	unsigned char mac[32];
	char stamp[24];
	size_t maclen, at = 0, idlen = strlen(id);
	int slen;

	slen = snprintf(stamp, sizeof(stamp), "%lld", (long long)ts);

	for (int i = 0; i < sg->sg_n; i++) {
		EVP_MAC_CTX *ctx = sg->sg_ctx[i];

		/* A NULL key starts over with the key it was given. */
		if (EVP_MAC_init(ctx, NULL, 0, NULL) != 1 ||
		    EVP_MAC_update(ctx, (const unsigned char *)id, idlen) !=
			1 ||
		    EVP_MAC_update(ctx, (const unsigned char *)".", 1) != 1 ||
		    EVP_MAC_update(ctx, (const unsigned char *)stamp,
			(size_t)slen) != 1 ||
		    EVP_MAC_update(ctx, (const unsigned char *)".", 1) != 1 ||
		    EVP_MAC_update(ctx, body, len) != 1 ||
		    EVP_MAC_final(ctx, mac, &maclen, sizeof(mac)) != 1 ||
		    maclen != sizeof(mac))
			return -1;
		if (i > 0)
			out[at++] = ' ';
		memcpy(out + at, "v1,", 3);
		at += 3;
		at += (size_t)EVP_EncodeBlock((unsigned char *)out + at, mac,
		    sizeof(mac));
	}
	out[at] = '\0';
	return 0;
}

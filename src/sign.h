/* sign.h: Standard Webhooks signatures: whsec_ secrets and v1 HMAC-SHA256 over id.timestamp.body. */
#ifndef HOOKCAST_SIGN_H
#define HOOKCAST_SIGN_H

#include <stddef.h>
#include <stdint.h>

#define SIGN_KEY_MIN	24 /* bytes of key, once decoded */
#define SIGN_KEY_MAX	64
#define SIGN_SECRETS	2 /* at once, while one is rotated out */
#define SIGN_SECRET_MAX (6 + (SIGN_KEY_MAX + 2) / 3 * 4) /* "whsec_" + base64 */
#define SIGN_ERRLEN	160
/* "v1,<44 chars of base64>" for each key, space-separated. */
#define SIGN_VALUE_MAX	(SIGN_SECRETS * 48)

/*
 * Checks TEXT: one whsec_ secret, or with MAX 2 up to two separated by
 * spaces.  0 when good; -1 with the reason in err (which never repeats the
 * secret).
 */
int sign_check(const char *text, int max, char err[SIGN_ERRLEN]);

/*
 * The keys of TEXT (checked by sign_check) with their HMAC state.  A signer
 * is used by one thread at a time.  NULL when TEXT is invalid or memory
 * runs out.
 */
struct signer;
struct signer *signer_new(const char *text);
void signer_free(struct signer *sg); /* NULL-safe; wipes the keys */
/* A number no other signer of this process has had (never 0). */
uint64_t signer_key(const struct signer *sg);

/*
 * Writes the webhook-signature value for ID, TS (Unix seconds) and BODY
 * into out: one "v1,<base64>" a key.  0, or -1 when libcrypto fails.
 */
int signer_sign(struct signer *sg, const char *id, int64_t ts, const void *body,
    size_t len, char out[SIGN_VALUE_MAX]);

#endif

/*
 * fuzz_auth.c: the Authorization header, Bearer and Basic (auth_check),
 * and an access token as the config file takes it.
 *
 * Input: the first byte picks the mode and scope, the rest is the header
 * (mode 0) or a token (mode 1).  Mode 0 judges the header against known
 * tokens and compares with a plain reading of RFC 6750 and 7617; mode 1
 * takes the bytes as a token, if config_set takes them, and checks that
 * every right way of sending it passes and a wrong one does not.
 */
#include <strings.h>

#include <openssl/evp.h>

#include "auth.h"
#include "config.h"
#include "fuzz.h"

static const char *const known[AUTH_SCOPES] = {
	[AUTH_PUBLISH] = "publish-token-0123456789",
	[AUTH_SUBSCRIBE] = "c3Vic2NyaWJlLXRva2Vu==",
	[AUTH_ADMIN] = "admin+token/with~all.chars_-",
};

/* The credential of HEADER if it is "SCHEME CRED" with blanks around; NULL otherwise. */
static const char *
credential(const char *header, const char *scheme, size_t *len)
{
	size_t n = strlen(scheme);

	header += strspn(header, " \t");
	if (strncasecmp(header, scheme, n) != 0 ||
	    (header[n] != ' ' && header[n] != '\t'))
		return NULL;
	header += n;
	header += strspn(header, " \t");
	*len = strcspn(header, " \t");
	if (*len == 0 || header[*len + strspn(header + *len, " \t")] != '\0')
		return NULL;
	return header;
}

/* Whether HEADER carries TOKEN, read plainly from the two RFCs. */
static int
carries(const char *header, const char *token)
{
	unsigned char buf[4096];
	const char *cred;
	size_t len;
	int n, pad;

	if ((cred = credential(header, "Bearer", &len)) != NULL)
		return len == strlen(token) && memcmp(cred, token, len) == 0;
	if ((cred = credential(header, "Basic", &len)) == NULL ||
	    len % 4 != 0 || len / 4 * 3 > 1023)
		return 0;
	/* Strict base64: the alphabet, then at most two "=". */
	pad = (int)(len - strspn(cred, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghij"
	    "klmnopqrstuvwxyz0123456789+/"));
	if (pad > 2 || (size_t)pad > len ||
	    strspn(cred + len - pad, "=") != (size_t)pad)
		return 0;
	if ((n = EVP_DecodeBlock(buf, (const unsigned char *)cred,
	    (int)len)) < pad)
		return 0;
	n -= pad;
	for (int i = 0; i < n; i++)
		if (buf[i] == ':')
			return (size_t)(n - i - 1) == strlen(token) &&
			    memcmp(buf + i + 1, token, strlen(token)) == 0;
	return 0;
}

static void
judge_header(const struct auth *a, enum auth_scope scope, const char *header)
{
	enum auth_verdict v = auth_check(a, scope, header);

	FUZZ_CHECK(v >= AUTH_OK && v <= AUTH_ERROR && v != AUTH_ERROR);
	FUZZ_CHECK(auth_verdict_name(v) != NULL);
	if (scope == AUTH_PUBLIC) {
		FUZZ_CHECK(v == AUTH_OK);
		return;
	}
	FUZZ_CHECK((v == AUTH_OK) == carries(header, known[scope]));
	if (header[strspn(header, " \t")] == '\0')
		FUZZ_CHECK(v == AUTH_MISSING);
}

static void
check_token(const char *token, unsigned int pick)
{
	/* Any user name without a colon (RFC 7617), blanks too. */
	static const char users[][8] = { "", "u", "admin", "a b" };
	const char *tokens[AUTH_SCOPES] = { NULL, NULL, NULL, NULL };
	char err[CONFIG_ERRLEN], *header, *pair;
	unsigned char *b64;
	struct config *cfg;
	struct auth *a;
	size_t len = strlen(token);

	FUZZ_CHECK((cfg = malloc(sizeof(*cfg))) != NULL);
	config_init(cfg);
	if (config_set(cfg, "publish_token", token, err) == -1) {
		FUZZ_CHECK(fuzz_terminated(err, sizeof(err)));
		/*
		 * A refused token is not echoed: no 12 bytes of it follow the
		 * key's name (no reason holds 12 token68 bytes of its own).
		 */
		FUZZ_CHECK(strncmp(err, "publish_token: ", 15) == 0);
		for (size_t i = 0; i + 12 <= len; i++) {
			char part[13];

			memcpy(part, token + i, 12);
			part[12] = '\0';
			if (strspn(part, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklm"
			    "nopqrstuvwxyz0123456789-._~+/=") == 12)
				FUZZ_CHECK(strstr(err + 15, part) == NULL);
		}
		free(cfg);
		return;
	}
	tokens[AUTH_PUBLISH] = cfg->publish_token;
	tokens[AUTH_ADMIN] = known[AUTH_ADMIN];
	FUZZ_CHECK((a = auth_new(tokens)) != NULL);
	FUZZ_CHECK((header = malloc(2 * len + 64)) != NULL);
	FUZZ_CHECK((pair = malloc(len + 16)) != NULL);
	FUZZ_CHECK((b64 = malloc((len + 16) / 3 * 4 + 8)) != NULL);

	snprintf(header, 2 * len + 64, "%sBearer \t%s ", pick & 1 ? " " : "",
	    token);
	FUZZ_CHECK(auth_check(a, AUTH_PUBLISH, header) == AUTH_OK);
	/* The same header is another scope's wrong token, or no token at all. */
	FUZZ_CHECK(auth_check(a, AUTH_ADMIN, header) == (strcmp(token,
	    known[AUTH_ADMIN]) == 0 ? AUTH_OK : AUTH_WRONG));
	FUZZ_CHECK(auth_check(a, AUTH_SUBSCRIBE, header) == AUTH_OK);
	/* One byte more is not the token. */
	snprintf(header, 2 * len + 64, "bearer %sA", token);
	FUZZ_CHECK(auth_check(a, AUTH_PUBLISH, header) == AUTH_WRONG);

	snprintf(pair, len + 16, "%s:%s", users[pick % 4], token);
	EVP_EncodeBlock(b64, (const unsigned char *)pair, (int)strlen(pair));
	snprintf(header, 2 * len + 64, "BASIC %s", b64);
	FUZZ_CHECK(auth_check(a, AUTH_PUBLISH, header) == AUTH_OK);

	free(b64);
	free(pair);
	free(header);
	auth_free(a);
	explicit_bzero(cfg, sizeof(*cfg));
	free(cfg);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct auth *a;
	char *s;

	if (a == NULL)
		FUZZ_CHECK((a = auth_new(known)) != NULL);
	if (size < 1)
		return 0;
	s = fuzz_string(data + 1, size - 1);
	if (data[0] & 0x80)
		check_token(s, data[0]);
	else
		judge_header(a, (enum auth_scope)(data[0] % AUTH_SCOPES), s);
	free(s);
	return 0;
}

/*
 * fuzz_config.c: a whole config file, read by config_read (config_load's
 * reading) from memory: nothing exits, nothing is written.  A file that
 * loads is dumped (--dump-config), and the dump loads back to the same
 * settings; a refused one is named by line, and never echoes a secret.
 */
#include <ctype.h>

#include "config.h"
#include "fuzz.h"

#define DUMP_MAX	65536

static int
secret_key(const char *key, size_t len)
{
	static const char *const keys[] = { "publish_token",
	    "subscribe_token", "admin_token", "signing_secret" };

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (len == strlen(keys[i]) && memcmp(key, keys[i], len) == 0)
			return 1;
	return 0;
}

/*
 * Reads LEN bytes of TEXT into CFG: config_read's answer.  fmemopen takes
 * a writable buffer even to read, so it gets a copy of TEXT.
 */
static int
load(struct config *cfg, const char *text, size_t len, char err[CONFIG_ERRLEN])
{
	char *copy;
	FILE *fp;
	int rc;

	config_init(cfg);
	if (len == 0)
		return 0;
	FUZZ_CHECK((copy = malloc(len)) != NULL);
	memcpy(copy, text, len);
	FUZZ_CHECK((fp = fmemopen(copy, len, "r")) != NULL);
	rc = config_read(cfg, fp, "fuzz.conf", err);
	fclose(fp);
	free(copy);
	return rc;
}

#define TOKEN_CHARS	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz" \
			"0123456789-._~+/=_"

/*
 * The refusal of the line it names does not hold that line's value if it
 * is a secret: no 12 bytes of it after the key's name (no reason holds
 * 12 such bytes of its own).
 */
static void
check_refusal(const uint8_t *text, size_t len, const char *err)
{
	const char *p = (const char *)text, *end = p + len, *nl, *k, *v;
	const char *reason;
	size_t vlen, klen;
	long lineno;
	char *after;

	FUZZ_CHECK(strncmp(err, "fuzz.conf", 9) == 0);
	if (err[9] != ':' || !isdigit((unsigned char)err[10]))
		return;		/* "fuzz.conf: read error" */
	lineno = strtol(err + 10, &after, 10);
	for (long i = 1; i < lineno && p < end; i++)
		p = (nl = memchr(p, '\n', (size_t)(end - p))) != NULL ? nl + 1 :
		    end;
	FUZZ_CHECK(p < end || lineno == 1);
	if ((nl = memchr(p, '\n', (size_t)(end - p))) != NULL)
		end = nl;
	while (p < end && isspace((unsigned char)*p))
		p++;
	for (k = p; p < end && !isspace((unsigned char)*p) && *p != '\0'; p++)
		;
	klen = (size_t)(p - k);
	if (!secret_key(k, klen))
		return;
	while (p < end && isspace((unsigned char)*p))
		p++;
	for (v = p, vlen = 0; v + vlen < end && !isspace((unsigned char)v[vlen]) &&
	    v[vlen] != '#' && v[vlen] != '\0'; vlen++)
		;
	/* "fuzz.conf:N: KEY: reason" */
	if ((reason = strstr(err, ": ")) == NULL ||
	    strncmp(reason + 2, k, klen) != 0)
		return;
	reason += 2 + klen;
	for (size_t i = 0; i + 12 <= vlen; i++) {
		char part[13];

		memcpy(part, v + i, 12);
		part[12] = '\0';
		if (strspn(part, TOKEN_CHARS) == 12)
			FUZZ_CHECK(strstr(reason, part) == NULL);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config *cfg, *back;
	char err[CONFIG_ERRLEN], *dump, *dump2, *kept;
	char changed[1024], restart[1024];
	size_t klen = 0;

	FUZZ_CHECK((cfg = malloc(sizeof(*cfg))) != NULL);
	FUZZ_CHECK((back = malloc(sizeof(*back))) != NULL);
	memset(err, 'x', sizeof(err));
	if (load(cfg, (const char *)data, size, err) == -1) {
		FUZZ_CHECK(fuzz_terminated(err, sizeof(err)));
		check_refusal(data, size, err);
		goto done;
	}
	(void)config_validate(cfg, err);

	/* The dump, less the secrets it only says are set, loads back. */
	FUZZ_CHECK((dump = malloc(DUMP_MAX)) != NULL);
	FUZZ_CHECK((dump2 = malloc(DUMP_MAX)) != NULL);
	FUZZ_CHECK((kept = malloc(DUMP_MAX)) != NULL);
	config_dump(cfg, dump, DUMP_MAX);
	FUZZ_CHECK(strlen(dump) < DUMP_MAX - 1);
	for (char *line = dump, *nl; *line != '\0'; line = nl + 1) {
		FUZZ_CHECK((nl = strchr(line, '\n')) != NULL);
		if (strstr(line, " (set)\n") == line + strcspn(line, " "))
			continue;
		memcpy(kept + klen, line, (size_t)(nl - line) + 1);
		klen += (size_t)(nl - line) + 1;
	}
	if (load(back, kept, klen, err) == -1) {
		fprintf(stderr, "dump does not load: %s\n%.*s", err, (int)klen,
		    kept);
		FUZZ_CHECK(!"the dump loads back");
	}
	memcpy(back->publish_token, cfg->publish_token,
	    sizeof(cfg->publish_token));
	memcpy(back->subscribe_token, cfg->subscribe_token,
	    sizeof(cfg->subscribe_token));
	memcpy(back->admin_token, cfg->admin_token, sizeof(cfg->admin_token));
	memcpy(back->signing_secret, cfg->signing_secret,
	    sizeof(cfg->signing_secret));
	config_dump(back, dump2, DUMP_MAX);
	FUZZ_CHECK(strcmp(dump, dump2) == 0);
	/* A reload of the same settings changes nothing. */
	FUZZ_CHECK(config_reconcile(back, cfg, changed, sizeof(changed),
	    restart, sizeof(restart)) == 0);
	FUZZ_CHECK(*changed == '\0' && *restart == '\0');
	free(kept);
	free(dump2);
	free(dump);
done:
	explicit_bzero(cfg, sizeof(*cfg));
	free(back);
	free(cfg);
	return 0;
}

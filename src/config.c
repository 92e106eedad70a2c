/* config.c: settings table, defaults, config file and value parsing. */
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "sign.h"

static const char *const durabilities[] = {
	[DURABILITY_OFF] = "off",
	[DURABILITY_NORMAL] = "normal",
	[DURABILITY_FULL] = "full",
};

enum config_type {
	CT_INT,
	CT_DURATION,
	CT_SIZE,
	CT_LISTEN,
	CT_LOGLEVEL,
	CT_PATH,
	CT_BOOL,
	CT_DURABILITY,
	CT_SCHEDULE,
	CT_SECRET,
	CT_TOKEN,
	CT_TARGETS,
	CT_FILE
};

/* One row a key; the only place a key's name, type and bounds are written. */
struct config_key {
	const char *name;
	size_t offset, size;
	long long min, max;
	enum config_type type;
	int restart; /* cannot change on a reload */
};

#define FIELD(n) offsetof(struct config, n), sizeof(((struct config *)0)->n)
#define KEY(n, t, lo, hi) \
	{ \
#n, FIELD(n), lo, hi, t, 0 \
	}
/*
 * Settings the running daemon was built around: the listening socket and
 * libmicrohttpd's options, the database's place, the HTTPS front end's
 * certificate and the delivery order of every subscriber's queue.
 */
#define RESTART_KEY(n, t, lo, hi) \
	{ \
#n, FIELD(n), lo, hi, t, 1 \
	}
static const struct config_key config_keys[] = {
	RESTART_KEY(listen, CT_LISTEN, 0, 0),
	KEY(keepalive_ttl, CT_DURATION, 1, 86400LL * 365),
	KEY(reap_interval, CT_DURATION, 1, 86400),
	KEY(max_body, CT_SIZE, 1, 1LL << 30),
	KEY(max_batch, CT_INT, 1, 100000),
	KEY(log_level, CT_LOGLEVEL, 0, 0),
	KEY(queue_limit, CT_INT, 1, 10000000),
	KEY(max_in_flight, CT_INT, 1, 1000),
	KEY(max_transfers, CT_INT, 1, 100000),
	RESTART_KEY(delivery_threads, CT_INT, 1, CONFIG_THREADS_MAX),
	KEY(connect_timeout, CT_DURATION, 1, 3600),
	KEY(delivery_timeout, CT_DURATION, 1, 86400),
	KEY(max_queued_bytes, CT_SIZE, 1024, 1LL << 40),
	KEY(shutdown_grace, CT_DURATION, 0, 3600),
	RESTART_KEY(client_timeout, CT_DURATION, 1, 86400),
	KEY(header_timeout, CT_DURATION, 1, 3600),
	KEY(body_timeout, CT_DURATION, 1, 3600),
	KEY(body_min_rate, CT_SIZE, 1, 1LL << 30),
	RESTART_KEY(max_conns_per_ip, CT_INT, 1, 1000000),
	RESTART_KEY(max_connections, CT_INT, 1, 1000000),
	RESTART_KEY(http_threads, CT_INT, 1, 64),
	KEY(max_subscribers, CT_INT, 1, 100000000),
	RESTART_KEY(data_dir, CT_PATH, 0, 0),
	RESTART_KEY(durability, CT_DURABILITY, 0, 0),
	KEY(retry_schedule, CT_SCHEDULE, 0, 0),
	KEY(failure_threshold, CT_INT, 1, 1000000),
	RESTART_KEY(ordered, CT_BOOL, 0, 0),
	KEY(max_backlog_bytes, CT_SIZE, 1024, 1LL << 50),
	KEY(dead_letter_on_evict, CT_BOOL, 0, 0),
	KEY(dead_letter_retention, CT_DURATION, 1, 86400LL * 3650),
	KEY(dead_letter_max, CT_INT, 0, 1000000000),
	KEY(signing_secret, CT_SECRET, 0, 0),
	KEY(idempotency_window, CT_DURATION, 1, 86400LL * 365),
	KEY(publish_token, CT_TOKEN, 16, CONFIG_TOKEN_MAX),
	KEY(subscribe_token, CT_TOKEN, 16, CONFIG_TOKEN_MAX),
	KEY(admin_token, CT_TOKEN, 16, CONFIG_TOKEN_MAX),
	KEY(deny_targets, CT_TARGETS, 0, 0),
	KEY(allow_targets, CT_TARGETS, 0, 0),
	KEY(ca_file, CT_FILE, 0, 0),
	KEY(tls_verify, CT_BOOL, 0, 0),
	KEY(http2, CT_BOOL, 0, 0),
	RESTART_KEY(tls_cert, CT_FILE, 0, 0),
	RESTART_KEY(tls_key, CT_FILE, 0, 0),
};
#define NKEYS (sizeof(config_keys) / sizeof(config_keys[0]))

/* The default of delivery_threads: a thread a CPU, within the key's bounds. */
static long
config_online_cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1 : n > CONFIG_THREADS_MAX ? CONFIG_THREADS_MAX : n;
}

void
config_init(struct config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->listen, sizeof(cfg->listen), "127.0.0.1:3000");
	cfg->keepalive_ttl = 120;
	cfg->reap_interval = 60;
	cfg->max_body = 1 << 20;
	cfg->max_batch = 1000;
	cfg->log_level = LOG_INFO;
	cfg->queue_limit = 10000;
	cfg->max_in_flight = 8;
	cfg->max_transfers = 128;
	cfg->delivery_threads = config_online_cpus();
	cfg->connect_timeout = 5;
	cfg->delivery_timeout = 15;
	cfg->max_queued_bytes = (size_t)256 << 20;
	cfg->shutdown_grace = 10;
	cfg->client_timeout = 30;
	cfg->header_timeout = 10;
	cfg->body_timeout = 10;
	cfg->body_min_rate = 1024;
	cfg->max_conns_per_ip = 64;
	cfg->max_connections = 1024;
	cfg->http_threads = 2;
	cfg->max_subscribers = 100000;
	snprintf(cfg->data_dir, sizeof(cfg->data_dir), "/var/lib/hookcast");
	cfg->durability = DURABILITY_FULL;
	(void)config_parse_schedule("1s 5s 30s 2m 5m 15m 30m 1h 2h",
	    cfg->retry_schedule, &cfg->retry_count);
	cfg->failure_threshold = 5;
	cfg->ordered = 0;
	cfg->max_backlog_bytes = (size_t)1 << 30;
	cfg->dead_letter_on_evict = 1;
	cfg->dead_letter_retention = 7L * 86400;
	cfg->dead_letter_max = 100000;
	cfg->idempotency_window = 86400;
	/* deny_targets, allow_targets: empty (the built-in denials apply). */
	/* ca_file, tls_cert, tls_key: unset. */
	cfg->tls_verify = 1;
	cfg->http2 = 1;
}

/* A whole number with an optional unit suffix; -1 on trailing junk or overflow. */
static int
parse_scaled(const char *s, const char *const units[], const long long mult[],
    long long *out)
{
	unsigned long long v;
	char *end;

	if (s == NULL || !isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || v > LLONG_MAX)
		return -1;
	if (*end == '\0') {
		*out = (long long)v;
		return 0;
	}
	for (size_t i = 0; units[i] != NULL; i++)
		if (strcmp(end, units[i]) == 0) {
			if (v > (unsigned long long)(LLONG_MAX / mult[i]))
				return -1;
			*out = (long long)v * mult[i];
			return 0;
		}
	return -1;
}

int
config_parse_duration(const char *s, long min, long max, long *out)
{
	static const char *const units[] = { "s", "m", "h", "d", NULL };
	static const long long mult[] = { 1, 60, 3600, 86400 };
	long long v;

	if (parse_scaled(s, units, mult, &v) == -1 || v < min || v > max)
		return -1;
	*out = (long)v;
	return 0;
}

int
config_parse_size(const char *s, size_t min, size_t max, size_t *out)
{
	static const char *const units[] = { "K", "KiB", "M", "MiB", "G", "GiB",
		NULL };
	static const long long mult[] = { 1LL << 10, 1LL << 10, 1LL << 20,
		1LL << 20, 1LL << 30, 1LL << 30 };
	long long v;

	if (parse_scaled(s, units, mult, &v) == -1 || (size_t)v < min ||
	    (size_t)v > max)
		return -1;
	*out = (size_t)v;
	return 0;
}

int
config_parse_schedule(const char *s, long ms[RETRY_MAX], int *count)
{
	static const char *const units[] = { "ms", "s", "m", "h", "d", NULL };
	static const long long mult[] = { 1, 1000, 60000, 3600000, 86400000 };
	char word[32];
	long long v;
	long tmp[RETRY_MAX];
	int n = 0;
	size_t len;

	for (;;) {
		s += strspn(s, " \t,");
		if (*s == '\0')
			break;
		len = strcspn(s, " \t,");
		/* Room for the word, an "s" after a bare number, and the NUL. */
		if (len + 1 >= sizeof(word) || n == RETRY_MAX)
			return -1;
		memcpy(word, s, len);
		word[len] = '\0';
		s += len;
		/* A bare number is seconds, like every other duration. */
		if (strspn(word, "0123456789") == len)
			word[len] = 's', word[len + 1] = '\0';
		if (parse_scaled(word, units, mult, &v) == -1 || v < 10 ||
		    v > 86400000LL)
			return -1;
		tmp[n++] = (long)v;
	}
	if (n == 0)
		return -1;
	memcpy(ms, tmp, (size_t)n * sizeof(*tmp));
	*count = n;
	return 0;
}

/* HOST:PORT, where HOST may be [v6]; the port may be 0 (the kernel picks). */
static int
parse_listen(const char *s, char *out, size_t outlen)
{
	const char *colon = strrchr(s, ':');
	long port;
	char *end;

	if (colon == NULL || colon == s || strlen(s) >= outlen)
		return -1;
	if (s[0] == '[' && colon[-1] != ']')
		return -1;
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (colon[1] == '\0' || *end != '\0' || errno != 0 || port < 0 ||
	    port > 65535)
		return -1;
	memcpy(out, s, strlen(s) + 1);
	return 0;
}

/*
 * A token is RFC 7235's token68, the syntax of "Bearer TOKEN": letters,
 * digits, "-._~+/", then "=" padding.  So it never holds a space, or a "#"
 * that the config file would take for a comment.
 */
static int
is_token68(const char *s)
{
	size_t body = strspn(s,
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789-._~+/");

	return body > 0 && s[body + strspn(s + body, "=")] == '\0';
}

static const struct config_key *
config_find(const char *key)
{
	char name[64];
	size_t i;

	while (*key == '-')
		key++;
	for (i = 0; i < sizeof(name) - 1 && key[i] != '\0'; i++) {
		name[i] = key[i];
		if (name[i] == '-')
			name[i] = '_';
	}
	name[i] = '\0';
	for (i = 0; i < NKEYS; i++)
		if (strcmp(config_keys[i].name, name) == 0)
			return &config_keys[i];
	return NULL;
}

int
config_set(struct config *cfg, const char *key, const char *value,
    char err[CONFIG_ERRLEN])
{
	const struct config_key *k = config_find(key);
	static const char *const no_units[] = { NULL };
	char *field;
	long long ll;
	long l;
	size_t z;
	enum log_level lv;
	char why[EGRESS_ERRLEN];

	if (k == NULL) {
		snprintf(err, CONFIG_ERRLEN, "unknown key \"%.64s\"", key);
		return -1;
	}
	field = (char *)cfg + k->offset;
	switch (k->type) {
	case CT_INT:
		if (parse_scaled(value, no_units, NULL, &ll) == -1 ||
		    ll < k->min || ll > k->max)
			goto range;
		*(long *)(void *)field = (long)ll;
		return 0;
	case CT_DURATION:
		if (config_parse_duration(value, (long)k->min, (long)k->max,
			&l) == -1)
			goto range;
		*(long *)(void *)field = l;
		return 0;
	case CT_SIZE:
		if (config_parse_size(value, (size_t)k->min, (size_t)k->max,
			&z) == -1)
			goto range;
		*(size_t *)(void *)field = z;
		return 0;
	case CT_LISTEN:
		if (parse_listen(value, cfg->listen, sizeof(cfg->listen)) ==
		    -1) {
			snprintf(err, CONFIG_ERRLEN,
			    "%s: \"%.64s\" is not "
			    "HOST:PORT with a port of 0 to 65535",
			    k->name, value);
			return -1;
		}
		return 0;
	case CT_PATH:
	case CT_FILE:
		/* An optional file may be set to "" (unset) by a flag. */
		if ((k->type == CT_PATH && *value == '\0') ||
		    strlen(value) >= sizeof(cfg->data_dir)) {
			snprintf(err, CONFIG_ERRLEN,
			    "%s: empty or longer than "
			    "%zu bytes",
			    k->name, sizeof(cfg->data_dir) - 1);
			return -1;
		}
		/* Every path field is data_dir's size; no old tail is left. */
		memset(field, 0, sizeof(cfg->data_dir));
		memcpy(field, value, strlen(value));
		return 0;
	case CT_TARGETS:
		if (egress_parse(value, (struct egress_list *)(void *)field,
			why) == -1) {
			snprintf(err, CONFIG_ERRLEN, "%s: %s", k->name, why);
			return -1;
		}
		return 0;
	case CT_BOOL:
		if (strcmp(value, "yes") == 0)
			*(int *)(void *)field = 1;
		else if (strcmp(value, "no") == 0)
			*(int *)(void *)field = 0;
		else {
			snprintf(err, CONFIG_ERRLEN,
			    "%s: \"%.64s\" is not yes "
			    "or no",
			    k->name, value);
			return -1;
		}
		return 0;
	case CT_DURABILITY:
		for (size_t i = 0;
		     i < sizeof(durabilities) / sizeof(durabilities[0]); i++)
			if (strcmp(value, durabilities[i]) == 0) {
				cfg->durability = (enum durability)i;
				return 0;
			}
		snprintf(err, CONFIG_ERRLEN,
		    "%s: \"%.64s\" is not one of full, "
		    "normal, off",
		    k->name, value);
		return -1;
	case CT_SCHEDULE:
		if (config_parse_schedule(value, cfg->retry_schedule,
			&cfg->retry_count) == -1) {
			snprintf(err, CONFIG_ERRLEN,
			    "%s: \"%.64s\" is not 1 to "
			    "%d delays of 10ms to 1d (suffix ms, s, m, h or d)",
			    k->name, value, RETRY_MAX);
			return -1;
		}
		return 0;
	case CT_SECRET: {
		char bad[SIGN_ERRLEN];

		/* The reason never repeats the value: it is a secret. */
		if (strlen(value) >= sizeof(cfg->signing_secret) ||
		    sign_check(value, SIGN_SECRETS, bad) == -1) {
			snprintf(err, CONFIG_ERRLEN, "%s: %s", k->name,
			    strlen(value) >= sizeof(cfg->signing_secret) ?
				"too long" :
				bad);
			return -1;
		}
		memcpy(field, value, strlen(value) + 1);
		return 0;
	}
	case CT_TOKEN:
		/* A secret: the error says what is wrong, never what it is. */
		z = strlen(value);
		if (z == 0)
			snprintf(err, CONFIG_ERRLEN, "%s: empty", k->name);
		else if ((long long)z < k->min || (long long)z > k->max)
			snprintf(err, CONFIG_ERRLEN,
			    "%s: must be %lld to %lld "
			    "characters long",
			    k->name, k->min, k->max);
		else if (!is_token68(value))
			snprintf(err, CONFIG_ERRLEN,
			    "%s: may only hold letters, "
			    "digits, - . _ ~ + / and trailing = (openssl rand "
			    "-hex 32 makes a good one)",
			    k->name);
		else {
			memcpy(field, value, z + 1);
			return 0;
		}
		return -1;
	case CT_LOGLEVEL:
		if (log_level_parse(value, &lv) == -1) {
			snprintf(err, CONFIG_ERRLEN,
			    "%s: \"%.64s\" is not one "
			    "of error, warn, info, debug",
			    k->name, value);
			return -1;
		}
		cfg->log_level = lv;
		return 0;
	}
range:
	switch (k->type) {
	case CT_DURATION:
		snprintf(err, CONFIG_ERRLEN,
		    "%s: \"%.64s\" is not a duration "
		    "from %llds to %llds (suffix s, m, h or d)",
		    k->name, value, k->min, k->max);
		break;
	case CT_SIZE:
		snprintf(err, CONFIG_ERRLEN,
		    "%s: \"%.64s\" is not a size from "
		    "%lld to %lld bytes (suffix K, M or G)",
		    k->name, value, k->min, k->max);
		break;
	default:
		snprintf(err, CONFIG_ERRLEN,
		    "%s: \"%.64s\" is not a whole "
		    "number from %lld to %lld",
		    k->name, value, k->min, k->max);
		break;
	}
	return -1;
}

/* Splits a line into key and value in place; returns 0 for blank/comment lines. */
static int
split_line(char *line, char **key, char **value)
{
	char *p = line, *end;

	if ((end = strchr(p, '#')) != NULL)
		*end = '\0';
	while (isspace((unsigned char)*p))
		p++;
	end = p + strlen(p);
	while (end > p && isspace((unsigned char)end[-1]))
		*--end = '\0';
	if (*p == '\0')
		return 0;
	*key = p;
	while (*p != '\0' && !isspace((unsigned char)*p))
		p++;
	if (*p == '\0') {
		*value = p;
		return 1;
	}
	*p++ = '\0';
	while (isspace((unsigned char)*p))
		p++;
	*value = p;
	return 1;
}

int
config_read(struct config *cfg, FILE *fp, const char *path,
    char err[CONFIG_ERRLEN])
{
	char line[1024], why[CONFIG_ERRLEN], *key, *value;
	int lineno = 0;

	while (fgets(line, sizeof(line), fp) != NULL) {
		lineno++;
		if (strchr(line, '\n') == NULL && !feof(fp)) {
			snprintf(err, CONFIG_ERRLEN, "%s:%d: line too long",
			    path, lineno);
			return -1;
		}
		if (split_line(line, &key, &value) == 0)
			continue;
		if (*value == '\0') {
			snprintf(err, CONFIG_ERRLEN,
			    "%.80s:%d: \"%.64s\" has no "
			    "value",
			    path, lineno, key);
			return -1;
		}
		/* Dashes belong to flags; the file spells keys with underscores. */
		if (strchr(key, '-') != NULL)
			snprintf(why, sizeof(why), "unknown key \"%.64s\"",
			    key);
		if (strchr(key, '-') != NULL ||
		    config_set(cfg, key, value, why) == -1) {
			snprintf(err, CONFIG_ERRLEN, "%.80s:%d: %.140s", path,
			    lineno, why);
			return -1;
		}
	}
	if (ferror(fp)) {
		snprintf(err, CONFIG_ERRLEN, "%s: read error", path);
		return -1;
	}
	return 0;
}

int
config_load(struct config *cfg, const char *path, char err[CONFIG_ERRLEN])
{
	char ebuf[128];
	FILE *fp;
	int rc;

	if ((fp = fopen(path, "r")) == NULL) {
		snprintf(err, CONFIG_ERRLEN, "%s: %s", path,
		    strerror_r(errno, ebuf, sizeof(ebuf)));
		return -1;
	}
	rc = config_read(cfg, fp, path, err);
	fclose(fp);
	return rc;
}

int
config_load_env(struct config *cfg, char err[CONFIG_ERRLEN])
{
	char name[80], why[CONFIG_ERRLEN];
	const char *value;
	size_t n;

	for (size_t i = 0; i < NKEYS; i++) {
		if (config_keys[i].type != CT_TOKEN)
			continue;
		n = (size_t)snprintf(name, sizeof(name), "HOOKCAST_%s",
		    config_keys[i].name);
		for (size_t j = 0; j < n && j < sizeof(name); j++)
			name[j] = (char)toupper((unsigned char)name[j]);
		if ((value = getenv(name)) == NULL)
			continue;
		if (config_set(cfg, config_keys[i].name, value, why) == -1) {
			snprintf(err, CONFIG_ERRLEN, "%.40s: %.200s", name,
			    why);
			return -1;
		}
	}
	return 0;
}

int
config_validate(const struct config *cfg, char err[CONFIG_ERRLEN])
{
	if (cfg->max_in_flight > cfg->max_transfers) {
		snprintf(err, CONFIG_ERRLEN,
		    "max_in_flight (%ld) is larger "
		    "than max_transfers (%ld)",
		    cfg->max_in_flight, cfg->max_transfers);
		return -1;
	}
	if (cfg->max_conns_per_ip > cfg->max_connections) {
		snprintf(err, CONFIG_ERRLEN,
		    "max_conns_per_ip (%ld) is larger "
		    "than max_connections (%ld)",
		    cfg->max_conns_per_ip, cfg->max_connections);
		return -1;
	}
	if ((size_t)cfg->max_body > cfg->max_queued_bytes) {
		snprintf(err, CONFIG_ERRLEN,
		    "max_body (%zu) is larger than "
		    "max_queued_bytes (%zu)",
		    cfg->max_body, cfg->max_queued_bytes);
		return -1;
	}
	if ((cfg->tls_cert[0] == '\0') != (cfg->tls_key[0] == '\0')) {
		snprintf(err, CONFIG_ERRLEN,
		    "%s is set but %s is not: the "
		    "HTTPS front end needs both",
		    cfg->tls_cert[0] ? "tls_cert" : "tls_key",
		    cfg->tls_cert[0] ? "tls_key" : "tls_cert");
		return -1;
	}
	return 0;
}

/* Writes K's `key value` line for CFG into BUF, as snprintf() would. */
static int
format_key(const struct config *cfg, const struct config_key *k, char *buf,
    size_t len)
{
	static const char *const levels[] = { "error", "warn", "info",
		"debug" };
	const char *field = (const char *)cfg + k->offset;

	switch (k->type) {
	case CT_INT:
	case CT_DURATION:
		return snprintf(buf, len, "%s %ld\n", k->name,
		    *(const long *)(const void *)field);
	case CT_SIZE:
		return snprintf(buf, len, "%s %zu\n", k->name,
		    *(const size_t *)(const void *)field);
	case CT_LISTEN:
	case CT_PATH:
	case CT_FILE:
		/* An empty value cannot be written: leave it out. */
		return snprintf(buf, len, "%s%s %s\n", *field ? "" : "# ",
		    k->name, *field ? field : "(unset)");
	case CT_TARGETS: {
		char list[EGRESS_MAX * (INET6_ADDRSTRLEN + 5)];

		egress_format((const struct egress_list *)(const void *)field,
		    list, sizeof(list));
		return snprintf(buf, len, "%s%s %s\n", *list ? "" : "# ",
		    k->name, *list ? list : "(empty)");
	}
	case CT_BOOL:
		return snprintf(buf, len, "%s %s\n", k->name,
		    *(const int *)(const void *)field ? "yes" : "no");
	case CT_DURABILITY:
		return snprintf(buf, len, "%s %s\n", k->name,
		    durabilities[cfg->durability]);
	case CT_SCHEDULE: {
		char list[RETRY_MAX * 24] = "";
		size_t m = 0;

		for (int j = 0; j < cfg->retry_count; j++)
			m += (size_t)snprintf(list + m, sizeof(list) - m,
			    "%s%ldms", j ? " " : "", cfg->retry_schedule[j]);
		return snprintf(buf, len, "%s %s\n", k->name, list);
	}
	case CT_LOGLEVEL:
		return snprintf(buf, len, "%s %s\n", k->name,
		    levels[cfg->log_level]);
	case CT_SECRET:
	case CT_TOKEN:
		/* Whether it is set, never what it is. */
		return snprintf(buf, len,
		    *field != '\0' ? "%s (set)\n" : "# %s (unset)\n", k->name);
	}
	return -1;
}

void
config_dump(const struct config *cfg, char *buf, size_t len)
{
	size_t n = 0;
	int r;

	for (size_t i = 0; i < NKEYS && n < len; i++) {
		if ((r = format_key(cfg, &config_keys[i], buf + n, len - n)) <
		    0)
			break;
		n += (size_t)r;
	}
}

/* 1 if K differs between A and B. */
static int
key_differs(const struct config *a, const struct config *b,
    const struct config_key *k)
{
	char x[EGRESS_MAX * (INET6_ADDRSTRLEN + 5) + 64];
	char y[sizeof(x)];

	/* The shown form hides secrets and tokens: compare those themselves. */
	if (k->type == CT_SECRET || k->type == CT_TOKEN)
		return strcmp((const char *)a + k->offset,
			   (const char *)b + k->offset) != 0;
	format_key(a, k, x, sizeof(x));
	format_key(b, k, y, sizeof(y));
	return strcmp(x, y) != 0;
}

/* Appends NAME to the space-separated LIST of LEN bytes. */
static void
list_add(char *list, size_t len, const char *name)
{
	size_t n = strlen(list);

	snprintf(list + n, len - n, "%s%s", n > 0 ? " " : "", name);
}

int
config_reconcile(struct config *next, const struct config *cur, char *changed,
    size_t clen, char *restart, size_t rlen)
{
	int n = 0;

	*changed = *restart = '\0';
	for (size_t i = 0; i < NKEYS; i++) {
		const struct config_key *k = &config_keys[i];

		if (!key_differs(next, cur, k))
			continue;
		if (k->restart) {
			memcpy((char *)next + k->offset,
			    (const char *)cur + k->offset, k->size);
			list_add(restart, rlen, k->name);
		} else {
			list_add(changed, clen, k->name);
			n++;
		}
	}
	return n;
}

/* A configuration shared by reference between threads. */
struct shared_config {
	atomic_long refs;
	struct config cfg;
};

/* The reference count of CFG, which must come from config_share. */
static struct shared_config *
shared_of(const struct config *cfg)
{
	assert(cfg->shared != NULL && &cfg->shared->cfg == cfg);
	return cfg->shared;
}

const struct config *
config_share(const struct config *cfg)
{
	struct shared_config *sc;

	if ((sc = malloc(sizeof(*sc))) == NULL)
		return NULL;
	atomic_init(&sc->refs, 1);
	sc->cfg = *cfg;
	sc->cfg.shared = sc;
	return &sc->cfg;
}

const struct config *
config_hold(const struct config *cfg)
{
	atomic_fetch_add_explicit(&shared_of(cfg)->refs, 1,
	    memory_order_relaxed);
	return cfg;
}

void
config_release(const struct config *cfg)
{
	struct shared_config *sc;

	if (cfg == NULL)
		return;
	sc = shared_of(cfg);
	if (atomic_fetch_sub_explicit(&sc->refs, 1, memory_order_acq_rel) ==
	    1) {
		/* Tokens and secrets do not outlive their last reader. */
		explicit_bzero(sc, sizeof(*sc));
		free(sc);
	}
}

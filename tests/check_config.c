/* check_config.c: defaults, file parsing, flags' key spelling and value bounds. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "unit.h"

static char path[64];

static void
write_file(const char *text)
{
	FILE *fp;

	snprintf(path, sizeof(path), "/tmp/check_config.XXXXXX");
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	fp = fdopen(fd, "w");
	fputs(text, fp);
	fclose(fp);
}

START_TEST(defaults)
{
	struct config c;
	char err[CONFIG_ERRLEN];

	config_init(&c);
	ck_assert_str_eq(c.listen, "127.0.0.1:3000");
	ck_assert_int_eq(c.keepalive_ttl, 120);
	ck_assert_int_eq(c.reap_interval, 60);
	ck_assert_uint_eq(c.max_body, 1048576);
	ck_assert_int_eq(c.max_batch, 1000);
	ck_assert_int_eq(c.queue_limit, 10000);
	ck_assert_int_eq(c.max_in_flight, 8);
	ck_assert_int_eq(c.connect_timeout, 5);
	ck_assert_int_eq(c.delivery_timeout, 15);
	ck_assert_uint_eq(c.max_queued_bytes, 256u << 20);
	ck_assert_int_eq(c.shutdown_grace, 10);
	ck_assert_str_eq(c.data_dir, "/var/lib/hookcast");
	ck_assert_int_eq(c.durability, DURABILITY_FULL);
	ck_assert_int_eq(c.retry_count, 9);
	ck_assert_int_eq(c.retry_schedule[0], 1000);
	ck_assert_int_eq(c.retry_schedule[1], 5000);
	ck_assert_int_eq(c.retry_schedule[2], 30000);
	ck_assert_int_eq(c.retry_schedule[3], 120000);
	ck_assert_int_eq(c.retry_schedule[8], 7200000);
	ck_assert_int_eq(c.failure_threshold, 5);
	ck_assert_int_eq(c.ordered, 0);
	ck_assert_uint_eq(c.max_backlog_bytes, 1u << 30);
	ck_assert_int_eq(c.dead_letter_on_evict, 1);
	ck_assert_int_eq(c.dead_letter_retention, 7L * 86400);
	ck_assert_int_eq(c.dead_letter_max, 100000);
	ck_assert_str_eq(c.publish_token, "");
	ck_assert_str_eq(c.subscribe_token, "");
	ck_assert_str_eq(c.admin_token, "");
	ck_assert_int_eq(config_validate(&c, err), 0);
}
END_TEST

START_TEST(units)
{
	long l;
	size_t z;

	ck_assert_int_eq(config_parse_duration("90", 1, 1000, &l), 0);
	ck_assert_int_eq(l, 90);
	ck_assert_int_eq(config_parse_duration("2m", 1, 1000, &l), 0);
	ck_assert_int_eq(l, 120);
	ck_assert_int_eq(config_parse_duration("1h", 1, 86400, &l), 0);
	ck_assert_int_eq(l, 3600);
	ck_assert_int_eq(config_parse_duration("7d", 1, 86400L * 7, &l), 0);
	ck_assert_int_eq(config_parse_duration("0", 1, 10, &l), -1);
	ck_assert_int_eq(config_parse_duration("-5", 0, 10, &l), -1);
	ck_assert_int_eq(config_parse_duration("5x", 0, 10, &l), -1);
	ck_assert_int_eq(config_parse_duration("", 0, 10, &l), -1);
	ck_assert_int_eq(config_parse_duration("99999999999999999999", 0, 10,
	    &l), -1);
	ck_assert_int_eq(config_parse_size("64K", 1, 1 << 30, &z), 0);
	ck_assert_uint_eq(z, 65536);
	ck_assert_int_eq(config_parse_size("1MiB", 1, 1 << 30, &z), 0);
	ck_assert_uint_eq(z, 1 << 20);
	ck_assert_int_eq(config_parse_size("2G", 1, 1 << 30, &z), -1);
	ck_assert_int_eq(config_parse_size("1.5M", 1, 1 << 30, &z), -1);
}
END_TEST

START_TEST(set_keys)
{
	struct config c;
	char err[CONFIG_ERRLEN];

	config_init(&c);
	ck_assert_int_eq(config_set(&c, "--keepalive-ttl", "5", err), 0);
	ck_assert_int_eq(c.keepalive_ttl, 5);
	ck_assert_int_eq(config_set(&c, "max_body", "2K", err), 0);
	ck_assert_uint_eq(c.max_body, 2048);
	ck_assert_int_eq(config_set(&c, "listen", "[::1]:0", err), 0);
	ck_assert_str_eq(c.listen, "[::1]:0");
	ck_assert_int_eq(config_set(&c, "log_level", "debug", err), 0);
	ck_assert_int_eq(c.log_level, LOG_DEBUG);

	/* Bad values leave the setting as it was and say why. */
	ck_assert_int_eq(config_set(&c, "listen", "nope", err), -1);
	ck_assert_str_eq(c.listen, "[::1]:0");
	ck_assert_int_eq(config_set(&c, "listen", "h:70000", err), -1);
	ck_assert_int_eq(config_set(&c, "max_in_flight", "0", err), -1);
	ck_assert_ptr_nonnull(strstr(err, "max_in_flight"));
	ck_assert_int_eq(config_set(&c, "max_in_flight", "2s", err), -1);
	ck_assert_int_eq(c.max_in_flight, 8);
	ck_assert_int_eq(config_set(&c, "log_level", "loud", err), -1);
	ck_assert_int_eq(c.log_level, LOG_DEBUG);
	ck_assert_int_eq(config_set(&c, "--max-batch", "100000", err), 0);
	ck_assert_int_eq(c.max_batch, 100000);
	ck_assert_int_eq(config_set(&c, "max_batch", "100001", err), -1);
	ck_assert_ptr_nonnull(strstr(err, "max_batch"));
	ck_assert_int_eq(config_set(&c, "max_batch", "0", err), -1);
	ck_assert_int_eq(c.max_batch, 100000);
	ck_assert_int_eq(config_set(&c, "no_such_key", "1", err), -1);
	ck_assert_ptr_nonnull(strstr(err, "unknown key"));
}
END_TEST

START_TEST(set_store_keys)
{
	struct config c;
	char err[CONFIG_ERRLEN];

	config_init(&c);
	ck_assert_int_eq(config_set(&c, "--data-dir", "/srv/hc", err), 0);
	ck_assert_str_eq(c.data_dir, "/srv/hc");
	ck_assert_int_eq(config_set(&c, "data_dir", "", err), -1);
	ck_assert_str_eq(c.data_dir, "/srv/hc");
	ck_assert_int_eq(config_set(&c, "durability", "normal", err), 0);
	ck_assert_int_eq(c.durability, DURABILITY_NORMAL);
	ck_assert_int_eq(config_set(&c, "durability", "off", err), 0);
	ck_assert_int_eq(c.durability, DURABILITY_OFF);
	ck_assert_int_eq(config_set(&c, "durability", "fsync", err), -1);
	ck_assert_ptr_nonnull(strstr(err, "durability"));
	ck_assert_int_eq(c.durability, DURABILITY_OFF);
	ck_assert_int_eq(config_set(&c, "--retry-schedule", "100ms 1s 2m", err),
	    0);
	ck_assert_int_eq(c.retry_count, 3);
	ck_assert_int_eq(c.retry_schedule[0], 100);
	ck_assert_int_eq(c.retry_schedule[1], 1000);
	ck_assert_int_eq(c.retry_schedule[2], 120000);
	ck_assert_int_eq(config_set(&c, "retry_schedule", "1s 5ms", err), -1);
	ck_assert_ptr_nonnull(strstr(err, "retry_schedule"));
	ck_assert_int_eq(c.retry_count, 3);	/* unchanged */
	ck_assert_int_eq(c.retry_schedule[1], 1000);
	ck_assert_int_eq(config_set(&c, "ordered", "yes", err), 0);
	ck_assert_int_eq(c.ordered, 1);
	ck_assert_int_eq(config_set(&c, "ordered", "true", err), -1);
	ck_assert_int_eq(c.ordered, 1);
	ck_assert_int_eq(config_set(&c, "dead-letter-on-evict", "no", err), 0);
	ck_assert_int_eq(c.dead_letter_on_evict, 0);
	ck_assert_int_eq(config_set(&c, "failure_threshold", "0", err), -1);
	ck_assert_int_eq(config_set(&c, "failure_threshold", "2", err), 0);
	ck_assert_int_eq(c.failure_threshold, 2);
	ck_assert_int_eq(config_set(&c, "max_backlog_bytes", "64M", err), 0);
	ck_assert_uint_eq(c.max_backlog_bytes, 64u << 20);
	ck_assert_int_eq(config_set(&c, "max_backlog_bytes", "1", err), -1);
	ck_assert_int_eq(config_set(&c, "dead_letter_retention", "1d", err), 0);
	ck_assert_int_eq(c.dead_letter_retention, 86400);
	ck_assert_int_eq(config_set(&c, "dead_letter_max", "0", err), 0);
	ck_assert_int_eq(c.dead_letter_max, 0);
	ck_assert_int_eq(config_validate(&c, err), 0);
}
END_TEST

START_TEST(file_ok)
{
	struct config c;
	char err[CONFIG_ERRLEN];

	write_file("# comment\n\n  keepalive_ttl 30   # trailing\n"
	    "reap_interval\t10s\nmax_body 512K\n");
	config_init(&c);
	ck_assert_int_eq(config_load(&c, path, err), 0);
	ck_assert_int_eq(c.keepalive_ttl, 30);
	ck_assert_int_eq(c.reap_interval, 10);
	ck_assert_uint_eq(c.max_body, 512UL * 1024);
	unlink(path);
}
END_TEST

START_TEST(file_errors_name_the_line)
{
	static const char *const bad[] = {
		"keepalive_ttl 30\nbogus_key 1\n",
		"keepalive_ttl 30\nmax_body lots\n",
		"keepalive_ttl 30\nreap_interval\n",
		"keepalive_ttl 30\nkeepalive-ttl 5\n",
	};
	struct config c;
	char err[CONFIG_ERRLEN], want[128];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		write_file(bad[i]);
		config_init(&c);
		ck_assert_int_eq(config_load(&c, path, err), -1);
		snprintf(want, sizeof(want), "%s:2: ", path);
		ck_assert_msg(strncmp(err, want, strlen(want)) == 0,
		    "case %zu: \"%s\" does not start with \"%s\"", i, err, want);
		unlink(path);
	}
	config_init(&c);
	ck_assert_int_eq(config_load(&c, "/nonexistent/hookcast.conf", err),
	    -1);
	ck_assert_ptr_nonnull(strstr(err, "/nonexistent/hookcast.conf"));
	ck_assert_ptr_nonnull(strstr(err, "No such file"));
}
END_TEST

START_TEST(validate_conflicts)
{
	struct config c;
	char err[CONFIG_ERRLEN];

	config_init(&c);
	c.max_in_flight = 10;
	c.max_transfers = 5;
	ck_assert_int_eq(config_validate(&c, err), -1);
	ck_assert_ptr_nonnull(strstr(err, "max_transfers"));
}
END_TEST

START_TEST(dump_round_trips)
{
	struct config a, b;
	char buf[4096], err[CONFIG_ERRLEN];

	config_init(&a);
	ck_assert_int_eq(config_set(&a, "queue_limit", "77", err), 0);
	ck_assert_int_eq(config_set(&a, "retry_schedule", "250ms 3s 1h", err),
	    0);
	ck_assert_int_eq(config_set(&a, "durability", "normal", err), 0);
	ck_assert_int_eq(config_set(&a, "ordered", "yes", err), 0);
	ck_assert_int_eq(config_set(&a, "data_dir", "/tmp/x y", err), 0);
	config_dump(&a, buf, sizeof(buf));
	write_file(buf);
	config_init(&b);
	ck_assert_int_eq(config_load(&b, path, err), 0);
	ck_assert_int_eq(b.queue_limit, 77);
	ck_assert_int_eq(b.retry_count, 3);
	ck_assert_int_eq(b.retry_schedule[0], 250);
	ck_assert_mem_eq(&a, &b, sizeof(a));
	unlink(path);
}
END_TEST

#define TOK16	"0123456789abcdef"

START_TEST(reconcile_keeps_restart_keys)
{
	struct config cur, next;
	char err[CONFIG_ERRLEN], changed[512], restart[256];
	const struct config *a, *b;

	config_init(&cur);
	config_init(&next);
	ck_assert_int_eq(config_reconcile(&next, &cur, changed, sizeof(changed),
	    restart, sizeof(restart)), 0);
	ck_assert_str_eq(changed, "");
	ck_assert_str_eq(restart, "");

	ck_assert_int_eq(config_set(&next, "listen", "127.0.0.1:9999", err), 0);
	ck_assert_int_eq(config_set(&next, "data_dir", "/elsewhere", err), 0);
	ck_assert_int_eq(config_set(&next, "queue_limit", "77", err), 0);
	ck_assert_int_eq(config_set(&next, "retry_schedule", "1s", err), 0);
	ck_assert_int_eq(config_set(&next, "admin_token", TOK16, err), 0);
	ck_assert_int_eq(config_set(&next, "deny_targets", "10.0.0.0/8", err),
	    0);
	ck_assert_int_eq(config_reconcile(&next, &cur, changed, sizeof(changed),
	    restart, sizeof(restart)), 4);
	ck_assert_str_eq(changed, "queue_limit retry_schedule admin_token "
	    "deny_targets");
	ck_assert_str_eq(restart, "listen data_dir");
	/* What cannot change is put back; the rest stays. */
	ck_assert_str_eq(next.listen, cur.listen);
	ck_assert_str_eq(next.data_dir, cur.data_dir);
	ck_assert_int_eq(next.queue_limit, 77);
	ck_assert_int_eq(next.retry_count, 1);

	/* Shared copies live until their last reference goes. */
	ck_assert_ptr_nonnull(a = config_share(&next));
	ck_assert_int_eq(a->queue_limit, 77);
	b = config_hold(a);
	ck_assert_ptr_eq(a, b);
	config_release(a);
	ck_assert_int_eq(b->queue_limit, 77);	/* ASan: still alive */
	config_release(b);
	config_release(NULL);
}
END_TEST


/* A token config_set refuses: -1, the field unchanged, the value not echoed. */
static void
assert_bad_token(struct config *c, const char *value, const char *why)
{
	char err[CONFIG_ERRLEN], before[sizeof(c->admin_token)];

	memcpy(before, c->admin_token, sizeof(before));
	ck_assert_msg(config_set(c, "admin_token", value, err) == -1,
	    "\"%s\" accepted", value);
	ck_assert_str_eq(c->admin_token, before);
	ck_assert_ptr_nonnull(strstr(err, "admin_token"));
	ck_assert_msg(strstr(err, why) != NULL, "\"%s\": \"%s\" lacks \"%s\"",
	    value, err, why);
	if (*value != '\0')
		ck_assert_msg(strstr(err, value) == NULL, "\"%s\" echoed", err);
}

START_TEST(tokens)
{
	struct config c;
	char err[CONFIG_ERRLEN], max[CONFIG_TOKEN_MAX + 2];

	config_init(&c);
	ck_assert_int_eq(config_set(&c, "publish_token", TOK16, err), 0);
	ck_assert_str_eq(c.publish_token, TOK16);
	ck_assert_int_eq(config_set(&c, "--subscribe-token",
	    "Zm9vYmFyYmF6cXV4Cg-._~+/==", err), 0);
	ck_assert_str_eq(c.subscribe_token, "Zm9vYmFyYmF6cXV4Cg-._~+/==");
	memset(max, 'k', CONFIG_TOKEN_MAX);
	max[CONFIG_TOKEN_MAX] = '\0';
	ck_assert_int_eq(config_set(&c, "admin_token", max, err), 0);
	ck_assert_str_eq(c.admin_token, max);

	assert_bad_token(&c, "", "empty");
	assert_bad_token(&c, "0123456789abcde", "16 to 256");
	max[CONFIG_TOKEN_MAX] = 'k';
	max[CONFIG_TOKEN_MAX + 1] = '\0';
	assert_bad_token(&c, max, "16 to 256");
	assert_bad_token(&c, "0123456789 abcdef", "letters, digits");
	assert_bad_token(&c, "0123456789\tabcdef", "letters, digits");
	assert_bad_token(&c, "0123456789#abcdef", "letters, digits");
	assert_bad_token(&c, "0123456789\"abcdef", "letters, digits");
	assert_bad_token(&c, "01234567=89abcdef", "letters, digits");
	assert_bad_token(&c, "================", "letters, digits");
	assert_bad_token(&c, "0123456789abcdef\xc3\xa9", "letters, digits");
}
END_TEST

START_TEST(token_in_file)
{
	struct config c;
	char err[CONFIG_ERRLEN], want[128];

	write_file("admin_token   " TOK16 "==   # the operators'\n");
	config_init(&c);
	ck_assert_int_eq(config_load(&c, path, err), 0);
	ck_assert_str_eq(c.admin_token, TOK16 "==");
	unlink(path);

	/* '#' starts a comment: what is left is too short, and the line says so. */
	write_file("log_level info\npublish_token abcdefgh#ijklmnopqrstuvwxyz\n");
	config_init(&c);
	ck_assert_int_eq(config_load(&c, path, err), -1);
	snprintf(want, sizeof(want), "%s:2: publish_token: must be 16 to 256",
	    path);
	ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "%s", err);
	ck_assert_ptr_null(strstr(err, "abcdefgh"));
	ck_assert_str_eq(c.publish_token, "");
	unlink(path);
}
END_TEST

START_TEST(tokens_from_environment)
{
	struct config c;
	char err[CONFIG_ERRLEN];

	config_init(&c);
	ck_assert_int_eq(config_set(&c, "publish_token", "file-token-0123456",
	    err), 0);
	ck_assert_int_eq(config_set(&c, "admin_token", "file-admin-0123456",
	    err), 0);
	unit_unsetenv("HOOKCAST_PUBLISH_TOKEN");
	unit_unsetenv("HOOKCAST_SUBSCRIBE_TOKEN");
	unit_unsetenv("HOOKCAST_ADMIN_TOKEN");
	ck_assert_int_eq(config_load_env(&c, err), 0);
	ck_assert_str_eq(c.publish_token, "file-token-0123456");

	/* A variable overrides the file; an absent one leaves it be. */
	unit_setenv("HOOKCAST_PUBLISH_TOKEN", "env-token-01234567");
	unit_setenv("HOOKCAST_SUBSCRIBE_TOKEN", "env-subscribe-0123");
	ck_assert_int_eq(config_load_env(&c, err), 0);
	ck_assert_str_eq(c.publish_token, "env-token-01234567");
	ck_assert_str_eq(c.subscribe_token, "env-subscribe-0123");
	ck_assert_str_eq(c.admin_token, "file-admin-0123456");

	/* Set but empty, or invalid: an error naming the variable, not the value. */
	unit_setenv("HOOKCAST_ADMIN_TOKEN", "");
	ck_assert_int_eq(config_load_env(&c, err), -1);
	ck_assert_ptr_nonnull(strstr(err, "HOOKCAST_ADMIN_TOKEN"));
	ck_assert_ptr_nonnull(strstr(err, "empty"));
	ck_assert_str_eq(c.admin_token, "file-admin-0123456");
	unit_setenv("HOOKCAST_ADMIN_TOKEN", "short-secret");
	ck_assert_int_eq(config_load_env(&c, err), -1);
	ck_assert_ptr_nonnull(strstr(err, "HOOKCAST_ADMIN_TOKEN: admin_token: "));
	ck_assert_ptr_null(strstr(err, "short-secret"));
	unit_unsetenv("HOOKCAST_ADMIN_TOKEN");
	unit_unsetenv("HOOKCAST_PUBLISH_TOKEN");
	unit_unsetenv("HOOKCAST_SUBSCRIBE_TOKEN");
}
END_TEST

START_TEST(dump_hides_tokens)
{
	struct config c;
	char buf[8192], err[CONFIG_ERRLEN], want[128];

	config_init(&c);
	config_dump(&c, buf, sizeof(buf));
	ck_assert_ptr_nonnull(strstr(buf, "\n# publish_token (unset)\n"));
	ck_assert_ptr_nonnull(strstr(buf, "\n# admin_token (unset)\n"));

	ck_assert_int_eq(config_set(&c, "publish_token", "secret-publish-0123",
	    err), 0);
	ck_assert_int_eq(config_set(&c, "admin_token", "secret-admin-012345",
	    err), 0);
	config_dump(&c, buf, sizeof(buf));
	ck_assert_ptr_null(strstr(buf, "secret-"));
	ck_assert_ptr_nonnull(strstr(buf, "\npublish_token (set)\n"));
	ck_assert_ptr_nonnull(strstr(buf, "\n# subscribe_token (unset)\n"));
	ck_assert_ptr_nonnull(strstr(buf, "\nadmin_token (set)\n"));
	/* A dump never loads back as a daemon with a placeholder for a token. */
	write_file(buf);
	config_init(&c);
	ck_assert_int_eq(config_load(&c, path, err), -1);
	snprintf(want, sizeof(want), "publish_token: must be 16 to 256");
	ck_assert_msg(strstr(err, want) != NULL, "%s", err);
	unlink(path);
}
END_TEST

START_TEST(egress_and_tls_keys)
{
	struct config c, d;
	char err[CONFIG_ERRLEN], buf[8192], want[160];

	config_init(&c);
	ck_assert_int_eq(c.deny_targets.el_count, 0);
	ck_assert_int_eq(c.allow_targets.el_count, 0);
	ck_assert_str_eq(c.ca_file, "");
	ck_assert_int_eq(c.tls_verify, 1);
	ck_assert_int_eq(c.http2, 1);
	ck_assert_str_eq(c.tls_cert, "");
	ck_assert_str_eq(c.tls_key, "");

	ck_assert_int_eq(config_set(&c, "--deny-targets", "10.0.0.0/8, fd00::/8",
	    err), 0);
	ck_assert_int_eq(c.deny_targets.el_count, 2);
	ck_assert_int_eq(config_set(&c, "allow_targets", "10.1.0.0/16", err), 0);
	ck_assert_int_eq(c.allow_targets.el_count, 1);
	/* A bad entry names the key and itself, and changes nothing. */
	ck_assert_int_eq(config_set(&c, "deny_targets", "10.0.0.0/8 10.0.0.1/8",
	    err), -1);
	ck_assert_ptr_nonnull(strstr(err, "deny_targets: \"10.0.0.1/8\""));
	ck_assert_int_eq(c.deny_targets.el_count, 2);
	ck_assert_int_eq(config_set(&c, "tls_verify", "no", err), 0);
	ck_assert_int_eq(c.tls_verify, 0);
	ck_assert_int_eq(config_set(&c, "tls_verify", "off", err), -1);
	ck_assert_int_eq(config_set(&c, "--http2", "no", err), 0);
	ck_assert_int_eq(c.http2, 0);
	ck_assert_int_eq(config_set(&c, "http2", "yes", err), 0);
	ck_assert_int_eq(c.http2, 1);
	ck_assert_int_eq(config_set(&c, "http2", "h2", err), -1);
	ck_assert_int_eq(c.http2, 1);
	ck_assert_int_eq(config_set(&c, "ca_file", "/etc/ca.pem", err), 0);
	ck_assert_str_eq(c.ca_file, "/etc/ca.pem");

	/* The HTTPS front end needs both files, or neither. */
	ck_assert_int_eq(config_set(&c, "tls_cert", "/etc/c.pem", err), 0);
	ck_assert_int_eq(config_validate(&c, err), -1);
	ck_assert_ptr_nonnull(strstr(err, "tls_cert is set but tls_key is not"));
	ck_assert_int_eq(config_set(&c, "tls_key", "/etc/k.pem", err), 0);
	ck_assert_int_eq(config_validate(&c, err), 0);
	ck_assert_int_eq(config_set(&c, "tls_cert", "", err), 0);	/* a flag unsets */
	ck_assert_int_eq(config_validate(&c, err), -1);
	ck_assert_ptr_nonnull(strstr(err, "tls_key is set but tls_cert is not"));
	ck_assert_int_eq(config_set(&c, "tls_key", "", err), 0);
	ck_assert_int_eq(config_validate(&c, err), 0);

	/* Written back and read again, unset ones too. */
	config_dump(&c, buf, sizeof(buf));
	ck_assert_ptr_nonnull(strstr(buf, "deny_targets 10.0.0.0/8 fd00::/8\n"));
	ck_assert_ptr_nonnull(strstr(buf, "# tls_cert (unset)\n"));
	write_file(buf);
	config_init(&d);
	ck_assert_int_eq(config_load(&d, path, err), 0);
	ck_assert_mem_eq(&c, &d, sizeof(c));
	unlink(path);

	/* In a file, the error names the line. */
	write_file("allow_targets 10.0.0.0/8\ndeny_targets 169.254.0.0/33\n");
	config_init(&c);
	ck_assert_int_eq(config_load(&c, path, err), -1);
	snprintf(want, sizeof(want), "%s:2: deny_targets: \"169.254.0.0/33\"",
	    path);
	ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "\"%s\"", err);
	unlink(path);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("config");

	tcase_add_test(tc, defaults);
	tcase_add_test(tc, units);
	tcase_add_test(tc, set_keys);
	tcase_add_test(tc, set_store_keys);
	tcase_add_test(tc, file_ok);
	tcase_add_test(tc, file_errors_name_the_line);
	tcase_add_test(tc, validate_conflicts);
	tcase_add_test(tc, dump_round_trips);
	tcase_add_test(tc, reconcile_keeps_restart_keys);
	tcase_add_test(tc, tokens);
	tcase_add_test(tc, token_in_file);
	tcase_add_test(tc, tokens_from_environment);
	tcase_add_test(tc, dump_hides_tokens);
	tcase_add_test(tc, egress_and_tls_keys);
	suite_add_tcase(s, tc);
	return unit_run(s);
}

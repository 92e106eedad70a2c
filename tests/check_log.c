/* check_log.c: one line a call, the level threshold, the key=value shape. */
#include <check.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "unit.h"

static int fds[2], saved;

static void
setup(void)
{
	ck_assert_int_eq(pipe(fds), 0);
	saved = dup(STDERR_FILENO);
	dup2(fds[1], STDERR_FILENO);
}

static size_t
collect(char *buf, size_t len)
{
	ssize_t n;

	dup2(saved, STDERR_FILENO);
	close(saved);
	close(fds[1]);
	n = read(fds[0], buf, len - 1);
	close(fds[0]);
	buf[n > 0 ? n : 0] = '\0';
	return n > 0 ? (size_t)n : 0;
}

START_TEST(levels_and_shape)
{
	char buf[4096];
	enum log_level lv;

	ck_assert_int_eq(log_level_parse("warn", &lv), 0);
	ck_assert_int_eq(lv, LOG_WARN);
	ck_assert_int_eq(log_level_parse("verbose", &lv), -1);

	log_set_level(LOG_INFO);
	log_debug("hidden", NULL);
	log_info("shown", "address=%s n=%d", "a:1", 3);
	errno = ENOENT;
	log_warn("with errno", NULL);
	log_warnx("without errno", "k=v");
	collect(buf, sizeof(buf));
	ck_assert_ptr_null(strstr(buf, "hidden"));
	ck_assert_ptr_nonnull(strstr(buf,
	    " level=info msg=\"shown\" address=a:1 n=3\n"));
	ck_assert_ptr_nonnull(strstr(buf,
	    " level=warn msg=\"with errno\" error=\"No such file or directory\"\n"));
	ck_assert_ptr_nonnull(strstr(buf, " level=warn msg=\"without errno\" k=v\n"));
	ck_assert_int_eq(strncmp(buf, "ts=", 3), 0);
}
END_TEST

START_TEST(long_lines_are_cut_not_split)
{
	char buf[8192], big[4000];
	size_t n;

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	log_set_level(LOG_DEBUG);
	log_error("big", "v=%s", big);
	n = collect(buf, sizeof(buf));
	ck_assert_uint_gt(n, 1000);
	ck_assert_int_eq(buf[n - 1], '\n');
	ck_assert_ptr_eq(strchr(buf, '\n'), buf + n - 1);
}
END_TEST

START_TEST(values_are_bare_or_quoted)
{
	static const struct { const char *in, *out; size_t len; } cases[] = {
		{ "10.0.0.7:8080", "10.0.0.7:8080", LOG_VALUE_MAX },
		{ "no such file", "\"no such file\"", LOG_VALUE_MAX },
		{ "http://h:1/e?a=b", "\"http://h:1/e?a=b\"", LOG_VALUE_MAX },
		{ "", "\"\"", LOG_VALUE_MAX },
		{ NULL, "\"\"", LOG_VALUE_MAX },
		{ "say \"hi\" \\o/", "\"say \\\"hi\\\" \\\\o/\"",
		    LOG_VALUE_MAX },
		{ "a\nb\rc\td\001\xc3\xa9", "\"a\\nb\\rc\\td\\x01\\xc3\\xa9\"",
		    LOG_VALUE_MAX },
		/* Cut to fit, never inside an escape, and still closed. */
		{ "abcdefghijklmnop", "\"abcdefghi\"", 12 },
		{ "abcdefgh\n", "\"abcdefgh\"", 12 },
		{ "x y", "\"x y\"", 12 },
	};
	char buf[LOG_VALUE_MAX];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		ck_assert_str_eq(log_value(buf, cases[i].len, cases[i].in),
		    cases[i].out);
}
END_TEST

/* What a client sends in an address or an id cannot make a second line. */
START_TEST(hostile_values_cannot_forge_a_line)
{
	static const char hostile[] = "x\nts=2026-01-01T00:00:00.000Z "
	    "level=error msg=\"forged\" \"=\\";
	char buf[4096], v[LOG_VALUE_MAX];
	size_t n;

	log_set_level(LOG_INFO);
	log_info("dead letters purged", "address=%s count=%d",
	    log_value(v, sizeof(v), hostile), 1);
	/* A caller that forgot log_value() still writes one line. */
	log_info("careless", "id=%s", hostile);
	log_info("a \"quoted\"\nmessage", NULL);
	n = collect(buf, sizeof(buf));
	ck_assert_uint_gt(n, 0);
	ck_assert_ptr_nonnull(strstr(buf, " msg=\"dead letters purged\" "
	    "address=\"x\\nts=2026-01-01T00:00:00.000Z level=error "
	    "msg=\\\"forged\\\" \\\"=\\\\\" count=1\n"));
	ck_assert_ptr_nonnull(strstr(buf, " msg=\"careless\" id=x\\nts="));
	ck_assert_ptr_nonnull(strstr(buf,
	    " msg=\"a \\\"quoted\\\"\\nmessage\"\n"));
	/* Three calls, three lines, each its own event. */
	n = 0;
	for (char *p = buf, *nl; (nl = strchr(p, '\n')) != NULL; p = nl + 1) {
		ck_assert_int_eq(strncmp(p, "ts=", 3), 0);
		n++;
	}
	ck_assert_uint_eq(n, 3);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("log");
	TCase *tc = tcase_create("log");

	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, levels_and_shape);
	tcase_add_test(tc, long_lines_are_cut_not_split);
	tcase_add_test(tc, values_are_bare_or_quoted);
	tcase_add_test(tc, hostile_values_cannot_forge_a_line);
	suite_add_tcase(s, tc);
	return unit_run(s);
}

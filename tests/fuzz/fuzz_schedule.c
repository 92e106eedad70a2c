/*
 * fuzz_schedule.c: the retry schedule (retry_schedule "1s 5s 30s"), and
 * the duration and size values of the config file, each read back from
 * the form --dump-config writes; then the delays drawn from the schedule.
 */
#include "config.h"
#include "fuzz.h"
#include "retry.h"

static void
check_schedule(const char *s)
{
	long ms[RETRY_MAX], again[RETRY_MAX];
	char text[RETRY_MAX * 24];
	int count = -1, n = -1;
	size_t at = 0;
	struct config *cfg;
	uint64_t rng = 0x9e3779b97f4a7c15ULL;

	for (int i = 0; i < RETRY_MAX; i++)
		ms[i] = -5;
	if (config_parse_schedule(s, ms, &count) == -1) {
		/* Left as it was. */
		FUZZ_CHECK(count == -1);
		for (int i = 0; i < RETRY_MAX; i++)
			FUZZ_CHECK(ms[i] == -5);
		return;
	}
	FUZZ_CHECK(count >= 1 && count <= RETRY_MAX);
	for (int i = 0; i < count; i++) {
		FUZZ_CHECK(ms[i] >= 10 && ms[i] <= 86400000L);
		at += (size_t)snprintf(text + at, sizeof(text) - at, "%s%ldms",
		    i > 0 ? " " : "", ms[i]);
	}
	FUZZ_CHECK(at < sizeof(text));
	FUZZ_CHECK(config_parse_schedule(text, again, &n) == 0);
	FUZZ_CHECK(n == count && memcmp(ms, again, (size_t)n * sizeof(*ms)) == 0);

	/* Full jitter: each wait is within its step, and then it is over. */
	FUZZ_CHECK((cfg = malloc(sizeof(*cfg))) != NULL);
	config_init(cfg);
	memcpy(cfg->retry_schedule, ms, sizeof(ms));
	cfg->retry_count = count;
	for (int a = 1; a <= count; a++) {
		long d = retry_delay_ms(cfg, a, &rng);

		FUZZ_CHECK(d >= 0 && d <= ms[a - 1]);
	}
	FUZZ_CHECK(retry_delay_ms(cfg, count + 1, &rng) == -1);
	FUZZ_CHECK(retry_delay_ms(cfg, 0, &rng) == -1);
	free(cfg);
}

static void
check_duration(const char *s)
{
	char text[32];
	long v = -5, w = -5;

	if (config_parse_duration(s, 1, 86400L * 365, &v) == -1) {
		FUZZ_CHECK(v == -5);
		return;
	}
	FUZZ_CHECK(v >= 1 && v <= 86400L * 365);
	snprintf(text, sizeof(text), "%ld", v);
	FUZZ_CHECK(config_parse_duration(text, 1, 86400L * 365, &w) == 0 &&
	    w == v);
}

static void
check_size(const char *s)
{
	char text[32];
	size_t v = 5, w = 5;

	if (config_parse_size(s, 1024, (size_t)1 << 50, &v) == -1) {
		FUZZ_CHECK(v == 5);
		return;
	}
	FUZZ_CHECK(v >= 1024 && v <= (size_t)1 << 50);
	snprintf(text, sizeof(text), "%zu", v);
	FUZZ_CHECK(config_parse_size(text, 1024, (size_t)1 << 50, &w) == 0 &&
	    w == v);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_string(data, size);

	check_schedule(s);
	check_duration(s);
	check_size(s);
	free(s);
	return 0;
}

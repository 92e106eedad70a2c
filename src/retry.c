/* retry.c: the retry schedule, full jitter and Retry-After. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/random.h>
#include <time.h>

#include <curl/curl.h>

#include "retry.h"

static uint64_t
xorshift(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

uint64_t
retry_seed(void)
{
	uint64_t s = 0;

	if (getrandom(&s, sizeof(s), 0) != sizeof(s) || s == 0)
		s = (uint64_t)time(NULL) | 1;
	return s;
}

long
retry_delay_ms(const struct config *cfg, int attempt, uint64_t *rng)
{
	long cap;

	if (attempt < 1 || attempt > cfg->retry_count)
		return -1;
	cap = cfg->retry_schedule[attempt - 1];
	return (long)(xorshift(rng) % ((uint64_t)cap + 1));
}

static long
clamp(long long ms)
{
	if (ms < RETRY_AFTER_MIN_MS)
		return RETRY_AFTER_MIN_MS;
	if (ms > RETRY_AFTER_MAX_MS)
		return RETRY_AFTER_MAX_MS;
	return (long)ms;
}

long
retry_after_ms(const char *value, int64_t now_real_ms)
{
	unsigned long long secs;
	const char *p;
	char *end;
	time_t when;

	if (value == NULL)
		return -1;
	while (isspace((unsigned char)*value))
		value++;
	if (isdigit((unsigned char)*value)) {
		errno = 0;
		secs = strtoull(value, &end, 10);
		for (p = end; isspace((unsigned char)*p); p++)
			;
		if (*p != '\0')
			return -1;
		if (errno != 0 || secs > RETRY_AFTER_MAX_MS / 1000)
			return RETRY_AFTER_MAX_MS;
		return clamp((long long)secs * 1000);
	}
	/* libcurl's date parser reads every form RFC 9110 allows. */
	if ((when = curl_getdate(value, NULL)) == -1)
		return -1;
	/*
	 * libcurl reads years far enough off that the date in milliseconds
	 * overflows: judge those in seconds (a subscriber may send anything).
	 */
	if ((long long)when >
	    now_real_ms / 1000 + RETRY_AFTER_MAX_MS / 1000 + 1)
		return RETRY_AFTER_MAX_MS;
	if ((long long)when < now_real_ms / 1000 - 1)
		return RETRY_AFTER_MIN_MS;
	return clamp((long long)when * 1000 - now_real_ms);
}

/*
 * fuzz_retry_after.c: a subscriber's Retry-After header (retry_after_ms):
 * delay-seconds or an HTTP-date, always clamped to the documented bounds.
 */
#include <ctype.h>

#include "fuzz.h"
#include "retry.h"

#define NOW_MS	1795412619000LL		/* 2026-11-23T05:43:39Z */

/* A value of blanks, digits, blanks: what it must come to, or -2. */
static long
seconds(const char *v)
{
	unsigned long long s = 0;
	int over = 0;

	while (isspace((unsigned char)*v))
		v++;
	if (!isdigit((unsigned char)*v))
		return -2;
	for (; isdigit((unsigned char)*v); v++) {
		if (s > RETRY_AFTER_MAX_MS)
			over = 1;
		else
			s = s * 10 + (unsigned long long)(*v - '0');
	}
	while (isspace((unsigned char)*v))
		v++;
	if (*v != '\0')
		return -1;
	if (over || s * 1000 > RETRY_AFTER_MAX_MS)
		return RETRY_AFTER_MAX_MS;
	return s * 1000 < RETRY_AFTER_MIN_MS ? RETRY_AFTER_MIN_MS :
	    (long)(s * 1000);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *v = fuzz_string(data, size);
	long ms = retry_after_ms(v, NOW_MS), later, want;

	FUZZ_CHECK(ms == -1 || (ms >= RETRY_AFTER_MIN_MS &&
	    ms <= RETRY_AFTER_MAX_MS));
	if ((want = seconds(v)) != -2)
		FUZZ_CHECK(ms == want);
	/* Asked again later, a date is no further away; seconds stay. */
	later = retry_after_ms(v, NOW_MS + 5000);
	FUZZ_CHECK((later == -1) == (ms == -1));
	if (want != -2)
		FUZZ_CHECK(later == ms);
	else
		FUZZ_CHECK(later <= ms);
	free(v);
	return 0;
}

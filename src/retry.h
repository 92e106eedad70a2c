/* retry.h: when a failed delivery is tried again. */
#ifndef HOOKCAST_RETRY_H
#define HOOKCAST_RETRY_H

#include <stdint.h>

#include "config.h"

/* Retry-After is honoured within these bounds (milliseconds). */
#define RETRY_AFTER_MIN_MS 1000L
#define RETRY_AFTER_MAX_MS 3600000L

/*
 * The wait before retry number ATTEMPT (1 for the first retry), with full
 * jitter: uniform in [0, retry_schedule[ATTEMPT - 1]].  -1 when the
 * schedule is used up: the delivery becomes a dead letter.  RNG is the
 * caller's xorshift state (never 0).
 */
long retry_delay_ms(const struct config *cfg, int attempt, uint64_t *rng);

/*
 * A Retry-After value (delay-seconds or an HTTP-date, RFC 9110 10.2.3) as
 * a wait in milliseconds from NOW_REAL_MS, clamped to RETRY_AFTER_MIN_MS
 * .. RETRY_AFTER_MAX_MS.  -1 when VALUE is neither.
 */
long retry_after_ms(const char *value, int64_t now_real_ms);

/* A seed for retry_delay_ms's generator. */
uint64_t retry_seed(void);

#endif

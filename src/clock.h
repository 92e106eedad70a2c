/* clock.h: wall and monotonic milliseconds, and RFC 3339 formatting. */
#ifndef HOOKCAST_CLOCK_H
#define HOOKCAST_CLOCK_H

#include <stddef.h>
#include <stdint.h>

#define CLOCK_RFC3339_LEN sizeof("2026-11-23T05:43:39Z")

int64_t clock_real_ms(void);
/* CLOCK_MONOTONIC: what TTLs and timeouts are measured with. */
int64_t clock_mono_ms(void);
/* Formats MS since the epoch as "YYYY-MM-DDTHH:MM:SSZ" (UTC, whole seconds). */
void clock_rfc3339(int64_t ms, char buf[CLOCK_RFC3339_LEN]);

#endif

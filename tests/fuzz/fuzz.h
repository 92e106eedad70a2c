/* fuzz.h: what every libFuzzer harness shares: its input as strings, and a broken invariant as a crash. */
#ifndef HOOKCAST_FUZZ_H
#define HOOKCAST_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* libFuzzer calls it once an input; 0 keeps the input in the corpus. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * A broken invariant aborts, which libFuzzer reports as a crash and keeps
 * the input under -artifact_prefix.  Unlike assert() it never compiles out.
 */
#define FUZZ_CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "%s:%d: invariant broken: %s\n",	\
		    __FILE__, __LINE__, #cond);				\
		abort();						\
	}								\
} while (0)

/* DATA as a C string (the parsers see up to its first NUL); free() it. */
static inline char *
fuzz_string(const uint8_t *data, size_t size)
{
	char *s = calloc(1, size + 1);

	FUZZ_CHECK(s != NULL);
	if (size > 0)
		memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

/*
 * Cuts S in place at each SEP into at most MAX fields (the last keeps any
 * further SEPs); returns how many.
 */
static inline size_t
fuzz_split(char *s, char sep, char **field, size_t max)
{
	size_t n = 0;

	while (n < max) {
		char *next = n + 1 < max ? strchr(s, sep) : NULL;

		field[n++] = s;
		if (next == NULL)
			break;
		*next = '\0';
		s = next + 1;
	}
	return n;
}

/* 1 if the NUL-terminated BUF of LEN bytes has its NUL inside. */
static inline int
fuzz_terminated(const char *buf, size_t len)
{
	return memchr(buf, '\0', len) != NULL;
}

#endif

/* array.c: growing a malloc'd array by doubling. */
#include <stdint.h>
#include <stdlib.h>

#include "array.h"

void *
array_grow(void *p, size_t *cap, size_t need, size_t elem)
{
	size_t ncap = *cap > 0 ? *cap : 16;

	if (need <= *cap)
		return p;
	while (ncap < need) {
		if (ncap > SIZE_MAX / 2)
			return NULL;
		ncap *= 2;
	}
	if (elem == 0 || ncap > SIZE_MAX / elem)
		return NULL;
	if ((p = realloc(p, ncap * elem)) == NULL)
		return NULL;
	*cap = ncap;
	return p;
}

/* deadletters.h: GET /deadLetters rendered as text or JSON. */
#ifndef HOOKCAST_DEADLETTERS_H
#define HOOKCAST_DEADLETTERS_H

#include <stddef.h>

#include "store.h"

/*
 * Renders the N dead letters ROWS as JSON ({"dead_letters": [...]}) or, if
 * not JSON, as one text line each.  Returns a malloc'd buffer of *len
 * bytes (the caller frees it), or NULL when out of memory.
 */
char *deadletters_render(const struct store_dead *rows, size_t n, int json,
    size_t *len);
/*
 * The same, for a page that ended at NEXT (the cursor for ?after= of the
 * next page; NULL for the last page): in JSON, a "next" member.
 */
char *deadletters_render_page(const struct store_dead *rows, size_t n, int json,
    const char *next, size_t *len);

#endif

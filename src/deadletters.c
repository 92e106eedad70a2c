/* deadletters.c: GET /deadLetters rendered as text or JSON. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "array.h"
#include "clock.h"
#include "deadletters.h"

/* One dead letter as a JSON object appended to ARR. */
static int
render_json(const struct store_dead *d, cJSON *arr)
{
	char dead[40], first[40], last[40];
	cJSON *o = cJSON_CreateObject();

	if (o == NULL || !cJSON_AddItemToArray(arr, o))
		return -1;
	clock_rfc3339(d->sd_dead_at, dead);
	clock_rfc3339(d->sd_first_at, first);
	clock_rfc3339(d->sd_last_at, last);
	if (cJSON_AddStringToObject(o, "id", d->sd_msg_id) == NULL ||
	    cJSON_AddStringToObject(o, "address", d->sd_address) == NULL ||
	    cJSON_AddNumberToObject(o, "attempts", d->sd_attempts) == NULL ||
	    cJSON_AddNumberToObject(o, "last_status", (double)d->sd_status) ==
		NULL ||
	    cJSON_AddStringToObject(o, "last_error", d->sd_error) == NULL ||
	    (d->sd_first_at ?
		    cJSON_AddStringToObject(o, "first_attempt", first) :
		    cJSON_AddNullToObject(o, "first_attempt")) == NULL ||
	    (d->sd_last_at ?
		    cJSON_AddStringToObject(o, "last_attempt", last) :
		    cJSON_AddNullToObject(o, "last_attempt")) == NULL ||
	    cJSON_AddStringToObject(o, "dead_at", dead) == NULL ||
	    cJSON_AddStringToObject(o, "reason", d->sd_reason) == NULL)
		return -1;
	return 0;
}

/* One dead letter as a text line appended to *buf. */
static int
render_text(const struct store_dead *d, char **buf, size_t *len, size_t *cap)
{
	char dead[40], line[1200], *p;
	int n;

	clock_rfc3339(d->sd_dead_at, dead);
	n = snprintf(line, sizeof(line),
	    "%s  %s  attempts=%d  last=\"%s\"  "
	    "dead=%s  reason=%s\n",
	    d->sd_msg_id, d->sd_address, d->sd_attempts,
	    *d->sd_error ? d->sd_error : "-", dead, d->sd_reason);
	if (n < 0)
		return -1;
	if ((size_t)n >= sizeof(line))
		n = sizeof(line) - 1;
	if ((p = array_grow(*buf, cap, *len + (size_t)n + 1, 1)) == NULL)
		return -1;
	*buf = p;
	memcpy(*buf + *len, line, (size_t)n + 1);
	*len += (size_t)n;
	return 0;
}

char *
deadletters_render(const struct store_dead *rows, size_t n, int json,
    size_t *len)
{
	return deadletters_render_page(rows, n, json, NULL, len);
}

char *
deadletters_render_page(const struct store_dead *rows, size_t n, int json,
    const char *next, size_t *len)
{
	cJSON *root = NULL, *arr;
	char *buf = NULL;
	size_t cap = 0;

	*len = 0;
	if (json) {
		if ((root = cJSON_CreateObject()) == NULL ||
		    (arr = cJSON_AddArrayToObject(root, "dead_letters")) ==
			NULL)
			goto fail;
		for (size_t i = 0; i < n; i++)
			if (render_json(&rows[i], arr) == -1)
				goto fail;
		if (next != NULL &&
		    cJSON_AddStringToObject(root, "next", next) == NULL)
			goto fail;
		if ((buf = cJSON_PrintUnformatted(root)) == NULL)
			goto fail;
		cJSON_Delete(root);
		*len = strlen(buf);
		return buf;
	}
	for (size_t i = 0; i < n; i++)
		if (render_text(&rows[i], &buf, len, &cap) == -1)
			goto fail;
	if (buf == NULL && (buf = strdup("")) == NULL)
		goto fail;
	return buf;

fail:
	cJSON_Delete(root);
	free(buf);
	*len = 0;
	return NULL;
}

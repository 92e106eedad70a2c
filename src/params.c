/* params.c: the query-string and header values the API reads, checked apart from libmicrohttpd. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "msg.h"
#include "params.h"

int
params_limit(const char *s, long *out)
{
	char *end;
	long n;

	n = strtol(s, &end, 10);
	if (*s == '\0' || *end != '\0' || n < 1 || n > PARAMS_LIMIT_MAX)
		return -1;
	*out = n;
	return 0;
}

int
params_key_ok(const char *key)
{
	size_t n = strlen(key);

	if (n == 0 || n > PARAMS_KEY_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)key[i] < 0x20 ||
		    (unsigned char)key[i] > 0x7e)
			return 0;
	return 1;
}

unsigned long long
params_content_length(const char *cl)
{
	char *end;

	if (cl == NULL)
		return 0;
	return strtoull(cl, &end, 10);
}

int
params_ctype_ok(const char *ctype)
{
	for (const unsigned char *p = (const unsigned char *)ctype; *p != '\0';
	     p++)
		if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
			return 0;
	return 1;
}

int
params_wants_json(const char *accept)
{
	return accept != NULL && strstr(accept, "application/json") != NULL;
}

const char *
params_path(const char *url)
{
	const char *p;

	if (strncasecmp(url, "http://", 7) == 0)
		p = url + 7;
	else if (strncasecmp(url, "https://", 8) == 0)
		p = url + 8;
	else
		return url;
	p += strcspn(p, "/");
	return *p != '\0' ? p : "/";
}

int
params_method_allowed(const char *allow, const char *method)
{
	size_t n = strlen(method);
	const char *p;

	for (p = allow; n > 0 && (p = strstr(p, method)) != NULL; p += n)
		if ((p == allow || p[-1] == ' ') &&
		    (p[n] == ',' || p[n] == '\0'))
			return 1;
	return 0;
}

void
params_topic_add(struct params_topics *pt, const char *value)
{
	if (pt->pt_n == TOPICS_MAX)
		pt->pt_over = 1;
	else
		pt->pt_v[pt->pt_n++] = value != NULL ? value : "";
}

enum topics_status
params_topics_parse(const struct params_topics *pt, int patterns,
    struct topics **out, char err[TOPICS_ERRLEN])
{
	*out = NULL;
	if (pt->pt_over) {
		snprintf(err, TOPICS_ERRLEN, "Error: More than %d topics.",
		    TOPICS_MAX);
		return TOPICS_INVALID;
	}
	return topics_parse(pt->pt_v, pt->pt_n, patterns, out, err);
}

const char *
params_publish_check(const char *ctype, const char *key)
{
	if (ctype != NULL && strlen(ctype) > MSG_CTYPE_MAX)
		return "Content-Type longer than 256 bytes.";
	if (ctype != NULL && !params_ctype_ok(ctype))
		return "Content-Type holds a control character.";
	if (key != NULL && !params_key_ok(key))
		return "Idempotency-Key must be 1 to 255 printable ASCII "
		       "characters.";
	return NULL;
}

/* dashboard.h: the live dashboard's files, embedded in the binary. */
#ifndef HOOKCAST_DASHBOARD_H
#define HOOKCAST_DASHBOARD_H

#include <stddef.h>

enum dashboard_part { DASHBOARD_PAGE, DASHBOARD_SCRIPT, DASHBOARD_STYLE };
#define DASHBOARD_PARTS 3

struct dashboard_file {
	const char *df_path; /* where api.c serves it */
	const char *df_ctype;
	const char *df_data; /* static, df_end - df_data bytes */
	const char *df_end;  /* a NUL, not part of the file */
};

/* One of the three files; never NULL. */
const struct dashboard_file *dashboard_file(enum dashboard_part part);

/*
 * The page's Content-Security-Policy: its script and style only from its
 * own origin (no inline script), fetches only to its origin, no frames,
 * forms, plugins or other origins at all.
 */
#define DASHBOARD_CSP \
	"default-src 'none'; script-src 'self'; " \
	"style-src 'self'; connect-src 'self'; img-src 'self' data:; " \
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

#endif

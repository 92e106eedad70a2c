/* dashboard.c: the live dashboard's files, as dashboard_files.S embeds them. */
#include "dashboard.h"

extern const char dashboard_html_start[], dashboard_html_end[];
extern const char dashboard_js_start[], dashboard_js_end[];
extern const char dashboard_css_start[], dashboard_css_end[];

static const struct dashboard_file files[DASHBOARD_PARTS] = {
	[DASHBOARD_PAGE] = { "/", "text/html; charset=utf-8",
	    dashboard_html_start, dashboard_html_end },
	[DASHBOARD_SCRIPT] = { "/dashboard.js",
	    "text/javascript; charset=utf-8", dashboard_js_start,
	    dashboard_js_end },
	[DASHBOARD_STYLE] = { "/dashboard.css", "text/css; charset=utf-8",
	    dashboard_css_start, dashboard_css_end },
};

const struct dashboard_file *
dashboard_file(enum dashboard_part part)
{
	return &files[part];
}

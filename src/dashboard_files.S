/*
 * dashboard_files.S: the dashboard's page, script and style, put into the
 * binary as they are in src/dashboard/ by the assembler's .incbin (paths
 * are relative to the directory make runs in, the top of the tree).  Each
 * is followed by a NUL that is not part of it, so it is also a C string.
 */
	.section .rodata
	.balign 16

#define FILE(name, path)		\
	.global name##_start;		\
	.global name##_end;		\
name##_start:				\
	.incbin path;			\
name##_end:				\
	.byte 0;			\
	.balign 16

FILE(dashboard_html, "src/dashboard/index.html")
FILE(dashboard_js, "src/dashboard/dashboard.js")
FILE(dashboard_css, "src/dashboard/dashboard.css")

	/* No executable stack for the objects linked with this one. */
	.section .note.GNU-stack,"",%progbits

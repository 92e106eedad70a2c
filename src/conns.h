/* conns.h: the front end's open connections: deadlines for slow clients, and room at the limit. */
#ifndef HOOKCAST_CONNS_H
#define HOOKCAST_CONNS_H

#include <stddef.h>
#include <stdint.h>

struct conns;
struct conn;

/*
 * Connections cut but not yet closed still hold a socket; past this many
 * over the limit a new one is refused rather than admitted for another cut.
 */
#define CONNS_SLACK 64

/* The deadlines, in ms and bytes a second; a reload may change them. */
struct conns_limits {
	int64_t cl_header_ms; /* header_timeout */
	int64_t
	    cl_idle_ms; /* client_timeout: a kept-alive connection's next request line */
	int64_t cl_body_ms;  /* body_timeout */
	size_t cl_body_rate; /* body_min_rate: bytes a second, at least 1 */
};

/* What conns_sweep and conns_admit did since the last conns_take_counts. */
struct conns_counts {
	long cc_header;	 /* cut: headers late */
	long cc_body;	 /* cut: body below the minimum rate */
	long cc_idle;	 /* cut: a kept-alive connection's next request late */
	long cc_evicted; /* cut at the limit to make room for a new one */
	long cc_refused; /* refused at the limit: nothing incomplete to cut */
	long cc_per_ip;	 /* refused by libmicrohttpd: max_conns_per_ip */
};

/*
 * A table for at most MAX connections at a time, judged by LIM.  NULL if
 * out of memory.
 */
struct conns *conns_new(long max, const struct conns_limits *lim);
/* Frees the table and what is left in it; the sockets are not touched.  NULL-safe. */
void conns_free(struct conns *cs);
/* Reload: deadlines from now on are judged by LIM. */
void conns_set_limits(struct conns *cs, const struct conns_limits *lim);

/*
 * Whether a new connection may come in at NOW: 1 while fewer than MAX are
 * open; at MAX, 1 after cutting the oldest connection whose headers (else:
 * whose body) are still arriving, 0 when every open connection is idle
 * between requests or being answered.  Any thread.
 */
int conns_admit(struct conns *cs, int64_t now);

/*
 * A connection accepted on socket FD at NOW, its headers due by NOW +
 * header timeout.  NULL if out of memory: the connection is then not
 * judged, and the other calls accept NULL.  Called on the connection's
 * thread, like every conn_* call below.
 */
struct conn *conns_open(struct conns *cs, int fd, int64_t now);
/* The connection is closing: forgets it.  Before its socket is closed. */
void conns_close(struct conns *cs, struct conn *c);

/* A kept-alive connection's next request line has arrived: headers due. */
void conn_request_line(struct conn *c, int64_t now);
/* The handler's call for a request: N body bytes (0: headers or end). */
void conn_handler_call(struct conn *c, size_t n, int64_t now);
/* The request is answered: the connection waits for the next one. */
void conn_answered(struct conn *c, int64_t now);

/*
 * Cuts (shutdown(2), which libmicrohttpd sees as the client closing) every
 * connection past its deadline at NOW.  Returns when the next deadline
 * falls, at most NOW + 1 s.  Any thread.
 */
int64_t conns_sweep(struct conns *cs, int64_t now);
/* Counts a connection libmicrohttpd refused for its address's limit. */
void conns_refused_per_ip(struct conns *cs);
/* Moves the counts since the last call into OUT. */
void conns_take_counts(struct conns *cs, struct conns_counts *out);
/* Connections open now, and of them, cut and not yet closed. */
void conns_census(struct conns *cs, long *open, long *cut);

#endif

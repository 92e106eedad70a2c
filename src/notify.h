/* notify.h: telling the service manager (sd_notify) how the daemon is doing. */
#ifndef HOOKCAST_NOTIFY_H
#define HOOKCAST_NOTIFY_H

#include <stdint.h>

/*
 * Each call sends one datagram to $NOTIFY_SOCKET (a path, or "@name" in the
 * abstract namespace) and does nothing when it is unset, as outside
 * systemd.  Safe from any thread.  A failed send is logged, never fatal.
 * As with sd_notify(3), a send waits while the manager's socket is full:
 * a manager that stops reading holds up the caller.
 */

/* READY=1 with a STATUS= line: start-up, or a reload, is complete. */
void notify_ready(void);
/*
 * RELOADING=1 with MONOTONIC_USEC=now, as systemd.service(5) wants for a
 * reload; notify_ready() ends it, whether the new configuration was taken
 * or refused.
 */
void notify_reloading(void);
/* STOPPING=1 with a STATUS= line: shutdown has begun. */
void notify_stopping(void);
/* STATUS=: free text for `systemctl status` (newlines become spaces). */
void notify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * WATCHDOG=1, at most once per half the interval sd_watchdog_enabled()
 * reports ($WATCHDOG_USEC, when $WATCHDOG_PID is unset or is this process);
 * without a watchdog it returns at once.  Costs a clock read otherwise, so
 * the loop whose liveness it vouches for calls it on every turn.  Only the
 * delivery thread calls it: if that thread wedges, the pings stop and the
 * service manager restarts the daemon.
 */
void notify_watchdog(void);
/* The watchdog interval in microseconds, 0 when there is none. */
uint64_t notify_watchdog_usec(void);

#endif

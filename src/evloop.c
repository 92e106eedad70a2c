/* evloop.c: an epoll set that drives one libcurl multi handle. */
/*
 * libcurl's socket interface says which sockets to watch for what, and
 * when to call it back; this file does the watching with epoll, so that
 * each wake-up costs work in proportion to the sockets that are ready, not
 * to the transfers in flight.  (libcurl 7.88's curl_multi_perform() polls
 * every transfer in flight on every call, which cost more than the
 * deliveries themselves at a few hundred in flight.)  Idle connections stay
 * in the epoll set (struct fdslot).  Runs on its owner's thread; see
 * src/README.md.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>

#include "clock.h"
#include "evloop.h"
#include "log.h"

/*
 * What the epoll set holds for one descriptor.  For connections opened
 * through evloop_open_socket(), removal is lazy: when a connection goes
 * idle its registration stays, so reusing it for the next transfer needs
 * no epoll_ctl at all.  on_close() learns of every such close, so a slot
 * is never trusted for a descriptor number that was closed and reused.
 */
struct fdslot {
	uint32_t fs_events; /* registered in epoll, 0: not */
	uint8_t fs_conn;    /* opened by evloop_open_socket */
	uint8_t fs_want;    /* libcurl watches it now */
};

struct evloop {
	CURLM *ev_multi;
	int ev_epfd;		 /* the multi handle's sockets */
	int ev_wakefd;		 /* eventfd: evloop_wake() */
	int64_t ev_timer;	 /* libcurl's deadline, -1: none */
	struct fdslot *ev_slots; /* by descriptor */
	size_t ev_nslots;
	evloop_done_fn *ev_done;
	void *ev_arg;
};

#define EVENTS_MAX 256

static struct fdslot *
fd_slot(struct evloop *ev, int fd)
{
	static struct fdslot none;

	if (fd < 0)
		return &none;
	if ((size_t)fd >= ev->ev_nslots) {
		size_t n = ev->ev_nslots ? ev->ev_nslots : 256;
		struct fdslot *v;

		while (n <= (size_t)fd)
			n *= 2;
		if ((v = realloc(ev->ev_slots, n * sizeof(*v))) == NULL) {
			none = (struct fdslot){ 0 };
			return &none; /* then every change is a real syscall */
		}
		memset(v + ev->ev_nslots, 0, (n - ev->ev_nslots) * sizeof(*v));
		ev->ev_slots = v;
		ev->ev_nslots = n;
	}
	return &ev->ev_slots[fd];
}

static void
fd_watch(struct evloop *ev, int fd, uint32_t events)
{
	struct fdslot *fs = fd_slot(ev, fd);
	struct epoll_event ee = { .events = events, .data.fd = fd };

	fs->fs_want = 1;
	if (fs->fs_conn && fs->fs_events == events)
		return;
	if (epoll_ctl(ev->ev_epfd,
		fs->fs_events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ee) == -1 &&
	    epoll_ctl(ev->ev_epfd,
		fs->fs_events ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd, &ee) == -1) {
		log_warn("epoll_ctl failed", "fd=%d", fd);
		return;
	}
	fs->fs_events = events;
}

static void
fd_unwatch(struct evloop *ev, int fd)
{
	struct fdslot *fs = fd_slot(ev, fd);

	fs->fs_want = 0;
	if (fs->fs_conn)
		return; /* lazy: see struct fdslot */
	epoll_ctl(ev->ev_epfd, EPOLL_CTL_DEL, fd, NULL);
	fs->fs_events = 0;
}

static int
on_socket(CURL *e, curl_socket_t fd, int what, void *arg, void *known)
{
	struct evloop *ev = arg;

	(void)e;
	(void)known;
	if (what == CURL_POLL_REMOVE)
		fd_unwatch(ev, fd);
	else
		fd_watch(ev, fd,
		    ((what & CURL_POLL_IN) ? EPOLLIN : 0) |
			((what & CURL_POLL_OUT) ? EPOLLOUT : 0));
	return 0;
}

static int
on_timer(CURLM *multi, long timeout_ms, void *arg)
{
	struct evloop *ev = arg;

	(void)multi;
	ev->ev_timer = timeout_ms < 0 ? -1 : clock_mono_ms() + timeout_ms;
	return 0;
}

static int
on_close(void *arg, curl_socket_t fd)
{
	struct evloop *ev = arg;

	/* Closing drops the epoll registration too. */
	*fd_slot(ev, fd) = (struct fdslot){ 0 };
	return close(fd);
}

curl_socket_t
evloop_open_socket(struct evloop *ev, const struct curl_sockaddr *a)
{
	int fd;

	fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
	if (fd == -1)
		return CURL_SOCKET_BAD;
	*fd_slot(ev, fd) = (struct fdslot){ .fs_conn = 1 };
	return fd;
}

void
evloop_setup_easy(struct evloop *ev, CURL *e)
{
	curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, on_close);
	curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, ev);
}

int
evloop_add(struct evloop *ev, CURL *e)
{
	return curl_multi_add_handle(ev->ev_multi, e) == CURLM_OK ? 0 : -1;
}

void
evloop_remove(struct evloop *ev, CURL *e)
{
	curl_multi_remove_handle(ev->ev_multi, e);
}

void
evloop_set_maxconnects(struct evloop *ev, long n)
{
	curl_multi_setopt(ev->ev_multi, CURLMOPT_MAXCONNECTS, n);
}

void
evloop_set_max_streams(struct evloop *ev, long n)
{
	/* libcurl's default, 100, unless a subscriber may have more in flight. */
	curl_multi_setopt(ev->ev_multi, CURLMOPT_MAX_CONCURRENT_STREAMS,
	    n > 100 ? n : 100L);
}

void
evloop_wake(struct evloop *ev)
{
	uint64_t one = 1;

	/* EAGAIN means the counter is already non-zero: the loop will wake. */
	if (write(ev->ev_wakefd, &one, sizeof(one)) < 0)
		return;
}

/* How long epoll may sleep: until libcurl's timer, at most MAX_MS. */
static int
wait_ms(const struct evloop *ev, int64_t now, int max_ms)
{
	if (ev->ev_timer < 0)
		return max_ms;
	if (ev->ev_timer <= now)
		return 0;
	return ev->ev_timer - now < max_ms ? (int)(ev->ev_timer - now) : max_ms;
}

static void
reap_done(struct evloop *ev)
{
	struct {
		CURL *e;
		CURLcode rc;
	} done[64];
	struct CURLMsg *cm;
	int left, n;

	/*
	 * Take the messages before removing their handles: in libcurl 7.88
	 * curl_multi_remove_handle() walks the messages still unread, which
	 * made a large batch of completions cost the square of its size.
	 */
	do {
		n = 0;
		while (n < (int)(sizeof(done) / sizeof(done[0])) &&
		    (cm = curl_multi_info_read(ev->ev_multi, &left)) != NULL)
			if (cm->msg == CURLMSG_DONE) {
				done[n].e = cm->easy_handle;
				done[n++].rc = cm->data.result;
			}
		for (int i = 0; i < n; i++)
			ev->ev_done(ev->ev_arg, done[i].e, done[i].rc);
	} while (n > 0);
}

void
evloop_poll(struct evloop *ev, int64_t now, int max_ms)
{
	struct epoll_event ee[EVENTS_MAX];
	uint64_t count;
	int running, n;

	n = epoll_wait(ev->ev_epfd, ee, EVENTS_MAX, wait_ms(ev, now, max_ms));
	for (int i = 0; i < n; i++) {
		int fd = ee[i].data.fd, mask = 0;

		if (fd == ev->ev_wakefd) {
			if (read(ev->ev_wakefd, &count, sizeof(count)) < 0)
				continue;
			continue;
		}
		if (!fd_slot(ev, fd)->fs_want) {
			/* An idle connection closed or spoke: stop watching. */
			epoll_ctl(ev->ev_epfd, EPOLL_CTL_DEL, fd, NULL);
			fd_slot(ev, fd)->fs_events = 0;
			continue;
		}
		if (ee[i].events & EPOLLIN)
			mask |= CURL_CSELECT_IN;
		if (ee[i].events & EPOLLOUT)
			mask |= CURL_CSELECT_OUT;
		if (ee[i].events & (EPOLLERR | EPOLLHUP))
			mask |= CURL_CSELECT_ERR;
		curl_multi_socket_action(ev->ev_multi, fd, mask, &running);
	}
	if (ev->ev_timer >= 0 && ev->ev_timer <= clock_mono_ms()) {
		ev->ev_timer = -1;
		curl_multi_socket_action(ev->ev_multi, CURL_SOCKET_TIMEOUT, 0,
		    &running);
	}
	reap_done(ev);
}

struct evloop *
evloop_new(evloop_done_fn *done, void *arg)
{
	struct evloop *ev;

	if ((ev = calloc(1, sizeof(*ev))) == NULL) {
		log_error("cannot start delivery", "reason=nomem");
		return NULL;
	}
	ev->ev_done = done;
	ev->ev_arg = arg;
	ev->ev_timer = -1;
	ev->ev_epfd = ev->ev_wakefd = -1;
	if ((ev->ev_multi = curl_multi_init()) == NULL) {
		log_error("cannot start delivery",
		    "reason=\"curl_multi_init "
		    "failed\"");
		goto fail;
	}
	if ((ev->ev_epfd = epoll_create1(EPOLL_CLOEXEC)) == -1 ||
	    (ev->ev_wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1 ||
	    epoll_ctl(ev->ev_epfd, EPOLL_CTL_ADD, ev->ev_wakefd,
		&(struct epoll_event){ .events = EPOLLIN,
		    .data.fd = ev->ev_wakefd }) == -1) {
		log_warn("cannot start delivery", NULL);
		goto fail;
	}
	curl_multi_setopt(ev->ev_multi, CURLMOPT_SOCKETFUNCTION, on_socket);
	curl_multi_setopt(ev->ev_multi, CURLMOPT_SOCKETDATA, ev);
	curl_multi_setopt(ev->ev_multi, CURLMOPT_TIMERFUNCTION, on_timer);
	curl_multi_setopt(ev->ev_multi, CURLMOPT_TIMERDATA, ev);
	/* libcurl's default, spelt out: HTTP/2 transfers share connections. */
	curl_multi_setopt(ev->ev_multi, CURLMOPT_PIPELINING,
	    (long)CURLPIPE_MULTIPLEX);
	return ev;
fail:
	evloop_free(ev);
	return NULL;
}

void
evloop_free(struct evloop *ev)
{
	if (ev == NULL)
		return;
	/* Cached connections close through on_close, which needs the slots. */
	curl_multi_cleanup(ev->ev_multi);
	free(ev->ev_slots);
	if (ev->ev_epfd >= 0)
		close(ev->ev_epfd);
	if (ev->ev_wakefd >= 0)
		close(ev->ev_wakefd);
	free(ev);
}

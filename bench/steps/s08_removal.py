"""Step 8, removals with a backlog (issue 13, part 3): what removing
subscribers that are owed a large backlog costs the publishers, and a
restart after kill -9.

The backlog: --removal-subs subscribers (100) on ports of one hanging
listener (bench/hang.py: accepts, reads, never answers), so that each holds
max_in_flight deliveries in flight and everything else stays queued, and
nothing is ever delivered; --removal-pending messages (20,000) published to
them all. hookcast runs with keepalive_ttl and reap_interval of a day (no
eviction) and delivery_timeout 5 s: the hanging deliveries time out and
become retries, the subscribers turn failing and only probe, and everything
stays pending (the retry schedule runs for hours). A removed subscriber is
gone from the store once its last delivery in flight has ended, so the
removals settle within delivery_timeout.

1. Removals under load: a publisher (one keep-alive connection, a publish
   every 10 ms) runs while all the subscribers are deregistered (32
   connections at once), and goes on until the removals have settled (at
   least delivery_timeout + 2 s after the last deregistration answered, and
   hookcast_dead_letters_total unchanged for 2 s). Figures: the max and p99
   latency of the publishes that overlapped the removals (target: every one
   under 100 ms), their count, and the deregistrations' times.
2. Restart with the backlog: the subscribers registered again and the
   backlog published again; kill -9; a hookcast started on the same data
   directory. Figures: the time from its start to the first /healthz 200
   (target <= 2 s) and to /readyz 200 (target <= 5 s).
3. Restart after removals: on that restarted hookcast, every subscriber
   deregistered and kill -9 as soon as the last deregistration answered (the
   removals committed, their backlog perhaps not yet dead-lettered); the
   same two times, same targets.

Checks (a failed one fails the bench; a missed target does not): every
publish answered 200; before each removal, and after phase 2's restart,
every subscriber shows at least the backlog pending (queued + in flight +
retrying) and nothing delivered; every deregistration answered 200; the
listing is empty after phase 1's removals and after phase 3's restart;
/healthz and /readyz answer within --restart-max seconds."""
import http.client
import math
import re
import threading
import time
import urllib.parse

from common import StepFailed, HangServer, Hookcast, fmt, http_get
import helpers

NUMBER, NAME, ONCE, USES_HOOKCAST = 8, "removal", True, True
TITLE = "removing 100 subscribers x 20,000 pending messages; restart after kill -9"

DELIVERY_TIMEOUT = 5
FLAGS = ["--keepalive-ttl", "1d", "--reap-interval", "1d", "--delivery-timeout", str(DELIVERY_TIMEOUT)]
DEREG_CONNS = 32          # below max_conns_per_ip (64), room left for the rest
PUBLISH_EVERY = 0.01      # the publisher's pause between publishes (s)


def post(conn, path, body=b""):
    conn.request("POST", path, body=body,
                 headers={"Content-Type": "application/octet-stream"})
    r = conn.getresponse()
    r.read()
    return r.status


def publish_count(url, count, conns=8):
    """Publish COUNT 256-byte messages over CONNS keep-alive connections (a
    503 is tried again 10 ms later): the answers other than 200 and 503."""
    host, port = helpers.split_url(url)
    body = b"x" * 255 + b"\n"
    left = [count]
    lock = threading.Lock()
    bad = []

    def worker():
        c = http.client.HTTPConnection(host, port, timeout=300)
        while True:
            with lock:
                if left[0] == 0:
                    break
                left[0] -= 1
            while True:
                try:
                    st = post(c, "/sendMessage", body)
                except (OSError, http.client.HTTPException) as e:
                    c.close()
                    bad.append(str(e))
                    break
                if st != 503:
                    if st != 200:
                        bad.append("HTTP %d" % st)
                    break
                time.sleep(0.01)
        c.close()

    threads = [threading.Thread(target=worker) for _ in range(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return bad


def deregister_all(url, addrs):
    """DELETE /deregister for every address, DEREG_CONNS at a time: (the
    seconds each took, the failures)."""
    host, port = helpers.split_url(url)
    times, bad = [], []
    lock = threading.Lock()

    def worker(chunk):
        c = http.client.HTTPConnection(host, port, timeout=600)
        for a in chunk:
            t = time.monotonic()
            try:
                c.request("DELETE", "/deregister?address=" + urllib.parse.quote(a, safe=""))
                r = c.getresponse()
                r.read()
                st = r.status
            except (OSError, http.client.HTTPException) as e:
                c.close()
                st = str(e)
            with lock:
                times.append(time.monotonic() - t)
                if st != 200:
                    bad.append("%s: %s" % (a, st))
        c.close()

    threads = [threading.Thread(target=worker, args=(addrs[i::DEREG_CONNS],))
               for i in range(min(DEREG_CONNS, len(addrs)))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return times, bad


class Publisher(threading.Thread):
    """Publishes every PUBLISH_EVERY s on one keep-alive connection and keeps
    (start, seconds, status) of each."""

    def __init__(self, url):
        super().__init__(daemon=True)
        self.host, self.port = helpers.split_url(url)
        self.samples = []
        self.halt = threading.Event()

    def run(self):
        body = b"x" * 255 + b"\n"
        c = None
        while not self.halt.is_set():
            if c is None:
                c = http.client.HTTPConnection(self.host, self.port, timeout=600)
            t = time.monotonic()
            try:
                st = post(c, "/sendMessage", body)
            except (OSError, http.client.HTTPException) as e:
                c.close()
                c = None
                st = str(e)
            self.samples.append((t, time.monotonic() - t, st))
            self.halt.wait(PUBLISH_EVERY)
        if c is not None:
            c.close()


def dead_letters_total(hc):
    code, body = http_get(hc.url + "/metrics", 10)
    if code == 200:
        m = re.search(rb"^hookcast_dead_letters_total (\d+)", body, re.M)
        if m:
            return int(m.group(1))
    return None


def p99(values):
    v = sorted(values)
    return v[max(0, math.ceil(0.99 * len(v)) - 1)] if v else None


def check_backlog(b, hc, tag, addrs, want):
    """Every subscriber in ADDRS listed with at least WANT pending and none
    delivered: the backlog is in place."""
    subs = {s.get("address"): s for s in hc.listing()}
    short = []
    for a in addrs:
        s = subs.get(a)
        if s is None:
            short.append("%s not listed" % a)
            continue
        pending = sum(s.get(k) or 0 for k in ("queued", "in_flight", "retrying"))
        if pending < want or s.get("delivered"):
            short.append("%s: pending %d, delivered %s" % (a, pending, s.get("delivered")))
    if short:
        b.problem("%s: %d of %d subscribers without the %d pending expected; first: %s"
                  % (tag, len(short), len(addrs), want, short[0]))
        return False
    return True


def wait_backlog(b, hc, tag, addrs, want, secs=120):
    """Wait until the listing shows the backlog (publishes are answered once
    committed; the listing follows as delivery takes them)."""
    deadline = time.monotonic() + secs
    while time.monotonic() < deadline:
        subs = {s.get("address"): s for s in hc.listing()}
        if all(sum(subs.get(a, {}).get(k) or 0 for k in ("queued", "in_flight", "retrying")) >= want
               for a in addrs):
            break
        time.sleep(0.5)
    return check_backlog(b, hc, tag, addrs, want)


def build_backlog(b, hc, tag, addrs, m):
    t0 = time.monotonic()
    hc.register(addrs)
    bad = publish_count(hc.url, m)
    if bad:
        b.problem("%s: %d of %d publishes failed building the backlog; first: %s" % (tag, len(bad), m, bad[0]))
        raise StepFailed(tag)
    if not wait_backlog(b, hc, tag, addrs, m):
        raise StepFailed(tag)
    secs = time.monotonic() - t0
    b.say("  %s: %d subscribers x %d pending in %.1f s" % (tag, len(addrs), m, secs))
    return secs


def restart(b, binary, old, tag, flags):
    """Start hookcast on OLD's data directory (a fresh port): the seconds
    from the start to the first /healthz 200 and to the first /readyz 200,
    and the hookcast."""
    hc = Hookcast(b, binary, tag, flags + ["--log-level", "info"], data_dir=old.data,
                  port=helpers.freeports(1)[0])
    limit = b.o.restart_max
    t0 = time.monotonic()
    hc.spawn()
    got = {}
    for probe in ("healthz", "readyz"):
        while True:
            if hc.p.poll() is not None:
                b.problem("%s: hookcast exited (status %d) while restarting: %s" % (tag, hc.p.returncode, hc.log_tail(3)))
                raise StepFailed(tag)
            left = limit - (time.monotonic() - t0)
            if left <= 0:
                b.problem("%s: no /%s 200 within %d s of the restart" % (tag, probe, limit))
                hc.stop()
                raise StepFailed(tag)
            code, _ = http_get("%s/%s" % (hc.url, probe), max(1, left))
            if code == 200:
                got[probe] = time.monotonic() - t0
                break
            time.sleep(0.01)
    with open(hc.log, errors="replace") as f:
        m = re.findall(r"removed_before=(\d+)", f.read())
    # hookcast logs how many removals it had to finish ("store restored ...
    # removed_before=N", at info); a later layout may log otherwise.
    done = m[-1] if m else "n/a"
    b.say("  %s: /healthz 200 after %.3f s, /readyz 200 after %.3f s; removals it finished: %s" % (
        tag, got["healthz"], got["readyz"], done))
    return (fmt(got["healthz"], 3), fmt(got["readyz"], 3), done), hc


def run(b, binary, variant, rnd):
    n, m = b.o.removal_subs, b.o.removal_pending
    tag = "run8" + ("" if variant == "new" else "-" + variant)
    b.say("step 8: %d hanging subscribers x %d pending messages: publish latency while all are deregistered; restarts after kill -9" % (n, m))
    hang = HangServer(b, n, tag)
    fig = {"subs": n, "pending": m}
    hc = None
    try:
        hc = Hookcast(b, binary, tag, FLAGS).start()
        addrs = hang.addrs
        fig["build_secs"] = fmt(build_backlog(b, hc, tag, addrs, m), 1)

        # 1. Removals under load.
        pub = Publisher(hc.url)
        pub.start()
        time.sleep(1)
        dead0 = dead_letters_total(hc)
        t_first = time.monotonic()
        dereg, bad = deregister_all(hc.url, addrs)
        t_last = time.monotonic()
        if bad:
            b.problem("%s: %d of %d deregistrations failed; first: %s" % (tag, len(bad), n, bad[0]))
        # Settled: the last delivery in flight ended (delivery_timeout) and
        # 2 s more past the last answer, and no dead letter added for 2 s.
        seen, t_same = dead_letters_total(hc), time.monotonic()
        while time.monotonic() - t_last < b.o.restart_max:
            time.sleep(0.5)
            now_dead = dead_letters_total(hc)
            if now_dead != seen:
                seen, t_same = now_dead, time.monotonic()
            if time.monotonic() - t_last >= DELIVERY_TIMEOUT + 2 and time.monotonic() - t_same >= 2:
                break
        # The publisher's last publish is answered once the writer got past
        # every removal's operations (one queue, in order): waiting for it
        # also leaves the next phase a store with the removals done.
        t_settled = time.monotonic()
        pub.halt.set()
        pub.join(b.o.restart_max)
        if pub.is_alive():
            b.problem("%s: a publish still unanswered %d s after the removals settled" % (tag, b.o.restart_max))
            raise StepFailed(tag)
        during = [s for s in pub.samples if s[0] + s[1] >= t_first and s[0] <= t_settled]
        before = [s for s in pub.samples if s[0] + s[1] < t_first]
        failed = [s for s in pub.samples if s[2] != 200]
        if failed:
            b.problem("%s: %d of %d concurrent publishes not answered 200; first: %s"
                      % (tag, len(failed), len(pub.samples), failed[0][2]))
        lat = [s[1] for s in during]
        fig.update({"pub_n": len(during),
                    "pub_max_ms": fmt(max(lat) * 1000, 1) if lat else None,
                    "pub_p99_ms": fmt(p99(lat) * 1000, 1) if lat else None,
                    "pub_before_p99_ms": fmt(p99([s[1] for s in before]) * 1000, 1) if before else "n/a",
                    "dereg_secs": fmt(t_last - t_first, 2),
                    "dereg_max_ms": fmt(max(dereg) * 1000, 1) if dereg else "n/a",
                    "settle_secs": fmt(t_settled - t_first, 1),
                    "dead_added": (seen - dead0) if None not in (seen, dead0) else "n/a"})
        b.say("  %s: %d deregistrations in %s s (slowest %s ms); %d publishes overlapped the removals (%s s to settle): max %s ms, p99 %s ms (p99 before them: %s ms); dead letters added %s"
              % (tag, n, fig["dereg_secs"], fig["dereg_max_ms"], fig["pub_n"], fig["settle_secs"],
                 fig["pub_max_ms"], fig["pub_p99_ms"], fig["pub_before_p99_ms"], fig["dead_added"]))
        left = len(hc.listing())
        if left:
            b.problem("%s: %d subscribers still listed after the removals" % (tag, left))

        # 2. kill -9 with the backlog registered; restart.
        build_backlog(b, hc, tag, addrs, m)
        hc.kill9()
        fig["restart1"], hc = restart(b, binary, hc, tag + "-restart1", FLAGS)
        check_backlog(b, hc, tag + "-restart1", addrs, m)

        # 3. Deregister them all, kill -9 at the last answer; restart.
        _, bad = deregister_all(hc.url, addrs)
        hc.kill9()
        if bad:
            b.problem("%s: %d of %d deregistrations failed before the kill; first: %s" % (tag, len(bad), n, bad[0]))
        fig["restart2"], hc = restart(b, binary, hc, tag + "-restart2", FLAGS)
        left = len(hc.listing())
        if left:
            b.problem("%s: %d subscribers listed after a restart that followed their removal" % (tag + "-restart2", left))
        fig["hwm"] = hc.mib("VmHWM")
        hang.stop()
        du_run = hc.du()
        hc.stop()
        hc = None
        fig["du"] = "%s KiB" % du_run
    finally:
        hang.stop()
        if hc is not None and hc.p is not None:
            hc.stop()
    return fig

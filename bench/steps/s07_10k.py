"""Step 7, 10,000 subscribers: a fresh hookcast with 10,000 registered
(synthetic loopback addresses 127.a.b.c:8080, nothing published). Figures:
RSS (<= 50 MB) and the time of GET /listSubscribers?format=json, median of 5
(< 100 ms). Checks: the listing shows 10,000 and answers 200."""
import http.client
import time

from common import Hookcast, StepFailed, fmt
import helpers

NUMBER, NAME, ONCE, USES_HOOKCAST = 7, "10k", True, True
TITLE = "10,000 registered subscribers"


def run(b, binary, variant, rnd):
    n_subs = b.o.subs_10k
    tag = "run7" + ("" if variant == "new" else "-" + variant)
    b.say("step 7: fresh hookcast, %d subscribers, RSS and JSON listing time" % n_subs)
    hc = Hookcast(b, binary, tag).start()
    t0 = time.monotonic()
    try:
        helpers.register_all(hc.url, helpers.synthetic(n_subs), nconn=4)
    except RuntimeError as e:
        b.problem("%s: registering %d subscribers failed: %s" % (tag, n_subs, e))
        raise StepFailed(tag)
    reg_secs = time.monotonic() - t0
    n = hc.stats()[0]
    if n != n_subs:
        b.problem("%s: listing shows %d subscribers, expected %d" % (tag, n, n_subs))
    fig = {"rss": hc.mib("VmRSS")}
    times, size = [], 0
    for _ in range(5):
        c = http.client.HTTPConnection("127.0.0.1", hc.port, timeout=30)
        t = time.monotonic()
        c.request("GET", "/listSubscribers?format=json")
        r = c.getresponse()
        size = len(r.read())
        times.append(time.monotonic() - t)
        c.close()
        if r.status != 200:
            b.problem("%s: listing answered HTTP %d" % (tag, r.status))
    fig["ms"] = fmt(sorted(times)[2] * 1000, 1)
    fig["detail"] = "registered in %s s; listing %d bytes; times (s): %s" % (
        fmt(reg_secs, 2), size, " ".join("%.6f" % t for t in times))
    b.say("  %s: RSS %s MiB, listing median %s ms (%s)" % (tag, fig["rss"], fig["ms"], fig["detail"]))
    if not hc.alive():
        raise StepFailed(tag)
    du_run = hc.du()
    hc.stop()
    if du_run is not None:
        fig["detail"] += "; data dir %s→%s KiB (running → after exit)" % (du_run, hc.du())
        b.say("  %s: data dir %s→%s KiB (running → after exit)" % (tag, du_run, hc.du()))
        hc.db_left()
    return fig

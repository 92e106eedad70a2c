"""Step 2, ingest: a fresh hookcast with no subscribers (durability as
--durability), wrk shaped like step 1's (-t2 -c64 by default) publishing
256-byte bodies to /sendMessage. Figures: publishes answered 200 per second
(its ratio to step 1's in the same round is judged, >= 0.4), latency p50 and
p99, CPU, peak RSS, the data directory's size. Checks: every publish answered
200, no socket error; with no subscriber, hookcast.db keeps no message after
a clean exit (an observation)."""
import os
import subprocess

from common import Hookcast, finish, fmt, run_wrk, wrk_window, BODY_BYTES

NUMBER, NAME, ONCE, USES_HOOKCAST = 2, "ingest", False, True
TITLE = "ingest: hookcast with no subscribers"


def run(b, binary, variant, rnd):
    o = b.o
    tag = "run2-r%d%s" % (rnd, "" if variant == "new" else "-" + variant)
    out = os.path.join(b.tmp, "wrk-%s.txt" % tag)
    dnote = ", durability " + o.durability if o.store else ""
    b.say("step 2 (round %d/%d): ingest, hookcast with no subscribers%s, wrk -t%d -c%d -> /sendMessage"
          % (rnd, o.rounds, dnote, o.ingest_threads, o.ingest_conns))
    hc = Hookcast(b, binary, tag).start()
    w, secs, cpu = wrk_window(b, hc, tag, lambda: run_wrk(
        b, o.ingest_threads, o.ingest_conns, o.duration, hc.url + "/sendMessage", out), out)
    ok, req = w["ok200"], w["requests"]
    fig = {"rps": round(ok / secs), "non200": req - ok}
    fig["detail"] = ("%d answered 200 of %d in %s s, %d of them 503; latency p50 %s ms, p99 %s ms; hookcast CPU %s s/s; peak RSS %s MiB"
                     % (ok, req, fmt(secs, 1), w["s503"], fmt(w["p50_us"] / 1000, 2),
                        fmt(w["p99_us"] / 1000, 2), fmt(cpu, 2), hc.mib("VmHWM")))
    if fig["non200"]:
        b.problem("%s: %d of %d publishes not answered 200 (%d of them 503)" % (tag, fig["non200"], req, w["s503"]))
    b.say("  %s: %d publishes/s answered 200; %s" % (tag, fig["rps"], fig["detail"]))
    left = finish(b, hc, fig, tag)
    if "du" in fig:
        b.say("  %s: ... for %d bodies of %d B (%d KiB)" % (tag, ok, BODY_BYTES, round(ok * BODY_BYTES / 1024)))
    # What the ingest wrote must not be written back in the next window.
    subprocess.run(["sync"])
    if left not in (None, 0, "n/a"):
        b.note("%s: %s of %d messages left in hookcast.db after a clean exit, with no subscriber registered" % (tag, left, ok))
    return fig

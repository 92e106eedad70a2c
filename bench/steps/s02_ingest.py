"""Step 2, ingest: a fresh hookcast with no subscribers (durability as
--durability), wrk shaped like step 1's (-t2 -c64 by default) publishing
256-byte bodies to /sendMessage. Figures: publishes answered 200 per second
(its ratio to step 1's in the same round is judged, >= 0.4), latency p50 and
p99, CPU, peak RSS, the data directory's size. Checks: every publish answered
200, no socket error; with no subscriber, hookcast.db keeps no message after
a clean exit (an observation)."""
import os
import subprocess

from common import (StepFailed, Hookcast, finish, fmt, run_wrk, wrk_errors,
                    wrk_fields, wrk_text, wrk_wait, BODY_BYTES)

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
    c0 = hc.cpu_secs()
    wrk_wait(b, run_wrk(b, o.ingest_threads, o.ingest_conns, o.duration, hc.url + "/sendMessage", out))
    if not hc.alive():
        raise StepFailed(tag)
    c1 = hc.cpu_secs()
    w = wrk_fields(out)
    if not w.get("duration_us"):
        b.problem("%s: no wrk summary: %s" % (tag, wrk_text(out)))
        raise StepFailed(tag)
    if wrk_errors(w):
        b.problem("%s: wrk saw %d socket errors/timeouts" % (tag, wrk_errors(w)))
    secs = w["duration_us"] / 1e6
    ok, req = w["ok200"], w["requests"]
    fig = {"rps": round(ok / secs), "non200": req - ok}
    fig["detail"] = ("%d answered 200 of %d in %s s, %d of them 503; latency p50 %s ms, p99 %s ms; hookcast CPU %s s/s; peak RSS %s MiB"
                     % (ok, req, fmt(secs, 1), w["s503"], fmt(w["p50_us"] / 1000, 2),
                        fmt(w["p99_us"] / 1000, 2), fmt((c1 - c0) / secs, 2), hc.mib("VmHWM")))
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

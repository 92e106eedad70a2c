"""Step 9, batch: batch publish against single publishes, each on a fresh
hookcast with no subscribers (durability as --durability, full by default),
wrk shaped like step 2's (-t2 -c64 by default). One window publishes
256-byte bodies one a request to /sendMessage (bench/post.lua), the next
batches of 100 of them to /sendMessages (bench/batch.lua); three such
pairs (one with --quick). Figure: messages/s committed, batches ÷ single, the
median of the pairs' ratios (target >= 5). Checks: every request answered
200, no socket error, and /metrics counting every message of every batch
answered as accepted."""
import os
import re
import time

from common import (StepFailed, Hookcast, finish, fmt, http_get, median,
                    run_wrk, wrk_window)

NUMBER, NAME, ONCE, USES_HOOKCAST = 9, "batch", True, True
TITLE = "batch publish: batches of 100 ÷ single publishes"
BATCH = 100


def accepted(hc):
    """hookcast_messages_accepted_total, None if /metrics will not say.
    Tried for a while: wrk's 64 connections may still count against
    max_conns_per_ip just after it exits."""
    for _ in range(50):
        code, body = http_get(hc.url + "/metrics", 5)
        if code == 200:
            m = re.search(rb"(?m)^hookcast_messages_accepted_total (\d+)$", body)
            return int(m.group(1)) if m else None
        time.sleep(0.1)
    return None


def window(b, binary, tag, batch):
    """One fresh hookcast, one wrk window: (messages/s, detail)."""
    o = b.o
    out = os.path.join(b.tmp, "wrk-%s.txt" % tag)
    hc = Hookcast(b, binary, tag).start()
    if batch:
        # An older hookcast has no /sendMessages: say so, measure nothing.
        code, _ = http_get(hc.url + "/sendMessages")
        if code == 404:
            hc.stop()
            b.problem("%s: this hookcast has no /sendMessages" % tag)
            raise StepFailed(tag)
        path, script = "/sendMessages", "batch.lua"
    else:
        path, script = "/sendMessage", "post.lua"
    w, secs, cpu = wrk_window(b, hc, tag, lambda: run_wrk(
        b, o.ingest_threads, o.ingest_conns, o.duration, hc.url + path, out,
        script=script, BENCH_BATCH=str(BATCH)), out)
    ok, req = w["ok200"], w["requests"]
    per = BATCH if batch else 1
    if ok != req:
        b.problem("%s: %d of %d requests not answered 200 (%d of them 503)" % (tag, req - ok, req, w["s503"]))
    n = accepted(hc)
    # Requests still in flight when wrk stopped may be committed after it
    # counted: at least every message answered, at most a window's more.
    if n is None or n < ok * per or n > (ok + o.ingest_conns) * per:
        b.problem("%s: /metrics counts %s messages accepted for %d requests of %d answered 200" % (tag, n, ok, per))
    mps = ok * per / secs
    detail = ("%d requests of %d message%s answered 200 of %d in %s s; latency p50 %s ms, p99 %s ms; hookcast CPU %s s/s; peak RSS %s MiB"
              % (ok, per, "s" if per > 1 else "", req, fmt(secs, 1), fmt(w["p50_us"] / 1000, 2),
                 fmt(w["p99_us"] / 1000, 2), fmt(cpu, 2), hc.mib("VmHWM")))
    b.say("  %s: %d messages/s; %s" % (tag, round(mps), detail))
    finish(b, hc, {}, tag)
    return mps, req - ok, detail


def run(b, binary, variant, rnd):
    o = b.o
    suffix = "" if variant == "new" else "-" + variant
    pairs = 1 if o.quick else 3
    b.say("step 9: batch publish, hookcast with no subscribers, durability %s, wrk -t%d -c%d: "
          "/sendMessage vs /sendMessages with %d messages a request, %d pair%s of %d-s windows"
          % (o.durability if o.store else "n/a", o.ingest_threads, o.ingest_conns, BATCH, pairs,
             "" if pairs == 1 else "s", o.duration))
    singles, batches, ratios, non200, details = [], [], [], 0, []
    for i in range(1, pairs + 1):
        s, bad1, d1 = window(b, binary, "run9-single%d%s" % (i, suffix), False)
        m, bad2, d2 = window(b, binary, "run9-batch%d%s" % (i, suffix), True)
        singles.append(s)
        batches.append(m)
        ratios.append(m / s if s else 0)
        non200 += bad1 + bad2
        details.append("pair %d: single %s/s (%s); batches %s/s (%s)" % (i, fmt(s, 0), d1, fmt(m, 0), d2))
    fig = {"single_mps": round(median(singles)), "batch_mps": round(median(batches)),
           "ratio": fmt(median(ratios)), "non200": non200,
           "detail": "pairs' ratios %s; %s" % (", ".join(fmt(r) for r in ratios), "; ".join(details))}
    b.say("  run 9: %s messages/s in batches of %d, %s single: ratio %s"
          % (fig["batch_mps"], BATCH, fig["single_mps"], fig["ratio"]))
    return fig

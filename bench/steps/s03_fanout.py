"""Step 3, fan-out, in two parts, each on a fresh hookcast.

The fixed-count fan-out (judged): hookcast with 10, 100 and 1,000 of the
logging nginx sinks (bench/sinks.conf.in) registered; wrk with
bench/count.lua (-t1 -c--fanout-conns) publishes a fixed number of 256-byte
messages as fast as hookcast accepts them (--fanout-msgs at 100 subscribers,
default 3,000; as many deliveries at 10 and 1,000: 30,000 and 300 messages;
a 503 is retried, not counted); the time runs from the first publish sent
to the last delivery logged at the sinks (the three in an order that turns
from round to round). Figures: deliveries/s = the deliveries counted at the
sinks ÷ that time, and its ratio to step 1's in the same round (judged: >= 0.45 at 10, >= 0.55 at 100, >= 0.45 at 1,000);
hookcast's CPU and peak RSS. Checks: every sink logged every accepted
message (counted per sink), the listing shows nothing failed, dropped or
left queued.

The paced window (the reference of steps 4 to 6, which measure the same
way): the 100 sinks of bench/nginx.conf.in, wrk (-t1 -c4) paced at the
round's loopback rate / 100 publishes/s for --duration s. Figures:
deliveries/s over the middle --duration seconds, per subscriber (what steps
4 and 5 divide by), publishes accepted/s, peak RSS (<= 100 MB), hookcast's
CPU. Checks: the listing shows the 100; every answer is 200 or 503; once
publishing stops the queues drain within --drain-max and every accepted
message reached all 100 (100 %, every round); no message left in
hookcast.db after a clean exit (an observation)."""
from common import (StepFailed, Hookcast, fanout_fixed, finish, frac_check, publish, pub_detail, fmt,
                    NSUBS)

NUMBER, NAME, ONCE, USES_HOOKCAST = 3, "fanout", False, True
TITLE = "hookcast end to end: 10, 100 and 1,000 nginx subscribers"


def window(b, binary, tag, rnd):
    o = b.o
    b.say("step 3 (round %d/%d): paced window, hookcast, %d nginx subscribers, wrk -t%d -c%d -> /sendMessage"
          % (rnd, o.rounds, NSUBS, o.pub_threads, o.pub_conns))
    hc = Hookcast(b, binary, tag).start()
    hc.register(b.sub_addrs())
    n = hc.stats()[0]
    if n != NSUBS:
        b.problem("%s: listing shows %d subscribers, expected %d" % (tag, n, NSUBS))
    P = publish(b, hc, tag, None, rnd)
    fig = {"dps": P["dps"], "sub": fmt(P["dps"] / NSUBS, 2), "cpu": P["cpu"],
           "pub": round(P["accepted"] / (P["dur"] / 1e6)), "pub_detail": pub_detail(P),
           "rssw": "%s→%s" % (P["rss0"], P["rss1"])}
    fig["frac"], fig["pass"], fig["frac_detail"] = frac_check(b, P, tag)
    fig["hwm"] = hc.mib("VmHWM")
    b.say("  %s: %s %% delivered (%s); peak RSS %s MiB" % (tag, fig["frac"], fig["pass"], fig["hwm"]))
    left = finish(b, hc, fig, tag)
    # Every subscriber had every message: none is needed any more.
    if left not in (None, 0, "n/a"):
        b.note("%s: %s messages left in hookcast.db after a clean exit although all %d subscribers had every message" % (tag, left, NSUBS))
    return fig


def run(b, binary, variant, rnd):
    o = b.o
    tag = "run3-r%d%s" % (rnd, "" if variant == "new" else "-" + variant)
    fig = {}
    if o.fanout_window:
        fig = window(b, binary, tag, rnd)
    fig["fixed"] = {}
    failed = []
    # The subscriber counts' order turns from round to round, as 3 to 6 do,
    # so that a drift in the machine's load does not always hit the same one.
    k = (rnd - 1) % len(o.fanout_subs)
    for nsubs in o.fanout_subs[k:] + o.fanout_subs[:k]:
        b.say("step 3 (round %d/%d): fixed count, hookcast, %d logging nginx subscribers" % (rnd, o.rounds, nsubs))
        try:
            f = fanout_fixed(b, binary, "%s-fixed%d" % (tag, nsubs), nsubs)
        except StepFailed:
            failed.append(nsubs)
            continue
        fig["fixed"][nsubs] = f
        fig["fx%d" % nsubs] = f["dps"]     # flat, for the side-by-side table
        if f["pass"] != "PASS":
            b.problem("%s-fixed%d: not every accepted message reached every subscriber: %s" % (tag, nsubs, f["detail"]))
    if failed:
        raise StepFailed(tag, figures=fig)
    return fig

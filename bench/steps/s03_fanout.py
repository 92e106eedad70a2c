"""Step 3, fan-out: a fresh hookcast, the 100 nginx subscribers, wrk
(-t1 -c4) publishing 256-byte bodies to /sendMessage paced at the round's
loopback rate / 100 publishes/s (the loopback limit's worth of deliveries).
Figures: deliveries/s over the middle --duration seconds (its ratio to step
1's is judged, >= 0.5), per subscriber, publishes accepted/s, peak RSS
(<= 100 MB), hookcast's CPU. Checks: the listing shows the 100; every
answer is 200 or 503; once publishing stops the queues drain within
--drain-max and every accepted message reached all 100 (100 %, every round);
no message left in hookcast.db after a clean exit (an observation)."""
from common import Hookcast, finish, frac_check, publish, pub_detail, fmt, NSUBS

NUMBER, NAME, ONCE, USES_HOOKCAST = 3, "fanout", False, True
TITLE = "hookcast end to end: 100 nginx subscribers"


def run(b, binary, variant, rnd):
    o = b.o
    tag = "run3-r%d%s" % (rnd, "" if variant == "new" else "-" + variant)
    b.say("step 3 (round %d/%d): hookcast, %d nginx subscribers, wrk -t%d -c%d -> /sendMessage"
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

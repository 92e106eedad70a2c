"""Step 4, one hanging subscriber: as step 3, with one of the 100 replaced by
a listener that accepts and never answers (bench/hang.py). Figures: the
healthy 99's rate per subscriber (its ratio to step 3's in the same round is
judged, >= 0.95) and the hanging one's state. Checks: every accepted message
reached the healthy 99 after the drain (reported per round); the listing
still owes the hanging one what it never got (an observation)."""
from common import (Hookcast, HangServer, finish, fmt, pending_check, publish,
                    NSUBS)

NUMBER, NAME, ONCE, USES_HOOKCAST = 4, "hanging", False, True
TITLE = "one hanging subscriber among the 100"


def run(b, binary, variant, rnd):
    o = b.o
    tag = "run4-r%d%s" % (rnd, "" if variant == "new" else "-" + variant)
    b.say("step 4 (round %d/%d): as step 3 with one hanging subscriber among the %d" % (rnd, o.rounds, NSUBS))
    hang = HangServer(b, 1, tag)
    hang_addr = hang.addrs[0]
    hc = Hookcast(b, binary, tag).start()
    hc.register(b.sub_addrs()[:NSUBS - 1] + [hang_addr])
    P = publish(b, hc, tag, hang_addr, rnd)
    fig = {"sub": fmt(P["dps"] / (NSUBS - 1), 2)}
    d = P["final"][1]
    # As in step 3, d may exceed expected by the publishes wrk did not count.
    expected = P["accepted"] * (NSUBS - 1)
    fig["drained_all"] = d >= expected and P["drained"]
    b.say("  %s: healthy %d: %d/s each; after drain %d delivered of %d expected"
          % (tag, NSUBS - 1, round(float(fig["sub"])), d, expected))
    s = hc.one_sub(hang_addr)
    g = {k: s.get(k, "?") for k in ("state", "delivered", "failed", "dropped", "queued", "in_flight", "retrying")}
    b.say("  %s: hanging subscriber: state=%s delivered=%s failed=%s dropped=%s queued=%s in_flight=%s retrying=%s"
          % (tag, g["state"], g["delivered"], g["failed"], g["dropped"], g["queued"], g["in_flight"], g["retrying"]))
    fig["hang_state"] = "%s %s/%s/%s/%s" % (g["state"], g["in_flight"], g["queued"], g["retrying"], g["dropped"])
    pending_check(b, tag, "hanging", s, P["accepted"])
    # Stop the hanging subscriber first so its in-flight deliveries end at
    # once instead of holding hookcast's shutdown for the whole grace period.
    hang.stop()
    finish(b, hc, fig, tag)
    return fig

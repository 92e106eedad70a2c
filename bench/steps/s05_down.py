"""Step 5, one subscriber down: the 100 of step 3 plus one at an address
where nothing listens (connection refused) for the whole run. Figures: the
healthy 100's rate per subscriber (its ratio to step 3's in the same round
is judged, >= 0.9), peak RSS against step 3's (+10 % for noise), the down
one's state, failed attempts, queue and dead letters. Checks: the listing
shows 101; the down address refuses before and after the window; the down
one shows no delivery; every accepted message reached the healthy 100."""
import urllib.parse

from common import (StepFailed, Hookcast, finish, fmt, http_get, pending_check,
                    publish, refused, NSUBS)
import helpers

NUMBER, NAME, ONCE, USES_HOOKCAST = 5, "down", False, True
TITLE = "one subscriber down (connection refused) beside the 100"


def run(b, binary, variant, rnd):
    o = b.o
    tag = "run5-r%d%s" % (rnd, "" if variant == "new" else "-" + variant)
    b.say("step 5 (round %d/%d): as step 3 plus one subscriber where nothing listens (%d + 1)" % (rnd, o.rounds, NSUBS))
    down_addr = "127.0.0.1:%d" % helpers.freeports(1)[0]
    if not refused(down_addr):
        b.problem("%s: %s does not refuse connections" % (tag, down_addr))
        raise StepFailed(tag)
    hc = Hookcast(b, binary, tag).start()
    hc.register(b.sub_addrs() + [down_addr])
    n = hc.stats()[0]
    if n != NSUBS + 1:
        b.problem("%s: listing shows %d subscribers, expected %d" % (tag, n, NSUBS + 1))
    P = publish(b, hc, tag, down_addr, rnd)
    fig = {"sub": fmt(P["dps"] / NSUBS, 2), "hwm": hc.mib("VmHWM"), "rssw": "%s→%s" % (P["rss0"], P["rss1"])}
    d = P["final"][1]
    expected = P["accepted"] * NSUBS
    fig["drained_all"] = d >= expected and P["drained"]
    b.say("  %s: healthy %d: %d/s each; after drain %d delivered of %d expected; peak RSS %s MiB"
          % (tag, NSUBS, round(float(fig["sub"])), d, expected, fig["hwm"]))
    s = hc.one_sub(down_addr)
    g = {k: s.get(k, "?") for k in ("state", "delivered", "failed", "dropped", "queued", "in_flight", "retrying")}
    # Dead letters for it so far (none expected within the first retries).
    code, body = http_get(hc.url + "/deadLetters?address=%s&limit=100000" % urllib.parse.quote(down_addr))
    dead = sum(1 for line in body.decode(errors="replace").splitlines() if line.startswith("msg_")) if code == 200 else "n/a"
    if not refused(down_addr):
        b.problem("%s: %s accepted a connection after the window (was it down all along?)" % (tag, down_addr))
    b.say("  %s: down subscriber: state=%s delivered=%s failed=%s dropped=%s queued=%s in_flight=%s retrying=%s dead_letters=%s"
          % (tag, g["state"], g["delivered"], g["failed"], g["dropped"], g["queued"], g["in_flight"], g["retrying"], dead))
    fig["down_state"] = "%s %s/%s/%s/%s" % (g["state"], g["failed"], g["retrying"], g["queued"], dead)
    if dead == 0:
        pending_check(b, tag, "down", s, P["accepted"])
    if g["delivered"] != 0:
        b.problem("%s: the down subscriber shows %s deliveries" % (tag, g["delivered"]))
    finish(b, hc, fig, tag)
    return fig

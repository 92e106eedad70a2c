"""Step 6, signed over topics: step 3 with hookcast started with
--signing-secret (a fixed 32-byte test secret: every delivery signed,
HMAC-SHA256), the publisher cycling request by request through
/sendMessage?topic=bench.t0 .. bench.t9, subscribers 0-49 registered with
topic=bench.* (a prefix pattern) and 50-99 with the ten names, so every
message still reaches all 100 while the topic index does its most work.
One more subscriber, the check sink (an extra nginx port whose access log
records webhook-id, webhook-timestamp and webhook-signature), takes bench.t0
alone. Figures: deliveries/s to the 100 (the check sink left out), their
ratio to step 3's in the same round (>= 0.90: signing and topic matching
cost at most 10 %), CPU per delivery. Checks: the registrations answer 200
and the listing shows those topic sets; every line the check sink logged
carries all three headers and a signature that verifies (or the round fails
and gives no figure); every accepted message reached all 100; the check
sink got about a tenth (an observation)."""
import time

from common import (StepFailed, Hookcast, finish, frac_check, publish,
                    pub_detail, BODY_BYTES, NSUBS, NTOPICS, SIGN_SECRET,
                    TOPIC_PATTERN, TOPIC_PREFIX)
import helpers

NUMBER, NAME, ONCE, USES_HOOKCAST = 6, "signed", False, True
TITLE = "step 3 with every delivery signed, messages over 10 topics"


def run(b, binary, variant, rnd):
    o = b.o
    tag = "run6-r%d%s" % (rnd, "" if variant == "new" else "-" + variant)
    check_addr = "127.0.0.1:%d" % b.check_port
    b.say("step 6 (round %d/%d): as step 3, every delivery signed, messages over %d topics" % (rnd, o.rounds, NTOPICS))
    open(b.check_log, "w").close()
    since = time.time()
    hc = Hookcast(b, binary, tag, ["--signing-secret", SIGN_SECRET]).start()
    names = ",".join(sorted(TOPIC_PREFIX + str(k) for k in range(NTOPICS)))
    addrs, half = b.sub_addrs(), NSUBS // 2
    try:
        hc.register(addrs[:half], "topic=" + TOPIC_PATTERN)
        hc.register(addrs[half:], "topic=" + names)
        hc.register([check_addr], "topic=%s0" % TOPIC_PREFIX)
    except RuntimeError as e:
        b.problem("%s: registering %d subscribers and the check sink with topics failed: %s" % (tag, NSUBS, e))
        hc.stop()
        raise StepFailed(tag)
    # The listing must show the topic sets asked for: a daemon that took
    # the registrations but not the topics would deliver everything too.
    want = {TOPIC_PATTERN: half, names: NSUBS - half, TOPIC_PREFIX + "0": 1}
    got = helpers.topics(hc.url)
    if got != want:
        b.problem("%s: the listing's topic sets are %s, expected %s" % (tag, got, want))
        hc.stop()
        raise StepFailed(tag)
    P = publish(b, hc, tag, check_addr, rnd, NTOPICS)
    fig = {}
    # Every delivery the check sink logged, in the window and the drain.
    lines, good, bad = helpers.sigcheck(b.check_log, SIGN_SECRET, BODY_BYTES, since)
    if lines == 0 or bad is not None:
        fig["sig"] = "FAILED: %d of %d verified; %s" % (good, lines, bad or "no line logged")
        b.problem("%s: deliveries not signed as Standard Webhooks says: %s (log: %s)" % (tag, fig["sig"][8:], b.check_log))
        hc.stop()
        raise StepFailed(tag, fig)
    d = hc.one_sub(check_addr).get("delivered", "?")
    share = P["accepted"] / NTOPICS
    fig["sig"] = "%d of %d verified (%s delivered to the check sink, ≈ %d expected)" % (good, lines, d, round(share))
    b.say("  %s: check sink: %d of %d deliveries logged carry webhook-id, webhook-timestamp and a webhook-signature that verifies; %s delivered to it (%s0: ≈ %d of %d)"
          % (tag, good, lines, d, TOPIC_PREFIX, round(share), P["accepted"]))
    # The check sink takes one topic of NTOPICS: far more means routing
    # ignored its topics, far fewer that it lost messages.
    if isinstance(d, int) and abs(d - round(share)) >= round(share / 10 + o.pub_conns):
        b.note("%s: the check sink, subscribed to %s0 alone, had %d deliveries for %d messages accepted over %d topics (≈ %d expected)"
               % (tag, TOPIC_PREFIX, d, P["accepted"], NTOPICS, round(share)))
    fig.update({"dps": P["dps"], "pub": round(P["accepted"] / (P["dur"] / 1e6)),
                "pub_detail": pub_detail(P, with_cpu=False), "cpu": P["cpu"]})
    fig["frac"], fig["pass"], fig["frac_detail"] = frac_check(b, P, tag)
    fig["hwm"] = hc.mib("VmHWM")
    b.say("  %s: %s %% delivered (%s); peak RSS %s MiB" % (tag, fig["frac"], fig["pass"], fig["hwm"]))
    finish(b, hc, fig, tag)
    return fig

"""Step 12, hookcast against nginx's mirror module as the fan-out: the same
100 logging sinks, the same publisher and the same messages as step 3's
fixed count, in the same round, back to back (hookcast first in odd rounds,
the mirror first in even ones). The mirror is one more nginx
(bench/mirror.conf.in, workers auto) that answers POST /sendMessage 200
itself and mirrors each request, body and all, to the 100 sinks: one
`mirror` directive per sink in that location, one internal location and
one keep-alive upstream per sink. Figures: each one's deliveries/s (counted
at the sinks ÷ the time from the first publish to the last delivery), and
hookcast's ÷ the mirror's, same round (judged on the median: >= 1.1).
Checks: every sink logged every message hookcast accepted (a failure
otherwise); what the mirror did not deliver is reported (nginx drops
mirror subrequests under load: an observation, and its figure counts only
what arrived). nginx answers a publish only once its mirror subrequests are
done (answers take ~100 ms and more at 100 sinks), so the mirror fans out
at most --fanout-conns messages at a time: the same publisher hookcast
gets, which answers as soon as a message is stored."""
import os

from common import (StepFailed, SinkCount, fanout_fixed, fanout_msgs, fmt,
                    http_get, publish_count, sink_offset, spawn_nginx, NSUBS, HERE)
import helpers

NUMBER, NAME, ONCE, USES_HOOKCAST = 12, "mirror", False, True
TITLE = "hookcast ÷ nginx mirror, 100 subscribers"
TARGET = 1.1


def start_front(b, nsubs, tag):
    prefix = os.path.join(b.tmp, "mirror-" + tag)
    os.makedirs(prefix, exist_ok=True)
    with open(os.path.join(HERE, "mirror.conf.in")) as f:
        template = f.read()
    ports = b.sink_ports[:nsubs]
    ups = "".join("    upstream sink%d {\n        server 127.0.0.1:%d;\n        keepalive 16;\n    }\n" % (k, p)
                  for k, p in enumerate(ports))
    mirrors = "".join("            mirror /m%d;\n" % k for k in range(nsubs))
    locs = "".join("        location = /m%d {\n            internal;\n            proxy_pass http://sink%d/event;\n        }\n" % (k, k)
                   for k in range(nsubs))
    for attempt in (1, 2, 3):
        port = helpers.freeports(1)[0]
        conf = (template.replace("@PREFIX@", prefix).replace("@PORT@", str(port))
                .replace("@UPSTREAMS@\n", ups).replace("@MIRRORS@\n", mirrors).replace("@LOCATIONS@\n", locs))
        # GET / is answered 404 without touching the sinks.
        p = spawn_nginx(b, prefix, conf, lambda: http_get("http://127.0.0.1:%d/" % port, 2)[0] == 404)
        if p is not None:
            b.say("nginx mirror front up (pid %d) on 127.0.0.1:%d, mirroring to %d sinks" % (p.pid, port, nsubs))
            return p, port, prefix
        b.say("the nginx mirror front did not start (attempt %d)" % attempt)
    b.problem("%s: could not start the nginx mirror front" % tag)
    raise StepFailed(tag)


def mirror(b, tag, nsubs):
    o = b.o
    nmsgs = fanout_msgs(b, nsubs)
    p, port, prefix = start_front(b, nsubs, tag)
    try:
        sc = SinkCount(b, sink_offset(b))
        P = publish_count(b, "http://127.0.0.1:%d/sendMessage" % port, nmsgs, tag)
        sc.wait(P["ok"] * nsubs, None, stall=3.0, limit=o.drain_max)
    finally:
        b.stop(p)
    secs = (sc.last or P["done"]) - P["first"]
    fig = {"msgs": nmsgs, "subs": nsubs, "secs": fmt(secs, 3), "pub_secs": fmt(P["secs"], 3),
           "dps": round(sc.total / secs) if secs > 0 else 0,
           "pub": round(P["ok"] / P["secs"]) if P["secs"] > 0 else 0}
    fig["pass"], fig["detail"] = sc.check(b.sink_ports[:nsubs], P["ok"])
    fig["pub_detail"] = "%d accepted in %s s; latency p50 %s ms, p99 %s ms" % (
        P["ok"], fmt(P["secs"], 3), fmt(P["p50_ms"], 1), fmt(P["p99_ms"], 1))
    with open(os.path.join(prefix, "error.log"), errors="replace") as f:
        errs = [l for l in f if ("[error]" in l or "[alert]" in l or "[crit]" in l) and "setrlimit" not in l]
    if errs:
        fig["detail"] += "; nginx logged %d errors, the first: %s" % (len(errs), errs[0].strip()[:200])
    b.say("  %s: %d × %d: %d deliveries/s (%s s from the first publish to the last delivery; publishing took %s s, %d/s, answers p50 %s ms); %s"
          % (tag, nmsgs, nsubs, fig["dps"], fig["secs"], fig["pub_secs"], fig["pub"], fmt(P["p50_ms"], 1), fig["pass"]))
    if fig["pass"] != "PASS":
        b.note("%s: the nginx mirror did not deliver everything: %s" % (tag, fig["detail"]))
    return fig


def run(b, binary, variant, rnd):
    o = b.o
    tag = "run12-r%d%s" % (rnd, "" if variant == "new" else "-" + variant)
    fig = {}
    order = ("hookcast", "mirror") if rnd % 2 else ("mirror", "hookcast")
    for who in order:
        b.say("step 12 (round %d/%d): fixed count, %s, %d logging nginx subscribers" % (rnd, o.rounds, who, NSUBS))
        try:
            if who == "hookcast":
                f = fanout_fixed(b, binary, tag + "-hookcast", NSUBS)
                if f["pass"] != "PASS":
                    b.problem("%s-hookcast: not every accepted message reached every subscriber: %s" % (tag, f["detail"]))
            else:
                f = mirror(b, tag + "-mirror", NSUBS)
        except StepFailed:
            raise StepFailed(tag, figures=fig or None)
        fig[who] = f
    fig["hc_dps"], fig["mirror_dps"] = fig["hookcast"]["dps"], fig["mirror"]["dps"]
    if fig["mirror"]["dps"] > 0:
        fig["ratio"] = fmt(fig["hookcast"]["dps"] / fig["mirror"]["dps"])
    b.say("  %s: hookcast ÷ nginx mirror: %s (%d / %d deliveries/s)" % (
        tag, fig.get("ratio", "n/a"), fig["hookcast"]["dps"], fig["mirror"]["dps"]))
    return fig

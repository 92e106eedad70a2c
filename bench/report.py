"""The bench's record: the summary figures from the per-round ones, judged
against their targets, as the markdown bench/results.md keeps (the same
table and per-round tables run.sh wrote; the README's table is updated from
it). With a baseline, one more table puts every figure of the old binary
beside the new one's, with new ÷ old."""
import os
import subprocess
import time

from common import (NSUBS, NTOPICS, TOPIC_PATTERN, TOPIC_PREFIX, BODY_BYTES, FANOUT_TARGETS, fmt, median,
                    spread)
from steps import STEPS

THREADS_TARGET = 1.3     # run 11: deliveries/s with delivery_threads 2 ÷ 1
MIRROR_TARGET = 1.1      # run 12: hookcast's deliveries/s ÷ nginx mirror's


def verdict(value, op, limit):
    if value is None:
        return "n/a"
    v = float(value)
    ok = {"ge": v >= limit, "le": v <= limit, "lt": v < limit}[op]
    return "PASS" if ok else "MISS"


def cell(value, unit="", detail=""):
    s = "n/a" if value is None else "%s%s" % (value, " " + unit if unit else "")
    return s + (" (%s)" % detail if detail else "")


def same_round(num, den, key_n, key_d, dec=3, floor=0.001):
    """{round: num[key_n] / den[key_d]} over the rounds both have."""
    out = {}
    for r, f in num.items():
        d = den.get(r)
        if key_n in f and d is not None and key_d in d and float(d[key_d]) >= floor:
            out[r] = float(f[key_n]) / float(d[key_d])
    return out


def ratio_detail(ratios, num_vals, den_vals):
    r = list(ratios.values())
    return "median of same-round ratios, %s; median ÷ median %s" % (
        spread(r, 3), fmt(median(num_vals) / median(den_vals)))


def worst_round(rounds):
    """(the worst round: a MISS before a PASS, then the lowest fraction;
    the rounds that passed)."""
    worst, passes = None, 0
    for r, f in sorted(rounds.items()):
        if "frac" not in f:
            continue
        passes += f["pass"] == "PASS"
        if (worst is None or (f["pass"] == "MISS" and rounds[worst]["pass"] == "PASS")
                or (f["pass"] == rounds[worst]["pass"] and float(f["frac"]) < float(rounds[worst]["frac"]))):
            worst = r
    return worst, passes


def vals(rounds, key):
    return [float(f[key]) for _, f in sorted(rounds.items()) if key in f]


def aggregate(b, v):
    """The summary figures of variant V: a dict of (value, detail) pairs and
    verdicts."""
    o = b.o
    s1 = b.rounds_of("loopback")
    s2, s3, s4, s5, s6 = (b.rounds_of(k, v) for k in ("ingest", "fanout", "hanging", "down", "signed"))
    R = {}
    rps1 = vals(s1, "rps")
    R["nginx"] = (fmt(median(rps1), 0) if rps1 else None, spread(rps1, 0))
    # Step 2: ingest, and its same-round ratio to step 1.
    if s2:
        ing = vals(s2, "rps")
        non200 = sum(f["non200"] for f in s2.values())
        R["ingest"] = (fmt(median(ing), 0), "%s; answers other than 200: %d in all; wrk -t%d -c%d"
                       % (spread(ing, 0), non200, o.ingest_threads, o.ingest_conns))
        rat = same_round(s2, s1, "rps", "rps")
        if rat and rps1:
            R["ingest_ratio"] = (fmt(median(list(rat.values()))), ratio_detail(rat, ing, rps1))
    # Step 3: deliveries/s, its ratio to step 1, delivered, peak RSS.
    dps = vals(s3, "dps")
    if dps:
        R["dps"] = (fmt(median(dps), 0), spread(dps, 0))
        rat = same_round(s3, s1, "dps", "rps")
        if rat and rps1:
            R["ratio"] = (fmt(median(list(rat.values()))), ratio_detail(rat, dps, rps1))
        w, passes = worst_round(s3)
        if w is not None:
            R["frac"] = (s3[w]["frac"], "worst round: %d, %s; PASS in %d of %d rounds" % (w, s3[w]["frac_detail"], passes, o.rounds))
            R["frac_pass"] = "PASS" if passes == o.rounds else "MISS"
        hwm = vals(s3, "hwm")
        R["hwm"] = (fmt(max(hwm), 1), "1 round" if len(hwm) == 1 else "max over %d rounds; min %s" % (len(hwm), fmt(min(hwm), 1)))
        pub = vals(s3, "pub")
        R["pub"] = (fmt(median(pub), 0), "median, %s; accepted and refused per round below" % spread(pub, 0))
    sub3 = vals(s3, "sub")
    # Step 4: the healthy 99 per subscriber ÷ step 3's, same round.
    if s4:
        sub4 = vals(s4, "sub")
        drained = sum(1 for f in s4.values() if f.get("drained_all"))
        detail = "healthy %d: median %s/s each (%s)" % (NSUBS - 1, fmt(median(sub4), 0), spread(sub4, 0))
        rat = same_round(s4, s3, "sub", "sub", floor=0.01)
        if rat and sub3:
            R["hang"] = fmt(median(list(rat.values())))
            detail += " vs median %s/s per subscriber in run 3 (%s); %s" % (
                fmt(median(sub3), 0), spread(sub3, 0), ratio_detail(rat, sub4, sub3))
        detail += "; every accepted message reached the healthy %d after drain in %d of %d rounds; hanging one at the end, state in_flight/queued/retrying/dropped: %s" % (
            NSUBS - 1, drained, len(s4), ", ".join("r%d %s" % (r, f["hang_state"]) for r, f in sorted(s4.items())))
        R["hang"] = (R.get("hang"), detail)
    # Step 5: the healthy 100 per subscriber ÷ step 3's; peak RSS vs step 3's.
    if s5:
        sub5 = vals(s5, "sub")
        drained = sum(1 for f in s5.values() if f.get("drained_all"))
        detail = "healthy %d: median %s/s each (%s)" % (NSUBS, fmt(median(sub5), 0), spread(sub5, 0))
        rat = same_round(s5, s3, "sub", "sub", floor=0.01)
        down = None
        if rat and sub3:
            down = fmt(median(list(rat.values())))
            detail += " vs median %s/s per subscriber in run 3; %s" % (fmt(median(sub3), 0), ratio_detail(rat, sub5, sub3))
        detail += "; every accepted message reached the healthy %d after drain in %d of %d rounds; the down one at the end, state failed/retrying/queued/dead letters: %s" % (
            NSUBS, drained, len(s5), ", ".join("r%d %s" % (r, f["down_state"]) for r, f in sorted(s5.items())))
        R["down"] = (down, detail)
        hwm5, hwm3 = vals(s5, "hwm"), vals(s3, "hwm")
        detail = "max over %d round%s" % (len(hwm5), "" if len(hwm5) == 1 else "s")
        if hwm3:
            R["down_hwm2"] = max(hwm3)
            diffs = ["r%d %+.1f" % (r, float(f["hwm"]) - float(s3[r]["hwm"])) for r, f in sorted(s5.items()) if r in s3 and "hwm" in s3[r]]
            detail += " vs run 3's max %s MiB; same round, run 5 − run 3 (MiB): %s" % (fmt(max(hwm3), 1), ", ".join(diffs))
        detail += "; VmRSS at the window's start→end (MiB), run 5: %s" % ", ".join("r%d %s" % (r, f["rssw"]) for r, f in sorted(s5.items()))
        if s3:
            detail += "; run 3: %s" % ", ".join("r%d %s" % (r, f["rssw"]) for r, f in sorted(s3.items()) if "rssw" in f)
        R["down_hwm"] = (fmt(max(hwm5), 1), detail)
    # Step 6: signed over topics, and its same-round ratio to step 3.
    if s6:
        dps6 = vals(s6, "dps")
        R["sign_dps"] = (fmt(median(dps6), 0) if dps6 else None, spread(dps6, 0))
        rat = same_round(s6, s3, "dps", "dps", floor=1)
        if rat and dps:
            R["sign_ratio"] = (fmt(median(list(rat.values()))), ratio_detail(rat, dps6, dps))
        w, passes = worst_round(s6)
        detail = ""
        if w is not None:
            R["sign_frac_v"] = s6[w]["frac"]
            detail = "worst round: %d, %s; PASS in %d of %d rounds" % (w, s6[w]["frac_detail"], passes, o.rounds)
        R["sign_frac_pass"] = "PASS" if w is not None and passes == o.rounds else "MISS"
        sigs = "; ".join("r%d %s" % (r, f["sig"]) for r, f in sorted(s6.items()) if "sig" in f)
        R["sign_frac"] = (R.get("sign_frac_v"), (detail + "; " if detail else "") + "check sink's signatures: " + sigs)
    fixed_aggregate(b, v, R, s1, rps1)
    k = b.rounds_of("10k", v).get(0)
    if k:
        R["10k_rss"], R["10k_ms"], R["10k_detail"] = k["rss"], k["ms"], k["detail"]
    rm = b.rounds_of("removal", v).get(0)
    if rm:
        R["removal"] = rm
    bt = b.rounds_of("batch", v).get(0)
    if bt:
        R["batch"] = bt
    return R


def fixed_aggregate(b, v, R, s1, rps1):
    """The fixed-count fan-out's figures (runs 3, 11, 12) into R."""
    o = b.o
    s3 = b.rounds_of("fanout", v)
    R["fixed"] = {}
    sizes = sorted({n for f in s3.values() for n in f.get("fixed", {})})
    for n in sizes:
        per = {r: f["fixed"][n] for r, f in s3.items() if n in f.get("fixed", {})}
        dps = vals(per, "dps")
        F = {"dps": (fmt(median(dps), 0), spread(dps, 0)), "msgs": next(iter(per.values()))["msgs"]}
        rat = same_round(per, s1, "dps", "rps")
        if rat and rps1:
            F["ratio"] = (fmt(median(list(rat.values()))), ratio_detail(rat, dps, rps1))
        passes = [r for r, f in sorted(per.items()) if f["pass"] == "PASS"]
        worst = next((r for r, f in sorted(per.items()) if f["pass"] != "PASS"), min(per))
        F["check"] = ("PASS in %d of %d rounds" % (len(passes), o.rounds),
                      "round %d: %s" % (worst, per[worst]["detail"]))
        F["check_pass"] = "PASS" if len(passes) == o.rounds else "MISS"
        cpu = [float(f["cpu"]) for f in per.values() if f.get("cpu") not in (None, "n/a")]
        F["info"] = "publishing took %s s (median; %s accepted/s); hookcast CPU %s s/s; peak RSS max %s MiB" % (
            fmt(median(vals(per, "pub_secs")), 3), fmt(median(vals(per, "pub")), 0),
            fmt(median(cpu), 2) if cpu else "n/a", fmt(max(vals(per, "hwm")), 1))
        R["fixed"][n] = F
    s11 = b.rounds_of("threads", v)
    if s11:
        na = [f["na"] for f in s11.values() if "na" in f]
        if na:
            R["threads_na"] = na[0]
        rat = vals(s11, "ratio")
        if rat:
            t1, t2 = vals(s11, "t1_dps"), vals(s11, "t2_dps")
            passes = sum(1 for f in s11.values() if f.get(1, {}).get("pass") == "PASS" and f.get(2, {}).get("pass") == "PASS")
            R["threads"] = (fmt(median(rat)), "%s; median ÷ median %s; 1 thread %s /s (%s), 2 threads %s /s (%s); every message at every sink in both runs in %d of %d rounds" % (
                spread(rat, 3), fmt(median(t2) / median(t1)) if t1 and median(t1) else "n/a",
                fmt(median(t1), 0), spread(t1, 0), fmt(median(t2), 0), spread(t2, 0), passes, len(s11)))
    s12 = b.rounds_of("mirror", v)
    if s12:
        rat = vals(s12, "ratio")
        hc, mi = vals(s12, "hc_dps"), vals(s12, "mirror_dps")
        if rat:
            R["mirror"] = (fmt(median(rat)), "%s; median ÷ median %s" % (
                spread(rat, 3), fmt(median(hc) / median(mi)) if mi and median(mi) else "n/a"))
        if mi:
            R["mirror_dps"] = (fmt(median(mi), 0), "%s; hookcast beside it %s /s (%s); the mirror's publisher, by round: %s" % (
                spread(mi, 0), fmt(median(hc), 0), spread(hc, 0),
                "; ".join("r%d %s" % (r, f["mirror"].get("pub_detail", "n/a")) for r, f in sorted(s12.items()) if "mirror" in f)))
        full = [r for r, f in sorted(s12.items()) if f.get("mirror", {}).get("pass") == "PASS"]
        short = ["r%d: %s" % (r, f["mirror"]["detail"]) for r, f in sorted(s12.items())
                 if "mirror" in f and f["mirror"].get("pass") != "PASS"]
        hc_ok = sum(1 for f in s12.values() if f.get("hookcast", {}).get("pass") == "PASS")
        R["mirror_check"] = ("mirror: everything delivered in %d of %d rounds; hookcast: in %d of %d" % (
            len(full), len(s12), hc_ok, len(s12)), "; ".join(short))
        R["mirror_check_pass"] = "PASS" if hc_ok == len(s12) == o.rounds else "MISS"


def fixed_rows(b, R):
    """The summary rows of runs 3 (fixed count), 11 and 12."""
    o = b.o
    rows = []
    for n, F in sorted(R.get("fixed", {}).items()):
        t = FANOUT_TARGETS.get(n)
        rows.append(("fan-out (run 3, fixed count), %s subscribers: %s messages published at once, deliveries/s from the first publish to the last delivery at the sinks"
                     % (format(n, ","), format(F["msgs"], ",")), cell(F["dps"][0], "/s", F["dps"][1] + "; " + F["info"]), "", ""))
        r = F.get("ratio", (None, ""))
        rows.append(("ratio fan-out, %s subscribers ÷ wrk→nginx" % format(n, ","), cell(r[0], "", r[1]),
                     "≥ %s" % t if t else "", verdict(r[0], "ge", t) if t else ""))
        rows.append(("run 3, fixed count, %s subscribers: every accepted message counted at every sink, every round" % format(n, ","),
                     cell(F["check"][0], "", F["check"][1]), "100 %", F["check_pass"]))
    if b.ran("threads"):
        if "threads_na" in R:
            rows.append(("`delivery_threads 2` ÷ `delivery_threads 1` (run 11), %d subscribers, fixed count" % NSUBS,
                         "not applicable (%s)" % R["threads_na"], "≥ %s" % THREADS_TARGET, "not applicable"))
        else:
            t = R.get("threads", (None, ""))
            rows.append(("`delivery_threads 2` ÷ `delivery_threads 1` (run 11), %d subscribers, fixed count" % NSUBS,
                         cell(t[0], "", t[1]), "≥ %s" % THREADS_TARGET, verdict(t[0], "ge", THREADS_TARGET)))
    if b.ran("mirror"):
        m = R.get("mirror_dps", (None, ""))
        rows.append(("nginx mirror as the fan-out (run 12), %d subscribers, same sinks and messages: deliveries/s" % NSUBS,
                     cell(m[0], "/s", m[1]), "", ""))
        m = R.get("mirror", (None, ""))
        rows.append(("hookcast ÷ nginx mirror (run 12), same round", cell(m[0], "", m[1]), "≥ %s" % MIRROR_TARGET,
                     verdict(m[0], "ge", MIRROR_TARGET)))
        m = R.get("mirror_check", (None, ""))
        rows.append(("run 12: every message hookcast accepted at every sink (the mirror's losses reported)",
                     cell(m[0], "", m[1]), "100 % (hookcast)", R.get("mirror_check_pass", "n/a")))
    return rows


def fixed_table(b, v):
    """Per round, runs 3 (fixed count), 11 and 12."""
    o = b.o
    s1, s3, s11, s12 = b.rounds_of("loopback"), b.rounds_of("fanout", v), b.rounds_of("threads", v), b.rounds_of("mirror", v)
    sizes = sorted({n for f in s3.values() for n in f.get("fixed", {})})
    if not sizes and not s11 and not s12:
        return []
    head = ["Round", "wrk → nginx req/s"]
    for n in sizes:
        head.append("run 3, %s × %s: deliveries/s (÷ wrk → nginx), delivered" % (
            format(next(f["fixed"][n]["msgs"] for f in s3.values() if n in f.get("fixed", {})), ","), format(n, ",")))
    if s11:
        head.append("run 11: 1 thread, 2 threads /s, 2 ÷ 1")
    if s12:
        head.append("run 12: hookcast, mirror /s, hookcast ÷ mirror; mirror delivered")
    out = ["", "Per round, the fixed-count fan-out (runs 3, 11 and 12; each a fresh hookcast; time from the first publish to the last delivery logged at the sinks):", "",
           "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in range(1, o.rounds + 1):
        row = [str(r), str(s1.get(r, {}).get("rps", "n/a"))]
        for n in sizes:
            f = s3.get(r, {}).get("fixed", {}).get(n)
            if f is None:
                row.append("n/a")
                continue
            ref = s1.get(r, {}).get("rps")
            row.append("%s (%s), %s" % (f["dps"], fmt(f["dps"] / ref) if ref else "n/a", f["pass"]))
        if s11:
            f = s11.get(r, {})
            row.append("not applicable" if "na" in f else "%s, %s, %s" % (f.get("t1_dps", "n/a"), f.get("t2_dps", "n/a"), f.get("ratio", "n/a")))
        if s12:
            f = s12.get(r, {})
            row.append("%s, %s, %s; %s" % (f.get("hc_dps", "n/a"), f.get("mirror_dps", "n/a"), f.get("ratio", "n/a"),
                                             f.get("mirror", {}).get("pass", "n/a")))
        out.append("| " + " | ".join(row) + " |")
    return out


def removal_rows(rm):
    """The removal step's rows: figure, value, target, verdict."""
    n, m = rm["subs"], rm["pending"]
    what = "%d subscribers × %d pending" % (n, m)
    rows = [("removal (run 8), %s: publish latency while all %d are deregistered, max" % (what, n),
             cell(rm.get("pub_max_ms"), "ms", "%d publishes overlapped the removals, %s s from the first deregistration until settled; p99 before them %s ms"
                  % (rm["pub_n"], rm["settle_secs"], rm["pub_before_p99_ms"])),
             "< 100 ms", verdict(rm.get("pub_max_ms"), "lt", 100)),
            ("removal (run 8): publish latency while they are deregistered, p99",
             cell(rm.get("pub_p99_ms"), "ms", "%d deregistrations, %d at a time, in %s s (slowest %s ms); dead letters added %s; backlog built in %s s"
                  % (n, min(n, 32), rm["dereg_secs"], rm["dereg_max_ms"], rm["dead_added"], rm["build_secs"])),
             "< 100 ms", verdict(rm.get("pub_p99_ms"), "lt", 100))]
    for key, when in (("restart1", "kill -9 with the backlog registered"),
                      ("restart2", "kill -9 as the last of the %d deregistrations answered" % n)):
        if key not in rm:
            continue
        h, r, done = rm[key]
        rows.append(("restart after %s (%s): first /healthz 200" % (when, what),
                     "%s s (removals the restart finished, as logged: %s)" % (h, done), "≤ 2 s", verdict(h, "le", 2)))
        rows.append(("restart after %s (%s): first /readyz 200" % (when, what), "%s s" % r, "≤ 5 s", verdict(r, "le", 5)))
    return rows


def summary_rows(b, R):
    """(figure, value, target, verdict) of the summary table."""
    o = b.o
    g = lambda k: R.get(k, (None, ""))
    ratio = lambda k: cell(g(k)[0], "", g(k)[1])
    rows = [("wrk → nginx, POST %d B, one port (loopback limit)" % BODY_BYTES, cell(g("nginx")[0], "req/s", g("nginx")[1]), "", ""),
            ("hookcast ingest (run 2), no subscribers, durability %s: publishes answered 200 /s" % (o.durability if o.store else "n/a: store off"),
             cell(g("ingest")[0], "/s", g("ingest")[1]), "", ""),
            ("ratio ingest ÷ wrk→nginx", ratio("ingest_ratio"), "≥ 0.4", verdict(g("ingest_ratio")[0], "ge", 0.4)),
            ("hookcast deliveries/s (run 3, paced window: the reference of runs 4 to 6), %d subscribers" % NSUBS, cell(g("dps")[0], "/s", g("dps")[1] or "no rounds"), "", ""),
            ("ratio deliveries/s, paced window ÷ wrk→nginx (info: the fan-out is judged on the fixed count)", ratio("ratio"), "", ""),
            ("accepted messages delivered after publishing stops (run 3, paced window), every round", cell(g("frac")[0], "%", g("frac")[1]), "100 %", R.get("frac_pass", "n/a")),
            ("peak RSS (VmHWM), run 3 (paced window)", cell(g("hwm")[0], "MiB", g("hwm")[1]), "≤ 100 MB", verdict(g("hwm")[0], "le", 100))]
    rows += fixed_rows(b, R)
    rows += [
            ("one hanging subscriber (run 4): healthy %d's rate ÷ run 3's" % (NSUBS - 1), ratio("hang"), "≥ 0.95", verdict(g("hang")[0], "ge", 0.95)),
            ("one down subscriber, connection refused (run 5): healthy %d's rate ÷ run 3's" % NSUBS, ratio("down"), "≥ 0.9", verdict(g("down")[0], "ge", 0.9))]
    v = "n/a"
    if g("down_hwm")[0] is not None and "down_hwm2" in R:
        v = verdict(g("down_hwm")[0], "le", R["down_hwm2"] * 1.1)
    rows += [("peak RSS (VmHWM), run 5 (one down subscriber)", cell(g("down_hwm")[0], "MiB", g("down_hwm")[1]), "≤ run 3's (+10 % for noise)", v),
             ("hookcast deliveries/s (run 6), %d subscribers, every delivery signed, messages over %d topics" % (NSUBS, NTOPICS),
              cell(g("sign_dps")[0], "/s", g("sign_dps")[1] or "no rounds"), "", ""),
             ("signing and topic matching: deliveries/s, run 6 ÷ run 3", ratio("sign_ratio"), "≥ 0.90", verdict(g("sign_ratio")[0], "ge", 0.9)),
             ("run 6: accepted messages delivered after publishing stops, every round; every delivery the check sink logged signed",
              cell(g("sign_frac")[0], "%", g("sign_frac")[1]), "100 %, all verified", R.get("sign_frac_pass", "n/a")),
             ("%s subscribers: RSS (VmRSS)" % format(o.subs_10k, ","), cell(R.get("10k_rss"), "MiB"), "≤ 50 MB", verdict(R.get("10k_rss"), "le", 50)),
             ("%s subscribers: GET /listSubscribers?format=json, median of 5" % format(o.subs_10k, ","), cell(R.get("10k_ms"), "ms", R.get("10k_detail", "")),
              "< 100 ms", verdict(R.get("10k_ms"), "lt", 100)),
             ("publishes accepted/s, run 3 (info)", ratio("pub"), "", "")]
    if "removal" in R:
        rows += removal_rows(R["removal"])
    if "batch" in R:
        bt = R["batch"]
        rows.append(("batch publish (run 9), no subscribers, durability %s: messages/s, batches of 100 ÷ single publishes"
                     % (o.durability if o.store else "n/a: store off"),
                     cell(bt["ratio"], "", "%s/s in batches, %s/s single; answers other than 200: %d; %s"
                          % (bt["batch_mps"], bt["single_mps"], bt["non200"], bt["detail"])),
                     "≥ 5", verdict(bt["ratio"], "ge", 5)))
    # Steps that say what their figures mean themselves.
    for step in STEPS:
        if step.ONCE and hasattr(step, "summary_rows") and b.ran_number(step.NUMBER):
            rows += step.summary_rows(b.rounds_of(step.NAME).get(0))
    return rows


def rounds_tables(b, v):
    o = b.o
    s1 = b.rounds_of("loopback")
    s2, s3, s4, s5, s6 = (b.rounds_of(k, v) for k in ("ingest", "fanout", "hanging", "down", "signed"))
    has = lambda *names: any(b.ran(n) for n in names)
    g = lambda rounds, r, k: rounds.get(r, {}).get(k, "n/a")

    def ratio(a, r, ka, d, kd, floor):
        if r in a and r in d and ka in a[r] and kd in d[r] and float(d[r][kd]) >= floor:
            return fmt(float(a[r][ka]) / float(d[r][kd]))
        return "n/a"

    out = []
    if has("loopback", "fanout", "hanging"):
        out += ["", "Per round, steps 1, 3 and 4 (a round runs 1, 2, then 3, 4, 5 and 6 in the order 3 4 5 6, 4 5 6 3, 5 6 3 4, 6 3 4 5 in rounds 1, 2, 3, 4, ...; steps 2 to 6 each on a fresh hookcast):", "",
                "| Round | wrk → nginx req/s | run 3 deliveries/s | run 3 per subscriber /s | run 3 delivered | run 3 peak RSS MiB | run 3 publishes accepted/s | run 4 healthy %d, each /s | run 4 ÷ run 3, same round | run 4 hanging one: state in_flight/queued/retrying/dropped |" % (NSUBS - 1),
                "|---|---|---|---|---|---|---|---|---|---|"]
        for r in range(1, o.rounds + 1):
            f3 = s3.get(r, {})
            out.append("| %d | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                r, g(s1, r, "rps"), g(s3, r, "dps"), g(s3, r, "sub"),
                cell(f3.get("frac"), "%", f3.get("pass", "")), g(s3, r, "hwm"),
                cell(f3.get("pub"), "", f3.get("pub_detail", "")), g(s4, r, "sub"),
                ratio(s4, r, "sub", s3, "sub", 0.01), g(s4, r, "hang_state")))
    if has("ingest", "down"):
        out += ["", "Per round, steps 2 and 5, and the data directories (KiB after the window and drain, hookcast still running → after it exits):", "",
                "| Round | run 2 ingest, 200 answers/s | run 2 not 200 | run 2 ÷ wrk → nginx, same round | run 2 detail | run 5 healthy %d, each /s | run 5 ÷ run 3, same round | run 5 peak RSS MiB (run 3's) | run 5 VmRSS window start→end MiB (run 3's) | run 5 down one: state failed/retrying/queued/dead letters | data dir KiB run 2 / run 3 / run 4 / run 5 | left in hookcast.db after exit, messages/retries/dead letters: run 2 / run 3 / run 4 / run 5 |" % NSUBS,
                "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in range(1, o.rounds + 1):
            out.append("| %d | %s | %s | %s | %s | %s | %s | %s (%s) | %s (%s) | %s | %s | %s |" % (
                r, g(s2, r, "rps"), g(s2, r, "non200"), ratio(s2, r, "rps", s1, "rps", 1), g(s2, r, "detail"),
                g(s5, r, "sub"), ratio(s5, r, "sub", s3, "sub", 0.01), g(s5, r, "hwm"), g(s3, r, "hwm"),
                g(s5, r, "rssw"), g(s3, r, "rssw"), g(s5, r, "down_state"),
                " / ".join(str(g(s, r, "du")) for s in (s2, s3, s4, s5)),
                " / ".join(str(g(s, r, "left")) for s in (s2, s3, s4, s5))))
    if has("signed"):
        out += ["", "Per round, step 6 (%d subscribers, every delivery signed, messages over %d topics; hookcast CPU per delivery = its CPU s/s over the window ÷ deliveries/s):" % (NSUBS, NTOPICS), "",
                "| Round | run 6 deliveries/s | run 6 ÷ run 3, same round | run 6 delivered | run 6 publishes accepted/s | run 6 peak RSS MiB (run 3's) | hookcast CPU µs per delivery, run 6 (run 3) | check sink: signed deliveries verified | data dir KiB run 6 | left in hookcast.db after exit, run 6 |",
                "|---|---|---|---|---|---|---|---|---|---|"]
        for r in range(1, o.rounds + 1):
            f6, f3 = s6.get(r, {}), s3.get(r, {})
            cpu = lambda f: fmt(float(f["cpu"]) * 1e6 / f["dps"], 1) if "cpu" in f and f.get("dps", 0) >= 1 else "n/a"
            out.append("| %d | %s | %s | %s | %s | %s (%s) | %s (%s) | %s | %s | %s |" % (
                r, g(s6, r, "dps"), ratio(s6, r, "dps", s3, "dps", 1),
                cell(f6.get("frac"), "%", f6.get("pass", "")), cell(f6.get("pub"), "", f6.get("pub_detail", "")),
                g(s6, r, "hwm"), g(s3, r, "hwm"), cpu(f6), cpu(f3), g(s6, r, "sig"), g(s6, r, "du"), g(s6, r, "left")))
    return out


# Side by side with the baseline: per step, the figure compared and its key.
SIDE = [("ingest", "rps", 0, "ingest (run 2): publishes answered 200 /s"),
        ("fanout", "dps", 0, "deliveries/s (run 3), %d subscribers" % NSUBS),
        ("fanout", "hwm", 1, "peak RSS MiB (run 3)"),
        ("hanging", "sub", 2, "one hanging subscriber (run 4): healthy %d, each /s" % (NSUBS - 1)),
        ("down", "sub", 2, "one down subscriber (run 5): healthy %d, each /s" % NSUBS),
        ("down", "hwm", 1, "peak RSS MiB (run 5)"),
        ("signed", "dps", 0, "signed over topics (run 6): deliveries/s"),
        ("fanout", "fx10", 0, "fixed-count fan-out (run 3), 10 subscribers: deliveries/s"),
        ("fanout", "fx100", 0, "fixed-count fan-out (run 3), 100 subscribers: deliveries/s"),
        ("fanout", "fx1000", 0, "fixed-count fan-out (run 3), 1,000 subscribers: deliveries/s"),
        ("threads", "ratio", 3, "delivery_threads 2 ÷ 1 (run 11)"),
        ("mirror", "hc_dps", 0, "hookcast beside the nginx mirror (run 12): deliveries/s"),
        ("mirror", "ratio", 3, "hookcast ÷ nginx mirror (run 12)"),
        ("10k", "rss", 1, "10,000 subscribers: RSS MiB (run 7)"),
        ("10k", "ms", 1, "10,000 subscribers: listing ms (run 7)"),
        ("removal", "pub_max_ms", 1, "removal (run 8): publish latency max, ms"),
        ("removal", "pub_p99_ms", 1, "removal (run 8): publish latency p99, ms"),
        ("removal", "restart1", 3, "restart with the backlog (run 8): /healthz, /readyz s"),
        ("removal", "restart2", 3, "restart after the removals (run 8): /healthz, /readyz s"),
        ("batch", "batch_mps", 0, "batch publish (run 9): messages/s in batches of 100"),
        ("batch", "single_mps", 0, "batch publish (run 9): messages/s single")]


def baseline_table(b):
    out = ["", "Side by side: the baseline (old) and this binary (new), in the same run, each step run for both back to back (old first in odd rounds, new first in even ones); new ÷ old is the median of same-round ratios, with their min–max:", "",
           "| Figure | old | new | new ÷ old |", "|---|---|---|---|"]
    for step, key, dec, label in SIDE:
        old, new = b.rounds_of(step, "old"), b.rounds_of(step, "new")
        if not old and not new:
            continue
        ov, nv = vals(old, key) if key not in ("restart1", "restart2") else [], vals(new, key) if key not in ("restart1", "restart2") else []
        if key in ("restart1", "restart2"):
            show = lambda rs: " / ".join("%s s" % x for x in rs[0][key][:2]) if 0 in rs and key in rs[0] else "n/a"
            ratios = []
            if 0 in old and 0 in new and key in old[0] and key in new[0]:
                ratios = [float(n) / float(o) for n, o in zip(new[0][key][:2], old[0][key][:2]) if float(o) > 0]
            out.append("| %s | %s | %s | %s |" % (label, show(old), show(new), " / ".join(fmt(r) for r in ratios) or "n/a"))
            continue
        rat = list(same_round(new, old, key, key, floor=1e-9).values())
        out.append("| %s | %s | %s | %s |" % (
            label, fmt(median(ov), dec) if ov else "n/a", fmt(median(nv), dec) if nv else "n/a",
            "%s (%s)" % (fmt(median(rat)), spread(rat, 3)) if rat else "n/a"))
    return out


def fstype(path):
    r = subprocess.run(["findmnt", "-n", "-o", "FSTYPE", "--target", path], capture_output=True, text=True)
    return r.stdout.strip() or "?"


def write(b, info):
    """Write bench/results.md, print it, and return the verdicts missed."""
    o = b.o
    R = aggregate(b, "new")
    rows = summary_rows(b, R)
    rounds_steps = [s for s in (1, 2, 3, 4, 5, 6, 11, 12) if b.ran_number(s)]
    if rounds_steps:
        rounds_note = "%d round%s of steps %s interleaved%s; rates are medians (min–max over the rounds)" % (
            o.rounds, "" if o.rounds == 1 else "s", ", ".join(map(str, rounds_steps)),
            " (3, 4, 5 and 6 in a rotating order)" if o.rounds > 1 and any(s in rounds_steps for s in (3, 4, 5, 6)) else "")
    else:
        rounds_note = "steps 1-6 not run"
    if o.store:
        df = subprocess.run(["df", "-P", b.tmp], capture_output=True, text=True).stdout.splitlines()
        store_note = "store on: every hookcast started with a fresh `--data-dir` (on %s, %s) and `--durability %s`" % (
            fstype(b.tmp), df[1].split()[0] if len(df) > 1 else "?", o.durability)
    else:
        store_note = "store off (--no-store: no `--data-dir`, no `--durability`)"
    if o.hookcast_args:
        store_note += "; extra flags: `%s`" % " ".join(o.hookcast_args)
    pub_note = {"0": "as much as it can (closed loop)",
                "auto": "the round's wrk → nginx rate ÷ %d publishes/s (the loopback limit's worth of deliveries)" % NSUBS
                }.get(o.pub_rate, "%s publishes/s" % o.pub_rate)
    lines = ["# hookcast bench results", "",
             "Date: %s; machine: %d cores, %s, load average at start %s (other work on the box skews every figure);" % (
                 time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), os.cpu_count(), info["uname"], info["load"]),
             "%s (%s, built %s); nginx %s; wrk %s." % (info["version"], o.binary, info["id"], info["nginx"], info["wrk"])]
    if o.baseline:
        lines.append("Baseline: %s (%s, built %s)." % (info["old_version"], o.baseline, info["old_id"]))
    lines.append("Body %d B; windows of %d s; %s; publisher wrk -t%d -c%d offering %s (pause per request %d ms, after a 503 %d ms), for ingest (run 2) wrk -t%d -c%d; %d subscribers = nginx `return 204`; %s%s." % (
        BODY_BYTES, o.duration, rounds_note, o.pub_threads, o.pub_conns, pub_note, o.pub_delay_ms, o.backoff_ms,
        o.ingest_threads, o.ingest_conns, NSUBS, store_note, "; --quick (small counts: a smoke run, not figures)" if o.quick else ""))
    if b.ran("signed"):
        lines.append("Run 6: hookcast with `--signing-secret` (one 32-byte test secret: every delivery signed); the publisher cycles through topics %s0–%s%d; subscribers 0–%d take `%s`, %d–%d the %d names, so each still gets every message; a check sink (one more nginx port, on %s0 alone, out of the figures) logs the webhook-* headers of its deliveries, each verified with HMAC-SHA256." % (
            TOPIC_PREFIX, TOPIC_PREFIX, NTOPICS - 1, NSUBS // 2 - 1, TOPIC_PATTERN, NSUBS // 2, NSUBS - 1, NTOPICS, TOPIC_PREFIX))
    if any(b.ran(n) for n in ("fanout", "threads", "mirror")):
        lines.append("Fixed-count fan-out (runs 3, 11 and 12): wrk -t1 -c%d with bench/count.lua publishes %s messages to 100 subscribers (as many deliveries at any other count: messages × subscribers = %s), as fast as they are taken (a 503 is retried after %d ms, not counted); the sinks are a second nginx, `return 204`, that logs every delivery as port and `$msec` (buffered); deliveries/s = the deliveries counted at the sinks ÷ the time from the first publish sent to the last delivery logged; every sink's count is checked against the messages accepted. Run 11 runs it with `--delivery-threads 1` and `2` back to back; run 12 with hookcast and with nginx's mirror module (one `mirror` per sink, answering 200 itself) back to back, the order of the two turning from round to round." % (
            o.fanout_conns, format(o.fanout_msgs, ","), format(o.fanout_msgs * NSUBS, ","), o.backoff_ms))
    if b.ran("removal"):
        lines.append("Run 8: subscribers on ports of one listener that accepts and never answers, hookcast with `keepalive_ttl` and `reap_interval` of a day and `delivery_timeout 5`, so the backlog stays pending (the hanging deliveries become retries and the subscribers failing); the publisher during the removals posts every %d ms on one keep-alive connection; the restarts use the same data directory and time from the process's start." % 10)
    lines += ["", "| Figure | Value | Target | Result |", "|---|---|---|---|",
              "| Date | %s | | |" % time.strftime("%Y-%m-%d", time.gmtime())]
    lines += ["|" + "|".join(" %s " % c if c else " " for c in row) + "|" for row in rows]
    lines += rounds_tables(b, "new")
    lines += fixed_table(b, "new")
    if o.baseline:
        lines += baseline_table(b)
    if b.notes:
        lines += ["", "Observations (hookcast behaviour worth a look; not failures of the bench):"]
        lines += ["- " + n for n in b.notes]
    if b.problems:
        lines += ["", "Problems seen:"]
        lines += ["- " + p for p in b.problems]
    text = "\n".join(lines) + "\n"
    with open(o.results, "w") as f:
        f.write(text)
    print()
    print(text, end="")
    return [row[0] for row in rows if row[3] not in ("", "PASS", "not applicable")]

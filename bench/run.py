#!/usr/bin/env python3
"""hookcast's speed, memory and removal costs (`make bench`).

Usage: python3 bench/run.py [--binary build/hookcast] [--baseline OLD]
                            [--only N[,M...]] [--quick] [options]

The steps, in the order they run (bench/steps/sNN_*.py, each says what it
measures and checks):
  1 loopback  wrk -> one nginx port: the machine's limit for a POST
  2 ingest    hookcast with no subscribers: publishes answered 200 /s
  3 fanout    fixed count: N messages to 10, 100 and 1,000 logging nginx
              subscribers, deliveries/s from the first publish to the last
              delivery, every sink counted; paced window: 100 subscribers,
              deliveries/s (the reference of 4-6), all delivered, peak RSS
  4 hanging   one hanging subscriber among the 100: the 99's rate
  5 down      one subscriber refusing connections beside the 100
  6 signed    every delivery signed, messages over 10 topics
  7 10k       10,000 registered subscribers: RSS, listing time
  8 removal   100 subscribers x 20,000 pending: publish latency while they
              are deregistered; /healthz and /readyz after kill -9
  9 batch     batches of 100 to /sendMessages against single publishes:
              messages/s, no subscribers
 10 https     100 TLS nginx subscribers offering HTTP/2: deliveries/s and
              connections, http2 yes against no
 11 threads   step 3's fixed count, 100 subscribers, --delivery-threads 2
              against 1 (not applicable with a binary that refuses the flag)
 12 mirror    step 3's fixed count, 100 subscribers, hookcast against nginx's
              mirror module fanning out to the same sinks
Steps 1 to 6 (and 11, 12) run --rounds times, interleaved, so that a drift
in the machine's load hits them alike: every round runs 1 then 2 (its
ratio's reference just before it), then 3, 4, 5 and 6 in an order that
rotates from round to round (3 4 5 6, 4 5 6 3, ...), then any other
per-round step in its number's order (11, 12). Steps 7, 8, 9 and 10 run
once, after the rounds (9 pairs windows of its own, 10 alternates its own
--rounds pairs). Ratios are taken within a round, and their median is
judged.

With --baseline OLD, every step that starts a hookcast runs twice back to
back, OLD and the binary (old first in odd rounds, new first in even ones),
and the record gets a table of both side by side with new ÷ old.

Everything runs on 127.0.0.1 (free ports; every hookcast may connect to
loopback only); every process started is stopped on exit, failure or
Ctrl-C. The binaries measured are copies (a rebuild during the run does not
change them). The record goes to bench/results.md (--results), and to
stdout. Exit status: 0 when the bench ran (a missed target is reported, not
fatal unless --strict); 1 when a check failed or something broke; 2 when a
tool is missing.

The files: run.py (this driver: options, the order, the lock, clean-up);
steps/sNN_*.py (one step each); common.py (the processes and the measured
publish window the steps share); report.py (the summary, the targets and
the record); helpers.py (listing sums, registration, signature check, free
ports); hang.py (subscribers that never answer); post.lua (wrk's publisher:
pacing, topics, the summary line); count.lua (wrk's publisher of a fixed
number of messages, steps 3, 11 and 12); nginx.conf.in (the sinks);
sinks.conf.in (the logging sinks of the fixed-count fan-out); mirror.conf.in
(step 12's nginx mirror).

Needs nginx, wrk, ss, openssl (step 10) and python3 (standard library only)."""
import argparse
import fcntl
import hashlib
import http.client
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import report  # noqa: E402
from common import Bench, StepFailed, start_sinks  # noqa: E402
from steps import STEPS  # noqa: E402

ROTATING = [3, 4, 5, 6]     # the steps whose order rotates from round to round


def env(name, default):
    return os.environ.get("BENCH_" + name, default)


def options(argv):
    p = argparse.ArgumentParser(prog="bench/run.py", description=__doc__.split("\n\n", 2)[2],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    a = p.add_argument
    a("--binary", default=os.environ.get("HOOKCAST", os.path.join(ROOT, "build/hookcast")),
      help="the hookcast to measure [build/hookcast]")
    a("--baseline", metavar="OLD", help="an older hookcast to run beside it, step by step")
    a("--only", metavar="N[,M]", help="run only these steps (numbers; the bench keeps its order)")
    a("--quick", action="store_true",
      help="a smoke run: 1 round of 3-s windows, 1,000 subscribers in step 7, 10 x 2,000 in step 8 "
           "(flags given override these); the record goes to /tmp/hookcast-bench-quick.md unless --results says otherwise")
    a("--rounds", type=int, default=int(env("ROUNDS", "3")), help="rounds of steps 1-6 [3]")
    a("--duration", type=int, default=int(env("DURATION", "10")), help="seconds of each measured window [10]")
    a("--pub-rate", default=env("PUB_RATE", "auto"),
      help="publishes/s offered in steps 3-6: auto = the round's wrk->nginx rate / 100; N; 0 = closed loop [auto]")
    a("--pub-threads", type=int, default=int(env("PUB_THREADS", "1")), help="wrk -t for steps 3-6 [1]")
    a("--pub-conns", type=int, default=int(env("PUB_CONNS", "4")), help="wrk -c for steps 3-6 [4]")
    a("--ingest-threads", type=int, default=int(env("INGEST_THREADS", "2")), help="wrk -t for step 2 [2]")
    a("--ingest-conns", type=int, default=int(env("INGEST_CONNS", "64")), help="wrk -c for step 2 [64]")
    a("--backoff-ms", type=int, default=int(env("BACKOFF_MS", "10")), help="publisher pause after a 503 [10]")
    a("--pub-delay-ms", type=int, default=int(env("PUB_DELAY_MS", "0")), help="publisher pause before every request [0]")
    a("--drain-max", type=int, default=int(env("DRAIN_MAX", "60")), help="seconds to wait for the queues to empty [60]")
    a("--no-store", dest="store", action="store_false", default=env("STORE", "1") == "1",
      help="start hookcast without --data-dir/--durability (a hookcast from before the store)")
    a("--durability", default=env("DURABILITY", "full"), help="--durability of every hookcast [full]")
    a("--hookcast-args", default=env("HOOKCAST_ARGS", ""), help="extra flags for every hookcast (split on spaces)")
    a("--fanout-msgs", type=int, default=int(env("FANOUT_MSGS", "3000")),
      help="fixed-count fan-out (steps 3, 11, 12): messages published to 100 subscribers; "
           "other subscriber counts get as many deliveries (x 100 / subscribers) [3000]")
    a("--fanout-subs", default=env("FANOUT_SUBS", "10,100,1000"),
      help="step 3's fixed-count subscriber counts, comma-separated, each at most 1000 [10,100,1000]")
    a("--fanout-conns", type=int, default=int(env("FANOUT_CONNS", "64")),
      help="wrk -c of the fixed-count publisher (-t1) [64]")
    a("--no-fanout-window", dest="fanout_window", action="store_false", default=True,
      help="step 3 without its paced window (the reference of steps 4 to 6)")
    a("--subs-10k", type=int, default=10000, help="subscribers registered in step 7 [10000]")
    a("--removal-subs", type=int, default=100, help="subscribers with a backlog in step 8 [100]")
    a("--removal-pending", type=int, default=20000, help="messages pending for each in step 8 [20000]")
    a("--restart-max", type=int, default=300, help="seconds step 8 waits for a restart or for the removals [300]")
    a("--results", help="where the record goes [bench/results.md]")
    a("--keep", action="store_true", default=env("KEEP", "0") == "1", help="keep the temporary directory")
    a("--strict", action="store_true", default=env("STRICT", "0") == "1", help="exit 1 if any target is missed")
    a("--nginx", default=os.environ.get("NGINX") or shutil.which("nginx") or "/usr/sbin/nginx")
    a("--wrk", default=os.environ.get("WRK", "wrk"))
    if "--quick" in argv:   # smaller defaults; a flag given explicitly still wins
        p.set_defaults(rounds=1, duration=3, subs_10k=1000, removal_subs=10, removal_pending=2000,
                       fanout_msgs=500)
    o = p.parse_args(argv)
    numbers = [s.NUMBER for s in STEPS]
    o.steps = numbers
    if o.only:
        try:
            o.steps = sorted({int(x) for x in o.only.split(",")})
        except ValueError:
            p.error("--only takes step numbers, e.g. 1,3")
        if not set(o.steps) <= set(numbers):
            p.error("--only: the steps are %s" % ", ".join(map(str, numbers)))
    if o.rounds < 1:
        p.error("--rounds must be at least 1")
    if o.pub_rate not in ("auto", "0"):
        try:
            float(o.pub_rate)
        except ValueError:
            p.error("--pub-rate must be auto, 0 or publishes per second")
    try:
        o.fanout_subs = [int(x) for x in o.fanout_subs.split(",") if x]
    except ValueError:
        p.error("--fanout-subs takes subscriber counts, e.g. 10,100,1000")
    if not all(1 <= n <= 1000 for n in o.fanout_subs):
        p.error("--fanout-subs: from 1 to 1000 subscribers")
    if o.fanout_msgs < 1:
        p.error("--fanout-msgs must be at least 1")
    o.hookcast_args = o.hookcast_args.split()
    return o


def check_tools(o):
    missing = []
    if not shutil.which(o.nginx):
        missing.append("nginx (%s)" % o.nginx)
    if not shutil.which(o.wrk):
        missing.append("wrk")
    if not shutil.which("ss"):
        missing.append("ss (iproute2)")
    if 10 in o.steps and not shutil.which("openssl"):
        missing.append("openssl (step 10's certificates)")
    for b in [o.binary] + ([o.baseline] if o.baseline else []):
        if not os.access(b, os.X_OK):
            missing.append("%s (build it first: make)" % b)
    if missing:
        print("bench: missing: " + ", ".join(missing), file=sys.stderr)
        print("bench: install with: sh scripts/deps.sh bench", file=sys.stderr)
        sys.exit(2)


def binary_id(path):
    with open(path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:12]
    built = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(os.path.getmtime(path)))
    return "%s, sha256 %s" % (built, digest)


def version(path):
    r = subprocess.run([path, "--version"], capture_output=True, text=True)
    return ((r.stdout or r.stderr).splitlines() or ["?"])[0]


def check_store(b, binary, original):
    """With the store on, this hookcast must know its flags; with it off, it
    must have none (it would use its default data_dir, shared by all)."""
    probe = os.path.join(b.tmp, "data-probe")
    argv = [binary, "--listen", "127.0.0.1:0", "--data-dir", probe]
    if not b.o.store:
        ok = subprocess.run(argv + ["--check-config"], capture_output=True).returncode == 0
        shutil.rmtree(probe, ignore_errors=True)
        if ok:
            b.say("%s has a store: --no-store would run it on its default data_dir" % original)
            sys.exit(2)
        return
    r = subprocess.run(argv + ["--durability", b.o.durability] + b.o.hookcast_args + ["--check-config"],
                       capture_output=True, text=True)
    shutil.rmtree(probe, ignore_errors=True)
    if r.returncode != 0:
        b.say("%s does not take --data-dir/--durability: %s" % (original, (r.stdout + r.stderr)[:300]))
        b.say("(a hookcast from before the store: run with --no-store)")
        sys.exit(2)
    if report.fstype(b.tmp) in ("tmpfs", "ramfs"):
        b.say("warning: %s is on %s: fsync costs nothing there, so durability %s is not measured (set TMPDIR to a disk)"
              % (b.tmp, report.fstype(b.tmp), b.o.durability))


def run_step(b, step, variant, rnd):
    """Run one step for one binary; a failure is recorded, not raised."""
    try:
        fig = step.run(b, b.binaries[variant], variant, rnd)
    except StepFailed as e:
        if e.figures:
            b.record(step.NAME, variant, rnd, e.figures)
        b.problem("step %d (%s%s) failed" % (step.NUMBER, "round %d" % rnd if rnd else "once",
                                             "" if variant == "new" else ", " + variant))
    except (OSError, RuntimeError, ValueError, KeyError, http.client.HTTPException) as e:
        b.problem("step %d (%s%s) failed: %s: %s" % (step.NUMBER, "round %d" % rnd if rnd else "once",
                                                 "" if variant == "new" else ", " + variant, type(e).__name__, e))
    else:
        b.record(step.NAME, variant, rnd, fig)
        return
    # What the failed step left running goes now, nginx excepted.
    for p in list(b.procs):
        if p is not b.nginx and p is not getattr(b, "sinks", None):
            b.stop(p, signal.SIGKILL, 2)


def variants(b, step, rnd):
    if not step.USES_HOOKCAST or not b.o.baseline:
        return ["new"]
    return ["old", "new"] if rnd % 2 else ["new", "old"]


def round_line(b, r):
    g = lambda name, key, v="new": b.rounds_of(name, v).get(r, {}).get(key, "n/a")
    parts = []
    for v in (["new", "old"] if b.o.baseline else ["new"]):
        tag = "" if v == "new" else " [old]"
        if b.ran("loopback") and v == "new":
            parts.append("wrk→nginx %s req/s" % g("loopback", "rps"))
        if b.ran("ingest"):
            parts.append("run 2%s ingest %s/s" % (tag, g("ingest", "rps", v)))
        if b.ran("fanout"):
            parts.append("run 3%s %s deliveries/s, %s %% delivered, peak RSS %s MiB" % (
                tag, g("fanout", "dps", v), g("fanout", "frac", v), g("fanout", "hwm", v)))
        if b.ran("hanging"):
            parts.append("run 4%s healthy 99 %s/s each" % (tag, g("hanging", "sub", v)))
        if b.ran("down"):
            parts.append("run 5%s healthy 100 %s/s each" % (tag, g("down", "sub", v)))
        if b.ran("signed"):
            parts.append("run 6%s signed %s deliveries/s, %s %% delivered" % (tag, g("signed", "dps", v), g("signed", "frac", v)))
        fixed = b.rounds_of("fanout", v).get(r, {}).get("fixed", {})
        for n, f in sorted(fixed.items()):
            parts.append("run 3%s fixed %d x %d: %s deliveries/s, %s" % (tag, f["msgs"], n, f["dps"], f["pass"]))
        f11 = b.rounds_of("threads", v).get(r)
        if f11 is not None:
            parts.append("run 11%s threads 2 ÷ 1 %s" % (tag, "n/a (not applicable)" if "na" in f11 else f11.get("ratio", "n/a")))
        f12 = b.rounds_of("mirror", v).get(r)
        if f12 is not None:
            parts.append("run 12%s hookcast ÷ nginx mirror %s (mirror %s deliveries/s, %s)" % (
                tag, f12.get("ratio", "n/a"), f12.get("mirror", {}).get("dps", "n/a"), f12.get("mirror", {}).get("pass", "n/a")))
    return "round %d/%d: %s" % (r, b.o.rounds, "; ".join(parts))


def main(argv):
    o = options(argv)
    check_tools(o)
    o.binary_orig = o.binary
    # Two benches at once share the cores and both measure garbage: take a
    # lock, and wait for a run already holding it.
    lock = open(os.path.join(tempfile.gettempdir(), "hookcast-bench.lock"), "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        print("bench: another bench run is in progress; waiting for it", file=sys.stderr)
        fcntl.flock(lock, fcntl.LOCK_EX)
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(65536, hard), hard))
    tmp = tempfile.mkdtemp(prefix="hookcast-bench.")
    b = Bench(o, tmp)
    b.nginx = None
    names = {s.NUMBER: s.NAME for s in STEPS}
    b.ran = lambda name: any(names[n] == name for n in o.steps)
    b.ran_number = lambda n: n in o.steps
    if o.results is None:
        o.results = (os.path.join(tempfile.gettempdir(), "hookcast-bench-quick.md") if o.quick
                     else os.path.join(HERE, "results.md"))
    # SIGTERM ends the run as Ctrl-C does, through the cleanup below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        info = {"load": load, "uname": " ".join(os.uname()[i] for i in (0, 2)),
                "nginx": subprocess.run([o.nginx, "-v"], capture_output=True, text=True).stderr.strip().rsplit("/", 1)[-1],
                "wrk": (subprocess.run([o.wrk, "--version"], capture_output=True, text=True).stdout.split() or ["?", "?"])[1]}
        # Measure copies: the binaries under build/ may be rebuilt meanwhile.
        b.binaries = {}
        for variant, path in (("new", o.binary), ("old", o.baseline)):
            if path is None:
                continue
            info[{"new": "id", "old": "old_id"}[variant]] = binary_id(path)
            copy = os.path.join(tmp, "hookcast" if variant == "new" else "hookcast-old")
            shutil.copy2(path, copy)
            b.binaries[variant] = copy
            info[{"new": "version", "old": "old_version"}[variant]] = version(copy)
            b.say("measuring a copy of %s (%s)%s" % (path, info[{"new": "id", "old": "old_id"}[variant]],
                                                  " as the baseline" if variant == "old" else ""))
            check_store(b, copy, path)
        steps = {s.NUMBER: s for s in STEPS if s.NUMBER in o.steps}
        if any(n in steps for n in (1, 3, 4, 5, 6)):
            b.start_nginx()
            b.nginx = b.procs[-1]
        if any(n in steps for n in (3, 11, 12)):
            start_sinks(b)
        per_round = [n for n in steps if not steps[n].ONCE]
        if per_round:
            for r in range(1, o.rounds + 1):
                k = (r - 1) % len(ROTATING)
                order = [1, 2] + ROTATING[k:] + ROTATING[:k]
                order += sorted(n for n in per_round if n not in order)
                for n in order:
                    if n in steps:
                        for v in variants(b, steps[n], r):
                            run_step(b, steps[n], v, r)
                b.say(round_line(b, r))
            b.say("per round:")
            for r in range(1, o.rounds + 1):
                b.say("  " + round_line(b, r))
        for n in sorted(steps):
            if steps[n].ONCE:
                for v in variants(b, steps[n], 1):
                    run_step(b, steps[n], v, 0)
        missed = report.write(b, info)
        if o.quick:
            b.say("the record of this quick run: %s" % o.results)
    except StepFailed as e:
        b.say(str(e))
        return 1
    finally:
        b.cleanup()
    if b.problems:
        return 1
    if o.strict and missed:
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        sys.exit(130)

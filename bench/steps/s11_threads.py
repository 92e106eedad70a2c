"""Step 11, delivery threads: step 3's fixed-count fan-out to 100 logging
sinks, on a fresh hookcast started with `--delivery-threads 1` and on one
with `--delivery-threads 2`, back to back in the same round (1 first in odd
rounds, 2 first in even ones). Figure: deliveries/s with 2 ÷ with 1, same
round (judged on the median over the rounds: >= 1.3). Checks: as step 3's
fixed count, for both runs: every sink logged every accepted message.
A hookcast that refuses the flag (`--delivery-threads 2 --check-config`
exits non-zero: a build from before delivery_threads) makes the step not
applicable, reported as such, not failed."""
import os
import shutil
import subprocess

from common import StepFailed, fanout_fixed, fmt, NSUBS

NUMBER, NAME, ONCE, USES_HOOKCAST = 11, "threads", False, True
TITLE = "delivery threads: 2 against 1, 100 subscribers"
TARGET = 1.3


def supported(b, binary):
    """(True, "") when BINARY takes --delivery-threads 2; else (False, why)."""
    cache = b.__dict__.setdefault("delivery_threads_ok", {})
    if binary not in cache:
        probe = os.path.join(b.tmp, "data-probe-threads")
        argv = [binary, "--listen", "127.0.0.1:0"]
        if b.o.store:
            argv += ["--data-dir", probe, "--durability", b.o.durability]
        r = subprocess.run(argv + b.o.hookcast_args + ["--delivery-threads", "2", "--check-config"],
                           capture_output=True, text=True)
        shutil.rmtree(probe, ignore_errors=True)
        why = " ".join((r.stdout + r.stderr).split())[:200]
        cache[binary] = (r.returncode == 0, "the binary refuses --delivery-threads 2 (exit %d: %s)" % (r.returncode, why))
    return cache[binary]


def run(b, binary, variant, rnd):
    o = b.o
    tag = "run11-r%d%s" % (rnd, "" if variant == "new" else "-" + variant)
    ok, why = supported(b, binary)
    if not ok:
        b.say("step 11 (round %d/%d): not applicable: %s" % (rnd, o.rounds, why))
        return {"na": why}
    fig = {}
    order = (1, 2) if rnd % 2 else (2, 1)
    for t in order:
        b.say("step 11 (round %d/%d): fixed count, hookcast --delivery-threads %d, %d logging nginx subscribers"
              % (rnd, o.rounds, t, NSUBS))
        try:
            f = fanout_fixed(b, binary, "%s-t%d" % (tag, t), NSUBS, flags=["--delivery-threads", str(t)])
        except StepFailed:
            raise StepFailed(tag, figures=fig or None)
        fig[t] = f
        if f["pass"] != "PASS":
            b.problem("%s-t%d: not every accepted message reached every subscriber: %s" % (tag, t, f["detail"]))
    fig["t1_dps"], fig["t2_dps"] = fig[1]["dps"], fig[2]["dps"]
    if fig[1]["dps"] > 0:
        fig["ratio"] = fmt(fig[2]["dps"] / fig[1]["dps"])
    b.say("  %s: --delivery-threads 2 ÷ 1: %s (%d / %d deliveries/s)" % (tag, fig.get("ratio", "n/a"), fig[2]["dps"], fig[1]["dps"]))
    return fig

"""Step 1, the loopback limit: wrk (-t2 -c64) POSTing a 256-byte body at one
nginx sink port for --duration seconds. Its requests/s is what steps 2 and
3 are divided by, and what paces the publishers of steps 3 to 6. Checks:
wrk printed its summary; nginx answered nothing but 2xx."""
import os

from common import StepFailed, run_wrk, wrk_fields, wrk_text, wrk_wait, BODY_BYTES

NUMBER, NAME, ONCE, USES_HOOKCAST = 1, "loopback", False, False
TITLE = "the loopback limit: wrk -> one nginx port"


def run(b, binary, variant, rnd):
    out = os.path.join(b.tmp, "wrk-nginx-r%d.txt" % rnd)
    b.say("step 1 (round %d/%d): wrk -t2 -c64 -d%ds POST %d B -> one nginx port"
          % (rnd, b.o.rounds, b.o.duration, BODY_BYTES))
    wrk_wait(b, run_wrk(b, 2, 64, b.o.duration, "http://127.0.0.1:%d/event" % b.nginx_ports[0], out))
    w = wrk_fields(out)
    if not w.get("duration_us"):
        b.problem("step 1 (round %d): no wrk summary: %s" % (rnd, wrk_text(out)))
        raise StepFailed("step 1")
    if w["non2xx"]:
        b.problem("step 1 (round %d): nginx answered %d non-2xx" % (rnd, w["non2xx"]))
    rps = round(w["requests"] / (w["duration_us"] / 1e6))
    b.say("  wrk -> nginx: %d req/s" % rps)
    return {"rps": rps}

"""What the bench's steps share: the run's state (Bench), the processes it
starts (nginx, hookcast, wrk, the hanging listener) and the measured publish
window that steps 3 to 6 have in common.

Everything listens on 127.0.0.1 and every hookcast is started with
--allow-targets "127.0.0.0/8 ::1/128", so no connection leaves loopback.
Every process started here is registered with the Bench and stopped on exit,
on failure or Ctrl-C alike (Bench.cleanup)."""
import http.client
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time

import helpers

HERE = os.path.dirname(os.path.abspath(__file__))

NSUBS = 100          # the fan-out steps' nginx subscribers
BODY_BYTES = 256     # every message
# Step 6: the publisher cycles through NTOPICS topics TOPIC_PREFIX0..; half
# the subscribers take them through TOPIC_PATTERN, half through the names.
# Every delivery is signed with SIGN_SECRET, a fixed 32-byte test key
# ("hookcast-bench-signing-secret-32").
NTOPICS = 10
TOPIC_PREFIX = "bench.t"
TOPIC_PATTERN = "bench.*"
SIGN_SECRET = "whsec_aG9va2Nhc3QtYmVuY2gtc2lnbmluZy1zZWNyZXQtMzI="


class StepFailed(Exception):
    """A step could not give its figures (already recorded as a problem);
    FIGURES: what it has to show for the round all the same."""

    def __init__(self, what, figures=None):
        super().__init__(what)
        self.figures = figures


def fmt(x, dec=3):
    """x with DEC decimals, as the record prints numbers."""
    return "%.*f" % (dec, x)


def median(values):
    return statistics.median(values) if values else None


def spread(values, dec):
    """"min–max over N rounds", "1 round" or "no rounds"."""
    if not values:
        return "no rounds"
    if len(values) == 1:
        return "1 round"
    return "%s–%s over %d rounds" % (fmt(min(values), dec), fmt(max(values), dec), len(values))


def du_kb(path):
    """The disk use of PATH in KiB, "n/a" when it is not there."""
    if not os.path.exists(path):
        return "n/a"
    out = subprocess.run(["du", "-sk", path], capture_output=True, text=True).stdout
    return out.split()[0] if out else "n/a"


def http_get(url, timeout=30):
    """(status, body) of a GET; (None, reason) when it could not be made."""
    u = url.split("/", 3)
    host, port = u[2].rsplit(":", 1)
    c = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        c.request("GET", "/" + (u[3] if len(u) > 3 else ""))
        r = c.getresponse()
        return r.status, r.read()
    except (OSError, http.client.HTTPException) as e:
        return None, str(e)
    finally:
        c.close()


class Bench:
    """The run: options, temporary directory, the problems and observations
    met, every process started (to stop at exit), the nginx sinks, and the
    results of every step, by step name, variant ("new" or "old") and
    round."""

    def __init__(self, opts, tmp):
        self.o = opts
        self.tmp = tmp
        self.problems = []
        self.notes = []
        self.procs = []
        self.results = {}
        self.nginx_ports = []
        self.check_port = None
        self.check_log = None

    # -- reporting as it goes ------------------------------------------
    def say(self, msg):
        print("bench: " + msg, file=sys.stderr, flush=True)

    def problem(self, msg):
        """Something broke: the run's exit status will be 1."""
        self.problems.append(msg)
        self.say("PROBLEM: " + msg)

    def note(self, msg):
        """Odd behaviour of hookcast that is no failure of the bench."""
        self.notes.append(msg)
        self.say("note: " + msg)

    def record(self, step, variant, rnd, figures):
        self.results.setdefault(step, {}).setdefault(variant, {})[rnd] = figures

    def rounds_of(self, step, variant="new"):
        return self.results.get(step, {}).get(variant, {})

    # -- processes -----------------------------------------------------
    def spawn(self, argv, **kw):
        p = subprocess.Popen(argv, **kw)
        self.procs.append(p)
        return p

    def stop(self, p, sig=signal.SIGTERM, secs=5):
        """Signal P, wait, SIGKILL after SECS: its exit status, 124 when it
        had to be killed."""
        if p is None:
            return 0
        if p.poll() is None:
            try:
                p.send_signal(sig)
                p.wait(secs)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                rc = 124
            else:
                rc = p.returncode
        else:
            rc = p.returncode
        if p in self.procs:
            self.procs.remove(p)
        return rc

    def cleanup(self):
        for p in reversed(list(self.procs)):
            self.stop(p, signal.SIGKILL if "hookcast" in str(p.args[0]) else signal.SIGTERM, 5)
        if self.tmp and os.path.isdir(self.tmp):
            if self.o.keep:
                self.say("kept " + self.tmp)
            else:
                shutil.rmtree(self.tmp, ignore_errors=True)

    # -- nginx ---------------------------------------------------------
    def start_nginx(self):
        """NSUBS sink ports answering 204, and the check sink, whose access
        log has every delivery's webhook-* headers."""
        prefix = os.path.join(self.tmp, "nginx")
        os.makedirs(prefix, exist_ok=True)
        self.check_log = os.path.join(prefix, "check.log")
        with open(os.path.join(HERE, "nginx.conf.in")) as f:
            template = f.read()
        for attempt in (1, 2, 3):
            ports = helpers.freeports(NSUBS + 1)
            self.nginx_ports, self.check_port = ports[:-1], ports[-1]
            listen = "".join("        listen 127.0.0.1:%d;\n" % p for p in self.nginx_ports)
            conf = (template.replace("@PREFIX@", prefix)
                    .replace("@CHECK_PORT@", str(self.check_port))
                    .replace("@LISTEN@\n", listen))
            p = spawn_nginx(self, prefix, conf, lambda: all(
                sink_status(q) == 204 for q in
                (self.nginx_ports[0], self.nginx_ports[-1], self.check_port)))
            if p is not None:
                self.say("nginx up (pid %d), ports %d..%d, check sink %d" % (
                    p.pid, self.nginx_ports[0], self.nginx_ports[-1], self.check_port))
                return
            self.say("nginx did not start (attempt %d)" % attempt)
        raise StepFailed("could not start nginx")

    def sub_addrs(self):
        return ["127.0.0.1:%d" % p for p in self.nginx_ports]


def spawn_nginx(b, prefix, conf, up, polls=50):
    """Writes CONF as PREFIX/nginx.conf and starts an nginx on it, logging
    under PREFIX: the process once up() says so (asked every 0.1 s, POLLS
    times at most), else None, the process stopped."""
    with open(os.path.join(prefix, "nginx.conf"), "w") as f:
        f.write(conf)
    with open(os.path.join(prefix, "stdout.log"), "w") as out:
        p = b.spawn([b.o.nginx, "-p", prefix + "/", "-c", prefix + "/nginx.conf",
                     "-e", prefix + "/error.log"], stdout=out, stderr=out)
    for _ in range(polls):
        if p.poll() is not None:
            break
        if up():
            return p
        time.sleep(0.1)
    b.stop(p)
    return None


def sink_status(port):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        c.request("POST", "/event", body=b"x")
        return c.getresponse().status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        c.close()


def refused(addr):
    """True when a connection to ADDR (host:port) is refused."""
    import socket
    host, port = addr.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=2).close()
    except ConnectionRefusedError:
        return True
    except OSError:
        return False
    return False


class HangServer:
    """bench/hang.py: N ports that accept and never answer."""

    def __init__(self, b, n, tag):
        self.b = b
        log = open(os.path.join(b.tmp, "hang-%s.log" % tag), "w")
        self.p = b.spawn([sys.executable, os.path.join(HERE, "hang.py"), str(n)],
                         stdout=subprocess.PIPE, stderr=log, text=True)
        line = self.p.stdout.readline()
        if not line:
            b.problem("%s: hang.py did not start" % tag)
            raise StepFailed(tag)
        self.ports = [int(x) for x in line.split()]
        self.addrs = ["127.0.0.1:%d" % p for p in self.ports]

    def stop(self):
        self.b.stop(self.p, signal.SIGTERM, 2)


# ------------------------------------------------------------------ wrk ---
def run_wrk(b, threads, conns, secs, url, out, rate=None, topics=0,
            script="post.lua", **more_env):
    """wrk with bench/SCRIPT (post.lua), in the background. RATE:
    requests/s in all, shared by the threads (None: no pacing); TOPICS:
    publish on TOPIC_PREFIX0 .. in turn; MORE_ENV: more of the script's
    settings (BENCH_BATCH=... for batch.lua)."""
    env = dict(os.environ,
               BENCH_BODY_BYTES=str(BODY_BYTES),
               BENCH_BACKOFF_MS=str(b.o.backoff_ms),
               BENCH_PUB_DELAY_MS=str(b.o.pub_delay_ms),
               BENCH_RATE=fmt(rate / threads) if rate else "0",
               BENCH_TOPICS=str(topics or 0),
               BENCH_TOPIC_PREFIX=TOPIC_PREFIX,
               **more_env)
    f = open(out, "w")
    return b.spawn([b.o.wrk, "-t%d" % threads, "-c%d" % conns, "-d%ds" % secs,
                    "--timeout", "10s", "-s", os.path.join(HERE, script), url],
                   stdout=f, stderr=subprocess.STDOUT, env=env)


def wrk_window(b, hc, tag, start, out):
    """One wrk window at HC: START() spawns wrk writing OUT. Its fields, its
    seconds and HC's CPU s/s over it; StepFailed if hookcast died or wrk
    printed no summary, a problem if wrk saw socket errors."""
    c0 = hc.cpu_secs()
    wrk_wait(b, start())
    if not hc.alive():
        raise StepFailed(tag)
    c1 = hc.cpu_secs()
    w = wrk_fields(out)
    if not w.get("duration_us"):
        b.problem("%s: no wrk summary: %s" % (tag, wrk_text(out)))
        raise StepFailed(tag)
    if wrk_errors(w):
        b.problem("%s: wrk saw %d socket errors/timeouts" % (tag, wrk_errors(w)))
    secs = w["duration_us"] / 1e6
    return w, secs, (c1 - c0) / secs


def wrk_wait(b, p):
    p.wait()
    b.procs.remove(p)


def wrk_fields(out):
    """post.lua's "BENCH k=v ..." summary line as a dict of ints."""
    with open(out) as f:
        for line in f:
            if line.startswith("BENCH "):
                return {k: int(v) for k, v in (kv.split("=") for kv in line.split()[1:])}
    return {}


def wrk_errors(w):
    return w.get("connect", 0) + w.get("read", 0) + w.get("write", 0) + w.get("timeout", 0)


def wrk_text(out):
    with open(out) as f:
        return f.read().replace("\n", "|")


# ------------------------------------------------------------- hookcast ---
class Hookcast:
    """One hookcast, with a fresh data directory of its own (unless the
    store is off), --durability, and nothing to connect to but loopback."""

    def __init__(self, b, binary, tag, flags=(), data_dir=None, port=0):
        self.b = b
        self.binary = binary
        self.tag = tag
        self.flags = list(flags)
        self.log = os.path.join(b.tmp, "hookcast-%s.log" % tag)
        self.data = None
        if b.o.store:
            self.data = data_dir or os.path.join(b.tmp, "data-" + tag)
            if data_dir is None:
                shutil.rmtree(self.data, ignore_errors=True)
        self.listen_port = port
        self.port = None
        self.p = None

    def argv(self):
        store = ["--data-dir", self.data, "--durability", self.b.o.durability] if self.data else []
        return ([self.binary, "--listen", "127.0.0.1:%d" % self.listen_port, "--log-level", "warn",
                 "--allow-targets", "127.0.0.0/8 ::1/128"]
                + store + self.b.o.hookcast_args + self.flags)

    def spawn(self):
        """Start the process and return at once (the restart timing)."""
        with open(self.log, "a") as log:
            self.p = self.b.spawn(self.argv(), stdout=subprocess.DEVNULL, stderr=log)
        if self.listen_port:
            self.port = self.listen_port

    def start(self):
        self.spawn()
        for i in range(100):
            if self.p.poll() is not None:
                self.b.problem("hookcast (%s) exited at start-up with status %d: %s" % (
                    self.tag, self.p.returncode, self.log_tail(3)))
                self.b.procs.remove(self.p)
                self.p = None
                raise StepFailed(self.tag)
            if self.port is None:
                self.port = self.find_port(i >= 10)
            if self.port is not None and http_get(self.url + "/listSubscribers", 5)[0] is not None:
                self.b.say("hookcast (%s) up (pid %d) on 127.0.0.1:%d" % (self.tag, self.p.pid, self.port))
                return self
            time.sleep(0.1)
        self.b.problem("hookcast (%s) did not answer within 10 s" % self.tag)
        raise StepFailed(self.tag)

    def find_port(self, ask_kernel):
        with open(self.log, errors="replace") as f:
            m = re.search(r'msg="listening".* listen=\S*:(\d+)', f.read())
        if m:
            return int(m.group(1))
        # At --log-level warn the info "listening" line may be filtered:
        # then ask the kernel which port the process listens on.
        if ask_kernel:
            out = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True).stdout
            for line in out.splitlines():
                if "pid=%d," % self.p.pid in line:
                    return int(line.split()[3].rsplit(":", 1)[1])
        return None

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def log_tail(self, n):
        with open(self.log, errors="replace") as f:
            return "|".join(f.read().splitlines()[-n:])

    def alive(self):
        if self.p is not None and self.p.poll() is None:
            return True
        self.b.problem("hookcast (%s) died (status %s); last log lines: %s" % (
            self.tag, self.p.returncode if self.p else "?", self.log_tail(5)))
        return False

    def cpu_secs(self):
        """CPU time so far (user + system), in seconds."""
        with open("/proc/%d/stat" % self.p.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def proc_kb(self, field):
        """VmHWM / VmRSS in kB."""
        with open("/proc/%d/status" % self.p.pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        return 0

    def mib(self, field):
        return fmt(self.proc_kb(field) / 1024, 1)

    def stats(self, exclude=None):
        return helpers.stats(self.url, exclude)

    def register(self, addrs, query=""):
        helpers.register_all(self.url, addrs, query=query)

    def listing(self):
        return json.loads(helpers.listing(self.url))["subscribers"]

    def one_sub(self, address):
        """The listing's object for ADDRESS ({} when it is not listed)."""
        for s in self.listing():
            if s.get("address") == address:
                return s
        return {}

    def kill9(self):
        self.p.kill()
        self.p.wait()
        self.b.procs.remove(self.p)
        self.p = None

    def stop(self):
        """SIGTERM, expecting exit 0 within the grace period (+5 s): how
        long it took."""
        if self.p is None:
            return None
        t0 = time.monotonic()
        rc = self.b.stop(self.p, signal.SIGTERM, 15)
        self.p = None
        secs = time.monotonic() - t0
        if secs >= 2:
            self.b.say("hookcast (%s) took %.1f s to exit on SIGTERM" % (self.tag, secs))
        if rc == 124:
            self.b.problem("hookcast (%s) did not exit within 15 s of SIGTERM (killed)" % self.tag)
        elif rc != 0:
            self.b.problem("hookcast (%s) exited with status %d on SIGTERM" % (self.tag, rc))
        with open(self.log, errors="replace") as f:
            warns = re.findall(r'level=(?:warn|error) msg="[^"]*"', f.read())
        if warns:
            self.b.say("hookcast (%s) logged %d warn/error lines, by message:" % (self.tag, len(warns)))
            counts = {}
            for w in warns:
                counts[w] = counts.get(w, 0) + 1
            for w, n in sorted(counts.items(), key=lambda kv: -kv[1])[:5]:
                print("%7d %s" % (n, w), file=sys.stderr)
        return secs

    def db_left(self):
        """After exit, what hookcast.db still holds: "messages/retries/dead
        letters" (None without the store) and the messages."""
        if not self.data:
            return None, None
        st = helpers.dbstat(self.data)
        msgs, nbytes, retries, dead = st[:4] if st else ("n/a", 0, "n/a", "n/a")
        self.b.say("  %s: left in hookcast.db after exit: %s messages (%d KiB of bodies), %s retries, %s dead letters"
                   % (self.tag, msgs, round(nbytes / 1024), retries, dead))
        return "%s/%s/%s" % (msgs, retries, dead), msgs

    def du(self):
        return du_kb(self.data) if self.data else None


def snap(hc, path):
    """Save the JSON listing to PATH; the midpoint of the request's start and
    end times."""
    a = time.time()
    code, body = http_get(hc.url + "/listSubscribers?format=json")
    b = time.time()
    if code != 200:
        raise StepFailed("listing failed")
    with open(path, "wb") as f:
        f.write(body)
    return (a + b) / 2, body


# ------------------------------------------------------- publish window ---
def pub_rate(b, rnd):
    """The publishers' rate in steps 3 to 6: None (closed loop) or
    publishes/s (--pub-rate; auto: the round's loopback rate / NSUBS)."""
    if b.o.pub_rate == "0":
        return None
    if b.o.pub_rate == "auto":
        r1 = b.rounds_of("loopback").get(rnd)
        return round(r1["rps"] / NSUBS, 1) if r1 else None
    return float(b.o.pub_rate)


def publish(b, hc, tag, exclude, rnd, topics=0):
    """Run wrk at /sendMessage, paced as pub_rate says; sample delivered
    over the middle --duration seconds; wait for the queues to drain. The
    figures as a dict: dps, accepted (200 answers), refused (every other),
    n503, req, dur (µs), final (the stats tuple after the drain), drained,
    rss0/rss1 (VmRSS MiB at the window's start and end), cpu (CPU s/s over
    the window), drain_secs, rate."""
    o = b.o
    P = {"rate": pub_rate(b, rnd)}
    if o.pub_rate == "auto" and P["rate"] is None:
        b.say("  %s: no step-1 rate this round to pace by: publishing closed-loop" % tag)
    out = os.path.join(b.tmp, "wrk-%s.txt" % tag)
    w = run_wrk(b, o.pub_threads, o.pub_conns, o.duration + 2, hc.url + "/sendMessage", out,
                P["rate"], topics)
    time.sleep(1)
    t0, l0 = snap(hc, os.path.join(b.tmp, tag + "-t0.json"))
    P["rss0"] = hc.mib("VmRSS")
    c0 = hc.cpu_secs()
    time.sleep(o.duration)
    t1, l1 = snap(hc, os.path.join(b.tmp, tag + "-t1.json"))
    P["rss1"] = hc.mib("VmRSS")
    P["cpu"] = fmt((hc.cpu_secs() - c0) / (t1 - t0), 2)
    wrk_wait(b, w)
    if not hc.alive():
        raise StepFailed(tag)
    d0 = helpers.sums(l0, exclude)[1]
    d1 = helpers.sums(l1, exclude)[1]
    P["dps"] = round((d1 - d0) / (t1 - t0))
    wf = wrk_fields(out)
    if "requests" not in wf:
        b.problem("%s: no wrk summary: %s" % (tag, wrk_text(out)))
        raise StepFailed(tag)
    P["req"], P["dur"], P["accepted"], P["n503"] = wf["requests"], wf["duration_us"], wf["ok200"], wf["s503"]
    P["refused"] = P["req"] - P["accepted"]
    if P["refused"] != P["n503"]:
        b.problem("%s: %d answers neither 200 nor 503 (%d answers: %d 200, %d 503)" % (
            tag, P["refused"] - P["n503"], P["req"], P["accepted"], P["n503"]))
    if wrk_errors(wf):
        b.problem("%s: wrk saw %d socket errors/timeouts" % (tag, wrk_errors(wf)))
    b.say("  %s: %d deliveries/s; wrk (%s): %d requests, %d answered 200, %d not (%d of them 503); RSS %s -> %s MiB over the window; hookcast CPU %s s/s"
          % (tag, P["dps"], "closed loop" if P["rate"] is None else "%s publishes/s offered" % P["rate"],
             P["req"], P["accepted"], P["refused"], P["n503"], P["rss0"], P["rss1"], P["cpu"]))
    # Drain: wait (bounded) until nothing is queued or in flight.
    P["drained"], P["final"] = False, None
    t_stop = time.monotonic()
    while True:
        try:
            s = hc.stats(exclude)
        except (OSError, RuntimeError, http.client.HTTPException) as e:
            b.problem("%s: the listing failed while draining (%s); last seen: %s" % (tag, e, P["final"]))
            hc.alive()
            raise StepFailed(tag)
        P["final"] = s
        n, delivered, failed, dropped, queued, inflight, retrying = s
        if queued == 0 and inflight == 0 and retrying in (0, "n/a"):
            P["drained"] = True
            break
        if time.monotonic() - t_stop >= o.drain_max:
            break
        time.sleep(0.2)
    P["drain_secs"] = fmt(time.monotonic() - t_stop, 1)
    if P["drained"]:
        b.say("  %s: drained %s s after publishing stopped: subscribers=%d delivered=%d failed=%d dropped=%s"
              % (tag, P["drain_secs"], n, delivered, failed, dropped))
    else:
        b.problem("%s: queues not empty %d s after publishing stopped: queued=%s in_flight=%s retrying=%s delivered=%s"
                  % (tag, o.drain_max, queued, inflight, retrying, delivered))
    return P


def pub_detail(P, with_cpu=True):
    offered = "closed loop" if P["rate"] is None else "%s/s" % P["rate"]
    cpu = "; hookcast CPU %s s/s" % P["cpu"] if with_cpu else ""
    return "%d accepted, %d refused (503) of %d in %s s; offered %s%s; drained in %s s" % (
        P["accepted"], P["refused"], P["req"], fmt(P["dur"] / 1e6, 1), offered, cpu, P["drain_secs"])


def frac_check(b, P, tag, nsubs=NSUBS):
    """After publish, with each of NSUBS subscribers owed every accepted
    message: (the % of that delivered, PASS or MISS, the detail)."""
    n, delivered, failed, dropped, queued, inflight, retrying = P["final"]
    expected = P["accepted"] * nsubs
    # wrk does not count the (at most -c) publishes still unanswered when its
    # time is up, though hookcast may have accepted them: so delivered may
    # exceed expected by up to pub_conns * nsubs, and must never fall short.
    # Such a surplus counts as 100 %, and the detail shows it.
    frac = 100 * min(delivered, expected) / expected if expected > 0 else 0
    detail = "%d delivered for %d accepted × %d = %d" % (delivered, P["accepted"], nsubs, expected)
    if delivered > expected:
        detail += " (+%s publishes answered after wrk's deadline)" % fmt((delivered - expected) / nsubs, 2)
    detail += "; failed %s, dropped %s, left queued %s, retrying %s" % (failed, dropped, queued, retrying)
    ok = (expected > 0 and delivered >= expected and failed == 0
          and dropped in (0, "n/a") and P["drained"])
    if delivered > expected + b.o.pub_conns * nsubs:
        b.problem("%s: %d deliveries for %d accepted publishes x %d: more than published"
                  % (tag, delivered, P["accepted"], nsubs))
    return fmt(frac), "PASS" if ok else "MISS", detail


def pending_check(b, tag, who, sub, accepted):
    """With nothing dropped any more (the store), every accepted message is
    still owed to a subscriber that never answered; note a listing that
    shows far fewer."""
    q, f, rt = sub.get("queued"), sub.get("in_flight"), sub.get("retrying", 0)
    if "dropped" in sub or not isinstance(q, int) or not isinstance(f, int):
        return
    owed = q + f + (rt if isinstance(rt, int) else 0)
    if owed < accepted - b.o.pub_conns:
        b.note("%s: the listing shows queued=%d in_flight=%d retrying=%s (%d in all) for the %s subscriber, which has had none of the %d messages accepted (and none dead-lettered)"
               % (tag, q, f, rt, owed, who, accepted))


def finish(b, hc, fig, tag):
    """What every hookcast step does last: the data directory's size after
    the drain and after exit, and the rows left in hookcast.db."""
    du_run = hc.du()
    hc.stop()
    if du_run is not None:
        fig["du"] = "%s→%s" % (du_run, hc.du())
        b.say("  %s: data dir %s KiB (after drain → after exit)" % (tag, fig["du"]))
    fig["left"], left_msgs = hc.db_left()
    return left_msgs


# ------------------------------------------- fixed-count fan-out (3, 11, 12) ---
# A fixed number of messages published as fast as they are accepted, timed
# from the first publish sent to the last delivery logged at the sinks:
# deliveries/s = deliveries counted at the sinks ÷ that time. The sinks are
# a second nginx (bench/sinks.conf.in, FANOUT_MAX_SUBS ports) that logs
# every delivery as "port msec"; the publisher is wrk with bench/count.lua.
FANOUT_MAX_SUBS = 1000
FANOUT_SIZES = (10, 100, 1000)      # step 3's subscriber counts
FANOUT_TARGETS = {10: 0.45, 100: 0.55, 1000: 0.45}   # deliveries/s ÷ step 1's req/s


def fanout_msgs(b, nsubs):
    """Messages published to NSUBS subscribers: --fanout-msgs at 100, and
    as many deliveries (--fanout-msgs × 100) at any other count."""
    per100 = getattr(b.o, "fanout_msgs", 3000)
    return max(1, round(per100 * NSUBS / nsubs))


def start_sinks(b, n=FANOUT_MAX_SUBS):
    """Start the logging sinks (once per run): b.sink_ports, b.sink_log,
    b.sinks (the process)."""
    prefix = os.path.join(b.tmp, "sinks")
    os.makedirs(prefix, exist_ok=True)
    b.sink_log = os.path.join(prefix, "sinks.log")
    with open(os.path.join(HERE, "sinks.conf.in")) as f:
        template = f.read()
    for attempt in (1, 2, 3):
        b.sink_ports = helpers.freeports(n)
        listen = "".join("        listen 127.0.0.1:%d;\n" % p for p in b.sink_ports)
        p = spawn_nginx(b, prefix, template.replace("@PREFIX@", prefix).replace("@LISTEN@\n", listen),
                        lambda: all(sink_status(q) == 204 for q in (b.sink_ports[0], b.sink_ports[-1])),
                        polls=100)
        if p is not None:
            b.sinks = p
            # The probes above are logged: the runs count from offsets.
            b.say("logging sinks up (nginx pid %d), %d ports %d..%d, log %s" % (
                p.pid, n, min(b.sink_ports), max(b.sink_ports), b.sink_log))
            return p
        b.say("the logging sinks did not start (attempt %d): %s" % (
            attempt, open(os.path.join(prefix, "error.log"), errors="replace").read()[-300:]))
    raise StepFailed("could not start the logging sinks")


def sink_addrs(b, nsubs):
    return ["127.0.0.1:%d" % p for p in b.sink_ports[:nsubs]]


def sink_offset(b):
    try:
        return os.path.getsize(b.sink_log)
    except OSError:
        return 0


class SinkCount:
    """The sinks' log from OFFSET on, read as it grows: deliveries per port,
    and the last one's time ($msec)."""

    def __init__(self, b, offset):
        self.b = b
        self.pos = offset
        self.per_port = {}
        self.total = 0
        self.last = None
        self.first = None
        self.bad = 0

    def read(self):
        """Take in the complete lines written since the last read; True if
        there were any."""
        with open(self.b.sink_log, "rb") as f:
            f.seek(self.pos)
            data = f.read()
        end = data.rfind(b"\n") + 1
        if end <= 0:
            return False
        self.pos += end
        last = self.last or 0.0
        first = self.first
        per = self.per_port
        n = 0
        for line in data[:end].split(b"\n"):
            if not line:
                continue
            try:
                port, msec = line.split(b" ")
                port, t = int(port), float(msec)
            except ValueError:
                self.bad += 1
                continue
            per[port] = per.get(port, 0) + 1
            n += 1
            if t > last:
                last = t
            if first is None or t < first:
                first = t
        self.total += n
        self.last = last if n or self.last else None
        self.first = first
        return n > 0

    def wait(self, expected, busy=None, stall=3.0, limit=60.0):
        """Read until EXPECTED deliveries are in, or nothing came for STALL
        s (and BUSY(), if given, says the sender has nothing left in hand),
        or LIMIT s passed: True when EXPECTED were counted."""
        t0 = quiet_since = time.monotonic()
        while self.total < expected:
            now = time.monotonic()
            if self.read():
                quiet_since = now
            elif now - quiet_since >= stall and (busy is None or not busy()):
                break
            if now - t0 >= limit:
                break
            time.sleep(0.1)
        # What the other worker still buffers is written within 100 ms: a
        # surplus (a duplicate delivery) shows up here too.
        time.sleep(0.3)
        self.read()
        return self.total >= expected

    def check(self, ports, per_sink):
        """(PASS or MISS, the detail): every one of PORTS logged PER_SINK,
        and nothing came to any other sink."""
        got = [self.per_port.get(p, 0) for p in ports]
        short = [(p, g) for p, g in zip(ports, got) if g < per_sink]
        extra = sum(g - per_sink for g in got if g > per_sink)
        stray = sum(v for p, v in self.per_port.items() if p not in set(ports))
        detail = "%d sinks × %d expected = %d; counted %d (per sink min %d, max %d)" % (
            len(ports), per_sink, len(ports) * per_sink, sum(got), min(got) if got else 0, max(got) if got else 0)
        if short:
            detail += "; %d sinks short by %d in all (first: port %d got %d)" % (
                len(short), sum(per_sink - g for _, g in short), short[0][0], short[0][1])
        if extra:
            detail += "; %d duplicate deliveries" % extra
        if stray:
            detail += "; %d deliveries to sinks outside this run" % stray
        if self.bad:
            detail += "; %d log lines unreadable" % self.bad
        return ("PASS" if not short and per_sink > 0 else "MISS"), detail


def publish_count(b, url, count, tag, conns=None, threads=1):
    """wrk with bench/count.lua: COUNT messages answered 200, as fast as
    they are taken (503 retried). A dict: first and done (wall clock, s: the
    first request sent, the last 200 answered), ok, s503, other, req,
    errors, secs (first → done)."""
    o = b.o
    conns = conns or getattr(o, "fanout_conns", 64)
    out = os.path.join(b.tmp, "wrk-%s.txt" % tag)
    env = dict(os.environ, BENCH_BODY_BYTES=str(BODY_BYTES), BENCH_COUNT=str(count),
               BENCH_THREADS=str(threads), BENCH_BACKOFF_MS=str(o.backoff_ms))
    # -d is a bound: wrk gets SIGINT as soon as every thread is done.
    bound = max(60, o.drain_max)
    p = b.spawn([o.wrk, "-t%d" % threads, "-c%d" % max(conns, threads), "-d%ds" % bound,
                 "--timeout", "10s", "-s", os.path.join(HERE, "count.lua"), url],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)
    P = {"first": None, "done": None}
    dones, want = 0, min(threads, count)
    with open(out, "w") as f:
        for line in p.stdout:
            f.write(line)
            if line.startswith("BENCH_FIRST "):
                t = float(line.split()[1])
                P["first"] = t if P["first"] is None else min(P["first"], t)
            elif line.startswith("BENCH_DONE "):
                t = float(line.split()[1])
                P["done"] = t if P["done"] is None else max(P["done"], t)
                dones += 1
                if dones == want:
                    p.send_signal(signal.SIGINT)
    p.wait()
    b.procs.remove(p)
    w = wrk_fields(out)
    if "requests" not in w or P["first"] is None:
        b.problem("%s: no wrk summary or no request sent: %s" % (tag, wrk_text(out)))
        raise StepFailed(tag)
    P.update(ok=w["ok200"], s503=w["s503"], other=w.get("other", 0), req=w["requests"], errors=wrk_errors(w),
             p50_ms=w.get("p50_us", 0) / 1000, p99_ms=w.get("p99_us", 0) / 1000)
    if P["done"] is None:
        b.problem("%s: the publisher did not get its %d messages accepted within %d s (%d answered 200, %d 503, %d other, %d socket errors)"
                  % (tag, count, bound, P["ok"], P["s503"], P["other"], P["errors"]))
        P["done"] = time.time()
    if P["other"]:
        b.problem("%s: %d publishes answered neither 200 nor 503" % (tag, P["other"]))
    if P["errors"]:
        b.problem("%s: wrk saw %d socket errors/timeouts" % (tag, P["errors"]))
    P["secs"] = P["done"] - P["first"]
    return P


def fanout_fixed(b, binary, tag, nsubs, flags=(), nmsgs=None):
    """A fresh hookcast (FLAGS added), NSUBS logging sinks registered, NMSGS
    (fanout_msgs) published with publish_count, timed to the last delivery
    at the sinks. The figures: dps, sub (per subscriber /s), secs, pub
    (accepted/s), msgs, pass and detail (every sink got every message, the
    listing agrees, nothing failed), hwm, cpu (hookcast CPU s/s over the
    run), du/left (finish)."""
    nmsgs = nmsgs or fanout_msgs(b, nsubs)
    hc = Hookcast(b, binary, tag, flags).start()
    try:
        return _fanout_fixed(b, hc, tag, nsubs, nmsgs)
    except (StepFailed, OSError, RuntimeError, http.client.HTTPException):
        if hc.p is not None and hc.p.poll() is None:
            hc.kill9()
        raise


def _fanout_fixed(b, hc, tag, nsubs, nmsgs):
    o = b.o
    addrs = sink_addrs(b, nsubs)
    try:
        helpers.register_all(hc.url, addrs, nconn=4)
    except RuntimeError as e:
        b.problem("%s: registering %d subscribers failed: %s" % (tag, nsubs, e))
        raise StepFailed(tag)
    n = hc.stats()[0]
    if n != nsubs:
        b.problem("%s: listing shows %d subscribers, expected %d" % (tag, n, nsubs))
    sc = SinkCount(b, sink_offset(b))
    c0 = hc.cpu_secs()
    P = publish_count(b, hc.url + "/sendMessage", nmsgs, tag)
    expected = P["ok"] * nsubs

    def busy():
        s = hc.stats()
        return bool(s[4] or s[5] or s[6] not in (0, "n/a"))

    sc.wait(expected, busy, limit=o.drain_max)
    if not hc.alive():
        raise StepFailed(tag)
    c1 = hc.cpu_secs()
    final = hc.stats()
    _, delivered, failed, dropped, queued, inflight, retrying = final
    secs = (sc.last or P["done"]) - P["first"]
    fig = {"msgs": nmsgs, "subs": nsubs, "secs": fmt(secs, 3), "pub_secs": fmt(P["secs"], 3),
           "dps": round(sc.total / secs) if secs > 0 else 0,
           "pub": round(P["ok"] / P["secs"]) if P["secs"] > 0 else 0,
           "cpu": fmt((c1 - c0) / secs, 2) if secs > 0 else "n/a", "hwm": hc.mib("VmHWM")}
    fig["sub"] = fmt(fig["dps"] / nsubs, 2)
    verdict, detail = sc.check(b.sink_ports[:nsubs], P["ok"])
    detail += "; hookcast's listing: delivered %s, failed %s, dropped %s, left queued %s, in flight %s, retrying %s" % (
        delivered, failed, dropped, queued, inflight, retrying)
    if P["ok"] < nmsgs:
        verdict = "MISS"
        detail += "; only %d of %d messages accepted" % (P["ok"], nmsgs)
    if failed or dropped not in (0, "n/a") or queued or inflight:
        verdict = "MISS"
    fig["pass"], fig["detail"] = verdict, detail
    fig["pub_detail"] = "%d accepted in %s s (%d answered 503 and retried; latency p50 %s ms, p99 %s ms); wrk -t1 -c%d" % (
        P["ok"], fmt(P["secs"], 3), P["s503"], fmt(P["p50_ms"], 1), fmt(P["p99_ms"], 1), getattr(o, "fanout_conns", 64))
    b.say("  %s: %d × %d: %d deliveries/s (%s s from the first publish to the last delivery; publishing took %s s, %d/s); %s; hookcast CPU %s s/s, peak RSS %s MiB"
          % (tag, nmsgs, nsubs, fig["dps"], fig["secs"], fig["pub_secs"], fig["pub"], fig["pass"], fig["cpu"], fig["hwm"]))
    if verdict != "PASS":
        b.say("  %s: %s" % (tag, detail))
    finish(b, hc, fig, tag)
    return fig

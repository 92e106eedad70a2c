#!/usr/bin/env python3
"""Instructions per delivery, counted with callgrind (`make callgrind`).

Usage: python3 bench/callgrind.py [--binary build/hookcast] [--subs 10]
                                  [--messages 2000] [--bytes 256]
                                  [--only unsigned|signed] [--top 25]
                                  [--perf] [--keep]

Starts N nginx sinks (one nginx, N ports, each logging every request), runs
the binary under `valgrind --tool=callgrind`, registers the N, publishes
the messages one after another on one keep-alive connection, waits until
the sinks' access logs hold every delivery (N x messages, all 204), stops
hookcast with SIGTERM and reads the profile. Then the same again with
--signing-secret (every delivery signed).

What is counted: everything, from the first instruction to exit, on every
thread (no --toggle-collect): start-up, the API taking the publishes, the
store committing them, the delivery thread and shutdown. "per delivery" is
that total divided by the deliveries, which is how doc/benchmarks.md has
counted it since issue 5; with 2,000 messages to 10 subscribers start-up
and shutdown are about 1 % of it. The delivery thread alone is
deliver_loop()'s inclusive cost, printed beside it. Only user space is
counted: callgrind does not see the kernel. With --perf, the same run is
made twice more natively: under `perf stat` for CPU time in the kernel and
in user space, and under `perf trace -s` for the system calls a delivery
makes, the delivery thread's (the thread that sent the most) and the whole
process's. This VM has no hardware counters, so the kernel's share is time
and system calls, not instructions.

Prints, for each run: Ir in all and per delivery, the delivery thread's,
the publishing side's, the cost by object (exclusive: hookcast, libcurl,
libc, libcrypto, libsqlite3, ...) and the top functions by exclusive and
by inclusive cost (callgrind_annotate). Needs valgrind, nginx and python3
(standard library); --perf needs perf.
"""
import argparse
import http.client
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import helpers  # noqa: E402
from common import SIGN_SECRET  # noqa: E402

NGINX_CONF = """daemon off;
master_process on;
worker_processes 1;
pid {prefix}/nginx.pid;
lock_file {prefix}/nginx.lock;
error_log {prefix}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    server_tokens off;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    client_body_buffer_size 64k;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    log_format sink '$server_port $uri $status';
    access_log {prefix}/access.log sink;
    server {{
{listen}        location = /event {{ return 204; }}
        location / {{ return 404; }}
    }}
}}
"""


def probe(port):
    """The status of GET / on a sink (404 once it is up), None if no answer."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        c.request("GET", "/")
        r = c.getresponse()
        r.read()
        return r.status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        c.close()


def say(msg):
    print("callgrind: " + msg, file=sys.stderr, flush=True)


class Run:
    def __init__(self, o, tmp, tag, signed):
        self.o, self.tmp, self.tag, self.signed = o, tmp, tag, signed
        self.procs = []

    def spawn(self, argv, **kw):
        p = subprocess.Popen(argv, **kw)
        self.procs.append(p)
        return p

    def cleanup(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.kill()
                p.wait()

    def start_nginx(self):
        prefix = os.path.join(self.tmp, "nginx-" + self.tag)
        os.makedirs(prefix, exist_ok=True)
        self.access = os.path.join(prefix, "access.log")
        ports = helpers.freeports(self.o.subs)
        listen = "".join("        listen 127.0.0.1:%d;\n" % p for p in ports)
        with open(os.path.join(prefix, "nginx.conf"), "w") as f:
            f.write(NGINX_CONF.format(prefix=prefix, listen=listen))
        p = self.spawn([self.o.nginx, "-p", prefix + "/", "-c", prefix + "/nginx.conf",
                        "-e", prefix + "/error.log"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            if p.poll() is not None:
                raise SystemExit("callgrind: nginx exited at start-up")
            if all(probe(q) == 404 for q in (ports[0], ports[-1])):
                break
            time.sleep(0.1)
        else:
            raise SystemExit("callgrind: nginx did not start")
        self.addrs = ["127.0.0.1:%d" % q for q in ports]

    def log_lines(self):
        """The deliveries the sinks have logged (the probes went to /)."""
        try:
            with open(self.access, "rb") as f:
                return f.read().count(b" /event ")
        except OSError:
            return 0

    def hookcast_argv(self, port):
        argv = [self.o.binary, "--listen", "127.0.0.1:%d" % port, "--log-level", "warn",
                "--allow-targets", "127.0.0.0/8", "--data-dir",
                os.path.join(self.tmp, "data-" + self.tag)]
        if self.signed:
            argv += ["--signing-secret", SIGN_SECRET]
        return argv

    def start_hookcast(self, wrap):
        port = helpers.freeports(1)[0]
        self.url_port = port
        self.hlog = os.path.join(self.tmp, "hookcast-%s.log" % self.tag)
        with open(self.hlog, "w") as log:
            self.hc = self.spawn(wrap + self.hookcast_argv(port),
                                 stdout=subprocess.DEVNULL, stderr=log)
        for _ in range(1200):
            if self.hc.poll() is not None:
                raise SystemExit("callgrind: hookcast exited at start-up: see " + self.hlog)
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                c.request("GET", "/healthz")
                c.getresponse().read()
                c.close()
                return
            except (OSError, http.client.HTTPException):
                time.sleep(0.1)
        raise SystemExit("callgrind: hookcast did not answer")

    def publish(self):
        body = b"x" * (self.o.bytes - 1) + b"\n"
        c = http.client.HTTPConnection("127.0.0.1", self.url_port, timeout=120)
        sent = 0
        while sent < self.o.messages:
            c.request("POST", "/sendMessage", body=body,
                      headers={"Content-Type": "application/octet-stream"})
            r = c.getresponse()
            r.read()
            if r.status == 200:
                sent += 1
            elif r.status == 503:
                time.sleep(0.2)
            else:
                raise SystemExit("callgrind: /sendMessage answered %d" % r.status)
        c.close()

    def wait_delivered(self):
        want = self.o.subs * self.o.messages
        t0 = time.monotonic()
        last, since = -1, time.monotonic()
        while True:
            n = self.log_lines()
            if n >= want:
                break
            if n != last:
                last, since = n, time.monotonic()
            elif time.monotonic() - since > 120:
                raise SystemExit("callgrind: stuck at %d of %d deliveries" % (n, want))
            time.sleep(0.5)
        with open(self.access) as f:
            lines = [x for x in f.read().splitlines() if " /event " in x]
        bad = [x for x in lines if not x.endswith(" 204")]
        if bad or len(lines) != want:
            raise SystemExit("callgrind: %d deliveries, %d not 204 (want %d)" % (
                len(lines), len(bad), want))
        # nginx logs a request as it answers: give the last answers time to
        # be read before the daemon stops.
        time.sleep(2)
        return len(lines), time.monotonic() - t0

    def stop_hookcast(self):
        """SIGTERM to hookcast (under perf stat, perf's child), and its exit."""
        pid = self.hc.pid
        try:
            with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
                kids = f.read().split()
        except OSError:
            kids = []
        if self.hc.args[0] == "perf" and kids:
            os.kill(int(kids[0]), signal.SIGTERM)
        else:
            self.hc.send_signal(signal.SIGTERM)
        try:
            rc = self.hc.wait(300)
        except subprocess.TimeoutExpired:
            self.hc.kill()
            raise SystemExit("callgrind: hookcast did not exit on SIGTERM")
        if rc != 0:
            raise SystemExit("callgrind: hookcast exited with %d" % rc)


def annotate(path, inclusive):
    argv = ["callgrind_annotate", "--threshold=100", "--auto=no"]
    if inclusive:
        argv.append("--inclusive=yes")
    return subprocess.run(argv + [path], capture_output=True, text=True, check=True).stdout


LINE = re.compile(r"^\s*([\d,]+)\s+(?:\([^)]*\)\s+)?(\S.*?)\s*$")


def fn_rows(text):
    """(Ir, "file:function [object]") per function of callgrind_annotate."""
    rows, started = [], False
    for line in text.splitlines():
        if not started:
            started = line.startswith("Ir") and "file:function" in line
            continue
        m = LINE.match(line)
        if m and ":" in m.group(2):
            rows.append((int(m.group(1).replace(",", "")), m.group(2)))
    return rows


BINARY = "hookcast"


def dedup(rows):
    """Rows less those with no object that repeat a function listed with one
    (callgrind_annotate lists an inlined part apart)."""
    known = {short_fn(n) for _, n in rows if obj_of(n) != "?"}
    return [(ir, n) for ir, n in rows if obj_of(n) != "?" or short_fn(n) not in known]


def obj_of(name):
    """The object a function is in, short: hookcast, libcurl, libc..."""
    m = re.search(r"\[([^\]]+)\]\s*$", name)
    obj = os.path.basename(m.group(1)) if m else "?"
    if obj == BINARY:
        return "hookcast"
    m = re.match(r"(lib[a-z0-9_+-]*?|ld-linux[a-z0-9_-]*?)(?:-[0-9.]+)?\.so", obj)
    return m.group(1) if m else obj


def short_fn(name):
    name = re.sub(r"\s*\[[^\]]+\]\s*$", "", name)
    return name.split(":", 1)[1] if ":" in name else name


def total_ir(path):
    with open(path) as f:
        for line in f:
            if line.startswith("totals:") or line.startswith("summary:"):
                return int(line.split()[1])
    raise SystemExit("callgrind: no totals in " + path)


def report(o, tag, path, deliveries, secs):
    total = total_ir(path)
    exc = fn_rows(annotate(path, False))
    inc = fn_rows(annotate(path, True))
    incl = {}
    for ir, n in inc:  # an inlined part shows as a row of its own: the largest
        incl[short_fn(n)] = max(ir, incl.get(short_fn(n), 0))
    per = total / deliveries
    print()
    print("== %s: %d deliveries (%d subscribers x %d messages of %d bytes)"
          % (tag, deliveries, o.subs, o.messages, o.bytes))
    print("Ir, whole process: %d = %.1fk per delivery" % (total, per / 1000))
    rest = total
    for fn, what in (("deliver_loop", "delivery thread"), ("store_writer", "store writer thread")):
        if fn in incl:
            rest -= incl[fn]
            print("  %-22s %6.1fk per delivery (%s, inclusive)" % (what, incl[fn] / deliveries / 1000, fn))
    print("  %-22s %6.1fk per delivery (libmicrohttpd's threads, main, start-up)" % (
        "the rest", rest / deliveries / 1000))
    by_obj = {}
    for ir, n in exc:
        by_obj[obj_of(n)] = by_obj.get(obj_of(n), 0) + ir
    print("By object (exclusive), per delivery:")
    for obj, ir in sorted(by_obj.items(), key=lambda kv: -kv[1]):
        if ir / deliveries >= 50:
            print("  %-24s %7.1fk  %5.1f %%" % (obj, ir / deliveries / 1000, 100 * ir / total))
    print("Top %d functions by exclusive cost, per delivery:" % o.top)
    for ir, n in dedup(exc)[:o.top]:
        print("  %7.0f  %-12s %s" % (ir / deliveries, obj_of(n), short_fn(n)))
    print("Top %d functions by inclusive cost, per delivery:" % o.top)
    for ir, n in dedup(inc)[:o.top]:
        print("  %7.0f  %-12s %s" % (ir / deliveries, obj_of(n), short_fn(n)))
    sys.stdout.flush()
    return per


def perf_report(o, tag, path, deliveries, secs):
    ev = {}
    with open(path) as f:
        for line in f:
            parts = line.strip().split(",")
            if len(parts) >= 3 and parts[0] and parts[0][0].isdigit():
                ev[parts[2]] = float(parts[0])
    user, sys_ = ev.get("user_time", 0) / 1e9, ev.get("system_time", 0) / 1e9
    calls = ev.get("raw_syscalls:sys_enter", 0)
    print()
    print("== %s, native under perf stat: %d deliveries in %.1f s" % (tag, deliveries, secs))
    print("  CPU: user %.2f s, kernel %.2f s (kernel %.0f %% of the process's CPU)"
          % (user, sys_, 100 * sys_ / (user + sys_) if user + sys_ else 0))
    print("  per delivery: %.1f µs user, %.1f µs kernel, %.2f system calls, %.2f context switches"
          % (1e6 * user / deliveries, 1e6 * sys_ / deliveries, calls / deliveries,
             ev.get("context-switches", 0) / deliveries))
    sys.stdout.flush()


TRACE_THREAD = re.compile(r"^\s*(\S.*?) \((\d+)\), (\d+) events")
TRACE_ROW = re.compile(r"^\s+([a-z_0-9]+)\s+(\d+)\s+(\d+)\s")


def trace_report(o, tag, path, deliveries):
    """perf trace -s: the system calls of the thread that sent the most
    (the delivery thread's sendto), and of the whole process, a delivery."""
    threads, cur = {}, None
    with open(path) as f:
        for line in f:
            m = TRACE_THREAD.match(line)
            if m:
                cur = threads.setdefault(int(m.group(2)), {})
                continue
            m = TRACE_ROW.match(line)
            if m and cur is not None:
                cur[m.group(1)] = cur.get(m.group(1), 0) + int(m.group(2))
    if not threads:
        print("  (perf trace gave no summary)")
        return
    tid = max(threads, key=lambda t: threads[t].get("sendto", 0))
    every = {}
    for calls in threads.values():
        for k, v in calls.items():
            every[k] = every.get(k, 0) + v
    for what, calls in (("delivery thread", threads[tid]), ("whole process", every)):
        total = sum(calls.values())
        top = sorted(calls.items(), key=lambda kv: -kv[1])
        print("  system calls a delivery, %s: %.2f (%s)" % (
            what, total / deliveries,
            ", ".join("%s %.2f" % (k, v / deliveries) for k, v in top if v / deliveries >= 0.01)))
    sys.stdout.flush()


def one(o, tmp, tag, signed, mode):
    r = Run(o, tmp, tag + ("-" + mode if mode != "callgrind" else ""), signed)
    try:
        r.start_nginx()
        if mode == "perf":
            out = os.path.join(tmp, "perf-%s.csv" % tag)
            wrap = ["perf", "stat", "-x,", "-o", out, "-e",
                    "user_time,system_time,task-clock,context-switches,raw_syscalls:sys_enter", "--"]
        elif mode == "trace":
            out = os.path.join(tmp, "trace-%s.txt" % tag)
            wrap = ["perf", "trace", "-s", "-o", out, "--"]
        else:
            out = os.path.join(tmp, "callgrind.out.%s" % tag)
            wrap = ["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out]
        say("%s: starting hookcast under %s" % (tag, {"perf": "perf stat", "trace": "perf trace -s"}.get(mode, mode)))
        r.start_hookcast(wrap)
        helpers.register_all("http://127.0.0.1:%d" % r.url_port, r.addrs)
        say("%s: registered %d; publishing %d messages" % (tag, o.subs, o.messages))
        r.publish()
        n, secs = r.wait_delivered()
        say("%s: %d deliveries made; stopping hookcast" % (tag, n))
        r.stop_hookcast()
        if mode == "perf":
            perf_report(o, tag, out, n, secs)
            return None
        if mode == "trace":
            trace_report(o, tag, out, n)
            return None
        return report(o, tag, out, n, secs)
    finally:
        r.cleanup()


def main(argv):
    p = argparse.ArgumentParser(prog="bench/callgrind.py", description=__doc__.split("\n\n", 2)[2],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    a = p.add_argument
    a("--binary", default=os.path.join(ROOT, "build/hookcast"))
    a("--subs", type=int, default=10)
    a("--messages", type=int, default=2000)
    a("--bytes", type=int, default=256)
    a("--only", choices=("unsigned", "signed"))
    a("--top", type=int, default=25)
    a("--perf", action="store_true", help="also the native run under perf stat (kernel time, system calls)")
    a("--keep", action="store_true", help="keep the temporary directory (the callgrind.out files)")
    a("--nginx", default=shutil.which("nginx") or "/usr/sbin/nginx")
    o = p.parse_args(argv)
    for tool in ("valgrind", "callgrind_annotate", o.nginx) + (("perf",) if o.perf else ()):
        if not shutil.which(tool):
            raise SystemExit("callgrind: %s is needed" % tool)
    o.binary = os.path.abspath(o.binary)
    global BINARY
    BINARY = os.path.basename(o.binary)
    tmp = tempfile.mkdtemp(prefix="hookcast-callgrind-")
    per = {}
    try:
        for tag, signed in (("unsigned", False), ("signed", True)):
            if o.only and o.only != tag:
                continue
            per[tag] = one(o, tmp, tag, signed, "callgrind")
            if o.perf:
                one(o, tmp, tag, signed, "perf")
                one(o, tmp, tag, signed, "trace")
    finally:
        if o.keep:
            say("kept " + tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print()
    print("SUMMARY " + " ".join("%s=%.1fk" % (k, v / 1000) for k, v in per.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Step 10, https fan-out: 100 nginx subscribers on TLS ports that offer
HTTP/2 (`listen ... ssl http2`, a certificate from a CA the step makes in
its temporary directory, given to hookcast as ca_file), and a fixed burst of
messages published (256-byte bodies, four keep-alive publishers) and drained,
once with `http2 yes` and once with `http2 no` (alternating, --rounds pairs;
each with its own fresh hookcast and nginx). Two kinds of subscriber, each
compared on its own: nginx answering `return 204` from the request's
headers, as the bench's other sinks do (libcurl 7.88 mishandles that over
HTTP/2: see xfer.c), and nginx answering once it has read the body
(proxied to a 204 server), as a receiver that verifies signatures does. Both run with max_transfers
800, so that every subscriber can have its max_in_flight (8) in flight: the
same concurrency either way. Figures: deliveries/s from the first publish
until every subscriber has every message (one message delivered and
answered before, so that both start with a connection to each subscriber),
and connections used (distinct connections in nginx's access log). Target:
HTTP/2 ÷ HTTP/1.1 deliveries/s >= 1.0 on <= 1/4 of the connections, for
each kind. Checks:
every accepted message reached all 100 (hookcast's counts and nginx's log,
every answer 204, every delivery of the http2 runs HTTP/2.0 and of the
others HTTP/1.1; a delivery libcurl failed after nginx had answered it is
sent again, and counted as an observation)."""
import http.client
import os
import signal
import socket
import subprocess
import threading
import time

from common import BODY_BYTES, NSUBS, Hookcast, StepFailed, fmt, median, spawn_nginx
import helpers

NUMBER, NAME, ONCE, USES_HOOKCAST = 10, "https", True, True
TITLE = "https fan-out: HTTP/2 against HTTP/1.1, 100 TLS nginx subscribers"

MAX_TRANSFERS = 800     # NSUBS x max_in_flight 8: every subscriber's cap
PUBLISHERS = 4

NGINX_CONF = """daemon off;
master_process on;
worker_processes auto;
worker_rlimit_nofile 65536;
pid {prefix}/nginx.pid;
lock_file {prefix}/nginx.lock;
error_log {prefix}/error.log warn;
events {{
    worker_connections 8192;
}}
http {{
    server_tokens off;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
    client_body_buffer_size 64k;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    log_format conns '$server_port $connection $server_protocol $status';
    upstream backend {{
        server 127.0.0.1:{backend};
        keepalive 256;
    }}
    server {{
        listen 127.0.0.1:{backend};
        access_log off;
        location / {{
            return 204;
        }}
    }}
    server {{
{listen}
        ssl_certificate {dir}/server.crt;
        ssl_certificate_key {dir}/server.key;
        access_log {prefix}/access.log conns buffer=256k flush=1s;
        location = /event {{
{event}
        }}
        location / {{
            return 404;
        }}
    }}
}}
"""
# How a subscriber answers: at once, from the request's headers alone (as
# the bench's other nginx sinks do), or once it has read the whole body
# (proxied to a 204 server: a receiver that verifies signatures does so).
EVENT = {"return": "            return 204;",
         "read": "            proxy_pass http://backend;\n"
                 "            proxy_http_version 1.1;\n"
                 "            proxy_set_header Connection \"\";"}


def openssl(b, d, *args):
    p = subprocess.run(("openssl",) + args, cwd=d, stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        b.problem("step 10: openssl %s failed: %s" % (args[0], p.stderr[-300:]))
        raise StepFailed("step 10: certificates")


def make_certs(b, d):
    """A CA and a certificate it signs for 127.0.0.1, in D."""
    os.makedirs(d, exist_ok=True)
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes")
    openssl(b, d, "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
            "-subj", "/CN=hookcast bench CA", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    openssl(b, d, "req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    with open(os.path.join(d, "server.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
                "extendedKeyUsage=serverAuth\n")
    openssl(b, d, "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "server.ext")


def tls_up(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def start_nginx(b, d, tag, sink):
    """nginx with NSUBS TLS + HTTP/2 ports answering 204 as SINK says:
    (process, ports, access log)."""
    prefix = os.path.join(b.tmp, "nginx-" + tag)
    os.makedirs(prefix, exist_ok=True)
    for attempt in (1, 2, 3):
        ports = helpers.freeports(NSUBS + 1)
        ports, backend = ports[:-1], ports[-1]
        listen = "".join("        listen 127.0.0.1:%d ssl http2;\n" % p for p in ports)
        conf = NGINX_CONF.format(prefix=prefix, dir=d, listen=listen.rstrip("\n"),
                                 backend=backend, event=EVENT[sink])
        p = spawn_nginx(b, prefix, conf, lambda: tls_up(ports[0]) and tls_up(ports[-1]))
        if p is not None:
            return p, ports, os.path.join(prefix, "access.log")
        b.say("%s: TLS nginx did not start (attempt %d)" % (tag, attempt))
    b.problem("%s: TLS nginx did not start" % tag)
    raise StepFailed(tag)


def publish_burst(url, n):
    """Publishes N messages over PUBLISHERS keep-alive connections, waiting
    out 503s: how many were accepted, and the errors."""
    host, port = helpers.split_url(url)
    body = b"x" * BODY_BYTES
    counts, errors = [0] * PUBLISHERS, []

    def worker(k, todo):
        c = http.client.HTTPConnection(host, port, timeout=30)
        sent = 0
        while sent < todo:
            try:
                c.request("POST", "/sendMessage", body=body,
                          headers={"Content-Type": "application/octet-stream"})
                r = c.getresponse()
                r.read()
            except (OSError, http.client.HTTPException) as e:
                c.close()
                c = http.client.HTTPConnection(host, port, timeout=30)
                if len(errors) < 10:
                    errors.append(str(e))
                continue
            if r.status == 200:
                sent += 1
            elif r.status == 503:
                time.sleep(0.01)
            else:
                errors.append("HTTP %d" % r.status)
                break
        counts[k] = sent
        c.close()

    threads = [threading.Thread(target=worker, args=(k, n // PUBLISHERS + (k < n % PUBLISHERS)))
               for k in range(PUBLISHERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts), errors


def log_entries(path):
    """(port, connection, protocol, status) of every line nginx logged."""
    with open(path) as f:
        return [tuple(line.split()) for line in f if line.strip()]


def one(b, binary, d, variant, http2, rnd, nmsg, sink):
    tag = "run10-%s-%s-r%d%s" % (sink, "h2" if http2 else "h1", rnd, "" if variant == "new" else "-" + variant)
    ng, ports, log = start_nginx(b, d, tag, sink)
    hc = Hookcast(b, binary, tag, flags=[
        "--ca-file", os.path.join(d, "ca.crt"), "--http2", "yes" if http2 else "no",
        "--max-transfers", str(MAX_TRANSFERS), "--max-in-flight", "8"])
    hc.start()
    want = 0
    try:
        addrs = ["https://127.0.0.1:%d/event" % p for p in ports]
        hc.register(addrs)
        # One message first, delivered and answered: each subscriber has a
        # connection, so the burst measures deliveries, not handshakes alone.
        accepted, errors = publish_burst(hc.url, 1)
        if accepted != 1:
            b.problem("%s: the first message was not accepted: %s" % (tag, errors[:3]))
            raise StepFailed(tag)
        deadline = time.monotonic() + 30
        while hc.stats()[1] < NSUBS and time.monotonic() < deadline:
            time.sleep(0.02)
        cpu0 = hc.cpu_secs()
        t0 = time.monotonic()
        accepted, errors = publish_burst(hc.url, nmsg)
        t_pub = time.monotonic() - t0
        want = (accepted + 1) * NSUBS
        deadline = time.monotonic() + b.o.drain_max
        st = hc.stats()
        while st[1] < want and time.monotonic() < deadline:
            time.sleep(0.02)
            st = hc.stats()
        secs = time.monotonic() - t0
        cpu = hc.cpu_secs() - cpu0
        if not hc.alive():
            raise StepFailed(tag)
        n, delivered, failed = st[0], st[1], st[2]
    finally:
        hc.stop()
        # Reopening its logs makes nginx write out what it has buffered.
        if ng.poll() is None:
            ng.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(log_entries(log)) < want:
            time.sleep(0.1)
        b.stop(ng)
    entries = log_entries(log)
    fig = {"dps": round(accepted * NSUBS / secs), "secs": fmt(secs, 2), "pub_secs": fmt(t_pub, 2),
           "accepted": accepted, "cpu": fmt(cpu, 2),
           "conns": len({(e[0], e[1]) for e in entries}),
           "protos": sorted({e[2] for e in entries}),
           "logged": len(entries), "delivered": delivered, "failed": failed}
    # At least once: a delivery libcurl failed after nginx had answered it
    # (see the DESIGN block of xfer.c) is sent again, to the same effect.
    ok = (n == NSUBS and delivered == want and len(entries) >= want
          and {e[3] for e in entries} == {"204"}
          and fig["protos"] == ["HTTP/2.0" if http2 else "HTTP/1.1"]
          and all(c >= accepted + 1 for c in per_port(entries, ports)))
    fig["all"] = ok
    fig["again"] = len(entries) - want
    b.say("  %s: %d accepted (%s s), %s deliveries/s over %s s, hookcast CPU %s s, %d connections, %s; "
          "delivered %s/%d, nginx logged %d, failed %s: %s"
          % (tag, accepted, fig["pub_secs"], fig["dps"], fig["secs"], fig["cpu"], fig["conns"],
             "/".join(fig["protos"]), delivered, want, len(entries), failed,
             "all delivered" if ok else "NOT all delivered"))
    if errors:
        b.problem("%s: publishing: %s" % (tag, "; ".join(errors[:3])))
    if ok and fig["again"]:
        b.note("%s: %d deliveries sent again after a failure (%s failed attempts)"
               % (tag, fig["again"], failed))
    if not ok:
        b.problem("%s: not every accepted message reached all %d subscribers over %s"
                  % (tag, NSUBS, "HTTP/2" if http2 else "HTTP/1.1"))
    return fig


def per_port(entries, ports):
    counts = dict.fromkeys(str(p) for p in ports)
    for p in counts:
        counts[p] = 0
    for e in entries:
        if e[0] in counts:
            counts[e[0]] += 1
    return counts.values()


def pairs(b, binary, d, variant, nmsg, sink):
    """--rounds pairs of runs, http2 yes and no, against SINK's subscribers:
    the figures of the comparison."""
    runs = {True: [], False: []}
    for r in range(1, b.o.rounds + 1):
        # Alternate which goes first, so that a drift in the load hits both.
        for http2 in ((True, False) if r % 2 else (False, True)):
            runs[http2].append(one(b, binary, d, variant, http2, r, nmsg, sink))
    h2, h1 = runs[True], runs[False]
    ratios = [a["dps"] / c["dps"] for a, c in zip(h2, h1) if c["dps"]]
    conns = [a["conns"] / c["conns"] for a, c in zip(h2, h1) if c["conns"]]
    fig = {"h2_dps": median([x["dps"] for x in h2]), "h1_dps": median([x["dps"] for x in h1]),
           "ratio": fmt(median(ratios), 3) if ratios else None,
           "conn_ratio": fmt(median(conns), 3) if conns else None,
           "h2_conns": median([x["conns"] for x in h2]), "h1_conns": median([x["conns"] for x in h1]),
           "all": all(x["all"] for x in h2 + h1),
           "detail": "; ".join("r%d h2 %d/s %d conns CPU %s s %d sent again, h1 %d/s %d conns CPU %s s %d sent again"
                               % (i + 1, a["dps"], a["conns"], a["cpu"], a["again"],
                                  c["dps"], c["conns"], c["cpu"], c["again"])
                               for i, (a, c) in enumerate(zip(h2, h1)))}
    b.say("  run10 (%s): HTTP/2 ÷ HTTP/1.1 deliveries/s %s on %s of the connections (%s)"
          % (sink, fig["ratio"], fig["conn_ratio"], fig["detail"]))
    return fig


def run(b, binary, variant, rnd):
    nmsg = 300 if b.o.quick else 2000
    d = os.path.join(b.tmp, "https-ca")
    if not os.path.exists(os.path.join(d, "server.crt")):
        make_certs(b, d)
    b.say("step 10: https fan-out, %d TLS nginx subscribers offering HTTP/2, %d messages, "
          "http2 yes against no, %d pair%s a kind of subscriber" % (NSUBS, nmsg, b.o.rounds, "" if b.o.rounds == 1 else "s"))
    return {"nmsg": nmsg, "sinks": {sink: pairs(b, binary, d, variant, nmsg, sink) for sink in EVENT}}


def summary_rows(fig):
    """The step's rows in the record: figure, value, target, verdict."""
    from report import cell
    if not fig:
        return []
    rows = []
    for sink, what in (("return", "answering from the headers (`return 204`)"),
                       ("read", "answering once they have read the body")):
        f = fig["sinks"][sink]
        ratio, conns = f.get("ratio"), f.get("conn_ratio")
        good = (ratio is not None and conns is not None and float(ratio) >= 1.0 and float(conns) <= 0.25)
        rows.append(("https fan-out (run 10), %d TLS nginx subscribers %s, %d messages: HTTP/2 ÷ HTTP/1.1 deliveries/s; connections used"
                     % (NSUBS, what, fig["nmsg"]),
                     cell(ratio, "", "on %s of the connections (%s against %s); HTTP/2 %s/s, HTTP/1.1 %s/s; %s"
                          % (conns, f["h2_conns"], f["h1_conns"], f["h2_dps"], f["h1_dps"], f["detail"])),
                     "≥ 1.0 on ≤ ¼ of the connections", "PASS" if good else "MISS"))
    ok = all(f["all"] for f in fig["sinks"].values())
    rows.append(("run 10: every accepted message delivered to all %d, over the protocol asked for" % NSUBS,
                 "yes" if ok else "no", "all", "PASS" if ok else "MISS"))
    return rows

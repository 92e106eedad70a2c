#!/usr/bin/env python3
"""Small helpers for the bench (standard library only): bench/run.py and its
steps import them; the command line below prints the same figures.

  helpers.py freeports N
      print N distinct free TCP ports on 127.0.0.1, chosen below the kernel's
      ephemeral range so that outgoing connections cannot take them
  helpers.py stats BASE_URL [EXCLUDE_ADDRESS]
      GET BASE_URL/listSubscribers?format=json and print
      "count delivered failed dropped queued in_flight retrying" summed over
      all subscribers (but EXCLUDE_ADDRESS, if given); a field that no
      subscriber object has (dropped since the store, retrying before it)
      prints as n/a
  helpers.py sums FILE [EXCLUDE_ADDRESS]
      the same for a listing already saved in FILE
  helpers.py register BASE_URL ADDRESS...
      register the given addresses
  helpers.py register-with QUERY BASE_URL ADDRESS...
      the same, with "&QUERY" added to each registration (e.g. topic=a,b)
  helpers.py topics BASE_URL
      print "COUNT TOPICS" per distinct topic set in the JSON listing
      (TOPICS: the set sorted and comma-separated, "*" for no topics)
  helpers.py sigcheck LOG SECRET BODY_BYTES SINCE
      check every line "id|timestamp|signature|length" of the check sink's
      access log: a msg_ id, a timestamp from SINCE (Unix seconds) to now
      (5 s slack), the length of bench/post.lua's body, and among the
      signature's space-separated "v1,<base64>" the HMAC-SHA256 of
      "id.timestamp.body" keyed with the whsec_ SECRET; print
      "lines good bad", then why the first bad line is (its fields
      space-separated); exit 1 when a line is bad or there is none
  helpers.py register-synthetic BASE_URL N
      register N distinct addresses 127.a.b.c:8080 (4 keep-alive
      connections); loopback, as every address the bench registers
  helpers.py dbstat DATA_DIR
      read DATA_DIR/hookcast.db (read-only, hookcast stopped) and print
      "messages body_bytes retries dead_letters subscribers": what is left
      in its tables; "n/a" when it cannot be read
"""
import base64
import hashlib
import hmac
import http.client
import json
import random
import socket
import sys
import threading
import time
import urllib.parse


def freeports(n):
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    lo, hi = 10000, max(low, 10000 + 4 * n) - 1
    start = random.randint(lo, hi)
    span = hi - lo + 1
    ports, held = [], []
    try:
        for k in range(span):
            p = lo + (start - lo + k) % span
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.bind(("127.0.0.1", p))
            except OSError:
                s.close()
                continue
            held.append(s)
            ports.append(p)
            if len(ports) == n:
                break
    finally:
        for s in held:
            s.close()
    if len(ports) < n:
        raise RuntimeError("freeports: only %d free ports found" % len(ports))
    return ports


def split_url(base):
    u = urllib.parse.urlsplit(base)
    return u.hostname, u.port or 80


def listing(base):
    """The JSON listing's bytes (RuntimeError unless it answers 200)."""
    host, port = split_url(base)
    c = http.client.HTTPConnection(host, port, timeout=30)
    try:
        c.request("GET", "/listSubscribers?format=json")
        r = c.getresponse()
        body = r.read()
    finally:
        c.close()
    if r.status != 200:
        raise RuntimeError("listing: HTTP %d: %r" % (r.status, body[:200]))
    return body


def stats(base, exclude=None):
    return sums(listing(base), exclude)


def sums(body, exclude=None):
    """(count, delivered, failed, dropped, queued, in_flight, retrying)
    summed over the listing's subscribers but EXCLUDE; "n/a" for a field
    no subscriber has."""
    subs = json.loads(body)["subscribers"]
    keys = ("delivered", "failed", "dropped", "queued", "in_flight", "retrying")
    tot = dict.fromkeys(keys, 0)
    seen = set()
    n = 0
    for s in subs:
        if exclude is not None and s.get("address") == exclude:
            continue
        n += 1
        for k in keys:
            if k in s:
                seen.add(k)
            tot[k] += int(s.get(k) or 0)
    return (n,) + tuple(tot[k] if k in seen or not n else "n/a" for k in keys)


def register_all(base, addrs, nconn=1, query=""):
    host, port = split_url(base)
    errors = []

    def worker(chunk):
        c = None
        for a in chunk:
            path = "/registerAndKeepAlive?address=" + urllib.parse.quote(a, safe="")
            if query:
                path += "&" + query
            for attempt in range(3):
                try:
                    if c is None:
                        c = http.client.HTTPConnection(host, port, timeout=30)
                        c.connect()
                        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    c.request("POST", path, body=b"")
                    r = c.getresponse()
                    body = r.read()
                    if r.status != 200:
                        errors.append("%s: HTTP %d %r" % (a, r.status, body[:100]))
                    if r.getheader("Connection", "").lower() == "close":
                        c.close()
                        c = None
                    break
                except (OSError, http.client.HTTPException) as e:
                    if c is not None:
                        c.close()
                    c = None
                    if attempt == 2:
                        errors.append("%s: %s" % (a, e))
        if c is not None:
            c.close()

    chunks = [addrs[i::nconn] for i in range(nconn)]
    threads = [threading.Thread(target=worker, args=(ch,)) for ch in chunks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError("register: %d failures, first: %s" % (len(errors), errors[0]))


def topics(base):
    """{topic set: subscribers}, the set sorted and comma-separated ("*":
    no topics)."""
    sets = {}
    for s in json.loads(listing(base))["subscribers"]:
        key = ",".join(sorted(s.get("topics") or [])) or "*"
        sets[key] = sets.get(key, 0) + 1
    return sets


def sigcheck(log, secret, body_bytes, since):
    """(lines, good, why the first bad line is or None)."""
    # The body bench/post.lua sends.
    body = b"x" * (body_bytes - 1) + b"\n"
    if not secret.startswith("whsec_"):
        raise ValueError("sigcheck: the secret is not whsec_...")
    key = base64.b64decode(secret[len("whsec_"):])
    now = time.time()
    lines = good = 0
    first_bad = None
    with open(log, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            lines += 1
            why = None
            parts = line.split("|")
            if len(parts) != 4:
                why = "not id|timestamp|signature|length"
            else:
                wid, ts, sig, length = parts
                if not wid.startswith("msg_"):
                    why = "no webhook-id"
                elif not ts.isdigit():
                    why = "no webhook-timestamp"
                elif not since - 5 <= int(ts) <= now + 5:
                    why = "webhook-timestamp %s not within the window" % ts
                elif length != str(body_bytes):
                    why = "body of %s bytes" % length
                elif sig in ("", "-"):
                    why = "no webhook-signature"
                else:
                    mac = hmac.new(key, ("%s.%s." % (wid, ts)).encode() + body,
                                   hashlib.sha256).digest()
                    want = "v1," + base64.b64encode(mac).decode()
                    if not any(hmac.compare_digest(v, want) for v in sig.split(" ")):
                        why = "webhook-signature does not verify"
            if why is None:
                good += 1
            elif first_bad is None:
                first_bad = "%s: line %d: %s" % (why, lines, " ".join(line.split("|"))[:200])
    return lines, good, first_bad


def synthetic(n):
    """N distinct loopback addresses 127.a.b.c:8080."""
    return ["127.%d.%d.%d:8080" % ((i >> 16) & 255, (i >> 8) & 255, i & 255)
            for i in range(1, n + 1)]


def dbstat(data_dir):
    """(messages, body_bytes, retries, dead_letters, subscribers) left in
    DATA_DIR/hookcast.db, or None when it cannot be read."""
    import os
    import sqlite3
    path = os.path.join(data_dir, "hookcast.db")
    queries = (
        "SELECT count(*), coalesce(sum(length(body)), 0) FROM messages",
        "SELECT count(*) FROM retries",
        "SELECT count(*) FROM dead_letters",
        "SELECT count(*) FROM subscribers",
    )
    # Since schema 3 a dead letter is part of a range (dead_ranges: lo..hi);
    # a baseline binary from before keeps one row each in dead_letters.
    dead_ranges = "SELECT coalesce(sum(hi - lo + 1), 0) FROM dead_ranges"
    try:
        if not os.path.exists(path):
            raise OSError("no " + path)
        db = sqlite3.connect("file:%s?mode=ro" % urllib.parse.quote(path), uri=True)
        try:
            out = list(db.execute(queries[0]).fetchone())
            tables = {r[0] for r in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
            for q in queries[1:]:
                if "dead_letters" in q and "dead_ranges" in tables:
                    q = dead_ranges
                out.append(db.execute(q).fetchone()[0])
        finally:
            db.close()
    except (OSError, sqlite3.Error) as e:
        print("dbstat: %s" % e, file=sys.stderr)
        return None
    return tuple(out)


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    cmd = argv[1]
    try:
        if cmd == "freeports" and len(argv) == 3:
            print(*freeports(int(argv[2])))
        elif cmd == "stats" and len(argv) in (3, 4):
            print(*stats(argv[2], argv[3] if len(argv) == 4 else None))
        elif cmd == "sums" and len(argv) in (3, 4):
            with open(argv[2], "rb") as f:
                print(*sums(f.read(), argv[3] if len(argv) == 4 else None))
        elif cmd == "register" and len(argv) >= 3:
            register_all(argv[2], argv[3:])
        elif cmd == "register-with" and len(argv) >= 4:
            register_all(argv[3], argv[4:], query=argv[2])
        elif cmd == "topics" and len(argv) == 3:
            sets = topics(argv[2])
            for key in sorted(sets):
                print(sets[key], key)
        elif cmd == "sigcheck" and len(argv) == 6:
            lines, good, bad = sigcheck(argv[2], argv[3], int(argv[4]), float(argv[5]))
            print(lines, good, lines - good)
            if bad is not None:
                print(bad)
            if lines == 0 or bad is not None:
                sys.exit(1)
        elif cmd == "register-synthetic" and len(argv) == 4:
            register_all(argv[2], synthetic(int(argv[3])), nconn=4)
        elif cmd == "dbstat" and len(argv) == 3:
            print(*(dbstat(argv[2]) or ("n/a",) * 5))
        else:
            sys.exit(__doc__)
    except (RuntimeError, ValueError) as e:
        sys.exit(str(e))


if __name__ == "__main__":
    main(sys.argv)

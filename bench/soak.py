#!/usr/bin/env python3
"""A soak of hookcast (`make soak`): long enough at a moderate rate, with
subscribers that come and go, to see whether anything grows without bound
and whether anything acknowledged goes missing.

Usage: python3 bench/soak.py [--binary build/hookcast] [--out DIR]
Environment (defaults in brackets):
  SOAK_MINUTES  length of the load phase [20]; at least 1 (2 tries the script)
  SOAK_RATE     publishes a second [30]
  SOAK_CHURN    subscribers that come and go [16]
  SOAK_DRAIN    seconds allowed after the load for the last deliveries [90]
  SOAK_SAMPLE   seconds between samples [10]
  SOAK_SEED     seed of the churn's random choices [1]

What runs, all on 127.0.0.1 (hookcast on a free port, every subscriber a
literal loopback address, so no name is looked up and nothing leaves the
machine):
- hookcast, the build given (`make soak`: the -O2 build, build/hookcast),
  with a fresh data directory and the soak's settings (CONFIG below): a
  short keepalive_ttl so that silent subscribers are evicted within
  seconds, a short delivery_timeout so that hanging ones time out, a short
  retry schedule, dead_letter_max and idempotency_window small enough that
  both tables reach their bound in the warm-up.
- A publisher, at SOAK_RATE from 4 keep-alive connections, every publish
  with an Idempotency-Key (tried once more on a network error), its topics
  taken in turn from MESSAGE_TOPICS (none, names, several). A publish
  answered 200 `success` is acknowledged; its Webhook-Id is kept with its
  topics and the checksum of its body.
- Steady subscribers (STEADY), registered before the first publish and kept
  alive every 2 s until the end, each with other topic filters; one of them
  answers 500 to the first attempt of one message in 20 (chosen by id), so
  that retries happen on a subscriber that must still miss nothing.
- SOAK_CHURN churners, a quarter of each kind, each living one life after
  another on a fresh port with topics drawn from CHURN_TOPICS:
    leave   registers, keeps alive 15-45 s, deregisters;
    silent  registers, keeps alive 10-30 s, falls silent and waits until
            the reaper has evicted it (a failure if that takes longer than
            keepalive_ttl + reap_interval + 10 s);
    fail    registers answering 500 for 8-20 s, then 200 for 10-20 s (its
            retries and the failing state's probe then succeed), deregisters;
    hang    accepts connections and never answers (delivery_timeout fires)
            for 10-30 s, then deregisters or falls silent (evicted), half
            each; what was pending becomes dead letters.
- A reload every minute: the config file alternates between two retry
  schedules and failure thresholds (RELOADS), then SIGHUP; each reload
  must be logged as `configuration reloaded` naming retry_schedule within
  10 s.
- Every SOAK_SAMPLE seconds a row: hookcast's RSS and threads
  (/proc/PID/status), open file descriptors and how many of them are not
  sockets (/proc/PID/fd), the sizes of hookcast.db and hookcast.db-wal in
  the data directory, and from /metrics the messages accepted, deliveries
  answered 2xx and failed, dead letters, evictions, subscribers and queued
  messages.

After the load phase the publisher and churners stop (churners deregister)
and the steady subscribers are given SOAK_DRAIN seconds to receive what is
theirs; then SIGTERM, and hookcast must exit 0 (within shutdown_grace and
10 s).

The verdict fails on any of:
- Growth without bound. The load phase (D seconds) is cut in thirds by the
  samples' times. The first third, and at least 3 minutes (WARMUP_MIN), is
  warm-up and is not judged: SQLite's cache and file, the WAL, malloc's
  arenas, the dead-letter and idempotency tables (trimmed once a minute)
  and the connection caches reach their working size there. The rest is
  halved (for D >= 9 minutes these are the middle and last thirds). For
  each series, M2 is its maximum over the first half and M3 its maximum
  over the second, and the series grows without bound when
      M3 > M2 * (1 + rel) + abs        (rel, abs per series: SERIES)
  A bounded series has reached its plateau in the warm-up, so the two
  maxima differ by noise only; maxima, not means or last values, because
  the series are saw-teeth (checkpoints, connections opened and closed,
  allocations freed in bursts, the database file given back in steps) and
  each window holds many teeth. A series that grows by r a second gains
  r * (window) between the two windows, so any leak faster than
  (rel * M2 + abs) / window fails; the summary prints that rate for each
  series. Slower leaks need a longer run (SOAK_MINUTES). A run too short
  for two windows of two samples after the warm-up (under 4 minutes with
  10-s samples) tests the script: its growth is shown, not judged.
- Loss: an acknowledged message routed to a steady subscriber (by the
  README's topic rules: routed() below) that it never answered 2xx to, once
  the drain is over. Duplicates are counted, not failed (delivery is at
  least once); a delivery whose body differs from the published one, or a
  message a steady subscriber should not have been sent (misrouted), fails.
- A steady subscriber evicted or no longer listed at the end; a silent
  subscriber not evicted in time; a reload not logged; hookcast not exiting
  0 on SIGTERM.

It prints the rows as it goes, then a summary, and writes the summary, the
samples (tab-separated) and hookcast's log into --out (default
build/soak/). Exit status 0 when the verdict is pass, 1 when it fails.
"""

import argparse
import collections
import http.client
import json
import os
import random
import shutil
import signal
import sqlite3
import sys
import threading
import time
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, 'tests', 'integration'))
import harness  # noqa: E402  (the integration tests' Hookcast, Sink, Client)

KEEPALIVE_EVERY = 2.0
RELOAD_EVERY = 60.0
RELOAD_WAIT = 10.0
EVICT_SLACK = 10.0
# The shortest warm-up: three runs of the store's once-a-minute housekeeping
# (dead letters past dead_letter_max, expired idempotency keys), after which
# hookcast.db had reached its working size in trial runs (its free pages go
# back to the filesystem in steps once most of the file is free).
WARMUP_MIN = 180.0

CONFIG = {
    'log_level': 'info',
    'keepalive_ttl': '8',
    'reap_interval': '2',
    'connect_timeout': '2',
    'delivery_timeout': '3',
    'dead_letter_max': '2000',
    'idempotency_window': '2m',
    'shutdown_grace': '5',
}
# What each reload switches between: both change delivery live.
RELOADS = (
    {'retry_schedule': '500ms 1s 2s 4s 8s', 'failure_threshold': '3'},
    {'retry_schedule': '1s 2s 3s 5s 8s', 'failure_threshold': '5'},
)

MESSAGE_TOPICS = (
    (), ('orders',), ('orders.eu',), ('billing.invoice',), ('shipping',),
    ('audit',), ('orders', 'shipping.fast'), ('billing.refund', 'audit'),
)
# name, topics, flaky
STEADY = (
    ('all', (), False),
    ('orders', ('orders',), False),
    ('billing', ('billing.*',), False),
    ('mixed', ('orders.*', 'shipping', 'shipping.*'), True),
)
CHURN_TOPICS = (
    (), ('orders',), ('billing.*',), ('shipping', 'audit'),
    ('orders.*', 'billing.invoice'),
)
KINDS = ('leave', 'silent', 'fail', 'hang')

# key, what, rel, abs (in the series' unit).  Once warm, RSS stayed within
# 0.25 MiB in trial runs: 2 % + 1 MiB is several times that.  Open fds swing
# by tens from one sample to the next with the connections to subscribers
# open at that instant (up to max_in_flight each, 8), so they get room for
# two subscribers' worth; the descriptors that are not sockets (the store's
# files, pipes, eventfds, epoll) must not move at all.  The database and
# its WAL grow and are given back in steps of a few hundred KiB.
SERIES = (
    ('rss_kib', 'RSS (KiB)', 0.02, 1024),
    ('fds', 'open fds', 0.10, 16),
    ('files', 'fds not sockets', 0.0, 2),
    ('threads', 'threads', 0.0, 1),
    ('db_kib', 'hookcast.db (KiB)', 0.10, 512),
    ('wal_kib', 'hookcast.db-wal (KiB)', 0.10, 512),
)


def routed(sub_topics, msg_topics):
    """Whether hookcast sends a message on msg_topics to a subscriber of
    sub_topics: one without topics gets everything, a message without topics
    goes to everyone, `name.*` matches every topic below name."""
    if not sub_topics or not msg_topics:
        return True
    return any(s == t or (s.endswith('.*') and t.startswith(s[:-1]))
               for s in sub_topics for t in msg_topics)


def register_path(address, topics):
    return '/registerAndKeepAlive?address=' + harness.q(address) + ''.join(
        '&topic=' + harness.q(t) for t in topics)


def success(r):
    return r is not None and r.status == 200 and r.body == b'success'


def call(client, method, path, **kw):
    """A request on client's keep-alive connection; None on a network error."""
    try:
        return client.request(method, path, **kw)
    except (OSError, http.client.HTTPException):
        client.close()
        return None


class Tally:
    """Counters shared by threads."""

    def __init__(self):
        self._lock = threading.Lock()
        self._c = collections.Counter()

    def add(self, key, n=1):
        with self._lock:
            self._c[key] += n

    def get(self, key):
        with self._lock:
            return self._c[key]

    def items(self):
        with self._lock:
            return sorted(self._c.items())


class SoakSink(harness.Sink):
    """The harness's Sink, keeping counts instead of every request: at a few
    hundred deliveries a second for 20 minutes its list of requests (headers
    and bodies) would take gigabytes.  With track, the checksum of the body
    of each webhook-id answered 2xx is kept for the loss check; with flaky,
    the first attempt of one message in 20 (by its id) is answered 500."""

    def __init__(self, track=False, flaky=False, **kw):
        self.track = track
        self.flaky = flaky
        self.received = 0
        self.delivered = {}    # webhook-id -> crc32 of the body answered 2xx
        self.duplicates = 0    # 2xx answers to an id already answered 2xx
        self.corrupt = 0       # a body that differs between two deliveries
        self.refused_once = set()
        super().__init__(**kw)

    def _arrive(self, rec):
        with self.cond:
            rec.index = self.received
            self.received += 1

    def _answer_for(self, rec):
        wid = rec.webhook_id or ''
        if self.flaky and zlib.crc32(wid.encode()) % 20 == 0:
            with self.cond:
                first = wid not in self.refused_once
                self.refused_once.add(wid)
            if first:
                return 500, {}
        status, headers = super()._answer_for(rec)
        if self.track and 200 <= status < 300:
            crc = zlib.crc32(rec.body)
            with self.cond:
                if wid not in self.delivered:
                    self.delivered[wid] = crc
                else:
                    self.duplicates += 1
                    if self.delivered[wid] != crc:
                        self.corrupt += 1
        return status, headers

    def delivered_ids(self):
        with self.cond:
            return dict(self.delivered)


class Publisher:
    """Publishes at rate from a few keep-alive connections, each message at
    its own time (start + k / rate), and keeps what was acknowledged."""

    THREADS = 4

    def __init__(self, port, rate, stop, tally):
        self.port = port
        self.rate = rate
        self.stop = stop
        self.tally = tally
        self._lock = threading.Lock()
        self._next = 0
        self.acked = {}        # webhook-id -> (topics, crc32 of the body)
        self.threads = [threading.Thread(target=self._run, daemon=True)
                        for _ in range(self.THREADS)]

    def start(self):
        self.t0 = time.monotonic()
        for t in self.threads:
            t.start()

    def join(self):
        for t in self.threads:
            t.join(30)

    def _run(self):
        client = harness.Client(self.port, timeout=10)
        while True:
            with self._lock:
                k = self._next
                self._next += 1
            wait = self.t0 + k / self.rate - time.monotonic()
            if self.stop.wait(max(wait, 0)):
                break
            self._publish(client, k)
        client.close()

    def _publish(self, client, k):
        topics = MESSAGE_TOPICS[k % len(MESSAGE_TOPICS)]
        body = json.dumps({'seq': k, 'topics': topics,
                           'pad': 'p' * 200}).encode()
        path = '/sendMessage' + ('?' + '&'.join('topic=' + t for t in topics)
                                 if topics else '')
        headers = {'Content-Type': 'application/json',
                   'Idempotency-Key': 'soak-%d' % k}
        self.tally.add('published')
        r = None
        for _ in range(2):
            r = call(client, 'POST', path, body=body, headers=headers)
            if r is not None:
                break
            self.tally.add('publish network errors')
        if not success(r):
            self.tally.add('publishes refused (%s)' %
                           (r.status if r is not None else 'no answer'))
            return
        wid = r.header('Webhook-Id')
        with self._lock:
            self.acked[wid] = (topics, zlib.crc32(body))
        self.tally.add('acknowledged')

    def acked_copy(self):
        with self._lock:
            return dict(self.acked)


class Steady:
    """Subscribers registered for the whole soak, kept alive every 2 s."""

    def __init__(self, port, stop, tally):
        self.port = port
        self.stop = stop
        self.tally = tally
        self.subs = [(name, topics, SoakSink(track=True, flaky=flaky))
                     for name, topics, flaky in STEADY]
        self.client = harness.Client(port, timeout=10)
        self.thread = threading.Thread(target=self._run, daemon=True)

    def register_all(self):
        for name, topics, sink in self.subs:
            r = call(self.client, 'POST', register_path(sink.address, topics))
            if not success(r):
                raise SystemExit('soak: registering steady subscriber %s: %r'
                                 % (name, r))

    def _run(self):
        while not self.stop.wait(KEEPALIVE_EVERY):
            for name, topics, sink in self.subs:
                r = call(self.client, 'POST', register_path(sink.address, topics))
                self.tally.add('steady keep-alives' if success(r)
                               else 'steady keep-alives failed')

    def close(self):
        for _, _, sink in self.subs:
            sink.close()
        self.client.close()


class Churner(threading.Thread):
    """One slot of subscribers that come and go, living lives of one kind."""

    def __init__(self, slot, kind, port, stop, tally, seed):
        super().__init__(daemon=True, name='churn-%d' % slot)
        self.kind = kind
        self.port = port
        self.stop = stop
        self.tally = tally
        self.rng = random.Random('%s-%d' % (seed, slot))
        self.client = harness.Client(port, timeout=10)
        self.ttl = float(CONFIG['keepalive_ttl'])
        self.reap = float(CONFIG['reap_interval'])

    def run(self):
        # Staggered, so the slots do not all register and leave in step.
        self.stop.wait(self.rng.uniform(0, 10))
        while not self.stop.is_set():
            getattr(self, '_' + self.kind)(self.rng.choice(CHURN_TOPICS))
            self.stop.wait(self.rng.uniform(1, 3))
        self.client.close()

    # -- lives

    def _leave(self, topics):
        sink = SoakSink()
        try:
            if self._keep(sink.address, topics, self.rng.uniform(15, 45)):
                self._deregister(sink.address)
        finally:
            sink.close()

    def _silent(self, topics):
        sink = SoakSink()
        try:
            if self._keep(sink.address, topics, self.rng.uniform(10, 30)):
                self._await_eviction(sink.address)
        finally:
            sink.close()

    def _fail(self, topics):
        sink = SoakSink(status=500)
        try:
            if self._keep(sink.address, topics, self.rng.uniform(8, 20)):
                sink.status = 200
                if self._keep(sink.address, topics, self.rng.uniform(10, 20),
                              first=False):
                    self._deregister(sink.address)
        finally:
            sink.close()

    def _hang(self, topics):
        sink = harness.HangingSink()
        try:
            if self._keep(sink.address, topics, self.rng.uniform(10, 30)):
                if self.rng.random() < 0.5:
                    self._deregister(sink.address)
                else:
                    self._await_eviction(sink.address)
        finally:
            sink.close()

    # -- steps

    def _keep(self, address, topics, seconds, first=True):
        """Registers (first) and keeps address alive for seconds.  False when
        the soak is ending: the subscriber is deregistered then."""
        end = time.monotonic() + seconds
        if first:
            self.tally.add('registrations')
            self.tally.add('lives: ' + self.kind)
        while True:
            r = call(self.client, 'POST', register_path(address, topics))
            if not success(r):
                self.tally.add('churn keep-alives failed')
            left = end - time.monotonic()
            if left <= 0:
                return True
            if self.stop.wait(min(KEEPALIVE_EVERY, left)):
                self._deregister(address)
                return False

    def _deregister(self, address):
        r = call(self.client, 'DELETE', '/deregister?address=' + harness.q(address))
        self.tally.add('deregistrations' if success(r) else 'deregistrations failed')

    def _registered(self, address):
        r = call(self.client, 'GET', '/listSubscribers?format=json')
        if r is None or r.status != 200:
            return None
        return any(s['address'] == address for s in r.json()['subscribers'])

    def _await_eviction(self, address):
        """Waits, silent, until the reaper has evicted address."""
        silent_since = time.monotonic()
        deadline = silent_since + self.ttl + self.reap + EVICT_SLACK
        while time.monotonic() < deadline:
            if self.stop.wait(1.0):
                self._deregister(address)
                return
            if self._registered(address) is False:
                self.tally.add('evictions seen')
                return
        self.tally.add('evictions late')
        print('soak: %s still registered %.0f s after its last keep-alive'
              % (address, time.monotonic() - silent_since), flush=True)
        self._deregister(address)


class Reloader(threading.Thread):
    """Each minute of the load, the other variant of the config file and a
    SIGHUP (not at the load's last instant, when the drain begins)."""

    def __init__(self, daemon, t0, duration, stop, tally):
        super().__init__(daemon=True, name='reloader')
        self.hookcast = daemon
        self.t0 = t0
        self.due = expected_reloads(duration)
        self.stop = stop
        self.tally = tally
        self.problems = []

    def run(self):
        for n in range(1, self.due + 1):
            if self.stop.wait(max(0, self.t0 + n * RELOAD_EVERY - time.monotonic())):
                return
            self._reload(n)

    def _reload(self, n):
        write_config(self.hookcast.config_path, RELOADS[n % len(RELOADS)])
        before = len(self._logged())
        self.hookcast.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + RELOAD_WAIT
        while time.monotonic() < deadline:
            lines = self._logged()
            if len(lines) > before:
                if 'retry_schedule' in lines[before]:
                    self.tally.add('reloads')
                    print('reload %d: %s' % (n, lines[before].split('msg=', 1)[1]),
                          flush=True)
                else:
                    self.problems.append('reload %d changed something else: %s'
                                         % (n, lines[before]))
                return
            time.sleep(0.1)
        self.problems.append('reload %d: no "configuration reloaded" within '
                             '%.0f s' % (n, RELOAD_WAIT))

    def _logged(self):
        return [ln for ln in self.hookcast.lines()
                if 'msg="configuration reloaded"' in ln]


def expected_reloads(duration):
    """Reloads at each whole minute strictly inside the load phase."""
    return max(0, int((duration - 1e-6) // RELOAD_EVERY))


def config_text(variant):
    cfg = dict(CONFIG)
    cfg.update(variant)
    return '# bench/soak.py\n' + ''.join('%s %s\n' % kv for kv in cfg.items())


def write_config(path, variant):
    """Replaces the config file whole, so a SIGHUP never reads half of it."""
    tmp = path + '.new'
    with open(tmp, 'w') as f:
        f.write(config_text(variant))
    os.replace(tmp, path)


def read_metrics(client):
    """The /metrics series the rows show, by name{labels}."""
    r = call(client, 'GET', '/metrics')
    if r is None or r.status != 200:
        return {}
    out = {}
    for line in r.text.splitlines():
        if line.startswith('#') or ' ' not in line:
            continue
        name, value = line.rsplit(' ', 1)
        if name.startswith(('hookcast_messages_accepted_total',
                            'hookcast_deliveries_total',
                            'hookcast_dead_letters_total',
                            'hookcast_evictions_total',
                            'hookcast_subscribers',
                            'hookcast_queued_messages',
                            'hookcast_retries_total',
                            'hookcast_retries_waiting')):
            out[name] = float(value)
    return out


def sample(daemon, client, t, phase):
    pid = daemon.proc.pid
    row = {'t': t, 'phase': phase}
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            key, _, value = line.partition(':')
            if key == 'VmRSS':
                row['rss_kib'] = int(value.split()[0])
            elif key == 'Threads':
                row['threads'] = int(value)
    fds = os.listdir('/proc/%d/fd' % pid)
    row['fds'] = len(fds)
    row['files'] = 0
    for fd in fds:
        try:
            if not os.readlink('/proc/%d/fd/%s' % (pid, fd)).startswith('socket:'):
                row['files'] += 1
        except OSError:
            pass    # closed since the listing
    for key, name in (('db_kib', 'hookcast.db'), ('wal_kib', 'hookcast.db-wal')):
        try:
            row[key] = os.path.getsize(os.path.join(daemon.data_dir, name)) // 1024
        except OSError:
            row[key] = 0
    m = read_metrics(client)
    row['accepted'] = int(m.get('hookcast_messages_accepted_total', 0))
    row['delivered'] = int(m.get('hookcast_deliveries_total{result="ok"}', 0))
    row['failed'] = int(sum(v for k, v in m.items()
                            if k.startswith('hookcast_deliveries_total')
                            and 'result="ok"' not in k))
    row['dead'] = int(m.get('hookcast_dead_letters_total', 0))
    row['evicted'] = int(m.get('hookcast_evictions_total', 0))
    row['subs'] = int(sum(v for k, v in m.items()
                          if k.startswith('hookcast_subscribers')))
    row['queued'] = int(m.get('hookcast_queued_messages', 0))
    return row


COLUMNS = (('t', '%6s', '%6d'), ('phase', '%5s', '%5s'),
           ('accepted', '%8s', '%8d'), ('delivered', '%9s', '%9d'),
           ('failed', '%7s', '%7d'), ('dead', '%6s', '%6d'),
           ('evicted', '%7s', '%7d'), ('subs', '%4s', '%4d'),
           ('queued', '%6s', '%6d'), ('rss_kib', '%8s', '%8d'),
           ('fds', '%4s', '%4d'), ('files', '%5s', '%5d'),
           ('threads', '%7s', '%7d'),
           ('db_kib', '%7s', '%7d'), ('wal_kib', '%7s', '%7d'))


def header_line():
    return ' '.join(h % k for k, h, _ in COLUMNS)


def row_line(row):
    return ' '.join(f % row[k] for k, _, f in COLUMNS)


def windows(duration, every):
    """The judged windows of the load phase, (start of the middle, start of
    the last, end), or None when the run is too short to judge growth: after
    the warm-up, each window must hold at least two samples."""
    warm = max(duration / 3, WARMUP_MIN)
    half = (duration - warm) / 2
    if half < 2 * every:
        return None
    return warm, warm + half, duration


def judge_growth(samples, duration, every):
    """[(what, start, end, max, M2, M3, limit, leak per minute, ok)], with
    M2, M3, limit and the rest None when growth is not judged."""
    w = windows(duration, every)
    load = [s for s in samples if s['phase'] == 'load']
    out = []
    for key, what, rel, ab in SERIES:
        row = (what, samples[0][key], samples[-1][key],
               max(s[key] for s in samples))
        if w is None:
            out.append(row + (None,) * 5)
            continue
        m2 = max(s[key] for s in load if w[0] <= s['t'] < w[1])
        m3 = max(s[key] for s in load if w[1] <= s['t'] <= w[2])
        limit = m2 * (1 + rel) + ab
        detectable = (limit - m2) / (w[1] - w[0]) * 60
        out.append(row + (m2, m3, limit, detectable, m3 <= limit))
    return out


def store_rows(data_dir):
    """Rows left in each table of hookcast.db once hookcast has exited."""
    path = os.path.join(data_dir, 'hookcast.db')
    try:
        db = sqlite3.connect('file:%s?mode=ro' % path, uri=True)
        try:
            return [(table, db.execute('SELECT count(*) FROM ' + table).fetchone()[0])
                    for table in ('messages', 'retries', 'dead_ranges',
                                  'subscribers', 'idempotency')]
        finally:
            db.close()
    except sqlite3.Error as e:
        return [('unreadable', str(e))]


def judge_delivery(steady, acked):
    """Per steady subscriber: (name, routed, delivered, missing ids,
    duplicates, misrouted ids, corrupt, first attempts answered 500)."""
    out = []
    for name, topics, sink in steady.subs:
        got = sink.delivered_ids()
        want = {wid: crc for wid, (mt, crc) in acked.items() if routed(topics, mt)}
        missing = [wid for wid in want if wid not in got]
        misrouted = [wid for wid in got if wid in acked and wid not in want]
        corrupt = sink.corrupt + sum(1 for wid, crc in want.items()
                                     if wid in got and got[wid] != crc)
        with sink.cond:
            refused = len(sink.refused_once)
        out.append((name, len(want), len(want) - len(missing), missing,
                    sink.duplicates, misrouted, corrupt, refused))
    return out


def steady_missing(steady, acked):
    return sum(len(r[3]) for r in judge_delivery(steady, acked))


def main():
    env = os.environ.get
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--binary', default=os.path.join(REPO, 'build', 'hookcast'))
    ap.add_argument('--out', default=os.path.join(REPO, 'build', 'soak'))
    ap.add_argument('--minutes', type=float, default=float(env('SOAK_MINUTES', 20)))
    ap.add_argument('--rate', type=float, default=float(env('SOAK_RATE', 30)))
    ap.add_argument('--churn', type=int, default=int(env('SOAK_CHURN', 16)))
    ap.add_argument('--drain', type=float, default=float(env('SOAK_DRAIN', 90)))
    ap.add_argument('--sample', type=float, default=float(env('SOAK_SAMPLE', 10)))
    ap.add_argument('--seed', default=env('SOAK_SEED', '1'))
    args = ap.parse_args()
    duration = args.minutes * 60
    if duration < 6 * args.sample:
        ap.error('the load phase must hold at least two samples a third '
                 '(SOAK_MINUTES >= %.1f)' % (6 * args.sample / 60))
    harness.BINARY = os.path.abspath(args.binary)
    if not os.access(harness.BINARY, os.X_OK):
        ap.error('no binary at %s (make builds it)' % harness.BINARY)
    os.makedirs(args.out, exist_ok=True)

    daemon = harness.Hookcast(config_text=config_text(RELOADS[0]))
    daemon.start()
    stop = threading.Event()
    tally = Tally()
    steady = None
    samples = []
    try:
        steady = Steady(daemon.port, stop, tally)
        text, ok = soak(args, duration, daemon, steady, stop, tally, samples)
    finally:
        stop.set()
        if daemon.alive():
            daemon.kill()
        if steady is not None:
            steady.close()
        with open(os.path.join(args.out, 'hookcast.log'), 'w') as f:
            f.write(daemon.stderr_text() + '\n')
        with open(os.path.join(args.out, 'samples.tsv'), 'w') as f:
            keys = [k for k, _, _ in COLUMNS]
            f.write('\t'.join(keys) + '\n')
            for row in samples:
                f.write('\t'.join(str(row[k]) for k in keys) + '\n')
        shutil.rmtree(daemon.tmp, ignore_errors=True)
    with open(os.path.join(args.out, 'summary.txt'), 'w') as f:
        f.write(text)
    print(text, end='')
    print('soak: samples, summary and hookcast.log in %s' % args.out)
    return 0 if ok else 1


def soak(args, duration, daemon, steady, stop, tally, samples):
    """The load, the drain and SIGTERM; returns the summary and the verdict."""
    print('soak: hookcast %s pid %d on 127.0.0.1:%d, %g min at %g '
          'publishes/s, %d steady + %d churning subscribers, data in %s'
          % (harness.BINARY, daemon.proc.pid, daemon.port, args.minutes,
             args.rate, len(STEADY), args.churn, daemon.data_dir), flush=True)
    steady.register_all()
    steady.thread.start()
    churners = [Churner(i, KINDS[i % len(KINDS)], daemon.port, stop, tally,
                        args.seed) for i in range(args.churn)]
    publisher = Publisher(daemon.port, args.rate, stop, tally)
    probe = harness.Client(daemon.port, timeout=10)

    def take(t, phase):
        if not daemon.alive():
            raise SystemExit('soak: hookcast exited (code %s) during the soak; '
                             'its log ends:\n%s' % (daemon.proc.poll(),
                                                    daemon.stderr_tail(30)))
        row = sample(daemon, probe, t, phase)
        samples.append(row)
        print(row_line(row), flush=True)

    print(header_line(), flush=True)
    t0 = time.monotonic()
    publisher.start()
    for c in churners:
        c.start()
    reloader = Reloader(daemon, t0, duration, stop, tally)
    reloader.start()
    i = 0
    while i * args.sample <= duration:
        time.sleep(max(0, t0 + i * args.sample - time.monotonic()))
        take(i * args.sample, 'load')
        i += 1

    # The end of the load: no publish, churn or reload from here on.
    stop.set()
    publisher.join()
    for c in churners:
        c.join(30)
    reloader.join(RELOAD_WAIT + 5)
    acked = publisher.acked_copy()
    drain_end = time.monotonic() + args.drain
    while time.monotonic() < drain_end and steady_missing(steady, acked):
        if time.monotonic() >= t0 + i * args.sample:
            take(i * args.sample, 'drain')
            i += 1
        time.sleep(0.5)
    drained = time.monotonic() - (t0 + duration)
    take(time.monotonic() - t0, 'end')
    r = call(probe, 'GET', '/listSubscribers?format=json')
    listed = ({sub['address'] for sub in r.json()['subscribers']}
              if r is not None and r.status == 200 else set())
    probe.close()

    rc, exit_problem = None, None
    try:
        rc = daemon.stop(timeout=float(CONFIG['shutdown_grace']) + 10)
    except AssertionError as e:
        exit_problem = str(e).splitlines()[0]
    return summarize(args, duration, drained, samples, tally, acked, steady,
                     listed, reloader, daemon, rc, exit_problem,
                     store_rows(daemon.data_dir))


def summarize(args, duration, drained, samples, tally, acked, steady, listed,
              reloader, daemon, rc, exit_problem, rows):
    """The summary's text and whether the verdict is pass."""
    problems = []
    out = ['', 'soak summary: %.1f min of load at %g publishes/s, %d steady '
           'and %d churning subscribers; drain %.0f s' %
           (args.minutes, args.rate, len(STEADY), args.churn, drained), '']

    out.append('%-22s %9s %9s %9s %9s %9s %9s %12s  %s' % (
        'series', 'start', 'end', 'max', 'M2', 'M3', 'limit',
        'leak/min >', 'growth'))
    for what, start, end, mx, m2, m3, limit, rate, ok in \
            judge_growth(samples, duration, args.sample):
        if ok is None:
            out.append('%-22s %9d %9d %9d %9s %9s %9s %12s  %s' % (
                what, start, end, mx, '-', '-', '-', '-', 'not judged'))
            continue
        out.append('%-22s %9d %9d %9d %9d %9d %9.0f %12.1f  %s' % (
            what, start, end, mx, m2, m3, limit, rate,
            'bounded' if ok else 'GROWS'))
        if not ok:
            problems.append('%s grows: max %d in the last window against %d '
                            'in the middle one (limit %.0f)' % (what, m3, m2, limit))
    w = windows(duration, args.sample)
    if w is None:
        out.append('(growth not judged: a load phase of %g min leaves no room '
                   'after the %.0f-s warm-up for two windows of two samples)'
                   % (args.minutes, WARMUP_MIN))
    else:
        out.append('(M2, M3: maxima over %.0f-%.0f s and %.0f-%.0f s of the '
                   'load, after the warm-up; limit = M2 * (1 + rel) + abs; '
                   'leak/min >: the slowest steady growth that fails)'
                   % (w[0], w[1], w[1], w[2]))

    last = samples[-1]
    out += ['', 'messages: %d published (%.1f/s), %d acknowledged (%d accepted '
            'by hookcast), %d deliveries answered 2xx, %d failed attempts, '
            '%d dead letters, %d evictions' % (
                tally.get('published'), tally.get('published') / duration,
                len(acked), last['accepted'], last['delivered'], last['failed'],
                last['dead'], last['evicted'])]
    out.append('counts: ' + ', '.join('%s %d' % kv for kv in tally.items()))
    out.append('rows left in hookcast.db after exit: ' +
               ', '.join('%s %s' % kv for kv in rows))

    out += ['', '%-8s %-28s %8s %9s %7s %10s %9s %7s %6s' % (
        'steady', 'topics', 'routed', 'delivered', 'missing', 'duplicates',
        'misrouted', 'corrupt', '500s')]
    for name, want, got, missing, dups, misrouted, corrupt, refused in \
            judge_delivery(steady, acked):
        topics = dict((n, t) for n, t, _ in STEADY)[name]
        out.append('%-8s %-28s %8d %9d %7d %10d %9d %7d %6d' % (
            name, ','.join(topics) or '(all)', want, got, len(missing), dups,
            len(misrouted), corrupt, refused))
        if missing:
            problems.append('steady %s missed %d acknowledged messages, e.g. %s'
                            % (name, len(missing), ' '.join(missing[:3])))
        if misrouted:
            problems.append('steady %s got %d messages not routed to it, e.g. %s'
                            % (name, len(misrouted), ' '.join(misrouted[:3])))
        if corrupt:
            problems.append('steady %s got %d bodies that differ from the '
                            'published ones' % (name, corrupt))
    out.append('(500s: first attempts the flaky subscriber refused, each then '
               'retried by hookcast)')

    log = daemon.lines()
    for name, topics, sink in steady.subs:
        if sink.address not in listed:
            problems.append('steady %s (%s) not listed at the end'
                            % (name, sink.address))
        if any('msg="subscriber evicted"' in ln and
               ('address=%s ' % sink.address) in ln + ' ' for ln in log):
            problems.append('steady %s (%s) was evicted' % (name, sink.address))
    if tally.get('evictions late'):
        problems.append('%d silent subscribers not evicted within '
                        'keepalive_ttl + reap_interval + %.0f s'
                        % (tally.get('evictions late'), EVICT_SLACK))
    problems += reloader.problems
    due = expected_reloads(duration)
    if tally.get('reloads') < due:
        problems.append('%d reloads took effect, %d expected'
                        % (tally.get('reloads'), due))
    if exit_problem:
        problems.append('SIGTERM: ' + exit_problem)
    out += ['', 'reloads: %d of %d; SIGTERM: exit code %s' % (
        tally.get('reloads'), due, rc)]
    out += [''] + ['FAIL: ' + p for p in problems]
    out.append('verdict: %s' % ('FAIL' if problems else 'pass'))
    return '\n'.join(out) + '\n', not problems


if __name__ == '__main__':
    sys.exit(main())

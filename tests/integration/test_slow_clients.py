"""Trickling clients are cut at their deadlines and cannot starve the API, even past max_connections."""

import re
import selectors
import signal
import socket
import threading
import time

from harness import (Client, HookcastTestCase, http_request, read_until_closed, scaled,
                     wait_until)

HEADER_TIMEOUT = 2      # seconds, the daemon's header_timeout in these tests


class Trickler:
    """Connections from several loopback addresses, each sending one more
    byte of an unfinished request every INTERVAL seconds for as long as it is
    open.  Records when each was opened and when the daemon closed it."""

    def __init__(self, port, hosts, per_host, interval=0.5,
                 start=b'POST /sendMessage HTTP/1.1\r\nHost: x\r\nX-Slow: '):
        self.port = port
        self.interval = interval
        self.conns = []         # [socket, opened, closed or None]
        self.lock = threading.Lock()
        self.stop = threading.Event()
        for i in range(per_host):
            for host in hosts:
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.bind((host, 0))
                s.settimeout(5)
                s.connect(('127.0.0.1', port))
                s.setblocking(False)
                opened = time.monotonic()
                try:
                    s.send(start)
                except OSError:
                    pass
                with self.lock:
                    self.conns.append([s, opened, None])
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _closed(self, c, now):
        if c[2] is None:
            c[2] = now
            c[0].close()

    def _run(self):
        sel = selectors.DefaultSelector()
        with self.lock:
            for c in self.conns:
                sel.register(c[0], selectors.EVENT_READ, c)
        next_byte = time.monotonic() + self.interval
        while not self.stop.is_set():
            for key, _ in sel.select(timeout=0.05):
                c = key.data
                try:
                    data = c[0].recv(4096)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b''
                if not data:
                    sel.unregister(c[0])
                    with self.lock:
                        self._closed(c, time.monotonic())
            if time.monotonic() >= next_byte:
                next_byte += self.interval
                with self.lock:
                    for c in self.conns:
                        if c[2] is None:
                            try:
                                c[0].send(b'a')
                            except OSError:
                                pass
        sel.close()

    def open_count(self):
        with self.lock:
            return sum(1 for c in self.conns if c[2] is None)

    def lifetimes(self):
        """How long each connection lived (None: still open)."""
        with self.lock:
            return [None if c[2] is None else c[2] - c[1] for c in self.conns]

    def close(self):
        self.stop.set()
        self.thread.join(5)
        with self.lock:
            for c in self.conns:
                if c[2] is None:
                    c[0].close()


class SlowClientDefenceTest(HookcastTestCase):

    def trickle(self, hc, hosts, per_host, **kw):
        t = Trickler(hc.port, hosts, per_host, **kw)
        self.addCleanup(t.close)
        return t

    def count(self, hc, msg):
        return sum(1 for l in hc.lines() if 'msg="%s"' % msg in l)

    def test_trickling_flood_past_the_limit(self):
        """More trickling connections than max_connections, from four
        addresses each under its own limit: probes and publishes, on a held
        connection and on new ones, answer within a second throughout, and
        every trickling connection is cut by header_timeout."""
        sink = self.sink()
        hc = self.start_hookcast(config={
            'max_connections': 40, 'max_conns_per_ip': 20,
            'header_timeout': HEADER_TIMEOUT, 'client_timeout': 30})
        self.assertSuccess(hc.register(sink.address))
        held = Client(hc.port, timeout=scaled(5))
        self.addCleanup(held.close)
        self.assertEqual(held.request('POST', '/sendMessage', b'm0').status, 200)
        held_conn = held.conn

        start = time.monotonic()
        t = self.trickle(hc, ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5'], 15)
        self.assertGreater(len(t.conns), 40)
        sent, worst = 1, 0.0
        while time.monotonic() - start < 3 * HEADER_TIMEOUT:
            for what in ('healthz', 'held', 'new'):
                t0 = time.monotonic()
                if what == 'healthz':
                    r = http_request(hc.port, 'GET', '/healthz', timeout=scaled(5))
                elif what == 'held':
                    r = held.request('POST', '/sendMessage', b'm%d' % sent, retry=False)
                    sent += 1
                else:
                    r = http_request(hc.port, 'POST', '/sendMessage', b'm%d' % sent,
                                     timeout=scaled(5))
                    sent += 1
                took = time.monotonic() - t0
                worst = max(worst, took)
                self.assertEqual(r.status, 200, (what, r))
                self.assertLess(took, scaled(1.0), '%s took %.2f s' % (what, took))
            # Spreads the requests over the slow clients' lifetime: the timing is the point.
            time.sleep(0.2)
        self.assertIs(held.conn, held_conn, 'the publisher\'s kept-alive connection was cut')

        # Every trickling connection is gone by header_timeout (sweeper slack:
        # a fraction of a second), whether cut at its deadline or for room.
        self.assertTrue(wait_until(lambda: t.open_count() == 0, scaled(HEADER_TIMEOUT + 2)),
                        '%d trickling connections still open' % t.open_count())
        lives = t.lifetimes()
        self.assertLess(max(lives), HEADER_TIMEOUT + scaled(1.0), sorted(lives)[-5:])
        self.assertTrue(sink.wait_for(sent, scaled(10)), (sink.count(), sent))

        # The log says so, once a second at most, with counts.
        elapsed = time.monotonic() - start + 2
        limit = [l for l in hc.lines() if 'msg="connection limit reached"' in l]
        cut = [l for l in hc.lines() if 'msg="slow requests cut"' in l]
        self.assertTrue(limit, hc.stderr_tail())
        self.assertLessEqual(len(limit), elapsed, limit)
        self.assertLessEqual(len(cut), elapsed, cut)
        self.assertLessEqual(self.count(hc, 'http'), elapsed, hc.stderr_tail())
        evicted = sum(int(re.search(r'cut_oldest=(\d+)', l).group(1)) for l in limit)
        headers = sum(int(re.search(r'headers=(\d+)', l).group(1)) for l in cut)
        self.assertGreaterEqual(evicted, len(t.conns) - 40)
        self.assertGreaterEqual(evicted + headers, len(t.conns))
        # And /metrics counts the same.
        text = http_request(hc.port, 'GET', '/metrics').text
        def sample(series):
            m = re.search(r'^%s (\d+)$' % re.escape(series), text, re.M)
            self.assertIsNotNone(m, series)
            return int(m.group(1))
        room = sample('hookcast_http_connections_cut_total{reason="room"}')
        late = sample('hookcast_http_connections_cut_total{reason="header"}')
        # Each trickling connection was cut once, and nothing else was.
        self.assertEqual(room + late, len(t.conns))
        self.assertGreaterEqual(room, evicted)
        self.assertEqual(sample('hookcast_http_connections_refused_total{reason="limit"}'), 0)
        self.assertLessEqual(sample('hookcast_http_connections'), 3)
        print('\n    worst answer %.3f s; %d trickling connections, %d cut for room, '
              '%d at the deadline, %d limit lines' % (worst, len(t.conns), evicted,
                                                      headers, len(limit)))

    def test_refused_when_nothing_can_be_cut(self):
        """Connections idle between requests are never cut for room: a
        publisher holding one keeps it.  New ones are refused, and the log
        says so once a second, not once a connection."""
        hc = self.start_hookcast(config={'max_connections': 6, 'max_conns_per_ip': 6,
                                         'client_timeout': 30})
        held = [Client(hc.port, timeout=scaled(5)) for _ in range(6)]
        for c in held:
            self.addCleanup(c.close)
            self.assertEqual(c.request('GET', '/healthz').status, 200)
        start = time.monotonic()
        refused = 0
        while time.monotonic() - start < 2.5:
            # From another address, so that its own limit is not what refuses.
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(('127.0.0.2', 0))
            s.settimeout(scaled(2))
            try:
                s.connect(('127.0.0.1', hc.port))
                s.sendall(b'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n')
                data, closed, _ = read_until_closed(s, scaled(2))
            except OSError:
                data, closed = b'', True
            finally:
                s.close()
            self.assertEqual(data, b'', 'a seventh connection was served')
            self.assertTrue(closed)
            refused += 1
        self.assertGreater(refused, 20)
        for c in held:
            conn = c.conn
            self.assertEqual(c.request('POST', '/sendMessage', b'x', retry=False).status, 200)
            self.assertIs(c.conn, conn)
        self.assertTrue(wait_until(lambda: self.count(hc, 'connection limit reached') > 0,
                                   scaled(3)), hc.stderr_tail())
        lines = [l for l in hc.lines() if 'msg="connection limit reached"' in l]
        self.assertLessEqual(len(lines), time.monotonic() - start + 1, lines)
        self.assertLessEqual(self.count(hc, 'http'), time.monotonic() - start + 1)
        total = sum(int(re.search(r' refused=(\d+)', l).group(1)) for l in lines)
        # The last second's refusals may not be logged yet.
        self.assertGreater(total, refused // 3, lines)

    def test_slow_body_is_cut_and_a_steady_one_is_not(self):
        sink = self.sink()
        hc = self.start_hookcast(config={'body_timeout': 2, 'body_min_rate': 1024,
                                         'client_timeout': 30})
        self.assertSuccess(hc.register(sink.address))
        head = b'POST /sendMessage HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n'

        # 20 bytes every 0.25 s: 80 B/s, far below 1 KiB/s.
        slow = socket.create_connection(('127.0.0.1', hc.port), timeout=5)
        self.addCleanup(slow.close)
        slow.sendall(head % 100000)
        # 8 KiB a second for 4 s: longer than body_timeout, above the rate.
        steady = socket.create_connection(('127.0.0.1', hc.port), timeout=5)
        self.addCleanup(steady.close)
        body = bytes(range(256)) * 128
        steady.sendall(head % len(body))
        t0 = time.monotonic()
        slow_cut = None
        for i in range(16):
            try:
                slow.sendall(b'x' * 20)
            except OSError:
                slow_cut = slow_cut or time.monotonic() - t0
            steady.sendall(body[i * 2048:(i + 1) * 2048])
            # The steady client's pace (8 KiB a second): the timing is the point.
            time.sleep(0.25)
        if slow_cut is None:
            slow.settimeout(scaled(3))
            try:
                closed = slow.recv(100) == b''
            except OSError:
                closed = True
            self.assertTrue(closed, 'a body at 80 B/s is still being read')
            slow_cut = time.monotonic() - t0
        self.assertLess(slow_cut, 2 + scaled(1.5))
        steady.settimeout(scaled(5))
        answer = steady.recv(1000)
        self.assertTrue(answer.startswith(b'HTTP/1.1 200'), answer)
        self.assertTrue(sink.wait_for(1, scaled(5)))
        self.assertEqual(sink.bodies(), [body])
        self.assertTrue(wait_until(lambda: self.count(hc, 'slow requests cut') > 0, scaled(3)))
        self.assertTrue(any('body=1' in l for l in hc.lines()
                            if 'msg="slow requests cut"' in l), hc.stderr_tail())

    def test_reload_shortens_header_timeout(self):
        hc = self.start_hookcast(config={'header_timeout': 60})
        t = self.trickle(hc, ['127.0.0.2'], 3)
        # A window, not a wait: the trickles must stay open (header_timeout 60).
        time.sleep(1.5)
        self.assertEqual(t.open_count(), 3)
        with open(hc.config_path, 'a') as f:
            f.write('header_timeout 1\n')
        hc.send_signal(signal.SIGHUP)
        self.assertTrue(wait_until(lambda: any('header_timeout' in l and 'reload' in l
                                               for l in hc.lines()), scaled(5)),
                        hc.stderr_tail())
        # Their deadline, from their accept, is long past: cut at once.
        self.assertTrue(wait_until(lambda: t.open_count() == 0, scaled(2.5)),
                        hc.stderr_tail())

"""Dead letters of removed subscribers with a backlog: removals that do not hold
publishers up, the listing paged with a cursor, replay and purge of parts of a
backlog, and a restart after kill -9 with that backlog."""

import threading
import time

from harness import Client, HookcastTestCase, http_request, q, scaled, wait_until

SUBS = 20
PENDING = 2000
MAX_IN_FLIGHT = 2
# Nothing is evicted, and a hanging delivery holds its subscriber for a while.
FLAGS = ('--keepalive-ttl', '1d', '--reap-interval', '1d', '--delivery-timeout', '2',
         '--max-in-flight', str(MAX_IN_FLIGHT), '--retry-schedule', '1h')


def pending(entry):
    return sum(entry.get(k) or 0 for k in ('queued', 'in_flight', 'retrying'))


class DeadLetterRangeTest(HookcastTestCase):

    def publish_many(self, hc, count, conns=8):
        """COUNT publishes over CONNS connections: the Message-Ids, in no order."""
        ids, bad, left = [], [], [count]
        lock = threading.Lock()

        def worker():
            c = Client(hc.port)
            try:
                while True:
                    with lock:
                        if left[0] == 0:
                            return
                        left[0] -= 1
                    r = c.request('POST', '/sendMessage', body=b'backlog')
                    with lock:
                        if r.status == 200:
                            ids.append(r.header('Message-Id'))
                        else:
                            bad.append(r)
            finally:
                c.close()

        threads = [threading.Thread(target=worker) for _ in range(conns)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(bad, [])
        return ids

    def backlog(self, hc, sinks):
        """Every sink registered and owed PENDING messages: their ids."""
        for s in sinks:
            self.assertSuccess(hc.register(s.address))
        ids = self.publish_many(hc, PENDING)
        self.assertTrue(wait_until(lambda: all(
            pending(e) >= PENDING for e in hc.list_json()), scaled(10)),
            'backlog not pending: %r' % hc.list_json()[:3])
        return set(ids)

    def walk(self, hc, limit, **query):
        """Every dead letter, page by page: (the list, how many pages)."""
        out, after, pages = [], None, 0
        while True:
            more = dict(query, format='json', limit=limit)
            if after is not None:
                more['after'] = after
            r = hc.request('GET', '/deadLetters' + hc._dl_query(**more))
            self.assertEqual(r.status, 200, r)
            body = r.json()
            pages += 1
            out += body['dead_letters']
            after = body.get('next')
            self.assertEqual(r.header('Dead-Letters-Next'), after)
            if after is None:
                self.assertLessEqual(len(body['dead_letters']), limit)
                return out, pages
            self.assertEqual(len(body['dead_letters']), limit)

    def test_removals_with_a_backlog(self):
        sinks = [self.hanging_sink() for _ in range(SUBS)]
        hc = self.start_hookcast(*FLAGS)
        ids = self.backlog(hc, sinks)

        # Deregistering them all, while a publisher goes on.
        lat, stop = [], threading.Event()

        def publisher():
            c = Client(hc.port)
            try:
                while not stop.is_set():
                    t = time.monotonic()
                    r = c.request('POST', '/sendMessage', body=b'during')
                    lat.append((time.monotonic() - t, r.status))
                    time.sleep(0.01)
            finally:
                c.close()

        pub = threading.Thread(target=publisher)
        pub.start()
        time.sleep(0.2)
        bad = []

        def deregister(chunk):
            c = Client(hc.port)
            try:
                for s in chunk:
                    r = c.request('DELETE', '/deregister?address=' + q(s.address))
                    if r.status != 200:
                        bad.append(r)
            finally:
                c.close()

        ders = [threading.Thread(target=deregister, args=(sinks[i::8],)) for i in range(8)]
        for t in ders:
            t.start()
        for t in ders:
            t.join()
        self.assertEqual(bad, [])
        self.assertTrue(wait_until(lambda: hc.list_json() == [], scaled(5)))
        # Until the removals have settled (the deliveries in flight end).
        time.sleep(3)
        stop.set()
        pub.join()
        self.assertEqual({s for _, s in lat}, {200})
        worst = max(t for t, _ in lat)
        self.assertLess(worst, 1.0, 'a publish took %.3f s during the removals' % worst)

        # Paged, every dead letter comes exactly once, in the same order as in one page.
        whole, _ = self.walk(hc, 100000)
        paged, pages = self.walk(hc, 997)
        self.assertEqual(paged, whole)
        self.assertGreater(pages, SUBS)
        keys = [(d['id'], d['address']) for d in paged]
        self.assertEqual(len(keys), len(set(keys)), 'a dead letter listed twice')
        by_addr = {}
        for d in paged:
            self.assertEqual(d['reason'], 'deregistered', d)
            by_addr.setdefault(d['address'], set()).add(d['id'])
        self.assertEqual(set(by_addr), {s.address for s in sinks})
        for a, got in by_addr.items():
            # Those in flight at the removal were sent: not dead letters.
            self.assertGreaterEqual(len(got & ids), PENDING - MAX_IN_FLIGHT, a)
        text = hc.dead_letters_text(limit=5)
        self.assertEqual(len(text.splitlines()), 5)

        # Replay of a part, by id: that message only, from every address it was owed to.
        a0, a1, a2 = (s.address for s in sinks[:3])
        mid = sorted(by_addr[a0] & by_addr[a1] & by_addr[a2] & ids)[PENDING // 2]
        self.assertSuccess(hc.register(a0))
        r = hc.replay(id=mid)
        self.assertEqual((r.status, r.body), (200, b'replayed 1\n'), r)
        self.assertEqual({d['address'] for d in hc.dead_letters(id=mid)},
                         {a for a, got in by_addr.items() if mid in got} - {a0})
        self.assertEqual(len(hc.dead_letters(address=a0, limit=100000)), len(by_addr[a0]) - 1)
        # A replay of a whole address, at most limit at a time.
        r = hc.request('POST', '/deadLetters/replay?address=%s&limit=500' % q(a0))
        self.assertEqual((r.status, r.body), (200, b'replayed 500\n'), r)
        left = len(by_addr[a0]) - 1 - 500
        self.assertEqual(len(hc.dead_letters(address=a0, limit=100000)), left)
        r = hc.replay(address=a0)
        self.assertEqual((r.status, r.body), (200, b'replayed %d\n' % left), r)
        self.assertEqual(hc.dead_letters(address=a0), [])
        self.assertTrue(wait_until(lambda: pending(hc.subscriber(a0)) >= len(by_addr[a0]),
                                   scaled(5)), hc.subscriber(a0))

        # Purge by id cuts one message out of a range; by address, the rest goes.
        other = sorted(by_addr[a1] & by_addr[a2] & ids)[10]
        owed = [a for a, got in by_addr.items() if other in got and a != a0]
        r = hc.purge(id=other)
        self.assertEqual((r.status, r.body), (200, b'purged %d\n' % len(owed)), r)
        self.assertEqual(hc.dead_letters(id=other), [])
        a1_left = hc.dead_letters(address=a1, limit=100000)
        self.assertEqual({d['id'] for d in a1_left}, by_addr[a1] - {other})
        r = hc.purge(address=a1)
        self.assertEqual((r.status, r.body), (200, b'purged %d\n' % len(a1_left)), r)
        self.assertEqual(hc.dead_letters(address=a1), [])
        self.assertEqual(len(hc.dead_letters(address=a2, limit=100000)), len(by_addr[a2]) - 1)

    def test_restart_after_kill9_with_a_backlog(self):
        sinks = [self.hanging_sink() for _ in range(SUBS)]
        hc = self.start_hookcast(*FLAGS)
        ids = self.backlog(hc, sinks)
        # Half removed just before the crash: what they were owed is settled at start.
        gone = sinks[:SUBS // 2]
        for s in gone:
            self.assertSuccess(hc.deregister(s.address))
        hc.kill9()

        t0 = time.monotonic()
        hc2 = self.start_hookcast(*FLAGS, data_dir=hc.data_dir)

        def answers(path):
            try:
                return http_request(hc2.port, 'GET', path, timeout=1).status == 200
            except OSError:
                return False

        self.assertTrue(wait_until(lambda: answers('/healthz'), scaled(10)))
        healthy = time.monotonic() - t0
        self.assertTrue(wait_until(lambda: answers('/readyz'), scaled(10)))
        self.assertLess(healthy, scaled(3), '/healthz answered %.2f s after the start' % healthy)
        self.assertIsNotNone(hc2.wait_for_log(
            r'msg="store restored" .*removed_before=%d' % len(gone), scaled(5)))
        self.assertEqual(hc2.addresses(), sorted(s.address for s in sinks[SUBS // 2:]))
        for s in sinks[SUBS // 2:]:
            self.assertGreaterEqual(pending(hc2.subscriber(s.address)), PENDING)
        for s in gone:
            got = {d['id'] for d in hc2.dead_letters(address=s.address, limit=100000)}
            self.assertGreaterEqual(len(got & ids), PENDING - MAX_IN_FLIGHT, s.address)

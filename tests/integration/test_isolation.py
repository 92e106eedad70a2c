"""Isolation and bounds: bad subscribers hold only their own slots; memory is bounded."""

import re
import threading
import time

from harness import Client, HookcastTestCase, refusing_address, scaled


class IsolationTest(HookcastTestCase):

    def test_hanging_and_refusing_beside_healthy(self):
        healthy = self.sink()
        hanging = self.hanging_sink()
        refusing = refusing_address()
        hc = self.start_hookcast('--max-in-flight', 4, '--delivery-timeout', 30,
                                 '--connect-timeout', 2, '--shutdown-grace', 1)
        for a in (hanging.address, refusing, healthy.address):
            self.assertSuccess(hc.register(a))
        n = 200
        c = Client(hc.port)
        t0 = time.monotonic()
        for i in range(n):
            self.assertSuccess(c.request('POST', '/sendMessage', body=b'event %d' % i))
        published = time.monotonic()
        c.close()
        got = healthy.wait_for(n, scaled(10))
        done = time.monotonic()
        self.assertEqual(got, n, 'the healthy subscriber got %d of %d' % (got, n))
        self.assertEqual(sorted(healthy.bodies()), sorted(b'event %d' % i for i in range(n)))
        self.assertLess(done - published, scaled(3),
                        'the healthy subscriber lagged %.1f s behind the publisher '
                        '(published in %.1f s)' % (done - published, published - t0))

        # The sink records a request before answering it: wait for the last answers.
        h = hc.wait_subscriber(healthy.address, lambda s: s['delivered'] == n, scaled(3))
        self.assertEqual((h['delivered'], h['failed'], h['dropped']), (n, 0, 0), h)

        r = hc.wait_subscriber(refusing, lambda s: s['failed'] >= n, scaled(10))
        self.assertGreater(r['failed'], 0, r)
        self.assertEqual(r['delivered'], 0, r)
        self.assertIsInstance(r['last_error'], str, r)
        self.assertTrue(r['last_error'], r)

        g = hc.subscriber(hanging.address)
        self.assertLessEqual(g['in_flight'], 4, g)
        self.assertGreaterEqual(g['in_flight'], 1, g)
        self.assertEqual(g['delivered'], 0, g)
        self.assertEqual(g['queued'] + g['in_flight'], n, g)
        self.assertLessEqual(hanging.max_open, 4,
                             'hookcast opened %d concurrent connections to a '
                             'subscriber capped at 4' % hanging.max_open)

        port = refusing.rsplit(':', 1)[1]
        failures = [l for l in hc.lines()
                    if re.search(r'level=(warn|error)\b', l) and port in l]
        self.assertTrue(failures, 'no warn/error log line names the refusing subscriber')

    def test_backpressure_answers_503_with_retry_after(self):
        hanging = self.hanging_sink()
        hc = self.start_hookcast('--max-queued-bytes', '64K', '--max-body', '4K',
                                 '--delivery-timeout', 30, '--shutdown-grace', 1)
        self.assertSuccess(hc.register(hanging.address))
        body = b'q' * 4096
        c = Client(hc.port)
        statuses = []
        rejected = None
        for _ in range(200):
            r = c.request('POST', '/sendMessage', body=body)
            statuses.append(r.status)
            if r.status != 200:
                rejected = r
                break
        self.assertIsNotNone(rejected, '200 publishes of 4 KiB over a 64 KiB bound all accepted')
        self.assertEqual(rejected.status, 503, rejected)
        accepted = len(statuses) - 1
        self.assertGreaterEqual(accepted, 8, 'rejected too early: %r' % statuses)
        self.assertLessEqual(accepted * len(body), 160 * 1024,
                             'accepted %d messages of 4 KiB over a 64 KiB bound' % accepted)
        ra = rejected.header('Retry-After')
        self.assertIsNotNone(ra, 'a 503 needs Retry-After')
        self.assertRegex(ra.strip(), r'^[0-9]+$')
        self.assertGreaterEqual(int(ra), 1)
        r = c.request('POST', '/sendMessage', body=b'small')
        self.assertEqual(r.status, 503, 'still over the bound: %r' % r)
        c.close()
        # The listing catches up with what was accepted (hand-over is asynchronous).
        st = hc.wait_subscriber(hanging.address,
                                lambda s: s['queued'] + s['in_flight'] >= accepted,
                                scaled(3))
        self.assertEqual(st['dropped'], 0, 'saying no must not drop: %r' % st)
        self.assertEqual(st['queued'] + st['in_flight'], accepted, st)

        # Once the hanging subscriber is gone its queue is freed: publishing works again.
        self.assertSuccess(hc.deregister(hanging.address))
        ok = None
        deadline = time.monotonic() + scaled(5)
        while time.monotonic() < deadline:
            ok = hc.publish(b'after deregister')
            if ok.status == 200:
                break
            time.sleep(0.1)
        self.assertSuccess(ok, 'publish after the hanging subscriber was deregistered')

    def test_full_queue_drops_oldest_and_counts(self):
        gate = threading.Event()
        sink = self.sink(gate=gate)
        # A healthy subscriber beside it: one slow subscriber is a minority,
        # so it loses its oldest messages rather than slow publishers down.
        healthy = self.sink()
        hc = self.start_hookcast('--queue-limit', 3, '--max-in-flight', 1)
        self.assertSuccess(hc.register(sink.address))
        self.assertSuccess(hc.register(healthy.address))
        self.assertSuccess(hc.publish(b'm0'))
        self.assertEqual(sink.wait_for(1, scaled(5)), 1, 'm0 should be in flight')
        # Paced by the healthy one, so its FIFO never backs up: only the slow
        # subscriber is behind, a minority, and publishing is never refused.
        for i in range(1, 10):
            self.assertSuccess(hc.publish(b'm%d' % i))
            self.assertEqual(healthy.wait_for(i + 1, scaled(5)), i + 1)
        # queue_limit bounds the FIFO; the one message in flight is not part of it.
        st = hc.wait_subscriber(sink.address, lambda s: s['dropped'] >= 6, scaled(5))
        self.assertEqual((st['queued'], st['in_flight'], st['dropped'], st['delivered']),
                         (3, 1, 6, 0), st)
        gate.set()
        self.assertEqual(sink.wait_for(4, scaled(5)), 4)
        time.sleep(0.3)
        self.assertEqual(sink.bodies(), [b'm0', b'm7', b'm8', b'm9'],
                         'the oldest queued messages are dropped, the newest kept in order')
        st = hc.wait_subscriber(sink.address, lambda s: s['delivered'] == 4, scaled(5))
        self.assertEqual((st['delivered'], st['dropped'], st['queued'], st['in_flight']),
                         (4, 6, 0, 0), st)
        self.assertEqual(healthy.wait_for(10, scaled(5)), 10)
        h = hc.wait_subscriber(healthy.address, lambda s: s['delivered'] == 10, scaled(5))
        self.assertEqual(h['dropped'], 0, h)

    def test_most_subscribers_backed_up_refuses_instead_of_dropping(self):
        gate = threading.Event()
        slow = [self.sink(gate=gate), self.sink(gate=gate)]
        healthy = self.sink()
        # queue_limit 200: refusals start at 100 queued, with room for the
        # (at most 100) publishes the delivery thread has not fanned out yet.
        hc = self.start_hookcast('--queue-limit', 200, '--max-in-flight', 1)
        for s in slow + [healthy]:
            self.assertSuccess(hc.register(s.address))
        accepted = 0
        refused = None
        for i in range(400):
            r = hc.publish(b'n%d' % i)
            if r.status == 503:
                refused = r
                break
            self.assertSuccess(r)
            accepted += 1
        self.assertIsNotNone(refused, 'two of three subscribers stalled: '
                             'publishing should be refused before their queues overflow')
        self.assertEqual(refused.headers.get('Retry-After'), '1')
        # Nothing accepted was dropped: once the slow ones recover, all of it arrives.
        gate.set()
        for s in slow + [healthy]:
            st = hc.wait_subscriber(s.address, lambda x: x['delivered'] == accepted,
                                    scaled(5))
            self.assertEqual((st['delivered'], st['dropped']), (accepted, 0), st)
        self.assertSuccess(hc.publish(b'after'))

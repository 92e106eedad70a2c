"""Isolation and bounds: bad subscribers hold only their own slots; the backlog is bounded."""

import re
import threading
import time

from harness import (Client, HookcastTestCase, MSG_ID_RE, refusing_address, scaled,
                     wait_until)


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
        self.assertEqual((h['delivered'], h['failed'], h['retrying'], h['queued'],
                          h['state']), (n, 0, 0, 0, 'active'), h)

        # failure_threshold (5) failures in a row: the refusing one is failing,
        # probed one retry at a time; what it has not had waits, none of it lost.
        r = hc.wait_subscriber(refusing, lambda s: s['state'] == 'failing', scaled(10))
        self.assertEqual(r['state'], 'failing', r)
        self.assertGreaterEqual(r['failed'], 5, r)
        self.assertEqual(r['delivered'], 0, r)
        self.assertLessEqual(r['in_flight'], 1, r)
        self.assertGreaterEqual(r['retrying'], 1, r)
        self.assertIsInstance(r['last_error'], str, r)
        self.assertTrue(r['last_error'], r)
        self.assertEqual(hc.dead_letters(refusing), [], 'no retry schedule ran out yet')

        g = hc.subscriber(hanging.address)
        self.assertLessEqual(g['in_flight'], 4, g)
        self.assertGreaterEqual(g['in_flight'], 1, g)
        self.assertEqual((g['delivered'], g['state']), (0, 'active'), g)
        # Everything published waits for it (FIFO or store), nothing dropped.
        g = hc.wait_subscriber(hanging.address,
                               lambda s: s['queued'] + s['in_flight'] == n, scaled(3))
        self.assertEqual(g['queued'] + g['in_flight'], n, g)
        self.assertLessEqual(hanging.max_open, 4,
                             'hookcast opened %d concurrent connections to a '
                             'subscriber capped at 4' % hanging.max_open)

        port = refusing.rsplit(':', 1)[1]
        failures = [l for l in hc.lines()
                    if re.search(r'level=(warn|error)\b', l) and port in l]
        self.assertTrue(failures, 'no warn/error log line names the refusing subscriber')

    def test_backpressure_answers_503_with_retry_after(self):
        # max_backlog_bytes bounds the bodies in the store: 16 of 4 KiB fit in 64 KiB.
        hanging = self.hanging_sink()
        hc = self.start_hookcast('--max-backlog-bytes', '64K', '--max-body', '4K',
                                 '--delivery-timeout', 2, '--shutdown-grace', 1)
        self.assertSuccess(hc.register(hanging.address))
        body = b'q' * 4096
        c = Client(hc.port)
        statuses = []
        rejected = None
        ids = []
        for _ in range(200):
            r = c.request('POST', '/sendMessage', body=body)
            statuses.append(r.status)
            if r.status != 200:
                rejected = r
                break
            ids.append(r.header('Message-Id'))
        self.assertIsNotNone(rejected, '200 publishes of 4 KiB over a 64 KiB bound all accepted')
        self.assertEqual(rejected.status, 503, rejected)
        accepted = len(statuses) - 1
        self.assertEqual(accepted, 16, 'a 64 KiB backlog holds 16 bodies of 4 KiB: %r'
                         % statuses)
        self.assertIsNone(rejected.header('Message-Id'), 'a refused message has no id')
        ra = rejected.header('Retry-After')
        self.assertIsNotNone(ra, 'a 503 needs Retry-After')
        self.assertRegex(ra.strip(), r'^[0-9]+$')
        self.assertGreaterEqual(int(ra), 1)
        r = c.request('POST', '/sendMessage', body=b'small')
        self.assertEqual(r.status, 503, 'still over the bound: %r' % r)
        self.assertIsNotNone(r.header('Retry-After'))
        c.close()
        for i in ids:
            self.assertRegex(i or '', MSG_ID_RE)
        self.assertEqual(len(set(ids)), accepted)
        st = hc.subscriber(hanging.address)
        self.assertEqual((st['delivered'], st['failed']), (0, 0), st)
        self.assertNotIn('dropped', st)

        # Nothing accepted was lost: deregistered, the hanging subscriber's
        # messages are every one of them a dead letter.
        self.assertSuccess(hc.deregister(hanging.address))
        dls = hc.wait_dead_letters(lambda d: len(d) >= accepted, scaled(8),
                                   address=hanging.address)
        self.assertEqual(sorted(d['id'] for d in dls), sorted(ids), dls)
        self.assertEqual({d['reason'] for d in dls}, {'deregistered'}, dls)

        # Once they are purged the store has room again: publishing works.
        r = hc.purge(address=hanging.address)
        self.assertEqual((r.status, r.text), (200, 'purged %d\n' % accepted), r)
        answers = []

        def published():
            answers.append(hc.publish(body))
            if answers[-1].status != 200:
                self.assertEqual(answers[-1].status, 503, answers[-1])
            return answers[-1].status == 200
        wait_until(published, scaled(5), interval=0.1)
        self.assertSuccess(answers[-1], 'publish once the backlog was purged')

    def test_slow_subscriber_backlog_waits_in_the_store(self):
        gate = threading.Event()
        sink = self.sink(gate=gate)
        healthy = self.sink()
        # queue_limit 3: the slow subscriber's FIFO overflows into the store,
        # from which it is read back, in order, once the subscriber answers.
        hc = self.start_hookcast('--queue-limit', 3, '--max-in-flight', 1)
        self.assertSuccess(hc.register(sink.address))
        self.assertSuccess(hc.register(healthy.address))
        ids = []
        r = hc.publish(b'm0')
        self.assertSuccess(r)
        ids.append(r.header('Message-Id'))
        self.assertEqual(sink.wait_for(1, scaled(5)), 1, 'm0 should be in flight')
        for i in range(1, 10):
            r = hc.publish(b'm%d' % i)
            self.assertSuccess(r)
            ids.append(r.header('Message-Id'))
            self.assertEqual(healthy.wait_for(i + 1, scaled(5)), i + 1)
        st = hc.subscriber(sink.address)
        self.assertEqual((st['in_flight'], st['delivered'], st['failed']), (1, 0, 0), st)
        gate.set()
        self.assertEqual(sink.wait_for(10, scaled(5)), 10)
        # A window, not a wait: a duplicate delivery would arrive in it.
        time.sleep(0.3)
        want = [b'm%d' % i for i in range(10)]
        self.assertEqual(sink.bodies(), want, 'every message, once, in order')
        self.assertEqual(sink.webhook_ids(), ids)
        self.assertEqual(healthy.bodies(), want)
        self.assertEqual(healthy.webhook_ids(), ids, 'one id per message, for everyone')
        st = hc.wait_subscriber(sink.address, lambda s: s['delivered'] == 10, scaled(5))
        self.assertEqual((st['delivered'], st['failed'], st['queued'], st['in_flight'],
                          st['retrying']), (10, 0, 0, 0, 0), st)
        h = hc.wait_subscriber(healthy.address, lambda s: s['delivered'] == 10, scaled(5))
        self.assertEqual((h['queued'], h['failed']), (0, 0), h)

    def test_stalled_subscribers_do_not_refuse_publishing(self):
        gate = threading.Event()
        slow = [self.sink(gate=gate), self.sink(gate=gate)]
        healthy = self.sink()
        # Two of three subscribers stalled, their FIFOs (queue_limit 20) long
        # full: publishing goes on (the backlog is far from max_backlog_bytes)
        # and nothing is dropped.
        hc = self.start_hookcast('--queue-limit', 20, '--max-in-flight', 1)
        for s in slow + [healthy]:
            self.assertSuccess(hc.register(s.address))
        c = Client(hc.port)
        n = 400
        for i in range(n):
            self.assertSuccess(c.request('POST', '/sendMessage', body=b'n%d' % i),
                               'publish %d' % i)
        c.close()
        want = [b'n%d' % i for i in range(n)]
        self.assertEqual(healthy.wait_for(n, scaled(10)), n)
        for s in slow:
            self.assertEqual(s.count(), 1, 'one delivery in flight, held by the gate')
        gate.set()
        for s in slow + [healthy]:
            st = hc.wait_subscriber(s.address, lambda x: x['delivered'] == n, scaled(10))
            self.assertEqual((st['delivered'], st['failed'], st['queued'], st['retrying']),
                             (n, 0, 0, 0), st)
            self.assertEqual(s.bodies(), want, 'every message, once, in order')
        self.assertSuccess(hc.publish(b'after'))

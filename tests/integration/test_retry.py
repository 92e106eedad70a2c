"""Retries: the schedule, one webhook-id per message, Retry-After, the failing state, ordered."""

import email.utils
import re
import time

from harness import HookcastTestCase, MSG_ID_RE, Sink, refusing_address, scaled

TEXT_LINE_RE = re.compile(r'^(.+)  :  (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)$')
FAILING_LINE_RE = re.compile(r'^(.+)  :  (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)  failing$')


class RetryTest(HookcastTestCase):

    def publish_id(self, hc, body):
        r = hc.publish(body)
        self.assertSuccess(r, 'publish')
        mid = r.header('Message-Id')
        self.assertIsNotNone(mid, 'no Message-Id header on the publish answer: %r' % r)
        self.assertRegex(mid, MSG_ID_RE)
        return mid

    def test_three_failures_then_success_same_webhook_id(self):
        sink = self.sink(status=[500, 500, 500, 200])
        hc = self.start_hookcast('--retry-schedule', '100ms 100ms 100ms 100ms')
        self.assertSuccess(hc.register(sink.address))
        mid = self.publish_id(hc, b'persistent')
        self.assertEqual(sink.wait_for(4, scaled(5)), 4,
                         'retries with a 100 ms schedule did not reach the 4th attempt')
        # A window, not a wait: an attempt after the success would come in it.
        time.sleep(0.5)
        recs = sink.snapshot()
        self.assertEqual([r.status for r in recs], [500, 500, 500, 200],
                         'attempts after the delivery succeeded: %r' % recs)
        self.assertEqual({r.body for r in recs}, {b'persistent'})
        self.assertEqual([r.webhook_id for r in recs], [mid] * 4,
                         'every attempt carries the Message-Id as webhook-id')
        spread = recs[3].arrived - recs[0].arrived
        self.assertLess(spread, scaled(1.5),
                        '3 retries on a "100ms" schedule took %.2f s' % spread)
        st = hc.wait_subscriber(sink.address, lambda s: s['delivered'] == 1, scaled(3))
        self.assertEqual(st['delivered'], 1, st)
        self.assertEqual(st.get('state'), 'active', st)
        self.assertEqual(hc.dead_letters(), [])

    def test_redirects_client_errors_and_refused_connections_are_retried(self):
        elsewhere = self.sink()
        down = refusing_address()
        hc = self.start_hookcast('--retry-schedule',
                                 '100ms 200ms 300ms 500ms 500ms 500ms 500ms 500ms 500ms',
                                 '--connect-timeout', 1)
        self.assertSuccess(hc.register(down))
        mid = self.publish_id(hc, b'eventually')
        # A refused attempt or more before the subscriber comes up.
        hc.wait_subscriber(down, lambda s: s['failed'] >= 1, scaled(5))
        # The subscriber comes up on its port, answering 302, then 404, then 200.
        sink = Sink(port=int(down.rsplit(':', 1)[1]),
                    status=[(302, {'Location': elsewhere.url()}), 404, 200])
        self._closers.append(sink.close)
        self.assertTrue(sink.wait_until(lambda recs: any(r.status == 200 for r in recs),
                                        scaled(8)),
                        'not retried to success: %r' % sink.snapshot())
        # A window, not a wait: an attempt after the success would come in it.
        time.sleep(0.3)
        recs = sink.snapshot()
        self.assertEqual([r.status for r in recs], [302, 404, 200], recs)
        self.assertEqual([r.webhook_id for r in recs], [mid] * 3)
        self.assertEqual(elsewhere.count(), 0, 'a 302 must not be followed')
        self.assertEqual(hc.dead_letters(), [])

    def test_retry_after_is_honoured(self):
        hc = self.start_hookcast('--retry-schedule', '100ms 100ms 100ms')

        def http_date_3s(i):
            if i == 0:
                return 429, {'Retry-After': email.utils.formatdate(time.time() + 3,
                                                                   usegmt=True)}
            return 200
        # (label, status spec, least gap after the first answer, most nominal gap)
        cases = [
            ('503 Retry-After: 2', [(503, {'Retry-After': '2'}), 200], 1.9, 2),
            # An HTTP date 3 s ahead, truncated to whole seconds: 2..3 s.
            ('429 Retry-After: HTTP date', http_date_3s, 1.9, 3),
            ('503 Retry-After: 0 is clamped to 1 s', [(503, {'Retry-After': '0'}), 200],
             0.9, 1),
        ]
        for label, status, least, most in cases:
            with self.subTest(case=label):
                sink = self.sink(status=status)
                self.assertSuccess(hc.register(sink.address))
                mid = self.publish_id(hc, label.encode())
                self.assertEqual(sink.wait_for(2, most + scaled(4)), 2,
                                 'no second attempt within %.1f s' % (most + scaled(4)))
                first, second = sink.snapshot()[:2]
                gap = second.arrived - first.done
                self.assertGreaterEqual(
                    gap, least, 'the second attempt came %.2f s after the %d answer with '
                    'Retry-After (the schedule says 100ms)' % (gap, first.status))
                self.assertLessEqual(second.arrived - first.arrived, most + scaled(3),
                                     'the second attempt came too late')
                self.assertEqual((first.webhook_id, second.webhook_id), (mid, mid))
                # A window, not a wait: a third attempt would come in it.
                time.sleep(0.3)
                self.assertEqual(sink.count(), 2, sink.snapshot())
                self.assertSuccess(hc.deregister(sink.address))

    def test_failing_state_then_recovery(self):
        sink = self.sink(status=500, delay=0.3)
        hc = self.start_hookcast('--failure-threshold', 2, '--retry-schedule',
                                 '100ms 100ms 2s 2s 2s 2s 2s 2s 2s 2s 2s 2s')
        self.assertSuccess(hc.register(sink.address))
        ids = {}
        for i in range(3):
            body = b'during-outage-%d' % i
            ids[body] = self.publish_id(hc, body)
        st = hc.wait_subscriber(sink.address, lambda s: s.get('state') == 'failing',
                                scaled(5))
        self.assertEqual(st.get('state'), 'failing',
                         'failure_threshold 2, every attempt answered 500: %r' % st)
        t_failing = time.monotonic()
        lines = [l for l in hc.list_text().splitlines() if l.startswith(sink.address + ' ')]
        self.assertEqual(len(lines), 1, lines)
        self.assertRegex(lines[0], FAILING_LINE_RE)
        page = hc.request('GET', '/listSubscribers?format=html').text
        self.assertIn('failing', page, 'the HTML listing shows no state')

        # While failing, only one retry probe at a time: no two attempts overlap.
        # A window, not a wait: probes that overlapped would do so in it.
        time.sleep(2.5)
        probes = [r for r in sink.snapshot() if r.arrived > t_failing + 0.5]
        for a, b in zip(probes, probes[1:]):
            self.assertTrue(a.done is not None and b.arrived >= a.done - 0.01,
                            'two attempts at once to a failing subscriber: %r' % probes)
        self.assertEqual(hc.subscriber(sink.address).get('state'), 'failing')

        sink.status = 200
        st = hc.wait_subscriber(sink.address, lambda s: s.get('state') == 'active',
                                scaled(8))
        self.assertEqual(st.get('state'), 'active', 'a successful probe must end "failing"')
        self.assertTrue(sink.wait_until(
            lambda recs: set(ids) <= {r.body for r in recs if r.status == 200}, scaled(10)),
            'not every message arrived after the subscriber recovered: %r'
            % sink.snapshot())
        for r in sink.snapshot():
            self.assertEqual(r.webhook_id, ids[r.body])
        lines = [l for l in hc.list_text().splitlines() if l.startswith(sink.address + ' ')]
        self.assertEqual(len(lines), 1, lines)
        self.assertRegex(lines[0], TEXT_LINE_RE)
        self.assertFalse(lines[0].endswith('failing'), lines[0])
        self.assertEqual(hc.dead_letters(), [])

    def test_ordered_failed_message_is_not_overtaken(self):
        sink = self.sink(status=[500, 200])
        hc = self.start_hookcast('--ordered', 'yes', '--retry-schedule', '200ms 200ms 200ms')
        self.assertSuccess(hc.register(sink.address))
        bodies = [b'ordered-%02d' % i for i in range(10)]
        for b in bodies:
            self.publish_id(hc, b)
        self.assertTrue(sink.wait_until(
            lambda recs: set(bodies) <= {r.body for r in recs if r.status == 200},
            scaled(8)), 'not everything arrived: %r' % sink.snapshot())
        # A window, not a wait: an attempt after the success would come in it.
        time.sleep(0.3)
        recs = sink.snapshot()
        self.assertEqual((recs[0].body, recs[0].status), (bodies[0], 500), recs)
        first_ok = next(i for i, r in enumerate(recs) if r.status == 200)
        self.assertEqual([r.body for r in recs[:first_ok + 1]], [bodies[0]] * (first_ok + 1),
                         'a later message overtook the failed first one: %r' % recs)
        self.assertEqual([r.body for r in recs if r.status == 200], bodies,
                         'ordered yes: deliveries out of publish order (or repeated)')

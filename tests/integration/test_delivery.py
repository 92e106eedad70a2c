"""Publishing: what each subscriber's endpoint receives."""

import random
import time

from harness import HookcastTestCase, Client, MSG_ID_RE, scaled


class DeliveryTest(HookcastTestCase):

    def assertDeliveryHeaders(self, rec, content_type, length):
        self.assertEqual(rec.method, 'POST')
        self.assertEqual(rec.headers.get('Content-Type'), content_type)
        ua = rec.headers.get('User-Agent', '')
        self.assertTrue(ua.startswith('hookcast/') and len(ua) > len('hookcast/'),
                        'User-Agent %r' % ua)
        self.assertIsNone(rec.headers.get('Expect'), 'no Expect header')
        if rec.headers.get('Content-Length') is not None:
            self.assertEqual(int(rec.headers['Content-Length']), length)
        self.assertRegex(rec.headers.get('webhook-id') or '', MSG_ID_RE)

    def test_publish_delivers_with_headers(self):
        sink = self.sink()
        hc = self.start_hookcast()
        self.assertSuccess(hc.register(sink.address))
        r = hc.publish(b'{"event":"created","id":7}', content_type='application/json')
        self.assertSuccess(r, 'publish')
        self.assertTextPlain(r)
        first_id = r.header('Message-Id')
        self.assertRegex(first_id or '', MSG_ID_RE)
        r = hc.publish(b'no type given')
        self.assertSuccess(r)
        second_id = r.header('Message-Id')
        self.assertRegex(second_id or '', MSG_ID_RE)
        self.assertNotEqual(first_id, second_id)
        self.assertEqual(sink.wait_for(2, scaled(5)), 2)
        recs = {r.body: r for r in sink.snapshot()}
        self.assertEqual(set(recs), {b'{"event":"created","id":7}', b'no type given'})
        rec = recs[b'{"event":"created","id":7}']
        self.assertEqual(rec.path, '/event')
        self.assertDeliveryHeaders(rec, 'application/json', len(rec.body))
        self.assertEqual(rec.webhook_id, first_id, 'webhook-id is the Message-Id')
        rec = recs[b'no type given']
        self.assertEqual(rec.path, '/event')
        self.assertDeliveryHeaders(rec, 'application/octet-stream', len(rec.body))
        self.assertEqual(rec.webhook_id, second_id)

    def test_binary_200k_byte_exact_to_several_subscribers(self):
        body = random.Random(20261123).randbytes(200 * 1024)
        plain = [self.sink() for _ in range(3)]
        custom = self.sink()
        hc = self.start_hookcast()
        for s in plain:
            self.assertSuccess(hc.register(s.address))
        self.assertSuccess(hc.register(custom.url('/custom/path?x=1')))
        self.assertSuccess(hc.publish(body))
        for s in plain + [custom]:
            self.assertEqual(s.wait_for(1, scaled(10)), 1)
        # A window, not a wait: a duplicate delivery would arrive in it.
        time.sleep(0.2)
        for s in plain:
            recs = s.snapshot()
            self.assertEqual(len(recs), 1, 'exactly one delivery per subscriber')
            self.assertEqual(recs[0].path, '/event')
            self.assertTrue(recs[0].body == body, 'body differs: %d bytes received, '
                            'first difference at %r' % (len(recs[0].body), next(
                                (i for i, (a, b) in enumerate(zip(recs[0].body, body))
                                 if a != b), None)))
            self.assertDeliveryHeaders(recs[0], 'application/octet-stream', len(body))
        rec = custom.snapshot()[0]
        self.assertEqual(rec.path, '/custom/path?x=1')
        self.assertTrue(rec.body == body)

    def test_full_url_subscriber_gets_posts_at_its_path(self):
        sink = self.sink()
        hc = self.start_hookcast()
        self.assertSuccess(hc.register(sink.url('/custom/path')))
        self.assertSuccess(hc.publish(b'hello path'))
        self.assertEqual(sink.wait_for(1, scaled(5)), 1)
        rec = sink.snapshot()[0]
        self.assertEqual((rec.method, rec.path, rec.body),
                         ('POST', '/custom/path', b'hello path'))

    def test_publish_without_subscribers(self):
        hc = self.start_hookcast()
        self.assertSuccess(hc.publish(b'nobody listens'))

    def test_empty_body_is_delivered(self):
        sink = self.sink()
        hc = self.start_hookcast()
        self.assertSuccess(hc.register(sink.address))
        self.assertSuccess(hc.publish(b''))
        self.assertEqual(sink.wait_for(1, scaled(5)), 1)
        self.assertEqual(sink.snapshot()[0].body, b'')

    def test_many_messages_each_delivered_once(self):
        sinks = [self.sink(), self.sink()]
        hc = self.start_hookcast()
        for s in sinks:
            self.assertSuccess(hc.register(s.address))
        c = Client(hc.port)
        bodies = [b'msg-%04d' % i for i in range(300)]
        ids = {}
        for b in bodies:
            r = c.request('POST', '/sendMessage', body=b)
            self.assertSuccess(r)
            ids[b] = r.header('Message-Id')
        c.close()
        self.assertEqual(len(set(ids.values())), 300, 'every message has its own id')
        for s in sinks:
            self.assertEqual(s.wait_for(300, scaled(15)), 300)
        # A window, not a wait: a duplicate delivery would arrive in it.
        time.sleep(0.2)
        for s in sinks:
            got = s.bodies()
            self.assertEqual(len(got), 300, 'duplicates delivered')
            self.assertEqual(sorted(got), bodies)
            # The same message carries the same webhook-id to every subscriber.
            self.assertEqual({r.body: r.webhook_id for r in s.snapshot()}, ids)
        st = hc.subscriber(sinks[0].address)
        self.assertEqual(st['delivered'], 300, st)

    def test_deregistered_subscriber_receives_nothing(self):
        stays, leaves = self.sink(), self.sink()
        hc = self.start_hookcast()
        self.assertSuccess(hc.register(stays.address))
        self.assertSuccess(hc.register(leaves.address))
        self.assertSuccess(hc.deregister(leaves.address))
        self.assertSuccess(hc.publish(b'after'))
        self.assertEqual(stays.wait_for(1, scaled(5)), 1)
        # A window, not a wait: a delivery to the deregistered one would arrive in it.
        time.sleep(0.3)
        self.assertEqual(leaves.count(), 0)

    def test_non_2xx_is_a_failure_and_redirects_are_not_followed(self):
        target = self.sink()
        redirect = self.sink(status=302, response_headers={'Location': target.url()})
        broken = self.sink(status=500)
        # One retry, an hour away: each failure is counted once, then waits.
        hc = self.start_hookcast('--retry-schedule', '1h')
        self.assertSuccess(hc.register(redirect.address))
        self.assertSuccess(hc.register(broken.address))
        self.assertSuccess(hc.publish(b'x'))
        self.assertEqual(redirect.wait_for(1, scaled(5)), 1)
        self.assertEqual(broken.wait_for(1, scaled(5)), 1)
        for s, err in ((redirect, 'HTTP 302'), (broken, 'HTTP 500')):
            st = hc.wait_subscriber(s.address, lambda e: e['failed'] >= 1 and
                                    e['retrying'] == 1, scaled(5))
            self.assertEqual((st['delivered'], st['failed'], st['retrying']), (0, 1, 1), st)
            self.assertEqual(st['last_error'], err)
        # A window, not a wait: a followed redirect would arrive in it.
        time.sleep(0.3)
        self.assertEqual(target.count(), 0, 'a 302 must not be followed')

    def test_connections_are_reused(self):
        sink = self.sink()
        hc = self.start_hookcast()
        self.assertSuccess(hc.register(sink.address))
        for i in range(20):
            self.assertSuccess(hc.publish(b'%d' % i))
            self.assertEqual(sink.wait_for(i + 1, scaled(5)), i + 1)
            # Publish the next one only once hookcast counted this delivery done,
            # so its connection is idle and can be reused.
            st = hc.wait_subscriber(sink.address, lambda s: s['delivered'] == i + 1,
                                    scaled(5))
            self.assertEqual(st['delivered'], i + 1, st)
        ports = {r.client_port for r in sink.snapshot()}
        self.assertLessEqual(len(ports), 2,
                             '20 sequential deliveries used %d connections' % len(ports))

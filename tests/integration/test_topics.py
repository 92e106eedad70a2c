"""Topics: who gets a message, how a subscriber's set changes, and bad names."""

import threading
import time

from harness import HookcastTestCase, Sink, q, scaled


def register(hc, address, *topics, extra=''):
    path = '/registerAndKeepAlive?address=' + q(address)
    path += ''.join('&topic=' + q(t) for t in topics) + extra
    return hc.request('POST', path)


def publish(hc, body, *topics, headers=None):
    path = '/sendMessage'
    if topics:
        path += '?' + '&'.join('topic=' + q(t) for t in topics)
    return hc.request('POST', path, body=body, headers=headers or {})


class TopicTest(HookcastTestCase):

    def received(self, hc, sinks, barrier):
        """Publishes BARRIER to everyone, waits for it everywhere, returns bodies by sink."""
        self.assertSuccess(publish(hc, barrier))
        for s in sinks.values():
            self.assertTrue(s.wait_until(lambda recs: any(r.body == barrier for r in recs),
                                         scaled(10)), 'barrier not delivered')
        # A window, not a wait: a stray delivery still in flight would arrive in it.
        time.sleep(0.1)
        return {name: sorted(b for b in s.bodies() if b != barrier)
                for name, s in sinks.items()}

    def test_exact_prefix_none_and_mixed(self):
        sinks = {n: self.sink() for n in ('orders', 'prefix', 'all', 'mixed')}
        hc = self.start_hookcast()
        self.assertSuccess(register(hc, sinks['orders'].address, 'orders'))
        self.assertSuccess(register(hc, sinks['prefix'].address, 'orders.*'))
        self.assertSuccess(hc.register(sinks['all'].address))
        self.assertSuccess(register(hc, sinks['mixed'].address, 'billing,shipping.*'))
        for body, topics in ((b'1', ('orders',)), (b'2', ('orders.paid',)),
                             (b'3', ('orders.eu.paid',)), (b'4', ('billing',)),
                             (b'5', ('shipping.eu.x',)), (b'6', ('unheard',)),
                             (b'7', ()), (b'8', ('orders', 'billing')),
                             (b'9', ('orders.paid,shipping',))):
            self.assertSuccess(publish(hc, body, *topics))
        got = self.received(hc, sinks, b'end')
        self.assertEqual(got['orders'], [b'1', b'7', b'8'])
        self.assertEqual(got['prefix'], [b'2', b'3', b'7', b'9'])
        self.assertEqual(got['all'], [b'1', b'2', b'3', b'4', b'5', b'6', b'7',
                                      b'8', b'9'])
        self.assertEqual(got['mixed'], [b'4', b'5', b'7', b'8'])

    def test_keepalive_keeps_topics_reregistration_replaces_them(self):
        sink = self.sink()
        hc = self.start_hookcast()
        self.assertSuccess(register(hc, sink.address, 'a', 'b'))
        self.assertEqual(hc.subscriber(sink.address)['topics'], ['a', 'b'])
        self.assertSuccess(hc.register(sink.address))
        self.assertEqual(hc.subscriber(sink.address)['topics'], ['a', 'b'])
        self.assertSuccess(register(hc, sink.address, 'c'))
        self.assertEqual(hc.subscriber(sink.address)['topics'], ['c'])
        self.assertSuccess(publish(hc, b'to a', 'a'))
        self.assertSuccess(publish(hc, b'to c', 'c'))
        self.assertEqual(sink.wait_for(1, scaled(5)), 1)
        # A window, not a wait: a delivery for another topic would arrive in it.
        time.sleep(0.3)
        self.assertEqual(sink.bodies(), [b'to c'])
        # "*" alone: every topic again.
        self.assertSuccess(register(hc, sink.address, '*'))
        self.assertEqual(hc.subscriber(sink.address)['topics'], [])
        self.assertSuccess(publish(hc, b'to a again', 'a'))
        self.assertEqual(sink.wait_for(2, scaled(5)), 2)

    def test_listings_show_topics(self):
        a, b = self.sink(), self.sink()
        hc = self.start_hookcast()
        self.assertSuccess(register(hc, a.address, 'orders.*', 'billing'))
        self.assertSuccess(hc.register(b.address))
        lines = dict(line.split('  :  ', 1) for line in hc.list_text().splitlines())
        self.assertTrue(lines[a.address].endswith('  topics=billing,orders.*'),
                        lines[a.address])
        self.assertNotIn('topics', lines[b.address])
        self.assertEqual(hc.subscriber(a.address)['topics'], ['billing', 'orders.*'])
        self.assertEqual(hc.subscriber(b.address)['topics'], [])
        html = hc.request('GET', '/listSubscribers?format=html').text
        self.assertIn('<th>Topics</th>', html)
        self.assertIn('billing,orders.*', html)
        self.assertIn('(all)', html)

    def test_bad_topics_are_400_and_change_nothing(self):
        sink = self.sink()
        hc = self.start_hookcast()
        cases = [('orders!', 'Invalid topic "orders!"'), ('', 'Empty topic'),
                 ('a,,b', 'Empty topic'), ('x' * 129, 'Invalid topic'),
                 ('*,a', 'cannot be combined'), ('or*', 'Invalid topic'),
                 (','.join('t%d' % i for i in range(65)), 'More than 64 topics')]
        for bad, why in cases:
            r = register(hc, sink.address, bad)
            self.assertEqual(r.status, 400, bad)
            self.assertIn(why, r.text)
        self.assertEqual(hc.list_json(), [])
        self.assertSuccess(register(hc, sink.address, 'good'))
        r = register(hc, sink.address, 'bad topic')
        self.assertEqual(r.status, 400)
        self.assertEqual(hc.subscriber(sink.address)['topics'], ['good'])
        # A message's topic is a name: no patterns.
        for bad in ('good.*', '*', 'a b', ''):
            r = publish(hc, b'never', bad)
            self.assertEqual(r.status, 400, bad)
            self.assertTrue(r.text.startswith('Error:'), r.text)
        self.assertSuccess(publish(hc, b'ok', 'good'))
        self.assertEqual(sink.wait_for(1, scaled(5)), 1)
        # A window, not a wait: a delivery of a refused publish would arrive in it.
        time.sleep(0.2)
        self.assertEqual(sink.bodies(), [b'ok'])

    def test_publish_json_answer_counts_subscribers(self):
        sinks = [self.sink() for _ in range(3)]
        hc = self.start_hookcast()
        self.assertSuccess(register(hc, sinks[0].address, 'orders'))
        self.assertSuccess(register(hc, sinks[1].address, 'orders.*'))
        self.assertSuccess(hc.register(sinks[2].address))
        for topics, n in ((('orders',), 2), (('orders.x',), 2), (('other',), 1), ((), 3)):
            r = publish(hc, b'x', *topics, headers={'Accept': 'application/json'})
            self.assertEqual(r.status, 200)
            self.assertTrue(r.header('Content-Type').startswith('application/json'))
            body = r.json()
            self.assertEqual(body['subscribers'], n, topics)
            self.assertEqual(body['id'], r.header('Webhook-Id'))
            self.assertNotIn('duplicate', body)

    def test_topics_survive_restart(self):
        a, b = self.sink(), self.sink()
        data = self.make_tmpdir()
        hc = self.start_hookcast(data_dir=data)
        self.assertSuccess(register(hc, a.address, 'orders.*'))
        self.assertSuccess(register(hc, b.address, 'billing'))
        hc.stop()
        hc = self.start_hookcast(data_dir=data)
        self.assertEqual(hc.subscriber(a.address)['topics'], ['orders.*'])
        self.assertEqual(hc.subscriber(b.address)['topics'], ['billing'])
        self.assertSuccess(publish(hc, b'paid', 'orders.paid'))
        self.assertSuccess(publish(hc, b'bill', 'billing'))
        self.assertEqual(a.wait_for(1, scaled(5)), 1)
        self.assertEqual(b.wait_for(1, scaled(5)), 1)
        # A window, not a wait: a delivery for another topic would arrive in it.
        time.sleep(0.2)
        self.assertEqual((a.bodies(), b.bodies()), ([b'paid'], [b'bill']))

    def test_backlog_read_back_from_the_store_skips_other_topics(self):
        """Messages that wait in the store (past queue_limit) are filtered when read back."""
        gate = threading.Event()
        self.addCleanup(gate.set)
        sink = self.sink(gate=gate)
        hc = self.start_hookcast(config={'queue_limit': 2, 'max_in_flight': 1})
        self.assertSuccess(register(hc, sink.address, 'mine'))
        for i in range(100):
            self.assertSuccess(publish(hc, b'mine %02d' % i, 'mine'))
            self.assertSuccess(publish(hc, b'other %02d' % i, 'other'))
        entry = hc.subscriber(sink.address)
        self.assertGreater(entry['queued'], 2, 'the backlog waits in the store')
        gate.set()
        self.assertEqual(sink.wait_for(100, scaled(20)), 100)
        # A window, not a wait: a delivery for another topic would arrive in it.
        time.sleep(0.3)
        self.assertEqual(sink.bodies(), [b'mine %02d' % i for i in range(100)])

    def test_thousand_subscribers_over_fifty_topics(self):
        sink = self.sink()
        hc = self.start_hookcast(config={'max_in_flight': 2})
        for i in range(1000):
            r = register(hc, sink.url('/s%d' % i), 't%d' % (i % 50))
            self.assertSuccess(r)
        for k in range(50):
            r = publish(hc, b'm%d' % k, 't%d' % k, headers={'Accept': 'application/json'})
            self.assertEqual(r.json()['subscribers'], 20)
        self.assertEqual(sink.wait_for(1000, scaled(60)), 1000)
        # A window, not a wait: a duplicate or misrouted delivery would arrive in it.
        time.sleep(0.3)
        recs = sink.snapshot()
        self.assertEqual(len(recs), 1000)
        got = sorted((r.path, r.body) for r in recs)
        self.assertEqual(got, sorted(('/s%d' % i, b'm%d' % (i % 50)) for i in range(1000)))


class TopicChangeTest(HookcastTestCase):
    """A change of topics applies from the next message: what is pending stays routed."""

    def test_change_keeps_what_was_routed_before_it(self):
        gate = threading.Event()
        self.addCleanup(gate.set)
        sink = self.sink(gate=gate)
        hc = self.start_hookcast(config={'queue_limit': 2, 'max_in_flight': 1})
        self.assertSuccess(register(hc, sink.address, 'a'))
        for i in range(10):
            self.assertSuccess(publish(hc, b'a%02d' % i, 'a'))
            self.assertSuccess(publish(hc, b'b%02d' % i, 'b'))
        # Most of the a's wait in the store, not in memory.
        entry = hc.wait_subscriber(sink.address, lambda e: e['queued'] > 2, scaled(5))
        self.assertGreater(entry['queued'], 2)
        self.assertSuccess(register(hc, sink.address, 'b'))
        self.assertSuccess(publish(hc, b'a-after', 'a'))
        self.assertSuccess(publish(hc, b'b-after', 'b'))
        gate.set()
        self.assertEqual(sink.wait_for(11, scaled(20)), 11)
        # A window, not a wait: a delivery for the old topic would arrive in it.
        time.sleep(0.3)
        self.assertEqual(sink.bodies(), [b'a%02d' % i for i in range(10)] + [b'b-after'])

    def test_change_right_after_a_publish_routes_it_by_the_old_topics(self):
        """Register, publish and change topics back to back: the publish was
        routed to the subscriber (its answer says so) and must arrive."""
        lost = []
        for trial in range(20):
            sink = self.sink()
            hc = self.start_hookcast()
            answers = {}

            def send(name, fn):
                answers[name] = fn()
            self.assertSuccess(register(hc, sink.address, 'a'))
            threads = [threading.Thread(target=send, args=(
                'pub', lambda: publish(hc, b'first', 'a',
                                       headers={'Accept': 'application/json'})))]
            threads.append(threading.Thread(target=send, args=(
                'change', lambda: register(hc, sink.address, 'b'))))
            for t in threads:
                t.start()
                # Staggers the two requests by a hair: the race is the point.
                time.sleep(0.0005)
            for t in threads:
                t.join()
            self.assertSuccess(answers['change'])
            self.assertSuccess(publish(hc, b'marker', 'b'))
            self.assertTrue(sink.wait_until(
                lambda recs: any(r.body == b'marker' for r in recs), scaled(5)))
            # Counted for it, so sent to it (deliveries run side by side:
            # the marker may come first).
            if answers['pub'].json()['subscribers'] == 1 and not sink.wait_until(
                    lambda recs: any(r.body == b'first' for r in recs), scaled(3)):
                lost.append(trial)
            hc.stop()
        self.assertEqual(lost, [])

"""Dead letters: how messages get there, the listing, replay, purge and bad requests."""

import datetime
import re
import time

from harness import HookcastTestCase, MSG_ID_RE, scaled, utcnow, wait_until

RFC3339_RE = re.compile(
    r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$')
DL_LINE_RE = re.compile(
    r'^(msg_[0-9a-f]{32})  (\S+)  attempts=(\d+)  last="([^"]*)"  dead=(\S+)  '
    r'reason=(retries exhausted|evicted|deregistered|gone)$')
DL_FIELDS = ('id', 'address', 'attempts', 'last_status', 'last_error', 'first_attempt',
             'last_attempt', 'dead_at', 'reason')


def ts(text):
    if not isinstance(text, str) or not RFC3339_RE.match(text):
        raise AssertionError('not an RFC3339 timestamp: %r' % (text,))
    return datetime.datetime.fromisoformat(text.replace('Z', '+00:00'))


class DeadLetterTest(HookcastTestCase):

    def publish_id(self, hc, body):
        r = hc.publish(body)
        self.assertSuccess(r, 'publish')
        mid = r.header('Message-Id')
        self.assertIsNotNone(mid, 'no Message-Id header on the publish answer: %r' % r)
        self.assertRegex(mid, MSG_ID_RE)
        return mid

    def text_lines(self, hc, **query):
        text = hc.dead_letters_text(**query)
        if text:
            self.assertTrue(text.endswith('\n'), repr(text))
        return text.splitlines()

    def test_retries_exhausted_listing_then_replay(self):
        sink = self.sink(status=500)
        hc = self.start_hookcast('--retry-schedule', '100ms 100ms')
        self.assertSuccess(hc.register(sink.address))
        before = utcnow()
        mid = self.publish_id(hc, b'doomed')
        dls = hc.wait_dead_letters(lambda d: d, scaled(5))
        self.assertEqual(len(dls), 1, dls)
        d = dls[0]
        for f in DL_FIELDS:
            self.assertIn(f, d)
        self.assertEqual((d['id'], d['address'], d['attempts'], d['last_status'],
                          d['last_error'], d['reason']),
                         (mid, sink.address, 3, 500, 'HTTP 500', 'retries exhausted'), d)
        first, last, dead = ts(d['first_attempt']), ts(d['last_attempt']), ts(d['dead_at'])
        self.assertLessEqual(first, last)
        self.assertLessEqual(last, dead)
        self.assertGreaterEqual(first, before - datetime.timedelta(seconds=1))
        self.assertLessEqual(dead, utcnow() + datetime.timedelta(seconds=1))

        # Three attempts (the first and two retries), all with the message's id; then none.
        # A window, not a wait: a fourth attempt would come in it.
        time.sleep(0.4)
        recs = sink.snapshot()
        self.assertEqual(len(recs), 3, recs)
        self.assertEqual([r.webhook_id for r in recs], [mid] * 3)
        self.assertIn(sink.address, hc.addresses(),
                      'retries exhausted must not deregister the subscriber')

        # The text form (the default, and for Accept: text/plain).
        for headers in ({}, {'Accept': 'text/plain'}):
            r = hc.request('GET', '/deadLetters', headers=headers)
            self.assertEqual(r.status, 200, r)
            self.assertTextPlain(r)
            self.assertTrue(r.text.endswith('\n'), r.text)
            lines = r.text.splitlines()
            self.assertEqual(len(lines), 1, lines)
            m = DL_LINE_RE.match(lines[0])
            self.assertIsNotNone(m, 'dead-letter line %r' % lines[0])
            self.assertEqual(m.group(1, 2, 3, 4, 6),
                             (mid, sink.address, '3', 'HTTP 500', 'retries exhausted'))
            self.assertEqual(ts(m.group(5)).replace(microsecond=0), dead.replace(microsecond=0))
        # JSON for Accept: application/json as well as ?format=json.
        r = hc.request('GET', '/deadLetters', headers={'Accept': 'application/json'})
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.header('Content-Type', '').startswith('application/json'),
                        r.header('Content-Type'))
        self.assertEqual(r.json(), {'dead_letters': dls})

        # Replay once the subscriber works again: delivered, with the same id.
        sink.status = 200
        r = hc.replay(address=sink.address)
        self.assertEqual((r.status, r.body), (200, b'replayed 1\n'), r)
        self.assertEqual(sink.wait_for(4, scaled(5)), 4, 'replay delivered nothing')
        rec = sink.snapshot()[3]
        self.assertEqual((rec.body, rec.status, rec.webhook_id), (b'doomed', 200, mid))
        self.assertEqual(hc.wait_dead_letters(lambda d: not d, scaled(3)), [],
                         'a replayed dead letter must leave the list')
        self.assertEqual(hc.dead_letters_text(), '')

    def test_filters_limit_and_replay_by_id(self):
        a, b = self.sink(status=500), self.sink(status=500)
        hc = self.start_hookcast('--retry-schedule', '100ms')
        for s in (a, b):
            self.assertSuccess(hc.register(s.address))
        m1 = self.publish_id(hc, b'one')
        m2 = self.publish_id(hc, b'two')
        self.assertNotEqual(m1, m2)
        dls = hc.wait_dead_letters(lambda d: len(d) >= 4, scaled(5))
        self.assertEqual(sorted((d['id'], d['address']) for d in dls),
                         sorted((m, s.address) for m in (m1, m2) for s in (a, b)))
        dead = [ts(d['dead_at']) for d in dls]
        self.assertEqual(dead, sorted(dead), 'oldest first')
        self.assertEqual(len(self.text_lines(hc)), 4)

        only_a = hc.dead_letters(address=a.address)
        self.assertEqual(sorted(d['id'] for d in only_a), sorted([m1, m2]))
        self.assertEqual({d['address'] for d in only_a}, {a.address})
        only_m1 = hc.dead_letters(id=m1)
        self.assertEqual(sorted(d['address'] for d in only_m1), sorted([a.address, b.address]))
        self.assertEqual({d['id'] for d in only_m1}, {m1})
        self.assertEqual([d['id'] for d in hc.dead_letters(address=a.address, id=m2)], [m2])
        self.assertEqual(hc.dead_letters(limit=1), dls[:1])
        self.assertEqual(len(self.text_lines(hc, limit=2)), 2)
        self.assertEqual(hc.dead_letters(address='127.0.0.1:1'), [])

        a.status = b.status = 200
        r = hc.replay(id=m1)
        self.assertEqual((r.status, r.body), (200, b'replayed 2\n'), r)
        for s in (a, b):
            self.assertTrue(s.wait_until(
                lambda recs: any(r.body == b'one' and r.status == 200 for r in recs),
                scaled(5)), 'replay by id did not reach %s' % s.address)
        left = hc.wait_dead_letters(lambda d: len(d) == 2, scaled(3))
        self.assertEqual(sorted((d['id'], d['address']) for d in left),
                         sorted([(m2, a.address), (m2, b.address)]))
        r = hc.replay(address=a.address)
        self.assertEqual((r.status, r.body), (200, b'replayed 1\n'), r)
        self.assertTrue(a.wait_until(
            lambda recs: any(r.body == b'two' and r.status == 200 for r in recs), scaled(5)))
        left = hc.wait_dead_letters(lambda d: len(d) == 1, scaled(3))
        self.assertEqual([(d['id'], d['address']) for d in left], [(m2, b.address)])
        # A window, not a wait: a replay for A delivered to B would arrive in it.
        time.sleep(0.3)
        self.assertFalse(any(r.body == b'two' and r.status == 200 for r in b.snapshot()),
                         'replay for address A delivered to B')
        for s in (a, b):
            for r in s.snapshot():
                self.assertEqual(r.webhook_id, {b'one': m1, b'two': m2}[r.body])

    def test_purge(self):
        a, b = self.sink(status=500), self.sink(status=500)
        hc = self.start_hookcast('--retry-schedule', '100ms')
        for s in (a, b):
            self.assertSuccess(hc.register(s.address))
        m1 = self.publish_id(hc, b'one')
        m2 = self.publish_id(hc, b'two')
        self.assertEqual(len(hc.wait_dead_letters(lambda d: len(d) >= 4, scaled(5))), 4)
        counts = (a.count(), b.count())

        r = hc.purge(id=m1)
        self.assertEqual((r.status, r.body), (200, b'purged 2\n'), r)
        self.assertTextPlain(r)
        self.assertEqual(sorted((d['id'], d['address']) for d in hc.dead_letters()),
                         sorted([(m2, a.address), (m2, b.address)]))
        r = hc.purge(address=a.address)
        self.assertEqual((r.status, r.body), (200, b'purged 1\n'), r)
        self.assertEqual([(d['id'], d['address']) for d in hc.dead_letters()],
                         [(m2, b.address)])
        r = hc.purge(address=a.address)
        self.assertEqual((r.status, r.body), (200, b'purged 0\n'), r)
        r = hc.purge(address=b.address)
        self.assertEqual((r.status, r.body), (200, b'purged 1\n'), r)
        self.assertEqual(hc.dead_letters(), [])
        self.assertEqual(hc.dead_letters_text(), '')
        # Purged is gone: a replay finds nothing, nothing more is delivered.
        a.status = b.status = 200
        r = hc.replay(address=a.address)
        self.assertEqual((r.status, r.body), (200, b'replayed 0\n'), r)
        # A window, not a wait: a purged letter, if replayed, would arrive in it.
        time.sleep(0.4)
        self.assertEqual((a.count(), b.count()), counts)

    def test_410_gone_deregisters_and_dead_letters_pending(self):
        gone = self.sink(status=410, delay=0.5)
        other = self.sink()
        hc = self.start_hookcast('--retry-schedule', '100ms 100ms 100ms',
                                 '--max-in-flight', 1)
        for s in (gone, other):
            self.assertSuccess(hc.register(s.address))
        m1 = self.publish_id(hc, b'first')
        m2 = self.publish_id(hc, b'second')  # waits behind the first (max_in_flight 1)
        self.assertEqual(gone.wait_for(1, scaled(5)), 1)
        self.assertTrue(wait_until(lambda: gone.address not in hc.addresses(), scaled(3)),
                        'still listed after answering 410 Gone')
        self.assertNotIn(gone.address, hc.list_text())
        dls = hc.wait_dead_letters(lambda d: len(d) >= 2, scaled(3))
        self.assertEqual(sorted((d['id'], d['address'], d['reason']) for d in dls),
                         sorted([(m1, gone.address, 'gone'), (m2, gone.address, 'gone')]),
                         dls)
        d1 = next(d for d in dls if d['id'] == m1)
        self.assertEqual((d1['attempts'], d1['last_status']), (1, 410), d1)
        lines = self.text_lines(hc)
        self.assertEqual(len(lines), 2, lines)
        for line in lines:
            m = DL_LINE_RE.match(line)
            self.assertIsNotNone(m, line)
            self.assertEqual(m.group(6), 'gone')
        self.assertEqual(other.wait_for(2, scaled(5)), 2)
        self.publish_id(hc, b'third')
        self.assertEqual(other.wait_for(3, scaled(5)), 3)
        # A window, not a wait: a retry after the 410 would come in it.
        time.sleep(0.5)
        self.assertEqual(gone.count(), 1, 'a 410 must not be retried: %r' % gone.snapshot())
        self.assertEqual(gone.snapshot()[0].webhook_id, m1)

    def test_deregister_with_pending_makes_dead_letters(self):
        sink = self.sink(status=500)
        hc = self.start_hookcast('--retry-schedule', '1h 1h')
        self.assertSuccess(hc.register(sink.address))
        mid = self.publish_id(hc, b'unfinished')
        self.assertEqual(sink.wait_for(1, scaled(5)), 1)
        self.assertEqual(hc.dead_letters(), [], 'dead before its retries ran out')
        self.assertSuccess(hc.deregister(sink.address))
        dls = hc.wait_dead_letters(lambda d: d, scaled(3))
        self.assertEqual([(d['id'], d['address'], d['reason'], d['attempts'])
                          for d in dls], [(mid, sink.address, 'deregistered', 1)], dls)
        m = DL_LINE_RE.match(self.text_lines(hc)[0])
        self.assertIsNotNone(m)
        self.assertEqual(m.group(4, 6), ('HTTP 500', 'deregistered'))

    def test_replay_needs_a_registered_address_and_an_argument(self):
        sink = self.sink(status=500)
        hc = self.start_hookcast('--retry-schedule', '100ms')
        self.assertSuccess(hc.register(sink.address))
        mid = self.publish_id(hc, b'orphaned')
        dls = hc.wait_dead_letters(lambda d: d, scaled(5))
        self.assertEqual(len(dls), 1, dls)
        self.assertSuccess(hc.deregister(sink.address))
        for address in (sink.address, '127.0.0.1:1'):
            with self.subTest(address=address):
                r = hc.replay(address=address)
                self.assertEqual(r.status, 409, 'replay for an unregistered address: %r' % r)
        for label, r in (('replay', hc.request('POST', '/deadLetters/replay')),
                         ('purge', hc.request('DELETE', '/deadLetters'))):
            with self.subTest(request=label):
                self.assertEqual(r.status, 400, '%s with neither address nor id: %r'
                                 % (label, r))
        self.assertEqual(hc.dead_letters(), dls, 'a refused request must change nothing')
        # Registered again (and healthy), the replay goes to the new registration.
        count = sink.count()
        sink.status = 200
        self.assertSuccess(hc.register(sink.address))
        r = hc.replay(address=sink.address)
        self.assertEqual((r.status, r.body), (200, b'replayed 1\n'), r)
        self.assertEqual(sink.wait_for(count + 1, scaled(5)), count + 1)
        rec = sink.snapshot()[count]
        self.assertEqual((rec.body, rec.status, rec.webhook_id), (b'orphaned', 200, mid))
        self.assertEqual(hc.wait_dead_letters(lambda d: not d, scaled(3)), [])

    def test_wrong_methods_are_405_with_allow(self):
        sink = self.sink(status=500)
        hc = self.start_hookcast('--retry-schedule', '100ms')
        self.assertSuccess(hc.register(sink.address))
        self.publish_id(hc, b'kept')
        dls = hc.wait_dead_letters(lambda d: d, scaled(5))
        self.assertEqual(len(dls), 1, dls)
        sink.status = 200
        count = sink.count()
        q = '?address=' + sink.address
        cases = [('POST', '/deadLetters' + q, ('GET', 'DELETE')),
                 ('PUT', '/deadLetters' + q, ('GET', 'DELETE')),
                 ('PATCH', '/deadLetters', ('GET', 'DELETE')),
                 ('GET', '/deadLetters/replay' + q, ('POST',)),
                 ('DELETE', '/deadLetters/replay' + q, ('POST',)),
                 ('PUT', '/deadLetters/replay' + q, ('POST',))]
        for method, path, allow in cases:
            with self.subTest(method=method, path=path):
                body = b'x' if method in ('POST', 'PUT', 'PATCH') else None
                r = hc.request(method, path, body=body)
                self.assertEqual(r.status, 405, r)
                allowed = [m.strip() for m in r.header('Allow', '').split(',')]
                for m in allow:
                    self.assertIn(m, allowed, 'Allow: %r' % r.header('Allow'))
                self.assertNotIn(method, allowed)
        self.assertEqual(hc.dead_letters(), dls, 'a 405 must change nothing')
        # A window, not a wait: a replay made by a 405 would arrive in it.
        time.sleep(0.3)
        self.assertEqual(sink.count(), count, 'a 405 must not replay')

"""Standard Webhooks signatures, judged by the official npm package."""

import time

from harness import (HookcastTestCase, Hookcast, MSG_ID_RE, q, run_binary,
                     scaled, verify_webhooks)

# 24, 32 and 32 bytes of key.
SECRET_A = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'
SECRET_B = 'whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8='
SECRET_OWN = 'whsec_ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8='


class SignatureTest(HookcastTestCase):

    def deliver(self, hc, sink, body, n=1):
        self.assertSuccess(hc.publish(body, content_type='application/json'))
        self.assertEqual(sink.wait_for(n, scaled(10)), n)
        return [r for r in sink.snapshot() if r.body == body][-1]

    def test_daemon_secret_signs_and_the_verifier_agrees(self):
        sink = self.sink()
        hc = self.start_hookcast(config={'signing_secret': SECRET_A})
        self.assertSuccess(hc.register(sink.address))
        rec = self.deliver(hc, sink, b'{"order":42}')
        self.assertRegex(rec.headers['webhook-id'], MSG_ID_RE)
        ts = int(rec.headers['webhook-timestamp'])
        self.assertLess(abs(ts - time.time()), 5)
        self.assertRegex(rec.headers['webhook-signature'], r'^v1,[A-Za-z0-9+/]{43}=$')
        tampered = type(rec)(rec.method, rec.path, rec.headers, b'{"order":43}',
                             rec.client_port)
        self.assertEqual(verify_webhooks([(SECRET_A, rec), (SECRET_B, rec),
                                          (SECRET_A, tampered)]),
                         ['ok', 'No matching signature found',
                          'No matching signature found'])

    def test_rotation_sends_both_signatures(self):
        sink = self.sink()
        hc = self.start_hookcast(config={'signing_secret': SECRET_A + ' ' + SECRET_B})
        self.assertSuccess(hc.register(sink.address))
        rec = self.deliver(hc, sink, b'rotating')
        sigs = rec.headers['webhook-signature'].split(' ')
        self.assertEqual(len(sigs), 2)
        self.assertNotEqual(sigs[0], sigs[1])
        self.assertEqual(verify_webhooks([(SECRET_A, rec), (SECRET_B, rec),
                                          (SECRET_OWN, rec)]),
                         ['ok', 'ok', 'No matching signature found'])

    def test_subscriber_secret_replaces_the_daemon_one(self):
        own, shared = self.sink(), self.sink()
        hc = self.start_hookcast(config={'signing_secret': SECRET_A})
        r = hc.request('POST', '/registerAndKeepAlive?address=%s&secret=%s'
                       % (q(own.address), q(SECRET_OWN)))
        self.assertSuccess(r)
        self.assertSuccess(hc.register(shared.address))
        self.assertSuccess(hc.publish(b'both'))
        self.assertEqual(own.wait_for(1, scaled(10)), 1)
        self.assertEqual(shared.wait_for(1, scaled(10)), 1)
        a, b = own.snapshot()[0], shared.snapshot()[0]
        self.assertEqual(verify_webhooks([(SECRET_OWN, a), (SECRET_A, a),
                                          (SECRET_A, b)]),
                         ['ok', 'No matching signature found', 'ok'])
        # A keep-alive without a secret keeps it; the secret is never shown.
        self.assertSuccess(hc.register(own.address))
        entry = hc.subscriber(own.address)
        self.assertIs(entry['own_secret'], True)
        self.assertIs(hc.subscriber(shared.address)['own_secret'], False)
        for text in (hc.list_text(), hc.request('GET', '/listSubscribers?format=html').text,
                     hc.request('GET', '/listSubscribers?format=json').text,
                     hc.stderr_text()):
            self.assertNotIn(SECRET_OWN[6:], text)
            self.assertNotIn(SECRET_A[6:], text)
        rec = self.deliver(hc, own, b'still own', n=2)
        self.assertEqual(verify_webhooks([(SECRET_OWN, rec)]), ['ok'])

    def test_every_subscriber_of_a_message_gets_a_valid_signature(self):
        # A message's signature is made once and kept with it for its
        # other subscribers: one with its own secret, registered in
        # between, must still get its own, and each message its own.
        shared = [self.sink() for _ in range(3)]
        own = self.sink()
        hc = self.start_hookcast(config={'signing_secret': SECRET_A})
        self.assertSuccess(hc.register(shared[0].address))
        self.assertSuccess(hc.request(
            'POST', '/registerAndKeepAlive?address=%s&secret=%s'
            % (q(own.address), q(SECRET_OWN))))
        for sink in shared[1:]:
            self.assertSuccess(hc.register(sink.address))
        bodies = [b'fan-out %d' % i for i in range(5)]
        for body in bodies:
            self.assertSuccess(hc.publish(body))
        checks, sigs = [], {}
        for sink, secret in [(s, SECRET_A) for s in shared] + [(own, SECRET_OWN)]:
            self.assertEqual(sink.wait_for(5, scaled(10)), 5)
            for rec in sink.snapshot():
                checks.append((secret, rec))
                sigs.setdefault(rec.body, set()).add(
                    (secret, rec.headers['webhook-signature']))
        self.assertEqual(verify_webhooks(checks), ['ok'] * len(checks))
        self.assertEqual(sorted(sigs), sorted(bodies))

    def test_no_secret_no_signature(self):
        sink = self.sink()
        hc = self.start_hookcast()
        self.assertSuccess(hc.register(sink.address))
        rec = self.deliver(hc, sink, b'plain')
        self.assertIsNone(rec.headers.get('webhook-signature'))
        self.assertLess(abs(int(rec.headers['webhook-timestamp']) - time.time()), 5)
        self.assertRegex(rec.headers['webhook-id'], MSG_ID_RE)

    def test_each_attempt_is_signed_with_its_own_timestamp(self):
        sink = self.sink(status=[500, 200])
        hc = self.start_hookcast(config={'signing_secret': SECRET_A,
                                         'retry_schedule': '1500ms'})
        self.assertSuccess(hc.register(sink.address))
        self.assertSuccess(hc.publish(b'again'))
        self.assertEqual(sink.wait_for(2, scaled(15)), 2)
        first, second = sink.snapshot()[:2]
        self.assertEqual(first.webhook_id, second.webhook_id)
        self.assertEqual(verify_webhooks([(SECRET_A, first), (SECRET_A, second)]),
                         ['ok', 'ok'])
        # Full jitter may retry at once; when a second passed, the stamp says so.
        if int(second.headers['webhook-timestamp']) != int(first.headers['webhook-timestamp']):
            self.assertNotEqual(first.headers['webhook-signature'],
                                second.headers['webhook-signature'])

    def test_bad_subscriber_secrets_are_400_and_change_nothing(self):
        sink = self.sink()
        hc = self.start_hookcast()
        for bad in ('nope', 'whsec_', 'whsec_AAAA', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS!',
                    SECRET_A + ' ' + SECRET_B):
            r = hc.request('POST', '/registerAndKeepAlive?address=%s&secret=%s'
                           % (q(sink.address), q(bad)))
            self.assertEqual(r.status, 400, bad)
            self.assertIn('Error: Wrong secret', r.text)
            if len(bad) > 12:
                self.assertNotIn(bad[6:], r.text)
        self.assertEqual(hc.list_json(), [])
        # Registered without one, a bad secret on a keep-alive leaves it as it was.
        self.assertSuccess(hc.register(sink.address))
        r = hc.request('POST', '/registerAndKeepAlive?address=%s&secret=whsec_x'
                       % q(sink.address))
        self.assertEqual(r.status, 400)
        self.assertIs(hc.subscriber(sink.address)['own_secret'], False)

    def test_bad_signing_secret_stops_start_up_without_echoing_it(self):
        for bad in ('whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS', SECRET_A + ' ' + SECRET_B + ' ' + SECRET_A,
                    'MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'):
            rc, out, err = run_binary('--check-config', '--signing-secret', bad)
            self.assertNotEqual(rc, 0, bad)
            self.assertIn('signing_secret', err)
            self.assertNotIn('MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS', out + err)

    def test_subscriber_secret_survives_restart(self):
        sink = self.sink()
        data = self.make_tmpdir()
        hc = self.start_hookcast(data_dir=data)
        self.assertSuccess(hc.request('POST', '/registerAndKeepAlive?address=%s&secret=%s'
                                      % (q(sink.address), q(SECRET_OWN))))
        hc.stop()
        hc = self.start_hookcast(data_dir=data)
        rec = self.deliver(hc, sink, b'after restart')
        self.assertEqual(verify_webhooks([(SECRET_OWN, rec)]), ['ok'])

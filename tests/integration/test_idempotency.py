"""Idempotency-Key: a repeated publish answers with the first id and sends nothing."""

import threading
import time

from harness import HookcastTestCase, MSG_ID_RE, http_request, scaled


def publish(hc, body, key=None, json=False):
    headers = {}
    if key is not None:
        headers['Idempotency-Key'] = key
    if json:
        headers['Accept'] = 'application/json'
    return hc.request('POST', '/sendMessage', body=body, headers=headers)


class IdempotencyTest(HookcastTestCase):

    def test_repeat_answers_first_id_and_fans_out_nothing(self):
        sink = self.sink()
        hc = self.start_hookcast()
        self.assertSuccess(hc.register(sink.address))
        first = publish(hc, b'charge 1', key='order-42')
        self.assertSuccess(first)
        wid = first.header('Webhook-Id')
        self.assertRegex(wid or '', MSG_ID_RE)
        self.assertEqual(first.header('Message-Id'), wid)
        self.assertIsNone(first.header('Idempotent-Replayed'))
        again = publish(hc, b'charge 1 (retried by the publisher)', key='order-42',
                        json=True)
        self.assertEqual(again.status, 200)
        self.assertEqual(again.header('Webhook-Id'), wid)
        self.assertEqual(again.header('Idempotent-Replayed'), 'true')
        self.assertEqual(again.json(), {'id': wid, 'subscribers': 1, 'duplicate': True})
        other = publish(hc, b'charge 2', key='order-43')
        self.assertNotEqual(other.header('Webhook-Id'), wid)
        plain = publish(hc, b'no key')
        self.assertNotEqual(plain.header('Webhook-Id'), wid)
        self.assertEqual(sink.wait_for(3, scaled(5)), 3)
        # A window, not a wait: a duplicate delivery would arrive in it.
        time.sleep(0.3)
        self.assertEqual(sorted(sink.bodies()), [b'charge 1', b'charge 2', b'no key'])
        self.assertEqual([r.webhook_id for r in sink.snapshot() if r.body == b'charge 1'],
                         [wid])

    def test_key_survives_restart(self):
        sink = self.sink()
        data = self.make_tmpdir()
        hc = self.start_hookcast(data_dir=data)
        self.assertSuccess(hc.register(sink.address))
        wid = publish(hc, b'once', key='k-restart').header('Webhook-Id')
        self.assertEqual(sink.wait_for(1, scaled(5)), 1)
        hc.stop()
        hc = self.start_hookcast(data_dir=data)
        r = publish(hc, b'once', key='k-restart')
        self.assertEqual((r.status, r.header('Webhook-Id'),
                          r.header('Idempotent-Replayed')), (200, wid, 'true'))
        self.assertSuccess(publish(hc, b'marker'))
        self.assertEqual(sink.wait_for(2, scaled(5)), 2)
        # A window, not a wait: a delivery of the repeated publish would arrive in it.
        time.sleep(0.3)
        self.assertEqual(sink.bodies(), [b'once', b'marker'])

    def test_window_expires(self):
        sink = self.sink()
        hc = self.start_hookcast(config={'idempotency_window': '1s'})
        self.assertSuccess(hc.register(sink.address))
        a = publish(hc, b'first', key='short').header('Webhook-Id')
        # Outlasts the 1 s idempotency window: time passing is the point.
        time.sleep(1.5)
        r = publish(hc, b'second', key='short')
        self.assertIsNone(r.header('Idempotent-Replayed'))
        self.assertNotEqual(r.header('Webhook-Id'), a)
        self.assertEqual(sink.wait_for(2, scaled(5)), 2)

    def test_racing_repeats_make_one_message(self):
        sink = self.sink()
        hc = self.start_hookcast()
        self.assertSuccess(hc.register(sink.address))
        ids, errors = [], []

        def worker():
            try:
                r = http_request(hc.port, 'POST', '/sendMessage', body=b'race',
                                 headers={'Idempotency-Key': 'same'})
                ids.append((r.status, r.header('Webhook-Id')))
            except Exception as e:  # reported below
                errors.append(e)
        threads = [threading.Thread(target=worker) for _ in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        self.assertEqual(len(ids), 12)
        self.assertEqual({s for s, _ in ids}, {200})
        self.assertEqual(len({i for _, i in ids}), 1)
        self.assertSuccess(hc.publish(b'marker'))
        self.assertEqual(sink.wait_for(2, scaled(5)), 2)
        # A window, not a wait: a delivery of a repeated publish would arrive in it.
        time.sleep(0.3)
        self.assertEqual(sink.bodies(), [b'race', b'marker'])

    def test_bad_keys_are_400(self):
        sink = self.sink()
        hc = self.start_hookcast()
        self.assertSuccess(hc.register(sink.address))
        for bad in ('x' * 256, 'tab\there', 'caf\u00e9'.encode('utf-8').decode('latin-1')):
            r = publish(hc, b'never', key=bad)
            self.assertEqual(r.status, 400, repr(bad))
            self.assertIn('Idempotency-Key', r.text)
        self.assertSuccess(publish(hc, b'ok', key='x' * 255))
        self.assertEqual(sink.wait_for(1, scaled(5)), 1)
        # A window, not a wait: a delivery of a refused key would arrive in it.
        time.sleep(0.2)
        self.assertEqual(sink.bodies(), [b'ok'])

"""POST /sendMessages: a batch of messages, each delivered as if published alone."""

import base64
import hashlib
import hmac
import json
import threading
import time

from harness import HookcastTestCase, MSG_ID_RE, q, scaled, verify_webhooks

SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'
PATIENT = '100ms 200ms 300ms 500ms ' + ' '.join(['1s'] * 14)


def send_batch(hc, items, headers=None, raw=None):
    body = raw if raw is not None else json.dumps(items).encode()
    return hc.request('POST', '/sendMessages', body=body,
                      headers=dict({'Content-Type': 'application/json'}, **(headers or {})))


def accepted_total(hc):
    for line in hc.request('GET', '/metrics').text.splitlines():
        if line.startswith('hookcast_messages_accepted_total '):
            return int(line.split()[1])
    raise AssertionError('no hookcast_messages_accepted_total in /metrics')


class BatchTest(HookcastTestCase):

    def assertBatchAnswer(self, r, n):
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header('Content-Type'), 'application/json')
        answer = r.json()
        self.assertEqual(len(answer), n, answer)
        for a in answer:
            self.assertRegex(a['id'], MSG_ID_RE)
        return answer

    def test_a_batch_arrives_in_order_each_message_signed_as_its_own(self):
        sink = self.sink()
        # ordered: one delivery at a time, so arrival order is delivery order.
        hc = self.start_hookcast(config={'signing_secret': SECRET, 'ordered': 'yes'})
        self.assertSuccess(hc.register(sink.address))
        self.assertSuccess(hc.publish(b'before'))
        items = [{'body': 'm%d' % i} for i in range(20)]
        items.append({'body_base64': base64.b64encode(b'\x00\xff bin').decode(),
                      'content_type': 'application/x-bin'})
        items.append({'body': '{"caf\u00e9":1}', 'content_type': 'application/json'})
        answer = self.assertBatchAnswer(send_batch(hc, items), 22)
        self.assertEqual([a['subscribers'] for a in answer], [1] * 22)
        self.assertEqual(len({a['id'] for a in answer}), 22, 'ids repeat')
        self.assertNotIn('duplicate', json.dumps(answer))
        self.assertSuccess(hc.publish(b'after'))

        self.assertEqual(sink.wait_for(24, scaled(10)), 24)
        recs = sink.snapshot()
        want = ([b'before'] + [b'm%d' % i for i in range(20)]
                + [b'\x00\xff bin', '{"caf\u00e9":1}'.encode()] + [b'after'])
        self.assertEqual([r.body for r in recs], want)
        self.assertEqual([r.webhook_id for r in recs[1:23]], [a['id'] for a in answer])
        self.assertEqual(recs[21].headers['Content-Type'], 'application/x-bin')
        self.assertEqual(recs[22].headers['Content-Type'], 'application/json')
        self.assertEqual(recs[1].headers['Content-Type'], 'application/octet-stream')
        # The npm package reads a Buffer as UTF-8, so it cannot judge the
        # binary body: that one is checked here, by the specification.
        text = [r for r in recs if r is not recs[21]]
        self.assertEqual(verify_webhooks([(SECRET, r) for r in text]), ['ok'] * 23)
        rec = recs[21]
        key = base64.b64decode(SECRET[len('whsec_'):])
        signed = b'%s.%s.%s' % (rec.webhook_id.encode(),
                                rec.headers['webhook-timestamp'].encode(), rec.body)
        self.assertEqual(rec.headers['webhook-signature'], 'v1,' + base64.b64encode(
            hmac.new(key, signed, hashlib.sha256).digest()).decode())
        self.assertEqual(accepted_total(hc), 24)
        time.sleep(0.3)  # a window for a duplicate delivery to show
        self.assertEqual(sink.count(), 24)

    def test_topics_route_each_message(self):
        orders, eu, everything = self.sink(), self.sink(), self.sink()
        hc = self.start_hookcast()
        self.assertSuccess(hc.request('POST', '/registerAndKeepAlive?address=%s&topic=orders.*'
                                      % q(orders.address)))
        self.assertSuccess(hc.request('POST', '/registerAndKeepAlive?address=%s&topic=eu'
                                      % q(eu.address)))
        self.assertSuccess(hc.register(everything.address))
        answer = self.assertBatchAnswer(send_batch(hc, [
            {'body': 'paid', 'topic': ['orders.paid']},
            {'body': 'eu', 'topic': 'eu'},
            {'body': 'all'},
            {'body': 'us', 'topic': ['us']},
            {'body': 'both', 'topic': ['orders.new', 'eu']},
        ]), 5)
        self.assertEqual([a['subscribers'] for a in answer], [2, 2, 3, 1, 3])
        self.assertEqual(everything.wait_for(5, scaled(10)), 5)
        self.assertEqual(orders.wait_for(3, scaled(10)), 3)
        self.assertEqual(eu.wait_for(3, scaled(10)), 3)
        time.sleep(0.3)  # a window for a delivery that should not happen
        self.assertEqual(sorted(orders.bodies()), [b'all', b'both', b'paid'])
        self.assertEqual(sorted(eu.bodies()), [b'all', b'both', b'eu'])
        self.assertEqual(sorted(everything.bodies()), [b'all', b'both', b'eu', b'paid', b'us'])

    def test_idempotency_per_message(self):
        sink = self.sink()
        hc = self.start_hookcast()
        self.assertSuccess(hc.register(sink.address))
        r = hc.request('POST', '/sendMessage', body=b'single',
                       headers={'Idempotency-Key': 'k-single'})
        self.assertSuccess(r)
        single_id = r.header('Webhook-Id')
        answer = self.assertBatchAnswer(send_batch(hc, [
            {'body': 'a', 'idempotency_key': 'k-a'},
            {'body': 'a again', 'idempotency_key': 'k-a'},
            {'body': 'b'},
            {'body': 'single again', 'idempotency_key': 'k-single'},
        ]), 4)
        self.assertNotIn('duplicate', answer[0])
        self.assertEqual(answer[1], {'id': answer[0]['id'], 'subscribers': 1,
                                     'duplicate': True})
        self.assertNotIn('duplicate', answer[2])
        self.assertEqual(answer[3], {'id': single_id, 'subscribers': 1, 'duplicate': True})
        # A later /sendMessage and a later batch with a batch's key are repeats too.
        r = hc.request('POST', '/sendMessage', body=b'a later', headers={'Idempotency-Key': 'k-a'})
        self.assertEqual((r.status, r.header('Webhook-Id'), r.header('Idempotent-Replayed')),
                         (200, answer[0]['id'], 'true'))
        again = self.assertBatchAnswer(send_batch(hc, [{'body': 'x', 'idempotency_key': 'k-a'}]), 1)
        self.assertEqual(again, [{'id': answer[0]['id'], 'subscribers': 1, 'duplicate': True}])

        self.assertEqual(sink.wait_for(3, scaled(10)), 3)
        time.sleep(0.5)  # a window for a repeat to be delivered, which it must not be
        self.assertEqual(sorted(sink.bodies()), [b'a', b'b', b'single'])
        self.assertEqual(accepted_total(hc), 3)

    def test_a_bad_item_refuses_the_whole_batch(self):
        sink = self.sink()
        hc = self.start_hookcast()
        self.assertSuccess(hc.register(sink.address))
        good = {'body': 'fine', 'topic': ['t']}
        cases = [
            (b'', 'No body'),
            (b'{"body": "x"}', 'A JSON array of messages is expected.'),
            (b'[{"body": "x"}', 'Not JSON'),
            (b'[]', 'No messages: the array is empty.'),
            ([good, 3], 'item 1: not an object.'),
            ([good, good, {}], 'item 2: exactly one of "body" and "body_base64" is needed.'),
            ([good, {'body': 'x', 'body_base64': 'eA=='}],
             'item 1: exactly one of "body" and "body_base64" is needed.'),
            ([good, {'body_base64': 'not base64!'}],
             'item 1: "body_base64" is not padded standard base64.'),
            ([good, {'body': 'x', 'topic': ['no spaces']}], 'item 1: Invalid topic "no spaces"'),
            ([good, {'body': 'x', 'topic': ['t%d' % i for i in range(65)]}],
             'item 1: More than 64 topics.'),
            ([good, {'body': 'x', 'topics': ['t']}], 'item 1: unknown field "topics".'),
            ([good, {'body': 7}], 'item 1: "body" and "body_base64" are strings.'),
            ([good, {'body': 'x', 'content_type': 'a' * 257}],
             'item 1: Content-Type longer than 256 bytes.'),
            ([good, {'body': 'x', 'content_type': 'text/plain\r\nX-Evil: 1'}],
             'item 1: Content-Type holds a control character.'),
            ([good, {'body': 'x', 'idempotency_key': 'k' * 256}],
             'item 1: Idempotency-Key must be 1 to 255 printable ASCII characters.'),
            ([good, {'body': 'x', 'idempotency_key': 5}], 'item 1: "idempotency_key" is a string.'),
        ]
        for body, want in cases:
            raw = body if isinstance(body, bytes) else json.dumps(body).encode()
            r = send_batch(hc, None, raw=raw)
            self.assertEqual(r.status, 400, (raw[:80], r))
            self.assertTrue(r.text.startswith('Error: '), r.text)
            self.assertIn(want, r.text, raw[:80])
        # Each message's topics and key are its own: none for the batch.
        r = hc.request('POST', '/sendMessages?topic=t', body=json.dumps([good]).encode())
        self.assertEqual(r.status, 400, r)
        self.assertIn('"topic"', r.text)
        r = send_batch(hc, [good], headers={'Idempotency-Key': 'k'})
        self.assertEqual(r.status, 400, r)
        self.assertIn('"idempotency_key"', r.text)
        r = hc.request('GET', '/sendMessages')
        self.assertEqual((r.status, r.header('Allow')), (405, 'POST'))

        # Nothing of them was committed: none is delivered, none counted, and
        # the next good batch is all the subscriber gets.
        self.assertEqual(accepted_total(hc), 0)
        self.assertBatchAnswer(send_batch(hc, [{'body': 'only'}, {'body': 'these'}]), 2)
        self.assertEqual(sink.wait_for(2, scaled(10)), 2)
        time.sleep(0.3)  # a window for anything refused to show up after all
        self.assertEqual(sorted(sink.bodies()), [b'only', b'these'])
        self.assertEqual(hc.subscriber(sink.address)['delivered'], 2)

    def test_max_batch_and_max_body(self):
        sink = self.sink()
        hc = self.start_hookcast(config={'max_batch': 3, 'max_body': '1K'})
        self.assertSuccess(hc.register(sink.address))
        self.assertBatchAnswer(send_batch(hc, [{'body': 'a'}, {'body': 'b'}, {'body': 'c'}]), 3)
        r = send_batch(hc, [{'body': 'd'}] * 4)
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.text, 'Error: item 3: more than max_batch (3) messages in one batch.')
        # max_body is for the whole request, as one /sendMessage body's.
        r = send_batch(hc, [{'body': 'e' * 400}, {'body': 'f' * 400}, {'body': 'g' * 400}])
        self.assertEqual(r.status, 413, r)
        self.assertIn('max_body', r.text)
        self.assertEqual(sink.wait_for(3, scaled(10)), 3)
        time.sleep(0.3)  # a window for a refused message to show up
        self.assertEqual(sorted(sink.bodies()), [b'a', b'b', b'c'])

    def test_backlog_full_is_a_503_for_the_batch(self):
        hanging = self.hanging_sink()
        hc = self.start_hookcast('--max-backlog-bytes', '2K', '--delivery-timeout', 2,
                                 '--shutdown-grace', 1)
        self.assertSuccess(hc.register(hanging.address))
        self.assertBatchAnswer(send_batch(hc, [{'body': 'x' * 500}, {'body': 'y' * 500}]), 2)
        r = send_batch(hc, [{'body': 'z' * 600}, {'body': 'w' * 600}])
        self.assertEqual((r.status, r.header('Retry-After')), (503, '1'), r)
        self.assertEqual(r.text, 'Error: Queue full, retry later.')
        self.assertEqual(accepted_total(hc), 2)

    def test_publish_token(self):
        pub, sub = 'pub-' + 'p' * 20, 'sub-' + 's' * 20
        hc = self.start_hookcast(config={'publish_token': pub, 'subscribe_token': sub})
        items = json.dumps([{'body': 'x'}]).encode()
        for headers in ({}, {'Authorization': 'Bearer ' + sub},
                        {'Authorization': 'Bearer wrong-' + 'w' * 20}):
            r = hc.request('POST', '/sendMessages', body=items, headers=headers)
            self.assertEqual(r.status, 401, (headers, r))
        r = hc.request('POST', '/sendMessages', body=items,
                       headers={'Authorization': 'Bearer ' + pub})
        self.assertBatchAnswer(r, 1)
        self.assertEqual(accepted_total(hc), 1)

    def test_kill9_after_the_answer_everything_arrives(self):
        gate = threading.Event()
        held = self.sink(gate=gate)  # answers nothing before the restart
        args = ('--retry-schedule', PATIENT)
        hc = self.start_hookcast(*args)
        self.assertSuccess(hc.register(held.address))
        answers = []
        for b in range(3):
            items = [{'body': 'b%d-%d' % (b, i), 'topic': ['t%d' % (i % 3)]} for i in range(50)]
            answers += self.assertBatchAnswer(send_batch(hc, items), 50)
        hc.kill9()

        hc2 = self.start_hookcast(*args, data_dir=hc.data_dir)
        gate.set()
        want = {b'b%d-%d' % (b, i) for b in range(3) for i in range(50)}
        ok = held.wait_until(lambda recs: want <= {r.body for r in recs}, scaled(20))
        self.assertTrue(ok, 'missing after the restart: %r'
                        % sorted(want - set(held.bodies()))[:5])
        ids = {}
        for r in held.snapshot():
            ids.setdefault(r.body, r.webhook_id)
        self.assertEqual([ids[b'b%d-%d' % (b, i)] for b in range(3) for i in range(50)],
                         [a['id'] for a in answers])

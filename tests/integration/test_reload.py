"""SIGHUP re-reads the config: what changes live, what is refused, and that nothing is lost."""

import base64
import re
import hashlib
import hmac
import secrets
import signal
import threading
import time

from harness import Client, HookcastTestCase, poll, scaled

SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'


def bearer(tok):
    return {'Authorization': 'Bearer ' + tok}


def verify(secret, req):
    """Checks a delivery's webhook-signature against SECRET as Standard Webhooks says."""
    key = base64.b64decode(secret[len('whsec_'):])
    signed = b'%s.%s.%s' % (req.headers['webhook-id'].encode(),
                            req.headers['webhook-timestamp'].encode(), req.body)
    want = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return ('v1,' + want) in (req.headers.get('webhook-signature') or '').split(' ')


class ReloadTest(HookcastTestCase):

    def start(self, config):
        self.config = dict(config)
        return self.start_hookcast(config=config)

    def rewrite(self, hc, text=None, **changes):
        """Writes the config file anew (the base settings, then CHANGES) or TEXT
        as it is; either way with the harness's loopback guard."""
        if text is None:
            self.config.update(changes)
            cfg = dict(hc.base_config)
            cfg.update(self.config)
            text = ''.join('%s %s\n' % (k, v) for k, v in cfg.items() if v is not None)
        else:
            text += hc.guard_text
        with open(hc.config_path, 'w') as f:
            f.write(text)

    def reload(self, hc, expect='configuration reloaded'):
        """SIGHUP, then waits for the next line saying how it went."""
        seen = len([l for l in hc.lines() if 'reload' in l])
        hc.send_signal(signal.SIGHUP)
        new = poll(lambda: [l for l in hc.lines() if 'reload' in l][seen:], bool, scaled(5))
        if not new:
            self.fail('no reload line after SIGHUP:\n' + hc.stderr_tail())
        self.assertIn(expect, new[0], hc.stderr_tail())
        return new[0]

    def test_a_new_token_takes_effect_on_an_open_connection(self):
        old, new = 'pub-' + secrets.token_hex(16), 'pub-' + secrets.token_hex(16)
        sink = self.sink()
        hc = self.start({'publish_token': old})
        self.assertEqual(hc.register(sink.address).status, 200)
        client = Client(hc.port)
        self.addCleanup(client.close)
        self.assertEqual(client.request('POST', '/sendMessage', b'before',
                                        bearer(old), retry=False).status, 200)
        conn = client.conn
        self.rewrite(hc, publish_token=new)
        line = self.reload(hc)
        self.assertIn('publish_token', line)
        self.assertNotIn(new, hc.stderr_text())
        # The same keep-alive connection, not dropped: the new token now, not the old.
        r = client.request('POST', '/sendMessage', b'after', bearer(old), retry=False)
        self.assertEqual(r.status, 401)
        if client.conn is None:      # a 401 with a body closes; reopen for the next
            client = Client(hc.port)
            self.addCleanup(client.close)
        else:
            self.assertIs(client.conn, conn)
        self.assertEqual(client.request('POST', '/sendMessage', b'new', bearer(new),
                                        retry=False).status, 200)
        self.assertEqual(sink.wait_for(2, scaled(5)), 2)
        self.assertEqual(sink.bodies(), [b'before', b'new'])

    def test_a_keep_alive_connection_survives_a_reload(self):
        hc = self.start({})
        client = Client(hc.port)
        self.addCleanup(client.close)
        self.assertEqual(client.request('GET', '/listSubscribers', retry=False).status, 200)
        conn = client.conn
        self.rewrite(hc, log_level='debug')
        self.reload(hc)
        self.assertEqual(client.request('GET', '/listSubscribers', retry=False).status, 200)
        self.assertIs(client.conn, conn, 'the connection was closed by the reload')

    def test_a_broken_config_is_refused_and_the_old_one_stays(self):
        tok = 'pub-' + secrets.token_hex(16)
        sink = self.sink()
        hc = self.start({'publish_token': tok, 'max_body': '64'})
        hc.register(sink.address)
        self.rewrite(hc, text='max_body 10\npublish_token short\nbogus_key 1\n')
        line = self.reload(hc, expect='reload refused, the running configuration stays')
        self.assertIn(hc.config_path + ':2', line)
        self.assertNotIn('short', line)      # a token is never echoed, even a bad one
        # Nothing of it applied, not even the line before the bad one.
        self.assertEqual(hc.publish(b'x').status, 401)
        r = hc.request('POST', '/sendMessage', b'y' * 40, headers=bearer(tok))
        self.assertEqual(r.status, 200, r)
        # Conflicting settings and an unreadable ca_file are refused the same way.
        self.rewrite(hc, max_in_flight='500', max_transfers='10')
        self.assertIn('max_in_flight', self.reload(hc, expect='reload refused'))
        self.config.update(max_in_flight=None, max_transfers=None)
        self.rewrite(hc, ca_file='/nonexistent/ca.pem')
        self.assertIn('ca_file', self.reload(hc, expect='reload refused'))
        self.config.update(ca_file=None)
        # Fixed, it applies.
        self.rewrite(hc, max_body='10')
        self.assertIn('max_body', self.reload(hc))
        r = hc.request('POST', '/sendMessage', b'y' * 40, headers=bearer(tok))
        self.assertEqual(r.status, 413, r)
        self.assertTrue(hc.alive())
        self.assertEqual(sink.wait_for(1, scaled(5)), 1)

    def test_settings_that_need_a_restart_are_reported_and_kept(self):
        hc = self.start({'http_threads': '2', 'keepalive_ttl': '120',
                         'delivery_threads': '2'})
        self.rewrite(hc, http_threads='3', durability='normal', keepalive_ttl='300',
                     delivery_threads='3')
        line = self.reload(hc)
        self.assertIn('keepalive_ttl', line)
        self.assertNotIn('http_threads', line)
        warn = hc.wait_for_log(r'msg="settings need a restart to change"', scaled(2))
        self.assertIsNotNone(warn)
        self.assertIn('http_threads', warn)
        self.assertIn('durability', warn)
        self.assertIn('delivery_threads', warn)
        self.assertIn('level=warn', warn)
        # Still the two threads it started with.
        r = hc.request('GET', '/metrics')
        self.assertEqual(re.findall(r'^hookcast_delivery_thread_in_flight\{thread="(\d+)"\}',
                                    r.text, re.M), ['0', '1'])

    def test_retry_schedule_and_log_level_change_live(self):
        sink = self.sink(status=[500, 200])
        hc = self.start({'retry_schedule': '1h', 'log_level': 'info'})
        self.assertEqual(hc.register(sink.address).status, 200)
        self.rewrite(hc, retry_schedule='100ms', log_level='debug')
        line = self.reload(hc)
        self.assertIn('retry_schedule', line)
        self.assertIn('log_level', line)
        self.assertEqual(hc.publish(b'retried soon').status, 200)
        # Under the old schedule the retry would be an hour away.
        self.assertEqual(sink.wait_for(2, scaled(5)), 2)
        self.assertEqual(sink.bodies(), [b'retried soon', b'retried soon'])
        self.assertIsNotNone(hc.wait_for_log(r'level=debug', scaled(2)))

    def test_egress_policy_changes_live(self):
        sink = self.sink()
        # Retried every 200 ms, for long enough to see the policy lifted.
        hc = self.start({'retry_schedule': ' '.join(['200ms'] * 30)})
        self.assertEqual(hc.register(sink.address).status, 200)
        self.assertEqual(hc.publish(b'allowed').status, 200)
        self.assertEqual(sink.wait_for(1, scaled(5)), 1)
        self.rewrite(hc, deny_targets='127.0.0.0/8')
        self.assertIn('deny_targets', self.reload(hc))
        # A new registration is refused; the subscriber already there is not connected to.
        other = self.sink()
        r = hc.register(other.address)
        self.assertEqual(r.status, 403, r)
        self.assertEqual(hc.publish(b'denied').status, 200)
        entry = hc.wait_subscriber(sink.address, lambda e: e['failed'] >= 1, scaled(5))
        self.assertIn('egress denied', entry['last_error'] or '')
        # A window, not a wait: a delivery past the new deny list would arrive in it.
        time.sleep(0.3)
        self.assertEqual(sink.count(), 1)
        # Lifted again: the message that waited is delivered.
        self.rewrite(hc, deny_targets=None)
        self.reload(hc)
        self.assertEqual(sink.wait_for(2, scaled(5)), 2)
        self.assertEqual(sink.bodies(), [b'allowed', b'denied'])

    def test_signing_secret_rotates_live(self):
        sink = self.sink()
        hc = self.start({})
        hc.register(sink.address)
        self.assertEqual(hc.publish(b'unsigned').status, 200)
        self.assertEqual(sink.wait_for(1, scaled(5)), 1)
        self.assertIsNone(sink.snapshot()[0].headers.get('webhook-signature'))
        self.rewrite(hc, signing_secret=SECRET)
        self.assertIn('signing_secret', self.reload(hc))
        self.assertNotIn(SECRET[6:], hc.stderr_text())
        self.assertEqual(hc.publish(b'signed').status, 200)
        self.assertEqual(sink.wait_for(2, scaled(5)), 2)
        self.assertTrue(verify(SECRET, sink.snapshot()[1]), sink.snapshot()[1].headers)

    def test_max_subscribers_changes_live(self):
        a, b, c = self.sink(), self.sink(), self.sink()
        hc = self.start({'max_subscribers': '3'})
        for s in (a, b):
            self.assertEqual(hc.register(s.address).status, 200)
        self.rewrite(hc, max_subscribers='2')
        self.reload(hc)
        self.assertEqual(hc.register(c.address).status, 503)
        # Those registered stay, and keep-alives of theirs still answer 200.
        self.assertEqual(sorted(hc.addresses()), sorted([a.address, b.address]))
        self.assertEqual(hc.register(a.address).status, 200)

    def test_no_message_is_lost_across_reloads(self):
        tok = 'pub-' + secrets.token_hex(16)
        sink = self.sink()
        hc = self.start({'publish_token': tok})
        hc.register(sink.address)
        accepted, failures, stop = [], [], threading.Event()

        def publish():
            client = Client(hc.port)
            i = 0
            while not stop.is_set():
                body = b'm%d' % i
                r = client.request('POST', '/sendMessage', body, bearer(tok))
                if r.status == 200:
                    accepted.append(body)
                else:
                    failures.append((r.status, r.text))
                i += 1
            client.close()

        threads = [threading.Thread(target=publish) for _ in range(2)]
        for t in threads:
            t.start()
        try:
            for i in range(10):
                # Spaces the reloads out among the publishes: the overlap is the point.
                time.sleep(0.05)
                self.rewrite(hc, log_level=('debug', 'info')[i % 2],
                             retry_schedule=('200ms', '1s 2s')[i % 2],
                             queue_limit=str(10000 + i))
                self.reload(hc)
        finally:
            stop.set()
            for t in threads:
                t.join()
        self.assertEqual(failures, [])
        self.assertGreater(len(accepted), 20)
        got = sink.wait_until(lambda reqs: set(accepted) <= set(r.body for r in reqs),
                              scaled(10))
        self.assertTrue(got, 'missing: %d of %d' % (
            len(set(accepted) - set(sink.bodies())), len(accepted)))
        self.assertTrue(hc.alive())

    def test_delivery_timeout_reaches_handles_made_before_the_reload(self):
        # A delivery before the reload leaves a libcurl handle pooled with
        # the options of then; the next delivery, after a reload that
        # shortened delivery_timeout, must time out by the new value.
        sink = self.sink()
        hanging = self.hanging_sink()
        hc = self.start({'delivery_timeout': '30', 'delivery_threads': '1',
                         'retry_schedule': '1h'})
        self.assertSuccess(hc.register(sink.address))
        self.assertSuccess(hc.publish(b'before'))
        self.assertEqual(sink.wait_for(1, scaled(5)), 1)
        hc.wait_subscriber(sink.address, lambda s: s['delivered'] == 1, scaled(3))
        self.rewrite(hc, delivery_timeout='1')
        self.assertIn('delivery_timeout', self.reload(hc))
        self.assertSuccess(hc.deregister(sink.address))
        self.assertSuccess(hc.register(hanging.address))
        self.assertSuccess(hc.publish(b'after'))
        h = hc.wait_subscriber(hanging.address, lambda s: s['failed'] >= 1, scaled(6))
        self.assertEqual(h['failed'], 1, 'the delivery did not time out after the '
                         'new delivery_timeout (1 s): %r' % h)
        self.assertIn('timed out', h['last_error'] or '', h)

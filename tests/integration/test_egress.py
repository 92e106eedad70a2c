"""Egress policy: deny_targets and allow_targets, at registration and at each connection."""

import os
import time

from harness import HookcastTestCase, run_binary, scaled


class EgressTest(HookcastTestCase):

    def assertForbidden(self, hc, address, reason):
        r = hc.register(address)
        self.assertEqual(r.status, 403, 'registering %s: %r' % (address, r))
        self.assertIn(reason, r.text)
        self.assertTrue(r.text.startswith('Error: Address not allowed: '), r.text)

    def test_metadata_and_link_local_are_refused_by_default(self):
        hc = self.start_hookcast()
        for address, reason in (
                ('169.254.169.254:80', '169.254.169.254 is in deny_targets 169.254.0.0/16'),
                ('http://169.254.169.254/latest/meta-data/',
                 '169.254.169.254 is in deny_targets 169.254.0.0/16'),
                # Other spellings of the same address are the same address.
                ('http://2852039166:80/', '169.254.169.254 is in deny_targets'),
                ('http://[::ffff:169.254.169.254]:80/', '169.254.169.254 is in deny_targets'),
                ('[fe80::1]:8080', 'fe80::1 is in deny_targets fe80::/10'),
                ('0.0.0.0:8080', '0.0.0.0 is in deny_targets 0.0.0.0/8'),
                ('[::]:8080', ':: is in deny_targets ::/128')):
            with self.subTest(address=address):
                self.assertForbidden(hc, address, reason)
        self.assertEqual(hc.list_json(), [], 'a refused address was registered')
        self.assertIsNotNone(hc.wait_for_log(
            r'level=warn msg="registration refused" address=169\.254\.169\.254:80 '
            r'reason="169\.254\.169\.254 is in deny_targets 169\.254\.0\.0/16', scaled(2)))
        # Private ranges and loopback stay allowed by default.
        for address in ('10.0.0.7:8080', '192.168.1.2:80', '127.0.0.1:9', '[fd00::1]:80'):
            with self.subTest(address=address):
                self.assertSuccess(hc.register(address))
        # A keep-alive of a refused address still registers nothing.
        self.assertEqual(hc.register('169.254.169.254:80').status, 403)
        self.assertNotIn('169.254.169.254:80', hc.addresses())

    def test_name_resolving_to_denied_address_fails_at_delivery(self):
        sink = self.sink()
        hc = self.start_hookcast('--retry-schedule', '100ms 100ms',
                                 config={'deny_targets': '127.0.0.0/8'})
        # The literal address is refused up front...
        self.assertForbidden(hc, sink.address, '127.0.0.1 is in deny_targets 127.0.0.0/8')
        self.assertForbidden(hc, 'http://127.0.0.2:%d/event' % sink.port,
                             '127.0.0.2 is in deny_targets 127.0.0.0/8')
        # ...a name is judged by what it resolves to, when it is connected to.
        name = 'localhost:%d' % sink.port
        self.assertSuccess(hc.register(name))
        self.assertSuccess(hc.publish(b'must not arrive'))
        want = 'egress denied: 127.0.0.1 is in deny_targets 127.0.0.0/8'
        s = hc.wait_subscriber(name, lambda s: s['last_error'] == want, scaled(5))
        self.assertEqual(s['last_error'], want, s)
        self.assertGreaterEqual(s['failed'], 1, s)
        self.assertEqual(s['delivered'], 0, s)
        # The normal retry path: the schedule runs out, a dead letter says why.
        dls = hc.wait_dead_letters(lambda d: len(d) == 1, scaled(5))
        self.assertEqual(len(dls), 1, dls)
        self.assertEqual(dls[0]['address'], name)
        self.assertEqual(dls[0]['last_error'], want)
        self.assertEqual(dls[0]['attempts'], 3)
        self.assertIsNotNone(hc.wait_for_log(
            r'level=warn msg="delivery failed" address=localhost:%d .*error="%s"'
            % (sink.port, want.replace('.', r'\.')), scaled(2)))
        # Nothing ever reached the subscriber, not even a connection.
        time.sleep(0.3)
        self.assertEqual(sink.count(), 0)

    def test_allow_targets_opens_a_longer_prefix(self):
        sink = self.sink()
        hc = self.start_hookcast(config={'deny_targets': '127.0.0.0/8',
                                         'allow_targets': '127.0.0.1/32'})
        self.assertSuccess(hc.register(sink.address))
        self.assertSuccess(hc.register('localhost:%d' % sink.port))
        self.assertForbidden(hc, '127.0.0.2:%d' % sink.port,
                             '127.0.0.2 is in deny_targets 127.0.0.0/8')
        self.assertSuccess(hc.publish(b'allowed'))
        self.assertEqual(sink.wait_for(2, scaled(5)), 2)
        self.assertEqual(sink.bodies(), [b'allowed', b'allowed'])
        for s in hc.list_json():
            self.assertIsNone(s['last_error'], s)

    def test_allow_only_mode(self):
        sink = self.sink()
        hc = self.start_hookcast('--retry-schedule', '100ms',
                                 config={'allow_targets': '10.0.0.0/8'})
        self.assertForbidden(hc, sink.address, '127.0.0.1 is not in allow_targets')
        self.assertSuccess(hc.register('10.1.2.3:80'))
        self.assertSuccess(hc.register('localhost:%d' % sink.port))
        self.assertSuccess(hc.publish(b'x'))
        name = 'localhost:%d' % sink.port
        s = hc.wait_subscriber(name, lambda s: s['last_error'], scaled(5))
        self.assertIn(s['last_error'], ('egress denied: 127.0.0.1 is not in allow_targets',
                                        'egress denied: ::1 is not in allow_targets'))
        hc.stop()

        # Allowing loopback's IPv4 range: localhost is delivered to over
        # 127.0.0.1 even if its ::1 is tried (and denied) first.
        hc = self.start_hookcast(config={'allow_targets': '127.0.0.0/8'})
        self.assertSuccess(hc.register(name))
        self.assertSuccess(hc.publish(b'through 127.0.0.1'))
        self.assertEqual(sink.wait_for(1, scaled(5)), 1)
        self.assertEqual(sink.bodies(), [b'through 127.0.0.1'])

    def test_bad_lists_are_config_errors_naming_the_line(self):
        tmp = self.make_tmpdir()
        for text, line, entry in (
                ('deny_targets 10.0.0.0/8\nallow_targets 10.0.0.1/8\n', 2, '10.0.0.1/8'),
                ('# c\ndeny_targets 169.254.0.0/33\n', 2, '169.254.0.0/33'),
                ('deny_targets metadata.internal\n', 1, 'metadata.internal'),
                ('allow_targets fe80::1%eth0\n', 1, 'fe80::1%eth0')):
            with self.subTest(config=text):
                path = os.path.join(tmp, 'bad.conf')
                with open(path, 'w') as f:
                    f.write(text)
                rc, out, err = run_binary('--config', path, '--check-config')
                self.assertNotEqual(rc, 0, text)
                self.assertIn('%s:%d:' % (path, line), err)
                self.assertIn('"%s"' % entry, err)
        rc, out, err = run_binary('--deny-targets', '1.2.3.4/40', '--check-config')
        self.assertNotEqual(rc, 0)
        self.assertIn('deny_targets', err)
        self.assertIn('1.2.3.4/40', err)


class SelfAndProxyTest(HookcastTestCase):
    """hookcast never delivers to its own API, and never through a proxy."""

    def test_own_api_is_refused_at_registration_and_at_delivery(self):
        hc = self.start_hookcast('--retry-schedule', '100ms')
        for address in ('http://127.0.0.1:%d/sendMessage' % hc.port,
                        '127.0.0.1:%d' % hc.port, 'http://127.1:%d/' % hc.port,
                        'http://[::ffff:127.0.0.1]:%d/sendMessage' % hc.port):
            with self.subTest(address=address):
                r = hc.register(address)
                self.assertEqual(r.status, 403, r)
                self.assertIn("hookcast's own API", r.text)
        self.assertEqual(hc.list_json(), [])
        # A name is judged when it is connected to: no loop, the reason listed.
        loop = 'http://localhost:%d/sendMessage' % hc.port
        self.assertSuccess(hc.register(loop))
        self.assertSuccess(hc.publish(b'once'))
        entry = hc.wait_subscriber(loop, lambda e: e['failed'] >= 1, scaled(5))
        self.assertIn("hookcast's own API", entry['last_error'] or '')
        time.sleep(0.5)
        entry = hc.subscriber(loop)
        self.assertEqual(entry['delivered'], 0)

    def test_proxy_from_the_environment_is_not_used(self):
        proxy, sink = self.sink(), self.sink()
        url = 'http://127.0.0.1:%d' % proxy.port
        hc = self.start_hookcast(env={'http_proxy': url, 'HTTP_PROXY': url,
                                      'https_proxy': url, 'ALL_PROXY': url})
        self.assertSuccess(hc.register(sink.address))
        self.assertSuccess(hc.publish(b'direct'))
        self.assertEqual(sink.wait_for(1, scaled(5)), 1)
        time.sleep(0.2)
        self.assertEqual(proxy.count(), 0)

    def test_trailing_dot_is_the_same_address(self):
        hc = self.start_hookcast()
        for address in ('169.254.169.254.:80', 'http://169.254.169.254./latest/'):
            with self.subTest(address=address):
                r = hc.register(address)
                self.assertEqual(r.status, 403, r)
                self.assertIn('169.254.169.254 is in deny_targets', r.text)

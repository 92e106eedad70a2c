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
                ('[::]:8080', ':: is in deny_targets ::/128'),
                # AWS's metadata service over IPv6, and not its neighbour's.
                ('[fd00:ec2::254]:80',
                 'fd00:ec2::254 is in deny_targets fd00:ec2::254/128 (built in)'),
                ('http://[fd00:ec2::254]/latest/meta-data/',
                 'fd00:ec2::254 is in deny_targets fd00:ec2::254/128 (built in)')):
            with self.subTest(address=address):
                self.assertForbidden(hc, address, reason)
        self.assertEqual(hc.list_json(), [], 'a refused address was registered')
        self.assertIsNotNone(hc.wait_for_log(
            r'level=warn msg="registration refused" address=169\.254\.169\.254:80 '
            r'reason="169\.254\.169\.254 is in deny_targets 169\.254\.0\.0/16', scaled(2)))
        # A keep-alive of a refused address still registers nothing.
        self.assertEqual(hc.register('169.254.169.254:80').status, 403)
        self.assertNotIn('169.254.169.254:80', hc.addresses())
        hc.stop()

        # Private ranges and loopback stay allowed by default.  This daemon
        # runs without the harness's loopback allow-list, and is never asked
        # to deliver: nothing here connects anywhere.
        hc = self.start_hookcast(loopback_only=False)
        for address in ('10.0.0.7:8080', '192.168.1.2:80', '127.0.0.1:9', '[fd00::1]:80',
                        '[fd00:ec2::54]:80', '[fd00:ec2::253]:80', '[::1]:9',
                        '[::192.0.2.1]:80', '[64:ff9b::192.0.2.1]:80',
                        '[2002:c000:201::]:80'):
            with self.subTest(address=address):
                self.assertSuccess(hc.register(address))

    def test_every_spelling_of_a_carried_ipv4_address_is_refused(self):
        metadata = 'which is in deny_targets 169.254.0.0/16 (built in)'
        hc = self.start_hookcast(config={'deny_targets': '10.0.0.0/8'})
        for address, reason in (
                # IPv4-compatible, in hex and dotted.
                ('[::a9fe:a9fe]:80', '::169.254.169.254 embeds 169.254.169.254, ' + metadata),
                ('http://[::169.254.169.254]/latest/', '::169.254.169.254 embeds 169.254.169.254, '
                 + metadata),
                # NAT64's well-known prefix.
                ('[64:ff9b::a9fe:a9fe]:80', '64:ff9b::a9fe:a9fe embeds 169.254.169.254, ' + metadata),
                ('http://[64:ff9b::169.254.169.254]:80/', '64:ff9b::a9fe:a9fe embeds 169.254.169.254, '
                 + metadata),
                # 6to4: the IPv4 address follows 2002:.
                ('[2002:a9fe:a9fe::]:80', '2002:a9fe:a9fe:: embeds 169.254.169.254, ' + metadata),
                ('[2002:a9fe:a9fe:1:2:3:4:5]:80', 'embeds 169.254.169.254, ' + metadata),
                # 0.0.0.0/8 carried, and deny_targets covering what is carried.
                ('[::2]:80', '::2 embeds 0.0.0.2, which is in deny_targets 0.0.0.0/8 (built in)'),
                ('[64:ff9b::]:80', 'embeds 0.0.0.0, which is in deny_targets 0.0.0.0/8'),
                ('[::10.1.2.3]:80', '::10.1.2.3 embeds 10.1.2.3, which is in deny_targets '
                 '10.0.0.0/8'),
                ('[64:ff9b::a01:203]:80', 'embeds 10.1.2.3, which is in deny_targets 10.0.0.0/8'),
                ('[2002:a01:203::]:80', '2002:a01:203:: embeds 10.1.2.3, which is in '
                 'deny_targets 10.0.0.0/8')):
            with self.subTest(address=address):
                self.assertForbidden(hc, address, reason)
        self.assertEqual(hc.list_json(), [], 'a refused address was registered')

    def test_names_resolving_to_carried_ipv4_fail_at_delivery(self):
        # HOOKCAST_TEST_RESOLVE (tests only: tests/integration/README.md) gives
        # each name its address.  Names under .localhost are loopback to
        # libcurl itself, so without the override they would reach the sink
        # on 127.0.0.1, which must stay silent; and were the carried address
        # not judged, the harness's loopback allow-list would still refuse
        # the IPv6 form.  Nothing here leaves the machine or asks DNS.
        sink, other = self.sink(), self.sink(host='127.0.0.2')
        metadata = 'which is in deny_targets 169.254.0.0/16 (built in)'
        names = {
            'compat': ('[::a9fe:a9fe]', '::169.254.169.254 embeds 169.254.169.254, ' + metadata),
            'nat64': ('[64:ff9b::a9fe:a9fe]', '64:ff9b::a9fe:a9fe embeds 169.254.169.254, '
                      + metadata),
            'sixtofour': ('[2002:a9fe:a9fe::]', '2002:a9fe:a9fe:: embeds 169.254.169.254, '
                          + metadata),
            'mapped': ('[::ffff:a9fe:a9fe]', '169.254.169.254 is in deny_targets 169.254.0.0/16'),
            'aws6': ('[fd00:ec2::254]', 'fd00:ec2::254 is in deny_targets fd00:ec2::254/128'),
            'zero': ('[::2]', '::2 embeds 0.0.0.2, which is in deny_targets 0.0.0.0/8'),
        }
        resolve = ['%s.localhost:%d:%s' % (n, sink.port, a) for n, (a, _) in names.items()]
        # And one the override sends to another sink: proof that it works.
        resolve.append('moved.localhost:%d:127.0.0.2' % other.port)
        hc = self.start_hookcast('--retry-schedule', '1h',
                                 env={'HOOKCAST_TEST_RESOLVE': ' '.join(resolve)})
        self.assertIsNotNone(hc.wait_for_log(r'HOOKCAST_TEST_RESOLVE is set', scaled(2)))
        for n in names:
            self.assertSuccess(hc.register('%s.localhost:%d' % (n, sink.port)))
        moved = 'http://moved.localhost:%d/event' % other.port
        self.assertSuccess(hc.register(moved))
        self.assertSuccess(hc.publish(b'must not arrive'))
        self.assertEqual(other.wait_for(1, scaled(5)), 1)
        self.assertEqual(other.snapshot()[0].headers['Host'], 'moved.localhost:%d' % other.port)
        for n, (_, reason) in names.items():
            with self.subTest(name=n):
                address = '%s.localhost:%d' % (n, sink.port)
                s = hc.wait_subscriber(address, lambda s: s['last_error'], scaled(5))
                self.assertIsNotNone(s, address)
                self.assertTrue((s['last_error'] or '').startswith('egress denied: '), s)
                self.assertIn(reason, s['last_error'])
                self.assertEqual(s['delivered'], 0, s)
        # A window, not a wait: a delivery past the egress check would arrive in it.
        time.sleep(0.3)
        self.assertEqual(sink.count(), 0)

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
        # A window, not a wait: a connection past the egress check would arrive in it.
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
        # Only 127.0.0.2 may be connected to: its sink gets the message, the
        # one on 127.0.0.1 (by address or by name) nothing.
        allowed, local = self.sink(host='127.0.0.2'), self.sink()
        hc = self.start_hookcast('--retry-schedule', '100ms',
                                 config={'allow_targets': '127.0.0.2/32'})
        self.assertForbidden(hc, local.address, '127.0.0.1 is not in allow_targets')
        # Both the IPv6 form and the IPv4 address it carries must be allowed.
        self.assertForbidden(hc, '[::127.0.0.2]:%d' % allowed.port,
                             '::127.0.0.2 is not in allow_targets')
        self.assertSuccess(hc.register(allowed.address))
        name = 'localhost:%d' % local.port
        self.assertSuccess(hc.register(name))
        self.assertSuccess(hc.publish(b'x'))
        self.assertEqual(allowed.wait_for(1, scaled(5)), 1)
        self.assertEqual(allowed.bodies(), [b'x'])
        s = hc.wait_subscriber(name, lambda s: s['last_error'], scaled(5))
        self.assertIn(s['last_error'], ('egress denied: 127.0.0.1 is not in allow_targets',
                                        'egress denied: ::1 is not in allow_targets'))
        # A window, not a wait: a delivery past the egress check would arrive in it.
        time.sleep(0.3)
        self.assertEqual(local.count(), 0)
        hc.stop()

        # Allowing loopback's IPv4 range: localhost is delivered to over
        # 127.0.0.1 even if its ::1 is tried (and denied) first.
        hc = self.start_hookcast(config={'allow_targets': '127.0.0.0/8'})
        self.assertSuccess(hc.register(name))
        self.assertSuccess(hc.publish(b'through 127.0.0.1'))
        self.assertEqual(local.wait_for(1, scaled(5)), 1)
        self.assertEqual(local.bodies(), [b'through 127.0.0.1'])

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
        # A window, not a wait: a delivery to its own API would be counted in it.
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
        # A window, not a wait: a request through the proxy would arrive in it.
        time.sleep(0.2)
        self.assertEqual(proxy.count(), 0)

    def test_trailing_dot_is_the_same_address(self):
        hc = self.start_hookcast()
        for address in ('169.254.169.254.:80', 'http://169.254.169.254./latest/'):
            with self.subTest(address=address):
                r = hc.register(address)
                self.assertEqual(r.status, 403, r)
                self.assertIn('169.254.169.254 is in deny_targets', r.text)

"""Bad input gets a clear answer and changes nothing (issue 2, "Bad input")."""

import http.client
import socket
import time

from harness import HookcastTestCase, q, raw_connect, read_until_closed, scaled

SEED_MISSING = b'Error:Wrong input address.'
MALFORMED_PREFIX = 'Error:Wrong input address: '


class AddressValidationTest(HookcastTestCase):

    # (label, address or None for no parameter, words of which one must be in the message)
    ROWS = [
        ('missing', None, None),
        ('empty', '', None),
        ('no port', '127.0.0.1', ('port',)),
        ('no port, hostname', 'example.com', ('port',)),
        ('port 0', '127.0.0.1:0', ('port',)),
        ('port 65536', '127.0.0.1:65536', ('port',)),
        ('port 99999999999999999999', '127.0.0.1:99999999999999999999', ('port',)),
        ('port not a number', '127.0.0.1:http', ('port',)),
        ('negative port', '127.0.0.1:-80', ('port',)),
        ('empty port', '127.0.0.1:', ('port',)),
        ('URL with port 0', 'http://127.0.0.1:0/event', ('port',)),
        ('URL with port 65536', 'http://127.0.0.1:65536/event', ('port',)),
        ('scheme ftp', 'ftp://127.0.0.1:21', ('scheme',)),
        ('scheme ftp with path', 'ftp://127.0.0.1:21/event', ('scheme',)),
        ('scheme file', 'file:///etc/passwd', ('scheme',)),
        ('percent-encoded host', 'http://0%2e21:80/event', ('percent',)),
        ('percent-encoded host:port', '169.254.169%2e254:80', ('percent',)),
        ('over 2048 bytes, URL', 'http://127.0.0.1:5100/' + 'a' * 2100, ('long', '2048')),
        ('over 2048 bytes, host:port', 'a' * 2050 + ':5100', ('long', '2048')),
        ('2049 bytes', None, ('long', '2048')),  # filled in below
    ]

    def rows(self):
        prefix = 'http://127.0.0.1:5100/'
        for label, addr, words in self.ROWS:
            if label == '2049 bytes':
                addr = prefix + 'b' * (2049 - len(prefix))
                assert len(addr) == 2049
            yield label, addr, words

    def test_register_rejects_bad_addresses(self):
        hc = self.start_hookcast()
        self.assertSuccess(hc.register('127.0.0.1:5101'))
        before = hc.list_text()
        before_json = hc.addresses()
        for label, addr, words in self.rows():
            with self.subTest(row=label):
                path = '/registerAndKeepAlive'
                if addr is not None:
                    path += '?address=' + q(addr)
                r = hc.request('POST', path)
                self.assertEqual(r.status, 400, r)
                self.assertTextPlain(r)
                if words is None:
                    self.assertEqual(r.body, SEED_MISSING)
                else:
                    self.assertTrue(r.text.startswith(MALFORMED_PREFIX), r)
                    self.assertTrue(r.text.endswith('.'), r)
                    why = r.text[len(MALFORMED_PREFIX):].lower()
                    self.assertTrue(any(w in why for w in words),
                                    'message %r should say what is wrong (%s)'
                                    % (r.text, ' or '.join(words)))
                    self.assertLess(len(r.body), 400, 'the message should not echo a huge address')
                self.assertEqual(hc.list_text(), before, 'a 400 must change nothing')
        self.assertEqual(hc.addresses(), before_json)

    def test_address_of_exactly_2048_bytes_is_accepted(self):
        hc = self.start_hookcast()
        prefix = 'http://127.0.0.1:5102/'
        addr = prefix + 'c' * (2048 - len(prefix))
        self.assertEqual(len(addr), 2048)
        self.assertSuccess(hc.register(addr), 'a 2048-byte address')
        self.assertEqual(hc.addresses(), [addr])
        self.assertSuccess(hc.deregister(addr))
        self.assertEqual(hc.addresses(), [])

    def test_valid_forms_are_accepted(self):
        hc = self.start_hookcast()
        good = ['127.0.0.1:1', '127.0.0.1:65535', 'localhost:8080',
                'http://127.0.0.1:5103/hook', 'https://127.0.0.1:5104/hook',
                'HTTP://127.0.0.1:5105/upper']
        for a in good:
            with self.subTest(address=a):
                self.assertSuccess(hc.register(a))
        self.assertEqual(hc.addresses(), sorted(good))


class BodyLimitTest(HookcastTestCase):
    """max_body from the config file with a size suffix (1K = 1024 bytes)."""

    def setUp(self):
        super().setUp()
        self.subscriber = self.sink()
        self.hc = self.start_hookcast(config={'max_body': '1K'})
        self.assertSuccess(self.hc.register(self.subscriber.address))

    def assertNothingDelivered(self):
        # A window, not a wait: a delivery of a refused body would arrive in it.
        time.sleep(0.3)
        self.assertEqual(self.subscriber.count(), 0, self.subscriber.snapshot())

    def test_body_at_limit_is_accepted(self):
        body = bytes(range(256)) * 4
        self.assertSuccess(self.hc.publish(body), 'a 1024-byte publish')
        self.assertEqual(self.subscriber.wait_for(1, scaled(5)), 1)
        self.assertEqual(self.subscriber.bodies(), [body])

    def test_content_length_over_limit_is_413(self):
        r = self.hc.publish(b'x' * 1025)
        self.assertEqual(r.status, 413, r)
        self.assertNothingDelivered()

    def test_chunked_over_limit_is_413(self):
        chunks = [b'y' * 300] * 5
        try:
            r = self.hc.request('POST', '/sendMessage', body=iter(chunks),
                                encode_chunked=True)
        except (http.client.HTTPException, OSError) as e:
            self.fail('a chunked 1500-byte body over max_body 1K got no HTTP answer '
                      '(%r); expected 413' % e)
        self.assertEqual(r.status, 413, r)
        self.assertNothingDelivered()
        # The daemon is still fine afterwards.
        self.assertSuccess(self.hc.publish(b'ok after 413'))
        self.assertEqual(self.subscriber.wait_for(1, scaled(5)), 1)

    def test_chunked_under_limit_is_delivered_exactly(self):
        chunks = [b'a' * 100, b'\x00\xff' * 200, b'z' * 3]
        r = self.hc.request('POST', '/sendMessage', body=iter(chunks),
                            encode_chunked=True,
                            headers={'Content-Type': 'application/x-test'})
        self.assertSuccess(r, 'chunked publish')
        self.assertEqual(self.subscriber.wait_for(1, scaled(5)), 1)
        rec = self.subscriber.snapshot()[0]
        self.assertEqual(rec.body, b''.join(chunks))
        self.assertEqual(rec.headers.get('Content-Type'), 'application/x-test')

    def test_huge_content_length_is_refused_at_once(self):
        s = raw_connect(self.hc.port)
        try:
            s.sendall(b'POST /sendMessage HTTP/1.1\r\nHost: x\r\n'
                      b'Content-Length: 10737418240\r\n\r\n')
            data, _, elapsed = read_until_closed(s, scaled(3))
        finally:
            s.close()
        self.assertTrue(data.startswith(b'HTTP/1.1 413'), data[:200])
        self.assertNothingDelivered()

    def test_over_limit_with_expect_continue_gets_413_not_100(self):
        s = raw_connect(self.hc.port)
        try:
            s.sendall(b'POST /sendMessage HTTP/1.1\r\nHost: x\r\n'
                      b'Content-Length: 5000\r\nExpect: 100-continue\r\n\r\n')
            s.settimeout(scaled(3))
            try:
                data = s.recv(4096)
            except socket.timeout:
                data = b''
        finally:
            s.close()
        self.assertTrue(data.startswith(b'HTTP/1.1 413'), data[:200])
        self.assertNothingDelivered()

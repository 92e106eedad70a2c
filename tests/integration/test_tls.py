"""TLS: verified https deliveries (ca_file, tls_verify) and the HTTPS front end (tls_cert, tls_key).

The certificates are made here with the openssl command: a test CA, a server
certificate it signs for IP:127.0.0.1 and DNS:localhost, and a self-signed
one nobody trusts."""

import os
import re
import shutil
import ssl
import subprocess
import tempfile

from harness import (HookcastTestCase, Hookcast, http_request, raw_connect,
                     read_until_closed, run_binary, scaled, wait_until)

CERTS = None


def openssl(*args, cwd):
    p = subprocess.run(('openssl',) + args, cwd=cwd, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    if p.returncode != 0:
        raise AssertionError('openssl %s failed:\n%s' % (' '.join(args),
                                                          p.stdout.decode('utf-8', 'replace')))


def make_certs(d):
    ec = ('-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes')
    openssl('req', '-x509', *ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2',
            '-subj', '/CN=hookcast test CA',
            '-addext', 'basicConstraints=critical,CA:TRUE',
            '-addext', 'keyUsage=critical,keyCertSign,cRLSign', cwd=d)
    openssl('req', *ec, '-keyout', 'server.key', '-out', 'server.csr',
            '-subj', '/CN=localhost', cwd=d)
    with open(os.path.join(d, 'server.ext'), 'w') as f:
        f.write('subjectAltName=IP:127.0.0.1,DNS:localhost\n'
                'basicConstraints=CA:FALSE\n'
                'keyUsage=critical,digitalSignature,keyEncipherment\n'
                'extendedKeyUsage=serverAuth\n'
                'authorityKeyIdentifier=keyid\n'
                'subjectKeyIdentifier=hash\n')
    openssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key',
            '-CAcreateserial', '-out', 'server.crt', '-days', '2',
            '-extfile', 'server.ext', cwd=d)
    # Signed by the CA, for another name only.
    openssl('req', *ec, '-keyout', 'other.key', '-out', 'other.csr',
            '-subj', '/CN=other.example', cwd=d)
    with open(os.path.join(d, 'other.ext'), 'w') as f:
        f.write('subjectAltName=DNS:other.example\n')
    openssl('x509', '-req', '-in', 'other.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key',
            '-CAcreateserial', '-out', 'other.crt', '-days', '2',
            '-extfile', 'other.ext', cwd=d)
    # Right names, but signed by itself: verification must refuse it.
    openssl('req', '-x509', *ec, '-keyout', 'self.key', '-out', 'self.crt', '-days', '2',
            '-subj', '/CN=localhost',
            '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', cwd=d)
    return {name: os.path.join(d, name) for name in os.listdir(d)}


def module_certs(prefix):
    """make_certs in a new temporary directory, its path under 'dir' (for
    a module's set-up; removed again if the certificates fail)."""
    d = tempfile.mkdtemp(prefix=prefix)
    try:
        certs = make_certs(d)
    except Exception:
        shutil.rmtree(d, ignore_errors=True)
        raise
    certs['dir'] = d
    return certs


def setUpModule():
    global CERTS
    CERTS = module_certs('hookcast-tls-')


def tearDownModule():
    if CERTS is not None:
        shutil.rmtree(CERTS['dir'], ignore_errors=True)


def server_context(cert, key):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx


def client_context():
    """Trusts the test CA only, and checks the host name."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(CERTS['ca.crt'])
    return ctx


class TlsDeliveryTest(HookcastTestCase):

    def trusted_sink(self, **kw):
        return self.sink(tls=server_context(CERTS['server.crt'], CERTS['server.key']), **kw)

    def untrusted_sink(self, **kw):
        return self.sink(tls=server_context(CERTS['self.crt'], CERTS['self.key']), **kw)

    def test_https_subscriber_verified_with_ca_file(self):
        good = self.trusted_sink()
        by_name = self.trusted_sink()
        bad = self.untrusted_sink()
        hc = self.start_hookcast('--retry-schedule', '100ms',
                                 config={'ca_file': CERTS['ca.crt']})
        self.assertSuccess(hc.register(good.url()))
        self.assertSuccess(hc.register(by_name.url('/in', host='localhost')))
        self.assertSuccess(hc.register(bad.url()))
        self.assertSuccess(hc.publish(b'over tls', content_type='text/plain'))
        self.assertEqual(good.wait_for(1, scaled(5)), 1)
        self.assertEqual(by_name.wait_for(1, scaled(5)), 1)
        rec = good.snapshot()[0]
        self.assertEqual((rec.method, rec.path, rec.body), ('POST', '/event', b'over tls'))
        self.assertEqual(by_name.snapshot()[0].path, '/in')
        s = hc.wait_subscriber(bad.url(), lambda s: s['last_error'], scaled(5))
        self.assertIn('certificate', s['last_error'].lower(), s)
        self.assertEqual(s['delivered'], 0, s)
        self.assertEqual(bad.count(), 0, 'an untrusted server got the message')
        self.assertTrue(wait_until(lambda: bad.tls_errors, scaled(2)),
                        'hookcast never tried the untrusted server')
        # The sink records a delivery before it answers; hookcast counts it
        # once the answer is in, so the count may trail the sink a moment.
        s = hc.wait_subscriber(good.url(), lambda s: s['delivered'] == 1, scaled(5))
        self.assertEqual(s['delivered'], 1, s)
        self.assertIsNone(s['last_error'], s)

    def test_without_ca_file_the_test_ca_is_not_trusted(self):
        sink = self.trusted_sink()
        hc = self.start_hookcast('--retry-schedule', '100ms')
        self.assertSuccess(hc.register(sink.url()))
        self.assertSuccess(hc.publish(b'x'))
        s = hc.wait_subscriber(sink.url(), lambda s: s['last_error'], scaled(5))
        self.assertIn('certificate', s['last_error'].lower(), s)
        self.assertEqual(sink.count(), 0)

    def test_certificate_for_another_name_fails(self):
        # Signed by the trusted CA, but for another host: the name is checked too.
        sink = self.sink(tls=server_context(CERTS['other.crt'], CERTS['other.key']))
        hc = self.start_hookcast('--retry-schedule', '100ms',
                                 config={'ca_file': CERTS['ca.crt']})
        self.assertSuccess(hc.register(sink.url()))
        self.assertSuccess(hc.publish(b'x'))
        s = hc.wait_subscriber(sink.url(), lambda s: s['last_error'], scaled(5))
        self.assertIn('127.0.0.1', s['last_error'], s)
        self.assertRegex(s['last_error'], r'subject name|host name', s)
        self.assertEqual(sink.count(), 0)

    def test_tls_verify_no_accepts_any_certificate(self):
        sink = self.untrusted_sink()
        hc = self.start_hookcast(config={'tls_verify': 'no'})
        self.assertIsNotNone(hc.wait_for_log(r'level=warn msg="tls_verify is off', scaled(2)),
                             'no warning at start with tls_verify no')
        self.assertSuccess(hc.register(sink.url()))
        self.assertSuccess(hc.publish(b'unverified'))
        self.assertEqual(sink.wait_for(1, scaled(5)), 1)
        self.assertEqual(sink.bodies(), [b'unverified'])

    def test_unreadable_ca_file_stops_start_up(self):
        missing = os.path.join(CERTS['dir'], 'no-such-ca.pem')
        h = Hookcast(config={'ca_file': missing})
        self.addCleanup(shutil.rmtree, h.tmp, True)
        rc = h.run_until_exit()
        self.assertNotEqual(rc, 0)
        err = h.stderr_text()
        self.assertRegex(err, r'level=error msg="cannot read ca_file" ca_file=%s' % missing)
        self.assertNotIn('msg="listening"', err)


class TlsFrontEndTest(HookcastTestCase):

    def start_https(self, *args, **kw):
        cfg = {'tls_cert': CERTS['server.crt'], 'tls_key': CERTS['server.key']}
        cfg.update(kw.pop('config', {}))
        return self.start_hookcast(*args, config=cfg, client_tls=client_context(), **kw)

    def test_https_front_end_serves_the_api(self):
        sink = self.sink()
        hc = self.start_https()
        self.assertIsNotNone(hc.wait_for_log(
            r'msg="listening" listen=127\.0\.0\.1:%d tls=yes' % hc.port, scaled(1)))
        self.assertSuccess(hc.register(sink.address))
        r = hc.publish(b'sent over https')
        self.assertSuccess(r)
        self.assertEqual(sink.wait_for(1, scaled(5)), 1)
        self.assertEqual(sink.bodies(), [b'sent over https'])
        self.assertEqual(hc.addresses(), [sink.address])
        self.assertIn(sink.address, hc.list_text())
        # By name too: the certificate is for localhost as well.
        r = http_request(hc.port, 'GET', '/listSubscribers', context=client_context(),
                         host='localhost')
        self.assertEqual(r.status, 200)
        self.assertIn(sink.address, r.text)

    def test_plain_http_to_the_https_port_is_not_served(self):
        hc = self.start_https()
        s = raw_connect(hc.port)
        try:
            s.sendall(b'GET /listSubscribers HTTP/1.1\r\nHost: x\r\n\r\n')
            data, closed, _ = read_until_closed(s, scaled(5))
        finally:
            s.close()
        self.assertTrue(closed, 'connection left open after a plain HTTP request')
        self.assertFalse(data.startswith(b'HTTP/'), 'answered in plain HTTP: %r' % data[:200])
        self.assertNotIn(b'success', data)
        # And a client that does not trust the CA gets no answer either.
        with self.assertRaises(ssl.SSLError):
            http_request(hc.port, 'GET', '/listSubscribers',
                         context=ssl.create_default_context())
        # The daemon still serves TLS clients afterwards.
        self.assertEqual(hc.request('GET', '/listSubscribers').status, 200)

    def test_only_tls_1_2_and_later_are_offered(self):
        hc = self.start_https()
        for version in (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1):
            with self.subTest(version=version):
                ctx = client_context()
                ctx.set_ciphers('DEFAULT:@SECLEVEL=0')   # let the client try it
                ctx.minimum_version = ctx.maximum_version = version
                with self.assertRaises((ssl.SSLError, ConnectionError)):
                    http_request(hc.port, 'GET', '/listSubscribers', context=ctx)
        ctx = client_context()
        ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        self.assertEqual(http_request(hc.port, 'GET', '/listSubscribers',
                                      context=ctx).status, 200)

    def start_failure(self, config):
        h = Hookcast(config=config)
        self.addCleanup(shutil.rmtree, h.tmp, True)
        rc = h.run_until_exit()
        return rc, h.stderr_text()

    def test_one_file_without_the_other_is_a_config_error(self):
        for key, other in (('tls_cert', 'tls_key'), ('tls_key', 'tls_cert')):
            with self.subTest(key=key):
                rc, out, err = run_binary('--%s' % key.replace('_', '-'),
                                          CERTS['server.crt'], '--check-config')
                self.assertNotEqual(rc, 0)
                self.assertIn('%s is set but %s is not' % (key, other), err)

    def test_bad_files_stop_start_up_naming_the_path(self):
        d = tempfile.mkdtemp(prefix='hookcast-tls-bad-')
        self.addCleanup(shutil.rmtree, d, True)
        garbage = os.path.join(d, 'garbage.pem')
        with open(garbage, 'w') as f:
            f.write('-----BEGIN CERTIFICATE-----\nnot base64 at all!\n'
                    '-----END CERTIFICATE-----\n')
        empty = os.path.join(d, 'empty.pem')
        open(empty, 'w').close()
        missing = os.path.join(d, 'missing.pem')
        cert, key = CERTS['server.crt'], CERTS['server.key']
        cases = [
            ('missing cert', missing, key, r'tls_cert=%s error="No such file' % missing),
            ('missing key', cert, missing, r'tls_key=%s error="No such file' % missing),
            ('empty key', cert, empty, r'tls_key=%s error="empty"' % empty),
            ('garbage cert', garbage, key, r'msg="tls_cert is not a PEM certificate" '
                                           r'tls_cert=%s' % garbage),
            ('a cert as the key', cert, cert, r'msg="tls_key is not an unencrypted PEM '
                                              r'private key" tls_key=%s' % cert),
            ('key of another cert', cert, CERTS['self.key'],
             r'msg="tls_key does not go with tls_cert" tls_cert=%s tls_key=%s'
             % (cert, CERTS['self.key'])),
            ('a directory', d, key, r'tls_cert=%s error=' % d),
        ]
        if os.geteuid() != 0:
            unreadable = os.path.join(d, 'unreadable.key')
            shutil.copy(key, unreadable)
            os.chmod(unreadable, 0)
            cases.append(('unreadable key', cert, unreadable,
                          r'tls_key=%s error="Permission denied"' % unreadable))
        for label, c, k, pattern in cases:
            with self.subTest(case=label):
                rc, err = self.start_failure({'tls_cert': c, 'tls_key': k})
                self.assertIsNotNone(rc, 'still running')
                self.assertNotEqual(rc, 0)
                errors = [l for l in err.splitlines() if 'level=error' in l]
                self.assertTrue(any(re.search(pattern, l) for l in errors),
                                'no level=error line matching %r in:\n%s' % (pattern, err))
                self.assertNotIn('msg="listening"', err)

"""Access control: publish, subscribe and admin tokens, Bearer and Basic, 401s that change nothing."""

import base64
import os
import re
import secrets
import socket
import tempfile
import threading
import time

from harness import (HookcastTestCase, q, raw_connect, read_until_closed,
                     run_binary, scaled)


def token(prefix):
    """A fresh token per test run, so finding it in a log cannot be a coincidence."""
    return '%s-%s' % (prefix, secrets.token_hex(16))


def bearer(tok):
    return {'Authorization': 'Bearer ' + tok}


def basic(tok, user='operator'):
    cred = base64.b64encode(('%s:%s' % (user, tok)).encode()).decode()
    return {'Authorization': 'Basic ' + cred}


class AuthTest(HookcastTestCase):

    def setUp(self):
        super().setUp()
        self.pub, self.sub, self.adm = token('pub'), token('sub'), token('adm')
        self.wrong = token('wrong')

    def tokens_config(self, **more):
        cfg = {'publish_token': self.pub, 'subscribe_token': self.sub,
               'admin_token': self.adm}
        cfg.update(more)
        return cfg

    def endpoints(self, address):
        """(method, path, body, scope's token, the status it answers when allowed)."""
        return [
            ('POST', '/sendMessage', b'event', self.pub, 200),
            ('POST', '/sendMessages', b'[{"body":"event"}]', self.pub, 200),
            ('POST', '/registerAndKeepAlive?address=' + q(address), None, self.sub, 200),
            ('DELETE', '/deregister?address=' + q(address), None, self.sub, 200),
            ('GET', '/listSubscribers', None, self.adm, 200),
            ('HEAD', '/listSubscribers', None, self.adm, 200),
            ('GET', '/deadLetters', None, self.adm, 200),
            ('HEAD', '/deadLetters', None, self.adm, 200),
            ('DELETE', '/deadLetters?address=' + q(address), None, self.adm, 200),
            ('POST', '/deadLetters/replay?address=' + q(address), None, self.adm, 200),
            ('GET', '/metrics', None, self.adm, 200),
            ('HEAD', '/metrics', None, self.adm, 200),
            ('GET', '/stats', None, self.adm, 200),
            ('HEAD', '/stats', None, self.adm, 200),
        ]

    def assertUnauthorized(self, r, what, error=None):
        self.assertEqual(r.status, 401, '%s: %r' % (what, r))
        challenges = r.headers.get_all('WWW-Authenticate') or []
        self.assertIn('Basic realm="hookcast", charset="UTF-8"', challenges, what)
        bearers = [c for c in challenges if c.startswith('Bearer realm="hookcast"')]
        self.assertEqual(len(bearers), 1, '%s: %r' % (what, challenges))
        if error is not None:
            self.assertIn('error="%s"' % error, bearers[0], what)
        if r.body:  # HEAD has none
            self.assertTextPlain(r)
            self.assertTrue(r.text.startswith('Error: Unauthorized'), r.text)

    def test_every_endpoint_with_no_wrong_and_right_tokens(self):
        sink = self.sink()
        hc = self.start_hookcast(config=self.tokens_config())
        others = {self.pub: self.adm, self.sub: self.pub, self.adm: self.sub}
        for method, path, body, tok, ok in self.endpoints(sink.address):
            # replay needs the address registered; the DELETE before it removed it
            if path.startswith('/deadLetters/replay'):
                self.assertSuccess(hc.request('POST', '/registerAndKeepAlive?address=' +
                                              q(sink.address), headers=bearer(self.sub)))
            what = '%s %s' % (method, path)
            with self.subTest(endpoint=what):
                r = hc.request(method, path, body=body)
                self.assertUnauthorized(r, what + ' without a token')
                if method != 'HEAD':
                    self.assertIn('needs the %s token' % {
                        self.pub: 'publish', self.sub: 'subscribe',
                        self.adm: 'admin'}[tok], r.text)
                for label, headers in (
                        ('a wrong Bearer', bearer(self.wrong)),
                        ("another scope's Bearer", bearer(others[tok])),
                        ('a wrong Basic', basic(self.wrong)),
                        ('the token with one character more', bearer(tok + 'x')),
                        ('the token less its last character', bearer(tok[:-1]))):
                    r = hc.request(method, path, body=body, headers=headers)
                    self.assertUnauthorized(r, '%s with %s' % (what, label),
                                            error='invalid_token')
                for label, headers in (('Bearer', bearer(tok)),
                                       ('lower-case bearer',
                                        {'Authorization': 'bearer ' + tok}),
                                       ('Basic', basic(tok)),
                                       ('Basic with another user', basic(tok, 'x')),
                                       ('Basic with an empty user', basic(tok, ''))):
                    r = hc.request(method, path, body=body, headers=headers)
                    self.assertEqual(r.status, ok, '%s with %s: %r' % (what, label, r))

    def test_malformed_headers_get_401(self):
        hc = self.start_hookcast(config=self.tokens_config())
        for value in ('Bearer', 'Basic !!!!', 'Basic ' + base64.b64encode(
                self.adm.encode()).decode(), 'Digest username="x"', self.adm,
                'Bearer %s extra' % self.adm):
            with self.subTest(header=value):
                r = hc.request('GET', '/listSubscribers',
                               headers={'Authorization': value})
                self.assertUnauthorized(r, value, error='invalid_request')

    def test_unauthorized_publish_delivers_nothing(self):
        sink = self.sink()
        hc = self.start_hookcast(config=self.tokens_config())
        r = hc.request('POST', '/registerAndKeepAlive?address=' + q(sink.address),
                       headers=bearer(self.sub))
        self.assertSuccess(r)
        self.assertUnauthorized(hc.publish(b'no token'), 'publish without a token')
        r = hc.request('POST', '/sendMessage', body=b'wrong token',
                       headers=bearer(self.wrong))
        self.assertUnauthorized(r, 'publish with a wrong token')
        r = hc.request('POST', '/sendMessage', body=b'subscribe token',
                       headers=bearer(self.sub))
        self.assertUnauthorized(r, 'publish with the subscribe token')
        r = hc.request('POST', '/sendMessage', body=b'x' * 200000,
                       headers=basic(self.wrong))
        self.assertUnauthorized(r, 'a 200 kB publish with a wrong token')
        r = hc.request('POST', '/sendMessage', body=b'allowed', headers=bearer(self.pub))
        self.assertSuccess(r, 'publish with the publish token')
        self.assertEqual(sink.wait_for(1, scaled(5)), 1)
        # A window, not a wait: a refused publish, if one got through, would arrive in it.
        time.sleep(scaled(0.5))
        self.assertEqual(sink.bodies(), [b'allowed'])

    def test_refused_before_the_body_is_read(self):
        sink = self.sink()
        hc = self.start_hookcast(config=self.tokens_config())
        self.assertSuccess(hc.request('POST', '/registerAndKeepAlive?address=' +
                                      q(sink.address), headers=bearer(self.sub)))
        # With Expect: 100-continue, the client never sends a body: 401, not 100.
        s = raw_connect(hc.port)
        try:
            s.sendall(b'POST /sendMessage HTTP/1.1\r\nHost: x\r\n'
                      b'Content-Length: 5000\r\nExpect: 100-continue\r\n\r\n')
            data, _, _ = read_until_closed(s, scaled(3))
        finally:
            s.close()
        self.assertTrue(data.startswith(b'HTTP/1.1 401'), data[:200])
        self.assertIn(b'WWW-Authenticate: Basic', data)
        # A body past max_body is not even looked at: 401, not 413.
        s = raw_connect(hc.port)
        try:
            s.sendall(b'POST /sendMessage HTTP/1.1\r\nHost: x\r\n'
                      b'Content-Length: 10737418240\r\n\r\n')
            data, closed, _ = read_until_closed(s, scaled(3))
        finally:
            s.close()
        self.assertTrue(data.startswith(b'HTTP/1.1 401'), data[:200])
        self.assertTrue(closed, 'the connection stayed open for the refused body')
        # A window, not a wait: a delivery of the refused body would arrive in it.
        time.sleep(scaled(0.3))
        self.assertEqual(sink.count(), 0, sink.snapshot())

    def test_unauthorized_register_and_deregister_change_nothing(self):
        a, b = '127.0.0.1:5401', '127.0.0.1:5402'
        hc = self.start_hookcast(config=self.tokens_config())
        admin = bearer(self.adm)
        for headers in ({}, bearer(self.wrong), bearer(self.pub), basic(self.adm)):
            r = hc.request('POST', '/registerAndKeepAlive?address=' + q(a), headers=headers)
            self.assertUnauthorized(r, 'register with %r' % headers)
        r = hc.request('GET', '/listSubscribers?format=json', headers=admin)
        self.assertEqual(r.json(), {'subscribers': []})
        self.assertSuccess(hc.request('POST', '/registerAndKeepAlive?address=' + q(b),
                                      headers=basic(self.sub)))
        for headers in ({}, bearer(self.wrong), bearer(self.adm)):
            r = hc.request('DELETE', '/deregister?address=' + q(b), headers=headers)
            self.assertUnauthorized(r, 'deregister with %r' % headers)
        r = hc.request('GET', '/listSubscribers?format=json', headers=admin)
        self.assertEqual([s['address'] for s in r.json()['subscribers']], [b])

    def test_method_and_path_are_judged_before_the_token(self):
        hc = self.start_hookcast(config=self.tokens_config())
        r = hc.request('GET', '/sendMessage')
        self.assertEqual((r.status, r.header('Allow')), (405, 'POST'), r)
        r = hc.request('PUT', '/listSubscribers', body=b'x')
        self.assertEqual(r.status, 405, r)
        r = hc.request('GET', '/nope')
        self.assertEqual(r.status, 404, r)
        self.assertIsNone(r.header('WWW-Authenticate'))

    def test_unset_scopes_stay_open(self):
        sink = self.sink()
        hc = self.start_hookcast(config={'admin_token': self.adm})
        # No token needed, and a stray Authorization header is ignored.
        for headers in ({}, bearer(self.wrong)):
            self.assertSuccess(hc.request('POST', '/registerAndKeepAlive?address=' +
                                          q(sink.address), headers=headers))
            self.assertSuccess(hc.request('POST', '/sendMessage', body=b'open',
                                          headers=headers))
        self.assertEqual(sink.wait_for(2, scaled(5)), 2)
        self.assertUnauthorized(hc.request('GET', '/listSubscribers'), 'listing')
        r = hc.request('GET', '/listSubscribers', headers=basic(self.adm))
        self.assertIn(sink.address, r.text)

    def test_no_tokens_is_the_seed(self):
        hc = self.start_hookcast()
        self.assertSuccess(hc.register('127.0.0.1:5403'))
        self.assertEqual(hc.request('GET', '/listSubscribers').status, 200)
        self.assertEqual(hc.request('GET', '/deadLetters').status, 200)
        self.assertSuccess(hc.deregister('127.0.0.1:5403'))

    def test_a_browser_is_asked_and_gets_the_page(self):
        hc = self.start_hookcast(config=self.tokens_config())
        accept = {'Accept': 'text/html,application/xhtml+xml,*/*;q=0.8'}
        r = hc.request('GET', '/listSubscribers', headers=accept)
        self.assertUnauthorized(r, 'a browser without credentials')
        r = hc.request('GET', '/listSubscribers', headers=dict(accept, **basic(self.adm, '')))
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.header('Content-Type', '').startswith('text/html'), r)

    def test_tokens_from_the_environment(self):
        env = {'HOOKCAST_PUBLISH_TOKEN': self.pub, 'HOOKCAST_SUBSCRIBE_TOKEN': self.sub,
               'HOOKCAST_ADMIN_TOKEN': self.adm}
        hc = self.start_hookcast(env=env)
        for path, tok in (('/registerAndKeepAlive?address=127.0.0.1:5404', self.sub),
                          ('/sendMessage', self.pub),
                          ('/deadLetters/replay?address=127.0.0.1:5404', self.adm)):
            with self.subTest(path=path):
                self.assertUnauthorized(hc.request('POST', path), path)
                r = hc.request('POST', path, headers=bearer(tok))
                self.assertEqual(r.status, 200, r)
        self.assertEqual(hc.request('GET', '/listSubscribers', headers=basic(self.adm)).status,
                         200)

    def test_command_line_over_environment_over_file(self):
        f, e, c = token('file'), token('env'), token('flag')
        cases = [
            ('file only', {'publish_token': f}, {}, (), f),
            ('environment over file', {'publish_token': f},
             {'HOOKCAST_PUBLISH_TOKEN': e}, (), e),
            ('command line over both', {'publish_token': f},
             {'HOOKCAST_PUBLISH_TOKEN': e}, ('--publish-token', c), c),
            ('command line over environment', {}, {'HOOKCAST_PUBLISH_TOKEN': e},
             ('--publish-token=' + c,), c),
        ]
        for label, cfg, env, args, want in cases:
            with self.subTest(case=label):
                hc = self.start_hookcast(*args, config=cfg, env=env)
                for tok in (f, e, c):
                    r = hc.request('POST', '/sendMessage', body=b'x', headers=bearer(tok))
                    self.assertEqual(r.status, 200 if tok == want else 401,
                                     '%s: token %s: %r' % (label, tok[:5], r))
                hc.stop()

    def test_bad_tokens_stop_start_up_without_showing_them(self):
        bad = 'short-s3cret'
        cases = [
            ('file', ('--config', self.conf('admin_token %s\n' % bad)), {}, 'admin_token'),
            ('environment', (), {'HOOKCAST_ADMIN_TOKEN': bad}, 'HOOKCAST_ADMIN_TOKEN'),
            ('empty environment', (), {'HOOKCAST_PUBLISH_TOKEN': ''},
             'HOOKCAST_PUBLISH_TOKEN'),
            ('flag', ('--admin-token', bad), {}, 'admin_token'),
            ('flag with a space', ('--admin-token', 'abcdefgh ijklmnopq'), {}, 'admin_token'),
        ]
        for label, args, env, named in cases:
            for extra in (('--check-config',), ('--listen', '127.0.0.1:0')):
                with self.subTest(case=label, args=extra):
                    rc, out, err = run_binary(*(args + extra), env=env, timeout=scaled(10))
                    self.assertNotEqual(rc, 0, out + err)
                    self.assertIn(named, err)
                    self.assertNotIn('s3cret', out + err)
                    self.assertNotIn('ijklmnopq', out + err)
                    self.assertNotIn('msg="listening"', err)

    def conf(self, text):
        fd, path = tempfile.mkstemp(suffix='.conf')
        with os.fdopen(fd, 'w') as fp:
            fp.write(text)
        self.after_daemons(lambda: os.unlink(path))
        return path

    def test_check_config_does_not_print_tokens(self):
        path = self.conf('publish_token %s\n' % self.pub)
        rc, out, err = run_binary('--config', path, '--check-config', '--admin-token', self.adm,
                                  env={'HOOKCAST_SUBSCRIBE_TOKEN': self.sub})
        self.assertEqual(rc, 0, out + err)
        self.assertIn('configuration ok', out)
        for tok in (self.pub, self.sub, self.adm):
            self.assertNotIn(tok, out + err)

    def test_tokens_never_reach_the_log(self):
        sink = self.sink()
        hc = self.start_hookcast('--log-level', 'debug', config=self.tokens_config(),
                                 env={'HOOKCAST_ADMIN_TOKEN': self.adm})
        sent = [bearer(self.sub), basic(self.pub), bearer(self.wrong), basic(self.wrong),
                {'Authorization': 'Bearer %s x' % self.wrong}, basic(self.adm)]
        self.assertSuccess(hc.request('POST', '/registerAndKeepAlive?address=' +
                                      q(sink.address), headers=sent[0]))
        self.assertSuccess(hc.request('POST', '/sendMessage', body=b'm', headers=sent[1]))
        for headers in [{}] + sent[2:]:
            hc.request('GET', '/listSubscribers', headers=headers)
        time.sleep(1.1)  # past the once-a-second limit on refusal lines
        hc.request('POST', '/sendMessage', body=b'm', headers=bearer(self.wrong))
        self.assertEqual(sink.wait_for(1, scaled(5)), 1)
        self.assertTrue(hc.wait_for_log(r'msg="request unauthorized" path=/sendMessage '
                                        r'scope=publish reason=wrong client=127\.0\.0\.1 '
                                        r'refused=\d+', scaled(5)), hc.stderr_tail())
        hc.stop()
        log = hc.stderr_text()
        self.assertRegex(log, r'msg="request unauthorized" path=/listSubscribers '
                              r'scope=admin reason=missing')
        credentials = [h['Authorization'].split(' ', 1)[1] for h in sent]
        seen = [t for t in [self.pub, self.sub, self.adm, self.wrong] + credentials
                if t in log]
        self.assertEqual(seen, [], 'a token or credential in the log')
        self.assertNotIn('Basic ', log)
        self.assertNotIn('Bearer ', log)

    def test_concurrent_clients_with_right_and_wrong_tokens(self):
        sink = self.sink()
        hc = self.start_hookcast('--http-threads', 4, config=self.tokens_config())
        self.assertSuccess(hc.request('POST', '/registerAndKeepAlive?address=' +
                                      q(sink.address), headers=bearer(self.sub)))
        results, lock = [], threading.Lock()

        def client(n):
            for i in range(40):
                right = (n + i) % 2 == 0
                tok = self.pub if right else self.wrong
                r = hc.request('POST', '/sendMessage', body=b'%d-%d' % (n, i),
                               headers=bearer(tok) if n % 2 else basic(tok))
                with lock:
                    results.append((right, r.status))

        threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(scaled(60))
        self.assertEqual(len(results), 320)
        self.assertEqual(sorted(set(results)), [(False, 401), (True, 200)])
        self.assertEqual(sink.wait_for(160, scaled(10)), 160)
        # A window, not a wait: a refused publish, if one got through, would arrive in it.
        time.sleep(scaled(0.3))
        self.assertEqual(sink.count(), 160)
        # Bodies with an odd n+i were refused: none of them arrived.
        self.assertEqual(sorted(sink.bodies()), sorted(
            b'%d-%d' % (n, i) for n in range(8) for i in range(40) if (n + i) % 2 == 0))

    def test_no_warning_on_loopback(self):
        hc = self.start_hookcast()
        self.assertEqual(hc.request('GET', '/listSubscribers').status, 200)
        hc.stop()
        warns = [l for l in hc.lines() if 'level=warn' in l]
        self.assertEqual(warns, [], 'no token set, but listening on 127.0.0.1')
        self.assertFalse(any('open to the network' in l for l in hc.lines()))

"""HTTP/2: https subscribers whose server offers h2 by ALPN get their
deliveries as multiplexed streams on one connection; `http2 no` and plain
http subscribers get HTTP/1.1.

The subscriber is nginx (`listen ... ssl http2`) with a certificate from the
test's own CA (made with the openssl command, as test_tls.py does), proxying
each delivery to a harness Sink: nginx's access log says which protocol and
which connection each delivery came on, the Sink keeps the headers and body
that the Standard Webhooks verifier judges.  nginx is in scripts/deps.sh's
check list; without it these tests fail, they do not skip."""

import os
import shutil
import signal
import socket
import subprocess

from harness import HookcastTestCase, scaled, verify_webhooks, wait_until
from test_tls import module_certs

SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'
BURST = 50
IN_FLIGHT = 8

NGINX_CONF = """daemon off;
master_process off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{
    worker_connections 256;
}}
http {{
    server_tokens off;
    keepalive_requests 100000;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    log_format deliveries '$server_protocol $connection $connection_requests '
                          '$status $http_webhook_id';
    server {{
        listen 127.0.0.1:{port} ssl http2;
        ssl_certificate {certs}/server.crt;
        ssl_certificate_key {certs}/server.key;
        access_log {prefix}/access.log deliveries;
        location = /event {{
            proxy_pass http://127.0.0.1:{sink_port};
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
        location = /early {{
            return 204;
        }}
        location / {{
            return 404;
        }}
    }}
}}
"""

CERTS = None


def setUpModule():
    global CERTS
    CERTS = module_certs('hookcast-h2-')


def tearDownModule():
    if CERTS is not None:
        shutil.rmtree(CERTS['dir'], ignore_errors=True)


class Nginx:
    """nginx serving https://127.0.0.1:PORT/event with TLS and HTTP/2 in
    front of SINK, from its own prefix under a temporary directory."""

    def __init__(self, test, sink):
        exe = shutil.which('nginx') or '/usr/sbin/nginx'
        if not os.access(exe, os.X_OK):
            test.fail('nginx not found: scripts/deps.sh check installs it (package nginx-light)')
        self.prefix = test.make_tmpdir('hookcast-h2-nginx-')
        self.log = os.path.join(self.prefix, 'access.log')
        self.proc = self.out = None
        test.addCleanup(self.close)
        for _ in range(3):
            self.port = self._free_port()
            with open(os.path.join(self.prefix, 'nginx.conf'), 'w') as f:
                f.write(NGINX_CONF.format(prefix=self.prefix, port=self.port,
                                          certs=CERTS['dir'], sink_port=sink.port))
            self.out = open(os.path.join(self.prefix, 'stdout.log'), 'w')
            self.proc = subprocess.Popen(
                [exe, '-p', self.prefix + '/', '-c', self.prefix + '/nginx.conf',
                 '-e', self.prefix + '/error.log'],
                stdin=subprocess.DEVNULL, stdout=self.out, stderr=subprocess.STDOUT)
            if wait_until(lambda: self.proc.poll() is not None or self._listening(),
                          scaled(5)) and self.proc.poll() is None:
                return
            self.close()
        test.fail('nginx did not start: %s' % self.errors())

    @staticmethod
    def _free_port():
        with socket.socket() as s:
            s.bind(('127.0.0.1', 0))
            return s.getsockname()[1]

    def _listening(self):
        try:
            with socket.create_connection(('127.0.0.1', self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def url(self, path='/event'):
        return 'https://127.0.0.1:%d%s' % (self.port, path)

    def errors(self):
        try:
            with open(os.path.join(self.prefix, 'error.log')) as f:
                return f.read()[-2000:]
        except OSError:
            return '(no error.log)'

    def entries(self):
        """(protocol, connection, requests on it, status, webhook-id) a
        delivery, in the order they ended."""
        try:
            with open(self.log) as f:
                return [tuple(line.split()) for line in f if line.strip()]
        except FileNotFoundError:
            return []

    def close(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.out is not None:
            self.out.close()
            self.out = None


def most_at_once(sink):
    """The most requests SINK had under way at once (it answers them all
    first)."""
    sink.wait_until(lambda recs: all(r.done for r in recs), scaled(5))
    events = sorted([(r.arrived, 1) for r in sink.snapshot()] +
                    [(r.done, -1) for r in sink.snapshot()])
    most = now = 0
    for _, step in events:
        now += step
        most = max(most, now)
    return most


class Http2Test(HookcastTestCase):

    def start(self, http2, **more):
        config = dict({'ca_file': CERTS['ca.crt'], 'signing_secret': SECRET,
                       'max_in_flight': str(IN_FLIGHT)}, **more)
        if http2 is not None:
            config['http2'] = http2
        return self.start_hookcast(config=config)

    def deliver_burst(self, http2):
        """BURST messages to an nginx subscriber: the nginx, the Sink behind
        it, its access-log entries."""
        sink = self.sink()
        nginx = Nginx(self, sink)
        hc = self.start(http2)
        self.assertSuccess(hc.register(nginx.url()))
        for i in range(BURST):
            self.assertSuccess(hc.publish(b'{"n":%d}' % i, content_type='application/json'))
        self.assertEqual(sink.wait_for(BURST, scaled(20)), BURST, nginx.errors())
        self.assertTrue(wait_until(lambda: len(nginx.entries()) >= BURST, scaled(5)),
                        'nginx logged %d of %d' % (len(nginx.entries()), BURST))
        s = hc.wait_subscriber(nginx.url(), lambda s: s['delivered'] == BURST, scaled(5))
        self.assertEqual(s['delivered'], BURST, s)
        self.assertIsNone(s['last_error'], s)
        return nginx, sink, nginx.entries()

    def assertVerified(self, sink):
        recs = sink.snapshot()
        self.assertEqual(len({r.webhook_id for r in recs}), BURST)
        self.assertEqual(sorted(r.body for r in recs),
                         sorted(b'{"n":%d}' % i for i in range(BURST)))
        self.assertEqual(verify_webhooks([(SECRET, r) for r in recs]), ['ok'] * BURST)

    def test_https_deliveries_share_one_http2_connection(self):
        nginx, sink, entries = self.deliver_burst(None)  # the default: http2 yes
        self.assertEqual({e[0] for e in entries}, {'HTTP/2.0'}, entries)
        conns = {e[1] for e in entries}
        self.assertEqual(len(conns), 1, 'deliveries came on %d connections: %r'
                         % (len(conns), entries))
        # Every delivery was a stream of that one connection.
        self.assertEqual(max(int(e[2]) for e in entries), BURST, entries)
        self.assertEqual({e[3] for e in entries}, {'200'}, entries)
        self.assertEqual({e[4] for e in entries}, {r.webhook_id for r in sink.snapshot()})
        self.assertVerified(sink)

    def test_streams_stay_within_max_in_flight(self):
        # The Sink holds each request a moment, so that streams pile up on
        # the one connection: several at once, never more than max_in_flight.
        sink = self.sink(delay=0.05)
        nginx = Nginx(self, sink)
        hc = self.start('yes')
        self.assertSuccess(hc.register(nginx.url()))
        for i in range(BURST):
            self.assertSuccess(hc.publish(b'{"n":%d}' % i, content_type='application/json'))
        self.assertEqual(sink.wait_for(BURST, scaled(20)), BURST)
        most = most_at_once(sink)
        self.assertLessEqual(most, IN_FLIGHT)
        self.assertGreater(most, IN_FLIGHT // 2, 'streams did not run side by side')
        self.assertTrue(wait_until(lambda: len(nginx.entries()) >= BURST, scaled(5)))
        entries = nginx.entries()
        self.assertEqual({e[0] for e in entries}, {'HTTP/2.0'}, entries)
        self.assertEqual(len({e[1] for e in entries}), 1, entries)

    def test_an_answer_before_the_body_is_read_is_a_delivery(self):
        # nginx's `return 204` answers from the headers alone and closes the
        # stream while the body may still be on its way: libcurl 7.88 then
        # reports an HTTP/2 stream error, or (about one in 200) waits for
        # nothing until delivery_timeout, though the subscriber did answer
        # 204.  Each message must count as delivered, soon.  (Where libcurl
        # fails before it has read the answer, the message is sent again:
        # rarely, and with the same webhook-id.)  The bench (step 10, 100
        # such servers) is what makes libcurl wait: this test seldom does.
        n, subs = 100, 10
        sink = self.sink()
        nginx = Nginx(self, sink)
        hc = self.start('yes', delivery_timeout='60', max_transfers=str(subs * IN_FLIGHT),
                        delivery_threads='2')
        # Ten subscribers on one server: their streams share a connection,
        # one for each delivery thread that has some of them.
        urls = [nginx.url('/early?%d' % k) for k in range(subs)]
        for url in urls:
            self.assertSuccess(hc.register(url))
        for i in range(n):
            self.assertSuccess(hc.publish(b'{"n":%d}' % i, content_type='application/json'))
        deadline = scaled(15)
        for url in urls:
            s = hc.wait_subscriber(url, lambda s: s['delivered'] >= n, deadline)
            self.assertEqual(s['delivered'], n, s)
            self.assertLessEqual(s['failed'], n // 20, s)
        failed = sum(hc.subscriber(url)['failed'] for url in urls)
        self.assertTrue(wait_until(lambda: len(nginx.entries()) >= n * subs + failed, scaled(5)))
        entries = nginx.entries()
        self.assertEqual(len(entries), n * subs + failed, 'sent again: %r' % entries)
        self.assertEqual({(e[0], e[3]) for e in entries}, {('HTTP/2.0', '204')}, entries)
        self.assertEqual(len({e[4] for e in entries}), n)
        self.assertLessEqual(len({e[1] for e in entries}), 2, 'more than one connection a thread')

    def test_http2_no_gives_http11(self):
        nginx, sink, entries = self.deliver_burst('no')
        self.assertEqual({e[0] for e in entries}, {'HTTP/1.1'}, entries)
        # Kept-alive HTTP/1.1 connections, up to one per delivery in flight.
        self.assertLessEqual(len({e[1] for e in entries}), IN_FLIGHT, entries)
        self.assertVerified(sink)

    def test_plain_http_subscriber_stays_http11(self):
        # Beside an https one on HTTP/2: http:// never gets h2c, nor waits.
        plain = self.sink(delay=0.05)
        sink = self.sink()
        nginx = Nginx(self, sink)
        hc = self.start('yes')
        self.assertSuccess(hc.register(plain.address))
        self.assertSuccess(hc.register(nginx.url()))
        for i in range(BURST):
            self.assertSuccess(hc.publish(b'{"n":%d}' % i, content_type='application/json'))
        self.assertEqual(plain.wait_for(BURST, scaled(20)), BURST)
        self.assertEqual(sink.wait_for(BURST, scaled(20)), BURST)
        recs = plain.snapshot()
        self.assertEqual({r.version for r in recs}, {'HTTP/1.1'})
        self.assertFalse([r for r in recs if 'upgrade' in {k.lower() for k in r.headers}
                          or 'http2-settings' in {k.lower() for k in r.headers}])
        # Its transfers ran side by side, on connections of their own.
        self.assertGreater(most_at_once(plain), 1)
        self.assertGreater(len({r.client_port for r in recs}), 1)
        self.assertTrue(wait_until(lambda: len(nginx.entries()) >= BURST, scaled(5)))
        self.assertEqual({e[0] for e in nginx.entries()}, {'HTTP/2.0'})
        self.assertEqual(verify_webhooks([(SECRET, r) for r in recs]), ['ok'] * BURST)

    def test_http2_is_reloadable(self):
        sink = self.sink()
        nginx = Nginx(self, sink)
        hc = self.start('yes')
        self.assertSuccess(hc.register(nginx.url()))
        self.assertSuccess(hc.publish(b'first', content_type='text/plain'))
        self.assertEqual(sink.wait_for(1, scaled(10)), 1)
        with open(hc.config_path, 'w') as f:
            cfg = dict(hc.base_config, ca_file=CERTS['ca.crt'], signing_secret=SECRET,
                       http2='no')
            f.write(''.join('%s %s\n' % kv for kv in cfg.items() if kv[1] is not None))
        seen = len([l for l in hc.lines() if 'reload' in l])
        hc.send_signal(signal.SIGHUP)
        self.assertTrue(wait_until(lambda: len([l for l in hc.lines() if 'reload' in l]) > seen,
                                   scaled(5)), hc.stderr_tail())
        line = [l for l in hc.lines() if 'reload' in l][seen]
        self.assertIn('configuration reloaded', line)
        self.assertIn('http2', line)
        self.assertTrue(wait_until(lambda: len(nginx.entries()) >= 1, scaled(5)))
        self.assertSuccess(hc.publish(b'second', content_type='text/plain'))
        self.assertEqual(sink.wait_for(2, scaled(10)), 2)
        self.assertTrue(wait_until(lambda: len(nginx.entries()) >= 2, scaled(5)))
        self.assertEqual([e[0] for e in nginx.entries()], ['HTTP/2.0', 'HTTP/1.1'])

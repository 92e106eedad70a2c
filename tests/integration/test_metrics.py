"""Metrics and health: /metrics (checked by promtool), /stats, /healthz and /readyz."""

import os
import re
import secrets
import shutil
import subprocess
import time

from harness import (HookcastTestCase, http_request, poll, q, refusing_address, scaled,
                     wait_until)

SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
PROM_CTYPE = 'text/plain; version=0.0.4; charset=utf-8'
ROUTES = {'/registerAndKeepAlive', '/deregister', '/sendMessage', '/sendMessages',
          '/listSubscribers',
          '/deadLetters', '/deadLetters/replay', '/metrics', '/stats', '/healthz',
          '/readyz'}
RESULTS = ('ok', 'failed', 'timeout', 'refused')


def parse(text):
    """{(name, frozenset of (label, value)): value} of every sample in the text."""
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith('#'):
            continue
        m = SAMPLE_RE.match(line)
        if m is None:
            raise AssertionError('not a sample line: %r' % line)
        labels = frozenset(LABEL_RE.findall(m.group(2) or ''))
        samples[(m.group(1), labels)] = float(m.group(3))
    return samples


def get(samples, name, **labels):
    """A sample's value; 0 for a series not (yet) exported, as Prometheus reads it."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def token():
    return 'tok-' + secrets.token_hex(16)


class MetricsTest(HookcastTestCase):

    def scrape(self, hc, headers=None):
        r = hc.request('GET', '/metrics', headers=headers)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header('Content-Type'), PROM_CTYPE)
        return parse(r.text)

    def listing(self, hc, headers=None):
        r = hc.request('GET', '/listSubscribers?format=json', headers=headers)
        self.assertEqual(r.status, 200, r)
        return {s['address']: s for s in r.json()['subscribers']}

    def wait_scrape(self, hc, predicate, timeout, headers=None):
        """Scrapes until predicate(samples) holds; returns the last samples."""
        return poll(lambda: self.scrape(hc, headers), predicate, timeout, 0.05)

    def test_exposition_passes_promtool(self):
        promtool = shutil.which('promtool')
        if promtool is None:
            self.fail('promtool not found: scripts/deps.sh installs it (package prometheus)')
        sink = self.sink()
        hc = self.start_hookcast()
        self.assertSuccess(hc.register(sink.address))
        self.assertSuccess(hc.publish(b'one'))
        # The sink records a request before it answers: wait for hookcast's count.
        self.wait_scrape(hc, lambda s: get(s, 'hookcast_deliveries_total', result='ok'),
                         scaled(5))
        self.assertEqual(hc.request('GET', '/nope').status, 404)
        r = hc.request('GET', '/metrics')
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header('Content-Type'), PROM_CTYPE)
        p = subprocess.run([promtool, 'check', 'metrics'], input=r.body,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
        self.assertEqual(p.returncode, 0, 'promtool check metrics:\n%s\n--- scraped:\n%s'
                         % (p.stdout.decode('utf-8', 'replace'), r.text))
        # Every series doc/operations.md lists, with HELP and TYPE.
        for name, kind in (('hookcast_messages_accepted_total', 'counter'),
                           ('hookcast_deliveries_total', 'counter'),
                           ('hookcast_retries_total', 'counter'),
                           ('hookcast_dead_letters_total', 'counter'),
                           ('hookcast_evictions_total', 'counter'),
                           ('hookcast_http_requests_total', 'counter'),
                           ('hookcast_http_connections_cut_total', 'counter'),
                           ('hookcast_http_connections_refused_total', 'counter'),
                           ('hookcast_http_connections', 'gauge'),
                           ('hookcast_subscribers', 'gauge'),
                           ('hookcast_queued_messages', 'gauge'),
                           ('hookcast_retries_waiting', 'gauge'),
                           ('hookcast_deliveries_in_flight', 'gauge'),
                           ('hookcast_backlog_bytes', 'gauge'),
                           ('hookcast_delivery_duration_seconds', 'histogram'),
                           ('hookcast_publish_to_delivery_seconds', 'histogram')):
            self.assertIn('\n# HELP %s ' % name, '\n' + r.text)
            self.assertIn('\n# TYPE %s %s\n' % (name, kind), '\n' + r.text)
        samples = parse(r.text)
        self.assertEqual(get(samples, 'hookcast_messages_accepted_total'), 1)
        self.assertEqual(get(samples, 'hookcast_deliveries_total', result='ok'), 1)
        self.assertEqual(get(samples, 'hookcast_subscribers', state='active'), 1)
        # HEAD: the same headers, no body.
        r = hc.request('HEAD', '/metrics')
        self.assertEqual((r.status, r.header('Content-Type'), r.body), (200, PROM_CTYPE, b''))

    def test_deliveries_by_result(self):
        ok, bad, hang = self.sink(), self.sink(status=500), self.hanging_sink()
        refused = refusing_address()
        # One attempt each in the test's time: retries are an hour away at most,
        # and the counts are bracketed by the listing's below in case one comes.
        hc = self.start_hookcast('--delivery-timeout', 1, '--retry-schedule', '1h')
        for a in (ok.address, bad.address, hang.address, refused):
            self.assertSuccess(hc.register(a))
        self.assertSuccess(hc.publish(b'to all four'))
        # Until every attempt is over: the listing counts each when it ends.
        done = wait_until(lambda: all(s['delivered' if a == ok.address else 'failed'] >= 1
                                      for a, s in self.listing(hc).items()), scaled(10))
        self.assertTrue(done, self.listing(hc))
        before = self.listing(hc)
        samples = self.scrape(hc)
        after = self.listing(hc)

        def between(result, address, field):
            v = get(samples, 'hookcast_deliveries_total', result=result)
            self.assertGreaterEqual(v, 1, result)
            self.assertTrue(before[address][field] <= v <= after[address][field],
                            '%s: %s, listing %s then %s' % (result, v, before[address][field],
                                                            after[address][field]))
            return v
        n_ok = between('ok', ok.address, 'delivered')
        n_failed = between('failed', bad.address, 'failed')
        n_timeout = between('timeout', hang.address, 'failed')
        n_refused = between('refused', refused, 'failed')
        self.assertEqual(n_ok, 1)
        # Each attempt is timed once, whatever its result.
        total = n_ok + n_failed + n_timeout + n_refused
        hist = 'hookcast_delivery_duration_seconds'
        self.assertEqual(get(samples, hist + '_count'), total)
        self.assertEqual(get(samples, hist + '_bucket', le='+Inf'), total)
        # The timed-out attempts took delivery_timeout (1 s); the others did not.
        self.assertEqual(get(samples, hist + '_bucket', le='0.5'), total - n_timeout)
        self.assertGreaterEqual(get(samples, hist + '_sum'), n_timeout * 0.9)
        # Publish to delivery: one observation for the one success.
        p2d = 'hookcast_publish_to_delivery_seconds'
        self.assertEqual(get(samples, p2d + '_count'), 1)
        self.assertEqual(get(samples, p2d + '_bucket', le='5'), 1)
        self.assertEqual(get(samples, 'hookcast_messages_accepted_total'), 1)
        self.assertEqual(get(samples, 'hookcast_subscribers', state='active'), 4)

    def test_egress_denial_counts_as_refused(self):
        sink = self.sink()
        hc = self.start_hookcast(config={'deny_targets': '127.0.0.0/8',
                                         'retry_schedule': '1h'})
        name = 'localhost:%d' % sink.port
        self.assertSuccess(hc.register(name))
        self.assertSuccess(hc.publish(b'denied'))
        s = hc.wait_subscriber(name, lambda s: s['failed'] >= 1, scaled(5))
        self.assertIn('egress denied', s['last_error'])
        samples = self.scrape(hc)
        self.assertEqual(get(samples, 'hookcast_deliveries_total', result='refused'), 1)
        self.assertEqual(get(samples, 'hookcast_deliveries_total', result='failed'), 0)
        self.assertEqual(sink.count(), 0)

    def test_retries_and_dead_letters_counted(self):
        sink = self.sink(status=500)
        hc = self.start_hookcast('--retry-schedule', '100ms 100ms')
        self.assertSuccess(hc.register(sink.address))
        self.assertSuccess(hc.publish(b'doomed'))
        dls = hc.wait_dead_letters(lambda d: d, scaled(5))
        self.assertEqual(len(dls), 1, dls)
        samples = self.wait_scrape(hc, lambda s: get(s, 'hookcast_dead_letters_total') >= 1,
                                   scaled(2))
        # The first attempt and two retries, all answered 500; then a dead letter.
        self.assertEqual(sink.count(), 3)
        self.assertEqual(get(samples, 'hookcast_deliveries_total', result='failed'), 3)
        self.assertEqual(get(samples, 'hookcast_retries_total'), 2)
        self.assertEqual(get(samples, 'hookcast_dead_letters_total'), 1)
        self.assertEqual(get(samples, 'hookcast_retries_waiting'), 0)
        self.assertEqual(get(samples, 'hookcast_publish_to_delivery_seconds_count'), 0)

    def test_evictions_and_their_dead_letters_counted(self):
        hang = self.hanging_sink()
        quiet = refusing_address()
        hc = self.start_hookcast('--keepalive-ttl', 1, '--reap-interval', 1,
                                 '--max-in-flight', 1, '--delivery-timeout', 2,
                                 '--retry-schedule', '1h')
        self.assertSuccess(hc.register(hang.address))
        self.assertSuccess(hc.register(quiet))
        for i in range(3):
            self.assertSuccess(hc.publish(b'pending %d' % i))
        self.assertTrue(hc.wait_for_log(r'msg="subscriber evicted".*address=%s'
                                        % re.escape(hang.address), scaled(5)))
        self.assertTrue(hc.wait_for_log(r'msg="subscriber evicted".*address=%s'
                                        % re.escape(quiet), scaled(5)))
        # Everything the two had pending becomes a dead letter: 3 each.
        dls = hc.wait_dead_letters(lambda d: len(d) >= 6, scaled(8))
        self.assertEqual(len(dls), 6, dls)
        self.assertEqual({d['reason'] for d in dls}, {'evicted'})
        samples = self.wait_scrape(hc, lambda s: get(s, 'hookcast_dead_letters_total') >= 6,
                                   scaled(2))
        self.assertEqual(get(samples, 'hookcast_evictions_total'), 2)
        self.assertEqual(get(samples, 'hookcast_dead_letters_total'), 6)
        self.assertEqual(get(samples, 'hookcast_subscribers', state='active'), 0)
        self.assertEqual(get(samples, 'hookcast_subscribers', state='failing'), 0)

    def test_gauges_follow_the_subscribers(self):
        hang, bad = self.hanging_sink(), self.sink(status=500)
        hc = self.start_hookcast('--max-in-flight', 1, '--delivery-timeout', 60,
                                 '--failure-threshold', 1, '--retry-schedule', '1h')
        self.assertSuccess(hc.register(hang.address))
        self.assertSuccess(hc.register(bad.address))
        bodies = [b'a' * 100, b'b' * 200, b'c' * 300]
        for b in bodies:
            self.assertSuccess(hc.publish(b))
        # hang: one in flight, two queued.  bad: failing after one 500, that
        # message a retry, the two others queued (in the store).
        want = {('hookcast_subscribers', 'active'): 1, ('hookcast_subscribers', 'failing'): 1,
                ('hookcast_deliveries_in_flight', None): 1,
                ('hookcast_queued_messages', None): 4,
                ('hookcast_retries_waiting', None): 1,
                ('hookcast_backlog_bytes', None): sum(len(b) for b in bodies)}

        def have(s):
            return {k: get(s, k[0], **({'state': k[1]} if k[1] else {})) for k in want}
        samples = self.wait_scrape(hc, lambda s: have(s) == want, scaled(5))
        self.assertEqual(have(samples), want)
        # The same figures as the listing's.
        subs = self.listing(hc)
        self.assertEqual(sum(s['queued'] for s in subs.values()), 4)
        self.assertEqual(sum(s['in_flight'] for s in subs.values()), 1)
        self.assertEqual(subs[bad.address]['state'], 'failing')

    def test_requests_counted_by_endpoint_and_code(self):
        adm = token()
        auth = {'Authorization': 'Bearer ' + adm}
        hc = self.start_hookcast(config={'admin_token': adm})
        calls = [('GET', '/nope', None, 404), ('GET', '/a/b/c?x=1', None, 404),
                 ('POST', '/registerAndKeepAlive', None, 400),
                 ('GET', '/metrics', None, 401),
                 ('GET', '/metrics', {'Authorization': 'Bearer ' + token()}, 401),
                 ('POST', '/metrics', auth, 405),
                 ('GET', '/metrics', auth, 200),
                 ('GET', '/healthz', None, 200), ('HEAD', '/healthz', None, 200),
                 ('GET', '/readyz', None, 200),
                 ('DELETE', '/deregister?address=' + q('127.0.0.1:9'), None, 200),
                 ('POST', '/sendMessage', None, 200)]
        for method, path, headers, status in calls:
            r = hc.request(method, path, headers=headers,
                           body=b'x' if method == 'POST' else None)
            self.assertEqual(r.status, status, '%s %s: %r' % (method, path, r))
        samples = self.scrape(hc, auth)
        want = {('other', '404'): 2, ('/registerAndKeepAlive', '400'): 1,
                ('/metrics', '401'): 2, ('/metrics', '405'): 1, ('/metrics', '200'): 1,
                ('/healthz', '200'): 2, ('/readyz', '200'): 1, ('/deregister', '200'): 1,
                ('/sendMessage', '200'): 1}
        got = {(dict(k[1])['endpoint'], dict(k[1])['code']): v for k, v in samples.items()
               if k[0] == 'hookcast_http_requests_total'}
        self.assertEqual(got, want)
        # Bounded: only the routes' paths and "other", whatever paths were asked for.
        self.assertLessEqual({e for e, _ in got}, ROUTES | {'other'})
        # Counters only grow: a second scrape counts the first.
        again = self.scrape(hc, auth)
        self.assertEqual(get(again, 'hookcast_http_requests_total', endpoint='/metrics',
                             code='200'), 2)

    def test_admin_token_guards_metrics_and_stats_not_probes(self):
        adm, pub = token(), token()
        hc = self.start_hookcast(config={'admin_token': adm, 'publish_token': pub,
                                         'subscribe_token': token()})
        for path in ('/metrics', '/stats'):
            for headers in ({}, {'Authorization': 'Bearer ' + pub}):
                r = hc.request('GET', path, headers=headers)
                self.assertEqual(r.status, 401, '%s with %r: %r' % (path, headers, r))
                self.assertIn('WWW-Authenticate', r.headers)
            r = hc.request('GET', path, headers={'Authorization': 'Bearer ' + adm})
            self.assertEqual(r.status, 200, r)
        # Liveness and readiness probes carry no token, and need none.
        for path in ('/healthz', '/readyz'):
            for headers in ({}, {'Authorization': 'Bearer ' + token()}):
                r = hc.request('GET', path, headers=headers)
                self.assertEqual((r.status, r.body), (200, b'ok\n'), '%s: %r' % (path, r))

    def test_healthz(self):
        hc = self.start_hookcast()
        r = hc.request('GET', '/healthz')
        self.assertEqual((r.status, r.body), (200, b'ok\n'))
        self.assertTextPlain(r)
        r = hc.request('HEAD', '/healthz')
        self.assertEqual((r.status, r.body), (200, b''))
        r = hc.request('POST', '/healthz', body=b'x')
        self.assertEqual((r.status, r.header('Allow'), r.body),
                         (405, 'GET, HEAD', b'Error: Only GET accepted'))

    def test_readyz_503_while_the_disk_is_full_then_200(self):
        # A real full disk, as test_store's: root mounts a 2 MiB tmpfs.
        mnt, why = self.mount_tmpfs('size=2m')
        if mnt is None:
            self.skipTest('cannot mount a 2 MiB tmpfs to fill: %s' % why)
        data = os.path.join(mnt, 'data')
        os.mkdir(data)
        hc = self.start_hookcast(data_dir=data)
        r = hc.request('GET', '/readyz')
        self.assertEqual((r.status, r.body), (200, b'ok\n'))

        # Someone else fills the disk; the next publishes find out.
        filler = os.path.join(mnt, 'filler')
        with open(filler, 'wb') as f:
            try:
                while True:
                    f.write(b'\0' * 65536)
                    f.flush()
            except OSError:
                pass
        refused = None
        for i in range(50):
            r = hc.publish(b'%03d' % i + b'p' * 65533)
            if r.status == 503:
                refused = r
                break
        self.assertIsNotNone(refused, 'publishes still accepted on a full disk')
        self.assertEqual(refused.body, b'Error: Disk full, retry later.')
        r = hc.request('GET', '/readyz')
        self.assertEqual((r.status, r.body), (503, b'store: disk full\n'), r)
        self.assertTextPlain(r)
        r = hc.request('GET', '/healthz')
        self.assertEqual(r.status, 200, 'alive while not ready')
        # Not ready for as long as the disk stays full.
        # A window, not a wait: the store must stay not ready while the disk is full.
        time.sleep(scaled(1.5))
        self.assertEqual(hc.request('GET', '/readyz').status, 503)
        samples = self.scrape(hc)
        self.assertGreaterEqual(get(samples, 'hookcast_http_requests_total',
                                    endpoint='/readyz', code='503'), 2)

        os.unlink(filler)
        ready = wait_until(lambda: hc.request('GET', '/readyz').status == 200, scaled(10),
                           interval=0.1)
        self.assertTrue(ready, hc.request('GET', '/readyz'))
        self.assertEqual(hc.request('GET', '/readyz').body, b'ok\n')
        self.assertSuccess(hc.publish(b'after'))

    def test_stats_shape_and_counts(self):
        ok = self.sink()
        hc = self.start_hookcast('--retry-schedule', '1h')
        self.assertSuccess(hc.register(ok.address))
        for i in range(3):
            self.assertSuccess(hc.publish(b'stat %d' % i))
        refused = refusing_address()
        self.assertSuccess(hc.register(refused))
        self.assertSuccess(hc.publish(b'one more'))
        hc.wait_subscriber(ok.address, lambda s: s['delivered'] >= 4, scaled(5))
        hc.wait_subscriber(refused, lambda s: s['failed'] >= 1, scaled(5))

        r = hc.request('GET', '/stats')
        now = time.time()
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header('Content-Type'), 'application/json')
        doc = r.json()
        self.assertEqual(set(doc), {'interval_s', 'now', 'points'})
        self.assertEqual(doc['interval_s'], 10)
        self.assertIsInstance(doc['now'], int)
        self.assertLess(abs(doc['now'] - now), 3)
        points = doc['points']
        self.assertEqual(len(points), 60)
        for p in points:
            self.assertEqual(set(p), {'t', 'delivered', 'failed', 'accepted'}, p)
            for v in p.values():
                self.assertIsInstance(v, int)
                self.assertGreaterEqual(v, 0)
        ts = [p['t'] for p in points]
        self.assertEqual(ts, list(range(ts[0], ts[0] + 600, 10)))
        self.assertEqual(ts[-1] % 10, 0)
        self.assertTrue(ts[-1] <= doc['now'] < ts[-1] + 10, (ts[-1], doc['now']))
        self.assertEqual(sum(p['delivered'] for p in points), 4)
        self.assertEqual(sum(p['accepted'] for p in points), 4)
        self.assertGreaterEqual(sum(p['failed'] for p in points), 1)
        # The same as the counters they sample.
        samples = self.scrape(hc)
        self.assertEqual(get(samples, 'hookcast_deliveries_total', result='ok'), 4)
        r = hc.request('HEAD', '/stats')
        self.assertEqual((r.status, r.body), (200, b''))
        self.assertEqual(http_request(hc.port, 'POST', '/stats', body=b'').status, 405)

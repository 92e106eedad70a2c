"""The seed API end to end: register, keep-alive, deregister, listings, methods, paths."""

import re
import time

from harness import (HookcastTestCase, parse_ts, refusing_address, scaled,
                     wait_until, RFC3339_Z_RE)

TEXT_LINE_RE = re.compile(r'^(.+)  :  (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)$')
BROWSER_ACCEPT = ('text/html,application/xhtml+xml,application/xml;q=0.9,'
                  'image/avif,image/webp,*/*;q=0.8')
JSON_FIELDS = ('address', 'url', 'shard', 'registered_at', 'last_keepalive', 'expires_at',
               'state', 'queued', 'in_flight', 'delivered', 'failed', 'retrying',
               'last_error')


def documented_shard(address):
    """doc/api.md: FNV-1a 64 of the address's bytes, modulo 64."""
    h = 0xcbf29ce484222325
    for b in address.encode():
        h = ((h ^ b) * 0x100000001b3) % 2**64
    return h % 64


class RegisterTest(HookcastTestCase):

    def test_register_answers_success_and_is_listed(self):
        hc = self.start_hookcast()
        r = hc.register('127.0.0.1:5001')
        self.assertSuccess(r, 'register')
        self.assertTextPlain(r)
        self.assertEqual(hc.addresses(), ['127.0.0.1:5001'])
        self.assertIn('127.0.0.1:5001  :  ', hc.list_text())

    def test_keepalive_refreshes_one_entry(self):
        hc = self.start_hookcast('--keepalive-ttl', 100)
        self.assertSuccess(hc.register('127.0.0.1:5002'))
        first = hc.subscriber('127.0.0.1:5002')
        # The keep-alive must fall in a later whole second than the
        # registration, which was stamped before now.
        now = time.time()
        self.assertTrue(wait_until(lambda: int(time.time()) > int(now), 1.5))
        self.assertSuccess(hc.register('127.0.0.1:5002'), 'keep-alive')
        entries = [s for s in hc.list_json() if s['address'] == '127.0.0.1:5002']
        self.assertEqual(len(entries), 1, entries)
        second = entries[0]
        self.assertGreater(parse_ts(second['last_keepalive']),
                           parse_ts(first['last_keepalive']))
        self.assertGreater(parse_ts(second['expires_at']), parse_ts(first['expires_at']))
        self.assertEqual(parse_ts(second['registered_at']),
                         parse_ts(first['registered_at']),
                         'a keep-alive must not change registered_at')
        lines = hc.list_text().splitlines()
        self.assertEqual(len(lines), 1, lines)
        ts = TEXT_LINE_RE.match(lines[0]).group(2)
        self.assertEqual(int(parse_ts(ts).timestamp()),
                         int(parse_ts(second['last_keepalive']).timestamp()),
                         'the text listing shows the last keep-alive')

    def test_deregister(self):
        hc = self.start_hookcast()
        full = 'http://127.0.0.1:5004/hook'
        for a in ('127.0.0.1:5003', full, '127.0.0.1:5005'):
            self.assertSuccess(hc.register(a))
        r = hc.deregister('127.0.0.1:5003')
        self.assertSuccess(r, 'deregister')
        self.assertTextPlain(r)
        self.assertEqual(hc.addresses(), sorted([full, '127.0.0.1:5005']))
        self.assertSuccess(hc.deregister(full), 'deregister full URL')
        self.assertEqual(hc.addresses(), ['127.0.0.1:5005'])
        self.assertSuccess(hc.deregister('127.0.0.1:5003'), 'deregister again')
        self.assertSuccess(hc.deregister('127.0.0.1:9'), 'deregister unknown')
        self.assertEqual(hc.addresses(), ['127.0.0.1:5005'])

    def test_deregister_missing_address(self):
        hc = self.start_hookcast()
        self.assertSuccess(hc.register('127.0.0.1:5006'))
        for path in ('/deregister', '/deregister?address='):
            with self.subTest(path=path):
                r = hc.request('DELETE', path)
                self.assertEqual((r.status, r.body), (400, b'Error:Wrong input address.'))
        self.assertEqual(hc.addresses(), ['127.0.0.1:5006'])


class ListingTest(HookcastTestCase):

    def test_empty_listings(self):
        hc = self.start_hookcast()
        r = hc.request('GET', '/listSubscribers')
        self.assertEqual((r.status, r.body), (200, b''))
        self.assertTextPlain(r)
        r = hc.request('GET', '/listSubscribers?format=json')
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json(), {'subscribers': []})

    def test_text_lines_exact_and_sorted(self):
        hc = self.start_hookcast()
        addrs = ['127.0.0.1:5030', '127.0.0.1:10', 'http://127.0.0.1:5031/x/y',
                 '127.0.0.1:2', 'localhost:5032']
        before = time.time()
        for a in addrs:
            self.assertSuccess(hc.register(a))
        after = time.time()
        for accept in (None, '*/*', 'text/plain'):
            with self.subTest(accept=accept):
                r = hc.request('GET', '/listSubscribers',
                               headers={'Accept': accept} if accept else {})
                self.assertEqual(r.status, 200)
                self.assertTextPlain(r)
                self.assertTrue(r.text.endswith('\n'), r.text)
                lines = r.text.split('\n')[:-1]
                got = []
                for line in lines:
                    m = TEXT_LINE_RE.match(line)
                    self.assertIsNotNone(m, 'line %r is not "A  :  RFC3339Z"' % line)
                    t = parse_ts(m.group(2)).timestamp()
                    self.assertTrue(int(before) - 1 <= t <= after + 1, line)
                    got.append(m.group(1))
                self.assertEqual(got, sorted(addrs))

    def test_json_fields_and_values(self):
        hc = self.start_hookcast('--keepalive-ttl', 100)
        full = 'http://127.0.0.1:5041/custom/path'
        self.assertSuccess(hc.register('127.0.0.1:5040'))
        self.assertSuccess(hc.register(full))
        for how, path, headers in (
                ('?format=json', '/listSubscribers?format=json', {}),
                ('Accept', '/listSubscribers', {'Accept': 'application/json'})):
            with self.subTest(how=how):
                r = hc.request('GET', path, headers=headers)
                self.assertEqual(r.status, 200)
                self.assertTrue(r.header('Content-Type', '').startswith('application/json'),
                                r.header('Content-Type'))
                doc = r.json()
                self.assertEqual(list(doc), ['subscribers'])
                subs = {s['address']: s for s in doc['subscribers']}
                self.assertEqual(sorted(subs), sorted(['127.0.0.1:5040', full]))
                self.assertEqual(subs['127.0.0.1:5040']['url'], 'http://127.0.0.1:5040/event')
                self.assertEqual(subs[full]['url'], full)
                for s in subs.values():
                    for f in JSON_FIELDS:
                        self.assertIn(f, s)
                    for f in ('registered_at', 'last_keepalive', 'expires_at'):
                        self.assertRegex(s[f], RFC3339_Z_RE)
                    self.assertRecent(s['registered_at'])
                    self.assertRecent(s['last_keepalive'])
                    ttl = (parse_ts(s['expires_at']) -
                           parse_ts(s['last_keepalive'])).total_seconds()
                    self.assertAlmostEqual(ttl, 100, delta=1)
                    for f in ('queued', 'in_flight', 'delivered', 'failed', 'retrying'):
                        self.assertIs(type(s[f]), int, f)
                        self.assertEqual(s[f], 0, f)
                    self.assertEqual(s['state'], 'active')
                    self.assertNotIn('dropped', s, 'nothing is dropped any more')
                    self.assertIsNone(s['last_error'])

    def test_shard_is_the_documented_function_and_survives_restart(self):
        # Nothing is published: these addresses are only registered.
        addresses = ['127.0.0.1:%d' % p for p in range(5100, 5140)]
        addresses += ['http://127.0.0.1:5041/custom/path', '[::1]:5042']
        hc = self.start_hookcast()
        for a in addresses:
            self.assertSuccess(hc.register(a))
        want = {a: documented_shard(a) for a in addresses}
        self.assertGreater(len(set(want.values())), 10, 'the addresses spread')
        for s in hc.list_json():
            self.assertIs(type(s['shard']), int)
            self.assertEqual(s['shard'], want[s['address']], s['address'])
        hc.stop()
        hc = self.start_hookcast(data_dir=hc.data_dir)
        got = {s['address']: s['shard'] for s in hc.list_json()}
        self.assertEqual(got, want)

    def test_json_counters_after_deliveries(self):
        good = self.sink()
        bad = refusing_address()
        # A retry schedule of one hour: each failed delivery waits, counted once.
        hc = self.start_hookcast('--connect-timeout', 2, '--retry-schedule', '1h')
        self.assertSuccess(hc.register(good.address))
        self.assertSuccess(hc.register(bad))
        for i in range(3):
            self.assertSuccess(hc.publish(b'm%d' % i))
        self.assertEqual(good.wait_for(3, scaled(5)), 3)
        g = hc.wait_subscriber(good.address,
                               lambda s: s['delivered'] == 3 and s['in_flight'] == 0,
                               scaled(5))
        self.assertEqual((g['delivered'], g['failed'], g['queued'], g['in_flight'],
                          g['retrying'], g['state'], g['last_error']),
                         (3, 0, 0, 0, 0, 'active', None), g)
        b = hc.wait_subscriber(bad, lambda s: s['failed'] == 3 and s['retrying'] == 3,
                               scaled(8))
        # Three failures (under failure_threshold 5): still active, all three kept.
        self.assertEqual((b['delivered'], b['failed'], b['queued'], b['in_flight'],
                          b['retrying'], b['state']), (0, 3, 0, 0, 3, 'active'), b)
        self.assertIsInstance(b['last_error'], str)
        self.assertTrue(b['last_error'].strip(), b)

    def test_failing_subscriber_in_every_format(self):
        good = self.sink()
        bad = refusing_address()
        hc = self.start_hookcast('--connect-timeout', 2, '--retry-schedule', '1h',
                                 '--failure-threshold', 2)
        self.assertSuccess(hc.register(good.address))
        self.assertSuccess(hc.register(bad))
        for i in range(2):
            self.assertSuccess(hc.publish(b'm%d' % i))
        b = hc.wait_subscriber(bad, lambda s: s['state'] == 'failing', scaled(8))
        self.assertEqual((b['state'], b['failed'], b['delivered']), ('failing', 2, 0), b)
        self.assertEqual(hc.subscriber(good.address)['state'], 'active')
        # Text: the seed's line, with "  failing" after it for a failing one only.
        lines = dict((l.split('  :  ')[0], l) for l in hc.list_text().splitlines())
        self.assertRegex(lines[bad], r'^%s  :  \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ  failing$'
                         % re.escape(bad))
        self.assertRegex(lines[good.address], TEXT_LINE_RE)
        page = hc.request('GET', '/listSubscribers?format=html').text
        self.assertIn('failing', page)
        self.assertIn('active', page)

    def test_html_page(self):
        hc = self.start_hookcast()
        addrs = ['127.0.0.1:5050', 'http://127.0.0.1:5051/in/path']
        for a in addrs:
            self.assertSuccess(hc.register(a))
        # ?format=html: the server-rendered table, for any client.
        for how, headers in (('no Accept', {}), ('browser Accept', {'Accept': BROWSER_ACCEPT})):
            with self.subTest(how='?format=html, ' + how):
                r = hc.request('GET', '/listSubscribers?format=html', headers=headers)
                self.assertEqual(r.status, 200)
                self.assertTrue(r.header('Content-Type', '').startswith('text/html'),
                                r.header('Content-Type'))
                page = r.text
                self.assertRegex(page.lower(), r'<html')
                for a in addrs:
                    self.assertIn(a, page)
                self.assertNoExternalAssets(page)
        # A browser asking for HTML gets the live dashboard (test_dashboard.py),
        # which fetches the listing itself.
        for how, headers in (('browser Accept', {'Accept': BROWSER_ACCEPT}),
                             ('Accept text/html', {'Accept': 'text/html'})):
            with self.subTest(how=how):
                r = hc.request('GET', '/listSubscribers', headers=headers)
                self.assertEqual(r.status, 200)
                self.assertTrue(r.header('Content-Type', '').startswith('text/html'),
                                r.header('Content-Type'))
                self.assertIn('<script src="/dashboard.js"', r.text)
                self.assertNoExternalAssets(r.text)

    def test_html_and_json_escape_odd_addresses(self):
        hc = self.start_hookcast()
        # Characters a URL may carry that mean something in HTML.
        odd = ["http://127.0.0.1:5060/a?x=1&y='z'", 'http://127.0.0.1:5061/(b)+c;d=e']
        for a in odd:
            self.assertSuccess(hc.register(a))
        # Characters a URL may not carry are refused outright.
        for a in ('http://127.0.0.1:5062/<script>alert(1)</script>',
                  'http://127.0.0.1:5063/a"b', 'http://127.0.0.1:5064/caf\u00e9'):
            r = hc.register(a)
            self.assertEqual(r.status, 400, (a, r))
            self.assertIn('Wrong input address', r.text)
        self.assertEqual(hc.addresses(), sorted(odd), 'JSON must round-trip addresses')
        page = hc.request('GET', '/listSubscribers?format=html').text
        self.assertIn('a?x=1&amp;y=&#39;z&#39;', page, 'HTML must escape addresses')
        self.assertNotIn("y='z'", page, 'HTML must escape addresses')

    def assertNoExternalAssets(self, page):
        low = page.lower()
        bad = re.findall(r'\bsrc\s*=\s*["\']?\s*(?:https?:)?//[^"\'\s>]*', low)
        bad += re.findall(r'<link\b[^>]*\bhref\s*=\s*["\']?\s*(?:https?:)?//[^"\'\s>]*', low)
        bad += re.findall(r'@import[^;]*', low)
        bad += re.findall(r'url\(\s*["\']?\s*(?:https?:)?//[^)]*\)', low)
        self.assertEqual(bad, [], 'external assets in the HTML page')

    def test_format_bogus_is_400(self):
        hc = self.start_hookcast()
        r = hc.request('GET', '/listSubscribers?format=bogus')
        self.assertEqual(r.status, 400, r)
        self.assertTrue(r.text.startswith('Error'), r)

    def test_head_listing(self):
        hc = self.start_hookcast()
        self.assertSuccess(hc.register('127.0.0.1:5070'))
        r = hc.request('HEAD', '/listSubscribers')
        self.assertEqual((r.status, r.body), (200, b''))


class MethodAndPathTest(HookcastTestCase):

    WRONG_METHODS = [
        ('GET', '/registerAndKeepAlive?address=127.0.0.1:5080', 'POST', 'Error: Only POST accepted'),
        ('PUT', '/registerAndKeepAlive?address=127.0.0.1:5080', 'POST', 'Error: Only POST accepted'),
        ('DELETE', '/registerAndKeepAlive?address=127.0.0.1:5080', 'POST', 'Error: Only POST accepted'),
        ('GET', '/deregister?address=127.0.0.1:5081', 'DELETE', 'Error: Only DELETE accepted'),
        ('POST', '/deregister?address=127.0.0.1:5081', 'DELETE', 'Error: Only DELETE accepted'),
        ('GET', '/sendMessage', 'POST', 'Error: Only POST accepted'),
        ('PUT', '/sendMessage', 'POST', 'Error: Only POST accepted'),
        ('POST', '/listSubscribers', 'GET', 'Error: Only GET accepted'),
        ('DELETE', '/listSubscribers', 'GET', 'Error: Only GET accepted'),
    ]

    def test_wrong_method_is_405_with_allow_and_seed_text(self):
        sink = self.sink()
        hc = self.start_hookcast()
        self.assertSuccess(hc.register('127.0.0.1:5081'))
        self.assertSuccess(hc.register(sink.address))
        before = hc.addresses()
        for method, path, allow, text in self.WRONG_METHODS:
            with self.subTest(method=method, path=path):
                body = b'payload' if method in ('POST', 'PUT') else None
                r = hc.request(method, path, body=body)
                self.assertEqual(r.status, 405, r)
                allowed = [m.strip() for m in r.header('Allow', '').split(',')]
                self.assertIn(allow, allowed, 'Allow: %r' % r.header('Allow'))
                self.assertEqual(r.body, text.encode())
        self.assertEqual(hc.addresses(), before, 'a 405 must change nothing')
        # A window, not a wait: a delivery, if the 405 made one, would arrive in it.
        time.sleep(0.3)
        self.assertEqual(sink.count(), 0, 'a 405 publish must deliver nothing')

    def test_unknown_path_is_404(self):
        hc = self.start_hookcast()
        for method, path in (('GET', '/index.html'), ('GET', '/nope'), ('POST', '/nope'),
                             ('GET', '/event'), ('POST', '/registerAndKeepAlive/x'),
                             ('GET', '/listSubscribers/extra'),
                             ('POST', '/sendmessage'), ('DELETE', '/deregister/')):
            with self.subTest(method=method, path=path):
                r = hc.request(method, path, body=b'x' if method == 'POST' else None)
                self.assertEqual((r.status, r.body), (404, b'404 page not found\n'))

"""The live dashboard: who gets it, its headers, the cross-origin rule, and a real browser.

The browser is Debian's chromium, headless, driven by dashboard.js (Node,
playwright-core from tests/node_modules) one command at a time, so that the
test can act on hookcast and its subscribers between looks at the page.
Without node or chromium these tests fail: CI installs both.
"""

import json
import os
import queue
import re
import secrets
import shutil
import subprocess
import threading
import time

import harness
from harness import HookcastTestCase, poll, q, scaled

BROWSER_ACCEPT = ('text/html,application/xhtml+xml,application/xml;q=0.9,'
                  'image/avif,image/webp,*/*;q=0.8')
CHROMIUM = os.environ.get('CHROMIUM', '/usr/bin/chromium')
ARTIFACTS = os.path.join(os.path.dirname(harness.BINARY), 'test-artifacts')


def token():
    return 'adm-' + secrets.token_hex(16)


def basic(tok, user='operator'):
    import base64
    return {'Authorization': 'Basic ' + base64.b64encode(
        ('%s:%s' % (user, tok)).encode()).decode()}


def csp(r):
    """The Content-Security-Policy as {directive: [values]}."""
    out = {}
    for part in (r.header('Content-Security-Policy') or '').split(';'):
        words = part.split()
        if words:
            out[words[0]] = words[1:]
    return out


class Browser:
    """tests/integration/dashboard.js: one headless chromium page."""

    def __init__(self, base, password, user='operator'):
        node = shutil.which('node')
        if node is None:
            raise AssertionError('node is not installed (scripts/deps.sh installs it)')
        if not os.access(CHROMIUM, os.X_OK):
            raise AssertionError('%s is missing (scripts/deps.sh installs chromium)'
                                 % CHROMIUM)
        env = dict(os.environ, DASHBOARD_USER=user, DASHBOARD_PASSWORD=password,
                   CHROMIUM=CHROMIUM)
        self.base = base
        self.proc = subprocess.Popen(
            [node, os.path.join(harness.HERE, 'dashboard.js'), base],
            cwd=os.path.dirname(harness.HERE), env=env, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.answers = queue.Queue()
        self.stderr = []
        threading.Thread(target=self._read, args=(self.proc.stdout, self.answers.put),
                         daemon=True).start()
        threading.Thread(target=self._read, args=(self.proc.stderr, self.stderr.append),
                         daemon=True).start()

    @staticmethod
    def _read(stream, put):
        for line in stream:
            put(line)
        put(None)

    def call(self, op, timeout=None, **kw):
        """Runs one command; returns its value or raises with the driver's error."""
        timeout = timeout if timeout is not None else scaled(30)
        kw['op'] = op
        self.proc.stdin.write(json.dumps(kw) + '\n')
        self.proc.stdin.flush()
        try:
            line = self.answers.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError('dashboard.js: no answer to %s in %.0f s' % (op, timeout))
        if line is None:
            self.proc.wait(10)
            raise AssertionError('dashboard.js exited (%s) during %s:\n%s'
                                 % (self.proc.returncode, op, ''.join(self.stderr)))
        answer = json.loads(line)
        if not answer['ok']:
            raise AssertionError('dashboard.js %s: %s' % (op, answer['error']))
        return answer.get('value')

    def eval(self, js, arg=None):
        return self.call('eval', js=js, arg=arg)

    def until(self, js, predicate, timeout, what, arg=None):
        """Evaluates js in the page until predicate(value) holds; returns the value."""
        value = poll(lambda: self.eval(js, arg), predicate, timeout, 0.1)
        if not predicate(value):
            raise AssertionError('%s: not seen within %.1f s; the page shows %r'
                                 % (what, timeout, value))
        return value

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write('{"op": "close"}\n')
                self.proc.stdin.close()
                self.proc.wait(scaled(20))
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait(10)


# What the page shows, read the way a person reads it: each row's cell texts.
SUB_ROWS_JS = """() => Object.fromEntries(
  [...document.querySelectorAll('#subs tbody tr')].map((tr) => {
    const c = [...tr.cells].map((td) => td.textContent);
    return [c[0], {state: c[1], topics: c[2], queued: c[3], in_flight: c[4],
                   delivered: c[5], failed: c[6], error: c[7], left: c[8],
                   url: tr.cells[0].title}];
  }))"""
DEAD_ROWS_JS = """() => [...document.querySelectorAll('#dl tbody tr')].map(
  (tr) => [...tr.cells].slice(0, 6).map((td) => td.textContent))"""
TEXT_JS = "(id) => document.getElementById(id).textContent"
CHART_JS = """() => {
  const line = document.querySelector('#chart polyline.delivered');
  return {legend: document.getElementById('rate-legend').textContent,
          chart: document.getElementById('chart').textContent,
          ys: line ? line.getAttribute('points').trim().split(' ').map(
            (p) => parseFloat(p.split(',')[1])) : []};
}"""
CHART_BASELINE = 128   # dashboard.js: T + (H - T - B), where a rate of 0 is drawn


def seconds_left(text):
    """'1m 58s' -> 118."""
    m = re.fullmatch(r'(?:(\d+)m )?(\d+)s', text)
    if not m:
        raise AssertionError('not a countdown: %r' % text)
    return int(m.group(1) or 0) * 60 + int(m.group(2))


class DashboardHTTPTest(HookcastTestCase):
    """What the endpoints answer, seen with a plain HTTP client."""

    def setUp(self):
        super().setUp()
        self.adm = token()
        self.auth = basic(self.adm)

    def get(self, hc, path, **headers):
        return hc.request('GET', path, headers=dict(self.auth, **headers))

    def test_the_page_its_files_and_their_headers(self):
        hc = self.start_hookcast(config={'admin_token': self.adm})
        self.assertSuccess(hc.register('127.0.0.1:5801'))
        pages = []
        for path, accept in (('/', None), ('/', BROWSER_ACCEPT), ('/', '*/*'),
                             ('/listSubscribers', BROWSER_ACCEPT),
                             ('/listSubscribers', 'text/html')):
            with self.subTest(path=path, accept=accept):
                r = self.get(hc, path, **({'Accept': accept} if accept else {}))
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.header('Content-Type'), 'text/html; charset=utf-8')
                policy = csp(r)
                self.assertEqual(policy.get('default-src'), ["'none'"], policy)
                self.assertEqual(policy.get('script-src'), ["'self'"], policy)
                self.assertEqual(policy.get('connect-src'), ["'self'"], policy)
                self.assertEqual(policy.get('frame-ancestors'), ["'none'"], policy)
                self.assertNotIn("'unsafe-inline'", r.header('Content-Security-Policy'))
                self.assertNotIn("'unsafe-eval'", r.header('Content-Security-Policy'))
                self.assertEqual(r.header('X-Frame-Options'), 'DENY')
                self.assertEqual(r.header('X-Content-Type-Options'), 'nosniff')
                pages.append(r.body)
        self.assertEqual(len(set(pages)), 1, 'every way in gets the same page')
        page = pages[0].decode()
        # Its script and style are files of its own origin: nothing inline, nothing
        # from elsewhere (what the CSP would block anyway, and the browser test sees).
        self.assertEqual(re.findall(r'<script\b[^>]*>', page),
                         ['<script src="/dashboard.js" defer>'])
        self.assertNotRegex(page, r'<style\b|\sstyle\s*=|\son[a-z]+\s*=')
        self.assertEqual(re.findall(r'(?:src|href)="(?!/|data:,)([^"]*)"', page), [])
        self.assertNotIn('127.0.0.1:5801', page, 'the page holds no data: it fetches it')

        for path, ctype in (('/dashboard.js', 'text/javascript; charset=utf-8'),
                            ('/dashboard.css', 'text/css; charset=utf-8')):
            with self.subTest(path=path):
                r = self.get(hc, path)
                self.assertEqual((r.status, r.header('Content-Type')), (200, ctype), r)
                self.assertEqual(r.header('X-Content-Type-Options'), 'nosniff')
                self.assertGreater(len(r.body), 1000)
                self.assertNotRegex(r.text, r'https?://(?!www\.w3\.org/2000/svg)',
                                    'a reference to another origin in %s' % path)
        js = self.get(hc, '/dashboard.js').text
        for sink in ('innerHTML', 'outerHTML', 'insertAdjacentHTML', 'document.write',
                     'eval(', 'new Function'):
            self.assertNotIn(sink, js, 'the script must not parse data as HTML or code')

        r = hc.request('HEAD', '/', headers=self.auth)
        self.assertEqual((r.status, r.body), (200, b''), r)
        self.assertEqual(r.header('Content-Type'), 'text/html; charset=utf-8')
        self.assertEqual(r.header('Content-Length'), str(len(pages[0])))
        r = hc.request('POST', '/', body=b'x', headers=self.auth)
        self.assertEqual((r.status, r.header('Allow')), (405, 'GET, HEAD'), r)

    def test_who_gets_what_on_listSubscribers(self):
        hc = self.start_hookcast(config={'admin_token': self.adm})
        self.assertSuccess(hc.register('127.0.0.1:5802'))
        # curl (Accept: */*), no Accept, and plain text: the seed's lines.
        for accept in ('*/*', None, 'text/plain', 'text/plain, text/html'):
            with self.subTest(accept=accept):
                r = self.get(hc, '/listSubscribers', **({'Accept': accept} if accept else {}))
                self.assertEqual(r.status, 200, r)
                self.assertTextPlain(r)
                self.assertRegex(r.text, r'^127\.0\.0\.1:5802  :  \S+Z\n$')
        r = self.get(hc, '/listSubscribers', Accept='application/json')
        self.assertEqual(r.json()['subscribers'][0]['address'], '127.0.0.1:5802')
        # An explicit format wins over a browser's Accept.
        r = self.get(hc, '/listSubscribers?format=text', Accept=BROWSER_ACCEPT)
        self.assertTextPlain(r)
        # ?format=html: the server-rendered table, with no script at all.
        r = self.get(hc, '/listSubscribers?format=html', Accept=BROWSER_ACCEPT)
        self.assertEqual((r.status, r.header('Content-Type')),
                         (200, 'text/html; charset=utf-8'), r)
        self.assertIn('<td>127.0.0.1:5802</td>', r.text)
        self.assertNotIn('<script', r.text.lower())
        policy = csp(r)
        self.assertEqual(policy.get('default-src'), ["'none'"], policy)
        self.assertNotIn('script-src', policy)
        self.assertEqual(policy.get('frame-ancestors'), ["'none'"], policy)
        self.assertEqual(r.header('X-Frame-Options'), 'DENY')
        self.assertEqual(r.header('X-Content-Type-Options'), 'nosniff')

    def test_every_part_needs_the_admin_token(self):
        hc = self.start_hookcast(config={'admin_token': self.adm})
        for path in ('/', '/dashboard.js', '/dashboard.css', '/listSubscribers'):
            for label, headers in (('no token', {}), ('a wrong one', basic(token()))):
                with self.subTest(path=path, token=label):
                    r = hc.request('GET', path, headers=dict(headers, Accept=BROWSER_ACCEPT))
                    self.assertEqual(r.status, 401, r)
                    # The challenge that makes a browser ask for the token.
                    self.assertIn('Basic realm="hookcast", charset="UTF-8"',
                                  r.headers.get_all('WWW-Authenticate'))
                    self.assertTrue(r.text.startswith('Error: Unauthorized'), r)
            r = hc.request('GET', path, headers={'Authorization': 'Bearer ' + self.adm,
                                                 'Accept': BROWSER_ACCEPT})
            self.assertEqual(r.status, 200, (path, r))

    def test_changes_from_another_origin_are_refused(self):
        sink = self.sink(status=500)
        other = self.sink()
        hc = self.start_hookcast('--retry-schedule', '100ms',
                                 config={'admin_token': self.adm})
        origin = 'http://127.0.0.1:%d' % hc.port
        for s in (sink, other):
            self.assertSuccess(hc.register(s.address))
        self.assertSuccess(hc.publish(b'dead'))
        dl = lambda: hc.request('GET', '/deadLetters?format=json',
                                headers=self.auth).json()['dead_letters']
        self.assertTrue(harness.wait_until(dl, scaled(5)), 'no dead letter to work with')
        self.assertEqual(other.wait_for(1, scaled(5)), 1)
        before = dl()
        sink.status = 200
        count = sink.count()

        cross = [('Origin of another site', {'Origin': 'http://evil.example'}),
                 ('Origin of another port', {'Origin': 'http://127.0.0.1:1'}),
                 ('Origin null', {'Origin': 'null'}),
                 ('Sec-Fetch-Site cross-site', {'Sec-Fetch-Site': 'cross-site'}),
                 ('Sec-Fetch-Site same-site', {'Sec-Fetch-Site': 'same-site'}),
                 ('both, and a right-looking Origin',
                  {'Sec-Fetch-Site': 'cross-site', 'Origin': origin})]
        changes = [('replay', 'POST', '/deadLetters/replay?address=' + q(sink.address)),
                   ('purge', 'DELETE', '/deadLetters?address=' + q(sink.address)),
                   ('deregister', 'DELETE', '/deregister?address=' + q(sink.address)),
                   ('register', 'POST', '/registerAndKeepAlive?address=127.0.0.1:5803'),
                   ('publish', 'POST', '/sendMessage'),
                   ('publish a batch', 'POST', '/sendMessages')]
        for what, method, path in changes:
            for label, headers in cross:
                for creds in ({}, self.auth):
                    with self.subTest(request=what, sent=label, token=bool(creds)):
                        r = hc.request(method, path, body=b'forged' if what.startswith('publish')
                                       else None, headers=dict(headers, **creds))
                        self.assertEqual(r.status, 403, r)
                        self.assertTrue(r.text.startswith('Error: Forbidden'), r.text)
                        # Refused before the token is asked for: no login prompt.
                        self.assertIsNone(r.header('WWW-Authenticate'))
        # A window, not a wait: a refused replay or publish would deliver in it.
        time.sleep(0.3)
        self.assertEqual(dl(), before, 'a refused replay or purge changed the dead letters')
        self.assertEqual(sink.count(), count, 'a refused replay delivered')
        self.assertEqual(other.count(), 1, 'a refused publish delivered')
        self.assertEqual(sorted(s['address'] for s in hc.request(
            'GET', '/listSubscribers?format=json', headers=self.auth).json()['subscribers']),
            sorted([sink.address, other.address]), 'a refused (de)registration changed the map')
        self.assertTrue(hc.wait_for_log(r'msg="cross-origin request refused" '
                                        r'path=/\S+ client=127\.0\.0\.1 refused=\d+',
                                        scaled(2)))

        # Reading is not refused: another origin's page cannot read the answer anyway.
        r = hc.request('GET', '/deadLetters', headers=dict(self.auth, Origin='http://evil.example',
                                                           **{'Sec-Fetch-Site': 'cross-site'}))
        self.assertEqual(r.status, 200, r)
        # The dashboard's own requests (same origin), and curl's (neither header).
        r = hc.request('POST', '/deadLetters/replay?address=' + q(sink.address),
                       headers=dict(self.auth, Origin=origin))
        self.assertEqual((r.status, r.body), (200, b'replayed 1\n'), r)
        self.assertTrue(sink.wait_until(lambda recs: any(
            x.body == b'dead' and x.status == 200 for x in recs), scaled(5)))
        sink.status = 500
        self.assertSuccess(hc.publish(b'dead again'))
        self.assertTrue(harness.wait_until(dl, scaled(5)))
        r = hc.request('DELETE', '/deadLetters?address=' + q(sink.address),
                       headers=dict(self.auth, **{'Sec-Fetch-Site': 'same-origin',
                                                  'Origin': origin}))
        self.assertEqual((r.status, r.body), (200, b'purged 1\n'), r)
        r = hc.request('DELETE', '/deregister?address=' + q(other.address))
        self.assertSuccess(r, 'curl-like deregister')


class DashboardBrowserTest(HookcastTestCase):
    """The page in headless chromium, as an operator uses it."""

    TEST_TIMEOUT = 150

    def setUp(self):
        super().setUp()
        self.adm = token()
        self.auth = basic(self.adm)

    def browser(self, hc):
        b = Browser('http://127.0.0.1:%d' % hc.port, self.adm)
        self._closers.append(b.close)
        return b

    def dead_letters(self, hc):
        r = hc.request('GET', '/deadLetters?format=json', headers=self.auth)
        self.assertEqual(r.status, 200, r)
        return r.json()['dead_letters']

    def test_an_operator_watches_replays_and_purges(self):
        good, late, bad = self.sink(), self.sink(), self.sink(status=500)
        hc = self.start_hookcast('--retry-schedule', '100ms 100ms',
                                 config={'admin_token': self.adm})
        has_stats = hc.request('GET', '/stats', headers=self.auth).status != 404
        self.assertSuccess(hc.request(
            'POST', '/registerAndKeepAlive?address=%s&topic=orders' % q(good.address)))
        for i in range(3):
            self.assertSuccess(hc.request('POST', '/sendMessage?topic=orders',
                                          body=b'order %d' % i))
        self.assertEqual(good.wait_for(3, scaled(5)), 3)

        b = self.browser(hc)
        self.assertEqual(b.call('goto', path='/'), 200)
        rows = b.until(SUB_ROWS_JS, lambda r: good.address in r and
                       r[good.address]['delivered'] == '3', scaled(10),
                       'the registered subscriber with its deliveries')
        row = rows[good.address]
        self.assertEqual((row['state'], row['topics'], row['queued'], row['in_flight'],
                          row['failed'], row['error'], row['url']),
                         ('active', 'orders', '0', '0', '0', '', good.url()), row)
        # Time to eviction, counting down between two refreshes of the data.
        first = seconds_left(row['left'])
        self.assertTrue(100 <= first <= 120, row)
        rows = b.until(SUB_ROWS_JS, lambda r: good.address in r and
                       seconds_left(r[good.address]['left']) < first,
                       scaled(5), 'the countdown moving')
        later = seconds_left(rows[good.address]['left'])
        self.assertLess(later, first, 'the countdown did not move')

        # A subscriber that registers after the page loaded shows up by itself.
        self.assertSuccess(hc.register(late.address))
        rows = b.until(SUB_ROWS_JS, lambda r: late.address in r, scaled(10),
                       'a subscriber registered after the page loaded')
        self.assertEqual(rows[late.address]['topics'], 'all')
        self.assertIn('2 registered', b.eval(TEXT_JS, 'subs-count'))

        # The delivery rate, from /stats.
        if has_stats:
            chart = b.until(CHART_JS, lambda c: c['ys'] and min(c['ys']) < CHART_BASELINE - 1,
                            scaled(25), 'the delivery rate drawn above zero')
            m = re.search(r'delivered (\d+)', chart['legend'])
            self.assertTrue(m and int(m.group(1)) >= 3, chart)
        else:
            chart = b.until(CHART_JS, lambda c: 'no rate data' in c['chart'], scaled(10),
                            'the chart saying there is no rate data')
            self.assertEqual(chart['ys'], [])

        # A failing subscriber's message becomes a dead letter; it is listed.
        self.assertSuccess(hc.register(bad.address))
        b.until(SUB_ROWS_JS, lambda r: bad.address in r, scaled(10), 'the failing subscriber')
        r = hc.publish(b'to replay')
        self.assertSuccess(r)
        mid = r.header('Message-Id')
        dead = b.until(DEAD_ROWS_JS, lambda d: len(d) == 1, scaled(15), 'the dead letter')
        self.assertEqual(dead[0][:5], [mid, bad.address, 'retries exhausted', '3', 'HTTP 500'])
        self.assertRegex(dead[0][5], r'^\d+s ago$')
        rows = b.until(SUB_ROWS_JS, lambda r: r[bad.address]['failed'] == '3', scaled(10),
                       'the failed attempts counted')
        self.assertEqual(rows[bad.address]['error'], 'HTTP 500')
        self.assertEqual(b.eval(TEXT_JS, 'dl-count'), '1')
        os.makedirs(ARTIFACTS, exist_ok=True)
        shot = os.path.join(ARTIFACTS, 'dashboard.png')
        b.call('screenshot', path=shot)
        with open(shot, 'rb') as f:
            self.assertEqual(f.read(8), b'\x89PNG\r\n\x1a\n')
        print('\n    dashboard screenshot: %s' % shot, flush=True)

        # Healthy again, Replay sends it; the subscriber receives it.
        bad.status = 200
        before = bad.count()
        b.call('click', selector='#dl tbody tr:has-text("%s") button.replay' % mid)
        self.assertTrue(bad.wait_until(lambda recs: any(
            x.body == b'to replay' and x.status == 200 and x.webhook_id == mid
            for x in recs[before:]), scaled(10)), 'Replay did not reach the subscriber')
        b.until(TEXT_JS, lambda t: 'replayed 1' in t, scaled(5), 'the replay answer', 'dl-msg')
        b.until(DEAD_ROWS_JS, lambda d: d == [], scaled(10), 'the replayed letter leaving')
        self.assertEqual(self.dead_letters(hc), [])

        # Purge: asked to confirm, then gone, and never delivered.
        bad.status = 500
        r = hc.publish(b'to purge')
        mid2 = r.header('Message-Id')
        b.until(DEAD_ROWS_JS, lambda d: [x[0] for x in d] == [mid2], scaled(15),
                'the second dead letter')
        b.call('click', selector='#dl tbody tr:has-text("%s") button.purge' % mid2)
        b.until(TEXT_JS, lambda t: t == 'No dead letters.', scaled(10), 'the empty list',
                'dl-more')
        self.assertEqual(b.eval(DEAD_ROWS_JS), [])
        self.assertEqual(self.dead_letters(hc), [])
        bad.status = 200
        # A window, not a wait: a purged letter, if replayed, would arrive in it.
        time.sleep(0.5)
        self.assertFalse(any(x.body == b'to purge' and x.status == 200
                             for x in bad.snapshot()), 'a purged letter was delivered')

        # Addresses are shown as text, whatever characters they carry.
        odd = "http://127.0.0.1:%d/a?x=1&y='z'&q=<b>" % bad.port
        self.assertEqual(hc.register(odd).status, 400, 'an address may not carry <')
        odd = "http://127.0.0.1:%d/a?x=1&y='z'&amp;" % bad.port
        self.assertSuccess(hc.register(odd))
        b.until(SUB_ROWS_JS, lambda r: odd in r, scaled(10), 'the odd address, verbatim')
        # The filter narrows the table without asking the server.
        b.call('fill', selector='#filter', text='orders')
        self.assertEqual(list(b.eval(SUB_ROWS_JS)), [good.address])

        seen = b.call('report')
        self.assertEqual(seen['dialogs'], ['Purge the dead letter %s for %s? It cannot '
                                           'be undone.' % (mid2, bad.address)])
        self.assertEqual(seen['foreign'], [], 'requests to other origins')
        self.assertEqual(seen['navigations'], ['http://127.0.0.1:%d/' % hc.port],
                         'the page reloaded')
        self.assertEqual(seen['console'], [], 'console errors')
        self.assertIn('GET /listSubscribers?format=json', seen['requests'])
        self.assertIn('POST /deadLetters/replay?address=%s&id=%s' % (q(bad.address), mid),
                      seen['requests'])

    def test_a_thousand_subscribers(self):
        hc = self.start_hookcast('--durability', 'off', config={'admin_token': self.adm})
        c = harness.Client(hc.port)
        self._closers.append(c.close)
        for i in range(1000):
            self.assertSuccess(c.request('POST', '/registerAndKeepAlive?address=127.0.0.1:%d'
                                         % (20000 + i)))
        b = self.browser(hc)
        self.assertEqual(b.call('goto', path='/listSubscribers'), 200)
        b.until(TEXT_JS, lambda t: t == 'and 500 more (narrow them with the filter)',
                scaled(15), 'the cap on rows', 'subs-more')
        self.assertEqual(b.eval(TEXT_JS, 'subs-count'), '1000 registered')
        self.assertEqual(len(b.eval(SUB_ROWS_JS)), 500)
        # A refresh that changes one subscriber keeps the other rows as they were.
        b.eval("() => { for (const tr of document.querySelectorAll('#subs tbody tr')) "
               "tr.dataset.seen = '1'; }")
        self.assertSuccess(c.request('DELETE', '/deregister?address=127.0.0.1:20000'))
        b.until(TEXT_JS, lambda t: t == '999 registered', scaled(10), 'the removal',
                'subs-count')
        rows = b.eval("() => [...document.querySelectorAll('#subs tbody tr')].map("
                      "(tr) => [tr.cells[0].textContent, tr.dataset.seen || ''])")
        self.assertEqual(len(rows), 500)
        self.assertEqual(rows[0][0], '127.0.0.1:20001')
        self.assertEqual([a for a, s in rows if not s], ['127.0.0.1:20500'],
                         'only the row that came into view is new')
        b.call('fill', selector='#filter', text='127.0.0.1:20999')
        self.assertEqual(list(b.eval(SUB_ROWS_JS)), ['127.0.0.1:20999'])
        self.assertEqual(b.eval(TEXT_JS, 'subs-more'), '')
        self.assertEqual(b.call('report')['console'], [])

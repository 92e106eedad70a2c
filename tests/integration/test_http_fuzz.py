"""Black-box HTTP fuzzing: mutated requests over raw sockets at a running daemon.

Valid requests for every endpoint are mutated (truncated; CR, LF and NUL
injected; numbers made to overflow; pipelined; chunked with odd chunk
sizes; odd Authorization and Accept headers; bytes flipped) and sent from
a few threads.  Afterwards the daemon must be alive, answer /healthz
within a second, have delivered no header a Content-Type tried to add, and
(at stop) have logged no sanitizer report.

The seed is random per run and printed; HOOKCAST_FUZZ_SEED=N replays a
run's requests (their interleaving across threads aside).

Only loopback literals are ever registered: subscriber addresses are never
mutated except by truncation, and every prefix of the addresses used is
either invalid or a loopback (or built-in denied) literal.  So nothing is
resolved and nothing connects beyond this machine; the test checks the
listing for it at the end, and allow_targets keeps a slip from connecting.
"""

import base64
import ipaddress
import json
import os
import random
import socket
import sys
import threading
import time
import urllib.parse

from harness import (HookcastTestCase, raw_connect, read_until_closed,
                     refusing_address, scaled)

TOKENS = {
    'publish': 'fuzz-publish-token-0123456789',
    'subscribe': 'fuzz-subscribe-token-0123456789',
    'admin': 'fuzz-admin-token-0123456789abcd',
}
REQUESTS = 1200         # mutated requests in all
THREADS = 8
MARK = 'X-Injected'     # a header a mutated Content-Type tries to add

OVERFLOWS = ['18446744073709551616', '18446744073709551615', '9223372036854775808',
             '9223372036854775807', '-1', '-9223372036854775809', '0x10', '1e9',
             '+5', ' 5', '000000000000000000000000000001', '4294967296', '99' * 40]
CHUNK_SIZES = ['FFFFFFFFFFFFFFFF', '10000000000000000', '7FFFFFFFFFFFFFFF', '-1',
               '0x5', '5;ext=1', '5 ', ' 5', '', 'g', '00000000000000000005']
ACCEPTS = ['*/*', 'application/json', 'text/html,application/xhtml+xml;q=0.9,*/*;q=0.8',
           'text/html;q=0, */*', 'application/json;q=nan', 'text/plain;q=1e999',
           'text/html;q=-1', ';;;,,,', 'application/json;q=0.5;q=1;q=0',
           ','.join(['text/plain;q=0.%d' % i for i in range(10)] * 40), 'x' * 5000,
           'text/*;q=', '\t*/*\t']
PATHS = ['/registerAndKeepAlive', '/deregister', '/sendMessage', '/sendMessages',
         '/listSubscribers',
         '/deadLetters', '/deadLetters/replay', '/metrics', '/stats', '/healthz',
         '/readyz', '/', '/dashboard.js', '/dashboard.css']


def chunked(body, rnd):
    """BODY in chunks of random sizes, sometimes with extensions or a trailer."""
    out, i = [], 0
    while i < len(body):
        n = rnd.randint(1, max(1, len(body) - i))
        ext = rnd.choice(['', '', ';a=b', ';' + 'e' * 200])
        out.append(b'%x%s\r\n%s\r\n' % (n, ext.encode(), body[i:i + n]))
        i += n
    out.append(b'0\r\n')
    if rnd.random() < 0.3:
        out.append(b'X-Trailer: t\r\n')
    out.append(b'\r\n')
    return b''.join(out)


class Generator:
    """Builds requests from valid ones, then mutates them."""

    def __init__(self, rnd, sink_address, refusing):
        self.rnd = rnd
        # Every prefix of these is invalid or a loopback (or built-in denied) literal.
        self.addresses = [sink_address, refusing, 'http://%s/event' % sink_address,
                          'http://%s/hook?x=1' % refusing, '[::1]:%s' % refusing.split(':')[1]]

    def auth(self, scope):
        rnd = self.rnd
        token = TOKENS[scope]
        r = rnd.random()
        if r < 0.45:
            return 'Bearer ' + token
        if r < 0.7:
            user = rnd.choice(['', 'u', 'admin', 'a b'])
            return 'Basic ' + base64.b64encode(('%s:%s' % (user, token)).encode()).decode()
        odd = [
            'Bearer', 'Bearer ' + token + ' x', 'bEaReR\t' + token + '\t',
            'Basic ' + base64.b64encode(token.encode()).decode(),
            'Basic ' + 'A' * 5000, 'Basic ====', 'Basic dTp4=eA==',
            'Basic ' + base64.b64encode(rnd.randbytes(rnd.randint(0, 900))).decode(),
            'Digest username="x"', 'Bearer ' + 'x' * 9000, '', ' ', 'Bearer ' + token[:-1],
            'Bearer ' + token + '\x00', 'Bearer ' + token + '\r\nX-Other: 1',
        ]
        return rnd.choice(odd)

    def batch_body(self, h):
        """A /sendMessages body: items good and bad, or not JSON at all."""
        rnd = self.rnd
        items = []
        for _ in range(rnd.choice([0, 1, 3, 20])):
            item = rnd.choice([{'body': 'event'}, {'body_base64': 'AAEC/w=='},
                               {'body_base64': 'AAEC/w'}, {'body': 'x', 'body_base64': 'eA=='},
                               {}, 7, {'body': 'x', 'topics': ['t']}])
            if isinstance(item, dict) and rnd.random() < 0.4:
                item = dict(item, content_type=rnd.choice([
                    h.get('Content-Type', ''), 'text/plain\r%s: yes' % MARK, 'a' * 300]))
            if isinstance(item, dict) and rnd.random() < 0.3:
                item = dict(item, topic=rnd.choice([['orders'], 'a,b', ['bad topic'], [3]]))
            if isinstance(item, dict) and rnd.random() < 0.3:
                item = dict(item, idempotency_key=rnd.choice(['k-1', '', 'caf\u00e9', 5]))
            items.append(item)
        body = json.dumps(items).encode()
        return rnd.choice([body, body, body[:rnd.randint(0, len(body))], b'{"body":"x"}',
                           b'[{"body":"a\\u0000"}]', rnd.randbytes(rnd.randint(1, 300))])

    def base(self):
        """One valid request: (method, path, query pairs, headers, body, scope)."""
        rnd = self.rnd
        kind = rnd.randrange(9)
        addr = rnd.choice(self.addresses)
        topics = [('topic', rnd.choice(['orders', 'billing.*', 'a,b', '*', 'x.y.z',
                                        'bad topic', '', 'a' * 130]))
                  for _ in range(rnd.choice([0, 0, 1, 2, 70]))]
        if kind == 0:
            q = [('address', addr)] + topics
            if rnd.random() < 0.3:
                q.append(('secret', rnd.choice([
                    'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
                    'whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYX whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYX',
                    'whsec_xx', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZI=2LaLaSw'])))
            return 'POST', '/registerAndKeepAlive', q, {}, b'', 'subscribe'
        if kind == 1:
            return 'DELETE', '/deregister', [('address', addr)], {}, b'', 'subscribe'
        if kind in (2, 3):
            body = rnd.choice([b'{"event":"paid"}', b'', rnd.randbytes(rnd.randint(1, 3000)),
                               b'x' * 70000])
            h = {'Content-Type': rnd.choice([
                'application/json', 'text/plain; charset=utf-8', '',
                'text/plain\r%s: yes' % MARK, 'text/plain\x0b%s: yes' % MARK,
                'a' * 300, 'text/\x01plain'])}
            if rnd.random() < 0.3:
                h['Idempotency-Key'] = rnd.choice(['k-%d' % rnd.randrange(5), '', 'k' * 300,
                                                   'caf\u00e9', 'a\tb'])
            if rnd.random() < 0.3:
                h['Accept'] = rnd.choice(ACCEPTS)
            if kind == 3 and rnd.random() < 0.5:
                return 'POST', '/sendMessages', topics if rnd.random() < 0.2 else [], \
                    h if rnd.random() < 0.2 else {}, self.batch_body(h), 'publish'
            return 'POST', '/sendMessage', topics, h, body, 'publish'
        if kind == 4:
            q = [('format', rnd.choice(['text', 'json', 'html', 'xml', '']))] \
                if rnd.random() < 0.5 else []
            h = {'Accept': rnd.choice(ACCEPTS)} if rnd.random() < 0.7 else {}
            return rnd.choice(['GET', 'HEAD']), '/listSubscribers', q, h, b'', 'admin'
        if kind == 5:
            q = []
            if rnd.random() < 0.5:
                q.append(('limit', rnd.choice(['1', '100000', '0', '100001'] + OVERFLOWS)))
            if rnd.random() < 0.5:
                q.append(('address', addr))
            if rnd.random() < 0.3:
                q.append(('id', rnd.choice(['msg_0', 'x' * 500, "'; DROP TABLE x; --"])))
            if rnd.random() < 0.3:
                q.append(('format', rnd.choice(['json', 'text', 'html', 'yaml'])))
            method, path = rnd.choice([('GET', '/deadLetters'), ('DELETE', '/deadLetters'),
                                       ('POST', '/deadLetters/replay')])
            return method, path, q, {}, b'', 'admin'
        if kind == 6:
            return 'GET', rnd.choice(['/metrics', '/stats', '/', '/dashboard.js']), [], {}, \
                b'', 'admin'
        if kind == 7:
            return rnd.choice(['GET', 'HEAD']), rnd.choice(['/healthz', '/readyz']), [], {}, \
                b'', 'admin'
        return rnd.choice(['PUT', 'PATCH', 'OPTIONS', 'BREW', 'GET']), rnd.choice(PATHS), \
            [], {}, b'', 'admin'

    def render(self):
        """A request as bytes, and the span of its address value (or None)."""
        rnd = self.rnd
        method, path, q, headers, body, scope = self.base()
        target = path
        if rnd.random() < 0.1:
            target = 'http://localhost' + path     # absolute form
        span = None
        if q:
            parts, at = [], len(method) + 1 + len(target) + 1
            for k, v in q:
                ev = urllib.parse.quote(v, safe=':/[]')
                if k != 'address' and rnd.random() < 0.1:
                    ev = rnd.choice(['%', '%z', '%00', '%0d%0a', '%25', '+']) + ev
                piece = '%s=%s' % (k, ev)
                if k == 'address' and span is None:
                    span = (at + len(k) + 1, at + len(piece))
                parts.append(piece)
                at += len(piece) + 1
            target += '?' + '&'.join(parts)
        lines = ['%s %s HTTP/1.1' % (method, target), 'Host: 127.0.0.1']
        if rnd.random() < 0.85:
            lines.append('Authorization: ' + self.auth(scope))
        for k, v in headers.items():
            lines.append('%s: %s' % (k, v))
        if rnd.random() < 0.2:
            lines.append('Authorization: ' + self.auth(scope))     # a second one
        if rnd.random() < 0.1:
            lines.append(rnd.choice(['Origin: https://evil.example', 'Sec-Fetch-Site: cross-site',
                                     'Sec-Fetch-Site: same-origin', 'Origin: null']))
        if body and rnd.random() < 0.3:
            lines.append('Transfer-Encoding: chunked')
            payload = chunked(body, rnd)
        else:
            payload = body
            if body or method in ('POST', 'PUT', 'DELETE'):
                lines.append('Content-Length: %d' % len(body))
        raw = ('\r\n'.join(lines) + '\r\n\r\n').encode('utf-8', 'surrogateescape') + payload
        return raw, span

    def mutate(self, raw, span):
        """One of the mutations; the address value is only ever truncated."""
        rnd = self.rnd
        lo, hi = span if span else (len(raw), len(raw))

        def pos():
            # Anywhere but inside the address value.
            while True:
                p = rnd.randint(0, len(raw))
                if not lo < p < hi:
                    return p

        m = rnd.randrange(10)
        if m == 0:
            return raw[:rnd.randint(0, len(raw))], 'truncated'
        if m == 1:
            p = pos()
            return raw[:p] + rnd.choice([b'\r\n', b'\r', b'\n', b'\x00', b'\r\n\r\n',
                                         b'\r\n ', b'\x00\r\n']) + raw[p:], 'CR/LF/NUL'
        if m == 2:
            head, sep, rest = raw.partition(b'\r\n\r\n')
            if b'Content-Length: ' in head:
                head = head.replace(b'Content-Length: ', b'Content-Length: ' +
                                    rnd.choice(OVERFLOWS).encode() + b'\r\nX-Was: ', 1)
                return head + sep + rest, 'Content-Length overflow'
            if b'chunked' in head:
                return head + sep + rnd.choice(CHUNK_SIZES).encode() + \
                    b'\r\nabc\r\n0\r\n\r\n', 'chunk size'
            return head + b'\r\nContent-Length: ' + rnd.choice(OVERFLOWS).encode() + sep + \
                rest, 'Content-Length added'
        if m == 3:
            n = rnd.randint(2, 12)
            more = [raw] + [self.render()[0] for _ in range(n - 1)]
            return b''.join(more), 'pipelined'
        if m == 4:
            out = bytearray(raw)
            for _ in range(rnd.randint(1, 8)):
                p = pos()
                if p < len(out):
                    out[p] = rnd.randrange(256)
            return bytes(out), 'flipped'
        if m == 5:
            p = pos()
            return raw[:p] + rnd.choice([b'%', b'%%', b'%00', b'\xff\xfe', b' ', b'?', b'&&',
                                         b'\t', b'\x7f']) + raw[p:], 'odd bytes'
        if m == 6:
            head, sep, rest = raw.partition(b'\r\n\r\n')
            extra = rnd.choice([b'\r\nX-Fold: a\r\n b', b'\r\nHost: second',
                                b'\r\nContent-Length: 0', b'\r\nTransfer-Encoding: gzip, chunked',
                                b'\r\nExpect: 100-continue', b'\r\n' + b'X-H: v\r\n' * 200 + b'X: y',
                                b'\r\nConnection: close', b'\r\nAccept: ' +
                                rnd.choice(ACCEPTS).encode()])
            return head + extra + sep + rest, 'headers'
        if m == 7:
            return raw.replace(b'HTTP/1.1', rnd.choice([b'HTTP/1.0', b'HTTP/2.0', b'HTTP/1.1x',
                                                        b'http/1.1', b'']), 1), 'version'
        return raw, 'as is'


def exchange(port, payload, timeout):
    """Sends payload, half-closes, reads until the daemon closes: the bytes read."""
    try:
        s = raw_connect(port, timeout=timeout)
    except OSError:
        return None
    try:
        try:
            s.sendall(payload)
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        data, _, _ = read_until_closed(s, timeout)
        return data
    finally:
        s.close()


def loopback_literal(address):
    """Whether address (host:port or a URL) names a loopback IP address literally."""
    host = urllib.parse.urlsplit(address if '://' in address else 'http://' + address).hostname
    try:
        return ipaddress.ip_address(host).is_loopback
    except (TypeError, ValueError):
        return False


class HttpFuzzTest(HookcastTestCase):

    def test_mutated_requests(self):
        seed = int(os.environ.get('HOOKCAST_FUZZ_SEED') or random.SystemRandom().randrange(2**32))
        print('\n    test_http_fuzz: seed %d (HOOKCAST_FUZZ_SEED=%d replays it)' % (seed, seed),
              file=sys.stderr)
        sink = self.sink()
        refusing = refusing_address()
        hc = self.start_hookcast(
            '--client-timeout', 2,
            config={'publish_token': TOKENS['publish'],
                    'subscribe_token': TOKENS['subscribe'],
                    'admin_token': TOKENS['admin'],
                    'max_body': '64K',
                    'durability': 'off',
                    'retry_schedule': '100ms 200ms',
                    # Should an address ever slip past the generator, it
                    # still connects nowhere but loopback.
                    'allow_targets': '127.0.0.0/8 ::1/128'})
        auth = {'Authorization': 'Bearer ' + TOKENS['subscribe']}
        r = hc.request('POST', '/registerAndKeepAlive?address=' + sink.address, headers=auth)
        self.assertEqual(r.status, 200, r)

        statuses = {}
        kinds = {}
        silent = {}
        lock = threading.Lock()
        per = REQUESTS // THREADS

        def worker(n):
            rnd = random.Random(seed * 1000 + n)
            gen = Generator(rnd, sink.address, refusing)
            for _ in range(per):
                raw, span = gen.render()
                payload, kind = gen.mutate(raw, span)
                # An incomplete request is answered by no one: do not wait long.
                data = exchange(hc.port, payload, scaled(0.5))
                status = data[9:12].decode('ascii', 'replace') if data else '-'
                with lock:
                    statuses[status] = statuses.get(status, 0) + 1
                    kinds[kind] = kinds.get(kind, 0) + 1
                    if status == '-':
                        silent[kind] = silent.get(kind, 0) + 1

        t0 = time.monotonic()
        threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - t0
        print('    %d requests in %.1f s; mutations %s; answers %s; unanswered by '
              'mutation %s' % (per * THREADS, elapsed, dict(sorted(kinds.items())),
                               dict(sorted(statuses.items())), dict(sorted(silent.items()))),
              file=sys.stderr)

        self.assertTrue(hc.alive(), 'hookcast died; seed %d' % seed)
        # Alive is not enough: it answers at once.
        for _ in range(5):
            t = time.monotonic()
            r = hc.request('GET', '/healthz', timeout=scaled(1))
            took = time.monotonic() - t
            self.assertEqual(r.status, 200, r)
            self.assertLess(took, scaled(1.0), '/healthz took %.2f s; seed %d' % (took, seed))
        self.assertNotIn('500', statuses, 'an internal error answered; seed %d' % seed)

        # Every subscriber is a loopback literal: nothing was resolved or
        # reached beyond this machine.
        r = hc.request('GET', '/listSubscribers?format=json',
                       headers={'Authorization': 'Bearer ' + TOKENS['admin']})
        self.assertEqual(r.status, 200, r)
        for s in r.json()['subscribers']:
            self.assertTrue(loopback_literal(s['address']),
                            'registered %r; seed %d' % (s['address'], seed))

        # Still delivering (to the sink registered again: the fuzz may have
        # deregistered it, or given it topics), and no delivery carried a
        # header a publisher's Content-Type smuggled in.
        r = hc.request('POST', '/registerAndKeepAlive?topic=*&address=' + sink.address,
                       headers=auth)
        self.assertEqual(r.status, 200, r)
        r = hc.request('POST', '/sendMessage', body=b'after the fuzz',
                       headers={'Authorization': 'Bearer ' + TOKENS['publish']})
        self.assertEqual(r.status, 200, r)
        self.assertTrue(sink.wait_until(lambda recs: any(x.body == b'after the fuzz'
                                                         for x in recs), scaled(10)),
                        'the publish after the fuzz was not delivered; seed %d' % seed)
        for rec in sink.snapshot():
            self.assertIsNone(rec.headers.get(MARK),
                              'a delivery carried %s: %r; seed %d' % (MARK, rec, seed))
            self.assertNotIn(MARK.lower(), str(rec.headers.get('Content-Type', '')).lower())

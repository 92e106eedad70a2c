"""Slow, greedy and garbage clients are cut off; the daemon never crashes."""

import random
import socket
import time

from harness import (HookcastTestCase, raw_connect, read_until_closed, scaled,
                     wait_until)


def send_quietly(sock, data):
    """Sends data; the server may close early, which is fine here."""
    try:
        sock.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        pass


class SlowClientTest(HookcastTestCase):

    PARTIAL = [
        ('nothing at all', b''),
        ('half a request line', b'GET /listSubscr'),
        ('headers never finished', b'GET /listSubscribers HTTP/1.1\r\nHost: x\r\n'),
        ('body never finished', b'POST /sendMessage HTTP/1.1\r\nHost: x\r\n'
                                b'Content-Length: 100\r\n\r\n0123456789'),
        ('chunk never finished', b'POST /sendMessage HTTP/1.1\r\nHost: x\r\n'
                                 b'Transfer-Encoding: chunked\r\n\r\n10\r\nabc'),
    ]

    def test_idle_and_partial_clients_are_cut_off(self):
        sink = self.sink()
        hc = self.start_hookcast('--client-timeout', 1)
        self.assertSuccess(hc.register(sink.address))
        socks = []
        for label, data in self.PARTIAL:
            s = raw_connect(hc.port)
            send_quietly(s, data)
            socks.append((label, s))
        for label, s in socks:
            with self.subTest(client=label):
                data, closed, elapsed = read_until_closed(s, scaled(5))
                s.close()
                self.assertTrue(closed, 'connection still open after %.1f s (client_timeout 1)'
                                % elapsed)
                self.assertNotIn(b' 200 ', data[:20])
        self.assertEqual(hc.list_text().count('\n'), 1, 'the daemon still answers')
        self.assertEqual(sink.count(), 0, 'a half-sent body must not be delivered')


class PerIpLimitTest(HookcastTestCase):

    def test_fifth_connection_is_refused(self):
        hc = self.start_hookcast('--max-conns-per-ip', 4, '--client-timeout', 10)
        time.sleep(0.2)  # let the daemon drop the start-up check's connections, if any
        held = [raw_connect(hc.port) for _ in range(4)]
        # Lets the daemon accept the four; nothing shows it from here, and a probe would take a
        # fifth slot.
        time.sleep(0.3)
        fifth = raw_connect(hc.port)
        send_quietly(fifth, b'GET /listSubscribers HTTP/1.1\r\nHost: x\r\n\r\n')
        data, closed, _ = read_until_closed(fifth, scaled(3))
        fifth.close()
        self.assertFalse(data.startswith(b'HTTP/1.1 200'),
                         'the 5th connection from one IP was served')
        self.assertTrue(closed, 'the 5th connection was neither served nor closed')
        # The four held connections are served normally.
        for s in held:
            send_quietly(s, b'GET /listSubscribers HTTP/1.1\r\nHost: x\r\n'
                            b'Connection: close\r\n\r\n')
            data, closed, _ = read_until_closed(s, scaled(3))
            s.close()
            self.assertTrue(data.startswith(b'HTTP/1.1 200'), data[:100])
        # Once they are gone a new connection is accepted again.
        def served():
            try:
                return hc.request('GET', '/listSubscribers', timeout=2).status == 200
            except OSError:
                return False
        self.assertTrue(wait_until(served, scaled(5), 0.1))


class GarbageTest(HookcastTestCase):

    def payloads(self):
        rnd = random.Random(7)
        yield 'random bytes', rnd.randbytes(4096)
        yield 'NULs', b'\x00' * 200 + b'\r\n\r\n'
        yield 'bare newlines', b'\r\n' * 2000
        yield 'HTTP/0.9', b'GET /\r\n\r\n'
        yield 'unknown method', b'BREW /listSubscribers HTTP/1.1\r\nHost: x\r\n\r\n'
        yield 'bad version', b'GET /listSubscribers HTTP/9.9\r\nHost: x\r\n\r\n'
        yield 'no version', b'GET /listSubscribers\r\n\r\n'
        yield 'huge header', (b'GET /listSubscribers HTTP/1.1\r\nHost: x\r\nX-Big: ' +
                              b'a' * 100000 + b'\r\n\r\n')
        yield 'huge URL', b'GET /' + b'u' * 70000 + b' HTTP/1.1\r\nHost: x\r\n\r\n'
        yield 'many headers', (b'GET /listSubscribers HTTP/1.1\r\nHost: x\r\n' +
                               b''.join(b'X-H%d: v\r\n' % i for i in range(3000)) + b'\r\n')
        yield 'header without colon', b'GET /listSubscribers HTTP/1.1\r\nHost x\r\njunk\r\n\r\n'
        yield 'negative Content-Length', (b'POST /sendMessage HTTP/1.1\r\nHost: x\r\n'
                                          b'Content-Length: -5\r\n\r\nabc')
        yield 'non-numeric Content-Length', (b'POST /sendMessage HTTP/1.1\r\nHost: x\r\n'
                                             b'Content-Length: abc\r\n\r\nabc')
        yield 'overflowing Content-Length', (b'POST /sendMessage HTTP/1.1\r\nHost: x\r\n'
                                             b'Content-Length: 99999999999999999999999\r\n\r\n')
        yield 'two Content-Lengths', (b'POST /sendMessage HTTP/1.1\r\nHost: x\r\n'
                                      b'Content-Length: 3\r\nContent-Length: 5\r\n\r\nabcde')
        yield 'bad chunk size', (b'POST /sendMessage HTTP/1.1\r\nHost: x\r\n'
                                 b'Transfer-Encoding: chunked\r\n\r\nZZZ\r\nabc\r\n0\r\n\r\n')
        yield 'huge chunk size', (b'POST /sendMessage HTTP/1.1\r\nHost: x\r\n'
                                  b'Transfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFF\r\nabc\r\n')
        yield 'chunked and Content-Length', (b'POST /sendMessage HTTP/1.1\r\nHost: x\r\n'
                                             b'Content-Length: 5\r\nTransfer-Encoding: chunked'
                                             b'\r\n\r\n0\r\n\r\n')
        yield 'bad percent escapes', (b'POST /registerAndKeepAlive?address=%zz%0%ff%00:80 '
                                      b'HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n')
        yield 'format string address', (b'POST /registerAndKeepAlive?address=%25s%25n%25s:80 '
                                        b'HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n')
        yield 'format string format', (b'GET /listSubscribers?format=%25s%25n%25x HTTP/1.1\r\n'
                                       b'Host: x\r\n\r\n')
        yield 'format string Accept', (b'GET /listSubscribers HTTP/1.1\r\nHost: x\r\n'
                                       b'Accept: %s%n%s%n\r\n\r\n')
        yield 'repeated address', (b'POST /registerAndKeepAlive?address=&address=127.0.0.1:1'
                                   b'&address HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n')
        yield 'absolute URI', (b'GET http://x/listSubscribers HTTP/1.1\r\nHost: x\r\n\r\n')
        yield 'pipelined', b'GET /listSubscribers HTTP/1.1\r\nHost: x\r\n\r\n' * 50
        yield 'Content-Type garbage', (b'POST /sendMessage HTTP/1.1\r\nHost: x\r\nContent-Type: '
                                       + bytes(range(1, 9)) + b'\xff\xfe\r\n'
                                       b'Content-Length: 1\r\n\r\nz')

    def test_garbage_does_not_crash(self):
        sink = self.sink()
        hc = self.start_hookcast('--client-timeout', 1)
        self.assertSuccess(hc.register(sink.address))
        for label, payload in self.payloads():
            with self.subTest(payload=label):
                s = raw_connect(hc.port)
                send_quietly(s, payload)
                try:
                    s.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                read_until_closed(s, scaled(3))
                s.close()
                self.assertTrue(hc.alive(), 'hookcast died on %s' % label)
                r = hc.request('GET', '/listSubscribers?format=json')
                self.assertEqual(r.status, 200, r)
                r.json()
        # Whatever was registered, the listings stay well-formed and the daemon delivers.
        for fmt in ('', '?format=json', '?format=html'):
            self.assertEqual(hc.request('GET', '/listSubscribers' + fmt).status, 200)
        self.assertSuccess(hc.publish(b'still alive'))
        self.assertTrue(wait_until(lambda: b'still alive' in sink.bodies(), scaled(5)),
                        'a publish after the garbage was not delivered')

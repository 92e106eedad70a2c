"""16 threads registering, deregistering, listing and publishing at once."""

import http.client
import json
import threading
import time

from harness import Client, HookcastTestCase, refusing_address, scaled

THREADS = 16
SECONDS = 3.0


class ConcurrencyTest(HookcastTestCase):

    def test_sixteen_threads(self):
        stable = self.sink()
        other = self.sink()
        refusing = refusing_address()
        hc = self.start_hookcast('--connect-timeout', 1, '--delivery-timeout', 5)
        self.assertSuccess(hc.register(stable.address))

        lock = threading.Lock()
        accepted, uncertain, errors = [], [], []
        counts = {'ops': 0}
        stop_at = time.monotonic() + SECONDS

        def check(r, what, status=200, body=b'success'):
            if r.status != status or (body is not None and r.body != body):
                with lock:
                    errors.append('%s: %r' % (what, r))
                return False
            return True

        def worker(i):
            c = Client(hc.port)
            n = 0
            mine = set()
            try:
                while time.monotonic() < stop_at:
                    n += 1
                    kind = n % 3
                    if kind == 0:
                        addr = 'http://%s/t%d/%d' % (other.address, i, n)
                    elif kind == 1:
                        addr = 'http://%s/t%d/%d' % (refusing, i, n)
                    else:
                        addr = refusing  # shared by every thread: same-key races
                    q = addr.replace(':', '%3A').replace('/', '%2F')
                    if check(c.request('POST', '/registerAndKeepAlive?address=' + q),
                             'register'):
                        mine.add(q)
                    body = b'%d-%d' % (i, n)
                    try:
                        r = c.request('POST', '/sendMessage', body=body, retry=False)
                    except (http.client.HTTPException, OSError):
                        with lock:
                            uncertain.append(body)
                        c.close()
                    else:
                        if check(r, 'publish'):
                            with lock:
                                accepted.append(body)
                    if n % 4 == 0:
                        r = c.request('GET', '/listSubscribers?format=json')
                        if check(r, 'list json', body=None):
                            try:
                                json.loads(r.body)
                            except ValueError as e:
                                with lock:
                                    errors.append('invalid JSON listing: %s' % e)
                    elif n % 4 == 2:
                        check(c.request('GET', '/listSubscribers'), 'list text', body=None)
                    if check(c.request('DELETE', '/deregister?address=' + q), 'deregister'):
                        mine.discard(q)
                    with lock:
                        counts['ops'] += 4
            except Exception as e:  # reported, not raised: the thread must finish
                with lock:
                    errors.append('thread %d: %r' % (i, e))
            finally:
                for q in mine:
                    try:
                        c.request('DELETE', '/deregister?address=' + q)
                    except Exception:
                        pass
                c.close()

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(scaled(60))
        self.assertFalse(any(t.is_alive() for t in threads), 'a worker thread hung')
        self.assertEqual(errors[:10], [], '%d unexpected answers' % len(errors))
        self.assertTrue(hc.alive(), 'hookcast died')
        self.assertGreater(len(accepted), THREADS, 'too few publishes got through')

        # The daemon still answers correctly: only the stable subscriber is left...
        self.assertEqual(hc.addresses(), [stable.address])
        self.assertEqual(len(hc.list_text().splitlines()), 1)
        # ...and it receives every accepted message plus a final one, once each.
        self.assertSuccess(hc.publish(b'final'))
        want = set(accepted) | {b'final'}
        stable.wait_for(len(want), scaled(30))
        stable.wait_until(lambda recs: want <= {r.body for r in recs}, scaled(30))
        got = stable.bodies()
        self.assertIn(b'final', got)
        missing = want - set(got)
        self.assertEqual(len(missing), 0, '%d accepted messages never reached the stable '
                         'subscriber (e.g. %r)' % (len(missing), sorted(missing)[:5]))
        self.assertEqual(len(got), len(set(got)), 'duplicate deliveries')
        self.assertTrue(set(got) <= want | set(uncertain), 'deliveries never published')

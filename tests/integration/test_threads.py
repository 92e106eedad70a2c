"""Delivery threads: a subscriber belongs to the thread that owns its shard
(shard % delivery_threads); order, isolation and restarts hold per thread."""

import re
import time

from harness import Client, HookcastTestCase, run_binary, scaled, wait_until


def thread_series(hc, family):
    """{thread index: value} of one per-thread family in /metrics."""
    r = hc.request('GET', '/metrics')
    out = {}
    for m in re.finditer(r'^%s\{thread="(\d+)"\} (\S+)$' % family, r.text, re.M):
        out[int(m.group(1))] = float(m.group(2))
    return out


def wait_series(hc, family, want, timeout):
    """Waits until FAMILY's series are WANT (a registration is answered
    once committed; its thread takes it up just after); returns the last."""
    got = []
    wait_until(lambda: got.append(thread_series(hc, family)) or got[-1] == want, timeout)
    return got[-1]


class ThreadsTest(HookcastTestCase):

    def owners(self, hc, threads):
        """{address: owning thread} from the listing's shard field."""
        return {s['address']: s['shard'] % threads for s in hc.list_json()}

    def sinks_on_every_thread(self, hc, threads, per_thread, **kw):
        """Registers sinks until each thread owns PER_THREAD of them."""
        by_thread = {i: [] for i in range(threads)}
        for _ in range(threads * per_thread * 8):
            if all(len(v) >= per_thread for v in by_thread.values()):
                break
            s = self.sink(**kw)
            self.assertSuccess(hc.register(s.address))
            by_thread[self.owners(hc, threads)[s.address]].append(s)
        self.assertTrue(all(len(v) >= per_thread for v in by_thread.values()),
                        {i: len(v) for i, v in by_thread.items()})
        return by_thread

    def test_subscribers_on_every_thread_get_every_message_in_order(self):
        threads = 4
        hc = self.start_hookcast('--delivery-threads', threads, '--ordered', 'yes')
        by_thread = self.sinks_on_every_thread(hc, threads, 3)
        sinks = [s for v in by_thread.values() for s in v]

        # Each thread owns the subscribers of its shards, as /metrics says.
        want = {i: float(len(v)) for i, v in by_thread.items()}
        self.assertEqual(wait_series(hc, 'hookcast_delivery_thread_subscribers', want,
                                     scaled(3)), want)

        n = 300
        c = Client(hc.port)
        for i in range(n):
            self.assertSuccess(c.request('POST', '/sendMessage', body=b'm-%04d' % i))
        c.close()
        want = [b'm-%04d' % i for i in range(n)]
        for s in sinks:
            self.assertEqual(s.wait_for(n, scaled(15)), n, s.address)
        for s in sinks:
            self.assertEqual(s.bodies(), want, 'out of order or repeated at %s' % s.address)

        # Every thread did its share of the attempts (a sink records a
        # request before it answers: wait for the last answers to count).
        def shares_done():
            a = thread_series(hc, 'hookcast_delivery_thread_deliveries_total')
            return all(a[i] == n * len(v) for i, v in by_thread.items())
        self.assertTrue(wait_until(shares_done, scaled(3)),
                        thread_series(hc, 'hookcast_delivery_thread_deliveries_total'))
        busy = thread_series(hc, 'hookcast_delivery_thread_busy_seconds_total')
        self.assertEqual(sorted(busy), list(range(threads)))
        self.assertTrue(all(v > 0 for v in busy.values()), busy)

    def test_hanging_subscriber_slows_no_one_on_its_thread_or_another(self):
        threads = 2
        hc = self.start_hookcast('--delivery-threads', threads, '--max-in-flight', 4,
                                 '--delivery-timeout', 30, '--shutdown-grace', 1)
        hanging = self.hanging_sink()
        self.assertSuccess(hc.register(hanging.address))
        stuck = self.owners(hc, threads)[hanging.address]
        by_thread = self.sinks_on_every_thread(hc, threads, 1)
        same, other = by_thread[stuck][0], by_thread[1 - stuck][0]

        n = 300
        c = Client(hc.port)
        for i in range(n):
            self.assertSuccess(c.request('POST', '/sendMessage', body=b'e-%d' % i))
        published = time.monotonic()
        c.close()
        for s, where in ((same, 'the same thread'), (other, 'the other thread')):
            self.assertEqual(s.wait_for(n, scaled(10)), n, where)
        lag = time.monotonic() - published
        self.assertLess(lag, scaled(3), 'healthy subscribers lagged %.1f s behind '
                        'the publisher beside a hanging one' % lag)
        self.assertLessEqual(hanging.max_open, 4)
        g = hc.wait_subscriber(hanging.address,
                               lambda s: s['queued'] + s['in_flight'] == n, scaled(3))
        self.assertEqual((g['delivered'], g['queued'] + g['in_flight']), (0, n), g)

    def test_subscribers_of_every_thread_survive_a_restart(self):
        # A backlog on each thread's subscriber (answering 500), kill -9,
        # then a restart with another thread count: the shards move to other
        # threads, and each subscriber still gets everything, in order.
        args = ('--ordered', 'yes', '--retry-schedule', '200ms')
        hc = self.start_hookcast('--delivery-threads', 2, *args)
        by_thread = self.sinks_on_every_thread(hc, 2, 2)
        sinks = [s for v in by_thread.values() for s in v]
        for s in sinks:
            s.status = 500
        n = 40
        for i in range(n):
            self.assertSuccess(hc.publish('r-%02d' % i))
        self.assertTrue(wait_until(lambda: all(s.count() >= 1 for s in sinks), scaled(5)))
        hc.kill9()

        for s in sinks:
            s.status = 200
        hc2 = self.start_hookcast('--delivery-threads', 3, *args, data_dir=hc.data_dir)
        self.assertEqual(sorted(hc2.addresses()), sorted(s.address for s in sinks))
        counts = {i: 0.0 for i in range(3)}
        for t in self.owners(hc2, 3).values():
            counts[t] += 1
        self.assertEqual(wait_series(hc2, 'hookcast_delivery_thread_subscribers', counts,
                                     scaled(3)), counts)
        want = [b'r-%02d' % i for i in range(n)]
        for s in sinks:
            self.assertTrue(s.wait_until(
                lambda snap: [r.body for r in snap if r.status == 200] == want,
                scaled(15)), '%s: %r' % (s.address, [r.body for r in s.snapshot()][-5:]))

    def test_one_thread(self):
        hc = self.start_hookcast('--delivery-threads', 1, '--ordered', 'yes')
        sinks = [self.sink() for _ in range(6)]
        for s in sinks:
            self.assertSuccess(hc.register(s.address))
        self.assertEqual(wait_series(hc, 'hookcast_delivery_thread_subscribers', {0: 6.0},
                                     scaled(3)), {0: 6.0})
        n = 100
        for i in range(n):
            self.assertSuccess(hc.publish('one-%03d' % i))
        want = [b'one-%03d' % i for i in range(n)]
        for s in sinks:
            self.assertEqual(s.wait_for(n, scaled(10)), n)
            self.assertEqual(s.bodies(), want)

    def test_thread_count_is_checked(self):
        for bad in ('0', '65', 'two', '-1', ''):
            with self.subTest(value=bad):
                rc, out, err = run_binary('--delivery-threads', bad, '--check-config')
                self.assertEqual(rc, 2, err)  # a usage error
                self.assertIn('delivery_threads', err)
        rc, out, err = run_binary('--delivery-threads', '64', '--dump-config')
        self.assertEqual(rc, 0, err)
        self.assertIn('delivery_threads 64\n', out)

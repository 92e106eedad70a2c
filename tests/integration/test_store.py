"""The durable store: restarts (clean and kill -9), start-up errors, back-pressure."""

import http.client
import os
import random
import threading
import time

from harness import (Client, Hookcast, HookcastTestCase, MSG_ID_RE, parse_ts,
                     refusing_address, scaled, wait_until)

# Long enough that a subscriber down for a few seconds never runs out of retries
# (full jitter: each wait is uniform in [0, entry]), short enough that it gets
# its messages within about a second of coming back.
PATIENT = '100ms 200ms 300ms 500ms ' + ' '.join(['1s'] * 14)


class RestartTest(HookcastTestCase):

    def test_kill9_mid_burst_every_accepted_message_arrives(self):
        fast = self.sink()
        gate = threading.Event()
        held = self.sink(gate=gate)  # answers nothing before the restart
        args = ('--retry-schedule', PATIENT)
        hc = self.start_hookcast(*args)
        for s in (fast, held):
            self.assertSuccess(hc.register(s.address))

        lock = threading.Lock()
        accepted = {}   # body -> Message-Id
        refused = []    # answers other than 200 success
        cut = []        # threads whose connection died (the kill)

        def publisher(i):
            c = Client(hc.port, timeout=5)
            n = 0
            try:
                while n < 100000:
                    body = b'burst-%d-%d' % (i, n)
                    n += 1
                    try:
                        r = c.request('POST', '/sendMessage', body=body, retry=False)
                    except (http.client.HTTPException, OSError):
                        with lock:  # the fate of this body is unknown
                            cut.append(i)
                        return
                    with lock:
                        if (r.status, r.body) == (200, b'success'):
                            accepted[body] = r.header('Message-Id')
                        else:
                            refused.append(r)
            finally:
                c.close()

        threads = [threading.Thread(target=publisher, args=(i,), daemon=True)
                   for i in range(4)]
        for t in threads:
            t.start()
        self.assertTrue(wait_until(lambda: len(accepted) >= 200, scaled(10)),
                        'only %d publishes accepted' % len(accepted))
        hc.kill9()
        for t in threads:
            t.join(scaled(10))
        self.assertEqual(sorted(cut), [0, 1, 2, 3], 'the kill must land mid-burst')
        self.assertEqual(refused, [])
        accepted = dict(accepted)
        for body, mid in accepted.items():
            self.assertIsNotNone(mid, 'no Message-Id on the answer for %r' % body)
            self.assertRegex(mid, MSG_ID_RE)
        self.assertEqual(len(set(accepted.values())), len(accepted), 'Message-Ids repeat')

        restarted = time.monotonic()
        hc2 = self.start_hookcast(*args, data_dir=hc.data_dir)
        self.assertEqual(hc2.addresses(), sorted([fast.address, held.address]),
                         'subscribers lost in the kill -9')
        gate.set()
        want = set(accepted)
        for s in (fast, held):
            ok = s.wait_until(lambda recs: want <= {r.body for r in recs}, scaled(20))
            missing = want - set(s.bodies())
            self.assertTrue(ok, '%d of %d accepted messages never reached %s, e.g. %r'
                            % (len(missing), len(want), s.address, sorted(missing)[:5]))
        # None of the held subscriber's requests were answered before the kill, so
        # every accepted message must be sent to it again after the restart (the
        # ones in flight at the kill too).
        held.wait_until(lambda recs: want <= {r.body for r in recs if r.arrived >= restarted},
                        scaled(10))
        again = {r.body for r in held.snapshot() if r.arrived >= restarted}
        self.assertEqual(want - again, set(), 'accepted, unanswered before the kill -9, and '
                         'not sent again after the restart')

        ids = {}
        for s in (fast, held):
            for r in s.snapshot():
                ids.setdefault(r.body, set()).add(r.webhook_id)
        for body, seen in ids.items():
            self.assertEqual(len(seen), 1, 'copies of %r carry different webhook-ids %r'
                             % (body, seen))
            if body in accepted:
                self.assertEqual(seen, {accepted[body]},
                                 'webhook-id differs from the Message-Id of %r' % body)
        hc2.wait_subscriber(held.address, lambda s: s['queued'] + s['in_flight'] == 0,
                            scaled(5))

    def test_numbers_are_not_reused_after_everything_was_delivered(self):
        # A clean stop collects every delivered message; the next start must
        # not hand out numbers the saved cursors have already passed, or the
        # collector deletes new messages before they are delivered.
        sink = self.sink()
        args = ('--retry-schedule', '100ms 100ms ' + ' '.join(['300ms'] * 10),
                '--failure-threshold', '1')
        hc = self.start_hookcast(*args)
        self.assertSuccess(hc.register(sink.address))
        for i in range(5):
            self.assertSuccess(hc.publish(b'first-%d' % i))
        self.assertEqual(sink.wait_for(5, scaled(5)), 5)
        hc.wait_subscriber(sink.address, lambda s: s['delivered'] == 5, scaled(5))
        time.sleep(1.2)  # a cursor save and a collection
        hc.stop()

        failing = {'on': True}
        sink.status = lambda i: 500 if failing['on'] else 200
        hc2 = self.start_hookcast(*args, data_dir=hc.data_dir)
        for i in range(5):
            self.assertSuccess(hc2.publish(b'new-%d' % i))
        hc2.wait_subscriber(sink.address, lambda s: s.get('state') == 'failing',
                            scaled(5))
        time.sleep(0.5)  # several collections while it is failing
        failing['on'] = False
        want = {b'new-%d' % i for i in range(5)}
        self.assertTrue(sink.wait_until(
            lambda recs: want <= {r.body for r in recs if r.status == 200},
            scaled(10)), 'messages published after the restart were lost: %r'
            % sorted({r.body for r in sink.snapshot() if r.status == 200}))

    def test_clean_restart_keeps_subscribers_and_pending_messages(self):
        healthy = self.sink()
        down = refusing_address()
        args = ('--retry-schedule', '100ms 200ms 500ms ' + ' '.join(['2s'] * 10),
                '--connect-timeout', 1)
        hc = self.start_hookcast(*args)
        self.assertSuccess(hc.register(healthy.address))
        self.assertSuccess(hc.register(down))
        ids = {}
        for i in range(3):
            r = hc.publish(b'pending-%d' % i)
            self.assertSuccess(r)
            ids[b'pending-%d' % i] = r.header('Message-Id')
        self.assertEqual(healthy.wait_for(3, scaled(5)), 3)
        hc.wait_subscriber(healthy.address, lambda s: s['delivered'] == 3, scaled(5))
        # A refused attempt or more for the one that is down.
        hc.wait_subscriber(down, lambda s: s['failed'] >= 1, scaled(5))
        before = {s['address']: s for s in hc.list_json()}
        hc.stop()

        hc2 = self.start_hookcast(*args, data_dir=hc.data_dir)
        after = {s['address']: s for s in hc2.list_json()}
        self.assertEqual(sorted(after), sorted([healthy.address, down]),
                         'subscribers after a clean restart')
        for a in after:
            for f in ('registered_at', 'last_keepalive'):
                self.assertEqual(parse_ts(after[a][f]), parse_ts(before[a][f]),
                                 '%s of %s changed over the restart' % (f, a))
        self.assertEqual(after[healthy.address].get('state'), 'active', after)

        back = self.sink(port=int(down.rsplit(':', 1)[1]))
        self.assertTrue(back.wait_until(lambda recs: set(ids) <= {r.body for r in recs},
                                        scaled(10)),
                        'messages pending at the shutdown did not arrive after it: %r'
                        % back.snapshot())
        for r in back.snapshot():
            self.assertEqual(r.webhook_id, ids[r.body])
        # A window, not a wait: a message sent again after the restart would arrive in it.
        time.sleep(0.3)
        self.assertEqual(sorted(healthy.bodies()), sorted(ids),
                         'messages delivered before a clean shutdown were sent again')

    def test_keepalive_clock_runs_on_across_restart(self):
        sink = self.sink(status=500)
        args = ('--keepalive-ttl', 2, '--reap-interval', 1, '--retry-schedule', '1h 1h 1h')
        hc = self.start_hookcast(*args)
        self.assertSuccess(hc.register(sink.address))
        t_reg = time.monotonic()
        r = hc.publish(b'left behind')
        self.assertSuccess(r)
        mid = r.header('Message-Id')
        self.assertEqual(sink.wait_for(1, scaled(5)), 1)
        listed = hc.subscriber(sink.address)
        hc.stop()
        time.sleep(max(0.0, t_reg + 3.0 - time.monotonic()))  # quiet for > keepalive_ttl

        hc2 = self.start_hookcast(*args, data_dir=hc.data_dir)
        started = time.monotonic()
        still = hc2.subscriber(sink.address)
        if still is not None:  # the reaper has not run yet
            self.assertEqual(parse_ts(still['last_keepalive']),
                             parse_ts(listed['last_keepalive']),
                             'the restart refreshed the keep-alive clock')
        gone = wait_until(lambda: sink.address not in hc2.addresses(), 1 + scaled(1))
        self.assertTrue(gone, 'quiet for %.1f s (> keepalive_ttl 2), still listed %.1f s '
                        'after the restart' % (time.monotonic() - t_reg,
                                               time.monotonic() - started))
        dls = hc2.wait_dead_letters(lambda d: d, scaled(3))
        self.assertEqual([(d['id'], d['address'], d['reason']) for d in dls],
                         [(mid, sink.address, 'evicted')], dls)


class StartupErrorTest(HookcastTestCase):

    def expect_refusal(self, data_dir, names):
        """Starts on data_dir; expects exit 1 within 5 s with an error line naming names."""
        hc = Hookcast(data_dir=data_dir)
        self._daemons.append(hc)
        rc = hc.run_until_exit(scaled(5))
        self.assertIsNotNone(rc, 'still running 5 s after start on data dir %s' % data_dir)
        self.assertEqual(rc, 1, 'exit code (stderr:\n%s)' % hc.stderr_tail())
        errors = [l for l in hc.lines() if 'level=error' in l]
        self.assertTrue(any(names in l for l in errors),
                        'no level=error line names %s:\n%s' % (names, hc.stderr_tail()))
        self.assertFalse(any('msg="listening"' in l for l in hc.lines()))

    def test_data_dir_is_created(self):
        base = self.make_tmpdir()
        d = os.path.join(base, 'new')
        hc = self.start_hookcast(data_dir=d)
        self.assertSuccess(hc.register('127.0.0.1:5301'))
        self.assertTrue(os.path.isdir(d), 'data_dir was not created')
        self.assertTrue(os.path.isfile(os.path.join(d, 'hookcast.db')),
                        'no hookcast.db in %s: %r' % (d, os.listdir(d)))

    def test_unwritable_data_dir_fails_fast_naming_the_path(self):
        base = self.make_tmpdir()
        f = os.path.join(base, 'file')
        with open(f, 'w') as fh:
            fh.write('a regular file\n')
        # chmod does not stop root, so the cases that hold for everyone come first.
        cases = [('path under a regular file', os.path.join(f, 'sub')),
                 ('a regular file', f)]
        if os.geteuid() != 0:
            ro = os.path.join(base, 'ro')
            os.mkdir(ro)
            os.chmod(ro, 0o500)
            self.after_daemons(lambda: os.chmod(ro, 0o700))
            cases.append(('a 0500 directory', ro))
        else:
            mnt, why = self.mount_tmpfs('ro,size=1m')
            if mnt is not None:  # root cannot write to a read-only mount either
                cases.append(('a read-only mount', mnt))
        for label, path in cases:
            with self.subTest(case=label):
                self.expect_refusal(path, path)

    def test_corrupt_database_is_refused_and_left_alone(self):
        rnd = random.Random(77)
        cases = [('random bytes', rnd.randbytes(16384)),
                 ('SQLite header, garbage after', b'SQLite format 3\x00' + rnd.randbytes(8176)),
                 ('text', b'this is not a database\n' * 200)]
        for label, data in cases:
            with self.subTest(case=label):
                d = self.make_tmpdir()
                db = os.path.join(d, 'hookcast.db')
                with open(db, 'wb') as fh:
                    fh.write(data)
                self.expect_refusal(d, db)
                with open(db, 'rb') as fh:
                    self.assertTrue(fh.read() == data, 'the corrupt file was modified')


class BackPressureTest(HookcastTestCase):

    def fill_until_refused(self, hc, size, limit):
        """Publishes size-byte bodies until one is refused; returns ({body: id}, refusal)."""
        c = Client(hc.port)
        accepted = {}
        try:
            for i in range(limit):
                body = (b'%06d-' % i) + b'b' * (size - 7)
                r = c.request('POST', '/sendMessage', body=body)
                if r.status != 200:
                    return accepted, r
                self.assertSuccess(r)
                accepted[body] = r.header('Message-Id')
        finally:
            c.close()
        self.fail('%d publishes of %d bytes all accepted' % (limit, size))

    def assertRefusal(self, r):
        self.assertEqual(r.status, 503, r)
        ra = r.header('Retry-After')
        self.assertIsNotNone(ra, 'a 503 needs Retry-After')
        self.assertRegex(ra.strip(), r'^[0-9]+$')
        self.assertGreaterEqual(int(ra), 1)

    def recover_and_drain(self, hc, sink, accepted):
        sink.status = 200
        want = set(accepted)
        ok = sink.wait_until(lambda recs: want <= {r.body for r in recs if r.status == 200},
                             scaled(20))
        missing = want - {r.body for r in sink.snapshot() if r.status == 200}
        self.assertTrue(ok, '%d of %d accepted messages never arrived after recovery'
                        % (len(missing), len(want)))
        for r in sink.snapshot():
            self.assertEqual(r.webhook_id, accepted[r.body])
        # Once the backlog is delivered, publishing is accepted again.
        answers = []

        def published():
            answers.append(hc.publish(b'after the drain'))
            return answers[-1].status == 200
        wait_until(published, scaled(10), interval=0.2)
        self.assertSuccess(answers[-1], 'publish after the backlog drained')
        self.assertTrue(sink.wait_until(
            lambda recs: any(r.body == b'after the drain' for r in recs), scaled(5)))

    def test_max_backlog_bytes_503_then_recovers(self):
        sink = self.sink(status=500)
        hc = self.start_hookcast('--max-backlog-bytes', '256K', '--retry-schedule', PATIENT)
        self.assertSuccess(hc.register(sink.address))
        accepted, refusal = self.fill_until_refused(hc, 16384, 200)
        self.assertRefusal(refusal)
        n = len(accepted)
        self.assertGreaterEqual(n, 8, 'refused at %d KiB of a 256 KiB backlog' % (n * 16))
        self.assertLessEqual(n, 18, 'accepted %d KiB over a 256 KiB backlog' % (n * 16))
        self.assertEqual(hc.publish(b'still over').status, 503)
        self.recover_and_drain(hc, sink, accepted)

    def test_full_disk_503_then_recovers(self):
        # Needs root and a kernel that lets us mount a tmpfs; skipped otherwise
        # (max_backlog_bytes above covers the same answer everywhere).
        mnt, why = self.mount_tmpfs('size=2m')
        if mnt is None:
            self.skipTest('cannot mount a 2 MiB tmpfs to fill: %s' % why)
        sink = self.sink(status=500)
        hc = self.start_hookcast('--retry-schedule', PATIENT, data_dir=mnt)
        self.assertSuccess(hc.register(sink.address))
        accepted, refusal = self.fill_until_refused(hc, 65536, 200)
        self.assertRefusal(refusal)
        self.assertGreaterEqual(len(accepted), 4, 'the disk of 2 MiB filled after %d '
                                'messages of 64 KiB' % len(accepted))
        self.assertTrue(hc.alive(), 'hookcast died on a full disk')
        self.recover_and_drain(hc, sink, accepted)

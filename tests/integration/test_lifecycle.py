"""Eviction, shutdown, configuration, command line and logs."""

import os
import re
import signal
import threading
import time

from harness import (HookcastTestCase, http_request, parse_ts, poll,
                     run_binary, scaled, wait_until)

LOG_LINE_RE = re.compile(
    r'^ts=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z level=(error|warn|info|debug) '
    r'msg="[^"]*"( .*)?$')


class EvictionTest(HookcastTestCase):

    def test_silent_subscriber_is_evicted_keeper_stays(self):
        hc = self.start_hookcast('--keepalive-ttl', 2, '--reap-interval', 1)
        silent, keeper = '127.0.0.1:5201', '127.0.0.1:5202'
        self.assertSuccess(hc.register(silent))
        self.assertSuccess(hc.register(keeper))
        t0 = time.monotonic()
        stop = threading.Event()
        keeper_errors = []

        def keep_alive():
            while not stop.wait(0.5):
                r = hc.register(keeper)
                if r.status != 200:
                    keeper_errors.append(r)

        t = threading.Thread(target=keep_alive, daemon=True)
        t.start()
        try:
            # A window, not a wait: the silent one must still be listed 1 s into its 2 s TTL.
            time.sleep(1.0)
            self.assertIn(silent, hc.addresses(), 'evicted before its TTL of 2 s')
            def listed():
                addrs = hc.addresses()
                self.assertIn(keeper, addrs, 'a subscriber that keeps re-registering was evicted')
                return addrs
            addrs = poll(listed, lambda a: silent not in a, t0 + 7 - time.monotonic(), 0.1)
            gone_at = time.monotonic() - t0 if silent not in addrs else None
            self.assertIsNotNone(gone_at, 'silent subscriber still listed after 7 s '
                                 '(keepalive_ttl 2, reap_interval 1)')
            self.assertGreaterEqual(gone_at, 1.5)
            self.assertLessEqual(gone_at, 4.5, 'evicted only after %.1f s' % gone_at)
            self.assertNotIn(silent, hc.list_text())
            # The keeper survives more reaper rounds.
            end = time.monotonic() + 2.5
            while time.monotonic() < end:
                self.assertEqual(hc.addresses(), [keeper])
                time.sleep(0.25)
        finally:
            stop.set()
            t.join(5)
        self.assertEqual(keeper_errors, [])


class ShutdownTest(HookcastTestCase):

    def test_sigterm_lets_in_flight_delivery_finish(self):
        sink = self.sink(delay=2.5)
        hc = self.start_hookcast('--shutdown-grace', 6)
        self.assertSuccess(hc.register(sink.address))
        self.assertSuccess(hc.publish(b'last words'))
        self.assertEqual(sink.wait_for(1, scaled(5)), 1, 'delivery did not start')
        t_sig = time.monotonic()
        hc.send_signal(signal.SIGTERM)

        # It stops accepting while the delivery is still running.
        def refused():
            try:
                http_request(hc.port, 'GET', '/listSubscribers', timeout=0.5)
            except OSError:  # refused, reset, timed out: not served
                return True
            except Exception:  # http.client.RemoteDisconnected and friends
                return True
            return False
        stopped_accepting = wait_until(refused, 1.5, 0.1)
        rec = sink.snapshot()[0]
        self.assertIsNone(rec.done, 'the check above must run while the delivery is in flight')

        rc = hc.wait_exit(scaled(6) + 3)
        t_exit = time.monotonic()
        self.assertIsNotNone(rc, 'no exit within shutdown_grace (6 s) + 3 s')
        hc.finish()
        self.assertTrue(stopped_accepting, 'still answering requests 1.5 s after SIGTERM')
        self.assertIsNotNone(rec.done, 'hookcast exited before the in-flight delivery completed')
        self.assertLessEqual(rec.done, t_exit)
        self.assertGreaterEqual(t_exit - t_sig, 1.0,
                                'exited %.1f s after SIGTERM, before the 2.5 s delivery'
                                % (t_exit - t_sig))
        self.assertEqual(rec.body, b'last words')

    def test_sigterm_with_hanging_subscriber_exits_within_grace(self):
        hanging = self.hanging_sink()
        hc = self.start_hookcast('--shutdown-grace', 1, '--delivery-timeout', 30)
        self.assertSuccess(hc.register(hanging.address))
        for i in range(5):
            self.assertSuccess(hc.publish(b'%d' % i))
        self.assertTrue(wait_until(lambda: hanging.accepted >= 1, scaled(5)))
        t0 = time.monotonic()
        hc.stop(timeout=1 + scaled(4))
        self.assertLess(time.monotonic() - t0, 1 + scaled(4))

    def test_sigint_exits_zero(self):
        hc = self.start_hookcast()
        self.assertSuccess(hc.register('127.0.0.1:5210'))
        hc.stop(sig=signal.SIGINT, timeout=scaled(5))

    def test_idle_sigterm_is_prompt(self):
        hc = self.start_hookcast('--shutdown-grace', 10)
        t0 = time.monotonic()
        hc.stop(timeout=scaled(5))
        self.assertLess(time.monotonic() - t0, scaled(3),
                        'nothing in flight, yet shutdown took the grace period')


class ConfigTest(HookcastTestCase):

    def write(self, name, text):
        path = os.path.join(self.tmpdir(), name)
        with open(path, 'w') as f:
            f.write(text)
        return path

    def tmpdir(self):
        if not hasattr(self, '_tmp'):
            self._tmp = self.make_tmpdir(prefix='hookcast-cfg-')
        return self._tmp

    def assertNamesFileAndLine(self, out, path, line):
        self.assertIn(path, out)
        self.assertTrue(('%s:%d' % (path, line)) in out or
                        re.search(r'line\D{0,3}%d\b' % line, out),
                        'message does not name line %d: %r' % (line, out))

    def test_check_config_accepts_a_good_file(self):
        path = self.write('good.conf', '# comment\n\nkeepalive_ttl 2m\nreap_interval 30s\n'
                          'max_body 2M\nlog_level debug\nmax_queued_bytes 1G\n'
                          'listen 127.0.0.1:0\n   # indented comment\n'
                          'data_dir /nonexistent/hookcast-data\ndurability normal\n'
                          'retry_schedule 100ms 1s 2m 1h 1d\nfailure_threshold 3\n'
                          'ordered yes\nmax_backlog_bytes 2G\ndead_letter_on_evict no\n'
                          'dead_letter_retention 1d\ndead_letter_max 10\n')
        for flag in ('--check-config', '-t'):
            with self.subTest(flag=flag):
                rc, out, err = run_binary('--config', path, flag)
                self.assertEqual(rc, 0, out + err)

    BAD = [
        ('unknown key', 'keepalive_ttl 5\nno_such_key 1\n', 2),
        ('bad duration', '# c\nlog_level info\nkeepalive_ttl abc\n', 3),
        ('negative duration', 'keepalive_ttl -5\n', 1),
        ('bad size suffix', 'max_body 10X\n', 1),
        ('bad log level', '\n\n\n\nlog_level loud\n', 5),
        ('bad listen', 'listen nohost\n', 1),
        ('port out of range', 'listen 127.0.0.1:70000\n', 1),
        ('missing value', 'queue_limit\n', 1),
        ('zero queue', 'queue_limit 0\n', 1),
        ('trailing junk', 'max_in_flight 8 9\n', 1),
        ('retry under 10ms', 'keepalive_ttl 5\nretry_schedule 1s 5ms\n', 2),
        ('retry unit', 'retry_schedule 1x\n', 1),
        ('retry over a day', 'retry_schedule 2d\n', 1),
        ('33 retries', 'retry_schedule ' + ' '.join(['1s'] * 33) + '\n', 1),
        ('bad durability', 'durability sometimes\n', 1),
        ('bad yes or no', 'ordered maybe\n', 1),
        ('zero failure threshold', 'failure_threshold 0\n', 1),
        ('tiny backlog bound', 'max_backlog_bytes 10\n', 1),
    ]

    def test_check_config_rejects_bad_files(self):
        for label, text, line in self.BAD:
            with self.subTest(case=label):
                path = self.write(label.replace(' ', '_') + '.conf', text)
                rc, out, err = run_binary('--config', path, '--check-config')
                self.assertNotEqual(rc, 0, 'accepted: %r' % text)
                self.assertNamesFileAndLine(out + err, path, line)
                self.assertNotIn('AddressSanitizer', err)

    def test_start_with_bad_config_fails(self):
        path = self.write('bad.conf', 'keepalive_ttl 5\nbogus 1\n')
        rc, out, err = run_binary('--config', path, '--listen', '127.0.0.1:0',
                                  timeout=scaled(10))
        self.assertNotEqual(rc, 0)
        self.assertNamesFileAndLine(out + err, path, 2)
        self.assertNotIn('msg="listening"', err)

    def test_unreadable_config(self):
        missing = os.path.join(self.tmpdir(), 'does-not-exist.conf')
        for label, path in (('missing file', missing), ('a directory', self.tmpdir())):
            for extra in (['--check-config'], ['--listen', '127.0.0.1:0']):
                with self.subTest(case=label, args=extra):
                    rc, out, err = run_binary('--config', path, *extra, timeout=scaled(10))
                    self.assertNotEqual(rc, 0)
                    self.assertIn(path, out + err)

    def test_bad_flags(self):
        for args in (['--keepalive-ttl', 'abc'], ['--no-such-flag', '1'],
                     ['--max-body', '-1'], ['--keepalive-ttl']):
            with self.subTest(args=args):
                rc, out, err = run_binary('--listen', '127.0.0.1:0', '--check-config', *args)
                self.assertNotEqual(rc, 0)
                self.assertTrue((out + err).strip(), 'no message')

    def test_flags_override_file_and_suffixes_apply(self):
        cases = [({'keepalive_ttl': '1m'}, (), 60),
                 ({'keepalive_ttl': '1h'}, ('--keepalive-ttl', '7'), 7),
                 ({'keepalive_ttl': '100'}, ('--keepalive-ttl=9',), 9)]
        for cfg, args, want in cases:
            with self.subTest(config=cfg, args=args):
                hc = self.start_hookcast(*args, config=cfg)
                self.assertSuccess(hc.register('127.0.0.1:5220'))
                s = hc.subscriber('127.0.0.1:5220')
                ttl = (parse_ts(s['expires_at']) - parse_ts(s['last_keepalive'])).total_seconds()
                self.assertAlmostEqual(ttl, want, delta=1)
                hc.stop()

    def test_listen_flag_overrides_file(self):
        hc = self.start_hookcast(config={'listen': '127.0.0.1:1'})
        self.assertNotEqual(hc.port, 1)
        self.assertEqual(hc.request('GET', '/listSubscribers').status, 200)


class CommandLineTest(HookcastTestCase):

    def test_version_and_help(self):
        for flag in ('--version', '-v'):
            with self.subTest(flag=flag):
                rc, out, err = run_binary(flag)
                self.assertEqual(rc, 0, err)
                self.assertRegex(out + err, r'\d+\.\d+')
        for flag in ('--help', '-h'):
            with self.subTest(flag=flag):
                rc, out, err = run_binary(flag)
                self.assertEqual(rc, 0, err)
                self.assertIn('--config', out + err)

    def test_shipped_config_is_accepted(self):
        """etc/hookcast.conf, as installed, passes --check-config."""
        path = os.path.join(os.path.dirname(os.path.dirname(
            os.path.dirname(os.path.abspath(__file__)))), 'etc', 'hookcast.conf')
        rc, out, err = run_binary('--config', path, '--check-config')
        self.assertEqual(rc, 0, out + err)

    def test_every_log_line_is_one_leveled_event(self):
        sink = self.sink()
        hc = self.start_hookcast('--log-level', 'debug')
        self.assertSuccess(hc.register(sink.address))
        self.assertSuccess(hc.register('127.0.0.1:1'))
        self.assertSuccess(hc.publish(b'x'))
        self.assertEqual(sink.wait_for(1, scaled(5)), 1)
        hc.request('GET', '/nope')
        hc.register('bad')
        # The refused subscriber's failure is among the lines judged.
        self.assertIsNotNone(hc.wait_for_log(r'msg="delivery failed" address=127\.0\.0\.1:1 ',
                                             scaled(5)), hc.stderr_tail())
        hc.stop()
        lines = hc.lines()
        self.assertTrue(any('msg="listening"' in l for l in lines))
        bad = [l for l in lines if not LOG_LINE_RE.match(l)]
        self.assertEqual(bad, [], 'stderr lines that are not "ts=... level=... msg=..."')

    def test_hostile_values_cannot_forge_log_lines(self):
        """Query parameters and addresses reach the log; none can end a line
        or add a field of its own."""
        hc = self.start_hookcast('--log-level', 'debug')
        forged = '\nts=2026-01-01T00:00:00.000Z level=error msg="forged" x="'
        quoted = 'http://127.0.0.1:9/e?a=b&c="d"'
        hc.purge(id='msg_1' + forged)
        hc.replay(address='127.0.0.1:9' + forged)
        hc.purge(address='a b" level=error msg="forged')
        self.assertSuccess(hc.register('http://127.0.0.1:9/e?a=b'))
        self.assertSuccess(hc.deregister('http://127.0.0.1:9/e?a=b'))
        hc.register(quoted)
        hc.stop()
        lines = hc.lines()
        bad = [l for l in lines if not LOG_LINE_RE.match(l)]
        self.assertEqual(bad, [], 'stderr lines that are not "ts=... level=... msg=..."')
        self.assertFalse([l for l in lines if 'msg="forged"' in l],
                         'a client forged a log line or a field')
        purged = [l for l in lines if 'msg="dead letters purged"' in l]
        self.assertEqual(len(purged), 2, lines)
        self.assertIn(r'id="msg_1\nts=2026-01-01T00:00:00.000Z level=error '
                      r'msg=\"forged\" x=\""', purged[0])
        self.assertIn(r'address="a b\" level=error msg=\"forged"', purged[1])
        # An address with '=' in its query is quoted, as logfmt wants.
        self.assertTrue([l for l in lines if 'msg="subscriber registered" '
                         'address="http://127.0.0.1:9/e?a=b"' in l], lines)


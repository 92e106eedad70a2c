"""systemd: sd_notify on NOTIFY_SOCKET, the watchdog, and the unit file
checked by systemd-analyze (verify, security), as installed by make install."""

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid

from harness import (BINARY, REPO, HookcastTestCase, Hookcast, http_request,
                     scaled, wait_until)

# The exposure `systemd-analyze security --offline=true` gives the unit
# (systemd 252); "Running under systemd" in doc/operations.md records it.
MAX_EXPOSURE = 1.1


class NotifySocket:
    """A stand-in for systemd's notification socket: AF_UNIX, SOCK_DGRAM,
    bound to a path or (abstract=True) to "@name" in the abstract namespace.
    A thread reads every datagram as it arrives, as systemd does: left
    unread, the socket's queue fills up and the daemon's sd_notify waits."""

    def __init__(self, abstract=False):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            name = 'hookcast-test-' + uuid.uuid4().hex
            self.sock.bind('\0' + name)
            self.address = '@' + name
            self._dir = None
        else:
            self._dir = tempfile.mkdtemp(prefix='hookcast-notify-')
            self.address = os.path.join(self._dir, 'notify')
            self.sock.bind(self.address)
        self.cond = threading.Condition()
        self.messages = []   # (monotonic time, text)
        self._closed = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        self.sock.settimeout(0.1)
        while not self._closed:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                break
            with self.cond:
                self.messages.append((time.monotonic(),
                                      data.decode('utf-8', 'replace')))
                self.cond.notify_all()

    def times(self, assignment):
        """When each datagram holding ASSIGNMENT as one of its lines arrived."""
        with self.cond:
            return [t for t, text in self.messages
                    if assignment in text.split('\n')]

    def wait_for(self, assignment, timeout, count=1):
        """Waits until COUNT datagrams hold ASSIGNMENT; returns the first
        such datagram's (time, text), or None on timeout."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                found = [(t, text) for t, text in self.messages
                         if assignment in text.split('\n')]
                if len(found) >= count:
                    return found[0]
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)

    def close(self):
        self._closed = True
        self.thread.join(2)
        self.sock.close()
        if self._dir:
            shutil.rmtree(self._dir, ignore_errors=True)


class NotifyTest(HookcastTestCase):

    def notify_socket(self, abstract=False):
        ns = NotifySocket(abstract=abstract)
        self.after_daemons(ns.close)
        return ns

    def start_notifying(self, ns, *args, env=None, wrap_pid=False, **kw):
        """Starts hookcast with NOTIFY_SOCKET=ns (and ENV).  WRAP_PID runs it
        through sh, which sets WATCHDOG_PID to its own pid and then execs
        hookcast in its place: WATCHDOG_PID is then hookcast's pid, as
        systemd sets it."""
        full = {'NOTIFY_SOCKET': ns.address}
        full.update(env or {})
        h = Hookcast(*args, env=full, **kw)
        if wrap_pid:
            h.argv = ['sh', '-c', 'WATCHDOG_PID=$$ exec "$@"', 'sh'] + h.argv
        self._daemons.append(h)
        h.start()
        return h

    def assertReadyWhenAnswering(self, ns, hc):
        ready = ns.wait_for('READY=1', scaled(5))
        self.assertIsNotNone(ready, 'no READY=1 on NOTIFY_SOCKET; got %r'
                             % ns.messages)
        # Right after READY=1 the API answers at once: it is served, not
        # merely bound.
        t0 = time.monotonic()
        r = http_request(hc.port, 'GET', '/listSubscribers', timeout=1.0)
        self.assertEqual(r.status, 200)
        self.assertLess(time.monotonic() - t0, scaled(1.0))
        self.assertTrue(any(l.startswith('STATUS=') and len(l) > 7
                            for l in ready[1].split('\n')),
                        'READY=1 without a STATUS= line: %r' % ready[1])
        self.assertIsNotNone(hc.wait_for_log(r'msg="started"', scaled(2)))
        return ready

    def test_ready_once_api_answers_and_stopping_before_exit(self):
        ns = self.notify_socket()
        sink = self.sink(delay=1.5)
        hc = self.start_notifying(ns, '--shutdown-grace', 6)
        self.assertReadyWhenAnswering(ns, hc)
        self.assertSuccess(hc.register(sink.address))
        self.assertSuccess(hc.publish(b'in flight at SIGTERM'))
        self.assertEqual(sink.wait_for(1, scaled(5)), 1, 'delivery did not start')

        # STOPPING=1 comes at the signal, while the delivery still runs.
        hc.send_signal(signal.SIGTERM)
        stopping = ns.wait_for('STOPPING=1', scaled(1))
        self.assertIsNotNone(stopping, 'no STOPPING=1 within 1 s of SIGTERM: %r'
                             % ns.messages)
        self.assertTrue(hc.alive(), 'STOPPING=1 only came with the exit')
        self.assertIsNone(sink.snapshot()[0].done)
        hc.finish()
        self.assertIsNotNone(sink.snapshot()[0].done)
        self.assertEqual(len(ns.times('READY=1')), 1, ns.messages)
        self.assertEqual(len(ns.times('STOPPING=1')), 1, ns.messages)
        self.assertLess(ns.times('READY=1')[0], stopping[0])
        # Without WATCHDOG_USEC there is no watchdog to feed.
        self.assertEqual(ns.times('WATCHDOG=1'), [])

    def test_abstract_namespace_socket(self):
        ns = self.notify_socket(abstract=True)
        self.assertTrue(ns.address.startswith('@'))
        hc = self.start_notifying(ns)
        self.assertReadyWhenAnswering(ns, hc)
        hc.stop()
        self.assertIsNotNone(ns.wait_for('STOPPING=1', scaled(1)))

    def test_watchdog_pings_while_idle(self):
        interval = 0.4
        for label, env, wrap in (
                ('WATCHDOG_PID unset', {}, False),
                ('WATCHDOG_PID is hookcast', {}, True)):
            with self.subTest(case=label):
                ns = self.notify_socket()
                env = dict(env, WATCHDOG_USEC=str(int(interval * 1e6)))
                hc = self.start_notifying(ns, env=env, wrap_pid=wrap)
                self.assertIsNotNone(ns.wait_for('READY=1', scaled(5)))
                # Idle: no subscriber, no request.
                # The window the pings are counted in: the sleep is the measurement.
                time.sleep(scaled(2.0))
                pings = ns.times('WATCHDOG=1')
                hc.stop()
                self.assertGreaterEqual(len(pings), 4, 'pings: %r' % pings)
                gaps = [b - a for a, b in zip(pings, pings[1:])]
                # Every half interval: never faster (give or take the
                # receiving thread's jitter), and never as late as the
                # interval, past which systemd would restart it.
                self.assertGreater(min(gaps), interval / 2 * 0.6, gaps)
                self.assertLess(max(gaps), scaled(interval), gaps)

    def test_wedged_delivery_thread_stops_the_watchdog_and_fails_readyz(self):
        # The delivery loop pings the watchdog and beats for /readyz.  Wedge
        # it as a production box can: its log lines go to a stderr nobody
        # reads (a stalled journald), so its write(2) blocks.  Every message
        # for a sink answering 500 becomes a dead letter after one quick
        # retry, one warning line each, written by the delivery thread.
        interval = 0.4
        ns = self.notify_socket()
        sink = self.sink(status=500)
        hc = self.start_notifying(
            ns, env={'WATCHDOG_USEC': str(int(interval * 1e6))},
            config={'retry_schedule': '10ms', 'failure_threshold': '1000000'})
        self.assertIsNotNone(ns.wait_for('READY=1', scaled(5)))
        self.assertEqual(hc.register(sink.address).status, 200)
        self.assertEqual(hc.request('GET', '/readyz').status, 200)
        hc.hold_stderr()
        for i in range(200):
            self.assertEqual(hc.publish('wedge %d' % i).status, 200)

        # /readyz names the thread once its heartbeat is 5 s old.
        answers = []

        def delivery_unready():
            r = hc.request('GET', '/readyz')
            answers.append((r.status, r.text))
            return (r.status == 503 and r.text.startswith('delivery thread ')
                    and ': no heartbeat for ' in r.text)
        self.assertTrue(wait_until(delivery_unready, scaled(20), 0.2),
                        'last /readyz answers: %r' % answers[-3:])
        # Meanwhile the front end answers as ever, and the pings stopped
        # long ago (the last one more than 10 intervals back), so systemd
        # would restart the service.
        self.assertEqual(hc.request('GET', '/healthz').status, 200)
        pings = ns.times('WATCHDOG=1')
        self.assertTrue(pings, 'no WATCHDOG=1 before the wedge')
        self.assertGreater(time.monotonic() - pings[-1], 10 * interval, pings)

        # Unwedged, the loop goes on: pings again, ready again, and every
        # message reached the sink (twice: first try and the retry).
        hc.release_stderr()
        self.assertIsNotNone(ns.wait_for('WATCHDOG=1', scaled(5),
                                         count=len(pings) + 2))
        self.assertTrue(wait_until(
            lambda: hc.request('GET', '/readyz').status == 200, scaled(5)))
        self.assertGreaterEqual(sink.wait_for(400, scaled(10)), 400)
        hc.stop()

    def test_no_watchdog_without_usec_or_for_another_pid(self):
        for label, env in (
                ('no WATCHDOG_USEC', {}),
                ('WATCHDOG_PID of another process',
                 {'WATCHDOG_USEC': '200000', 'WATCHDOG_PID': str(os.getpid())})):
            with self.subTest(case=label):
                ns = self.notify_socket()
                hc = self.start_notifying(ns, env=env)
                self.assertIsNotNone(ns.wait_for('READY=1', scaled(5)))
                # A window, not a wait: a watchdog ping would come in it.
                time.sleep(scaled(1.0))
                hc.stop()
                self.assertEqual(ns.times('WATCHDOG=1'), [], ns.messages)

    def test_without_notify_socket_nothing_is_sent(self):
        # The harness strips NOTIFY_SOCKET; a daemon runs as before.
        hc = self.start_hookcast()
        self.assertNotIn('NOTIFY_SOCKET', hc.env)
        self.assertEqual(hc.request('GET', '/listSubscribers').status, 200)
        hc.stop()
        self.assertFalse([l for l in hc.lines() if 'notify' in l], hc.lines())


def systemd_analyze():
    path = shutil.which('systemd-analyze')
    if path is None:
        raise AssertionError('systemd-analyze is missing: install the Debian '
                             'package systemd (scripts/deps.sh check does)')
    return path


def run_make(target, **variables):
    """Runs `make TARGET` with VARIABLES for the binary under test: its
    directory is the build directory, and it is installed as it is, never
    rebuilt."""
    build = os.path.dirname(BINARY)
    if os.path.basename(BINARY) != 'hookcast':
        raise AssertionError('make install wants BUILD/hookcast, not %s' % BINARY)
    # Not the jobserver of a `make check` this may run under.
    env = {k: v for k, v in os.environ.items()
           if k not in ('MAKEFLAGS', 'MFLAGS', 'MAKELEVEL')}
    argv = ['make', '-s', '--no-print-directory', '-C', REPO,
            'BUILD=' + build, '-o', os.path.join(build, 'hookcast')]
    argv += ['%s=%s' % kv for kv in variables.items()]
    p = subprocess.run(argv + [target], env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60)
    if p.returncode != 0:
        raise AssertionError('make %s failed: %s%s' % (
            target, p.stdout.decode(), p.stderr.decode()))


class UnitTest(HookcastTestCase):

    def install_for_real(self):
        """make install into a temporary directory as if it were the system:
        the unit then names a binary, a config and a man page that exist."""
        root = self.make_tmpdir(prefix='hookcast-unit-')
        run_make('install', PREFIX=root + '/usr', SYSCONFDIR=root + '/etc',
                 UNITDIR=root + '/unit')
        return root, os.path.join(root, 'unit', 'hookcast.service')

    def analyze(self, *args, env=None):
        full = dict(os.environ, SYSTEMD_COLORS='0', SYSTEMD_PAGER='cat',
                    LC_ALL='C.UTF-8')
        full.update(env or {})
        p = subprocess.run([systemd_analyze()] + list(args), env=full,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=60)
        return (p.returncode, p.stdout.decode('utf-8', 'replace'),
                p.stderr.decode('utf-8', 'replace'))

    def test_verify_passes_silently(self):
        root, unit = self.install_for_real()
        with open(unit) as f:
            text = f.read()
        self.assertNotRegex(text, r'@[A-Z]+@', 'placeholders left in the unit')
        self.assertIn('ExecStart=%s/usr/bin/hookcast --config %s/etc/hookcast/'
                      'hookcast.conf' % (root, root), text)
        # verify runs `man 8 hookcast` for Documentation=man:hookcast(8):
        # the page installed alongside is the one it must find.
        rc, out, err = self.analyze('verify', unit,
                                    env={'MANPATH': root + '/usr/share/man'})
        self.assertEqual((rc, err.strip()), (0, ''),
                         'systemd-analyze verify:\n%s%s' % (out, err))
        # It does check: without the man page, Documentation= fails it.
        rc, out, err = self.analyze('verify', unit,
                                    env={'MANPATH': root + '/nowhere'})
        self.assertNotEqual(rc, 0)
        self.assertIn('hookcast(8)', err)

    def test_unit_is_notify_with_watchdog_and_reload(self):
        with open(os.path.join(REPO, 'systemd', 'hookcast.service')) as f:
            text = f.read()
        for line in ('Type=notify', 'NotifyAccess=main', 'WatchdogSec=30s',
                     'ExecReload=/bin/kill -HUP $MAINPID', 'DynamicUser=yes',
                     'StateDirectory=hookcast', 'ProtectSystem=strict',
                     'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX',
                     'SystemCallFilter=@system-service'):
            self.assertRegex(text, r'(?m)^%s$' % re.escape(line))

    def test_security_exposure(self):
        _, unit = self.install_for_real()
        rc, out, err = self.analyze('security', '--offline=true', unit)
        self.assertEqual(rc, 0, out + err)
        m = re.search(r'Overall exposure level for hookcast\.service: '
                      r'(\d+\.\d+)', out)
        self.assertIsNotNone(m, out)
        self.assertLessEqual(float(m.group(1)), MAX_EXPOSURE, out)
        # What it still flags is what doc/operations.md says it flags, and why.
        flagged = set(re.findall(r'(?m)^✗ (\S+)', out))
        with open(os.path.join(REPO, 'doc', 'operations.md'), encoding='utf-8') as f:
            doc = f.read()
        section = doc.split('\n## Running under systemd\n', 1)[1].split('\n## ', 1)[0]
        self.assertIn('%.1f' % float(m.group(1)), section)
        # A table cell escapes its pipes: `AF_(INET\\|INET6)`.
        documented = {n.replace('\\|', '|')
                      for n in re.findall(r'`([A-Za-z]+=[^`]*)`', section)}
        missing = {name for name in flagged if name not in documented}
        self.assertEqual(missing, set(), 'flagged by systemd-analyze security but '
                         'not explained in doc/operations.md:\n' + out)

    def test_install_and_uninstall_layout(self):
        dest = self.make_tmpdir(prefix='hookcast-destdir-')
        run_make('install', DESTDIR=dest, PREFIX='/usr')
        installed = {os.path.relpath(os.path.join(d, f), dest)
                     for d, _, files in os.walk(dest) for f in files}
        self.assertEqual(installed, {'usr/bin/hookcast',
                                     'etc/hookcast/hookcast.conf',
                                     'lib/systemd/system/hookcast.service',
                                     'usr/share/man/man8/hookcast.8'})
        self.assertTrue(os.access(os.path.join(dest, 'usr/bin/hookcast'), os.X_OK))
        for src, dst in (('etc/hookcast.conf', 'etc/hookcast/hookcast.conf'),
                         ('etc/hookcast.8', 'usr/share/man/man8/hookcast.8')):
            with open(os.path.join(REPO, src), 'rb') as a, \
                    open(os.path.join(dest, dst), 'rb') as b:
                self.assertEqual(a.read(), b.read(), dst)
        with open(os.path.join(dest, 'lib/systemd/system/hookcast.service')) as f:
            unit = f.read()
        self.assertIn('ExecStart=/usr/bin/hookcast --config '
                      '/etc/hookcast/hookcast.conf --data-dir ${STATE_DIRECTORY}\n',
                      unit)
        self.assertIn('EnvironmentFile=-/etc/hookcast/tokens.env\n', unit)
        self.assertNotRegex(unit, r'@[A-Z]+@')

        run_make('uninstall', DESTDIR=dest, PREFIX='/usr')
        left = {os.path.relpath(os.path.join(d, f), dest)
                for d, _, files in os.walk(dest) for f in files}
        # The configuration may hold an operator's settings: it stays.
        self.assertEqual(left, {'etc/hookcast/hookcast.conf'})

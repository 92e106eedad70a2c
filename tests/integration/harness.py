"""Fixtures for hookcast's integration tests: the daemon, subscriber sinks, raw sockets.

Everything here is Python 3 standard library.  The daemon under test is the
binary named by $HOOKCAST_BINARY (run.py sets it from --binary).
"""

import base64
import datetime
import fcntl
import http.client
import http.server
import ipaddress
import json
import os
import re
import selectors
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
BINARY = os.path.abspath(os.environ.get('HOOKCAST_BINARY')
                         or os.path.join(REPO, 'build', 'hookcast'))

# Strings that mean a sanitizer (ASan, LSan, TSan, UBSan) reported something.
SANITIZER_MARKERS = ('AddressSanitizer', 'LeakSanitizer', 'ThreadSanitizer',
                     'UndefinedBehaviorSanitizer', 'runtime error')

LISTENING_RE = re.compile(r'msg="listening".*\blisten=127\.0\.0\.1:(\d+)')
RFC3339_Z_RE = re.compile(
    r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$')
# webhook-id of a delivery and Message-Id of a publish answer
MSG_ID_RE = re.compile(r'^msg_[0-9a-f]{32}$')


def _detect_time_scale():
    """Sanitizer builds run slower; waits (never expectations) stretch with them."""
    env = os.environ.get('HOOKCAST_TIME_SCALE')
    if env:
        return float(env)
    try:
        with open(BINARY, 'rb') as f:
            data = f.read()
    except OSError:
        return 1.0
    if b'__tsan_init' in data:
        return 4.0
    if b'__asan_init' in data or b'__ubsan_handle' in data:
        return 2.0
    return 1.0


SCALE = _detect_time_scale()


def scaled(seconds):
    return seconds * SCALE


def parse_ts(text):
    """Parses an RFC3339 UTC timestamp ('...Z') into an aware datetime."""
    if not isinstance(text, str) or not RFC3339_Z_RE.match(text):
        raise ValueError('not an RFC3339 UTC timestamp: %r' % (text,))
    base = text[:19]
    dt = datetime.datetime.strptime(base, '%Y-%m-%dT%H:%M:%S')
    frac = text[19:-1]
    if frac:
        dt = dt.replace(microsecond=int((frac[1:] + '000000')[:6]))
    return dt.replace(tzinfo=datetime.timezone.utc)


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


# Set by a service manager the tests may run under (a CI job run as a unit):
# a daemon under test must not report to it, nor feed its watchdog.
MANAGER_VARS = ('NOTIFY_SOCKET', 'WATCHDOG_USEC', 'WATCHDOG_PID')


def daemon_env(env=None):
    """The environment a daemon runs with: this one without the HOOKCAST_*_TOKEN
    variables a developer's shell may hold (they would lock every test out),
    without HOOKCAST_TEST_RESOLVE (only the test that means it sets it) and
    without a service manager's NOTIFY_SOCKET and WATCHDOG_*, plus env."""
    clean = {k: v for k, v in os.environ.items()
             if not (k.startswith('HOOKCAST_') and k.endswith('_TOKEN'))
             and k != 'HOOKCAST_TEST_RESOLVE' and k not in MANAGER_VARS}
    clean.update(env or {})
    return clean


# Every connection a test makes hookcast open stays on this machine: unless a
# test says otherwise (loopback_only=False), Hookcast runs the daemon with this
# allow-list, so that a delivery to any other address is refused, and a
# refusal of it fails the test (see Hookcast).
LOOPBACK_TARGETS = '127.0.0.0/8 ::1/128'
_LOOPBACK_NETS = tuple(ipaddress.ip_network(n) for n in
                       ('127.0.0.0/8', '::1/128', '::ffff:127.0.0.0/104'))
# The reason hookcast gives for an address in no entry of allow_targets.
NOT_ALLOWED_RE = re.compile(r'\S+ is not in allow_targets')


def off_loopback(value):
    """The entries of an allow_targets value that reach past loopback.

    An entry that does not parse is left out: hookcast refuses it too, and
    then starts no delivery."""
    bad = []
    for word in re.split(r'[\s,]+', value.strip()):
        try:
            net = ipaddress.ip_network(word)
        except ValueError:
            continue
        if not any(net.version == lo.version and net.subnet_of(lo)
                   for lo in _LOOPBACK_NETS):
            bad.append(word)
    return bad


def poll(fetch, predicate, timeout, interval=0.02):
    """Calls fetch() until predicate(value) holds or timeout passes; returns the last value.

    The one polling loop of the tests: for what a test can observe only by
    asking again (a listing, a scrape, the log).  A fixed sleep stands only
    where the test proves that something does not happen within a window."""
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if predicate(value) or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def wait_until(predicate, timeout, interval=0.02):
    """Polls predicate until it returns a true value or timeout passes; returns the last value."""
    return poll(predicate, bool, timeout, interval)


# --------------------------------------------------------------------------
# HTTP client side


class Response:
    def __init__(self, status, reason, headers, body):
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body

    @property
    def text(self):
        return self.body.decode('utf-8', 'replace')

    def header(self, name, default=None):
        return self.headers.get(name, default)

    def json(self):
        return json.loads(self.body.decode('utf-8'))

    def __repr__(self):
        return '<Response %d %r %r>' % (self.status, dict(self.headers.items()),
                                        self.body[:300])


def http_request(port, method, path, body=None, headers=None, timeout=10.0,
                 encode_chunked=False, context=None, host='127.0.0.1'):
    """One request on a fresh connection, closed afterwards.

    With context (an ssl.SSLContext) the request goes over HTTPS to host."""
    if context is not None:
        conn = http.client.HTTPSConnection(host, port, timeout=timeout,
                                           context=context)
    else:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {},
                     encode_chunked=encode_chunked)
        r = conn.getresponse()
        data = r.read()
        return Response(r.status, r.reason, r.headers, data)
    finally:
        conn.close()


class Client:
    """A keep-alive HTTP client (one connection, reopened when the server closes it)."""

    def __init__(self, port, timeout=10.0):
        self.port = port
        self.timeout = timeout
        self.conn = None

    def request(self, method, path, body=None, headers=None, retry=True):
        for attempt in (0, 1):
            fresh = self.conn is None
            if fresh:
                self.conn = http.client.HTTPConnection('127.0.0.1', self.port,
                                                       timeout=self.timeout)
            try:
                self.conn.request(method, path, body=body, headers=headers or {})
                r = self.conn.getresponse()
                data = r.read()
                if r.will_close:
                    self.close()
                return Response(r.status, r.reason, r.headers, data)
            except (http.client.RemoteDisconnected, BrokenPipeError,
                    ConnectionResetError):
                self.close()
                # Only a reused keep-alive connection the server had closed is retried.
                if fresh or attempt or not retry:
                    raise
        raise AssertionError('unreachable')

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def q(address):
    return urllib.parse.quote(address, safe='')


def raw_connect(port, timeout=5.0):
    s = socket.create_connection(('127.0.0.1', port), timeout=timeout)
    return s


def read_until_closed(sock, timeout):
    """Reads until the peer closes (EOF or reset) or timeout passes.

    Returns (data, closed, elapsed)."""
    start = time.monotonic()
    deadline = start + timeout
    chunks = []
    closed = False
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        sock.settimeout(left)
        try:
            data = sock.recv(65536)
        except socket.timeout:
            break
        except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError):
            closed = True
            break
        if not data:
            closed = True
            break
        chunks.append(data)
    return b''.join(chunks), closed, time.monotonic() - start


def refusing_address():
    """host:port of a port that was bound and closed: connections are refused."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return '127.0.0.1:%d' % port


# --------------------------------------------------------------------------
# Subscriber sinks


class Recorded:
    """One request a sink received."""

    def __init__(self, method, path, headers, body, client_port):
        self.method = method
        self.path = path
        self.headers = headers
        self.body = body
        self.client_port = client_port
        self.arrived = time.monotonic()
        self.done = None
        self.index = None    # 0-based: the how-manieth request this sink received
        self.status = None   # the status code the sink answered (None until answered)
        self.version = None  # the request line's protocol, e.g. 'HTTP/1.1'

    @property
    def webhook_id(self):
        """The request's webhook-id header (None when absent)."""
        return self.headers.get('webhook-id')

    def __repr__(self):
        return '<Recorded #%s %s %s %d bytes -> %s>' % (self.index, self.method, self.path,
                                                        len(self.body), self.status)


class _SinkHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    timeout = 60
    # Headers and body go out in two writes; without TCP_NODELAY, Nagle plus the
    # client's delayed ACK would cap each connection at ~25 answers a second.
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def _read_chunked(self):
        parts = []
        while True:
            line = self.rfile.readline(65537)
            size = int(line.split(b';', 1)[0].strip(), 16)
            if size == 0:
                while self.rfile.readline(65537) not in (b'\r\n', b'\n', b''):
                    pass
                return b''.join(parts)
            parts.append(self.rfile.read(size))
            self.rfile.readline(65537)

    def _handle(self):
        sink = self.server.sink
        if 'chunked' in self.headers.get('Transfer-Encoding', '').lower():
            body = self._read_chunked()
        else:
            n = int(self.headers.get('Content-Length') or 0)
            body = self.rfile.read(n) if n else b''
        rec = Recorded(self.command, self.path, self.headers, body,
                       self.client_address[1])
        rec.version = self.request_version
        sink._arrive(rec)
        gate = sink.gate
        if gate is not None:
            gate.wait(60)
        if sink.delay:
            time.sleep(sink.delay)
        status, extra = sink._answer_for(rec)
        rec.status = status
        payload = b'ok'
        self.send_response(status)
        headers = dict(sink.response_headers)
        headers.update(extra)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header('Content-Type', 'text/plain')
        self.send_header('Content-Length', str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
        self.wfile.flush()
        rec.done = time.monotonic()
        sink._notify()

    do_POST = do_GET = do_PUT = do_DELETE = do_PATCH = do_HEAD = _handle


class _SinkServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 256

    def handle_error(self, request, client_address):
        pass  # a subscriber connection hookcast dropped is not a test failure

    def process_request(self, request, client_address):
        with self.sink.cond:
            self.sink._conns.add(request)
        super().process_request(request, client_address)

    def finish_request(self, request, client_address):
        """On the connection's own thread: the TLS handshake first, if any."""
        sink = self.sink
        if sink.tls is None:
            return super().finish_request(request, client_address)
        request.settimeout(10)
        try:
            conn = sink.tls.wrap_socket(request, server_side=True)
        except OSError as e:  # ssl.SSLError included: hookcast gave up
            with sink.cond:
                sink.tls_errors.append(e)
                sink.cond.notify_all()
            return
        with sink.cond:
            sink._conns.discard(request)
            sink._conns.add(conn)
        try:
            super().finish_request(conn, client_address)
        finally:
            with sink.cond:
                sink._conns.discard(conn)
            conn.close()

    def shutdown_request(self, request):
        with self.sink.cond:
            self.sink._conns.discard(request)
        super().shutdown_request(request)


class _SinkServer6(_SinkServer):
    address_family = socket.AF_INET6


class Sink:
    """A subscriber: an HTTP server on 127.0.0.1 (or host=, another loopback
    address such as 127.0.0.2 or ::1) recording every request.

    status is what it answers: an int; a list (one entry per request in
    arrival order, the last one repeating); or a callable taking the request's
    0-based index.  An entry is a status code or (status, {header: value}).
    Assigning sink.status later changes the answers from then on (a list
    assigned later starts at its first entry).  delay / gate /
    response_headers (sent with every answer) shape the answers too.
    port= binds a given port (e.g. one refusing_address() handed out) instead
    of a free one.  tls= (a server-side ssl.SSLContext) makes it an HTTPS
    server: url() is then https://, and handshakes that failed are kept in
    tls_errors.  close() also cuts the connections still open, so a closed
    sink is down for good."""

    def __init__(self, status=200, delay=0.0, gate=None, response_headers=None, port=0,
                 tls=None, host='127.0.0.1'):
        self.cond = threading.Condition()
        self.host = host
        self.tls = tls
        self.tls_errors = []
        self._status = status
        self._status_base = 0
        self.delay = delay
        self.gate = gate
        self.response_headers = dict(response_headers or {})
        self.requests = []
        self._conns = set()
        server = _SinkServer6 if ':' in host else _SinkServer
        self.server = server((host, port), _SinkHandler, bind_and_activate=False)
        self.server.sink = self
        try:
            self.server.server_bind()
            self.server.server_activate()
        except OSError:
            self.server.server_close()
            raise
        self.port = self.server.server_address[1]
        self.address = '%s:%d' % ('[%s]' % host if ':' in host else host, self.port)
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={'poll_interval': 0.05},
                                       daemon=True)
        self.thread.start()

    @property
    def status(self):
        return self._status

    @status.setter
    def status(self, value):
        with self.cond:
            self._status = value
            self._status_base = len(self.requests)

    def _answer_for(self, rec):
        with self.cond:
            spec = self._status
            n = rec.index - self._status_base
        if callable(spec):
            spec = spec(rec.index)
        elif isinstance(spec, (list, tuple)) and spec and not (
                len(spec) == 2 and isinstance(spec[0], int) and isinstance(spec[1], dict)):
            spec = spec[min(max(n, 0), len(spec) - 1)]
        if isinstance(spec, tuple):
            return int(spec[0]), dict(spec[1])
        return int(spec), {}

    def url(self, path='/event', host=None):
        if host is None:
            host = '[%s]' % self.host if ':' in self.host else self.host
        return '%s://%s:%d%s' % ('https' if self.tls else 'http', host, self.port, path)

    def _arrive(self, rec):
        with self.cond:
            rec.index = len(self.requests)
            self.requests.append(rec)
            self.cond.notify_all()

    def _notify(self):
        with self.cond:
            self.cond.notify_all()

    def count(self):
        with self.cond:
            return len(self.requests)

    def wait_for(self, n, timeout):
        """Waits until at least n requests arrived; returns the count."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.requests) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.cond.wait(left)
            return len(self.requests)

    def bodies(self):
        with self.cond:
            return [r.body for r in self.requests]

    def snapshot(self):
        with self.cond:
            return list(self.requests)

    def webhook_ids(self):
        with self.cond:
            return [r.webhook_id for r in self.requests]

    def wait_until(self, predicate, timeout):
        """Waits until predicate(list of Recorded) is true; returns its last value."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                value = predicate(list(self.requests))
                left = deadline - time.monotonic()
                if value or left <= 0:
                    return value
                self.cond.wait(left)

    def close(self):
        if self.gate is not None:
            self.gate.set()
        self.server.shutdown()
        self.server.server_close()
        with self.cond:
            conns = list(self._conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class HangingSink:
    """Accepts TCP connections, reads and discards what arrives, never answers."""

    def __init__(self):
        self._lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._lsock.bind(('127.0.0.1', 0))
        self._lsock.listen(256)
        self._lsock.setblocking(False)
        self.port = self._lsock.getsockname()[1]
        self.address = '127.0.0.1:%d' % self.port
        self.lock = threading.Lock()
        self.accepted = 0
        self.open = 0
        self.max_open = 0
        self.received = 0
        self._stop = False
        self._sel = selectors.DefaultSelector()
        self._sel.register(self._lsock, selectors.EVENT_READ)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self._stop:
            events = self._sel.select(0.05)
            # Closes before accepts, so max_open never counts a replaced connection twice.
            events.sort(key=lambda e: e[0].fileobj is self._lsock)
            for key, _ in events:
                if key.fileobj is self._lsock:
                    while True:
                        try:
                            c, _ = self._lsock.accept()
                        except (BlockingIOError, OSError):
                            break
                        c.setblocking(False)
                        self._sel.register(c, selectors.EVENT_READ)
                        with self.lock:
                            self.accepted += 1
                            self.open += 1
                            self.max_open = max(self.max_open, self.open)
                    continue
                try:
                    data = key.fileobj.recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b''
                if data:
                    with self.lock:
                        self.received += len(data)
                else:
                    self._sel.unregister(key.fileobj)
                    key.fileobj.close()
                    with self.lock:
                        self.open -= 1
        for key in list(self._sel.get_map().values()):
            key.fileobj.close()
        self._sel.close()

    def close(self):
        self._stop = True
        self.thread.join(5)


# --------------------------------------------------------------------------
# The daemon


class Hookcast:
    """Runs build/hookcast with a generated config file on 127.0.0.1:0.

    Its store lives in --data-dir DIR: by default DIR is a fresh directory
    inside the instance's temporary directory (removed at teardown).  Pass
    data_dir=PATH to use a given one (e.g. the data_dir of a daemon that was
    stopped or killed, to restart on the same store), or data_dir=False to pass
    no --data-dir at all.  A --data-dir among the flags wins as well.

    stderr is collected line by line for the whole run (self.lines()).
    client_tls= (a client-side ssl.SSLContext) makes every request of the
    helpers below go over HTTPS, for a daemon with tls_cert and tls_key.

    Tests stay on this machine: a config (dict, text or --allow-targets flag)
    without allow_targets gets allow_targets LOOPBACK_TARGETS, in
    base_config and guard_text too for a test that rewrites the file before
    a SIGHUP; a refusal of an address for being outside it then fails the
    test when the daemon is stopped.  An allow_targets the test sets itself
    must lie inside loopback too, and the file must still hold one at each
    SIGHUP.  loopback_only=False turns all of this off, for a test that
    only registers an address elsewhere and never has it delivered to."""

    BASE_CONFIG = {
        'log_level': 'info',
        'shutdown_grace': '2',
    }

    def __init__(self, *args, config=None, config_text=None, listen=True, data_dir=None,
                 env=None, client_tls=None, loopback_only=True):
        self.tmp = tempfile.mkdtemp(prefix='hookcast-it-')
        self.client_tls = client_tls
        args = [str(a) for a in args]
        if any(a == '--data-dir' or a.startswith('--data-dir=') for a in args) or \
                'data_dir' in (config or {}):
            data_dir = False
        if data_dir is None:
            data_dir = os.path.join(self.tmp, 'data')
            os.mkdir(data_dir)
        self.data_dir = data_dir or None
        self.config_path = os.path.join(self.tmp, 'hookcast.conf')
        self.loopback_only = loopback_only
        self.allow_flag = self._flag(args, '--allow-targets')
        # The harness's own allow_targets, which a test never meant to hit.
        self.guarded = False
        self.base_config = dict(self.BASE_CONFIG)
        self.guard_text = ''
        if loopback_only and self.allow_flag is None:
            if (config_text is None and 'allow_targets' not in (config or {})) or \
                    (config_text is not None and self._file_allow(config_text) is None):
                self.guarded = True
                self.base_config['allow_targets'] = LOOPBACK_TARGETS
                self.guard_text = 'allow_targets %s\n' % LOOPBACK_TARGETS
        if config_text is None:
            cfg = dict(self.base_config)
            cfg.update(config or {})
            config_text = '# generated by tests/integration\n' + ''.join(
                '%s %s\n' % (k, v) for k, v in cfg.items())
        elif self.guard_text:
            config_text += ('' if config_text.endswith('\n') or not config_text
                            else '\n') + self.guard_text
        with open(self.config_path, 'w') as f:
            f.write(config_text)
        self.argv = [BINARY, '--config', self.config_path]
        if listen:
            self.argv += ['--listen', '127.0.0.1:0']
        if self.data_dir:
            self.argv += ['--data-dir', self.data_dir]
        self.argv += args
        self.env = daemon_env(env)
        self.proc = None
        self.port = None
        self._lines = []
        self._out = []
        self._cond = threading.Condition()
        self._readers = []
        self._stderr_open = threading.Event()
        self._stderr_open.set()
        self.rc = None
        self.stopped = False
        try:
            self._check_loopback_only()
        except AssertionError:
            shutil.rmtree(self.tmp, ignore_errors=True)
            raise

    # -- staying on loopback

    @staticmethod
    def _flag(args, name):
        """The value of the last flag NAME in args (--name V or --name=V), or None."""
        value = None
        for i, a in enumerate(args):
            if a == name and i + 1 < len(args):
                value = args[i + 1]
            elif a.startswith(name + '='):
                value = a[len(name) + 1:]
        return value

    @staticmethod
    def _file_allow(text):
        """The value of the config text's last allow_targets line, or None."""
        m = re.findall(r'(?m)^[ \t]*allow_targets[ \t]+(.*?)[ \t]*$', text)
        return m[-1] if m else None

    def _check_loopback_only(self):
        """Raises unless the daemon would (again) start with an allow_targets
        inside loopback: the flag's, or else the config file's."""
        if not self.loopback_only:
            return
        value = self.allow_flag
        if value is None:
            with open(self.config_path) as f:
                value = self._file_allow(f.read())
        if value is None or not value.strip():
            raise AssertionError(
                'the config file %s sets no allow_targets (or an empty one): tests '
                'stay on loopback (add hc.guard_text, or use hc.base_config, when '
                'rewriting it)' % self.config_path)
        bad = off_loopback(value)
        if bad:
            raise AssertionError(
                'allow_targets %s reaches past loopback (%s): tests stay on this '
                'machine; pass loopback_only=False only to a daemon that never '
                'delivers there' % (value, ' '.join(bad)))

    def check_on_loopback(self):
        """Raises if the harness's allow_targets refused an address: the test
        made hookcast try to leave the machine."""
        if not self.guarded:
            return
        hits = [l for l in self.lines() if NOT_ALLOWED_RE.search(l)]
        if hits:
            raise AssertionError(
                'hookcast was made to reach an address off loopback (the harness '
                'runs it with allow_targets %s; tests stay on this machine):\n%s'
                % (LOOPBACK_TARGETS, '\n'.join(hits[:10])))

    # -- process

    def _reader(self, stream, sink, gate=None):
        while True:
            if gate is not None:
                gate.wait()
            raw = stream.readline()
            if not raw:
                break
            line = raw.decode('utf-8', 'replace').rstrip('\n')
            with self._cond:
                sink.append(line)
                self._cond.notify_all()
        stream.close()

    def start(self, timeout=None):
        timeout = timeout if timeout is not None else scaled(10)
        self._spawn()
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self._lines:
                    m = LISTENING_RE.search(line)
                    if m:
                        self.port = int(m.group(1))
                        return self
                if self.proc.poll() is not None:
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(min(left, 0.1))
        rc = self.proc.poll()
        self.kill()
        self.stopped = True
        raise AssertionError(
            'hookcast did not log msg="listening" with listen=127.0.0.1:PORT '
            '(exit code %r)\nargv: %s\nstderr:\n%s' %
            (rc, ' '.join(self.argv), self.stderr_text()))

    def _spawn(self):
        self.proc = subprocess.Popen(self.argv, cwd=self.tmp, env=self.env,
                                     stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        for stream, sink, gate in (
                (self.proc.stderr, self._lines, self._stderr_open),
                (self.proc.stdout, self._out, None)):
            t = threading.Thread(target=self._reader,
                                 args=(stream, sink, gate), daemon=True)
            t.start()
            self._readers.append(t)

    def run_until_exit(self, timeout=None):
        """For start-up failures: runs the daemon and waits for it to exit.

        Returns its exit code, or None when it was still running after timeout
        (it is killed then).  Checks for sanitizer reports either way."""
        timeout = timeout if timeout is not None else scaled(10)
        self._spawn()
        self.stopped = True
        rc = self.wait_exit(timeout)
        if rc is None:
            self.kill()
        self.check_clean()
        return rc

    def kill9(self):
        """SIGKILL, as a crash would: no clean exit expected, no check at teardown
        beyond the sanitizer markers in what it wrote so far."""
        self.stopped = True
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
        self.rc = self.proc.wait(10)
        for t in self._readers:
            t.join(5)
        self.check_clean()
        return self.rc

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def send_signal(self, sig):
        if sig == signal.SIGHUP:
            self._check_loopback_only()
        self.proc.send_signal(sig)

    def hold_stderr(self):
        """Stops reading the daemon's stderr, as a wedged journald or log
        shipper would: the pipe, shrunk to one page, fills after a few lines
        and the next thread to log waits in write(2) until release_stderr()."""
        fcntl.fcntl(self.proc.stderr.fileno(), fcntl.F_SETPIPE_SZ, 4096)
        self._stderr_open.clear()

    def release_stderr(self):
        self._stderr_open.set()

    def wait_exit(self, timeout):
        """Waits for the process to exit; returns its code, or None on timeout."""
        self.release_stderr()
        try:
            self.rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        for t in self._readers:
            t.join(5)
        return self.rc

    def kill(self):
        self.release_stderr()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        for t in self._readers:
            t.join(5)

    def stop(self, sig=signal.SIGTERM, timeout=None):
        """Sends sig and checks the daemon exits 0 in time with no sanitizer report."""
        if self.stopped:
            return self.rc
        if self.alive():
            self.send_signal(sig)
        return self.finish(timeout)

    def finish(self, timeout=None):
        """After a signal was sent: waits for exit, asserts code 0 and clean stderr."""
        self.stopped = True
        timeout = timeout if timeout is not None else scaled(15)
        rc = self.wait_exit(timeout)
        if rc is None:
            self.kill()
            raise AssertionError('hookcast did not exit within %.1f s of the signal\n'
                                 'stderr (tail):\n%s' % (timeout, self.stderr_tail()))
        self.check_clean()
        if rc != 0:
            raise AssertionError('hookcast exited with code %d (expected 0)\n'
                                 'stderr (tail):\n%s' % (rc, self.stderr_tail()))
        return rc

    def check_clean(self):
        text = self.stderr_text() + '\n' + '\n'.join(self._out)
        for marker in SANITIZER_MARKERS:
            if marker in text:
                raise AssertionError('sanitizer report (%s) in hookcast output:\n%s'
                                     % (marker, self.stderr_tail(200)))
        self.check_on_loopback()

    # -- logs

    def lines(self):
        with self._cond:
            return list(self._lines)

    def stderr_text(self):
        return '\n'.join(self.lines())

    def stderr_tail(self, n=60):
        return '\n'.join(self.lines()[-n:])

    def wait_for_log(self, pattern, timeout):
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self._lines:
                    if rx.search(line):
                        return line
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)

    # -- HTTP

    def request(self, method, path, body=None, headers=None, **kw):
        kw.setdefault('context', self.client_tls)
        return http_request(self.port, method, path, body=body, headers=headers, **kw)

    def register(self, address):
        return self.request('POST', '/registerAndKeepAlive?address=' + q(address))

    def deregister(self, address):
        return self.request('DELETE', '/deregister?address=' + q(address))

    def publish(self, body, content_type=None):
        headers = {'Content-Type': content_type} if content_type else {}
        return self.request('POST', '/sendMessage', body=body, headers=headers)

    # -- dead letters

    @staticmethod
    def _dl_query(address=None, id=None, **more):
        params = []
        if address is not None:
            params.append(('address', address))
        if id is not None:
            params.append(('id', id))
        params += [(k, str(v)) for k, v in more.items()]
        return ('?' + urllib.parse.urlencode(params)) if params else ''

    def dead_letters(self, address=None, id=None, **more):
        """GET /deadLetters?format=json...; returns the list of dead-letter objects."""
        r = self.request('GET', '/deadLetters' + self._dl_query(address, id, format='json',
                                                                **more))
        if r.status != 200:
            raise AssertionError('GET /deadLetters (JSON): %r' % r)
        return r.json()['dead_letters']

    def dead_letters_text(self, address=None, id=None, **more):
        r = self.request('GET', '/deadLetters' + self._dl_query(address, id, **more))
        if r.status != 200:
            raise AssertionError('GET /deadLetters: %r' % r)
        return r.text

    def replay(self, address=None, id=None):
        return self.request('POST', '/deadLetters/replay' + self._dl_query(address, id))

    def purge(self, address=None, id=None):
        return self.request('DELETE', '/deadLetters' + self._dl_query(address, id))

    def wait_dead_letters(self, predicate, timeout, **query):
        """Polls the JSON dead letters until predicate(list) holds; returns the last list."""
        return poll(lambda: self.dead_letters(**query), predicate, timeout, 0.05)

    def list_text(self):
        r = self.request('GET', '/listSubscribers')
        if r.status != 200:
            raise AssertionError('GET /listSubscribers: %r' % r)
        return r.text

    def list_json(self):
        r = self.request('GET', '/listSubscribers?format=json')
        if r.status != 200:
            raise AssertionError('GET /listSubscribers?format=json: %r' % r)
        return r.json()['subscribers']

    def addresses(self):
        return sorted(s['address'] for s in self.list_json())

    def subscriber(self, address):
        for s in self.list_json():
            if s['address'] == address:
                return s
        return None

    def wait_subscriber(self, address, predicate, timeout):
        """Polls the JSON listing until predicate(entry) holds; returns the last entry."""
        return poll(lambda: self.subscriber(address),
                    lambda s: s is not None and predicate(s), timeout, 0.05)


def verify_webhooks(items):
    """Judges deliveries with the official Standard Webhooks package (Node).

    items: (secret, Recorded) pairs.  Returns one result each: 'ok', or the
    verifier's reason for refusing.  `make check` installs the package
    (tests/package-lock.json) with npm ci.
    """
    payload = [{'secret': secret,
                'body_b64': base64.b64encode(rec.body).decode(),
                'headers': {k.lower(): v for k, v in rec.headers.items()
                            if k.lower().startswith('webhook-')}}
               for secret, rec in items]
    p = subprocess.run(['node', os.path.join(HERE, 'verify_webhooks.js')],
                       input=json.dumps(payload).encode(), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, cwd=os.path.dirname(HERE), timeout=60)
    if p.returncode != 0:
        raise AssertionError('verify_webhooks.js failed (is tests/node_modules '
                             'installed? make check runs npm ci): %s'
                             % p.stderr.decode('utf-8', 'replace'))
    return json.loads(p.stdout)


def run_binary(*args, timeout=None, env=None):
    """Runs the binary to completion (for --check-config, --version...)."""
    timeout = timeout if timeout is not None else scaled(15)
    p = subprocess.run([BINARY] + [str(a) for a in args], stdin=subprocess.DEVNULL,
                       env=daemon_env(env),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout)
    return (p.returncode, p.stdout.decode('utf-8', 'replace'),
            p.stderr.decode('utf-8', 'replace'))


# --------------------------------------------------------------------------
# Test case base


class _TestTimeout(Exception):
    pass


class HookcastTestCase(unittest.TestCase):
    """Starts daemons and sinks per test; stops daemons (asserting a clean exit 0)
    before closing sinks.  Each test has a watchdog so a hang fails, not stalls."""

    TEST_TIMEOUT = 90

    def setUp(self):
        self._daemons = []
        self._closers = []
        self.addCleanup(self._teardown_all)
        if threading.current_thread() is threading.main_thread():
            def on_alarm(signum, frame):
                raise _TestTimeout('test exceeded %d s' % int(scaled(self.TEST_TIMEOUT)))
            self._old_alarm = signal.signal(signal.SIGALRM, on_alarm)
            signal.alarm(int(scaled(self.TEST_TIMEOUT)))

    def _teardown_all(self):
        signal.alarm(0)
        errors = []
        for d in reversed(self._daemons):
            try:
                d.stop()
            except AssertionError as e:
                errors.append(str(e))
            finally:
                d.kill()
                shutil.rmtree(d.tmp, ignore_errors=True)
        for close in reversed(self._closers):
            try:
                close()
            except Exception:
                pass
        if errors:
            raise AssertionError('\n\n'.join(errors))

    def start_hookcast(self, *args, **kw):
        h = Hookcast(*args, **kw)
        self._daemons.append(h)
        h.start()
        return h

    def sink(self, **kw):
        s = Sink(**kw)
        self._closers.append(s.close)
        return s

    def after_daemons(self, fn):
        """Runs fn at teardown once every daemon is stopped (e.g. an umount)."""
        self._closers.insert(0, fn)

    def mount_tmpfs(self, opts):
        """Mounts a tmpfs with opts on a fresh directory, unmounted at teardown once
        the daemons are stopped: its path, or None and why not (not root, or the
        mount failed)."""
        if os.geteuid() != 0:
            return None, 'not root'
        mnt = tempfile.mkdtemp(prefix='hookcast-mnt-')
        p = subprocess.run(['mount', '-t', 'tmpfs', '-o', opts, 'tmpfs', mnt],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if p.returncode != 0:
            os.rmdir(mnt)
            return None, 'mount -t tmpfs -o %s failed: %s' % (
                opts, p.stdout.decode('utf-8', 'replace').strip())

        def cleanup():
            if subprocess.run(['umount', mnt]).returncode != 0:
                subprocess.run(['umount', '-l', mnt])
            try:
                os.rmdir(mnt)
            except OSError:
                pass
        self.after_daemons(cleanup)
        return mnt, None

    def make_tmpdir(self, prefix='hookcast-it-'):
        """A temporary directory removed at teardown (after the daemons stopped)."""
        d = tempfile.mkdtemp(prefix=prefix)
        self.after_daemons(lambda: shutil.rmtree(d, ignore_errors=True))
        return d

    def hanging_sink(self):
        s = HangingSink()
        self._closers.append(s.close)
        return s

    # -- assertions

    def assertSuccess(self, r, what=''):
        self.assertEqual((r.status, r.body), (200, b'success'),
                         '%s answered %r' % (what or 'request', r))

    def assertTextPlain(self, r):
        self.assertTrue(r.header('Content-Type', '').startswith('text/plain'),
                        'Content-Type %r' % r.header('Content-Type'))

    def assertRecent(self, ts_text, slack=3.0):
        ts = parse_ts(ts_text)
        delta = abs((utcnow() - ts).total_seconds())
        self.assertLess(delta, slack + 1, 'timestamp %s is %.1f s from now' % (ts_text, delta))
        return ts

"""The documentation cannot drift from the binary: every configuration key
hookcast knows is in the man page, the table of doc/configuration.md and
hookcast.conf; every option --help lists is in the man page; every path the
daemon answers is in the README's API table; the man page renders without
a warning; the links between README.md and doc/ lead somewhere."""

import glob
import os
import re
import shutil
import subprocess
import unittest

from harness import BINARY, REPO, HookcastTestCase, run_binary

MAN_PAGE = os.path.join(REPO, 'etc', 'hookcast.8')
# The reference for every key: its table is the section "## Keys".
CONFIG_DOC = ('doc', 'configuration.md')


def read(*path):
    with open(os.path.join(REPO, *path), encoding='utf-8') as f:
        return f.read()


def doc_section(path, heading):
    """The text of a Markdown file's "## heading" section, up to the next
    section of that level."""
    text = read(*path)
    marker = '\n## %s\n' % heading
    if marker not in text:
        raise AssertionError('%s has no "## %s" section' % (os.path.join(*path), heading))
    return text.split(marker, 1)[1].split('\n## ', 1)[0]


def api_table_paths():
    """The paths the first column of the README's API table names."""
    paths = set()
    for cell in re.findall(r'(?m)^\| (.*?) \| ', read('README.md').split('\n## API\n', 1)[1]
                           .split('\n## ', 1)[0]):
        paths.update(re.findall(r'`(/[A-Za-z0-9._/-]*)', cell))
    return paths


def heading_anchors(text):
    """The #fragments GitHub gives a Markdown file's headings."""
    text = re.sub(r'(?ms)^```.*?^```', '', text)
    return {re.sub(r'[^\w\- ]', '', h.strip().lower()).replace(' ', '-')
            for h in re.findall(r'(?m)^#{1,6} (.+)$', text)}


def config_keys():
    """The keys config.c's table holds, from the binary's own --dump-config."""
    rc, out, err = run_binary('--dump-config')
    if rc != 0:
        raise AssertionError('hookcast --dump-config failed: %s' % err)
    keys = re.findall(r'(?m)^(?:# )?([a-z][a-z0-9_]*) ', out)
    if len(keys) < 30:
        raise AssertionError('--dump-config listed only %r' % keys)
    return keys


def render_man():
    """The man page as man(1) shows it, in plain ASCII (no hyphen or quote
    glyphs), one long line a paragraph."""
    man = shutil.which('man')
    if man is None:
        raise AssertionError('man is missing: install the Debian package '
                             'man-db (scripts/deps.sh check does)')
    env = dict(os.environ, MANWIDTH='250', LC_ALL='C.UTF-8', MAN_KEEP_FORMATTING='')
    p = subprocess.run([man, '-E', 'ascii', '-l', MAN_PAGE], env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    if p.returncode != 0:
        raise AssertionError('man -l %s: %s' % (MAN_PAGE, p.stderr.decode()))
    # Overstrikes (bold, underline) out, as col -b does.
    return re.sub(r'.\x08', '', p.stdout.decode('ascii', 'replace'))


def man_section(text, name):
    m = re.search(r'(?ms)^%s\n(.*?)(?=^[A-Z][A-Z ]+\n)' % re.escape(name), text)
    if m is None:
        raise AssertionError('no %s section in the man page' % name)
    return m.group(1)


class DocsTest(unittest.TestCase):

    def test_every_key_is_documented(self):
        man = man_section(render_man(), 'CONFIGURATION')
        table = doc_section(CONFIG_DOC, 'Keys')
        conf = read('etc', 'hookcast.conf')
        missing = []
        for key in config_keys():
            # A .TP entry: the key, then its default in brackets.
            if not re.search(r'(?m)^ {7}%s \[' % re.escape(key), man):
                missing.append('hookcast.8 CONFIGURATION: ' + key)
            if not re.search(r'(?m)^\| `%s` \| [^|]+ \| [^|]+' % re.escape(key), table):
                missing.append('doc/configuration.md, Keys: ' + key)
            if not re.search(r'(?m)^#?%s ' % re.escape(key), conf):
                missing.append('etc/hookcast.conf: ' + key)
        self.assertEqual(missing, [], 'keys hookcast knows but does not document')

    def test_documented_keys_exist(self):
        keys = set(config_keys())
        man = man_section(render_man(), 'CONFIGURATION')
        in_man = set(re.findall(r'(?m)^ {7}([a-z][a-z0-9_]*) \[', man))
        table = doc_section(CONFIG_DOC, 'Keys')
        in_doc = set(re.findall(r'(?m)^\| `([a-z][a-z0-9_]*)` \|', table))
        self.assertEqual(in_man - keys, set(), 'the man page documents keys '
                         'hookcast does not know')
        self.assertEqual(in_doc - keys, set(), 'doc/configuration.md documents '
                         'keys hookcast does not know')

    def test_every_option_of_help_is_in_the_man_page(self):
        rc, out, err = run_binary('--help')
        self.assertEqual(rc, 0, err)
        options = set(re.findall(r'(?<![\w-])(--[a-z][a-z-]*|-[a-z])\b', out))
        self.assertTrue({'--config', '-c', '--check-config', '-t', '--dump-config',
                         '--version', '--help'} <= options, options)
        text = render_man()
        opts = man_section(text, 'OPTIONS')
        synopsis = man_section(text, 'SYNOPSIS')
        missing = [o for o in sorted(options)
                   if not re.search(r'(?m)^ {7}(\S+, )?%s\b' % re.escape(o), opts)
                   or o not in synopsis]
        self.assertEqual(missing, [], 'options --help lists that the man page '
                         'does not describe (OPTIONS entry and SYNOPSIS)')

    def test_man_page_renders_without_warnings(self):
        man = shutil.which('man')
        self.assertIsNotNone(man, 'man is missing: install man-db')
        p = subprocess.run([man, '--warnings', '-E', 'UTF-8', '-l', MAN_PAGE],
                           env=dict(os.environ, LC_ALL='C.UTF-8', MANWIDTH='80'),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        self.assertEqual(p.stderr.decode(), '', 'man --warnings')
        self.assertIn(b'hookcast', p.stdout)
        groff = shutil.which('groff')
        self.assertIsNotNone(groff, 'groff is missing (man-db depends on it)')
        p = subprocess.run([groff, '-ww', '-man', '-z', MAN_PAGE],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        self.assertEqual((p.returncode, p.stderr.decode()), (0, ''), 'groff -ww')

    def test_man_page_names_this_version(self):
        rc, out, err = run_binary('--version')
        self.assertEqual(rc, 0, err)
        version = out.split()[-1]
        self.assertRegex(read('etc', 'hookcast.8'),
                         r'(?m)^\.TH HOOKCAST 8 \S+ "hookcast %s"' % re.escape(version))

    def test_man_page_sections(self):
        text = render_man()
        for name in ('NAME', 'SYNOPSIS', 'DESCRIPTION', 'OPTIONS', 'CONFIGURATION',
                     'API', 'SIGNALS', 'ENVIRONMENT', 'FILES', 'EXIT STATUS',
                     'EXAMPLES', 'SEE ALSO'):
            self.assertRegex(text, r'(?m)^%s$' % name)
        api = man_section(text, 'API')
        for endpoint in ('/registerAndKeepAlive', '/deregister', '/sendMessage',
                         '/listSubscribers', '/deadLetters', '/deadLetters/replay',
                         '/metrics', '/healthz', '/readyz', '/stats'):
            self.assertRegex(api, r'(?m)^ {7}[A-Z, ]+ %s\b' % re.escape(endpoint))
        self.assertRegex(api, r'(?m)^ {7}GET / ')
        env = man_section(text, 'ENVIRONMENT')
        for var in ('HOOKCAST_PUBLISH_TOKEN', 'HOOKCAST_SUBSCRIBE_TOKEN',
                    'HOOKCAST_ADMIN_TOKEN', 'NOTIFY_SOCKET', 'WATCHDOG_USEC'):
            self.assertIn(var, env)
        signals = man_section(text, 'SIGNALS')
        for sig in ('SIGTERM', 'SIGINT', 'SIGHUP'):
            self.assertIn(sig, signals)

    def test_relative_links_resolve(self):
        broken = []
        for path in ['README.md'] + sorted(
                os.path.relpath(p, REPO) for p in glob.glob(os.path.join(REPO, 'doc', '*.md'))):
            text = re.sub(r'(?ms)^```.*?^```', '', read(path))
            for link in re.findall(r'\]\(([^)\s]+)\)', text):
                if re.match(r'[a-z]+:', link):
                    continue
                target, _, fragment = link.partition('#')
                target = os.path.normpath(os.path.join(os.path.dirname(path), target)
                                          if target else path)
                if not os.path.exists(os.path.join(REPO, target)):
                    broken.append('%s: %s (no such file)' % (path, link))
                elif (fragment and target.endswith('.md')
                      and fragment not in heading_anchors(read(target))):
                    broken.append('%s: %s (no such heading)' % (path, link))
        self.assertEqual(broken, [], 'links that lead nowhere')


class RoutesTest(HookcastTestCase):

    def test_every_route_is_in_the_api_table(self):
        # A route's path is a string literal in the binary: ask the daemon
        # about every string that looks like a path, and keep those it does
        # not answer 404.
        with open(BINARY, 'rb') as f:
            image = f.read()
        candidates = {'/'} | {m.decode() for m in
                              re.findall(rb'(/[A-Za-z][A-Za-z0-9._/-]*)\x00', image)}
        hc = self.start_hookcast()
        routes = {p for p in sorted(candidates) if hc.request('GET', p).status != 404}
        self.assertTrue({'/', '/sendMessage', '/registerAndKeepAlive', '/deregister',
                         '/listSubscribers', '/healthz'} <= routes, routes)
        documented = api_table_paths()
        self.assertEqual(routes - documented, set(), 'paths hookcast answers that '
                         "the README's API table does not list")
        self.assertEqual(documented - routes, set(), "paths the README's API table "
                         'lists that hookcast answers 404')

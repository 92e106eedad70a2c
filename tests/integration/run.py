#!/usr/bin/env python3
"""Runs hookcast's integration tests against a built binary.

    python3 tests/integration/run.py --binary build/hookcast [-k PATTERN] [-f]

Exits 0 when every test passed, 1 on any failure or error, 2 on a usage problem.
Python 3 standard library only.
"""

import argparse
import os
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


class TimedResult(unittest.TextTestResult):
    """Records each test's wall time so the slow ones are visible."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.durations = []
        self._t0 = {}

    def startTest(self, test):
        self._t0[test.id()] = time.monotonic()
        super().startTest(test)

    def stopTest(self, test):
        t0 = self._t0.pop(test.id(), None)
        if t0 is not None:
            self.durations.append((time.monotonic() - t0, test.id()))
        super().stopTest(test)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--binary', default=os.path.join(REPO, 'build', 'hookcast'),
                    help='the hookcast binary to test (default: build/hookcast)')
    ap.add_argument('-k', dest='patterns', action='append', default=[],
                    help='only run tests whose id contains PATTERN (repeatable)')
    ap.add_argument('-f', '--failfast', action='store_true',
                    help='stop at the first failure')
    ap.add_argument('--time-scale', type=float, default=None,
                    help='stretch waits by this factor (default: 1, more for '
                         'sanitizer builds, detected from the binary)')
    args = ap.parse_args()

    binary = os.path.abspath(args.binary)
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        print('run.py: %s is not an executable file (run make first)' % binary,
              file=sys.stderr)
        return 2
    os.environ['HOOKCAST_BINARY'] = binary
    if args.time_scale is not None:
        os.environ['HOOKCAST_TIME_SCALE'] = str(args.time_scale)
    sys.path.insert(0, HERE)

    import harness  # after the environment is set: it reads HOOKCAST_BINARY

    loader = unittest.TestLoader()
    if args.patterns:
        loader.testNamePatterns = ['*%s*' % p if '*' not in p else p
                                   for p in args.patterns]
    suite = loader.discover(HERE, pattern='test_*.py', top_level_dir=HERE)
    print('hookcast integration tests: %s (time scale %.1f)'
          % (binary, harness.SCALE), flush=True)
    start = time.monotonic()
    runner = unittest.TextTestRunner(verbosity=2, failfast=args.failfast,
                                     resultclass=TimedResult, stream=sys.stdout)
    result = runner.run(suite)
    elapsed = time.monotonic() - start

    slow = sorted(result.durations, reverse=True)[:8]
    if slow:
        print('\nslowest tests:')
        for d, name in slow:
            print('  %6.2f s  %s' % (d, name))
    print('total %.1f s' % elapsed)
    if result.testsRun == 0:
        print('run.py: no tests ran', file=sys.stderr)
        return 1
    return 0 if result.wasSuccessful() else 1


if __name__ == '__main__':
    sys.exit(main())

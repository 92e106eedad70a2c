"""The bench's steps, one module each, numbered in the order they run.

Each module has NUMBER, NAME (the key of its results), TITLE, ONCE (True:
run once after the rounds; False: once a round), USES_HOOKCAST (False: the
step measures the machine, not a binary, so a baseline does not repeat it)
and run(b, binary, variant, rnd): the step's figures as a dict, recorded by
the driver under b.results[NAME][variant][rnd]; StepFailed (after
b.problem) when it has none. A ONCE step may also have summary_rows(fig):
its rows of the record's summary table (figure, value, target, verdict)."""
from . import (s01_loopback, s02_ingest, s03_fanout, s04_hanging, s05_down,
               s06_signed, s07_10k, s08_removal, s09_batch, s10_https,
               s11_threads, s12_mirror)

STEPS = [s01_loopback, s02_ingest, s03_fanout, s04_hanging, s05_down,
         s06_signed, s07_10k, s08_removal, s09_batch, s10_https, s11_threads,
         s12_mirror]

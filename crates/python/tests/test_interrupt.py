"""Ctrl-C during calls that run for seconds: each stops within about a second (bounds taken
from the cost measured in the test, so a slower or faster machine changes them alike) and
leaves the index as it was."""

from __future__ import annotations

import signal
import sys
import threading
import time

import numpy as np
import pytest

import omen

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


class Interrupt:
    """Sends SIGINT to this (the main) thread `after` seconds from entering; `latency` is how
    long the call took to raise KeyboardInterrupt after it."""

    def __init__(self, after: float) -> None:
        self.after = after
        self.sent = 0.0
        self.latency = float("inf")
        main = threading.get_ident()

        def fire() -> None:
            self.sent = time.monotonic()
            signal.pthread_kill(main, signal.SIGINT)

        self.timer = threading.Timer(after, fire)

    def __enter__(self) -> "Interrupt":
        self.timer.start()
        return self

    def __exit__(self, kind: object, value: object, tb: object) -> bool:
        self.timer.cancel()
        if kind is KeyboardInterrupt:
            self.latency = time.monotonic() - self.sent
            return True
        return False


def test_ctrl_c_stops_an_add_of_costly_rows_within_a_chunk() -> None:
    # Rows whose insertion is costly (16,384 dimensions, a wide beam): the first chunk used to
    # be 1,024 rows, many seconds before a signal was seen.
    dim, warm = 16_384, 300
    rows = np.random.default_rng(1).standard_normal((warm + 1_100, dim)).astype(np.float32)
    index = omen.Index(dim, ef_construction=400, seed=1)
    started = time.monotonic()
    index.add(rows[:warm], threads=2)
    # The mean cost of a row while the index grew to `warm` rows: below a row's cost after.
    per_row = (time.monotonic() - started) / warm
    with Interrupt(0.3) as stopped:
        index.add(rows[warm:], threads=2)
    assert stopped.latency < float("inf"), "the add ended without KeyboardInterrupt"
    assert len(index) == warm, "the interrupted add is undone"
    index.check_invariants()
    # A chunk of 1,024 rows takes more than 1,024 * per_row; a chunk sized to a quarter of a
    # second, a small fraction of that.
    bound = max(1.5, 128 * per_row)
    assert stopped.latency < bound, f"stopped {stopped.latency:.2f} s after Ctrl-C ({per_row * 1e3:.1f} ms a row)"


@pytest.mark.parametrize("shape", ["index", "segmented"])
def test_ctrl_c_stops_a_long_batch_search(shape: str) -> None:
    rng = np.random.default_rng(2)
    base = rng.standard_normal((4_000, 32)).astype(np.float32)
    index = omen.Index(32, seed=2) if shape == "index" else omen.SegmentedIndex.build(base, segments=2, seed=2)
    if shape == "index":
        assert isinstance(index, omen.Index)
        index.add(base)
    probe = rng.standard_normal((2_000, 32)).astype(np.float32)
    started = time.monotonic()
    index.search(probe, 10, ef=400, threads=2)
    per_query = (time.monotonic() - started) / len(probe)
    # A batch that would take about 8 s (at most 400,000 queries).
    n = int(min(400_000, max(20_000, 8.0 / per_query)))
    queries = rng.standard_normal((n, 32)).astype(np.float32)
    expected = n * per_query
    with Interrupt(0.3) as stopped:
        index.search(queries, 10, ef=400, threads=2)
    assert stopped.latency < float("inf"), "the search ended without KeyboardInterrupt"
    assert stopped.latency < max(2.0, expected / 4), f"stopped {stopped.latency:.2f} s after Ctrl-C of a {expected:.1f} s batch"
    # The index answers as before.
    a = index.search(probe[:50], 10, ef=400)
    assert a.ids.shape == (50, 10) and (a.ids >= 0).all()

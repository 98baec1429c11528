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

import omendex

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
    index = omendex.Index(dim, ef_construction=400, seed=1)
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
    index = omendex.Index(32, seed=2) if shape == "index" else omendex.SegmentedIndex.build(base, segments=2, seed=2)
    if shape == "index":
        assert isinstance(index, omendex.Index)
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


def rows_for(seconds: float, rate: float, dim: int, seed: int) -> np.ndarray:
    """About `seconds` of building at `rate` rows a second (between 5,000 and 200,000 rows)."""
    n = int(min(200_000, max(5_000, seconds * rate)))
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)


def build_rate(dim: int) -> float:
    """Rows a second of a 2-thread build of 3,000 rows, measured here."""
    probe = np.random.default_rng(9).standard_normal((3_000, dim)).astype(np.float32)
    started = time.monotonic()
    omendex.Index(dim, seed=9).add(probe, threads=2)
    return len(probe) / (time.monotonic() - started)


def test_ctrl_c_stops_add_segment_and_adds_nothing() -> None:
    dim = 32
    rate = build_rate(dim)
    index = omendex.SegmentedIndex.build(np.random.default_rng(3).standard_normal((1_000, dim)).astype(np.float32), segments=2, seed=3)
    rows = rows_for(6.0, rate, dim, 4)
    expected = len(rows) / rate
    with Interrupt(0.3) as stopped:
        index.add_segment(rows, threads=2)
    assert stopped.latency < float("inf"), "add_segment ended without KeyboardInterrupt"
    assert (len(index), index.segment_count) == (1_000, 2), "the segment is not kept"
    assert stopped.latency < max(1.5, expected / 4), f"stopped {stopped.latency:.2f} s after Ctrl-C of a {expected:.1f} s build"


@pytest.mark.parametrize("call", ["rebuild", "compact"])
def test_ctrl_c_stops_a_rebuild_or_compaction_and_keeps_the_graph(call: str) -> None:
    dim = 32
    rate = build_rate(dim)
    rows = rows_for(3.0, rate, dim, 5)
    index = omendex.Index(dim, seed=5)
    index.add(rows, threads=2)
    # Deleted vectors whose neighbours a compaction must re-link: a third of them.
    for i in range(0, len(rows), 3):
        index.delete(i)
    queries = rows[1:51]
    before = index.search(queries, 10, ef=64)
    expected = len(rows) / rate
    with Interrupt(0.3) as stopped:
        getattr(index, call)(threads=2)
    if stopped.latency == float("inf"):
        pytest.skip(f"{call} ended within 0.3 s here: nothing to interrupt")
    assert index.deleted == len(range(0, len(rows), 3)), "the index is as it was"
    after = index.search(queries, 10, ef=64)
    np.testing.assert_array_equal(after.ids, before.ids)
    index.check_invariants()
    if call == "rebuild":
        assert stopped.latency < max(1.5, expected / 4), f"stopped {stopped.latency:.2f} s after Ctrl-C of a {expected:.1f} s build"


def test_ctrl_c_stops_a_merge_and_leaves_the_segments() -> None:
    dim = 32
    rate = build_rate(dim)
    # The merge inserts all but the largest segment's rows (at a smaller beam than a build's):
    # four segments, so three quarters of the rows, about 4 s of building.
    rows = rows_for(5.0, rate, dim, 6)
    index = omendex.SegmentedIndex.build(rows, segments=4, seed=6, threads=2)
    queries = rows[1:51]
    before = index.search(queries, 10, ef=64)
    expected = 0.75 * len(rows) / rate
    with Interrupt(0.3) as stopped:
        index.merged(threads=2)
    if stopped.latency == float("inf"):
        pytest.skip("the merge ended within 0.3 s here: nothing to interrupt")
    assert (len(index), index.segment_count) == (len(rows), 4), "the index is as it was"
    np.testing.assert_array_equal(index.search(queries, 10, ef=64).ids, before.ids)
    assert stopped.latency < max(1.5, expected / 4), f"stopped {stopped.latency:.2f} s after Ctrl-C of a {expected:.1f} s merge"


def test_ctrl_c_stops_a_segmented_build() -> None:
    dim = 32
    rate = build_rate(dim)
    rows = rows_for(5.0, rate, dim, 7)
    expected = len(rows) / rate
    with Interrupt(0.3) as stopped:
        omendex.SegmentedIndex.build(rows, segments=2, seed=7, threads=2)
    if stopped.latency == float("inf"):
        pytest.skip("the build ended within 0.3 s here: nothing to interrupt")
    assert stopped.latency < max(1.5, expected / 4), f"stopped {stopped.latency:.2f} s after Ctrl-C of a {expected:.1f} s build"

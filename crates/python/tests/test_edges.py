"""What the package survives at its edges: ids and filters that could be misread, and many
thread counts."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

import omen


def data(n: int, dim: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)


def test_merge_topk_refuses_ids_outside_int64() -> None:
    d = np.array([[0.1, 0.2]], dtype=np.float32)
    # 2**64 - 1 once read as int64 is -1, the padding marker: it would vanish from the answer.
    for big in (2**64 - 1, 2**63):
        with pytest.raises(ValueError, match="int64"):
            omen.merge_topk([(np.array([[3, big]], dtype=np.uint64), d)], 2)
        with pytest.raises(ValueError, match="int64"):
            omen.merge_topk([(np.array([[3, 4]]), d), ([[big]], d[:, :1])], 2)
        with pytest.raises(ValueError):  # numpy reads this list as float64: not integers
            omen.merge_topk([([[big, 5]], d)], 2)
    # Every id int64 holds still merges, from any integer type; -1 in int64 stays padding.
    top = np.array([[2**63 - 1, 7]], dtype=np.uint64)
    assert omen.merge_topk([(top, d)], 2).ids.tolist() == [[2**63 - 1, 7]]
    padded = omen.merge_topk([(np.array([[5, -1]]), np.array([[0.3, np.inf]], dtype=np.float32))], 2)
    assert padded.ids.tolist() == [[5, -1]]




@pytest.mark.parametrize("shape", ["index", "segmented"])
def test_a_filter_is_a_bool_mask_or_wide_integer_ids_and_nothing_else(shape: str) -> None:
    base = data(300, 8, 1)
    index: omen.Index | omen.SegmentedIndex
    if shape == "index":
        index = omen.Index(8, seed=3)
        index.add(base)
    else:
        index = omen.SegmentedIndex.build(base, segments=2, seed=3)
    q = data(4, 8, 2)
    mask = np.zeros(300, dtype=bool)
    mask[[5, 17, 200]] = True
    want = index.search(q, k=3, ef=300, filter=mask).ids
    assert sorted(want[0].tolist()) == [5, 17, 200]
    ids = np.array([5, 17, 200])
    for dtype in (np.int32, np.int64, np.uint32, np.uint64):
        np.testing.assert_array_equal(index.search(q, k=3, ef=300, filter=ids.astype(dtype)).ids, want)
    np.testing.assert_array_equal(index.search(q, k=3, ef=300, filter=[5, 17, 200]).ids, want)
    np.testing.assert_array_equal(index.search(q, k=3, ef=300, filter=mask.tolist()).ids, want)
    assert (index.search(q, k=3, filter=[]).ids == -1).all()
    # A mask of 0s and 1s in a narrow integer type would read as the ids {0, 1}; floats are
    # neither a mask nor ids. Each is refused, naming the conversion that says which was meant.
    for other in (np.int8, np.uint8, np.int16, np.uint16, np.float16, np.float32, np.float64):
        for bad in (mask.astype(other), ids.astype(other), np.zeros(0, dtype=other)):
            with pytest.raises(ValueError, match=r"astype\(bool\).*astype\(np\.int64\)"):
                index.search(q, k=3, filter=bad)
    for bad_list in ([1.0, 2.0], ["a"], [None]):
        with pytest.raises(ValueError, match="astype"):
            index.search(q, k=3, filter=bad_list)  # type: ignore[arg-type]


def threads_now() -> int:
    """This process's OS thread count."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    raise AssertionError("no Threads: line in /proc/self/status")


# How many thread counts' pools the binding keeps between calls (KEPT in src/pools.rs).
KEPT_POOLS = 4


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads /proc/self/status (Linux)")
def test_many_thread_counts_leave_only_the_kept_pools_threads() -> None:
    index = omen.Index(4, seed=1)
    index.add(data(50, 4, 70), threads=1)
    q = data(4, 4, 71)
    # Pools kept by earlier calls are evicted below, so this bounds what is left from above.
    before = threads_now()
    counts = list(range(2, 42))  # 860 threads, were every pool kept
    for t in counts:
        assert index.search(q, k=1, threads=t).ids.shape == (4, 1)
    # The kept pools are those of the most recent counts; an evicted pool's threads exit on
    # their own once it is dropped, so the count is polled until it settles.
    bound = before + sum(counts[-KEPT_POOLS:]) + 8
    deadline = time.monotonic() + 60
    while (now := threads_now()) > bound and time.monotonic() < deadline:
        time.sleep(0.05)
    assert now <= bound, f"{now} threads after {len(counts)} thread counts, {before} before (bound {bound})"

"""The calls users of other ANN libraries reach for: many ids at once, the live ids, bytes
and file objects, progress callbacks; each with bad input that leaves the index as it was."""

from __future__ import annotations

import io
import pickle
from typing import Any, Union

import numpy as np
import pytest

import omendex

Shape = Union[omendex.Index, omendex.SegmentedIndex]


def data(n: int, dim: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)


def make(shape: str, rows: np.ndarray) -> Shape:
    if shape == "index":
        index = omendex.Index(rows.shape[1], seed=1)
        index.add(rows, threads=2)
        return index
    return omendex.SegmentedIndex.build(rows, segments=3, seed=1, threads=2)


SHAPES = ["index", "segmented"]


def answers(index: Shape, queries: np.ndarray) -> np.ndarray:
    return index.search(queries, 5, ef=32).ids


@pytest.mark.parametrize("shape", SHAPES)
def test_get_of_many_ids_gives_their_rows_in_order(shape: str) -> None:
    rows = data(300, 6, 1)
    index = make(shape, rows)
    for ids in ([7, 3, 7, 250], np.array([7, 3], dtype=np.uint32), np.array([299], dtype=np.int16), range(5)):
        want = rows[list(ids)]
        np.testing.assert_array_equal(index.get(ids), want)
    empty = index.get([])
    assert empty.shape == (0, 6) and empty.dtype == np.float32
    # One id keeps its old answer: the row, or None.
    np.testing.assert_array_equal(index.get(4), rows[4])
    assert index.get(10**6) is None and index.get(-1) is None


@pytest.mark.parametrize("shape", SHAPES)
def test_get_of_many_ids_names_the_first_missing_one(shape: str) -> None:
    index = make(shape, data(100, 4, 2))
    index.delete(5)
    for ids, missing in (([1, 5, 2], 5), ([0, 100, -3], 100), ([-3, 0], -3), (np.array([2**63 + 1], dtype=np.uint64), 2**63 + 1)):
        with pytest.raises(KeyError) as e:
            index.get(ids)
        assert e.value.args[0] == missing
    for bad in ([[1, 2]], [1.5, 2.0], np.array([True, False])):
        with pytest.raises(ValueError):
            index.get(bad)


@pytest.mark.parametrize("shape", SHAPES)
def test_delete_of_many_ids_is_all_or_nothing(shape: str) -> None:
    rows = data(400, 5, 3)
    index = make(shape, rows)
    queries = rows[:20]
    before = answers(index, queries)
    with pytest.raises(KeyError) as e:
        index.delete([1, 2, 999, 3])
    assert e.value.args[0] == 999
    assert len(index) == 400 and index.deleted == 0
    np.testing.assert_array_equal(answers(index, queries), before)
    index.delete(np.array([10, 11, 10, 12], dtype=np.int32))
    assert len(index) == 397 and index.deleted == 3
    assert not ({10, 11, 12} & set(answers(index, queries).ravel().tolist()))
    with pytest.raises(KeyError):
        index.delete([13, 11])  # 11 is deleted already
    assert 13 in index and len(index) == 397
    index.delete([])
    assert len(index) == 397


@pytest.mark.parametrize("shape", SHAPES)
def test_the_live_ids_and_iteration(shape: str) -> None:
    index = make(shape, data(50, 3, 4))
    index.delete([0, 49])
    ids = index.ids()
    assert ids.dtype == np.int64 and sorted(ids.tolist()) == list(range(1, 49))
    assert sorted(index) == list(range(1, 49))
    assert all(isinstance(i, int) for i in index)


@pytest.mark.parametrize("shape", SHAPES)
def test_bytes_and_file_objects_round_trip(shape: str) -> None:
    rows = data(500, 8, 5)
    index = make(shape, rows)
    index.delete(3)
    queries = rows[:30]
    cls = type(index)
    blob = index.to_bytes()
    assert isinstance(blob, bytes) and blob == index.to_bytes()
    for again in (cls.from_bytes(blob), cls.from_bytes(bytearray(blob)), cls.from_bytes(memoryview(blob)), pickle.loads(pickle.dumps(index))):
        assert type(again) is cls and len(again) == 499 and 3 not in again
        np.testing.assert_array_equal(answers(again, queries), answers(index, queries))
    assert index.save() == blob
    np.testing.assert_array_equal(answers(cls.load(blob), queries), answers(index, queries))
    f = io.BytesIO()
    index.save(f)
    assert f.getvalue() == blob
    f.seek(0)
    np.testing.assert_array_equal(answers(cls.load(f), queries), answers(index, queries))
    with pytest.raises(ValueError):
        cls.load(io.BytesIO(blob), mmap=True)
    with pytest.raises(TypeError):
        cls.load(io.StringIO("text"))
    with pytest.raises(TypeError):
        cls.from_bytes("not bytes")  # type: ignore[arg-type]


@pytest.mark.parametrize("shape", SHAPES)
def test_damaged_bytes_are_refused_with_a_typed_error(shape: str) -> None:
    index = make(shape, data(300, 4, 6))
    cls = type(index)
    blob = index.to_bytes()
    other_shape = "segmented" if shape == "index" else "index"
    damaged = [b"", blob[:7], blob[: len(blob) // 2], blob[:-1], make(other_shape, data(50, 4, 7)).to_bytes()]
    rng = np.random.default_rng(8)
    for _ in range(20):
        flipped = bytearray(blob)
        at = int(rng.integers(len(flipped)))
        flipped[at] ^= 1 << int(rng.integers(8))
        damaged.append(bytes(flipped))
    refused = 0
    for bad in damaged:
        try:
            again = cls.from_bytes(bad)
        except omendex.CorruptIndexError:
            refused += 1
            continue
        # A flip in bytes no check covers (a tar header's padding) may load: then the index is whole.
        again.check_invariants()
        assert len(again) == len(index)
    # Every truncation and the other shape's bytes are refused; of the flips, a file's bytes
    # are all checksummed (an Index refuses every one).
    assert refused >= 5 + (20 if cls is omendex.Index else 0), f"{refused} of {len(damaged)} refused"


@pytest.mark.parametrize("threads", [1, 2])
def test_progress_reaches_the_total_through_a_callable_or_a_bar(threads: int) -> None:
    rows = data(3000, 16, 9)
    seen: list[tuple[int, int]] = []
    index = omendex.Index(16, seed=9)
    index.add(rows, threads=threads, progress=lambda done, total: seen.append((done, total)))
    assert seen and seen[-1] == (3000, 3000)
    assert all(total == 3000 for _, total in seen)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)

    class Bar:  # what tqdm's bar offers: total, update(n)
        def __init__(self) -> None:
            self.total: Any = None
            self.n = 0

        def update(self, n: int) -> None:
            self.n += n

    bar = Bar()
    omendex.Index(16).add(rows, threads=threads, progress=bar)
    assert (bar.total, bar.n) == (3000, 3000)
    bar = Bar()
    omendex.SegmentedIndex.build(rows, segments=2, threads=threads, progress=bar)
    assert (bar.total, bar.n) == (3000, 3000)
    built: list[tuple[int, int]] = []
    omendex.SegmentedIndex.build(rows, segments=2, threads=threads, progress=lambda d, t: built.append((d, t)))
    assert built[-1] == (3000, 3000) and all(d <= t for d, t in built)


def test_progress_with_tqdm_itself() -> None:
    tqdm = pytest.importorskip("tqdm")
    rows = data(2000, 8, 10)
    with tqdm.tqdm(disable=False, file=io.StringIO()) as bar:
        omendex.Index(8).add(rows, progress=bar)
        assert (bar.total, bar.n) == (2000, 2000)


def test_a_progress_callback_that_raises_leaves_the_index_as_it_was() -> None:
    rows = data(4000, 16, 11)
    index = omendex.Index(16, seed=11)
    index.add(rows[:500], threads=2)
    queries = rows[:20]
    before = answers(index, queries)

    def fail_late(done: int, total: int) -> None:
        if done > 600:
            raise RuntimeError("stop here")

    with pytest.raises(RuntimeError, match="stop here"):
        index.add(rows[500:], threads=2, progress=fail_late)
    assert len(index) == 500
    np.testing.assert_array_equal(answers(index, queries), before)
    index.check_invariants()
    fresh = index.add(rows[500:510])
    assert fresh.min() >= 500  # ids handed out before are not handed out again

    def fail(done: int, total: int) -> None:
        raise ValueError("no")

    with pytest.raises(ValueError, match="no"):
        omendex.SegmentedIndex.build(rows, segments=2, threads=2, progress=fail)
    bad: list[Any] = [42, "x"]
    for progress in bad:
        with pytest.raises(TypeError):
            index.add(rows[:5], progress=progress)
    assert len(index) == 510

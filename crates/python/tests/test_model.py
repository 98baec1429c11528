"""Model tests: random sequences of calls on an index and on a plain dict of vectors, which must
agree after every step (ids handed out, ids refused, deletes, compaction, pickling, answers)."""

from __future__ import annotations

import pickle
from typing import Any, Union

import numpy as np
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

import omendex

DIM = 4
IDS = st.integers(0, 60)


def rows(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)


class Model(RuleBasedStateMachine):
    """What both shapes share; `make` and `grow` differ."""

    index: Union[omendex.Index, omendex.SegmentedIndex]

    def __init__(self) -> None:
        super().__init__()
        self.live: dict[int, np.ndarray] = {}
        self.next = 0  # above every id the index ever held
        self.pending = 0  # deleted, not yet compacted

    def grow(self, vecs: np.ndarray, ids: Any) -> np.ndarray:
        raise NotImplementedError

    def take(self, vecs: np.ndarray, given: list[int] | None) -> None:
        refused = given is not None and (len(set(given)) < len(given) or any(i in self.live for i in given))
        if refused:
            before = len(self.index)
            with pytest.raises(ValueError):
                self.grow(vecs, given)
            assert len(self.index) == before
            return
        got = self.grow(vecs, given)
        want = given if given is not None else list(range(self.next, self.next + len(vecs)))
        assert got.dtype == np.int64 and got.tolist() == want
        for i, v in zip(want, vecs):
            self.live[i] = v
        self.next = max(self.next, max(want) + 1)

    @rule(n=st.integers(1, 12), seed=st.integers(0, 2**32 - 1))
    def add_new(self, n: int, seed: int) -> None:
        self.take(rows(n, seed), None)

    @rule(ids=st.lists(IDS, min_size=1, max_size=12), seed=st.integers(0, 2**32 - 1))
    def add_named(self, ids: list[int], seed: int) -> None:
        self.take(rows(len(ids), seed), ids)

    @rule(id=IDS)
    def delete(self, id: int) -> None:
        if id in self.live:
            self.index.delete(id)
            del self.live[id]
            self.pending += 1
        else:
            with pytest.raises(KeyError):
                self.index.delete(id)

    @rule()
    def compact(self) -> None:
        assert self.index.compact() == self.pending
        self.pending = 0

    @rule()
    def pickle_round_trip(self) -> None:
        self.index = pickle.loads(pickle.dumps(self.index))

    @rule(id=IDS)
    def get(self, id: int) -> None:
        v = self.index.get(id)
        if id in self.live:
            assert v is not None
            np.testing.assert_array_equal(v, self.live[id])
        else:
            assert v is None and id not in self.index

    @rule(k=st.integers(1, 12), seed=st.integers(0, 2**32 - 1), filtered=st.booleans())
    def search(self, k: int, seed: int, filtered: bool) -> None:
        q = rows(3, seed)
        live = sorted(self.live)
        if not live:
            return
        base = np.stack([self.live[i] for i in live])
        exact = ((q[:, None, :] - base[None, :, :]) ** 2).sum(-1)
        allowed = np.array(live[::2], dtype=np.int64) if filtered else None
        got = self.index.search(q, k, ef=200, filter=allowed)
        pool = set(live[::2]) if filtered else set(live)
        n = min(k, len(pool))
        assert got.ids.shape == (3, k) and got.distances.shape == (3, k)
        assert (got.ids[:, n:] == -1).all() and np.isinf(got.distances[:, n:]).all()
        for r in range(3):
            ids = got.ids[r, :n].tolist()
            assert len(set(ids)) == n and set(ids) <= pool
            # Each distance is that id's, in order; the set is the exact top-n by distance.
            col = {i: c for c, i in enumerate(live)}
            mine = exact[r, [col[i] for i in ids]]
            np.testing.assert_allclose(got.distances[r, :n], mine, rtol=1e-5, atol=1e-5)
            assert (np.diff(got.distances[r, :n]) >= 0).all()
            best = np.sort(exact[r, [col[i] for i in sorted(pool)]])[:n]
            np.testing.assert_allclose(np.sort(mine), best, rtol=1e-5, atol=1e-5)

    @invariant()
    def agrees(self) -> None:
        assert len(self.index) == len(self.live)
        assert self.index.deleted == self.pending
        self.index.check_invariants()


class IndexModel(Model):
    def __init__(self) -> None:
        super().__init__()
        self.index = omendex.Index(DIM, m=6, ef_construction=32, seed=1)

    def grow(self, vecs: np.ndarray, ids: Any) -> np.ndarray:
        assert isinstance(self.index, omendex.Index)
        return self.index.add(vecs, ids)

    @rule()
    def rebuild(self) -> None:
        assert isinstance(self.index, omendex.Index)
        assert self.index.rebuild() == self.pending
        self.pending = 0


class SegmentedModel(Model):
    @initialize(n=st.integers(1, 20), segments=st.integers(1, 3), seed=st.integers(0, 2**32 - 1))
    def build(self, n: int, segments: int, seed: int) -> None:
        vecs = rows(n, seed)
        self.index = omendex.SegmentedIndex.build(vecs, segments=min(segments, n), m=6, ef_construction=32, seed=1)
        self.live = dict(enumerate(vecs))
        self.next = n

    def grow(self, vecs: np.ndarray, ids: Any) -> np.ndarray:
        assert isinstance(self.index, omendex.SegmentedIndex)
        return self.index.add_segment(vecs, ids)


TestIndexModel = IndexModel.TestCase
TestIndexModel.settings = settings(max_examples=200, stateful_step_count=30, deadline=None)
TestSegmentedModel = SegmentedModel.TestCase
TestSegmentedModel.settings = settings(max_examples=200, stateful_step_count=30, deadline=None)

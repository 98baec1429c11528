"""What the package survives at its edges: ids and filters that could be misread."""

from __future__ import annotations

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

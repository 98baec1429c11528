"""omendex in the shape of ann-benchmarks' ``BaseANN`` (``fit``, ``set_query_arguments``,
``query``, ``batch_query``, ``get_batch_results``, ``get_memory_usage``), so omendex drops into that
harness: ``crates/python/ann_benchmarks/algorithms/omendex/`` holds its entry in the upstream
layout (``config.yml``, a ``module.py`` subclassing this with the harness's ``BaseANN``, and a
``Dockerfile``). It does not import ann-benchmarks, so it
works (and is tested) without it.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
import numpy.typing as npt

from omendex import Index, Neighbors

# ann-benchmarks' metric names -> omendex's.
METRICS = {"euclidean": "l2", "angular": "cosine", "ip": "ip", "dot": "ip"}


class OmendexANN:
    """``OmendexANN(metric, {"M": 16, "efConstruction": 200})``, then ``fit(X)`` and
    ``set_query_arguments(ef)`` before the queries."""

    def __init__(self, metric: str, method_param: dict[str, Any]) -> None:
        if metric not in METRICS:
            raise ValueError(f"metric {metric!r} is not one of {sorted(METRICS)}")
        self.metric = METRICS[metric]
        self.m = int(method_param.get("M", 16))
        self.ef_construction = int(method_param.get("efConstruction", 200))
        self.ef = 64
        self.index: Optional[Index] = None
        self.batch: Optional[Neighbors] = None
        self.name = f"omendex(M={self.m}, efC={self.ef_construction})"

    def fit(self, X: npt.ArrayLike) -> None:
        """Builds the index of the rows of ``X`` (every core)."""
        arr = np.asarray(X)
        if arr.ndim != 2:
            raise ValueError(f"X must be 2-D, not {arr.ndim}-D")
        self.index = Index(arr.shape[1], self.metric, m=self.m, ef_construction=self.ef_construction)
        self.index.add(arr)

    def set_query_arguments(self, ef: int) -> None:
        self.ef = int(ef)
        self.name = f"omendex(M={self.m}, efC={self.ef_construction}, ef={self.ef})"

    def _built(self) -> Index:
        if self.index is None:
            raise ValueError("call fit first")
        return self.index

    def query(self, v: npt.ArrayLike, n: int) -> npt.NDArray[np.int64]:
        """The ids of the ``n`` nearest rows of ``X`` to ``v``, nearest first."""
        row: npt.NDArray[np.int64] = self._built().search(v, k=n, ef=max(self.ef, n), threads=1).ids[0]
        return row[row >= 0]

    def batch_query(self, X: npt.ArrayLike, n: int) -> None:
        """Answers every row of ``X`` at once (in parallel on every core)."""
        self.batch = self._built().search(X, k=n, ef=max(self.ef, n))

    def get_batch_results(self) -> list[npt.NDArray[np.int64]]:
        if self.batch is None:
            raise ValueError("call batch_query first")
        return [row[row >= 0] for row in self.batch.ids]

    def get_memory_usage(self) -> float:
        """Kilobytes of heap the index holds (ann-benchmarks reports memory in kB)."""
        return self._built().memory_usage / 1024.0

    def done(self) -> None:
        self.index = None
        self.batch = None

    def __str__(self) -> str:
        return self.name

"""The Python package answers as the Rust API does: the same data, parameters and seed through
``omendex.Index`` / ``omendex.SegmentedIndex`` and through the Rust example ``search_files`` (built
with cargo from this repository) give the same ids and the same distances, bit for bit."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import omendex

ROOT = Path(__file__).resolve().parents[3]


def write_fvecs(path: Path, rows: np.ndarray) -> None:
    n, d = rows.shape
    out = np.empty((n, d + 1), dtype=np.float32)
    out[:, 0] = np.array([d], dtype=np.int32).view(np.float32)[0]
    out[:, 1:] = rows
    out.tofile(path)


def rust_answers(tmp: Path, base: np.ndarray, queries: np.ndarray, args: list[str], k: int) -> tuple[np.ndarray, np.ndarray]:
    cargo = shutil.which("cargo")
    if cargo is None or not (ROOT / "Cargo.toml").is_file():
        pytest.skip("needs cargo and the omendex repository (this test runs from a source checkout)")
    write_fvecs(tmp / "base.fvecs", base)
    write_fvecs(tmp / "query.fvecs", queries)
    out = tmp / "answers.bin"
    cmd = [cargo, "run", "--quiet", "--locked", "-p", "omendex", "--example", "search_files", "--"]
    cmd += [str(tmp / "base.fvecs"), str(tmp / "query.fvecs"), str(out), *args]
    subprocess.run(cmd, cwd=ROOT, check=True, env={**os.environ, "CARGO_TERM_COLOR": "never"})
    raw = out.read_bytes()
    n = queries.shape[0]
    ids = np.frombuffer(raw[: 8 * n * k], dtype="<i8").reshape(n, k)
    dists = np.frombuffer(raw[8 * n * k :], dtype="<f4").reshape(n, k)
    return ids, dists


@pytest.mark.parametrize("metric", ["l2", "ip", "cosine"])
@pytest.mark.parametrize("segments", [0, 3])
def test_python_and_rust_give_the_same_answers(tmp_path: Path, metric: str, segments: int) -> None:
    rng = np.random.default_rng(21)
    base = rng.standard_normal((1500, 12)).astype(np.float32)
    queries = rng.standard_normal((40, 12)).astype(np.float32)
    if metric == "ip":  # ip needs rows of norm at most one
        base /= np.linalg.norm(base, axis=1, keepdims=True)
        queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    # A narrow beam, so the answers depend on the graph and not only on the data.
    m, efc, seed, k, ef = 8, 40, 99, 10, 12
    want_ids, want_dists = rust_answers(tmp_path, base, queries, [metric, str(m), str(efc), str(seed), str(k), str(ef), str(segments)], k)
    if segments == 0:
        index: omendex.Index | omendex.SegmentedIndex = omendex.Index(12, metric, m=m, ef_construction=efc, seed=seed)
        # Inserted in chunks as the package does, on one thread: the graph must not depend on it.
        index.add(base, threads=1)
    else:
        index = omendex.SegmentedIndex.build(base, segments=segments, metric=metric, m=m, ef_construction=efc, seed=seed, threads=1)
    got = index.search(queries, k, ef=ef, threads=1)
    np.testing.assert_array_equal(got.ids, want_ids)
    np.testing.assert_array_equal(got.distances, want_dists)
    # The comparison is of graphs, not of exact answers: a wide beam answers differently.
    wide = index.search(queries, k, ef=1500, threads=1)
    assert (wide.ids != got.ids).any()

"""A larger 384-d set with the minilm-rustdoc data's shape, as a TEXMEX folder the benchmarks read.

    python crates/python/benchmarks/minilm_like.py --minilm ../shared/data/minilm-rustdoc \\
        --n 200000 --out target/peer-data/minilm-like-200000

The minilm-rustdoc base repeated until ``n`` rows, each copy moved by N(0, 0.02^2) per component
and renormalised (the rule of ``distributed.py``'s ``minilm-like``, seed 0), its 1,000 queries,
and the exact top-100 of each query by squared l2 (the cosine order on unit vectors), computed in
float64. Writes base.fvecs, query.fvecs and groundtruth.ivecs; the same bytes on every run.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

GT_K = 100


def read_fvecs(path: str) -> np.ndarray:
    a = np.fromfile(path, dtype="<i4")
    d = int(a[0])
    return a.reshape(-1, d + 1)[:, 1:].view("<f4").copy()


def write_vecs(path: str, rows: np.ndarray, dtype: str) -> None:
    n, d = rows.shape
    out = np.empty((n, d + 1), dtype=dtype)
    out.view("<i4")[:, 0] = d
    out[:, 1:] = rows
    out.tofile(path)


def minilm_like(src: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    reps = -(-n // len(src))
    base = np.concatenate([src + rng.normal(0, 0.02, src.shape).astype(np.float32) for _ in range(reps)])[:n]
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    return np.ascontiguousarray(base, dtype=np.float32)


def exact_top(base: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    b = base.astype(np.float64)
    norms = (b**2).sum(1)
    out = np.empty((len(queries), k), dtype=np.int32)
    for at in range(0, len(queries), 25):
        q = queries[at : at + 25].astype(np.float64)
        d = norms[None, :] - 2 * q @ b.T
        top = np.argpartition(d, k, axis=1)[:, :k]
        # Nearest first, ties by id.
        for i, (row, dist) in enumerate(zip(top, np.take_along_axis(d, top, 1))):
            out[at + i] = row[np.lexsort((row, dist))]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minilm", required=True, help="the minilm-rustdoc TEXMEX folder")
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    if args.n < GT_K + 1:
        raise SystemExit(f"--n must be above {GT_K}")
    started = time.time()
    src = read_fvecs(os.path.join(args.minilm, "base.fvecs"))
    queries = read_fvecs(os.path.join(args.minilm, "query.fvecs"))
    base = minilm_like(src, args.n)
    truth = exact_top(base, queries, GT_K)
    os.makedirs(args.out, exist_ok=True)
    write_vecs(os.path.join(args.out, "base.fvecs"), base, "<f4")
    write_vecs(os.path.join(args.out, "query.fvecs"), queries, "<f4")
    write_vecs(os.path.join(args.out, "groundtruth.ivecs"), truth, "<i4")
    print(f"{args.out}: base {base.shape}, query {queries.shape}, truth {truth.shape} in {time.time() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

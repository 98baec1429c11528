"""omendex.distributed beside a local SegmentedIndex on the same cores, alternating.

    python crates/python/benchmarks/distributed.py --family clustered-128 --n 1000000 \\
        --segments 8 --reps 3 --out docs/results/DATE-distributed.jsonl
    python crates/python/benchmarks/distributed.py --family minilm-like --n 200000 \\
        --minilm ../shared/data/minilm-rustdoc --segments 4 --reps 3 --out ...

Families: ``clustered-128`` (100 centres ~ N(0,1)^128, points = centre + N(0, 0.3^2), the
peers' generator's rule) and ``minilm-like`` (the minilm-rustdoc base repeated until n rows,
each copy moved by N(0, 0.02^2) per component and renormalised; its queries). Exact top-10 by
numpy. Each repetition, in alternating order: a local ``SegmentedIndex.build`` (then its
``save``) on every core of a local Ray of the same cores, and ``distributed.build`` into a
folder; then a ``Searcher`` (one actor per segment) and the local index answer the queries
in one batch at the smallest ef reaching recall@10 0.95 on the local index. One JSON line per
repetition; a summary on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

import numpy as np
import ray

import omendex
from omendex import distributed


def read_fvecs(path: str) -> np.ndarray:
    a = np.fromfile(path, dtype="<i4")
    d = int(a[0])
    return np.ascontiguousarray(a.reshape(-1, d + 1)[:, 1:]).view("<f4")


def dataset(family: str, n: int, minilm: str | None, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    if family == "clustered-128":
        centres = rng.standard_normal((100, 128)).astype(np.float32)
        base = centres[rng.integers(0, 100, n)] + rng.normal(0, 0.3, (n, 128)).astype(np.float32)
        queries = centres[rng.integers(0, 100, 1000)] + rng.normal(0, 0.3, (1000, 128)).astype(np.float32)
        return base.astype(np.float32), queries.astype(np.float32)
    if family == "minilm-like":
        if minilm is None:
            raise SystemExit("minilm-like needs --minilm DIR")
        src = read_fvecs(os.path.join(minilm, "base.fvecs"))
        queries = read_fvecs(os.path.join(minilm, "query.fvecs"))
        reps = -(-n // len(src))
        base = np.concatenate([src + rng.normal(0, 0.02, src.shape).astype(np.float32) for _ in range(reps)])[:n]
        base /= np.linalg.norm(base, axis=1, keepdims=True)
        return np.ascontiguousarray(base, dtype=np.float32), queries
    raise SystemExit(f"unknown family {family}")


def exact_top10(base: np.ndarray, queries: np.ndarray) -> np.ndarray:
    norms = (base.astype(np.float64) ** 2).sum(1)
    out = np.empty((len(queries), 10), dtype=np.int64)
    for at in range(0, len(queries), 50):
        q = queries[at : at + 50].astype(np.float64)
        d = norms[None, :] - 2 * q @ base.T.astype(np.float64)
        top = np.argpartition(d, 10, axis=1)[:, :10]
        order = np.take_along_axis(d, top, 1).argsort(1)
        out[at : at + 50] = np.take_along_axis(top, order, 1)
    return out


def recall(ids: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids.tolist(), truth.tolist())]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--family", required=True, choices=["clustered-128", "minilm-like"])
    ap.add_argument("--n", type=int, required=True)
    ap.add_argument("--minilm")
    ap.add_argument("--segments", type=int, default=8)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--cpus", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--out")
    a = ap.parse_args()

    base, queries = dataset(a.family, a.n, a.minilm)
    truth = exact_top10(base, queries)
    print(f"{a.family}: {base.shape}, ground truth ready", file=sys.stderr)
    ray.init(num_cpus=a.cpus, include_dashboard=False, log_to_driver=False)
    work = tempfile.mkdtemp(prefix="omendex-dist-")
    params = dict(m=16, ef_construction=200, seed=1)
    runs = []
    for rep in range(a.reps):
        res: dict[str, object] = {"family": a.family, "n": a.n, "dim": base.shape[1], "segments": a.segments, "cpus": a.cpus, "rep": rep}
        order = ["local", "distributed"] if rep % 2 == 0 else ["distributed", "local"]
        for side in order:
            out = os.path.join(work, side)
            shutil.rmtree(out, ignore_errors=True)
            if side == "local":
                t = time.perf_counter()
                local = omendex.SegmentedIndex.build(base, segments=a.segments, threads=a.cpus, **params)
                res["local_build_s"] = round(time.perf_counter() - t, 2)
                t = time.perf_counter()
                local.save(out)
                res["local_save_s"] = round(time.perf_counter() - t, 2)
                res["memory_mb"] = round(local.memory_usage / 2**20, 1)
            else:
                t = time.perf_counter()
                distributed.build(base, out, segments=a.segments, cpus_per_task=1, **params)
                res["distributed_build_s"] = round(time.perf_counter() - t, 2)
        ef = next(ef for ef in (10, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512) if recall(local.search(queries, 10, ef=ef).ids, truth) >= 0.95)
        res["ef"] = ef
        searcher = distributed.Searcher(os.path.join(work, "distributed"), cpus_per_actor=a.cpus / a.segments)
        try:
            for side, answer in [("local", lambda: local.search(queries, 10, ef=ef, threads=a.cpus)), ("distributed", lambda: searcher.search(queries, 10, ef=ef))]:
                answer()
                times = []
                for _ in range(3):
                    t = time.perf_counter()
                    hits = answer()
                    times.append(time.perf_counter() - t)
                res[f"{side}_qps"] = round(len(queries) / statistics.median(times), 1)
                res[f"{side}_recall"] = round(recall(hits.ids, truth), 4)
        finally:
            searcher.close()
        del local
        res["vps_local"] = round(a.n / float(res["local_build_s"]), 1)  # type: ignore[arg-type]
        res["vps_distributed"] = round(a.n / float(res["distributed_build_s"]), 1)  # type: ignore[arg-type]
        runs.append(res)
        line = json.dumps(res)
        print(line, file=sys.stderr)
        if a.out:
            with open(a.out, "a") as f:
                f.write(line + "\n")
    ratio = [float(r["local_build_s"]) / float(r["distributed_build_s"]) for r in runs]  # type: ignore[arg-type]
    ratio_save = [(float(r["local_build_s"]) + float(r["local_save_s"])) / float(r["distributed_build_s"]) for r in runs]  # type: ignore[arg-type]
    print(f"distributed build throughput / local: median {statistics.median(ratio):.3f} ({min(ratio):.3f}-{max(ratio):.3f}); "
          f"against local build + save: {statistics.median(ratio_save):.3f}", file=sys.stderr)
    shutil.rmtree(work, ignore_errors=True)
    ray.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

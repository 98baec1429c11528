"""omendex beside hnswlib, FAISS and USearch, through Python, in one process, alternating.

    python crates/python/benchmarks/peers.py --data DIR [--data DIR ...] [--libs omendex,hnswlib,faiss,usearch]
                         (also omendex-int8, faiss-sq8, usearch-i8: the 8-bit variants)
                         [--threads 1,2] [--reps 3] [--rust REPO] [--out runs.jsonl]

``DIR`` is a TEXMEX folder (``base.fvecs``, ``query.fvecs``, ``groundtruth.ivecs`` with the exact
top-k by squared L2). The protocol is that of the peers' ``bench.py``, in one process so the
libraries take turns on the same (shared, noisy) machine: for each repetition, dataset and
thread count, each library in turn (the order rotates every repetition)

* builds an index of the base vectors (M, ef_construction; squared L2) on ``T`` threads, timed
  alone (``build_vps``); memory: the library's own figure and the growth of the process's RSS;
* sweeps ef upwards, one query per call on one thread (``qps``) and recall@k, until recall
  reaches the target; at that ef also all queries in one call on one thread and on every
  thread count asked for (the median of three calls each);
* reports the per-call overhead: at that ef, the time of one call (a bare loop over the
  queries, the median of three passes) minus the time per query inside a one-thread batch
  call (``overhead_us``: what a Python caller pays beyond the library's own search).

With ``--rust REPO`` (a checkout of omendex) each turn also runs ``cargo xtask bench`` on the same
data and threads (``omendex-rust``: the same index built from Rust, in its own process), so omendex's
build through Python is compared with the Rust runner's. Libraries that are not installed are
skipped with a message. Appends one JSON line per run to ``--out`` and prints, at the end, a
markdown table of medians with ratios to hnswlib.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any, Callable, Optional

import numpy as np
import numpy.typing as npt

DEFAULT_EFS = "10,16,24,32,48,64,96,128,192,256,384,512"
LIBS = ("omendex", "hnswlib", "faiss", "usearch")

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]


def read_vecs(path: str, dtype: str) -> npt.NDArray[Any]:
    """A TEXMEX file (each row: an int32 dimension, then that many values) as a 2-D array."""
    try:
        a = np.fromfile(path, dtype="<i4")
    except OSError as e:
        raise SystemExit(f"{path}: {e.strerror or e}") from None
    if a.size == 0:
        raise SystemExit(f"{path}: empty")
    d = int(a[0])
    if d <= 0 or a.size % (d + 1):
        raise SystemExit(f"{path}: not a TEXMEX file")
    a = a.reshape(-1, d + 1)
    if not (a[:, 0] == d).all():
        raise SystemExit(f"{path}: rows of different dimension")
    return np.ascontiguousarray(a[:, 1:]).view(dtype)


def rss_mb() -> Optional[float]:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def recall(ids: npt.NDArray[Any], truth: npt.NDArray[Any], k: int) -> float:
    hits = sum(len(set(ids[r, :k].tolist()) & set(truth[r, :k].tolist())) for r in range(ids.shape[0]))
    return float(hits) / (int(ids.shape[0]) * k)


class Lib:
    """One library behind the protocol's calls."""

    name = ""
    module = ""

    def __init__(self, dim: int, k: int) -> None:
        self.dim, self.k = dim, k
        self.mod: Any = importlib.import_module(self.module)

    def build(self, xb: F32, m: int, efc: int, seed: int, threads: int) -> None:
        raise NotImplementedError

    def set_ef(self, ef: int) -> None:
        raise NotImplementedError

    def one(self, q: F32) -> Any:
        raise NotImplementedError

    def batch(self, qs: F32, threads: int) -> I64:
        raise NotImplementedError

    def memory_mb(self) -> Optional[float]:
        return None

    def version(self) -> str:
        return str(getattr(self.mod, "__version__", "?"))

    def drop(self) -> None:
        self.index: Any = None


class Omendex(Lib):
    name, module = "omendex", "omendex"
    quantization = "none"

    def build(self, xb: F32, m: int, efc: int, seed: int, threads: int) -> None:
        self.index = self.mod.Index(self.dim, "l2", m=m, ef_construction=efc, seed=seed, quantization=self.quantization)
        self.index.add(xb, threads=threads)

    def set_ef(self, ef: int) -> None:
        self.ef = max(ef, self.k)

    def one(self, q: F32) -> Any:
        return self.index.search(q, self.k, ef=self.ef, threads=1).ids[0]

    def batch(self, qs: F32, threads: int) -> I64:
        ids: I64 = self.index.search(qs, self.k, ef=self.ef, threads=threads).ids
        return ids

    def memory_mb(self) -> Optional[float]:
        return float(self.index.memory_usage) / 2**20

    def version(self) -> str:
        from importlib.metadata import version

        return version("omendex")


class OmendexInt8(Omendex):
    """omendex walking on 8-bit codes, re-ranking on the float32 rows (``quantization="int8"``)."""

    name = "omendex-int8"
    quantization = "int8"


class Hnswlib(Lib):
    name, module = "hnswlib", "hnswlib"

    def build(self, xb: F32, m: int, efc: int, seed: int, threads: int) -> None:
        n = xb.shape[0]
        self.index = self.mod.Index(space="l2", dim=self.dim)
        self.index.init_index(max_elements=n, ef_construction=efc, M=m, random_seed=seed)
        self.index.add_items(xb, np.arange(n), num_threads=threads)

    def set_ef(self, ef: int) -> None:
        self.index.set_ef(max(ef, self.k))

    def one(self, q: F32) -> Any:
        return self.index.knn_query(q, k=self.k, num_threads=1)[0][0]

    def batch(self, qs: F32, threads: int) -> I64:
        return np.asarray(self.index.knn_query(qs, k=self.k, num_threads=threads)[0], dtype=np.int64)

    def memory_mb(self) -> Optional[float]:
        import tempfile

        with tempfile.TemporaryDirectory() as d:  # as the peers' protocol: the saved file's size
            path = os.path.join(d, "index.bin")
            self.index.save_index(path)
            return float(os.path.getsize(path)) / 2**20

    def version(self) -> str:
        from importlib.metadata import version

        return version("hnswlib")


class Faiss(Lib):
    name, module = "faiss", "faiss"

    def build(self, xb: F32, m: int, efc: int, seed: int, threads: int) -> None:
        self.mod.omp_set_num_threads(threads)
        self.index = self.mod.IndexHNSWFlat(self.dim, m)
        self.index.hnsw.efConstruction = efc
        self.index.add(xb)
        self.mod.omp_set_num_threads(1)

    def set_ef(self, ef: int) -> None:
        self.index.hnsw.efSearch = max(ef, self.k)

    def one(self, q: F32) -> Any:
        return self.index.search(q.reshape(1, -1), self.k)[1][0]

    def batch(self, qs: F32, threads: int) -> I64:
        self.mod.omp_set_num_threads(threads)
        try:
            return np.asarray(self.index.search(qs, self.k)[1], dtype=np.int64)
        finally:
            self.mod.omp_set_num_threads(1)

    def memory_mb(self) -> Optional[float]:
        return float(self.mod.serialize_index(self.index).size) / 2**20


class Usearch(Lib):
    name, module = "usearch", "usearch.index"

    def build(self, xb: F32, m: int, efc: int, seed: int, threads: int) -> None:
        self.index = self.mod.Index(ndim=self.dim, metric="l2sq", dtype="f32", connectivity=m, expansion_add=efc)
        self.index.add(np.arange(xb.shape[0], dtype=np.uint64), xb, threads=threads)

    def set_ef(self, ef: int) -> None:
        self.index.expansion_search = max(ef, self.k)

    def one(self, q: F32) -> Any:
        return self.index.search(q, self.k, threads=1).keys

    def batch(self, qs: F32, threads: int) -> I64:
        return np.asarray(self.index.search(qs, self.k, threads=threads).keys, dtype=np.int64)

    def memory_mb(self) -> Optional[float]:
        return float(self.index.memory_usage) / 2**20

    def version(self) -> str:
        from importlib.metadata import version

        return version("usearch")


class FaissSq8(Faiss):
    """FAISS ``IndexHNSWSQ(d, QT_8bit, M)``, as the peers' protocol runs it: trained on every base
    vector (timed with the build), built and searched on the codes, no re-ranking."""

    name = "faiss-sq8"

    def build(self, xb: F32, m: int, efc: int, seed: int, threads: int) -> None:
        self.mod.omp_set_num_threads(threads)
        self.index = self.mod.IndexHNSWSQ(self.dim, self.mod.ScalarQuantizer.QT_8bit, m)
        self.index.hnsw.efConstruction = efc
        self.index.train(xb)
        self.index.add(xb)
        self.mod.omp_set_num_threads(1)


class UsearchI8(Usearch):
    """USearch with ``dtype="i8"`` storage: built and searched on the codes, no re-ranking."""

    name = "usearch-i8"

    def build(self, xb: F32, m: int, efc: int, seed: int, threads: int) -> None:
        self.index = self.mod.Index(ndim=self.dim, metric="l2sq", dtype="i8", connectivity=m, expansion_add=efc)
        self.index.add(np.arange(xb.shape[0], dtype=np.uint64), xb, threads=threads)


KINDS: dict[str, Callable[[int, int], Lib]] = {
    "omendex": Omendex,
    "omendex-int8": OmendexInt8,
    "hnswlib": Hnswlib,
    "faiss": Faiss,
    "faiss-sq8": FaissSq8,
    "usearch": Usearch,
    "usearch-i8": UsearchI8,
}


def measure(lib: Lib, xb: F32, xq: F32, gt: npt.NDArray[Any], a: argparse.Namespace, threads: int) -> dict[str, Any]:
    """One run of the protocol on ``lib``."""
    gc.collect()
    before = rss_mb()
    t0 = time.perf_counter()
    lib.build(xb, a.M, a.efc, a.seed, threads)
    build_s = time.perf_counter() - t0
    after = rss_mb()
    k, nq = a.k, xq.shape[0]
    rows = [xq[i] for i in range(nq)]
    lib.set_ef(a.efs[0])
    for q in rows[:100]:  # warm-up
        lib.one(q)
    sweep: list[dict[str, Any]] = []
    hit: Optional[dict[str, Any]] = None
    for ef in a.efs:
        lib.set_ef(ef)
        out = np.full((nq, k), -1, dtype=np.int64)
        t = time.perf_counter()
        for i, q in enumerate(rows):
            got = np.asarray(lib.one(q), dtype=np.int64).ravel()[:k]
            out[i, : got.size] = got
        secs = time.perf_counter() - t
        entry: dict[str, Any] = {"ef": ef, "recall": round(recall(out, gt, k), 4), "qps": round(nq / secs, 1)}
        sweep.append(entry)
        if entry["recall"] >= a.target_recall:
            hit = entry
            break
    batch: dict[str, float] = {}
    if hit is not None:
        lib.set_ef(hit["ef"])
        for t in sorted({1, *a.threads}):
            lib.batch(xq[:100], t)  # warm the pool
            times = []
            for _ in range(3):  # the median of three calls: one call is short and the machine noisy
                t1 = time.perf_counter()
                ids = lib.batch(xq, t)
                times.append(time.perf_counter() - t1)
            batch[str(t)] = round(nq / statistics.median(times), 1)
            if t == 1:
                hit["recall_batch"] = round(recall(ids, gt, k), 4)
    call_us: Optional[float] = None
    if hit is not None:
        # One call per query in a bare loop (the sweep's loop also stores answers), the median
        # of three passes: against the batch's time per query, what a call costs beyond the search.
        lib.set_ef(hit["ef"])
        passes = []
        for _ in range(3):
            t1 = time.perf_counter()
            for q in rows:
                lib.one(q)
            passes.append((time.perf_counter() - t1) / nq)
        call_us = statistics.median(passes) * 1e6
    memory = lib.memory_mb()
    lib.drop()
    res: dict[str, Any] = {
        "lib": lib.name,
        "version": lib.version(),
        "threads": threads,
        "build_s": round(build_s, 4),
        "build_vps": round(xb.shape[0] / build_s, 1),
        "index_rss_mb": None if before is None or after is None else round(after - before, 1),
        "lib_mb": None if memory is None else round(memory, 1),
        "ef_at_target": None if hit is None else hit["ef"],
        "recall_at_target": None if hit is None else hit["recall"],
        "qps_at_target": None if hit is None else hit["qps"],
        "batch_qps_at_target": batch,
        "sweep": sweep,
    }
    if call_us is not None and "1" in batch:
        res["call_us"] = round(call_us, 2)
        res["overhead_us"] = round(call_us - 1e6 / batch["1"], 2)
    return res


def rust_run(repo: str, data: str, a: argparse.Namespace, threads: int) -> dict[str, Any]:
    """omendex's Rust runner (``cargo xtask bench``) on the same data, in its own process."""
    cmd = ["cargo", "xtask", "bench", "--data", os.path.abspath(data), "--threads", str(threads), "--json"]
    cmd += ["--m", str(a.M), "--efc", str(a.efc), "--k", str(a.k), "--seed", str(a.seed)]
    cmd += ["--efs", ",".join(map(str, a.efs)), "--target-recall", str(a.target_recall)]
    p = subprocess.run(cmd, cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, check=True)
    out: dict[str, Any] = json.loads(p.stdout.strip().splitlines()[-1])
    keep = ("build_s", "build_vps", "index_rss_mb", "lib_bytes_mb", "ef_at_target", "recall_at_target", "qps_at_target")
    res = {"lib": "omendex-rust", "version": out.get("git_revision", "?"), "threads": threads}
    res.update({key: out.get(key) for key in keep})
    return res


def median_range(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{statistics.median(values):,.0f} ({min(values):,.0f}-{max(values):,.0f})"


def table(runs: list[dict[str, Any]]) -> str:
    """Medians per dataset, library and thread count, with ratios to hnswlib's medians."""
    lines = [
        "| dataset | library | threads | runs | build vec/s median (min-max) | × hnswlib | ef at target | QPS, one query per call | batch QPS 1 thread | batch QPS T threads | overhead µs/call |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    groups: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    for r in runs:
        groups.setdefault((r["dataset"], r["lib"], r["threads"]), []).append(r)

    def med(rs: list[dict[str, Any]], key: str) -> Optional[float]:
        vals = [float(r[key]) for r in rs if r.get(key) is not None]
        return statistics.median(vals) if vals else None

    def batch(rs: list[dict[str, Any]], t: int) -> Optional[float]:
        vals = [float(r["batch_qps_at_target"][str(t)]) for r in rs if str(t) in r.get("batch_qps_at_target", {})]
        return statistics.median(vals) if vals else None

    def fmt(x: Optional[float], digits: int = 0) -> str:
        return "-" if x is None else f"{x:,.{digits}f}"

    for (ds, lib, t), rs in sorted(groups.items()):
        peer = groups.get((ds, "hnswlib", t))
        vps, pv = med(rs, "build_vps"), None if peer is None else med(peer, "build_vps")
        ratio = "-" if vps is None or not pv else f"{vps / pv:.2f}"
        efs = sorted({r["ef_at_target"] for r in rs if r.get("ef_at_target") is not None})
        lines.append(
            f"| {ds} | {lib} | {t} | {len(rs)} | {median_range([float(r['build_vps']) for r in rs])} | {ratio} | "
            f"{'/'.join(map(str, efs)) or '-'} | {fmt(med(rs, 'qps_at_target'))} | {fmt(batch(rs, 1))} | "
            f"{fmt(batch(rs, t)) if t > 1 else '-'} | {fmt(med(rs, 'overhead_us'), 1)} |"
        )
    return "\n".join(lines)


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python crates/python/benchmarks/peers.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", action="append", required=True, help="a TEXMEX folder (repeatable)")
    ap.add_argument("--libs", default=",".join(LIBS), help=f"comma-separated, of {', '.join(KINDS)}")
    ap.add_argument("--threads", default="1,2", help="build thread counts (batch searches run on each too)")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--M", type=int, default=16)
    ap.add_argument("--efc", type=int, default=200)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--efs", default=DEFAULT_EFS)
    ap.add_argument("--target-recall", type=float, default=0.95)
    ap.add_argument("--rust", metavar="REPO", help="an omendex checkout: also run `cargo xtask bench` there each turn")
    ap.add_argument("--out", help="append one JSON line per run to this file (default: none kept)")
    a = ap.parse_args(argv)
    try:
        a.threads = [int(t) for t in a.threads.split(",") if t]
        a.efs = sorted(int(e) for e in a.efs.split(",") if e)
    except ValueError as e:
        ap.error(f"--threads and --efs take comma-separated integers ({e})")
    if not a.threads or min(a.threads) < 1 or not a.efs or min(a.efs) < 1:
        ap.error("--threads and --efs need positive integers")
    if a.reps < 1 or a.k < 1 or a.M < 2 or a.efc < 1 or not 0 < a.target_recall <= 1:
        ap.error("--reps, --k, --efc must be at least 1, --M at least 2, --target-recall in (0, 1]")
    names = [n for n in a.libs.split(",") if n]
    for n in names:
        if n not in KINDS:
            ap.error(f"unknown library {n!r}: choose among {', '.join(KINDS)}")

    datasets = []
    for d in a.data:
        xb = read_vecs(os.path.join(d, "base.fvecs"), "<f4")
        xq = read_vecs(os.path.join(d, "query.fvecs"), "<f4")
        gt = read_vecs(os.path.join(d, "groundtruth.ivecs"), "<i4")
        if xq.shape[1] != xb.shape[1] or gt.shape[0] != xq.shape[0] or gt.shape[1] < a.k:
            raise SystemExit(f"{d}: the files disagree (dimension, query count or ground-truth depth)")
        datasets.append((os.path.basename(os.path.normpath(d)), d, xb, xq, gt))

    runs: list[dict[str, Any]] = []
    sink = open(a.out, "a") if a.out else None
    try:
        for rep in range(a.reps):
            turn = names[rep % len(names) :] + names[: rep % len(names)]
            for name, path, xb, xq, gt in datasets:
                for threads in a.threads:
                    order: list[str] = turn + (["omendex-rust"] if a.rust else [])
                    for lib_name in order:
                        if lib_name == "omendex-rust":
                            res = rust_run(a.rust, path, a, threads)
                        else:
                            try:
                                lib = KINDS[lib_name](xb.shape[1], a.k)
                            except ImportError as e:
                                if rep == 0 and name == datasets[0][0] and threads == a.threads[0]:
                                    print(f"skipping {lib_name}: {e}", file=sys.stderr)
                                continue
                            res = measure(lib, xb, xq, gt, a, threads)
                        res.update({"dataset": name, "rep": rep, "n": xb.shape[0], "dim": xb.shape[1], "M": a.M, "efc": a.efc, "k": a.k})
                        runs.append(res)
                        if sink is not None:
                            print(json.dumps(res), file=sink, flush=True)
                        print(
                            f"{name} {lib_name} T={threads} rep {rep}: build {res['build_vps']:,.0f} vec/s, "
                            f"ef {res['ef_at_target']}, QPS {res['qps_at_target']}",
                            file=sys.stderr,
                        )
    finally:
        if sink is not None:
            sink.close()
    print(table(runs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

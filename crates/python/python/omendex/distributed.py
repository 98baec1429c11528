"""omendex beyond one machine, on Ray: segments built by Ray tasks, searched by Ray actors.

Needs Ray (``pip install 'omendex[ray]'``) and a Ray cluster (``ray.init()`` connects to or
starts one). A collection is split into segments, each an independent HNSW graph built by one
Ray task on a worker and written into a folder every worker and the driver share (a local
folder on one machine, a shared mount on a cluster, or an fsspec URL such as
``s3://bucket/index``); the driver writes the manifest last, after checking every segment
file, so the folder is exactly what ``SegmentedIndex.save`` writes:
``omendex.SegmentedIndex.load(out)`` opens it on one machine (a URL's folder once fetched) and
answers the same queries identically. ``Searcher`` spreads the segments over a pool of Ray actors, each opening
its share in place; a query batch goes to every share and their top-k merge (``merge_topk``)
into the whole index's answer.

>>> import numpy as np, ray, omendex.distributed                     # doctest: +SKIP
>>> ray.init()                                                      # doctest: +SKIP
>>> vectors = np.random.default_rng(0).random((100_000, 64), dtype=np.float32)  # doctest: +SKIP
>>> omendex.distributed.build(vectors, "/shared/index", segments=8)    # doctest: +SKIP
>>> searcher = omendex.distributed.Searcher("/shared/index", replicas=2)  # doctest: +SKIP
>>> hits = searcher.search(vectors[:10], k=10, ef=64)              # doctest: +SKIP
"""

from __future__ import annotations

import importlib
import os
import time
import warnings
from typing import Any, Callable, Iterable, Iterator, NamedTuple, Optional, Sized, Union

import numpy as np
import numpy.typing as npt

from omendex import Index, Neighbors, _ids, _int, _omendex, _params, _rows, merge_topk

__all__ = ["build", "Searcher", "BuildReport"]

_DEFAULT_SEED = 42  # omendex.Index's seed when none is given
_U64 = 2**64


def _ray() -> Any:
    try:
        return importlib.import_module("ray")
    except ImportError:
        raise ImportError("omendex.distributed needs Ray: pip install 'omendex[ray]'") from None


def _split_url(out: Union[str, "os.PathLike[str]"]) -> tuple[Any, str]:
    """(an fsspec filesystem, its path) for a URL (``scheme://...``); (None, the absolute
    path) for a local path."""
    text = os.fspath(out)
    if "://" not in text:
        return None, os.path.abspath(text)
    try:
        fsspec = importlib.import_module("fsspec")
    except ImportError:
        raise ImportError(f"{text}: a URL needs fsspec (pip install fsspec)") from None
    fs, path = fsspec.core.url_to_fs(text)
    return fs, str(path).rstrip("/")


def _segment_name(generation: int, number: int) -> str:
    return _omendex.segment_file_name(generation, number)


def _generation_of(name: str) -> Optional[int]:
    """The generation a file of the folder belongs to (segment file, build marker, or a
    temporary file of either)."""
    return _omendex.generation_named(name)


def _remote_names(fs: Any, root: str) -> list[str]:
    if not fs.exists(root):
        return []
    return [os.path.basename(str(p).rstrip("/")) for p in fs.ls(root, detail=False)]


def _upload(fs: Any, local: str, root: str, name: str) -> None:
    """Puts ``local`` at ``root/name`` whole: under a temporary name first, then moved. The
    temporary name follows the one rule for temporary files (``.<name>.<process>.<counter>.tmp``,
    here a random counter, as writers on many machines share the folder), so a sweep knows
    what a killed upload left."""
    import secrets

    tmp = f"{root}/.{name}.{os.getpid()}.{secrets.randbits(63)}.tmp"
    fs.put(local, tmp)
    fs.mv(tmp, f"{root}/{name}")


class BuildReport(NamedTuple):
    """What ``build`` made: the folder, its segments' sizes (in order), and the wall time."""

    out: str
    lens: list[int]
    seconds: float


class _Part(NamedTuple):
    """One partition as a task receives it: rows (an array or a Ray Dataset block) and ids
    (an array, an offset to number rows from, or a column of the block)."""

    number: int
    rows: Any
    ids: Any


def _block_rows(block: Any, vector_column: str) -> npt.NDArray[Any]:
    """The vectors of a block as a 2-D array (a tensor column, or one array per row)."""
    v: npt.NDArray[Any] = np.asarray(block[vector_column] if isinstance(block, dict) else block)
    if v.dtype == object:
        v = np.stack([np.asarray(r) for r in v]) if len(v) else np.empty((0, 0), dtype=np.float32)
    return v


def _build_part(
    number: int,
    block: Any,
    given: Any,
    dim: int,
    params: tuple[str, int, int, int, int, str],
    generation: int,
    out: str,
    threads: int,
    columns: tuple[str, Optional[str]],
    before_write: Optional[Callable[[int, str], None]],
) -> tuple[int, int, int, npt.NDArray[np.int64]]:
    """Builds partition ``number`` (rows ``block``, ids ``given``: see ``_Part``) into segment
    ``number`` of save ``generation`` (runs on a worker; Ray resolves the arguments' object
    references); returns (number, length, checksum, ids)."""
    vector_column, _ = columns
    rows = _block_rows(block, vector_column)
    if isinstance(given, (int, np.integer)):
        ids = np.arange(int(given), int(given) + len(rows), dtype=np.int64)
    elif isinstance(given, str):
        ids = _ids(np.asarray(block[given]), len(rows))
    else:
        ids = _ids(given, len(rows))
    metric, m, efc, efs, seed, quantization = params
    index = Index(
        dim, metric, m=m, ef_construction=efc, ef_search=efs, seed=(seed + number) % _U64, quantization=quantization
    )
    index.add(rows, ids, threads=threads)
    if before_write is not None:
        before_write(number, out)
    fs, root = _split_url(out)
    if fs is None:
        length, checksum = index._core.write_segment(root, generation, number)
        return number, length, checksum, ids
    # Remote storage: written and verified here (the driver cannot read the file cheaply), then
    # uploaded whole, while the build's marker says the generation is being written.
    import tempfile

    with tempfile.TemporaryDirectory(prefix="omendex-segment-") as tmp:
        local = os.path.join(tmp, _segment_name(generation, number))
        length, checksum = index._core.write_segment_file(local)
        # Every section and rule, as a local commit checks each file.
        if _omendex.verify_segment_file(local) != (length, checksum):
            raise ValueError(f"segment {number} reads back as another file")
        if not fs.exists(f"{root}/{_omendex.build_marker_name(generation)}"):
            raise ValueError(f"{root}: no save of generation {generation} is being written (it has ended)")
        _upload(fs, local, root, _segment_name(generation, number))
    return number, length, checksum, ids


def _sizes(n: int, segments: Optional[int], max_segment_size: Optional[int]) -> list[int]:
    """Segment sizes as a local SegmentedIndex.build splits n rows (one of the two given)."""
    if (segments is None) == (max_segment_size is None):
        raise ValueError("give segments or max_segment_size, one of them")
    if segments is not None:
        if segments > n:
            raise ValueError(f"{segments} segments for {n} vectors")
        return [n // segments + (1 if i < n % segments else 0) for i in range(segments)]
    size = int(max_segment_size or n)
    full, rest = divmod(n, size)
    return [size] * full + ([rest] if rest else [])


def _partitions(
    source: Any,
    ids: Optional[npt.ArrayLike],
    segments: Optional[int],
    max_segment_size: Optional[int],
    columns: tuple[str, Optional[str]],
) -> tuple[int, list[_Part]]:
    """The source split into partitions, with ids fixed before any task runs: (dim, parts)."""
    ray = _ray()
    vector_column, id_column = columns
    data_mod = getattr(ray, "data", None)
    if data_mod is not None and isinstance(source, data_mod.Dataset):
        if ids is not None:
            raise ValueError("a Ray Dataset carries its ids in a column (id_column=), not in ids=")
        n = source.count()
        if n == 0:
            raise ValueError("the dataset is empty")
        count = len(_sizes(n, segments, max_segment_size))
        refs = source.repartition(count).to_numpy_refs()
        first = ray.get(refs[0])
        dim = _block_rows(first, vector_column).shape[1] if len(_block_rows(first, vector_column)) else 0
        if id_column is not None:
            return dim, [_Part(i, ref, id_column) for i, ref in enumerate(refs)]
        # Ids by position in the dataset: each block numbered from the rows before it.
        lens = ray.get([ray.remote(lambda b: len(_block_rows(b, vector_column))).remote(r) for r in refs])
        starts = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64)
        return dim, [_Part(i, ref, int(s)) for i, (ref, s) in enumerate(zip(refs, starts))]
    if isinstance(source, np.ndarray) or (hasattr(source, "__array__") and not hasattr(source, "__next__")):
        arr = np.asarray(source)
        if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
            raise ValueError(f"vectors must be 2-D and non-empty, not of shape {arr.shape}")
        rows = _rows("vectors", arr, arr.shape[1])
        given = np.arange(len(rows), dtype=np.int64) if ids is None else _ids(ids, len(rows))
        split: list[_Part] = []
        at = 0
        for i, size in enumerate(_sizes(len(rows), segments, max_segment_size)):
            split.append(_Part(i, ray.put(rows[at : at + size]), ray.put(given[at : at + size])))
            at += size
        return rows.shape[1], split
    # An iterable of batches: vectors, or (ids, vectors) pairs.
    if ids is not None:
        raise ValueError("batches carry their ids: pass (ids, vectors) pairs, not ids=")
    if (segments is None) == (max_segment_size is None):
        raise ValueError("give segments or max_segment_size, one of them")
    if segments is not None:
        return _dealt(source, segments)
    parts: list[_Part] = []
    pend_rows: list[npt.NDArray[np.float32]] = []
    pend_ids: list[npt.NDArray[np.int64]] = []
    pending, dim = 0, 0

    def seal(take: int) -> None:
        nonlocal pend_rows, pend_ids, pending
        r, d = np.concatenate(pend_rows), np.concatenate(pend_ids)
        parts.append(_Part(len(parts), ray.put(r[:take]), ray.put(d[:take])))
        pend_rows, pend_ids, pending = [r[take:]], [d[take:]], len(r) - take

    for rows, got in _batches(source, lambda: f"partition {len(parts)}"):
        dim = rows.shape[1]
        pend_rows.append(rows)
        pend_ids.append(got)
        pending += len(rows)
        while pending >= int(max_segment_size or 1):
            seal(int(max_segment_size or 1))
    if pending:
        seal(pending)
    if not parts:
        raise ValueError("the source holds no vectors")
    return dim, parts


def _batches(source: Iterable[Any], where: Callable[[], str]) -> Iterator[tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]]:
    """The batches of ``source`` checked, as (rows, ids): a batch is vectors, or an (ids,
    vectors) pair; without ids its rows are numbered on from the largest id seen. An error
    names the batch and ``where()`` it was going."""
    next_id, dim = 0, 0
    for number, batch in enumerate(source):
        b_ids, b_rows = batch if isinstance(batch, tuple) and len(batch) == 2 else (None, batch)
        place = f"batch {number} ({where()})"
        arr = np.asarray(b_rows)
        if arr.ndim != 2 or arr.shape[1] == 0:
            raise ValueError(f"{place}: vectors must be 2-D, not of shape {arr.shape}")
        dim = dim or arr.shape[1]
        try:
            rows = _rows("vectors", arr, dim)
            got = np.arange(next_id, next_id + len(rows), dtype=np.int64) if b_ids is None else _ids(b_ids, len(rows))
        except ValueError as e:
            raise ValueError(f"{place}: {e}") from None
        if len(got):
            next_id = max(next_id, int(got.max()) + 1)
        yield rows, got


def _dealt(source: Iterable[Any], segments: int) -> tuple[int, list[_Part]]:
    """Batches into ``segments`` partitions. A collection with a length (a list, a tuple) is
    split as the array of all its rows would be (equal parts, in order: the partitions a local
    ``SegmentedIndex.build`` of those rows makes); a one-shot iterator is dealt a batch at a time
    round-robin, so it is read once and never held whole before it is dealt."""
    ray = _ray()
    if isinstance(source, Sized):
        read = list(_batches(source, lambda: "before the split"))
        if not read:
            raise ValueError("the source holds no vectors")
        rows = np.concatenate([r for r, _ in read])
        given = np.concatenate([g for _, g in read])
        parts: list[_Part] = []
        at = 0
        for i, size in enumerate(_sizes(len(rows), segments, None)):
            parts.append(_Part(i, ray.put(rows[at : at + size]), ray.put(given[at : at + size])))
            at += size
        return rows.shape[1], parts
    dealt: list[list[tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]]] = [[] for _ in range(segments)]
    count = 0
    for rows, got in _batches(source, lambda: f"partition {count % segments}"):
        dealt[count % segments].append((rows, got))
        count += 1
    short = [i for i, held in enumerate(dealt) if sum(len(r) for r, _ in held) == 0]
    if short:
        raise ValueError(
            f"{segments} segments from {count} batches leave partition {short[0]} empty: an iterator is dealt a "
            "batch at a time, so pass fewer segments, a list of batches (split by rows), or max_segment_size"
        )
    dim = dealt[0][0][0].shape[1]
    return dim, [
        _Part(i, ray.put(np.concatenate([r for r, _ in held])), ray.put(np.concatenate([g for _, g in held])))
        for i, held in enumerate(dealt)
    ]


def build(
    source: Union[npt.ArrayLike, Iterable[Any], Any],
    out: Union[str, "os.PathLike[str]"],
    *,
    ids: Optional[npt.ArrayLike] = None,
    segments: Optional[int] = None,
    max_segment_size: Optional[int] = None,
    metric: str = "l2",
    m: int = 16,
    ef_construction: int = 200,
    ef_search: int = 64,
    seed: Optional[int] = None,
    quantization: str = "none",
    cpus_per_task: int = 1,
    vector_column: str = "vector",
    id_column: Optional[str] = None,
    max_retries: int = 3,
    progress: Optional[Callable[[int, int], None]] = None,
    _before_write: Optional[Callable[[int, str], None]] = None,
) -> BuildReport:
    """Builds ``source`` into a segmented index in folder ``out`` on the Ray cluster.

    ``source``: a 2-D array (ids ``ids`` or ``0..n``); an iterable of batches, each a 2-D array
    or an ``(ids, vectors)`` pair (ids numbered on from the largest seen when absent), sealed
    into segments of ``max_segment_size``, or split into ``segments``: a list (or any
    collection with a length) as the array of its rows would be, a one-shot iterator dealt a
    batch at a time round-robin; or a Ray Dataset with a ``vector_column`` (a tensor
    column or one array per row) and optionally an ``id_column`` (else rows are numbered in
    dataset order). Ids are fixed before any partition is built, so nothing is renumbered later.

    ``segments`` (equal parts) or ``max_segment_size`` (parts sealed at that size) says how to
    split; each part is built by one Ray task on ``cpus_per_task`` cores (retried up to
    ``max_retries`` times if its worker dies) with the seed plus its number, as
    ``SegmentedIndex.build`` seeds its segments (``quantization`` as for ``omendex.Index``).
    ``progress(done, total)`` runs on the driver
    as segments finish.

    ``out``: a local folder (on a cluster, one every node mounts) or an fsspec URL every worker
    can write (``s3://``, ``gs://``, ``file://`` ...; needs ``fsspec`` and the scheme's
    package). Every segment file is checked (the very file its task wrote, dimension, metric,
    no id in two segments) before the manifest is written; for a URL each task verifies its
    own file before uploading it whole, and the driver checks they are all there: a bad row, a wrong dimension or an id in two
    partitions raises ``ValueError`` naming the partition, and leaves the folder as it was
    (no manifest of this build; its files are removed).
    """
    ray = _ray()
    if segments is not None:
        segments = _int("segments", segments, 1, 65535)
    if max_segment_size is not None:
        max_segment_size = _int("max_segment_size", max_segment_size, 1)
    cpus = _int("cpus_per_task", cpus_per_task, 1, 1024)
    retries = _int("max_retries", max_retries, 0, 100)
    base_seed = _DEFAULT_SEED if seed is None else _int("seed", seed, 0, _U64 - 1)
    params = _params(metric, m, ef_construction, ef_search, base_seed, quantization)
    fs, root = _split_url(out)
    folder = root if fs is None else os.fspath(out)
    started = time.perf_counter()

    dim, parts = _partitions(source, ids, segments, max_segment_size, (vector_column, id_column))
    if dim < 1:
        raise ValueError("vectors must have at least one component")
    # The parameters are checked here, once, not by every task.
    Index(
        dim, metric, m=params[1], ef_construction=params[2], ef_search=params[3], seed=base_seed, quantization=params[5]
    )
    if len(parts) > 65535:
        raise ValueError(f"{len(parts)} segments: at most 65535")
    local_build = None
    if fs is None:
        # Reserves a generation no save of the folder had; a local save meanwhile leaves its
        # files alone.
        local_build = _omendex.begin_segments(folder)
        generation = local_build.generation
    else:
        fs.makedirs(root, exist_ok=True)
        generation = _begin_remote(fs, root)
    # Tasks that cannot start wait for CPUs, silently: say what they wait for.
    total = float(ray.cluster_resources().get("CPU", 0))
    if cpus > total:
        raise ValueError(f"each build task needs {cpus} CPUs (cpus_per_task), the cluster has {total:g}")
    free, total = _free_cpus(2.0, cpus)
    if free + 1e-9 < cpus:
        warnings.warn(
            f"omendex.distributed.build waits for CPUs: each of its {len(parts)} tasks needs {cpus}, and {free:g} of "
            f"the cluster's {total:g} are free; other actors or tasks hold the rest (a Searcher holds its CPUs until "
            "close())",
            RuntimeWarning,
            stacklevel=2,
        )
    # Spread over the nodes: each partition wants a machine's cores and memory bandwidth.
    task = ray.remote(num_cpus=cpus, max_retries=retries, scheduling_strategy="SPREAD")(_build_part)
    pending = {
        task.remote(p.number, p.rows, p.ids, dim, params, generation, folder, cpus, (vector_column, id_column), _before_write): p.number
        for p in parts
    }
    results: dict[int, tuple[int, int, npt.NDArray[np.int64]]] = {}
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            number = pending.pop(ready[0])
            try:
                _, length, checksum, part_ids = ray.get(ready[0])
            except Exception as e:  # the task's error, as Ray wraps it
                cause = getattr(e, "cause", None) or e
                raise ValueError(f"partition {number}: {cause}") from None
            results[number] = (length, checksum, part_ids)
            if progress is not None:
                progress(len(results), len(parts))
        all_ids = np.concatenate([results[i][2] for i in range(len(parts))])
        uniq, first, counts = np.unique(all_ids, return_index=True, return_counts=True)
        if len(uniq) != len(all_ids):
            dup = int(uniq[np.argmax(counts > 1)])
            owners = [i for i in range(len(parts)) if np.isin(dup, results[i][2])]
            raise ValueError(f"id {dup} is in partitions {owners[0]} and {owners[1] if len(owners) > 1 else owners[0]}")
        entries = [(results[i][0], results[i][1]) for i in range(len(parts))]
        next_id = int(all_ids.max()) + 1 if len(all_ids) else 0
        if local_build is not None:
            local_build.commit(params, dim, entries, next_id)
        else:
            _commit_remote(fs, root, generation, params, dim, entries, next_id)
    except BaseException:
        # Stop the tasks still running, then remove this build's files (its generation alone:
        # a local folder refuses a late task's write once the build is aborted).
        for r in pending:
            ray.cancel(r, force=True)
        if pending:
            ray.wait(list(pending), num_returns=len(pending), timeout=120)
        if local_build is not None:
            local_build.abort()
        else:
            _remove_generation(fs, root, generation)
        raise
    return BuildReport(folder, [results[i][0] for i in range(len(parts))], time.perf_counter() - started)


def _begin_remote(fs: Any, root: str) -> int:
    """Reserves a generation of a folder in remote storage: above every generation its files
    name, marked by an empty build marker that keeps the generation's files from other builds'
    sweeps until this build ends. Remote storage has no lock: two drivers starting into one
    folder at the same moment can still draw one generation (give each build its own folder)."""
    import tempfile

    generation = 1 + max([g for g in map(_generation_of, _remote_names(fs, root)) if g is not None], default=0)
    with tempfile.TemporaryDirectory(prefix="omendex-marker-") as tmp:
        marker = os.path.join(tmp, "marker")
        open(marker, "wb").close()
        _upload(fs, marker, root, _omendex.build_marker_name(generation))
    return generation


def _commit_remote(
    fs: Any,
    root: str,
    generation: int,
    params: tuple[str, int, int, int, int, str],
    dim: int,
    entries: list[tuple[int, int]],
    next_id: int,
) -> None:
    """The manifest of a save into remote storage, uploaded after every segment file (each
    verified by its writer), then the other generations' files swept."""
    import tempfile

    names = _remote_names(fs, root)
    missing = [i for i in range(len(entries)) if _segment_name(generation, i) not in names]
    if missing:
        raise ValueError(f"segment files {missing} are missing from {root}")
    newer = [g for g in map(_generation_of, names) if g is not None and g > generation]
    if newer:
        raise ValueError(f"{root}: a save of generation {max(newer)} was written since this one began")
    with tempfile.TemporaryDirectory(prefix="omendex-manifest-") as tmp:
        _omendex.write_manifest_for_remote(tmp, generation, params, dim, entries, next_id)
        _upload(fs, os.path.join(tmp, "manifest.omen"), root, "manifest.omen")
    own = _omendex.build_marker_name(generation)
    try:
        fs.rm(f"{root}/{own}")
    except OSError:
        pass
    # Builds still marked keep their files (remote storage cannot tell a live build from a
    # killed one: a killed driver's marker and files stay until removed by hand).
    marked = [g for g in map(_generation_of, names) if g is not None and _omendex.build_marker_name(g) in names]
    keep = [g for g in marked if g != generation]
    for name in names:
        if _omendex.is_garbage_after(name, generation, len(entries), keep):
            try:
                fs.rm(f"{root}/{name}")
            except OSError:
                pass


def _remove_generation(fs: Any, folder: str, generation: int) -> None:
    """Removes the files of a build into remote storage that failed (the manifest never named
    them), its marker last."""
    try:
        names = _remote_names(fs, folder)
    except OSError:
        return
    marker = _omendex.build_marker_name(generation)
    for name in sorted(names, key=lambda n: n == marker):
        if _generation_of(name) == generation:
            try:
                fs.rm(f"{folder}/{name}")
            except OSError:
                pass


class _Shard:
    """A Ray actor holding segments ``which`` of save ``generation`` of a folder, opened in
    place. It opens that generation or none: a folder re-saved since the pool was made (a
    restart after a re-save) fails the actor, loudly, rather than mixing two saves' answers."""

    def __init__(self, out: str, which: list[int], generation: int) -> None:
        from omendex import SegmentedIndex

        fs, root = _split_url(out)
        if fs is not None:
            # Remote storage: the manifest and this share's files, fetched into a local cache.
            import tempfile

            cache = tempfile.mkdtemp(prefix="omendex-shard-")
            fs.get(f"{root}/manifest.omen", os.path.join(cache, "manifest.omen"))
            _check_generation(out, int(_omendex.inspect_segments(cache)["generation"]), generation)
            for i in which:
                name = _segment_name(generation, i)
                fs.get(f"{root}/{name}", os.path.join(cache, name))
            root = cache
        before = int(_omendex.inspect_segments(root)["generation"])
        index = SegmentedIndex.load(root, mmap=True, segments=which)
        after = int(_omendex.inspect_segments(root)["generation"])
        # Generations only grow: the same one before and after is the one the load read.
        _check_generation(out, before if before != generation else after, generation)
        self.index = index

    def ready(self) -> int:
        return len(self.index)

    def pid(self) -> int:
        return os.getpid()

    def search(self, queries: npt.NDArray[np.float32], k: int, ef: Optional[int]) -> tuple[Any, Any]:
        hits = self.index.search(queries, k, ef=ef, threads=1)
        return hits.ids, hits.distances


def _check_generation(out: str, found: int, expected: int) -> None:
    if found != expected:
        raise RuntimeError(
            f"{out} holds save generation {found}, this pool serves generation {expected}: the folder was "
            "re-saved since the pool was made; Searcher.reload() moves the pool to the new save"
        )


def _free_cpus(wait_s: float, need: float) -> tuple[float, float]:
    """The cluster's free and total CPUs, polled for up to ``wait_s`` seconds until ``need``
    are free (Ray reports CPUs freed by a stopped actor a moment late)."""
    ray = _ray()
    end = time.monotonic() + wait_s
    while True:
        free = float(ray.available_resources().get("CPU", 0))
        if free + 1e-9 >= need or time.monotonic() >= end:
            return free, float(ray.cluster_resources().get("CPU", 0))
        time.sleep(0.1)


def _wait_for_cpus(need: float, what: str) -> None:
    """Raises ``ValueError`` when ``need`` CPUs are not free within a few seconds: actors
    placed then would wait, without a word, for CPUs that other actors or tasks hold."""
    free, total = _free_cpus(5.0, need)
    if free + 1e-9 < need:
        raise ValueError(
            f"{what} needs {need:g} CPUs; {free:g} of the cluster's {total:g} are free: other actors or tasks hold "
            "the rest (a Searcher holds its CPUs until close())"
        )


class Searcher:
    """A pool of Ray actors answering queries over the segmented index in folder ``out``.

    A pool serves exactly one save of the folder, the one there when it was made
    (``generation``): every actor opens that save, and an actor restarted after the folder
    was re-saved fails (its calls raise) rather than answer from another save; ``reload()``
    moves the pool to the folder's newest save.

    The segments are split into shares of ``segments_per_actor`` (default: as many shares as
    ``replicas`` x ``cpus_per_actor`` fit the cluster's CPUs, the segments dealt evenly); each
    share is held by ``replicas`` actors (``cpus_per_actor`` cores each), which open their
    segments in place and take turns answering. A batch of queries goes to one replica of every
    share; the shares' top-k merge into the index's (``merge_topk``), the same answer
    ``SegmentedIndex.load(out).search`` gives. An actor that dies is restarted by Ray (up to
    ``max_restarts`` times) and the call in flight retried, so a lost actor costs time, not
    answers.
    """

    def __init__(
        self,
        out: Union[str, "os.PathLike[str]"],
        *,
        replicas: int = 1,
        segments_per_actor: Optional[int] = None,
        cpus_per_actor: float = 1,
        max_restarts: int = 3,
    ) -> None:
        self._options = (out, replicas, segments_per_actor, cpus_per_actor, max_restarts)
        self.actors: list[list[Any]] = []
        self._start()

    def _start(self) -> None:
        out, replicas, segments_per_actor, cpus_per_actor, max_restarts = self._options
        ray = _ray()
        fs, root = _split_url(out)
        self.out = root if fs is None else os.fspath(out)
        if fs is None:
            info = _omendex.inspect_segments(root)
        else:
            import tempfile

            with tempfile.TemporaryDirectory(prefix="omendex-manifest-") as tmp:
                fs.get(f"{root}/manifest.omen", os.path.join(tmp, "manifest.omen"))
                info = _omendex.inspect_segments(tmp)
        self.dim: int = int(info["dim"])
        self.generation: int = int(info["generation"])
        count = len(info["lens"])
        replicas = _int("replicas", replicas, 1, 1024)
        restarts = _int("max_restarts", max_restarts, 0, 1000)
        if not (isinstance(cpus_per_actor, (int, float)) and 0 < cpus_per_actor <= 1024):
            raise ValueError(f"cpus_per_actor must be a number in (0, 1024], not {cpus_per_actor!r}")
        have = float(ray.cluster_resources().get("CPU", 0))
        if segments_per_actor is None:
            # The default pool fits the cluster: as many shares as replicas x cpus_per_actor
            # fit its CPUs, the segments dealt evenly over them.
            fit = int(have // (replicas * cpus_per_actor) + 1e-9)
            per = -(-count // max(1, min(count, fit)))
        else:
            per = _int("segments_per_actor", segments_per_actor, 1)
        actor = ray.remote(num_cpus=cpus_per_actor, max_restarts=restarts, max_task_retries=restarts)(_Shard)
        self.shares = [list(range(i, min(i + per, count))) for i in range(0, count, per)]
        # Actors that cannot all be placed would wait forever: say so instead.
        need = len(self.shares) * replicas * cpus_per_actor
        if need > have:
            raise ValueError(
                f"{len(self.shares)} shares x {replicas} replicas x {cpus_per_actor} CPUs = {need:g} CPUs, "
                f"the cluster has {have:g}: lower cpus_per_actor or replicas, or raise segments_per_actor"
            )
        _wait_for_cpus(need, f"a Searcher pool of {len(self.shares)} shares x {replicas} replicas x {cpus_per_actor} CPUs")
        self.actors = [[actor.remote(self.out, share, self.generation) for _ in range(replicas)] for share in self.shares]
        ray.get([a.ready.remote() for group in self.actors for a in group])
        self._turn = 0

    def reload(self) -> None:
        """Moves the pool to the folder's newest save: the actors stop (freeing their CPUs),
        and new ones open it."""
        self.close()
        self._start()

    def search(self, queries: npt.ArrayLike, k: int = 10, *, ef: Optional[int] = None) -> Neighbors:
        """The ``k`` nearest of each query (2-D, one per row; 1-D is one query) over every
        segment, beam ``ef`` in each (default: the index's ``ef_search``, at least ``k``)."""
        ray = _ray()
        rows = _rows("queries", queries, self.dim)
        k = _int("k", k, 1)
        ef_ = None if ef is None else _int("ef", ef, 1)
        q = ray.put(rows)
        turn, self._turn = self._turn, self._turn + 1
        refs = [group[turn % len(group)].search.remote(q, k, ef_) for group in self.actors]
        try:
            parts = ray.get(refs)
        except Exception as e:
            cause = getattr(e, "cause", None)
            if isinstance(cause, ValueError):
                raise ValueError(str(cause)) from None
            raise
        return merge_topk(parts, k)

    def close(self) -> None:
        """Stops the actors."""
        ray = _ray()
        for group in self.actors:
            for a in group:
                ray.kill(a, no_restart=True)
        self.actors = []


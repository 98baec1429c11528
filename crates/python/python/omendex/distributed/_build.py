"""``build``: a collection split into partitions, each built into a segment file by a Ray task,
the manifest written last (locally through a reserved generation, remotely by upload)."""

from __future__ import annotations

import os
import time
import warnings
from typing import Any, Callable, Iterable, Iterator, NamedTuple, Optional, Sized, Union

import numpy as np
import numpy.typing as npt

from omendex import Index, _omendex
from omendex._args import _ids, _int, _params, _plan, _rows, _seed
from omendex.distributed._cluster import (
    _DEFAULT_SEED,
    _U64,
    _free_cpus,
    _generation_of,
    _ray,
    _remote_names,
    _segment_name,
    _split_url,
    _upload,
)

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
    """Segment sizes as a local SegmentedIndex.build splits n rows (the core's one rule)."""
    return _omendex.segment_sizes(n, segments, max_segment_size)


def _split(rows: npt.NDArray[np.float32], given: npt.NDArray[np.int64], sizes: list[int]) -> list[_Part]:
    """Consecutive runs of ``rows`` and their ids, of ``sizes``, put in the object store."""
    ray = _ray()
    parts: list[_Part] = []
    at = 0
    for i, size in enumerate(sizes):
        parts.append(_Part(i, ray.put(rows[at : at + size]), ray.put(given[at : at + size])))
        at += size
    return parts


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
        return rows.shape[1], _split(rows, given, _sizes(len(rows), segments, max_segment_size))
    # An iterable of batches: vectors, or (ids, vectors) pairs.
    if ids is not None:
        raise ValueError("batches carry their ids: pass (ids, vectors) pairs, not ids=")
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
        return rows.shape[1], _split(rows, given, _sizes(len(rows), segments, None))
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
    segments, max_segment_size = _plan(segments, max_segment_size)
    cpus = _int("cpus_per_task", cpus_per_task, 1, 1024)
    retries = _int("max_retries", max_retries, 0, 100)
    given_seed = _seed(seed)
    base_seed = _DEFAULT_SEED if given_seed is None else given_seed
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

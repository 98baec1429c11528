"""omendex: approximate nearest-neighbour search on HNSW graphs, from numpy.

>>> import numpy as np, omendex
>>> index = omendex.Index(dim=3, metric="cosine")
>>> ids = index.add(np.eye(3, dtype=np.float32))
>>> hits = index.search(np.array([1.0, 0.1, 0.0]), k=2)
>>> int(hits.ids[0, 0])
0

Every build and search releases the GIL: Python threads search one index in parallel, and an
add or delete waits for the searches in flight (and they for it), so no thread sees an index
half-changed (a long add lets go of the index between its chunks of about a quarter of a
second: a search, or a signal handler, may see the chunks added so far). Arrays are read in
place while the GIL is released: do not modify an array in another thread while a call is
reading it (as with any library that releases the GIL). Bad input raises ``ValueError`` (shape,
dimension, NaN or infinite values, ``k``, ``ef``), ``KeyError`` (an unknown id) or ``OSError``
(files; ``CorruptIndexError`` for a file that fails its checks, ``SaveConflictError`` for a
save that another save of the same folder stands in the way of), and leaves the index as it
was.

A call with ``threads=t`` runs on a pool of ``t`` threads (0: every core); the pools of the 4
most recently used counts are kept, others end. A forked child (multiprocessing's ``fork``,
DataLoader workers, gunicorn) starts pools of its own: every call works there. A signal
handler may use the index while an add runs (``len``, a search, ``save`` on Ctrl-C); if it
raises, the add deletes what it added.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Iterator, NamedTuple, Optional, Sequence, TypeVar, Union, overload

import numpy as np
import numpy.typing as npt

from omendex import _blob, _omendex
from omendex._args import (
    Progress,
    _check_int64,
    _filter_array,
    _id,
    _ids,
    _int,
    _is_one_id,
    _lookup_ids,
    _params,
    _plan,
    _progress,
    _rows,
    _seed,
)
from omendex._omendex import FORMAT_VERSION, CorruptIndexError, SaveConflictError, __version__, simd_path

__all__ = [
    "Index",
    "SegmentedIndex",
    "Neighbors",
    "CorruptIndexError",
    "SaveConflictError",
    "FORMAT_VERSION",
    "__version__",
    "simd_path",
    "merge_topk",
]

Filter = Union[npt.ArrayLike, Callable[[int], bool], None]


class Neighbors(NamedTuple):
    """The answer to a search: ``ids`` (int64) and ``distances`` (float32), ``(n, k)`` each,
    nearest first; a row shorter than ``k`` is padded with ``-1`` and ``+inf``."""

    ids: npt.NDArray[np.int64]
    distances: npt.NDArray[np.float32]




def merge_topk(answers: Sequence[tuple[npt.ArrayLike, npt.ArrayLike]], k: int) -> Neighbors:
    """The ``k`` nearest of each query over several answers to the same queries (each an
    ``(ids, distances)`` pair of ``(n, k_i)`` arrays, such as ``Neighbors`` from servers holding
    parts of an index; ``-1`` ids are padding): by distance then id, each id once, padded with
    ``-1`` / ``+inf``. The merge a segmented search does over its segments. Ids of any
    integer type are taken; one above int64's range (a uint64 above ``2**63 - 1``) raises
    ``ValueError`` rather than wrap to a negative id or to ``-1``.

    >>> a = (np.array([[4, 9]]), np.array([[0.5, 0.7]], dtype=np.float32))
    >>> b = (np.array([[2, 4, -1]]), np.array([[0.5, 0.5, np.inf]], dtype=np.float32))
    >>> merge_topk([a, b], 3).ids.tolist()
    [[2, 4, 9]]
    """
    k = _int("k", k, 1)
    if not answers:
        raise ValueError("merge_topk needs at least one answer")
    ids, dists = [], []
    for i, pair in enumerate(answers):
        try:
            a, d = pair
        except (TypeError, ValueError):
            raise ValueError(f"answer {i} is not an (ids, distances) pair") from None
        a_ = np.asarray(a)
        if a_.size and not np.issubdtype(a_.dtype, np.integer):
            raise ValueError(f"answer {i}: ids must be integers, not {a_.dtype}")
        _check_int64(f"answer {i}: ids", a_)
        ids.append(np.ascontiguousarray(a_.reshape(1, -1) if a_.ndim == 1 else a_, dtype=np.int64))
        d_ = np.asarray(d)
        dists.append(np.ascontiguousarray(d_.reshape(1, -1) if d_.ndim == 1 else d_, dtype=np.float32))
        if ids[-1].ndim != 2 or dists[-1].ndim != 2:
            raise ValueError(f"answer {i}: ids and distances must be 2-D (one row per query)")
    out_ids, out_dists = _omendex.merge_topk(ids, dists, k)
    return Neighbors(out_ids, out_dists)


def _search(core: Any, dim: int, queries: npt.ArrayLike, k: int, ef: Optional[int], filter: Filter, threads: int) -> Neighbors:
    """The search of both index shapes: arguments checked and converted, then the core's."""
    rows = _rows("queries", queries, dim)
    k = _int("k", k, 1)
    ef_ = None if ef is None else _int("ef", ef, 1)
    threads = _int("threads", threads)
    allowed: Optional[npt.NDArray[Any]] = None
    if callable(filter):
        live = core.live_ids()
        keep = np.fromiter((bool(filter(int(i))) for i in live), dtype=np.bool_, count=len(live))
        allowed = np.ascontiguousarray(live[keep])
    elif filter is not None:
        allowed = _filter_array(filter)
    ids, dists = core.search(rows, k, ef_, allowed, threads)
    return Neighbors(ids, dists)


class _Shape:
    """What both index shapes do alike, over their compiled core (``_omendex.Index`` or
    ``_omendex.SegmentedIndex``, which answer the same calls)."""

    __slots__ = ("_core",)
    _core: Any

    @classmethod
    def _wrap(cls: type[_S], core: Any) -> _S:
        index = cls.__new__(cls)
        index._core = core
        return index

    def search(
        self,
        queries: npt.ArrayLike,
        k: int = 10,
        *,
        ef: Optional[int] = None,
        filter: Filter = None,
        threads: int = 0,
    ) -> Neighbors:
        """The ``k`` nearest vectors of each query (2-D, one per row; 1-D is one query), with
        beam ``ef`` (default ``max(ef_search, k)``; at least ``k``). ``filter``: a boolean mask
        over ids (``mask[id]``, dtype ``bool``), an array of the ids allowed (int32, int64,
        uint32 or uint64, or a list of ints), or a callable ``id -> bool`` (slow: it runs
        Python for every candidate). Any other dtype raises ``ValueError``: a mask of 0s and 1s
        in uint8 would otherwise read as the ids {0, 1} (pass ``mask.astype(bool)``; narrow ids:
        ``ids.astype(np.int64)``). Queries run in parallel on ``threads``
        threads (0: every core). Rows with fewer than ``k`` answers are padded (-1, +inf).
        A segmented index merges its segments' answers."""
        return _search(self._core, self.dim, queries, k, ef, filter, threads)

    @overload
    def get(self, id: int) -> Optional[npt.NDArray[np.float32]]: ...

    @overload
    def get(self, id: Union[Sequence[int], npt.NDArray[np.integer[Any]]]) -> npt.NDArray[np.float32]: ...

    def get(self, id: Any) -> Optional[npt.NDArray[np.float32]]:
        """The stored vector of ``id`` (normalised under cosine), or ``None``. Given many ids
        (a list or a 1-D integer array), their vectors as a 2-D array, a row per id in that
        order; ``KeyError`` naming the first id not in the index."""
        if _is_one_id(id):
            i = _id(id)
            return None if i is None else self._core.get(i)
        found: npt.NDArray[np.float32] = self._core.get_many(_lookup_ids(id))
        return found

    def delete(self, id: Union[int, Sequence[int], npt.NDArray[np.integer[Any]]]) -> None:
        """Deletes ``id``, or every id of a list or 1-D integer array (an id given twice is
        deleted once): searches never return them again; their nodes keep routing searches
        until ``compact``. ``KeyError`` naming the first id not in the index, with nothing
        deleted."""
        if _is_one_id(id):
            i = _id(id)
            if i is None:
                raise KeyError(id)
            self._core.delete(i)
        else:
            self._core.delete_many(_lookup_ids(id))

    def ids(self) -> npt.NDArray[np.int64]:
        """The ids of the vectors in the index (not deleted), as int64."""
        found: npt.NDArray[np.int64] = self._core.live_ids()
        return found

    def __iter__(self) -> Iterator[int]:
        """The ids of the vectors in the index, as ``ids()`` lists them."""
        return iter(self.ids().tolist())

    def to_bytes(self) -> bytes:
        """The index as bytes (what ``save`` writes, for a blob store or a database): an
        ``Index`` its file, a ``SegmentedIndex`` its folder's files in an uncompressed tar.
        ``from_bytes`` reads them back."""
        return _blob.to_bytes(self._core)

    @classmethod
    def from_bytes(cls: type[_S], data: Union[bytes, bytearray, memoryview]) -> _S:
        """An index from ``to_bytes``' bytes, checked as ``load`` checks a file:
        ``CorruptIndexError`` for damaged or truncated bytes."""
        return cls._wrap(_blob.from_bytes(cls._core_type(), data))

    @classmethod
    def _core_type(cls) -> Any:
        raise NotImplementedError

    def compact(self, *, threads: int = 0) -> int:
        """Drops the deleted vectors (segment by segment in a segmented index), repairing the
        links around them; returns how many were dropped."""
        return int(self._core.compact(_int("threads", threads)))

    @overload
    def save(self, path: None = None) -> bytes: ...

    @overload
    def save(self, path: Union[str, "os.PathLike[str]", _blob.Writable]) -> None: ...

    def save(self, path: Union[str, "os.PathLike[str]", _blob.Writable, None] = None) -> Optional[bytes]:
        """Saves the index to ``path``, a file (``Index``) or a folder (``SegmentedIndex``),
        written so that a crash leaves the previous save; or, given a binary file object
        (anything with ``write``), writes ``to_bytes()`` to it; or, given nothing, returns
        ``to_bytes()``."""
        if path is None:
            return self.to_bytes()
        if isinstance(path, (str, os.PathLike)):
            self._core.save(os.fspath(path))
        else:
            path.write(self.to_bytes())
        return None

    def check_invariants(self) -> None:
        """Raises ``ValueError`` naming the first structural rule the graph breaks (and, in a
        segmented index, the segment)."""
        self._core.check_invariants()

    def __len__(self) -> int:
        return len(self._core)

    def __contains__(self, id: object) -> bool:
        i = _id(id)
        return i is not None and bool(self._core.contains(i))

    @property
    def dim(self) -> int:
        return int(self._core.dim)

    @property
    def metric(self) -> str:
        return str(self._core.metric)

    @property
    def ef_search(self) -> int:
        return int(self._core.ef_search)

    @ef_search.setter
    def ef_search(self, ef: int) -> None:
        self._core.ef_search = _int("ef_search", ef, 1)

    @property
    def quantization(self) -> str:
        """``"none"`` or ``"int8"``: what the index was asked to walk on."""
        return str(self._core.quantization)

    @property
    def deleted(self) -> int:
        """Deleted vectors whose nodes still route searches (until ``compact``)."""
        return int(self._core.deleted)

    @property
    def memory_usage(self) -> int:
        """Bytes of heap held by the vectors and links."""
        return int(self._core.memory_usage)


_S = TypeVar("_S", bound=_Shape)


class Index(_Shape):
    """An approximate nearest-neighbour index over ``dim``-dimensional float32 vectors.

    ``metric``: ``"l2"`` (squared Euclidean), ``"ip"`` (``1 - a·b``) or ``"cosine"``
    (``1 - cos``; vectors stored normalised). ``m``: neighbours per node (layer 0 keeps
    ``2 * m``); ``ef_construction``: the build's beam; ``ef_search``: the default search beam
    (raised to ``k``); ``seed``: fixes the graph for a given insertion order on one thread;
    ``quantization``: ``"none"``, or ``"int8"`` to walk the graph (building and searching) on
    8-bit codes of the vectors and re-rank on the float32 rows (results keep exact distances;
    ``quantization_status`` says whether the codes fit the data).
    """

    __slots__ = ()
    _core: _omendex.Index

    def __init__(
        self,
        dim: int,
        metric: str = "l2",
        *,
        m: int = 16,
        ef_construction: int = 200,
        ef_search: int = 64,
        seed: Optional[int] = None,
        quantization: str = "none",
    ) -> None:
        if not isinstance(metric, str):
            raise ValueError(f"metric must be a string, not {type(metric).__name__}")
        dim = _int("dim", dim, 1)
        s = None if seed is None else _int("seed", seed, 0, 2**64 - 1)
        self._core = _omendex.Index(dim, *_params(metric, m, ef_construction, ef_search, s, quantization))

    @property
    def quantization_status(self) -> dict[str, Any]:
        """``{"status": "off" | "untrained" | "codes" | "too_coarse", "fit_recall",
        "fit_queries"}``: whether searches walk on 8-bit codes, and the measured share of sample
        vectors' exact 10 nearest among their 20 nearest by codes (below 0.9 the codes are too
        coarse for the data and the index walks the float32 rows)."""
        return dict(self._core.quantization_status)

    def add(
        self, vectors: npt.ArrayLike, ids: Optional[npt.ArrayLike] = None, *, threads: int = 0, progress: Progress = None
    ) -> npt.NDArray[np.int64]:
        """Adds ``vectors`` (2-D, one per row; 1-D is one vector) and returns their ids (int64):
        new ones above every id the index ever held, or ``ids`` (one per row, none in the index
        already). Inserts on ``threads`` threads (0: every core), in chunks of about a quarter of
        a second with signals checked between them; a handler (and any thread) sees the chunks
        added so far. ``progress``: ``f(done, total)`` called after each chunk, or a tqdm bar.
        On error, Ctrl-C or an exception from ``progress``, what the call added is deleted
        again and the exception raised."""
        rows = _rows("vectors", vectors, self.dim)
        given = None if ids is None else _ids(ids, rows.shape[0])
        return self._core.add(rows, given, _int("threads", threads), _progress(progress))

    def rebuild(self, *, threads: int = 0) -> int:
        """Builds the graph afresh from the vectors not deleted; returns how many were dropped."""
        return self._core.rebuild(_int("threads", threads))

    @classmethod
    def _core_type(cls) -> Any:
        return _omendex.Index

    @classmethod
    def load(cls, path: Union[str, "os.PathLike[str]", _blob.Readable, _blob.Bytes], *, mmap: bool = False) -> "Index":
        """Loads an index saved by ``save``, verifying every checksum and rule; with ``mmap``,
        opens it in place (vectors read from the file as searches touch them; the file must
        not change while open). Given a binary file object (anything with ``read``), reads
        ``to_bytes()``' bytes from it, and given bytes, reads them (not with ``mmap``)."""
        if not isinstance(path, (str, os.PathLike)):
            return cls.from_bytes(_blob.read_all(path, mmap))
        return cls._wrap(_omendex.Index.load(os.fspath(path), bool(mmap)))

    def stats(self) -> list[dict[str, Any]]:
        """Per-layer measurements, top layer first (nodes, links, unreachable, reciprocity,
        degrees)."""
        return self._core.stats()

    def __repr__(self) -> str:
        return (
            f"omendex.Index(dim={self.dim}, metric={self.metric!r}, len={len(self)}, m={self._core.m}, "
            f"ef_construction={self._core.ef_construction}, ef_search={self.ef_search}, "
            f"quantization={self.quantization!r})"
        )

    def __getstate__(self) -> bytes:
        return self.to_bytes()

    def __setstate__(self, state: bytes) -> None:
        self._core = _blob.from_bytes(_omendex.Index, state)


class SegmentedIndex(_Shape):
    """Vectors split into independent HNSW segments built in parallel, searched together with a
    merged top-k (``search`` as ``Index.search``); grown a segment at a time
    (``add_segment``), folded into one graph by ``merged``, saved as a folder. Build it with
    ``SegmentedIndex.build``."""

    __slots__ = ()
    _core: _omendex.SegmentedIndex

    def __init__(self) -> None:
        raise TypeError("build a SegmentedIndex with SegmentedIndex.build or SegmentedIndex.load")

    @classmethod
    def build(
        cls,
        vectors: npt.ArrayLike,
        ids: Optional[npt.ArrayLike] = None,
        *,
        segments: Optional[int] = None,
        max_segment_size: Optional[int] = None,
        metric: str = "l2",
        m: int = 16,
        ef_construction: int = 200,
        ef_search: int = 64,
        seed: Optional[int] = None,
        quantization: str = "none",
        threads: int = 0,
        progress: Progress = None,
    ) -> "SegmentedIndex":
        """Segments of ``vectors`` (2-D, one per row) named ``ids`` (default ``0..n``): either
        ``segments`` segments of equal size or segments sealed at ``max_segment_size`` vectors,
        built in parallel on ``threads`` threads (0: every core). ``quantization``: as for
        ``Index``, per segment. ``progress``: ``f(done, total)`` called about every 50 ms with
        the insertions begun and once at the end, or a tqdm bar; if it raises, the build stops
        (within one insertion) and the exception is raised."""
        plan = _plan(segments, max_segment_size)
        if not isinstance(metric, str):
            raise ValueError(f"metric must be a string, not {type(metric).__name__}")
        try:
            arr = np.asarray(vectors)
        except Exception as e:
            raise ValueError(f"vectors is not an array of numbers: {e}") from None
        if arr.ndim != 2 or arr.shape[1] == 0:
            raise ValueError(f"vectors must be 2-D with at least one column, not of shape {arr.shape}")
        rows = _rows("vectors", arr, arr.shape[1])
        given = None if ids is None else _ids(ids, rows.shape[0])
        params = _params(metric, m, ef_construction, ef_search, _seed(seed), quantization)
        threads_ = _int("threads", threads)
        return cls._wrap(_omendex.SegmentedIndex.build(rows, given, params, plan, threads_, _progress(progress)))

    @property
    def quantization_status(self) -> list[dict[str, Any]]:
        """Each segment's ``Index.quantization_status``, in segment order."""
        return [dict(d) for d in self._core.quantization_status]

    def add_segment(self, vectors: npt.ArrayLike, ids: Optional[npt.ArrayLike] = None, *, threads: int = 0) -> npt.NDArray[np.int64]:
        """Adds ``vectors`` as a new segment, under ``ids`` (none live in the index; a deleted
        id may name a new vector) or new ids above every id the index held; returns the ids."""
        rows = _rows("vectors", vectors, self.dim)
        given = None if ids is None else _ids(ids, rows.shape[0])
        added: npt.NDArray[np.int64] = self._core.add_segment(rows, given, _int("threads", threads))
        return added

    def merged(self, ef_construction: Optional[int] = None, *, threads: int = 0) -> "SegmentedIndex":
        """Every segment folded into one graph (a new index of one segment; this one is
        unchanged), inserting with beam ``ef_construction`` (default: 2/5 of the build's)."""
        efc = 80 if ef_construction is None else _int("ef_construction", ef_construction, 1)
        return SegmentedIndex._wrap(self._core.merged(efc, _int("threads", threads)))

    @classmethod
    def _core_type(cls) -> Any:
        return _omendex.SegmentedIndex

    @classmethod
    def load(
        cls,
        path: Union[str, "os.PathLike[str]", _blob.Readable, _blob.Bytes],
        *,
        mmap: bool = False,
        segments: Optional[Sequence[int]] = None,
    ) -> "SegmentedIndex":
        """Loads a folder saved by ``save``; with ``mmap``, opens every segment in place. With
        ``segments`` (and ``mmap``), opens those segments alone (numbered 0.. in the folder),
        as a server holding part of a large index does; ``merge_topk`` merges the parts'
        answers into the whole index's. Given a binary file object (anything with ``read``),
        reads ``to_bytes()``' bytes from it, and given bytes, reads them (not with ``mmap``)."""
        if not isinstance(path, (str, os.PathLike)):
            return cls.from_bytes(_blob.read_all(path, mmap or segments is not None))
        folder = os.fspath(path)
        if segments is None:
            return cls._wrap(_omendex.SegmentedIndex.load(folder, bool(mmap)))
        if not mmap:
            raise ValueError("segments= opens part of a folder in place: pass mmap=True")
        which = [_int("segment", s, 0, 65534) for s in segments]
        return cls._wrap(_omendex.SegmentedIndex.open_mmap_part(folder, which))

    def __repr__(self) -> str:
        return f"omendex.SegmentedIndex(dim={self.dim}, metric={self.metric!r}, len={len(self)}, segments={self.segment_count})"

    @property
    def segment_count(self) -> int:
        return int(self._core.segment_count)

    def __getstate__(self) -> bytes:
        return self.to_bytes()

    def __setstate__(self, state: bytes) -> None:
        self._core = _blob.from_bytes(_omendex.SegmentedIndex, state)

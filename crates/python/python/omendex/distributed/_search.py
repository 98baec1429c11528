"""``Searcher``: a pool of Ray actors, each holding a share of the segments of one save."""

from __future__ import annotations

import os
from typing import Any, Optional, Union

import numpy as np
import numpy.typing as npt

from omendex import Neighbors, _omendex, merge_topk
from omendex._args import _int, _rows
from omendex.distributed._cluster import _ray, _segment_name, _split_url, _wait_for_cpus

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

"""What the build and the search share: Ray itself, the folder (local or a URL), its file
names, uploads, and the cluster's CPUs."""

from __future__ import annotations

import importlib
import os
import time
from typing import Any, Optional, Union


from omendex import _omendex

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

"""Arguments as the package takes them: every public call converts and checks its arguments
here (ids, rows, parameters, filters, progress callbacks) before the compiled core sees them,
so bad input is a clear ``ValueError``, ``KeyError`` or ``TypeError``, never a core panic."""

from __future__ import annotations

from typing import Any, Callable, Optional, Union

import numpy as np
import numpy.typing as npt

_I64_MAX = 2**63 - 1


def _int(name: str, value: Any, low: int = 0, high: int = _I64_MAX) -> int:
    """``value`` as an int in ``low..=high`` (``bool`` is refused), else ``ValueError``."""
    if type(value) is int and low <= value <= high:
        return value
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, not {type(value).__name__}")
    if not low <= int(value) <= high:
        raise ValueError(f"{name} must be in {low}..={high}, not {value}")
    return int(value)


def _quantization(value: object) -> str:
    """``value`` as a quantization name the core parses (``"none"`` or ``"int8"``)."""
    if not isinstance(value, str):
        raise ValueError(f"quantization must be a string, not {type(value).__name__}")
    return value


def _params(
    metric: str, m: int, ef_construction: int, ef_search: int, seed: Any, quantization: str = "none"
) -> tuple[str, int, int, int, Any, str]:
    """The core's parameter tuple, each value checked for its type and lower bound (the core
    checks the rest)."""
    return (
        metric,
        _int("m", m, 2),
        _int("ef_construction", ef_construction, 1),
        _int("ef_search", ef_search, 1),
        seed,
        _quantization(quantization),
    )


def _plan(segments: Any, max_segment_size: Any) -> tuple[Optional[int], Optional[int]]:
    """A build's split, checked: ``segments`` (1 to 65535) or ``max_segment_size`` (at least
    1), exactly one of them."""
    if (segments is None) == (max_segment_size is None):
        raise ValueError("give segments or max_segment_size, one of them")
    return (
        None if segments is None else _int("segments", segments, 1, 65535),
        None if max_segment_size is None else _int("max_segment_size", max_segment_size, 1),
    )


def _seed(seed: Any) -> Optional[int]:
    """A seed, checked (None keeps the default)."""
    return None if seed is None else _int("seed", seed, 0, 2**64 - 1)


def _id(value: object) -> Optional[int]:
    """``value`` as an id omendex can hold (an int in 0..=2**63-1), or ``None``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        return None
    v = int(value)
    return v if 0 <= v <= _I64_MAX else None


_F32 = np.dtype(np.float32)


def _rows(name: str, data: npt.ArrayLike, dim: int) -> npt.NDArray[np.float32]:
    """``data`` as a C-contiguous float32 ``(n, dim)`` array: no copy when it already is one;
    a 1-D array is one row."""
    if type(data) is np.ndarray and data.dtype == _F32 and data.flags.c_contiguous:
        # The fast path of a single query: already what the core reads.
        if data.ndim == 2 and data.shape[1] == dim:
            return data
        if data.ndim == 1 and data.shape[0] == dim:
            return data.reshape(1, dim)
    try:
        arr = np.asarray(data)
    except Exception as e:  # a ragged list, an object numpy cannot read
        raise ValueError(f"{name} is not an array of numbers: {e}") from None
    if arr.dtype == np.bool_ or not (np.issubdtype(arr.dtype, np.number)):
        raise ValueError(f"{name} must hold numbers, not {arr.dtype}")
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise ValueError(f"{name} must hold real numbers, not {arr.dtype}")
    if arr.ndim == 1:
        arr = arr.reshape(1, -1)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 1-D (one vector) or 2-D (one per row), not {arr.ndim}-D")
    if arr.shape[1] != dim:
        raise ValueError(f"{name} has {arr.shape[1]} components per row, the index holds {dim}-dimensional vectors")
    with np.errstate(over="ignore", invalid="ignore"):
        out = np.ascontiguousarray(arr, dtype=np.float32)
    return out


def _ids(data: npt.ArrayLike, n: Optional[int]) -> npt.NDArray[np.int64]:
    arr = np.asarray(data)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise ValueError(f"ids must be 1-D, not {arr.ndim}-D")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"ids must be integers, not {arr.dtype}")
    if arr.size and arr.min() < 0:
        raise ValueError(f"ids must not be negative (found {arr.min()})")
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"{arr.shape[0]} ids for {n} vectors")
    _check_int64("ids", arr)
    return np.ascontiguousarray(arr, dtype=np.int64)


def _is_one_id(value: object) -> bool:
    """Whether ``value`` is one id (or one value that names none), not a sequence of ids."""
    return np.ndim(value) == 0 or isinstance(value, (str, bytes))  # type: ignore[arg-type]


def _lookup_ids(data: object) -> npt.NDArray[np.int64]:
    """Ids to look up, as int64 (1-D, any integer dtype); one that no index can hold (negative,
    above int64) raises ``KeyError`` naming it, as one not in the index does."""
    arr = np.asarray(data)
    if arr.ndim != 1:
        raise ValueError(f"ids must be 1-D, not {arr.ndim}-D")
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"ids must be integers, not {arr.dtype}")
    if arr.dtype == np.uint64 and int(arr.max()) > _I64_MAX:
        raise KeyError(int(arr[arr > _I64_MAX][0]))
    return np.ascontiguousarray(arr, dtype=np.int64)


Progress = Union[Callable[[int, int], object], Any, None]


def _progress(progress: Progress) -> Optional[Callable[[int, int], object]]:
    """``progress=`` as the core calls it, ``f(done, total)``: a callable as it is, or a
    tqdm-like bar (an object with ``update(n)``; its ``total`` set when it has none) advanced
    by what was done since the last call."""
    if progress is None:
        return None
    update = getattr(progress, "update", None)
    if callable(update) and not isinstance(progress, dict):
        seen = 0

        def advance(done: int, total: int) -> None:
            nonlocal seen
            if getattr(progress, "total", 0) is None:
                setattr(progress, "total", total)
            if done > seen:
                update(done - seen)
                seen = done

        return advance
    if callable(progress):
        return progress
    raise TypeError(f"progress must be a callable (done, total) or a tqdm-like bar, not {type(progress).__name__}")


def _check_int64(name: str, arr: npt.NDArray[Any]) -> None:
    """Refuses integers above int64's range (only uint64 holds them): cast to int64 they would
    wrap to negative numbers, and ``2**64 - 1`` to ``-1``, the padding marker."""
    if arr.size and arr.dtype == np.uint64 and int(arr.max()) > _I64_MAX:
        raise ValueError(f"{name} must fit in int64 (at most {_I64_MAX}), not {int(arr.max())}")


_ID_DTYPES = tuple(np.dtype(t) for t in (np.int32, np.int64, np.uint32, np.uint64))


def _filter_array(filter: npt.ArrayLike) -> npt.NDArray[Any]:
    """A filter as the core reads it: a bool mask as it is, ids as int64. Any other dtype is
    refused: a mask of 0s and 1s in a narrow integer type would read as the ids {0, 1}."""
    arr = np.asarray(filter)
    if arr.dtype == np.bool_:
        if arr.ndim != 1:
            raise ValueError(f"a filter mask must be 1-D, not {arr.ndim}-D")
        return np.ascontiguousarray(arr)
    if arr.size == 0 and not isinstance(filter, np.ndarray):
        return np.zeros(0, dtype=np.int64)  # an empty list: no id allowed
    if arr.dtype not in _ID_DTYPES:
        raise ValueError(
            f"a filter is a bool mask over ids or an array of ids of int32, int64, uint32 or uint64, not "
            f"{arr.dtype}: for a mask of 0s and 1s pass mask.astype(bool), for ids pass ids.astype(np.int64)"
        )
    return _ids(arr, None)

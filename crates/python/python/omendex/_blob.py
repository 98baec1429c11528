"""An index as bytes and back, for blob stores and databases: what ``to_bytes`` and
``from_bytes``, pickling, and ``save``/``load`` on a binary file object use.

An ``Index`` is its saved file's bytes. A ``SegmentedIndex`` is its saved folder's files in an
uncompressed tar (without the folder's lock, which a load makes afresh); reading one back
takes regular files with plain names only, and the load then checks them as it checks any
folder."""

from __future__ import annotations

import io
import os
import shutil
import tarfile
import tempfile
from typing import Any, Protocol, Union

from omendex import _omendex
from omendex._omendex import CorruptIndexError

Bytes = Union[bytes, bytearray, memoryview]

# The saved file's name inside the temporary folder; any name would do.
_FILE = "index.omen"
# The folder lock: made afresh by the load, so not carried.
_LOCK = "omen.lock"


class Writable(Protocol):
    """A binary file object to write to."""

    def write(self, data: bytes, /) -> object: ...


class Readable(Protocol):
    """A binary file object to read from."""

    def read(self, /) -> Bytes: ...


def to_bytes(core: Any) -> bytes:
    """The bytes of a compiled index (``_omendex.Index`` or ``_omendex.SegmentedIndex``)."""
    with tempfile.TemporaryDirectory() as d:
        if isinstance(core, _omendex.Index):
            path = os.path.join(d, _FILE)
            core.save(path)
            with open(path, "rb") as f:
                return f.read()
        folder = os.path.join(d, "index")
        core.save(folder)
        out = io.BytesIO()
        with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for name in sorted(os.listdir(folder)):
                if name == _LOCK:
                    continue
                path = os.path.join(folder, name)
                # Fixed metadata, so one index gives the same bytes each time.
                info = tarfile.TarInfo(name)
                info.size, info.mode, info.mtime = os.path.getsize(path), 0o644, 0
                with open(path, "rb") as f:
                    tar.addfile(info, f)
        return out.getvalue()


def from_bytes(core_type: Any, data: object) -> Any:
    """A compiled index of ``core_type`` from ``to_bytes``' bytes; ``CorruptIndexError`` for
    bytes that are not one, damaged or truncated, ``TypeError`` for what is not bytes."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"from_bytes takes bytes, not {type(data).__name__}")
    with tempfile.TemporaryDirectory() as d:
        if core_type is _omendex.Index:
            path = os.path.join(d, _FILE)
            with open(path, "wb") as f:
                f.write(data)
            return core_type.load(path, False)
        folder = os.path.join(d, "index")
        os.mkdir(folder)
        try:
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
                for member in tar:
                    name = member.name
                    plain = name not in ("", ".", "..", _LOCK) and os.path.basename(name) == name
                    target = os.path.join(folder, name)
                    if not (member.isreg() and plain) or os.path.lexists(target):
                        raise CorruptIndexError(f"not a saved segmented index: it holds {name!r}")
                    source = tar.extractfile(member)
                    assert source is not None  # a regular file
                    with open(target, "wb") as f:
                        shutil.copyfileobj(source, f)
        except tarfile.TarError as e:
            raise CorruptIndexError(f"not a saved segmented index: {e}") from None
        return core_type.load(folder, False)


def read_all(source: Union[Readable, Bytes], in_place: bool) -> Bytes:
    """Everything ``source`` holds (bytes as they are), as ``load`` reads a file object."""
    if in_place:
        raise ValueError("mmap= and segments= open a saved index in place: give its path, not a file object or bytes")
    if isinstance(source, (bytes, bytearray, memoryview)):
        return source
    data = source.read()
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"the file object gave {type(data).__name__}, not bytes: open it in binary mode ('rb')")
    return data

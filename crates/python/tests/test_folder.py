"""A segmented folder the way unlucky users meet it: signals while a save or load waits for
the folder's lock, hostile files where the manifest or the lock should be, a save that fails
part-way, and a build begun beside a local save."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import omendex

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals, flock and FIFOs")

HOLD = """
import fcntl, sys, time
f = open(sys.argv[1], "a+")
fcntl.flock(f, fcntl.LOCK_EX)
print("held", flush=True)
time.sleep(float(sys.argv[2]))
"""


def saved(tmp_path: Path, n: int = 300, seed: int = 1) -> tuple[Path, omendex.SegmentedIndex]:
    rng = np.random.default_rng(seed)
    index = omendex.SegmentedIndex.build(rng.standard_normal((n, 8), dtype=np.float32), segments=2, seed=seed)
    folder = tmp_path / "seg"
    index.save(folder)
    return folder, index


def hold_lock(folder: Path, seconds: float) -> subprocess.Popen[str]:
    """Another process holding the folder's lock for `seconds`, returned once it holds it."""
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(folder / "omen.lock"), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    return holder


def test_a_handler_that_returns_does_not_fail_a_wait_for_the_lock(tmp_path: Path) -> None:
    folder, index = saved(tmp_path)
    fired = []
    previous = signal.signal(signal.SIGUSR1, lambda *_: fired.append(1))
    main = threading.get_ident()
    stop = threading.Event()

    def poke() -> None:
        while not stop.wait(0.05):
            signal.pthread_kill(main, signal.SIGUSR1)

    holder = hold_lock(folder, 1.5)
    poker = threading.Thread(target=poke)
    poker.start()
    try:
        loaded = omendex.SegmentedIndex.load(folder)  # waits for the holder, through the signals
        index.save(folder)
    finally:
        stop.set()
        poker.join()
        holder.wait()
        signal.signal(signal.SIGUSR1, previous)
    assert len(loaded) == len(index)
    assert fired, "the handler ran while the load waited"


@pytest.mark.parametrize("call", ["load", "save", "inspect"])
def test_ctrl_c_ends_a_wait_for_the_lock_with_keyboard_interrupt(tmp_path: Path, call: str) -> None:
    folder, index = saved(tmp_path)
    holder = hold_lock(folder, 60)
    main = threading.get_ident()
    timer = threading.Timer(0.3, lambda: signal.pthread_kill(main, signal.SIGINT))
    started = time.monotonic()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            if call == "load":
                omendex.SegmentedIndex.load(folder)
            elif call == "save":
                index.save(folder)
            else:
                omendex._omendex.inspect_segments(str(folder))
        waited = time.monotonic() - started
    finally:
        timer.cancel()
        holder.kill()
        holder.wait()
    # The holder keeps the lock for 60 s: anything near that is a wait that ignored Ctrl-C.
    assert waited < 30, f"Ctrl-C ended the wait after {waited:.1f} s"
    assert len(omendex.SegmentedIndex.load(folder)) == len(index), "the folder is as it was"


def within(seconds: float, code: str) -> subprocess.CompletedProcess[str]:
    """Runs `code` in a fresh interpreter; a test fails (not hangs) on one that blocks."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=seconds)


@pytest.mark.parametrize("where", ["manifest.omen", "omen.lock"])
def test_a_fifo_in_the_folder_is_refused_not_waited_on(tmp_path: Path, where: str) -> None:
    folder, _ = saved(tmp_path)
    os.remove(folder / where)
    os.mkfifo(folder / where)
    done = within(120, f"import omendex\ntry:\n    omendex.SegmentedIndex.load({str(folder)!r})\nexcept OSError as e:\n    print('refused', e)")
    assert "refused" in done.stdout and "not a regular file" in done.stdout, done.stdout + done.stderr


def test_a_symlinked_lock_is_refused_and_creates_nothing_outside(tmp_path: Path) -> None:
    folder, index = saved(tmp_path)
    os.remove(folder / "omen.lock")
    outside = tmp_path / "elsewhere"
    os.symlink(outside, folder / "omen.lock")
    with pytest.raises(OSError, match="symbolic link"):
        index.save(folder)
    with pytest.raises(OSError, match="symbolic link"):
        omendex.SegmentedIndex.load(folder)
    assert not outside.exists()


def test_a_huge_manifest_is_refused_before_it_is_read(tmp_path: Path) -> None:
    folder, _ = saved(tmp_path)
    with open(folder / "manifest.omen", "r+b") as f:
        f.truncate(2 << 30)  # sparse
    started = time.monotonic()
    with pytest.raises(omendex.CorruptIndexError, match="more than any manifest holds"):
        omendex.SegmentedIndex.load(folder)
    assert time.monotonic() - started < 10


def test_a_save_beside_a_build_keeps_both_apart(tmp_path: Path) -> None:
    folder, index = saved(tmp_path)
    build = omendex._omendex.begin_segments(str(folder))
    other = omendex.Index(8, seed=3)
    other.add(np.random.default_rng(3).standard_normal((50, 8), dtype=np.float32), np.arange(1000, 1050))
    # A local save while the build is being written: it draws a later generation, whole.
    index.save(folder)
    with pytest.raises(omendex.SaveConflictError):
        other._core.write_segment(str(folder), build.generation, 0)
    with pytest.raises(omendex.SaveConflictError):
        build.commit(("l2", 16, 200, 64, 3, "none"), 8, [(50, 0)], None)
    build.abort()
    assert len(omendex.SegmentedIndex.load(folder)) == len(index)
    assert not any(omendex._omendex.generation_named(n) == build.generation for n in os.listdir(folder))
    # An ended build takes no commit and no write; a second abort changes nothing.
    with pytest.raises(omendex.SaveConflictError, match="ended"):
        build.commit(("l2", 16, 200, 64, 3, "none"), 8, [(50, 0)], None)
    with pytest.raises(omendex.SaveConflictError):
        other._core.write_segment(str(folder), build.generation, 0)
    build.abort()
    assert len(omendex.SegmentedIndex.load(folder)) == len(index)


def test_a_remote_writers_check_refuses_a_damaged_segment_file(tmp_path: Path) -> None:
    index = omendex.Index(8, seed=3)
    index.add(np.random.default_rng(3).standard_normal((50, 8), dtype=np.float32), np.arange(50))
    path = tmp_path / "segment.omen"
    entry = index._core.write_segment_file(str(path))
    assert omendex._omendex.verify_segment_file(str(path)) == entry
    data = bytearray(path.read_bytes())
    data[-300] ^= 0x10  # within the last sections (vectors, ids)
    path.write_bytes(bytes(data))
    with pytest.raises(omendex.CorruptIndexError):
        omendex._omendex.verify_segment_file(str(path))
    path.write_bytes(b"OMEN")
    with pytest.raises(omendex.CorruptIndexError):
        omendex._omendex.verify_segment_file(str(path))


def test_a_file_name_too_long_for_its_temporary_is_refused_up_front(tmp_path: Path) -> None:
    index = omendex.Index(4)
    index.add(np.ones((3, 4), dtype=np.float32))
    with pytest.raises(OSError, match="250 bytes") as raised:
        index.save(tmp_path / ("a" * 250))
    assert ".tmp" not in str(raised.value)
    assert os.listdir(tmp_path) == []

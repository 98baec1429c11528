"""What the package survives at its edges: ids and filters that could be misread, many
thread counts, a fork, and signal handlers that use the index."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import textwrap
import time
import traceback
import warnings
from typing import Callable

import numpy as np
import pytest

import omendex


def data(n: int, dim: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)


def test_merge_topk_refuses_ids_outside_int64() -> None:
    d = np.array([[0.1, 0.2]], dtype=np.float32)
    # 2**64 - 1 once read as int64 is -1, the padding marker: it would vanish from the answer.
    for big in (2**64 - 1, 2**63):
        with pytest.raises(ValueError, match="int64"):
            omendex.merge_topk([(np.array([[3, big]], dtype=np.uint64), d)], 2)
        with pytest.raises(ValueError, match="int64"):
            omendex.merge_topk([(np.array([[3, 4]]), d), ([[big]], d[:, :1])], 2)
        with pytest.raises(ValueError):  # numpy reads this list as float64: not integers
            omendex.merge_topk([([[big, 5]], d)], 2)
    # Every id int64 holds still merges, from any integer type; -1 in int64 stays padding.
    top = np.array([[2**63 - 1, 7]], dtype=np.uint64)
    assert omendex.merge_topk([(top, d)], 2).ids.tolist() == [[2**63 - 1, 7]]
    padded = omendex.merge_topk([(np.array([[5, -1]]), np.array([[0.3, np.inf]], dtype=np.float32))], 2)
    assert padded.ids.tolist() == [[5, -1]]




@pytest.mark.parametrize("shape", ["index", "segmented"])
def test_a_filter_is_a_bool_mask_or_wide_integer_ids_and_nothing_else(shape: str) -> None:
    base = data(300, 8, 1)
    index: omendex.Index | omendex.SegmentedIndex
    if shape == "index":
        index = omendex.Index(8, seed=3)
        index.add(base)
    else:
        index = omendex.SegmentedIndex.build(base, segments=2, seed=3)
    q = data(4, 8, 2)
    mask = np.zeros(300, dtype=bool)
    mask[[5, 17, 200]] = True
    want = index.search(q, k=3, ef=300, filter=mask).ids
    assert sorted(want[0].tolist()) == [5, 17, 200]
    ids = np.array([5, 17, 200])
    for dtype in (np.int32, np.int64, np.uint32, np.uint64):
        np.testing.assert_array_equal(index.search(q, k=3, ef=300, filter=ids.astype(dtype)).ids, want)
    np.testing.assert_array_equal(index.search(q, k=3, ef=300, filter=[5, 17, 200]).ids, want)
    np.testing.assert_array_equal(index.search(q, k=3, ef=300, filter=mask.tolist()).ids, want)
    assert (index.search(q, k=3, filter=[]).ids == -1).all()
    # A mask of 0s and 1s in a narrow integer type would read as the ids {0, 1}; floats are
    # neither a mask nor ids. Each is refused, naming the conversion that says which was meant.
    for other in (np.int8, np.uint8, np.int16, np.uint16, np.float16, np.float32, np.float64):
        for bad in (mask.astype(other), ids.astype(other), np.zeros(0, dtype=other)):
            with pytest.raises(ValueError, match=r"astype\(bool\).*astype\(np\.int64\)"):
                index.search(q, k=3, filter=bad)
    for bad_list in ([1.0, 2.0], ["a"], [None]):
        with pytest.raises(ValueError, match="astype"):
            index.search(q, k=3, filter=bad_list)  # type: ignore[arg-type]


def threads_now() -> int:
    """This process's OS thread count."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    raise AssertionError("no Threads: line in /proc/self/status")


# How many thread counts' pools the binding keeps between calls (KEPT in src/pools.rs).
KEPT_POOLS = 4


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads /proc/self/status (Linux)")
def test_many_thread_counts_leave_only_the_kept_pools_threads() -> None:
    index = omendex.Index(4, seed=1)
    index.add(data(50, 4, 70), threads=1)
    q = data(4, 4, 71)
    # Pools kept by earlier calls are evicted below, so this bounds what is left from above.
    before = threads_now()
    counts = list(range(2, 42))  # 860 threads, were every pool kept
    for t in counts:
        assert index.search(q, k=1, threads=t).ids.shape == (4, 1)
    # The kept pools are those of the most recent counts; an evicted pool's threads exit on
    # their own once it is dropped, so the count is polled until it settles.
    bound = before + sum(counts[-KEPT_POOLS:]) + 8
    deadline = time.monotonic() + 60
    while (now := threads_now()) > bound and time.monotonic() < deadline:
        time.sleep(0.05)
    assert now <= bound, f"{now} threads after {len(counts)} thread counts, {before} before (bound {bound})"


def run_forked(calls: dict[str, Callable[[], None]], deadline_s: float = 120) -> dict[str, str]:
    """Forks one child per call, all at once; each runs its call and exits 0, or 1 on an
    exception (printed). Returns each call's outcome: "ok", "exit N", "signal N" or "hung"
    (still running at the deadline, then killed)."""
    pids: dict[int, str] = {}
    with warnings.catch_warnings():
        # Python 3.12+ warns that forking a process with threads may deadlock the child:
        # that is what these children check.
        warnings.simplefilter("ignore", DeprecationWarning)
        for name, call in calls.items():
            pid = os.fork()
            if pid == 0:
                code = 1
                try:
                    call()
                    code = 0
                except BaseException:  # noqa: BLE001 - reported by the exit code
                    traceback.print_exc()
                finally:
                    sys.stderr.flush()
                    os._exit(code)
            pids[pid] = name
    outcome: dict[str, str] = {}
    end = time.monotonic() + deadline_s
    while pids and time.monotonic() < end:
        for pid in list(pids):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                code = os.waitstatus_to_exitcode(status)
                outcome[pids.pop(pid)] = "ok" if code == 0 else f"exit {code}" if code > 0 else f"signal {-code}"
        time.sleep(0.02)
    for pid, name in pids.items():
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        outcome[name] = "hung"
    return outcome


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_every_call_works_in_a_forked_child(tmp_path: os.PathLike[str]) -> None:
    base, extra, q = data(600, 8, 60), data(200, 8, 61), data(20, 8, 62)
    index = omendex.Index(8, seed=1)
    index.add(base, threads=0)
    seg = omendex.SegmentedIndex.build(base, segments=3, seed=1, threads=2)
    coded = omendex.Index(8, seed=1, quantization="int8")
    coded.add(base, threads=2)
    file, folder = os.path.join(tmp_path, "index.omen"), os.path.join(tmp_path, "segments")
    index.save(file)
    seg.save(folder)
    # Every pool the children ask for is started here first: threads=0 and threads=2, batch
    # and single queries, builds.
    want, want_seg, want_coded = {}, {}, {}
    for t in (0, 2):
        want[t] = index.search(q, k=5, threads=t).ids
        want_seg[t] = seg.search(q, k=5, threads=t).ids
        want_coded[t] = coded.search(q, k=5, threads=t).ids
        seg.search(q[0], k=5, threads=t)
        omendex.SegmentedIndex.build(base[:100], segments=2, threads=t)

    def index_add(t: int) -> None:
        assert index.add(extra, threads=t).tolist() == list(range(600, 800)) and len(index) == 800
        index.check_invariants()

    def coded_build(t: int) -> None:
        fresh = omendex.Index(8, seed=1, quantization="int8")
        fresh.add(base, threads=t)  # trains the codes and measures their fit, in parallel
        assert fresh.quantization_status == coded.quantization_status

    def index_search(t: int) -> None:
        np.testing.assert_array_equal(index.search(q, k=5, threads=t).ids, want[t])
        np.testing.assert_array_equal(index.search(q[0], k=5, threads=t).ids, want[t][:1])
        np.testing.assert_array_equal(coded.search(q, k=5, threads=t).ids, want_coded[t])

    def index_compact(t: int) -> None:
        index.delete(3)
        assert index.compact(threads=t) == 1 and 3 not in index and len(index) == 599
        index.check_invariants()

    def index_rebuild(t: int) -> None:
        index.delete(4)
        assert index.rebuild(threads=t) == 1 and 4 not in index and len(index) == 599
        index.check_invariants()

    def index_load(t: int) -> None:
        np.testing.assert_array_equal(omendex.Index.load(file).search(q, k=5, threads=t).ids, want[t])
        np.testing.assert_array_equal(omendex.Index.load(file, mmap=True).search(q, k=5, threads=t).ids, want[t])
        again = pickle.loads(pickle.dumps(coded))
        np.testing.assert_array_equal(again.search(q, k=5, threads=t).ids, want_coded[t])

    def seg_build(t: int) -> None:
        built = omendex.SegmentedIndex.build(base, segments=3, seed=1, threads=t)
        assert (len(built), built.segment_count) == (600, 3)
        built.check_invariants()

    def seg_add_segment(t: int) -> None:
        assert seg.add_segment(extra, threads=t).tolist() == list(range(600, 800)) and seg.segment_count == 4
        seg.check_invariants()

    def seg_search(t: int) -> None:
        np.testing.assert_array_equal(seg.search(q, k=5, threads=t).ids, want_seg[t])
        np.testing.assert_array_equal(seg.search(q[0], k=5, threads=t).ids, want_seg[t][:1])

    def seg_compact(t: int) -> None:
        seg.delete(3)
        assert seg.compact(threads=t) == 1 and 3 not in seg and len(seg) == 599
        seg.check_invariants()

    def seg_merged(t: int) -> None:
        one = seg.merged(threads=t)
        assert (len(one), one.segment_count) == (600, 1)
        one.check_invariants()

    def seg_load(t: int) -> None:
        for loaded in (omendex.SegmentedIndex.load(folder), omendex.SegmentedIndex.load(folder, mmap=True)):
            np.testing.assert_array_equal(loaded.search(q, k=5, threads=t).ids, want_seg[t])

    checks = [
        index_add, coded_build, index_search, index_compact, index_rebuild, index_load,
        seg_build, seg_add_segment, seg_search, seg_compact, seg_merged, seg_load,
    ]  # fmt: skip
    calls: dict[str, Callable[[], None]] = {}
    for check in checks:
        for t in (0, 2):
            calls[f"{check.__name__}(threads={t})"] = lambda check=check, t=t: check(t)  # type: ignore[misc]
    outcome = run_forked(calls)
    failed = [f"{name}: {how}" for name, how in outcome.items() if how != "ok"]
    assert not failed, "in a forked child:\n" + "\n".join(failed)
    # The parent's pools still serve it.
    np.testing.assert_array_equal(index.search(q, k=5, threads=2).ids, want[2])


# A signal handler that uses the index while an add runs on the same thread: run in a
# subprocess, so that a deadlock fails the test (by its timeout) instead of hanging the suite.
SIGNAL_SCRIPT = textwrap.dedent(
    """
    import json, os, signal, sys
    import numpy as np
    import omendex

    folder = sys.argv[1]
    path = os.path.join(folder, "on-signal.omen")
    rng = np.random.default_rng(0)
    q = rng.standard_normal((3, 16)).astype(np.float32)
    report = {}

    def add_with_handler(n, handler):
        # A 10 ms timer fires between the add's chunks; n is doubled until a handler ran inside
        # the add. The timer is one-shot, armed again when the handler ends, so a handler slower
        # than 10 ms (a busy machine) is never interrupted by the next one.
        while True:
            index = omendex.Index(16, seed=1)
            vecs = rng.standard_normal((n, 16)).astype(np.float32)
            seen = []

            def on_alarm(*_, index=index, seen=seen):
                try:
                    handler(index, seen)
                finally:
                    signal.setitimer(signal.ITIMER_REAL, 0.01)

            signal.signal(signal.SIGALRM, on_alarm)
            signal.setitimer(signal.ITIMER_REAL, 0.01)
            try:
                ids = index.add(vecs, threads=1)
                err = None
            except KeyboardInterrupt:
                ids, err = None, "KeyboardInterrupt"
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, signal.SIG_DFL)
            inside = [s for s in seen if 0 < s < n]
            if inside or n >= 1 << 22:
                return index, n, ids, err, inside
            n *= 2

    def use(index, seen):
        seen.append(len(index))
        assert index.search(q, k=2).ids.shape == (3, 2)
        index.save(path)

    index, n, ids, err, inside = add_with_handler(4096, use)
    saved = len(omendex.Index.load(path))
    report["used"] = dict(n=n, err=err, inside=len(inside), len=len(index),
                          ids_ok=ids is not None and ids.tolist() == list(range(n)), saved=saved)
    index.check_invariants()

    def save_and_stop(index, seen):
        # "Save what we have on Ctrl-C": the chunks added so far, then stop.
        seen.append(len(index))
        if 0 < seen[-1]:
            index.save(path)
            raise KeyboardInterrupt

    index, n, ids, err, inside = add_with_handler(4096, save_and_stop)
    report["stopped"] = dict(n=n, err=err, inside=len(inside), len=len(index), saved=len(omendex.Index.load(path)),
                             first=inside[:1])
    index.check_invariants()
    print(json.dumps(report))
    """
)


@pytest.mark.skipif(not hasattr(__import__("signal"), "setitimer"), reason="no setitimer on this platform")
def test_a_signal_handler_may_use_the_index_while_an_add_runs(tmp_path: os.PathLike[str]) -> None:
    try:
        run = subprocess.run(
            [sys.executable, "-c", SIGNAL_SCRIPT, os.fspath(tmp_path)], capture_output=True, text=True, timeout=120
        )
    except subprocess.TimeoutExpired:
        pytest.fail("the add with a signal handler using the index did not end in 120 s: a deadlock")
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    used, stopped = report["used"], report["stopped"]
    # The handler ran between chunks, saw them, and the add then completed.
    assert used["inside"] > 0 and used["err"] is None and used["ids_ok"] and used["len"] == used["n"], used
    assert 0 < used["saved"] <= used["n"], used
    # A handler that saves and raises: the file holds the chunks added so far, and the add
    # deletes what it added, as on Ctrl-C.
    assert stopped["err"] == "KeyboardInterrupt" and stopped["len"] == 0, stopped
    assert stopped["saved"] == stopped["first"][0] > 0, stopped


FORK_HANDLER_SCRIPT = textwrap.dedent(
    """
    import json, os, signal, sys, time, warnings
    import numpy as np
    import omendex

    warnings.simplefilter("ignore", DeprecationWarning)  # forking with threads: what is tested
    dim = 32
    probe = np.random.default_rng(9).standard_normal((2_000, dim)).astype(np.float32)
    started = time.monotonic()
    omendex.Index(dim, seed=9).add(probe, threads=2)
    rate = len(probe) / (time.monotonic() - started)
    # About 2 s of building, so the handler (due 0.2 s in) fires while the call runs.
    rows = np.random.default_rng(1).standard_normal((int(min(200_000, max(5_000, 2.0 * rate))), dim)).astype(np.float32)
    base = omendex.Index(dim, seed=1)
    base.add(rows[:2_000], threads=2)
    built = omendex.SegmentedIndex.build(rows, segments=4, seed=1, threads=2)
    queries = np.repeat(rows[:500], max(1, int(2.0 * rate / 500)), axis=0)
    calls = {
        "SegmentedIndex.build": lambda: omendex.SegmentedIndex.build(rows, segments=2, seed=2, threads=2),
        "merged": lambda: built.merged(threads=2),
        "add_segment": lambda: built.add_segment(rows, threads=2),
        "batch search": lambda: base.search(queries, 10, ef=400, threads=2),
    }
    report = {}
    for name, call in calls.items():
        state = {"child": False, "pid": None}

        def handler(sig, frame):
            if state["pid"] is None and not state["child"]:
                pid = os.fork()
                if pid == 0:
                    state["child"] = True  # and return: the child goes on in the call
                else:
                    state["pid"] = pid

        signal.signal(signal.SIGALRM, handler)
        signal.setitimer(signal.ITIMER_REAL, 0.2)
        code = 4
        try:
            try:
                call()
                code = 5  # the child ran the whole call itself (forked before it began)
            except RuntimeError as e:
                code = 0 if "forked" in str(e) else 3
        finally:
            if state["child"]:
                sys.stdout.flush()
                os._exit(code)
            signal.setitimer(signal.ITIMER_REAL, 0)
        if state["pid"] is None:
            report[name] = "no fork: the call ended first"
            continue
        end = time.monotonic() + 60
        while time.monotonic() < end:
            done, status = os.waitpid(state["pid"], os.WNOHANG)
            if done:
                report[name] = os.waitstatus_to_exitcode(status)
                break
            time.sleep(0.02)
        else:
            os.kill(state["pid"], 9)
            os.waitpid(state["pid"], 0)
            report[name] = "hung"
    print(json.dumps(report))
    """
)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_a_signal_handler_that_forks_during_a_long_call_leaves_no_child_hanging() -> None:
    try:
        run = subprocess.run([sys.executable, "-c", FORK_HANDLER_SCRIPT], capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        pytest.fail("the parent did not end in 300 s")
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    # Each child raises RuntimeError at once (0); one forked before the call began runs the
    # whole call itself (5). Never a hang, another exception (4) or a result from half a call.
    assert all(code in (0, 5) for code in report.values()), report
    assert any(code == 0 for code in report.values()), f"no fork landed inside a call: {report}"

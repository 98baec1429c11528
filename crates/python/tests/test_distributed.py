"""omendex.distributed on a local Ray cluster: builds, searches, failures, bad input.

Ray binds the machine's outward address by default; CI runs this file inside a network
namespace holding only loopback (`unshare -n`), where Ray binds 127.0.0.1."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest

import omendex

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'omendex[ray]')")
from omendex import distributed  # noqa: E402

DIM = 16


def clustered(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((50, DIM)) * 3
    return (centres[rng.integers(0, 50, n)] + rng.standard_normal((n, DIM))).astype(np.float32)


def exact(base: np.ndarray, ids: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    d = ((queries[:, None, :] - base[None, :, :]) ** 2).sum(-1)
    return ids[np.argsort(d, axis=1, kind="stable")[:, :k]]


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def built(local_ray: None, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray, np.ndarray]:
    base = clustered(20_000, 1)
    queries = clustered(200, 2)
    out = tmp_path_factory.mktemp("dist") / "index"
    seen: list[tuple[int, int]] = []
    report = distributed.build(
        base, out, segments=4, m=8, ef_construction=64, seed=5, progress=lambda done, total: seen.append((done, total))
    )
    assert report.lens == [5000] * 4 and report.out == str(out)
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]
    return out, base, queries


def test_the_folder_is_a_segmented_index_built_as_locally(built: tuple[Path, np.ndarray, np.ndarray]) -> None:
    out, base, queries = built
    loaded = omendex.SegmentedIndex.load(out)
    assert (len(loaded), loaded.segment_count) == (20_000, 4)
    loaded.check_invariants()
    # Each part built on one core with the seed plus its number, as SegmentedIndex.build does
    # with at least as many segments as threads: the same graphs, so the same answers.
    local = omendex.SegmentedIndex.build(base, segments=4, m=8, ef_construction=64, seed=5, threads=2)
    a, b = loaded.search(queries, 10, ef=24), local.search(queries, 10, ef=24)
    np.testing.assert_array_equal(a.ids, b.ids)
    np.testing.assert_array_equal(a.distances, b.distances)
    names = sorted(os.listdir(out))
    assert names[:2] == ["manifest.omen", "omen.lock"] and len(names) == 6
    assert all(n.startswith("segment-") for n in names[2:])


def test_the_searcher_answers_as_the_loaded_index(built: tuple[Path, np.ndarray, np.ndarray]) -> None:
    out, base, queries = built
    loaded = omendex.SegmentedIndex.load(out)
    for per, replicas in [(1, 1), (3, 2)]:
        searcher = distributed.Searcher(out, segments_per_actor=per, replicas=replicas, cpus_per_actor=0.25)
        try:
            for ef in (10, 24, 64):
                got, want = searcher.search(queries, 10, ef=ef), loaded.search(queries, 10, ef=ef)
                np.testing.assert_array_equal(got.ids, want.ids)
                np.testing.assert_array_equal(got.distances, want.distances)
            # At ef = the segment size every segment is searched whole: the exact top 10.
            whole = searcher.search(queries[:20], 10, ef=5000)
            np.testing.assert_array_equal(whole.ids, exact(base, np.arange(len(base)), queries[:20], 10))
        finally:
            searcher.close()


def test_recall_at_the_beam_a_local_index_needs(built: tuple[Path, np.ndarray, np.ndarray]) -> None:
    out, base, queries = built
    truth = exact(base, np.arange(len(base)), queries, 10)
    local = omendex.SegmentedIndex.load(out)

    def recall(ids: np.ndarray) -> float:
        return float(np.mean([len(set(r) & set(t)) / 10 for r, t in zip(ids.tolist(), truth.tolist())]))

    ef = next(ef for ef in (10, 16, 24, 32, 48, 64, 96, 128) if recall(local.search(queries, 10, ef=ef).ids) >= 0.95)
    searcher = distributed.Searcher(out, cpus_per_actor=0.25)
    try:
        assert recall(searcher.search(queries, 10, ef=ef).ids) >= 0.95
    finally:
        searcher.close()


def test_a_killed_search_actor_costs_time_not_answers(built: tuple[Path, np.ndarray, np.ndarray]) -> None:
    out, _, queries = built
    want = omendex.SegmentedIndex.load(out).search(queries, 10, ef=24)
    searcher = distributed.Searcher(out, cpus_per_actor=0.25, max_restarts=2)
    answers: list[Any] = []
    started = threading.Event()

    def run() -> None:
        for i in range(30):
            answers.append(searcher.search(queries, 10, ef=24))
            if i == 2:
                started.set()

    try:
        t = threading.Thread(target=run)
        t.start()
        assert started.wait(120)
        victim = searcher.actors[1][0]
        pid_before = ray.get(victim.pid.remote())
        ray.kill(victim, no_restart=False)  # as a crashed worker: Ray restarts it
        t.join(300)
        assert not t.is_alive() and len(answers) == 30
        for got in answers:
            np.testing.assert_array_equal(got.ids, want.ids)
        assert ray.get(victim.pid.remote()) != pid_before, "the actor was restarted"
    finally:
        searcher.close()


def test_a_killed_build_task_is_retried_and_leaves_nothing_behind(local_ray: None, tmp_path: Path) -> None:
    base = clustered(4000, 3)
    out = tmp_path / "index"

    # Defined here so that Ray ships it to the workers by value.
    def _die_once(number: int, out: str) -> None:
        """Kills the worker building partition 1 the first time, leaving a half-written file."""
        marker = os.path.join(os.path.dirname(out), "killed-once")
        if number == 1 and not os.path.exists(marker):
            open(marker, "w").close()
            # What a save cut short leaves: a temporary file named as the store names them.
            with open(os.path.join(out, f".segment-0000000000000001-{number:05}.omen.1.0.tmp"), "wb") as f:
                f.write(b"OMEN" + b"\0" * 100)
            os._exit(1)

    distributed.build(base, out, segments=4, m=8, ef_construction=32, _before_write=_die_once)
    assert (tmp_path / "killed-once").exists(), "the task was killed once"
    names = sorted(os.listdir(out))
    assert names[:2] == ["manifest.omen", "omen.lock"] and len(names) == 6, names
    index = omendex.SegmentedIndex.load(out)
    index.check_invariants()
    assert len(index) == 4000


def test_bad_input_names_the_partition_and_leaves_no_manifest(local_ray: None, tmp_path: Path) -> None:
    base = clustered(2000, 4)
    bad = base.copy()
    bad[1700, 3] = np.nan  # in partition 3 of 4
    out = tmp_path / "nan"
    with pytest.raises(ValueError, match="partition 3: .*vector 200"):
        distributed.build(bad, out, segments=4, m=8, ef_construction=32)
    assert not (out / "manifest.omen").exists()
    assert not [n for n in os.listdir(out) if n.startswith("segment-")]

    ids = np.arange(2000)
    ids[1500] = 10  # partition 3 holds an id of partition 0
    out = tmp_path / "dup"
    with pytest.raises(ValueError, match="id 10 is in partitions 0 and 3"):
        distributed.build(base, out, ids=ids, segments=4, m=8, ef_construction=32)
    assert not (out / "manifest.omen").exists()

    def batches() -> Iterator[np.ndarray]:
        yield base[:500]
        yield base[500:900, :8]

    with pytest.raises(ValueError, match=r"batch 1 \(partition 1\): .*8 components per row"):
        distributed.build(batches(), tmp_path / "dim", max_segment_size=400)
    assert not (tmp_path / "dim" / "manifest.omen").exists()
    with pytest.raises(ValueError, match="one of them"):
        distributed.build(base, tmp_path / "x", segments=2, max_segment_size=10)


def test_a_searcher_that_cannot_be_placed_says_so(built: tuple[Path, np.ndarray, np.ndarray]) -> None:
    out, _, _ = built
    with pytest.raises(ValueError, match="the cluster has 2"):
        distributed.Searcher(out, replicas=2, segments_per_actor=1)  # 4 shares x 2 x 1 CPU on 2 CPUs
    with pytest.raises(ValueError, match="the cluster has 2"):
        distributed.Searcher(out, replicas=3)  # even one share of every segment needs 3 CPUs


def test_batches_and_datasets_are_sources(local_ray: None, tmp_path: Path) -> None:
    base = clustered(3000, 5)

    def batches() -> Iterator[Any]:
        for at in range(0, 3000, 700):
            yield (np.arange(at, min(at + 700, 3000)) + 100, base[at : at + 700])

    out = tmp_path / "batches"
    report = distributed.build(batches(), out, max_segment_size=1000, m=8, ef_construction=32)
    assert report.lens == [1000, 1000, 1000]
    index = omendex.SegmentedIndex.load(out)
    assert 100 in index and 3099 in index and 99 not in index
    np.testing.assert_array_equal(index.get(2100), base[2000])

    data = pytest.importorskip("ray.data", reason="Ray Data is not installed (pip install 'ray[data]')")
    ds = data.from_items([{"id": 7 * i, "vector": base[i]} for i in range(3000)])
    out = tmp_path / "dataset"
    report = distributed.build(ds, out, segments=3, id_column="id", m=8, ef_construction=32)
    assert sum(report.lens) == 3000
    index = omendex.SegmentedIndex.load(out)
    assert 7 * 2999 in index and 1 not in index
    np.testing.assert_array_equal(index.get(7 * 1234), base[1234])


def test_an_fsspec_url_as_the_folder(local_ray: None, tmp_path: Path) -> None:
    pytest.importorskip("fsspec", reason="fsspec is not installed")
    base = clustered(3000, 6)
    queries = clustered(50, 7)
    url = f"file://{tmp_path}/remote"
    report = distributed.build(base, url, segments=3, m=8, ef_construction=32, seed=2)
    assert report.out == url and report.lens == [1000] * 3
    names = sorted(os.listdir(tmp_path / "remote"))
    assert names[0] == "manifest.omen" and len(names) == 4 and all(n.startswith("segment-") for n in names[1:])
    loaded = omendex.SegmentedIndex.load(tmp_path / "remote")
    local = omendex.SegmentedIndex.build(base, segments=3, m=8, ef_construction=32, seed=2, threads=2)
    np.testing.assert_array_equal(loaded.search(queries, 10, ef=16).ids, local.search(queries, 10, ef=16).ids)
    searcher = distributed.Searcher(url, cpus_per_actor=0.25)
    try:
        np.testing.assert_array_equal(searcher.search(queries, 10, ef=16).ids, loaded.search(queries, 10, ef=16).ids)
    finally:
        searcher.close()
    # A second build into the URL replaces the first whole; a failed one leaves it as it was.
    distributed.build(base[:2000], url, segments=2, m=8, ef_construction=32)
    assert len(omendex.SegmentedIndex.load(tmp_path / "remote")) == 2000
    assert len(os.listdir(tmp_path / "remote")) == 3
    bad = base.copy()
    bad[10, 0] = np.inf
    with pytest.raises(ValueError, match="partition 0"):
        distributed.build(bad, url, segments=2, m=8, ef_construction=32)
    assert len(omendex.SegmentedIndex.load(tmp_path / "remote")) == 2000
    assert len(os.listdir(tmp_path / "remote")) == 3


def test_a_pool_serves_one_save_across_a_resave(local_ray: None, tmp_path: Path) -> None:
    out = tmp_path / "index"
    distributed.build(clustered(3000, 8), out, segments=2, m=8, ef_construction=32, seed=1)
    queries = clustered(50, 10)
    want = omendex.SegmentedIndex.load(out).search(queries, 10, ef=32)
    searcher = distributed.Searcher(out, cpus_per_actor=0.25, max_restarts=2)
    try:
        np.testing.assert_array_equal(searcher.search(queries, 10, ef=32).distances, want.distances)
        # The folder re-saved with other vectors under the same ids.
        omendex.SegmentedIndex.build(clustered(3000, 9), segments=2, m=8, ef_construction=32, seed=1).save(out)
        assert searcher.generation < omendex._omendex.inspect_segments(str(out))["generation"]
        got = searcher.search(queries, 10, ef=32)
        np.testing.assert_array_equal(got.distances, want.distances)  # the actors hold the old save
        # An actor restarted now may not serve the new save beside one serving the old.
        ray.kill(searcher.actors[1][0], no_restart=False)
        try:
            got = searcher.search(queries, 10, ef=32)
        except Exception as e:  # the restart fails, loudly
            assert "re-saved" in str(e), e
        else:
            np.testing.assert_array_equal(got.distances, want.distances)
        searcher.reload()
        new = omendex.SegmentedIndex.load(out).search(queries, 10, ef=32)
        np.testing.assert_array_equal(searcher.search(queries, 10, ef=32).distances, new.distances)
        assert searcher.generation == omendex._omendex.inspect_segments(str(out))["generation"]
    finally:
        searcher.close()


def test_a_local_save_during_a_build_is_never_overwritten(local_ray: None, tmp_path: Path) -> None:
    out = tmp_path / "index"

    def _save_beside(number: int, out: str) -> None:
        """A local save into the folder while the build's partition 0 is about to write."""
        if number == 0:
            rows = np.random.default_rng(11).standard_normal((200, DIM)).astype(np.float32)
            omendex.SegmentedIndex.build(rows, segments=1, seed=4).save(out)

    with pytest.raises(ValueError, match="partition 0"):
        distributed.build(clustered(2000, 12), out, segments=2, m=8, ef_construction=32, _before_write=_save_beside)
    loaded = omendex.SegmentedIndex.load(out)
    assert len(loaded) == 200, "the local save loads whole"
    generation = omendex._omendex.inspect_segments(str(out))["generation"]
    assert sorted(os.listdir(out)) == ["manifest.omen", "omen.lock", omendex._omendex.segment_file_name(generation, 0)]


def test_a_list_of_batches_or_a_generator_goes_into_segments(local_ray: None, tmp_path: Path) -> None:
    base = clustered(2600, 9)
    cuts = [0, 700, 1400, 1500, 2100, 2600]
    listed = [base[a:b] for a, b in zip(cuts, cuts[1:])]
    # A list: split as the array of its rows is, so the same folder as the array gives.
    report = distributed.build(listed, tmp_path / "list", segments=3, m=8, ef_construction=32, seed=3)
    same = distributed.build(base, tmp_path / "array", segments=3, m=8, ef_construction=32, seed=3)
    assert report.lens == same.lens == [867, 867, 866]
    # A size cap splits an array as a local build does (the core's one rule: sizes within one).
    capped = distributed.build(base, tmp_path / "capped", max_segment_size=1000, m=8, ef_construction=32, seed=3)
    omendex.SegmentedIndex.build(base, max_segment_size=1000, m=8, ef_construction=32, seed=3).save(tmp_path / "local")
    assert capped.lens == omendex._omendex.inspect_segments(str(tmp_path / "local"))["lens"] == [867, 867, 866]
    queries = clustered(50, 10)
    a = omendex.SegmentedIndex.load(tmp_path / "list").search(queries, 10, ef=32)
    b = omendex.SegmentedIndex.load(tmp_path / "array").search(queries, 10, ef=32)
    np.testing.assert_array_equal(a.ids, b.ids)

    # A generator: dealt a batch at a time, round-robin, ids numbered on.
    def batches() -> Iterator[np.ndarray]:
        yield from listed

    report = distributed.build(batches(), tmp_path / "gen", segments=2, m=8, ef_construction=32)
    assert report.lens == [700 + 100 + 500, 700 + 600]
    index = omendex.SegmentedIndex.load(tmp_path / "gen")
    assert sorted(index.ids().tolist()) == list(range(2600))
    np.testing.assert_array_equal(index.get([0, 1450, 2599]), base[[0, 1450, 2599]])

    # Bad input leaves no manifest.
    for source, segments, match in (
        (iter(listed[:1]), 2, "empty"),
        (listed, 0, "segments"),
        (listed, -2, "segments"),
        (listed, 70000, "segments"),
    ):
        with pytest.raises(ValueError, match=match):
            distributed.build(source, tmp_path / "bad", segments=segments, m=8, ef_construction=32)
        assert not (tmp_path / "bad" / "manifest.omen").exists()


def test_the_default_searcher_fits_the_cluster(built: tuple[Path, np.ndarray, np.ndarray]) -> None:
    out, _, queries = built
    loaded = omendex.SegmentedIndex.load(out)
    searcher = distributed.Searcher(out)  # 4 segments on 2 CPUs: 2 actors of 2 segments
    try:
        assert searcher.shares == [[0, 1], [2, 3]]
        np.testing.assert_array_equal(searcher.search(queries, 10, ef=24).ids, loaded.search(queries, 10, ef=24).ids)
    finally:
        searcher.close()


def test_a_build_or_a_pool_waiting_for_cpus_held_elsewhere_says_so(
    built: tuple[Path, np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    import time
    import warnings

    out, base, _ = built
    pool = distributed.Searcher(out)  # every CPU of the 2-CPU cluster
    try:
        # Ray reports placed actors a moment late: wait until it shows no CPU free.
        end = time.monotonic() + 30
        while ray.available_resources().get("CPU", 0) > 0 and time.monotonic() < end:
            time.sleep(0.1)
        with pytest.raises(ValueError, match="0 of the cluster's 2 are free"):
            distributed.Searcher(out)
        with pytest.raises(ValueError, match="the cluster has 2"):
            distributed.build(base[:500], tmp_path / "big", segments=2, cpus_per_task=3)
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")

            # The pool is closed once the build has said what it waits for (or after 120 s,
            # and then the test fails), so the build can finish.
            def close_when_warned() -> None:
                end = time.monotonic() + 120
                while not any("waits for CPUs" in str(w.message) for w in list(seen)) and time.monotonic() < end:
                    time.sleep(0.05)
                pool.close()

            closer = threading.Thread(target=close_when_warned)
            closer.start()
            report = distributed.build(base[:2000], tmp_path / "waited", segments=2, m=8, ef_construction=32)
            closer.join()
        assert report.lens == [1000, 1000]
        said = [str(w.message) for w in seen if issubclass(w.category, RuntimeWarning)]
        assert any("waits for CPUs" in m and "Searcher holds its CPUs until close()" in m for m in said), said
    finally:
        pool.close()

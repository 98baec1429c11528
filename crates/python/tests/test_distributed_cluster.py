"""omendex.distributed on a Ray cluster of three nodes on this machine (a head and two workers, one
core each), inside the same loopback-only network namespace as test_distributed.py."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

import omendex

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'omendex[ray]')")
from omendex import distributed  # noqa: E402


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    from ray.cluster_utils import Cluster

    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    for _ in range(2):
        c.add_node(num_cpus=1)
    ray.init(address=c.address, log_to_driver=False, configure_logging=False)
    c.wait_for_nodes()
    yield
    ray.shutdown()
    c.shutdown()


def test_segments_built_on_several_nodes_search_as_one_index(cluster: None, tmp_path: Path) -> None:
    assert len([n for n in ray.nodes() if n["Alive"]]) == 3
    rng = np.random.default_rng(7)
    base = rng.standard_normal((20_000, 16)).astype(np.float32)
    queries = rng.standard_normal((100, 16)).astype(np.float32)
    out = tmp_path / "index"
    marks = tmp_path / "nodes"
    marks.mkdir()

    def where(number: int, out: str) -> None:  # records the node that built each partition
        node = ray.get_runtime_context().get_node_id()
        with open(os.path.join(os.path.dirname(out), "nodes", str(number)), "w") as f:
            f.write(node)

    distributed.build(base, out, segments=4, m=8, ef_construction=64, seed=1, _before_write=where)
    nodes = {p.read_text() for p in marks.iterdir()}
    assert len(list(marks.iterdir())) == 4 and len(nodes) >= 2, f"built on {len(nodes)} node(s)"

    loaded = omendex.SegmentedIndex.load(out)
    loaded.check_invariants()
    searcher = distributed.Searcher(out, segments_per_actor=2, replicas=2, cpus_per_actor=0.5)
    try:
        for ef in (16, 64):
            got, want = searcher.search(queries, 10, ef=ef), loaded.search(queries, 10, ef=ef)
            np.testing.assert_array_equal(got.ids, want.ids)
            np.testing.assert_array_equal(got.distances, want.distances)
    finally:
        searcher.close()

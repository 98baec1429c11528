"""The README's "more than one machine" example: segments built by Ray tasks, searched by Ray
actors, checked against the same folder opened on one machine.

    python examples/distributed.py [FOLDER]     # needs Ray: pip install './crates/python[ray]'

On a cluster, give ray.init the cluster's address and a FOLDER every node mounts."""

import sys
import tempfile

import numpy as np
import ray

import omendex
from omendex import distributed

ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)  # ray.init(address="auto") on a cluster
out = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp() + "/index"
vectors = np.random.default_rng(0).standard_normal((40_000, 32)).astype(np.float32)
report = distributed.build(vectors, out, segments=4, m=16, ef_construction=100)  # one Ray task per segment
searcher = distributed.Searcher(out, replicas=2, cpus_per_actor=0.25)  # actors open their segments in place
hits = searcher.search(vectors[:100], k=10, ef=64)  # each share's top 10, merged in Rust
local = omendex.SegmentedIndex.load(out).search(vectors[:100], k=10, ef=64)  # the same folder, one machine
assert (hits.ids == local.ids).all() and (hits.ids[:, 0] == np.arange(100)).all()
print(f"{sum(report.lens)} vectors in {len(report.lens)} segments, built in {report.seconds:.1f} s; {out}")
searcher.close()
ray.shutdown()

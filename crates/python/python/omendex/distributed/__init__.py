"""omendex beyond one machine, on Ray: segments built by Ray tasks, searched by Ray actors.

Needs Ray (``pip install 'omendex[ray]'``) and a Ray cluster (``ray.init()`` connects to or
starts one). A collection is split into segments, each an independent HNSW graph built by one
Ray task on a worker and written into a folder every worker and the driver share (a local
folder on one machine, a shared mount on a cluster, or an fsspec URL such as
``s3://bucket/index``); the driver writes the manifest last, after checking every segment
file, so the folder is exactly what ``SegmentedIndex.save`` writes:
``omendex.SegmentedIndex.load(out)`` opens it on one machine (a URL's folder once fetched) and
answers the same queries identically. ``Searcher`` spreads the segments over a pool of Ray actors, each opening
its share in place; a query batch goes to every share and their top-k merge (``merge_topk``)
into the whole index's answer.

>>> import numpy as np, ray, omendex.distributed                     # doctest: +SKIP
>>> ray.init()                                                      # doctest: +SKIP
>>> vectors = np.random.default_rng(0).random((100_000, 64), dtype=np.float32)  # doctest: +SKIP
>>> omendex.distributed.build(vectors, "/shared/index", segments=8)    # doctest: +SKIP
>>> searcher = omendex.distributed.Searcher("/shared/index", replicas=2)  # doctest: +SKIP
>>> hits = searcher.search(vectors[:10], k=10, ef=64)              # doctest: +SKIP
"""


from omendex.distributed._build import BuildReport, build
from omendex.distributed._search import Searcher

__all__ = ["build", "Searcher", "BuildReport"]

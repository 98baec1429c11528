"""The README's Python example: build, search, filter, save and load back."""

import os
import tempfile

import numpy as np

import omendex

rng = np.random.default_rng(0)
vectors = rng.standard_normal((10_000, 64)).astype(np.float32)
index = omendex.Index(dim=64, metric="cosine", m=16, ef_construction=200)
ids = index.add(vectors)  # parallel on every core, the GIL released
hits = index.search(vectors[:5], k=10)  # Neighbors(ids, distances), (5, 10) each
assert (hits.ids[:, 0] == ids[:5]).all()
odd = index.search(vectors[:5], k=10, filter=ids % 2 == 1)  # a boolean mask over ids
assert (odd.ids % 2 == 1).all()
with tempfile.TemporaryDirectory() as d:
    index.save(os.path.join(d, "index.omen"))
    again = omendex.Index.load(os.path.join(d, "index.omen"), mmap=True)
    assert (again.search(vectors[:5], k=10).ids == hits.ids).all()
print(index, hits.distances[0, :3])

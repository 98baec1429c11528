"""Converts an ann-benchmarks HDF5 file into a TEXMEX folder (run by `xtask::hdf5::convert`).

    python3 hdf5_to_texmex.py FILE.hdf5 OUT_DIR

Reads `train` (base vectors), `test` (queries), `neighbors` (exact neighbour ids of each query)
and the file attribute `distance`; writes OUT_DIR/base.fvecs, query.fvecs, groundtruth.ivecs
and distance.txt (the attribute). Needs numpy and h5py. Exits 2 with a message on a file that
is not in that layout.
"""

import os
import sys

import h5py
import numpy as np


def fail(msg):
    print(msg, file=sys.stderr)
    sys.exit(2)


def write_vecs(path, a, dtype):
    a = np.ascontiguousarray(a, dtype=dtype)
    n, d = a.shape
    rows = np.empty((n, d + 1), dtype="<i4")
    rows[:, 0] = d
    rows[:, 1:] = a.view("<i4")
    rows.tofile(path)


def main():
    if len(sys.argv) != 3:
        fail("usage: hdf5_to_texmex.py FILE.hdf5 OUT_DIR")
    src, out = sys.argv[1], sys.argv[2]
    try:
        f = h5py.File(src, "r")
    except OSError as e:
        fail(f"{src}: not an HDF5 file ({e})")
    with f:
        for name in ("train", "test", "neighbors"):
            if name not in f:
                fail(f"{src}: no dataset `{name}` (an ann-benchmarks file holds train, test, neighbors, distances)")
        train = np.asarray(f["train"], dtype="<f4")
        test = np.asarray(f["test"], dtype="<f4")
        nb = np.asarray(f["neighbors"])
        dist = f.attrs.get("distance", "euclidean")
    if isinstance(dist, bytes):
        dist = dist.decode()
    if train.ndim != 2 or test.ndim != 2 or nb.ndim != 2:
        fail(f"{src}: train, test and neighbors must be 2-d arrays")
    if train.shape[1] != test.shape[1] or train.shape[1] == 0:
        fail(f"{src}: train has dimension {train.shape[1]}, test {test.shape[1]}")
    if nb.shape[0] != test.shape[0] or nb.shape[1] == 0:
        fail(f"{src}: {nb.shape[0]} rows of neighbors for {test.shape[0]} queries")
    if nb.min() < 0 or nb.max() >= train.shape[0]:
        fail(f"{src}: a neighbor id lies outside the {train.shape[0]} train vectors")
    os.makedirs(out, exist_ok=True)
    write_vecs(os.path.join(out, "base.fvecs"), train, "<f4")
    write_vecs(os.path.join(out, "query.fvecs"), test, "<f4")
    write_vecs(os.path.join(out, "groundtruth.ivecs"), nb, "<i4")
    with open(os.path.join(out, "distance.txt"), "w") as fh:
        fh.write(str(dist) + "\n")
    print(dist)


main()

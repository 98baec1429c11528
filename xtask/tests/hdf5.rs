//! An ann-benchmarks HDF5 file, written here by h5py, converts into a TEXMEX folder that holds
//! the same vectors and neighbours. Skipped, saying so, where python3 has no numpy or h5py
//! (CI installs both).

use std::path::Path;
use std::process::Command;

use omendex::Metric;
use xtask::texmex::load_dir;

const WRITE: &str = r#"
import sys, numpy as np, h5py
path, distance, drop = sys.argv[1], sys.argv[2], sys.argv[3]
i = np.arange(300 * 8).reshape(300, 8)
train = ((i * 31 + 7) % 97 / 97.0).astype(np.float32)
j = np.arange(20 * 8).reshape(20, 8)
test = ((j * 17 + 3) % 89 / 89.0).astype(np.float32)
d = ((test[:, None, :] - train[None, :, :]) ** 2).sum(-1)
neighbors = np.argsort(d, axis=1, kind="stable")[:, :10].astype(np.int32)
with h5py.File(path, "w") as f:
    f.attrs["distance"] = distance
    f.create_dataset("train", data=train)
    f.create_dataset("test", data=test)
    if drop != "neighbors":
        f.create_dataset("neighbors", data=neighbors)
    f.create_dataset("distances", data=np.sqrt(np.take_along_axis(d, neighbors, 1)))
"#;

fn have_h5py() -> bool {
    Command::new("python3").args(["-c", "import numpy, h5py"]).output().is_ok_and(|o| o.status.success())
}

fn write(path: &Path, distance: &str, drop: &str) {
    let out = Command::new("python3").arg("-c").arg(WRITE).arg(path).arg(distance).arg(drop).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn an_ann_benchmarks_file_converts_to_the_same_vectors_and_neighbours() {
    if !have_h5py() {
        eprintln!("skipped: python3 has no numpy or h5py (pip install numpy h5py)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("small-euclidean.hdf5");
    write(&file, "euclidean", "");
    let out = dir.path().join("texmex");
    assert_eq!(xtask::hdf5::convert(&file, &out), Ok(Metric::L2));
    let t = load_dir(&out, 10).unwrap();
    assert_eq!((t.base.len(), t.base.dim, t.queries.len()), (300, 8, 20));
    for r in [0, 1, 150, 299] {
        let want: Vec<f32> = (0..8).map(|c| ((r * 8 + c) * 31 + 7) % 97).map(|v| (v as f64 / 97.0) as f32).collect();
        assert_eq!(t.base.row(r), &want[..], "train row {r}");
    }
    // The file's neighbours are the exact squared-L2 neighbours, as omendex's exact scan finds them.
    let truth = t.truth.as_ref().unwrap();
    let dist = omendex_distance::Distance::new(Metric::L2);
    for q in 0..20 {
        let exact =
            omendex_search::brute_force_knn(omendex_search::Rows::dense(&t.base.data, 8), &dist, t.queries.row(q), 10);
        let ids: Vec<u32> = exact.iter().map(|n| n.id.0).collect();
        assert_eq!(truth.ids[q][..10], ids[..], "query {q}");
    }
    // Converted once: a second call reuses the folder.
    assert_eq!(xtask::hdf5::convert(&file, &out), Ok(Metric::L2));

    let angular = dir.path().join("small-angular.hdf5");
    write(&angular, "angular", "");
    assert_eq!(xtask::hdf5::convert(&angular, &dir.path().join("a")), Ok(Metric::Cosine));

    let broken = dir.path().join("no-neighbors.hdf5");
    write(&broken, "euclidean", "neighbors");
    let err = xtask::hdf5::convert(&broken, &dir.path().join("b")).unwrap_err();
    assert!(err.contains("neighbors"), "{err}");
    let not_hdf5 = dir.path().join("junk.hdf5");
    std::fs::write(&not_hdf5, b"not an hdf5 file").unwrap();
    assert!(xtask::hdf5::convert(&not_hdf5, &dir.path().join("c")).is_err());
}

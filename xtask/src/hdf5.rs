//! ann-benchmarks HDF5 files (`train`, `test`, `neighbors`, `distances`, file attribute
//! `distance`), read by converting them once into a TEXMEX folder with Python's h5py.
//!
//! Why a conversion, not a Rust reader: the `hdf5` crate binds the HDF5 C library, which a
//! fresh clone would have to install from the system, at a version its bindings accept; a
//! pure-Rust reader of the format would be a component of its own to keep correct. h5py is one
//! `pip install` (ann-benchmarks reads its files with it), and only runs given an HDF5 file
//! need it; everything else keeps building with a Rust toolchain alone.

use std::path::Path;
use std::process::Command;

use omendex::Metric;

/// The converter, run as `python3 -c SCRIPT FILE OUT`.
pub const SCRIPT: &str = include_str!("hdf5_to_texmex.py");

/// Whether `path` names an HDF5 file (by its extension).
pub fn is_hdf5(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "hdf5" || e == "h5")
}

/// The metric an ann-benchmarks `distance` attribute names: `euclidean` (L2), `angular`
/// (cosine), `dot`/`ip` (inner product).
pub fn metric_of(distance: &str) -> Option<Metric> {
    match distance.trim() {
        "euclidean" | "l2" => Some(Metric::L2),
        "angular" | "cosine" => Some(Metric::Cosine),
        "dot" | "ip" | "inner_product" => Some(Metric::InnerProduct),
        _ => None,
    }
}

/// Converts `file` into the TEXMEX folder `out` (base.fvecs, query.fvecs, groundtruth.ivecs,
/// distance.txt) unless `out` already holds this file's conversion; returns the file's metric.
pub fn convert(file: &Path, out: &Path) -> Result<Metric, String> {
    let meta = std::fs::metadata(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let stamp = format!("{} {:?}\n", meta.len(), meta.modified().ok());
    let stamp_path = out.join("source.txt");
    let distance_path = out.join("distance.txt");
    let fresh = std::fs::read_to_string(&stamp_path).is_ok_and(|s| s == stamp);
    if !fresh {
        let _ = std::fs::remove_file(&stamp_path);
        let res = Command::new("python3")
            .arg("-c")
            .arg(SCRIPT)
            .arg(file)
            .arg(out)
            .output()
            .map_err(|e| format!("cannot run python3 to read {}: {e}", file.display()))?;
        if !res.status.success() {
            let err = String::from_utf8_lossy(&res.stderr);
            let hint = if err.contains("No module named") { " (pip install numpy h5py)" } else { "" };
            return Err(format!(
                "{}: {}{hint}",
                file.display(),
                err.trim().lines().last().unwrap_or("conversion failed")
            ));
        }
        std::fs::write(&stamp_path, &stamp).map_err(|e| format!("{}: {e}", stamp_path.display()))?;
    }
    let distance = std::fs::read_to_string(&distance_path).map_err(|e| format!("{}: {e}", distance_path.display()))?;
    metric_of(&distance)
        .ok_or_else(|| format!("{}: distance {:?} is not one omendex computes", file.display(), distance.trim()))
}

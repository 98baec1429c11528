//! `omendex._omendex`: the compiled core of the Python package (its Python face is
//! `python/omendex/__init__.py`, which checks and converts arguments and documents the API).
//!
//! An `Index` holds an `omendex::Index` behind a read-write lock: searches share it, an add or
//! a delete takes it alone, and every build and search runs with the GIL released, so Python
//! threads search in parallel and never see an index half-changed (a long add lets it go
//! between chunks, while signal handlers run). No lock is held while Python code runs on the
//! thread holding it, and every pool is this process's (see `pools`). Arrays come in as
//! float32 / int64 C-contiguous numpy arrays (the Python layer converts anything else once)
//! and are read in place.
#![deny(unsafe_code)]

use omendex::VectorIndex;
use pyo3::prelude::*;

mod alike;
mod args;
mod errors;
mod folder;
mod index;
mod pools;
mod search;
mod segmented;
mod watch;

use crate::args::segment_sizes;
use crate::errors::{CorruptIndexError, SaveConflictError};
use crate::folder::{
    FolderBuild, begin_segments, build_marker_name, generation_named, inspect_segments, is_garbage_after,
    segment_file_name, segment_of, temporary_target, verify_segment_file, write_manifest_for_remote,
};
use crate::index::Index;
use crate::search::merge_topk;
use crate::segmented::SegmentedIndex;

/// An index shape as the batch search sees it.
pub(crate) trait Shape: VectorIndex {
    /// Whether one query may run rayon code: a segmented index searches its segments in
    /// parallel, a single graph answers on the calling thread (no pool, no thread hop).
    const FANS_OUT: bool;
}

impl Shape for omendex::Index {
    const FANS_OUT: bool = false;
}

impl Shape for omendex::SegmentedIndex {
    const FANS_OUT: bool = true;
}

/// The kernels' SIMD path on this CPU (`avx512`, `avx2`, `portable`, `scalar`).
#[pyfunction]
fn simd_path() -> &'static str {
    omendex::simd_path().name()
}

#[pymodule]
fn _omendex(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Index>()?;
    m.add_class::<SegmentedIndex>()?;
    m.add_function(wrap_pyfunction!(simd_path, m)?)?;
    m.add_class::<FolderBuild>()?;
    m.add_function(wrap_pyfunction!(begin_segments, m)?)?;
    m.add_function(wrap_pyfunction!(verify_segment_file, m)?)?;
    m.add_function(wrap_pyfunction!(build_marker_name, m)?)?;
    m.add_function(wrap_pyfunction!(generation_named, m)?)?;
    m.add_function(wrap_pyfunction!(merge_topk, m)?)?;
    m.add_function(wrap_pyfunction!(inspect_segments, m)?)?;
    m.add_function(wrap_pyfunction!(segment_file_name, m)?)?;
    m.add_function(wrap_pyfunction!(segment_of, m)?)?;
    m.add_function(wrap_pyfunction!(segment_sizes, m)?)?;
    m.add_function(wrap_pyfunction!(temporary_target, m)?)?;
    m.add_function(wrap_pyfunction!(is_garbage_after, m)?)?;
    m.add_function(wrap_pyfunction!(write_manifest_for_remote, m)?)?;
    m.add("CorruptIndexError", m.py().get_type::<CorruptIndexError>())?;
    m.add("SaveConflictError", m.py().get_type::<SaveConflictError>())?;
    m.add("FORMAT_VERSION", omendex::FORMAT_VERSION)?;
    // The package's version is the crate's (maturin takes the wheel's from Cargo.toml too).
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}

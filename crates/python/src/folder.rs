//! The multi-writer folder protocol (`omendex.distributed`'s saves) and folder inspection.

use std::path::PathBuf;

use omendex::{Params, StoreError, VectorId};
use parking_lot::Mutex;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::args::{ParamArgs, params_of};
use crate::errors::to_py;
use crate::watch::folder_call;

/// A save of a segmented folder whose segments several writers write (see
/// `omendex_store::SegmentsBuild`): its generation is reserved while this object lives; `commit`
/// or `abort` ends it (dropping it aborts).
#[pyclass(frozen, module = "omendex._omendex")]
pub(crate) struct FolderBuild {
    build: Mutex<Option<omendex::folder::SegmentsBuild>>,
    generation: u64,
}

#[pymethods]
impl FolderBuild {
    /// The generation the writers write under.
    #[getter]
    fn generation(&self) -> u64 {
        self.generation
    }

    /// Checks every segment file `entries` names ((length, checksum) of segments 0..) and
    /// writes the manifest (see `omendex_store::SegmentsBuild::commit`).
    #[pyo3(signature = (params, dim, entries, next_id))]
    fn commit(
        &self,
        py: Python<'_>,
        params: ParamArgs,
        dim: usize,
        entries: Vec<(u64, u64)>,
        next_id: Option<u64>,
    ) -> PyResult<()> {
        let (p, entries) = manifest_of(params, entries)?;
        folder_call(py, None, || match self.build.lock().as_mut() {
            Some(b) => b.commit(&p, dim, &entries, next_id.map(VectorId)),
            None => Err(StoreError::Conflict(format!("the save of generation {} has ended", self.generation))),
        })
    }

    /// Ends the save without a manifest, removing every file written under its generation.
    fn abort(&self, py: Python<'_>) -> PyResult<()> {
        folder_call(py, None, || match self.build.lock().take() {
            Some(b) => b.abort(),
            None => Ok(()),
        })
    }
}

/// Begins a save of segments written by several writers into `folder` (see
/// `omendex_store::begin_segments`).
#[pyfunction]
pub(crate) fn begin_segments(py: Python<'_>, folder: PathBuf) -> PyResult<FolderBuild> {
    let build = folder_call(py, None, || omendex::folder::begin_segments(&folder))?;
    Ok(FolderBuild { generation: build.generation(), build: Mutex::new(Some(build)) })
}

/// What a manifest is written from: the parameters and each segment's (length, checksum).
pub(crate) fn manifest_of(
    args: ParamArgs,
    entries: Vec<(u64, u64)>,
) -> PyResult<(Params, Vec<omendex::folder::SegmentEntry>)> {
    let entries = entries.into_iter().map(|(len, checksum)| omendex::folder::SegmentEntry { len, checksum }).collect();
    Ok((params_of(args)?, entries))
}

/// Checks segment file `path` as a commit checks each (every section and rule); returns its
/// (length, checksum). What a writer whose folder is remote storage checks before its upload.
#[pyfunction]
pub(crate) fn verify_segment_file(py: Python<'_>, path: PathBuf) -> PyResult<(u64, u64)> {
    let entry = py.detach(|| omendex::folder::verify_segment_file(&path)).map_err(|e| to_py(e.into()))?;
    Ok((entry.len, entry.checksum))
}

/// Writes into `folder` the manifest of save `generation` whose segment files, verified by
/// their writers, live in remote storage (see `omendex_store::write_manifest_for_remote`).
#[pyfunction]
#[pyo3(signature = (folder, generation, params, dim, entries, next_id))]
pub(crate) fn write_manifest_for_remote(
    py: Python<'_>,
    folder: PathBuf,
    generation: u64,
    params: ParamArgs,
    dim: usize,
    entries: Vec<(u64, u64)>,
    next_id: Option<u64>,
) -> PyResult<()> {
    let (p, entries) = manifest_of(params, entries)?;
    folder_call(py, None, || {
        omendex::folder::write_manifest_for_remote(&folder, &p, dim, generation, &entries, next_id.map(VectorId))
    })
}

/// The file name of segment `number` of save `generation` in a segmented index's folder.
#[pyfunction]
pub(crate) fn segment_file_name(generation: u64, number: usize) -> String {
    omendex::folder::segment_file_name(generation, number)
}

/// The file name of the marker of save `generation` while it is being written.
#[pyfunction]
pub(crate) fn build_marker_name(generation: u64) -> String {
    omendex::folder::build_marker_name(generation)
}

/// The generation a file of a segmented folder belongs to (a segment file, a build marker, or
/// a temporary file of either), or None.
#[pyfunction]
pub(crate) fn generation_named(name: &str) -> Option<u64> {
    omendex::folder::generation_named(name)
}

/// The (generation, number) a segment file's name stands for, or None for any other name.
#[pyfunction]
pub(crate) fn segment_of(name: &str) -> Option<(u64, usize)> {
    omendex::folder::segment_of(name)
}

/// The name of the file a temporary file `name` (`.<target>.<process>.<counter>.tmp`) was to
/// become, or None for any other name.
#[pyfunction]
pub(crate) fn temporary_target(name: &str) -> Option<String> {
    omendex::folder::temporary_target(name).map(str::to_owned)
}

/// Whether the file `name` in a segmented index's folder is garbage once the manifest of save
/// `generation` with `count` segments is in place (what a commit removes), keeping the files of
/// the generations in `keep` (saves still being written).
#[pyfunction]
pub(crate) fn is_garbage_after(name: &str, generation: u64, count: usize, keep: Vec<u64>) -> bool {
    omendex::folder::is_garbage_after(name, generation, count, &keep)
}

/// What the manifest of the segmented index in `folder` says: {"dim", "metric", "m",
/// "ef_construction", "ef_search", "seed", "quantization", "lens", "next_id", "generation"}.
#[pyfunction]
pub(crate) fn inspect_segments<'py>(py: Python<'py>, folder: PathBuf) -> PyResult<Bound<'py, PyDict>> {
    let info = folder_call(py, None, || omendex::inspect_segments(&folder))?;
    let d = PyDict::new(py);
    d.set_item("dim", info.dim)?;
    d.set_item("metric", info.params.metric.name())?;
    d.set_item("m", info.params.m)?;
    d.set_item("ef_construction", info.params.ef_construction)?;
    d.set_item("ef_search", info.params.ef_search)?;
    d.set_item("seed", info.params.seed)?;
    d.set_item("quantization", info.params.quantization.name())?;
    d.set_item("lens", info.lens)?;
    d.set_item("next_id", info.next_id.map(|id| id.0))?;
    d.set_item("generation", info.generation)?;
    Ok(d)
}

//! `SegmentedIndex`: segments built in parallel, searched together.

use std::path::PathBuf;

use numpy::{IntoPyArray, PyArray1, PyArray2, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods};
use omendex::{QuantizationStatus, VectorId};
use parking_lot::RwLock;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::alike;
use crate::args::{ParamArgs, check_id_room, check_width, given_ids, params_of, plan_of, status_dict};
use crate::errors::{id_to_i64, to_py};
use crate::pools::pool;
use crate::search::{Answers, Ask, search_any};
use crate::watch::{folder_call, until_signal, until_stopped, write_stoppable};

/// Segments of HNSW graphs built in parallel and searched together (see
/// `omendex.SegmentedIndex`).
#[pyclass(frozen, module = "omendex._omendex")]
pub(crate) struct SegmentedIndex {
    inner: RwLock<omendex::SegmentedIndex>,
}

impl SegmentedIndex {
    fn read<T: Send>(&self, py: Python<'_>, f: impl FnOnce(&omendex::SegmentedIndex) -> T + Send) -> T {
        alike::read(py, &self.inner, f)
    }

    fn write<T: Send>(&self, py: Python<'_>, f: impl FnOnce(&mut omendex::SegmentedIndex) -> T + Send) -> T {
        py.detach(|| f(&mut self.inner.write()))
    }
}

#[pymethods]
impl SegmentedIndex {
    /// Builds segments of `vectors` (float32, `(n, dim)`) named `ids` (int64, or 0..n): a
    /// fixed number of segments, or segments sealed at a size. `progress(done, n)` is called
    /// every 50 ms with the insertions begun, and once at the end.
    #[staticmethod]
    #[pyo3(signature = (vectors, ids, params, plan, threads, progress=None))]
    fn build<'py>(
        py: Python<'py>,
        vectors: PyReadonlyArray2<'py, f32>,
        ids: Option<PyReadonlyArray1<'py, i64>>,
        params: ParamArgs,
        plan: (Option<usize>, Option<usize>),
        threads: usize,
        progress: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Self> {
        let p = params_of(params)?;
        let rows = vectors.as_slice().map_err(|e| PyValueError::new_err(e.to_string()))?;
        let (n, dim) = (vectors.shape()[0], vectors.shape()[1]);
        let ids = given_ids(&ids)?.unwrap_or_else(|| (0..n as u64).map(VectorId).collect());
        let plan = plan_of(plan)?;
        // Ctrl-C, or a progress callback that raises, stops the build within one insertion.
        let stop = omendex::Stop::new();
        let pool = pool(py, threads)?;
        let report = |done: usize| progress.as_ref().map_or(Ok(()), |p| p.call1((done, n)).map(drop));
        let built = until_signal(
            py,
            || stop.stop(),
            || report(stop.insertions().min(n)),
            || pool.install(|| omendex::SegmentedIndex::build_stoppable(dim, p, rows, &ids, plan, &stop)),
        )?;
        let built = built.map_err(to_py)?;
        report(n)?;
        Ok(SegmentedIndex { inner: RwLock::new(built) })
    }

    /// Adds `vectors` as a new segment under `ids` or new ids; returns the ids.
    #[pyo3(signature = (vectors, ids, threads))]
    fn add_segment<'py>(
        &self,
        py: Python<'py>,
        vectors: PyReadonlyArray2<'py, f32>,
        ids: Option<PyReadonlyArray1<'py, i64>>,
        threads: usize,
    ) -> PyResult<Bound<'py, PyArray1<i64>>> {
        let rows = vectors.as_slice().map_err(|e| PyValueError::new_err(e.to_string()))?;
        let (n, width) = (vectors.shape()[0], vectors.shape()[1]);
        let given = given_ids(&ids)?;
        let pool = pool(py, threads)?;
        // Ctrl-C stops the build of the new segment; the index is then as it was.
        let added: PyResult<Vec<i64>> = write_stoppable(py, &self.inner, &pool, |index| {
            check_width(index.dim(), width)?;
            if given.is_none() {
                check_id_room(index.next_id(), n)?;
            }
            let res = match &given {
                Some(ids) => index.add_segment_with_ids(ids, rows).map(|_| ids.iter().map(|id| id.0 as i64).collect()),
                None => index.add_segment(rows).map(|r| (r.start.0..r.end.0).map(|id| id as i64).collect()),
            };
            res.map_err(to_py)
        })?;
        Ok(added?.into_pyarray(py))
    }

    /// As `Index.search`, over every segment, merged.
    #[pyo3(signature = (queries, k, ef, filter, threads))]
    fn search<'py>(
        &self,
        py: Python<'py>,
        queries: PyReadonlyArray2<'py, f32>,
        k: usize,
        ef: Option<usize>,
        filter: Option<Bound<'py, PyAny>>,
        threads: usize,
    ) -> PyResult<Answers<'py>> {
        search_any(py, &self.inner, queries, Ask { k, ef, threads }, filter)
    }

    fn get<'py>(&self, py: Python<'py>, id: i64) -> Option<Bound<'py, PyArray1<f32>>> {
        alike::get(py, &self.inner, id)
    }

    fn contains(&self, py: Python<'_>, id: i64) -> bool {
        alike::contains(py, &self.inner, id)
    }

    fn get_many<'py>(&self, py: Python<'py>, ids: PyReadonlyArray1<'py, i64>) -> PyResult<Bound<'py, PyArray2<f32>>> {
        alike::get_many(py, &self.inner, &ids)
    }

    fn delete_many(&self, py: Python<'_>, ids: PyReadonlyArray1<'_, i64>) -> PyResult<usize> {
        alike::delete_many(py, &self.inner, &ids)
    }

    /// The ids of the vectors in the index (not deleted), segment by segment.
    fn live_ids<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray1<i64>>> {
        let ids: PyResult<Vec<i64>> =
            self.read(py, |i| i.segments().iter().flat_map(omendex::Index::live_ids).map(id_to_i64).collect());
        Ok(ids?.into_pyarray(py))
    }

    fn delete(&self, py: Python<'_>, id: i64) -> PyResult<()> {
        alike::delete(py, &self.inner, id)
    }

    #[pyo3(signature = (threads))]
    fn compact(&self, py: Python<'_>, threads: usize) -> PyResult<usize> {
        let pool = pool(py, threads)?;
        write_stoppable(py, &self.inner, &pool, omendex::SegmentedIndex::compact)?.map_err(to_py)
    }

    /// Every segment folded into one graph (a new index; this one is unchanged).
    #[pyo3(signature = (ef_construction, threads))]
    fn merged(&self, py: Python<'_>, ef_construction: usize, threads: usize) -> PyResult<Self> {
        let pool = pool(py, threads)?;
        // The read guard is kept (searches go on beside the merge); Ctrl-C stops the merge.
        let merged =
            until_stopped(py, |stop| pool.install(|| self.inner.read().merged_stoppable(ef_construction, stop)))?
                .map_err(to_py)?;
        Ok(SegmentedIndex { inner: RwLock::new(merged) })
    }

    fn save(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        folder_call(py, None, || self.inner.read().save(&path))
    }

    #[staticmethod]
    fn load(py: Python<'_>, path: PathBuf, mmap: bool) -> PyResult<Self> {
        // A load may train codes and measure their fit, in parallel.
        let pool = pool(py, 0)?;
        let index = folder_call(py, Some(pool), || {
            if mmap { omendex::SegmentedIndex::open_mmap(&path) } else { omendex::SegmentedIndex::load(&path) }
        })?;
        Ok(SegmentedIndex { inner: RwLock::new(index) })
    }

    /// Opens segments `which` of the folder in place (a share of a larger index).
    #[staticmethod]
    fn open_mmap_part(py: Python<'_>, path: PathBuf, which: Vec<usize>) -> PyResult<Self> {
        let pool = pool(py, 0)?;
        let index = folder_call(py, Some(pool), || omendex::SegmentedIndex::open_mmap_part(&path, &which))?;
        Ok(SegmentedIndex { inner: RwLock::new(index) })
    }

    fn __len__(&self, py: Python<'_>) -> usize {
        self.read(py, omendex::SegmentedIndex::len)
    }

    #[getter]
    fn dim(&self, py: Python<'_>) -> usize {
        self.read(py, omendex::SegmentedIndex::dim)
    }

    #[getter]
    fn metric(&self, py: Python<'_>) -> &'static str {
        self.read(py, |i| i.params().metric.name())
    }

    #[getter]
    fn ef_search(&self, py: Python<'_>) -> usize {
        self.read(py, |i| i.params().ef_search)
    }

    #[setter]
    fn set_ef_search(&self, py: Python<'_>, ef: usize) -> PyResult<()> {
        self.write(py, |i| i.set_ef_search(ef)).map_err(to_py)
    }

    #[getter]
    fn deleted(&self, py: Python<'_>) -> usize {
        self.read(py, omendex::SegmentedIndex::deleted)
    }

    #[getter]
    fn segment_count(&self, py: Python<'_>) -> usize {
        self.read(py, |i| i.segments().len())
    }

    #[getter]
    fn quantization(&self, py: Python<'_>) -> &'static str {
        self.read(py, |i| i.params().quantization.name())
    }

    /// Each segment's `Index.quantization_status`, in segment order.
    #[getter]
    fn quantization_status<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyDict>>> {
        let all: Vec<QuantizationStatus> =
            self.read(py, |i| i.segments().iter().map(omendex::Index::quantization).collect());
        all.into_iter().map(|s| status_dict(py, s)).collect()
    }

    #[getter]
    fn memory_usage(&self, py: Python<'_>) -> usize {
        self.read(py, omendex::SegmentedIndex::heap_bytes)
    }

    /// Raises `ValueError` naming the first segment and rule that break.
    fn check_invariants(&self, py: Python<'_>) -> PyResult<()> {
        self.read(py, omendex::SegmentedIndex::check_invariants)
            .map_err(|(s, v)| PyValueError::new_err(format!("{s}: {v}")))
    }
}

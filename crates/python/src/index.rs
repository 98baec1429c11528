//! `Index`: one labelled graph behind a read-write lock.

use std::path::PathBuf;

use numpy::{IntoPyArray, PyArray1, PyArray2, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods};
use omendex::VectorId;
use parking_lot::{RwLock, RwLockWriteGuard};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::alike;
use crate::args::{check_batch, given_ids, params, status_dict};
use crate::errors::{id_to_i64, to_py};
use crate::pools::pool;
use crate::search::{Answers, Ask, search_any};
use crate::watch::{folder_call, write_stoppable};

/// Deletes the vectors this call added before it stopped with `err`, and gives `err` back.
fn undo(index: &mut omendex::Index, added: &[VectorId], err: PyErr) -> PyErr {
    for &id in added {
        // Just added, so present: a delete cannot fail here.
        let _ = index.delete(id);
    }
    err
}

/// An HNSW index (see `omendex.Index` for the documented Python API).
#[pyclass(frozen, module = "omendex._omendex")]
pub(crate) struct Index {
    inner: RwLock<omendex::Index>,
}

impl Index {
    /// `f` of the index, the lock taken with the GIL released (a long add holding the lock
    /// must not freeze every Python thread waiting for it).
    fn read<T: Send>(&self, py: Python<'_>, f: impl FnOnce(&omendex::Index) -> T + Send) -> T {
        alike::read(py, &self.inner, f)
    }

    /// The write guard, kept on this thread (it is not Send): the lock is waited for without
    /// the GIL, then taken with the GIL held, again if another thread took it in between.
    fn write_here(&self, py: Python<'_>) -> RwLockWriteGuard<'_, omendex::Index> {
        loop {
            if let Some(g) = self.inner.try_write() {
                return g;
            }
            py.detach(|| drop(self.inner.write()));
        }
    }
}

#[pymethods]
impl Index {
    #[new]
    #[pyo3(signature = (dim, metric, m, ef_construction, ef_search, seed, quantization))]
    fn new(
        dim: usize,
        metric: &str,
        m: usize,
        ef_construction: usize,
        ef_search: usize,
        seed: Option<u64>,
        quantization: &str,
    ) -> PyResult<Self> {
        let p = params(metric, m, ef_construction, ef_search, seed, quantization)?;
        let index = omendex::Index::new(dim, p).map_err(to_py)?;
        Ok(Index { inner: RwLock::new(index) })
    }

    /// Adds the rows of `vectors` (float32, C-contiguous, `(n, dim)`) under `ids` (int64, one
    /// per row) or under new ids; returns the ids (int64). `progress(done, n)` is called after
    /// each chunk, as signal handlers run (the index let go); if it raises, the add stops as on
    /// Ctrl-C.
    #[pyo3(signature = (vectors, ids, threads, progress=None))]
    fn add<'py>(
        &self,
        py: Python<'py>,
        vectors: PyReadonlyArray2<'py, f32>,
        ids: Option<PyReadonlyArray1<'py, i64>>,
        threads: usize,
        progress: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyArray1<i64>>> {
        let rows = vectors.as_slice().map_err(|e| PyValueError::new_err(e.to_string()))?;
        let (n, width) = (vectors.shape()[0], vectors.shape()[1]);
        let given = given_ids(&ids)?;
        let mut workers = pool(py, threads)?;
        let mut guard = self.write_here(py);
        let index: &mut omendex::Index = &mut guard;
        py.detach(|| check_batch(index, rows, width, given.as_deref()))?;
        // Room for the whole batch at once, not chunk by chunk.
        py.detach(|| index.reserve(n));
        // Added in chunks, each sized to take about a quarter of a second, with signals checked
        // between them: Ctrl-C stops a long add within a second, and what it added is deleted
        // again (the index holds what it held; those ids are not handed out again). A signal
        // handler is Python code run on this thread that may use this index (`len`, a search, a
        // save of what was added so far): the lock is let go while it runs, so it, and any
        // other thread, sees the index between two chunks.
        let mut added: Vec<VectorId> = Vec::with_capacity(n);
        // The first chunk is small (two rows per thread) and each next one sized by the rate
        // measured so far: chunked by time, not rows, so an add of costly rows (high dimension,
        // a wide beam) stops as fast as a cheap one.
        let (mut at, mut chunk) = (0, 2 * workers.current_num_threads().max(1));
        while at < n {
            let end = (at + chunk).min(n);
            let part = &rows[at * width..end * width];
            let index: &mut omendex::Index = &mut guard;
            let started = std::time::Instant::now();
            let res: Result<Vec<VectorId>, omendex::Error> = py.detach(|| {
                workers.install(|| match &given {
                    Some(ids) => index.add_batch_with_ids(&ids[at..end], part).map(|()| ids[at..end].to_vec()),
                    None => index.add_batch(part).map(|r| (r.start.0..r.end.0).map(VectorId).collect()),
                })
            });
            let secs = started.elapsed().as_secs_f64().max(1e-6);
            match res {
                Ok(ids) => added.extend(ids),
                Err(e) => return Err(undo(index, &added, to_py(e))),
            }
            drop(guard);
            let signal = py.check_signals().and_then(|()| match &progress {
                Some(report) => report.call1((end, n)).map(drop),
                None => Ok(()),
            });
            // A handler may have forked this process: its pool is looked up again.
            let again = pool(py, threads);
            guard = self.write_here(py);
            match (signal, again) {
                (Err(e), _) | (_, Err(e)) => return Err(undo(&mut guard, &added, e)),
                (Ok(()), Ok(p)) => workers = p,
            }
            chunk = (((end - at) as f64 / secs) * 0.25).clamp(1.0, 1_048_576.0) as usize;
            at = end;
        }
        drop(guard);
        let ids: Vec<i64> = added.iter().map(|id| id.0 as i64).collect();
        Ok(ids.into_pyarray(py))
    }

    /// The `k` nearest of each row of `queries` (float32, `(n, dim)`): ids (int64) and distances
    /// (float32), `(n, k)` each, short rows padded with -1 and +inf. `filter`: a boolean mask
    /// over ids (1-D bool), or the allowed ids (1-D int64), or None.
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

    /// Writes this index as segment `number` of save `generation` of `folder` (see
    /// `begin_segments`); returns what the manifest records of the file: (length, checksum).
    fn write_segment(&self, py: Python<'_>, folder: PathBuf, generation: u64, number: usize) -> PyResult<(u64, u64)> {
        let entry = folder_call(py, None, || self.inner.read().write_segment(&folder, generation, number))?;
        Ok((entry.len, entry.checksum))
    }

    /// Writes this index to `path` as a segment file outside any folder's save (a writer
    /// whose folder is remote storage); returns (length, checksum).
    fn write_segment_file(&self, py: Python<'_>, path: PathBuf) -> PyResult<(u64, u64)> {
        let entry = py.detach(|| self.inner.read().write_segment_file(&path)).map_err(to_py)?;
        Ok((entry.len, entry.checksum))
    }

    /// The stored vector of `id` (normalised under cosine), or None.
    fn get<'py>(&self, py: Python<'py>, id: i64) -> Option<Bound<'py, PyArray1<f32>>> {
        alike::get(py, &self.inner, id)
    }

    /// The ids of the vectors in the index (not deleted), in node order.
    fn live_ids<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray1<i64>>> {
        let ids: PyResult<Vec<i64>> = py.detach(|| self.inner.read().live_ids().map(id_to_i64).collect());
        Ok(ids?.into_pyarray(py))
    }

    fn contains(&self, py: Python<'_>, id: i64) -> bool {
        alike::contains(py, &self.inner, id)
    }

    /// The stored vectors of `ids`, a row each; KeyError(id) for one not in the index.
    fn get_many<'py>(&self, py: Python<'py>, ids: PyReadonlyArray1<'py, i64>) -> PyResult<Bound<'py, PyArray2<f32>>> {
        alike::get_many(py, &self.inner, &ids)
    }

    /// Deletes `ids`, all or (on a KeyError) none; returns how many.
    fn delete_many(&self, py: Python<'_>, ids: PyReadonlyArray1<'_, i64>) -> PyResult<usize> {
        alike::delete_many(py, &self.inner, &ids)
    }

    fn delete(&self, py: Python<'_>, id: i64) -> PyResult<()> {
        alike::delete(py, &self.inner, id)
    }

    #[pyo3(signature = (threads))]
    fn compact(&self, py: Python<'_>, threads: usize) -> PyResult<usize> {
        let pool = pool(py, threads)?;
        write_stoppable(py, &self.inner, &pool, omendex::Index::compact)?.map_err(to_py)
    }

    #[pyo3(signature = (threads))]
    fn rebuild(&self, py: Python<'_>, threads: usize) -> PyResult<usize> {
        let pool = pool(py, threads)?;
        write_stoppable(py, &self.inner, &pool, omendex::Index::rebuild)?.map_err(to_py)
    }

    fn save(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        py.detach(|| self.inner.read().save(&path)).map_err(to_py)
    }

    #[staticmethod]
    fn load(py: Python<'_>, path: PathBuf, mmap: bool) -> PyResult<Self> {
        // A load may train codes and measure their fit, in parallel.
        let pool = pool(py, 0)?;
        let index = py
            .detach(|| {
                pool.install(|| if mmap { omendex::Index::open_mmap(&path) } else { omendex::Index::load(&path) })
            })
            .map_err(to_py)?;
        Ok(Index { inner: RwLock::new(index) })
    }

    fn __len__(&self, py: Python<'_>) -> usize {
        self.read(py, omendex::Index::len)
    }

    #[getter]
    fn dim(&self, py: Python<'_>) -> usize {
        self.read(py, omendex::Index::dim)
    }

    #[getter]
    fn metric(&self, py: Python<'_>) -> &'static str {
        self.read(py, |i| i.metric().name())
    }

    #[getter]
    fn m(&self, py: Python<'_>) -> usize {
        self.read(py, |i| i.params().m)
    }

    #[getter]
    fn ef_construction(&self, py: Python<'_>) -> usize {
        self.read(py, |i| i.params().ef_construction)
    }

    #[getter]
    fn ef_search(&self, py: Python<'_>) -> usize {
        self.read(py, |i| i.params().ef_search)
    }

    #[setter]
    fn set_ef_search(&self, py: Python<'_>, ef: usize) -> PyResult<()> {
        py.detach(|| self.inner.write().set_ef_search(ef)).map_err(to_py)
    }

    #[getter]
    fn seed(&self, py: Python<'_>) -> u64 {
        self.read(py, |i| i.params().seed)
    }

    #[getter]
    fn quantization(&self, py: Python<'_>) -> &'static str {
        self.read(py, |i| i.params().quantization.name())
    }

    /// Whether searches walk on codes: {"status", "fit_recall", "fit_queries"}.
    #[getter]
    fn quantization_status<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        status_dict(py, self.read(py, omendex::Index::quantization))
    }

    #[getter]
    fn deleted(&self, py: Python<'_>) -> usize {
        self.read(py, omendex::Index::deleted)
    }

    #[getter]
    fn memory_usage(&self, py: Python<'_>) -> usize {
        self.read(py, omendex::Index::heap_bytes)
    }

    #[getter]
    fn is_mapped(&self, py: Python<'_>) -> bool {
        self.read(py, omendex::Index::is_mapped)
    }

    /// Raises `ValueError` naming the first structural rule the graph breaks.
    fn check_invariants(&self, py: Python<'_>) -> PyResult<()> {
        self.read(py, omendex::Index::check_invariants).map_err(|v| PyValueError::new_err(v.to_string()))
    }

    /// Per-layer measurements, top layer first: a list of dicts.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyDict>>> {
        let stats = py.detach(|| self.inner.read().stats());
        stats
            .layers
            .iter()
            .map(|l| {
                let d = PyDict::new(py);
                d.set_item("layer", l.layer.0)?;
                d.set_item("nodes", l.n_nodes)?;
                d.set_item("links", l.n_links)?;
                d.set_item("unreachable", l.unreachable)?;
                d.set_item("without_links", l.without_links)?;
                d.set_item("reciprocal_share", l.reciprocal_share)?;
                d.set_item("out_degree", (l.out_degree.min, l.out_degree.mean, l.out_degree.max))?;
                d.set_item("in_degree", (l.in_degree.min, l.in_degree.mean, l.in_degree.max))?;
                Ok(d)
            })
            .collect()
    }
}

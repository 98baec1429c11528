//! The batch search of both index shapes, its filters, and the merge of answers.

use std::collections::HashSet;

use numpy::ndarray::Array2;
use numpy::{IntoPyArray, PyArray2, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods};
use omendex::{BuildError, Query, SearchError, VectorId};
use parking_lot::RwLock;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use rayon::prelude::*;

use crate::Shape;
use crate::args::ids_of;
use crate::errors::{id_to_i64, to_py};
use crate::pools::pool;
use crate::watch::until_stopped;

/// The most values a batch search returns (`queries * k`): 2^28 ids and as many distances,
/// 3 GiB; a larger `k` is refused rather than allocated.
pub(crate) const MAX_ANSWERS: usize = 1 << 28;

/// Which ids a search may return.
pub(crate) enum Allowed<'a> {
    All,
    /// `mask[id]`; ids past the mask's end are refused.
    Mask(&'a [bool]),
    Set(HashSet<u64>),
}

impl Allowed<'_> {
    fn allows(&self, id: VectorId) -> bool {
        match self {
            Allowed::All => true,
            Allowed::Mask(m) => usize::try_from(id.0).ok().and_then(|i| m.get(i)).copied().unwrap_or(false),
            Allowed::Set(s) => s.contains(&id.0),
        }
    }
}

/// What a batch search asks besides the queries and the filter.
#[derive(Clone, Copy)]
pub(crate) struct Ask {
    pub(crate) k: usize,
    pub(crate) ef: Option<usize>,
    pub(crate) threads: usize,
}

/// The batch search of either index shape: every row of `queries` answered (in parallel on
/// `threads` threads), padded to `(n, k)` arrays.
pub(crate) fn search_any<'py, I: Shape>(
    py: Python<'py>,
    lock: &RwLock<I>,
    queries: PyReadonlyArray2<'py, f32>,
    ask: Ask,
    filter: Option<Bound<'py, PyAny>>,
) -> PyResult<Answers<'py>> {
    let q = queries.as_slice().map_err(|e| PyValueError::new_err(e.to_string()))?;
    let (n, width) = (queries.shape()[0], queries.shape()[1]);
    let Ask { k, ef, threads } = ask;
    if k == 0 {
        return Err(to_py(SearchError::ZeroK.into()));
    }
    if n.checked_mul(k).is_none_or(|answers| answers > MAX_ANSWERS) {
        return Err(PyValueError::new_err(format!(
            "{n} queries x k = {k} answers is more than one call returns ({MAX_ANSWERS}); ask for a smaller k"
        )));
    }
    let mask: Option<PyReadonlyArray1<'py, bool>> = filter.as_ref().and_then(|f| f.extract().ok());
    let id_set: Option<PyReadonlyArray1<'py, i64>> =
        match (&filter, &mask) {
            (Some(f), None) => Some(f.extract().map_err(|_| {
                PyValueError::new_err("a filter is a 1-D bool mask over ids or a 1-D int64 array of ids")
            })?),
            _ => None,
        };
    let allowed = match (&mask, &id_set) {
        (Some(m), _) => Allowed::Mask(m.as_slice().map_err(|e| PyValueError::new_err(e.to_string()))?),
        (None, Some(s)) => Allowed::Set(
            ids_of(s.as_slice().map_err(|e| PyValueError::new_err(e.to_string()))?)?
                .into_iter()
                .map(|id| id.0)
                .collect(),
        ),
        (None, None) => Allowed::All,
    };
    let filtered = !matches!(allowed, Allowed::All);
    crate::pools::check(threads)?;
    let pool = if n > 1 || I::FANS_OUT { Some(pool(py, threads)?) } else { None };
    // `stop`, raised on Ctrl-C, ends the queries not yet begun.
    let work = |stop: &omendex::Stop| -> PyResult<Vec<Vec<omendex::Neighbor>>> {
        let guard = lock.read();
        let index: &I = &guard;
        if width != index.dim() {
            let source = omendex::VectorError::DimensionMismatch { expected: index.dim(), got: width };
            return Err(to_py(SearchError::Query(source).into()));
        }
        let filter = |id: VectorId| allowed.allows(id);
        let one = |row: &[f32]| {
            if stop.is_stopped() {
                return Err(BuildError::Stopped.into());
            }
            let mut query = Query::new(row, k);
            if let Some(ef) = ef {
                query = query.ef(ef);
            }
            if filtered {
                query = query.filter(&filter);
            }
            // An empty index answers nothing, once the query has passed every check.
            match index.query(&query) {
                Err(omendex::Error::EmptyIndex) => Ok(Vec::new()),
                res => res,
            }
        };
        let all = || -> Result<Vec<_>, omendex::Error> {
            if n <= 1 {
                q.chunks(width.max(1)).take(n).map(one).collect()
            } else {
                q.par_chunks(width.max(1)).take(n).map(one).collect()
            }
        };
        let res = match &pool {
            Some(p) => p.install(all),
            None => all(),
        };
        res.map_err(to_py)
    };
    // A batch that may run for a while runs beside a signal watcher, so Ctrl-C stops it within
    // one query per thread; a small one runs here, without a thread's start-up cost.
    let answers =
        if n >= WATCHED_QUERIES { until_stopped(py, work)? } else { py.detach(|| work(&omendex::Stop::new())) };
    let answers = answers?;
    let mut ids = Array2::<i64>::from_elem((n, k), -1);
    let mut dists = Array2::<f32>::from_elem((n, k), f32::INFINITY);
    for (r, hits) in answers.iter().enumerate() {
        for (c, h) in hits.iter().enumerate() {
            ids[[r, c]] = id_to_i64(h.id)?;
            dists[[r, c]] = h.dist;
        }
    }
    Ok((ids.into_pyarray(py), dists.into_pyarray(py)))
}

/// The smallest batch search run beside a signal watcher (see `search_any`).
pub(crate) const WATCHED_QUERIES: usize = 256;

/// What a batch search returns: ids (int64) and distances (float32), `(n, k)` each.
pub(crate) type Answers<'py> = (Bound<'py, PyArray2<i64>>, Bound<'py, PyArray2<f32>>);

/// The `k` nearest of each row over several answers to the same queries (ids int64 and
/// distances float32, `(n, k_i)` each, -1 marking padding): by distance then id, each id once,
/// padded to `(n, k)` with -1 and +inf.
#[pyfunction]
pub(crate) fn merge_topk<'py>(
    py: Python<'py>,
    ids: Vec<PyReadonlyArray2<'py, i64>>,
    distances: Vec<PyReadonlyArray2<'py, f32>>,
    k: usize,
) -> PyResult<Answers<'py>> {
    if k == 0 {
        return Err(to_py(SearchError::ZeroK.into()));
    }
    if ids.len() != distances.len() {
        return Err(PyValueError::new_err(format!("{} id arrays and {} distance arrays", ids.len(), distances.len())));
    }
    let n = ids.first().map_or(0, |a| a.shape()[0]);
    if n.checked_mul(k).is_none_or(|answers| answers > MAX_ANSWERS) {
        return Err(PyValueError::new_err(format!("{n} rows x k = {k} is more than one call returns")));
    }
    let mut parts = Vec::with_capacity(ids.len());
    for (i, (a, d)) in ids.iter().zip(&distances).enumerate() {
        if a.shape() != d.shape() || a.shape()[0] != n {
            return Err(PyValueError::new_err(format!(
                "answer {i}: ids of shape {:?} and distances of shape {:?}, answer 0 has {n} rows",
                a.shape(),
                d.shape()
            )));
        }
        let (a, d) = (a.as_array(), d.as_array());
        parts.push((a, d));
    }
    let mut out_ids = Array2::<i64>::from_elem((n, k), -1);
    let mut out_dists = Array2::<f32>::from_elem((n, k), f32::INFINITY);
    for r in 0..n {
        let mut all = Vec::new();
        for (a, d) in &parts {
            for (&id, &dist) in a.row(r).iter().zip(d.row(r)) {
                if id == -1 {
                    continue;
                }
                let id = u64::try_from(id).map_err(|_| PyValueError::new_err(format!("id {id} is negative")))?;
                if dist.is_nan() {
                    return Err(PyValueError::new_err(format!("row {r}: a NaN distance")));
                }
                all.push(omendex::Neighbor { id: VectorId(id), dist });
            }
        }
        for (c, h) in omendex::merge_top_k(all, k).into_iter().enumerate() {
            out_ids[[r, c]] = h.id.0 as i64;
            out_dists[[r, c]] = h.dist;
        }
    }
    Ok((out_ids.into_pyarray(py), out_dists.into_pyarray(py)))
}

//! The calls both index shapes answer alike, written once over [`VectorIndex`] (a pyo3 class
//! cannot share a `#[pymethods]` block, so each class forwards here): reads with the lock taken
//! and the GIL released, one id, and many ids at once (each taking the lock once and checking
//! every id before it reads or changes anything).

use std::collections::HashSet;

use numpy::ndarray::Array2;
use numpy::{IntoPyArray, PyArray1, PyArray2, PyReadonlyArray1};
use omendex::{VectorId, VectorIndex};
use parking_lot::RwLock;
use pyo3::exceptions::{PyKeyError, PyValueError};
use pyo3::prelude::*;

use crate::errors::to_py;

/// `f` of the index, the lock taken with the GIL released (a long add holding the lock must not
/// freeze every Python thread waiting for it).
pub(crate) fn read<I: VectorIndex, T: Send>(py: Python<'_>, lock: &RwLock<I>, f: impl FnOnce(&I) -> T + Send) -> T {
    py.detach(|| f(&lock.read()))
}

/// The stored vector of `id` (normalised under cosine), or None.
pub(crate) fn get<'py, I: VectorIndex>(
    py: Python<'py>,
    lock: &RwLock<I>,
    id: i64,
) -> Option<Bound<'py, PyArray1<f32>>> {
    let id = named(id)?;
    let v = read(py, lock, |i| i.get(id).map(<[f32]>::to_vec))?;
    Some(v.into_pyarray(py))
}

/// Whether `id` names a vector in the index.
pub(crate) fn contains<I: VectorIndex>(py: Python<'_>, lock: &RwLock<I>, id: i64) -> bool {
    named(id).is_some_and(|id| read(py, lock, |i| i.contains(id)))
}

/// Deletes `id`; `KeyError(id)` when it is not in the index.
pub(crate) fn delete<I: VectorIndex>(py: Python<'_>, lock: &RwLock<I>, id: i64) -> PyResult<()> {
    let key = named(id).ok_or_else(|| PyKeyError::new_err(id))?;
    py.detach(|| lock.write().delete(key)).map_err(to_py)
}

/// The id an int64 names, if it can name one (a negative value names none).
fn named(v: i64) -> Option<VectorId> {
    u64::try_from(v).ok().map(VectorId)
}

fn values<'a>(ids: &'a PyReadonlyArray1<'_, i64>) -> PyResult<&'a [i64]> {
    ids.as_slice().map_err(|e| PyValueError::new_err(e.to_string()))
}

/// The stored vectors of `ids` (normalised under cosine), a row each in the order given;
/// `KeyError(id)` for the first id that is not in the index.
pub(crate) fn get_many<'py, I: VectorIndex>(
    py: Python<'py>,
    lock: &RwLock<I>,
    ids: &PyReadonlyArray1<'py, i64>,
) -> PyResult<Bound<'py, PyArray2<f32>>> {
    let ids = values(ids)?;
    let rows: Result<Array2<f32>, i64> = py.detach(|| {
        let index = lock.read();
        let dim = index.dim();
        let mut rows = Vec::with_capacity(ids.len() * dim);
        for &v in ids {
            rows.extend_from_slice(named(v).and_then(|id| index.get(id)).ok_or(v)?);
        }
        Ok(Array2::from_shape_vec((ids.len(), dim), rows).expect("a row of dim values per id"))
    });
    rows.map(|rows| rows.into_pyarray(py)).map_err(PyKeyError::new_err)
}

/// Deletes every vector of `ids` (an id given twice is deleted once); returns how many. The
/// first id that is not in the index raises `KeyError(id)` before anything is deleted.
pub(crate) fn delete_many<I: VectorIndex>(
    py: Python<'_>,
    lock: &RwLock<I>,
    ids: &PyReadonlyArray1<'_, i64>,
) -> PyResult<usize> {
    let ids = values(ids)?;
    let done: Result<Result<usize, omendex::Error>, i64> = py.detach(|| {
        let mut index = lock.write();
        let mut seen = HashSet::with_capacity(ids.len());
        let mut todo = Vec::with_capacity(ids.len());
        for &v in ids {
            let id = named(v).filter(|&id| index.contains(id)).ok_or(v)?;
            if seen.insert(id) {
                todo.push(id);
            }
        }
        // Every id is in the index, once: each delete succeeds.
        Ok(todo.iter().try_for_each(|&id| index.delete(id)).map(|()| todo.len()))
    });
    done.map_err(PyKeyError::new_err)?.map_err(to_py)
}

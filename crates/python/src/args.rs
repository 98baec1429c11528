//! Arguments as the core takes them: parameters, rows, ids, checked before any work.

use numpy::PyReadonlyArray1;
use omendex::{BuildError, Metric, Params, Quantization, QuantizationStatus, VectorId, VectorIndex};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::to_py;

/// The parameters of a new index; `seed = None` keeps the default.
pub(crate) fn params(
    metric: &str,
    m: usize,
    ef_construction: usize,
    ef_search: usize,
    seed: Option<u64>,
    quantization: &str,
) -> PyResult<Params> {
    let metric: Metric = metric.parse().map_err(|e: omendex::UnknownMetric| PyValueError::new_err(e.to_string()))?;
    let quantization: Quantization =
        quantization.parse().map_err(|e: omendex::UnknownQuantization| PyValueError::new_err(e.to_string()))?;
    let mut p =
        Params::new(metric).m(m).ef_construction(ef_construction).ef_search(ef_search).quantization(quantization);
    if let Some(seed) = seed {
        p = p.seed(seed);
    }
    p.validate().map_err(|e| to_py(e.into()))?;
    Ok(p)
}

/// Checks a whole batch before any of it is added (chunks are added one by one, so a bad row in
/// a late chunk must be found first): the array's width, then the index's batch rule
/// ([`VectorIndex::check_batch`]), and without ids, room for the new ones within int64.
pub(crate) fn check_batch(
    index: &omendex::Index,
    rows: &[f32],
    width: usize,
    ids: Option<&[VectorId]>,
) -> PyResult<()> {
    check_width(index.dim(), width)?;
    let n = index.check_batch(rows, ids).map_err(to_py)?;
    if ids.is_none() {
        check_id_room(index.next_id(), n)?;
    }
    Ok(())
}

/// Refuses rows of `width` values for an index of dimension `dim`.
pub(crate) fn check_width(dim: usize, width: usize) -> PyResult<()> {
    if width == dim {
        return Ok(());
    }
    let source = omendex::VectorError::DimensionMismatch { expected: dim, got: width };
    Err(to_py(BuildError::Vector { row: 0, source }.into()))
}

/// Refuses `n` new ids from `next` on when the last would not fit Python's int64 (an id the
/// caller chose always does).
pub(crate) fn check_id_room(next: VectorId, n: usize) -> PyResult<()> {
    let next = next.0;
    if next.checked_add(n as u64).is_none_or(|end| end > i64::MAX as u64 + 1) {
        return Err(PyValueError::new_err(format!("{n} more ids from {next} would not fit in int64")));
    }
    Ok(())
}

/// The caller's ids of a batch, if it gave some.
pub(crate) fn given_ids(ids: &Option<PyReadonlyArray1<'_, i64>>) -> PyResult<Option<Vec<VectorId>>> {
    match ids {
        Some(ids) => Ok(Some(ids_of(ids.as_slice().map_err(|e| PyValueError::new_err(e.to_string()))?)?)),
        None => Ok(None),
    }
}

/// Ids from int64 values, refusing negative ones.
pub(crate) fn ids_of(values: &[i64]) -> PyResult<Vec<VectorId>> {
    values
        .iter()
        .map(|&v| u64::try_from(v).map(VectorId).map_err(|_| PyValueError::new_err(format!("id {v} is negative"))))
        .collect()
}

/// Parameters as the Python layer passes them: metric, m, ef_construction, ef_search, seed,
/// quantization.
pub(crate) type ParamArgs = (String, usize, usize, usize, Option<u64>, String);

/// A quantization status as Python sees it: {"status": "off" | "untrained" | "codes" |
/// "too_coarse", "fit_recall": float or None, "fit_queries": int or None}.
pub(crate) fn status_dict(py: Python<'_>, status: QuantizationStatus) -> PyResult<Bound<'_, PyDict>> {
    let d = PyDict::new(py);
    let (name, fit) = match status {
        QuantizationStatus::Off => ("off", None),
        QuantizationStatus::Untrained => ("untrained", None),
        QuantizationStatus::Codes(fit) => ("codes", Some(fit)),
        QuantizationStatus::TooCoarse(fit) => ("too_coarse", Some(fit)),
    };
    d.set_item("status", name)?;
    d.set_item("fit_recall", fit.map(|f| f.recall))?;
    d.set_item("fit_queries", fit.map(|f| f.queries))?;
    Ok(d)
}

/// The parameters from Python's tuple (metric, m, ef_construction, ef_search, seed,
/// quantization), checked.
pub(crate) fn params_of((metric, m, efc, efs, seed, quantization): ParamArgs) -> PyResult<Params> {
    params(&metric, m, efc, efs, seed, &quantization)
}

/// A segment plan from Python's `(segments, max_segment_size)`, exactly one of them given.
pub(crate) fn plan_of(plan: (Option<usize>, Option<usize>)) -> PyResult<omendex::SegmentPlan> {
    match plan {
        (Some(count), None) => Ok(omendex::SegmentPlan::Count(count)),
        (None, Some(size)) => Ok(omendex::SegmentPlan::MaxSize(size)),
        _ => Err(PyValueError::new_err("give segments or max_segment_size, one of them")),
    }
}

/// The sizes of the segments `SegmentedIndex.build` makes of `n` rows under a plan (segments,
/// max_segment_size): the one rule, so that a distributed build splits rows as a local one.
#[pyfunction]
pub(crate) fn segment_sizes(
    n: usize,
    segments: Option<usize>,
    max_segment_size: Option<usize>,
) -> PyResult<Vec<usize>> {
    plan_of((segments, max_segment_size))?.sizes(n).map_err(to_py)
}

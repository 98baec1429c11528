//! The one rule a batch of vectors meets before anything of it is added: by both index shapes
//! and by the bindings that add a batch in chunks (which must refuse a bad late row first).

use std::collections::HashSet;

use omendex_build::BuildError;
use omendex_distance::{Metric, check_vector};
use omendex_graph::VectorId;

use crate::Error;

/// Checks `vectors` (flat, row-major) as a batch for an index of `dim`-dimensional vectors
/// under `metric`: a whole number of rows ([`Error::BatchLength`]), each meeting the vector
/// rule ([`check_vector`], the first bad row named); `ids`, when given, one per row
/// ([`Error::IdCount`]), none twice and none that `holds` ([`Error::DuplicateId`]); without
/// ids, room for the new ones from `next` on ([`id_room`]). Returns the number of rows.
pub(crate) fn check(
    (dim, metric): (usize, Metric),
    vectors: &[f32],
    ids: Option<&[VectorId]>,
    holds: &dyn Fn(VectorId) -> bool,
    next: VectorId,
) -> Result<usize, Error> {
    if dim == 0 || !vectors.len().is_multiple_of(dim) {
        return Err(Error::BatchLength { len: vectors.len(), dim });
    }
    let n = vectors.len() / dim;
    for (row, v) in vectors.chunks_exact(dim).enumerate() {
        check_vector(metric, v, dim).map_err(|source| BuildError::Vector { row, source })?;
    }
    match ids {
        Some(ids) => {
            if ids.len() != n {
                return Err(Error::IdCount { ids: ids.len(), vectors: n });
            }
            let mut seen = HashSet::with_capacity(n);
            if let Some(&dup) = ids.iter().find(|&&id| !seen.insert(id) || holds(id)) {
                return Err(Error::DuplicateId(dup));
            }
        }
        None => id_room(next, n)?,
    }
    Ok(n)
}

/// The batch rule for the vectors of a new index (holding no id yet), `ids` one per row: what
/// a segmented build checks before it splits the batch into segments. Returns the number of
/// rows.
pub fn check_new_batch(dim: usize, metric: Metric, vectors: &[f32], ids: &[VectorId]) -> Result<usize, Error> {
    check((dim, metric), vectors, Some(ids), &|_| false, VectorId(0))
}

/// Refuses `n` new ids from `next` on unless they and the next id after them stay below
/// `u64::MAX` ([`Error::Full`]).
pub(crate) fn id_room(next: VectorId, n: usize) -> Result<(), Error> {
    match next.0.checked_add(n as u64) {
        Some(end) if end < u64::MAX => Ok(()),
        _ => Err(Error::Full),
    }
}

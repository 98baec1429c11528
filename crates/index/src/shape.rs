//! What both index shapes answer alike.

use std::path::Path;

use rayon::prelude::*;

use omendex_graph::VectorId;
use omendex_params::Params;

use crate::{Error, Index, Neighbor, Query};

/// An index of either shape, one graph ([`Index`]) or segments (`omendex_segment::SegmentedIndex`):
/// what a caller that serves, measures or saves indexes needs without knowing which.
///
/// ```
/// use omendex_index::{Index, Query, VectorIndex};
/// use omendex_params::Params;
///
/// fn nearest(index: &dyn VectorIndex, q: &[f32]) -> u64 {
///     index.query(&Query::new(q, 1)).unwrap()[0].id.0
/// }
/// let mut one = Index::new(1, Params::default())?;
/// one.add_batch(&[0.0, 1.0, 2.0, 3.0])?;
/// assert_eq!(nearest(&one, &[2.9]), 3);
/// # Ok::<(), omendex_index::Error>(())
/// ```
pub trait VectorIndex: Send + Sync {
    /// Answers `query` (see [`Index::query`], `SegmentedIndex::query`).
    fn query(&self, query: &Query<'_>) -> Result<Vec<Neighbor>, Error>;
    /// Number of vectors, not counting deleted ones.
    fn len(&self) -> usize;
    /// Whether the index holds no vector (or only deleted ones).
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The vectors' dimension.
    fn dim(&self) -> usize;
    /// The parameters.
    fn params(&self) -> &Params;
    /// Whether `id` names a vector in the index (not deleted).
    fn contains(&self, id: VectorId) -> bool;
    /// The stored vector of `id` (normalised under cosine), if it is in the index.
    fn get(&self, id: VectorId) -> Option<&[f32]>;
    /// Bytes of heap held by the vectors and links.
    fn heap_bytes(&self) -> usize;
    /// Searches answered by exact scan after a graph walk came up short.
    fn exact_fallbacks(&self) -> u64;
    /// Deletes `id` (see [`Index::delete`], `SegmentedIndex::delete`).
    fn delete(&mut self, id: VectorId) -> Result<(), Error>;
    /// Drops the deleted vectors (see [`Index::compact`], `SegmentedIndex::compact`);
    /// returns how many.
    fn compact(&mut self) -> Result<usize, Error>;
    /// Makes the calls that build graphs aside end once `stop` is raised, the index as it was
    /// (see [`Index::set_stop`], `SegmentedIndex::set_stop`).
    fn set_stop(&mut self, stop: Option<omendex_build::Stop>);
    /// Saves the index to `path` (a file for an [`Index`], a folder for a
    /// segmented index (`omendex_segment::SegmentedIndex`)).
    fn save(&self, path: &Path) -> Result<(), Error>;
    /// The id the next vector added without one gets: above every id the index ever held.
    fn next_id(&self) -> VectorId;

    /// Checks a batch before anything of it is added, as every add of a batch does (a caller
    /// adding a batch in chunks checks it whole first): `vectors` (flat, row-major) a whole
    /// number of rows ([`Error::BatchLength`]), each meeting the vector rule
    /// ([`omendex_distance::check_vector`], the first bad row named); `ids`, when given, one per
    /// row ([`Error::IdCount`]), none twice and none in the index ([`Error::DuplicateId`]);
    /// without ids, room for new ones below `u64::MAX` ([`Error::Full`]). Returns the number of
    /// rows.
    ///
    /// ```
    /// use omendex_graph::VectorId;
    /// use omendex_params::Params;
    /// use omendex_index::{Error, Index, VectorIndex};
    ///
    /// let mut index = Index::new(2, Params::default())?;
    /// index.add_with_id(VectorId(7), &[0.0, 1.0])?;
    /// assert_eq!(index.check_batch(&[1.0, 2.0, 3.0, 4.0], None), Ok(2));
    /// assert_eq!(index.check_batch(&[1.0, 2.0, 3.0], None), Err(Error::BatchLength { len: 3, dim: 2 }));
    /// assert_eq!(index.check_batch(&[1.0, 2.0], Some(&[VectorId(7)])), Err(Error::DuplicateId(VectorId(7))));
    /// # Ok::<(), Error>(())
    /// ```
    fn check_batch(&self, vectors: &[f32], ids: Option<&[VectorId]>) -> Result<usize, Error> {
        let shape = (self.dim(), self.params().metric);
        crate::batch::check(shape, vectors, ids, &|id| self.contains(id), self.next_id())
    }

    /// The `k` nearest of each query in `queries` (rows of [`VectorIndex::dim`] values, one
    /// after another), searched in parallel on the current rayon pool: one list per query, in
    /// order, each what [`VectorIndex::query`] answers for `Query::new(row, k)`.
    ///
    /// ```
    /// use omendex_params::Params;
    /// use omendex_index::{Index, VectorIndex};
    ///
    /// let mut index = Index::new(2, Params::default())?;
    /// index.add_batch(&[0.0, 0.0, 1.0, 0.0, 0.0, 1.0])?;
    /// let answers = index.search_batch(&[0.9, 0.1, 0.1, 0.9], 1)?;
    /// assert_eq!(answers.iter().map(|a| a[0].id.0).collect::<Vec<_>>(), [1, 2]);
    /// # Ok::<(), omendex_index::Error>(())
    /// ```
    fn search_batch(&self, queries: &[f32], k: usize) -> Result<Vec<Vec<Neighbor>>, Error> {
        self.query_batch(queries, &Query::new(&[], k))
    }

    /// Answers `template` for each query in `queries` (rows of [`VectorIndex::dim`] values):
    /// its `k`, beam, filter and plan with each row as the vector (the template's own vector is
    /// not searched), in parallel over the rows on the current rayon pool. One list per row, in
    /// order. Fails before answering anything on a length that is not a whole number of rows
    /// ([`Error::BatchLength`]); otherwise with the first failing row's error, naming the row
    /// ([`Error::Query`]). No rows: no lists.
    fn query_batch(&self, queries: &[f32], template: &Query<'_>) -> Result<Vec<Vec<Neighbor>>, Error> {
        let dim = self.dim();
        if dim == 0 || !queries.len().is_multiple_of(dim) {
            return Err(Error::BatchLength { len: queries.len(), dim });
        }
        let answers: Vec<Result<Vec<Neighbor>, Error>> =
            queries.par_chunks(dim).map(|row| self.query(&Query { vector: row, ..*template })).collect();
        answers
            .into_iter()
            .enumerate()
            .map(|(row, answer)| answer.map_err(|e| Error::Query { row, source: Box::new(e) }))
            .collect()
    }
}

/// Implements [`VectorIndex`] for a type whose inherent methods of the same names and
/// signatures answer it (both index shapes). Not for other callers.
#[doc(hidden)]
#[macro_export]
macro_rules! impl_vector_index {
    ($t:ty) => {
        impl $crate::VectorIndex for $t {
            fn query(&self, query: &$crate::Query<'_>) -> Result<Vec<$crate::Neighbor>, $crate::Error> {
                <$t>::query(self, query)
            }
            fn len(&self) -> usize {
                <$t>::len(self)
            }
            fn dim(&self) -> usize {
                <$t>::dim(self)
            }
            fn params(&self) -> &$crate::__private::Params {
                <$t>::params(self)
            }
            fn contains(&self, id: $crate::__private::VectorId) -> bool {
                <$t>::contains(self, id)
            }
            fn get(&self, id: $crate::__private::VectorId) -> Option<&[f32]> {
                <$t>::get(self, id)
            }
            fn heap_bytes(&self) -> usize {
                <$t>::heap_bytes(self)
            }
            fn exact_fallbacks(&self) -> u64 {
                <$t>::exact_fallbacks(self)
            }
            fn delete(&mut self, id: $crate::__private::VectorId) -> Result<(), $crate::Error> {
                <$t>::delete(self, id)
            }
            fn compact(&mut self) -> Result<usize, $crate::Error> {
                <$t>::compact(self)
            }
            fn set_stop(&mut self, stop: Option<$crate::__private::Stop>) {
                <$t>::set_stop(self, stop)
            }
            fn save(&self, path: &std::path::Path) -> Result<(), $crate::Error> {
                <$t>::save(self, path)
            }
            fn next_id(&self) -> $crate::__private::VectorId {
                <$t>::next_id(self)
            }
        }
    };
}

impl_vector_index!(Index);

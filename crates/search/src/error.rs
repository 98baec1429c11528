//! Bad search input.

/// A search request that cannot be answered as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SearchError {
    /// The query's length differs from the graph's dimension.
    #[error("query has {got} components, the index holds {expected}-dimensional vectors")]
    DimensionMismatch {
        /// The graph's dimension.
        expected: usize,
        /// The query's length.
        got: usize,
    },
    /// A query component is NaN or infinite.
    #[error("query component {index} is {value} (NaN or infinite values cannot be compared)")]
    NonFinite {
        /// Position of the first bad component.
        index: usize,
        /// Its value, as text.
        value: String,
    },
    /// `k` is zero.
    #[error("k must be at least 1")]
    ZeroK,
    /// `k` is larger than the number of vectors.
    #[error("k = {k} is larger than the number of indexed vectors ({len})")]
    KExceedsLen {
        /// The k asked for.
        k: usize,
        /// The number of vectors.
        len: usize,
    },
    /// `ef` is smaller than `k`: the beam could not hold k results.
    #[error("ef = {ef} is smaller than k = {k}")]
    EfBelowK {
        /// The ef asked for.
        ef: usize,
        /// The k asked for.
        k: usize,
    },
    /// The graph has no vectors.
    #[error("the index is empty")]
    EmptyIndex,
}

/// Checks that `query` has `dim` finite components.
pub fn check_query(query: &[f32], dim: usize) -> Result<(), SearchError> {
    if query.len() != dim {
        return Err(SearchError::DimensionMismatch { expected: dim, got: query.len() });
    }
    match query.iter().position(|x| !x.is_finite()) {
        Some(index) => Err(SearchError::NonFinite { index, value: query[index].to_string() }),
        None => Ok(()),
    }
}

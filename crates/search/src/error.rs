//! Bad search input.

use omendex_distance::VectorError;

/// A search request that cannot be answered as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SearchError {
    /// The query breaks the vector rule ([`omendex_distance::check_vector`]).
    #[error("query {0}")]
    Query(#[from] VectorError),
    /// `k` is zero.
    #[error("k must be at least 1")]
    ZeroK,
    /// `ef` is smaller than `k`: the beam could not hold k results.
    #[error("ef = {ef} is smaller than k = {k}")]
    EfBelowK {
        /// The ef asked for.
        ef: usize,
        /// The k asked for.
        k: usize,
    },
}

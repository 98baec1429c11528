//! The facade's one error type.

use omen_build::BuildError;
use omen_graph::GraphError;
use omen_search::SearchError;

/// Everything that can go wrong when using an [`crate::Index`]. A call that returns an error
/// changes nothing: vectors already stored stay stored and searchable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The index was asked for zero-dimensional vectors.
    #[error("dimension must be at least 1")]
    ZeroDimension,
    /// A vector or query has the wrong number of components.
    #[error("{what} has {got} components, the index holds {expected}-dimensional vectors")]
    DimensionMismatch {
        /// "vector N" or "query".
        what: String,
        /// The index's dimension.
        expected: usize,
        /// The length given.
        got: usize,
    },
    /// A flat batch whose length is not a multiple of the dimension.
    #[error("batch of {len} values is not a whole number of {dim}-dimensional vectors")]
    BatchLength {
        /// The batch's length in values.
        len: usize,
        /// The index's dimension.
        dim: usize,
    },
    /// Ids and vectors differ in count.
    #[error("{ids} ids for {vectors} vectors")]
    IdCount {
        /// Ids given.
        ids: usize,
        /// Vectors given.
        vectors: usize,
    },
    /// An id that is not in the index (never added, or deleted).
    #[error("id {0} is not in the index")]
    UnknownId(omen_graph::VectorId),
    /// The same id given twice.
    #[error("id {0} appears twice")]
    DuplicateId(omen_graph::VectorId),
    /// A NaN or infinite component.
    #[error("{what}, component {col} is {value}: NaN and infinite values cannot be indexed or searched")]
    NonFinite {
        /// "vector N" or "query".
        what: String,
        /// Position of the bad component.
        col: usize,
        /// The value, as text.
        value: String,
    },
    /// A vector or query so long that its L2 or inner-product distances overflow `f32`.
    #[error(
        "{what} has L2 norm {norm}, above 9.2e18 (omen_distance::MAX_NORM): its {metric} distances would overflow f32 (scale the data down, or use cosine)"
    )]
    NormTooLarge {
        /// "vector N" or "query".
        what: String,
        /// Its norm, as text.
        norm: String,
        /// The index's metric.
        metric: omen_distance::Metric,
    },
    /// `k` of zero.
    #[error("k must be at least 1")]
    ZeroK,
    /// `k` larger than the number of vectors.
    #[error("k = {k} is larger than the number of indexed vectors ({len})")]
    KExceedsLen {
        /// The k asked for.
        k: usize,
        /// The number of vectors.
        len: usize,
    },
    /// `ef` smaller than `k`.
    #[error("ef = {ef} is smaller than k = {k}")]
    EfBelowK {
        /// The ef asked for.
        ef: usize,
        /// The k asked for.
        k: usize,
    },
    /// A search of an index that holds no vector.
    #[error("the index is empty")]
    EmptyIndex,
    /// A parameter out of range.
    #[error("invalid parameter: {0}")]
    BadParameter(String),
    /// The index holds the maximum number of vectors.
    #[error("the index is full")]
    Full,
    /// An index file could not be written or read (I/O, corrupt or truncated file, another
    /// format version). A failed save leaves the previous file in place.
    #[error(transparent)]
    Store(#[from] omen_store::StoreError),
    /// A structural rule broke inside omen: a bug, never the caller's fault. The operation was
    /// refused before it changed the graph.
    #[error("internal error (please report): {0}")]
    Internal(String),
}

impl From<BuildError> for Error {
    fn from(e: BuildError) -> Self {
        match e {
            BuildError::DimensionMismatch { row, expected, got } => {
                Error::DimensionMismatch { what: format!("vector {row}"), expected, got }
            }
            BuildError::NonFinite { row, col, value } => Error::NonFinite { what: format!("vector {row}"), col, value },
            BuildError::Graph(g) => g.into(),
            other => Error::BadParameter(other.to_string()),
        }
    }
}

impl From<GraphError> for Error {
    fn from(e: GraphError) -> Self {
        match e {
            GraphError::ZeroDimension => Error::ZeroDimension,
            GraphError::Full => Error::Full,
            GraphError::DimensionMismatch { expected, got } => {
                Error::DimensionMismatch { what: "vector".into(), expected, got }
            }
            GraphError::Invariant(v) => Error::Internal(v.to_string()),
            other => Error::BadParameter(other.to_string()),
        }
    }
}

impl From<SearchError> for Error {
    fn from(e: SearchError) -> Self {
        match e {
            SearchError::DimensionMismatch { expected, got } => {
                Error::DimensionMismatch { what: "query".into(), expected, got }
            }
            SearchError::NonFinite { index, value } => Error::NonFinite { what: "query".into(), col: index, value },
            SearchError::ZeroK => Error::ZeroK,
            SearchError::KExceedsLen { k, len } => Error::KExceedsLen { k, len },
            SearchError::EfBelowK { ef, k } => Error::EfBelowK { ef, k },
            SearchError::EmptyIndex => Error::EmptyIndex,
            other => Error::BadParameter(other.to_string()),
        }
    }
}

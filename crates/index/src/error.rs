//! The one error type of both index shapes.

use omendex_build::BuildError;
use omendex_graph::VectorId;
use omendex_search::SearchError;
use omendex_store::StoreError;

use crate::{SegmentId, SegmentPlan};

/// Everything that can go wrong when using an [`crate::Index`] or a
/// segmented index (`omendex_segment::SegmentedIndex`). A call that returns an error changes nothing: vectors already
/// stored stay stored and searchable.
///
/// Errors of the lower crates are wrapped whole: bad parameters and bad vectors (the row
/// named) come as [`Error::Build`], a bad query, `k` or `ef` as [`Error::Search`], file errors as
/// [`Error::Store`].
///
/// ```
/// use omendex_build::BuildError;
/// use omendex_params::Params;
/// use omendex_distance::VectorError;
/// use omendex_search::SearchError;
/// use omendex_index::{Error, Index};
///
/// let mut index = Index::new(2, Params::default())?;
/// match index.add(&[1.0, f32::NAN]) {
///     Err(Error::Build(BuildError::Vector { row: 0, source: VectorError::NonFinite { col: 1, .. } })) => {}
///     other => panic!("{other:?}"),
/// }
/// assert_eq!(index.search(&[0.0, 0.0], 1), Err(Error::EmptyIndex));
/// index.add(&[1.0, 0.0])?;
/// assert_eq!(index.search(&[0.0, 0.0], 0), Err(SearchError::ZeroK.into()));
/// # Ok::<(), Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Bad parameters or a bad vector (wrong dimension, NaN or infinite, a norm too large for
    /// l2/ip; see [`omendex_distance::check_vector`]), or a graph the builder refused.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// A query, `k` or `ef` that cannot be searched.
    #[error(transparent)]
    Search(#[from] SearchError),
    /// An index file could not be written or read (I/O, corrupt or truncated file, another
    /// format version). A failed save leaves the previous file in place.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// What went wrong in one segment of a segmented index (`omendex_segment::SegmentedIndex`).
    #[error("{segment}: {source}")]
    Segment {
        /// The segment.
        segment: SegmentId,
        /// Why.
        #[source]
        source: Box<Error>,
    },
    /// A search of an index that holds no vector (or only deleted ones).
    #[error("the index is empty")]
    EmptyIndex,
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
    UnknownId(VectorId),
    /// An id given twice, or that names a vector in the index already.
    #[error("id {0} appears twice")]
    DuplicateId(VectorId),
    /// The index holds the most vectors it can (or the id space is spent).
    #[error("the index is full")]
    Full,
    /// A deleted-node bitset that does not fit its graph.
    #[error("deleted-node bitset of {words} words for {nodes} nodes")]
    DeletedBits {
        /// Words given.
        words: usize,
        /// Nodes in the graph.
        nodes: usize,
    },
    /// A plan of zero segments or a zero size cap, or more than 65,535 segments.
    #[error(
        "segment plan {0:?} is invalid (needs at least one segment of at least one vector, at most 65535 segments)"
    )]
    BadPlan(SegmentPlan),
    /// A ready-made segment that does not fit the index.
    #[error("{0}")]
    Mismatch(String),
    /// A list of per-segment beams whose length is not the number of segments.
    #[error("{given} beam widths for {segments} segments")]
    EfCount {
        /// Beams given.
        given: usize,
        /// Segments in the index.
        segments: usize,
    },
    /// A query of a batch ([`crate::VectorIndex::query_batch`]) that failed: its row and why.
    #[error("query {row} of the batch: {source}")]
    Query {
        /// The query's row in the batch (0-based).
        row: usize,
        /// Why it failed.
        source: Box<Error>,
    },
    /// A batch of no vectors where a segment must hold at least one.
    #[error("a segment needs at least one vector")]
    EmptySegment,
}

impl From<omendex_params::ParamsError> for Error {
    /// Bad parameters come as [`Error::Build`], as the builder refuses them.
    fn from(e: omendex_params::ParamsError) -> Self {
        Error::Build(e.into())
    }
}

impl Error {
    /// `self`, as it happened in segment `segment` ([`Error::Segment`]).
    pub fn in_segment(self, segment: SegmentId) -> Error {
        Error::Segment { segment, source: Box::new(self) }
    }
}

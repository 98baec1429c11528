//! omendex's index: [`Index`], one HNSW graph with the caller's ids, its deleted set, its
//! searches and its file; and the vocabulary both index shapes share (the segmented one lives in
//! `omendex-segment`): the [`Query`] a search answers, checked once where it enters, the
//! [`Neighbor`]s it answers with, the one [`Error`] type, the batch rule
//! ([`VectorIndex::check_batch`]), how vectors are split into segments ([`SegmentPlan`]) and
//! the [`VectorIndex`] trait.
//!
//! An [`Index`] labels its graph's nodes with the caller's [`VectorId`](omendex_graph::VectorId)s
//! (`0, 1, 2, ...` unless the caller names them), hides deleted vectors from every search while
//! their nodes keep routing, compacts them away, and saves and loads itself through
//! `omendex-store`. Vectors enter under the one rule of [`omendex_distance::check_vector`] and
//! are stored as their metric stores them ([`omendex_distance::Metric::prepare`]: normalised
//! under cosine), so a cosine index here behaves exactly as through the `omendex` facade.
//!
//! **Invariants:** the graph passes `check_invariants()`; a result names the caller's id, never
//! a node number; results are sorted by (distance, id), hold each id once, and never a deleted
//! vector.
//!
//! # Example
//! ```
//! use omendex_distance::Metric;
//! use omendex_index::{Index, Query};
//! use omendex_params::Params;
//!
//! let data: Vec<f32> = (0..2000).map(|i| (i as f32 * 0.7).sin()).collect(); // 1000 × d = 2
//! let mut index = Index::new(2, Params::new(Metric::L2).m(8))?;
//! let ids = index.add_batch(&data)?;
//! let hits = index.query(&Query::new(&data[20..22], 3).ef(32))?;
//! assert_eq!(hits[0].id.0, ids.start.0 + 10);
//! # Ok::<(), omendex_index::Error>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod batch;
mod error;
mod index;
mod names;
mod persist;
mod plan;
mod quant;
mod query;
mod shape;

pub use crate::{
    batch::check_new_batch,
    error::Error,
    index::Index,
    plan::{MAX_SEGMENTS, SegmentId, SegmentPlan},
    quant::QuantizationStatus,
    query::{Fanout, Filter, Neighbor, Pool, Query},
    shape::VectorIndex,
};

/// What [`impl_vector_index`] names, so that it expands in any crate.
#[doc(hidden)]
pub mod __private {
    pub use omendex_build::Stop;
    pub use omendex_graph::VectorId;
    pub use omendex_params::Params;
}

/// The README's example, compiled and run as a doctest so it stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

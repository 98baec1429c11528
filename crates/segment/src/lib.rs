//! omendex's segment parallelism: [`SegmentedIndex`], many [`Index`](omendex_index::Index)es
//! (segments) built in parallel and searched together with a merged top-k, and merged into one
//! graph.
//!
//! A [`SegmentedIndex`] splits its vectors into segments
//! ([`SegmentPlan`](omendex_index::SegmentPlan): a fixed count, or a size cap at which a
//! segment is sealed); segments share no mutable state, so they are built in parallel (rayon).
//! A query ([`Query`](omendex_index::Query)) is checked once where it enters and answered by
//! every segment; the per-segment top-k merge into one, ordered by distance then id, each id at
//! most once ([`Fanout`](omendex_index::Fanout): on the caller's thread, on the rayon pool, or
//! sampled). [`SegmentedIndex::merged`] folds the segments into one graph without rebuilding
//! from scratch. It answers through the [`VectorIndex`](omendex_index::VectorIndex) trait, as a
//! one-graph index does; the query, error and trait live in `omendex-index`.
//!
//! **Invariants:** every segment passes `check_invariants()`; a result names the caller's id,
//! never a node number; results are sorted by (distance, id), hold each id once, and never a
//! deleted vector.
//!
//! # Example
//! ```
//! use omendex_params::Params;
//! use omendex_distance::Metric;
//! use omendex_graph::VectorId;
//! use omendex_index::{Fanout, Query, SegmentPlan};
//! use omendex_segment::SegmentedIndex;
//!
//! let data: Vec<f32> = (0..2000).map(|i| (i as f32 * 0.7).sin()).collect(); // 1000 × d = 2
//! let ids: Vec<VectorId> = (0..1000).map(|i| VectorId(10_000 + i)).collect();
//! let index = SegmentedIndex::build_with_ids(2, Params::new(Metric::L2).m(8), &data, &ids, SegmentPlan::Count(4))?;
//! assert_eq!(index.segments().len(), 4);
//! let hits = index.query(&Query::new(&data[20..22], 3).ef(32).fanout(Fanout::Parallel))?;
//! assert_eq!(hits[0].id, VectorId(10_010));
//! # Ok::<(), omendex_index::Error>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod fanout;
mod merge;
mod persist;
mod segmented;

pub use crate::{
    fanout::{merge_top_k, sampling_limit},
    segmented::{SegmentParts, SegmentedIndex},
};

/// The README's example, compiled and run as a doctest so it stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

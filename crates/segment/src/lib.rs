//! omendex's index types: [`Index`], one HNSW graph with the caller's ids, its deleted set and
//! its searches; and [`SegmentedIndex`], many of them (segments) built in parallel and
//! searched together with a merged top-k.
//!
//! An [`Index`] labels its graph's nodes with the caller's [`VectorId`](omendex_graph::VectorId)s
//! (`0, 1, 2, ...` unless the caller names them), hides deleted vectors from every search while
//! their nodes keep routing, compacts them away, and saves and loads itself through
//! `omendex-store`. A [`SegmentedIndex`] splits its vectors into segments ([`SegmentPlan`]: a
//! fixed count, or a size cap at which a segment is sealed); segments share no mutable state,
//! so they are built in parallel (rayon). A query ([`Query`]) is checked once where it enters
//! and answered by every segment; the per-segment top-k merge into one, ordered by distance
//! then id, each id at most once ([`Fanout`]: on the caller's thread, on the rayon pool, or
//! sampled). [`SegmentedIndex::merged`] folds the segments into one graph without rebuilding
//! from scratch. Both shapes answer through the [`VectorIndex`] trait.
//!
//! Vectors enter under the one rule of [`omendex_distance::check_vector`] and are stored as their
//! metric stores them ([`omendex_distance::Metric::prepare`]: normalised under cosine), so a
//! cosine index here behaves exactly as through the `omendex` facade.
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
//! use omendex_segment::{Fanout, Query, SegmentPlan, SegmentedIndex};
//!
//! let data: Vec<f32> = (0..2000).map(|i| (i as f32 * 0.7).sin()).collect(); // 1000 × d = 2
//! let ids: Vec<VectorId> = (0..1000).map(|i| VectorId(10_000 + i)).collect();
//! let index = SegmentedIndex::build_with_ids(2, Params::new(Metric::L2).m(8), &data, &ids, SegmentPlan::Count(4))?;
//! assert_eq!(index.segments().len(), 4);
//! let hits = index.query(&Query::new(&data[20..22], 3).ef(32).fanout(Fanout::Parallel))?;
//! assert_eq!(hits[0].id, VectorId(10_010));
//! # Ok::<(), omendex_segment::Error>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod batch;
mod error;
mod fanout;
mod index;
mod merge;
mod names;
mod persist;
mod plan;
mod quant;
mod query;
mod segmented;
mod shape;

pub use crate::{
    error::Error,
    fanout::{merge_top_k, sampling_limit},
    index::Index,
    plan::{SegmentId, SegmentPlan},
    quant::QuantizationStatus,
    query::{Fanout, Filter, Neighbor, Query},
    segmented::{SegmentParts, SegmentedIndex},
    shape::VectorIndex,
};

/// The README's example, compiled and run as a doctest so it stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

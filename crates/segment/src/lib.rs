//! Segment parallelism: independent HNSW graphs built in parallel and searched together.
//!
//! A [`SegmentedIndex`] splits its vectors into segments ([`SegmentPlan`]: a fixed count, or a
//! size cap at which a segment is sealed). Each [`Segment`] is an independent HNSW graph with
//! its own entry point and its own map from local node ids to the caller's
//! [`VectorId`](omen_graph::VectorId)s;
//! segments share no mutable state, so they are built in parallel (rayon). A query searches
//! every segment and merges the per-segment top-k into one global top-k, ordered by distance
//! then id, each id at most once.
//!
//! This crate builds on `omen-build` and `omen-search`; it never touches a graph's storage
//! except through `omen-graph`'s checked API. Metric preparation (cosine normalisation) and
//! input errors for end users live in the `omen` facade.
//!
//! **Invariants:** every segment passes `check_invariants()`; a result names the caller's id,
//! never a segment-local one; merged results are sorted, unique and exactly `k` long.
//!
//! Besides [`SegmentedIndex::search`] (every segment with the same `k` and beam, on the
//! caller's thread): [`SegmentedIndex::search_with_efs`] (a beam per segment),
//! [`SegmentedIndex::search_parallel`] (the segments on the rayon pool) and
//! [`SegmentedIndex::search_sampled`] (each segment asked for its likely share of the top `k`,
//! searched again in full when the merged result shows it may hold more).
//!
//! [`SegmentedIndex::merged`] combines the segments into one graph without rebuilding from
//! scratch: the largest segment's graph is kept and the other nodes are inserted into it,
//! each search also started from the node's old neighbours already merged.
//!
//! [`SegmentedIndex::add_segment`] seals a new segment as data arrives;
//! [`SegmentedIndex::delete`] hides a vector from every search while its node keeps routing
//! its segment's walks (its id may then be given to a new vector: a replacement); a merge
//! drops the deleted vectors, and so does [`SegmentedIndex::compact`], segment by segment. [`SegmentedIndex::search_filtered`]
//! returns only the ids a filter accepts, each segment walking its graph or scanning the
//! accepted vectors exactly, as its [`FilterPlan`](omen_search::FilterPlan) says.
//!
//! # Example
//! ```
//! use omen_build::HnswParams;
//! use omen_distance::Metric;
//! use omen_graph::VectorId;
//! use omen_segment::{SegmentPlan, SegmentedIndex};
//!
//! let data: Vec<f32> = (0..2000).map(|i| (i as f32 * 0.7).sin()).collect(); // 1000 × d = 2
//! let ids: Vec<VectorId> = (0..1000).map(|i| VectorId(10_000 + i)).collect();
//! let index = SegmentedIndex::build(2, HnswParams::new(Metric::L2).m(8), &data, &ids, SegmentPlan::Count(4))?;
//! assert_eq!(index.segments().len(), 4);
//! let hits = index.search(&data[20..22], 3, 32)?;
//! assert_eq!(hits[0].id, VectorId(10_010));
//! # Ok::<(), omen_segment::SegmentError>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod index;

pub use crate::index::{
    Hit, Segment, SegmentError, SegmentId, SegmentParts, SegmentPlan, SegmentedIndex, sampling_limit,
};

/// The README's example, compiled and run as a doctest so it stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

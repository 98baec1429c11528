//! omendex: approximate nearest-neighbour search on HNSW graphs.
//!
//! [`Index`] is the type to use: add vectors ([`Index::add`], [`Index::add_batch`]), then
//! [`Index::search`] for the `k` nearest, or [`Index::query`] with a [`Query`] for a chosen
//! beam, a filter over ids or a filter plan. It builds a hierarchical navigable small world
//! graph (Malkov & Yashunin) on SIMD distance kernels chosen for the running CPU, and every
//! insertion keeps the graph's structural invariants, which [`Index::check_invariants`]
//! verifies. [`SegmentedIndex`] holds many such graphs (segments) built in parallel and searched
//! together; [`VectorIndex`] is what both answer alike. One [`Params`] configures both.
//!
//! This crate is the facade users depend on (semver applies here first): it re-exports the
//! types of the `omendex-*` crates that make up its API and adds no logic of its own. Bad input
//! (wrong dimension, NaN or infinite values, `k = 0`, an empty index, bad parameters, a corrupt
//! file) is an [`Error`], never a panic, and leaves the index as it was.
//!
//! # Example
//! ```
//! use omendex::{Index, Metric, Params, Query, VectorId};
//!
//! let mut index = Index::new(3, Params::new(Metric::L2))?;
//! index.add(&[0.0, 0.0, 1.0])?;
//! let ids = index.add_batch(&[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.9, 0.1, 0.0])?;
//! assert_eq!(ids.end.0 - ids.start.0, 3);
//!
//! let hits = index.search(&[1.0, 0.05, 0.0], 2)?;
//! assert_eq!(hits[0].id, VectorId(1));
//! assert_eq!(hits[1].id, VectorId(3));
//! let even = |id: VectorId| id.0 % 2 == 0;
//! let hits = index.query(&Query::new(&[1.0, 0.05, 0.0], 1).ef(32).filter(&even))?;
//! assert_eq!(hits[0].id, VectorId(2));
//! assert!(index.check_invariants().is_ok());
//!
//! assert!(index.search(&[1.0, 0.0], 1).is_err()); // wrong dimension: an error, not a panic
//! # Ok::<(), omendex::Error>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub use omendex_build::{BuildError, Stop};
pub use omendex_distance::{MAX_NORM, Metric, SimdPath, UnknownMetric, VectorError, check_vector, simd_path};
pub use omendex_graph::{GraphError, GraphStats, InvariantViolation, LayerStats, MinMeanMax, VectorId};
pub use omendex_index::{
    Error, Fanout, Filter, Index, Neighbor, QuantizationStatus, Query, SegmentId, SegmentPlan, VectorIndex,
};
pub use omendex_params::{Params, ParamsError, Quantization, UnknownQuantization};
pub use omendex_search::{FilterPlan, SearchError};
pub use omendex_segment::{SegmentedIndex, merge_top_k};
pub use omendex_store::{FORMAT_VERSION, MAX_FILE_NAME_LEN, SegmentsInfo, StoreError, inspect_segments};

/// A segmented index's folder written by several writers: the protocol under
/// [`SegmentedIndex::save`], for builds whose segments are written by other processes or
/// machines ([`begin_segments`](folder::begin_segments), [`Index::write_segment`] per writer,
/// [`SegmentsBuild::commit`](folder::SegmentsBuild::commit)), with the folder's naming and
/// sweeping rules for callers that keep the folder in remote storage.
pub mod folder {
    pub use omendex_store::{
        LOCK, MANIFEST, SegmentEntry, SegmentsBuild, begin_segments, build_marker_name, generation_named,
        is_garbage_after, segment_file_name, segment_of, temporary_target, verify_segment_file, with_interrupt_check,
        write_manifest_for_remote,
    };
}

/// The README's example, compiled and run as a doctest so it stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

//! omen: approximate nearest-neighbour search on HNSW graphs.
//!
//! [`Index`] is the type to use: add vectors ([`Index::add`], [`Index::add_batch`]), then
//! [`Index::search`] for the `k` nearest. It builds a hierarchical navigable small world graph
//! (Malkov & Yashunin) on SIMD distance kernels chosen for the running CPU, and every insertion
//! keeps the graph's structural invariants, which [`Index::check_invariants`] verifies.
//!
//! This crate is a thin facade over the `omen-*` crates: it owns the API users depend on and its
//! error type, and re-exports nothing else. Bad input (wrong dimension, NaN or infinite values,
//! `k = 0`, an empty index, bad parameters) is an [`Error`], never a panic, and leaves the
//! index as it was.
//!
//! # Example
//! ```
//! use omen::{Index, Metric, Params};
//!
//! let mut index = Index::new(3, Metric::L2, Params::default())?;
//! index.add(&[0.0, 0.0, 1.0])?;
//! let ids = index.add_batch(&[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.9, 0.1, 0.0])?;
//! assert_eq!(ids.end.0 - ids.start.0, 3);
//!
//! let hits = index.search(&[1.0, 0.05, 0.0], 2)?;
//! assert_eq!(hits[0].id, omen::VectorId(1));
//! assert_eq!(hits[1].id, omen::VectorId(3));
//! assert!(index.check_invariants().is_ok());
//!
//! assert!(index.search(&[1.0, 0.0], 1).is_err()); // wrong dimension: an error, not a panic
//! # Ok::<(), omen::Error>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod error;
mod index;
mod names;
mod segmented;

pub use crate::{
    error::Error,
    index::{Index, Neighbor, Params},
    segmented::{SegmentPlan, SegmentedIndex},
};
pub use omen_distance::{Metric, SimdPath, simd_path};
pub use omen_graph::{GraphStats, InvariantViolation, LayerStats, MinMeanMax, VectorId};
pub use omen_search::FilterPlan;
pub use omen_store::{FORMAT_VERSION, StoreError};

/// The README's example, compiled and run as a doctest so it stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

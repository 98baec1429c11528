//! HNSW construction on top of [`omendex_search`]'s layer search.
//!
//! [`HnswBuilder::insert`] is algorithm 1 of Malkov & Yashunin: draw a top layer, descend
//! greedily from the entry point through every layer above it, then on each of its layers run
//! a beam search of width `ef_construction`, keep `m` neighbours chosen by the selection
//! heuristic (algorithm 4), and add the reverse links, pruning any list that overflows its cap.
//! Every insertion starts at the entry point: no shortcut skips the hierarchy.
//!
//! This crate owns the construction strategies; their parameters are `omendex-params`' (shared
//! by every omendex crate), the graph's structure and its checker live in `omendex-graph`, the
//! search in `omendex-search`.
//!
//! **Invariants:** the graph passes `check_invariants()` after every insertion (debug builds
//! check it at the end of every [`HnswBuilder::insert_batch`]); a failed insertion changes
//! nothing; a seed fixes the graph.
//!
//! # Example
//! ```
//! use omendex_build::{Insertion, build};
//! use omendex_params::Params;
//! use omendex_distance::{Distance, Metric};
//! use omendex_search::{AllNodes, Request, Route, Rows, SearchScratch, View, knn_search};
//!
//! let data: Vec<f32> = (0..200).map(|i| (i as f32 * 0.37).sin()).collect(); // 100 vectors, d = 2
//! let graph = build(Params::new(Metric::L2).m(8), Rows::dense(&data, 2), Insertion::InOrder)?;
//! assert!(graph.check_invariants().is_ok());
//! let request = Request::new(Metric::L2, 2, &data[10..12], 1, 16)?;
//! let dist = Distance::new(Metric::L2);
//! let hits = knn_search(View::new(&graph, &dist, None), &request, &AllNodes, Route::Walk, &mut SearchScratch::new());
//! assert_eq!(hits[0].dist, 0.0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod compact;
mod error;

/// Runs `$body` as one call of profile phase `$phase` when the `profile` feature is on; as is
/// otherwise.
#[macro_use]
mod macros {
    macro_rules! phase {
        ($phase:ident, $body:expr) => {{
            #[cfg(feature = "profile")]
            let res = $crate::profile::timed($crate::profile::Phase::$phase, || $body);
            #[cfg(not(feature = "profile"))]
            let res = $body;
            res
        }};
    }
}
mod insert;
// Internal to the project's profiler (`cargo xtask profile`), outside semver.
#[cfg(feature = "profile")]
#[doc(hidden)]
pub mod profile;
mod select;

pub use crate::{
    compact::Compacted,
    error::BuildError,
    insert::{HnswBuilder, InsertScratch, Insertion, Linking, NoSeeds, Seeds, Stop, build},
    select::{MarkViolation, check_marks},
};

/// The README's example, compiled and run as a doctest so it stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

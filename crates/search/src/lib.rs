//! Search over one HNSW graph: greedy descent, beam search on a layer, k-NN, and exact
//! brute force.
//!
//! [`knn_search`] descends greedily from the entry point through every upper layer
//! ([`greedy_descent`]), then runs a beam of width `ef` on layer 0 ([`search_layer`]). Each is
//! written once: what a walk scores nodes on (the `f32` rows or 8-bit [`Codes`], chosen once in a
//! [`View`] or passed as a [`Scorer`]) and which nodes it may return (a [`NodeFilter`]) are
//! parameters.
//! [`brute_force_knn`] and [`brute_force_batch`] (parallel, on the SIMD kernels) give the exact
//! answer that recall is measured against ([`recall_at_k`]).
//!
//! This crate reads graphs and never changes them. Searches allocate nothing once their
//! [`SearchScratch`] (one per thread) has grown to the graph's size.
//!
//! **Invariant:** results are sorted by distance, ties by id ([`ScoredNode`]'s order), hold no
//! duplicate, and never more than `k`.
//!
//! # Example
//! ```
//! use omendex_distance::{Distance, Metric};
//! use omendex_graph::{HnswGraph, Layer, NodeId};
//! use omendex_search::{AllNodes, Request, Route, SearchScratch, View, knn_search};
//!
//! let mut g = HnswGraph::new(1, 2)?;
//! for x in [0.0, 1.0, 2.0] {
//!     g.push_node(&[x], Layer(0))?;
//! }
//! g.set_neighbors(NodeId(0), Layer(0), &[NodeId(1)])?;
//! g.set_neighbors(NodeId(1), Layer(0), &[NodeId(0), NodeId(2)])?;
//! g.set_neighbors(NodeId(2), Layer(0), &[NodeId(1)])?;
//! let request = Request::new(Metric::L2, g.dim(), &[1.9], 1, 4)?;
//! let dist = Distance::new(Metric::L2);
//! let hits = knn_search(View::new(&g, &dist, None), &request, &AllNodes, Route::Walk, &mut SearchScratch::new());
//! assert_eq!(hits[0].id, NodeId(2));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod beam;
mod brute;
mod codes;
mod error;
mod plan;
mod request;
mod scored;
mod scorer;
mod scratch;

pub use crate::{
    beam::{AllNodes, NodeFilter, Start, View, greedy_descent, knn_search, rescore, search_layer},
    brute::{Rows, brute_force_batch, brute_force_knn, recall_at_k},
    codes::{CodeFit, CodeRows, Codes, CodesError, TrainedCodes},
    error::SearchError,
    plan::{FilterPlan, Route, SCAN_FACTOR, estimate_allowed},
    request::Request,
    scored::ScoredNode,
    scorer::{Exact, OnCodes, Scorer},
    scratch::SearchScratch,
};

/// The README's example, compiled and run as a doctest so it stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

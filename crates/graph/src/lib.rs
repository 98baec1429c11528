//! Storage for a layered HNSW graph whose structure can be verified.
//!
//! [`HnswGraph`] holds the vectors (one contiguous, 64-byte aligned buffer with a padded stride),
//! each [`NodeId`]'s top [`Layer`], one neighbour list per node and layer with a fixed cap
//! (`2 * m` on layer 0, `m` above), and the entry point. [`HnswGraph::check_invariants`] lists
//! and verifies every structural rule; [`GraphStats`] measures what HNSW does not promise
//! (reachability, reciprocity, degrees).
//!
//! This crate never computes a distance and never spawns a thread.
//!
//! **Invariants** (each a variant of [`InvariantViolation`]): the entry point exists exactly when
//! the graph has nodes and sits on the top layer; a node on layer `l` has a list on every layer
//! below; links are in range, never to the node itself, never repeated, at most the layer's cap,
//! and only to nodes on the same layer. [`HnswGraph::set_neighbors`] refuses any list that would
//! break a link rule, so only the `#[doc(hidden)]` raw mutators (for tests) can break one.
//!
//! # Example
//! ```
//! use omendex_graph::{HnswGraph, Layer, NodeId};
//!
//! let mut g = HnswGraph::new(2, 4)?;
//! let a = g.push_node(&[0.0, 0.0], Layer(1))?;
//! let b = g.push_node(&[1.0, 0.0], Layer(0))?;
//! let c = g.push_node(&[0.0, 1.0], Layer(1))?;
//! g.set_neighbors(a, Layer(0), &[b, c])?;
//! g.set_neighbors(a, Layer(1), &[c])?;
//! g.set_neighbors(c, Layer(1), &[a])?;
//! assert_eq!(g.entry_point(), Some(a));
//! assert!(g.check_invariants().is_ok());
//! // b is not on layer 1, so this link is refused:
//! assert!(g.set_neighbors(c, Layer(1), &[b]).is_err());
//! # Ok::<(), omendex_graph::GraphError>(())
//! ```
// Unsafe code only in `storage::mapped` (a mapped file viewed as atomics).
#![deny(unsafe_code)]
#![deny(missing_docs)]

mod aligned;
mod error;
mod filemap;
mod graph;
mod ids;
mod invariants;
mod links;
mod parts;
mod stats;
mod storage;
mod sync;

pub use crate::{
    aligned::AlignedBuffer,
    error::{GraphError, InvariantViolation},
    filemap::FileMap,
    graph::{HnswGraph, MAX_DIM, MAX_LAYER, MAX_M, TopGuard},
    ids::{Layer, NodeId, VectorId},
    links::{Neighbors, NodeLinks},
    parts::{GraphParts, MappedParts, VectorRows},
    stats::{GraphStats, LayerStats, MinMeanMax},
};

/// The README's example, compiled and run as a doctest so it stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

//! Segment parallelism: independent HNSW graphs built in parallel and searched together.
//!
//! **Not built yet.** This crate will own `SegmentedIndex`: vectors partitioned into segments,
//! each an independent graph with its own entry point, built in parallel with no shared
//! mutable state; a merged top-k search over all segments with stable caller ids; and merging
//! segments into one graph. It will sit on `omen-build` and `omen-search` and never reach into
//! a graph's storage except through `omen-graph`'s checked API.
//!
//! It exports nothing today, so that no one depends on an API that does not exist.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

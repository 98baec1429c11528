//! A versioned, checksummed file format for omendex's HNSW graphs.
//!
//! [`save_graph`] writes one [`HnswGraph`](omendex_graph::HnswGraph) with its [`Params`](omendex_params::Params) (and,
//! optionally, [`Labels`]: the caller's id of each node and the deleted nodes); [`load_graph`] reads it back. [`save_segments`] and
//! [`load_segments`] do the same for a folder of segments and its manifest. The layout is
//! documented in `docs/format.md`: magic bytes, format version, file kind, a section table, and
//! 64-byte aligned sections each with its own xxh3-64 checksum.
//!
//! **Guarantees.** A save writes a temporary file in the target's folder, flushes it to disk and
//! renames it over the target, so a crash never leaves a half-written file at the target path.
//! A load verifies every checksum, every length and every structural rule of the graph before
//! returning it: a truncated, corrupt or foreign file is a [`StoreError`], never a panic, and a
//! file from another format version is [`StoreError::UnsupportedVersion`].
//!
//! # Example
//! ```
//! use omendex_distance::Metric;
//! use omendex_graph::{HnswGraph, Layer};
//! use omendex_params::Params;
//! use omendex_store::{Labels, load_graph, save_graph};
//!
//! let mut g = HnswGraph::new(2, 4)?;
//! let a = g.push_node(&[0.0, 0.0], Layer(0))?;
//! let b = g.push_node(&[1.0, 0.0], Layer(0))?;
//! g.set_neighbors(a, Layer(0), &[b])?;
//! g.set_neighbors(b, Layer(0), &[a])?;
//!
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("tiny.omen");
//! let params = Params::new(Metric::L2).m(4).seed(1);
//! save_graph(&path, &params, &g, Labels::default())?;
//!
//! let back = load_graph(&path)?;
//! assert_eq!(back.params, params);
//! assert_eq!(back.graph.neighbors(a, Layer(0)), [b]);
//! assert_eq!(back.graph.vector(b), [1.0, 0.0]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod container;
mod error;
mod files;
mod graph_file;
mod interrupt;
mod segments;

use std::io::BufReader;
use std::path::Path;

pub use crate::{
    container::{FORMAT_VERSION, FileInfo, FileKind, MAGIC, OLDEST_READ_VERSION, SectionInfo},
    error::StoreError,
    files::MAX_FILE_NAME_LEN,
    graph_file::{Labels, StoredGraph, graph_from_bytes, load_graph, open_graph_mapped, read_graph, save_graph},
    interrupt::with_interrupt_check,
    segments::{
        LOCK, MANIFEST, SegmentEntry, SegmentRef, SegmentsBuild, SegmentsInfo, StoredSegment, StoredSegments,
        begin_segments, build_marker_name, generation_named, inspect_segments, is_garbage_after, load_segments,
        open_segments_mapped, open_segments_mapped_part, save_segments, segment_file_name, segment_of,
        temporary_target, verify_segment_file, write_manifest_for_remote, write_segment, write_segment_file,
    },
};

/// Reads and checks a file's header and section table (not its sections): what kind of file it
/// is, its version and its sections.
pub fn inspect(path: &Path) -> Result<FileInfo, StoreError> {
    let (file, len) = graph_file::open_file(path)?;
    let r = container::Reader::open(BufReader::new(file), len).map_err(|e| graph_file::with_path(e, path))?;
    Ok(r.info().clone())
}

/// The README's example, compiled and run as a doctest so it stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

//! Why a file could not be written or read.

use std::path::{Path, PathBuf};

use omendex_graph::GraphError;

/// Why an index file could not be saved or loaded. Loading never panics on a bad file: every
/// way a file can be wrong is one of these.
///
/// ```
/// use omendex_store::{StoreError, graph_from_bytes};
///
/// let err = graph_from_bytes(b"not an index file, and far too short for one").unwrap_err();
/// assert!(matches!(err, StoreError::Truncated { .. } | StoreError::NotAnIndexFile), "{err}");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The operating system refused a read or write.
    #[error("{path}: {message}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The error's kind.
        kind: std::io::ErrorKind,
        /// The error's text.
        message: String,
    },
    /// The file does not start with omendex's magic bytes.
    #[error("not an omendex index file (bad magic bytes)")]
    NotAnIndexFile,
    /// A format version this build cannot read.
    #[error("unsupported format version {found} (this build reads 1 to {supported})")]
    UnsupportedVersion {
        /// The file's version.
        found: u32,
        /// The newest version this build reads, the one it writes.
        supported: u32,
    },
    /// The file is shorter than its header says.
    #[error("file is truncated: {actual} bytes, the header describes {expected}")]
    Truncated {
        /// The length the header describes.
        expected: u64,
        /// The file's length.
        actual: u64,
    },
    /// A section's bytes do not match their checksum.
    #[error("checksum mismatch in section `{section}`: the file is corrupt")]
    ChecksumMismatch {
        /// The section ("header" for the header and section table).
        section: String,
    },
    /// A graph file where a manifest was expected, or the reverse.
    #[error("expected a {expected} file, found a {found} file")]
    WrongKind {
        /// The kind asked for.
        expected: &'static str,
        /// The kind found.
        found: &'static str,
    },
    /// Checksums hold, yet the contents break the format (a file not written by omendex).
    #[error("malformed index file: {0}")]
    Malformed(String),
    /// Another save of the same folder stands in the way: a save committed since this one
    /// began, or a write into a generation no save is writing. Nothing stored was changed.
    #[error("{0}")]
    Conflict(String),
    /// The stored graph breaks a structural rule.
    #[error("stored graph is invalid: {0}")]
    Graph(#[from] GraphError),
}

impl StoreError {
    pub(crate) fn io(path: &Path, e: &std::io::Error) -> StoreError {
        StoreError::Io { path: path.to_path_buf(), kind: e.kind(), message: e.to_string() }
    }
}

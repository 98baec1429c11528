//! The one place this crate maps a file into memory.
#![allow(unsafe_code)]

use std::fs::File;
use std::io;

/// Maps `len` bytes of `file` from `offset`, read-only.
pub(crate) fn map(file: &File, offset: u64, len: u64) -> io::Result<memmap2::Mmap> {
    let len = usize::try_from(len).map_err(|_| io::Error::other("section larger than the address space"))?;
    // SAFETY: mapping is sound as long as the file does not change while mapped; omen never
    // writes a file in place (saves write a new file and rename it over the old one, which
    // leaves existing mappings of the old file intact), and `open_graph_mapped` documents
    // that other writers must not change it either.
    unsafe { memmap2::MmapOptions::new().offset(offset).len(len).map(file) }
}

/// Maps `len` bytes of `file` from `offset`, copy-on-write: writes stay in this process.
pub(crate) fn map_copy(file: &File, offset: u64, len: u64) -> io::Result<memmap2::MmapMut> {
    let len = usize::try_from(len).map_err(|_| io::Error::other("section larger than the address space"))?;
    // SAFETY: as in `map`; a private mapping additionally never writes to the file.
    unsafe { memmap2::MmapOptions::new().offset(offset).len(len).map_copy(file) }
}

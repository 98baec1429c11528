//! [`FileMap`]: a region of an index file mapped into memory, the one place omendex maps a file.
#![allow(unsafe_code)]

use std::fs::File;
use std::io;

/// A region of a file mapped into memory, for a graph opened in place
/// ([`crate::HnswGraph::from_mapped`]): read-only (vectors) or copy-on-write (links, whose
/// rewrites stay in this process and never reach the file).
///
/// Sound only while no process truncates or rewrites the file: a truncation makes reads of the
/// lost pages raise `SIGBUS`, a rewrite shows through as other bytes. omendex never writes a file
/// in place (saves write a new file and rename it over the old one, which leaves existing
/// mappings of the old file intact); callers that hand omendex a file promise the same.
pub struct FileMap(Kind);

enum Kind {
    ReadOnly(memmap2::Mmap),
    CopyOnWrite(memmap2::MmapMut),
}

impl std::fmt::Debug for FileMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = if self.is_copy_on_write() { "copy-on-write" } else { "read-only" };
        f.debug_struct("FileMap").field("kind", &kind).field("len", &self.as_bytes().len()).finish()
    }
}

impl FileMap {
    /// Maps `len` bytes of `file` from `offset`, read-only.
    pub fn read_only(file: &File, offset: u64, len: u64) -> io::Result<FileMap> {
        let len = region_len(len)?;
        // SAFETY: a mapping is sound while the file does not change under it; `FileMap`'s
        // contract (above, and on `Index::open_mmap`) says nobody changes it, and omendex itself
        // never writes a file in place.
        let map = unsafe { memmap2::MmapOptions::new().offset(offset).len(len).map(file)? };
        Ok(FileMap(Kind::ReadOnly(map)))
    }

    /// Maps `len` bytes of `file` from `offset`, copy-on-write: writes stay in this process.
    pub fn copy_on_write(file: &File, offset: u64, len: u64) -> io::Result<FileMap> {
        let len = region_len(len)?;
        // SAFETY: as in `read_only`; a private mapping additionally never writes to the file.
        let map = unsafe { memmap2::MmapOptions::new().offset(offset).len(len).map_copy(file)? };
        Ok(FileMap(Kind::CopyOnWrite(map)))
    }

    /// Tells the OS that the pages will be read in no order (`MADV_RANDOM`): a page fault reads
    /// that page alone, not the pages around it. For rows read one at a time (a search's
    /// re-ranking of mapped vectors), so that what is resident is what was read. A hint: where
    /// the OS has no such advice, nothing happens.
    pub fn advise_random(&self) -> io::Result<()> {
        #[cfg(unix)]
        match &self.0 {
            Kind::ReadOnly(m) => m.advise(memmap2::Advice::Random)?,
            Kind::CopyOnWrite(m) => m.advise(memmap2::Advice::Random)?,
        }
        Ok(())
    }

    /// The mapped bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Kind::ReadOnly(m) => m,
            Kind::CopyOnWrite(m) => m,
        }
    }

    /// Whether writes through the map are allowed (and stay in this process).
    pub fn is_copy_on_write(&self) -> bool {
        matches!(self.0, Kind::CopyOnWrite(_))
    }

    /// The copy-on-write mapping, if this is one.
    pub(crate) fn into_copy_on_write(self) -> Option<memmap2::MmapMut> {
        match self.0 {
            Kind::CopyOnWrite(m) => Some(m),
            Kind::ReadOnly(_) => None,
        }
    }
}

fn region_len(len: u64) -> io::Result<usize> {
    usize::try_from(len).map_err(|_| io::Error::other("region larger than the address space"))
}

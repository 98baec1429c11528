//! Saving and loading both index shapes through `omen-store` (layout: `docs/format.md`).

use std::borrow::Cow;
use std::path::Path;

use omen_graph::VectorId;
use omen_store::{Labels, SegmentRef, StoredGraph, StoredSegments};

use crate::{Error, Index, SegmentParts, SegmentedIndex};

impl Index {
    /// Saves the index to `path` in omen's file format (`docs/format.md`): vectors, links,
    /// ids, deleted set, parameters, each section checksummed. The file is written beside
    /// `path` and renamed over it once on disk, so a crash during the save leaves the previous
    /// file intact. Searches may run while it saves.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), Error> {
        let (ids, deleted) = self.labels();
        let labels = Labels { ids, deleted, next_id: Some(self.next_id()) };
        omen_store::save_graph(path.as_ref(), self.params(), self.graph(), labels)?;
        Ok(())
    }

    /// Loads an index saved by [`Index::save`], verifying every checksum and every structural
    /// rule: a truncated, corrupt or foreign file, or another format version, is an
    /// [`Error::Store`], never a panic. The loaded index answers every query as the saved one
    /// did, and grows from there (new vectors draw their layers from the saved seed again).
    /// A segment file of a [`SegmentedIndex`] opens too, with the segment's ids.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, Error> {
        Index::from_stored(omen_store::load_graph(path.as_ref())?)
    }

    /// Opens an index saved by [`Index::save`] in place: vectors and links stay in the file,
    /// mapped into memory and read by the OS as searches touch them, so a large index is
    /// searchable at once and holds little memory. Checks the header, parameters, ids and
    /// links (checksums and every structural rule) but not the vectors, which [`Index::load`]
    /// and `cargo xtask inspect` verify. The first [`Index::add`] copies the index to memory;
    /// link changes never reach the file.
    ///
    /// # The file must not change while it is open
    ///
    /// As with every memory-mapped store (memmap2, LMDB, SQLite's mmap mode), the mapping is
    /// sound only while no process truncates or rewrites the file in place. omen's own saves
    /// never do: they write a new file and rename it over the old one, which leaves an open
    /// index reading the old file until it is dropped. What another writer causes (tested in
    /// child processes, `crates/omen/tests/it/mapped.rs`):
    /// - the file cut short: the next read of a page past the new end raises `SIGBUS`, which
    ///   ends the process (during the open itself when the cut comes first); never a wrong
    ///   answer returned as a right one;
    /// - a link word rewritten in place: the search reads it like any stored id, every
    ///   access bounds-checked, so a search returns other neighbours or panics ("index out of
    ///   bounds"); it never reads outside the mapping;
    /// - a vector rewritten in place: other distances, wrong answers; a NaN that
    ///   [`Index::compact`] or [`Index::rebuild`] then copied is refused by the next
    ///   [`Index::load`].
    pub fn open_mmap(path: impl AsRef<Path>) -> Result<Self, Error> {
        Index::from_stored(omen_store::open_graph_mapped(path.as_ref())?)
    }

    fn from_stored(stored: StoredGraph) -> Result<Self, Error> {
        let StoredGraph { params, graph, ids, deleted, next_id, .. } = stored;
        Index::from_graph(params, graph, ids, deleted, next_id)
    }
}

impl SegmentedIndex {
    /// Saves the index into folder `dir` (created if missing): one file per segment and a
    /// manifest, written last; a crash during the save leaves the folder opening as the
    /// previous save. Files of the previous save are removed once the new manifest is in place.
    pub fn save(&self, dir: impl AsRef<Path>) -> Result<(), Error> {
        // Segment files always hold their ids (a segment numbered 0.. keeps none in memory).
        let ids: Vec<Cow<'_, [VectorId]>> = self
            .segments()
            .iter()
            .map(|s| match s.labels().0 {
                Some(ids) => Cow::Borrowed(ids),
                None => Cow::Owned(s.ids().collect()),
            })
            .collect();
        let parts: Vec<SegmentRef<'_>> = self
            .segments()
            .iter()
            .zip(&ids)
            .map(|(s, ids)| SegmentRef { graph: s.graph(), ids, deleted: s.labels().1 })
            .collect();
        omen_store::save_segments(dir.as_ref(), self.params(), &parts, Some(self.next_id()))?;
        Ok(())
    }

    /// Loads an index saved by [`SegmentedIndex::save`], verifying every file as
    /// [`Index::load`] does, that each segment file is the one the manifest names, and that no
    /// id names two live vectors.
    pub fn load(dir: impl AsRef<Path>) -> Result<Self, Error> {
        Self::from_stored(omen_store::load_segments(dir.as_ref())?)
    }

    /// Opens an index saved by [`SegmentedIndex::save`] in place, each segment as
    /// [`Index::open_mmap`] opens a file: searchable at once, vectors read by the OS as
    /// searches touch them. Nothing may change the files while they are open: see
    /// [`Index::open_mmap`] for what happens when something does. A save into the folder
    /// removes the previous generation's files; an open index keeps reading them (a removed
    /// file stays readable while it is mapped).
    pub fn open_mmap(dir: impl AsRef<Path>) -> Result<Self, Error> {
        Self::from_stored(omen_store::open_segments_mapped(dir.as_ref())?)
    }

    fn from_stored(stored: StoredSegments) -> Result<Self, Error> {
        let StoredSegments { params, dim, segments, next_id } = stored;
        let parts =
            segments.into_iter().map(|s| SegmentParts { graph: s.graph, ids: s.ids, deleted: s.deleted }).collect();
        SegmentedIndex::from_segments(dim, params, parts, next_id)
    }
}

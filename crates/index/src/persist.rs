//! Saving, loading and opening an [`Index`] through `omendex-store` (layout: `docs/format.md`),
//! and writing it as one segment file of a segmented folder.

use std::borrow::Cow;
use std::path::Path;

use omendex_graph::VectorId;
use omendex_store::{Labels, SegmentEntry, SegmentRef, StoredGraph};

use crate::{Error, Index};

impl Index {
    /// Saves the index to `path` in omendex's file format (`docs/format.md`): vectors, links,
    /// ids, deleted set, parameters, each section checksummed. The file is written beside
    /// `path` and renamed over it once on disk, so a crash during the save leaves the previous
    /// file intact. Searches may run while it saves.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), Error> {
        let (ids, deleted) = self.labels();
        let labels = Labels { ids, deleted, next_id: Some(self.next_id()), codes: self.trained_codes() };
        omendex_store::save_graph(path.as_ref(), self.params(), self.graph(), labels)?;
        Ok(())
    }

    /// Loads an index saved by [`Index::save`], verifying every checksum and every structural
    /// rule: a truncated, corrupt or foreign file, or another format version, is an
    /// [`Error::Store`], never a panic. The loaded index answers every query as the saved one
    /// did, and grows from there (new vectors draw their layers from the saved seed again).
    /// A segment file of a segmented index (`omendex_segment::SegmentedIndex`) opens too, with the segment's ids.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, Error> {
        Index::from_stored(omendex_store::load_graph(path.as_ref())?)
    }

    /// Opens an index saved by [`Index::save`] in place: vectors, links and 8-bit codes stay
    /// in the file, mapped into memory and read by the OS as searches touch them, so a large
    /// index is searchable at once and holds little memory. Checks the header, parameters, ids,
    /// links and codes (checksums and every structural rule) but not the vectors, which
    /// [`Index::load`] and `cargo xtask inspect` verify. An index walking on codes reads a
    /// vector only to re-rank a candidate, so its resident memory is its codes and links plus
    /// the pages of the vectors re-ranked (`docs/benchmarks.md`, "Memory, opened in place").
    /// The first [`Index::add`] copies the index to memory; link changes never reach the file.
    ///
    /// # The file must not change while it is open
    ///
    /// As with every memory-mapped store (memmap2, LMDB, SQLite's mmap mode), the mapping is
    /// sound only while no process truncates or rewrites the file in place. omendex's own saves
    /// never do: they write a new file and rename it over the old one, which leaves an open
    /// index reading the old file until it is dropped. What another writer causes (tested in
    /// child processes, `crates/omendex/tests/it/mapped.rs`):
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
        Index::from_stored(omendex_store::open_graph_mapped(path.as_ref())?)
    }

    fn from_stored(stored: StoredGraph) -> Result<Self, Error> {
        let StoredGraph { params, graph, ids, deleted, next_id, codes, .. } = stored;
        Index::from_graph(params, graph, (ids, deleted, next_id), codes)
    }
}

impl Index {
    /// Writes this index as segment `number` of a segmented save begun with
    /// [`omendex_store::begin_segments`] (generation `generation`), for a build whose segments
    /// are made by several processes or machines: each builds its part as an `Index` (ids
    /// given, seed the index's plus `number`) and writes it here; one then commits them all
    /// with [`omendex_store::SegmentsBuild::commit`], which checks every file before the manifest
    /// makes the folder a segmented index (`omendex_segment::SegmentedIndex`). A generation no save is writing (never begun,
    /// committed or aborted) is refused with [`omendex_store::StoreError::Conflict`].
    ///
    /// ```
    /// use omendex_params::Params;
    /// use omendex_distance::Metric;
    /// use omendex_graph::VectorId;
    /// use omendex_index::Index;
    /// use omendex_store::begin_segments;
    ///
    /// let params = Params::new(Metric::L2).seed(3);
    /// let dir = tempfile::tempdir()?;
    /// let mut build = begin_segments(dir.path())?;
    /// let generation = build.generation();
    /// let mut entries = Vec::new();
    /// for part in 0..3u64 {
    ///     // On each worker: its rows, under the ids the driver gave them.
    ///     let rows: Vec<f32> = (0..20).map(|i| (i as f32 + part as f32 * 0.5).sin()).collect();
    ///     let ids: Vec<VectorId> = (0..10).map(|i| VectorId(part * 10 + i)).collect();
    ///     let mut index = Index::new(2, params.seed(params.seed + part))?;
    ///     index.add_batch_with_ids(&ids, &rows)?;
    ///     entries.push(index.write_segment(dir.path(), generation, part as usize)?);
    /// }
    /// // On the driver, once every worker is done.
    /// build.commit(&params, 2, &entries, None)?;
    /// // The folder opens as a segmented index (`omendex_segment::SegmentedIndex::load`).
    /// assert_eq!(omendex_store::inspect_segments(dir.path())?.lens, [10, 10, 10]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn write_segment(&self, dir: impl AsRef<Path>, generation: u64, number: usize) -> Result<SegmentEntry, Error> {
        let ids = self.segment_ids();
        Ok(omendex_store::write_segment(dir.as_ref(), generation, number, self.params(), self.as_segment(&ids))?)
    }

    /// Writes this index to `path` as a segment file ([`Index::write_segment`]'s file) outside
    /// any folder's save: a writer whose folder is remote storage writes here, checks the file
    /// ([`omendex_store::verify_segment_file`]), then uploads it.
    pub fn write_segment_file(&self, path: impl AsRef<Path>) -> Result<SegmentEntry, Error> {
        let ids = self.segment_ids();
        Ok(omendex_store::write_segment_file(path.as_ref(), self.params(), self.as_segment(&ids))?)
    }

    /// Each node's id, as a segment file holds them. Part of the segmented folder's protocol
    /// (`omendex-segment` saves its segments with it); not for other callers.
    #[doc(hidden)]
    pub fn segment_ids(&self) -> Cow<'_, [VectorId]> {
        match self.labels().0 {
            Some(ids) => Cow::Borrowed(ids),
            None => Cow::Owned(self.ids().collect()),
        }
    }

    /// This index as a segment to store, under `ids` ([`Index::segment_ids`]). Part of the
    /// segmented folder's protocol; not for other callers.
    #[doc(hidden)]
    pub fn as_segment<'a>(&'a self, ids: &'a [VectorId]) -> SegmentRef<'a> {
        SegmentRef { graph: self.graph(), ids, deleted: self.labels().1, codes: self.trained_codes() }
    }
}

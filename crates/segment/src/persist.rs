//! Saving, loading and opening a [`SegmentedIndex`] through `omendex-store` (layout:
//! `docs/format.md`): a folder of segment files and a manifest.

use std::borrow::Cow;
use std::path::Path;

use omendex_graph::VectorId;
use omendex_index::{Error, Index};
use omendex_store::{SegmentRef, StoredSegments};

use crate::{SegmentParts, SegmentedIndex};

impl SegmentedIndex {
    /// Saves the index into folder `dir` (created if missing): one file per segment and a
    /// manifest, written last; a crash during the save leaves the folder opening as the
    /// previous save. Files of the previous save are removed once the new manifest is in place.
    pub fn save(&self, dir: impl AsRef<Path>) -> Result<(), Error> {
        // Segment files always hold their ids (a segment numbered 0.. keeps none in memory).
        let ids: Vec<Cow<'_, [VectorId]>> = self.segments().iter().map(Index::segment_ids).collect();
        let parts: Vec<SegmentRef<'_>> = self.segments().iter().zip(&ids).map(|(s, ids)| s.as_segment(ids)).collect();
        omendex_store::save_segments(dir.as_ref(), self.params(), &parts, Some(self.next_id()))?;
        Ok(())
    }

    /// Loads an index saved by [`SegmentedIndex::save`], verifying every file as
    /// [`Index::load`] does, that each segment file is the one the manifest names, and that no
    /// id names two live vectors.
    pub fn load(dir: impl AsRef<Path>) -> Result<Self, Error> {
        Self::from_stored(omendex_store::load_segments(dir.as_ref())?)
    }

    /// Opens an index saved by [`SegmentedIndex::save`] in place, each segment as
    /// [`Index::open_mmap`] opens a file: searchable at once, vectors read by the OS as
    /// searches touch them. Nothing may change the files while they are open: see
    /// [`Index::open_mmap`] for what happens when something does. A save into the folder
    /// removes the previous generation's files; an open index keeps reading them (a removed
    /// file stays readable while it is mapped).
    pub fn open_mmap(dir: impl AsRef<Path>) -> Result<Self, Error> {
        Self::from_stored(omendex_store::open_segments_mapped(dir.as_ref())?)
    }

    /// [`SegmentedIndex::open_mmap`] of the segments numbered `which` alone (each once, in that
    /// order; they are numbered from 0 in the index opened): a server holding part of a large
    /// index opens its share and answers for it, and the shares' answers merge with
    /// [`merge_top_k`](crate::merge_top_k) into the whole index's.
    pub fn open_mmap_part(dir: impl AsRef<Path>, which: &[usize]) -> Result<Self, Error> {
        Self::from_stored(omendex_store::open_segments_mapped_part(dir.as_ref(), which)?)
    }

    fn from_stored(stored: StoredSegments) -> Result<Self, Error> {
        let StoredSegments { params, dim, segments, next_id } = stored;
        let parts = segments
            .into_iter()
            .map(|s| SegmentParts { graph: s.graph, ids: s.ids, deleted: s.deleted, codes: s.codes })
            .collect();
        SegmentedIndex::from_segments(dim, params, parts, next_id)
    }
}

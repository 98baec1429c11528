//! The manifest: a folder's table of segment files (parameters, generation, per segment its
//! length and checksum), written last and read first.

use super::*;

/// The manifest's file name inside a segmented index's folder.
pub const MANIFEST: &str = "manifest.omen";
pub(super) const META_LEN: usize = 72;
pub(super) const ENTRY_LEN: usize = 32;

/// A manifest's contents: parameters (with m), dimension, save generation, and per segment its length
/// and its file's header checksum.
pub(super) struct Manifest {
    pub(super) params: Params,
    pub(super) dim: usize,
    pub(super) generation: u64,
    pub(super) entries: Vec<(u64, u64)>,
    // Checked against the segments' ids once they are read.
    pub(super) next_id: Option<VectorId>,
}

/// The largest manifest a folder can hold (the header, the settings and 32 bytes for each of
/// at most 65,535 segments come to about 2 MiB): a larger file is refused before it is read.
pub(super) const MAX_MANIFEST_LEN: u64 = 4 << 20;

pub(super) fn read_manifest(dir: &Path) -> Result<Manifest, StoreError> {
    let path = dir.join(MANIFEST);
    let (file, len) = open_regular(&path)?;
    if len > MAX_MANIFEST_LEN {
        return Err(StoreError::Malformed(format!(
            "{}: {len} bytes, more than any manifest holds ({MAX_MANIFEST_LEN})",
            path.display()
        )));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(MAX_MANIFEST_LEN).read_to_end(&mut bytes).map_err(|e| StoreError::io(&path, &e))?;
    let mut r = Reader::open(bytes.as_slice(), bytes.len() as u64)?;
    if r.info().kind != FileKind::Manifest {
        return Err(StoreError::WrongKind { expected: "manifest", found: r.info().kind.name() });
    }
    let meta = r.read_vec("meta", META_LEN)?;
    let f = Fields(&meta);
    let dim = f.size(0, "dim", 1..=MAX_DIM)?;
    let m = f.size(8, "m", 2..=MAX_M)?;
    let params = read_params(&f, 16, m)?;
    let count = f.size(48, "segment count", 1..=usize::from(u16::MAX))?;
    let generation = f.u64(56);
    let _total = f.u64(64);
    let table = r.read_vec("segments", count * ENTRY_LEN)?;
    let next_id = read_next_id(&mut r, 0)?;
    r.finish()?;
    let entries = table.chunks_exact(ENTRY_LEN).map(|e| (Fields(e).u64(0), Fields(e).u64(8))).collect();
    Ok(Manifest { params, dim, generation, entries, next_id })
}

/// The manifest's sections: parameters, dimension, m, counts, generation, the segment table
/// and the next id.
pub(super) fn manifest_sections(
    params: &Params,
    (dim, m): (usize, usize),
    generation: u64,
    entries: &[SegmentEntry],
    next_id: Option<VectorId>,
) -> Vec<Section<'static>> {
    let mut table = Vec::with_capacity(entries.len() * ENTRY_LEN);
    for e in entries {
        for v in [e.len, e.checksum, 0, 0] {
            table.extend_from_slice(&v.to_le_bytes());
        }
    }
    let total: u64 = entries.iter().map(|e| e.len).sum();
    let mut meta = Vec::with_capacity(META_LEN);
    meta.extend_from_slice(&(dim as u64).to_le_bytes());
    meta.extend_from_slice(&(m as u64).to_le_bytes());
    put_params(params, &mut meta);
    for v in [entries.len() as u64, generation, total] {
        meta.extend_from_slice(&v.to_le_bytes());
    }
    debug_assert_eq!(meta.len(), META_LEN);
    let mut sections = vec![Section::bytes("meta", meta), Section::bytes("segments", table)];
    if let Some(next) = next_id {
        sections.push(Section::bytes(NEXT_ID, next.0.to_le_bytes().to_vec()));
    }
    sections
}

/// Writes into `dir` (created if missing) the manifest of save `generation` whose segment
/// files are not there: a save into remote storage, whose writers verified their own files
/// ([`verify_segment_file`]) and reported `entries`. Nothing is checked against the files and
/// nothing is swept: the caller uploads this manifest after every segment file, and a load of
/// the assembled folder verifies everything ([`load_segments`]). Prefer
/// [`SegmentsBuild::commit`] wherever the files can be read.
pub fn write_manifest_for_remote(
    dir: &Path,
    params: &Params,
    dim: usize,
    generation: u64,
    entries: &[SegmentEntry],
    next_id: Option<VectorId>,
) -> Result<(), StoreError> {
    check_entry_count(entries)?;
    if !(1..=MAX_DIM).contains(&dim) {
        return Err(StoreError::Malformed(format!("dimension {dim} is out of range")));
    }
    make_dir(dir)?;
    let _lock = FolderLock::for_save(dir)?;
    let sections = manifest_sections(params, (dim, params.m), generation, entries, next_id);
    write_file(&dir.join(MANIFEST), FileKind::Manifest, sections)?;
    Ok(())
}

/// A manifest names 1 to 65,535 segments.
pub(super) fn check_entry_count(entries: &[SegmentEntry]) -> Result<(), StoreError> {
    if entries.is_empty() || entries.len() > usize::from(u16::MAX) {
        return Err(StoreError::Malformed(format!("an index has 1..=65535 segments, not {}", entries.len())));
    }
    Ok(())
}

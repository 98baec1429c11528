//! The names of a segmented folder's files: segment files, build markers, temporaries, and
//! which of them a sweep may remove.

use super::*;

/// The save generation and segment number named by a segment file's name
/// (`segment-<generation, 16 hex digits>-<number, 5 digits>.omen`, as [`segment_file_name`]
/// writes it); `None` for any other name.
pub fn segment_of(name: &str) -> Option<(u64, usize)> {
    let rest = name.strip_prefix("segment-")?.strip_suffix(".omen")?;
    let (generation, number) = rest.split_once('-')?;
    let hex = |s: &str| s.len() == 16 && s.bytes().all(|b| b.is_ascii_hexdigit());
    let digits = |s: &str| s.len() == 5 && s.bytes().all(|b| b.is_ascii_digit());
    if !(hex(generation) && digits(number)) {
        return None;
    }
    Some((u64::from_str_radix(generation, 16).ok()?, number.parse().ok()?))
}

/// The file name of segment `index` of save `generation`.
pub fn segment_file_name(generation: u64, index: usize) -> String {
    format!("segment-{generation:016x}-{index:05}.omen")
}

/// The file name of the marker of save `generation` begun by [`begin_segments`] and not yet
/// ended: while it is there, writes into the generation are accepted, and while its save is
/// alive (the process that began it holds a lock on it) no other save removes the
/// generation's files.
pub fn build_marker_name(generation: u64) -> String {
    format!("build-{generation:016x}.lock")
}

/// The generation a build marker's name stands for.
pub(super) fn marker_of(name: &str) -> Option<u64> {
    let hex = name.strip_prefix("build-")?.strip_suffix(".lock")?;
    (hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then(|| u64::from_str_radix(hex, 16).ok())?
}

/// The generation a file of a segmented index's folder belongs to: a segment file's, a build marker's, or
/// that of the file a temporary file was to become.
pub fn generation_named(name: &str) -> Option<u64> {
    let name = temporary_target(name).unwrap_or(name);
    segment_of(name).map(|(g, _)| g).or_else(|| marker_of(name))
}

/// The name of the file a temporary file `name` was to become (every omendex file is written
/// as `.<name>.<process>.<counter>.tmp` beside its target, then renamed); `None` for any
/// other name.
pub fn temporary_target(name: &str) -> Option<&str> {
    let inner = name.strip_prefix('.')?.strip_suffix(".tmp")?;
    let (rest, counter) = inner.rsplit_once('.')?;
    let (target, process) = rest.rsplit_once('.')?;
    let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (numeric(counter) && numeric(process) && !target.is_empty()).then_some(target)
}

/// Whether the file `name` in a segmented index's folder is garbage once the manifest of save
/// `generation` with `count` segments is in place: a segment file of another save (or
/// numbered past `count`), the marker of another save, or the temporary file of a segment,
/// marker or manifest whose save never finished; but never a file of a generation in `keep`
/// (saves still being written). What a commit removes ([`SegmentsBuild::commit`],
/// [`save_segments`]); exposed so that a caller sweeping remote storage applies the same rule.
pub fn is_garbage_after(name: &str, generation: u64, count: usize, keep: &[u64]) -> bool {
    if generation_named(name).is_some_and(|g| keep.contains(&g)) {
        return false;
    }
    let stale = segment_of(name).is_some_and(|(g, i)| g != generation || i >= count);
    let marker = marker_of(name).is_some_and(|g| g != generation);
    let temporary =
        temporary_target(name).is_some_and(|t| t == MANIFEST || segment_of(t).is_some() || marker_of(t).is_some());
    stale || marker || temporary
}

//! The optional sections that end a graph file: the caller's ids, the deleted bitset and the
//! next id (format version 2).

use super::*;

/// The tag of the optional section holding the next id (format version 2).
pub(crate) const NEXT_ID: &str = "nextid";

/// Reads the optional `nextid` section: `None` when the next section is another one.
/// `at_least` is the lowest value that keeps every id in the file unused.
pub(crate) fn read_next_id<R: Read>(r: &mut Reader<R>, at_least: u64) -> Result<Option<VectorId>, StoreError> {
    if r.peek().is_none_or(|s| s.tag != NEXT_ID) {
        return Ok(None);
    }
    let next = Fields(&r.read_vec(NEXT_ID, 8)?).u64(0);
    if next < at_least {
        return Err(StoreError::Malformed(format!("next id {next} is not above every id in the index ({at_least})")));
    }
    Ok(Some(VectorId(next)))
}

/// The optional sections that end a graph file.
pub(super) struct StoredLabels {
    pub(super) ids: Option<Vec<VectorId>>,
    pub(super) deleted: Option<Vec<u64>>,
    pub(super) next_id: Option<VectorId>,
}

/// Reads the optional `ids`, `deleted` and `nextid` sections that end a graph file of `n` nodes.
pub(super) fn read_labels<R: Read>(r: &mut Reader<R>, n: usize) -> Result<StoredLabels, StoreError> {
    let ids = match r.peek() {
        Some(s) if s.tag == "ids" => {
            let bytes = r.read_vec("ids", mul(&[n, 8], "ids")?)?;
            let ids: Vec<VectorId> =
                bytes.chunks_exact(8).map(|c| VectorId(u64::from_le_bytes(c.try_into().expect("8 bytes")))).collect();
            Some(ids)
        }
        _ => None,
    };
    let deleted = match r.peek() {
        Some(s) if s.tag == "deleted" => {
            let words = n.div_ceil(64);
            let bytes = r.read_vec("deleted", mul(&[words, 8], "deleted")?)?;
            let bits: Vec<u64> =
                bytes.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes"))).collect();
            if !n.is_multiple_of(64) && bits.last().is_some_and(|&w| w >> (n % 64) != 0) {
                return Err(StoreError::Malformed("deleted bits past the last node".into()));
            }
            Some(bits)
        }
        _ => None,
    };
    let used = ids.as_ref().map_or(n as u64, |ids| ids.iter().map(|id| id.0.saturating_add(1)).max().unwrap_or(0));
    let next_id = read_next_id(r, used)?;
    r.finish()?;
    if let Some(ids) = &ids {
        // A deleted node keeps its id, which may name a live node added later; no two live
        // nodes share one.
        let is_live = |i: usize| deleted.as_ref().is_none_or(|d| d[i / 64] >> (i % 64) & 1 == 0);
        let mut live: Vec<VectorId> = ids.iter().enumerate().filter(|&(i, _)| is_live(i)).map(|(_, &id)| id).collect();
        live.sort_unstable();
        if let Some(w) = live.windows(2).find(|w| w[0] == w[1]) {
            return Err(StoreError::Malformed(format!("id {} names two live nodes", w[0])));
        }
    }
    Ok(StoredLabels { ids, deleted, next_id })
}

//! The structural checker: every rule of [`crate::InvariantViolation`] in one pass.

use crate::{HnswGraph, InvariantViolation, Layer, NodeId};

/// Rows up to this long are checked for repeats by comparing each link with the ones before it
/// (at most 2,016 comparisons, faster than any table at HNSW's usual m); longer rows (m above
/// 32) through a table stamped per row, so the check stays linear in the links: O(nodes +
/// links) time, plus one `u64` per node once a long row is seen.
const SHORT_ROW: usize = 64;

pub(crate) fn check(g: &HnswGraph) -> Result<(), InvariantViolation> {
    let len = g.len();
    let tops = g.tops();

    // Hierarchy: the entry point.
    let Some(max_top) = tops.iter().copied().max() else {
        return match g.entry_point() {
            None => Ok(()),
            entry => Err(InvariantViolation::BadEntryPoint { entry, len }),
        };
    };
    let entry = match g.entry_point() {
        Some(e) if e.idx() < len => e,
        entry => return Err(InvariantViolation::BadEntryPoint { entry, len }),
    };
    if tops[entry.idx()] != max_top {
        return Err(InvariantViolation::EntryPointNotOnTopLayer { entry, entry_top: tops[entry.idx()], top: max_top });
    }

    // Hierarchy: a node on layer l has a list on every layer below l.
    let allocated = g.allocated_upper_rows();
    for (node_idx, (&top, &rows)) in tops.iter().zip(&allocated).enumerate() {
        if top.idx() > rows {
            return Err(InvariantViolation::MissingLayer {
                node: NodeId(node_idx as u32),
                top,
                layer: Layer(rows as u8 + 1),
            });
        }
    }

    // Links. `seen[t]` holds the number of the last long row that linked to t.
    let mut seen: Vec<u64> = Vec::new();
    let mut row_number = 0u64;
    for (node_idx, &top) in tops.iter().enumerate() {
        let node = NodeId(node_idx as u32);
        for layer in Layer::descend_from(top) {
            let stored = g.raw_len(node, layer).expect("rows checked above");
            let max = g.cap(layer);
            if stored > max {
                return Err(InvariantViolation::TooManyNeighbors { node, layer, len: stored, max });
            }
            let row = g.raw_ids(node, layer).expect("rows checked above");
            let ids = &row[..stored];
            row_number += 1;
            if stored > SHORT_ROW && seen.is_empty() {
                seen = vec![0; len];
            }
            for (i, &raw) in ids.iter().enumerate() {
                let target = NodeId(raw);
                if target.idx() >= len {
                    return Err(InvariantViolation::LinkOutOfRange { node, layer, target, len });
                }
                if target == node {
                    return Err(InvariantViolation::SelfLink { node, layer });
                }
                let repeated = if stored > SHORT_ROW {
                    std::mem::replace(&mut seen[target.idx()], row_number) == row_number
                } else {
                    ids[..i].contains(&raw)
                };
                if repeated {
                    return Err(InvariantViolation::DuplicateLink { node, layer, target });
                }
                if tops[target.idx()] < layer {
                    return Err(InvariantViolation::TargetAbsentFromLayer { node, layer, target });
                }
            }
        }
    }
    Ok(())
}

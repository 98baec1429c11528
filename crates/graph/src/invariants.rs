//! The structural checker: every rule of [`crate::InvariantViolation`] in one pass.

use crate::{HnswGraph, InvariantViolation, Layer, NodeId};

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

    // Links.
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
            for (i, &raw) in ids.iter().enumerate() {
                let target = NodeId(raw);
                if target.idx() >= len {
                    return Err(InvariantViolation::LinkOutOfRange { node, layer, target, len });
                }
                if target == node {
                    return Err(InvariantViolation::SelfLink { node, layer });
                }
                if ids[..i].contains(&raw) {
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

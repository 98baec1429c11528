//! Each invariant rule: a valid graph passes, and corrupting it yields exactly that violation.

use omendex_graph::{GraphError, GraphStats, HnswGraph, InvariantViolation, Layer, NodeId};
use proptest::prelude::*;

/// Five nodes: n0 and n2 on layer 1 (n0 the entry point), the rest on layer 0 only; m = 2.
fn valid() -> HnswGraph {
    let mut g = HnswGraph::new(3, 2).unwrap();
    let tops = [1, 0, 1, 0, 0];
    for (i, t) in tops.into_iter().enumerate() {
        g.push_node(&[i as f32, 0.0, 1.0], Layer(t)).unwrap();
    }
    let n = |i| NodeId(i);
    g.set_neighbors(n(0), Layer(0), &[n(1), n(2), n(3)]).unwrap();
    g.set_neighbors(n(1), Layer(0), &[n(0), n(2)]).unwrap();
    g.set_neighbors(n(2), Layer(0), &[n(1), n(0), n(4)]).unwrap();
    g.set_neighbors(n(3), Layer(0), &[n(0), n(4)]).unwrap();
    g.set_neighbors(n(4), Layer(0), &[n(3), n(2)]).unwrap();
    g.set_neighbors(n(0), Layer(1), &[n(2)]).unwrap();
    g.set_neighbors(n(2), Layer(1), &[n(0)]).unwrap();
    g
}

#[test]
fn valid_graph_passes() {
    let g = valid();
    assert_eq!(g.check_invariants(), Ok(()));
    assert_eq!(g.entry_point(), Some(NodeId(0)));
    assert_eq!(g.top_layer(), Some(Layer(1)));
    assert_eq!(g.neighbors(NodeId(3), Layer(1)), &[] as &[NodeId]);
}

#[test]
fn empty_graph_passes_and_has_no_entry() {
    let g = HnswGraph::new(4, 16).unwrap();
    assert_eq!(g.check_invariants(), Ok(()));
    assert_eq!(g.entry_point(), None);
    assert_eq!(GraphStats::measure(&g).layers.len(), 0);
}

#[test]
fn link_out_of_range_is_caught() {
    let mut g = valid();
    g.raw_set_row(NodeId(1), Layer(0), 2, &[0, 9]);
    assert_eq!(
        g.check_invariants(),
        Err(InvariantViolation::LinkOutOfRange { node: NodeId(1), layer: Layer(0), target: NodeId(9), len: 5 })
    );
}

#[test]
fn self_link_is_caught() {
    let mut g = valid();
    g.raw_set_row(NodeId(3), Layer(0), 2, &[0, 3]);
    assert_eq!(g.check_invariants(), Err(InvariantViolation::SelfLink { node: NodeId(3), layer: Layer(0) }));
}

#[test]
fn duplicate_link_is_caught() {
    let mut g = valid();
    g.raw_set_row(NodeId(4), Layer(0), 3, &[3, 2, 3]);
    assert_eq!(
        g.check_invariants(),
        Err(InvariantViolation::DuplicateLink { node: NodeId(4), layer: Layer(0), target: NodeId(3) })
    );
}

#[test]
fn duplicate_link_in_a_long_row_is_caught_in_linear_time() {
    // m = 512: layer 0 rows of up to 1,024 links, past the short-row scan, so the stamped
    // table checks them; every node links to every other, and one repeat is found wherever it is.
    let n = 300u32;
    let mut g = HnswGraph::new(2, 512).unwrap();
    for i in 0..n {
        g.push_node(&[i as f32, 0.0], Layer(0)).unwrap();
    }
    for u in 0..n {
        let all: Vec<NodeId> = (0..n).filter(|&v| v != u).map(NodeId).collect();
        g.set_neighbors(NodeId(u), Layer(0), &all).unwrap();
    }
    assert_eq!(g.check_invariants(), Ok(()), "the same targets in every row are no repeat");
    let mut ids: Vec<u32> = (0..n).filter(|&v| v != 7).collect();
    ids[250] = ids[3];
    g.raw_set_row(NodeId(7), Layer(0), ids.len() as u32, &ids);
    assert_eq!(
        g.check_invariants(),
        Err(InvariantViolation::DuplicateLink { node: NodeId(7), layer: Layer(0), target: NodeId(3) })
    );
}

#[test]
fn too_many_neighbors_is_caught() {
    let mut g = valid();
    // Layer 1 holds at most m = 2; the row has room for exactly 2 ids, so only the count lies.
    g.raw_set_row(NodeId(0), Layer(1), 3, &[2]);
    assert_eq!(
        g.check_invariants(),
        Err(InvariantViolation::TooManyNeighbors { node: NodeId(0), layer: Layer(1), len: 3, max: 2 })
    );
}

#[test]
fn target_absent_from_layer_is_caught() {
    let mut g = valid();
    g.raw_set_row(NodeId(2), Layer(1), 2, &[0, 4]);
    assert_eq!(
        g.check_invariants(),
        Err(InvariantViolation::TargetAbsentFromLayer { node: NodeId(2), layer: Layer(1), target: NodeId(4) })
    );
}

#[test]
fn entry_point_not_on_top_layer_is_caught() {
    let mut g = valid();
    g.raw_set_entry(Some(NodeId(3)));
    assert_eq!(
        g.check_invariants(),
        Err(InvariantViolation::EntryPointNotOnTopLayer { entry: NodeId(3), entry_top: Layer(0), top: Layer(1) })
    );
}

#[test]
fn missing_or_stray_entry_point_is_caught() {
    let mut g = valid();
    g.raw_set_entry(None);
    assert_eq!(g.check_invariants(), Err(InvariantViolation::BadEntryPoint { entry: None, len: 5 }));
    g.raw_set_entry(Some(NodeId(77)));
    assert_eq!(g.check_invariants(), Err(InvariantViolation::BadEntryPoint { entry: Some(NodeId(77)), len: 5 }));
    let mut e = HnswGraph::new(2, 2).unwrap();
    e.raw_set_entry(Some(NodeId(0)));
    assert_eq!(e.check_invariants(), Err(InvariantViolation::BadEntryPoint { entry: Some(NodeId(0)), len: 0 }));
}

#[test]
fn missing_layer_is_caught() {
    let mut g = valid();
    // n3 claims layer 1 but never had a list there; n0 claims layer 2 on top of its single upper row
    // (and n0 stays the entry point on the new top layer, so only the missing list is wrong).
    g.raw_set_top(NodeId(3), Layer(1));
    assert_eq!(
        g.check_invariants(),
        Err(InvariantViolation::MissingLayer { node: NodeId(3), top: Layer(1), layer: Layer(1) })
    );
    let mut g = valid();
    g.raw_set_top(NodeId(0), Layer(2));
    assert_eq!(
        g.check_invariants(),
        Err(InvariantViolation::MissingLayer { node: NodeId(0), top: Layer(2), layer: Layer(2) })
    );
}

#[test]
fn set_neighbors_refuses_every_bad_list_and_changes_nothing() {
    let g = valid();
    let before = g.neighbors(NodeId(1), Layer(0)).to_vec();
    let n = |i| NodeId(i);
    let cases: Vec<(NodeId, Layer, Vec<NodeId>, GraphError)> = vec![
        (
            n(1),
            Layer(0),
            vec![n(7)],
            InvariantViolation::LinkOutOfRange { node: n(1), layer: Layer(0), target: n(7), len: 5 }.into(),
        ),
        (n(1), Layer(0), vec![n(1)], InvariantViolation::SelfLink { node: n(1), layer: Layer(0) }.into()),
        (
            n(1),
            Layer(0),
            vec![n(2), n(2)],
            InvariantViolation::DuplicateLink { node: n(1), layer: Layer(0), target: n(2) }.into(),
        ),
        (
            n(1),
            Layer(0),
            vec![n(0), n(2), n(3), n(4), n(0)],
            InvariantViolation::TooManyNeighbors { node: n(1), layer: Layer(0), len: 5, max: 4 }.into(),
        ),
        (
            n(0),
            Layer(1),
            vec![n(1)],
            InvariantViolation::TargetAbsentFromLayer { node: n(0), layer: Layer(1), target: n(1) }.into(),
        ),
        (n(1), Layer(1), vec![n(0)], GraphError::NodeAbsentFromLayer { node: n(1), layer: Layer(1), top: Layer(0) }),
        (n(9), Layer(0), vec![n(0)], GraphError::UnknownNode { node: n(9), len: 5 }),
    ];
    for (node, layer, list, want) in cases {
        assert_eq!(g.set_neighbors(node, layer, &list), Err(want));
    }
    assert_eq!(g.neighbors(NodeId(1), Layer(0)), before.as_slice());
    assert_eq!(g.check_invariants(), Ok(()));
}

#[test]
fn add_neighbor_stops_at_the_cap() {
    let mut g = valid();
    // Two more nodes, so n1 can be offered a fifth distinct target; layer 0 caps at 2m = 4.
    let n5 = g.push_node(&[5.0, 0.0, 1.0], Layer(0)).unwrap();
    g.set_neighbors(n5, Layer(0), &[NodeId(4)]).unwrap();
    let n = NodeId;
    assert_eq!(g.neighbors(n(1), Layer(0)), &[n(0), n(2)]);
    assert_eq!(g.add_neighbor(n(1), Layer(0), n(3)), Ok(true));
    assert_eq!(g.add_neighbor(n(1), Layer(0), n(4)), Ok(true));
    assert_eq!(
        g.add_neighbor(n(1), Layer(0), n(4)),
        Err(InvariantViolation::DuplicateLink { node: n(1), layer: Layer(0), target: n(4) }.into())
    );
    assert_eq!(g.add_neighbor(n(1), Layer(0), n5), Ok(false), "the list is full");
    assert_eq!(g.neighbors(n(1), Layer(0)), &[n(0), n(2), n(3), n(4)]);
    assert_eq!(
        g.add_neighbor(n(0), Layer(1), n(1)),
        Err(InvariantViolation::TargetAbsentFromLayer { node: n(0), layer: Layer(1), target: n(1) }.into())
    );
    assert_eq!(g.check_invariants(), Ok(()));
}

#[test]
fn stats_survive_a_corrupt_graph_and_count_nodes_without_links() {
    let mut g = valid();
    g.raw_set_row(NodeId(1), Layer(0), 2, &[0, 99]);
    g.raw_set_entry(Some(NodeId(42)));
    let s = GraphStats::measure(&g);
    assert_eq!(s.bottom().unwrap().n_links, 11, "the out-of-range link is skipped");
    assert_eq!(s.bottom().unwrap().unreachable, 5, "no valid entry point reaches nothing");
    let g = valid();
    g.set_neighbors(NodeId(3), Layer(0), &[]).unwrap();
    let s = GraphStats::measure(&g);
    assert_eq!(s.bottom().unwrap().without_links, 1);
    assert_eq!(s.without_links(), 1);
}

#[test]
fn bad_construction_and_push_are_typed_errors() {
    assert_eq!(HnswGraph::new(0, 16).unwrap_err(), GraphError::ZeroDimension);
    assert!(matches!(HnswGraph::new(8, 1), Err(GraphError::BadM { m: 1, .. })));
    let mut g = HnswGraph::new(3, 4).unwrap();
    assert_eq!(g.push_node(&[1.0, 2.0], Layer(0)), Err(GraphError::DimensionMismatch { expected: 3, got: 2 }));
    assert!(matches!(g.push_node(&[1.0; 3], Layer(200)), Err(GraphError::LayerTooHigh { .. })));
    assert!(g.is_empty());
}

#[test]
fn vectors_are_aligned_and_padded() {
    let g = valid();
    assert_eq!(g.stride(), 16);
    assert_eq!(g.vector(NodeId(2)), &[2.0, 0.0, 1.0]);
    assert_eq!(g.vector_data().as_ptr() as usize % 64, 0);
    assert!(g.vector_data()[2 * 16 + 3..3 * 16].iter().all(|&x| x == 0.0));
}

#[test]
fn stats_measure_reachability_reciprocity_and_degrees() {
    let g = valid();
    let s = GraphStats::measure(&g);
    assert_eq!(s.layers.len(), 2);
    let l1 = &s.layers[0];
    assert_eq!((l1.layer, l1.n_nodes, l1.n_links, l1.unreachable), (Layer(1), 2, 2, 0));
    assert_eq!(l1.reciprocal_share, 1.0);
    let l0 = s.bottom().unwrap();
    assert_eq!((l0.n_nodes, l0.n_links, l0.unreachable), (5, 12, 0));
    // 0<->1, 0<->2, 1<->2, 2<->4, 3<->4 are mutual (10 links); 0->3 and 3->0 too: all 12.
    assert_eq!(l0.reciprocal_share, 1.0);
    assert_eq!((l0.out_degree.min, l0.out_degree.max), (2, 3));
    // Cut n4 off: nobody links to it any more.
    g.set_neighbors(NodeId(2), Layer(0), &[NodeId(1), NodeId(0)]).unwrap();
    g.set_neighbors(NodeId(3), Layer(0), &[NodeId(0)]).unwrap();
    let l0 = GraphStats::measure(&g).layers[1].clone();
    assert_eq!(l0.unreachable, 1);
    assert_eq!(l0.in_degree.min, 0);
    assert!(l0.reciprocal_share < 1.0);
}

proptest! {
    /// Random pushes and list writes: whatever `set_neighbors` accepts keeps the graph valid.
    #[test]
    fn accepted_writes_keep_the_graph_valid(
        tops in proptest::collection::vec(0u8..4, 1..40),
        writes in proptest::collection::vec((0usize..40, 0u8..4, proptest::collection::vec(0u32..45, 0..10)), 0..80),
    ) {
        let mut g = HnswGraph::new(2, 3).unwrap();
        for (i, &t) in tops.iter().enumerate() {
            g.push_node(&[i as f32, 1.0], Layer(t)).unwrap();
            prop_assert_eq!(g.check_invariants(), Ok(()));
        }
        for (node, layer, ids) in writes {
            let ids: Vec<NodeId> = ids.into_iter().map(NodeId).collect();
            let _ = g.set_neighbors(NodeId(node as u32), Layer(layer), &ids);
            prop_assert_eq!(g.check_invariants(), Ok(()));
        }
    }
}

mod parts {
    use omendex_graph::{GraphError, GraphParts, HnswGraph, InvariantViolation, Layer, NodeId, VectorRows};

    /// The parts of `super::valid()`, copied out through the public accessors.
    fn parts() -> GraphParts {
        let g = super::valid();
        let mut vectors = VectorRows::zeroed(g.vector_data().len()).unwrap();
        let bytes: Vec<u8> = g.vector_data().iter().flat_map(|v| v.to_le_bytes()).collect();
        vectors.as_bytes_mut().copy_from_slice(&bytes);
        vectors.from_le_in_place();
        GraphParts {
            dim: g.dim(),
            m: g.m(),
            tops: g.tops().to_vec(),
            vectors,
            layer0: g.layer0_words().collect(),
            upper: g.upper_words().collect(),
            entry: g.entry_point(),
        }
    }

    fn bad_parts(p: GraphParts) -> String {
        match HnswGraph::from_parts(p) {
            Err(GraphError::BadParts(what)) => what,
            other => panic!("expected BadParts, got {other:?}"),
        }
    }

    #[test]
    fn parts_of_a_valid_graph_give_it_back() {
        let g = super::valid();
        let back = HnswGraph::from_parts(parts()).unwrap();
        assert_eq!(back.len(), g.len());
        for node in 0..g.len() as u32 {
            for layer in [Layer(0), Layer(1)] {
                assert_eq!(back.neighbors(NodeId(node), layer), g.neighbors(NodeId(node), layer).to_vec());
            }
            assert_eq!(back.vector(NodeId(node)), g.vector(NodeId(node)));
        }
        assert_eq!(back.entry_point(), g.entry_point());
    }

    #[test]
    fn each_inconsistency_is_refused() {
        let mut p = parts();
        p.tops[4] = Layer(64);
        assert!(bad_parts(p).contains("top layer 64"));

        let mut p = parts();
        p.layer0.pop();
        assert!(bad_parts(p).contains("layer-0 words"));

        let mut p = parts();
        p.upper.push(0);
        assert!(bad_parts(p).contains("upper-layer words"));

        let mut p = parts();
        p.vectors = VectorRows::zeroed(16).unwrap();
        assert!(bad_parts(p).contains("vector values"));

        let mut p = parts();
        p.vectors.as_bytes_mut()[4..8].copy_from_slice(&f32::NAN.to_le_bytes());
        assert!(bad_parts(p).contains("vector 0, component 1"));

        let mut p = parts();
        p.vectors.as_bytes_mut()[16 + 12..16 + 16].copy_from_slice(&1.0f32.to_le_bytes());
        assert!(bad_parts(p).contains("non-zero padding"));
    }

    #[test]
    fn parts_that_break_a_link_rule_are_refused() {
        let mut p = parts();
        // Node 1's layer-0 row: [len, ids ..] at 1 * (1 + m0); make it link to itself.
        p.layer0[5 + 1] = 1;
        assert_eq!(
            HnswGraph::from_parts(p).unwrap_err(),
            GraphError::Invariant(InvariantViolation::SelfLink { node: NodeId(1), layer: Layer(0) })
        );

        let mut p = parts();
        p.entry = Some(NodeId(1));
        assert!(matches!(
            HnswGraph::from_parts(p),
            Err(GraphError::Invariant(InvariantViolation::EntryPointNotOnTopLayer { .. }))
        ));
    }
}

#[test]
fn marks_last_until_the_list_changes_any_other_way() {
    let g = valid();
    let (a, b, c) = (NodeId(0), NodeId(1), NodeId(2));
    let mut links = g.lock(a).unwrap();
    assert!(!links.is_marked(Layer(0)), "a new graph has no mark");
    let list = links.neighbors(Layer(0)).to_vec();
    links.set_marked(Layer(0), &list).unwrap();
    assert!(links.is_marked(Layer(0)) && !links.is_marked(Layer(1)));
    drop(links);
    assert!(g.lock(a).unwrap().is_marked(Layer(0)), "kept while the lock is released");
    // A refused write changes nothing, the mark included.
    assert!(g.lock(a).unwrap().set(Layer(0), &[a]).is_err());
    assert!(g.lock(a).unwrap().is_marked(Layer(0)));
    // Any other write clears it.
    g.set_neighbors(a, Layer(0), &list).unwrap();
    assert!(!g.lock(a).unwrap().is_marked(Layer(0)), "set clears");
    g.lock(a).unwrap().set_marked(Layer(0), &[]).unwrap();
    assert!(g.add_neighbor(a, Layer(0), b).unwrap());
    assert!(!g.lock(a).unwrap().is_marked(Layer(0)), "add clears");
    // Marks are per node and per layer.
    g.lock(a).unwrap().set_marked(Layer(0), &[b]).unwrap();
    assert!(!g.lock(c).unwrap().is_marked(Layer(0)));
}

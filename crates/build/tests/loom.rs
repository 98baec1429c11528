//! Model checks of the builder's entry-point promotion with loom: the builder's own code over
//! the graph's top lock, atomics and node locks compiled against loom's models, every
//! interleaving of two inserting threads explored (preemptions bounded).
//!
//! `RUSTFLAGS="--cfg loom" cargo test -p omendex-build --test loom --release`
#![cfg(loom)]

use loom::sync::Arc;
use loom::thread;
use omendex_build::{HnswBuilder, Insertion, Linking};
use omendex_distance::Metric;
use omendex_graph::{HnswGraph, Layer, NodeId};
use omendex_params::Params;

/// A graph of one linked node (the entry point, on layer 0) and two detached nodes with new
/// top layers 2 and 3.
fn start(b: &HnswBuilder) -> (HnswGraph, NodeId, NodeId) {
    let mut g = b.new_graph(1).unwrap();
    let base = g.push_detached(&[0.0], Layer(0)).unwrap();
    b.link_batch(&g, base.0..base.0 + 1, Linking::new(Insertion::InOrder)).unwrap();
    let x = g.push_detached(&[1.0], Layer(2)).unwrap();
    let y = g.push_detached(&[2.0], Layer(3)).unwrap();
    (g, x, y)
}

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut m = loom::model::Builder::new();
    m.preemption_bound = Some(3);
    m.check(f);
}

/// Two nodes that both raise the top layer, linked at once: the top lock makes one wait for the
/// other, so the second links to the first on the layers they share (1 and 2) and the higher
/// becomes the entry point. Without the lock both would see only the old entry (layer 0), link
/// on layer 0 alone, and leave layers 1 and 2 as two nodes with no link between them.
#[test]
fn two_new_top_layers_are_linked_to_each_other() {
    model(|| {
        let b = Arc::new(HnswBuilder::new(Params::new(Metric::L2).m(2).ef_construction(4).seed(1)).unwrap());
        let (g, x, y) = start(&b);
        let g = Arc::new(g);
        let handles: Vec<_> = [x, y]
            .into_iter()
            .map(|node| {
                let (b, g) = (Arc::clone(&b), Arc::clone(&g));
                thread::spawn(move || b.link_batch(&g, node.0..node.0 + 1, Linking::new(Insertion::InOrder)).unwrap())
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(g.entry_and_top(), Some((y, Layer(3))));
        assert_eq!(g.check_invariants(), Ok(()));
        for l in [Layer(1), Layer(2)] {
            assert!(
                g.neighbors(x, l).contains(y) && g.neighbors(y, l).contains(x),
                "layer {l}: {:?} {:?}",
                g.neighbors(x, l),
                g.neighbors(y, l)
            );
        }
    });
}

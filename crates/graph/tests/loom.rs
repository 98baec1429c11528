//! Model checks of the graph's locking core with loom: every interleaving of a few threads
//! (bounded), on the graph's own code compiled against loom's atomics and mutex.
//!
//! `RUSTFLAGS="--cfg loom" cargo test -p omendex-graph --test loom --release`
#![cfg(loom)]

use loom::sync::Arc;
use loom::thread;
use omendex_graph::{HnswGraph, Layer, NodeId};

fn graph(n: u32, top: impl Fn(u32) -> u8) -> HnswGraph {
    let mut g = HnswGraph::new(1, 2).unwrap();
    for i in 0..n {
        g.push_detached(&[i as f32], Layer(top(i))).unwrap();
    }
    g
}

/// A reader racing a rewrite sees the old length or the new one. Seeing the new length, it sees
/// every new id: the ids are stored before the length (Release) and read after it (Acquire).
/// Seeing the old length, it may see new ids in old slots (as the graph documents: a mix of the
/// old and new list, every id a node on the layer). Loom finds that interleaving: [n2].
#[test]
fn a_reader_that_sees_a_new_length_sees_the_whole_new_list() {
    loom::model(|| {
        let g = Arc::new(graph(4, |_| 0));
        g.set_neighbors(NodeId(0), Layer(0), &[NodeId(1)]).unwrap();
        let w = Arc::clone(&g);
        let new = [NodeId(2), NodeId(3), NodeId(1)];
        let writer = thread::spawn(move || {
            w.set_neighbors(NodeId(0), Layer(0), &new).unwrap();
        });
        let seen = g.neighbors(NodeId(0), Layer(0)).to_vec();
        match seen.len() {
            3 => assert_eq!(seen, new),
            1 => assert!(seen == [NodeId(1)] || seen == [NodeId(2)], "{seen:?}"),
            _ => panic!("a length never stored: {seen:?}"),
        }
        writer.join().unwrap();
        assert_eq!(g.neighbors(NodeId(0), Layer(0)), new);
    });
}

/// Two threads appending to one list under its lock: both links land, none is lost or
/// doubled, and a racing reader only ever sees a prefix of the final list.
#[test]
fn concurrent_appends_under_the_node_lock_are_not_lost() {
    loom::model(|| {
        let g = Arc::new(graph(3, |_| 0));
        let handles: Vec<_> = [NodeId(1), NodeId(2)]
            .into_iter()
            .map(|t| {
                let g = Arc::clone(&g);
                thread::spawn(move || assert!(g.add_neighbor(NodeId(0), Layer(0), t).unwrap()))
            })
            .collect();
        let seen = g.neighbors(NodeId(0), Layer(0)).to_vec();
        assert!(seen.len() <= 2 && seen.iter().all(|n| [NodeId(1), NodeId(2)].contains(n)), "{seen:?}");
        for h in handles {
            h.join().unwrap();
        }
        let mut fin = g.neighbors(NodeId(0), Layer(0)).to_vec();
        fin.sort();
        assert_eq!(fin, [NodeId(1), NodeId(2)]);
    });
}

/// Nodes promoted to entry point in parallel: the highest wins, whatever the order.
#[test]
fn racing_promotions_leave_the_highest_node_as_entry() {
    loom::model(|| {
        let g = Arc::new(graph(3, |i| [1, 3, 2][i as usize]));
        let handles: Vec<_> = (0..3)
            .map(|i| {
                let g = Arc::clone(&g);
                thread::spawn(move || {
                    g.promote_entry(NodeId(i));
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(g.entry_and_top(), Some((NodeId(1), Layer(3))));
    });
}

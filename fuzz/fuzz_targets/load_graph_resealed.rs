//! Like `load_graph`, but first rewrites every checksum so the mutated bytes pass them: this
//! reaches the checks behind the checksums (header fields, section layout, meta values, graph
//! parts and invariants), which random mutations of a checksummed file almost never reach.
#![no_main]

use libfuzzer_sys::fuzz_target;

mod common;
use common::reseal;

fuzz_target!(|data: &[u8]| {
    let mut bytes = data.to_vec();
    reseal(&mut bytes);
    if let Ok(stored) = omendex_store::graph_from_bytes(&bytes) {
        let g = &stored.graph;
        assert!(g.check_invariants().is_ok());
        for node in 0..g.len() as u32 {
            let node = omendex_graph::NodeId(node);
            for layer in (0..=g.node_top(node).0).map(omendex_graph::Layer) {
                for n in g.neighbors(node, layer).iter() {
                    assert!(n.idx() < g.len());
                }
            }
            assert_eq!(g.vector(node).len(), g.dim());
        }
    }
});

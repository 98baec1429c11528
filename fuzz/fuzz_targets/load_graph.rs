//! Any bytes given to the graph loader: a typed error or a valid graph, never a panic. A graph
//! that loads must pass its invariant check and answer a search.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(stored) = omendex_store::graph_from_bytes(data) {
        let g = &stored.graph;
        assert!(g.check_invariants().is_ok());
        if let Some(entry) = g.entry_point() {
            for layer in omen_graph_layers(g.node_top(entry).0) {
                let _ = g.neighbors(entry, layer).to_vec();
            }
        }
    }
});

fn omen_graph_layers(top: u8) -> impl Iterator<Item = omendex_graph::Layer> {
    (0..=top).rev().map(omendex_graph::Layer)
}

//! The graph store on its own: reading every layer-0 list (what a search does, lock-free),
//! rewriting a list under its node's lock (what an insertion's reverse link does), and the
//! full invariant check, on a 20,000-node graph with random links (no distances: this crate
//! never computes one).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use omendex_graph::{HnswGraph, Layer, NodeId};
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use std::hint::black_box;

const N: usize = 20_000;
const DIM: usize = 16;
const M: usize = 16;
const SEED: u64 = 42;

/// `N` nodes with top layers drawn as HNSW draws them (1 in `M` climbs each layer) and full
/// lists of random distinct targets on every layer.
fn random_graph() -> HnswGraph {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(SEED);
    let mut g = HnswGraph::new(DIM, M).unwrap();
    for _ in 0..N {
        let mut top = 0u8;
        while top < 6 && rng.random_range(0..M) == 0 {
            top += 1;
        }
        let v: Vec<f32> = (0..DIM).map(|_| rng.random::<f32>()).collect();
        g.push_node(&v, Layer(top)).unwrap();
    }
    for layer in (0..=g.top_layer().unwrap().0).map(Layer) {
        let on: Vec<NodeId> = (0..N as u32).map(NodeId).filter(|&n| g.node_top(n) >= layer).collect();
        for &u in &on {
            let mut list: Vec<NodeId> = Vec::with_capacity(g.cap(layer));
            while list.len() < g.cap(layer).min(on.len() - 1) {
                let t = on[rng.random_range(0..on.len())];
                if t != u && !list.contains(&t) {
                    list.push(t);
                }
            }
            g.set_neighbors(u, layer, &list).unwrap();
        }
    }
    g
}

fn graph(c: &mut Criterion) {
    let g = random_graph();
    let mut group = c.benchmark_group(format!("graph/random-links-{N}"));
    group.throughput(Throughput::Elements(N as u64));
    group.bench_function("read_every_layer0_list", |b| {
        b.iter(|| {
            let mut sum = 0u64;
            for u in (0..N as u32).map(NodeId) {
                for v in g.neighbors(u, Layer::BOTTOM).iter() {
                    sum += u64::from(v.0);
                }
            }
            black_box(sum)
        })
    });
    // Each node's list rewritten with its own ids rotated by one: a full-length write under
    // the node's lock, as a pruned reverse link writes.
    let lists: Vec<Vec<NodeId>> = (0..N as u32).map(|u| g.neighbors(NodeId(u), Layer::BOTTOM).to_vec()).collect();
    group.bench_function("rewrite_every_layer0_list_under_its_lock", |b| {
        b.iter(|| {
            for (u, list) in lists.iter().enumerate() {
                let mut links = g.lock(NodeId(u as u32)).unwrap();
                let mut rotated = list.clone();
                rotated.rotate_left(1);
                links.set(Layer::BOTTOM, black_box(&rotated)).unwrap();
            }
        })
    });
    group.sample_size(20);
    group.bench_function("check_invariants", |b| b.iter(|| g.check_invariants().unwrap()));
    group.finish();
}

criterion_group!(benches, graph);
criterion_main!(benches);

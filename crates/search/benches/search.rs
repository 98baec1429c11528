//! HNSW beam search against brute force on the same vectors, in one group, so the speed-up
//! comes from one run. The graph is a brute-force k-NN graph (this crate never builds HNSW).

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use omendex_distance::{Distance, Metric};
use omendex_graph::{HnswGraph, Layer, NodeId};
use omendex_search::{AllNodes, Request, Route, Rows, SearchScratch, View, brute_force_knn, knn_search};
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use std::hint::black_box;

const N: usize = 5_000;
const DIM: usize = 128;
const M: usize = 16;
const K: usize = 10;
const SEED: u64 = 42;

fn knn_graph() -> HnswGraph {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(SEED);
    let mut g = HnswGraph::new(DIM, M).unwrap();
    for _ in 0..N {
        let v: Vec<f32> = (0..DIM).map(|_| rng.random::<f32>()).collect();
        g.push_node(&v, Layer(0)).unwrap();
    }
    let dist = Distance::new(Metric::L2);
    for i in 0..N {
        let node = NodeId(i as u32);
        let near = brute_force_knn(Rows::of_graph(&g), &dist, g.vector(node), 2 * M + 1);
        let ids: Vec<NodeId> = near.iter().map(|n| n.id).filter(|&id| id != node).take(2 * M).collect();
        g.set_neighbors(node, Layer(0), &ids).unwrap();
    }
    g
}

fn search(c: &mut Criterion) {
    let g = knn_graph();
    let dist = Distance::new(Metric::L2);
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(SEED + 1);
    let q: Vec<f32> = (0..DIM).map(|_| rng.random::<f32>()).collect();
    let mut scratch = SearchScratch::new();
    let mut group = c.benchmark_group(format!("knn/random-{DIM}-{N}"));
    for ef in [16, 64, 256] {
        group.bench_function(BenchmarkId::new("hnsw_layer0", ef), |b| {
            b.iter(|| {
                let request = Request::new(Metric::L2, g.dim(), black_box(&q), K, ef).unwrap();
                knn_search(View::new(&g, &dist, None), &request, &AllNodes, Route::Walk, &mut scratch)
            })
        });
    }
    group.bench_function("brute_force", |b| b.iter(|| brute_force_knn(Rows::of_graph(&g), &dist, black_box(&q), K)));
    group.finish();
}

criterion_group!(benches, search);
criterion_main!(benches);

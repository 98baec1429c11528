//! The file format on a 20,000-vector index (random-128, m 16): save (written beside the
//! target, fsynced, renamed), load (every checksum and invariant verified) and open_mmap (links
//! checked, vectors mapped, not read). The graph's links are drawn at random (the tests'
//! graphs): the format's cost does not depend on which nodes a list names.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use omendex_distance::Metric;
use omendex_params::{Params, Quantization};
use omendex_store::{Labels, load_graph, open_graph_mapped, save_graph};

#[path = "../tests/it/graphs.rs"]
mod graphs;

const N: usize = 20_000;
const DIM: usize = 128;
const SEED: u64 = 42;
const SETTINGS: Params = Params {
    metric: Metric::L2,
    m: 16,
    ef_construction: 200,
    ef_search: 64,
    seed: SEED,
    quantization: Quantization::None,
};

fn store(c: &mut Criterion) {
    let g = graphs::graph(N, DIM, 16, SEED);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("index.omen");
    save_graph(&path, &SETTINGS, &g, Labels::default()).unwrap();
    let bytes = std::fs::metadata(&path).unwrap().len();

    let mut group = c.benchmark_group(format!("store/random-{DIM}-{N}"));
    group.sample_size(20);
    group.throughput(Throughput::Bytes(bytes));
    group.bench_function("save_graph", |b| b.iter(|| save_graph(&path, &SETTINGS, &g, Labels::default()).unwrap()));
    group.bench_function("load_graph", |b| b.iter(|| load_graph(&path).unwrap()));
    group.bench_function("open_graph_mapped", |b| b.iter(|| open_graph_mapped(&path).unwrap()));
    group.finish();
}

criterion_group!(benches, store);
criterion_main!(benches);

//! HNSW construction: sequential at two ef_construction values, and the parallel bulk path on
//! 1 and 2 threads, in one group, so the ratios come from one run.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use omendex_build::{Insertion, build};
use omendex_distance::Metric;
use omendex_params::Params;
use omendex_search::Rows;
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

const N: usize = 2_000;
const DIM: usize = 128;
const M: usize = 16;
const SEED: u64 = 42;

fn builds(c: &mut Criterion) {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(SEED);
    let data: Vec<f32> = (0..N * DIM).map(|_| rng.random::<f32>()).collect();
    let mut group = c.benchmark_group(format!("build_sequential/random-{DIM}-{N}"));
    group.sample_size(10);
    group.throughput(Throughput::Elements(N as u64));
    for efc in [64, 200] {
        let params = Params::new(Metric::L2).m(M).ef_construction(efc).seed(SEED);
        group.bench_function(BenchmarkId::new("ef_construction", efc), |b| {
            b.iter(|| build(params, Rows::dense(&data, DIM), Insertion::InOrder).unwrap())
        });
    }
    let params = Params::new(Metric::L2).m(M).ef_construction(200).seed(SEED);
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        group.bench_function(BenchmarkId::new("parallel_efc200_threads", threads), |b| {
            b.iter(|| pool.install(|| build(params, Rows::dense(&data, DIM), Insertion::Parallel).unwrap()))
        });
    }
    group.finish();
}

criterion_group!(benches, builds);
criterion_main!(benches);

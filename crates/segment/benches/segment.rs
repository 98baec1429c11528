//! Segments of 20,000 random-128 vectors: the merged search over 1 and 4 segments (every
//! segment searched with the same beam, top-k merged), the sampled search over 4, and the
//! merge of 4 segments into one graph.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use omendex_distance::Metric;
use omendex_graph::VectorId;
use omendex_index::{Fanout, Query, SegmentPlan};
use omendex_params::Params;
use omendex_segment::SegmentedIndex;
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use std::hint::black_box;

const N: usize = 20_000;
const DIM: usize = 128;
const NQ: usize = 100;
const K: usize = 10;
const EF: usize = 64;
const SEED: u64 = 42;

fn segment(c: &mut Criterion) {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(SEED);
    let data: Vec<f32> = (0..N * DIM).map(|_| rng.random::<f32>()).collect();
    let queries: Vec<f32> = (0..NQ * DIM).map(|_| rng.random::<f32>()).collect();
    let ids: Vec<VectorId> = (0..N as u64).map(VectorId).collect();
    let params = Params::new(Metric::L2).m(16).ef_construction(100).seed(SEED);
    let build = |s: usize| SegmentedIndex::build_with_ids(DIM, params, &data, &ids, SegmentPlan::Count(s)).unwrap();
    let (one, four) = (build(1), build(4));

    let mut group = c.benchmark_group(format!("segments/random-{DIM}-{N}"));
    group.throughput(Throughput::Elements(NQ as u64));
    for (s, index) in [(1, &one), (4, &four)] {
        group.bench_function(BenchmarkId::new("search_ef64", s), |b| {
            b.iter(|| {
                for q in queries.chunks(DIM) {
                    black_box(index.query(&Query::new(q, K).ef(EF)).unwrap());
                }
            })
        });
    }
    group.bench_function(BenchmarkId::new("search_sampled_ef64", 4), |b| {
        b.iter(|| {
            for q in queries.chunks(DIM) {
                black_box(four.query(&Query::new(q, K).ef(EF).fanout(Fanout::Sampled)).unwrap());
            }
        })
    });
    group.finish();

    let mut group = c.benchmark_group(format!("segments/random-{DIM}-{N}"));
    group.sample_size(10);
    group.throughput(Throughput::Elements(N as u64));
    group.bench_function(BenchmarkId::new("merge_4_segments_ef", 40), |b| b.iter(|| four.merged(40).unwrap()));
    group.finish();
}

criterion_group!(benches, segment);
criterion_main!(benches);

//! Distance kernels at common embedding sizes, every available path in one group per metric
//! and size, so the speed-up over the scalar reference comes from one run.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use omendex_distance::{Distance, KernelSet, Metric, SimdPath, Sq8, Sq8Query};
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use std::hint::black_box;

const DIMS: [usize; 5] = [32, 128, 384, 768, 1536];
const SEED: u64 = 42;
const ROWS: usize = 64;

fn kernels(c: &mut Criterion) {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(SEED);
    for metric in Metric::ALL {
        for dim in DIMS {
            let a: Vec<f32> = (0..dim).map(|_| rng.random::<f32>()).collect();
            let b: Vec<f32> = (0..dim).map(|_| rng.random::<f32>()).collect();
            let mut g = c.benchmark_group(format!("{metric}/d{dim}"));
            g.throughput(Throughput::Elements(dim as u64));
            for path in SimdPath::ALL {
                let Some(k) = KernelSet::for_path(path) else { continue };
                let d = Distance::with_kernels(metric, k);
                g.bench_function(BenchmarkId::from_parameter(path.name()), |bench| {
                    bench.iter(|| d.eval(black_box(&a), black_box(&b)))
                });
            }
            g.finish();
        }
    }
}

/// The 8-bit code kernel ([`Sq8Query`]) beside the `f32` kernel of the same metric on the
/// same path: what a distance on codes costs against one on rows, with both in cache.
fn codes(c: &mut Criterion) {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(SEED);
    for metric in [Metric::L2, Metric::InnerProduct] {
        for dim in DIMS {
            let rows: Vec<Vec<f32>> = (0..2).map(|_| (0..dim).map(|_| rng.random::<f32>()).collect()).collect();
            let sq8 = Sq8::train(dim, rows.iter().map(|r| &r[..]));
            let mut code = vec![0u8; dim];
            sq8.encode(&rows[1], &mut code);
            let norm = sq8.code_norm(&code);
            let mut g = c.benchmark_group(format!("sq8/{metric}/d{dim}"));
            g.throughput(Throughput::Elements(dim as u64));
            for path in SimdPath::ALL {
                let Some(k) = KernelSet::for_path(path) else { continue };
                let mut q = Sq8Query::with_kernels(k);
                q.set(&sq8, metric, &rows[0]);
                g.bench_function(BenchmarkId::new("codes", k.code_path()), |bench| {
                    bench.iter(|| q.distance(black_box(&code), black_box(norm)))
                });
                let d = Distance::with_kernels(metric, k);
                g.bench_function(BenchmarkId::new("f32", path.name()), |bench| {
                    bench.iter(|| d.eval(black_box(&rows[0]), black_box(&rows[1])))
                });
            }
            g.finish();
        }
    }
}

fn one_to_many(c: &mut Criterion) {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(SEED);
    let dim = 384;
    let data: Vec<f32> = (0..dim * 4096).map(|_| rng.random::<f32>()).collect();
    let q: Vec<f32> = (0..dim).map(|_| rng.random::<f32>()).collect();
    let rows: Vec<u32> = (0..ROWS).map(|_| rng.random_range(0..4096u32)).collect();
    let d = Distance::new(Metric::L2);
    let mut out = vec![0.0f32; ROWS];
    let mut g = c.benchmark_group("one_to_many/l2/d384");
    g.throughput(Throughput::Elements(ROWS as u64));
    g.bench_function("batched", |b| b.iter(|| d.one_to_many(black_box(&q), &data, dim, &rows, &mut out)));
    g.bench_function("single_calls", |b| {
        b.iter(|| {
            for (o, &r) in out.iter_mut().zip(&rows) {
                let s = r as usize * dim;
                *o = d.eval(black_box(&q), &data[s..s + dim]);
            }
        })
    });
    g.finish();
}

criterion_group!(benches, kernels, codes, one_to_many);
criterion_main!(benches);

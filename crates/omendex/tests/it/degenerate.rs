//! Degenerate data: builds and searches terminate, keep every invariant, and answer as well as
//! exact search allows (ties allowed: results are judged by their distances, not their ids).

use omendex::{
    BuildError, Error, Index, Metric, Params, Quantization, QuantizationStatus, SearchError, VectorError, VectorId,
};
use omendex_distance::Distance;

use crate::random;

/// Share of returned neighbours whose distance is within the exact k-th distance (ties at the
/// k-th distance count as right), the exact scan using the index's own `f32` arithmetic on the
/// stored vectors: "as good as exact search allows". Also checks that each answer holds k
/// distinct ids and reports their true distances.
fn distance_recall(index: &Index, queries: &[f32], k: usize) -> f64 {
    let dim = index.dim();
    // A cosine index stores normalised vectors and compares them by inner product.
    let (metric, normalise) = match index.metric() {
        Metric::Cosine => (Metric::InnerProduct, true),
        m => (m, false),
    };
    let d = Distance::new(metric);
    let stored: Vec<&[f32]> = (0..index.len() as u64).map(|i| index.get(VectorId(i)).unwrap()).collect();
    let (mut good, mut total) = (0u32, 0u32);
    for q in queries.chunks(dim) {
        let mut q = q.to_vec();
        if normalise {
            omendex_distance::normalize(&mut q);
        }
        let mut all: Vec<f32> = stored.iter().map(|v| d.eval(&q, v)).collect();
        all.sort_by(f32::total_cmp);
        let kth = all[k - 1];
        let hits = index.search(&q, k).unwrap();
        assert_eq!(hits.len(), k);
        let mut ids: Vec<VectorId> = hits.iter().map(|h| h.id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), k, "an answer repeats an id");
        for h in &hits {
            let true_dist = d.eval(&q, stored[h.id.0 as usize]);
            assert!((h.dist - true_dist).abs() <= 1e-4 * true_dist.abs().max(1.0), "{} vs {true_dist}", h.dist);
            total += 1;
            if true_dist <= kth + 1e-5 * kth.abs() {
                good += 1;
            }
        }
    }
    f64::from(good) / f64::from(total)
}

/// An index of `data` for each quantization setting: every degenerate case holds with codes
/// too (where codes are too coarse the index says so and walks the f32 rows).
fn built(dim: usize, metric: Metric, data: &[f32]) -> Vec<(Quantization, Index)> {
    Quantization::ALL
        .into_iter()
        .map(|q| {
            let mut index = Index::new(dim, Params::new(metric).ef_construction(100).quantization(q)).unwrap();
            index.add_batch(data).unwrap();
            assert_eq!(index.check_invariants(), Ok(()));
            assert_eq!(q == Quantization::None, index.quantization() == QuantizationStatus::Off);
            (q, index)
        })
        .collect()
}

#[test]
fn ten_thousand_identical_vectors() {
    let dim = 8;
    let data: Vec<f32> =
        std::iter::repeat_n([0.5f32, -1.0, 2.0, 0.0, 3.0, 1.0, -2.0, 0.25], 10_000).flatten().collect();
    for metric in Metric::ALL {
        for (q, index) in built(dim, metric, &data) {
            let queries = [&data[..dim], &[0.0; 8][..], &random(1, dim, 1)[..]].concat();
            let r = distance_recall(&index, &queries, 10);
            assert_eq!(r, 1.0, "{metric} {q}: stats {}", index.stats());
            // Every vector is the same: ten distinct ids at the one distance there is.
            let hits = index.search(&data[..dim], 10).unwrap();
            assert!(hits.iter().all(|h| h.dist == hits[0].dist), "{metric} {q}: {hits:?}");
            if q == Quantization::Int8 {
                // One value per dimension: the codes are exact, and walked on.
                assert!(index.quantization().walks_on_codes(), "{metric}: {:?}", index.quantization());
            }
        }
    }
}

#[test]
fn all_zero_vectors() {
    let dim = 16;
    let mut data = random(1_000, dim, 2);
    data[..300 * dim].fill(0.0);
    for metric in Metric::ALL {
        for (q, index) in built(dim, metric, &data) {
            let r = distance_recall(&index, &random(50, dim, 3), 10);
            assert!(r >= 0.95, "{metric} {q}: distance recall {r}, stats {}", index.stats());
            // Under l2 the zero query finds zero vectors at 0; under ip and cosine a zero vector
            // is equally far (1) from everything, so any ten are right.
            let hits = index.search(&[0.0; 16], 10).unwrap();
            let want = if metric == Metric::L2 { 0.0 } else { 1.0 };
            assert!(hits.iter().all(|h| (h.dist - want).abs() < 1e-6), "{metric} {q}: {hits:?}");
            assert_eq!(distance_recall(&index, &[0.0; 16], 10), 1.0);
        }
    }
}

/// Many copies of a few vectors, inserted first, then ordinary data: the copies must not
/// become a sink that searches for the ordinary data cannot leave.
#[test]
fn groups_of_copies_do_not_trap_searches() {
    let dim = 12;
    let copies: Vec<f32> = random(5, dim, 20).chunks(dim).flat_map(|v| v.repeat(200)).collect();
    let data = [copies, random(2_000, dim, 21)].concat();
    for metric in Metric::ALL {
        for (q, index) in built(dim, metric, &data) {
            let r = distance_recall(&index, &random(100, dim, 22), 10);
            assert!(r >= 0.95, "{metric} {q}: distance recall {r}");
            let copy_query = &data[..dim];
            assert_eq!(distance_recall(&index, copy_query, 10), 1.0, "{metric} {q}");
        }
    }
}

#[test]
fn tiny_dimensions() {
    for dim in [1, 2] {
        let data = random(3_000, dim, 4);
        for metric in Metric::ALL {
            for (q, index) in built(dim, metric, &data) {
                let r = distance_recall(&index, &random(100, dim, 5), 10);
                assert!(r >= 0.95, "d = {dim}, {metric} {q}: distance recall {r} ({:?})", index.quantization());
            }
        }
    }
}

#[test]
fn dimension_4096() {
    let dim = 4096;
    for (q, index) in built(dim, Metric::L2, &random(600, dim, 6)) {
        let r = distance_recall(&index, &random(20, dim, 7), 10);
        assert!(r >= 0.95, "{q}: distance recall {r}");
    }
}

#[test]
fn huge_magnitudes() {
    let dim = 8;
    let scaled = |seed, n, by: f32| -> Vec<f32> { random(n, dim, seed).into_iter().map(|x| x * by).collect() };
    // Cosine normalises: 1e30 is as good as 1.
    for (q, index) in built(dim, Metric::Cosine, &scaled(8, 2_000, 1e30)) {
        let r = distance_recall(&index, &scaled(9, 50, 1e30), 10);
        assert!(r >= 0.95, "cosine {q}: distance recall {r}");
    }

    for metric in [Metric::L2, Metric::InnerProduct] {
        // Up to omendex_distance::MAX_NORM distances stay finite and rank.
        for (q, index) in built(dim, metric, &scaled(8, 2_000, 1e18)) {
            let r = distance_recall(&index, &scaled(9, 50, 1e18), 10);
            assert!(r >= 0.95, "{metric} {q} at 1e18: distance recall {r}");
            assert!(matches!(
                index.search(&[1e30; 8], 1),
                Err(Error::Search(SearchError::Query(VectorError::NormTooLarge { .. })))
            ));
        }

        // Beyond it they would overflow to +inf: a typed error, nothing stored.
        let mut index = Index::new(dim, Params::new(metric)).unwrap();
        let err = index.add_batch(&scaled(8, 100, 1e30)).unwrap_err();
        assert!(
            matches!(&err, Error::Build(BuildError::Vector { row: 0, source: VectorError::NormTooLarge { .. } })),
            "{err}"
        );
        assert!(index.is_empty());
    }
}

#[test]
fn denormal_values() {
    let dim = 8;
    let data: Vec<f32> = random(2_000, dim, 10).into_iter().map(|x| x * 1e-40).collect();
    assert!(data.iter().any(|x| x.is_subnormal()));
    let queries: Vec<f32> = random(50, dim, 11).into_iter().map(|x| x * 1e-40).collect();
    for metric in Metric::ALL {
        // l2 and ip distances underflow to ties (0 and 1); cosine normalises and ranks as usual.
        for (q, index) in built(dim, metric, &data) {
            let r = distance_recall(&index, &queries, 10);
            assert!(r >= 0.95, "{metric} {q}: distance recall {r}");
        }
    }
}

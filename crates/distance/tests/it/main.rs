//! Every kernel path against the scalar reference.

use omendex_distance::{Distance, KernelSet, Metric, SimdPath, scalar};
use proptest::prelude::*;
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

fn available() -> Vec<KernelSet> {
    SimdPath::ALL.into_iter().filter_map(KernelSet::for_path).collect()
}

/// Relative comparison with an absolute floor scaled by the magnitude of the terms summed, since
/// float sums of `n` terms lose about `n * eps` of the sum of absolute values.
fn close(got: f32, want: f32, scale: f32, what: &str) {
    let tol = 1e-5 * scale.max(1.0) + 1e-4 * want.abs();
    assert!((got - want).abs() <= tol, "{what}: got {got}, want {want} (tol {tol})");
}

fn check_all(k: &KernelSet, a: &[f32], b: &[f32], ctx: &str) {
    let abs_dot: f32 = a.iter().zip(b).map(|(x, y)| (x * y).abs()).sum();
    let sq: f32 = a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum();
    close(k.l2_sq(a, b), scalar::l2_sq(a, b), sq, &format!("{ctx} l2 {}", k.path()));
    close(k.dot(a, b), scalar::dot(a, b), abs_dot, &format!("{ctx} dot {}", k.path()));
    close(k.cosine(a, b), scalar::cosine(a, b), 1.0, &format!("{ctx} cosine {}", k.path()));
}

#[test]
fn every_path_matches_reference_for_every_length_up_to_1100() {
    let seed = 7;
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    // One buffer longer than needed, so slices can also start at an odd (unaligned) offset.
    let a: Vec<f32> = (0..1104).map(|_| rng.random::<f32>() * 2.0 - 1.0).collect();
    let b: Vec<f32> = (0..1104).map(|_| rng.random::<f32>() * 2.0 - 1.0).collect();
    let paths = available();
    assert!(paths.len() >= 2, "scalar and portable always exist");
    for len in 0..=1100 {
        for off in [0, 1, 3] {
            let ctx = format!("seed {seed} len {len} offset {off}");
            for k in &paths {
                check_all(k, &a[off..off + len], &b[3 - off..3 - off + len], &ctx);
            }
        }
    }
}

#[test]
fn best_path_is_the_widest_available() {
    let best = KernelSet::best().path();
    let widest = available().iter().map(|k| k.path()).max_by_key(|p| SimdPath::ALL.iter().position(|q| q == p));
    assert_eq!(Some(best), widest);
    assert_eq!(omendex_distance::simd_path(), best);
}

#[test]
fn zero_vectors_have_cosine_distance_one_on_every_path() {
    let z = [0.0f32; 37];
    let x = [1.0f32; 37];
    for k in available() {
        assert_eq!(k.cosine(&z, &x), 1.0, "{}", k.path());
        assert_eq!(k.cosine(&z, &z), 1.0, "{}", k.path());
    }
}

#[test]
fn distance_of_each_metric() {
    let a = [3.0f32, 4.0];
    let b = [4.0f32, 3.0];
    for k in available() {
        let d = |m| Distance::with_kernels(m, k).eval(&a, &b);
        close(d(Metric::L2), 2.0, 1.0, "l2");
        close(d(Metric::InnerProduct), 1.0 - 24.0, 24.0, "ip");
        close(d(Metric::Cosine), 1.0 - 24.0 / 25.0, 1.0, "cosine");
    }
}

#[test]
fn one_to_many_equals_single_calls() {
    let dim = 45;
    let stride = 48;
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(11);
    let data: Vec<f32> = (0..stride * 20).map(|_| rng.random::<f32>()).collect();
    let q: Vec<f32> = (0..dim).map(|_| rng.random::<f32>()).collect();
    let rows = [19u32, 0, 5, 5, 7];
    for m in Metric::ALL {
        let dist = Distance::new(m);
        let mut out = [0.0f32; 5];
        dist.one_to_many(&q, &data, stride, &rows, &mut out);
        for (r, o) in rows.iter().zip(out) {
            let s = *r as usize * stride;
            assert_eq!(o, dist.eval(&q, &data[s..s + dim]));
        }
    }
}

#[test]
fn normalize_handles_zero_and_huge_vectors() {
    let mut z = [0.0f32; 4];
    omendex_distance::normalize(&mut z);
    assert_eq!(z, [0.0; 4]);
    let mut h = [1e30f32, -1e30, 0.0, 1e30];
    omendex_distance::normalize(&mut h);
    let n: f32 = h.iter().map(|x| x * x).sum();
    assert!((n - 1.0).abs() < 1e-5, "norm² {n}");
}

#[test]
fn overflowing_products_rank_last_not_first() {
    // Finite inputs whose inner product sums +inf and -inf: NaN inside the kernel.
    let a = [1e20f32, 1e20];
    let b = [1e20f32, -1e20];
    for k in available() {
        for m in [Metric::InnerProduct, Metric::Cosine, Metric::L2] {
            let d = Distance::with_kernels(m, k).eval(&a, &b);
            assert!(!d.is_nan(), "{m} on {}: NaN", k.path());
        }
        // The f64 reference gets the exact 1 - 0; the f32 paths overflow and rank the pair last.
        let want = if k.path() == SimdPath::Scalar { 1.0 } else { f32::INFINITY };
        assert_eq!(Distance::with_kernels(Metric::InnerProduct, k).eval(&a, &b), want, "{}", k.path());
    }
}

#[test]
fn normalize_handles_tiny_vectors() {
    let mut t = [1e-30f32, 0.0, -1e-30];
    omendex_distance::normalize(&mut t);
    let n: f32 = t.iter().map(|x| x * x).sum();
    assert!((n - 1.0).abs() < 1e-5, "norm² {n}");
}

#[test]
fn metric_names_round_trip() {
    for m in Metric::ALL {
        assert_eq!(m.name().parse::<Metric>(), Ok(m));
    }
    assert!("manhattan".parse::<Metric>().is_err());
}

proptest! {
    #[test]
    fn paths_agree_on_random_slices(
        v in proptest::collection::vec((-1e3f32..1e3, -1e3f32..1e3), 0..300),
        off in 0usize..4,
    ) {
        let off = off.min(v.len());
        let a: Vec<f32> = v.iter().map(|p| p.0).collect();
        let b: Vec<f32> = v.iter().map(|p| p.1).collect();
        for k in available() {
            check_all(&k, &a[off..], &b[off..], "proptest");
        }
    }
}

/// The code kernel of `k` against the exact reference.
fn check_codes(k: &KernelSet, c: &[u8], w: &[i8], ctx: &str) {
    assert_eq!(k.dot_u8_i8(c, w), scalar::dot_u8_i8(c, w), "{ctx} dot_u8_i8 on {} ({})", k.path(), k.code_path());
}

#[test]
fn every_path_matches_the_code_reference_for_every_length_up_to_1100() {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(13);
    let c: Vec<u8> = (0..1104).map(|_| rng.random::<u8>()).collect();
    let w: Vec<i8> = (0..1104).map(|_| rng.random::<i8>()).collect();
    for len in 0..=1100 {
        for off in [0, 1, 3] {
            let ctx = format!("len {len} offset {off}");
            for k in &available() {
                // For off 3 the codes end exactly at the buffer's end.
                let cs = &c[1104 - len - (3 - off)..1104 - (3 - off)];
                check_codes(k, cs, &w[off..off + len], &ctx);
            }
        }
    }
}

#[test]
fn code_sums_past_one_chunk_do_not_overflow() {
    // The largest products everywhere: a single i32 sum of 100,000 of them would overflow.
    let (c, w) = (vec![255u8; 100_000], vec![-128i8; 100_000]);
    for k in available() {
        check_codes(&k, &c, &w, "100,000 extreme codes");
        assert_eq!(k.dot_u8_i8(&c, &w), -255 * 128 * 100_000);
    }
}

#[test]
#[cfg(unix)]
fn code_kernels_read_nothing_past_the_codes() {
    // Codes that end at the end of a readable page, followed by an inaccessible one: a kernel
    // that loads a whole lane past the codes' end faults here.
    let page = 4096;
    let guarded = GuardedPage::new(page);
    let bytes = guarded.bytes();
    for len in [1, 7, 8, 9, 15, 16, 17, 33, 63, 64, 65, 100, 127, 129] {
        let c = &bytes[page - len..];
        let w: Vec<i8> = (0..len).map(|i| (i % 200) as i8).collect();
        for k in available() {
            check_codes(&k, c, &w, &format!("page end, len {len}"));
        }
    }
}

/// A readable page of bytes (`i % 251` at `i`) followed by a page with no access.
#[cfg(unix)]
struct GuardedPage {
    ptr: *mut libc::c_void,
    page: usize,
}

#[cfg(unix)]
impl GuardedPage {
    fn new(page: usize) -> Self {
        // SAFETY: an anonymous private mapping of two pages, no address hint; checked below.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                2 * page,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(ptr, libc::MAP_FAILED, "map two pages");
        // SAFETY: the first page is mapped readable and writable, and nothing else refers to it.
        let first = unsafe { std::slice::from_raw_parts_mut(ptr.cast::<u8>(), page) };
        first.iter_mut().enumerate().for_each(|(i, b)| *b = (i % 251) as u8);
        // SAFETY: the second page belongs to this mapping; nothing refers to it.
        let rc = unsafe { libc::mprotect(ptr.cast::<u8>().add(page).cast(), page, libc::PROT_NONE) };
        assert_eq!(rc, 0, "protect the second page");
        GuardedPage { ptr, page }
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: the first page is mapped readable for as long as `self` lives.
        unsafe { std::slice::from_raw_parts(self.ptr.cast::<u8>(), self.page) }
    }
}

#[cfg(unix)]
impl Drop for GuardedPage {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `new`; no slice of it outlives `self`.
        unsafe { libc::munmap(self.ptr, 2 * self.page) };
    }
}

#[test]
fn sq8_queries_give_one_distance_on_every_path() {
    // The kernel is exact on every path, so the distance is the same number everywhere.
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(17);
    let dim = 131;
    let rows: Vec<Vec<f32>> = (0..50).map(|_| (0..dim).map(|_| rng.random::<f32>() * 4.0 - 2.0).collect()).collect();
    let sq8 = omendex_distance::Sq8::train(dim, rows.iter().map(|r| &r[..]));
    let q: Vec<f32> = (0..dim).map(|_| rng.random::<f32>() * 4.0 - 2.0).collect();
    let mut code = vec![0u8; dim];
    for r in &rows {
        sq8.encode(r, &mut code);
        let norm = sq8.code_norm(&code);
        for metric in Metric::ALL {
            let on = |k: KernelSet| {
                let mut query = omendex_distance::Sq8Query::with_kernels(k);
                query.set(&sq8, metric, &q);
                query.distance(&code, norm)
            };
            let reference = on(KernelSet::for_path(SimdPath::Scalar).unwrap());
            for k in available() {
                assert_eq!(on(k), reference, "{metric} on {}", k.path());
            }
        }
    }
}

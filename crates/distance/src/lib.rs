//! Distance kernels for `f32` vectors: squared L2, inner product and cosine.
//!
//! Every kernel has three implementations: a scalar reference ([`scalar`]), a portable SIMD path
//! on `wide`, and on x86-64 the widest path the running CPU supports (AVX-512F, else AVX2 + FMA),
//! chosen once at run time. A default build (no `RUSTFLAGS`) is therefore fast on every x86-64 and
//! correct everywhere. [`simd_path`] reports which path runs.
//!
//! A distance is an `f32` where smaller means closer, for every [`Metric`]:
//! squared L2, `1 - a·b` for inner product, `1 - cos(a, b)` for cosine.
//!
//! This crate knows nothing of graphs, ids or threads.
//!
//! **Invariant:** every path returns the scalar reference's value within a small relative
//! tolerance, for every length (tested for lengths 0..=1100, unaligned slices included).
//!
//! # Example
//! ```
//! use omendex_distance::{Distance, Metric};
//!
//! let a = [1.0f32, 2.0, 3.0];
//! let b = [1.0f32, 0.0, 3.0];
//! assert_eq!(omendex_distance::l2_sq(&a, &b), 4.0);
//! let cos = Distance::new(Metric::Cosine);
//! assert!(cos.eval(&a, &a).abs() < 1e-6);
//! println!("distance kernels run on {}", omendex_distance::simd_path());
//! ```
#![deny(unsafe_code)]
#![deny(missing_docs)]

mod portable;
pub mod scalar;
mod sq8;
mod vector;

pub use crate::sq8::{Sq8, Sq8Error, Sq8Query};
pub use crate::vector::{VectorError, check_vector};
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod x86;

use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

/// How two vectors are compared. Every metric yields a distance where smaller is closer.
///
/// ```
/// use omendex_distance::{Distance, Metric};
///
/// let metric: Metric = "cosine".parse().unwrap();
/// assert_eq!(metric, Metric::Cosine);
/// let (a, b) = ([1.0f32, 0.0], [0.0f32, 2.0]);
/// assert_eq!(Distance::new(Metric::L2).eval(&a, &b), 5.0);
/// assert_eq!(Distance::new(Metric::InnerProduct).eval(&a, &b), 1.0);
/// assert!((Distance::new(metric).eval(&a, &b) - 1.0).abs() < 1e-6);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    /// Squared Euclidean distance `Σ (a_i - b_i)²`.
    L2,
    /// `1 - a·b`: inner-product similarity turned into a distance (as hnswlib's `ip` space).
    InnerProduct,
    /// `1 - cos(a, b)`; `1` when either vector is all zeros.
    Cosine,
}

impl Metric {
    /// All metrics, for sweeps and tests.
    pub const ALL: [Metric; 3] = [Metric::L2, Metric::InnerProduct, Metric::Cosine];

    /// The short name used on command lines and in reports (`l2`, `ip`, `cosine`).
    pub fn name(self) -> &'static str {
        match self {
            Metric::L2 => "l2",
            Metric::InnerProduct => "ip",
            Metric::Cosine => "cosine",
        }
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A metric name that is not `l2`, `ip` or `cosine`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownMetric(pub String);

impl fmt::Display for UnknownMetric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown metric {:?} (expected l2, ip or cosine)", self.0)
    }
}

impl std::error::Error for UnknownMetric {}

impl FromStr for Metric {
    type Err = UnknownMetric;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "l2" | "l2sq" | "euclidean" => Ok(Metric::L2),
            "ip" | "dot" | "inner-product" | "inner_product" => Ok(Metric::InnerProduct),
            "cosine" | "cos" => Ok(Metric::Cosine),
            _ => Err(UnknownMetric(s.to_owned())),
        }
    }
}

/// Which implementation the kernels run on.
///
/// ```
/// let path = omendex_distance::simd_path();
/// println!("distances run on {path}"); // e.g. "avx512" on a CPU with AVX-512F
/// assert_eq!(omendex_distance::KernelSet::best().path(), path);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SimdPath {
    /// The scalar reference (`f64` accumulation): for tests and as a bench baseline.
    Scalar,
    /// `wide::f32x8`, whose width is fixed at compile time.
    Portable,
    /// x86-64 AVX2 with fused multiply-add, chosen at run time.
    Avx2Fma,
    /// x86-64 AVX-512F, chosen at run time.
    Avx512,
}

impl SimdPath {
    /// Every path, in increasing width; [`KernelSet::for_path`] tells which this CPU can run.
    pub const ALL: [SimdPath; 4] = [SimdPath::Scalar, SimdPath::Portable, SimdPath::Avx2Fma, SimdPath::Avx512];

    /// Short name for reports.
    pub fn name(self) -> &'static str {
        match self {
            SimdPath::Scalar => "scalar",
            SimdPath::Portable => "portable (wide f32x8)",
            SimdPath::Avx2Fma => "avx2+fma",
            SimdPath::Avx512 => "avx512f",
        }
    }
}

impl fmt::Display for SimdPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

type Kernel = fn(&[f32], &[f32]) -> f32;
pub(crate) type CodeDot = fn(&[u8], &[i8]) -> i32;

/// The most codes one call of a code kernel sums: `255 * 128 * CODE_CHUNK` still fits an `i32`.
pub(crate) const CODE_CHUNK: usize = 1 << 16;

/// One implementation of every kernel. Obtain the fastest with [`KernelSet::best`], or a given
/// one (for tests and benchmarks) with [`KernelSet::for_path`].
///
/// Every kernel panics if its two slices differ in length: that is a caller bug, not bad data.
#[derive(Clone, Copy)]
pub struct KernelSet {
    path: SimdPath,
    l2_sq: Kernel,
    dot: Kernel,
    cosine: Kernel,
    dot_u8_i8: CodeDot,
    code_path: &'static str,
}

impl fmt::Debug for KernelSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KernelSet").field("path", &self.path).finish_non_exhaustive()
    }
}

impl KernelSet {
    const SCALAR: KernelSet = KernelSet {
        path: SimdPath::Scalar,
        l2_sq: |a, b| {
            assert_eq!(a.len(), b.len(), "vectors of different lengths");
            scalar::l2_sq(a, b)
        },
        dot: |a, b| {
            assert_eq!(a.len(), b.len(), "vectors of different lengths");
            scalar::dot(a, b)
        },
        cosine: |a, b| {
            assert_eq!(a.len(), b.len(), "vectors of different lengths");
            scalar::cosine(a, b)
        },
        dot_u8_i8: |c, w| {
            assert_eq!(c.len(), w.len(), "codes and weights of different lengths");
            scalar::dot_u8_i8(c, w) as i32
        },
        code_path: "scalar",
    };

    const PORTABLE: KernelSet = KernelSet {
        path: SimdPath::Portable,
        l2_sq: portable::l2_sq,
        dot: portable::dot,
        cosine: portable::cosine,
        dot_u8_i8: portable::dot_u8_i8,
        code_path: "portable",
    };

    /// The fastest kernels this CPU runs, detected once per process.
    pub fn best() -> &'static KernelSet {
        static BEST: OnceLock<KernelSet> = OnceLock::new();
        BEST.get_or_init(|| {
            [SimdPath::Avx512, SimdPath::Avx2Fma, SimdPath::Portable]
                .into_iter()
                .find_map(KernelSet::for_path)
                .unwrap_or(KernelSet::PORTABLE)
        })
    }

    /// The kernels of `path`, or `None` when this CPU (or target) cannot run it.
    pub fn for_path(path: SimdPath) -> Option<KernelSet> {
        match path {
            SimdPath::Scalar => Some(KernelSet::SCALAR),
            SimdPath::Portable => Some(KernelSet::PORTABLE),
            #[cfg(target_arch = "x86_64")]
            SimdPath::Avx2Fma => x86::avx2_kernels(),
            #[cfg(target_arch = "x86_64")]
            SimdPath::Avx512 => x86::avx512_kernels(),
            #[cfg(not(target_arch = "x86_64"))]
            SimdPath::Avx2Fma | SimdPath::Avx512 => None,
        }
    }

    /// Which implementation these kernels are.
    pub fn path(&self) -> SimdPath {
        self.path
    }

    /// Squared Euclidean distance.
    #[inline]
    pub fn l2_sq(&self, a: &[f32], b: &[f32]) -> f32 {
        (self.l2_sq)(a, b)
    }

    /// Dot product.
    #[inline]
    pub fn dot(&self, a: &[f32], b: &[f32]) -> f32 {
        (self.dot)(a, b)
    }

    /// Cosine distance `1 - cos(a, b)`.
    #[inline]
    pub fn cosine(&self, a: &[f32], b: &[f32]) -> f32 {
        (self.cosine)(a, b)
    }

    /// `Σ c_i w_i` over 8-bit codes and signed 8-bit weights, exact: the kernel of
    /// [`Sq8Query`] (panics if the lengths differ). Every path returns the same integer.
    #[inline]
    pub fn dot_u8_i8(&self, c: &[u8], w: &[i8]) -> i64 {
        assert_eq!(c.len(), w.len(), "codes and weights of different lengths");
        if c.len() <= CODE_CHUNK {
            return i64::from((self.dot_u8_i8)(c, w));
        }
        c.chunks(CODE_CHUNK).zip(w.chunks(CODE_CHUNK)).map(|(c, w)| i64::from((self.dot_u8_i8)(c, w))).sum()
    }

    /// Which instructions the code kernel runs on (`avx512-vnni`, `avx512bw`, `avx2`,
    /// `portable`, `scalar`): within a path the widest the CPU has.
    pub fn code_path(&self) -> &'static str {
        self.code_path
    }

    /// The distance of `metric` between `a` and `b`.
    #[inline]
    pub fn distance(&self, metric: Metric, a: &[f32], b: &[f32]) -> f32 {
        match metric {
            Metric::L2 => self.l2_sq(a, b),
            Metric::InnerProduct => 1.0 - self.dot(a, b),
            Metric::Cosine => self.cosine(a, b),
        }
    }
}

/// A metric bound to a kernel set: what a search loop holds to compare vectors.
#[derive(Debug, Clone, Copy)]
pub struct Distance {
    metric: Metric,
    kernels: KernelSet,
}

impl Distance {
    /// `metric` on the fastest kernels of this CPU.
    pub fn new(metric: Metric) -> Self {
        Distance { metric, kernels: *KernelSet::best() }
    }

    /// `metric` on the given kernels.
    pub fn with_kernels(metric: Metric, kernels: KernelSet) -> Self {
        Distance { metric, kernels }
    }

    /// The metric.
    pub fn metric(&self) -> Metric {
        self.metric
    }

    /// The kernels' implementation.
    pub fn path(&self) -> SimdPath {
        self.kernels.path
    }

    /// The distance between `a` and `b` (panics if their lengths differ).
    ///
    /// Never NaN: when finite inputs overflow `f32` inside a kernel (an inner product of
    /// components near 1e20 can sum `inf + -inf`), the distance is `+inf`, so such a pair ranks
    /// last instead of first.
    #[inline]
    pub fn eval(&self, a: &[f32], b: &[f32]) -> f32 {
        #[cfg(feature = "count-calls")]
        CALLS.with(|c| c.set(c.get() + 1));
        let d = self.kernels.distance(self.metric, a, b);
        if d.is_nan() { f32::INFINITY } else { d }
    }

    /// One query against many rows of a row-major matrix: `out[i] = eval(query, row rows[i])`,
    /// where row `r` is `data[r * stride .. r * stride + query.len()]`.
    ///
    /// Prefetches the next row while computing the current one, which is what a graph search
    /// needs when it scores all unvisited neighbours of a node.
    ///
    /// # Panics
    /// If `out.len() != rows.len()`, `stride < query.len()`, or a row lies outside `data`.
    pub fn one_to_many(&self, query: &[f32], data: &[f32], stride: usize, rows: &[u32], out: &mut [f32]) {
        assert_eq!(out.len(), rows.len(), "one output per row");
        assert!(stride >= query.len(), "stride {stride} shorter than the query ({})", query.len());
        let dim = query.len();
        // Ask for the first line of every row at once, so their misses overlap; then, while
        // scoring row i, ask for the rest of row i + AHEAD (the rows before it were asked for
        // already), so a long row has AHEAD rows' time to arrive.
        const AHEAD: usize = 2;
        let line = 64 / size_of::<f32>();
        for (i, &r) in rows.iter().enumerate() {
            prefetch_row(data, r as usize * stride);
            if i > 0 && i < AHEAD {
                for off in (line..dim).step_by(line) {
                    prefetch_row(data, r as usize * stride + off);
                }
            }
        }
        let score = |i: usize, r: u32, kernel: Kernel| {
            if let Some(&next) = rows.get(i + AHEAD) {
                let start = next as usize * stride;
                for off in (line..dim).step_by(line) {
                    prefetch_row(data, start + off);
                }
            }
            let start = r as usize * stride;
            kernel(query, &data[start..start + dim])
        };
        #[cfg(feature = "count-calls")]
        let t0 = std::time::Instant::now();
        let k = &self.kernels;
        let nan_last = |d: f32| if d.is_nan() { f32::INFINITY } else { d };
        match self.metric {
            Metric::L2 => {
                rows.iter().zip(out.iter_mut()).enumerate().for_each(|(i, (&r, o))| *o = nan_last(score(i, r, k.l2_sq)))
            }
            Metric::InnerProduct => rows
                .iter()
                .zip(out.iter_mut())
                .enumerate()
                .for_each(|(i, (&r, o))| *o = nan_last(1.0 - score(i, r, k.dot))),
            Metric::Cosine => rows
                .iter()
                .zip(out.iter_mut())
                .enumerate()
                .for_each(|(i, (&r, o))| *o = nan_last(score(i, r, k.cosine))),
        }
        #[cfg(feature = "count-calls")]
        {
            let nanos = t0.elapsed().as_nanos() as u64;
            CALLS.with(|c| c.set(c.get() + rows.len() as u64));
            BATCHED.with(|b| {
                let (calls, ns) = b.get();
                b.set((calls + rows.len() as u64, ns + nanos));
            });
        }
    }
}

/// Asks the cache for the line at `addr`. Never faults and never changes a result: a prefetch
/// is only a hint, so any address is fine.
#[inline(always)]
pub fn prefetch_addr(addr: *const u8) {
    #[cfg(target_arch = "x86_64")]
    x86::prefetch(addr.cast());
    #[cfg(not(target_arch = "x86_64"))]
    let _ = addr;
}

/// Asks the cache for the first line of `data[start..]`, when that is inside `data`.
#[inline(always)]
pub fn prefetch_row(data: &[f32], start: usize) {
    if let Some(x) = data.get(start) {
        #[cfg(target_arch = "x86_64")]
        x86::prefetch(x);
        #[cfg(not(target_arch = "x86_64"))]
        let _ = x;
    }
}

#[cfg(feature = "count-calls")]
thread_local! {
    static CALLS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    static BATCHED: std::cell::Cell<(u64, u64)> = const { std::cell::Cell::new((0, 0)) };
}

/// Distance evaluations ([`Distance::eval`], one per row of [`Distance::one_to_many`]) made on
/// this thread so far. Only with the `count-calls` feature, for profiling: internal to the
/// project's profiler, outside semver.
#[cfg(feature = "count-calls")]
#[doc(hidden)]
pub fn calls_on_this_thread() -> u64 {
    CALLS.with(|c| c.get())
}

/// Rows scored by [`Distance::one_to_many`] on this thread so far, and the nanoseconds spent
/// in it (timed per call, so per batch of rows, where a timer costs little against the work).
/// Only with the `count-calls` feature, for profiling: internal to the project's profiler,
/// outside semver.
#[cfg(feature = "count-calls")]
#[doc(hidden)]
pub fn batched_on_this_thread() -> (u64, u64) {
    BATCHED.with(|b| b.get())
}

/// The implementation the fastest kernels of this CPU run on.
pub fn simd_path() -> SimdPath {
    KernelSet::best().path
}

/// Squared Euclidean distance on the fastest kernels (panics if the lengths differ).
#[inline]
pub fn l2_sq(a: &[f32], b: &[f32]) -> f32 {
    KernelSet::best().l2_sq(a, b)
}

/// Dot product on the fastest kernels (panics if the lengths differ).
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    KernelSet::best().dot(a, b)
}

/// Cosine distance `1 - cos(a, b)` on the fastest kernels (panics if the lengths differ).
#[inline]
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    KernelSet::best().cosine(a, b)
}

/// The distance of `metric` on the fastest kernels (panics if the lengths differ).
#[inline]
pub fn distance(metric: Metric, a: &[f32], b: &[f32]) -> f32 {
    KernelSet::best().distance(metric, a, b)
}

/// The largest L2 norm for which [`Metric::L2`] and [`Metric::InnerProduct`] distances between
/// any two vectors stay finite in `f32`, just under `sqrt(f32::MAX / 4)`: `|a - b|² <= 4 * MAX_NORM²`
/// and `|a · b| <= MAX_NORM²`. Beyond it distances overflow to `+inf` and stop ranking anything;
/// cosine normalises first and has no such bound.
pub const MAX_NORM: f32 = 9.2e18;

/// The L2 norm of `v`, summed in `f64` so no finite `f32` input overflows or underflows.
pub fn norm(v: &[f32]) -> f64 {
    v.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>().sqrt()
}

/// Scales `v` to unit L2 norm in place; an all-zero vector stays all zeros.
///
/// Vectors whose squared norm overflows or underflows `f32` (components near 1e20 and above,
/// or near 1e-20 and below) are first scaled by their largest component, so they normalise too.
/// `v` must hold finite values.
pub fn normalize(v: &mut [f32]) {
    let mut norm = dot(v, v).sqrt();
    if !norm.is_finite() || norm < f32::MIN_POSITIVE.sqrt() {
        let max = v.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        if max > 0.0 && max.is_finite() {
            v.iter_mut().for_each(|x| *x /= max);
            norm = dot(v, v).sqrt();
        }
    }
    if norm > 0.0 && norm.is_finite() {
        let inv = 1.0 / norm;
        v.iter_mut().for_each(|x| *x *= inv);
    }
}

/// The README's example, compiled and run as a doctest so it stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

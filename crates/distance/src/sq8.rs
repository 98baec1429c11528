//! Scalar quantization to 8 bits per dimension, and distances from an `f32` query to codes.
//!
//! [`Sq8`] maps component `i` of a vector to the code `round((x_i - lo_i) / step_i)`, clamped
//! to `0..=255`, where `lo_i` and `step_i` come from the range of that dimension in a training
//! sample ([`Sq8::train`]). A code row is a quarter of the `f32` row's bytes.
//!
//! A query is compared with a code's decoded vector `x̂_i = lo_i + step_i c_i` ([`Sq8Query`])
//! through one integer dot product per row, `Σ c_i ŵ_i` over the codes and signed 8-bit
//! weights `ŵ` made from the query once ([`KernelSet::dot_u8_i8`]: `vpdpbusd` on AVX-512 VNNI,
//! 64 codes per instruction; exact on every path):
//!
//! ```text
//! l2       |q - x̂|² = Σ a_i² - 2 Σ (a_i step_i) c_i + |x̂ - lo|²      a = q - lo
//! ip       1 - q·x̂  = (1 - q·lo) - Σ (q_i step_i) c_i
//! cosine   ip on the normalised query (rows are stored normalised)
//! ```
//! where `w_i = a_i step_i` (or `q_i step_i`) is rounded to `ŵ_i = round(w_i / α)` with
//! `α = max |w_i| / 127`, and `|x̂ - lo|²` is the row's own term ([`Sq8::code_norm`]), stored
//! beside its codes. So a distance errs by the row's rounding (half a step per component) and the
//! query weights' (half of `α` per component); a search re-ranks its best candidates on the
//! `f32` rows to be rid of both.

use std::fmt;

use crate::{KernelSet, Metric};

/// An 8-bit scalar quantizer: one offset and one step per dimension.
///
/// ```
/// use omendex_distance::{Metric, Sq8, Sq8Query};
///
/// let rows = [[0.0f32, 10.0], [1.0, 20.0], [0.5, 15.0]];
/// let sq8 = Sq8::train(2, rows.iter().map(|r| &r[..]));
/// let mut code = [0u8; 2];
/// sq8.encode(&[1.0, 10.0], &mut code);
/// assert_eq!(code, [255, 0]); // the ends of each dimension's range
/// let q = Sq8Query::new(&sq8, Metric::L2, &[0.7, 12.0]);
/// let d = q.distance(&code, sq8.code_norm(&code));
/// assert!((d - (0.3f32 * 0.3 + 2.0 * 2.0)).abs() < 0.2); // codes and query weights both rounded
/// ```
#[derive(Clone, PartialEq)]
pub struct Sq8 {
    // Invariant: equal lengths, at least 1, all finite, every step >= 0.
    lo: Vec<f32>,
    step: Vec<f32>,
    // 1 / step (0 where the step is 0): encoding multiplies rather than divides.
    inv: Vec<f64>,
}

impl fmt::Debug for Sq8 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sq8").field("dim", &self.dim()).finish_non_exhaustive()
    }
}

/// Why quantizer parameters cannot be used ([`Sq8::from_parts`]).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Sq8Error {
    /// Offsets and steps of different counts, or none.
    #[error("a quantizer needs one offset and one step per dimension, got {offsets} offsets and {steps} steps")]
    Shape {
        /// Offsets given.
        offsets: usize,
        /// Steps given.
        steps: usize,
    },
    /// A non-finite offset or step, or a negative step.
    #[error("dimension {dim}: offset {lo} and step {step} must be finite, the step at least 0")]
    BadParameter {
        /// The dimension.
        dim: usize,
        /// Its offset.
        lo: f32,
        /// Its step.
        step: f32,
    },
}

impl Sq8 {
    /// The code levels: codes run from 0 to `LEVELS - 1`.
    pub const LEVELS: u32 = 256;

    /// The quantizer spanning each dimension's range (min to max) over `rows`, each of `dim`
    /// finite values (for instance a sample of the rows an index stores). Values outside the
    /// range get the nearest end's code. A dimension constant over the sample gets step 0: its
    /// codes are exact there. With no rows every offset and step is 0.
    ///
    /// # Panics
    /// If `dim` is 0 or a row's length is not `dim`.
    pub fn train<'a>(dim: usize, rows: impl IntoIterator<Item = &'a [f32]>) -> Sq8 {
        assert!(dim > 0, "a quantizer needs at least one dimension");
        let mut lo = vec![f32::INFINITY; dim];
        let mut hi = vec![f32::NEG_INFINITY; dim];
        for row in rows {
            assert_eq!(row.len(), dim, "row length");
            for ((l, h), &x) in lo.iter_mut().zip(hi.iter_mut()).zip(row) {
                *l = l.min(x);
                *h = h.max(x);
            }
        }
        let max = f64::from(Sq8::LEVELS - 1);
        let step = lo
            .iter()
            .zip(&hi)
            // In f64 so that the range of components near ±f32::MAX does not overflow.
            .map(|(&l, &h)| if h > l { ((f64::from(h) - f64::from(l)) / max) as f32 } else { 0.0 })
            .collect();
        let lo = lo.into_iter().map(|l| if l.is_finite() { l } else { 0.0 }).collect();
        Sq8::with_inverse(lo, step)
    }

    fn with_inverse(lo: Vec<f32>, step: Vec<f32>) -> Sq8 {
        let inv = step.iter().map(|&s| if s > 0.0 { 1.0 / f64::from(s) } else { 0.0 }).collect();
        Sq8 { lo, step, inv }
    }

    /// A quantizer from saved offsets and steps.
    pub fn from_parts(lo: Vec<f32>, step: Vec<f32>) -> Result<Sq8, Sq8Error> {
        if lo.len() != step.len() || lo.is_empty() {
            return Err(Sq8Error::Shape { offsets: lo.len(), steps: step.len() });
        }
        if let Some(dim) = lo.iter().zip(&step).position(|(l, s)| !l.is_finite() || !s.is_finite() || *s < 0.0) {
            return Err(Sq8Error::BadParameter { dim, lo: lo[dim], step: step[dim] });
        }
        Ok(Sq8::with_inverse(lo, step))
    }

    /// The dimension.
    pub fn dim(&self) -> usize {
        self.lo.len()
    }

    /// Each dimension's offset: the value of code 0.
    pub fn offsets(&self) -> &[f32] {
        &self.lo
    }

    /// Each dimension's step between two codes.
    pub fn steps(&self) -> &[f32] {
        &self.step
    }

    /// Writes the codes of `v` to `out`.
    ///
    /// # Panics
    /// If `v` or `out` is not `dim()` long.
    pub fn encode(&self, v: &[f32], out: &mut [u8]) {
        assert!(v.len() == self.dim() && out.len() == self.dim(), "vector and code of the quantizer's dimension");
        let max = f64::from(Sq8::LEVELS - 1);
        for (((o, &x), &l), &inv) in out.iter_mut().zip(v).zip(&self.lo).zip(&self.inv) {
            // A zero step has inv 0: code 0, exact for the constant it stands for.
            *o = ((f64::from(x) - f64::from(l)) * inv).round().clamp(0.0, max) as u8;
        }
    }

    /// Writes the vector that `code` stands for to `out`.
    ///
    /// # Panics
    /// If `code` or `out` is not `dim()` long.
    pub fn decode(&self, code: &[u8], out: &mut [f32]) {
        assert!(code.len() == self.dim() && out.len() == self.dim(), "code and vector of the quantizer's dimension");
        for (((o, &c), &l), &s) in out.iter_mut().zip(code).zip(&self.lo).zip(&self.step) {
            *o = l + s * f32::from(c);
        }
    }

    /// The row's own term of an l2 distance to it: `|x̂ - lo|² = Σ (step_i c_i)²`, stored beside
    /// the codes ([`Sq8Query::distance`]).
    ///
    /// # Panics
    /// If `code` is not `dim()` long.
    pub fn code_norm(&self, code: &[u8]) -> f32 {
        assert_eq!(code.len(), self.dim(), "code of the quantizer's dimension");
        code.iter().zip(&self.step).map(|(&c, &s)| (f64::from(s) * f64::from(c)).powi(2)).sum::<f64>() as f32
    }

    /// The root mean square of the error that rounding to codes adds to an L2 distance between
    /// a query and a row inside the trained range: `sqrt(Σ step_i² / 12)` (each component's
    /// rounding is uniform on `±step_i / 2`). Compare it with the gaps between neighbours' distances
    /// to tell whether codes can rank them.
    pub fn rounding_error(&self) -> f64 {
        (self.step.iter().map(|&s| f64::from(s) * f64::from(s)).sum::<f64>() / 12.0).sqrt()
    }
}

/// An `f32` query prepared against a quantizer: scores code rows under a metric.
///
/// The distance to a code approximates the metric's distance ([`Distance`](crate::Distance))
/// to the code's decoded vector ([`Sq8::decode`]), within the rounding of the query's weights
/// (see the module notes); under cosine the rows must have been encoded as [`Metric::prepare`]
/// stores them (normalised), and the query is normalised here. Never NaN: as
/// [`Distance::eval`](crate::Distance::eval), NaN becomes `+inf`.
#[derive(Clone)]
pub struct Sq8Query {
    metric: Metric,
    kernels: KernelSet,
    // The rounded weights ŵ, their scale α, and the query's constant term.
    weights: Vec<i8>,
    alpha: f32,
    bias: f32,
    // Reused for the normalised query under cosine.
    unit: Vec<f32>,
}

impl fmt::Debug for Sq8Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sq8Query")
            .field("metric", &self.metric)
            .field("dim", &self.weights.len())
            .finish_non_exhaustive()
    }
}

impl Default for Sq8Query {
    /// An empty query on the fastest kernels of this CPU, to [`set`](Sq8Query::set) later.
    fn default() -> Self {
        Sq8Query::with_kernels(*KernelSet::best())
    }
}

impl Sq8Query {
    /// `query` prepared against `sq8` under `metric`, on the fastest kernels of this CPU.
    ///
    /// # Panics
    /// If `query.len() != sq8.dim()`.
    pub fn new(sq8: &Sq8, metric: Metric, query: &[f32]) -> Sq8Query {
        let mut q = Sq8Query::default();
        q.set(sq8, metric, query);
        q
    }

    /// An empty query on the given kernels, to [`set`](Sq8Query::set) (and reuse) later.
    pub fn with_kernels(kernels: KernelSet) -> Sq8Query {
        Sq8Query { metric: Metric::L2, kernels, weights: Vec::new(), alpha: 0.0, bias: 0.0, unit: Vec::new() }
    }

    /// Prepares `query` against `sq8` under `metric`, reusing this query's buffers.
    ///
    /// # Panics
    /// If `query.len() != sq8.dim()`.
    pub fn set(&mut self, sq8: &Sq8, metric: Metric, query: &[f32]) {
        assert_eq!(query.len(), sq8.dim(), "query dimension");
        self.metric = metric;
        let mut unit = std::mem::take(&mut self.unit);
        let q = if metric == Metric::Cosine { metric.prepare_in(query, &mut unit) } else { query };
        // The weights and the constant in f64: one pass, no f32 cancellation in the constant.
        let (mut bias, mut max) = (0.0f64, 0.0f64);
        let weight = |i: usize| -> f64 {
            let (q, lo, step) = (f64::from(q[i]), f64::from(sq8.lo[i]), f64::from(sq8.step[i]));
            if metric == Metric::L2 { (q - lo) * step } else { q * step }
        };
        for (i, (&qi, &lo)) in q.iter().zip(&sq8.lo).enumerate() {
            let (qi, lo) = (f64::from(qi), f64::from(lo));
            bias += if metric == Metric::L2 { (qi - lo) * (qi - lo) } else { qi * lo };
            max = max.max(weight(i).abs());
        }
        let alpha = max / 127.0;
        self.weights.clear();
        self.weights.extend((0..q.len()).map(|i| if alpha > 0.0 { (weight(i) / alpha).round() as i8 } else { 0 }));
        // l2: Σ a² - 2 α Σ ŵ c + norm; ip: (1 - q·lo) - α Σ ŵ c.
        self.alpha = if metric == Metric::L2 { (2.0 * alpha) as f32 } else { alpha as f32 };
        self.bias = if metric == Metric::L2 { bias as f32 } else { (1.0 - bias) as f32 };
        self.unit = unit;
    }

    /// The metric.
    pub fn metric(&self) -> Metric {
        self.metric
    }

    /// The distance from the query to the vector `code` stands for; `norm` is the code's
    /// [`Sq8::code_norm`] (read only under l2).
    ///
    /// # Panics
    /// If `code` is not as long as the query.
    #[inline]
    pub fn distance(&self, code: &[u8], norm: f32) -> f32 {
        #[cfg(feature = "count-calls")]
        crate::CALLS.with(|c| c.set(c.get() + 1));
        self.distance_uncounted(code, norm)
    }

    /// One query against many code rows: `out[i] = distance(code, norm)` for the row
    /// `codes[rows[i] * stride ..][..dim]` and `norms[rows[i]]`. Prefetches each next row while
    /// scoring the current one.
    ///
    /// # Panics
    /// If `out.len() != rows.len()`, `stride` is shorter than the query, or a row lies outside
    /// `codes` or `norms` (norms are read only under l2).
    pub fn one_to_many(&self, codes: &[u8], stride: usize, norms: &[f32], rows: &[u32], out: &mut [f32]) {
        assert_eq!(out.len(), rows.len(), "one output per row");
        let dim = self.weights.len();
        assert!(stride >= dim, "stride {stride} shorter than the query ({dim})");
        const AHEAD: usize = 2;
        const LINE: usize = 64;
        let prefetch = |r: u32, from: usize, to: usize| {
            let start = r as usize * stride;
            for off in (from..to).step_by(LINE) {
                if let Some(x) = codes.get(start + off) {
                    crate::prefetch_addr(x);
                }
            }
        };
        // As `Distance::one_to_many`: the first line of every row at once, the rest of a row
        // AHEAD rows before it is scored.
        for (i, &r) in rows.iter().enumerate() {
            prefetch(r, 0, LINE.min(dim));
            if i > 0 && i < AHEAD {
                prefetch(r, LINE, dim);
            }
        }
        #[cfg(feature = "count-calls")]
        let t0 = std::time::Instant::now();
        let l2 = self.metric == Metric::L2;
        for (i, (&r, o)) in rows.iter().zip(out.iter_mut()).enumerate() {
            if let Some(&next) = rows.get(i + AHEAD) {
                prefetch(next, LINE, dim);
            }
            let start = r as usize * stride;
            let norm = if l2 { norms[r as usize] } else { 0.0 };
            *o = self.distance_uncounted(&codes[start..start + dim], norm);
        }
        #[cfg(feature = "count-calls")]
        {
            let nanos = t0.elapsed().as_nanos() as u64;
            crate::CALLS.with(|c| c.set(c.get() + rows.len() as u64));
            crate::BATCHED.with(|b| {
                let (calls, ns) = b.get();
                b.set((calls + rows.len() as u64, ns + nanos));
            });
        }
    }

    #[inline]
    fn distance_uncounted(&self, code: &[u8], norm: f32) -> f32 {
        let dot = self.kernels.dot_u8_i8(code, &self.weights) as f32;
        let d = match self.metric {
            Metric::L2 => self.bias - self.alpha * dot + norm,
            Metric::InnerProduct | Metric::Cosine => self.bias - self.alpha * dot,
        };
        if d.is_nan() { f32::INFINITY } else { d }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Distance;

    #[test]
    fn codes_round_to_the_nearest_level_and_clamp_outside_the_range() {
        let sq8 = Sq8::from_parts(vec![0.0, -1.0, 5.0], vec![0.1, 0.5, 0.0]).unwrap();
        let mut c = [0u8; 3];
        sq8.encode(&[0.26, 200.0, 7.0], &mut c);
        assert_eq!(c, [3, 255, 0]);
        sq8.encode(&[-3.0, -1.2, 5.0], &mut c);
        assert_eq!(c, [0, 0, 0]);
        let mut v = [0.0f32; 3];
        sq8.decode(&[3, 4, 9], &mut v);
        assert_eq!(v, [0.3, 1.0, 5.0]);
    }

    #[test]
    fn training_spans_each_dimension_and_a_constant_dimension_is_exact() {
        let rows = [[1.0f32, 4.0, 2.0], [3.0, 4.0, -2.0]];
        let sq8 = Sq8::train(3, rows.iter().map(|r| &r[..]));
        assert_eq!(sq8.offsets(), &[1.0, 4.0, -2.0]);
        assert_eq!(sq8.steps(), &[2.0 / 255.0, 0.0, 4.0 / 255.0]);
        let mut c = [0u8; 3];
        let mut back = [0.0f32; 3];
        for r in &rows {
            sq8.encode(r, &mut c);
            sq8.decode(&c, &mut back);
            assert_eq!(&back, r, "the range's ends are codes 0 and 255");
        }
        let none = Sq8::train(2, std::iter::empty());
        assert_eq!((none.offsets(), none.steps()), (&[0.0, 0.0][..], &[0.0, 0.0][..]));
        let huge = [[-f32::MAX, 0.0], [f32::MAX, 0.0]];
        let wide = Sq8::train(2, huge.iter().map(|r| &r[..]));
        assert!(wide.steps()[0].is_finite(), "a range wider than f32 still has a finite step");
    }

    #[test]
    fn bad_parameters_are_refused() {
        assert_eq!(Sq8::from_parts(vec![], vec![]), Err(Sq8Error::Shape { offsets: 0, steps: 0 }));
        assert_eq!(Sq8::from_parts(vec![0.0], vec![]), Err(Sq8Error::Shape { offsets: 1, steps: 0 }));
        assert!(matches!(Sq8::from_parts(vec![0.0, 1.0], vec![1.0, -1.0]), Err(Sq8Error::BadParameter { dim: 1, .. })));
        assert!(matches!(Sq8::from_parts(vec![f32::NAN], vec![1.0]), Err(Sq8Error::BadParameter { dim: 0, .. })));
        assert!(matches!(Sq8::from_parts(vec![0.0], vec![f32::INFINITY]), Err(Sq8Error::BadParameter { .. })));
    }

    /// The decoded distance, and how far a code distance may stray from it: each weight is
    /// rounded by at most α/2, times a code of at most 255 (twice under l2).
    fn decoded(sq8: &Sq8, metric: Metric, q: &[f32], code: &[u8]) -> (f32, f32) {
        let mut x = vec![0.0f32; code.len()];
        sq8.decode(code, &mut x);
        let (want, w) = if metric == Metric::Cosine {
            let unit = Metric::Cosine.prepare(q);
            let w: Vec<f64> = unit.iter().zip(sq8.steps()).map(|(&q, &s)| f64::from(q * s)).collect();
            (Distance::new(Metric::InnerProduct).eval(&unit, &x), w)
        } else if metric == Metric::L2 {
            let w = q.iter().zip(sq8.offsets()).zip(sq8.steps()).map(|((&q, &l), &s)| f64::from((q - l) * s));
            (Distance::new(metric).eval(q, &x), w.collect())
        } else {
            (Distance::new(metric).eval(q, &x), q.iter().zip(sq8.steps()).map(|(&q, &s)| f64::from(q * s)).collect())
        };
        let alpha = w.iter().fold(0.0f64, |m, x| m.max(x.abs())) / 127.0;
        let scale = if metric == Metric::L2 { 2.0 } else { 1.0 };
        let tol = scale * alpha / 2.0 * code.iter().map(|&c| f64::from(c)).sum::<f64>()
            + 1e-5 * f64::from(want.abs().max(1.0));
        (want, tol as f32)
    }

    #[test]
    fn a_query_scores_the_decoded_vector_under_every_metric() {
        let sq8 = Sq8::from_parts(vec![-1.0, 0.0, 2.0, 0.5], vec![0.01, 0.02, 0.0, 0.004]).unwrap();
        let code = [17u8, 250, 0, 128];
        let q = [0.3f32, -0.7, 2.5, 0.1];
        for metric in Metric::ALL {
            let got = Sq8Query::new(&sq8, metric, &q).distance(&code, sq8.code_norm(&code));
            let (want, tol) = decoded(&sq8, metric, &q, &code);
            assert!((got - want).abs() <= tol, "{metric}: got {got}, want {want} (tol {tol})");
        }
    }

    #[test]
    fn weights_that_are_whole_levels_score_exactly() {
        // Steps of 1 from 0 and an integer query: every weight is a multiple of α, so the only
        // error left is f32's.
        let sq8 = Sq8::from_parts(vec![0.0; 3], vec![1.0; 3]).unwrap();
        let (q, code) = ([127.0f32, -127.0, 0.0], [3u8, 4, 200]);
        assert_eq!(Sq8Query::new(&sq8, Metric::InnerProduct, &q).distance(&code, 0.0), 1.0 - (381.0 - 508.0));
        let l2 = Sq8Query::new(&sq8, Metric::L2, &q).distance(&code, sq8.code_norm(&code));
        assert_eq!(l2, (124.0f32 * 124.0) + (131.0 * 131.0) + (200.0 * 200.0));
    }

    #[test]
    fn one_to_many_equals_single_calls() {
        let dim = 37;
        let stride = 64;
        let sq8 = Sq8::from_parts((0..dim).map(|i| i as f32 * 0.1).collect(), vec![0.01; dim]).unwrap();
        let codes: Vec<u8> = (0..stride * 9).map(|i| (i * 31 % 256) as u8).collect();
        let norms: Vec<f32> = codes.chunks(stride).map(|c| sq8.code_norm(&c[..dim])).collect();
        let q: Vec<f32> = (0..dim).map(|i| (i as f32).sin()).collect();
        let rows = [8u32, 0, 3, 3, 5];
        for metric in Metric::ALL {
            let query = Sq8Query::new(&sq8, metric, &q);
            let mut out = [0.0f32; 5];
            query.one_to_many(&codes, stride, &norms, &rows, &mut out);
            for (&r, &d) in rows.iter().zip(&out) {
                let s = r as usize * stride;
                assert_eq!(d, query.distance(&codes[s..s + dim], norms[r as usize]), "{metric} row {r}");
            }
        }
    }
}

//! Portable SIMD kernels on `wide::f32x8`.
//!
//! `wide` chooses its instructions at compile time, so in a default x86-64 build this is SSE2
//! code (two 4-lane halves); with `-C target-cpu=native` it becomes AVX2. It is the path on every
//! target without a faster run-time choice, and is always available.

use wide::{f32x8, i16x16, i32x8};

const LANES: usize = 8;

#[inline(always)]
fn load(s: &[f32]) -> f32x8 {
    let arr: [f32; LANES] = s[..LANES].try_into().expect("slice of 8 lanes");
    f32x8::from(arr)
}

/// Squared Euclidean distance.
pub fn l2_sq(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "vectors of different lengths");
    let (mut acc0, mut acc1) = (f32x8::ZERO, f32x8::ZERO);
    let mut ca = a.chunks_exact(2 * LANES);
    let mut cb = b.chunks_exact(2 * LANES);
    for (x, y) in (&mut ca).zip(&mut cb) {
        let d0 = load(x) - load(y);
        let d1 = load(&x[LANES..]) - load(&y[LANES..]);
        acc0 = d0.mul_add(d0, acc0);
        acc1 = d1.mul_add(d1, acc1);
    }
    let (ra, rb) = (ca.remainder(), cb.remainder());
    let mut sum = (acc0 + acc1).reduce_add();
    let split = ra.len() / LANES * LANES;
    if split > 0 {
        let d = load(ra) - load(rb);
        sum += (d * d).reduce_add();
    }
    for (&x, &y) in ra[split..].iter().zip(&rb[split..]) {
        let d = x - y;
        sum += d * d;
    }
    sum
}

/// Dot product.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "vectors of different lengths");
    let (mut acc0, mut acc1) = (f32x8::ZERO, f32x8::ZERO);
    let mut ca = a.chunks_exact(2 * LANES);
    let mut cb = b.chunks_exact(2 * LANES);
    for (x, y) in (&mut ca).zip(&mut cb) {
        acc0 = load(x).mul_add(load(y), acc0);
        acc1 = load(&x[LANES..]).mul_add(load(&y[LANES..]), acc1);
    }
    let (ra, rb) = (ca.remainder(), cb.remainder());
    let mut sum = (acc0 + acc1).reduce_add();
    let split = ra.len() / LANES * LANES;
    if split > 0 {
        sum += (load(ra) * load(rb)).reduce_add();
    }
    for (&x, &y) in ra[split..].iter().zip(&rb[split..]) {
        sum += x * y;
    }
    sum
}

/// Cosine distance `1 - cos(a, b)`; `1` when either vector has zero norm.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "vectors of different lengths");
    let (mut ab, mut aa, mut bb) = (f32x8::ZERO, f32x8::ZERO, f32x8::ZERO);
    let mut ca = a.chunks_exact(LANES);
    let mut cb = b.chunks_exact(LANES);
    for (x, y) in (&mut ca).zip(&mut cb) {
        let (x, y) = (load(x), load(y));
        ab = x.mul_add(y, ab);
        aa = x.mul_add(x, aa);
        bb = y.mul_add(y, bb);
    }
    let (mut ab, mut aa, mut bb) = (ab.reduce_add(), aa.reduce_add(), bb.reduce_add());
    for (&x, &y) in ca.remainder().iter().zip(cb.remainder()) {
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    crate::scalar::cosine_from_parts(ab, aa, bb)
}

/// `Σ c_i w_i` over at most [`CODE_CHUNK`](crate::CODE_CHUNK) codes (so the `i32` sum cannot
/// overflow). Sixteen codes at a time widened to 16 bits, where one product (at most
/// 255 × 128) fits, and multiplied pairwise into 32-bit sums (`i16x16::dot`: `pmaddwd` on
/// SSE2, `vmull` and a pairwise add on NEON); a plain loop over 32-bit products, the first
/// version, was not vectorised on SSE2 (no 32-bit multiply before SSE4.1): 84 ns at d = 384.
pub fn dot_u8_i8(c: &[u8], w: &[i8]) -> i32 {
    const N: usize = 16;
    assert_eq!(c.len(), w.len(), "codes and weights of different lengths");
    debug_assert!(c.len() <= crate::CODE_CHUNK);
    let mut acc = i32x8::ZERO;
    let (mut cc, mut cw) = (c.chunks_exact(N), w.chunks_exact(N));
    for (c, w) in (&mut cc).zip(&mut cw) {
        let c: [i16; N] = std::array::from_fn(|j| i16::from(c[j]));
        let w: [i16; N] = std::array::from_fn(|j| i16::from(w[j]));
        acc += i16x16::from(c).dot(i16x16::from(w));
    }
    let tail: i32 = cc.remainder().iter().zip(cw.remainder()).map(|(&c, &w)| i32::from(c) * i32::from(w)).sum();
    acc.reduce_add() + tail
}

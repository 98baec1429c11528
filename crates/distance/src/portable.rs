//! Portable SIMD kernels on `wide::f32x8`.
//!
//! `wide` chooses its instructions at compile time, so in a default x86-64 build this is SSE2
//! code (two 4-lane halves); with `-C target-cpu=native` it becomes AVX2. It is the path on every
//! target without a faster run-time choice, and is always available.

use wide::f32x8;

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

#[inline(always)]
fn load_codes(c: &[u8]) -> f32x8 {
    let c: [u8; LANES] = c[..LANES].try_into().expect("slice of 8 codes");
    f32x8::from(c.map(f32::from))
}

/// `Σ w_i c_i` on 8-bit codes.
pub fn sq8_dot(w: &[f32], c: &[u8]) -> f32 {
    assert_eq!(w.len(), c.len(), "weights and codes of different lengths");
    let mut acc = f32x8::ZERO;
    let mut cw = w.chunks_exact(LANES);
    let mut cc = c.chunks_exact(LANES);
    for (x, y) in (&mut cw).zip(&mut cc) {
        acc = load(x).mul_add(load_codes(y), acc);
    }
    let mut sum = acc.reduce_add();
    for (&x, &y) in cw.remainder().iter().zip(cc.remainder()) {
        sum += x * f32::from(y);
    }
    sum
}

/// `Σ (a_i - w_i c_i)²` on 8-bit codes.
pub fn sq8_l2(a: &[f32], w: &[f32], c: &[u8]) -> f32 {
    assert!(a.len() == c.len() && w.len() == c.len(), "query, weights and codes of different lengths");
    let mut acc = f32x8::ZERO;
    let mut ca = a.chunks_exact(LANES);
    let mut cw = w.chunks_exact(LANES);
    let mut cc = c.chunks_exact(LANES);
    for ((x, w), y) in (&mut ca).zip(&mut cw).zip(&mut cc) {
        let d = load(x) - load(w) * load_codes(y);
        acc = d.mul_add(d, acc);
    }
    let mut sum = acc.reduce_add();
    for ((&x, &w), &y) in ca.remainder().iter().zip(cw.remainder()).zip(cc.remainder()) {
        let d = x - w * f32::from(y);
        sum += d * d;
    }
    sum
}

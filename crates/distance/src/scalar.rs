//! Scalar reference kernels: the oracle every SIMD path is tested against.
//!
//! They accumulate in `f64`, so they are the most accurate of the paths, not the fastest.

/// Squared Euclidean distance, accumulated in `f64`.
pub fn l2_sq(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(&x, &y)| {
            let d = f64::from(x) - f64::from(y);
            d * d
        })
        .sum::<f64>() as f32
}

/// Dot product, accumulated in `f64`.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(&x, &y)| f64::from(x) * f64::from(y)).sum::<f64>() as f32
}

/// Cosine distance `1 - cos(a, b)`; `1` when either vector has zero norm; NaN when the
/// products overflow `f32`.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let (mut ab, mut aa, mut bb) = (0.0f64, 0.0f64, 0.0f64);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (f64::from(x), f64::from(y));
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    cosine_from_parts(ab as f32, aa as f32, bb as f32)
}

/// Combines a dot product and two squared norms into a cosine distance.
///
/// Shared by every path so that zero vectors behave the same everywhere.
pub(crate) fn cosine_from_parts(ab: f32, aa: f32, bb: f32) -> f32 {
    // Clamp rounding below zero, but let NaN (products that overflowed f32) through: callers
    // that rank by distance map NaN to +inf (`Distance::eval`).
    let clamp = |d: f32| if d < 0.0 { 0.0 } else { d };
    let denom = (aa * bb).sqrt();
    if denom > 0.0 && denom.is_finite() {
        clamp(1.0 - ab / denom)
    } else if denom > 0.0 {
        // Norms overflowed f32: recompute the ratio from the square roots separately.
        let d = aa.sqrt() * bb.sqrt();
        if d > 0.0 && d.is_finite() { clamp(1.0 - ab / d) } else { f32::NAN }
    } else {
        1.0
    }
}

/// `Σ c_i w_i` over 8-bit codes and signed 8-bit weights, exact: the reference of the code
/// kernel of [`Sq8Query`](crate::Sq8Query).
pub fn dot_u8_i8(c: &[u8], w: &[i8]) -> i64 {
    debug_assert_eq!(c.len(), w.len());
    c.iter().zip(w).map(|(&c, &w)| i64::from(c) * i64::from(w)).sum()
}

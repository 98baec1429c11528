//! x86-64 kernels on `std::arch` intrinsics, chosen at run time: the one unsafe module of this crate.
//!
//! Each kernel is an `unsafe fn` compiled with `#[target_feature]`; its safe wrapper checks the
//! slice lengths. The wrappers are handed out only by [`avx512_kernels`] and [`avx2_kernels`],
//! which return `None` unless the running CPU reports the features, so no wrapper can be reached
//! on a CPU that lacks them.
//!
//! Tails are handled with masked loads on AVX-512 (no scalar loop) and a scalar loop on AVX2.

use core::arch::x86_64::*;

use crate::{KernelSet, SimdPath};

/// The AVX-512F kernels, if this CPU has AVX-512F.
pub(crate) fn avx512_kernels() -> Option<KernelSet> {
    if std::arch::is_x86_feature_detected!("avx512f") {
        Some(KernelSet {
            path: SimdPath::Avx512,
            l2_sq: l2_sq_avx512,
            dot: dot_avx512,
            cosine: cosine_avx512,
            sq8_dot: sq8_dot_avx512,
            sq8_l2: sq8_l2_avx512,
        })
    } else {
        None
    }
}

/// The AVX2 + FMA kernels, if this CPU has both.
pub(crate) fn avx2_kernels() -> Option<KernelSet> {
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        Some(KernelSet {
            path: SimdPath::Avx2Fma,
            l2_sq: l2_sq_avx2,
            dot: dot_avx2,
            cosine: cosine_avx2,
            sq8_dot: sq8_dot_avx2,
            sq8_l2: sq8_l2_avx2,
        })
    } else {
        None
    }
}

/// Hints the cache to fetch the 64-byte line at `ptr` (no effect on results; never faults).
#[inline(always)]
pub(crate) fn prefetch(ptr: *const f32) {
    // SAFETY: SSE is part of the x86-64 baseline, and a prefetch never dereferences its address
    // architecturally: an invalid address is ignored, so any pointer value is sound.
    unsafe { _mm_prefetch::<_MM_HINT_T0>(ptr.cast::<i8>()) }
}

macro_rules! safe_wrapper {
    ($name:ident, $inner:ident) => {
        fn $name(a: &[f32], b: &[f32]) -> f32 {
            assert_eq!(a.len(), b.len(), "vectors of different lengths");
            // SAFETY: this wrapper is only reachable through a KernelSet built after the CPU
            // reported the target features of `$inner`, and both slices have `a.len()` elements.
            unsafe { $inner(a, b) }
        }
    };
}

safe_wrapper!(l2_sq_avx512, l2_sq_avx512_impl);
safe_wrapper!(dot_avx512, dot_avx512_impl);
safe_wrapper!(cosine_avx512, cosine_avx512_impl);
safe_wrapper!(l2_sq_avx2, l2_sq_avx2_impl);
safe_wrapper!(dot_avx2, dot_avx2_impl);
safe_wrapper!(cosine_avx2, cosine_avx2_impl);

fn sq8_dot_avx512(w: &[f32], c: &[u8]) -> f32 {
    assert_eq!(w.len(), c.len(), "weights and codes of different lengths");
    // SAFETY: reachable only through a KernelSet built after the CPU reported AVX-512F; both
    // slices have `w.len()` elements.
    unsafe { sq8_dot_avx512_impl(w, c) }
}

fn sq8_l2_avx512(a: &[f32], w: &[f32], c: &[u8]) -> f32 {
    assert!(a.len() == c.len() && w.len() == c.len(), "query, weights and codes of different lengths");
    // SAFETY: as above; all three slices have `c.len()` elements.
    unsafe { sq8_l2_avx512_impl(a, w, c) }
}

fn sq8_dot_avx2(w: &[f32], c: &[u8]) -> f32 {
    assert_eq!(w.len(), c.len(), "weights and codes of different lengths");
    // SAFETY: reachable only through a KernelSet built after the CPU reported AVX2 and FMA;
    // both slices have `w.len()` elements.
    unsafe { sq8_dot_avx2_impl(w, c) }
}

fn sq8_l2_avx2(a: &[f32], w: &[f32], c: &[u8]) -> f32 {
    assert!(a.len() == c.len() && w.len() == c.len(), "query, weights and codes of different lengths");
    // SAFETY: as above; all three slices have `c.len()` elements.
    unsafe { sq8_l2_avx2_impl(a, w, c) }
}

/// The lanes of `len - i` remaining elements, as an AVX-512 load mask (`i < len`, fewer than 16 left).
#[inline(always)]
fn tail_mask(remaining: usize) -> __mmask16 {
    debug_assert!(remaining < 16);
    ((1u32 << remaining) - 1) as __mmask16
}

/// # Safety
/// The CPU must support AVX-512F, and `b.len() >= a.len()`.
#[target_feature(enable = "avx512f")]
unsafe fn l2_sq_avx512_impl(a: &[f32], b: &[f32]) -> f32 {
    debug_assert!(b.len() >= a.len());
    let n = a.len();
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    // Four accumulators: the FMA latency chain is a quarter as long as the loop.
    let (mut acc0, mut acc1) = (_mm512_setzero_ps(), _mm512_setzero_ps());
    let (mut acc2, mut acc3) = (_mm512_setzero_ps(), _mm512_setzero_ps());
    let mut i = 0;
    while i + 64 <= n {
        // SAFETY: i + 64 <= n, so lanes i..i+64 are inside both slices.
        unsafe {
            let d0 = _mm512_sub_ps(_mm512_loadu_ps(pa.add(i)), _mm512_loadu_ps(pb.add(i)));
            let d1 = _mm512_sub_ps(_mm512_loadu_ps(pa.add(i + 16)), _mm512_loadu_ps(pb.add(i + 16)));
            let d2 = _mm512_sub_ps(_mm512_loadu_ps(pa.add(i + 32)), _mm512_loadu_ps(pb.add(i + 32)));
            let d3 = _mm512_sub_ps(_mm512_loadu_ps(pa.add(i + 48)), _mm512_loadu_ps(pb.add(i + 48)));
            acc0 = _mm512_fmadd_ps(d0, d0, acc0);
            acc1 = _mm512_fmadd_ps(d1, d1, acc1);
            acc2 = _mm512_fmadd_ps(d2, d2, acc2);
            acc3 = _mm512_fmadd_ps(d3, d3, acc3);
        }
        i += 64;
    }
    while i + 16 <= n {
        // SAFETY: i + 16 <= n.
        unsafe {
            let d = _mm512_sub_ps(_mm512_loadu_ps(pa.add(i)), _mm512_loadu_ps(pb.add(i)));
            acc0 = _mm512_fmadd_ps(d, d, acc0);
        }
        i += 16;
    }
    acc0 = _mm512_add_ps(acc0, acc2);
    acc1 = _mm512_add_ps(acc1, acc3);
    if i < n {
        let m = tail_mask(n - i);
        // SAFETY: the mask enables only lanes i..n, which are inside both slices; masked-off lanes
        // are not read (AVX-512 masked loads suppress faults on disabled lanes).
        unsafe {
            let d = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, pa.add(i)), _mm512_maskz_loadu_ps(m, pb.add(i)));
            acc1 = _mm512_fmadd_ps(d, d, acc1);
        }
    }
    _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1))
}

/// # Safety
/// The CPU must support AVX-512F, and `b.len() >= a.len()`.
#[target_feature(enable = "avx512f")]
unsafe fn dot_avx512_impl(a: &[f32], b: &[f32]) -> f32 {
    debug_assert!(b.len() >= a.len());
    let n = a.len();
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let (mut acc0, mut acc1) = (_mm512_setzero_ps(), _mm512_setzero_ps());
    let (mut acc2, mut acc3) = (_mm512_setzero_ps(), _mm512_setzero_ps());
    let mut i = 0;
    while i + 64 <= n {
        // SAFETY: i + 64 <= n, so lanes i..i+64 are inside both slices.
        unsafe {
            acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(pa.add(i)), _mm512_loadu_ps(pb.add(i)), acc0);
            acc1 = _mm512_fmadd_ps(_mm512_loadu_ps(pa.add(i + 16)), _mm512_loadu_ps(pb.add(i + 16)), acc1);
            acc2 = _mm512_fmadd_ps(_mm512_loadu_ps(pa.add(i + 32)), _mm512_loadu_ps(pb.add(i + 32)), acc2);
            acc3 = _mm512_fmadd_ps(_mm512_loadu_ps(pa.add(i + 48)), _mm512_loadu_ps(pb.add(i + 48)), acc3);
        }
        i += 64;
    }
    while i + 16 <= n {
        // SAFETY: i + 16 <= n.
        unsafe {
            acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(pa.add(i)), _mm512_loadu_ps(pb.add(i)), acc0);
        }
        i += 16;
    }
    acc0 = _mm512_add_ps(acc0, acc2);
    acc1 = _mm512_add_ps(acc1, acc3);
    if i < n {
        let m = tail_mask(n - i);
        // SAFETY: only lanes i..n are enabled, and they are inside both slices.
        unsafe {
            acc1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, pa.add(i)), _mm512_maskz_loadu_ps(m, pb.add(i)), acc1);
        }
    }
    _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1))
}

/// # Safety
/// The CPU must support AVX-512F, and `b.len() >= a.len()`.
#[target_feature(enable = "avx512f")]
unsafe fn cosine_avx512_impl(a: &[f32], b: &[f32]) -> f32 {
    debug_assert!(b.len() >= a.len());
    let n = a.len();
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let (mut ab, mut aa, mut bb) = (_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps());
    let mut i = 0;
    while i < n {
        let m = if n - i >= 16 { 0xFFFF } else { tail_mask(n - i) };
        // SAFETY: the mask enables only lanes i..min(i + 16, n), all inside both slices.
        let (x, y) = unsafe { (_mm512_maskz_loadu_ps(m, pa.add(i)), _mm512_maskz_loadu_ps(m, pb.add(i))) };
        ab = _mm512_fmadd_ps(x, y, ab);
        aa = _mm512_fmadd_ps(x, x, aa);
        bb = _mm512_fmadd_ps(y, y, bb);
        i += 16;
    }
    crate::scalar::cosine_from_parts(_mm512_reduce_add_ps(ab), _mm512_reduce_add_ps(aa), _mm512_reduce_add_ps(bb))
}

/// Horizontal sum of the eight lanes.
///
/// # Safety
/// The CPU must support AVX (every caller is an AVX2 kernel).
#[inline]
#[target_feature(enable = "avx")]
unsafe fn hsum256(v: __m256) -> f32 {
    let mut lanes = [0.0f32; 8];
    // SAFETY: `lanes` is 8 writable f32; the unaligned store has no alignment requirement.
    unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), v) };
    // Pairwise, so the rounding matches a tree reduction rather than a long serial chain.
    ((lanes[0] + lanes[4]) + (lanes[1] + lanes[5])) + ((lanes[2] + lanes[6]) + (lanes[3] + lanes[7]))
}

/// # Safety
/// The CPU must support AVX2 and FMA, and `b.len() >= a.len()`.
#[target_feature(enable = "avx2,fma")]
unsafe fn l2_sq_avx2_impl(a: &[f32], b: &[f32]) -> f32 {
    debug_assert!(b.len() >= a.len());
    let n = a.len();
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let (mut acc0, mut acc1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
    let (mut acc2, mut acc3) = (_mm256_setzero_ps(), _mm256_setzero_ps());
    let mut i = 0;
    while i + 32 <= n {
        // SAFETY: i + 32 <= n, so lanes i..i+32 are inside both slices.
        unsafe {
            let d0 = _mm256_sub_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)));
            let d1 = _mm256_sub_ps(_mm256_loadu_ps(pa.add(i + 8)), _mm256_loadu_ps(pb.add(i + 8)));
            let d2 = _mm256_sub_ps(_mm256_loadu_ps(pa.add(i + 16)), _mm256_loadu_ps(pb.add(i + 16)));
            let d3 = _mm256_sub_ps(_mm256_loadu_ps(pa.add(i + 24)), _mm256_loadu_ps(pb.add(i + 24)));
            acc0 = _mm256_fmadd_ps(d0, d0, acc0);
            acc1 = _mm256_fmadd_ps(d1, d1, acc1);
            acc2 = _mm256_fmadd_ps(d2, d2, acc2);
            acc3 = _mm256_fmadd_ps(d3, d3, acc3);
        }
        i += 32;
    }
    acc0 = _mm256_add_ps(acc0, acc2);
    acc1 = _mm256_add_ps(acc1, acc3);
    while i + 16 <= n {
        // SAFETY: i + 16 <= n, so lanes i..i+16 are inside both slices.
        unsafe {
            let d0 = _mm256_sub_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)));
            let d1 = _mm256_sub_ps(_mm256_loadu_ps(pa.add(i + 8)), _mm256_loadu_ps(pb.add(i + 8)));
            acc0 = _mm256_fmadd_ps(d0, d0, acc0);
            acc1 = _mm256_fmadd_ps(d1, d1, acc1);
        }
        i += 16;
    }
    if i + 8 <= n {
        // SAFETY: i + 8 <= n.
        unsafe {
            let d = _mm256_sub_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)));
            acc0 = _mm256_fmadd_ps(d, d, acc0);
        }
        i += 8;
    }
    // SAFETY: this function runs only on CPUs with AVX2, which implies AVX.
    let mut sum = unsafe { hsum256(_mm256_add_ps(acc0, acc1)) };
    for j in i..n {
        let d = a[j] - b[j];
        sum += d * d;
    }
    sum
}

/// # Safety
/// The CPU must support AVX2 and FMA, and `b.len() >= a.len()`.
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_avx2_impl(a: &[f32], b: &[f32]) -> f32 {
    debug_assert!(b.len() >= a.len());
    let n = a.len();
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let (mut acc0, mut acc1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
    let (mut acc2, mut acc3) = (_mm256_setzero_ps(), _mm256_setzero_ps());
    let mut i = 0;
    while i + 32 <= n {
        // SAFETY: i + 32 <= n, so lanes i..i+32 are inside both slices.
        unsafe {
            acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), acc0);
            acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i + 8)), _mm256_loadu_ps(pb.add(i + 8)), acc1);
            acc2 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i + 16)), _mm256_loadu_ps(pb.add(i + 16)), acc2);
            acc3 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i + 24)), _mm256_loadu_ps(pb.add(i + 24)), acc3);
        }
        i += 32;
    }
    acc0 = _mm256_add_ps(acc0, acc2);
    acc1 = _mm256_add_ps(acc1, acc3);
    while i + 16 <= n {
        // SAFETY: i + 16 <= n, so lanes i..i+16 are inside both slices.
        unsafe {
            acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), acc0);
            acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i + 8)), _mm256_loadu_ps(pb.add(i + 8)), acc1);
        }
        i += 16;
    }
    if i + 8 <= n {
        // SAFETY: i + 8 <= n.
        unsafe {
            acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), acc0);
        }
        i += 8;
    }
    // SAFETY: this function runs only on CPUs with AVX2, which implies AVX.
    let mut sum = unsafe { hsum256(_mm256_add_ps(acc0, acc1)) };
    for j in i..n {
        sum += a[j] * b[j];
    }
    sum
}

/// # Safety
/// The CPU must support AVX2 and FMA, and `b.len() >= a.len()`.
#[target_feature(enable = "avx2,fma")]
unsafe fn cosine_avx2_impl(a: &[f32], b: &[f32]) -> f32 {
    debug_assert!(b.len() >= a.len());
    let n = a.len();
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let (mut ab, mut aa, mut bb) = (_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps());
    let mut i = 0;
    while i + 8 <= n {
        // SAFETY: i + 8 <= n, so lanes i..i+8 are inside both slices.
        let (x, y) = unsafe { (_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i))) };
        ab = _mm256_fmadd_ps(x, y, ab);
        aa = _mm256_fmadd_ps(x, x, aa);
        bb = _mm256_fmadd_ps(y, y, bb);
        i += 8;
    }
    // SAFETY: this function runs only on CPUs with AVX2, which implies AVX.
    let (mut sab, mut saa, mut sbb) = unsafe { (hsum256(ab), hsum256(aa), hsum256(bb)) };
    for j in i..n {
        sab += a[j] * b[j];
        saa += a[j] * a[j];
        sbb += b[j] * b[j];
    }
    crate::scalar::cosine_from_parts(sab, saa, sbb)
}

/// The sixteen codes at `p` as `f32` lanes.
///
/// # Safety
/// The CPU must support AVX-512F, and `p..p + 16` must be readable.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn codes16(p: *const u8) -> __m512 {
    // SAFETY: 16 readable bytes at `p` (the caller's contract); no alignment requirement.
    unsafe { _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128(p.cast()))) }
}

/// The last `c.len() - i` (fewer than 16) codes as `f32` lanes, the others zero. A 16-byte
/// load there could cross into an unmapped page, so the tail is copied first.
///
/// # Safety
/// The CPU must support AVX-512F.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn codes_tail(c: &[u8], i: usize) -> __m512 {
    let mut tail = [0u8; 16];
    tail[..c.len() - i].copy_from_slice(&c[i..]);
    // SAFETY: `tail` is 16 readable bytes.
    unsafe { codes16(tail.as_ptr()) }
}

/// # Safety
/// The CPU must support AVX-512F, and `c.len() >= w.len()`.
#[target_feature(enable = "avx512f")]
unsafe fn sq8_dot_avx512_impl(w: &[f32], c: &[u8]) -> f32 {
    debug_assert!(c.len() >= w.len());
    let (n, pw, pc) = (w.len(), w.as_ptr(), c.as_ptr());
    let (mut acc0, mut acc1) = (_mm512_setzero_ps(), _mm512_setzero_ps());
    let (mut acc2, mut acc3) = (_mm512_setzero_ps(), _mm512_setzero_ps());
    let mut i = 0;
    while i + 64 <= n {
        // SAFETY: i + 64 <= n, so lanes i..i+64 are inside both slices.
        unsafe {
            acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(pw.add(i)), codes16(pc.add(i)), acc0);
            acc1 = _mm512_fmadd_ps(_mm512_loadu_ps(pw.add(i + 16)), codes16(pc.add(i + 16)), acc1);
            acc2 = _mm512_fmadd_ps(_mm512_loadu_ps(pw.add(i + 32)), codes16(pc.add(i + 32)), acc2);
            acc3 = _mm512_fmadd_ps(_mm512_loadu_ps(pw.add(i + 48)), codes16(pc.add(i + 48)), acc3);
        }
        i += 64;
    }
    while i + 16 <= n {
        // SAFETY: i + 16 <= n.
        unsafe { acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(pw.add(i)), codes16(pc.add(i)), acc0) };
        i += 16;
    }
    if i < n {
        let m = tail_mask(n - i);
        // SAFETY: the mask enables only lanes i..n, inside `w`; `codes_tail` copies c[i..n].
        unsafe { acc1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, pw.add(i)), codes_tail(&c[..n], i), acc1) };
    }
    _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc0, acc2), _mm512_add_ps(acc1, acc3)))
}

/// # Safety
/// The CPU must support AVX-512F, and `w.len() >= a.len()`, `c.len() >= a.len()`.
#[target_feature(enable = "avx512f")]
unsafe fn sq8_l2_avx512_impl(a: &[f32], w: &[f32], c: &[u8]) -> f32 {
    debug_assert!(w.len() >= a.len() && c.len() >= a.len());
    let (n, pa, pw, pc) = (a.len(), a.as_ptr(), w.as_ptr(), c.as_ptr());
    let (mut acc0, mut acc1) = (_mm512_setzero_ps(), _mm512_setzero_ps());
    let (mut acc2, mut acc3) = (_mm512_setzero_ps(), _mm512_setzero_ps());
    let mut i = 0;
    while i + 64 <= n {
        // SAFETY: i + 64 <= n, so lanes i..i+64 are inside all three slices.
        unsafe {
            let d0 = _mm512_fnmadd_ps(_mm512_loadu_ps(pw.add(i)), codes16(pc.add(i)), _mm512_loadu_ps(pa.add(i)));
            let d1 = _mm512_fnmadd_ps(
                _mm512_loadu_ps(pw.add(i + 16)),
                codes16(pc.add(i + 16)),
                _mm512_loadu_ps(pa.add(i + 16)),
            );
            let d2 = _mm512_fnmadd_ps(
                _mm512_loadu_ps(pw.add(i + 32)),
                codes16(pc.add(i + 32)),
                _mm512_loadu_ps(pa.add(i + 32)),
            );
            let d3 = _mm512_fnmadd_ps(
                _mm512_loadu_ps(pw.add(i + 48)),
                codes16(pc.add(i + 48)),
                _mm512_loadu_ps(pa.add(i + 48)),
            );
            acc0 = _mm512_fmadd_ps(d0, d0, acc0);
            acc1 = _mm512_fmadd_ps(d1, d1, acc1);
            acc2 = _mm512_fmadd_ps(d2, d2, acc2);
            acc3 = _mm512_fmadd_ps(d3, d3, acc3);
        }
        i += 64;
    }
    while i + 16 <= n {
        // SAFETY: i + 16 <= n.
        unsafe {
            let d = _mm512_fnmadd_ps(_mm512_loadu_ps(pw.add(i)), codes16(pc.add(i)), _mm512_loadu_ps(pa.add(i)));
            acc0 = _mm512_fmadd_ps(d, d, acc0);
        }
        i += 16;
    }
    if i < n {
        let m = tail_mask(n - i);
        // SAFETY: the mask enables only lanes i..n, inside `a` and `w` (masked-off lanes are
        // zero in both, so they add nothing); `codes_tail` copies c[i..n].
        unsafe {
            let code = codes_tail(&c[..n], i);
            let d = _mm512_fnmadd_ps(_mm512_maskz_loadu_ps(m, pw.add(i)), code, _mm512_maskz_loadu_ps(m, pa.add(i)));
            acc1 = _mm512_fmadd_ps(d, d, acc1);
        }
    }
    _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc0, acc2), _mm512_add_ps(acc1, acc3)))
}

/// Eight codes from `c[i..i + 8]` as `f32` lanes.
///
/// # Safety
/// The CPU must support AVX2, and `i + 8 <= c.len()`.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn codes8(c: &[u8], i: usize) -> __m256 {
    debug_assert!(i + 8 <= c.len());
    // SAFETY: bytes i..i+8 are inside `c`; the 8-byte load has no alignment requirement.
    unsafe { _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64(c.as_ptr().add(i).cast()))) }
}

/// # Safety
/// The CPU must support AVX2 and FMA, and `c.len() >= w.len()`.
#[target_feature(enable = "avx2,fma")]
unsafe fn sq8_dot_avx2_impl(w: &[f32], c: &[u8]) -> f32 {
    debug_assert!(c.len() >= w.len());
    let (n, pw) = (w.len(), w.as_ptr());
    let (mut acc0, mut acc1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
    let (mut acc2, mut acc3) = (_mm256_setzero_ps(), _mm256_setzero_ps());
    let mut i = 0;
    while i + 32 <= n {
        // SAFETY: i + 32 <= n, so lanes i..i+32 are inside both slices.
        unsafe {
            acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(pw.add(i)), codes8(c, i), acc0);
            acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(pw.add(i + 8)), codes8(c, i + 8), acc1);
            acc2 = _mm256_fmadd_ps(_mm256_loadu_ps(pw.add(i + 16)), codes8(c, i + 16), acc2);
            acc3 = _mm256_fmadd_ps(_mm256_loadu_ps(pw.add(i + 24)), codes8(c, i + 24), acc3);
        }
        i += 32;
    }
    while i + 8 <= n {
        // SAFETY: i + 8 <= n.
        unsafe { acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(pw.add(i)), codes8(c, i), acc0) };
        i += 8;
    }
    // SAFETY: this function runs only on CPUs with AVX2, which implies AVX.
    let mut sum = unsafe { hsum256(_mm256_add_ps(_mm256_add_ps(acc0, acc2), _mm256_add_ps(acc1, acc3))) };
    for j in i..n {
        sum += w[j] * f32::from(c[j]);
    }
    sum
}

/// # Safety
/// The CPU must support AVX2 and FMA, and `w.len() >= a.len()`, `c.len() >= a.len()`.
#[target_feature(enable = "avx2,fma")]
unsafe fn sq8_l2_avx2_impl(a: &[f32], w: &[f32], c: &[u8]) -> f32 {
    debug_assert!(w.len() >= a.len() && c.len() >= a.len());
    let (n, pa, pw) = (a.len(), a.as_ptr(), w.as_ptr());
    let (mut acc0, mut acc1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
    let mut i = 0;
    while i + 16 <= n {
        // SAFETY: i + 16 <= n, so lanes i..i+16 are inside all three slices.
        unsafe {
            let d0 = _mm256_fnmadd_ps(_mm256_loadu_ps(pw.add(i)), codes8(c, i), _mm256_loadu_ps(pa.add(i)));
            let d1 = _mm256_fnmadd_ps(_mm256_loadu_ps(pw.add(i + 8)), codes8(c, i + 8), _mm256_loadu_ps(pa.add(i + 8)));
            acc0 = _mm256_fmadd_ps(d0, d0, acc0);
            acc1 = _mm256_fmadd_ps(d1, d1, acc1);
        }
        i += 16;
    }
    if i + 8 <= n {
        // SAFETY: i + 8 <= n.
        unsafe {
            let d = _mm256_fnmadd_ps(_mm256_loadu_ps(pw.add(i)), codes8(c, i), _mm256_loadu_ps(pa.add(i)));
            acc0 = _mm256_fmadd_ps(d, d, acc0);
        }
        i += 8;
    }
    // SAFETY: this function runs only on CPUs with AVX2, which implies AVX.
    let mut sum = unsafe { hsum256(_mm256_add_ps(acc0, acc1)) };
    for j in i..n {
        let d = a[j] - w[j] * f32::from(c[j]);
        sum += d * d;
    }
    sum
}

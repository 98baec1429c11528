//! x86-64 kernels on `std::arch` intrinsics, chosen at run time: the one unsafe module of this crate.
//!
//! Each kernel is an `unsafe fn` compiled with `#[target_feature]`; its safe wrapper checks the
//! slice lengths. The wrappers are handed out only by [`avx512_kernels`] and [`avx2_kernels`],
//! which return `None` unless the running CPU reports the features, so no wrapper can be reached
//! on a CPU that lacks them.
//!
//! Tails are handled with masked loads on AVX-512 (no scalar loop) and a scalar loop on AVX2.

use core::arch::x86_64::*;

use crate::{CodeDot, KernelSet, SimdPath};

/// The AVX-512F kernels, if this CPU has AVX-512F.
pub(crate) fn avx512_kernels() -> Option<KernelSet> {
    if std::arch::is_x86_feature_detected!("avx512f") {
        let code = avx512_code_kernel();
        Some(KernelSet {
            path: SimdPath::Avx512,
            l2_sq: l2_sq_avx512,
            dot: dot_avx512,
            cosine: cosine_avx512,
            dot_u8_i8: code.0,
            code_path: code.1,
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
            dot_u8_i8: dot_u8_i8_avx2,
            code_path: "avx2",
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

/// The widest code kernel this CPU runs within the AVX-512 path, with its name.
fn avx512_code_kernel() -> (CodeDot, &'static str) {
    let has = |f: &str| match f {
        "vnni" => std::arch::is_x86_feature_detected!("avx512vnni"),
        "bw" => std::arch::is_x86_feature_detected!("avx512bw"),
        _ => false,
    };
    if has("vnni") && has("bw") {
        (dot_u8_i8_vnni, "avx512-vnni")
    } else if has("bw") {
        (dot_u8_i8_avx512bw, "avx512bw")
    } else if std::arch::is_x86_feature_detected!("avx2") {
        (dot_u8_i8_avx2, "avx2")
    } else {
        (crate::portable::dot_u8_i8, "portable")
    }
}

/// Every code kernel this CPU runs, by name: for tests that hold each to the reference.
#[cfg(test)]
fn code_kernels() -> Vec<(CodeDot, &'static str)> {
    let mut all: Vec<(CodeDot, &'static str)> = Vec::new();
    if std::arch::is_x86_feature_detected!("avx512vnni") && std::arch::is_x86_feature_detected!("avx512bw") {
        all.push((dot_u8_i8_vnni, "avx512-vnni"));
    }
    if std::arch::is_x86_feature_detected!("avx512bw") {
        all.push((dot_u8_i8_avx512bw, "avx512bw"));
    }
    if std::arch::is_x86_feature_detected!("avx2") {
        all.push((dot_u8_i8_avx2, "avx2"));
    }
    all
}

fn dot_u8_i8_vnni(c: &[u8], w: &[i8]) -> i32 {
    assert_eq!(c.len(), w.len(), "codes and weights of different lengths");
    debug_assert!(c.len() <= crate::CODE_CHUNK);
    // SAFETY: handed out only after the CPU reported AVX-512F, BW and VNNI (avx512_code_kernel,
    // code_kernels); both slices have `c.len()` elements.
    unsafe { dot_u8_i8_vnni_impl(c, w) }
}

fn dot_u8_i8_avx512bw(c: &[u8], w: &[i8]) -> i32 {
    assert_eq!(c.len(), w.len(), "codes and weights of different lengths");
    debug_assert!(c.len() <= crate::CODE_CHUNK);
    // SAFETY: handed out only after the CPU reported AVX-512F and BW; equal lengths.
    unsafe { dot_u8_i8_avx512bw_impl(c, w) }
}

fn dot_u8_i8_avx2(c: &[u8], w: &[i8]) -> i32 {
    assert_eq!(c.len(), w.len(), "codes and weights of different lengths");
    debug_assert!(c.len() <= crate::CODE_CHUNK);
    // SAFETY: handed out only after the CPU reported AVX2; equal lengths.
    unsafe { dot_u8_i8_avx2_impl(c, w) }
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

/// # Safety
/// The CPU must support AVX-512F, BW and VNNI, and `w.len() >= c.len()`.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn dot_u8_i8_vnni_impl(c: &[u8], w: &[i8]) -> i32 {
    debug_assert!(w.len() >= c.len());
    let (n, pc, pw) = (c.len(), c.as_ptr(), w.as_ptr());
    let (mut acc0, mut acc1) = (_mm512_setzero_si512(), _mm512_setzero_si512());
    let mut i = 0;
    while i + 128 <= n {
        // SAFETY: i + 128 <= n, so bytes i..i+128 are inside both slices.
        unsafe {
            acc0 =
                _mm512_dpbusd_epi32(acc0, _mm512_loadu_si512(pc.add(i).cast()), _mm512_loadu_si512(pw.add(i).cast()));
            acc1 = _mm512_dpbusd_epi32(
                acc1,
                _mm512_loadu_si512(pc.add(i + 64).cast()),
                _mm512_loadu_si512(pw.add(i + 64).cast()),
            );
        }
        i += 128;
    }
    while i < n {
        let left = n - i;
        let m: __mmask64 = if left >= 64 { u64::MAX } else { (1u64 << left) - 1 };
        // SAFETY: the mask enables only bytes i..min(i + 64, n), inside both slices; masked-off
        // bytes are not read (AVX-512 masked loads suppress faults on disabled lanes) and are zero.
        unsafe {
            let (x, y) = (_mm512_maskz_loadu_epi8(m, pc.add(i).cast()), _mm512_maskz_loadu_epi8(m, pw.add(i).cast()));
            acc0 = _mm512_dpbusd_epi32(acc0, x, y);
        }
        i += 64;
    }
    _mm512_reduce_add_epi32(_mm512_add_epi32(acc0, acc1))
}

/// # Safety
/// The CPU must support AVX-512F and BW, and `w.len() >= c.len()`.
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn dot_u8_i8_avx512bw_impl(c: &[u8], w: &[i8]) -> i32 {
    debug_assert!(w.len() >= c.len());
    let (n, pc, pw) = (c.len(), c.as_ptr(), w.as_ptr());
    let (mut acc0, mut acc1) = (_mm512_setzero_si512(), _mm512_setzero_si512());
    let mut i = 0;
    while i + 64 <= n {
        // SAFETY: i + 64 <= n, so bytes i..i+64 are inside both slices. Codes widen to 0..=255
        // and weights to -128..=127 as i16; madd sums pairs of products into i32 without overflow.
        unsafe {
            let c0 = _mm512_cvtepu8_epi16(_mm256_loadu_si256(pc.add(i).cast()));
            let w0 = _mm512_cvtepi8_epi16(_mm256_loadu_si256(pw.add(i).cast()));
            let c1 = _mm512_cvtepu8_epi16(_mm256_loadu_si256(pc.add(i + 32).cast()));
            let w1 = _mm512_cvtepi8_epi16(_mm256_loadu_si256(pw.add(i + 32).cast()));
            acc0 = _mm512_add_epi32(acc0, _mm512_madd_epi16(c0, w0));
            acc1 = _mm512_add_epi32(acc1, _mm512_madd_epi16(c1, w1));
        }
        i += 64;
    }
    let mut sum = _mm512_reduce_add_epi32(_mm512_add_epi32(acc0, acc1));
    for j in i..n {
        sum += i32::from(c[j]) * i32::from(w[j]);
    }
    sum
}

/// # Safety
/// The CPU must support AVX2, and `w.len() >= c.len()`.
#[target_feature(enable = "avx2")]
unsafe fn dot_u8_i8_avx2_impl(c: &[u8], w: &[i8]) -> i32 {
    debug_assert!(w.len() >= c.len());
    let (n, pc, pw) = (c.len(), c.as_ptr(), w.as_ptr());
    let (mut acc0, mut acc1) = (_mm256_setzero_si256(), _mm256_setzero_si256());
    let mut i = 0;
    while i + 32 <= n {
        // SAFETY: i + 32 <= n, so bytes i..i+32 are inside both slices; widened as in the
        // AVX-512BW kernel, so no product or pair sum overflows.
        unsafe {
            let c0 = _mm256_cvtepu8_epi16(_mm_loadu_si128(pc.add(i).cast()));
            let w0 = _mm256_cvtepi8_epi16(_mm_loadu_si128(pw.add(i).cast()));
            let c1 = _mm256_cvtepu8_epi16(_mm_loadu_si128(pc.add(i + 16).cast()));
            let w1 = _mm256_cvtepi8_epi16(_mm_loadu_si128(pw.add(i + 16).cast()));
            acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(c0, w0));
            acc1 = _mm256_add_epi32(acc1, _mm256_madd_epi16(c1, w1));
        }
        i += 32;
    }
    let mut lanes = [0i32; 8];
    // SAFETY: `lanes` is 8 writable i32; the unaligned store has no alignment requirement.
    unsafe { _mm256_storeu_si256(lanes.as_mut_ptr().cast(), _mm256_add_epi32(acc0, acc1)) };
    let mut sum: i32 = lanes.iter().sum();
    for j in i..n {
        sum += i32::from(c[j]) * i32::from(w[j]);
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_kernel_of_this_cpu_equals_the_reference() {
        let c: Vec<u8> = (0..1200u32).map(|i| (i * 37 % 256) as u8).collect();
        let w: Vec<i8> = (0..1200i32).map(|i| ((i * 53) % 256 - 128) as i8).collect();
        for (kernel, name) in code_kernels() {
            for len in 0..=1100 {
                for off in [0, 1, 5] {
                    let (c, w) = (&c[off..off + len], &w[5 - off..5 - off + len]);
                    assert_eq!(i64::from(kernel(c, w)), crate::scalar::dot_u8_i8(c, w), "{name} len {len} off {off}");
                }
            }
            let (c, w) = (vec![255u8; crate::CODE_CHUNK], vec![-128i8; crate::CODE_CHUNK]);
            assert_eq!(i64::from(kernel(&c, &w)), crate::scalar::dot_u8_i8(&c, &w), "{name}: the extreme chunk");
        }
    }
}

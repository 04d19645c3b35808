//! bf16 GEMM on AVX512_BF16: C = alpha A B + beta C with A and B rounded to bf16 (round to nearest even, as
//! `vcvtne2ps2bf16` rounds) while they are packed, and every sum kept in f32 by `vdpbf16ps`.
//!
//! `vdpbf16ps acc, a, b` adds to each of 16 f32 lanes the products of a bf16 *pair*: lane j gets
//! acc + a[2j+1] b[2j+1] and then + a[2j] b[2j] (two roundings; a product of two bf16 is exact in f32). So the
//! packed operands hold pairs of consecutive K steps side by side:
//! - B~: [kp][NR] u32, kp = kc / 2 rounded up: lane j of pair-step p is (B[2p, j], B[2p+1, j]), low half first;
//! - A~: [kp][MR] u32, the same pair of row r, broadcast to all 16 lanes by the tile.
//!
//! The register tile is the f32 kernel's 14 x 32 (28 accumulators, 2 vectors of B~, 14 broadcasts per step),
//! each step now covering two K terms. An odd K is padded with a zero step. Each element's sum is one chain in
//! K order, pair by pair (odd term first, see above), rounded into C every [`KC`] terms: C = alpha ab + beta C
//! for the first block, then with beta = 1. `gemm/bf16.rs`'s `reference` sums in exactly that order, and the
//! tests compare bit for bit.
//!
//! The packing buffers are per thread and sized once (A~ [`MC`] x [`KC`], B~ [`NC`] x [`KC`], as u32 pairs:
//! 112 KiB and 1 MiB), so a training step allocates nothing.

use super::pack::{lanes, transpose16};
use std::arch::x86_64::*;
use std::cell::RefCell;

/// K terms per rounding into C (an even number: pairs never straddle two blocks).
pub(crate) const KC: usize = 512;
const KP: usize = KC / 2;
const MR: usize = 14;
const NR: usize = 32;
const MC: usize = MR * 8;
const NC: usize = NR * 32;

#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([u32; 16]);

thread_local! {
    /// A~ and B~ of this thread, allocated by its first call at their full size.
    static PACKS: RefCell<(Vec<Line>, Vec<Line>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// A~ and B~ at their full size, if this thread has none yet.
fn allocate_packs(ap: &mut Vec<Line>, bp: &mut Vec<Line>) {
    if ap.is_empty() {
        *ap = vec![Line([0; 16]); MC * KP / 16];
        *bp = vec![Line([0; 16]); NC * KP / 16];
    }
}

/// Allocates this thread's packing buffers now (see the f32 module's `prepare_thread`).
pub(crate) fn prepare_thread() {
    PACKS.with_borrow_mut(|(ap, bp)| allocate_packs(ap, bp));
}

/// Whether this CPU runs this module: AVX-512F, BW (the pair interleave) and AVX512_BF16.
pub(crate) fn available() -> bool {
    is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512bw")
        && is_x86_feature_detected!("avx512bf16")
}

/// Lane 2j of the result is lane j of `x`'s low 16 bf16, lane 2j + 1 lane j of its high 16: two rows of 16
/// converted side by side become 16 (even, odd) pairs.
const INTERLEAVE: [u16; 32] = {
    let mut idx = [0u16; 32];
    let mut j = 0;
    while j < 16 {
        idx[2 * j] = j as u16;
        idx[2 * j + 1] = 16 + j as u16;
        j += 1;
    }
    idx
};

/// Two vectors of 16 values (steps p and p + 1 of 16 lines) as 16 bf16 pairs, lane j = (lo[j], hi[j]).
///
/// # Safety
/// AVX-512F/BW/BF16.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
unsafe fn pair_rows(lo: __m512, hi: __m512) -> __m512i {
    let both: __m512i = std::mem::transmute(_mm512_cvtne2ps_pbh(hi, lo));
    _mm512_permutexvar_epi16(_mm512_loadu_si512(INTERLEAVE.as_ptr().cast()), both)
}

/// 32 consecutive K values (`n` <= 32 of them, zero past it) as 16 bf16 pairs, pair q = (x[2q], x[2q+1]).
///
/// # Safety
/// As [`pair_rows`]; `src` readable for `n` floats.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
pub(super) unsafe fn pairs_along(src: *const f32, n: usize) -> __m512 {
    let lo = _mm512_maskz_loadu_ps(lanes(n), src);
    let hi = _mm512_maskz_loadu_ps(lanes(n.saturating_sub(16)), src.add(16.min(n)));
    // cvtne2ps puts its second operand in the low half: bf16 lane i is x[i], i.e. pairs in K order.
    std::mem::transmute(_mm512_cvtne2ps_pbh(hi, lo))
}

/// Packs `lines` <= 16 lines of a strided operand for `kc` K steps into `kp` rows of pairs, `dst` rows
/// `dst_stride` u32 apart, `store` lanes stored (lanes past `lines` zero). Element (line l, step p) is at
/// `src[l * ls + p * ks]`.
///
/// # Safety
/// AVX-512F/BW/BF16; the source is readable for those elements; `dst` writable for kc / 2 rounded up rows.
#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn pack_lines(
    src: *const f32,
    ls: isize,
    ks: isize,
    lines: usize,
    kc: usize,
    dst: *mut u32,
    dst_stride: usize,
) {
    let store = lanes(dst_stride);
    let kp = kc.div_ceil(2);
    if ks == 1 {
        // Each line runs along K: 32 steps of a line are 16 pairs; transpose 16 lines x 16 pairs in registers.
        for q0 in (0..kp).step_by(16) {
            let n = (kc - 2 * q0).min(32);
            let mut block = [_mm512_setzero_ps(); 16];
            for (l, row) in block.iter_mut().enumerate().take(lines) {
                *row = pairs_along(src.offset(l as isize * ls).add(2 * q0), n);
            }
            transpose16(&mut block);
            for (q, row) in block.iter().enumerate().take(n.div_ceil(2)) {
                _mm512_mask_storeu_ps(dst.add((q0 + q) * dst_stride) as *mut f32, store, *row);
            }
        }
    } else if ls == 1 {
        // Lines are contiguous at each step: convert two steps and interleave them.
        let mask = lanes(lines);
        for q in 0..kp {
            let p = 2 * q;
            let lo = _mm512_maskz_loadu_ps(mask, src.offset(p as isize * ks));
            let hi = if p + 1 < kc {
                _mm512_maskz_loadu_ps(mask, src.offset((p + 1) as isize * ks))
            } else {
                _mm512_setzero_ps()
            };
            _mm512_mask_storeu_epi32(dst.add(q * dst_stride) as *mut i32, store, pair_rows(lo, hi));
        }
    } else {
        for q in 0..kp {
            let p = 2 * q;
            let mut lo = [0f32; 16];
            let mut hi = [0f32; 16];
            for l in 0..lines {
                lo[l] = *src.offset(l as isize * ls + p as isize * ks);
                if p + 1 < kc {
                    hi[l] = *src.offset(l as isize * ls + (p + 1) as isize * ks);
                }
            }
            let v = pair_rows(_mm512_loadu_ps(lo.as_ptr()), _mm512_loadu_ps(hi.as_ptr()));
            _mm512_mask_storeu_epi32(dst.add(q * dst_stride) as *mut i32, store, v);
        }
    }
}

/// Packs rows 0..kc and columns 0..nc of B (from `b`) as B~: [`NR`]-column panels of [kc / 2 rounded up][NR]
/// pairs, panel q at `dst + q NR kp`; columns past nc are zero. What [`dot_gemm`] packs per rounding block, and
/// what [`super::PackedB::pack_bf16`] keeps for a whole weight.
///
/// # Safety
/// As [`pack_lines`]; B's view is in bounds for those rows and columns; `dst` holds nc rounded up to NR, times
/// kc / 2 rounded up, u32.
#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
pub(super) unsafe fn pack_b(kc: usize, nc: usize, b: *const f32, rsb: isize, csb: isize, dst: *mut u32) {
    pack_b_panels(kc, nc, b, rsb, csb, dst, kc.div_ceil(2))
}

/// [`pack_b`] with `kp` >= kc / 2 (rounded up) rows per panel, those past kc / 2 zero: the AMX kernel's B~,
/// whose panels are whole 16-row tiles.
///
/// # Safety
/// As [`pack_b`], with `dst` holding nc rounded up to NR, times kp, u32.
#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
pub(super) unsafe fn pack_b_panels(
    kc: usize,
    nc: usize,
    b: *const f32,
    rsb: isize,
    csb: isize,
    dst: *mut u32,
    kp: usize,
) {
    for (q, jr) in (0..nc).step_by(NR).enumerate() {
        for v in 0..2 {
            let (j, cols) = (jr + 16 * v, nc.saturating_sub(jr + 16 * v).min(16));
            pack_lines(b.offset(j as isize * csb), csb, rsb, cols, kc, dst.add(q * NR * kp + 16 * v), NR);
        }
        for row in kc.div_ceil(2)..kp {
            _mm512_storeu_si512(dst.add(q * NR * kp + row * NR).cast(), _mm512_setzero_si512());
            _mm512_storeu_si512(dst.add(q * NR * kp + row * NR + 16).cast(), _mm512_setzero_si512());
        }
    }
}

/// The signature [`gemm_bf16_with`], [`dot_gemm`] and [`super::amx::gemm`] share.
#[cfg(test)]
pub(crate) type Kernel = unsafe fn(
    usize,
    usize,
    usize,
    f32,
    *const f32,
    isize,
    isize,
    *const f32,
    isize,
    isize,
    Option<super::Prepacked>,
    f32,
    *mut f32,
    isize,
    isize,
);

/// C = alpha A B + beta C with bf16 operands and f32 sums, single-threaded, strides as [`super::sgemm`] (with
/// beta = 0, C is not read); with B~ read from `pre` (the pairs [`pack_b`] would write, kept by
/// [`super::PackedB::pack_bf16`]) instead of converted and packed by this call: the same bits. On AMX tiles
/// where the CPU has them ([`super::amx`]), else on `vdpbf16ps` ([`dot_gemm`]).
///
/// # Safety
/// [`available`]; the views are in bounds; C's elements are distinct, writable and not aliased by A or B; `pre`
/// is B packed by [`super::PackedB::pack_bf16`] and still current, and covers columns col0..col0 + n.
#[allow(clippy::too_many_arguments)]
#[rustfmt::skip]
pub(crate) unsafe fn gemm_bf16_with(
    m: usize, k: usize, n: usize, alpha: f32,
    a: *const f32, rsa: isize, csa: isize,
    b: *const f32, rsb: isize, csb: isize, pre: Option<super::Prepacked>,
    beta: f32, c: *mut f32, rsc: isize, csc: isize,
) {
    if super::done_without_tiles(m, k, n, beta, c, rsc, csc) {
        return;
    }
    if csc != 1 && rsc == 1 && pre.is_none() {
        // Column-major C: C^T = B^T A^T has contiguous rows (and the same sums).
        return gemm_bf16_with(n, k, m, alpha, b, csb, rsb, a, csa, rsa, None, beta, c, csc, rsc);
    }
    if super::amx::available() {
        return super::amx::gemm(m, k, n, alpha, a, rsa, csa, b, rsb, csb, pre, beta, c, rsc, csc);
    }
    dot_gemm(m, k, n, alpha, a, rsa, csa, b, rsb, csb, pre, beta, c, rsc, csc)
}

/// [`gemm_bf16_with`] on this module's `vdpbf16ps` tiles, whether or not the CPU has AMX: the kernel that
/// [`crate::gemm::gemm_bf16_reference`] specifies bit for bit.
///
/// # Safety
/// As [`gemm_bf16_with`], with m, k and n at least 1 (the dispatcher finishes the others), and no `pre` where the
/// AMX kernel runs (its packed forms pad panels to whole tiles, [`super::amx::panel_pairs`]).
#[allow(clippy::too_many_arguments)]
#[rustfmt::skip]
pub(crate) unsafe fn dot_gemm(
    m: usize, k: usize, n: usize, alpha: f32,
    a: *const f32, rsa: isize, csa: isize,
    b: *const f32, rsb: isize, csb: isize, pre: Option<super::Prepacked>,
    beta: f32, c: *mut f32, rsc: isize, csc: isize,
) {
    debug_assert!(pre.is_none() || !super::amx::available(), "dot_gemm: a packed form laid out for AMX");
    PACKS.with_borrow_mut(|(ap, bp)| {
        allocate_packs(ap, bp);
        let (ap, bp) = (ap.as_mut_ptr() as *mut u32, bp.as_mut_ptr() as *mut u32);
        for j0 in (0..n).step_by(NC) {
            let nc = NC.min(n - j0);
            for (l, p0) in (0..k).step_by(KC).enumerate() {
                let kc = KC.min(k - p0);
                let kp = kc.div_ceil(2);
                // B~: panels of 32 columns, [kp][32] each; columns past nc are zero.
                let bp = match pre {
                    // Rounding block l of the whole packed B starts at pair-step p0 / 2 (KC is even); its panel
                    // of column j at j kp.
                    Some(pre) => (pre.ptr as *const u32).add(p0 / 2 * pre.npad + (pre.col0 + j0) * kp),
                    None => {
                        pack_b(kc, nc, b.offset(p0 as isize * rsb + j0 as isize * csb), rsb, csb, bp);
                        bp as *const u32
                    }
                };
                let beta = if l == 0 { beta } else { 1.0 };
                for i0 in (0..m).step_by(MC) {
                    let mc = MC.min(m - i0);
                    for (q, ir) in (0..mc).step_by(MR).enumerate() {
                        let src = a.offset((i0 + ir) as isize * rsa + p0 as isize * csa);
                        pack_lines(src, rsa, csa, MR.min(mc - ir), kc, ap.add(q * MR * kp), MR);
                    }
                    for ir in (0..mc).step_by(MR) {
                        for jr in (0..nc).step_by(NR) {
                            let (i, j) = (i0 + ir, j0 + jr);
                            let out = Out {
                                c: c.offset(i as isize * rsc + j as isize * csc), rsc, csc,
                                rows: MR.min(m - i), cols: NR.min(n - j), alpha, beta,
                            };
                            let (at, bt) = (ap.add(ir / MR * MR * kp), bp.add(jr / NR * NR * kp));
                            if out.cols <= 16 { tile::<1>(kp, at, bt, &out) } else { tile::<2>(kp, at, bt, &out) }
                        }
                    }
                }
            }
        }
    })
}

/// Where one tile's result goes, and the epilogue's coefficients (of this kernel's tiles and the AMX kernel's
/// blocks).
#[derive(Clone, Copy)]
pub(super) struct Out {
    pub(super) c: *mut f32,
    pub(super) rsc: isize,
    pub(super) csc: isize,
    pub(super) rows: usize,
    pub(super) cols: usize,
    pub(super) alpha: f32,
    pub(super) beta: f32,
}

/// One 14 x 16 NV tile over `kp` pair-steps of A~ ([kp][MR]) and B~ ([kp][NR], first 16 NV columns read), then
/// C = alpha ab + beta C (fma(alpha, ab, beta c), one rounding, as the f32 kernel's full tiles).
///
/// # Safety
/// As [`dot_gemm`]; `a`, `b` hold `kp` packed steps; `out` lies in C.
#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
unsafe fn tile<const NV: usize>(kp: usize, mut a: *const u32, mut b: *const u32, out: &Out) {
    let mut ab = [[_mm512_setzero_ps(); NV]; MR];
    for _ in 0..kp {
        _mm_prefetch::<_MM_HINT_T0>(b.wrapping_add(8 * NR) as *const i8);
        _mm_prefetch::<_MM_HINT_T0>(b.wrapping_add(8 * NR + 16) as *const i8);
        let mut bv: [__m512bh; NV] = std::mem::zeroed();
        for (v, x) in bv.iter_mut().enumerate() {
            *x = std::mem::transmute::<__m512i, __m512bh>(_mm512_load_si512(b.add(16 * v).cast()));
        }
        for (r, row) in ab.iter_mut().enumerate() {
            let ar = std::mem::transmute::<__m512i, __m512bh>(_mm512_set1_epi32(*a.add(r) as i32));
            for (acc, x) in row.iter_mut().zip(bv) {
                *acc = _mm512_dpbf16_ps(*acc, ar, x);
            }
        }
        a = a.add(MR);
        b = b.add(NR);
    }
    let Out { c, rsc, csc, rows, cols, alpha, beta } = *out;
    let (alphav, betav) = (_mm512_set1_ps(alpha), _mm512_set1_ps(beta));
    for (r, row) in ab.iter().enumerate().take(rows) {
        for (v, acc) in row.iter().enumerate() {
            let n = cols.saturating_sub(16 * v).min(16);
            if n == 0 {
                continue;
            }
            if csc == 1 {
                let (cp, mask) = (c.offset(r as isize * rsc + 16 * v as isize), lanes(n));
                let value = if beta == 0.0 {
                    _mm512_mul_ps(alphav, *acc)
                } else {
                    _mm512_fmadd_ps(alphav, *acc, _mm512_mul_ps(_mm512_maskz_loadu_ps(mask, cp), betav))
                };
                _mm512_mask_storeu_ps(cp, mask, value);
            } else {
                let mut buf = [0f32; 16];
                _mm512_storeu_ps(buf.as_mut_ptr(), *acc);
                for (j, &x) in buf.iter().enumerate().take(n) {
                    let cp = c.offset(r as isize * rsc + (16 * v + j) as isize * csc);
                    *cp = if beta == 0.0 { alpha * x } else { alpha.mul_add(x, *cp * beta) };
                }
            }
        }
    }
}

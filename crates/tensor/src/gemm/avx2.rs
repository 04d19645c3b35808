//! f32 GEMM on AVX2 + FMA CPUs without AVX-512 (AMD Zen 2 and 3, Intel before Skylake-SP): a 6 x 16 register
//! tile, and packing buffers kept per thread.
//!
//! Why not matrixmultiply's own FMA kernel, which such a CPU would otherwise run: it allocates its packing buffer
//! on every call (about 200 allocations per TRM training step, `tests/steady_state_allocations.rs`), and its
//! 8 x 8 tile spends a load and three in-register permutes of A per 8 FMAs. Here a step of the tile is two
//! aligned loads of B~ and six broadcasts of A for twelve FMAs (12 accumulators + 2 rows of B + 1 broadcast =
//! 15 of the 16 ymm registers), and a row-major A is read in place, not packed.
//!
//! The results are bit for bit those of matrixmultiply 0.3's FMA kernel, for the reasons `avx512/mod.rs` gives:
//! 1. each element's sum over K is a chain of FMAs in K order, starting from +0;
//! 2. the chain is rounded into C every [`KC`] = 256 terms (beta = 1 after the first block);
//! 3. the epilogue: fma(alpha, ab, beta c) in matrixmultiply's full 8 x 8 tiles (fma(alpha, ab, +0) when
//!    beta = 0), but beta c + fma(alpha, ab, +0), rounded twice, in its partial tiles (the last m % 8 rows and
//!    n % 8 columns).
//!
//! `tests/gemm_bits.rs` compares the two on whatever CPU runs it.

use super::avx512::done_without_tiles;
use super::packs::{reserve, Line, PACKS};
use std::arch::x86_64::*;

/// Terms of the K sum per rounding into C: matrixmultiply's `S_KC`. Changing it changes results.
const KC: usize = 256;
/// Rows of the register tile (broadcasts of A).
const MR: usize = 6;
/// Columns of the register tile: two ymm vectors of packed B.
const NR: usize = 16;
/// Columns of B packed at a time: 256 x 256 f32 = 256 KiB, resident in a 512 KiB L2.
const NC: usize = NR * 16;
/// matrixmultiply's FMA register tile (8 x 8), which decides where its epilogue rounds twice (point 3 above).
const MM_TILE: usize = 8;

/// Whether this CPU runs this module: AVX2 and FMA (checked once per call; `is_x86_feature_detected` caches it).
pub(crate) fn available() -> bool {
    is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
}

/// Sizes this thread's packing buffers ([`super::packs`]) as its first call would: A~ one MR-row panel of a
/// rounding block, B~ a KC x NC block.
pub(crate) fn prepare_thread() {
    PACKS.with_borrow_mut(|packs| {
        reserve(&mut packs.a, MR * KC);
        reserve(&mut packs.b, NC * KC);
    });
}

/// C = alpha A B + beta C for f32, single-threaded: A is [m, k] (element (i, p) at `a[i rsa + p csa]`), B is
/// [k, n], C is [m, n]. With beta = 0, C is not read. matrixmultiply's `sgemm` signature.
///
/// # Safety
/// The CPU has AVX2 and FMA ([`available`]); the strided views are in bounds of their allocations; C's elements
/// are distinct, valid for writes and not aliased by A or B.
#[allow(clippy::too_many_arguments)]
#[rustfmt::skip]
pub(crate) unsafe fn sgemm(
    m: usize, k: usize, n: usize, alpha: f32,
    a: *const f32, rsa: isize, csa: isize,
    b: *const f32, rsb: isize, csb: isize,
    beta: f32, c: *mut f32, rsc: isize, csc: isize,
) {
    if done_without_tiles(m, k, n, beta, c, rsc, csc) {
        return;
    }
    if csc != 1 && rsc == 1 {
        // C is column-major: compute C^T = B^T A^T, whose rows are contiguous (the partial tiles of both
        // kernels are square, so the two roundings fall on the same elements).
        return sgemm(n, k, m, alpha, b, csb, rsb, a, csa, rsa, beta, c, csc, rsc);
    }
    PACKS.with_borrow_mut(|packs| {
        let ap = reserve(&mut packs.a, MR * KC);
        let bp = reserve(&mut packs.b, NC * KC);
        let twice_from = (m / MM_TILE * MM_TILE, n / MM_TILE * MM_TILE);
        for j0 in (0..n).step_by(NC) {
            let nc = NC.min(n - j0);
            for (l, p0) in (0..k).step_by(KC).enumerate() {
                let kc = KC.min(k - p0);
                pack_b(kc, nc, b.offset(p0 as isize * rsb + j0 as isize * csb), rsb, csb, bp);
                let beta = if l == 0 { beta } else { 1.0 };
                for i in (0..m).step_by(MR) {
                    let rows = MR.min(m - i);
                    let a = a.offset(i as isize * rsa + p0 as isize * csa);
                    let panel = if csa == 1 && rows == MR {
                        Panel::InPlace(InPlace(a, rsa))
                    } else {
                        pack_a(rows, kc, a, rsa, csa, ap);
                        Panel::Packed(Packed(ap))
                    };
                    for jr in (0..nc).step_by(NR) {
                        let j = j0 + jr;
                        let out = Out {
                            c: c.offset(i as isize * rsc + j as isize * csc), rsc, csc,
                            rows, cols: NR.min(n - j),
                            twice_from: (twice_from.0.saturating_sub(i), twice_from.1.saturating_sub(j)),
                            alpha, beta,
                        };
                        let b = bp.add(jr * kc);
                        match (panel, out.cols <= 8) {
                            (Panel::InPlace(a), true) => tile::<1, _>(kc, a, b, &out),
                            (Panel::InPlace(a), false) => tile::<2, _>(kc, a, b, &out),
                            (Panel::Packed(a), true) => tile::<1, _>(kc, a, b, &out),
                            (Panel::Packed(a), false) => tile::<2, _>(kc, a, b, &out),
                        }
                    }
                }
            }
        }
    })
}

/// Packs rows 0..kc and columns 0..nc of B into [`NR`]-column panels, each stored [kc][NR]; columns past nc are
/// zero.
///
/// # Safety
/// AVX2; B's view is in bounds; `out` holds nc rounded up to NR, times kc, floats.
#[target_feature(enable = "avx2,fma")]
unsafe fn pack_b(kc: usize, nc: usize, b: *const f32, rsb: isize, csb: isize, out: *mut f32) {
    for (q, j0) in (0..nc).step_by(NR).enumerate() {
        let (panel, cols) = (out.add(q * NR * kc), NR.min(nc - j0));
        let src = b.offset(j0 as isize * csb);
        if csb == 1 {
            // Row-major B: each step is a contiguous run of 16 columns (fewer at the edge).
            for p in 0..kc {
                let row = src.offset(p as isize * rsb);
                for v in 0..NR / 8 {
                    let mask = lanes(cols.saturating_sub(8 * v));
                    _mm256_store_ps(panel.add(p * NR + 8 * v), _mm256_maskload_ps(row.add(8 * v), mask));
                }
            }
        } else {
            // Column-major or strided B (W^T of a row-major weight): read each column down its run.
            for t in 0..NR {
                for p in 0..kc {
                    *panel.add(p * NR + t) =
                        if t < cols { *src.offset(p as isize * rsb + t as isize * csb) } else { 0.0 };
                }
            }
        }
    }
}

/// Packs `rows` (at most [`MR`]) rows and kc columns of A into one panel, stored [kc][MR]; rows past `rows` are
/// zero.
///
/// # Safety
/// A's view is in bounds; `out` holds MR kc floats.
unsafe fn pack_a(rows: usize, kc: usize, a: *const f32, rsa: isize, csa: isize, out: *mut f32) {
    let at = |r: usize, p: usize| if r < rows { *a.offset(r as isize * rsa + p as isize * csa) } else { 0.0 };
    if rsa == 1 {
        // Column-major A (x^T in a weight gradient): a step's rows are contiguous. Reading a row along K instead
        // would stride by whole columns, which alias in L1 when a column is a multiple of 4 KiB.
        (0..kc).for_each(|p| (0..MR).for_each(|r| *out.add(p * MR + r) = at(r, p)));
    } else {
        (0..MR).for_each(|r| (0..kc).for_each(|p| *out.add(p * MR + r) = at(r, p)));
    }
}

/// The first n lanes of a vector (n <= 8 taken as 8), as a mask for `maskload`/`maskstore`.
#[target_feature(enable = "avx2")]
unsafe fn lanes(n: usize) -> __m256i {
    _mm256_cmpgt_epi32(_mm256_set1_epi32(n.min(8) as i32), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
}

/// Where a tile reads A: in place or packed.
#[derive(Clone, Copy)]
enum Panel {
    InPlace(InPlace),
    Packed(Packed),
}

/// Where a tile reads A's 6 values of one step.
trait PanelA: Copy {
    /// Row `r` (< 6) of the current step.
    unsafe fn at(self, r: usize) -> *const f32;
    /// The next step.
    unsafe fn next(self) -> Self;
}

/// A packed panel, [kc][MR].
#[derive(Clone, Copy)]
struct Packed(*const f32);

impl PanelA for Packed {
    #[inline(always)]
    unsafe fn at(self, r: usize) -> *const f32 {
        self.0.add(r)
    }
    #[inline(always)]
    unsafe fn next(self) -> Self {
        Packed(self.0.add(MR))
    }
}

/// 6 rows of a row-major A read in place: element (r, step) at `ptr[r rs + step]`.
#[derive(Clone, Copy)]
struct InPlace(*const f32, isize);

impl PanelA for InPlace {
    #[inline(always)]
    unsafe fn at(self, r: usize) -> *const f32 {
        self.0.offset(r as isize * self.1)
    }
    #[inline(always)]
    unsafe fn next(self) -> Self {
        InPlace(self.0.add(1), self.1)
    }
}

/// Where one register tile's result goes: `rows` x `cols` of C from `c`, and the epilogue's coefficients.
#[derive(Clone, Copy)]
struct Out {
    c: *mut f32,
    rsc: isize,
    csc: isize,
    rows: usize,
    cols: usize,
    /// Tile rows from `.0` on and columns from `.1` on lie in matrixmultiply's partial tiles (two roundings).
    twice_from: (usize, usize),
    alpha: f32,
    beta: f32,
}

/// One 6 x (8 NV) tile: ab = A B~ over `kc` terms (`b`: [kc][NR] of which the first 8 NV columns are read), then
/// C = alpha ab + beta C as matrixmultiply rounds it. NV = 1 serves a last panel of at most 8 columns.
///
/// # Safety
/// As [`sgemm`]; `a` and `b` hold `kc` steps; `out` describes a valid part of C, at most 8 NV wide.
#[target_feature(enable = "avx2,fma")]
unsafe fn tile<const NV: usize, A: PanelA>(kc: usize, mut a: A, mut b: *const f32, out: &Out) {
    let mut ab = [[_mm256_setzero_ps(); NV]; MR];
    for _ in 0..kc {
        let mut bv = [_mm256_setzero_ps(); NV];
        for (v, x) in bv.iter_mut().enumerate() {
            *x = _mm256_load_ps(b.add(8 * v));
        }
        for (r, row) in ab.iter_mut().enumerate() {
            let ar = _mm256_broadcast_ss(&*a.at(r));
            for (acc, x) in row.iter_mut().zip(bv) {
                *acc = _mm256_fmadd_ps(ar, x, *acc);
            }
        }
        a = a.next();
        b = b.add(NR);
    }
    let Out { c, rsc, csc, rows, cols, twice_from, alpha, beta } = *out;
    let one_rounding = beta == 0.0 || alpha == 1.0 || (rows <= twice_from.0 && cols <= twice_from.1);
    if csc == 1 && one_rounding {
        let (alphav, betav) = (_mm256_set1_ps(alpha), _mm256_set1_ps(beta));
        for (r, row) in ab.iter().enumerate().take(rows) {
            for (v, acc) in row.iter().enumerate() {
                let (cp, width) = (c.offset(r as isize * rsc + 8 * v as isize), cols.saturating_sub(8 * v));
                // Masked moves only at an edge: a masked store costs many times a plain one on AMD CPUs.
                let mask = lanes(width);
                let load = |cp| if width >= 8 { _mm256_loadu_ps(cp) } else { _mm256_maskload_ps(cp, mask) };
                let beta_c = if beta == 0.0 { _mm256_setzero_ps() } else { _mm256_mul_ps(load(cp), betav) };
                let value = _mm256_fmadd_ps(alphav, *acc, beta_c);
                if width >= 8 {
                    _mm256_storeu_ps(cp, value)
                } else {
                    _mm256_maskstore_ps(cp, mask, value)
                }
            }
        }
        return;
    }
    // A strided C, or the two-rounding case: element by element, as matrixmultiply's masked path does.
    let mut buf = [Line([0.0; 16]); MR];
    for (line, row) in buf.iter_mut().zip(ab) {
        for (v, acc) in row.iter().enumerate() {
            _mm256_store_ps(line.0.as_mut_ptr().add(8 * v), *acc);
        }
    }
    for (r, line) in buf.iter().enumerate().take(rows) {
        for (j, &v) in line.0.iter().enumerate().take(cols) {
            let cp = c.offset(r as isize * rsc + j as isize * csc);
            *cp = if beta == 0.0 {
                alpha.mul_add(v, 0.0)
            } else if r >= twice_from.0 || j >= twice_from.1 {
                *cp * beta + alpha.mul_add(v, 0.0)
            } else {
                alpha.mul_add(v, *cp * beta)
            };
        }
    }
}

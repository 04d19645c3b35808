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
/// zero. Packing moves floats and rounds nothing, so how it reads B never changes a result's bits.
///
/// # Safety
/// AVX2; B's view is in bounds; `out` holds nc rounded up to NR, times kc, floats.
#[target_feature(enable = "avx2,fma")]
unsafe fn pack_b(kc: usize, nc: usize, b: *const f32, rsb: isize, csb: isize, out: *mut f32) {
    for (q, j0) in (0..nc).step_by(NR).enumerate() {
        let (panel, cols) = (out.add(q * NR * kc), NR.min(nc - j0));
        let src = b.offset(j0 as isize * csb);
        if csb == 1 {
            // Row-major B: each step is a contiguous run of 16 columns (fewer at the edge, where alone the
            // masked load runs: it costs several plain ones on AMD CPUs).
            for p in 0..kc {
                let row = src.offset(p as isize * rsb);
                for v in 0..NR / 8 {
                    let width = cols.saturating_sub(8 * v);
                    let src = row.add(8 * v);
                    let x = if width >= 8 { _mm256_loadu_ps(src) } else { _mm256_maskload_ps(src, lanes(width)) };
                    _mm256_store_ps(panel.add(p * NR + 8 * v), x);
                }
            }
            continue;
        }
        // Column-major or strided B (W^T of a row-major weight, k^T in attention): 8 columns at a time. Where a
        // column is a contiguous run along K, 8 x 8 blocks are loaded as 8 runs and transposed in registers;
        // the rest (the last kc % 8 steps, a partial group of columns, a B strided both ways) goes by element.
        for h in 0..NR / 8 {
            let (t0, step) = (8 * h, if rsb == 1 && cols >= 8 * h + 8 { 8 } else { 0 });
            let blocked = if step == 8 { kc / 8 * 8 } else { 0 };
            for p in (0..blocked).step_by(8) {
                let runs: [__m256; 8] =
                    std::array::from_fn(|i| _mm256_loadu_ps(src.offset((t0 + i) as isize * csb + p as isize)));
                for (j, x) in transpose8(runs).into_iter().enumerate() {
                    _mm256_store_ps(panel.add((p + j) * NR + t0), x);
                }
            }
            for t in t0..t0 + 8 {
                for p in blocked..kc {
                    *panel.add(p * NR + t) =
                        if t < cols { *src.offset(p as isize * rsb + t as isize * csb) } else { 0.0 };
                }
            }
        }
    }
}

/// The 8 x 8 transpose: lane j of result i is lane i of `rows[j]`.
#[target_feature(enable = "avx2")]
unsafe fn transpose8(r: [__m256; 8]) -> [__m256; 8] {
    // Pairs of rows interleaved, then pairs of pairs, then the 128-bit halves exchanged.
    let t = [
        _mm256_unpacklo_ps(r[0], r[1]),
        _mm256_unpackhi_ps(r[0], r[1]),
        _mm256_unpacklo_ps(r[2], r[3]),
        _mm256_unpackhi_ps(r[2], r[3]),
        _mm256_unpacklo_ps(r[4], r[5]),
        _mm256_unpackhi_ps(r[4], r[5]),
        _mm256_unpacklo_ps(r[6], r[7]),
        _mm256_unpackhi_ps(r[6], r[7]),
    ];
    let s = [
        _mm256_shuffle_ps::<0x44>(t[0], t[2]),
        _mm256_shuffle_ps::<0xEE>(t[0], t[2]),
        _mm256_shuffle_ps::<0x44>(t[1], t[3]),
        _mm256_shuffle_ps::<0xEE>(t[1], t[3]),
        _mm256_shuffle_ps::<0x44>(t[4], t[6]),
        _mm256_shuffle_ps::<0xEE>(t[4], t[6]),
        _mm256_shuffle_ps::<0x44>(t[5], t[7]),
        _mm256_shuffle_ps::<0xEE>(t[5], t[7]),
    ];
    std::array::from_fn(|i| {
        if i < 4 {
            _mm256_permute2f128_ps::<0x20>(s[i], s[i + 4])
        } else {
            _mm256_permute2f128_ps::<0x31>(s[i - 4], s[i])
        }
    })
}

/// Packs `rows` (at most [`MR`]) rows and kc columns of A into one panel, stored [kc][MR]; rows past `rows` are
/// zero.
///
/// # Safety
/// A's view is in bounds; `out` holds MR kc floats.
unsafe fn pack_a(rows: usize, kc: usize, a: *const f32, rsa: isize, csa: isize, out: *mut f32) {
    let at = |r: usize, p: usize| if r < rows { *a.offset(r as isize * rsa + p as isize * csa) } else { 0.0 };
    if rsa == 1 && rows == MR {
        // Column-major A (x^T or dy^T in a weight gradient): a step's 6 rows are one contiguous run, copied whole.
        // Reading a row along K instead would stride by whole columns, which alias in L1 when a column is a
        // multiple of 4 KiB.
        (0..kc).for_each(|p| std::ptr::copy_nonoverlapping(a.offset(p as isize * csa), out.add(p * MR), MR));
    } else if rsa == 1 {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every layout of B that `pack_b` reads (row-major, column-major, strided both ways), at kc and nc on and off
    /// the 8 x 8 blocks and the 16-column panels, against B's elements read one by one.
    #[test]
    fn pack_b_places_every_element_of_b() {
        if !available() {
            eprintln!("skipped: this CPU has no AVX2 + FMA");
            return;
        }
        for (kc, nc) in [(1, 1), (5, 3), (8, 8), (13, 11), (16, 16), (16, 104), (64, 40), (257, 17)] {
            // (rsb, csb) within a buffer of (kc + 1) x (nc + 2) floats, padded so that a wrong stride shows.
            let ld = nc + 2;
            for (rsb, csb) in [(ld, 1), (1, kc + 1), (2 * ld, 2)] {
                let value = |p: usize, t: usize| (p * 1000 + t) as f32 + 0.5;
                let mut b = vec![-1.0f32; (kc + 1) * (nc + 2) * 2 + 2 * ld * kc];
                for p in 0..kc {
                    for t in 0..nc {
                        b[p * rsb + t * csb] = value(p, t);
                    }
                }
                let mut out = vec![Line([f32::NAN; 16]); nc.div_ceil(NR) * kc];
                let out = out.as_mut_ptr() as *mut f32;
                unsafe { pack_b(kc, nc, b.as_ptr(), rsb as isize, csb as isize, out) };
                for q in 0..nc.div_ceil(NR) {
                    for p in 0..kc {
                        for t in 0..NR {
                            let want = if q * NR + t < nc { value(p, q * NR + t) } else { 0.0 };
                            let got = unsafe { *out.add(q * NR * kc + p * NR + t) };
                            assert_eq!(
                                got, want,
                                "kc {kc} nc {nc} strides ({rsb}, {csb}): panel {q} step {p} column {t}"
                            );
                        }
                    }
                }
            }
        }
    }

    /// `pack_a` with a column-major A, a full panel and a partial one, against A's elements read one by one.
    #[test]
    fn pack_a_places_every_element_of_a() {
        let (kc, ld) = (37, 9);
        let a: Vec<f32> = (0..ld * kc).map(|i| i as f32).collect();
        for rows in [MR, 4] {
            let mut out = vec![f32::NAN; MR * kc];
            unsafe { pack_a(rows, kc, a.as_ptr(), 1, ld as isize, out.as_mut_ptr()) };
            for p in 0..kc {
                for r in 0..MR {
                    let want = if r < rows { a[r + p * ld] } else { 0.0 };
                    assert_eq!(out[p * MR + r], want, "rows {rows}: step {p} row {r}");
                }
            }
        }
    }
}

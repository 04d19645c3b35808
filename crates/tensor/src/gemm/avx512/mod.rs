//! f32 GEMM on AVX-512: a 14 x 32 register tile, and packing buffers kept per thread.
//!
//! Why not matrixmultiply's own AVX-512 kernel: its 16 x 16 tile issues one load of B and sixteen broadcasts of A
//! for sixteen FMAs, so the two load ports, not the two FMA ports, set its pace (54-63% of this CPU's 512-bit
//! peak on one thread, `docs/benchmarks.md`); and it allocates its packing buffer on every call. A 14 x 32 tile
//! issues two loads and fourteen broadcasts for 28 FMAs (28 accumulators + 2 rows of B = 30 of the 32 zmm
//! registers), so the FMA ports are the limit, and the buffers here are allocated once per thread. A row-major A
//! is not packed at all (a tile broadcasts from its 14 rows in place): at TRM's narrow products (N = 40, 64, 97)
//! packing A would cost a quarter of the multiply.
//!
//! The results are bit for bit those of matrixmultiply 0.3's AVX-512 path, on purpose: loopgrad's recorded study
//! (`docs/results.md`) reproduces only if every float of training does. Three things decide a GEMM's bits, and
//! they are kept:
//! 1. each element's sum over K is a chain of FMAs in K order, starting from +0;
//! 2. the chain is rounded into C every [`KC`] = 256 terms: C = alpha ab + beta C for the first 256, then with
//!    beta = 1;
//! 3. the epilogue: fma(alpha, ab, beta c) inside matrixmultiply's full 16 x 16 tiles, but beta c + alpha ab,
//!    rounded twice, in its partial tiles (the last m % 16 rows and n % 16 columns). This differs only when
//!    alpha != 1 and beta != 0 (attention's scaled gradient accumulation).
//!
//! The tile shape, the packing and the loop order change no bit. `tests/gemm_bits.rs` compares the two.
//!
//! [`sgemm_swiglu`] runs the same tiles with a SwiGLU epilogue (gate and up columns side by side in B~), for the
//! untaped `linear_swiglu` of the tape.

pub(crate) mod amx;
pub(crate) mod bf16;
mod pack;
mod swiglu;

use super::packs::{reserve, Line, PACKS};
pub(crate) use pack::PackedB;
use pack::{pack_a, pack_b};
use std::arch::x86_64::*;
use swiglu::gate_row;
pub(crate) use swiglu::sgemm_swiglu;

/// Terms of the K sum per rounding into C: matrixmultiply's `S_KC`. Changing it changes results.
const KC: usize = 256;
/// Rows of the register tile (broadcasts of A).
const MR: usize = 14;
/// Columns of the register tile: two zmm vectors of packed B.
const NR: usize = 32;
/// Rows of A packed at a time: 112 x 256 f32 = 112 KiB.
const MC: usize = MR * 8;
/// Columns of B packed at a time: 256 x 1024 f32 = 1 MiB, resident in the 2 MiB L2.
const NC: usize = NR * 32;
/// Steps of A~ each thread's buffer holds from its first call: the fused SwiGLU's K (512 at the paper size) up
/// to this packs A~ for all its rounding blocks at once.
const A_PACK_K: usize = 4 * KC;
/// matrixmultiply's register tile, which decides where its epilogue rounds twice (point 3 above).
const MM_TILE: usize = 16;

/// Whether this CPU runs this module (checked once per call; `is_x86_feature_detected` caches it).
pub(crate) fn available() -> bool {
    is_x86_feature_detected!("avx512f")
}

/// Sizes this thread's packing buffers ([`super::packs`]) for any [`sgemm`] and for [`sgemm_swiglu`] up to
/// [`A_PACK_K`] terms (A~: MC rows of that many steps; B~: a KC x NC block); only a fused SwiGLU past that (or
/// past 8192 terms, for B~) grows them.
pub(crate) fn prepare_thread() {
    PACKS.with_borrow_mut(|packs| {
        reserve(&mut packs.a, MC * A_PACK_K);
        reserve(&mut packs.b, NC * KC);
    });
}

/// C = alpha A B + beta C for f32, single-threaded: A is [m, k] (element (i, p) at `a[i rsa + p csa]`), B is
/// [k, n], C is [m, n]. With beta = 0, C is not read.
///
/// # Safety
/// The CPU has AVX-512F ([`available`]); the strided views are in bounds of their allocations; C's elements
/// are distinct, valid for writes and not aliased by A or B.
#[allow(clippy::too_many_arguments)]
#[rustfmt::skip]
pub(crate) unsafe fn sgemm(
    m: usize, k: usize, n: usize, alpha: f32,
    a: *const f32, rsa: isize, csa: isize,
    b: *const f32, rsb: isize, csb: isize,
    beta: f32, c: *mut f32, rsc: isize, csc: isize,
) {
    sgemm_with(m, k, n, alpha, a, rsa, csa, b, rsb, csb, None, beta, c, rsc, csc)
}

/// A whole B packed once ([`PackedB`]), and which of its columns a call multiplies by: `col0..col0 + n`.
#[derive(Clone, Copy)]
pub(crate) struct Prepacked {
    pub(super) ptr: *const f32,
    /// B's columns rounded up to [`NR`]: the floats per step of one rounding block.
    pub(super) npad: usize,
    /// The call's first column of B, a multiple of [`NR`].
    pub(super) col0: usize,
}

/// [`sgemm`], with B~ read from `pre` (the same floats [`pack_b`] would write) instead of packed by this call.
///
/// # Safety
/// As [`sgemm`]; `pre` is B packed by [`PackedB::pack`] and still current, and covers columns col0..col0 + n.
#[allow(clippy::too_many_arguments)]
#[rustfmt::skip]
pub(crate) unsafe fn sgemm_with(
    m: usize, k: usize, n: usize, alpha: f32,
    a: *const f32, rsa: isize, csa: isize,
    b: *const f32, rsb: isize, csb: isize, pre: Option<Prepacked>,
    beta: f32, c: *mut f32, rsc: isize, csc: isize,
) {
    if done_without_tiles(m, k, n, beta, c, rsc, csc) {
        return;
    }
    if csc != 1 && rsc == 1 && pre.is_none() {
        // C is column-major: compute C^T = B^T A^T, whose rows are contiguous, so the tile's 32 columns are.
        return sgemm(n, k, m, alpha, b, csb, rsb, a, csa, rsa, beta, c, csc, rsc);
    }
    PACKS.with_borrow_mut(|packs| {
        let ap = reserve(&mut packs.a, MC * A_PACK_K);
        let own = reserve(&mut packs.b, NC * KC);
        let twice_from = (m / MM_TILE * MM_TILE, n / MM_TILE * MM_TILE);
        for j0 in (0..n).step_by(NC) {
            let nc = NC.min(n - j0);
            for (l, p0) in (0..k).step_by(KC).enumerate() {
                let kc = KC.min(k - p0);
                let bp = match pre {
                    // Rounding block l of the whole packed B starts at step p0; its panel of column j at j kc.
                    Some(pre) => pre.ptr.add(p0 * pre.npad + (pre.col0 + j0) * kc),
                    None => {
                        pack_b(kc, nc, b.offset(p0 as isize * rsb + j0 as isize * csb), rsb, csb, own);
                        own as *const f32
                    }
                };
                let beta = if l == 0 { beta } else { 1.0 };
                for i0 in (0..m).step_by(MC) {
                    let rows = RowBlock::new(i0, MC.min(m - i0), kc, a.offset(p0 as isize * csa), rsa, csa, ap);
                    for ir in (0..rows.mc).step_by(MR) {
                        for jr in (0..nc).step_by(NR) {
                            let (i, j) = (i0 + ir, j0 + jr);
                            let out = Out {
                                c: c.offset(i as isize * rsc + j as isize * csc), rsc, csc,
                                rows: MR.min(m - i), cols: NR.min(n - j),
                                twice_from: (twice_from.0.saturating_sub(i), twice_from.1.saturating_sub(j)),
                                alpha, beta,
                            };
                            let b = bp.add(jr * kc);
                            if out.cols <= 16 {
                                run_tile::<1, false>(kc, rows.panel(ir), b, &out)
                            } else {
                                run_tile::<2, false>(kc, rows.panel(ir), b, &out)
                            }
                        }
                    }
                }
            }
        }
    })
}

/// The cases that [`sgemm_with`] and [`bf16::dot_gemm`] and [`amx::gemm`] finish before any tile, as matrixmultiply does: an
/// empty C, and K = 0, where C = beta C (beta = 0 writes zeros without reading C, so NaNs in it do not leak).
/// True when C is done.
///
/// # Safety
/// C's [m, n] view with strides (rsc, csc) is valid for reads and writes.
pub(super) unsafe fn done_without_tiles(
    m: usize,
    k: usize,
    n: usize,
    beta: f32,
    c: *mut f32,
    rsc: isize,
    csc: isize,
) -> bool {
    if m > 0 && n > 0 && k == 0 {
        for i in 0..m as isize {
            for j in 0..n as isize {
                // (i, j) lies in C's view (caller).
                let cp = c.offset(i * rsc + j * csc);
                *cp = if beta == 0.0 { 0.0 } else { *cp * beta };
            }
        }
    }
    m == 0 || n == 0 || k == 0
}

/// Rows i0..i0 + mc of A for one rounding block of kc columns: a row-major A is read in place (14 runs of kc
/// floats per panel), except a last partial panel; otherwise its panels are packed into `ap`. Either way a
/// 14-row panel stays in L1 while B~'s panels stream from L2.
struct RowBlock {
    mc: usize,
    kc: usize,
    /// A's element (i0, first column of the block).
    a: *const f32,
    rsa: isize,
    /// Panels before this row are read in place; the rest are packed.
    direct_rows: usize,
    ap: *const f32,
}

impl RowBlock {
    /// # Safety
    /// AVX-512F; `a` is A's element (0, first column of the block), in bounds for mc rows and kc columns from
    /// row i0; `ap` holds mc rounded up to MR, times kc, floats.
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn new(i0: usize, mc: usize, kc: usize, a: *const f32, rsa: isize, csa: isize, ap: *mut f32) -> Self {
        let a = a.offset(i0 as isize * rsa);
        let direct_rows = if csa == 1 { mc / MR * MR } else { 0 };
        pack_a(mc - direct_rows, kc, a.offset(direct_rows as isize * rsa), rsa, csa, ap);
        RowBlock { mc, kc, a, rsa, direct_rows, ap }
    }

    /// The panel of rows ir..ir + 14 of the block.
    fn panel(&self, ir: usize) -> Panel {
        if ir < self.direct_rows {
            // SAFETY: rows ir..ir + 14 lie inside the block, which `new`'s caller guarantees is in bounds.
            Panel::InPlace(InPlace(unsafe { self.a.offset(ir as isize * self.rsa) }, self.rsa))
        } else {
            // SAFETY: the packed panels start at row direct_rows, each MR x kc floats, inside `ap`.
            Panel::Packed(Packed(unsafe { self.ap.add((ir - self.direct_rows) * self.kc) }))
        }
    }
}

/// Where a tile reads A: in place or packed.
#[derive(Clone, Copy)]
enum Panel {
    InPlace(InPlace),
    Packed(Packed),
}

impl Panel {
    /// The same panel from step `p` on.
    ///
    /// # Safety
    /// The panel has more than `p` steps.
    unsafe fn skip(self, p: usize) -> Panel {
        match self {
            Panel::InPlace(InPlace(ptr, rs)) => Panel::InPlace(InPlace(ptr.add(p), rs)),
            Panel::Packed(Packed(ptr)) => Panel::Packed(Packed(ptr.add(p * MR))),
        }
    }
}

/// [`tile`] on either kind of A panel.
///
/// # Safety
/// As [`tile`].
#[target_feature(enable = "avx512f")]
unsafe fn run_tile<const NV: usize, const SWIGLU: bool>(kc: usize, a: Panel, b: *const f32, out: &Out) {
    match a {
        Panel::InPlace(a) => tile::<NV, _, SWIGLU>(kc, a, b, out),
        Panel::Packed(a) => tile::<NV, _, SWIGLU>(kc, a, b, out),
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

/// Where a tile reads A's 14 values of one step.
trait PanelA: Copy {
    /// Row `r` (< 14) of the current step.
    unsafe fn at(self, r: usize) -> f32;
    /// The next step.
    unsafe fn next(self) -> Self;
}

/// A packed panel, [kc][MR].
#[derive(Clone, Copy)]
struct Packed(*const f32);

impl PanelA for Packed {
    #[inline(always)]
    unsafe fn at(self, r: usize) -> f32 {
        *self.0.add(r)
    }
    #[inline(always)]
    unsafe fn next(self) -> Self {
        Packed(self.0.add(MR))
    }
}

/// 14 rows of a row-major A read in place: element (r, step) at `ptr[r rs + step]`.
#[derive(Clone, Copy)]
struct InPlace(*const f32, isize);

impl PanelA for InPlace {
    #[inline(always)]
    unsafe fn at(self, r: usize) -> f32 {
        *self.0.offset(r as isize * self.1)
    }
    #[inline(always)]
    unsafe fn next(self) -> Self {
        InPlace(self.0.add(1), self.1)
    }
}

/// One 14 x (16 NV) tile: ab = A~ B~ over `kc` terms (packed panels `a`: [kc][MR], `b`: [kc][NR], of which the
/// first 16 NV columns are read), then C = alpha ab + beta C. NV = 1 serves a last panel of at most 16 columns
/// (N = 97 would otherwise compute 128 columns for 97). With `SWIGLU` (and NV = 2), C's row r gets
/// silu(`ab[r][0]`) * `ab[r][1]` in its first `cols` columns instead (see [`sgemm_swiglu`]).
///
/// # Safety
/// As [`sgemm`]; `a` and `b` hold `kc` packed steps; `out` describes a valid part of C, at most 16 NV wide.
#[target_feature(enable = "avx512f")]
unsafe fn tile<const NV: usize, A: PanelA, const SWIGLU: bool>(kc: usize, mut a: A, mut b: *const f32, out: &Out) {
    let mut ab = [[_mm512_setzero_ps(); NV]; MR];
    for _ in 0..kc {
        // B~ streams from L2: fetch the lines 8 steps ahead into L1.
        // (wrapping: near the end of B~ the address lies past it; a prefetch of it is harmless.)
        _mm_prefetch::<_MM_HINT_T0>(b.wrapping_add(8 * NR) as *const i8);
        _mm_prefetch::<_MM_HINT_T0>(b.wrapping_add(8 * NR + 16) as *const i8);
        let mut bv = [_mm512_setzero_ps(); NV];
        for (v, x) in bv.iter_mut().enumerate() {
            *x = _mm512_load_ps(b.add(16 * v));
        }
        for (r, row) in ab.iter_mut().enumerate() {
            // One broadcast feeds NV FMAs: with NV = 2 a step is 2 loads + 14 broadcasts for 28 FMAs.
            let ar = _mm512_set1_ps(a.at(r));
            for (acc, x) in row.iter_mut().zip(bv) {
                *acc = _mm512_fmadd_ps(ar, x, *acc);
            }
        }
        a = a.next();
        b = b.add(NR);
    }
    let Out { c, rsc, csc, rows, cols, twice_from, alpha, beta } = *out;
    if SWIGLU {
        // ab[r][0] is a gate and ab[r][1] its up, as sgemm with alpha 1 and beta 0 would store them; then
        // kernels::swiglu_rows's own formula, on 8-lane vectors as there (each lane is computed alone).
        for (r, row) in ab.iter().enumerate().take(rows) {
            let (mut g, mut u) = (Line([0.0; 16]), Line([0.0; 16]));
            _mm512_store_ps(g.0.as_mut_ptr(), row[0]);
            _mm512_store_ps(u.0.as_mut_ptr(), row[NV - 1]);
            gate_row(&g, &u, c.offset(r as isize * rsc), cols);
        }
        return;
    }
    let one_rounding = beta == 0.0 || alpha == 1.0 || (twice_from.0 >= MR && twice_from.1 >= 16 * NV);
    if csc == 1 && one_rounding {
        // Masked loads and stores cover an edge tile's missing columns; its missing rows are not visited.
        let lanes = |v: usize| ((1u32 << cols.saturating_sub(16 * v).min(16)) - 1) as __mmask16;
        let (alphav, betav) = (_mm512_set1_ps(alpha), _mm512_set1_ps(beta));
        for (r, row) in ab.iter().enumerate().take(rows) {
            for (v, acc) in row.iter().enumerate() {
                let (cp, mask) = (c.offset(r as isize * rsc + 16 * v as isize), lanes(v));
                let value = if beta == 0.0 {
                    _mm512_mul_ps(alphav, *acc)
                } else {
                    _mm512_fmadd_ps(alphav, *acc, _mm512_mul_ps(_mm512_maskz_loadu_ps(mask, cp), betav))
                };
                _mm512_mask_storeu_ps(cp, mask, value);
            }
        }
        return;
    }
    // A strided C, or the two-rounding case: element by element, as matrixmultiply's masked path does.
    let mut buf = [Line([0.0; 16]); 2 * MR];
    for (r, row) in ab.iter().enumerate() {
        for (v, acc) in row.iter().enumerate() {
            _mm512_store_ps(buf[NV * r + v].0.as_mut_ptr(), *acc);
        }
    }
    for r in 0..rows {
        for j in 0..cols {
            let v = buf[NV * r + j / 16].0[j % 16];
            let cp = c.offset(r as isize * rsc + j as isize * csc);
            *cp = if beta == 0.0 {
                alpha * v
            } else if r >= twice_from.0 || j >= twice_from.1 {
                *cp * beta + alpha * v
            } else {
                alpha.mul_add(v, *cp * beta)
            };
        }
    }
}

//! The fused SwiGLU of the AVX-512 GEMM: out = silu(A B_gate) * (A B_up) without storing A B.

use super::pack::{lanes, pack_b_pairs};
use super::{reserve, run_tile, Line, Out, PackedB, Panel, RowBlock, A_PACK_K, KC, MC, MR, NC, NR, PACKS};
use crate::simd::{self, avx512::F32x16, SimdVec};
use std::arch::x86_64::*;

/// out = silu(A B_gate) * (A B_up) for f32, single-threaded, where B = [B_gate | B_up] is [k, 2 inner] (gate
/// columns first, as in `gate_up_proj`) and `out` is [m, inner] with rows `rso` apart: the SwiGLU of a fused
/// projection without storing the [m, 2 inner] product. Each tile pairs 16 gate columns with their 16 up columns
/// and applies `simd::silu(g) * u` to its accumulators; the bits are those of [`super::sgemm`] into
/// [m, 2 inner] followed by `kernels::swiglu_rows`. Past [`KC`] terms a tile adds its rounding blocks as sgemm
/// rounds them into C. `pre` is B already packed by [`PackedB::pack_pairs`].
///
/// # Safety
/// As [`super::sgemm`], with `out` [m, inner] valid for writes and not aliased by A or B; `pre` is current.
#[allow(clippy::too_many_arguments)]
#[rustfmt::skip]
pub(crate) unsafe fn sgemm_swiglu(
    m: usize, k: usize, inner: usize,
    a: *const f32, rsa: isize, csa: isize,
    b: *const f32, rsb: isize, csb: isize, pre: Option<&PackedB>,
    out: *mut f32, rso: isize,
) {
    if m == 0 || inner == 0 {
        return;
    }
    // Pair panels per chunk: a chunk of B~ (2 x 16 k floats per panel) stays within NC x KC floats (1 MiB, in L2),
    // except past 8192 terms, where one panel is more.
    let (panels, chunk) = (inner.div_ceil(16), (NC * KC / (NR * k.max(1))).max(1));
    PACKS.with_borrow_mut(|packs| {
        let ap = reserve(&mut packs.a, MC * k.max(A_PACK_K));
        let own = reserve(&mut packs.b, (chunk.min(panels) * NR * k).max(NC * KC));
        for q0 in (0..panels).step_by(chunk) {
            let q1 = panels.min(q0 + chunk);
            let bp = match pre {
                Some(pre) => pre.floats().add(q0 * NR * k),
                None => {
                    pack_b_pairs(k, q0..q1, inner, b, rsb, csb, own);
                    own
                }
            };
            for i0 in (0..m).step_by(MC) {
                let rows = RowBlock::new(i0, MC.min(m - i0), k, a, rsa, csa, ap);
                for ir in (0..rows.mc).step_by(MR) {
                    for q in q0..q1 {
                        let (i, j) = (i0 + ir, 16 * q);
                        let out = Out {
                            c: out.offset(i as isize * rso + j as isize), rsc: rso, csc: 1,
                            rows: MR.min(m - i), cols: 16.min(inner - j),
                            twice_from: (MR, NR), alpha: 1.0, beta: 0.0,
                        };
                        swiglu_tile(k, rows.panel(ir), bp.add((q - q0) * NR * k), &out);
                    }
                }
            }
        }
    })
}

/// One tile of [`sgemm_swiglu`]: gated in registers when k fits one rounding block; past that, the blocks go
/// through [`super::sgemm`]'s own tiles into a 14 x 32 scratch C (C = ab, then C = 1 ab + 1 C), which is then
/// gated.
///
/// # Safety
/// As `super::tile`, with `out` 16 columns wide at most.
#[target_feature(enable = "avx512f")]
unsafe fn swiglu_tile(k: usize, a: Panel, b: *const f32, out: &Out) {
    if k <= KC {
        return run_tile::<2, true>(k, a, b, out);
    }
    let mut scratch = [Line([0.0; 16]); 2 * MR];
    let c = scratch.as_mut_ptr() as *mut f32;
    for (l, p0) in (0..k).step_by(KC).enumerate() {
        let beta = if l == 0 { 0.0 } else { 1.0 };
        let sum = Out { c, rsc: NR as isize, csc: 1, rows: MR, cols: NR, twice_from: (MR, NR), alpha: 1.0, beta };
        run_tile::<2, false>(KC.min(k - p0), a.skip(p0), b.add(p0 * NR), &sum);
    }
    for (r, pair) in scratch.chunks_exact(2).enumerate().take(out.rows) {
        gate_row(&pair[0], &pair[1], out.c.offset(r as isize * out.rsc), out.cols);
    }
}

/// `dst[j] = silu(g[j]) * u[j]` for j < cols: `kernels::swiglu_rows`'s own formula, on one 16-lane vector (each
/// lane is computed alone, so the bits are those of its 8-lane vectors: `simd::avx512`).
///
/// # Safety
/// AVX-512F; `dst` is writable for `cols` <= 16 floats.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn gate_row(g: &Line, u: &Line, dst: *mut f32, cols: usize) {
    let h = simd::silu(F32x16::load(&g.0)) * F32x16::load(&u.0);
    let mut out = Line([0.0; 16]);
    h.store(&mut out.0);
    _mm512_mask_storeu_ps(dst, lanes(cols), _mm512_load_ps(out.0.as_ptr()));
}

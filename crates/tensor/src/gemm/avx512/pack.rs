//! The packers of the AVX-512 GEMM: A into [kc][MR] panels, B into [kc][NR] panels (or gate/up pairs for the
//! fused SwiGLU), transposing 16 x 16 blocks in registers where the source runs the other way.

use super::{reserve, Line, Prepacked, KC, MR, NR};
use std::arch::x86_64::*;

/// Lanes 0..n of a vector (n <= 16).
pub(super) fn lanes(n: usize) -> __mmask16 {
    ((1u32 << n.min(16)) - 1) as __mmask16
}

/// Packs rows 0..mc and columns 0..kc of A into [`MR`]-row panels, each stored [kc][MR] (the broadcasts of one
/// step side by side); rows past mc are zero.
///
/// # Safety
/// AVX-512F; A's view is in bounds; `out` holds mc rounded up to MR, times kc, floats.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn pack_a(mc: usize, kc: usize, a: *const f32, rsa: isize, csa: isize, out: *mut f32) {
    for (q, i0) in (0..mc).step_by(MR).enumerate() {
        let rows = MR.min(mc - i0);
        let panel = out.add(q * MR * kc);
        let src = a.offset(i0 as isize * rsa);
        if csa == 1 {
            // Row-major A (activations): each panel step is a column of A, so transpose 16 x 16 blocks.
            transpose_pack(src, rsa, rows, kc, panel, MR);
        } else if rsa == 1 {
            // Column-major A (a transposed activation in a weight gradient): each step is a contiguous run.
            for p in 0..kc {
                let v = _mm512_maskz_loadu_ps(lanes(rows), src.offset(p as isize * csa));
                _mm512_mask_storeu_ps(panel.add(p * MR), lanes(MR), v);
            }
        } else {
            for p in 0..kc {
                for r in 0..MR {
                    *panel.add(p * MR + r) =
                        if r < rows { *src.offset(r as isize * rsa + p as isize * csa) } else { 0.0 };
                }
            }
        }
    }
}

/// Packs rows 0..kc and columns 0..nc of B into [`NR`]-column panels, each stored [kc][NR] (one step's two
/// vectors); columns past nc are zero.
///
/// # Safety
/// AVX-512F; B's view is in bounds; `out` holds nc rounded up to NR, times kc, floats.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn pack_b(kc: usize, nc: usize, b: *const f32, rsb: isize, csb: isize, out: *mut f32) {
    for (q, j0) in (0..nc).step_by(NR).enumerate() {
        let panel = out.add(q * NR * kc);
        for v in 0..NR / 16 {
            let (j, cols) = (j0 + 16 * v, nc.saturating_sub(j0 + 16 * v).min(16));
            pack_b_half(kc, cols, b.offset(j as isize * csb), rsb, csb, panel.add(16 * v));
        }
    }
}

/// Packs B for [`super::sgemm_swiglu`]: panel q (of `panels`, from q0 on) holds gate columns 16q.. and, beside
/// them, up columns inner + 16q.. (16 each, zero past `inner`), so one tile's two accumulator columns are a gate
/// and its up.
///
/// # Safety
/// As [`pack_b`]; B has 2 `inner` columns; `out` holds `panels.len()` times 2 x 16 kc floats.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn pack_b_pairs(
    kc: usize,
    panels: std::ops::Range<usize>,
    inner: usize,
    b: *const f32,
    rsb: isize,
    csb: isize,
    out: *mut f32,
) {
    let q0 = panels.start;
    for q in panels {
        let (j, panel) = (16 * q, out.add((q - q0) * NR * kc));
        let cols = 16.min(inner - j);
        pack_b_half(kc, cols, b.offset(j as isize * csb), rsb, csb, panel);
        pack_b_half(kc, cols, b.offset((inner + j) as isize * csb), rsb, csb, panel.add(16));
    }
}

/// Packs rows 0..kc of `cols` <= 16 columns of B (from `src`) into one 16-lane half of a panel (`dst`, rows
/// [`NR`] apart); lanes past `cols` are zero.
///
/// # Safety
/// AVX-512F; the columns are in bounds for kc rows; `dst` is writable for kc rows.
#[target_feature(enable = "avx512f")]
unsafe fn pack_b_half(kc: usize, cols: usize, src: *const f32, rsb: isize, csb: isize, dst: *mut f32) {
    if csb == 1 {
        for p in 0..kc {
            let x = _mm512_maskz_loadu_ps(lanes(cols), src.offset(p as isize * rsb));
            _mm512_store_ps(dst.add(p * NR), x);
        }
    } else if rsb == 1 {
        // Column-major B (a weight used transposed, x W^T): each column is contiguous, so transpose.
        transpose_pack(src, csb, cols, kc, dst, NR);
    } else {
        for p in 0..kc {
            for j in 0..16 {
                *dst.add(p * NR + j) = if j < cols { *src.offset(p as isize * rsb + j as isize * csb) } else { 0.0 };
            }
        }
    }
}

/// Writes the transpose of a [lines, len] strided block (line l starts at `src + l * stride` and is contiguous,
/// lines <= 16) as `len` rows of 16 lanes at `dst + p * dst_stride`, lanes past `lines` zero; only the first
/// `dst_stride.min(16)` lanes of each row are stored. 16 x 16 blocks go through registers: 16 loads, 64 permutes
/// and 16 stores instead of 256 scalar moves.
///
/// # Safety
/// AVX-512F; the source lines are readable for `len` floats; `dst` is writable for `len` rows.
#[target_feature(enable = "avx512f")]
unsafe fn transpose_pack(src: *const f32, stride: isize, lines: usize, len: usize, dst: *mut f32, dst_stride: usize) {
    let store = lanes(dst_stride);
    for p0 in (0..len).step_by(16) {
        let n = 16.min(len - p0);
        let mut block = [_mm512_setzero_ps(); 16];
        for (l, row) in block.iter_mut().enumerate().take(lines) {
            *row = _mm512_maskz_loadu_ps(lanes(n), src.offset(l as isize * stride).add(p0));
        }
        transpose16(&mut block);
        for (p, row) in block.iter().enumerate().take(n) {
            _mm512_mask_storeu_ps(dst.add((p0 + p) * dst_stride), store, *row);
        }
    }
}

/// Transposes a 16 x 16 block held as 16 vectors (row i = vector i), by swapping the off-diagonal d x d blocks
/// of every 2d x 2d block for d = 8, 4, 2, 1 (recursive block transposition, each swap two two-source permutes).
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn transpose16(rows: &mut [__m512; 16]) {
    swap_blocks::<8>(rows);
    swap_blocks::<4>(rows);
    swap_blocks::<2>(rows);
    swap_blocks::<1>(rows);
}

/// One round of [`transpose16`]: rows i and i + D (i & D == 0) exchange their off-diagonal D-lane blocks.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn swap_blocks<const D: usize>(rows: &mut [__m512; 16]) {
    let (upper, lower) = swap_indices(D);
    let (up, lo) = (_mm512_loadu_si512(upper.as_ptr().cast()), _mm512_loadu_si512(lower.as_ptr().cast()));
    for i in 0..16 {
        if i & D == 0 {
            let (x, y) = (rows[i], rows[i + D]);
            rows[i] = _mm512_permutex2var_ps(x, up, y);
            rows[i + D] = _mm512_permutex2var_ps(x, lo, y);
        }
    }
}

/// The permute indices of [`swap_blocks`]: lane j of the new upper row is its own lane j (j & d == 0) or the
/// lower row's lane j - d; of the new lower row, the upper row's lane j + d or its own lane j. Index 16 + x
/// means lane x of the lower row.
const fn swap_indices(d: usize) -> ([i32; 16], [i32; 16]) {
    let (mut upper, mut lower) = ([0i32; 16], [0i32; 16]);
    let mut j = 0;
    while j < 16 {
        let own = j as i32;
        if j & d == 0 {
            upper[j] = own;
            lower[j] = own + d as i32;
        } else {
            upper[j] = 16 + own - d as i32;
            lower[j] = 16 + own;
        }
        j += 1;
    }
    (upper, lower)
}

/// A whole B [k, n] packed as [`super::sgemm`] packs it, kept so that a weight multiplied many times between two
/// updates is packed once: rounding block l (steps l KC..) holds the [`NR`]-column panels of all n columns,
/// [kc][NR] each, so a call on any columns from a multiple of NR finds its panels in place. Or, packed by
/// [`PackedB::pack_pairs`], the gate/up pair panels of [`super::sgemm_swiglu`], each over all k steps.
///
/// Or, packed by [`PackedB::pack_bf16`], the bf16 kernel's B~ in the same arrangement: each rounding block of
/// [`super::bf16::KC`] steps holds its [`NR`]-column panels as [kc / 2][NR] bf16 pairs (u32 in the same lines).
pub(crate) struct PackedB {
    lines: Vec<Line>,
    npad: usize,
    /// Holds bf16 pairs ([`PackedB::pack_bf16`]), not f32.
    bf16: bool,
}

impl PackedB {
    pub(crate) const fn new() -> Self {
        PackedB { lines: Vec::new(), npad: 0, bf16: false }
    }

    /// Whether the packing is the bf16 kernel's ([`PackedB::pack_bf16`]).
    pub(crate) fn is_bf16(&self) -> bool {
        self.bf16
    }

    /// Packs B [k, n] (element (p, j) at `b[p rsb + j csb]`) into `self`, reusing its buffer, in `parts` column
    /// ranges on loopgrad's worker team.
    ///
    /// # Safety
    /// AVX-512F; B's view is in bounds.
    pub(crate) unsafe fn pack(&mut self, k: usize, n: usize, b: *const f32, rsb: isize, csb: isize, parts: usize) {
        self.npad = n.next_multiple_of(NR);
        self.bf16 = false;
        let (npad, out, b) = (self.npad, reserve(&mut self.lines, self.npad * k) as usize, b as usize);
        column_ranges(k, n, KC, parts, |lo, nc, p0, kc| {
            // SAFETY: columns lo..lo + nc of rows p0..p0 + kc are in B's view; their panels lie in block p0's part
            // of `lines` (npad / NR panels of [kc][NR]), where no other range writes.
            unsafe {
                let src = (b as *const f32).offset(p0 as isize * rsb + lo as isize * csb);
                pack_b(kc, nc, src, rsb, csb, (out as *mut f32).add(p0 * npad + lo * kc));
            }
        });
    }

    /// Packs B [k, 2 inner] = [B_gate | B_up] into pair panels for [`super::sgemm_swiglu`] (all k steps per
    /// panel), in `parts` panel ranges on loopgrad's worker team.
    ///
    /// # Safety
    /// AVX-512F; B's view is in bounds.
    #[rustfmt::skip]
    pub(crate) unsafe fn pack_pairs(
        &mut self, k: usize, inner: usize, b: *const f32, rsb: isize, csb: isize, parts: usize,
    ) {
        let panels = inner.div_ceil(16);
        self.npad = 2 * 16 * panels;
        self.bf16 = false;
        let (out, b) = (reserve(&mut self.lines, self.npad * k) as usize, b as usize);
        let per = panels.div_ceil(parts.max(1));
        crate::parallel::run(panels.div_ceil(per), |i| {
            let q0 = i * per;
            // SAFETY: panels q0.. of B~ lie in `lines` from q0 x 32 k, written by this range only.
            unsafe {
                let dst = (out as *mut f32).add(q0 * NR * k);
                pack_b_pairs(k, q0..panels.min(q0 + per), inner, b as *const f32, rsb, csb, dst)
            }
        });
    }

    /// Packs B [k, n] for [`super::bf16::gemm_bf16_with`]: rounded to bf16 and paired as its kernel packs it per
    /// call (panels of [`super::amx::panel_pairs`] pair-rows: padded to whole tiles on AMX), all rounding blocks at
    /// once (block l from pair-step l KC / 2), reusing `self`'s buffer, in `parts` column ranges on loopgrad's
    /// worker team.
    ///
    /// # Safety
    /// AVX-512F/BW and AVX512_BF16 ([`super::bf16::available`]); B's view is in bounds.
    pub(crate) unsafe fn pack_bf16(&mut self, k: usize, n: usize, b: *const f32, rsb: isize, csb: isize, parts: usize) {
        use super::amx::panel_pairs;
        use super::bf16::{pack_b_panels, KC as KC_BF16};
        self.npad = n.next_multiple_of(NR);
        self.bf16 = true;
        // One u32 per f32 slot: per block, panel_pairs(kc) pair-steps of npad lanes. Every block but the last is
        // KC_BF16 = 512 steps, 256 pairs (whole tiles), so block l starts at pair-step l KC_BF16 / 2 either way.
        let pairs: usize = (0..k).step_by(KC_BF16).map(|p0| panel_pairs(KC_BF16.min(k - p0))).sum();
        let (npad, out, b) = (self.npad, reserve(&mut self.lines, self.npad * pairs) as usize, b as usize);
        column_ranges(k, n, KC_BF16, parts, |lo, nc, p0, kc| {
            // SAFETY: columns lo..lo + nc of rows p0..p0 + kc are in B's view; their panels lie in block p0's part
            // of `lines` (npad / NR panels of [panel_pairs(kc)][NR] from pair-step p0 / 2), where no other range
            // writes; the CPU has the bf16 kernel's features (caller).
            unsafe {
                let (src, kp) = ((b as *const f32).offset(p0 as isize * rsb + lo as isize * csb), panel_pairs(kc));
                pack_b_panels(kc, nc, src, rsb, csb, (out as *mut u32).add(p0 / 2 * npad + lo * kp), kp);
            }
        });
    }

    /// The packed floats.
    pub(super) fn floats(&self) -> *const f32 {
        self.lines.as_ptr() as *const f32
    }

    /// The packed panels for a call on columns col0.. (a multiple of [`NR`]), or `None` if col0 is not one.
    pub(crate) fn at(&self, col0: usize) -> Option<Prepacked> {
        col0.is_multiple_of(NR).then_some(Prepacked { ptr: self.floats(), npad: self.npad, col0 })
    }
}

/// Runs `pack(lo, nc, p0, kc)` for every rounding block (steps p0..p0 + kc, `block` at a time) of B [k, n]'s
/// columns lo..lo + nc, the columns cut into `parts` ranges starting on [`NR`]-column panels, one per task of
/// loopgrad's worker team: how [`PackedB::pack`] and [`PackedB::pack_bf16`] split their work.
fn column_ranges(k: usize, n: usize, block: usize, parts: usize, pack: impl Fn(usize, usize, usize, usize) + Sync) {
    let per = n.div_ceil(parts.max(1)).next_multiple_of(NR);
    crate::parallel::run(n.div_ceil(per), |i| {
        let (lo, nc) = (i * per, per.min(n - i * per));
        for p0 in (0..k).step_by(block) {
            pack(lo, nc, p0, block.min(k - p0));
        }
    });
}

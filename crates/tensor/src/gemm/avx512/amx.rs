//! bf16 GEMM on AMX tiles (Intel Sapphire Rapids and later): C = alpha A B + beta C with A and B rounded to bf16
//! as [`super::bf16`] rounds them, and f32 sums kept in the tile registers.
//!
//! `tdpbf16ps c, a, b` multiplies a 16 x 32 bf16 tile of A by a 32 x 16 tile of B into a 16 x 16 f32 tile:
//! 8,192 products per instruction, against 32 for `vdpbf16ps`. B's tile is 16 rows of 16 bf16 *pairs* (K steps
//! 2p and 2p + 1 of one column side by side), which is the AVX512_BF16 kernel's B~ already, so the two kernels
//! share B's packing and a [`super::PackedB`]'s bf16 form:
//! - B~: [`NR`]-column panels of [kp][NR] pairs, with kp rounded up to a whole tile (16 pair-steps, zero rows
//!   past K); a B tile is 16 pair-rows of one 16-column half of a panel (row stride 128 bytes). A packed
//!   weight's bf16 form pads its panels the same way where this kernel runs ([`panel_pairs`]), and serves as is.
//! - A~: 16-row tiles of [16 rows][16 pairs], one per 32 K terms; the tiles of 16 rows lie one after the other
//!   along K ([row block][kp / 16][16][16] u32).
//!
//! The register block is 32 x 32 of C in four tiles (tmm0-3), with two tiles of A (tmm4-5) and two of B
//! (tmm6-7): four loads and four `tdpbf16ps` per 32 K terms. As in the AVX512_BF16 kernel, C is updated every
//! [`KC`] terms: C = fma(alpha, ab, beta C) for the first block, then with beta = 1. (Tiles that start at C and
//! are stored straight into it, with no pass through a scratch block, measured no faster here.)
//!
//! Numerics: every product is exact (two bf16 multiply exactly in f32) and every sum is f32, but the order and
//! rounding of the additions inside one `tdpbf16ps` are the hardware's (Intel documents f32 accumulation, round
//! to nearest even, denormals flushed to zero). So this kernel is not bit for bit the scalar reference
//! [`crate::gemm::gemm_bf16_reference`]; the tests bound the difference by the summation error of K terms. It is
//! deterministic: the same operands give the same bits, whatever the thread split (splits cut C, never K).
//!
//! Linux hands out the tile registers' 8 KiB of state only on request, once per process
//! (`arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`, [`available`]). `LOOPGRAD_AMX=0` turns the kernel off,
//! so that the AVX512_BF16 kernel can be measured on the same machine.

use super::bf16::{pack_b_panels, pack_lines, pairs_along, Out};
use super::pack::{lanes, transpose16};
use std::arch::asm;
use std::arch::x86_64::*;
use std::cell::RefCell;
use std::sync::OnceLock;

/// K terms per update of C: the AVX512_BF16 kernel's, so that a packed weight's blocks are this kernel's too.
const KC: usize = super::bf16::KC;
/// Pair-steps of one tile: 32 K terms.
const TK: usize = 16;
/// Rows of C per register block (two A tiles).
const MB: usize = 32;
/// Columns of a B~ panel, and of C per register block (two B tiles).
const NR: usize = 32;
/// Rows of A packed at a time: 256 rows x 256 pairs = 256 KiB.
const MC: usize = MB * 8;
/// Columns of B packed at a time: 1024 columns x 256 pairs = 1 MiB.
const NC: usize = NR * 32;

#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([u32; 16]);

/// A thread's packing buffers (A~, B~) and the 32 x 32 f32 block the tiles are stored to.
struct Buffers {
    a: Vec<Line>,
    b: Vec<Line>,
    c: Vec<Line>,
}

thread_local! {
    static BUFFERS: RefCell<Buffers> = const { RefCell::new(Buffers { a: Vec::new(), b: Vec::new(), c: Vec::new() }) };
}

/// The buffers at their full size, if this thread has none yet.
fn allocate(bufs: &mut Buffers) {
    if bufs.a.is_empty() {
        bufs.a = vec![Line([0; 16]); MC * KC / 2 / 16];
        bufs.b = vec![Line([0; 16]); NC * KC / 2 / 16];
        bufs.c = vec![Line([0; 16]); MB * NR / 16];
    }
}

/// Allocates this thread's buffers now (see the f32 module's `prepare_thread`).
pub(crate) fn prepare_thread() {
    if available() {
        BUFFERS.with_borrow_mut(allocate);
    }
}

/// Whether this kernel runs here: the AVX512_BF16 kernel's features (its packing), AMX-TILE and AMX-BF16 in
/// CPUID, `LOOPGRAD_AMX` not `0`, and Linux granting this process the tile state. Decided once per process.
pub(crate) fn available() -> bool {
    static GRANTED: OnceLock<bool> = OnceLock::new();
    *GRANTED.get_or_init(|| {
        let wanted = std::env::var("LOOPGRAD_AMX").map_or(true, |v| v.trim() != "0");
        wanted && super::bf16::available() && crate::cpu::amx_bf16() && request_tile_state()
    })
}

/// `arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`: asks Linux for the tile data state, for every thread of
/// the process. Without it the first tile instruction faults. (A raw system call: the one place loopgrad needs
/// one, not worth the `libc` crate.)
fn request_tile_state() -> bool {
    #[cfg(target_os = "linux")]
    {
        const SYS_ARCH_PRCTL: i64 = 158;
        const ARCH_REQ_XCOMP_PERM: i64 = 0x1023;
        const XFEATURE_XTILEDATA: i64 = 18;
        let ret: i64;
        // SAFETY: arch_prctl reads only its two integer arguments here; the kernel clobbers rcx and r11.
        unsafe {
            asm!(
                "syscall",
                inlateout("rax") SYS_ARCH_PRCTL => ret,
                in("rdi") ARCH_REQ_XCOMP_PERM,
                in("rsi") XFEATURE_XTILEDATA,
                lateout("rcx") _,
                lateout("r11") _,
                options(nostack),
            );
        }
        ret == 0
    }
    #[cfg(not(target_os = "linux"))]
    false
}

/// Pair-rows of a B~ panel holding `kc` K steps: kc / 2 rounded up, and up to whole tiles where this kernel runs
/// (so the `vdpbf16ps` kernel's and this kernel's packed forms differ only there).
pub(crate) fn panel_pairs(kc: usize) -> usize {
    if available() {
        kc.div_ceil(2).next_multiple_of(TK)
    } else {
        kc.div_ceil(2)
    }
}

/// The tile configuration: palette 1, tiles 0-7 all 16 rows of 64 bytes.
#[repr(C, align(64))]
struct TileConfig([u8; 64]);

const CONFIG: TileConfig = {
    let mut c = [0u8; 64];
    c[0] = 1;
    let mut t = 0;
    while t < 8 {
        c[16 + 2 * t] = 64; // bytes per row (u16, little-endian)
        c[48 + t] = 16; // rows
        t += 1;
    }
    TileConfig(c)
};

/// C = alpha A B + beta C with bf16 operands and f32 sums on AMX tiles, single-threaded; arguments as
/// [`super::bf16::gemm_bf16_with`], whose contract this keeps (beta = 0: C is not read).
///
/// # Safety
/// [`available`]; m, k and n at least 1 (the dispatcher finishes the others); the views are in bounds; C's
/// elements are distinct, writable and not aliased by A or B; `pre` (if any) is B packed by
/// [`super::PackedB::pack_bf16`], still current, covering columns col0..col0 + n.
#[allow(clippy::too_many_arguments)]
#[rustfmt::skip]
pub(crate) unsafe fn gemm(
    m: usize, k: usize, n: usize, alpha: f32,
    a: *const f32, rsa: isize, csa: isize,
    b: *const f32, rsb: isize, csb: isize, pre: Option<super::Prepacked>,
    beta: f32, c: *mut f32, rsc: isize, csc: isize,
) {
    BUFFERS.with_borrow_mut(|bufs| {
        allocate(bufs);
        let (ap, bp, cb) = (bufs.a.as_mut_ptr() as *mut u32, bufs.b.as_mut_ptr() as *mut u32, bufs.c.as_mut_ptr() as *mut f32);
        asm!("ldtilecfg [{}]", in(reg) CONFIG.0.as_ptr(), options(nostack, readonly));
        for (l, p0) in (0..k).step_by(KC).enumerate() {
            let (kc, beta) = (KC.min(k - p0), if l == 0 { beta } else { 1.0 });
            let kp = kc.div_ceil(2).next_multiple_of(TK);
            let (a, b) = (a.offset(p0 as isize * csa), b.offset(p0 as isize * rsb));
            let run = |i0: usize, mc: usize, j0: usize, nc: usize, bp: *const u32| {
                for ir in (0..mc).step_by(MB) {
                    for jr in (0..nc).step_by(NR) {
                        let (i, j, at) = (i0 + ir, j0 + jr, ap.add(ir * kp) as *const u32);
                        let out = Out {
                            c: c.offset(i as isize * rsc + j as isize * csc), rsc, csc,
                            rows: MB.min(m - i), cols: NR.min(n - j), alpha, beta,
                        };
                        block(kp / TK, at, at.add(TK * kp), bp.add(jr * kp), cb);
                        store(cb, &out);
                    }
                }
            };
            match pre {
                // B~ is packed already: pack each MC rows of A once, and run them by every NC columns of B~
                // (A~ 256 KiB and B~ 1 MiB stay in L2).
                Some(pre) => {
                    for i0 in (0..m).step_by(MC) {
                        let mc = MC.min(m - i0);
                        pack_a(mc, kc, a.offset(i0 as isize * rsa), rsa, csa, ap, kp);
                        for j0 in (0..n).step_by(NC) {
                            // Block l of the packed weight starts at pair-step p0 / 2; its panel of column j at j kp.
                            let bp = (pre.ptr as *const u32).add(p0 / 2 * pre.npad + (pre.col0 + j0) * kp);
                            run(i0, mc, j0, NC.min(n - j0), bp);
                        }
                    }
                }
                // Pack NC columns of B at a time, and every MC rows of A against them.
                None => {
                    for j0 in (0..n).step_by(NC) {
                        let nc = NC.min(n - j0);
                        pack_b_panels(kc, nc, b.offset(j0 as isize * csb), rsb, csb, bp, kp);
                        for i0 in (0..m).step_by(MC) {
                            let mc = MC.min(m - i0);
                            pack_a(mc, kc, a.offset(i0 as isize * rsa), rsa, csa, ap, kp);
                            run(i0, mc, j0, nc, bp);
                        }
                    }
                }
            }
        }
        asm!("tilerelease", options(nostack, nomem));
    })
}

/// out = silu(A B_gate) * (A B_up) with bf16 operands and f32 sums, single-threaded, for K up to [`KC`] (one block
/// of sums): B = [B_gate | B_up] is [k, 2 inner] (gate columns first), `out` is [m, inner] with rows `rso` apart.
/// Each B~ panel holds 16 gate columns and their 16 up columns side by side, so a 32 x 32 block of tiles is 32
/// rows of 16 gates and 16 ups, gated by the f32 fused kernel's `gate_row` (`kernels::swiglu_rows`'s formula, lane
/// by lane). The bits are those of [`gemm`] into [m, 2 inner] (alpha 1, beta 0: C = ab exactly) followed by
/// `swiglu_rows`, without storing the product.
///
/// # Safety
/// [`available`]; k <= [`KC`]; the views are in bounds; `out` [m, inner] is writable and not aliased by A or B.
#[allow(clippy::too_many_arguments)]
#[rustfmt::skip]
pub(crate) unsafe fn gemm_swiglu(
    m: usize, k: usize, inner: usize,
    a: *const f32, rsa: isize, csa: isize,
    b: *const f32, rsb: isize, csb: isize,
    out: *mut f32, rso: isize,
) {
    debug_assert!(k <= KC, "amx::gemm_swiglu: K {k} past one block");
    let (panels, kp) = (inner.div_ceil(16), k.div_ceil(2).next_multiple_of(TK));
    BUFFERS.with_borrow_mut(|bufs| {
        allocate(bufs);
        let (ap, bp, cb) = (bufs.a.as_mut_ptr() as *mut u32, bufs.b.as_mut_ptr() as *mut u32, bufs.c.as_mut_ptr() as *mut f32);
        asm!("ldtilecfg [{}]", in(reg) CONFIG.0.as_ptr(), options(nostack, readonly));
        // NC / NR panels of B~ at a time: a chunk fills the B~ buffer at most.
        for q0 in (0..panels).step_by(NC / NR) {
            let q1 = panels.min(q0 + NC / NR);
            for q in q0..q1 {
                let (cols, dst) = ((inner - 16 * q).min(16), bp.add((q - q0) * NR * kp));
                for (half, j) in [16 * q, inner + 16 * q].into_iter().enumerate() {
                    pack_lines(b.offset(j as isize * csb), csb, rsb, cols, k, dst.add(16 * half), NR);
                }
                for row in k.div_ceil(2)..kp {
                    _mm512_storeu_si512(dst.add(row * NR).cast(), _mm512_setzero_si512());
                    _mm512_storeu_si512(dst.add(row * NR + 16).cast(), _mm512_setzero_si512());
                }
            }
            for i0 in (0..m).step_by(MC) {
                let mc = MC.min(m - i0);
                pack_a(mc, k, a.offset(i0 as isize * rsa), rsa, csa, ap, kp);
                for ir in (0..mc).step_by(MB) {
                    let at = ap.add(ir * kp) as *const u32;
                    for q in q0..q1 {
                        block(kp / TK, at, at.add(TK * kp), bp.add((q - q0) * NR * kp), cb);
                        let (i, j) = (i0 + ir, 16 * q);
                        for r in 0..MB.min(m - i) {
                            let (g, u) = (&*(cb.add(r * NR) as *const super::Line), &*(cb.add(r * NR + 16) as *const super::Line));
                            super::swiglu::gate_row(g, u, out.offset((i + r) as isize * rso + j as isize), (inner - j).min(16));
                        }
                    }
                }
            }
        }
        asm!("tilerelease", options(nostack, nomem));
    })
}

/// Packs rows 0..mc, K steps 0..kc of A as A~: for every 16 rows (up to mc rounded up to [`MB`]; rows past mc
/// zero), `kp` / 16 tiles of [16 rows][16 pairs], pairs past kc zero.
///
/// # Safety
/// AVX-512F/BW/BF16; A's view is in bounds for those rows and steps; `dst` holds mc rounded up to MB, times kp,
/// u32; kp >= kc / 2 and a multiple of 16.
#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
unsafe fn pack_a(mc: usize, kc: usize, a: *const f32, rsa: isize, csa: isize, dst: *mut u32, kp: usize) {
    for i0 in (0..mc.next_multiple_of(MB)).step_by(TK) {
        let (lines, tiles) = (mc.saturating_sub(i0).min(TK), dst.add(i0 * kp));
        if csa == 1 {
            // Rows run along K: 32 steps of a row are one row of a tile, as they are.
            for r in 0..TK {
                for (t, p) in (0..2 * kp).step_by(2 * TK).enumerate() {
                    let row = if r < lines {
                        pairs_along(a.offset((i0 + r) as isize * rsa).add(p.min(kc)), kc.saturating_sub(p).min(2 * TK))
                    } else {
                        _mm512_setzero_ps()
                    };
                    _mm512_store_ps(tiles.add(t * TK * TK + r * TK) as *mut f32, row);
                }
            }
        } else {
            // Pack as [pair][row], as the AVX512_BF16 kernel does, then turn each 16 x 16 block around.
            pack_lines(a.offset(i0 as isize * rsa), rsa, csa, lines, kc, tiles, TK);
            for q in kc.div_ceil(2)..kp {
                _mm512_store_ps(tiles.add(q * TK) as *mut f32, _mm512_setzero_ps());
            }
            for t in 0..kp / TK {
                let tile = tiles.add(t * TK * TK) as *mut f32;
                let mut rows = [_mm512_setzero_ps(); 16];
                for (r, x) in rows.iter_mut().enumerate() {
                    *x = _mm512_load_ps(tile.add(16 * r));
                }
                transpose16(&mut rows);
                for (r, x) in rows.iter().enumerate() {
                    _mm512_store_ps(tile.add(16 * r), *x);
                }
            }
        }
    }
}

/// One 32 x 32 block of C over `tiles` x 32 K terms: A~'s two 16-row tile rows from `a0` and `a1`, B~'s panel
/// from `b` (both halves), into tmm0-3 from zero, then stored to `out` as [32][32] f32.
///
/// # Safety
/// The tiles are configured ([`CONFIG`]); the operands hold `tiles` tiles each; `out` holds 1,024 f32.
#[inline]
unsafe fn block(tiles: usize, a0: *const u32, a1: *const u32, b: *const u32, out: *mut f32) {
    asm!("tilezero tmm0", "tilezero tmm1", "tilezero tmm2", "tilezero tmm3", options(nostack, nomem));
    for t in 0..tiles {
        // A tile: 16 rows of 64 bytes, consecutive. B tile: 16 pair-rows of a 128-byte panel row, one half each.
        asm!(
            "tileloadd tmm4, [{a0} + {s64}*1]",
            "tileloadd tmm5, [{a1} + {s64}*1]",
            "tileloadd tmm6, [{b} + {s128}*1]",
            "tileloadd tmm7, [{b} + {s128}*1 + 64]",
            "tdpbf16ps tmm0, tmm4, tmm6",
            "tdpbf16ps tmm1, tmm4, tmm7",
            "tdpbf16ps tmm2, tmm5, tmm6",
            "tdpbf16ps tmm3, tmm5, tmm7",
            a0 = in(reg) a0.add(t * TK * TK),
            a1 = in(reg) a1.add(t * TK * TK),
            b = in(reg) b.add(t * TK * NR),
            s64 = in(reg) 64usize,
            s128 = in(reg) 128usize,
            options(nostack, readonly),
        );
    }
    asm!(
        "tilestored [{o} + {s}*1], tmm0",
        "tilestored [{o} + {s}*1 + 64], tmm1",
        "tilestored [{o2} + {s}*1], tmm2",
        "tilestored [{o2} + {s}*1 + 64], tmm3",
        o = in(reg) out,
        o2 = in(reg) out.add(16 * NR),
        s = in(reg) 128usize,
        options(nostack),
    );
}

/// C = alpha ab + beta C for the block's first `rows` x `cols` (fma(alpha, ab, beta c), one rounding; with
/// beta = 0, alpha ab and C unread), from the [32][32] block `ab`.
///
/// # Safety
/// AVX-512F; `ab` holds the block; `out` lies in C.
#[target_feature(enable = "avx512f")]
unsafe fn store(ab: *const f32, out: &Out) {
    let &Out { c, rsc, csc, rows, cols, alpha, beta } = out;
    let (alphav, betav) = (_mm512_set1_ps(alpha), _mm512_set1_ps(beta));
    for r in 0..rows {
        for v in 0..cols.div_ceil(16) {
            let (n, acc) = ((cols - 16 * v).min(16), _mm512_load_ps(ab.add(r * NR + 16 * v)));
            if csc == 1 {
                let (cp, mask) = (c.offset(r as isize * rsc + 16 * v as isize), lanes(n));
                let value = if beta == 0.0 {
                    _mm512_mul_ps(alphav, acc)
                } else {
                    _mm512_fmadd_ps(alphav, acc, _mm512_mul_ps(_mm512_maskz_loadu_ps(mask, cp), betav))
                };
                _mm512_mask_storeu_ps(cp, mask, value);
            } else {
                for j in 0..n {
                    let (cp, x) =
                        (c.offset(r as isize * rsc + (16 * v + j) as isize * csc), *ab.add(r * NR + 16 * v + j));
                    *cp = if beta == 0.0 { alpha * x } else { alpha.mul_add(x, *cp * beta) };
                }
            }
        }
    }
}

/// Runs `iters` rounds of four independent `tdpbf16ps` (the register block's, on operands that stay in the
/// tiles) on the calling thread and returns the flops done: 2 x 16 x 16 x 32 = 16,384 per instruction. The AMX
/// peak of [`crate::peak`].
///
/// # Safety
/// [`available`].
pub(crate) unsafe fn peak_chains(iters: usize) -> f64 {
    // 16 rows x 64 bytes of bf16 0.5 (0x3f00), the A and B tiles' operands.
    let ones = [Line([0x3f00_3f00; 16]); 16];
    asm!("ldtilecfg [{}]", in(reg) CONFIG.0.as_ptr(), options(nostack, readonly));
    asm!("tilezero tmm0", "tilezero tmm1", "tilezero tmm2", "tilezero tmm3", options(nostack, nomem));
    asm!(
        "tileloadd tmm4, [{p} + {s}*1]",
        "tileloadd tmm5, [{p} + {s}*1]",
        "tileloadd tmm6, [{p} + {s}*1]",
        "tileloadd tmm7, [{p} + {s}*1]",
        p = in(reg) ones.as_ptr(),
        s = in(reg) 64usize,
        options(nostack, readonly),
    );
    for _ in 0..iters {
        asm!(
            "tdpbf16ps tmm0, tmm4, tmm6",
            "tdpbf16ps tmm1, tmm4, tmm7",
            "tdpbf16ps tmm2, tmm5, tmm6",
            "tdpbf16ps tmm3, tmm5, tmm7",
            options(nostack, nomem),
        );
    }
    asm!("tilerelease", options(nostack, nomem));
    (iters * 4 * 2 * 16 * 16 * 32) as f64
}

//! Products with bf16 operands and f32 sums, as the TRM reference trains under `torch.autocast(bfloat16)`: each
//! operand is rounded to bf16 (8 significant bits, round to nearest even) when it enters the product, and the
//! sums are f32. The tensors themselves stay f32 (or f64): master weights, activations and gradients are never
//! stored in bf16, only multiplied in it.
//!
//! Three implementations, chosen at run time as the f32 GEMM is:
//! - f32 on a CPU with AMX-BF16 (Intel Sapphire Rapids and later, where Linux grants the tiles): `avx512::amx`,
//!   `tdpbf16ps` on 16 x 32 bf16 tiles (8,192 products per instruction), with the operands rounded and paired as
//!   the next kernel packs them; its sums inside a tile run in the hardware's order, so it matches the reference
//!   within summation error, not bit for bit. `LOOPGRAD_AMX=0` turns it off;
//! - f32 on a CPU with AVX512_BF16: `avx512::bf16`, `vdpbf16ps` on operands rounded while they are packed
//!   (twice the f32 FMA rate per instruction);
//! - everywhere else (and for f64, which the gradient checks use): the operands are rounded into pooled copies
//!   by [`round_bf16`] and multiplied by [`super::gemm`]. A product of two bf16 values is exact in f32, so this gives the
//!   same products; only the order of the f32 sums differs from the kernel's.
//!
//! [`gemm_bf16_reference`] is the specification: a scalar loop that sums in the `vdpbf16ps` kernel's order, which
//! that kernel matches bit for bit (tests below).

use super::batched::gemm_batched_with;
use super::{gemm_batched, gemm_on, BatchMut, BatchRef, MatMut, MatRef, PackedRef};
use crate::float::Float;
use crate::tensor::Tensor;
use std::any::TypeId;

/// The operand precision of a run's products (`model.forward_dtype` in a config, `--dtype` of `bench`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Precision {
    /// f32 operands and sums.
    #[default]
    F32,
    /// bf16 operands, f32 sums.
    Bf16,
}

impl Precision {
    /// "f32" or "bf16", the names the TRM reference's `forward_dtype` and `torch_trm.py --dtype` use.
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
        }
    }

    /// C = alpha A B + beta C with operands in this precision: [`super::gemm`] or [`gemm_bf16`].
    pub fn gemm<E: Float>(self, alpha: E, a: MatRef<'_, E>, b: MatRef<'_, E>, beta: E, c: MatMut<'_, E>) {
        self.gemm_on(None, alpha, a, b, beta, c)
    }

    /// [`Precision::gemm`] on the calling thread only: [`super::gemm_serial`] or [`gemm_bf16_serial`].
    pub fn gemm_serial<E: Float>(self, alpha: E, a: MatRef<'_, E>, b: MatRef<'_, E>, beta: E, c: MatMut<'_, E>) {
        self.gemm_on(Some(1), alpha, a, b, beta, c)
    }

    /// [`Precision::gemm`] with B a [`PackedWeight`](super::PackedWeight)'s matrix, packed once per update for this precision's
    /// kernel: [`super::gemm_packed`] in f32; in bf16 the weight's bf16 form, rounded and paired as
    /// [`gemm_bf16`] packs B per call. The bits are those of [`Precision::gemm`] on the same view.
    pub fn gemm_packed<E: Float>(self, alpha: E, a: MatRef<'_, E>, b: PackedRef<'_, E>, beta: E, c: MatMut<'_, E>) {
        match self {
            Precision::F32 => super::gemm_packed(alpha, a, b, beta, c),
            Precision::Bf16 => super::packed::gemm_packed_bf16(alpha, a, b, beta, c),
        }
    }

    /// out = silu(A B_gate) * (A B_up) with operands in this precision: [`super::gemm_swiglu`]'s contract and bits
    /// in f32; in bf16 those of [`gemm_bf16`] into [m, 2I] followed by `kernels::swiglu_rows` (fused on AMX tiles
    /// for K up to 512: the [m, 2I] product is never stored).
    pub fn gemm_swiglu<E: Float>(self, a: MatRef<'_, E>, b: MatRef<'_, E>, out: &mut [E]) {
        super::swiglu_with(self, a, b, None, out)
    }

    /// [`Precision::gemm_swiglu`] with B a [`PackedWeight`](super::PackedWeight)'s matrix: its packed forms serve
    /// where a kernel reads them (f32: the gate/up pair form; bf16 unfused: the bf16 form). The same bits.
    pub fn gemm_swiglu_packed<E: Float>(self, a: MatRef<'_, E>, b: PackedRef<'_, E>, out: &mut [E]) {
        super::swiglu_with(self, a, b.view(), Some(b), out)
    }

    /// [`gemm_batched`] or [`gemm_batched_bf16`].
    pub fn gemm_batched<E: Float>(self, alpha: E, a: BatchRef<'_, E>, b: BatchRef<'_, E>, beta: E, c: BatchMut<'_, E>) {
        match self {
            Precision::F32 => gemm_batched(alpha, a, b, beta, c),
            Precision::Bf16 => gemm_batched_bf16(alpha, a, b, beta, c),
        }
    }

    /// [`Precision::gemm`] in `parts` blocks (`None`: as many as the size deserves).
    fn gemm_on<E: Float>(
        self,
        parts: Option<usize>,
        alpha: E,
        a: MatRef<'_, E>,
        b: MatRef<'_, E>,
        beta: E,
        c: MatMut<'_, E>,
    ) {
        match self {
            Precision::F32 => gemm_on(parts, alpha, a, b, None, false, beta, c),
            Precision::Bf16 if uses_kernel::<E>() => gemm_on(parts, alpha, a, b, None, true, beta, c),
            Precision::Bf16 => {
                let (ar, br) = (rounded(a), rounded(b));
                let (am, bm) = (MatRef::new(ar.data(), a.rows, a.cols), MatRef::new(br.data(), b.rows, b.cols));
                gemm_on(parts, alpha, am, bm, None, false, beta, c)
            }
        }
    }

    /// The precision named `s` ("f32", "float32", "bf16", "bfloat16"), or `None`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "f32" | "float32" => Some(Precision::F32),
            "bf16" | "bfloat16" => Some(Precision::Bf16),
            _ => None,
        }
    }
}

/// `x` rounded to bf16 (kept in an f32): round to nearest, ties to even, at the 8th significant bit, as
/// `vcvtne2ps2bf16` rounds. That instruction treats subnormal inputs as zero, so this does too; NaN stays NaN
/// (quieted), and a value past bf16's largest rounds to infinity.
pub fn round_bf16(x: f32) -> f32 {
    let bits = x.to_bits();
    if x.is_nan() {
        return f32::from_bits((bits | 0x0040_0000) & 0xffff_0000);
    }
    if bits & 0x7f80_0000 == 0 {
        return f32::from_bits(bits & 0x8000_0000);
    }
    let rounded = bits + 0x7fff + ((bits >> 16) & 1);
    f32::from_bits(rounded & 0xffff_0000)
}

/// [`round_bf16`] for an f64: the same rounding (the same value, for every f32 input), so that the f64 gradient
/// checks run the bf16 path's numbers.
fn round_bf16_f64(x: f64) -> f64 {
    if !x.is_finite() {
        return x;
    }
    if x.abs() < f32::MIN_POSITIVE as f64 {
        return if x.is_sign_negative() { -0.0 } else { 0.0 };
    }
    // Keep 7 of the 52 stored mantissa bits: round at bit 45, ties to even.
    let bits = x.to_bits();
    let rounded = bits + (1u64 << 44) - 1 + ((bits >> 45) & 1);
    f64::from_bits(rounded & !((1u64 << 45) - 1))
}

fn round_e<E: Float>(x: E) -> E {
    if TypeId::of::<E>() == TypeId::of::<f32>() {
        E::from_f64(round_bf16(x.to_f64() as f32) as f64)
    } else {
        E::from_f64(round_bf16_f64(x.to_f64()))
    }
}

/// Whether this CPU runs the AVX512_BF16 kernel (f32 bf16 products); otherwise they take the rounded-copy path.
pub fn bf16_kernel_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    return super::avx512::bf16::available();
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// Whether the bf16 products run on AMX tiles here (`avx512::amx`): CPUID reports AMX-BF16, Linux granted the
/// tile state, and `LOOPGRAD_AMX` is not `0`. The AVX512_BF16 kernel runs otherwise.
pub fn amx_kernel_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    return super::avx512::amx::available();
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// Flops of `iters` rounds of four `tdpbf16ps`, for [`crate::peak`].
///
/// # Safety
/// [`amx_kernel_available`].
#[cfg(target_arch = "x86_64")]
pub(crate) unsafe fn amx_peak_chains(iters: usize) -> f64 {
    super::avx512::amx::peak_chains(iters)
}

fn uses_kernel<E: Float>() -> bool {
    TypeId::of::<E>() == TypeId::of::<f32>() && bf16_kernel_available()
}

/// A strided view's elements rounded to bf16, as a contiguous [rows, cols] tensor (from the pool).
fn rounded<E: Float>(m: MatRef<'_, E>) -> Tensor<E> {
    m.check("gemm_bf16");
    let mut t = Tensor::uninit([m.rows, m.cols]);
    for (i, row) in t.data_mut().chunks_exact_mut(m.cols.max(1)).enumerate().take(m.rows) {
        for (j, x) in row.iter_mut().enumerate() {
            *x = round_e(m.data[i * m.rs as usize + j * m.cs as usize]);
        }
    }
    t
}

/// C = alpha A B + beta C with A and B rounded to bf16 and f32 (or, for f64, f64) sums: [`gemm`]'s contract,
/// shapes and threads (`super::gemm`), in the reference's training precision.
pub fn gemm_bf16<E: Float>(alpha: E, a: MatRef<'_, E>, b: MatRef<'_, E>, beta: E, c: MatMut<'_, E>) {
    Precision::Bf16.gemm(alpha, a, b, beta, c)
}

/// [`gemm_bf16`] on the calling thread only (see [`super::gemm_serial`]).
pub fn gemm_bf16_serial<E: Float>(alpha: E, a: MatRef<'_, E>, b: MatRef<'_, E>, beta: E, c: MatMut<'_, E>) {
    Precision::Bf16.gemm_serial(alpha, a, b, beta, c)
}

/// [`gemm_batched`] with bf16 operands and f32 sums.
pub fn gemm_batched_bf16<E: Float>(alpha: E, a: BatchRef<'_, E>, b: BatchRef<'_, E>, beta: E, c: BatchMut<'_, E>) {
    if uses_kernel::<E>() {
        return gemm_batched_with(true, alpha, a, b, beta, c);
    }
    // Every element of the operands' slices rounded, the layouts unchanged.
    let round_all = |x: &[E]| {
        let mut t = Tensor::uninit([x.len()]);
        for (o, &v) in t.data_mut().iter_mut().zip(x) {
            *o = round_e(v);
        }
        t
    };
    let (ar, br) = (round_all(a.data), round_all(b.data));
    gemm_batched(alpha, BatchRef { data: ar.data(), ..a }, BatchRef { data: br.data(), ..b }, beta, c)
}

/// The kernel's specification, one element at a time: C = alpha A B + beta C with A and B rounded by
/// [`round_bf16`]; each element's sum starts from +0 and runs over K in blocks of 512 terms, pair by pair (terms
/// 2q + 1 then 2q, each added with one rounding, as `vdpbf16ps` adds them); after each block,
/// C = fma(alpha, sum, beta C) (beta = 0: alpha sum; beta = 1 after the first block).
pub fn gemm_bf16_reference(alpha: f32, a: MatRef<'_, f32>, b: MatRef<'_, f32>, beta: f32, c: MatMut<'_, f32>) {
    assert!(a.cols == b.rows && c.rows == a.rows && c.cols == b.cols, "gemm_bf16_reference: shapes do not fit");
    const KC: usize = 512;
    let at = |i: usize, p: usize| round_bf16(a.data[i * a.rs as usize + p * a.cs as usize]);
    let bt = |p: usize, j: usize| round_bf16(b.data[p * b.rs as usize + j * b.cs as usize]);
    for i in 0..c.rows {
        for j in 0..c.cols {
            let cp = &mut c.data[i * c.rs as usize + j * c.cs as usize];
            if a.cols == 0 {
                *cp = if beta == 0.0 { 0.0 } else { *cp * beta };
            }
            for (l, p0) in (0..a.cols).step_by(KC).enumerate() {
                let p1 = a.cols.min(p0 + KC);
                let mut sum = 0.0f32;
                for p in (p0..p1).step_by(2) {
                    if p + 1 < p1 {
                        sum = at(i, p + 1).mul_add(bt(p + 1, j), sum);
                    }
                    sum = at(i, p).mul_add(bt(p, j), sum);
                }
                let beta = if l == 0 { beta } else { 1.0 };
                *cp = if beta == 0.0 { alpha * sum } else { alpha.mul_add(sum, *cp * beta) };
            }
        }
    }
}

#[cfg(test)]
#[path = "bf16_tests.rs"]
mod tests;

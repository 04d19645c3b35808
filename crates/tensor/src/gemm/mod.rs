//! GEMM: C = alpha A B + beta C with arbitrary row and column strides, so a transposed operand is a stride swap,
//! not a copy, and beta = 1 accumulates in place (weight gradients go straight into their persistent buffers).
//! f32 runs loopgrad's own kernels on x86-64 (`avx512`, and `avx2` on AVX2 + FMA CPUs without AVX-512: each
//! with the bits of matrixmultiply's kernel for that CPU, faster, no allocation); everything else (f64, other
//! CPUs) runs `matrixmultiply`. A weight that is the right operand of many products between two updates
//! is a [`PackedWeight`] (`packed.rs`), packed for the kernel once and repacked only after it is written.

use crate::float::Float;
use crate::kernels::{self, SyncPtr};
use crate::parallel::{parts_for, PAR_MIN_GEMM_MACS};
use crate::tensor::Tensor;
use std::any::TypeId;

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
mod batched;
mod bf16;
mod packed;
#[cfg(target_arch = "x86_64")]
mod packs;

pub use batched::{gemm_batched, BatchMut, BatchRef};
#[cfg(target_arch = "x86_64")]
pub(crate) use bf16::amx_peak_chains;
pub use bf16::{
    amx_kernel_available, bf16_kernel_available, gemm_batched_bf16, gemm_bf16, gemm_bf16_reference, gemm_bf16_serial,
    round_bf16, Precision,
};
pub use packed::{gemm_packed, PackedRef, PackedWeight};

/// Allocates the calling thread's GEMM packing buffers at their full size, so that its first GEMM block does not:
/// the team's workers call it before they count as started, which keeps a steady training loop free of
/// allocations however the blocks of its first step were scheduled (`tests/alloc_free.rs`).
pub(crate) fn prepare_thread() {
    #[cfg(target_arch = "x86_64")]
    {
        if avx512::available() {
            avx512::prepare_thread();
        } else if avx2::available() {
            avx2::prepare_thread();
        }
        if avx512::bf16::available() {
            avx512::bf16::prepare_thread();
            avx512::amx::prepare_thread();
        }
    }
}

/// Which of loopgrad's own f32 GEMM kernels this CPU runs (they allocate nothing), or `None` where f32 products
/// go to matrixmultiply (which allocates its packing buffer per call).
pub fn own_f32_kernel() -> Option<&'static str> {
    #[cfg(target_arch = "x86_64")]
    {
        if avx512::available() {
            return Some("AVX-512 f32, 14 x 32 tiles (loopgrad)");
        }
        if avx2::available() {
            return Some("AVX2 + FMA f32, 6 x 16 tiles (loopgrad)");
        }
    }
    None
}

/// A read-only matrix view: element (i, j) is `data[i * rs + j * cs]`.
#[derive(Clone, Copy, Debug)]
pub struct MatRef<'a, E> {
    pub data: &'a [E],
    pub rows: usize,
    pub cols: usize,
    pub rs: isize,
    pub cs: isize,
}

/// A mutable matrix view with strides, for the output of [`gemm`].
#[derive(Debug)]
pub struct MatMut<'a, E> {
    pub data: &'a mut [E],
    pub rows: usize,
    pub cols: usize,
    pub rs: isize,
    pub cs: isize,
}

impl<'a, E: Float> MatRef<'a, E> {
    /// A contiguous row-major [rows, cols] view.
    pub fn new(data: &'a [E], rows: usize, cols: usize) -> Self {
        assert_eq!(data.len(), rows * cols, "MatRef::new: {} elements for [{rows}, {cols}]", data.len());
        MatRef { data, rows, cols, rs: cols as isize, cs: 1 }
    }
    /// The transpose, as a stride swap (free).
    pub fn t(self) -> Self {
        MatRef { data: self.data, rows: self.cols, cols: self.rows, rs: self.cs, cs: self.rs }
    }
    fn check(&self, op: &str) {
        check_view(op, "view", (self.rows, self.cols), (self.rs, self.cs), self.data.len());
    }
}

/// Panics, naming `op`, unless a non-empty [rows, cols] `kind` ("view" for an operand, "output") with strides
/// (rs, cs) lies inside `len` elements.
fn check_view(op: &str, kind: &str, (rows, cols): (usize, usize), (rs, cs): (isize, isize), len: usize) {
    if rows > 0 && cols > 0 {
        let last = (rows as isize - 1) * rs + (cols as isize - 1) * cs;
        let article = if kind == "output" { "the" } else { "a" };
        assert!(
            rs >= 0 && cs >= 0 && (last as usize) < len,
            "{op}: strides ({rs}, {cs}) of {article} [{rows}, {cols}] {kind} overrun {len} elements"
        );
    }
}

impl<'a, E: Float> MatMut<'a, E> {
    /// A contiguous row-major [rows, cols] view.
    pub fn new(data: &'a mut [E], rows: usize, cols: usize) -> Self {
        assert_eq!(data.len(), rows * cols, "MatMut::new: {} elements for [{rows}, {cols}]", data.len());
        MatMut { data, rows, cols, rs: cols as isize, cs: 1 }
    }
}

/// C = alpha * A B + beta * C. A is [m, k], B is [k, n], C is [m, n]. With beta = 0, C's old contents are
/// ignored (NaNs in it do not leak through); with beta = 1 the product accumulates into C in place. Panics naming
/// both shapes when they do not fit.
///
/// Threads: from [`PAR_MIN_GEMM_MACS`] multiply-adds on, C is cut along its longer side into
/// [`threads`](crate::parallel::threads) blocks, each computed by a single-threaded matrixmultiply call on
/// loopgrad's worker team.
pub fn gemm<E: Float>(alpha: E, a: MatRef<'_, E>, b: MatRef<'_, E>, beta: E, c: MatMut<'_, E>) {
    gemm_on(None, alpha, a, b, None, false, beta, c)
}

/// [`gemm`] on the calling thread only, whatever its size: for callers that already split their work across
/// threads (attention runs its (batch, head) products in parallel, each on one thread).
pub fn gemm_serial<E: Float>(alpha: E, a: MatRef<'_, E>, b: MatRef<'_, E>, beta: E, c: MatMut<'_, E>) {
    gemm_on(Some(1), alpha, a, b, None, false, beta, c)
}

/// out = silu(A B_gate) * (A B_up): the SwiGLU of a fused gate/up projection. B = [B_gate | B_up] is [k, 2I]
/// (gate columns first, as `gate_up_proj` stores them), `out` is a contiguous [m, I]. The bits are those of
/// [`gemm`] into an [m, 2I] buffer followed by [`kernels::swiglu_rows`]: on an AVX-512 CPU the [m, 2I] product
/// is never stored, each register tile gating its own accumulators; otherwise it goes through a pooled buffer.
/// Rows are split across threads as [`gemm`] splits them. ([`Precision::gemm_swiglu`] for bf16 operands.)
pub fn gemm_swiglu<E: Float>(a: MatRef<'_, E>, b: MatRef<'_, E>, out: &mut [E]) {
    swiglu_with(Precision::F32, a, b, None, out)
}

/// [`gemm_swiglu`] with B a [`PackedWeight`]'s matrix (`gate_up_proj`'s W^T), taken from its gate/up pair form
/// (packed first if stale): the same bits.
pub fn gemm_swiglu_packed<E: Float>(a: MatRef<'_, E>, b: PackedRef<'_, E>, out: &mut [E]) {
    swiglu_with(Precision::F32, a, b.view(), Some(b), out)
}

/// [`gemm_swiglu`] of A and B with operands in `precision`, with B's packed forms taken from `packed` (whose view
/// B is) when there is one. Fused where a kernel can gate its own tiles: f32 on AVX-512 (B's pair form), bf16 on
/// AMX for K up to one 512-term block (B packed per call, gate and up columns side by side); elsewhere the
/// product in `precision` (through B's packed form for it), then the gate. The same bits either way.
fn swiglu_with<E: Float>(
    precision: Precision,
    a: MatRef<'_, E>,
    b: MatRef<'_, E>,
    packed: Option<PackedRef<'_, E>>,
    out: &mut [E],
) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert!(
        a.cols == b.rows && n % 2 == 0 && out.len() * 2 == m * n,
        "gemm_swiglu: cannot gate [{m}, {}] x [{}, {n}] into {} elements ([{m}, {n} / 2])",
        a.cols,
        b.rows,
        out.len()
    );
    a.check("gemm_swiglu (A)");
    b.check("gemm_swiglu (B)");
    let inner = n / 2;
    if m == 0 || inner == 0 {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if TypeId::of::<E>() == TypeId::of::<f32>() {
        let fused_f32 = precision == Precision::F32 && avx512::available();
        let fused_bf16 = precision == Precision::Bf16 && avx512::amx::available() && k <= avx512::bf16::KC;
        if fused_f32 || fused_bf16 {
            // SAFETY: E is f32, AVX-512F is there, and B's column count 2 inner is even and non-zero.
            let form = packed.filter(|_| fused_f32).map(|p| unsafe { p.packed(packed::Layout::Pairs) });
            let pre = form.as_ref().map(|f| &f.packed);
            let rows = |lo: usize, o: &mut [E]| {
                // SAFETY: A and B were bounds-checked above; rows lo..lo + o.len() / inner of A exist, and `o` is
                // exactly those rows of the output, owned by this call; `pre` was packed from this B; the AMX
                // kernel runs here (`fused_bf16`) and K fits its one block.
                unsafe {
                    let (a_rows, rows) = (a.data.as_ptr().offset(lo as isize * a.rs) as *const f32, o.len() / inner);
                    let (b_ptr, o_ptr) = (b.data.as_ptr() as *const f32, o.as_mut_ptr() as *mut f32);
                    let (rsa, csa, rsb, csb) = (a.rs, a.cs, b.rs, b.cs);
                    let ro = inner as isize;
                    match fused_f32 {
                        true => avx512::sgemm_swiglu(rows, k, inner, a_rows, rsa, csa, b_ptr, rsb, csb, pre, o_ptr, ro),
                        false => avx512::amx::gemm_swiglu(rows, k, inner, a_rows, rsa, csa, b_ptr, rsb, csb, o_ptr, ro),
                    }
                }
            };
            let block = m.div_ceil(parts_for(m * k * n, PAR_MIN_GEMM_MACS)).next_multiple_of(BLOCK_ALIGN);
            if block >= m {
                rows(0, out);
            } else {
                crate::parallel::chunks_mut(out, block * inner, |p, o| rows(p * block, o));
            }
            return;
        }
    }
    // No fused kernel here: the product in this precision (through B's packed form for it), then the gate.
    let mut gate_up = Tensor::<E>::uninit([m, n]);
    let gm = MatMut::new(gate_up.data_mut(), m, n);
    match packed {
        Some(p) => precision.gemm_packed(E::ONE, a, p, E::ZERO, gm),
        None => precision.gemm(E::ONE, a, b, E::ZERO, gm),
    }
    kernels::swiglu_rows(gate_up.data(), inner, out);
}

/// A packed B for [`gemm_raw`] (nothing to hold off x86-64).
#[cfg(target_arch = "x86_64")]
type PreB = avx512::PackedB;
#[cfg(not(target_arch = "x86_64"))]
type PreB = ();
type Pre<'p> = Option<&'p PreB>;

/// [`gemm`] in `parts` blocks (`None`: as many as the size deserves), with B taken from `pre` when it is packed
/// already, and through the bf16 kernel when `bf16` (f32 on a CPU that has it).
#[allow(clippy::too_many_arguments)]
fn gemm_on<E: Float>(
    parts: Option<usize>,
    alpha: E,
    a: MatRef<'_, E>,
    b: MatRef<'_, E>,
    pre: Pre<'_>,
    bf16: bool,
    beta: E,
    c: MatMut<'_, E>,
) {
    assert!(
        a.cols == b.rows && c.rows == a.rows && c.cols == b.cols,
        "gemm: cannot multiply [{}, {}] by [{}, {}] into [{}, {}]",
        a.rows,
        a.cols,
        b.rows,
        b.cols,
        c.rows,
        c.cols
    );
    a.check("gemm (A)");
    b.check("gemm (B)");
    let (m, k, n) = (a.rows, a.cols, b.cols);
    if m == 0 || n == 0 {
        return;
    }
    check_view("gemm", "output", (m, n), (c.rs, c.cs), c.data.len());
    let parts = parts.unwrap_or_else(|| parts_for(m * k * n, PAR_MIN_GEMM_MACS));
    let cv = RawMat { ptr: SyncPtr(c.data.as_mut_ptr()), rs: c.rs, cs: c.cs };
    // SAFETY: A and B were bounds-checked against their slices and C against its slice just above; C is a
    // unique borrow, so it cannot alias A or B.
    unsafe { gemm_split(parts, alpha, a, b, pre, bf16, beta, cv) }
}

/// A mutable matrix as a raw pointer and strides, so that disjoint blocks of it can go to different threads.
#[derive(Clone, Copy)]
struct RawMat<E> {
    ptr: SyncPtr<E>,
    rs: isize,
    cs: isize,
}

/// Row (or column) blocks are multiples of this, the register tile of matrixmultiply's AVX-512 kernels. The
/// [`avx512`] GEMM depends on it too: it rounds like matrixmultiply's partial tiles only at a block's last
/// rows or columns, which must be where they were.
const BLOCK_ALIGN: usize = 16;

/// Computes C = alpha A B + beta C in `parts` blocks on loopgrad's worker team (one block: on the calling thread).
/// With `bf16` (f32 on a CPU with the bf16 kernel only), each block runs [`avx512::bf16::gemm_bf16_with`] (AMX tiles
/// where the CPU has them, else `vdpbf16ps`).
///
/// # Safety
/// `a`, `b` must be in bounds of their slices and `c` must point to a [a.rows, b.cols] matrix with the given
/// strides, valid for writes and not aliased by A or B.
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_split<E: Float>(
    parts: usize,
    alpha: E,
    a: MatRef<'_, E>,
    b: MatRef<'_, E>,
    pre: Pre<'_>,
    bf16: bool,
    beta: E,
    c: RawMat<E>,
) {
    let (m, n) = (a.rows, b.cols);
    // Cut the longer side of C: every block repacks the whole of the other operand, so the shorter it is, the
    // less work is duplicated.
    let by_rows = m >= n;
    let len = if by_rows { m } else { n };
    // With a packed B, column blocks start on its 32-column panels (still multiples of BLOCK_ALIGN) so that
    // every block finds its panels in place.
    let align = if pre.is_some() && !by_rows { 2 * BLOCK_ALIGN } else { BLOCK_ALIGN };
    let block = len.div_ceil(parts.max(1)).next_multiple_of(align);
    if parts <= 1 || block >= len {
        return gemm_raw(alpha, a, b, pre.map(|p| (p, 0)), bf16, beta, c);
    }
    crate::parallel::run(len.div_ceil(block), |p| {
        let (lo, hi) = (p * block, len.min((p + 1) * block));
        // SAFETY: block p covers rows (or columns) lo..hi of C only, so blocks write disjoint elements; the
        // sub-views of A (rows lo..hi) or B (columns lo..hi) stay inside the checked views.
        unsafe {
            if by_rows {
                let a_blk = MatRef { data: &a.data[lo * a.rs as usize..], rows: hi - lo, ..a };
                let c_blk = RawMat { ptr: SyncPtr(c.ptr.get().offset(lo as isize * c.rs)), ..c };
                gemm_raw(alpha, a_blk, b, pre.map(|p| (p, 0)), bf16, beta, c_blk)
            } else {
                let b_blk = MatRef { data: &b.data[lo * b.cs as usize..], cols: hi - lo, ..b };
                let c_blk = RawMat { ptr: SyncPtr(c.ptr.get().offset(lo as isize * c.cs)), ..c };
                gemm_raw(alpha, a, b_blk, pre.map(|p| (p, lo)), bf16, beta, c_blk)
            }
        }
    });
}

/// matrixmultiply's `sgemm` signature, which [`avx512::sgemm`] shares.
type Sgemm = unsafe fn(
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
    f32,
    *mut f32,
    isize,
    isize,
);

/// One single-threaded GEMM: f32 on an AVX-512 CPU through [`avx512`], on an AVX2 + FMA CPU through [`avx2`]
/// (the same bits as matrixmultiply, no allocation), everything else through matrixmultiply.
///
/// # Safety
/// As [`gemm_split`].
unsafe fn gemm_raw<E: Float>(
    alpha: E,
    a: MatRef<'_, E>,
    b: MatRef<'_, E>,
    pre: Option<(&PreB, usize)>,
    bf16: bool,
    beta: E,
    c: RawMat<E>,
) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (pre, bf16);
    #[cfg(target_arch = "x86_64")]
    if bf16 {
        assert!(TypeId::of::<E>() == TypeId::of::<f32>() && avx512::bf16::available(), "gemm: no bf16 kernel here");
        assert!(pre.is_none_or(|(p, _)| p.is_bf16()), "gemm: an f32 packing given to the bf16 kernel");
        let pre = pre.and_then(|(p, col0)| p.at(col0));
        #[rustfmt::skip]
        return avx512::bf16::gemm_bf16_with(
            m, k, n, alpha.to_f64() as f32,
            a.data.as_ptr() as *const f32, a.rs, a.cs,
            b.data.as_ptr() as *const f32, b.rs, b.cs, pre,
            beta.to_f64() as f32, c.ptr.get() as *mut f32, c.rs, c.cs,
        );
    }
    #[cfg(target_arch = "x86_64")]
    assert!(pre.is_none_or(|(p, _)| !p.is_bf16()), "gemm: a bf16 packing given to the f32 kernel");
    #[cfg(target_arch = "x86_64")]
    if let Some(pre) = pre.and_then(|(p, col0)| p.at(col0)).filter(|_| TypeId::of::<E>() == TypeId::of::<f32>()) {
        #[rustfmt::skip]
        return avx512::sgemm_with(
            m, k, n, alpha.to_f64() as f32,
            a.data.as_ptr() as *const f32, a.rs, a.cs,
            b.data.as_ptr() as *const f32, b.rs, b.cs, Some(pre),
            beta.to_f64() as f32, c.ptr.get() as *mut f32, c.rs, c.cs,
        );
    }
    if TypeId::of::<E>() == TypeId::of::<f32>() {
        #[cfg(target_arch = "x86_64")]
        let sgemm: Sgemm = if avx512::available() {
            avx512::sgemm
        } else if avx2::available() {
            avx2::sgemm
        } else {
            matrixmultiply::sgemm
        };
        #[cfg(not(target_arch = "x86_64"))]
        let sgemm: Sgemm = matrixmultiply::sgemm;
        #[rustfmt::skip]
        sgemm(
            m, k, n, alpha.to_f64() as f32,
            a.data.as_ptr() as *const f32, a.rs, a.cs,
            b.data.as_ptr() as *const f32, b.rs, b.cs,
            beta.to_f64() as f32, c.ptr.get() as *mut f32, c.rs, c.cs,
        );
    } else if TypeId::of::<E>() == TypeId::of::<f64>() {
        #[rustfmt::skip]
        matrixmultiply::dgemm(
            m, k, n, alpha.to_f64(),
            a.data.as_ptr() as *const f64, a.rs, a.cs,
            b.data.as_ptr() as *const f64, b.rs, b.cs,
            beta.to_f64(), c.ptr.get() as *mut f64, c.rs, c.cs,
        );
    } else {
        unreachable!("gemm: Float is implemented only for f32 and f64");
    }
}

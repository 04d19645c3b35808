//! Batched GEMM on strided layouts: a [`BatchRef`] is a [`MatRef`] repeated at a fixed distance (the batch
//! stride), so a transposed operand is a stride swap and a broadcast operand is a batch stride of 0, as candle
//! and dfdx describe an operand by its layout instead of by flags.

use super::{gemm_split, MatRef, RawMat};
use crate::float::Float;
use crate::kernels::SyncPtr;
use crate::parallel::{parts_for, PAR_MIN_GEMM_MACS};

/// `batch` read-only matrices of one shape: element (i, j) of item t is `data[t * bs + i * rs + j * cs]`.
/// A batch stride `bs` of 0 broadcasts one matrix over the batch.
#[derive(Clone, Copy, Debug)]
pub struct BatchRef<'a, E> {
    pub data: &'a [E],
    pub batch: usize,
    pub rows: usize,
    pub cols: usize,
    pub bs: usize,
    pub rs: isize,
    pub cs: isize,
}

/// A contiguous row-major [batch, rows, cols] output of [`gemm_batched`]: contiguous so that the batch can be
/// split into disjoint chunks across threads.
#[derive(Debug)]
pub struct BatchMut<'a, E> {
    pub data: &'a mut [E],
    pub batch: usize,
    pub rows: usize,
    pub cols: usize,
}

impl<'a, E: Float> BatchRef<'a, E> {
    /// A contiguous row-major [batch, rows, cols] batch.
    pub fn new(data: &'a [E], batch: usize, rows: usize, cols: usize) -> Self {
        assert_eq!(
            data.len(),
            batch * rows * cols,
            "BatchRef::new: {} elements for {batch} x [{rows}, {cols}]",
            data.len()
        );
        BatchRef { data, batch, rows, cols, bs: rows * cols, rs: cols as isize, cs: 1 }
    }

    /// One matrix seen `batch` times (batch stride 0).
    pub fn broadcast(m: MatRef<'a, E>, batch: usize) -> Self {
        BatchRef { data: m.data, batch, rows: m.rows, cols: m.cols, bs: 0, rs: m.rs, cs: m.cs }
    }

    /// Every item transposed, as a stride swap (free).
    pub fn t(self) -> Self {
        BatchRef { rows: self.cols, cols: self.rows, rs: self.cs, cs: self.rs, ..self }
    }

    /// Item `t`'s view (its slice starts at the item; an empty item gets an empty slice).
    pub fn item(&self, t: usize) -> MatRef<'a, E> {
        let data = self.data.get(t * self.bs..).unwrap_or(&[]);
        MatRef { data, rows: self.rows, cols: self.cols, rs: self.rs, cs: self.cs }
    }

    /// Panics, naming `op` and `name`, unless every item lies inside the slice.
    fn check(&self, op: &str, name: &str) {
        let (rows, cols, len) = (self.rows, self.cols, self.data.len());
        if self.batch > 0 && rows > 0 && cols > 0 {
            let (rs, cs) = (self.rs, self.cs);
            let in_item = (rows as isize - 1) * rs + (cols as isize - 1) * cs;
            let fits = rs >= 0 && cs >= 0 && (self.batch - 1) * self.bs + (in_item as usize) < len;
            assert!(
                fits,
                "{op}: {} x [{rows}, {cols}] ({name}: {len} elements, strides ({}, {rs}, {cs})) overruns its slice",
                self.batch, self.bs
            );
        }
    }
}

impl<'a, E: Float> BatchMut<'a, E> {
    /// A contiguous row-major [batch, rows, cols] output.
    pub fn new(data: &'a mut [E], batch: usize, rows: usize, cols: usize) -> Self {
        assert_eq!(
            data.len(),
            batch * rows * cols,
            "BatchMut::new: {} elements for {batch} x [{rows}, {cols}]",
            data.len()
        );
        BatchMut { data, batch, rows, cols }
    }
}

/// `batch` independent GEMMs, C_t = alpha A_t B_t + beta C_t: A is batch x [m, k], B is batch x [k, n], C is
/// batch x [m, n]. Panics naming the shapes when they do not fit.
///
/// Threads: with at least [`threads`](crate::parallel::threads) items the batch is split (each item
/// single-threaded: attention's [97, 64] x [64, 97] products are too small to split); with fewer, each item
/// splits as [`gemm`](super::gemm) does.
pub fn gemm_batched<E: Float>(alpha: E, a: BatchRef<'_, E>, b: BatchRef<'_, E>, beta: E, c: BatchMut<'_, E>) {
    gemm_batched_with(false, alpha, a, b, beta, c)
}

/// [`gemm_batched`], each item through the bf16 kernel when `bf16` (f32 on a CPU that has it).
pub(super) fn gemm_batched_with<E: Float>(
    bf16: bool,
    alpha: E,
    a: BatchRef<'_, E>,
    b: BatchRef<'_, E>,
    beta: E,
    c: BatchMut<'_, E>,
) {
    let (batch, m, k, n) = (c.batch, a.rows, a.cols, b.cols);
    assert!(
        a.batch == batch && b.batch == batch && b.rows == k && c.rows == m && c.cols == n,
        "gemm_batched: cannot multiply {} x [{m}, {k}] by {} x [{}, {n}] into {batch} x [{}, {}]",
        a.batch,
        b.batch,
        b.rows,
        c.rows,
        c.cols
    );
    debug_assert_eq!(c.data.len(), batch * m * n, "BatchMut is contiguous");
    if batch == 0 || m * n == 0 {
        return;
    }
    a.check("gemm_batched", "A");
    b.check("gemm_batched", "B");
    let item = |i: usize, ci: &mut [E], parts: usize| {
        let cv = RawMat { ptr: SyncPtr(ci.as_mut_ptr()), rs: n as isize, cs: 1 };
        // SAFETY: every item of A and B was bounds-checked above; ci is this item's own [m, n] block of C, a
        // unique borrow, so it aliases neither.
        unsafe { gemm_split(parts, alpha, a.item(i), b.item(i), None, bf16, beta, cv) }
    };
    let parts = parts_for(batch * m * k * n, PAR_MIN_GEMM_MACS);
    if parts > 1 && batch >= parts {
        let per = batch.div_ceil(parts);
        crate::parallel::chunks_mut(c.data, per * m * n, |p, cc| {
            for (j, ci) in cc.chunks_exact_mut(m * n).enumerate() {
                item(p * per + j, ci, 1);
            }
        });
    } else {
        for (i, ci) in c.data.chunks_exact_mut(m * n).enumerate() {
            item(i, ci, parts_for(m * k * n, PAR_MIN_GEMM_MACS));
        }
    }
}

//! [`PackedWeight`]: a weight tensor that owns its packed GEMM forms, so that a weight multiplied many times
//! between two updates is packed once, and a changed weight is never multiplied through an old packing.
//!
//! Why the forms live beside the tensor and not in a cache keyed by the operand's address: a cache cannot see a
//! buffer's contents change, nor tell a freed buffer from the pool's next tenant of the same address, so every
//! owner of such a cache had to remember to invalidate it. Here the tensor is reachable for writing only through
//! [`PackedWeight::tensor_mut`], which marks every form stale, and a form is filled only through `&self` reads of
//! the tensor, so a product always uses a packing of the values the tensor holds now. No caller takes part.

use super::{gemm, gemm_on, MatMut, MatRef, PreB};
use crate::float::Float;
use crate::tensor::Tensor;
use std::sync::{Mutex, MutexGuard};

/// A weight tensor together with its packed forms for the GEMM's right operand. Between two optimizer steps a
/// TRM weight W [out, in] is B in 21 forward products x W^T and 7 input-gradient products dY W at T 3, n 6
/// (and in the fused SwiGLU as gate/up pairs of W^T); each form is packed by the first product that needs it
/// and reused until [`PackedWeight::tensor_mut`] hands the tensor out for writing, which marks them all stale.
/// Products take the weight as a [`PackedRef`] ([`PackedWeight::as_mat`], `.t()`), through [`gemm_packed`]
/// and [`super::gemm_swiglu_packed`]; the bits are those of [`gemm`] on the same view. In bf16
/// ([`super::Precision::gemm_packed`]) the weight and its transpose have forms of their own, rounded to bf16 and
/// paired as the AVX512_BF16 kernel packs them per call; the bits are those of [`super::gemm_bf16`].
///
/// The forms exist only for the AVX-512 kernels (f32, and bf16 on a CPU with AVX512_BF16); elsewhere a product
/// through them is the plain one. Packing keeps each form's buffer, so a steady training loop repacks without
/// allocating.
pub struct PackedWeight<E: Float> {
    tensor: Tensor<E>,
    /// Indexed by [`form_index`]; a `Mutex` so that products can fill a form through `&self`.
    forms: [Mutex<Form>; 6],
}

/// One packed form of the tensor's matrix.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(super) struct Form {
    pub(super) packed: PreB,
    /// The packing holds the tensor's current values. Cleared by [`PackedWeight::tensor_mut`].
    fresh: bool,
}

/// How a form holds B: as [`gemm`]'s panels, as [`super::gemm_swiglu`]'s gate/up pairs, or as the bf16
/// kernel's panels of bf16 pairs ([`super::gemm_bf16`]).
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Layout {
    Panels,
    Pairs,
    Bf16Panels,
}

/// The slot of the form for `layout` of the matrix as stored (`trans` false) or transposed.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
fn form_index(layout: Layout, trans: bool) -> usize {
    2 * layout as usize + trans as usize
}

#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
fn lock(form: &Mutex<Form>) -> MutexGuard<'_, Form> {
    // A panic while packing leaves `fresh` false (it is set only after packing), so a poisoned form is safe.
    form.lock().unwrap_or_else(|e| e.into_inner())
}

impl<E: Float> PackedWeight<E> {
    /// Takes `tensor` with nothing packed yet; its matrix is [product of the leading axes, last axis].
    pub fn new(tensor: Tensor<E>) -> Self {
        #[cfg(target_arch = "x86_64")]
        let form = || Mutex::new(Form { packed: PreB::new(), fresh: false });
        #[cfg(not(target_arch = "x86_64"))]
        let form = || Mutex::new(Form { packed: (), fresh: false });
        PackedWeight { tensor, forms: std::array::from_fn(|_| form()) }
    }

    pub fn tensor(&self) -> &Tensor<E> {
        &self.tensor
    }

    /// The tensor, for writing: every packed form is stale from here on (its buffer is kept for the repacking).
    /// This is the only way to change the values a product sees.
    pub fn tensor_mut(&mut self) -> &mut Tensor<E> {
        for form in &mut self.forms {
            form.get_mut().unwrap_or_else(|e| e.into_inner()).fresh = false;
        }
        &mut self.tensor
    }

    pub fn into_tensor(self) -> Tensor<E> {
        self.tensor
    }

    /// The tensor's matrix [rows, last] as the right operand B of a packed product (`.t()` for B = W^T).
    pub fn as_mat(&self) -> PackedRef<'_, E> {
        PackedRef { weight: self, trans: false }
    }
}

impl<E: Float> std::fmt::Debug for PackedWeight<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PackedWeight").field("tensor", &self.tensor).finish_non_exhaustive()
    }
}

/// A [`PackedWeight`]'s matrix (or its transpose) as a product's right operand: what [`MatRef`] is to a slice.
#[derive(Clone, Copy, Debug)]
pub struct PackedRef<'a, E: Float> {
    weight: &'a PackedWeight<E>,
    trans: bool,
}

impl<'a, E: Float> PackedRef<'a, E> {
    /// The transpose (free: the transposed form is packed from a stride swap).
    pub fn t(self) -> Self {
        PackedRef { trans: !self.trans, ..self }
    }

    /// The plain view of the same matrix.
    pub fn view(&self) -> MatRef<'a, E> {
        // [leading axes, last]: not `Tensor::as_mat`, whose row count numel / last is 0 for a [15, 0] tensor.
        let (t, last) = (&self.weight.tensor, self.weight.tensor.shape().last());
        let rows = t.dims().split_last().map_or(1, |(_, leading)| leading.iter().product());
        let m = MatRef::new(t.data(), rows, last);
        if self.trans {
            m.t()
        } else {
            m
        }
    }

    /// The form for `layout`, packed first if it is stale. The guard keeps it in place while a product reads it.
    ///
    /// # Safety
    /// E is f32 and the CPU has AVX-512F; with `Layout::Pairs` the view has an even, non-zero column count, and
    /// with `Layout::Panels` it has columns; with `Layout::Bf16Panels` it has columns and the CPU has the bf16
    /// kernel (`avx512::bf16::available`).
    #[cfg(target_arch = "x86_64")]
    pub(super) unsafe fn packed(&self, layout: Layout) -> MutexGuard<'a, Form> {
        use crate::parallel::{parts_for, PAR_MIN_ELEMS_STREAMING};
        let mut form = lock(&self.weight.forms[form_index(layout, self.trans)]);
        if !form.fresh {
            let b = self.view();
            let (parts, ptr) = (parts_for(b.rows * b.cols, PAR_MIN_ELEMS_STREAMING), b.data.as_ptr() as *const f32);
            // SAFETY: the view is the tensor's own matrix (in bounds); E is f32 and AVX-512F is there (caller).
            match layout {
                Layout::Panels => unsafe { form.packed.pack(b.rows, b.cols, ptr, b.rs, b.cs, parts) },
                Layout::Pairs => unsafe { form.packed.pack_pairs(b.rows, b.cols / 2, ptr, b.rs, b.cs, parts) },
                Layout::Bf16Panels => unsafe { form.packed.pack_bf16(b.rows, b.cols, ptr, b.rs, b.cs, parts) },
            }
            form.fresh = true;
        }
        form
    }
}

/// [`gemm`] with B a [`PackedWeight`]'s matrix, taken from (or first packed into) its form: the same result, bit
/// for bit. C = alpha A B + beta C; A is [m, k], B [k, n], C [m, n].
pub fn gemm_packed<E: Float>(alpha: E, a: MatRef<'_, E>, b: PackedRef<'_, E>, beta: E, c: MatMut<'_, E>) {
    let view = b.view();
    #[cfg(target_arch = "x86_64")]
    if std::any::TypeId::of::<E>() == std::any::TypeId::of::<f32>()
        && super::avx512::available()
        && c.cs == 1
        && view.cols > 0
    {
        // SAFETY: E is f32, AVX-512F is there, and B has columns.
        let form = unsafe { b.packed(Layout::Panels) };
        return gemm_on(None, alpha, a, view, Some(&form.packed), false, beta, c);
    }
    gemm(alpha, a, view, beta, c)
}

/// [`super::gemm_bf16`] with B a [`PackedWeight`]'s matrix, taken from (or first packed into) its bf16 form when
/// the bf16 kernel runs: the same result, bit for bit ([`super::Precision::gemm_packed`] in bf16).
pub(super) fn gemm_packed_bf16<E: Float>(alpha: E, a: MatRef<'_, E>, b: PackedRef<'_, E>, beta: E, c: MatMut<'_, E>) {
    let view = b.view();
    #[cfg(target_arch = "x86_64")]
    if std::any::TypeId::of::<E>() == std::any::TypeId::of::<f32>()
        && super::avx512::bf16::available()
        && c.cs == 1
        && view.cols > 0
    {
        // SAFETY: E is f32, the bf16 kernel's features are there (they include AVX-512F), and B has columns.
        let form = unsafe { b.packed(Layout::Bf16Panels) };
        return gemm_on(None, alpha, a, view, Some(&form.packed), true, beta, c);
    }
    super::gemm_bf16(alpha, a, view, beta, c)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The forms' flags themselves (`tests/gemm_bits.rs` checks the products): all three forms of training are
    /// packed by their products, and borrowing the tensor for writing leaves none of them fresh, even when
    /// nothing is written.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn tensor_mut_leaves_every_form_stale() {
        if !super::super::avx512::available() {
            return; // Nothing is ever packed off AVX-512: no flag to see.
        }
        let mut w = PackedWeight::new(Tensor::<f32>::full([32, 48], 0.5));
        let fresh = |w: &PackedWeight<f32>| w.forms.iter().map(|f| lock(f).fresh).collect::<Vec<_>>();
        let a = Tensor::<f32>::full([3, 48], 1.0);
        let (mut y, mut dx, mut h) = (vec![0.0f32; 3 * 32], vec![0.0f32; 3 * 48], vec![0.0f32; 3 * 16]);
        gemm_packed(1.0, a.as_mat(), w.as_mat().t(), 0.0, MatMut::new(&mut y, 3, 32));
        gemm_packed(1.0, MatRef::new(&y, 3, 32), w.as_mat(), 0.0, MatMut::new(&mut dx, 3, 48));
        super::super::gemm_swiglu_packed(a.as_mat(), w.as_mat().t(), &mut h);
        // Slots: panels of W, panels of W^T, pairs of W (unused in training), pairs of W^T, then the bf16
        // panels of W and of W^T (none yet: no bf16 product has run).
        assert_eq!(fresh(&w), [true, true, false, true, false, false]);
        let _ = w.tensor_mut();
        assert_eq!(fresh(&w), [false; 6]);
    }

    /// The bf16 forms too: packed by bf16 products (forward x W^T and input gradient dY W), left stale by
    /// `tensor_mut`, and repacked from the new values by the next product (bit for bit [`super::super::gemm_bf16`]
    /// of the written tensor).
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn tensor_mut_leaves_the_bf16_forms_stale() {
        use super::super::{gemm_bf16, Precision};
        if !super::super::avx512::bf16::available() {
            return; // Nothing is packed in bf16 without the kernel: no flag to see.
        }
        let mut w = PackedWeight::new(Tensor::<f32>::full([32, 48], 0.5));
        let fresh = |w: &PackedWeight<f32>| w.forms.iter().map(|f| lock(f).fresh).collect::<Vec<_>>();
        let a = Tensor::<f32>::full([3, 48], 1.0);
        let (mut y, mut dx) = (vec![0.0f32; 3 * 32], vec![0.0f32; 3 * 48]);
        Precision::Bf16.gemm_packed(1.0, a.as_mat(), w.as_mat().t(), 0.0, MatMut::new(&mut y, 3, 32));
        Precision::Bf16.gemm_packed(1.0, MatRef::new(&y, 3, 32), w.as_mat(), 0.0, MatMut::new(&mut dx, 3, 48));
        assert_eq!(fresh(&w), [false, false, false, false, true, true]);
        for (i, x) in w.tensor_mut().data_mut().iter_mut().enumerate() {
            *x = (i % 7) as f32 * 0.25 - 0.75;
        }
        assert_eq!(fresh(&w), [false; 6]);
        // The next product packs the written values, not the old ones.
        let mut want = vec![0.0f32; 3 * 32];
        let wt = MatRef::new(w.tensor().data(), 32, 48).t();
        gemm_bf16(1.0, a.as_mat(), wt, 0.0, MatMut::new(&mut want, 3, 32));
        Precision::Bf16.gemm_packed(1.0, a.as_mat(), w.as_mat().t(), 0.0, MatMut::new(&mut y, 3, 32));
        assert_eq!(
            y.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            want.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
        );
        assert_eq!(fresh(&w), [false, false, false, false, false, true]);
    }
}

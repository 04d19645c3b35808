//! `Tensor<E>`: a contiguous row-major buffer from the pool, and its shape.

use crate::float::Float;
use crate::gemm::MatRef;
use crate::pool;
use crate::shape::Shape;
use std::fmt;

/// A contiguous row-major tensor. Its storage comes from this thread's [`crate::pool`] and goes back there on
/// drop, so code that runs the same shapes again and again stops allocating after the first round.
pub struct Tensor<E: Float> {
    data: Vec<E>,
    shape: Shape,
}

impl<E: Float> Tensor<E> {
    /// A tensor whose contents are unspecified (initialised, but possibly old values): for outputs that a
    /// kernel overwrites completely. Saves the zero-fill.
    pub fn uninit(shape: impl Into<Shape>) -> Self {
        let shape = shape.into();
        Tensor { data: pool::take(shape.numel()), shape }
    }

    pub fn zeros(shape: impl Into<Shape>) -> Self {
        Self::full(shape, E::ZERO)
    }

    pub fn full(shape: impl Into<Shape>, value: E) -> Self {
        let mut t = Self::uninit(shape);
        t.data.fill(value);
        t
    }

    /// Wraps `data` (no copy); panics if its length is not the shape's element count. The buffer joins this
    /// thread's pool when the tensor drops, and counts as live until then.
    pub fn from_vec(data: Vec<E>, shape: impl Into<Shape>) -> Self {
        let shape = shape.into();
        assert_eq!(data.len(), shape.numel(), "Tensor::from_vec: {} elements do not fill shape {shape}", data.len());
        pool::adopt::<E>(data.len());
        Tensor { data, shape }
    }

    /// Copies `data` into a pooled buffer.
    pub fn from_slice(data: &[E], shape: impl Into<Shape>) -> Self {
        let shape = shape.into();
        assert_eq!(data.len(), shape.numel(), "Tensor::from_slice: {} elements do not fill shape {shape}", data.len());
        let mut t = Self::uninit(shape);
        t.data.copy_from_slice(data);
        t
    }

    pub fn scalar(x: E) -> Self {
        Self::full(Shape::scalar(), x)
    }

    /// 0, 1, ..., n-1.
    pub fn arange(n: usize) -> Self {
        let mut t = Self::uninit([n]);
        for (i, x) in t.data.iter_mut().enumerate() {
            *x = E::from_usize(i);
        }
        t
    }

    pub fn shape(&self) -> Shape {
        self.shape
    }
    pub fn dims(&self) -> &[usize] {
        self.shape.dims()
    }
    pub fn numel(&self) -> usize {
        self.data.len()
    }
    pub fn data(&self) -> &[E] {
        &self.data
    }
    pub fn data_mut(&mut self) -> &mut [E] {
        &mut self.data
    }

    /// The single element of a one-element tensor.
    pub fn item(&self) -> E {
        assert_eq!(self.data.len(), 1, "Tensor::item: shape {} is not a single element", self.shape);
        self.data[0]
    }

    /// Same data, new shape (free: no copy). Panics if the element counts differ.
    pub fn reshape(mut self, shape: impl Into<Shape>) -> Self {
        let shape = shape.into();
        assert_eq!(shape.numel(), self.shape.numel(), "reshape: cannot view shape {} as {shape}", self.shape);
        self.shape = shape;
        self
    }

    /// Changes the shape in place (free). Panics if the element counts differ.
    pub fn set_shape(&mut self, shape: impl Into<Shape>) {
        let shape = shape.into();
        assert_eq!(shape.numel(), self.shape.numel(), "set_shape: cannot view shape {} as {shape}", self.shape);
        self.shape = shape;
    }

    /// The storage, taken out of the pool's care: it no longer counts as live, and it is not given back.
    pub fn into_vec(mut self) -> Vec<E> {
        let data = std::mem::take(&mut self.data);
        pool::release::<E>(data.len());
        data
    }

    /// The tensor viewed as a matrix [rows, last] (free).
    pub fn as_mat(&self) -> MatRef<'_, E> {
        MatRef::new(&self.data, self.shape.rows(), self.shape.last())
    }

    /// A materialised transpose of the last two axes (batched over the leading axes).
    pub fn transpose_last2(&self) -> Self {
        let r = self.shape.rank();
        assert!(r >= 2, "transpose_last2: shape {} has fewer than 2 axes", self.shape);
        let (rows, cols) = (self.shape.dim(-2), self.shape.dim(-1));
        let batch = self.numel().checked_div(rows * cols).unwrap_or(0);
        let mut out = Self::uninit(self.shape.transpose_last2());
        crate::kernels::transpose(&self.data, batch, rows, cols, &mut out.data);
        out
    }

    /// Copies into a tensor of another element type (e.g. f32 weights into an f64 gradient check).
    pub fn cast<F: Float>(&self) -> Tensor<F> {
        let mut t = Tensor::<F>::uninit(self.shape);
        for (o, &x) in t.data.iter_mut().zip(&self.data) {
            *o = F::from_f64(x.to_f64());
        }
        t
    }

    /// Copies `other`'s values into `self` (same shape required).
    pub fn copy_from(&mut self, other: &Tensor<E>) {
        assert_eq!(self.shape, other.shape, "copy_from: shape {} vs {}", self.shape, other.shape);
        self.data.copy_from_slice(&other.data);
    }

    pub fn to_vec(&self) -> Vec<E> {
        self.data.to_vec()
    }

    /// True when every element is finite.
    pub fn all_finite(&self) -> bool {
        self.data.iter().all(|x| x.is_finite())
    }
}

impl<E: Float> Clone for Tensor<E> {
    fn clone(&self) -> Self {
        Self::from_slice(&self.data, self.shape)
    }
}

impl<E: Float> Drop for Tensor<E> {
    fn drop(&mut self) {
        pool::give(std::mem::take(&mut self.data));
    }
}

impl<E: Float> fmt::Debug for Tensor<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOW: usize = 8;
        write!(f, "Tensor<{}>{} [", E::NAME, self.shape)?;
        for (i, x) in self.data.iter().take(SHOW).enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            write!(f, "{x:.4}")?;
        }
        if self.data.len() > SHOW {
            write!(f, ", ... ({} more)", self.data.len() - SHOW)?;
        }
        write!(f, "]")
    }
}

impl<E: Float> PartialEq for Tensor<E> {
    fn eq(&self, other: &Self) -> bool {
        self.shape == other.shape && self.data == other.data
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reshape_is_free_and_checked() {
        let t = Tensor::<f32>::arange(6).reshape([2, 3]);
        assert_eq!(t.dims(), &[2, 3]);
        assert_eq!(t.data(), &[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!(t.transpose_last2().data(), &[0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
    }

    #[test]
    #[should_panic(expected = "reshape: cannot view shape [6] as [4]")]
    fn reshape_names_both_shapes() {
        let _ = Tensor::<f32>::arange(6).reshape([4]);
    }

    #[test]
    fn dropped_tensors_return_to_the_pool() {
        let before = pool::stats::<f64>();
        for _ in 0..10 {
            let _t = Tensor::<f64>::zeros([3, 17]);
        }
        let after = pool::stats::<f64>();
        assert_eq!(after.misses - before.misses, 1);
        assert_eq!(after.hits - before.hits, 9);
    }

    #[test]
    fn into_vec_and_from_vec_keep_the_live_count_honest() {
        let w = pool::PoolSpan::<f32>::start();
        let t = Tensor::<f32>::zeros([2, 5]);
        assert_eq!(w.delta().live_change, 10);
        let v = t.into_vec();
        assert_eq!(w.delta().live_change, 0, "into_vec takes the buffer off the books");
        let t = Tensor::from_vec(v, [10]);
        assert_eq!(w.delta().live_change, 10, "from_vec counts the adopted buffer as live");
        drop(t);
        assert_eq!(w.delta().live_change, 0);
        assert_eq!(w.delta().peak_extra, 10);
    }

    #[test]
    #[should_panic(expected = "Tensor::from_vec: 5 elements do not fill shape [2, 3]")]
    fn from_vec_names_the_shape() {
        let _ = Tensor::from_vec(vec![0.0f32; 5], [2, 3]);
    }

    #[test]
    #[should_panic(expected = "transpose_last2: shape [6] has fewer than 2 axes")]
    fn transpose_needs_two_axes() {
        let _ = Tensor::<f64>::arange(6).transpose_last2();
    }

    #[test]
    #[should_panic(expected = "copy_from: shape [2, 3] vs [3, 2]")]
    fn copy_from_names_both_shapes() {
        let mut a = Tensor::<f32>::zeros([2, 3]);
        a.copy_from(&Tensor::zeros([3, 2]));
    }
}

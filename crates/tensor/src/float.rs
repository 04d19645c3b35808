//! The element types: one trait, implemented for `f32` and `f64`.

use crate::pool::Pool;
use crate::simd::SimdVec;
use std::fmt::{Debug, Display};
use std::iter::Sum;
use std::ops::{Add, AddAssign, Div, DivAssign, Mul, MulAssign, Neg, Sub, SubAssign};

/// A floating-point element type. Kernels are generic over it; each implementation owns a thread-local
/// buffer pool (see [`crate::pool`]) because `thread_local!` cannot be generic.
pub trait Float:
    Copy
    + Default
    + Debug
    + Display
    + PartialEq
    + PartialOrd
    + Send
    + Sync
    + 'static
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + SubAssign
    + MulAssign
    + DivAssign
    + Sum
{
    const ZERO: Self;
    const ONE: Self;
    /// "f32" or "f64", for messages and checkpoint dtypes.
    const NAME: &'static str;
    /// Machine epsilon (the distance from 1.0 to the next larger value), for ulp-based tolerances.
    const EPSILON: Self;
    /// The 256-bit SIMD vector of this type (`wide::f32x8` or `wide::f64x4`) that the kernels run on.
    type Simd: SimdVec<Elem = Self>;

    fn from_f64(x: f64) -> Self;
    fn to_f64(self) -> f64;
    fn from_usize(x: usize) -> Self {
        Self::from_f64(x as f64)
    }
    fn exp(self) -> Self;
    fn ln(self) -> Self;
    fn sqrt(self) -> Self;
    fn abs(self) -> Self;
    fn max(self, other: Self) -> Self;
    fn min(self, other: Self) -> Self;
    fn recip(self) -> Self;
    fn atan2(self, other: Self) -> Self;
    fn sin(self) -> Self;
    fn cos(self) -> Self;
    fn powi(self, n: i32) -> Self;
    fn is_finite(self) -> bool;
    fn signum(self) -> Self;

    /// Runs `f` with this thread's pool of buffers of this element type.
    fn with_pool<R>(f: impl FnOnce(&mut Pool<Self>) -> R) -> R;
    /// Like [`Float::with_pool`], but `None` when the pool is already gone (thread teardown).
    fn try_with_pool<R>(f: impl FnOnce(&mut Pool<Self>) -> R) -> Option<R>;
}

macro_rules! impl_float {
    ($t:ident, $simd:ty, $pool:ident) => {
        thread_local! {
            static $pool: std::cell::RefCell<Pool<$t>> = std::cell::RefCell::new(Pool::new());
        }

        impl Float for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            const NAME: &'static str = stringify!($t);
            const EPSILON: Self = $t::EPSILON;
            type Simd = $simd;

            #[inline(always)]
            fn from_f64(x: f64) -> Self {
                x as $t
            }
            #[inline(always)]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline(always)]
            fn exp(self) -> Self {
                $t::exp(self)
            }
            #[inline(always)]
            fn ln(self) -> Self {
                $t::ln(self)
            }
            #[inline(always)]
            fn sqrt(self) -> Self {
                $t::sqrt(self)
            }
            #[inline(always)]
            fn abs(self) -> Self {
                $t::abs(self)
            }
            #[inline(always)]
            fn max(self, other: Self) -> Self {
                $t::max(self, other)
            }
            #[inline(always)]
            fn min(self, other: Self) -> Self {
                $t::min(self, other)
            }
            #[inline(always)]
            fn recip(self) -> Self {
                $t::recip(self)
            }
            #[inline(always)]
            fn atan2(self, other: Self) -> Self {
                $t::atan2(self, other)
            }
            #[inline(always)]
            fn sin(self) -> Self {
                $t::sin(self)
            }
            #[inline(always)]
            fn cos(self) -> Self {
                $t::cos(self)
            }
            #[inline(always)]
            fn powi(self, n: i32) -> Self {
                $t::powi(self, n)
            }
            #[inline(always)]
            fn is_finite(self) -> bool {
                $t::is_finite(self)
            }
            #[inline(always)]
            fn signum(self) -> Self {
                if self > 0.0 {
                    1.0
                } else if self < 0.0 {
                    -1.0
                } else {
                    0.0
                }
            }
            fn with_pool<R>(f: impl FnOnce(&mut Pool<Self>) -> R) -> R {
                $pool.with(|p| f(&mut p.borrow_mut()))
            }
            fn try_with_pool<R>(f: impl FnOnce(&mut Pool<Self>) -> R) -> Option<R> {
                $pool.try_with(|p| p.try_borrow_mut().ok().map(|mut p| f(&mut p))).ok().flatten()
            }
        }
    };
}

impl_float!(f32, wide::f32x8, POOL_F32);
impl_float!(f64, wide::f64x4, POOL_F64);

//! STUB: no-gradient helpers on tensors (argmax, equality, per-row where), signatures fixed.

use loopgrad_tensor::{Float, Tensor};

/// out[r] = argmax over the last axis of x (first index on ties); out.len() = x's rows.
pub fn argmax_last<E: Float>(x: &Tensor<E>, out: &mut [usize]) {
    let _ = (x, out);
    unimplemented!("argmax_last")
}

/// out[i] = (a[i] == b[i]).
pub fn equal(a: &[usize], b: &[usize], out: &mut [bool]) {
    let _ = (a, b, out);
    unimplemented!("equal")
}

/// Per leading-axis row: out[r, ..] = if mask[r] { if_true[r, ..] } else { if_false[r, ..] } (resetting halted
/// slots to the init carry). if_true may also be a single row broadcast over all rows.
pub fn where_rows<E: Float>(mask: &[bool], if_true: &Tensor<E>, if_false: &Tensor<E>, out: &mut Tensor<E>) {
    let _ = (mask, if_true, if_false, out);
    unimplemented!("where_rows")
}

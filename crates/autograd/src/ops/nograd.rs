//! No-gradient helpers on plain tensors and slices: the model reads predictions (argmax), scores them
//! (equality), and resets halted slots of the carry to the init vectors (per-row where). None of these is on
//! the tape; they run between steps on values taken out of it. They write into caller-provided outputs so that
//! a training step allocates nothing.

use loopgrad_tensor::{kernels, Float, Tensor};

/// `out[r]` = argmax over the last axis of x (first index on ties); out.len() = x's rows.
pub fn argmax_last<E: Float>(x: &Tensor<E>, out: &mut [usize]) {
    let s = x.shape();
    assert!(
        s.last() > 0 && out.len() == s.rows(),
        "argmax_last: output of {} rows for an input of shape {s} ({} rows)",
        out.len(),
        s.rows()
    );
    kernels::row_argmax(x.data(), s.last(), out);
}

/// `out[i] = (a[i] == b[i])`.
pub fn equal(a: &[usize], b: &[usize], out: &mut [bool]) {
    assert!(
        a.len() == b.len() && a.len() == out.len(),
        "equal: lengths {} and {} into an output of {}",
        a.len(),
        b.len(),
        out.len()
    );
    for ((o, x), y) in out.iter_mut().zip(a).zip(b) {
        *o = x == y;
    }
}

/// Per leading-axis row: `out[r, ..] = if mask[r] { if_true[r, ..] } else { if_false[r, ..] }` (resetting halted
/// slots to the init carry). if_true may also be a single row broadcast over all rows.
pub fn where_rows<E: Float>(mask: &[bool], if_true: &Tensor<E>, if_false: &Tensor<E>, out: &mut Tensor<E>) {
    let (sf, st, so) = (if_false.shape(), if_true.shape(), out.shape());
    let rows = mask.len();
    assert!(
        so == sf && sf.rank() >= 1 && sf.dim(0) == rows,
        "where_rows: mask of {rows} rows, if_false {sf}, out {so} (expected out = if_false = [{rows}, ..])"
    );
    let row_len = sf.numel().checked_div(rows).unwrap_or(0);
    let broadcast = st.numel() == row_len && st != sf;
    assert!(
        st == sf || broadcast,
        "where_rows: if_true of shape {st} is neither {sf} nor one row of {row_len} elements"
    );
    for (r, &m) in mask.iter().enumerate() {
        let dst = &mut out.data_mut()[r * row_len..(r + 1) * row_len];
        let src = match (m, broadcast) {
            (true, true) => if_true.data(),
            (true, false) => &if_true.data()[r * row_len..(r + 1) * row_len],
            (false, _) => &if_false.data()[r * row_len..(r + 1) * row_len],
        };
        dst.copy_from_slice(src);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argmax_takes_the_first_index_on_ties() {
        let x = Tensor::<f32>::from_vec(vec![1.0, 3.0, 3.0, -1.0, -2.0, -0.5], [2, 3]);
        let mut out = [9; 2];
        argmax_last(&x, &mut out);
        assert_eq!(out, [1, 2]);
    }

    #[test]
    #[should_panic(expected = "argmax_last: output of 3 rows for an input of shape [2, 3] (2 rows)")]
    fn argmax_checks_the_output_length() {
        argmax_last(&Tensor::<f32>::zeros([2, 3]), &mut [0; 3]);
    }

    #[test]
    fn equal_compares_element_wise() {
        let mut out = [false; 3];
        equal(&[1, 2, 3], &[1, 0, 3], &mut out);
        assert_eq!(out, [true, false, true]);
    }

    #[test]
    fn where_rows_picks_rows_and_broadcasts_a_single_row() {
        let carry = Tensor::<f64>::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [3, 1, 2]);
        let init = Tensor::<f64>::from_vec(vec![-1.0, -2.0], [2]);
        let mut out = Tensor::<f64>::zeros([3, 1, 2]);
        where_rows(&[false, true, false], &init, &carry, &mut out);
        assert_eq!(out.data(), &[1.0, 2.0, -1.0, -2.0, 5.0, 6.0]);
        let fresh = Tensor::<f64>::from_vec(vec![7.0, 8.0, 9.0, 10.0, 11.0, 12.0], [3, 1, 2]);
        where_rows(&[true, false, true], &fresh, &carry, &mut out);
        assert_eq!(out.data(), &[7.0, 8.0, 3.0, 4.0, 11.0, 12.0]);
    }

    #[test]
    #[should_panic(expected = "where_rows: if_true of shape [3] is neither [2, 2] nor one row of 2 elements")]
    fn where_rows_rejects_a_mismatched_if_true() {
        let f = Tensor::<f32>::zeros([2, 2]);
        let mut out = Tensor::<f32>::zeros([2, 2]);
        where_rows(&[true, false], &Tensor::zeros([3]), &f, &mut out);
    }
}

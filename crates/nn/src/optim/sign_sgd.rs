//! Sparse sign-SGD for the puzzle-embedding table, as TRM's `CastedSparseEmbeddingSignSGD_Distributed`.
//!
//! Only the rows of the puzzles in the batch change:
//!
//! ```text
//! for each distinct row r of the batch:  p[r] = p[r] * (1 - lr * wd) - lr * sign(G[r])
//! ```
//!
//! where G[r] is the sum of the gradients of every batch position that used row r. The reference forms that
//! sum with `unique` + `scatter_add_`; here the embedding backward already scatter-adds into the table's
//! gradient buffer, so row r of the buffer *is* G[r]. A row in the batch whose summed gradient is zero still
//! decays (sign(0) = 0), exactly as in the reference. Rows outside the batch are not touched at all, not even
//! by weight decay: that is what makes it cheap for tables with a million puzzles.
//!
//! The optimizer is stateless (the reference notes that Adam approaches sign-SGD when gradients are this
//! sparse); it zeroes the gradient rows it consumed, so the table's gradient never needs a full clear.

use super::check_params;
use loopgrad_autograd::{Param, ParamStore};
use loopgrad_tensor::Float;
use serde::{Deserialize, Serialize};

/// Hyper-parameters of [`SparseSignSgd`]; the default weight decay is TRM's `puzzle_emb_weight_decay` (0.1).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SignSgdConfig {
    pub weight_decay: f64,
}

impl Default for SignSgdConfig {
    fn default() -> Self {
        SignSgdConfig { weight_decay: 0.1 }
    }
}

/// Sign-SGD on the rows of one [rows, dim] table that a batch used.
pub struct SparseSignSgd {
    table: Param,
    config: SignSgdConfig,
    /// Scratch for the sorted distinct rows of a batch (keeps its capacity across steps).
    distinct: Vec<usize>,
}

impl SparseSignSgd {
    /// Panics unless `table` is a trainable rank-2 parameter.
    pub fn new<E: Float>(store: &ParamStore<E>, table: Param, config: SignSgdConfig) -> Self {
        check_params("SparseSignSgd", store, &[table]);
        let shape = store.shape(table);
        assert_eq!(shape.rank(), 2, "SparseSignSgd: table {} must be [rows, dim], got {shape}", store.name(table));
        SparseSignSgd { table, config, distinct: Vec::new() }
    }

    pub fn table(&self) -> Param {
        self.table
    }

    pub fn config(&self) -> &SignSgdConfig {
        &self.config
    }

    /// Updates the rows `rows` (the puzzle ids of the batch, duplicates allowed) with learning rate `lr`, then
    /// zeroes their gradient rows. Panics on a row id outside the table (the data loader validates ids).
    pub fn step<E: Float>(&mut self, store: &mut ParamStore<E>, lr: f64, rows: &[usize]) {
        let n_rows = store.shape(self.table).dim(0);
        self.distinct.clear();
        self.distinct.extend_from_slice(rows);
        self.distinct.sort_unstable();
        self.distinct.dedup();
        if let Some(&last) = self.distinct.last() {
            assert!(
                last < n_rows,
                "SparseSignSgd::step: row {last} is outside the table {} of {n_rows} rows",
                store.name(self.table)
            );
        }
        let decay = E::from_f64(1.0 - lr * self.config.weight_decay);
        let neg_lr = E::from_f64(-lr);
        let (value, grad) = store.value_and_grad_mut(self.table);
        let dim = value.shape().dim(1);
        for &r in &self.distinct {
            let span = r * dim..(r + 1) * dim;
            for (x, g) in value.data_mut()[span.clone()].iter_mut().zip(&mut grad.data_mut()[span]) {
                *x = *x * decay + neg_lr * g.signum();
                *g = E::ZERO;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use loopgrad_tensor::Tensor;

    #[test]
    fn only_the_batch_rows_change_each_by_decay_and_lr_times_the_sign_of_its_summed_gradient() {
        let mut store = ParamStore::<f32>::new();
        let table = store.add("inner.puzzle_emb.weights", Tensor::full([5, 3], 1.0));
        // Row 1 appears twice in the batch; the embedding backward left the sum of both gradients in its row.
        store.grad_mut(table).data_mut()[3..6].copy_from_slice(&[-0.25, 0.0, 2.0]);
        store.grad_mut(table).data_mut()[9..12].copy_from_slice(&[0.5, -0.5, 0.0]);
        let mut opt = SparseSignSgd::new(&store, table, SignSgdConfig { weight_decay: 0.5 });
        opt.step(&mut store, 0.1, &[3, 1, 1]);
        let v = store.value(table).data();
        let decay = (1.0f64 - 0.1 * 0.5) as f32;
        assert_eq!(&v[0..3], &[1.0; 3], "row 0 is not in the batch");
        assert_eq!(&v[3..6], &[decay + 0.1, decay, decay - 0.1]);
        assert_eq!(&v[6..9], &[1.0; 3]);
        assert_eq!(&v[9..12], &[decay - 0.1, decay + 0.1, decay]);
        assert_eq!(&v[12..15], &[1.0; 3]);
        assert!(store.grad(table).data().iter().all(|&g| g == 0.0), "consumed rows are zeroed");
    }

    #[test]
    fn gradient_rows_outside_the_batch_are_left_alone() {
        let mut store = ParamStore::<f64>::new();
        let table = store.add("t", Tensor::zeros([3, 2]));
        store.grad_mut(table).data_mut().copy_from_slice(&[1.0, 1.0, 2.0, 2.0, 3.0, 3.0]);
        let mut opt = SparseSignSgd::new(&store, table, SignSgdConfig::default());
        opt.step(&mut store, 1.0, &[2]);
        assert_eq!(store.value(table).data(), &[0.0, 0.0, 0.0, 0.0, -1.0, -1.0]);
        assert_eq!(store.grad(table).data(), &[1.0, 1.0, 2.0, 2.0, 0.0, 0.0]);
    }

    #[test]
    #[should_panic(expected = "row 7 is outside the table t of 3 rows")]
    fn a_row_outside_the_table_panics_with_names() {
        let mut store = ParamStore::<f64>::new();
        let table = store.add("t", Tensor::zeros([3, 2]));
        SparseSignSgd::new(&store, table, SignSgdConfig::default()).step(&mut store, 1.0, &[0, 7]);
    }
}

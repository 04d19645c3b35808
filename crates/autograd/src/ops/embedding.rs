//! Embedding gather: rows of a table picked by integer ids.
//!
//! | op | forward | backward |
//! |---|---|---|
//! | embedding | `y[p, :] = T[ids[p], :]` | `dT[ids[p], :] += dy[p, :]` for every position p (scatter-add) |
//!
//! Backward touches only the rows named in `ids`: a row used at several positions receives the sum of their
//! gradients, and every other row of the table gradient is left as it was. That is what the sparse sign-SGD of
//! the puzzle embeddings relies on (it updates only the rows in the batch). The ids are saved in the tape's
//! integer arena, so recording an embedding allocates nothing once the arena has grown.

use crate::op::Op;
use crate::tape::{Ctx, Tape, Var};
use loopgrad_tensor::{kernels, Float, Shape, Tensor};

impl<E: Float> Tape<E> {
    /// Rows of `table` [V, D] gathered by `ids` -> [batch_shape.., D] (ids.len() = product of batch_shape).
    /// Backward scatter-adds into the table's gradient, touching only the rows in `ids`.
    pub fn embedding(&mut self, table: Var, ids: &[usize], batch_shape: &[usize]) -> Var {
        let tt = self.value(table);
        let ts = tt.shape();
        assert!(ts.rank() == 2, "embedding: the table has shape {ts}, expected [V, D]");
        let (v, d) = (ts.dim(0), ts.dim(1));
        let positions: usize = batch_shape.iter().product();
        assert_eq!(
            ids.len(),
            positions,
            "embedding: {} ids for a batch of shape {:?} ({positions} positions)",
            ids.len(),
            batch_shape
        );
        assert!(
            batch_shape.len() < loopgrad_tensor::shape::MAX_RANK,
            "embedding: batch shape {batch_shape:?} leaves no room for the embedding axis"
        );
        let mut dims = [0; loopgrad_tensor::shape::MAX_RANK];
        dims[..batch_shape.len()].copy_from_slice(batch_shape);
        dims[batch_shape.len()] = d;
        let mut out = Tensor::uninit(Shape::new(&dims[..=batch_shape.len()]));
        for (p, &id) in ids.iter().enumerate() {
            assert!(id < v, "embedding: id {id} is out of range for a table of {v} rows");
            out.data_mut()[p * d..(p + 1) * d].copy_from_slice(&tt.data()[id * d..(id + 1) * d]);
        }
        self.push_op(Op::Embedding, &[table], out, [], ids)
    }
}

pub(crate) fn backward<E: Float>(ctx: &mut Ctx<'_, E>) {
    let (g, ids) = (ctx.gout, ctx.ints);
    let d = ctx.input(0).shape().dim(1);
    let Some(dt) = ctx.grad(0) else { return };
    for (p, &id) in ids.iter().enumerate() {
        kernels::add_assign(&mut dt[id * d..(id + 1) * d], &g.data()[p * d..(p + 1) * d]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::GradCheck;
    use crate::ParamStore;
    use loopgrad_tensor::Rng;
    use proptest::prelude::*;

    #[test]
    fn gathers_rows_into_the_batch_shape() {
        let mut tape = Tape::<f32>::new(ParamStore::new());
        let table = tape.constant(Tensor::from_vec(vec![0.0, 1.0, 10.0, 11.0, 20.0, 21.0], [3, 2]));
        let y = tape.embedding(table, &[2, 0, 2, 1], &[2, 2]);
        assert_eq!(tape.value(y).dims(), &[2, 2, 2]);
        assert_eq!(tape.value(y).data(), &[20.0, 21.0, 0.0, 1.0, 20.0, 21.0, 10.0, 11.0]);
    }

    #[test]
    #[should_panic(expected = "embedding: id 3 is out of range for a table of 3 rows")]
    fn out_of_range_id_names_the_op_the_id_and_the_table_size() {
        let mut tape = Tape::<f32>::new(ParamStore::new());
        let table = tape.constant(Tensor::zeros([3, 2]));
        tape.embedding(table, &[0, 3], &[2]);
    }

    #[test]
    fn backward_scatter_adds_only_the_rows_in_the_batch() {
        let mut params = ParamStore::new();
        let p = params.add("table", Tensor::<f64>::zeros([5, 2]));
        let mut tape = Tape::new(params);
        // Mark untouched rows with a sentinel: backward must leave them exactly as they were.
        tape.params.grad_mut(p).data_mut().fill(7.0);
        let table = tape.param(p);
        let y = tape.embedding(table, &[1, 3, 1], &[3]);
        let gy = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [3, 2]);
        tape.backward_with(&mut [(y, gy)]);
        let g = tape.params.grad(p).data();
        assert_eq!(g, &[7.0, 7.0, 13.0, 15.0, 7.0, 7.0, 10.0, 11.0, 7.0, 7.0]);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(crate::gradcheck::proptest_cases()))]

        #[test]
        fn gradients_match_finite_differences(
            v in 1usize..9, d in 1usize..10, positions in 1usize..8, seed in 0u64..1000
        ) {
            let mut rng = Rng::new(seed);
            let mut table = Tensor::<f64>::uninit([v, d]);
            rng.fill_normal(table.data_mut(), 1.0);
            let ids: Vec<usize> = (0..positions).map(|_| rng.below(v)).collect();
            let mut params = ParamStore::new();
            let p = params.add("emb", table.clone());
            let mut tape = Tape::new(params);
            GradCheck::default().check("embedding(param)", &mut tape, &[], |t, _| {
                let table = t.param(p);
                t.embedding(table, &ids, &[1, positions])
            }).unwrap();
            crate::gradcheck::gradcheck("embedding", &[table], |t, x| t.embedding(x[0], &ids, &[positions])).unwrap();
        }
    }
}

//! `Embedding`: rows of a table `[num, dim]` gathered by integer ids.

use super::{Init, ParamSink};
use loopgrad_autograd::{Param, Tape, Var};
use loopgrad_tensor::Float;

/// A lookup table. `{name}.{tensor}` [num, dim]; the tensor name is the reference's: `embedding_weight` for
/// token embeddings (`CastedEmbedding`), `weights` for the sparse puzzle embedding (`CastedSparseEmbedding`).
/// The backward scatter-adds into the table's gradient, touching only the rows that were gathered.
#[derive(Clone, Debug)]
pub struct Embedding {
    pub table: Param,
    pub num: usize,
    pub dim: usize,
}

impl Embedding {
    /// Token embeddings: `{name}.embedding_weight`, truncated normal with standard deviation `std` (the
    /// reference uses 1/sqrt(D), so that sqrt(D) * embedding has unit scale).
    pub fn new(sink: &mut (impl ParamSink + ?Sized), name: &str, num: usize, dim: usize, std: f64) -> Self {
        let table = sink.param(&format!("{name}.embedding_weight"), &[num, dim], Init::TruncNormal(std), true);
        Embedding { table, num, dim }
    }

    /// Puzzle embeddings: `{name}.weights`, zero-initialised (a puzzle starts with no identity of its own).
    pub fn zeros(sink: &mut (impl ParamSink + ?Sized), name: &str, num: usize, dim: usize) -> Self {
        let table = sink.param(&format!("{name}.weights"), &[num, dim], Init::Constant(0.0), true);
        Embedding { table, num, dim }
    }

    /// ids (row-major over `batch_shape`) -> [batch_shape.., dim]. Panics if an id is out of range.
    pub fn forward<E: Float>(&self, tape: &mut Tape<E>, ids: &[usize], batch_shape: &[usize]) -> Var {
        if let Some(&bad) = ids.iter().find(|&&i| i >= self.num) {
            panic!("Embedding: id {bad} out of range for a table of {} rows", self.num);
        }
        let t = tape.param(self.table);
        tape.embedding(t, ids, batch_shape)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::Builder;
    use loopgrad_autograd::ParamStore;
    use loopgrad_tensor::Rng;

    #[test]
    fn gathers_rows_and_names_tables_like_the_reference() {
        let mut store = ParamStore::<f32>::new();
        let mut rng = Rng::new(1);
        let mut b = Builder::new(&mut store, &mut rng);
        let tok = Embedding::new(&mut b, "inner.embed_tokens", 5, 3, 0.5);
        let puz = Embedding::zeros(&mut b, "inner.puzzle_emb", 2, 3);
        assert_eq!(store.name(tok.table), "inner.embed_tokens.embedding_weight");
        assert_eq!(store.name(puz.table), "inner.puzzle_emb.weights");
        assert!(store.value(puz.table).data().iter().all(|&x| x == 0.0));
        let table = store.value(tok.table).clone();
        let mut tape = Tape::new(store);
        let y = tok.forward(&mut tape, &[4, 0, 4], &[1, 3]);
        assert_eq!(tape.value(y).dims(), &[1, 3, 3]);
        assert_eq!(&tape.value(y).data()[..3], &table.data()[12..15]);
        assert_eq!(&tape.value(y).data()[3..6], &table.data()[..3]);
    }

    #[test]
    #[should_panic(expected = "Embedding: id 5 out of range for a table of 5 rows")]
    fn out_of_range_ids_are_named() {
        let mut store = ParamStore::<f32>::new();
        let mut rng = Rng::new(1);
        let tok = Embedding::new(&mut Builder::new(&mut store, &mut rng), "e", 5, 3, 0.5);
        let mut tape = Tape::new(store);
        tok.forward(&mut tape, &[5], &[1]);
    }
}

//! What every model shares around its nets: the input embedding with the puzzle prefix, the rotary tables, the
//! output heads, and the fixed carry init vectors.
//!
//! ```text
//! x      = sqrt(D) * [puzzle_emb[id] ; 0 x (P-1) ; embed_tokens[inputs]]      [B, P + L, D]
//! logits = lm_head(y[:, P:])                                                   [B, L, V]
//! q      = q_head(y[:, 0])  -> (q_halt, q_continue)                            [B, 1, 1] each
//! ```

use crate::config::IoSpec;
use crate::step::Batch;
use loopgrad_autograd::{Param, ParamStore, Tape, Var};
use loopgrad_nn::layers::{rope_tables, Embedding, Init, Linear, ParamSink};
use loopgrad_tensor::{Float, Tensor};

/// Name of the puzzle-embedding table (excluded from the published parameter counts, trained by sign-SGD).
pub const PUZZLE_EMB: &str = "inner.puzzle_emb.weights";

/// The embeddings and heads: `inner.embed_tokens`, `inner.puzzle_emb`, `inner.lm_head`, `inner.q_head`; and the
/// shape of the rotary position tables, which the reference's inner model also holds beside its embeddings
/// (`rotary_emb`).
#[derive(Clone, Debug)]
pub struct InputOutput {
    pub spec: IoSpec,
    /// (head dim, theta) of the rotary tables when the nets use attention; None for the token MLP.
    pub rope: Option<(usize, f64)>,
    pub embed_tokens: Embedding,
    pub puzzle_emb: Embedding,
    pub lm_head: Linear,
    pub q_head: Linear,
}

impl InputOutput {
    pub fn new(sink: &mut (impl ParamSink + ?Sized), spec: IoSpec, rope: Option<(usize, f64)>) -> Self {
        let d = spec.hidden_size;
        let embed_tokens = Embedding::new(sink, "inner.embed_tokens", spec.vocab_size, d, 1.0 / (d as f64).sqrt());
        let lm_head = Linear::new(sink, "inner.lm_head", d, spec.vocab_size, false);
        // The q_head starts at weight 0 and bias -5 (the reference's "init Q to (almost) zero"): q_halt starts
        // at sigmoid(-5) = 0.7%, so nothing halts early while the answer is still wrong.
        let q_head = Linear {
            weight: sink.param("inner.q_head.weight", &[2, d], Init::Constant(0.0), true),
            bias: Some(sink.param("inner.q_head.bias", &[2], Init::Constant(-5.0), true)),
            in_features: d,
            out_features: 2,
        };
        let puzzle_emb = Embedding::zeros(sink, "inner.puzzle_emb", spec.num_puzzle_identifiers, d);
        InputOutput { spec, rope, embed_tokens, puzzle_emb, lm_head, q_head }
    }

    /// The rotary tables (cos, sin) [L', head dim] as tape constants, for the models with attention.
    pub fn rope_constants<E: Float>(&self, tape: &mut Tape<E>) -> Option<(Var, Var)> {
        self.rope.map(|(head_dim, theta)| {
            let (cos, sin) = rope_tables::<E>(self.spec.positions(), head_dim, theta);
            (tape.constant(cos), tape.constant(sin))
        })
    }

    /// x = sqrt(D) [puzzle prefix ; token embeddings] -> [B, P + L, D].
    pub fn input_embeddings<E: Float>(&self, tape: &mut Tape<E>, batch: &Batch) -> Var {
        let s = self.spec;
        batch.check(s.seq_len, s.num_puzzle_identifiers);
        let b = batch.size();
        let puzzle = self.puzzle_emb.forward(tape, &batch.puzzle_ids, &[b, 1]);
        let prefix = if s.puzzle_emb_len > 1 {
            let zeros = tape.constant(Tensor::zeros([b, s.puzzle_emb_len - 1, s.hidden_size]));
            tape.concat_seq(puzzle, zeros)
        } else {
            puzzle
        };
        let tokens = self.embed_tokens.forward(tape, &batch.inputs, &[b, s.seq_len]);
        let x = tape.concat_seq(prefix, tokens);
        tape.scale(x, (s.hidden_size as f64).sqrt())
    }

    /// The heads on the answer state y [B, P + L, D]: (logits [B, L, V], q_halt [B, 1, 1], q_continue [B, 1, 1]).
    pub fn heads<E: Float>(&self, tape: &mut Tape<E>, y: Var) -> (Var, Var, Var) {
        let s = self.spec;
        let tokens = tape.slice_seq(y, s.puzzle_emb_len, s.seq_len);
        let logits = self.lm_head.forward(tape, tokens);
        let first = tape.slice_seq(y, 0, 1);
        let q = self.q_head.forward(tape, first); // [B, 1, 2]
        let q = tape.transpose(q); // [B, 2, 1]: the two Q-values become "positions" that slice_seq can split
        let q_halt = tape.slice_seq(q, 0, 1);
        let q_continue = tape.slice_seq(q, 1, 1);
        (logits, q_halt, q_continue)
    }
}

/// A fixed carry init vector `name` `[D]`: truncated normal, std 1, saved in checkpoints, never trained (a
/// buffer in the reference, so not counted as a parameter).
pub fn carry_init(sink: &mut (impl ParamSink + ?Sized), name: &str, hidden: usize) -> Param {
    sink.param(name, &[hidden], Init::TruncNormal(1.0), false)
}

/// [B, L', D] with every position of every slot equal to the init vector `init` `[D]`.
pub fn broadcast_init<E: Float>(store: &ParamStore<E>, init: Param, batch: usize, positions: usize) -> Tensor<E> {
    let v = store.value(init).data();
    let mut t = Tensor::uninit([batch, positions, v.len()]);
    for row in t.data_mut().chunks_exact_mut(v.len()) {
        row.copy_from_slice(v);
    }
    t
}

/// Sets every position of the slots where `reset` holds to the init vector (halted slots start over).
pub fn reset_slots<E: Float>(store: &ParamStore<E>, init: Param, state: &mut Tensor<E>, reset: &[bool]) {
    let v = store.value(init).data();
    let b = state.dims()[0];
    assert_eq!(reset.len(), b, "reset_slots: {} flags for a carry of {b} slots", reset.len());
    let per_slot = state.numel() / b.max(1);
    for (slot, _) in state.data_mut().chunks_exact_mut(per_slot).zip(reset).filter(|(_, &r)| r) {
        for row in slot.chunks_exact_mut(v.len()) {
            row.copy_from_slice(v);
        }
    }
}

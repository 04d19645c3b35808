//! The non-recursive direct-prediction transformer: K distinct blocks applied once per supervision step,
//! z = blocks(z + x), every call recorded. With the same I/O, carry and deep supervision as TRM, it isolates
//! what recursion adds: give it TRM's parameters (K = L) or TRM's effective depth (K = T(n+1)L).

use crate::config::{BaselineConfig, IoSpec};
use crate::io::{carry_init, InputOutput};
use crate::model::{net_call, Reasoner};
use loopgrad_autograd::window::{GradWindow, Recurrence};
use loopgrad_autograd::{Param, Tape, Var};
use loopgrad_nn::layers::{BlockSpec, BlockStack, ParamSink};
use loopgrad_tensor::Float;

#[derive(Clone, Debug)]
pub struct Baseline {
    pub config: BaselineConfig,
    pub io: InputOutput,
    /// `inner.H_level` with K layers.
    pub net: BlockStack,
    /// `inner.H_init`: the carry is `[z]`.
    pub inits: Vec<Param>,
}

impl Baseline {
    pub fn new(sink: &mut (impl ParamSink + ?Sized), config: &BaselineConfig) -> Self {
        let c = config;
        let io_spec = IoSpec {
            seq_len: c.seq_len,
            vocab_size: c.vocab_size,
            num_puzzle_identifiers: c.num_puzzle_identifiers,
            puzzle_emb_len: c.puzzle_emb_len,
            hidden_size: c.hidden_size,
        };
        let io = InputOutput::new(sink, io_spec);
        let spec = BlockSpec {
            width: c.hidden_size,
            heads: c.num_heads,
            expansion: c.expansion,
            token_mlp_positions: c.mlp_t.then_some(io_spec.positions()),
            eps: c.rms_norm_eps,
        };
        let net = BlockStack::new(sink, "inner.H_level", c.num_layers, &spec);
        let inits = vec![carry_init(sink, "inner.H_init", c.hidden_size)];
        Baseline { config: config.clone(), io, net, inits }
    }
}

/// The baseline's single net call: z = blocks(z + x).
pub struct BaselineCall<'m> {
    pub baseline: &'m Baseline,
    pub x: Var,
    pub rope: Option<(Var, Var)>,
}

impl<E: Float> Recurrence<E> for BaselineCall<'_> {
    fn calls_per_recursion(&self) -> usize {
        1
    }
    fn call(&self, tape: &mut Tape<E>, s: &mut [Var], _call: usize) {
        s[0] = net_call(tape, &self.baseline.net, &[s[0]], &[self.x], self.rope);
    }
}

impl Reasoner for Baseline {
    fn io(&self) -> &InputOutput {
        &self.io
    }
    fn carry_inits(&self) -> &[Param] {
        &self.inits
    }
    fn rope(&self) -> Option<(usize, f64)> {
        (!self.config.mlp_t).then_some((self.config.hidden_size / self.config.num_heads, self.config.rope_theta))
    }
    fn recursions(&self) -> usize {
        1
    }
    fn window(&self) -> GradWindow {
        GradWindow::Full
    }
    fn calls<'a, E: Float>(&'a self, x: Var, rope: Option<(Var, Var)>) -> impl Recurrence<E> + 'a {
        BaselineCall { baseline: self, x, rope }
    }
    fn answer(&self, state: &[Var]) -> Var {
        state[0]
    }
}

//! The non-recursive direct-prediction transformer: K distinct blocks applied once per supervision step,
//! z = blocks(z + x), every call recorded. With the same I/O, carry and deep supervision as TRM, it isolates
//! what recursion adds: give it TRM's parameters (K = L) or TRM's effective depth (K = T(n+1)L).

use crate::config::BaselineConfig;
use crate::io::{carry_init, InputOutput};
use crate::model::{net_call, Reasoner};
use loopgrad_autograd::window::{GradWindow, Recurrence};
use loopgrad_autograd::{Param, Tape, Var};
use loopgrad_nn::layers::{BlockStack, ParamSink};
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
        let io = InputOutput::new(sink, c.io(), c.rope());
        let spec = c.block_spec();
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
    fn recursions(&self) -> usize {
        1
    }
    fn window(&self) -> GradWindow {
        GradWindow::Full
    }
    fn calls<'a, E: Float>(&'a self, x: Var, rope: Option<(Var, Var)>) -> impl Recurrence<E> + 'a {
        BaselineCall { baseline: self, x, rope }
    }
}

//! The Hierarchical Reasoning Model: a slow net H and a fast net L, each its own stack of blocks.
//!
//! ```text
//! for i in range(H_cycles):
//!     for j in range(L_cycles):
//!         z_L = L(z_L, z_H + x)
//!     z_H = H(z_H, z_L)
//! ```
//! HRM's 1-step gradient ([`GradWindow::OneStep`]) records only the last z_L update and the last z_H update;
//! everything before runs without a tape. Outputs and Q-values read z_H. The continue target comes from an
//! extra forward without gradient ([`crate::Model::q_continue_target`]).

use crate::config::HrmConfig;
use crate::io::{carry_init, InputOutput};
use crate::model::{net_call, Reasoner};
use loopgrad_autograd::window::{GradWindow, Recurrence};
use loopgrad_autograd::{Param, Tape, Var};
use loopgrad_nn::layers::{BlockStack, ParamSink};
use loopgrad_tensor::Float;

#[derive(Clone, Debug)]
pub struct Hrm {
    pub config: HrmConfig,
    pub io: InputOutput,
    /// `inner.H_level`.
    pub h_net: BlockStack,
    /// `inner.L_level`.
    pub l_net: BlockStack,
    /// `inner.H_init`, `inner.L_init`: the carry is [z_H, z_L].
    pub inits: Vec<Param>,
}

impl Hrm {
    pub fn new(sink: &mut (impl ParamSink + ?Sized), config: &HrmConfig) -> Self {
        let c = config;
        let io = InputOutput::new(sink, c.io(), c.rope());
        let spec = c.block_spec();
        let h_net = BlockStack::new(sink, "inner.H_level", c.h_layers, &spec);
        let l_net = BlockStack::new(sink, "inner.L_level", c.l_layers, &spec);
        let inits =
            vec![carry_init(sink, "inner.H_init", c.hidden_size), carry_init(sink, "inner.L_init", c.hidden_size)];
        Hrm { config: config.clone(), io, h_net, l_net, inits }
    }

    /// One high-level cycle: L_cycles fast updates, then one slow update.
    pub fn cycle<E: Float>(&self, tape: &mut Tape<E>, calls: &HrmCalls<'_>, state: &mut [Var]) {
        for call in 0..=self.config.l_cycles {
            calls.call(tape, state, call);
        }
    }
}

/// The net calls of one high-level cycle, by index: calls 0..L_cycles update z_L, the last updates z_H.
/// The carry is [z_H, z_L].
pub struct HrmCalls<'m> {
    pub hrm: &'m Hrm,
    pub x: Var,
    pub rope: Option<(Var, Var)>,
}

impl<E: Float> Recurrence<E> for HrmCalls<'_> {
    fn calls_per_recursion(&self) -> usize {
        self.hrm.config.l_cycles + 1
    }

    fn call(&self, tape: &mut Tape<E>, s: &mut [Var], call: usize) {
        let (h, x, rope) = (&self.hrm, self.x, self.rope);
        if call < h.config.l_cycles {
            s[1] = net_call(tape, &h.l_net, &[s[1]], &[s[0], x], rope); // z_L = L(z_L, z_H + x)
        } else {
            s[0] = net_call(tape, &h.h_net, &[s[0]], &[s[1]], rope); // z_H = H(z_H, z_L)
        }
    }
}

impl Reasoner for Hrm {
    fn io(&self) -> &InputOutput {
        &self.io
    }
    fn carry_inits(&self) -> &[Param] {
        &self.inits
    }
    fn recursions(&self) -> usize {
        self.config.h_cycles
    }
    fn window(&self) -> GradWindow {
        self.config.grad_window
    }
    fn calls<'a, E: Float>(&'a self, x: Var, rope: Option<(Var, Var)>) -> impl Recurrence<E> + 'a {
        HrmCalls { hrm: self, x, rope }
    }
}

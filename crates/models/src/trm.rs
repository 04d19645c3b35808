//! The Tiny Recursive Model, as the paper's pseudocode reads:
//!
//! ```text
//! def latent_recursion(x, y, z, n=6):
//!     for i in range(n):          # latent reasoning
//!         z = net(x, y, z)
//!     y = net(y, z)               # refine the output answer
//!     return y, z
//!
//! def deep_recursion(x, y, z, n=6, T=3):
//!     with torch.no_grad():       # T-1 recursions without gradients
//!         for j in range(T-1):
//!             y, z = latent_recursion(x, y, z, n)
//!     y, z = latent_recursion(x, y, z, n)   # the last one recorded
//!     return (y.detach(), z.detach()), output_head(y), Q_head(y)
//! ```
//! with net(h, inj) = blocks(h + inj) and one shared 2-block net. Here `latent_recursion` is the n + 1 net
//! calls of [`TrmCalls`] (its `Recurrence::call`, one call at a time), and `deep_recursion` is
//! [`Reasoner::deep_recursion`], which every supervision step runs: T recursions through the tape's
//! [`run_recursions`](loopgrad_autograd::window::run_recursions), whose [`GradWindow`] is the "without gradients" part
//! (`last_recursion` reproduces the paper; `one_step`, `last_calls:k`, `full` and `full_recompute` are the
//! study's alternatives). [`TrmVariant`] selects the paper's ablations.

use crate::config::{TrmConfig, TrmVariant};
use crate::io::{carry_init, InputOutput};
use crate::model::{net_call, Reasoner};
use loopgrad_autograd::window::{GradWindow, Recurrence};
use loopgrad_autograd::{Param, Tape, Var};
use loopgrad_nn::layers::{BlockStack, ParamSink};
use loopgrad_tensor::Float;

/// TRM: I/O, one net (two for [`TrmVariant::SeparateNets`]) and the carry init vectors.
#[derive(Clone, Debug)]
pub struct Trm {
    pub config: TrmConfig,
    pub io: InputOutput,
    /// `inner.L_level`: the net (f_L when the nets are separate).
    pub net: BlockStack,
    /// `inner.H_level`: f_H, only for [`TrmVariant::SeparateNets`].
    pub net_h: Option<BlockStack>,
    /// Carry init vectors in carry order (y first when there is a y).
    pub inits: Vec<Param>,
}

impl Trm {
    pub fn new(sink: &mut (impl ParamSink + ?Sized), config: &TrmConfig) -> Self {
        let c = config;
        let io = InputOutput::new(sink, c.io(), c.rope());
        let spec = c.block_spec();
        let net_h = (c.variant == TrmVariant::SeparateNets)
            .then(|| BlockStack::new(sink, "inner.H_level", c.num_layers, &spec));
        let net = BlockStack::new(sink, "inner.L_level", c.num_layers, &spec);
        let d = c.hidden_size;
        let inits = match c.variant {
            TrmVariant::YZ | TrmVariant::SeparateNets => {
                vec![carry_init(sink, "inner.H_init", d), carry_init(sink, "inner.L_init", d)]
            }
            TrmVariant::SingleZ => vec![carry_init(sink, "inner.L_init", d)],
            TrmVariant::MultiScaleZ => std::iter::once(carry_init(sink, "inner.H_init", d))
                .chain((1..=c.l_cycles).map(|i| carry_init(sink, &format!("inner.L{i}_init"), d)))
                .collect(),
        };
        Trm { config: config.clone(), io, net, net_h, inits }
    }
}

/// The net calls of one latent recursion, by index, with what they read besides the carry (x, the rotary
/// tables). Calls 0..n update the latent, call n updates the answer; the carry is in carry order.
pub struct TrmCalls<'m> {
    pub trm: &'m Trm,
    pub x: Var,
    pub rope: Option<(Var, Var)>,
}

impl<E: Float> Recurrence<E> for TrmCalls<'_> {
    fn calls_per_recursion(&self) -> usize {
        self.trm.config.l_cycles + 1
    }

    fn call(&self, tape: &mut Tape<E>, s: &mut [Var], call: usize) {
        let (net, x, rope) = (&self.trm.net, self.x, self.rope);
        let answer = call == self.trm.config.l_cycles;
        match self.trm.config.variant {
            TrmVariant::YZ if !answer => s[1] = net_call(tape, net, &[s[1]], &[s[0], x], rope), // z = net(z, y + x)
            TrmVariant::YZ => s[0] = net_call(tape, net, &[s[0]], &[s[1]], rope),               // y = net(y, z)
            TrmVariant::SeparateNets if !answer => s[1] = net_call(tape, net, &[s[1]], &[s[0], x], rope), // f_L
            TrmVariant::SeparateNets => {
                let f_h = self.trm.net_h.as_ref().expect("separate nets have an H net");
                s[0] = net_call(tape, f_h, &[s[0]], &[s[1]], rope) // y = f_H(y, z)
            }
            TrmVariant::SingleZ if !answer => s[0] = net_call(tape, net, &[s[0]], &[x], rope), // z = net(z, x)
            TrmVariant::SingleZ => s[0] = net_call(tape, net, &[s[0]], &[], rope),             // z = net(z)
            TrmVariant::MultiScaleZ if !answer => {
                s[1 + call] = net_call(tape, net, &s[1..], &[s[0], x], rope) // z_i = net(z_1 + .. + z_n, y + x)
            }
            TrmVariant::MultiScaleZ => s[0] = net_call(tape, net, &[s[0]], &s[1..], rope), // y = net(y, z_1 + .. + z_n)
        }
    }
}

impl Reasoner for Trm {
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
        TrmCalls { trm: self, x, rope }
    }
}

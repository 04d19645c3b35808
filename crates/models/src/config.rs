//! One serde config struct per model. Every recursion hyper-parameter is a field, so that a study changes a
//! number, not the code. Field names follow the reference configs (`hidden_size`, `H_cycles` as `h_cycles`, ...).

use loopgrad_autograd::window::GradWindow;
use loopgrad_nn::layers::{swiglu_width, BlockSpec};
use loopgrad_tensor::Precision;
use serde::{Deserialize, Serialize};

/// How TRM's latent state is organised (the variants of the paper's Table 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrmVariant {
    /// The paper's model: an answer y and a latent z; z = net(z, y + x) n times, then y = net(y, z).
    #[serde(rename = "yz")]
    YZ,
    /// One latent z: z = net(z, x) n times, then z = net(z) (no injection); outputs read z.
    SingleZ,
    /// y and n latents z_1..z_n: z_i = net(sum_j z_j, y + x) for i = 1..n, then y = net(y, sum_j z_j).
    MultiScaleZ,
    /// Two networks of the same size: z = f_L(z, y + x) n times, then y = f_H(y, z) (HRM's split, TRM's loop).
    SeparateNets,
}

/// The Tiny Recursive Model (arXiv:2510.04871).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrmConfig {
    /// L, the number of tokens of an example (81 for 9x9 Sudoku, 900 for 30x30 mazes and ARC).
    pub seq_len: usize,
    /// Token vocabulary (0 = PAD, which is also the ignored label).
    pub vocab_size: usize,
    /// Rows of the puzzle-embedding table (1 when every example shares one puzzle identity, as in Sudoku).
    pub num_puzzle_identifiers: usize,
    /// P, the prefix positions before the tokens: slot 0 holds the puzzle embedding, 1..P are zeros (16 in the
    /// paper). The network sees L' = P + L positions.
    pub puzzle_emb_len: usize,
    /// D.
    pub hidden_size: usize,
    /// Attention heads (head dim D / heads); unused when `mlp_t`.
    pub num_heads: usize,
    /// SwiGLU expansion (4).
    pub expansion: f64,
    /// Blocks in the net (the paper's "2 layers").
    pub num_layers: usize,
    /// T, recursions per supervision step (the reference `H_cycles`).
    pub h_cycles: usize,
    /// n, latent updates per recursion (the reference `L_cycles`).
    pub l_cycles: usize,
    /// N_sup, the most supervision steps per example (`halt_max_steps`).
    pub halt_max_steps: usize,
    /// Probability that a slot draws a random minimum of 2..=N_sup steps before it may halt.
    pub halt_exploration_prob: f64,
    /// Token-mixing MLP instead of attention (TRM's Sudoku model).
    pub mlp_t: bool,
    pub variant: TrmVariant,
    /// Which net calls of a supervision step the gradient flows through.
    pub grad_window: GradWindow,
    /// Learn a continue Q-value with HRM's bootstrapped target and halt when q_halt > q_continue; otherwise
    /// (the TRM default, `no_ACT_continue`) halt when q_halt > 0 and train q_halt only.
    pub q_continue: bool,
    pub rms_norm_eps: f64,
    pub rope_theta: f64,
    /// The operand precision of the products (`forward_dtype` of the reference's config): "f32" (the default),
    /// or "bf16": every GEMM and attention product, forward and backward, takes bf16 operands and sums in f32,
    /// as the reference trains under autocast; weights, optimizer state, norms, softmax and the loss stay f32.
    /// Optional in a config file (f32 when absent), so that configs written before it still read.
    #[serde(default)]
    pub forward_dtype: ForwardDtype,
}

/// The Hierarchical Reasoning Model (arXiv:2506.21734).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HrmConfig {
    pub seq_len: usize,
    pub vocab_size: usize,
    pub num_puzzle_identifiers: usize,
    /// Prefix positions (1 in the reference: ceil(puzzle_emb_ndim / D)).
    pub puzzle_emb_len: usize,
    pub hidden_size: usize,
    pub num_heads: usize,
    pub expansion: f64,
    /// Blocks in the slow (H) net.
    pub h_layers: usize,
    /// Blocks in the fast (L) net.
    pub l_layers: usize,
    /// High-level updates per supervision step.
    pub h_cycles: usize,
    /// Low-level updates per high-level update.
    pub l_cycles: usize,
    pub halt_max_steps: usize,
    pub halt_exploration_prob: f64,
    /// HRM's 1-step gradient is `one_step` (the last L call and the last H call).
    pub grad_window: GradWindow,
    /// HRM learns q_continue (true in the reference).
    pub q_continue: bool,
    pub rms_norm_eps: f64,
    pub rope_theta: f64,
    /// The operand precision of the products (`forward_dtype` of the reference's config): "f32" (the default),
    /// or "bf16": every GEMM and attention product, forward and backward, takes bf16 operands and sums in f32,
    /// as the reference trains under autocast; weights, optimizer state, norms, softmax and the loss stay f32.
    /// Optional in a config file (f32 when absent), so that configs written before it still read.
    #[serde(default)]
    pub forward_dtype: ForwardDtype,
}

/// The non-recursive direct-prediction transformer: K distinct blocks applied once per supervision step,
/// z = blocks(z + x), with the same I/O and deep supervision as TRM.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselineConfig {
    pub seq_len: usize,
    pub vocab_size: usize,
    pub num_puzzle_identifiers: usize,
    pub puzzle_emb_len: usize,
    pub hidden_size: usize,
    pub num_heads: usize,
    pub expansion: f64,
    /// K, distinct blocks.
    pub num_layers: usize,
    pub mlp_t: bool,
    pub halt_max_steps: usize,
    pub halt_exploration_prob: f64,
    pub q_continue: bool,
    pub rms_norm_eps: f64,
    pub rope_theta: f64,
    /// The operand precision of the products (`forward_dtype` of the reference's config): "f32" (the default),
    /// or "bf16": every GEMM and attention product, forward and backward, takes bf16 operands and sums in f32,
    /// as the reference trains under autocast; weights, optimizer state, norms, softmax and the loss stay f32.
    /// Optional in a config file (f32 when absent), so that configs written before it still read.
    #[serde(default)]
    pub forward_dtype: ForwardDtype,
}

/// The precision of a model's products (see `TrmConfig::forward_dtype`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ForwardDtype {
    #[default]
    #[serde(rename = "f32", alias = "float32")]
    F32,
    #[serde(rename = "bf16", alias = "bfloat16")]
    Bf16,
}

impl ForwardDtype {
    pub fn is_f32(&self) -> bool {
        *self == ForwardDtype::F32
    }

    /// The tape's precision for this dtype.
    pub fn precision(self) -> Precision {
        match self {
            ForwardDtype::F32 => Precision::F32,
            ForwardDtype::Bf16 => Precision::Bf16,
        }
    }
}

/// Any model, tagged by `arch` in TOML/JSON (`arch = "trm"`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "arch", rename_all = "snake_case")]
pub enum ModelConfig {
    Trm(TrmConfig),
    Hrm(HrmConfig),
    Baseline(BaselineConfig),
}

/// The I/O sizes every model shares.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct IoSpec {
    pub seq_len: usize,
    pub vocab_size: usize,
    pub num_puzzle_identifiers: usize,
    pub puzzle_emb_len: usize,
    pub hidden_size: usize,
}

impl IoSpec {
    /// L' = P + L, the positions the nets see.
    pub fn positions(&self) -> usize {
        self.puzzle_emb_len + self.seq_len
    }
}

/// What every architecture's config reads alike from the fields they share by name: the I/O sizes, the shape of
/// the blocks and the rotary tables. Each config says itself whether its blocks mix tokens with an MLP
/// (`token_mlp`, below).
macro_rules! shared_shape {
    ($($config:ty),*) => {$(
        impl $config {
            pub fn io(&self) -> IoSpec {
                IoSpec {
                    seq_len: self.seq_len,
                    vocab_size: self.vocab_size,
                    num_puzzle_identifiers: self.num_puzzle_identifiers,
                    puzzle_emb_len: self.puzzle_emb_len,
                    hidden_size: self.hidden_size,
                }
            }

            /// Every block of the model's nets: the token MLP over the L' positions, or attention.
            pub fn block_spec(&self) -> BlockSpec {
                BlockSpec {
                    width: self.hidden_size,
                    heads: self.num_heads,
                    expansion: self.expansion,
                    token_mlp_positions: self.token_mlp().then_some(self.io().positions()),
                    eps: self.rms_norm_eps,
                }
            }

            /// (head dim, theta) of the rotary tables when the blocks use attention.
            pub fn rope(&self) -> Option<(usize, f64)> {
                (!self.token_mlp()).then_some((self.hidden_size / self.num_heads, self.rope_theta))
            }
        }
    )*};
}

shared_shape!(TrmConfig, HrmConfig, BaselineConfig);

impl TrmConfig {
    fn token_mlp(&self) -> bool {
        self.mlp_t
    }
}

impl HrmConfig {
    /// HRM's blocks always attend.
    fn token_mlp(&self) -> bool {
        false
    }
}

impl BaselineConfig {
    fn token_mlp(&self) -> bool {
        self.mlp_t
    }
}

impl ModelConfig {
    pub fn io(&self) -> IoSpec {
        dispatch!(self, c => c.io())
    }

    /// "trm", "hrm" or "baseline".
    pub fn arch(&self) -> &'static str {
        match self {
            ModelConfig::Trm(_) => "trm",
            ModelConfig::Hrm(_) => "hrm",
            ModelConfig::Baseline(_) => "baseline",
        }
    }

    /// The precision of the model's products (`forward_dtype`).
    pub fn forward_dtype(&self) -> ForwardDtype {
        dispatch!(self, c => c.forward_dtype)
    }

    /// N_sup.
    pub fn halt_max_steps(&self) -> usize {
        dispatch!(self, c => c.halt_max_steps)
    }

    pub fn halt_exploration_prob(&self) -> f64 {
        dispatch!(self, c => c.halt_exploration_prob)
    }

    /// Whether the model learns q_continue (halt when q_halt > q_continue, add the continue loss) or not (halt
    /// when q_halt > 0).
    pub fn q_continue(&self) -> bool {
        dispatch!(self, c => c.q_continue)
    }

    /// Blocks applied to the hidden state in one supervision step: T(n+1)L for TRM (42 at T=3, n=6, L=2),
    /// H_cycles (L_cycles L_layers + H_layers) for HRM, K for the baseline.
    pub fn effective_depth(&self) -> usize {
        match self {
            ModelConfig::Trm(c) => c.h_cycles * (c.l_cycles + 1) * c.num_layers,
            ModelConfig::Hrm(c) => c.h_cycles * (c.l_cycles * c.l_layers + c.h_layers),
            ModelConfig::Baseline(c) => c.num_layers,
        }
    }

    /// Checks the sizes and ranges; the message names the field (`model.expansion`, ...). Beyond positivity:
    /// upper bounds on every size (so that element counts cannot overflow and a typo cannot ask for terabytes),
    /// at least one head (the RoPE table divides by it even for the token MLP) and one that splits the width
    /// where attention needs it, an expansion that leaves every SwiGLU at least one unit wide, and probabilities,
    /// epsilons and RoPE bases in range.
    pub fn validate(&self) -> Result<(), String> {
        let io = self.io();
        let positive = [
            ("seq_len", io.seq_len),
            ("vocab_size", io.vocab_size),
            ("num_puzzle_identifiers", io.num_puzzle_identifiers),
            ("puzzle_emb_len", io.puzzle_emb_len),
            ("hidden_size", io.hidden_size),
            ("halt_max_steps", self.halt_max_steps()),
        ];
        for (name, v) in positive {
            if v == 0 {
                return Err(format!("model.{name} must be positive"));
            }
        }
        let f = self.fields();
        for (name, v) in [("seq_len", io.seq_len), ("vocab_size", io.vocab_size), ("puzzle_emb_len", io.puzzle_emb_len)]
            .into_iter()
            .chain([("hidden_size", io.hidden_size), ("num_heads", f.heads)])
        {
            if v > MAX_MODEL_DIM {
                return Err(format!("model.{name} {v} is more than {MAX_MODEL_DIM}"));
            }
        }
        if io.num_puzzle_identifiers > MAX_PUZZLE_IDENTIFIERS {
            let n = io.num_puzzle_identifiers;
            return Err(format!("model.num_puzzle_identifiers {n} is more than {MAX_PUZZLE_IDENTIFIERS}"));
        }
        for (name, v) in &f.depths {
            if *v == 0 {
                return Err(format!("model.{name} must be positive"));
            }
            if *v > MAX_DEPTH {
                return Err(format!("model.{name} {v} is more than {MAX_DEPTH}"));
            }
        }
        if self.halt_max_steps() > MAX_SUPERVISION_STEPS {
            return Err(format!("model.halt_max_steps {} is more than {MAX_SUPERVISION_STEPS}", self.halt_max_steps()));
        }
        if f.heads == 0 {
            return Err("model.num_heads must be at least 1".to_string());
        }
        let (heads, d) = (f.heads, io.hidden_size);
        if f.attention && (!d.is_multiple_of(heads) || !(d / heads).is_multiple_of(2)) {
            return Err(format!("model.num_heads {heads} must divide hidden_size {d} into an even head dim (RoPE)"));
        }
        if !(f.expansion > 0.0 && f.expansion <= MAX_EXPANSION) {
            return Err(format!("model.expansion must be in (0, {MAX_EXPANSION}], got {}", f.expansion));
        }
        let widths = [("hidden_size", d)].into_iter().chain(f.mlp_t.then_some(("positions", io.positions())));
        for (of, width) in widths {
            if swiglu_width(width, f.expansion) == 0 {
                return Err(format!("model.expansion {} leaves no SwiGLU unit for a {of} of {width}", f.expansion));
            }
        }
        let p = self.halt_exploration_prob();
        if !(0.0..=1.0).contains(&p) {
            return Err(format!("model.halt_exploration_prob must be in [0, 1], got {p}"));
        }
        if !(f.rms_norm_eps >= 0.0 && f.rms_norm_eps.is_finite()) {
            return Err(format!("model.rms_norm_eps must be a non-negative number, got {}", f.rms_norm_eps));
        }
        if !(f.rope_theta > 0.0 && f.rope_theta.is_finite()) {
            return Err(format!("model.rope_theta must be positive, got {}", f.rope_theta));
        }
        let elements = self.manifest().count(|_| true) as u64;
        if elements > MAX_MODEL_ELEMENTS {
            return Err(format!(
                "the model holds {elements} weights (model.hidden_size {d}, ...), more than {MAX_MODEL_ELEMENTS}"
            ));
        }
        Ok(())
    }

    /// The fields [`ModelConfig::validate`] checks beyond [`ModelConfig::io`], whatever the architecture.
    fn fields(&self) -> Fields {
        let depths = match self {
            ModelConfig::Trm(c) => {
                vec![("num_layers", c.num_layers), ("h_cycles", c.h_cycles), ("l_cycles", c.l_cycles)]
            }
            ModelConfig::Hrm(c) => vec![
                ("h_layers", c.h_layers),
                ("l_layers", c.l_layers),
                ("h_cycles", c.h_cycles),
                ("l_cycles", c.l_cycles),
            ],
            ModelConfig::Baseline(c) => vec![("num_layers", c.num_layers)],
        };
        dispatch!(self, c => Fields {
            heads: c.num_heads,
            attention: !c.token_mlp(),
            mlp_t: c.token_mlp(),
            expansion: c.expansion,
            rms_norm_eps: c.rms_norm_eps,
            rope_theta: c.rope_theta,
            depths,
        })
    }
}

/// What [`ModelConfig::fields`] reads out of any architecture's config.
struct Fields {
    heads: usize,
    /// Attention blocks (and RoPE) rather than the token-mixing MLP.
    attention: bool,
    mlp_t: bool,
    expansion: f64,
    rms_norm_eps: f64,
    rope_theta: f64,
    /// Layer and cycle counts by field name.
    depths: Vec<(&'static str, usize)>,
}

/// The largest sequence length, vocabulary, width, prefix and head count of a model (ARC needs 900 positions).
pub const MAX_MODEL_DIM: usize = 1 << 16;
/// The most puzzle identifiers (augmented ARC has about a million).
pub const MAX_PUZZLE_IDENTIFIERS: usize = 1 << 24;
/// The most layers and cycles of one kind.
pub const MAX_DEPTH: usize = 1024;
/// The largest SwiGLU expansion.
pub const MAX_EXPANSION: f64 = 64.0;
/// The most elements of all of a model's tensors together (8 GiB of f32; the paper models hold under 2^25).
pub const MAX_MODEL_ELEMENTS: u64 = 1 << 31;
/// The most supervision steps per example: `halt_max_steps`, and an evaluation's steps (papers use 16).
pub const MAX_SUPERVISION_STEPS: usize = 10_000;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::presets;

    #[test]
    fn configs_round_trip_through_toml_with_the_arch_tag() {
        for name in presets::names() {
            let c = presets::get(name).unwrap();
            let text = toml::to_string(&c).unwrap();
            assert!(text.contains(&format!("arch = \"{}\"", c.arch())), "{text}");
            let back: ModelConfig = toml::from_str(&text).unwrap();
            assert_eq!(back, c, "{name}");
        }
    }

    #[test]
    fn unknown_fields_are_rejected_by_name() {
        let mut text = toml::to_string(&presets::get("trm-tiny").unwrap()).unwrap();
        text.push_str("hidden = 3\n");
        let err = toml::from_str::<ModelConfig>(&text).unwrap_err().to_string();
        assert!(err.contains("hidden"), "{err}");
    }

    #[test]
    fn validation_names_the_field() {
        let ModelConfig::Trm(mut c) = presets::get("trm-att-sudoku").unwrap() else { unreachable!() };
        c.num_heads = 7;
        let err = ModelConfig::Trm(c.clone()).validate().unwrap_err();
        assert!(err.contains("num_heads 7"), "{err}");
        c.num_heads = 8;
        c.seq_len = 0;
        assert!(ModelConfig::Trm(c).validate().unwrap_err().contains("seq_len"));
    }

    #[test]
    fn effective_depth_matches_the_paper() {
        assert_eq!(presets::get("trm-mlp-sudoku").unwrap().effective_depth(), 42);
        assert_eq!(presets::get("hrm-sudoku").unwrap().effective_depth(), 2 * (2 * 4 + 4));
    }
}

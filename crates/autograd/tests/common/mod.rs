//! A tiny TRM/HRM-style model for the integration tests, built from the tape's ops only: post-norm blocks
//! without biases in the attention or the token-MLP ("mlp_t") variant, TRM's latent recursion and HRM's two
//! nets as [`Recurrence`]s, an embedding input and a linear head. Same structure as the real models
//! (DESIGN.md section 4), toy sizes.

#![allow(dead_code)]

use loopgrad_autograd::ops::rope::rope_tables;
use loopgrad_autograd::{Param, ParamStore, Recurrence, Tape, Var};
use loopgrad_tensor::{Float, Rng, Tensor};

pub const EPS: f64 = 1e-5;

#[derive(Clone, Copy, Debug)]
pub struct Dims {
    pub batch: usize,
    pub seq: usize,
    pub d: usize,
    pub heads: usize,
    /// Width of the channel SwiGLU.
    pub inter: usize,
    /// Width of the token-mixing SwiGLU (mlp_t).
    pub inter_seq: usize,
    pub vocab: usize,
}

pub const SMALL: Dims = Dims { batch: 2, seq: 5, d: 8, heads: 2, inter: 12, inter_seq: 7, vocab: 6 };

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    Attention,
    Mlp,
}

/// One post-norm block: a mixing sublayer (attention or token MLP), then the channel SwiGLU.
#[derive(Clone, Copy, Debug)]
pub struct Block {
    /// Attention: qkv [3D, D] and o [D, D]. Token MLP: gate_up [2 I_L, L] and down [L, I_L].
    mix_in: Param,
    mix_out: Param,
    gate_up: Param,
    down: Param,
}

/// A stack of blocks applied as net(h, inj) = blocks(h + inj).
#[derive(Clone, Debug)]
pub struct Net {
    pub blocks: Vec<Block>,
    pub variant: Variant,
    pub heads: usize,
}

fn weight<E: Float>(params: &mut ParamStore<E>, name: &str, out: usize, inp: usize, rng: &mut Rng) -> Param {
    let mut w = Tensor::uninit([out, inp]);
    rng.fill_trunc_normal(w.data_mut(), 1.0 / (inp as f64).sqrt());
    params.add(name, w)
}

impl Net {
    pub fn new<E: Float>(
        params: &mut ParamStore<E>,
        prefix: &str,
        dims: Dims,
        variant: Variant,
        layers: usize,
        rng: &mut Rng,
    ) -> Net {
        let Dims { d, seq, inter, inter_seq, .. } = dims;
        let blocks = (0..layers)
            .map(|i| {
                let p = format!("{prefix}.layers.{i}");
                let (mix_in, mix_out) = match variant {
                    Variant::Attention => (
                        weight(params, &format!("{p}.self_attn.qkv_proj.weight"), 3 * d, d, rng),
                        weight(params, &format!("{p}.self_attn.o_proj.weight"), d, d, rng),
                    ),
                    Variant::Mlp => (
                        weight(params, &format!("{p}.mlp_t.gate_up_proj.weight"), 2 * inter_seq, seq, rng),
                        weight(params, &format!("{p}.mlp_t.down_proj.weight"), seq, inter_seq, rng),
                    ),
                };
                Block {
                    mix_in,
                    mix_out,
                    gate_up: weight(params, &format!("{p}.mlp.gate_up_proj.weight"), 2 * inter, d, rng),
                    down: weight(params, &format!("{p}.mlp.down_proj.weight"), d, inter, rng),
                }
            })
            .collect();
        Net { blocks, variant, heads: dims.heads }
    }

    /// blocks(h + inj); `rope` = the (cos, sin) tables for the attention variant.
    pub fn apply<E: Float>(&self, t: &mut Tape<E>, h: Var, inj: Var, rope: Option<(Var, Var)>) -> Var {
        let mut h = t.add(h, inj);
        for b in &self.blocks {
            h = match self.variant {
                Variant::Attention => {
                    let (wi, wo) = (t.param(b.mix_in), t.param(b.mix_out));
                    let qkv = t.linear(h, wi, None);
                    let a = t.attention(qkv, self.heads, rope);
                    let o = t.linear(a, wo, None);
                    let r = t.add(h, o);
                    t.rms_norm(r, EPS)
                }
                Variant::Mlp => {
                    // Mix positions: [B, L, D] -> [B, D, L], SwiGLU over L, normalised over L, and back.
                    let ht = t.transpose(h);
                    let m = swiglu_mlp(t, ht, b.mix_in, b.mix_out);
                    let r = t.add(ht, m);
                    let n = t.rms_norm(r, EPS);
                    t.transpose(n)
                }
            };
            let m = swiglu_mlp(t, h, b.gate_up, b.down);
            let r = t.add(h, m);
            h = t.rms_norm(r, EPS);
        }
        h
    }
}

fn swiglu_mlp<E: Float>(t: &mut Tape<E>, h: Var, gate_up: Param, down: Param) -> Var {
    let (wg, wd) = (t.param(gate_up), t.param(down));
    let gu = t.linear(h, wg, None);
    let s = t.swiglu(gu);
    t.linear(s, wd, None)
}

/// A whole toy model: token embeddings, one or two nets, a head.
pub struct Model<E: Float> {
    pub params: ParamStore<E>,
    pub dims: Dims,
    pub embed: Param,
    pub head: Param,
    pub net: Net,
    /// HRM's second (high-level) net; `None` for TRM.
    pub h_net: Option<Net>,
}

impl<E: Float> Model<E> {
    /// A TRM-style model: one shared net of `layers` blocks.
    pub fn trm(dims: Dims, variant: Variant, layers: usize, seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let mut params = ParamStore::new();
        let embed = embedding_table(&mut params, dims, &mut rng);
        let net = Net::new(&mut params, "inner.L_level", dims, variant, layers, &mut rng);
        let head = weight(&mut params, "inner.lm_head.weight", dims.vocab, dims.d, &mut rng);
        Model { params, dims, embed, head, net, h_net: None }
    }

    /// An HRM-style model: separate L and H nets of `layers` attention blocks each.
    pub fn hrm(dims: Dims, layers: usize, seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let mut params = ParamStore::new();
        let embed = embedding_table(&mut params, dims, &mut rng);
        let net = Net::new(&mut params, "inner.L_level", dims, Variant::Attention, layers, &mut rng);
        let h_net = Net::new(&mut params, "inner.H_level", dims, Variant::Attention, layers, &mut rng);
        let head = weight(&mut params, "inner.lm_head.weight", dims.vocab, dims.d, &mut rng);
        Model { params, dims, embed, head, net, h_net: Some(h_net) }
    }

    /// Token ids and a carry init, from a seed.
    pub fn inputs(&self, seed: u64) -> (Vec<usize>, Tensor<E>, Tensor<E>) {
        let mut rng = Rng::new(seed);
        let Dims { batch, seq, d, vocab, .. } = self.dims;
        let ids = (0..batch * seq).map(|_| rng.below(vocab)).collect();
        let (mut y, mut z) = (Tensor::uninit([batch, seq, d]), Tensor::uninit([batch, seq, d]));
        rng.fill_trunc_normal(y.data_mut(), 1.0);
        rng.fill_trunc_normal(z.data_mut(), 1.0);
        (ids, y, z)
    }
}

fn embedding_table<E: Float>(params: &mut ParamStore<E>, dims: Dims, rng: &mut Rng) -> Param {
    let mut table = Tensor::uninit([dims.vocab, dims.d]);
    rng.fill_trunc_normal(table.data_mut(), 1.0 / (dims.d as f64).sqrt());
    params.add("inner.embed_tokens.embedding_weight", table)
}

/// x = sqrt(D) * embedding(ids) (+ x_in, a dense input whose gradient the checks also test).
pub fn embed<E: Float>(t: &mut Tape<E>, m: &Model<E>, ids: &[usize], x_in: Option<Var>) -> Var {
    let table = t.param(m.embed);
    let e = t.embedding(table, ids, &[m.dims.batch, m.dims.seq]);
    let x = t.scale(e, (m.dims.d as f64).sqrt());
    match x_in {
        Some(v) => t.add(x, v),
        None => x,
    }
}

/// RoPE tables as tape constants, for the attention variant.
pub fn rope_consts<E: Float>(t: &mut Tape<E>, dims: Dims, variant: Variant) -> Option<(Var, Var)> {
    (variant == Variant::Attention).then(|| {
        let (c, s) = rope_tables::<E>(dims.seq, dims.d / dims.heads, 10000.0);
        (t.constant(c), t.constant(s))
    })
}

/// TRM's latent recursion on the carry [y, z]: n calls z = net(z, y + x), then y = net(y, z).
pub struct TrmRecursion<'a> {
    pub net: &'a Net,
    pub n: usize,
    pub x: Var,
    pub rope: Option<(Var, Var)>,
}

impl<E: Float> Recurrence<E> for TrmRecursion<'_> {
    fn calls_per_recursion(&self) -> usize {
        self.n + 1
    }
    fn call(&self, t: &mut Tape<E>, state: &mut [Var], call: usize) {
        let (y, z) = (state[0], state[1]);
        if call < self.n {
            let inj = t.add(y, self.x);
            state[1] = self.net.apply(t, z, inj, self.rope);
        } else {
            state[0] = self.net.apply(t, y, z, self.rope);
        }
    }
}

/// HRM's cycle on the carry [z_H, z_L]: `l_cycles` calls z_L = L(z_L, z_H + x), then z_H = H(z_H, z_L).
pub struct HrmRecursion<'a> {
    pub l_net: &'a Net,
    pub h_net: &'a Net,
    pub l_cycles: usize,
    pub x: Var,
    pub rope: Option<(Var, Var)>,
}

impl<E: Float> Recurrence<E> for HrmRecursion<'_> {
    fn calls_per_recursion(&self) -> usize {
        self.l_cycles + 1
    }
    fn call(&self, t: &mut Tape<E>, state: &mut [Var], call: usize) {
        let (zh, zl) = (state[0], state[1]);
        if call < self.l_cycles {
            let inj = t.add(zh, self.x);
            state[1] = self.l_net.apply(t, zl, inj, self.rope);
        } else {
            state[0] = self.h_net.apply(t, zh, zl, self.rope);
        }
    }
}

/// logits = y W_head^T, [B, L, V].
pub fn head<E: Float>(t: &mut Tape<E>, m: &Model<E>, y: Var) -> Var {
    let w = t.param(m.head);
    t.linear(y, w, None)
}

/// Gradients by name.
pub type NamedGrads<E> = Vec<(String, Vec<E>)>;

/// Every parameter gradient of the store, in id order.
pub fn param_grads<E: Float>(params: &ParamStore<E>) -> NamedGrads<E> {
    params.ids().map(|p| (params.name(p).to_string(), params.grad(p).to_vec())).collect()
}

/// The largest |a - b| / max(1, |b|) over two gradient lists with the same names.
pub fn max_rel_diff(a: &[(String, Vec<f64>)], b: &[(String, Vec<f64>)]) -> f64 {
    let mut worst: f64 = 0.0;
    for ((na, ga), (nb, gb)) in a.iter().zip(b) {
        assert_eq!(na, nb);
        for (x, y) in ga.iter().zip(gb) {
            worst = worst.max((x - y).abs() / y.abs().max(1.0));
        }
    }
    worst
}

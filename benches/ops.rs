//! The fused ops of a TRM block at TRM shapes, forward alone and forward + backward, on 1 and 2 threads (one
//! thread timed in thread CPU time, two in wall time: see `support/cpu_time.rs`):
//!
//!     cargo bench --bench ops
//!     cargo bench --bench ops -- swiglu      # one op
//!
//! Shapes: "main" is the main job (TRM-MLP D 64, batch 64, L' = 36 + 4 = 40: the token MLP sees 64 x 64 rows of
//! 40 positions, the channel MLP 64 x 40 rows of 64 channels, SwiGLU width 256); "paper" is the paper-size TRM
//! (D 512, batch 8, L' = 97, 8 heads of 64, SwiGLU width 1536). "fwd" runs the op on a constant (nothing
//! recorded); "fwd+bwd" records it on a leaf and backpropagates a fixed output gradient through it.

#[path = "support/cpu_time.rs"]
mod cpu_time;

use criterion::measurement::Measurement;
use criterion::{BenchmarkId, Criterion, Throughput};
use loopgrad_autograd::{ParamStore, Tape, Var};
use loopgrad_nn::layers::rope_tables;
use loopgrad_tensor::{set_threads, Rng, Tensor};
use std::time::Duration;

/// An op applied to its input vars, with the rotary tables when it needs them.
type Apply = fn(&mut Tape<f32>, &[Var], Option<(Var, Var)>) -> Var;

/// One benchmarked op: its input shapes and how to apply it to input vars (rope tables are constants).
struct OpCase {
    name: &'static str,
    inputs: Vec<Vec<usize>>,
    /// Elements the op reads and writes once, forward (criterion's throughput, in elements).
    elems: usize,
    apply: Apply,
    /// (L, head dim) of the rotary tables the op needs.
    rope: Option<(usize, usize)>,
}

/// A case whose op needs no rotary tables.
fn case(name: &'static str, inputs: &[&[usize]], elems: usize, apply: Apply) -> OpCase {
    OpCase { name, inputs: inputs.iter().map(|s| s.to_vec()).collect(), elems, apply, rope: None }
}

impl OpCase {
    /// The case with rotary tables of `l` positions and head dim `head_dim`.
    fn with_rope(self, l: usize, head_dim: usize) -> OpCase {
        OpCase { rope: Some((l, head_dim)), ..self }
    }
}

fn cases() -> Vec<OpCase> {
    let swiglu: Apply = |t, v, _| t.swiglu(v[0]);
    let linear_swiglu: Apply = |t, v, _| t.linear_swiglu(v[0], v[1]);
    let add_rms: Apply = |t, v, _| t.add_rms_norm(v[0], v[1], 1e-5);
    let transpose: Apply = |t, v, _| t.transpose(v[0]);
    let att_main: Apply = |t, v, rope| t.attention(v[0], 4, rope);
    let att_paper: Apply = |t, v, rope| t.attention(v[0], 8, rope);
    vec![
        case("swiglu main mlp_t [4096, 512]", &[&[4096, 512]], 4096 * 768, swiglu),
        case("swiglu main mlp [2560, 512]", &[&[2560, 512]], 2560 * 768, swiglu),
        case("swiglu paper [776, 3072]", &[&[776, 3072]], 776 * 4608, swiglu),
        // The gate/up projection and its SwiGLU: untaped ("fwd") one fused GEMM, recorded the two ops. The weight
        // is a plain input here, so it is packed on every call (a parameter's packing is kept across calls).
        case(
            "linear_swiglu main mlp x[2560, 64] W[512, 64]",
            &[&[2560, 64], &[512, 64]],
            2560 * (64 + 256),
            linear_swiglu,
        ),
        case(
            "linear_swiglu paper x[776, 512] W[3072, 512]",
            &[&[776, 512], &[3072, 512]],
            776 * (512 + 1536),
            linear_swiglu,
        ),
        case("add_rms_norm main [64, 40, 64]", &[&[64, 40, 64], &[64, 40, 64]], 3 * 64 * 40 * 64, add_rms),
        case("add_rms_norm main mlp_t [64, 64, 40]", &[&[64, 64, 40], &[64, 64, 40]], 3 * 64 * 40 * 64, add_rms),
        case("add_rms_norm paper [8, 97, 512]", &[&[8, 97, 512], &[8, 97, 512]], 3 * 8 * 97 * 512, add_rms),
        case("transpose main [64, 40, 64]", &[&[64, 40, 64]], 2 * 64 * 40 * 64, transpose),
        case("attention main att [64, 40, 3 x 64], 4 heads", &[&[64, 40, 192]], 64 * 40 * 256, att_main)
            .with_rope(40, 16),
        case("attention paper [8, 97, 3 x 512], 8 heads", &[&[8, 97, 1536]], 8 * 97 * 2048, att_paper)
            .with_rope(97, 64),
    ]
}

/// The inputs, the output gradient and the rotary tables of one case, drawn once.
struct Prepared {
    inputs: Vec<Tensor<f32>>,
    seed: Tensor<f32>,
    tables: Option<(Tensor<f32>, Tensor<f32>)>,
}

fn prepare(case: &OpCase) -> Prepared {
    let mut rng = Rng::new(3);
    let mut draw = |shape: &[usize]| {
        let mut t = Tensor::uninit(shape);
        rng.fill_normal(t.data_mut(), 1.0);
        t
    };
    let inputs: Vec<Tensor<f32>> = case.inputs.iter().map(|s| draw(s)).collect();
    let tables = case.rope.map(|(l, hd)| rope_tables::<f32>(l, hd, 10000.0));
    // The output's shape: run the op once.
    let mut tape = Tape::new(ParamStore::new());
    let vars: Vec<Var> = inputs.iter().map(|t| tape.constant(t.clone())).collect();
    let rope = tables.as_ref().map(|(c, s)| (tape.constant(c.clone()), tape.constant(s.clone())));
    let out = (case.apply)(&mut tape, &vars, rope);
    let seed = draw(tape.value(out).dims());
    Prepared { inputs, seed, tables }
}

/// A tape holding the case's inputs (leaves when `backward`, else constants) and rotary tables, so that each
/// timed run is the op alone: record from a mark, backpropagate, cut the tape back to the mark.
fn tape_for(p: &Prepared, backward: bool) -> (Tape<f32>, Vec<Var>, Option<(Var, Var)>) {
    let mut tape = Tape::new(ParamStore::new());
    let vars =
        p.inputs.iter().map(|t| if backward { tape.leaf(t.clone()) } else { tape.constant(t.clone()) }).collect();
    let rope = p.tables.as_ref().map(|(c, s)| (tape.constant(c.clone()), tape.constant(s.clone())));
    (tape, vars, rope)
}

fn benches<M: Measurement>(c: &mut Criterion<M>, threads: usize) {
    set_threads(threads);
    let mut group = c.benchmark_group(format!("ops_{threads}t"));
    for case in cases() {
        let p = prepare(&case);
        group.throughput(Throughput::Elements(case.elems as u64));
        for (label, backward) in [("fwd", false), ("fwd+bwd", true)] {
            let (mut tape, vars, rope) = tape_for(&p, backward);
            let mark = tape.mark();
            group.bench_function(BenchmarkId::new(label, case.name), |b| {
                b.iter(|| {
                    let out = (case.apply)(&mut tape, &vars, rope);
                    if backward {
                        tape.backward_with(&mut [(out, p.seed.clone())]);
                    }
                    tape.truncate(mark);
                })
            });
        }
    }
    group.finish();
}

fn main() {
    // One thread in thread CPU time (immune to being descheduled on a shared machine), two in wall time.
    let (mut cpu, mut wall) = cpu_time::criterions(Duration::from_millis(200), Duration::from_millis(600));
    benches(&mut cpu, 1);
    benches(&mut wall, 2);
    wall.final_summary();
}

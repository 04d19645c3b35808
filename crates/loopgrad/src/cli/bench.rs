//! `loopgrad bench`: whole TRM/HRM training steps (or 16-step evaluations) on random tokens, timed, with the
//! flags and the one-line JSON of the PyTorch reference `../shared/bench/torch_trm.py`, so the two can run side
//! by side:
//!
//! ```text
//! loopgrad bench --arch mlp --hidden 64 --seq 36 --prefix 4 --vocab 8 --T 2 --n 2 --batch 64 --steps 20 --threads 2
//! python3 torch_trm.py --arch mlp --hidden 64 --seq 36 --prefix 4 --vocab 8 --T 2 --n 2 --batch 64 --steps 20 --threads 2
//! ```
//!
//! `--dtype bf16` runs every product with bf16 operands and f32 sums (the model's `forward_dtype`), as the
//! reference's flag runs its forward under `torch.autocast(bfloat16)`.
//!
//! Keys beyond the reference's: `gflops` (the step's GEMM and attention FLOPs from `ModelConfig::step_cost`, over
//! the median step time); `peak_gflops` and `peak_fraction` (that over this machine's peak for the step's dtype,
//! on the same number of threads, measured in the same run by `loopgrad_tensor::peak`: for f32 the widest f32
//! FMA the CPU runs, 512-bit with AVX-512; for bf16 the AMX tile peak where the bf16 GEMM runs on AMX, else the
//! `vdpbf16ps` dot-product peak where the CPU has it),
//! `peak_kind` naming that loop, and every measured peak beside it (`peaks`); `cpu` (the model name in
//! `/proc/cpuinfo`) and `kernels` (which GEMM kernels this CPU runs, and whether it has AMX); `allocs_per_step`
//! (heap allocations per timed step, counted by the binary's global allocator: 0 means a steady-state step never
//! reaches the allocator).

use anyhow::{anyhow, bail, Result};
use loopgrad_models::config::ForwardDtype;
use loopgrad_tensor::counting_alloc::{allocations, CountingAlloc};
use loopgrad_tensor::peak::{self, PeakKind};
use loopgrad_tensor::Precision;
use loopgrad_train::bench::{BenchShape, BenchStep, MAX_VOCAB};
use loopgrad_train::config::{check_batch, MAX_THREADS};
use serde_json::json;
use std::time::Instant;

/// The most timed (or warm-up) steps one run takes: hours at the smallest shape, and a bound for the vector of
/// step times.
const MAX_STEPS: usize = 1_000_000;

#[derive(clap::Args)]
pub struct BenchArgs {
    /// `trm` or `hrm` (HRM: --T is H_cycles, --n L_cycles, --layers the depth of each level; attention only).
    #[arg(long, default_value = "trm")]
    pub model: String,
    /// TRM's mixer: `mlp` (token-mixing MLP, the default) or `att` (attention). HRM has attention only.
    #[arg(long)]
    pub arch: Option<String>,
    #[arg(long, default_value_t = 512)]
    pub hidden: usize,
    #[arg(long, default_value_t = 8)]
    pub heads: usize,
    #[arg(long, default_value_t = 4.0)]
    pub expansion: f64,
    #[arg(long, default_value_t = 2)]
    pub layers: usize,
    /// Recursions per supervision step.
    #[arg(long = "T", default_value_t = 3)]
    pub t: usize,
    /// Latent updates per recursion.
    #[arg(long, default_value_t = 6)]
    pub n: usize,
    #[arg(long, default_value_t = 81)]
    pub seq: usize,
    #[arg(long, default_value_t = 11)]
    pub vocab: usize,
    #[arg(long, default_value_t = 16)]
    pub prefix: usize,
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
    /// Timed steps (the median is reported).
    #[arg(long, default_value_t = 3)]
    pub steps: usize,
    /// Untimed steps first (buffers, caches, the pool warm up).
    #[arg(long, default_value_t = 1)]
    pub warmup: usize,
    /// Threads for kernels and GEMMs; 0 = the thread rule's default (`LOOPGRAD_THREADS`, else every core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Time a 16-step no-grad evaluation of the batch instead of a training step.
    #[arg(long)]
    pub eval: bool,
    /// The products' precision: `f32`, or `bf16` (bf16 operands, f32 sums), as `torch_trm.py --dtype`.
    #[arg(long, default_value = "f32")]
    pub dtype: String,
}

/// `allocs_per_step` counts the allocations of the whole process (loopgrad's and its dependencies').
#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

impl BenchArgs {
    fn shape(&self) -> Result<BenchShape> {
        let hrm = match self.model.as_str() {
            "trm" => false,
            "hrm" => true,
            other => bail!("--model must be trm or hrm, not {other:?}"),
        };
        let mlp = match (self.arch.as_deref(), hrm) {
            (Some("mlp"), true) => bail!("--model hrm has attention only; drop --arch mlp"),
            (None, true) | (Some("att"), _) => false,
            (None, false) | (Some("mlp"), false) => true,
            (Some(other), _) => bail!("--arch must be mlp or att, not {other:?}"),
        };
        // The model's own fields (sizes, heads, expansion, prefix) are checked by its config's `validate` below.
        for (name, v) in [("batch", self.batch), ("steps", self.steps)] {
            if v == 0 {
                bail!("--{name} must be at least 1");
            }
        }
        for (name, v) in [("steps", self.steps), ("warmup", self.warmup)] {
            if v > MAX_STEPS {
                bail!("--{name} {v} is more than {MAX_STEPS}");
            }
        }
        if self.vocab < 3 {
            bail!("--vocab must be at least 3 (PAD, blank and one symbol), not {}", self.vocab);
        }
        if self.vocab > MAX_VOCAB {
            bail!("--vocab {} is more than {MAX_VOCAB} (training examples hold tokens as bytes)", self.vocab);
        }
        self.forward_dtype()?;
        if self.threads > MAX_THREADS {
            bail!("--threads {} is more than {MAX_THREADS} (0 means every core)", self.threads);
        }
        let shape = self.bench_shape(hrm, mlp);
        // The model config's checks and limits, so that no flag reaches a library assertion or an allocation
        // failure.
        let config = shape.model_config();
        config.validate().map_err(|e| anyhow!("{}", in_flag_names(&e)))?;
        check_batch("--batch", self.batch, &config)?;
        Ok(shape)
    }

    fn forward_dtype(&self) -> Result<ForwardDtype> {
        match Precision::parse(&self.dtype) {
            Some(Precision::F32) => Ok(ForwardDtype::F32),
            Some(Precision::Bf16) => Ok(ForwardDtype::Bf16),
            None => bail!("--dtype must be f32 or bf16, not {:?}", self.dtype),
        }
    }

    fn bench_shape(&self, hrm: bool, mlp: bool) -> BenchShape {
        BenchShape {
            hrm,
            mlp,
            hidden: self.hidden,
            heads: self.heads,
            expansion: self.expansion,
            layers: self.layers,
            t: self.t,
            n: self.n,
            seq: self.seq,
            vocab: self.vocab,
            prefix: self.prefix,
            batch: self.batch,
            seed: self.seed,
            forward_dtype: self.forward_dtype().unwrap_or_default(),
        }
    }
}

pub fn run(args: BenchArgs) -> Result<()> {
    let shape = args.shape()?;
    let threads = crate::cli::use_threads(args.threads)?;
    loopgrad_tensor::flush_denormals();
    // The peaks first, while nothing else of ours runs: best of 5 rounds of about 20 ms each.
    let f32x8 = peak::fma_peak_gflops(threads, 5);
    let (f32_peak, f32_kind) = peak::f32_peak_gflops(threads, 5);
    let bf16_peak = peak::bf16_peak_gflops(threads, 5);
    let tile_peak = peak::tile_peak_gflops(threads, 5);
    // A bf16 step's yardstick is the instruction its GEMM runs on: AMX tiles, else vdpbf16ps.
    let (peak, peak_kind) = match (shape.forward_dtype, tile_peak, bf16_peak) {
        (ForwardDtype::Bf16, Some(p), _) => (p, PeakKind::Bf16Tile),
        (ForwardDtype::Bf16, None, Some(p)) => (p, PeakKind::Bf16Dot),
        _ => (f32_peak, f32_kind),
    };
    let kernels = loopgrad_tensor::cpu::kernels();

    let mut bench = BenchStep::new(&shape)?;
    let params = bench.trainer.model.param_count(&bench.trainer.tape.params);
    let flops = if args.eval { bench.eval_flops() } else { bench.train_flops() };
    let (times, loss, allocs) = {
        let mut loss = f64::NAN;
        let mut run = |bench: &mut BenchStep| -> Result<()> {
            if args.eval {
                bench.eval();
            } else {
                loss = bench.train_step()?;
            }
            Ok(())
        };
        for _ in 0..args.warmup {
            run(&mut bench)?;
        }
        let mut times = Vec::with_capacity(args.steps); // before the count: it is the benchmark's, not the step's
        let before = allocations();
        for _ in 0..args.steps {
            let t = Instant::now();
            run(&mut bench)?;
            times.push(t.elapsed().as_secs_f64());
        }
        let allocs = allocations() - before;
        (times, loss, allocs)
    };
    let step = median(times);
    let gflops = flops / step / 1e9;
    let line = json!({
        "impl": if args.eval { "loopgrad-eval" } else { "loopgrad" },
        "threads": threads,
        "model": args.model,
        "arch": if shape.mlp { "mlp" } else { "att" },
        "hidden": shape.hidden,
        "T": shape.t,
        "n": shape.n,
        "batch": shape.batch,
        "params": params,
        "step_ms": round(step * 1e3, 2),
        "samples_per_s": round(shape.batch as f64 / step, 3),
        "loss": if args.eval { serde_json::Value::Null } else { json!(round(loss, 6)) },
        "peak_rss_mib": peak_rss_mib(),
        "gflops": round(gflops, 1),
        "dtype": shape.forward_dtype.precision().name(),
        "peak_gflops": round(peak, 1),
        "peak_fraction": round(gflops / peak, 3),
        "peak_kind": peak_kind.name(),
        "peaks": {
            "f32x8": round(f32x8, 1),
            "f32_widest": round(f32_peak, 1),
            "bf16_dot": bf16_peak.map(|p| round(p, 1)),
            "bf16_tile": tile_peak.map(|p| round(p, 1)),
        },
        "cpu": cpu_name(),
        "kernels": {
            "gemm": if shape.forward_dtype.is_f32() { kernels.f32_gemm } else { kernels.bf16_gemm },
            "f32_gemm": kernels.f32_gemm,
            "bf16_gemm": kernels.bf16_gemm,
            "amx": kernels.amx,
            "elementwise": kernels.elementwise,
        },
        "allocs_per_step": allocs as f64 / args.steps as f64,
        "flops_per_step": flops,
        "flops_from": "ModelConfig::step_cost (every GEMM and attention product, forward and backward)",
    });
    println!("{line}");
    Ok(())
}

/// A config error about the benchmark's model, with each `model.` field named by the flag that sets it.
fn in_flag_names(message: &str) -> String {
    const FLAGS: [(&str, &str); 12] = [
        ("model.hidden_size", "--hidden"),
        ("model.num_heads", "--heads"),
        ("model.expansion", "--expansion"),
        ("model.num_layers", "--layers"),
        ("model.h_layers", "--layers"),
        ("model.l_layers", "--layers"),
        ("model.h_cycles", "--T"),
        ("model.l_cycles", "--n"),
        ("model.seq_len", "--seq"),
        ("model.vocab_size", "--vocab"),
        ("model.puzzle_emb_len", "--prefix"),
        ("hidden_size", "--hidden"),
    ];
    FLAGS.iter().fold(message.to_string(), |m, (field, flag)| m.replace(field, flag))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

fn round(x: f64, digits: i32) -> f64 {
    let s = 10f64.powi(digits);
    (x * s).round() / s
}

/// The CPU's model name as `/proc/cpuinfo` gives it (`null` where there is no such file).
fn cpu_name() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("model name"))?;
    Some(line.split_once(':')?.1.trim().to_string())
}

/// The process's peak resident set in MiB (`VmHWM` in `/proc/self/status`; `null` where there is no such file).
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(round(kib / 1024.0, 1))
}

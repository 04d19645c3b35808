//! `loopgrad study --estimate K`: what a plan will cost, measured rather than guessed.
//!
//! Each condition trains twice as a child process, for K and for 2K optimizer steps (held-out set of 16, no
//! intermediate evaluation). The difference of the two children's CPU time is the CPU cost of K steps alone: data
//! generation, start-up and the final evaluation cancel, and so does most of the noise of a shared machine, since
//! CPU time does not count the time a process waits for a core. The rest of the shorter child's CPU time is the
//! fixed cost of a run (generating its data, once for training and once more for the test-time evaluation).
//! Evaluation costs are projected from the measured rate and the FLOP counts of `loopgrad_models::cost`.

use anyhow::{bail, Context, Result};
use loopgrad_train::study::machine::children_cpu_seconds;
use loopgrad_train::study::Expansion;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

/// The most steps `--estimate` measures at (and twice that): days of training at the smallest shape, and far
/// from the overflow of `2 * k` and of the child's `run.steps`, a TOML integer.
const MAX_ESTIMATE_STEPS: u64 = 1_000_000;

pub fn run(expansion: &Expansion, exe: &Path, k: u64, jobs: usize) -> Result<()> {
    if k == 0 {
        bail!("--estimate needs at least 1 step");
    }
    if k > MAX_ESTIMATE_STEPS {
        bail!("--estimate {k} is more than {MAX_ESTIMATE_STEPS} steps");
    }
    let Some(_) = children_cpu_seconds() else { bail!("--estimate reads /proc/self/stat: Linux only") };
    let scratch = std::env::temp_dir().join(format!("loopgrad-estimate-{}", std::process::id()));
    let plan = &expansion.plan;
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "measuring {} conditions at {k} and {} steps ({} thread(s) each); load average now: {}",
        plan.conditions.len(),
        2 * k,
        plan.threads,
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    );
    println!(
        "{:<16} {:>11} {:>11} {:>9} {:>5} {:>12}",
        "condition", "cpu s/step", "wall s/step", "fixed s", "runs", "projected s"
    );
    let mut total = 0.0;
    for condition in &plan.conditions {
        let indices: Vec<usize> =
            (0..expansion.runs.len()).filter(|&i| expansion.runs[i].condition == condition.name).collect();
        let Some(&first) = indices.first() else { continue };
        let spec = &expansion.runs[first];
        let (cpu_k, wall_k) = measure(exe, &spec.train_args, k, &scratch.join(format!("{}-a", condition.name)))?;
        let (cpu_2k, wall_2k) = measure(exe, &spec.train_args, 2 * k, &scratch.join(format!("{}-b", condition.name)))?;
        let cpu_step = ((cpu_2k - cpu_k) / k as f64).max(0.0);
        let wall_step = ((wall_2k - wall_k) / k as f64).max(0.0);
        let fixed = (cpu_k - k as f64 * cpu_step).max(0.0);
        // Evaluation: forward-only example-steps, at the training rate per FLOP.
        let config = &expansion.configs[first];
        let cost = config.model.step_cost();
        let example_step = cpu_step / config.run.batch_size as f64 * cost.forward_flops / cost.total_flops();
        let test_time_examples = match plan.test_time_examples {
            0 => config.data.test_count,
            n => n.min(config.data.test_count),
        };
        let max_eval = plan.eval_steps.iter().copied().max().unwrap_or(1);
        let eval = example_step
            * (config.data.test_count * config.model.halt_max_steps() + test_time_examples * max_eval) as f64;
        let projected: f64 =
            indices.iter().map(|&i| expansion.runs[i].steps as f64 * cpu_step + 2.0 * fixed + eval).sum();
        total += projected;
        println!(
            "{:<16} {:>11.4} {:>11.4} {:>9.1} {:>5} {:>12.0}",
            condition.name,
            cpu_step,
            wall_step,
            fixed,
            indices.len(),
            projected
        );
    }
    let _ = std::fs::remove_dir_all(&scratch);
    println!(
        "projected: {total:.0} CPU seconds for {} runs; with {jobs} job(s) of {} thread(s) on an otherwise idle \
         machine, about {:.0} minutes",
        expansion.runs.len(),
        plan.threads,
        total / jobs as f64 / 60.0
    );
    Ok(())
}

/// CPU and wall seconds of one `loopgrad train` child of `steps` steps.
fn measure(exe: &Path, train_args: &[String], steps: u64, dir: &Path) -> Result<(f64, f64)> {
    let _ = std::fs::remove_dir_all(dir);
    let mut args = vec!["train".to_string()];
    args.extend(train_args.iter().cloned());
    for set in [
        format!("run.steps={steps}"),
        "data.test_count=16".to_string(),
        "run.eval_every=0".to_string(),
        "run.checkpoint_every=0".to_string(),
    ] {
        args.extend(["--set".to_string(), set]);
    }
    args.extend(["--out".to_string(), dir.display().to_string()]);
    let cpu = children_cpu_seconds().unwrap_or(0.0);
    let t = Instant::now();
    let out = Command::new(exe).args(&args).output().with_context(|| format!("cannot start {}", exe.display()))?;
    let wall = t.elapsed().as_secs_f64();
    if !out.status.success() {
        bail!("measuring `loopgrad {}` failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok((children_cpu_seconds().unwrap_or(0.0) - cpu, wall))
}

//! `loopgrad eval --task arc`: every test input of the evaluation tasks under every augmentation the model was
//! trained with (its identifier table), each run `--steps` supervision steps; the predictions are cropped, the
//! augmentation undone, and the votes ranked as TRM's `evaluators/arc.py` ranks them (votes, then mean halt
//! confidence). Prints pass@K per task and overall; writes an ARC Prize submission (`--predictions`) and the
//! votes (`--votes`). `--shard I/N` evaluates every N-th task from the I-th, `--emit-jobs` writes one such command
//! per shard, `--collect` merges the shards' votes into the same report. See `docs/arc.md`.

use super::eval::{load_model_sized, EvalArgs};
use anyhow::{anyhow, bail, Context, Result};
use loopgrad_puzzles::arc::canvas::side_of;
use loopgrad_puzzles::arc::dataset::{build_test_set, identifiers_from_names};
use loopgrad_puzzles::arc::eval::BallotRecord;
use loopgrad_puzzles::arc::{load_path, ArcEvaluator};
use loopgrad_train::arc::vote;
use loopgrad_train::evaluate;
use loopgrad_train::rundir::IDENTIFIERS_FILE;
use serde_json::json;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The ARC flags of `loopgrad eval`.
#[derive(clap::Args, Debug, Default)]
pub struct ArcArgs {
    /// ARC: the model's identifier table, a JSON list of names in id order (a run's identifiers.json, TRM's
    /// dataset identifiers.json). Default: identifiers.json beside the checkpoint.
    #[arg(long)]
    pub identifiers: Option<PathBuf>,
    /// ARC: the K of pass@K, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    pub pass_k: Vec<usize>,
    /// ARC: write the top two candidates of every test input, in the ARC Prize submission format.
    #[arg(long)]
    pub predictions: Option<PathBuf>,
    /// ARC: write the votes (for `--collect`).
    #[arg(long)]
    pub votes: Option<PathBuf>,
    /// ARC: evaluate shard I of N (tasks I, I + N, I + 2N, ... in the order of --data), e.g. `--shard 0/3`.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
    /// ARC: write one `loopgrad eval` command per shard to this file (for GNU parallel or a Slurm array), each
    /// writing its votes beside it, instead of evaluating.
    #[arg(long, value_name = "FILE", requires = "shards")]
    pub emit_jobs: Option<PathBuf>,
    /// ARC: the number of shards for --emit-jobs.
    #[arg(long)]
    pub shards: Option<usize>,
    /// ARC: merge these votes files (repeat the flag) and report, without a model.
    #[arg(long, value_name = "VOTES")]
    pub collect: Vec<PathBuf>,
    /// ARC: name the tasks left out (larger than the canvas, or unknown to the model).
    #[arg(long)]
    pub verbose: bool,
}

/// The ARC flags mean nothing for Sudoku and Maze: refuse them rather than ignore them.
pub fn refuse_arc_flags(a: &ArcArgs) -> Result<()> {
    let given = [
        ("--identifiers", a.identifiers.is_some()),
        ("--predictions", a.predictions.is_some()),
        ("--votes", a.votes.is_some()),
        ("--shard", a.shard.is_some()),
        ("--emit-jobs", a.emit_jobs.is_some()),
        ("--collect", !a.collect.is_empty()),
    ];
    if let Some((flag, _)) = given.iter().find(|(_, g)| *g) {
        bail!("{flag} is for --task arc");
    }
    Ok(())
}

pub fn run(args: &EvalArgs) -> Result<()> {
    let a = &args.arc;
    if a.pass_k.is_empty() || a.pass_k.contains(&0) {
        bail!("--pass-k: each K must be at least 1, got {:?}", a.pass_k);
    }
    crate::cli::check_input_file("--data", &args.data)?;
    let mut tasks = load_path(&args.data).map_err(|e| anyhow!("{e}"))?;
    if args.limit > 0 {
        tasks.truncate(args.limit);
    }
    if let Some(file) = &a.emit_jobs {
        return emit_jobs(args, file, tasks.len());
    }
    if !a.collect.is_empty() {
        let mut files: Vec<(&PathBuf, Vec<BallotRecord>)> = Vec::new();
        // Shards split the tasks, so one test input's votes come from one file: a second file holding them is a
        // file given twice (under another name, or a copy), whose votes would count twice.
        let mut first_file: HashMap<(String, Vec<Vec<u8>>), usize> = HashMap::new();
        for path in &a.collect {
            crate::cli::check_input_file("--collect", path)?;
            let text = loopgrad_train::rundir::read_text(path)?;
            let ballots: Vec<BallotRecord> =
                serde_json::from_str(&text).with_context(|| format!("{}: not a votes file", path.display()))?;
            for b in &ballots {
                if let Some(&i) = first_file.get(&(b.task.clone(), b.input.clone())) {
                    bail!(
                        "--collect {}: votes for a test input of task {} that {} also holds (a file given twice?)",
                        path.display(),
                        b.task,
                        files[i].0.display()
                    );
                }
            }
            first_file.extend(ballots.iter().map(|b| ((b.task.clone(), b.input.clone()), files.len())));
            files.push((path, ballots));
        }
        // Scored as the unsharded evaluation scores: the tasks with votes; the others are left out, by name (a
        // task no shard could evaluate, or a shard's votes file not given).
        let voted: std::collections::HashSet<&str> =
            files.iter().flat_map(|(_, b)| b.iter().map(|b| b.task.as_str())).collect();
        let (with, without): (Vec<_>, Vec<_>) = tasks.iter().cloned().partition(|t| voted.contains(t.id.as_str()));
        let left_out: Vec<String> =
            without.iter().map(|t| format!("{}: no votes in the --collect files", t.id)).collect();
        let mut evaluator = ArcEvaluator::from_votes(&with);
        for (path, ballots) in &files {
            evaluator.add_ballots(ballots).map_err(|e| anyhow!("{}: {e}", path.display()))?;
        }
        return report(args, &evaluator, &left_out, "collected votes");
    }
    if let Some(shard) = &a.shard {
        let (i, n) = parse_shard(shard)?;
        tasks = tasks.into_iter().skip(i).step_by(n).collect();
    }
    let checkpoint = args.model.checkpoint.clone().expect("clap requires --checkpoint without --collect");
    let ids_path = a.identifiers.clone().unwrap_or_else(|| checkpoint.with_file_name(IDENTIFIERS_FILE));
    let names = read_identifiers(&ids_path)?;
    let identifiers = identifiers_from_names(&names).map_err(|e| anyhow!("{}: {e}", ids_path.display()))?;
    // The table has one row per identifier: TRM sizes it from its dataset's identifiers.json, as loopgrad does.
    let mut loaded = load_model_sized(&args.model, Some(names.len()))?;
    let io = loaded.config.io();
    let side = side_of(io.seq_len)
        .filter(|&s| s <= loopgrad_puzzles::arc::MAX_SIDE)
        .ok_or_else(|| anyhow!("the model's seq_len {} is not an ARC canvas (a square of side 1..=30)", io.seq_len))?;
    let (set, kept, left_out) = build_test_set(&tasks, &identifiers, side);
    if set.is_empty() {
        bail!(
            "{}: none of the {} tasks can be evaluated ({})",
            args.data.display(),
            tasks.len(),
            left_out.first().map(String::as_str).unwrap_or("no test inputs")
        );
    }
    let steps = args.steps.unwrap_or(loaded.config.halt_max_steps());
    if steps == 0 {
        bail!("--steps must be at least 1");
    }
    let batch_size = args.batch_size.clamp(1, set.len());
    loopgrad_train::config::check_batch("--batch-size", batch_size, &loaded.config)?;
    let (_, predictions) = evaluate(&loaded.model, &mut loaded.tape, &set, 0, steps, batch_size);
    let evaluator = vote(&set, &kept, &predictions).with_context(|| ids_path.display().to_string())?;
    let what = format!(
        "{} test examples, {steps} supervision steps, {} weights",
        set.len(),
        ["live", "EMA"][loaded.ema as usize]
    );
    report(args, &evaluator, &left_out, &what)
}

/// Prints the scores (text or JSON) and writes the requested files.
fn report(args: &EvalArgs, e: &ArcEvaluator, left_out: &[String], what: &str) -> Result<()> {
    let a = &args.arc;
    let scores = e.scores(&a.pass_k);
    if let Some(path) = &a.predictions {
        crate::cli::check_output_file("--predictions", path)?;
        write(path, &serde_json::Value::Object(e.submission(2)).to_string())?;
    }
    if let Some(path) = &a.votes {
        crate::cli::check_output_file("--votes", path)?;
        write(path, &serde_json::to_string(&e.ballots())?)?;
    }
    let inputs = |j: usize| scores.solved[j];
    let scored_inputs = scores.test_inputs;
    if args.json {
        let pass = |v: &[f64]| -> serde_json::Map<String, serde_json::Value> {
            a.pass_k.iter().zip(v).map(|(k, p)| (format!("pass@{k}"), json!(p))).collect()
        };
        let record = json!({
            "data": args.data.display().to_string(),
            "evaluated": what,
            "tasks_scored": scores.per_task.len(),
            "tasks_without_outputs": scores.unscored,
            "tasks_left_out": left_out,
            "test_inputs_scored": scored_inputs,
            "test_inputs_solved": a.pass_k.iter().enumerate().map(|(j, k)| (format!("pass@{k}"), json!(inputs(j)))).collect::<serde_json::Map<_, _>>(),
            "overall": pass(&scores.overall),
            "per_task": scores.per_task.iter().map(|t| json!({"task": t.task, "pass": pass(&t.pass)})).collect::<Vec<_>>(),
        });
        println!("{record}");
        return Ok(());
    }
    for t in &scores.per_task {
        let cells: Vec<String> = a.pass_k.iter().zip(&t.pass).map(|(k, p)| format!("pass@{k} {:.3}", p)).collect();
        println!("{}: {}", t.task, cells.join(", "));
    }
    let overall: Vec<String> = a
        .pass_k
        .iter()
        .enumerate()
        .map(|(j, k)| {
            format!("pass@{k} {:.2}% ({} of {scored_inputs} test inputs)", 100.0 * scores.overall[j], inputs(j))
        })
        .collect();
    println!("{}: {} tasks scored ({what}): {}", args.data.display(), scores.per_task.len(), overall.join(", "));
    if scores.unscored > 0 {
        println!(
            "{} tasks have no test outputs (a Kaggle file without solutions): predicted, not scored",
            scores.unscored
        );
    }
    if !left_out.is_empty() {
        println!("{} tasks left out{}", left_out.len(), if a.verbose { ":" } else { " (--verbose names them)" });
        if a.verbose {
            for why in left_out {
                println!("  {why}");
            }
        }
    }
    Ok(())
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("{}: cannot write", path.display()))
}

/// `I/N` with 0 <= I < N.
fn parse_shard(s: &str) -> Result<(usize, usize)> {
    let parsed = s.split_once('/').and_then(|(i, n)| Some((i.parse::<usize>().ok()?, n.parse::<usize>().ok()?)));
    match parsed {
        Some((i, n)) if i < n => Ok((i, n)),
        _ => bail!("--shard {s:?}: expected I/N with 0 <= I < N, e.g. 0/3"),
    }
}

/// A JSON list of identifier names.
fn read_identifiers(path: &Path) -> Result<Vec<String>> {
    crate::cli::check_input_file("--identifiers", path)?;
    let text = loopgrad_train::rundir::read_text(path).with_context(|| {
        format!(
            "{}: cannot read the identifier table (a run's {IDENTIFIERS_FILE}; pass it with --identifiers)",
            path.display()
        )
    })?;
    serde_json::from_str(&text).with_context(|| format!("{}: not a JSON list of identifier names", path.display()))
}

/// One command per shard, each writing `<FILE>.votes-<I>-of-<N>.json`; prints the `--collect` command. A shard
/// holds at least one of the `tasks`.
fn emit_jobs(args: &EvalArgs, file: &Path, tasks: usize) -> Result<()> {
    let a = &args.arc;
    let n = a.shards.unwrap_or(0);
    if n == 0 {
        bail!("--shards must be at least 1");
    }
    if n > tasks {
        bail!("--shards {n}: more than the {tasks} tasks of {} (a shard holds at least one)", args.data.display());
    }
    crate::cli::check_output_file("--emit-jobs", file)?;
    let checkpoint = args.model.checkpoint.as_deref().ok_or_else(|| anyhow!("--emit-jobs needs --checkpoint"))?;
    let exe = std::env::current_exe().context("cannot locate the loopgrad binary")?;
    let q = |p: &Path| shell_quote(&p.display().to_string());
    let votes = |i: usize| PathBuf::from(format!("{}.votes-{i}-of-{n}.json", file.display()));
    let mut common = format!("eval --task arc --checkpoint {} --data {}", q(checkpoint), q(&args.data));
    for (flag, path) in [("--identifiers", &a.identifiers), ("--config", &args.model.config)] {
        if let Some(p) = path {
            common += &format!(" {flag} {}", q(p));
        }
    }
    if let Some(p) = &args.model.preset {
        common += &format!(" --preset {}", shell_quote(p));
    }
    for set in &args.model.sets {
        common += &format!(" --set {}", shell_quote(set));
    }
    if let Some(s) = args.steps {
        common += &format!(" --steps {s}");
    }
    if args.limit > 0 {
        common += &format!(" --limit {}", args.limit);
    }
    if args.model.live_weights {
        common += " --live-weights";
    }
    common += &format!(" --batch-size {}", args.batch_size);
    let lines: Vec<String> =
        (0..n).map(|i| format!("{} {common} --shard {i}/{n} --votes {}\n", q(&exe), q(&votes(i)))).collect();
    write(file, &lines.concat())?;
    let collect: Vec<String> = (0..n).map(|i| format!("--collect {}", q(&votes(i)))).collect();
    println!("wrote {n} commands to {}; run them (e.g. `parallel < {0}`), then:", file.display());
    let limit = if args.limit > 0 { format!(" --limit {}", args.limit) } else { String::new() };
    println!("{} eval --task arc --data {}{limit} {}", q(&exe), q(&args.data), collect.join(" "));
    Ok(())
}

/// `s` as one shell word.
fn shell_quote(s: &str) -> String {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"/._-=:,@+".contains(&b)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

//! `loopgrad study`: the recursion study. Expands a plan into ordinary training runs (several seeds each), runs
//! them (`--jobs` at a time locally, or `--emit-jobs` for a scheduler), evaluates each trained model at several
//! test-time step counts, and writes a markdown report with tables and SVG plots. A killed study resumes where it
//! stopped; `--collect` rebuilds the report from run directories alone. The library side is
//! `loopgrad_train::study`; see `docs/study.md`.

mod estimate;
mod plots;

use anyhow::{anyhow, bail, Context, Result};
use loopgrad_models::model::group_thousands;
use loopgrad_train::lock::DirLock;
use loopgrad_train::run::{stop_signal, STOP_SIGNALS};
use loopgrad_train::rundir::{CONFIG_FILE, METRICS_FILE};
use loopgrad_train::study::answer;
use loopgrad_train::study::machine::{cores, Machine};
use loopgrad_train::study::report::{markdown, sci, ReportContext};
use loopgrad_train::study::runner::{self, Outcome, RunStatus};
use loopgrad_train::study::testtime::TEST_TIME_FILE;
use loopgrad_train::study::{collect, Expansion, Plan};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

#[derive(clap::Args, Default)]
pub struct StudyArgs {
    /// A built-in plan: `generalisation-lr`, `generalisation-plateau`, `generalisation` and `generalisation-size`
    /// (the second edition: learning rates and budget on a validation split, the comparisons, then the data-size
    /// and augmentation axes; docs/study-second-edition.md), `generalisation-maze-lr` (the learning rates on the
    /// second task family, mazes), `generalisation-hierarchy-lr` and `-plateau` (the learning rates of the steps
    /// from HRM to TRM), `generalisation-params-lr` and `generalisation-params` (nets with 10x and 111x the
    /// parameters: their learning rates, then the comparison), `generalisation-direct-lr` (the learning rates of
    /// nets with no outer loop), `quick` (the comparisons at a quarter of the budget), `default` (the first
    /// edition, about 2 hours on 2 cores) or `smoke` (seconds).
    #[arg(long, conflicts_with_all = ["plan_file", "collect", "run_cell"])]
    pub plan: Option<String>,
    /// A plan as a TOML file (format: docs/study.md).
    #[arg(long, conflicts_with_all = ["collect", "run_cell"])]
    pub plan_file: Option<PathBuf>,
    /// Seeds per cell (overrides the plan's `seeds`).
    #[arg(long)]
    pub seeds: Option<usize>,
    /// Runs trained at the same time.
    #[arg(long, default_value_t = 1)]
    pub jobs: usize,
    /// Threads per run (overrides the plan's `threads`; with neither, the thread rule's count, `LOOPGRAD_THREADS`
    /// or else the cores, divided by --jobs).
    #[arg(long)]
    pub threads: Option<usize>,
    /// The study directory (default: runs/study-PLAN). Runs go to OUT/runs/, the resolved plan to OUT/plan.toml.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Where to write the report (default: OUT/report.md); plots go to a folder named after it.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// A hand-written plain-language answer (markdown) to put at the top of the report. Every number in a
    /// paragraph must be read off a table row the paragraph cites (`recursion.2`), or off the mechanical
    /// comparison of the rows it cites (its p-value); the report is not written otherwise.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["emit_jobs", "run_cell"])]
    pub answer: Option<PathBuf>,
    /// Prepare the runs and write one shell command per run to this file instead of running them.
    #[arg(long, value_name = "FILE")]
    pub emit_jobs: Option<PathBuf>,
    /// Rebuild the report of a study directory from its finished runs.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["emit_jobs", "run_cell"])]
    pub collect: Option<PathBuf>,
    /// List the runs (steps, parameters, depth, FLOPs) without running anything.
    #[arg(long)]
    pub dry_run: bool,
    /// Measure each condition for this many optimizer steps and project the plan's time.
    #[arg(long, value_name = "STEPS")]
    pub estimate: Option<u64>,
    /// Copy each finished run's small files (study.json, config.toml, metrics.jsonl, test_time.json; never the
    /// checkpoint) and the plan into this directory, as runs finish: a study directory that `--collect` reads,
    /// to commit (e.g. docs/results/generalisation) while the runs themselves live outside the repository.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["collect", "run_cell", "emit_jobs"])]
    pub results: Option<PathBuf>,
    /// Bring one prepared run directory to finished (what --jobs and --emit-jobs run).
    #[arg(long, value_name = "RUN_DIR")]
    pub run_cell: Option<PathBuf>,
}

pub fn run(args: StudyArgs) -> Result<()> {
    let exe = std::env::current_exe().context("cannot locate the loopgrad binary")?;
    if let Some(dir) = &args.run_cell {
        return run_cell(dir);
    }
    // Found now, not after hours of training when the report is written.
    if let Some(report) = &args.report {
        crate::cli::check_output_file("--report", report)?;
    }
    if let Some(dir) = &args.collect {
        crate::cli::check_input_file("--collect", &dir.join("plan.toml"))?;
        let plan = Plan::from_file(&dir.join("plan.toml"))?;
        let expansion = Expansion::new(&plan, plan.threads)?;
        let report = args.report.clone().unwrap_or_else(|| dir.join("report.md"));
        return write_report(&expansion, dir, &report, args.answer.as_deref());
    }
    let mut plan = match (&args.plan, &args.plan_file) {
        (Some(name), _) => Plan::built_in(name)?,
        (None, Some(path)) => {
            crate::cli::check_input_file("--plan-file", path)?;
            Plan::from_file(path)?
        }
        (None, None) => bail!("name a plan: --plan {} or --plan-file FILE.toml", Plan::built_in_names().join("|")),
    };
    if let Some(k) = args.seeds {
        plan.seeds = k;
    }
    if let Some(t) = args.threads {
        plan.threads = t;
    }
    let jobs = args.jobs.max(1);
    if plan.threads == 0 {
        // The thread rule without a request (docs/config.md), shared among the jobs.
        let threads = loopgrad_tensor::parallel::threads_for(0).map_err(anyhow::Error::msg)?;
        plan.threads = (threads / jobs).max(1);
    }
    plan.validate()?;
    if jobs > MAX_JOBS {
        bail!("--jobs {jobs} is more than {MAX_JOBS}");
    }
    if let Some(file) = &args.emit_jobs {
        crate::cli::check_output_file("--emit-jobs", file)?;
    }
    // A typo in --answer is found now, not after hours of training when the report is written.
    if let Some(answer) = &args.answer {
        std::fs::metadata(answer)
            .and_then(|m| if m.is_file() { Ok(()) } else { Err(std::io::Error::other("not a file")) })
            .with_context(|| format!("--answer {}: cannot read", answer.display()))?;
    }
    if jobs * plan.threads > cores() {
        eprintln!("note: {jobs} jobs x {} threads exceed the {} cores", plan.threads, cores());
    }
    let expansion = Expansion::new(&plan, plan.threads)?;
    if args.dry_run {
        print_runs(&expansion);
        return Ok(());
    }
    if let Some(steps) = args.estimate {
        return estimate::run(&expansion, &exe, steps, jobs);
    }
    let out = args.out.clone().unwrap_or_else(|| Path::new("runs").join(format!("study-{}", plan.name)));
    std::fs::create_dir_all(&out).with_context(|| format!("{}: cannot create", out.display()))?;
    // One study process per directory (each run's own lock is taken by the `--run-cell` that trains it).
    let _lock = DirLock::acquire(&out)?;
    prepare(&expansion, &out)?;
    if let Some(file) = &args.emit_jobs {
        return emit_jobs(&expansion, &out, &exe, file);
    }
    if let Some(results) = &args.results {
        export_finished(&expansion, &out, results)?;
    }
    let failures = run_local(&expansion, &out, &exe, jobs, args.results.as_deref())?;
    let report = args.report.clone().unwrap_or_else(|| out.join("report.md"));
    write_report(&expansion, &out, &report, args.answer.as_deref())?;
    if !failures.is_empty() {
        bail!("{} run(s) failed: {}", failures.len(), failures.join("; "));
    }
    Ok(())
}

/// The most runs at once.
const MAX_JOBS: usize = 256;

/// Writes OUT/plan.toml (or checks it matches) and every run directory's study.json.
fn prepare(expansion: &Expansion, out: &Path) -> Result<()> {
    std::fs::create_dir_all(out.join("runs")).with_context(|| format!("{}: cannot create", out.display()))?;
    let path = out.join("plan.toml");
    let text = expansion.plan.to_toml();
    if path.exists() {
        let existing = Plan::from_file(&path)?;
        if existing != expansion.plan {
            bail!(
                "{} holds a study with another plan (or other --seeds/--threads/--jobs); use another --out, or the \
                 same options to resume it",
                out.display()
            );
        }
    } else {
        loopgrad_train::rundir::write_atomic(&path, text.as_bytes())?;
    }
    for spec in &expansion.runs {
        runner::prepare(&out.join("runs").join(&spec.name), spec)?;
    }
    Ok(())
}

/// `--run-cell DIR`: one run to finished, one line of outcome on stdout.
fn run_cell(dir: &Path) -> Result<()> {
    let spec = runner::read_spec(dir)?;
    match runner::execute(dir, stop_signal())? {
        Outcome::Skipped => println!("{}: already finished", spec.name),
        Outcome::Done { resumed, trained, test_time } => {
            let accuracies: Vec<String> =
                test_time.results.iter().map(|r| format!("{:.1}%@{}", 100.0 * r.exact_accuracy, r.steps)).collect();
            let how = match (trained, resumed) {
                (true, true) => "resumed and trained",
                (true, false) => "trained",
                _ => "evaluated",
            };
            // The learning-rate plans score a validation split; say so, as `loopgrad train` does.
            let config = loopgrad_train::TrainConfig::from_file(&dir.join("config.toml"));
            let set = config.as_ref().map(|c| format!("{} ", loopgrad_train::run::scored_set(c))).unwrap_or_default();
            println!("{}: {how}; {set}exact {}", spec.name, accuracies.join(" "));
        }
    }
    Ok(())
}

/// Runs every unfinished run, `jobs` at a time, each as `loopgrad study --run-cell DIR`. Returns the failures.
fn run_local(
    expansion: &Expansion,
    out: &Path,
    exe: &Path,
    jobs: usize,
    results: Option<&Path>,
) -> Result<Vec<String>> {
    let dirs: Vec<PathBuf> = expansion.runs.iter().map(|r| out.join("runs").join(&r.name)).collect();
    let todo: Vec<usize> =
        (0..dirs.len()).filter(|&i| runner::status(&dirs[i], &expansion.runs[i]) != RunStatus::Finished).collect();
    eprintln!(
        "study {}: {} runs, {} finished already, {} to run, {jobs} at a time; directory {}",
        expansion.plan.name,
        dirs.len(),
        dirs.len() - todo.len(),
        todo.len(),
        out.display()
    );
    let stop = stop_signal();
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    let start = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..jobs.min(todo.len()) {
            scope.spawn(|| loop {
                let k = next.fetch_add(1, Ordering::SeqCst);
                if k >= todo.len() || stop.load(Ordering::SeqCst) != 0 {
                    break;
                }
                let dir = &dirs[todo[k]];
                let t = Instant::now();
                let result = run_cell_child(exe, dir, stop);
                let n = done.fetch_add(1, Ordering::SeqCst) + 1;
                let line = match result {
                    Ok(o) if o.status.success() => {
                        let mut line = String::from_utf8_lossy(&o.stdout).trim().to_string();
                        if let Some(results) = results {
                            if let Err(e) = export_run(&expansion.runs[todo[k]], dir, results) {
                                line.push_str(&format!(" (not exported: {e:#})"));
                            }
                        }
                        line
                    }
                    // Interrupted (130, 143): the run saved a checkpoint, and the next invocation resumes it.
                    Ok(o) if interrupted_code(o.status.code()) => format!("interrupted: {}", dir.display()),
                    Ok(o) => {
                        let err = String::from_utf8_lossy(&o.stderr).trim().to_string();
                        failures.lock().expect("not poisoned").push(err.clone());
                        format!("FAILED {err}")
                    }
                    Err(e) => {
                        failures.lock().expect("not poisoned").push(format!("{}: {e}", dir.display()));
                        format!("FAILED {}: cannot start: {e}", dir.display())
                    }
                };
                eprintln!(
                    "[{n}/{}] {line} ({:.0} s; {:.0} s elapsed)",
                    todo.len(),
                    t.elapsed().as_secs_f64(),
                    start.elapsed().as_secs_f64()
                );
            });
        }
    });
    if !todo.is_empty() {
        record_wall_time(out, jobs, done.load(Ordering::SeqCst), start.elapsed().as_secs_f64())?;
    }
    let signal = stop.load(Ordering::SeqCst) as i32;
    if signal != 0 {
        let message = "study interrupted; rerun the same command to resume (finished runs are skipped)".to_string();
        return Err(loopgrad_train::run::Interrupted { signal, message }.into());
    }
    Ok(failures.into_inner().expect("not poisoned"))
}

/// Whether a child's exit code says a signal interrupted it (128 + SIGINT or SIGTERM).
fn interrupted_code(code: Option<i32>) -> bool {
    code.is_some_and(|c| STOP_SIGNALS.iter().any(|s| c == 128 + s))
}

/// Runs `exe study --run-cell DIR` and waits for it, passing on a stop signal this process receives: the child's
/// run loop then saves a checkpoint and exits 130 or 143. The child has a process group of its own, so that a
/// Ctrl-C (which a terminal sends to its foreground group) reaches it once, through this process: a second
/// signal ends a run at once, before it saves. The child writes one line (its progress goes to the run's
/// `train.log`), so its pipes never fill while it is polled.
fn run_cell_child(exe: &Path, dir: &Path, stop: &AtomicUsize) -> std::io::Result<std::process::Output> {
    let mut command = Command::new(exe);
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let mut child = command
        .arg("study")
        .arg("--run-cell")
        .arg(dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    let mut passed_on = false;
    while child.try_wait()?.is_none() {
        let signal = stop.load(Ordering::SeqCst) as i32;
        if signal != 0 && !passed_on {
            // kill(1), not kill(2): the crates above loopgrad-tensor hold no `unsafe`.
            let _ = Command::new("kill").arg(format!("-{signal}")).arg(child.id().to_string()).status();
            passed_on = true;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.wait_with_output()
}

/// The small files of a finished run: what `--collect` reads, and what says how the run was made.
const RESULT_FILES: [&str; 4] = [runner::SPEC_FILE, CONFIG_FILE, METRICS_FILE, TEST_TIME_FILE];

/// Copies the plan and every finished run's small files from the study directory `out` to `results`.
fn export_finished(expansion: &Expansion, out: &Path, results: &Path) -> Result<()> {
    for spec in &expansion.runs {
        let dir = out.join("runs").join(&spec.name);
        if runner::status(&dir, spec) == RunStatus::Finished {
            export_run(spec, &dir, results)?;
        }
    }
    std::fs::create_dir_all(results).with_context(|| format!("{}: cannot create", results.display()))?;
    loopgrad_train::rundir::write_atomic(&results.join("plan.toml"), expansion.plan.to_toml().as_bytes())
}

/// Copies one finished run's small files to RESULTS/runs/NAME/ (never its checkpoint), and the plan.
fn export_run(spec: &loopgrad_train::study::RunSpec, dir: &Path, results: &Path) -> Result<()> {
    if runner::status(dir, spec) != RunStatus::Finished {
        return Ok(());
    }
    let to = results.join("runs").join(&spec.name);
    std::fs::create_dir_all(&to).with_context(|| format!("{}: cannot create", to.display()))?;
    for file in RESULT_FILES {
        let text = loopgrad_train::rundir::read_text(&dir.join(file))?;
        loopgrad_train::rundir::write_atomic(&to.join(file), text.as_bytes())?;
    }
    let plan = results.join("plan.toml");
    if !plan.exists() {
        let text = loopgrad_train::rundir::read_text(&dir.join("../../plan.toml"))?;
        loopgrad_train::rundir::write_atomic(&plan, text.as_bytes())?;
    }
    Ok(())
}

/// Where a study directory keeps the wall time of each local invocation (one JSON line each).
const WALL_TIME_FILE: &str = "wall_time.jsonl";

/// Appends this invocation's wall time to OUT/wall_time.jsonl, for the report.
fn record_wall_time(out: &Path, jobs: usize, runs: usize, wall_s: f64) -> Result<()> {
    use std::io::Write;
    let path = out.join(WALL_TIME_FILE);
    let line = serde_json::json!({ "jobs": jobs, "runs": runs, "wall_s": wall_s });
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("{}: cannot open", path.display()))?;
    writeln!(file, "{line}").with_context(|| format!("{}: cannot write", path.display()))
}

/// "5,996 s (1 h 40 min) for 87 runs with --jobs 2, in 1 invocation", from OUT/wall_time.jsonl; None without it
/// (a study trained elsewhere, through --emit-jobs) or when a line does not parse.
fn wall_time(out: &Path) -> Option<String> {
    let text = std::fs::read_to_string(out.join(WALL_TIME_FILE)).ok()?;
    let (mut seconds, mut runs, mut jobs, mut n) = (0.0, 0, Vec::new(), 0);
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line).ok()?;
        seconds += v["wall_s"].as_f64()?;
        runs += v["runs"].as_u64()?;
        let j = v["jobs"].as_u64()?;
        if !jobs.contains(&j) {
            jobs.push(j);
        }
        n += 1;
    }
    let jobs: Vec<String> = jobs.iter().map(|j| j.to_string()).collect();
    let minutes = (seconds / 60.0).round() as u64;
    Some(format!(
        "{} s ({} h {} min) for {runs} runs with --jobs {}, in {n} invocation{}",
        group_thousands(seconds.round() as usize),
        minutes / 60,
        minutes % 60,
        jobs.join("/"),
        if n == 1 { "" } else { "s" }
    ))
}

/// Writes one `loopgrad study --run-cell DIR` line per run, for a Slurm array or GNU parallel.
fn emit_jobs(expansion: &Expansion, out: &Path, exe: &Path, file: &Path) -> Result<()> {
    let mut text = String::new();
    for spec in &expansion.runs {
        let dir = out.join("runs").join(&spec.name);
        text.push_str(&format!(
            "{} study --run-cell {}\n",
            quote(&exe.display().to_string()),
            quote(&dir.display().to_string())
        ));
    }
    std::fs::write(file, text).with_context(|| format!("{}: cannot write", file.display()))?;
    let n = expansion.runs.len();
    println!("wrote {n} commands to {} (one run each; finished runs return at once)", file.display());
    println!("  GNU parallel: parallel -j JOBS < {}", file.display());
    println!(
        "  Slurm array:  sbatch --array=1-{n} --wrap 'sed -n \"${{SLURM_ARRAY_TASK_ID}}p\" {} | bash'",
        file.display()
    );
    println!("then: loopgrad study --collect {}", out.display());
    Ok(())
}

/// Collects the runs under OUT/runs and writes the report and its plots, with the checked answer if given.
fn write_report(expansion: &Expansion, out: &Path, report: &Path, answer: Option<&Path>) -> Result<()> {
    let problems = loopgrad_train::study::audit::audit(expansion, &out.join("runs"));
    if !problems.is_empty() {
        bail!(
            "{}: {} run file(s) cannot be what a run wrote; repair or remove them (a removed run trains again):\n  {}",
            out.display(),
            problems.len(),
            problems.join("\n  ")
        );
    }
    let results = collect(expansion, &out.join("runs"));
    let mut context =
        ReportContext { command: command_line(), machine: Machine::this(), plots: vec![], wall_time: wall_time(out) };
    // The answer is checked against the tables before anything is written (the rows do not depend on the plots).
    let answer = match answer {
        None => None,
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("{}: cannot read", path.display()))?;
            if let Err(problems) = answer::check(&text, &markdown(&results, &context)) {
                bail!(
                    "{}: {} number(s) not read off a cited row:\n  {}",
                    path.display(),
                    problems.len(),
                    problems.join("\n  ")
                );
            }
            Some(text)
        }
    };
    let stem = report.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "report".into());
    let parent = report.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let plot_dir = parent.join(&stem);
    std::fs::create_dir_all(&plot_dir).with_context(|| format!("{}: cannot create", plot_dir.display()))?;
    context.plots = plots::draw_all(&results, &plot_dir, &stem).map_err(|e| anyhow!("{}: {e}", plot_dir.display()))?;
    let mut md = markdown(&results, &context);
    if let Some(text) = &answer {
        md = answer::insert(&md, text);
    }
    loopgrad_train::rundir::write_atomic(report, md.as_bytes())?;
    let (finished, failed, missing) = results.counts();
    println!("report: {} ({finished} runs finished, {failed} failed, {missing} not finished)", report.display());
    Ok(())
}

fn print_runs(expansion: &Expansion) {
    println!("{:<32} {:>7} {:>10} {:>6} {:>10}", "run", "steps", "params", "depth", "FLOPs");
    let mut total = 0.0;
    for (spec, config) in expansion.runs.iter().zip(&expansion.configs) {
        let flops = config.model.step_cost().total_flops() * config.run.batch_size as f64 * spec.steps as f64;
        total += flops;
        println!(
            "{:<32} {:>7} {:>10} {:>6} {:>10}",
            spec.name,
            spec.steps,
            config.model.param_count(),
            config.model.effective_depth(),
            sci(flops)
        );
    }
    println!("{} runs, {} training FLOPs in all", expansion.runs.len(), sci(total));
}

/// The command line as typed, shell-quoted, with the binary as `loopgrad`.
fn command_line() -> String {
    let mut words = vec!["loopgrad".to_string()];
    words.extend(std::env::args().skip(1).map(|a| quote(&a)));
    words.join(" ")
}

/// Quotes a word for sh when it needs it.
fn quote(word: &str) -> String {
    if !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c)) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

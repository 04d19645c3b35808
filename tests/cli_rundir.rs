//! The run-directory guarantees of `docs/run-directories.md`, through the `loopgrad` binary: temporary files
//! that never follow a link or open a FIFO, one process per directory, `metrics.jsonl` as one run's history,
//! SIGTERM and SIGINT saving a checkpoint with exit codes 143 and 130 (and ending an evaluation promptly), and
//! `data --out` on a full disk.

mod common;

use common::{assert_clean_error, loopgrad, loopgrad_within};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn tmp(name: &str) -> PathBuf {
    common::tmp("cli-rundir", name)
}

/// The kinds and steps of a run's metrics records, in file order.
fn records(dir: &Path) -> Vec<(String, u64, bool)> {
    let text = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap();
    text.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}"));
            (v["kind"].as_str().unwrap().to_string(), v["step"].as_u64().unwrap(), v["final"] == true)
        })
        .collect()
}

#[cfg(unix)]
#[test]
fn planted_links_and_fifos_at_temporary_names_are_left_alone() {
    // Was: `R/checkpoint.safetensors.tmp -> v.txt` had v.txt overwritten with the checkpoint (and the checkpoint
    // became a link to it); a FIFO there hung the run forever.
    let d = tmp("planted");
    std::fs::write(d.join("v.txt"), "precious\n").unwrap();
    std::fs::create_dir_all(d.join("r")).unwrap();
    for name in ["checkpoint.safetensors.tmp", "config.toml.tmp"] {
        std::os::unix::fs::symlink(d.join("v.txt"), d.join("r").join(name)).unwrap();
    }
    std::fs::create_dir_all(d.join("f")).unwrap();
    for name in ["checkpoint.safetensors.tmp", "config.toml.tmp"] {
        let made = Command::new("mkfifo").arg(d.join("f").join(name)).status();
        assert!(made.is_ok_and(|s| s.success()), "mkfifo");
    }
    for run in ["r", "f"] {
        let out = loopgrad_within(Duration::from_secs(120), &["train", "--preset", "smoke", "--out", run], &d);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let checkpoint = std::fs::symlink_metadata(d.join(run).join("checkpoint.safetensors")).unwrap();
        assert!(checkpoint.file_type().is_file(), "the checkpoint is a regular file");
    }
    assert_eq!(std::fs::read_to_string(d.join("v.txt")).unwrap(), "precious\n");
    std::fs::remove_dir_all(&d).unwrap();
}

/// Starts `loopgrad args...` in `cwd` in the background, output to files.
fn spawn(args: &[&str], cwd: &Path, name: &str) -> Child {
    let file = |ext: &str| std::fs::File::create(cwd.join(format!(".{name}.{ext}"))).unwrap();
    Command::new(env!("CARGO_BIN_EXE_loopgrad"))
        .args(args)
        .current_dir(cwd)
        .stdout(Stdio::from(file("stdout")))
        .stderr(Stdio::from(file("stderr")))
        .spawn()
        .expect("run loopgrad")
}

/// Waits (at most 60 s) until `done()`.
fn wait_for(what: &str, done: impl Fn() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(60), "waited 60 s for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends `signal` (a name for kill(1): TERM, INT) to `child` and waits for it (at most 60 s).
fn stop(child: &mut Child, signal: &str) -> std::process::ExitStatus {
    let sent = Command::new("kill").arg(format!("-{signal}")).arg(child.id().to_string()).status().unwrap();
    assert!(sent.success());
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "still running 60 s after SIG{signal}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(unix)]
#[test]
fn one_process_per_run_directory_and_signals_save_with_their_exit_codes() {
    // Was: two writers on one directory mixed their configs, checkpoints and metrics; SIGTERM killed the run
    // without a checkpoint; an interrupted run exited 0.
    let d = tmp("lock");
    // No periodic checkpoint: the second run must meet the lock, not "already holds a run".
    let long = [
        "train",
        "--preset",
        "smoke",
        "--set",
        "run.steps=100000",
        "--set",
        "run.log_every=1",
        "--set",
        "run.checkpoint_every=0",
        "--out",
        "x",
    ];
    let mut first = spawn(&long, &d, "first");
    wait_for("the first run's first record", || d.join("x/metrics.jsonl").metadata().is_ok_and(|m| m.len() > 0));
    let second = loopgrad(&["train", "--preset", "smoke", "--set", "run.seed=7", "--out", "x"], &d);
    assert_clean_error(&second, &["x is in use by process", &first.id().to_string(), "loopgrad.lock"]);
    let config = std::fs::read_to_string(d.join("x/config.toml")).unwrap();
    assert!(!config.contains("seed = 7"), "the second run wrote the config");
    // SIGTERM: a checkpoint, and 143.
    let status = stop(&mut first, "TERM");
    let stderr = std::fs::read_to_string(d.join(".first.stderr")).unwrap();
    assert_eq!(status.code(), Some(143), "{stderr}");
    assert!(stderr.contains("interrupted by SIGTERM at step") && stderr.contains("--resume x"), "{stderr}");
    assert!(d.join("x/checkpoint.safetensors").exists(), "SIGTERM saved a checkpoint");
    // Resumed, then SIGINT: 130, and the log continues in step order from the checkpoint.
    let mut resumed = spawn(&["train", "--resume", "x"], &d, "resumed");
    let logged = || records(&d.join("x")).len();
    let before = logged();
    wait_for("the resumed run's first record", || logged() > before);
    // A second --resume of the same directory meets the lock, naming the resumed run.
    let again = loopgrad_within(Duration::from_secs(60), &["train", "--resume", "x"], &d);
    assert_clean_error(&again, &["x is in use by process", &resumed.id().to_string(), "loopgrad.lock"]);
    let status = stop(&mut resumed, "INT");
    let stderr = std::fs::read_to_string(d.join(".resumed.stderr")).unwrap();
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted by SIGINT"), "{stderr}");
    let steps: Vec<u64> = records(&d.join("x")).iter().map(|r| r.1).collect();
    assert!(steps.windows(2).all(|w| w[0] < w[1]), "one history in step order: {steps:?}");
    std::fs::remove_dir_all(&d).unwrap();
}

#[cfg(unix)]
#[test]
fn a_signal_during_the_final_evaluation_stops_it_promptly_and_the_run_resumes() {
    // Was: Ctrl-C was ignored during evaluation (three SIGINTs, and the process exited 18 s later). The smoke
    // preset's 50 held-out puzzles at 10,000 supervision steps are one batch that evaluates for over a minute
    // (with the stop checked only between batches, SIGINT left it running 60 s later): the stop must not wait
    // for the batch to end.
    let d = tmp("eval-signal");
    for (signal, code) in [("INT", 130), ("TERM", 143)] {
        let run = format!("r{code}");
        let mut child =
            spawn(&["train", "--preset", "smoke", "--set", "run.eval_steps=10000", "--out", &run], &d, &run);
        let stderr = || std::fs::read_to_string(d.join(format!(".{run}.stderr"))).unwrap_or_default();
        wait_for("the final evaluation", || stderr().contains("final evaluation: 50 held-out puzzles"));
        std::thread::sleep(Duration::from_millis(500)); // well into the batch
        let sent = Instant::now();
        let status = stop(&mut child, signal);
        let took = sent.elapsed();
        assert_eq!(status.code(), Some(code), "{}", stderr());
        // Generous for a loaded machine: the stop waits for one supervision step of one batch (10,000 of them
        // took over a minute), then the process exits.
        assert!(took < Duration::from_secs(3), "SIG{signal} during the evaluation took {took:?} to end the run");
        assert!(stderr().contains(&format!("interrupted by SIG{signal} at step 6")), "{}", stderr());
        assert!(records(&d.join(&run)).iter().all(|r| !r.2), "an evaluation cut short logs no final record");
        // Resumable: trained to the end already, the resumed run only evaluates (at 2 steps, to be quick).
        let out = loopgrad(&["train", "--resume", &run, "--set", "run.eval_steps=2"], &d);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let finals: Vec<u64> = records(&d.join(&run)).iter().filter(|r| r.2).map(|r| r.1).collect();
        assert_eq!(finals, [6], "one final evaluation, at the last step");
    }
    std::fs::remove_dir_all(&d).unwrap();
}

#[cfg(unix)]
#[test]
fn a_second_study_on_one_directory_is_refused_naming_the_first() {
    // Was: two `study` commands on one directory both trained its runs (one run's log had 510 train lines for
    // 300 steps).
    let d = tmp("study-lock");
    let study = ["study", "--plan", "smoke", "--jobs", "1", "--out", "s"];
    let mut first = spawn(&study, &d, "study");
    let pid = first.id().to_string();
    let holds = |lock: &Path, pid: &str| std::fs::read_to_string(lock).is_ok_and(|t| t.trim() == pid);
    wait_for("the first study's lock", || holds(&d.join("s/loopgrad.lock"), &pid));
    // Its first run started (so the study handles signals): a run directory's lock holds another PID.
    let runs = d.join("s/runs");
    let started = || {
        let dirs = std::fs::read_dir(&runs).into_iter().flatten().flatten();
        dirs.map(|e| e.path().join("loopgrad.lock"))
            .any(|lock| std::fs::read_to_string(lock).is_ok_and(|t| !t.is_empty()))
    };
    wait_for("the first study's first run", started);
    let second = loopgrad_within(Duration::from_secs(60), &study, &d);
    assert_clean_error(&second, &["s is in use by process", &pid, "loopgrad.lock"]);
    assert!(holds(&d.join("s/loopgrad.lock"), &pid), "the refused study left the lock file alone");
    // SIGTERM reaches the running cell through the study, which saves it and exits 143 like the cell.
    let status = stop(&mut first, "TERM");
    let stderr = std::fs::read_to_string(d.join(".study.stderr")).unwrap();
    assert_eq!(status.code(), Some(143), "{stderr}");
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn metrics_read_as_one_runs_history_with_one_final_evaluation() {
    // Was: a dead run's records stayed ahead of a new run's, and every resume of a finished run appended
    // another final evaluation.
    let d = tmp("history");
    std::fs::create_dir_all(d.join("r")).unwrap();
    let dead = r#"{"kind":"train","step":900,"loss":1.0,"lm_loss":1.0,"q_halt_loss":0.0,"lr":0.001,"halted":0,"exact_accuracy":0.0,"token_accuracy":0.0,"halt_steps":0.0,"samples_per_s":1.0,"elapsed_s":1.0}"#;
    std::fs::write(d.join("r/metrics.jsonl"), format!("{dead}\n{{\"kind\":\"train\",\"st")).unwrap();
    let out = loopgrad(&["train", "--preset", "smoke", "--out", "r"], &d);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let first = records(&d.join("r"));
    assert!(first.iter().all(|r| r.1 < 900), "the dead run's record is gone: {first:?}");
    assert_eq!(first.iter().filter(|r| r.2).count(), 1);
    for _ in 0..2 {
        let out = loopgrad(&["train", "--resume", "r"], &d);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(records(&d.join("r")), first, "resuming a finished run changes nothing in its log");
    }
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_resume_refuses_overrides_that_would_make_it_another_run() {
    // Was: `--resume r --set data.seed=9` continued the checkpoint's weights and slots on other data without a
    // word, and `--set run.steps` below the checkpoint's step was taken as given.
    let d = tmp("resume-sets");
    let out = loopgrad(&["train", "--preset", "smoke", "--out", "r"], &d);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let log = records(&d.join("r"));
    for (set, needles) in [
        ("data.seed=9", &["--set data.seed=9", "keeps the checkpoint's data.seed", "without --resume"][..]),
        ("data.train_count=7", &["data.train_count", "keeps the checkpoint's"][..]),
        ("model.hidden_size=32", &["model.hidden_size", "keeps the checkpoint's"][..]),
        ("run.seed=5", &["--set run.seed=5", "keeps the checkpoint's run.seed"][..]),
        ("run.steps=2", &["--set run.steps=2", "at step 6 already"][..]),
    ] {
        let out = loopgrad(&["train", "--resume", "r", "--set", set], &d);
        assert_clean_error(&out, needles);
        assert_eq!(records(&d.join("r")), log, "a refused resume leaves the run's log alone");
    }
    // What may change does: the products' precision and the evaluation (the run ended, so it only evaluates).
    let out =
        loopgrad(&["train", "--resume", "r", "--set", "model.forward_dtype=bf16", "--set", "run.eval_steps=2"], &d);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    std::fs::remove_dir_all(&d).unwrap();
}

#[cfg(target_os = "linux")]
#[test]
fn data_out_on_a_full_disk_fails_naming_the_file_and_leaves_no_temporary() {
    // Was: `.NAME.tmpPID` left behind, and no fsync.
    let d = tmp("full");
    let mnt = d.join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    let mounted = Command::new("mount").args(["-t", "tmpfs", "-o", "size=16k", "tmpfs"]).arg(&mnt).output();
    if !mounted.is_ok_and(|o| o.status.success()) {
        eprintln!("skipping: cannot mount a tmpfs here (needs root and mount)");
        std::fs::remove_dir_all(&d).unwrap();
        return;
    }
    let out = loopgrad(&["data", "sudoku", "--box", "2x3", "--count", "400", "--out", "mnt/s.csv"], &d);
    let names: Vec<String> =
        std::fs::read_dir(&mnt).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    let _ = Command::new("umount").arg(&mnt).status();
    assert_clean_error(&out, &["s.csv", "No space left on device"]);
    assert_eq!(names, Vec::<String>::new(), "nothing is left on the full disk");
    std::fs::remove_dir_all(&d).unwrap();
}

/// The tensors (name -> bytes) and metadata of a safetensors file, so that two files compare by content whatever
/// the order of their header's keys.
fn safetensors_content(path: &Path) -> (Vec<(String, Vec<u8>)>, serde_json::Value) {
    let bytes = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut header: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let metadata = header.remove("__metadata__").unwrap_or_default();
    let mut tensors: Vec<(String, Vec<u8>)> = header
        .iter()
        .map(|(name, t)| {
            let (a, b) =
                (t["data_offsets"][0].as_u64().unwrap() as usize, t["data_offsets"][1].as_u64().unwrap() as usize);
            (name.clone(), bytes[8 + n + a..8 + n + b].to_vec())
        })
        .collect();
    tensors.sort();
    (tensors, metadata)
}

#[cfg(unix)]
#[test]
#[ignore = "up to a minute: kill -9 at random moments, resume, compare with an uninterrupted run to the bit"]
fn kill_9_at_random_moments_then_resume_matches_an_uninterrupted_run() {
    let d = tmp("crash");
    let args =
        ["--preset", "smoke", "--set", "run.steps=200", "--set", "run.checkpoint_every=5", "--set", "run.threads=1"];
    let whole: Vec<&str> = ["train"].into_iter().chain(args).chain(["--out", "whole"]).collect();
    let t0 = Instant::now();
    let out = loopgrad(&whole, &d);
    let whole_time = t0.elapsed();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Kill -9 after a pseudo-random delay (a fixed-seed LCG: the same fractions each time), then resume, until the
    // run finishes; the first attempt starts it. The delays are 2% to 22% of the uninterrupted run's time, so that
    // a fast build on an idle machine is killed as often as a slow one (fixed delays of 0.2 to 1.7 s let a
    // 2 s --release run finish after a single kill).
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut kills = 0;
    loop {
        let started = d.join("killed/checkpoint.safetensors").exists();
        let cmd: Vec<&str> = if started {
            vec!["train", "--resume", "killed"]
        } else {
            ["train"].into_iter().chain(args).chain(["--out", "killed"]).collect()
        };
        let mut child = spawn(&cmd, &d, "killed");
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        let delay = whole_time.mul_f64(0.02 + 0.2 * ((state >> 33) % 1000) as f64 / 1000.0);
        let start = Instant::now();
        while start.elapsed() < delay && child.try_wait().unwrap().is_none() {
            std::thread::sleep(Duration::from_millis(5));
        }
        if let Some(status) = child.try_wait().unwrap() {
            let stderr = std::fs::read_to_string(d.join(".killed.stderr")).unwrap();
            assert!(status.success(), "{stderr}");
            break;
        }
        child.kill().unwrap();
        child.wait().unwrap();
        kills += 1;
        assert!(kills < 200, "the run never finished between kills");
    }
    eprintln!("{kills} kill -9s (the uninterrupted run took {:.1} s)", whole_time.as_secs_f64());
    assert_eq!(
        safetensors_content(&d.join("killed/checkpoint.safetensors")),
        safetensors_content(&d.join("whole/checkpoint.safetensors")),
        "the resumed run's checkpoint differs from the uninterrupted run's"
    );
    let last = |dir: &str| {
        let text = std::fs::read_to_string(d.join(dir).join("metrics.jsonl")).unwrap();
        text.lines().last().unwrap().to_string()
    };
    assert_eq!(last("killed"), last("whole"), "the final evaluations differ");
    std::fs::remove_dir_all(&d).unwrap();
}

#[cfg(unix)]
#[test]
fn a_signal_while_the_data_is_generated_ends_the_run_at_once() {
    // Was: the first SIGTERM waited for the data (minutes for a large set), since no step came to poll it.
    let d = tmp("signal-data");
    let sets = ["data.task=maze", "data.maze_size=30", "data.maze_min_route=110", "model.seq_len=900"];
    // One thread and many long-route mazes: generation takes well over the 1.5 s before the signal.
    let mut args = vec!["train", "--preset", "smoke", "--set", "data.train_count=20000", "--out", "x"];
    args.extend(["--set", "run.threads=1"]);
    sets.iter().for_each(|s| args.extend(["--set", s]));
    let mut child = spawn(&args, &d, "data");
    std::thread::sleep(Duration::from_millis(1500));
    let sent = Instant::now();
    let status = stop(&mut child, "TERM");
    let stderr = std::fs::read_to_string(d.join(".data.stderr")).unwrap();
    assert_eq!(status.code(), Some(143), "{stderr}");
    assert!(sent.elapsed() < Duration::from_secs(5), "took {:?} after SIGTERM", sent.elapsed());
    assert!(!d.join("x/checkpoint.safetensors").exists() && !d.join("x/config.toml").exists());
    assert!(!stderr.contains("data:"), "the signal came after the data was built: {stderr}");
    std::fs::remove_dir_all(&d).unwrap();
}

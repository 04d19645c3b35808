//! The ARC loaders read every shared ARC file (`../shared/data/arc-agi-1`, `arc-agi-2`, `conceptarc`,
//! `trm-kaggle-combined`) with the counts their READMEs state, the Kaggle copies equal the repository copies,
//! and the voting evaluator scores a perfect predictor at 100%, an echo predictor at the share of test pairs
//! whose output equals their input (none in ARC-AGI-1 evaluation), and a predictor right on one version in four at
//! 0% pass@1 and the share of tasks it covers at pass@2.

mod common;

use loopgrad_puzzles::arc::{self, canvas, ArcConfig, ArcEvaluator, Task};
use std::path::Path;

fn counts(tasks: &[Task]) -> (usize, usize, usize) {
    (tasks.len(), tasks.iter().map(|t| t.train.len()).sum(), tasks.iter().map(|t| t.test.len()).sum())
}

fn load_dir(dir: &Path) -> Vec<Task> {
    arc::load_task_dir(dir).unwrap_or_else(|e| panic!("{e}"))
}

fn kaggle(dir: &Path, subset: &str) -> Vec<Task> {
    arc::load_kaggle(&dir.join(format!("arc-agi_{subset}_challenges.json"))).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn repository_directories_load_with_readme_counts() {
    let (Some(a1), Some(a2), Some(concept)) =
        (common::shared_data("arc-agi-1"), common::shared_data("arc-agi-2"), common::shared_data("conceptarc"))
    else {
        return;
    };
    assert_eq!(counts(&load_dir(&a1.join("training"))), (400, 1302, 416));
    assert_eq!(counts(&load_dir(&a1.join("evaluation"))), (400, 1363, 419));
    assert_eq!(counts(&load_dir(&a2.join("training"))), (1000, 3232, 1076));
    assert_eq!(counts(&load_dir(&a2.join("evaluation"))), (120, 359, 167));
    assert_eq!(counts(&load_dir(&concept.join("corpus"))), (160, 427, 480));
    assert_eq!(load_dir(&concept.join("MinimalTasks")).len(), 16);
}

#[test]
fn kaggle_files_load_and_match_the_repositories() {
    let (Some(k), Some(a1)) = (common::shared_data("trm-kaggle-combined"), common::shared_data("arc-agi-1")) else {
        return;
    };
    for (subset, n) in
        [("training", 400), ("evaluation", 400), ("training2", 1000), ("evaluation2", 120), ("concept", 160)]
    {
        let tasks = kaggle(&k, subset);
        assert_eq!(tasks.len(), n, "{subset}");
        assert!(tasks.iter().all(|t| t.test.iter().all(|p| p.output.is_some())), "{subset}: solutions attached");
    }
    // Same tasks as the repository; demo order kept, so the tasks are equal outright.
    let mut repo = load_dir(&a1.join("evaluation"));
    repo.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(kaggle(&k, "evaluation"), repo);
    let (train, test) = arc::load_trm_recipe(&k, 1).unwrap();
    assert_eq!((train.len(), test.len()), (560, 400));
}

#[test]
fn voting_evaluator_on_arc_agi_1_evaluation() {
    let Some(k) = common::shared_data("trm-kaggle-combined") else { return };
    let tasks = kaggle(&k, "evaluation");
    let config = ArcConfig { augmentations: 3, translate: true, retries_factor: 5, seed: 0, side: 30 };
    let d = arc::build_datasets(&[], &tasks, &config);
    let mut perfect = ArcEvaluator::new(&d.test, &d.test_tasks);
    let mut echo = ArcEvaluator::new(&d.test, &d.test_tasks);
    for i in 0..d.test.len() {
        perfect.record(i, d.test.labels(i), 0.5).unwrap();
        echo.record(i, d.test.inputs(i), 0.5).unwrap();
    }
    let p = perfect.scores(&[1, 2]);
    assert_eq!((p.pass_at(1), p.pass_at(2), p.per_task.len()), (Some(1.0), Some(1.0), 400));
    // Echoing the input is right exactly where a test output equals its input.
    let expected = tasks
        .iter()
        .map(|t| t.test.iter().filter(|p| p.output.as_ref() == Some(&p.input)).count() as f64 / t.test.len() as f64)
        .sum::<f64>()
        / tasks.len() as f64;
    let e = echo.scores(&[1, 2]);
    assert!((e.pass_at(1).unwrap() - expected).abs() < 1e-12, "{:?} vs {expected}", e.pass_at(1));
    // And a blank canvas crops to an empty grid, which is never right.
    let mut blank = ArcEvaluator::new(&d.test, &d.test_tasks);
    for i in 0..d.test.len() {
        blank.record(i, &vec![canvas::PAD; canvas::SEQ_LEN], 1.0).unwrap();
    }
    assert_eq!(blank.scores(&[2]).overall, vec![0.0]);
    // Right only on the unaugmented version, blank on the 3 others: the blank wins the vote, the answer is second.
    // Restricted to tasks whose id starts with 0-7, the score is exactly the share of such tasks.
    let mut runner_up = ArcEvaluator::new(&d.test, &d.test_tasks);
    for i in 0..d.test.len() {
        let name = d.test.identifier_name(d.test.puzzle_id(i));
        let right = !name.contains("|||") && name.starts_with(|c: char| ('0'..='7').contains(&c));
        let prediction = if right { d.test.labels(i).to_vec() } else { vec![canvas::PAD; canvas::SEQ_LEN] };
        runner_up.record(i, &prediction, 0.5).unwrap();
    }
    let share = tasks.iter().filter(|t| t.id.starts_with(|c: char| ('0'..='7').contains(&c))).count() as f64 / 400.0;
    let r = runner_up.scores(&[1, 2]);
    assert!(share > 0.3 && share < 0.7, "{share}");
    assert_eq!(r.pass_at(1), Some(0.0));
    assert!((r.pass_at(2).unwrap() - share).abs() < 1e-12, "{:?} vs {share}", r.pass_at(2));
}

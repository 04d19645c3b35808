//! The solver agrees with every answer of the shared Sudoku-Extreme-style files (`../shared/data/sudoku/`).
//!
//! `test_hard.csv` (5,000 rows) is checked in full. `train.csv` (93,104 rows) is checked on every 8th row by
//! default and in full by the ignored test `train_csv_every_row` (`cargo test -p loopgrad-puzzles --release --
//! --ignored`), which took about 40 s on the shared two-core machine.

mod common;

use loopgrad_puzzles::sudoku::{self, Solver, SudokuRecord};
use rayon::prelude::*;

/// Row numbers whose unique solution differs from the answer column (none expected).
fn disagreements(records: &[&SudokuRecord]) -> Vec<usize> {
    let shape = records[0].shape;
    records
        .par_iter()
        .map_with(Solver::new(shape), |solver, r| {
            let out = solver.count_solutions(&r.puzzle, 2);
            (out.count != 1 || out.solution.as_deref() != Some(&r.solution[..])).then_some(r.row)
        })
        .flatten()
        .collect()
}

fn check(file: &str, stride: usize) {
    let Some(dir) = common::shared_data("sudoku") else { return };
    let records = sudoku::read_csv(&dir.join(file), None).unwrap_or_else(|e| panic!("{e}"));
    let sample: Vec<&SudokuRecord> = records.iter().step_by(stride).collect();
    let bad = disagreements(&sample);
    assert!(bad.is_empty(), "{file}: rows {:?} disagree with the solver", &bad[..bad.len().min(10)]);
    println!("{file}: {} of {} rows checked, all unique and equal to the answer", sample.len(), records.len());
}

#[test]
fn test_hard_csv_every_row() {
    check("test_hard.csv", 1);
}

#[test]
fn test_easy_csv_every_row() {
    check("test_easy.csv", 1);
}

#[test]
fn train_csv_every_8th_row() {
    check("train.csv", 8);
}

#[test]
#[ignore = "about 40 s; run with --ignored"]
fn train_csv_every_row() {
    check("train.csv", 1);
}

//! Rank correlation between this crate's Sudoku rating and the tdoku ratings in `../shared/data/sudoku/`, and the
//! scale factor that puts it on tdoku's scale.
//!
//! Run: `cargo run --release -p loopgrad-puzzles --example sudoku_rating_calibration [FILE.csv] [MAX_ROWS]`
//! (FILE defaults to `../shared/data/sudoku/test_hard.csv` beside the workspace; all rows).

use loopgrad_puzzles::sudoku::{self, rating, Solver};
use std::path::PathBuf;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let default = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/sudoku/test_hard.csv");
    let path = args.get(1).map(PathBuf::from).unwrap_or(default);
    let max_rows: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(usize::MAX);
    let records = match sudoku::read_csv(&path, None) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let records = &records[..records.len().min(max_rows)];
    let tdoku: Vec<f64> = records.iter().map(|r| r.rating).collect();
    let mut solver = Solver::new(records[0].shape);
    println!("{} puzzles from {}", records.len(), path.display());

    let first_solution: Vec<f64> =
        records.iter().map(|r| solver.count_solutions(&r.puzzle, 1).stats.guesses as f64).collect();
    println!("first-solution guesses, exact string:  spearman {:.3}", rating::spearman(&first_solution, &tdoku));
    for samples in [1, 4, rating::SAMPLES, 16] {
        let start = Instant::now();
        let ours: Vec<f64> = records.iter().map(|r| rating::mean_guesses(&mut solver, &r.puzzle, samples)).collect();
        let us = start.elapsed().as_secs_f64() * 1e6 / records.len() as f64;
        let ratio = tdoku.iter().sum::<f64>() / ours.iter().sum::<f64>();
        println!(
            "uniqueness-search guesses, {samples:2} presentations: spearman {:.3}, tdoku/ours ratio of means {ratio:.3} ({us:.0} us/puzzle)",
            rating::spearman(&ours, &tdoku)
        );
        if samples == rating::SAMPLES {
            let quantile = |v: &[f64], p: f64| {
                let mut s = v.to_vec();
                s.sort_by(f64::total_cmp);
                s[((s.len() - 1) as f64 * p) as usize]
            };
            for p in [0.1, 0.25, 0.5, 0.75, 0.9, 0.99] {
                let (t, o) = (quantile(&tdoku, p), quantile(&ours, p));
                println!("    quantile {p:4}: tdoku {t:6.1}, ours {o:7.2}, ratio {:.3}", t / o);
            }
        }
    }
}

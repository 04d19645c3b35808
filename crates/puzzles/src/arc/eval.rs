//! TRM's ARC evaluation (`evaluators/arc.py`): for every test example (one test input under one augmentation),
//! crop the predicted canvas, undo the augmentation, and vote. Votes are pooled per (task, original test input);
//! candidates rank by vote count, then by the mean halt confidence of their votes (then by the grid, so results
//! are reproducible). A test input passes@k when its true output is among the top k candidates; a task scores
//! the fraction of its test inputs that pass; the overall score is the mean over tasks with known outputs.
//!
//! The votes can be written out ([`ArcEvaluator::ballots`]) and merged ([`ArcEvaluator::add_ballots`]), so that
//! shards of an evaluation run apart and score as one; the top candidates make an ARC Prize submission
//! ([`ArcEvaluator::submission`]).

use super::augment::Augmentation;
use super::canvas::crop;
use super::{Grid, Task};
use crate::example_set::ExampleSet;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Votes for one (task, test input): candidate grid -> (count, summed confidence).
type Ballot = HashMap<Grid, (u32, f64)>;

/// Collects predictions for the examples of an ARC test set.
pub struct ArcEvaluator<'a> {
    set: Option<&'a ExampleSet>,
    tasks: &'a [Task],
    votes: HashMap<(String, Grid), Ballot>,
}

/// The votes of one (task, test input), as written to a votes file: grids are ARC's lists of rows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BallotRecord {
    pub task: String,
    pub input: Vec<Vec<u8>>,
    pub candidates: Vec<CandidateRecord>,
}

/// One candidate grid of a ballot: its votes and the sum of their halt confidences.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CandidateRecord {
    pub grid: Vec<Vec<u8>>,
    pub votes: u32,
    pub confidence_sum: f64,
}

/// A grid as ARC's JSON lists of rows.
pub fn grid_rows(grid: &Grid) -> Vec<Vec<u8>> {
    grid.cells.chunks(grid.cols.max(1)).map(|r| r.to_vec()).collect()
}

/// The grid of ARC's lists of rows; `None` if they are ragged or hold a colour above 9. An empty list is the
/// empty grid (a crop with no colour at the corner).
pub fn rows_grid(rows: &[Vec<u8>]) -> Option<Grid> {
    let cols = rows.first().map_or(0, Vec::len);
    if rows.iter().any(|r| r.len() != cols || r.iter().any(|&c| c > 9)) {
        return None;
    }
    Some(Grid::new(if cols == 0 { 0 } else { rows.len() }, cols, rows.concat()))
}

/// One task's result.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskScore {
    pub task: String,
    /// `pass[j]`: fraction of the task's test inputs whose output is among the top `ks[j]` candidates.
    pub pass: Vec<f64>,
}

/// Scores per task and overall, for each k.
#[derive(Clone, Debug, PartialEq)]
pub struct ArcScores {
    pub ks: Vec<usize>,
    pub per_task: Vec<TaskScore>,
    /// Mean of `per_task[..].pass[j]`.
    pub overall: Vec<f64>,
    /// The scored tasks' test inputs, and `solved[j]` of them pass at `ks[j]`.
    pub test_inputs: usize,
    pub solved: Vec<usize>,
    /// Tasks without known outputs (not scored).
    pub unscored: usize,
}

impl ArcScores {
    /// The overall pass@k, if `k` was evaluated.
    pub fn pass_at(&self, k: usize) -> Option<f64> {
        self.ks.iter().position(|&x| x == k).map(|j| self.overall[j])
    }
}

impl<'a> ArcEvaluator<'a> {
    /// `set` is the test set built with `tasks` ([`super::ArcDatasets::test`] and `test_tasks`).
    pub fn new(set: &'a ExampleSet, tasks: &'a [Task]) -> Self {
        ArcEvaluator { set: Some(set), tasks, votes: HashMap::new() }
    }

    /// An evaluator that only merges votes recorded elsewhere ([`Self::add_ballots`]) and scores them.
    pub fn from_votes(tasks: &'a [Task]) -> Self {
        ArcEvaluator { set: None, tasks, votes: HashMap::new() }
    }

    /// Record the model's prediction (a `[900]` token canvas) for test example `example`, with its halt
    /// confidence (TRM: sigmoid of the halt logit). Errors if the example's identifier is not an ARC name.
    pub fn record(&mut self, example: usize, prediction: &[u8], halt_confidence: f64) -> Result<(), String> {
        let set = self.set.ok_or("this evaluator merges votes and has no test set to record into")?;
        let name = set.identifier_name(set.puzzle_id(example));
        let (task, aug) =
            Augmentation::parse_name(name).ok_or_else(|| format!("puzzle name `{name}` is not an ARC augmentation"))?;
        let input = aug.invert(&crop(set.inputs(example)));
        let predicted = aug.invert(&crop(prediction));
        let entry = self.votes.entry((task.to_string(), input)).or_default().entry(predicted).or_insert((0, 0.0));
        entry.0 += 1;
        entry.1 += halt_confidence;
        Ok(())
    }

    /// The candidates for one test input, best first: (grid, votes, mean confidence).
    pub fn ranking(&self, task: &str, input: &Grid) -> Vec<(Grid, u32, f64)> {
        let Some(ballot) = self.votes.get(&(task.to_string(), input.clone())) else { return Vec::new() };
        let mut ranked: Vec<(Grid, u32, f64)> =
            ballot.iter().map(|(g, &(n, sum))| (g.clone(), n, sum / n as f64)).collect();
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then(b.2.total_cmp(&a.2)).then(a.0.cmp(&b.0)));
        ranked
    }

    /// Every ballot, sorted by task, input and candidate (so that a votes file is the same from run to run).
    pub fn ballots(&self) -> Vec<BallotRecord> {
        let mut out: Vec<BallotRecord> = self
            .votes
            .iter()
            .map(|((task, input), ballot)| {
                let mut candidates: Vec<(&Grid, &(u32, f64))> = ballot.iter().collect();
                candidates.sort_by(|a, b| a.0.cmp(b.0));
                BallotRecord {
                    task: task.clone(),
                    input: grid_rows(input),
                    candidates: candidates
                        .into_iter()
                        .map(|(g, &(votes, confidence_sum))| CandidateRecord {
                            grid: grid_rows(g),
                            votes,
                            confidence_sum,
                        })
                        .collect(),
                }
            })
            .collect();
        out.sort_by(|a, b| (&a.task, &a.input).cmp(&(&b.task, &b.input)));
        out
    }

    /// Adds ballots recorded elsewhere (a shard's votes file). Errors name the ballot at fault.
    pub fn add_ballots(&mut self, ballots: &[BallotRecord]) -> Result<(), String> {
        for (i, b) in ballots.iter().enumerate() {
            let what = || format!("ballot {} (task {})", i + 1, b.task);
            let input = rows_grid(&b.input).ok_or_else(|| format!("{}: the input is not a grid of colours", what()))?;
            // Votes for another data set would score its tasks 0 without a word.
            let task = self
                .tasks
                .iter()
                .find(|t| t.id == b.task)
                .ok_or_else(|| format!("{}: no such task in the data", what()))?;
            if !task.test.iter().any(|p| p.input == input) {
                return Err(format!("{}: the input is none of the task's test inputs", what()));
            }
            let ballot = self.votes.entry((b.task.clone(), input)).or_default();
            for c in &b.candidates {
                let grid =
                    rows_grid(&c.grid).ok_or_else(|| format!("{}: a candidate is not a grid of colours", what()))?;
                if c.votes == 0 || !c.confidence_sum.is_finite() {
                    return Err(format!(
                        "{}: a candidate has {} votes, confidence sum {}",
                        what(),
                        c.votes,
                        c.confidence_sum
                    ));
                }
                let entry = ballot.entry(grid).or_insert((0, 0.0));
                entry.0 += c.votes;
                entry.1 += c.confidence_sum;
            }
        }
        Ok(())
    }

    /// The ARC Prize submission: task id -> one `{"attempt_1": grid, "attempt_2": grid, ...}` per test input, in
    /// order, holding the top `attempts` candidates (the first repeated when there are fewer, as TRM pads; an
    /// empty grid `[]` when there is no prediction at all).
    pub fn submission(&self, attempts: usize) -> serde_json::Map<String, serde_json::Value> {
        let mut out = serde_json::Map::new();
        for task in self.tasks {
            let per_input: Vec<serde_json::Value> = task
                .test
                .iter()
                .map(|pair| {
                    let ranked = self.ranking(&task.id, &pair.input);
                    let mut grids: Vec<Vec<Vec<u8>>> =
                        ranked.iter().take(attempts).map(|(g, _, _)| grid_rows(g)).collect();
                    let first = grids.first().cloned().unwrap_or_default();
                    grids.resize(attempts, first);
                    let attempts: serde_json::Map<String, serde_json::Value> = grids
                        .into_iter()
                        .enumerate()
                        .map(|(i, g)| (format!("attempt_{}", i + 1), serde_json::json!(g)))
                        .collect();
                    serde_json::Value::Object(attempts)
                })
                .collect();
            out.insert(task.id.clone(), serde_json::Value::Array(per_input));
        }
        out
    }

    /// pass@k for each `k` in `ks`, per task and overall.
    pub fn scores(&self, ks: &[usize]) -> ArcScores {
        let mut per_task = Vec::new();
        let (mut unscored, mut test_inputs, mut solved) = (0, 0, vec![0; ks.len()]);
        for task in self.tasks {
            if task.test.iter().any(|p| p.output.is_none()) {
                unscored += 1;
                continue;
            }
            let mut pass = vec![0.0; ks.len()];
            for pair in &task.test {
                let ranked = self.ranking(&task.id, &pair.input);
                let position = ranked.iter().position(|(g, _, _)| Some(g) == pair.output.as_ref());
                for (j, &k) in ks.iter().enumerate() {
                    if position.is_some_and(|p| p < k) {
                        pass[j] += 1.0 / task.test.len() as f64;
                        solved[j] += 1;
                    }
                }
            }
            test_inputs += task.test.len();
            per_task.push(TaskScore { task: task.id.clone(), pass });
        }
        let overall = (0..ks.len())
            .map(|j| per_task.iter().map(|t| t.pass[j]).sum::<f64>() / per_task.len().max(1) as f64)
            .collect();
        ArcScores { ks: ks.to_vec(), per_task, overall, unscored, test_inputs, solved }
    }
}

#[cfg(test)]
mod tests {
    use super::super::canvas::encode;
    use super::super::dataset::{build_datasets, ArcConfig};
    use super::super::{Pair, TestPair};
    use super::*;

    fn g(cells: &[u8]) -> Grid {
        Grid::new(1, cells.len(), cells.to_vec())
    }

    /// Four one-test-input tasks; only task "d"'s output is the 1x1 black grid.
    fn tasks() -> Vec<Task> {
        ["a", "b", "c", "d"]
            .iter()
            .enumerate()
            .map(|(i, id)| Task {
                id: id.to_string(),
                train: vec![Pair { input: g(&[1, 2]), output: g(&[2, 1]) }],
                test: vec![TestPair {
                    input: g(&[i as u8 + 1, 5]),
                    output: Some(if *id == "d" { g(&[0]) } else { g(&[5, i as u8 + 1]) }),
                }],
            })
            .collect()
    }

    fn config() -> ArcConfig {
        ArcConfig { augmentations: 7, translate: false, retries_factor: 5, seed: 3, side: 30 }
    }

    #[test]
    fn perfect_predictor_scores_100_and_constant_predictor_25() {
        let tasks = tasks();
        let d = build_datasets(&[], &tasks, &config());
        let mut perfect = ArcEvaluator::new(&d.test, &d.test_tasks);
        let mut constant = ArcEvaluator::new(&d.test, &d.test_tasks);
        let black = encode(&g(&[0]), 30, 0, 0);
        for i in 0..d.test.len() {
            perfect.record(i, d.test.labels(i), 0.9).unwrap();
            constant.record(i, &black, 0.5).unwrap();
        }
        let (perfect, constant) = (perfect.scores(&[1, 2]), constant.scores(&[1, 2]));
        assert_eq!(perfect.overall, vec![1.0, 1.0]);
        assert_eq!((perfect.test_inputs, perfect.solved), (4, vec![4, 4]));
        // Black is fixed by every augmentation, so the constant predictor is right exactly on task d: 1 of 4.
        assert_eq!(constant.overall, vec![0.25, 0.25]);
        assert_eq!((constant.test_inputs, constant.solved), (4, vec![1, 1]));
    }

    #[test]
    fn votes_then_confidence_decide() {
        let tasks = tasks();
        let d = build_datasets(&[], &tasks[..1], &config());
        let versions = d.test.len();
        assert_eq!(versions, 8);
        // Right answer on 3 versions; one wrong grid on 3 versions with confidence 0.8; another on 2 with 1.0.
        // Wrong grids are given in the original frame and augmented like the example, so their votes pool.
        let in_frame = |i: usize, grid: &Grid| {
            let (_, aug) = Augmentation::parse_name(d.test.identifier_name(d.test.puzzle_id(i))).unwrap();
            encode(&aug.apply(grid), 30, 0, 0)
        };
        let run = |right_conf: f64| {
            let mut e = ArcEvaluator::new(&d.test, &d.test_tasks);
            for i in 0..versions {
                match i {
                    0..=2 => e.record(i, d.test.labels(i), right_conf).unwrap(),
                    3..=5 => e.record(i, &in_frame(i, &g(&[7, 7, 3])), 0.8).unwrap(),
                    _ => e.record(i, &in_frame(i, &g(&[8])), 1.0).unwrap(),
                }
            }
            assert_eq!(e.ranking("a", &tasks[0].test[0].input).len(), 3);
            e.scores(&[1, 2, 3])
        };
        // Tie on votes (3 v 3): confidence breaks it.
        assert_eq!(run(0.9).overall, vec![1.0, 1.0, 1.0]);
        assert_eq!(run(0.7).overall, vec![0.0, 1.0, 1.0]);
        assert_eq!(run(0.7).per_task[0].task, "a");
    }

    #[test]
    fn ballots_written_and_merged_in_parts_score_as_the_whole() {
        let tasks = tasks();
        let d = build_datasets(&[], &tasks, &config());
        let mut whole = ArcEvaluator::new(&d.test, &d.test_tasks);
        let (mut first, mut second) =
            (ArcEvaluator::new(&d.test, &d.test_tasks), ArcEvaluator::new(&d.test, &d.test_tasks));
        for i in 0..d.test.len() {
            let prediction = if i % 3 == 0 { d.test.labels(i).to_vec() } else { d.test.inputs(i).to_vec() };
            whole.record(i, &prediction, 0.1 * (i % 7) as f64).unwrap();
            let part = if i < d.test.len() / 2 { &mut first } else { &mut second };
            part.record(i, &prediction, 0.1 * (i % 7) as f64).unwrap();
        }
        let mut merged = ArcEvaluator::from_votes(&d.test_tasks);
        let json = serde_json::to_string(&first.ballots()).unwrap();
        merged.add_ballots(&serde_json::from_str::<Vec<BallotRecord>>(&json).unwrap()).unwrap();
        merged.add_ballots(&second.ballots()).unwrap();
        assert_eq!(merged.scores(&[1, 2]).per_task, whole.scores(&[1, 2]).per_task);
        assert_eq!(merged.submission(2), whole.submission(2));
        assert!(merged.record(0, d.test.labels(0), 1.0).is_err());
        let mut bad = whole.ballots();
        bad[0].candidates[0].grid = vec![vec![1, 2], vec![3]];
        assert_eq!(merged.add_ballots(&bad).unwrap_err(), "ballot 1 (task a): a candidate is not a grid of colours");
        let mut other = whole.ballots();
        other[0].task = "zz".into();
        assert_eq!(merged.add_ballots(&other).unwrap_err(), "ballot 1 (task zz): no such task in the data");
        let mut moved = whole.ballots();
        moved[0].input = vec![vec![9, 9, 9], vec![9, 9, 9]];
        assert_eq!(
            merged.add_ballots(&moved).unwrap_err(),
            "ballot 1 (task a): the input is none of the task's test inputs"
        );
    }

    #[test]
    fn submission_pads_with_the_first_attempt() {
        let tasks = tasks();
        let d = build_datasets(&[], &tasks[..1], &config());
        let mut e = ArcEvaluator::new(&d.test, &d.test_tasks);
        for i in 0..d.test.len() {
            e.record(i, d.test.labels(i), 0.5).unwrap();
        }
        let s = e.submission(2);
        assert_eq!(serde_json::Value::Object(s).to_string(), r#"{"a":[{"attempt_1":[[5,1]],"attempt_2":[[5,1]]}]}"#);
        assert_eq!(rows_grid(&[]), Some(Grid::new(0, 0, vec![])));
        assert_eq!(rows_grid(&[vec![10]]), None);
    }
}

//! The records of `metrics.jsonl`, one JSON object per line, told apart by `kind`: `train` (one per logging
//! interval), `eval` (held-out scores; `final` marks the evaluation at the end of the run) and `error` (the step
//! that stopped the run, e.g. on a NaN loss). The run loop writes them, and `plot` and the study read them, through
//! these types only.

use crate::arc::ArcPass;
use crate::trainer::StepStats;
use crate::EvalResult;
use anyhow::{Context, Result};
use serde::{Deserialize, Deserializer, Serialize};
use std::path::Path;

/// One line of `metrics.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Record {
    Train(TrainRecord),
    Eval(EvalRecord),
    Error(ErrorRecord),
}

impl Record {
    /// The optimizer step the record was written at.
    pub fn step(&self) -> u64 {
        match self {
            Record::Train(r) => r.step,
            Record::Eval(r) => r.step,
            Record::Error(r) => r.step,
        }
    }
}

/// Training statistics averaged over one logging interval (`run.log_every` steps) ending at `step`. Accuracies and
/// `halt_steps` are over the slots that halted in the interval; `elapsed_s` counts from the start of this process's
/// training (a resumed run starts again from 0).
///
/// They are not a held-out score, nor a score of the training set: a slot's accuracy is taken at its last
/// supervision step with the live weights, after the optimizer has already stepped on that same example at each of
/// its earlier supervision steps. They can run far above the same run's scores on puzzles scored afresh (the
/// parameter axis's 16-layer net at D 96 and lr 1e-3: 93.3% token accuracy in its last train record; 38.5% with its
/// live weights on its validation split, 41.1% with its EMA on its 1,000 training puzzles), likely because a net
/// that fits its current batch quickly is scored on examples it has just stepped on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainRecord {
    pub step: u64,
    #[serde(deserialize_with = "number_or_null")]
    pub loss: f64,
    #[serde(deserialize_with = "number_or_null")]
    pub lm_loss: f64,
    #[serde(deserialize_with = "number_or_null")]
    pub q_halt_loss: f64,
    #[serde(deserialize_with = "number_or_null")]
    pub lr: f64,
    pub halted: usize,
    #[serde(deserialize_with = "number_or_null")]
    pub exact_accuracy: f64,
    #[serde(deserialize_with = "number_or_null")]
    pub token_accuracy: f64,
    #[serde(deserialize_with = "number_or_null")]
    pub halt_steps: f64,
    #[serde(deserialize_with = "number_or_null")]
    pub samples_per_s: f64,
    #[serde(deserialize_with = "number_or_null")]
    pub elapsed_s: f64,
}

/// Held-out scores at `step`, each example run for `eval_steps` supervision steps.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalRecord {
    pub step: u64,
    /// The evaluation at the end of the run (all held-out examples), as opposed to a periodic one.
    #[serde(rename = "final")]
    pub last: bool,
    pub examples: usize,
    #[serde(deserialize_with = "number_or_null")]
    pub exact_accuracy: f64,
    #[serde(deserialize_with = "number_or_null")]
    pub token_accuracy: f64,
    /// Over the tokens the answer changes ([`EvalResult::changed_token_accuracy`]); absent from records written
    /// before it was measured, and when no example has such a token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed_token_accuracy: Option<f64>,
    #[serde(deserialize_with = "number_or_null")]
    pub loss: f64,
    pub eval_steps: usize,
    /// An ARC run's final evaluation: the votes over the versions, scored (absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arc: Option<ArcPass>,
}

impl EvalRecord {
    pub fn new(step: u64, r: &EvalResult, last: bool) -> Self {
        EvalRecord {
            step,
            last,
            examples: r.examples,
            exact_accuracy: r.exact_accuracy,
            token_accuracy: r.token_accuracy,
            changed_token_accuracy: Some(r.changed_token_accuracy).filter(|a| a.is_finite()),
            loss: r.loss,
            eval_steps: r.steps,
            arc: None,
        }
    }
}

/// The error that stopped the run at `step`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorRecord {
    pub step: u64,
    pub message: String,
}

/// serde_json writes a non-finite f64 as `null`; it reads back as NaN.
pub(crate) fn number_or_null<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// Reads every record of a `metrics.jsonl`, naming the file and line of a malformed one.
pub fn read_records(path: &Path) -> Result<Vec<Record>> {
    let text = crate::rundir::read_text(path)?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).with_context(|| format!("{}: line {}: not a metrics record", path.display(), i + 1))
        })
        .collect()
}

/// The records of a `metrics.jsonl` that parse, skipping any other line (a line cut short by a kill); none when
/// the file is missing or not a regular file.
pub fn read_records_lenient(path: &Path) -> Vec<Record> {
    let Ok(text) = crate::rundir::read_text(path) else { return Vec::new() };
    text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

/// Training statistics accumulated over one logging interval, from which its [`TrainRecord`] is made.
#[derive(Default)]
pub struct LogInterval {
    steps: u64,
    loss: f64,
    lm_loss: f64,
    q_halt_loss: f64,
    lr: f64,
    halted: usize,
    exact: usize,
    correct: usize,
    valid: usize,
    halt_steps: u64,
    seconds: f64,
    samples: usize,
}

impl LogInterval {
    /// Adds one optimizer step that took `seconds` on a batch of `batch` examples.
    pub fn add(&mut self, s: &StepStats, seconds: f64, batch: usize) {
        self.steps += 1;
        self.loss += s.loss;
        self.lm_loss += s.lm_loss;
        self.q_halt_loss += s.q_halt_loss;
        self.lr = s.lr;
        self.halted += s.halted;
        self.exact += s.exact;
        self.correct += s.tokens_correct;
        self.valid += s.tokens_valid;
        self.halt_steps += s.halt_steps;
        self.seconds += seconds;
        self.samples += batch;
    }

    fn ratio(a: f64, b: f64) -> f64 {
        if b > 0.0 {
            a / b
        } else {
            0.0
        }
    }

    /// The interval's record, ending at `step`, `elapsed` seconds into training.
    pub fn record(&self, step: u64, elapsed: f64) -> TrainRecord {
        let n = self.steps.max(1) as f64;
        TrainRecord {
            step,
            loss: self.loss / n,
            lm_loss: self.lm_loss / n,
            q_halt_loss: self.q_halt_loss / n,
            lr: self.lr,
            halted: self.halted,
            exact_accuracy: Self::ratio(self.exact as f64, self.halted as f64),
            token_accuracy: Self::ratio(self.correct as f64, self.valid as f64),
            halt_steps: Self::ratio(self.halt_steps as f64, self.halted as f64),
            samples_per_s: Self::ratio(self.samples as f64, self.seconds),
            elapsed_s: elapsed,
        }
    }

    /// One line for a progress display.
    pub fn message(&self) -> String {
        let n = self.steps.max(1) as f64;
        format!(
            "loss {:.4} | token {:.1}% exact {:.1}% | halt {:.1} steps | {:.0} samples/s",
            self.loss / n,
            100.0 * Self::ratio(self.correct as f64, self.valid as f64),
            100.0 * Self::ratio(self.exact as f64, self.halted as f64),
            Self::ratio(self.halt_steps as f64, self.halted as f64),
            Self::ratio(self.samples as f64, self.seconds)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_keep_the_field_order_of_the_file_and_read_back() {
        let train = Record::Train(TrainRecord {
            step: 10,
            loss: 2.5,
            lm_loss: 2.0,
            q_halt_loss: 0.5,
            lr: 1e-4,
            halted: 3,
            exact_accuracy: 0.0,
            token_accuracy: 0.25,
            halt_steps: 4.0,
            samples_per_s: 100.0,
            elapsed_s: 1.5,
        });
        let line = serde_json::to_string(&train).unwrap();
        assert_eq!(
            line,
            r#"{"kind":"train","step":10,"loss":2.5,"lm_loss":2.0,"q_halt_loss":0.5,"lr":0.0001,"halted":3,"exact_accuracy":0.0,"token_accuracy":0.25,"halt_steps":4.0,"samples_per_s":100.0,"elapsed_s":1.5}"#
        );
        assert_eq!(serde_json::from_str::<Record>(&line).unwrap(), train);
        let eval = Record::Eval(EvalRecord::new(
            20,
            &EvalResult {
                examples: 5,
                exact_accuracy: 0.2,
                token_accuracy: 0.5,
                changed_token_accuracy: f64::NAN,
                loss: f64::NAN,
                steps: 16,
            },
            true,
        ));
        let line = serde_json::to_string(&eval).unwrap();
        assert_eq!(
            line,
            r#"{"kind":"eval","step":20,"final":true,"examples":5,"exact_accuracy":0.2,"token_accuracy":0.5,"loss":null,"eval_steps":16}"#
        );
        let Record::Eval(back) = serde_json::from_str(&line).unwrap() else { panic!("not an eval record") };
        assert!(back.last && back.loss.is_nan());
        let error = Record::Error(ErrorRecord { step: 3, message: "the loss became NaN".into() });
        assert_eq!(
            serde_json::to_string(&error).unwrap(),
            r#"{"kind":"error","step":3,"message":"the loss became NaN"}"#
        );
    }

    #[test]
    fn a_malformed_line_is_named_by_file_and_line() {
        let d = std::env::temp_dir().join(format!("loopgrad-records-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let path = d.join("metrics.jsonl");
        let good = r#"{"kind":"error","step":3,"message":"m"}"#;
        std::fs::write(&path, format!("{good}\n{{\"kind\":\"train\",\"step\":4}}\n")).unwrap();
        let err = format!("{:#}", read_records(&path).unwrap_err());
        assert!(err.starts_with(&format!("{}: line 2: not a metrics record", path.display())), "{err}");
        assert_eq!(read_records_lenient(&path).len(), 1);
        std::fs::remove_dir_all(&d).unwrap();
    }
}

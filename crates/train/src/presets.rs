//! Training presets: a model preset, the data it trains on, and the recipe. `default` is the main job
//! (`cargo run --release`): a CPU-scale TRM on freshly generated 6x6 Sudoku.
//!
//! The paper presets reproduce the published settings (batch 768, lr 1e-4, weight decay 1.0 on Sudoku and Maze,
//! 0.1 and puzzle-embedding lr 1e-2 on ARC, 2000 warmup steps, EMA 0.999). They do not fit this CPU in any
//! reasonable time (one paper-size TRM-MLP step of batch 768 is about 33 TFLOP); they exist so that the
//! configuration is one name away, to be run where the hardware allows or scaled down with `--set`.

use crate::config::{DataConfig, OptimConfig, RunConfig, TrainConfig};
use loopgrad_models::config::ModelConfig;
use loopgrad_nn::optim::{AdamAtan2Config, OptimizerConfig, SignSgdConfig};
use loopgrad_nn::schedule::LrSchedule;

/// ARC-AGI-1's task directories, as the shared data sits beside a checkout (run from the workspace root).
pub const SHARED_ARC: &str = "../shared/data/arc-agi-1";

/// TRM's Kaggle combined files, likewise.
pub const SHARED_KAGGLE: &str = "../shared/data/trm-kaggle-combined";

/// Every preset name, the default first.
pub fn names() -> Vec<&'static str> {
    vec![
        "default",
        "sudoku6-att",
        "sudoku6-hrm",
        "sudoku6-baseline",
        "sudoku9",
        "arc10",
        "smoke",
        "paper-trm-mlp-sudoku",
        "paper-trm-att-sudoku",
        "paper-trm-att-maze",
        "paper-trm-att-arc",
        "paper-hrm-sudoku",
    ]
}

fn model(name: &str) -> ModelConfig {
    loopgrad_models::presets::get(name).unwrap_or_else(|e| panic!("train preset refers to a missing model preset: {e}"))
}

fn sudoku6_data() -> DataConfig {
    DataConfig {
        task: "sudoku".into(),
        train_path: String::new(),
        test_path: String::new(),
        sudoku_box: "2x3".into(),
        sudoku_givens: [0, 0],
        maze_size: 0,
        maze_min_route: 0,
        train_count: 10_000,
        test_count: 1_000,
        augmentations: 0,
        seed: 1,
        heldout_disjoint: "symmetry".into(),
        arc_path: Vec::new(),
        arc_canvas: 30,
        validation_count: 0,
    }
}

fn cpu_optim() -> OptimConfig {
    OptimConfig {
        lr: 1e-3,
        dense: OptimizerConfig::AdamAtan2(AdamAtan2Config { beta1: 0.9, beta2: 0.95, weight_decay: 0.1 }),
        puzzle_emb_lr: 1e-2,
        puzzle_emb: SignSgdConfig { weight_decay: 0.1 },
        schedule: LrSchedule::constant(100),
        ema: 0.99,
        ema_bias_correction: false,
    }
}

fn cpu_run() -> RunConfig {
    RunConfig {
        batch_size: 64,
        // Measured: the default run reaches 97-99% held-out exact accuracy at step 1500 (README, "The main job").
        steps: 1500,
        act: true,
        time_limit_s: 0.0,
        eval_every: 500,
        eval_examples: 250,
        final_eval_examples: 0,
        eval_steps: 0,
        log_every: 10,
        checkpoint_every: 500,
        seed: 0,
        threads: 0,
    }
}

fn paper(model_name: &str, task: &str, weight_decay: f64, puzzle_emb_lr: f64) -> TrainConfig {
    let m = model(model_name);
    let mut data = sudoku6_data();
    data.task = task.into();
    match task {
        "sudoku" => {
            data.sudoku_box = "3x3".into();
            data.train_count = 1000;
            data.augmentations = 1000;
        }
        "maze" => {
            data.maze_size = 30;
            data.maze_min_route = 110;
            data.train_count = 1000;
        }
        _ => {
            // TRM's arc1concept-aug-1000: training + concept train whole, evaluation's demonstrations train.
            let kaggle = |subset: &str| format!("{SHARED_KAGGLE}/arc-agi_{subset}_challenges.json");
            data.arc_path = vec![kaggle("training"), kaggle("concept")];
            data.test_path = kaggle("evaluation");
            data.train_count = 0;
            data.test_count = 0;
            data.augmentations = 1000;
        }
    }
    TrainConfig {
        model: m,
        data,
        optim: OptimConfig {
            lr: 1e-4,
            dense: OptimizerConfig::AdamAtan2(AdamAtan2Config { beta1: 0.9, beta2: 0.95, weight_decay }),
            puzzle_emb_lr,
            puzzle_emb: SignSgdConfig { weight_decay },
            schedule: LrSchedule::constant(2000),
            ema: 0.999,
            ema_bias_correction: false,
        },
        run: RunConfig {
            batch_size: 768,
            steps: 60_000,
            eval_every: 5000,
            checkpoint_every: 5000,
            log_every: 100,
            ..cpu_run()
        },
    }
}

/// A preset by name.
pub fn get(name: &str) -> Option<TrainConfig> {
    let base = |m: &str| TrainConfig { model: model(m), data: sudoku6_data(), optim: cpu_optim(), run: cpu_run() };
    Some(match name {
        "default" => {
            // Generalisation from few puzzles, as TRM trains: 1,000 distinct puzzles, each also seen under 100
            // random symmetry transforms, held out against puzzles unseen up to symmetry. Measured (README, "The
            // main job"): 97.2%, 98.5% and 98.5% held-out exact over three model and data seeds; without the
            // transforms the same 1,000 puzzles are memorised (99.7% of them solved, 51.1% held-out).
            let mut c = base("trm-mlp-sudoku6-cpu");
            c.data.train_count = 1_000;
            c.data.augmentations = 100;
            c
        }
        "sudoku6-att" => base("trm-att-sudoku6-cpu"),
        "sudoku6-hrm" => base("hrm-sudoku6-cpu"),
        "sudoku6-baseline" => base("baseline-sudoku6-cpu"),
        "sudoku9" => {
            let mut c = base("trm-mlp-sudoku9-cpu");
            c.data.sudoku_box = "3x3".into();
            c.data.sudoku_givens = [30, 36];
            c
        }
        "arc10" => {
            // ARC-AGI-1's tasks whose every grid fits 10x10 (178 training, 77 evaluation), TRM's split.
            let mut c = base("trm-att-arc10-cpu");
            c.data = DataConfig {
                task: "arc".into(),
                arc_path: vec![format!("{SHARED_ARC}/training")],
                test_path: format!("{SHARED_ARC}/evaluation"),
                train_count: 0,
                test_count: 0,
                augmentations: 3,
                arc_canvas: 10,
                ..sudoku6_data()
            };
            c.run.steps = 4000;
            c.run.eval_every = 1000;
            c.run.eval_examples = 0;
            c.run.checkpoint_every = 250;
            c.run.log_every = 50;
            c
        }
        "smoke" => {
            let mut c = base("trm-mlp-sudoku6-cpu");
            c.data.sudoku_box = "2x2".into();
            c.data.train_count = 200;
            c.data.test_count = 50;
            // 200 minimal 4x4 puzzles cover nearly every symmetry class: held-out puzzles differ from training
            // ones, not their classes.
            c.data.heldout_disjoint = "exact".into();
            if let ModelConfig::Trm(m) = &mut c.model {
                m.seq_len = 16;
                m.vocab_size = 6;
                m.hidden_size = 16;
                m.halt_max_steps = 2;
            }
            c.run = RunConfig { batch_size: 8, steps: 6, eval_every: 0, eval_examples: 50, log_every: 2, ..cpu_run() };
            c
        }
        "paper-trm-mlp-sudoku" => paper("trm-mlp-sudoku", "sudoku", 1.0, 1e-4),
        "paper-trm-att-sudoku" => paper("trm-att-sudoku", "sudoku", 1.0, 1e-4),
        "paper-trm-att-maze" => paper("trm-att-maze", "maze", 1.0, 1e-4),
        "paper-trm-att-arc" => paper("trm-att-arc", "arc", 0.1, 1e-2),
        "paper-hrm-sudoku" => paper("hrm-sudoku", "sudoku", 1.0, 1e-4),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_builds_validates_and_round_trips_through_toml() {
        for name in names() {
            let c = get(name).unwrap_or_else(|| panic!("{name}"));
            c.validate_limits().unwrap_or_else(|e| panic!("{name}: {e}"));
            let back: TrainConfig = toml::from_str(&c.to_toml()).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(back, c, "{name}");
        }
        assert!(get("nope").is_none());
    }
}

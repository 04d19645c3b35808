//! The built-in second-edition plans (`plans/generalisation*.toml`, `plans/quick.toml`) as their comments and
//! `docs/study-second-edition.md` describe them: each stage's data, nets, rates and budgets against the stage it
//! derives from, so that an edit to one plan that breaks what a later stage assumes fails here.

use super::expand::Expansion;
use super::plan::{Budget, Plan};

/// The built-in plans of these names.
fn built_in<const N: usize>(names: [&str; N]) -> [Plan; N] {
    names.map(|name| Plan::built_in(name).unwrap_or_else(|e| panic!("{name}: {e:#}")))
}

#[test]
fn the_quick_plan_is_stage_2_at_a_quarter_of_its_budget() {
    let (quick, full) = (Plan::built_in("quick").unwrap(), Plan::built_in("generalisation").unwrap());
    assert_eq!((quick.tasks[0].steps, full.tasks[0].steps), (2000, 8000));
    // Everything but the budget and how often a run evaluates and checkpoints along the way is stage 2's.
    let along = |p: &Plan| {
        let mut p = p.clone();
        p.tasks[0].steps = 0;
        p.tasks[0].set.retain(|s| !s.starts_with("run.eval_every=") && !s.starts_with("run.checkpoint_every="));
        (p.seeds, p.threads, p.eval_steps, p.test_time_examples, p.vary_data_seed, p.tasks, p.conditions, p.questions)
    };
    assert_eq!(along(&quick), along(&full));
    assert!(quick.tasks[0].set.contains(&"run.eval_every=500".to_string()), "4 points along each 2,000-step run");
}

#[test]
fn the_size_plan_is_stage_2s_headline_comparison_at_other_data() {
    let (size, full) = (Plan::built_in("generalisation-size").unwrap(), Plan::built_in("generalisation").unwrap());
    assert_eq!((size.seeds, size.threads, size.vary_data_seed), (full.seeds, full.threads, full.vary_data_seed));
    assert_eq!((&size.eval_steps, size.test_time_examples), (&full.eval_steps, full.test_time_examples));
    let data = |s: &String| s.starts_with("data.train_count=") || s.starts_with("data.augmentations=");
    let stage2 = &full.tasks[0];
    let mut sizes = vec![];
    for task in &size.tasks {
        // Each task is stage 2's but for its training data.
        assert_eq!((&task.preset, task.steps), (&stage2.preset, stage2.steps), "{}", task.name);
        let (rest, rest2): (Vec<_>, Vec<_>) =
            (task.set.iter().filter(|s| !data(s)).collect(), stage2.set.iter().filter(|s| !data(s)).collect());
        assert_eq!(rest, rest2, "{}", task.name);
        sizes.push(task.set.iter().filter(|s| data(s)).cloned().collect::<Vec<_>>().join(" "));
        // Its conditions are stage 2's T2n2 and stack12 (and without augmentation stack2), at their rates.
        let archs: &[&str] =
            if task.name == "sudoku6-noaug" { &["T2n2", "stack2", "stack12"] } else { &["T2n2", "stack12"] };
        for arch in archs {
            let name = format!("{arch}-{}", task.name.trim_start_matches("sudoku6-"));
            let c = size.conditions.iter().find(|c| c.name == name).unwrap_or_else(|| panic!("{name}"));
            let c2 = full.conditions.iter().find(|c| c.name == *arch).unwrap();
            assert_eq!((&c.task, &c.preset, &c.set), (&task.name, &c2.preset, &c2.set), "{name}");
        }
    }
    assert_eq!(size.conditions.len(), 7);
    assert_eq!(
        sizes,
        [
            "data.train_count=250 data.augmentations=100",
            "data.train_count=4000 data.augmentations=100",
            "data.train_count=1000 data.augmentations=0"
        ]
    );
}

#[test]
fn the_maze_lr_plan_is_stage_1_on_mazes_with_attention() {
    let (maze, sudoku) =
        (Plan::built_in("generalisation-maze-lr").unwrap(), Plan::built_in("generalisation-lr").unwrap());
    assert_eq!((maze.seeds, maze.threads, maze.vary_data_seed), (sudoku.seeds, sudoku.threads, sudoku.vary_data_seed));
    // The same nets at the same rates, named alike and asked alike; only the task (and TRM's token mixer,
    // through the task's preset and model.mlp_t) differ.
    let arms =
        |p: &Plan| p.conditions.iter().map(|c| (c.name.clone(), c.preset.clone(), c.set.clone())).collect::<Vec<_>>();
    assert_eq!(arms(&maze), arms(&sudoku));
    let asked = |p: &Plan| p.questions.iter().map(|q| (q.id.clone(), q.conditions.clone())).collect::<Vec<_>>();
    assert_eq!(asked(&maze), asked(&sudoku));
    let task = &maze.tasks[0];
    assert_eq!(task.preset, "sudoku6-att");
    for s in ["data.task=maze", "model.mlp_t=false", "data.validation_count=250", "data.train_count=1000"] {
        assert!(task.set.iter().any(|t| t == s), "{s}");
    }
    // Every run builds: the data fits the model, and the set names only known fields.
    let runs = Expansion::new(&maze, 1).unwrap_or_else(|e| panic!("{e:#}"));
    for (run, config) in runs.runs.iter().zip(&runs.configs) {
        config.validate().unwrap_or_else(|e| panic!("{}: {e:#}", run.name));
        assert_eq!(config.model.io().seq_len, 100, "{}", run.name);
    }
}

#[test]
fn the_hierarchy_lr_plan_tunes_the_steps_from_hrm_to_trm_on_stage_1s_task() {
    use loopgrad_models::{GradWindow, ModelConfig, TrmVariant};
    let (hier, stage1) =
        (Plan::built_in("generalisation-hierarchy-lr").unwrap(), Plan::built_in("generalisation-lr").unwrap());
    // The same task, split, budget, seeds and rates as TRM's own tuning, whose rate it reuses.
    assert_eq!(hier.tasks, stage1.tasks);
    assert_eq!((hier.seeds, hier.vary_data_seed, &hier.eval_steps), (stage1.seeds, true, &stage1.eval_steps));
    let runs = Expansion::new(&hier, 1).unwrap_or_else(|e| panic!("{e:#}"));
    let mut arms = Vec::new();
    for (run, config) in runs.runs.iter().zip(&runs.configs) {
        config.validate().unwrap_or_else(|e| panic!("{}: {e:#}", run.name));
        let ModelConfig::Trm(m) = &config.model else { panic!("{}: not a TRM", run.name) };
        let rate = ["3e-4", "1e-3", "3e-3"].into_iter().find(|r| run.condition.ends_with(r)).unwrap();
        assert_eq!(config.optim.lr, rate.parse::<f64>().unwrap(), "{}", run.name);
        let arm = run.condition.strip_suffix(rate).unwrap().trim_end_matches('-');
        // One change per step of the chain: hrm -> sep-continue (the window) -> sep (the halting target).
        let want = match arm {
            "hrm" => (GradWindow::OneStep, true),
            "sep-continue" => (GradWindow::LastRecursion, true),
            "sep" => (GradWindow::LastRecursion, false),
            other => panic!("unexpected condition {other}"),
        };
        assert_eq!((m.variant, m.grad_window, m.q_continue), (TrmVariant::SeparateNets, want.0, want.1), "{arm}");
        // TRM's shape otherwise: 2-layer nets, T=2, n=2, 4 prefix slots, the token MLP.
        assert_eq!((m.num_layers, m.h_cycles, m.l_cycles, m.puzzle_emb_len, m.mlp_t), (2, 2, 2, 4, true));
        arms.push(arm.to_string());
    }
    arms.dedup();
    assert_eq!(arms, ["sep", "sep-continue", "hrm"]);
}

#[test]
fn the_hierarchy_plateau_plan_is_stage_1bs_treatment_of_the_hierarchy_nets() {
    let plateau = Plan::built_in("generalisation-hierarchy-plateau").unwrap();
    let (stage1, stage1b) =
        (Plan::built_in("generalisation-hierarchy-lr").unwrap(), Plan::built_in("generalisation-plateau").unwrap());
    // Stage 1b's task (stage 1's data and split, 8,000 steps, scored every 500), and stage 1's nets as they were.
    assert_eq!(plateau.tasks, stage1b.tasks);
    for c in &plateau.conditions {
        let tuned = stage1.conditions.iter().find(|t| t.name == c.name);
        assert_eq!(Some(c), tuned, "{}: as stage 1 trained it", c.name);
    }
    // Each of the three nets at two rates.
    assert_eq!(plateau.conditions.len(), 6);
    assert_eq!(plateau.questions.len(), 3);
}

#[test]
fn the_params_lr_plan_gives_10x_and_100x_nets_trms_training_flops() {
    let (plan, stage1) =
        (Plan::built_in("generalisation-params-lr").unwrap(), Plan::built_in("generalisation-lr").unwrap());
    let (task, tuned) = (&plan.tasks[0], &stage1.tasks[0]);
    assert_eq!((&task.preset, &task.set), (&tuned.preset, &tuned.set), "stage 1's data and validation split");
    assert_eq!((task.steps, task.flops_of.as_deref()), (8000, Some("T2n2")), "TRM's stage-2 budget");
    let runs = Expansion::new(&plan, 1).unwrap_or_else(|e| panic!("{e:#}"));
    let trm = crate::TrainConfig::preset("default").unwrap().model.param_count() as f64;
    let mut ratios = Vec::new();
    for (run, config) in runs.runs.iter().zip(&runs.configs) {
        config.validate().unwrap_or_else(|e| panic!("{}: {e:#}", run.name));
        let cell = runs.cell(&run.condition, Budget::Flops);
        let off = (cell.train_flops() - runs.flop_budgets["sudoku6-val"]).abs() / cell.train_flops();
        assert!(off < 1e-3, "{}: {off} away from TRM's FLOPs", run.name);
        ratios.push((config.model.param_count() as f64 / trm).round() as u64);
    }
    // The budget's own condition is not run; the 10x net is tuned over 3 rates, the 111x net over 4.
    assert!(runs.runs.iter().all(|r| r.condition != "T2n2"));
    assert_eq!(ratios, [10, 10, 10, 111, 111, 111, 111]);
}

#[test]
fn the_params_plan_is_stage_2_with_the_parameter_axis_nets_at_their_stage_1_rates() {
    let [plan, stage2, stage1] = built_in(["generalisation-params", "generalisation", "generalisation-params-lr"]);
    // Stage 2's task, seeds and evaluations, so that its TRM and 12-layer runs are this plan's too.
    assert_eq!(plan.tasks, stage2.tasks);
    assert_eq!((plan.seeds, plan.vary_data_seed, &plan.eval_steps), (5, true, &stage2.eval_steps));
    assert_eq!(plan.test_time_examples, stage2.test_time_examples);
    for reused in ["T2n2", "stack12"] {
        let find = |p: &Plan| p.conditions.iter().find(|c| c.name == reused).cloned();
        assert_eq!(find(&plan), find(&stage2), "{reused}: as stage 2 ran it");
    }
    // The large nets as stage 1 tuned them, at the rates it chose: the same overrides but for the rate.
    for (net, rate) in [("L16-D96", "3e-4"), ("L16-D352", "1e-3")] {
        let here = plan.conditions.iter().find(|c| c.name == net).unwrap();
        let tuned = stage1.conditions.iter().find(|c| c.name == format!("{net}-{rate}")).unwrap();
        assert_eq!((&here.preset, &here.set), (&tuned.preset, &tuned.set), "{net}");
    }
    // Which cells run: the large nets at TRM's FLOPs, and the 10x net also at TRM's steps.
    let runs = Expansion::new(&plan, 1).unwrap_or_else(|e| panic!("{e:#}"));
    let names: Vec<&str> = runs.runs.iter().map(|r| r.name.as_str()).collect();
    let stage2_runs = Expansion::new(&stage2, 1).unwrap();
    for reused in ["T2n2-8000st-s0", "stack12-8000st-s0"] {
        assert!(names.contains(&reused) && stage2_runs.runs.iter().any(|r| r.name == reused), "{reused}");
    }
    for (run, config) in runs.runs.iter().zip(&runs.configs) {
        config.validate().unwrap_or_else(|e| panic!("{}: {e:#}", run.name));
    }
    let mut large: Vec<&str> = names.iter().copied().filter(|n| n.starts_with("L16") && n.ends_with("-s0")).collect();
    large.sort();
    assert_eq!(large, ["L16-D352-291st-s0", "L16-D96-2667st-s0", "L16-D96-8000st-s0"]);
    assert_eq!(names.len(), 5 * 5, "T2n2, stack12 and the three large-net cells, 5 seeds each");
}

#[test]
fn the_direct_lr_plan_takes_the_outer_loop_from_stage_2s_trm_and_12_layer_net() {
    let [plan, stage1b, stage2] = built_in(["generalisation-direct-lr", "generalisation-plateau", "generalisation"]);
    // Stage 1b's task: the validation split, 8,000 steps, scored every 500.
    assert_eq!(plan.tasks, stage1b.tasks);
    let runs = Expansion::new(&plan, 1).unwrap_or_else(|e| panic!("{e:#}"));
    for (run, config) in runs.runs.iter().zip(&runs.configs) {
        config.validate().unwrap_or_else(|e| panic!("{}: {e:#}", run.name));
        let (base, rate) = run.condition.split_once("-nsup1-").expect("every net has one supervision step");
        // Stage 2's net but for the rate and the outer loop: the same overrides, then N_sup 1 and the rate.
        let twin = stage2.conditions.iter().find(|c| c.name == base).unwrap();
        let here = plan.conditions.iter().find(|c| c.name == run.condition).unwrap();
        let mut want: Vec<String> = twin.set.iter().filter(|s| !s.starts_with("optim.lr=")).cloned().collect();
        want.extend(["model.halt_max_steps=1".to_string(), format!("optim.lr={rate}")]);
        assert_eq!((&here.preset, &here.set), (&twin.preset, &want), "{}", run.name);
        assert_eq!(config.model.halt_max_steps(), 1, "{}", run.name);
    }
    assert_eq!(runs.runs.len(), 6, "two nets at three rates");
}

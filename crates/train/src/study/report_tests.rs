//! Tests of the report (`report.rs`): its tables, wording and the answer's citations, on fabricated results.

use super::*;

/// A comparison sentence of two summaries as the Answer words it: "WHAT: exact +x.x points (a% vs b%, ...), means
/// over n and m seeds; ROWS.", or why there is no number.
fn difference(what: &str, a: Option<Summary>, b: Option<Summary>, rows: &str) -> String {
    let (Some(a), Some(b)) = (a, b) else {
        return format!("{what}: not available, a row has no finished runs ({rows}).");
    };
    format!("{what}: exact {}, means over {} and {} seeds; {rows}.", delta(a, b, None), a.n, b.n)
}

#[test]
fn differences_cite_rows_and_flag_noise() {
    let a = Summary::of(&[0.90, 0.94]);
    let b = Summary::of(&[0.80, 0.82]);
    let s = difference("A vs B", a, b, "rows q.1 and q.2");
    assert_eq!(
        s,
        "A vs B: exact +11.0 points (92.0% vs 81.0%, Welch p = 0.069, no detectable difference), means over 2 \
         and 2 seeds; rows q.1 and q.2."
    );
    let c = Summary::of(&[0.91, 0.80]);
    // scipy.stats.ttest_ind(equal_var=False): p = 0.435 here, 0.0693 for A vs B, 0.00366 for the 3-seed pair.
    assert!(difference("A vs C", a, c, "r").contains("Welch p = 0.44, no detectable difference"));
    let s = difference("A vs B", Summary::of(&[0.90, 0.94, 0.92]), Summary::of(&[0.80, 0.82, 0.81]), "r");
    assert!(s.contains("Welch p = 0.0037)"), "{s}");
    assert_eq!(interval(Summary::of(&[0.5])), "—");
    assert!(difference("A vs D", a, None, "r").contains("not available"));
    assert_eq!(percent(Summary::of(&[0.5])), "50.0");
    assert_eq!(sci(1234.0e9), "1.23e12");
}

#[test]
fn an_exact_p_value_is_also_given_holm_adjusted_over_the_reports_comparisons() {
    let (a, b) = (Summary::of(&[0.90, 0.94, 0.92]).unwrap(), Summary::of(&[0.80, 0.82, 0.81]).unwrap());
    let s = delta(a, b, Some((0.011, 3)));
    assert!(s.ends_with("(92.0% vs 81.0%, Welch p = 0.0037; Holm p = 0.011 over the report's 3 comparisons)"), "{s}");
    let s = delta(a, b, Some((0.06, 3)));
    assert!(
        s.ends_with("Welch p = 0.0037; Holm p = 0.06 over the report's 3 comparisons, not detectable once corrected)")
    );
    let c = Summary::of(&[0.91, 0.80]).unwrap();
    let s = delta(a, c, Some((0.87, 2)));
    assert!(s.ends_with("no detectable difference; Holm p = 0.87 over the report's 2 comparisons)"), "{s}");

    // The smoke plan compares T1n1 with T2n2 at two budgets. Run 5 missing leaves T2n2 a single seed, so neither
    // comparison has a test and nothing is adjusted; with every run finished (2 seeds a cell) the family is 2,
    // and each sentence carries its adjusted p.
    let ctx = || ReportContext { command: "x".into(), machine: Machine::this(), plots: vec![], wall_time: None };
    let mut results = fabricated();
    assert!(Holm::of(&results).adjusted.is_empty());
    assert!(!markdown(&results, &ctx()).contains("Holm p ="));
    results.runs[5].status = super::super::runner::RunStatus::Finished;
    results.runs[5].exact = Some(0.6);
    let family = Holm::of(&results);
    assert_eq!((family.family, family.adjusted.len()), (2, 2));
    let raw: Vec<f64> = [Budget::Steps, Budget::Flops]
        .iter()
        .map(|&b| welch(results.cell("T1n1", b).exact.unwrap(), results.cell("T2n2", b).exact.unwrap()).unwrap().p)
        .collect();
    let q = &results.expansion.plan.questions[0];
    for (budget, want) in [Budget::Steps, Budget::Flops].into_iter().zip(stats::holm(&raw)) {
        assert_eq!(family.get(q, budget, "T1n1"), Some((want, 2)));
    }
    let md = markdown(&results, &ctx());
    assert_eq!(md.matches("over the report's 2 comparisons").count(), 2, "{md}");
    // A second question asking the same of the same runs adds no test to the family.
    let mut again = results.expansion.plan.questions[0].clone();
    again.id = "again".into();
    results.expansion.plan.questions.push(again);
    let family = Holm::of(&results);
    assert_eq!((family.family, family.adjusted.len()), (2, 4));
}

/// The smoke plan with made-up finished runs (run i scores 0.1 (i + 1) exact), one run missing.
fn fabricated() -> Results {
    use super::super::collect::RunResult;
    use super::super::runner::RunStatus;
    use super::super::Expansion;
    let expansion = Expansion::new(&super::super::Plan::built_in("smoke").unwrap(), 1).unwrap();
    let runs = (0..expansion.runs.len())
        .map(|i| {
            let x = 0.1 * (i + 1) as f64;
            let finished = i != 5;
            RunResult {
                status: if finished { RunStatus::Finished } else { RunStatus::NotStarted },
                exact: finished.then_some(x),
                token: finished.then_some(0.5 + x / 2.0),
                // Run 0 was evaluated before changed cells were measured.
                changed: (finished && i != 0).then_some(x / 2.0),
                train_exact: finished.then_some(1.0),
                train_seconds: finished.then_some(1.0),
                examples_trained: finished.then_some(100.0 * (i + 1) as f64),
                test_time: if finished { [(1, x / 2.0), (2, x), (4, x)].into() } else { Default::default() },
                machine: None,
                curve: Default::default(),
            }
        })
        .collect();
    Results { expansion, runs, machines: Default::default() }
}

#[test]
fn a_plan_scored_on_a_validation_split_says_validation_not_held_out() {
    let ctx = || ReportContext { command: "x".into(), machine: Machine::this(), plots: vec![], wall_time: None };
    let mut results = fabricated();
    assert!(markdown(&results, &ctx()).contains("every accuracy is the held-out exact accuracy"));
    results.expansion.configs.iter_mut().for_each(|c| c.data.validation_count = 20);
    let md = markdown(&results, &ctx());
    assert!(md.contains("every accuracy is the validation exact accuracy"), "{md}");
    assert!(md.contains("percentage points of validation exact accuracy"), "{md}");
    assert!(md.contains("supervision steps on every validation puzzle"), "{md}");
    assert!(!md.contains("held-out exact") && !md.contains("Held-out exact"), "{md}");
    // A plan that mixes the two names both.
    results.expansion.configs[0].data.validation_count = 0;
    assert!(results.task_scored_set("sudoku4").starts_with("held-out or validation"));
    assert!(markdown(&results, &ctx()).contains("every accuracy is the held-out or validation (the tasks that set"));
}

#[test]
fn every_answer_number_is_in_the_rows_it_cites() {
    let ctx = ReportContext {
        command: "loopgrad study".into(),
        machine: Machine::this(),
        plots: vec![],
        wall_time: Some("1 s".into()),
    };
    let md = markdown(&fabricated(), &ctx);
    assert!(md.contains("\n- study wall time: 1 s\n- runs: "), "{md}");
    // The smoke plan's test-time evaluation scores every held-out puzzle; a plan with fewer says so.
    assert!(md.contains("supervision steps on every held-out puzzle\n"), "{md}");
    assert!(test_time_set(250, "held-out").starts_with("the first 250 held-out puzzles"));
    assert_eq!(test_time_set(0, "validation"), "every validation puzzle");
    let row = |id: &str| -> Vec<String> {
        let line = md.lines().find(|l| l.starts_with(&format!("| {id} |"))).unwrap_or_else(|| panic!("no row {id}"));
        line.split('|').map(|c| c.trim().to_string()).collect()
    };
    let answers: Vec<&str> = md.lines().skip_while(|l| *l != "## Answer").filter(|l| l.starts_with("- ")).collect();
    assert_eq!(answers.len(), 4, "{md}");
    for a in &answers[..2] {
        // "... exact +d points (A% vs B%...); token ...; rows X and Y."
        let (a_exact, b_exact) =
            a.split_once("exact ").unwrap().1.split_once('(').unwrap().1.split_once(" vs ").unwrap();
        let b_exact = b_exact.split(['%', ',']).next().unwrap();
        let a_exact = a_exact.trim_end_matches('%');
        let rows = a.rsplit_once("rows ").unwrap().1.trim_end_matches('.');
        let (x, y) = rows.split_once(" and ").unwrap();
        // Column 10 is the exact accuracy ("mean ± sd").
        assert!(row(x)[10].starts_with(a_exact), "{a} vs row {x}: {:?}", row(x));
        assert!(row(y)[10].starts_with(b_exact), "{a} vs row {y}: {:?}", row(y));
    }
    // Seeds 0 and 1 of T1n1 at equal steps are runs 0 and 3: 10% and 40%; T2n2 (runs 2 and 5) lost seed 1.
    assert!(row("recursion.1")[10].starts_with("25.0 ± 21.2"), "{:?}", row("recursion.1"));
    assert_eq!(row("recursion.2")[10], "30.0");
    assert_eq!(row("recursion.2")[14], "1/2");
    // Changed cells: only where every finished seed measured them (run 0 did not; run 2 did, 15%).
    assert_eq!((row("recursion.1")[13].as_str(), row("recursion.2")[13].as_str()), ("—", "15.0"));
    // Training-set exact 100% for every run: the gap is 100% minus the held-out mean, with its spread.
    assert_eq!((row("recursion.1")[15].as_str(), row("recursion.1")[16].as_str()), ("100.0 ± 0.0", "+75.0 ± 21.2"));
    assert_eq!(row("recursion.2")[16], "+70.0");
    assert_eq!(row("recursion.1")[11], "[-165.6, 215.6]", "t_0.975(1) = 12.706 times 21.2 / sqrt(2)");
    // Examples trained: runs 0 and 3 (100 (i + 1) each) average 250; T2n2's one finished run, run 2, 300.
    assert_eq!((row("recursion.1")[9].as_str(), row("recursion.2")[9].as_str()), ("250", "300"));
    // Test-time: T2n2 at 4 vs its N_sup 2, and the fewest steps that reach the best mean.
    assert!(
        answers[3].contains("T2n2 evaluated at 4 instead of its N_sup = 2 steps: exact +0.0 points (30.0% vs 30.0%)")
    );
    assert!(answers[3].contains("best at 2 steps (30.0%)"), "{}", answers[3]);
    assert!(
        answers[2].contains("(25.0% vs 25.0%, paired p = 1.00, no detectable difference), means over 2 seeds"),
        "{}",
        answers[2]
    );
    assert_eq!(row("test-time.2")[4..8], ["15.0", "30.0", "30.0", "1/2"]);
}

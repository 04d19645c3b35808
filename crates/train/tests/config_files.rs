//! A run's `config.toml` is read by `trace` and by the study's test-time evaluation as well as by `train`: every
//! reader refuses what `train` would.

use loopgrad_train::{overrides, TrainConfig};

/// A run's config.toml edited out of range is refused on reading, naming the file: `trace` and the study's
/// test-time evaluation rebuild data from it, and used to panic inside the generators.
#[test]
fn a_config_file_out_of_range_is_refused_on_reading_naming_the_file() {
    let dir = std::env::temp_dir().join(format!("loopgrad-config-limits-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let smoke = TrainConfig::preset("smoke").unwrap();
    let cases: [(&[&str], &str); 4] = [
        (&["data.task=maze", "data.maze_size=1"], "maze_size"),
        (&["data.sudoku_givens=[17, 17]"], "sudoku_givens"),
        (&["data.train_count=0", "data.validation_count=5"], "data.validation_count"),
        (&["data.validation_count=1000000000"], "data.validation_count 1000000000"),
    ];
    for (sets, want) in cases {
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        let bad = overrides::apply(&smoke, &sets).unwrap();
        let path = dir.join("config.toml");
        std::fs::write(&path, bad.to_toml()).unwrap();
        let err = TrainConfig::from_file(&path).unwrap_err().to_string();
        assert!(err.starts_with(&path.display().to_string()) && err.contains(want), "{sets:?}: {err}");
    }
    let path = dir.join("config.toml");
    std::fs::write(&path, smoke.to_toml().replace("heldout_disjoint = \"exact\"", "heldout_disjoint = \"bogus\""))
        .unwrap();
    assert!(TrainConfig::from_file(&path).unwrap_err().to_string().contains("data.heldout_disjoint"));
    std::fs::remove_dir_all(&dir).unwrap();
}

//! The deterministic A* reproduces the answer column of the shared Maze-Hard-style files exactly, the files pass
//! every row check, and writing them back gives the same bytes.

mod common;

use loopgrad_puzzles::maze;

fn check(file: &str) {
    let Some(dir) = common::shared_data("maze") else { return };
    let path = dir.join(file);
    let records = maze::read_csv(&path).unwrap_or_else(|e| panic!("{e}"));
    for r in &records {
        let label = maze::label(&r.question, r.size).expect("solvable");
        assert!(label == r.answer, "{file} row {}: A* label differs from the answer column", r.row);
        assert_eq!(maze::route_cells(&r.question, r.size), Some(r.rating as usize), "{file} row {}", r.row);
    }
    let bytes = std::fs::read(&path).unwrap();
    assert!(maze::csv::to_csv_text(&records).as_bytes() == bytes, "{file}: rewriting changes the bytes");
    println!("{file}: {} mazes, every A* label equals the answer", records.len());
}

#[test]
fn train_csv_labels_are_astar_plans() {
    check("train.csv");
}

#[test]
fn test_csv_labels_are_astar_plans() {
    check("test.csv");
}

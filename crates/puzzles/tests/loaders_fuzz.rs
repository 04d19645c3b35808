//! Random bytes, and random mutations of valid files, fed to every loader: an error or a value, never a panic.

use loopgrad_puzzles::{arc, cache, maze, sudoku};
use proptest::prelude::*;

const SUDOKU: &str = "source,question,answer,rating\nx,1...............,1234341221434321,0\n";
const MAZE: &str = "source,question,answer,rating\nm,\"S  G\",\"So G\",3\n";
const TASK: &str = r#"{"train":[{"input":[[1,2]],"output":[[3]]}],"test":[{"input":[[0]],"output":[[9]]}]}"#;
const KAGGLE: &str = r#"{"t":{"train":[{"input":[[1]],"output":[[2]]}],"test":[{"input":[[3]]}]}}"#;
const SOLUTIONS: &str = r#"{"t":[[[4]]]}"#;

fn feed_all(bytes: &[u8]) {
    let _ = sudoku::csv::parse_csv("f", bytes, None);
    let _ = sudoku::csv::parse_csv("f", bytes, Some(sudoku::BoxShape::B3X3));
    let _ = maze::csv::parse_csv("f", bytes);
    let _ = arc::load::parse_task_file("f", "t", bytes);
    let _ = arc::load::parse_kaggle("f", bytes, None);
    let _ = arc::load::parse_kaggle("f", KAGGLE.as_bytes(), Some(("s", bytes)));
    let _ = cache::decode(bytes, None);
}

/// A valid file with a few bytes overwritten, inserted or removed.
fn mutated(base: &'static str) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec((any::<usize>(), any::<u8>(), 0u8..3), 1..6).prop_map(move |edits| {
        let mut b = base.as_bytes().to_vec();
        for (at, byte, kind) in edits {
            let i = at % (b.len() + 1);
            match kind {
                0 if i < b.len() => b[i] = byte,
                1 => b.insert(i, byte),
                _ if i < b.len() => {
                    b.remove(i);
                }
                _ => {}
            }
        }
        b
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        feed_all(&bytes);
    }

    #[test]
    fn mutated_valid_files_never_panic(
        s in mutated(SUDOKU), m in mutated(MAZE), t in mutated(TASK), k in mutated(KAGGLE), sol in mutated(SOLUTIONS)
    ) {
        for b in [&s, &m, &t, &k] {
            feed_all(b);
        }
        let _ = arc::load::parse_kaggle("c", &k, Some(("s", &sol)));
    }
}

#[test]
fn the_unmutated_files_are_valid() {
    assert!(sudoku::csv::parse_csv("f", SUDOKU.as_bytes(), None).is_ok());
    assert!(maze::csv::parse_csv("f", MAZE.as_bytes()).is_ok());
    assert!(arc::load::parse_task_file("f", "t", TASK.as_bytes()).is_ok());
    assert!(arc::load::parse_kaggle("f", KAGGLE.as_bytes(), Some(("s", SOLUTIONS.as_bytes()))).is_ok());
}

//! The Sudoku-Extreme CSV format: `source,question,answer,rating`, a header, one puzzle per row; `question` is the
//! row-major grid with `.` for blanks, `answer` the full solution, `rating` a number (tdoku guesses in
//! Sudoku-Extreme; this crate's [`super::rating`] in files it writes).
//!
//! The reader checks every row: both grids have `n * n` characters of `.`/`1`..`n` (`answer` without blanks), the
//! answer follows the rules and keeps every given. [`check_unique`] additionally runs the solver to check that the
//! answer is the puzzle's only solution.

use super::{format_grid, parse_grid, solution_problem, solver::Solver, BoxShape};
use crate::csv::{self as csv4, Record};
use crate::error::{DataError, Location};
use rayon::prelude::*;
use std::path::Path;

/// One row of a Sudoku CSV.
#[derive(Clone, Debug, PartialEq)]
pub struct SudokuRecord {
    pub source: String,
    pub shape: BoxShape,
    /// Row-major grid, 0 = blank.
    pub puzzle: Vec<u8>,
    pub solution: Vec<u8>,
    pub rating: f64,
    /// Data row number in the file it was read from (1-based; 0 when generated).
    pub row: usize,
    /// Line of the file the row starts on (0 when generated).
    pub line: usize,
}

fn parse_record(file: &str, rec: &Record, shape: BoxShape) -> Result<SudokuRecord, DataError> {
    let puzzle = parse_grid(&rec.question, shape).map_err(|m| rec.error(file, format!("question {m}")))?;
    let solution = parse_grid(&rec.answer, shape).map_err(|m| rec.error(file, format!("answer {m}")))?;
    if let Some(problem) = solution_problem(&puzzle, &solution, shape) {
        return Err(rec.error(file, problem));
    }
    if rec.rating < 0.0 {
        return Err(rec.error(file, format!("rating {} is negative", rec.rating)));
    }
    Ok(SudokuRecord {
        source: rec.source.clone(),
        shape,
        puzzle,
        solution,
        rating: rec.rating,
        row: rec.row,
        line: rec.line,
    })
}

/// The box shapes a file that does not say its shape may have, from its first record's length, most likely
/// first: the conventional shape (16 -> 2x2, 36 -> 2x3, 81 -> 3x3), then the other shapes of that side with boxes
/// of 2 rows and columns or more (3x2, 2x4, 4x2). Boxes of one row or column are never inferred: every Latin
/// square would pass them, and a broken box rule would go unnoticed.
fn candidate_shapes(file: &str, record: &Record) -> Result<Vec<BoxShape>, DataError> {
    let len = record.question.chars().count();
    let mut shapes: Vec<BoxShape> = (2..=9)
        .filter(|n| n * n == len)
        .flat_map(|n| (2..n).filter(move |r| n % r == 0 && n / r >= 2).map(move |r| BoxShape::new(r, n / r)))
        .collect();
    shapes.sort_by_key(|s| (Some(*s) != BoxShape::for_cells(len), s.rows));
    if shapes.is_empty() {
        let sides = "16 (4x4), 36 (6x6), 64 (8x8) or 81 (9x9)";
        return Err(record.error(file, format!("question has {len} characters; expected {sides}")));
    }
    Ok(shapes)
}

/// Parse a whole file's bytes. Without `shape`, the first of [`candidate_shapes`] whose rules every record
/// follows; if none does, the error of the shape read furthest into the file, which names that shape. So every
/// file `loopgrad data sudoku --box` writes (3x2 and 2x4 included) reads back without being told its shape, and
/// a 3x2 file broken at row 5,000 is not reported as a 2x3 file broken at row 1.
pub fn parse_csv(file: &str, bytes: &[u8], shape: Option<BoxShape>) -> Result<Vec<SudokuRecord>, DataError> {
    let candidates = std::cell::RefCell::new(Vec::new());
    let most_likely = |r: &Record| {
        let shapes = candidate_shapes(file, r)?;
        let first = shapes[0];
        *candidates.borrow_mut() = shapes;
        Ok(first)
    };
    let parse = |shape| csv4::parse_rows(file, bytes, shape, most_likely, |r, shape| parse_record(file, r, shape));
    let first = parse(shape);
    let candidates = candidates.take();
    let Err(first_error) = first else { return first };
    if shape.is_some() || candidates.len() < 2 {
        return Err(first_error);
    }
    let row = |e: &DataError| match e.location {
        crate::error::Location::Row { row, .. } => row,
        _ => 0,
    };
    let mut furthest = (first_error, candidates[0]);
    for other in candidates.into_iter().skip(1) {
        match parse(Some(other)) {
            Ok(records) => return Ok(records),
            Err(e) if row(&e) > row(&furthest.0) => furthest = (e, other),
            Err(_) => {}
        }
    }
    let (mut error, read_as) = furthest;
    error.message = format!("{} (read as {read_as} boxes, the shape that fits the most rows)", error.message);
    Err(error)
}

/// Read a Sudoku CSV (see [`parse_csv`]).
pub fn read_csv(path: &Path, shape: Option<BoxShape>) -> Result<Vec<SudokuRecord>, DataError> {
    let bytes = crate::error::read_file(path)?;
    parse_csv(&path.display().to_string(), &bytes, shape)
}

/// Check that every puzzle's only solution is its answer (the row-level checks of [`parse_csv`] are assumed).
/// Runs on rayon's pool; the error names the first bad row.
pub fn check_unique(file: &str, records: &[SudokuRecord]) -> Result<(), DataError> {
    let Some(first) = records.first() else { return Ok(()) };
    let problems: Vec<Option<&str>> = records
        .par_iter()
        .map_with(Solver::new(first.shape), |solver, r| {
            let out = solver.count_solutions(&r.puzzle, 2);
            match out.count {
                0 => Some("question has no solution"),
                1 if out.solution.as_deref() == Some(&r.solution[..]) => None,
                1 => Some("answer is not the question's solution"),
                _ => Some("question has more than one solution"),
            }
        })
        .collect();
    match problems.iter().enumerate().find_map(|(i, p)| p.map(|p| (&records[i], p))) {
        Some((r, problem)) => Err(DataError::new(file, Location::Row { row: r.row, line: r.line }, problem)),
        None => Ok(()),
    }
}

/// The file's text for `records`.
pub fn to_csv_text(records: &[SudokuRecord]) -> String {
    let grids: Vec<(String, String)> =
        records.iter().map(|r| (format_grid(&r.puzzle), format_grid(&r.solution))).collect();
    csv4::to_text(records.iter().zip(&grids).map(|(r, (q, a))| (r.source.as_str(), q.as_str(), a.as_str(), r.rating)))
}

/// Write `records` to `path` atomically (temporary file, then rename).
pub fn write_csv(path: &Path, records: &[SudokuRecord]) -> std::io::Result<()> {
    loopgrad_tensor::atomic_file::write_atomically(path, to_csv_text(records).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::super::solver::Solver;
    use super::*;

    const HEADER: &str = "source,question,answer,rating\n";

    #[test]
    fn roundtrip_and_inference() {
        let text = format!("{HEADER}x,1...............,1234341221434321,2\n");
        let recs = parse_csv("f", text.as_bytes(), None).unwrap();
        assert_eq!(recs[0].shape, BoxShape::B2X2);
        assert_eq!(to_csv_text(&recs), text);
    }

    #[test]
    fn row_errors() {
        let bad = |row: &str| parse_csv("f.csv", format!("{HEADER}{row}\n").as_bytes(), None).unwrap_err().to_string();
        assert!(bad("x,1..............,1234341221434321,0").contains("expected 16 (4x4)"));
        assert!(bad(&format!("x,{},{},0", ".".repeat(25), "1".repeat(25))).contains("question has 25 characters"));
        assert!(bad("x,1...............,123434122143432,0").contains("answer has 15 characters"));
        assert!(bad("x,1..a............,1234341221434321,0").contains("question has bad character 'a'"));
        assert!(bad("x,2...............,1234341221434321,0").contains("where the question gives 2"));
        assert!(bad("x,1...............,1234341221434312,0").contains("appears twice"));
        assert!(bad("x,1...............,1234341221434321,-1").contains("negative"));
        assert!(bad("x,1..a............,1234341221434321,0").starts_with("f.csv: row 1 (line 2): "));
    }

    /// Files of 3x2 boxes (the transpose of 6x6's conventional 2x3), 2x4 and 4x2 read back without the shape
    /// given; a 4x4 answer that breaks only the box rule is still refused (no 1 x 4 boxes are inferred).
    #[test]
    fn other_box_shapes_are_inferred_from_the_first_answer() {
        let mut rng = loopgrad_tensor::Rng::new(3);
        for shape in [BoxShape::new(3, 2), BoxShape::new(2, 4), BoxShape::new(4, 2)] {
            let solution =
                super::super::generator::random_solution(&mut super::super::solver::Solver::new(shape), &mut rng);
            let mut puzzle = solution.clone();
            puzzle[0] = 0;
            let record = SudokuRecord { source: "g".into(), shape, puzzle, solution, rating: 0.0, row: 0, line: 0 };
            let text = to_csv_text(&[record]);
            assert_eq!(parse_csv("f", text.as_bytes(), None).unwrap()[0].shape, shape, "{text}");
        }
        // A 3x2 file broken at its second row is reported there, as 3x2, not as a 2x3 file broken at row 1.
        let mut rng = loopgrad_tensor::Rng::new(5);
        let shape = BoxShape::new(3, 2);
        let records: Vec<SudokuRecord> = (0..2)
            .map(|_| {
                let solution = super::super::generator::random_solution(&mut Solver::new(shape), &mut rng);
                SudokuRecord {
                    source: "g".into(),
                    shape,
                    puzzle: solution.clone(),
                    solution,
                    rating: 0.0,
                    row: 0,
                    line: 0,
                }
            })
            .collect();
        let broken = to_csv_text(&records).replacen(",0\n", ",-1\n", 2).replacen(",-1\n", ",0\n", 1);
        let err = parse_csv("f", broken.as_bytes(), None).unwrap_err().to_string();
        assert!(err.contains("row 2") && err.contains("read as 3x2 boxes"), "{err}");
        // Rows and columns hold 1..4, but the top-left box holds 1, 2, 2, 1.
        let latin = format!("{HEADER}x,1...............,1234214334124321,0\n");
        assert!(parse_csv("f", latin.as_bytes(), None).unwrap_err().to_string().contains("twice in box"));
    }

    #[test]
    fn uniqueness_check() {
        let text = format!("{HEADER}x,1...............,1234341221434321,0\n");
        let recs = parse_csv("f", text.as_bytes(), None).unwrap();
        assert_eq!(
            check_unique("f", &recs).unwrap_err().to_string(),
            "f: row 1 (line 2): question has more than one solution"
        );
    }
}

//! The Maze-Hard CSV format: `source,question,answer,rating`, a header, one maze per row; `question` and `answer`
//! are `size * size` characters (quoted, since they hold spaces), `rating` the route length in cells.
//!
//! The reader checks every row: a square length, the same size on every row, only `# SG` in questions (plus `o`
//! in answers), exactly one S and one G, an answer that changes only free cells and marks one shortest S->G path.

use super::{endpoints, score::valid_shortest_path, side_of, FREE, GOAL, PATH, START, WALL};
use crate::csv::{self as csv4, Record};
use crate::error::DataError;
use std::path::Path;

/// One row of a maze CSV.
#[derive(Clone, Debug, PartialEq)]
pub struct MazeRecord {
    pub source: String,
    pub size: usize,
    /// `size * size` characters of `# SG`, index `x + size * y`.
    pub question: Vec<u8>,
    /// The question with one shortest path's interior marked `o`.
    pub answer: Vec<u8>,
    /// Route length in cells (S and G included) in Maze-Hard and in generated files.
    pub rating: f64,
    /// Data row and file line it was read from (0 when generated).
    pub row: usize,
    pub line: usize,
}

fn check_chars(what: &str, text: &str, allowed: &[u8]) -> Result<Vec<u8>, String> {
    text.chars()
        .enumerate()
        .map(|(i, ch)| {
            if ch.is_ascii() && allowed.contains(&(ch as u8)) {
                Ok(ch as u8)
            } else {
                let list: String = allowed.iter().map(|&c| c as char).collect();
                Err(format!("{what} has bad character {ch:?} at position {} (allowed: {list:?})", i + 1))
            }
        })
        .collect()
}

fn parse_record(file: &str, rec: &Record, size: usize) -> Result<MazeRecord, DataError> {
    let err = |m: String| rec.error(file, m);
    for (what, text) in [("question", &rec.question), ("answer", &rec.answer)] {
        let len = text.chars().count();
        if len != size * size {
            return Err(err(format!("{what} has {len} characters, expected {} ({size}x{size})", size * size)));
        }
    }
    let question = check_chars("question", &rec.question, &[WALL, FREE, START, GOAL]).map_err(err)?;
    let answer = check_chars("answer", &rec.answer, &[WALL, FREE, START, GOAL, PATH]).map_err(err)?;
    endpoints(&question).map_err(|m| err(format!("question has {m}")))?;
    if let Some(i) = question.iter().zip(&answer).position(|(&q, &a)| q != a && !(q == FREE && a == PATH)) {
        return Err(err(format!(
            "answer changes cell x={} y={} from {:?} to {:?}; only free cells may become 'o'",
            i % size,
            i / size,
            question[i] as char,
            answer[i] as char
        )));
    }
    if !valid_shortest_path(&question, &answer, size) {
        return Err(err("answer's 'o' cells are not one shortest path from S to G".into()));
    }
    if rec.rating < 0.0 {
        return Err(err(format!("rating {} is negative", rec.rating)));
    }
    Ok(MazeRecord {
        source: rec.source.clone(),
        size,
        question,
        answer,
        rating: rec.rating,
        row: rec.row,
        line: rec.line,
    })
}

/// The side of the square grid `record`'s question spells out.
fn side_of_question(file: &str, record: &Record) -> Result<usize, DataError> {
    let len = record.question.chars().count();
    side_of(len).ok_or_else(|| record.error(file, format!("question has {len} characters, not a square number")))
}

/// Parse a whole file's bytes; the maze size comes from the first question's length.
pub fn parse_csv(file: &str, bytes: &[u8]) -> Result<Vec<MazeRecord>, DataError> {
    csv4::parse_rows(file, bytes, None, |r| side_of_question(file, r), |r, size| parse_record(file, r, size))
}

/// Read a maze CSV (see [`parse_csv`]).
pub fn read_csv(path: &Path) -> Result<Vec<MazeRecord>, DataError> {
    let bytes = crate::error::read_file(path)?;
    parse_csv(&path.display().to_string(), &bytes)
}

fn text(cells: &[u8]) -> String {
    cells.iter().map(|&c| c as char).collect()
}

/// The file's text for `records`.
pub fn to_csv_text(records: &[MazeRecord]) -> String {
    let grids: Vec<(String, String)> = records.iter().map(|r| (text(&r.question), text(&r.answer))).collect();
    csv4::to_text(records.iter().zip(&grids).map(|(r, (q, a))| (r.source.as_str(), q.as_str(), a.as_str(), r.rating)))
}

/// Write `records` to `path` atomically (temporary file, then rename).
pub fn write_csv(path: &Path, records: &[MazeRecord]) -> std::io::Result<()> {
    loopgrad_tensor::atomic_file::write_atomically(path, to_csv_text(records).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "source,question,answer,rating\n";

    #[test]
    fn roundtrip() {
        let text = format!("{HEADER}m,\"S  G\",\"So G\",3\n");
        let recs = parse_csv("f", text.as_bytes()).unwrap();
        assert_eq!((recs[0].size, recs[0].rating), (2, 3.0));
        assert_eq!(to_csv_text(&recs), text);
    }

    #[test]
    fn row_errors() {
        let bad = |row: &str| parse_csv("m.csv", format!("{HEADER}{row}\n").as_bytes()).unwrap_err().to_string();
        assert!(bad("m,\"S  \",\"S  \",1").contains("not a square number"));
        assert!(bad("m,\"S  G\",\"S  x\",1").contains("answer has bad character 'x'"));
        assert!(bad("m,\"S  S\",\"S  S\",1").contains("more than one 'S'"));
        assert!(bad("m,\"S #G\",\"S #G\",1").contains("not one shortest path"));
        assert!(bad("m,\"S  G\",\"Soo G\",1").contains("answer has 5 characters"));
        assert!(bad("m,\"S  G\",\"S #G\",1").contains("answer changes cell x=0 y=1"));
    }
}

//! The four-column CSV format shared by Sudoku-Extreme and Maze-Hard: `source,question,answer,rating`, a header
//! row, RFC 4180 quoting (a field is quoted when it holds a comma, a quote, a line break or a space; Maze-Hard's
//! questions are quoted because they hold spaces).
//!
//! This is a deliberately small reader: it knows exactly this format, reports the first problem with the file
//! name and the row, and never panics on any byte sequence.

use crate::error::{decode_utf8, excerpt, DataError, Location};
use std::path::Path;

/// The header every file of this format starts with.
pub const HEADER: [&str; 4] = ["source", "question", "answer", "rating"];

/// One data row, still as text.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    /// Data row number, counted from 1 after the header.
    pub row: usize,
    /// 1-based line of the file where the record starts.
    pub line: usize,
    pub source: String,
    pub question: String,
    pub answer: String,
    pub rating: f64,
}

impl Record {
    pub(crate) fn error(&self, file: &str, message: impl Into<String>) -> DataError {
        DataError::row(file, self.row, self.line, message)
    }
}

/// A record keeps at most this many fields (one more than the format has), and counts the rest: a line of 200
/// million commas would otherwise hold 200 million empty `String`s (4.8 GB) before it is found to be wrong.
const KEPT_FIELDS: usize = HEADER.len() + 1;

/// Splits CSV text into records of fields and hands each to `each` as it is split, with the line it starts on and
/// its number of fields (of which only the first [`KEPT_FIELDS`] are kept), stopping at the first error. One
/// record at a time, so that a file is checked row by row without all of its rows split at once (a 100 MB file of
/// tiny rows held gigabytes of fields that way). Lines end in LF, CRLF or CR.
fn split_records(
    file: &str,
    text: &str,
    mut each: impl FnMut(usize, Vec<String>, usize) -> Result<(), DataError>,
) -> Result<(), DataError> {
    let mut chars = text.chars().peekable();
    let mut line = 1;
    while chars.peek().is_some() {
        let start_line = line;
        let mut fields = Vec::new();
        let mut count = 0;
        let mut field = String::new();
        let mut quoted = false;
        let mut end_field = |fields: &mut Vec<String>, field: &mut String| {
            count += 1;
            let field = std::mem::take(field);
            if fields.len() < KEPT_FIELDS {
                fields.push(field);
            }
        };
        loop {
            match chars.next() {
                None => {
                    if quoted {
                        return Err(DataError::new(file, Location::Line(start_line), "unterminated quoted field"));
                    }
                    end_field(&mut fields, &mut field);
                    break;
                }
                Some('"') if quoted => {
                    if chars.peek() == Some(&'"') {
                        chars.next();
                        field.push('"');
                    } else {
                        quoted = false;
                    }
                }
                Some('"') if field.is_empty() => quoted = true,
                Some(c) if quoted => {
                    if c == '\n' {
                        line += 1;
                    }
                    field.push(c);
                }
                Some(',') => end_field(&mut fields, &mut field),
                // A line ends in LF, CRLF or a bare CR (classic Mac OS, and some spreadsheet exports).
                Some('\r') if chars.peek() == Some(&'\n') => {}
                Some('\n' | '\r') => {
                    line += 1;
                    end_field(&mut fields, &mut field);
                    break;
                }
                Some('"') => {
                    return Err(DataError::new(file, Location::Line(line), "stray quote inside an unquoted field"))
                }
                Some(c) => field.push(c),
            }
        }
        // A blank line (e.g. the file's last) carries no record.
        if !(fields.len() == 1 && fields[0].is_empty()) {
            each(start_line, fields, count)?;
        }
    }
    Ok(())
}

/// Parse a whole file's bytes: UTF-8, the header, four fields per row, a numeric rating. `file` names the input in
/// errors. Content checks (lengths, characters, consistency) belong to the puzzle's own reader.
pub fn parse(file: &str, bytes: &[u8]) -> Result<Vec<Record>, DataError> {
    let mut out = Vec::new();
    parse_each(file, bytes, |record| {
        out.push(record);
        Ok(())
    })?;
    Ok(out)
}

/// The rows of a puzzle file, each converted by `convert` as soon as it is read ([`parse_each`]), given the
/// grid's geometry: `given`, or else what `geometry` finds in the first row (the Sudoku box shape, the maze side).
pub fn parse_rows<T, G: Copy>(
    file: &str,
    bytes: &[u8],
    given: Option<G>,
    geometry: impl Fn(&Record) -> Result<G, DataError>,
    convert: impl Fn(&Record, G) -> Result<T, DataError>,
) -> Result<Vec<T>, DataError> {
    let mut found = given;
    let mut out = Vec::new();
    parse_each(file, bytes, |record| {
        let g = match found {
            Some(g) => g,
            None => *found.insert(geometry(&record)?),
        };
        out.push(convert(&record, g)?);
        Ok(())
    })?;
    Ok(out)
}

/// [`parse`], handing each row to `each` as soon as it is read and stopping at the first error (its or `each`'s),
/// so that a puzzle reader checks and converts a row before the next is split: a file is then held once as text
/// and once as puzzles, never as every row's fields at once. Returns the number of rows.
pub fn parse_each(
    file: &str,
    bytes: &[u8],
    mut each: impl FnMut(Record) -> Result<(), DataError>,
) -> Result<usize, DataError> {
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(DataError::new(file, Location::File, "file is empty"));
    }
    let text = decode_utf8(file, bytes)?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut rows = 0;
    let mut header_seen = false;
    split_records(file, text, |line, fields, count| {
        if !header_seen {
            header_seen = true;
            if fields != HEADER {
                let found = excerpt(&fields.join(","), 60);
                let message = format!("expected the header `{}`, found `{found}`", HEADER.join(","));
                return Err(DataError::new(file, Location::Line(line), message));
            }
            return Ok(());
        }
        let row = rows + 1;
        let [source, question, answer, rating]: [String; 4] = fields.try_into().map_err(|_| {
            DataError::row(file, row, line, format!("expected 4 fields (source,question,answer,rating), found {count}"))
        })?;
        let rating = match rating.trim().parse::<f64>() {
            Ok(r) if r.is_finite() => r,
            _ => {
                return Err(DataError::row(
                    file,
                    row,
                    line,
                    format!("rating `{}` is not a number", excerpt(&rating, 20)),
                ))
            }
        };
        rows = row;
        each(Record { row, line, source, question, answer, rating })
    })?;
    if rows == 0 {
        return Err(DataError::new(file, Location::File, "no data rows after the header"));
    }
    Ok(rows)
}

/// Read and parse a file (see [`parse`]).
pub fn read(path: &Path) -> Result<Vec<Record>, DataError> {
    let bytes = crate::error::read_file(path)?;
    parse(&path.display().to_string(), &bytes)
}

fn quote(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r', ' ']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}

/// Format a rating: integers without a decimal point (as Sudoku-Extreme and Maze-Hard write them).
pub fn format_rating(rating: f64) -> String {
    if rating.fract() == 0.0 && rating.abs() < 1e15 {
        format!("{}", rating as i64)
    } else {
        format!("{rating:.3}")
    }
}

/// Render rows `(source, question, answer, rating)` as the file's text, header included.
pub fn to_text<'a>(rows: impl IntoIterator<Item = (&'a str, &'a str, &'a str, f64)>) -> String {
    let mut out = HEADER.join(",");
    out.push('\n');
    for (source, question, answer, rating) in rows {
        out.push_str(&format!("{},{},{},{}\n", quote(source), quote(question), quote(answer), format_rating(rating)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_with_quotes_and_spaces() {
        let text = to_text([("a", "# S G", "x,\"y\"", 3.0), ("b", "..1", "221", 0.5)]);
        assert_eq!(text, "source,question,answer,rating\na,\"# S G\",\"x,\"\"y\"\"\",3\nb,..1,221,0.500\n");
        let recs = parse("t", text.as_bytes()).unwrap();
        assert_eq!(recs.len(), 2);
        assert_eq!((recs[0].question.as_str(), recs[0].answer.as_str()), ("# S G", "x,\"y\""));
        assert_eq!((recs[1].row, recs[1].line, recs[1].rating), (2, 3, 0.5));
    }

    #[test]
    fn errors_name_the_row() {
        let e = parse("f.csv", b"source,question,answer,rating\na,b,c,1\na,b,c\n").unwrap_err();
        assert_eq!(e.to_string(), "f.csv: row 2 (line 3): expected 4 fields (source,question,answer,rating), found 3");
        let e = parse("f.csv", b"source,question,answer,rating\na,b,c,x\n").unwrap_err();
        assert!(e.to_string().contains("row 1 (line 2): rating `x` is not a number"), "{e}");
        assert_eq!(parse("f.csv", b"").unwrap_err().to_string(), "f.csv: file is empty");
        assert!(parse("f.csv", b"a,b\n").unwrap_err().to_string().contains("line 1: expected the header"));
        assert!(parse("f.csv", b"source,question,answer,rating\n\"abc").is_err());
    }

    #[test]
    fn a_row_of_a_million_fields_keeps_five_and_counts_them_all() {
        // Was: every field kept, so a 200 MB line of commas needed 4.8 GB of empty strings (an allocation abort).
        let text = format!("{}\na{}\n", HEADER.join(","), ",".repeat(1_000_000));
        let mut records = Vec::new();
        split_records("f.csv", &text, |_, fields, count| {
            records.push((fields.len(), count));
            Ok(())
        })
        .unwrap();
        assert_eq!(records[1], (KEPT_FIELDS, 1_000_001));
        let e = parse("f.csv", text.as_bytes()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "f.csv: row 1 (line 2): expected 4 fields (source,question,answer,rating), found 1000001"
        );
    }

    #[test]
    fn rows_reach_the_reader_as_they_are_split() {
        // Was: the whole file split first (every row's fields held at once), so a later row's quoting error also
        // hid the first row's problem.
        let e = parse("f.csv", b"source,question,answer,rating\na,b,c,x\nb,\"unterminated").unwrap_err();
        assert_eq!(e.to_string(), "f.csv: row 1 (line 2): rating `x` is not a number");
        let mut seen = Vec::new();
        let text = b"source,question,answer,rating\na,b,c,1\nb,\"unterminated";
        let e = parse_each("f.csv", text, |r| {
            seen.push(r.source);
            Ok(())
        });
        assert_eq!(e.unwrap_err().to_string(), "f.csv: line 3: unterminated quoted field");
        assert_eq!(seen, ["a"]);
    }

    #[test]
    fn lines_may_end_in_lf_crlf_or_a_bare_cr() {
        for end in ["\n", "\r\n", "\r"] {
            let text = ["source,question,answer,rating", "a,..1,221,3", "b,\"x\ny\",z,1", ""].join(end);
            let recs = parse("t", text.as_bytes()).unwrap_or_else(|e| panic!("{end:?}: {e}"));
            assert_eq!(recs.len(), 2, "{end:?}");
            assert_eq!((recs[0].source.as_str(), recs[0].answer.as_str(), recs[0].rating), ("a", "221", 3.0));
            assert_eq!((recs[1].question.as_str(), recs[1].line), ("x\ny", 3), "{end:?}");
            let e = parse("f.csv", ["source,question,answer,rating", "a,b,c", ""].join(end).as_bytes()).unwrap_err();
            assert_eq!(
                e.to_string(),
                "f.csv: row 1 (line 2): expected 4 fields (source,question,answer,rating), found 3"
            );
        }
    }
}

//! The plain-language answer of a report (`loopgrad study --answer FILE`): markdown written by a person after
//! reading the tables, placed at the top of the report, and checked against the tables so that every number in
//! it points to a row.
//!
//! The rule, per paragraph or list item: every number in it must be read off a table row that the same paragraph
//! cites by its id (`recursion.3`), either as written in the row (its label, steps, parameters, accuracy, seeds,
//! or its table's title and question), or as the difference (`+4.2 points`) or ratio (`1.5x`) of two numbers of
//! the rows it cites. Numbers glued to letters (`T2n2`, `6x6`, `400st`) are names, not figures, and are not
//! checked. A paragraph that cites every row a mechanical Answer sentence of the report names (`rows recursion.2
//! and recursion.1`) may also use that sentence's numbers: a comparison's p-value is cited by the rows it compares.
//! A paragraph that fails names its line and the number at fault, and no report is written.

use std::collections::HashMap;

/// Checks `answer` against the rows of `report` (the markdown of `report::markdown`). Returns one message per
/// problem, each naming the answer's line.
pub fn check(answer: &str, report: &str) -> Result<(), Vec<String>> {
    let (rows, sentences) = (row_texts(report), comparisons(report));
    let mut problems = Vec::new();
    for (line, unit) in units(answer) {
        let mut cited: Vec<&str> = Vec::new();
        for id in row_ids(&unit) {
            if rows.contains_key(id) && !cited.contains(&id) {
                cited.push(id);
            }
        }
        let mut text = unit.clone();
        // Longest first, so that citing `q.1` does not eat the start of `q.12`.
        let mut by_length = cited.clone();
        by_length.sort_by_key(|id| std::cmp::Reverse(id.len()));
        for id in by_length {
            text = text.replace(id, " ");
        }
        let figures = numbers(&text);
        if figures.is_empty() {
            continue;
        }
        if cited.is_empty() {
            problems.push(format!(
                "line {line}: {} cites no table row (write its row id, e.g. `recursion.1`)",
                figures[0].shown()
            ));
            continue;
        }
        let compared = sentences.iter().filter(|(ids, _)| ids.iter().all(|id| cited.contains(id)));
        let texts = cited.iter().map(|id| rows[*id].as_str()).chain(compared.map(|(_, line)| *line));
        let pool: Vec<f64> = texts.flat_map(numbers).map(|n| n.value).collect();
        for n in figures.iter().filter(|n| !n.found_in(&pool)) {
            problems.push(format!(
                "line {line}: {} is not in row{} {} (nor a difference or ratio of their numbers)",
                n.shown(),
                if cited.len() == 1 { "" } else { "s" },
                cited.join(", ")
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// The report with the answer as its first section (after the provenance list, before the tables).
pub fn insert(report: &str, answer: &str) -> String {
    let section = format!(
        "## In plain language\n\n{}\n\nEvery number in this section is read off the table rows it cites \
         (`loopgrad study --answer` checks it).\n\n",
        answer.trim()
    );
    match report.find("\n## ") {
        Some(at) => format!("{}{section}{}", &report[..=at], &report[at + 1..]),
        None => format!("{report}\n{section}"),
    }
}

/// The mechanical Answer sentences of `report` that name rows, each with the rows it names.
fn comparisons(report: &str) -> Vec<(Vec<&str>, &str)> {
    let Some(at) = report.find("\n## Answer\n") else { return Vec::new() };
    let section = report[at + 1..].lines().skip(1).take_while(|l| !l.starts_with("## "));
    section.map(|l| (row_ids(l), l)).filter(|(ids, _)| !ids.is_empty()).collect()
}

/// Row id -> the text a number may be read from: the row itself, its table's heading, question and header.
fn row_texts(report: &str) -> HashMap<String, String> {
    let mut rows = HashMap::new();
    let mut context = String::new();
    for line in report.lines() {
        if line.starts_with("## ") {
            context = line.to_string();
        } else if let Some(rest) = line.strip_prefix("| ") {
            let id = rest.split(" |").next().unwrap_or("").trim();
            if is_row_id(id) {
                rows.insert(id.to_string(), format!("{context}\n{line}"));
            } else {
                // A table's header names its columns (`@8`, `@32` in the test-time tables): part of every row.
                context.push('\n');
                context.push_str(line);
            }
        } else if !line.trim().is_empty() && !context.is_empty() {
            context.push('\n');
            context.push_str(line);
        }
    }
    rows
}

/// `question.N`: letters, digits, `-` and `_`, a dot, digits.
fn is_row_id(s: &str) -> bool {
    let Some((q, n)) = s.rsplit_once('.') else { return false };
    !q.is_empty()
        && q.starts_with(|c: char| c.is_ascii_alphabetic())
        && q.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && !n.is_empty()
        && n.chars().all(|c| c.is_ascii_digit())
}

/// Every word of `text` shaped like a row id.
fn row_ids(text: &str) -> Vec<&str> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || "-_.".contains(c)))
        .map(|w| w.trim_end_matches('.'))
        .filter(|w| is_row_id(w))
        .collect()
}

/// Paragraphs and list items with the line each starts on (1-based); headings are skipped.
fn units(answer: &str) -> Vec<(usize, String)> {
    let mut out: Vec<(usize, String)> = Vec::new();
    let mut open = false;
    for (i, line) in answer.lines().enumerate() {
        let t = line.trim_start();
        let item = t.starts_with("- ") || t.starts_with("* ") || t.split_once(". ").is_some_and(|(n, _)| is_count(n));
        if t.is_empty() || t.starts_with('#') {
            open = false;
        } else if item || !open {
            out.push((i + 1, t.to_string()));
            open = true;
        } else if let Some(last) = out.last_mut() {
            last.1.push(' ');
            last.1.push_str(t);
        }
    }
    out
}

fn is_count(s: &str) -> bool {
    !s.is_empty() && s.len() <= 3 && s.chars().all(|c| c.is_ascii_digit())
}

/// A number as written in the answer.
#[derive(Debug)]
struct Number {
    written: String,
    value: f64,
    /// Followed by `x` (a ratio) or preceded by a sign or followed by "point" (a difference).
    ratio: bool,
    difference: bool,
}

impl Number {
    /// The number as written, cut to a readable length for a message (a line may hold thousands of digits).
    fn shown(&self) -> String {
        match self.written.char_indices().nth(24) {
            Some((cut, _)) => format!("{}... ({} characters)", &self.written[..cut], self.written.chars().count()),
            None => self.written.clone(),
        }
    }

    fn found_in(&self, pool: &[f64]) -> bool {
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * a.abs().max(1.0);
        if pool.iter().any(|&p| close(p, self.value)) {
            return true;
        }
        // Rounded to the written precision: half a unit of its last digit.
        let decimals = self.written.split_once('.').map_or(0, |(_, f)| f.len()) as i32;
        let half_unit = 0.5 * 10f64.powi(-decimals) + 1e-9;
        pool.iter().any(|&a| {
            pool.iter().any(|&b| {
                (self.difference && ((a - b).abs() - self.value.abs()).abs() <= half_unit)
                    || (self.ratio && b != 0.0 && (a / b - self.value).abs() <= half_unit)
            })
        })
    }
}

/// The numbers of `text`: digits with an optional fraction and thousands commas, not glued to a letter.
fn numbers(text: &str) -> Vec<Number> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let glued_before = i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_' || chars[i - 1] == '.');
        if !chars[i].is_ascii_digit() || glued_before {
            i += 1;
            continue;
        }
        let start = i;
        let digit_at = |k: usize| k < chars.len() && chars[k].is_ascii_digit();
        while digit_at(i) || (chars[i] == ',' && (1..=3).all(|d| digit_at(i + d)) && !digit_at(i + 4)) {
            i += 1;
        }
        if i < chars.len() && chars[i] == '.' && digit_at(i + 1) {
            i += 1;
            while digit_at(i) {
                i += 1;
            }
        }
        if i + 1 < chars.len() && chars[i] == 'e' && (digit_at(i + 1) || (chars[i + 1] == '-' && digit_at(i + 2))) {
            i += 2;
            while digit_at(i) {
                i += 1;
            }
        }
        let written: String = chars[start..i].iter().collect();
        let next = chars.get(i).copied().unwrap_or(' ');
        let after = chars.get(i + 1).copied().unwrap_or(' ');
        let ratio = next == 'x' && !after.is_alphanumeric();
        if (next.is_alphanumeric() || next == '_') && !ratio {
            continue; // a name such as 6x6 or 400st
        }
        let sign = start > 0 && matches!(chars[start - 1], '+' | '-' | '−');
        let rest: String = chars[i..].iter().take(8).collect();
        let difference = sign || rest.trim_start().starts_with("point");
        let value = written.replace(',', "").parse().unwrap_or(f64::NAN);
        out.push(Number { written, value, ratio, difference });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = "# Study results\n\n- command: `loopgrad study`\n\n## recursion: Depth (6x6)\n\n\
        Does looping help?\n\n| row | condition | steps | exact acc. (%) @8 | seeds |\n|---|---|---|---|---|\n\
        | recursion.1 | T1n1 (TRM T=1, n=1) | 1,200 | 42.5 ± 3.1 | 3/3 |\n\
        | recursion.2 | T2n2 (TRM T=2, n=2) | 400 | 85.0 ± 1.2 | 3/3 |\n\n## Answer\n\n### recursion: Depth (6x6)\n\n\
        - T1n1 vs T2n2: exact -42.5 points (42.5% vs 85.0%, Welch p = 0.00031); rows recursion.1 and recursion.2.\n";

    #[test]
    fn a_long_number_is_cut_in_the_message() {
        let answer = format!("It reached {}% (recursion.1).", "9".repeat(100_000));
        let problems = check(&answer, REPORT).unwrap_err();
        assert_eq!(problems, ["line 1: 999999999999999999999999... (100000 characters) is not in row recursion.1 (nor a difference or ratio of their numbers)"]);
    }

    #[test]
    fn numbers_read_off_cited_rows_pass() {
        let answer = "Looping helps: T=2, n=2 reached 85.0% against 42.5% for T=1, n=1 \
                      (recursion.2, recursion.1), +42.5 points, 2.0x, at 1,200 and 400 steps over 3 seeds, after 8 steps.\n\n\
                      # A heading with 7 in it\n\nNo figures here, only T2n2 and 6x6 names.";
        assert_eq!(check(answer, REPORT), Ok(()));
    }

    #[test]
    fn a_number_not_in_the_cited_rows_fails_with_its_line() {
        let answer = "Intro.\n\n- T=2, n=2 reached 85.0% (recursion.2).\n- T1n1 reached 42.5% (recursion.2).\n\
                      - Uncited: 85.0%.\n- Wrong difference: +40.0 points (recursion.1, recursion.2).";
        let problems = check(answer, REPORT).unwrap_err();
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].starts_with("line 4: 42.5 is not in row recursion.2"), "{}", problems[0]);
        assert!(problems[1].starts_with("line 5: 85.0 cites no table row"), "{}", problems[1]);
        assert!(problems[2].starts_with("line 6: 40.0 is not in rows recursion.1, recursion.2"), "{}", problems[2]);
    }

    #[test]
    fn a_p_value_is_read_off_the_mechanical_sentence_of_the_rows_it_cites() {
        assert_eq!(check("T=2, n=2 is ahead (Welch p = 0.00031; recursion.2, recursion.1).", REPORT), Ok(()));
        let problems = check("T=2, n=2 is ahead (Welch p = 0.00032; recursion.2).", REPORT).unwrap_err();
        assert!(problems[0].contains("0.00032 is not in row recursion.2"), "{problems:?}");
        // Only a paragraph that cites every row the sentence compares may use it.
        let problems = check("T=2, n=2 is ahead (Welch p = 0.00031; recursion.2).", REPORT).unwrap_err();
        assert!(problems[0].contains("0.00031 is not in row recursion.2"), "{problems:?}");
    }

    #[test]
    fn a_row_id_that_is_not_in_the_report_does_not_count_as_a_citation() {
        let problems = check("It reached 85.0% (recursion.9).", REPORT).unwrap_err();
        assert!(problems[0].contains("cites no table row"), "{problems:?}");
    }

    #[test]
    fn the_answer_goes_before_the_first_section() {
        let md = insert(REPORT, "\nShort answer.\n");
        let at = md.find("## In plain language\n\nShort answer.\n").expect("inserted");
        assert!(at < md.find("## recursion").unwrap());
        assert!(md.starts_with("# Study results\n\n- command"));
    }

    #[test]
    fn names_and_row_ids_are_not_figures() {
        let written: Vec<String> = numbers("T2n2 at 6x6, s9-T1n1, 400st; 3 seeds, 1.5x, 4.83e12, 160,898, 12.")
            .into_iter()
            .map(|n| n.written)
            .collect();
        assert_eq!(written, ["3", "1.5", "4.83e12", "160,898", "12"]);
        assert_eq!(row_ids("see recursion.2 and test-time.10."), ["recursion.2", "test-time.10"]);
    }
}

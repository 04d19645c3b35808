//! Loading ARC tasks, strictly: every problem is an error naming the file and the task.
//!
//! Formats:
//! - **Task JSON** (ARC-AGI-1/2 and ConceptARC repositories): one file per task, `{"train": [pairs], "test":
//!   [pairs]}`, a pair being `{"input": grid, "output": grid}`; the task id is the file stem. Other keys (11
//!   ARC-AGI-1 tasks carry `"name"`) are ignored.
//! - **Kaggle combined** (TRM's `kaggle/combined/`): `arc-agi_<subset>_challenges.json` maps task ids to tasks
//!   whose test pairs have only `"input"`; `arc-agi_<subset>_solutions.json` maps task ids to one output grid per
//!   test input.
//!
//! A grid is a non-empty list of non-empty rows of equal length, at most 30x30, of integers 0..=9.

use super::{Grid, Pair, Task, TestPair, MAX_SIDE};
use crate::error::{decode_utf8, read_file, DataError, Location};
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

/// The largest ARC JSON file read. Parsed into `serde_json::Value`s, a file takes up to 25 times its size in
/// memory (a 200 MB list of zeros asked for 4.8 GB); the largest real file, TRM's ARC-AGI-2 Kaggle training
/// challenges, is 4 MB.
pub const MAX_JSON_BYTES: usize = 64 << 20;

fn parse_json(file: &str, bytes: &[u8]) -> Result<Value, DataError> {
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(DataError::new(file, Location::File, "file is empty"));
    }
    if bytes.len() > MAX_JSON_BYTES {
        let message = format!("{} bytes, more than the {MAX_JSON_BYTES} an ARC JSON file may have", bytes.len());
        return Err(DataError::new(file, Location::File, message));
    }
    let text = decode_utf8(file, bytes)?;
    // Editors on Windows may start a UTF-8 file with a byte-order mark, which JSON itself does not allow.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let parsed = serde_json::from_str(text).map(|UniqueKeys(value)| value);
    parsed.map_err(|e| DataError::new(file, Location::File, format!("invalid JSON: {e}")))
}

/// A JSON value in which no object has the same key twice. `serde_json::Value` keeps the last of two equal keys
/// without a word, so a Kaggle file listing a task id twice would silently lose a task, and a pair with two
/// `"input"`s would silently train on one of them.
struct UniqueKeys(Value);

impl<'de> serde::Deserialize<'de> for UniqueKeys {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(UniqueKeysVisitor).map(UniqueKeys)
    }
}

struct UniqueKeysVisitor;

impl<'de> serde::de::Visitor<'de> for UniqueKeysVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut list = Vec::new();
        while let Some(UniqueKeys(v)) = seq.next_element()? {
            list.push(v);
        }
        Ok(Value::Array(list))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(serde::de::Error::custom(format!("key {key:?} appears twice in one object")));
            }
            let UniqueKeys(v) = map.next_value()?;
            object.insert(key, v);
        }
        Ok(Value::Object(object))
    }
}

/// A grid from JSON, or what is wrong with it (`what` names it: "train pair 2 input").
pub fn parse_grid(value: &Value, what: &str) -> Result<Grid, String> {
    let rows = value.as_array().ok_or_else(|| format!("{what} is not a list of rows"))?;
    if rows.is_empty() || rows.len() > MAX_SIDE {
        return Err(format!("{what} has {} rows, expected 1..={MAX_SIDE}", rows.len()));
    }
    let mut cells = Vec::new();
    let mut width = None;
    for (r, row) in rows.iter().enumerate() {
        let row = row.as_array().ok_or_else(|| format!("{what} row {} is not a list", r + 1))?;
        match width {
            None if row.is_empty() || row.len() > MAX_SIDE => {
                return Err(format!("{what} row 1 has {} cells, expected 1..={MAX_SIDE}", row.len()))
            }
            None => width = Some(row.len()),
            Some(w) if w != row.len() => {
                return Err(format!("{what} is ragged: row {} has {} cells, row 1 has {w}", r + 1, row.len()))
            }
            Some(_) => {}
        }
        for (c, v) in row.iter().enumerate() {
            match v.as_u64() {
                Some(colour) if colour <= 9 => cells.push(colour as u8),
                _ => return Err(format!("{what} cell ({}, {}) is {v}, colours are integers 0..=9", r + 1, c + 1)),
            }
        }
    }
    Ok(Grid::new(rows.len(), width.unwrap_or(0), cells))
}

fn field<'a>(obj: &'a Map<String, Value>, key: &str, what: &str) -> Result<&'a Value, String> {
    obj.get(key).ok_or_else(|| format!("{what} is missing key \"{key}\""))
}

/// Parse one task object. Test outputs are required when `test_outputs_required`.
fn parse_task(id: &str, value: &Value, test_outputs_required: bool) -> Result<Task, String> {
    let obj = value.as_object().ok_or("task is not a JSON object")?;
    let pairs = |key: &str| -> Result<&Vec<Value>, String> {
        let v = field(obj, key, "task")?;
        let list = v.as_array().ok_or_else(|| format!("\"{key}\" is not a list"))?;
        if list.is_empty() {
            return Err(format!("\"{key}\" has no pairs"));
        }
        Ok(list)
    };
    let mut train = Vec::new();
    for (i, p) in pairs("train")?.iter().enumerate() {
        let what = format!("train pair {}", i + 1);
        let p = p.as_object().ok_or_else(|| format!("{what} is not an object"))?;
        let input = parse_grid(field(p, "input", &what)?, &format!("{what} input"))?;
        let output = parse_grid(field(p, "output", &what)?, &format!("{what} output"))?;
        train.push(Pair { input, output });
    }
    let mut test = Vec::new();
    for (i, p) in pairs("test")?.iter().enumerate() {
        let what = format!("test pair {}", i + 1);
        let p = p.as_object().ok_or_else(|| format!("{what} is not an object"))?;
        let input = parse_grid(field(p, "input", &what)?, &format!("{what} input"))?;
        let output = match (p.get("output"), test_outputs_required) {
            (Some(v), _) => Some(parse_grid(v, &format!("{what} output"))?),
            (None, true) => return Err(format!("{what} is missing key \"output\"")),
            (None, false) => None,
        };
        test.push(TestPair { input, output });
    }
    Ok(Task { id: id.to_string(), train, test })
}

/// Parse one task-JSON file's bytes; `id` is its file stem.
pub fn parse_task_file(file: &str, id: &str, bytes: &[u8]) -> Result<Task, DataError> {
    let value = parse_json(file, bytes).map_err(|e| DataError { location: Location::Task(id.to_string()), ..e })?;
    parse_task(id, &value, true).map_err(|m| DataError::task(file, id, m))
}

/// The `*.json` files under `dir`, recursively. `visited` holds the canonical path of every directory listed so
/// far: a symbolic link back to one of them (a loop) is not followed again, so a walk always ends.
fn json_files(dir: &Path, visited: &mut Vec<PathBuf>, out: &mut Vec<PathBuf>) -> Result<(), DataError> {
    let canonical = std::fs::canonicalize(dir).map_err(|e| DataError::file(dir, format!("cannot list: {e}")))?;
    if visited.contains(&canonical) {
        return Ok(());
    }
    visited.push(canonical);
    let entries = std::fs::read_dir(dir).map_err(|e| DataError::file(dir, format!("cannot list: {e}")))?;
    for entry in entries {
        let path = entry.map_err(|e| DataError::file(dir, format!("cannot list: {e}")))?.path();
        if path.is_dir() {
            json_files(&path, visited, out)?;
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
    Ok(())
}

/// Every `*.json` task under `dir` (recursively), sorted by path.
pub fn load_task_dir(dir: &Path) -> Result<Vec<Task>, DataError> {
    let mut files = Vec::new();
    json_files(dir, &mut Vec::new(), &mut files)?;
    files.sort();
    if files.is_empty() {
        return Err(DataError::file(dir, "no .json task files"));
    }
    let kaggle = files.iter().find(|p| p.to_string_lossy().ends_with("_challenges.json"));
    if let Some(kaggle) = kaggle {
        return Err(DataError::file(
            kaggle,
            "a Kaggle combined file inside a directory of task files; pass the _challenges.json file itself",
        ));
    }
    files
        .iter()
        .map(|path| {
            let id = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            parse_task_file(&path.display().to_string(), &id, &read_file(path)?)
        })
        .collect()
}

/// Parse Kaggle challenges (and optionally solutions) bytes. Tasks come sorted by id.
pub fn parse_kaggle(
    challenges_file: &str,
    challenges: &[u8],
    solutions: Option<(&str, &[u8])>,
) -> Result<Vec<Task>, DataError> {
    let value = parse_json(challenges_file, challenges)?;
    let map = value
        .as_object()
        .ok_or_else(|| DataError::new(challenges_file, Location::File, "expected an object of task id -> task"))?;
    if map.is_empty() {
        return Err(DataError::new(challenges_file, Location::File, "no tasks"));
    }
    let mut tasks = Vec::new();
    for (id, task) in map {
        tasks.push(parse_task(id, task, false).map_err(|m| DataError::task(challenges_file, id, m))?);
    }
    if let Some((file, bytes)) = solutions {
        let value = parse_json(file, bytes)?;
        let sols = value
            .as_object()
            .ok_or_else(|| DataError::new(file, Location::File, "expected an object of task id -> output grids"))?;
        for task in &mut tasks {
            let err = |m: String| DataError::task(file, &task.id, m);
            let grids = sols.get(&task.id).ok_or_else(|| err("no solutions for this task".into()))?;
            let grids = grids.as_array().ok_or_else(|| err("solutions are not a list of grids".into()))?;
            if grids.len() != task.test.len() {
                return Err(err(format!("{} solutions for {} test inputs", grids.len(), task.test.len())));
            }
            for (i, (pair, grid)) in task.test.iter_mut().zip(grids).enumerate() {
                pair.output = Some(parse_grid(grid, &format!("solution {}", i + 1)).map_err(err)?);
            }
        }
        if let Some(extra) = sols.keys().find(|id| !map.contains_key(*id)) {
            return Err(DataError::task(file, extra, "has solutions but no challenge"));
        }
    }
    tasks.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(tasks)
}

/// The solutions file beside a Kaggle challenges file (`..._challenges.json` -> `..._solutions.json`).
pub fn solutions_path(challenges: &Path) -> Option<PathBuf> {
    let name = challenges.file_name()?.to_str()?;
    Some(challenges.with_file_name(name.strip_suffix("_challenges.json")?.to_string() + "_solutions.json"))
}

/// Load Kaggle challenges, with the solutions file beside them when it exists.
pub fn load_kaggle(challenges: &Path) -> Result<Vec<Task>, DataError> {
    let bytes = read_file(challenges)?;
    let sol_path = solutions_path(challenges).filter(|p| p.exists());
    let sol_bytes = sol_path.as_deref().map(read_file).transpose()?;
    let sol_name = sol_path.as_ref().map(|p| p.display().to_string());
    let solutions = sol_name.as_deref().zip(sol_bytes.as_deref());
    parse_kaggle(&challenges.display().to_string(), &bytes, solutions)
}

/// Load whatever `path` is: a directory of task files, a Kaggle `*_challenges.json` (solutions beside it are
/// used), or a single task file.
pub fn load_path(path: &Path) -> Result<Vec<Task>, DataError> {
    if path.is_dir() {
        return load_task_dir(path);
    }
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if name.ends_with("_challenges.json") {
        return load_kaggle(path);
    }
    if name.ends_with("_solutions.json") {
        return Err(DataError::file(path, "a Kaggle solutions file; pass the matching _challenges.json"));
    }
    let id = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    Ok(vec![parse_task_file(&path.display().to_string(), &id, &read_file(path)?)?])
}

/// TRM's ARC recipe from a Kaggle combined folder: ARC-AGI-`version` (1 or 2). Returns (training subsets, test
/// subset): for version 1, `training` + `concept` and `evaluation`; for 2, `training2` + `concept` and
/// `evaluation2`.
pub fn load_trm_recipe(dir: &Path, version: u8) -> Result<(Vec<Task>, Vec<Task>), DataError> {
    let (train_subsets, test_subset) = match version {
        1 => (["training", "concept"], "evaluation"),
        2 => (["training2", "concept"], "evaluation2"),
        _ => return Err(DataError::file(dir, format!("ARC-AGI version {version}: expected 1 or 2"))),
    };
    let load = |subset: &str| load_kaggle(&dir.join(format!("arc-agi_{subset}_challenges.json")));
    let mut train = Vec::new();
    for s in train_subsets {
        train.extend(load(s)?);
    }
    Ok((train, load(test_subset)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(json: &str) -> String {
        parse_task_file("t.json", "t", json.as_bytes()).unwrap_err().to_string()
    }

    #[test]
    fn valid_task() {
        let t = parse_task_file(
            "t.json",
            "t",
            br#"{"train":[{"input":[[1,2]],"output":[[3],[4]]}],"test":[{"input":[[0]],"output":[[9]]}],"name":"t"}"#,
        )
        .unwrap();
        assert_eq!((t.train[0].output.rows, t.train[0].output.cols), (2, 1));
        assert_eq!(t.test[0].output.as_ref().unwrap().cells, vec![9]);
    }

    #[test]
    fn malformed_tasks_name_file_task_and_problem() {
        let pair = r#"{"input":[[1]],"output":[[1]]}"#;
        assert_eq!(err(&format!(r#"{{"test":[{pair}]}}"#)), "t.json: task t: task is missing key \"train\"");
        assert!(err(&format!(r#"{{"train":[{{"input":[[1,2],[3]],"output":[[1]]}}],"test":[{pair}]}}"#))
            .contains("train pair 1 input is ragged: row 2 has 1 cells, row 1 has 2"));
        assert!(err(&format!(r#"{{"train":[{{"input":[[10]],"output":[[1]]}}],"test":[{pair}]}}"#))
            .contains("cell (1, 1) is 10, colours are integers 0..=9"));
        assert!(err(&format!(r#"{{"train":[{{"input":[[-1]],"output":[[1]]}}],"test":[{pair}]}}"#)).contains("is -1"));
        assert!(err(&format!(r#"{{"train":[{pair}],"test":[{{"input":[[1]]}}]}}"#))
            .contains("test pair 1 is missing key \"output\""));
        let big = format!("[{}]", vec!["[0]"; 31].join(","));
        assert!(err(&format!(r#"{{"train":[{{"input":{big},"output":[[1]]}}],"test":[{pair}]}}"#))
            .contains("has 31 rows, expected 1..=30"));
        assert!(err("{").starts_with("t.json: task t: invalid JSON"));
        assert!(parse_task_file("t.json", "t", format!("\u{feff}{{\"train\":[{pair}],\"test\":[{pair}]}}").as_bytes())
            .is_ok());
        assert_eq!(err(""), "t.json: task t: file is empty");
        assert!(parse_task_file("t.json", "t", b"{\"a\":\"\xff\"}").unwrap_err().to_string().contains("invalid UTF-8"));
    }

    #[test]
    fn kaggle_with_solutions() {
        let ch = br#"{"b":{"train":[{"input":[[1]],"output":[[2]]}],"test":[{"input":[[3]]}]},"a":{"train":[{"input":[[1]],"output":[[2]]}],"test":[{"input":[[3]]},{"input":[[4]]}]}}"#;
        let tasks = parse_kaggle("c.json", ch, None).unwrap();
        assert_eq!((tasks[0].id.as_str(), tasks[0].test[1].output.clone()), ("a", None));
        let sol = br#"{"a":[[[5]],[[6]]],"b":[[[7]]]}"#;
        let tasks = parse_kaggle("c.json", ch, Some(("s.json", sol))).unwrap();
        assert_eq!(tasks[0].test[1].output.as_ref().unwrap().cells, vec![6]);
        let short = br#"{"a":[[[5]]],"b":[[[7]]]}"#;
        let e = parse_kaggle("c.json", ch, Some(("s.json", short))).unwrap_err().to_string();
        assert_eq!(e, "s.json: task a: 1 solutions for 2 test inputs");
        assert_eq!(parse_kaggle("c.json", b"{}", None).unwrap_err().to_string(), "c.json: no tasks");
    }

    #[test]
    fn a_key_twice_in_one_object_is_an_error_naming_it() {
        // Was: the last one kept silently (a Kaggle file lost a task; a pair used its second "input").
        let task = r#"{"train":[{"input":[[1]],"output":[[2]]}],"test":[{"input":[[3]]}]}"#;
        let e = parse_kaggle("c.json", format!(r#"{{"t1":{task},"t1":{task}}}"#).as_bytes(), None).unwrap_err();
        assert!(
            e.to_string().starts_with(r#"c.json: invalid JSON: key "t1" appears twice in one object at line 1"#),
            "{e}"
        );
        let twice =
            r#"{"train":[{"input":[[1]],"input":[[2]],"output":[[2]]}],"test":[{"input":[[3]],"output":[[1]]}]}"#;
        assert!(err(twice).contains(r#"key "input" appears twice"#), "{}", err(twice));
        let sol = br#"{"t1":[[[4]]],"t1":[[[5]]]}"#;
        let e = parse_kaggle("c.json", format!(r#"{{"t1":{task}}}"#).as_bytes(), Some(("s.json", sol))).unwrap_err();
        assert!(e.to_string().starts_with(r#"s.json: invalid JSON: key "t1" appears twice"#), "{e}");
    }

    #[test]
    fn a_file_too_large_to_parse_is_refused_before_parsing() {
        // Was: a 200 MB list of zeros parsed into 100 million `Value`s (an allocation abort at 4.8 GB).
        let mut bytes = vec![b' '; MAX_JSON_BYTES + 1];
        bytes[0] = b'{';
        bytes[MAX_JSON_BYTES] = b'}';
        let want = format!("c.json: {} bytes, more than the {MAX_JSON_BYTES} an ARC JSON file may have", bytes.len());
        assert_eq!(parse_kaggle("c.json", &bytes, None).unwrap_err().to_string(), want);
        assert_eq!(parse_task_file("c.json", "c", &bytes).unwrap_err().to_string().replace("task c: ", ""), want);
    }
}

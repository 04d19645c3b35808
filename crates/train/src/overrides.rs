//! `--set key=value` overrides on any serde config, by dotted path.
//!
//! The config is serialised to a JSON tree, the leaf at `key` is replaced by `value` (parsed as TOML when it
//! parses, so `3`, `1e-3`, `true` and `"text"` all work, and as a bare string otherwise), and the tree is
//! deserialised back, so the config's own types validate the result. An unknown key is an error that lists
//! the valid ones.

use anyhow::{anyhow, bail, Context, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

/// Applies every `key=value` in order and returns the new config.
pub fn apply<T: Serialize + DeserializeOwned>(config: &T, sets: &[String]) -> Result<T> {
    let mut tree = serde_json::to_value(config).context("serialising the config")?;
    // The keys given so far: choosing another kind later never drops one of them silently.
    let mut assigned: Vec<String> = Vec::new();
    for set in sets {
        let (key, raw) =
            set.split_once('=').ok_or_else(|| anyhow!("--set {set}: expected key=value (e.g. --set train.lr=1e-3)"))?;
        let key = key.trim();
        if lookup(&mut tree, key).is_none() {
            bail!("--set {key}: unknown config key; valid keys are: {}", leaf_keys(&tree).join(", "));
        }
        let slot = lookup(&mut tree, key).expect("looked up above");
        if let Value::Object(table) = slot {
            let keys: Vec<String> = table.keys().map(|k| format!("{key}.{k}")).collect();
            bail!("--set {key}: a table, not a value; set one of its keys: {}", keys.join(", "));
        }
        *slot = parse_value(raw.trim(), slot).map_err(|e| anyhow!("--set {set}: {e}"))?;
        // Each override is checked on its own, so that a wrong type is reported against the key that caused it.
        // The tree is then rebuilt from the result, so that choosing another kind of a tagged table (say
        // `optim.dense.kind=adamw`) brings that kind's fields, with their defaults, within reach of the next --set.
        let mut parsed = serde_json::from_value::<T>(tree.clone());
        // Another kind of a tagged table (`model.arch=hrm`) may not have some fields of the old kind: those
        // siblings of the key are dropped, one at a time as serde names them, so the new kind starts from its
        // defaults. Only siblings: an unknown field elsewhere is still an error.
        while let Err(e) = &parsed {
            let message = e.to_string();
            let Some(field) = message.strip_prefix("unknown field `").and_then(|m| m.split('`').next()) else { break };
            let dropped = match key.rsplit_once('.') {
                Some((table, _)) => format!("{table}.{field}"),
                None => field.to_string(),
            };
            if assigned.contains(&dropped) {
                bail!("--set {set}: the new kind has no {dropped}, which an earlier --set gave; set the kind first");
            }
            let Some(Value::Object(table)) = parent(&mut tree, key) else { break };
            if table.remove(field).is_none() {
                break;
            }
            parsed = serde_json::from_value::<T>(tree.clone());
        }
        assigned.push(key.to_string());
        match parsed {
            Ok(config) => tree = serde_json::to_value(&config).context("serialising the config")?,
            Err(e) if e.to_string().starts_with("missing field") => bail!(
                "--set {set}: {e}; a kind chosen by --set starts from its defaults, and this field has none: \
                 start from a preset or a config file of that kind (`loopgrad info --list`)"
            ),
            Err(e) => bail!("--set {set}: {e}"),
        }
    }
    serde_json::from_value(tree).map_err(|e| anyhow!("--set: the resulting config is invalid: {e}"))
}

/// Every leaf path of a JSON tree, dotted (`model.hidden`, `train.lr`, ...), in order.
pub fn leaf_keys(tree: &Value) -> Vec<String> {
    fn walk(v: &Value, prefix: &str, out: &mut Vec<String>) {
        match v {
            Value::Object(map) if !map.is_empty() => {
                for (k, child) in map {
                    let p = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                    walk(child, &p, out);
                }
            }
            _ => out.push(prefix.to_string()),
        }
    }
    let mut out = Vec::new();
    walk(tree, "", &mut out);
    out
}

/// The table holding `key` (the whole tree for a top-level key).
fn parent<'a>(tree: &'a mut Value, key: &str) -> Option<&'a mut Value> {
    match key.rsplit_once('.') {
        Some((table, _)) => lookup(tree, table),
        None => Some(tree),
    }
}

fn lookup<'a>(tree: &'a mut Value, key: &str) -> Option<&'a mut Value> {
    let mut node = tree;
    for part in key.split('.') {
        node = node.as_object_mut()?.get_mut(part)?;
    }
    Some(node)
}

/// Parses `raw` as a TOML value (numbers, booleans, quoted strings, arrays); otherwise a bare string. An
/// integer given for a float field stays a number, which serde accepts. `nan` and `inf` are refused: JSON has
/// no such numbers (they would turn into `null`), and no config field means them.
fn parse_value(raw: &str, old: &Value) -> Result<Value> {
    let toml_value = toml::from_str::<toml::Table>(&format!("v = {raw}")).ok().and_then(|t| t.get("v").cloned());
    if let Some(toml::Value::Float(f)) = toml_value.as_ref().filter(|_| !old.is_string()) {
        if !f.is_finite() {
            bail!("{f} is not a finite number");
        }
    }
    // TOML (and so a config file) holds integers in i64; a longer run of digits would otherwise fall through to
    // a bare string and fail as "invalid type: string".
    let plain = raw.replace('_', "");
    let digits = plain.strip_prefix(['+', '-']).unwrap_or(&plain);
    let whole = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
    if toml_value.is_none() && !old.is_string() && whole && plain.parse::<i64>().is_err() {
        bail!("{raw} is outside the integers a config holds ({} to {})", i64::MIN, i64::MAX);
    }
    let parsed: Option<Value> = toml_value.and_then(|v| serde_json::to_value(v).ok());
    Ok(match parsed {
        // A string field keeps its value as typed, even if it looks like a number ("--set data.path=123").
        Some(v) if !old.is_string() || v.is_string() => v,
        _ => Value::String(raw.trim_matches('"').to_string()),
    })
}

/// Reads a TOML config file into `T`, naming the file in every error.
pub fn from_toml_file<T: DeserializeOwned>(path: &std::path::Path) -> Result<T> {
    if let Some(kind) = loopgrad_puzzles::error::special_file_kind(path) {
        bail!("{}: cannot read {kind} as a config; give a regular file", path.display());
    }
    let text = std::fs::read_to_string(path).with_context(|| format!("{}: cannot read config", path.display()))?;
    toml::from_str(&text).map_err(|e| anyhow!("{}: invalid config: {}", path.display(), one_line(&e.to_string())))
}

/// Collapses a multi-line parser message to one line.
pub fn one_line(msg: &str) -> String {
    msg.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Fails with the list of valid names when `name` is not among them.
pub fn check_name<'a>(what: &str, name: &str, valid: impl IntoIterator<Item = &'a str>) -> Result<()> {
    let valid: Vec<&str> = valid.into_iter().collect();
    if valid.contains(&name) {
        Ok(())
    } else {
        bail!("unknown {what} {name:?}; valid: {}", valid.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        lr: f64,
        steps: u32,
        name: String,
    }
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Cfg {
        train: Inner,
        ema: bool,
    }

    fn cfg() -> Cfg {
        Cfg { train: Inner { lr: 1e-4, steps: 10, name: "a".into() }, ema: true }
    }

    #[test]
    fn sets_nested_values_of_every_type() {
        let sets = ["train.lr=1e-3", "train.steps=20", "train.name=b c", "ema=false"].map(String::from);
        let c = apply(&cfg(), &sets).unwrap();
        assert_eq!(c, Cfg { train: Inner { lr: 1e-3, steps: 20, name: "b c".into() }, ema: false });
        let c = apply(&cfg(), &["train.name=123".to_string()]).unwrap();
        assert_eq!(c.train.name, "123");
        let c = apply(&cfg(), &["train.lr=1".to_string()]).unwrap();
        assert_eq!(c.train.lr, 1.0);
    }

    #[test]
    fn unknown_key_lists_the_valid_ones() {
        let err = apply(&cfg(), &["train.lrr=1".to_string()]).unwrap_err().to_string();
        assert!(err.contains("unknown config key"), "{err}");
        assert!(err.contains("train.lr, train.steps, train.name, ema"), "{err}");
    }

    #[test]
    fn wrong_type_and_missing_equals_are_errors() {
        assert!(apply(&cfg(), &["train.steps=abc".to_string()]).is_err());
        assert!(apply(&cfg(), &["train.steps".to_string()]).unwrap_err().to_string().contains("key=value"));
    }

    #[test]
    fn a_wrong_type_names_the_override_that_caused_it() {
        let sets = ["train.lr=1e-3", "train.steps=1.5"].map(String::from);
        let err = apply(&cfg(), &sets).unwrap_err().to_string();
        assert!(err.starts_with("--set train.steps=1.5: "), "{err}");
    }

    #[test]
    fn non_finite_numbers_and_whole_tables_are_refused_by_key() {
        for raw in ["nan", "inf", "-inf"] {
            let err = apply(&cfg(), &[format!("train.lr={raw}")]).unwrap_err().to_string();
            assert!(err.contains(&format!("--set train.lr={raw}: ")) && err.contains("not a finite number"), "{err}");
        }
        // A string field keeps "nan" as text.
        assert_eq!(apply(&cfg(), &["train.name=nan".to_string()]).unwrap().train.name, "nan");
        let err = apply(&cfg(), &["train=3".to_string()]).unwrap_err().to_string();
        assert!(err.contains("--set train: a table") && err.contains("train.lr"), "{err}");
    }

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    #[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
    enum Opt {
        Sgd {
            lr: f64,
        },
        Adam {
            lr: f64,
            #[serde(default = "default_eps")]
            eps: f64,
        },
        Momentum {
            lr: f64,
            beta: f64,
        },
    }
    fn default_eps() -> f64 {
        1e-8
    }
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct WithOpt {
        opt: Opt,
    }

    #[test]
    fn the_fields_of_a_newly_chosen_kind_can_be_set_next() {
        let sgd = WithOpt { opt: Opt::Sgd { lr: 0.1 } };
        let c = apply(&sgd, &["opt.kind=adam".to_string()]).unwrap();
        assert_eq!(c.opt, Opt::Adam { lr: 0.1, eps: 1e-8 });
        let c = apply(&sgd, &["opt.kind=adam", "opt.eps=1e-6"].map(String::from)).unwrap();
        assert_eq!(c.opt, Opt::Adam { lr: 0.1, eps: 1e-6 });
        // The old kind's fields the new one lacks are dropped; a field of the new kind without a default is named.
        let adam = WithOpt { opt: Opt::Adam { lr: 0.1, eps: 1e-6 } };
        assert_eq!(apply(&adam, &["opt.kind=sgd".to_string()]).unwrap().opt, Opt::Sgd { lr: 0.1 });
        let err = apply(&sgd, &["opt.kind=adam", "opt.eps=1e-6", "opt.kind=sgd"].map(String::from)).unwrap_err();
        assert!(err.to_string().contains("the new kind has no opt.eps, which an earlier --set gave"), "{err}");
        let err = apply(&adam, &["opt.kind=momentum".to_string()]).unwrap_err().to_string();
        assert!(err.contains("missing field `beta`") && err.contains("start from a preset"), "{err}");
        // Before the kind is chosen, its fields are unknown keys, and the list names the current ones.
        let err = apply(&sgd, &["opt.eps=1e-6".to_string()]).unwrap_err().to_string();
        assert!(err.contains("unknown config key") && err.contains("opt.kind, opt.lr"), "{err}");
    }

    #[test]
    fn integers_beyond_i64_are_refused_as_out_of_range() {
        for raw in ["18446744073709551615", "-9223372036854775809", "1_000_000_000_000_000_000_000"] {
            let err = apply(&cfg(), &[format!("train.steps={raw}")]).unwrap_err().to_string();
            assert!(
                err.contains(&format!("--set train.steps={raw}: ")) && err.contains("outside the integers"),
                "{err}"
            );
        }
        // A string field keeps a long run of digits as text.
        let long = "18446744073709551615".to_string();
        assert_eq!(apply(&cfg(), &[format!("train.name={long}")]).unwrap().train.name, long);
    }
}

//! Reading, merging and deserialising the configuration layers as TOML trees.

use std::path::Path;

use toml::{Table, Value};

use crate::{Config, ConfigError};

pub(crate) fn parse(origin: &str, text: &str) -> Result<Table, ConfigError> {
    text.parse::<Table>().map_err(|e| ConfigError::Syntax {
        origin: origin.to_owned(),
        message: e.message().to_owned(),
    })
}

pub(crate) fn read_optional(path: &Path) -> Result<Option<(String, String)>, ConfigError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some((path.display().to_string(), text))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ConfigError::Read {
            path: path.to_owned(),
            source,
        }),
    }
}

pub(crate) fn read_required(path: &Path) -> Result<(String, String), ConfigError> {
    std::fs::read_to_string(path)
        .map(|text| (path.display().to_string(), text))
        .map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })
}

/// Overlays `top` on `base`: tables merge key by key, anything else is replaced whole.
pub(crate) fn merge(base: &mut Table, top: Table) {
    for (key, value) in top {
        match (base.get_mut(&key), value) {
            (Some(Value::Table(below)), Value::Table(above)) => merge(below, above),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

/// `DAARION__BUS__MAX_DELIVERIES=9` becomes `{ bus = { max_deliveries = 9 } }`. A value that
/// parses as a TOML literal (number, bool, array) keeps that type; anything else is a string,
/// so URLs and addresses need no quoting.
pub(crate) fn from_env(
    prefix: &str,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Table, ConfigError> {
    let mut table = Table::new();
    for (var, raw) in env {
        let Some(rest) = var.strip_prefix(prefix) else {
            continue;
        };
        let path: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
        if path.iter().any(String::is_empty) {
            return Err(ConfigError::Env {
                var,
                message: "expected DAARION__SECTION__KEY".into(),
            });
        }
        let value = literal(&raw).unwrap_or(Value::String(raw));
        let mut node = &mut table;
        for (i, part) in path.iter().enumerate() {
            if i + 1 == path.len() {
                node.insert(part.clone(), value);
                break;
            }
            let entry = node
                .entry(part.clone())
                .or_insert_with(|| Value::Table(Table::new()));
            node = match entry {
                Value::Table(t) => t,
                _ => {
                    return Err(ConfigError::Env {
                        var,
                        message: format!("`{part}` is set both as a value and as a section"),
                    });
                }
            };
        }
    }
    Ok(table)
}

fn literal(raw: &str) -> Option<Value> {
    let doc: Table = format!("v = {raw}").parse().ok()?;
    match doc.into_iter().next()?.1 {
        // A bare word such as `info` fails above; a quoted one is what the operator typed.
        Value::Table(_) => None,
        v => Some(v),
    }
}

pub(crate) fn deserialize(tree: Table) -> Result<Config, ConfigError> {
    serde_path_to_error::deserialize(Value::Table(tree)).map_err(|e| {
        let key = e.path().to_string();
        ConfigError::invalid(key, e.into_inner().message().to_owned())
    })
}

//! Loading a [`Config`] from TOML text or a file, and pointing errors at the key and line.

use crate::{Config, ConfigError, Location, Problem};
use std::io::Read;
use std::ops::Range;
use std::path::Path;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// Largest config file accepted; real configs are a few kilobytes.
pub const MAX_CONFIG_BYTES: usize = 1024 * 1024;

/// Keys whose values are secrets: their values never appear in an error message.
const SECRET_KEYS: [&str; 3] = ["origin.operator_token", "origin.node_secret", "edge.node_secret"];

impl Config {
    /// Reads, parses and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let read_err = |source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        };
        // Read at most one byte past the limit, whatever the file claims to be (a FIFO or
        // a growing file reports no useful length).
        let mut src = String::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_CONFIG_BYTES as u64 + 1).read_to_string(&mut src))
            .map_err(read_err)?;
        Self::from_toml_str(&src, &path.display().to_string())
    }

    /// Parses and validates TOML text; `file` names the source in errors.
    pub fn from_toml_str(src: &str, file: &str) -> Result<Config, ConfigError> {
        if src.len() > MAX_CONFIG_BYTES {
            return Err(ConfigError::TooLarge {
                file: file.to_string(),
                max: MAX_CONFIG_BYTES,
            });
        }
        let config: Config = toml::from_str(src).map_err(|e| {
            let offset = e.span().map(|s| s.start).unwrap_or(0);
            let key = DeTable::parse(src)
                .ok()
                .and_then(|doc| key_at(doc.get_ref(), offset));
            let message = match &key {
                // A wrong-type error quotes the value: never for a secret.
                Some(k) if SECRET_KEYS.contains(&k.as_str()) => {
                    "must be a string (value not shown: this key is a secret)".to_string()
                }
                _ => e.message().trim().to_string(),
            };
            ConfigError::Parse {
                at: location(src, file, offset),
                key,
                message,
            }
        })?;
        let found = config.problems();
        if found.is_empty() {
            return Ok(config);
        }
        let doc = DeTable::parse(src).ok();
        let problems: Vec<Problem> = found
            .into_iter()
            .map(|(key, message)| Problem {
                at: doc
                    .as_ref()
                    .and_then(|d| key_span(d.get_ref(), &key))
                    .map(|span| location(src, file, span.start)),
                key,
                message,
            })
            .collect();
        Err(ConfigError::Invalid { problems })
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn location(src: &str, file: &str, offset: usize) -> Location {
    let offset = floor_char_boundary(src, offset.min(src.len()));
    let before = &src[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    Location {
        file: file.to_string(),
        line,
        column: src[line_start..offset].chars().count() + 1,
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// One step of a key path: a table key or an array index.
#[derive(Debug, PartialEq)]
enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

/// Splits `ladder.renditions[1].name` into steps.
fn steps(path: &str) -> Vec<Step<'_>> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (name, mut rest) = part.split_once('[').map_or((part, ""), |(n, r)| (n, r));
        if !name.is_empty() {
            out.push(Step::Key(name));
        }
        while let Some((idx, tail)) = rest.split_once(']') {
            if let Ok(i) = idx.parse() {
                out.push(Step::Index(i));
            }
            rest = tail.strip_prefix('[').unwrap_or(tail);
        }
    }
    out
}

/// Byte span of the key (or array element) a dotted path names, if the document writes it.
fn key_span(root: &DeTable<'_>, path: &str) -> Option<Range<usize>> {
    let mut table = root;
    let mut value: Option<&Spanned<DeValue<'_>>> = None;
    let mut span = None;
    for step in steps(path) {
        match step {
            Step::Key(k) => {
                if let Some(v) = value {
                    table = v.get_ref().as_table()?;
                }
                let (key, v) = table.get_key_value(k)?;
                span = Some(key.span());
                value = Some(v);
            }
            Step::Index(i) => {
                let v = value?.get_ref().as_array()?.get(i)?;
                span = Some(v.span());
                value = Some(v);
            }
        }
    }
    span
}

/// Dotted path of the innermost key whose key or value covers `offset`.
fn key_at(root: &DeTable<'_>, offset: usize) -> Option<String> {
    let mut path = String::new();
    walk_table(root, offset, &mut path);
    (!path.is_empty()).then_some(path)
}

fn covers(span: Range<usize>, offset: usize) -> bool {
    span.start <= offset && offset < span.end.max(span.start + 1)
}

fn walk_table(table: &DeTable<'_>, offset: usize, path: &mut String) {
    for (key, value) in table.iter() {
        let in_value = covers(value.span(), offset);
        if covers(key.span(), offset) || in_value || contains_offset(value.get_ref(), offset) {
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(key.get_ref());
            walk_value(value.get_ref(), offset, path);
            return;
        }
    }
}

fn walk_value(value: &DeValue<'_>, offset: usize, path: &mut String) {
    if let Some(table) = value.as_table() {
        walk_table(table, offset, path);
    } else if let Some(array) = value.as_array() {
        for (i, item) in array.iter().enumerate() {
            if covers(item.span(), offset) || contains_offset(item.get_ref(), offset) {
                path.push_str(&format!("[{i}]"));
                walk_value(item.get_ref(), offset, path);
                return;
            }
        }
    }
}

/// Whether any key or value nested in `value` covers `offset` (tables written with
/// `[section]` headers have no single span around their contents).
fn contains_offset(value: &DeValue<'_>, offset: usize) -> bool {
    if let Some(table) = value.as_table() {
        table.iter().any(|(k, v)| {
            covers(k.span(), offset) || covers(v.span(), offset) || contains_offset(v.get_ref(), offset)
        })
    } else if let Some(array) = value.as_array() {
        array
            .iter()
            .any(|v| covers(v.span(), offset) || contains_offset(v.get_ref(), offset))
    } else {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_key_paths() {
        assert_eq!(
            steps("ladder.renditions[1].name"),
            vec![
                Step::Key("ladder"),
                Step::Key("renditions"),
                Step::Index(1),
                Step::Key("name")
            ]
        );
    }

    #[test]
    fn line_and_column_count_characters() {
        let src = "a = 1\nbé = 2\n";
        let at = location(src, "f.toml", src.find('2').unwrap());
        assert_eq!((at.line, at.column), (2, 6));
    }
}

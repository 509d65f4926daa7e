//! Configuration errors: each names the file, the line and column, and the key.

use std::fmt;
use std::path::PathBuf;

/// Where in a config source a problem is: file name (or `<inline>`), 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: String,
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// One value that parsed but is not acceptable, with the key it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted key path, e.g. `packager.part_target_ms` or `ladder.renditions[1].name`.
    pub key: String,
    /// Where the key is written; `None` when the value is a default (not in the file).
    pub at: Option<Location>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.at {
            Some(at) => write!(f, "{at}: `{}`: {}", self.key, self.message),
            None => write!(f, "`{}` (default value): {}", self.key, self.message),
        }
    }
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Not valid TOML, an unknown key, or a value of the wrong type.
    #[error("{at}: {}{message}", key.as_ref().map(|k| format!("`{k}`: ")).unwrap_or_default())]
    Parse {
        at: Location,
        key: Option<String>,
        message: String,
    },
    /// Larger than any real config (`MAX_CONFIG_BYTES`); not read further.
    #[error("{file}: more than the {max}-byte limit for a config file")]
    TooLarge { file: String, max: usize },
    /// Well-formed, but values break the schema's rules; every problem is listed.
    #[error("invalid configuration:\n{}", problems.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid { problems: Vec<Problem> },
}

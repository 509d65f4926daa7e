//! Popcast's one configuration schema: typed sections with working defaults, loaded from
//! TOML, validated once at start, and passed down as plain structs.
//!
//! Owns: the schema ([`Config`] and its sections), the loader ([`Config::load`],
//! [`Config::from_toml_str`]) and validation. Errors name the key and the file position.
//! Peer quirk policies will live here too (STYLE.md §13).
//!
//! Must not: read environment variables, open sockets, or know how a section is used.
//! No global config: callers hand each service the section it needs.

mod error;
mod load;
mod schema;
mod secret;
mod validate;

pub use error::{ConfigError, Location, Problem};
pub use load::MAX_CONFIG_BYTES;
pub use schema::*;
pub use secret::Secret;

/// Entry points for the fuzz targets in `fuzz/`, also run over the seed corpus by the tests.
#[doc(hidden)]
pub mod fuzzing {
    use crate::Config;

    /// Any bytes as a config file: never panics, and every position an error reports lies
    /// inside the text (line within the file, column within that line).
    pub fn load(data: &[u8]) {
        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };
        let inside = |at: &crate::Location| {
            let line = text.split('\n').nth(at.line.saturating_sub(1));
            at.line >= 1 && at.column >= 1 && line.is_some_and(|l| at.column <= l.chars().count() + 1)
        };
        match Config::from_toml_str(text, "fuzz.toml") {
            Ok(_) => {}
            Err(crate::ConfigError::Parse { at, .. }) => assert!(inside(&at), "{at} is outside the input"),
            Err(crate::ConfigError::Invalid { problems }) => {
                assert!(!problems.is_empty());
                for p in problems {
                    assert!(p.at.as_ref().is_none_or(inside), "{p} points outside the input");
                }
            }
            Err(e) => panic!("unexpected error kind for in-memory text: {e}"),
        }
    }
}

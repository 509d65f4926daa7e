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
pub use schema::*;
pub use secret::Secret;

/// Entry points for the fuzz targets in `fuzz/`, also run over the seed corpus by the tests.
#[doc(hidden)]
pub mod fuzzing {
    use crate::Config;

    /// Any bytes as a config file: never panics; whatever loads is valid; errors say something.
    pub fn load(data: &[u8]) {
        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };
        match Config::from_toml_str(text, "fuzz.toml") {
            Ok(config) => assert!(config.problems().is_empty(), "a loaded config must be valid"),
            Err(e) => assert!(!e.to_string().is_empty(), "errors must say what is wrong"),
        }
    }
}

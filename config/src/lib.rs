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

//! HLS playlists: writing LL-HLS media and multivariant playlists, and checking any
//! playlist against the HLS spec (the checker tests use on our output and peers').

pub mod check;
pub mod write;

//! HLS playlists: checking Media and Multivariant Playlists against the HLS spec.

pub mod check;

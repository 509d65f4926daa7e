//! HLS playlists: writing LL-HLS media and multivariant playlists.

pub mod write;

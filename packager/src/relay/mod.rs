//! The origin↔edge relay wire format (sans-IO): frames of the control and object streams, their codec, and the table of reset/close codes.
//!
//! Edges dial the origin over QUIC with ALPN [`ALPN`]. Each connection has one
//! bidirectional control stream, opened by the edge, and media travels on unidirectional
//! origin→edge streams, one object per stream. Every message on every stream is a
//! [`Frame`]; [`FrameDecoder`] reads them from a stream's bytes in whatever pieces they
//! arrive, within [`Limits`]. [`ErrorCode`] is the one table of codes for stream resets,
//! connection closes and refused or ended subscriptions. Integers on the wire are QUIC
//! varints ([`varint`]).

mod code;
mod frame;
pub mod io;
pub mod varint;

pub use code::ErrorCode;
pub use frame::{EventState, Frame, FrameDecoder, Limits, RelayError, Resume, chunk_header};

/// The ALPN protocol id of relay connections.
pub const ALPN: &[u8] = b"popcast-relay/1";

/// The relay version an edge announces in [`Frame::Hello`].
/// 2: the hello carries the edge's public URL. 3: edges send QoE reports ([`Frame::Qoe`]).
pub const VERSION: u32 = 3;

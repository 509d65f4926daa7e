//! The RTMP session as a sans-IO state machine: handshake, chunk stream, AMF0 commands.
//!
//! Feed a [`Session`] the bytes read from the socket with [`Session::receive`], write out
//! what [`Session::take_output`] gives, and act on [`Session::poll_event`]. It never does
//! IO, reads a clock or spawns a task; the tokio wrapper owns all of that (including the
//! handshake timeout).

pub mod amf0;
mod chunk;
mod handshake;
mod session;

pub use session::{RtmpError, Session, SessionConfig, SessionEvent};

//! The RTMP session as a sans-IO state machine: handshake, chunk stream, AMF0 commands.

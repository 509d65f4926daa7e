//! The RTMP chunk stream: reassembling messages from chunks, splitting ours into chunks, and the protocol control messages (chunk size, abort, acknowledgements, bandwidth, user control).

use std::collections::HashMap;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::session::RtmpError;

/// Chunk size both directions start with.
pub(crate) const DEFAULT_CHUNK_SIZE: u32 = 128;
/// Smallest acknowledgement window honoured: a peer asking for acks every few bytes would
/// make us write more than it sends.
pub(crate) const MIN_ACK_WINDOW: u32 = 4096;
/// A reassembly buffer starts at most this big, and grows as chunks actually arrive.
const MAX_PREALLOC: usize = 64 * 1024;
const EXTENDED_TIMESTAMP: u32 = 0xff_ffff;

/// RTMP message type ids.
pub mod msg_type {
    pub const SET_CHUNK_SIZE: u8 = 1;
    pub const ABORT: u8 = 2;
    pub const ACKNOWLEDGEMENT: u8 = 3;
    pub const USER_CONTROL: u8 = 4;
    pub const WINDOW_ACK_SIZE: u8 = 5;
    pub const SET_PEER_BANDWIDTH: u8 = 6;
    pub const AUDIO: u8 = 8;
    pub const VIDEO: u8 = 9;
    pub const DATA_AMF3: u8 = 15;
    pub const SHARED_OBJECT_AMF3: u8 = 16;
    pub const COMMAND_AMF3: u8 = 17;
    pub const DATA_AMF0: u8 = 18;
    pub const SHARED_OBJECT_AMF0: u8 = 19;
    pub const COMMAND_AMF0: u8 = 20;
    pub const AGGREGATE: u8 = 22;
}

/// User control event types we send.
pub(crate) const USER_CONTROL_STREAM_BEGIN: u16 = 0;

/// One reassembled message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Chunk stream it arrived on.
    pub csid: u32,
    /// Absolute timestamp in ms (wraps at 2^32).
    pub timestamp: u32,
    pub type_id: u8,
    /// Message stream id (0 for the connection, else a stream from createStream).
    pub stream_id: u32,
    pub payload: Bytes,
}

/// Limits on what a peer may make the reader hold.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChunkLimits {
    pub max_chunk_size: u32,
    pub max_message_bytes: u32,
    pub max_chunk_streams: u32,
}

/// Per chunk stream: the last header's fields (what later headers compress against) and the
/// message being reassembled.
#[derive(Debug, Default)]
struct StreamState {
    timestamp: u32,
    /// The last header's timestamp field once resolved: absolute after type 0, else the delta.
    ts_field: u32,
    /// Whether the last type 0–2 header used an extended timestamp (type 3 chunks then carry one too).
    extended: bool,
    length: u32,
    type_id: u8,
    stream_id: u32,
    partial: Option<BytesMut>,
}

/// Reads chunks into messages.
#[derive(Debug)]
pub(crate) struct ChunkReader {
    chunk_size: u32,
    limits: ChunkLimits,
    streams: HashMap<u32, StreamState>,
    bytes_read: u64,
    /// Bytes held in partly received messages, over all chunk streams. Bounded by
    /// [`ChunkReader::partial_limit`], so that interleaving many large messages cannot make
    /// one connection hold `max_chunk_streams` × `max_message_bytes`.
    partial_bytes: usize,
}

enum Step {
    NeedMore,
    Chunk,
    Message(Message),
}

/// Largest command, data or control message accepted.
pub(crate) const MAX_COMMAND_BYTES: u32 = 64 * 1024;

impl ChunkReader {
    pub(crate) fn new(limits: ChunkLimits) -> Self {
        Self {
            chunk_size: DEFAULT_CHUNK_SIZE,
            limits,
            streams: HashMap::new(),
            bytes_read: 0,
            partial_bytes: 0,
        }
    }

    /// The most bytes partly received messages may hold at once: two whole messages.
    fn partial_limit(&self) -> usize {
        (self.limits.max_message_bytes as usize).saturating_mul(2)
    }

    /// Total bytes consumed.
    pub(crate) fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// Applies a chunk size the peer set (checked against the limit).
    pub(crate) fn set_chunk_size(&mut self, size: u32) -> Result<(), RtmpError> {
        if size == 0 || size > 0x7fff_ffff {
            return Err(RtmpError::InvalidChunkSize { requested: size });
        }
        if size > self.limits.max_chunk_size {
            return Err(RtmpError::ChunkSizeOverLimit {
                requested: size,
                limit: self.limits.max_chunk_size,
            });
        }
        self.chunk_size = size;
        Ok(())
    }

    /// Drops the partly received message on `csid` (Abort).
    pub(crate) fn abort(&mut self, csid: u32) {
        if let Some(s) = self.streams.get_mut(&csid) {
            if let Some(p) = s.partial.take() {
                self.partial_bytes = self.partial_bytes.saturating_sub(p.len());
            }
        }
    }

    /// Consumes chunks from the front of `input` until a message is complete (returned) or
    /// more bytes are needed (`None`; an incomplete chunk is left in `input`).
    pub(crate) fn read_message(&mut self, input: &mut BytesMut) -> Result<Option<Message>, RtmpError> {
        loop {
            match self.read_chunk(input)? {
                Step::NeedMore => return Ok(None),
                Step::Chunk => {}
                Step::Message(m) => return Ok(Some(m)),
            }
        }
    }

    fn read_chunk(&mut self, input: &mut BytesMut) -> Result<Step, RtmpError> {
        let buf = &input[..];
        let Some(&b0) = buf.first() else {
            return Ok(Step::NeedMore);
        };
        let fmt = b0 >> 6;
        let (csid, mut pos) = match b0 & 0x3f {
            0 => match buf.get(1) {
                Some(&b1) => (64 + b1 as u32, 2),
                None => return Ok(Step::NeedMore),
            },
            1 => match (buf.get(1), buf.get(2)) {
                (Some(&b1), Some(&b2)) => (64 + b1 as u32 + 256 * b2 as u32, 3),
                _ => return Ok(Step::NeedMore),
            },
            n => (n as u32, 1),
        };
        let header_len = [11, 7, 3, 0][fmt as usize];
        if buf.len() < pos + header_len {
            return Ok(Step::NeedMore);
        }
        let h = &buf[pos..pos + header_len];
        pos += header_len;

        let known = self.streams.contains_key(&csid);
        if !known {
            if fmt != 0 {
                return Err(RtmpError::MalformedChunkHeader {
                    csid,
                    reason: "the first chunk on a chunk stream must have a type 0 header",
                });
            }
            if self.streams.len() >= self.limits.max_chunk_streams as usize {
                return Err(RtmpError::TooManyChunkStreams {
                    limit: self.limits.max_chunk_streams,
                });
            }
        }
        let prev = self.streams.get(&csid);
        let in_progress = prev.is_some_and(|s| s.partial.is_some());
        if fmt != 3 && in_progress {
            return Err(RtmpError::MalformedChunkHeader {
                csid,
                reason: "a new message header arrived before the previous message on this chunk stream was complete",
            });
        }

        let ts3 = |h: &[u8]| u32::from_be_bytes([0, h[0], h[1], h[2]]);
        let (mut ts_raw, length, type_id, stream_id) = match (fmt, prev) {
            (0, _) => (
                ts3(h),
                u32::from_be_bytes([0, h[3], h[4], h[5]]),
                h[6],
                u32::from_le_bytes([h[7], h[8], h[9], h[10]]),
            ),
            (1, Some(p)) => (
                ts3(h),
                u32::from_be_bytes([0, h[3], h[4], h[5]]),
                h[6],
                p.stream_id,
            ),
            (2, Some(p)) => (ts3(h), p.length, p.type_id, p.stream_id),
            (_, Some(p)) => (p.ts_field, p.length, p.type_id, p.stream_id),
            (_, None) => unreachable!("unknown chunk streams were refused unless type 0"),
        };
        let extended = match (fmt, prev) {
            (0..=2, _) => ts_raw == EXTENDED_TIMESTAMP,
            (_, p) => p.is_some_and(|p| p.extended),
        };
        if extended {
            let Some(ext) = buf.get(pos..pos + 4) else {
                return Ok(Step::NeedMore);
            };
            ts_raw = u32::from_be_bytes([ext[0], ext[1], ext[2], ext[3]]);
            pos += 4;
        }
        // Commands, data and control messages are small (OBS builds its metadata in 4 KiB)
        // and are decoded into values many times their size: only media and aggregates
        // get the configured message limit.
        let limit = match type_id {
            msg_type::AUDIO | msg_type::VIDEO | msg_type::AGGREGATE => self.limits.max_message_bytes,
            _ => self.limits.max_message_bytes.min(MAX_COMMAND_BYTES),
        };
        if length > limit {
            return Err(RtmpError::MessageOverLimit { csid, length, limit });
        }
        let received = prev.and_then(|p| p.partial.as_ref()).map_or(0, |p| p.len());
        let body = ((length as usize) - received).min(self.chunk_size as usize);
        if buf.len() < pos + body {
            return Ok(Step::NeedMore);
        }

        if self.partial_bytes + body > self.partial_limit() {
            return Err(RtmpError::PartialMessagesOverLimit {
                held: self.partial_bytes + body,
                limit: self.partial_limit(),
            });
        }
        // The whole chunk is here: commit.
        let state = self.streams.entry(csid).or_default();
        if !in_progress {
            state.timestamp = match fmt {
                0 => ts_raw,
                _ => state.timestamp.wrapping_add(ts_raw),
            };
            state.ts_field = ts_raw;
            state.extended = extended;
            state.length = length;
            state.type_id = type_id;
            state.stream_id = stream_id;
        }
        input.advance(pos);
        let data = input.split_to(body);
        self.bytes_read += (pos + body) as u64;
        let partial = state
            .partial
            .get_or_insert_with(|| BytesMut::with_capacity((length as usize).min(MAX_PREALLOC)));
        partial.extend_from_slice(&data);
        self.partial_bytes += body;
        if partial.len() < length as usize {
            return Ok(Step::Chunk);
        }
        let payload = state.partial.take().map(BytesMut::freeze).unwrap_or_default();
        self.partial_bytes = self.partial_bytes.saturating_sub(payload.len());
        Ok(Step::Message(Message {
            csid,
            timestamp: state.timestamp,
            type_id: state.type_id,
            stream_id: state.stream_id,
            payload,
        }))
    }
}

/// Writes messages as chunks.
#[derive(Debug)]
pub(crate) struct ChunkWriter {
    chunk_size: u32,
}

impl ChunkWriter {
    pub(crate) fn new() -> Self {
        Self {
            chunk_size: DEFAULT_CHUNK_SIZE,
        }
    }

    pub(crate) fn set_chunk_size(&mut self, size: u32) {
        self.chunk_size = size.clamp(1, 0x7fff_ffff);
    }

    /// Appends `payload` as one message: a type 0 chunk, then type 3 continuations.
    pub(crate) fn write(
        &self,
        out: &mut BytesMut,
        csid: u32,
        timestamp: u32,
        type_id: u8,
        stream_id: u32,
        payload: &[u8],
    ) {
        debug_assert!(
            (2..=65599).contains(&csid),
            "chunk stream id {csid} cannot be encoded"
        );
        debug_assert!(payload.len() <= 0xff_ffff, "message too long for a chunk header");
        let extended = timestamp >= EXTENDED_TIMESTAMP;
        let mut chunks = payload.chunks(self.chunk_size as usize);
        let first = chunks.next().unwrap_or(&[]);
        put_basic_header(out, 0, csid);
        out.put_uint(if extended { EXTENDED_TIMESTAMP } else { timestamp } as u64, 3);
        out.put_uint(payload.len() as u64, 3);
        out.put_u8(type_id);
        out.put_u32_le(stream_id);
        if extended {
            out.put_u32(timestamp);
        }
        out.extend_from_slice(first);
        for chunk in chunks {
            put_basic_header(out, 3, csid);
            if extended {
                out.put_u32(timestamp);
            }
            out.extend_from_slice(chunk);
        }
    }
}

fn put_basic_header(out: &mut BytesMut, fmt: u8, csid: u32) {
    let fmt = fmt << 6;
    match csid {
        2..=63 => out.put_u8(fmt | csid as u8),
        64..=319 => out.extend_from_slice(&[fmt, (csid - 64) as u8]),
        _ => {
            let id = csid.saturating_sub(64).min(0xffff);
            out.extend_from_slice(&[fmt | 1, id as u8, (id >> 8) as u8]);
        }
    }
}

/// The chunk layer of a connection: reader and writer, with protocol control messages
/// (types 1–6) handled here and everything else handed up.
#[derive(Debug)]
pub(crate) struct ChunkCodec {
    pub(crate) reader: ChunkReader,
    pub(crate) writer: ChunkWriter,
    /// Acknowledgement window the peer asked for (0: none yet).
    peer_window: u32,
    /// Bytes received before the chunk stream (the handshake), counted in acknowledgements.
    handshake_bytes: u64,
    last_ack: u64,
}

/// Chunk stream for protocol control messages.
pub(crate) const CSID_CONTROL: u32 = 2;

impl ChunkCodec {
    pub(crate) fn new(limits: ChunkLimits) -> Self {
        Self {
            reader: ChunkReader::new(limits),
            writer: ChunkWriter::new(),
            peer_window: 0,
            handshake_bytes: 0,
            last_ack: 0,
        }
    }

    pub(crate) fn count_handshake(&mut self, n: usize) {
        self.handshake_bytes += n as u64;
    }

    fn received(&self) -> u64 {
        self.handshake_bytes + self.reader.bytes_read()
    }

    /// The next message that is not a protocol control message, handling those on the way.
    pub(crate) fn next_message(&mut self, input: &mut BytesMut) -> Result<Option<Message>, RtmpError> {
        loop {
            let Some(msg) = self.reader.read_message(input)? else {
                return Ok(None);
            };
            match msg.type_id {
                msg_type::SET_CHUNK_SIZE => {
                    let v = be_u32(&msg.payload, "Set Chunk Size")?;
                    self.reader.set_chunk_size(v)?;
                    tracing::trace!(size = v, "peer set chunk size");
                }
                msg_type::ABORT => {
                    let csid = be_u32(&msg.payload, "Abort")?;
                    self.reader.abort(csid);
                }
                msg_type::ACKNOWLEDGEMENT => {
                    be_u32(&msg.payload, "Acknowledgement")?;
                }
                msg_type::WINDOW_ACK_SIZE => {
                    self.peer_window = be_u32(&msg.payload, "Window Acknowledgement Size")?;
                }
                msg_type::SET_PEER_BANDWIDTH => {
                    if msg.payload.len() < 5 {
                        return Err(RtmpError::MalformedControl {
                            message: "Set Peer Bandwidth",
                            reason: "shorter than 5 bytes",
                        });
                    }
                }
                msg_type::USER_CONTROL => {
                    if msg.payload.len() < 2 {
                        return Err(RtmpError::MalformedControl {
                            message: "User Control",
                            reason: "shorter than its 2-byte event type",
                        });
                    }
                    let event = u16::from_be_bytes([msg.payload[0], msg.payload[1]]);
                    tracing::trace!(event, "user control event from peer ignored");
                }
                _ => return Ok(Some(msg)),
            }
        }
    }

    /// Writes an Acknowledgement if the bytes received since the last one reach the peer's window.
    pub(crate) fn maybe_ack(&mut self, out: &mut BytesMut) {
        if self.peer_window == 0 {
            return;
        }
        let window = self.peer_window.max(MIN_ACK_WINDOW) as u64;
        let received = self.received();
        if received - self.last_ack >= window {
            self.last_ack = received;
            // The sequence number is the byte count, wrapping like every RTMP counter.
            self.write(
                out,
                CSID_CONTROL,
                msg_type::ACKNOWLEDGEMENT,
                0,
                &(received as u32).to_be_bytes(),
            );
        }
    }

    pub(crate) fn write(
        &mut self,
        out: &mut BytesMut,
        csid: u32,
        type_id: u8,
        stream_id: u32,
        payload: &[u8],
    ) {
        self.writer.write(out, csid, 0, type_id, stream_id, payload);
    }

    /// Sends Set Chunk Size and uses the new size from then on.
    pub(crate) fn set_out_chunk_size(&mut self, out: &mut BytesMut, size: u32) {
        let size = size.clamp(1, 0x7fff_ffff);
        self.write(
            out,
            CSID_CONTROL,
            msg_type::SET_CHUNK_SIZE,
            0,
            &size.to_be_bytes(),
        );
        self.writer.set_chunk_size(size);
    }
}

fn be_u32(payload: &Bytes, message: &'static str) -> Result<u32, RtmpError> {
    match payload.get(..4) {
        Some(b) => Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]])),
        None => Err(RtmpError::MalformedControl {
            message,
            reason: "shorter than 4 bytes",
        }),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const LIMITS: ChunkLimits = ChunkLimits {
        max_chunk_size: 65_536,
        max_message_bytes: 1 << 20,
        max_chunk_streams: 8,
    };

    /// A raw chunk header: basic header, then the message header fields for `fmt`.
    fn header(fmt: u8, csid: u32, ts: u32, len: u32, type_id: u8, stream: u32) -> Vec<u8> {
        let mut out = BytesMut::new();
        put_basic_header(&mut out, fmt, csid);
        let ts_field = ts.min(EXTENDED_TIMESTAMP);
        if fmt <= 2 {
            out.put_uint(ts_field as u64, 3);
        }
        if fmt <= 1 {
            out.put_uint(len as u64, 3);
            out.put_u8(type_id);
        }
        if fmt == 0 {
            out.put_u32_le(stream);
        }
        if ts >= EXTENDED_TIMESTAMP {
            out.put_u32(ts);
        }
        out.to_vec()
    }

    fn read_all(reader: &mut ChunkReader, bytes: &[u8]) -> Vec<Message> {
        let mut input = BytesMut::from(bytes);
        let mut out = Vec::new();
        while let Some(m) = reader.read_message(&mut input).unwrap() {
            out.push(m);
        }
        assert!(input.is_empty(), "{} bytes left", input.len());
        out
    }

    #[test]
    fn all_four_header_formats() {
        let mut bytes = header(0, 4, 1000, 3, 9, 1);
        bytes.extend_from_slice(b"abc");
        bytes.extend(header(1, 4, 40, 2, 8, 0));
        bytes.extend_from_slice(b"de");
        bytes.extend(header(2, 4, 20, 0, 0, 0));
        bytes.extend_from_slice(b"fg");
        bytes.extend(header(3, 4, 0, 0, 0, 0));
        bytes.extend_from_slice(b"hi");
        let msgs = read_all(&mut ChunkReader::new(LIMITS), &bytes);
        let summary: Vec<_> = msgs
            .iter()
            .map(|m| (m.timestamp, m.type_id, m.stream_id, &m.payload[..]))
            .collect();
        assert_eq!(
            summary,
            vec![
                (1000, 9, 1, &b"abc"[..]),
                (1040, 8, 1, b"de"),
                (1060, 8, 1, b"fg"),
                (1080, 8, 1, b"hi")
            ]
        );
    }

    #[test]
    fn type_3_after_type_0_adds_the_type_0_timestamp_like_ffmpeg() {
        let mut bytes = header(0, 3, 40, 1, 9, 1);
        bytes.push(1);
        bytes.extend(header(3, 3, 0, 0, 0, 0));
        bytes.push(2);
        let msgs = read_all(&mut ChunkReader::new(LIMITS), &bytes);
        assert_eq!(msgs[1].timestamp, 80);
    }

    #[test]
    fn basic_header_sizes() {
        for csid in [2, 63, 64, 319, 320, 65599] {
            let mut bytes = header(0, csid, 5, 1, 20, 0);
            bytes.push(7);
            let msgs = read_all(&mut ChunkReader::new(LIMITS), &bytes);
            assert_eq!(msgs[0].csid, csid);
            assert_eq!(&msgs[0].payload[..], &[7]);
        }
    }

    #[test]
    fn extended_timestamps_and_continuations() {
        let payload: Vec<u8> = (0..300u32).map(|i| i as u8).collect();
        let mut w = ChunkWriter::new();
        w.set_chunk_size(128);
        let mut out = BytesMut::new();
        w.write(&mut out, 6, 0x0100_0000, 9, 1, &payload);
        // 3 chunks, each continuation repeats the 4-byte extended timestamp.
        assert_eq!(out.len(), 12 + 4 + 300 + 2 * (1 + 4));
        let mut reader = ChunkReader::new(LIMITS);
        let msgs = read_all(&mut reader, &out);
        assert_eq!(msgs[0].timestamp, 0x0100_0000);
        assert_eq!(&msgs[0].payload[..], &payload[..]);

        // A type 3 header starting a new message after an extended one carries the delta.
        let mut bytes = header(1, 6, 0xffff_ff00, 1, 9, 0);
        bytes.push(1);
        bytes.extend(header(3, 6, 0, 0, 0, 0));
        bytes.extend_from_slice(&0xffff_ff00_u32.to_be_bytes());
        bytes.push(2);
        let msgs = read_all(&mut reader, &bytes);
        // Deltas wrap.
        assert_eq!(msgs[0].timestamp, 0x0100_0000_u32.wrapping_add(0xffff_ff00));
        assert_eq!(msgs[1].timestamp, msgs[0].timestamp.wrapping_add(0xffff_ff00));
    }

    #[test]
    fn interleaved_chunk_streams() {
        let a: Vec<u8> = vec![0xaa; 200];
        let b: Vec<u8> = vec![0xbb; 150];
        let mut bytes = header(0, 4, 10, 200, 9, 1);
        bytes.extend_from_slice(&a[..128]);
        bytes.extend(header(0, 5, 20, 150, 8, 1));
        bytes.extend_from_slice(&b[..128]);
        bytes.extend(header(3, 4, 0, 0, 0, 0));
        bytes.extend_from_slice(&a[128..]);
        bytes.extend(header(3, 5, 0, 0, 0, 0));
        bytes.extend_from_slice(&b[128..]);
        let msgs = read_all(&mut ChunkReader::new(LIMITS), &bytes);
        assert_eq!(msgs.len(), 2);
        assert_eq!(
            (msgs[0].csid, msgs[0].timestamp, msgs[0].payload.len()),
            (4, 10, 200)
        );
        assert_eq!(
            (msgs[1].csid, msgs[1].timestamp, msgs[1].payload.len()),
            (5, 20, 150)
        );
    }

    #[test]
    fn byte_by_byte_equals_whole() {
        let mut w = ChunkWriter::new();
        let mut bytes = BytesMut::new();
        w.write(&mut bytes, 3, 7, 20, 0, &[1; 500]);
        w.set_chunk_size(60);
        w.write(&mut bytes, 400, 0x0200_0000, 9, 1, &[2; 500]);
        let mut reader = ChunkReader::new(LIMITS);
        let mut input = BytesMut::new();
        let mut msgs = Vec::new();
        for b in bytes.iter() {
            input.extend_from_slice(&[*b]);
            while let Some(m) = reader.read_message(&mut input).unwrap() {
                msgs.push(m);
                // As if a Set Chunk Size had arrived between the two messages.
                reader.set_chunk_size(60).unwrap();
            }
        }
        assert_eq!(msgs.len(), 2);
        assert_eq!(msgs[1].payload.len(), 500);
        assert_eq!(msgs[1].timestamp, 0x0200_0000);
        assert_eq!(reader.bytes_read(), bytes.len() as u64);
    }

    #[test]
    fn chunk_size_change_mid_stream() {
        let mut codec = ChunkCodec::new(LIMITS);
        let mut w = ChunkWriter::new();
        let mut bytes = BytesMut::new();
        w.write(
            &mut bytes,
            2,
            0,
            msg_type::SET_CHUNK_SIZE,
            0,
            &4096u32.to_be_bytes(),
        );
        w.set_chunk_size(4096);
        w.write(&mut bytes, 4, 0, 9, 1, &[9; 5000]);
        let m = codec.next_message(&mut bytes).unwrap().unwrap();
        assert_eq!(m.payload.len(), 5000);
        assert!(bytes.is_empty());
    }

    #[test]
    fn limits_trip_with_named_errors() {
        let mut reader = ChunkReader::new(LIMITS);
        let err = reader.set_chunk_size(70_000).unwrap_err();
        assert!(matches!(
            err,
            RtmpError::ChunkSizeOverLimit {
                requested: 70_000,
                limit: 65_536
            }
        ));
        assert!(
            err.to_string().contains("70000") && err.to_string().contains("65536"),
            "{err}"
        );
        assert!(matches!(
            reader.set_chunk_size(0),
            Err(RtmpError::InvalidChunkSize { requested: 0 })
        ));
        assert!(matches!(
            reader.set_chunk_size(0x8000_0000),
            Err(RtmpError::InvalidChunkSize { .. })
        ));

        let mut input = BytesMut::from(&header(0, 3, 0, (1 << 20) + 1, 9, 1)[..]);
        let err = ChunkReader::new(LIMITS).read_message(&mut input).unwrap_err();
        assert!(
            matches!(
                err,
                RtmpError::MessageOverLimit {
                    length: 1_048_577,
                    limit: 1_048_576,
                    ..
                }
            ),
            "{err}"
        );

        let mut bytes = Vec::new();
        for csid in 3..12 {
            bytes.extend(header(0, csid, 0, 1, 9, 1));
            bytes.push(0);
        }
        let mut input = BytesMut::from(&bytes[..]);
        let mut reader = ChunkReader::new(LIMITS);
        let err = loop {
            match reader.read_message(&mut input) {
                Ok(Some(_)) => {}
                Ok(None) => panic!("no error"),
                Err(e) => break e,
            }
        };
        assert!(
            matches!(err, RtmpError::TooManyChunkStreams { limit: 8 }),
            "{err}"
        );
    }

    #[test]
    fn malformed_headers() {
        let mut input = BytesMut::from(&header(1, 3, 0, 1, 9, 0)[..]);
        let err = ChunkReader::new(LIMITS).read_message(&mut input).unwrap_err();
        assert!(
            matches!(err, RtmpError::MalformedChunkHeader { csid: 3, .. }),
            "{err}"
        );

        let mut bytes = header(0, 3, 0, 200, 9, 1);
        bytes.extend_from_slice(&[0; 128]);
        bytes.extend(header(0, 3, 0, 1, 9, 1));
        bytes.push(0);
        let mut input = BytesMut::from(&bytes[..]);
        let err = ChunkReader::new(LIMITS).read_message(&mut input).unwrap_err();
        assert!(
            matches!(err, RtmpError::MalformedChunkHeader { csid: 3, .. }),
            "{err}"
        );
    }

    #[test]
    fn commands_and_data_are_held_to_a_small_limit() {
        // Media may be as large as the configured limit; a command or data message may not
        // (it is decoded into values many times its size).
        for (type_id, ok) in [
            (9u8, true),
            (8, true),
            (20, false),
            (18, false),
            (15, false),
            (4, false),
        ] {
            let mut input = BytesMut::from(&header(0, 3, 0, 70_000, type_id, 1)[..]);
            let got = ChunkReader::new(LIMITS).read_message(&mut input);
            match got {
                Err(RtmpError::MessageOverLimit { limit, .. }) => {
                    assert!(!ok, "type {type_id}");
                    assert_eq!(limit, MAX_COMMAND_BYTES);
                }
                other => assert!(ok && matches!(other, Ok(None)), "type {type_id}: {other:?}"),
            }
        }
    }

    #[test]
    fn partly_received_messages_are_bounded_together() {
        // Streams each start a message of the largest size; the fourth's first chunk would
        // make the partial messages hold more than two whole ones.
        let limits = ChunkLimits {
            max_message_bytes: 200,
            ..LIMITS
        };
        let mut reader = ChunkReader::new(limits);
        let mut bytes = Vec::new();
        for csid in [4, 5] {
            bytes.extend(header(0, csid, 0, 200, 9, 1));
            bytes.extend_from_slice(&[1; 128]);
        }
        let mut input = BytesMut::from(&bytes[..]);
        while reader.read_message(&mut input).unwrap().is_some() {}
        assert_eq!(reader.partial_bytes, 256);
        // A short message still fits (the budget is 400), a third big one does not.
        let mut input = BytesMut::from(&[header(0, 6, 0, 100, 9, 1), vec![2; 100]].concat()[..]);
        assert!(reader.read_message(&mut input).unwrap().is_some());
        assert_eq!(reader.partial_bytes, 256);
        let mut input = BytesMut::from(&[header(0, 7, 0, 200, 9, 1), vec![3; 128]].concat()[..]);
        assert!(reader.read_message(&mut input).unwrap().is_none());
        let mut input = BytesMut::from(&[header(0, 3, 0, 200, 9, 1), vec![3; 128]].concat()[..]);
        let err = reader.read_message(&mut input).unwrap_err();
        assert_eq!(
            err,
            RtmpError::PartialMessagesOverLimit {
                held: 512,
                limit: 400
            }
        );
    }

    #[test]
    fn abort_drops_the_partial_message() {
        let mut codec = ChunkCodec::new(LIMITS);
        let mut bytes = header(0, 4, 0, 200, 9, 1);
        bytes.extend_from_slice(&[1; 128]);
        bytes.extend(header(0, 2, 0, 4, msg_type::ABORT, 0));
        bytes.extend_from_slice(&4u32.to_be_bytes());
        bytes.extend(header(0, 4, 0, 2, 9, 1));
        bytes.extend_from_slice(&[5, 6]);
        let mut input = BytesMut::from(&bytes[..]);
        let m = codec.next_message(&mut input).unwrap().unwrap();
        assert_eq!(&m.payload[..], &[5, 6]);
    }

    #[test]
    fn acknowledgement_after_window() {
        let mut codec = ChunkCodec::new(LIMITS);
        let w = ChunkWriter::new();
        let mut bytes = BytesMut::new();
        w.write(
            &mut bytes,
            2,
            0,
            msg_type::WINDOW_ACK_SIZE,
            0,
            &5000u32.to_be_bytes(),
        );
        w.write(
            &mut bytes,
            2,
            0,
            msg_type::SET_PEER_BANDWIDTH,
            0,
            &[0, 0, 0x13, 0x88, 2],
        );
        w.write(
            &mut bytes,
            2,
            0,
            msg_type::USER_CONTROL,
            0,
            &[0, 3, 0, 0, 0, 1, 0, 0, 0, 100],
        );
        w.write(&mut bytes, 4, 0, 9, 1, &[0; 4000]);
        let total = bytes.len();
        let mut out = BytesMut::new();
        assert_eq!(
            codec.next_message(&mut bytes).unwrap().unwrap().payload.len(),
            4000
        );
        codec.maybe_ack(&mut out);
        assert!(out.is_empty(), "under the window");
        let mut more = BytesMut::new();
        w.write(&mut more, 4, 0, 9, 1, &[0; 1000]);
        let total = total + more.len();
        codec.next_message(&mut more).unwrap().unwrap();
        codec.maybe_ack(&mut out);
        let mut reader = ChunkReader::new(LIMITS);
        let ack = reader.read_message(&mut out).unwrap().unwrap();
        assert_eq!(ack.type_id, msg_type::ACKNOWLEDGEMENT);
        assert_eq!(&ack.payload[..], &(total as u32).to_be_bytes());
    }

    #[test]
    fn short_control_messages_are_errors() {
        let mut codec = ChunkCodec::new(LIMITS);
        let w = ChunkWriter::new();
        let mut bytes = BytesMut::new();
        w.write(&mut bytes, 2, 0, msg_type::SET_CHUNK_SIZE, 0, &[0, 1]);
        let err = codec.next_message(&mut bytes).unwrap_err();
        assert!(
            matches!(
                err,
                RtmpError::MalformedControl {
                    message: "Set Chunk Size",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn zero_length_message() {
        let mut bytes = header(0, 3, 5, 0, 9, 1);
        bytes.extend(header(0, 3, 6, 1, 9, 1));
        bytes.push(1);
        let msgs = read_all(&mut ChunkReader::new(LIMITS), &bytes);
        assert_eq!(msgs.len(), 2);
        assert!(msgs[0].payload.is_empty());
    }
}

//! Relay frames: what they carry, how they are written, and the streaming decoder.
//!
//! Every message on every relay stream is one frame: a type byte, the payload length as a
//! varint, then exactly that many payload bytes. Inside payloads, integers are varints
//! (`u32` fields are varints that must fit in 32 bits), a bool is one byte 0 or 1, strings
//! and byte blobs are a varint length then the bytes, an `Option` is one byte 0 (None) or
//! 1 (Some) then the value, and a list is a varint count then the items. Fields appear in
//! the order the variants of [`Frame`] declare them.

use std::fmt;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::code::ErrorCode;
use super::varint;

/// Where a resubscribing edge left off: the first part it still needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resume {
    /// The epoch of the media the edge holds (from [`Frame::SubscribeOk`]).
    pub epoch: u64,
    /// Media sequence number of the segment.
    pub msn: u64,
    /// Part index inside that segment.
    pub part: u32,
}

/// Whether an event's media is flowing. One byte on the wire; other values are errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventState {
    /// Announced, no media yet.
    Waiting = 0,
    /// Media is flowing.
    Live = 1,
    /// Over; what is held stays playable.
    Ended = 2,
}

impl EventState {
    fn from_byte(b: u8) -> Option<Self> {
        match b {
            0 => Some(Self::Waiting),
            1 => Some(Self::Live),
            2 => Some(Self::Ended),
            _ => None,
        }
    }
}

/// One relay message. The control stream (bidirectional, opened by the edge) carries
/// 0x01..=0x0F; each object stream (unidirectional, origin→edge) carries an
/// [`Frame::ObjectHeader`] first, then media frames, and [`Frame::ObjectEnd`] last.
///
/// `Debug` shows the length of byte payloads, not their bytes, and never the node secret,
/// so frames can be logged.
#[derive(Clone, PartialEq)]
pub enum Frame {
    /// 0x01 edge→origin: the first frame on the control stream.
    Hello {
        version: u32,
        node_id: String,
        region: String,
        capacity_viewers: u32,
        /// The base URL viewers reach this edge at (`https://edge-fra-1.example`), where the
        /// origin's `/play` sends them.
        public_url: String,
        secret: Bytes,
    },
    /// 0x02 origin→edge: the answer to a good Hello.
    Welcome { origin_id: String, heartbeat_ms: u32 },
    /// 0x03 edge→origin: send this event's catalog and its changes.
    Watch { event: String },
    /// 0x04 edge→origin: stop sending this event's catalog.
    Unwatch { event: String },
    /// 0x05 origin→edge: an event's state, renditions and multivariant playlist. The
    /// multivariant playlist is bounded by [`Limits::max_catalog_frame`], not
    /// [`Limits::max_string`].
    Catalog {
        event: String,
        state: EventState,
        renditions: Vec<String>,
        multivariant: Option<String>,
    },
    /// 0x06 edge→origin: send this rendition's media on object streams tagged `sub`.
    Subscribe {
        sub: u64,
        event: String,
        rendition: String,
        resume: Option<Resume>,
    },
    /// 0x07 edge→origin.
    Unsubscribe { sub: u64 },
    /// 0x08 origin→edge.
    /// `replay_to`: the last complete part (msn, part) in the window replayed first, so that
    /// the edge answers viewers once it has caught up with it (not from the window's first
    /// part); `None` when the replay holds no complete part.
    SubscribeOk {
        sub: u64,
        epoch: u64,
        replay_to: Option<(u64, u32)>,
    },
    /// 0x09 origin→edge: the subscription was refused.
    SubscribeError {
        sub: u64,
        code: ErrorCode,
        reason: String,
    },
    /// 0x0A origin→edge: an accepted subscription is over.
    SubscriptionEnd {
        sub: u64,
        code: ErrorCode,
        reason: String,
    },
    /// 0x0B origin→edge: serve this event, to at most `viewer_cap` viewers; when
    /// `ticketed`, only to viewers with a token signed by one of `keys` (key id, secret;
    /// newest first). Sent again when any of it changes (a key rotation, say).
    Provision {
        event: String,
        viewer_cap: u32,
        ticketed: bool,
        keys: Vec<(String, Bytes)>,
    },
    /// 0x0C origin→edge: stop serving this event.
    Release { event: String },
    /// 0x0D edge→origin.
    Heartbeat {
        seq: u64,
        viewers: u32,
        slots: u32,
        bytes_held: u64,
    },
    /// 0x0E origin→edge.
    HeartbeatAck { seq: u64 },
    /// 0x0F edge→origin: an event's QoE on this edge, its running totals (sent when they
    /// change, at most once per heartbeat). Counters are a list, then a list of histograms
    /// ([`crate::qoe::HIST_NAMES`] order), each a list of (bucket, count) bounded by
    /// [`crate::qoe::hist::MAX_BUCKETS`]; newer edges may send more of either, and readers
    /// ignore what they do not know.
    /// `epoch` names the edge's tracker (a new slot or a restarted edge starts a new one):
    /// the origin keeps the totals of earlier epochs instead of seeing them fall.
    Qoe {
        event: String,
        epoch: u64,
        report: Box<crate::qoe::Report>,
    },
    /// 0x20: the first frame of an object stream: which subscription, which object.
    ObjectHeader { sub: u64, seq: u64 },
    /// 0x21: the rendition's init segment.
    Init { data: Bytes, part_target_ns: u64 },
    /// 0x22: `program_date_time_ns` is nanoseconds since the Unix epoch.
    SegmentStart {
        msn: u64,
        discontinuity: bool,
        program_date_time_ns: u64,
    },
    /// 0x23.
    PartStart { msn: u64, part: u32, independent: bool },
    /// 0x24: the payload is the chunk (no inner length), so [`chunk_header`] lets a writer
    /// send `data` without copying it.
    Chunk { data: Bytes },
    /// 0x25.
    PartEnd { msn: u64, part: u32, duration_ns: u64 },
    /// 0x26.
    SegmentEnd { msn: u64, duration_ns: u64 },
    /// 0x27: the rendition ended (EXT-X-ENDLIST). Empty payload.
    Ended,
    /// 0x28: the object is complete; a stream that finishes without it is torn. Empty
    /// payload.
    ObjectEnd,
}

/// Frame type bytes.
mod ty {
    pub const HELLO: u8 = 0x01;
    pub const WELCOME: u8 = 0x02;
    pub const WATCH: u8 = 0x03;
    pub const UNWATCH: u8 = 0x04;
    pub const CATALOG: u8 = 0x05;
    pub const SUBSCRIBE: u8 = 0x06;
    pub const UNSUBSCRIBE: u8 = 0x07;
    pub const SUBSCRIBE_OK: u8 = 0x08;
    pub const SUBSCRIBE_ERROR: u8 = 0x09;
    pub const SUBSCRIPTION_END: u8 = 0x0A;
    pub const PROVISION: u8 = 0x0B;
    pub const RELEASE: u8 = 0x0C;
    pub const HEARTBEAT: u8 = 0x0D;
    pub const HEARTBEAT_ACK: u8 = 0x0E;
    pub const QOE: u8 = 0x0F;
    pub const OBJECT_HEADER: u8 = 0x20;
    pub const INIT: u8 = 0x21;
    pub const SEGMENT_START: u8 = 0x22;
    pub const PART_START: u8 = 0x23;
    pub const CHUNK: u8 = 0x24;
    pub const PART_END: u8 = 0x25;
    pub const SEGMENT_END: u8 = 0x26;
    pub const ENDED: u8 = 0x27;
    pub const OBJECT_END: u8 = 0x28;
}

/// Which limit bounds a frame's payload.
#[derive(Clone, Copy)]
enum Class {
    Control,
    Catalog,
    Media,
}

/// The name and size class of a frame type, `None` for types we do not know.
fn kind(frame_type: u8) -> Option<(&'static str, Class)> {
    use Class::*;
    Some(match frame_type {
        ty::HELLO => ("Hello", Control),
        ty::WELCOME => ("Welcome", Control),
        ty::WATCH => ("Watch", Control),
        ty::UNWATCH => ("Unwatch", Control),
        ty::CATALOG => ("Catalog", Catalog),
        ty::SUBSCRIBE => ("Subscribe", Control),
        ty::UNSUBSCRIBE => ("Unsubscribe", Control),
        ty::SUBSCRIBE_OK => ("SubscribeOk", Control),
        ty::SUBSCRIBE_ERROR => ("SubscribeError", Control),
        ty::SUBSCRIPTION_END => ("SubscriptionEnd", Control),
        ty::PROVISION => ("Provision", Control),
        ty::RELEASE => ("Release", Control),
        ty::HEARTBEAT => ("Heartbeat", Control),
        ty::HEARTBEAT_ACK => ("HeartbeatAck", Control),
        ty::QOE => ("Qoe", Control),
        ty::OBJECT_HEADER => ("ObjectHeader", Control),
        ty::INIT => ("Init", Media),
        ty::SEGMENT_START => ("SegmentStart", Control),
        ty::PART_START => ("PartStart", Control),
        ty::CHUNK => ("Chunk", Media),
        ty::PART_END => ("PartEnd", Control),
        ty::SEGMENT_END => ("SegmentEnd", Control),
        ty::ENDED => ("Ended", Control),
        ty::OBJECT_END => ("ObjectEnd", Control),
        _ => return None,
    })
}

impl Frame {
    /// The type byte on the wire.
    pub fn frame_type(&self) -> u8 {
        match self {
            Self::Hello { .. } => ty::HELLO,
            Self::Welcome { .. } => ty::WELCOME,
            Self::Watch { .. } => ty::WATCH,
            Self::Unwatch { .. } => ty::UNWATCH,
            Self::Catalog { .. } => ty::CATALOG,
            Self::Subscribe { .. } => ty::SUBSCRIBE,
            Self::Unsubscribe { .. } => ty::UNSUBSCRIBE,
            Self::SubscribeOk { .. } => ty::SUBSCRIBE_OK,
            Self::SubscribeError { .. } => ty::SUBSCRIBE_ERROR,
            Self::SubscriptionEnd { .. } => ty::SUBSCRIPTION_END,
            Self::Provision { .. } => ty::PROVISION,
            Self::Release { .. } => ty::RELEASE,
            Self::Heartbeat { .. } => ty::HEARTBEAT,
            Self::HeartbeatAck { .. } => ty::HEARTBEAT_ACK,
            Self::Qoe { .. } => ty::QOE,
            Self::ObjectHeader { .. } => ty::OBJECT_HEADER,
            Self::Init { .. } => ty::INIT,
            Self::SegmentStart { .. } => ty::SEGMENT_START,
            Self::PartStart { .. } => ty::PART_START,
            Self::Chunk { .. } => ty::CHUNK,
            Self::PartEnd { .. } => ty::PART_END,
            Self::SegmentEnd { .. } => ty::SEGMENT_END,
            Self::Ended => ty::ENDED,
            Self::ObjectEnd => ty::OBJECT_END,
        }
    }

    /// The variant's name ("Hello", "Chunk", ...) for errors and logs.
    pub fn name(&self) -> &'static str {
        kind(self.frame_type())
            .expect("every variant's type byte is in the table")
            .0
    }

    /// Appends the whole frame: type, payload length, payload.
    ///
    /// Encoding does not check [`Limits`]: the sender must keep within the receiver's.
    ///
    /// # Panics
    /// If an integer field is above 2^62-1 (see [`varint::encode`]): a caller bug, as no
    /// value read from the wire can be, and the ids, counters and nanosecond times we send
    /// stay far below it.
    pub fn encode(&self, out: &mut BytesMut) {
        let mut count = Count(0);
        self.write_payload(&mut count);
        let len = count.0;
        out.reserve(1 + varint::len(len as u64) + len);
        out.put_u8(self.frame_type());
        varint::encode(len as u64, out);
        let start = out.len();
        self.write_payload(out);
        debug_assert_eq!(out.len() - start, len, "{} payload length", self.name());
    }

    fn write_payload<S: Sink>(&self, s: &mut S) {
        match self {
            Self::Hello {
                version,
                node_id,
                region,
                capacity_viewers,
                public_url,
                secret,
            } => {
                s.varint(u64::from(*version));
                s.string(node_id);
                s.string(region);
                s.varint(u64::from(*capacity_viewers));
                s.string(public_url);
                s.blob(secret);
            }
            Self::Welcome {
                origin_id,
                heartbeat_ms,
            } => {
                s.string(origin_id);
                s.varint(u64::from(*heartbeat_ms));
            }
            Self::Watch { event } | Self::Unwatch { event } | Self::Release { event } => s.string(event),
            Self::Catalog {
                event,
                state,
                renditions,
                multivariant,
            } => {
                s.string(event);
                s.byte(*state as u8);
                s.varint(renditions.len() as u64);
                for r in renditions {
                    s.string(r);
                }
                match multivariant {
                    None => s.byte(0),
                    Some(m) => {
                        s.byte(1);
                        s.string(m);
                    }
                }
            }
            Self::Subscribe {
                sub,
                event,
                rendition,
                resume,
            } => {
                s.varint(*sub);
                s.string(event);
                s.string(rendition);
                match resume {
                    None => s.byte(0),
                    Some(r) => {
                        s.byte(1);
                        s.varint(r.epoch);
                        s.varint(r.msn);
                        s.varint(u64::from(r.part));
                    }
                }
            }
            Self::Unsubscribe { sub } => s.varint(*sub),
            Self::SubscribeOk {
                sub,
                epoch,
                replay_to,
            } => {
                s.varint(*sub);
                s.varint(*epoch);
                match replay_to {
                    None => s.byte(0),
                    Some((msn, part)) => {
                        s.byte(1);
                        s.varint(*msn);
                        s.varint(u64::from(*part));
                    }
                }
            }
            Self::SubscribeError { sub, code, reason } | Self::SubscriptionEnd { sub, code, reason } => {
                s.varint(*sub);
                s.varint(code.to_code());
                s.string(reason);
            }
            Self::Provision {
                event,
                viewer_cap,
                ticketed,
                keys,
            } => {
                s.string(event);
                s.varint(u64::from(*viewer_cap));
                s.byte(u8::from(*ticketed));
                s.varint(keys.len() as u64);
                for (kid, secret) in keys {
                    s.string(kid);
                    s.blob(secret);
                }
            }
            Self::Heartbeat {
                seq,
                viewers,
                slots,
                bytes_held,
            } => {
                s.varint(*seq);
                s.varint(u64::from(*viewers));
                s.varint(u64::from(*slots));
                s.varint(*bytes_held);
            }
            Self::HeartbeatAck { seq } => s.varint(*seq),
            Self::Qoe { event, epoch, report } => {
                s.string(event);
                s.varint(*epoch);
                // Trailing zero counters are left out (a reader takes missing ones as 0), and
                // values are capped at the varint maximum (totals merged from the wire
                // saturate above it).
                let counters = report.counters();
                let len = counters.iter().rposition(|c| *c != 0).map_or(0, |i| i + 1);
                s.varint(len as u64);
                for c in &counters[..len] {
                    s.varint((*c).min(varint::MAX));
                }
                // Histograms: a count, then each (trailing empty ones left out; a reader
                // skips any past the ones it knows).
                let hists = report.hists();
                let n = hists.iter().rposition(|h| !h.is_empty()).map_or(0, |i| i + 1);
                s.varint(n as u64);
                for h in &hists[..n] {
                    s.varint(h.buckets().count() as u64);
                    for (b, n) in h.buckets() {
                        s.varint(u64::from(b));
                        s.varint(n.min(varint::MAX));
                    }
                }
            }
            Self::ObjectHeader { sub, seq } => {
                s.varint(*sub);
                s.varint(*seq);
            }
            Self::Init { data, part_target_ns } => {
                s.blob(data);
                s.varint(*part_target_ns);
            }
            Self::SegmentStart {
                msn,
                discontinuity,
                program_date_time_ns,
            } => {
                s.varint(*msn);
                s.byte(u8::from(*discontinuity));
                s.varint(*program_date_time_ns);
            }
            Self::PartStart {
                msn,
                part,
                independent,
            } => {
                s.varint(*msn);
                s.varint(u64::from(*part));
                s.byte(u8::from(*independent));
            }
            Self::Chunk { data } => s.bytes(data),
            Self::PartEnd {
                msn,
                part,
                duration_ns,
            } => {
                s.varint(*msn);
                s.varint(u64::from(*part));
                s.varint(*duration_ns);
            }
            Self::SegmentEnd { msn, duration_ns } => {
                s.varint(*msn);
                s.varint(*duration_ns);
            }
            Self::Ended | Self::ObjectEnd => {}
        }
    }
}

/// A byte payload in `Debug` output: its length, not its bytes.
struct Len(usize);

impl fmt::Debug for Len {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{} bytes>", self.0)
    }
}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct(self.name());
        match self {
            Self::Hello {
                version,
                node_id,
                region,
                capacity_viewers,
                public_url,
                secret,
            } => d
                .field("version", version)
                .field("node_id", node_id)
                .field("region", region)
                .field("capacity_viewers", capacity_viewers)
                .field("public_url", public_url)
                .field("secret", &format_args!("<redacted, {} bytes>", secret.len())),
            Self::Welcome {
                origin_id,
                heartbeat_ms,
            } => d
                .field("origin_id", origin_id)
                .field("heartbeat_ms", heartbeat_ms),
            Self::Watch { event } | Self::Unwatch { event } | Self::Release { event } => {
                d.field("event", event)
            }
            Self::Catalog {
                event,
                state,
                renditions,
                multivariant,
            } => d
                .field("event", event)
                .field("state", state)
                .field("renditions", renditions)
                .field("multivariant", &multivariant.as_ref().map(|m| Len(m.len()))),
            Self::Subscribe {
                sub,
                event,
                rendition,
                resume,
            } => d
                .field("sub", sub)
                .field("event", event)
                .field("rendition", rendition)
                .field("resume", resume),
            Self::Unsubscribe { sub } => d.field("sub", sub),
            Self::SubscribeOk {
                sub,
                epoch,
                replay_to,
            } => d
                .field("sub", sub)
                .field("epoch", epoch)
                .field("replay_to", replay_to),
            Self::SubscribeError { sub, code, reason } | Self::SubscriptionEnd { sub, code, reason } => {
                d.field("sub", sub).field("code", code).field("reason", reason)
            }
            // Key secrets are never printed.
            Self::Provision {
                event,
                viewer_cap,
                ticketed,
                keys,
            } => d
                .field("event", event)
                .field("viewer_cap", viewer_cap)
                .field("ticketed", ticketed)
                .field("keys", &keys.iter().map(|(kid, _)| kid).collect::<Vec<_>>()),
            Self::Heartbeat {
                seq,
                viewers,
                slots,
                bytes_held,
            } => d
                .field("seq", seq)
                .field("viewers", viewers)
                .field("slots", slots)
                .field("bytes_held", bytes_held),
            Self::HeartbeatAck { seq } => d.field("seq", seq),
            Self::Qoe { event, epoch, report } => d
                .field("event", event)
                .field("epoch", epoch)
                .field("sessions_started", &report.sessions_started)
                .field("buckets", &report.hists().map(|h| h.buckets().count())),
            Self::ObjectHeader { sub, seq } => d.field("sub", sub).field("seq", seq),
            Self::Init { data, part_target_ns } => d
                .field("data", &Len(data.len()))
                .field("part_target_ns", part_target_ns),
            Self::SegmentStart {
                msn,
                discontinuity,
                program_date_time_ns,
            } => d
                .field("msn", msn)
                .field("discontinuity", discontinuity)
                .field("program_date_time_ns", program_date_time_ns),
            Self::PartStart {
                msn,
                part,
                independent,
            } => d
                .field("msn", msn)
                .field("part", part)
                .field("independent", independent),
            Self::Chunk { data } => d.field("data", &Len(data.len())),
            Self::PartEnd {
                msn,
                part,
                duration_ns,
            } => d
                .field("msn", msn)
                .field("part", part)
                .field("duration_ns", duration_ns),
            Self::SegmentEnd { msn, duration_ns } => d.field("msn", msn).field("duration_ns", duration_ns),
            Self::Ended | Self::ObjectEnd => &mut d,
        };
        d.finish()
    }
}

/// The 2..=9-byte header (type byte and length varint) of a Chunk frame carrying `len`
/// payload bytes, so a writer can send the payload `Bytes` itself next to it without
/// copying it. `chunk_header(data.len())` followed by `data` is exactly what
/// [`Frame::encode`] writes for `Frame::Chunk { data }`.
///
/// # Panics
/// If `len` is above 2^62-1 (no buffer is that large).
pub fn chunk_header(len: usize) -> Bytes {
    let mut out = BytesMut::with_capacity(9);
    out.put_u8(ty::CHUNK);
    varint::encode(len as u64, &mut out);
    out.freeze()
}

/// Where the encoder writes a payload: once to count its length, once for real.
trait Sink {
    fn bytes(&mut self, b: &[u8]);
    fn varint(&mut self, v: u64);
    fn byte(&mut self, b: u8) {
        self.bytes(&[b]);
    }
    fn blob(&mut self, b: &[u8]) {
        self.varint(b.len() as u64);
        self.bytes(b);
    }
    fn string(&mut self, s: &str) {
        self.blob(s.as_bytes());
    }
}

struct Count(usize);

impl Sink for Count {
    fn bytes(&mut self, b: &[u8]) {
        self.0 += b.len();
    }
    fn varint(&mut self, v: u64) {
        self.0 += varint::len(v);
    }
}

impl Sink for BytesMut {
    fn bytes(&mut self, b: &[u8]) {
        self.extend_from_slice(b);
    }
    fn varint(&mut self, v: u64) {
        varint::encode(v, self);
    }
}

/// How much a [`FrameDecoder`] accepts. Every frame's payload is bounded before it is
/// buffered, and every string and list inside one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Payload bytes of every frame except Chunk, Init and Catalog. Default 64 KiB.
    pub max_control_frame: usize,
    /// Payload bytes of a Catalog (its multivariant playlist can be large). Default 256 KiB.
    pub max_catalog_frame: usize,
    /// Payload bytes of a Chunk or Init. Default 16 MiB.
    pub max_chunk: usize,
    /// Bytes of a string field, except Catalog's multivariant playlist (bounded by
    /// `max_catalog_frame` instead). Default 1024.
    pub max_string: usize,
    /// Items in a list (Catalog renditions). Default 64.
    pub max_list: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_control_frame: 64 * 1024,
            max_catalog_frame: 256 * 1024,
            max_chunk: 16 * 1024 * 1024,
            max_string: 1024,
            max_list: 64,
        }
    }
}

/// Why relay bytes could not be read. Every variant names the stream offset of the frame
/// it is about (the frame's first byte), so the frame can be found in a capture. Malformed
/// (the bytes break the format), unsupported (an unknown frame type) and limit (a frame too
/// large) are separate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RelayError {
    /// A type byte we do not know; refused as soon as it is read.
    #[error("relay frame of unknown type {frame_type:#04x} at stream offset {offset}")]
    UnknownFrameType { frame_type: u8, offset: u64 },
    /// The header announces a payload above the frame's limit; refused as soon as the
    /// header is read, before the payload is buffered.
    #[error(
        "relay frame {frame} at stream offset {offset}: payload of {len} bytes exceeds the limit of {max}"
    )]
    FrameTooLarge {
        frame: &'static str,
        len: u64,
        max: usize,
        offset: u64,
    },
    /// A field of the payload is broken: it runs past the payload's end, a bool, option tag
    /// or EventState is out of range, a string is not UTF-8, a `u32` does not fit, or a
    /// string or list is over its limit. `reason` says which, and at which payload byte.
    #[error("relay frame {frame} at stream offset {offset}: {field}: {reason}")]
    Malformed {
        frame: &'static str,
        field: &'static str,
        reason: String,
        offset: u64,
    },
    /// The payload is longer than its fields.
    #[error("relay frame {frame} at stream offset {offset}: {extra} trailing bytes after the last field")]
    TrailingBytes {
        frame: &'static str,
        extra: u64,
        offset: u64,
    },
}

impl RelayError {
    /// The code to reset the stream or close the connection with:
    /// [`ErrorCode::LimitExceeded`] for a frame over its limit, otherwise
    /// [`ErrorCode::ProtocolViolation`].
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::FrameTooLarge { .. } => ErrorCode::LimitExceeded,
            Self::UnknownFrameType { .. } | Self::Malformed { .. } | Self::TrailingBytes { .. } => {
                ErrorCode::ProtocolViolation
            }
        }
    }
}

/// Reads frames from the bytes of one relay stream, in whatever pieces they arrive. Sans-IO:
/// [`FrameDecoder::push`] what the stream delivers, then call [`FrameDecoder::next_frame`]
/// until it returns `Ok(None)`.
pub struct FrameDecoder {
    limits: Limits,
    buf: BytesMut,
    /// Stream offset of `buf[0]`: bytes consumed by whole frames.
    offset: u64,
    /// The error that poisoned the decoder.
    failed: Option<RelayError>,
}

impl FrameDecoder {
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            buf: BytesMut::new(),
            offset: 0,
            failed: None,
        }
    }

    /// Appends bytes read from the stream. Ignored once the decoder has failed.
    pub fn push(&mut self, data: &[u8]) {
        if self.failed.is_none() {
            self.buf.extend_from_slice(data);
        }
    }

    /// The next whole frame, `Ok(None)` when more bytes are needed ("need more" is never an
    /// error). Chunk and Init payloads are split off the buffer and frozen (no copy beyond
    /// the buffer fill). A frame header announcing a payload above its limit is refused as
    /// soon as the header is read, before the payload arrives; an unknown type as soon as
    /// its byte is. After an error the decoder is poisoned: it drops what it holds and
    /// returns that error again.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, RelayError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        self.read().inspect_err(|e| {
            self.failed = Some(e.clone());
            self.buf = BytesMut::new();
        })
    }

    /// Bytes consumed by whole frames so far (the stream offset of the next frame, or of
    /// the frame that failed).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Bytes held that are not yet a whole frame (none once the decoder has failed).
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    fn read(&mut self) -> Result<Option<Frame>, RelayError> {
        let offset = self.offset;
        let Some(&frame_type) = self.buf.first() else {
            return Ok(None);
        };
        let Some((name, class)) = kind(frame_type) else {
            return Err(RelayError::UnknownFrameType { frame_type, offset });
        };
        let Some((len, header)) = varint::decode(&self.buf[1..]) else {
            return Ok(None);
        };
        let max = match class {
            Class::Control => self.limits.max_control_frame,
            Class::Catalog => self.limits.max_catalog_frame,
            Class::Media => self.limits.max_chunk,
        };
        if len > max as u64 {
            return Err(RelayError::FrameTooLarge {
                frame: name,
                len,
                max,
                offset,
            });
        }
        // Within a usize limit, so the conversion is exact.
        let len = len as usize;
        let total = 1 + header + len;
        if self.buf.len() < total {
            return Ok(None);
        }
        self.buf.advance(1 + header);
        let payload = self.buf.split_to(len).freeze();
        let frame = parse(frame_type, name, payload, &self.limits, offset)?;
        self.offset += total as u64;
        Ok(Some(frame))
    }
}

/// Reads the fields of one payload.
struct Reader<'a> {
    payload: &'a Bytes,
    pos: usize,
    frame: &'static str,
    offset: u64,
    limits: &'a Limits,
}

impl Reader<'_> {
    fn malformed(&self, field: &'static str, reason: String) -> RelayError {
        RelayError::Malformed {
            frame: self.frame,
            field,
            reason,
            offset: self.offset,
        }
    }

    fn left(&self) -> usize {
        self.payload.len() - self.pos
    }

    fn varint(&mut self, field: &'static str) -> Result<u64, RelayError> {
        match varint::decode(&self.payload[self.pos..]) {
            Some((v, n)) => {
                self.pos += n;
                Ok(v)
            }
            None => Err(self.malformed(
                field,
                format!("the payload ends inside the varint at payload byte {}", self.pos),
            )),
        }
    }

    fn u32(&mut self, field: &'static str) -> Result<u32, RelayError> {
        let at = self.pos;
        let v = self.varint(field)?;
        u32::try_from(v)
            .map_err(|_| self.malformed(field, format!("{v} at payload byte {at} does not fit in 32 bits")))
    }

    fn byte(&mut self, field: &'static str) -> Result<u8, RelayError> {
        let Some(&b) = self.payload.get(self.pos) else {
            return Err(self.malformed(field, format!("the payload ends at byte {}", self.pos)));
        };
        self.pos += 1;
        Ok(b)
    }

    /// A 0/1 byte: a bool, or an option's tag.
    fn flag(&mut self, field: &'static str, what: &str) -> Result<bool, RelayError> {
        let at = self.pos;
        match self.byte(field)? {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(self.malformed(field, format!("{what} {b} at payload byte {at} is not 0 or 1"))),
        }
    }

    fn bool(&mut self, field: &'static str) -> Result<bool, RelayError> {
        self.flag(field, "bool")
    }

    fn present(&mut self, field: &'static str) -> Result<bool, RelayError> {
        self.flag(field, "option tag")
    }

    fn state(&mut self, field: &'static str) -> Result<EventState, RelayError> {
        let at = self.pos;
        let b = self.byte(field)?;
        EventState::from_byte(b).ok_or_else(|| {
            self.malformed(
                field,
                format!("{b} at payload byte {at} is not 0 (waiting), 1 (live) or 2 (ended)"),
            )
        })
    }

    fn code(&mut self, field: &'static str) -> Result<ErrorCode, RelayError> {
        self.varint(field).map(ErrorCode::from_code)
    }

    /// A varint length then that many bytes, at most `max`.
    fn blob(&mut self, field: &'static str, max: Option<usize>) -> Result<Bytes, RelayError> {
        let at = self.pos;
        let len = self.varint(field)?;
        if let Some(max) = max.filter(|&max| len > max as u64) {
            return Err(self.malformed(
                field,
                format!("string of {len} bytes at payload byte {at} exceeds the limit of {max}"),
            ));
        }
        let left = self.left();
        if len > left as u64 {
            return Err(self.malformed(
                field,
                format!("{len} bytes announced at payload byte {at}, {left} left in the payload"),
            ));
        }
        let len = len as usize;
        let data = self.payload.slice(self.pos..self.pos + len);
        self.pos += len;
        Ok(data)
    }

    fn bytes(&mut self, field: &'static str) -> Result<Bytes, RelayError> {
        self.blob(field, None)
    }

    fn string_up_to(&mut self, field: &'static str, max: Option<usize>) -> Result<String, RelayError> {
        let at = self.pos;
        let data = self.blob(field, max)?;
        String::from_utf8(data.to_vec())
            .map_err(|e| self.malformed(field, format!("string at payload byte {at} is not UTF-8: {e}")))
    }

    fn string(&mut self, field: &'static str) -> Result<String, RelayError> {
        self.string_up_to(field, Some(self.limits.max_string))
    }

    /// A list's item count, within `max_list`.
    fn list_count(&mut self, field: &'static str) -> Result<usize, RelayError> {
        let at = self.pos;
        let count = self.varint(field)?;
        let max = self.limits.max_list;
        if count > max as u64 {
            return Err(self.malformed(
                field,
                format!("list of {count} items at payload byte {at} exceeds the limit of {max}"),
            ));
        }
        Ok(count as usize)
    }

    /// A list of (key id, secret) pairs, bounded like every list.
    fn keys(&mut self, field: &'static str) -> Result<Vec<(String, Bytes)>, RelayError> {
        let count = self.list_count(field)?;
        let mut items = Vec::with_capacity(count.min(self.left()));
        for _ in 0..count {
            let kid = self.string(field)?;
            let secret = self.blob(field, Some(self.limits.max_string))?;
            items.push((kid, secret));
        }
        Ok(items)
    }

    /// A histogram: (bucket, count) pairs, at most one per bucket there can be.
    fn hist(&mut self, field: &'static str, h: &mut crate::qoe::Hist) -> Result<(), RelayError> {
        use crate::qoe::hist::MAX_BUCKETS;
        let at = self.pos;
        let count = self.varint(field)?;
        if count > MAX_BUCKETS as u64 {
            return Err(self.malformed(
                field,
                format!(
                    "histogram of {count} buckets at payload byte {at} exceeds the {MAX_BUCKETS} there are"
                ),
            ));
        }
        for _ in 0..count {
            let at = self.pos;
            let b = self.varint(field)?;
            if b >= MAX_BUCKETS as u64 {
                return Err(self.malformed(field, format!("bucket {b} at payload byte {at} does not exist")));
            }
            h.add_n(b as u16, self.varint(field)?);
        }
        Ok(())
    }

    fn strings(&mut self, field: &'static str) -> Result<Vec<String>, RelayError> {
        let count = self.list_count(field)?;
        // Each item takes at least a byte, so the payload bounds the allocation too.
        let mut items = Vec::with_capacity(count.min(self.left()));
        for _ in 0..count {
            items.push(self.string(field)?);
        }
        Ok(items)
    }

    fn finish(self) -> Result<(), RelayError> {
        match self.left() {
            0 => Ok(()),
            extra => Err(RelayError::TrailingBytes {
                frame: self.frame,
                extra: extra as u64,
                offset: self.offset,
            }),
        }
    }
}

/// The frame of type `frame_type` (known) from its whole payload.
fn parse(
    frame_type: u8,
    frame: &'static str,
    payload: Bytes,
    limits: &Limits,
    offset: u64,
) -> Result<Frame, RelayError> {
    if frame_type == ty::CHUNK {
        return Ok(Frame::Chunk { data: payload });
    }
    let mut r = Reader {
        payload: &payload,
        pos: 0,
        frame,
        offset,
        limits,
    };
    // Struct expressions evaluate their fields in the order written: the wire order.
    let frame = match frame_type {
        ty::HELLO => Frame::Hello {
            version: r.u32("version")?,
            node_id: r.string("node_id")?,
            region: r.string("region")?,
            capacity_viewers: r.u32("capacity_viewers")?,
            public_url: r.string("public_url")?,
            secret: r.bytes("secret")?,
        },
        ty::WELCOME => Frame::Welcome {
            origin_id: r.string("origin_id")?,
            heartbeat_ms: r.u32("heartbeat_ms")?,
        },
        ty::WATCH => Frame::Watch {
            event: r.string("event")?,
        },
        ty::UNWATCH => Frame::Unwatch {
            event: r.string("event")?,
        },
        ty::CATALOG => Frame::Catalog {
            event: r.string("event")?,
            state: r.state("state")?,
            renditions: r.strings("renditions")?,
            multivariant: match r.present("multivariant")? {
                false => None,
                true => Some(r.string_up_to("multivariant", None)?),
            },
        },
        ty::SUBSCRIBE => Frame::Subscribe {
            sub: r.varint("sub")?,
            event: r.string("event")?,
            rendition: r.string("rendition")?,
            resume: match r.present("resume")? {
                false => None,
                true => Some(Resume {
                    epoch: r.varint("resume.epoch")?,
                    msn: r.varint("resume.msn")?,
                    part: r.u32("resume.part")?,
                }),
            },
        },
        ty::UNSUBSCRIBE => Frame::Unsubscribe {
            sub: r.varint("sub")?,
        },
        ty::SUBSCRIBE_OK => Frame::SubscribeOk {
            sub: r.varint("sub")?,
            epoch: r.varint("epoch")?,
            replay_to: match r.present("replay_to")? {
                false => None,
                true => Some((r.varint("replay_to.msn")?, r.u32("replay_to.part")?)),
            },
        },
        ty::SUBSCRIBE_ERROR => Frame::SubscribeError {
            sub: r.varint("sub")?,
            code: r.code("code")?,
            reason: r.string("reason")?,
        },
        ty::SUBSCRIPTION_END => Frame::SubscriptionEnd {
            sub: r.varint("sub")?,
            code: r.code("code")?,
            reason: r.string("reason")?,
        },
        ty::PROVISION => Frame::Provision {
            event: r.string("event")?,
            viewer_cap: r.u32("viewer_cap")?,
            ticketed: r.bool("ticketed")?,
            keys: r.keys("keys")?,
        },
        ty::RELEASE => Frame::Release {
            event: r.string("event")?,
        },
        ty::HEARTBEAT => Frame::Heartbeat {
            seq: r.varint("seq")?,
            viewers: r.u32("viewers")?,
            slots: r.u32("slots")?,
            bytes_held: r.varint("bytes_held")?,
        },
        ty::HEARTBEAT_ACK => Frame::HeartbeatAck {
            seq: r.varint("seq")?,
        },
        ty::QOE => {
            let event = r.string("event")?;
            let epoch = r.varint("epoch")?;
            let mut report = crate::qoe::Report::default();
            let n = r.list_count("counters")?;
            let mut counters = Vec::with_capacity(n.min(r.left()));
            for _ in 0..n {
                counters.push(r.varint("counters")?);
            }
            report.set_counters(&counters);
            let n = r.list_count("hists")?;
            {
                let mut known = report.hists_mut().into_iter().zip(crate::qoe::HIST_NAMES);
                for _ in 0..n {
                    match known.next() {
                        Some((h, field)) => r.hist(field, h)?,
                        None => r.hist("hists", &mut crate::qoe::Hist::new())?,
                    }
                }
            }
            Frame::Qoe {
                event,
                epoch,
                report: Box::new(report),
            }
        }
        ty::OBJECT_HEADER => Frame::ObjectHeader {
            sub: r.varint("sub")?,
            seq: r.varint("seq")?,
        },
        ty::INIT => Frame::Init {
            data: r.bytes("data")?,
            part_target_ns: r.varint("part_target_ns")?,
        },
        ty::SEGMENT_START => Frame::SegmentStart {
            msn: r.varint("msn")?,
            discontinuity: r.bool("discontinuity")?,
            program_date_time_ns: r.varint("program_date_time_ns")?,
        },
        ty::PART_START => Frame::PartStart {
            msn: r.varint("msn")?,
            part: r.u32("part")?,
            independent: r.bool("independent")?,
        },
        ty::PART_END => Frame::PartEnd {
            msn: r.varint("msn")?,
            part: r.u32("part")?,
            duration_ns: r.varint("duration_ns")?,
        },
        ty::SEGMENT_END => Frame::SegmentEnd {
            msn: r.varint("msn")?,
            duration_ns: r.varint("duration_ns")?,
        },
        ty::ENDED => Frame::Ended,
        ty::OBJECT_END => Frame::ObjectEnd,
        other => unreachable!("frame type {other:#04x} passed kind() but has no parser"),
    };
    r.finish()?;
    Ok(frame)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relay::varint::MAX;

    fn encode(frames: &[Frame]) -> Vec<u8> {
        let mut out = BytesMut::new();
        for f in frames {
            f.encode(&mut out);
        }
        out.to_vec()
    }

    /// Feeds `pieces` in order and collects frames until need-more or an error.
    fn decode_pieces<'a>(
        limits: &Limits,
        pieces: impl IntoIterator<Item = &'a [u8]>,
    ) -> (Vec<Frame>, Option<RelayError>) {
        let mut dec = FrameDecoder::new(limits.clone());
        let mut frames = Vec::new();
        for piece in pieces {
            dec.push(piece);
            loop {
                match dec.next_frame() {
                    Ok(Some(f)) => frames.push(f),
                    Ok(None) => break,
                    Err(e) => return (frames, Some(e)),
                }
            }
        }
        (frames, None)
    }

    fn decode_all(bytes: &[u8]) -> Result<Vec<Frame>, RelayError> {
        match decode_pieces(&Limits::default(), [bytes]) {
            (frames, None) => Ok(frames),
            (_, Some(e)) => Err(e),
        }
    }

    /// The error of the first frame in `bytes` (which must fail).
    fn error_of(bytes: &[u8]) -> RelayError {
        decode_all(bytes).expect_err("must fail")
    }

    /// A frame with a hand-made payload.
    fn raw(frame_type: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = BytesMut::new();
        out.put_u8(frame_type);
        varint::encode(payload.len() as u64, &mut out);
        out.extend_from_slice(payload);
        out.to_vec()
    }

    fn s(text: &str) -> String {
        text.to_string()
    }

    /// One realistic frame of every kind.
    fn typical() -> Vec<Frame> {
        vec![
            Frame::Hello {
                version: 1,
                node_id: s("edge-fra-1"),
                region: s("eu-central"),
                capacity_viewers: 5000,
                public_url: s("https://edge-fra-1.example"),
                secret: Bytes::from_static(b"node secret 0123456789abcdef"),
            },
            Frame::Welcome {
                origin_id: s("origin-1"),
                heartbeat_ms: 1000,
            },
            Frame::Watch { event: s("keynote") },
            Frame::Unwatch { event: s("keynote") },
            Frame::Catalog {
                event: s("keynote"),
                state: EventState::Live,
                renditions: vec![s("1080p"), s("720p"), s("audio")],
                multivariant: Some(s(
                    "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-STREAM-INF:BANDWIDTH=6000000,CODECS=\"avc1.640028,mp4a.40.2\"\n1080p/index.m3u8\n",
                )),
            },
            Frame::Subscribe {
                sub: 7,
                event: s("keynote"),
                rendition: s("720p"),
                resume: Some(Resume {
                    epoch: 3,
                    msn: 1200,
                    part: 4,
                }),
            },
            Frame::Unsubscribe { sub: 7 },
            Frame::SubscribeOk {
                sub: 7,
                epoch: 3,
                replay_to: Some((120, 4)),
            },
            Frame::SubscribeError {
                sub: 8,
                code: ErrorCode::NotFound,
                reason: s("no rendition 4k"),
            },
            Frame::SubscriptionEnd {
                sub: 7,
                code: ErrorCode::Lagging,
                reason: s("behind by 12 parts"),
            },
            Frame::Provision {
                event: s("keynote"),
                viewer_cap: 2000,
                ticketed: true,
                keys: vec![
                    (s("k2"), Bytes::from_static(b"a secret of thirty-two bytes!!!!")),
                    (s("k1"), Bytes::from_static(b"an older secret, 32 bytes long!!")),
                ],
            },
            Frame::Release { event: s("keynote") },
            Frame::Heartbeat {
                seq: 42,
                viewers: 1234,
                slots: 3,
                bytes_held: 180_000_000,
            },
            Frame::HeartbeatAck { seq: 42 },
            Frame::Qoe {
                event: s("keynote"),
                epoch: 7,
                report: Box::new({
                    let mut r = crate::qoe::Report {
                        viewers_now: 12,
                        sessions_started: 15,
                        qualified: 10,
                        clean: 9,
                        stalls: 2,
                        ..Default::default()
                    };
                    r.errors[1] = 3;
                    for v in [700, 710, 1500] {
                        r.latency.add(v);
                    }
                    r.bitrate.add(3000);
                    r
                }),
            },
            Frame::ObjectHeader { sub: 7, seq: 0 },
            Frame::Init {
                data: Bytes::from_static(b"\x00\x00\x00\x18ftypiso6\x00\x00\x00\x00iso6cmfc"),
                part_target_ns: 333_333_333,
            },
            Frame::SegmentStart {
                msn: 1200,
                discontinuity: false,
                program_date_time_ns: 1_790_000_000_123_000_000,
            },
            Frame::PartStart {
                msn: 1200,
                part: 0,
                independent: true,
            },
            Frame::Chunk {
                data: Bytes::from_static(b"\x00\x00\x00\x10moof....\x00\x00\x00\x08mdat"),
            },
            Frame::PartEnd {
                msn: 1200,
                part: 0,
                duration_ns: 333_333_333,
            },
            Frame::SegmentEnd {
                msn: 1200,
                duration_ns: 2_000_000_000,
            },
            Frame::Ended,
            Frame::ObjectEnd,
        ]
    }

    /// Every kind again at the edges: zeros and empties, then maxima (2^62-1 varints,
    /// u32::MAX, strings of exactly max_string bytes, max_list renditions).
    fn edges() -> Vec<Frame> {
        let long = "é".repeat(512); // 1024 bytes, two per char
        assert_eq!(long.len(), Limits::default().max_string);
        let mut frames = vec![
            Frame::Hello {
                version: 0,
                node_id: s(""),
                region: s(""),
                capacity_viewers: 0,
                public_url: s(""),
                secret: Bytes::new(),
            },
            Frame::Hello {
                version: u32::MAX,
                node_id: long.clone(),
                region: long.clone(),
                capacity_viewers: u32::MAX,
                public_url: long.clone(),
                secret: Bytes::from(vec![0xff; 300]),
            },
            Frame::Welcome {
                origin_id: s(""),
                heartbeat_ms: u32::MAX,
            },
            Frame::Watch { event: long.clone() },
            Frame::Unwatch { event: s("") },
            Frame::Catalog {
                event: s(""),
                state: EventState::Waiting,
                renditions: vec![],
                multivariant: None,
            },
            Frame::Catalog {
                event: long.clone(),
                state: EventState::Ended,
                renditions: (0..64).map(|i| format!("r{i}")).collect(),
                // Above max_string: Catalog's multivariant is bounded by the frame.
                multivariant: Some("#EXT-X-STREAM-INF:BANDWIDTH=1\n".repeat(100)),
            },
            Frame::Catalog {
                event: s("e"),
                state: EventState::Live,
                renditions: vec![long.clone(), s("")],
                multivariant: Some(s("")),
            },
            Frame::Subscribe {
                sub: 0,
                event: s(""),
                rendition: s(""),
                resume: None,
            },
            Frame::Subscribe {
                sub: MAX,
                event: long.clone(),
                rendition: long.clone(),
                resume: Some(Resume {
                    epoch: MAX,
                    msn: MAX,
                    part: u32::MAX,
                }),
            },
            Frame::Unsubscribe { sub: MAX },
            Frame::SubscribeOk {
                sub: 0,
                epoch: MAX,
                replay_to: None,
            },
            Frame::SubscribeOk {
                sub: MAX,
                epoch: 0,
                replay_to: Some((MAX, u32::MAX)),
            },
            Frame::SubscribeError {
                sub: MAX,
                code: ErrorCode::Unknown(MAX),
                reason: long.clone(),
            },
            Frame::SubscriptionEnd {
                sub: 0,
                code: ErrorCode::NoError,
                reason: s(""),
            },
            Frame::Provision {
                event: s(""),
                viewer_cap: u32::MAX,
                ticketed: false,
                keys: Vec::new(),
            },
            Frame::Release { event: long.clone() },
            Frame::Heartbeat {
                seq: MAX,
                viewers: u32::MAX,
                slots: 0,
                bytes_held: MAX,
            },
            Frame::HeartbeatAck { seq: 0 },
            Frame::Qoe {
                event: s(""),
                epoch: 0,
                report: Box::default(),
            },
            Frame::Qoe {
                event: long.clone(),
                epoch: MAX,
                report: Box::new({
                    let mut r = crate::qoe::Report::default();
                    r.set_counters(&[MAX; crate::qoe::COUNTERS]);
                    for h in r.hists_mut() {
                        for b in 0..crate::qoe::hist::MAX_BUCKETS as u16 {
                            h.add_n(b, MAX);
                        }
                    }
                    r
                }),
            },
            Frame::ObjectHeader { sub: MAX, seq: MAX },
            Frame::Init {
                data: Bytes::new(),
                part_target_ns: 0,
            },
            Frame::SegmentStart {
                msn: MAX,
                discontinuity: true,
                program_date_time_ns: MAX,
            },
            Frame::PartStart {
                msn: 0,
                part: u32::MAX,
                independent: false,
            },
            Frame::Chunk { data: Bytes::new() },
            Frame::Chunk {
                data: Bytes::from(vec![0x24; 70]),
            },
            Frame::PartEnd {
                msn: MAX,
                part: u32::MAX,
                duration_ns: MAX,
            },
            Frame::SegmentEnd {
                msn: 0,
                duration_ns: 0,
            },
        ];
        // Every known ErrorCode in both coded frames.
        for code in 0..0x16 {
            frames.push(Frame::SubscriptionEnd {
                sub: code,
                code: ErrorCode::from_code(code),
                reason: s("x"),
            });
        }
        frames
    }

    /// What an object stream carries: header, segment and part boundaries, three chunks.
    fn object_stream() -> Vec<Frame> {
        vec![
            Frame::ObjectHeader { sub: 1, seq: 17 },
            Frame::SegmentStart {
                msn: 500,
                discontinuity: false,
                program_date_time_ns: 1_790_000_000_000_000_000,
            },
            Frame::PartStart {
                msn: 500,
                part: 0,
                independent: true,
            },
            Frame::Chunk {
                data: Bytes::from((0..200u16).map(|i| i as u8).collect::<Vec<_>>()),
            },
            Frame::Chunk {
                data: Bytes::from(vec![0xab; 40]),
            },
            Frame::Chunk {
                data: Bytes::from_static(b"\x00\x00\x00\x08mdat"),
            },
            Frame::PartEnd {
                msn: 500,
                part: 0,
                duration_ns: 333_333_333,
            },
            Frame::ObjectEnd,
        ]
    }

    #[test]
    fn every_variant_round_trips() {
        let mut kinds = std::collections::BTreeSet::new();
        for frame in typical().into_iter().chain(edges()).chain(object_stream()) {
            kinds.insert(frame.frame_type());
            let bytes = encode(std::slice::from_ref(&frame));
            let mut dec = FrameDecoder::new(Limits::default());
            dec.push(&bytes);
            assert_eq!(dec.next_frame(), Ok(Some(frame.clone())), "{}", frame.name());
            assert_eq!(dec.next_frame(), Ok(None));
            assert_eq!((dec.offset(), dec.buffered()), (bytes.len() as u64, 0));
            assert_eq!(kind(frame.frame_type()).map(|k| k.0), Some(frame.name()));
        }
        let expected: Vec<u8> = (0x01..=0x0f).chain(0x20..=0x28).collect();
        assert_eq!(kinds.into_iter().collect::<Vec<_>>(), expected);
    }

    #[test]
    fn catalog_multivariant_up_to_the_catalog_limit() {
        let limits = Limits::default();
        let frame = |len: usize| Frame::Catalog {
            event: s("keynote"),
            state: EventState::Live,
            renditions: vec![s("720p")],
            multivariant: Some("#".repeat(len)),
        };
        // The payload without the multivariant's bytes and its 4-byte length.
        let fixed = 1 + 7 + 1 + 1 + 1 + 4 + 1 + 4;
        let at_limit = frame(limits.max_catalog_frame - fixed);
        let bytes = encode(std::slice::from_ref(&at_limit));
        assert_eq!(bytes.len(), 1 + 4 + limits.max_catalog_frame);
        assert_eq!(decode_all(&bytes), Ok(vec![at_limit]));

        let over = encode(&[frame(limits.max_catalog_frame - fixed + 1)]);
        assert_eq!(
            error_of(&over),
            RelayError::FrameTooLarge {
                frame: "Catalog",
                len: limits.max_catalog_frame as u64 + 1,
                max: limits.max_catalog_frame,
                offset: 0,
            }
        );
    }

    #[test]
    fn wire_bytes_are_pinned() {
        // Round trips cannot catch a change made to both sides: these bytes can.
        let cases: Vec<(Frame, &[u8])> = vec![
            (
                Frame::Hello {
                    version: 1,
                    node_id: s("e1"),
                    region: s("eu"),
                    capacity_viewers: 100,
                    public_url: s("http://e1"),
                    secret: Bytes::from_static(b"k"),
                },
                b"\x01\x15\x01\x02e1\x02eu\x40\x64\x09http://e1\x01k",
            ),
            (
                Frame::Catalog {
                    event: s("ev"),
                    state: EventState::Ended,
                    renditions: vec![s("a")],
                    multivariant: Some(s("m")),
                },
                b"\x05\x0a\x02ev\x02\x01\x01a\x01\x01m",
            ),
            (
                Frame::Subscribe {
                    sub: 7,
                    event: s("ev"),
                    rendition: s("r"),
                    resume: Some(Resume {
                        epoch: 1,
                        msn: 300,
                        part: 2,
                    }),
                },
                b"\x06\x0b\x07\x02ev\x01r\x01\x01\x41\x2c\x02",
            ),
            (
                Frame::SubscribeError {
                    sub: 1,
                    code: ErrorCode::NotFound,
                    reason: s("no"),
                },
                b"\x09\x05\x01\x04\x02no",
            ),
            (
                Frame::SegmentStart {
                    msn: 1,
                    discontinuity: true,
                    program_date_time_ns: 1 << 30,
                },
                b"\x22\x0a\x01\x01\xc0\x00\x00\x00\x40\x00\x00\x00",
            ),
            (
                Frame::PartEnd {
                    msn: 1,
                    part: 2,
                    duration_ns: 1000,
                },
                b"\x25\x04\x01\x02\x43\xe8",
            ),
            (
                Frame::Chunk {
                    data: Bytes::from_static(b"abc"),
                },
                b"\x24\x03abc",
            ),
            (Frame::ObjectEnd, b"\x28\x00"),
        ];
        for (frame, bytes) in cases {
            assert_eq!(encode(std::slice::from_ref(&frame)), bytes, "{frame:?}");
            assert_eq!(decode_all(bytes), Ok(vec![frame]));
        }
    }

    #[test]
    fn chunk_header_is_the_encoded_chunk_minus_its_payload() {
        for len in [0usize, 1, 63, 64, 16_383, 16_384, 100_000] {
            let data = Bytes::from(vec![7u8; len]);
            let header = chunk_header(len);
            assert_eq!(header.len(), 1 + varint::len(len as u64));
            let mut whole = header.to_vec();
            whole.extend_from_slice(&data);
            assert_eq!(encode(&[Frame::Chunk { data }]), whole, "{len}");
        }
        assert_eq!(chunk_header(1 << 30).len(), 9);
    }

    #[test]
    fn any_split_gives_the_same_frames() {
        for stream in [typical(), edges(), object_stream()] {
            let bytes = encode(&stream);
            let limits = Limits::default();
            assert_eq!(decode_pieces(&limits, [&bytes[..]]), (stream.clone(), None));
            for cut in 0..=bytes.len() {
                let (a, b) = bytes.split_at(cut);
                assert_eq!(
                    decode_pieces(&limits, [a, b]),
                    (stream.clone(), None),
                    "cut at {cut}"
                );
            }
            assert_eq!(decode_pieces(&limits, bytes.chunks(1)), (stream.clone(), None));
            assert_eq!(decode_pieces(&limits, bytes.chunks(7)), (stream, None));
        }
    }

    #[test]
    fn chunk_payloads_share_the_buffer() {
        let bytes = encode(&object_stream());
        let mut dec = FrameDecoder::new(Limits::default());
        dec.push(&bytes);
        let mut chunks = Vec::new();
        while let Some(f) = dec.next_frame().unwrap() {
            if let Frame::Chunk { data } = f {
                chunks.push(data);
            }
        }
        // Slices of one frozen allocation: consecutive chunks sit 2-3 header bytes apart.
        let a = chunks[0].as_ptr() as usize;
        let b = chunks[1].as_ptr() as usize;
        assert_eq!(b - a, chunks[0].len() + 2);
    }

    #[test]
    fn an_incomplete_frame_needs_more() {
        let bytes = encode(&[Frame::Heartbeat {
            seq: 1,
            viewers: 2,
            slots: 3,
            bytes_held: 4,
        }]);
        for cut in 0..bytes.len() {
            let mut dec = FrameDecoder::new(Limits::default());
            dec.push(&bytes[..cut]);
            assert_eq!(dec.next_frame(), Ok(None), "cut at {cut}");
            assert_eq!((dec.offset(), dec.buffered()), (0, cut));
        }
        // A 2-byte length varint cut after its first byte.
        let mut dec = FrameDecoder::new(Limits::default());
        dec.push(&[0x24, 0x40]);
        assert_eq!(dec.next_frame(), Ok(None));
    }

    #[test]
    fn a_payload_that_ends_before_its_fields_is_malformed() {
        // Heartbeat declared 2 bytes long: seq and viewers, then slots is missing.
        let err = error_of(&raw(0x0d, &[0x01, 0x02]));
        assert!(
            matches!(
                &err,
                RelayError::Malformed {
                    frame: "Heartbeat",
                    field: "slots",
                    offset: 0,
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(err.code(), ErrorCode::ProtocolViolation);
        // A varint cut by the payload's end.
        let err = error_of(&raw(0x0e, &[0x80, 0x00]));
        assert_eq!(
            err.to_string(),
            "relay frame HeartbeatAck at stream offset 0: seq: the payload ends inside the varint at payload byte 0"
        );
        // A string longer than what is left.
        let err = error_of(&raw(0x03, &[0x05, b'a', b'b']));
        assert_eq!(
            err.to_string(),
            "relay frame Watch at stream offset 0: event: 5 bytes announced at payload byte 0, 2 left in the payload"
        );
        // An empty payload for a frame with fields, after a good frame: the offset moves.
        let mut bytes = encode(&[Frame::Ended]);
        bytes.extend(raw(0x20, &[]));
        let err = error_of(&bytes);
        assert!(
            matches!(
                &err,
                RelayError::Malformed {
                    frame: "ObjectHeader",
                    field: "sub",
                    offset: 2,
                    ..
                }
            ),
            "{err:?}"
        );
        // Missing option contents and missing bool.
        let err = error_of(&raw(0x06, &[0x01, 0x00, 0x00, 0x01, 0x05]));
        assert!(
            matches!(
                &err,
                RelayError::Malformed {
                    field: "resume.msn",
                    ..
                }
            ),
            "{err:?}"
        );
        let err = error_of(&raw(0x23, &[0x01, 0x00]));
        assert!(
            matches!(
                &err,
                RelayError::Malformed {
                    field: "independent",
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let mut payload = encode(&[Frame::HeartbeatAck { seq: 9 }])[2..].to_vec();
        payload.extend_from_slice(b"xyz");
        let mut bytes = encode(&[Frame::Watch { event: s("e") }]);
        let offset = bytes.len() as u64;
        bytes.extend(raw(0x0e, &payload));
        let err = error_of(&bytes);
        assert_eq!(
            err,
            RelayError::TrailingBytes {
                frame: "HeartbeatAck",
                extra: 3,
                offset,
            }
        );
        assert_eq!(
            err.to_string(),
            "relay frame HeartbeatAck at stream offset 4: 3 trailing bytes after the last field"
        );
        assert_eq!(err.code(), ErrorCode::ProtocolViolation);
        for frame_type in [0x27, 0x28] {
            assert!(matches!(
                error_of(&raw(frame_type, &[0])),
                RelayError::TrailingBytes { extra: 1, .. }
            ));
        }
    }

    #[test]
    fn qoe_reports_with_impossible_histograms_are_refused_naming_the_field() {
        use crate::qoe::hist::MAX_BUCKETS;
        // event "", no counters, 1 histogram (startup): one bucket, past the last.
        let mut p = BytesMut::new();
        p.put_u8(0);
        p.put_u8(0); // epoch
        p.put_u8(0);
        p.put_u8(1);
        varint::encode(1, &mut p);
        varint::encode(MAX_BUCKETS as u64, &mut p);
        p.put_u8(1);
        let e = error_of(&raw(0x0f, &p)).to_string();
        assert!(
            e.contains("startup: bucket") && e.contains("does not exist"),
            "{e}"
        );
        // 2 histograms; latency has more buckets than there are.
        let mut p = BytesMut::new();
        p.put_u8(0);
        p.put_u8(0); // epoch
        p.put_u8(0);
        p.put_u8(2);
        p.put_u8(0);
        varint::encode(MAX_BUCKETS as u64 + 1, &mut p);
        let e = error_of(&raw(0x0f, &p)).to_string();
        assert!(e.contains("latency: histogram of"), "{e}");
        // A histogram past the known ones is read and dropped (a newer edge).
        let mut p = BytesMut::new();
        p.put_u8(0);
        p.put_u8(0); // epoch
        p.put_u8(0);
        varint::encode(crate::qoe::HISTS as u64 + 1, &mut p);
        for _ in 0..crate::qoe::HISTS {
            p.put_u8(0);
        }
        p.put_u8(1);
        p.put_u8(3);
        p.put_u8(9);
        let mut dec = FrameDecoder::new(Limits::default());
        dec.push(&raw(0x0f, &p));
        assert_eq!(
            dec.next_frame(),
            Ok(Some(Frame::Qoe {
                event: String::new(),
                epoch: 0,
                report: Box::default()
            }))
        );
        // 65 counters: over the list limit.
        let mut p = BytesMut::new();
        p.put_u8(0);
        p.put_u8(0); // epoch
        varint::encode(65, &mut p);
        let e = error_of(&raw(0x0f, &p)).to_string();
        assert!(e.contains("counters: list of 65"), "{e}");
    }

    #[test]
    fn unknown_types_are_refused_from_the_type_byte() {
        for frame_type in [0x00, 0x10, 0x1f, 0x29, 0x40, 0xff] {
            let mut dec = FrameDecoder::new(Limits::default());
            dec.push(&[frame_type]);
            let err = dec.next_frame().unwrap_err();
            assert_eq!(
                err,
                RelayError::UnknownFrameType {
                    frame_type,
                    offset: 0
                }
            );
            assert_eq!(err.code(), ErrorCode::ProtocolViolation);
        }
        let mut bytes = encode(&[Frame::ObjectEnd]);
        bytes.push(0x7f);
        assert_eq!(
            error_of(&bytes).to_string(),
            "relay frame of unknown type 0x7f at stream offset 2"
        );
    }

    #[test]
    fn bad_bools_option_tags_and_states_are_refused() {
        let err = error_of(&raw(0x22, &[0x01, 0x02, 0x00]));
        assert_eq!(
            err.to_string(),
            "relay frame SegmentStart at stream offset 0: discontinuity: bool 2 at payload byte 1 is not 0 or 1"
        );
        let err = error_of(&raw(0x23, &[0x01, 0x00, 0xff]));
        assert!(
            matches!(
                &err,
                RelayError::Malformed {
                    frame: "PartStart",
                    field: "independent",
                    ..
                }
            ),
            "{err:?}"
        );
        // Subscribe with resume tag 2.
        let err = error_of(&raw(0x06, &[0x01, 0x00, 0x00, 0x02]));
        assert!(
            matches!(
                &err,
                RelayError::Malformed {
                    frame: "Subscribe",
                    field: "resume",
                    ..
                }
            ),
            "{err:?}"
        );
        // Catalog with state 3, then with multivariant tag 2.
        let err = error_of(&raw(0x05, &[0x01, b'e', 0x03, 0x00, 0x00]));
        assert_eq!(
            err.to_string(),
            "relay frame Catalog at stream offset 0: state: 3 at payload byte 2 is not 0 (waiting), 1 (live) or 2 (ended)"
        );
        let err = error_of(&raw(0x05, &[0x01, b'e', 0x01, 0x00, 0x02]));
        assert!(
            matches!(
                &err,
                RelayError::Malformed {
                    field: "multivariant",
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn strings_must_be_utf8() {
        let err = error_of(&raw(0x03, &[0x02, 0xc3, 0x28]));
        assert!(
            matches!(
                &err,
                RelayError::Malformed {
                    frame: "Watch",
                    field: "event",
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("is not UTF-8"), "{err}");
        // In a list and in the multivariant playlist too.
        let err = error_of(&raw(0x05, &[0x00, 0x01, 0x01, 0x01, 0xff, 0x00]));
        assert!(
            matches!(
                &err,
                RelayError::Malformed {
                    field: "renditions",
                    ..
                }
            ),
            "{err:?}"
        );
        let err = error_of(&raw(0x05, &[0x00, 0x01, 0x00, 0x01, 0x01, 0x80]));
        assert!(
            matches!(
                &err,
                RelayError::Malformed {
                    field: "multivariant",
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn u32_fields_must_fit() {
        let mut payload = BytesMut::new();
        varint::encode(1 << 32, &mut payload);
        payload.extend_from_slice(&[0, 0, 0, 0]);
        let err = error_of(&raw(0x01, &payload));
        assert_eq!(
            err.to_string(),
            "relay frame Hello at stream offset 0: version: 4294967296 at payload byte 0 does not fit in 32 bits"
        );
        // PartEnd's part, as an 8-byte varint.
        let err = error_of(&raw(0x25, &[0x01, 0xc0, 0, 0, 1, 0, 0, 0, 0, 0x00]));
        assert!(
            matches!(
                &err,
                RelayError::Malformed {
                    frame: "PartEnd",
                    field: "part",
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn strings_and_lists_over_their_limits_are_refused() {
        let limits = Limits::default();
        let too_long = "a".repeat(limits.max_string + 1);
        let err = error_of(&encode(&[Frame::Release { event: too_long }]));
        assert_eq!(
            err.to_string(),
            "relay frame Release at stream offset 0: event: string of 1025 bytes at payload byte 0 exceeds the limit of 1024"
        );
        assert_eq!(err.code(), ErrorCode::ProtocolViolation);
        let too_many = Frame::Catalog {
            event: s("e"),
            state: EventState::Live,
            renditions: (0..=limits.max_list).map(|i| i.to_string()).collect(),
            multivariant: None,
        };
        let err = error_of(&encode(&[too_many]));
        assert_eq!(
            err.to_string(),
            "relay frame Catalog at stream offset 0: renditions: list of 65 items at payload byte 3 exceeds the limit of 64"
        );
        // A huge count is refused before anything is allocated for it.
        let mut payload = vec![0x00, 0x01];
        payload.extend_from_slice(&[0xff; 8]); // 2^62-1 as a varint
        let err = error_of(&raw(0x05, &payload));
        assert!(
            matches!(
                &err,
                RelayError::Malformed {
                    field: "renditions",
                    ..
                }
            ),
            "{err:?}"
        );
        // Custom limits are the ones applied.
        let small = Limits {
            max_string: 3,
            max_list: 1,
            ..Limits::default()
        };
        let bytes = encode(&[
            Frame::Watch { event: s("abc") },
            Frame::Watch { event: s("abcd") },
        ]);
        let (frames, err) = decode_pieces(&small, [&bytes[..]]);
        assert_eq!(frames, vec![Frame::Watch { event: s("abc") }]);
        assert!(
            matches!(
                err,
                Some(RelayError::Malformed {
                    field: "event",
                    offset: 6,
                    ..
                })
            ),
            "{err:?}"
        );
    }

    #[test]
    fn frames_over_their_limit_are_refused_from_the_header_alone() {
        let limits = Limits::default();
        // Only the header of a 20 MB Chunk.
        let mut dec = FrameDecoder::new(limits.clone());
        dec.push(&encode(&[Frame::ObjectHeader { sub: 1, seq: 1 }]));
        dec.push(&chunk_header(20_000_000));
        assert!(matches!(dec.next_frame(), Ok(Some(Frame::ObjectHeader { .. }))));
        let offset = dec.offset();
        let err = dec.next_frame().unwrap_err();
        assert_eq!(
            err,
            RelayError::FrameTooLarge {
                frame: "Chunk",
                len: 20_000_000,
                max: limits.max_chunk,
                offset,
            }
        );
        assert_eq!(
            err.to_string(),
            "relay frame Chunk at stream offset 4: payload of 20000000 bytes exceeds the limit of 16777216"
        );
        assert_eq!(err.code(), ErrorCode::LimitExceeded);
        // Each class against its own limit: one byte over is refused, the limit itself waits
        // for the payload.
        let cases = [
            (0x21, "Init", limits.max_chunk),
            (0x24, "Chunk", limits.max_chunk),
            (0x05, "Catalog", limits.max_catalog_frame),
            (0x01, "Hello", limits.max_control_frame),
            (0x0d, "Heartbeat", limits.max_control_frame),
            (0x22, "SegmentStart", limits.max_control_frame),
            (0x28, "ObjectEnd", limits.max_control_frame),
        ];
        for (frame_type, frame, max) in cases {
            for (len, refused) in [(max as u64, false), (max as u64 + 1, true), (MAX, true)] {
                let mut header = BytesMut::new();
                header.put_u8(frame_type);
                varint::encode(len, &mut header);
                let mut dec = FrameDecoder::new(limits.clone());
                dec.push(&header);
                let expected = match refused {
                    true => Err(RelayError::FrameTooLarge {
                        frame,
                        len,
                        max,
                        offset: 0,
                    }),
                    false => Ok(None),
                };
                assert_eq!(dec.next_frame(), expected, "{frame} of {len}");
            }
        }
    }

    #[test]
    fn an_error_poisons_the_decoder() {
        let mut dec = FrameDecoder::new(Limits::default());
        let mut bytes = encode(&[Frame::ObjectHeader { sub: 1, seq: 2 }]);
        bytes.extend(raw(0x22, &[0x01, 0x05, 0x00]));
        bytes.extend(encode(&[Frame::ObjectEnd]));
        dec.push(&bytes);
        assert_eq!(dec.next_frame(), Ok(Some(Frame::ObjectHeader { sub: 1, seq: 2 })));
        let err = dec.next_frame().unwrap_err();
        assert!(
            matches!(
                &err,
                RelayError::Malformed {
                    field: "discontinuity",
                    offset: 4,
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(dec.offset(), 4, "the offset stays at the frame that failed");
        assert_eq!(dec.buffered(), 0, "what it held is dropped");
        dec.push(&encode(&[Frame::ObjectEnd]));
        assert_eq!(dec.buffered(), 0, "pushes are ignored");
        assert_eq!(dec.next_frame(), Err(err.clone()));
        assert_eq!(dec.next_frame(), Err(err));
    }

    #[test]
    fn debug_hides_the_secret_and_payload_bytes() {
        let hello = Frame::Hello {
            version: 1,
            node_id: s("e1"),
            region: s("eu"),
            capacity_viewers: 5,
            public_url: s("http://e1"),
            secret: Bytes::from_static(b"hunter2"),
        };
        let text = format!("{hello:?}");
        assert!(!text.contains("hunter2"), "{text}");
        assert_eq!(
            text,
            "Hello { version: 1, node_id: \"e1\", region: \"eu\", capacity_viewers: 5, public_url: \"http://e1\", secret: <redacted, 7 bytes> }"
        );
        let chunk = Frame::Chunk {
            data: Bytes::from(vec![0x41; 1000]),
        };
        assert_eq!(format!("{chunk:?}"), "Chunk { data: <1000 bytes> }");
        assert_eq!(format!("{:?}", Frame::ObjectEnd), "ObjectEnd");
    }

    /// Regenerates the seeds of the `relay_frame` fuzz target: one file per frame kind, a
    /// control session, and a whole object stream.
    #[test]
    #[ignore = "writes fuzz/corpus/relay_frame; run by hand"]
    fn write_fuzz_seeds() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/relay_frame");
        std::fs::create_dir_all(&dir).unwrap();
        let mut typical = typical();
        // Seeds stay small: the fuzzer mutates every byte of them.
        if let Some(Frame::Catalog { multivariant, .. }) = typical.get_mut(4) {
            *multivariant = Some(s("#EXTM3U\n720p.m3u8\n"));
        }
        for frame in &typical {
            let name = format!("{:02x}_{}", frame.frame_type(), frame.name());
            std::fs::write(dir.join(name), encode(std::slice::from_ref(frame))).unwrap();
        }
        let control = &typical[..15];
        std::fs::write(dir.join("control_session"), encode(control)).unwrap();
        std::fs::write(dir.join("object_stream"), encode(&object_stream())).unwrap();
    }
}

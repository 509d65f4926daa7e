//! The RTMP server session state machine: handshake, then commands (connect, createStream, publish, …), metadata and media turned into events and reply bytes.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};
use popcast_config::OriginLimits;

use super::amf0::{self, AmfError, Value, printable};
use super::chunk::{self, ChunkCodec, ChunkLimits, Message, msg_type};
use super::handshake::Handshake;

/// Chunk stream we send connection-level command replies on.
const CSID_COMMAND: u32 = 3;
/// Chunk stream we send stream-level statuses (onStatus) on.
const CSID_STREAM: u32 = 5;
/// Most message streams one connection may create.
const MAX_STREAMS: u32 = 16;

/// Limits and settings of one session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    /// Largest chunk size the peer may set.
    pub max_chunk_size: u32,
    /// Largest message the peer may announce (and so the largest media tag delivered).
    pub max_message_bytes: u32,
    /// Most chunk streams the peer may have open.
    pub max_chunk_streams: u32,
    /// Deepest AMF0 nesting accepted in commands and metadata.
    pub amf_max_depth: u32,
    /// Chunk size we send with (announced with Set Chunk Size in the connect reply).
    pub out_chunk_size: u32,
    /// Acknowledgement window we ask the peer for (Window Ack Size, Set Peer Bandwidth).
    pub window_ack_size: u32,
}

impl SessionConfig {
    pub fn from_limits(l: &OriginLimits) -> Self {
        Self {
            max_chunk_size: l.rtmp_max_chunk_size,
            max_message_bytes: l.rtmp_max_message_bytes,
            max_chunk_streams: l.rtmp_max_chunk_streams,
            amf_max_depth: l.amf_max_depth,
            out_chunk_size: 4096,
            window_ack_size: 2_500_000,
        }
    }
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self::from_limits(&OriginLimits::default())
    }
}

/// Why a session ended. Every variant's text says what the peer did wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RtmpError {
    #[error("RTMP handshake: client asked for protocol version {version}, only version 3 is supported")]
    HandshakeVersion { version: u8 },
    #[error("malformed RTMP chunk header on chunk stream {csid}: {reason}")]
    MalformedChunkHeader { csid: u32, reason: &'static str },
    #[error("peer set RTMP chunk size {requested}, over the limit of {limit}")]
    ChunkSizeOverLimit { requested: u32, limit: u32 },
    #[error("peer set invalid RTMP chunk size {requested} (must be 1 to 2147483647)")]
    InvalidChunkSize { requested: u32 },
    #[error("RTMP message of {length} bytes on chunk stream {csid} is over the limit of {limit} bytes")]
    MessageOverLimit { csid: u32, length: u32, limit: u32 },
    #[error("partly received RTMP messages would hold {held} bytes, over the limit of {limit}")]
    PartialMessagesOverLimit { held: usize, limit: usize },
    #[error("peer opened more than the limit of {limit} RTMP chunk streams")]
    TooManyChunkStreams { limit: u32 },
    #[error("malformed RTMP {message} message: {reason}")]
    MalformedControl {
        message: &'static str,
        reason: &'static str,
    },
    #[error("malformed AMF0 in RTMP {context}: {source}")]
    Amf {
        context: &'static str,
        #[source]
        source: AmfError,
    },
    #[error("RTMP command {command:?} out of order: {reason}")]
    CommandOutOfOrder { command: String, reason: &'static str },
    #[error("malformed RTMP command {command:?}: {reason}")]
    MalformedCommand { command: String, reason: &'static str },
    #[error("media before publish: {kind} message on stream {stream_id} before the client asked to publish")]
    MediaBeforePublish { kind: &'static str, stream_id: u32 },
    #[error("more than {limit} RTMP streams created")]
    TooManyStreams { limit: u32 },
    #[error("publish was not answered while {buffered} bytes arrived (limit {limit})")]
    PublishNotAnswered { buffered: usize, limit: usize },
}

/// What the application learns from a session.
#[derive(Debug, Clone, PartialEq)]
pub enum SessionEvent {
    Connected {
        app: String,
        tc_url: Option<String>,
    },
    /// The client asked to publish; the application must answer with accept_publish or reject_publish before more media is delivered.
    PublishRequested {
        app: String,
        stream_key: String,
    },
    /// @setDataFrame / onMetaData: the properties (name → value).
    Metadata(Vec<(String, Value)>),
    /// An FLV video tag body (message type 9) on the accepted stream; timestamp is the absolute RTMP timestamp in ms (u32, may wrap).
    Video {
        timestamp: u32,
        data: Bytes,
    },
    /// An FLV audio tag body (message type 8).
    Audio {
        timestamp: u32,
        data: Bytes,
    },
    /// deleteStream / FCUnpublish / closeStream on the publishing stream.
    Unpublished,
}

/// Where publishing is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Publish {
    /// No publish asked for (yet, or since the last one ended).
    Idle,
    /// PublishRequested is out; input processing is paused until the application answers.
    Pending {
        stream_id: u32,
    },
    Accepted {
        stream_id: u32,
    },
    Rejected {
        stream_id: u32,
    },
}

/// One RTMP server connection, sans IO: feed it the peer's bytes, write out what it gives
/// back, and act on its events.
///
/// While a [`SessionEvent::PublishRequested`] is unanswered the session stops reading
/// messages (it buffers input, up to `max_message_bytes + max_chunk_size`), so nothing the
/// client sends after `publish` is acted on before the application decides. Answering with
/// [`Session::accept_publish`] or [`Session::reject_publish`] processes what was buffered
/// at once; an error found there is returned by the next [`Session::receive`].
#[derive(Debug)]
pub struct Session {
    config: SessionConfig,
    handshake: Handshake,
    codec: ChunkCodec,
    input: BytesMut,
    output: BytesMut,
    events: VecDeque<SessionEvent>,
    /// The connect command's app, once connected.
    app: Option<String>,
    streams_created: u32,
    publish: Publish,
    /// Whether the client has ever asked to publish (media before that is an error; after it,
    /// stray media of a rejected or ended stream is dropped).
    ever_published: bool,
    /// The stream of the last publish command, for send_status.
    last_publish_stream: u32,
    failed: Option<RtmpError>,
}

impl Session {
    pub fn new(config: SessionConfig) -> Self {
        let limits = ChunkLimits {
            max_chunk_size: config.max_chunk_size,
            max_message_bytes: config.max_message_bytes,
            max_chunk_streams: config.max_chunk_streams,
        };
        Self {
            config,
            handshake: Handshake::AwaitC0C1,
            codec: ChunkCodec::new(limits),
            input: BytesMut::new(),
            output: BytesMut::new(),
            events: VecDeque::new(),
            app: None,
            streams_created: 0,
            publish: Publish::Idle,
            ever_published: false,
            last_publish_stream: 1,
            failed: None,
        }
    }

    /// Feeds bytes read from the peer. An Err means the session must end; the error names the problem (and is also what gets logged).
    ///
    /// Once it has failed, every later call returns the same error.
    pub fn receive(&mut self, data: &[u8]) -> Result<(), RtmpError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        self.input.extend_from_slice(data);
        self.process()
    }

    /// Bytes to write to the peer, if any (drains them).
    pub fn take_output(&mut self) -> Option<Bytes> {
        (!self.output.is_empty()).then(|| self.output.split().freeze())
    }

    /// Next event for the application.
    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        self.events.pop_front()
    }

    /// Whether the handshake has completed.
    pub fn handshake_done(&self) -> bool {
        self.handshake == Handshake::Done
    }

    /// Answers the pending PublishRequested: sends onStatus NetStream.Publish.Start (plus StreamBegin user control), and media tags for that stream are delivered from now on.
    ///
    /// Does nothing if no publish is pending.
    pub fn accept_publish(&mut self) {
        let Publish::Pending { stream_id } = self.publish else {
            tracing::debug!("accept_publish with no publish pending: ignored");
            return;
        };
        self.publish = Publish::Accepted { stream_id };
        let mut payload = Vec::with_capacity(6);
        payload.extend_from_slice(&chunk::USER_CONTROL_STREAM_BEGIN.to_be_bytes());
        payload.extend_from_slice(&stream_id.to_be_bytes());
        self.codec.write(
            &mut self.output,
            chunk::CSID_CONTROL,
            msg_type::USER_CONTROL,
            0,
            &payload,
        );
        self.write_status(stream_id, "status", "NetStream.Publish.Start", "Start publishing");
        self.resume();
    }

    /// Answers the pending PublishRequested with onStatus level "error" and this code (e.g. "NetStream.Publish.BadName") and description; media for that stream is not delivered. The session stays usable (a client may retry publish).
    ///
    /// Does nothing if no publish is pending.
    pub fn reject_publish(&mut self, code: &str, description: &str) {
        let Publish::Pending { stream_id } = self.publish else {
            tracing::debug!("reject_publish with no publish pending: ignored");
            return;
        };
        self.publish = Publish::Rejected { stream_id };
        self.write_status(stream_id, "error", code, description);
        self.resume();
    }

    /// Sends an onStatus on the publishing stream (e.g. level error, NetStream.Publish.Failed, "codec hvc1 is not supported") — used when the application refuses the stream mid-way; after it the application will close the connection.
    pub fn send_status(&mut self, level: &str, code: &str, description: &str) {
        let stream_id = match self.publish {
            Publish::Pending { stream_id }
            | Publish::Accepted { stream_id }
            | Publish::Rejected { stream_id } => stream_id,
            Publish::Idle => self.last_publish_stream,
        };
        self.write_status(stream_id, level, code, description);
    }

    /// Processes buffered input after the application answered a publish; an error is kept
    /// for the next receive.
    fn resume(&mut self) {
        if self.failed.is_some() {
            return;
        }
        if let Err(e) = self.process() {
            tracing::debug!(error = %e, "RTMP session failed while processing input buffered during publish");
        }
    }

    fn process(&mut self) -> Result<(), RtmpError> {
        let r = self.process_inner();
        if let Err(e) = &r {
            self.failed = Some(e.clone());
            self.input = BytesMut::new();
        }
        r
    }

    fn process_inner(&mut self) -> Result<(), RtmpError> {
        if self.handshake != Handshake::Done {
            let n = self.handshake.advance(&mut self.input, &mut self.output)?;
            self.codec.count_handshake(n);
            if self.handshake != Handshake::Done {
                return Ok(());
            }
        }
        loop {
            if matches!(self.publish, Publish::Pending { .. }) {
                let limit = self.config.max_message_bytes as usize + self.config.max_chunk_size as usize;
                if self.input.len() > limit {
                    return Err(RtmpError::PublishNotAnswered {
                        buffered: self.input.len(),
                        limit,
                    });
                }
                break;
            }
            match self.codec.next_message(&mut self.input)? {
                Some(msg) => self.handle(msg)?,
                None => break,
            }
        }
        self.codec.maybe_ack(&mut self.output);
        Ok(())
    }

    fn handle(&mut self, msg: Message) -> Result<(), RtmpError> {
        match msg.type_id {
            msg_type::AUDIO | msg_type::VIDEO => self.on_media(msg),
            msg_type::COMMAND_AMF0 => self.on_command(&msg.payload, msg.stream_id),
            // An AMF3 command is a format byte, then AMF0.
            msg_type::COMMAND_AMF3 => self.on_command(msg.payload.get(1..).unwrap_or(&[]), msg.stream_id),
            msg_type::DATA_AMF0 => self.on_data(&msg.payload, msg.stream_id),
            msg_type::DATA_AMF3 => match msg.payload.split_first() {
                Some((0, rest)) => self.on_data(rest, msg.stream_id),
                _ => {
                    tracing::debug!("AMF3 data message without the AMF0 format byte ignored");
                    Ok(())
                }
            },
            msg_type::SHARED_OBJECT_AMF0 | msg_type::SHARED_OBJECT_AMF3 => {
                tracing::debug!("RTMP shared object message ignored (not supported)");
                Ok(())
            }
            msg_type::AGGREGATE => {
                tracing::debug!("RTMP aggregate message ignored (publishers do not send them)");
                Ok(())
            }
            other => {
                tracing::debug!(type_id = other, "RTMP message type ignored");
                Ok(())
            }
        }
    }

    fn on_media(&mut self, msg: Message) -> Result<(), RtmpError> {
        let video = msg.type_id == msg_type::VIDEO;
        if msg.payload.is_empty() {
            // ffmpeg sends empty tags; they carry nothing.
            return Ok(());
        }
        match self.publish {
            Publish::Accepted { stream_id } if stream_id == msg.stream_id => {
                let (timestamp, data) = (msg.timestamp, msg.payload);
                self.events.push_back(if video {
                    SessionEvent::Video { timestamp, data }
                } else {
                    SessionEvent::Audio { timestamp, data }
                });
                Ok(())
            }
            Publish::Idle if !self.ever_published => Err(RtmpError::MediaBeforePublish {
                kind: if video { "video" } else { "audio" },
                stream_id: msg.stream_id,
            }),
            _ => {
                tracing::trace!(
                    stream_id = msg.stream_id,
                    "media for a stream not being published dropped"
                );
                Ok(())
            }
        }
    }

    fn on_data(&mut self, payload: &[u8], stream_id: u32) -> Result<(), RtmpError> {
        // Metadata is advice: one we cannot read (an AMF0 type we refuse, garbage) is
        // dropped, as nginx-rtmp does, rather than disconnecting an encoder that would only
        // reconnect and send it again.
        let values = match amf0::decode_all(payload, self.config.amf_max_depth) {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!("RTMP data message dropped: {e}");
                return Ok(());
            }
        };
        let mut values = values.into_iter();
        let mut name = values.next();
        if name.as_ref().and_then(Value::as_str) == Some("@setDataFrame") {
            name = values.next();
        }
        let Some("onMetaData") = name.as_ref().and_then(Value::as_str) else {
            let handler = name.as_ref().and_then(Value::as_str).map(printable);
            tracing::debug!(handler, "RTMP data message ignored");
            return Ok(());
        };
        let props = match values.next() {
            Some(Value::Object(p) | Value::EcmaArray(p)) => p,
            _ => {
                tracing::debug!("onMetaData without properties ignored");
                return Ok(());
            }
        };
        match self.publish {
            Publish::Accepted { stream_id: s } if s == stream_id => {
                self.events.push_back(SessionEvent::Metadata(props));
            }
            _ => tracing::debug!(stream_id, "metadata for a stream not being published dropped"),
        }
        Ok(())
    }

    fn on_command(&mut self, payload: &[u8], stream_id: u32) -> Result<(), RtmpError> {
        let values =
            amf0::decode_all(payload, self.config.amf_max_depth).map_err(|source| RtmpError::Amf {
                context: "command",
                source,
            })?;
        let Some(name) = values.first().and_then(Value::as_str) else {
            return Err(RtmpError::MalformedCommand {
                command: String::new(),
                reason: "does not start with a command name",
            });
        };
        let txn = values.get(1).and_then(Value::as_number).unwrap_or(0.0);
        // The arguments after the command object.
        let args = values.get(3..).unwrap_or(&[]);

        if name == "connect" {
            return self.on_connect(txn, values.get(2));
        }
        let Some(app) = self.app.clone() else {
            return Err(RtmpError::CommandOutOfOrder {
                command: printable(name),
                reason: "sent before connect",
            });
        };
        match name {
            "releaseStream" | "FCPublish" => {
                tracing::debug!(command = name, "acknowledged without reply");
            }
            "createStream" => {
                if self.streams_created >= MAX_STREAMS {
                    return Err(RtmpError::TooManyStreams { limit: MAX_STREAMS });
                }
                self.streams_created += 1;
                let id = self.streams_created;
                self.send_command(
                    CSID_COMMAND,
                    0,
                    &[
                        Value::String("_result".into()),
                        Value::Number(txn),
                        Value::Null,
                        Value::Number(id as f64),
                    ],
                );
            }
            "publish" => self.on_publish(app, stream_id, args)?,
            "FCUnpublish" => self.unpublish(None, name),
            "deleteStream" => {
                let id = args
                    .first()
                    .and_then(Value::as_number)
                    .map_or(stream_id, |n| n as u32);
                self.unpublish(Some(id), name);
            }
            "closeStream" => self.unpublish(Some(stream_id), name),
            other => {
                tracing::debug!(command = %printable(other), "RTMP command ignored");
            }
        }
        Ok(())
    }

    fn on_connect(&mut self, txn: f64, object: Option<&Value>) -> Result<(), RtmpError> {
        if self.app.is_some() {
            return Err(RtmpError::CommandOutOfOrder {
                command: "connect".into(),
                reason: "connected already",
            });
        }
        let Some(object) = object.filter(|o| o.properties().is_some()) else {
            return Err(RtmpError::MalformedCommand {
                command: "connect".into(),
                reason: "no command object",
            });
        };
        let Some(app) = object.get("app").and_then(Value::as_str) else {
            return Err(RtmpError::MalformedCommand {
                command: "connect".into(),
                reason: "the command object has no app string",
            });
        };
        let app = app.to_owned();
        let tc_url = object.get("tcUrl").and_then(Value::as_str).map(str::to_owned);
        let object_encoding = object
            .get("objectEncoding")
            .and_then(Value::as_number)
            .unwrap_or(0.0);
        tracing::debug!(app = %printable(app.split('?').next().unwrap_or("")), "RTMP connect");

        let window = self.config.window_ack_size;
        self.codec.write(
            &mut self.output,
            chunk::CSID_CONTROL,
            msg_type::WINDOW_ACK_SIZE,
            0,
            &window.to_be_bytes(),
        );
        let mut bw = window.to_be_bytes().to_vec();
        bw.push(2); // dynamic
        self.codec.write(
            &mut self.output,
            chunk::CSID_CONTROL,
            msg_type::SET_PEER_BANDWIDTH,
            0,
            &bw,
        );
        self.codec
            .set_out_chunk_size(&mut self.output, self.config.out_chunk_size);
        let props = Value::Object(vec![
            ("fmsVer".into(), Value::String("FMS/3,0,1,123".into())),
            ("capabilities".into(), Value::Number(31.0)),
        ]);
        let info = Value::Object(vec![
            ("level".into(), Value::String("status".into())),
            (
                "code".into(),
                Value::String("NetConnection.Connect.Success".into()),
            ),
            (
                "description".into(),
                Value::String("Connection succeeded.".into()),
            ),
            ("objectEncoding".into(), Value::Number(object_encoding)),
        ]);
        self.send_command(
            CSID_COMMAND,
            0,
            &[Value::String("_result".into()), Value::Number(txn), props, info],
        );
        self.events.push_back(SessionEvent::Connected {
            app: app.clone(),
            tc_url,
        });
        self.app = Some(app);
        Ok(())
    }

    fn on_publish(&mut self, app: String, stream_id: u32, args: &[Value]) -> Result<(), RtmpError> {
        if stream_id == 0 || stream_id > self.streams_created {
            return Err(RtmpError::CommandOutOfOrder {
                command: "publish".into(),
                reason: "on a stream that createStream did not create",
            });
        }
        if matches!(self.publish, Publish::Pending { .. } | Publish::Accepted { .. }) {
            return Err(RtmpError::CommandOutOfOrder {
                command: "publish".into(),
                reason: "already publishing",
            });
        }
        let Some(name) = args.first().and_then(Value::as_str) else {
            return Err(RtmpError::MalformedCommand {
                command: "publish".into(),
                reason: "no publishing name string",
            });
        };
        // The key is a secret and the query may hold more: neither is logged.
        let stream_key = name.split('?').next().unwrap_or("").to_owned();
        tracing::debug!(stream_id, "RTMP publish requested");
        self.publish = Publish::Pending { stream_id };
        self.ever_published = true;
        self.last_publish_stream = stream_id;
        self.events
            .push_back(SessionEvent::PublishRequested { app, stream_key });
        Ok(())
    }

    /// Ends the publish on `stream` (any stream if None), emitting Unpublished if it was
    /// pending or accepted.
    fn unpublish(&mut self, stream: Option<u32>, command: &str) {
        match self.publish {
            Publish::Pending { stream_id } | Publish::Accepted { stream_id }
                if stream.is_none_or(|s| s == stream_id) =>
            {
                tracing::debug!(command, "RTMP unpublish");
                self.publish = Publish::Idle;
                self.events.push_back(SessionEvent::Unpublished);
            }
            Publish::Rejected { stream_id } if stream.is_none_or(|s| s == stream_id) => {
                self.publish = Publish::Idle;
            }
            _ => tracing::debug!(command, "unpublish of a stream not being published ignored"),
        }
    }

    fn write_status(&mut self, stream_id: u32, level: &str, code: &str, description: &str) {
        let info = Value::Object(vec![
            ("level".into(), Value::String(level.into())),
            ("code".into(), Value::String(code.into())),
            ("description".into(), Value::String(description.into())),
        ]);
        self.send_command(
            CSID_STREAM,
            stream_id,
            &[
                Value::String("onStatus".into()),
                Value::Number(0.0),
                Value::Null,
                info,
            ],
        );
    }

    fn send_command(&mut self, csid: u32, stream_id: u32, values: &[Value]) {
        let payload = amf0::encode_all(values);
        self.codec.write(
            &mut self.output,
            csid,
            msg_type::COMMAND_AMF0,
            stream_id,
            &payload,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::rtmp::chunk::{ChunkWriter, tests::LIMITS};
    use crate::ingest::rtmp::handshake;

    /// The client side of a conversation: a plain handshake, then chunks at chunk size 128.
    struct Client {
        writer: ChunkWriter,
        bytes: BytesMut,
    }

    impl Client {
        fn new() -> Self {
            let mut bytes = BytesMut::new();
            bytes.extend_from_slice(&[3]);
            bytes.extend_from_slice(&[0; handshake::PACKET_SIZE * 2]);
            Self {
                writer: ChunkWriter::new(),
                bytes,
            }
        }

        fn command(&mut self, stream_id: u32, values: &[Value]) -> &mut Self {
            let payload = amf0::encode_all(values);
            self.writer
                .write(&mut self.bytes, 3, 0, msg_type::COMMAND_AMF0, stream_id, &payload);
            self
        }

        fn connect(&mut self) -> &mut Self {
            let obj = Value::Object(vec![
                ("app".into(), Value::String("live".into())),
                ("type".into(), Value::String("nonprivate".into())),
                ("tcUrl".into(), Value::String("rtmp://127.0.0.1/live".into())),
            ]);
            self.command(0, &[s("connect"), Value::Number(1.0), obj])
        }

        fn create_stream(&mut self, txn: f64) -> &mut Self {
            self.command(0, &[s("createStream"), Value::Number(txn), Value::Null])
        }

        fn publish(&mut self, name: &str) -> &mut Self {
            self.command(
                1,
                &[s("publish"), Value::Number(5.0), Value::Null, s(name), s("live")],
            )
        }

        fn media(&mut self, type_id: u8, ts: u32, data: &[u8]) -> &mut Self {
            self.writer.write(&mut self.bytes, 6, ts, type_id, 1, data);
            self
        }

        fn take(&mut self) -> BytesMut {
            self.bytes.split()
        }
    }

    fn s(v: &str) -> Value {
        Value::String(v.into())
    }

    fn events(session: &mut Session) -> Vec<SessionEvent> {
        std::iter::from_fn(|| session.poll_event()).collect()
    }

    /// Our replies, decoded with our own chunk reader and AMF0 decoder (after S0/S1/S2).
    struct Replies {
        codec: ChunkCodec,
        buf: BytesMut,
        handshake_skipped: bool,
    }

    impl Replies {
        fn new() -> Self {
            Self {
                codec: ChunkCodec::new(LIMITS),
                buf: BytesMut::new(),
                handshake_skipped: false,
            }
        }

        fn read(&mut self, session: &mut Session) -> Vec<(u8, u32, Vec<Value>)> {
            if let Some(b) = session.take_output() {
                self.buf.extend_from_slice(&b);
            }
            if !self.handshake_skipped {
                assert!(self.buf.len() > 2 * handshake::PACKET_SIZE);
                let _ = self.buf.split_to(1 + 2 * handshake::PACKET_SIZE);
                self.handshake_skipped = true;
            }
            let mut out = Vec::new();
            while let Some(m) = self.codec.next_message(&mut self.buf).unwrap() {
                let values = match m.type_id {
                    msg_type::COMMAND_AMF0 => amf0::decode_all(&m.payload, 16).unwrap(),
                    _ => vec![Value::Number(m.payload.len() as f64)],
                };
                out.push((m.type_id, m.stream_id, values));
            }
            assert!(self.buf.is_empty());
            out
        }
    }

    fn status_code(values: &[Value]) -> (&str, &str) {
        assert_eq!(values[0].as_str(), Some("onStatus"));
        let info = &values[3];
        (
            info.get("level").and_then(Value::as_str).unwrap(),
            info.get("code").and_then(Value::as_str).unwrap(),
        )
    }

    fn connected_session() -> (Session, Client, Replies) {
        let mut session = Session::new(SessionConfig::default());
        let mut client = Client::new();
        client.connect().create_stream(4.0);
        session.receive(&client.take()).unwrap();
        assert!(session.handshake_done());
        (session, client, Replies::new())
    }

    #[test]
    fn config_from_limits() {
        let c = SessionConfig::default();
        assert_eq!(c.max_chunk_size, 0xFF_FFFF);
        assert_eq!(c.max_message_bytes, 8 * 1024 * 1024);
        assert_eq!(c.amf_max_depth, 16);
        assert_eq!((c.out_chunk_size, c.window_ack_size), (4096, 2_500_000));
    }

    #[test]
    fn full_publish_flow() {
        let (mut session, mut client, mut replies) = connected_session();
        let r = replies.read(&mut session);
        // Window Ack Size, Set Peer Bandwidth, Set Chunk Size are consumed by the codec;
        // what is left is the connect _result, then the createStream _result.
        assert_eq!(r.len(), 2, "{r:?}");
        let connect = &r[0].2;
        assert_eq!(connect[0].as_str(), Some("_result"));
        assert_eq!(connect[1], Value::Number(1.0));
        assert_eq!(
            connect[2].get("fmsVer").and_then(Value::as_str),
            Some("FMS/3,0,1,123")
        );
        assert_eq!(
            connect[3].get("code").and_then(Value::as_str),
            Some("NetConnection.Connect.Success")
        );
        assert_eq!(connect[3].get("level").and_then(Value::as_str), Some("status"));
        assert_eq!(
            r[1].2,
            vec![s("_result"), Value::Number(4.0), Value::Null, Value::Number(1.0)]
        );
        assert_eq!(
            events(&mut session),
            vec![SessionEvent::Connected {
                app: "live".into(),
                tc_url: Some("rtmp://127.0.0.1/live".into())
            }]
        );

        client.publish("secret?token=abc");
        // Media right behind publish, in the same read: held until the application answers.
        client.media(msg_type::VIDEO, 0, &[0x17, 0, 0, 0, 0]);
        session.receive(&client.take()).unwrap();
        assert_eq!(
            events(&mut session),
            vec![SessionEvent::PublishRequested {
                app: "live".into(),
                stream_key: "secret".into()
            }]
        );
        assert!(
            replies.read(&mut session).is_empty(),
            "nothing sent before the answer"
        );
        session.accept_publish();
        let raw = session.take_output().unwrap();
        // StreamBegin(1) first: csid 2, length 6, type 4, stream 0; event 0, stream 1.
        assert_eq!(raw[..18], [2, 0, 0, 0, 0, 0, 6, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        replies.buf.extend_from_slice(&raw);
        let r = replies.read(&mut session);
        assert_eq!(r.len(), 1, "{r:?}");
        assert_eq!(status_code(&r[0].2), ("status", "NetStream.Publish.Start"));
        assert_eq!(r[0].1, 1, "onStatus on the publishing stream");
        assert_eq!(
            events(&mut session),
            vec![SessionEvent::Video {
                timestamp: 0,
                data: Bytes::from_static(&[0x17, 0, 0, 0, 0])
            }]
        );

        let meta = amf0::encode_all(&[
            s("@setDataFrame"),
            s("onMetaData"),
            Value::EcmaArray(vec![("width".into(), Value::Number(320.0))]),
        ]);
        client
            .writer
            .write(&mut client.bytes, 4, 0, msg_type::DATA_AMF0, 1, &meta);
        let bare = amf0::encode_all(&[
            s("onMetaData"),
            Value::Object(vec![("height".into(), Value::Number(180.0))]),
        ]);
        let mut amf3 = vec![0];
        amf3.extend_from_slice(&bare);
        client
            .writer
            .write(&mut client.bytes, 4, 0, msg_type::DATA_AMF3, 1, &amf3);
        client
            .media(msg_type::AUDIO, 23, &[0xaf, 1, 2])
            .media(msg_type::VIDEO, 33, &[]);
        client.media(msg_type::VIDEO, 33, &[0x27, 1]);
        client.command(
            1,
            &[s("FCUnpublish"), Value::Number(6.0), Value::Null, s("secret")],
        );
        client.command(
            0,
            &[
                s("deleteStream"),
                Value::Number(7.0),
                Value::Null,
                Value::Number(1.0),
            ],
        );
        session.receive(&client.take()).unwrap();
        assert_eq!(
            events(&mut session),
            vec![
                SessionEvent::Metadata(vec![("width".into(), Value::Number(320.0))]),
                SessionEvent::Metadata(vec![("height".into(), Value::Number(180.0))]),
                SessionEvent::Audio {
                    timestamp: 23,
                    data: Bytes::from_static(&[0xaf, 1, 2])
                },
                SessionEvent::Video {
                    timestamp: 33,
                    data: Bytes::from_static(&[0x27, 1])
                },
                SessionEvent::Unpublished,
            ]
        );
    }

    #[test]
    fn reject_then_retry_publish() {
        let (mut session, mut client, mut replies) = connected_session();
        replies.read(&mut session);
        events(&mut session);
        client.publish("wrong").media(msg_type::VIDEO, 0, &[1, 2]);
        session.receive(&client.take()).unwrap();
        assert!(matches!(
            events(&mut session)[..],
            [SessionEvent::PublishRequested { .. }]
        ));
        session.reject_publish("NetStream.Publish.BadName", "unknown stream key");
        let r = replies.read(&mut session);
        assert_eq!(status_code(&r[0].2), ("error", "NetStream.Publish.BadName"));
        assert_eq!(
            r[0].2[3].get("description").and_then(Value::as_str),
            Some("unknown stream key")
        );
        // The media that followed the rejected publish is dropped, not an error.
        assert!(events(&mut session).is_empty());

        client.publish("right");
        session.receive(&client.take()).unwrap();
        assert_eq!(
            events(&mut session),
            vec![SessionEvent::PublishRequested {
                app: "live".into(),
                stream_key: "right".into()
            }]
        );
        session.accept_publish();
        client.media(msg_type::AUDIO, 5, &[9]);
        session.receive(&client.take()).unwrap();
        assert_eq!(
            events(&mut session),
            vec![SessionEvent::Audio {
                timestamp: 5,
                data: Bytes::from_static(&[9])
            }]
        );
        // A second publish while publishing is out of order.
        client.publish("again");
        let err = session.receive(&client.take()).unwrap_err();
        assert!(matches!(err, RtmpError::CommandOutOfOrder { .. }), "{err}");
    }

    #[test]
    fn media_before_publish_is_an_error() {
        let (mut session, mut client, _) = connected_session();
        client.media(msg_type::VIDEO, 0, &[]); // empty: dropped silently
        session.receive(&client.take()).unwrap();
        client.media(msg_type::VIDEO, 0, &[0x17]);
        let err = session.receive(&client.take()).unwrap_err();
        assert_eq!(
            err,
            RtmpError::MediaBeforePublish {
                kind: "video",
                stream_id: 1
            }
        );
        assert!(err.to_string().contains("media before publish"), "{err}");
        // And it stays failed.
        assert_eq!(session.receive(&[]).unwrap_err(), err);
    }

    #[test]
    fn commands_before_connect_are_out_of_order() {
        let mut session = Session::new(SessionConfig::default());
        let mut client = Client::new();
        client.create_stream(2.0);
        let err = session.receive(&client.take()).unwrap_err();
        assert!(
            matches!(err, RtmpError::CommandOutOfOrder { ref command, .. } if command == "createStream"),
            "{err}"
        );
    }

    #[test]
    fn publish_on_an_uncreated_stream_is_out_of_order() {
        let mut session = Session::new(SessionConfig::default());
        let mut client = Client::new();
        client.connect().publish("key");
        let err = session.receive(&client.take()).unwrap_err();
        assert!(
            matches!(err, RtmpError::CommandOutOfOrder { ref command, .. } if command == "publish"),
            "{err}"
        );
    }

    #[test]
    fn malformed_commands() {
        let mut session = Session::new(SessionConfig::default());
        let mut client = Client::new();
        client.command(0, &[s("connect"), Value::Number(1.0), Value::Object(vec![])]);
        let err = session.receive(&client.take()).unwrap_err();
        assert!(matches!(err, RtmpError::MalformedCommand { .. }), "{err}");

        let mut session = Session::new(SessionConfig::default());
        let mut client = Client::new();
        client
            .writer
            .write(&mut client.bytes, 3, 0, msg_type::COMMAND_AMF0, 0, &[0x02, 0xff]);
        let err = session.receive(&client.take()).unwrap_err();
        assert!(
            matches!(
                err,
                RtmpError::Amf {
                    context: "command",
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("AMF0"), "{err}");
    }

    #[test]
    fn amf_depth_limit_applies_to_commands() {
        let config = SessionConfig {
            amf_max_depth: 2,
            ..SessionConfig::default()
        };
        let mut session = Session::new(config);
        let mut client = Client::new();
        let deep = Value::Object(vec![(
            "app".into(),
            Value::Object(vec![("a".into(), Value::Object(vec![]))]),
        )]);
        client.command(0, &[s("connect"), Value::Number(1.0), deep]);
        let err = session.receive(&client.take()).unwrap_err();
        assert!(
            matches!(
                err,
                RtmpError::Amf {
                    source: AmfError::TooDeep { limit: 2, .. },
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn amf3_command_and_unknown_commands() {
        let mut session = Session::new(SessionConfig::default());
        let mut client = Client::new();
        client.connect();
        let mut payload = vec![0];
        payload.extend(amf0::encode_all(&[
            s("createStream"),
            Value::Number(2.0),
            Value::Null,
        ]));
        client
            .writer
            .write(&mut client.bytes, 3, 0, msg_type::COMMAND_AMF3, 0, &payload);
        client.command(
            0,
            &[s("getStreamLength"), Value::Number(3.0), Value::Null, s("x")],
        );
        session.receive(&client.take()).unwrap();
        let r = Replies::new().read(&mut session);
        assert_eq!(r.len(), 2);
        assert_eq!(
            r[1].2,
            vec![s("_result"), Value::Number(2.0), Value::Null, Value::Number(1.0)]
        );
    }

    #[test]
    fn unanswered_publish_buffers_only_up_to_a_bound() {
        let config = SessionConfig {
            max_message_bytes: 1000,
            max_chunk_size: 128,
            ..SessionConfig::default()
        };
        let (mut session, mut client, _) = {
            let mut session = Session::new(config);
            let mut client = Client::new();
            client.connect().create_stream(2.0);
            session.receive(&client.take()).unwrap();
            (session, client, ())
        };
        client.publish("k");
        session.receive(&client.take()).unwrap();
        session.receive(&[0; 1000]).unwrap();
        let err = session.receive(&[0; 200]).unwrap_err();
        assert!(
            matches!(
                err,
                RtmpError::PublishNotAnswered {
                    buffered: 1200,
                    limit: 1128
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn digest_handshake_reply_comes_first() {
        let mut session = Session::new(SessionConfig::default());
        let mut c0c1 = vec![3u8];
        c0c1.extend_from_slice(&[0; handshake::PACKET_SIZE]);
        session.receive(&c0c1).unwrap();
        assert!(!session.handshake_done());
        assert_eq!(
            session.take_output().unwrap().len(),
            1 + 2 * handshake::PACKET_SIZE
        );
        session.receive(&[0; handshake::PACKET_SIZE]).unwrap();
        assert!(session.handshake_done());
        assert!(session.take_output().is_none());
    }

    #[test]
    fn send_status_goes_to_the_publishing_stream() {
        let (mut session, mut client, mut replies) = connected_session();
        replies.read(&mut session);
        client.publish("k");
        session.receive(&client.take()).unwrap();
        session.accept_publish();
        replies.read(&mut session);
        session.send_status("error", "NetStream.Publish.Failed", "codec hvc1 is not supported");
        let r = replies.read(&mut session);
        assert_eq!(r[0].1, 1);
        assert_eq!(status_code(&r[0].2), ("error", "NetStream.Publish.Failed"));
    }
}

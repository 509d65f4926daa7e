//! AMF0, the value encoding of RTMP commands and metadata: an iterative, limit-checked decoder and an encoder.

use std::fmt::Write as _;

const NUMBER: u8 = 0x00;
const BOOLEAN: u8 = 0x01;
const STRING: u8 = 0x02;
const OBJECT: u8 = 0x03;
const MOVIECLIP: u8 = 0x04;
const NULL: u8 = 0x05;
const UNDEFINED: u8 = 0x06;
const REFERENCE: u8 = 0x07;
const ECMA_ARRAY: u8 = 0x08;
const OBJECT_END: u8 = 0x09;
const STRICT_ARRAY: u8 = 0x0a;
const DATE: u8 = 0x0b;
const LONG_STRING: u8 = 0x0c;
const UNSUPPORTED: u8 = 0x0d;
const RECORDSET: u8 = 0x0e;
const XML_DOCUMENT: u8 = 0x0f;
const TYPED_OBJECT: u8 = 0x10;
const AVMPLUS_OBJECT: u8 = 0x11;

/// Most elements reserved up front for a strict array, whatever count it announces.
const MAX_PREALLOC: usize = 64;

/// One AMF0 value. Long strings decode to [`Value::String`]; the encoder picks the long
/// form when a string does not fit a 16-bit length.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Number(f64),
    Boolean(bool),
    String(String),
    /// Anonymous object: properties in wire order.
    Object(Vec<(String, Value)>),
    Null,
    Undefined,
    /// ECMA (associative) array: properties in wire order; the announced count is not kept.
    EcmaArray(Vec<(String, Value)>),
    StrictArray(Vec<Value>),
    /// Milliseconds since the Unix epoch, and the (unused, reserved) time-zone field.
    Date {
        millis: f64,
        timezone: i16,
    },
}

impl Value {
    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The number, if this is one.
    pub fn as_number(&self) -> Option<f64> {
        match self {
            Value::Number(n) => Some(*n),
            _ => None,
        }
    }

    /// The properties of an object or ECMA array.
    pub fn properties(&self) -> Option<&[(String, Value)]> {
        match self {
            Value::Object(p) | Value::EcmaArray(p) => Some(p),
            _ => None,
        }
    }

    /// The first property called `key` of an object or ECMA array.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.properties()?.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}

/// Why AMF0 bytes could not be decoded. Offsets are from the start of the decoded buffer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmfError {
    #[error("AMF0 truncated at byte {offset}: {what} needs {needed} bytes, {available} left")]
    Truncated {
        offset: usize,
        what: &'static str,
        needed: usize,
        available: usize,
    },
    #[error("AMF0 {what} at byte {offset} announces {length}, more than the {available} bytes left")]
    LengthOverInput {
        offset: usize,
        what: &'static str,
        length: u64,
        available: usize,
    },
    #[error("unknown AMF0 type marker 0x{marker:02x} at byte {offset}")]
    UnknownMarker { offset: usize, marker: u8 },
    #[error("unsupported AMF0 type {name} (marker 0x{marker:02x}) at byte {offset}")]
    UnsupportedMarker {
        offset: usize,
        marker: u8,
        name: &'static str,
    },
    #[error("AMF0 nesting deeper than the limit of {limit} at byte {offset}")]
    TooDeep { offset: usize, limit: u32 },
    #[error("AMF0 input holds more than the limit of {limit} values (at byte {offset})")]
    TooManyValues { offset: usize, limit: usize },
    #[error("AMF0 object-end marker outside an object at byte {offset}")]
    UnexpectedObjectEnd { offset: usize },
    #[error("AMF0 string at byte {offset} is not valid UTF-8")]
    InvalidUtf8 { offset: usize },
}

/// Decodes every value in `data` (an RTMP command or data message body).
pub fn decode_all(data: &[u8], max_depth: u32) -> Result<Vec<Value>, AmfError> {
    let mut decoder = Decoder::new(data, max_depth);
    let mut values = Vec::new();
    while !decoder.is_empty() {
        values.push(decoder.decode()?);
    }
    Ok(values)
}

/// Reads AMF0 values one after another from a buffer.
pub struct Decoder<'a> {
    data: &'a [u8],
    pos: usize,
    max_depth: u32,
    /// Values started so far, over every `decode` call on this decoder.
    values: usize,
}

/// Most values one decoder reads. A value takes 1 to 3 bytes on the wire but tens in
/// memory, so without a count a 64 KiB message of Nulls would cost megabytes; real commands
/// and metadata hold a few dozen.
pub const MAX_VALUES: usize = 10_000;

/// A container being filled while its children are decoded (the explicit stack that keeps
/// decoding free of recursion).
enum Frame {
    Props {
        ecma: bool,
        props: Vec<(String, Value)>,
        key: String,
    },
    Array {
        items: Vec<Value>,
        remaining: u32,
    },
}

/// What reading one marker gave: a whole value, or an opened container.
enum Start {
    Value(Value),
    Open(Frame),
}

impl<'a> Decoder<'a> {
    /// A decoder over `data` that refuses containers nested deeper than `max_depth`.
    pub fn new(data: &'a [u8], max_depth: u32) -> Self {
        Self {
            data,
            pos: 0,
            max_depth,
            values: 0,
        }
    }

    /// Whether all input has been consumed.
    pub fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Decodes the next value. On error the position is unspecified.
    pub fn decode(&mut self) -> Result<Value, AmfError> {
        let mut stack: Vec<Frame> = Vec::new();
        loop {
            let start = match stack.last_mut() {
                None => self.start_value()?,
                Some(Frame::Props { key, .. }) => {
                    let name = self.read_string16("property name")?;
                    if name.is_empty() && self.data.get(self.pos) == Some(&OBJECT_END) {
                        self.pos += 1;
                        match stack.pop() {
                            Some(Frame::Props {
                                ecma: true, props, ..
                            }) => Start::Value(Value::EcmaArray(props)),
                            Some(Frame::Props {
                                ecma: false, props, ..
                            }) => Start::Value(Value::Object(props)),
                            _ => unreachable!("the top frame was just matched as Props"),
                        }
                    } else {
                        *key = name;
                        self.start_value()?
                    }
                }
                Some(Frame::Array { remaining, .. }) => {
                    if *remaining == 0 {
                        match stack.pop() {
                            Some(Frame::Array { items, .. }) => Start::Value(Value::StrictArray(items)),
                            _ => unreachable!("the top frame was just matched as Array"),
                        }
                    } else {
                        *remaining -= 1;
                        self.start_value()?
                    }
                }
            };
            let value = match start {
                Start::Open(frame) => {
                    if stack.len() >= self.max_depth as usize {
                        return Err(AmfError::TooDeep {
                            offset: self.pos,
                            limit: self.max_depth,
                        });
                    }
                    stack.push(frame);
                    continue;
                }
                Start::Value(v) => v,
            };
            match stack.last_mut() {
                None => return Ok(value),
                Some(Frame::Props { props, key, .. }) => props.push((std::mem::take(key), value)),
                Some(Frame::Array { items, .. }) => items.push(value),
            }
        }
    }

    fn start_value(&mut self) -> Result<Start, AmfError> {
        let offset = self.pos;
        self.values += 1;
        if self.values > MAX_VALUES {
            return Err(AmfError::TooManyValues {
                offset,
                limit: MAX_VALUES,
            });
        }
        let marker = self.take(1, "type marker")?[0];
        Ok(match marker {
            NUMBER => Start::Value(Value::Number(self.read_f64("number")?)),
            BOOLEAN => Start::Value(Value::Boolean(self.take(1, "boolean")?[0] != 0)),
            STRING => Start::Value(Value::String(self.read_string16("string")?)),
            LONG_STRING => {
                let len = self.read_u32("long string length")?;
                Start::Value(Value::String(self.read_utf8(len as u64, "long string")?))
            }
            OBJECT => Start::Open(Frame::Props {
                ecma: false,
                props: Vec::new(),
                key: String::new(),
            }),
            ECMA_ARRAY => {
                // The count is only a hint (encoders get it wrong); the end marker decides.
                self.read_u32("ECMA array count")?;
                Start::Open(Frame::Props {
                    ecma: true,
                    props: Vec::new(),
                    key: String::new(),
                })
            }
            STRICT_ARRAY => {
                let count_at = self.pos;
                let count = self.read_u32("strict array count")?;
                let available = self.data.len() - self.pos;
                // Every element takes at least its marker byte.
                if count as u64 > available as u64 {
                    return Err(AmfError::LengthOverInput {
                        offset: count_at,
                        what: "strict array count",
                        length: count as u64,
                        available,
                    });
                }
                let items = Vec::with_capacity((count as usize).min(MAX_PREALLOC));
                Start::Open(Frame::Array {
                    items,
                    remaining: count,
                })
            }
            NULL => Start::Value(Value::Null),
            UNDEFINED => Start::Value(Value::Undefined),
            DATE => {
                let millis = self.read_f64("date")?;
                let tz = self.take(2, "date time zone")?;
                Start::Value(Value::Date {
                    millis,
                    timezone: i16::from_be_bytes([tz[0], tz[1]]),
                })
            }
            OBJECT_END => return Err(AmfError::UnexpectedObjectEnd { offset }),
            MOVIECLIP | REFERENCE | UNSUPPORTED | RECORDSET | XML_DOCUMENT | TYPED_OBJECT
            | AVMPLUS_OBJECT => {
                let name = match marker {
                    MOVIECLIP => "movieclip",
                    REFERENCE => "reference",
                    UNSUPPORTED => "unsupported",
                    RECORDSET => "recordset",
                    XML_DOCUMENT => "XML document",
                    TYPED_OBJECT => "typed object",
                    _ => "AVM+ (AMF3) object",
                };
                return Err(AmfError::UnsupportedMarker { offset, marker, name });
            }
            _ => return Err(AmfError::UnknownMarker { offset, marker }),
        })
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], AmfError> {
        let available = self.data.len() - self.pos;
        if n > available {
            return Err(AmfError::Truncated {
                offset: self.pos,
                what,
                needed: n,
                available,
            });
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn read_f64(&mut self, what: &'static str) -> Result<f64, AmfError> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(f64::from_be_bytes(a))
    }

    fn read_u32(&mut self, what: &'static str) -> Result<u32, AmfError> {
        let b = self.take(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn read_string16(&mut self, what: &'static str) -> Result<String, AmfError> {
        let b = self.take(2, what)?;
        let len = u16::from_be_bytes([b[0], b[1]]);
        self.read_utf8(len as u64, what)
    }

    /// Reads `len` bytes of UTF-8, checking `len` against the input before touching it.
    fn read_utf8(&mut self, len: u64, what: &'static str) -> Result<String, AmfError> {
        let offset = self.pos;
        let available = self.data.len() - self.pos;
        if len > available as u64 {
            return Err(AmfError::LengthOverInput {
                offset,
                what,
                length: len,
                available,
            });
        }
        let bytes = self.take(len as usize, what)?;
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| AmfError::InvalidUtf8 { offset })
    }
}

/// Appends the encoding of `value` to `out`.
pub fn encode(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Number(n) => {
            out.push(NUMBER);
            out.extend_from_slice(&n.to_be_bytes());
        }
        Value::Boolean(b) => out.extend_from_slice(&[BOOLEAN, u8::from(*b)]),
        Value::String(s) => match u16::try_from(s.len()) {
            Ok(len) => {
                out.push(STRING);
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(s.as_bytes());
            }
            Err(_) => {
                let s = truncate(s, u32::MAX as usize);
                out.push(LONG_STRING);
                out.extend_from_slice(&(s.len() as u32).to_be_bytes());
                out.extend_from_slice(s.as_bytes());
            }
        },
        Value::Object(props) => {
            out.push(OBJECT);
            encode_props(props, out);
        }
        Value::Null => out.push(NULL),
        Value::Undefined => out.push(UNDEFINED),
        Value::EcmaArray(props) => {
            out.push(ECMA_ARRAY);
            out.extend_from_slice(&(props.len().min(u32::MAX as usize) as u32).to_be_bytes());
            encode_props(props, out);
        }
        Value::StrictArray(items) => {
            out.push(STRICT_ARRAY);
            let items = &items[..items.len().min(u32::MAX as usize)];
            out.extend_from_slice(&(items.len() as u32).to_be_bytes());
            for item in items {
                encode(item, out);
            }
        }
        Value::Date { millis, timezone } => {
            out.push(DATE);
            out.extend_from_slice(&millis.to_be_bytes());
            out.extend_from_slice(&timezone.to_be_bytes());
        }
    }
}

/// Encodes values one after another (an RTMP command or data message body).
pub fn encode_all(values: &[Value]) -> Vec<u8> {
    let mut out = Vec::new();
    for v in values {
        encode(v, &mut out);
    }
    out
}

fn encode_props(props: &[(String, Value)], out: &mut Vec<u8>) {
    for (key, value) in props {
        // Keys have a 16-bit length; a longer one (never decoded, only built) is cut.
        let key = truncate(key, u16::MAX as usize);
        out.extend_from_slice(&(key.len() as u16).to_be_bytes());
        out.extend_from_slice(key.as_bytes());
        encode(value, out);
    }
    out.extend_from_slice(&[0, 0, OBJECT_END]);
}

/// `s` cut to at most `max` bytes at a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// A short, printable rendering of a peer-supplied string for errors and logs.
pub(crate) fn printable(s: &str) -> String {
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i == 64 {
            out.push('…');
            break;
        }
        if c.is_control() {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(props: &[(&str, Value)]) -> Vec<(String, Value)> {
        props.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
    }

    fn round_trip(v: &Value) {
        let mut bytes = Vec::new();
        encode(v, &mut bytes);
        let back = decode_all(&bytes, 16).expect("decodes");
        assert_eq!(back, vec![v.clone()]);
    }

    #[test]
    fn every_type_round_trips() {
        let values = [
            Value::Number(1.5),
            Value::Number(-0.0),
            Value::Boolean(true),
            Value::Boolean(false),
            Value::String(String::new()),
            Value::String("héllo".into()),
            Value::String("x".repeat(70_000)),
            Value::Null,
            Value::Undefined,
            Value::Object(obj(&[
                ("app", Value::String("live".into())),
                ("n", Value::Number(3.0)),
            ])),
            Value::EcmaArray(obj(&[("width", Value::Number(320.0)), ("", Value::Null)])),
            Value::StrictArray(vec![
                Value::Number(1.0),
                Value::String("a".into()),
                Value::Object(vec![]),
            ]),
            Value::Date {
                millis: 1.7e12,
                timezone: -60,
            },
            Value::Object(obj(&[(
                "inner",
                Value::EcmaArray(obj(&[("a", Value::StrictArray(vec![]))])),
            )])),
        ];
        for v in &values {
            round_trip(v);
        }
    }

    #[test]
    fn long_string_marker_decodes() {
        let bytes = [LONG_STRING, 0, 0, 0, 2, b'h', b'i'];
        assert_eq!(decode_all(&bytes, 4).unwrap(), vec![Value::String("hi".into())]);
    }

    #[test]
    fn known_wire_bytes() {
        let bytes = encode_all(&[Value::String("connect".into()), Value::Number(1.0)]);
        assert_eq!(&bytes[..10], b"\x02\x00\x07connect");
        assert_eq!(&bytes[10..], &[0, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn truncated_inputs_are_typed_errors() {
        let mut bytes = Vec::new();
        encode(
            &Value::Object(obj(&[("key", Value::String("value".into()))])),
            &mut bytes,
        );
        for cut in 0..bytes.len() {
            let err = Decoder::new(&bytes[..cut], 16).decode().unwrap_err();
            assert!(
                matches!(err, AmfError::Truncated { .. } | AmfError::LengthOverInput { .. }),
                "cut {cut}: {err}"
            );
        }
        assert!(matches!(
            decode_all(&[NUMBER, 0, 0], 16),
            Err(AmfError::Truncated {
                offset: 1,
                needed: 8,
                available: 2,
                ..
            })
        ));
    }

    #[test]
    fn lengths_over_input_are_refused_before_allocating() {
        assert!(matches!(
            decode_all(&[STRING, 0xff, 0xff, b'a'], 16),
            Err(AmfError::LengthOverInput {
                length: 65535,
                available: 1,
                ..
            })
        ));
        assert!(matches!(
            decode_all(&[LONG_STRING, 0xff, 0xff, 0xff, 0xff], 16),
            Err(AmfError::LengthOverInput {
                length: 0xffff_ffff,
                ..
            })
        ));
        assert!(matches!(
            decode_all(&[STRICT_ARRAY, 0xff, 0xff, 0xff, 0xff, NULL], 16),
            Err(AmfError::LengthOverInput {
                what: "strict array count",
                ..
            })
        ));
    }

    #[test]
    fn unknown_and_unsupported_markers() {
        assert_eq!(
            decode_all(&[0x42], 16),
            Err(AmfError::UnknownMarker {
                offset: 0,
                marker: 0x42
            })
        );
        assert!(matches!(
            decode_all(&[NULL, REFERENCE, 0, 1], 16),
            Err(AmfError::UnsupportedMarker { offset: 1, .. })
        ));
        assert!(matches!(
            decode_all(&[AVMPLUS_OBJECT], 16),
            Err(AmfError::UnsupportedMarker { .. })
        ));
        assert_eq!(
            decode_all(&[OBJECT_END], 16),
            Err(AmfError::UnexpectedObjectEnd { offset: 0 })
        );
        assert_eq!(
            decode_all(&[STRING, 0, 1, 0xff], 16),
            Err(AmfError::InvalidUtf8 { offset: 3 })
        );
    }

    #[test]
    fn nesting_limit() {
        // 100 000 nested strict arrays: refused at the limit, with no recursion.
        let mut bytes = Vec::new();
        for _ in 0..100_000 {
            bytes.extend_from_slice(&[STRICT_ARRAY, 0, 0, 0, 1]);
        }
        bytes.push(NULL);
        assert!(matches!(
            decode_all(&bytes, 16),
            Err(AmfError::TooDeep { limit: 16, .. })
        ));
        // Exactly at the limit is fine.
        let mut ok = Vec::new();
        for _ in 0..16 {
            ok.extend_from_slice(&[OBJECT, 0, 1, b'k']);
        }
        ok.push(NULL);
        for _ in 0..16 {
            ok.extend_from_slice(&[0, 0, OBJECT_END]);
        }
        assert_eq!(decode_all(&ok, 16).unwrap().len(), 1);
        assert!(matches!(
            decode_all(&ok, 15),
            Err(AmfError::TooDeep { limit: 15, .. })
        ));
    }

    #[test]
    fn garbage_never_panics() {
        let mut seed = 0x1234_5678_u32;
        for _ in 0..2000 {
            let len = (seed % 40) as usize;
            let mut bytes = Vec::with_capacity(len);
            for _ in 0..len {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                bytes.push((seed % 13) as u8);
            }
            let _ = decode_all(&bytes, 8);
        }
    }

    #[test]
    fn accessors() {
        let v = Value::Object(obj(&[("app", Value::String("live".into()))]));
        assert_eq!(v.get("app").and_then(Value::as_str), Some("live"));
        assert_eq!(v.get("nope"), None);
        assert_eq!(Value::Number(2.0).as_number(), Some(2.0));
        assert_eq!(printable("a\nb"), "a\\u{a}b");
    }

    #[test]
    fn value_count_is_bounded() {
        let nulls = vec![0x05u8; MAX_VALUES + 1];
        assert!(matches!(
            decode_all(&nulls, 16),
            Err(AmfError::TooManyValues { .. })
        ));
        assert_eq!(decode_all(&nulls[..MAX_VALUES], 16).unwrap().len(), MAX_VALUES);
        let mut array = vec![0x0a];
        array.extend_from_slice(&(MAX_VALUES as u32).to_be_bytes());
        array.extend(std::iter::repeat_n(0x05u8, MAX_VALUES));
        assert!(matches!(
            decode_all(&array, 16),
            Err(AmfError::TooManyValues { .. })
        ));
    }
}

//! Codec configuration records and bitstream framing, as pure functions over bytes.

mod aac;
mod h264;
mod opus;
mod sps;

pub use aac::AudioSpecificConfig;
pub use h264::{
    AvcDecoderConfig, NalUnitType, annexb_nal_units, annexb_to_avcc, avcc_nal_units, avcc_to_annexb,
};
pub use opus::{ChannelMappingTable, OpusConfig};
pub use sps::{
    BitstreamRestriction, ColourDescription, CpbSpec, FrameCropping, HrdParameters, MAX_PICTURE_SIDE,
    PicOrderCnt, Sps, TimingInfo, VideoSignalType, Vui,
};

/// Why a codec record or bitstream could not be read. Each variant names the field (by its
/// spec name) and the byte offset, so a failure can be found in a capture.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The input ends before the field does.
    #[error("{field} at byte {offset}: needs {needed} bytes, {available} left")]
    Truncated {
        field: &'static str,
        offset: usize,
        needed: usize,
        available: usize,
    },
    /// The field's value breaks the spec.
    #[error("{field} at byte {offset}: {reason}")]
    Malformed {
        field: &'static str,
        offset: usize,
        reason: String,
    },
    /// Valid, but a feature we do not handle.
    #[error("{field}: unsupported {what}")]
    Unsupported { field: &'static str, what: String },
    /// More of something than we accept.
    #[error("{field}: {count} is more than the limit of {max}")]
    Limit {
        field: &'static str,
        count: usize,
        max: usize,
    },
}

impl CodecError {
    /// The same error with its byte offset moved by `by`, for a structure read from inside
    /// another (an SPS inside an `avcC` record).
    pub(crate) fn shifted(self, by: usize) -> Self {
        match self {
            Self::Truncated {
                field,
                offset,
                needed,
                available,
            } => Self::Truncated {
                field,
                offset: offset.saturating_add(by),
                needed,
                available,
            },
            Self::Malformed {
                field,
                offset,
                reason,
            } => Self::Malformed {
                field,
                offset: offset.saturating_add(by),
                reason,
            },
            other => other,
        }
    }
}

/// A cursor over peer bytes that names every field it reads.
pub(crate) struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }

    pub(crate) fn offset(&self) -> usize {
        self.pos
    }

    pub(crate) fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    pub(crate) fn bytes(&mut self, field: &'static str, n: usize) -> Result<&'a [u8], CodecError> {
        if self.remaining() < n {
            return Err(CodecError::Truncated {
                field,
                offset: self.pos,
                needed: n,
                available: self.remaining(),
            });
        }
        let out = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, CodecError> {
        Ok(self.bytes(field, 1)?[0])
    }

    pub(crate) fn u16(&mut self, field: &'static str) -> Result<u16, CodecError> {
        let b = self.bytes(field, 2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32, CodecError> {
        let b = self.bytes(field, 4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(crate) fn u16_le(&mut self, field: &'static str) -> Result<u16, CodecError> {
        let b = self.bytes(field, 2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    pub(crate) fn u32_le(&mut self, field: &'static str) -> Result<u32, CodecError> {
        let b = self.bytes(field, 4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}

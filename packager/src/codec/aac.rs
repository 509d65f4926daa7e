//! AAC's AudioSpecificConfig (ISO/IEC 14496-3 §1.6.2.1): object type, sampling rate and
//! channel configuration, as carried by RTMP's AAC sequence header and MP4's `esds`.

use super::CodecError;

/// `samplingFrequencyIndex` table.
const SAMPLE_RATES: [u32; 13] = [
    96_000, 88_200, 64_000, 48_000, 44_100, 32_000, 24_000, 22_050, 16_000, 12_000, 11_025, 8_000, 7_350,
];

/// The fields of an AudioSpecificConfig a packager needs, plus the record verbatim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioSpecificConfig {
    /// `audioObjectType` (2 = AAC-LC, 5 = HE-AAC/SBR, 29 = HE-AACv2/PS).
    pub object_type: u8,
    pub sample_rate: u32,
    /// `channelConfiguration` (1 = mono, 2 = stereo, 0 = defined in-band).
    pub channel_config: u8,
    /// The record as received; written back unchanged into `esds`.
    pub raw: bytes::Bytes,
}

/// Reads big-endian bit fields, naming each.
struct Bits<'a> {
    data: &'a [u8],
    bit: usize,
}

impl Bits<'_> {
    fn read(&mut self, field: &'static str, n: usize) -> Result<u32, CodecError> {
        if self.bit + n > self.data.len() * 8 {
            return Err(CodecError::Truncated {
                field,
                offset: self.bit / 8,
                needed: (self.bit + n).div_ceil(8) - self.bit / 8,
                available: self.data.len() - self.bit / 8,
            });
        }
        let mut v = 0u32;
        for _ in 0..n {
            let byte = self.data[self.bit / 8];
            v = (v << 1) | u32::from((byte >> (7 - self.bit % 8)) & 1);
            self.bit += 1;
        }
        Ok(v)
    }
}

impl AudioSpecificConfig {
    /// Reads the leading fields of a record (the rest, such as SBR signalling, is kept in
    /// `raw` and not interpreted).
    pub fn parse(data: &[u8]) -> Result<Self, CodecError> {
        let mut bits = Bits { data, bit: 0 };
        let mut object_type = bits.read("audioObjectType", 5)?;
        if object_type == 31 {
            object_type = 32 + bits.read("audioObjectTypeExt", 6)?;
        }
        if object_type == 0 {
            return Err(CodecError::Malformed {
                field: "audioObjectType",
                offset: 0,
                reason: "0 is not an audio object type".into(),
            });
        }
        let index = bits.read("samplingFrequencyIndex", 4)?;
        let sample_rate = match index {
            15 => bits.read("samplingFrequency", 24)?,
            i if (i as usize) < SAMPLE_RATES.len() => SAMPLE_RATES[i as usize],
            i => {
                return Err(CodecError::Malformed {
                    field: "samplingFrequencyIndex",
                    offset: bits.bit / 8,
                    reason: format!("{i} is reserved"),
                });
            }
        };
        if sample_rate == 0 {
            return Err(CodecError::Malformed {
                field: "samplingFrequency",
                offset: bits.bit / 8,
                reason: "0 Hz".into(),
            });
        }
        let channel_config = bits.read("channelConfiguration", 4)? as u8;
        Ok(Self {
            object_type: object_type as u8,
            sample_rate,
            channel_config,
            raw: bytes::Bytes::copy_from_slice(data),
        })
    }

    /// A two-byte record for the common case (object type < 31, a tabled sampling rate).
    pub fn new(object_type: u8, sample_rate: u32, channel_config: u8) -> Result<Self, CodecError> {
        let index = SAMPLE_RATES
            .iter()
            .position(|&r| r == sample_rate)
            .ok_or_else(|| CodecError::Unsupported {
                field: "samplingFrequencyIndex",
                what: format!("sampling rate {sample_rate} Hz outside the index table"),
            })? as u16;
        if object_type == 0 || object_type >= 31 {
            return Err(CodecError::Unsupported {
                field: "audioObjectType",
                what: format!("object type {object_type} in the two-byte form (1-30)"),
            });
        }
        if channel_config > 15 {
            return Err(CodecError::Unsupported {
                field: "channelConfiguration",
                what: format!("{channel_config} (4 bits: 0-15)"),
            });
        }
        let v = (u16::from(object_type) << 11) | (index << 7) | (u16::from(channel_config) << 3);
        Ok(Self {
            object_type,
            sample_rate,
            channel_config,
            raw: bytes::Bytes::copy_from_slice(&v.to_be_bytes()),
        })
    }

    /// RFC 6381 codec string, e.g. `mp4a.40.2`.
    pub fn codec_string(&self) -> String {
        format!("mp4a.40.{}", self.object_type)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lc_stereo_48k() {
        // 00010 0011 0010 000 -> 0x11 0x90
        let asc = AudioSpecificConfig::parse(&[0x11, 0x90]).unwrap();
        assert_eq!(
            (asc.object_type, asc.sample_rate, asc.channel_config),
            (2, 48_000, 2)
        );
        assert_eq!(asc.codec_string(), "mp4a.40.2");
        assert_eq!(AudioSpecificConfig::new(2, 48_000, 2).unwrap(), asc);
    }

    #[test]
    fn explicit_rate_and_extended_type() {
        // object type 31+ext(0)=32, index 15, 24-bit rate 1000, channels 1
        let mut bits: u64 = 0;
        let fields = [(31u64, 5), (0, 6), (15, 4), (1000, 24), (1, 4)];
        let mut n = 0;
        for (v, w) in fields {
            bits = (bits << w) | v;
            n += w;
        }
        bits <<= 64 - n;
        let bytes = bits.to_be_bytes();
        let asc = AudioSpecificConfig::parse(&bytes[..(n as usize).div_ceil(8)]).unwrap();
        assert_eq!(
            (asc.object_type, asc.sample_rate, asc.channel_config),
            (32, 1000, 1)
        );
    }

    #[test]
    fn garbage_is_named() {
        assert!(matches!(
            AudioSpecificConfig::parse(&[]),
            Err(CodecError::Truncated {
                field: "audioObjectType",
                ..
            })
        ));
        assert!(matches!(
            AudioSpecificConfig::parse(&[0x17, 0x00]),
            Err(CodecError::Malformed {
                field: "samplingFrequencyIndex",
                ..
            })
        ));
    }
}

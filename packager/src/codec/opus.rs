//! Opus configuration: the Ogg `OpusHead` identification header (RFC 7845 §5.1) and the
//! ISO-BMFF `dOps` box payload (Encapsulation of Opus in ISO Base Media File Format §4.3.2).

use super::{CodecError, Reader};
use bytes::Bytes;

/// Magic signature opening an `OpusHead` packet.
const OPUS_HEAD_MAGIC: &[u8; 8] = b"OpusHead";
/// The `OpusHead` version we write (RFC 7845: 1; 0-15 are compatible).
const OPUS_HEAD_VERSION: u8 = 1;
/// The only `dOps` version defined.
const DOPS_VERSION: u8 = 0;

/// `(StreamCount, CoupledCount, ChannelMapping)` of channel mapping family 1 for 1 to 8
/// channels in Vorbis order (RFC 7845 §5.1.1.2), as libopus's multistream encoder lays it out.
const VORBIS_LAYOUTS: [(u8, u8, &[u8]); 8] = [
    (1, 0, &[0]),
    (1, 1, &[0, 1]),
    (2, 1, &[0, 2, 1]),
    (2, 2, &[0, 1, 2, 3]),
    (3, 2, &[0, 4, 1, 2, 3]),
    (4, 2, &[0, 4, 1, 2, 3, 5]),
    (4, 3, &[0, 4, 1, 2, 3, 5, 6]),
    (5, 3, &[0, 6, 1, 2, 3, 4, 5, 7]),
];

/// How the decoded streams map to output channels, for channel mapping families other
/// than 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelMappingTable {
    /// `StreamCount` (N): Opus streams in each packet, at least 1.
    pub stream_count: u8,
    /// `CoupledCount` (M): how many of them are stereo, at most N.
    pub coupled_count: u8,
    /// `ChannelMapping`: for each output channel, the decoded channel (below N + M) or 255
    /// for silence.
    pub channel_mapping: Vec<u8>,
}

/// An Opus track's configuration, as carried by `OpusHead` and `dOps` alike.
///
/// Built by [`OpusConfig::parse_opus_head`], [`OpusConfig::parse_dops`] or
/// [`OpusConfig::new`], all of which check the fields against each other, so the writers
/// always produce records that parse back to the same value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpusConfig {
    /// `OutputChannelCount` (1-255).
    pub channel_count: u8,
    /// `PreSkip`: samples at 48 kHz to drop from the start of decoded output.
    pub pre_skip: u16,
    /// `InputSampleRate`: the source's rate in Hz, informational (0 when unknown). Opus
    /// always decodes at 48 kHz.
    pub input_sample_rate: u32,
    /// `OutputGain` in Q7.8 dB to apply to decoded output.
    pub output_gain: i16,
    /// `ChannelMappingFamily`: 0 (mono or stereo), 1 (Vorbis order, 1-8 channels) or 255
    /// (unordered).
    pub channel_mapping_family: u8,
    /// The mapping table: `None` exactly when the family is 0.
    pub channel_mapping: Option<ChannelMappingTable>,
}

/// Where the fields sit in each format, for error messages.
#[derive(Clone, Copy)]
enum Layout {
    OpusHead,
    DOps,
}

impl OpusConfig {
    /// A configuration for an encoder's output: 1-2 channels use family 0, 3-8 family 1
    /// with libopus's standard layout. Output gain 0.
    pub fn new(channels: u8, pre_skip: u16, input_sample_rate: u32) -> Result<Self, CodecError> {
        let (channel_mapping_family, channel_mapping) = match channels {
            0 => {
                return Err(CodecError::Malformed {
                    field: "OutputChannelCount",
                    offset: 0,
                    reason: "0 channels".into(),
                });
            }
            1 | 2 => (0, None),
            _ => {
                let (streams, coupled, mapping) =
                    VORBIS_LAYOUTS
                        .get(usize::from(channels) - 1)
                        .ok_or_else(|| CodecError::Unsupported {
                            field: "OutputChannelCount",
                            what: format!(
                                "{channels} channels without a mapping table (family 1 covers 1-8)"
                            ),
                        })?;
                (
                    1,
                    Some(ChannelMappingTable {
                        stream_count: *streams,
                        coupled_count: *coupled,
                        channel_mapping: mapping.to_vec(),
                    }),
                )
            }
        };
        Ok(Self {
            channel_count: channels,
            pre_skip,
            input_sample_rate,
            output_gain: 0,
            channel_mapping_family,
            channel_mapping,
        })
    }

    /// Reads an `OpusHead` packet (RFC 7845 §5.1, little-endian). Versions 0-15 are read
    /// (bytes after the fields this version defines are ignored, as the RFC asks).
    pub fn parse_opus_head(data: &[u8]) -> Result<Self, CodecError> {
        let mut r = Reader::new(data);
        if r.bytes("Magic Signature", OPUS_HEAD_MAGIC.len())? != OPUS_HEAD_MAGIC {
            return Err(CodecError::Malformed {
                field: "Magic Signature",
                offset: 0,
                reason: "not \"OpusHead\"".into(),
            });
        }
        let version = r.u8("Version")?;
        if version >> 4 != 0 {
            return Err(CodecError::Unsupported {
                field: "Version",
                what: format!("version {version} (major version {}; 0 is defined)", version >> 4),
            });
        }
        let channel_count = r.u8("Output Channel Count")?;
        let pre_skip = r.u16_le("Pre-skip")?;
        let input_sample_rate = r.u32_le("Input Sample Rate")?;
        let output_gain = r.u16_le("Output Gain")? as i16;
        Self::read_mapping(
            &mut r,
            Layout::OpusHead,
            channel_count,
            pre_skip,
            input_sample_rate,
            output_gain,
        )
    }

    /// Reads a `dOps` box payload (after the box header; big-endian). Every byte must
    /// belong to it.
    pub fn parse_dops(data: &[u8]) -> Result<Self, CodecError> {
        let mut r = Reader::new(data);
        let version = r.u8("Version")?;
        if version != DOPS_VERSION {
            return Err(CodecError::Unsupported {
                field: "Version",
                what: format!("dOps version {version} (0 is defined)"),
            });
        }
        let channel_count = r.u8("OutputChannelCount")?;
        let pre_skip = r.u16("PreSkip")?;
        let input_sample_rate = r.u32("InputSampleRate")?;
        let output_gain = r.u16("OutputGain")? as i16;
        let config = Self::read_mapping(
            &mut r,
            Layout::DOps,
            channel_count,
            pre_skip,
            input_sample_rate,
            output_gain,
        )?;
        if r.remaining() > 0 {
            return Err(CodecError::Malformed {
                field: "OpusSpecificBox",
                offset: r.offset(),
                reason: format!("{} bytes after the last field", r.remaining()),
            });
        }
        Ok(config)
    }

    /// Reads the family and, unless it is 0, the mapping table; checks them against the
    /// channel count. Shared by both layouts, which differ only in byte order and names.
    fn read_mapping(
        r: &mut Reader<'_>,
        layout: Layout,
        channel_count: u8,
        pre_skip: u16,
        input_sample_rate: u32,
        output_gain: i16,
    ) -> Result<Self, CodecError> {
        let (count_field, family_field, streams_field, coupled_field, mapping_field) = match layout {
            Layout::OpusHead => (
                "Output Channel Count",
                "Channel Mapping Family",
                "Stream Count",
                "Coupled Count",
                "Channel Mapping",
            ),
            Layout::DOps => (
                "OutputChannelCount",
                "ChannelMappingFamily",
                "StreamCount",
                "CoupledCount",
                "ChannelMapping",
            ),
        };
        // Offsets: the count is byte 9 of OpusHead, byte 1 of dOps; the family follows
        // the fixed fields.
        let count_at = match layout {
            Layout::OpusHead => 9,
            Layout::DOps => 1,
        };
        if channel_count == 0 {
            return Err(CodecError::Malformed {
                field: count_field,
                offset: count_at,
                reason: "0 channels".into(),
            });
        }
        let family_at = r.offset();
        let family = r.u8(family_field)?;
        let channel_mapping = match family {
            0 => {
                if channel_count > 2 {
                    return Err(CodecError::Malformed {
                        field: count_field,
                        offset: count_at,
                        reason: format!("{channel_count} channels with mapping family 0 (1 or 2)"),
                    });
                }
                None
            }
            1 | 255 => {
                if family == 1 && channel_count > 8 {
                    return Err(CodecError::Malformed {
                        field: count_field,
                        offset: count_at,
                        reason: format!("{channel_count} channels with mapping family 1 (1-8)"),
                    });
                }
                let streams_at = r.offset();
                let stream_count = r.u8(streams_field)?;
                if stream_count == 0 {
                    return Err(CodecError::Malformed {
                        field: streams_field,
                        offset: streams_at,
                        reason: "0 streams".into(),
                    });
                }
                let coupled_at = r.offset();
                let coupled_count = r.u8(coupled_field)?;
                if coupled_count > stream_count {
                    return Err(CodecError::Malformed {
                        field: coupled_field,
                        offset: coupled_at,
                        reason: format!("{coupled_count} coupled of {stream_count} streams"),
                    });
                }
                let decoded = usize::from(stream_count) + usize::from(coupled_count);
                if decoded > 255 {
                    return Err(CodecError::Malformed {
                        field: coupled_field,
                        offset: coupled_at,
                        reason: format!(
                            "{stream_count} streams + {coupled_count} coupled is over 255 channels"
                        ),
                    });
                }
                let mapping_at = r.offset();
                let channel_mapping = r.bytes(mapping_field, usize::from(channel_count))?.to_vec();
                let out_of_range = channel_mapping
                    .iter()
                    .enumerate()
                    .find(|&(_, &c)| c != 255 && usize::from(c) >= decoded);
                if let Some((i, &c)) = out_of_range {
                    return Err(CodecError::Malformed {
                        field: mapping_field,
                        offset: mapping_at + i,
                        reason: format!(
                            "output channel {i} maps to decoded channel {c}; there are {decoded} \
                             (255 is silence)"
                        ),
                    });
                }
                Some(ChannelMappingTable {
                    stream_count,
                    coupled_count,
                    channel_mapping,
                })
            }
            other => {
                return Err(CodecError::Unsupported {
                    field: family_field,
                    what: format!("channel mapping family {other} at byte {family_at} (0, 1 and 255 are)"),
                });
            }
        };
        Ok(Self {
            channel_count,
            pre_skip,
            input_sample_rate,
            output_gain,
            channel_mapping_family: family,
            channel_mapping,
        })
    }

    /// Writes the `dOps` box payload (without the box header); `parse_dops` reads it back.
    pub fn to_dops_bytes(&self) -> Bytes {
        let mut out = Vec::with_capacity(11 + 2 + usize::from(self.channel_count));
        out.push(DOPS_VERSION);
        out.push(self.channel_count);
        out.extend_from_slice(&self.pre_skip.to_be_bytes());
        out.extend_from_slice(&self.input_sample_rate.to_be_bytes());
        out.extend_from_slice(&self.output_gain.to_be_bytes());
        self.write_mapping(&mut out);
        Bytes::from(out)
    }

    /// Writes an `OpusHead` packet (version 1); `parse_opus_head` reads it back.
    pub fn to_opus_head_bytes(&self) -> Bytes {
        let mut out = Vec::with_capacity(19 + 2 + usize::from(self.channel_count));
        out.extend_from_slice(OPUS_HEAD_MAGIC);
        out.push(OPUS_HEAD_VERSION);
        out.push(self.channel_count);
        out.extend_from_slice(&self.pre_skip.to_le_bytes());
        out.extend_from_slice(&self.input_sample_rate.to_le_bytes());
        out.extend_from_slice(&self.output_gain.to_le_bytes());
        self.write_mapping(&mut out);
        Bytes::from(out)
    }

    fn write_mapping(&self, out: &mut Vec<u8>) {
        out.push(self.channel_mapping_family);
        if let Some(table) = &self.channel_mapping {
            out.push(table.stream_count);
            out.push(table.coupled_count);
            out.extend_from_slice(&table.channel_mapping);
        }
    }

    /// RFC 6381 codec string for Opus in MP4.
    pub fn codec_string(&self) -> String {
        "opus".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// libopus's stereo OpusHead: pre-skip 312, 48 kHz input, family 0.
    const STEREO_HEAD: &[u8] = &[
        b'O', b'p', b'u', b's', b'H', b'e', b'a', b'd', 1, 2, 0x38, 0x01, 0x80, 0xbb, 0, 0, 0, 0, 0,
    ];

    #[test]
    fn stereo_head_round_trips_through_dops() {
        let config = OpusConfig::parse_opus_head(STEREO_HEAD).unwrap();
        assert_eq!(config, OpusConfig::new(2, 312, 48_000).unwrap());
        let dops = config.to_dops_bytes();
        assert_eq!(&dops[..], &[0, 2, 0x01, 0x38, 0, 0, 0xbb, 0x80, 0, 0, 0]);
        assert_eq!(OpusConfig::parse_dops(&dops).unwrap(), config);
        assert_eq!(&config.to_opus_head_bytes()[..], STEREO_HEAD);
        assert_eq!(config.codec_string(), "opus");
    }

    #[test]
    fn surround_uses_family_1_with_its_table() {
        let config = OpusConfig::new(6, 312, 48_000).unwrap();
        assert_eq!(config.channel_mapping_family, 1);
        let table = config.channel_mapping.clone().unwrap();
        assert_eq!((table.stream_count, table.coupled_count), (4, 2));
        assert_eq!(table.channel_mapping, [0, 4, 1, 2, 3, 5]);
        let dops = config.to_dops_bytes();
        assert_eq!(&dops[10..], &[1, 4, 2, 0, 4, 1, 2, 3, 5]);
        assert_eq!(OpusConfig::parse_dops(&dops).unwrap(), config);
        assert_eq!(
            OpusConfig::parse_opus_head(&config.to_opus_head_bytes()).unwrap(),
            config
        );
        assert!(OpusConfig::new(0, 0, 0).is_err());
        assert!(matches!(
            OpusConfig::new(9, 0, 0),
            Err(CodecError::Unsupported { .. })
        ));
    }

    #[test]
    fn family_255_and_negative_gain_round_trip() {
        let mut head = STEREO_HEAD.to_vec();
        head[9] = 3; // channels
        head[16..18].copy_from_slice(&(-256i16).to_le_bytes()); // -1 dB
        head[18] = 255;
        head.extend_from_slice(&[2, 1, 0, 1, 255]);
        let config = OpusConfig::parse_opus_head(&head).unwrap();
        assert_eq!(config.output_gain, -256);
        assert_eq!(
            config.channel_mapping.as_ref().unwrap().channel_mapping,
            [0, 1, 255]
        );
        assert_eq!(OpusConfig::parse_dops(&config.to_dops_bytes()).unwrap(), config);
    }

    #[test]
    fn bad_headers_name_the_field() {
        let field = |data: &[u8]| match OpusConfig::parse_opus_head(data) {
            Err(
                CodecError::Truncated { field, .. }
                | CodecError::Malformed { field, .. }
                | CodecError::Unsupported { field, .. }
                | CodecError::Limit { field, .. },
            ) => field,
            Ok(c) => panic!("parsed {c:?}"),
        };
        let mut bad = STEREO_HEAD.to_vec();
        bad[0] = b'o';
        assert_eq!(field(&bad), "Magic Signature");
        let mut bad = STEREO_HEAD.to_vec();
        bad[8] = 0x10;
        assert_eq!(field(&bad), "Version");
        let mut bad = STEREO_HEAD.to_vec();
        bad[9] = 0;
        assert_eq!(field(&bad), "Output Channel Count");
        let mut bad = STEREO_HEAD.to_vec();
        bad[9] = 3;
        assert_eq!(field(&bad), "Output Channel Count");
        let mut bad = STEREO_HEAD.to_vec();
        bad[18] = 2;
        assert_eq!(field(&bad), "Channel Mapping Family");
        // Family 1: zero streams, more coupled than streams, a mapping past the decoded channels.
        let mut fam1 = STEREO_HEAD.to_vec();
        fam1[18] = 1;
        for (tail, want) in [
            (&[0u8, 0, 0, 1][..], "Stream Count"),
            (&[1, 2, 0, 1], "Coupled Count"),
            (&[1, 1, 0, 2], "Channel Mapping"),
            (&[1, 1, 0], "Channel Mapping"),
        ] {
            let mut bad = fam1.clone();
            bad.extend_from_slice(tail);
            assert_eq!(field(&bad), want, "{tail:?}");
        }
        for cut in 0..STEREO_HEAD.len() {
            assert!(
                OpusConfig::parse_opus_head(&STEREO_HEAD[..cut]).is_err(),
                "cut {cut}"
            );
        }
    }

    #[test]
    fn dops_refuses_other_versions_trailing_bytes_and_every_cut() {
        let dops = OpusConfig::new(8, 120, 44_100).unwrap().to_dops_bytes();
        for cut in 0..dops.len() {
            assert!(OpusConfig::parse_dops(&dops[..cut]).is_err(), "cut {cut}");
        }
        let mut long = dops.to_vec();
        long.push(0);
        assert!(matches!(
            OpusConfig::parse_dops(&long),
            Err(CodecError::Malformed {
                field: "OpusSpecificBox",
                ..
            })
        ));
        let mut v1 = dops.to_vec();
        v1[0] = 1;
        assert!(matches!(
            OpusConfig::parse_dops(&v1),
            Err(CodecError::Unsupported { field: "Version", .. })
        ));
    }
}

//! H.264 framing (ISO/IEC 14496-10 Annex B and 14496-15 length-prefixed "AVCC") and the AVC
//! decoder configuration record (`avcC`, ISO/IEC 14496-15 §5.3.3.1).

use super::{CodecError, Reader, Sps};
use bytes::Bytes;

/// `nal_unit_type`, the low five bits of a NAL unit's first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NalUnitType(pub u8);

impl NalUnitType {
    pub const NON_IDR_SLICE: Self = Self(1);
    pub const IDR_SLICE: Self = Self(5);
    pub const SEI: Self = Self(6);
    pub const SPS: Self = Self(7);
    pub const PPS: Self = Self(8);
    pub const AUD: Self = Self(9);

    /// The type of a NAL unit, or `None` for an empty one.
    pub fn of(nal: &[u8]) -> Option<Self> {
        nal.first().map(|b| Self(b & 0x1f))
    }
}

/// Most parameter sets one `avcC` may carry (the SPS count has 5 bits).
const MAX_SPS: usize = 31;
/// Most picture parameter sets we accept in one `avcC` (the field allows 255; real
/// encoders send one or two, and each costs memory per track).
const MAX_PPS: usize = 32;

fn find_start_code(data: &[u8], from: usize) -> Option<usize> {
    data.get(from..)?
        .windows(3)
        .position(|w| w == [0, 0, 1])
        .map(|i| from + i)
}

/// The NAL units of an Annex B byte stream (3- or 4-byte start codes), without their
/// start codes or trailing zero bytes. Bytes before the first start code are skipped.
pub fn annexb_nal_units(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut next = find_start_code(data, 0);
    std::iter::from_fn(move || {
        loop {
            let start = next? + 3;
            next = find_start_code(data, start);
            let mut nal = &data[start..next.unwrap_or(data.len())];
            while let [rest @ .., 0] = nal {
                nal = rest;
            }
            if !nal.is_empty() {
                return Some(nal);
            }
        }
    })
}

/// Converts an Annex B access unit into AVCC with 4-byte lengths.
pub fn annexb_to_avcc(data: &[u8]) -> Result<Vec<u8>, CodecError> {
    if !data.is_empty() && find_start_code(data, 0).is_none() {
        return Err(CodecError::Malformed {
            field: "Annex B byte stream",
            offset: 0,
            reason: "no start code (00 00 01)".into(),
        });
    }
    let mut out = Vec::with_capacity(data.len() + 16);
    for nal in annexb_nal_units(data) {
        let len = u32::try_from(nal.len()).map_err(|_| CodecError::Limit {
            field: "NAL unit size",
            count: nal.len(),
            max: u32::MAX as usize,
        })?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(nal);
    }
    Ok(out)
}

/// The NAL units of an AVCC access unit whose lengths are `length_size` bytes (1, 2 or 4).
pub fn avcc_nal_units(data: &[u8], length_size: u8) -> impl Iterator<Item = Result<&[u8], CodecError>> {
    let mut r = Reader::new(data);
    let mut failed = false;
    std::iter::from_fn(move || {
        if failed || r.remaining() == 0 {
            return None;
        }
        let item = (|| {
            if !matches!(length_size, 1 | 2 | 4) {
                return Err(CodecError::Unsupported {
                    field: "NAL length size",
                    what: format!("{length_size}-byte lengths (1, 2 or 4 are defined)"),
                });
            }
            let at = r.offset();
            let len = r
                .bytes("NALUnitLength", usize::from(length_size))?
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
            if len == 0 {
                return Err(CodecError::Malformed {
                    field: "NALUnitLength",
                    offset: at,
                    reason: "zero-length NAL unit".into(),
                });
            }
            r.bytes("NALUnit", len)
        })();
        failed = item.is_err();
        Some(item)
    })
}

/// Converts an AVCC access unit into Annex B with 4-byte start codes.
pub fn avcc_to_annexb(data: &[u8], length_size: u8) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::with_capacity(data.len() + 16);
    for nal in avcc_nal_units(data, length_size) {
        out.extend_from_slice(&[0, 0, 0, 1]);
        out.extend_from_slice(nal?);
    }
    Ok(out)
}

/// The AVC decoder configuration record (`avcC`): what a decoder needs before the first
/// frame, as carried by RTMP's AVC sequence header and by MP4's `avc1` sample entry.
///
/// Built only by [`AvcDecoderConfig::parse`] or [`AvcDecoderConfig::from_parameter_sets`],
/// which check every field and parse the first SPS, so [`AvcDecoderConfig::to_bytes`] always
/// writes a record that parses back to the same value. The high-profile extension (chroma
/// format, bit depths) is written from the SPS when building, kept verbatim when received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvcDecoderConfig {
    profile: u8,
    compatibility: u8,
    level: u8,
    nal_length_size: u8,
    sps: Vec<Bytes>,
    pps: Vec<Bytes>,
    extension: Bytes,
    /// The first SPS, parsed (derived from `sps[0]`, so equality still follows the bytes).
    /// Boxed: it is several times the size of the rest, and tracks are passed by value.
    sps_info: Box<Sps>,
}

/// Byte offset of the first SPS NAL unit in a record: six header bytes and its length.
const FIRST_SPS_OFFSET: usize = 8;

/// `AVCProfileIndication`s whose record carries the chroma format and bit depth extension:
/// every profile but Baseline, Main and Extended, as later editions of ISO/IEC 14496-15
/// §5.3.3.1 say (the first listed only 100, 110, 122 and 144) and FFmpeg writes.
fn has_high_profile_extension(profile_idc: u8) -> bool {
    !matches!(profile_idc, 66 | 77 | 88)
}

/// The extension for `sps`: `'111111'b` + `chroma_format`, `'11111'b` +
/// `bit_depth_luma_minus8`, `'11111'b` + `bit_depth_chroma_minus8`, and
/// `numOfSequenceParameterSetExt` = 0. Empty for profiles without one.
fn high_profile_extension(sps: &Sps) -> Bytes {
    if !has_high_profile_extension(sps.profile_idc) {
        return Bytes::new();
    }
    // The parser keeps chroma_format_idc <= 3 and bit depths in 8..=14.
    Bytes::copy_from_slice(&[
        0xfc | (sps.chroma_format_idc & 0b11),
        0xf8 | (sps.bit_depth_luma.saturating_sub(8) & 0b111),
        0xf8 | (sps.bit_depth_chroma.saturating_sub(8) & 0b111),
        0,
    ])
}

/// The spec's names and rules for one parameter set list inside `avcC`.
struct SetList {
    count_field: &'static str,
    /// Bits of the count byte that hold the count (SPS: 5, PPS: 8).
    count_mask: u8,
    length_field: &'static str,
    nal_field: &'static str,
    nal_type: NalUnitType,
    max: usize,
}

const SPS_LIST: SetList = SetList {
    count_field: "numOfSequenceParameterSets",
    count_mask: 0x1f,
    length_field: "sequenceParameterSetLength",
    nal_field: "sequenceParameterSetNALUnit",
    nal_type: NalUnitType::SPS,
    max: MAX_SPS,
};

const PPS_LIST: SetList = SetList {
    count_field: "numOfPictureParameterSets",
    count_mask: 0xff,
    length_field: "pictureParameterSetLength",
    nal_field: "pictureParameterSetNALUnit",
    nal_type: NalUnitType::PPS,
    max: MAX_PPS,
};

/// Reads a count byte and that many length-prefixed parameter sets, then checks them.
fn read_sets(r: &mut Reader<'_>, list: SetList) -> Result<Vec<Bytes>, CodecError> {
    let at = r.offset();
    let count = usize::from(r.u8(list.count_field)? & list.count_mask);
    if count > list.max {
        return Err(CodecError::Limit {
            field: list.count_field,
            count,
            max: list.max,
        });
    }
    let mut sets = Vec::with_capacity(count);
    for _ in 0..count {
        let len = usize::from(r.u16(list.length_field)?);
        sets.push(Bytes::copy_from_slice(r.bytes(list.nal_field, len)?));
    }
    check_sets(list.nal_field, &sets, list.nal_type, list.max, at)?;
    Ok(sets)
}

/// Checks one parameter set list: count within `1..=max`, each a non-empty NAL unit of the
/// right type and at most 65535 bytes.
fn check_sets<S: AsRef<[u8]>>(
    field: &'static str,
    sets: &[S],
    want: NalUnitType,
    max: usize,
    offset: usize,
) -> Result<(), CodecError> {
    if sets.is_empty() {
        return Err(CodecError::Malformed {
            field,
            offset,
            reason: "none present (a decoder cannot start without one)".into(),
        });
    }
    if sets.len() > max {
        return Err(CodecError::Limit {
            field,
            count: sets.len(),
            max,
        });
    }
    for set in sets {
        let set = set.as_ref();
        if NalUnitType::of(set) != Some(want) || set.len() > usize::from(u16::MAX) {
            return Err(CodecError::Malformed {
                field,
                offset,
                reason: format!(
                    "a NAL unit of type {:?} and {} bytes; expected type {} of 1-65535 bytes",
                    NalUnitType::of(set).map(|t| t.0),
                    set.len(),
                    want.0
                ),
            });
        }
    }
    Ok(())
}

impl AvcDecoderConfig {
    /// Builds a record with 4-byte NAL lengths from one or more SPS and PPS NAL units.
    /// The first SPS must parse (its error, with offsets inside that NAL unit, is returned);
    /// profile, compatibility and level come from it, and for every profile but Baseline,
    /// Main and Extended so does the chroma format and bit depth extension.
    pub fn from_parameter_sets(sps: &[&[u8]], pps: &[&[u8]]) -> Result<Self, CodecError> {
        check_sets("sequence_parameter_set", sps, NalUnitType::SPS, MAX_SPS, 0)?;
        check_sets("picture_parameter_set", pps, NalUnitType::PPS, MAX_PPS, 0)?;
        let sps_info = Box::new(Sps::parse(sps.first().copied().unwrap_or_default())?);
        Ok(Self {
            profile: sps_info.profile_idc,
            compatibility: sps_info.constraint_flags,
            level: sps_info.level_idc,
            nal_length_size: 4,
            sps: sps.iter().map(|s| Bytes::copy_from_slice(s)).collect(),
            pps: pps.iter().map(|s| Bytes::copy_from_slice(s)).collect(),
            extension: high_profile_extension(&sps_info),
            sps_info,
        })
    }

    /// Reads a record. Every byte must belong to it (the extension keeps what follows the
    /// PPS list). The first SPS must parse; its errors give offsets within the record.
    pub fn parse(data: &[u8]) -> Result<Self, CodecError> {
        let mut r = Reader::new(data);
        let version = r.u8("configurationVersion")?;
        if version != 1 {
            return Err(CodecError::Unsupported {
                field: "configurationVersion",
                what: format!("version {version}"),
            });
        }
        let profile = r.u8("AVCProfileIndication")?;
        let compatibility = r.u8("profile_compatibility")?;
        let level = r.u8("AVCLevelIndication")?;
        let length_minus_one = r.u8("lengthSizeMinusOne")? & 0b11;
        if length_minus_one == 2 {
            return Err(CodecError::Malformed {
                field: "lengthSizeMinusOne",
                offset: r.offset() - 1,
                reason: "value 2 (3-byte lengths) is not allowed".into(),
            });
        }
        let sps = read_sets(&mut r, SPS_LIST)?;
        let sps_info = Sps::parse(sps.first().map_or(&[][..], |s| &s[..]))
            .map(Box::new)
            .map_err(|e| e.shifted(FIRST_SPS_OFFSET))?;
        let pps = read_sets(&mut r, PPS_LIST)?;
        let extension = Bytes::copy_from_slice(r.bytes("avcC extension", r.remaining())?);
        Ok(Self {
            profile,
            compatibility,
            level,
            nal_length_size: length_minus_one + 1,
            sps,
            pps,
            extension,
            sps_info,
        })
    }

    /// The first sequence parameter set, parsed: picture size, chroma format, bit depths,
    /// frame rate and reordering.
    pub fn sps_info(&self) -> &Sps {
        &self.sps_info
    }

    /// `AVCProfileIndication` (profile_idc of the first SPS).
    pub fn profile(&self) -> u8 {
        self.profile
    }

    /// `profile_compatibility` (the constraint flags byte of the first SPS).
    pub fn compatibility(&self) -> u8 {
        self.compatibility
    }

    /// `AVCLevelIndication` (level_idc of the first SPS).
    pub fn level(&self) -> u8 {
        self.level
    }

    /// Bytes in each AVCC NAL length prefix (1, 2 or 4).
    pub fn nal_length_size(&self) -> u8 {
        self.nal_length_size
    }

    /// Sequence parameter sets (at least one).
    pub fn sps(&self) -> &[Bytes] {
        &self.sps
    }

    /// Picture parameter sets (at least one).
    pub fn pps(&self) -> &[Bytes] {
        &self.pps
    }

    /// Bytes after the PPS list: the high-profile extension, verbatim when received,
    /// derived from the SPS when built (empty for profiles without one).
    pub fn extension(&self) -> &Bytes {
        &self.extension
    }

    /// Writes the record; `parse(to_bytes(x)) == x`.
    pub fn to_bytes(&self) -> Bytes {
        let mut out = Vec::with_capacity(
            8 + self
                .sps
                .iter()
                .chain(&self.pps)
                .map(|s| s.len() + 2)
                .sum::<usize>()
                + self.extension.len(),
        );
        out.extend_from_slice(&[
            1,
            self.profile,
            self.compatibility,
            self.level,
            0xfc | (self.nal_length_size.saturating_sub(1) & 0b11),
            0xe0 | self.sps.len() as u8, // counts and sizes were checked on construction
        ]);
        for s in &self.sps {
            out.extend_from_slice(&(s.len() as u16).to_be_bytes());
            out.extend_from_slice(s);
        }
        out.push(self.pps.len() as u8);
        for p in &self.pps {
            out.extend_from_slice(&(p.len() as u16).to_be_bytes());
            out.extend_from_slice(p);
        }
        out.extend_from_slice(&self.extension);
        Bytes::from(out)
    }

    /// RFC 6381 codec string, e.g. `avc1.64001f`.
    pub fn codec_string(&self) -> String {
        format!(
            "avc1.{:02x}{:02x}{:02x}",
            self.profile, self.compatibility, self.level
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::sps::tests::x264;

    /// x264's High@3.1 854x480 SPS and its PPS.
    const SPS: &[u8] = x264::HIGH_854X480;
    const PPS: &[u8] = x264::HIGH_854X480_PPS;

    #[test]
    fn splits_annexb_with_both_start_code_lengths_and_trailing_zeros() {
        let data = [
            0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 0, 1, 0x65, 9, 0,
        ];
        let nals: Vec<_> = annexb_nal_units(&data).collect();
        assert_eq!(nals, vec![&[0x67, 1, 2][..], &[0x68, 3], &[0x65, 9]]);
    }

    #[test]
    fn annexb_avcc_round_trip() {
        let data = [0, 0, 0, 1, 0x67, 1, 2, 0, 0, 0, 1, 0x65, 9, 8, 7];
        let avcc = annexb_to_avcc(&data).unwrap();
        assert_eq!(avcc, [0, 0, 0, 3, 0x67, 1, 2, 0, 0, 0, 4, 0x65, 9, 8, 7]);
        assert_eq!(avcc_to_annexb(&avcc, 4).unwrap(), data);
        assert!(annexb_to_avcc(&[1, 2, 3]).is_err());
    }

    #[test]
    fn truncated_avcc_names_the_field_and_offset() {
        let err = avcc_to_annexb(&[0, 0, 0, 9, 0x65, 1], 4).unwrap_err();
        assert_eq!(
            err,
            CodecError::Truncated {
                field: "NALUnit",
                offset: 4,
                needed: 9,
                available: 2
            }
        );
        assert!(avcc_to_annexb(&[0, 1, 0x65], 3).is_err());
    }

    #[test]
    fn record_round_trips_and_names_codec() {
        let rec = AvcDecoderConfig::from_parameter_sets(&[SPS], &[PPS]).unwrap();
        assert_eq!(rec.codec_string(), "avc1.64001f");
        assert_eq!((rec.sps_info().width, rec.sps_info().height), (854, 480));
        let bytes = rec.to_bytes();
        assert_eq!(AvcDecoderConfig::parse(&bytes).unwrap(), rec);
        assert_eq!(AvcDecoderConfig::parse(&bytes).unwrap().to_bytes(), bytes);
    }

    #[test]
    fn high_profiles_get_the_extension_from_their_sps() {
        // High 4:2:0 8-bit, then High 10: '111111' + chroma_format, '11111' + depth - 8 (x2),
        // no SPS extensions.
        let rec = AvcDecoderConfig::from_parameter_sets(&[SPS], &[PPS]).unwrap();
        assert_eq!(&rec.extension()[..], &[0xfd, 0xf8, 0xf8, 0x00]);
        let rec = AvcDecoderConfig::from_parameter_sets(&[x264::HIGH10_1280X718], &[PPS]).unwrap();
        assert_eq!(&rec.extension()[..], &[0xfd, 0xfa, 0xfa, 0x00]);
        assert_eq!(rec.codec_string(), "avc1.6e0020");
        assert_eq!(AvcDecoderConfig::parse(&rec.to_bytes()).unwrap(), rec);
        // 4:4:4 Predictive (244) has one too; Baseline has none.
        let rec = AvcDecoderConfig::from_parameter_sets(&[x264::HIGH444_853X479], &[PPS]).unwrap();
        assert_eq!(rec.extension().len(), 4);
        let rec = AvcDecoderConfig::from_parameter_sets(&[x264::BASELINE_640X360], &[PPS]).unwrap();
        assert!(rec.extension().is_empty(), "{}", rec.codec_string());
        assert_eq!(AvcDecoderConfig::parse(&rec.to_bytes()).unwrap(), rec);
    }

    #[test]
    fn record_parse_rejects_every_truncation() {
        let bytes = AvcDecoderConfig::from_parameter_sets(&[SPS], &[PPS])
            .unwrap()
            .to_bytes();
        // Cutting inside the SPS or PPS list fails; cutting inside the extension leaves a
        // shorter one, which is kept verbatim.
        let extension_at = bytes.len() - 4;
        for cut in 0..bytes.len() {
            let parsed = AvcDecoderConfig::parse(&bytes[..cut]);
            assert_eq!(parsed.is_err(), cut < extension_at, "cut at {cut}");
        }
    }

    #[test]
    fn a_record_whose_sps_does_not_parse_is_refused() {
        // The old hand-written fixture: the right header bytes, then nothing.
        let short: &[u8] = &[0x67, 0x64, 0x00, 0x1f, 0xac, 0xd9];
        let err = AvcDecoderConfig::from_parameter_sets(&[short], &[PPS]).unwrap_err();
        assert!(matches!(err, CodecError::Truncated { .. }), "{err}");
        // The same inside a received record: the offset is the record's (SPS at byte 8).
        let mut record = vec![1, 0x64, 0, 0x1f, 0xff, 0xe1, 0, short.len() as u8];
        record.extend_from_slice(short);
        record.extend_from_slice(&[1, 0, PPS.len() as u8]);
        record.extend_from_slice(PPS);
        let err = AvcDecoderConfig::parse(&record).unwrap_err();
        let CodecError::Truncated { field, offset, .. } = err else {
            panic!("{err}");
        };
        assert!(offset >= 8 && offset < 8 + short.len(), "{field} at {offset}");
        // Damage inside a real SPS: 0000 0100 then the next byte's 1101 1 make
        // seq_parameter_set_id 2^5 - 1 + 0b00110 = 37 (the spec allows 0-31).
        let mut bad = SPS.to_vec();
        bad[4] = 0x04;
        let err = AvcDecoderConfig::from_parameter_sets(&[&bad], &[PPS]).unwrap_err();
        assert!(
            matches!(
                err,
                CodecError::Malformed {
                    field: "seq_parameter_set_id",
                    offset: 4,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn from_parameter_sets_checks_nal_types() {
        assert!(AvcDecoderConfig::from_parameter_sets(&[PPS], &[PPS]).is_err());
        assert!(AvcDecoderConfig::from_parameter_sets(&[], &[PPS]).is_err());
        assert!(AvcDecoderConfig::from_parameter_sets(&[SPS], &[]).is_err());
        assert!(AvcDecoderConfig::from_parameter_sets(&[SPS], &[&[]]).is_err());
        assert!(AvcDecoderConfig::from_parameter_sets(&[&SPS[..1]], &[PPS]).is_err());
    }

    #[test]
    fn record_without_parameter_sets_is_refused_with_offset() {
        // version 1, High@3.1, 4-byte lengths, zero SPS, zero PPS.
        let err = AvcDecoderConfig::parse(&[1, 0x64, 0, 0x1f, 0xff, 0xe0, 0]).unwrap_err();
        assert!(
            matches!(
                err,
                CodecError::Malformed {
                    field: "sequenceParameterSetNALUnit",
                    offset: 5,
                    ..
                }
            ),
            "{err}"
        );
        // A PPS where the SPS belongs.
        let mut bad = vec![1, 0x64, 0, 0x1f, 0xff, 0xe1, 0, 4];
        bad.extend_from_slice(PPS);
        bad.extend_from_slice(&[1, 0, 4]);
        bad.extend_from_slice(PPS);
        assert!(AvcDecoderConfig::parse(&bad).is_err());
    }

    #[test]
    fn zero_length_nal_is_malformed() {
        let err = avcc_to_annexb(&[0, 0, 0, 0, 0, 0, 0, 1, 0x65], 4).unwrap_err();
        assert!(
            matches!(
                err,
                CodecError::Malformed {
                    field: "NALUnitLength",
                    offset: 0,
                    ..
                }
            ),
            "{err}"
        );
    }
}

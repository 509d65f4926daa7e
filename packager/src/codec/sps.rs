//! The H.264 sequence parameter set (ISO/IEC 14496-10 §7.3.2.1.1, VUI in Annex E): RBSP
//! extraction, a bounded Exp-Golomb bit reader, and the SPS fields a packager needs.

use super::CodecError;
use super::h264::NalUnitType;
use crate::media::VideoShape;

/// Largest picture side we accept, in luma samples (Level 6.2 allows 8192x4320; 16384 leaves
/// room without letting a peer make us size buffers for absurd pictures).
pub const MAX_PICTURE_SIDE: u32 = 16_384;
/// Most leading zero bits of an Exp-Golomb code: 31 gives values up to 2^32 - 2, the widest
/// any ue(v)/se(v) field of an SPS may hold.
const MAX_LEADING_ZEROS: u32 = 31;
/// Most frames in the decoded picture buffer (MaxDpbFrames is at most 16, Annex A.3.1).
const MAX_DPB_FRAMES: u32 = 16;

/// `profile_idc` values whose SPS carries chroma format, bit depths and scaling lists
/// (§7.3.2.1.1; 144 is the withdrawn High 4:4:4 profile, which used the same syntax).
const HIGH_BRANCH_PROFILES: [u8; 14] = [100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135, 144];

/// `aspect_ratio_idc` 1-16 as sample aspect ratios (Table E-1).
const SAR_TABLE: [(u16, u16); 16] = [
    (1, 1),
    (12, 11),
    (10, 11),
    (16, 11),
    (40, 33),
    (24, 11),
    (20, 11),
    (32, 11),
    (80, 33),
    (18, 11),
    (15, 11),
    (64, 33),
    (160, 99),
    (4, 3),
    (3, 2),
    (2, 1),
];
/// `aspect_ratio_idc` for a sample aspect ratio given as `sar_width`/`sar_height`.
const EXTENDED_SAR: u8 = 255;

/// A NAL unit's payload with the emulation prevention bytes (the `03` of `00 00 03`)
/// removed, remembering where each was so errors can name offsets in the NAL unit as sent.
pub(crate) struct Rbsp {
    bytes: Vec<u8>,
    /// For each removed byte, the RBSP length when it was removed (ascending).
    removed_at: Vec<usize>,
    /// Offset in the NAL unit of the payload's first byte (1: after the NAL unit header).
    start: usize,
}

impl Rbsp {
    /// Removes `emulation_prevention_three_byte`s (§7.3.1) from `payload`, which begins at
    /// byte `start` of its NAL unit.
    pub(crate) fn new(payload: &[u8], start: usize) -> Self {
        let mut bytes = Vec::with_capacity(payload.len());
        let mut removed_at = Vec::new();
        let mut zeros = 0usize;
        for &b in payload {
            if zeros >= 2 && b == 3 {
                removed_at.push(bytes.len());
                zeros = 0;
                continue;
            }
            zeros = if b == 0 { zeros + 1 } else { 0 };
            bytes.push(b);
        }
        Self {
            bytes,
            removed_at,
            start,
        }
    }

    /// The RBSP bytes.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Offset in the NAL unit of RBSP byte `index` (or of where it would be).
    fn nal_offset(&self, index: usize) -> usize {
        self.start + index + self.removed_at.partition_point(|&r| r <= index)
    }
}

/// Reads the bit fields of an RBSP, most significant bit first, naming each field in its
/// errors. Never reads past the end and never panics.
pub(crate) struct BitReader<'a> {
    rbsp: &'a Rbsp,
    bit: usize,
}

impl<'a> BitReader<'a> {
    pub(crate) fn new(rbsp: &'a Rbsp) -> Self {
        Self { rbsp, bit: 0 }
    }

    fn bits_left(&self) -> usize {
        (self.rbsp.bytes.len() * 8).saturating_sub(self.bit)
    }

    /// The next bit; the caller has checked one is left.
    fn next_bit(&mut self) -> Option<u32> {
        let byte = *self.rbsp.bytes.get(self.bit / 8)?;
        let bit = (byte >> (7 - self.bit % 8)) & 1;
        self.bit += 1;
        Some(u32::from(bit))
    }

    /// A field starting at bit `start` needs bits up to `end` but the RBSP ends first.
    fn truncated(&self, field: &'static str, start: usize, end: usize) -> CodecError {
        let first = start / 8;
        CodecError::Truncated {
            field,
            offset: self.rbsp.nal_offset(first),
            needed: end.div_ceil(8) - first,
            available: self.rbsp.bytes.len().saturating_sub(first),
        }
    }

    /// A field starting at bit `start` has a value the spec does not allow.
    pub(crate) fn malformed(&self, field: &'static str, start: usize, reason: String) -> CodecError {
        CodecError::Malformed {
            field,
            offset: self.rbsp.nal_offset(start / 8),
            reason,
        }
    }

    /// Bit position of the next field (for errors about a field after it is read).
    pub(crate) fn position(&self) -> usize {
        self.bit
    }

    /// `u(n)` for `n` of 0 to 32 bits.
    pub(crate) fn u(&mut self, field: &'static str, n: u32) -> Result<u32, CodecError> {
        debug_assert!(n <= 32, "u({n}) is wider than any H.264 field");
        let start = self.bit;
        let n = n.min(32) as usize;
        if self.bits_left() < n {
            return Err(self.truncated(field, start, start + n));
        }
        let mut v = 0u64;
        for _ in 0..n {
            let bit = self
                .next_bit()
                .ok_or_else(|| self.truncated(field, start, start + n))?;
            v = (v << 1) | u64::from(bit);
        }
        // At most 32 bits were read.
        Ok(v as u32)
    }

    /// `u(1)` as a flag.
    pub(crate) fn flag(&mut self, field: &'static str) -> Result<bool, CodecError> {
        Ok(self.u(field, 1)? == 1)
    }

    /// `ue(v)`: unsigned Exp-Golomb (§9.1), at most [`MAX_LEADING_ZEROS`] leading zeros.
    pub(crate) fn ue(&mut self, field: &'static str) -> Result<u32, CodecError> {
        let start = self.bit;
        let mut zeros = 0u32;
        loop {
            match self.next_bit() {
                None => return Err(self.truncated(field, start, self.bit + 1)),
                Some(1) => break,
                Some(_) => {
                    zeros += 1;
                    if zeros > MAX_LEADING_ZEROS {
                        return Err(self.malformed(
                            field,
                            start,
                            format!(
                                "Exp-Golomb code with more than {MAX_LEADING_ZEROS} leading zero bits \
                                 (a value above 2^32 - 2)"
                            ),
                        ));
                    }
                }
            }
        }
        if self.bits_left() < zeros as usize {
            return Err(self.truncated(field, start, self.bit + zeros as usize));
        }
        let suffix = self.u(field, zeros)?;
        // zeros <= 31, so 2^zeros - 1 + suffix <= 2^32 - 2.
        Ok(((1u64 << zeros) - 1 + u64::from(suffix)) as u32)
    }

    /// `se(v)`: signed Exp-Golomb (§9.1.1), -(2^31 - 1) to 2^31 - 1.
    pub(crate) fn se(&mut self, field: &'static str) -> Result<i32, CodecError> {
        let k = i64::from(self.ue(field)?);
        let v = if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) };
        // |v| <= 2^31 - 1 because k <= 2^32 - 2.
        Ok(v as i32)
    }

    /// `ue(v)` that must lie in `0..=max` (the spec's range for the field).
    pub(crate) fn ue_max(&mut self, field: &'static str, max: u32) -> Result<u32, CodecError> {
        let start = self.bit;
        let v = self.ue(field)?;
        if v > max {
            return Err(self.malformed(field, start, format!("{v} is outside the range 0-{max}")));
        }
        Ok(v)
    }

    /// `se(v)` that must lie in `min..=max`.
    fn se_range(&mut self, field: &'static str, min: i32, max: i32) -> Result<i32, CodecError> {
        let start = self.bit;
        let v = self.se(field)?;
        if !(min..=max).contains(&v) {
            return Err(self.malformed(field, start, format!("{v} is outside the range {min} to {max}")));
        }
        Ok(v)
    }
}

/// The picture order count fields, by `pic_order_cnt_type`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PicOrderCnt {
    /// Type 0: the slice header sends the order count's low bits.
    Type0 {
        /// `log2_max_pic_order_cnt_lsb_minus4 + 4` (4-16).
        log2_max_pic_order_cnt_lsb: u8,
    },
    /// Type 1: the order count follows a cycle of expected offsets.
    Type1 {
        delta_pic_order_always_zero: bool,
        offset_for_non_ref_pic: i32,
        offset_for_top_to_bottom_field: i32,
        /// `offset_for_ref_frame[i]`, `num_ref_frames_in_pic_order_cnt_cycle` (0-255) of them.
        offset_for_ref_frame: Vec<i32>,
    },
    /// Type 2: order count from `frame_num`; output order is decoding order.
    Type2,
}

impl PicOrderCnt {
    /// `pic_order_cnt_type` (0, 1 or 2).
    pub fn pic_order_cnt_type(&self) -> u8 {
        match self {
            Self::Type0 { .. } => 0,
            Self::Type1 { .. } => 1,
            Self::Type2 => 2,
        }
    }
}

/// `frame_crop_*_offset`, in the spec's cropping units (see [`Sps::crop_unit`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameCropping {
    pub left: u32,
    pub right: u32,
    pub top: u32,
    pub bottom: u32,
}

/// `video_signal_type_present_flag`'s fields (E.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct VideoSignalType {
    /// `video_format` (0 component, 1 PAL, 2 NTSC, 3 SECAM, 4 MAC, 5 unspecified).
    pub video_format: u8,
    pub video_full_range: bool,
    /// `colour_primaries`, `transfer_characteristics` and `matrix_coefficients`, when sent.
    pub colour_description: Option<ColourDescription>,
}

/// The colour description of the VUI (ISO/IEC 23091-2 code points).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ColourDescription {
    pub colour_primaries: u8,
    pub transfer_characteristics: u8,
    pub matrix_coefficients: u8,
}

/// `timing_info_present_flag`'s fields: one tick is `num_units_in_tick / time_scale` seconds
/// and a frame lasts two ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimingInfo {
    pub num_units_in_tick: u32,
    pub time_scale: u32,
    /// `fixed_frame_rate_flag`: the frame rate is constant. x264 sets it only when told the
    /// input is constant-rate (`force-cfr`, `tune zerolatency`).
    pub fixed_frame_rate: bool,
}

/// One coded picture buffer specification of `hrd_parameters()` (E.1.2), in bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpbSpec {
    /// `BitRate[i]` in bits per second.
    pub bit_rate: u64,
    /// `CpbSize[i]` in bits.
    pub cpb_size: u64,
    /// `cbr_flag[i]`.
    pub cbr: bool,
}

/// `hrd_parameters()` (E.1.2).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HrdParameters {
    /// `cpb_cnt_minus1 + 1` (1-32) specifications.
    pub cpb: Vec<CpbSpec>,
    pub initial_cpb_removal_delay_length: u8,
    pub cpb_removal_delay_length: u8,
    pub dpb_output_delay_length: u8,
    pub time_offset_length: u8,
}

/// `bitstream_restriction_flag`'s fields (E.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct BitstreamRestriction {
    pub motion_vectors_over_pic_boundaries: bool,
    pub max_bytes_per_pic_denom: u32,
    pub max_bits_per_mb_denom: u32,
    pub log2_max_mv_length_horizontal: u32,
    pub log2_max_mv_length_vertical: u32,
    /// Most frames that precede another in decoding order and follow it in output order:
    /// 0 means no B-frame reordering.
    pub max_num_reorder_frames: u32,
    pub max_dec_frame_buffering: u32,
}

/// Video usability information (Annex E).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Vui {
    /// `aspect_ratio_idc`, when `aspect_ratio_info_present_flag` is set.
    pub aspect_ratio_idc: Option<u8>,
    /// The sample aspect ratio from Table E-1 or `sar_width:sar_height` (Extended_SAR);
    /// `None` when unspecified, reserved or with a zero term.
    pub sample_aspect_ratio: Option<(u16, u16)>,
    /// `overscan_appropriate_flag`, when sent.
    pub overscan_appropriate: Option<bool>,
    pub video_signal_type: Option<VideoSignalType>,
    /// `(chroma_sample_loc_type_top_field, chroma_sample_loc_type_bottom_field)`, each 0-5.
    pub chroma_sample_loc_type: Option<(u8, u8)>,
    pub timing: Option<TimingInfo>,
    pub nal_hrd: Option<HrdParameters>,
    pub vcl_hrd: Option<HrdParameters>,
    /// `low_delay_hrd_flag` (false when no HRD parameters are sent).
    pub low_delay_hrd: bool,
    pub pic_struct_present: bool,
    pub bitstream_restriction: Option<BitstreamRestriction>,
}

/// A parsed H.264 sequence parameter set.
///
/// Built only by [`Sps::parse`], which checks every field against the spec's range and our
/// limits, so the derived values (`width`, `height`, `frame_rate`) agree with the fields.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Sps {
    pub profile_idc: u8,
    /// `constraint_set0_flag` (bit 7) to `constraint_set5_flag` (bit 2) and
    /// `reserved_zero_2bits`: the byte between `profile_idc` and `level_idc` (avcC's
    /// `profile_compatibility`).
    pub constraint_flags: u8,
    pub level_idc: u8,
    /// `seq_parameter_set_id` (0-31).
    pub seq_parameter_set_id: u8,
    /// `chroma_format_idc`: 0 monochrome, 1 4:2:0, 2 4:2:2, 3 4:4:4 (1 unless sent).
    pub chroma_format_idc: u8,
    /// `separate_colour_plane_flag` (4:4:4 coded as three monochrome planes).
    pub separate_colour_plane: bool,
    /// `bit_depth_luma_minus8 + 8` (8-14).
    pub bit_depth_luma: u8,
    /// `bit_depth_chroma_minus8 + 8` (8-14).
    pub bit_depth_chroma: u8,
    pub qpprime_y_zero_transform_bypass: bool,
    /// `seq_scaling_matrix_present_flag` (the lists themselves are skipped).
    pub seq_scaling_matrix_present: bool,
    /// `log2_max_frame_num_minus4 + 4` (4-16).
    pub log2_max_frame_num: u8,
    pub pic_order_cnt: PicOrderCnt,
    /// `max_num_ref_frames` (0-16).
    pub max_num_ref_frames: u8,
    pub gaps_in_frame_num_allowed: bool,
    /// `pic_width_in_mbs_minus1 + 1`.
    pub pic_width_in_mbs: u32,
    /// `pic_height_in_map_units_minus1 + 1` (map units are field macroblock rows when
    /// `frame_mbs_only` is false).
    pub pic_height_in_map_units: u32,
    /// `frame_mbs_only_flag`: false when the stream may be interlaced.
    pub frame_mbs_only: bool,
    pub mb_adaptive_frame_field: bool,
    pub direct_8x8_inference: bool,
    /// `frame_crop_*_offset` when `frame_cropping_flag` is set.
    pub frame_cropping: Option<FrameCropping>,
    /// Display width in luma samples: the coded width less the cropping.
    pub width: u32,
    /// Display height of a frame in luma samples: the coded height less the cropping.
    pub height: u32,
    /// Frames per second as a reduced `(time_scale, 2 * num_units_in_tick)`, whenever the
    /// VUI sends timing (whether or not `fixed_frame_rate_flag` is set, as FFmpeg reads it:
    /// x264 leaves the flag clear on constant-rate input; see [`TimingInfo`]). `None` without
    /// timing, with a zero term, or when the reduced terms do not fit in 32 bits.
    pub frame_rate: Option<(u32, u32)>,
    pub vui: Option<Vui>,
}

impl Sps {
    /// Parses a sequence parameter set NAL unit, including its one-byte header and any
    /// emulation prevention bytes. Errors name the spec's field and the byte offset in `nal`.
    pub fn parse(nal: &[u8]) -> Result<Self, CodecError> {
        let Some((&header, payload)) = nal.split_first() else {
            return Err(CodecError::Truncated {
                field: "nal_unit_header",
                offset: 0,
                needed: 1,
                available: 0,
            });
        };
        if header & 0x80 != 0 {
            return Err(CodecError::Malformed {
                field: "forbidden_zero_bit",
                offset: 0,
                reason: "set to 1".into(),
            });
        }
        let nal_type = NalUnitType::of(nal).map_or(0, |t| t.0);
        if nal_type != NalUnitType::SPS.0 {
            return Err(CodecError::Malformed {
                field: "nal_unit_type",
                offset: 0,
                reason: format!("{nal_type}; a sequence parameter set is type 7"),
            });
        }
        let rbsp = Rbsp::new(payload, 1);
        let mut r = BitReader::new(&rbsp);
        parse_rbsp(&mut r)
    }

    /// `ChromaArrayType`: `chroma_format_idc`, or 0 when the colour planes are coded apart.
    pub fn chroma_array_type(&self) -> u8 {
        if self.separate_colour_plane {
            0
        } else {
            self.chroma_format_idc
        }
    }

    /// `(CropUnitX, CropUnitY)` (§7.4.2.1.1): luma samples per unit of `frame_crop_*_offset`.
    pub fn crop_unit(&self) -> (u32, u32) {
        crop_unit(self.chroma_array_type(), self.frame_mbs_only)
    }

    /// Coded width in luma samples (`PicWidthInMbs * 16`).
    pub fn coded_width(&self) -> u32 {
        self.pic_width_in_mbs * 16
    }

    /// Coded frame height in luma samples (`FrameHeightInMbs * 16`).
    pub fn coded_height(&self) -> u32 {
        self.frame_height_in_mbs() * 16
    }

    /// `FrameHeightInMbs`.
    fn frame_height_in_mbs(&self) -> u32 {
        self.pic_height_in_map_units * if self.frame_mbs_only { 1 } else { 2 }
    }

    /// `constraint_set3_flag` (with level_idc 11 in Baseline/Main/Extended: level 1b; in the
    /// High intra profiles: intra-only).
    pub fn constraint_set3(&self) -> bool {
        self.constraint_flags & 0x10 != 0
    }

    /// The sample aspect ratio the VUI declares, if any.
    pub fn sample_aspect_ratio(&self) -> Option<(u16, u16)> {
        self.vui.as_ref().and_then(|v| v.sample_aspect_ratio)
    }

    /// `MaxDpbFrames` (A.3.1 h): how many frames the level lets the decoded picture buffer
    /// hold at this picture size, at most 16. An unknown level counts as 16.
    pub fn max_dpb_frames(&self) -> u32 {
        let level_1b = self.level_idc == 9
            || (self.level_idc == 11 && self.constraint_set3() && matches!(self.profile_idc, 66 | 77 | 88));
        let max_dpb_mbs: u32 = match self.level_idc {
            _ if level_1b => 396,
            10 => 396,
            11 => 900,
            12 | 13 | 20 => 2_376,
            21 => 4_752,
            22 | 30 => 8_100,
            31 => 18_000,
            32 => 20_480,
            40 | 41 => 32_768,
            42 => 34_816,
            50 => 110_400,
            51 | 52 => 184_320,
            60..=62 => 696_320,
            _ => return MAX_DPB_FRAMES,
        };
        let frame_mbs = (self.pic_width_in_mbs * self.frame_height_in_mbs()).max(1);
        (max_dpb_mbs / frame_mbs).min(MAX_DPB_FRAMES)
    }

    /// `max_num_reorder_frames`: sent in the VUI's bitstream restriction, otherwise inferred
    /// (E.2.1): 0 for the intra-only profiles, else `MaxDpbFrames`. Also 0 for
    /// `pic_order_cnt_type` 2, whose output order is its decoding order. 0 means the stream
    /// has no B-frame reordering (pts equals dts).
    pub fn max_num_reorder_frames(&self) -> u32 {
        if let Some(restriction) = self.vui.as_ref().and_then(|v| v.bitstream_restriction) {
            return restriction.max_num_reorder_frames;
        }
        let intra_profile =
            matches!(self.profile_idc, 44 | 86 | 100 | 110 | 122 | 244) && self.constraint_set3();
        if intra_profile || self.pic_order_cnt == PicOrderCnt::Type2 {
            0
        } else {
            self.max_dpb_frames()
        }
    }

    /// Picture size and frame rate for the media model.
    pub fn video_shape(&self) -> VideoShape {
        VideoShape {
            width: self.width,
            height: self.height,
            frame_rate: self.frame_rate,
        }
    }
}

fn crop_unit(chroma_array_type: u8, frame_mbs_only: bool) -> (u32, u32) {
    let fields = if frame_mbs_only { 1 } else { 2 };
    match chroma_array_type {
        1 => (2, 2 * fields),
        2 => (2, fields),
        _ => (1, fields), // 0 (monochrome or separate planes) and 3 (4:4:4)
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// `time_scale / (2 * num_units_in_tick)` reduced, if both are non-zero and it fits.
fn frame_rate(timing: &TimingInfo) -> Option<(u32, u32)> {
    let num = u64::from(timing.time_scale);
    let den = 2 * u64::from(timing.num_units_in_tick);
    if num == 0 || den == 0 {
        return None;
    }
    let g = gcd(num, den);
    Some((u32::try_from(num / g).ok()?, u32::try_from(den / g).ok()?))
}

/// `seq_parameter_set_data()` and `rbsp_trailing_bits()`.
fn parse_rbsp(r: &mut BitReader<'_>) -> Result<Sps, CodecError> {
    let profile_idc = r.u("profile_idc", 8)? as u8;
    let constraint_flags = r.u("constraint_set0_flag", 8)? as u8;
    let level_idc = r.u("level_idc", 8)? as u8;
    let seq_parameter_set_id = r.ue_max("seq_parameter_set_id", 31)? as u8;

    let mut chroma_format_idc = 1;
    let mut separate_colour_plane = false;
    let mut bit_depth_luma = 8;
    let mut bit_depth_chroma = 8;
    let mut qpprime_y_zero_transform_bypass = false;
    let mut seq_scaling_matrix_present = false;
    if HIGH_BRANCH_PROFILES.contains(&profile_idc) {
        chroma_format_idc = r.ue_max("chroma_format_idc", 3)? as u8;
        if chroma_format_idc == 3 {
            separate_colour_plane = r.flag("separate_colour_plane_flag")?;
        }
        bit_depth_luma = 8 + r.ue_max("bit_depth_luma_minus8", 6)? as u8;
        bit_depth_chroma = 8 + r.ue_max("bit_depth_chroma_minus8", 6)? as u8;
        qpprime_y_zero_transform_bypass = r.flag("qpprime_y_zero_transform_bypass_flag")?;
        seq_scaling_matrix_present = r.flag("seq_scaling_matrix_present_flag")?;
        if seq_scaling_matrix_present {
            let lists = if chroma_format_idc == 3 { 12 } else { 8 };
            for i in 0..lists {
                if r.flag("seq_scaling_list_present_flag")? {
                    skip_scaling_list(r, if i < 6 { 16 } else { 64 })?;
                }
            }
        }
    }

    let log2_max_frame_num = 4 + r.ue_max("log2_max_frame_num_minus4", 12)? as u8;
    let pic_order_cnt = match r.ue_max("pic_order_cnt_type", 2)? {
        0 => PicOrderCnt::Type0 {
            log2_max_pic_order_cnt_lsb: 4 + r.ue_max("log2_max_pic_order_cnt_lsb_minus4", 12)? as u8,
        },
        1 => {
            let delta_pic_order_always_zero = r.flag("delta_pic_order_always_zero_flag")?;
            let offset_for_non_ref_pic = r.se("offset_for_non_ref_pic")?;
            let offset_for_top_to_bottom_field = r.se("offset_for_top_to_bottom_field")?;
            let cycle = r.ue_max("num_ref_frames_in_pic_order_cnt_cycle", 255)?;
            let offset_for_ref_frame = (0..cycle)
                .map(|_| r.se("offset_for_ref_frame"))
                .collect::<Result<_, _>>()?;
            PicOrderCnt::Type1 {
                delta_pic_order_always_zero,
                offset_for_non_ref_pic,
                offset_for_top_to_bottom_field,
                offset_for_ref_frame,
            }
        }
        _ => PicOrderCnt::Type2,
    };
    let max_num_ref_frames = r.ue_max("max_num_ref_frames", MAX_DPB_FRAMES)? as u8;
    let gaps_in_frame_num_allowed = r.flag("gaps_in_frame_num_value_allowed_flag")?;

    // Limits in macroblocks, so that the sizes in samples cannot overflow.
    let max_mbs = MAX_PICTURE_SIDE / 16;
    let pic_width_in_mbs = r.ue("pic_width_in_mbs_minus1")?.saturating_add(1);
    let pic_height_in_map_units = r.ue("pic_height_in_map_units_minus1")?.saturating_add(1);
    let frame_mbs_only = r.flag("frame_mbs_only_flag")?;
    if pic_width_in_mbs > max_mbs {
        return Err(CodecError::Limit {
            field: "pic_width_in_mbs_minus1",
            count: pic_width_in_mbs as usize - 1,
            max: max_mbs as usize - 1,
        });
    }
    let max_map_units = if frame_mbs_only { max_mbs } else { max_mbs / 2 };
    if pic_height_in_map_units > max_map_units {
        return Err(CodecError::Limit {
            field: "pic_height_in_map_units_minus1",
            count: pic_height_in_map_units as usize - 1,
            max: max_map_units as usize - 1,
        });
    }
    let mb_adaptive_frame_field = if frame_mbs_only {
        false
    } else {
        r.flag("mb_adaptive_frame_field_flag")?
    };
    let direct_8x8_inference = r.flag("direct_8x8_inference_flag")?;

    let coded_width = pic_width_in_mbs * 16;
    let coded_height = pic_height_in_map_units * if frame_mbs_only { 1 } else { 2 } * 16;
    let chroma_array_type = if separate_colour_plane {
        0
    } else {
        chroma_format_idc
    };
    let (unit_x, unit_y) = crop_unit(chroma_array_type, frame_mbs_only);
    let mut width = coded_width;
    let mut height = coded_height;
    let frame_cropping = if r.flag("frame_cropping_flag")? {
        let left = r.ue("frame_crop_left_offset")?;
        let right_at = r.position();
        let right = r.ue("frame_crop_right_offset")?;
        let top = r.ue("frame_crop_top_offset")?;
        let bottom_at = r.position();
        let bottom = r.ue("frame_crop_bottom_offset")?;
        let crop = FrameCropping {
            left,
            right,
            top,
            bottom,
        };
        let across = u64::from(unit_x) * (u64::from(crop.left) + u64::from(crop.right));
        let down = u64::from(unit_y) * (u64::from(crop.top) + u64::from(crop.bottom));
        if across >= u64::from(coded_width) {
            return Err(r.malformed(
                "frame_crop_right_offset",
                right_at,
                format!("cropping {across} of {coded_width} luma columns leaves no picture"),
            ));
        }
        if down >= u64::from(coded_height) {
            return Err(r.malformed(
                "frame_crop_bottom_offset",
                bottom_at,
                format!("cropping {down} of {coded_height} luma rows leaves no picture"),
            ));
        }
        // Both are below the coded size, which fits in u32.
        width = coded_width - across as u32;
        height = coded_height - down as u32;
        Some(crop)
    } else {
        None
    };

    let vui = if r.flag("vui_parameters_present_flag")? {
        Some(parse_vui(r)?)
    } else {
        None
    };

    // rbsp_trailing_bits(): a stop bit of 1. A stop bit of 0 means the fields above were
    // misread (garbage); a missing one is accepted, as every field was present.
    let stop_at = r.position();
    if r.bits_left() > 0 && !r.flag("rbsp_stop_one_bit")? {
        return Err(r.malformed(
            "rbsp_stop_one_bit",
            stop_at,
            "0 where the SPS should end (extra or misaligned fields)".into(),
        ));
    }

    let frame_rate = vui.as_ref().and_then(|v| v.timing.as_ref()).and_then(frame_rate);
    Ok(Sps {
        profile_idc,
        constraint_flags,
        level_idc,
        seq_parameter_set_id,
        chroma_format_idc,
        separate_colour_plane,
        bit_depth_luma,
        bit_depth_chroma,
        qpprime_y_zero_transform_bypass,
        seq_scaling_matrix_present,
        log2_max_frame_num,
        pic_order_cnt,
        max_num_ref_frames,
        gaps_in_frame_num_allowed,
        pic_width_in_mbs,
        pic_height_in_map_units,
        frame_mbs_only,
        mb_adaptive_frame_field,
        direct_8x8_inference,
        frame_cropping,
        width,
        height,
        frame_rate,
        vui,
    })
}

/// Reads past one `scaling_list()` (§7.3.2.1.1.1) of `size` coefficients.
fn skip_scaling_list(r: &mut BitReader<'_>, size: usize) -> Result<(), CodecError> {
    let mut last_scale = 8i32;
    let mut next_scale = 8i32;
    for _ in 0..size {
        if next_scale != 0 {
            let delta_scale = r.se_range("delta_scale", -128, 127)?;
            next_scale = (last_scale + delta_scale + 256) % 256;
        }
        if next_scale != 0 {
            last_scale = next_scale;
        }
    }
    Ok(())
}

/// `vui_parameters()` (E.1.1).
fn parse_vui(r: &mut BitReader<'_>) -> Result<Vui, CodecError> {
    let mut aspect_ratio_idc = None;
    let mut sample_aspect_ratio = None;
    if r.flag("aspect_ratio_info_present_flag")? {
        let idc = r.u("aspect_ratio_idc", 8)? as u8;
        aspect_ratio_idc = Some(idc);
        sample_aspect_ratio = if idc == EXTENDED_SAR {
            let w = r.u("sar_width", 16)? as u16;
            let h = r.u("sar_height", 16)? as u16;
            (w != 0 && h != 0).then_some((w, h))
        } else {
            // 0 is "unspecified" and 17-254 are reserved; decoders ignore both.
            usize::from(idc)
                .checked_sub(1)
                .and_then(|i| SAR_TABLE.get(i))
                .copied()
        };
    }
    let overscan_appropriate = if r.flag("overscan_info_present_flag")? {
        Some(r.flag("overscan_appropriate_flag")?)
    } else {
        None
    };
    let video_signal_type = if r.flag("video_signal_type_present_flag")? {
        let video_format = r.u("video_format", 3)? as u8;
        let video_full_range = r.flag("video_full_range_flag")?;
        let colour_description = if r.flag("colour_description_present_flag")? {
            Some(ColourDescription {
                colour_primaries: r.u("colour_primaries", 8)? as u8,
                transfer_characteristics: r.u("transfer_characteristics", 8)? as u8,
                matrix_coefficients: r.u("matrix_coefficients", 8)? as u8,
            })
        } else {
            None
        };
        Some(VideoSignalType {
            video_format,
            video_full_range,
            colour_description,
        })
    } else {
        None
    };
    let chroma_sample_loc_type = if r.flag("chroma_loc_info_present_flag")? {
        let top = r.ue_max("chroma_sample_loc_type_top_field", 5)? as u8;
        let bottom = r.ue_max("chroma_sample_loc_type_bottom_field", 5)? as u8;
        Some((top, bottom))
    } else {
        None
    };
    let timing = if r.flag("timing_info_present_flag")? {
        Some(TimingInfo {
            num_units_in_tick: r.u("num_units_in_tick", 32)?,
            time_scale: r.u("time_scale", 32)?,
            fixed_frame_rate: r.flag("fixed_frame_rate_flag")?,
        })
    } else {
        None
    };
    let nal_hrd = if r.flag("nal_hrd_parameters_present_flag")? {
        Some(parse_hrd(r)?)
    } else {
        None
    };
    let vcl_hrd = if r.flag("vcl_hrd_parameters_present_flag")? {
        Some(parse_hrd(r)?)
    } else {
        None
    };
    let low_delay_hrd = if nal_hrd.is_some() || vcl_hrd.is_some() {
        r.flag("low_delay_hrd_flag")?
    } else {
        false
    };
    let pic_struct_present = r.flag("pic_struct_present_flag")?;
    let bitstream_restriction = if r.flag("bitstream_restriction_flag")? {
        Some(BitstreamRestriction {
            motion_vectors_over_pic_boundaries: r.flag("motion_vectors_over_pic_boundaries_flag")?,
            max_bytes_per_pic_denom: r.ue_max("max_bytes_per_pic_denom", 16)?,
            max_bits_per_mb_denom: r.ue_max("max_bits_per_mb_denom", 16)?,
            log2_max_mv_length_horizontal: r.ue_max("log2_max_mv_length_horizontal", 16)?,
            log2_max_mv_length_vertical: r.ue_max("log2_max_mv_length_vertical", 16)?,
            max_num_reorder_frames: r.ue_max("max_num_reorder_frames", MAX_DPB_FRAMES)?,
            max_dec_frame_buffering: r.ue_max("max_dec_frame_buffering", MAX_DPB_FRAMES)?,
        })
    } else {
        None
    };
    Ok(Vui {
        aspect_ratio_idc,
        sample_aspect_ratio,
        overscan_appropriate,
        video_signal_type,
        chroma_sample_loc_type,
        timing,
        nal_hrd,
        vcl_hrd,
        low_delay_hrd,
        pic_struct_present,
        bitstream_restriction,
    })
}

/// `hrd_parameters()` (E.1.2).
fn parse_hrd(r: &mut BitReader<'_>) -> Result<HrdParameters, CodecError> {
    let count = r.ue_max("cpb_cnt_minus1", 31)? + 1;
    let bit_rate_scale = r.u("bit_rate_scale", 4)?;
    let cpb_size_scale = r.u("cpb_size_scale", 4)?;
    let mut cpb = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let bit_rate_value = u64::from(r.ue("bit_rate_value_minus1")?) + 1;
        let cpb_size_value = u64::from(r.ue("cpb_size_value_minus1")?) + 1;
        let cbr = r.flag("cbr_flag")?;
        // value < 2^32 and scale <= 15, so each product is below 2^53.
        cpb.push(CpbSpec {
            bit_rate: bit_rate_value << (6 + bit_rate_scale),
            cpb_size: cpb_size_value << (4 + cpb_size_scale),
            cbr,
        });
    }
    Ok(HrdParameters {
        cpb,
        initial_cpb_removal_delay_length: r.u("initial_cpb_removal_delay_length_minus1", 5)? as u8 + 1,
        cpb_removal_delay_length: r.u("cpb_removal_delay_length_minus1", 5)? as u8 + 1,
        dpb_output_delay_length: r.u("dpb_output_delay_length_minus1", 5)? as u8 + 1,
        time_offset_length: r.u("time_offset_length", 5)? as u8,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Real SPS NAL units from x264 (`ffmpeg -f lavfi -i testsrc2=... -c:v libx264 -f h264`),
    /// with what FFmpeg's `trace_headers` bitstream filter reads in them.
    pub(crate) mod x264 {
        /// High@3.1 854x480 at 30000/1001, B-frames: crop 5 units right; contains `00 00 03`.
        pub(crate) const HIGH_854X480: &[u8] = &[
            0x67, 0x64, 0x00, 0x1f, 0xac, 0xd9, 0x40, 0xd8, 0x3d, 0xe6, 0xf0, 0x11, 0x00, 0x00, 0x03, 0x03,
            0xe9, 0x00, 0x00, 0xea, 0x60, 0x0f, 0x18, 0x31, 0x96,
        ];
        pub(crate) const HIGH_854X480_PPS: &[u8] = &[0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0];
        /// Constrained Baseline@3.0 640x360 at 25: POC type 2, crop 4 units bottom.
        pub(crate) const BASELINE_640X360: &[u8] = &[
            0x67, 0x42, 0xc0, 0x1e, 0xd9, 0x00, 0xa0, 0x2f, 0xf9, 0x70, 0x11, 0x00, 0x00, 0x03, 0x00, 0x01,
            0x00, 0x00, 0x03, 0x00, 0x32, 0x0f, 0x16, 0x2e, 0x48,
        ];
        /// High@4.0 1920x1080 interlaced (MBAFF) at 25 fps, fixed rate: 34 map units of
        /// field MB pairs, crop 2 units (8 rows) bottom.
        pub(crate) const INTERLACED_1920X1080: &[u8] = &[
            0x67, 0x64, 0x00, 0x28, 0xac, 0xd9, 0x40, 0x78, 0x04, 0x4f, 0xde, 0x02, 0x20, 0x00, 0x00, 0x03,
            0x00, 0x20, 0x00, 0x00, 0x06, 0x53, 0xe2, 0xc5, 0xb2, 0xc0,
        ];
        /// High 4:4:4 Predictive@3.1 853x479 at 50: crop unit 1, 11 right and 1 bottom;
        /// Extended_SAR 51133:51180.
        pub(crate) const HIGH444_853X479: &[u8] = &[
            0x67, 0xf4, 0x00, 0x1f, 0x91, 0x9b, 0x28, 0x1b, 0x07, 0xbc, 0x65, 0x7f, 0xf8, 0xf7, 0xb8, 0xfd,
            0x82, 0x00, 0x00, 0x03, 0x00, 0x02, 0x00, 0x00, 0x03, 0x00, 0xc8, 0x1e, 0x30, 0x63, 0x2c,
        ];
        /// High 10@3.2 1280x718 at 60.
        pub(crate) const HIGH10_1280X718: &[u8] = &[
            0x67, 0x6e, 0x00, 0x20, 0xa6, 0xcd, 0x94, 0x05, 0x00, 0x5b, 0xfa, 0xc0, 0x44, 0x00, 0x00, 0x03,
            0x00, 0x04, 0x00, 0x00, 0x03, 0x01, 0xe0, 0x3c, 0x60, 0xc6, 0x58,
        ];
        /// High@1.3 320x240 with NAL HRD (VBR 600 kbit/s, 1 Mbit buffer).
        pub(crate) const HRD_320X240: &[u8] = &[
            0x67, 0x64, 0x00, 0x0d, 0xac, 0xd9, 0x41, 0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10,
            0x00, 0x00, 0x03, 0x03, 0x26, 0x04, 0x00, 0x09, 0x27, 0xc0, 0x01, 0xe8, 0x4a, 0x6c, 0x30, 0x07,
            0x8a, 0x14, 0xcb,
        ];
        /// High@1.3 320x240, `-tune zerolatency` and Extended_SAR 5:4: POC type 2, no reordering.
        pub(crate) const ZEROLATENCY_SAR_5_4: &[u8] = &[
            0x67, 0x64, 0x00, 0x0d, 0xac, 0xb2, 0x02, 0x83, 0xf7, 0xfe, 0x00, 0x0a, 0x00, 0x08, 0x20, 0x00,
            0x00, 0x03, 0x00, 0x20, 0x00, 0x00, 0x06, 0x51, 0xe2, 0x85, 0x49,
        ];
        /// High@1.3 320x240 monochrome (chroma_format_idc 0), full range.
        pub(crate) const MONOCHROME_320X240: &[u8] = &[
            0x67, 0x64, 0x00, 0x0d, 0xf3, 0x65, 0x05, 0x07, 0xec, 0x05, 0xb2, 0x00, 0x00, 0x03, 0x00, 0x02,
            0x00, 0x00, 0x03, 0x00, 0x64, 0x1e, 0x28, 0x53, 0x2c,
        ];

        pub(crate) const ALL: &[&[u8]] = &[
            HIGH_854X480,
            BASELINE_640X360,
            INTERLACED_1920X1080,
            HIGH444_853X479,
            HIGH10_1280X718,
            HRD_320X240,
            ZEROLATENCY_SAR_5_4,
            MONOCHROME_320X240,
        ];
    }

    /// Writes bit fields MSB first, for crafted parameter sets.
    #[derive(Default)]
    struct W(Vec<bool>);

    impl W {
        fn u(&mut self, n: u32, v: u64) -> &mut Self {
            for i in (0..n).rev() {
                self.0.push((v >> i) & 1 == 1);
            }
            self
        }
        fn flag(&mut self, b: bool) -> &mut Self {
            self.0.push(b);
            self
        }
        fn ue(&mut self, v: u64) -> &mut Self {
            let x = v + 1;
            let len = 64 - x.leading_zeros();
            self.u(len - 1, 0).u(len, x)
        }
        fn se(&mut self, v: i64) -> &mut Self {
            self.ue(if v > 0 { 2 * v as u64 - 1 } else { (-2 * v) as u64 })
        }
        /// The bits as bytes, zero-padded (no stop bit).
        fn bytes(&self) -> Vec<u8> {
            self.0
                .chunks(8)
                .map(|c| {
                    c.iter()
                        .enumerate()
                        .fold(0u8, |b, (i, &bit)| b | (u8::from(bit) << (7 - i)))
                })
                .collect()
        }
        /// An SPS NAL unit: header, these bits, the stop bit, emulation prevention.
        fn sps_nal(&self) -> Vec<u8> {
            let mut bits = W(self.0.clone());
            bits.flag(true);
            let mut nal = vec![0x67];
            nal.extend(ebsp(&bits.bytes()));
            nal
        }
    }

    /// Inserts emulation prevention bytes (the inverse of `Rbsp::new`).
    fn ebsp(rbsp: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(rbsp.len() + 4);
        let mut zeros = 0;
        for &b in rbsp {
            if zeros >= 2 && b <= 3 {
                out.push(3);
                zeros = 0;
            }
            out.push(b);
            zeros = if b == 0 { zeros + 1 } else { 0 };
        }
        out
    }

    /// The RBSP of written bits (escaped, then unescaped by the code under test).
    fn rbsp_of_bits(w: &W) -> Rbsp {
        let rbsp = Rbsp::new(&ebsp(&w.bytes()), 0);
        assert_eq!(rbsp.bytes(), w.bytes());
        rbsp
    }

    fn rbsp_of(bits: &str) -> Rbsp {
        let mut w = W::default();
        for c in bits.chars().filter(|c| !c.is_whitespace()) {
            w.flag(c == '1');
        }
        rbsp_of_bits(&w)
    }

    #[test]
    fn emulation_prevention_bytes_are_removed_and_offsets_kept() {
        let cases: [(&[u8], &[u8]); 7] = [
            (&[0, 0, 3, 1], &[0, 0, 1]),
            (&[0, 0, 3, 0, 0, 3], &[0, 0, 0, 0]),
            // The byte after an emulation prevention byte is data, even a 3.
            (&[0, 0, 3, 3], &[0, 0, 3]),
            (&[0, 0, 0, 3, 2], &[0, 0, 0, 2]),
            (&[0, 3, 0, 3], &[0, 3, 0, 3]),
            (&[1, 0, 0, 3], &[1, 0, 0]),
            (&[], &[]),
        ];
        for (ebsp_bytes, rbsp) in cases {
            assert_eq!(Rbsp::new(ebsp_bytes, 1).bytes(), rbsp, "{ebsp_bytes:02x?}");
        }
        // NAL unit 67 | 00 00 03 01 ff: RBSP byte 2 (the 01) is NAL byte 4.
        let r = Rbsp::new(&[0, 0, 3, 1, 0xff], 1);
        assert_eq!((r.nal_offset(0), r.nal_offset(2), r.nal_offset(3)), (1, 4, 5));
        // Our inverse agrees on every two-byte tail after two zeros.
        for a in 0..=255u8 {
            let rbsp = [0, 0, a, 0, 0];
            assert_eq!(Rbsp::new(&ebsp(&rbsp), 0).bytes(), rbsp);
        }
    }

    #[test]
    fn exp_golomb_values_and_signs() {
        let rbsp = rbsp_of("1 010 011 00100 00111 0001000");
        let mut r = BitReader::new(&rbsp);
        let got: Vec<u32> = (0..6).map(|_| r.ue("v").unwrap()).collect();
        assert_eq!(got, [0, 1, 2, 3, 6, 7]);
        let rbsp = rbsp_of("1 010 011 00100 00101");
        let mut r = BitReader::new(&rbsp);
        let got: Vec<i32> = (0..5).map(|_| r.se("v").unwrap()).collect();
        assert_eq!(got, [0, 1, -1, 2, -2]);
    }

    #[test]
    fn exp_golomb_extremes() {
        // 31 leading zeros: the largest value, 2^32 - 2, and se's extremes.
        let mut w = W::default();
        w.u(31, 0).u(32, u64::from(u32::MAX));
        w.u(31, 0).u(32, u64::from(u32::MAX));
        w.u(31, 0).u(32, u64::from(u32::MAX) - 1);
        let rbsp = rbsp_of_bits(&w);
        let mut r = BitReader::new(&rbsp);
        assert_eq!(r.ue("v").unwrap(), u32::MAX - 1);
        assert_eq!(r.se("v").unwrap(), -i32::MAX);
        assert_eq!(r.se("v").unwrap(), i32::MAX);
        // 32 leading zeros: refused without reading on.
        let rbsp = Rbsp::new(&[0; 64], 0);
        let err = BitReader::new(&rbsp).ue("max_num_ref_frames").unwrap_err();
        assert!(
            matches!(
                err,
                CodecError::Malformed {
                    field: "max_num_ref_frames",
                    offset: 0,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn exp_golomb_truncated_in_prefix_or_suffix() {
        // Whole bytes, each short of the code's end (in the zeros, at the 1, in the suffix).
        for bits in [
            "",
            "00000000",
            "00000000 00000000",
            "00000001",
            "00000000 01000000",
            "00000000 00000000 00000000 00000001 11111111 11111111 11111111",
        ] {
            let rbsp = rbsp_of(bits);
            let mut r = BitReader::new(&rbsp);
            match r.ue("v") {
                Err(CodecError::Truncated { field: "v", .. }) => {}
                other => panic!("{bits:?}: {other:?}"),
            }
        }
        let rbsp = rbsp_of("11111111 01010101");
        let mut r = BitReader::new(&rbsp);
        assert_eq!(r.u("v", 0).unwrap(), 0);
        assert_eq!(r.u("v", 12).unwrap(), 0xff5);
        let err = r.u("w", 5).unwrap_err();
        assert_eq!(
            err,
            CodecError::Truncated {
                field: "w",
                offset: 1,
                needed: 2,
                available: 1
            }
        );
        assert_eq!(r.u("w", 4).unwrap(), 0x5);
        assert!(r.flag("x").is_err());
        assert!(r.ue("y").is_err() && r.se("z").is_err());
    }

    #[test]
    fn x264_high_854x480() {
        let sps = Sps::parse(x264::HIGH_854X480).unwrap();
        assert_eq!(
            (
                sps.profile_idc,
                sps.constraint_flags,
                sps.level_idc,
                sps.seq_parameter_set_id
            ),
            (100, 0, 31, 0)
        );
        assert_eq!(
            (sps.chroma_format_idc, sps.bit_depth_luma, sps.bit_depth_chroma),
            (1, 8, 8)
        );
        assert_eq!(sps.log2_max_frame_num, 4);
        assert_eq!(
            sps.pic_order_cnt,
            PicOrderCnt::Type0 {
                log2_max_pic_order_cnt_lsb: 6
            }
        );
        assert_eq!(sps.max_num_ref_frames, 4);
        assert_eq!((sps.coded_width(), sps.coded_height()), (864, 480));
        assert_eq!(
            sps.frame_cropping,
            Some(FrameCropping {
                left: 0,
                right: 5,
                top: 0,
                bottom: 0
            })
        );
        assert_eq!((sps.width, sps.height), (854, 480));
        assert_eq!(sps.frame_rate, Some((30_000, 1_001)));
        let vui = sps.vui.as_ref().unwrap();
        assert_eq!(
            vui.timing,
            Some(TimingInfo {
                num_units_in_tick: 1001,
                time_scale: 60_000,
                fixed_frame_rate: false
            })
        );
        assert_eq!(sps.sample_aspect_ratio(), Some((1, 1)));
        assert_eq!(sps.max_num_reorder_frames(), 2);
        assert_eq!(vui.bitstream_restriction.unwrap().max_dec_frame_buffering, 4);
        assert_eq!(
            sps.video_shape(),
            VideoShape {
                width: 854,
                height: 480,
                frame_rate: Some((30_000, 1_001))
            }
        );
    }

    #[test]
    fn x264_other_profiles_and_cropping() {
        let base = Sps::parse(x264::BASELINE_640X360).unwrap();
        assert_eq!(
            (base.profile_idc, base.constraint_flags, base.level_idc),
            (66, 0xc0, 30)
        );
        assert_eq!(
            (base.width, base.height, base.frame_rate),
            (640, 360, Some((25, 1)))
        );
        assert_eq!(base.pic_order_cnt, PicOrderCnt::Type2);
        assert_eq!(base.max_num_reorder_frames(), 0);

        let i = Sps::parse(x264::INTERLACED_1920X1080).unwrap();
        assert!(!i.frame_mbs_only && i.mb_adaptive_frame_field);
        assert_eq!(
            (i.pic_height_in_map_units, i.coded_height(), i.crop_unit()),
            (34, 1088, (2, 4))
        );
        assert_eq!((i.width, i.height, i.frame_rate), (1920, 1080, Some((25, 1))));
        assert!(i.vui.as_ref().unwrap().timing.unwrap().fixed_frame_rate);
        assert!(i.vui.as_ref().unwrap().pic_struct_present);

        let p = Sps::parse(x264::HIGH444_853X479).unwrap();
        assert_eq!(
            (p.profile_idc, p.chroma_format_idc, p.crop_unit()),
            (244, 3, (1, 1))
        );
        assert!(!p.separate_colour_plane);
        assert_eq!((p.width, p.height, p.frame_rate), (853, 479, Some((50, 1))));
        assert_eq!(p.vui.as_ref().unwrap().aspect_ratio_idc, Some(255));
        assert_eq!(p.sample_aspect_ratio(), Some((51_133, 51_180)));

        let h10 = Sps::parse(x264::HIGH10_1280X718).unwrap();
        assert_eq!(
            (h10.profile_idc, h10.bit_depth_luma, h10.bit_depth_chroma),
            (110, 10, 10)
        );
        assert_eq!(
            (h10.width, h10.height, h10.frame_rate),
            (1280, 718, Some((60, 1)))
        );

        let mono = Sps::parse(x264::MONOCHROME_320X240).unwrap();
        assert_eq!(
            (mono.chroma_format_idc, mono.chroma_array_type(), mono.crop_unit()),
            (0, 0, (1, 1))
        );
        let signal = mono.vui.as_ref().unwrap().video_signal_type.unwrap();
        assert_eq!((signal.video_format, signal.video_full_range), (5, true));
        assert_eq!(signal.colour_description, None);
    }

    #[test]
    fn x264_hrd_and_zerolatency() {
        let hrd = Sps::parse(x264::HRD_320X240).unwrap();
        let vui = hrd.vui.as_ref().unwrap();
        let nal = vui.nal_hrd.as_ref().unwrap();
        assert_eq!(
            nal.cpb,
            [CpbSpec {
                bit_rate: 600_000,
                cpb_size: 1_000_000,
                cbr: false
            }]
        );
        assert_eq!(
            (
                nal.initial_cpb_removal_delay_length,
                nal.cpb_removal_delay_length,
                nal.dpb_output_delay_length,
                nal.time_offset_length
            ),
            (20, 13, 7, 0)
        );
        assert!(vui.vcl_hrd.is_none() && !vui.low_delay_hrd);
        assert_eq!(hrd.max_num_reorder_frames(), 2);
        assert_eq!((hrd.width, hrd.height), (320, 240));

        let zl = Sps::parse(x264::ZEROLATENCY_SAR_5_4).unwrap();
        assert_eq!(zl.sample_aspect_ratio(), Some((5, 4)));
        assert_eq!(zl.pic_order_cnt, PicOrderCnt::Type2);
        assert_eq!(zl.max_num_reorder_frames(), 0);
        assert!(zl.vui.as_ref().unwrap().timing.unwrap().fixed_frame_rate);
    }

    #[test]
    fn every_truncation_fails_or_loses_only_trailing_bits() {
        for &nal in x264::ALL {
            let full = Sps::parse(nal).unwrap();
            for cut in 0..nal.len() {
                // Never a panic; a cut that keeps every field parses to the same SPS.
                if let Ok(sps) = Sps::parse(&nal[..cut]) {
                    assert_eq!(sps, full, "cut {cut} of {nal:02x?}");
                }
            }
            assert!(Sps::parse(&nal[..nal.len() - 2]).is_err(), "{nal:02x?}");
        }
    }

    /// A Baseline SPS head: profile 66, level 3.0, the given id.
    fn baseline_head(w: &mut W, sps_id: u64) -> &mut W {
        w.u(8, 66).u(8, 0xc0).u(8, 30).ue(sps_id)
    }

    /// From `log2_max_frame_num_minus4` to `vui_parameters_present_flag` = 0, POC type 2.
    fn plain_tail(
        w: &mut W,
        width_mbs: u64,
        height_units: u64,
        frame_mbs_only: bool,
        crop: Option<[u64; 4]>,
    ) -> &mut W {
        w.ue(0).ue(2).ue(1).flag(false);
        w.ue(width_mbs - 1).ue(height_units - 1).flag(frame_mbs_only);
        if !frame_mbs_only {
            w.flag(false);
        }
        w.flag(true);
        match crop {
            Some([l, r, t, b]) => w.flag(true).ue(l).ue(r).ue(t).ue(b),
            None => w.flag(false),
        };
        w.flag(false)
    }

    #[test]
    fn crafted_poc_type_1_and_no_vui() {
        let mut w = W::default();
        baseline_head(&mut w, 31);
        w.ue(2)
            .ue(1)
            .flag(true)
            .se(-5)
            .se(3)
            .ue(3)
            .se(1)
            .se(-2)
            .se(i64::from(i32::MAX));
        w.ue(2)
            .flag(true)
            .ue(19)
            .ue(14)
            .flag(true)
            .flag(true)
            .flag(false)
            .flag(false);
        let sps = Sps::parse(&w.sps_nal()).unwrap();
        assert_eq!(sps.seq_parameter_set_id, 31);
        assert_eq!(sps.log2_max_frame_num, 6);
        assert_eq!(
            sps.pic_order_cnt,
            PicOrderCnt::Type1 {
                delta_pic_order_always_zero: true,
                offset_for_non_ref_pic: -5,
                offset_for_top_to_bottom_field: 3,
                offset_for_ref_frame: vec![1, -2, i32::MAX],
            }
        );
        assert_eq!(sps.pic_order_cnt.pic_order_cnt_type(), 1);
        assert!(sps.gaps_in_frame_num_allowed);
        assert_eq!(
            (sps.width, sps.height, sps.frame_rate, &sps.vui),
            (320, 240, None, &None)
        );
        // Level 3.0 holds 8100 macroblocks of frames: 25 of 300-macroblock 320x240 frames, capped at 16.
        assert_eq!(sps.max_num_reorder_frames(), 16);
    }

    #[test]
    fn crafted_high_444_with_scaling_lists_and_separate_planes() {
        let mut w = W::default();
        w.u(8, 244).u(8, 0).u(8, 40).ue(0);
        w.ue(3).flag(true).ue(2).ue(4).flag(true).flag(true);
        // 12 lists for 4:4:4. List 0: all 16 deltas. List 6: one delta making nextScale 0
        // (use the default matrix), so no more are read. List 11: all 64 deltas, at the
        // extremes of delta_scale's range (never reaching nextScale 0). The rest absent.
        w.flag(true);
        for i in 0..16 {
            w.se(if i % 2 == 0 { 5 } else { -3 });
        }
        for _ in 1..6 {
            w.flag(false);
        }
        w.flag(true).se(-8);
        for _ in 7..11 {
            w.flag(false);
        }
        w.flag(true);
        w.se(-128);
        for i in 1..64 {
            w.se(if i % 2 == 1 { 127 } else { -127 });
        }
        // 4:4:4 separate planes: ChromaArrayType 0, so CropUnitX 1 and CropUnitY 1.
        w.ue(0).ue(0).ue(4).ue(1).flag(false);
        w.ue(119).ue(67).flag(true).flag(true);
        w.flag(true).ue(0).ue(1).ue(0).ue(3).flag(false);
        let sps = Sps::parse(&w.sps_nal()).unwrap();
        assert_eq!(
            (
                sps.chroma_format_idc,
                sps.separate_colour_plane,
                sps.chroma_array_type()
            ),
            (3, true, 0)
        );
        assert_eq!((sps.bit_depth_luma, sps.bit_depth_chroma), (10, 12));
        assert!(sps.qpprime_y_zero_transform_bypass && sps.seq_scaling_matrix_present);
        assert_eq!(
            (sps.pic_order_cnt.pic_order_cnt_type(), sps.max_num_ref_frames),
            (0, 1)
        );
        assert_eq!((sps.width, sps.height), (1919, 1085));
    }

    fn baseline(width_mbs: u64, height_units: u64, frame_mbs_only: bool, crop: Option<[u64; 4]>) -> Vec<u8> {
        let mut w = W::default();
        baseline_head(&mut w, 0);
        plain_tail(&mut w, width_mbs, height_units, frame_mbs_only, crop);
        w.sps_nal()
    }

    #[test]
    fn picture_size_limits_name_the_field() {
        let sps = Sps::parse(&baseline(1024, 1024, true, None)).unwrap();
        assert_eq!((sps.width, sps.height), (MAX_PICTURE_SIDE, MAX_PICTURE_SIDE));
        assert_eq!(
            Sps::parse(&baseline(1025, 1, true, None)),
            Err(CodecError::Limit {
                field: "pic_width_in_mbs_minus1",
                count: 1024,
                max: 1023
            })
        );
        assert_eq!(
            Sps::parse(&baseline(1, 1025, true, None)),
            Err(CodecError::Limit {
                field: "pic_height_in_map_units_minus1",
                count: 1024,
                max: 1023
            })
        );
        // Interlaced: map units are MB pairs, so half as many.
        let sps = Sps::parse(&baseline(1, 512, false, None)).unwrap();
        assert_eq!(sps.height, MAX_PICTURE_SIDE);
        assert_eq!(
            Sps::parse(&baseline(1, 513, false, None)),
            Err(CodecError::Limit {
                field: "pic_height_in_map_units_minus1",
                count: 512,
                max: 511
            })
        );
        // The largest ue(v) does not overflow anything.
        let mut w = W::default();
        baseline_head(&mut w, 0);
        w.ue(0)
            .ue(2)
            .ue(1)
            .flag(false)
            .ue(u64::from(u32::MAX) - 1)
            .ue(0)
            .flag(true);
        assert!(matches!(
            Sps::parse(&w.sps_nal()),
            Err(CodecError::Limit {
                field: "pic_width_in_mbs_minus1",
                ..
            })
        ));
    }

    #[test]
    fn cropping_units_follow_chroma_format_and_field_coding() {
        // 4:2:0 progressive: 2x2 units; interlaced: 2x4.
        let sps = Sps::parse(&baseline(2, 2, true, Some([1, 2, 3, 4]))).unwrap();
        assert_eq!((sps.width, sps.height), (32 - 6, 32 - 14));
        let sps = Sps::parse(&baseline(2, 2, false, Some([1, 2, 1, 2]))).unwrap();
        assert_eq!((sps.coded_height(), sps.width, sps.height), (64, 32 - 6, 64 - 12));
        // Cropping everything is refused, naming the field.
        let err = Sps::parse(&baseline(2, 2, true, Some([8, 8, 0, 0]))).unwrap_err();
        assert!(
            matches!(
                err,
                CodecError::Malformed {
                    field: "frame_crop_right_offset",
                    ..
                }
            ),
            "{err}"
        );
        let err = Sps::parse(&baseline(2, 2, true, Some([0, 0, 7, 9]))).unwrap_err();
        assert!(
            matches!(
                err,
                CodecError::Malformed {
                    field: "frame_crop_bottom_offset",
                    ..
                }
            ),
            "{err}"
        );
        let huge = u64::from(u32::MAX) - 1;
        assert!(Sps::parse(&baseline(2, 2, true, Some([huge, huge, huge, huge]))).is_err());
    }

    #[test]
    fn header_id_and_trailing_bits_are_checked() {
        assert!(matches!(
            Sps::parse(&[]),
            Err(CodecError::Truncated {
                field: "nal_unit_header",
                ..
            })
        ));
        let mut nal = x264::HIGH_854X480.to_vec();
        nal[0] = 0x68;
        assert!(matches!(
            Sps::parse(&nal),
            Err(CodecError::Malformed {
                field: "nal_unit_type",
                offset: 0,
                ..
            })
        ));
        nal[0] = 0xe7;
        assert!(matches!(
            Sps::parse(&nal),
            Err(CodecError::Malformed {
                field: "forbidden_zero_bit",
                ..
            })
        ));
        // nal_ref_idc 0 is still an SPS.
        nal[0] = 0x07;
        assert!(Sps::parse(&nal).is_ok());

        let mut w = W::default();
        baseline_head(&mut w, 31);
        plain_tail(&mut w, 20, 15, true, None);
        assert_eq!(Sps::parse(&w.sps_nal()).unwrap().seq_parameter_set_id, 31);
        w.flag(false); // a 0 where the stop bit belongs
        assert!(matches!(
            Sps::parse(&w.sps_nal()),
            Err(CodecError::Malformed {
                field: "rbsp_stop_one_bit",
                ..
            })
        ));
    }

    #[test]
    fn error_offsets_count_emulation_prevention_bytes() {
        // profile 66, no flags, level 0, then seq_parameter_set_id with six leading zeros
        // (63 or more): the RBSP byte 02 follows 00 00, so the NAL unit carries 00 00 03 02.
        let mut w = W::default();
        w.u(8, 66).u(8, 0).u(8, 0).ue(70);
        let nal = w.sps_nal();
        assert_eq!(&nal[..6], &[0x67, 0x42, 0, 0, 3, 2]);
        assert!(matches!(
            Sps::parse(&nal),
            Err(CodecError::Malformed {
                field: "seq_parameter_set_id",
                offset: 5,
                ..
            })
        ));
    }

    #[test]
    fn flipping_any_bit_of_a_real_sps_never_panics() {
        for &nal in x264::ALL {
            for bit in 0..nal.len() * 8 {
                let mut bad = nal.to_vec();
                bad[bit / 8] ^= 0x80 >> (bit % 8);
                if let Ok(sps) = Sps::parse(&bad) {
                    assert!(sps.width <= MAX_PICTURE_SIDE && sps.height <= MAX_PICTURE_SIDE);
                    assert!(sps.width > 0 && sps.height > 0);
                }
            }
        }
    }

    #[test]
    fn reordering_is_inferred_without_bitstream_restriction() {
        // POC type 2 (plain_tail): output order is decoding order.
        assert_eq!(
            Sps::parse(&baseline(20, 15, true, None))
                .unwrap()
                .max_num_reorder_frames(),
            0
        );
        // High 10 Intra (110 with constraint_set3) infers 0; High infers MaxDpbFrames.
        for (constraints, want) in [(0x10, 0), (0x00, 13)] {
            let mut w = W::default();
            w.u(8, 110).u(8, constraints).u(8, 40).ue(0);
            w.ue(1).ue(2).ue(2).flag(false).flag(false);
            // POC type 0, 1920x1088: level 4.0 holds 32768 / 8160 = 4 frames.
            w.ue(0).ue(0).ue(2).ue(4).flag(false);
            w.ue(119).ue(67).flag(true).flag(true).flag(false).flag(false);
            let sps = Sps::parse(&w.sps_nal()).unwrap();
            assert_eq!(sps.max_dpb_frames(), 4);
            assert_eq!(
                sps.max_num_reorder_frames(),
                want.min(4),
                "constraints {constraints:#x}"
            );
        }
    }
}

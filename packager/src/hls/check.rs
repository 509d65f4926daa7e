//! An independent LL-HLS playlist checker that tests hold generated Media and Multivariant Playlists to.
//!
//! Written from the spec, not from our generator: draft-pantos-hls-rfc8216bis-22 ("HTTP Live
//! Streaming 2nd Edition", protocol version 13; section numbers below are that draft's) and the
//! Low-Latency Server Configuration Profile in its Appendix B.1, plus Apple's recommendation of a
//! PART-HOLD-BACK of three Part Target Durations. Every finding is a [`Violation`] naming a stable
//! rule id (see [`rules`]), the 1-based line and a human detail. Rules that are a SHOULD, or a
//! stricter reading than the spec's MUST, have ids of their own so a test can filter them out.
//!
//! Entry points:
//! - [`check_media`] / [`inspect_media`]: one Media Playlist;
//! - [`check_multivariant`] / [`inspect_multivariant`]: one Multivariant Playlist;
//! - [`check_reload`]: two successive versions of one Media Playlist;
//! - [`check_delta`]: a Playlist Delta Update (EXT-X-SKIP) against a full version;
//! - [`attributes`]: the §4.2 attribute-list grammar on its own.
//!
//! # Version rules applied (§8)
//! EXT-X-VERSION must be present when any feature below is used and at least: 2 for the IV
//! attribute of EXT-X-KEY; 3 for a decimal-floating-point EXTINF; 4 for EXT-X-BYTERANGE or
//! EXT-X-I-FRAMES-ONLY; 5 for METHOD=SAMPLE-AES, KEYFORMAT or KEYFORMATVERSIONS, and EXT-X-MAP in
//! an I-frame playlist; 6 for EXT-X-MAP otherwise; 7 for INSTREAM-ID="SERVICEn"; 8 for EXT-X-DEFINE;
//! 9 for EXT-X-SKIP; 10 for EXT-X-SKIP with RECENTLY-REMOVED-DATERANGES; 11 for EXT-X-DEFINE with
//! QUERYPARAM; 12 for any attribute named REQ-*; 13 for INSTREAM-ID on a non-CLOSED-CAPTIONS
//! EXT-X-MEDIA. The draft sets no version floor for EXT-X-PART, EXT-X-PART-INF,
//! EXT-X-SERVER-CONTROL, EXT-X-PRELOAD-HINT or EXT-X-RENDITION-REPORT (Apple's own LL-HLS example
//! declares version 6), so none is applied to them.
//!
//! # Tolerances
//! - Sums of durations (parts against their EXTINF) are compared within the rounding of the
//!   printed values: half a unit in the last printed decimal of each value, plus [`EPSILON`].
//! - Hold-back comparisons allow [`HOLD_BACK_TOLERANCE`] (Apple's example writes PART-HOLD-BACK=1.0
//!   for three 0.33334 s parts).
//! - EXT-X-PROGRAM-DATE-TIME may differ from the EXTINF timeline by less than
//!   [`PROGRAM_DATE_TIME_TOLERANCE`] (the draft allows sub-second overlaps for clock drift).
//! - Part DURATION against PART-TARGET and the 85 % floor are exact up to [`EPSILON`].
//!
//! # Readings of the draft where it is loose
//! - EXT-X-ENDLIST "MAY occur anywhere" (§4.4.3.4), so segment lines after it are not an error;
//!   what is checked is that an ended playlist has no in-progress (parts-only) segment and no
//!   preload hint, and that a reload of an ended playlist adds nothing.
//! - Part timing: the parts of a complete segment are placed so that the last one ends where
//!   the segment ends (older parts may already have been removed, §6.2.2); a part is "more than
//!   three Target Durations from the end" when its end is.
//! - The last listed part of the in-progress segment may turn out to be its final one, so it is
//!   exempt from the 85 % floor. The first segment that still lists parts may have lost its
//!   oldest ones, so its parts may add up to less than its EXTINF (never more).
//! - The draft sets no minimum for how many parts a playlist keeps. `part-coverage` asks that
//!   the listed parts reach back at least PART-HOLD-BACK from the end, where a low-latency client
//!   starts; without that it cannot address its start position by parts.
//! - A Playlist Delta Update skips "Media Segments that are further from the end of the last
//!   (Parent) Media Segment than the Skip Boundary" (§6.2.5.1): read as segments whose end is at
//!   least CAN-SKIP-UNTIL from that end (within [`HOLD_BACK_TOLERANCE`]), which is what Apple's
//!   delta example does. [`check_delta`] takes the full playlist to be from the same moment as
//!   the update or earlier, as a client's is.
//! - EXT-X-RENDITION-REPORT may omit LAST-MSN and LAST-PART when they equal this playlist's own
//!   (§4.4.5.4); omission is reported as the separate `rendition-report-omitted`.
//! - An EXT-X-PRELOAD-HINT with an unknown TYPE is ignored, as clients must (§6.3.8).
//! - EXT-X-PROGRAM-DATE-TIME must carry seconds and a time zone (`Z` or `±hh[:mm]`); the draft
//!   only says it SHOULD carry a time zone. A forward jump of a second or more without an
//!   EXT-X-DISCONTINUITY is reported (`program-date-time-jump`); the draft forbids only dates
//!   that make the mapping ambiguous (`program-date-time-overlap`).
//! - On reload a segment may gain an EXT-X-PROGRAM-DATE-TIME (servers date the new first
//!   segment after removing the dated one) if it agrees with the date the earlier version
//!   implied; two written dates must match to the millisecond.
//! - Appendix B.1 (the Low-Latency profile) is applied to every playlist with parts:
//!   `preload-hint-required` and `program-date-time-required`.
//! - Stricter than the draft, each with its own id: CODECS required on every variant and each
//!   entry a sample entry HLS carries (`codecs`); RESOLUTION on video variants (`resolution`);
//!   an own URI for every audio Rendition (`media-audio-uri`); EXT-X-INDEPENDENT-SEGMENTS in the
//!   Multivariant Playlist (`independent-segments`).
//!
//! # Example
//! ```
//! use popcast_packager::hls::check::{self, rules};
//!
//! let playlist = "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-TARGETDURATION:1\n\
//!     #EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=0.4\n\
//!     #EXT-X-PART-INF:PART-TARGET=0.2\n#EXT-X-MAP:URI=\"init.mp4\"\n\
//!     #EXT-X-PROGRAM-DATE-TIME:2026-05-01T10:00:00.000Z\n\
//!     #EXT-X-PART:DURATION=0.2,URI=\"0.0.m4s\",INDEPENDENT=YES\n\
//!     #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"0.1.m4s\"\n";
//! // PART-HOLD-BACK is twice PART-TARGET: the draft's MUST holds, Apple's three times does not.
//! let violations = check::check_media(playlist).unwrap_err();
//! assert_eq!(check::report(&violations).lines().count(), 1);
//! assert_eq!(violations[0].rule, rules::PART_HOLD_BACK_3X);
//! assert_eq!(violations[0].line, 4);
//!
//! // A test that accepts the SHOULD filters it out and keeps the model.
//! let (model, violations) = check::inspect_media(playlist);
//! assert!(violations.iter().all(|v| v.rule == rules::PART_HOLD_BACK_3X));
//! assert_eq!(model.in_progress().map(|s| s.parts.len()), Some(1));
//! ```

mod attributes;
mod codecs;
mod compare;
mod datetime;
#[cfg(test)]
mod fixtures;
mod lines;
mod media;
mod multivariant;
mod tags;

use std::fmt;

pub use attributes::{AttrValue, attributes};
pub use compare::{check_delta, check_reload};
pub use media::{check_media, inspect_media};
pub use multivariant::{check_multivariant, inspect_multivariant};

/// Playlists larger than this are refused with the `limit` rule: a live LL-HLS playlist is a few
/// kilobytes and a ten-hour VOD one under a megabyte.
pub const MAX_PLAYLIST_BYTES: usize = 16 << 20;

/// Slack for comparisons of computed seconds that the draft states exactly (part against
/// PART-TARGET, the 85 % floor): absorbs binary floating point, nothing more.
pub const EPSILON: f64 = 1e-9;

/// Slack for HOLD-BACK, PART-HOLD-BACK and CAN-SKIP-UNTIL against multiples of the targets, and
/// for the Skip Boundary: one millisecond, below any player's timing resolution.
pub const HOLD_BACK_TOLERANCE: f64 = 0.001;

/// How far an EXT-X-PROGRAM-DATE-TIME may sit from the date implied by the previous one plus the
/// EXTINF durations between them (the draft allows "small (sub-second) overlaps").
pub const PROGRAM_DATE_TIME_TOLERANCE: f64 = 1.0;

/// One broken rule: where, which, and what exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// 1-based line in the playlist checked (for [`check_reload`] and [`check_delta`], the later
    /// or delta playlist); rules about the playlist as a whole point at line 1.
    pub line: usize,
    /// A stable id from [`rules`].
    pub rule: &'static str,
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: [{}] {}", self.line, self.rule, self.detail)
    }
}

/// One line per violation, for assertion messages.
pub fn report(violations: &[Violation]) -> String {
    violations.iter().map(|v| format!("{v}\n")).collect()
}

/// The rule ids. Each is a short stable string; tests match on these constants.
pub mod rules {
    // Every playlist.
    /// §4.4.1.1: `#EXTM3U` is the first line, and only there.
    pub const EXTM3U: &str = "extm3u";
    /// §4.1: no byte order mark.
    pub const BOM: &str = "bom";
    /// §4.1: no control characters other than the CR LF line ends (a tab only inside a
    /// quoted-string, where RECENTLY-REMOVED-DATERANGES needs it).
    pub const CONTROL_CHARACTER: &str = "control-character";
    /// §4.1: no whitespace around a line (an EXTINF title may end in spaces).
    pub const WHITESPACE: &str = "whitespace";
    /// The playlist is larger than [`super::MAX_PLAYLIST_BYTES`].
    pub const LIMIT: &str = "limit";
    /// §4.1, §4.4.4, §4.4.6: Media and Multivariant Playlist tags do not mix.
    pub const PLAYLIST_KIND: &str = "playlist-kind";
    /// §4.2: the attribute-list does not follow the grammar.
    pub const ATTRIBUTE_SYNTAX: &str = "attribute-syntax";
    /// §4.2: an AttributeName appears twice in one attribute-list.
    pub const DUPLICATE_ATTRIBUTE: &str = "duplicate-attribute";
    /// §4.4.1.2, §4.4.2, §4.4.3: a tag that may appear once appears again.
    pub const DUPLICATE_TAG: &str = "duplicate-tag";
    /// A known tag whose value has the wrong form, for tags without a rule of their own
    /// (EXT-X-START, EXT-X-DEFINE, EXT-X-PLAYLIST-TYPE, EXT-X-BITRATE, EXT-X-SESSION-DATA, ...).
    pub const MALFORMED_TAG: &str = "malformed-tag";
    /// §4.4.1.2, §8: EXT-X-VERSION present, well formed and high enough for the features used.
    pub const VERSION: &str = "version";

    // Media Playlists.
    /// §4.4.3.1: EXT-X-TARGETDURATION present, a decimal-integer of at least 1.
    pub const TARGET_DURATION: &str = "target-duration";
    /// §4.4.3.1: every EXTINF, rounded to the nearest integer, is at most the Target Duration.
    pub const SEGMENT_DURATION: &str = "segment-duration";
    /// §4.4.4.1: EXTINF well formed, one per segment, followed by its URI line.
    pub const EXTINF: &str = "extinf";
    /// §4.4.4.2: EXT-X-BYTERANGE well formed; without an offset it continues the previous segment.
    pub const BYTERANGE: &str = "byterange";
    /// §4.4.3.2: EXT-X-MEDIA-SEQUENCE a decimal-integer, before the first segment.
    pub const MEDIA_SEQUENCE: &str = "media-sequence";
    /// §4.4.3.3: EXT-X-DISCONTINUITY-SEQUENCE a decimal-integer, before the first segment and
    /// the first EXT-X-DISCONTINUITY.
    pub const DISCONTINUITY_SEQUENCE: &str = "discontinuity-sequence";
    /// §4.4.3.4, §4.4.5.3: an ended playlist has no in-progress segment.
    pub const ENDLIST: &str = "endlist";
    /// §4.4.4.4: EXT-X-KEY attributes.
    pub const KEY: &str = "key";
    /// §4.4.4.5: EXT-X-MAP attributes.
    pub const MAP: &str = "map";
    /// §4.4.4.6: EXT-X-PROGRAM-DATE-TIME is an ISO 8601 date-time with seconds and time zone.
    pub const PROGRAM_DATE_TIME: &str = "program-date-time";
    /// §6.2.1: a later date may overlap the previous segment only partially and by under a
    /// second, or the date-to-segment mapping becomes ambiguous.
    pub const PROGRAM_DATE_TIME_OVERLAP: &str = "program-date-time-overlap";
    /// Without an EXT-X-DISCONTINUITY between them, successive dates agree with the EXTINF
    /// durations within [`super::PROGRAM_DATE_TIME_TOLERANCE`].
    pub const PROGRAM_DATE_TIME_JUMP: &str = "program-date-time-jump";
    /// Appendix B.1: a playlist with parts (a low-latency one) has EXT-X-PROGRAM-DATE-TIME.
    pub const PROGRAM_DATE_TIME_REQUIRED: &str = "program-date-time-required";
    /// §4.4.5.1: EXT-X-DATERANGE attributes, and a playlist with one has a program date.
    pub const DATERANGE: &str = "daterange";
    /// §4.4.3.7: EXT-X-PART-INF with PART-TARGET is present when any EXT-X-PART is.
    pub const PART_INF: &str = "part-inf";
    /// §4.4.4.9: EXT-X-PART attributes (URI, DURATION, INDEPENDENT=YES, GAP=YES, BYTERANGE).
    pub const PART_ATTRIBUTES: &str = "part-attributes";
    /// §4.4.4.9: a part's DURATION is at most PART-TARGET.
    pub const PART_DURATION: &str = "part-duration";
    /// §4.4.4.9: a part's DURATION is at least 85 % of PART-TARGET unless it is INDEPENDENT=YES,
    /// GAP=YES, followed by a GAP=YES part, or the final part of its segment.
    pub const PART_DURATION_MIN: &str = "part-duration-min";
    /// §3.2: a segment's parts add up to its EXTINF.
    pub const PART_SUM: &str = "part-sum";
    /// §4.4.4.9: EXT-X-DISCONTINUITY, EXT-X-KEY, EXT-X-MAP and EXT-X-PROGRAM-DATE-TIME of a
    /// segment come before its first part; the EXTINF that ends a segment comes after its parts.
    pub const PART_TAG_ORDER: &str = "part-tag-order";
    /// §6.2.2: parts are removed oldest first, so once a segment lists parts every later one does.
    pub const PART_WINDOW: &str = "part-window";
    /// §6.2.2 (SHOULD): parts more than three Target Durations from the end are removed.
    pub const PART_STALE: &str = "part-stale";
    /// Derived: in a live playlist the listed parts reach back at least PART-HOLD-BACK from the end.
    pub const PART_COVERAGE: &str = "part-coverage";
    /// §4.4.3.8: EXT-X-SERVER-CONTROL attributes.
    pub const SERVER_CONTROL: &str = "server-control";
    /// §4.4.3.8: PART-HOLD-BACK present when EXT-X-PART-INF is, and at least twice PART-TARGET.
    pub const PART_HOLD_BACK: &str = "part-hold-back";
    /// §4.4.3.8 (SHOULD) and Apple: PART-HOLD-BACK at least three times PART-TARGET.
    pub const PART_HOLD_BACK_3X: &str = "part-hold-back-3x";
    /// §4.4.3.8: HOLD-BACK at least three times the Target Duration.
    pub const HOLD_BACK: &str = "hold-back";
    /// §4.4.3.8: CAN-SKIP-UNTIL at least six times the Target Duration.
    pub const CAN_SKIP_UNTIL: &str = "can-skip-until";
    /// §4.4.5.2, §6.2.5.1: EXT-X-SKIP well formed, once, before every segment, only with
    /// CAN-SKIP-UNTIL and never with EXT-X-ENDLIST.
    pub const SKIP: &str = "skip";
    /// §6.2.5.1: a delta update skips exactly the segments beyond the Skip Boundary.
    pub const SKIP_BOUNDARY: &str = "skip-boundary";
    /// §4.4.5.3, §6.2.6: EXT-X-PRELOAD-HINT attributes, one per TYPE, after the last part, not in
    /// an ended playlist, not naming a part already listed.
    pub const PRELOAD_HINT: &str = "preload-hint";
    /// Appendix B.1: a live playlist with parts hints the next part.
    pub const PRELOAD_HINT_REQUIRED: &str = "preload-hint-required";
    /// §4.4.5.4: EXT-X-RENDITION-REPORT has a relative URI and integer LAST-MSN / LAST-PART.
    pub const RENDITION_REPORT: &str = "rendition-report";
    /// §4.4.5.4 allows leaving out LAST-MSN / LAST-PART equal to this playlist's own; stricter
    /// players (hls.js) need them, so their absence is reported under this id.
    pub const RENDITION_REPORT_OMITTED: &str = "rendition-report-omitted";

    // Multivariant Playlists.
    /// §4.4.6.2, §4.4.6.3: EXT-X-STREAM-INF / EXT-X-I-FRAME-STREAM-INF attributes, BANDWIDTH
    /// required, at least one variant.
    pub const STREAM_INF: &str = "stream-inf";
    /// §4.4.6.2: a URI line follows each EXT-X-STREAM-INF, and only there.
    pub const STREAM_INF_URI: &str = "stream-inf-uri";
    /// AVERAGE-BANDWIDTH is at most BANDWIDTH (an average cannot exceed the peak).
    pub const AVERAGE_BANDWIDTH: &str = "average-bandwidth";
    /// §4.4.6.2, RFC 6381: CODECS present, each entry well formed, an audio codec listed when
    /// an AUDIO group is used.
    pub const CODECS: &str = "codecs";
    /// §4.4.6.2 (recommended, required here): a video variant has RESOLUTION.
    pub const RESOLUTION: &str = "resolution";
    /// §4.4.6.2: FRAME-RATE is a decimal-floating-point rounded to three decimal places.
    pub const FRAME_RATE: &str = "frame-rate";
    /// §4.4.6.1, §4.4.6.1.1: EXT-X-MEDIA attributes and Rendition Group constraints.
    pub const MEDIA: &str = "media";
    /// §4.4.6.2: AUDIO / VIDEO / SUBTITLES / CLOSED-CAPTIONS name an EXT-X-MEDIA group of that TYPE.
    pub const MEDIA_GROUP: &str = "media-group";
    /// Stricter than §4.4.6.2.1: every audio Rendition has its own URI (no audio muxed into video).
    pub const MEDIA_AUDIO_URI: &str = "media-audio-uri";
    /// Apple: a Multivariant Playlist carries EXT-X-INDEPENDENT-SEGMENTS.
    pub const INDEPENDENT_SEGMENTS: &str = "independent-segments";

    // Successive reloads (check_reload).
    /// §6.2.1: EXT-X-TARGETDURATION never changes.
    pub const RELOAD_TARGET_DURATION: &str = "reload-target-duration";
    /// §6.2.2: EXT-X-MEDIA-SEQUENCE never decreases.
    pub const RELOAD_MEDIA_SEQUENCE: &str = "reload-media-sequence";
    /// §6.2.2: EXT-X-DISCONTINUITY-SEQUENCE never decreases and every segment keeps its
    /// Discontinuity Sequence Number.
    pub const RELOAD_DISCONTINUITY: &str = "reload-discontinuity";
    /// §6.2.1: a segment present in both has the same URI, duration, byte range, gap and dates.
    pub const RELOAD_HISTORY: &str = "reload-history";
    /// The later playlist does not end before the earlier one (segments and parts only grow).
    pub const RELOAD_BACKWARDS: &str = "reload-backwards";
    /// Parts of a segment are only appended, or removed from the front, never changed.
    pub const RELOAD_PARTS: &str = "reload-parts";
    /// §6.2.1: after EXT-X-ENDLIST nothing is added.
    pub const RELOAD_ENDED: &str = "reload-ended";
    /// §6.2.2: removing segments never leaves a live playlist shorter than three Target Durations.
    pub const RELOAD_WINDOW: &str = "reload-window";

    // Playlist Delta Updates (check_delta).
    /// §6.2.5.1: the update has EXT-X-SKIP, the full playlist advertises CAN-SKIP-UNTIL, is not
    /// itself a delta and has no EXT-X-ENDLIST.
    pub const DELTA_SKIP: &str = "delta-skip";
    /// §6.3.7: the skipped segments are all in the full playlist, so a client can merge.
    pub const DELTA_MERGE: &str = "delta-merge";
    /// §6.2.5.1: what both show agrees (segments, parts, targets, server control, and at the
    /// same moment the preload hint and rendition reports).
    pub const DELTA_MISMATCH: &str = "delta-mismatch";
    /// §4.4.5.2: skipping segments does not change EXT-X-DISCONTINUITY-SEQUENCE.
    pub const DELTA_DISCONTINUITY: &str = "delta-discontinuity";

    /// Every id above, so a test can pin them.
    pub const ALL: &[&str] = &[
        EXTM3U,
        BOM,
        CONTROL_CHARACTER,
        WHITESPACE,
        LIMIT,
        PLAYLIST_KIND,
        ATTRIBUTE_SYNTAX,
        DUPLICATE_ATTRIBUTE,
        DUPLICATE_TAG,
        MALFORMED_TAG,
        VERSION,
        TARGET_DURATION,
        SEGMENT_DURATION,
        EXTINF,
        BYTERANGE,
        MEDIA_SEQUENCE,
        DISCONTINUITY_SEQUENCE,
        ENDLIST,
        KEY,
        MAP,
        PROGRAM_DATE_TIME,
        PROGRAM_DATE_TIME_OVERLAP,
        PROGRAM_DATE_TIME_JUMP,
        PROGRAM_DATE_TIME_REQUIRED,
        DATERANGE,
        PART_INF,
        PART_ATTRIBUTES,
        PART_DURATION,
        PART_DURATION_MIN,
        PART_SUM,
        PART_TAG_ORDER,
        PART_WINDOW,
        PART_STALE,
        PART_COVERAGE,
        SERVER_CONTROL,
        PART_HOLD_BACK,
        PART_HOLD_BACK_3X,
        HOLD_BACK,
        CAN_SKIP_UNTIL,
        SKIP,
        SKIP_BOUNDARY,
        PRELOAD_HINT,
        PRELOAD_HINT_REQUIRED,
        RENDITION_REPORT,
        RENDITION_REPORT_OMITTED,
        STREAM_INF,
        STREAM_INF_URI,
        AVERAGE_BANDWIDTH,
        CODECS,
        RESOLUTION,
        FRAME_RATE,
        MEDIA,
        MEDIA_GROUP,
        MEDIA_AUDIO_URI,
        INDEPENDENT_SEGMENTS,
        RELOAD_TARGET_DURATION,
        RELOAD_MEDIA_SEQUENCE,
        RELOAD_DISCONTINUITY,
        RELOAD_HISTORY,
        RELOAD_BACKWARDS,
        RELOAD_PARTS,
        RELOAD_ENDED,
        RELOAD_WINDOW,
        DELTA_SKIP,
        DELTA_MERGE,
        DELTA_MISMATCH,
        DELTA_DISCONTINUITY,
    ];
}

/// A Media Playlist as the checker understood it. From [`inspect_media`] it is a best effort
/// even when there are violations (absent values take the draft's defaults).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MediaPlaylist {
    /// EXT-X-VERSION, or 1 when absent.
    pub version: u32,
    /// EXT-X-TARGETDURATION, or 0 when absent.
    pub target_duration: u64,
    /// PART-TARGET of EXT-X-PART-INF.
    pub part_target: Option<f64>,
    /// EXT-X-MEDIA-SEQUENCE, or 0.
    pub media_sequence: u64,
    /// EXT-X-DISCONTINUITY-SEQUENCE, or 0.
    pub discontinuity_sequence: u64,
    pub playlist_type: Option<PlaylistType>,
    pub independent_segments: bool,
    pub i_frames_only: bool,
    pub server_control: Option<ServerControl>,
    /// True when the playlist has EXT-X-SKIP (a Playlist Delta Update).
    pub delta_update: bool,
    /// SKIPPED-SEGMENTS of EXT-X-SKIP, or 0.
    pub skipped_segments: u64,
    /// RECENTLY-REMOVED-DATERANGES of EXT-X-SKIP, split at tabs.
    pub recently_removed_dateranges: Option<Vec<String>>,
    /// The listed segments in order; the last may be the in-progress one (no URI, only parts).
    pub segments: Vec<Segment>,
    /// The EXT-X-PRELOAD-HINT with TYPE=PART.
    pub preload_hint: Option<PreloadHint>,
    /// The EXT-X-PRELOAD-HINT with TYPE=MAP.
    pub preload_map_hint: Option<PreloadHint>,
    pub rendition_reports: Vec<RenditionReport>,
    /// EXT-X-ENDLIST is present.
    pub ended: bool,
}

impl MediaPlaylist {
    /// The segment with this Media Sequence Number, if listed.
    pub fn segment(&self, msn: u64) -> Option<&Segment> {
        let first = self.segments.first()?.msn;
        let index = usize::try_from(msn.checked_sub(first)?).ok()?;
        self.segments.get(index).filter(|s| s.msn == msn)
    }

    /// The in-progress segment (listed only as parts), if any.
    pub fn in_progress(&self) -> Option<&Segment> {
        self.segments.last().filter(|s| s.uri.is_none())
    }

    /// Complete segments (those with a URI line).
    pub fn complete_segments(&self) -> impl Iterator<Item = &Segment> {
        self.segments.iter().filter(|s| s.uri.is_some())
    }
}

/// EXT-X-PLAYLIST-TYPE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaylistType {
    Event,
    Vod,
}

/// EXT-X-SERVER-CONTROL.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ServerControl {
    pub can_skip_until: Option<f64>,
    pub can_skip_dateranges: bool,
    pub hold_back: Option<f64>,
    pub part_hold_back: Option<f64>,
    pub can_block_reload: bool,
}

/// A Media Segment, or the in-progress segment that so far exists only as parts.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    /// Media Sequence Number.
    pub msn: u64,
    /// Line of the URI, or of the first part for the in-progress segment.
    pub line: usize,
    /// EXTINF, or the sum of the parts for the in-progress segment.
    pub duration: f64,
    /// None for the trailing parts-only in-progress segment.
    pub uri: Option<String>,
    pub byterange: Option<ByteRange>,
    /// An EXT-X-DISCONTINUITY applies to this segment.
    pub discontinuity: bool,
    /// EXT-X-DISCONTINUITY-SEQUENCE plus the EXT-X-DISCONTINUITY tags up to this segment. In a
    /// delta update only the discontinuities still listed are counted.
    pub discontinuity_sequence: u64,
    /// EXT-X-PROGRAM-DATE-TIME as written.
    pub program_date_time: Option<String>,
    /// EXT-X-GAP applies.
    pub gap: bool,
    /// The listed parts (older ones may have been removed).
    pub parts: Vec<Part>,
}

/// An EXT-X-PART.
#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    pub line: usize,
    pub duration: f64,
    pub uri: String,
    pub independent: bool,
    pub gap: bool,
    pub byterange: Option<ByteRange>,
}

/// `<n>[@<o>]` of EXT-X-BYTERANGE or a part's BYTERANGE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub length: u64,
    pub offset: Option<u64>,
}

/// An EXT-X-PRELOAD-HINT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreloadHint {
    pub line: usize,
    pub uri: String,
    pub byterange_start: Option<u64>,
    pub byterange_length: Option<u64>,
}

/// An EXT-X-RENDITION-REPORT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenditionReport {
    pub line: usize,
    pub uri: String,
    pub last_msn: Option<u64>,
    pub last_part: Option<u64>,
}

/// A Multivariant Playlist as the checker understood it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Multivariant {
    /// EXT-X-VERSION, or 1 when absent.
    pub version: u32,
    pub independent_segments: bool,
    /// EXT-X-STREAM-INF with their URI lines.
    pub variants: Vec<Variant>,
    /// EXT-X-I-FRAME-STREAM-INF (URI from the attribute).
    pub i_frame_variants: Vec<Variant>,
    /// EXT-X-MEDIA.
    pub renditions: Vec<Rendition>,
}

/// An EXT-X-STREAM-INF (or EXT-X-I-FRAME-STREAM-INF).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Variant {
    pub line: usize,
    pub uri: String,
    pub bandwidth: u64,
    pub average_bandwidth: Option<u64>,
    /// CODECS split at commas.
    pub codecs: Vec<String>,
    pub resolution: Option<(u64, u64)>,
    pub frame_rate: Option<f64>,
    pub audio: Option<String>,
    pub video: Option<String>,
    pub subtitles: Option<String>,
    /// A group id, or `NONE`.
    pub closed_captions: Option<String>,
}

/// An EXT-X-MEDIA.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendition {
    pub line: usize,
    pub media_type: MediaType,
    pub group_id: String,
    pub name: String,
    pub uri: Option<String>,
    pub language: Option<String>,
    pub default: bool,
    pub autoselect: bool,
    pub channels: Option<String>,
}

/// TYPE of EXT-X-MEDIA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaType {
    Audio,
    Video,
    Subtitles,
    ClosedCaptions,
}

impl MediaType {
    fn name(self) -> &'static str {
        match self {
            MediaType::Audio => "AUDIO",
            MediaType::Video => "VIDEO",
            MediaType::Subtitles => "SUBTITLES",
            MediaType::ClosedCaptions => "CLOSED-CAPTIONS",
        }
    }
}

/// Collects violations in order; the checks push, the entry points sort by line.
#[derive(Debug, Default)]
struct Findings(Vec<Violation>);

impl Findings {
    fn push(&mut self, line: usize, rule: &'static str, detail: impl Into<String>) {
        self.0.push(Violation {
            line: line.max(1),
            rule,
            detail: detail.into(),
        });
    }

    fn into_sorted(mut self) -> Vec<Violation> {
        self.0.sort_by_key(|v| v.line);
        self.0
    }
}

/// A decimal-integer (§4.2): 1–20 digits, at most 2^64−1.
fn decimal_integer(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// A decimal-floating-point (§4.2) with the rounding of its printed form: half a unit in its
/// last decimal place.
fn decimal_float(s: &str) -> Option<(f64, f64)> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if int.len() + frac.len() == 0 || !digits(int) || !digits(frac) {
        return None;
    }
    let value: f64 = s.parse().ok()?;
    let decimals = i32::try_from(frac.len()).unwrap_or(i32::MAX);
    Some((value, 0.5 * 10f64.powi(-decimals)))
}

/// `<n>[@<o>]` (§4.4.4.2).
fn byte_range(s: &str) -> Option<ByteRange> {
    let (length, offset) = match s.split_once('@') {
        Some((n, o)) => (decimal_integer(n)?, Some(decimal_integer(o)?)),
        None => (decimal_integer(s)?, None),
    };
    Some(ByteRange { length, offset })
}

/// Seconds, printed briefly.
fn secs(v: f64) -> String {
    let s = format!("{v:.6}");
    let s = s.trim_end_matches('0');
    s.strip_suffix('.').unwrap_or(s).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_ids_are_stable_and_unique() {
        // Tests in other crates match on these strings: renaming one is a breaking change.
        let mut seen = std::collections::HashSet::new();
        for id in rules::ALL {
            assert!(seen.insert(*id), "{id} twice");
            assert!(
                id.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
                "{id}"
            );
        }
        assert_eq!(rules::PART_HOLD_BACK, "part-hold-back");
        assert_eq!(rules::PART_HOLD_BACK_3X, "part-hold-back-3x");
        assert_eq!(rules::ALL.len(), 67);
    }

    #[test]
    fn number_grammar() {
        assert_eq!(decimal_integer("18446744073709551615"), Some(u64::MAX));
        assert_eq!(decimal_integer("18446744073709551616"), None);
        assert_eq!(decimal_integer("4.0"), None);
        assert_eq!(decimal_integer(""), None);
        assert_eq!(decimal_float("4.00008"), Some((4.00008, 0.000005)));
        assert_eq!(decimal_float("4"), Some((4.0, 0.5)));
        assert_eq!(decimal_float("-1.0"), None);
        assert_eq!(decimal_float("1e3"), None);
        assert_eq!(decimal_float("."), None);
        assert_eq!(
            byte_range("20000@0"),
            Some(ByteRange {
                length: 20000,
                offset: Some(0)
            })
        );
        assert_eq!(byte_range("@0"), None);
        assert_eq!(secs(1.5), "1.5");
        assert_eq!(secs(2.0), "2");
    }

    #[test]
    fn violations_print_rule_and_line() {
        let v = Violation {
            line: 7,
            rule: rules::PART_DURATION,
            detail: "too long".into(),
        };
        assert_eq!(v.to_string(), "line 7: [part-duration] too long");
        assert_eq!(report(&[v]), "line 7: [part-duration] too long\n");
    }
}

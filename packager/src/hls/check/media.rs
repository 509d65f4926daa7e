//! Media Playlist checks: one pass over the lines builds the model and checks each tag, then the
//! whole-playlist rules (durations, parts, hold-backs, hints, dates, versions) run on the result.

use std::collections::HashMap;

use super::attributes::AttrValue;
use super::lines::{LineKind, scan};
use super::tags::Tags;
use super::{
    ByteRange, EPSILON, HOLD_BACK_TOLERANCE, MediaPlaylist, PROGRAM_DATE_TIME_TOLERANCE, Part, PlaylistType,
    PreloadHint, RenditionReport, Segment, ServerControl, Violation, byte_range, datetime, decimal_float,
    decimal_integer, rules, secs,
};

/// Checks a Media Playlist against every rule; the model if none is broken.
pub fn check_media(text: &str) -> Result<MediaPlaylist, Vec<Violation>> {
    let (playlist, violations) = inspect_media(text);
    if violations.is_empty() {
        Ok(playlist)
    } else {
        Err(violations)
    }
}

/// The model as far as it could be read, and every violation, sorted by line. For tests that
/// accept some rules: filter the violations by [`Violation::rule`] and keep using the model.
pub fn inspect_media(text: &str) -> (MediaPlaylist, Vec<Violation>) {
    let mut builder = Builder::default();
    let lines = scan(text, &mut builder.t.out);
    for line in &lines {
        match line.kind {
            LineKind::Blank | LineKind::Comment => {}
            LineKind::Uri(uri) => builder.uri(line.number, uri),
            LineKind::Tag { name, value } => builder.tag(line.number, name, value),
        }
    }
    builder.finish()
}

/// Media Segment tags and the EXTINF of the segment being declared.
#[derive(Default)]
struct Pending {
    extinf: Option<Extinf>,
    discontinuity: bool,
    program_date_time: Option<(String, Option<f64>, usize)>,
    gap: bool,
    byterange: Option<ByteRange>,
    parts: Vec<Part>,
    /// Rounding of the printed part durations, summed.
    parts_rounding: f64,
    /// A part tag of this segment could not be read, so its sums prove nothing.
    damaged: bool,
}

#[derive(Clone, Copy)]
struct Extinf {
    duration: f64,
    rounding: f64,
    line: usize,
}

/// What the whole-playlist rules need beyond the public model.
struct SegmentNotes {
    extinf_rounding: f64,
    parts_rounding: f64,
    damaged: bool,
    /// Parsed EXT-X-PROGRAM-DATE-TIME and its line.
    date: Option<(f64, usize)>,
    /// EXT-X-DISCONTINUITY tags up to and including this segment.
    discontinuities: u64,
}

#[derive(Default)]
struct Builder {
    t: Tags,
    pl: MediaPlaylist,
    notes: Vec<SegmentNotes>,
    pending: Pending,
    target_duration_line: Option<usize>,
    part_inf_line: Option<usize>,
    server_control_line: Option<usize>,
    skip_line: Option<usize>,
    endlist_line: Option<usize>,
    first_segment_line: Option<usize>,
    first_discontinuity_line: Option<usize>,
    last_part_line: Option<usize>,
    /// An EXT-X-PRELOAD-HINT tag was seen (even one that could not be read).
    hint_seen: bool,
    /// Rendition reports without LAST-MSN / LAST-PART: line, URI, which are absent.
    report_omissions: Vec<(usize, String, bool, bool)>,
    map_lines: Vec<usize>,
    daterange_line: Option<usize>,
    daterange_starts: HashMap<String, bool>,
    discontinuities: u64,
    /// URI of the previous segment when it was a byte range, for EXT-X-BYTERANGE without offset.
    previous_range_uri: Option<String>,
}

impl Builder {
    fn flag(&mut self, line: usize, rule: &'static str, detail: impl Into<String>) {
        self.t.flag(line, rule, detail);
    }

    fn tag(&mut self, n: usize, name: &str, value: Option<&str>) {
        match name {
            "EXTM3U" => {} // lines::scan checks its place
            "EXT-X-VERSION" => self.t.version(n, value),
            "EXT-X-INDEPENDENT-SEGMENTS" => {
                if self.t.once(n, "EXT-X-INDEPENDENT-SEGMENTS") {
                    self.pl.independent_segments = true;
                }
                self.t.no_value(n, name, value);
            }
            "EXT-X-START" => self.t.start(n, value),
            "EXT-X-DEFINE" => self.t.define(n, value, false),
            "EXT-X-TARGETDURATION" => self.target_duration(n, value),
            "EXT-X-MEDIA-SEQUENCE" => self.media_sequence(n, value),
            "EXT-X-DISCONTINUITY-SEQUENCE" => self.discontinuity_sequence(n, value),
            "EXT-X-ENDLIST" => {
                if self.t.once(n, "EXT-X-ENDLIST") {
                    self.endlist_line = Some(n);
                    self.pl.ended = true;
                }
                self.t.no_value(n, name, value);
            }
            "EXT-X-PLAYLIST-TYPE" => self.playlist_type(n, value),
            "EXT-X-I-FRAMES-ONLY" => {
                if self.t.once(n, "EXT-X-I-FRAMES-ONLY") {
                    self.pl.i_frames_only = true;
                    self.t.require(4, "EXT-X-I-FRAMES-ONLY", n);
                }
                self.t.no_value(n, name, value);
            }
            "EXT-X-PART-INF" => self.part_inf(n, value),
            "EXT-X-SERVER-CONTROL" => self.server_control(n, value),
            "EXTINF" => self.extinf(n, value),
            "EXT-X-BYTERANGE" => self.byterange(n, value),
            "EXT-X-DISCONTINUITY" => {
                self.before_parts(n, name);
                self.t.no_value(n, name, value);
                self.pending.discontinuity = true;
                self.discontinuities = self.discontinuities.saturating_add(1);
                self.first_discontinuity_line.get_or_insert(n);
            }
            "EXT-X-KEY" => self.key(n, value),
            "EXT-X-MAP" => self.map(n, value),
            "EXT-X-PROGRAM-DATE-TIME" => self.program_date_time(n, value),
            "EXT-X-GAP" => {
                self.t.no_value(n, name, value);
                self.pending.gap = true;
            }
            "EXT-X-BITRATE" => self.bitrate(n, value),
            "EXT-X-PART" => self.part(n, value),
            "EXT-X-DATERANGE" => self.daterange(n, value),
            "EXT-X-SKIP" => self.skip(n, value),
            "EXT-X-PRELOAD-HINT" => self.preload_hint(n, value),
            "EXT-X-RENDITION-REPORT" => self.rendition_report(n, value),
            "EXT-X-MEDIA"
            | "EXT-X-STREAM-INF"
            | "EXT-X-I-FRAME-STREAM-INF"
            | "EXT-X-SESSION-DATA"
            | "EXT-X-SESSION-KEY"
            | "EXT-X-CONTENT-STEERING" => {
                let detail =
                    format!("#{name} is a Multivariant Playlist tag; it must not appear in a Media Playlist");
                self.flag(n, rules::PLAYLIST_KIND, detail);
            }
            _ => {} // §6.3.1: unknown tags are ignored
        }
    }

    fn playlist_type(&mut self, n: usize, value: Option<&str>) {
        if !self.t.once(n, "EXT-X-PLAYLIST-TYPE") {
            return;
        }
        self.pl.playlist_type = match value {
            Some("EVENT") => Some(PlaylistType::Event),
            Some("VOD") => Some(PlaylistType::Vod),
            other => {
                let detail = format!("#EXT-X-PLAYLIST-TYPE is EVENT or VOD, found {other:?}");
                self.flag(n, rules::MALFORMED_TAG, detail);
                None
            }
        };
    }

    fn bitrate(&mut self, n: usize, value: Option<&str>) {
        if value.and_then(decimal_integer).is_none() {
            let detail = format!("#EXT-X-BITRATE needs a decimal-integer, found {value:?}");
            self.flag(n, rules::MALFORMED_TAG, detail);
        }
    }

    /// A decimal-integer tag value, reported under `rule` when it is not one.
    fn integer_tag(&mut self, n: usize, rule: &'static str, name: &str, value: Option<&str>) -> Option<u64> {
        let v = value.and_then(decimal_integer);
        if v.is_none() {
            self.flag(
                n,
                rule,
                format!("#{name} needs a decimal-integer, found {value:?}"),
            );
        }
        v
    }

    fn target_duration(&mut self, n: usize, value: Option<&str>) {
        if !self.t.once(n, "EXT-X-TARGETDURATION") {
            return;
        }
        self.target_duration_line = Some(n);
        match self.integer_tag(n, rules::TARGET_DURATION, "EXT-X-TARGETDURATION", value) {
            Some(0) => self.flag(
                n,
                rules::TARGET_DURATION,
                "the Target Duration must be at least 1",
            ),
            Some(td) => self.pl.target_duration = td,
            None => {}
        }
    }

    fn media_sequence(&mut self, n: usize, value: Option<&str>) {
        if !self.t.once(n, "EXT-X-MEDIA-SEQUENCE") {
            return;
        }
        let rule = rules::MEDIA_SEQUENCE;
        if let Some(v) = self.integer_tag(n, rule, "EXT-X-MEDIA-SEQUENCE", value) {
            self.pl.media_sequence = v;
        }
        if let Some(first) = self.first_segment_line {
            let detail =
                format!("#EXT-X-MEDIA-SEQUENCE must come before the first Media Segment (line {first})");
            self.flag(n, rule, detail);
        }
    }

    fn discontinuity_sequence(&mut self, n: usize, value: Option<&str>) {
        if !self.t.once(n, "EXT-X-DISCONTINUITY-SEQUENCE") {
            return;
        }
        let rule = rules::DISCONTINUITY_SEQUENCE;
        if let Some(v) = self.integer_tag(n, rule, "EXT-X-DISCONTINUITY-SEQUENCE", value) {
            self.pl.discontinuity_sequence = v;
        }
        if let Some(first) = self.first_segment_line {
            let detail = format!(
                "#EXT-X-DISCONTINUITY-SEQUENCE must come before the first Media Segment (line {first})"
            );
            self.flag(n, rule, detail);
        } else if let Some(first) = self.first_discontinuity_line {
            let detail = format!(
                "#EXT-X-DISCONTINUITY-SEQUENCE must come before any EXT-X-DISCONTINUITY (line {first})"
            );
            self.flag(n, rule, detail);
        }
    }

    fn part_inf(&mut self, n: usize, value: Option<&str>) {
        if !self.t.once(n, "EXT-X-PART-INF") {
            return;
        }
        self.part_inf_line = Some(n);
        let Some(list) = self.t.attrs(n, "EXT-X-PART-INF", value) else {
            return;
        };
        let at = (n, rules::PART_INF, "EXT-X-PART-INF");
        match self.t.read(at, &list, "PART-TARGET", true, AttrValue::as_float) {
            Some(t) if t > 0.0 => self.pl.part_target = Some(t),
            Some(_) => self.flag(n, rules::PART_INF, "PART-TARGET must be more than 0"),
            None => {}
        }
    }

    fn server_control(&mut self, n: usize, value: Option<&str>) {
        if !self.t.once(n, "EXT-X-SERVER-CONTROL") {
            return;
        }
        self.server_control_line = Some(n);
        let Some(list) = self.t.attrs(n, "EXT-X-SERVER-CONTROL", value) else {
            self.pl.server_control = Some(ServerControl::default());
            return;
        };
        let at = (n, rules::SERVER_CONTROL, "EXT-X-SERVER-CONTROL");
        let sc = ServerControl {
            can_skip_until: self
                .t
                .read(at, &list, "CAN-SKIP-UNTIL", false, AttrValue::as_float),
            can_skip_dateranges: self.t.yes(at, &list, "CAN-SKIP-DATERANGES"),
            hold_back: self.t.read(at, &list, "HOLD-BACK", false, AttrValue::as_float),
            part_hold_back: self
                .t
                .read(at, &list, "PART-HOLD-BACK", false, AttrValue::as_float),
            can_block_reload: self.t.yes(at, &list, "CAN-BLOCK-RELOAD"),
        };
        if list.get("CAN-SKIP-DATERANGES").is_some() && list.get("CAN-SKIP-UNTIL").is_none() {
            self.flag(n, at.1, "CAN-SKIP-DATERANGES requires CAN-SKIP-UNTIL");
        }
        self.pl.server_control = Some(sc);
    }

    fn extinf(&mut self, n: usize, value: Option<&str>) {
        self.first_segment_line.get_or_insert(n);
        let Some((duration, _title)) = value.and_then(|v| v.split_once(',')) else {
            let detail = format!("#EXTINF is <duration>,[<title>]; the ',' is missing in {value:?}");
            self.flag(n, rules::EXTINF, detail);
            self.pending.damaged = true;
            return;
        };
        let Some((seconds, rounding)) = decimal_float(duration) else {
            let detail = format!("EXTINF duration {duration:?} is not a non-negative decimal number");
            self.flag(n, rules::EXTINF, detail);
            self.pending.damaged = true;
            return;
        };
        if duration.contains('.') {
            self.t.require(3, "a decimal-floating-point EXTINF duration", n);
        }
        if let Some(prev) = self.pending.extinf {
            let detail = format!(
                "a second EXTINF for one segment (the first at line {})",
                prev.line
            );
            self.flag(n, rules::EXTINF, detail);
        }
        self.pending.extinf = Some(Extinf {
            duration: seconds,
            rounding,
            line: n,
        });
    }

    fn byterange(&mut self, n: usize, value: Option<&str>) {
        self.t.require(4, "EXT-X-BYTERANGE", n);
        match value.and_then(byte_range) {
            Some(range) => self.pending.byterange = Some(range),
            None => {
                let detail = format!("#EXT-X-BYTERANGE is <n>[@<o>] in decimal-integers, found {value:?}");
                self.flag(n, rules::BYTERANGE, detail);
            }
        }
    }

    /// §4.4.4.9: tags that apply to a Parent Segment come before its first part.
    fn before_parts(&mut self, n: usize, name: &str) {
        if let Some(first) = self.pending.parts.first() {
            let detail = format!(
                "#{name} applies to the segment whose first EXT-X-PART is at line {}, so it must come before it",
                first.line
            );
            self.flag(n, rules::PART_TAG_ORDER, detail);
        }
    }

    fn key(&mut self, n: usize, value: Option<&str>) {
        self.before_parts(n, "EXT-X-KEY");
        let Some(list) = self.t.attrs(n, "EXT-X-KEY", value) else {
            return;
        };
        let at = (n, rules::KEY, "EXT-X-KEY");
        if list.get("IV").is_some() {
            self.t.require(2, "the IV attribute of EXT-X-KEY", n);
        }
        if list.get("KEYFORMAT").is_some() || list.get("KEYFORMATVERSIONS").is_some() {
            self.t.require(5, "KEYFORMAT / KEYFORMATVERSIONS of EXT-X-KEY", n);
        }
        if list.get("METHOD").is_none() {
            self.flag(n, at.1, "#EXT-X-KEY lacks the required METHOD attribute");
            return;
        }
        let methods = ["NONE", "AES-128", "SAMPLE-AES", "SAMPLE-AES-CTR", "AES-256-GCM"];
        let Some(method) = self.t.one_of(at, &list, "METHOD", &methods) else {
            return;
        };
        match method.as_str() {
            "NONE" => {
                if list.attrs.len() > 1 {
                    self.flag(n, at.1, "METHOD=NONE allows no other attribute");
                }
                return;
            }
            "SAMPLE-AES" => self.t.require(5, "EXT-X-KEY METHOD=SAMPLE-AES", n),
            _ => {}
        }
        self.t.quoted(at, &list, "URI", true);
        let iv = self.t.read(at, &list, "IV", false, |v| v.as_hex().map(str::len));
        if iv.is_some_and(|digits| digits != 32) {
            self.flag(n, at.1, "IV is a 128-bit value: 0x and 32 hex digits");
        }
        if list.get("IV").is_some() && matches!(method.as_str(), "SAMPLE-AES-CTR" | "AES-256-GCM") {
            self.flag(n, at.1, format!("METHOD={method} must not have an IV attribute"));
        }
        self.t.quoted(at, &list, "KEYFORMAT", false);
        self.t.read(at, &list, "KEYFORMATVERSIONS", false, |v| {
            let s = v.as_quoted()?;
            if s.split('/').all(|p| decimal_integer(p).is_some_and(|x| x > 0)) {
                Ok(())
            } else {
                Err("expected positive integers separated by '/'".to_owned())
            }
        });
    }

    fn map(&mut self, n: usize, value: Option<&str>) {
        self.before_parts(n, "EXT-X-MAP");
        self.map_lines.push(n);
        let Some(list) = self.t.attrs(n, "EXT-X-MAP", value) else {
            return;
        };
        let at = (n, rules::MAP, "EXT-X-MAP");
        self.t.quoted(at, &list, "URI", true);
        self.t.read(at, &list, "BYTERANGE", false, |v| {
            match byte_range(v.as_quoted()?) {
                Some(ByteRange { offset: Some(_), .. }) => Ok(()),
                _ => Err("expected \"<n>@<o>\" (the offset is required)".to_owned()),
            }
        });
    }

    fn program_date_time(&mut self, n: usize, value: Option<&str>) {
        self.before_parts(n, "EXT-X-PROGRAM-DATE-TIME");
        let raw = value.unwrap_or("");
        let date = match datetime::parse(raw) {
            Ok(t) => Some(t),
            Err(e) => {
                self.flag(
                    n,
                    rules::PROGRAM_DATE_TIME,
                    format!("#EXT-X-PROGRAM-DATE-TIME: {e}"),
                );
                None
            }
        };
        if let Some((_, _, first)) = &self.pending.program_date_time {
            let detail =
                format!("a second EXT-X-PROGRAM-DATE-TIME for one segment (the first at line {first})");
            self.flag(n, rules::PROGRAM_DATE_TIME, detail);
        }
        self.pending.program_date_time = Some((raw.to_owned(), date, n));
    }

    fn part(&mut self, n: usize, value: Option<&str>) {
        self.first_segment_line.get_or_insert(n);
        self.last_part_line = Some(n);
        if let Some(extinf) = self.pending.extinf {
            let detail = format!(
                "EXT-X-PART after the EXTINF at line {}: a segment's parts come before the EXTINF that ends it",
                extinf.line
            );
            self.flag(n, rules::PART_TAG_ORDER, detail);
        }
        let Some(list) = self.t.attrs(n, "EXT-X-PART", value) else {
            self.pending.damaged = true;
            return;
        };
        let at = (n, rules::PART_ATTRIBUTES, "EXT-X-PART");
        let uri = self.t.quoted(at, &list, "URI", true);
        let raw_duration = list.get("DURATION").map_or("", |a| a.raw);
        let duration = self.t.read(at, &list, "DURATION", true, |v| {
            decimal_float(raw_duration).ok_or_else(|| format!("expected a decimal-floating-point, found {v}"))
        });
        let independent = self.t.yes(at, &list, "INDEPENDENT");
        let gap = self.t.yes(at, &list, "GAP");
        let byterange = self.t.read(at, &list, "BYTERANGE", false, |v| {
            byte_range(v.as_quoted()?).ok_or_else(|| "expected \"<n>[@<o>]\"".to_owned())
        });
        let (Some(uri), Some((duration, rounding))) = (uri, duration) else {
            self.pending.damaged = true;
            return;
        };
        if let Some(ByteRange { offset: None, .. }) = byterange {
            let continues = self
                .pending
                .parts
                .last()
                .is_some_and(|p| p.uri == uri && p.byterange.is_some());
            if !continues {
                let detail = format!(
                    "BYTERANGE without an offset must follow a byte-range part of the same \
                     segment and resource ({uri})"
                );
                self.flag(n, at.1, detail);
            }
        }
        self.pending.parts_rounding += rounding;
        self.pending.parts.push(Part {
            line: n,
            duration,
            uri,
            independent,
            gap,
            byterange,
        });
    }

    fn daterange(&mut self, n: usize, value: Option<&str>) {
        self.daterange_line.get_or_insert(n);
        let Some(list) = self.t.attrs(n, "EXT-X-DATERANGE", value) else {
            return;
        };
        let at = (n, rules::DATERANGE, "EXT-X-DATERANGE");
        let id = self.t.quoted(at, &list, "ID", true);
        let date = |v: &AttrValue| datetime::parse(v.as_quoted()?);
        let start = self.t.read(at, &list, "START-DATE", false, date);
        let end = self.t.read(at, &list, "END-DATE", false, date);
        self.t.read(at, &list, "DURATION", false, AttrValue::as_float);
        self.t
            .read(at, &list, "PLANNED-DURATION", false, AttrValue::as_float);
        if let Some(id) = id {
            let had_start = self.daterange_starts.get(&id).copied().unwrap_or(false);
            if !had_start && list.get("START-DATE").is_none() {
                let detail =
                    format!("date range {id:?} has no START-DATE (and no earlier tag with that ID had one)");
                self.flag(n, at.1, detail);
            }
            self.daterange_starts.insert(id, had_start || start.is_some());
        }
        if let (Some(s), Some(e)) = (start, end) {
            if e < s {
                self.flag(n, at.1, "END-DATE is before START-DATE");
            }
        }
        if list.get("END-ON-NEXT").is_some() {
            self.t.yes(at, &list, "END-ON-NEXT");
            if list.get("CLASS").is_none() {
                self.flag(n, at.1, "END-ON-NEXT=YES requires a CLASS attribute");
            }
            if list.get("DURATION").is_some() || list.get("END-DATE").is_some() {
                self.flag(n, at.1, "END-ON-NEXT=YES excludes DURATION and END-DATE");
            }
        }
    }

    fn skip(&mut self, n: usize, value: Option<&str>) {
        self.t.require(9, "EXT-X-SKIP", n);
        if let Some(first) = self.skip_line {
            let detail = format!(
                "EXT-X-SKIP appears again (first at line {first}); it must not appear more than once"
            );
            self.flag(n, rules::SKIP, detail);
            return;
        }
        self.skip_line = Some(n);
        self.pl.delta_update = true;
        if let Some(first) = self.first_segment_line {
            let detail = format!(
                "EXT-X-SKIP replaces the oldest segments, so it must come before every segment (line {first})"
            );
            self.flag(n, rules::SKIP, detail);
        }
        let Some(list) = self.t.attrs(n, "EXT-X-SKIP", value) else {
            return;
        };
        let at = (n, rules::SKIP, "EXT-X-SKIP");
        if let Some(k) = self
            .t
            .read(at, &list, "SKIPPED-SEGMENTS", true, AttrValue::as_integer)
        {
            self.pl.skipped_segments = k;
        }
        let removed = self.t.read(at, &list, "RECENTLY-REMOVED-DATERANGES", false, |v| {
            v.as_quoted_or_empty().map(str::to_owned)
        });
        if list.get("RECENTLY-REMOVED-DATERANGES").is_some() {
            self.t
                .require(10, "EXT-X-SKIP with RECENTLY-REMOVED-DATERANGES", n);
        }
        self.pl.recently_removed_dateranges = removed.map(|r| {
            r.split('\t')
                .filter(|id| !id.is_empty())
                .map(str::to_owned)
                .collect()
        });
    }

    fn preload_hint(&mut self, n: usize, value: Option<&str>) {
        let Some(list) = self.t.attrs(n, "EXT-X-PRELOAD-HINT", value) else {
            self.hint_seen = true;
            return;
        };
        // A hint whose TYPE is PART or unreadable stands for the part hint the profile asks for.
        self.hint_seen |= list
            .get("TYPE")
            .is_none_or(|t| !matches!(&t.value, AttrValue::Enumerated(v) if v != "PART"));
        let at = (n, rules::PRELOAD_HINT, "EXT-X-PRELOAD-HINT");
        let kind = self
            .t
            .read(at, &list, "TYPE", true, |v| v.as_enumerated().map(str::to_owned));
        let uri = self.t.quoted(at, &list, "URI", true);
        let byterange_start = self
            .t
            .read(at, &list, "BYTERANGE-START", false, AttrValue::as_integer);
        let byterange_length = self
            .t
            .read(at, &list, "BYTERANGE-LENGTH", false, AttrValue::as_integer);
        let (Some(kind), Some(uri)) = (kind, uri) else {
            return;
        };
        let hint = PreloadHint {
            line: n,
            uri,
            byterange_start,
            byterange_length,
        };
        // §6.3.8: clients ignore hints of a TYPE they do not know, so such a hint is no error.
        let slot = match kind.as_str() {
            "PART" => &mut self.pl.preload_hint,
            "MAP" => &mut self.pl.preload_map_hint,
            _ => return,
        };
        if let Some(first) = slot {
            let detail = format!(
                "a second EXT-X-PRELOAD-HINT with TYPE={kind} (the first at line {}); clients use only the first",
                first.line
            );
            self.t.flag(n, at.1, detail);
        } else {
            *slot = Some(hint);
        }
    }

    fn rendition_report(&mut self, n: usize, value: Option<&str>) {
        let Some(list) = self.t.attrs(n, "EXT-X-RENDITION-REPORT", value) else {
            return;
        };
        let at = (n, rules::RENDITION_REPORT, "EXT-X-RENDITION-REPORT");
        let uri = self.t.quoted(at, &list, "URI", true);
        let last_msn = self.t.read(at, &list, "LAST-MSN", false, AttrValue::as_integer);
        let last_part = self.t.read(at, &list, "LAST-PART", false, AttrValue::as_integer);
        let Some(uri) = uri else {
            return;
        };
        let (no_msn, no_part) = (list.get("LAST-MSN").is_none(), list.get("LAST-PART").is_none());
        if no_msn || no_part {
            self.report_omissions.push((n, uri.clone(), no_msn, no_part));
        }
        if has_scheme(&uri) {
            let detail = format!("URI {uri:?} must be relative to this Media Playlist's URI");
            self.flag(n, at.1, detail);
        }
        self.pl.rendition_reports.push(RenditionReport {
            line: n,
            uri,
            last_msn,
            last_part,
        });
    }

    fn uri(&mut self, n: usize, uri: &str) {
        self.first_segment_line.get_or_insert(n);
        let pending = std::mem::take(&mut self.pending);
        let extinf = pending.extinf.unwrap_or_else(|| {
            if !pending.damaged {
                self.t
                    .flag(n, rules::EXTINF, "a segment URI line without an EXTINF before it");
            }
            Extinf {
                duration: 0.0,
                rounding: 0.0,
                line: n,
            }
        });
        if let Some(ByteRange { offset: None, .. }) = pending.byterange {
            if self.previous_range_uri.as_deref() != Some(uri) {
                let detail =
                    "EXT-X-BYTERANGE without an offset must follow a byte-range segment of the same resource";
                self.flag(n, rules::BYTERANGE, detail);
            }
        }
        self.previous_range_uri = pending.byterange.map(|_| uri.to_owned());
        self.push_segment(n, Some(uri.to_owned()), extinf, pending, extinf.line == n);
    }

    fn push_segment(
        &mut self,
        line: usize,
        uri: Option<String>,
        extinf: Extinf,
        pending: Pending,
        damaged: bool,
    ) {
        let (date, program_date_time) = match pending.program_date_time {
            Some((raw, parsed, at)) => (parsed.map(|t| (t, at)), Some(raw)),
            None => (None, None),
        };
        self.notes.push(SegmentNotes {
            extinf_rounding: extinf.rounding,
            parts_rounding: pending.parts_rounding,
            damaged: damaged || pending.damaged,
            date,
            discontinuities: self.discontinuities,
        });
        self.pl.segments.push(Segment {
            msn: 0,
            line,
            duration: extinf.duration,
            uri,
            byterange: pending.byterange,
            discontinuity: pending.discontinuity,
            discontinuity_sequence: 0,
            program_date_time,
            gap: pending.gap,
            parts: pending.parts,
        });
    }

    fn finish(mut self) -> (MediaPlaylist, Vec<Violation>) {
        let pending = std::mem::take(&mut self.pending);
        if let Some(extinf) = pending.extinf {
            self.flag(
                extinf.line,
                rules::EXTINF,
                "EXTINF with no segment URI line after it",
            );
        }
        if let Some(first) = pending.parts.first() {
            let line = first.line;
            let duration = pending.parts.iter().map(|p| p.duration).sum();
            let extinf = Extinf {
                duration,
                rounding: pending.parts_rounding,
                line,
            };
            self.push_segment(line, None, extinf, pending, false);
        }
        let first_msn = self.pl.media_sequence.saturating_add(self.pl.skipped_segments);
        let base = self.pl.discontinuity_sequence;
        for (i, (segment, notes)) in self.pl.segments.iter_mut().zip(&self.notes).enumerate() {
            segment.msn = first_msn.saturating_add(i as u64);
            segment.discontinuity_sequence = base.saturating_add(notes.discontinuities);
        }
        if self.target_duration_line.is_none() {
            self.flag(
                1,
                rules::TARGET_DURATION,
                "EXT-X-TARGETDURATION is missing; it is REQUIRED",
            );
        }
        self.segment_durations();
        self.parts();
        self.hold_backs();
        self.skip_rules();
        self.hints();
        self.reports();
        self.dates();
        self.versions();
        if self.pl.ended && self.pl.in_progress().is_some() {
            let line = self.pl.in_progress().map_or(1, |s| s.line);
            self.flag(
                line,
                rules::ENDLIST,
                "the playlist has EXT-X-ENDLIST but its last segment is still in progress (parts without a URI line)",
            );
        }
        (self.pl, self.t.out.into_sorted())
    }

    /// §4.4.3.1: EXTINF rounded to the nearest integer is at most the Target Duration.
    fn segment_durations(&mut self) {
        let td = self.pl.target_duration;
        if td == 0 {
            return;
        }
        let mut found = Vec::new();
        for s in &self.pl.segments {
            if s.duration.round() > td as f64 {
                let what = if s.uri.is_some() {
                    "EXTINF"
                } else {
                    "the in-progress segment's parts so far"
                };
                found.push((
                    s.line,
                    format!(
                        "segment {} lasts {} s ({what}); rounded that is more than the Target Duration {td}",
                        s.msn,
                        secs(s.duration)
                    ),
                ));
            }
        }
        for (line, detail) in found {
            self.flag(line, rules::SEGMENT_DURATION, detail);
        }
    }

    fn parts(&mut self) {
        let has_parts = self.pl.segments.iter().any(|s| !s.parts.is_empty());
        if !has_parts {
            return;
        }
        let Some(target) = self.pl.part_target else {
            if self.part_inf_line.is_none() {
                let line = self.first_part_line();
                self.flag(
                    line,
                    rules::PART_INF,
                    "EXT-X-PART is used but EXT-X-PART-INF is missing",
                );
            }
            return;
        };
        let mut found: Vec<(usize, &'static str, String)> = Vec::new();
        let flat: Vec<(usize, bool, &Part)> = self
            .pl
            .segments
            .iter()
            .enumerate()
            .flat_map(|(i, s)| {
                let last = s.parts.len().saturating_sub(1);
                s.parts.iter().enumerate().map(move |(j, p)| (i, j == last, p))
            })
            .collect();
        for (k, (_, final_of_segment, part)) in flat.iter().enumerate() {
            if part.duration > target + EPSILON {
                found.push((
                    part.line,
                    rules::PART_DURATION,
                    format!(
                        "part {} lasts {} s, more than PART-TARGET {}",
                        part.uri,
                        secs(part.duration),
                        secs(target)
                    ),
                ));
            }
            let next_is_gap = flat.get(k + 1).is_some_and(|(_, _, p)| p.gap);
            let exempt = part.independent || part.gap || next_is_gap || *final_of_segment;
            if !exempt && part.duration < 0.85 * target - EPSILON {
                found.push((
                    part.line,
                    rules::PART_DURATION_MIN,
                    format!(
                        "part {} lasts {} s, less than 85% of PART-TARGET {} ({} s), and is not \
                         INDEPENDENT, GAP, before a GAP part or the last of its segment",
                        part.uri,
                        secs(part.duration),
                        secs(target),
                        secs(0.85 * target)
                    ),
                ));
            }
        }
        // Sums (§3.2) and the window of segments that list parts (§6.2.2).
        let mut first_with_parts: Option<usize> = None;
        for (i, (s, notes)) in self.pl.segments.iter().zip(&self.notes).enumerate() {
            if s.parts.is_empty() {
                if let Some(first) = first_with_parts {
                    let detail = format!(
                        "segment {} lists no parts although the older segment {} does; parts are removed oldest first",
                        s.msn, self.pl.segments[first].msn
                    );
                    found.push((s.line, rules::PART_WINDOW, detail));
                }
                continue;
            }
            let is_first = first_with_parts.is_none();
            first_with_parts.get_or_insert(i);
            if s.uri.is_none() || notes.damaged {
                continue;
            }
            let sum: f64 = s.parts.iter().map(|p| p.duration).sum();
            let tolerance = notes.extinf_rounding + notes.parts_rounding + EPSILON;
            let short_ok = is_first; // older parts of the first listed segment may be gone
            if sum > s.duration + tolerance || (!short_ok && sum < s.duration - tolerance) {
                found.push((
                    s.line,
                    rules::PART_SUM,
                    format!(
                        "the parts of segment {} add up to {} s but its EXTINF is {} s",
                        s.msn,
                        secs(sum),
                        secs(s.duration)
                    ),
                ));
            }
        }
        self.part_ages(&mut found);
        for (line, rule, detail) in found {
            self.flag(line, rule, detail);
        }
    }

    /// §6.2.2: parts older than three Target Durations SHOULD go; and, derived, the parts listed
    /// reach back at least PART-HOLD-BACK.
    fn part_ages(&self, found: &mut Vec<(usize, &'static str, String)>) {
        let total: f64 = self.pl.segments.iter().map(|s| s.duration).sum();
        let limit = 3.0 * self.pl.target_duration as f64;
        let mut end = 0.0;
        let mut earliest_part_start = None;
        for s in &self.pl.segments {
            let start = end;
            end += s.duration;
            if s.parts.is_empty() {
                continue;
            }
            // The parts of a complete segment end where it ends (older ones may be gone); those of
            // the in-progress segment start where it starts.
            let listed: f64 = s.parts.iter().map(|p| p.duration).sum();
            let first_start = if s.uri.is_some() { end - listed } else { start };
            earliest_part_start.get_or_insert(first_start);
            let first_end = first_start + s.parts[0].duration;
            let age = total - first_end;
            if self.pl.target_duration > 0 && age > limit + HOLD_BACK_TOLERANCE {
                found.push((
                    s.parts[0].line,
                    rules::PART_STALE,
                    format!(
                        "the parts of segment {} end up to {} s before the end of the playlist, more \
                         than three Target Durations ({} s); they should have been removed",
                        s.msn,
                        secs(age),
                        secs(limit)
                    ),
                ));
            }
        }
        let phb = self.pl.server_control.as_ref().and_then(|sc| sc.part_hold_back);
        if let (Some(phb), Some(start), false) = (phb, earliest_part_start, self.pl.ended) {
            let reach = total - start;
            if reach + HOLD_BACK_TOLERANCE < phb.min(total) {
                let line = self.first_part_line();
                found.push((
                    line,
                    rules::PART_COVERAGE,
                    format!(
                        "the listed parts cover only the last {} s, less than PART-HOLD-BACK {} s, where \
                         a low-latency client starts",
                        secs(reach),
                        secs(phb)
                    ),
                ));
            }
        }
    }

    fn first_part_line(&self) -> usize {
        self.pl
            .segments
            .iter()
            .find_map(|s| s.parts.first())
            .map_or(1, |p| p.line)
    }

    /// §4.4.3.8: the hold-backs and the Skip Boundary against the targets.
    fn hold_backs(&mut self) {
        let line = self.server_control_line.unwrap_or(1);
        let td = self.pl.target_duration as f64;
        let sc = self.pl.server_control.clone().unwrap_or_default();
        if let Some(pt) = self.pl.part_target {
            match sc.part_hold_back {
                None => {
                    let line = self.server_control_line.or(self.part_inf_line).unwrap_or(1);
                    let detail = "EXT-X-PART-INF is present, so EXT-X-SERVER-CONTROL needs PART-HOLD-BACK";
                    self.flag(line, rules::PART_HOLD_BACK, detail);
                }
                Some(phb) if phb + HOLD_BACK_TOLERANCE < 2.0 * pt => {
                    let detail = format!(
                        "PART-HOLD-BACK {} is less than twice PART-TARGET {}",
                        secs(phb),
                        secs(pt)
                    );
                    self.flag(line, rules::PART_HOLD_BACK, detail);
                }
                Some(phb) if phb + HOLD_BACK_TOLERANCE < 3.0 * pt => {
                    let detail = format!(
                        "PART-HOLD-BACK {} is less than three times PART-TARGET {} ({} s), as the draft \
                         (SHOULD) and Apple recommend",
                        secs(phb),
                        secs(pt),
                        secs(3.0 * pt)
                    );
                    self.flag(line, rules::PART_HOLD_BACK_3X, detail);
                }
                Some(_) => {}
            }
        }
        if self.pl.target_duration == 0 {
            return;
        }
        if let Some(hb) = sc.hold_back.filter(|hb| hb + HOLD_BACK_TOLERANCE < 3.0 * td) {
            let detail = format!(
                "HOLD-BACK {} is less than three times the Target Duration ({} s)",
                secs(hb),
                secs(3.0 * td)
            );
            self.flag(line, rules::HOLD_BACK, detail);
        }
        if let Some(csu) = sc.can_skip_until.filter(|c| c + HOLD_BACK_TOLERANCE < 6.0 * td) {
            let detail = format!(
                "CAN-SKIP-UNTIL {} is less than six times the Target Duration ({} s)",
                secs(csu),
                secs(6.0 * td)
            );
            self.flag(line, rules::CAN_SKIP_UNTIL, detail);
        }
    }

    /// §4.4.5.2, §6.2.5.1: a delta update needs CAN-SKIP-UNTIL, no EXT-X-ENDLIST, and skips
    /// exactly the segments that end at least the Skip Boundary before the last complete one.
    fn skip_rules(&mut self) {
        let Some(line) = self.skip_line else {
            return;
        };
        let boundary = self.pl.server_control.as_ref().and_then(|sc| sc.can_skip_until);
        if boundary.is_none() {
            self.flag(
                line,
                rules::SKIP,
                "EXT-X-SKIP without CAN-SKIP-UNTIL in EXT-X-SERVER-CONTROL",
            );
        }
        if let Some(end) = self.endlist_line {
            let detail = format!(
                "a playlist with EXT-X-ENDLIST (line {end}) is never a delta update; servers ignore _HLS_skip then"
            );
            self.flag(line, rules::SKIP, detail);
        }
        let Some(boundary) = boundary else {
            return;
        };
        let complete: Vec<&Segment> = self.pl.complete_segments().collect();
        let listed: f64 = complete.iter().map(|s| s.duration).sum();
        let mut found = Vec::new();
        if self.pl.skipped_segments > 0 && listed + HOLD_BACK_TOLERANCE < boundary {
            found.push((
                line,
                format!(
                    "the segments after the skipped ones last {} s, so the last skipped segment ends within \
                     the Skip Boundary ({} s) and should have been kept",
                    secs(listed),
                    secs(boundary)
                ),
            ));
        }
        if let Some(first) = complete.first() {
            let first_end_distance = listed - first.duration;
            if first_end_distance > boundary + HOLD_BACK_TOLERANCE {
                found.push((
                    first.line,
                    format!(
                        "segment {} ends {} s before the last complete segment's end, beyond the Skip \
                         Boundary ({} s), so it should have been skipped",
                        first.msn,
                        secs(first_end_distance),
                        secs(boundary)
                    ),
                ));
            }
        }
        for (l, detail) in found {
            self.flag(l, rules::SKIP_BOUNDARY, detail);
        }
    }

    /// §4.4.5.3, §6.2.6, Appendix B.1.
    fn hints(&mut self) {
        let rule = rules::PRELOAD_HINT;
        let hints: Vec<PreloadHint> = [&self.pl.preload_hint, &self.pl.preload_map_hint]
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        for hint in &hints {
            if let Some(end) = self.endlist_line {
                let detail =
                    format!("a playlist with EXT-X-ENDLIST (line {end}) must not have EXT-X-PRELOAD-HINT");
                self.flag(hint.line, rule, detail);
            }
        }
        if let Some(hint) = self.pl.preload_hint.clone() {
            if let Some(last) = self.last_part_line.filter(|l| *l > hint.line) {
                let detail = format!(
                    "the EXT-X-PRELOAD-HINT hints the next part, so it belongs after the last EXT-X-PART (line {last})"
                );
                self.flag(hint.line, rule, detail);
            }
            let listed = self
                .pl
                .segments
                .iter()
                .flat_map(|s| &s.parts)
                .find(|p| p.uri == hint.uri && p.byterange.is_none());
            if let Some(part) = listed {
                let detail = format!(
                    "the hinted URI {} is already listed as a complete part (line {})",
                    hint.uri, part.line
                );
                self.flag(hint.line, rule, detail);
            }
        }
        let has_parts = self.pl.segments.iter().any(|s| !s.parts.is_empty());
        if has_parts && !self.pl.ended && !self.hint_seen {
            let line = self.last_part_line.unwrap_or(1);
            let detail = "a live playlist with parts should hint the next part with EXT-X-PRELOAD-HINT:TYPE=PART (Appendix B.1)";
            self.flag(line, rules::PRELOAD_HINT_REQUIRED, detail);
        }
    }

    /// §4.4.5.4: LAST-MSN always, LAST-PART when the renditions have parts.
    fn reports(&mut self) {
        let has_parts = self.pl.part_target.is_some() || self.pl.segments.iter().any(|s| !s.parts.is_empty());
        for (line, uri, no_msn, no_part) in std::mem::take(&mut self.report_omissions) {
            if no_msn {
                let detail = format!("EXT-X-RENDITION-REPORT for {uri} leaves out LAST-MSN");
                self.flag(line, rules::RENDITION_REPORT_OMITTED, detail);
            }
            if no_part && has_parts {
                let detail =
                    format!("EXT-X-RENDITION-REPORT for {uri} leaves out LAST-PART in a playlist with parts");
                self.flag(line, rules::RENDITION_REPORT_OMITTED, detail);
            }
        }
    }

    /// §6.2.1: program dates follow the EXTINF timeline; and §4.4.5.1: date ranges need one.
    fn dates(&mut self) {
        let mut found = Vec::new();
        // (date of a segment's start, index of that segment)
        let mut anchor: Option<(f64, usize)> = None;
        for (i, notes) in self.notes.iter().enumerate() {
            let Some((date, line)) = notes.date else {
                continue;
            };
            if let Some((then, j)) = anchor {
                let expected = then + self.pl.segments[j..i].iter().map(|s| s.duration).sum::<f64>();
                let previous = &self.pl.segments[i - 1];
                let previous_start = expected - previous.duration;
                let discontinuity = self.pl.segments[j + 1..=i].iter().any(|s| s.discontinuity);
                let drift = date - expected;
                let overlap_ok = date > previous_start && -drift < PROGRAM_DATE_TIME_TOLERANCE;
                if drift < 0.0 && !overlap_ok {
                    found.push((
                        line,
                        rules::PROGRAM_DATE_TIME_OVERLAP,
                        format!(
                            "the date of segment {} is {} s earlier than the previous dates and durations \
                             imply; only a partial overlap of under a second is allowed",
                            self.pl.segments[i].msn,
                            secs(-drift)
                        ),
                    ));
                } else if !discontinuity && drift.abs() >= PROGRAM_DATE_TIME_TOLERANCE {
                    found.push((
                        line,
                        rules::PROGRAM_DATE_TIME_JUMP,
                        format!(
                            "the date of segment {} is {} s off the previous date plus the EXTINF durations, \
                             with no EXT-X-DISCONTINUITY between",
                            self.pl.segments[i].msn,
                            secs(drift)
                        ),
                    ));
                }
            }
            anchor = Some((date, i));
        }
        let any_date = self.pl.segments.iter().any(|s| s.program_date_time.is_some());
        let has_parts = self.pl.segments.iter().any(|s| !s.parts.is_empty());
        if has_parts && !any_date {
            found.push((
                1,
                rules::PROGRAM_DATE_TIME_REQUIRED,
                "a low-latency playlist (one with parts) must have EXT-X-PROGRAM-DATE-TIME (Appendix B.1)"
                    .to_owned(),
            ));
        }
        if let (Some(line), false) = (self.daterange_line, any_date) {
            found.push((
                line,
                rules::DATERANGE,
                "a playlist with EXT-X-DATERANGE must have an EXT-X-PROGRAM-DATE-TIME".to_owned(),
            ));
        }
        for (line, rule, detail) in found {
            self.flag(line, rule, detail);
        }
    }

    /// §8 as listed in the module documentation.
    fn versions(&mut self) {
        if let Some(&line) = self.map_lines.first() {
            if self.pl.i_frames_only {
                self.t.require(5, "EXT-X-MAP in an I-frame playlist", line);
            } else {
                self.t.require(6, "EXT-X-MAP", line);
            }
        }
        self.pl.version = self.t.check_version();
    }
}

/// An absolute URI starts with a scheme: a letter, then letters, digits, '+', '-' or '.', then ':'.
fn has_scheme(uri: &str) -> bool {
    let Some((scheme, _)) = uri.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{
        APPLE_DELTA, APPLE_LL, BASE, DRAFT_LL, edit, ended_base, media_only, media_rules,
    };
    use super::super::report;
    use super::*;

    fn passes(text: &str) -> MediaPlaylist {
        check_media(text).unwrap_or_else(|v| panic!("expected no violations, got:\n{}", report(&v)))
    }

    #[test]
    fn apple_low_latency_example_passes_and_reads_right() {
        let pl = passes(APPLE_LL);
        assert_eq!(pl.version, 6);
        assert_eq!(pl.target_duration, 4);
        assert_eq!(pl.part_target, Some(0.33334));
        assert_eq!(pl.media_sequence, 264);
        assert_eq!(pl.segments.len(), 10);
        assert_eq!(pl.segments[0].msn, 264);
        assert_eq!(
            pl.segments[0].program_date_time.as_deref(),
            Some("2019-02-14T02:13:28.106Z")
        );
        let live = pl.in_progress().unwrap();
        assert_eq!((live.msn, live.parts.len(), live.uri.as_deref()), (273, 3, None));
        assert!(live.parts[0].independent && !live.parts[1].independent);
        assert_eq!(pl.segment(271).unwrap().parts.len(), 12);
        assert_eq!(
            pl.segment(272).unwrap().uri.as_deref(),
            Some("fileSequence272.mp4")
        );
        assert_eq!(pl.preload_hint.as_ref().unwrap().uri, "filePart273.3.mp4");
        assert_eq!(pl.rendition_reports.len(), 2);
        assert_eq!(pl.rendition_reports[1].last_part, Some(1));
        let sc = pl.server_control.unwrap();
        assert!(sc.can_block_reload);
        assert_eq!((sc.part_hold_back, sc.can_skip_until), (Some(1.0), Some(24.0)));
        assert!(!pl.ended && !pl.delta_update);
    }

    #[test]
    fn apple_delta_update_passes() {
        let pl = passes(APPLE_DELTA);
        assert!(pl.delta_update);
        assert_eq!(pl.skipped_segments, 3);
        assert_eq!(pl.segments[0].msn, 267);
        assert_eq!(pl.in_progress().unwrap().parts.len(), 4);
    }

    #[test]
    fn draft_low_latency_example_passes() {
        let pl = passes(DRAFT_LL);
        let midroll = pl.segment(273).unwrap();
        assert!(midroll.discontinuity);
        assert_eq!(midroll.discontinuity_sequence, 1);
        assert_eq!(pl.segment(272).unwrap().discontinuity_sequence, 0);
        // The short last part of 272 is the final part of its segment, so allowed.
        assert_eq!(pl.segment(272).unwrap().parts[1].duration, 0.50001);
    }

    #[test]
    fn base_passes() {
        let pl = passes(BASE);
        assert_eq!(
            pl.segments.iter().map(|s| s.msn).collect::<Vec<_>>(),
            [100, 101, 102, 103, 104]
        );
        assert_eq!(pl.segments[4].line, 27);
        assert_eq!(pl.segments[3].line, 26);
    }

    #[test]
    fn vod_playlist_from_the_draft_passes() {
        let vod = "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXT-X-VERSION:3\n#EXTINF:9.009,\n\
                   http://media.example.com/first.ts\n#EXTINF:9.009,\nhttp://media.example.com/second.ts\n\
                   #EXTINF:3.003,\nhttp://media.example.com/third.ts\n#EXT-X-ENDLIST\n";
        let pl = passes(vod);
        assert!(pl.ended);
        assert_eq!(pl.segments.len(), 3);
    }

    // Every playlist.

    #[test]
    fn extm3u_first() {
        let v = media_only(&edit(BASE, "#EXTM3U\n", ""), rules::EXTM3U);
        assert_eq!(v[0].line, 1);
    }

    #[test]
    fn bom_control_and_whitespace() {
        media_only(&format!("\u{feff}{BASE}"), rules::BOM);
        media_only(&edit(BASE, "100.m4s", "100\u{7}.m4s"), rules::CONTROL_CHARACTER);
        let v = media_only(
            &edit(BASE, "#EXT-X-TARGETDURATION:1", "#EXT-X-TARGETDURATION:1 "),
            rules::WHITESPACE,
        );
        assert_eq!(v[0].line, 3);
    }

    #[test]
    fn playlist_kind() {
        let bad = format!("{BASE}#EXT-X-STREAM-INF:BANDWIDTH=1\n");
        media_only(&bad, rules::PLAYLIST_KIND);
    }

    #[test]
    fn attribute_syntax_and_duplicates() {
        let v = media_only(
            &edit(BASE, "LAST-PART=1", "LAST-PART=1,"),
            rules::ATTRIBUTE_SYNTAX,
        );
        assert_eq!(v[0].line, 30);
        let dup = edit(BASE, "URI=\"103.1.m4s\"", "URI=\"103.1.m4s\",URI=\"103.1.m4s\"");
        let v = media_only(&dup, rules::DUPLICATE_ATTRIBUTE);
        assert_eq!(v[0].line, 21);
    }

    #[test]
    fn duplicate_tag() {
        let v = media_only(
            &edit(
                BASE,
                "#EXT-X-PART-INF",
                "#EXT-X-TARGETDURATION:1\n#EXT-X-PART-INF",
            ),
            rules::DUPLICATE_TAG,
        );
        assert_eq!(v[0].line, 5);
    }

    #[test]
    fn malformed_known_tags_but_unknown_tags_ignored() {
        media_only(
            &edit(BASE, "#EXT-X-MAP", "#EXT-X-INDEPENDENT-SEGMENTS:YES\n#EXT-X-MAP"),
            rules::MALFORMED_TAG,
        );
        media_only(
            &edit(BASE, "#EXT-X-MAP", "#EXT-X-PLAYLIST-TYPE:LIVE\n#EXT-X-MAP"),
            rules::MALFORMED_TAG,
        );
        media_only(
            &edit(BASE, "#EXT-X-MAP", "#EXT-X-START:PRECISE=YES\n#EXT-X-MAP"),
            rules::MALFORMED_TAG,
        );
        passes(&edit(
            BASE,
            "#EXT-X-MAP",
            "#EXT-X-FUTURE-THING:WHATEVER=\"x\n#EXT-X-MAP",
        ));
        passes(&edit(
            BASE,
            "#EXT-X-MAP",
            "#EXT-X-START:TIME-OFFSET=-1.5,PRECISE=YES\n#EXT-X-MAP",
        ));
    }

    #[test]
    fn version_high_enough_for_the_features() {
        // EXT-X-MAP outside an I-frame playlist needs 6.
        let v = media_only(
            &edit(BASE, "#EXT-X-VERSION:6", "#EXT-X-VERSION:5"),
            rules::VERSION,
        );
        assert!(v[0].detail.contains("EXT-X-MAP"), "{}", v[0].detail);
        let v = media_only(&edit(BASE, "#EXT-X-VERSION:6\n", ""), rules::VERSION);
        assert_eq!(v[0].line, 1);
        // EXT-X-SKIP needs 9; with RECENTLY-REMOVED-DATERANGES 10.
        let v = media_only(
            &edit(APPLE_DELTA, "#EXT-X-VERSION:10", "#EXT-X-VERSION:8"),
            rules::VERSION,
        );
        assert!(v[0].detail.contains("EXT-X-SKIP"), "{}", v[0].detail);
        passes(&edit(APPLE_DELTA, "#EXT-X-VERSION:10", "#EXT-X-VERSION:9"));
        let removed = edit(
            APPLE_DELTA,
            "SKIPPED-SEGMENTS=3",
            "SKIPPED-SEGMENTS=3,RECENTLY-REMOVED-DATERANGES=\"\"",
        );
        passes(&removed);
        media_only(
            &edit(&removed, "#EXT-X-VERSION:10", "#EXT-X-VERSION:9"),
            rules::VERSION,
        );
        // Decimal EXTINF needs 3; integer EXTINF works with none.
        let v1 = "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:4,\na.ts\n#EXT-X-ENDLIST\n";
        passes(v1);
        media_only(&edit(v1, "#EXTINF:4,", "#EXTINF:4.0,"), rules::VERSION);
        media_only(
            &edit(BASE, "#EXT-X-VERSION:6", "#EXT-X-VERSION:x"),
            rules::VERSION,
        );
    }

    // Durations.

    #[test]
    fn target_duration_present_and_integer() {
        media_only(
            &edit(BASE, "#EXT-X-TARGETDURATION:1\n", ""),
            rules::TARGET_DURATION,
        );
        media_only(
            &edit(BASE, "#EXT-X-TARGETDURATION:1", "#EXT-X-TARGETDURATION:1.0"),
            rules::TARGET_DURATION,
        );
        media_only(
            &edit(BASE, "#EXT-X-TARGETDURATION:1", "#EXT-X-TARGETDURATION:0"),
            rules::TARGET_DURATION,
        );
    }

    #[test]
    fn segment_duration_rounded_within_target() {
        let v = media_only(
            &edit(BASE, "#EXTINF:1.000,\n100.m4s", "#EXTINF:1.500,\n100.m4s"),
            rules::SEGMENT_DURATION,
        );
        assert_eq!(v[0].line, 10);
        // 1.499 rounds to 1: fine.
        let ok = edit(BASE, "#EXTINF:1.000,\n100.m4s", "#EXTINF:1.499,\n100.m4s");
        let ok = edit(&ok, "T10:00:00.000Z", "T10:00:00.000Z");
        assert!(!media_rules(&ok).contains(&rules::SEGMENT_DURATION));
    }

    #[test]
    fn extinf_well_formed_and_followed_by_a_uri() {
        media_only(
            &edit(BASE, "#EXTINF:1.000,\n100.m4s", "#EXTINF:1.000\n100.m4s"),
            rules::EXTINF,
        );
        media_only(
            &edit(BASE, "#EXTINF:1.000,\n100.m4s", "#EXTINF:-1,\n100.m4s"),
            rules::EXTINF,
        );
        media_only(&edit(BASE, "#EXTINF:1.000,\n100.m4s", "100.m4s"), rules::EXTINF);
        let trailing =
            "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-VERSION:3\n#EXTINF:4.0,\na.ts\n#EXTINF:4.0,\n";
        let v = media_only(trailing, rules::EXTINF);
        assert_eq!(v[0].line, 6);
        passes(
            "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-VERSION:3\n#EXTINF:4.0,A title, with commas  \na.ts\n",
        );
    }

    #[test]
    fn byterange_well_formed_and_continuing() {
        let ranges = "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-VERSION:4\n#EXTINF:4,\n#EXT-X-BYTERANGE:1000@0\n\
                      all.ts\n#EXTINF:4,\n#EXT-X-BYTERANGE:1000\nall.ts\n#EXT-X-ENDLIST\n";
        passes(ranges);
        media_only(
            &edit(ranges, "#EXT-X-BYTERANGE:1000@0", "#EXT-X-BYTERANGE:1000"),
            rules::BYTERANGE,
        );
        media_only(
            &edit(ranges, "#EXT-X-BYTERANGE:1000@0", "#EXT-X-BYTERANGE:x@0"),
            rules::BYTERANGE,
        );
        media_only(
            &edit(ranges, "#EXT-X-VERSION:4", "#EXT-X-VERSION:3"),
            rules::VERSION,
        );
    }

    #[test]
    fn sequence_tags_before_the_first_segment() {
        let moved = edit(BASE, "#EXT-X-MEDIA-SEQUENCE:100\n", "");
        let moved = edit(&moved, "100.m4s\n", "100.m4s\n#EXT-X-MEDIA-SEQUENCE:100\n");
        media_only(&moved, rules::MEDIA_SEQUENCE);
        media_only(
            &edit(BASE, "#EXT-X-MEDIA-SEQUENCE:100", "#EXT-X-MEDIA-SEQUENCE:-1"),
            rules::MEDIA_SEQUENCE,
        );
        let late = edit(BASE, "100.m4s\n", "100.m4s\n#EXT-X-DISCONTINUITY-SEQUENCE:4\n");
        media_only(&late, rules::DISCONTINUITY_SEQUENCE);
        passes(&edit(
            BASE,
            "#EXT-X-MAP",
            "#EXT-X-DISCONTINUITY-SEQUENCE:4\n#EXT-X-MAP",
        ));
    }

    #[test]
    fn ended_playlist_has_no_segment_in_progress() {
        let ended = ended_base();
        assert!(passes(&ended).ended);
        // EXT-X-ENDLIST may sit anywhere (§4.4.3.4), even above the segments.
        passes(&edit(
            &edit(&ended, "#EXT-X-ENDLIST\n", ""),
            "#EXT-X-MAP",
            "#EXT-X-ENDLIST\n#EXT-X-MAP",
        ));
        let unfinished = edit(
            &ended,
            "#EXT-X-ENDLIST\n",
            "#EXT-X-PART:DURATION=0.200,URI=\"104.0.m4s\",INDEPENDENT=YES\n#EXT-X-ENDLIST\n",
        );
        media_only(&unfinished, rules::ENDLIST);
    }

    #[test]
    fn key_and_map_attributes() {
        media_only(
            &edit(BASE, "#EXT-X-MAP", "#EXT-X-KEY:METHOD=AES-128\n#EXT-X-MAP"),
            rules::KEY,
        );
        media_only(
            &edit(
                BASE,
                "#EXT-X-MAP",
                "#EXT-X-KEY:METHOD=ROT13,URI=\"k\"\n#EXT-X-MAP",
            ),
            rules::KEY,
        );
        media_only(
            &edit(BASE, "#EXT-X-MAP", "#EXT-X-KEY:METHOD=NONE,URI=\"k\"\n#EXT-X-MAP"),
            rules::KEY,
        );
        media_only(
            &edit(
                BASE,
                "#EXT-X-MAP",
                "#EXT-X-KEY:METHOD=AES-128,URI=\"k\",IV=0x1234\n#EXT-X-MAP",
            ),
            rules::KEY,
        );
        passes(&edit(
            BASE,
            "#EXT-X-MAP",
            "#EXT-X-KEY:METHOD=AES-128,URI=\"k\",IV=0x0123456789ABCDEF0123456789ABCDEF\n#EXT-X-MAP",
        ));
        media_only(
            &edit(BASE, "URI=\"init.mp4\"", "URI=\"init.mp4\",BYTERANGE=\"100\""),
            rules::MAP,
        );
        media_only(&edit(BASE, "URI=\"init.mp4\"", "BYTERANGE=\"100@0\""), rules::MAP);
        passes(&edit(
            BASE,
            "URI=\"init.mp4\"",
            "URI=\"init.mp4\",BYTERANGE=\"100@0\"",
        ));
    }

    // Dates.

    #[test]
    fn program_date_time_form() {
        let v = media_only(
            &edit(BASE, "10:00:00.000Z", "10:00:00.000"),
            rules::PROGRAM_DATE_TIME,
        );
        assert_eq!(v[0].line, 8);
        media_only(
            &edit(BASE, "2026-05-01T10:00:00.000Z", "yesterday"),
            rules::PROGRAM_DATE_TIME,
        );
        passes(&edit(
            BASE,
            "2026-05-01T10:00:00.000Z",
            "2026-05-01T12:00:00.000+02:00",
        ));
    }

    #[test]
    fn program_date_time_follows_the_durations() {
        let date = |t: &str| {
            edit(
                BASE,
                "#EXTINF:1.000,\n102.m4s",
                &format!("#EXTINF:1.000,\n102.m4s\n#EXT-X-PROGRAM-DATE-TIME:{t}"),
            )
        };
        // 103 starts three seconds after 100.
        passes(&date("2026-05-01T10:00:03.000Z"));
        passes(&date("2026-05-01T10:00:02.600Z")); // a sub-second partial overlap for drift
        passes(&date("2026-05-01T10:00:03.900Z"));
        media_only(
            &date("2026-05-01T10:00:02.000Z"),
            rules::PROGRAM_DATE_TIME_OVERLAP,
        );
        media_only(
            &date("2026-05-01T09:00:00.000Z"),
            rules::PROGRAM_DATE_TIME_OVERLAP,
        );
        media_only(&date("2026-05-01T10:00:04.500Z"), rules::PROGRAM_DATE_TIME_JUMP);
        // After a discontinuity the date may jump forward, but never back into earlier media.
        let jump = |t: &str| {
            edit(
                BASE,
                "#EXTINF:1.000,\n102.m4s",
                &format!("#EXTINF:1.000,\n102.m4s\n#EXT-X-DISCONTINUITY\n#EXT-X-PROGRAM-DATE-TIME:{t}"),
            )
        };
        passes(&jump("2026-05-01T11:00:00.000Z"));
        media_only(
            &jump("2026-05-01T10:00:01.000Z"),
            rules::PROGRAM_DATE_TIME_OVERLAP,
        );
    }

    #[test]
    fn low_latency_playlists_carry_a_program_date() {
        let v = media_only(
            &edit(BASE, "#EXT-X-PROGRAM-DATE-TIME:2026-05-01T10:00:00.000Z\n", ""),
            rules::PROGRAM_DATE_TIME_REQUIRED,
        );
        assert_eq!(v[0].line, 1);
    }

    #[test]
    fn daterange() {
        let with = |attrs: &str| {
            edit(
                BASE,
                "#EXT-X-MAP",
                &format!("#EXT-X-DATERANGE:{attrs}\n#EXT-X-MAP"),
            )
        };
        passes(&with(
            "ID=\"ad1\",START-DATE=\"2026-05-01T10:00:01.000Z\",PLANNED-DURATION=30.0",
        ));
        media_only(&with("START-DATE=\"2026-05-01T10:00:01.000Z\""), rules::DATERANGE);
        media_only(&with("ID=\"ad1\""), rules::DATERANGE);
        media_only(
            &with("ID=\"ad1\",START-DATE=\"2026-05-01T10:00:01.000Z\",DURATION=-1"),
            rules::DATERANGE,
        );
        media_only(&with("ID=\"ad1\",START-DATE=\"2026-05-01\""), rules::DATERANGE);
        let no_date = "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-VERSION:3\n\
                       #EXT-X-DATERANGE:ID=\"x\",START-DATE=\"2026-05-01T10:00:01.000Z\"\n#EXTINF:4.0,\na.ts\n";
        media_only(no_date, rules::DATERANGE);
    }

    // Parts.

    #[test]
    fn part_inf_required_with_parts() {
        let v = media_only(
            &edit(BASE, "#EXT-X-PART-INF:PART-TARGET=0.2\n", ""),
            rules::PART_INF,
        );
        assert_eq!(v[0].line, 12);
        media_only(
            &edit(BASE, "PART-TARGET=0.2", "PART-TARGET=\"0.2\""),
            rules::PART_INF,
        );
    }

    #[test]
    fn part_attributes() {
        let v = media_only(
            &edit(
                BASE,
                "URI=\"103.0.m4s\",INDEPENDENT=YES",
                "URI=\"103.0.m4s\",INDEPENDENT=NO",
            ),
            rules::PART_ATTRIBUTES,
        );
        assert_eq!(v[0].line, 20);
        media_only(
            &edit(BASE, "URI=\"103.1.m4s\"", "URI=\"103.1.m4s\",GAP=TRUE"),
            rules::PART_ATTRIBUTES,
        );
        media_only(
            &edit(
                BASE,
                "DURATION=0.200,URI=\"103.1.m4s\"",
                "DURATION=0.2s,URI=\"103.1.m4s\"",
            ),
            rules::PART_ATTRIBUTES,
        );
        media_only(
            &edit(
                BASE,
                "DURATION=0.200,URI=\"103.1.m4s\"",
                "DURATION=0.200,URI=103.1.m4s",
            ),
            rules::PART_ATTRIBUTES,
        );
        media_only(
            &edit(BASE, "URI=\"103.1.m4s\"", "URI=\"103.1.m4s\",BYTERANGE=\"1-2\""),
            rules::PART_ATTRIBUTES,
        );
        passes(&edit(BASE, "URI=\"103.1.m4s\"", "URI=\"103.1.m4s\",GAP=YES"));
    }

    #[test]
    fn part_byte_ranges_continue_within_their_segment() {
        let ranged = edit(
            BASE,
            "URI=\"103.0.m4s\",INDEPENDENT=YES",
            "URI=\"103.m4s\",BYTERANGE=\"2000@0\",INDEPENDENT=YES",
        );
        let ranged = edit(&ranged, "URI=\"103.1.m4s\"", "URI=\"103.m4s\",BYTERANGE=\"2000\"");
        passes(&ranged);
        let orphan = edit(
            BASE,
            "URI=\"103.0.m4s\",INDEPENDENT=YES",
            "URI=\"103.m4s\",BYTERANGE=\"2000\",INDEPENDENT=YES",
        );
        media_only(&orphan, rules::PART_ATTRIBUTES);
    }

    #[test]
    fn part_duration_at_most_part_target() {
        let long = edit(
            BASE,
            "DURATION=0.200,URI=\"103.3.m4s\"",
            "DURATION=0.250,URI=\"103.3.m4s\"",
        );
        let long = edit(
            &long,
            "DURATION=0.200,URI=\"103.4.m4s\"",
            "DURATION=0.150,URI=\"103.4.m4s\"",
        );
        let v = media_only(&long, rules::PART_DURATION);
        assert_eq!(v[0].line, 23);
        assert!(v[0].detail.contains("0.25"), "{}", v[0].detail);
    }

    #[test]
    fn part_duration_at_least_85_percent_with_the_drafts_exceptions() {
        let short = edit(
            BASE,
            "DURATION=0.200,URI=\"103.1.m4s\"",
            "DURATION=0.150,URI=\"103.1.m4s\"",
        );
        let short = edit(
            &short,
            "#EXTINF:1.000,\n103.m4s",
            "#EXT-X-PART:DURATION=0.050,URI=\"103.5.m4s\"\n#EXTINF:1.000,\n103.m4s",
        );
        let v = media_only(&short, rules::PART_DURATION_MIN);
        assert_eq!(v[0].line, 21);
        // The same short part is fine when INDEPENDENT, GAP, or followed by a GAP part; the last
        // part (103.5, 0.05 s) is always fine.
        passes(&edit(
            &short,
            "URI=\"103.1.m4s\"",
            "URI=\"103.1.m4s\",INDEPENDENT=YES",
        ));
        passes(&edit(&short, "URI=\"103.1.m4s\"", "URI=\"103.1.m4s\",GAP=YES"));
        passes(&edit(&short, "URI=\"103.2.m4s\"", "URI=\"103.2.m4s\",GAP=YES"));
        // 0.17 s is exactly 85 % of 0.2 s.
        let edge = edit(
            BASE,
            "DURATION=0.200,URI=\"103.1.m4s\"",
            "DURATION=0.170,URI=\"103.1.m4s\"",
        );
        let edge = edit(
            &edge,
            "#EXTINF:1.000,\n103.m4s",
            "#EXT-X-PART:DURATION=0.030,URI=\"103.5.m4s\"\n#EXTINF:1.000,\n103.m4s",
        );
        passes(&edge);
        // The last part listed for the segment in progress may be its final one.
        passes(&edit(
            BASE,
            "DURATION=0.200,URI=\"104.1.m4s\"",
            "DURATION=0.100,URI=\"104.1.m4s\"",
        ));
    }

    #[test]
    fn parts_add_up_to_their_segment() {
        let v = media_only(
            &edit(BASE, "#EXT-X-PART:DURATION=0.200,URI=\"103.4.m4s\"\n", ""),
            rules::PART_SUM,
        );
        assert_eq!(v[0].line, 25);
        media_only(
            &edit(BASE, "#EXTINF:1.000,\n103.m4s", "#EXTINF:1.004,\n103.m4s"),
            rules::PART_SUM,
        );
        // Within the printed rounding (six values at 0.0005 each).
        passes(&edit(BASE, "#EXTINF:1.000,\n103.m4s", "#EXTINF:1.0025,\n103.m4s"));
        // The oldest segment that lists parts may have lost its first ones (§6.2.2).
        passes(&edit(
            BASE,
            "#EXT-X-PART:DURATION=0.200,URI=\"102.0.m4s\",INDEPENDENT=YES\n",
            "",
        ));
    }

    #[test]
    fn segment_tags_come_before_the_first_part() {
        let v = media_only(
            &edit(
                BASE,
                "URI=\"103.1.m4s\"",
                "URI=\"103.1.m4s\"\n#EXT-X-DISCONTINUITY",
            ),
            rules::PART_TAG_ORDER,
        );
        assert_eq!(v[0].line, 22);
        passes(&edit(
            BASE,
            "#EXT-X-PART:DURATION=0.200,URI=\"103.0.m4s\"",
            "#EXT-X-DISCONTINUITY\n#EXT-X-PART:DURATION=0.200,URI=\"103.0.m4s\"",
        ));
        let after_extinf = edit(
            BASE,
            "#EXT-X-PART:DURATION=0.200,URI=\"103.4.m4s\"\n#EXTINF:1.000,\n",
            "#EXTINF:1.000,\n#EXT-X-PART:DURATION=0.200,URI=\"103.4.m4s\"\n",
        );
        media_only(&after_extinf, rules::PART_TAG_ORDER);
    }

    #[test]
    fn parts_are_removed_oldest_first() {
        let mut gap = BASE.to_owned();
        for i in 0..5 {
            let tag = if i == 0 { ",INDEPENDENT=YES" } else { "" };
            gap = edit(
                &gap,
                &format!("#EXT-X-PART:DURATION=0.200,URI=\"103.{i}.m4s\"{tag}\n"),
                "",
            );
        }
        let v = media_only(&gap, rules::PART_WINDOW);
        assert_eq!(v[0].line, 21);
    }

    #[test]
    fn parts_older_than_three_target_durations_should_go() {
        let parts: String = (0..5)
            .map(|i| format!("#EXT-X-PART:DURATION=0.200,URI=\"101.{i}.m4s\"\n"))
            .collect();
        let stale = edit(
            BASE,
            "#EXTINF:1.000,\n101.m4s",
            &format!("{parts}#EXTINF:1.000,\n101.m4s"),
        );
        let v = media_only(&stale, rules::PART_STALE);
        assert_eq!(v[0].line, 11);
    }

    #[test]
    fn parts_reach_back_to_part_hold_back() {
        let mut thin = BASE.to_owned();
        for seg in [102, 103] {
            for i in 0..5 {
                let tag = if i == 0 { ",INDEPENDENT=YES" } else { "" };
                thin = edit(
                    &thin,
                    &format!("#EXT-X-PART:DURATION=0.200,URI=\"{seg}.{i}.m4s\"{tag}\n"),
                    "",
                );
            }
        }
        thin = edit(&thin, "#EXT-X-PART:DURATION=0.200,URI=\"104.1.m4s\"\n", "");
        thin = edit(&thin, "104.2.m4s", "104.1.m4s");
        media_only(&thin, rules::PART_COVERAGE);
    }

    // Server control.

    #[test]
    fn server_control_attributes() {
        media_only(
            &edit(BASE, "CAN-BLOCK-RELOAD=YES", "CAN-BLOCK-RELOAD=NO"),
            rules::SERVER_CONTROL,
        );
        media_only(
            &edit(BASE, "CAN-SKIP-UNTIL=6.0", "CAN-SKIP-UNTIL=six"),
            rules::SERVER_CONTROL,
        );
        passes(&edit(
            BASE,
            "CAN-BLOCK-RELOAD=YES",
            "CAN-BLOCK-RELOAD=YES,CAN-SKIP-DATERANGES=YES",
        ));
        let no_until = edit(BASE, "CAN-SKIP-UNTIL=6.0", "CAN-SKIP-DATERANGES=YES");
        media_only(&no_until, rules::SERVER_CONTROL);
    }

    #[test]
    fn part_hold_back_twice_the_part_target() {
        let v = media_only(
            &edit(BASE, "PART-HOLD-BACK=0.6", "PART-HOLD-BACK=0.3"),
            rules::PART_HOLD_BACK,
        );
        assert_eq!(v[0].line, 4);
        media_only(&edit(BASE, "PART-HOLD-BACK=0.6,", ""), rules::PART_HOLD_BACK);
        media_only(
            &edit(
                BASE,
                "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=0.6,CAN-SKIP-UNTIL=6.0\n",
                "",
            ),
            rules::PART_HOLD_BACK,
        );
    }

    #[test]
    fn part_hold_back_three_times_is_its_own_rule() {
        let v = media_only(
            &edit(BASE, "PART-HOLD-BACK=0.6", "PART-HOLD-BACK=0.5"),
            rules::PART_HOLD_BACK_3X,
        );
        assert_eq!(v[0].line, 4);
        // 2× passes the MUST, so a test that accepts the SHOULD can filter this id out.
        let (_, v) = inspect_media(&edit(BASE, "PART-HOLD-BACK=0.6", "PART-HOLD-BACK=0.4"));
        assert_eq!(
            v.iter().map(|v| v.rule).collect::<Vec<_>>(),
            [rules::PART_HOLD_BACK_3X]
        );
    }

    #[test]
    fn hold_back_and_skip_boundary_against_the_target_duration() {
        media_only(
            &edit(BASE, "CAN-BLOCK-RELOAD=YES", "CAN-BLOCK-RELOAD=YES,HOLD-BACK=2.5"),
            rules::HOLD_BACK,
        );
        passes(&edit(
            BASE,
            "CAN-BLOCK-RELOAD=YES",
            "CAN-BLOCK-RELOAD=YES,HOLD-BACK=3.0",
        ));
        media_only(
            &edit(BASE, "CAN-SKIP-UNTIL=6.0", "CAN-SKIP-UNTIL=5.9"),
            rules::CAN_SKIP_UNTIL,
        );
    }

    // Delta updates.

    #[test]
    fn skip_needs_can_skip_until_and_comes_first() {
        let v = media_only(&edit(APPLE_DELTA, ",CAN-SKIP-UNTIL=24.0", ""), rules::SKIP);
        assert_eq!(v[0].line, 9);
        let late = edit(APPLE_DELTA, "#EXT-X-SKIP:SKIPPED-SEGMENTS=3\n", "");
        let late = edit(
            &late,
            "fileSequence267.mp4\n",
            "fileSequence267.mp4\n#EXT-X-SKIP:SKIPPED-SEGMENTS=3\n",
        );
        media_only(&late, rules::SKIP);
        media_only(&edit(APPLE_DELTA, "SKIPPED-SEGMENTS=3", "SKIPPED=3"), rules::SKIP);
        let twice = edit(
            APPLE_DELTA,
            "#EXT-X-SKIP:SKIPPED-SEGMENTS=3\n",
            "#EXT-X-SKIP:SKIPPED-SEGMENTS=3\n#EXT-X-SKIP:SKIPPED-SEGMENTS=3\n",
        );
        media_only(&twice, rules::SKIP);
    }

    #[test]
    fn delta_update_skips_exactly_past_the_skip_boundary() {
        // Skipping 267 too leaves 20 s after the skip: 267 ended within the 24 s boundary.
        let more = edit(APPLE_DELTA, "SKIPPED-SEGMENTS=3", "SKIPPED-SEGMENTS=4");
        let more = edit(&more, "#EXTINF:4.00008,\nfileSequence267.mp4\n", "");
        media_only(&more, rules::SKIP_BOUNDARY);
        // Keeping 265 and 266 keeps a segment that ends 28 s before the end: beyond the boundary.
        let fewer = edit(APPLE_DELTA, "SKIPPED-SEGMENTS=3", "SKIPPED-SEGMENTS=1");
        let kept = "#EXTINF:4.00008,\nfileSequence265.mp4\n#EXTINF:4.00008,\nfileSequence266.mp4\n";
        let fewer = edit(
            &fewer,
            "#EXTINF:4.00008,\nfileSequence267.mp4\n",
            &format!("{kept}#EXTINF:4.00008,\nfileSequence267.mp4\n"),
        );
        let v = media_only(&fewer, rules::SKIP_BOUNDARY);
        assert!(v[0].detail.contains("segment 265"), "{}", v[0].detail);
        // 266 would end 24.00048 s before the end: at the boundary within a millisecond, so
        // keeping it is as right as skipping it.
        let edge = edit(APPLE_DELTA, "SKIPPED-SEGMENTS=3", "SKIPPED-SEGMENTS=2");
        passes(&edit(
            &edge,
            "#EXTINF:4.00008,\nfileSequence267.mp4\n",
            "#EXTINF:4.00008,\nfileSequence266.mp4\n#EXTINF:4.00008,\nfileSequence267.mp4\n",
        ));
    }

    // Hints and reports.

    #[test]
    fn preload_hint_rules() {
        let v = media_only(
            &edit(BASE, "TYPE=PART,URI=\"104.2.m4s\"", "URI=\"104.2.m4s\""),
            rules::PRELOAD_HINT,
        );
        assert_eq!(v[0].line, 29);
        // Before the last part.
        let early = edit(BASE, "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"104.2.m4s\"\n", "");
        let early = edit(
            &early,
            "#EXT-X-PART:DURATION=0.200,URI=\"104.1.m4s\"\n",
            "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"104.2.m4s\"\n#EXT-X-PART:DURATION=0.200,URI=\"104.1.m4s\"\n",
        );
        media_only(&early, rules::PRELOAD_HINT);
        // Twice, or naming a part that is already listed.
        let twice = edit(
            BASE,
            "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"104.2.m4s\"\n",
            "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"104.2.m4s\"\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"104.3.m4s\"\n",
        );
        media_only(&twice, rules::PRELOAD_HINT);
        media_only(
            &edit(BASE, "URI=\"104.2.m4s\"", "URI=\"104.1.m4s\""),
            rules::PRELOAD_HINT,
        );
        // A MAP hint next to the PART hint, and a hint of an unknown TYPE (ignored by clients).
        passes(&edit(
            BASE,
            "URI=\"104.2.m4s\"",
            "URI=\"104.2.m4s\"\n#EXT-X-PRELOAD-HINT:TYPE=MAP,URI=\"init2.mp4\"",
        ));
        passes(&edit(
            BASE,
            "URI=\"104.2.m4s\"",
            "URI=\"104.2.m4s\"\n#EXT-X-PRELOAD-HINT:TYPE=FUTURE,URI=\"x\"",
        ));
        let only_unknown = edit(
            BASE,
            "TYPE=PART,URI=\"104.2.m4s\"",
            "TYPE=FUTURE,URI=\"104.2.m4s\"",
        );
        media_only(&only_unknown, rules::PRELOAD_HINT_REQUIRED);
        // Byte-range hints as in Apple's example.
        passes(&edit(
            BASE,
            "URI=\"104.2.m4s\"",
            "URI=\"104.m4s\",BYTERANGE-START=61000",
        ));
    }

    #[test]
    fn live_playlists_with_parts_hint_the_next_one() {
        let v = media_only(
            &edit(BASE, "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"104.2.m4s\"\n", ""),
            rules::PRELOAD_HINT_REQUIRED,
        );
        assert_eq!(v[0].line, 28);
    }

    #[test]
    fn rendition_reports() {
        media_only(
            &edit(
                BASE,
                "URI=\"../720p/index.m3u8\"",
                "URI=\"https://cdn.example/720p/index.m3u8\"",
            ),
            rules::RENDITION_REPORT,
        );
        media_only(
            &edit(BASE, "URI=\"../720p/index.m3u8\",", ""),
            rules::RENDITION_REPORT,
        );
        media_only(
            &edit(BASE, "LAST-MSN=104", "LAST-MSN=1.5"),
            rules::RENDITION_REPORT,
        );
        let v = media_only(&edit(BASE, ",LAST-PART=1", ""), rules::RENDITION_REPORT_OMITTED);
        assert_eq!(v[0].line, 30);
        media_only(&edit(BASE, "LAST-MSN=104,", ""), rules::RENDITION_REPORT_OMITTED);
    }

    // Robustness.

    #[test]
    fn garbage_and_truncations_never_panic() {
        for text in [APPLE_LL, APPLE_DELTA, DRAFT_LL, BASE] {
            let mut cut = 0;
            while cut < text.len() {
                let _ = inspect_media(&text[..cut]);
                cut += 1;
                while !text.is_char_boundary(cut) {
                    cut += 1;
                }
            }
        }
        for garbage in [
            "",
            "\n\n\n",
            "#EXTM3U\n#EXT-X-PART:",
            "#EXTM3U\n#EXTINF:,\n",
            "#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:18446744073709551615\n#EXT-X-SKIP:SKIPPED-SEGMENTS=18446744073709551615\n#EXTINF:1,\na\n",
            "#EXTM3U\n#EXT-X-TARGETDURATION:18446744073709551615\n#EXTINF:99999999999999999999999999999999999999.0,\na\n",
            "#EXTM3U\n#EXT-X-PART-INF:PART-TARGET=0.0000000000000001\n#EXT-X-PART:DURATION=1e400,URI=\"a\"\n",
            "#EXTM3U\n#EXT-X-PROGRAM-DATE-TIME:9999-12-31T23:59:60.999999999999+23:59\n#EXTINF:1,\na\n#EXT-X-PROGRAM-DATE-TIME:0000-01-01T00:00:00Z\n#EXTINF:1,\nb\n",
            "\u{feff}\u{feff}#EXTM3U\r\n\r\r\n#\u{0}",
        ] {
            let _ = inspect_media(garbage);
        }
    }

    #[test]
    fn rechecking_is_stable() {
        for text in [APPLE_LL, APPLE_DELTA, DRAFT_LL, BASE] {
            assert_eq!(inspect_media(text), inspect_media(text));
        }
    }
}

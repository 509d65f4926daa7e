//! Multivariant Playlist checks: variants, their URI lines and CODECS, and the EXT-X-MEDIA
//! Rendition Groups they refer to.

use std::collections::HashMap;

use super::attributes::{AttrList, AttrValue};
use super::codecs::{self, CodecKind};
use super::lines::{LineKind, scan};
use super::tags::Tags;
use super::{MediaType, Multivariant, Rendition, Variant, Violation, decimal_float, rules};

/// Checks a Multivariant Playlist against every rule; the model if none is broken.
pub fn check_multivariant(text: &str) -> Result<Multivariant, Vec<Violation>> {
    let (playlist, violations) = inspect_multivariant(text);
    if violations.is_empty() {
        Ok(playlist)
    } else {
        Err(violations)
    }
}

/// The model as far as it could be read, and every violation, sorted by line.
pub fn inspect_multivariant(text: &str) -> (Multivariant, Vec<Violation>) {
    let mut b = Builder::default();
    let lines = scan(text, &mut b.t.out);
    for line in &lines {
        let n = line.number;
        match line.kind {
            LineKind::Blank | LineKind::Comment => {}
            LineKind::Uri(uri) => match b.pending.take() {
                Some(mut v) => {
                    v.uri = uri.to_owned();
                    b.mv.variants.push(v);
                }
                None => b.t.flag(
                    n,
                    rules::STREAM_INF_URI,
                    "a URI line in a Multivariant Playlist must follow an EXT-X-STREAM-INF",
                ),
            },
            LineKind::Tag { name, value } => {
                if let Some(v) = b.pending.take() {
                    let detail = format!(
                        "EXT-X-STREAM-INF at line {} is not followed by its URI line",
                        v.line
                    );
                    b.t.flag(v.line, rules::STREAM_INF_URI, detail);
                }
                b.tag(n, name, value);
            }
        }
    }
    b.finish()
}

#[derive(Default)]
struct Builder {
    t: Tags,
    mv: Multivariant,
    /// An EXT-X-STREAM-INF waiting for its URI line.
    pending: Option<Variant>,
}

/// Tags of Media Playlists, which must not appear here (§4.1, §4.4.4, §4.4.6).
const MEDIA_TAGS: &[&str] = &[
    "EXT-X-TARGETDURATION",
    "EXT-X-MEDIA-SEQUENCE",
    "EXT-X-DISCONTINUITY-SEQUENCE",
    "EXT-X-ENDLIST",
    "EXT-X-PLAYLIST-TYPE",
    "EXT-X-I-FRAMES-ONLY",
    "EXT-X-PART-INF",
    "EXT-X-SERVER-CONTROL",
    "EXTINF",
    "EXT-X-BYTERANGE",
    "EXT-X-DISCONTINUITY",
    "EXT-X-KEY",
    "EXT-X-MAP",
    "EXT-X-PROGRAM-DATE-TIME",
    "EXT-X-GAP",
    "EXT-X-BITRATE",
    "EXT-X-PART",
    "EXT-X-DATERANGE",
    "EXT-X-SKIP",
    "EXT-X-PRELOAD-HINT",
    "EXT-X-RENDITION-REPORT",
];

impl Builder {
    fn tag(&mut self, n: usize, name: &str, value: Option<&str>) {
        match name {
            "EXTM3U" => {}
            "EXT-X-VERSION" => self.t.version(n, value),
            "EXT-X-INDEPENDENT-SEGMENTS" => {
                if self.t.once(n, "EXT-X-INDEPENDENT-SEGMENTS") {
                    self.mv.independent_segments = true;
                }
                self.t.no_value(n, name, value);
            }
            "EXT-X-START" => self.t.start(n, value),
            "EXT-X-DEFINE" => self.t.define(n, value, true),
            "EXT-X-STREAM-INF" => self.pending = self.stream_inf(n, value, false),
            "EXT-X-I-FRAME-STREAM-INF" => {
                if let Some(v) = self.stream_inf(n, value, true) {
                    self.mv.i_frame_variants.push(v);
                }
            }
            "EXT-X-MEDIA" => self.media(n, value),
            "EXT-X-SESSION-DATA" => self.session_data(n, value),
            "EXT-X-SESSION-KEY" => self.session_key(n, value),
            "EXT-X-CONTENT-STEERING" => self.content_steering(n, value),
            _ if MEDIA_TAGS.contains(&name) => {
                let detail =
                    format!("#{name} is a Media Playlist tag; it must not appear in a Multivariant Playlist");
                self.t.flag(n, rules::PLAYLIST_KIND, detail);
            }
            _ => {} // §6.3.1: unknown tags are ignored
        }
    }

    /// EXT-X-STREAM-INF (§4.4.6.2) or EXT-X-I-FRAME-STREAM-INF (§4.4.6.3).
    fn stream_inf(&mut self, n: usize, value: Option<&str>, i_frames: bool) -> Option<Variant> {
        let tag = if i_frames {
            "EXT-X-I-FRAME-STREAM-INF"
        } else {
            "EXT-X-STREAM-INF"
        };
        let Some(list) = self.t.attrs(n, tag, value) else {
            // Still expect the URI line, so it is not reported as a stray.
            return (!i_frames).then(|| Variant {
                line: n,
                ..Variant::default()
            });
        };
        let at = (n, rules::STREAM_INF, tag);
        let mut v = Variant {
            line: n,
            bandwidth: self
                .t
                .read(at, &list, "BANDWIDTH", true, AttrValue::as_integer)
                .unwrap_or(0),
            average_bandwidth: self
                .t
                .read(at, &list, "AVERAGE-BANDWIDTH", false, AttrValue::as_integer),
            ..Variant::default()
        };
        if i_frames {
            v.uri = self.t.quoted(at, &list, "URI", true).unwrap_or_default();
        }
        if let Some(avg) = v
            .average_bandwidth
            .filter(|avg| *avg > v.bandwidth && list.get("BANDWIDTH").is_some())
        {
            let detail = format!(
                "AVERAGE-BANDWIDTH {avg} is more than BANDWIDTH {}; an average cannot exceed the peak",
                v.bandwidth
            );
            self.t.flag(n, rules::AVERAGE_BANDWIDTH, detail);
        }
        self.t.read(at, &list, "SCORE", false, |s| match s.as_float()? {
            x if x > 0.0 => Ok(()),
            _ => Err("SCORE must be positive".to_owned()),
        });
        self.t
            .one_of(at, &list, "HDCP-LEVEL", &["TYPE-0", "TYPE-1", "NONE"]);
        self.t.one_of(at, &list, "VIDEO-RANGE", &["SDR", "HLG", "PQ"]);
        for name in [
            "SUPPLEMENTAL-CODECS",
            "ALLOWED-CPC",
            "REQ-VIDEO-LAYOUT",
            "STABLE-VARIANT-ID",
            "PATHWAY-ID",
        ] {
            self.t.quoted(at, &list, name, false);
        }
        v.resolution = self.t.read(
            (n, rules::RESOLUTION, tag),
            &list,
            "RESOLUTION",
            false,
            |r| match r.as_resolution()? {
                (0, _) | (_, 0) => Err("width and height must be positive".to_owned()),
                wh => Ok(wh),
            },
        );
        if !i_frames {
            v.frame_rate = self.frame_rate(n, &list);
            v.audio = self.t.quoted(at, &list, "AUDIO", false);
            v.subtitles = self.t.quoted(at, &list, "SUBTITLES", false);
            v.closed_captions = self.t.read(at, &list, "CLOSED-CAPTIONS", false, |c| match c {
                AttrValue::Quoted(s) if !s.is_empty() => Ok(s.clone()),
                AttrValue::Enumerated(s) if s == "NONE" => Ok(s.clone()),
                other => Err(format!("expected a quoted group id or NONE, found {other}")),
            });
        }
        v.video = self.t.quoted(at, &list, "VIDEO", false);
        self.codecs(n, tag, &list, &mut v);
        Some(v)
    }

    /// FRAME-RATE: a decimal-floating-point rounded to three decimal places.
    fn frame_rate(&mut self, n: usize, list: &AttrList<'_>) -> Option<f64> {
        let attr = list.get("FRAME-RATE")?;
        let decimals = attr.raw.split_once('.').map_or(0, |(_, f)| f.len());
        match decimal_float(attr.raw) {
            Some((rate, _)) if decimals <= 3 && rate > 0.0 => Some(rate),
            Some(_) if decimals > 3 => {
                let detail = format!("FRAME-RATE={} has more than three decimal places", attr.raw);
                self.t.flag(n, rules::FRAME_RATE, detail);
                None
            }
            _ => {
                let detail = format!("FRAME-RATE={} is not a positive decimal-floating-point", attr.raw);
                self.t.flag(n, rules::FRAME_RATE, detail);
                None
            }
        }
    }

    /// CODECS: present, each entry RFC 6381; RESOLUTION for video; an audio codec with AUDIO.
    fn codecs(&mut self, n: usize, tag: &str, list: &AttrList<'_>, v: &mut Variant) {
        let at = (n, rules::CODECS, tag);
        let Some(text) = self
            .t
            .read(at, list, "CODECS", false, |c| c.as_quoted().map(str::to_owned))
        else {
            if list.get("CODECS").is_none() {
                let detail = format!("#{tag} has no CODECS; every variant should declare its codecs");
                self.t.flag(n, rules::CODECS, detail);
            }
            return;
        };
        let mut kinds = Vec::new();
        for entry in text.split(',') {
            match codecs::check(entry) {
                Ok(kind) => kinds.push(kind),
                Err(e) => self.t.flag(n, rules::CODECS, format!("CODECS=\"{text}\": {e}")),
            }
            v.codecs.push(entry.to_owned());
        }
        let video = kinds.contains(&CodecKind::Video);
        if video && v.resolution.is_none() && list.get("RESOLUTION").is_none() {
            let detail = format!("#{tag} lists a video codec but has no RESOLUTION");
            self.t.flag(n, rules::RESOLUTION, detail);
        }
        if v.audio.is_some() && !kinds.contains(&CodecKind::Audio) && kinds.len() == v.codecs.len() {
            let detail = format!(
                "CODECS=\"{text}\" lists no audio codec, but the variant uses the AUDIO group {:?}; CODECS \
                 must list every format of its Renditions",
                v.audio.as_deref().unwrap_or_default()
            );
            self.t.flag(n, rules::CODECS, detail);
        }
    }

    /// EXT-X-MEDIA (§4.4.6.1).
    fn media(&mut self, n: usize, value: Option<&str>) {
        let Some(list) = self.t.attrs(n, "EXT-X-MEDIA", value) else {
            return;
        };
        let at = (n, rules::MEDIA, "EXT-X-MEDIA");
        if list.get("TYPE").is_none() {
            self.t
                .flag(n, at.1, "#EXT-X-MEDIA lacks the required TYPE attribute");
        }
        let types = ["AUDIO", "VIDEO", "SUBTITLES", "CLOSED-CAPTIONS"];
        let media_type = match self.t.one_of(at, &list, "TYPE", &types).as_deref() {
            Some("AUDIO") => Some(MediaType::Audio),
            Some("VIDEO") => Some(MediaType::Video),
            Some("SUBTITLES") => Some(MediaType::Subtitles),
            Some("CLOSED-CAPTIONS") => Some(MediaType::ClosedCaptions),
            _ => None,
        };
        let group_id = self.t.quoted(at, &list, "GROUP-ID", true);
        let name = self.t.quoted(at, &list, "NAME", true);
        let uri = self.t.quoted(at, &list, "URI", false);
        let language = self.t.quoted(at, &list, "LANGUAGE", false);
        self.t.quoted(at, &list, "ASSOC-LANGUAGE", false);
        self.t.quoted(at, &list, "CHARACTERISTICS", false);
        self.t.quoted(at, &list, "STABLE-RENDITION-ID", false);
        let default = self.t.one_of(at, &list, "DEFAULT", &["YES", "NO"]).as_deref() == Some("YES");
        let autoselect = self.t.one_of(at, &list, "AUTOSELECT", &["YES", "NO"]);
        self.t.one_of(at, &list, "FORCED", &["YES", "NO"]);
        let channels = self.t.read(at, &list, "CHANNELS", false, |c| {
            let s = c.as_quoted()?;
            let count = s.split('/').next().unwrap_or_default();
            if super::decimal_integer(count).is_some() {
                Ok(s.to_owned())
            } else {
                Err(format!(
                    "the first CHANNELS parameter must be a channel count, found {count:?}"
                ))
            }
        });
        self.t.read(at, &list, "BIT-DEPTH", false, AttrValue::as_integer);
        self.t
            .read(at, &list, "SAMPLE-RATE", false, AttrValue::as_integer);
        let instream = self.t.quoted(at, &list, "INSTREAM-ID", false);
        if default && autoselect.as_deref() == Some("NO") {
            self.t.flag(
                n,
                at.1,
                "DEFAULT=YES requires AUTOSELECT=YES when AUTOSELECT is present",
            );
        }
        let Some(media_type) = media_type else {
            return;
        };
        let type_name = media_type.name();
        if list.get("FORCED").is_some() && media_type != MediaType::Subtitles {
            self.t
                .flag(n, at.1, format!("FORCED is only for SUBTITLES, not {type_name}"));
        }
        if media_type != MediaType::Audio {
            for only_audio in ["CHANNELS", "BIT-DEPTH", "SAMPLE-RATE"] {
                if list.get(only_audio).is_some() {
                    self.t.flag(
                        n,
                        at.1,
                        format!("{only_audio} is only for AUDIO, not {type_name}"),
                    );
                }
            }
        }
        match media_type {
            MediaType::ClosedCaptions => {
                if uri.is_some() {
                    self.t.flag(n, at.1, "TYPE=CLOSED-CAPTIONS must not have a URI");
                }
                match instream.as_deref() {
                    None => self.t.flag(n, at.1, "TYPE=CLOSED-CAPTIONS requires INSTREAM-ID"),
                    Some("CC1" | "CC2" | "CC3" | "CC4") => {}
                    Some(id)
                        if id
                            .strip_prefix("SERVICE")
                            .and_then(super::decimal_integer)
                            .is_some_and(|k| (1..=63).contains(&k)) =>
                    {
                        self.t.require(7, "INSTREAM-ID=\"SERVICEn\" in EXT-X-MEDIA", n);
                    }
                    Some(id) => {
                        let detail = format!("INSTREAM-ID {id:?} is not CC1-CC4 or SERVICE1-SERVICE63");
                        self.t.flag(n, at.1, detail);
                    }
                }
            }
            _ if instream.is_some() => {
                self.t
                    .require(13, "INSTREAM-ID on a non-CLOSED-CAPTIONS EXT-X-MEDIA", n);
            }
            MediaType::Subtitles if uri.is_none() => {
                self.t.flag(n, at.1, "TYPE=SUBTITLES requires a URI");
            }
            MediaType::Audio if uri.is_none() => {
                let detail = "this audio Rendition has no URI (its audio is muxed into the variants); \
                              every audio Rendition should have its own Media Playlist";
                self.t.flag(n, rules::MEDIA_AUDIO_URI, detail);
            }
            _ => {}
        }
        if let (Some(group_id), Some(name)) = (group_id, name) {
            self.mv.renditions.push(Rendition {
                line: n,
                media_type,
                group_id,
                name,
                uri,
                language,
                default,
                autoselect: autoselect.as_deref() == Some("YES"),
                channels,
            });
        }
    }

    /// EXT-X-CONTENT-STEERING (§4.4.6.6).
    fn content_steering(&mut self, n: usize, value: Option<&str>) {
        if !self.t.once(n, "EXT-X-CONTENT-STEERING") {
            return;
        }
        if let Some(list) = self.t.attrs(n, "EXT-X-CONTENT-STEERING", value) {
            let at = (n, rules::MALFORMED_TAG, "EXT-X-CONTENT-STEERING");
            self.t.quoted(at, &list, "SERVER-URI", true);
            self.t.quoted(at, &list, "PATHWAY-ID", false);
        }
    }

    /// EXT-X-SESSION-DATA (§4.4.6.4).
    fn session_data(&mut self, n: usize, value: Option<&str>) {
        let Some(list) = self.t.attrs(n, "EXT-X-SESSION-DATA", value) else {
            return;
        };
        let at = (n, rules::MALFORMED_TAG, "EXT-X-SESSION-DATA");
        self.t.quoted(at, &list, "DATA-ID", true);
        self.t.quoted(at, &list, "LANGUAGE", false);
        self.t.one_of(at, &list, "FORMAT", &["JSON", "RAW"]);
        self.t
            .read(at, &list, "VALUE", false, |v| v.as_quoted_or_empty().map(|_| ()));
        self.t.quoted(at, &list, "URI", false);
        if list.get("VALUE").is_some() == list.get("URI").is_some() {
            self.t
                .flag(n, at.1, "EXT-X-SESSION-DATA needs either VALUE or URI, not both");
        }
    }

    /// EXT-X-SESSION-KEY (§4.4.6.5).
    fn session_key(&mut self, n: usize, value: Option<&str>) {
        let Some(list) = self.t.attrs(n, "EXT-X-SESSION-KEY", value) else {
            return;
        };
        let at = (n, rules::MALFORMED_TAG, "EXT-X-SESSION-KEY");
        if list.get("METHOD").is_none() {
            self.t
                .flag(n, at.1, "#EXT-X-SESSION-KEY lacks the required METHOD attribute");
        }
        let methods = ["AES-128", "SAMPLE-AES", "SAMPLE-AES-CTR", "AES-256-GCM"];
        self.t.one_of(at, &list, "METHOD", &methods);
        self.t.quoted(at, &list, "URI", true);
    }

    fn finish(mut self) -> (Multivariant, Vec<Violation>) {
        if let Some(v) = self.pending.take() {
            let detail = format!(
                "EXT-X-STREAM-INF at line {} is not followed by its URI line",
                v.line
            );
            self.t.flag(v.line, rules::STREAM_INF_URI, detail);
        }
        if self.mv.variants.is_empty() {
            self.t.flag(
                1,
                rules::STREAM_INF,
                "a Multivariant Playlist needs at least one EXT-X-STREAM-INF",
            );
        }
        if !self.mv.independent_segments {
            self.t.flag(
                1,
                rules::INDEPENDENT_SEGMENTS,
                "EXT-X-INDEPENDENT-SEGMENTS is missing; Apple's authoring rules ask for it",
            );
        }
        self.groups();
        self.mv.version = self.t.check_version();
        (self.mv, self.t.out.into_sorted())
    }

    /// §4.4.6.1.1 and the group references of §4.4.6.2.
    fn groups(&mut self) {
        let mut groups: HashMap<(MediaType, &str), Vec<&Rendition>> = HashMap::new();
        for r in &self.mv.renditions {
            groups.entry((r.media_type, &r.group_id)).or_default().push(r);
        }
        let mut found = Vec::new();
        for ((media_type, group), members) in &groups {
            let mut names: HashMap<&str, usize> = HashMap::new();
            for r in members {
                if let Some(first) = names.insert(&r.name, r.line) {
                    found.push((
                        r.line,
                        rules::MEDIA,
                        format!(
                            "{} group {group:?} has NAME {:?} twice (also line {first})",
                            media_type.name(),
                            r.name
                        ),
                    ));
                }
            }
            let defaults: Vec<usize> = members.iter().filter(|r| r.default).map(|r| r.line).collect();
            if defaults.len() > 1 {
                found.push((
                    defaults[1],
                    rules::MEDIA,
                    format!(
                        "{} group {group:?} has more than one DEFAULT=YES member (lines {defaults:?})",
                        media_type.name()
                    ),
                ));
            }
        }
        let none_cc = self
            .mv
            .variants
            .iter()
            .any(|v| v.closed_captions.as_deref() == Some("NONE"));
        for v in &self.mv.variants {
            let refs = [
                (MediaType::Audio, "AUDIO", &v.audio),
                (MediaType::Video, "VIDEO", &v.video),
                (MediaType::Subtitles, "SUBTITLES", &v.subtitles),
                (MediaType::ClosedCaptions, "CLOSED-CAPTIONS", &v.closed_captions),
            ];
            for (media_type, attr, group) in refs {
                let Some(group) = group.as_deref() else {
                    continue;
                };
                if media_type == MediaType::ClosedCaptions && group == "NONE" {
                    continue;
                }
                if !groups.contains_key(&(media_type, group)) {
                    found.push((
                        v.line,
                        rules::MEDIA_GROUP,
                        format!("{attr}={group:?} names no EXT-X-MEDIA with TYPE={attr} and that GROUP-ID"),
                    ));
                }
            }
            if none_cc && v.closed_captions.as_deref() != Some("NONE") {
                found.push((
                    v.line,
                    rules::MEDIA_GROUP,
                    "some variant has CLOSED-CAPTIONS=NONE, so every variant must".to_owned(),
                ));
            }
        }
        for v in &self.mv.i_frame_variants {
            if let Some(group) = v
                .video
                .as_deref()
                .filter(|g| !groups.contains_key(&(MediaType::Video, *g)))
            {
                found.push((
                    v.line,
                    rules::MEDIA_GROUP,
                    format!("VIDEO={group:?} names no EXT-X-MEDIA with TYPE=VIDEO and that GROUP-ID"),
                ));
            }
        }
        for (line, rule, detail) in found {
            self.t.flag(line, rule, detail);
        }
    }
}

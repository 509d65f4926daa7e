//! Multivariant Playlist checks: variants, their URI lines and CODECS, and the EXT-X-MEDIA
//! Rendition Groups they refer to.

use std::collections::{HashMap, HashSet};

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
    /// GROUP-IDs of EXT-X-MEDIA tags whose TYPE could not be read.
    unreadable_groups: HashSet<String>,
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
            // Reported above; keep variants that name its group from being reported as well.
            self.unreadable_groups.extend(group_id);
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
        if let Some(group_id) = group_id {
            self.mv.renditions.push(Rendition {
                line: n,
                media_type,
                group_id,
                name: name.unwrap_or_default(),
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
                if (media_type == MediaType::ClosedCaptions && group == "NONE")
                    || self.unreadable_groups.contains(group)
                {
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

#[cfg(test)]
mod tests {
    use super::super::fixtures::{BASE, LADDER, edit, multivariant_only};
    use super::super::report;
    use super::*;

    fn passes(text: &str) -> Multivariant {
        check_multivariant(text).unwrap_or_else(|v| panic!("expected no violations, got:\n{}", report(&v)))
    }

    /// The draft's §9.6 (alternative audio) with its condensed CODECS written out, resolutions,
    /// and EXT-X-INDEPENDENT-SEGMENTS.
    const ALTERNATIVE_AUDIO: &str = r#"#EXTM3U
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aac",NAME="English",DEFAULT=YES,AUTOSELECT=YES,LANGUAGE="en",URI="main/english-audio.m3u8"
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aac",NAME="Deutsch",DEFAULT=NO,AUTOSELECT=YES,LANGUAGE="de",URI="main/german-audio.m3u8"
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aac",NAME="Commentary",DEFAULT=NO,AUTOSELECT=NO,LANGUAGE="en",URI="commentary/audio-only.m3u8"
#EXT-X-STREAM-INF:BANDWIDTH=1280000,CODECS="avc1.42e00a,mp4a.40.2",RESOLUTION=416x234,AUDIO="aac"
low/video-only.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=2560000,CODECS="avc1.4d401e,mp4a.40.2",RESOLUTION=640x360,AUDIO="aac"
mid/video-only.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=7680000,CODECS="avc1.64001f,mp4a.40.2",RESOLUTION=1280x720,AUDIO="aac"
hi/video-only.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=65000,CODECS="mp4a.40.5",AUDIO="aac"
main/english-audio.m3u8
"#;

    #[test]
    fn ladder_passes_and_reads_right() {
        let mv = passes(LADDER);
        assert_eq!(mv.version, 6);
        assert!(mv.independent_segments);
        assert_eq!(mv.variants.len(), 2);
        let top = &mv.variants[0];
        assert_eq!(top.uri, "720p/index.m3u8");
        assert_eq!(
            (top.bandwidth, top.average_bandwidth),
            (2_500_000, Some(2_000_000))
        );
        assert_eq!(top.codecs, ["avc1.64001f", "mp4a.40.2"]);
        assert_eq!(top.resolution, Some((1280, 720)));
        assert_eq!(top.frame_rate, Some(29.97));
        assert_eq!(top.audio.as_deref(), Some("aac"));
        assert_eq!(mv.renditions.len(), 1);
        let audio = &mv.renditions[0];
        assert_eq!(
            (audio.media_type, audio.group_id.as_str(), audio.name.as_str()),
            (MediaType::Audio, "aac", "English")
        );
        assert!(audio.default && audio.autoselect);
        assert_eq!(audio.uri.as_deref(), Some("audio/index.m3u8"));
    }

    #[test]
    fn drafts_alternative_audio_example_passes() {
        let mv = passes(ALTERNATIVE_AUDIO);
        assert_eq!(mv.variants.len(), 4);
        assert_eq!(mv.renditions.len(), 3);
    }

    #[test]
    fn drafts_plain_example_lacks_what_we_require() {
        // §9.4 as printed: valid per the draft, but without CODECS (SHOULD) and without
        // EXT-X-INDEPENDENT-SEGMENTS (Apple).
        let plain = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1280000,AVERAGE-BANDWIDTH=1000000\n\
                     http://example.com/low.m3u8\n#EXT-X-STREAM-INF:BANDWIDTH=65000,CODECS=\"mp4a.40.5\"\n\
                     http://example.com/audio-only.m3u8\n";
        let (_, v) = inspect_multivariant(plain);
        let got: Vec<_> = v.iter().map(|v| (v.line, v.rule)).collect();
        assert_eq!(got, [(1, rules::INDEPENDENT_SEGMENTS), (2, rules::CODECS)]);
    }

    #[test]
    fn stream_inf_needs_bandwidth_and_a_uri_line() {
        let v = multivariant_only(&edit(LADDER, "BANDWIDTH=900000,", ""), rules::STREAM_INF);
        assert_eq!(v[0].line, 7);
        let v = multivariant_only(&edit(LADDER, "360p/index.m3u8\n", ""), rules::STREAM_INF_URI);
        assert_eq!(v[0].line, 7);
        let v = multivariant_only(
            &edit(LADDER, "720p/index.m3u8\n", "#EXT-X-FUTURE\n720p/index.m3u8\n"),
            rules::STREAM_INF_URI,
        );
        assert_eq!(v.len(), 2, "{}", report(&v));
        multivariant_only(&format!("{LADDER}stray.m3u8\n"), rules::STREAM_INF_URI);
        multivariant_only("#EXTM3U\n#EXT-X-INDEPENDENT-SEGMENTS\n", rules::STREAM_INF);
    }

    #[test]
    fn average_bandwidth_at_most_bandwidth() {
        multivariant_only(
            &edit(LADDER, "AVERAGE-BANDWIDTH=800000", "AVERAGE-BANDWIDTH=1000000"),
            rules::AVERAGE_BANDWIDTH,
        );
    }

    #[test]
    fn codecs_present_well_formed_and_complete() {
        multivariant_only(
            &edit(LADDER, "CODECS=\"avc1.4d401e,mp4a.40.2\",", ""),
            rules::CODECS,
        );
        multivariant_only(&edit(LADDER, "avc1.4d401e", "avc1.4d401"), rules::CODECS);
        multivariant_only(
            &edit(LADDER, "avc1.4d401e,mp4a.40.2", "avc1.4d401e, mp4a.40.2"),
            rules::CODECS,
        );
        multivariant_only(
            &edit(LADDER, "avc1.4d401e,mp4a.40.2", "avc1.4d401e,mp4a.40"),
            rules::CODECS,
        );
        let v = multivariant_only(
            &edit(LADDER, "avc1.4d401e,mp4a.40.2", "avc1.4d401e"),
            rules::CODECS,
        );
        assert!(v[0].detail.contains("no audio codec"), "{}", v[0].detail);
        passes(&edit(LADDER, "avc1.4d401e,mp4a.40.2", "avc1.4d401e,opus"));
    }

    #[test]
    fn video_variants_have_a_resolution() {
        multivariant_only(&edit(LADDER, "RESOLUTION=640x360,", ""), rules::RESOLUTION);
        multivariant_only(
            &edit(LADDER, "RESOLUTION=640x360", "RESOLUTION=640x0"),
            rules::RESOLUTION,
        );
        multivariant_only(
            &edit(LADDER, "RESOLUTION=640x360", "RESOLUTION=\"640x360\""),
            rules::RESOLUTION,
        );
    }

    #[test]
    fn frame_rate_has_at_most_three_decimals() {
        let v = multivariant_only(
            &edit(
                LADDER,
                "FRAME-RATE=29.970,AUDIO=\"aac\"\n360p",
                "FRAME-RATE=29.97003,AUDIO=\"aac\"\n360p",
            ),
            rules::FRAME_RATE,
        );
        assert_eq!(v[0].line, 7);
        multivariant_only(
            &edit(
                LADDER,
                "FRAME-RATE=29.970,AUDIO=\"aac\"\n360p",
                "FRAME-RATE=0,AUDIO=\"aac\"\n360p",
            ),
            rules::FRAME_RATE,
        );
        passes(&edit(
            LADDER,
            "FRAME-RATE=29.970,AUDIO=\"aac\"\n360p",
            "FRAME-RATE=30,AUDIO=\"aac\"\n360p",
        ));
    }

    #[test]
    fn audio_group_must_exist() {
        let v = multivariant_only(
            &edit(LADDER, "AUDIO=\"aac\"\n360p", "AUDIO=\"aac-lo\"\n360p"),
            rules::MEDIA_GROUP,
        );
        assert_eq!(v[0].line, 7);
        // A group of another TYPE with that id does not count.
        let video_group = edit(LADDER, "TYPE=AUDIO", "TYPE=VIDEO");
        let video_group = edit(&video_group, ",CHANNELS=\"2\"", "");
        let (_, v) = inspect_multivariant(&video_group);
        assert!(v.iter().any(|v| v.rule == rules::MEDIA_GROUP), "{}", report(&v));
    }

    #[test]
    fn media_attributes_and_group_rules() {
        multivariant_only(&edit(LADDER, "NAME=\"English\",", ""), rules::MEDIA);
        multivariant_only(&edit(LADDER, "TYPE=AUDIO", "TYPE=SOUND"), rules::MEDIA);
        multivariant_only(&edit(LADDER, "AUTOSELECT=YES", "AUTOSELECT=NO"), rules::MEDIA);
        multivariant_only(
            &edit(LADDER, "AUTOSELECT=YES", "AUTOSELECT=YES,FORCED=NO"),
            rules::MEDIA,
        );
        let second = "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aac\",NAME=\"English\",LANGUAGE=\"en\",URI=\"audio2/index.m3u8\"\n";
        let v = multivariant_only(
            &edit(
                LADDER,
                "#EXT-X-STREAM-INF:BANDWIDTH=2500000",
                &format!("{second}#EXT-X-STREAM-INF:BANDWIDTH=2500000"),
            ),
            rules::MEDIA,
        );
        assert!(v[0].detail.contains("NAME \"English\" twice"), "{}", v[0].detail);
        let second_default =
            "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aac\",NAME=\"Deutsch\",DEFAULT=YES,URI=\"de/index.m3u8\"\n";
        multivariant_only(
            &edit(
                LADDER,
                "#EXT-X-STREAM-INF:BANDWIDTH=2500000",
                &format!("{second_default}#EXT-X-STREAM-INF:BANDWIDTH=2500000"),
            ),
            rules::MEDIA,
        );
        let subs = "#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"subs\",NAME=\"English\",LANGUAGE=\"en\"\n";
        multivariant_only(
            &edit(
                LADDER,
                "#EXT-X-STREAM-INF:BANDWIDTH=2500000",
                &format!("{subs}#EXT-X-STREAM-INF:BANDWIDTH=2500000"),
            ),
            rules::MEDIA,
        );
        let cc = "#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID=\"cc\",NAME=\"English\",INSTREAM-ID=\"CC1\",URI=\"cc.m3u8\"\n";
        multivariant_only(
            &edit(
                LADDER,
                "#EXT-X-STREAM-INF:BANDWIDTH=2500000",
                &format!("{cc}#EXT-X-STREAM-INF:BANDWIDTH=2500000"),
            ),
            rules::MEDIA,
        );
    }

    #[test]
    fn audio_renditions_have_their_own_playlist() {
        multivariant_only(
            &edit(LADDER, ",URI=\"audio/index.m3u8\"", ""),
            rules::MEDIA_AUDIO_URI,
        );
    }

    #[test]
    fn closed_captions_none_everywhere_or_nowhere() {
        let one = edit(
            LADDER,
            "AUDIO=\"aac\"\n720p",
            "AUDIO=\"aac\",CLOSED-CAPTIONS=NONE\n720p",
        );
        multivariant_only(&one, rules::MEDIA_GROUP);
        passes(&edit(
            &one,
            "AUDIO=\"aac\"\n360p",
            "AUDIO=\"aac\",CLOSED-CAPTIONS=NONE\n360p",
        ));
    }

    #[test]
    fn independent_segments_required() {
        let v = multivariant_only(
            &edit(LADDER, "#EXT-X-INDEPENDENT-SEGMENTS\n", ""),
            rules::INDEPENDENT_SEGMENTS,
        );
        assert_eq!(v[0].line, 1);
        multivariant_only(
            &edit(
                LADDER,
                "#EXT-X-INDEPENDENT-SEGMENTS\n",
                "#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-INDEPENDENT-SEGMENTS\n",
            ),
            rules::DUPLICATE_TAG,
        );
    }

    #[test]
    fn media_playlist_tags_do_not_belong() {
        multivariant_only(
            &edit(
                LADDER,
                "#EXT-X-INDEPENDENT-SEGMENTS\n",
                "#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-TARGETDURATION:4\n",
            ),
            rules::PLAYLIST_KIND,
        );
        let (_, v) = inspect_multivariant(BASE);
        assert!(v.iter().any(|v| v.rule == rules::PLAYLIST_KIND));
    }

    #[test]
    fn version_for_multivariant_features() {
        let cc =
            "#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID=\"cc\",NAME=\"English\",INSTREAM-ID=\"SERVICE3\"\n";
        let with_cc = edit(
            LADDER,
            "#EXT-X-STREAM-INF:BANDWIDTH=2500000",
            &format!("{cc}#EXT-X-STREAM-INF:BANDWIDTH=2500000"),
        );
        let v = multivariant_only(&with_cc, rules::VERSION);
        assert!(v[0].detail.contains("needs 7"), "{}", v[0].detail);
        passes(&edit(&with_cc, "#EXT-X-VERSION:6", "#EXT-X-VERSION:7"));
        let define = edit(
            LADDER,
            "#EXT-X-INDEPENDENT-SEGMENTS\n",
            "#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-DEFINE:NAME=\"host\",VALUE=\"cdn\"\n",
        );
        multivariant_only(&define, rules::VERSION);
        let import = edit(
            LADDER,
            "#EXT-X-VERSION:6",
            "#EXT-X-VERSION:8\n#EXT-X-DEFINE:IMPORT=\"host\"",
        );
        multivariant_only(&import, rules::MALFORMED_TAG);
    }

    #[test]
    fn other_multivariant_tags() {
        let data = |attrs: &str| {
            edit(
                LADDER,
                "#EXT-X-INDEPENDENT-SEGMENTS\n",
                &format!("#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-SESSION-DATA:{attrs}\n"),
            )
        };
        passes(&data("DATA-ID=\"com.example.title\",VALUE=\"A title\""));
        multivariant_only(
            &data("DATA-ID=\"com.example.title\",VALUE=\"A title\",URI=\"t.json\""),
            rules::MALFORMED_TAG,
        );
        multivariant_only(&data("VALUE=\"A title\""), rules::MALFORMED_TAG);
        let iframe = |attrs: &str| format!("{LADDER}#EXT-X-I-FRAME-STREAM-INF:{attrs}\n");
        passes(&iframe(
            "BANDWIDTH=86000,CODECS=\"avc1.64001f\",RESOLUTION=1280x720,URI=\"720p/iframe.m3u8\"",
        ));
        multivariant_only(
            &iframe("BANDWIDTH=86000,CODECS=\"avc1.64001f\",RESOLUTION=1280x720"),
            rules::STREAM_INF,
        );
    }

    #[test]
    fn garbage_never_panics() {
        let mut cut = 0;
        while cut < LADDER.len() {
            let _ = inspect_multivariant(&LADDER[..cut]);
            cut += 1;
        }
        for garbage in [
            "",
            "#EXTM3U\n#EXT-X-STREAM-INF",
            "#EXTM3U\n#EXT-X-MEDIA:TYPE=AUDIO\nx\n#EXT-X-STREAM-INF:CODECS=\"\"\n",
        ] {
            let _ = inspect_multivariant(garbage);
        }
    }
}

//! Splitting a playlist into numbered lines, and the rules every line obeys (rfc8216bis §4.1,
//! §4.4.1.1).

use super::{Findings, MAX_PLAYLIST_BYTES, rules};

/// One line, 1-based, trimmed of surrounding whitespace (which is reported).
pub(super) struct Line<'a> {
    pub number: usize,
    pub kind: LineKind<'a>,
}

pub(super) enum LineKind<'a> {
    Blank,
    Comment,
    /// `#EXT<name>[:<value>]`, with the `#` removed from the name.
    Tag {
        name: &'a str,
        value: Option<&'a str>,
    },
    Uri(&'a str),
}

/// Splits at LF (CR LF accepted), reports BOM, control characters, whitespace and a missing or
/// repeated `#EXTM3U`, and classifies each line.
pub(super) fn scan<'a>(text: &'a str, out: &mut Findings) -> Vec<Line<'a>> {
    if text.len() > MAX_PLAYLIST_BYTES {
        out.push(
            1,
            rules::LIMIT,
            format!(
                "the playlist has {} bytes, more than the {MAX_PLAYLIST_BYTES} this checker reads",
                text.len()
            ),
        );
        return Vec::new();
    }
    let body = match text.strip_prefix('\u{feff}') {
        Some(rest) => {
            out.push(1, rules::BOM, "the playlist starts with a byte order mark");
            rest
        }
        None => text,
    };
    let mut lines = Vec::new();
    for (index, raw) in body.split('\n').enumerate() {
        let number = index + 1;
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        control_characters(number, raw, out);
        let trimmed = raw.trim();
        let kind = if trimmed.is_empty() {
            LineKind::Blank
        } else if let Some(tag) = trimmed.strip_prefix('#').filter(|t| t.starts_with("EXT")) {
            let (name, value) = match tag.split_once(':') {
                Some((n, v)) => (n, Some(v)),
                None => (tag, None),
            };
            LineKind::Tag { name, value }
        } else if trimmed.starts_with('#') {
            LineKind::Comment
        } else {
            LineKind::Uri(trimmed)
        };
        // Control characters at the ends (a stray CR, a tab) are reported as such, not twice.
        let spaced = raw.trim_matches(|c: char| c.is_whitespace() && !c.is_control());
        if spaced.len() != raw.len() {
            whitespace(number, raw, trimmed, &kind, out);
        }
        let is_extm3u = matches!(
            kind,
            LineKind::Tag {
                name: "EXTM3U",
                value: None
            }
        );
        if number == 1 && !is_extm3u {
            out.push(1, rules::EXTM3U, "the first line must be #EXTM3U");
        } else if number > 1 && matches!(kind, LineKind::Tag { name: "EXTM3U", .. }) {
            out.push(number, rules::EXTM3U, "#EXTM3U belongs on the first line only");
        }
        lines.push(Line { number, kind });
    }
    lines
}

/// §4.1: no control characters but the line ends. A tab may sit inside a quoted-string, where
/// RECENTLY-REMOVED-DATERANGES (§4.4.5.2) uses it as the separator.
fn control_characters(number: usize, raw: &str, out: &mut Findings) {
    let mut quoted = false;
    for (column, c) in raw.chars().enumerate() {
        if c == '"' {
            quoted = !quoted;
        }
        let control = matches!(u32::from(c), 0..=0x1f | 0x7f..=0x9f);
        if control && !(c == '\t' && quoted) {
            let what = if c == '\r' {
                "a carriage return not followed by a line feed".to_owned()
            } else {
                format!("control character U+{:04X}", u32::from(c))
            };
            out.push(
                number,
                rules::CONTROL_CHARACTER,
                format!("column {}: {what}", column + 1),
            );
            return;
        }
    }
}

/// §4.1: "Whitespace MUST NOT be present, except for elements in which it is explicitly
/// specified": the EXTINF title may end in whitespace, and comments are free text.
fn whitespace(number: usize, raw: &str, trimmed: &str, kind: &LineKind<'_>, out: &mut Findings) {
    let leading = raw.len() - raw.trim_start().len();
    let trailing_allowed = matches!(kind, LineKind::Tag { name: "EXTINF", .. } | LineKind::Comment);
    if trimmed.is_empty() {
        out.push(number, rules::WHITESPACE, "a line of only whitespace");
    } else if leading > 0 {
        out.push(
            number,
            rules::WHITESPACE,
            "whitespace before the start of the line",
        );
    } else if !trailing_allowed {
        out.push(number, rules::WHITESPACE, "whitespace at the end of the line");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules_of(text: &str) -> Vec<(usize, &'static str)> {
        let mut out = Findings::default();
        scan(text, &mut out);
        out.0.iter().map(|v| (v.line, v.rule)).collect()
    }

    #[test]
    fn extm3u_is_the_first_line_and_only_there() {
        assert_eq!(rules_of("#EXTM3U\n#EXT-X-VERSION:3\n"), []);
        assert_eq!(rules_of("#EXTM3U\r\n#EXT-X-VERSION:3\r\n"), []);
        assert_eq!(rules_of("\n#EXTM3U\n"), [(1, rules::EXTM3U), (2, rules::EXTM3U)]);
        assert_eq!(rules_of("#EXT-X-VERSION:3\n"), [(1, rules::EXTM3U)]);
        assert_eq!(rules_of("#EXTM3U:1\n"), [(1, rules::EXTM3U)]);
        assert_eq!(rules_of(""), [(1, rules::EXTM3U)]);
    }

    #[test]
    fn bom_control_characters_and_whitespace() {
        assert_eq!(rules_of("\u{feff}#EXTM3U\n"), [(1, rules::BOM)]);
        assert_eq!(
            rules_of("#EXTM3U\nseg\u{7}.ts\n"),
            [(2, rules::CONTROL_CHARACTER)]
        );
        assert_eq!(rules_of("#EXTM3U\nseg.ts\r\r\n"), [(2, rules::CONTROL_CHARACTER)]);
        assert_eq!(rules_of("#EXTM3U\n#EXT-X-SKIP:A=\"x\ty\"\n"), []);
        assert_eq!(
            rules_of("#EXTM3U\n#EXT-X-SKIP:A=x\ty\n"),
            [(2, rules::CONTROL_CHARACTER)]
        );
        assert_eq!(rules_of("#EXTM3U\n#EXTINF:4.0,title  \n"), []);
        assert_eq!(rules_of("#EXTM3U\n#EXT-X-ENDLIST \n"), [(2, rules::WHITESPACE)]);
        assert_eq!(rules_of("#EXTM3U\n seg.ts\n"), [(2, rules::WHITESPACE)]);
        assert_eq!(rules_of("#EXTM3U\n  \n"), [(2, rules::WHITESPACE)]);
        assert_eq!(rules_of("#EXTM3U\n# a comment  \n"), []);
    }

    #[test]
    fn classifies_lines() {
        let mut out = Findings::default();
        let lines = scan(
            "#EXTM3U\n\n# note\n#EXT-X-TARGETDURATION:4\nseg.ts\n#EXT-X-ENDLIST",
            &mut out,
        );
        let kinds: Vec<String> = lines
            .iter()
            .map(|l| match l.kind {
                LineKind::Blank => "blank".to_owned(),
                LineKind::Comment => "comment".to_owned(),
                LineKind::Tag { name, value } => format!("{name}={value:?}"),
                LineKind::Uri(u) => format!("uri {u}"),
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "EXTM3U=None",
                "blank",
                "comment",
                "EXT-X-TARGETDURATION=Some(\"4\")",
                "uri seg.ts",
                "EXT-X-ENDLIST=None"
            ]
        );
    }

    #[test]
    fn refuses_oversized_input_at_once() {
        let big = "#".repeat(MAX_PLAYLIST_BYTES + 1);
        assert_eq!(rules_of(&big), [(1, rules::LIMIT)]);
    }
}

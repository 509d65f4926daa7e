//! Common Media Client Data (CTA-5004) as an edge receives it: the `CMCD` query argument
//! (percent-encoded) and the `CMCD-Request`, `-Object`, `-Status` and `-Session` headers,
//! parsed into the keys QoE uses. Never an error for the viewer: unknown keys are ignored,
//! malformed values are counted and dropped, and limits bound the work.

/// Object types (`ot`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectType {
    Manifest,
    Audio,
    Video,
    Muxed,
    Init,
    Caption,
    TimedText,
    Key,
    Other,
}

impl ObjectType {
    fn from_token(t: &str) -> Option<Self> {
        Some(match t {
            "m" => Self::Manifest,
            "a" => Self::Audio,
            "v" => Self::Video,
            "av" => Self::Muxed,
            "i" => Self::Init,
            "c" => Self::Caption,
            "tt" => Self::TimedText,
            "k" => Self::Key,
            "o" => Self::Other,
            _ => return None,
        })
    }

    /// Media carrying video (its `br` is the rendition's bitrate).
    pub fn is_video(self) -> bool {
        matches!(self, Self::Video | Self::Muxed)
    }
}

/// Bounds on what one request's CMCD may cost to parse.
#[derive(Debug, Clone, Copy)]
pub struct CmcdLimits {
    /// Bytes of CMCD data per request (query argument and headers together, decoded).
    pub max_bytes: usize,
    /// Key/value pairs per request.
    pub max_pairs: usize,
    /// Characters in a string value (`sid`, `cid`: the spec says 64).
    pub max_string: usize,
}

impl Default for CmcdLimits {
    fn default() -> Self {
        Self {
            max_bytes: 4096,
            max_pairs: 64,
            max_string: 64,
        }
    }
}

/// The keys of one request that QoE uses. `malformed` counts pairs whose value did not
/// parse (or that went past a limit); `unknown` counts keys we do not use.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cmcd {
    /// Encoded bitrate, kb/s.
    pub br: Option<u64>,
    /// Buffer length, ms.
    pub bl: Option<u64>,
    /// The buffer ran dry since the previous request.
    pub bs: bool,
    /// Content id.
    pub cid: Option<String>,
    /// Object duration, ms.
    pub d: Option<u64>,
    /// Measured throughput, kb/s.
    pub mtp: Option<u64>,
    pub ot: Option<ObjectType>,
    /// Playback rate.
    pub pr: Option<f64>,
    /// Session id.
    pub sid: Option<String>,
    /// The object is needed to start or resume playback.
    pub su: bool,
    /// Stream type `l` or `ll` (live, low-latency live).
    pub live: bool,
    /// Any CMCD was sent at all.
    pub present: bool,
    pub malformed: u32,
    pub unknown: u32,
}

/// The header names that carry CMCD.
pub const HEADERS: [&str; 4] = ["cmcd-request", "cmcd-object", "cmcd-status", "cmcd-session"];

/// Decodes `%XX` and `+` in a query value; `None` for a bad escape or bytes that are not
/// UTF-8.
pub fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = |c: u8| (c as char).to_digit(16);
                let (h, l) = (
                    b.get(i + 1).and_then(|c| hex(*c))?,
                    b.get(i + 2).and_then(|c| hex(*c))?,
                );
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

impl Cmcd {
    /// Parses the CMCD of a request: the `CMCD=` argument of `query` (without `?`) and the
    /// `CMCD-*` header values given as `(lower-case name, value)`.
    pub fn parse<'a>(
        query: &str,
        headers: impl IntoIterator<Item = (&'a str, &'a [u8])>,
        limits: &CmcdLimits,
    ) -> Cmcd {
        let mut c = Cmcd::default();
        let mut budget = limits.max_bytes;
        for arg in query.split('&') {
            let Some(v) = arg.strip_prefix("CMCD=") else {
                continue;
            };
            c.present = true;
            if v.len() > budget {
                c.malformed += 1;
                continue;
            }
            match percent_decode(v) {
                Some(d) => {
                    budget = budget.saturating_sub(d.len());
                    c.pairs(&d, limits);
                }
                None => c.malformed += 1,
            }
        }
        for (name, value) in headers {
            if !HEADERS.contains(&name) {
                continue;
            }
            c.present = true;
            match std::str::from_utf8(value) {
                Ok(v) if v.len() <= budget => {
                    budget -= v.len();
                    c.pairs(v, limits);
                }
                _ => c.malformed += 1,
            }
        }
        c
    }

    /// Reads `key[=value]` pairs separated by commas (commas inside quoted strings do not
    /// separate).
    fn pairs(&mut self, data: &str, limits: &CmcdLimits) {
        let mut seen = 0usize;
        let mut rest = data;
        while !rest.is_empty() {
            let (pair, next) = split_pair(rest);
            rest = next;
            let pair = pair.trim();
            if pair.is_empty() {
                continue;
            }
            seen += 1;
            if seen > limits.max_pairs {
                self.malformed += 1;
                return;
            }
            let (key, value) = match pair.split_once('=') {
                Some((k, v)) => (k.trim(), Some(v.trim())),
                None => (pair, None),
            };
            if !self.key(key, value, limits) {
                self.malformed += 1;
            }
        }
    }

    /// Applies one pair; false when its value is malformed.
    fn key(&mut self, key: &str, value: Option<&str>, limits: &CmcdLimits) -> bool {
        fn int(v: Option<&str>) -> Option<u64> {
            let v = v?;
            if v.is_empty() || v.len() > 15 || !v.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            v.parse().ok()
        }
        fn boolean(v: Option<&str>) -> Option<bool> {
            match v {
                None | Some("true") => Some(true),
                Some("false") => Some(false),
                _ => None,
            }
        }
        let string = |v: Option<&str>| -> Option<String> {
            let v = v?.strip_prefix('"')?.strip_suffix('"')?;
            let mut out = String::new();
            let mut esc = false;
            for ch in v.chars() {
                if esc {
                    out.push(ch);
                    esc = false;
                } else if ch == '\\' {
                    esc = true;
                } else if ch == '"' || ch.is_control() {
                    return None;
                } else {
                    out.push(ch);
                }
            }
            (!esc && out.chars().count() <= limits.max_string).then_some(out)
        };
        match key {
            "br" => ok(&mut self.br, int(value)),
            "bl" => ok(&mut self.bl, int(value)),
            "d" => ok(&mut self.d, int(value)),
            "mtp" => ok(&mut self.mtp, int(value)),
            "bs" => boolean(value).map(|b| self.bs = b).is_some(),
            "su" => boolean(value).map(|b| self.su = b).is_some(),
            "cid" => ok(&mut self.cid, string(value)),
            "sid" => ok(&mut self.sid, string(value)),
            "ot" => ok(&mut self.ot, value.and_then(ObjectType::from_token)),
            // `ll` (low-latency live) is CMCD v2's, and what hls.js sends in low-latency mode.
            "st" => {
                self.live = matches!(value, Some("l" | "ll"));
                matches!(value, Some("l" | "ll" | "v"))
            }
            "pr" => ok(
                &mut self.pr,
                value
                    .filter(|v| v.len() <= 12)
                    .and_then(|v| v.parse::<f64>().ok())
                    .filter(|p| p.is_finite() && (0.0..=100.0).contains(p)),
            ),
            _ => {
                // A key we do not use; a malformed key name is still malformed.
                self.unknown += 1;
                !key.is_empty()
                    && key.len() <= 32
                    && key
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            }
        }
    }
}

/// Stores a parsed value (or clears the key when it did not parse); whether it parsed.
fn ok<T>(slot: &mut Option<T>, v: Option<T>) -> bool {
    *slot = v;
    slot.is_some()
}

/// The first pair of `s` and the rest after its comma; commas inside `"..."` (with `\`
/// escapes) do not end a pair.
fn split_pair(s: &str) -> (&str, &str) {
    let mut quoted = false;
    let mut esc = false;
    for (i, ch) in s.char_indices() {
        if esc {
            esc = false;
            continue;
        }
        match ch {
            '\\' if quoted => esc = true,
            '"' => quoted = !quoted,
            ',' if !quoted => return (&s[..i], &s[i + 1..]),
            _ => {}
        }
    }
    (s, "")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(query: &str) -> Cmcd {
        Cmcd::parse(query, [], &CmcdLimits::default())
    }

    #[test]
    fn hls_js_query_form_is_read() {
        // As hls.js 1.x sends it: encodeURIComponent of the sorted pairs.
        let c = q(
            "_HLS_msn=3&CMCD=bl%3D21300%2Cbr%3D3200%2Cbs%2Ccid%3D%22faec5fc2-ac30-11ea-bb37-0242ac130002%22%2Cd%3D4004%2Cdl%3D18500%2Cmtp%3D48100%2Cnor%3D%22..%252F300kbps%252Ftrack.m4v%22%2Cot%3Dv%2Cpr%3D1.08%2Crtp%3D12000%2Csf%3Dd%2Csid%3D%226e2fb550-c457-11e9-bb97-0800200c9a66%22%2Cst%3Dl%2Csu%2Ctb%3D6000&token=x",
        );
        assert!(c.present);
        assert_eq!(c.bl, Some(21300));
        assert_eq!(c.br, Some(3200));
        assert!(c.bs && c.su && c.live);
        assert_eq!(c.cid.as_deref(), Some("faec5fc2-ac30-11ea-bb37-0242ac130002"));
        assert_eq!(c.sid.as_deref(), Some("6e2fb550-c457-11e9-bb97-0800200c9a66"));
        assert_eq!(c.d, Some(4004));
        assert_eq!(c.mtp, Some(48100));
        assert_eq!(c.ot, Some(ObjectType::Video));
        assert_eq!(c.pr, Some(1.08));
        assert_eq!((c.malformed, c.unknown), (0, 5)); // dl, nor, rtp, sf, tb
    }

    #[test]
    fn headers_are_read_and_merged() {
        let h: [(&str, &[u8]); 4] = [
            ("cmcd-request", b"bl=500,mtp=25400,su"),
            ("cmcd-object", b"br=3200,d=200,ot=v"),
            ("cmcd-session", b"cid=\"ev,1\",sid=\"s\\\"1\",st=ll"),
            ("accept", b"*/*"),
        ];
        let c = Cmcd::parse("", h, &CmcdLimits::default());
        assert_eq!(
            (c.bl, c.br, c.d, c.mtp),
            (Some(500), Some(3200), Some(200), Some(25400))
        );
        assert_eq!(c.cid.as_deref(), Some("ev,1"));
        assert_eq!(c.sid.as_deref(), Some("s\"1"));
        assert!(c.su && c.live && !c.bs);
        assert_eq!(c.malformed, 0);
        assert!(!Cmcd::parse("token=a", [], &CmcdLimits::default()).present);
    }

    #[test]
    fn garbage_is_counted_and_dropped_never_an_error() {
        let c = q(
            "CMCD=br%3D-5%2Cbl%3D1e9%2Csid%3Dunquoted%2Cot%3Dzz%2Cpr%3DNaN%2Cbs%3Dmaybe%2C%3D%3D%2Ccid%3D%22ok%22",
        );
        assert_eq!(c.br, None);
        assert_eq!(c.bl, None);
        assert_eq!(c.sid, None);
        assert_eq!(c.ot, None);
        assert_eq!(c.pr, None);
        assert!(!c.bs);
        assert_eq!(c.cid.as_deref(), Some("ok"));
        assert_eq!(c.malformed, 7);
        // A bad escape, huge numbers, an over-long string, too many pairs.
        assert_eq!(q("CMCD=%ZZ").malformed, 1);
        assert_eq!(q("CMCD=br%3D99999999999999999999").br, None);
        let long = format!("CMCD=sid%3D%22{}%22", "a".repeat(65));
        assert_eq!(q(&long).sid, None);
        let many = format!("CMCD={}", vec!["su"; 100].join("%2C"));
        let c = q(&many);
        assert!(c.su);
        assert_eq!(c.malformed, 1);
        let huge = format!("CMCD={}", "a".repeat(10_000));
        assert_eq!(q(&huge).malformed, 1);
        // Unterminated quotes swallow the rest of the data, harmlessly.
        let c = q("CMCD=sid%3D%22abc%2Cbr%3D5");
        assert_eq!((c.sid, c.br), (None, None));
    }
}

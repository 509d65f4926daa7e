//! Common Media Client Data (CTA-5004) as a player sends it: the keys of one request,
//! serialised in the spec's form (keys in alphabetical order, booleans bare, strings quoted,
//! tokens plain) either as the `CMCD` query argument or as the four `CMCD-*` headers.

use std::fmt::Write;

/// Object types (`ot`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectType {
    /// A playlist (`m`).
    Manifest,
    /// Audio only (`a`).
    Audio,
    /// Video only (`v`).
    Video,
    /// Muxed audio and video (`av`).
    Muxed,
    /// An init segment (`i`).
    Init,
}

impl ObjectType {
    fn token(self) -> &'static str {
        match self {
            Self::Manifest => "m",
            Self::Audio => "a",
            Self::Video => "v",
            Self::Muxed => "av",
            Self::Init => "i",
        }
    }
}

/// The CMCD keys of one request; `None`/`false` keys are left out.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cmcd {
    /// Encoded bitrate of the object's rendition, kb/s.
    pub br: Option<u64>,
    /// Buffer length, ms (sent rounded to 100 ms).
    pub bl: Option<u64>,
    /// The buffer ran dry since the last request.
    pub bs: bool,
    /// Content id.
    pub cid: Option<String>,
    /// Object duration, ms.
    pub d: Option<u64>,
    /// Measured throughput, kb/s (sent rounded to 100 kb/s).
    pub mtp: Option<u64>,
    /// Next object the player will request, relative to this one.
    pub nor: Option<String>,
    pub ot: Option<ObjectType>,
    /// Playback rate, when not 1.
    pub pr: Option<f64>,
    /// Session id.
    pub sid: Option<String>,
    /// Live stream (`st=l`).
    pub live: bool,
    /// Startup: the object is needed to start or resume playback.
    pub su: bool,
    /// Top bitrate the player may play, kb/s.
    pub tb: Option<u64>,
}

/// The header a key travels in (CTA-5004 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Shard {
    Object,
    Request,
    Session,
    Status,
}

fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

fn round(v: u64, step: u64) -> u64 {
    (v + step / 2) / step * step
}

impl Cmcd {
    /// (shard, key, serialised pair) in alphabetical key order.
    fn pairs(&self) -> Vec<(Shard, &'static str, String)> {
        let mut p = Vec::new();
        let mut num = |shard, key: &'static str, v: Option<u64>| {
            if let Some(v) = v {
                p.push((shard, key, format!("{key}={v}")));
            }
        };
        num(Shard::Request, "bl", self.bl.map(|v| round(v, 100)));
        num(Shard::Object, "br", self.br);
        num(Shard::Object, "d", self.d);
        num(Shard::Request, "mtp", self.mtp.map(|v| round(v, 100)));
        num(Shard::Object, "tb", self.tb);
        if self.bs {
            p.push((Shard::Status, "bs", "bs".into()));
        }
        if let Some(c) = &self.cid {
            p.push((Shard::Session, "cid", format!("cid={}", quote(c))));
        }
        if let Some(n) = &self.nor {
            p.push((Shard::Request, "nor", format!("nor={}", quote(n))));
        }
        if let Some(o) = self.ot {
            p.push((Shard::Object, "ot", format!("ot={}", o.token())));
        }
        if let Some(r) = self.pr.filter(|r| (*r - 1.0).abs() > 1e-9 && r.is_finite()) {
            p.push((
                Shard::Session,
                "pr",
                format!("pr={}", (r * 100.0).round() / 100.0),
            ));
        }
        p.push((Shard::Session, "sf", "sf=h".into()));
        if let Some(s) = &self.sid {
            p.push((Shard::Session, "sid", format!("sid={}", quote(s))));
        }
        if self.live {
            p.push((Shard::Session, "st", "st=l".into()));
        }
        if self.su {
            p.push((Shard::Request, "su", "su".into()));
        }
        p.sort_by(|a, b| a.1.cmp(b.1));
        p
    }

    /// The value of the `CMCD` query argument, not yet percent-encoded.
    pub fn to_query_value(&self) -> String {
        self.pairs()
            .into_iter()
            .map(|(_, _, kv)| kv)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// `CMCD=<percent-encoded keys>`, to append to a URL's query.
    pub fn to_query(&self) -> String {
        let v = self.to_query_value();
        let mut out = String::from("CMCD=");
        for b in v.bytes() {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                out.push(b as char);
            } else {
                let _ = write!(out, "%{b:02X}");
            }
        }
        out
    }

    /// The `CMCD-Object`, `CMCD-Request`, `CMCD-Session` and `CMCD-Status` headers that have
    /// keys, as (name, value).
    pub fn to_headers(&self) -> Vec<(&'static str, String)> {
        let mut by: std::collections::BTreeMap<Shard, Vec<String>> = Default::default();
        for (shard, _, kv) in self.pairs() {
            by.entry(shard).or_default().push(kv);
        }
        by.into_iter()
            .map(|(s, kvs)| {
                let name = match s {
                    Shard::Object => "CMCD-Object",
                    Shard::Request => "CMCD-Request",
                    Shard::Session => "CMCD-Session",
                    Shard::Status => "CMCD-Status",
                };
                (name, kvs.join(","))
            })
            .collect()
    }
}

/// Appends `CMCD=...` to `url`'s query.
pub fn with_query(url: &str, cmcd: &Cmcd) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{}", cmcd.to_query())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Cmcd {
        Cmcd {
            br: Some(3200),
            bl: Some(21_340),
            bs: true,
            cid: Some("launch".into()),
            d: Some(200),
            mtp: Some(25_449),
            nor: Some("41.2.m4s".into()),
            ot: Some(ObjectType::Video),
            pr: Some(1.1),
            sid: Some("6e2fb550-c457-11e9-bb97-0800200c9a66".into()),
            live: true,
            su: false,
            tb: Some(6000),
        }
    }

    #[test]
    fn keys_are_sorted_rounded_and_typed() {
        assert_eq!(
            sample().to_query_value(),
            "bl=21300,br=3200,bs,cid=\"launch\",d=200,mtp=25400,nor=\"41.2.m4s\",ot=v,pr=1.1,sf=h,sid=\"6e2fb550-c457-11e9-bb97-0800200c9a66\",st=l,tb=6000"
        );
        let q = sample().to_query();
        assert!(
            q.starts_with("CMCD=bl%3D21300%2Cbr%3D3200%2Cbs%2Ccid%3D%22launch%22"),
            "{q}"
        );
        assert_eq!(
            with_query(
                "41.1.m4s?token=t",
                &Cmcd {
                    su: true,
                    ..Cmcd::default()
                }
            ),
            "41.1.m4s?token=t&CMCD=sf%3Dh%2Csu"
        );
    }

    #[test]
    fn headers_carry_each_key_in_its_shard() {
        let h = sample().to_headers();
        assert_eq!(
            h,
            [
                ("CMCD-Object", "br=3200,d=200,ot=v,tb=6000".to_string()),
                ("CMCD-Request", "bl=21300,mtp=25400,nor=\"41.2.m4s\"".to_string()),
                (
                    "CMCD-Session",
                    "cid=\"launch\",pr=1.1,sf=h,sid=\"6e2fb550-c457-11e9-bb97-0800200c9a66\",st=l"
                        .to_string()
                ),
                ("CMCD-Status", "bs".to_string()),
            ]
        );
    }

    #[test]
    fn strings_are_escaped() {
        let c = Cmcd {
            cid: Some("a\"b\\c".into()),
            ..Cmcd::default()
        };
        assert_eq!(c.to_query_value(), "cid=\"a\\\"b\\\\c\",sf=h");
    }
}

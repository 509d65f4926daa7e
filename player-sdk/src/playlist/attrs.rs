//! Attribute lists (RFC 8216 §4.2): `KEY=value,KEY="quoted, value"`, read without copying.

/// Why an attribute list was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttrError {
    #[error("attribute {0:?} has no '='")]
    NoEquals(String),
    #[error("attribute {0:?}: a quoted string is not closed")]
    Unclosed(String),
    #[error("attribute {0:?}: text after its quoted string")]
    AfterQuote(String),
    #[error("attribute name {0:?} is not A-Z, 0-9 and '-'")]
    BadName(String),
    #[error("attribute {name}: {value:?} is not a whole number")]
    NotInteger { name: String, value: String },
    #[error("more than {0} attributes")]
    TooMany(usize),
}

/// The most attributes one tag may carry.
pub const MAX_ATTRS: usize = 64;

/// One tag's attributes, in order; quoted values keep their quotes off and are marked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attrs<'a> {
    items: Vec<(&'a str, &'a str, bool)>,
}

fn clip(s: &str) -> String {
    s.chars().take(40).collect()
}

impl<'a> Attrs<'a> {
    pub fn parse(text: &'a str) -> Result<Self, AttrError> {
        let mut items = Vec::new();
        let mut rest = text.trim();
        while !rest.is_empty() {
            let (name, after) = rest
                .split_once('=')
                .ok_or_else(|| AttrError::NoEquals(clip(rest)))?;
            let name = name.trim();
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-')
            {
                return Err(AttrError::BadName(clip(name)));
            }
            let (value, quoted, next) = if let Some(q) = after.strip_prefix('"') {
                let end = q.find('"').ok_or_else(|| AttrError::Unclosed(name.to_string()))?;
                let tail = q[end + 1..].trim_start();
                let next = match tail.strip_prefix(',') {
                    Some(n) => n,
                    None if tail.is_empty() => "",
                    None => return Err(AttrError::AfterQuote(name.to_string())),
                };
                (&q[..end], true, next)
            } else {
                match after.split_once(',') {
                    Some((v, n)) => (v.trim(), false, n),
                    None => (after.trim(), false, ""),
                }
            };
            items.push((name, value, quoted));
            if items.len() > MAX_ATTRS {
                return Err(AttrError::TooMany(MAX_ATTRS));
            }
            rest = next.trim_start();
        }
        Ok(Self { items })
    }

    /// The value of `name` (quoted or not).
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.items.iter().find(|(k, _, _)| *k == name).map(|(_, v, _)| *v)
    }

    /// The value of `name` when it is a quoted string.
    pub fn quoted(&self, name: &str) -> Option<&'a str> {
        self.items
            .iter()
            .find(|(k, _, q)| *k == name && *q)
            .map(|(_, v, _)| *v)
    }

    /// `name` as a decimal integer; `None` when absent.
    pub fn int(&self, name: &str) -> Result<Option<u64>, AttrError> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| AttrError::NotInteger {
                name: name.to_string(),
                value: clip(v),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_values_keep_their_commas() {
        let a =
            Attrs::parse(r#"BANDWIDTH=900000,CODECS="avc1.64001f,mp4a.40.2",RESOLUTION=640x360"#).unwrap();
        assert_eq!(a.get("CODECS"), Some("avc1.64001f,mp4a.40.2"));
        assert_eq!(a.quoted("CODECS"), Some("avc1.64001f,mp4a.40.2"));
        assert_eq!(a.quoted("RESOLUTION"), None, "not quoted");
        assert_eq!(a.int("BANDWIDTH"), Ok(Some(900_000)));
        assert_eq!(a.int("NOPE"), Ok(None));
    }

    #[test]
    fn garbage_is_named() {
        assert_eq!(Attrs::parse("URI"), Err(AttrError::NoEquals("URI".into())));
        assert_eq!(Attrs::parse(r#"URI="x"#), Err(AttrError::Unclosed("URI".into())));
        assert_eq!(
            Attrs::parse(r#"URI="x"y"#),
            Err(AttrError::AfterQuote("URI".into()))
        );
        assert!(matches!(Attrs::parse("uri=1"), Err(AttrError::BadName(_))));
        assert!(matches!(
            Attrs::parse("BANDWIDTH=lots").unwrap().int("BANDWIDTH"),
            Err(AttrError::NotInteger { .. })
        ));
        let many = vec!["A=1"; MAX_ATTRS + 1].join(",");
        assert_eq!(Attrs::parse(&many), Err(AttrError::TooMany(MAX_ATTRS)));
    }
}

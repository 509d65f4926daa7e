//! Attribute-lists (rfc8216bis §4.2): the lexical grammar, and typed reads of one value.

use std::fmt;

/// One AttributeValue, classified by its lexical form. §4.2 leaves the type to the attribute's
/// definition, so the `as_*` readers convert: a decimal-integer is also a valid
/// decimal-floating-point, and so on.
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    /// `"..."`: a quoted-string (also the carrier of enumerated-string-lists and byte ranges).
    Quoted(String),
    /// `[0-9]+` within 2^64−1: a decimal-integer.
    Integer(u64),
    /// Digits with one `.`, or a leading `-`: a (signed-)decimal-floating-point.
    Float(f64),
    /// `0x`/`0X` then `[0-9A-F]+`: a hexadecimal-sequence, the digits as written.
    Hex(String),
    /// `<width>x<height>`: a decimal-resolution.
    Resolution { width: u64, height: u64 },
    /// Any other unquoted value: an enumerated-string.
    Enumerated(String),
}

impl fmt::Display for AttrValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttrValue::Quoted(s) => write!(f, "\"{s}\""),
            AttrValue::Integer(n) => write!(f, "{n}"),
            AttrValue::Float(v) => write!(f, "{v}"),
            AttrValue::Hex(h) => write!(f, "0x{h}"),
            AttrValue::Resolution { width, height } => write!(f, "{width}x{height}"),
            AttrValue::Enumerated(s) => f.write_str(s),
        }
    }
}

impl AttrValue {
    /// A decimal-integer.
    pub fn as_integer(&self) -> Result<u64, String> {
        match self {
            AttrValue::Integer(n) => Ok(*n),
            other => Err(format!("expected a decimal-integer, found {other}")),
        }
    }

    /// A decimal-floating-point: non-negative, digits and at most one '.' (an integer is one).
    pub fn as_float(&self) -> Result<f64, String> {
        match self {
            AttrValue::Integer(n) => Ok(*n as f64),
            AttrValue::Float(v) if !v.is_sign_negative() => Ok(*v),
            other => Err(format!("expected a decimal-floating-point, found {other}")),
        }
    }

    /// A signed-decimal-floating-point.
    pub fn as_signed_float(&self) -> Result<f64, String> {
        match self {
            AttrValue::Integer(n) => Ok(*n as f64),
            AttrValue::Float(v) => Ok(*v),
            other => Err(format!("expected a signed-decimal-floating-point, found {other}")),
        }
    }

    /// A quoted-string, which must not be empty unless the attribute allows it.
    pub fn as_quoted(&self) -> Result<&str, String> {
        match self {
            AttrValue::Quoted(s) if !s.is_empty() => Ok(s),
            AttrValue::Quoted(_) => Err("the quoted-string is empty".into()),
            other => Err(format!("expected a quoted-string, found {other}")),
        }
    }

    /// A quoted-string that may be empty (where the attribute's definition says so).
    pub fn as_quoted_or_empty(&self) -> Result<&str, String> {
        match self {
            AttrValue::Quoted(s) => Ok(s),
            other => Err(format!("expected a quoted-string, found {other}")),
        }
    }

    /// An enumerated-string (unquoted).
    pub fn as_enumerated(&self) -> Result<&str, String> {
        match self {
            AttrValue::Enumerated(s) => Ok(s),
            other => Err(format!("expected an enumerated-string, found {other}")),
        }
    }

    /// A decimal-resolution.
    pub fn as_resolution(&self) -> Result<(u64, u64), String> {
        match self {
            AttrValue::Resolution { width, height } => Ok((*width, *height)),
            other => Err(format!(
                "expected a decimal-resolution <width>x<height>, found {other}"
            )),
        }
    }

    /// A hexadecimal-sequence; the digits after the prefix.
    pub fn as_hex(&self) -> Result<&str, String> {
        match self {
            AttrValue::Hex(h) => Ok(h),
            other => Err(format!(
                "expected a hexadecimal-sequence (0x then [0-9A-F]), found {other}"
            )),
        }
    }
}

/// One attribute as written: its name, its value's raw text and the classified value.
#[derive(Debug, Clone)]
pub(super) struct Attr<'a> {
    pub name: &'a str,
    pub raw: &'a str,
    pub value: AttrValue,
}

/// A parsed attribute-list: the attributes (first occurrence of each name) and the names that
/// appeared again.
pub(super) struct AttrList<'a> {
    pub attrs: Vec<Attr<'a>>,
    pub duplicates: Vec<&'a str>,
}

impl<'a> AttrList<'a> {
    pub fn get(&self, name: &str) -> Option<&Attr<'a>> {
        self.attrs.iter().find(|a| a.name == name)
    }
}

/// Parses an attribute-list per §4.2 and classifies each value by its form. A duplicate
/// AttributeName is an error here (§4.2: it MUST NOT appear twice; clients SHOULD refuse).
pub fn attributes(s: &str) -> Result<Vec<(String, AttrValue)>, String> {
    let list = parse(s)?;
    if let Some(name) = list.duplicates.first() {
        return Err(format!("AttributeName {name} appears more than once"));
    }
    Ok(list
        .attrs
        .into_iter()
        .map(|a| (a.name.to_owned(), a.value))
        .collect())
}

/// The grammar, keeping going past duplicates so a checker can report them and still use the
/// tag. Errors name the byte offset within the list.
pub(super) fn parse(s: &str) -> Result<AttrList<'_>, String> {
    if s.is_empty() {
        return Err("empty attribute-list".into());
    }
    let bytes = s.as_bytes();
    let mut list = AttrList {
        attrs: Vec::new(),
        duplicates: Vec::new(),
    };
    // A set beside the list, so a tag with thousands of attributes stays linear.
    let mut names = std::collections::HashSet::new();
    let mut i = 0;
    loop {
        let start = i;
        while i < bytes.len() && bytes[i] != b'=' && bytes[i] != b',' {
            i += 1;
        }
        let name = &s[start..i];
        if name.is_empty() {
            return Err(format!("offset {start}: empty AttributeName"));
        }
        if !name
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(format!(
                "offset {start}: AttributeName {name:?} may contain only [A-Z], [0-9] and '-'"
            ));
        }
        if i == bytes.len() || bytes[i] == b',' {
            return Err(format!("offset {start}: {name} has no '=' and value"));
        }
        i += 1;
        let value_start = i;
        let value = if bytes.get(i) == Some(&b'"') {
            let Some(len) = s[i + 1..].find('"') else {
                return Err(format!("offset {i}: the quoted-string of {name} is not closed"));
            };
            let text = &s[i + 1..i + 1 + len];
            i += len + 2;
            if i < bytes.len() && bytes[i] != b',' {
                return Err(format!(
                    "offset {i}: expected ',' after the quoted-string of {name}"
                ));
            }
            AttrValue::Quoted(text.to_owned())
        } else {
            while i < bytes.len() && bytes[i] != b',' {
                i += 1;
            }
            classify(name, value_start, &s[value_start..i])?
        };
        let attr = Attr {
            name,
            raw: &s[value_start..i],
            value,
        };
        if names.insert(name) {
            list.attrs.push(attr);
        } else {
            list.duplicates.push(name);
        }
        if i == bytes.len() {
            return Ok(list);
        }
        i += 1;
        if i == bytes.len() {
            return Err(format!("offset {i}: the attribute-list ends with ','"));
        }
    }
}

/// The lexical class of an unquoted value.
fn classify(name: &str, offset: usize, raw: &str) -> Result<AttrValue, String> {
    if raw.is_empty() {
        return Err(format!("offset {offset}: {name} has an empty value"));
    }
    if let Some(bad) = raw.chars().find(|c| *c == '"' || c.is_whitespace()) {
        return Err(format!(
            "offset {offset}: the unquoted value of {name} contains {bad:?}"
        ));
    }
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    let integer = |p: &str| {
        if p.len() > 20 { None } else { p.parse::<u64>().ok() }
    };
    if digits(raw) {
        return integer(raw).map(AttrValue::Integer).ok_or_else(|| {
            format!("offset {offset}: the decimal-integer {raw} of {name} is larger than 2^64-1")
        });
    }
    if let Some(hex) = raw.strip_prefix("0x").or_else(|| raw.strip_prefix("0X")) {
        if !hex.is_empty()
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b))
        {
            return Ok(AttrValue::Hex(hex.to_owned()));
        }
    }
    let unsigned = raw.strip_prefix('-').unwrap_or(raw);
    let (int, frac) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let float_digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if (unsigned.len() != raw.len() || unsigned.contains('.'))
        && int.len() + frac.len() > 0
        && float_digits(int)
        && float_digits(frac)
    {
        if let Ok(v) = raw.parse::<f64>() {
            return Ok(AttrValue::Float(v));
        }
    }
    if let Some((w, h)) = raw.split_once('x') {
        if digits(w) && digits(h) {
            return match (integer(w), integer(h)) {
                (Some(width), Some(height)) => Ok(AttrValue::Resolution { width, height }),
                _ => Err(format!(
                    "offset {offset}: the resolution {raw} of {name} is out of range"
                )),
            };
        }
    }
    Ok(AttrValue::Enumerated(raw.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(s: &str) -> AttrValue {
        let mut list = attributes(s).unwrap();
        assert_eq!(list.len(), 1, "{s}");
        list.remove(0).1
    }

    #[test]
    fn classifies_each_value_type() {
        assert_eq!(one("A=\"x,y=z\""), AttrValue::Quoted("x,y=z".into()));
        assert_eq!(one("A=18446744073709551615"), AttrValue::Integer(u64::MAX));
        assert_eq!(one("A=0.33334"), AttrValue::Float(0.33334));
        assert_eq!(one("A=-2.5"), AttrValue::Float(-2.5));
        assert_eq!(one("A=.5"), AttrValue::Float(0.5));
        assert_eq!(one("A=0x1F"), AttrValue::Hex("1F".into()));
        assert_eq!(
            one("A=1920x1080"),
            AttrValue::Resolution {
                width: 1920,
                height: 1080
            }
        );
        assert_eq!(one("A=YES"), AttrValue::Enumerated("YES".into()));
        assert_eq!(one("A=TYPE-0"), AttrValue::Enumerated("TYPE-0".into()));
        // Not a number, not hex: left as an enumerated-string for the typed reader to refuse.
        assert_eq!(one("A=1.2.3"), AttrValue::Enumerated("1.2.3".into()));
        assert_eq!(one("A=0x1f"), AttrValue::Enumerated("0x1f".into()));
        assert_eq!(one("A=\"\""), AttrValue::Quoted(String::new()));
    }

    #[test]
    fn parses_a_whole_list_in_order() {
        let list = attributes("DURATION=0.33334,URI=\"filePart271.4.mp4\",INDEPENDENT=YES").unwrap();
        let names: Vec<&str> = list.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["DURATION", "URI", "INDEPENDENT"]);
    }

    #[test]
    fn rejects_what_the_grammar_forbids() {
        for bad in [
            "",
            "a=1",
            "A",
            "A=",
            "=1",
            "A=1,",
            "A=1,,B=2",
            "A=\"open",
            "A=\"x\"y",
            "A= 1",
            "A =1",
            "A=x y",
            "A=x\"y",
            "A=99999999999999999999",
            "A=1x99999999999999999999",
            "A=1,A=2",
        ] {
            assert!(attributes(bad).is_err(), "{bad:?} should fail");
        }
        let err = attributes("URI=\"a\",DURATION=1,URI=\"b\"").unwrap_err();
        assert!(err.contains("URI appears more than once"), "{err}");
    }

    #[test]
    fn typed_readers_convert_and_refuse() {
        assert_eq!(AttrValue::Integer(2).as_float(), Ok(2.0));
        assert!(AttrValue::Float(-1.0).as_float().is_err());
        assert!(AttrValue::Float(-0.0).as_float().is_err());
        assert_eq!(AttrValue::Float(-1.0).as_signed_float(), Ok(-1.0));
        assert!(AttrValue::Float(1.0).as_integer().is_err());
        assert!(AttrValue::Quoted(String::new()).as_quoted().is_err());
        assert_eq!(AttrValue::Quoted(String::new()).as_quoted_or_empty(), Ok(""));
        assert!(AttrValue::Quoted("YES".into()).as_enumerated().is_err());
        assert_eq!(
            AttrValue::Resolution { width: 2, height: 3 }.as_resolution(),
            Ok((2, 3))
        );
        assert!(AttrValue::Enumerated("0x1f".into()).as_hex().is_err());
    }

    #[test]
    fn duplicates_are_kept_apart_for_the_checker() {
        let list = parse("URI=\"a\",URI=\"b\"").unwrap();
        assert_eq!(list.attrs.len(), 1);
        assert_eq!(list.duplicates, ["URI"]);
        assert_eq!(list.get("URI").unwrap().raw, "\"a\"");
    }

    #[test]
    fn never_panics_on_multibyte_text() {
        for s in ["Ä=1", "A=\"é\"", "A=é", "A=\"é", "A=1,é", "A=\"\u{1F600}\",B=2"] {
            let _ = attributes(s);
        }
        assert_eq!(one("A=\"é\""), AttrValue::Quoted("é".into()));
    }
}

//! Reading tags the same way in both kinds of playlist: attribute-lists, typed attributes,
//! once-only tags, the tags both kinds share, and the §8 version floor.

use std::collections::{HashMap, HashSet};

use super::attributes::{self, AttrList, AttrValue};
use super::{Findings, decimal_integer, rules};

/// A version requirement of §8: the version, the feature and where it is used.
struct Need {
    version: u32,
    feature: &'static str,
    line: usize,
}

/// Findings plus what tag reading must remember across lines.
#[derive(Default)]
pub(super) struct Tags {
    pub out: Findings,
    once: HashMap<&'static str, usize>,
    need: Option<Need>,
    /// EXT-X-VERSION's value (0 when absent or unreadable) and line.
    pub version: u32,
    version_line: Option<usize>,
    define_names: HashSet<String>,
}

impl Tags {
    pub fn flag(&mut self, line: usize, rule: &'static str, detail: impl Into<String>) {
        self.out.push(line, rule, detail);
    }

    /// Records that a feature at `line` needs at least `version`.
    pub fn require(&mut self, version: u32, feature: &'static str, line: usize) {
        if self.need.as_ref().is_none_or(|n| version > n.version) {
            self.need = Some(Need {
                version,
                feature,
                line,
            });
        }
    }

    /// False (and a `duplicate-tag`) when a once-only tag appears again.
    pub fn once(&mut self, line: usize, name: &'static str) -> bool {
        if let Some(first) = self.once.get(name) {
            let detail = format!("#{name} appears again (first at line {first}); it may appear once");
            self.flag(line, rules::DUPLICATE_TAG, detail);
            return false;
        }
        self.once.insert(name, line);
        true
    }

    pub fn no_value(&mut self, line: usize, name: &str, value: Option<&str>) {
        if let Some(v) = value {
            self.flag(
                line,
                rules::MALFORMED_TAG,
                format!("#{name} takes no value, found {v:?}"),
            );
        }
    }

    /// The attribute-list of a tag; syntax errors and duplicate names are reported here.
    pub fn attrs<'v>(&mut self, line: usize, name: &str, value: Option<&'v str>) -> Option<AttrList<'v>> {
        let Some(value) = value else {
            self.flag(
                line,
                rules::MALFORMED_TAG,
                format!("#{name} needs an attribute-list"),
            );
            return None;
        };
        match attributes::parse(value) {
            Ok(list) => {
                for dup in &list.duplicates {
                    let detail = format!("#{name}: AttributeName {dup} appears more than once");
                    self.flag(line, rules::DUPLICATE_ATTRIBUTE, detail);
                }
                if list.attrs.iter().any(|a| a.name.starts_with("REQ-")) {
                    self.require(12, "an attribute named REQ-*", line);
                }
                Some(list)
            }
            Err(e) => {
                self.flag(line, rules::ATTRIBUTE_SYNTAX, format!("#{name}: {e}"));
                None
            }
        }
    }

    /// Reads one attribute with a typed reader; reports it missing (when required) or ill-typed
    /// under `rule`.
    pub fn read<T>(
        &mut self,
        at: (usize, &'static str, &str),
        list: &AttrList<'_>,
        name: &str,
        required: bool,
        reader: impl Fn(&AttrValue) -> Result<T, String>,
    ) -> Option<T> {
        let (line, rule, tag) = at;
        match list.get(name) {
            None => {
                if required {
                    self.flag(line, rule, format!("#{tag} lacks the required {name} attribute"));
                }
                None
            }
            Some(attr) => match reader(&attr.value) {
                Ok(v) => Some(v),
                Err(e) => {
                    self.flag(line, rule, format!("#{tag} {name}={}: {e}", attr.raw));
                    None
                }
            },
        }
    }

    /// A quoted-string attribute.
    pub fn quoted(
        &mut self,
        at: (usize, &'static str, &str),
        list: &AttrList<'_>,
        name: &str,
        required: bool,
    ) -> Option<String> {
        self.read(at, list, name, required, |v| v.as_quoted().map(str::to_owned))
    }

    /// An enumerated-string attribute restricted to `allowed`. Any other value is a violation:
    /// clients ignore the whole tag when a known enumerated attribute has an unknown value
    /// (§6.3.1).
    pub fn one_of(
        &mut self,
        at: (usize, &'static str, &str),
        list: &AttrList<'_>,
        name: &str,
        allowed: &[&str],
    ) -> Option<String> {
        let attr = list.get(name)?;
        match &attr.value {
            AttrValue::Enumerated(v) if allowed.contains(&v.as_str()) => Some(v.clone()),
            _ => {
                let (line, rule, tag) = at;
                let detail = format!(
                    "#{tag} {name}={}: expected {}; clients ignore the whole tag for an unknown value",
                    attr.raw,
                    allowed.join(" or ")
                );
                self.flag(line, rule, detail);
                None
            }
        }
    }

    /// An enumerated attribute whose only value is YES.
    pub fn yes(&mut self, at: (usize, &'static str, &str), list: &AttrList<'_>, name: &str) -> bool {
        self.one_of(at, list, name, &["YES"]).is_some()
    }

    pub fn version(&mut self, n: usize, value: Option<&str>) {
        if !self.once(n, "EXT-X-VERSION") {
            return;
        }
        self.version_line = Some(n);
        match value
            .and_then(decimal_integer)
            .and_then(|v| u32::try_from(v).ok())
        {
            Some(v) if v >= 1 => self.version = v,
            _ => {
                let detail = format!("#EXT-X-VERSION needs an integer of at least 1, found {value:?}");
                self.flag(n, rules::VERSION, detail);
            }
        }
    }

    /// EXT-X-START (§4.4.2.2).
    pub fn start(&mut self, n: usize, value: Option<&str>) {
        if !self.once(n, "EXT-X-START") {
            return;
        }
        let Some(list) = self.attrs(n, "EXT-X-START", value) else {
            return;
        };
        let at = (n, rules::MALFORMED_TAG, "EXT-X-START");
        self.read(at, &list, "TIME-OFFSET", true, AttrValue::as_signed_float);
        self.one_of(at, &list, "PRECISE", &["YES", "NO"]);
    }

    /// EXT-X-DEFINE (§4.4.2.3); IMPORT only in Media Playlists.
    pub fn define(&mut self, n: usize, value: Option<&str>, multivariant: bool) {
        self.require(8, "EXT-X-DEFINE (variable substitution)", n);
        let Some(list) = self.attrs(n, "EXT-X-DEFINE", value) else {
            return;
        };
        let at = (n, rules::MALFORMED_TAG, "EXT-X-DEFINE");
        let given: Vec<&str> = ["NAME", "IMPORT", "QUERYPARAM"]
            .into_iter()
            .filter(|k| list.get(k).is_some())
            .collect();
        let [key] = given[..] else {
            self.flag(
                n,
                at.1,
                "#EXT-X-DEFINE needs exactly one of NAME, IMPORT or QUERYPARAM",
            );
            return;
        };
        match key {
            "QUERYPARAM" => self.require(11, "EXT-X-DEFINE with QUERYPARAM", n),
            "IMPORT" if multivariant => {
                self.flag(
                    n,
                    at.1,
                    "#EXT-X-DEFINE with IMPORT is allowed only in Media Playlists",
                );
            }
            "NAME" => {
                self.read(at, &list, "VALUE", true, |v| v.as_quoted_or_empty().map(|_| ()));
            }
            _ => {}
        }
        let var = self.read(at, &list, key, true, |v| {
            let name = v.as_quoted()?;
            if name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                Ok(name.to_owned())
            } else {
                Err(format!("variable name {name:?} may use only [a-zA-Z0-9-_]"))
            }
        });
        if let Some(var) = var.filter(|v| !self.define_names.insert(v.clone())) {
            self.flag(n, at.1, format!("#EXT-X-DEFINE declares variable {var} twice"));
        }
    }

    /// §8: EXT-X-VERSION present and high enough for what was required. Returns the version in
    /// force (1 when absent).
    pub fn check_version(&mut self) -> u32 {
        let declared = if self.version == 0 { 1 } else { self.version };
        let Some(need) = self.need.take().filter(|n| n.version > 1) else {
            return declared;
        };
        match self.version_line {
            None => {
                let detail = format!(
                    "EXT-X-VERSION is missing; {} (line {}) needs version {} or higher",
                    need.feature, need.line, need.version
                );
                self.flag(1, rules::VERSION, detail);
            }
            Some(line) if declared < need.version => {
                let detail = format!(
                    "EXT-X-VERSION is {declared}, but {} (line {}) needs {} or higher",
                    need.feature, need.line, need.version
                );
                self.flag(line, rules::VERSION, detail);
            }
            Some(_) => {}
        }
        declared
    }
}

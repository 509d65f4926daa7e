//! RFC 6381 codec strings of a CODECS attribute: the ones Popcast writes checked exactly, the
//! rest by their general shape.

/// What a codec string describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CodecKind {
    Video,
    Audio,
    Other,
}

/// Checks one entry of a CODECS list and says whether it is video or audio.
pub(super) fn check(entry: &str) -> Result<CodecKind, String> {
    let (fourcc, rest) = match entry.split_once('.') {
        Some((f, r)) => (f, Some(r)),
        None => (entry, None),
    };
    let hex = |s: &str| s.bytes().all(|b| b.is_ascii_hexdigit());
    match (fourcc, rest) {
        // ISO/IEC 14496-15: avc1.PPCCLL, profile_idc, constraint flags, level_idc in hex.
        ("avc1" | "avc3", Some(p)) => {
            if p.len() == 6 && hex(p) {
                Ok(CodecKind::Video)
            } else {
                Err(format!("{entry}: H.264 is {fourcc}.PPCCLL (six hex digits)"))
            }
        }
        ("avc1" | "avc3", None) => Err(format!("{entry}: H.264 needs .PPCCLL")),
        // RFC 6381 §3.3: mp4a.OTI[.AOT], OTI in hex; for OTI 40 (MPEG-4 Audio) the audio object
        // type in decimal is required.
        ("mp4a", Some(p)) => {
            let (oti, aot) = match p.split_once('.') {
                Some((o, a)) => (o, Some(a)),
                None => (p, None),
            };
            if oti.len() != 2 || !hex(oti) {
                return Err(format!("{entry}: mp4a.OTI needs a two-digit hex OTI"));
            }
            match aot {
                Some(a) if (1..=3).contains(&a.len()) && a.bytes().all(|b| b.is_ascii_digit()) => {
                    match a.parse::<u8>() {
                        Ok(1..=127) => Ok(CodecKind::Audio),
                        _ => Err(format!("{entry}: audio object type {a} is not 1-127")),
                    }
                }
                Some(a) => Err(format!("{entry}: audio object type {a:?} is not a decimal")),
                None if oti.eq_ignore_ascii_case("40") => Err(format!(
                    "{entry}: mp4a.40 needs the audio object type, e.g. mp4a.40.2"
                )),
                None => Ok(CodecKind::Audio),
            }
        }
        ("mp4a", None) => Err(format!("{entry}: mp4a needs .OTI, e.g. mp4a.40.2")),
        // The Opus-in-ISOBMFF sample entry has no parameters.
        ("Opus" | "opus", None) => Ok(CodecKind::Audio),
        ("Opus" | "opus", Some(_)) => Err(format!("{entry}: Opus takes no parameters")),
        // ISO/IEC 14496-15 Annex E: hvc1.[A-C]?profile.compat.(L|H)level[.constraints].
        ("hvc1" | "hev1", Some(p)) => {
            let fields: Vec<&str> = p.split('.').collect();
            let profile = fields[0].trim_start_matches(['A', 'B', 'C']);
            let tier_level = fields.get(2).copied().unwrap_or("");
            let ok = fields.len() >= 3
                && !profile.is_empty()
                && profile.bytes().all(|b| b.is_ascii_digit())
                && !fields[1].is_empty()
                && hex(fields[1])
                && (tier_level.starts_with('L') || tier_level.starts_with('H'))
                && tier_level.len() > 1
                && tier_level[1..].bytes().all(|b| b.is_ascii_digit())
                && fields[3..].iter().all(|c| (1..=2).contains(&c.len()) && hex(c));
            if ok {
                Ok(CodecKind::Video)
            } else {
                Err(format!(
                    "{entry}: HEVC is {fourcc}.profile.compat.(L|H)level[.constraints]"
                ))
            }
        }
        // AV1 ISOBMFF binding: av01.P.LLT.DD[...].
        ("av01", Some(p)) => {
            let fields: Vec<&str> = p.split('.').collect();
            let ok = fields.len() >= 3
                && fields[0].len() == 1
                && fields[0].bytes().all(|b| b.is_ascii_digit())
                && fields[1].len() == 3
                && fields[1].as_bytes()[..2].iter().all(u8::is_ascii_digit)
                && matches!(fields[1].as_bytes()[2], b'M' | b'H')
                && fields[2].len() == 2
                && fields[2].bytes().all(|b| b.is_ascii_digit());
            if ok {
                Ok(CodecKind::Video)
            } else {
                Err(format!("{entry}: AV1 is av01.P.LLT.DD"))
            }
        }
        _ => generic(entry, fourcc, rest),
    }
}

/// Any other sample entry: a four-character code registered for a format HLS carries, then
/// dot-separated parameters.
fn generic(entry: &str, fourcc: &str, rest: Option<&str>) -> Result<CodecKind, String> {
    let params_ok = rest.is_none_or(|r| {
        r.split('.').all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'+')
        })
    });
    if !params_ok {
        return Err(format!(
            "{entry:?} is not an RFC 6381 codec (four-character code, then .parameters)"
        ));
    }
    match fourcc {
        "dvh1" | "dvhe" | "dva1" | "dvav" | "dav1" | "vp08" | "vp09" | "mp4v" | "vvc1" | "vvi1" => {
            Ok(CodecKind::Video)
        }
        "ac-3" | "ec-3" | "ac-4" | "fLaC" | "alac" | "mhm1" | "mhm2" | "apac" => Ok(CodecKind::Audio),
        "stpp" | "wvtt" => Ok(CodecKind::Other),
        _ => Err(format!(
            "{entry:?}: {fourcc:?} is not a sample entry of a format HLS carries (MP4RA codes such as \
             avc1, hvc1, av01, mp4a, ac-3, ec-3, Opus, fLaC, stpp, wvtt)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_codecs_popcast_writes() {
        assert_eq!(check("avc1.64001f"), Ok(CodecKind::Video));
        assert_eq!(check("avc1.4D401E"), Ok(CodecKind::Video));
        assert_eq!(check("mp4a.40.2"), Ok(CodecKind::Audio));
        assert_eq!(check("mp4a.40.5"), Ok(CodecKind::Audio));
        assert_eq!(check("mp4a.40.29"), Ok(CodecKind::Audio));
        assert_eq!(check("opus"), Ok(CodecKind::Audio));
        assert_eq!(check("Opus"), Ok(CodecKind::Audio));
    }

    #[test]
    fn other_codecs_by_shape() {
        assert_eq!(check("hvc1.2.4.L153.b0"), Ok(CodecKind::Video));
        assert_eq!(check("hvc1.1.6.L93.B0"), Ok(CodecKind::Video));
        assert_eq!(check("av01.0.04M.08"), Ok(CodecKind::Video));
        assert_eq!(check("ec-3"), Ok(CodecKind::Audio));
        assert_eq!(check("fLaC"), Ok(CodecKind::Audio));
        assert_eq!(check("stpp.ttml.im1t"), Ok(CodecKind::Other));
        assert_eq!(check("wvtt"), Ok(CodecKind::Other));
        assert_eq!(check("vp09.00.10.08"), Ok(CodecKind::Video));
    }

    #[test]
    fn malformed_codecs() {
        for bad in [
            "avc1",
            "avc1.64001",
            "avc1.64001g",
            "avc1.66.30",
            "mp4a",
            "mp4a.40",
            "mp4a.4.2",
            "mp4a.40.0",
            "mp4a.40.x",
            "mp4a.40.200",
            "opus.1",
            "hvc1.1.6",
            "hvc1.x.6.L93",
            "av01.0.4M.08",
            "",
            "h264",
            "avc1 ",
            "abc",
            "abcd",
            "stpp..x",
            "av01.0.1é.08",
        ] {
            assert!(check(bad).is_err(), "{bad:?}");
        }
    }
}

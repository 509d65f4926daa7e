//! A WHIP client's SDP offer, checked before the WebRTC stack sees it: bounded in size,
//! lines and candidates, with one sending video section offering H.264 and/or one sending
//! audio section offering Opus; refusals say which. Also reads `sprop-parameter-sets`.

use base64::Engine as _;
use bytes::Bytes;

/// Most lines an offer may have (a browser's is about 100; a simulcast offer about 300).
pub const MAX_LINES: usize = 2_000;
/// Most parameter sets read from `sprop-parameter-sets`.
const MAX_SPROP: usize = 8;

/// Why an offer cannot be used (a 400, with this as the body).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OfferError {
    #[error("the offer is not UTF-8 text")]
    NotUtf8,
    #[error("the offer is {size} bytes; the limit is {max}")]
    TooLarge { size: usize, max: usize },
    #[error("the offer has {count} lines; the limit is {max}")]
    TooManyLines { count: usize, max: usize },
    #[error("the offer has {count} ICE candidates; the limit is {max}")]
    TooManyCandidates { count: usize, max: usize },
    #[error("the offer is not SDP: it must start with v=0")]
    NotSdp,
    #[error("line {line}: {why}")]
    BadLine { line: usize, why: String },
    #[error("the offer has no audio or video section to publish")]
    NoMedia,
    #[error("the offer has {count} {kind} sections; a WHIP publish carries at most one of each")]
    TooManySections { kind: &'static str, count: usize },
    #[error("the offer's video offers no H.264 (it offers {offered}); set the encoder to H.264")]
    NoH264 { offered: String },
    #[error("the offer's audio offers no Opus (it offers {offered})")]
    NoOpus { offered: String },
    #[error("the offer's {kind} section does not send (a={direction}); WHIP is for publishing")]
    NotSending { kind: &'static str, direction: String },
    #[error("sprop-parameter-sets: {0}")]
    BadSprop(String),
}

/// What the origin needs from an acceptable offer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Offer {
    pub video: bool,
    pub audio: bool,
    /// SPS and PPS NAL units from `sprop-parameter-sets`, if the offer carries them.
    pub sprop: Vec<Bytes>,
}

#[derive(Default)]
struct Section {
    kind: String,
    codecs: Vec<String>,
    direction: Option<String>,
    port_zero: bool,
    sprop: Option<String>,
}

/// Checks an offer; `max_bytes` and `max_candidates` come from the config.
pub fn check(body: &[u8], max_bytes: usize, max_candidates: usize) -> Result<Offer, OfferError> {
    if body.len() > max_bytes {
        return Err(OfferError::TooLarge {
            size: body.len(),
            max: max_bytes,
        });
    }
    let text = std::str::from_utf8(body).map_err(|_| OfferError::NotUtf8)?;
    let lines: Vec<&str> = text.lines().map(|l| l.trim_end_matches('\r')).collect();
    if lines.len() > MAX_LINES {
        return Err(OfferError::TooManyLines {
            count: lines.len(),
            max: MAX_LINES,
        });
    }
    if lines.first().map(|l| l.trim()) != Some("v=0") {
        return Err(OfferError::NotSdp);
    }
    let candidates = lines.iter().filter(|l| l.starts_with("a=candidate:")).count();
    if candidates > max_candidates {
        return Err(OfferError::TooManyCandidates {
            count: candidates,
            max: max_candidates,
        });
    }
    let mut sections: Vec<Section> = Vec::new();
    let mut session_direction: Option<String> = None;
    for (i, line) in lines.iter().enumerate() {
        if line.is_empty() {
            continue;
        }
        let bad = |why: &str| OfferError::BadLine {
            line: i + 1,
            why: why.to_string(),
        };
        let Some((key, value)) = line.split_once('=') else {
            return Err(bad("not of the form x=value"));
        };
        if key.len() != 1 || line.chars().any(|c| c.is_control() && c != '\t') {
            return Err(bad("not of the form x=value"));
        }
        match key {
            "m" => {
                let mut f = value.split(' ');
                let kind = f.next().unwrap_or_default().to_string();
                let port = f.next().ok_or_else(|| bad("an m= line without a port"))?;
                sections.push(Section {
                    kind,
                    port_zero: port == "0",
                    ..Section::default()
                });
            }
            "a" => {
                let (name, arg) = value.split_once(':').unwrap_or((value, ""));
                let direction = matches!(name, "sendrecv" | "sendonly" | "recvonly" | "inactive");
                match sections.last_mut() {
                    None if direction => session_direction = Some(name.to_string()),
                    None => {}
                    Some(s) if direction => s.direction = Some(name.to_string()),
                    Some(s) if name == "rtpmap" => {
                        // a=rtpmap:<pt> <name>/<rate>[/<channels>]
                        let codec = arg
                            .split_once(' ')
                            .and_then(|(_, enc)| enc.split('/').next())
                            .ok_or_else(|| bad("an rtpmap without an encoding name"))?;
                        if s.codecs.len() < 64 && !s.codecs.iter().any(|c| c.eq_ignore_ascii_case(codec)) {
                            s.codecs.push(codec.to_string());
                        }
                    }
                    Some(s) if name == "fmtp" && s.sprop.is_none() => {
                        if let Some(v) = arg
                            .split([';', ' '])
                            .find_map(|p| p.trim().strip_prefix("sprop-parameter-sets="))
                        {
                            s.sprop = Some(v.to_string());
                        }
                    }
                    Some(_) => {}
                }
            }
            _ => {}
        }
    }
    let mut offer = Offer::default();
    for (kind, codec, label) in [("video", "H264", "video"), ("audio", "opus", "audio")] {
        let of_kind: Vec<&Section> = sections
            .iter()
            .filter(|s| s.kind == kind && !s.port_zero)
            .collect();
        if of_kind.len() > 1 {
            return Err(OfferError::TooManySections {
                kind: label,
                count: of_kind.len(),
            });
        }
        let Some(s) = of_kind.first() else { continue };
        let direction = s
            .direction
            .clone()
            .or_else(|| session_direction.clone())
            .unwrap_or_else(|| "sendrecv".into());
        if direction != "sendonly" && direction != "sendrecv" {
            return Err(OfferError::NotSending {
                kind: label,
                direction,
            });
        }
        if !s.codecs.iter().any(|c| c.eq_ignore_ascii_case(codec)) {
            let offered = if s.codecs.is_empty() {
                "nothing".to_string()
            } else {
                s.codecs
                    .iter()
                    .filter(|c| !is_helper(c))
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            return Err(if kind == "video" {
                OfferError::NoH264 { offered }
            } else {
                OfferError::NoOpus { offered }
            });
        }
        if kind == "video" {
            offer.video = true;
            if let Some(sp) = &s.sprop {
                offer.sprop = sprop(sp)?;
            }
        } else {
            offer.audio = true;
        }
    }
    if !offer.video && !offer.audio {
        return Err(OfferError::NoMedia);
    }
    Ok(offer)
}

/// RTP payload formats that travel beside a codec (retransmission, FEC, comfort noise).
fn is_helper(codec: &str) -> bool {
    ["rtx", "red", "ulpfec", "flexfec-03", "CN", "telephone-event"]
        .iter()
        .any(|h| codec.eq_ignore_ascii_case(h))
}

/// `sprop-parameter-sets` (RFC 6184 §8.1): base64 NAL units separated by commas.
fn sprop(value: &str) -> Result<Vec<Bytes>, OfferError> {
    let mut sets = Vec::new();
    for (i, part) in value.split(',').enumerate() {
        if i >= MAX_SPROP {
            return Err(OfferError::BadSprop(format!(
                "more than {MAX_SPROP} parameter sets"
            )));
        }
        let nal = base64::engine::general_purpose::STANDARD
            .decode(part.trim())
            .map_err(|e| OfferError::BadSprop(format!("set {}: not base64 ({e})", i + 1)))?;
        if nal.is_empty() {
            return Err(OfferError::BadSprop(format!("set {} is empty", i + 1)));
        }
        sets.push(Bytes::from(nal));
    }
    Ok(sets)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHROME_LIKE: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendonly\r\na=rtpmap:111 opus/48000/2\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96 97 102\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na=sendonly\r\na=rtpmap:96 VP8/90000\r\n\
a=rtpmap:97 rtx/90000\r\na=rtpmap:102 H264/90000\r\n\
a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f;sprop-parameter-sets=Z0LAHtkA,aMuDyyA=\r\n";

    #[test]
    fn a_browser_offer_is_taken_with_its_parameter_sets() {
        let o = check(CHROME_LIKE.as_bytes(), 32 * 1024, 64).unwrap();
        assert!(o.video && o.audio);
        assert_eq!(o.sprop.len(), 2);
        assert_eq!(o.sprop[0][0] & 0x1f, 7);
        assert_eq!(o.sprop[1][0] & 0x1f, 8);
    }

    #[test]
    fn unusable_offers_are_refused_with_the_reason() {
        let no_h264 = CHROME_LIKE.replace("H264/90000", "VP9/90000");
        assert_eq!(
            check(no_h264.as_bytes(), 1 << 16, 64).unwrap_err().to_string(),
            "the offer's video offers no H.264 (it offers VP8, VP9); set the encoder to H.264"
        );
        let no_opus = CHROME_LIKE.replace("opus/48000/2", "PCMU/8000");
        assert!(matches!(
            check(no_opus.as_bytes(), 1 << 16, 64),
            Err(OfferError::NoOpus { .. })
        ));
        let recv = CHROME_LIKE.replacen("a=sendonly", "a=recvonly", 1);
        assert!(matches!(
            check(recv.as_bytes(), 1 << 16, 64),
            Err(OfferError::NotSending { kind: "audio", .. })
        ));
        assert_eq!(check(b"hello", 1 << 16, 64), Err(OfferError::NotSdp));
        assert_eq!(check(&[0xff, 0xfe], 1 << 16, 64), Err(OfferError::NotUtf8));
        assert!(matches!(
            check(CHROME_LIKE.as_bytes(), 100, 64),
            Err(OfferError::TooLarge { .. })
        ));
        let many = format!(
            "{CHROME_LIKE}{}",
            "a=candidate:1 1 udp 1 10.0.0.1 9 typ host\r\n".repeat(65)
        );
        assert_eq!(
            check(many.as_bytes(), 1 << 20, 64),
            Err(OfferError::TooManyCandidates { count: 65, max: 64 })
        );
        let lines = format!("{CHROME_LIKE}{}", "a=x\r\n".repeat(MAX_LINES));
        assert!(matches!(
            check(lines.as_bytes(), 1 << 20, 64),
            Err(OfferError::TooManyLines { .. })
        ));
        assert!(matches!(
            check(b"v=0\r\ns=-\r\n", 1 << 16, 64),
            Err(OfferError::NoMedia)
        ));
        let two = format!("{CHROME_LIKE}m=video 9 UDP/TLS/RTP/SAVPF 102\r\na=rtpmap:102 H264/90000\r\n");
        assert!(matches!(
            check(two.as_bytes(), 1 << 16, 64),
            Err(OfferError::TooManySections {
                kind: "video",
                count: 2
            })
        ));
        let bad_sprop = CHROME_LIKE.replace("Z0LAHtkA", "!!");
        assert!(matches!(
            check(bad_sprop.as_bytes(), 1 << 16, 64),
            Err(OfferError::BadSprop(_))
        ));
        assert!(matches!(
            check(b"v=0\r\nnonsense\r\n", 1 << 16, 64),
            Err(OfferError::BadLine { line: 2, .. })
        ));
    }

    #[test]
    fn audio_only_and_video_only_offers_are_taken() {
        let audio_only: String = CHROME_LIKE.split("m=video").next().unwrap().into();
        let o = check(audio_only.as_bytes(), 1 << 16, 64).unwrap();
        assert!(o.audio && !o.video);
        let video_only = CHROME_LIKE.replace("m=audio 9", "m=audio 0");
        let o = check(video_only.as_bytes(), 1 << 16, 64).unwrap();
        assert!(o.video && !o.audio);
    }
}

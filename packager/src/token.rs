//! Viewer tokens for ticketed events: minted by the origin with the event's key, verified
//! offline by edges on every request. Sans-IO: the clock is an argument.
//!
//! ```text
//! v1.<payload>.<mac>
//!   payload = base64url("<kid>:<event>:<expires>[:<session>]")   (no padding)
//!   mac     = base64url(HMAC-SHA256(key[kid], "v1.<payload>"))   (no padding)
//! ```
//!
//! - `kid` names the event key that signed the token (1–32 of `A-Z a-z 0-9 - _`). An edge
//!   holds an event's current key and the ones before it until their tokens expire, so a
//!   key rotates without cutting viewers who hold tokens signed by the previous one.
//! - `event` is the event id (see [`crate::naming::check_name`]); a token for another
//!   event is refused.
//! - `expires` is Unix seconds; a token is valid while `now < expires`.
//! - `session` (optional, 1–64 of `A-Z a-z 0-9 - _`) is a ticket or session id the
//!   operator's system attaches; it is signed and reported, not interpreted.
//!
//! HMAC-SHA256 rather than CTA-5007 (Common Access Token): CAT is a CWT (CBOR, COSE) with a
//! claim set built for CDNs' URL and header policies; our edges need event, expiry and
//! session, and a CBOR/COSE stack is a larger parser surface for peer bytes than this
//! format's three fields. The MAC is compared in constant time (`ring::hmac::verify`).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ring::hmac;
use std::fmt;

/// The version prefix every token starts with.
pub const PREFIX: &str = "v1.";
/// Longest token accepted (bytes); longer input is refused before any decoding.
pub const MAX_TOKEN_LEN: usize = 512;
/// Longest key id and session id.
pub const MAX_KID_LEN: usize = 32;
pub const MAX_SESSION_LEN: usize = 64;
/// Shortest event key (bytes): HMAC-SHA256 keys shorter than the hash weaken it.
pub const MIN_KEY_LEN: usize = 32;

/// Why a token was refused. Messages name the problem and never echo the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("token is {len} bytes, at most {max}")]
    TooLong { len: usize, max: usize },
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    #[error("token field `{field}`: {reason}")]
    BadField { field: &'static str, reason: String },
    #[error("token signed by unknown key {kid:?}")]
    UnknownKey { kid: String },
    #[error("token signature does not match")]
    BadSignature,
    #[error("token expired at {expires} (now {now})")]
    Expired { expires: u64, now: u64 },
    #[error("token is for another event")]
    WrongEvent,
    #[error("event key {kid:?} is {len} bytes, at least {MIN_KEY_LEN}")]
    ShortKey { kid: String, len: usize },
}

/// What a valid token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    pub kid: String,
    pub event: String,
    /// Unix seconds.
    pub expires: u64,
    pub session: Option<String>,
}

/// One event key: its id and HMAC key. The secret is never printed.
#[derive(Clone)]
pub struct EventKey {
    kid: String,
    key: hmac::Key,
}

impl fmt::Debug for EventKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

fn check_id(field: &'static str, s: &str, max: usize) -> Result<(), TokenError> {
    let bad = |reason: String| Err(TokenError::BadField { field, reason });
    if s.is_empty() {
        return bad("empty".into());
    }
    if s.len() > max {
        return bad(format!("{} bytes, at most {max}", s.len()));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        return bad(format!("contains {c:?} (allowed: A-Z a-z 0-9 - _)"));
    }
    Ok(())
}

fn check_event(event: &str) -> Result<(), TokenError> {
    crate::naming::check_name("event", event).map_err(|e| TokenError::BadField {
        field: "event",
        reason: e.to_string(),
    })
}

impl EventKey {
    /// A key named `kid` with secret bytes `secret` (at least [`MIN_KEY_LEN`]).
    pub fn new(kid: &str, secret: &[u8]) -> Result<Self, TokenError> {
        check_id("kid", kid, MAX_KID_LEN)?;
        if secret.len() < MIN_KEY_LEN {
            return Err(TokenError::ShortKey {
                kid: kid.to_string(),
                len: secret.len(),
            });
        }
        Ok(Self {
            kid: kid.to_string(),
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
        })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// A token for `event` valid until `expires` (Unix seconds), optionally naming a
    /// session or ticket.
    pub fn mint(&self, event: &str, expires: u64, session: Option<&str>) -> Result<String, TokenError> {
        check_event(event)?;
        if let Some(s) = session {
            check_id("session", s, MAX_SESSION_LEN)?;
        }
        let mut payload = format!("{}:{event}:{expires}", self.kid);
        if let Some(s) = session {
            payload.push(':');
            payload.push_str(s);
        }
        let signed = format!("{PREFIX}{}", B64.encode(payload));
        let tag = hmac::sign(&self.key, signed.as_bytes());
        Ok(format!("{signed}.{}", B64.encode(tag.as_ref())))
    }
}

/// A token taken apart, not yet verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed<'a> {
    pub claims: Claims,
    /// The bytes the MAC covers (`v1.<payload>`).
    pub signed: &'a str,
    pub mac: Vec<u8>,
}

/// Takes a token apart and checks its shape and fields; no key is involved.
pub fn parse(token: &str) -> Result<Parsed<'_>, TokenError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::TooLong {
            len: token.len(),
            max: MAX_TOKEN_LEN,
        });
    }
    let rest = token
        .strip_prefix(PREFIX)
        .ok_or(TokenError::Malformed("does not start with \"v1.\""))?;
    let (payload_b64, mac_b64) = rest
        .split_once('.')
        .ok_or(TokenError::Malformed("no signature part"))?;
    let signed = &token[..PREFIX.len() + payload_b64.len()];
    let payload = B64
        .decode(payload_b64)
        .map_err(|_| TokenError::Malformed("payload is not base64url"))?;
    let mac = B64
        .decode(mac_b64)
        .map_err(|_| TokenError::Malformed("signature is not base64url"))?;
    if mac.len() != 32 {
        return Err(TokenError::Malformed("signature is not 32 bytes"));
    }
    let payload = std::str::from_utf8(&payload).map_err(|_| TokenError::Malformed("payload is not UTF-8"))?;
    let mut fields = payload.split(':');
    let kid = fields.next().unwrap_or_default();
    let event = fields
        .next()
        .ok_or(TokenError::Malformed("payload has no event"))?;
    let expires = fields
        .next()
        .ok_or(TokenError::Malformed("payload has no expiry"))?;
    let session = fields.next();
    if fields.next().is_some() {
        return Err(TokenError::Malformed("payload has more than four fields"));
    }
    check_id("kid", kid, MAX_KID_LEN)?;
    check_event(event)?;
    if expires.is_empty() || expires.len() > 20 || !expires.bytes().all(|b| b.is_ascii_digit()) {
        return Err(TokenError::BadField {
            field: "expires",
            reason: "not a decimal number of seconds".into(),
        });
    }
    let expires = expires.parse::<u64>().map_err(|_| TokenError::BadField {
        field: "expires",
        reason: "out of range".into(),
    })?;
    if let Some(s) = session {
        check_id("session", s, MAX_SESSION_LEN)?;
    }
    Ok(Parsed {
        claims: Claims {
            kid: kid.to_string(),
            event: event.to_string(),
            expires,
            session: session.map(str::to_string),
        },
        signed,
        mac,
    })
}

/// Verifies `token` for `event` at `now` (Unix seconds) against an event's keys (current
/// and previous); the first refusal found is returned, signature before expiry, so that an
/// expired forgery reads as a forgery.
pub fn verify(token: &str, keys: &[EventKey], event: &str, now: u64) -> Result<Claims, TokenError> {
    let p = parse(token)?;
    let key = keys
        .iter()
        .find(|k| k.kid == p.claims.kid)
        .ok_or_else(|| TokenError::UnknownKey {
            kid: p.claims.kid.clone(),
        })?;
    hmac::verify(&key.key, p.signed.as_bytes(), &p.mac).map_err(|_| TokenError::BadSignature)?;
    if p.claims.event != event {
        return Err(TokenError::WrongEvent);
    }
    if now >= p.claims.expires {
        return Err(TokenError::Expired {
            expires: p.claims.expires,
            now,
        });
    }
    Ok(p.claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"an event key of at least 32 bytes!!";

    fn key(kid: &str) -> EventKey {
        EventKey::new(kid, SECRET).unwrap()
    }

    #[test]
    fn a_minted_token_verifies_for_its_event_until_it_expires() {
        let k = key("k1");
        let t = k.mint("clinic", 1_000, Some("ticket-42")).unwrap();
        assert!(t.starts_with("v1.") && t.len() < 200, "{t}");
        let c = verify(&t, std::slice::from_ref(&k), "clinic", 999).unwrap();
        assert_eq!(c.event, "clinic");
        assert_eq!(c.session.as_deref(), Some("ticket-42"));
        assert_eq!(
            verify(&t, std::slice::from_ref(&k), "clinic", 1_000),
            Err(TokenError::Expired {
                expires: 1_000,
                now: 1_000
            })
        );
        assert_eq!(
            verify(&t, std::slice::from_ref(&k), "other", 10),
            Err(TokenError::WrongEvent)
        );
        let no_session = k.mint("clinic", 50, None).unwrap();
        assert_eq!(verify(&no_session, &[k], "clinic", 1).unwrap().session, None);
    }

    #[test]
    fn forged_and_foreign_tokens_are_refused() {
        let k = key("k1");
        let t = k.mint("clinic", 1_000, None).unwrap();
        // Another key with the same id: the signature does not match.
        let other = EventKey::new("k1", b"another event key of 32 bytes or more").unwrap();
        assert_eq!(verify(&t, &[other], "clinic", 1), Err(TokenError::BadSignature));
        // A changed expiry with the old signature.
        let (_, mac) = t.rsplit_once('.').unwrap();
        let forged = format!("{PREFIX}{}.{mac}", B64.encode("k1:clinic:99999999"));
        assert_eq!(
            verify(&forged, std::slice::from_ref(&k), "clinic", 1),
            Err(TokenError::BadSignature)
        );
        // An unknown key id.
        assert!(matches!(
            verify(&t, &[key("k2")], "clinic", 1),
            Err(TokenError::UnknownKey { .. })
        ));
        // An expired forgery reads as a forgery.
        let expired_forgery = format!("{PREFIX}{}.{mac}", B64.encode("k1:clinic:5"));
        assert_eq!(
            verify(&expired_forgery, &[k], "clinic", 10),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn a_rotated_key_keeps_earlier_tokens_valid_while_it_is_held() {
        let (old, new) = (
            key("k1"),
            EventKey::new("k2", b"the next event key, 32 bytes or more").unwrap(),
        );
        let before = old.mint("clinic", 1_000, None).unwrap();
        let after = new.mint("clinic", 1_000, None).unwrap();
        let ring = [new.clone(), old];
        assert!(verify(&before, &ring, "clinic", 1).is_ok());
        assert!(verify(&after, &ring, "clinic", 1).is_ok());
        assert!(verify(&before, &[new], "clinic", 1).is_err());
    }

    /// The committed fuzz seeds were minted with Python's hmac and base64 modules: the format
    /// is what this file says, not only what this code does.
    #[test]
    fn tokens_minted_by_another_implementation_verify() {
        let k = [EventKey::new("k1", b"fuzzing key, thirty-two bytes long").unwrap()];
        let seed = |name: &str| {
            let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz/corpus/token/");
            std::fs::read_to_string(format!("{dir}{name}")).unwrap()
        };
        assert_eq!(verify(&seed("valid"), &k, "ev", 1_000).unwrap().expires, 2_000);
        let c = verify(&seed("valid-session"), &k, "ev", 1_000).unwrap();
        assert_eq!(c.session.as_deref(), Some("ticket-42"));
        assert_eq!(k[0].mint("ev", 2_000, None).unwrap(), seed("valid"));
        assert!(matches!(
            verify(&seed("expired"), &k, "ev", 1_000),
            Err(TokenError::Expired { .. })
        ));
        assert_eq!(
            verify(&seed("forged"), &k, "ev", 1_000),
            Err(TokenError::BadSignature)
        );
        assert_eq!(
            verify(&seed("other-event"), &k, "ev", 1_000),
            Err(TokenError::WrongEvent)
        );
    }

    #[test]
    fn garbage_is_refused_with_a_reason() {
        let k = [key("k1")];
        let good_mac = B64.encode([0u8; 32]);
        let cases: Vec<(String, &str)> = vec![
            (String::new(), "v1."),
            ("v2.abc.def".into(), "v1."),
            ("v1.abc".into(), "no signature"),
            ("v1.@@@.abc".into(), "payload is not base64url"),
            (
                format!("v1.{}.@@", B64.encode("k1:e:1")),
                "signature is not base64url",
            ),
            (
                format!("v1.{}.{}", B64.encode("k1:e:1"), B64.encode([0u8; 5])),
                "not 32 bytes",
            ),
            (format!("v1.{}.{good_mac}", B64.encode([0xffu8, 0xfe])), "UTF-8"),
            (format!("v1.{}.{good_mac}", B64.encode("k1")), "no event"),
            (format!("v1.{}.{good_mac}", B64.encode("k1:e")), "no expiry"),
            (
                format!("v1.{}.{good_mac}", B64.encode("k1:e:1:s:x")),
                "more than four",
            ),
            (format!("v1.{}.{good_mac}", B64.encode(":e:1")), "`kid`: empty"),
            (format!("v1.{}.{good_mac}", B64.encode("k1:E/..:1")), "`event`"),
            (format!("v1.{}.{good_mac}", B64.encode("k1:e:-1")), "`expires`"),
            (
                format!("v1.{}.{good_mac}", B64.encode("k1:e:99999999999999999999")),
                "out of range",
            ),
            (format!("v1.{}.{good_mac}", B64.encode("k1:e:1:a b")), "`session`"),
            ("v1.".to_string() + &"A".repeat(600), "at most 512"),
        ];
        for (token, want) in cases {
            let err = verify(&token, &k, "e", 0).unwrap_err().to_string();
            assert!(err.contains(want), "{token:?}: {err} (wanted {want:?})");
        }
        assert!(matches!(
            EventKey::new("k1", b"short"),
            Err(TokenError::ShortKey { .. })
        ));
        assert!(key("k1").mint("Bad Event", 1, None).is_err());
        assert!(key("k1").mint("e", 1, Some("no:colons")).is_err());
    }
}

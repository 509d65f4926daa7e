//! The server side of the RTMP handshake: C0/C1/C2 in, S0/S1/S2 out, plain or with the Flash Player 9 digest.

use bytes::{Buf, BytesMut};
use ring::hmac;
use subtle::ConstantTimeEq;

use super::session::RtmpError;

/// Size of C1, C2, S1 and S2.
pub(crate) const PACKET_SIZE: usize = 1536;
/// The only RTMP version there is (C0/S0).
const VERSION: u8 = 3;
const DIGEST_LEN: usize = 32;

/// "Genuine Adobe Flash Player 001" and the shared tail; clients sign C1 with the first 30 bytes.
const FP_KEY: [u8; 62] = *b"Genuine Adobe Flash Player 001\
\xF0\xEE\xC2\x4A\x80\x68\xBE\xE8\x2E\x00\xD0\xD1\x02\x9E\x7E\x57\x6E\xEC\x5D\x2D\x29\x80\x6F\xAB\x93\xB8\xE6\x36\xCF\xEB\x31\xAE";
const FP_KEY_SIGN_LEN: usize = 30;
/// "Genuine Adobe Flash Media Server 001" and the same tail; servers sign S1 with the first 36.
const FMS_KEY: [u8; 68] = *b"Genuine Adobe Flash Media Server 001\
\xF0\xEE\xC2\x4A\x80\x68\xBE\xE8\x2E\x00\xD0\xD1\x02\x9E\x7E\x57\x6E\xEC\x5D\x2D\x29\x80\x6F\xAB\x93\xB8\xE6\x36\xCF\xEB\x31\xAE";
const FMS_KEY_SIGN_LEN: usize = 36;
/// The version we put in a digest S1 (what nginx-rtmp sends; clients only check it is non-zero).
const SERVER_VERSION: [u8; 4] = [0x0d, 0x0e, 0x0a, 0x0d];

/// Where a digest scheme takes its offset from: scheme 1 reads bytes 8..12, scheme 0 bytes 772..776.
const SCHEMES: [usize; 2] = [8, 772];

/// Where the handshake is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Handshake {
    /// Waiting for C0 and C1.
    AwaitC0C1,
    /// S0/S1/S2 are written; waiting for C2 (contents not checked: clients differ).
    AwaitC2,
    Done,
}

impl Handshake {
    /// Consumes what it can of `input`, appending S0/S1/S2 to `out` once C1 is complete.
    /// Returns the number of bytes consumed; stops at Done, leaving the rest for the chunk stream.
    pub(crate) fn advance(&mut self, input: &mut BytesMut, out: &mut BytesMut) -> Result<usize, RtmpError> {
        let mut consumed = 0;
        loop {
            match self {
                Handshake::AwaitC0C1 => {
                    // Refuse a wrong version as soon as its byte arrives (e.g. an HTTP request).
                    match input.first() {
                        None => return Ok(consumed),
                        Some(&v) if v != VERSION => return Err(RtmpError::HandshakeVersion { version: v }),
                        Some(_) => {}
                    }
                    if input.len() < 1 + PACKET_SIZE {
                        return Ok(consumed);
                    }
                    respond(&input[1..1 + PACKET_SIZE], out);
                    input.advance(1 + PACKET_SIZE);
                    consumed += 1 + PACKET_SIZE;
                    *self = Handshake::AwaitC2;
                }
                Handshake::AwaitC2 => {
                    if input.len() < PACKET_SIZE {
                        return Ok(consumed);
                    }
                    input.advance(PACKET_SIZE);
                    consumed += PACKET_SIZE;
                    *self = Handshake::Done;
                }
                Handshake::Done => return Ok(consumed),
            }
        }
    }
}

/// Appends S0, S1 and S2 answering `c1`: the digest variant if C1 carries a valid client
/// digest, else the plain one.
pub(crate) fn respond(c1: &[u8], out: &mut BytesMut) {
    out.extend_from_slice(&[VERSION]);
    let mut rng = Filler::new(c1);
    let mut s1 = [0u8; PACKET_SIZE];
    rng.fill(&mut s1[8..]);
    match find_client_digest(c1) {
        Some((scheme, client_digest)) => {
            tracing::trace!(scheme, "RTMP handshake with client digest");
            s1[4..8].copy_from_slice(&SERVER_VERSION);
            let pos = digest_pos(&s1, scheme);
            let digest = digest_excluding(&FMS_KEY[..FMS_KEY_SIGN_LEN], &s1, pos);
            s1[pos..pos + DIGEST_LEN].copy_from_slice(&digest);
            out.extend_from_slice(&s1);

            let mut s2 = [0u8; PACKET_SIZE];
            rng.fill(&mut s2[..PACKET_SIZE - DIGEST_LEN]);
            let key = sign(&FMS_KEY, &[&client_digest]);
            let signature = sign(&key, &[&s2[..PACKET_SIZE - DIGEST_LEN]]);
            s2[PACKET_SIZE - DIGEST_LEN..].copy_from_slice(&signature);
            out.extend_from_slice(&s2);
        }
        None => {
            tracing::trace!("plain RTMP handshake");
            out.extend_from_slice(&s1);
            out.extend_from_slice(c1);
        }
    }
}

/// The scheme (offset base) and digest of a C1 signed with the Flash Player key, if any.
fn find_client_digest(c1: &[u8]) -> Option<(usize, [u8; DIGEST_LEN])> {
    if c1.len() != PACKET_SIZE || c1[4..8] == [0; 4] {
        return None;
    }
    SCHEMES.into_iter().find_map(|scheme| {
        let pos = digest_pos(c1, scheme);
        let expected = digest_excluding(&FP_KEY[..FP_KEY_SIGN_LEN], c1, pos);
        let found = &c1[pos..pos + DIGEST_LEN];
        bool::from(expected.ct_eq(found)).then(|| {
            let mut d = [0u8; DIGEST_LEN];
            d.copy_from_slice(found);
            (scheme, d)
        })
    })
}

/// Digest offset of a scheme: the sum of the four bytes at `base`, modulo 728, after them.
pub(crate) fn digest_pos(packet: &[u8], base: usize) -> usize {
    let sum: usize = packet[base..base + 4].iter().map(|&b| b as usize).sum();
    sum % 728 + base + 4
}

/// HMAC-SHA256 over `packet` without the 32 bytes at `pos`.
pub(crate) fn digest_excluding(key: &[u8], packet: &[u8], pos: usize) -> [u8; DIGEST_LEN] {
    sign(key, &[&packet[..pos], &packet[pos + DIGEST_LEN..]])
}

pub(crate) fn sign(key: &[u8], parts: &[&[u8]]) -> [u8; DIGEST_LEN] {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    let mut ctx = hmac::Context::with_key(&key);
    for p in parts {
        ctx.update(p);
    }
    let tag = ctx.sign();
    let mut out = [0u8; DIGEST_LEN];
    out.copy_from_slice(tag.as_ref());
    out
}

/// Filler bytes for S1/S2. Nothing depends on their unpredictability (the digest scheme is
/// obfuscation, not security), and sans-IO code has no entropy source, so a xorshift seeded
/// from C1 keeps the session deterministic.
struct Filler(u64);

impl Filler {
    fn new(c1: &[u8]) -> Self {
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        for chunk in c1.chunks(8).take(4) {
            for &b in chunk {
                seed = seed.rotate_left(8) ^ b as u64;
            }
        }
        Self(seed | 1)
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            *b = (self.0 >> 32) as u8;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A C1 as ffmpeg/librtmp build it: time, version 9.0.124.2, filler, digest at `scheme`.
    fn digest_c1(scheme: usize) -> Vec<u8> {
        let mut c1 = vec![0u8; PACKET_SIZE];
        c1[4..8].copy_from_slice(&[9, 0, 124, 2]);
        for (i, b) in c1.iter_mut().enumerate().skip(8) {
            *b = (i * 7 + 3) as u8;
        }
        let pos = digest_pos(&c1, scheme);
        let d = digest_excluding(&FP_KEY[..FP_KEY_SIGN_LEN], &c1, pos);
        c1[pos..pos + DIGEST_LEN].copy_from_slice(&d);
        c1
    }

    fn run(c0c1c2: &[u8]) -> (Result<usize, RtmpError>, Handshake, BytesMut) {
        let mut hs = Handshake::AwaitC0C1;
        let mut input = BytesMut::from(c0c1c2);
        let mut out = BytesMut::new();
        let r = hs.advance(&mut input, &mut out);
        (r, hs, out)
    }

    fn check_digest_reply(scheme: usize) {
        let c1 = digest_c1(scheme);
        let mut bytes = vec![3];
        bytes.extend_from_slice(&c1);
        bytes.extend_from_slice(&[0xaa; PACKET_SIZE]);
        let (r, hs, out) = run(&bytes);
        assert_eq!(r.unwrap(), 1 + 2 * PACKET_SIZE);
        assert_eq!(hs, Handshake::Done);
        assert_eq!(out.len(), 1 + 2 * PACKET_SIZE);
        assert_eq!(out[0], 3);
        let s1 = &out[1..1 + PACKET_SIZE];
        let s2 = &out[1 + PACKET_SIZE..];
        assert_ne!(s1[4..8], [0; 4], "digest S1 announces a version");
        // The client (ffmpeg's rtmp_validate_digest) checks S1 under the same scheme.
        let pos = digest_pos(s1, scheme);
        assert_eq!(s1[pos..pos + 32], digest_excluding(&FMS_KEY[..36], s1, pos));
        // And S2's signature, keyed by HMAC(full FMS key, client digest).
        let cpos = digest_pos(&c1, scheme);
        let key = sign(&FMS_KEY, &[&c1[cpos..cpos + 32]]);
        assert_eq!(s2[PACKET_SIZE - 32..], sign(&key, &[&s2[..PACKET_SIZE - 32]]));
    }

    #[test]
    fn digest_handshake_scheme_1() {
        check_digest_reply(8);
    }

    #[test]
    fn digest_handshake_scheme_0() {
        check_digest_reply(772);
    }

    #[test]
    fn plain_handshake_echoes_c1() {
        let mut c1 = vec![0u8; PACKET_SIZE];
        c1[0..4].copy_from_slice(&[0, 0, 1, 0]);
        c1[100] = 42;
        let mut bytes = vec![3];
        bytes.extend_from_slice(&c1);
        let (r, hs, out) = run(&bytes);
        assert_eq!(r.unwrap(), 1 + PACKET_SIZE);
        assert_eq!(hs, Handshake::AwaitC2);
        assert_eq!(&out[1 + PACKET_SIZE..], &c1[..]);
        assert_eq!(out[1 + 4..1 + 8], [0; 4]);
    }

    #[test]
    fn nonzero_version_without_valid_digest_is_plain() {
        let mut c1 = digest_c1(8);
        let pos = digest_pos(&c1, 8);
        c1[pos] ^= 1;
        let mut bytes = vec![3];
        bytes.extend_from_slice(&c1);
        let (_, _, out) = run(&bytes);
        assert_eq!(&out[1 + PACKET_SIZE..], &c1[..]);
    }

    #[test]
    fn wrong_version_is_refused_at_once() {
        let (r, _, out) = run(b"GET / HTTP/1.1\r\n");
        let err = r.unwrap_err();
        assert!(matches!(err, RtmpError::HandshakeVersion { version: b'G' }));
        assert!(err.to_string().contains("71"), "{err}");
        assert!(out.is_empty());
    }

    #[test]
    fn byte_by_byte() {
        let mut hs = Handshake::AwaitC0C1;
        let mut input = BytesMut::new();
        let mut out = BytesMut::new();
        let mut bytes = vec![3];
        bytes.extend_from_slice(&digest_c1(772));
        bytes.extend_from_slice(&[0; PACKET_SIZE]);
        bytes.extend_from_slice(b"rest");
        for b in bytes {
            input.extend_from_slice(&[b]);
            hs.advance(&mut input, &mut out).unwrap();
        }
        assert_eq!(hs, Handshake::Done);
        assert_eq!(&input[..], b"rest");
        assert_eq!(out.len(), 1 + 2 * PACKET_SIZE);
    }
}

//! QUIC variable-length integers (RFC 9000 §16): the two high bits of the first byte give
//! the length (1, 2, 4 or 8 bytes), the remaining bits hold the value big-endian, so a
//! varint carries 0..=2^62-1.
//!
//! [`encode`] always writes the shortest form; [`decode`] accepts any form, as the RFC
//! allows ("values do not need to be encoded on the minimum number of bytes").

use bytes::{BufMut, BytesMut};

/// The largest value a varint carries: 2^62 - 1.
pub const MAX: u64 = (1 << 62) - 1;

/// The number of bytes [`encode`] writes for `value` (1, 2, 4 or 8).
///
/// # Panics
/// If `value` is above [`MAX`] (a caller bug: nothing we send may be that large).
pub fn len(value: u64) -> usize {
    match value {
        0..=0x3f => 1,
        0x40..=0x3fff => 2,
        0x4000..=0x3fff_ffff => 4,
        0x4000_0000..=MAX => 8,
        _ => panic!("varint value {value} is above 2^62-1"),
    }
}

/// Appends the shortest encoding of `value`.
///
/// # Panics
/// If `value` is above [`MAX`]. That is an invariant of the callers, not something a peer
/// can cause: decoded values are always within range, and the counters, ids and nanosecond
/// timestamps we send stay far below 2^62 (2^62 ns after the Unix epoch is in 2116).
pub fn encode(value: u64, out: &mut BytesMut) {
    match len(value) {
        1 => out.put_u8(value as u8),
        2 => out.put_u16(0x4000 | value as u16),
        4 => out.put_u32(0x8000_0000 | value as u32),
        _ => out.put_u64(0xc000_0000_0000_0000 | value),
    }
}

/// Reads one varint from the start of `buf`: `Some((value, bytes read))`, or `None` when
/// `buf` ends before the varint does ("need more"; every complete byte pattern is valid).
pub fn decode(buf: &[u8]) -> Option<(u64, usize)> {
    let first = *buf.first()?;
    let n = 1usize << (first >> 6);
    let bytes = buf.get(..n)?;
    let value = bytes[1..]
        .iter()
        .fold(u64::from(first & 0x3f), |acc, &b| (acc << 8) | u64::from(b));
    Some((value, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(value: u64) -> Vec<u8> {
        let mut out = BytesMut::new();
        encode(value, &mut out);
        out.to_vec()
    }

    #[test]
    fn rfc9000_examples() {
        // RFC 9000 Appendix A.1 sample encodings.
        let samples: &[(&[u8], u64)] = &[
            (
                &[0xc2, 0x19, 0x7c, 0x5e, 0xff, 0x14, 0xe8, 0x8c],
                151_288_809_941_952_652,
            ),
            (&[0x9d, 0x7f, 0x3e, 0x7d], 494_878_333),
            (&[0x7b, 0xbd], 15_293),
            (&[0x25], 37),
        ];
        for &(bytes, value) in samples {
            assert_eq!(decode(bytes), Some((value, bytes.len())));
            assert_eq!(enc(value), bytes);
        }
        // The RFC's non-minimal two-byte encoding of 37.
        assert_eq!(decode(&[0x40, 0x25]), Some((37, 2)));
    }

    #[test]
    fn every_length_class_at_its_boundaries() {
        let cases: &[(u64, usize)] = &[
            (0, 1),
            (63, 1),
            (64, 2),
            (16_383, 2),
            (16_384, 4),
            ((1 << 30) - 1, 4),
            (1 << 30, 8),
            (MAX - 1, 8),
            (MAX, 8),
        ];
        for &(value, n) in cases {
            let bytes = enc(value);
            assert_eq!(bytes.len(), n, "{value}");
            assert_eq!(len(value), n, "{value}");
            assert_eq!(decode(&bytes), Some((value, n)), "{value}");
            // Followed by other bytes, only the varint is read.
            let mut longer = bytes.clone();
            longer.extend_from_slice(&[0xff, 0x00]);
            assert_eq!(decode(&longer), Some((value, n)), "{value}");
            // Every proper prefix needs more.
            for cut in 0..n {
                assert_eq!(decode(&bytes[..cut]), None, "{value} cut at {cut}");
            }
        }
        assert_eq!(enc(MAX), [0xff; 8]);
    }

    #[test]
    fn non_minimal_encodings_are_accepted() {
        for value in [0u64, 1, 63] {
            assert_eq!(decode(&[0x40, value as u8]), Some((value, 2)));
            assert_eq!(decode(&[0x80, 0, 0, value as u8]), Some((value, 4)));
            assert_eq!(decode(&[0xc0, 0, 0, 0, 0, 0, 0, value as u8]), Some((value, 8)));
        }
        assert_eq!(decode(&[0xc0, 0, 0, 0, 0, 0, 0x3f, 0xff]), Some((16_383, 8)));
    }

    #[test]
    #[should_panic(expected = "above 2^62-1")]
    fn encoding_above_max_is_a_caller_bug() {
        enc(MAX + 1);
    }
}

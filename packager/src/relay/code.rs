//! The relay's reset/close codes: one table shared by QUIC stream resets, connection closes
//! and the `code` of SubscribeError and SubscriptionEnd.

use std::fmt;

/// Codes used for QUIC stream resets, connection closes and in SubscribeError /
/// SubscriptionEnd (a varint of [`ErrorCode::to_code`]). The numbers are a wire contract
/// between origin and edge of different versions: `to_code_is_stable` pins every one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// 0x00: nothing went wrong (a clean close).
    NoError,
    /// 0x01: the rendition or event ended.
    Ended,
    /// 0x02: the event's media was replaced (new tracks, origin restart): resubscribe.
    Superseded,
    /// 0x03: the edge fell behind its subscription: resubscribe.
    Lagging,
    /// 0x04: no such event or rendition.
    NotFound,
    /// 0x05: the peer is going away.
    Shutdown,
    /// 0x10: bad node secret.
    Unauthorized,
    /// 0x11: the peer speaks a relay version we do not.
    UnsupportedVersion,
    /// 0x12: the peer broke the wire format or the protocol's rules.
    ProtocolViolation,
    /// 0x13: the peer sent more than a limit allows.
    LimitExceeded,
    /// 0x14: a bug or failure on the side that sends the code.
    Internal,
    /// Any other number read from the wire: kept as is, not an error, so a newer peer's
    /// codes pass through. [`ErrorCode::from_code`] never makes one holding a number listed
    /// above. Like every varint, the number must be below 2^62 to be encoded.
    Unknown(u64),
}

impl ErrorCode {
    /// The number on the wire.
    pub fn to_code(self) -> u64 {
        match self {
            Self::NoError => 0x00,
            Self::Ended => 0x01,
            Self::Superseded => 0x02,
            Self::Lagging => 0x03,
            Self::NotFound => 0x04,
            Self::Shutdown => 0x05,
            Self::Unauthorized => 0x10,
            Self::UnsupportedVersion => 0x11,
            Self::ProtocolViolation => 0x12,
            Self::LimitExceeded => 0x13,
            Self::Internal => 0x14,
            Self::Unknown(c) => c,
        }
    }

    /// The code for a number read from the wire; numbers we do not know become
    /// [`ErrorCode::Unknown`].
    pub fn from_code(c: u64) -> Self {
        match c {
            0x00 => Self::NoError,
            0x01 => Self::Ended,
            0x02 => Self::Superseded,
            0x03 => Self::Lagging,
            0x04 => Self::NotFound,
            0x05 => Self::Shutdown,
            0x10 => Self::Unauthorized,
            0x11 => Self::UnsupportedVersion,
            0x12 => Self::ProtocolViolation,
            0x13 => Self::LimitExceeded,
            0x14 => Self::Internal,
            other => Self::Unknown(other),
        }
    }

    /// A short description for logs and errors.
    pub fn describe(self) -> &'static str {
        match self {
            Self::NoError => "no error",
            Self::Ended => "the rendition or event ended",
            Self::Superseded => "the event's media was replaced; resubscribe",
            Self::Lagging => "the edge fell behind its subscription; resubscribe",
            Self::NotFound => "no such event or rendition",
            Self::Shutdown => "the peer is going away",
            Self::Unauthorized => "bad node secret",
            Self::UnsupportedVersion => "unsupported relay version",
            Self::ProtocolViolation => "relay protocol violation",
            Self::LimitExceeded => "relay limit exceeded",
            Self::Internal => "internal error",
            Self::Unknown(_) => "unknown code",
        }
    }
}

/// `0x03 (the edge fell behind its subscription; resubscribe)`.
impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#04x} ({})", self.to_code(), self.describe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The wire contract: changing a number here breaks every deployed peer.
    const TABLE: &[(ErrorCode, u64)] = &[
        (ErrorCode::NoError, 0x00),
        (ErrorCode::Ended, 0x01),
        (ErrorCode::Superseded, 0x02),
        (ErrorCode::Lagging, 0x03),
        (ErrorCode::NotFound, 0x04),
        (ErrorCode::Shutdown, 0x05),
        (ErrorCode::Unauthorized, 0x10),
        (ErrorCode::UnsupportedVersion, 0x11),
        (ErrorCode::ProtocolViolation, 0x12),
        (ErrorCode::LimitExceeded, 0x13),
        (ErrorCode::Internal, 0x14),
    ];

    #[test]
    fn to_code_is_stable() {
        for &(code, number) in TABLE {
            assert_eq!(code.to_code(), number, "{code:?}");
            assert_eq!(ErrorCode::from_code(number), code, "{number:#x}");
            assert_eq!(ErrorCode::from_code(code.to_code()), code);
        }
        // Every number below 0x40 is either in the table or kept as Unknown.
        for number in 0..0x40 {
            let code = ErrorCode::from_code(number);
            assert_eq!(code.to_code(), number);
            let listed = TABLE.iter().any(|&(_, n)| n == number);
            assert_eq!(matches!(code, ErrorCode::Unknown(_)), !listed, "{number:#x}");
        }
        for number in [0x06, 0x0f, 0x15, 0x1000, crate::relay::varint::MAX] {
            let code = ErrorCode::Unknown(number);
            assert_eq!(ErrorCode::from_code(code.to_code()), code);
        }
    }

    #[test]
    fn display_names_number_and_meaning() {
        assert_eq!(
            ErrorCode::Lagging.to_string(),
            "0x03 (the edge fell behind its subscription; resubscribe)"
        );
        assert_eq!(ErrorCode::Unknown(0x99).to_string(), "0x99 (unknown code)");
    }
}

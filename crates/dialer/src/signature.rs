//! The callback signature scheme, for the sending side (the simulator server) and the
//! receiving side (outdial's callback route).
//!
//! A delivery carries `X-Outdial-Timestamp: <unix seconds>` and
//! `X-Outdial-Signature: v1=<hex>` where `<hex>` is
//! `HMAC-SHA256(secret, "<timestamp>." + body)`. The header may list several `v1=` values
//! separated by commas (a sender rotating its secret); one match is enough. A receiver
//! rejects a timestamp further than a tolerance from its own clock (replays).

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Header holding the signing time, in unix seconds.
pub const TIMESTAMP_HEADER: &str = "x-outdial-timestamp";
/// Header holding `v1=<hex>` signatures.
pub const SIGNATURE_HEADER: &str = "x-outdial-signature";
/// Header holding the event id (stable across retries of one event).
pub const EVENT_ID_HEADER: &str = "x-outdial-event-id";

type HmacSha256 = Hmac<Sha256>;

/// Why a signature was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The timestamp is not an integer number of seconds.
    #[error("signature timestamp is malformed")]
    MalformedTimestamp,
    /// The timestamp is further from now than the tolerance.
    #[error("signature timestamp is outside the tolerance")]
    Stale,
    /// No `v1=` value of the header matches.
    #[error("signature does not match")]
    Mismatch,
}

fn mac(secret: &[u8], timestamp: &str, body: &[u8]) -> HmacSha256 {
    // HMAC takes a key of any length: `new_from_slice` cannot fail for it.
    let mut mac = match HmacSha256::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => unreachable!("hmac accepts keys of any length"),
    };
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The `X-Outdial-Signature` value for `body` signed at `timestamp` (unix seconds).
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let tag = mac(secret, &timestamp.to_string(), body)
        .finalize()
        .into_bytes();
    format!("v1={}", hex::encode(tag))
}

/// Checks a delivery: `timestamp` and `header` as received, `body` as raw bytes, `now` from
/// the receiver's clock. Compares in constant time.
pub fn verify_signature(
    secret: &[u8],
    timestamp: &str,
    body: &[u8],
    header: &str,
    now: DateTime<Utc>,
    tolerance: std::time::Duration,
) -> Result<(), SignatureError> {
    let signed_at: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| SignatureError::MalformedTimestamp)?;
    let skew = now.timestamp().abs_diff(signed_at);
    if skew > tolerance.as_secs() {
        return Err(SignatureError::Stale);
    }
    let expected = mac(secret, timestamp.trim(), body);
    let matched = header
        .split(',')
        .filter_map(|part| part.trim().strip_prefix("v1="))
        .filter_map(|hex_tag| hex::decode(hex_tag).ok())
        .any(|tag| expected.clone().verify_slice(&tag).is_ok());
    if matched {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use std::time::Duration;

    const TOLERANCE: Duration = Duration::from_secs(300);

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, 8, 0, 0).unwrap()
    }

    #[test]
    fn a_signature_made_with_the_secret_verifies_and_anything_altered_does_not() {
        let ts = now().timestamp();
        let header = sign(b"s3cret", ts, b"{\"a\":1}");
        let t = ts.to_string();
        assert_eq!(
            verify_signature(b"s3cret", &t, b"{\"a\":1}", &header, now(), TOLERANCE),
            Ok(())
        );
        let mismatch = Err(SignatureError::Mismatch);
        assert_eq!(
            verify_signature(b"other", &t, b"{\"a\":1}", &header, now(), TOLERANCE),
            mismatch
        );
        assert_eq!(
            verify_signature(b"s3cret", &t, b"{\"a\":2}", &header, now(), TOLERANCE),
            mismatch
        );
        let t1 = (ts + 1).to_string();
        assert_eq!(
            verify_signature(b"s3cret", &t1, b"{\"a\":1}", &header, now(), TOLERANCE),
            mismatch
        );
        assert_eq!(
            verify_signature(b"s3cret", &t, b"{\"a\":1}", "v1=zz", now(), TOLERANCE),
            mismatch
        );
    }

    #[test]
    fn stale_or_malformed_timestamps_are_refused_and_rotated_secrets_accepted() {
        let old = now().timestamp() - 301;
        let header = sign(b"k", old, b"x");
        assert_eq!(
            verify_signature(b"k", &old.to_string(), b"x", &header, now(), TOLERANCE),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify_signature(b"k", "soon", b"x", &header, now(), TOLERANCE),
            Err(SignatureError::MalformedTimestamp)
        );
        let ts = now().timestamp();
        let both = format!("{}, {}", sign(b"old", ts, b"x"), sign(b"new", ts, b"x"));
        assert_eq!(
            verify_signature(b"new", &ts.to_string(), b"x", &both, now(), TOLERANCE),
            Ok(())
        );
    }
}

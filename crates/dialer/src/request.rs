//! What the worker asks a provider to do: one [`DialRequest`] under one [`IdempotencyKey`].

use std::fmt;
use std::str::FromStr;

use outdial_domain::{AttemptNo, CallId, PhoneNumber};
use serde::{Deserialize, Serialize};

/// A name (idempotency key, company) that is empty, too long, or has characters outside
/// `[A-Za-z0-9:_.-]`; such names travel in URL paths, headers and Redis keys.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} must be 1-{max} characters of letters, digits, ':', '_', '-' or '.'")]
pub struct InvalidName {
    what: &'static str,
    max: usize,
}

fn check(s: &str, what: &'static str, max: usize) -> Result<(), InvalidName> {
    let ok = (1..=max).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'_' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(InvalidName { what, max })
    }
}

macro_rules! name_newtype {
    ($(#[$meta:meta])* $ty:ident, $what:literal, $max:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $ty(String);

        impl $ty {
            /// Checks the shape and wraps it.
            pub fn new(s: &str) -> Result<Self, InvalidName> {
                check(s, $what, $max).map(|()| Self(s.to_owned()))
            }

            /// The text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $ty {
            type Err = InvalidName;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::new(s)
            }
        }

        impl TryFrom<String> for $ty {
            type Error = InvalidName;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                check(&s, $what, $max).map(|()| Self(s))
            }
        }

        impl From<$ty> for String {
            fn from(v: $ty) -> Self {
                v.0
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

name_newtype!(
    /// The key under which a provider dedupes place requests: a repeat with the same key
    /// returns the first call and never creates a second. outdial uses one key per attempt,
    /// `"{call_id}:{attempt}"` ([`IdempotencyKey::for_attempt`]); it names no person.
    IdempotencyKey,
    "idempotency key",
    200
);

name_newtype!(
    /// A company (tenant) as the provider and the rate limits see it: an opaque id (outdial
    /// passes its company UUID). Used in Redis keys and per-company faults.
    CompanyRef,
    "company",
    128
);

impl IdempotencyKey {
    /// The key of attempt `attempt` of call `call`: `"{call_id}:{attempt}"`.
    pub fn for_attempt(call: CallId, attempt: AttemptNo) -> Self {
        Self(format!("{call}:{attempt}"))
    }

    /// The call and attempt of a key made by [`IdempotencyKey::for_attempt`].
    pub fn attempt(&self) -> Option<(CallId, AttemptNo)> {
        let (call, attempt) = self.0.rsplit_once(':')?;
        let call = call.parse().ok()?;
        let attempt = AttemptNo::new(attempt.parse().ok()?)?;
        Some((call, attempt))
    }
}

/// Opaque context passed through to the provider (the voice agent uses it to pick its
/// script; the simulator picks its outcome mix from `task_type`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DialContext {
    /// The lender's customer id.
    pub customer_id: String,
    /// The company's task type (`collections`, `verification`, ...).
    pub task_type: String,
}

/// One place request. `Debug` masks both numbers (see [`PhoneNumber`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialRequest {
    /// Dedupes repeats at the provider: one key, at most one call.
    pub key: IdempotencyKey,
    /// The number to call, E.164.
    pub to: PhoneNumber,
    /// The number the call comes from (caller ID), E.164.
    pub caller_id: PhoneNumber,
    /// The company the call is made for.
    pub company: CompanyRef,
    /// Passed through to the provider.
    pub context: DialContext,
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    #[test]
    fn attempt_key_round_trips_call_id_and_attempt() {
        let call = CallId::from_uuid(Uuid::from_u128(7));
        let attempt = AttemptNo::new(3).unwrap();
        let key = IdempotencyKey::for_attempt(call, attempt);
        assert_eq!(key.as_str(), format!("{call}:3"));
        assert_eq!(key.attempt(), Some((call, attempt)));
        assert_eq!(IdempotencyKey::new("abc").unwrap().attempt(), None);
    }

    #[test]
    fn names_with_slashes_spaces_or_nothing_are_refused() {
        for bad in ["", "a/b", "a b", "ключ", &"x".repeat(201)] {
            assert!(IdempotencyKey::new(bad).is_err(), "{bad}");
        }
        assert!(CompanyRef::new(&"c".repeat(129)).is_err());
        assert!(CompanyRef::new("acme-1").is_ok());
    }
}

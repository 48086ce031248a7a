//! US ZIP codes, checked for shape and stored as given.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::validation::{ErrorCode, Invalid, string_newtype};

/// A US ZIP code, `12345` or ZIP+4 `12345-6789`, stored as given.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ZipCode(String);
string_newtype!(ZipCode);

impl ZipCode {
    /// Checks and wraps a ZIP code.
    pub fn new(s: &str) -> Result<Self, Invalid> {
        let b = s.as_bytes();
        let five = b.len() >= 5 && b[..5].iter().all(u8::is_ascii_digit);
        let rest_ok = match b.len() {
            5 => true,
            10 => b[5] == b'-' && b[6..].iter().all(u8::is_ascii_digit),
            _ => false,
        };
        if five && rest_ok {
            Ok(Self(s.to_owned()))
        } else {
            let message = "must be a 5-digit ZIP code or ZIP+4 (12345 or 12345-6789)";
            Err(Invalid::new(ErrorCode::InvalidFormat, message))
        }
    }

    /// The five-digit ZIP code.
    pub fn five(&self) -> &str {
        &self.0[..5]
    }

    /// The four-digit add-on of a ZIP+4, if given.
    pub fn plus_four(&self) -> Option<&str> {
        self.0.get(6..)
    }
}

impl fmt::Display for ZipCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

//! Phone numbers and the other personal data a customer carries, masked whenever formatted.
//!
//! [`PhoneNumber`] is the only way a number enters outdial: it is checked once at the edge
//! and then carried as a value that serializes to the full E.164 string (the API echoes it
//! back and the dialer needs it) but whose `Debug` and `Display` print only the country code
//! and the last digits (`+1******4567`), so a number never reaches a log by accident. The
//! same holds for [`PersonName`] (`J***`), [`Email`] (`j***@example.com`), [`Birthday`]
//! (`****-**-**`) and [`SsnLastFour`] (`****`): formatting masks, serde and `as_str` give
//! the real value.

mod personal;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::validation::{ErrorCode, Invalid};

pub use personal::{Birthday, Email, MAX_EMAIL_CHARS, MIN_BIRTH_YEAR, PersonName, SsnLastFour};

/// The longest E.164 number: 15 digits after the `+`.
const MAX_DIGITS: usize = 15;

/// The NANP area code reserved for fictional and example numbers; its exchange is not checked.
const FICTIONAL_NPA: &[u8] = b"555";

/// A phone number in E.164 form: `+`, a country code, and the national significant number.
///
/// [`PhoneNumber::parse`] accepts exactly the E.164 string (`+14155552671`): a `+` and 2 to
/// 15 digits, the first 1-9, with no spaces, dashes or parentheses. The `phonenumber` crate
/// (libphonenumber metadata) splits off the country code, which must exist; a number
/// written with a national trunk prefix (`+44 0 20...`) is not E.164 and is rejected.
/// For country code 1 (NANP) the national number must be exactly 10 digits whose area code
/// starts with 2-9, and whose exchange (central office code) starts with 2-9 too, except in
/// area code 555: that code is not geographic, is reserved for examples, and the API's own
/// getting-started number `+15551234567` has exchange `123`.
///
/// The number is **not** required to be assigned or dialable: libphonenumber's `is_valid`
/// rejects unassigned ranges such as the 555-01xx fictional numbers, and the API's own
/// getting-started example uses `+15551234567`. Whether a number actually rings is the
/// telephony provider's business; outdial only guarantees the shape and the country.
///
/// Equality, ordering and hashing compare the E.164 string.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PhoneNumber {
    e164: String,
    country_code: u16,
}

/// Why a string is not an acceptable E.164 phone number. Messages never contain the number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidPhone {
    /// The string is empty.
    #[error("phone number is empty")]
    Empty,
    /// Not `+` followed by 2 to 15 digits, the first 1-9.
    #[error(
        "phone number must be E.164: '+' then 2 to 15 digits, the first 1-9, no spaces or punctuation"
    )]
    NotE164,
    /// The digits do not start with a known country calling code.
    #[error("phone number has an unknown country code")]
    UnknownCountryCode,
    /// The national part starts with a trunk prefix or otherwise differs from E.164.
    #[error("phone number is not in canonical E.164 form (drop any national trunk prefix)")]
    NotCanonical,
    /// A +1 number whose national part is not exactly 10 digits.
    #[error("phone number must have exactly 10 digits after +1 (NANP)")]
    NanpLength,
    /// A +1 number whose area code starts with 0 or 1.
    #[error("phone number has a +1 (NANP) area code that does not start with 2-9")]
    NanpAreaCode,
    /// A +1 number whose exchange (central office code) starts with 0 or 1 (outside area
    /// code 555).
    #[error("phone number has a +1 (NANP) exchange code that does not start with 2-9")]
    NanpExchange,
}

impl InvalidPhone {
    /// The validation code this maps to in a [`crate::validation::FieldError`].
    pub fn code(self) -> ErrorCode {
        match self {
            InvalidPhone::Empty => ErrorCode::Required,
            InvalidPhone::NotE164 | InvalidPhone::NotCanonical | InvalidPhone::NanpLength => {
                ErrorCode::InvalidFormat
            }
            InvalidPhone::UnknownCountryCode
            | InvalidPhone::NanpAreaCode
            | InvalidPhone::NanpExchange => ErrorCode::InvalidValue,
        }
    }
}

impl From<InvalidPhone> for Invalid {
    fn from(e: InvalidPhone) -> Self {
        // Strip the leading "phone number " so `Invalid::at` can prefix the field name.
        let text = e.to_string();
        let message = text
            .strip_prefix("phone number ")
            .unwrap_or(&text)
            .to_owned();
        Invalid::new(e.code(), message)
    }
}

/// The digits of `s` if it has E.164's shape: `+`, then 2 to 15 digits, the first 1-9.
fn e164_digits(s: &str) -> Result<&str, InvalidPhone> {
    let digits = s.strip_prefix('+').ok_or(InvalidPhone::NotE164)?;
    let shape_ok = (2..=MAX_DIGITS).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0');
    if shape_ok {
        Ok(digits)
    } else {
        Err(InvalidPhone::NotE164)
    }
}

impl PhoneNumber {
    /// Parses an E.164 string; see the type documentation for the exact rules.
    pub fn parse(s: &str) -> Result<PhoneNumber, InvalidPhone> {
        if s.is_empty() {
            return Err(InvalidPhone::Empty);
        }
        e164_digits(s)?;

        let parsed = phonenumber::parse(None, s).map_err(|e| match e {
            phonenumber::ParseError::InvalidCountryCode => InvalidPhone::UnknownCountryCode,
            _ => InvalidPhone::NotE164,
        })?;
        let country_code = parsed.code().value();
        let national = parsed.national();
        let rebuilt = format!(
            "+{country_code}{}{}",
            "0".repeat(usize::from(national.zeros())),
            national.value()
        );
        if rebuilt != s {
            return Err(InvalidPhone::NotCanonical);
        }

        let number = PhoneNumber {
            e164: rebuilt,
            country_code,
        };
        if country_code == 1 {
            let national = number.national_digits().as_bytes();
            if national.len() != 10 {
                return Err(InvalidPhone::NanpLength);
            }
            if !(b'2'..=b'9').contains(&national[0]) {
                return Err(InvalidPhone::NanpAreaCode);
            }
            if !(b'2'..=b'9').contains(&national[3]) && &national[..3] != FICTIONAL_NPA {
                return Err(InvalidPhone::NanpExchange);
            }
        }
        Ok(number)
    }

    /// A number read back from storage, where only [`PhoneNumber::parse`]'s output is
    /// written: its shape is checked and its country code looked up, without `parse`'s
    /// validation against the numbering plan (a regex match per number, the bulk of reading
    /// a customer). Country calling codes are prefix-free, so the first known one wins.
    pub fn from_stored(s: &str) -> Result<PhoneNumber, InvalidPhone> {
        let digits = e164_digits(s)?;
        let country_code = (1..=3.min(digits.len() - 1))
            .filter_map(|n| digits[..n].parse::<u16>().ok())
            .find(|code| phonenumber::metadata::DATABASE.by_code(code).is_some())
            .ok_or(InvalidPhone::UnknownCountryCode)?;
        Ok(PhoneNumber {
            e164: s.to_owned(),
            country_code,
        })
    }

    /// The full E.164 string (`+14155552671`). Do not log it; use `Display` instead.
    pub fn as_e164(&self) -> &str {
        &self.e164
    }

    /// The country calling code (1 for the US and the rest of NANP).
    pub fn country_code(&self) -> u16 {
        self.country_code
    }

    /// The digits after the country code.
    pub fn national_digits(&self) -> &str {
        &self.e164[1 + self.country_code_len()..]
    }

    /// The three-digit area code of a +1 (NANP) number; `None` for other countries.
    pub fn nanp_area_code(&self) -> Option<u16> {
        if self.country_code != 1 {
            return None;
        }
        self.national_digits().get(..3)?.parse().ok()
    }

    /// The number with everything but the country code and the last digits starred:
    /// `+1******4567`. At most the last 4 digits are shown, and always fewer than half of
    /// the national number, so a short number is never printed whole.
    pub fn masked(&self) -> String {
        let national = self.national_digits();
        let shown = 4.min(national.len() / 2);
        let hidden = national.len() - shown;
        format!(
            "+{}{}{}",
            self.country_code,
            "*".repeat(hidden),
            &national[hidden..]
        )
    }

    fn country_code_len(&self) -> usize {
        match self.country_code {
            0..=9 => 1,
            10..=99 => 2,
            _ => 3,
        }
    }
}

impl FromStr for PhoneNumber {
    type Err = InvalidPhone;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PhoneNumber::parse(s)
    }
}

impl TryFrom<String> for PhoneNumber {
    type Error = InvalidPhone;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        PhoneNumber::parse(&s)
    }
}

impl From<PhoneNumber> for String {
    fn from(p: PhoneNumber) -> Self {
        p.e164
    }
}

/// Prints the masked form, never the full number.
impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

/// Prints the masked form, never the full number.
impl fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PhoneNumber({})", self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_number_reads_back_as_it_was_parsed() {
        // One per country-code length (1, 2, 3 digits) and a non-geographic code.
        let numbers = [
            "+14155552671",
            "+15551234567",
            "+442071838750",
            "+390236618300",
            "+35312345678",
            "+97143012345",
            "+8613812345678",
            "+80012345678",
        ];
        for n in numbers {
            let parsed = PhoneNumber::parse(n).unwrap_or_else(|e| panic!("{n}: {e}"));
            let stored = PhoneNumber::from_stored(parsed.as_e164()).expect(n);
            assert_eq!(stored, parsed, "{n}");
            assert_eq!(stored.country_code(), parsed.country_code(), "{n}");
        }
        assert_eq!(
            PhoneNumber::from_stored("4155552671"),
            Err(InvalidPhone::NotE164)
        );
        assert_eq!(
            PhoneNumber::from_stored("+0155552671"),
            Err(InvalidPhone::NotE164)
        );
        assert_eq!(
            PhoneNumber::from_stored("+999123456"),
            Err(InvalidPhone::UnknownCountryCode)
        );
    }

    #[test]
    fn us_number_parses_with_country_and_area_code() {
        let p = PhoneNumber::parse("+14155552671").unwrap();
        assert_eq!(p.as_e164(), "+14155552671");
        assert_eq!(p.country_code(), 1);
        assert_eq!(p.national_digits(), "4155552671");
        assert_eq!(p.nanp_area_code(), Some(415));
    }

    #[test]
    fn unassigned_documentation_number_from_the_seed_is_accepted() {
        let p = PhoneNumber::parse("+15551234567").unwrap();
        assert_eq!(p.nanp_area_code(), Some(555));
        // Exchange 123 is only tolerated in the example area code 555.
        assert_eq!(
            PhoneNumber::parse("+14151234567"),
            Err(InvalidPhone::NanpExchange)
        );
    }

    #[test]
    fn international_numbers_keep_their_country_code_and_have_no_area_code() {
        let uk = PhoneNumber::parse("+442071838750").unwrap();
        assert_eq!(uk.country_code(), 44);
        assert_eq!(uk.nanp_area_code(), None);
        // Italian fixed lines keep their leading zero in E.164.
        let it = PhoneNumber::parse("+390236618300").unwrap();
        assert_eq!(it.country_code(), 39);
        assert_eq!(it.national_digits(), "0236618300");
        let tollfree = PhoneNumber::parse("+80012345678").unwrap();
        assert_eq!(tollfree.country_code(), 800);
        assert_eq!(tollfree.national_digits(), "12345678");
    }

    #[test]
    fn anything_but_exact_e164_is_rejected() {
        let cases = [
            ("", InvalidPhone::Empty),
            ("4155552671", InvalidPhone::NotE164),
            ("+1 415 555 2671", InvalidPhone::NotE164),
            ("+1-415-555-2671", InvalidPhone::NotE164),
            ("+1(415)5552671", InvalidPhone::NotE164),
            ("+04155552671", InvalidPhone::NotE164),
            ("+1", InvalidPhone::NotE164),
            ("+1234567890123456", InvalidPhone::NotE164),
            ("tel:+14155552671", InvalidPhone::NotE164),
            ("+14155552671 ", InvalidPhone::NotE164),
            ("+١٤١٥٥٥٥٢٦٧١", InvalidPhone::NotE164),
            ("+999123456", InvalidPhone::UnknownCountryCode),
            ("+4402071838750", InvalidPhone::NotCanonical),
        ];
        for (input, expected) in cases {
            assert_eq!(PhoneNumber::parse(input), Err(expected), "{input:?}");
        }
    }

    #[test]
    fn nanp_numbers_need_ten_digits_and_valid_area_and_exchange() {
        let cases = [
            ("+1415555267", InvalidPhone::NanpLength),
            ("+141555526711", InvalidPhone::NanpLength),
            ("+10155552671", InvalidPhone::NanpAreaCode),
            ("+11155552671", InvalidPhone::NanpAreaCode),
            ("+14150552671", InvalidPhone::NanpExchange),
            ("+14151552671", InvalidPhone::NanpExchange),
        ];
        for (input, expected) in cases {
            assert_eq!(PhoneNumber::parse(input), Err(expected), "{input:?}");
        }
        assert!(PhoneNumber::parse("+12002002000").is_ok());
    }

    #[test]
    fn debug_and_display_mask_all_but_country_code_and_last_four() {
        let p = PhoneNumber::parse("+15551231234").unwrap();
        assert_eq!(p.masked(), "+1******1234");
        assert_eq!(p.to_string(), "+1******1234");
        let debug = format!("{p:?}");
        assert!(debug.contains("+1******1234"), "{debug}");
        assert!(!debug.contains("555123"), "{debug}");
        let opt = format!("{:?}", Some(&p));
        assert!(!opt.contains("5551231234"), "{opt}");
    }

    #[test]
    fn short_numbers_never_show_half_their_digits() {
        let p = PhoneNumber::parse("+3612345").unwrap();
        assert_eq!(p.masked(), "+36***45");
    }

    #[test]
    fn serde_uses_the_full_e164_string() {
        let p = PhoneNumber::parse("+14155552671").unwrap();
        assert_eq!(serde_json::to_string(&p).unwrap(), "\"+14155552671\"");
        let back: PhoneNumber = serde_json::from_str("\"+14155552671\"").unwrap();
        assert_eq!(back, p);
        assert!(serde_json::from_str::<PhoneNumber>("\"415-555-2671\"").is_err());
    }

    #[test]
    fn rejection_messages_never_contain_the_number_and_read_well_per_field() {
        let inputs = [
            "",
            "+1 415",
            "+999123456",
            "+4402071838750",
            "+1415555267",
            "+10155552671",
            "+14150552671",
        ];
        for input in inputs {
            let e = PhoneNumber::parse(input).unwrap_err();
            assert!(!e.to_string().contains("415"), "{e}");
            assert!(e.to_string().starts_with("phone number "), "{e}");
            let invalid = Invalid::from(e).at("phoneNumber");
            assert!(
                !invalid.message.contains("phone number"),
                "{}",
                invalid.message
            );
        }
        let e = Invalid::from(InvalidPhone::NanpExchange).at("phoneNumber");
        assert_eq!(
            e.message,
            "phoneNumber has a +1 (NANP) exchange code that does not start with 2-9"
        );
    }
}

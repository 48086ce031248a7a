//! The personal data a customer carries besides its number: name, email, the last four
//! SSN digits and birthday, each masked whenever formatted.

use std::fmt;
use std::str::FromStr;

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::validation::{ErrorCode, Invalid, MAX_TEXT_CHARS, check_text, string_newtype};

/// The longest email address, in characters (RFC 5321 path limit).
pub const MAX_EMAIL_CHARS: usize = 254;

/// The earliest birthday year accepted.
pub const MIN_BIRTH_YEAR: i32 = 1900;

/// A first or last name: 1 to 256 characters, not blank, no control characters, stored as
/// given. `Debug` and `Display` show only the first character (`J***`).
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PersonName(String);
string_newtype!(PersonName);

impl PersonName {
    /// Checks and wraps a name.
    pub fn new(s: &str) -> Result<Self, Invalid> {
        if s.trim().is_empty() {
            return Err(Invalid::new(ErrorCode::Required, "must not be blank"));
        }
        check_text(s, 1, MAX_TEXT_CHARS)?;
        Ok(Self(s.to_owned()))
    }
}

impl fmt::Display for PersonName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let first = self.0.trim_start().chars().next().unwrap_or('*');
        write!(f, "{first}***")
    }
}

impl fmt::Debug for PersonName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PersonName({self})")
    }
}

/// An email address, checked for shape only: at most 254 characters, exactly one `@`, a
/// non-empty local part, a domain with at least one dot and no empty labels, no whitespace
/// or control characters. `Debug` and `Display` show `j***@example.com`.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);
string_newtype!(Email);

impl Email {
    /// Checks and wraps an address.
    pub fn new(s: &str) -> Result<Self, Invalid> {
        if s.chars().count() > MAX_EMAIL_CHARS {
            let message = format!("must be at most {MAX_EMAIL_CHARS} characters");
            return Err(Invalid::new(ErrorCode::TooLong, message));
        }
        let bad = || {
            Invalid::new(
                ErrorCode::InvalidFormat,
                "must be an email address like name@example.com",
            )
        };
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad());
        }
        let (local, domain) = s.split_once('@').ok_or_else(bad)?;
        let labels_ok = domain.contains('.') && domain.split('.').all(|label| !label.is_empty());
        if local.is_empty() || domain.contains('@') || !labels_ok {
            return Err(bad());
        }
        Ok(Self(s.to_owned()))
    }

    /// The part after the `@`.
    pub fn domain(&self) -> &str {
        self.0.split_once('@').map_or("", |(_, d)| d)
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let first = self.0.chars().next().unwrap_or('*');
        write!(f, "{first}***@{}", self.domain())
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email({self})")
    }
}

/// The last four digits of a Social Security number: exactly 4 ASCII digits.
/// `Debug` and `Display` print `****`.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SsnLastFour(String);
string_newtype!(SsnLastFour);

impl SsnLastFour {
    /// Checks and wraps the digits.
    pub fn new(s: &str) -> Result<Self, Invalid> {
        if s.len() == 4 && s.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(s.to_owned()))
        } else {
            Err(Invalid::new(
                ErrorCode::InvalidFormat,
                "must be exactly 4 digits",
            ))
        }
    }
}

impl fmt::Display for SsnLastFour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("****")
    }
}

impl fmt::Debug for SsnLastFour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SsnLastFour(****)")
    }
}

/// A date of birth, serialized as `YYYY-MM-DD`. `Debug` and `Display` print `****-**-**`.
///
/// [`Birthday::parse`] checks the range against `today`; deserializing (from storage)
/// checks only the format.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Birthday(NaiveDate);

impl Birthday {
    /// A date in `MIN_BIRTH_YEAR..=today`.
    pub fn new(date: NaiveDate, today: NaiveDate) -> Result<Self, Invalid> {
        if date > today {
            return Err(Invalid::new(
                ErrorCode::OutOfRange,
                "must not be in the future",
            ));
        }
        if date.year() < MIN_BIRTH_YEAR {
            let message = format!("must not be before {MIN_BIRTH_YEAR}-01-01");
            return Err(Invalid::new(ErrorCode::OutOfRange, message));
        }
        Ok(Self(date))
    }

    /// A date read back from storage: it was range-checked when it was written, and a
    /// check against today's date would not change that.
    pub fn from_stored(date: NaiveDate) -> Self {
        Self(date)
    }

    /// Parses exactly `YYYY-MM-DD` (a real calendar date) and checks the range.
    pub fn parse(s: &str, today: NaiveDate) -> Result<Self, Invalid> {
        let bad = || {
            Invalid::new(
                ErrorCode::InvalidFormat,
                "must be a real date in YYYY-MM-DD form",
            )
        };
        let shape_ok = s.len() == 10
            && s.bytes().enumerate().all(|(i, b)| {
                if i == 4 || i == 7 {
                    b == b'-'
                } else {
                    b.is_ascii_digit()
                }
            });
        if !shape_ok {
            return Err(bad());
        }
        let date = NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| bad())?;
        Self::new(date, today)
    }

    /// The date. It is personal data: do not log it.
    pub fn date(&self) -> NaiveDate {
        self.0
    }
}

impl fmt::Display for Birthday {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("****-**-**")
    }
}

impl fmt::Debug for Birthday {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Birthday(****-**-**)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn may_first() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 5, 1).unwrap()
    }

    #[test]
    fn email_needs_one_at_a_local_part_and_a_dotted_domain() {
        for ok in ["a@b.co", "jane.doe+x@mail.example.com"] {
            assert!(Email::new(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "@b.co", "a@b", "a@@b.co", "a@b@c.co", "a b@c.co", "a@.co", "a@b.", "a@b..co",
        ] {
            assert!(Email::new(bad).is_err(), "{bad}");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert_eq!(Email::new(&long).unwrap_err().code, ErrorCode::TooLong);
    }

    #[test]
    fn pii_newtypes_mask_when_formatted_but_serialize_the_value() {
        let today = may_first();
        let name = PersonName::new("Jane").unwrap();
        assert_eq!(format!("{name:?} {name}"), "PersonName(J***) J***");
        let email = Email::new("jane@example.com").unwrap();
        assert_eq!(
            format!("{email:?} {email}"),
            "Email(j***@example.com) j***@example.com"
        );
        let ssn = SsnLastFour::new("1234").unwrap();
        assert_eq!(format!("{ssn:?} {ssn}"), "SsnLastFour(****) ****");
        let birthday = Birthday::parse("1985-06-15", today).unwrap();
        assert_eq!(
            format!("{birthday:?} {birthday}"),
            "Birthday(****-**-**) ****-**-**"
        );
        assert_eq!(serde_json::to_value(&name).unwrap(), "Jane");
        assert_eq!(serde_json::to_value(&email).unwrap(), "jane@example.com");
        assert_eq!(serde_json::to_value(&ssn).unwrap(), "1234");
        assert_eq!(serde_json::to_value(birthday).unwrap(), "1985-06-15");
    }

    #[test]
    fn birthday_today_is_accepted_and_odd_date_shapes_are_not() {
        let today = may_first();
        assert!(Birthday::parse("2026-05-01", today).is_ok());
        assert!(Birthday::parse("1900-01-01", today).is_ok());
        for bad in [
            "+1985-06-15",
            "85-06-15",
            "1985-6-15",
            "1985-06-15 ",
            "1985/06/15",
        ] {
            assert_eq!(
                Birthday::parse(bad, today).unwrap_err().code,
                ErrorCode::InvalidFormat,
                "{bad}"
            );
        }
    }
}

//! Field-level validation errors: what was wrong with a request, named by the field.
//!
//! A [`FieldError`] names one field by its JSON name as the API receives it (`phoneNumber`,
//! `zipCode`), nested fields with dots (`externalMetadata.foo`) and array elements with an
//! index (`loanIds[2]`). Its [`ErrorCode`] is a closed set that API clients can match on;
//! the message is for humans. Validation collects every problem at once into
//! [`Violations`] instead of stopping at the first, so a client fixes a request in one
//! round trip. Messages never contain the rejected value: it may be PII.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What kind of problem a field has. Serialized in snake_case (`invalid_format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// A required field is absent, `null` or blank.
    Required,
    /// The value does not have the expected shape (a ZIP code with letters, a malformed date).
    InvalidFormat,
    /// The value has the right shape but is not acceptable (an unknown task type, a state
    /// code that is not a US state or territory).
    InvalidValue,
    /// The JSON type is wrong (an array where an object is expected).
    InvalidType,
    /// The request has a key the API does not know.
    UnknownField,
    /// A string or serialized value is longer than allowed.
    TooLong,
    /// A list has more entries than allowed.
    TooMany,
    /// A list entry repeats an earlier one.
    Duplicate,
    /// A number or date lies outside its allowed range.
    OutOfRange,
}

impl ErrorCode {
    /// The snake_case name used on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Required => "required",
            ErrorCode::InvalidFormat => "invalid_format",
            ErrorCode::InvalidValue => "invalid_value",
            ErrorCode::InvalidType => "invalid_type",
            ErrorCode::UnknownField => "unknown_field",
            ErrorCode::TooLong => "too_long",
            ErrorCode::TooMany => "too_many",
            ErrorCode::Duplicate => "duplicate",
            ErrorCode::OutOfRange => "out_of_range",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem with one field of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FieldError {
    /// The JSON name of the field (`phoneNumber`, `externalMetadata.foo`, `loanIds[2]`).
    pub field: String,
    /// The closed kind of problem.
    pub code: ErrorCode,
    /// A lowercase human-readable explanation that does not repeat the value.
    pub message: String,
}

impl FieldError {
    /// A problem with `field`.
    pub fn new(field: impl Into<String>, code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            code,
            message: message.into(),
        }
    }

    /// `field` is required but absent, `null` or blank.
    pub fn required(field: impl Into<String>) -> Self {
        let field = field.into();
        let message = format!("{field} is required");
        Self {
            field,
            code: ErrorCode::Required,
            message,
        }
    }

    /// `field` is not part of the API.
    pub fn unknown_field(field: impl Into<String>) -> Self {
        let field = field.into();
        let message = format!("unknown field {field}");
        Self {
            field,
            code: ErrorCode::UnknownField,
            message,
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} ({})", self.field, self.message, self.code)
    }
}

/// Why a single value was rejected, before it is attached to a field name.
///
/// Value types (`Email`, `ZipCode`, ...) return this from their constructors; the caller
/// that knows the field name turns it into a [`FieldError`] with [`Invalid::at`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Invalid {
    /// The kind of problem.
    pub code: ErrorCode,
    /// A lowercase explanation that does not repeat the value.
    pub message: String,
}

impl Invalid {
    /// A rejection with a code and a message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// Attaches the rejection to `field`; the message is prefixed with the field name.
    pub fn at(self, field: impl Into<String>) -> FieldError {
        let field = field.into();
        let message = format!("{field} {}", self.message);
        FieldError {
            field,
            code: self.code,
            message,
        }
    }
}

/// Every problem found in a request, in the order the fields were checked.
///
/// Display lists the offending fields: `invalid request: phoneNumber, zipCode`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(transparent)]
#[error("invalid request: {}", field_list(.0))]
pub struct Violations(Vec<FieldError>);

fn field_list(errors: &[FieldError]) -> String {
    let names: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    names.join(", ")
}

impl Violations {
    /// No violations yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// True when nothing was wrong.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many problems were found.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Records a problem.
    pub fn push(&mut self, error: FieldError) {
        self.0.push(error);
    }

    /// The problems in the order they were found.
    pub fn iter(&self) -> std::slice::Iter<'_, FieldError> {
        self.0.iter()
    }

    /// The problems as a slice.
    pub fn as_slice(&self) -> &[FieldError] {
        &self.0
    }

    /// The problems for one field (an exact match on the field name).
    pub fn for_field<'a>(&'a self, field: &'a str) -> impl Iterator<Item = &'a FieldError> + 'a {
        self.0.iter().filter(move |e| e.field == field)
    }

    /// `Ok(value)` when nothing was recorded, otherwise `Err(self)`.
    pub fn into_result<T>(self, value: T) -> Result<T, Violations> {
        if self.is_empty() {
            Ok(value)
        } else {
            Err(self)
        }
    }

    /// The problems, consuming the collection.
    pub fn into_vec(self) -> Vec<FieldError> {
        self.0
    }
}

impl From<FieldError> for Violations {
    fn from(error: FieldError) -> Self {
        Self(vec![error])
    }
}

impl From<Vec<FieldError>> for Violations {
    fn from(errors: Vec<FieldError>) -> Self {
        Self(errors)
    }
}

impl FromIterator<FieldError> for Violations {
    fn from_iter<I: IntoIterator<Item = FieldError>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

impl Extend<FieldError> for Violations {
    fn extend<I: IntoIterator<Item = FieldError>>(&mut self, iter: I) {
        self.0.extend(iter);
    }
}

impl IntoIterator for Violations {
    type Item = FieldError;
    type IntoIter = std::vec::IntoIter<FieldError>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a Violations {
    type Item = &'a FieldError;
    type IntoIter = std::slice::Iter<'a, FieldError>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// The longest free-text field (a name, a street line, a city), in characters.
pub const MAX_TEXT_CHARS: usize = 256;

/// Checks length bounds (in characters) and the absence of control characters.
pub fn check_text(s: &str, min: usize, max: usize) -> Result<(), Invalid> {
    let chars = s.chars().count();
    if chars < min {
        return Err(Invalid::new(ErrorCode::InvalidValue, "must not be empty"));
    }
    if chars > max {
        return Err(Invalid::new(
            ErrorCode::TooLong,
            format!("must be at most {max} characters"),
        ));
    }
    if s.chars().any(char::is_control) {
        return Err(Invalid::new(
            ErrorCode::InvalidFormat,
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// Implements the string plumbing shared by the validated string newtypes: `FromStr`,
/// serde through `String`, and `as_str`.
macro_rules! string_newtype {
    ($ty:ident) => {
        impl $ty {
            /// The value as given. It may be personal data: do not log it.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl FromStr for $ty {
            type Err = Invalid;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::new(s)
            }
        }
        impl TryFrom<String> for $ty {
            type Error = Invalid;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                Self::new(&s)
            }
        }
        impl From<$ty> for String {
            fn from(v: $ty) -> Self {
                v.0
            }
        }
    };
}
pub(crate) use string_newtype;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_serialize_in_snake_case() {
        let json = serde_json::to_string(&ErrorCode::InvalidFormat).unwrap();
        assert_eq!(json, "\"invalid_format\"");
        for code in [
            ErrorCode::Required,
            ErrorCode::InvalidFormat,
            ErrorCode::InvalidValue,
            ErrorCode::InvalidType,
            ErrorCode::UnknownField,
            ErrorCode::TooLong,
            ErrorCode::TooMany,
            ErrorCode::Duplicate,
            ErrorCode::OutOfRange,
        ] {
            let json = serde_json::to_value(code).unwrap();
            assert_eq!(json, serde_json::Value::from(code.as_str()));
            let back: ErrorCode = serde_json::from_value(json).unwrap();
            assert_eq!(back, code);
        }
    }

    #[test]
    fn field_error_serializes_field_code_and_message() {
        let e = FieldError::required("phoneNumber");
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "field": "phoneNumber",
                "code": "required",
                "message": "phoneNumber is required"
            })
        );
    }

    #[test]
    fn violations_display_lists_the_fields() {
        let mut v = Violations::new();
        assert!(v.is_empty());
        v.push(FieldError::required("phoneNumber"));
        v.push(Invalid::new(ErrorCode::InvalidFormat, "must be 12345 or 12345-6789").at("zipCode"));
        assert_eq!(v.len(), 2);
        assert_eq!(v.to_string(), "invalid request: phoneNumber, zipCode");
        let fields: Vec<&str> = v.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["phoneNumber", "zipCode"]);
        assert_eq!(v.for_field("zipCode").count(), 1);
        assert_eq!(
            v.for_field("zipCode").next().unwrap().message,
            "zipCode must be 12345 or 12345-6789"
        );
    }

    #[test]
    fn violations_serialize_as_a_plain_array() {
        let v: Violations = vec![FieldError::unknown_field("nickname")].into();
        let json = serde_json::to_value(&v).unwrap();
        assert_eq!(json[0]["code"], "unknown_field");
        assert_eq!(json[0]["field"], "nickname");
    }

    #[test]
    fn text_checks_count_characters_and_reject_control_characters() {
        assert!(check_text("é".repeat(3).as_str(), 1, 3).is_ok());
        assert_eq!(
            check_text("abcd", 1, 3).unwrap_err().code,
            ErrorCode::TooLong
        );
        assert_eq!(
            check_text("", 1, 3).unwrap_err().code,
            ErrorCode::InvalidValue
        );
        assert!(check_text("", 0, 3).is_ok());
        assert_eq!(
            check_text("a\u{7f}", 1, 3).unwrap_err().code,
            ErrorCode::InvalidFormat
        );
    }

    #[test]
    fn empty_violations_turn_into_ok() {
        assert_eq!(Violations::new().into_result(7), Ok(7));
        let v = Violations::from(FieldError::required("id"));
        assert!(v.into_result(7).is_err());
    }
}

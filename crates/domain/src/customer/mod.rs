//! Customers: the `POST /customers` request body, its validation, and the validated record.
//!
//! [`CustomerInput`] is the request exactly as the API receives it: every field optional and
//! loosely typed, unknown keys caught rather than dropped. [`CustomerInput::validate`] checks
//! everything at once and returns either a typed [`Customer`] or every problem, each naming
//! its JSON field. [`Customer`] serializes back to the API's response shape. The personal
//! data it holds lives in the masked newtypes of [`crate::phone`] (`PhoneNumber`,
//! `PersonName`, `Email`, `Birthday`, `SsnLastFour`) and its `Debug` masks the address too.

mod input;
mod zip_code;

use std::fmt;
use std::str::FromStr;

use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::UsState;
use crate::geo::Geo;
use crate::phone::{Birthday, Email, PersonName, PhoneNumber, SsnLastFour};
use crate::policy::{Candidates, LocationFacts, Subject};
use crate::task::TaskType;
use crate::validation::{Invalid, check_text, string_newtype};

pub use input::{CustomerInput, INPUT_FIELDS};
pub use zip_code::ZipCode;

/// The longest customer reference or loan reference, in characters.
pub const MAX_REF_CHARS: usize = 128;
/// The largest `externalMetadata` object, in bytes of compact JSON.
pub const MAX_METADATA_BYTES: usize = 64 * 1024;
/// The most entries `loanIds` may have.
pub const MAX_LOAN_IDS: usize = 1000;

/// The lender's own reference for a customer (the API's `id`): 1 to 128 characters, no
/// control characters. Not personal data, so it prints as is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CustomerRef(String);
string_newtype!(CustomerRef);

impl CustomerRef {
    /// Checks and wraps a reference.
    pub fn new(s: &str) -> Result<Self, Invalid> {
        check_text(s, 1, MAX_REF_CHARS)?;
        Ok(Self(s.to_owned()))
    }
}

impl fmt::Display for CustomerRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A validated customer, in the field order of the API's response.
///
/// Serializes to the `POST /customers` response body (camelCase; absent optionals, an empty
/// `loanIds` and a missing `loanId` are omitted; `externalMetadata` is always present and
/// keeps the client's key order). An empty `loan_ids` means "import all loans". `Debug`
/// masks every personal field.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Customer {
    pub first_name: PersonName,
    pub last_name: PersonName,
    pub id: CustomerRef,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<Email>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birthday: Option<Birthday>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssn_last_four: Option<SsnLastFour>,
    pub timezone: Tz,
    #[serde(rename = "phoneNumber")]
    pub phone: PhoneNumber,
    pub street_address1: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub street_address2: Option<String>,
    pub city: String,
    pub state: UsState,
    pub zip_code: ZipCode,
    pub do_not_call: bool,
    pub is_test: bool,
    pub task_type: TaskType,
    #[serde(default)]
    pub external_metadata: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loan_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub loan_ids: Vec<i64>,
}

impl Customer {
    /// Every zone and state the customer's data suggests (IANA zone, ZIP, address state,
    /// area code): a dial must be lawful in all of them.
    pub fn candidates(&self) -> Candidates {
        let facts = LocationFacts {
            timezone: Some(self.timezone),
            state: Some(self.state),
            zip: Some(self.zip_code.five()),
            area_code: self.phone.nanp_area_code(),
        };
        Candidates::resolve(&facts, Geo::us())
    }

    /// The debt and number a call to this customer is about (the caps' key).
    pub fn subject(&self) -> Subject<'_> {
        Subject {
            debt: self.loan_id.as_deref(),
            number: Some(self.phone.as_e164()),
        }
    }
}

/// Masks `Some(value)` as `Some(***)`.
fn masked<T>(value: &Option<T>) -> &'static str {
    if value.is_some() { "Some(***)" } else { "None" }
}

impl fmt::Debug for Customer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Customer")
            .field("id", &self.id)
            .field("task_type", &self.task_type)
            .field("first_name", &self.first_name)
            .field("last_name", &self.last_name)
            .field("email", &self.email)
            .field("birthday", &self.birthday)
            .field("ssn_last_four", &self.ssn_last_four)
            .field("timezone", &self.timezone)
            .field("phone", &self.phone)
            .field("street_address1", &format_args!("***"))
            .field(
                "street_address2",
                &format_args!("{}", masked(&self.street_address2)),
            )
            .field("city", &format_args!("***"))
            .field("state", &self.state)
            .field(
                "zip_code",
                &format_args!("{}**", &self.zip_code.five()[..3]),
            )
            .field("do_not_call", &self.do_not_call)
            .field("is_test", &self.is_test)
            .field(
                "external_metadata",
                &format_args!("{{{} keys}}", self.external_metadata.len()),
            )
            .field("loan_id", &self.loan_id)
            .field("loan_ids", &self.loan_ids)
            .finish()
    }
}

#[cfg(test)]
mod tests;

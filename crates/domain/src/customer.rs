//! Customers: the `POST /customers` request body, its validation, and the validated record.
//!
//! [`CustomerInput`] is the request exactly as the API receives it: every field optional and
//! loosely typed, unknown keys caught rather than dropped. [`CustomerInput::validate`] checks
//! everything at once and returns either a typed [`Customer`] or every problem, each naming
//! its JSON field. [`Customer`] serializes back to the API's response shape. The personal
//! data it holds lives in the masked newtypes of [`crate::phone`] (`PhoneNumber`,
//! `PersonName`, `Email`, `Birthday`, `SsnLastFour`) and its `Debug` masks the address too.

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;

use chrono::NaiveDate;
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::UsState;
use crate::geo::Geo;
use crate::phone::{Birthday, Email, PersonName, PhoneNumber, SsnLastFour};
use crate::policy::{Candidates, LocationFacts, Subject};
use crate::task::TaskType;
use crate::validation::{
    ErrorCode, FieldError, Invalid, MAX_TEXT_CHARS, Violations, check_text, string_newtype,
};

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

/// The `POST /customers` request body, exactly as received (camelCase JSON).
///
/// Every field is optional here so that [`CustomerInput::validate`] can report every
/// missing or malformed field at once; keys the API does not know land in `unknown` and are
/// rejected by validation. `Debug` shows which fields are present, never their values.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomerInput {
    pub id: Option<String>,
    pub task_type: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    pub birthday: Option<String>,
    pub ssn_last_four: Option<String>,
    pub timezone: Option<String>,
    pub phone_number: Option<String>,
    pub street_address1: Option<String>,
    pub street_address2: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub zip_code: Option<String>,
    pub do_not_call: Option<bool>,
    pub is_test: Option<bool>,
    pub test: Option<bool>,
    pub external_metadata: Option<Value>,
    pub loan_ids: Option<Vec<i64>>,
    pub sync: Option<bool>,
    pub loan_id: Option<String>,
    /// Keys the API does not define; any entry is a validation error.
    #[serde(flatten)]
    pub unknown: Map<String, Value>,
}

impl CustomerInput {
    /// Whether the client asked for LMS auto-fetch (`sync`, default false). [`validate`]
    /// is the full validation of a non-sync request; the API layer merges LMS data first.
    ///
    /// [`validate`]: CustomerInput::validate
    pub fn is_sync(&self) -> bool {
        self.sync.unwrap_or(false)
    }

    /// Checks every field and returns the typed customer, or every problem found.
    ///
    /// `valid_task_types` is the company's configured list; `today` is the date birthdays
    /// must not exceed. A customer is a test customer when `isTest` or `test` is true (the
    /// API documents both; its own example sends `isTest: true` with `test: false`).
    pub fn validate(
        &self,
        valid_task_types: &[TaskType],
        today: NaiveDate,
    ) -> Result<Customer, Violations> {
        let mut v = Violations::new();
        let id = required(&mut v, "id", &self.id, CustomerRef::new);
        let task_type = required(&mut v, "taskType", &self.task_type, |s| {
            task_type_in(s, valid_task_types)
        });
        let first_name = required(&mut v, "firstName", &self.first_name, PersonName::new);
        let last_name = required(&mut v, "lastName", &self.last_name, PersonName::new);
        let email = optional(&mut v, "email", &self.email, Email::new);
        let birthday = optional(&mut v, "birthday", &self.birthday, |s| {
            Birthday::parse(s, today)
        });
        let ssn_last_four = optional(&mut v, "ssnLastFour", &self.ssn_last_four, SsnLastFour::new);
        let timezone = required(&mut v, "timezone", &self.timezone, parse_timezone);
        let phone = required(&mut v, "phoneNumber", &self.phone_number, |s| {
            Ok(PhoneNumber::parse(s)?)
        });
        let street_address1 = required(
            &mut v,
            "streetAddress1",
            &self.street_address1,
            address_line,
        );
        let street_address2 = optional(&mut v, "streetAddress2", &self.street_address2, |s| {
            check_text(s, 0, MAX_TEXT_CHARS).map(|()| s.to_owned())
        });
        let city = required(&mut v, "city", &self.city, address_line);
        let state = required(&mut v, "state", &self.state, parse_state);
        let zip_code = required(&mut v, "zipCode", &self.zip_code, ZipCode::new);
        let external_metadata = self.check_metadata(&mut v);
        let loan_ids = self.check_loan_ids(&mut v);
        let loan_id = optional(&mut v, "loanId", &self.loan_id, |s| {
            check_text(s, 1, MAX_REF_CHARS).map(|()| s.to_owned())
        });
        for key in self.unknown.keys() {
            v.push(FieldError::unknown_field(key.as_str()));
        }

        // Every `None` below pushed a violation, so this only fails when `v` is non-empty.
        let (
            Some(id),
            Some(task_type),
            Some(first_name),
            Some(last_name),
            Some(timezone),
            Some(phone),
            Some(street_address1),
            Some(city),
            Some(state),
            Some(zip_code),
        ) = (
            id,
            task_type,
            first_name,
            last_name,
            timezone,
            phone,
            street_address1,
            city,
            state,
            zip_code,
        )
        else {
            return Err(v);
        };
        v.into_result(Customer {
            first_name,
            last_name,
            id,
            email,
            birthday,
            ssn_last_four,
            timezone,
            phone,
            street_address1,
            street_address2,
            city,
            state,
            zip_code,
            do_not_call: self.do_not_call.unwrap_or(false),
            is_test: self.is_test.unwrap_or(false) || self.test.unwrap_or(false),
            task_type,
            external_metadata,
            loan_id,
            loan_ids,
        })
    }

    fn check_metadata(&self, v: &mut Violations) -> Map<String, Value> {
        const FIELD: &str = "externalMetadata";
        match &self.external_metadata {
            None => Map::new(),
            Some(Value::Object(map)) => {
                let size = serde_json::to_string(map).map_or(usize::MAX, |s| s.len());
                if size > MAX_METADATA_BYTES {
                    let message = format!("must be at most {MAX_METADATA_BYTES} bytes as JSON");
                    v.push(Invalid::new(ErrorCode::TooLong, message).at(FIELD));
                }
                map.clone()
            }
            Some(_) => {
                v.push(Invalid::new(ErrorCode::InvalidType, "must be a JSON object").at(FIELD));
                Map::new()
            }
        }
    }

    fn check_loan_ids(&self, v: &mut Violations) -> Vec<i64> {
        const FIELD: &str = "loanIds";
        let Some(ids) = &self.loan_ids else {
            return Vec::new();
        };
        if ids.is_empty() {
            let message = "must not be empty; omit it to import all loans";
            v.push(Invalid::new(ErrorCode::InvalidValue, message).at(FIELD));
        } else if ids.len() > MAX_LOAN_IDS {
            let message = format!("must have at most {MAX_LOAN_IDS} entries");
            v.push(Invalid::new(ErrorCode::TooMany, message).at(FIELD));
        } else {
            let mut seen = HashSet::with_capacity(ids.len());
            for (i, &id) in ids.iter().enumerate() {
                let field = format!("{FIELD}[{i}]");
                if id <= 0 {
                    v.push(
                        Invalid::new(ErrorCode::OutOfRange, "must be a positive integer").at(field),
                    );
                } else if !seen.insert(id) {
                    v.push(
                        Invalid::new(ErrorCode::Duplicate, "repeats an earlier loan id").at(field),
                    );
                }
            }
        }
        ids.clone()
    }
}

/// Validates a required field: absent, `null` or blank is `required`.
fn required<T>(
    v: &mut Violations,
    field: &str,
    value: &Option<String>,
    check: impl FnOnce(&str) -> Result<T, Invalid>,
) -> Option<T> {
    match value.as_deref() {
        None => {
            v.push(FieldError::required(field));
            None
        }
        Some(s) if s.trim().is_empty() => {
            v.push(
                Invalid::new(ErrorCode::Required, "is required and must not be blank").at(field),
            );
            None
        }
        Some(s) => check(s).map_err(|e| v.push(e.at(field))).ok(),
    }
}

/// Validates an optional field: absent or `null` is `None`.
fn optional<T>(
    v: &mut Violations,
    field: &str,
    value: &Option<String>,
    check: impl FnOnce(&str) -> Result<T, Invalid>,
) -> Option<T> {
    check(value.as_deref()?)
        .map_err(|e| v.push(e.at(field)))
        .ok()
}

fn task_type_in(s: &str, valid: &[TaskType]) -> Result<TaskType, Invalid> {
    if let Some(t) = valid.iter().find(|t| t.as_str() == s) {
        return Ok(t.clone());
    }
    let names: Vec<&str> = valid.iter().map(TaskType::as_str).collect();
    let list = if names.is_empty() {
        "(none configured)".to_owned()
    } else {
        names.join(", ")
    };
    Err(Invalid::new(
        ErrorCode::InvalidValue,
        format!("must be one of: {list}"),
    ))
}

fn parse_timezone(s: &str) -> Result<Tz, Invalid> {
    Tz::from_str(s).map_err(|_| {
        Invalid::new(
            ErrorCode::InvalidValue,
            "must be an IANA time zone name such as America/New_York",
        )
    })
}

fn parse_state(s: &str) -> Result<UsState, Invalid> {
    UsState::from_str(s).map_err(|_| {
        let message =
            "must be a US state, DC or territory code such as NY (AA, AE, AP are not accepted)";
        Invalid::new(ErrorCode::InvalidValue, message)
    })
}

fn address_line(s: &str) -> Result<String, Invalid> {
    check_text(s, 1, MAX_TEXT_CHARS)?;
    Ok(s.to_owned())
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

impl fmt::Debug for CustomerInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys: Vec<&str> = self.unknown.keys().map(String::as_str).collect();
        f.debug_struct("CustomerInput")
            .field("id", &self.id)
            .field("task_type", &self.task_type)
            .field("first_name", &format_args!("{}", masked(&self.first_name)))
            .field("last_name", &format_args!("{}", masked(&self.last_name)))
            .field("email", &format_args!("{}", masked(&self.email)))
            .field("birthday", &format_args!("{}", masked(&self.birthday)))
            .field(
                "ssn_last_four",
                &format_args!("{}", masked(&self.ssn_last_four)),
            )
            .field("timezone", &self.timezone)
            .field(
                "phone_number",
                &format_args!("{}", masked(&self.phone_number)),
            )
            .field(
                "street_address1",
                &format_args!("{}", masked(&self.street_address1)),
            )
            .field(
                "street_address2",
                &format_args!("{}", masked(&self.street_address2)),
            )
            .field("city", &format_args!("{}", masked(&self.city)))
            .field("state", &self.state)
            .field("zip_code", &format_args!("{}", masked(&self.zip_code)))
            .field("do_not_call", &self.do_not_call)
            .field("is_test", &self.is_test)
            .field("test", &self.test)
            .field(
                "external_metadata",
                &format_args!("{}", masked(&self.external_metadata)),
            )
            .field("loan_ids", &self.loan_ids)
            .field("sync", &self.sync)
            .field("loan_id", &self.loan_id)
            .field("unknown_keys", &keys)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 5, 1).unwrap()
    }

    fn task_types() -> Vec<TaskType> {
        vec![
            "collections".parse().unwrap(),
            "verification".parse().unwrap(),
        ]
    }

    /// The seed's example request with real values in place of `<string>`.
    fn seed_body() -> Value {
        serde_json::from_str(include_str!("../../../tests/fixtures/seed-customer.json"))
            .expect("the seed fixture is JSON")
    }

    fn validate(body: Value) -> Result<Customer, Violations> {
        let input: CustomerInput = serde_json::from_value(body).unwrap();
        input.validate(&task_types(), today())
    }

    fn errors(body: Value) -> Vec<(String, ErrorCode)> {
        let v = validate(body).unwrap_err();
        v.into_iter().map(|e| (e.field, e.code)).collect()
    }

    fn with(field: &str, value: Value) -> Value {
        let mut body = seed_body();
        body[field] = value;
        body
    }

    #[test]
    fn seed_example_validates_and_serializes_back_field_by_field() {
        let body = seed_body();
        let customer = validate(body.clone()).unwrap();
        assert_eq!(customer.phone.nanp_area_code(), Some(555));
        assert_eq!(customer.state, UsState::CA);
        assert_eq!(customer.timezone, chrono_tz::America::Los_Angeles);
        assert!(customer.is_test);
        assert!(customer.do_not_call);

        let out = serde_json::to_value(&customer).unwrap();
        let expected_keys = [
            "firstName",
            "lastName",
            "id",
            "email",
            "birthday",
            "ssnLastFour",
            "timezone",
            "phoneNumber",
            "streetAddress1",
            "streetAddress2",
            "city",
            "state",
            "zipCode",
            "doNotCall",
            "isTest",
            "taskType",
            "externalMetadata",
            "loanId",
            "loanIds",
        ];
        let keys: Vec<&str> = out
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, expected_keys);
        for key in expected_keys {
            if key != "isTest" {
                assert_eq!(out[key], body[key], "{key}");
            }
        }
        assert_eq!(out["isTest"], true);

        let back: Customer = serde_json::from_value(out).unwrap();
        assert_eq!(back, customer);
    }

    #[test]
    fn external_metadata_keeps_the_clients_key_order() {
        let customer = validate(seed_body()).unwrap();
        let keys: Vec<&str> = customer
            .external_metadata
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys[..3], ["home_phone", "cell_phone", "employer_name"]);
        assert_eq!(keys.last(), Some(&"pay_day"));
    }

    #[test]
    fn minimal_body_omits_absent_optionals_in_the_response() {
        let mut body = seed_body();
        let obj = body.as_object_mut().unwrap();
        for key in [
            "email",
            "birthday",
            "ssnLastFour",
            "streetAddress2",
            "doNotCall",
            "isTest",
            "test",
            "externalMetadata",
            "loanIds",
            "sync",
            "loanId",
        ] {
            obj.remove(key);
        }
        let customer = validate(body).unwrap();
        assert!(!customer.do_not_call && !customer.is_test);
        let out = serde_json::to_value(&customer).unwrap();
        for key in [
            "email",
            "birthday",
            "ssnLastFour",
            "streetAddress2",
            "loanId",
            "loanIds",
        ] {
            assert!(out.get(key).is_none(), "{key}");
        }
        assert_eq!(out["externalMetadata"], json!({}));
        assert_eq!(out["doNotCall"], false);
    }

    #[test]
    fn each_missing_required_field_gives_exactly_one_required_error() {
        let required = [
            "id",
            "taskType",
            "firstName",
            "lastName",
            "phoneNumber",
            "timezone",
            "streetAddress1",
            "city",
            "state",
            "zipCode",
        ];
        for field in required {
            for missing in [None, Some(Value::Null), Some(json!("")), Some(json!("   "))] {
                let mut body = seed_body();
                match &missing {
                    None => {
                        body.as_object_mut().unwrap().remove(field);
                    }
                    Some(value) => body[field] = value.clone(),
                }
                assert_eq!(
                    errors(body),
                    [(field.to_owned(), ErrorCode::Required)],
                    "{field} {missing:?}"
                );
            }
        }
    }

    #[test]
    fn each_invalid_value_names_its_field() {
        let long = "x".repeat(MAX_TEXT_CHARS + 1);
        let cases = [
            ("id", json!("x".repeat(129)), ErrorCode::TooLong),
            ("id", json!("a\u{0}b"), ErrorCode::InvalidFormat),
            ("taskType", json!("marketing"), ErrorCode::InvalidValue),
            ("firstName", json!(long), ErrorCode::TooLong),
            ("lastName", json!("Doe\n"), ErrorCode::InvalidFormat),
            ("email", json!("jane.example.com"), ErrorCode::InvalidFormat),
            ("birthday", json!("06/15/1985"), ErrorCode::InvalidFormat),
            ("birthday", json!("1985-02-30"), ErrorCode::InvalidFormat),
            ("birthday", json!("2030-01-01"), ErrorCode::OutOfRange),
            ("birthday", json!("1899-12-31"), ErrorCode::OutOfRange),
            ("ssnLastFour", json!("12345"), ErrorCode::InvalidFormat),
            ("ssnLastFour", json!("12a4"), ErrorCode::InvalidFormat),
            (
                "timezone",
                json!("America/Springfield"),
                ErrorCode::InvalidValue,
            ),
            (
                "timezone",
                json!("america/new_york"),
                ErrorCode::InvalidValue,
            ),
            (
                "phoneNumber",
                json!("(415) 555-2671"),
                ErrorCode::InvalidFormat,
            ),
            (
                "phoneNumber",
                json!("+10155552671"),
                ErrorCode::InvalidValue,
            ),
            ("streetAddress1", json!(long), ErrorCode::TooLong),
            ("streetAddress2", json!("Apt\t4B"), ErrorCode::InvalidFormat),
            ("city", json!(long), ErrorCode::TooLong),
            ("state", json!("AE"), ErrorCode::InvalidValue),
            ("state", json!("Calif"), ErrorCode::InvalidValue),
            ("zipCode", json!("9410"), ErrorCode::InvalidFormat),
            ("zipCode", json!("94102-12"), ErrorCode::InvalidFormat),
            ("zipCode", json!("94102 1234"), ErrorCode::InvalidFormat),
            ("externalMetadata", json!(["a"]), ErrorCode::InvalidType),
            (
                "externalMetadata",
                json!({"blob": "x".repeat(MAX_METADATA_BYTES)}),
                ErrorCode::TooLong,
            ),
            ("loanIds", json!([]), ErrorCode::InvalidValue),
            (
                "loanIds",
                json!(vec![1; MAX_LOAN_IDS + 1]),
                ErrorCode::TooMany,
            ),
            ("loanId", json!(""), ErrorCode::InvalidValue),
            ("loanId", json!("x".repeat(129)), ErrorCode::TooLong),
        ];
        for (field, value, code) in cases {
            let got = errors(with(field, value.clone()));
            assert_eq!(got, [(field.to_owned(), code)], "{field} = {value}");
        }
    }

    #[test]
    fn loan_id_entries_are_checked_one_by_one() {
        let got = errors(with("loanIds", json!([5, 0, 7, 5, -3])));
        assert_eq!(
            got,
            [
                ("loanIds[1]".to_owned(), ErrorCode::OutOfRange),
                ("loanIds[3]".to_owned(), ErrorCode::Duplicate),
                ("loanIds[4]".to_owned(), ErrorCode::OutOfRange),
            ]
        );
    }

    #[test]
    fn unknown_key_is_rejected_by_name() {
        let mut body = seed_body();
        body["nickname"] = json!("JD");
        let v = validate(body).unwrap_err();
        let e = v.iter().next().unwrap();
        assert_eq!(
            (e.field.as_str(), e.code),
            ("nickname", ErrorCode::UnknownField)
        );
        assert_eq!(v.len(), 1);
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let mut body = seed_body();
        body["zipCode"] = json!("ABCDE");
        body["email"] = json!("nope");
        body.as_object_mut().unwrap().remove("city");
        body["extra"] = json!(1);
        let fields: Vec<String> = errors(body).into_iter().map(|(f, _)| f).collect();
        assert_eq!(fields, ["email", "city", "zipCode", "extra"]);
    }

    #[test]
    fn invalid_task_type_lists_the_valid_ones() {
        let v = validate(with("taskType", json!("welcome"))).unwrap_err();
        let e = v.iter().next().unwrap();
        assert_eq!(
            e.message,
            "taskType must be one of: collections, verification"
        );
    }

    #[test]
    fn either_test_flag_marks_a_test_customer() {
        for (is_test, test, expected) in [
            (None, None, false),
            (Some(false), Some(false), false),
            (Some(true), Some(false), true),
            (None, Some(true), true),
        ] {
            let mut body = seed_body();
            body["isTest"] = json!(is_test);
            body["test"] = json!(test);
            assert_eq!(
                validate(body).unwrap().is_test,
                expected,
                "{is_test:?} {test:?}"
            );
        }
    }

    #[test]
    fn sync_defaults_to_false() {
        let input: CustomerInput = serde_json::from_value(json!({"id": "1"})).unwrap();
        assert!(!input.is_sync());
        let input: CustomerInput =
            serde_json::from_value(json!({"id": "1", "sync": true})).unwrap();
        assert!(input.is_sync());
    }

    #[test]
    fn zip_plus_four_and_lowercase_state_are_accepted() {
        let mut body = with("zipCode", json!("94102-1234"));
        body["state"] = json!("pr");
        let customer = validate(body).unwrap();
        assert_eq!(customer.zip_code.five(), "94102");
        assert_eq!(customer.zip_code.plus_four(), Some("1234"));
        assert_eq!(customer.state, UsState::PR);
    }

    #[test]
    fn debug_of_a_customer_hides_every_personal_field() {
        let customer = validate(seed_body()).unwrap();
        let debug = format!("{customer:?}");
        for secret in [
            "5551234567",
            "1234567",
            "1234\"",
            "1985",
            "06-15",
            "Jane",
            "Doe",
            "jane.doe",
            "123 Main",
            "Apt 4B",
            "San Francisco",
            "94102",
            "Acme",
        ] {
            assert!(!debug.contains(secret), "{secret} leaked in {debug}");
        }
        assert!(debug.contains("+1******4567"), "{debug}");
        assert!(debug.contains("cust-8841"), "{debug}");
    }

    #[test]
    fn debug_of_the_raw_input_hides_every_personal_field() {
        let input: CustomerInput = serde_json::from_value(seed_body()).unwrap();
        let debug = format!("{input:?}");
        for secret in [
            "5551234567",
            "1985",
            "Jane",
            "Doe",
            "jane.doe",
            "123 Main",
            "San Francisco",
            "94102",
        ] {
            assert!(!debug.contains(secret), "{secret} leaked in {debug}");
        }
    }
}

//! The `POST /customers` request body as received, and its validation into a [`Customer`].

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;

use chrono::NaiveDate;
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{
    Customer, CustomerRef, MAX_LOAN_IDS, MAX_METADATA_BYTES, MAX_REF_CHARS, ZipCode, masked,
};
use crate::UsState;
use crate::phone::{Birthday, Email, PersonName, PhoneNumber, SsnLastFour};
use crate::task::TaskType;
use crate::validation::{ErrorCode, FieldError, Invalid, MAX_TEXT_CHARS, Violations, check_text};

/// The JSON names of every [`CustomerInput`] field: the keys `POST /customers` accepts.
pub const INPUT_FIELDS: &[&str] = &[
    "id",
    "taskType",
    "firstName",
    "lastName",
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
    "test",
    "externalMetadata",
    "loanIds",
    "sync",
    "loanId",
];

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

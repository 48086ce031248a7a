use chrono::NaiveDate;
use serde_json::json;

use super::*;
use crate::validation::{ErrorCode, MAX_TEXT_CHARS, Violations};

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
    serde_json::from_str(include_str!(
        "../../../../tests/fixtures/seed-customer.json"
    ))
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
    let input: CustomerInput = serde_json::from_value(json!({"id": "1", "sync": true})).unwrap();
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

#[test]
fn input_fields_names_exactly_the_keys_customer_input_reads() {
    for field in INPUT_FIELDS {
        let input: CustomerInput =
            serde_json::from_value(json!({ *field: null })).expect("null fits every field");
        assert!(
            input.unknown.is_empty(),
            "{field} is not a CustomerInput field"
        );
    }
    let all = serde_json::to_value(CustomerInput {
        id: Some("x".into()),
        ..CustomerInput::default()
    })
    .expect("serializes");
    // Every serialized key (the struct's own fields) is in the list.
    for key in all.as_object().expect("object").keys() {
        assert!(
            INPUT_FIELDS.contains(&key.as_str()),
            "{key} missing from INPUT_FIELDS"
        );
    }
}

//! Shared helpers of the store tests: a fixed "now", customers and companies.
#![allow(dead_code)]

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use outdial_domain::schedule::Catalog;
use outdial_domain::{Customer, CustomerInput};
use outdial_store::{CompanyId, Store};
use serde_json::{Value, json};

pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 1, 12, 0, 0).unwrap()
}

/// The seed's example request with real values in place of `<string>`.
pub fn seed_body() -> Value {
    serde_json::from_str(include_str!(
        "../../../../tests/fixtures/seed-customer.json"
    ))
    .expect("the seed fixture is JSON")
}

pub fn customer_from(body: Value) -> Customer {
    let input: CustomerInput = serde_json::from_value(body).expect("customer body");
    let today = NaiveDate::from_ymd_opt(2026, 5, 1).expect("date");
    input
        .validate(&Catalog::builtin().task_types(), today)
        .expect("valid customer")
}

/// A minimal valid customer with the given id and flags.
pub fn customer(id: &str, is_test: bool, do_not_call: bool) -> Customer {
    customer_from(json!({
        "id": id,
        "taskType": "verification",
        "firstName": "Sam",
        "lastName": "Lee",
        "timezone": "America/New_York",
        "phoneNumber": "+12125550100",
        "streetAddress1": "1 Broadway",
        "city": "New York",
        "state": "NY",
        "zipCode": "10004",
        "isTest": is_test,
        "doNotCall": do_not_call,
    }))
}

pub async fn company(store: &Store, name: &str) -> CompanyId {
    store
        .create_company(name, now())
        .await
        .expect("create company")
        .0
        .id
}

//! Shared helpers of the store tests: a fixed "now", customers and companies.
#![allow(dead_code)]

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use outdial_domain::schedule::{Cadence, CadenceDef, Catalog, Plan, PlannedCall};
use outdial_domain::task::ScheduleType;
use outdial_domain::{Customer, CustomerInput, CustomerRef};
use outdial_store::{CompanyId, CreatedSchedule, NewSchedule, Store};
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

/// A plan of `n` calls an hour apart from tomorrow.
pub fn plan(n: usize) -> Plan {
    let start = now() + Duration::days(1);
    Plan {
        calls: (0..n)
            .map(|i| {
                let at = start + Duration::hours(i64::try_from(i).expect("small"));
                PlannedCall {
                    at,
                    local: at.naive_utc(),
                    slot: at,
                    moved_by: vec![],
                }
            })
            .collect(),
        dropped: vec![],
    }
}

/// A collections schedule of `customer` (New York, ruleset "test") with `plan`.
pub fn collections<'a>(
    customer: &'a CustomerRef,
    cadence: &'a CadenceDef,
    plan: &'a Plan,
) -> NewSchedule<'a> {
    NewSchedule {
        customer_id: customer,
        schedule_type: ScheduleType::Collections,
        task_type: "collections",
        loan_id: None,
        cadence,
        ruleset: "test",
        zone: chrono_tz::America::New_York,
        plan,
    }
}

pub async fn create(
    store: &Store,
    company: CompanyId,
    customer: &str,
    calls: usize,
) -> CreatedSchedule {
    let def: CadenceDef = Cadence::default_def(ScheduleType::Collections).expect("a default");
    let id: CustomerRef = customer.parse().expect("a customer ref");
    store
        .create_schedule(company, &collections(&id, &def, &plan(calls)), now())
        .await
        .expect("create a schedule")
}

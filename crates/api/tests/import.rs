//! Bulk import: `POST /customers/batch`, the runner the worker fleet runs, and the job's
//! status and errors, against real Postgres (and a fake LMS on loopback for `sync: true`).

mod support;

use std::sync::Arc;

use axum::http::StatusCode;
use chrono::Duration;
use outdial_api::AppState;
use outdial_api::import::{RunnerConfig, run_once};
use outdial_domain::ManualClock;
use outdial_domain::policy::Ruleset;
use outdial_lms::fake::FakeLms;
use serde_json::{Value, json};
use sqlx::PgPool;
use support::*;

/// A New York collections customer.
fn row(id: &str) -> Value {
    let mut body = minimal(id);
    body["taskType"] = json!("collections");
    body
}

/// Runs jobs as one worker would until none is left.
async fn run_all(f: &Fixture) {
    let state = AppState::new(
        f.store.clone(),
        Arc::new(ManualClock::new(f.now)),
        Arc::new(Ruleset::bundled().expect("bundled rules")),
        None,
    );
    let mut config = RunnerConfig::new("test-runner");
    config.chunk = 3;
    let (_stop, shutdown) = tokio::sync::watch::channel(false);
    while run_once(&state, &config, &shutdown).await.expect("runner") {}
}

async fn status(f: &Fixture, key: &str, job: &str) -> Value {
    let (status, body) = get(&f.app, key, &format!("/customers/batch/{job}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn submit(f: &Fixture, uri: &str, body: &Value) -> String {
    let (status, accepted) = post(&f.app, &f.key_a, uri, body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    accepted["jobId"].as_str().expect("jobId").to_owned()
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn good_rows_are_imported_and_scheduled_and_each_bad_row_is_named_with_its_field(
    pool: PgPool,
) {
    let f = fixture(pool).await;
    let mut bad_phone = row("c-bad-phone");
    bad_phone["phoneNumber"] = json!("555");
    let mut no_last_name = row("c-no-name");
    no_last_name.as_object_mut().unwrap().remove("lastName");
    let rows = json!([
        row("c1"),
        bad_phone,
        row("c2"),
        no_last_name,
        row("c3"),
        "not an object",
        {"id": "nul", "first\0Name": "x"}
    ]);
    let job = submit(&f, "/customers/batch?schedule=collections", &rows).await;

    let queued = status(&f, &f.key_a, &job).await;
    assert_eq!(queued["state"], "queued");
    assert_eq!(queued["total"], 7);
    assert_eq!(queued["counts"]["processed"], 0);
    let (status_code, _) = get(&f.app, &f.key_a, "/customers/c1").await;
    assert_eq!(
        status_code,
        StatusCode::NOT_FOUND,
        "the request stores no customer"
    );

    run_all(&f).await;
    let done = status(&f, &f.key_a, &job).await;
    assert_eq!(done["state"], "done", "{done}");
    assert_eq!(
        done["counts"],
        json!({"processed": 7, "created": 3, "updated": 0, "unchanged": 0, "rejected": 4,
               "scheduled": 3}),
        "{done}"
    );
    let errors = done["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 4);
    assert_eq!(errors[3]["row"], 6);
    assert_eq!(
        errors[3]["error"]["code"], "malformed_json",
        "a NUL is a rejected row"
    );
    assert_eq!(errors[0]["row"], 1);
    assert_eq!(errors[0]["customerId"], "c-bad-phone");
    assert_eq!(errors[0]["error"]["code"], "invalid_request");
    assert_eq!(errors[0]["error"]["fields"][0]["field"], "phoneNumber");
    assert_eq!(errors[1]["row"], 3);
    assert_eq!(errors[1]["error"]["fields"][0]["field"], "lastName");
    assert_eq!(errors[2]["row"], 5);
    assert_eq!(errors[2]["customerId"], Value::Null);
    assert_eq!(errors[2]["error"]["code"], "malformed_json");
    assert_eq!(done["moreErrors"], false);

    for id in ["c1", "c2", "c3"] {
        let (code, c) = get(&f.app, &f.key_a, &format!("/customers/{id}")).await;
        assert_eq!(code, StatusCode::OK, "{c}");
        assert!(
            !scheduled_calls(&f.app, &f.key_a, id).await.is_empty(),
            "{id} has its schedule"
        );
    }
    let (code, _) = get(&f.app, &f.key_a, "/customers/c-bad-phone").await;
    assert_eq!(code, StatusCode::NOT_FOUND, "a rejected row stores nothing");

    // Another company sees no such job.
    let (code, e) = get(&f.app, &f.key_b, &format!("/customers/batch/{job}")).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    assert_envelope(&e, "not_found");
    let (code, _) = get(&f.app, &f.key_b, &format!("/customers/batch/{job}/errors")).await;
    assert_eq!(code, StatusCode::NOT_FOUND);

    // The errors page by row.
    let (code, page) = get(
        &f.app,
        &f.key_a,
        &format!("/customers/batch/{job}/errors?limit=2"),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{page}");
    assert_eq!(page["data"].as_array().unwrap().len(), 2);
    let cursor = page["nextCursor"].as_str().expect("a next page").to_owned();
    let (_, rest) = get(
        &f.app,
        &f.key_a,
        &format!("/customers/batch/{job}/errors?limit=2&after={cursor}"),
    )
    .await;
    assert_eq!(rest["data"][0]["row"], 5);
    assert_eq!(rest["data"][1]["row"], 6);
    assert_eq!(rest["nextCursor"], Value::Null);
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn reposting_the_same_rows_creates_nothing_twice_and_never_clears_do_not_call(pool: PgPool) {
    let f = fixture(pool).await;
    let rows = json!({"customers": [row("c1"), row("c2"), row("c3")], "schedule": "collections"});
    submit(&f, "/customers/batch", &rows).await;
    run_all(&f).await;
    let before = scheduled_calls(&f.app, &f.key_a, "c1").await.len();

    // c2 asks not to be called; the nightly file still says doNotCall false.
    let (code, _) = patch(
        &f.app,
        &f.key_a,
        "/customers/c2",
        &json!({"doNotCall": true}),
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    let mut changed = row("c3");
    changed["city"] = json!("Brooklyn");
    // A new customer, c4, twice in one file: created by its first row, updated by its
    // second.
    let mut c4_moved = row("c4");
    c4_moved["city"] = json!("Queens");
    let again = json!({"customers": [row("c1"), row("c2"), changed, row("c1"), row("c4"),
                                     c4_moved],
                       "schedule": "collections"});
    let job = submit(&f, "/customers/batch", &again).await;
    run_all(&f).await;
    let done = status(&f, &f.key_a, &job).await;
    assert_eq!(
        done["counts"],
        json!({"processed": 6, "created": 1, "updated": 2, "unchanged": 3, "rejected": 0,
               "scheduled": 1}),
        "{done}"
    );
    let (_, c4) = get(&f.app, &f.key_a, "/customers/c4").await;
    assert_eq!(c4["city"], "Queens", "{c4}");
    assert_eq!(
        scheduled_calls(&f.app, &f.key_a, "c1").await.len(),
        before,
        "no second schedule"
    );
    let (_, c2) = get(&f.app, &f.key_a, "/customers/c2").await;
    assert_eq!(c2["doNotCall"], true, "{c2}");
    let (_, c3) = get(&f.app, &f.key_a, "/customers/c3").await;
    assert_eq!(c3["city"], "Brooklyn");
    let (_, listed) = get(&f.app, &f.key_a, "/customers?limit=1000").await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 4);
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn ndjson_rows_import_and_a_line_that_is_not_json_is_one_rejected_row(pool: PgPool) {
    let f = fixture(pool).await;
    // n1 twice in one chunk: created, then updated by the later row.
    let mut moved = row("n1");
    moved["city"] = json!("Brooklyn");
    let body = format!(
        "{}\n{}\n{{\"id\": \"oops\n\n{}\n",
        row("n1"),
        moved,
        row("n2")
    );
    let (code, accepted) = send(
        &f.app,
        "POST",
        "/customers/batch",
        Some(&f.key_a),
        Some(body.into_bytes()),
    )
    .await;
    assert_eq!(code, StatusCode::ACCEPTED, "{accepted}");
    assert_eq!(accepted["total"], 4);
    let job = accepted["jobId"].as_str().unwrap().to_owned();
    run_all(&f).await;
    let done = status(&f, &f.key_a, &job).await;
    assert_eq!(done["counts"]["created"], 2, "{done}");
    assert_eq!(done["counts"]["updated"], 1, "{done}");
    assert_eq!(done["counts"]["scheduled"], 0, "no schedule asked");
    let (_, n1) = get(&f.app, &f.key_a, "/customers/n1").await;
    assert_eq!(n1["city"], "Brooklyn", "the later row wins: {n1}");
    assert_eq!(done["errors"][0]["row"], 2);
    assert_eq!(done["errors"][0]["error"]["code"], "malformed_json");
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn a_batch_that_cannot_be_a_job_is_a_400_naming_what_is_wrong(pool: PgPool) {
    let f = fixture(pool).await;
    let cases = [
        ("/customers/batch", json!([]), "customers"),
        ("/customers/batch", json!({"customers": {}}), "customers"),
        (
            "/customers/batch?schedule=weekly",
            json!([row("a")]),
            "schedule",
        ),
        ("/customers/batch?color=red", json!([row("a")]), "color"),
        (
            "/customers/batch?schedule=collections",
            json!({"customers": [row("a")], "schedule": "verification"}),
            "schedule",
        ),
        (
            "/customers/batch",
            json!({"customers": [], "extra": 1}),
            "extra",
        ),
    ];
    for (uri, body, field) in cases {
        let (code, e) = post(&f.app, &f.key_a, uri, &body).await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{uri} {body}: {e}");
        assert_eq!(field_names(&e), [field], "{uri} {body}: {e}");
    }
    let many: Vec<Value> = (0..10_001)
        .map(|i| json!({"id": format!("x{i}")}))
        .collect();
    let (code, e) = post(&f.app, &f.key_a, "/customers/batch", &json!(many)).await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{e}");
    assert_eq!(e["error"]["fields"][0]["code"], "too_many");

    // Bigger than 1 MiB is fine here (16 MiB), bigger than that is 413.
    let big: Vec<Value> = (0..5_000).map(|i| row(&format!("big{i}"))).collect();
    let big = json!(big);
    assert!(big.to_string().len() > outdial_api::MAX_BODY_BYTES);
    let (code, accepted) = post(&f.app, &f.key_a, "/customers/batch", &big).await;
    assert_eq!(code, StatusCode::ACCEPTED, "{accepted}");
    let huge = vec![b' '; outdial_api::import::MAX_BATCH_BODY_BYTES + 1];
    let (code, e) = send(
        &f.app,
        "POST",
        "/customers/batch",
        Some(&f.key_a),
        Some(huge),
    )
    .await;
    assert_eq!(code, StatusCode::PAYLOAD_TOO_LARGE, "{e}");
    assert_envelope(&e, "payload_too_large");
    let (code, _) = get(&f.app, &f.key_a, "/customers/batch/not-a-uuid").await;
    assert_eq!(code, StatusCode::NOT_FOUND);
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn sync_rows_read_the_lms_and_an_lms_failure_rejects_only_that_row(pool: PgPool) {
    let f = fixture(pool).await;
    let lms = FakeLms::start().await;
    lms.put(
        "12345",
        json!({"firstName": "Dana", "lastName": "Reyes", "phoneNumber": "+14155550123",
               "streetAddress1": "123 Main St", "city": "San Francisco", "state": "CA",
               "zipCode": "94102"}),
        json!([{"id": 67890, "loanId": "L-67890", "status": "past_due"}]),
    );
    let (code, body) = send(
        &f.app,
        "PUT",
        "/lms",
        Some(&f.key_a),
        Some(
            json!({"baseUrl": lms.base_url(), "headers": {}, "timeoutMs": 500})
                .to_string()
                .into_bytes(),
        ),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let rows = json!([
        {"id": "12345", "taskType": "collections", "sync": true},
        {"id": "99999", "taskType": "collections", "sync": true},
        row("plain"),
    ]);
    let job = submit(&f, "/customers/batch?schedule=collections", &rows).await;
    run_all(&f).await;
    let done = status(&f, &f.key_a, &job).await;
    assert_eq!(done["counts"]["created"], 2, "{done}");
    assert_eq!(done["counts"]["scheduled"], 2, "{done}");
    assert_eq!(done["errors"][0]["row"], 1);
    assert_eq!(done["errors"][0]["customerId"], "99999");
    assert_eq!(done["errors"][0]["error"]["code"], "lms_customer_not_found");
    let (_, synced) = get(&f.app, &f.key_a, "/customers/12345").await;
    assert_eq!(synced["timezone"], "America/Los_Angeles", "{synced}");
    assert_eq!(synced["loans"][0]["loanId"], "L-67890", "{synced}");
    let (code, _) = get(&f.app, &f.key_a, "/customers/99999").await;
    assert_eq!(code, StatusCode::NOT_FOUND);
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn a_runner_whose_lease_was_taken_over_writes_nothing(pool: PgPool) {
    let f = fixture(pool).await;
    let job = submit(&f, "/customers/batch", &json!([row("a"), row("b")])).await;
    let store = &f.store;
    let lease = Duration::seconds(10);
    let first = store
        .claim_import("first", lease, f.now, None)
        .await
        .unwrap()
        .expect("the job");
    assert_eq!(first.id.to_string(), job);
    assert!(
        store
            .claim_import("second", lease, f.now, None)
            .await
            .unwrap()
            .is_none(),
        "a leased job is not taken"
    );
    // The first runner stalls past its lease; the second takes the job over.
    let later = f.now + Duration::seconds(11);
    let second = store
        .claim_import("second", lease, later, None)
        .await
        .unwrap()
        .expect("the expired job");
    assert_eq!(second.attempts, 2);
    assert!(
        store
            .begin_import_chunk(&first, "first", later + lease)
            .await
            .unwrap()
            .is_none(),
        "the stalled runner may not write"
    );
    assert!(!store.renew_import(first.id, "first", later).await.unwrap());
    assert!(
        !store
            .finish_import(first.id, "second", later)
            .await
            .unwrap(),
        "not done while rows are left"
    );
}

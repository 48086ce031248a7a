//! The LMS connection, `POST /customers` with `sync: true` and schedule sync, against a fake
//! LMS on loopback owned by each test.

mod support;

use std::time::Duration;

use axum::http::StatusCode;
use outdial_lms::fake::{Behaviour, FakeLms};
use serde_json::{Value, json};
use sqlx::PgPool;
use support::*;

/// The LMS's record of customer 12345: no timezone (the ZIP gives it), two loans.
fn lms_customer() -> Value {
    json!({
        "id": "12345",
        "firstName": "Dana",
        "lastName": "Reyes",
        "email": "dana@example.com",
        "birthday": "1985-06-15",
        "ssnLastFour": "1234",
        "phoneNumber": "+14155550123",
        "streetAddress1": "123 Main St",
        "city": "San Francisco",
        "state": "CA",
        "zipCode": "94102",
        "externalMetadata": {"employer_name": "Acme Corporation"},
        "creditScore": 700
    })
}

fn lms_loans() -> Value {
    json!([
        {"id": 67890, "loanId": "L-67890", "status": "past_due", "balanceCents": 125_000,
         "dueDate": "2026-04-15", "apr": 24.9},
        {"id": 456, "status": "current"}
    ])
}

async fn put(f: &Fixture, key: &str, uri: &str, body: &Value) -> (StatusCode, Value) {
    send(
        &f.app,
        "PUT",
        uri,
        Some(key),
        Some(body.to_string().into_bytes()),
    )
    .await
}

async fn connected(pool: PgPool) -> (Fixture, FakeLms) {
    let f = fixture(pool).await;
    let lms = FakeLms::start().await;
    lms.put("12345", lms_customer(), lms_loans());
    let (status, body) = put(
        &f,
        &f.key_a,
        "/lms",
        &json!({"baseUrl": lms.base_url(), "headers": {"Authorization": "Bearer s3cret"},
                "timeoutMs": 500}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    (f, lms)
}

/// The seed's minimal request.
fn minimal_sync() -> Value {
    json!({"id": "12345", "taskType": "collections", "loanId": "67890", "sync": true})
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn the_lms_connection_shows_header_names_only_and_is_per_company(pool: PgPool) {
    let (f, lms) = connected(pool).await;
    let (status, shown) = get(&f.app, &f.key_a, "/lms").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(shown["baseUrl"], lms.base_url());
    assert_eq!(shown["headerNames"], json!(["Authorization"]));
    assert_eq!(shown["timeoutMs"], 500);
    assert!(!shown.to_string().contains("s3cret"), "{shown}");

    let (status, other) = get(&f.app, &f.key_b, "/lms").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_envelope(&other, "lms_not_configured");

    for (body, field) in [
        (json!({}), "baseUrl"),
        (json!({"baseUrl": "ftp://x"}), "baseUrl"),
        (
            json!({"baseUrl": "http://x", "headers": {"A": 1}}),
            "headers.A",
        ),
        (
            json!({"baseUrl": "http://x", "headers": {"bad name": "v"}}),
            "headers.bad name",
        ),
        (json!({"baseUrl": "http://x", "timeoutMs": 0}), "timeoutMs"),
        (
            json!({"baseUrl": "http://x", "timeoutMs": "fast"}),
            "timeoutMs",
        ),
        (json!({"baseUrl": "http://x", "extra": 1}), "extra"),
    ] {
        let (status, e) = put(&f, &f.key_a, "/lms", &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {e}");
        assert_eq!(field_names(&e), [field], "{body}: {e}");
    }
    // A rejected PUT left the stored connection alone.
    assert_eq!(get(&f.app, &f.key_a, "/lms").await.1["timeoutMs"], 500);

    let (status, _) = send(&f.app, "DELETE", "/lms", Some(&f.key_a), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = send(&f.app, "DELETE", "/lms", Some(&f.key_a), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, e) = post(&f.app, &f.key_a, "/customers", &minimal_sync()).await;
    assert_eq!(status, StatusCode::CONFLICT, "{e}");
    assert_envelope(&e, "lms_not_configured");
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn the_seed_s_minimal_sync_request_creates_the_customer_its_loans_and_a_lawful_schedule(
    pool: PgPool,
) {
    let (f, lms) = connected(pool).await;
    let (status, created) = post(&f.app, &f.key_a, "/customers", &minimal_sync()).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(
        lms.last_header("authorization").as_deref(),
        Some("Bearer s3cret")
    );
    for field in [
        "firstName",
        "lastName",
        "email",
        "birthday",
        "ssnLastFour",
        "phoneNumber",
        "streetAddress1",
        "city",
        "state",
        "zipCode",
        "externalMetadata",
    ] {
        assert_eq!(created[field], lms_customer()[field], "{field}: {created}");
    }
    assert!(
        created.get("creditScore").is_none(),
        "only customer fields: {created}"
    );
    assert_eq!(created["timezone"], "America/Los_Angeles", "from the ZIP");
    assert_eq!(created["loanId"], "67890");
    assert_eq!(
        created["lmsSync"]["timezoneCandidates"],
        json!(["America/Los_Angeles"])
    );
    assert!(
        created["lmsSync"]["fieldsFromLms"]
            .as_array()
            .unwrap()
            .contains(&json!("zipCode"))
    );

    let (status, shown) = get(&f.app, &f.key_a, "/customers/12345").await;
    assert_eq!(status, StatusCode::OK);
    let loans = shown["loans"].as_array().expect("loans");
    assert_eq!(loans.len(), 2, "all loans without loanIds: {shown}");
    let loan = |id: i64| loans.iter().find(|l| l["lmsId"] == id).expect("the loan");
    assert_eq!(loan(67890)["loanId"], "L-67890");
    assert_eq!(loan(67890)["status"], "past_due");
    assert_eq!(loan(67890)["balanceCents"], 125_000);
    assert_eq!(loan(67890)["dueDate"], "2026-04-15");
    assert_eq!(
        loan(67890)["metadata"],
        json!({"apr": 24.9}),
        "unknown fields kept"
    );
    assert_eq!(loan(456)["status"], "current");

    // The schedule of the customer's task type, every call inside 08:00–21:00 Pacific.
    let (status, sync) = post(
        &f.app,
        &f.key_a,
        "/customers/12345/schedule-sync",
        &json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{sync}");
    assert_eq!(sync["scheduleCreated"], true);
    assert_eq!(sync["syncedFromLms"], true);
    assert_eq!(sync["existingTasksRemoved"], 0);
    let tasks = sync["tasksCreated"].as_u64().unwrap();
    assert!(tasks > 0, "{sync}");
    let calls = scheduled_calls(&f.app, &f.key_a, "12345").await;
    assert_eq!(calls.len() as u64, tasks);
    for call in &calls {
        let local =
            chrono::DateTime::parse_from_rfc3339(call["localTime"].as_str().unwrap()).unwrap();
        let hour = chrono::Timelike::hour(&local);
        assert!((8..21).contains(&hour), "{call}");
        assert_eq!(call["timezone"], "America/Los_Angeles");
    }
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn the_caller_s_fields_win_and_bad_lms_values_are_named_as_coming_from_the_lms(pool: PgPool) {
    let (f, lms) = connected(pool).await;
    let mut body = minimal_sync();
    body["firstName"] = json!("Danielle");
    body["timezone"] = json!("America/Denver");
    let (status, created) = post(&f.app, &f.key_a, "/customers", &body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["firstName"], "Danielle");
    assert_eq!(created["lastName"], "Reyes");
    assert_eq!(created["timezone"], "America/Denver");
    assert!(
        created["lmsSync"].get("timezoneCandidates").is_none(),
        "{created}"
    );

    // A value the LMS got wrong is a 400 naming the field and the LMS.
    let mut bad = lms_customer();
    bad["phoneNumber"] = json!("not a number");
    lms.put("777", bad, json!([]));
    let (status, e) = post(
        &f.app,
        &f.key_a,
        "/customers",
        &json!({"id": "777", "taskType": "collections", "sync": true}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{e}");
    assert_eq!(field_names(&e), ["phoneNumber"], "{e}");
    assert!(
        e["error"]["fields"][0]["message"]
            .as_str()
            .unwrap()
            .contains("came from the LMS"),
        "{e}"
    );

    // A partial answer: what neither gave is required, and says so.
    let mut partial = lms_customer();
    partial.as_object_mut().unwrap().remove("lastName");
    partial.as_object_mut().unwrap().remove("zipCode");
    lms.put("778", partial, json!([]));
    let (status, e) = post(
        &f.app,
        &f.key_a,
        "/customers",
        &json!({"id": "778", "taskType": "collections", "sync": true}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{e}");
    let mut names = field_names(&e);
    names.sort();
    assert_eq!(names, ["lastName", "timezone", "zipCode"], "{e}");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("neither the request nor the LMS"),
        "{e}"
    );
    for id in ["777", "778"] {
        assert_eq!(
            get(&f.app, &f.key_a, &format!("/customers/{id}")).await.0,
            StatusCode::NOT_FOUND
        );
    }
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn loan_ids_import_only_those_and_an_unknown_one_is_422_naming_it(pool: PgPool) {
    let (f, _lms) = connected(pool).await;
    let mut body = minimal_sync();
    body["loanIds"] = json!([456, 999]);
    let (status, e) = post(&f.app, &f.key_a, "/customers", &body).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert_envelope(&e, "unknown_loan");
    assert_eq!(field_names(&e), ["loanIds[1]"], "{e}");

    body["loanId"] = json!("nope");
    body["loanIds"] = json!([456]);
    let (status, e) = post(&f.app, &f.key_a, "/customers", &body).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert_eq!(field_names(&e), ["loanId"], "{e}");
    assert_eq!(
        get(&f.app, &f.key_a, "/customers/12345").await.0,
        StatusCode::NOT_FOUND
    );

    body["loanId"] = json!("L-67890");
    let (status, created) = post(&f.app, &f.key_a, "/customers", &body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let loans = created["loans"].as_array().unwrap();
    assert_eq!(loans.len(), 1, "only loanIds: {created}");
    assert_eq!(loans[0]["lmsId"], 456);
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn every_lms_failure_has_its_status_names_the_host_and_stores_nothing(pool: PgPool) {
    let (f, lms) = connected(pool).await;
    let host = lms.host();
    for (id, behaviour, status, code) in [
        (
            "slow",
            Behaviour::Slow(Duration::from_secs(3)),
            StatusCode::GATEWAY_TIMEOUT,
            "lms_timeout",
        ),
        (
            "down",
            Behaviour::Status(503),
            StatusCode::BAD_GATEWAY,
            "lms_unavailable",
        ),
        (
            "garbled",
            Behaviour::Malformed,
            StatusCode::BAD_GATEWAY,
            "lms_unavailable",
        ),
        (
            "denied",
            Behaviour::Status(403),
            StatusCode::BAD_GATEWAY,
            "lms_unavailable",
        ),
    ] {
        lms.put(id, lms_customer(), lms_loans());
        lms.behave(id, behaviour);
        let body = json!({"id": id, "taskType": "collections", "sync": true});
        let (got, e) = post(&f.app, &f.key_a, "/customers", &body).await;
        assert_eq!(got, status, "{id}: {e}");
        assert_envelope(&e, code);
        assert!(
            e["error"]["message"].as_str().unwrap().contains(&host),
            "{id}: {e}"
        );
        let (after, _) = get(&f.app, &f.key_a, &format!("/customers/{id}")).await;
        assert_eq!(after, StatusCode::NOT_FOUND, "{id}: nothing half-created");
    }
    let (got, e) = post(
        &f.app,
        &f.key_a,
        "/customers",
        &json!({"id": "ghost", "taskType": "collections", "sync": true}),
    )
    .await;
    assert_eq!(got, StatusCode::NOT_FOUND, "{e}");
    assert_envelope(&e, "lms_customer_not_found");
    // A broken loans answer fails the whole create too.
    lms.put("badloans", lms_customer(), json!([{"id": "x"}]));
    let (got, e) = post(
        &f.app,
        &f.key_a,
        "/customers",
        &json!({"id": "badloans", "taskType": "collections", "sync": true}),
    )
    .await;
    assert_eq!(got, StatusCode::BAD_GATEWAY, "{e}");
    let (_, page) = get(&f.app, &f.key_a, "/customers").await;
    assert_eq!(page["data"], json!([]), "no customer at all: {page}");
    let (status, e) = post(
        &f.app,
        &f.key_a,
        "/customers",
        &json!({"taskType": "collections", "sync": true}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{e}");
    assert_eq!(field_names(&e), ["id"]);
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn an_idempotency_key_replays_a_sync_create_without_asking_the_lms_again(pool: PgPool) {
    let (f, lms) = connected(pool).await;
    let send_keyed = || async {
        use axum::body::Body;
        use axum::http::Request;
        use http_body_util::BodyExt;
        use tower::ServiceExt;
        let req = Request::builder()
            .method("POST")
            .uri("/customers")
            .header("X-API-Key", &f.key_a)
            .header("Idempotency-Key", "sync-12345")
            .body(Body::from(minimal_sync().to_string()))
            .unwrap();
        let response = f.app.clone().oneshot(req).await.unwrap();
        let status = response.status();
        let replayed = response.headers().contains_key("idempotent-replayed");
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            replayed,
            serde_json::from_slice::<Value>(&bytes).unwrap(),
        )
    };
    let (status, replayed, first) = send_keyed().await;
    assert_eq!((status, replayed), (StatusCode::CREATED, false), "{first}");
    let asked = lms.requests("12345");
    let (status, replayed, second) = send_keyed().await;
    assert_eq!((status, replayed), (StatusCode::CREATED, true), "{second}");
    assert_eq!(first, second);
    assert_eq!(lms.requests("12345"), asked, "the LMS is not asked again");
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn schedule_sync_rereads_the_lms_replaces_pending_calls_and_is_idempotent(pool: PgPool) {
    let (f, lms) = connected(pool).await;
    let (status, _) = post(&f.app, &f.key_a, "/customers", &minimal_sync()).await;
    assert_eq!(status, StatusCode::CREATED);
    let first = post(
        &f.app,
        &f.key_a,
        "/customers/12345/schedule-sync",
        &json!({}),
    )
    .await
    .1;
    let tasks = first["tasksCreated"].as_u64().unwrap();

    // The LMS now has a new number: the re-sync takes it and plans again.
    let mut changed = lms_customer();
    changed["phoneNumber"] = json!("+14155550199");
    lms.put("12345", changed, lms_loans());
    let (status, second) = post(
        &f.app,
        &f.key_a,
        "/customers/12345/schedule-sync",
        &json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert_eq!(
        second["existingTasksRemoved"].as_u64(),
        Some(tasks),
        "{second}"
    );
    assert_eq!(
        second["tasksCreated"].as_u64(),
        Some(tasks),
        "same plan: {second}"
    );
    assert_eq!(second["inFlight"], json!([]));
    let (_, shown) = get(&f.app, &f.key_a, "/customers/12345").await;
    assert_eq!(shown["phoneNumber"], "+14155550199");

    let times = |calls: Vec<Value>| -> Vec<String> {
        let mut t: Vec<String> = calls
            .iter()
            .filter(|c| c["status"] == "scheduled")
            .map(|c| c["scheduledAt"].as_str().unwrap().to_owned())
            .collect();
        t.sort();
        t
    };
    let before = times(scheduled_calls(&f.app, &f.key_a, "12345").await);
    let asked = lms.requests("12345");
    let (status, third) = post(
        &f.app,
        &f.key_a,
        "/customers/12345/schedule-sync?sync=false",
        &json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{third}");
    assert_eq!(third["syncedFromLms"], false);
    assert_eq!(
        lms.requests("12345"),
        asked,
        "sync=false does not ask the LMS"
    );
    let after = times(scheduled_calls(&f.app, &f.key_a, "12345").await);
    assert_eq!(before, after, "two syncs in a row leave the same plan");

    let (status, _) = post(
        &f.app,
        &f.key_b,
        "/customers/12345/schedule-sync",
        &json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "another company's customer");
    let (status, e) = post(
        &f.app,
        &f.key_a,
        "/customers/12345/schedule-sync?x=1",
        &json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{e}");
}

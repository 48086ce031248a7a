//! The scheduled-call and call routes through `router(state)` + `oneshot`, against a fresh
//! Postgres database per test. The clock is fixed at 2026-05-01 15:00 UTC (a Friday, 11:00
//! in New York).

mod support;

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use outdial_domain::{AttemptNo, AttemptOutcome, CallId, CallStatus, Flag};
use outdial_store::NewAttempt;
use serde_json::{Value, json};
use sqlx::PgPool;

use support::*;

/// A New York collections customer of company A with the given id.
async fn customer(f: &Fixture, id: &str) {
    let mut body = minimal(id);
    body["taskType"] = json!("collections");
    body["loanId"] = json!("loan-1");
    let (status, created) = post(&f.app, &f.key_a, "/customers", &body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
}

async fn schedule(f: &Fixture, customer: &str, body: &Value) -> (StatusCode, Value) {
    post(
        &f.app,
        &f.key_a,
        &format!("/scheduled-calls/{customer}"),
        body,
    )
    .await
}

fn ids(calls: &Value) -> Vec<String> {
    calls
        .as_array()
        .expect("an array of calls")
        .iter()
        .map(|c| c["id"].as_str().expect("an id").to_owned())
        .collect()
}

/// The newest entry of a scheduled call's decision trail.
fn last_entry(call: &Value) -> Value {
    call["decisionTrail"]
        .as_array()
        .and_then(|t| t.last())
        .cloned()
        .expect("a non-empty decision trail")
}

fn instant(v: &Value) -> DateTime<Utc> {
    v.as_str().expect("an instant").parse().expect("RFC 3339")
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn collections_schedule_returns_lawful_calls_with_utc_and_local_times(pool: PgPool) {
    let f = fixture(pool).await;
    customer(&f, "c1").await;
    let (status, calls) = schedule(&f, "c1", &json!({"scheduleType": "collections"})).await;
    assert_eq!(status, StatusCode::CREATED, "{calls}");
    let list = calls.as_array().expect("array");
    assert!(!list.is_empty(), "{calls}");
    // Reg F: at most 7 attempts in any 7 days, so 21 days give at most 21 and the first
    // week at most 7.
    let week = f.now + chrono::Duration::days(7);
    let first_week = list
        .iter()
        .filter(|c| instant(&c["scheduledAt"]) < week)
        .count();
    assert!(first_week <= 7, "{first_week} calls in the first week");
    for call in list {
        assert_eq!(call["status"], "scheduled");
        assert_eq!(call["customerId"], "c1");
        assert_eq!(call["scheduleType"], "collections");
        assert_eq!(call["timezone"], "America/New_York");
        let at = instant(&call["scheduledAt"]);
        assert!(at >= f.now);
        let local: DateTime<chrono::FixedOffset> =
            DateTime::parse_from_rfc3339(call["localTime"].as_str().unwrap()).unwrap();
        assert_eq!(local, at, "localTime is the same instant");
        let hour = chrono::Timelike::hour(&local);
        assert!((8..21).contains(&hour), "called at local {local}");
        assert!(call["reasons"].is_array());
    }

    let (status, page) = get(
        &f.app,
        &f.key_a,
        "/scheduled-calls?customerId=c1&limit=1000",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ids(&page["data"]), ids(&calls));

    // Every call's trail starts with its plan: the due time and the rules that moved it
    // (the first week's cap moves some of these calls).
    let moved = list
        .iter()
        .filter(|c| !c["reasons"].as_array().unwrap().is_empty())
        .count();
    assert!(moved > 0, "the 7-in-7 cap moves some calls: {calls}");
    for call in list {
        let id = call["id"].as_str().unwrap();
        let (status, one) = get(&f.app, &f.key_a, &format!("/scheduled-calls/{id}")).await;
        assert_eq!(status, StatusCode::OK, "{one}");
        let trail = one["decisionTrail"].as_array().expect("a trail");
        assert_eq!(trail.len(), 1, "{one}");
        assert_eq!(trail[0]["event"], "planned");
        assert_eq!(trail[0]["status"], "scheduled");
        assert_eq!(instant(&trail[0]["dueAt"]), instant(&call["scheduledAt"]));
        assert_eq!(instant(&trail[0]["at"]), instant(&call["createdAt"]));
        assert_eq!(
            trail[0].get("blocks").cloned().unwrap_or(json!([])),
            call["reasons"],
            "{one}"
        );
    }
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn dry_run_returns_the_plan_and_stores_nothing(pool: PgPool) {
    let f = fixture(pool).await;
    customer(&f, "c1").await;
    let (status, calls) = post(
        &f.app,
        &f.key_a,
        "/scheduled-calls/c1?dryRun=true",
        &json!({"scheduleType": "verification"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{calls}");
    let list = calls.as_array().unwrap();
    assert!(!list.is_empty());
    assert!(list.iter().all(|c| c["id"].is_null()));
    let (_, page) = get(&f.app, &f.key_a, "/scheduled-calls?customerId=c1").await;
    assert_eq!(page["data"], json!([]));
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn do_not_call_customer_gets_409_naming_the_reason(pool: PgPool) {
    let f = fixture(pool).await;
    let mut body = minimal("dnc");
    body["doNotCall"] = json!(true);
    post(&f.app, &f.key_a, "/customers", &body).await;
    let (status, error) = schedule(&f, "dnc", &json!({"scheduleType": "collections"})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{error}");
    assert_envelope(&error, "do_not_call");
    assert_eq!(field_names(&error), ["doNotCall"]);
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn a_new_schedule_replaces_the_old_and_cancels_its_pending_calls(pool: PgPool) {
    let f = fixture(pool).await;
    customer(&f, "c1").await;
    let (_, old) = schedule(&f, "c1", &json!({"scheduleType": "collections"})).await;
    let (status, new) = schedule(&f, "c1", &json!({"scheduleType": "verification"})).await;
    assert_eq!(status, StatusCode::CREATED, "{new}");
    for id in ids(&old) {
        let (_, call) = get(&f.app, &f.key_a, &format!("/scheduled-calls/{id}")).await;
        assert_eq!(call["status"], "cancelled", "{call}");
        let last = last_entry(&call);
        assert_eq!(last["event"], "cancelled");
        assert_eq!(last["reason"], "schedule_replaced");
    }
    let (_, pending) = get(
        &f.app,
        &f.key_a,
        "/scheduled-calls?customerId=c1&status=scheduled&limit=1000",
    )
    .await;
    assert_eq!(ids(&pending["data"]), ids(&new));
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn schedule_body_errors_name_the_field(pool: PgPool) {
    let f = fixture(pool).await;
    customer(&f, "c1").await;
    for (body, field) in [
        (json!({}), "scheduleType"),
        (json!({"scheduleType": "weekly"}), "scheduleType"),
        (json!({"scheduleType": 3}), "scheduleType"),
        (json!({"scheduleType": "custom"}), "cadence"),
        (
            json!({"scheduleType": "collections", "cadence": {"horizon": "1d"}}),
            "cadence",
        ),
        (
            json!({"scheduleType": "custom", "cadence": {"horizon": "1d"}}),
            "cadence",
        ),
        (json!({"scheduleType": "collections", "when": 1}), "when"),
        (
            json!({"scheduleType": "collections", "startAt": "2020-01-01T00:00:00Z"}),
            "startAt",
        ),
    ] {
        let (status, error) = schedule(&f, "c1", &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {error}");
        assert_eq!(field_names(&error), [field], "{body}: {error}");
    }
    let (status, _) = schedule(&f, "nobody", &json!({"scheduleType": "collections"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, error) = post(
        &f.app,
        &f.key_a,
        "/scheduled-calls/c1?dryRun=maybe",
        &json!({"scheduleType": "collections"}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(field_names(&error), ["dryRun"]);
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn custom_local_times_are_moved_into_the_window_with_their_reasons(pool: PgPool) {
    let f = fixture(pool).await;
    customer(&f, "c1").await;
    let cadence = json!({
        "localTimes": ["2026-05-04T07:00:00", "2026-05-05T12:00:00"],
        "horizon": "7d",
        "maxAttempts": 5,
        "retry": {"noAnswer": "4h", "busy": "30m", "voicemail": "1d"}
    });
    let (status, calls) = schedule(
        &f,
        "c1",
        &json!({"scheduleType": "custom", "cadence": cadence}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{calls}");
    let list = calls.as_array().unwrap();
    assert_eq!(list.len(), 2, "{calls}");
    // 07:00 is before the 08:00 federal window: moved to 08:00 with the rule named.
    assert_eq!(list[0]["localTime"], "2026-05-04T08:00:00-04:00");
    assert!(
        !list[0]["reasons"].as_array().unwrap().is_empty(),
        "{calls}"
    );
    assert_eq!(list[1]["localTime"], "2026-05-05T12:00:00-04:00");
    assert_eq!(list[1]["reasons"], json!([]));
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn cancel_one_then_again_is_409_and_other_company_gets_404(pool: PgPool) {
    let f = fixture(pool).await;
    customer(&f, "c1").await;
    let (_, calls) = schedule(&f, "c1", &json!({"scheduleType": "collections"})).await;
    let id = ids(&calls)[0].clone();

    for (method, uri, body) in [
        ("GET", format!("/scheduled-calls/{id}"), None),
        (
            "POST",
            format!("/scheduled-calls/{id}/cancel"),
            Some(json!({})),
        ),
        (
            "POST",
            format!("/scheduled-calls/{id}/reschedule"),
            Some(json!({"scheduledAt": "2026-05-05T16:00:00Z"})),
        ),
        (
            "POST",
            "/customers/c1/cancel-communications".to_owned(),
            Some(json!({})),
        ),
        (
            "POST",
            "/scheduled-calls/c1".to_owned(),
            Some(json!({"scheduleType": "collections"})),
        ),
    ] {
        let bytes = body.map(|b| b.to_string().into_bytes());
        let (status, error) = send(&f.app, method, &uri, Some(&f.key_b), bytes).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {uri}: {error}");
    }
    let (_, page) = get(&f.app, &f.key_b, "/scheduled-calls").await;
    assert_eq!(page["data"], json!([]), "company B sees none of A's calls");

    let (status, cancelled) = post(
        &f.app,
        &f.key_a,
        &format!("/scheduled-calls/{id}/cancel"),
        &json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");
    let (status, again) = post(
        &f.app,
        &f.key_a,
        &format!("/scheduled-calls/{id}/cancel"),
        &json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{again}");
    assert_envelope(&again, "not_pending");
    let (status, _) = get(&f.app, &f.key_a, "/scheduled-calls/not-a-uuid").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// Marks a call as claimed by a worker, as the worker's conditional update will.
async fn claim(f: &Fixture, id: &str) {
    sqlx::query("UPDATE scheduled_calls SET status = 'dialing' WHERE id = $1::uuid")
        .bind(id)
        .execute(f.store.pool())
        .await
        .expect("claim");
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn cancel_communications_cancels_pending_and_reports_in_flight(pool: PgPool) {
    let f = fixture(pool).await;
    customer(&f, "c1").await;
    let (_, calls) = schedule(&f, "c1", &json!({"scheduleType": "collections"})).await;
    let all = ids(&calls);
    claim(&f, &all[0]).await;
    let (status, result) = post(
        &f.app,
        &f.key_a,
        "/customers/c1/cancel-communications",
        &json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{result}");
    assert_eq!(result["cancelled"], all.len() - 1);
    let mut cancelled: Vec<String> = result["cancelledIds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    cancelled.sort();
    let mut expected = all[1..].to_vec();
    expected.sort();
    assert_eq!(cancelled, expected);
    assert_eq!(
        result["inFlight"],
        json!([{"id": all[0], "status": "dialing"}])
    );
    let (_, pending) = get(
        &f.app,
        &f.key_a,
        "/scheduled-calls?customerId=c1&status=scheduled",
    )
    .await;
    assert_eq!(pending["data"], json!([]));
    // The claimed call cannot be cancelled either: it is in flight.
    let (status, error) = post(
        &f.app,
        &f.key_a,
        &format!("/scheduled-calls/{}/cancel", all[0]),
        &json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("in flight")
    );
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn patching_do_not_call_cancels_every_pending_call(pool: PgPool) {
    let f = fixture(pool).await;
    customer(&f, "c1").await;
    let (_, calls) = schedule(&f, "c1", &json!({"scheduleType": "collections"})).await;
    let (status, _) = patch(
        &f.app,
        &f.key_a,
        "/customers/c1",
        &json!({"doNotCall": true}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    for id in ids(&calls) {
        let (_, call) = get(&f.app, &f.key_a, &format!("/scheduled-calls/{id}")).await;
        assert_eq!(call["status"], "cancelled");
        let last = last_entry(&call);
        assert_eq!(last["reason"], "do_not_call");
    }
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn reschedule_is_checked_against_the_policy(pool: PgPool) {
    let f = fixture(pool).await;
    customer(&f, "c1").await;
    let (_, calls) = schedule(&f, "c1", &json!({"scheduleType": "collections"})).await;
    let id = ids(&calls)[0].clone();
    let uri = format!("/scheduled-calls/{id}/reschedule");

    // 02:00 UTC on Tuesday 5 May = 22:00 Monday in New York: after the federal window.
    let (status, error) = post(
        &f.app,
        &f.key_a,
        &uri,
        &json!({"scheduledAt": "2026-05-05T02:00:00Z"}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
    assert_envelope(&error, "not_lawful");
    assert_eq!(field_names(&error), ["scheduledAt"]);
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("next lawful instant")
    );

    let (status, error) = post(
        &f.app,
        &f.key_a,
        &uri,
        &json!({"scheduledAt": "2026-04-01T15:00:00Z"}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    let (status, error) = post(&f.app, &f.key_a, &uri, &json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(field_names(&error), ["scheduledAt"]);

    // 14:30 New York on Wednesday 6 May.
    let (status, moved) = post(
        &f.app,
        &f.key_a,
        &uri,
        &json!({"scheduledAt": "2026-05-06T18:30:00Z"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{moved}");
    assert_eq!(moved["scheduledAt"], "2026-05-06T18:30:00Z");
    assert_eq!(moved["localTime"], "2026-05-06T14:30:00-04:00");
    let last = last_entry(&moved);
    assert_eq!(last["event"], "rescheduled");
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn calls_serve_results_and_flags_filter_scheduled_calls(pool: PgPool) {
    let f = fixture(pool).await;
    customer(&f, "c1").await;
    let (_, calls) = schedule(&f, "c1", &json!({"scheduleType": "collections"})).await;
    let scheduled: CallId = ids(&calls)[0].parse().unwrap();
    let company = f.store.authenticate(&f.key_a).await.unwrap().unwrap().id;
    let call = f
        .store
        .record_attempt(
            company,
            &NewAttempt {
                scheduled_call_id: scheduled,
                attempt: AttemptNo::FIRST,
                status: CallStatus::Completed,
                number: "+12125550123",
                loan_id: Some("loan-1"),
                outcome: Some(AttemptOutcome::Completed),
                provider_ref: Some("sim-1"),
                transcript: Some("Agent: Hello.\nCustomer: Hi."),
                recording_url: Some("https://recordings.example/1.mp3"),
                flags: &[Flag::Connect, Flag::Rpc],
                started_at: f.now,
                ended_at: Some(f.now + chrono::Duration::minutes(3)),
            },
        )
        .await
        .expect("record an attempt");

    let (status, got) = get(&f.app, &f.key_a, &format!("/calls/{call}")).await;
    assert_eq!(status, StatusCode::OK, "{got}");
    assert_eq!(got["customerId"], "c1");
    assert_eq!(got["scheduledCallId"], scheduled.to_string());
    assert_eq!(got["transcript"], "Agent: Hello.\nCustomer: Hi.");
    assert_eq!(got["recording_url"], "https://recordings.example/1.mp3");
    assert_eq!(got["timestamp"], "2026-05-01T15:00:00Z");
    assert_eq!(got["postProcessingFlags"], json!(["CONNECT", "RPC"]));
    assert_eq!(got["status"], "completed");

    let (status, page) = get(&f.app, &f.key_a, "/calls?customerId=c1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["data"], json!([got]));
    let (status, error) = get(&f.app, &f.key_a, "/calls").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(field_names(&error), ["customerId"]);
    let (status, _) = get(&f.app, &f.key_b, &format!("/calls/{call}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, page) = get(&f.app, &f.key_b, "/calls?customerId=c1").await;
    assert_eq!(page["data"], json!([]));

    let (_, flagged) = get(&f.app, &f.key_a, "/scheduled-calls?flag=RPC").await;
    assert_eq!(ids(&flagged["data"]), [scheduled.to_string()]);
    let (_, none) = get(&f.app, &f.key_a, "/scheduled-calls?flag=DNC").await;
    assert_eq!(none["data"], json!([]));
    let (status, error) = get(&f.app, &f.key_a, "/scheduled-calls?status=ringing").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(field_names(&error), ["status"]);
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn a_conversation_starts_the_quiet_period_for_the_next_schedule(pool: PgPool) {
    let f = fixture(pool).await;
    customer(&f, "c1").await;
    let (_, calls) = schedule(&f, "c1", &json!({"scheduleType": "collections"})).await;
    let scheduled: CallId = ids(&calls)[0].parse().unwrap();
    let company = f.store.authenticate(&f.key_a).await.unwrap().unwrap().id;
    f.store
        .record_attempt(
            company,
            &NewAttempt {
                scheduled_call_id: scheduled,
                attempt: AttemptNo::FIRST,
                status: CallStatus::Completed,
                number: "+12125550123",
                loan_id: Some("loan-1"),
                outcome: Some(AttemptOutcome::Completed),
                provider_ref: None,
                transcript: None,
                recording_url: None,
                flags: &[Flag::Rpc],
                started_at: f.now - chrono::Duration::hours(1),
                ended_at: Some(f.now),
            },
        )
        .await
        .unwrap();
    let (status, calls) = schedule(&f, "c1", &json!({"scheduleType": "collections"})).await;
    assert_eq!(status, StatusCode::CREATED, "{calls}");
    let quiet_until = f.now + chrono::Duration::days(6);
    for call in calls.as_array().unwrap() {
        assert!(instant(&call["scheduledAt"]) > quiet_until, "{call}");
    }
}

/// Sends a POST with an `Idempotency-Key`; returns status, replay header and JSON body.
async fn keyed(f: &Fixture, key: &str, uri: &str, body: &Value) -> (StatusCode, bool, Value) {
    keyed_as(f, &f.key_a, key, uri, body).await
}

async fn keyed_as(
    f: &Fixture,
    api_key: &str,
    key: &str,
    uri: &str,
    body: &Value,
) -> (StatusCode, bool, Value) {
    let (status, headers, body) = keyed_response(f, api_key, key, uri, body).await;
    (status, headers.contains_key("idempotent-replayed"), body)
}

async fn keyed_response(
    f: &Fixture,
    api_key: &str,
    key: &str,
    uri: &str,
    body: &Value,
) -> (StatusCode, axum::http::HeaderMap, Value) {
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let req = Request::builder()
        .method("POST")
        .uri(uri)
        .header("X-API-Key", api_key)
        .header("Idempotency-Key", key)
        .body(Body::from(body.to_string()))
        .expect("request");
    let response = f.app.clone().oneshot(req).await.expect("router answers");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (
        status,
        headers,
        serde_json::from_slice(&bytes).expect("JSON body"),
    )
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn idempotency_key_replays_the_same_request_and_refuses_another(pool: PgPool) {
    let f = fixture(pool).await;
    customer(&f, "c1").await;
    let body = json!({"scheduleType": "collections"});
    let (status, replayed, first) = keyed(&f, "k-1", "/scheduled-calls/c1", &body).await;
    assert_eq!((status, replayed), (StatusCode::CREATED, false), "{first}");
    let (status, replayed, again) = keyed(&f, "k-1", "/scheduled-calls/c1", &body).await;
    assert_eq!((status, replayed), (StatusCode::CREATED, true));
    assert_eq!(again, first, "the stored response, not a second schedule");
    let (_, page) = get(
        &f.app,
        &f.key_a,
        "/scheduled-calls?customerId=c1&limit=1000",
    )
    .await;
    assert_eq!(
        ids(&page["data"]),
        ids(&first),
        "one schedule, nothing cancelled"
    );

    // The replay repeats outdial's own headers: the same schedule id, the same drops.
    let (_, first_headers, _) =
        keyed_response(&f, &f.key_a, "k-1", "/scheduled-calls/c1", &body).await;
    for name in ["outdial-schedule-id", "outdial-dropped-slots"] {
        assert!(
            first_headers.contains_key(name),
            "{name} in {first_headers:?}"
        );
    }
    let (status, created_headers, _) =
        keyed_response(&f, &f.key_a, "k-4", "/scheduled-calls/c1", &body).await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, replay_headers, _) =
        keyed_response(&f, &f.key_a, "k-4", "/scheduled-calls/c1", &body).await;
    assert!(replay_headers.contains_key("idempotent-replayed"));
    for name in ["outdial-schedule-id", "outdial-dropped-slots"] {
        assert_eq!(
            replay_headers.get(name),
            created_headers.get(name),
            "{name}"
        );
    }

    let other = json!({"scheduleType": "verification"});
    let (status, _, error) = keyed(&f, "k-1", "/scheduled-calls/c1", &other).await;
    assert_eq!(status, StatusCode::CONFLICT, "{error}");
    assert_envelope(&error, "idempotency_key_reused");
    assert_eq!(field_names(&error), ["Idempotency-Key"]);

    // POST /customers: a repeat is the stored 201, not a 409 duplicate.
    let customer = minimal("c2");
    let (status, _, created) = keyed(&f, "k-2", "/customers", &customer).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, replayed, again) = keyed(&f, "k-2", "/customers", &customer).await;
    assert_eq!((status, replayed), (StatusCode::CREATED, true));
    assert_eq!(again, created);
    // A 4xx is stored too.
    let (status, _, _) = keyed(&f, "k-3", "/customers", &json!({"id": "x"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, replayed, _) = keyed(&f, "k-3", "/customers", &json!({"id": "x"})).await;
    assert_eq!((status, replayed), (StatusCode::BAD_REQUEST, true));
    // Keys are per company: company B's k-2 is its own.
    let (status, replayed, error) = keyed_as(&f, &f.key_b, "k-2", "/customers", &customer).await;
    assert_eq!((status, replayed), (StatusCode::CREATED, false), "{error}");
    let (status, _, error) = keyed(&f, "bad key with spaces", "/customers", &customer).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(field_names(&error), ["Idempotency-Key"]);
}

//! Shared helpers of the API tests: the router on a fresh database with two companies, and
//! request helpers returning the status and the JSON body.
#![allow(dead_code)]

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use chrono::{DateTime, TimeZone, Utc};
use http_body_util::BodyExt;
use outdial_api::admin::ops::Ops;
use outdial_api::{AppState, router};
use outdial_domain::ManualClock;
use outdial_domain::policy::Ruleset;
use outdial_queue::{Queue, QueueConfig};
use outdial_store::Store;
use serde_json::{Value, json};
use sqlx::PgPool;
use tower::ServiceExt;

/// The app and one API key for each of two companies.
pub struct Fixture {
    pub app: Router,
    pub key_a: String,
    pub key_b: String,
    pub store: Store,
    pub now: DateTime<Utc>,
}

pub async fn fixture(pool: PgPool) -> Fixture {
    let now = Utc.with_ymd_and_hms(2026, 5, 1, 15, 0, 0).unwrap();
    let store = Store::new(pool);
    let (_, key_a) = store
        .create_company("acme", now)
        .await
        .expect("create company a");
    let (_, key_b) = store
        .create_company("globex", now)
        .await
        .expect("create company b");
    let app = router(AppState::new(
        store.clone(),
        Arc::new(ManualClock::new(now)),
        Arc::new(Ruleset::bundled().expect("bundled rules")),
        None,
    ));
    Fixture {
        app,
        store,
        now,
        key_a: key_a.expose().to_owned(),
        key_b: key_b.expose().to_owned(),
    }
}

/// Sends a request and returns the status and the JSON body (`Null` when empty).
pub async fn send(
    app: &Router,
    method: &str,
    uri: &str,
    key: Option<&str>,
    body: Option<Vec<u8>>,
) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(key) = key {
        req = req.header("X-API-Key", key);
    }
    let req = match body {
        Some(bytes) => req
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(bytes)),
        None => req.body(Body::empty()),
    }
    .expect("request");
    let response = app.clone().oneshot(req).await.expect("router answers");
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let json = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("{status}: body is not JSON ({e}): {bytes:?}"))
    };
    (status, json)
}

pub async fn post(app: &Router, key: &str, uri: &str, body: &Value) -> (StatusCode, Value) {
    send(
        app,
        "POST",
        uri,
        Some(key),
        Some(body.to_string().into_bytes()),
    )
    .await
}

pub async fn patch(app: &Router, key: &str, uri: &str, body: &Value) -> (StatusCode, Value) {
    send(
        app,
        "PATCH",
        uri,
        Some(key),
        Some(body.to_string().into_bytes()),
    )
    .await
}

pub async fn get(app: &Router, key: &str, uri: &str) -> (StatusCode, Value) {
    send(app, "GET", uri, Some(key), None).await
}

/// Every scheduled call of `customer` (one page of up to 1,000), asserting a 200.
pub async fn scheduled_calls(app: &Router, key: &str, customer: &str) -> Vec<Value> {
    let (status, page) = get(
        app,
        key,
        &format!("/scheduled-calls?customerId={customer}&limit=1000"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["data"].as_array().expect("data").clone()
}

/// The seed's example request with real values in place of `<string>`.
pub fn seed_body() -> Value {
    serde_json::from_str(include_str!(
        "../../../../tests/fixtures/seed-customer.json"
    ))
    .expect("the seed fixture is JSON")
}

/// A minimal valid customer with the given id.
pub fn minimal(id: &str) -> Value {
    json!({
        "id": id,
        "taskType": "verification",
        "firstName": "Sam",
        "lastName": "Lee",
        "timezone": "America/New_York",
        "phoneNumber": "+12125550123",
        "streetAddress1": "1 Broadway",
        "city": "New York",
        "state": "NY",
        "zipCode": "10004"
    })
}

pub fn assert_envelope(body: &Value, code: &str) {
    let error = &body["error"];
    assert_eq!(error["code"], code, "{body}");
    assert!(error["message"].is_string(), "{body}");
    assert!(error["fields"].is_array(), "{body}");
}

pub fn field_names(body: &Value) -> Vec<String> {
    body["error"]["fields"]
        .as_array()
        .expect("fields is an array")
        .iter()
        .map(|f| f["field"].as_str().expect("field is a string").to_owned())
        .collect()
}

/// The admin token of [`admin`]'s app.
pub const TOKEN: &str = "admin-test-token-0123456789";

pub fn redis_url() -> String {
    std::env::var("OUTDIAL_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// The fixture's app with the admin routes and a queue of the test's own namespace.
pub struct Admin {
    pub f: Fixture,
    pub app: Router,
    pub queue: Queue,
}

impl Drop for Admin {
    fn drop(&mut self) {
        let queue = self.queue.clone();
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(async {
                    let _ = queue.delete_namespace().await;
                });
            }
        })
        .join();
    }
}

pub async fn admin(pool: PgPool, redis: &str) -> Admin {
    let db: String = sqlx::query_scalar("SELECT current_database()::text")
        .fetch_one(&pool)
        .await
        .expect("database name");
    let f = fixture(pool).await;
    // The database's name is unique per test; its tail keeps the namespace short.
    let tail = &db[db.len().saturating_sub(24)..];
    let queue =
        Queue::open(redis, &format!("t:admin:{tail}"), QueueConfig::default()).expect("queue");
    let clock = Arc::new(ManualClock::new(f.now));
    let ops = Ops {
        store: f.store.clone(),
        queue: queue.clone(),
        limits: None,
        clock: clock.clone(),
    };
    let app = router(
        AppState::new(
            f.store.clone(),
            clock,
            Arc::new(Ruleset::bundled().expect("rules")),
            Some(queue.clone()),
        )
        .with_admin(TOKEN, ops),
    );
    Admin { f, app, queue }
}

/// Company A's customer `c1` with a collections schedule; returns the calls' ids.
pub async fn scheduled(a: &Admin) -> Vec<String> {
    let mut body = minimal("c1");
    body["taskType"] = json!("collections");
    let (status, created) = post(&a.app, &a.f.key_a, "/customers", &body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let (status, calls) = post(
        &a.app,
        &a.f.key_a,
        "/scheduled-calls/c1",
        &json!({ "scheduleType": "collections" }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{calls}");
    calls
        .as_array()
        .expect("calls")
        .iter()
        .map(|c| c["id"].as_str().expect("id").to_owned())
        .collect()
}

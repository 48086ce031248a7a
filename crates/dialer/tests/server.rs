//! The simulator server's request handling through `router` + `oneshot`: auth, idempotency
//! key rules, body validation, replay headers.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use outdial_dialer::server::router;
use outdial_dialer::{SimConfig, Simulator};
use outdial_domain::SystemClock;
use serde_json::{Value, json};
use tower::ServiceExt;

const TOKEN: &str = "t0ken";

fn app() -> axum::Router {
    router(
        Simulator::new(SimConfig::new(1).instant(), Arc::new(SystemClock)),
        TOKEN,
    )
}

fn body() -> Value {
    json!({
        "to": "+14155550123",
        "from": "+12125550100",
        "company": "acme",
        "context": {"customerId": "c-1", "taskType": "collections"}
    })
}

async fn send(
    app: &axum::Router,
    request: Request<Body>,
) -> (StatusCode, Vec<(String, String)>, Value) {
    let response = app.clone().oneshot(request).await.expect("an answer");
    let status = response.status();
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("a body")
        .to_bytes();
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, headers, json)
}

fn post(key: Option<&str>, token: &str, body: &Value) -> Request<Body> {
    let mut builder = Request::post("/calls")
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {token}"));
    if let Some(key) = key {
        builder = builder.header("idempotency-key", key);
    }
    builder
        .body(Body::from(body.to_string()))
        .expect("a request")
}

#[tokio::test]
async fn a_call_needs_the_bearer_token() {
    let app = app();
    let (status, _, json) = send(&app, post(Some("k:1"), "wrong", &body())).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(json["error"]["code"], "unauthorized");
    let lookup = Request::get("/calls/by-key/k:1")
        .body(Body::empty())
        .expect("a request");
    assert_eq!(send(&app, lookup).await.0, StatusCode::UNAUTHORIZED);
    let stats = Request::get("/stats")
        .body(Body::empty())
        .expect("a request");
    assert_eq!(send(&app, stats).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_key_comes_from_the_header_or_the_body_and_they_must_agree() {
    let app = app();
    let (status, _, json) = send(&app, post(None, TOKEN, &body())).await;
    assert_eq!(
        (status, json["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("missing_idempotency_key"))
    );

    let mut with_key = body();
    with_key["idempotencyKey"] = json!("from-body:1");
    let (status, _, json) = send(&app, post(None, TOKEN, &with_key)).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(json["key"], "from-body:1");

    let (status, _, json) = send(&app, post(Some("other:1"), TOKEN, &with_key)).await;
    assert_eq!(
        (status, json["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("idempotency_key_mismatch"))
    );

    let (status, _, json) = send(&app, post(Some("bad key"), TOKEN, &body())).await;
    assert_eq!(
        (status, json["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_idempotency_key"))
    );
}

#[tokio::test]
async fn a_repeat_answers_200_with_the_replay_header_and_lookup_finds_the_call() {
    let app = app();
    let (first, _, call) = send(&app, post(Some("k:2"), TOKEN, &body())).await;
    assert_eq!(first, StatusCode::CREATED);
    let (again, headers, replay) = send(&app, post(Some("k:2"), TOKEN, &body())).await;
    assert_eq!(again, StatusCode::OK);
    assert!(headers.contains(&("idempotent-replayed".to_owned(), "true".to_owned())));
    assert_eq!(replay, call);
    let auth = format!("Bearer {TOKEN}");
    let lookup = Request::get("/calls/by-key/k:2")
        .header("authorization", &auth)
        .body(Body::empty())
        .expect("a request");
    assert_eq!(send(&app, lookup).await.2, call);
    let missing = Request::get("/calls/by-key/k:3")
        .header("authorization", &auth)
        .body(Body::empty())
        .expect("a request");
    assert_eq!(send(&app, missing).await.0, StatusCode::NOT_FOUND);
    let stats = Request::get("/stats")
        .header("authorization", &auth)
        .body(Body::empty())
        .expect("a request");
    assert_eq!(
        send(&app, stats).await.2["keys"]["k:2"],
        json!({"placeRequests": 2, "created": true})
    );
}

#[tokio::test]
async fn invalid_numbers_or_bodies_are_422_and_never_echo_the_number() {
    let app = app();
    let mut bad = body();
    bad["to"] = json!("415-555-0123");
    let (status, _, json) = send(&app, post(Some("k:4"), TOKEN, &bad)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(json["error"]["message"], "to is invalid");
    assert!(!json.to_string().contains("555-0123"));
    let not_json = Request::post("/calls")
        .header("authorization", format!("Bearer {TOKEN}"))
        .header("idempotency-key", "k:5")
        .header("content-type", "application/json")
        .body(Body::from("{"))
        .expect("a request");
    assert_eq!(
        send(&app, not_json).await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
}

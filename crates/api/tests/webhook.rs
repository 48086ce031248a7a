//! The company's webhook routes.

mod support;

use axum::http::StatusCode;
use serde_json::json;
use sqlx::PgPool;

use support::*;

async fn put(f: &Fixture, key: &str, body: &serde_json::Value) -> (StatusCode, serde_json::Value) {
    send(
        &f.app,
        "PUT",
        "/webhook",
        Some(key),
        Some(body.to_string().into_bytes()),
    )
    .await
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn put_sets_the_url_and_returns_a_new_secret_each_time(pool: PgPool) {
    let f = fixture(pool).await;
    let (status, first) = put(
        &f,
        &f.key_a,
        &json!({"url": "https://hooks.example/outdial"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["url"], "https://hooks.example/outdial");
    let secret = first["secret"].as_str().expect("a secret");
    assert!(secret.starts_with("whsec_"));
    let (_, second) = put(
        &f,
        &f.key_a,
        &json!({"url": "https://hooks.example/outdial"}),
    )
    .await;
    assert_ne!(
        second["secret"], first["secret"],
        "each PUT rotates the secret"
    );
    let stored = f
        .store
        .authenticate(&f.key_a)
        .await
        .expect("auth")
        .expect("company");
    assert_eq!(stored.webhook_secret.as_deref(), second["secret"].as_str());
    let other = f
        .store
        .authenticate(&f.key_b)
        .await
        .expect("auth")
        .expect("company");
    assert_eq!(other.webhook_url, None, "company B is untouched");

    for (body, field) in [
        (json!({}), "url"),
        (json!({"url": "ftp://x"}), "url"),
        (json!({"url": 3}), "url"),
        (json!({"url": "https://x", "secret": "mine"}), "secret"),
    ] {
        let (status, error) = put(&f, &f.key_a, &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(field_names(&error), [field], "{body}: {error}");
    }
    let (status, _) = send(&f.app, "DELETE", "/webhook", Some(&f.key_a), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let stored = f
        .store
        .authenticate(&f.key_a)
        .await
        .expect("auth")
        .expect("company");
    assert_eq!((stored.webhook_url, stored.webhook_secret), (None, None));
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn deliveries_list_and_redrive_are_scoped_to_the_company(pool: PgPool) {
    let f = fixture(pool).await;
    let (status, page) = get(&f.app, &f.key_a, "/webhook/deliveries?status=dead").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["data"], json!([]));
    let (status, error) = get(&f.app, &f.key_a, "/webhook/deliveries?status=lost").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(field_names(&error), ["status"]);
    let (status, done) = post(&f.app, &f.key_b, "/webhook/deliveries/redrive", &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done["redriven"], 0);
}

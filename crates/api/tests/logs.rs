//! No personal data in logs: a whole customer and scheduling flow, traced at TRACE level
//! (every span and event, the HTTP layer's and sqlx's included), never prints the
//! customer's name, email, phone number, birthday, SSN digits or street address.

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use serde_json::json;
use sqlx::PgPool;
use tracing_subscriber::fmt::MakeWriter;

use support::*;

/// A writer into a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn a_full_flow_logs_no_personal_data(pool: PgPool) {
    let logs = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(logs.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let f = fixture(pool).await;
    let mut body = seed_body();
    body["doNotCall"] = json!(false);
    let (status, _) = post(&f.app, &f.key_a, "/customers", &body).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, calls) = post(
        &f.app,
        &f.key_a,
        "/scheduled-calls/cust-8841",
        &json!({"scheduleType": "collections"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{calls}");
    let id = calls[0]["id"].as_str().expect("a call id").to_owned();
    post(
        &f.app,
        &f.key_a,
        &format!("/scheduled-calls/{id}/cancel"),
        &json!({}),
    )
    .await;
    patch(
        &f.app,
        &f.key_a,
        "/customers/cust-8841",
        &json!({"doNotCall": true}),
    )
    .await;
    // Failures log too: a bad body, another company, a conflict.
    post(&f.app, &f.key_a, "/customers", &body).await;
    post(
        &f.app,
        &f.key_a,
        "/customers",
        &json!({"id": "x", "phoneNumber": "+15551234567"}),
    )
    .await;
    get(&f.app, &f.key_b, "/customers/cust-8841").await;

    let text = String::from_utf8(logs.0.lock().expect("log buffer").clone()).expect("utf-8");
    assert!(
        text.contains("customer created"),
        "the flow was traced: {text}"
    );
    for pii in [
        "Jane",
        "Doe",
        "jane.doe@example.com",
        "5551234567",
        "1985-06-15",
        "123 Main St",
        "Apt 4B",
    ] {
        assert!(!text.contains(pii), "{pii:?} appears in the logs:\n{text}");
    }
}

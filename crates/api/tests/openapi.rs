//! `/openapi.json` against the router: the document lists exactly the routes the API
//! serves, and every documented operation reaches a handler (never the fallback's "no such
//! route" nor a 405).

mod support;

use std::collections::BTreeSet;

use axum::http::StatusCode;
use serde_json::Value;
use sqlx::PgPool;

use support::*;

/// The operations the API serves, as `METHOD path`.
const EXPECTED: &[&str] = &[
    "GET /calls",
    "GET /calls/{id}",
    "GET /customers",
    "POST /customers",
    "GET /customers/{id}",
    "PATCH /customers/{id}",
    "POST /customers/{id}/cancel-communications",
    "GET /scheduled-calls",
    "GET /scheduled-calls/{id}",
    "POST /scheduled-calls/{id}",
    "POST /scheduled-calls/{id}/cancel",
    "POST /scheduled-calls/{id}/reschedule",
    "PUT /webhook",
    "DELETE /webhook",
    "GET /webhook/deliveries",
    "POST /webhook/deliveries/redrive",
    "POST /customers/{id}/schedule-sync",
    "PUT /lms",
    "GET /lms",
    "DELETE /lms",
    "POST /customers/batch",
    "GET /customers/batch/{jobId}",
    "GET /customers/batch/{jobId}/errors",
];

fn operations(doc: &Value) -> BTreeSet<String> {
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in ["get", "post", "patch", "put", "delete"] {
            if item.get(method).is_some() {
                ops.insert(format!("{} {path}", method.to_uppercase()));
            }
        }
    }
    ops
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn document_is_public_and_lists_exactly_the_served_operations(pool: PgPool) {
    let f = fixture(pool).await;
    let (status, doc) = send(&f.app, "GET", "/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc["openapi"].as_str().expect("version").starts_with("3."));
    assert_eq!(
        doc,
        serde_json::to_value(outdial_api::openapi()).expect("json")
    );
    let expected: BTreeSet<String> = EXPECTED.iter().map(|s| (*s).to_owned()).collect();
    assert_eq!(operations(&doc), expected);
    let about = doc["info"]["description"].as_str().expect("description");
    assert!(
        about.contains("GET {baseUrl}/customers/{id}/loans"),
        "the LMS contract is documented: {about}"
    );

    for op in EXPECTED {
        let (method, path) = op.split_once(' ').expect("METHOD path");
        let uri = path.replace("{id}", "00000000-0000-0000-0000-000000000000");
        let body = (method != "GET" && method != "DELETE").then(|| b"{}".to_vec());
        let (status, body) = send(&f.app, method, &uri, Some(&f.key_a), body).await;
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{op}: {body}");
        assert_ne!(
            body["error"]["message"], "no such route",
            "{op} is documented but not routed"
        );
        // Without a key every documented operation is 401.
        let (status, _) = send(&f.app, method, &uri, None, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{op}");
    }
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn every_operation_documents_the_error_envelope_and_posts_take_idempotency_keys(
    pool: PgPool,
) {
    let f = fixture(pool).await;
    let (_, doc) = send(&f.app, "GET", "/openapi.json", None, None).await;
    assert!(doc["components"]["schemas"]["Error"].is_object());
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("item") {
            for status in ["400", "401", "404", "500"] {
                assert!(
                    op["responses"][status].is_object(),
                    "{method} {path} does not document {status}"
                );
            }
            let takes_key = op["parameters"]
                .as_array()
                .is_some_and(|ps| ps.iter().any(|p| p["name"] == "Idempotency-Key"));
            assert_eq!(takes_key, method == "post", "{method} {path}");
        }
    }
}

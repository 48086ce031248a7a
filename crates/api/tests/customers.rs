//! The customer routes through `router(state)` + `oneshot`, against a fresh Postgres
//! database per test (`DATABASE_URL`, set by `ops/test.sh`).

mod support;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use outdial_api::MAX_BODY_BYTES;
use serde_json::{Value, json};
use sqlx::PgPool;
use tower::ServiceExt;

use support::*;

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn seed_example_is_created_and_round_trips_field_by_field(pool: PgPool) {
    let f = fixture(pool).await;
    let sent = seed_body();
    let (status, created) = post(&f.app, &f.key_a, "/customers", &sent).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");

    let (status, fetched) = get(&f.app, &f.key_a, "/customers/cust-8841").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fetched, created);
    for (field, value) in sent.as_object().unwrap() {
        match field.as_str() {
            // Request-only switches: `test` folds into `isTest`, `sync` is not stored.
            "test" | "sync" => assert!(fetched.get(field).is_none(), "{field}"),
            _ => assert_eq!(&fetched[field], value, "{field}"),
        }
    }
    // externalMetadata is returned as-is, key order included.
    let keys: Vec<&String> = fetched["externalMetadata"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    let sent_keys: Vec<&String> = sent["externalMetadata"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(keys, sent_keys);
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn test_flag_sets_is_test(pool: PgPool) {
    let f = fixture(pool).await;
    let mut body = minimal("t-1");
    body["test"] = json!(true);
    let (status, created) = post(&f.app, &f.key_a, "/customers", &body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["isTest"], true);
    assert_eq!(created["doNotCall"], false);
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn each_missing_required_field_is_400_naming_it(pool: PgPool) {
    let f = fixture(pool).await;
    let required = [
        "id",
        "taskType",
        "firstName",
        "lastName",
        "timezone",
        "phoneNumber",
        "streetAddress1",
        "city",
        "state",
        "zipCode",
    ];
    for field in required {
        let mut body = seed_body();
        body.as_object_mut().unwrap().remove(field);
        let (status, error) = post(&f.app, &f.key_a, "/customers", &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{field}: {error}");
        assert_envelope(&error, "invalid_request");
        assert_eq!(field_names(&error), [field], "{error}");
        assert_eq!(error["error"]["fields"][0]["code"], "required");
    }
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn invalid_formats_are_400_naming_each_field(pool: PgPool) {
    let f = fixture(pool).await;
    let mut body = seed_body();
    body["zipCode"] = json!("9410");
    body["email"] = json!("not-an-email");
    body["timezone"] = json!("Mars/Olympus");
    body["nickname"] = json!("JD");
    let (status, error) = post(&f.app, &f.key_a, "/customers", &body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    let mut names = field_names(&error);
    names.sort();
    assert_eq!(names, ["email", "nickname", "timezone", "zipCode"]);
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn unknown_task_type_is_400_listing_the_valid_ones(pool: PgPool) {
    let f = fixture(pool).await;
    let mut body = seed_body();
    body["taskType"] = json!("sales");
    let (status, error) = post(&f.app, &f.key_a, "/customers", &body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    assert_eq!(field_names(&error), ["taskType"]);
    for message in [
        &error["error"]["message"],
        &error["error"]["fields"][0]["message"],
    ] {
        let message = message.as_str().unwrap();
        assert!(message.contains("collections"), "{message}");
        assert!(message.contains("verification"), "{message}");
    }
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn malformed_json_and_wrong_types_are_400_envelopes(pool: PgPool) {
    let f = fixture(pool).await;
    for raw in [&b"{\"id\": "[..], b"not json", b"[1, 2]", b""] {
        let (status, error) = send(
            &f.app,
            "POST",
            "/customers",
            Some(&f.key_a),
            Some(raw.to_vec()),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
        assert_envelope(&error, "malformed_json");
    }
    let mut body = seed_body();
    body["doNotCall"] = json!("yes");
    let (status, error) = post(&f.app, &f.key_a, "/customers", &body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    assert_envelope(&error, "invalid_request");
    assert_eq!(field_names(&error), ["doNotCall"]);
    assert_eq!(error["error"]["fields"][0]["code"], "invalid_type");
    assert!(
        !error.to_string().contains("yes"),
        "echoes the value: {error}"
    );

    let mut body = seed_body();
    body["loanIds"] = json!(["a"]);
    let (status, error) = post(&f.app, &f.key_a, "/customers", &body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    assert_eq!(field_names(&error), ["loanIds"]);
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn oversize_body_is_413_json(pool: PgPool) {
    let f = fixture(pool).await;
    let mut body = seed_body();
    body["externalMetadata"] = json!({ "blob": "x".repeat(MAX_BODY_BYTES) });
    let bytes = body.to_string().into_bytes();

    // Streamed without a length: the limit trips while reading.
    let (status, error) = send(
        &f.app,
        "POST",
        "/customers",
        Some(&f.key_a),
        Some(bytes.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{error}");
    assert_envelope(&error, "payload_too_large");

    // With a Content-Length: refused before the body is read.
    let req = Request::builder()
        .method("POST")
        .uri("/customers")
        .header("X-API-Key", &f.key_a)
        .header(header::CONTENT_LENGTH, bytes.len())
        .body(Body::from(bytes))
        .unwrap();
    let response = f.app.clone().oneshot(req).await.unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let error: Value = serde_json::from_slice(&bytes).unwrap();
    assert_envelope(&error, "payload_too_large");
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn missing_or_invalid_key_is_401(pool: PgPool) {
    let f = fixture(pool).await;
    let body = Some(minimal("k-1").to_string().into_bytes());
    for key in [None, Some("od_nonsense"), Some("")] {
        for (method, uri, body) in [
            ("POST", "/customers", body.clone()),
            ("GET", "/customers", None),
            ("GET", "/customers/k-1", None),
            ("PATCH", "/customers/k-1", Some(b"{}".to_vec())),
        ] {
            let (status, error) = send(&f.app, method, uri, key, body).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {uri} {key:?}");
            assert_envelope(&error, "unauthorized");
        }
    }
    let (status, _) = get(&f.app, &f.key_a, "/customers/k-1").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "nothing was created");
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn reposting_an_existing_id_is_409(pool: PgPool) {
    let f = fixture(pool).await;
    let (status, _) = post(&f.app, &f.key_a, "/customers", &minimal("dup")).await;
    assert_eq!(status, StatusCode::CREATED);
    let mut again = minimal("dup");
    again["firstName"] = json!("Other");
    let (status, error) = post(&f.app, &f.key_a, "/customers", &again).await;
    assert_eq!(status, StatusCode::CONFLICT, "{error}");
    assert_envelope(&error, "conflict");
    let (_, stored) = get(&f.app, &f.key_a, "/customers/dup").await;
    assert_eq!(stored["firstName"], "Sam", "not overwritten");
    // Another company may use the same id.
    let (status, _) = post(&f.app, &f.key_b, "/customers", &minimal("dup")).await;
    assert_eq!(status, StatusCode::CREATED);
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn other_company_gets_404_on_get_and_patch(pool: PgPool) {
    let f = fixture(pool).await;
    let (status, _) = post(&f.app, &f.key_a, "/customers", &minimal("a-1")).await;
    assert_eq!(status, StatusCode::CREATED);

    let (status, error) = get(&f.app, &f.key_b, "/customers/a-1").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_envelope(&error, "not_found");
    let (status, error) = patch(
        &f.app,
        &f.key_b,
        "/customers/a-1",
        &json!({"doNotCall": true}),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_envelope(&error, "not_found");
    let (_, list) = get(&f.app, &f.key_b, "/customers").await;
    assert_eq!(list["data"], json!([]));

    let (_, stored) = get(&f.app, &f.key_a, "/customers/a-1").await;
    assert_eq!(
        stored["doNotCall"], false,
        "B's patch left A's customer alone"
    );
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn patch_do_not_call_persists(pool: PgPool) {
    let f = fixture(pool).await;
    post(&f.app, &f.key_a, "/customers", &seed_body()).await;
    let (status, _) = patch(
        &f.app,
        &f.key_a,
        "/customers/cust-8841",
        &json!({"doNotCall": false}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, updated) = patch(
        &f.app,
        &f.key_a,
        "/customers/cust-8841",
        &json!({"doNotCall": true}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["doNotCall"], true);
    let (_, fetched) = get(&f.app, &f.key_a, "/customers/cust-8841").await;
    assert_eq!(fetched, updated);
    assert_eq!(fetched["firstName"], "Jane", "other fields untouched");
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn patch_revalidates_and_changes_only_the_sent_fields(pool: PgPool) {
    let f = fixture(pool).await;
    post(&f.app, &f.key_a, "/customers", &seed_body()).await;
    let uri = "/customers/cust-8841";

    let changes = json!({
        "phoneNumber": "+12125550199",
        "city": "Oakland",
        "zipCode": "94607",
        "streetAddress2": null,
        "test": false,
        "externalMetadata": {"pay_day": "Monday"}
    });
    let (status, updated) = patch(&f.app, &f.key_a, uri, &changes).await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["phoneNumber"], "+12125550199");
    assert_eq!(updated["city"], "Oakland");
    assert!(
        updated.get("streetAddress2").is_none(),
        "null clears: {updated}"
    );
    assert_eq!(updated["isTest"], false);
    assert_eq!(updated["externalMetadata"], json!({"pay_day": "Monday"}));
    assert_eq!(updated["email"], "jane.doe@example.com");

    for (body, field, code) in [
        (json!({"nickname": "JD"}), "nickname", "unknown_field"),
        (json!({"sync": true}), "sync", "unknown_field"),
        (json!({"zipCode": "abc"}), "zipCode", "invalid_format"),
        (json!({"city": null}), "city", "required"),
        (json!({"taskType": "sales"}), "taskType", "invalid_value"),
        (json!({"doNotCall": "yes"}), "doNotCall", "invalid_type"),
        (json!({"id": "other"}), "id", "invalid_value"),
    ] {
        let (status, error) = patch(&f.app, &f.key_a, uri, &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {error}");
        assert_eq!(field_names(&error), [field], "{error}");
        assert_eq!(error["error"]["fields"][0]["code"], code, "{error}");
    }
    let (_, fetched) = get(&f.app, &f.key_a, uri).await;
    assert_eq!(fetched, updated, "rejected patches changed nothing");
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn list_filters_and_pages_without_duplicates(pool: PgPool) {
    let f = fixture(pool).await;
    for i in 0..7 {
        let mut body = minimal(&format!("c-{i}"));
        body["isTest"] = json!(i % 2 == 0);
        body["doNotCall"] = json!(i % 3 == 0);
        let (status, _) = post(&f.app, &f.key_a, "/customers", &body).await;
        assert_eq!(status, StatusCode::CREATED);
    }
    post(&f.app, &f.key_b, "/customers", &minimal("b-only")).await;

    let mut seen = Vec::new();
    let mut uri = "/customers?limit=3".to_owned();
    loop {
        let (status, page) = get(&f.app, &f.key_a, &uri).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let data = page["data"].as_array().unwrap();
        assert!(data.len() <= 3);
        seen.extend(data.iter().map(|c| c["id"].as_str().unwrap().to_owned()));
        match page["nextCursor"].as_str() {
            Some(cursor) => uri = format!("/customers?limit=3&after={cursor}"),
            None => break,
        }
    }
    let all: Vec<String> = (0..7).map(|i| format!("c-{i}")).collect();
    assert_eq!(seen, all, "every customer once, in creation order");

    let ids = |page: &Value| -> Vec<String> {
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let (_, page) = get(&f.app, &f.key_a, "/customers?isTest=true").await;
    assert_eq!(ids(&page), ["c-0", "c-2", "c-4", "c-6"]);
    assert_eq!(page["nextCursor"], Value::Null);
    let (_, page) = get(&f.app, &f.key_a, "/customers?isTest=false&doNotCall=true").await;
    assert_eq!(ids(&page), ["c-3"]);
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn bad_query_values_are_400_naming_the_parameter(pool: PgPool) {
    let f = fixture(pool).await;
    for (query, param) in [
        ("isTest=maybe", "isTest"),
        ("doNotCall=1", "doNotCall"),
        ("after=abc", "after"),
        ("limit=0", "limit"),
        ("limit=100000", "limit"),
        ("sort=name", "sort"),
    ] {
        let (status, error) = get(&f.app, &f.key_a, &format!("/customers?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {error}");
        assert_eq!(field_names(&error), [param], "{error}");
    }
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn sync_true_without_an_lms_connection_is_409_and_stores_nothing(pool: PgPool) {
    let f = fixture(pool).await;
    let body = json!({"id": "12345", "taskType": "collections", "loanId": "67890", "sync": true});
    let (status, error) = post(&f.app, &f.key_a, "/customers", &body).await;
    assert_eq!(status, StatusCode::CONFLICT, "{error}");
    assert_envelope(&error, "lms_not_configured");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("PUT /lms")
    );
    let (status, _) = get(&f.app, &f.key_a, "/customers/12345").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn unknown_route_and_wrong_method_answer_in_the_envelope(pool: PgPool) {
    let f = fixture(pool).await;
    let (status, error) = get(&f.app, &f.key_a, "/nowhere").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_envelope(&error, "not_found");
    let (status, error) = send(&f.app, "DELETE", "/customers", Some(&f.key_a), None).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_envelope(&error, "method_not_allowed");
}

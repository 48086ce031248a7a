//! The operator's routes (issue 14): `/admin/…` behind the admin token, `/healthz`,
//! `/readyz` and `/metrics`, through `router(state)` + `oneshot` against a fresh database
//! per test and real Redis (a namespace of the test's own).

mod support;

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use outdial_domain::CallId;
use serde_json::{Value, json};
use sqlx::PgPool;
use tower::ServiceExt;

use support::*;

/// Sends a request with the given headers; returns the status and the body (JSON, or a
/// string when it is not JSON).
async fn call(
    app: &Router,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let response = app
        .clone()
        .oneshot(req.body(Body::empty()).expect("request"))
        .await
        .expect("router answers");
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, body)
}

async fn as_admin(app: &Router, method: &str, uri: &str) -> (StatusCode, Value) {
    call(
        app,
        method,
        uri,
        &[("authorization", &format!("Bearer {TOKEN}"))],
    )
    .await
}

/// Every admin route, with a path that exists.
fn admin_routes(call: &str) -> Vec<(&'static str, String)> {
    vec![
        ("GET", "/admin/queue/stats".into()),
        ("GET", "/admin/queue/scheduled".into()),
        ("GET", format!("/admin/calls/{call}")),
        ("POST", format!("/admin/calls/{call}/retry")),
        ("POST", format!("/admin/calls/{call}/cancel")),
        ("POST", "/admin/queue/dead/purge".into()),
        ("POST", "/admin/companies/acme/pause".into()),
        ("POST", "/admin/companies/acme/resume".into()),
    ]
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn every_admin_route_refuses_a_company_key_and_the_token_is_no_company_key(pool: PgPool) {
    let a = admin(pool, &redis_url()).await;
    let calls = scheduled(&a).await;
    let key = a.f.key_a.clone();
    for (method, path) in admin_routes(&calls[0]) {
        for headers in [
            vec![],
            vec![("x-api-key", key.as_str())],
            vec![("authorization", &*format!("Bearer {key}"))],
            vec![("authorization", "Bearer wrong-token")],
            vec![("cookie", "outdial_admin=wrong-token")],
        ] {
            let (status, body) = call(&a.app, method, &path, &headers).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} {headers:?}: {body}"
            );
            assert_envelope(&body, "unauthorized");
        }
    }
    // Nothing was changed by the refused writes.
    let (status, call0) = get(
        &a.app,
        &a.f.key_a,
        &format!("/scheduled-calls/{}", calls[0]),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(call0["status"], "scheduled", "{call0}");
    // The admin token is not a company key.
    for headers in [
        vec![("x-api-key", TOKEN)],
        vec![("authorization", &*format!("Bearer {TOKEN}"))],
    ] {
        let (status, body) = call(&a.app, "GET", "/customers", &headers).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{headers:?}: {body}");
    }
    let (status, _) = as_admin(&a.app, "GET", "/admin/queue/stats").await;
    assert_eq!(status, StatusCode::OK);
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn without_an_admin_token_there_are_no_admin_routes(pool: PgPool) {
    let f = fixture(pool).await;
    for (method, path) in admin_routes(&uuid_like()) {
        let (status, body) = call(&f.app, method, &path, &[("authorization", "Bearer x")]).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {body}");
    }
}

fn uuid_like() -> String {
    "00000000-0000-4000-8000-000000000001".into()
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn stats_list_show_retry_cancel_and_purge_work_on_real_calls(pool: PgPool) {
    let a = admin(pool, &redis_url()).await;
    let calls = scheduled(&a).await;
    let n = calls.len() as u64;
    let (status, stats) = as_admin(&a.app, "GET", "/admin/queue/stats").await;
    assert_eq!(status, StatusCode::OK, "{stats}");
    let acme = stats["companies"]
        .as_array()
        .expect("companies")
        .iter()
        .find(|c| c["company"] == "acme")
        .cloned()
        .expect("acme's line");
    assert_eq!(acme["scheduled"], n, "{stats}");
    assert_eq!(acme["dead"], 0);
    assert_eq!(acme["paused"], false);
    assert_eq!(stats["total"]["scheduled"], n, "{stats}");
    let (_, one) = as_admin(&a.app, "GET", "/admin/queue/stats?company=globex").await;
    assert_eq!(one["companies"][0]["scheduled"], 0, "{one}");
    let (status, body) = as_admin(&a.app, "GET", "/admin/queue/stats?company=nobody").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    // Listing pages through every call once, across companies.
    let mut seen = Vec::new();
    let mut uri = "/admin/queue/scheduled?limit=3".to_owned();
    loop {
        let (status, page) = as_admin(&a.app, "GET", &uri).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        for item in page["items"].as_array().expect("items") {
            seen.push(item["callId"].as_str().expect("callId").to_owned());
        }
        match page["nextCursor"].as_str() {
            Some(c) => uri = format!("/admin/queue/scheduled?limit=3&cursor={c}"),
            None => break,
        }
    }
    seen.sort();
    let mut want = calls.clone();
    want.sort();
    assert_eq!(seen, want);
    let (status, body) = as_admin(&a.app, "GET", "/admin/queue/sideways").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(field_names(&body), vec!["state"]);
    let (status, body) = as_admin(&a.app, "GET", "/admin/queue/due?cursor=zzz").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(field_names(&body), vec!["cursor"]);

    // One call's life.
    let (status, view) = as_admin(&a.app, "GET", &format!("/admin/calls/{}", calls[0])).await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["company"], "acme");
    assert_eq!(view["call"]["status"], "scheduled");
    assert_eq!(view["queue"]["state"], "scheduled", "{view}");
    assert!(view["call"]["decisionTrail"].is_array(), "{view}");
    let (status, _) = as_admin(&a.app, "GET", &format!("/admin/calls/{}", uuid_like())).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = as_admin(&a.app, "GET", "/admin/calls/not-a-uuid").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Retry: a queued call is a conflict; a dead one is re-driven, and `show` records it.
    let (status, body) =
        as_admin(&a.app, "POST", &format!("/admin/calls/{}/retry", calls[0])).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let job = job_of(&a, &calls[0]).await;
    assert!(
        a.queue
            .dead(&job, a.f.now, "test: exhausted")
            .await
            .expect("dead")
    );
    let (status, body) =
        as_admin(&a.app, "POST", &format!("/admin/calls/{}/retry", calls[0])).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["result"], "redriven");
    let (_, view) = as_admin(&a.app, "GET", &format!("/admin/calls/{}", calls[0])).await;
    assert_eq!(view["queue"]["state"], "scheduled", "{view}");
    assert_eq!(view["adminActions"][0]["action"], "retry", "{view}");
    assert_eq!(view["adminActions"][0]["actor"], "admin-api", "{view}");
    // A call Redis lost is enqueued again.
    let job1 = job_of(&a, &calls[1]).await;
    a.queue.cancel(&job1).await.expect("drop from the queue");
    let (status, body) =
        as_admin(&a.app, "POST", &format!("/admin/calls/{}/retry", calls[1])).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["result"], "enqueued");

    // Cancel: the row and the job; a second cancel is a conflict.
    let (status, body) =
        as_admin(&a.app, "POST", &format!("/admin/calls/{}/cancel", calls[2])).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["queue"], "removed");
    let (_, row) = get(
        &a.app,
        &a.f.key_a,
        &format!("/scheduled-calls/{}", calls[2]),
    )
    .await;
    assert_eq!(row["status"], "cancelled", "{row}");
    let (status, body) =
        as_admin(&a.app, "POST", &format!("/admin/calls/{}/cancel", calls[2])).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, body) =
        as_admin(&a.app, "POST", &format!("/admin/calls/{}/retry", calls[2])).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");

    // Purge dead: only those dead long enough; their rows are cancelled.
    let job3 = job_of(&a, &calls[3]).await;
    assert!(a.queue.dead(&job3, a.f.now, "test").await.expect("dead"));
    let (status, body) = as_admin(&a.app, "POST", "/admin/queue/dead/purge?olderThan=1h").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["purged"], 0);
    let (status, body) = as_admin(&a.app, "POST", "/admin/queue/dead/purge?olderThan=soon").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(field_names(&body), vec!["olderThan"]);
    let (status, body) = as_admin(&a.app, "POST", "/admin/queue/dead/purge?company=acme").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["purged"], 1);
    let (_, row) = get(
        &a.app,
        &a.f.key_a,
        &format!("/scheduled-calls/{}", calls[3]),
    )
    .await;
    assert_eq!(row["status"], "cancelled", "{row}");
    let (_, stats) = as_admin(&a.app, "GET", "/admin/queue/stats?company=acme").await;
    assert_eq!(stats["companies"][0]["dead"], 0, "{stats}");
    assert_eq!(stats["companies"][0]["scheduled"], n - 2, "{stats}");
}

async fn job_of(a: &Admin, call: &str) -> outdial_queue::JobRef {
    let company = a.f.store.company_named("acme").await.expect("acme");
    let partition = outdial_queue::Partition::new(&company.id.to_string()).expect("partition");
    let id: CallId = call.parse().expect("call id");
    a.queue
        .job_ref(&partition, id, &"c1".parse().expect("customer"))
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn pause_and_resume_are_recorded_and_name_bad_input(pool: PgPool) {
    let a = admin(pool, &redis_url()).await;
    scheduled(&a).await;
    let (status, body) = as_admin(&a.app, "POST", "/admin/companies/nobody/pause").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = as_admin(
        &a.app,
        "POST",
        "/admin/companies/acme/pause?taskType=surfing",
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(field_names(&body), vec!["taskType"]);
    let (status, body) = as_admin(&a.app, "POST", "/admin/companies/acme/resume").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");

    let (status, body) = as_admin(&a.app, "POST", "/admin/companies/acme/pause").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["alreadyPaused"], false);
    let (_, body) = as_admin(&a.app, "POST", "/admin/companies/acme/pause").await;
    assert_eq!(body["alreadyPaused"], true, "{body}");
    let (status, body) = as_admin(
        &a.app,
        "POST",
        "/admin/companies/acme/pause?taskType=collections",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, stats) = as_admin(&a.app, "GET", "/admin/queue/stats?company=acme").await;
    assert_eq!(stats["companies"][0]["paused"], true, "{stats}");
    assert_eq!(
        stats["companies"][0]["pausedTaskTypes"],
        json!(["collections"])
    );

    let (status, body) = as_admin(&a.app, "POST", "/admin/companies/acme/resume").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["paused"], false);
    let (_, stats) = as_admin(&a.app, "GET", "/admin/queue/stats?company=acme").await;
    assert_eq!(stats["companies"][0]["paused"], false, "{stats}");
    assert_eq!(
        stats["companies"][0]["pausedTaskTypes"],
        json!(["collections"])
    );
    let (status, _) = as_admin(
        &a.app,
        "POST",
        "/admin/companies/acme/resume?taskType=collections",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let actions: Vec<String> = sqlx::query_scalar(
        "SELECT action || ':' || coalesce(detail->>'taskType', '') FROM admin_actions ORDER BY id",
    )
    .fetch_all(a.f.store.pool())
    .await
    .expect("admin actions");
    assert_eq!(
        actions,
        [
            "pause:",
            "pause:collections",
            "resume:",
            "resume:collections"
        ]
    );
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn healthz_and_readyz_answer_without_a_key(pool: PgPool) {
    let a = admin(pool, &redis_url()).await;
    let (status, body) = call(&a.app, "GET", "/healthz", &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = call(&a.app, "GET", "/readyz", &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["checks"]["redis"], "ok", "{body}");
    assert_eq!(body["checks"]["postgres"], "ok", "{body}");
    assert_eq!(body["checks"]["migrations"], "ok", "{body}");
    // No recorder given to this app: no metrics route.
    let (status, _) = call(&a.app, "GET", "/metrics", &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn readyz_is_503_naming_redis_when_redis_is_down(pool: PgPool) {
    let mut redis = outdial_redis::testing::OwnRedis::start();
    let a = admin(pool, &redis.url()).await;
    let (status, body) = call(&a.app, "GET", "/readyz", &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    redis.stop();
    let (status, body) =
        tokio::time::timeout(Duration::from_secs(30), call(&a.app, "GET", "/readyz", &[]))
            .await
            .expect("readyz answers while Redis is down");
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["notReady"], json!(["redis"]), "{body}");
    assert_eq!(body["checks"]["postgres"], "ok", "{body}");
    // The admin routes answer 503 too, never 500.
    let (status, body) = tokio::time::timeout(
        Duration::from_secs(30),
        as_admin(&a.app, "GET", "/admin/queue/stats"),
    )
    .await
    .expect("stats answers while Redis is down");
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn readyz_names_pending_migrations(pool: PgPool) {
    let f = fixture(pool).await;
    sqlx::query("DELETE FROM _sqlx_migrations WHERE version = 18")
        .execute(f.store.pool())
        .await
        .expect("forget one migration");
    let (status, body) = call(&f.app, "GET", "/readyz", &[]).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["notReady"], json!(["migrations"]), "{body}");
}

/// A form post (the admin page's), with the session cookie if given; returns the status,
/// the `Set-Cookie` and `Location` headers and the body.
async fn form(
    app: &Router,
    uri: &str,
    cookie: Option<&str>,
    body: &str,
) -> (StatusCode, String, String, String) {
    let mut req = Request::builder()
        .method("POST")
        .uri(uri)
        .header("content-type", "application/x-www-form-urlencoded");
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    let response = app
        .clone()
        .oneshot(req.body(Body::from(body.to_owned())).expect("request"))
        .await
        .expect("router answers");
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let (status, set_cookie, location) =
        (response.status(), header("set-cookie"), header("location"));
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (
        status,
        set_cookie,
        location,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

/// The page as the logged-in browser gets it.
async fn page(app: &Router, cookie: &str) -> String {
    let (status, body) = call(app, "GET", "/admin/", &[("cookie", cookie)]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body.as_str().expect("HTML").to_owned()
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn the_page_s_forms_need_the_session_and_its_csrf_token_and_are_recorded(pool: PgPool) {
    let a = admin(pool, &redis_url()).await;
    let calls = scheduled(&a).await;

    // Log in: a wrong token is the form again (401), the right one sets the session cookie.
    let (status, body) = call(&a.app, "GET", "/admin/", &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        body.as_str().expect("HTML").contains("name=\"token\""),
        "{body}"
    );
    let (status, cookie, _, body) = form(&a.app, "/admin/login", None, "token=nope").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(cookie.is_empty(), "no session for a wrong token");
    let (status, set, location, _) =
        form(&a.app, "/admin/login", None, &format!("token={TOKEN}")).await;
    assert_eq!(
        (status, location.as_str()),
        (StatusCode::SEE_OTHER, "/admin/")
    );
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/admin"] {
        assert!(set.contains(attr), "{set}");
    }
    let session = set.split(';').next().expect("cookie").to_owned();
    let html = page(&a.app, &session).await;
    let csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a CSRF token in the page")
        .to_owned();
    assert!(
        !html.contains(TOKEN),
        "the page never shows the admin token"
    );

    // Pause: no session is 401, a wrong CSRF token 403, and neither pauses.
    let pause = format!("csrf={csrf}&company=acme");
    let (status, ..) = form(&a.app, "/admin/ui/pause", None, &pause).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, ..) = form(
        &a.app,
        "/admin/ui/pause",
        Some(&session),
        "csrf=forged&company=acme",
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, ..) = form(&a.app, "/admin/ui/pause", Some(&session), "company=acme").await;
    assert!(status.is_client_error(), "no CSRF token: {status}");
    let (_, stats) = as_admin(&a.app, "GET", "/admin/queue/stats?company=acme").await;
    assert_eq!(stats["companies"][0]["paused"], false, "{stats}");
    let (status, _, location, _) = form(&a.app, "/admin/ui/pause", Some(&session), &pause).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(location.starts_with("/admin/?msg="), "{location}");
    let (_, stats) = as_admin(&a.app, "GET", "/admin/queue/stats?company=acme").await;
    assert_eq!(stats["companies"][0]["paused"], true, "{stats}");
    form(&a.app, "/admin/ui/resume", Some(&session), &pause).await;
    let (_, stats) = as_admin(&a.app, "GET", "/admin/queue/stats?company=acme").await;
    assert_eq!(stats["companies"][0]["paused"], false, "{stats}");

    // A dead call is listed with its re-drive button, and the button re-drives it.
    let job = job_of(&a, &calls[0]).await;
    assert!(
        a.queue
            .dead(&job, a.f.now, "test: exhausted")
            .await
            .expect("dead")
    );
    assert!(page(&a.app, &session).await.contains(&calls[0]));
    let (status, ..) = form(
        &a.app,
        "/admin/ui/retry",
        Some(&session),
        &format!("csrf={csrf}&call={}", calls[0]),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, view) = as_admin(&a.app, "GET", &format!("/admin/calls/{}", calls[0])).await;
    assert_eq!(view["queue"]["state"], "scheduled", "{view}");
    assert_eq!(view["adminActions"][0]["action"], "retry", "{view}");

    // A webhook dead letter (as the deliverer leaves one) is re-driven, and recorded.
    let acme = a.f.store.company_named("acme").await.expect("acme");
    let event = uuid::Uuid::new_v4();
    sqlx::query(
        "INSERT INTO webhook_outbox (id, company_id, event, payload, status, attempts,
                                     next_attempt_at, last_error, created_at)
         VALUES ($1, $2, 'call.completed', '{}', 'dead', 8, $3, 'HTTP 503', $3)",
    )
    .bind(event)
    .bind(acme.id.as_uuid())
    .bind(a.f.now)
    .execute(a.f.store.pool())
    .await
    .expect("a dead letter");
    assert!(page(&a.app, &session).await.contains(&event.to_string()));
    let (status, _, location, _) = form(
        &a.app,
        "/admin/ui/webhooks/redrive",
        Some(&session),
        &format!("csrf={csrf}&company=acme"),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(location.contains("1%20webhook"), "{location}");
    let state: String = sqlx::query_scalar("SELECT status FROM webhook_outbox WHERE id = $1")
        .bind(event)
        .fetch_one(a.f.store.pool())
        .await
        .expect("the event");
    assert_eq!(state, "pending");
    let actions: Vec<String> =
        sqlx::query_scalar("SELECT action FROM admin_actions ORDER BY at, id")
            .fetch_all(a.f.store.pool())
            .await
            .expect("actions");
    assert_eq!(actions, ["pause", "resume", "retry", "webhook_redrive"]);

    // Log out: the cookie is cleared.
    let (status, set, ..) = form(
        &a.app,
        "/admin/logout",
        Some(&session),
        &format!("csrf={csrf}"),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(set.contains("Max-Age=0"), "{set}");
}

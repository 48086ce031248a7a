//! The operator's side over HTTP (issue 14): `/admin/…` JSON routes (the same operations
//! as `outdial queue …`, see [`ops`]) behind `Authorization: Bearer <admin token>`.
//!
//! The token is held as its SHA-256 and compared in constant time. A company API key is
//! not an admin token (401), and the admin token is not a company key (the company routes
//! answer 401). Without a token configured the binary mounts none of this (404).

pub mod ops;
mod page;

pub use page::spawn_sampler;

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use outdial_domain::{ErrorCode, FieldError};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::ApiError;
use ops::{Ops, OpsError};

/// Who the admin API records as the actor of its writes.
pub const API_ACTOR: &str = "admin-api";

/// The admin token, as its SHA-256.
#[derive(Clone)]
pub struct AdminToken {
    digest: [u8; 32],
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(***)")
    }
}

impl AdminToken {
    /// Holds `token` as its hash.
    pub fn new(token: &str) -> AdminToken {
        AdminToken {
            digest: Sha256::digest(token.as_bytes()).into(),
        }
    }

    /// Whether `given` is the token (constant time in the token's content).
    pub fn matches(&self, given: &str) -> bool {
        let d: [u8; 32] = Sha256::digest(given.as_bytes()).into();
        bool::from(d.ct_eq(&self.digest))
    }
}

/// What the admin routes share.
#[derive(Debug)]
pub struct Admin {
    pub token: AdminToken,
    pub ops: Ops,
    /// The admin page's chart samples.
    pub history: page::History,
}

impl From<OpsError> for ApiError {
    fn from(e: OpsError) -> Self {
        let field = |name: &str, code, status, err: &'static str, msg: String| {
            let mut a = ApiError::field(FieldError::new(name, code, msg.clone()));
            a.status = status;
            a.code = err;
            a.message = msg;
            a
        };
        match &e {
            OpsError::UnknownCompany(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "company_not_found", e.to_string())
            }
            OpsError::UnknownCall(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "call_not_found", e.to_string())
            }
            OpsError::UnknownTaskType(_) => field(
                "taskType",
                ErrorCode::InvalidValue,
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown_task_type",
                e.to_string(),
            ),
            OpsError::BadState(_) => field(
                "state",
                ErrorCode::InvalidValue,
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown_state",
                e.to_string(),
            ),
            OpsError::BadCursor => field(
                "cursor",
                ErrorCode::InvalidFormat,
                StatusCode::BAD_REQUEST,
                "invalid_request",
                e.to_string(),
            ),
            OpsError::Conflict(_) => ApiError::new(StatusCode::CONFLICT, "conflict", e.to_string()),
            OpsError::Store(s) => {
                if matches!(s, outdial_store::Error::Database(_)) {
                    ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "postgres_unavailable",
                        "postgres did not answer",
                    )
                } else {
                    ApiError::internal(s)
                }
            }
            OpsError::Queue(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "redis_unavailable",
                "redis did not answer",
            ),
        }
    }
}

/// The name of the admin page's session cookie (it holds the token; HttpOnly, SameSite
/// Strict).
pub const COOKIE: &str = "outdial_admin";

/// The token a request presents: `Authorization: Bearer …`, else the page's cookie.
fn presented(request: &Request) -> Option<&str> {
    let h = request.headers();
    if let Some(b) = h
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        return Some(b.trim());
    }
    cookie(request, COOKIE)
}

/// One cookie's value.
pub(crate) fn cookie<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
    request
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// 401 unless the request carries the admin token.
async fn require_admin(
    State(admin): State<Arc<Admin>>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    match presented(&request) {
        Some(t) if admin.token.matches(t) => Ok(next.run(request).await),
        _ => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or invalid admin token (Authorization: Bearer <OUTDIAL_ADMIN_TOKEN>)",
        )),
    }
}

/// The `/admin` JSON routes.
pub fn router(admin: Arc<Admin>) -> Router {
    Router::new()
        .route("/admin/queue/stats", get(stats))
        .route("/admin/queue/dead/purge", post(purge))
        .route("/admin/queue/{state}", get(list))
        .route("/admin/calls/{id}", get(show))
        .route("/admin/calls/{id}/retry", post(retry))
        .route("/admin/calls/{id}/cancel", post(cancel))
        .route("/admin/companies/{name}/pause", post(pause))
        .route("/admin/companies/{name}/resume", post(resume))
        .route("/admin/ui/pause", post(page::ui_pause))
        .route("/admin/ui/resume", post(page::ui_resume))
        .route("/admin/ui/retry", post(page::ui_retry))
        .route("/admin/ui/webhooks/redrive", post(page::ui_webhooks))
        .route("/admin/logout", post(page::logout))
        .route_layer(axum::middleware::from_fn_with_state(
            Arc::clone(&admin),
            require_admin,
        ))
        // The page answers its own login form (401) without the token.
        .route("/admin/", get(page::dashboard))
        .route(
            "/admin",
            get(|| async { axum::response::Redirect::permanent("/admin/") }),
        )
        .route("/admin/login", post(page::login))
        .with_state(admin)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct StatsQuery {
    company: Option<String>,
}

async fn stats(
    State(a): State<Arc<Admin>>,
    Query(q): Query<StatsQuery>,
) -> Result<Response, ApiError> {
    Ok(Json(a.ops.stats(q.company.as_deref()).await?).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ListQuery {
    company: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
}

async fn list(
    State(a): State<Arc<Admin>>,
    Path(state): Path<String>,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    let page = a
        .ops
        .list(
            &state,
            q.company.as_deref(),
            q.limit.unwrap_or(50),
            q.cursor.as_deref(),
        )
        .await?;
    Ok(Json(page).into_response())
}

async fn show(State(a): State<Arc<Admin>>, Path(id): Path<String>) -> Result<Response, ApiError> {
    Ok(Json(a.ops.show(&id).await?).into_response())
}

async fn retry(State(a): State<Arc<Admin>>, Path(id): Path<String>) -> Result<Response, ApiError> {
    Ok(Json(a.ops.retry(&id, API_ACTOR).await?).into_response())
}

async fn cancel(State(a): State<Arc<Admin>>, Path(id): Path<String>) -> Result<Response, ApiError> {
    Ok(Json(a.ops.cancel(&id, API_ACTOR).await?).into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PurgeQuery {
    company: Option<String>,
    /// A duration such as `1h` or `30m` (humantime); default 0: every dead call.
    older_than: Option<String>,
}

async fn purge(
    State(a): State<Arc<Admin>>,
    Query(q): Query<PurgeQuery>,
) -> Result<Response, ApiError> {
    let older = match q.older_than.as_deref() {
        None => chrono::Duration::zero(),
        Some(s) => parse_age(s).map_err(|m| {
            ApiError::field(FieldError::new("olderThan", ErrorCode::InvalidFormat, m))
        })?,
    };
    Ok(Json(
        a.ops
            .purge_dead(q.company.as_deref(), older, API_ACTOR)
            .await?,
    )
    .into_response())
}

/// A duration such as `90s`, `30m`, `2h 30m`, `7d`.
pub fn parse_age(s: &str) -> Result<chrono::Duration, String> {
    let d = humantime::parse_duration(s)
        .map_err(|e| format!("not a duration such as 30m or 2h: {e}"))?;
    chrono::Duration::from_std(d).map_err(|_| "too long".to_owned())
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PauseQuery {
    task_type: Option<String>,
}

async fn pause(
    State(a): State<Arc<Admin>>,
    Path(name): Path<String>,
    Query(q): Query<PauseQuery>,
) -> Result<Response, ApiError> {
    Ok(Json(
        a.ops
            .pause(&name, q.task_type.as_deref(), API_ACTOR)
            .await?,
    )
    .into_response())
}

async fn resume(
    State(a): State<Arc<Admin>>,
    Path(name): Path<String>,
    Query(q): Query<PauseQuery>,
) -> Result<Response, ApiError> {
    Ok(Json(
        a.ops
            .resume(&name, q.task_type.as_deref(), API_ACTOR)
            .await?,
    )
    .into_response())
}

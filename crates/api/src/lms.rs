//! The company's LMS connection, and reading a customer from it.
//!
//! - `PUT /lms` `{"baseUrl", "headers"?: {name: value}, "timeoutMs"?}` stores the connection
//!   (replacing any earlier one); `GET /lms` shows it with the header **names** only (the
//!   values are credentials); `DELETE /lms` removes it.
//! - [`fetch`] reads a customer and its loans for `sync: true` and schedule sync, mapping
//!   each failure to its answer: unreachable or too slow → 504 `lms_timeout`, 5xx or an
//!   answer outside the contract → 502 `lms_unavailable`, unknown customer → 404
//!   `lms_customer_not_found`, each naming the LMS host.

use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use outdial_domain::{ErrorCode, FieldError};
use outdial_lms::{Connection, LmsError, Record};
use outdial_store::Company;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::body::{JsonObject, reject_unknown, typed};
use crate::{ApiError, AppState};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LmsBody {
    base_url: Option<String>,
    headers: Option<Map<String, Value>>,
    timeout_ms: Option<u64>,
}

/// The connection as `PUT` and `GET /lms` show it: never the header values.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LmsView {
    base_url: String,
    /// The names of the headers sent with every request (their values are not shown).
    header_names: Vec<String>,
    /// The budget of one whole fetch (customer and loans, retries included), in ms.
    timeout_ms: u64,
    #[schema(value_type = String)]
    updated_at: DateTime<Utc>,
}

impl LmsView {
    fn of(s: &outdial_store::LmsSettings) -> Self {
        LmsView {
            base_url: s.base_url.clone(),
            header_names: s.headers.iter().map(|(n, _)| n.clone()).collect(),
            timeout_ms: s.timeout_ms,
            updated_at: s.updated_at,
        }
    }
}

fn not_configured() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "lms_not_configured",
        "the company has no LMS connection: PUT /lms sets one",
    )
}

/// `PUT /lms`.
#[utoipa::path(put, path = "/lms", tag = "lms",
    request_body(content = crate::openapi::LmsRequestDoc, description = "The LMS connection"),
    responses((status = 200, description = "The connection as stored (header names only)", body = LmsView)))]
#[tracing::instrument(skip_all, fields(company.id = %company.id))]
pub(crate) async fn put(
    State(state): State<AppState>,
    Extension(company): Extension<Company>,
    JsonObject(body): JsonObject,
) -> Result<Json<LmsView>, ApiError> {
    reject_unknown(&body, &["baseUrl", "headers", "timeoutMs"])?;
    let body: LmsBody = typed(body)?;
    let base_url = body.base_url.ok_or_else(|| {
        ApiError::field(FieldError::new(
            "baseUrl",
            ErrorCode::Required,
            "baseUrl is required",
        ))
    })?;
    let mut headers = Vec::new();
    for (name, value) in body.headers.unwrap_or_default() {
        let Value::String(value) = value else {
            return Err(ApiError::field(FieldError::new(
                format!("headers.{name}"),
                ErrorCode::InvalidType,
                "each header value must be a string",
            )));
        };
        headers.push((name, value));
    }
    let connection = Connection::new(&base_url, headers, body.timeout_ms).map_err(|e| {
        let code = if e.field == "timeoutMs" {
            ErrorCode::OutOfRange
        } else {
            ErrorCode::InvalidValue
        };
        ApiError::field(FieldError::new(e.field.clone(), code, e.to_string()))
    })?;
    let stored = state
        .store
        .put_lms(
            company.id,
            connection.base_url(),
            connection.headers(),
            connection.timeout_ms(),
            state.clock.now(),
        )
        .await?;
    state.lms.reset(company.id.as_uuid());
    tracing::info!(lms.host = %connection.host(), lms.headers = ?connection.header_names(), "LMS connection set");
    Ok(Json(LmsView::of(&stored)))
}

/// `GET /lms`.
#[utoipa::path(get, path = "/lms", tag = "lms",
    responses((status = 200, description = "The connection (header names only)", body = LmsView)))]
pub(crate) async fn show(
    State(state): State<AppState>,
    Extension(company): Extension<Company>,
) -> Result<Json<LmsView>, ApiError> {
    let stored = state
        .store
        .lms(company.id)
        .await?
        .ok_or_else(not_configured)?;
    Ok(Json(LmsView::of(&stored)))
}

/// `DELETE /lms`.
#[utoipa::path(delete, path = "/lms", tag = "lms",
    responses((status = 204, description = "Removed")))]
#[tracing::instrument(skip_all, fields(company.id = %company.id))]
pub(crate) async fn delete(
    State(state): State<AppState>,
    Extension(company): Extension<Company>,
) -> Result<Response, ApiError> {
    if !state.store.delete_lms(company.id).await? {
        return Err(not_configured());
    }
    state.lms.reset(company.id.as_uuid());
    tracing::info!("LMS connection removed");
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The company's connection, checked again (a row written by an older version or by hand
/// that no longer passes is a 502 naming it, not a 500).
pub(crate) async fn connection(
    state: &AppState,
    company: &Company,
) -> Result<Option<Connection>, ApiError> {
    let Some(stored) = state.store.lms(company.id).await? else {
        return Ok(None);
    };
    Connection::new(
        &stored.base_url,
        stored.headers.clone(),
        Some(stored.timeout_ms),
    )
    .map(Some)
    .map_err(|e| {
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            "lms_unavailable",
            format!("the stored LMS connection is invalid ({e}); PUT /lms again"),
        )
    })
}

/// Reads customer `id` and its loans from the company's LMS.
pub(crate) async fn fetch(
    state: &AppState,
    company: &Company,
    connection: &Connection,
    id: &str,
) -> Result<Record, ApiError> {
    let started = std::time::Instant::now();
    let result = state.lms.fetch(company.id.as_uuid(), connection, id).await;
    let latency_ms = started.elapsed().as_millis() as u64;
    match result {
        Ok(record) => {
            tracing::info!(lms.host = %connection.host(), latency_ms, lms.loans = record.loans.len(), "LMS customer fetched");
            Ok(record)
        }
        Err(e) => {
            tracing::warn!(lms.host = %connection.host(), latency_ms, error = %e, "LMS fetch failed");
            Err(lms_error(&e))
        }
    }
}

/// The answer for an LMS failure.
pub(crate) fn lms_error(e: &LmsError) -> ApiError {
    let (status, code) = match e {
        LmsError::Timeout { .. } => (StatusCode::GATEWAY_TIMEOUT, "lms_timeout"),
        LmsError::Unavailable { .. } | LmsError::CircuitOpen { .. } => {
            (StatusCode::BAD_GATEWAY, "lms_unavailable")
        }
        LmsError::NotFound { .. } => (StatusCode::NOT_FOUND, "lms_customer_not_found"),
    };
    ApiError::new(status, code, format!("{e}; nothing was stored"))
}

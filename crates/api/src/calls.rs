//! The call routes: placed calls with their results, as the worker stored them.
//!
//! - `GET /calls/{id}`: one call (transcript, `recording_url`, timestamp, flags, status).
//! - `GET /calls?customerId=&after=&limit=`: one customer's calls, newest first.

use axum::Extension;
use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use outdial_store::{CallRecord, Company, MAX_ATTEMPT_PAGE};
use serde::Serialize;
use uuid::Uuid;

use crate::{ApiError, AppState, query};

/// The page size when `limit` is not given.
pub const DEFAULT_CALLS_PAGE: u32 = 50;

/// `GET /calls/{id}`.
#[utoipa::path(get, path = "/calls/{id}", tag = "calls",
    params(("id" = String, Path, description = "The call's id")),
    responses((status = 200, description = "The call and its result", body = crate::openapi::CallDoc)))]
pub(crate) async fn show(
    State(state): State<AppState>,
    Extension(company): Extension<Company>,
    Path(id): Path<String>,
) -> Result<Json<CallRecord>, ApiError> {
    let id = Uuid::parse_str(&id)
        .map_err(|_| ApiError::new(StatusCode::NOT_FOUND, "not_found", "call not found"))?;
    Ok(Json(state.store.call(company.id, id).await?))
}

/// One page of `GET /calls`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Page {
    data: Vec<CallRecord>,
    next_cursor: Option<String>,
}

/// `GET /calls?customerId=`.
#[utoipa::path(get, path = "/calls", tag = "calls",
    params(
        ("customerId" = String, Query, description = "The customer whose calls to list"),
        ("after" = Option<String>, Query, description = "nextCursor of the previous page"),
        ("limit" = Option<u32>, Query, description = "Page size, 1-1000 (default 50)"),
    ),
    responses((status = 200, description = "One page, newest first", body = crate::openapi::CallPage)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    Extension(company): Extension<Company>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Page>, ApiError> {
    let mut customer = None;
    let mut after = None;
    let mut limit = DEFAULT_CALLS_PAGE;
    for (name, value) in query::pairs(raw.as_deref())? {
        match name.as_str() {
            "customerId" => {
                if value.is_empty() || value.len() > 255 {
                    return Err(query::bad(&name, "customerId must be 1-255 characters"));
                }
                customer = Some(value);
            }
            "after" => {
                after = Some(Uuid::parse_str(&value).map_err(|_| {
                    query::bad("after", "after must be a nextCursor from a previous page")
                })?);
            }
            "limit" => limit = query::limit(&value, MAX_ATTEMPT_PAGE)?,
            _ => return Err(query::unknown(&name)),
        }
    }
    let customer = customer.ok_or_else(|| {
        ApiError::field(outdial_domain::FieldError::new(
            "customerId",
            outdial_domain::ErrorCode::Required,
            "customerId is required",
        ))
    })?;
    let (data, next) = state
        .store
        .list_calls(company.id, &customer, after, limit)
        .await?;
    Ok(Json(Page {
        data,
        next_cursor: next.map(|id| id.to_string()),
    }))
}

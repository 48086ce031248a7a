//! The customer routes.
//!
//! - `POST /customers` creates; re-posting an id the company already has is 409 (POST never
//!   overwrites; `PATCH /customers/{id}` changes fields). `sync: true` is 501 until the LMS
//!   issue lands.
//! - `GET /customers/{id}`; another company's customer is 404, exactly like a missing one.
//! - `PATCH /customers/{id}`, see [`crate::patch`].
//! - `GET /customers?isTest=&doNotCall=&after=&limit=` pages in creation order; `nextCursor`
//!   is opaque to clients and `null` on the last page.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::{Extension, response::IntoResponse};
use outdial_domain::{Customer, CustomerInput, ErrorCode, FieldError};
use outdial_store::{Company, CustomerFilter, MAX_PAGE};
use serde::Serialize;

use crate::body::{JsonObject, typed};
use crate::patch::merge;
use crate::{ApiError, AppState};

/// The page size when `limit` is not given.
pub const DEFAULT_PAGE: u32 = 50;

/// `POST /customers`.
#[tracing::instrument(skip_all, fields(company.id = %company.id))]
pub(crate) async fn create(
    State(state): State<AppState>,
    Extension(company): Extension<Company>,
    JsonObject(body): JsonObject,
) -> Result<impl IntoResponse, ApiError> {
    let input: CustomerInput = typed(body)?;
    if input.is_sync() {
        return Err(ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "not_implemented",
            "sync (LMS auto-fetch) is not available yet: it arrives with the LMS integration; \
             send the customer's fields with sync false",
        ));
    }
    let now = state.clock.now();
    let task_types = company.catalog()?.task_types();
    let customer = input
        .validate(&task_types, now.date_naive())
        .map_err(ApiError::invalid)?;
    let stored = state
        .store
        .insert_customer(company.id, &customer, now)
        .await
        .map_err(|e| match e {
            outdial_store::Error::Conflict { .. } => ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                "a customer with this id already exists; POST creates, \
                 PATCH /customers/{id} changes an existing customer",
            ),
            other => other.into(),
        })?;
    tracing::info!(customer.id = %stored.id, "customer created");
    Ok((StatusCode::CREATED, Json(stored)))
}

/// `GET /customers/{id}`.
pub(crate) async fn show(
    State(state): State<AppState>,
    Extension(company): Extension<Company>,
    Path(id): Path<String>,
) -> Result<Json<Customer>, ApiError> {
    Ok(Json(state.store.customer(company.id, &id).await?))
}

/// `PATCH /customers/{id}`: the body holds only the fields to change. The merged customer
/// is validated as a whole, so a patch cannot leave an invalid row behind.
///
/// Setting `doNotCall` will also cancel the customer's pending calls; that arrives with the
/// scheduled-calls part of issue 3 (there are no scheduled calls to cancel yet).
#[tracing::instrument(skip_all, fields(company.id = %company.id))]
pub(crate) async fn update(
    State(state): State<AppState>,
    Extension(company): Extension<Company>,
    Path(id): Path<String>,
    JsonObject(body): JsonObject,
) -> Result<Json<Customer>, ApiError> {
    let now = state.clock.now();
    let stored = state.store.customer(company.id, &id).await?;
    let task_types = company.catalog()?.task_types();
    let patch = merge(&stored, body, &task_types, now.date_naive())?;
    let fields = patch.fields();
    let updated = state
        .store
        .update_customer(company.id, &id, patch, now)
        .await?;
    tracing::info!(customer.id = %updated.id, customer.fields = ?fields, "customer updated");
    Ok(Json(updated))
}

/// One page of `GET /customers`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Page {
    data: Vec<Customer>,
    next_cursor: Option<String>,
}

/// `GET /customers`.
pub(crate) async fn list(
    State(state): State<AppState>,
    Extension(company): Extension<Company>,
    RawQuery(query): RawQuery,
) -> Result<Json<Page>, ApiError> {
    let params = ListParams::parse(query.as_deref().unwrap_or(""))?;
    let (data, next) = state
        .store
        .list_customers(company.id, params.filter, params.after, params.limit)
        .await?;
    Ok(Json(Page {
        data,
        next_cursor: next.map(|seq| seq.to_string()),
    }))
}

/// The query of `GET /customers`, checked.
#[derive(Debug, PartialEq, Eq)]
struct ListParams {
    filter: CustomerFilter,
    after: Option<i64>,
    limit: u32,
}

impl ListParams {
    fn parse(query: &str) -> Result<ListParams, ApiError> {
        let pairs: Vec<(String, String)> = serde_urlencoded_pairs(query)?;
        let mut params = ListParams {
            filter: CustomerFilter::default(),
            after: None,
            limit: DEFAULT_PAGE,
        };
        let bad = |name: &str, message: String| {
            ApiError::field(FieldError::new(name, ErrorCode::InvalidValue, message))
        };
        for (name, value) in pairs {
            match name.as_str() {
                "isTest" | "doNotCall" => {
                    let flag = match value.as_str() {
                        "true" => true,
                        "false" => false,
                        _ => return Err(bad(&name, format!("{name} must be true or false"))),
                    };
                    if name == "isTest" {
                        params.filter.is_test = Some(flag);
                    } else {
                        params.filter.do_not_call = Some(flag);
                    }
                }
                "after" => {
                    let cursor = value.parse::<i64>().ok().filter(|c| *c >= 0);
                    params.after = Some(cursor.ok_or_else(|| {
                        bad(
                            "after",
                            "after must be a nextCursor from a previous page".to_owned(),
                        )
                    })?);
                }
                "limit" => {
                    let limit = value
                        .parse::<u32>()
                        .ok()
                        .filter(|l| (1..=MAX_PAGE).contains(l));
                    params.limit = limit.ok_or_else(|| {
                        bad(
                            "limit",
                            format!("limit must be an integer from 1 to {MAX_PAGE}"),
                        )
                    })?;
                }
                _ => {
                    return Err(ApiError::field(FieldError::new(
                        name.as_str(),
                        ErrorCode::UnknownField,
                        format!("unknown query parameter {name}"),
                    )));
                }
            }
        }
        Ok(params)
    }
}

/// Decodes `a=1&b=2` into pairs with axum's own form decoder.
fn serde_urlencoded_pairs(query: &str) -> Result<Vec<(String, String)>, ApiError> {
    let uri: axum::http::Uri = format!("/?{query}").parse().map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            "the query string is malformed",
        )
    })?;
    axum::extract::Query::<Vec<(String, String)>>::try_from_uri(&uri)
        .map(|q| q.0)
        .map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_query",
                "the query string is malformed",
            )
        })
}

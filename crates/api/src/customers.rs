//! The customer routes.
//!
//! - `POST /customers` creates; re-posting an id the company already has is 409 (POST never
//!   overwrites; `PATCH /customers/{id}` changes fields). `sync: true` reads the missing
//!   fields and the loans from the company's LMS (see [`crate::sync`]).
//! - `GET /customers/{id}` with its `loans` and, for a synced customer, `lmsSync`; another
//!   company's customer is 404, exactly like a missing one.
//! - `PATCH /customers/{id}`, see [`crate::patch`].
//! - `GET /customers?isTest=&doNotCall=&after=&limit=` pages in creation order; `nextCursor`
//!   is opaque to clients and `null` on the last page.

use axum::Extension;
use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use outdial_domain::{Customer, CustomerInput};
use outdial_store::{Cancellation, Company, CustomerFilter, LoanRecord, MAX_PAGE, SyncNote};
use serde::Serialize;
use serde_json::Value;

use crate::body::{JsonObject, typed};
use crate::patch::merge;
use crate::query;
use crate::{ApiError, AppState};

/// The page size when `limit` is not given.
pub const DEFAULT_PAGE: u32 = 50;

/// `POST /customers`.
#[utoipa::path(post, path = "/customers", tag = "customers",
    request_body(content = crate::openapi::CustomerRequestDoc, description = "Customer to add"),
    responses((status = 201, description = "Created: every stored field", body = crate::openapi::CustomerDoc)))]
#[tracing::instrument(skip_all, fields(company.id = %company.id))]
pub(crate) async fn create(
    State(state): State<AppState>,
    Extension(company): Extension<Company>,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    if body.get("sync").and_then(Value::as_bool) == Some(true) {
        let synced = crate::sync::prepare(&state, &company, body).await?;
        let stored = state
            .store
            .insert_synced_customer(
                company.id,
                &synced.customer,
                &synced.loans,
                &synced.note,
                state.clock.now(),
            )
            .await
            .map_err(conflict)?;
        tracing::info!(customer.id = %stored.id, lms.fields = ?synced.note.fields_from_lms, customer.loans = synced.loans.len(), "customer created from the LMS");
        let view = view(&state, &company, stored).await?;
        return Ok((StatusCode::CREATED, Json(view)).into_response());
    }
    let input: CustomerInput = typed(body)?;
    let now = state.clock.now();
    let task_types = crate::auth::catalog(&company)?.task_types();
    let customer = input
        .validate(&task_types, now.date_naive())
        .map_err(ApiError::invalid)?;
    let stored = state
        .store
        .insert_customer(company.id, &customer, now)
        .await
        .map_err(conflict)?;
    tracing::debug!(customer.id = %stored.id, "customer created");
    let view = view(&state, &company, stored).await?;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

fn conflict(e: outdial_store::Error) -> ApiError {
    match e {
        outdial_store::Error::Conflict { .. } => ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            "a customer with this id already exists; POST creates, \
             PATCH /customers/{id} changes an existing customer",
        ),
        other => other.into(),
    }
}

/// A customer as `GET /customers/{id}` shows it: the stored fields, its loans and, when it
/// was read from the LMS, what the last sync did.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CustomerView {
    #[serde(flatten)]
    customer: Customer,
    loans: Vec<LoanRecord>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lms_sync: Option<SyncNote>,
}

async fn view(
    state: &AppState,
    company: &Company,
    customer: Customer,
) -> Result<CustomerView, ApiError> {
    let (loans, lms_sync) = state
        .store
        .loans_and_sync(company.id, customer.id.as_str())
        .await?;
    Ok(CustomerView {
        customer,
        loans,
        lms_sync,
    })
}

/// `GET /customers/{id}`.
#[utoipa::path(get, path = "/customers/{id}", tag = "customers",
    params(("id" = String, Path, description = "The company's customer id")),
    responses((status = 200, description = "The customer", body = crate::openapi::CustomerDoc)))]
pub(crate) async fn show(
    State(state): State<AppState>,
    Extension(company): Extension<Company>,
    Path(id): Path<String>,
) -> Result<Json<CustomerView>, ApiError> {
    let customer = state.store.customer(company.id, &id).await?;
    Ok(Json(view(&state, &company, customer).await?))
}

/// `PATCH /customers/{id}`: the body holds only the fields to change. The merged customer
/// is validated as a whole, so a patch cannot leave an invalid row behind.
///
/// Setting `doNotCall` also cancels the customer's pending calls and ends its schedule, in
/// the same transaction.
#[utoipa::path(patch, path = "/customers/{id}", tag = "customers",
    params(("id" = String, Path, description = "The company's customer id")),
    request_body(content = crate::openapi::CustomerPatchDoc, description = "Fields to change"),
    responses((status = 200, description = "The customer as now stored", body = crate::openapi::CustomerDoc)))]
#[tracing::instrument(skip_all, fields(company.id = %company.id))]
pub(crate) async fn update(
    State(state): State<AppState>,
    Extension(company): Extension<Company>,
    Path(id): Path<String>,
    JsonObject(body): JsonObject,
) -> Result<Json<CustomerView>, ApiError> {
    let now = state.clock.now();
    let stored = state.store.customer(company.id, &id).await?;
    let task_types = crate::auth::catalog(&company)?.task_types();
    let patch = merge(&stored, body, &task_types, now.date_naive())?;
    let fields = patch.fields();
    let updated = state
        .store
        .update_customer(company.id, &id, patch, now)
        .await?;
    tracing::info!(customer.id = %updated.id, customer.fields = ?fields, "customer updated");
    Ok(Json(view(&state, &company, updated).await?))
}

/// One page of `GET /customers`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Page {
    data: Vec<Customer>,
    next_cursor: Option<String>,
}

/// `GET /customers`.
#[utoipa::path(get, path = "/customers", tag = "customers",
    params(
        ("isTest" = Option<bool>, Query, description = "Only test (true) or real (false) customers"),
        ("doNotCall" = Option<bool>, Query, description = "Filter on doNotCall"),
        ("after" = Option<String>, Query, description = "nextCursor of the previous page"),
        ("limit" = Option<u32>, Query, description = "Page size, 1-1000 (default 50)"),
    ),
    responses((status = 200, description = "One page, in creation order", body = crate::openapi::CustomerPage)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    Extension(company): Extension<Company>,
    RawQuery(query): RawQuery,
) -> Result<Json<Page>, ApiError> {
    let params = ListParams::parse(query.as_deref())?;
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
    fn parse(query: Option<&str>) -> Result<ListParams, ApiError> {
        let mut params = ListParams {
            filter: CustomerFilter::default(),
            after: None,
            limit: DEFAULT_PAGE,
        };
        for (name, value) in query::pairs(query)? {
            match name.as_str() {
                "isTest" => params.filter.is_test = Some(query::boolean(&name, &value)?),
                "doNotCall" => params.filter.do_not_call = Some(query::boolean(&name, &value)?),
                "after" => params.after = Some(query::seq_cursor(&value)?),
                "limit" => params.limit = query::limit(&value, MAX_PAGE)?,
                _ => return Err(query::unknown(&name)),
            }
        }
        Ok(params)
    }
}

/// `POST /customers/{id}/cancel-communications`: cancels every pending call of the customer
/// and ends its schedule; answers with the count, the ids cancelled and the calls already in
/// flight (a worker holds them: they could not be stopped).
#[utoipa::path(post, path = "/customers/{id}/cancel-communications", tag = "customers",
    params(("id" = String, Path, description = "The company's customer id")),
    responses((status = 200, description = "What was cancelled and what was in flight", body = crate::openapi::CancellationDoc)))]
#[tracing::instrument(skip_all, fields(company.id = %company.id))]
pub(crate) async fn cancel_communications(
    State(state): State<AppState>,
    Extension(company): Extension<Company>,
    Path(id): Path<String>,
) -> Result<Json<Cancellation>, ApiError> {
    let now = state.clock.now();
    let result = state
        .store
        .cancel_communications(company.id, &id, now)
        .await?;
    if let Ok(customer) = id.parse() {
        crate::mirror::cancel(&state, company.id, &customer, &result.cancelled_ids).await;
    }
    tracing::info!(
        customer.id = %id,
        calls.cancelled = result.cancelled,
        calls.in_flight = result.in_flight.len(),
        "communications cancelled"
    );
    Ok(Json(result))
}

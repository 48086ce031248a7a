//! The scheduled-call routes.
//!
//! - `POST /scheduled-calls/{customerId}` with `{"scheduleType", "cadence"?, "startAt"?}`
//!   expands the customer's cadence (the company's task-type catalog; `custom` takes the
//!   request's `cadence` or the catalog's) into lawful instants under the bundled ruleset,
//!   counting the customer's past calls against the caps, and stores it as the customer's
//!   one active schedule (the old one ends, its pending calls are cancelled). It answers 201
//!   with the array of scheduled calls (ids, UTC and local times, statuses, the rules that
//!   moved each one). Slots that produced no call are counted in the `Outdial-Dropped-Slots`
//!   header and kept on the schedule. `?dryRun=true` answers 200 with the same array, ids
//!   `null`, and stores nothing. A do-not-call customer is 409.
//! - `GET /scheduled-calls?customerId=&status=&flag=&after=&limit=`, `GET
//!   /scheduled-calls/{id}` (with its decision trail), `POST /scheduled-calls/{id}/cancel`,
//!   `POST /scheduled-calls/{id}/reschedule` with `{"scheduledAt"}`, checked against the
//!   policy (422 naming the blocking rules and the next lawful instant).

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, http::HeaderName};
use chrono::{DateTime, Utc};
use outdial_domain::policy::{Candidates, Contact, ContactKind, Decision, Ruleset};
use outdial_domain::schedule::{Cadence, CadenceDef, Request, expand};
use outdial_domain::task::ScheduleType;
use outdial_domain::{CallId, CallStatus, Customer, ErrorCode, FieldError, Flag};
use outdial_store::{CallFilter, Company, MAX_CALL_PAGE, NewSchedule, ScheduledCallRecord};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::body::{JsonObject, reject_unknown, typed};
use crate::{ApiError, AppState, mirror, query};

/// The page size when `limit` is not given.
pub const DEFAULT_CALL_PAGE: u32 = 50;

/// The response header counting the cadence slots that produced no call.
pub const DROPPED_SLOTS_HEADER: &str = "outdial-dropped-slots";

/// The response header carrying the new schedule's id.
pub const SCHEDULE_ID_HEADER: &str = "outdial-schedule-id";

/// The body of `POST /scheduled-calls/{customerId}`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ScheduleBody {
    schedule_type: Option<ScheduleType>,
    cadence: Option<CadenceDef>,
    start_at: Option<DateTime<Utc>>,
}

const SCHEDULE_FIELDS: &[&str] = &["scheduleType", "cadence", "startAt"];

/// The body of `POST /scheduled-calls/{id}/reschedule`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RescheduleBody {
    scheduled_at: Option<DateTime<Utc>>,
}

/// 400 for each key of `body` not in `known`.
fn required(field: &str) -> ApiError {
    ApiError::field(FieldError::new(
        field,
        ErrorCode::Required,
        format!("{field} is required"),
    ))
}

/// A scheduled-call id from the path; anything that is not one cannot exist (404).
fn call_id(raw: &str) -> Result<CallId, ApiError> {
    raw.parse::<CallId>().map_err(|_| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "scheduled call not found",
        )
    })
}

/// `POST /scheduled-calls/{customerId}`.
#[utoipa::path(post, path = "/scheduled-calls/{id}", tag = "scheduled calls",
    params(
        ("id" = String, Path, description = "The company's customer id (the seed's {customerId})"),
        ("dryRun" = Option<bool>, Query, description = "Plan without storing (200, ids null)"),
    ),
    request_body(content = crate::openapi::ScheduleRequestDoc, description = "The schedule to create"),
    responses(
        (status = 201, description = "The scheduled calls, in due order", body = Vec<crate::openapi::ScheduledCallDoc>),
        (status = 200, description = "Dry run: the plan, nothing stored", body = Vec<crate::openapi::ScheduledCallDoc>),
    ))]
#[tracing::instrument(skip_all, fields(company.id = %company.id))]
pub(crate) async fn create(
    State(state): State<AppState>,
    Extension(company): Extension<Company>,
    Path(customer_id): Path<String>,
    RawQuery(raw): RawQuery,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let mut dry_run = false;
    for (name, value) in query::pairs(raw.as_deref())? {
        match name.as_str() {
            "dryRun" => dry_run = query::boolean(&name, &value)?,
            _ => return Err(query::unknown(&name)),
        }
    }
    reject_unknown(&body, SCHEDULE_FIELDS)?;
    let body: ScheduleBody = typed(body)?;
    let schedule_type = body.schedule_type.ok_or_else(|| required("scheduleType"))?;
    let now = state.clock.now();
    let start = match body.start_at {
        Some(at) if at < now => {
            return Err(query::bad("startAt", "startAt must not be in the past"));
        }
        Some(at) => at,
        None => now,
    };

    let (customer, history) = state
        .store
        .customer_and_contacts(company.id, &customer_id)
        .await?;
    if customer.do_not_call {
        return Err(do_not_call());
    }
    let catalog = crate::auth::catalog(&company)?;
    let (def, cadence) = match (schedule_type, body.cadence) {
        (ScheduleType::Custom, Some(def)) => {
            let cadence = Cadence::parse(&def)
                .map_err(|e| query::bad("cadence", format!("cadence is invalid: {e}")))?;
            (def, cadence)
        }
        (_, Some(_)) => {
            return Err(query::bad(
                "cadence",
                "cadence is accepted only with scheduleType custom; the other schedule types \
                 use the company's configured cadence",
            ));
        }
        (kind, None) => {
            let (def, cadence) = catalog
                .cadence_with_def(customer.task_type.as_str(), Some(kind))
                .map_err(|e| {
                    let field = if kind == ScheduleType::Custom {
                        "cadence"
                    } else {
                        "scheduleType"
                    };
                    ApiError::field(FieldError::new(
                        field,
                        ErrorCode::InvalidValue,
                        e.to_string(),
                    ))
                })?;
            (def.clone(), cadence.clone())
        }
    };

    let plan = plan(&state, &customer, &history, schedule_type, &cadence, start);
    let dropped = plan.dropped.len();

    if dry_run {
        let preview: Vec<Value> = plan
            .calls
            .iter()
            .map(|p| {
                serde_json::json!({
                    "id": null,
                    "scheduleId": null,
                    "customerId": customer.id.as_str(),
                    "scheduleType": schedule_type,
                    "status": CallStatus::Scheduled,
                    "scheduledAt": p.at,
                    "localTime": p.at.with_timezone(&customer.timezone).to_rfc3339(),
                    "timezone": customer.timezone.name(),
                    "slotAt": p.slot,
                    "attempts": 0,
                    "reasons": p.moved_by,
                    "postProcessingFlags": [],
                })
            })
            .collect();
        let mut response = (StatusCode::OK, Json(preview)).into_response();
        header(&mut response, DROPPED_SLOTS_HEADER, &dropped.to_string());
        return Ok(response);
    }

    let created = commit_plan(state, &company, &customer, schedule_type, &def, &plan, now).await?;
    let mut response = (StatusCode::CREATED, Json(created.calls)).into_response();
    header(&mut response, DROPPED_SLOTS_HEADER, &dropped.to_string());
    header(
        &mut response,
        SCHEDULE_ID_HEADER,
        &created.schedule_id.to_string(),
    );
    Ok(response)
}

/// Plans `customer`'s calls under `cadence` from `start` (what `POST
/// /customers/{id}/schedule` and schedule sync share).
pub(crate) fn plan(
    state: &AppState,
    customer: &Customer,
    history: &[Contact],
    schedule_type: ScheduleType,
    cadence: &Cadence,
    start: DateTime<Utc>,
) -> outdial_domain::schedule::Plan {
    plan_from(
        &state.rules,
        &customer.candidates(),
        customer,
        history,
        schedule_type,
        cadence,
        start,
    )
}

/// [`plan`] with the customer's candidate locations already resolved.
pub(crate) fn plan_from(
    rules: &Ruleset,
    candidates: &Candidates,
    customer: &Customer,
    history: &[Contact],
    schedule_type: ScheduleType,
    cadence: &Cadence,
    start: DateTime<Utc>,
) -> outdial_domain::schedule::Plan {
    let prepared = rules.prepare(candidates, schedule_type.purpose());
    expand(
        cadence,
        &Request {
            policy: &prepared,
            zone: customer.timezone,
            subject: customer.subject(),
            history,
            start,
        },
    )
}

/// Stores `plan` as `customer`'s active schedule (the previous one's pending calls
/// cancelled in the same transaction) and mirrors both into the queue.
pub(crate) async fn commit_plan(
    state: AppState,
    company: &Company,
    customer: &Customer,
    schedule_type: ScheduleType,
    def: &CadenceDef,
    plan: &outdial_domain::schedule::Plan,
    now: DateTime<Utc>,
) -> Result<outdial_store::CreatedSchedule, ApiError> {
    let created = state
        .store
        .create_schedule(
            company.id,
            &NewSchedule {
                customer_id: &customer.id,
                schedule_type,
                task_type: customer.task_type.as_str(),
                loan_id: customer.loan_id.as_deref(),
                cadence: def,
                ruleset: &state.rules.version,
                zone: customer.timezone,
                plan,
            },
            now,
        )
        .await
        .map_err(|e| match e {
            outdial_store::Error::DoNotCall => do_not_call(),
            other => other.into(),
        })?;
    tracing::debug!(
        customer.id = %customer.id,
        schedule.id = %created.schedule_id,
        schedule.calls = created.calls.len(),
        schedule.stored = created.stored,
        schedule.dropped = plan.dropped.len(),
        schedule.cancelled = created.cancelled.len(),
        "schedule created"
    );
    // The calls stored as rows; the rest of the plan reaches the queue when a worker
    // stores it, ahead of its time.
    let due: Vec<(CallId, DateTime<Utc>)> = created.calls[..created.stored]
        .iter()
        .map(|c| (c.id, c.scheduled_at))
        .collect();
    mirror::cancel(&state, company.id, &customer.id, &created.cancelled).await;
    mirror::enqueue(&state, company.id, &customer.id, &due).await;
    Ok(created)
}

fn header(response: &mut Response, name: &'static str, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        response
            .headers_mut()
            .insert(HeaderName::from_static(name), value);
    }
}

pub(crate) fn do_not_call() -> ApiError {
    let mut e = ApiError::field(FieldError::new(
        "doNotCall",
        ErrorCode::InvalidValue,
        "the customer is marked doNotCall: no calls may be scheduled",
    ));
    e.status = StatusCode::CONFLICT;
    e.code = "do_not_call";
    e.message = "the customer is marked doNotCall: no calls may be scheduled".to_owned();
    e
}

/// One page of `GET /scheduled-calls`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Page {
    data: Vec<ScheduledCallRecord>,
    next_cursor: Option<String>,
}

/// `GET /scheduled-calls`.
#[utoipa::path(get, path = "/scheduled-calls", tag = "scheduled calls",
    params(
        ("customerId" = Option<String>, Query, description = "One customer's calls"),
        ("status" = Option<String>, Query, description = "A call status, e.g. scheduled"),
        ("flag" = Option<String>, Query, description = "Calls whose attempts reported this post-processing flag"),
        ("after" = Option<String>, Query, description = "nextCursor of the previous page"),
        ("limit" = Option<u32>, Query, description = "Page size, 1-1000 (default 50)"),
    ),
    responses((status = 200, description = "One page, in creation order", body = crate::openapi::ScheduledCallPage)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    Extension(company): Extension<Company>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Page>, ApiError> {
    let mut filter = CallFilter::default();
    let mut after = None;
    let mut limit = DEFAULT_CALL_PAGE;
    for (name, value) in query::pairs(raw.as_deref())? {
        match name.as_str() {
            "customerId" => {
                if value.is_empty() || value.len() > 255 {
                    return Err(query::bad(&name, "customerId must be 1-255 characters"));
                }
                filter.customer_id = Some(value);
            }
            "status" => {
                let status = value.parse::<CallStatus>().map_err(|_| {
                    let all: Vec<&str> = CallStatus::ALL.iter().map(|s| s.as_str()).collect();
                    query::bad(&name, format!("status must be one of {}", all.join(", ")))
                })?;
                filter.status = Some(status);
            }
            "flag" => {
                if value.trim().is_empty() || value.len() > 64 {
                    return Err(query::bad(&name, "flag must be 1-64 characters"));
                }
                filter.flag = Some(Flag::from(value.as_str()));
            }
            "after" => after = Some(query::seq_cursor(&value)?),
            "limit" => limit = query::limit(&value, MAX_CALL_PAGE)?,
            _ => return Err(query::unknown(&name)),
        }
    }
    let (data, next) = state
        .store
        .list_scheduled_calls(company.id, &filter, after, limit)
        .await?;
    Ok(Json(Page {
        data,
        next_cursor: next.map(|seq| seq.to_string()),
    }))
}

/// `GET /scheduled-calls/{id}`.
#[utoipa::path(get, path = "/scheduled-calls/{id}", tag = "scheduled calls",
    params(("id" = String, Path, description = "The scheduled call's id")),
    responses((status = 200, description = "The call with its decision trail", body = crate::openapi::ScheduledCallDoc)))]
pub(crate) async fn show(
    State(state): State<AppState>,
    Extension(company): Extension<Company>,
    Path(id): Path<String>,
) -> Result<Json<ScheduledCallRecord>, ApiError> {
    let id = call_id(&id)?;
    Ok(Json(state.store.scheduled_call(company.id, id).await?))
}

/// 409 for a call that is no longer pending.
fn not_pending(e: outdial_store::Error, action: &str) -> ApiError {
    match e {
        outdial_store::Error::NotPending { status } => ApiError::new(
            StatusCode::CONFLICT,
            "not_pending",
            format!(
                "the scheduled call is {status}: only a scheduled call can be {action}{}",
                if matches!(status, CallStatus::Dialing | CallStatus::InProgress) {
                    " (it is in flight and cannot be stopped)"
                } else {
                    ""
                }
            ),
        ),
        other => other.into(),
    }
}

/// `POST /scheduled-calls/{id}/cancel`.
#[utoipa::path(post, path = "/scheduled-calls/{id}/cancel", tag = "scheduled calls",
    params(("id" = String, Path, description = "The scheduled call's id")),
    responses((status = 200, description = "The cancelled call", body = crate::openapi::ScheduledCallDoc)))]
#[tracing::instrument(skip_all, fields(company.id = %company.id))]
pub(crate) async fn cancel(
    State(state): State<AppState>,
    Extension(company): Extension<Company>,
    Path(id): Path<String>,
) -> Result<Json<ScheduledCallRecord>, ApiError> {
    let id = call_id(&id)?;
    let now = state.clock.now();
    let record = state
        .store
        .cancel_scheduled_call(company.id, id, now)
        .await
        .map_err(|e| not_pending(e, "cancelled"))?;
    if let Ok(customer) = record.customer_id.parse() {
        mirror::cancel(&state, company.id, &customer, &[id]).await;
    }
    tracing::info!(call.id = %id, "scheduled call cancelled");
    Ok(Json(record))
}

/// `POST /scheduled-calls/{id}/reschedule`.
#[utoipa::path(post, path = "/scheduled-calls/{id}/reschedule", tag = "scheduled calls",
    params(("id" = String, Path, description = "The scheduled call's id")),
    request_body(content = crate::openapi::RescheduleDoc, description = "The new time"),
    responses((status = 200, description = "The moved call", body = crate::openapi::ScheduledCallDoc)))]
#[tracing::instrument(skip_all, fields(company.id = %company.id))]
pub(crate) async fn reschedule(
    State(state): State<AppState>,
    Extension(company): Extension<Company>,
    Path(id): Path<String>,
    JsonObject(body): JsonObject,
) -> Result<Json<ScheduledCallRecord>, ApiError> {
    let id = call_id(&id)?;
    reject_unknown(&body, &["scheduledAt"])?;
    let body: RescheduleBody = typed(body)?;
    let at = body.scheduled_at.ok_or_else(|| required("scheduledAt"))?;
    let now = state.clock.now();
    if at < now {
        return Err(query::bad(
            "scheduledAt",
            "scheduledAt must not be in the past",
        ));
    }
    let record = state.store.scheduled_call(company.id, id).await?;
    if record.status != CallStatus::Scheduled {
        return Err(not_pending(
            outdial_store::Error::NotPending {
                status: record.status,
            },
            "rescheduled",
        ));
    }
    let customer = state
        .store
        .customer(company.id, &record.customer_id)
        .await?;
    if customer.do_not_call {
        return Err(do_not_call());
    }
    let history = reschedule_history(&state, &company, &customer, id, at).await?;
    let prepared = state
        .rules
        .prepare(&customer.candidates(), record.schedule_type.purpose());
    if let Decision::Deny {
        blocks,
        next_allowed,
        ..
    } = prepared.decide(at, &customer.subject(), &history)
    {
        let rules: Vec<String> = blocks.iter().map(|b| b.rule.to_string()).collect();
        let next = next_allowed.map_or_else(
            || "none within the search horizon".to_owned(),
            |t| t.to_rfc3339(),
        );
        let message = format!(
            "scheduledAt is not a lawful time for this customer (blocked by {}); the next \
             lawful instant is {next}",
            rules.join(", ")
        );
        let mut e = ApiError::field(FieldError::new(
            "scheduledAt",
            ErrorCode::InvalidValue,
            message.clone(),
        ));
        e.status = StatusCode::UNPROCESSABLE_ENTITY;
        e.code = "not_lawful";
        e.message = message;
        return Err(e);
    }
    let record = state
        .store
        .reschedule_call(company.id, id, at, now)
        .await
        .map_err(|e| not_pending(e, "rescheduled"))?;
    mirror::enqueue(&state, company.id, &customer.id, &[(id, at)]).await;
    tracing::info!(call.id = %id, "scheduled call rescheduled");
    Ok(Json(record))
}

/// The contacts a rescheduled call is checked against: the customer's placed calls and
/// the other pending calls due before the new time (they will be attempts by then).
async fn reschedule_history(
    state: &AppState,
    company: &Company,
    customer: &Customer,
    moving: CallId,
    at: DateTime<Utc>,
) -> Result<Vec<Contact>, ApiError> {
    let mut history = state
        .store
        .contacts(company.id, customer.id.as_str())
        .await?;
    let pending = state
        .store
        .pending_due_times(company.id, customer.id.as_str())
        .await?;
    history.extend(
        pending
            .into_iter()
            .filter(|(id, due)| *id != moving && *due < at)
            .map(|(_, due)| Contact {
                at: due,
                debt: customer.loan_id.clone(),
                number: Some(customer.phone.as_e164().to_owned()),
                kind: ContactKind::Placed,
            }),
    );
    history.sort_by_key(|c| c.at);
    Ok(history)
}

//! `sync: true` and schedule sync: a customer read from the company's LMS.
//!
//! `POST /customers` with `sync: true` checks the request's own fields, reads the customer
//! and its loans from the LMS (nothing is stored before that succeeds), fills each missing
//! field from the LMS (the caller's values win, see `outdial_domain::sync`), resolves a
//! missing `timezone` from the ZIP code, validates the merged customer exactly like a normal
//! create (a 400 says which values came from the LMS), picks the loans (`loanIds`: only
//! those, each of which the LMS must have, else 422; absent: all) and stores customer,
//! loans and the sync note in one transaction.
//!
//! `POST /customers/{id}/schedule-sync` re-reads the customer from the LMS (unless
//! `?sync=false` or the company has none), applies the LMS's values, replaces every pending
//! call with the schedule of the customer's task type, and lists calls in flight.

use axum::Extension;
use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use outdial_domain::geo::Geo;
use outdial_domain::sync::{LMS_FIELDS, merge, zone_from_zip};
use outdial_domain::{Customer, CustomerInput, CustomerRef, ErrorCode, FieldError, Violations};
use outdial_lms::{Loan, Record};
use outdial_store::{Company, InFlight, NewLoan, SyncNote};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::body::typed;
use crate::{ApiError, AppState, lms, query};

/// A customer ready to store.
#[derive(Debug)]
pub(crate) struct Synced {
    pub customer: Customer,
    pub loans: Vec<NewLoan>,
    pub note: SyncNote,
}

/// Reads customer `body.id` from the company's LMS and builds the customer to create.
pub(crate) async fn prepare(
    state: &AppState,
    company: &Company,
    body: Map<String, Value>,
) -> Result<Synced, ApiError> {
    // The request's own types and id first: nothing is fetched for a request that cannot
    // succeed.
    let input: CustomerInput = typed(body.clone())?;
    let id = match input.id.as_deref() {
        None => return Err(ApiError::field(FieldError::required("id"))),
        Some(id) => CustomerRef::new(id).map_err(|e| ApiError::field(e.at("id")))?,
    };
    let connection = lms::connection(state, company).await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            "lms_not_configured",
            "sync: true reads the customer from the company's LMS, and it has none: \
             PUT /lms sets one, or send the customer's fields with sync false",
        )
    })?;
    let record = lms::fetch(state, company, &connection, id.as_str()).await?;
    let now = state.clock.now();
    let task_types = crate::auth::catalog(company)?.task_types();
    build(body, record, &connection.host(), &task_types, now)
}

/// The merge, zone resolution, validation and loan choice of [`prepare`], without I/O.
fn build(
    request: Map<String, Value>,
    record: Record,
    host: &str,
    task_types: &[outdial_domain::task::TaskType],
    now: DateTime<Utc>,
) -> Result<Synced, ApiError> {
    let merged = merge(&request, &record.customer);
    let mut body = merged.body;
    let mut timezone_candidates = None;
    if body.get("timezone").is_none_or(Value::is_null)
        && let Some(zip) = body.get("zipCode").and_then(Value::as_str)
        && let Some(choice) = zone_from_zip(zip, Geo::us(), now)
    {
        body.insert("timezone".into(), Value::from(choice.zone.name()));
        timezone_candidates = Some(
            choice
                .candidates
                .iter()
                .map(|z| z.name().to_owned())
                .collect(),
        );
    }
    let from_lms = merged.from_lms;
    let explain = |e: ApiError| explain(e, &request, &from_lms, host);
    let input: CustomerInput = typed(body).map_err(explain)?;
    let mut customer = input
        .validate(task_types, now.date_naive())
        .map_err(|v| explain(ApiError::invalid(v)))?;

    let chosen: Vec<&Loan> = if customer.loan_ids.is_empty() {
        record.loans.iter().collect()
    } else {
        let mut chosen = Vec::with_capacity(customer.loan_ids.len());
        for (i, wanted) in customer.loan_ids.iter().enumerate() {
            match record.loans.iter().find(|l| l.id == *wanted) {
                Some(loan) => chosen.push(loan),
                None => {
                    return Err(unknown_loan(
                        format!("loanIds[{i}]"),
                        format!("the LMS at {host} has no loan {wanted} for this customer"),
                    ));
                }
            }
        }
        chosen
    };
    match customer.loan_id.as_deref() {
        Some(reference) if !record.loans.iter().any(|l| l.is(reference)) => {
            return Err(unknown_loan(
                "loanId".to_owned(),
                format!(
                    "the LMS at {host} has no loan {reference} for this customer (loanId names \
                     a loan by its loanId or its integer id)"
                ),
            ));
        }
        Some(_) => {}
        // One loan: the customer's calls are about that debt.
        None if chosen.len() == 1 => customer.loan_id = Some(chosen[0].reference()),
        None => {}
    }
    let loans = chosen.into_iter().map(new_loan).collect();
    Ok(Synced {
        customer,
        loans,
        note: SyncNote {
            synced_at: now,
            fields_from_lms: from_lms.iter().map(|f| (*f).to_owned()).collect(),
            timezone_candidates,
        },
    })
}

fn new_loan(l: &Loan) -> NewLoan {
    NewLoan {
        lms_id: l.id,
        reference: l.loan_id.clone(),
        status: l.status.clone(),
        balance_cents: l.balance_cents,
        due_date: l.due_date,
        metadata: l.metadata.clone(),
    }
}

fn unknown_loan(field: String, message: String) -> ApiError {
    let mut e = ApiError::field(FieldError::new(field, ErrorCode::InvalidValue, message));
    e.status = StatusCode::UNPROCESSABLE_ENTITY;
    e.code = "unknown_loan";
    e
}

/// Says, on each field error, where the value came from: the LMS, or nowhere.
fn explain(e: ApiError, request: &Map<String, Value>, from_lms: &[&str], host: &str) -> ApiError {
    if e.fields.is_empty() {
        return e;
    }
    let mut v = Violations::new();
    for mut f in e.fields {
        let root = f.field.split(['[', '.']).next().unwrap_or_default();
        if from_lms.contains(&root) {
            f.message = format!("{} (this value came from the LMS at {host})", f.message);
        } else if f.code == ErrorCode::Required
            && LMS_FIELDS.contains(&root)
            && request.get(root).is_none_or(Value::is_null)
        {
            let extra = if root == "timezone" {
                ", and no ZIP code it could be resolved from"
            } else {
                ""
            };
            f.message = format!(
                "{} (neither the request nor the LMS at {host} gave it{extra})",
                f.message
            );
        }
        v.push(f);
    }
    let mut out = ApiError::invalid(v);
    out.status = e.status;
    out.code = e.code;
    out
}

/// The answer to `POST /customers/{id}/schedule-sync`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ScheduleSync {
    /// Whether a schedule was stored (always true on 200).
    schedule_created: bool,
    #[schema(value_type = String)]
    schedule_id: outdial_domain::ScheduleId,
    /// Calls in the new schedule.
    tasks_created: usize,
    /// Pending calls cancelled.
    existing_tasks_removed: usize,
    /// Calls a worker holds: listed, not touched.
    #[schema(value_type = Vec<Object>)]
    in_flight: Vec<InFlight>,
    /// Whether the customer was re-read from the LMS first.
    synced_from_lms: bool,
}

/// `POST /customers/{id}/schedule-sync`.
#[utoipa::path(post, path = "/customers/{id}/schedule-sync", tag = "customers",
    params(
        ("id" = String, Path, description = "The company's customer id"),
        ("sync" = Option<bool>, Query, description = "Re-read the customer from the LMS first (default true when the company has one)"),
    ),
    responses((status = 200, description = "The new schedule's size, what it replaced and what is in flight", body = ScheduleSync)))]
#[tracing::instrument(skip_all, fields(company.id = %company.id))]
pub(crate) async fn schedule_sync(
    State(state): State<AppState>,
    Extension(company): Extension<Company>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<ScheduleSync>, ApiError> {
    let mut sync = true;
    for (name, value) in query::pairs(raw.as_deref())? {
        match name.as_str() {
            "sync" => sync = query::boolean(&name, &value)?,
            _ => return Err(query::unknown(&name)),
        }
    }
    let stored = state.store.customer(company.id, &id).await?;
    let connection = if sync {
        lms::connection(&state, &company).await?
    } else {
        None
    };
    let synced_from_lms = connection.is_some();
    if let Some(connection) = connection {
        let record = lms::fetch(&state, &company, &connection, &id).await?;
        let now = state.clock.now();
        let task_types = crate::auth::catalog(&company)?.task_types();
        // Every field the LMS returns replaces the stored one.
        let merged = merge(&Map::new(), &record.customer);
        let host = connection.host();
        let patch = crate::patch::merge(&stored, merged.body, &task_types, now.date_naive())
            .map_err(|e| explain(e, &Map::new(), &merged.from_lms, &host))?;
        state
            .store
            .update_customer(company.id, &id, patch, now)
            .await?;
        let loans: Vec<NewLoan> = record
            .loans
            .iter()
            .filter(|l| stored.loan_ids.is_empty() || stored.loan_ids.contains(&l.id))
            .map(new_loan)
            .collect();
        let note = SyncNote {
            synced_at: now,
            fields_from_lms: merged.from_lms.iter().map(|f| (*f).to_owned()).collect(),
            timezone_candidates: None,
        };
        state
            .store
            .record_sync(company.id, &id, &loans, &note, now)
            .await?;
    }

    let (customer, history) = state.store.customer_and_contacts(company.id, &id).await?;
    if customer.do_not_call {
        return Err(crate::scheduled_calls::do_not_call());
    }
    let catalog = crate::auth::catalog(&company)?;
    let task = catalog.get(customer.task_type.as_str()).map_err(|e| {
        ApiError::field(FieldError::new(
            "taskType",
            ErrorCode::InvalidValue,
            e.to_string(),
        ))
    })?;
    let schedule_type = task.schedule;
    let (def, cadence) = catalog
        .cadence_with_def(customer.task_type.as_str(), None)
        .map_err(|e| {
            ApiError::field(FieldError::new(
                "taskType",
                ErrorCode::InvalidValue,
                e.to_string(),
            ))
        })?;
    let now = state.clock.now();
    let plan =
        crate::scheduled_calls::plan(&state, &customer, &history, schedule_type, cadence, now);
    let def = def.clone();
    let created = crate::scheduled_calls::commit_plan(
        state.clone(),
        &company,
        &customer,
        schedule_type,
        &def,
        &plan,
        now,
    )
    .await?;
    tracing::info!(
        customer.id = %id,
        schedule.calls = created.calls.len(),
        calls.cancelled = created.cancelled.len(),
        calls.in_flight = created.in_flight.len(),
        synced_from_lms,
        "schedule synced"
    );
    Ok(Json(ScheduleSync {
        schedule_created: true,
        schedule_id: created.schedule_id,
        tasks_created: created.calls.len(),
        existing_tasks_removed: created.cancelled.len(),
        in_flight: created.in_flight,
        synced_from_lms,
    }))
}

//! The import runner: takes a waiting job under a lease and imports its rows in chunks,
//! one transaction each (every `outdial work` runs it; `outdial import` runs its own jobs).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use outdial_domain::schedule::{Cadence, CadenceDef};
use outdial_domain::task::ScheduleType;
use outdial_domain::{CallId, Customer, CustomerInput, CustomerRef, ErrorCode, FieldError};
use outdial_store::{
    Company, ImportJob, NewLoan, NewSchedule, Outcome, RowOutcome, Stored, SyncNote,
};
use serde_json::{Map, Value};
use tokio::sync::watch;
use uuid::Uuid;

use super::MALFORMED;
use crate::body::typed;
use crate::{ApiError, AppState};

/// How [`run`] works through jobs.
#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// This process's name in the job's lease (host and pid).
    pub owner: String,
    /// How long a job stays with this process without a word from it; a process that
    /// died gives its jobs up after this.
    pub lease: Duration,
    /// Rows per transaction.
    pub chunk: usize,
    /// How long to wait before looking for a job again when there was none.
    pub idle: Duration,
    /// Rows of one chunk read from the LMS at once.
    pub lms_concurrency: usize,
}

impl RunnerConfig {
    /// 30 s leases, 1,000-row chunks, a look for work every second.
    pub fn new(owner: impl Into<String>) -> RunnerConfig {
        RunnerConfig {
            owner: owner.into(),
            lease: Duration::from_secs(30),
            chunk: 1000,
            idle: Duration::from_secs(1),
            lms_concurrency: 16,
        }
    }
}

/// Imports jobs until `shutdown` turns true. On shutdown the chunk in progress is finished
/// and the job given back, so another process takes it over at once.
pub async fn run(state: AppState, config: RunnerConfig, mut shutdown: watch::Receiver<bool>) {
    loop {
        if *shutdown.borrow() {
            return;
        }
        let worked = match run_once(&state, &config, &shutdown).await {
            Ok(worked) => worked,
            Err(e) => {
                tracing::warn!(error = %e, "import runner failed; trying again");
                false
            }
        };
        if !worked {
            tokio::select! {
                _ = tokio::time::sleep(config.idle) => {}
                _ = shutdown.changed() => {}
            }
        }
    }
}

/// Takes one job (if any is waiting) and works it until it is done, its lease is lost or
/// `shutdown` turns true. False: there was no job.
pub async fn run_once(
    state: &AppState,
    config: &RunnerConfig,
    shutdown: &watch::Receiver<bool>,
) -> Result<bool, outdial_store::Error> {
    work(state, config, shutdown, None).await
}

/// [`run_once`] for job `job` only (`outdial import` runs its own jobs): false when the
/// job is done or another process holds it.
pub async fn run_job(
    state: &AppState,
    config: &RunnerConfig,
    shutdown: &watch::Receiver<bool>,
    job: Uuid,
) -> Result<bool, outdial_store::Error> {
    work(state, config, shutdown, Some(job)).await
}

async fn work(
    state: &AppState,
    config: &RunnerConfig,
    shutdown: &watch::Receiver<bool>,
    only: Option<Uuid>,
) -> Result<bool, outdial_store::Error> {
    let lease = chrono::Duration::from_std(config.lease).unwrap_or(chrono::Duration::seconds(30));
    let now = state.clock.now();
    let Some(job) = state
        .store
        .claim_import(&config.owner, lease, now, only)
        .await?
    else {
        return Ok(false);
    };
    tracing::info!(import.id = %job.id, import.rows = job.total, import.attempt = job.attempts, "import started");
    let company = state.store.company(job.company).await?;
    // Rows up to here have outcomes (or are being retried one by one below).
    let mut cursor = None;
    loop {
        if *shutdown.borrow() {
            state.store.release_import(job.id, &config.owner).await?;
            tracing::info!(import.id = %job.id, "import handed back on shutdown");
            return Ok(true);
        }
        let rows = state
            .store
            .import_rows_left(job.id, cursor, config.chunk.max(1) as i64)
            .await?;
        cursor = rows.last().map(|(n, _)| *n).or(cursor);
        if rows.is_empty() {
            let now = state.clock.now();
            if state
                .store
                .finish_import(job.id, &config.owner, now)
                .await?
            {
                let status = state.store.import_status(job.company, job.id).await?;
                tracing::info!(
                    import.id = %job.id,
                    import.created = status.counts.created,
                    import.updated = status.counts.updated,
                    import.unchanged = status.counts.unchanged,
                    import.rejected = status.counts.rejected,
                    import.scheduled = status.counts.scheduled,
                    "import done"
                );
            }
            return Ok(true);
        }
        let until = state.clock.now() + lease;
        if !state
            .store
            .renew_import(job.id, &config.owner, until)
            .await?
        {
            tracing::warn!(import.id = %job.id, "import lease lost; another process has the job");
            return Ok(true);
        }
        let prepared = prepare_rows(state, &company, &job, rows, config.lms_concurrency).await;
        match import_chunk(state, &company, &job, &config.owner, lease, &prepared).await {
            Ok(Chunk::Done) => {}
            Ok(Chunk::LeaseLost) => {
                tracing::warn!(import.id = %job.id, "import lease lost; another process has the job");
                return Ok(true);
            }
            Err(e) if e.is_transient() => return Err(e),
            Err(e) => {
                // One row the database refuses must not stop the others: one by one, and a
                // row that still fails is rejected.
                tracing::warn!(import.id = %job.id, error = %e, "import chunk failed; importing its rows one by one");
                for row in &prepared {
                    let one = std::slice::from_ref(row);
                    let mut result =
                        import_chunk(state, &company, &job, &config.owner, lease, one).await;
                    if matches!(result, Err(outdial_store::Error::Conflict { .. })) {
                        // Another job stored the same customer meanwhile: it is stored now.
                        result =
                            import_chunk(state, &company, &job, &config.owner, lease, one).await;
                    }
                    match result {
                        Ok(Chunk::Done) => {}
                        Ok(Chunk::LeaseLost) => return Ok(true),
                        Err(e) if e.is_transient() => return Err(e),
                        Err(e) => {
                            tracing::error!(import.id = %job.id, import.row = row.row, error = %e, "import row failed");
                            let failed = Prepared {
                                row: row.row,
                                customer_id: row.customer_id.clone(),
                                work: Work::Rejected(ApiError::new(
                                    StatusCode::INTERNAL_SERVER_ERROR,
                                    "internal_error",
                                    "the row could not be stored; it was not imported",
                                )),
                            };
                            import_chunk(
                                state,
                                &company,
                                &job,
                                &config.owner,
                                lease,
                                std::slice::from_ref(&failed),
                            )
                            .await?;
                        }
                    }
                }
            }
        }
    }
}

/// One row, checked and ready to store.
#[derive(Debug)]
struct Prepared {
    row: i32,
    customer_id: Option<String>,
    work: Work,
}

#[derive(Debug)]
enum Work {
    Store(Box<ToStore>),
    Rejected(ApiError),
}

/// A valid row: the customer and what to store with it.
#[derive(Debug)]
struct ToStore {
    customer: Customer,
    /// Read from the LMS: the loans and the note to store with it.
    synced: Option<(Vec<NewLoan>, SyncNote)>,
    /// The schedule to create, resolved from the company's catalog.
    schedule: Option<(ScheduleType, CadenceDef, Cadence)>,
}

/// Parses, validates and (for `sync: true`) reads from the LMS each row, without touching
/// the database.
async fn prepare_rows(
    state: &AppState,
    company: &Company,
    job: &ImportJob,
    rows: Vec<(i32, Value)>,
    lms_concurrency: usize,
) -> Vec<Prepared> {
    let today = state.clock.now().date_naive();
    let catalog = crate::auth::catalog(company);
    futures_util::stream::iter(rows)
        .map(|(row, body)| {
            let catalog = catalog.clone();
            async move {
                let customer_id = body.get("id").and_then(Value::as_str).map(str::to_owned);
                let work = match prepare_row(state, company, job, catalog, body, today).await {
                    Ok(work) => work,
                    Err(e) => Work::Rejected(e),
                };
                Prepared {
                    row,
                    customer_id,
                    work,
                }
            }
        })
        .buffered(lms_concurrency.max(1))
        .collect()
        .await
}

/// Checks one row as the import would, without storing or fetching anything: `Ok(true)`
/// valid, `Ok(false)` a `sync: true` row (only its id is checked: the rest comes from the
/// LMS when it is imported), `Err` the error its import would record.
pub fn check_row(
    company: &Company,
    schedule: Option<ScheduleType>,
    body: Value,
    today: chrono::NaiveDate,
) -> Result<bool, ApiError> {
    let catalog = crate::auth::catalog(company)?;
    let body = row_object(body)?;
    if body.get("sync").and_then(Value::as_bool) == Some(true) {
        match body.get("id").and_then(Value::as_str) {
            None => return Err(ApiError::field(FieldError::required("id"))),
            Some(id) => CustomerRef::new(id).map_err(|e| ApiError::field(e.at("id")))?,
        };
        return Ok(false);
    }
    let customer = validate_plain(&catalog, body, today)?;
    resolve_schedule(&catalog, &customer, schedule)?;
    Ok(true)
}

/// A row's JSON object (a row that is not one is rejected).
fn row_object(body: Value) -> Result<Map<String, Value>, ApiError> {
    match body {
        Value::Object(mut object) => {
            if let Some(Value::String(message)) = object.remove(MALFORMED) {
                return Err(ApiError::malformed_json(message));
            }
            Ok(object)
        }
        _ => Err(ApiError::malformed_json("a row must be a JSON object")),
    }
}

fn validate_plain(
    catalog: &outdial_domain::schedule::Catalog,
    body: Map<String, Value>,
    today: chrono::NaiveDate,
) -> Result<Customer, ApiError> {
    let input: CustomerInput = typed::<CustomerInput>(body)?;
    input
        .validate(&catalog.task_types(), today)
        .map_err(ApiError::invalid)
}

type ScheduleChoice = Option<(ScheduleType, CadenceDef, Cadence)>;

/// The cadence of `kind` for the customer's task type, from the company's catalog.
fn resolve_schedule(
    catalog: &outdial_domain::schedule::Catalog,
    customer: &Customer,
    kind: Option<ScheduleType>,
) -> Result<ScheduleChoice, ApiError> {
    let Some(kind) = kind else {
        return Ok(None);
    };
    let (def, cadence) = catalog
        .cadence_with_def(customer.task_type.as_str(), Some(kind))
        .map_err(|e| {
            ApiError::field(FieldError::new(
                "schedule",
                ErrorCode::InvalidValue,
                e.to_string(),
            ))
        })?;
    Ok(Some((kind, def.clone(), cadence.clone())))
}

async fn prepare_row(
    state: &AppState,
    company: &Company,
    job: &ImportJob,
    catalog: Result<std::sync::Arc<outdial_domain::schedule::Catalog>, ApiError>,
    body: Value,
    today: chrono::NaiveDate,
) -> Result<Work, ApiError> {
    let catalog = catalog?;
    let body = row_object(body)?;
    let (customer, synced) = if body.get("sync").and_then(Value::as_bool) == Some(true) {
        let s = crate::sync::prepare(state, company, body).await?;
        (s.customer, Some((s.loans, s.note)))
    } else {
        (validate_plain(&catalog, body, today)?, None)
    };
    let schedule = resolve_schedule(&catalog, &customer, job.schedule_type)?;
    Ok(Work::Store(Box::new(ToStore {
        customer,
        synced,
        schedule,
    })))
}

enum Chunk {
    Done,
    LeaseLost,
}

/// Stores `rows` and their outcomes in one transaction, then enqueues the new calls.
///
/// Customers the company does not have yet (the common case of an import) are inserted,
/// and their first schedules stored, a statement for all of them; a stored customer (or an
/// id repeated within the chunk) goes through the single-customer path.
async fn import_chunk(
    state: &AppState,
    company: &Company,
    job: &ImportJob,
    owner: &str,
    lease: chrono::Duration,
    rows: &[Prepared],
) -> Result<Chunk, outdial_store::Error> {
    let now = state.clock.now();
    let Some(mut chunk) = state
        .store
        .begin_import_chunk(job, owner, now + lease)
        .await?
    else {
        return Ok(Chunk::LeaseLost);
    };
    let mut outcomes: Vec<Outcome> = Vec::with_capacity(rows.len());
    // Valid rows, each marked whether it is its customer id's first row in the chunk.
    let mut valid: Vec<(&Prepared, &ToStore, bool)> = Vec::with_capacity(rows.len());
    let mut first_ids: HashSet<&str> = HashSet::new();
    for prepared in rows {
        match &prepared.work {
            Work::Rejected(e) => outcomes.push(Outcome {
                row: prepared.row,
                outcome: RowOutcome::Rejected,
                customer_id: prepared.customer_id.clone(),
                scheduled: false,
                error: Some(serde_json::json!({
                    "code": e.code,
                    "message": e.message,
                    "fields": e.fields,
                })),
            }),
            Work::Store(s) => {
                let first = first_ids.insert(s.customer.id.as_str());
                valid.push((prepared, s, first));
            }
        }
    }
    // The first row of each plain customer is inserted unless the company has that id;
    // the stored ones, and every `sync: true` customer, are then read and locked.
    let plain: Vec<&Customer> = valid
        .iter()
        .filter(|(_, s, first)| *first && s.synced.is_none())
        .map(|(_, s, _)| &s.customer)
        .collect();
    let inserted = chunk.insert_many(&plain, now).await?;
    let ids: Vec<String> = valid
        .iter()
        .filter(|(_, s, first)| *first && !inserted.contains(s.customer.id.as_str()))
        .map(|(_, s, _)| s.customer.id.as_str().to_owned())
        .collect();
    let mut stored: HashMap<String, Stored> = chunk.stored(&ids).await?;
    // New customers (inserted above, or synced and not stored); the other rows, in order,
    // update stored customers or repeat an id of the chunk.
    let mut fresh: Vec<(&Prepared, &ToStore)> = Vec::new();
    let mut later: Vec<(&Prepared, &ToStore)> = Vec::new();
    for &(prepared, s, first) in &valid {
        let id = s.customer.id.as_str();
        let new =
            first && (inserted.contains(id) || (s.synced.is_some() && !stored.contains_key(id)));
        if new {
            fresh.push((prepared, s));
        } else {
            later.push((prepared, s));
        }
    }

    // Synced new customers, their loans, and every new customer's first schedule.
    let mut due: Vec<(CustomerRef, CallId, DateTime<Utc>)> = Vec::new();
    let mut plans = Vec::new();
    let mut memo = super::plans::FreshPlans::new(&state.rules, now);
    for (_, s) in &fresh {
        if let Some((loans, note)) = &s.synced {
            // The LMS's loans are the customer's loan rows (as with POST /customers).
            chunk.insert_synced(&s.customer, loans, note, now).await?;
        }
        if let Some((kind, def, cadence)) = &s.schedule
            && !s.customer.do_not_call
        {
            plans.push(memo.plan(&s.customer, *kind, def, cadence));
        }
    }
    let scheduled_fresh: Vec<&(&Prepared, &ToStore)> = fresh
        .iter()
        .filter(|(_, s)| s.schedule.is_some() && !s.customer.do_not_call)
        .collect();
    let news: Vec<NewSchedule<'_>> = scheduled_fresh
        .iter()
        .zip(&plans)
        .map(|((_, s), plan)| {
            let (kind, def, _) = s.schedule.as_ref().expect("filtered on schedule");
            NewSchedule {
                customer_id: &s.customer.id,
                schedule_type: *kind,
                task_type: s.customer.task_type.as_str(),
                loan_id: s.customer.loan_id.as_deref(),
                cadence: def,
                ruleset: &state.rules.version,
                zone: s.customer.timezone,
                plan,
            }
        })
        .collect();
    let calls = chunk.first_schedules(&news, now).await?;
    for (((_, s), _), calls) in scheduled_fresh.iter().zip(&plans).zip(calls) {
        due.extend(
            calls
                .into_iter()
                .map(|(id, at)| (s.customer.id.clone(), id, at)),
        );
    }
    for (prepared, s) in &fresh {
        let scheduled = s.schedule.is_some() && !s.customer.do_not_call;
        outcomes.push(Outcome {
            row: prepared.row,
            outcome: RowOutcome::Created,
            customer_id: Some(s.customer.id.as_str().to_owned()),
            scheduled,
            error: None,
        });
        stored.insert(
            s.customer.id.as_str().to_owned(),
            Stored {
                customer: s.customer.clone(),
                scheduled,
                contacts: Vec::new(),
            },
        );
    }

    // Stored customers, and ids repeated within the chunk, one at a time and in order.
    for (prepared, s) in later {
        let id = s.customer.id.as_str().to_owned();
        let Some(entry) = stored.get_mut(&id) else {
            // Not inserted above, yet not found: nothing deletes customers, so this is
            // another transaction's row seen half-way; the row is tried again on its own.
            return Err(outdial_store::Error::Conflict {
                what: "customer".into(),
            });
        };
        let mut merged = s.customer.clone();
        // An import never clears doNotCall: a consumer's request outlives any file.
        merged.do_not_call |= entry.customer.do_not_call;
        let outcome = if merged == entry.customer {
            RowOutcome::Unchanged
        } else {
            chunk.update(&merged, now).await?;
            RowOutcome::Updated
        };
        if let Some((loans, note)) = &s.synced {
            chunk.record_sync(&id, loans, note, now).await?;
        }
        entry.customer = merged.clone();
        let mut scheduled = false;
        if let Some((kind, def, cadence)) = &s.schedule
            && !entry.scheduled
            && !merged.do_not_call
        {
            let plan =
                crate::scheduled_calls::plan(state, &merged, &entry.contacts, *kind, cadence, now);
            let created = chunk
                .schedule(
                    &NewSchedule {
                        customer_id: &merged.id,
                        schedule_type: *kind,
                        task_type: merged.task_type.as_str(),
                        loan_id: merged.loan_id.as_deref(),
                        cadence: def,
                        ruleset: &state.rules.version,
                        zone: merged.timezone,
                        plan: &plan,
                    },
                    now,
                )
                .await?;
            due.extend(
                created
                    .calls
                    .iter()
                    .map(|c| (merged.id.clone(), c.id, c.scheduled_at)),
            );
            entry.scheduled = true;
            scheduled = true;
        }
        outcomes.push(Outcome {
            row: prepared.row,
            outcome,
            customer_id: Some(id),
            scheduled,
            error: None,
        });
    }
    chunk.outcomes(&outcomes).await?;
    chunk.commit().await?;
    let mut tally: HashMap<&'static str, u64> = HashMap::new();
    for o in &outcomes {
        *tally.entry(outcome_name(o.outcome)).or_default() += 1;
    }
    for (outcome, n) in tally {
        metrics::counter!("outdial_import_rows_total", "outcome" => outcome).increment(n);
    }
    crate::mirror::enqueue_calls(state, company.id, &due).await;
    Ok(Chunk::Done)
}

fn outcome_name(o: RowOutcome) -> &'static str {
    match o {
        RowOutcome::Created => "created",
        RowOutcome::Updated => "updated",
        RowOutcome::Unchanged => "unchanged",
        RowOutcome::Rejected => "rejected",
    }
}

//! Bulk customer import: `POST /customers/batch` stores the rows as a job and answers 202;
//! [`run`] (in every `outdial work` process) imports them; `GET /customers/batch/{jobId}`
//! and `GET /customers/batch/{jobId}/errors` report.
//!
//! Each row goes through exactly what `POST /customers` does (the same parsing, validation
//! and, with `sync: true`, the LMS), so a rejected row carries the same error the single
//! route would answer, with its row index and customer id. A row whose id is already stored
//! updates that customer (or leaves it unchanged), so re-posting a file creates nothing
//! twice; `doNotCall` is never cleared by an import. With a schedule type, each imported
//! customer without an active schedule gets one (a customer with one keeps it: schedule
//! sync rebuilds it). The job runs in chunks, one transaction each, under a lease (see
//! `outdial_store::import`): exactly once whoever runs it, resumed by any process.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use axum::Extension;
use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use outdial_domain::schedule::{Cadence, CadenceDef};
use outdial_domain::task::ScheduleType;
use outdial_domain::{CallId, Customer, CustomerInput, CustomerRef, ErrorCode, FieldError};
use outdial_store::{
    Company, ImportJob, ImportStatus, MAX_ERROR_PAGE, MAX_IMPORT_ROWS, NewLoan, NewSchedule,
    Outcome, RowError, RowOutcome, Stored, SyncNote,
};
use serde::Serialize;
use serde_json::{Map, Value};
use tokio::sync::watch;
use uuid::Uuid;

use crate::body::typed;
use crate::{ApiError, AppState, query};

/// The largest `POST /customers/batch` body, in bytes (16 MiB: 10,000 rows of 1.6 KiB).
pub const MAX_BATCH_BODY_BYTES: usize = 16 * 1024 * 1024;

/// Rejected rows shown in a job's status (the rest: `GET …/errors`).
const ERRORS_IN_STATUS: u32 = 100;

/// The page size of `GET …/errors` when `limit` is not given.
const DEFAULT_ERROR_PAGE: u32 = 100;

/// The key a row body carries when its NDJSON line did not parse (the line itself is not
/// kept: it may hold personal data that did not validate).
const MALFORMED: &str = "$malformed";

/// The answer to `POST /customers/batch`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Accepted {
    job_id: Uuid,
    state: &'static str,
    total: usize,
    schedule_type: Option<ScheduleType>,
    status_url: String,
}

/// `POST /customers/batch`: a JSON array of customers, `{"customers": [...], "schedule"?}`
/// or NDJSON (one customer per line); `?schedule=` also names the schedule type.
#[utoipa::path(post, path = "/customers/batch", tag = "customers",
    params(("schedule" = Option<String>, Query, description = "Create each imported customer's schedule of this type (verification, collections, custom)")),
    request_body(content = crate::openapi::BatchRequestDoc, description = "Up to 10,000 customers: a JSON array, {\"customers\": [...], \"schedule\"?} or NDJSON"),
    responses((status = 202, description = "Accepted: the job runs on the worker fleet", body = crate::openapi::BatchAcceptedDoc)))]
#[tracing::instrument(skip_all, fields(company.id = %company.id))]
pub(crate) async fn create(
    State(state): State<AppState>,
    Extension(company): Extension<Company>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Response, ApiError> {
    let body = axum::body::to_bytes(body, MAX_BATCH_BODY_BYTES)
        .await
        .map_err(|_| ApiError::too_large(MAX_BATCH_BODY_BYTES))?;
    let mut schedule = None;
    for (name, value) in query::pairs(raw.as_deref())? {
        match name.as_str() {
            "schedule" => schedule = Some(schedule_type("schedule", &Value::from(value))?),
            _ => return Err(query::unknown(&name)),
        }
    }
    let ndjson = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("ndjson") || v.contains("jsonlines"));
    let (rows, in_body) = parse_body(&body, ndjson)?;
    let schedule = match (schedule, in_body) {
        (Some(a), Some(b)) if a != b => {
            return Err(query::bad(
                "schedule",
                "the query and the body name different schedule types",
            ));
        }
        (a, b) => a.or(b),
    };
    if rows.is_empty() {
        return Err(query::bad("customers", "the batch has no customers"));
    }
    // Postgres cannot store a NUL character in jsonb (nor in text): such a row is a
    // rejected row, not a failed batch.
    let rows: Vec<Value> = rows
        .into_iter()
        .enumerate()
        .map(|(i, row)| {
            if has_nul(&row) {
                serde_json::json!({ MALFORMED: format!(
                    "row {i} contains a NUL character (\\u0000), which no field accepts"
                )})
            } else {
                row
            }
        })
        .collect();
    if rows.len() > MAX_IMPORT_ROWS {
        return Err(ApiError::field(FieldError::new(
            "customers",
            ErrorCode::TooMany,
            format!(
                "a batch holds at most {MAX_IMPORT_ROWS} customers ({} sent); split the \
                 file (outdial import does)",
                rows.len()
            ),
        )));
    }
    let now = state.clock.now();
    let job = state
        .store
        .create_import(company.id, "api", schedule, &rows, now)
        .await?;
    tracing::info!(import.id = %job, import.rows = rows.len(), "import queued");
    let status_url = format!("/customers/batch/{job}");
    let mut response = (
        StatusCode::ACCEPTED,
        Json(Accepted {
            job_id: job,
            state: "queued",
            total: rows.len(),
            schedule_type: schedule,
            status_url: status_url.clone(),
        }),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&status_url) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    Ok(response)
}

/// Whether a key or string anywhere in `value` holds a NUL character.
fn has_nul(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(has_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

fn schedule_type(field: &str, value: &Value) -> Result<ScheduleType, ApiError> {
    serde_json::from_value(value.clone()).map_err(|_| {
        query::bad(
            field,
            format!("{field} must be one of verification, collections, custom"),
        )
    })
}

/// The rows of a batch body and the schedule type it names.
fn parse_body(body: &[u8], ndjson: bool) -> Result<(Vec<Value>, Option<ScheduleType>), ApiError> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace()).copied();
    if !ndjson {
        match first {
            Some(b'[') => {
                return match serde_json::from_slice::<Value>(body) {
                    Ok(Value::Array(rows)) => Ok((rows, None)),
                    Ok(_) => Err(ApiError::malformed_json("the batch must be an array")),
                    Err(e) => Err(ApiError::malformed_json(format!(
                        "the batch is not valid JSON: {e}"
                    ))),
                };
            }
            Some(b'{') => {
                if let Ok(Value::Object(mut object)) = serde_json::from_slice::<Value>(body)
                    && object.contains_key("customers")
                {
                    let schedule = match object.remove("schedule") {
                        None | Some(Value::Null) => None,
                        Some(v) => Some(schedule_type("schedule", &v)?),
                    };
                    if let Some(key) = object.keys().find(|k| *k != "customers") {
                        return Err(ApiError::field(FieldError::new(
                            key.as_str(),
                            ErrorCode::UnknownField,
                            format!("{key} is not a field of a batch (customers, schedule)"),
                        )));
                    }
                    return match object.remove("customers") {
                        Some(Value::Array(rows)) => Ok((rows, schedule)),
                        _ => Err(ApiError::field(FieldError::new(
                            "customers",
                            ErrorCode::InvalidType,
                            "customers must be an array of customer objects",
                        ))),
                    };
                }
            }
            None => return Ok((Vec::new(), None)),
            _ => {
                return Err(ApiError::malformed_json(
                    "the batch must be a JSON array, an object with customers, or NDJSON",
                ));
            }
        }
    }
    // NDJSON: one row per non-blank line; a line that does not parse is a rejected row.
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::malformed_json("the batch is not UTF-8 text"))?;
    let rows = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, line)| {
            serde_json::from_str::<Value>(line).unwrap_or_else(
                |e| serde_json::json!({ MALFORMED: format!("row {i} is not valid JSON: {}", e) }),
            )
        })
        .take(MAX_IMPORT_ROWS + 1)
        .collect();
    Ok((rows, None))
}

/// A job's status with its first rejected rows.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct StatusView {
    #[serde(flatten)]
    status: ImportStatus,
    /// The first rejected rows, in row order.
    errors: Vec<RowError>,
    /// More rejected rows than `errors` holds: `GET …/errors` pages them.
    more_errors: bool,
}

fn job_id(raw: &str) -> Result<Uuid, ApiError> {
    raw.parse::<Uuid>()
        .map_err(|_| ApiError::new(StatusCode::NOT_FOUND, "not_found", "import job not found"))
}

/// `GET /customers/batch/{jobId}`.
#[utoipa::path(get, path = "/customers/batch/{jobId}", tag = "customers",
    params(("jobId" = String, Path, description = "The job id POST /customers/batch answered")),
    responses((status = 200, description = "State, counts and the first rejected rows", body = crate::openapi::BatchStatusDoc)))]
pub(crate) async fn show(
    State(state): State<AppState>,
    Extension(company): Extension<Company>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = job_id(&id)?;
    let status = state.store.import_status(company.id, id).await?;
    let (errors, next) = state
        .store
        .import_errors(company.id, id, None, ERRORS_IN_STATUS)
        .await?;
    let view = StatusView {
        status,
        errors,
        more_errors: next.is_some(),
    };
    serde_json::to_value(view)
        .map(Json)
        .map_err(|e| ApiError::internal(&e))
}

/// One page of `GET …/errors`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ErrorPage {
    data: Vec<RowError>,
    next_cursor: Option<String>,
}

/// `GET /customers/batch/{jobId}/errors?after=&limit=`.
#[utoipa::path(get, path = "/customers/batch/{jobId}/errors", tag = "customers",
    params(
        ("jobId" = String, Path, description = "The job id"),
        ("after" = Option<String>, Query, description = "nextCursor of the previous page"),
        ("limit" = Option<u32>, Query, description = "Page size, 1-1000 (default 100)"),
    ),
    responses((status = 200, description = "Rejected rows in row order", body = crate::openapi::BatchErrorPageDoc)))]
pub(crate) async fn errors(
    State(state): State<AppState>,
    Extension(company): Extension<Company>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let id = job_id(&id)?;
    let mut after = None;
    let mut limit = DEFAULT_ERROR_PAGE;
    for (name, value) in query::pairs(raw.as_deref())? {
        match name.as_str() {
            "after" => {
                let n = value
                    .parse::<i32>()
                    .ok()
                    .filter(|n| *n >= 0)
                    .ok_or_else(|| query::bad("after", "after must be a nextCursor"))?;
                after = Some(n);
            }
            "limit" => limit = query::limit(&value, MAX_ERROR_PAGE)?,
            _ => return Err(query::unknown(&name)),
        }
    }
    let (data, next) = state
        .store
        .import_errors(company.id, id, after, limit)
        .await?;
    serde_json::to_value(ErrorPage {
        data,
        next_cursor: next.map(|n| n.to_string()),
    })
    .map(Json)
    .map_err(|e| ApiError::internal(&e))
}

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
    /// 30 s leases, 200-row chunks, a look for work every second.
    pub fn new(owner: impl Into<String>) -> RunnerConfig {
        RunnerConfig {
            owner: owner.into(),
            lease: Duration::from_secs(30),
            chunk: 200,
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
    let ids: Vec<String> = rows
        .iter()
        .filter_map(|r| match &r.work {
            Work::Store(s) => Some(s.customer.id.as_str().to_owned()),
            Work::Rejected(_) => None,
        })
        .collect();
    let mut stored: HashMap<String, Stored> = chunk.stored(&ids).await?;
    let mut outcomes: Vec<Outcome> = Vec::with_capacity(rows.len());
    let mut fresh: Vec<(&Prepared, &ToStore)> = Vec::new();
    let mut later: Vec<(&Prepared, &ToStore)> = Vec::new();
    let mut fresh_ids: HashSet<&str> = HashSet::new();
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
                let id = s.customer.id.as_str();
                if stored.contains_key(id) || fresh_ids.contains(id) {
                    later.push((prepared, s));
                } else {
                    fresh_ids.insert(id);
                    fresh.push((prepared, s));
                }
            }
        }
    }

    // New customers, their loans and first schedules.
    let plain: Vec<&Customer> = fresh
        .iter()
        .filter(|(_, s)| s.synced.is_none())
        .map(|(_, s)| &s.customer)
        .collect();
    chunk.insert_many(&plain, now).await?;
    let mut due: Vec<(CustomerRef, CallId, DateTime<Utc>)> = Vec::new();
    let mut plans = Vec::new();
    for (_, s) in &fresh {
        if let Some((loans, note)) = &s.synced {
            // The LMS's loans are the customer's loan rows (as with POST /customers).
            chunk.insert_synced(&s.customer, loans, note, now).await?;
        }
        if let Some((kind, _, cadence)) = &s.schedule
            && !s.customer.do_not_call
        {
            plans.push(crate::scheduled_calls::plan(
                state,
                &s.customer,
                &[],
                *kind,
                cadence,
                now,
            ));
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
        let entry = stored.get_mut(&id).expect("stored or added above");
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_array_an_object_and_ndjson_all_give_rows() {
        let (rows, s) = parse_body(br#"[{"id":"a"},{"id":"b"}]"#, false).unwrap();
        assert_eq!((rows.len(), s), (2, None));
        let (rows, s) = parse_body(
            br#"{"customers":[{"id":"a"}],"schedule":"collections"}"#,
            false,
        )
        .unwrap();
        assert_eq!((rows.len(), s), (1, Some(ScheduleType::Collections)));
        let (rows, _) = parse_body(b"{\"id\":\"a\"}\n\n{\"id\":\"b\"}\n", false).unwrap();
        assert_eq!(rows.len(), 2);
    }

    #[test]
    fn a_bad_ndjson_line_is_a_row_marked_malformed_not_a_failed_batch() {
        let (rows, _) = parse_body(b"{\"id\":\"a\"}\n{oops\n{\"id\":\"c\"}", true).unwrap();
        assert_eq!(rows.len(), 3);
        let message = rows[1][MALFORMED].as_str().unwrap();
        assert!(message.starts_with("row 1 is not valid JSON"), "{message}");
        assert!(!message.contains("oops"), "the line itself is not kept");
    }

    #[test]
    fn a_nul_character_anywhere_in_a_row_is_found() {
        assert!(has_nul(&serde_json::json!({"a": {"b\0": 1}})));
        assert!(has_nul(&serde_json::json!({"a": ["x", "y\0"]})));
        assert!(!has_nul(
            &serde_json::json!({"a": ["x", 1, null, {"b": true}]})
        ));
    }

    #[test]
    fn a_wrapper_with_an_unknown_key_or_a_bad_schedule_is_a_400_naming_it() {
        let e = parse_body(br#"{"customers":[],"extra":1}"#, false).unwrap_err();
        assert_eq!(e.fields[0].field, "extra");
        let e = parse_body(br#"{"customers":[],"schedule":"weekly"}"#, false).unwrap_err();
        assert_eq!(e.fields[0].field, "schedule");
        let e = parse_body(br#"{"customers":{}}"#, false).unwrap_err();
        assert_eq!(e.fields[0].field, "customers");
    }
}

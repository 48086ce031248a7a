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

use axum::Extension;
use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use outdial_domain::task::ScheduleType;
use outdial_domain::{ErrorCode, FieldError};
use outdial_store::{Company, ImportStatus, MAX_ERROR_PAGE, MAX_IMPORT_ROWS, RowError};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use crate::{ApiError, AppState, query};

mod plans;
mod runner;

pub use runner::{RunnerConfig, check_row, run, run_job, run_once};

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

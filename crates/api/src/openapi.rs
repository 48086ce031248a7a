//! The OpenAPI 3 document served at `/openapi.json`.
//!
//! Paths and operations come from the `#[utoipa::path]` annotations of the handlers, which
//! `router` registers through `utoipa_axum`'s `OpenApiRouter`: a route cannot exist without
//! its entry in the document, nor the other way round. The schemas below describe the JSON
//! bodies (the handlers read bodies as JSON objects and validate field by field, so these
//! types document the shapes; the API tests and schemathesis check real responses against
//! them). [`Conventions`] adds what every operation shares: the `X-API-Key` security scheme,
//! the error envelope for every error status, and the `Idempotency-Key` header on POSTs.

#![allow(dead_code)]

use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::openapi::path::{Operation, Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, ObjectBuilder, RefOr, Required, Type};
use utoipa::{Modify, OpenApi, ToSchema};

/// The document's root: metadata, shared schemas and [`Conventions`].
#[derive(OpenApi)]
#[openapi(
    info(
        title = "outdial",
        description = "Schedules and dispatches compliant outbound calls: customers, \
                       scheduled calls and call results. Every route but /openapi.json \
                       requires X-API-Key.\n\n\
                       LMS contract (sync: true, schedule sync): PUT /lms names a base URL \
                       and headers. outdial sends GET {baseUrl}/customers/{id}, answered by \
                       a JSON object with any of the customer fields of POST /customers \
                       (same names; 404 = unknown customer), and \
                       GET {baseUrl}/customers/{id}/loans, answered by a JSON array of \
                       loans {\"id\": <positive integer>, \"loanId\"?, \"status\"?, \
                       \"balanceCents\"?, \"dueDate\"? (YYYY-MM-DD), ...} (other fields are \
                       kept as the loan's metadata; 404 = no loans). 5xx answers and \
                       timeouts are retried with backoff within timeoutMs (default 2000 ms \
                       for the whole fetch); after 5 failed fetches in a row the company's \
                       LMS is not asked for 30 s. Unreachable or too slow: 504 lms_timeout; \
                       5xx or an answer outside this contract: 502 lms_unavailable; unknown \
                       customer: 404 lms_customer_not_found. Nothing is stored on any of \
                       them.",
    ),
    components(schemas(ErrorEnvelope, ErrorBody, FieldErrorDoc))
)]
pub(crate) struct ApiDoc;

/// The error envelope every failure answers with.
#[derive(Serialize, ToSchema)]
#[schema(as = Error)]
pub(crate) struct ErrorEnvelope {
    error: ErrorBody,
}

/// The body of the error envelope.
#[derive(Serialize, ToSchema)]
pub(crate) struct ErrorBody {
    /// A stable machine-readable code (`invalid_request`, `not_found`, `conflict`, ...).
    code: String,
    /// A human-readable explanation.
    message: String,
    /// The offending fields (empty when the problem is not about one field).
    fields: Vec<FieldErrorDoc>,
}

/// One bad field.
#[derive(Serialize, ToSchema)]
#[schema(as = FieldError)]
pub(crate) struct FieldErrorDoc {
    /// The field's JSON name (or a query parameter or header name).
    field: String,
    /// What is wrong: `required`, `invalid_format`, `invalid_value`, `invalid_type`,
    /// `unknown_field`, `too_long`, `too_many`, `duplicate`, `out_of_range`.
    code: String,
    message: String,
}

/// The body of `POST /customers` (the seed's request). Which fields are required is
/// checked by the API and reported per field: `id` and `taskType` always; the name,
/// phone, timezone and address fields unless `sync` is true.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = CustomerRequest)]
pub(crate) struct CustomerRequestDoc {
    /// The company's own reference for the customer.
    id: String,
    /// One of the company's task types.
    task_type: String,
    first_name: Option<String>,
    last_name: Option<String>,
    email: Option<String>,
    /// `YYYY-MM-DD`.
    birthday: Option<String>,
    /// Four digits.
    ssn_last_four: Option<String>,
    /// An IANA zone name.
    timezone: Option<String>,
    /// E.164.
    phone_number: Option<String>,
    street_address1: Option<String>,
    street_address2: Option<String>,
    city: Option<String>,
    /// A US state or territory code.
    state: Option<String>,
    zip_code: Option<String>,
    do_not_call: Option<bool>,
    is_test: Option<bool>,
    /// An alias of `isTest`.
    test: Option<bool>,
    /// Any JSON object, stored and returned as-is.
    external_metadata: Option<Map<String, Value>>,
    loan_ids: Option<Vec<i64>>,
    /// `true`: the fields left out are read from the company's LMS (PUT /lms), with the
    /// customer's loans.
    sync: Option<bool>,
    loan_id: Option<String>,
}

/// A stored customer (the seed's response): every field that was provided.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Customer)]
pub(crate) struct CustomerDoc {
    first_name: String,
    last_name: String,
    id: String,
    email: Option<String>,
    birthday: Option<String>,
    ssn_last_four: Option<String>,
    timezone: String,
    phone_number: String,
    street_address1: String,
    street_address2: Option<String>,
    city: String,
    state: String,
    zip_code: String,
    do_not_call: bool,
    is_test: bool,
    task_type: String,
    external_metadata: Map<String, Value>,
    loan_id: Option<String>,
    loan_ids: Option<Vec<i64>>,
    /// The customer's loans (`GET /customers/{id}`, and a `sync: true` create): `id`, and for
    /// loans read from the LMS `lmsId`, `loanId`, `status`, `balanceCents`, `dueDate`,
    /// `metadata`, `syncedAt`.
    loans: Option<Vec<Map<String, Value>>>,
    /// What the last LMS sync did: `syncedAt`, `fieldsFromLms`, and `timezoneCandidates`
    /// when the time zone was resolved from the ZIP code.
    lms_sync: Option<Map<String, Value>>,
}

/// `PATCH /customers/{id}`: any subset of the request's fields; `null` clears an optional
/// one. `id` cannot change.
#[derive(Serialize, ToSchema)]
#[schema(as = CustomerPatch)]
pub(crate) struct CustomerPatchDoc(Map<String, Value>);

/// A page of customers.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CustomerPage {
    data: Vec<CustomerDoc>,
    /// Pass as `after` for the next page; `null` on the last page.
    next_cursor: Option<String>,
}

/// A cadence for a `custom` schedule.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Cadence)]
pub(crate) struct CadenceDoc {
    /// Cron expressions (`sec min hour day-of-month month day-of-week [year]`) in the
    /// customer's zone.
    cron: Option<Vec<String>>,
    /// Local date-times (`2026-11-23T10:30:00`) in the customer's zone.
    local_times: Option<Vec<String>>,
    /// The first attempt at the next lawful instant.
    first_asap: Option<bool>,
    /// How far ahead calls are planned (`21d`).
    horizon: String,
    max_attempts: u32,
    /// Minimum spacing between attempts (`1h` by default).
    min_gap: Option<String>,
    retry: RetryDoc,
}

/// Retry spacing after no answer, busy, voicemail.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Retry)]
pub(crate) struct RetryDoc {
    no_answer: String,
    busy: String,
    voicemail: String,
}

/// The schedule types.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ScheduleTypeDoc {
    Verification,
    Collections,
    Custom,
}

/// The body of `POST /scheduled-calls/{id}`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = ScheduleRequest)]
pub(crate) struct ScheduleRequestDoc {
    #[schema(inline)]
    schedule_type: ScheduleTypeDoc,
    /// Only with `custom`; the company's custom cadence otherwise.
    cadence: Option<CadenceDoc>,
    /// Plan from this instant (default: now; not in the past).
    start_at: Option<String>,
}

/// A rule that blocked a dial at some instant.
#[derive(Serialize, ToSchema)]
#[schema(as = Block)]
pub(crate) struct BlockDoc {
    /// The rule id from the ruleset (`federal.fdcpa.hours`, `state.ma.cap`, ...).
    rule: String,
    /// Why (`outside_window`, `holiday`, `cap_reached`, `quiet_period`, ...).
    reason: String,
    /// The zone in which it blocks.
    zone: Option<String>,
    /// The earliest instant this rule alone would allow.
    until: Option<String>,
}

/// A scheduled call.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = ScheduledCall)]
pub(crate) struct ScheduledCallDoc {
    /// `null` in a dry run.
    id: Option<String>,
    /// `null` in a dry run.
    schedule_id: Option<String>,
    customer_id: String,
    #[schema(inline)]
    schedule_type: ScheduleTypeDoc,
    /// `scheduled`, `dialing`, `in_progress`, `completed`, `no_answer`, `busy`,
    /// `voicemail`, `failed`, `cancelled`, `blocked`, `expired`.
    status: String,
    /// When it is due (UTC, RFC 3339).
    scheduled_at: String,
    /// The same instant in the customer's zone, with its offset.
    local_time: String,
    timezone: String,
    /// The cadence slot it was planned for.
    slot_at: String,
    attempts: u32,
    /// The rules that moved it from its slot (empty when on time).
    reasons: Vec<BlockDoc>,
    post_processing_flags: Vec<String>,
    created_at: Option<String>,
    updated_at: Option<String>,
    /// Single-call reads: every change, oldest first (`event`, `at`, `status`, `dueAt`,
    /// `blocks`, and `reason` / `outcome` where they apply).
    decision_trail: Option<Vec<Map<String, Value>>>,
}

/// A page of scheduled calls.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ScheduledCallPage {
    data: Vec<ScheduledCallDoc>,
    next_cursor: Option<String>,
}

/// The body of `POST /scheduled-calls/{id}/reschedule`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = RescheduleRequest)]
pub(crate) struct RescheduleDoc {
    /// The new due time (UTC, RFC 3339); must be lawful for the customer.
    scheduled_at: String,
}

/// What `cancel-communications` did.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Cancellation)]
pub(crate) struct CancellationDoc {
    cancelled: u32,
    cancelled_ids: Vec<String>,
    /// Calls already being dialed: they could not be stopped.
    in_flight: Vec<InFlightDoc>,
}

/// A call that was in flight.
#[derive(Serialize, ToSchema)]
#[schema(as = InFlight)]
pub(crate) struct InFlightDoc {
    id: String,
    status: String,
}

/// A placed call and its result (the seed's webhook fields, plus ids and status).
#[derive(Serialize, ToSchema)]
#[schema(as = Call)]
pub(crate) struct CallDoc {
    id: String,
    #[serde(rename = "scheduledCallId")]
    scheduled_call_id: String,
    #[serde(rename = "customerId")]
    customer_id: String,
    attempt: u32,
    status: String,
    transcript: Option<String>,
    recording_url: Option<String>,
    /// When the call was placed.
    timestamp: String,
    #[serde(rename = "endedAt")]
    ended_at: Option<String>,
    #[serde(rename = "postProcessingFlags")]
    post_processing_flags: Vec<String>,
}

/// A page of calls.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CallPage {
    data: Vec<CallDoc>,
    next_cursor: Option<String>,
}

/// The body of `POST /customers/batch` in its object form; a bare JSON array of customers
/// or NDJSON (one customer per line, `Content-Type: application/x-ndjson`) also works.
#[derive(Serialize, ToSchema)]
#[schema(as = BatchRequest)]
pub(crate) struct BatchRequestDoc {
    /// Up to 10,000 customers, each as `POST /customers` takes it (`sync: true` rows read
    /// the LMS).
    customers: Vec<CustomerRequestDoc>,
    /// `verification`, `collections` or `custom`: create each imported customer's schedule
    /// (one that already has an active schedule keeps it).
    schedule: Option<String>,
}

/// The answer to `POST /customers/batch`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = BatchAccepted)]
pub(crate) struct BatchAcceptedDoc {
    job_id: String,
    /// `queued`.
    state: String,
    /// Rows in the job.
    total: u32,
    schedule_type: Option<String>,
    /// Where the job's status is read.
    status_url: String,
}

/// Outcome counts of an import job.
#[derive(Serialize, ToSchema)]
#[schema(as = BatchCounts)]
pub(crate) struct BatchCountsDoc {
    /// Rows with an outcome so far.
    processed: u32,
    created: u32,
    updated: u32,
    /// Already stored exactly as the row says.
    unchanged: u32,
    rejected: u32,
    /// Rows whose customer got a schedule.
    scheduled: u32,
}

/// One rejected row.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = BatchRowError)]
pub(crate) struct BatchRowErrorDoc {
    /// The row's index in the batch, from 0 (NDJSON: non-blank lines).
    row: u32,
    customer_id: Option<String>,
    /// What `POST /customers` would have answered for the row.
    error: ErrorBody,
}

/// An import job's status.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = BatchStatus)]
pub(crate) struct BatchStatusDoc {
    job_id: String,
    /// `queued`, `running` or `done`.
    state: String,
    /// `api` or `cli:<user>`.
    source: String,
    schedule_type: Option<String>,
    total: u32,
    counts: BatchCountsDoc,
    /// Times a worker took the job (more than 1: it was resumed after a worker stopped).
    attempts: u32,
    created_at: String,
    started_at: Option<String>,
    finished_at: Option<String>,
    /// The first 100 rejected rows.
    errors: Vec<BatchRowErrorDoc>,
    /// More rejected rows than `errors` holds: `GET /customers/batch/{jobId}/errors`.
    more_errors: bool,
}

/// A page of rejected rows.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = BatchErrorPage)]
pub(crate) struct BatchErrorPageDoc {
    data: Vec<BatchRowErrorDoc>,
    next_cursor: Option<String>,
}

/// The body of `PUT /lms`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = LmsRequest)]
pub(crate) struct LmsRequestDoc {
    /// The LMS's base URL (http or https, no query): outdial GETs
    /// `{baseUrl}/customers/{id}` and `{baseUrl}/customers/{id}/loans`.
    base_url: String,
    /// Headers sent with every request (credentials); `GET /lms` shows only their names.
    headers: Option<Map<String, Value>>,
    /// The budget of one whole fetch, retries included, in ms (1 to 30000, default 2000).
    timeout_ms: Option<u64>,
}

/// The body of `PUT /webhook`.
#[derive(Serialize, ToSchema)]
#[schema(as = WebhookRequest)]
pub(crate) struct WebhookRequestDoc {
    /// An http or https URL (at most 2048 characters).
    url: String,
}

/// The body of `POST /webhook/deliveries/redrive`.
#[derive(Serialize, ToSchema)]
#[schema(as = RedriveRequest)]
pub(crate) struct RedriveRequestDoc {
    /// The dead events to re-drive; all of them when absent.
    ids: Option<Vec<String>>,
}

/// One webhook event's delivery state.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Delivery)]
pub(crate) struct DeliveryDoc {
    id: String,
    event: String,
    /// pending, delivered or dead.
    status: String,
    attempts: u32,
    next_attempt_at: String,
    last_error: Option<String>,
    created_at: String,
    delivered_at: Option<String>,
}

/// A page of deliveries.
#[derive(Serialize, ToSchema)]
pub(crate) struct DeliveryPage {
    data: Vec<DeliveryDoc>,
}

/// What every operation shares (see the module documentation); applied by [`finish`] once
/// the routes are registered.
struct Conventions;

/// Completes a document whose paths are registered: adds the [`Conventions`].
pub(crate) fn finish(mut doc: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    Conventions.modify(&mut doc);
    doc
}

/// The error statuses any authenticated operation may answer.
const ERROR_STATUSES: &[(&str, &str)] = &[
    ("400", "invalid request: the body names each bad field"),
    ("401", "missing or unknown X-API-Key"),
    ("404", "not found (or another company's)"),
    ("405", "method not allowed"),
    (
        "409",
        "conflict (duplicate, not pending, do-not-call, Idempotency-Key reuse)",
    ),
    ("413", "body over 1 MiB (16 MiB for POST /customers/batch)"),
    (
        "422",
        "not lawful (reschedule), or a loan the LMS does not have (sync)",
    ),
    ("500", "internal error; logged"),
    (
        "502",
        "the company's LMS failed or answered outside the contract (lms_unavailable)",
    ),
    (
        "504",
        "the company's LMS did not answer in time or is unreachable (lms_timeout)",
    ),
];

impl Modify for Conventions {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "apiKey",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))),
        );
        let error = || {
            ContentBuilder::new()
                .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                    "Error",
                ))))
                .build()
        };
        let idempotency_key: Parameter = ParameterBuilder::new()
            .name("Idempotency-Key")
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .description(Some(
                "Runs the POST at most once: a repeat with the same key and request gets \
                 the stored response; the same key with another request is 409",
            ))
            .schema(Some(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .min_length(Some(1))
                    .max_length(Some(255))
                    .pattern(Some("^[!-~]+$")),
            ))
            .build();
        for (path, item) in doc.paths.paths.iter_mut() {
            let public = path == "/openapi.json";
            let post = item.post.is_some();
            let ops: [&mut Option<Operation>; 5] = [
                &mut item.get,
                &mut item.post,
                &mut item.patch,
                &mut item.delete,
                &mut item.put,
            ];
            for (i, op) in ops.into_iter().enumerate() {
                let Some(op) = op.as_mut() else { continue };
                if public {
                    continue;
                }
                op.security = Some(vec![SecurityRequirement::new(
                    "apiKey",
                    Vec::<String>::new(),
                )]);
                for (status, description) in ERROR_STATUSES {
                    op.responses
                        .responses
                        .entry((*status).to_owned())
                        .or_insert_with(|| {
                            RefOr::T(
                                ResponseBuilder::new()
                                    .description(*description)
                                    .content("application/json", error())
                                    .build(),
                            )
                        });
                }
                if post && i == 1 {
                    op.parameters
                        .get_or_insert_with(Vec::new)
                        .push(RefOr::T(idempotency_key.clone()));
                }
            }
        }
    }
}

//! Bulk customer imports (`POST /customers/batch`, `outdial import`): a job holds the rows as
//! posted; the worker fleet imports them in chunks.
//!
//! Exactly once, whoever runs it: a job is held through a lease (owner and expiry). Each
//! chunk is one transaction that first locks the job row and checks the lease is still the
//! caller's, then writes the customers, their schedules and one outcome per row. A process
//! that stalls past its lease and wakes up finds the lease gone and writes nothing; one
//! that dies leaves rows without outcomes, which the next holder imports. Counts are read
//! from the outcomes, so they are right however often the job was taken over.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use outdial_domain::task::ScheduleType;
use outdial_domain::{CallId, Customer};
use serde::Serialize;
use serde_json::Value;
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use crate::company::CompanyId;
use crate::customer::{StoredForImport, customers_for_import, insert_customer, loan_refs};
use crate::lms::{NewLoan, SyncNote};
use crate::schedule::{CreatedSchedule, NewSchedule};
use crate::{Error, Result, Store};

/// The most rows one job holds.
pub const MAX_IMPORT_ROWS: usize = 10_000;

/// The most row errors one page of [`Store::import_errors`] returns.
pub const MAX_ERROR_PAGE: u32 = 1000;

/// What became of one row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RowOutcome {
    /// A new customer.
    Created,
    /// A stored customer, changed.
    Updated,
    /// A stored customer, already exactly as the row says.
    Unchanged,
    /// Not imported: the row's error says why.
    Rejected,
}

impl RowOutcome {
    fn as_str(self) -> &'static str {
        match self {
            RowOutcome::Created => "created",
            RowOutcome::Updated => "updated",
            RowOutcome::Unchanged => "unchanged",
            RowOutcome::Rejected => "rejected",
        }
    }
}

/// A job taken by a runner.
#[derive(Debug, Clone)]
pub struct ImportJob {
    pub id: Uuid,
    pub company: CompanyId,
    pub schedule_type: Option<ScheduleType>,
    pub total: i32,
    /// How many times a runner has taken the job (more than 1: it was resumed).
    pub attempts: i32,
}

/// Outcome counts of a job.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportCounts {
    /// Rows with an outcome.
    pub processed: i64,
    pub created: i64,
    pub updated: i64,
    pub unchanged: i64,
    pub rejected: i64,
    /// Rows whose customer got a schedule.
    pub scheduled: i64,
}

/// A job as `GET /customers/batch/{jobId}` shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportStatus {
    pub job_id: Uuid,
    /// `queued`, `running` or `done`.
    pub state: String,
    pub source: String,
    pub schedule_type: Option<ScheduleType>,
    pub total: i32,
    pub counts: ImportCounts,
    pub attempts: i32,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// One rejected row.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RowError {
    /// The row's index in the request, from 0.
    pub row: i32,
    pub customer_id: Option<String>,
    /// `{"code", "message", "fields": [...]}`, as the single-customer route would answer.
    pub error: Value,
}

/// One row's outcome, for [`ImportChunk::outcomes`].
#[derive(Debug, Clone)]
pub struct Outcome {
    pub row: i32,
    pub outcome: RowOutcome,
    pub customer_id: Option<String>,
    pub scheduled: bool,
    pub error: Option<Value>,
}

/// A customer the chunk found stored (locked until the chunk commits).
#[derive(Debug)]
pub struct Stored {
    pub customer: Customer,
    /// It has an active schedule.
    pub scheduled: bool,
    /// Its placed calls, for planning a schedule.
    pub contacts: Vec<outdial_domain::policy::Contact>,
}

impl From<StoredForImport> for Stored {
    fn from(s: StoredForImport) -> Stored {
        Stored {
            customer: s.customer,
            scheduled: s.scheduled,
            contacts: s.contacts,
        }
    }
}

/// One chunk of a job: a transaction holding the job's row lock, checked to be the
/// caller's lease. Dropped without [`ImportChunk::commit`], it writes nothing.
#[derive(Debug)]
pub struct ImportChunk {
    tx: Transaction<'static, Postgres>,
    company: CompanyId,
    job: Uuid,
    /// The store's [`Store::storing_ahead`] horizon.
    ahead: Option<chrono::Duration>,
}

impl ImportChunk {
    /// The stored customers among `ids`, locked for the rest of the chunk.
    pub async fn stored(&mut self, ids: &[String]) -> Result<HashMap<String, Stored>> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        Ok(customers_for_import(&mut self.tx, self.company, ids)
            .await?
            .into_iter()
            .map(|(k, v)| (k, v.into()))
            .collect())
    }

    /// Adds a new customer (its id must not be stored: see [`ImportChunk::stored`]).
    pub async fn insert(&mut self, customer: &Customer, now: DateTime<Utc>) -> Result<()> {
        insert_customer(
            &mut *self.tx,
            self.company,
            customer,
            loan_refs(customer),
            now,
        )
        .await?;
        Ok(())
    }

    /// Adds a new customer read from the LMS, with its loans and sync note.
    pub async fn insert_synced(
        &mut self,
        customer: &Customer,
        loans: &[NewLoan],
        note: &SyncNote,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let refs = loans.iter().map(|l| l.lms_id.to_string()).collect();
        insert_customer(&mut *self.tx, self.company, customer, refs, now).await?;
        crate::lms::record(
            &mut self.tx,
            self.company,
            customer.id.as_str(),
            loans,
            note,
            now,
        )
        .await
    }

    /// Writes every field of `customer` over the stored one (a do-not-call customer's
    /// pending calls are cancelled and its schedule ended, as with PATCH).
    pub async fn update(&mut self, customer: &Customer, now: DateTime<Utc>) -> Result<()> {
        crate::customer::write_customer(&mut self.tx, self.company, customer, now).await?;
        Ok(())
    }

    /// Records a re-read of a stored customer's loans from the LMS.
    pub async fn record_sync(
        &mut self,
        customer: &str,
        loans: &[NewLoan],
        note: &SyncNote,
        now: DateTime<Utc>,
    ) -> Result<()> {
        crate::lms::record(&mut self.tx, self.company, customer, loans, note, now).await
    }

    /// Stores a schedule as [`Store::create_schedule`] does, inside the chunk.
    pub async fn schedule(
        &mut self,
        new: &NewSchedule<'_>,
        now: DateTime<Utc>,
    ) -> Result<CreatedSchedule> {
        crate::schedule::create_schedule(&mut self.tx, self.company, new, self.ahead, now).await
    }

    /// Adds those of `customers` (distinct ids) the company does not have yet, in one
    /// statement (two with loan references), and returns their ids; stored ones are left
    /// for [`ImportChunk::stored`]. A fresh import thus needs no lookup before it inserts.
    pub async fn insert_many(
        &mut self,
        customers: &[&Customer],
        now: DateTime<Utc>,
    ) -> Result<std::collections::HashSet<String>> {
        crate::customer::insert_customers(&mut self.tx, self.company, customers, now).await
    }

    /// Stores the first schedule of customers added by this chunk, in four statements;
    /// each schedule's stored calls (id, due time, those to queue now), in order.
    pub async fn first_schedules(
        &mut self,
        news: &[NewSchedule<'_>],
        now: DateTime<Utc>,
    ) -> Result<Vec<Vec<(CallId, DateTime<Utc>)>>> {
        crate::schedule::create_first_schedules(&mut self.tx, self.company, news, self.ahead, now)
            .await
    }

    /// Records many rows' outcomes in one statement (a row that already has one keeps it).
    pub async fn outcomes(&mut self, outcomes: &[Outcome]) -> Result<()> {
        if outcomes.is_empty() {
            return Ok(());
        }
        let rows: Vec<i32> = outcomes.iter().map(|o| o.row).collect();
        let kinds: Vec<&str> = outcomes.iter().map(|o| o.outcome.as_str()).collect();
        let ids: Vec<Option<&str>> = outcomes.iter().map(|o| o.customer_id.as_deref()).collect();
        let scheduled: Vec<bool> = outcomes.iter().map(|o| o.scheduled).collect();
        let errors: Vec<Option<String>> = outcomes
            .iter()
            .map(|o| o.error.as_ref().map(Value::to_string))
            .collect();
        sqlx::query(
            "INSERT INTO import_outcomes (job_id, row_no, outcome, customer_id, scheduled, error)
             SELECT $1, o.row_no, o.outcome, o.customer_id, o.scheduled, o.error::jsonb
             FROM unnest($2::int[], $3::text[], $4::text[], $5::bool[], $6::text[])
                 AS o(row_no, outcome, customer_id, scheduled, error)
             ON CONFLICT DO NOTHING",
        )
        .bind(self.job)
        .bind(&rows)
        .bind(&kinds)
        .bind(&ids)
        .bind(&scheduled)
        .bind(&errors)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Records row `row`'s outcome (a row that already has one keeps it).
    pub async fn outcome(
        &mut self,
        row: i32,
        outcome: RowOutcome,
        customer_id: Option<&str>,
        scheduled: bool,
        error: Option<&Value>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO import_outcomes (job_id, row_no, outcome, customer_id, scheduled, error)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        )
        .bind(self.job)
        .bind(row)
        .bind(outcome.as_str())
        .bind(customer_id)
        .bind(scheduled)
        .bind(error)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Makes the chunk's writes and outcomes durable, together.
    pub async fn commit(self) -> Result<()> {
        self.tx.commit().await?;
        Ok(())
    }
}

#[derive(sqlx::FromRow)]
struct JobRow {
    id: Uuid,
    company_id: Uuid,
    schedule_type: Option<String>,
    total: i32,
    attempts: i32,
}

impl TryFrom<JobRow> for ImportJob {
    type Error = Error;
    fn try_from(r: JobRow) -> Result<ImportJob> {
        Ok(ImportJob {
            id: r.id,
            company: CompanyId::from_uuid(r.company_id),
            schedule_type: r.schedule_type.as_deref().map(schedule_type).transpose()?,
            total: r.total,
            attempts: r.attempts,
        })
    }
}

fn schedule_type(s: &str) -> Result<ScheduleType> {
    serde_json::from_value(Value::from(s)).map_err(|_| Error::Corrupt {
        what: "import job",
        column: "schedule_type",
    })
}

fn schedule_type_text(t: ScheduleType) -> Result<String> {
    match serde_json::to_value(t) {
        Ok(Value::String(s)) => Ok(s),
        _ => Err(Error::Corrupt {
            what: "import job",
            column: "schedule_type",
        }),
    }
}

impl Store {
    /// Stores a job of `rows` (each kept as posted) for `company`, queued for the runners.
    pub async fn create_import(
        &self,
        company: CompanyId,
        source: &str,
        schedule: Option<ScheduleType>,
        rows: &[Value],
        now: DateTime<Utc>,
    ) -> Result<Uuid> {
        let id = Uuid::new_v4();
        let total = i32::try_from(rows.len()).map_err(|_| Error::Corrupt {
            what: "import job",
            column: "total",
        })?;
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO import_jobs (id, company_id, source, schedule_type, state, total,
                 created_at)
             VALUES ($1, $2, $3, $4, 'queued', $5, $6)",
        )
        .bind(id)
        .bind(company.as_uuid())
        .bind(source)
        .bind(schedule.map(schedule_type_text).transpose()?)
        .bind(total)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        // One statement per 1,000 rows keeps each bind array small.
        for (n, chunk) in rows.chunks(1000).enumerate() {
            let first = i32::try_from(n * 1000).unwrap_or(i32::MAX);
            let bodies: Vec<String> = chunk.iter().map(Value::to_string).collect();
            sqlx::query(
                "INSERT INTO import_rows (job_id, row_no, body)
                 SELECT $1, $2 + (n - 1)::int, b
                 FROM unnest($3::text[]) WITH ORDINALITY AS t(b, n)",
            )
            .bind(id)
            .bind(first)
            .bind(&bodies)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(id)
    }

    /// Takes the oldest job (or job `only`) that is not done and not leased (or whose lease
    /// ran out) for `owner` until `now + lease`.
    pub async fn claim_import(
        &self,
        owner: &str,
        lease: Duration,
        now: DateTime<Utc>,
        only: Option<Uuid>,
    ) -> Result<Option<ImportJob>> {
        let row: Option<JobRow> = sqlx::query_as(
            "UPDATE import_jobs j SET state = 'running', lease_owner = $1, lease_until = $2,
                 attempts = j.attempts + 1, started_at = coalesce(j.started_at, $3)
             WHERE j.id = (SELECT id FROM import_jobs
                           WHERE state <> 'done' AND (lease_until IS NULL OR lease_until < $3)
                             AND ($4::uuid IS NULL OR id = $4)
                           ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED)
             RETURNING j.id, j.company_id, j.schedule_type, j.total, j.attempts",
        )
        .bind(owner)
        .bind(now + lease)
        .bind(now)
        .bind(only)
        .fetch_optional(&self.pool)
        .await?;
        row.map(ImportJob::try_from).transpose()
    }

    /// Up to `limit` of `job`'s rows after row `after` (`None`: after the last row with an
    /// outcome), in order.
    ///
    /// Outcomes always cover a prefix of the rows: one holder at a time imports them in
    /// order, each chunk committing its rows' outcomes together. So the rows left are those
    /// after the last outcome, found through the primary keys without an anti-join.
    pub async fn import_rows_left(
        &self,
        job: Uuid,
        after: Option<i32>,
        limit: i64,
    ) -> Result<Vec<(i32, Value)>> {
        let after = match after {
            Some(n) => n,
            None => {
                let last: Option<i32> =
                    sqlx::query_scalar("SELECT max(row_no) FROM import_outcomes WHERE job_id = $1")
                        .bind(job)
                        .fetch_one(&self.pool)
                        .await?;
                last.unwrap_or(-1)
            }
        };
        let rows: Vec<(i32, String)> = sqlx::query_as(
            "SELECT row_no, body FROM import_rows WHERE job_id = $1 AND row_no > $2
             ORDER BY row_no LIMIT $3",
        )
        .bind(job)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(n, body)| {
                serde_json::from_str(&body)
                    .map(|b| (n, b))
                    .map_err(|_| Error::Corrupt {
                        what: "import row",
                        column: "body",
                    })
            })
            .collect()
    }

    /// Opens a chunk of `job` if `owner` still holds its lease, and extends the lease to
    /// `until`; `None`: another runner has the job (the caller stops).
    pub async fn begin_import_chunk(
        &self,
        job: &ImportJob,
        owner: &str,
        until: DateTime<Utc>,
    ) -> Result<Option<ImportChunk>> {
        let mut tx = self.pool.begin().await?;
        let held = sqlx::query(
            "UPDATE import_jobs SET lease_until = $3
             WHERE id = $1 AND lease_owner = $2 AND state = 'running'",
        )
        .bind(job.id)
        .bind(owner)
        .bind(until)
        .execute(&mut *tx)
        .await?;
        if held.rows_affected() == 0 {
            return Ok(None);
        }
        Ok(Some(ImportChunk {
            tx,
            company: job.company,
            job: job.id,
            ahead: self.store_ahead,
        }))
    }

    /// Marks `job` done if `owner` holds it and every row has an outcome; false: rows are
    /// left or the lease is gone.
    pub async fn finish_import(&self, job: Uuid, owner: &str, now: DateTime<Utc>) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE import_jobs j SET state = 'done', finished_at = $3, lease_owner = NULL,
                 lease_until = NULL
             WHERE j.id = $1 AND j.lease_owner = $2 AND j.state = 'running'
               AND (SELECT count(*) FROM import_outcomes o WHERE o.job_id = j.id) >= j.total",
        )
        .bind(job)
        .bind(owner)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Extends `owner`'s lease on `job` to `until`; false: another runner has it.
    pub async fn renew_import(&self, job: Uuid, owner: &str, until: DateTime<Utc>) -> Result<bool> {
        let held = sqlx::query(
            "UPDATE import_jobs SET lease_until = $3
             WHERE id = $1 AND lease_owner = $2 AND state = 'running'",
        )
        .bind(job)
        .bind(owner)
        .bind(until)
        .execute(&self.pool)
        .await?;
        Ok(held.rows_affected() > 0)
    }

    /// Gives `job` back (its lease ends now) so that any runner may take it.
    pub async fn release_import(&self, job: Uuid, owner: &str) -> Result<()> {
        sqlx::query(
            "UPDATE import_jobs SET lease_owner = NULL, lease_until = NULL
             WHERE id = $1 AND lease_owner = $2 AND state = 'running'",
        )
        .bind(job)
        .bind(owner)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Whether one of `company`'s jobs is done, and how many of its rows have an outcome:
    /// what a progress bar needs, read through two keys (outcomes cover a prefix of the
    /// rows, see [`Store::import_rows_left`]) instead of counting the outcomes as
    /// [`Store::import_status`] does. Another company's job is [`Error::NotFound`].
    pub async fn import_progress(&self, company: CompanyId, job: Uuid) -> Result<(bool, i64)> {
        let row: Option<(bool, Option<i32>)> = sqlx::query_as(
            "SELECT j.state = 'done',
                 (SELECT max(o.row_no) FROM import_outcomes o WHERE o.job_id = j.id)
             FROM import_jobs j WHERE j.id = $1 AND j.company_id = $2",
        )
        .bind(job)
        .bind(company.as_uuid())
        .fetch_optional(&self.pool)
        .await?;
        let (done, last) = row.ok_or(Error::NotFound { what: "import job" })?;
        Ok((done, last.map_or(0, |n| i64::from(n) + 1)))
    }

    /// One of `company`'s jobs with its counts; another company's is [`Error::NotFound`].
    pub async fn import_status(&self, company: CompanyId, job: Uuid) -> Result<ImportStatus> {
        #[derive(sqlx::FromRow)]
        struct Row {
            state: String,
            source: String,
            schedule_type: Option<String>,
            total: i32,
            attempts: i32,
            created_at: DateTime<Utc>,
            started_at: Option<DateTime<Utc>>,
            finished_at: Option<DateTime<Utc>>,
            processed: i64,
            created: i64,
            updated: i64,
            unchanged: i64,
            rejected: i64,
            scheduled: i64,
        }
        let row: Option<Row> = sqlx::query_as(
            "SELECT j.state, j.source, j.schedule_type, j.total, j.attempts, j.created_at,
                 j.started_at, j.finished_at,
                 count(o.row_no) AS processed,
                 count(*) FILTER (WHERE o.outcome = 'created') AS created,
                 count(*) FILTER (WHERE o.outcome = 'updated') AS updated,
                 count(*) FILTER (WHERE o.outcome = 'unchanged') AS unchanged,
                 count(*) FILTER (WHERE o.outcome = 'rejected') AS rejected,
                 count(*) FILTER (WHERE o.scheduled) AS scheduled
             FROM import_jobs j LEFT JOIN import_outcomes o ON o.job_id = j.id
             WHERE j.id = $1 AND j.company_id = $2
             GROUP BY j.id",
        )
        .bind(job)
        .bind(company.as_uuid())
        .fetch_optional(&self.pool)
        .await?;
        let r = row.ok_or(Error::NotFound { what: "import job" })?;
        Ok(ImportStatus {
            job_id: job,
            state: r.state,
            source: r.source,
            schedule_type: r.schedule_type.as_deref().map(schedule_type).transpose()?,
            total: r.total,
            counts: ImportCounts {
                processed: r.processed,
                created: r.created,
                updated: r.updated,
                unchanged: r.unchanged,
                rejected: r.rejected,
                scheduled: r.scheduled,
            },
            attempts: r.attempts,
            created_at: r.created_at,
            started_at: r.started_at,
            finished_at: r.finished_at,
        })
    }

    /// Rejected rows of one of `company`'s jobs after row `after`, in row order, at most
    /// `limit` (clamped to `1..=`[`MAX_ERROR_PAGE`]); the cursor of the next page, `None`
    /// on the last.
    pub async fn import_errors(
        &self,
        company: CompanyId,
        job: Uuid,
        after: Option<i32>,
        limit: u32,
    ) -> Result<(Vec<RowError>, Option<i32>)> {
        // A job of another company is not found, not an empty page.
        let owned: Option<(Uuid,)> =
            sqlx::query_as("SELECT id FROM import_jobs WHERE id = $1 AND company_id = $2")
                .bind(job)
                .bind(company.as_uuid())
                .fetch_optional(&self.pool)
                .await?;
        if owned.is_none() {
            return Err(Error::NotFound { what: "import job" });
        }
        let limit = limit.clamp(1, MAX_ERROR_PAGE);
        let rows: Vec<(i32, Option<String>, Option<sqlx::types::Json<Value>>)> = sqlx::query_as(
            "SELECT row_no, customer_id, error FROM import_outcomes
             WHERE job_id = $1 AND outcome = 'rejected' AND row_no > $2
             ORDER BY row_no LIMIT $3",
        )
        .bind(job)
        .bind(after.unwrap_or(-1))
        .bind(i64::from(limit) + 1)
        .fetch_all(&self.pool)
        .await?;
        let more = rows.len() > limit as usize;
        let mut page: Vec<RowError> = rows
            .into_iter()
            .map(|(row, customer_id, error)| RowError {
                row,
                customer_id,
                error: error.map(|e| e.0).unwrap_or(Value::Null),
            })
            .collect();
        page.truncate(limit as usize);
        let next = if more {
            page.last().map(|e| e.row)
        } else {
            None
        };
        Ok((page, next))
    }
}

//! The operator's side (issue 14): readiness, the admin action log and pauses.
//!
//! Pauses live here, not in Redis: workers read the active ones every 500 ms
//! ([`Store::pauses_since`]), so a pause survives a Redis flush.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use outdial_domain::CallId;
use serde_json::Value;
use uuid::Uuid;

use crate::company::CompanyId;
use crate::pending::PendingCall;
use crate::{Error, MIGRATOR, Result, Store};

/// Whether Postgres answers and its schema is current.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    /// Versions this binary knows that the database has not applied (successfully).
    pub pending_migrations: Vec<i64>,
}

/// One recorded admin write.
#[derive(Debug, Clone, PartialEq)]
pub struct AdminAction {
    pub at: DateTime<Utc>,
    /// `cli:<user>` or `admin-api`.
    pub actor: String,
    pub action: String,
    pub company: Option<CompanyId>,
    pub call: Option<CallId>,
    pub detail: Value,
}

/// A pause of a company's calls: all of them (`task_type` `None`) or one task type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pause {
    pub company: CompanyId,
    pub task_type: Option<String>,
    pub paused_at: DateTime<Utc>,
    pub paused_by: String,
    /// `None` while the pause holds.
    pub resumed_at: Option<DateTime<Utc>>,
    pub resumed_by: Option<String>,
}

impl Pause {
    /// Whether the pause covers calls of `task_type` at `at`.
    pub fn covers(&self, task_type: &str, at: DateTime<Utc>) -> bool {
        self.task_type.as_deref().is_none_or(|t| t == task_type)
            && self.paused_at <= at
            && self.resumed_at.is_none_or(|r| at < r)
    }
}

type PauseRow = (
    Uuid,
    Option<String>,
    DateTime<Utc>,
    String,
    Option<DateTime<Utc>>,
    Option<String>,
);

fn pause_of(row: PauseRow) -> Pause {
    let (company, task_type, paused_at, paused_by, resumed_at, resumed_by) = row;
    Pause {
        company: CompanyId::from_uuid(company),
        task_type,
        paused_at,
        paused_by,
        resumed_at,
        resumed_by,
    }
}

const PAUSE_COLUMNS: &str =
    "company_id, task_type, paused_at, paused_by, resumed_at, resumed_by FROM company_pauses";

impl Store {
    /// Answers when Postgres runs a query; lists the migrations not applied.
    pub async fn readiness(&self) -> Result<Readiness> {
        let applied: Vec<(i64,)> =
            sqlx::query_as("SELECT version FROM _sqlx_migrations WHERE success")
                .fetch_all(&self.pool)
                .await
                .or_else(|e| match &e {
                    // No migration table yet: none applied.
                    sqlx::Error::Database(d) if d.code().as_deref() == Some("42P01") => {
                        Ok(Vec::new())
                    }
                    _ => Err(e),
                })?;
        let applied: HashSet<i64> = applied.into_iter().map(|(v,)| v).collect();
        Ok(Readiness {
            pending_migrations: MIGRATOR
                .iter()
                .map(|m| m.version)
                .filter(|v| !applied.contains(v))
                .collect(),
        })
    }

    /// Records an admin write.
    pub async fn record_admin_action(&self, action: &AdminAction) -> Result<()> {
        sqlx::query(
            "INSERT INTO admin_actions (at, actor, action, company_id, call_id, detail)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(action.at)
        .bind(&action.actor)
        .bind(&action.action)
        .bind(action.company.map(CompanyId::as_uuid))
        .bind(action.call.map(|c| *c.as_uuid()))
        .bind(&action.detail)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The admin writes about one call, oldest first.
    pub async fn admin_actions_of(&self, call: CallId) -> Result<Vec<AdminAction>> {
        type Row = (DateTime<Utc>, String, String, Option<Uuid>, Value);
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT at, actor, action, company_id, detail FROM admin_actions
             WHERE call_id = $1 ORDER BY id",
        )
        .bind(*call.as_uuid())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(at, actor, action, company, detail)| AdminAction {
                at,
                actor,
                action,
                company: company.map(CompanyId::from_uuid),
                call: Some(call),
                detail,
            })
            .collect())
    }

    /// The company a scheduled call belongs to (the operator looks calls up by id alone).
    pub async fn call_company(&self, call: CallId) -> Result<CompanyId> {
        let row: Option<(Uuid,)> =
            sqlx::query_as("SELECT company_id FROM scheduled_calls WHERE id = $1")
                .bind(*call.as_uuid())
                .fetch_optional(&self.pool)
                .await?;
        row.map(|(c,)| CompanyId::from_uuid(c))
            .ok_or(Error::NotFound {
                what: "scheduled call",
            })
    }

    /// Pauses `company`'s calls (of `task_type`, or all); `false` when that pause already
    /// holds (nothing changes).
    pub async fn pause(
        &self,
        company: CompanyId,
        task_type: Option<&str>,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO company_pauses (company_id, task_type, paused_at, paused_by)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (company_id, coalesce(task_type, '')) WHERE resumed_at IS NULL
             DO NOTHING",
        )
        .bind(company.as_uuid())
        .bind(task_type)
        .bind(now)
        .bind(by)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Ends `company`'s pause of `task_type` (or its whole-company pause); the ended pause,
    /// `None` when none held.
    pub async fn resume(
        &self,
        company: CompanyId,
        task_type: Option<&str>,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Pause>> {
        let sql = "UPDATE company_pauses SET resumed_at = $3, resumed_by = $4
             WHERE company_id = $1 AND coalesce(task_type, '') = coalesce($2, '')
               AND resumed_at IS NULL
             RETURNING company_id, task_type, paused_at, paused_by, resumed_at, resumed_by";
        let row: Option<PauseRow> = sqlx::query_as(sql)
            .bind(company.as_uuid())
            .bind(task_type)
            .bind(now)
            .bind(by)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(pause_of))
    }

    /// Every pause that holds, and those resumed after `since`, of every company.
    pub async fn pauses_since(&self, since: DateTime<Utc>) -> Result<Vec<Pause>> {
        let sql = format!(
            "SELECT {PAUSE_COLUMNS} WHERE resumed_at IS NULL OR resumed_at > $1
             ORDER BY id"
        );
        let rows: Vec<PauseRow> = sqlx::query_as(&sql)
            .bind(since)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(pause_of).collect())
    }

    /// `company`'s pending calls due by `until` (of customers of `task_type`, or all), in
    /// due order: what a resume puts back on the queue at their own due times.
    pub async fn pending_due_by(
        &self,
        company: CompanyId,
        task_type: Option<&str>,
        until: DateTime<Utc>,
    ) -> Result<Vec<PendingCall>> {
        let rows: Vec<(Uuid, String, DateTime<Utc>)> = sqlx::query_as(
            "SELECT sc.id, sc.customer_id, sc.due_at FROM scheduled_calls sc
             JOIN customers c ON c.company_id = sc.company_id AND c.id = sc.customer_id
             WHERE sc.company_id = $1 AND sc.status = 'scheduled' AND sc.due_at <= $3
               AND ($2::text IS NULL OR c.task_type = $2)
             ORDER BY sc.due_at, sc.id",
        )
        .bind(company.as_uuid())
        .bind(task_type)
        .bind(until)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(id, customer, due_at)| {
                Ok(PendingCall {
                    call: CallId::from_uuid(id),
                    company,
                    customer: customer.parse().map_err(|_| Error::Corrupt {
                        what: "scheduled call",
                        column: "customer_id",
                    })?,
                    due_at,
                })
            })
            .collect()
    }
}

/// Webhook events not yet delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebhookBacklog {
    pub pending: u64,
    /// When the oldest pending event was written.
    pub oldest: Option<DateTime<Utc>>,
}

impl Store {
    /// The webhook outbox's pending events (read through its partial index on pending rows).
    pub async fn webhook_backlog(&self) -> Result<WebhookBacklog> {
        let (pending, oldest): (i64, Option<DateTime<Utc>>) = sqlx::query_as(
            "SELECT count(*), min(created_at) FROM webhook_outbox WHERE status = 'pending'",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(WebhookBacklog {
            pending: u64::try_from(pending).unwrap_or(0),
            oldest,
        })
    }
}

/// One attempt of a scheduled call as the operator's view shows it (no number, no
/// transcript: the operator's screen is not where PII goes).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AttemptView {
    pub id: Uuid,
    pub attempt: u32,
    pub status: String,
    pub outcome: Option<String>,
    pub flags: Vec<String>,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
}

impl Store {
    /// The attempts of one scheduled call, in attempt order.
    pub async fn attempts_of(&self, call: CallId) -> Result<Vec<AttemptView>> {
        type Row = (
            Uuid,
            i32,
            String,
            Option<String>,
            Vec<String>,
            DateTime<Utc>,
            Option<DateTime<Utc>>,
        );
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT id, attempt, status, outcome, flags, started_at, ended_at
             FROM call_attempts WHERE scheduled_call_id = $1 ORDER BY attempt",
        )
        .bind(*call.as_uuid())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(id, attempt, status, outcome, flags, started_at, ended_at)| AttemptView {
                    id,
                    attempt: u32::try_from(attempt).unwrap_or(0),
                    status,
                    outcome,
                    flags,
                    started_at,
                    ended_at,
                },
            )
            .collect())
    }

    /// The webhook events about one scheduled call, oldest first (read through the
    /// company's outbox index from the call's creation on).
    pub async fn deliveries_of(
        &self,
        company: CompanyId,
        call: CallId,
    ) -> Result<Vec<crate::DeliveryState>> {
        type Row = (
            Uuid,
            String,
            String,
            i32,
            DateTime<Utc>,
            Option<String>,
            DateTime<Utc>,
            Option<DateTime<Utc>>,
        );
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT o.id, o.event, o.status, o.attempts, o.next_attempt_at, o.last_error,
                    o.created_at, o.delivered_at
             FROM webhook_outbox o
             WHERE o.company_id = $1 AND o.scheduled_call_id = $2
               AND o.created_at >= (SELECT created_at FROM scheduled_calls WHERE id = $2)
             ORDER BY o.created_at LIMIT 100",
        )
        .bind(company.as_uuid())
        .bind(*call.as_uuid())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(id, event, status, attempts, next, error, created, delivered)| {
                    crate::DeliveryState {
                        id,
                        event,
                        status,
                        attempts: u32::try_from(attempts).unwrap_or(0),
                        next_attempt_at: next,
                        last_error: error,
                        created_at: created,
                        delivered_at: delivered,
                    }
                },
            )
            .collect())
    }
}

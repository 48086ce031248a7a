//! The webhook outbox: events written with the results they report (see `dispatch.rs`),
//! delivered by the worker with retries, dead-lettered after the last try, re-drivable.
//!
//! [`Store::claim_deliveries`] hands out due events (`FOR UPDATE SKIP LOCKED`, so several
//! workers deliver without sending one event twice at once) and pushes their next attempt
//! time past the delivery timeout, so an event whose worker died is retried later rather
//! than lost. [`Store::delivered`] and [`Store::delivery_failed`] record the outcome.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use crate::company::CompanyId;
use crate::group::Written;
use crate::{Error, Result, Store};

/// One event to deliver, with where and how to sign it.
#[derive(Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The event id (stable across retries: receivers deduplicate on it).
    pub id: Uuid,
    pub company: CompanyId,
    pub event: String,
    pub payload: Value,
    /// Tries so far, this one excluded.
    pub attempts: u32,
    pub url: String,
    pub secret: String,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("id", &self.id)
            .field("company", &self.company)
            .field("event", &self.event)
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

/// An event's delivery state, for inspection.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryState {
    pub id: Uuid,
    pub event: String,
    pub status: String,
    pub attempts: u32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

type DeliveryRow = (
    Uuid,
    Uuid,
    String,
    Value,
    i32,
    Option<String>,
    Option<String>,
);
type StateRow = (
    Uuid,
    String,
    String,
    i32,
    DateTime<Utc>,
    Option<String>,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
);

impl Store {
    /// Up to `limit` events due at `now`, claimed until `claim_until` (their next attempt
    /// time moves there, so an event whose deliverer dies is picked up again then). An event
    /// whose company no longer has a webhook is dead-lettered instead.
    pub async fn claim_deliveries(
        &self,
        now: DateTime<Utc>,
        claim_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Delivery>> {
        let rows: Vec<DeliveryRow> = sqlx::query_as(
            "WITH due AS (
                 SELECT o.id FROM webhook_outbox o
                 WHERE o.status = 'pending' AND o.next_attempt_at <= $1
                 ORDER BY o.next_attempt_at
                 LIMIT $3
                 FOR UPDATE SKIP LOCKED
             )
             UPDATE webhook_outbox o SET next_attempt_at = $2
             FROM due, companies c
             WHERE o.id = due.id AND c.id = o.company_id
             RETURNING o.id, o.company_id, o.event, o.payload, o.attempts, c.webhook_url,
                       c.webhook_secret",
        )
        .bind(now)
        .bind(claim_until)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for (id, company, event, payload, attempts, url, secret) in rows {
            let attempts = u32::try_from(attempts).map_err(|_| Error::Corrupt {
                what: "webhook event",
                column: "attempts",
            })?;
            match (url, secret) {
                (Some(url), Some(secret)) => out.push(Delivery {
                    id,
                    company: CompanyId::from_uuid(company),
                    event,
                    payload,
                    attempts,
                    url,
                    secret,
                }),
                _ => {
                    self.delivery_failed(id, "the company has no webhook", None, now)
                        .await?;
                }
            }
        }
        Ok(out)
    }

    /// Records a successful delivery. Deliveries recorded at the same moment by other tasks
    /// share one statement (group commit, `group.rs`).
    pub async fn delivered(&self, id: Uuid, now: DateTime<Utc>) -> Result<()> {
        self.groups.delivered.submit(&self.pool, (id, now)).await
    }

    /// Records a failed try: retried at `retry_at`, or dead-lettered when `None`. `error`
    /// is a short description (status code, timeout), never the response body.
    pub async fn delivery_failed(
        &self,
        id: Uuid,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE webhook_outbox SET attempts = attempts + 1, last_error = $2,
                 status = CASE WHEN $3::timestamptz IS NULL THEN 'dead' ELSE 'pending' END,
                 next_attempt_at = COALESCE($3, $4)
             WHERE id = $1 AND status = 'pending'",
        )
        .bind(id)
        .bind(error)
        .bind(retry_at)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Re-drives dead events of `company` (all of them, or those in `ids`): pending again,
    /// due at `now`, with their tries reset. Returns how many.
    pub async fn redrive_deliveries(
        &self,
        company: CompanyId,
        ids: Option<&[Uuid]>,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE webhook_outbox SET status = 'pending', attempts = 0, next_attempt_at = $3
             WHERE company_id = $1 AND status = 'dead' AND ($2::uuid[] IS NULL OR id = ANY($2))",
        )
        .bind(company.as_uuid())
        .bind(ids.map(<[Uuid]>::to_vec))
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// One page of `company`'s events in `status` (`pending`, `delivered`, `dead`), newest
    /// first.
    pub async fn deliveries(
        &self,
        company: CompanyId,
        status: &str,
        limit: u32,
    ) -> Result<Vec<DeliveryState>> {
        let rows: Vec<StateRow> = sqlx::query_as(
            "SELECT id, event, status, attempts, next_attempt_at, last_error, created_at,
                    delivered_at
             FROM webhook_outbox WHERE company_id = $1 AND status = $2
             ORDER BY created_at DESC LIMIT $3",
        )
        .bind(company.as_uuid())
        .bind(status)
        .bind(i64::from(limit.clamp(1, 1000)))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(id, event, status, attempts, next, error, created, delivered)| DeliveryState {
                    id,
                    event,
                    status,
                    attempts: u32::try_from(attempts).unwrap_or(0),
                    next_attempt_at: next,
                    last_error: error,
                    created_at: created,
                    delivered_at: delivered,
                },
            )
            .collect())
    }
}

/// Marks a group of events delivered in one statement (a failed statement is retried
/// event by event).
pub(crate) fn write_delivered(pool: PgPool, events: Vec<(Uuid, DateTime<Utc>)>) -> Written<()> {
    Box::pin(async move {
        if events.len() > 1 && mark_delivered(&pool, &events).await.is_ok() {
            return events.iter().map(|_| Ok(())).collect();
        }
        let mut out = Vec::with_capacity(events.len());
        for e in &events {
            out.push(mark_delivered(&pool, std::slice::from_ref(e)).await);
        }
        out
    })
}

async fn mark_delivered(pool: &PgPool, events: &[(Uuid, DateTime<Utc>)]) -> Result<()> {
    let ids: Vec<Uuid> = events.iter().map(|(id, _)| *id).collect();
    let ats: Vec<DateTime<Utc>> = events.iter().map(|(_, at)| *at).collect();
    sqlx::query(
        "UPDATE webhook_outbox o SET status = 'delivered', attempts = o.attempts + 1,
             delivered_at = d.at, last_error = NULL
         FROM unnest($1::uuid[], $2::timestamptz[]) AS d(id, at)
         WHERE o.id = d.id AND o.status = 'pending'",
    )
    .bind(&ids)
    .bind(&ats)
    .execute(pool)
    .await?;
    Ok(())
}

//! Pending calls as the queue's reconciliation reads them: every `scheduled` row by call id
//! (keyset pages), and which of a set of calls are no longer pending.

use chrono::{DateTime, Utc};
use outdial_domain::{CallId, CustomerRef};
use uuid::Uuid;

use crate::company::CompanyId;
use crate::{Error, Result, Store};

/// A pending call: what the queue holds for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingCall {
    pub call: CallId,
    pub company: CompanyId,
    pub customer: CustomerRef,
    pub due_at: DateTime<Utc>,
}

impl Store {
    /// Up to `limit` pending (`scheduled`) calls of every company with an id above `after`,
    /// in id order.
    pub async fn pending_page(
        &self,
        after: Option<CallId>,
        limit: u32,
    ) -> Result<Vec<PendingCall>> {
        let rows: Vec<(Uuid, Uuid, String, DateTime<Utc>)> = sqlx::query_as(
            "SELECT id, company_id, customer_id, due_at FROM scheduled_calls
             WHERE status = 'scheduled' AND ($1::uuid IS NULL OR id > $1)
             ORDER BY id LIMIT $2",
        )
        .bind(after.map(|c| *c.as_uuid()))
        .bind(i64::from(limit.clamp(1, 10_000)))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(id, company, customer, due_at)| {
                Ok(PendingCall {
                    call: CallId::from_uuid(id),
                    company: CompanyId::from_uuid(company),
                    customer: customer.parse().map_err(|_| Error::Corrupt {
                        what: "scheduled call",
                        column: "customer_id",
                    })?,
                    due_at,
                })
            })
            .collect()
    }

    /// One pending call, `None` if it is not pending.
    pub async fn pending_call(&self, call: CallId) -> Result<Option<PendingCall>> {
        let row: Option<(Uuid, String, DateTime<Utc>)> = sqlx::query_as(
            "SELECT company_id, customer_id, due_at FROM scheduled_calls
             WHERE id = $1 AND status = 'scheduled'",
        )
        .bind(*call.as_uuid())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|(company, customer, due_at)| {
            Ok(PendingCall {
                call,
                company: CompanyId::from_uuid(company),
                customer: customer.parse().map_err(|_| Error::Corrupt {
                    what: "scheduled call",
                    column: "customer_id",
                })?,
                due_at,
            })
        })
        .transpose()
    }

    /// Which of `calls` are not pending any more (finished, cancelled, blocked, expired) or
    /// do not exist. Calls a worker holds (`dialing`, `in_progress`) are still live.
    pub async fn settled_among(&self, calls: &[CallId]) -> Result<Vec<CallId>> {
        let ids: Vec<Uuid> = calls.iter().map(|c| *c.as_uuid()).collect();
        let live: Vec<(Uuid,)> = sqlx::query_as(
            "SELECT id FROM scheduled_calls
             WHERE id = ANY($1) AND status IN ('scheduled', 'dialing', 'in_progress')",
        )
        .bind(&ids)
        .fetch_all(&self.pool)
        .await?;
        let live: std::collections::HashSet<Uuid> = live.into_iter().map(|(id,)| id).collect();
        Ok(calls
            .iter()
            .filter(|c| !live.contains(c.as_uuid()))
            .copied()
            .collect())
    }
}

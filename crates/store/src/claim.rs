//! Claiming due calls for dialing, with everything the fire-time check and the result's
//! follow-ups need, read in the claim's own transaction.
//!
//! [`Store::claim_calls`] takes the ids the queue handed out and, in one statement, moves
//! those still due and `scheduled` to `dialing` under a new lease: owner, a fresh fencing
//! token ([`LeaseToken`]) and an expiry. A row claimed by a worker whose lease expired
//! *before* any dial intent is taken over the same way. Anything else (cancelled, not yet
//! due, held by a live lease, already dialed) is simply not returned: a duplicate queue
//! delivery or a second worker cannot dial it.
//!
//! Claims made at the same moment by other tasks of the process share the transaction
//! (group commit, `group.rs`): one `UPDATE … FROM unnest(…)` for all of them, then one read
//! each of the customers, their placed calls and their pending calls, one trail insert and
//! one commit — instead of that many round trips per call. An id asked for twice in one
//! group is claimed for the first caller only.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use outdial_domain::policy::Contact;
use outdial_domain::schedule::CadenceDef;
use outdial_domain::scheduled_call::{Event, TrailEntry};
use outdial_domain::task::ScheduleType;
use outdial_domain::{AttemptNo, CallId, CallStatus, Customer, ScheduleId};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::call_attempt::{ContactRow, contact};
use crate::company::CompanyId;
use crate::customer::customers_by_key;
use crate::dispatch::{LeaseToken, corrupt, entry};
use crate::group::Written;
use crate::scheduled_call::append_trail;
use crate::{Error, Result, Store};

/// A call claimed for dialing, with what the fire-time checks and the result need.
#[derive(Debug, Clone)]
pub struct ClaimedCall {
    pub id: CallId,
    pub company: CompanyId,
    pub customer: Customer,
    pub schedule_id: ScheduleId,
    pub schedule_type: ScheduleType,
    /// Whether the call's schedule is still the customer's active one.
    pub schedule_active: bool,
    /// The debt the schedule is about.
    pub loan_id: Option<String>,
    pub due_at: DateTime<Utc>,
    /// The attempt this dial would be.
    pub attempt: AttemptNo,
    pub token: LeaseToken,
    /// Read with the claim.
    pub context: CallContext,
}

/// What deciding and finishing a claimed call needs besides the call itself, read in the
/// claim's transaction. None of it is trusted for safety after that: the fire-time check
/// uses it at once, and the follow-ups planned from it at the call's end are checked again
/// at their own fire time.
#[derive(Debug, Clone)]
pub struct CallContext {
    /// The customer's placed calls (the history the caps count), without this call's
    /// current attempt.
    pub history: Vec<Contact>,
    /// The schedule's cadence definition (its retry rule and attempt budget).
    pub cadence: CadenceDef,
    /// Calls placed under the schedule, without this call's current attempt.
    pub attempts_used: u32,
    /// The customer's other pending (`scheduled`) calls and their due times, in due order.
    pub pending: Vec<(CallId, DateTime<Utc>)>,
}

/// One caller's claim waiting for its group's transaction.
#[derive(Debug)]
pub(crate) struct ClaimItem {
    ids: Vec<Uuid>,
    owner: String,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
}

/// id, company, customer, schedule, due time, attempts, token, claim time, schedule type,
/// active, loan, cadence.
type ClaimRow = (
    Uuid,
    Uuid,
    String,
    Uuid,
    DateTime<Utc>,
    i32,
    i64,
    DateTime<Utc>,
    String,
    bool,
    Option<String>,
    serde_json::Value,
);

/// A pending call and its due time.
type Due = (CallId, DateTime<Utc>);

/// company, customer, scheduled call, attempt, schedule, then the [`ContactRow`] columns.
type PlacedRow = (
    Uuid,
    String,
    Uuid,
    i32,
    Uuid,
    DateTime<Utc>,
    String,
    Option<String>,
    Option<String>,
    Vec<String>,
);

impl Store {
    /// Claims the due, pending calls among `ids` for `owner` until `lease_until` (see the
    /// module documentation); returns those claimed.
    pub async fn claim_calls(
        &self,
        ids: &[CallId],
        owner: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<ClaimedCall>> {
        if ids.is_empty() {
            return Ok(vec![]);
        }
        let item = ClaimItem {
            ids: ids.iter().map(|id| *id.as_uuid()).collect(),
            owner: owner.to_owned(),
            now,
            lease_until,
        };
        self.groups.claims.submit(&self.pool, item).await
    }

    /// A held call as [`Store::claim_calls`] would have returned it, for the recovery path
    /// (its worker died); `None` if `token` no longer holds it.
    pub async fn claimed_view(
        &self,
        call: CallId,
        token: LeaseToken,
        attempt: AttemptNo,
    ) -> Result<Option<ClaimedCall>> {
        let row: Option<ClaimRow> = sqlx::query_as(
            "SELECT sc.id, sc.company_id, sc.customer_id, sc.schedule_id, sc.due_at,
                    $3::int - 1, sc.lease_token, now(), s.schedule_type, s.active, s.loan_id,
                    s.cadence
             FROM scheduled_calls sc JOIN schedules s ON s.id = sc.schedule_id
             WHERE sc.id = $1 AND sc.lease_token = $2
               AND sc.status IN ('dialing', 'in_progress')",
        )
        .bind(*call.as_uuid())
        .bind(token.0)
        .bind(i32::try_from(attempt.get()).map_err(|_| corrupt("attempts"))?)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let mut conn = self.pool.acquire().await?;
        let mut claimed = assemble(&mut conn, vec![row]).await?;
        Ok(claimed.pop().map(|(claimed, _)| claimed))
    }
}

/// Claims a group of callers' ids in one transaction; falls back to one transaction per
/// caller when the group fails as a whole (each error then reaches its own caller).
pub(crate) fn write_claims(pool: PgPool, items: Vec<ClaimItem>) -> Written<Vec<ClaimedCall>> {
    Box::pin(async move {
        if items.len() > 1
            && let Ok(out) = claim_together(&pool, &items).await
        {
            return out.into_iter().map(Ok).collect();
        }
        let mut out = Vec::with_capacity(items.len());
        for item in &items {
            out.push(
                claim_together(&pool, std::slice::from_ref(item))
                    .await
                    .map(|mut v| v.pop().unwrap_or_default()),
            );
        }
        out
    })
}

/// The claims of `items`, one list per item, in one transaction.
async fn claim_together(pool: &PgPool, items: &[ClaimItem]) -> Result<Vec<Vec<ClaimedCall>>> {
    let mut seen = HashSet::new();
    let mut caller = HashMap::new();
    let (mut ids, mut owners, mut nows, mut untils) = (vec![], vec![], vec![], vec![]);
    for (i, item) in items.iter().enumerate() {
        for id in &item.ids {
            if seen.insert(*id) {
                caller.insert(*id, i);
                ids.push(*id);
                owners.push(item.owner.as_str());
                nows.push(item.now);
                untils.push(item.lease_until);
            }
        }
    }
    let mut tx = pool.begin().await?;
    let rows: Vec<ClaimRow> = sqlx::query_as(
        "WITH claimed AS (
             UPDATE scheduled_calls sc
             SET status = 'dialing', lease_owner = i.owner, lease_token = sc.lease_token + 1,
                 lease_expires_at = i.until, updated_at = i.now
             FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::timestamptz[])
                 AS i(id, owner, now, until)
             WHERE sc.id = i.id AND sc.due_at <= i.now
               AND (sc.status = 'scheduled'
                    OR (sc.status = 'dialing' AND sc.lease_expires_at < i.now
                        AND NOT EXISTS (SELECT 1 FROM call_attempts a
                                        WHERE a.scheduled_call_id = sc.id
                                          AND a.attempt = sc.attempts + 1)))
             RETURNING sc.id, sc.company_id, sc.customer_id, sc.schedule_id, sc.due_at,
                       sc.attempts, sc.lease_token, i.now
         )
         SELECT c.id, c.company_id, c.customer_id, c.schedule_id, c.due_at, c.attempts,
                c.lease_token, c.now, s.schedule_type, s.active, s.loan_id, s.cadence
         FROM claimed c JOIN schedules s ON s.id = c.schedule_id",
    )
    .bind(&ids)
    .bind(&owners)
    .bind(&nows)
    .bind(&untils)
    .fetch_all(&mut *tx)
    .await?;
    let claimed = assemble(&mut tx, rows).await?;
    let trail: Vec<(CallId, TrailEntry)> = claimed
        .iter()
        .map(|(c, at)| {
            let e = entry(*at, Event::Claimed, CallStatus::Dialing, c.due_at, vec![]);
            (c.id, e)
        })
        .collect();
    let refs: Vec<(CallId, &TrailEntry)> = trail.iter().map(|(id, e)| (*id, e)).collect();
    append_trail(&mut tx, &refs).await?;
    tx.commit().await?;
    let mut out: Vec<Vec<ClaimedCall>> = items.iter().map(|_| vec![]).collect();
    for (c, _) in claimed {
        if let Some(&i) = caller.get(c.id.as_uuid()) {
            out[i].push(c);
        }
    }
    Ok(out)
}

/// The claimed calls of `rows` with their customers and contexts (three reads for all of
/// them), each with the time it was claimed at.
async fn assemble(
    conn: &mut PgConnection,
    rows: Vec<ClaimRow>,
) -> Result<Vec<(ClaimedCall, DateTime<Utc>)>> {
    if rows.is_empty() {
        return Ok(vec![]);
    }
    let mut keys: Vec<(Uuid, String)> = rows.iter().map(|r| (r.1, r.2.clone())).collect();
    keys.sort();
    keys.dedup();
    let customers = customers_by_key(&mut *conn, &keys).await?;
    let (companies, names): (Vec<Uuid>, Vec<String>) = keys.into_iter().unzip();
    let placed: Vec<PlacedRow> = sqlx::query_as(
        "SELECT a.company_id, a.customer_id, a.scheduled_call_id, a.attempt, sc.schedule_id,
                a.started_at, a.number, a.loan_id, a.outcome, a.flags
         FROM call_attempts a JOIN scheduled_calls sc ON sc.id = a.scheduled_call_id
         WHERE (a.company_id, a.customer_id) IN (SELECT * FROM unnest($1::uuid[], $2::text[]))
         ORDER BY a.started_at",
    )
    .bind(&companies)
    .bind(&names)
    .fetch_all(&mut *conn)
    .await?;
    // Planned calls not stored yet are pending too (plan.rs): a retry must not be added
    // before one of them, and a quiet period moves them as well.
    let sql = format!(
        "SELECT company_id, customer_id, id, due_at FROM scheduled_calls
         WHERE (company_id, customer_id) IN (SELECT * FROM unnest($1::uuid[], $2::text[]))
           AND status = 'scheduled'
         UNION ALL {}
         ORDER BY due_at",
        crate::plan::unstored_due(
            "(s.company_id, s.customer_id) IN (SELECT * FROM unnest($1::uuid[], $2::text[]))"
        )
    );
    let pending: Vec<(Uuid, String, Uuid, DateTime<Utc>)> = sqlx::query_as(&sql)
        .bind(&companies)
        .bind(&names)
        .fetch_all(&mut *conn)
        .await?;
    let mut placed_by: HashMap<(Uuid, &str), Vec<&PlacedRow>> = HashMap::new();
    for p in &placed {
        placed_by.entry((p.0, p.1.as_str())).or_default().push(p);
    }
    let mut pending_by: HashMap<(Uuid, &str), Vec<Due>> = HashMap::new();
    for (company, customer, id, due) in &pending {
        pending_by
            .entry((*company, customer.as_str()))
            .or_default()
            .push((CallId::from_uuid(*id), *due));
    }
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let (id, company, customer_id, schedule, due_at, attempts, token, at, kind, active) = (
            row.0, row.1, &row.2, row.3, row.4, row.5, row.6, row.7, &row.8, row.9,
        );
        let customer = customers
            .get(&(company, customer_id.clone()))
            .cloned()
            .ok_or_else(|| corrupt("customer_id"))?;
        let attempt = u32::try_from(attempts)
            .ok()
            .and_then(|a| AttemptNo::new(a + 1))
            .ok_or_else(|| corrupt("attempts"))?;
        let current = i32::try_from(attempt.get()).map_err(|_| corrupt("attempts"))?;
        let mut history = vec![];
        let mut attempts_used = 0;
        for p in placed_by
            .get(&(company, customer_id.as_str()))
            .into_iter()
            .flatten()
        {
            if p.2 == id && p.3 == current {
                continue;
            }
            if p.4 == schedule {
                attempts_used += 1;
            }
            let row: ContactRow = (p.5, p.6.clone(), p.7.clone(), p.8.clone(), p.9.clone());
            history.push(contact(row)?);
        }
        let context = CallContext {
            history,
            cadence: serde_json::from_value(row.11).map_err(|_| Error::Corrupt {
                what: "schedule",
                column: "cadence",
            })?,
            attempts_used,
            pending: pending_by
                .get(&(company, customer_id.as_str()))
                .cloned()
                .unwrap_or_default(),
        };
        let claimed = ClaimedCall {
            id: CallId::from_uuid(id),
            company: CompanyId::from_uuid(company),
            customer,
            schedule_id: ScheduleId::from_uuid(schedule),
            schedule_type: serde_json::from_value(serde_json::Value::String(kind.clone()))
                .map_err(|_| corrupt("schedule_type"))?,
            schedule_active: active,
            loan_id: row.10,
            due_at,
            attempt,
            token: LeaseToken(token),
            context,
        };
        out.push((claimed, at));
    }
    Ok(out)
}

//! Dispatch: the worker's side of a scheduled call, every step a conditional write.
//!
//! 1. [`Store::claim_calls`] (`claim.rs`) moves the due, pending calls among the ids the
//!    queue handed out to `dialing` under a new lease with a fresh fencing token
//!    ([`LeaseToken`]), and reads what deciding and finishing them needs.
//! 2. At fire time the worker re-checks and either gives the call back ([`Store::release`]:
//!    deferred to a later due time or handed back, no attempt consumed), stops it
//!    ([`Store::stop_claimed`]: blocked or cancelled), or records the dial intent
//!    ([`Store::record_dial_intents`]: the attempt row, written before the provider is
//!    called, so a crash after it is resolved by asking the provider, never by re-dialing).
//! 3. [`Store::mark_dialed`] when the provider accepted, [`Store::record_result`]
//!    (`result/`) when the call ended: outcome, transcript, recording, flags, the
//!    follow-ups the flags and the retry rule demand and the webhook outbox row, in one
//!    transaction.
//!
//! Every write after the claim names the lease token; a worker whose lease was taken over
//! writes nothing ([`Error::Fenced`]).

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use outdial_domain::policy::Block;
use outdial_domain::scheduled_call::{Event, TrailEntry};
use outdial_domain::{AttemptNo, AttemptOutcome, CallId, CallStatus, Flag};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::company::CompanyId;
use crate::group::Written;
use crate::scheduled_call::append_trail;
use crate::{Error, Result, Store};

/// A lease's fencing token: it grows with every claim of the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LeaseToken(pub i64);

/// A dial intent to record.
#[derive(Debug, Clone)]
pub struct DialIntent<'a> {
    pub call: CallId,
    pub token: LeaseToken,
    pub attempt: AttemptNo,
    /// The number to dial (E.164) and the debt, for the caps.
    pub number: &'a str,
    pub loan_id: Option<&'a str>,
}

/// How a placed call ended.
#[derive(Debug, Clone)]
pub struct CallResult<'a> {
    pub outcome: AttemptOutcome,
    pub provider_ref: Option<&'a str>,
    pub transcript: Option<&'a str>,
    pub recording_url: Option<&'a str>,
    pub flags: &'a [Flag],
    pub ended_at: DateTime<Utc>,
}

/// What [`Store::record_result`] changed besides the call itself (the queue mirrors it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    /// The placed call's id.
    pub call: Uuid,
    pub cancelled: Vec<CallId>,
    pub deferred: Vec<(CallId, DateTime<Utc>)>,
    pub created: Vec<(CallId, DateTime<Utc>)>,
    /// The webhook event written, if the company has a webhook.
    pub event: Option<Uuid>,
    /// That event, for the caller to deliver now (a store made by
    /// [`Store::delivering_webhooks`] only).
    pub delivery: Option<crate::Delivery>,
}

pub(crate) fn corrupt(column: &'static str) -> Error {
    Error::Corrupt {
        what: "scheduled call",
        column,
    }
}

/// The trail entry of `event` on `call` at `now`.
pub(crate) fn entry(
    now: DateTime<Utc>,
    event: Event,
    status: CallStatus,
    due_at: DateTime<Utc>,
    blocks: Vec<Block>,
) -> TrailEntry {
    TrailEntry {
        at: now,
        event,
        status,
        due_at,
        blocks,
    }
}

impl Store {
    /// Gives a claimed call back: `scheduled` again at `due_at`, no attempt consumed. The
    /// trail records `event` (deferred by the policy, or handed back) with `blocks`.
    pub async fn release(
        &self,
        call: CallId,
        token: LeaseToken,
        due_at: DateTime<Utc>,
        event: Event,
        blocks: Vec<Block>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let reasons = serde_json::to_string(&blocks).map_err(|_| corrupt("reasons"))?;
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE scheduled_calls SET status = 'scheduled', due_at = $3, reasons = $4::jsonb,
                 lease_owner = NULL, lease_expires_at = NULL, updated_at = $5
             WHERE id = $1 AND lease_token = $2 AND status = 'dialing'
               AND NOT EXISTS (SELECT 1 FROM call_attempts a
                               WHERE a.scheduled_call_id = $1
                                 AND a.attempt = scheduled_calls.attempts + 1)",
        )
        .bind(*call.as_uuid())
        .bind(token.0)
        .bind(due_at)
        .bind(reasons)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(Error::Fenced);
        }
        let e = entry(now, event, CallStatus::Scheduled, due_at, blocks);
        append_trail(&mut tx, &[(call, &e)]).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Stops a claimed call for good before it is dialed: `blocked` by policy (with
    /// `blocks`) or `cancelled` (do-not-call, a replaced schedule).
    pub async fn stop_claimed(
        &self,
        call: CallId,
        token: LeaseToken,
        event: Event,
        blocks: Vec<Block>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let status = match event {
            Event::Blocked => CallStatus::Blocked,
            Event::Cancelled { .. } => CallStatus::Cancelled,
            _ => return Err(corrupt("status")),
        };
        let mut tx = self.pool.begin().await?;
        let due: Option<(DateTime<Utc>,)> = sqlx::query_as(
            "UPDATE scheduled_calls SET status = $3, lease_owner = NULL, lease_expires_at = NULL,
                 updated_at = $4
             WHERE id = $1 AND lease_token = $2 AND status = 'dialing' RETURNING due_at",
        )
        .bind(*call.as_uuid())
        .bind(token.0)
        .bind(status.as_str())
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let (due_at,) = due.ok_or(Error::Fenced)?;
        let e = entry(now, event, status, due_at, blocks);
        append_trail(&mut tx, &[(call, &e)]).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records the dial intents of claimed calls (one attempt row each, status `dialing`),
    /// in one statement, before the provider is called. Returns the attempt ids of the
    /// intents recorded; a call whose lease was taken over gets none. Intents recorded at
    /// the same moment by other tasks share the statement (group commit, `group.rs`).
    pub async fn record_dial_intents(
        &self,
        company: CompanyId,
        intents: &[DialIntent<'_>],
        now: DateTime<Utc>,
    ) -> Result<HashMap<CallId, Uuid>> {
        let mut rows = Vec::with_capacity(intents.len());
        for i in intents {
            rows.push(IntentRow {
                company: company.as_uuid(),
                id: Uuid::new_v4(),
                call: *i.call.as_uuid(),
                token: i.token.0,
                attempt: i32::try_from(i.attempt.get()).map_err(|_| corrupt("attempts"))?,
                number: i.number.to_owned(),
                loan: i.loan_id.map(str::to_owned),
                at: now,
            });
        }
        if rows.is_empty() {
            return Ok(HashMap::new());
        }
        self.groups.intents.submit(&self.pool, rows).await
    }

    /// Withdraws a dial intent the provider never acted on (it refused the request without
    /// placing a call: a 429, or its credentials were refused; or the worker did not place
    /// it: a pause began): the attempt row goes and the call is `scheduled` again at
    /// `due_at` with `event` and `blocks` in its trail, no attempt consumed.
    pub async fn withdraw_intent(
        &self,
        call: CallId,
        token: LeaseToken,
        attempt: AttemptNo,
        due_at: DateTime<Utc>,
        (event, blocks): (Event, Vec<outdial_domain::policy::Block>),
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let held: Option<(i32,)> = sqlx::query_as(
            "SELECT attempts FROM scheduled_calls
             WHERE id = $1 AND lease_token = $2 AND status = 'dialing' FOR UPDATE",
        )
        .bind(*call.as_uuid())
        .bind(token.0)
        .fetch_optional(&mut *tx)
        .await?;
        held.ok_or(Error::Fenced)?;
        sqlx::query("DELETE FROM call_attempts WHERE scheduled_call_id = $1 AND attempt = $2")
            .bind(*call.as_uuid())
            .bind(i32::try_from(attempt.get()).map_err(|_| corrupt("attempts"))?)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.release(call, token, due_at, event, blocks, now).await
    }

    /// Calls in `dialing` or `in_progress` whose lease ran out before `now` (their worker
    /// died): with the attempt they were on and whether its dial intent was recorded.
    pub async fn stale_calls(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<(CallId, LeaseToken, AttemptNo, bool)>> {
        let rows: Vec<(Uuid, i64, i32, bool)> = sqlx::query_as(
            "SELECT sc.id, sc.lease_token, sc.attempts + 1 - (sc.status = 'in_progress')::int,
                    EXISTS (SELECT 1 FROM call_attempts a WHERE a.scheduled_call_id = sc.id
                            AND a.attempt = sc.attempts + 1 - (sc.status = 'in_progress')::int)
             FROM scheduled_calls sc
             WHERE sc.status IN ('dialing', 'in_progress') AND sc.lease_expires_at < $1
             ORDER BY sc.lease_expires_at LIMIT $2",
        )
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(id, token, attempt, intent)| {
                let attempt = u32::try_from(attempt)
                    .ok()
                    .and_then(AttemptNo::new)
                    .ok_or_else(|| corrupt("attempts"))?;
                Ok((CallId::from_uuid(id), LeaseToken(token), attempt, intent))
            })
            .collect()
    }

    /// Extends the lease on calls a worker still holds.
    pub async fn renew_leases(
        &self,
        calls: &[(CallId, LeaseToken)],
        until: DateTime<Utc>,
    ) -> Result<()> {
        let ids: Vec<Uuid> = calls.iter().map(|(c, _)| *c.as_uuid()).collect();
        let tokens: Vec<i64> = calls.iter().map(|(_, t)| t.0).collect();
        sqlx::query(
            "UPDATE scheduled_calls sc SET lease_expires_at = $3
             FROM unnest($1::uuid[], $2::bigint[]) AS l(id, token)
             WHERE sc.id = l.id AND sc.lease_token = l.token
               AND sc.status IN ('dialing', 'in_progress')",
        )
        .bind(&ids)
        .bind(&tokens)
        .bind(until)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The provider accepted the call: `in_progress`, the attempt consumed.
    pub async fn mark_dialed(
        &self,
        call: CallId,
        token: LeaseToken,
        provider_ref: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let due = dialed(&mut tx, call, Some(token), provider_ref, now).await?;
        due.ok_or(Error::Fenced)?;
        tx.commit().await?;
        Ok(())
    }
}

/// `dialing -> in_progress` with the trail entry; returns the due time, `None` if fenced.
async fn dialed(
    conn: &mut PgConnection,
    call: CallId,
    token: Option<LeaseToken>,
    provider_ref: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>> {
    let due: Option<(DateTime<Utc>,)> = sqlx::query_as(
        "WITH attempt AS (
             UPDATE call_attempts a SET status = 'in_progress',
                 provider_ref = COALESCE($3, a.provider_ref)
             FROM scheduled_calls sc
             WHERE sc.id = $1 AND sc.status = 'dialing'
               AND ($2::bigint IS NULL OR sc.lease_token = $2)
               AND a.scheduled_call_id = sc.id AND a.attempt = sc.attempts + 1
             RETURNING a.attempt
         )
         UPDATE scheduled_calls SET status = 'in_progress', attempts = attempt.attempt,
             updated_at = $4
         FROM attempt
         WHERE id = $1
         RETURNING due_at",
    )
    .bind(*call.as_uuid())
    .bind(token.map(|t| t.0))
    .bind(provider_ref)
    .bind(now)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some((due_at,)) = due {
        let e = entry(now, Event::Dialed, CallStatus::InProgress, due_at, vec![]);
        append_trail(conn, &[(call, &e)]).await?;
    }
    Ok(due.map(|(d,)| d))
}

/// One dial intent to insert.
#[derive(Debug)]
pub(crate) struct IntentRow {
    company: Uuid,
    /// The attempt id this intent would get: how a caller recognises its own rows.
    id: Uuid,
    call: Uuid,
    token: i64,
    attempt: i32,
    number: String,
    loan: Option<String>,
    at: DateTime<Utc>,
}

/// Inserts the dial intents of several callers in one statement; each caller gets the
/// attempts recorded for its own intents (recognised by the attempt ids it chose). A failed
/// statement is retried caller by caller.
pub(crate) fn write_intents(
    pool: PgPool,
    callers: Vec<Vec<IntentRow>>,
) -> Written<HashMap<CallId, Uuid>> {
    Box::pin(async move {
        if callers.len() > 1
            && let Ok(recorded) = insert_intents(&pool, callers.iter().flatten()).await
        {
            return callers
                .iter()
                .map(|rows| Ok(mine(rows, &recorded)))
                .collect();
        }
        let mut out = Vec::with_capacity(callers.len());
        for rows in &callers {
            out.push(
                insert_intents(&pool, rows.iter())
                    .await
                    .map(|recorded| mine(rows, &recorded)),
            );
        }
        out
    })
}

/// The intents among `rows` that were recorded, by call.
fn mine(rows: &[IntentRow], recorded: &HashSet<Uuid>) -> HashMap<CallId, Uuid> {
    rows.iter()
        .filter(|r| recorded.contains(&r.id))
        .map(|r| (CallId::from_uuid(r.call), r.id))
        .collect()
}

/// Inserts `rows` where the call is still held under the row's token for that attempt;
/// returns the attempt ids inserted.
async fn insert_intents<'a>(
    pool: &PgPool,
    rows: impl Iterator<Item = &'a IntentRow>,
) -> Result<HashSet<Uuid>> {
    let (mut companies, mut ids, mut calls, mut tokens) = (vec![], vec![], vec![], vec![]);
    let (mut attempts, mut numbers, mut loans, mut ats) = (vec![], vec![], vec![], vec![]);
    for r in rows {
        companies.push(r.company);
        ids.push(r.id);
        calls.push(r.call);
        tokens.push(r.token);
        attempts.push(r.attempt);
        numbers.push(r.number.as_str());
        loans.push(r.loan.as_deref());
        ats.push(r.at);
    }
    let inserted: Vec<(Uuid,)> = sqlx::query_as(
        "INSERT INTO call_attempts (id, company_id, customer_id, scheduled_call_id, attempt,
             status, number, loan_id, started_at)
         SELECT i.id, sc.company_id, sc.customer_id, sc.id, i.attempt, 'dialing', i.number,
             i.loan, i.at
         FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::bigint[], $5::int[], $6::text[],
                     $7::text[], $8::timestamptz[])
             AS i(company, id, call, token, attempt, number, loan, at)
         JOIN scheduled_calls sc ON sc.id = i.call AND sc.company_id = i.company
             AND sc.lease_token = i.token AND sc.status = 'dialing'
             AND sc.attempts + 1 = i.attempt
         ON CONFLICT (scheduled_call_id, attempt) DO NOTHING
         RETURNING id",
    )
    .bind(&companies)
    .bind(&ids)
    .bind(&calls)
    .bind(&tokens)
    .bind(&attempts)
    .bind(&numbers)
    .bind(&loans)
    .bind(&ats)
    .fetch_all(pool)
    .await?;
    Ok(inserted.into_iter().map(|(id,)| id).collect())
}

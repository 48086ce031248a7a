//! Results: how a placed call ended, written with its follow-ups and its webhook event.
//!
//! [`Store::record_result`] hands the result to a group (`group.rs`): the results of the
//! process's tasks that end at the same moment are written in one transaction, in set
//! statements — one `SELECT … FOR UPDATE` locking every call of the group (in id order, so
//! concurrent groups lock in one order), one `UPDATE` of their attempts and calls, one
//! insert of their trail entries and one of their webhook events — plus each result's
//! follow-ups (a retry, a cancellation, a deferral), applied in turn. A call that reached
//! its end straight from `dialing` (the provider answered the place request with a finished
//! call) skips the `in_progress` write: its trail still shows both steps.
//!
//! Each caller gets its own answer, exactly as if its result had been written alone: a
//! fenced result (the lease was taken over, the call already settled) or one without its
//! attempt row writes nothing and the group goes on; any other failure sends every result
//! of the group through a transaction of its own.

mod follow_up;

use std::collections::{BTreeSet, HashMap};
use std::str::FromStr;

use chrono::{DateTime, Utc};
use outdial_domain::follow_up::FollowUp;
use outdial_domain::scheduled_call::{Event, TrailEntry};
use outdial_domain::{AttemptNo, AttemptOutcome, CallId, CallStatus, Flag};
use serde_json::json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::company::CompanyId;
use crate::dispatch::{Applied, CallResult, LeaseToken, corrupt, entry};
use crate::group::Written;
use crate::scheduled_call::append_trail;
use crate::{Delivery, Error, Result, Store};
use follow_up::{NewCall, add_calls, apply};

impl Store {
    /// Records how a placed call ended, with its follow-ups and the webhook outbox row, in
    /// one transaction (see the module documentation). `token` fences the worker that
    /// placed it; `None` is the recovery path (the provider reported on a call whose worker
    /// died), which applies to a call in `dialing` or `in_progress` whatever its lease.
    pub async fn record_result(
        &self,
        call: CallId,
        token: Option<LeaseToken>,
        attempt: AttemptNo,
        result: &CallResult<'_>,
        follow_ups: &[FollowUp],
        now: DateTime<Utc>,
    ) -> Result<Applied> {
        let item = ResultItem {
            call,
            token,
            attempt,
            outcome: result.outcome,
            provider_ref: result.provider_ref.map(str::to_owned),
            transcript: result.transcript.map(str::to_owned),
            recording_url: result.recording_url.map(str::to_owned),
            flags: result.flags.to_vec(),
            ended_at: result.ended_at,
            follow_ups: follow_ups.to_vec(),
            now,
            hold: self.held_webhooks,
        };
        self.groups.results.submit(&self.pool, item).await
    }
}

/// A result waiting for its group's transaction.
#[derive(Debug)]
pub(crate) struct ResultItem {
    call: CallId,
    token: Option<LeaseToken>,
    attempt: AttemptNo,
    outcome: AttemptOutcome,
    provider_ref: Option<String>,
    transcript: Option<String>,
    recording_url: Option<String>,
    flags: Vec<Flag>,
    ended_at: DateTime<Utc>,
    follow_ups: Vec<FollowUp>,
    now: DateTime<Utc>,
    /// The webhook event falls due this long after `now` and is returned for delivery.
    hold: Option<chrono::Duration>,
}

/// Writes a group of results in one transaction; falls back to one transaction per result
/// when the group fails as a whole.
pub(crate) fn write_results(pool: PgPool, items: Vec<ResultItem>) -> Written<Applied> {
    Box::pin(async move {
        if items.len() > 1 {
            // A failed group (a deadlock with another group, a lost connection, one call
            // given twice) is retried result by result, where each error reaches its own
            // caller.
            if let Ok(out) = in_transaction(&pool, &items.iter().collect::<Vec<_>>()).await {
                return out;
            }
        }
        let mut out = Vec::with_capacity(items.len());
        for item in &items {
            out.push(match in_transaction(&pool, &[item]).await {
                Ok(mut one) => one.pop().unwrap_or(Err(Error::Fenced)),
                Err(e) => Err(e),
            });
        }
        out
    })
}

async fn in_transaction(pool: &PgPool, items: &[&ResultItem]) -> Result<Vec<Result<Applied>>> {
    let mut tx = pool.begin().await?;
    let out = results_in(&mut tx, items).await?;
    tx.commit().await?;
    Ok(out)
}

/// A call of the group, locked: where it was and what the result then writes.
struct Locked {
    /// The call was still `dialing` (the place request answered with an ended call).
    from_dialing: bool,
    /// The flags its earlier attempts reported.
    flags: Vec<String>,
}

/// The written part of one result: the call's row after the update.
struct Updated {
    attempt: Uuid,
    company: CompanyId,
    customer: String,
    due_at: DateTime<Utc>,
    schedule: Uuid,
    started_at: DateTime<Utc>,
}

/// attempt id, call, company, customer, due time, schedule, attempt start.
type UpdatedRow = (Uuid, Uuid, Uuid, String, DateTime<Utc>, Uuid, DateTime<Utc>);

/// The results of `items` inside one transaction: each its own answer.
async fn results_in(tx: &mut PgConnection, items: &[&ResultItem]) -> Result<Vec<Result<Applied>>> {
    let mut calls: Vec<Uuid> = items.iter().map(|i| *i.call.as_uuid()).collect();
    calls.sort();
    if calls.windows(2).any(|w| w[0] == w[1]) {
        // Two results for one call: each alone, in turn.
        return Err(Error::Fenced);
    }
    // 1. Lock the calls still held by the result's token, in id order.
    let tokens: Vec<Option<i64>> = items.iter().map(|i| i.token.map(|t| t.0)).collect();
    let ids: Vec<Uuid> = items.iter().map(|i| *i.call.as_uuid()).collect();
    let held: Vec<(Uuid, String, Vec<String>)> = sqlx::query_as(
        "SELECT sc.id, sc.status, sc.flags FROM scheduled_calls sc
         JOIN unnest($1::uuid[], $2::bigint[]) AS r(id, token) ON sc.id = r.id
         WHERE r.token IS NULL OR sc.lease_token = r.token
         ORDER BY sc.id FOR UPDATE OF sc",
    )
    .bind(&ids)
    .bind(&tokens)
    .fetch_all(&mut *tx)
    .await?;
    let mut locked: HashMap<Uuid, Locked> = HashMap::new();
    for (id, status, flags) in held {
        let status = CallStatus::from_str(&status).map_err(|_| corrupt("status"))?;
        let from_dialing = match status {
            CallStatus::Dialing => true,
            CallStatus::InProgress => false,
            _ => continue,
        };
        locked.insert(
            id,
            Locked {
                from_dialing,
                flags,
            },
        );
    }
    // 2. The attempts and the calls, in one statement.
    let updated = update_ended(&mut *tx, items, &locked).await?;
    // 3. Each result's follow-ups, its trail entries, its webhook event.
    let mut out = Vec::with_capacity(items.len());
    let mut trail: Vec<(CallId, TrailEntry)> = Vec::new();
    let mut retries: Vec<NewCall> = Vec::new();
    for item in items {
        let id = *item.call.as_uuid();
        let (Some(lock), Some(row)) = (locked.get(&id), updated.get(&id)) else {
            out.push(Err(if locked.contains_key(&id) {
                Error::NotFound {
                    what: "call attempt",
                }
            } else {
                Error::Fenced
            }));
            continue;
        };
        let end = item.outcome.status();
        if lock.from_dialing {
            let e = entry(
                item.now,
                Event::Dialed,
                CallStatus::InProgress,
                row.due_at,
                vec![],
            );
            trail.push((item.call, e));
        }
        let ended = Event::Ended {
            outcome: item.outcome,
        };
        trail.push((item.call, entry(item.now, ended, end, row.due_at, vec![])));
        let applied = Applied {
            call: row.attempt,
            ..Applied::default()
        };
        out.push(Ok(applied));
        let at = out.len() - 1;
        for follow_up in &item.follow_ups {
            if let FollowUp::Schedule { due_at, reasons } = follow_up {
                let reasons = serde_json::to_string(reasons).map_err(|_| corrupt("reasons"))?;
                let call = CallId::from_uuid(Uuid::new_v4());
                let new = NewCall {
                    at,
                    call,
                    company: row.company,
                    customer: row.customer.clone(),
                    schedule: row.schedule,
                    due_at: *due_at,
                    reasons,
                    now: item.now,
                };
                retries.push(new);
                continue;
            }
            // What comes before another follow-up is written before it, as if in turn.
            add_calls(&mut *tx, &mut retries, &mut out).await?;
            let Some(Ok(applied)) = out.get_mut(at) else {
                continue;
            };
            apply(
                &mut *tx,
                row.company,
                &row.customer,
                follow_up,
                item.now,
                applied,
            )
            .await?;
        }
    }
    add_calls(&mut *tx, &mut retries, &mut out).await?;
    let refs: Vec<(CallId, &TrailEntry)> = trail.iter().map(|(id, e)| (*id, e)).collect();
    append_trail(&mut *tx, &refs).await?;
    let written = outbox(&mut *tx, items, &updated).await?;
    for (item, answer) in items.iter().zip(&mut out) {
        if let (Some((event, delivery)), Ok(applied)) = (written.get(item.call.as_uuid()), answer) {
            applied.event = Some(*event);
            if item.hold.is_some() {
                applied.delivery = delivery.clone();
            }
        }
    }
    Ok(out)
}

/// Ends the attempts and the calls of the locked results in one statement; the rows
/// written, by call.
async fn update_ended(
    tx: &mut PgConnection,
    items: &[&ResultItem],
    locked: &HashMap<Uuid, Locked>,
) -> Result<HashMap<Uuid, Updated>> {
    let (mut calls, mut attempts, mut statuses, mut outcomes) = (vec![], vec![], vec![], vec![]);
    let (mut refs, mut transcripts, mut recordings) = (vec![], vec![], vec![]);
    let (mut flags, mut all_flags, mut ended, mut nows) = (vec![], vec![], vec![], vec![]);
    for item in items {
        let Some(lock) = locked.get(item.call.as_uuid()) else {
            continue;
        };
        calls.push(*item.call.as_uuid());
        attempts.push(i32::try_from(item.attempt.get()).map_err(|_| corrupt("attempts"))?);
        statuses.push(item.outcome.status().as_str());
        outcomes.push(item.outcome.as_str());
        refs.push(item.provider_ref.as_deref());
        transcripts.push(item.transcript.as_deref());
        recordings.push(item.recording_url.as_deref());
        // The attempt's flags as reported; the call's, every attempt's so far (a set, in
        // order). Both go as array literals: one cast per row instead of a subquery each.
        let names: Vec<&str> = item.flags.iter().map(Flag::as_str).collect();
        let all: BTreeSet<&str> = lock
            .flags
            .iter()
            .map(String::as_str)
            .chain(names.iter().copied())
            .collect();
        flags.push(text_array(names));
        all_flags.push(text_array(all));
        ended.push(item.ended_at);
        nows.push(item.now);
    }
    if calls.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<UpdatedRow> = sqlx::query_as(
        "WITH attempt AS (
             UPDATE call_attempts a SET status = r.status, outcome = r.outcome,
                 provider_ref = COALESCE(r.provider_ref, a.provider_ref),
                 transcript = r.transcript, recording_url = r.recording_url,
                 flags = r.flags::text[], ended_at = r.ended_at
             FROM unnest($1::uuid[], $2::int[], $3::text[], $4::text[], $5::text[],
                         $6::text[], $7::text[], $8::text[], $9::text[], $10::timestamptz[],
                         $11::timestamptz[])
                 AS r(call, attempt, status, outcome, provider_ref, transcript, recording_url,
                      flags, all_flags, ended_at, now)
             WHERE a.scheduled_call_id = r.call AND a.attempt = r.attempt
             RETURNING a.id, a.scheduled_call_id, a.started_at, r.status, r.attempt,
                       r.all_flags, r.now
         )
         UPDATE scheduled_calls sc SET status = attempt.status, attempts = attempt.attempt,
             flags = attempt.all_flags::text[], lease_owner = NULL, lease_expires_at = NULL,
             updated_at = attempt.now
         FROM attempt
         WHERE sc.id = attempt.scheduled_call_id
         RETURNING attempt.id, sc.id, sc.company_id, sc.customer_id, sc.due_at, sc.schedule_id,
                   attempt.started_at",
    )
    .bind(&calls)
    .bind(&attempts)
    .bind(&statuses)
    .bind(&outcomes)
    .bind(&refs)
    .bind(&transcripts)
    .bind(&recordings)
    .bind(&flags)
    .bind(&all_flags)
    .bind(&ended)
    .bind(&nows)
    .fetch_all(&mut *tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(attempt, call, company, customer, due_at, schedule, started_at)| {
                let row = Updated {
                    attempt,
                    company: CompanyId::from_uuid(company),
                    customer,
                    due_at,
                    schedule,
                    started_at,
                };
                (call, row)
            },
        )
        .collect())
}

/// `items` as a Postgres array literal (`{"A","B"}`): each element quoted, `"` and `\` escaped,
/// so any text survives the `::text[]` cast.
fn text_array<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let mut out = String::from("{");
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('"');
        for c in item.chars() {
            if c == '"' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('"');
    }
    out.push('}');
    out
}

/// Writes the `call.completed` webhook events of the written results whose company has a
/// webhook URL, in one statement, due now (or after the result's hold); the events
/// written, by call, with where and how to deliver them.
async fn outbox(
    tx: &mut PgConnection,
    items: &[&ResultItem],
    updated: &HashMap<Uuid, Updated>,
) -> Result<HashMap<Uuid, (Uuid, Option<Delivery>)>> {
    let (mut events, mut companies, mut attempts, mut calls) = (vec![], vec![], vec![], vec![]);
    let (mut payloads, mut nows, mut dues) = (vec![], vec![], vec![]);
    let mut bodies = HashMap::new();
    for item in items {
        let Some(row) = updated.get(item.call.as_uuid()) else {
            continue;
        };
        let event = Uuid::new_v4();
        let payload = json!({
            "eventId": event,
            "event": "call.completed",
            "customerId": row.customer,
            "callId": row.attempt,
            "scheduledCallId": item.call,
            "status": item.outcome.status(),
            "transcript": item.transcript,
            "recording_url": item.recording_url,
            "timestamp": row.started_at,
            "endedAt": item.ended_at,
            "postProcessingFlags": item.flags,
        });
        events.push(event);
        companies.push(row.company.as_uuid());
        attempts.push(row.attempt);
        calls.push(*item.call.as_uuid());
        payloads.push(payload.to_string());
        nows.push(item.now);
        dues.push(item.now + item.hold.unwrap_or_default());
        bodies.insert(event, payload);
    }
    if events.is_empty() {
        return Ok(HashMap::new());
    }
    let written: Vec<(Uuid, Uuid, Uuid, String, Option<String>)> = sqlx::query_as(
        "WITH e AS (
             SELECT e.*, c.webhook_url, c.webhook_secret
             FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::text[],
                         $6::timestamptz[], $7::timestamptz[])
                 AS e(id, company, attempt, call, payload, now, due)
             JOIN companies c ON c.id = e.company
             WHERE c.webhook_url IS NOT NULL
         ),
         ins AS (
             INSERT INTO webhook_outbox (id, company_id, call_id, scheduled_call_id, event,
                 payload, status, next_attempt_at, created_at)
             SELECT id, company, attempt, call, 'call.completed', payload::jsonb, 'pending',
                 due, now
             FROM e
             RETURNING id
         )
         SELECT e.call, e.id, e.company, e.webhook_url, e.webhook_secret
         FROM e JOIN ins ON ins.id = e.id",
    )
    .bind(&events)
    .bind(&companies)
    .bind(&attempts)
    .bind(&calls)
    .bind(&payloads)
    .bind(&nows)
    .bind(&dues)
    .fetch_all(&mut *tx)
    .await?;
    // (An event without a secret is written all the same, with nothing to deliver now: the
    // outbox poll dead-letters it.)
    Ok(written
        .into_iter()
        .map(|(call, id, company, url, secret)| {
            let delivery = secret.map(|secret| Delivery {
                id,
                company: CompanyId::from_uuid(company),
                event: "call.completed".to_owned(),
                payload: bodies.remove(&id).unwrap_or_default(),
                attempts: 0,
                url,
                secret,
            });
            (call, (id, delivery))
        })
        .collect())
}

//! A result's follow-ups, written in its transaction in the order given: planned calls
//! (retries) in sets, do-not-call, cancellations and deferrals one at a time.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use outdial_domain::follow_up::FollowUp;
use outdial_domain::scheduled_call::Event;
use outdial_domain::{CallId, CallStatus};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::Result;
use crate::company::CompanyId;
use crate::dispatch::{Applied, corrupt, entry};
use crate::scheduled_call::{Pending, append_trail, cancel_pending, end_active_schedule};

/// Applies one follow-up inside the result's transaction (a planned call: `add_calls`).
pub(super) async fn apply(
    conn: &mut PgConnection,
    company: CompanyId,
    customer: &str,
    follow_up: &FollowUp,
    now: DateTime<Utc>,
    applied: &mut Applied,
) -> Result<()> {
    match follow_up {
        FollowUp::SetDoNotCall => {
            sqlx::query(
                "UPDATE customers SET do_not_call = true, updated_at = $3
                 WHERE company_id = $1 AND id = $2",
            )
            .bind(company.as_uuid())
            .bind(customer)
            .bind(now)
            .execute(&mut *conn)
            .await?;
        }
        FollowUp::CancelPending {
            reason,
            end_schedule,
        } => {
            let cancelled =
                cancel_pending(conn, company, Pending::Customer(customer), *reason, now).await?;
            applied.cancelled.extend(cancelled);
            if *end_schedule {
                end_active_schedule(conn, company, customer, now).await?;
            }
        }
        FollowUp::Defer {
            call,
            due_at,
            blocks,
        } => {
            let reasons = serde_json::to_string(blocks).map_err(|_| corrupt("reasons"))?;
            // A planned call not stored yet becomes a row first (plan.rs).
            crate::plan::store_through_call(&mut *conn, company, *call, now).await?;
            let moved = sqlx::query(
                "UPDATE scheduled_calls SET due_at = $3, reasons = $4::jsonb, updated_at = $5
                 WHERE id = $1 AND company_id = $2 AND status = 'scheduled'",
            )
            .bind(*call.as_uuid())
            .bind(company.as_uuid())
            .bind(due_at)
            .bind(reasons)
            .bind(now)
            .execute(&mut *conn)
            .await?;
            if moved.rows_affected() == 1 {
                let e = entry(
                    now,
                    Event::Deferred,
                    CallStatus::Scheduled,
                    *due_at,
                    blocks.clone(),
                );
                append_trail(conn, &[(*call, &e)]).await?;
                applied.deferred.push((*call, *due_at));
            }
        }
        // Written in sets by `add_calls`.
        FollowUp::Schedule { .. } => {}
    }
    Ok(())
}

/// A call a result's follow-up plans (a retry), waiting to be written with the others.
pub(super) struct NewCall {
    /// The result's place in the group's answers.
    pub(super) at: usize,
    pub(super) call: CallId,
    pub(super) company: CompanyId,
    pub(super) customer: String,
    pub(super) schedule: Uuid,
    pub(super) due_at: DateTime<Utc>,
    /// The reasons behind its due time, as JSON.
    pub(super) reasons: String,
    pub(super) now: DateTime<Utc>,
}

/// Writes the planned calls of `calls` (emptied) in one statement, each only if its
/// schedule is still active, and adds those written to their results' answers. Its
/// "planned" trail entry lives on the row (migration 0009).
pub(super) async fn add_calls(
    conn: &mut PgConnection,
    calls: &mut Vec<NewCall>,
    out: &mut [Result<Applied>],
) -> Result<()> {
    if calls.is_empty() {
        return Ok(());
    }
    let (mut ids, mut companies, mut customers, mut schedules) = (vec![], vec![], vec![], vec![]);
    let (mut dues, mut reasons, mut nows) = (vec![], vec![], vec![]);
    for c in calls.iter() {
        ids.push(*c.call.as_uuid());
        companies.push(c.company.as_uuid());
        customers.push(c.customer.as_str());
        schedules.push(c.schedule);
        dues.push(c.due_at);
        reasons.push(c.reasons.as_str());
        nows.push(c.now);
    }
    let added: Vec<(Uuid,)> = sqlx::query_as(
        "INSERT INTO scheduled_calls (id, company_id, customer_id, schedule_id, status, due_at,
             slot_at, reasons, planned_due_at, planned_reasons, created_at, updated_at)
         SELECT n.id, n.company, n.customer, s.id, 'scheduled', n.due, n.due, n.reasons::jsonb,
             n.due, n.reasons::jsonb, n.now, n.now
         FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::uuid[], $5::timestamptz[],
                     $6::text[], $7::timestamptz[])
             WITH ORDINALITY AS n(id, company, customer, schedule, due, reasons, now, i)
         JOIN schedules s ON s.id = n.schedule AND s.active
         ORDER BY n.i
         RETURNING id",
    )
    .bind(&ids)
    .bind(&companies)
    .bind(&customers)
    .bind(&schedules)
    .bind(&dues)
    .bind(&reasons)
    .bind(&nows)
    .fetch_all(&mut *conn)
    .await?;
    let added: HashSet<Uuid> = added.into_iter().map(|(id,)| id).collect();
    for c in calls.drain(..) {
        if let (true, Some(Ok(applied))) = (added.contains(c.call.as_uuid()), out.get_mut(c.at)) {
            applied.created.push((c.call, c.due_at));
        }
    }
    Ok(())
}

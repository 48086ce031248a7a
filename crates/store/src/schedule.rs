//! Schedules: one expansion of a cadence for a customer, stored with the calls it planned.
//!
//! A customer has at most one active schedule (a partial unique index). Creating one, in a
//! single transaction: locks the customer row (so a concurrent `doNotCall` or cancellation
//! is ordered before or after, never in between), refuses a do-not-call customer, ends the
//! active schedule and cancels its pending calls (`schedule_replaced` in their trails), then
//! inserts the schedule and its calls (each row carries its first trail entry). The plan
//! itself is made by the caller with `outdial_domain::schedule::expand` (pure), so a dry run stores nothing.

use chrono::{DateTime, Utc};
use outdial_domain::schedule::{CadenceDef, Plan};
use outdial_domain::scheduled_call::CancelReason;
use outdial_domain::task::ScheduleType;
use outdial_domain::{CallId, CallStatus, CustomerRef, ScheduleId};
use uuid::Uuid;

use crate::company::CompanyId;
use crate::scheduled_call::{
    CALL_LIST_LOCK, Pending, ScheduledCallRecord, cancel_pending, end_active_schedule, local_time,
};
use crate::{Error, Result, Store};

/// A schedule to store: what was asked for and the plan made for it.
#[derive(Debug, Clone, Copy)]
pub struct NewSchedule<'a> {
    pub customer_id: &'a CustomerRef,
    pub schedule_type: ScheduleType,
    pub task_type: &'a str,
    /// The debt the calls are about.
    pub loan_id: Option<&'a str>,
    /// The cadence expanded.
    pub cadence: &'a CadenceDef,
    /// The ruleset version the plan was made under.
    pub ruleset: &'a str,
    /// The customer's zone (for the local times of the answer).
    pub zone: chrono_tz::Tz,
    pub plan: &'a Plan,
}

/// What storing a schedule did.
#[derive(Debug, Clone, PartialEq)]
pub struct CreatedSchedule {
    pub schedule_id: ScheduleId,
    /// The calls stored, in due order.
    pub calls: Vec<ScheduledCallRecord>,
    /// The schedule it replaced, if one was active.
    pub replaced: Option<ScheduleId>,
    /// The replaced schedule's pending calls, now cancelled.
    pub cancelled: Vec<CallId>,
    /// The customer's calls a worker holds (dialing or in progress): left alone.
    pub in_flight: Vec<crate::InFlight>,
}

impl Store {
    /// Stores `new` for one of `company`'s customers as its active schedule (see the module
    /// documentation). A missing customer is [`Error::NotFound`]; a do-not-call one is
    /// [`Error::DoNotCall`] and nothing changes.
    pub async fn create_schedule(
        &self,
        company: CompanyId,
        new: &NewSchedule<'_>,
        now: DateTime<Utc>,
    ) -> Result<CreatedSchedule> {
        let mut tx = self.pool.begin().await?;
        let created = create_schedule(&mut tx, company, new, now).await?;
        tx.commit().await?;
        Ok(created)
    }
}

/// [`Store::create_schedule`] inside the caller's transaction.
pub(crate) async fn create_schedule(
    tx: &mut sqlx::PgConnection,
    company: CompanyId,
    new: &NewSchedule<'_>,
    now: DateTime<Utc>,
) -> Result<CreatedSchedule> {
    let customer = new.customer_id.as_str();
    // The list-ordering lock (shared) and the customer's row lock in one round trip.
    let found: Option<(bool,)> = sqlx::query_as(
        "SELECT c.do_not_call FROM customers c,
                 LATERAL (SELECT pg_advisory_xact_lock_shared($3, hashtext($1::text))) l
             WHERE c.company_id = $1 AND c.id = $2 FOR UPDATE OF c",
    )
    .bind(company.as_uuid())
    .bind(customer)
    .bind(CALL_LIST_LOCK)
    .fetch_optional(&mut *tx)
    .await?;
    match found {
        None => return Err(Error::NotFound { what: "customer" }),
        Some((true,)) => return Err(Error::DoNotCall),
        Some((false,)) => {}
    }
    let cancelled = cancel_pending(
        &mut *tx,
        company,
        Pending::Customer(customer),
        CancelReason::ScheduleReplaced,
        now,
    )
    .await?;
    let replaced = end_active_schedule(&mut *tx, company, customer, now).await?;
    let in_flight = crate::scheduled_call::in_flight(&mut *tx, company, customer).await?;

    let (schedule_id, calls) = insert_schedules(&mut *tx, company, std::slice::from_ref(new), now)
        .await?
        .pop()
        .ok_or(Error::Corrupt {
            what: "schedule",
            column: "id",
        })?;
    let records = calls
        .iter()
        .zip(&new.plan.calls)
        .map(|((id, _), planned)| ScheduledCallRecord {
            id: *id,
            schedule_id,
            customer_id: customer.to_owned(),
            schedule_type: new.schedule_type,
            status: CallStatus::Scheduled,
            scheduled_at: planned.at,
            local_time: local_time(planned.at, new.zone),
            timezone: new.zone.name().to_owned(),
            slot_at: planned.slot,
            attempts: 0,
            reasons: planned.moved_by.clone(),
            post_processing_flags: vec![],
            created_at: now,
            updated_at: now,
            decision_trail: None,
        })
        .collect();
    Ok(CreatedSchedule {
        schedule_id,
        calls: records,
        replaced,
        cancelled,
        in_flight,
    })
}

/// Stores the first schedule of each of `news`' customers, all created in the caller's
/// transaction (so none is do-not-call, has pending calls or a schedule to end); returns each
/// schedule's calls (id, due time), in `news` order.
pub(crate) async fn create_first_schedules(
    tx: &mut sqlx::PgConnection,
    company: CompanyId,
    news: &[NewSchedule<'_>],
    now: DateTime<Utc>,
) -> Result<Vec<Vec<(CallId, DateTime<Utc>)>>> {
    Ok(insert_schedules(tx, company, news, now)
        .await?
        .into_iter()
        .map(|(_, calls)| calls)
        .collect())
}

/// Writes the `schedules` row and the `scheduled_calls` rows of each of `news` (two
/// statements for all of them, under the list-ordering lock); returns each schedule's id and
/// calls (id, due time), in `news` order. Each call's first trail entry ("planned") is the
/// row's `planned_due_at`, `planned_reasons` and `created_at` (migration 0009), not a
/// `call_events` row.
async fn insert_schedules(
    tx: &mut sqlx::PgConnection,
    company: CompanyId,
    news: &[NewSchedule<'_>],
    now: DateTime<Utc>,
) -> Result<Vec<(ScheduleId, Vec<(CallId, DateTime<Utc>)>)>> {
    if news.is_empty() {
        return Ok(Vec::new());
    }
    let corrupt = |column| Error::Corrupt {
        what: "schedule",
        column,
    };
    let mut sched_ids = Vec::with_capacity(news.len());
    let mut customers = Vec::with_capacity(news.len());
    let mut kinds = Vec::with_capacity(news.len());
    let mut task_types = Vec::with_capacity(news.len());
    let mut loans = Vec::with_capacity(news.len());
    let mut cadences = Vec::with_capacity(news.len());
    let mut rulesets = Vec::with_capacity(news.len());
    let mut dropped = Vec::with_capacity(news.len());
    let (mut call_ids, mut call_customers, mut call_schedules) =
        (Vec::new(), Vec::new(), Vec::new());
    let (mut due, mut slots, mut reasons) = (Vec::new(), Vec::new(), Vec::new());
    let mut out = Vec::with_capacity(news.len());
    for new in news {
        let schedule = Uuid::new_v4();
        sched_ids.push(schedule);
        customers.push(new.customer_id.as_str());
        kinds.push(new.schedule_type.as_str());
        task_types.push(new.task_type);
        loans.push(new.loan_id);
        cadences.push(serde_json::to_string(new.cadence).map_err(|_| corrupt("cadence"))?);
        rulesets.push(new.ruleset);
        dropped.push(serde_json::to_string(&new.plan.dropped).map_err(|_| corrupt("dropped"))?);
        let mut calls = Vec::with_capacity(new.plan.calls.len());
        for planned in &new.plan.calls {
            let id = Uuid::new_v4();
            call_ids.push(id);
            call_customers.push(new.customer_id.as_str());
            call_schedules.push(schedule);
            due.push(planned.at);
            slots.push(planned.slot);
            reasons.push(
                serde_json::to_string(&planned.moved_by).map_err(|_| Error::Corrupt {
                    what: "scheduled call",
                    column: "reasons",
                })?,
            );
            calls.push((CallId::from_uuid(id), planned.at));
        }
        out.push((ScheduleId::from_uuid(schedule), calls));
    }
    sqlx::query(
        "WITH gate AS (SELECT pg_advisory_xact_lock_shared($3, hashtext($1::text)))
         INSERT INTO schedules (id, company_id, customer_id, schedule_type, task_type,
             loan_id, cadence, ruleset, dropped, active, created_at)
         SELECT s.id, $1, s.customer, s.kind, s.task_type, s.loan, s.cadence::jsonb,
             s.ruleset, s.dropped::jsonb, true, $2
         FROM gate, unnest($4::uuid[], $5::text[], $6::text[], $7::text[], $8::text[],
             $9::text[], $10::text[], $11::text[])
             AS s(id, customer, kind, task_type, loan, cadence, ruleset, dropped)",
    )
    .bind(company.as_uuid())
    .bind(now)
    .bind(CALL_LIST_LOCK)
    .bind(&sched_ids)
    .bind(&customers)
    .bind(&kinds)
    .bind(&task_types)
    .bind(&loans)
    .bind(&cadences)
    .bind(&rulesets)
    .bind(&dropped)
    .execute(&mut *tx)
    .await?;
    if !call_ids.is_empty() {
        sqlx::query(
            "INSERT INTO scheduled_calls (id, company_id, customer_id, schedule_id, status,
                 due_at, slot_at, reasons, created_at, updated_at, planned_due_at,
                 planned_reasons)
             SELECT c.id, $1, c.customer, c.schedule, 'scheduled', c.due_at, c.slot_at, r, $2,
                 $2, c.due_at, r
             FROM unnest($3::uuid[], $4::text[], $5::uuid[], $6::timestamptz[],
                 $7::timestamptz[], $8::text[]) AS c(id, customer, schedule, due_at, slot_at,
                 reasons),
                 LATERAL (SELECT c.reasons::jsonb AS r) parsed",
        )
        .bind(company.as_uuid())
        .bind(now)
        .bind(&call_ids)
        .bind(&call_customers)
        .bind(&call_schedules)
        .bind(&due)
        .bind(&slots)
        .bind(&reasons)
        .execute(&mut *tx)
        .await?;
    }
    Ok(out)
}

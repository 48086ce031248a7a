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

use crate::company::CompanyId;
use crate::plan;
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
    /// The calls planned, in due order (the unstored ones too: they read the same).
    pub calls: Vec<ScheduledCallRecord>,
    /// How many of `calls` (a prefix) are stored as rows: those to put on the queue now.
    /// The rest are stored by a worker ahead of their time (`Store::store_planned`).
    pub stored: usize,
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
        let created = create_schedule(&mut tx, company, new, self.store_ahead, now).await?;
        tx.commit().await?;
        Ok(created)
    }
}

/// [`Store::create_schedule`] inside the caller's transaction.
pub(crate) async fn create_schedule(
    tx: &mut sqlx::PgConnection,
    company: CompanyId,
    new: &NewSchedule<'_>,
    ahead: Option<chrono::Duration>,
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

    let (schedule_id, stored) =
        insert_schedules(&mut *tx, company, std::slice::from_ref(new), ahead, now)
            .await?
            .pop()
            .ok_or(Error::Corrupt {
                what: "schedule",
                column: "id",
            })?;
    let records = new
        .plan
        .calls
        .iter()
        .enumerate()
        .map(|(k, planned)| ScheduledCallRecord {
            id: CallId::from_uuid(plan::call_id(*schedule_id.as_uuid(), k)),
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
        stored: stored.len(),
        calls: records,
        replaced,
        cancelled,
        in_flight,
    })
}

/// Stores the first schedule of each of `news`' customers, all created in the caller's
/// transaction (so none is do-not-call, has pending calls or a schedule to end); returns each
/// schedule's stored calls (id, due time), in `news` order.
pub(crate) async fn create_first_schedules(
    tx: &mut sqlx::PgConnection,
    company: CompanyId,
    news: &[NewSchedule<'_>],
    ahead: Option<chrono::Duration>,
    now: DateTime<Utc>,
) -> Result<Vec<Vec<(CallId, DateTime<Utc>)>>> {
    Ok(insert_schedules(tx, company, news, ahead, now)
        .await?
        .into_iter()
        .map(|(_, calls)| calls)
        .collect())
}

/// Writes the `schedules` row of each of `news`, one `schedule_plans` row per distinct plan
/// among them (migration 0023: equal plans are stored once), and the `scheduled_calls` rows
/// of the calls due within `ahead` (all with `None`; the rest are stored later: see
/// `plan.rs`), in four statements for all of them, under the list-ordering lock; returns
/// each schedule's id and stored calls (id, due time), in `news` order. Each call's first
/// trail entry ("planned") is the row's `planned_due_at`, `planned_reasons` and
/// `created_at` (migration 0009), not a `call_events` row.
async fn insert_schedules(
    tx: &mut sqlx::PgConnection,
    company: CompanyId,
    news: &[NewSchedule<'_>],
    ahead: Option<chrono::Duration>,
    now: DateTime<Utc>,
) -> Result<Vec<(ScheduleId, Vec<(CallId, DateTime<Utc>)>)>> {
    if news.is_empty() {
        return Ok(Vec::new());
    }
    let corrupt = |column| Error::Corrupt {
        what: "schedule",
        column,
    };
    if news.iter().any(|n| n.plan.calls.len() > plan::MAX_ENTRIES) {
        return Err(corrupt("plan_len"));
    }
    // One listing number per schedule (its calls are base + k), taken under the lock.
    let bases: Vec<(i64,)> = sqlx::query_as(
        "SELECT nextval(pg_get_serial_sequence('scheduled_calls', 'seq'))
         FROM (SELECT pg_advisory_xact_lock_shared($1, hashtext($2::text))) gate,
             generate_series(1, $3)",
    )
    .bind(CALL_LIST_LOCK)
    .bind(company.as_uuid())
    .bind(i32::try_from(news.len()).map_err(|_| corrupt("id"))?)
    .fetch_all(&mut *tx)
    .await?;
    if bases.len() != news.len() {
        return Err(corrupt("plan_base"));
    }
    let plans = crate::schedule_plan::Distinct::of(news.iter().map(|n| n.plan))?;
    plans.insert(&mut *tx).await?;
    let mut sched_ids = Vec::with_capacity(news.len());
    let mut customers = Vec::with_capacity(news.len());
    let mut kinds = Vec::with_capacity(news.len());
    let mut task_types = Vec::with_capacity(news.len());
    let mut loans = Vec::with_capacity(news.len());
    let mut cadences = Vec::with_capacity(news.len());
    let mut rulesets = Vec::with_capacity(news.len());
    let mut plan_base = Vec::with_capacity(news.len());
    let mut plan_ids = Vec::with_capacity(news.len());
    let mut plan_len = Vec::with_capacity(news.len());
    let (mut plan_stored, mut plan_next) = (vec![], vec![]);
    let mut rows = plan::CallRows::default();
    let mut out = Vec::with_capacity(news.len());
    for (i, (new, (base,))) in news.iter().zip(bases).enumerate() {
        let schedule = plan::new_schedule_id();
        sched_ids.push(schedule);
        customers.push(new.customer_id.as_str());
        kinds.push(new.schedule_type.as_str());
        task_types.push(new.task_type);
        loans.push(new.loan_id);
        cadences.push(serde_json::to_string(new.cadence).map_err(|_| corrupt("cadence"))?);
        rulesets.push(new.ruleset);
        plan_base.push(base);
        let (plan_id, reasons) = plans.of_schedule(i);
        plan_ids.push(plan_id);
        let calls = &new.plan.calls;
        plan_len.push(i32::try_from(calls.len()).map_err(|_| corrupt("plan_len"))?);
        let stored = plan::stored_now(calls, now, ahead);
        let mut ids = Vec::with_capacity(stored);
        for (k, planned) in calls.iter().enumerate().take(stored) {
            rows.push(
                company,
                new.customer_id.as_str(),
                schedule,
                base,
                k,
                planned.at,
                planned.slot,
                reasons[k].clone(),
                now,
            );
            ids.push((CallId::from_uuid(plan::call_id(schedule, k)), planned.at));
        }
        plan_next.push(calls.get(stored).map(|c| c.at));
        plan_stored.push(i32::try_from(stored).map_err(|_| corrupt("plan_stored"))?);
        out.push((ScheduleId::from_uuid(schedule), ids));
    }
    sqlx::query(
        "INSERT INTO schedules (id, company_id, customer_id, schedule_type, task_type,
             loan_id, cadence, ruleset, active, created_at, plan_base, plan_id, plan_len,
             plan_stored, plan_next_at)
         SELECT s.id, $1, s.customer, s.kind, s.task_type, s.loan, s.cadence::jsonb,
             s.ruleset, true, $2, s.base, s.plan, s.len, s.stored, s.next
         FROM unnest($3::uuid[], $4::text[], $5::text[], $6::text[], $7::text[],
             $8::text[], $9::text[], $10::int8[], $11::uuid[], $12::int4[], $13::int4[],
             $14::timestamptz[])
             AS s(id, customer, kind, task_type, loan, cadence, ruleset, base, plan, len,
                  stored, next)",
    )
    .bind(company.as_uuid())
    .bind(now)
    .bind(&sched_ids)
    .bind(&customers)
    .bind(&kinds)
    .bind(&task_types)
    .bind(&loans)
    .bind(&cadences)
    .bind(&rulesets)
    .bind(&plan_base)
    .bind(&plan_ids)
    .bind(&plan_len)
    .bind(&plan_stored)
    .bind(&plan_next)
    .execute(&mut *tx)
    .await?;
    rows.insert(&mut *tx, now).await?;
    Ok(out)
}

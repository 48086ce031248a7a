//! The calls of a schedule's plan that are not stored as rows yet (migrations 0021, 0023).
//!
//! A schedule stores as `scheduled_calls` rows only the calls due within the store's
//! horizon ([`Store::storing_ahead`]); the rest of its plan stays in its `schedule_plans`
//! row (`schedule_plan.rs`, shared by schedules with equal plans), in due order, and
//! entries are turned into rows as a prefix: by the fleet's workers shortly before they
//! fall due ([`Store::store_planned`]), or at once when something must act on them as
//! rows (a cancellation, a reschedule). An unstored call already has its id
//! (the schedule's id with the last two bytes replaced by its index + 1) and its listing
//! number (`plan_base + index`), so it reads the same through the API before and after it
//! is stored: listing, a single read and a reschedule's gap check include the unstored
//! entries, always as `scheduled` calls of an active schedule.
//!
//! Every path that stores entries locks the schedule row first (`FOR UPDATE`), so an entry
//! becomes a row once; the insert also skips an id that exists (`ON CONFLICT DO NOTHING`).
//! Ending a schedule always stores and cancels its unstored entries in the same transaction
//! (`cancel_pending` by customer), so only active schedules have any.

use chrono::{DateTime, Utc};
use outdial_domain::schedule::PlannedCall;
use outdial_domain::scheduled_call::{Event, TrailEntry};
use outdial_domain::{CallId, CallStatus, CustomerRef};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::company::CompanyId;
use crate::pending::PendingCall;
use crate::scheduled_call::ScheduledCallRecord;
use crate::{Error, Result, Store};

/// The SQL expression of entry `k`'s call id, for a schedule `s` (see [`call_id`]).
const ENTRY_ID: &str =
    "encode(overlay(uuid_send(s.id) placing int2send((k + 1)::int2) from 15 for 2), 'hex')::uuid";

/// The columns of an unstored entry `k` of schedule `s` (joined with its plan `p` and its
/// customer `c`) as a scheduled-call row reads (`scheduled_call.rs`, `CallRow`): a pending
/// call of the schedule, planned when the schedule was.
pub(crate) fn unstored_columns() -> String {
    format!(
        "s.plan_base + k AS seq, {ENTRY_ID} AS id, s.id AS schedule_id, s.customer_id, \
         s.schedule_type, 'scheduled'::text AS status, p.due[k + 1] AS due_at, \
         p.slot[k + 1] AS slot_at, 0::int4 AS attempts, '{{}}'::text[] AS flags, \
         (p.reasons -> k)::text AS reasons, s.created_at, s.created_at AS updated_at, \
         c.timezone"
    )
}

/// The unstored entries `k` of the active schedules `s` that `customers` selects (a
/// condition on `s`): company, customer, call id and due time of each, as the pending rows
/// of those customers read.
pub(crate) fn unstored_due(customers: &str) -> String {
    format!(
        "SELECT s.company_id, s.customer_id, {ENTRY_ID} AS id, p.due[k + 1] AS due_at
         FROM schedules s JOIN schedule_plans p ON p.id = s.plan_id,
             generate_series(s.plan_stored, s.plan_len - 1) k
         WHERE {customers} AND s.active AND s.plan_next_at IS NOT NULL"
    )
}

/// A new schedule's id: random, its last two bytes zero (they number its calls).
pub(crate) fn new_schedule_id() -> Uuid {
    let mut bytes = *Uuid::new_v4().as_bytes();
    bytes[14] = 0;
    bytes[15] = 0;
    Uuid::from_bytes(bytes)
}

/// The id of call `k` (0-based, in due order) of schedule `schedule`.
pub(crate) fn call_id(schedule: Uuid, k: usize) -> Uuid {
    let n = u16::try_from(k + 1).unwrap_or(u16::MAX).to_be_bytes();
    let mut bytes = *schedule.as_bytes();
    bytes[14] = n[0];
    bytes[15] = n[1];
    Uuid::from_bytes(bytes)
}

/// The schedule and index a call id would have as a planned call (`None` for an id that
/// cannot be one, e.g. a worker's follow-up call). The schedule may not exist: callers look.
pub(crate) fn entry_of(call: Uuid) -> Option<(Uuid, usize)> {
    let bytes = *call.as_bytes();
    let n = usize::from(u16::from_be_bytes([bytes[14], bytes[15]]));
    if n == 0 || n > MAX_ENTRIES {
        return None;
    }
    let mut schedule = bytes;
    schedule[14] = 0;
    schedule[15] = 0;
    Some((Uuid::from_bytes(schedule), n - 1))
}

/// The most calls one schedule can number (listing numbers come in blocks of 256).
pub(crate) const MAX_ENTRIES: usize = 255;

/// Which schedules' unstored entries to store.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Scope<'a> {
    /// The customer's active schedule, every entry.
    Customer(&'a str),
    /// One schedule, every entry up to and including index `through`.
    Through(Uuid, usize),
}

/// Call rows to insert, as the parallel arrays of one `INSERT … unnest`.
#[derive(Debug, Default)]
pub(crate) struct CallRows {
    ids: Vec<Uuid>,
    seqs: Vec<i64>,
    companies: Vec<Uuid>,
    customers: Vec<String>,
    schedules: Vec<Uuid>,
    due: Vec<DateTime<Utc>>,
    slots: Vec<DateTime<Utc>>,
    reasons: Vec<String>,
    created: Vec<DateTime<Utc>>,
}

impl CallRows {
    /// Adds call `k` of `schedule` (planned at `created`).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn push(
        &mut self,
        company: CompanyId,
        customer: &str,
        schedule: Uuid,
        base: i64,
        k: usize,
        due: DateTime<Utc>,
        slot: DateTime<Utc>,
        reasons: String,
        created: DateTime<Utc>,
    ) {
        self.ids.push(call_id(schedule, k));
        self.seqs.push(base + i64::try_from(k).unwrap_or(0));
        self.companies.push(company.as_uuid());
        self.customers.push(customer.to_owned());
        self.schedules.push(schedule);
        self.due.push(due);
        self.slots.push(slot);
        self.reasons.push(reasons);
        self.created.push(created);
    }

    /// Inserts the rows as `scheduled` calls (each with its "planned" trail entry on the
    /// row, migration 0009), `now` as their update time; returns those inserted.
    pub(crate) async fn insert(
        self,
        conn: &mut PgConnection,
        now: DateTime<Utc>,
    ) -> Result<Vec<PendingCall>> {
        if self.ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<(Uuid, Uuid, String, DateTime<Utc>)> = sqlx::query_as(
            "INSERT INTO scheduled_calls (id, seq, company_id, customer_id, schedule_id, status,
                 due_at, slot_at, reasons, created_at, updated_at, planned_due_at,
                 planned_reasons)
             OVERRIDING SYSTEM VALUE
             SELECT c.id, c.seq, c.company, c.customer, c.schedule, 'scheduled', c.due_at,
                 c.slot_at, r, c.created, $1, c.due_at, r
             FROM unnest($2::uuid[], $3::int8[], $4::uuid[], $5::text[], $6::uuid[],
                 $7::timestamptz[], $8::timestamptz[], $9::text[], $10::timestamptz[])
                 AS c(id, seq, company, customer, schedule, due_at, slot_at, reasons, created),
                 LATERAL (SELECT c.reasons::jsonb AS r) parsed
             ON CONFLICT (id) DO NOTHING
             RETURNING id, company_id, customer_id, due_at",
        )
        .bind(now)
        .bind(&self.ids)
        .bind(&self.seqs)
        .bind(&self.companies)
        .bind(&self.customers)
        .bind(&self.schedules)
        .bind(&self.due)
        .bind(&self.slots)
        .bind(&self.reasons)
        .bind(&self.created)
        .fetch_all(conn)
        .await?;
        rows.into_iter()
            .map(|(id, company, customer, due_at)| {
                Ok(PendingCall {
                    call: CallId::from_uuid(id),
                    company: CompanyId::from_uuid(company),
                    customer: customer
                        .parse::<CustomerRef>()
                        .map_err(|_| Error::Corrupt {
                            what: "scheduled call",
                            column: "customer_id",
                        })?,
                    due_at,
                })
            })
            .collect()
    }
}

/// How many of `calls` (in due order) are stored at once when a schedule is made at `now`
/// with horizon `ahead` (`None`: all of them).
pub(crate) fn stored_now(
    calls: &[PlannedCall],
    now: DateTime<Utc>,
    ahead: Option<chrono::Duration>,
) -> usize {
    match ahead {
        None => calls.len(),
        Some(ahead) => calls.iter().take_while(|c| c.at <= now + ahead).count(),
    }
}

/// A locked schedule with unstored entries.
#[derive(sqlx::FromRow)]
struct Locked {
    id: Uuid,
    company_id: Uuid,
    customer_id: String,
    plan_base: i64,
    plan_stored: i32,
    plan_due: Vec<DateTime<Utc>>,
    plan_slot: Vec<DateTime<Utc>>,
    plan_reasons: String,
    created_at: DateTime<Utc>,
}

/// Schedules `s` with unstored entries, joined with their plans, as [`Locked`] rows (the
/// caller adds conditions on `s` and `FOR UPDATE OF s`).
const LOCKED: &str = "SELECT s.id, s.company_id, s.customer_id, s.plan_base, s.plan_stored, \
     p.due AS plan_due, p.slot AS plan_slot, p.reasons::text AS plan_reasons, s.created_at \
     FROM schedules s JOIN schedule_plans p ON p.id = s.plan_id";

/// Stores the entries of the schedules `locked` holds that are due by `until` (`None`:
/// all; `through`: at most up to that index); returns the rows inserted.
async fn store_locked(
    conn: &mut PgConnection,
    locked: Vec<Locked>,
    until: Option<DateTime<Utc>>,
    through: Option<usize>,
    now: DateTime<Utc>,
) -> Result<Vec<PendingCall>> {
    let corrupt = |column| Error::Corrupt {
        what: "schedule",
        column,
    };
    let mut rows = CallRows::default();
    let (mut ids, mut stored, mut next) = (Vec::new(), Vec::new(), Vec::new());
    for s in locked {
        let reasons: Vec<serde_json::Value> =
            serde_json::from_str(&s.plan_reasons).map_err(|_| corrupt("plan_reasons"))?;
        let len = s.plan_due.len();
        if s.plan_slot.len() != len || reasons.len() != len {
            return Err(corrupt("plan_due"));
        }
        let from = usize::try_from(s.plan_stored).map_err(|_| corrupt("plan_stored"))?;
        let mut to = from;
        while to < len
            && until.is_none_or(|u| s.plan_due[to] <= u)
            && through.is_none_or(|t| to <= t)
        {
            to += 1;
        }
        if to == from {
            continue;
        }
        let company = CompanyId::from_uuid(s.company_id);
        let entries = s.plan_due.iter().zip(&s.plan_slot).zip(&reasons);
        for (k, ((due, slot), why)) in entries.enumerate().take(to).skip(from) {
            rows.push(
                company,
                &s.customer_id,
                s.id,
                s.plan_base,
                k,
                *due,
                *slot,
                why.to_string(),
                s.created_at,
            );
        }
        ids.push(s.id);
        stored.push(i32::try_from(to).map_err(|_| corrupt("plan_stored"))?);
        next.push(s.plan_due.get(to).copied());
    }
    let inserted = rows.insert(&mut *conn, now).await?;
    if !ids.is_empty() {
        sqlx::query(
            "UPDATE schedules s SET plan_stored = u.stored, plan_next_at = u.next
             FROM unnest($1::uuid[], $2::int4[], $3::timestamptz[]) AS u(id, stored, next)
             WHERE s.id = u.id",
        )
        .bind(&ids)
        .bind(&stored)
        .bind(&next)
        .execute(&mut *conn)
        .await?;
    }
    Ok(inserted)
}

/// Stores the unstored entries `scope` covers, in the caller's transaction; returns the
/// rows inserted (pending calls that have no queue job yet).
pub(crate) async fn store_scope(
    conn: &mut PgConnection,
    company: CompanyId,
    scope: Scope<'_>,
    now: DateTime<Utc>,
) -> Result<Vec<PendingCall>> {
    let (locked, through) = match scope {
        Scope::Customer(customer) => {
            let sql = format!(
                "{LOCKED} WHERE s.company_id = $1 AND s.customer_id = $2 AND s.active
                   AND s.plan_next_at IS NOT NULL FOR UPDATE OF s"
            );
            let locked: Vec<Locked> = sqlx::query_as(&sql)
                .bind(company.as_uuid())
                .bind(customer)
                .fetch_all(&mut *conn)
                .await?;
            (locked, None)
        }
        Scope::Through(schedule, k) => {
            let sql = format!(
                "{LOCKED} WHERE s.company_id = $1 AND s.id = $2 AND s.plan_next_at IS NOT NULL
                 FOR UPDATE OF s"
            );
            let locked: Vec<Locked> = sqlx::query_as(&sql)
                .bind(company.as_uuid())
                .bind(schedule)
                .fetch_all(&mut *conn)
                .await?;
            (locked, Some(k))
        }
    };
    store_locked(conn, locked, None, through, now).await
}

/// Stores the entries of the call `id` names up to and including it, if it is an unstored
/// planned call of `company` (nothing otherwise).
pub(crate) async fn store_through_call(
    conn: &mut PgConnection,
    company: CompanyId,
    id: CallId,
    now: DateTime<Utc>,
) -> Result<Vec<PendingCall>> {
    match entry_of(*id.as_uuid()) {
        Some((schedule, k)) => store_scope(conn, company, Scope::Through(schedule, k), now).await,
        None => Ok(Vec::new()),
    }
}

impl Store {
    /// Stores, as pending call rows, the planned calls due by `until` of up to `limit`
    /// schedules whose next unstored call is due first (skipping schedules another
    /// transaction holds); returns the rows, for the caller to put on the queue. Run by every
    /// worker of the fleet ahead of time; a row whose queue job is lost is restored by the
    /// reconciler like any other.
    pub async fn store_planned(
        &self,
        until: DateTime<Utc>,
        limit: u32,
        now: DateTime<Utc>,
    ) -> Result<Vec<PendingCall>> {
        let mut tx = self.pool.begin().await?;
        let sql = format!(
            "{LOCKED} WHERE s.plan_next_at IS NOT NULL AND s.plan_next_at <= $1
             ORDER BY s.plan_next_at LIMIT $2 FOR UPDATE OF s SKIP LOCKED"
        );
        let locked: Vec<Locked> = sqlx::query_as(&sql)
            .bind(until)
            .bind(i64::from(limit.clamp(1, 10_000)))
            .fetch_all(&mut *tx)
            .await?;
        let stored = store_locked(&mut tx, locked, Some(until), None, now).await?;
        tx.commit().await?;
        Ok(stored)
    }

    /// How many planned calls are not stored as rows yet, and the due time of the earliest
    /// (`None` when there are none). A scan of every schedule with unstored calls: for
    /// tests and benchmarks, not for the cockpit's per-second reads.
    pub async fn unstored_plan(&self) -> Result<(i64, Option<DateTime<Utc>>)> {
        let row: (Option<i64>, Option<DateTime<Utc>>) = sqlx::query_as(
            "SELECT sum(plan_len - plan_stored)::int8, min(plan_next_at)
             FROM schedules WHERE plan_next_at IS NOT NULL",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok((row.0.unwrap_or(0), row.1))
    }

    /// A handle on the same pool that stores, when a schedule is made, only the calls due
    /// within `ahead` as rows and leaves the rest of the plan on the schedule for
    /// [`Store::store_planned`] (`None`: every call at once, the default).
    pub fn storing_ahead(&self, ahead: Option<chrono::Duration>) -> Store {
        Store {
            store_ahead: ahead,
            ..self.clone()
        }
    }

    /// The horizon set by [`Store::storing_ahead`].
    pub fn store_ahead(&self) -> Option<chrono::Duration> {
        self.store_ahead
    }

    /// A planned call of `company` not stored as a row yet (plan.rs), with its one trail
    /// entry ("planned"); [`Error::NotFound`] if `id` names none.
    pub(crate) async fn unstored_call(
        &self,
        company: CompanyId,
        id: CallId,
    ) -> Result<ScheduledCallRecord> {
        let not_found = Error::NotFound {
            what: "scheduled call",
        };
        let Some((schedule, k)) = entry_of(*id.as_uuid()) else {
            return Err(not_found);
        };
        let sql = format!(
            "SELECT {} FROM schedules s
                 JOIN schedule_plans p ON p.id = s.plan_id
                 JOIN customers c ON c.company_id = s.company_id AND c.id = s.customer_id,
                 (SELECT $3::int4 AS k) e
             WHERE s.company_id = $1 AND s.id = $2 AND s.plan_next_at IS NOT NULL
               AND k >= s.plan_stored AND k < s.plan_len",
            unstored_columns()
        );
        let row: Option<crate::scheduled_call::CallRow> = sqlx::query_as(&sql)
            .bind(company.as_uuid())
            .bind(schedule)
            .bind(i32::try_from(k).map_err(|_| crate::scheduled_call::corrupt("id"))?)
            .fetch_optional(&self.pool)
            .await?;
        let mut record = ScheduledCallRecord::try_from(row.ok_or(not_found)?)?;
        record.decision_trail = Some(vec![TrailEntry {
            at: record.created_at,
            event: Event::Planned,
            status: CallStatus::Scheduled,
            due_at: record.scheduled_at,
            blocks: record.reasons.clone(),
        }]);
        Ok(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_ids_name_their_schedule_and_index() {
        let schedule = new_schedule_id();
        assert_eq!(entry_of(schedule), None, "a schedule id is no call id");
        for k in [0, 1, 20, 199, MAX_ENTRIES - 1] {
            let id = call_id(schedule, k);
            assert_ne!(id, schedule);
            assert_eq!(entry_of(id), Some((schedule, k)));
        }
        assert_ne!(call_id(schedule, 0), call_id(schedule, 1));
    }

    #[test]
    fn random_ids_beyond_the_numbering_are_not_planned_calls() {
        let mut bytes = [7u8; 16];
        bytes[14] = 0x7f;
        bytes[15] = 0xff;
        assert_eq!(entry_of(Uuid::from_bytes(bytes)), None);
    }
}

//! Scheduled calls: reading them (one with its decision trail, or pages), cancelling and
//! rescheduling them.
//!
//! Every status change is a conditional update on the row (`WHERE status = 'scheduled'`)
//! plus one appended [`TrailEntry`] in `call_events`, in one transaction; the worker's claim
//! (issue 5) uses the same condition, so a cancelled call can never be dialed and a call a
//! worker already holds is reported as in flight instead of being cancelled under it.
//! Listing pages by `seq` with the same advisory-lock ordering as customers (see
//! `customer.rs`): schedule creation takes the lock shared, a page read exclusively.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use outdial_domain::policy::Block;
use outdial_domain::scheduled_call::{CancelReason, Event, TrailEntry};
use outdial_domain::task::ScheduleType;
use outdial_domain::{CallId, CallStatus, Flag, ScheduleId};
use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::company::CompanyId;
use crate::plan;
use crate::{Error, Result, Store};

/// The most scheduled calls one page returns.
pub const MAX_CALL_PAGE: u32 = 1000;

/// First key of the advisory lock that orders scheduled-call inserts against page reads
/// (`0x6f64_0002`, "od" + 2); the second key is a hash of the company id.
pub(crate) const CALL_LIST_LOCK: i32 = 0x6f64_0002;

/// The columns read into a [`CallRow`]; the query joins `schedules s` and `customers c`.
const CALL_COLUMNS: &str = "sc.seq, sc.id, sc.schedule_id, sc.customer_id, s.schedule_type, \
     sc.status, sc.due_at, sc.slot_at, sc.attempts, sc.flags, sc.reasons::text AS reasons, \
     sc.created_at, sc.updated_at, c.timezone";

/// The joins every scheduled-call read uses.
const CALL_FROM: &str = "FROM scheduled_calls sc \
     JOIN schedules s ON s.id = sc.schedule_id \
     JOIN customers c ON c.company_id = sc.company_id AND c.id = sc.customer_id";

/// A scheduled call as the API shows it: UTC and customer-local due time, status, the
/// reasons behind its due time, the flags its attempts reported and, for a single call, the
/// decision trail.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduledCallRecord {
    pub id: CallId,
    pub schedule_id: ScheduleId,
    pub customer_id: String,
    pub schedule_type: ScheduleType,
    pub status: CallStatus,
    /// When it is due (UTC).
    pub scheduled_at: DateTime<Utc>,
    /// The same instant in the customer's zone, with its offset (RFC 3339).
    pub local_time: String,
    /// The customer's IANA zone.
    pub timezone: String,
    /// The cadence slot it was planned for.
    pub slot_at: DateTime<Utc>,
    /// Attempts dialed so far.
    pub attempts: u32,
    /// The policy rules behind its due time (why it moved from its slot or was deferred).
    pub reasons: Vec<Block>,
    pub post_processing_flags: Vec<Flag>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Everything that happened to it, oldest first (single-call reads only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision_trail: Option<Vec<TrailEntry>>,
}

/// The customer-local form of `at`: RFC 3339 with the zone's offset at that instant.
pub(crate) fn local_time(at: DateTime<Utc>, zone: Tz) -> String {
    at.with_timezone(&zone).to_rfc3339()
}

/// A `scheduled_calls` row joined with its schedule type and customer zone.
#[derive(sqlx::FromRow)]
pub(crate) struct CallRow {
    seq: i64,
    id: Uuid,
    schedule_id: Uuid,
    customer_id: String,
    schedule_type: String,
    status: String,
    due_at: DateTime<Utc>,
    slot_at: DateTime<Utc>,
    attempts: i32,
    flags: Vec<String>,
    reasons: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    timezone: String,
}

pub(crate) fn corrupt(column: &'static str) -> Error {
    Error::Corrupt {
        what: "scheduled call",
        column,
    }
}

impl TryFrom<CallRow> for ScheduledCallRecord {
    type Error = Error;
    fn try_from(r: CallRow) -> Result<Self> {
        let zone = Tz::from_str(&r.timezone).map_err(|_| corrupt("timezone"))?;
        let schedule_type = serde_json::from_value(serde_json::Value::String(r.schedule_type))
            .map_err(|_| corrupt("schedule_type"))?;
        Ok(ScheduledCallRecord {
            id: CallId::from_uuid(r.id),
            schedule_id: ScheduleId::from_uuid(r.schedule_id),
            customer_id: r.customer_id,
            schedule_type,
            status: CallStatus::from_str(&r.status).map_err(|_| corrupt("status"))?,
            scheduled_at: r.due_at,
            local_time: local_time(r.due_at, zone),
            timezone: zone.name().to_owned(),
            slot_at: r.slot_at,
            attempts: u32::try_from(r.attempts).map_err(|_| corrupt("attempts"))?,
            reasons: serde_json::from_str(&r.reasons).map_err(|_| corrupt("reasons"))?,
            post_processing_flags: r.flags.iter().map(|f| Flag::from(f.as_str())).collect(),
            created_at: r.created_at,
            updated_at: r.updated_at,
            decision_trail: None,
        })
    }
}

/// Which scheduled calls a list returns; `None` matches any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallFilter {
    /// One customer's calls.
    pub customer_id: Option<String>,
    pub status: Option<CallStatus>,
    /// Calls whose attempts reported this flag.
    pub flag: Option<Flag>,
}

/// What cancelling a customer's communications did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Cancellation {
    /// How many pending calls were cancelled.
    pub cancelled: usize,
    /// Their ids.
    pub cancelled_ids: Vec<CallId>,
    /// Calls a worker already holds (dialing or in progress): they could not be stopped.
    pub in_flight: Vec<InFlight>,
}

/// A call that was already being dialed when a cancellation arrived.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InFlight {
    pub id: CallId,
    pub status: CallStatus,
}

/// Which pending calls a cancellation covers.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Pending<'a> {
    /// Every pending call of one customer.
    Customer(&'a str),
    /// One call.
    Call(CallId),
}

/// Appends trail entries to `call_events`.
pub(crate) async fn append_trail(
    conn: &mut PgConnection,
    entries: &[(CallId, &TrailEntry)],
) -> Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let mut ids = Vec::with_capacity(entries.len());
    let mut ats = Vec::with_capacity(entries.len());
    let mut docs = Vec::with_capacity(entries.len());
    for (id, entry) in entries {
        ids.push(*id.as_uuid());
        ats.push(entry.at);
        docs.push(serde_json::to_string(entry).map_err(|_| corrupt("trail"))?);
    }
    sqlx::query(
        "INSERT INTO call_events (call_id, at, entry)
         SELECT id, at, entry::jsonb FROM unnest($1::uuid[], $2::timestamptz[], $3::text[])
             AS e(id, at, entry)",
    )
    .bind(ids)
    .bind(ats)
    .bind(docs)
    .execute(conn)
    .await?;
    Ok(())
}

/// Cancels the pending calls `which` covers (status `scheduled` only: a conditional update,
/// so a call a worker has claimed is untouched) and records why in their trails.
pub(crate) async fn cancel_pending(
    conn: &mut PgConnection,
    company: CompanyId,
    which: Pending<'_>,
    reason: CancelReason,
    now: DateTime<Utc>,
) -> Result<Vec<CallId>> {
    debug_assert!(CallStatus::Scheduled.can_transition_to(CallStatus::Cancelled));
    // Unstored planned calls become rows first, so they are cancelled (and listed) like
    // any other; a single call stores its schedule's unstored calls up to it (the earlier
    // ones stay pending and reach the queue through the reconciler, long before they are
    // due: see plan.rs).
    match which {
        Pending::Customer(customer) => {
            plan::store_scope(&mut *conn, company, plan::Scope::Customer(customer), now).await?;
        }
        Pending::Call(id) => {
            plan::store_through_call(&mut *conn, company, id, now).await?;
        }
    }
    // Two statements rather than one with `customer_id = $3 OR id = $3`, which no index
    // serves (a scan of the company's calls on every new schedule).
    const BY_CUSTOMER: &str = "UPDATE scheduled_calls SET status = 'cancelled', updated_at = $2,
             reasons = '[]'
         WHERE company_id = $1 AND customer_id = $3 AND status = 'scheduled'
         RETURNING id, due_at";
    const BY_ID: &str = "UPDATE scheduled_calls SET status = 'cancelled', updated_at = $2,
             reasons = '[]'
         WHERE company_id = $1 AND id = $3 AND status = 'scheduled'
         RETURNING id, due_at";
    let query = match which {
        Pending::Customer(customer) => sqlx::query_as::<_, (Uuid, DateTime<Utc>)>(BY_CUSTOMER)
            .bind(company.as_uuid())
            .bind(now)
            .bind(customer.to_owned()),
        Pending::Call(id) => sqlx::query_as::<_, (Uuid, DateTime<Utc>)>(BY_ID)
            .bind(company.as_uuid())
            .bind(now)
            .bind(*id.as_uuid()),
    };
    let rows = query.fetch_all(&mut *conn).await?;
    let entries: Vec<(CallId, TrailEntry)> = rows
        .into_iter()
        .map(|(id, due_at)| {
            let entry = TrailEntry {
                at: now,
                event: Event::Cancelled { reason },
                status: CallStatus::Cancelled,
                due_at,
                blocks: vec![],
            };
            (CallId::from_uuid(id), entry)
        })
        .collect();
    let refs: Vec<(CallId, &TrailEntry)> = entries.iter().map(|(id, e)| (*id, e)).collect();
    append_trail(conn, &refs).await?;
    Ok(entries.into_iter().map(|(id, _)| id).collect())
}

/// Ends the customer's active schedule, if any; returns its id.
pub(crate) async fn end_active_schedule(
    conn: &mut PgConnection,
    company: CompanyId,
    customer: &str,
    now: DateTime<Utc>,
) -> Result<Option<ScheduleId>> {
    let ended: Option<(Uuid,)> = sqlx::query_as(
        "UPDATE schedules SET active = false, ended_at = $3
         WHERE company_id = $1 AND customer_id = $2 AND active RETURNING id",
    )
    .bind(company.as_uuid())
    .bind(customer)
    .bind(now)
    .fetch_optional(conn)
    .await?;
    Ok(ended.map(|(id,)| ScheduleId::from_uuid(id)))
}

impl Store {
    /// One of `company`'s scheduled calls with its decision trail; another company's is
    /// [`Error::NotFound`].
    pub async fn scheduled_call(
        &self,
        company: CompanyId,
        id: CallId,
    ) -> Result<ScheduledCallRecord> {
        let sql =
            format!("SELECT {CALL_COLUMNS} {CALL_FROM} WHERE sc.company_id = $1 AND sc.id = $2");
        let row: Option<CallRow> = sqlx::query_as(&sql)
            .bind(company.as_uuid())
            .bind(*id.as_uuid())
            .fetch_optional(&self.pool)
            .await?;
        let row = match row {
            Some(row) => row,
            None => return self.unstored_call(company, id).await,
        };
        let mut record = ScheduledCallRecord::try_from(row)?;
        // The "planned" entry is on the row (migration 0009) unless the row predates it or
        // a worker's follow-up added the call, when it is the first `call_events` row.
        let trail: Vec<(String,)> = sqlx::query_as(
            "SELECT entry FROM (
                 SELECT 0 AS o, 0::bigint AS id, jsonb_build_object(
                         'at', created_at, 'event', 'planned', 'status', 'scheduled',
                         'dueAt', planned_due_at, 'blocks', coalesce(planned_reasons, '[]'))::text
                         AS entry
                     FROM scheduled_calls WHERE id = $1 AND planned_due_at IS NOT NULL
                 UNION ALL
                 SELECT 1, id, entry::text FROM call_events WHERE call_id = $1
             ) t ORDER BY o, id",
        )
        .bind(*id.as_uuid())
        .fetch_all(&self.pool)
        .await?;
        record.decision_trail = Some(
            trail
                .iter()
                .map(|(doc,)| serde_json::from_str(doc).map_err(|_| corrupt("trail")))
                .collect::<Result<_>>()?,
        );
        Ok(record)
    }

    /// One page of `company`'s scheduled calls matching `filter`, in creation order, after
    /// the cursor `after`; returns the page and the next cursor (`None` on the last page).
    pub async fn list_scheduled_calls(
        &self,
        company: CompanyId,
        filter: &CallFilter,
        after: Option<i64>,
        limit: u32,
    ) -> Result<(Vec<ScheduledCallRecord>, Option<i64>)> {
        let limit = limit.clamp(1, MAX_CALL_PAGE);
        let mut sql = format!("SELECT {CALL_COLUMNS} {CALL_FROM} WHERE sc.company_id = $1");
        let mut n = 1;
        let (mut customer_param, mut after_param) = (None, None);
        let mut clause = |sql: &mut String, condition: &str| {
            n += 1;
            sql.push_str(&format!(
                " AND {}",
                condition.replace('?', &format!("${n}"))
            ));
            n
        };
        if filter.customer_id.is_some() {
            customer_param = Some(clause(&mut sql, "sc.customer_id = ?"));
        }
        if filter.status.is_some() {
            clause(&mut sql, "sc.status = ?");
        }
        if filter.flag.is_some() {
            // `flags <> '{}'` is the flag index's predicate (migration 0009).
            clause(&mut sql, "sc.flags <> '{}' AND sc.flags @> ARRAY[?::text]");
        }
        if after.is_some() {
            after_param = Some(clause(&mut sql, "sc.seq > ?"));
        }
        let page = limit + 1;
        sql.push_str(&format!(" ORDER BY sc.seq LIMIT {page}"));
        // Planned calls not stored yet are pending calls without flags (plan.rs). Each
        // schedule picked has one above the cursor, so `page` schedules are enough.
        if filter.flag.is_none() && matches!(filter.status, None | Some(CallStatus::Scheduled)) {
            let mut schedules = String::from(
                "SELECT * FROM schedules s0 WHERE s0.company_id = $1 AND s0.plan_next_at IS NOT NULL",
            );
            let mut entries = String::new();
            if let Some(c) = customer_param {
                schedules.push_str(&format!(" AND s0.customer_id = ${c} AND s0.active"));
            }
            if let Some(a) = after_param {
                schedules.push_str(&format!(
                    " AND s0.plan_base > ${a} - 256 \
                     AND s0.plan_base + s0.plan_len - 1 > ${a}"
                ));
                entries = format!(" WHERE s.plan_base + k > ${a}");
            }
            sql = format!(
                "SELECT * FROM (({sql}) UNION ALL (SELECT {columns}
                     FROM ({schedules} ORDER BY s0.plan_base LIMIT {page}) s
                     JOIN schedule_plans p ON p.id = s.plan_id
                     JOIN customers c ON c.company_id = s.company_id AND c.id = s.customer_id,
                     generate_series(s.plan_stored, s.plan_len - 1) k{entries}
                     ORDER BY 1 LIMIT {page})) u ORDER BY seq LIMIT {page}",
                columns = plan::unstored_columns(),
            );
        }

        let mut query = sqlx::query_as::<_, CallRow>(&sql).bind(company.as_uuid());
        if let Some(customer) = &filter.customer_id {
            query = query.bind(customer.clone());
        }
        if let Some(status) = filter.status {
            query = query.bind(status.as_str());
        }
        if let Some(flag) = &filter.flag {
            query = query.bind(flag.as_str().to_owned());
        }
        if let Some(after) = after {
            query = query.bind(after);
        }
        crate::page::read(
            &self.pool,
            CALL_LIST_LOCK,
            company,
            query,
            limit,
            |r: &CallRow| r.seq,
        )
        .await
    }

    /// Cancels one pending call. A call a worker holds, or one already finished, is
    /// [`Error::NotPending`] with its status; another company's is [`Error::NotFound`].
    pub async fn cancel_scheduled_call(
        &self,
        company: CompanyId,
        id: CallId,
        now: DateTime<Utc>,
    ) -> Result<ScheduledCallRecord> {
        let mut tx = self.pool.begin().await?;
        let cancelled = cancel_pending(
            &mut tx,
            company,
            Pending::Call(id),
            CancelReason::Requested,
            now,
        )
        .await?;
        tx.commit().await?;
        let record = self.scheduled_call(company, id).await?;
        if cancelled.is_empty() {
            return Err(Error::NotPending {
                status: record.status,
            });
        }
        Ok(record)
    }

    /// Cancels every pending call of one of `company`'s customers and ends the active
    /// schedule; reports what was cancelled and what was already in flight.
    pub async fn cancel_communications(
        &self,
        company: CompanyId,
        customer: &str,
        now: DateTime<Utc>,
    ) -> Result<Cancellation> {
        let mut tx = self.pool.begin().await?;
        let exists: Option<(bool,)> = sqlx::query_as(
            "SELECT true FROM customers WHERE company_id = $1 AND id = $2 FOR UPDATE",
        )
        .bind(company.as_uuid())
        .bind(customer)
        .fetch_optional(&mut *tx)
        .await?;
        if exists.is_none() {
            return Err(Error::NotFound { what: "customer" });
        }
        let cancelled = cancel_pending(
            &mut tx,
            company,
            Pending::Customer(customer),
            CancelReason::Requested,
            now,
        )
        .await?;
        end_active_schedule(&mut tx, company, customer, now).await?;
        let in_flight = in_flight(&mut tx, company, customer).await?;
        tx.commit().await?;
        Ok(Cancellation {
            cancelled: cancelled.len(),
            cancelled_ids: cancelled,
            in_flight,
        })
    }

    /// Moves a pending call to `at`, recording `blocks` (empty: the new time is lawful as
    /// checked by the caller against the policy) in its trail. A call that is not pending is
    /// [`Error::NotPending`].
    pub async fn reschedule_call(
        &self,
        company: CompanyId,
        id: CallId,
        at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<ScheduledCallRecord> {
        let mut tx = self.pool.begin().await?;
        // An unstored planned call becomes a row first (see `cancel_pending`).
        plan::store_through_call(&mut tx, company, id, now).await?;
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT status FROM scheduled_calls WHERE company_id = $1 AND id = $2 FOR UPDATE",
        )
        .bind(company.as_uuid())
        .bind(*id.as_uuid())
        .fetch_optional(&mut *tx)
        .await?;
        let (status,) = row.ok_or(Error::NotFound {
            what: "scheduled call",
        })?;
        let status = CallStatus::from_str(&status).map_err(|_| corrupt("status"))?;
        if status != CallStatus::Scheduled {
            return Err(Error::NotPending { status });
        }
        sqlx::query(
            "UPDATE scheduled_calls SET due_at = $3, reasons = '[]', updated_at = $4
             WHERE company_id = $1 AND id = $2",
        )
        .bind(company.as_uuid())
        .bind(*id.as_uuid())
        .bind(at)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let entry = TrailEntry {
            at: now,
            event: Event::Rescheduled,
            status: CallStatus::Scheduled,
            due_at: at,
            blocks: vec![],
        };
        append_trail(&mut tx, &[(id, &entry)]).await?;
        tx.commit().await?;
        self.scheduled_call(company, id).await
    }

    /// The due times of one customer's pending calls (for policy checks of a reschedule).
    pub async fn pending_due_times(
        &self,
        company: CompanyId,
        customer: &str,
    ) -> Result<Vec<(CallId, DateTime<Utc>)>> {
        let sql = format!(
            "SELECT company_id, customer_id, id, due_at FROM scheduled_calls
             WHERE company_id = $1 AND customer_id = $2 AND status = 'scheduled'
             UNION ALL {}
             ORDER BY due_at",
            plan::unstored_due("s.company_id = $1 AND s.customer_id = $2")
        );
        let rows: Vec<(Uuid, String, Uuid, DateTime<Utc>)> = sqlx::query_as(&sql)
            .bind(company.as_uuid())
            .bind(customer)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(_, _, id, at)| (CallId::from_uuid(id), at))
            .collect())
    }
}

/// The customer's calls a worker holds.
pub(crate) async fn in_flight(
    conn: &mut PgConnection,
    company: CompanyId,
    customer: &str,
) -> Result<Vec<InFlight>> {
    let rows: Vec<(Uuid, String)> = sqlx::query_as(
        "SELECT id, status FROM scheduled_calls
         WHERE company_id = $1 AND customer_id = $2 AND status IN ('dialing', 'in_progress')
         ORDER BY seq",
    )
    .bind(company.as_uuid())
    .bind(customer)
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|(id, status)| {
            Ok(InFlight {
                id: CallId::from_uuid(id),
                status: CallStatus::from_str(&status).map_err(|_| corrupt("status"))?,
            })
        })
        .collect()
}

//! Call attempts: each placed call of a scheduled call, what `GET /calls/{id}` serves.
//!
//! An attempt has its own id (the "call id" of the API and webhooks) and is also identified
//! by (scheduled call, attempt number), the provider's idempotency key. The worker (issue 5)
//! writes attempts; this module reads them, turns a customer's attempts into the contact
//! history the policy's caps count, and offers [`Store::record_attempt`] for the worker and
//! for tests.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use outdial_domain::policy::{Contact, ContactKind};
use outdial_domain::{AttemptNo, AttemptOutcome, CallId, CallStatus, Flag};
use serde::Serialize;
use uuid::Uuid;

use crate::company::CompanyId;
use crate::{Error, Result, Store};

/// The most calls one page returns.
pub const MAX_ATTEMPT_PAGE: u32 = 1000;

const ATTEMPT_COLUMNS: &str = "id, scheduled_call_id, customer_id, attempt, status, \
     transcript, recording_url, flags, started_at, ended_at";

/// One placed call as the API shows it. Field names follow the seed's webhook payload
/// (`recording_url` in snake case, the others in camel case). `Debug` hides the transcript
/// and the recording URL.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct CallRecord {
    /// The call's id.
    pub id: Uuid,
    #[serde(rename = "scheduledCallId")]
    pub scheduled_call_id: CallId,
    #[serde(rename = "customerId")]
    pub customer_id: String,
    /// Which attempt of its scheduled call this is, from 1.
    pub attempt: AttemptNo,
    /// The attempt's status: `dialing`, `in_progress`, or how it ended.
    pub status: CallStatus,
    pub transcript: Option<String>,
    pub recording_url: Option<String>,
    /// When the call was placed.
    pub timestamp: DateTime<Utc>,
    #[serde(rename = "endedAt")]
    pub ended_at: Option<DateTime<Utc>>,
    #[serde(rename = "postProcessingFlags")]
    pub post_processing_flags: Vec<Flag>,
}

impl std::fmt::Debug for CallRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallRecord")
            .field("id", &self.id)
            .field("scheduled_call_id", &self.scheduled_call_id)
            .field("attempt", &self.attempt)
            .field("status", &self.status)
            .field(
                "transcript",
                &self
                    .transcript
                    .as_ref()
                    .map(|t| format!("{} bytes", t.len())),
            )
            .field("timestamp", &self.timestamp)
            .field("post_processing_flags", &self.post_processing_flags)
            .finish_non_exhaustive()
    }
}

/// A placed call to record (the worker's dial intent, or a finished call).
#[derive(Debug, Clone)]
pub struct NewAttempt<'a> {
    pub scheduled_call_id: CallId,
    pub attempt: AttemptNo,
    pub status: CallStatus,
    /// The number dialed (E.164) and the debt the call was about, for the caps.
    pub number: &'a str,
    pub loan_id: Option<&'a str>,
    pub outcome: Option<AttemptOutcome>,
    pub provider_ref: Option<&'a str>,
    pub transcript: Option<&'a str>,
    pub recording_url: Option<&'a str>,
    pub flags: &'a [Flag],
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
}

/// `started_at, number, loan_id, outcome, flags` of an attempt.
pub(crate) type ContactRow = (
    DateTime<Utc>,
    String,
    Option<String>,
    Option<String>,
    Vec<String>,
);

#[derive(sqlx::FromRow)]
struct AttemptRow {
    id: Uuid,
    scheduled_call_id: Uuid,
    customer_id: String,
    attempt: i32,
    status: String,
    transcript: Option<String>,
    recording_url: Option<String>,
    flags: Vec<String>,
    started_at: DateTime<Utc>,
    ended_at: Option<DateTime<Utc>>,
}

fn corrupt(column: &'static str) -> Error {
    Error::Corrupt {
        what: "call",
        column,
    }
}

impl TryFrom<AttemptRow> for CallRecord {
    type Error = Error;
    fn try_from(r: AttemptRow) -> Result<Self> {
        Ok(CallRecord {
            id: r.id,
            scheduled_call_id: CallId::from_uuid(r.scheduled_call_id),
            customer_id: r.customer_id,
            attempt: u32::try_from(r.attempt)
                .ok()
                .and_then(AttemptNo::new)
                .ok_or_else(|| corrupt("attempt"))?,
            status: CallStatus::from_str(&r.status).map_err(|_| corrupt("status"))?,
            transcript: r.transcript,
            recording_url: r.recording_url,
            timestamp: r.started_at,
            ended_at: r.ended_at,
            post_processing_flags: r.flags.iter().map(|f| Flag::from(f.as_str())).collect(),
        })
    }
}

impl Store {
    /// Records a placed call of one of `company`'s scheduled calls and adds its flags to the
    /// scheduled call's. Returns the call's id. The scheduled call must exist for `company`.
    pub async fn record_attempt(&self, company: CompanyId, new: &NewAttempt<'_>) -> Result<Uuid> {
        let id = Uuid::new_v4();
        let flags: Vec<String> = new.flags.iter().map(|f| f.as_str().to_owned()).collect();
        let mut tx = self.pool.begin().await?;
        let customer: Option<(String,)> = sqlx::query_as(
            "UPDATE scheduled_calls
             SET flags = ARRAY(SELECT DISTINCT f FROM unnest(flags || $3::text[]) AS f ORDER BY f)
             WHERE company_id = $1 AND id = $2 RETURNING customer_id",
        )
        .bind(company.as_uuid())
        .bind(*new.scheduled_call_id.as_uuid())
        .bind(&flags)
        .fetch_optional(&mut *tx)
        .await?;
        let (customer,) = customer.ok_or(Error::NotFound {
            what: "scheduled call",
        })?;
        sqlx::query(
            "INSERT INTO call_attempts (id, company_id, customer_id, scheduled_call_id, attempt,
                 status, number, loan_id, provider_ref, outcome, transcript, recording_url,
                 flags, started_at, ended_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        )
        .bind(id)
        .bind(company.as_uuid())
        .bind(&customer)
        .bind(*new.scheduled_call_id.as_uuid())
        .bind(i32::try_from(new.attempt.get()).map_err(|_| corrupt("attempt"))?)
        .bind(new.status.as_str())
        .bind(new.number)
        .bind(new.loan_id)
        .bind(new.provider_ref)
        .bind(new.outcome.map(AttemptOutcome::as_str))
        .bind(new.transcript)
        .bind(new.recording_url)
        .bind(&flags)
        .bind(new.started_at)
        .bind(new.ended_at)
        .execute(&mut *tx)
        .await
        .map_err(|e| Error::from(e).conflict_on("call attempt"))?;
        tx.commit().await?;
        Ok(id)
    }

    /// One of `company`'s calls; another company's is [`Error::NotFound`].
    pub async fn call(&self, company: CompanyId, id: Uuid) -> Result<CallRecord> {
        let sql = format!(
            "SELECT {ATTEMPT_COLUMNS} FROM call_attempts WHERE company_id = $1 AND id = $2"
        );
        let row: Option<AttemptRow> = sqlx::query_as(&sql)
            .bind(company.as_uuid())
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.ok_or(Error::NotFound { what: "call" })?.try_into()
    }

    /// One page of a customer's calls, newest first, after the cursor `after` (the id of
    /// the last call of the previous page); returns the page and the next cursor.
    pub async fn list_calls(
        &self,
        company: CompanyId,
        customer: &str,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<(Vec<CallRecord>, Option<Uuid>)> {
        let limit = limit.clamp(1, MAX_ATTEMPT_PAGE);
        let sql = format!(
            "SELECT {ATTEMPT_COLUMNS} FROM call_attempts
             WHERE company_id = $1 AND customer_id = $2
               AND ($3::uuid IS NULL OR (started_at, id) < (
                   SELECT started_at, id FROM call_attempts
                   WHERE company_id = $1 AND customer_id = $2 AND id = $3))
             ORDER BY started_at DESC, id DESC LIMIT {}",
            limit + 1
        );
        let mut rows: Vec<AttemptRow> = sqlx::query_as(&sql)
            .bind(company.as_uuid())
            .bind(customer)
            .bind(after)
            .fetch_all(&self.pool)
            .await?;
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let next = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(|r| r.id)
        } else {
            None
        };
        let calls = rows
            .into_iter()
            .map(CallRecord::try_from)
            .collect::<Result<_>>()?;
        Ok((calls, next))
    }

    /// A customer's placed calls as the contact history the caps and quiet periods count.
    /// A call without an outcome yet (in flight) counts as placed.
    pub async fn contacts(&self, company: CompanyId, customer: &str) -> Result<Vec<Contact>> {
        let rows: Vec<ContactRow> = sqlx::query_as(
            "SELECT started_at, number, loan_id, outcome, flags FROM call_attempts
                 WHERE company_id = $1 AND customer_id = $2 ORDER BY started_at",
        )
        .bind(company.as_uuid())
        .bind(customer)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(contact).collect()
    }
}

/// One attempt row (`started_at, number, loan_id, outcome, flags`) as a contact.
pub(crate) fn contact((at, number, loan_id, outcome, flags): ContactRow) -> Result<Contact> {
    let flags: Vec<Flag> = flags.iter().map(|f| Flag::from(f.as_str())).collect();
    let kind = match outcome {
        Some(o) => AttemptOutcome::from_str(&o)
            .map_err(|_| corrupt("outcome"))?
            .contact_kind(&flags),
        None if flags.iter().any(Flag::is_conversation) => ContactKind::Conversation,
        None => ContactKind::Placed,
    };
    Ok(Contact {
        at,
        debt: loan_id,
        number: Some(number),
        kind,
    })
}

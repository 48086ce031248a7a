//! The LMS side of a company: its connection (`PUT /lms`), the loans imported from it and
//! what each customer's last sync did.
//!
//! [`Store::insert_synced_customer`] stores a `sync: true` customer, its loans and its sync
//! note in one transaction: either all of it or nothing.

use chrono::{DateTime, NaiveDate, Utc};
use outdial_domain::Customer;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::company::CompanyId;
use crate::customer::insert_customer;
use crate::{Error, Result, Store};

/// A company's stored LMS connection. The headers hold credentials: `Debug` shows only
/// their names.
#[derive(Clone, PartialEq, Eq)]
pub struct LmsSettings {
    pub base_url: String,
    pub headers: Vec<(String, String)>,
    pub timeout_ms: u64,
    pub updated_at: DateTime<Utc>,
}

impl std::fmt::Debug for LmsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("LmsSettings")
            .field("base_url", &self.base_url)
            .field("headers", &names)
            .field("timeout_ms", &self.timeout_ms)
            .finish()
    }
}

/// A loan to store as the LMS described it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewLoan {
    /// The LMS's integer id.
    pub lms_id: i64,
    pub reference: Option<String>,
    pub status: Option<String>,
    pub balance_cents: Option<i64>,
    pub due_date: Option<NaiveDate>,
    pub metadata: Map<String, Value>,
}

/// A customer's loan as `GET /customers/{id}` shows it. `id` is the stored key (the LMS id
/// in decimal, or the reference the request gave); the rest is what the LMS said, absent
/// for loans only named by a request.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct LoanRecord {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lms_id: Option<i64>,
    #[serde(rename = "loanId", skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub balance_cents: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub due_date: Option<NaiveDate>,
    #[sqlx(json)]
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub metadata: Map<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub synced_at: Option<DateTime<Utc>>,
}

/// What a customer's last sync did (`GET /customers/{id}` shows it as `lmsSync`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncNote {
    pub synced_at: DateTime<Utc>,
    /// The fields whose value came from the LMS.
    pub fields_from_lms: Vec<String>,
    /// Every zone the ZIP could mean, when `timezone` was resolved from it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timezone_candidates: Option<Vec<String>>,
}

/// An `lms_connections` row: base URL, headers, budget, last change.
type LmsRow = (
    String,
    sqlx::types::Json<Vec<(String, String)>>,
    i32,
    DateTime<Utc>,
);
/// A `customer_syncs` row: when, fields from the LMS, ZIP zone candidates.
type NoteRow = (DateTime<Utc>, Vec<String>, Option<Vec<String>>);

impl Store {
    /// Stores (creates or replaces) `company`'s LMS connection.
    pub async fn put_lms(
        &self,
        company: CompanyId,
        base_url: &str,
        headers: &[(String, String)],
        timeout_ms: u64,
        now: DateTime<Utc>,
    ) -> Result<LmsSettings> {
        let pairs: Vec<[&str; 2]> = headers
            .iter()
            .map(|(n, v)| [n.as_str(), v.as_str()])
            .collect();
        let timeout = i32::try_from(timeout_ms).map_err(|_| Error::Corrupt {
            what: "lms connection",
            column: "timeout_ms",
        })?;
        sqlx::query(
            "INSERT INTO lms_connections (company_id, base_url, headers, timeout_ms, created_at,
                 updated_at)
             VALUES ($1, $2, $3, $4, $5, $5)
             ON CONFLICT (company_id) DO UPDATE SET base_url = $2, headers = $3,
                 timeout_ms = $4, updated_at = $5",
        )
        .bind(company.as_uuid())
        .bind(base_url)
        .bind(sqlx::types::Json(&pairs))
        .bind(timeout)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(LmsSettings {
            base_url: base_url.to_owned(),
            headers: headers.to_vec(),
            timeout_ms,
            updated_at: now,
        })
    }

    /// `company`'s LMS connection, if it has one.
    pub async fn lms(&self, company: CompanyId) -> Result<Option<LmsSettings>> {
        let row: Option<LmsRow> = sqlx::query_as(
            "SELECT base_url, headers, timeout_ms, updated_at FROM lms_connections
                 WHERE company_id = $1",
        )
        .bind(company.as_uuid())
        .fetch_optional(&self.pool)
        .await?;
        Ok(
            row.map(|(base_url, headers, timeout, updated_at)| LmsSettings {
                base_url,
                headers: headers.0,
                timeout_ms: u64::try_from(timeout).unwrap_or(1),
                updated_at,
            }),
        )
    }

    /// Removes `company`'s LMS connection; false when it had none.
    pub async fn delete_lms(&self, company: CompanyId) -> Result<bool> {
        let done = sqlx::query("DELETE FROM lms_connections WHERE company_id = $1")
            .bind(company.as_uuid())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Stores a customer fetched with `sync: true`, its `loans` and its sync note, in one
    /// transaction. An id the company already has is [`Error::Conflict`] and nothing is
    /// stored.
    pub async fn insert_synced_customer(
        &self,
        company: CompanyId,
        customer: &Customer,
        loans: &[NewLoan],
        note: &SyncNote,
        now: DateTime<Utc>,
    ) -> Result<Customer> {
        let mut tx = self.pool.begin().await?;
        let refs = loans.iter().map(|l| l.lms_id.to_string()).collect();
        let stored = insert_customer(&mut *tx, company, customer, refs, now).await?;
        upsert_loans(&mut tx, company, customer.id.as_str(), loans, now).await?;
        put_note(&mut tx, company, customer.id.as_str(), note).await?;
        tx.commit().await?;
        Ok(stored)
    }

    /// Records a re-sync of an existing customer: its loans as the LMS now lists them
    /// (known ones updated, new ones added; loans the LMS no longer lists are kept) and the
    /// note.
    pub async fn record_sync(
        &self,
        company: CompanyId,
        customer: &str,
        loans: &[NewLoan],
        note: &SyncNote,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        upsert_loans(&mut tx, company, customer, loans, now).await?;
        put_note(&mut tx, company, customer, note).await?;
        tx.commit().await?;
        Ok(())
    }

    /// `company`'s customer `id`'s loans, in the order they were stored, and its last sync.
    pub async fn loans_and_sync(
        &self,
        company: CompanyId,
        id: &str,
    ) -> Result<(Vec<LoanRecord>, Option<SyncNote>)> {
        let loans: Vec<LoanRecord> = sqlx::query_as(
            "SELECT id, lms_id, reference, status, balance_cents, due_date, metadata, synced_at
             FROM loans WHERE company_id = $1 AND customer_id = $2
             ORDER BY created_at, lms_id NULLS LAST, id",
        )
        .bind(company.as_uuid())
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        let note: Option<NoteRow> = sqlx::query_as(
            "SELECT synced_at, fields_from_lms, timezone_candidates FROM customer_syncs
             WHERE company_id = $1 AND customer_id = $2",
        )
        .bind(company.as_uuid())
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok((
            loans,
            note.map(
                |(synced_at, fields_from_lms, timezone_candidates)| SyncNote {
                    synced_at,
                    fields_from_lms,
                    timezone_candidates,
                },
            ),
        ))
    }
}

/// Stores `loans` (known ones updated, new ones added) and the sync note of `customer`.
pub(crate) async fn record(
    tx: &mut sqlx::PgConnection,
    company: CompanyId,
    customer: &str,
    loans: &[NewLoan],
    note: &SyncNote,
    now: DateTime<Utc>,
) -> Result<()> {
    upsert_loans(tx, company, customer, loans, now).await?;
    put_note(tx, company, customer, note).await
}

async fn upsert_loans(
    conn: &mut sqlx::PgConnection,
    company: CompanyId,
    customer: &str,
    loans: &[NewLoan],
    now: DateTime<Utc>,
) -> Result<()> {
    if loans.is_empty() {
        return Ok(());
    }
    let ids: Vec<i64> = loans.iter().map(|l| l.lms_id).collect();
    let refs: Vec<Option<&str>> = loans.iter().map(|l| l.reference.as_deref()).collect();
    let statuses: Vec<Option<&str>> = loans.iter().map(|l| l.status.as_deref()).collect();
    let balances: Vec<Option<i64>> = loans.iter().map(|l| l.balance_cents).collect();
    let dues: Vec<Option<NaiveDate>> = loans.iter().map(|l| l.due_date).collect();
    let metadata: Vec<String> = loans
        .iter()
        .map(|l| serde_json::to_string(&l.metadata).unwrap_or_else(|_| "{}".to_owned()))
        .collect();
    sqlx::query(
        "INSERT INTO loans (company_id, customer_id, id, created_at, lms_id, reference, status,
             balance_cents, due_date, metadata, synced_at)
         SELECT $1, $2, l.lms_id::text, $3, l.lms_id, l.reference, l.status, l.balance,
             l.due, l.metadata::jsonb, $3
         FROM unnest($4::bigint[], $5::text[], $6::text[], $7::bigint[], $8::date[], $9::text[])
             AS l (lms_id, reference, status, balance, due, metadata)
         ON CONFLICT (company_id, customer_id, id) DO UPDATE SET lms_id = excluded.lms_id,
             reference = excluded.reference, status = excluded.status,
             balance_cents = excluded.balance_cents, due_date = excluded.due_date,
             metadata = excluded.metadata, synced_at = excluded.synced_at",
    )
    .bind(company.as_uuid())
    .bind(customer)
    .bind(now)
    .bind(ids)
    .bind(refs)
    .bind(statuses)
    .bind(balances)
    .bind(dues)
    .bind(metadata)
    .execute(conn)
    .await?;
    Ok(())
}

async fn put_note(
    conn: &mut sqlx::PgConnection,
    company: CompanyId,
    customer: &str,
    note: &SyncNote,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO customer_syncs (company_id, customer_id, synced_at, fields_from_lms,
             timezone_candidates)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (company_id, customer_id) DO UPDATE SET synced_at = $3,
             fields_from_lms = $4, timezone_candidates = $5",
    )
    .bind(company.as_uuid())
    .bind(customer)
    .bind(note.synced_at)
    .bind(&note.fields_from_lms)
    .bind(note.timezone_candidates.as_deref())
    .execute(conn)
    .await?;
    Ok(())
}

//! Stored `Idempotency-Key`s of POST requests, per company.
//!
//! [`Store::begin_idempotent`] claims a key before the request runs: the first request with
//! a key inserts a row (in progress); a later one with the same key gets the stored response
//! if the request (method, path, query, body: their SHA-256, computed by the caller) is the
//! same, or [`Idempotent::Mismatch`] if it is not, or [`Idempotent::InProgress`] while the
//! first is still running. [`Store::finish_idempotent`] stores the response;
//! [`Store::abandon_idempotent`] removes the claim when the request failed on the server's
//! side, so a retry can run. Keys are kept [`KEY_RETENTION_HOURS`]; an older row is
//! replaced by the next request that uses its key.

use chrono::{DateTime, Duration, Utc};

use crate::company::CompanyId;
use crate::{Result, Store};

/// How long a key's response is replayed.
pub const KEY_RETENTION_HOURS: i64 = 24;

/// A claim still in progress after this long belongs to a request that died (a crashed
/// process, a dropped connection): the next request with the key takes it over.
pub const STALE_CLAIM_SECS: i64 = 60;

/// `request_sha256, status, response` of a stored key.
type KeyRow = (
    Vec<u8>,
    Option<i16>,
    Option<Vec<u8>>,
    Option<sqlx::types::Json<Vec<(String, String)>>>,
);

/// The answer to claiming a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Idempotent {
    /// The key is new (or expired): run the request, then finish or abandon the key.
    Proceed,
    /// The same request already ran: replay its status, headers and body.
    Replay {
        status: u16,
        /// The response headers worth repeating, as stored by `finish_idempotent`.
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// The key was used for a different request.
    Mismatch,
    /// The same request is still running.
    InProgress,
}

impl Store {
    /// Claims `key` for the request whose SHA-256 is `request` (see the module docs).
    pub async fn begin_idempotent(
        &self,
        company: CompanyId,
        key: &str,
        request: &[u8; 32],
        now: DateTime<Utc>,
    ) -> Result<Idempotent> {
        let expired_before = now - Duration::hours(KEY_RETENTION_HOURS);
        let stale_before = now - Duration::seconds(STALE_CLAIM_SECS);
        // Insert, or take over an expired row; either way we own the key.
        let claimed: Option<(bool,)> = sqlx::query_as(
            "INSERT INTO idempotency_keys (company_id, key, request_sha256, created_at)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (company_id, key) DO UPDATE
                 SET request_sha256 = EXCLUDED.request_sha256, status = NULL, response = NULL,
                     headers = NULL, created_at = EXCLUDED.created_at
                 WHERE idempotency_keys.created_at < $5
                    OR (idempotency_keys.status IS NULL AND idempotency_keys.created_at < $6)
             RETURNING true",
        )
        .bind(company.as_uuid())
        .bind(key)
        .bind(request.as_slice())
        .bind(now)
        .bind(expired_before)
        .bind(stale_before)
        .fetch_optional(&self.pool)
        .await?;
        if claimed.is_some() {
            return Ok(Idempotent::Proceed);
        }
        let row: Option<KeyRow> = sqlx::query_as(
            "SELECT request_sha256, status, response, headers FROM idempotency_keys
             WHERE company_id = $1 AND key = $2",
        )
        .bind(company.as_uuid())
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            // Abandoned between our insert and this read: the client may simply retry.
            None => Idempotent::InProgress,
            Some((hash, ..)) if hash.as_slice() != request.as_slice() => Idempotent::Mismatch,
            Some((_, Some(status), Some(body), headers)) => Idempotent::Replay {
                status: u16::try_from(status).unwrap_or(500),
                headers: headers.map(|sqlx::types::Json(h)| h).unwrap_or_default(),
                body,
            },
            Some(_) => Idempotent::InProgress,
        })
    }

    /// Stores the response of the request that claimed `key`.
    pub async fn finish_idempotent(
        &self,
        company: CompanyId,
        key: &str,
        status: u16,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Result<()> {
        sqlx::query(
            "UPDATE idempotency_keys SET status = $3, response = $4, headers = $5
             WHERE company_id = $1 AND key = $2",
        )
        .bind(company.as_uuid())
        .bind(key)
        .bind(i16::try_from(status).unwrap_or(500))
        .bind(body)
        .bind(sqlx::types::Json(headers))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Releases `key` after a request that failed on the server's side.
    pub async fn abandon_idempotent(&self, company: CompanyId, key: &str) -> Result<()> {
        sqlx::query("DELETE FROM idempotency_keys WHERE company_id = $1 AND key = $2")
            .bind(company.as_uuid())
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

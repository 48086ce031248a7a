//! Call events received from the telephony provider on the signed callback route, stored
//! once each (by the provider's event id) for the worker that follows the call.

use chrono::{DateTime, Utc};

use crate::{Result, Store};

/// One provider call event, as received and verified.
#[derive(Debug, Clone, Copy)]
pub struct ProviderEvent<'a> {
    /// The provider's stable event id.
    pub id: &'a str,
    /// The idempotency key the call was placed under (`"{call}:{attempt}"`).
    pub call_key: &'a str,
    /// `call.answered`, `call.ended`.
    pub kind: &'a str,
    pub occurred_at: DateTime<Utc>,
    /// The provider's call at that moment, as JSON.
    pub call: &'a serde_json::Value,
}

impl Store {
    /// Stores `event` unless an event with its id is already stored (a provider retrying a
    /// delivery); returns whether it was new.
    pub async fn record_provider_event(
        &self,
        event: &ProviderEvent<'_>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let stored = sqlx::query(
            "INSERT INTO provider_events (id, call_key, kind, occurred_at, call, received_at)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING",
        )
        .bind(event.id)
        .bind(event.call_key)
        .bind(event.kind)
        .bind(event.occurred_at)
        .bind(event.call)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(stored.rows_affected() == 1)
    }

    /// The newest call state the provider reported by callback for the call placed under
    /// `call_key` (an ended call's state first), if any event arrived.
    pub async fn provider_call_state(&self, call_key: &str) -> Result<Option<serde_json::Value>> {
        let row: Option<(serde_json::Value,)> = sqlx::query_as(
            "SELECT call FROM provider_events WHERE call_key = $1
             ORDER BY kind = 'call.ended' DESC, occurred_at DESC LIMIT 1",
        )
        .bind(call_key)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(call,)| call))
    }
}

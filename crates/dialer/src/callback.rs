//! Call events and their delivery to a callback URL, signed (see [`crate::signature`]) and
//! retried a few times with backoff.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use outdial_domain::Clock;
use serde::{Deserialize, Serialize};

use crate::signature::{EVENT_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign};
use crate::{Error, ProviderCall, Result};

/// What happened to a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventKind {
    /// Someone (a person or a machine) answered.
    #[serde(rename = "call.answered")]
    Answered,
    /// The call is over; the event's call carries the result.
    #[serde(rename = "call.ended")]
    Ended,
}

impl EventKind {
    fn as_str(self) -> &'static str {
        match self {
            EventKind::Answered => "answered",
            EventKind::Ended => "ended",
        }
    }
}

/// One call event, as delivered (JSON body of a callback).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallEvent {
    /// Stable id: `"{provider call id}.{answered|ended}"`, the same on every retry.
    pub id: String,
    /// What happened.
    #[serde(rename = "type")]
    pub kind: EventKind,
    /// When it happened.
    pub occurred_at: DateTime<Utc>,
    /// The call at that moment.
    pub call: ProviderCall,
}

impl CallEvent {
    /// The event `kind` of `call`, stamped with the call's own answer or end time.
    pub fn new(kind: EventKind, call: ProviderCall) -> Self {
        let occurred_at = match kind {
            EventKind::Answered => call.answered_at,
            EventKind::Ended => call.ended_at,
        }
        .unwrap_or(call.created_at);
        Self {
            id: format!("{}.{}", call.id, kind.as_str()),
            kind,
            occurred_at,
            call,
        }
    }
}

/// How callbacks are sent.
#[derive(Clone)]
pub struct DeliveryConfig {
    /// The HMAC key.
    pub secret: Vec<u8>,
    /// Tries per event, the first included.
    pub max_tries: u32,
    /// Wait before the second try; doubled after each failure.
    pub first_backoff: Duration,
    /// Per-try timeout.
    pub timeout: Duration,
}

impl std::fmt::Debug for DeliveryConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliveryConfig")
            .field("secret", &"<redacted>")
            .field("max_tries", &self.max_tries)
            .field("first_backoff", &self.first_backoff)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl DeliveryConfig {
    /// 4 tries, 200 ms first backoff, 5 s timeout.
    pub fn new(secret: impl Into<Vec<u8>>) -> Self {
        Self {
            secret: secret.into(),
            max_tries: 4,
            first_backoff: Duration::from_millis(200),
            timeout: Duration::from_secs(5),
        }
    }
}

/// Sends call events to callback URLs.
#[derive(Debug, Clone)]
pub struct Deliverer {
    http: reqwest::Client,
    config: Arc<DeliveryConfig>,
    clock: Arc<dyn Clock>,
}

impl Deliverer {
    /// A deliverer signing with `config.secret` at `clock`'s time.
    pub fn new(config: DeliveryConfig, clock: Arc<dyn Clock>) -> Result<Self> {
        let http = reqwest::Client::builder()
            .use_rustls_tls()
            .timeout(config.timeout)
            .build()
            .map_err(Error::HttpClient)?;
        Ok(Self {
            http,
            config: Arc::new(config),
            clock,
        })
    }

    /// Posts `event` to `url` until a 2xx answer or the tries run out; whether it was
    /// delivered. Each try is signed afresh (new timestamp), with the same event id.
    pub async fn deliver(&self, url: &str, event: &CallEvent) -> bool {
        let body = match serde_json::to_vec(event) {
            Ok(body) => body,
            Err(e) => {
                tracing::error!(error = %e, event.id = %event.id, "call event not serializable");
                return false;
            }
        };
        let mut backoff = self.config.first_backoff;
        for attempt in 1..=self.config.max_tries {
            let timestamp = self.clock.now().timestamp();
            let signature = sign(&self.config.secret, timestamp, &body);
            let sent = self
                .http
                .post(url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header(EVENT_ID_HEADER, &event.id)
                .header(TIMESTAMP_HEADER, timestamp.to_string())
                .header(SIGNATURE_HEADER, signature)
                .body(body.clone())
                .send()
                .await;
            match sent {
                Ok(response) if response.status().is_success() => return true,
                Ok(response) => tracing::debug!(
                    event.id = %event.id,
                    http.status = response.status().as_u16(),
                    attempt,
                    "callback refused"
                ),
                Err(e) => {
                    tracing::debug!(event.id = %event.id, error = %e, attempt, "callback failed")
                }
            }
            if attempt < self.config.max_tries {
                tokio::time::sleep(backoff).await;
                backoff = backoff.saturating_mul(2);
            }
        }
        tracing::warn!(event.id = %event.id, tries = self.config.max_tries, "callback given up");
        false
    }
}

//! Webhook delivery from the outbox: each `call.completed` event is POSTed to the company's
//! URL with `X-Outdial-Event-Id` (stable across retries), `X-Outdial-Timestamp` and
//! `X-Outdial-Signature: v1=<hex HMAC-SHA256 of "{timestamp}.{body}">`
//! (`outdial_dialer::signature`, the same scheme as provider callbacks). A 2xx within the
//! timeout is delivered; anything else is retried with exponential backoff and full jitter
//! until `max_tries`, then dead-lettered (re-drivable through the API).

use std::sync::Arc;
use std::time::Duration;

use outdial_dialer::signature::{EVENT_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign};
use outdial_domain::Clock;
use outdial_store::{Delivery, Store};
use tokio::sync::{Semaphore, watch};

/// How webhooks are delivered.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// Per request.
    pub timeout: Duration,
    /// Tries before the dead letter.
    pub max_tries: u32,
    /// The first retry's base delay (doubling each try, capped at `max_backoff`).
    pub base_backoff: Duration,
    pub max_backoff: Duration,
    /// Events per poll.
    pub batch: u32,
    /// Sleep when nothing is due.
    pub idle: Duration,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            timeout: Duration::from_secs(10),
            max_tries: 8,
            base_backoff: Duration::from_secs(5),
            max_backoff: Duration::from_secs(3600),
            batch: 50,
            idle: Duration::from_millis(500),
        }
    }
}

/// The delay before try `tries + 1`: full jitter over `base * 2^tries`, capped.
pub fn backoff(config: &WebhookConfig, tries: u32) -> Duration {
    let exp = config
        .base_backoff
        .saturating_mul(2u32.saturating_pow(tries.min(20)))
        .min(config.max_backoff);
    let millis = u64::try_from(exp.as_millis()).unwrap_or(u64::MAX).max(1);
    Duration::from_millis(rand::random_range(millis / 2..=millis))
}

/// Events handed over by the dispatch loop right after their result was written (by a
/// store made with [`Store::delivering_webhooks`] and [`Deliverer::hold`]): each is sent
/// at once, without an outbox poll and claim. At most [`DIRECT_AT_ONCE`] are in flight; an
/// event beyond that, or one whose process dies before recording it, falls due after the
/// hold and the outbox poll ([`run`]) delivers it.
#[derive(Debug, Clone)]
pub struct Deliverer {
    client: reqwest::Client,
    store: Store,
    clock: Arc<dyn Clock>,
    config: WebhookConfig,
    permits: Arc<Semaphore>,
}

/// Direct deliveries in flight at once, per process.
pub const DIRECT_AT_ONCE: usize = 256;

impl Deliverer {
    /// A deliverer recording its deliveries in `store`.
    pub fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        config: WebhookConfig,
    ) -> Result<Deliverer, reqwest::Error> {
        Ok(Deliverer {
            client: reqwest::Client::builder().timeout(config.timeout).build()?,
            store,
            clock,
            config,
            permits: Arc::new(Semaphore::new(DIRECT_AT_ONCE)),
        })
    }

    /// How long an event handed to this deliverer stays out of the outbox poll: the claim
    /// an outbox poll takes on an event ([`run`]).
    pub fn hold(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.config.timeout * 3).unwrap_or_default()
    }

    /// Sends `d` now, on its own task (or leaves it to the outbox poll when
    /// [`DIRECT_AT_ONCE`] are in flight).
    pub fn send(&self, d: Delivery) {
        let Ok(permit) = Arc::clone(&self.permits).try_acquire_owned() else {
            tracing::debug!(event.id = %d.id, "direct deliveries saturated; left to the outbox poll");
            return;
        };
        let me = self.clone();
        tokio::spawn(async move {
            let sent = deliver(&me.client, &me.store, me.clock.as_ref(), &me.config, d).await;
            if let Err(e) = sent {
                tracing::warn!(error = %e, "cannot record a webhook delivery");
            }
            drop(permit);
        });
    }
}

/// Delivers until `shutdown` turns true.
pub async fn run(
    store: Store,
    clock: Arc<dyn Clock>,
    config: WebhookConfig,
    mut shutdown: watch::Receiver<bool>,
) {
    let client = match reqwest::Client::builder().timeout(config.timeout).build() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the webhook HTTP client");
            return;
        }
    };
    while !*shutdown.borrow() {
        let now = clock.now();
        let claim_until = now + chrono::Duration::from_std(config.timeout * 3).unwrap_or_default();
        let batch = match store.claim_deliveries(now, claim_until, config.batch).await {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the webhook outbox");
                Vec::new()
            }
        };
        if batch.is_empty() {
            tokio::select! {
                () = tokio::time::sleep(config.idle) => {}
                _ = shutdown.changed() => {}
            }
            continue;
        }
        let sends = batch
            .into_iter()
            .map(|d| deliver(&client, &store, clock.as_ref(), &config, d));
        // The batch's deliveries run concurrently: one slow endpoint does not hold up the rest.
        for result in futures_util::future::join_all(sends).await {
            if let Err(e) = result {
                tracing::warn!(error = %e, "cannot record a webhook delivery");
            }
        }
    }
}

/// One try of one event.
async fn deliver(
    client: &reqwest::Client,
    store: &Store,
    clock: &dyn Clock,
    config: &WebhookConfig,
    d: Delivery,
) -> outdial_store::Result<()> {
    let body = serde_json::to_vec(&d.payload).unwrap_or_default();
    let timestamp = clock.now().timestamp();
    let signature = sign(d.secret.as_bytes(), timestamp, &body);
    let sent = client
        .post(&d.url)
        .header("content-type", "application/json")
        .header(EVENT_ID_HEADER, d.id.to_string())
        .header(TIMESTAMP_HEADER, timestamp.to_string())
        .header(SIGNATURE_HEADER, signature)
        .body(body)
        .send()
        .await;
    let now = clock.now();
    let error = match sent {
        Ok(r) if r.status().is_success() => {
            crate::telemetry::webhook("delivered");
            tracing::info!(event.id = %d.id, "webhook delivered");
            return store.delivered(d.id, now).await;
        }
        Ok(r) => format!("HTTP {}", r.status().as_u16()),
        Err(e) if e.is_timeout() => "timeout".to_owned(),
        Err(_) => "connection failed".to_owned(),
    };
    let tries = d.attempts + 1;
    let retry_at = (tries < config.max_tries)
        .then(|| now + chrono::Duration::from_std(backoff(config, d.attempts)).unwrap_or_default());
    crate::telemetry::webhook(if retry_at.is_none() { "dead" } else { "failed" });
    if retry_at.is_none() {
        tracing::error!(event.id = %d.id, error = %error, "webhook dead-lettered after the last try");
    } else {
        tracing::warn!(event.id = %d.id, error = %error, tries, "webhook delivery failed; will retry");
    }
    store.delivery_failed(d.id, &error, retry_at, now).await
}

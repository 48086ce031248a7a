//! The Redis connection: a reconnecting multiplexed connection plus bounded retries with
//! backoff, so a Redis restart or a timeout delays an operation instead of failing it.

use std::future::Future;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ErrorKind, RedisError, RedisResult, ServerErrorKind};
use tokio::time::Instant;

use crate::{QueueConfig, Result};

/// A shared, reconnecting connection. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Connection {
    manager: ConnectionManager,
    retry_for: Duration,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("retry_for", &self.retry_for)
            .finish_non_exhaustive()
    }
}

/// Whether trying again later can succeed: the server is away, restarting, loading its
/// data or failing over.
fn transient(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || matches!(
            e.kind(),
            ErrorKind::Server(
                ServerErrorKind::BusyLoading
                    | ServerErrorKind::TryAgain
                    | ServerErrorKind::ClusterDown
                    | ServerErrorKind::MasterDown
                    | ServerErrorKind::ReadOnly
            )
        )
}

impl Connection {
    /// Connects lazily: the first operation opens the connection (and retries).
    pub(crate) fn open(url: &str, config: &QueueConfig) -> Result<Self> {
        let client = redis::Client::open(url)?;
        let cm = ConnectionManagerConfig::new()
            .set_response_timeout(Some(config.response_timeout))
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(10))
            .set_max_delay(Duration::from_millis(500));
        let manager = ConnectionManager::new_lazy_with_config(client, cm)?;
        Ok(Self {
            manager,
            retry_for: config.retry_for,
        })
    }

    /// Runs `op` on the connection, retrying transient failures with exponential backoff
    /// (5 ms doubling to 500 ms) for up to `retry_for`.
    pub(crate) async fn run<T, F, Fut>(&self, what: &'static str, op: F) -> Result<T>
    where
        F: Fn(ConnectionManager) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let start = Instant::now();
        let mut delay = Duration::from_millis(5);
        loop {
            match op(self.manager.clone()).await {
                Ok(v) => return Ok(v),
                Err(e) if transient(&e) && start.elapsed() < self.retry_for => {
                    tracing::warn!(op = what, error = %e, delay_ms = delay.as_millis() as u64, "redis unavailable, retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_millis(500));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
}

//! The Redis connection: a reconnecting multiplexed connection plus bounded retries with
//! backoff, so a Redis restart or a timeout delays an operation instead of failing it.

use std::future::Future;
use std::time::Duration;

use outdial_redis::{Options, Redis, transient};
use redis::RedisResult;
use tokio::time::Instant;

use crate::{QueueConfig, Result};

/// A shared, reconnecting connection (a single server, a cluster or a Sentinel primary).
/// Cheap to clone.
#[derive(Clone)]
pub(crate) struct Connection {
    redis: Redis,
    retry_for: Duration,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("redis", &self.redis)
            .field("retry_for", &self.retry_for)
            .finish()
    }
}

impl Connection {
    /// Connects lazily: the first operation opens the connection (and retries).
    pub(crate) fn open(url: &str, config: &QueueConfig) -> Result<Self> {
        let options = Options {
            response_timeout: config.response_timeout,
            ..Options::default()
        };
        Ok(Self {
            redis: Redis::open_lazy(url, &options)?,
            retry_for: config.retry_for,
        })
    }

    /// Runs `op` on the connection, retrying transient failures with exponential backoff
    /// (5 ms doubling to 500 ms) for up to `retry_for`.
    pub(crate) async fn run<T, F, Fut>(&self, what: &'static str, op: F) -> Result<T>
    where
        F: Fn(Redis) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let start = Instant::now();
        let mut delay = Duration::from_millis(5);
        loop {
            match op(self.redis.clone()).await {
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

//! [`Follower`]: a connection to the primary the Sentinels name, re-resolved after a failure.
//!
//! The redis crate's Sentinel client finds the primary (and checks its role) but hands out a
//! plain multiplexed connection that stays bound to that address. The follower keeps one such
//! connection and drops it when a command fails in a way a failover causes (connection lost,
//! timeout, `READONLY` from a demoted primary), so the next command asks the Sentinels again.
//! Callers retry transient errors (the queue does, with backoff).

use std::sync::Mutex;

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{AsyncConnectionConfig, Cmd, ConnectionAddr, Pipeline, RedisError, RedisResult, Value};

use crate::{Error, Options, Result, Target, transient};

/// The current primary connection, numbered so a stale failure cannot drop a newer one.
#[derive(Default)]
struct Current {
    generation: u64,
    conn: Option<MultiplexedConnection>,
}

pub(crate) struct Follower {
    client: tokio::sync::Mutex<SentinelClient>,
    current: Mutex<Current>,
    config: AsyncConnectionConfig,
    db: i64,
}

impl Follower {
    pub(crate) fn new(target: &Target, options: &Options) -> Result<Self> {
        let Target::Sentinel {
            sentinels,
            service,
            db,
            auth,
            sentinel_auth,
        } = target
        else {
            return Err(Error::Url("not a redis+sentinel:// URL".into()));
        };
        let addrs = sentinels
            .iter()
            .map(|n| ConnectionAddr::Tcp(n.host.clone(), n.port));
        let mut b = SentinelClientBuilder::new(addrs, service, SentinelServerType::Master)
            .map_err(|e| Error::Url(e.to_string()))?
            .set_client_to_redis_db(*db);
        if let Some(u) = &auth.username {
            b = b.set_client_to_redis_username(u);
        }
        if let Some(p) = &auth.password {
            b = b.set_client_to_redis_password(p);
        }
        if let Some(u) = &sentinel_auth.username {
            b = b.set_client_to_sentinel_username(u);
        }
        if let Some(p) = &sentinel_auth.password {
            b = b.set_client_to_sentinel_password(p);
        }
        let client = b.build().map_err(|e| Error::Url(e.to_string()))?;
        Ok(Self {
            client: tokio::sync::Mutex::new(client),
            current: Mutex::default(),
            config: AsyncConnectionConfig::new()
                .set_connection_timeout(Some(options.connection_timeout))
                .set_response_timeout(Some(options.response_timeout)),
            db: *db,
        })
    }

    pub(crate) fn db(&self) -> i64 {
        self.db
    }

    fn cached(&self) -> Option<(u64, MultiplexedConnection)> {
        let current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        current.conn.clone().map(|c| (current.generation, c))
    }

    /// The current primary connection, asking the Sentinels when there is none.
    async fn connection(&self) -> RedisResult<(u64, MultiplexedConnection)> {
        if let Some(c) = self.cached() {
            return Ok(c);
        }
        let mut client = self.client.lock().await;
        // Another caller may have connected while this one waited for the lock.
        if let Some(c) = self.cached() {
            return Ok(c);
        }
        let conn = client
            .get_async_connection_with_config(&self.config)
            .await?;
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        current.generation += 1;
        current.conn = Some(conn.clone());
        tracing::info!(
            generation = current.generation,
            "redis sentinel: connected to the primary"
        );
        Ok((current.generation, conn))
    }

    /// Drops connection `generation` if `e` is what a failover causes.
    fn after(&self, generation: u64, e: &RedisError) {
        if transient(e) {
            let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
            if current.generation == generation && current.conn.is_some() {
                current.conn = None;
                tracing::warn!(error = %e, "redis sentinel: asking the sentinels for the primary again");
            }
        }
    }

    /// Checks an answer (an error, or a server error inside it such as `READONLY`).
    fn check(&self, generation: u64, r: &RedisResult<Value>) {
        match r {
            Err(e) => self.after(generation, e),
            Ok(Value::ServerError(e)) => self.after(generation, &RedisError::from(e.clone())),
            Ok(_) => {}
        }
    }

    pub(crate) async fn command(&self, cmd: &Cmd) -> RedisResult<Value> {
        let (generation, mut conn) = self.connection().await?;
        let r = conn.req_packed_command(cmd).await;
        self.check(generation, &r);
        r
    }

    pub(crate) async fn pipeline(
        &self,
        pipeline: &Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisResult<Vec<Value>> {
        let (generation, mut conn) = self.connection().await?;
        let r = conn.req_packed_commands(pipeline, offset, count).await;
        match &r {
            Err(e) => self.after(generation, e),
            Ok(values) => {
                for v in values {
                    if let Value::ServerError(e) = v {
                        self.after(generation, &RedisError::from(e.clone()));
                    }
                }
            }
        }
        r
    }
}

//! [`Redis`]: one connection type over a single server, a cluster or a Sentinel primary.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClientBuilder, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo, Slot};
use redis::{Cmd, Pipeline, RedisFuture, RedisResult, Value};

use crate::sentinel::Follower;
use crate::{Error, Node, Result, Target};

/// Timeouts and reconnect pacing.
#[derive(Debug, Clone)]
pub struct Options {
    /// How long one command may wait for its answer.
    pub response_timeout: Duration,
    /// How long opening one TCP connection may take.
    pub connection_timeout: Duration,
    /// Reconnect attempts inside one command before it fails (single server).
    pub reconnect_retries: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            response_timeout: Duration::from_secs(5),
            connection_timeout: Duration::from_secs(2),
            reconnect_retries: 2,
        }
    }
}

#[derive(Clone)]
enum Inner {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
    Sentinel(Arc<Follower>),
}

/// A reconnecting connection to what a Redis URL names. Cheap to clone; clones share the
/// underlying connections. Implements the redis crate's async `ConnectionLike`, so commands,
/// pipelines and scripts run on it as on any connection.
#[derive(Clone)]
pub struct Redis {
    inner: Inner,
    kind: &'static str,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

fn node_url(node: &Node) -> String {
    format!("redis://{node}")
}

impl Redis {
    /// A connection that opens on first use (and retries), so a process can start while
    /// Redis is still coming up.
    pub fn open_lazy(url: &str, options: &Options) -> Result<Self> {
        let target = Target::parse(url)?;
        let kind = target.kind();
        let inner = match target {
            Target::Single(url) => {
                let client = redis::Client::open(url).map_err(|e| Error::Url(e.to_string()))?;
                let config = ConnectionManagerConfig::new()
                    .set_response_timeout(Some(options.response_timeout))
                    .set_connection_timeout(Some(options.connection_timeout))
                    .set_number_of_retries(options.reconnect_retries)
                    .set_min_delay(Duration::from_millis(10))
                    .set_max_delay(Duration::from_millis(500));
                Inner::Single(
                    ConnectionManager::new_lazy_with_config(client, config)
                        .map_err(Error::Connect)?,
                )
            }
            Target::Cluster { nodes, auth } => {
                let mut builder = ClusterClientBuilder::new(nodes.iter().map(node_url))
                    .connection_timeout(options.connection_timeout)
                    .response_timeout(options.response_timeout);
                if let Some(user) = &auth.username {
                    builder = builder.username(user);
                }
                if let Some(pass) = &auth.password {
                    builder = builder.password(pass);
                }
                let client = builder.build().map_err(|e| Error::Url(e.to_string()))?;
                let config = ClusterConfig::new()
                    .set_connection_timeout(options.connection_timeout)
                    .set_response_timeout(options.response_timeout);
                Inner::Cluster(client.get_pending_async_connection_with_config(config))
            }
            target @ Target::Sentinel { .. } => {
                Inner::Sentinel(Arc::new(Follower::new(&target, options)?))
            }
        };
        Ok(Self { inner, kind })
    }

    /// A connection that has answered a `PING` (on a cluster: every primary has) and runs
    /// `#!lua` scripts (Redis 7.0 or later).
    pub async fn open(url: &str, options: &Options) -> Result<Self> {
        let mut redis = Self::open_lazy(url, options)?;
        redis::cmd("PING")
            .query_async::<()>(&mut redis)
            .await
            .map_err(Error::Connect)?;
        let flagged = redis::cmd("EVAL")
            .arg("#!lua\nreturn 1")
            .arg(0)
            .query_async::<i64>(&mut redis)
            .await;
        match flagged {
            Ok(_) => Ok(redis),
            Err(e)
                if matches!(
                    e.kind(),
                    redis::ErrorKind::Server(
                        redis::ServerErrorKind::ResponseError | redis::ServerErrorKind::NoPerm
                    )
                ) =>
            {
                Err(Error::Version(e.to_string()))
            }
            Err(e) => Err(Error::Connect(e)),
        }
    }

    /// `single`, `cluster` or `sentinel`.
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// Every key matching `pattern` (`SCAN MATCH`, on every primary of a cluster). For
    /// clean-up in tests and benchmarks: it walks the whole keyspace.
    pub async fn scan_match(&self, pattern: &str) -> RedisResult<Vec<Vec<u8>>> {
        let Inner::Cluster(c) = &self.inner else {
            return scan_all(pattern, |cmd| {
                let mut c = self.clone();
                async move { cmd.query_async(&mut c).await }
            })
            .await;
        };
        let mut out = Vec::new();
        for node in primaries(&mut c.clone()).await? {
            let route = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                host: node.host,
                port: node.port,
            });
            out.extend(
                scan_all(pattern, |cmd| {
                    let (mut c, route) = (c.clone(), route.clone());
                    async move { c.route_command(cmd, route).await }
                })
                .await?,
            );
        }
        Ok(out)
    }
}

/// `SCAN MATCH pattern` on one server until the cursor comes back to 0; `send` sends one
/// `SCAN` to that server.
async fn scan_all<F, Fut>(pattern: &str, mut send: F) -> RedisResult<Vec<Vec<u8>>>
where
    F: FnMut(Cmd) -> Fut,
    Fut: Future<Output = RedisResult<Value>>,
{
    let mut out = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<Vec<u8>>) =
            redis::from_redis_value(send(scan(cursor, pattern)).await?)?;
        out.extend(keys);
        cursor = next;
        if cursor == 0 {
            return Ok(out);
        }
    }
}

fn scan(cursor: u64, pattern: &str) -> Cmd {
    let mut cmd = redis::cmd("SCAN");
    cmd.arg(cursor)
        .arg("MATCH")
        .arg(pattern)
        .arg("COUNT")
        .arg(1000);
    cmd
}

/// The cluster's primaries, from `CLUSTER SLOTS` (each entry: start, end, primary, replicas…).
async fn primaries(c: &mut ClusterConnection) -> RedisResult<Vec<Node>> {
    let slots: Vec<Vec<Value>> = redis::cmd("CLUSTER").arg("SLOTS").query_async(c).await?;
    let mut out: Vec<Node> = Vec::new();
    for range in slots {
        let Some(primary) = range.get(2) else {
            continue;
        };
        let fields: Vec<Value> = redis::from_redis_value(primary.clone())?;
        let (Some(host), Some(port)) = (fields.first(), fields.get(1)) else {
            continue;
        };
        let node = Node {
            host: redis::from_redis_value(host.clone())?,
            port: redis::from_redis_value(port.clone())?,
        };
        if !out.contains(&node) {
            out.push(node);
        }
    }
    Ok(out)
}

/// The slot of a command's first key: argument 1, or for `EVAL`/`EVALSHA` argument 3 (after
/// the script and the key count). Used only to group a pipeline; the cluster connection
/// routes each run itself, so a keyless command in a run of its own goes where it should.
fn slot_of(cmd: &Cmd) -> Option<Slot> {
    let mut args = cmd.args_iter().filter_map(|a| match a {
        redis::Arg::Simple(b) => Some(b),
        _ => None,
    });
    let name = args.next()?;
    let key = if name.eq_ignore_ascii_case(b"EVAL") || name.eq_ignore_ascii_case(b"EVALSHA") {
        let mut rest = args.skip(1);
        let numkeys = rest.next()?;
        if numkeys == b"0" {
            return None;
        }
        rest.next()?
    } else {
        args.next()?
    };
    Some(Slot::for_key(key))
}

/// A cluster pipeline as runs of consecutive commands bound for one slot: the redis crate
/// refuses a pipeline whose keys span slots, and ours mix a partition's keys with the index.
async fn split_pipeline(
    c: &mut ClusterConnection,
    pipeline: &Pipeline,
    offset: usize,
    count: usize,
) -> RedisResult<Vec<Value>> {
    let slots: Vec<Option<Slot>> = pipeline.cmd_iter().map(slot_of).collect();
    let mut keyed = slots.iter().flatten();
    let first = keyed.next();
    // One slot (the usual case) or a transaction: as it is, without copying.
    if pipeline.is_transaction() || keyed.all(|s| Some(s) == first) {
        return c.req_packed_commands(pipeline, offset, count).await;
    }
    let mut out = Vec::with_capacity(pipeline.len());
    let mut run = Pipeline::new();
    let mut run_slot = None;
    for (cmd, slot) in pipeline.cmd_iter().zip(slots) {
        if slot.is_some() && run_slot.is_some() && slot != run_slot && !run.is_empty() {
            out.extend(c.req_packed_commands(&run, 0, run.len()).await?);
            run = Pipeline::new();
        }
        if slot.is_some() {
            run_slot = slot;
        }
        run.add_command(cmd.clone());
    }
    if !run.is_empty() {
        out.extend(c.req_packed_commands(&run, 0, run.len()).await?);
    }
    Ok(out.into_iter().skip(offset).take(count).collect())
}

impl ConnectionLike for Redis {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match &mut self.inner {
            Inner::Single(c) => c.req_packed_command(cmd),
            Inner::Cluster(c) => c.req_packed_command(cmd),
            Inner::Sentinel(f) => {
                let f = Arc::clone(f);
                async move { f.command(cmd).await }.boxed()
            }
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match &mut self.inner {
            Inner::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Inner::Cluster(c) => split_pipeline(c, pipeline, offset, count).boxed(),
            Inner::Sentinel(f) => {
                let f = Arc::clone(f);
                async move { f.pipeline(pipeline, offset, count).await }.boxed()
            }
        }
    }

    fn get_db(&self) -> i64 {
        match &self.inner {
            Inner::Single(c) => c.get_db(),
            Inner::Cluster(_) => 0,
            Inner::Sentinel(f) => f.db(),
        }
    }
}

//! Test support: a queue on its own namespace of the shared Redis, a private redis-server,
//! an in-memory system of record, and job builders.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use outdial_domain::{CallId, CustomerRef};
use outdial_queue::{NewJob, Partition, Queue, QueueConfig, ScheduledRow, Truth};

pub fn redis_url() -> String {
    std::env::var("OUTDIAL_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// Fails (never skips) when the shared Redis does not answer.
pub fn require_redis(url: &str) {
    let ok = redis::Client::open(url)
        .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(2)))
        .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c))
        .is_ok();
    assert!(
        ok,
        "no Redis at {url}: start one with `ops/stack.sh` (or set OUTDIAL_REDIS_URL)"
    );
}

pub fn test_config() -> QueueConfig {
    QueueConfig {
        buckets: 256,
        idle_recheck: Duration::from_millis(200),
        retry_for: Duration::from_secs(20),
        ..QueueConfig::default()
    }
}

/// A queue on a fresh namespace `t:<uuid>` of the shared Redis.
pub fn queue() -> Queue {
    queue_with(test_config())
}

pub fn queue_with(config: QueueConfig) -> Queue {
    let url = redis_url();
    require_redis(&url);
    Queue::open(&url, &format!("t:{}", uuid::Uuid::new_v4()), config).unwrap()
}

/// A fixed instant far from any real clock: tests pass `now` explicitly.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 1, 1, 12, 0, 0).unwrap()
}

pub fn ms(n: i64) -> chrono::Duration {
    chrono::Duration::milliseconds(n)
}

pub fn part(name: &str) -> Partition {
    Partition::new(name).unwrap()
}

pub fn cust(name: &str) -> CustomerRef {
    CustomerRef::new(name).unwrap()
}

pub fn new_job(p: &str, customer: &str, due: DateTime<Utc>) -> NewJob {
    NewJob {
        call: CallId::from_uuid(uuid::Uuid::new_v4()),
        partition: part(p),
        customer: cust(customer),
        due,
    }
}

/// A redis-server of the test's own on a free loopback port, killed on drop.
pub struct OwnRedis {
    pub port: u16,
    child: Option<Child>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl OwnRedis {
    pub fn start() -> Self {
        let port = free_port();
        let mut r = Self { port, child: None };
        r.spawn();
        r
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server not found: install it (ops/stack.sh does)");
        self.child = Some(child);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let up = redis::Client::open(self.url())
                .and_then(|c| c.get_connection_with_timeout(Duration::from_millis(200)))
                .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c))
                .is_ok();
            if up {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "own redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the server (SIGKILL) and starts a new empty one on the same port.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn flushall(&self) {
        let mut c = redis::Client::open(self.url())
            .unwrap()
            .get_connection()
            .unwrap();
        redis::cmd("FLUSHALL").query::<()>(&mut c).unwrap();
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// An in-memory system of record.
#[derive(Default)]
pub struct MemTruth {
    pub rows: Mutex<BTreeMap<CallId, (ScheduledRow, bool)>>,
}

impl MemTruth {
    pub fn add(&self, j: &NewJob) {
        let row = ScheduledRow {
            call: j.call,
            partition: j.partition.clone(),
            customer: j.customer.clone(),
            due: j.due,
        };
        self.rows.lock().unwrap().insert(j.call, (row, false));
    }

    pub fn finish(&self, call: CallId) {
        if let Some(r) = self.rows.lock().unwrap().get_mut(&call) {
            r.1 = true;
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("never")]
pub struct Never;

impl Truth for MemTruth {
    type Error = Never;

    async fn scheduled_page(
        &self,
        after: Option<CallId>,
        limit: usize,
    ) -> Result<Vec<ScheduledRow>, Never> {
        let rows = self.rows.lock().unwrap();
        let it: Box<dyn Iterator<Item = (&CallId, &(ScheduledRow, bool))>> = match after {
            Some(a) => {
                Box::new(rows.range((std::ops::Bound::Excluded(a), std::ops::Bound::Unbounded)))
            }
            None => Box::new(rows.iter()),
        };
        Ok(it
            .filter(|(_, (_, t))| !t)
            .take(limit)
            .map(|(_, (r, _))| r.clone())
            .collect())
    }

    async fn terminal(&self, calls: &[CallId]) -> Result<Vec<CallId>, Never> {
        let rows = self.rows.lock().unwrap();
        Ok(calls
            .iter()
            .filter(|c| rows.get(c).is_none_or(|(_, t)| *t))
            .copied()
            .collect())
    }
}

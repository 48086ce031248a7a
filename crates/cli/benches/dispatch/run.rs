//! Running the measured things: the bare queue's claim+ack loop, `outdial work` processes
//! until every seeded call has a result, and the webhook sink they deliver to.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use outdial_domain::{CallId, Clock, CustomerRef, SystemClock};
use outdial_queue::{NewJob, Partition, Queue, QueueConfig};
use outdial_store::Store;

use crate::Res;
use crate::cpu;

/// The bare queue: `n` jobs due now over `partitions` partitions, drained by 4 claim loops
/// of 16 jobs (64 in flight), each claim followed by `ack_many`, as in the queue's own
/// benchmark. Jobs/s from the first claim to the last ack.
pub async fn bare_queue(redis: &str, namespace: &str, partitions: usize, n: usize) -> Res<f64> {
    let q = Queue::open(redis, namespace, QueueConfig::default())?;
    let now = SystemClock.now() - chrono::Duration::seconds(1);
    let parts: Vec<Partition> = (0..partitions.max(1))
        .map(|p| Partition::new(&format!("p{p}")))
        .collect::<Result<_, _>>()?;
    let jobs: Vec<NewJob> = (0..n)
        .map(|i| {
            Ok(NewJob {
                call: CallId::from_uuid(uuid::Uuid::new_v4()),
                partition: parts[i % parts.len()].clone(),
                customer: CustomerRef::new(&format!("c{i:07}"))?,
                due: now,
            })
        })
        .collect::<Res<_>>()?;
    for chunk in jobs.chunks(20_000) {
        q.enqueue_many(chunk).await?;
    }
    let done = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (q, done) = (q.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let deadline = Instant::now() + Duration::from_secs(120);
            while done.load(Ordering::Relaxed) < n {
                if Instant::now() > deadline {
                    return Err("the bare queue did not drain in 120 s".into());
                }
                let got = q
                    .claim(SystemClock.now(), 16, Duration::from_secs(30))
                    .await?;
                if got.is_empty() {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    continue;
                }
                let held: Vec<_> = got.iter().map(|j| (j.job.clone(), j.token)).collect();
                if q.ack_many(&held).await?.contains(&false) {
                    return Err("lease lost in the bare queue loop".into());
                }
                done.fetch_add(got.len(), Ordering::Relaxed);
            }
            Res::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    q.delete_namespace().await?;
    Ok(rate)
}

/// How to start the workers.
#[derive(Debug, Clone)]
pub struct Workers {
    pub bin: String,
    pub db: String,
    pub redis: String,
    pub namespace: String,
    pub processes: usize,
    pub in_flight: usize,
    pub pool: u32,
    pub timeout: Duration,
    /// The bench clock's shift, given to each worker as `OUTDIAL_CLOCK_OFFSET_SECS`.
    pub clock_offset: chrono::Duration,
    /// Sample the statements Postgres is running (`OUTDIAL_BENCH_PG_SAMPLE`).
    pub sample: bool,
    /// Extra environment for each worker (`OUTDIAL_BENCH_WORKER_ENV`, `K=V,K=V`).
    pub env: Vec<(String, String)>,
    /// The sink the workers deliver to, if any: its count tells when to look in Postgres.
    pub sink: Option<Sink>,
    /// Serve `/metrics` on each worker (`OUTDIAL_METRICS_BIND` on a free loopback port) and
    /// scrape every worker each second while it runs (Prometheus' default is 15 s).
    pub metrics: bool,
}

/// A worker process and, when it serves metrics, its metrics address.
fn spawn(w: &Workers) -> Res<(Child, Option<String>)> {
    let mut cmd = Command::new(&w.bin);
    cmd.arg("work")
        .env("OUTDIAL_DATABASE_URL", &w.db)
        .env("OUTDIAL_REDIS_URL", &w.redis)
        .env("OUTDIAL_NAMESPACE", &w.namespace)
        .env("OUTDIAL_SIMULATOR", "instant")
        .env("OUTDIAL_MAX_IN_FLIGHT", w.in_flight.to_string())
        .env("OUTDIAL_DB_POOL", w.pool.to_string())
        .env("OUTDIAL_LOG", "warn")
        .env(
            "OUTDIAL_CLOCK_OFFSET_SECS",
            w.clock_offset.num_seconds().to_string(),
        )
        .env_remove("OUTDIAL_PROVIDER_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    for (k, v) in &w.env {
        cmd.env(k, v);
    }
    let metrics = if w.metrics {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let addr = format!("127.0.0.1:{port}");
        cmd.env("OUTDIAL_METRICS_BIND", &addr);
        Some(addr)
    } else {
        cmd.env_remove("OUTDIAL_METRICS_BIND");
        None
    };
    Ok((cmd.spawn()?, metrics))
}

/// Scrapes `GET /metrics` of every address each second until aborted; counts the answers
/// that were Prometheus text with `outdial_` samples, and the other attempts.
async fn scrape(addrs: Vec<String>, ok: Arc<AtomicU64>, failed: Arc<AtomicU64>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        for addr in &addrs {
            let got = async {
                let mut s = tokio::net::TcpStream::connect(addr).await?;
                s.write_all(
                    format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
                        .as_bytes(),
                )
                .await?;
                let mut body = String::new();
                s.read_to_string(&mut body).await?;
                std::io::Result::Ok(body)
            };
            match tokio::time::timeout(Duration::from_secs(5), got).await {
                Ok(Ok(body)) if body.starts_with("HTTP/1.1 200") && body.contains("\noutdial_") => {
                    ok.fetch_add(1, Ordering::Relaxed)
                }
                _ => failed.fetch_add(1, Ordering::Relaxed),
            };
        }
    }
}

/// Counters of the scratch database (`pg_stat_database`) and the cluster's WAL position.
#[derive(Debug, Clone, Copy, Default)]
pub struct PgStats {
    pub commits: i64,
    pub inserted: i64,
    pub updated: i64,
    pub deleted: i64,
    pub wal: i64,
}

impl PgStats {
    pub async fn read(store: &Store) -> Res<PgStats> {
        let (commits, inserted, updated, deleted, wal): (i64, i64, i64, i64, i64) = sqlx::query_as(
            "SELECT xact_commit, tup_inserted, tup_updated, tup_deleted,
                        pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint
                 FROM pg_stat_database WHERE datname = current_database()",
        )
        .fetch_one(store.pool())
        .await?;
        Ok(PgStats {
            commits,
            inserted,
            updated,
            deleted,
            wal,
        })
    }

    pub fn since(self, before: PgStats) -> PgStats {
        PgStats {
            commits: self.commits - before.commits,
            inserted: self.inserted - before.inserted,
            updated: self.updated - before.updated,
            deleted: self.deleted - before.deleted,
            wal: self.wal - before.wal,
        }
    }
}

/// What one run of the workers measured.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub calls: usize,
    /// From the first dial intent to the last result written (Postgres timestamps).
    pub first_to_last: f64,
    /// From starting the processes to the poll that saw every result.
    pub wall: f64,
    pub cpu: cpu::Usage,
    pub pg: PgStats,
    /// `/metrics` scrapes answered / not answered (both 0 when metrics are off).
    pub scrapes: (u64, u64),
}

impl Outcome {
    pub fn rate(&self) -> f64 {
        self.calls as f64 / self.first_to_last.max(1e-9)
    }
}

/// Starts the workers, waits until `expected` attempts have a result (or the timeout),
/// stops them (SIGTERM, then SIGKILL after 25 s) and measures.
pub async fn run_workers(w: &Workers, store: &Store, expected: usize) -> Res<Outcome> {
    let pg_before = PgStats::read(store).await?;
    let start = Instant::now();
    let mut children = Vec::new();
    let mut metrics = Vec::new();
    for _ in 0..w.processes {
        let (child, addr) = spawn(w)?;
        children.push(child);
        metrics.extend(addr);
    }
    let pids: Vec<u32> = children.iter().map(Child::id).collect();
    let (scraped, unscraped) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let scraper = (!metrics.is_empty())
        .then(|| tokio::spawn(scrape(metrics, scraped.clone(), unscraped.clone())));
    let before = cpu::snapshot(&pids);
    let sampler = w
        .sample
        .then(|| tokio::spawn(sample_statements(store.clone())));
    let mut seen = 0usize;
    let mut last_change = Instant::now();
    // Every result is followed by its webhook: the sink's count says when counting results
    // in Postgres is worth it (that count scans `call_attempts`; polled every 200 ms, it
    // cost Postgres ~5 % of the run). Without a sink, or every 2 s, Postgres is asked.
    let delivered = |sink: &Sink| sink.deliveries.load(Ordering::Relaxed);
    let base = w.sink.as_ref().map(delivered);
    let mut asked = Instant::now();
    let result = loop {
        let poll = if base.is_some() { 20 } else { 200 };
        tokio::time::sleep(Duration::from_millis(poll)).await;
        let hinted = match (&w.sink, base) {
            (Some(sink), Some(base)) => delivered(sink) - base >= expected as u64,
            _ => true,
        };
        if !hinted && asked.elapsed() < Duration::from_secs(2) {
            continue;
        }
        asked = Instant::now();
        let done: i64 =
            sqlx::query_scalar("SELECT count(*) FROM call_attempts WHERE outcome IS NOT NULL")
                .fetch_one(store.pool())
                .await?;
        let done = usize::try_from(done)?;
        if done != seen {
            seen = done;
            last_change = Instant::now();
        }
        if done >= expected {
            break Ok(());
        }
        if start.elapsed() > w.timeout || last_change.elapsed() > Duration::from_secs(60) {
            break Err(format!(
                "{done} of {expected} calls have a result after {:.0} s",
                start.elapsed().as_secs_f64()
            ));
        }
        for c in &mut children {
            if let Some(status) = c.try_wait()? {
                return Err(format!("a worker exited early: {status}").into());
            }
        }
    };
    let wall = start.elapsed().as_secs_f64();
    let after = cpu::snapshot(&pids);
    if let Some(s) = sampler {
        s.abort();
        let _ = s.await;
    }
    if let Some(s) = scraper {
        s.abort();
        let _ = s.await;
    }
    for pid in &pids {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status();
    }
    let deadline = Instant::now() + Duration::from_secs(25);
    for c in &mut children {
        while c.try_wait()?.is_none() {
            if Instant::now() > deadline {
                let _ = c.kill();
                let _ = c.wait();
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    result?;
    // Backends report their counters when idle; give them a moment.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let pg = PgStats::read(store).await?.since(pg_before);
    let (first, last): (Option<DateTime<Utc>>, Option<DateTime<Utc>>) = sqlx::query_as(
        "SELECT min(a.started_at), max(sc.updated_at)
         FROM call_attempts a JOIN scheduled_calls sc ON sc.id = a.scheduled_call_id",
    )
    .fetch_one(store.pool())
    .await?;
    let span = match (first, last) {
        (Some(f), Some(l)) => (l - f).num_microseconds().unwrap_or(0) as f64 / 1e6,
        _ => 0.0,
    };
    Ok(Outcome {
        calls: expected,
        first_to_last: span,
        wall,
        cpu: cpu::usage(before, after),
        pg,
        scrapes: (
            scraped.load(Ordering::Relaxed),
            unscraped.load(Ordering::Relaxed),
        ),
    })
}

/// The webhook receiver of [`webhook_sink`]: its URL and the requests it received.
#[derive(Debug, Clone)]
pub struct Sink {
    pub url: String,
    pub deliveries: Arc<AtomicU64>,
}

/// A webhook receiver on 127.0.0.1 that answers 204 to every POST.
pub async fn webhook_sink() -> Res<Sink> {
    let count = Arc::new(AtomicU64::new(0));
    let seen = count.clone();
    let app = axum::Router::new().fallback(move || {
        let seen = seen.clone();
        async move {
            seen.fetch_add(1, Ordering::Relaxed);
            axum::http::StatusCode::NO_CONTENT
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(Sink {
        url,
        deliveries: count,
    })
}

/// A sampling profile of the scratch database: every 5 ms, the statements of its active
/// backends (`pg_stat_activity`), counted by their first 90 characters; printed, most
/// frequent first, when the run ends (the task is aborted).
async fn sample_statements(store: Store) {
    struct Report(std::collections::HashMap<String, u64>, u64);
    impl Drop for Report {
        fn drop(&mut self) {
            let mut v: Vec<_> = self.0.iter().collect();
            v.sort_by(|a, b| b.1.cmp(a.1));
            eprintln!(
                "postgres activity samples ({} polls): active backends per poll by statement",
                self.1
            );
            for (q, n) in v.iter().take(25) {
                eprintln!("{:8.3}  {q}", **n as f64 / self.1.max(1) as f64);
            }
        }
    }
    let mut report = Report(std::collections::HashMap::new(), 0);
    loop {
        tokio::time::sleep(Duration::from_millis(5)).await;
        let Ok(rows) = sqlx::query_scalar::<_, String>(
            "SELECT coalesce(wait_event_type || ':', '') || regexp_replace(left(query, 300), '\\s+', ' ', 'g')
             FROM pg_stat_activity
             WHERE datname = current_database() AND state = 'active' AND pid <> pg_backend_pid()",
        )
        .fetch_all(store.pool())
        .await
        else {
            continue;
        };
        report.1 += 1;
        for q in rows {
            let key: String = q.chars().take(90).collect();
            *report.0.entry(key).or_default() += 1;
        }
    }
}

//! Queue benchmark: `cargo bench -p outdial-queue --bench queue`.
//!
//! Runs against a redis-server of its own (spawned on a free loopback port with no
//! persistence, killed at the end), so memory figures are not disturbed by other users and
//! the shared Redis is never touched. Every figure of a run comes from the same server:
//! 1. `redis-benchmark` ZADD, pipelined (the server's ceiling for the op enqueue is built on);
//! 2. batched enqueue of 200,000 jobs;
//! 3. claim + ack of a 50,000 due backlog with 64 jobs in flight, and of a 7,900 backlog;
//! 4. apalis-redis 1.0 doing the same claim + ack work on 7,900 jobs (its fetch fails from
//!    about 7,990 due jobs, research/queues.md D5), concurrency 64;
//! 5. lateness when 50,000 jobs fall due within 2 s;
//! 6. Redis memory per scheduled job at 1,000,000 jobs, then stats and list latency there;
//! 7. those 1,000,000 jobs made due (the claimers' clock shifted 8 days) and claimed+acked.
//!
//! `OUTDIAL_BENCH_ONLY=cluster` runs the cluster mode instead: sections 2 and 3 (batched
//! enqueue of 200,000 jobs over 16 partitions, claim+ack of a 50,000 backlog) on the own
//! single server and on an own Redis Cluster of three primaries (same machine), in
//! interleaved rounds, reported as cluster / single ratios.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use outdial_domain::{CallId, Clock, CustomerRef, SystemClock};
use outdial_queue::{NewJob, Partition, Queue, QueueConfig, State};

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

struct Server {
    port: u16,
    child: Child,
}

impl Server {
    fn start() -> Res<Self> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let s = Self { port, child };
        let deadline = Instant::now() + Duration::from_secs(10);
        while redis::Client::open(s.url())?.get_connection().is_err() {
            if Instant::now() > deadline {
                return Err("redis-server did not start".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(s)
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn used_memory(&self) -> Res<i64> {
        let mut c = redis::Client::open(self.url())?.get_connection()?;
        let info: String = redis::cmd("INFO").arg("memory").query(&mut c)?;
        let v = info
            .lines()
            .find_map(|l| l.strip_prefix("used_memory:"))
            .ok_or("no used_memory")?;
        Ok(v.trim().parse()?)
    }
}

impl Server {
    /// CPU seconds the server has used (user + system, `INFO cpu`).
    fn cpu_secs(&self) -> Res<f64> {
        let mut c = redis::Client::open(self.url())?.get_connection()?;
        let info: String = redis::cmd("INFO").arg("cpu").query(&mut c)?;
        let field = |name: &str| -> f64 {
            info.lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0.0)
        };
        Ok(field("used_cpu_user:") + field("used_cpu_sys:"))
    }
}

/// CPU seconds this process has used (user + system, from /proc/self/stat; 0 elsewhere).
fn own_cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // fields after the command name (which is in parentheses): utime is the 12th, stime 13th
    let rest = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn now() -> DateTime<Utc> {
    SystemClock.now()
}

fn job(p: usize, i: usize, due: DateTime<Utc>) -> Res<NewJob> {
    Ok(NewJob {
        call: CallId::from_uuid(uuid::Uuid::new_v4()),
        partition: Partition::new(&format!("company-{p}"))?,
        customer: CustomerRef::new(&format!("cust-{:08}", i / 3))?,
        due,
    })
}

fn jobs(n: usize, partitions: usize, due: impl Fn(usize) -> DateTime<Utc>) -> Res<Vec<NewJob>> {
    (0..n).map(|i| job(i % partitions, i, due(i))).collect()
}

/// Claim loops; each claims 64 / LOOPS jobs at a time (64 in flight).
const LOOPS: usize = 4;

/// How many rounds of sections 1-4 run.
const ROUNDS: usize = 3;

/// Deletes the keys matching `pattern` on the bench's own server (SCAN + UNLINK).
fn unlink_matching(url: &str, pattern: &str) -> Res<()> {
    let mut c = redis::Client::open(url)?.get_connection()?;
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1000)
            .query(&mut c)?;
        if !keys.is_empty() {
            redis::cmd("UNLINK").arg(keys).query::<()>(&mut c)?;
        }
        cursor = next;
        if cursor == 0 {
            return Ok(());
        }
    }
}

fn pct(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// `redis-benchmark` ZADD throughput (requests/s) on the same server.
fn redis_benchmark(port: u16) -> Res<f64> {
    let out = Command::new("redis-benchmark")
        .args([
            "-p",
            &port.to_string(),
            "-q",
            "-n",
            "200000",
            "-P",
            "64",
            "-r",
            "1000000",
        ])
        .args(["zadd", "rb:z", "__rand_int__", "m:__rand_int__"])
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    // "zadd rb:z __rand_int__ m:__rand_int__: 512345.67 requests per second, p50=..."
    let figure = text
        .split("requests per second")
        .next()
        .and_then(|s| s.rsplit([':', ' ']).find(|w| !w.is_empty()))
        .and_then(|w| w.trim().parse::<f64>().ok())
        .ok_or_else(|| format!("cannot read redis-benchmark output: {text}"))?;
    let mut c = redis::Client::open(format!("redis://127.0.0.1:{port}"))?.get_connection()?;
    redis::cmd("DEL").arg("rb:z").query::<()>(&mut c)?;
    Ok(figure)
}

/// Claims and acks until `total` jobs are done, with `loops` claim loops of `batch` jobs
/// each (so `loops * batch` jobs in flight at most). Returns jobs/s and lateness samples.
async fn drain(q: &Queue, total: usize, loops: usize, batch: usize) -> Res<(f64, Vec<i64>)> {
    drain_at(q, total, loops, batch, chrono::Duration::zero()).await
}

/// [`drain`] with the claimers' clock shifted by `shift` (to make future jobs due).
async fn drain_at(
    q: &Queue,
    total: usize,
    loops: usize,
    batch: usize,
    shift: chrono::Duration,
) -> Res<(f64, Vec<i64>)> {
    let done = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..loops {
        let (q, done) = (q.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let mut late = Vec::new();
            while done.load(Ordering::Relaxed) < total {
                let got = q
                    .claim(now() + shift, batch, Duration::from_secs(30))
                    .await?;
                if got.is_empty() {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    continue;
                }
                let t = now() + shift;
                late.extend(got.iter().map(|j| (t - j.due).num_milliseconds()));
                let held: Vec<_> = got.iter().map(|j| (j.job.clone(), j.token)).collect();
                if q.ack_many(&held).await?.contains(&false) {
                    return Err("lease lost in the benchmark".into());
                }
                done.fetch_add(got.len(), Ordering::Relaxed);
            }
            Res::Ok(late)
        }));
    }
    let mut late = Vec::new();
    for t in tasks {
        late.extend(t.await??);
    }
    let secs = start.elapsed().as_secs_f64();
    late.sort_unstable();
    Ok((total as f64 / secs, late))
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct ApalisJob {
    call: String,
}

/// apalis-redis 1.0 claim + ack of `n` pre-enqueued jobs at concurrency 64, batch 10,
/// poll interval 100 ms (the configuration research/queues.md measured). Jobs/s.
async fn apalis(url: &str, n: usize) -> Res<f64> {
    use apalis::prelude::*;
    use apalis_redis::{Config, RedisStorage};

    let conn = apalis_redis::connect(url).await?;
    let mut storage =
        RedisStorage::<ApalisJob>::new(conn).with_config(Config::default().queue("{apalis-bench}"));
    let batch: Vec<ApalisJob> = (0..n)
        .map(|i| ApalisJob {
            call: format!("c{i}"),
        })
        .collect();
    for chunk in batch.chunks(1000) {
        let v: Vec<ApalisJob> = chunk
            .iter()
            .map(|j| ApalisJob {
                call: j.call.clone(),
            })
            .collect();
        storage.push_bulk(v).await?;
    }
    let done = Arc::new(AtomicUsize::new(0));
    let finished = Arc::new(tokio::sync::Notify::new());

    async fn handle(
        _job: ApalisJob,
        state: Data<(Arc<AtomicUsize>, Arc<tokio::sync::Notify>, usize)>,
    ) -> Result<(), BoxDynError> {
        let (done, finished, n) = &*state;
        if done.fetch_add(1, Ordering::Relaxed) + 1 == *n {
            finished.notify_one();
        }
        Ok(())
    }

    let worker = WorkerBuilder::new(format!("bench-{}", uuid::Uuid::new_v4()))
        .backend(storage.poll_with_interval(Duration::from_millis(100)))
        .concurrency(64)
        .data((done.clone(), finished.clone(), n))
        .build(handle);
    let start = Instant::now();
    let f = finished.clone();
    let run = worker.run_with_ctx(move |ctx| {
        let f = f.clone();
        async move {
            f.notified().await;
            ctx.stop()
        }
    });
    tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .map_err(|_| "apalis did not finish in 120 s")??;
    let secs = start.elapsed().as_secs_f64();
    let got = done.load(Ordering::Relaxed);
    if got < n {
        return Err(format!("apalis processed {got} of {n}").into());
    }
    Ok(n as f64 / secs)
}

/// Batched enqueue (200,000 jobs, 16 partitions, due over 7 days) and claim+ack of a 50,000
/// backlog (8 partitions, 64 in flight) on `q`: (enqueue jobs/s, claim+ack jobs/s).
async fn enqueue_and_drain(q: &Queue) -> Res<(f64, f64)> {
    let base = now() + chrono::Duration::hours(1);
    let batch = jobs(200_000, 16, |i| {
        base + chrono::Duration::milliseconds((i as i64 * 3_019_943) % 604_800_000)
    })?;
    let t = Instant::now();
    for chunk in batch.chunks(20_000) {
        q.enqueue_many(chunk).await?;
    }
    let enqueue = 200_000.0 / t.elapsed().as_secs_f64();
    q.delete_namespace().await?;
    let past = now() - chrono::Duration::seconds(10);
    q.enqueue_many(&jobs(50_000, 8, |i| {
        past + chrono::Duration::milliseconds((i % 5000) as i64)
    })?)
    .await?;
    let (claim, _) = drain(q, 50_000, LOOPS, 64 / LOOPS).await?;
    q.delete_namespace().await?;
    Ok((enqueue, claim))
}

/// The cluster mode (`OUTDIAL_BENCH_ONLY=cluster`): the single server against a cluster.
async fn cluster_mode(single: &Queue) -> Res<()> {
    let cluster = outdial_redis::testing::OwnCluster::start();
    println!("own cluster: primaries on ports {:?}", cluster.ports);
    let clustered = Queue::open(&cluster.url(), "bench", QueueConfig::default())?;
    let (mut s, mut c) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        s.push(enqueue_and_drain(single).await?);
        c.push(enqueue_and_drain(&clustered).await?);
    }
    // keys per primary with 16 partitions scheduled, to show the spread
    let base = now() + chrono::Duration::hours(1);
    clustered
        .enqueue_many(&jobs(16_000, 16, |i| {
            base + chrono::Duration::seconds(i as i64)
        })?)
        .await?;
    let spread = cluster.key_counts();
    clustered.delete_namespace().await?;
    let best = |v: &[(f64, f64)], f: fn(&(f64, f64)) -> f64| v.iter().map(f).fold(0.0, f64::max);
    let rounds = |v: &[(f64, f64)], f: fn(&(f64, f64)) -> f64| {
        v.iter()
            .map(|x| format!("{:.0}", f(x)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (se, ce) = (best(&s, |x| x.0), best(&c, |x| x.0));
    let (sc, cc) = (best(&s, |x| x.1), best(&c, |x| x.1));
    println!("\n== outdial-queue benchmark, cluster mode ==");
    println!(
        "batched enqueue, 200,000 jobs / 16 partitions: single {se:.0} jobs/s (rounds: {}), cluster of 3 {ce:.0} jobs/s (rounds: {}); cluster/single = {:.2}x",
        rounds(&s, |x| x.0),
        rounds(&c, |x| x.0),
        ce / se
    );
    println!(
        "claim+ack, 64 in flight, 50,000 backlog / 8 partitions: single {sc:.0} jobs/s (rounds: {}), cluster of 3 {cc:.0} jobs/s (rounds: {}); cluster/single = {:.2}x",
        rounds(&s, |x| x.1),
        rounds(&c, |x| x.1),
        cc / sc
    );
    println!("keys per primary with 16 partitions scheduled: {spread:?}");
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Res<()> {
    let server = Server::start()?;
    let url = server.url();
    println!("redis-server on port {} (no persistence)", server.port);
    let config = QueueConfig::default();
    let q = Queue::open(&url, "bench", config.clone())?;
    let mut report = Vec::new();

    // OUTDIAL_BENCH_ONLY=enqueue|claim runs one round up to that section and prints
    // Redis' commandstats for it (to profile it)
    let only = std::env::var("OUTDIAL_BENCH_ONLY").unwrap_or_default();
    if only == "cluster" {
        return cluster_mode(&q).await;
    }
    let rounds = match only.as_str() {
        "" => ROUNDS,
        "lateness" => 0,
        _ => 1,
    };

    // Sections 1-4 run in ROUNDS interleaved rounds (the machine is shared: every round
    // sees about the same load on all four); the best of each is reported with all rounds.
    let (mut rbs, mut enq, mut big, mut small, mut apa) = (vec![], vec![], vec![], vec![], vec![]);
    let mut enq_cpu: Vec<(f64, f64)> = vec![];
    for _ in 0..rounds {
        // 1. redis-benchmark ceiling
        rbs.push(redis_benchmark(server.port)?);

        // 2. batched enqueue: 200,000 jobs, 16 partitions, due over the next 7 days
        let base = now() + chrono::Duration::hours(1);
        let batch = jobs(200_000, 16, |i| {
            base + chrono::Duration::milliseconds((i as i64 * 3_019_943) % 604_800_000)
        })?;
        if only == "enqueue" {
            let mut c = redis::Client::open(url.as_str())?.get_connection()?;
            redis::cmd("CONFIG").arg("RESETSTAT").query::<()>(&mut c)?;
        }
        let (server_cpu, client_cpu) = (server.cpu_secs()?, own_cpu_secs());
        let t = Instant::now();
        for chunk in batch.chunks(20_000) {
            q.enqueue_many(chunk).await?;
        }
        enq.push(200_000.0 / t.elapsed().as_secs_f64());
        enq_cpu.push((
            (server.cpu_secs()? - server_cpu) * 1e6 / 200_000.0,
            (own_cpu_secs() - client_cpu) * 1e6 / 200_000.0,
        ));
        q.delete_namespace().await?;
        if only == "enqueue" {
            let mut c = redis::Client::open(url.as_str())?.get_connection()?;
            let info: String = redis::cmd("INFO").arg("commandstats").query(&mut c)?;
            println!(
                "{info}\nredis-benchmark {rbs:?}\nenqueue {enq:?}\nenqueue CPU us/job (redis-server, bench process) {enq_cpu:?}"
            );
            return Ok(());
        }

        // 3. claim + ack, 64 in flight (4 claim loops x 16 jobs), 50,000 and 7,900 due
        let past = now() - chrono::Duration::seconds(10);
        q.enqueue_many(&jobs(50_000, 8, |i| {
            past + chrono::Duration::milliseconds((i % 5000) as i64)
        })?)
        .await?;
        if only == "claim" {
            let mut c = redis::Client::open(url.as_str())?.get_connection()?;
            redis::cmd("CONFIG").arg("RESETSTAT").query::<()>(&mut c)?;
        }
        big.push(drain(&q, 50_000, LOOPS, 64 / LOOPS).await?.0);
        q.delete_namespace().await?;
        if only == "claim" {
            let mut c = redis::Client::open(url.as_str())?.get_connection()?;
            let info: String = redis::cmd("INFO").arg("commandstats").query(&mut c)?;
            println!("{info}\nclaim+ack {big:?}");
            return Ok(());
        }
        q.enqueue_many(&jobs(7_900, 8, |i| {
            past + chrono::Duration::milliseconds((i % 5000) as i64)
        })?)
        .await?;
        small.push(drain(&q, 7_900, LOOPS, 64 / LOOPS).await?.0);
        q.delete_namespace().await?;

        // 4. apalis-redis 1.0, same work, 7,900 jobs
        apa.push(apalis(&url, 7_900).await?);
        unlink_matching(&url, "{apalis-bench}*")?;
        unlink_matching(&url, "core:apalis*")?;
    }
    let best = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
    let show = |v: &[f64]| {
        v.iter()
            .map(|x| format!("{x:.0}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (rb, enqueue_rate, claim_rate, claim_small, apalis_rate) =
        (best(&rbs), best(&enq), best(&big), best(&small), best(&apa));
    report.push(format!(
        "redis-benchmark ZADD -P 64: {rb:.0} ops/s (rounds: {})",
        show(&rbs)
    ));
    report.push(format!(
        "batched enqueue: {enqueue_rate:.0} jobs/s = {:.2}x redis-benchmark ZADD (rounds: {}; per round the ratio: {})",
        enqueue_rate / rb,
        show(&enq),
        enq.iter()
            .zip(&rbs)
            .map(|(e, r)| format!("{:.2}", e / r))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    report.push(format!(
        "batched enqueue CPU per job, redis-server / bench process: {}",
        enq_cpu
            .iter()
            .map(|(s, c)| format!("{s:.2} / {c:.2} us"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    report.push(format!(
        "claim+ack, 64 in flight, 50,000 backlog: {claim_rate:.0} jobs/s (rounds: {})",
        show(&big)
    ));
    report.push(format!(
        "claim+ack, 64 in flight, 7,900 backlog: {claim_small:.0} jobs/s (rounds: {})",
        show(&small)
    ));
    report.push(format!(
        "apalis-redis 1.0 claim+ack, concurrency 64, 7,900 backlog: {apalis_rate:.0} jobs/s (rounds: {}); ours/apalis = {:.1}x (our 50k backlog) / {:.1}x (same 7.9k backlog)",
        show(&apa),
        claim_rate / apalis_rate,
        claim_small / apalis_rate
    ));

    // 5. lateness: 50,000 jobs falling due within 2 s (25,000/s), 64 in flight; 2 runs
    // (OUTDIAL_BENCH_ONLY=lateness: only this section, 5 runs)
    let runs = if only == "lateness" { 5 } else { 2 };
    if only == "lateness" {
        report.clear();
    }
    for run in 1..=runs {
        // the jobs are made first, so that the 1.5 s run from the enqueue call
        let placeholder = now();
        let batch = jobs(50_000, 8, |_| placeholder)?;
        let first = now() + chrono::Duration::milliseconds(1500);
        let batch: Vec<NewJob> = batch
            .into_iter()
            .enumerate()
            .map(|(i, mut j)| {
                j.due = first + chrono::Duration::microseconds(i as i64 * 40);
                j
            })
            .collect();
        let t = Instant::now();
        q.enqueue_many(&batch).await?;
        let enqueue_ms = t.elapsed().as_millis();
        let (_, late) = drain(&q, 50_000, LOOPS, 64 / LOOPS).await?;
        let early = late.iter().filter(|&&l| l < 0).count();
        report.push(format!(
            "lateness run {run}, 50,000 due within 2 s: p50 {} ms, p99 {} ms, max {} ms, early {early} (enqueued in {enqueue_ms} ms, the first due 1,500 ms after the start)",
            pct(&late, 0.5),
            pct(&late, 0.99),
            late.last().copied().unwrap_or(0)
        ));
        q.delete_namespace().await?;
    }

    if only == "lateness" {
        for line in &report {
            println!("{line}");
        }
        return Ok(());
    }

    // 6. memory at 1,000,000 scheduled jobs (16 partitions, due over 7 days)
    let before = server.used_memory()?;
    let base = now() + chrono::Duration::hours(1);
    let t = Instant::now();
    for part in 0..10 {
        let chunk = jobs(100_000, 16, |i| {
            base + chrono::Duration::milliseconds(
                ((i + part * 100_000) as i64 * 3_019_943) % 604_800_000,
            )
        })?;
        q.enqueue_many(&chunk).await?;
    }
    let load_rate = 1_000_000.0 / t.elapsed().as_secs_f64();
    let after = server.used_memory()?;
    let per_job = (after - before) as f64 / 1_000_000.0;
    report.push(format!(
        "memory: {per_job:.1} bytes/job at 1,000,000 scheduled jobs (used_memory {before} -> {after}); loaded at {load_rate:.0} jobs/s"
    ));
    let p = Partition::new("company-0")?;
    let mut stat_ms = Vec::new();
    let mut list_ms = Vec::new();
    let mut deep_ms = Vec::new();
    let mut cursor = None;
    for _ in 0..200 {
        let t = Instant::now();
        let s = q.stats(&p, now()).await?;
        stat_ms.push(t.elapsed().as_micros() as i64);
        assert!(s.scheduled > 60_000);
        let t = Instant::now();
        let page = q.list(&p, State::Scheduled, None, 100).await?;
        list_ms.push(t.elapsed().as_micros() as i64);
        let t = Instant::now();
        let deep = q.list(&p, State::Scheduled, cursor.as_ref(), 100).await?;
        deep_ms.push(t.elapsed().as_micros() as i64);
        cursor = deep.next.or(page.next);
    }
    for v in [&mut stat_ms, &mut list_ms, &mut deep_ms] {
        v.sort_unstable();
    }
    report.push(format!(
        "at 1M jobs: stats p50 {} us, p99 {} us; list first page (100) p50 {} us, p99 {} us; list next pages (cursor) p50 {} us, p99 {} us",
        pct(&stat_ms, 0.5),
        pct(&stat_ms, 0.99),
        pct(&list_ms, 0.5),
        pct(&list_ms, 0.99),
        pct(&deep_ms, 0.5),
        pct(&deep_ms, 0.99)
    ));
    // 7. the same 1,000,000 jobs, made due by shifting the claimers' clock 8 days ahead:
    // promoted and claimed+acked, every one, without error
    let (million_rate, _) =
        drain_at(&q, 1_000_000, LOOPS, 64 / LOOPS, chrono::Duration::days(8)).await?;
    let mut left = 0;
    for part in 0..16 {
        let s = q
            .stats(&Partition::new(&format!("company-{part}"))?, now())
            .await?;
        left += s.scheduled + s.due + s.leased;
    }
    report.push(format!(
        "1,000,000 due jobs promoted and claimed+acked without error: {million_rate:.0} jobs/s, {left} left"
    ));
    let deleted = q.delete_namespace().await?;
    report.push(format!(
        "cleanup: {deleted} keys of namespace `bench` unlinked; server stopped"
    ));

    println!("\n== outdial-queue benchmark ==");
    for line in &report {
        println!("{line}");
    }
    Ok(())
}

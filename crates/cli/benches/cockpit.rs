//! Operator cockpit benchmark (issue 14): how long the operator's three views of a big
//! queue take with 1,000,000 queued calls across 100 companies, beside bare Redis round
//! trips measured in the same loop:
//!
//! - `outdial queue stats --json` (the release binary, a process per sample: start-up,
//!   Postgres and Redis connections, every company's counts) beside `redis-cli PING` (a
//!   process per sample too: the floor of any command-line tool that talks to Redis);
//! - `GET /admin/queue/stats` and `GET /metrics` of an `outdial serve` process observing the
//!   queue (one keep-alive connection each) beside `PING` on one Redis connection of the
//!   bench's own.
//!
//! The samples are interleaved (one of each per iteration), so every series sees the same
//! machine. Goal: p99 ≤ 50 ms for each of the three.
//!
//! Seeding: the companies in a scratch database, the calls in a Redis namespace of the
//! bench's own (deleted at the end) through the queue's batched enqueue, due over the next
//! seven days with 1 % already due. None of the three views reads `scheduled_calls`, so the
//! calls get no Postgres rows (that would add minutes of seeding and nothing measured).
//!
//! Run: `source ops/env.sh && cargo bench -p outdial-cli --bench cockpit`.
//! Environment: `OUTDIAL_BENCH_JOBS` (default 1,000,000), `OUTDIAL_BENCH_COMPANIES`
//! (default 100), `OUTDIAL_BENCH_SAMPLES` (per series, default 300), `OUTDIAL_BENCH_GOAL_MS`
//! (default 50). The bench exits non-zero when a view's counts are wrong.

#[path = "common/env.rs"]
mod env;
#[path = "api_load/http.rs"]
#[allow(dead_code)]
mod http;
#[path = "api_load/load.rs"]
#[allow(dead_code)]
mod load;
#[path = "api_load/servers.rs"]
#[allow(dead_code)]
mod servers;
#[path = "../tests/support/mod.rs"]
#[allow(dead_code)]
mod support;

use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, StatusCode};
use outdial_domain::{CallId, Clock, CustomerRef, SystemClock};
use outdial_queue::{NewJob, Partition, Queue, QueueConfig};
use outdial_store::Store;
use serde_json::Value;

use crate::support::ScratchDb;

use crate::env::env_or;

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

const ADMIN_TOKEN: &str = "oda_cockpit_bench_token";
const API_KEY: &str = "odk_cafecafecafecafecafecafecafecafecafecafecafecafecafecafecafecafe";

/// One series of latencies.
struct Series {
    name: &'static str,
    /// The series it is compared with.
    baseline: Option<&'static str>,
    samples: Vec<Duration>,
}

impl Series {
    fn new(name: &'static str, baseline: Option<&'static str>) -> Series {
        Series {
            name,
            baseline,
            samples: Vec::new(),
        }
    }

    /// The `q` quantile in milliseconds (nearest rank).
    fn ms(&self, q: f64) -> f64 {
        let mut s = self.samples.clone();
        s.sort();
        let i = ((s.len() as f64 * q).ceil() as usize).clamp(1, s.len().max(1)) - 1;
        s.get(i).map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
    }
}

async fn timed<T>(f: impl std::future::Future<Output = Res<T>>) -> Res<(Duration, T)> {
    let start = Instant::now();
    let v = f.await?;
    Ok((start.elapsed(), v))
}

/// The jobs of `company` (index `c` of `companies`): due over the next seven days, 1 % due.
fn jobs_of(
    p: &Partition,
    c: usize,
    per: usize,
    now: chrono::DateTime<chrono::Utc>,
) -> Res<Vec<NewJob>> {
    let week = chrono::Duration::days(7).num_seconds();
    (0..per)
        .map(|i| {
            let due = if i % 100 == 0 {
                now - chrono::Duration::seconds(60 + (i / 100) as i64)
            } else {
                now + chrono::Duration::seconds(60 + (i as i64 * week) / per as i64)
            };
            Ok(NewJob {
                call: CallId::from_uuid(uuid::Uuid::new_v4()),
                partition: p.clone(),
                customer: CustomerRef::new(&format!("c{c:03}-{i:07}"))?,
                due,
            })
        })
        .collect()
}

fn admin_get(path: &str) -> Request<Full<Bytes>> {
    Request::get(path)
        .header("host", "127.0.0.1")
        .header("authorization", format!("Bearer {ADMIN_TOKEN}"))
        .body(Full::new(Bytes::new()))
        .expect("a request")
}

async fn bench() -> Res<bool> {
    let jobs: usize = env_or("OUTDIAL_BENCH_JOBS", 1_000_000);
    let companies: usize = env_or("OUTDIAL_BENCH_COMPANIES", 100);
    let samples: usize = env_or("OUTDIAL_BENCH_SAMPLES", 300);
    let goal: f64 = env_or("OUTDIAL_BENCH_GOAL_MS", 50.0);
    let redis =
        std::env::var("OUTDIAL_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let bin = env!("CARGO_BIN_EXE_outdial");
    let namespace = format!("bench:cockpit{}", std::process::id());

    let db = ScratchDb::new("cockpit");
    let store = Store::connect_with(&db.url, 4).await?;
    store.migrate().await?;
    let queue = Queue::open(&redis, &namespace, QueueConfig::default())?;
    let now = SystemClock.now();
    let per = jobs.div_ceil(companies);
    let seeding = Instant::now();
    let mut partitions = Vec::new();
    for c in 0..companies {
        let (company, _) = store.create_company(&format!("lender-{c:03}"), now).await?;
        partitions.push(Partition::new(&company.id.to_string())?);
    }
    for (c, p) in partitions.iter().enumerate() {
        for chunk in jobs_of(p, c, per, now)?.chunks(20_000) {
            queue.enqueue_many(chunk).await?;
        }
    }
    let enqueued = per * companies;
    let mut direct = redis::Client::open(redis.as_str())?
        .get_multiplexed_async_connection()
        .await?;
    let memory: String = redis::cmd("INFO")
        .arg("memory")
        .query_async(&mut direct)
        .await?;
    let used = memory
        .lines()
        .find_map(|l| l.strip_prefix("used_memory_human:"))
        .unwrap_or("?")
        .trim()
        .to_owned();
    println!(
        "cockpit bench {now}: {enqueued} calls across {companies} companies enqueued in {:.1} s (Redis used_memory {used}); {samples} samples per series",
        seeding.elapsed().as_secs_f64()
    );

    let server = servers::Outdial::start_with(
        bin,
        &db.url,
        API_KEY,
        &[
            ("OUTDIAL_REDIS_URL", redis.as_str()),
            ("OUTDIAL_NAMESPACE", namespace.as_str()),
            ("OUTDIAL_ADMIN_TOKEN", ADMIN_TOKEN),
            ("OUTDIAL_LOG", "warn"),
        ],
    );
    // `outdial serve` adds its demo company (no calls) to the bench's.
    let companies = companies + 1;
    let mut stats_http = http::connect(server.addr).await?;
    let mut metrics_http = http::connect(server.addr).await?;

    let mut series = [
        Series::new("redis-cli PING (a process)", None),
        Series::new(
            "outdial queue stats --json (a process)",
            Some("redis-cli PING (a process)"),
        ),
        Series::new("PING on one Redis connection", None),
        Series::new(
            "GET /admin/queue/stats",
            Some("PING on one Redis connection"),
        ),
        Series::new("GET /metrics", Some("PING on one Redis connection")),
    ];
    let mut problems = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(600);
    for i in 0..samples {
        if Instant::now() > deadline {
            problems.push(format!("stopped after {i} samples: 600 s passed"));
            break;
        }
        let (d, out) = timed(async {
            Ok(Command::new("redis-cli")
                .args(["-u", &redis, "PING"])
                .output()?)
        })
        .await?;
        if !String::from_utf8_lossy(&out.stdout).contains("PONG") {
            return Err("redis-cli PING did not answer PONG".into());
        }
        series[0].samples.push(d);

        let (d, out) = timed(async {
            Ok(Command::new(bin)
                .args(["queue", "stats", "--json"])
                .env("OUTDIAL_DATABASE_URL", &db.url)
                .env("OUTDIAL_REDIS_URL", &redis)
                .env("OUTDIAL_NAMESPACE", &namespace)
                .env("OUTDIAL_LOG", "warn")
                .output()?)
        })
        .await?;
        if i == 0 {
            check_stats(
                "outdial queue stats",
                &out.stdout,
                companies,
                enqueued,
                &mut problems,
            );
        }
        series[1].samples.push(d);

        let (d, pong) = timed(async {
            let pong: String = redis::cmd("PING").query_async(&mut direct).await?;
            Ok(pong)
        })
        .await?;
        assert_eq!(pong, "PONG");
        series[2].samples.push(d);

        let (d, (status, body)) = timed(async {
            Ok(http::send(&mut stats_http, admin_get("/admin/queue/stats")).await?)
        })
        .await?;
        if status != StatusCode::OK {
            return Err(format!("/admin/queue/stats: {}", http::describe(status, &body)).into());
        }
        if i == 0 {
            check_stats(
                "/admin/queue/stats",
                &body,
                companies,
                enqueued,
                &mut problems,
            );
        }
        series[3].samples.push(d);

        let (d, (status, body)) =
            timed(async { Ok(http::send(&mut metrics_http, admin_get("/metrics")).await?) })
                .await?;
        let text = String::from_utf8_lossy(&body);
        if status != StatusCode::OK || !text.contains("outdial_queue_depth{") {
            return Err(format!("/metrics: {}", http::describe(status, &body)).into());
        }
        if i == 0 {
            let lines = text
                .lines()
                .filter(|l| l.starts_with("outdial_queue_depth{"))
                .count();
            if lines != companies * 7 {
                problems.push(format!(
                    "/metrics: {lines} outdial_queue_depth series, not {} (7 states × {companies} companies)",
                    companies * 7
                ));
            }
        }
        series[4].samples.push(d);
    }
    drop(server);
    queue.delete_namespace().await?;
    store.pool().close().await;
    drop(db);

    println!(
        "\n| what | p50 ms | p99 ms | max ms | p99 / its baseline's p99 | p99 goal ≤ {goal:.0} ms |"
    );
    println!("|---|---:|---:|---:|---:|---|");
    for s in &series {
        let base = s
            .baseline
            .and_then(|b| series.iter().find(|x| x.name == b))
            .map_or(String::from("(baseline)"), |b| {
                format!("{:.1}×", s.ms(0.99) / b.ms(0.99))
            });
        let verdict = match s.baseline {
            None => "",
            Some(_) if s.ms(0.99) <= goal => "met",
            Some(_) => "missed",
        };
        println!(
            "| {} | {:.2} | {:.2} | {:.2} | {base} | {verdict} |",
            s.name,
            s.ms(0.5),
            s.ms(0.99),
            s.ms(1.0)
        );
    }
    for p in &problems {
        eprintln!("cockpit bench: FAILED: {p}");
    }
    Ok(problems.is_empty())
}

/// Checks a stats report: every company listed, the total what was enqueued.
fn check_stats(
    what: &str,
    body: &[u8],
    companies: usize,
    enqueued: usize,
    problems: &mut Vec<String>,
) {
    let report: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            problems.push(format!(
                "{what}: not JSON ({e}): {}",
                String::from_utf8_lossy(body)
            ));
            return;
        }
    };
    let listed = report["companies"].as_array().map_or(0, Vec::len);
    let total = &report["total"];
    let waiting = ["scheduled", "due", "inFlight"]
        .iter()
        .map(|k| total[*k].as_u64().unwrap_or(0))
        .sum::<u64>();
    if listed != companies || waiting != enqueued as u64 {
        problems.push(format!(
            "{what}: {listed} companies and {waiting} calls waiting, not {companies} and {enqueued}"
        ));
    }
}

fn main() -> ExitCode {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match runtime.block_on(bench()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("cockpit bench failed: {e}");
            ExitCode::FAILURE
        }
    }
}

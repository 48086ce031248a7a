//! Dispatch throughput benchmark (issue 5): calls dispatched per second by 1, 2 and 4
//! `outdial work` processes (release binary, the in-process simulator with instant calls,
//! `OUTDIAL_SIMULATOR=instant`), as a ratio of the bare queue's claim+ack rate measured on
//! the same Redis right before each run; then 100,000 calls due at the same 08:00 local
//! instant, checked for completeness, due order and fairness across companies.
//!
//! Run: `source ops/env.sh && cargo bench -p outdial-cli --bench dispatch`. Each run gets a
//! scratch database (dropped at the end) and its own Redis namespace (deleted at the end).
//! Seeding: K companies (limits checked on every call, set high enough never to bind, a
//! webhook URL pointing at a sink this bench serves on 127.0.0.1, so every result writes
//! its outbox row and the workers deliver it), customers and one due call each, made by
//! copying rows the real paths wrote (`seed.rs`), then enqueued as the API does.
//!
//! A run's rate is seeded calls / (last result written − first dial intent), both Postgres
//! timestamps (`scheduled_calls.updated_at`, `call_attempts.started_at`); the wall time
//! from starting the processes is shown beside it. CPU per call comes from `/proc` (worker
//! processes, every `postgres`, every `redis-server` on the machine, so other users of the
//! shared servers show up there); commits and row writes per call from
//! `pg_stat_database`; WAL bytes per call from the cluster's WAL position (cluster-wide).
//!
//! When the cluster runs `autovacuum = off` (this machine's), each run stands in for its
//! autoanalyze (`common/autoanalyze.rs`, shared with `api_load`): without fresh statistics
//! the workers' cached plans keep scanning `call_attempts` as it grows.
//!
//! Checks (the bench exits non-zero when one fails): every seeded call ended with exactly
//! one attempt; none dialed before its due time; within a company, calls of an earlier due
//! instant dialed no later than 1 s (`OUTDIAL_BENCH_ORDER_TOLERANCE_MS`) after the first
//! call of a later one; in the first 10 % of the burst's dials, no company's share below
//! half its share of all calls.
//!
//! Environment: `OUTDIAL_BENCH_CALLS` (calls per throughput run, default 20,000),
//! `OUTDIAL_BENCH_WORKERS` (default `1,2,4`), `OUTDIAL_BENCH_ROUNDS` (repeats of the
//! throughput runs, default 1), `OUTDIAL_BENCH_COMPANIES` (default 4),
//! `OUTDIAL_BENCH_BURST` (calls of the 08:00 scenario, default 100,000, 0 skips it),
//! `OUTDIAL_BENCH_BURST_WORKERS` (default 4), `OUTDIAL_BENCH_IN_FLIGHT`
//! (`OUTDIAL_MAX_IN_FLIGHT` of each worker, default 256), `OUTDIAL_BENCH_DB_POOL`
//! (`OUTDIAL_DB_POOL` of each worker, default 12: the shared Postgres allows 100
//! connections), `OUTDIAL_BENCH_WEBHOOK` (`false`: no webhook, no outbox rows),
//! `OUTDIAL_BENCH_TIMEOUT_SECS` (per run, default 600), `OUTDIAL_BENCH_METRICS` (`off`,
//! the default; `on`: each worker serves `/metrics` on `OUTDIAL_METRICS_BIND` and the bench
//! scrapes every worker each second; `ab`: each throughput run twice, metrics off and on,
//! the order swapped every round, and the on/off ratio printed per worker count), `OUTDIAL_BENCH_BIN` (another
//! `outdial` binary), `OUTDIAL_BENCH_WORKER_ENV` (`K=V,K=V` added to each worker's
//! environment), `OUTDIAL_BENCH_GOAL` (calls/s, default 2,000), `OUTDIAL_BENCH_PG_SAMPLE`
//! (`true`: sample `pg_stat_activity` every 5 ms during each run and print the statements
//! Postgres was busy with, a profile without `pg_stat_statements`), `OUTDIAL_BENCH_SQL`
//! (statements run on each scratch database after its migrations, before seeding: an A/B
//! of a storage setting, `ALTER TABLE … SET (fillfactor = 100)` say, with one binary).
//!
//! The bench and its workers run on one clock: the real one, shifted by whole hours (the
//! workers through `OUTDIAL_CLOCK_OFFSET_SECS`) when no bench place is lawful to call for
//! the next 30 minutes — from about 10:45 to 12:00 UTC no US zone is inside its window.
//!
//! Load stays on 127.0.0.1, every phase is bounded in time. `cargo test` neither builds
//! nor runs this.

#[path = "common/autoanalyze.rs"]
mod autoanalyze;
#[path = "dispatch/checks.rs"]
mod checks;
#[path = "dispatch/cpu.rs"]
mod cpu;
#[path = "common/env.rs"]
mod env;
#[path = "dispatch/run.rs"]
mod run;
#[path = "dispatch/seed.rs"]
mod seed;
#[path = "../tests/support/mod.rs"]
mod support;

use std::process::ExitCode;
use std::sync::OnceLock;
use std::sync::atomic::Ordering;
use std::time::Duration;

use outdial_domain::policy::Ruleset;
use outdial_domain::{Clock, ShiftedClock, SystemClock};
use outdial_queue::{Queue, QueueConfig};
use outdial_store::Store;

use crate::run::{Outcome, Workers};
use crate::seed::{Place, Seed};
use crate::support::ScratchDb;

use crate::env::env_or;

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

struct Config {
    calls: usize,
    workers: Vec<usize>,
    rounds: usize,
    companies: usize,
    burst: usize,
    burst_workers: usize,
    in_flight: usize,
    pool: u32,
    webhook: bool,
    timeout: Duration,
    bin: String,
    worker_env: Vec<(String, String)>,
    goal: f64,
    sample: bool,
    /// Run on each scratch database after its migrations.
    sql: String,
    tolerance_ms: i64,
    /// The metrics settings each throughput run is made with (`OUTDIAL_BENCH_METRICS`).
    metrics: Vec<bool>,
    redis: String,
    /// The cluster's `autovacuum` setting: when `off`, each run stands in for autoanalyze.
    autovacuum: String,
}

impl Config {
    fn from_env() -> Config {
        let workers = std::env::var("OUTDIAL_BENCH_WORKERS").unwrap_or_else(|_| "1,2,4".into());
        let worker_env = std::env::var("OUTDIAL_BENCH_WORKER_ENV").unwrap_or_default();
        Config {
            calls: env_or("OUTDIAL_BENCH_CALLS", 20_000),
            workers: workers
                .split(',')
                .filter(|s| !s.trim().is_empty())
                .map(|s| s.trim().parse().expect("OUTDIAL_BENCH_WORKERS: numbers"))
                .collect(),
            rounds: env_or("OUTDIAL_BENCH_ROUNDS", 1),
            companies: env_or("OUTDIAL_BENCH_COMPANIES", 4),
            burst: env_or("OUTDIAL_BENCH_BURST", 100_000),
            burst_workers: env_or("OUTDIAL_BENCH_BURST_WORKERS", 4),
            in_flight: env_or("OUTDIAL_BENCH_IN_FLIGHT", 256),
            pool: env_or("OUTDIAL_BENCH_DB_POOL", 12),
            webhook: env_or("OUTDIAL_BENCH_WEBHOOK", true),
            timeout: Duration::from_secs(env_or("OUTDIAL_BENCH_TIMEOUT_SECS", 600)),
            bin: std::env::var("OUTDIAL_BENCH_BIN")
                .unwrap_or_else(|_| env!("CARGO_BIN_EXE_outdial").to_owned()),
            worker_env: worker_env
                .split(',')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                .collect(),
            goal: env_or("OUTDIAL_BENCH_GOAL", 2_000.0),
            sample: env_or("OUTDIAL_BENCH_PG_SAMPLE", false),
            sql: std::env::var("OUTDIAL_BENCH_SQL").unwrap_or_default(),
            tolerance_ms: env_or("OUTDIAL_BENCH_ORDER_TOLERANCE_MS", 1_000),
            metrics: match std::env::var("OUTDIAL_BENCH_METRICS").as_deref() {
                Err(_) | Ok("off") => vec![false],
                Ok("on") => vec![true],
                Ok("ab") => vec![false, true],
                Ok(v) => panic!("OUTDIAL_BENCH_METRICS={v:?}: off, on or ab"),
            },
            redis: std::env::var("OUTDIAL_REDIS_URL")
                .unwrap_or_else(|_| "redis://127.0.0.1:6379".into()),
            autovacuum: String::new(),
        }
    }
}

/// One measured run, for the summary.
struct Row {
    label: String,
    processes: usize,
    metrics: bool,
    outcome: Outcome,
    queue: f64,
    load: (String, String),
}

fn print_row(r: &Row) {
    let o = &r.outcome;
    let n = o.calls;
    println!(
        "| {} | {} | {} | **{:.0}** | {:.0} | {:.3} | {:.0} | {:.0} / {:.0} / {:.0} | {:.2} / {:.2} / {:.2} / {:.2} | {:.1} / {:.1} / {:.1} | {:.1} | {} → {} |",
        r.label,
        r.processes,
        n,
        o.rate(),
        n as f64 / o.wall,
        o.rate() / r.queue,
        r.queue,
        o.cpu.micros_per(o.cpu.workers, n),
        o.cpu.micros_per(o.cpu.postgres, n),
        o.cpu.micros_per(o.cpu.redis, n),
        o.cpu.machine,
        o.cpu.workers,
        o.cpu.postgres,
        o.cpu.redis,
        o.pg.commits as f64 / n as f64,
        o.pg.inserted as f64 / n as f64,
        o.pg.updated as f64 / n as f64,
        o.pg.wal as f64 / n as f64 / 1024.0,
        r.load.0,
        r.load.1,
    );
}

const HEADER: &str = "| run | workers | calls | calls/s | calls/s (wall) | × bare queue | bare queue claim+ack/s | µs CPU/call: workers / postgres / redis | cores: machine / workers / postgres / redis | per call: commits / rows inserted / rows updated | WAL KiB/call | load average |\n|---|---:|---:|---:|---:|---:|---:|---|---|---|---:|---|";

/// The workers of a run: how many processes, and whether they serve metrics.
#[derive(Clone, Copy)]
struct Fleet {
    processes: usize,
    metrics: bool,
}

/// Seeds a scratch database and namespace, measures the bare queue, runs the workers.
async fn measured_run(
    c: &Config,
    label: &str,
    fleet: Fleet,
    places: &[Place],
    per_company: usize,
    due: &dyn Fn(&Place) -> chrono::DateTime<chrono::Utc>,
    sink: Option<&run::Sink>,
) -> Res<(Row, Vec<checks::Dialed>, Vec<String>)> {
    let db = ScratchDb::new("dispatch");
    let store = Store::connect_with(&db.url, 8).await?;
    store.migrate().await?;
    if !c.sql.is_empty() {
        sqlx::raw_sql(&c.sql).execute(store.pool()).await?;
    }
    let namespace = format!("bench:dispatch{}:{label}", std::process::id());
    let queue = Queue::open(&c.redis, &namespace, QueueConfig::default())?;
    let Fleet { processes, metrics } = fleet;
    let seeded_at = std::time::Instant::now();
    seed::seed(
        &store,
        &Seed {
            companies: c.companies,
            per_company,
            places,
            due,
            webhook: sink.map(|s| s.url.as_str()),
            now: clock().now(),
        },
    )
    .await?;
    let seeded = seed::enqueue(&store, &queue).await?;
    eprintln!(
        "{label}: seeded and enqueued {} calls in {:.1} s",
        seeded.len(),
        seeded_at.elapsed().as_secs_f64()
    );
    let bare = run::bare_queue(
        &c.redis,
        &format!("{namespace}:bare"),
        c.companies,
        seeded.len(),
    )
    .await?;
    let load_before = cpu::loadavg();
    let started_at = clock().now();
    let workers = Workers {
        bin: c.bin.clone(),
        db: db.url.clone(),
        redis: c.redis.clone(),
        namespace: namespace.clone(),
        processes,
        in_flight: c.in_flight,
        pool: c.pool,
        timeout: c.timeout,
        clock_offset: clock().offset,
        env: c.worker_env.clone(),
        sample: c.sample,
        sink: sink.cloned(),
        metrics,
    };
    let stand_in = autoanalyze::stand_in(&c.autovacuum, vec![db.url.clone()]);
    let outcome = run::run_workers(&workers, &store, seeded.len()).await;
    if let Some(task) = stand_in {
        task.abort();
    }
    let load_after = cpu::loadavg();
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => {
            let _ = queue.delete_namespace().await;
            return Err(e);
        }
    };
    let (dialed, mut problems) = checks::dialed(&store, &seeded).await?;
    if metrics {
        let (ok, failed) = outcome.scrapes;
        eprintln!("{label}: /metrics scrapes answered {ok}, not answered {failed}");
        if ok == 0 || failed > 0 {
            problems.push(format!(
                "the workers' /metrics answered {ok} scrapes and failed {failed}"
            ));
        }
    }
    let events: Vec<(String, i64)> = sqlx::query_as(
        "SELECT coalesce(entry->>'event', entry->'event'->>'kind', (entry->'event')::text), count(*)
         FROM call_events WHERE at >= $1 GROUP BY 1 ORDER BY 2 DESC",
    )
    .bind(started_at)
    .fetch_all(store.pool())
    .await?;
    eprintln!(
        "{label}: trail entries written during the run: {}",
        events
            .iter()
            .map(|(e, n)| format!("{e} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    queue.delete_namespace().await?;
    store.pool().close().await;
    drop(db);
    Ok((
        Row {
            label: label.to_owned(),
            processes,
            metrics,
            outcome,
            queue: bare,
            load: (load_before, load_after),
        },
        dialed,
        problems,
    ))
}

/// The clock of the bench and its workers (see the module documentation): the real one,
/// shifted by the fewest whole hours that make some bench place lawful to call for the next
/// 30 minutes.
fn clock() -> ShiftedClock {
    static OFFSET: OnceLock<i64> = OnceLock::new();
    let hours = *OFFSET.get_or_init(|| {
        let rules = Ruleset::bundled().expect("the bundled ruleset");
        support::lawful_shift(|at| {
            !seed::lawful_places(&rules, at, chrono::Duration::minutes(30)).is_empty()
        })
        .map_or(0, |d| d.num_hours())
    });
    ShiftedClock {
        offset: chrono::Duration::hours(hours),
    }
}

async fn bench(c: &Config) -> Res<bool> {
    let rules = Ruleset::bundled()?;
    let now = clock().now();
    if clock().offset != chrono::Duration::zero() {
        println!(
            "dispatch bench: no bench place is lawful to call now; the bench and its workers run {} h ahead",
            clock().offset.num_hours()
        );
    }
    let places = seed::lawful_places(&rules, now, chrono::Duration::minutes(30));
    if places.is_empty() {
        return Err(
            format!("no bench place is lawful to call for the next 30 minutes ({now})").into(),
        );
    }
    let sink = run::webhook_sink().await?;
    let webhook = c.webhook.then_some(&sink);
    println!(
        "dispatch bench {now}: {} companies, places {:?}, in-flight {} per worker, pool {} per worker, webhook {}, postgres autovacuum {} (off: the bench stands in for autoanalyze), load average {}",
        c.companies,
        places.iter().map(|p| p.zone).collect::<Vec<_>>(),
        c.in_flight,
        c.pool,
        if c.webhook {
            "sink on 127.0.0.1"
        } else {
            "none"
        },
        c.autovacuum,
        cpu::loadavg()
    );
    let mut ok = true;
    let mut rows = Vec::new();
    let first = [places[0]];
    for round in 0..c.rounds {
        for &w in &c.workers {
            // In an A/B, odd rounds run the variants in the other order (drift cancels).
            let mut variants = c.metrics.clone();
            if round % 2 == 1 {
                variants.reverse();
            }
            for metrics in variants {
                let label = format!("r{round}w{w}{}", if metrics { "-metrics" } else { "" });
                let due_now = clock().now() - chrono::Duration::seconds(1);
                let due = move |_: &Place| due_now;
                let (row, _, problems) = measured_run(
                    c,
                    &label,
                    Fleet {
                        processes: w,
                        metrics,
                    },
                    &first,
                    c.calls.div_ceil(c.companies),
                    &due,
                    webhook,
                )
                .await?;
                if !problems.is_empty() {
                    ok = false;
                    eprintln!("{label}: FAILED: {}", problems.join("; "));
                }
                println!("{HEADER}");
                print_row(&row);
                rows.push(row);
            }
        }
    }
    let mut burst_summary = None;
    if c.burst > 0 {
        let now = clock().now();
        let due = move |p: &Place| seed::eight_local(p, now);
        let burst_places: Vec<Place> = places.iter().take(3).copied().collect();
        let (row, dialed, mut problems) = measured_run(
            c,
            "burst",
            Fleet {
                processes: c.burst_workers,
                metrics: c.metrics == [true],
            },
            &burst_places,
            c.burst.div_ceil(c.companies),
            &due,
            webhook,
        )
        .await?;
        let (late, worst) = checks::order(&dialed, c.tolerance_ms);
        if late > 0 {
            problems.push(format!(
                "{late} calls dialed more than {} ms after a later-due call of their company (worst {worst} ms)",
                c.tolerance_ms
            ));
        }
        let shares: Vec<(f64, (f64, f64))> = [0.01, 0.1, 0.25, 0.5]
            .iter()
            .map(|f| (*f, checks::fairness(&dialed, *f)))
            .collect();
        if shares[1].1.0 < 0.5 {
            problems.push(format!(
                "a company got {:.2}× its share of the first 10 % of dials",
                shares[1].1.0
            ));
        }
        if !problems.is_empty() {
            ok = false;
            eprintln!("burst: FAILED: {}", problems.join("; "));
        }
        let dues: Vec<String> = burst_places
            .iter()
            .map(|p| format!("{} 08:00 = {}", p.zone, seed::eight_local(p, now)))
            .collect();
        burst_summary = Some((row, dues, late, worst, shares, problems.is_empty()));
    }

    println!("\n## dispatch bench summary ({})\n", SystemClock.now());
    println!("{HEADER}");
    for r in &rows {
        print_row(r);
    }
    if let Some((row, ..)) = &burst_summary {
        print_row(row);
    }
    println!();
    for r in &rows {
        println!(
            "{}: {} worker(s): {:.0} calls/s = {:.3}× the bare queue ({:.0} claim+ack/s); goal ≥ {:.0}: {}",
            r.label,
            r.processes,
            r.outcome.rate(),
            r.outcome.rate() / r.queue,
            r.queue,
            c.goal,
            if r.outcome.rate() >= c.goal {
                "met"
            } else {
                "missed"
            }
        );
    }
    if c.metrics.len() == 2 {
        for &w in &c.workers {
            let sum = |on: bool| -> (f64, usize) {
                rows.iter()
                    .filter(|r| r.processes == w && r.metrics == on)
                    .fold((0.0, 0), |(s, n), r| (s + r.outcome.rate(), n + 1))
            };
            // Worker CPU per call over Postgres CPU per call: the machine's speed drifts
            // between runs (both move together), metrics would move only the workers'.
            let cpu = |on: bool| -> f64 {
                let runs: Vec<f64> = rows
                    .iter()
                    .filter(|r| r.processes == w && r.metrics == on)
                    .map(|r| {
                        let (o, n) = (&r.outcome.cpu, r.outcome.calls);
                        o.micros_per(o.workers, n) / o.micros_per(o.postgres, n).max(1e-9)
                    })
                    .collect();
                runs.iter().sum::<f64>() / runs.len().max(1) as f64
            };
            println!(
                "metrics A/B, {w} worker(s): worker CPU per call / Postgres CPU per call: {:.3} with metrics, {:.3} without ({:.3}×)",
                cpu(true),
                cpu(false),
                cpu(true) / cpu(false).max(1e-9)
            );
            let ((on, n_on), (off, n_off)) = (sum(true), sum(false));
            let ratio = (on / n_on.max(1) as f64) / (off / n_off.max(1) as f64).max(1e-9);
            println!(
                "metrics A/B, {w} worker(s): mean {:.0} calls/s with /metrics served and scraped each second, {:.0} without ({} rounds each): {ratio:.3}× (goal ≥ 0.97: {})",
                on / n_on.max(1) as f64,
                off / n_off.max(1) as f64,
                n_on,
                if ratio >= 0.97 { "met" } else { "missed" }
            );
        }
    }
    if let Some((row, dues, late, worst, shares, passed)) = burst_summary {
        println!(
            "burst: {} calls due at the same 08:00 local instant ({}), {} workers: {:.0} calls/s ({:.3}× the bare queue), checks passed (each call dialed once, none early, due order, shares): {}",
            row.outcome.calls,
            dues.join(", "),
            row.processes,
            row.outcome.rate(),
            row.outcome.rate() / row.queue,
            passed
        );
        println!(
            "burst: due order within each company: {late} calls late beyond {} ms (largest gap {worst} ms)",
            c.tolerance_ms
        );
        for (f, (lo, hi)) in shares {
            println!(
                "burst: first {:.0} % of dials: company share / proportional share from {lo:.2} to {hi:.2}",
                f * 100.0
            );
        }
    }
    println!(
        "webhook deliveries received by the sink: {}",
        sink.deliveries.load(Ordering::Relaxed)
    );
    Ok(ok)
}

fn main() -> ExitCode {
    let mut config = Config::from_env();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let admin = std::env::var("DATABASE_URL")
        .or_else(|_| std::env::var("OUTDIAL_DATABASE_URL"))
        .unwrap_or_default();
    config.autovacuum = runtime.block_on(autoanalyze::autovacuum(&admin));
    match runtime.block_on(bench(&config)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("dispatch bench: a check failed (see above)");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("dispatch bench failed: {e}");
            ExitCode::FAILURE
        }
    }
}

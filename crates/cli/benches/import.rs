//! Bulk import benchmark (issue 15): customers with collections schedules imported into
//! Postgres, their calls enqueued in Redis, through `outdial import` and through `POST
//! /customers/batch`, beside the `insert` baseline (`Store::insert_customer` from 32
//! concurrent callers on a pool of 10, no schedule: what `api_load` calls `insert`) run in
//! the same invocation.
//!
//! Run: `source ops/env.sh && cargo bench -p outdial-cli --bench import`. Scenarios:
//!
//! - `insert`: the baseline, `OUTDIAL_BENCH_INSERT_ROWS` customers (default 100,000);
//! - `cli`: `outdial import FILE --schedule collections` (the release binary) on an NDJSON
//!   file of `OUTDIAL_BENCH_IMPORT_ROWS` customers (default 1,000,000), with its peak RSS;
//! - `cli-all`: the same with `OUTDIAL_STORE_AHEAD_HOURS=0` (every call of each schedule
//!   a row and a queue job at once: the behaviour before store-ahead), as the previous
//!   version's baseline; `cli` and `scale` use `OUTDIAL_STORE_AHEAD_HOURS` (default 24);
//! - `batch`: the same number of customers posted to `POST /customers/batch` in bodies of
//!   10,000 (`outdial serve`), imported by `OUTDIAL_BENCH_IMPORT_WORKERS` `outdial work`
//!   processes (default 2): from the first POST until every job is done;
//! - `scale`: `outdial import` at each batch size of `OUTDIAL_BENCH_IMPORT_BATCHES`
//!   (default `1000,10000`) on `OUTDIAL_BENCH_IMPORT_SCALE_ROWS` customers (default
//!   100,000).
//!
//! `OUTDIAL_BENCH_SCENARIOS` picks some (comma list; default all). Every scenario uses its
//! own company on one scratch database (dropped at the end) and its own Redis namespace
//! (deleted at the end). Traffic goes to 127.0.0.1 only; every wait is bounded.

#[path = "common/env.rs"]
mod env;
#[path = "api_load/servers.rs"]
#[allow(dead_code)]
mod servers;
#[path = "../tests/support/mod.rs"]
mod support;

use std::io::{BufWriter, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use outdial_domain::{Clock, CustomerInput, SystemClock};
use outdial_store::{CompanyId, Store};
use serde_json::{Value, json};
use sqlx::postgres::PgPoolOptions;

use crate::env::env_or;
use crate::support::ScratchDb;

const BIN: &str = env!("CARGO_BIN_EXE_outdial");
/// The API key `outdial serve` installs for its demo company in the `batch` scenario.
const API_KEY: &str = "odk_5b2e0c7f1a3d4e6b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b";

/// Where the bench's customers live: zone, state, ZIP code and phone area code, cycled
/// through so that an import's customers get several different plans (state rules, zones),
/// as a real file's would.
const PLACES: [(&str, &str, &str, &str); 8] = [
    ("America/New_York", "NY", "10004", "212"),
    ("America/Chicago", "IL", "60601", "312"),
    ("America/Denver", "CO", "80202", "303"),
    ("America/Los_Angeles", "CA", "90012", "213"),
    ("America/Phoenix", "AZ", "85004", "602"),
    ("America/New_York", "FL", "33131", "305"),
    ("America/Chicago", "TX", "75201", "214"),
    ("Pacific/Honolulu", "HI", "96813", "808"),
];

/// Customer `i` of scenario `tag` (collections, in one of [`PLACES`]).
fn customer(tag: &str, i: usize) -> Value {
    let (zone, state, zip, area) = PLACES[i % PLACES.len()];
    json!({
        "id": format!("{tag}{i:07}"), "taskType": "collections",
        "firstName": "Sam", "lastName": "Lee", "timezone": zone,
        "phoneNumber": format!("+1{area}555{:04}", i % 10_000),
        "streetAddress1": "1 Main Street", "city": "Springfield", "state": state, "zipCode": zip,
        "externalMetadata": {"branch": i % 17}
    })
}

struct Figure {
    scenario: String,
    rows: usize,
    seconds: f64,
    note: String,
}

impl Figure {
    fn rate(&self) -> f64 {
        self.rows as f64 / self.seconds.max(1e-9)
    }
}

fn runs(name: &str) -> bool {
    match std::env::var("OUTDIAL_BENCH_SCENARIOS") {
        Ok(list) => list.split(',').any(|s| s.trim() == name),
        Err(_) => true,
    }
}

fn redis_url() -> String {
    std::env::var("OUTDIAL_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// Deletes a Redis namespace's keys (`ns:*`) with redis-cli.
fn delete_namespace(ns: &str) {
    let url = redis_url();
    let keys = Command::new("redis-cli")
        .args(["-u", &url, "--scan", "--pattern", &format!("{ns}:*")])
        .output();
    if let Ok(out) = keys {
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let keys: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
        for chunk in keys.chunks(500) {
            let _ = Command::new("redis-cli")
                .args(["-u", &url, "DEL"])
                .args(chunk)
                .stdout(Stdio::null())
                .status();
        }
    }
}

async fn company(store: &Store, name: &str) -> CompanyId {
    store
        .create_company(name, SystemClock.now())
        .await
        .expect("company")
        .0
        .id
}

/// ANALYZE the scratch database: this machine's Postgres runs with autovacuum off, and
/// without fresh statistics the reconciler's page query over a million new calls is planned
/// as a walk of the table (seconds per page), which also holds a worker's SIGTERM up.
async fn analyze(store: &Store) {
    sqlx::query("ANALYZE")
        .execute(store.pool())
        .await
        .expect("ANALYZE");
}

async fn calls_of(store: &Store, company: CompanyId) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM scheduled_calls WHERE company_id = $1")
        .bind(company.as_uuid())
        .fetch_one(store.pool())
        .await
        .expect("count calls")
}

/// `company`'s planned calls not stored as rows yet (crates/store/src/plan.rs).
async fn unstored_of(store: &Store, company: CompanyId) -> i64 {
    sqlx::query_scalar(
        "SELECT coalesce(sum(plan_len - plan_stored), 0)::int8 FROM schedules
         WHERE company_id = $1 AND plan_next_at IS NOT NULL",
    )
    .bind(company.as_uuid())
    .fetch_one(store.pool())
    .await
    .expect("count planned calls")
}

async fn insert_baseline(store: &Store, rows: usize) -> Figure {
    let company = store
        .create_company("insert", SystemClock.now())
        .await
        .expect("company")
        .0;
    let input: CustomerInput =
        serde_json::from_value(customer("tmpl", 0)).expect("a CustomerInput");
    let template = Arc::new(
        input
            .validate(
                &company.catalog().expect("catalog").task_types(),
                SystemClock.now().date_naive(),
            )
            .expect("valid"),
    );
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let (store, template, next) = (store.clone(), template.clone(), next.clone());
        let id = company.id;
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= rows {
                    return;
                }
                let mut c = (*template).clone();
                c.id = format!("ins{i:07}").parse().expect("id");
                store
                    .insert_customer(id, &c, SystemClock.now())
                    .await
                    .expect("insert");
            }
        }));
    }
    for t in tasks {
        t.await.expect("insert task");
    }
    Figure {
        scenario: "insert".into(),
        rows,
        seconds: started.elapsed().as_secs_f64(),
        note: "Store::insert_customer, 32 callers, pool 10, no schedule".into(),
    }
}

/// Writes an NDJSON file of `rows` customers of `tag`.
fn write_file(path: &Path, tag: &str, rows: usize) {
    let mut out = BufWriter::new(std::fs::File::create(path).expect("create the file"));
    for i in 0..rows {
        serde_json::to_writer(&mut out, &customer(tag, i)).expect("write");
        out.write_all(b"\n").expect("write");
    }
    out.flush().expect("flush");
}

/// Peak RSS (VmHWM) of `pid` in MiB, 0 when unreadable.
fn peak_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

#[allow(clippy::too_many_arguments)]
async fn cli_import(
    db: &str,
    store: &Store,
    name: &str,
    rows: usize,
    batch: usize,
    ahead_hours: u32,
    dir: &Path,
) -> Figure {
    let company = company(store, name).await;
    let file = dir.join(format!("{name}.ndjson"));
    write_file(&file, name, rows);
    let ns = format!("bench-import-{name}-{}", std::process::id());
    let started = Instant::now();
    let mut child = Command::new(BIN)
        .args(["import", file.to_str().expect("path"), "--company", name])
        .args([
            "--schedule",
            "collections",
            "--batch-size",
            &batch.to_string(),
        ])
        .env("OUTDIAL_DATABASE_URL", db)
        .env("OUTDIAL_REDIS_URL", redis_url())
        .env("OUTDIAL_NAMESPACE", &ns)
        .env("OUTDIAL_LOG", "warn")
        .env("OUTDIAL_STORE_AHEAD_HOURS", ahead_hours.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start outdial import");
    let pid = child.id();
    let mut peak: f64 = 0.0;
    let deadline = Instant::now() + Duration::from_secs(3600);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        peak = peak.max(peak_rss_mib(pid));
        assert!(Instant::now() < deadline, "outdial import ran over an hour");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let seconds = started.elapsed().as_secs_f64();
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut stdout)
        .expect("summary");
    assert!(status.success(), "outdial import failed: {stdout}");
    let summary: Value = serde_json::from_str(&stdout).expect("a JSON summary");
    assert_eq!(summary["created"], rows, "{summary}");
    assert_eq!(summary["scheduled"], rows, "{summary}");
    analyze(store).await;
    let calls = calls_of(store, company).await;
    let planned = unstored_of(store, company).await;
    let queued = queue_depth(&ns, db, company);
    delete_namespace(&ns);
    let _ = std::fs::remove_file(&file);
    let mode = if ahead_hours == 0 {
        " all calls stored".to_owned()
    } else {
        format!(" ahead={ahead_hours}h")
    };
    Figure {
        scenario: format!("cli batch={batch}{mode}"),
        rows,
        seconds,
        note: format!(
            "peak RSS {peak:.0} MiB; {calls} calls stored, {planned} more planned, {queued} in Redis"
        ),
    }
}

/// `company`'s jobs waiting in the namespace's queue (scheduled + due), by `outdial queue
/// stats` (the workers' reconciler also enqueues the other scenarios' calls there).
fn queue_depth(ns: &str, db: &str, company: CompanyId) -> i64 {
    let out = Command::new(BIN)
        .args(["queue", "stats", "--json"])
        .env("OUTDIAL_DATABASE_URL", db)
        .env("OUTDIAL_LOG", "warn")
        .env("OUTDIAL_REDIS_URL", redis_url())
        .env("OUTDIAL_NAMESPACE", ns)
        .output();
    let Ok(out) = out else { return -1 };
    let stats: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    let id = company.to_string();
    stats["companies"]
        .as_array()
        .and_then(|all| all.iter().find(|c| c["companyId"] == id.as_str()))
        .and_then(|c| Some(c["scheduled"].as_i64()? + c["due"].as_i64()?))
        .unwrap_or(-1)
}

/// `POST path` with `body` over one HTTP/1.1 connection; the status and the body.
fn post(addr: SocketAddr, path: &str, body: &[u8]) -> (u16, String) {
    let mut conn = TcpStream::connect(addr).expect("connect");
    conn.set_read_timeout(Some(Duration::from_secs(120)))
        .expect("timeout");
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nX-API-Key: {API_KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).expect("send");
    conn.write_all(body).expect("send");
    let mut answer = String::new();
    conn.read_to_string(&mut answer).expect("answer");
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = answer
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    (status, body)
}

async fn batch_import(db: &str, store: &Store, rows: usize, workers: usize) -> Figure {
    let ns = format!("bench-import-batch-{}", std::process::id());
    let env = [
        ("OUTDIAL_REDIS_URL", redis_url()),
        ("OUTDIAL_NAMESPACE", ns.clone()),
        ("OUTDIAL_LOG", "warn".to_owned()),
    ];
    let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = servers::Outdial::start_with(BIN, db, API_KEY, &env_refs);
    let mut fleet = Vec::new();
    for _ in 0..workers {
        fleet.push(
            Command::new(BIN)
                .arg("work")
                .env("OUTDIAL_DATABASE_URL", db)
                .env("OUTDIAL_REDIS_URL", redis_url())
                .env("OUTDIAL_NAMESPACE", &ns)
                .env("OUTDIAL_SIMULATOR", "instant")
                .env("OUTDIAL_LOG", "warn")
                .env_remove("OUTDIAL_PROVIDER_URL")
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("start outdial work"),
        );
    }
    let company = store
        .authenticate(API_KEY)
        .await
        .expect("authenticate")
        .expect("the demo key")
        .id;
    let addr = server.addr;
    let started = Instant::now();
    let mut jobs = Vec::new();
    for first in (0..rows).step_by(10_000) {
        let body: Vec<Value> = (first..(first + 10_000).min(rows))
            .map(|i| customer("bat", i))
            .collect();
        let bytes = serde_json::to_vec(&json!({"customers": body, "schedule": "collections"}))
            .expect("body");
        let (status, answer) =
            tokio::task::spawn_blocking(move || post(addr, "/customers/batch", &bytes))
                .await
                .expect("post");
        assert_eq!(status, 202, "{answer}");
        let accepted: Value = serde_json::from_str(&answer).expect("JSON");
        jobs.push(
            accepted["jobId"]
                .as_str()
                .expect("jobId")
                .parse()
                .expect("uuid"),
        );
    }
    let posted = started.elapsed().as_secs_f64();
    let deadline = Instant::now() + Duration::from_secs(3600);
    for job in &jobs {
        loop {
            let s = store.import_status(company, *job).await.expect("status");
            if s.state == "done" {
                assert_eq!(s.counts.created as usize, s.total as usize, "{s:?}");
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the batch import ran over an hour"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    analyze(store).await;
    let calls = calls_of(store, company).await;
    let planned = unstored_of(store, company).await;
    let queued = queue_depth(&ns, db, company);
    for w in &fleet {
        let _ = Command::new("kill")
            .args(["-TERM", &w.id().to_string()])
            .status();
    }
    let stop_by = Instant::now() + Duration::from_secs(60);
    for mut w in fleet {
        while w.try_wait().ok().flatten().is_none() && Instant::now() < stop_by {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if w.try_wait().ok().flatten().is_none() {
            eprintln!("an outdial work process ignored SIGTERM for 60 s; killing it");
            let _ = w.kill();
            let _ = w.wait();
        }
    }
    drop(server);
    delete_namespace(&ns);
    Figure {
        scenario: format!("batch ({workers} workers)"),
        rows,
        seconds,
        note: format!(
            "all {} bodies posted after {posted:.1} s; {calls} calls stored, {planned} more \
             planned, {queued} in Redis",
            jobs.len()
        ),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let rows: usize = env_or("OUTDIAL_BENCH_IMPORT_ROWS", 1_000_000);
    let insert_rows: usize = env_or("OUTDIAL_BENCH_INSERT_ROWS", 100_000);
    let scale_rows: usize = env_or("OUTDIAL_BENCH_IMPORT_SCALE_ROWS", 100_000);
    let workers: usize = env_or("OUTDIAL_BENCH_IMPORT_WORKERS", 2);
    let batches: Vec<usize> = std::env::var("OUTDIAL_BENCH_IMPORT_BATCHES")
        .unwrap_or_else(|_| "1000,10000".into())
        .split(',')
        .map(|b| b.trim().parse().expect("a batch size"))
        .collect();
    let db = ScratchDb::new("import_bench");
    let pool = PgPoolOptions::new()
        .max_connections(10)
        .connect(&db.url)
        .await
        .expect("connect");
    let store = Store::new(pool);
    store.migrate().await.expect("migrate");
    let dir = std::env::temp_dir().join(format!("outdial-import-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");

    let mut figures = Vec::new();
    // Each figure is printed as it comes (a long run stopped half-way keeps what it has).
    let mut done = |f: Figure| {
        eprintln!(
            "done: {} {} customers in {:.1} s = {:.0}/s ({})",
            f.scenario,
            f.rows,
            f.seconds,
            f.rate(),
            f.note
        );
        figures.push(f);
    };
    if runs("insert") {
        done(insert_baseline(&store, insert_rows).await);
    }
    let ahead: u32 = env_or("OUTDIAL_STORE_AHEAD_HOURS", 24);
    if runs("cli") {
        done(cli_import(&db.url, &store, "cli", rows, 10_000, ahead, &dir).await);
    }
    // The previous version's behaviour (every call a row at once), same invocation.
    if runs("cli-all") {
        done(cli_import(&db.url, &store, "cliall", rows, 10_000, 0, &dir).await);
    }
    if runs("batch") {
        done(batch_import(&db.url, &store, rows, workers).await);
    }
    if runs("scale") {
        for &b in &batches {
            let name = format!("scale{b}");
            done(cli_import(&db.url, &store, &name, scale_rows, b, ahead, &dir).await);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);

    let baseline = figures
        .iter()
        .find(|f| f.scenario == "insert")
        .map(Figure::rate);
    println!("| scenario | customers | seconds | customers/s | × insert | notes |");
    println!("|---|---|---|---|---|---|");
    for f in &figures {
        let ratio = baseline.map_or("–".to_owned(), |b| format!("{:.2}", f.rate() / b));
        println!(
            "| {} | {} | {:.1} | {:.0} | {ratio} | {} |",
            f.scenario,
            f.rows,
            f.seconds,
            f.rate(),
            f.note
        );
    }
    let goal = figures
        .iter()
        .filter(|f| {
            f.scenario.starts_with("cli batch=10000 ahead") || f.scenario.starts_with("batch")
        })
        .all(|f| f.rate() >= 10_000.0);
    println!(
        "goal ≥ 10,000 customers/s with schedules (cli, batch): {}",
        if goal { "met" } else { "not met" }
    );
    ExitCode::SUCCESS
}

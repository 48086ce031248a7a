//! HTTP API throughput benchmark (issue 3): `POST /customers` and
//! `POST /scheduled-calls/{customerId}` against the real release binary (`outdial serve`)
//! on loopback, Postgres on the same machine, with ratios to baselines run in the same
//! invocation.
//!
//! Run: `source ops/env.sh && cargo bench -p outdial-cli --bench api_load`. The bench makes
//! a scratch database (dropped at the end), starts `outdial serve --bind 127.0.0.1:0` on it
//! with a fixed demo key, and drives each scenario with a closed-loop load generator: N
//! keep-alive HTTP/1.1 connections, each with one request in flight, a warm-up, then a
//! measured phase. Scenarios, each at every concurrency:
//!
//! - `empty`: the baseline, an axum server with one empty `POST /` handler started by the
//!   bench the way `outdial serve` runs, sent the same customer body;
//! - `fallback`: the real binary answering an unknown route (404, no auth, no Postgres);
//! - `auth`, `insert`: `Store::authenticate` and `Store::insert_customer` called straight
//!   from the bench on a pool as large as the server's (Postgres without HTTP);
//! - `get`: `GET /customers/{id}` (authentication plus one indexed read);
//! - `create`: `POST /customers` with a unique id per request;
//! - `schedule`: `POST /scheduled-calls/{customerId}` `{"scheduleType":"collections"}` on
//!   customers made by `insert` and `create`, one schedule per customer while they last;
//!   skipped when the server does not have the route.
//!
//! Environment: `OUTDIAL_BENCH_SECS` (measured seconds, default 10),
//! `OUTDIAL_BENCH_WARMUP_SECS` (default 5), `OUTDIAL_BENCH_CONCURRENCY` (default `32,64`),
//! `OUTDIAL_BENCH_SCENARIOS` (a comma list of the names above; default all),
//! `OUTDIAL_BENCH_PG_POOL` (pool size of the `auth`/`insert` scenarios, default 10 like
//! `Store::connect`), `OUTDIAL_BENCH_PG_PING` (`false` turns off sqlx's
//! `test_before_acquire` on that pool), `OUTDIAL_BENCH_ALT_BIN` (another `outdial` binary,
//! e.g. a patched build, run on its own scratch database through the server scenarios
//! right after this build's, rows marked `(alt)`), `OUTDIAL_BENCH_BIN` (the binary to
//! load instead of this build's), `OUTDIAL_BENCH_PG_SET` (`name=value;…` set on the
//! scratch database before the server starts, e.g. `log_min_duration_statement=2`). Exits non-zero when any request failed.
//!
//! Load goes to 127.0.0.1 only, each phase is bounded in time and every request has a
//! timeout. `cargo test` neither builds nor runs this (bench targets are not tested).

#[path = "common/autoanalyze.rs"]
mod autoanalyze;
#[path = "api_load/cpu.rs"]
mod cpu;
#[path = "common/env.rs"]
mod env;
#[path = "api_load/http.rs"]
mod http;
#[path = "api_load/load.rs"]
mod load;
#[path = "api_load/servers.rs"]
mod servers;
#[path = "api_load/store.rs"]
mod store;
#[path = "../tests/support/mod.rs"]
mod support;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::env::env_or;
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, StatusCode};
use outdial_domain::{Clock, CustomerInput, SystemClock};
use outdial_store::Store;
use serde_json::Value;
use sqlx::postgres::PgPoolOptions;

use crate::http::{Http, MakeRequest};
use crate::load::{Caller, Outcome, Phases};

/// The demo company's key for the run (`odk_` + 64 hex digits); the database is scratch.
const API_KEY: &str = "odk_3c1f0b6e9a2d4c8b7e5f1a0d2c4b6e8f9a1b3c5d7e9f0a2b4c6d8e0f1a3b5c7d";
/// A valid `POST /customers` body; the bench varies its `id` and clears `doNotCall` so
/// that the customers can be scheduled.
const SEED: &str = include_str!("../../../tests/fixtures/seed-customer.json");
/// Stands for the customer id in the serialized body template.
const ID_HOLE: &str = "@@ID@@";
const SCENARIOS: [&str; 7] = [
    "empty", "fallback", "auth", "insert", "get", "create", "schedule",
];

/// What to run, from the environment.
struct Config {
    phases: Phases,
    concurrency: Vec<usize>,
    scenarios: Vec<String>,
    pool: u32,
    ping: bool,
    bin: String,
    alt_bin: Option<String>,
    /// `ALTER DATABASE … SET` pairs for the scratch database, from `OUTDIAL_BENCH_PG_SET`
    /// (`name=value;name=value`), e.g. `log_min_duration_statement=2` to find slow statements.
    pg_settings: Vec<(String, String)>,
}

impl Config {
    fn from_env() -> Config {
        let list = |name: &str, default: &str| -> Vec<String> {
            std::env::var(name)
                .unwrap_or_else(|_| default.to_owned())
                .split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect()
        };
        let scenarios = list("OUTDIAL_BENCH_SCENARIOS", &SCENARIOS.join(","));
        for s in &scenarios {
            assert!(
                SCENARIOS.contains(&s.as_str()),
                "unknown scenario {s:?}; known: {SCENARIOS:?}"
            );
        }
        Config {
            phases: Phases {
                warmup: Duration::from_secs(env_or("OUTDIAL_BENCH_WARMUP_SECS", 5)),
                measure: Duration::from_secs(env_or("OUTDIAL_BENCH_SECS", 10)),
            },
            concurrency: list("OUTDIAL_BENCH_CONCURRENCY", "32,64")
                .iter()
                .map(|c| c.parse().expect("OUTDIAL_BENCH_CONCURRENCY: numbers"))
                .collect(),
            scenarios,
            pool: env_or("OUTDIAL_BENCH_PG_POOL", 10),
            ping: env_or("OUTDIAL_BENCH_PG_PING", true),
            bin: std::env::var("OUTDIAL_BENCH_BIN")
                .unwrap_or_else(|_| env!("CARGO_BIN_EXE_outdial").to_owned()),
            alt_bin: std::env::var("OUTDIAL_BENCH_ALT_BIN").ok(),
            pg_settings: std::env::var("OUTDIAL_BENCH_PG_SET")
                .unwrap_or_default()
                .split(';')
                .filter(|s| !s.trim().is_empty())
                .map(|pair| {
                    let (name, value) = pair
                        .split_once('=')
                        .expect("OUTDIAL_BENCH_PG_SET: name=value pairs separated by ';'");
                    assert!(
                        name.trim()
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.'),
                        "OUTDIAL_BENCH_PG_SET: {name:?} is not a setting name"
                    );
                    (name.trim().to_owned(), value.trim().to_owned())
                })
                .collect(),
        }
    }

    fn runs(&self, scenario: &str) -> bool {
        self.scenarios.iter().any(|s| s == scenario)
    }
}

/// One line of the result table.
struct Row {
    scenario: &'static str,
    /// Which server: `""` (this build's binary) or `"alt"`.
    server: &'static str,
    concurrency: usize,
    outcome: Outcome,
    cpu: cpu::Usage,
}

impl Row {
    fn name(&self) -> String {
        if self.server.is_empty() {
            self.scenario.to_owned()
        } else {
            format!("{} ({})", self.scenario, self.server)
        }
    }
}

/// The `POST /customers` body with the id left as a hole: `head + id + tail`.
struct Body {
    head: String,
    tail: String,
}

impl Body {
    fn template() -> Body {
        let mut seed: Value = serde_json::from_str(SEED).expect("the seed fixture is JSON");
        seed["id"] = Value::from(ID_HOLE);
        seed["doNotCall"] = Value::from(false);
        let text = seed.to_string();
        let (head, tail) = text.split_once(ID_HOLE).expect("the id hole");
        Body {
            head: head.to_owned(),
            tail: tail.to_owned(),
        }
    }

    fn with_id(&self, id: &str) -> Bytes {
        Bytes::from(format!("{}{id}{}", self.head, self.tail))
    }
}

fn request(method: Method, addr: SocketAddr, path: &str, body: Bytes) -> Request<Full<Bytes>> {
    Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string())
        .header("x-api-key", API_KEY)
        .header("content-type", "application/json")
        .body(Full::new(body))
        .expect("a valid request")
}

/// Customers created so far, as id prefixes and how many ids each issued (`<prefix>-<n>`).
#[derive(Default)]
struct Created(Vec<(String, Arc<AtomicU64>)>);

impl Created {
    fn counter(&mut self, prefix: &str) -> Arc<AtomicU64> {
        let next = Arc::new(AtomicU64::new(0));
        self.0.push((prefix.to_owned(), next.clone()));
        next
    }

    fn ids(&self) -> Vec<String> {
        self.0
            .iter()
            .flat_map(|(prefix, next)| {
                (0..next.load(Ordering::Relaxed)).map(move |n| format!("{prefix}-{n}"))
            })
            .collect()
    }
}

/// Runs one scenario at one concurrency and prints its line as soon as it ends.
async fn measure<C: Caller>(
    scenario: &'static str,
    server: &'static str,
    callers: Vec<C>,
    phases: Phases,
    server_pid: u32,
) -> Row {
    let concurrency = callers.len();
    let window = phases.window();
    let cpu = async {
        tokio::time::sleep_until(window.measure_from.into()).await;
        let before = cpu::snapshot(server_pid);
        tokio::time::sleep_until(window.until.into()).await;
        cpu::usage(before, cpu::snapshot(server_pid))
    };
    let (outcome, cpu) = tokio::join!(load::run(callers, window), cpu);
    let row = Row {
        scenario,
        server,
        concurrency,
        outcome,
        cpu,
    };
    eprintln!(
        "done: {} c={concurrency}: {:.0} req/s, p99 {:.2} ms, {} errors",
        row.name(),
        row.outcome.rate,
        ms(row.outcome.latency.value_at_quantile(0.99)),
        row.outcome.errors
    );
    for e in &row.outcome.error_samples {
        eprintln!("  error: {e}");
    }
    row
}

fn http_callers(n: usize, addr: SocketAddr, make: &MakeRequest, expect: StatusCode) -> Vec<Http> {
    (0..n)
        .map(|_| Http::new(addr, make.clone(), expect))
        .collect()
}

/// A running `outdial serve` under load: the binary built with this bench, or the one
/// `OUTDIAL_BENCH_ALT_BIN` names (a patched build to compare, each on its own database).
struct Target {
    /// `""` for the bench's own binary, `"alt"` for the other one.
    label: &'static str,
    server: servers::Outdial,
    /// Its database.
    database_url: String,
    /// Customers made on this server so far (see [`Created`]).
    created: Created,
}

/// Every scenario the configuration asks for, in table order.
async fn run_all(
    config: &Config,
    database_url: &str,
    targets: &mut [Target],
    empty: &servers::Empty,
) -> Vec<Row> {
    let body = Arc::new(Body::template());
    let phases = config.phases;
    let mut rows = Vec::new();
    let autovacuum = autoanalyze::autovacuum(database_url).await;
    println!("postgres autovacuum: {autovacuum}");
    // Without autovacuum, stand in for its autoanalyze on every scratch database.
    let stand_in = autoanalyze::stand_in(
        &autovacuum,
        targets.iter().map(|t| t.database_url.clone()).collect(),
    );

    for target in targets.iter() {
        // One customer to read, made through the API (also a start-up check).
        let addr = target.server.addr;
        let (status, answer) = http::once(
            addr,
            request(Method::POST, addr, "/customers", body.with_id("probe")),
        )
        .await
        .expect("POST /customers on the fresh server");
        assert_eq!(
            status,
            StatusCode::CREATED,
            "{}",
            http::describe(status, &answer)
        );
    }

    for &c in &config.concurrency {
        if config.runs("empty") {
            let (target, body) = (empty.addr, body.with_id("probe"));
            let make: MakeRequest =
                Arc::new(move || request(Method::POST, target, "/", body.clone()));
            let callers = http_callers(c, target, &make, StatusCode::OK);
            rows.push(measure("empty", "", callers, phases, 0).await);
        }
        for target in targets.iter() {
            if config.runs("fallback") {
                let (addr, body) = (target.server.addr, body.with_id("probe"));
                let make: MakeRequest =
                    Arc::new(move || request(Method::POST, addr, "/no-such-route", body.clone()));
                let callers = http_callers(c, addr, &make, StatusCode::NOT_FOUND);
                let pid = target.server.pid();
                rows.push(measure("fallback", target.label, callers, phases, pid).await);
            }
        }
    }

    if config.runs("auth") || config.runs("insert") {
        // Straight to the database of the first target, while its server idles.
        let target = &mut targets[0];
        store_scenarios(config, database_url, target, &body, &mut rows).await;
    }

    for &c in &config.concurrency {
        for target in targets.iter_mut() {
            let (addr, pid) = (target.server.addr, target.server.pid());
            if config.runs("get") {
                let make: MakeRequest =
                    Arc::new(move || request(Method::GET, addr, "/customers/probe", Bytes::new()));
                let callers = http_callers(c, addr, &make, StatusCode::OK);
                rows.push(measure("get", target.label, callers, phases, pid).await);
            }
            if config.runs("create") {
                let prefix = format!("h{c}");
                let next = target.created.counter(&prefix);
                let body = body.clone();
                let make: MakeRequest = Arc::new(move || {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    request(
                        Method::POST,
                        addr,
                        "/customers",
                        body.with_id(&format!("{prefix}-{n}")),
                    )
                });
                let callers = http_callers(c, addr, &make, StatusCode::CREATED);
                rows.push(measure("create", target.label, callers, phases, pid).await);
                analyze(&target.database_url).await;
            }
        }
    }

    if config.runs("schedule") {
        for target in targets.iter() {
            schedule(config, target, &mut rows).await;
        }
    }
    if let Some(task) = stand_in {
        task.abort();
    }
    rows
}

/// `ANALYZE` after a scenario that added rows, standing in for autovacuum (off on this
/// machine's cluster, see `autovacuum` in the output). Without fresh statistics, a
/// statement the server prepared while `customers` was empty keeps a generic plan that
/// walks every row of the company (see docs/benchmarks/api_load.md, "A trap found on the way").
async fn analyze(database_url: &str) {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(database_url)
        .await
        .expect("connect to ANALYZE");
    sqlx::query("ANALYZE")
        .execute(&mut conn)
        .await
        .expect("ANALYZE");
    let _ = conn.close().await;
}

/// `Store::authenticate` and `Store::insert_customer` from the bench's own pool.
async fn store_scenarios(
    config: &Config,
    database_url: &str,
    target: &mut Target,
    body: &Body,
    rows: &mut Vec<Row>,
) {
    let pool = PgPoolOptions::new()
        .max_connections(config.pool)
        .test_before_acquire(config.ping)
        .connect(database_url)
        .await
        .expect("connect the bench's own pool");
    let store = Store::new(pool);
    let company = Arc::new(
        store
            .authenticate(API_KEY)
            .await
            .expect("authenticate")
            .expect("the demo key is installed"),
    );
    let input: CustomerInput =
        serde_json::from_slice(&body.with_id("template")).expect("seed as CustomerInput");
    let task_types = company.catalog().expect("demo catalog").task_types();
    let template = Arc::new(
        input
            .validate(&task_types, SystemClock.now().date_naive())
            .expect("the seed customer is valid"),
    );
    let pid = target.server.pid();
    for &c in &config.concurrency {
        if config.runs("auth") {
            let key: Arc<str> = Arc::from(API_KEY);
            let callers = (0..c)
                .map(|_| store::Authenticate {
                    store: store.clone(),
                    key: key.clone(),
                })
                .collect();
            rows.push(measure("auth", "", callers, config.phases, pid).await);
        }
        if config.runs("insert") {
            let prefix = format!("s{c}");
            let next = target.created.counter(&prefix);
            let prefix: Arc<str> = Arc::from(prefix);
            let callers = (0..c)
                .map(|_| store::Insert {
                    store: store.clone(),
                    company: company.clone(),
                    template: template.clone(),
                    prefix: prefix.clone(),
                    next: next.clone(),
                })
                .collect();
            rows.push(measure("insert", "", callers, config.phases, pid).await);
            analyze(&target.database_url).await;
        }
    }
    store.pool().close().await;
}

/// The `POST /scheduled-calls/{customerId}` scenario, if the server has the route.
async fn schedule(config: &Config, target: &Target, rows: &mut Vec<Row>) {
    let (addr, pid) = (target.server.addr, target.server.pid());
    let schedule_body = Bytes::from_static(br#"{"scheduleType":"collections"}"#);
    let probe = request(
        Method::POST,
        addr,
        "/scheduled-calls/probe",
        schedule_body.clone(),
    );
    let (status, answer) = http::once(addr, probe)
        .await
        .expect("probe POST /scheduled-calls/probe");
    let missing_route = status == StatusCode::METHOD_NOT_ALLOWED
        || (status == StatusCode::NOT_FOUND && answer.windows(8).any(|w| w == b"no such "));
    if missing_route {
        println!("schedule: skipped: route not available ({status})");
        return;
    }
    assert!(
        status.is_success(),
        "POST /scheduled-calls/probe answered {}",
        http::describe(status, &answer)
    );
    let mut ids = target.created.ids();
    if ids.is_empty() {
        // Without `insert` or `create` there is only the probe customer to schedule.
        ids.push("probe".to_owned());
    }
    let ids: Arc<[String]> = ids.into();
    let next = Arc::new(AtomicU64::new(0));
    for &c in &config.concurrency {
        let (ids, next, body) = (ids.clone(), next.clone(), schedule_body.clone());
        let make: MakeRequest = Arc::new(move || {
            let n = next.fetch_add(1, Ordering::Relaxed);
            let id = &ids[usize::try_from(n).unwrap_or(0) % ids.len()];
            request(
                Method::POST,
                addr,
                &format!("/scheduled-calls/{id}"),
                body.clone(),
            )
        });
        let callers = http_callers(c, addr, &make, status);
        rows.push(measure("schedule", target.label, callers, config.phases, pid).await);
    }
    let used = next.load(Ordering::Relaxed);
    if used > ids.len() as u64 {
        println!(
            "schedule: {used} requests over {} customers: some customers were rescheduled",
            ids.len()
        );
    }
}

fn ms(micros: u64) -> f64 {
    micros as f64 / 1000.0
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".to_owned())
}

fn print_table(rows: &[Row]) {
    println!(
        "| scenario | conc | req/s | × empty | p50 ms | p99 ms | max ms | errors | \
         CPU busy (of 2) | server µs/req | postgres µs/req | bench µs/req |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for row in rows {
        let base = rows
            .iter()
            .find(|r| r.scenario == "empty" && r.concurrency == row.concurrency)
            .map(|r| r.outcome.rate);
        let ratio = base.map_or_else(
            || "–".to_owned(),
            |b| format!("{:.3}", row.outcome.rate / b),
        );
        let per_req = |cores: f64| {
            if row.outcome.rate > 0.0 {
                format!("{:.0}", cores * 1e6 / row.outcome.rate)
            } else {
                "–".to_owned()
            }
        };
        let h = &row.outcome.latency;
        println!(
            "| {} | {} | {:.0} | {} | {:.2} | {:.2} | {:.2} | {} | {:.2} | {} | {} | {} |",
            row.name(),
            row.concurrency,
            row.outcome.rate,
            ratio,
            ms(h.value_at_quantile(0.5)),
            ms(h.value_at_quantile(0.99)),
            ms(h.max()),
            row.outcome.errors,
            row.cpu.machine,
            if row.scenario == "empty" || row.scenario == "auth" || row.scenario == "insert" {
                "–".to_owned()
            } else {
                per_req(row.cpu.server)
            },
            per_req(row.cpu.postgres),
            per_req(row.cpu.bench),
        );
    }
    for row in rows {
        let (goal, p99_goal) = match row.scenario {
            "create" => (2000.0, Some(50.0)),
            "schedule" => (1000.0, None),
            _ => continue,
        };
        let p99 = ms(row.outcome.latency.value_at_quantile(0.99));
        let met = row.outcome.rate >= goal && p99_goal.is_none_or(|g| p99 <= g);
        let insert = rows
            .iter()
            .find(|r| r.scenario == "insert" && r.concurrency == row.concurrency)
            .map(|r| {
                format!(
                    ", {:.2} of the store's insert rate",
                    row.outcome.rate / r.outcome.rate
                )
            })
            .unwrap_or_default();
        println!(
            "goal {} c={}: ≥ {goal:.0}/s{}: {} ({:.0}/s, p99 {p99:.2} ms{insert})",
            row.name(),
            row.concurrency,
            p99_goal.map_or_else(String::new, |g| format!(" with p99 ≤ {g:.0} ms")),
            if met { "met" } else { "MISSED" },
            row.outcome.rate,
        );
    }
}

fn main() -> ExitCode {
    let config = Config::from_env();
    println!(
        "api_load: warm-up {:?}, measured {:?}, concurrency {:?}, scenarios {:?}",
        config.phases.warmup, config.phases.measure, config.concurrency, config.scenarios
    );
    println!("load average before: {}", load_average());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("the load generator's runtime");
    let rows = {
        let db = support::ScratchDb::new("bench");
        for (name, value) in &config.pg_settings {
            db.set(name, value);
        }
        let alt_db = config
            .alt_bin
            .as_ref()
            .map(|_| support::ScratchDb::new("bench_alt"));
        let mut ours = vec![db.name().to_owned()];
        ours.extend(alt_db.as_ref().map(|d| d.name().to_owned()));
        cpu::count_databases(ours);
        let mut targets = vec![Target {
            label: "",
            server: servers::Outdial::start(&config.bin, &db.url, API_KEY),
            database_url: db.url.clone(),
            created: Created::default(),
        }];
        if let (Some(bin), Some(alt_db)) = (&config.alt_bin, &alt_db) {
            targets.push(Target {
                label: "alt",
                server: servers::Outdial::start(bin, &alt_db.url, API_KEY),
                database_url: alt_db.url.clone(),
                created: Created::default(),
            });
        }
        for t in &targets {
            println!(
                "outdial serve{}: pid {} on {}",
                if t.label.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", t.label)
                },
                t.server.pid(),
                t.server.addr
            );
        }
        let empty = servers::Empty::start();
        runtime.block_on(run_all(&config, &db.url, &mut targets, &empty))
    };
    println!("load average after: {}", load_average());
    print_table(&rows);
    let errors: u64 = rows.iter().map(|r| r.outcome.errors).sum();
    if errors > 0 {
        eprintln!("api_load: {errors} requests failed");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

//! A fleet of `outdial work` processes and what they dial, for the worker's operational
//! tests (`outage.rs`, `rate.rs`): customers with one call each due now at a lawful place,
//! the simulator served over HTTP by the test with a log of every place request (when, and
//! under which idempotency key), and worker processes whose stderr is kept for failure
//! messages.
//!
//! Each test binary uses a subset of these helpers.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::middleware::{Next, from_fn};
use outdial_dialer::{SimConfig, SimStats, Simulator, Timing};
use outdial_domain::policy::{Decision, Ruleset};
use outdial_domain::schedule::{Cadence, Plan, PlannedCall};
use outdial_domain::task::{Purpose, ScheduleType};
use outdial_domain::{CallId, Clock, CustomerInput, CustomerRef, ShiftedClock};
use outdial_queue::{NewJob, Partition, Queue, QueueConfig};
use outdial_store::{CompanyId, NewSchedule, Store};

/// The bearer token of the test's provider.
pub const TOKEN: &str = "fleet-test-token";

pub fn redis_url() -> String {
    std::env::var("OUTDIAL_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A queue namespace of this test's own on the shared Redis (the limits live under it too:
/// `<namespace>:{limits}`), deleted on drop.
pub struct Namespace {
    pub name: String,
    pub queue: Queue,
}

impl Namespace {
    pub fn new() -> Namespace {
        let name = format!("t:{}", uuid::Uuid::new_v4().simple());
        let queue = Queue::open(&redis_url(), &name, QueueConfig::default()).unwrap_or_else(|e| {
            panic!(
                "cannot open a queue on {} ({e}): start Redis with ops/stack.sh",
                redis_url()
            )
        });
        Namespace { name, queue }
    }

    /// Puts `calls` of `company` in the queue, due at `due` (what the API does when it
    /// schedules; the reconciler would do it too, a page per pass).
    pub async fn enqueue(
        &self,
        company: CompanyId,
        calls: &[(uuid::Uuid, String)],
        due: chrono::DateTime<chrono::Utc>,
    ) {
        let partition = Partition::new(&company.to_string()).expect("partition");
        let jobs: Vec<NewJob> = calls
            .iter()
            .map(|(id, customer)| NewJob {
                call: CallId::from_uuid(*id),
                partition: partition.clone(),
                customer: customer.parse().expect("customer ref"),
                due,
            })
            .collect();
        for chunk in jobs.chunks(1000) {
            self.queue.enqueue_many(chunk).await.expect("enqueue");
        }
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Best effort, on a runtime and a connection of its own (the test's runtime may be
        // shutting down, and a connection belongs to the runtime that made it).
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(rt) = rt {
                rt.block_on(async {
                    if let Ok(queue) = Queue::open(&redis_url(), &name, QueueConfig::default()) {
                        let _ =
                            tokio::time::timeout(Duration::from_secs(10), queue.delete_namespace())
                                .await;
                    }
                });
            }
        })
        .join();
    }
}

/// The US locations the tests call (zone, state, ZIP, number prefix).
const PLACES: [(&str, &str, &str, &str); 5] = [
    ("Pacific/Guam", "GU", "96910", "+16715550"),
    ("America/Puerto_Rico", "PR", "00901", "+17875550"),
    ("Pacific/Honolulu", "HI", "96813", "+18085550"),
    ("America/New_York", "NY", "10004", "+12125550"),
    ("America/Los_Angeles", "CA", "94102", "+14155550"),
];

/// The first test place lawful to call at every 5 minutes of `[now, now + 30 min]`.
fn lawful_at(rules: &Ruleset, now: chrono::DateTime<chrono::Utc>) -> Option<serde_json::Value> {
    PLACES.iter().find_map(|(zone, state, zip, phone)| {
        let body = serde_json::json!({
            "timezone": zone, "state": state, "zipCode": zip, "phoneNumber": format!("{phone}100"),
        });
        let c = customer_at(&body, 0, now);
        let policy = rules.prepare(&c.candidates(), Purpose::Collection);
        let lawful = (0..=30).step_by(5).all(|m| {
            matches!(
                policy.decide(now + chrono::Duration::minutes(m), &c.subject(), &[]),
                Decision::Allow { .. }
            )
        });
        lawful.then_some(body)
    })
}

/// The clock every process of a test runs on: the real one, shifted by whole hours when no
/// test place is lawful to call now (US calling hours leave gaps: from about 10:45 to 12:00
/// UTC no US zone is inside its window). Worker processes get the same shift through
/// `OUTDIAL_CLOCK_OFFSET_SECS` ([`offset_secs`]).
pub fn clock() -> ShiftedClock {
    static OFFSET: OnceLock<i64> = OnceLock::new();
    let hours = *OFFSET.get_or_init(|| {
        let rules = Ruleset::bundled().expect("the bundled ruleset");
        crate::support::lawful_shift(|at| lawful_at(&rules, at).is_some())
            .expect("some test place is lawful within two days")
            .num_hours()
    });
    ShiftedClock {
        offset: chrono::Duration::hours(hours),
    }
}

/// [`clock`]'s shift in seconds, for `OUTDIAL_CLOCK_OFFSET_SECS`.
pub fn offset_secs() -> String {
    clock().offset.num_seconds().to_string()
}

/// A US location (zone, state, ZIP, number) where calling is lawful for the next half
/// hour by [`clock`].
pub fn lawful_location(rules: &Ruleset) -> serde_json::Value {
    let now = clock().now();
    lawful_at(rules, now)
        .unwrap_or_else(|| panic!("no test place is lawful to call at the fleet's {now}"))
}

/// Customer `i` at `place`.
pub fn customer(place: &serde_json::Value, i: usize) -> outdial_domain::Customer {
    customer_at(place, i, clock().now())
}

fn customer_at(
    place: &serde_json::Value,
    i: usize,
    now: chrono::DateTime<chrono::Utc>,
) -> outdial_domain::Customer {
    let phone = place["phoneNumber"].as_str().expect("phone");
    let input: CustomerInput = serde_json::from_value(serde_json::json!({
        "id": format!("c{i:05}"),
        "taskType": "collections",
        "firstName": "Test",
        "lastName": "Customer",
        "timezone": place["timezone"],
        "phoneNumber": format!("{}{:03}", &phone[..phone.len() - 3], i % 1000),
        "streetAddress1": "1 Main St",
        "city": "Town",
        "state": place["state"],
        "zipCode": place["zipCode"],
        "loanId": format!("loan-{i}"),
    }))
    .expect("input");
    input
        .validate(
            &outdial_domain::schedule::Catalog::builtin().task_types(),
            now.date_naive(),
        )
        .expect("valid customer")
}

/// A company named `name` allowed `per_second` calls per second and `live` live calls.
pub async fn company(store: &Store, name: &str, per_second: u32, live: u32) -> CompanyId {
    let (company, _) = store
        .create_company(name, clock().now())
        .await
        .expect("company");
    // The operator's knob: the company row's limits (no command sets them yet).
    sqlx::query("UPDATE companies SET calls_per_second = $2, max_live_calls = $3 WHERE id = $1")
        .bind(company.id.as_uuid())
        .bind(i32::try_from(per_second).expect("rate"))
        .bind(i32::try_from(live).expect("live calls"))
        .execute(store.pool())
        .await
        .expect("company limits");
    company.id
}

/// Customers `first..first + n` of `company` at `place`, each with one collections call due
/// now; returns each call's id and customer id. Inserted over several connections.
pub async fn seed(
    store: &Store,
    company: CompanyId,
    place: &serde_json::Value,
    first: usize,
    n: usize,
) -> Vec<(uuid::Uuid, String)> {
    let lanes = 8;
    let mut tasks = Vec::new();
    for lane in 0..lanes {
        let store = store.clone();
        let place = place.clone();
        tasks.push(tokio::spawn(async move {
            let def = Cadence::default_def(ScheduleType::Collections).expect("cadence");
            let mut out = Vec::new();
            for i in (first..first + n).skip(lane).step_by(lanes) {
                let c = customer(&place, i);
                let at = clock().now();
                store
                    .insert_customer(company, &c, at)
                    .await
                    .expect("customer");
                let plan = Plan {
                    calls: vec![PlannedCall {
                        at,
                        local: at.naive_utc(),
                        slot: at,
                        moved_by: vec![],
                    }],
                    dropped: vec![],
                };
                let id: CustomerRef = c.id.clone();
                let created = store
                    .create_schedule(
                        company,
                        &NewSchedule {
                            customer_id: &id,
                            schedule_type: ScheduleType::Collections,
                            task_type: "collections",
                            loan_id: c.loan_id.as_deref(),
                            cadence: &def,
                            ruleset: "test",
                            zone: c.timezone,
                            plan: &plan,
                        },
                        at,
                    )
                    .await
                    .expect("schedule");
                out.push((*created.calls[0].id.as_uuid(), id.as_str().to_owned()));
            }
            out
        }));
    }
    let mut calls = Vec::with_capacity(n);
    for t in tasks {
        calls.extend(t.await.expect("seed task"));
    }
    calls
}

/// `n` customers of `company` at `place` with one collections call each, due now: the
/// first made through the store (as the API would), the others cloned from it in SQL,
/// which takes a second where the store's path takes a minute on a busy machine. Returns
/// each call's id and customer id.
pub async fn seed_many(
    store: &Store,
    company: CompanyId,
    place: &serde_json::Value,
    n: usize,
) -> Vec<(uuid::Uuid, String)> {
    seed(store, company, place, 0, 1).await;
    let new_id = "'c' || lpad(g::text, 5, '0')";
    let clone_of = |column: &str| format!("md5(t.{column}::text || g)::uuid");
    // (table, its customer column, the columns given new values, and those values)
    type Cloned<'a> = (&'a str, &'a str, Vec<(&'a str, String)>);
    let tables: [Cloned; 4] = [
        ("customers", "id", vec![("id", new_id.to_owned())]),
        (
            "loans",
            "customer_id",
            vec![("customer_id", new_id.to_owned())],
        ),
        (
            "schedules",
            "customer_id",
            vec![("id", clone_of("id")), ("customer_id", new_id.to_owned())],
        ),
        (
            "scheduled_calls",
            "customer_id",
            vec![
                ("id", clone_of("id")),
                ("customer_id", new_id.to_owned()),
                ("schedule_id", clone_of("schedule_id")),
            ],
        ),
    ];
    let mut tx = store.pool().begin().await.expect("begin");
    for (table, customer_column, overrides) in tables {
        let columns: Vec<String> = sqlx::query_scalar(
            "SELECT column_name::text FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name = $1
               AND is_generated = 'NEVER' AND is_identity = 'NO'
             ORDER BY ordinal_position",
        )
        .bind(table)
        .fetch_all(&mut *tx)
        .await
        .expect("columns");
        let values: Vec<String> = columns
            .iter()
            .map(|c| {
                overrides
                    .iter()
                    .find(|(o, _)| o == c)
                    .map_or_else(|| format!("t.{c}"), |(_, e)| e.clone())
            })
            .collect();
        let sql = format!(
            "INSERT INTO {table} ({}) SELECT {} FROM {table} t, generate_series(1, $2) g
             WHERE t.company_id = $1 AND t.{customer_column} = 'c00000'",
            columns.join(", "),
            values.join(", ")
        );
        sqlx::query(&sql)
            .bind(company.as_uuid())
            .bind(i32::try_from(n - 1).expect("count"))
            .execute(&mut *tx)
            .await
            .unwrap_or_else(|e| panic!("cloning {table}: {e}"));
    }
    tx.commit().await.expect("commit");
    let calls: Vec<(uuid::Uuid, String)> = sqlx::query_as(
        "SELECT id, customer_id FROM scheduled_calls WHERE company_id = $1 ORDER BY customer_id",
    )
    .bind(company.as_uuid())
    .fetch_all(store.pool())
    .await
    .expect("seeded calls");
    assert_eq!(calls.len(), n, "seeded calls");
    calls
}

/// One place request the provider received.
#[derive(Debug, Clone)]
pub struct Placed {
    pub at: Instant,
    /// The `Idempotency-Key` header: `"{call}:{attempt}"`.
    pub key: String,
}

/// The simulator served over HTTP on a loopback port, logging every place request.
pub struct Provider {
    pub url: String,
    pub simulator: Simulator,
    log: Arc<Mutex<Vec<Placed>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Provider {
    /// Starts it on the current runtime.
    pub async fn start(timing: Timing, seed: u64) -> Provider {
        let clock: Arc<dyn Clock> = Arc::new(clock());
        let simulator = Simulator::new(
            SimConfig {
                timing,
                ..SimConfig::new(seed)
            },
            clock,
        );
        let log: Arc<Mutex<Vec<Placed>>> = Arc::default();
        let recorded = Arc::clone(&log);
        let app = outdial_dialer::server::router(simulator.clone(), TOKEN).layer(from_fn(
            move |request: Request, next: Next| {
                let log = Arc::clone(&recorded);
                async move {
                    if request.method() == axum::http::Method::POST
                        && request.uri().path() == "/calls"
                    {
                        let key = request
                            .headers()
                            .get("idempotency-key")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_owned();
                        log.lock().expect("log").push(Placed {
                            at: Instant::now(),
                            key,
                        });
                    }
                    next.run(request).await
                }
            },
        ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the provider");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
        });
        Provider {
            url,
            simulator,
            log,
            stop: Some(stop),
        }
    }

    /// Every place request so far.
    pub fn places(&self) -> Vec<Placed> {
        self.log.lock().expect("log").clone()
    }

    /// The simulator's counts per key.
    pub fn stats(&self) -> SimStats {
        self.simulator.stats()
    }

    /// Calls created at the provider per scheduled call (the key's call part).
    pub fn created_per_call(&self) -> HashMap<uuid::Uuid, u32> {
        let mut per_call = HashMap::new();
        for (key, s) in &self.stats().keys {
            if s.created {
                let (call, _) = key.attempt().expect("a call:attempt key");
                *per_call.entry(*call.as_uuid()).or_default() += 1;
            }
        }
        per_call
    }

    /// Keys that received more than one place request (a re-dial attempt the provider's
    /// idempotency had to absorb).
    pub fn keys_placed_twice(&self) -> Vec<(String, u32)> {
        self.stats()
            .keys
            .iter()
            .filter(|(_, s)| s.place_requests > 1)
            .map(|(k, s)| (k.as_str().to_owned(), s.place_requests))
            .collect()
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// An `outdial work` process; its stderr goes to a file shown when a test fails.
pub struct Worker {
    child: Child,
    log: PathBuf,
}

impl Worker {
    /// Starts `outdial work` against `db` with the namespace and provider, plus `env`.
    pub fn start(db: &str, namespace: &str, provider: &str, env: &[(&str, &str)]) -> Worker {
        let log = std::env::temp_dir().join(format!(
            "outdial-fleet-{}.log",
            uuid::Uuid::new_v4().simple()
        ));
        let stderr = std::fs::File::create(&log).expect("worker log file");
        let mut command = Command::new(env!("CARGO_BIN_EXE_outdial"));
        command
            .arg("work")
            .env("OUTDIAL_DATABASE_URL", db)
            .env("OUTDIAL_REDIS_URL", redis_url())
            .env("OUTDIAL_NAMESPACE", namespace)
            .env("OUTDIAL_PROVIDER_URL", provider)
            .env("OUTDIAL_PROVIDER_TOKEN", TOKEN)
            .env("OUTDIAL_CLOCK_OFFSET_SECS", offset_secs())
            .env("OUTDIAL_DB_POOL", "8")
            .env("OUTDIAL_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        for (k, v) in env {
            command.env(k, v);
        }
        let child = command.spawn().expect("start outdial work");
        Worker { child, log }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// CPU time it has used so far (user + system, from `/proc`; 0 if unreadable).
    pub fn cpu_seconds(&self) -> f64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        // Fields after the command name (which may hold spaces): utime and stime are the
        // 12th and 13th, in clock ticks (100 per second on Linux).
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        (ticks(11) + ticks(12)) / 100.0
    }

    /// The exit status, if it has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("wait on the worker")
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -TERM {pid} failed");
    }

    /// Waits up to `limit` for the process to exit.
    pub fn wait_for_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.exited() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The last lines of its stderr.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// How many lines of its stderr contain `needle`.
    pub fn log_count(&self, needle: &str) -> usize {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(needle))
            .count()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// The load average over the last minute (`/proc/loadavg`), for failure messages on a
/// shared machine.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

/// Status counts of `calls` (by id).
pub async fn statuses(
    pool: &sqlx::PgPool,
    calls: &[uuid::Uuid],
) -> Result<HashMap<String, i64>, sqlx::Error> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT status, count(*) FROM scheduled_calls WHERE id = ANY($1) GROUP BY status",
    )
    .bind(calls)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().collect())
}

/// Calls among `calls` that are neither settled nor waiting with a due time in the future:
/// due and not yet taken, or held by a worker.
pub async fn open_calls(pool: &sqlx::PgPool, calls: &[uuid::Uuid]) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT count(*) FROM scheduled_calls
         WHERE id = ANY($1) AND status IN ('scheduled', 'dialing', 'in_progress')",
    )
    .bind(calls)
    .fetch_one(pool)
    .await
}

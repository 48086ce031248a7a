//! The worker through operational events, with real `outdial work` processes, real Redis
//! (a namespace of each test's own) and the simulator served over HTTP by the test:
//!
//! - a Postgres restart mid-run (a Postgres cluster of the test's own, on a free port,
//!   stopped and started again while hundreds of calls fire): the workers stay up, resume
//!   once Postgres is back, and every call ends settled, dialed exactly once;
//! - SIGTERM with calls in flight: the worker stops claiming, exits 0 within its grace
//!   period, and hands back what it could not finish; a second worker then finishes every
//!   call, none dialed twice.

mod fleet;
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use outdial_dialer::Timing;
use outdial_domain::policy::Ruleset;
use outdial_store::Store;

use fleet::{Namespace, Provider, Worker, lawful_location, open_calls, statuses};
use support::ScratchDb;

/// The statuses a call ends in.
const SETTLED: [&str; 8] = [
    "completed",
    "no_answer",
    "busy",
    "voicemail",
    "failed",
    "cancelled",
    "blocked",
    "expired",
];

/// A PostgreSQL cluster of this test's own (initdb into a temporary directory, a free
/// loopback port), so it can be stopped and started without touching the machine's server.
struct OwnPostgres {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    url: String,
}

/// The directory of `initdb` and `pg_ctl`: `pg_config --bindir`, else the newest
/// `/usr/lib/postgresql/*/bin`.
fn pg_bindir() -> PathBuf {
    let from_config = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
        .filter(|d| d.join("initdb").exists() && d.join("pg_ctl").exists());
    if let Some(dir) = from_config {
        return dir;
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|d| d.join("initdb").exists() && d.join("pg_ctl").exists())
        .collect();
    found.sort();
    found.pop().unwrap_or_else(|| {
        panic!(
            "initdb and pg_ctl not found (pg_config --bindir, /usr/lib/postgresql/*/bin): \
             this test runs a PostgreSQL cluster of its own; install the server with \
             ops/stack.sh (apt-get install postgresql)"
        )
    })
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Runs a PostgreSQL program (as the `postgres` user when the test runs as root: initdb
/// and pg_ctl refuse root).
fn pg(program: &Path, args: &[&str]) -> std::process::Output {
    let mut command = if running_as_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    };
    let out = command
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
    assert!(
        out.status.success(),
        "{} {args:?} failed: {}{}",
        program.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

impl OwnPostgres {
    fn start() -> OwnPostgres {
        let bin = pg_bindir();
        let dir =
            std::env::temp_dir().join(format!("outdial-pg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("temporary directory");
        if running_as_root() {
            let status = Command::new("chown")
                .args(["postgres:", &dir.to_string_lossy()])
                .status()
                .expect("chown runs");
            assert!(
                status.success(),
                "cannot give {} to postgres",
                dir.display()
            );
        }
        let data = dir.join("data");
        pg(
            &bin.join("initdb"),
            &[
                "-D",
                &data.to_string_lossy(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
        let own = OwnPostgres {
            bin,
            dir,
            port,
            url,
        };
        own.up();
        own
    }

    fn ctl(&self, args: &[&str]) {
        let data = self.dir.join("data");
        let mut all = vec!["-D", data.to_str().expect("utf-8 path")];
        all.extend_from_slice(args);
        pg(&self.bin.join("pg_ctl"), &all);
    }

    /// Starts the server and waits until it accepts connections.
    fn up(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200 \
             -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("server.log");
        self.ctl(&[
            "start",
            "-w",
            "-t",
            "60",
            "-l",
            log.to_str().expect("utf-8 path"),
            "-o",
            &options,
        ]);
    }

    /// Stops the server, closing every connection (`-m fast`).
    fn down(&self) {
        self.ctl(&["stop", "-m", "fast", "-w", "-t", "60"]);
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let _ = Command::new(if running_as_root() { "runuser" } else { "true" })
            .args(if running_as_root() {
                vec!["-u", "postgres", "--"]
            } else {
                vec![]
            })
            .arg(self.bin.join("pg_ctl"))
            .args(["-D", data.to_str().unwrap_or(""), "stop", "-m", "immediate"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Waits (polling every 200 ms) until `done` answers true, up to `limit`; returns whether
/// it did.
async fn eventually<F, Fut>(limit: Duration, mut done: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    loop {
        if done().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn logs(workers: &[Worker]) -> String {
    workers
        .iter()
        .enumerate()
        .map(|(i, w)| format!("--- worker {i} (pid {}) stderr:\n{}", w.pid(), w.log_tail()))
        .collect::<Vec<_>>()
        .join("\n")
}

const RESTART_CALLS: usize = 600;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_restart_mid_run_loses_no_call_and_dials_none_twice() {
    let started = Instant::now();
    let pg = tokio::task::block_in_place(OwnPostgres::start);
    let store = Store::connect(&pg.url)
        .await
        .expect("connect to the test's own Postgres");
    store.migrate().await.expect("migrate");
    let rules = Ruleset::bundled().expect("rules");
    let place = lawful_location(&rules);
    // 60 calls/s: 600 calls take about ten seconds, so the outage falls mid-run.
    let company = fleet::company(&store, "restart", 60, 5000).await;
    let calls = fleet::seed_many(&store, company, &place, RESTART_CALLS).await;
    let ids: Vec<uuid::Uuid> = calls.iter().map(|(id, _)| *id).collect();
    let ns = Namespace::new();
    ns.enqueue(company, &calls, outdial_domain::Clock::now(&fleet::clock()))
        .await;
    let provider = Provider::start(
        Timing::Realistic {
            ring_min: Duration::from_millis(50),
            ring_max: Duration::from_millis(300),
            talk_min: Duration::from_millis(100),
            talk_max: Duration::from_millis(600),
        },
        5,
    )
    .await;
    let env = [
        ("OUTDIAL_LEASE_SECS", "5"),
        ("OUTDIAL_RECONCILE_SECS", "1"),
        ("OUTDIAL_POLL_MS", "100"),
    ];
    let mut workers: Vec<Worker> = (0..2)
        .map(|_| Worker::start(&pg.url, &ns.name, &provider.url, &env))
        .collect();

    // Let a quarter of the calls go out, then take Postgres away for three seconds.
    let warm = eventually(Duration::from_secs(60), || async {
        provider.places().len() >= RESTART_CALLS / 4
    })
    .await;
    assert!(
        warm,
        "the workers placed {} calls in 60 s before the restart\n{}",
        provider.places().len(),
        logs(&workers)
    );
    tokio::task::block_in_place(|| pg.down());
    let placed_at_stop = provider.places().len();
    tokio::time::sleep(Duration::from_secs(3)).await;
    tokio::task::block_in_place(|| pg.up());
    assert!(
        placed_at_stop < RESTART_CALLS * 9 / 10,
        "the calls were nearly all placed ({placed_at_stop}) before Postgres went down: \
         the restart did not fall mid-run"
    );
    for (i, w) in workers.iter_mut().enumerate() {
        assert!(
            w.exited().is_none(),
            "worker {i} died when Postgres went away: {:?}\n{}",
            w.exited(),
            w.log_tail()
        );
    }

    // Every call ends settled (a worker that wedged would leave them open).
    let settled = eventually(Duration::from_secs(90), || async {
        matches!(open_calls(store.pool(), &ids).await, Ok(0))
    })
    .await;
    let counts = statuses(store.pool(), &ids).await.expect("statuses");
    assert!(
        settled,
        "calls still open 90 s after the restart: {counts:?} ({} placed before the outage, \
         {} in all)\n{}",
        placed_at_stop,
        provider.places().len(),
        logs(&workers)
    );
    for (i, w) in workers.iter_mut().enumerate() {
        assert!(
            w.exited().is_none(),
            "worker {i} exited after the restart: {:?}\n{}",
            w.exited(),
            w.log_tail()
        );
    }
    let unsettled: i64 = counts
        .iter()
        .filter(|(s, _)| !SETTLED.contains(&s.as_str()))
        .map(|(_, n)| n)
        .sum();
    assert_eq!(unsettled, 0, "calls not settled: {counts:?}");

    // Dialed exactly once each: one call created at the provider per scheduled call, one
    // place request per key, one attempt row per call.
    let per_call = provider.created_per_call();
    let twice: Vec<_> = per_call.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "calls dialed twice: {twice:?}");
    let replaced = provider.keys_placed_twice();
    assert!(
        replaced.is_empty(),
        "keys placed more than once (a re-dial the provider had to absorb): {replaced:?}"
    );
    assert_eq!(
        per_call.len(),
        RESTART_CALLS,
        "every call was dialed (statuses {counts:?})"
    );
    let attempts: i64 =
        sqlx::query_scalar("SELECT count(*) FROM call_attempts WHERE scheduled_call_id = ANY($1)")
            .bind(&ids)
            .fetch_one(store.pool())
            .await
            .expect("attempts");
    assert_eq!(attempts, RESTART_CALLS as i64, "one attempt row per call");
    let outage_felt = workers.iter().map(|w| w.log_count("WARN")).sum::<usize>();
    eprintln!(
        "postgres restart: {RESTART_CALLS} calls settled, {placed_at_stop} placed before the \
         outage, {outage_felt} warnings logged, {:.1} s",
        started.elapsed().as_secs_f64()
    );
    drop(workers);
    store.pool().close().await;
}

const SIGTERM_CALLS: usize = 30;
const IN_FLIGHT: usize = 8;
const GRACE_SECS: u64 = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_claiming_exits_zero_and_hands_back_calls_in_flight() {
    let started = Instant::now();
    let db = ScratchDb::new("sigterm");
    let store = Store::connect(&db.url).await.expect("connect");
    store.migrate().await.expect("migrate");
    let rules = Ruleset::bundled().expect("rules");
    let place = lawful_location(&rules);
    let company = fleet::company(&store, "sigterm", 100, 100).await;
    let calls = fleet::seed(&store, company, &place, 0, SIGTERM_CALLS).await;
    let ids: Vec<uuid::Uuid> = calls.iter().map(|(id, _)| *id).collect();
    let ns = Namespace::new();
    ns.enqueue(company, &calls, outdial_domain::Clock::now(&fleet::clock()))
        .await;
    // Calls last 1-8 s: some end within the grace period, some do not.
    let provider = Provider::start(
        Timing::Realistic {
            ring_min: Duration::from_secs(1),
            ring_max: Duration::from_secs(2),
            talk_min: Duration::from_secs(2),
            talk_max: Duration::from_secs(6),
        },
        9,
    )
    .await;
    let in_flight = IN_FLIGHT.to_string();
    let grace = GRACE_SECS.to_string();
    // A long lease: the second worker can only take the calls over this fast if the first
    // one handed them back.
    let mut first = Worker::start(
        &db.url,
        &ns.name,
        &provider.url,
        &[
            ("OUTDIAL_MAX_IN_FLIGHT", &in_flight),
            ("OUTDIAL_SHUTDOWN_GRACE_SECS", &grace),
            ("OUTDIAL_LEASE_SECS", "60"),
            ("OUTDIAL_RECONCILE_SECS", "1"),
            ("OUTDIAL_POLL_MS", "100"),
        ],
    );
    let busy = eventually(Duration::from_secs(30), || async {
        provider.places().len() >= IN_FLIGHT
    })
    .await;
    assert!(
        busy,
        "the worker placed {} calls in 30 s\n{}",
        provider.places().len(),
        first.log_tail()
    );
    let placed_before = provider.places().len();
    let sent = Instant::now();
    first.terminate();
    let status = first.wait_for_exit(Duration::from_secs(GRACE_SECS + 10));
    let took = sent.elapsed();
    let status = status.unwrap_or_else(|| {
        panic!(
            "the worker had not exited {} s after SIGTERM (grace {GRACE_SECS} s)\n{}",
            GRACE_SECS + 10,
            first.log_tail()
        )
    });
    assert!(
        status.success(),
        "the worker exited with {status} after SIGTERM\n{}",
        first.log_tail()
    );
    assert!(
        took <= Duration::from_secs(GRACE_SECS + 2),
        "the worker took {took:?} to exit after SIGTERM (grace {GRACE_SECS} s)\n{}",
        first.log_tail()
    );
    // It stopped claiming: nothing was placed after SIGTERM.
    let placed_after = provider.places().len();
    assert_eq!(
        placed_after,
        placed_before,
        "the worker placed calls after SIGTERM\n{}",
        first.log_tail()
    );
    // Every call it held is finished or handed back: none is left under a live lease.
    let held: Vec<(uuid::Uuid, String, Option<chrono::DateTime<chrono::Utc>>)> = sqlx::query_as(
        "SELECT id, status, lease_expires_at FROM scheduled_calls
         WHERE id = ANY($1) AND status IN ('dialing', 'in_progress')",
    )
    .bind(&ids)
    .fetch_all(store.pool())
    .await
    .expect("held calls");
    let now = outdial_domain::Clock::now(&fleet::clock());
    let still_leased: Vec<_> = held
        .iter()
        .filter(|(_, _, until)| until.is_none_or(|u| u > now))
        .collect();
    assert!(
        still_leased.is_empty(),
        "calls the stopped worker neither finished nor handed back (still leased): \
         {still_leased:?}"
    );
    let counts = statuses(store.pool(), &ids).await.expect("statuses");
    let finished: i64 = counts
        .iter()
        .filter(|(s, _)| SETTLED.contains(&s.as_str()))
        .map(|(_, n)| n)
        .sum();

    // A second worker finishes everything: the handed-back calls (asked of the provider,
    // never re-dialed) and those never claimed.
    let mut second = Worker::start(
        &db.url,
        &ns.name,
        &provider.url,
        &[
            ("OUTDIAL_LEASE_SECS", "5"),
            ("OUTDIAL_RECONCILE_SECS", "1"),
            ("OUTDIAL_POLL_MS", "100"),
        ],
    );
    let done = eventually(Duration::from_secs(40), || async {
        matches!(open_calls(store.pool(), &ids).await, Ok(0))
    })
    .await;
    let after = statuses(store.pool(), &ids).await.expect("statuses");
    assert!(
        done,
        "calls still open 40 s after the second worker started: {after:?}\n{}",
        second.log_tail()
    );
    assert!(second.exited().is_none(), "the second worker exited");
    let per_call = provider.created_per_call();
    let twice: Vec<_> = per_call.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "calls dialed twice: {twice:?}");
    let replaced = provider.keys_placed_twice();
    assert!(
        replaced.is_empty(),
        "keys placed more than once: {replaced:?}"
    );
    assert_eq!(
        per_call.len(),
        SIGTERM_CALLS,
        "every call dialed once (statuses {after:?})"
    );
    eprintln!(
        "sigterm: exited in {took:?}, {placed_before} in flight, {finished} finished by the \
         first worker, {} handed back; {:.1} s",
        held.len(),
        started.elapsed().as_secs_f64()
    );
}

//! Crash safety: several `outdial work` processes on one queue, one of them killed with
//! SIGKILL again and again (and restarted) while a thousand calls fire through the simulator
//! served over HTTP by this test. Every call is dialed at most once (at most one provider
//! call per scheduled call, counted at the simulator), none is lost (every call ends
//! finished), and every attempt started at an instant the policy allows. The same holds
//! when the Redis (a `redis-server` of the test's own) is flushed twice mid-run: Postgres
//! is the truth and the reconciler puts every pending call back.

mod fleet;
mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use outdial_dialer::server::{ServerConfig, serve};
use outdial_dialer::{SimConfig, Simulator, Timing};
use outdial_domain::policy::{Decision, Ruleset};
use outdial_domain::schedule::{Cadence, Plan, PlannedCall};
use outdial_domain::task::{Purpose, ScheduleType};
use outdial_domain::{Clock, CustomerRef};
use outdial_store::{NewSchedule, Store};

use fleet::{TOKEN, Worker, customer, lawful_location};
use support::ScratchDb;

const CALLS: usize = 1000;
/// A worker of this test: short leases, reconcile every second, live calls polled every
/// 100 ms, against `redis` (the machine's, or the test's own).
fn worker(db: &str, redis: &str, namespace: &str, provider: &str) -> Worker {
    Worker::start(
        db,
        namespace,
        provider,
        &[
            ("OUTDIAL_REDIS_URL", redis),
            ("OUTDIAL_LEASE_SECS", "10"),
            ("OUTDIAL_RECONCILE_SECS", "1"),
            ("OUTDIAL_POLL_MS", "100"),
        ],
    )
}

/// What goes wrong while the calls fire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chaos {
    /// The first worker is SIGKILLed and restarted every 400 ms.
    KillWorkers,
    /// The test's own Redis is flushed (FLUSHALL) twice while the calls fire.
    FlushRedis,
    /// The test's own Sentinel fails the primary over, and back, while the calls fire.
    Failover,
}

#[test]
fn killed_workers_never_dial_a_call_twice_and_lose_none() {
    let redis =
        std::env::var("OUTDIAL_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    fire_thousand_calls(Chaos::KillWorkers, &redis, None);
}

/// The same fleet and SIGKILLs on a Redis Cluster of three primaries of the test's own
/// (`OUTDIAL_REDIS_URL=redis+cluster://…` for every worker).
#[test]
fn on_a_redis_cluster_killed_workers_never_dial_a_call_twice_and_lose_none() {
    let cluster = outdial_redis::testing::OwnCluster::start();
    fire_thousand_calls(Chaos::KillWorkers, &cluster.url(), None);
}

/// Three workers on `redis+sentinel://` while the Sentinel promotes the replica, and later
/// the old primary again: the workers follow the primary, no call is lost or dialed twice
/// (a failover may drop the last queue writes; Postgres holds the truth).
#[test]
fn sentinel_failovers_mid_run_lose_no_call_and_dial_none_twice() {
    let sentinel = outdial_redis::testing::OwnSentinel::start();
    fire_thousand_calls(Chaos::Failover, &sentinel.url(), Some(&sentinel));
}

#[test]
fn a_redis_flush_mid_run_loses_no_call_and_dials_none_twice() {
    let server = outdial_redis::testing::OwnRedis::start();
    fire_thousand_calls(Chaos::FlushRedis, &server.url(), None);
}

fn flushall(url: &str) {
    let client = redis::Client::open(url).expect("redis url");
    let mut conn = client
        .get_connection()
        .expect("connect to the test's redis");
    redis::cmd("FLUSHALL")
        .query::<()>(&mut conn)
        .expect("FLUSHALL");
}

fn fire_thousand_calls(
    chaos: Chaos,
    redis: &str,
    sentinel: Option<&outdial_redis::testing::OwnSentinel>,
) {
    let redis = redis.to_owned();
    let db = ScratchDb::new("crash");
    let namespace = format!("t:crash{}", std::process::id());
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let rules = Ruleset::bundled().expect("rules");
    let place = lawful_location(&rules);
    let clock: Arc<dyn Clock> = Arc::new(fleet::clock());

    // The provider: the simulator over HTTP, calls ringing and talking for a few hundred ms.
    let simulator = Simulator::new(
        SimConfig {
            timing: Timing::Realistic {
                ring_min: Duration::from_millis(50),
                ring_max: Duration::from_millis(300),
                talk_min: Duration::from_millis(100),
                talk_max: Duration::from_millis(600),
            },
            ..SimConfig::new(11)
        },
        Arc::clone(&clock),
    );
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let provider = format!("http://{}", listener.local_addr().expect("addr"));
    let (stop_sim, stopped) = tokio::sync::oneshot::channel::<()>();
    runtime.spawn(serve(
        listener,
        simulator.clone(),
        ServerConfig {
            api_token: TOKEN.into(),
            default_callback_url: None,
            delivery: None,
        },
        Arc::clone(&clock),
        async move {
            let _ = stopped.await;
        },
    ));

    // A thousand customers with one call each, due now.
    let store = runtime.block_on(async {
        let store = Store::connect(&db.url).await.expect("connect");
        store.migrate().await.expect("migrate");
        store
    });
    let (company, _) = runtime
        .block_on(store.create_company("crash", clock.now()))
        .expect("company");
    runtime
        .block_on(
            sqlx::query("UPDATE companies SET calls_per_second = 5000, max_live_calls = 5000")
                .execute(store.pool()),
        )
        .expect("limits");
    let def = Cadence::default_def(ScheduleType::Collections).expect("cadence");
    let originals: Vec<uuid::Uuid> = runtime.block_on(async {
        let mut ids = Vec::with_capacity(CALLS);
        for i in 0..CALLS {
            let c = customer(&place, i);
            store
                .insert_customer(company.id, &c, clock.now())
                .await
                .expect("customer");
            let at = clock.now();
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
                    company.id,
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
            ids.push(*created.calls[0].id.as_uuid());
        }
        ids
    });

    // Three workers; the first is killed with SIGKILL every 400 ms and restarted.
    let mut workers: Vec<Worker> = (0..3)
        .map(|_| worker(&db.url, &redis, &namespace, &provider))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(150);
    let mut kills = 0;
    let mut flushes = 0;
    let mut failovers = 0;
    let mut rounds = 0;
    loop {
        rounds += 1;
        std::thread::sleep(Duration::from_millis(400));
        let open: i64 = runtime
            .block_on(
                // The calls placed now (their follow-ups, retries and callbacks, are due
                // later and stay scheduled).
                sqlx::query_scalar(
                    "SELECT count(*) FROM scheduled_calls
                     WHERE id = ANY($1) AND status IN ('scheduled', 'dialing', 'in_progress')",
                )
                .bind(&originals)
                .fetch_one(store.pool()),
            )
            .expect("count");
        if open == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{open} calls still open after 150 s ({kills} kills, {flushes} flushes, {failovers} failovers)"
        );
        if chaos == Chaos::FlushRedis && flushes < 2 && rounds % 3 == 0 {
            flushall(&redis);
            flushes += 1;
        }
        if chaos == Chaos::Failover && failovers < 2 && rounds % 3 == 0 {
            sentinel.expect("a sentinel to fail over").failover();
            failovers += 1;
        }
        if chaos == Chaos::KillWorkers && kills < 40 {
            // The old process is SIGKILLed (and reaped) as it is dropped.
            workers[0] = worker(&db.url, &redis, &namespace, &provider);
            kills += 1;
        }
    }
    // Every worker SIGKILLed; on a failed assertion above, the same happens on unwinding.
    drop(workers);
    let _ = stop_sim.send(());

    // At most one provider call per scheduled call.
    let stats = simulator.stats();
    let mut per_call: HashMap<String, u32> = HashMap::new();
    for (key, s) in &stats.keys {
        if s.created {
            let call = key.as_str().rsplit_once(':').map(|(c, _)| c.to_owned());
            *per_call
                .entry(call.expect("a call:attempt key"))
                .or_default() += 1;
        }
    }
    let twice: Vec<_> = per_call.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "calls dialed twice: {twice:?}");
    assert_eq!(per_call.len(), CALLS, "every call was dialed once");

    // None lost: every call placed now finished (the loop above ended with none open), each
    // with one attempt; nothing but those was dialed (their follow-ups are due later).
    let attempts: Vec<(chrono::DateTime<Utc>, String)> = runtime
        .block_on(
            sqlx::query_as(
                "SELECT started_at, customer_id FROM call_attempts WHERE scheduled_call_id = ANY($1)",
            )
            .bind(&originals)
                .fetch_all(store.pool()),
        )
        .expect("attempts");
    assert_eq!(attempts.len(), CALLS, "one attempt per call");
    // None outside its lawful window: every attempt re-checked on its own.
    for (at, customer_id) in attempts {
        let i: usize = customer_id[1..].parse().expect("index");
        let c = customer(&place, i);
        let policy = rules.prepare(&c.candidates(), Purpose::Collection);
        assert!(
            matches!(policy.decide(at, &c.subject(), &[]), Decision::Allow { .. }),
            "{customer_id} was dialed at {at}, outside its window"
        );
    }
    match chaos {
        Chaos::KillWorkers => assert!(kills > 0, "the test killed no worker"),
        Chaos::FlushRedis => assert!(flushes > 0, "the calls finished before any flush"),
        Chaos::Failover => assert!(failovers > 0, "the calls finished before any failover"),
    }
    runtime.block_on(async {
        let q = outdial_queue::Queue::open(&redis, &namespace, Default::default()).expect("queue");
        let _ = q.delete_namespace().await;
    });
}

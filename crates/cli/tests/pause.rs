//! Pause and resume across a fleet (issue 14): two `outdial work` processes on one queue
//! (real Redis, a namespace of the test's own; a fresh database), the simulator answering
//! at once over HTTP, the pause and the resume given by `outdial company pause|resume`.
//!
//! - Within 2 s of the pause no worker places another call of the paused company, and
//!   none for as long as it holds, even after the queue's keys are deleted (a Redis
//!   flush of the namespace: Postgres holds the pause); the other company's calls go on.
//! - After the resume every call of the paused company is placed, each exactly once, and
//!   nothing was cancelled.

mod fleet;
mod support;

use std::collections::HashSet;
use std::process::Command;
use std::time::{Duration, Instant};

use outdial_dialer::Timing;
use outdial_domain::Clock;
use outdial_domain::policy::Ruleset;
use outdial_store::Store;

use fleet::{Namespace, Placed, Provider, Worker, lawful_location};
use support::ScratchDb;

/// The paused company's calls and its rate: ten seconds of dialing.
const CALLS: usize = 200;
const RATE: u32 = 20;

fn call_of(p: &Placed) -> uuid::Uuid {
    let (call, _) = p.key.rsplit_once(':').expect("a call:attempt key");
    call.parse().expect("a call id")
}

/// Runs `outdial company <verb> <name>` against the test's database and namespace.
fn company_cli(db: &str, ns: &str, verb: &str, name: &str) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_outdial"))
        .args(["company", verb, name])
        .env("OUTDIAL_DATABASE_URL", db)
        .env("OUTDIAL_REDIS_URL", fleet::redis_url())
        .env("OUTDIAL_NAMESPACE", ns)
        .env("OUTDIAL_CLOCK_OFFSET_SECS", fleet::offset_secs())
        .env("OUTDIAL_LOG", "warn")
        .output()
        .expect("run outdial company");
    assert!(
        out.status.success(),
        "outdial company {verb} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("a JSON answer")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_company_is_not_dialed_by_any_worker_and_every_call_goes_once_after_resume() {
    let db = ScratchDb::new("pause");
    let store = Store::connect(&db.url).await.expect("connect");
    store.migrate().await.expect("migrate");
    let rules = Ruleset::bundled().expect("rules");
    let place = lawful_location(&rules);
    let paused = fleet::company(&store, "paused", RATE, 5000).await;
    let other = fleet::company(&store, "other", RATE, 5000).await;
    let paused_ids = fleet::seed_many(&store, paused, &place, CALLS).await;
    let other_ids = fleet::seed(&store, other, &place, 0, 100).await;
    let ns = Namespace::new();
    let now = fleet::clock().now();
    ns.enqueue(paused, &paused_ids, now).await;
    let provider = Provider::start(Timing::Instant, 5).await;
    let workers: Vec<Worker> = (0..2)
        .map(|_| {
            Worker::start(
                &db.url,
                &ns.name,
                &provider.url,
                &[("OUTDIAL_RECONCILE_SECS", "2")],
            )
        })
        .collect();
    let logs = || {
        workers
            .iter()
            .map(Worker::log_tail)
            .collect::<Vec<_>>()
            .join("\n---\n")
    };
    let paused_set: HashSet<uuid::Uuid> = paused_ids.iter().map(|(id, _)| *id).collect();
    let other_set: HashSet<uuid::Uuid> = other_ids.iter().map(|(id, _)| *id).collect();
    let count = |set: &HashSet<uuid::Uuid>| {
        provider
            .places()
            .iter()
            .filter(|p| set.contains(&call_of(p)))
            .count()
    };

    // Some of the paused company's calls go out, then the pause.
    let deadline = Instant::now() + Duration::from_secs(60);
    while count(&paused_set) < 30 {
        assert!(Instant::now() < deadline, "no calls placed\n{}", logs());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let answer = company_cli(&db.url, &ns.name, "pause", "paused");
    assert_eq!(answer["result"]["paused"], true, "{answer}");
    let paused_at = Instant::now();
    // The other company's calls are enqueued now: they go out during the pause.
    ns.enqueue(other, &other_ids, fleet::clock().now()).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let at_two_seconds = count(&paused_set);
    assert!(
        at_two_seconds < CALLS,
        "every call was placed before the pause took hold"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    // A flush of the namespace's keys: the pause is in Postgres, the reconciler (every 2 s)
    // restores the queue, and the workers still hold the company back.
    ns.queue
        .delete_namespace()
        .await
        .expect("flush the namespace");
    tokio::time::sleep(Duration::from_secs(5)).await;
    let held = count(&paused_set);
    assert_eq!(
        held,
        at_two_seconds,
        "calls of the paused company were placed {:?} after the pause",
        paused_at.elapsed()
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while count(&other_set) < other_ids.len() {
        assert!(
            Instant::now() < deadline,
            "the other company's calls did not all go out during the pause ({} of {})\n{}",
            count(&other_set),
            other_ids.len(),
            logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let open = fleet::statuses(
        store.pool(),
        &paused_ids.iter().map(|c| c.0).collect::<Vec<_>>(),
    )
    .await
    .expect("statuses");
    assert_eq!(
        open.get("cancelled"),
        None,
        "nothing is cancelled: {open:?}"
    );

    let answer = company_cli(&db.url, &ns.name, "resume", "paused");
    assert_eq!(answer["result"]["paused"], false, "{answer}");
    let deadline = Instant::now() + Duration::from_secs(90);
    let ids: Vec<uuid::Uuid> = paused_ids.iter().map(|c| c.0).collect();
    loop {
        let open = fleet::open_calls(store.pool(), &ids)
            .await
            .expect("open calls");
        if open == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{open} calls still open 90 s after the resume\n{}",
            logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let created = provider.created_per_call();
    for id in &ids {
        assert_eq!(
            created.get(id).copied(),
            Some(1),
            "call {id} was created {:?} times at the provider",
            created.get(id)
        );
    }
    // The decision trail names the pause for the calls it held back in flight.
    let trail_pauses: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM call_events WHERE call_id = ANY($1) AND entry->>'event' = 'paused'",
    )
    .bind(&ids)
    .fetch_one(store.pool())
    .await
    .expect("trail");
    eprintln!("calls held in flight by the pause (trail entries): {trail_pauses}");
    drop(workers);
}

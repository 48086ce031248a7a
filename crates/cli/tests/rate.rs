//! Rate limits end to end through the worker: two `outdial work` processes on one queue
//! (real Redis, a namespace of the test's own; a fresh database), the simulator answering
//! at once over HTTP, place requests timed as the provider receives them.
//!
//! - A company limited to `PACED_RATE` calls/s with more calls due than that rate can place
//!   in the run: over a 30 s window after warm-up, the two processes together place
//!   `PACED_RATE` ± 5 % calls per second at the provider.
//! - In the same run, a company throttled to `THROTTLED_RATE`/s with a backlog of thousands
//!   of due calls holds up no one: a third company's calls all go out in about the time its
//!   own limit implies, and the throttled one gets its own rate (± 10 %: at 5/s each call
//!   is 0.7 % of the window).

mod fleet;
mod support;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use outdial_dialer::Timing;
use outdial_domain::Clock;
use outdial_domain::policy::Ruleset;
use outdial_store::Store;

use fleet::{Namespace, Placed, Provider, Worker, lawful_location, load_average};
use support::ScratchDb;

const WORKERS: usize = 2;
const PACED_RATE: u32 = 40;
const THROTTLED_RATE: u32 = 5;
const THROTTLED_CALLS: usize = 2000;
const QUICK_RATE: u32 = 25;
const QUICK_CALLS: usize = 100;
const WARM_UP: Duration = Duration::from_secs(5);
const WINDOW: Duration = Duration::from_secs(30);

/// Place requests in `[from, from + len)` whose call is in `calls`, per second.
fn rate(places: &[Placed], calls: &HashSet<uuid::Uuid>, from: Instant, len: Duration) -> f64 {
    let n = places
        .iter()
        .filter(|p| p.at >= from && p.at < from + len && calls.contains(&call_of(p)))
        .count();
    n as f64 / len.as_secs_f64()
}

/// Place requests of `calls` in each second of `[from, from + len)`, for failure messages.
fn per_second(
    places: &[Placed],
    calls: &HashSet<uuid::Uuid>,
    from: Instant,
    len: Duration,
) -> Vec<usize> {
    let mut counts = vec![0; len.as_secs() as usize];
    for p in places.iter().filter(|p| calls.contains(&call_of(p))) {
        if p.at >= from && p.at < from + len {
            counts[(p.at - from).as_secs() as usize] += 1;
        }
    }
    counts
}

fn call_of(p: &Placed) -> uuid::Uuid {
    let (call, _) = p.key.rsplit_once(':').expect("a call:attempt key");
    call.parse().expect("a call id")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_together_hold_a_companys_rate_and_a_throttled_company_delays_no_other() {
    let started = Instant::now();
    let db = ScratchDb::new("rate");
    let store = Store::connect(&db.url).await.expect("connect");
    store.migrate().await.expect("migrate");
    let rules = Ruleset::bundled().expect("rules");
    let place = lawful_location(&rules);
    // Enough calls to keep the paced company at its limit past the window.
    let paced_calls = PACED_RATE as usize * (WARM_UP + WINDOW).as_secs() as usize * 5 / 4;
    let paced = fleet::company(&store, "paced", PACED_RATE, 5000).await;
    let throttled = fleet::company(&store, "throttled", THROTTLED_RATE, 5000).await;
    let quick = fleet::company(&store, "quick", QUICK_RATE, 5000).await;
    let paced_ids = fleet::seed_many(&store, paced, &place, paced_calls).await;
    let throttled_ids = fleet::seed_many(&store, throttled, &place, THROTTLED_CALLS).await;
    let quick_ids = fleet::seed_many(&store, quick, &place, QUICK_CALLS).await;
    let seeded = started.elapsed();
    let ns = Namespace::new();
    let now = fleet::clock().now();
    ns.enqueue(paced, &paced_ids, now).await;
    ns.enqueue(throttled, &throttled_ids, now).await;
    ns.enqueue(quick, &quick_ids, now).await;
    let provider = Provider::start(Timing::Instant, 3).await;

    let load_before = load_average();
    let launched = Instant::now();
    let mut workers: Vec<Worker> = (0..WORKERS)
        .map(|_| {
            Worker::start(
                &db.url,
                &ns.name,
                &provider.url,
                &[("OUTDIAL_RECONCILE_SECS", "600")],
            )
        })
        .collect();
    // Warm-up starts at the first call placed.
    let deadline = Instant::now() + Duration::from_secs(30);
    let first = loop {
        if let Some(p) = provider.places().first() {
            break p.at;
        }
        assert!(
            Instant::now() < deadline,
            "no call placed 30 s after the workers started\n{}",
            workers[0].log_tail()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let window_start = first + WARM_UP;
    let window_end = window_start + WINDOW;
    tokio::time::sleep_until((window_end + Duration::from_millis(200)).into()).await;
    for (i, w) in workers.iter_mut().enumerate() {
        assert!(
            w.exited().is_none(),
            "worker {i} exited: {:?}\n{}",
            w.exited(),
            w.log_tail()
        );
    }
    let places = provider.places();
    let cpu: Vec<String> = workers
        .iter()
        .map(|w| format!("{:.1} s", w.cpu_seconds()))
        .collect();
    let logs = workers
        .iter()
        .map(Worker::log_tail)
        .collect::<Vec<_>>()
        .join("\n---\n");
    drop(workers);

    let ids = |calls: &[(uuid::Uuid, String)]| -> HashSet<uuid::Uuid> {
        calls.iter().map(|(id, _)| *id).collect()
    };
    let (paced_ids, throttled_ids, quick_ids) =
        (ids(&paced_ids), ids(&throttled_ids), ids(&quick_ids));

    // Never dialed twice, whatever the company.
    let mut per_key: HashMap<&str, usize> = HashMap::new();
    for p in &places {
        *per_key.entry(p.key.as_str()).or_default() += 1;
    }
    let twice: Vec<_> = per_key.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "keys placed twice: {twice:?}");

    // The paced company: its rate across both processes, within 5 %.
    let paced_rate = rate(&places, &paced_ids, window_start, WINDOW);
    let low = f64::from(PACED_RATE) * 0.95;
    let high = f64::from(PACED_RATE) * 1.05;
    let paced_left = paced_ids.len()
        - places
            .iter()
            .filter(|p| paced_ids.contains(&call_of(p)))
            .count();
    assert!(
        paced_left > 0,
        "the paced company ran out of due calls before the window ended"
    );

    // The quick company: all its calls placed in about the time its own limit implies,
    // counted from the first call any company placed.
    let quick_times: Vec<Instant> = places
        .iter()
        .filter(|p| quick_ids.contains(&call_of(p)))
        .map(|p| p.at)
        .collect();
    let own_time = Duration::from_secs_f64(QUICK_CALLS as f64 / f64::from(QUICK_RATE));
    // Generous for a busy machine, yet far from what being held behind the throttled
    // company would take (its backlog alone is 400 s; its rate would make this 20 s).
    let allowed = own_time.mul_f64(1.5) + Duration::from_secs(2);
    let quick_first = quick_times.iter().min().map(|t| *t - first);
    let quick_done = quick_times.iter().max().map(|last| *last - first);

    // The throttled company: its own rate, no more (and not starved either).
    let throttled_rate = rate(&places, &throttled_ids, window_start, WINDOW);

    eprintln!(
        "rate: seeded {} calls in {seeded:.1?}; workers launched to first place {:?}; \
         paced {paced_rate:.2}/s (limit {PACED_RATE}), throttled {throttled_rate:.2}/s \
         (limit {THROTTLED_RATE}), quick: {} of {QUICK_CALLS} placed, first {quick_first:?}, last {quick_done:?} \
         after the first call (own limit alone: {own_time:?}); worker CPU {cpu:?}; load \
         average {load_before} -> {}; {:.1} s in all",
        paced_ids.len() + throttled_ids.len() + quick_ids.len(),
        first - launched,
        quick_times.len(),
        load_average(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        (low..=high).contains(&paced_rate),
        "{WORKERS} workers placed {paced_rate:.2} calls/s of a company limited to \
         {PACED_RATE}/s over {WINDOW:?} (allowed {low:.1}..={high:.1}); per second: {:?}\n{logs}",
        per_second(&places, &paced_ids, window_start, WINDOW)
    );
    assert_eq!(
        quick_times.len(),
        QUICK_CALLS,
        "the quick company's calls were not all placed while the throttled company's \
         backlog waited\n{logs}"
    );
    let quick_done = quick_done.expect("quick calls placed");
    assert!(
        quick_done <= allowed,
        "the quick company's {QUICK_CALLS} calls at {QUICK_RATE}/s took {quick_done:?} \
         from the first call (its own limit implies {own_time:?}, allowed {allowed:?}): \
         held behind the throttled company's backlog?\n{logs}"
    );
    // At 5/s one call is 0.7 % of the window, and a second of jitter in when the calls
    // reach the provider moves five across its edges: ± 10 %.
    let t_low = f64::from(THROTTLED_RATE) * 0.9;
    let t_high = f64::from(THROTTLED_RATE) * 1.1;
    assert!(
        (t_low..=t_high).contains(&throttled_rate),
        "the throttled company got {throttled_rate:.2} calls/s (limit {THROTTLED_RATE}/s, \
         allowed {t_low:.2}..={t_high:.2}); per second: {:?}\n{logs}",
        per_second(&places, &throttled_ids, window_start, WINDOW)
    );
}

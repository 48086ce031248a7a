//! Policy benchmark: decisions per second on one core and schedule expansion for 100,000
//! customers, with ratios to a baseline run in the same invocation (one UTC→local
//! conversion through chrono-tz, the floor any zone-aware decision pays).
//! Run: `cargo bench -p outdial-domain --bench policy` (single-threaded; pin it with
//! `taskset -c 1` for steadier figures). The memos the engine keeps (window days, local
//! dates, cron matches) are process-wide, so this measures a warm, long-running process.
//! `OUTDIAL_BENCH_DECISIONS` and `OUTDIAL_BENCH_CUSTOMERS` shrink the run for profiling.

use std::hint::black_box;
use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use chrono_tz::{America, Tz};
use outdial_domain::UsState;
use outdial_domain::policy::{Candidates, Ruleset, Subject};
use outdial_domain::schedule::{Cadence, Request, expand};
use outdial_domain::task::{Purpose, ScheduleType};

const N: u32 = 2_000_000;

/// Decisions per measurement (`OUTDIAL_BENCH_DECISIONS` overrides, e.g. for profiling).
fn decisions() -> u32 {
    std::env::var("OUTDIAL_BENCH_DECISIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(N)
}

fn per_sec(label: &str, n: u32, f: impl FnMut(u32)) -> f64 {
    let mut f = f;
    // Warm up, then time.
    for i in 0..n / 10 {
        f(i);
    }
    let start = Instant::now();
    for i in 0..n {
        f(i);
    }
    let rate = f64::from(n) / start.elapsed().as_secs_f64();
    println!("{label:<48} {rate:>14.0} /s");
    rate
}

fn main() {
    let set = Ruleset::bundled().expect("bundled ruleset");
    let t0: DateTime<Utc> = "2026-11-23T15:00:00Z".parse().expect("instant");
    // Instants spread over one week, so allowed and denied instants both occur.
    let at = |i: u32| t0 + Duration::seconds(i64::from(i % 604_800));

    let base = per_sec("baseline: utc->local (chrono-tz)", decisions(), |i| {
        black_box(black_box(at(i)).with_timezone(&America::New_York));
    });

    let one = Candidates::explicit(&[America::New_York], &[UsState::NY]);
    let p1 = set.prepare(&one, Purpose::Collection);
    let subject = Subject {
        debt: Some("L1"),
        number: None,
    };
    let d1 = per_sec("single-zone decision (NY, collection)", decisions(), |i| {
        black_box(p1.decide(black_box(at(i)), &subject, &[]));
    });
    let three: [Tz; 3] = [America::New_York, America::Chicago, America::Denver];
    let c3 = Candidates::explicit(&three, &[UsState::FL, UsState::GA]);
    let p3 = set.prepare(&c3, Purpose::Collection);
    let d3 = per_sec(
        "three-zone decision (FL/GA, collection)",
        decisions(),
        |i| {
            black_box(p3.decide(black_box(at(i)), &subject, &[]));
        },
    );
    // Schedule expansion: 100,000 customers' default collections cadence (3 weeks of two
    // weekday slots, Reg F caps), customers spread over six zones and start instants.
    let cadence =
        Cadence::parse(&Cadence::default_def(ScheduleType::Collections).expect("default"))
            .expect("valid cadence");
    let zones = [
        America::New_York,
        America::Chicago,
        America::Denver,
        America::Phoenix,
        America::Los_Angeles,
        America::Anchorage,
    ];
    let prepared: Vec<_> = zones
        .iter()
        .map(|z| (*z, Candidates::explicit(&[*z], &[UsState::TX])))
        .collect();
    let customers: u32 = std::env::var("OUTDIAL_BENCH_CUSTOMERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let start = Instant::now();
    let mut calls = 0usize;
    for i in 0..customers {
        let (zone, cands) = &prepared[i as usize % zones.len()];
        let policy = set.prepare(cands, Purpose::Collection);
        let plan = expand(
            &cadence,
            &Request {
                policy: &policy,
                zone: *zone,
                subject,
                history: &[],
                start: t0 + Duration::minutes(i64::from(i % 1440)),
            },
        );
        calls += black_box(plan).calls.len();
    }
    let expand_secs = start.elapsed().as_secs_f64();
    println!(
        "{:<48} {:>14.3} s ({} calls planned, {:.1} us/customer)",
        format!("expand {customers} collections schedules"),
        expand_secs,
        calls,
        expand_secs * 1e6 / f64::from(customers)
    );

    // The cadence slots alone (cron matches from the per-date memo), same customers.
    let start = Instant::now();
    let mut slots = 0usize;
    for i in 0..customers {
        let zone = zones[i as usize % zones.len()];
        let from = t0 + Duration::minutes(i64::from(i % 1440));
        slots += black_box(cadence.slots(zone, from, from + cadence.horizon)).len();
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{:<48} {:>14.3} s ({} slots, {:.2} us/customer)",
        format!("cadence slots for {customers} customers"),
        secs,
        slots,
        secs * 1e6 / f64::from(customers)
    );

    println!();
    println!("ratios to the baseline (cost of one utc->local conversion):");
    println!("  single-zone decision      {:>8.2}x", base / d1);
    println!("  three-zone decision       {:>8.2}x", base / d3);
    println!(
        "  expansion per customer    {:>8.0}x",
        expand_secs * base / f64::from(customers)
    );
}

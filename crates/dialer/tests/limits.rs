//! Rate limits, slow-downs and live-call slots against real Redis (`OUTDIAL_REDIS_URL`,
//! default `redis://127.0.0.1:6379`), each test in its own namespace `t:{<uuid>}`.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use outdial_dialer::limits::{
    Admission, CallLimits, Limits, Pacer, Rate, Reservation, SlotGrant, Throttle,
};
use outdial_dialer::{CompanyRef, IdempotencyKey};
use outdial_domain::{Clock, ManualClock, PhoneNumber, SystemClock};
use outdial_redis::{Options, Redis};

async fn redis() -> Redis {
    let url =
        std::env::var("OUTDIAL_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let hint = format!(
        "Redis must answer at {url} (set OUTDIAL_REDIS_URL, or start one with ops/stack.sh)"
    );
    tokio::time::timeout(
        Duration::from_secs(5),
        Redis::open(&url, &Options::default()),
    )
    .await
    .expect(&hint)
    .expect(&hint)
}

fn namespace() -> String {
    format!("t:{{{}}}", uuid::Uuid::new_v4())
}

async fn limits_at(namespace: &str, clock: Arc<dyn Clock>) -> Limits {
    Limits::new(redis().await, namespace, clock).expect("a tagged namespace")
}

fn company(name: &str) -> CompanyRef {
    CompanyRef::new(name).expect("a company")
}

fn number(n: u32) -> PhoneNumber {
    PhoneNumber::parse(&format!("+1212555{n:04}")).expect("a number")
}

fn key(s: &str) -> IdempotencyKey {
    IdempotencyKey::new(s).expect("a key")
}

fn manual() -> Arc<ManualClock> {
    let t0 = Utc
        .with_ymd_and_hms(2026, 11, 23, 15, 0, 0)
        .single()
        .expect("an instant");
    Arc::new(ManualClock::new(t0))
}

fn per_second(n: u32) -> Rate {
    Rate::per_second(n).expect("a positive rate")
}

/// `per_second_` calls/s across all callers, burst 10: a waiter that wakes up to 9
/// intervals late (a loaded machine) catches up instead of losing the capacity.
fn shared_rate(per_second_: u32) -> CallLimits {
    CallLimits {
        company: per_second(per_second_).with_burst(NonZeroU32::new(10).expect("10")),
        caller_id: None,
    }
}

/// Runs `tasks` tasks admitting calls of `company` until `end`; the instants of admission.
async fn admit_until(
    limits: Limits,
    tasks: usize,
    rate: CallLimits,
    end: DateTime<Utc>,
) -> Vec<DateTime<Utc>> {
    let caller = number(1);
    let company = company("shared-co");
    let mut handles = Vec::new();
    for _ in 0..tasks {
        let (limits, caller, company) = (limits.clone(), caller.clone(), company.clone());
        handles.push(tokio::spawn(async move {
            let mut admitted = Vec::new();
            loop {
                let now = SystemClock.now();
                if now >= end {
                    return admitted;
                }
                match limits.admit(&company, &caller, &rate).await.expect("admit") {
                    Admission::Admitted => admitted.push(SystemClock.now()),
                    Admission::Wait { until, .. } => {
                        let wait = (until.min(end) - SystemClock.now())
                            .to_std()
                            .unwrap_or_default();
                        tokio::time::sleep(wait).await;
                    }
                }
            }
        }));
    }
    let mut all = Vec::new();
    for handle in handles {
        all.extend(handle.await.expect("a task"));
    }
    all
}

/// Asserts that `admitted` holds `per_second_` admissions per second ± 5%, measured from
/// `warm_up` after the first admission to the last one (a loaded machine may wake callers
/// late at either edge), over at least 2.5 s.
fn assert_aggregate(admitted: &[DateTime<Utc>], per_second_: u32, warm_up: chrono::Duration) {
    let from = *admitted.iter().min().expect("admissions") + warm_up;
    let to = *admitted.iter().max().expect("admissions");
    assert_window(admitted, per_second_, from, to);
}

fn assert_window(
    admitted: &[DateTime<Utc>],
    per_second_: u32,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) {
    let measured = (to - from).to_std().expect("a window");
    assert!(
        measured >= Duration::from_millis(2500),
        "measured only {measured:?}"
    );
    let count = admitted.iter().filter(|t| **t >= from && **t < to).count();
    let expected = f64::from(per_second_) * measured.as_secs_f64();
    let error = (count as f64 - expected).abs() / expected;
    assert!(
        error <= 0.05,
        "{count} admitted in {measured:?}, expected {expected:.0} ± 5%"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_sharing_a_company_rate_get_that_rate_in_aggregate() {
    let limits = limits_at(&namespace(), Arc::new(SystemClock)).await;
    let start = SystemClock.now();
    let warm_up = chrono::Duration::milliseconds(500);
    let span = Duration::from_secs(3);
    let end = start + warm_up + chrono::Duration::from_std(span).expect("span");
    let admitted = admit_until(limits, 8, shared_rate(100), end).await;
    assert_aggregate(&admitted, 100, warm_up);
}

/// Child half of `two_processes_sharing_a_company_rate_get_that_rate_in_aggregate`, run by
/// that test in a separate process (idle otherwise): connects, prints `ready`, reads
/// `start_ms|end_ms` from stdin, admits calls in between and prints each admission.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a child process of two_processes_sharing_a_company_rate_get_that_rate_in_aggregate"]
async fn rate_child_process() {
    let Ok(ns) = std::env::var("OUTDIAL_LIMITS_CHILD") else {
        return;
    };
    let limits = limits_at(&ns, Arc::new(SystemClock)).await;
    // The first call of a fresh process took ~0.5 s on a loaded machine: make it before "ready".
    let warm_up = limits
        .admit(&company("warm-up"), &number(1), &shared_rate(100))
        .await;
    assert_eq!(warm_up.expect("admit"), Admission::Admitted);
    println!("ready");
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).expect("a start line");
    let instant = |ms: &str| {
        DateTime::from_timestamp_millis(ms.trim().parse().expect("ms")).expect("an instant")
    };
    let (start, end) = line.split_once('|').expect("start|end");
    let (start, end) = (instant(start), instant(end));
    tokio::time::sleep((start - SystemClock.now()).to_std().unwrap_or_default()).await;
    println!("started {}", SystemClock.now().timestamp_micros());
    let admitted = admit_until(limits, 4, shared_rate(100), end).await;
    println!("stopped {}", SystemClock.now().timestamp_micros());
    for t in admitted {
        println!("admitted {}", t.timestamp_micros());
    }
}

#[tokio::test]
async fn two_processes_sharing_a_company_rate_get_that_rate_in_aggregate() {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

    let ns = namespace();
    let exe = std::env::current_exe().expect("the test binary");
    let mut children = Vec::new();
    for _ in 0..2 {
        let mut child = tokio::process::Command::new(&exe)
            .args([
                "rate_child_process",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("OUTDIAL_LIMITS_CHILD", &ns)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("a child process");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let ready = async {
            let mut line = String::new();
            while !line.contains("ready") {
                line.clear();
                assert!(
                    stdout.read_line(&mut line).await.expect("a line") > 0,
                    "child exited"
                );
            }
        };
        tokio::time::timeout(Duration::from_secs(20), ready)
            .await
            .expect("the child gets ready");
        children.push((child, stdout));
    }
    // Both processes are up and connected: start them together.
    let start = SystemClock.now() + chrono::Duration::milliseconds(100);
    let warm_up = chrono::Duration::milliseconds(300);
    let end = start + chrono::Duration::milliseconds(3800);
    let go = format!("{}|{}\n", start.timestamp_millis(), end.timestamp_millis());
    for (child, _) in &mut children {
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(go.as_bytes()).await.expect("go");
    }
    let mut admitted = Vec::new();
    let mut started = Vec::new();
    let mut stopped = Vec::new();
    for (mut child, mut stdout) in children {
        let mut rest = String::new();
        let output = async {
            stdout
                .read_to_string(&mut rest)
                .await
                .expect("the child's output");
            child.wait().await.expect("the child's status")
        };
        let status = tokio::time::timeout(Duration::from_secs(20), output)
            .await
            .expect("the child finishes");
        assert!(status.success(), "child failed: {status:?}");
        let stamps = |tag: &str| -> Vec<DateTime<Utc>> {
            rest.lines()
                .filter_map(|l| l.split(tag).nth(1))
                .map(|us| {
                    DateTime::from_timestamp_micros(us.trim().parse().expect("µs"))
                        .expect("an instant")
                })
                .collect()
        };
        let times = stamps("admitted ");
        // GCRA is first come, first served, not fair between processes: a process the OS
        // wakes later may win fewer races. Both must take part; the aggregate is the limit.
        assert!(
            times.len() >= 10,
            "each process made calls: {}",
            times.len()
        );
        started.extend(stamps("started "));
        stopped.extend(stamps("stopped "));
        admitted.extend(times);
    }
    // Measure only while both processes were running their loops.
    let from = *started.iter().max().expect("two") + warm_up;
    let to = *stopped.iter().min().expect("two");
    assert_window(&admitted, 100, from, to);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pacer_composes_a_local_governor_with_the_shared_limit() {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let ns = namespace();
    let pacers = [
        Pacer::new(limits_at(&ns, clock.clone()).await),
        Pacer::new(limits_at(&ns, clock.clone()).await),
    ];
    let start = SystemClock.now();
    let warm_up = chrono::Duration::milliseconds(500);
    let span = Duration::from_secs(3);
    let end = start + warm_up + chrono::Duration::from_std(span).expect("span");
    let mut handles = Vec::new();
    for i in 0..6 {
        let pacer = pacers[i % 2].clone();
        handles.push(tokio::spawn(async move {
            let mut admitted = Vec::new();
            while SystemClock.now() < end {
                let admission = pacer
                    .until_admitted(
                        &company("paced-co"),
                        &number(2),
                        &shared_rate(50),
                        Duration::from_secs(1),
                    )
                    .await
                    .expect("admit");
                assert_eq!(admission, Admission::Admitted);
                admitted.push(SystemClock.now());
            }
            admitted
        }));
    }
    let mut admitted = Vec::new();
    for handle in handles {
        admitted.extend(handle.await.expect("a task"));
    }
    assert_aggregate(&admitted, 50, warm_up);
}

#[tokio::test]
async fn a_throttled_company_does_not_slow_another() {
    let clock = manual();
    let limits = limits_at(&namespace(), clock.clone()).await;
    let (slow, fast) = (company("slow-co"), company("fast-co"));
    let one = CallLimits {
        company: per_second(1),
        caller_id: None,
    };
    let now = clock.now();

    let until = now + chrono::Duration::seconds(10);
    assert_eq!(limits.slow_down(&slow, until).await.unwrap(), Some(until));
    let earlier = now + chrono::Duration::seconds(2);
    assert_eq!(
        limits.slow_down(&slow, earlier).await.unwrap(),
        Some(until),
        "never shortened"
    );
    assert_eq!(limits.slowed_until(&slow).await.unwrap(), Some(until));
    assert_eq!(
        limits.admit(&slow, &number(1), &one).await.unwrap(),
        Admission::Wait {
            until,
            reason: Throttle::SlowedDown
        }
    );
    assert_eq!(
        limits.admit(&fast, &number(2), &one).await.unwrap(),
        Admission::Admitted
    );
    assert_eq!(limits.slowed_until(&fast).await.unwrap(), None);

    // A company over its own rate does not hold up another either.
    let next = limits.admit(&fast, &number(2), &one).await.unwrap();
    assert_eq!(
        next,
        Admission::Wait {
            until: now + chrono::Duration::seconds(1),
            reason: Throttle::Rate
        }
    );
    assert_eq!(
        limits
            .admit(&company("third-co"), &number(3), &one)
            .await
            .unwrap(),
        Admission::Admitted
    );

    clock.advance(chrono::Duration::seconds(10));
    assert_eq!(
        limits.admit(&slow, &number(1), &one).await.unwrap(),
        Admission::Admitted
    );
}

#[tokio::test]
async fn a_caller_id_rate_is_shared_by_companies_and_a_refusal_spends_nothing() {
    let clock = manual();
    let limits = limits_at(&namespace(), clock.clone()).await;
    let rates = CallLimits {
        company: per_second(1),
        caller_id: Some(per_second(1)),
    };
    let shared = number(7);
    assert_eq!(
        limits.admit(&company("a"), &shared, &rates).await.unwrap(),
        Admission::Admitted
    );
    let refused = limits.admit(&company("b"), &shared, &rates).await.unwrap();
    assert!(matches!(
        refused,
        Admission::Wait {
            reason: Throttle::Rate,
            ..
        }
    ));
    // Company b's own rate was not spent by the refusal.
    assert_eq!(
        limits
            .admit(&company("b"), &number(8), &rates)
            .await
            .unwrap(),
        Admission::Admitted
    );
    clock.advance(chrono::Duration::milliseconds(1000));
    assert_eq!(
        limits.admit(&company("c"), &shared, &rates).await.unwrap(),
        Admission::Admitted
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_calls_never_exceed_the_cap_under_concurrency() {
    let limits = limits_at(&namespace(), Arc::new(SystemClock)).await;
    let co = company("capped-co");
    let cap = 5;
    let held = Arc::new(AtomicU32::new(0));
    let peak = Arc::new(AtomicU32::new(0));
    let mut handles = Vec::new();
    for i in 0..40u64 {
        let (limits, co, held, peak) = (limits.clone(), co.clone(), held.clone(), peak.clone());
        handles.push(tokio::spawn(async move {
            let holder = key(&format!("call-{i}:1"));
            loop {
                match limits
                    .acquire_slot(&co, cap, &holder, Duration::from_secs(30))
                    .await
                    .expect("acquire")
                {
                    SlotGrant::Acquired { live } => {
                        assert!(live <= cap, "{live} live");
                        let now_held = held.fetch_add(1, Ordering::SeqCst) + 1;
                        peak.fetch_max(now_held, Ordering::SeqCst);
                        // The call talks for a few ms.
                        tokio::time::sleep(Duration::from_millis(5 + i % 10)).await;
                        held.fetch_sub(1, Ordering::SeqCst);
                        assert!(limits.release_slot(&co, &holder).await.expect("release"));
                        return;
                    }
                    SlotGrant::Full { .. } => tokio::time::sleep(Duration::from_millis(2)).await,
                }
            }
        }));
    }
    let all = async {
        for handle in handles {
            handle.await.expect("a task");
        }
    };
    tokio::time::timeout(Duration::from_secs(20), all)
        .await
        .expect("every call got a slot in time");
    let peak = peak.load(Ordering::SeqCst);
    assert!(peak <= cap && peak >= 2, "peak {peak}");
    assert_eq!(
        limits.live_calls(&co).await.unwrap(),
        0,
        "every slot came back"
    );
}

#[tokio::test]
async fn a_crashed_holders_slot_comes_back_when_its_lease_expires() {
    let clock = manual();
    let limits = limits_at(&namespace(), clock.clone()).await;
    let co = company("crash-co");
    let lease = Duration::from_secs(30);
    let crashed = key("crashed:1");
    assert_eq!(
        limits.acquire_slot(&co, 1, &crashed, lease).await.unwrap(),
        SlotGrant::Acquired { live: 1 }
    );
    let expiry = clock.now() + chrono::Duration::seconds(30);
    let waiting = key("waiting:1");
    assert_eq!(
        limits.acquire_slot(&co, 1, &waiting, lease).await.unwrap(),
        SlotGrant::Full {
            next_expiry: expiry
        }
    );
    // The holder never releases nor renews (it crashed).
    clock.advance(chrono::Duration::seconds(29));
    assert!(matches!(
        limits.acquire_slot(&co, 1, &waiting, lease).await.unwrap(),
        SlotGrant::Full { .. }
    ));
    clock.advance(chrono::Duration::seconds(1));
    assert_eq!(
        limits.acquire_slot(&co, 1, &waiting, lease).await.unwrap(),
        SlotGrant::Acquired { live: 1 }
    );
    assert!(
        !limits.renew_slot(&co, &crashed, lease).await.unwrap(),
        "the lost lease is not revived"
    );
    assert!(!limits.release_slot(&co, &crashed).await.unwrap());
    assert_eq!(limits.live_calls(&co).await.unwrap(), 1);
}

#[tokio::test]
async fn a_renewed_slot_stays_held_and_a_released_one_is_free_at_once() {
    let clock = manual();
    let limits = limits_at(&namespace(), clock.clone()).await;
    let co = company("renew-co");
    let lease = Duration::from_secs(30);
    let (live_call, next) = (key("live:1"), key("next:1"));
    assert!(matches!(
        limits
            .acquire_slot(&co, 1, &live_call, lease)
            .await
            .unwrap(),
        SlotGrant::Acquired { .. }
    ));
    // Acquiring again as the same holder keeps one slot.
    assert_eq!(
        limits
            .acquire_slot(&co, 1, &live_call, lease)
            .await
            .unwrap(),
        SlotGrant::Acquired { live: 1 }
    );
    clock.advance(chrono::Duration::seconds(20));
    assert!(limits.renew_slot(&co, &live_call, lease).await.unwrap());
    clock.advance(chrono::Duration::seconds(20));
    assert!(matches!(
        limits.acquire_slot(&co, 1, &next, lease).await.unwrap(),
        SlotGrant::Full { .. }
    ));
    assert!(limits.release_slot(&co, &live_call).await.unwrap());
    assert_eq!(
        limits.acquire_slot(&co, 1, &next, lease).await.unwrap(),
        SlotGrant::Acquired { live: 1 }
    );
}

#[tokio::test]
async fn a_provider_429_slows_that_company_in_every_process_and_consumes_no_attempt() {
    use outdial_dialer::{DialContext, DialRequest, Dialer, Fault, SimConfig, Simulator};

    let clock = manual();
    let ns = namespace();
    // Two worker processes: separate connections, same namespace.
    let (worker_a, worker_b) = (
        limits_at(&ns, clock.clone()).await,
        limits_at(&ns, clock.clone()).await,
    );
    let sim = Simulator::new(SimConfig::new(9).instant(), clock.clone());
    let (throttled, other) = (company("throttled-co"), company("other-co"));
    sim.inject(Fault::RateLimit {
        company: throttled.clone(),
        retry_after: Duration::from_secs(5),
        times: 1,
    });
    let rates = CallLimits {
        company: per_second(10),
        caller_id: None,
    };

    assert_eq!(
        worker_a
            .admit(&throttled, &number(1), &rates)
            .await
            .unwrap(),
        Admission::Admitted
    );
    let request = DialRequest {
        key: key("c1:1"),
        to: number(11),
        caller_id: number(1),
        company: throttled.clone(),
        context: DialContext::default(),
    };
    let err = sim.place(request.clone()).await.unwrap_err();
    let retry_after = err.retry_after().expect("a 429");
    assert!(!err.consumes_attempt());
    let until = clock.now() + chrono::Duration::from_std(retry_after).unwrap();
    worker_a.slow_down(&throttled, until).await.unwrap();

    assert_eq!(
        worker_b
            .admit(&throttled, &number(2), &rates)
            .await
            .unwrap(),
        Admission::Wait {
            until,
            reason: Throttle::SlowedDown
        }
    );
    assert_eq!(
        worker_b.admit(&other, &number(3), &rates).await.unwrap(),
        Admission::Admitted
    );
    assert_eq!(
        sim.lookup(&request.key).await.unwrap(),
        None,
        "nothing was dialed"
    );

    clock.advance(chrono::Duration::seconds(5));
    assert_eq!(
        worker_b
            .admit(&throttled, &number(2), &rates)
            .await
            .unwrap(),
        Admission::Admitted
    );
    assert!(
        !sim.place(request).await.unwrap().replayed,
        "the same attempt is placed later"
    );
}

#[tokio::test]
async fn a_burst_is_admitted_at_once_then_calls_are_spaced_by_the_interval() {
    let clock = manual();
    let limits = limits_at(&namespace(), clock.clone()).await;
    let co = company("burst-co");
    let rates = CallLimits {
        company: per_second(10).with_burst(NonZeroU32::new(3).expect("3")),
        caller_id: None,
    };
    let t0 = clock.now();
    for _ in 0..3 {
        assert_eq!(
            limits.admit(&co, &number(1), &rates).await.unwrap(),
            Admission::Admitted
        );
    }
    let ms = chrono::Duration::milliseconds;
    assert_eq!(
        limits.admit(&co, &number(1), &rates).await.unwrap(),
        Admission::Wait {
            until: t0 + ms(100),
            reason: Throttle::Rate
        }
    );
    clock.set(t0 + ms(100));
    assert_eq!(
        limits.admit(&co, &number(1), &rates).await.unwrap(),
        Admission::Admitted
    );
    assert_eq!(
        limits.admit(&co, &number(1), &rates).await.unwrap(),
        Admission::Wait {
            until: t0 + ms(200),
            reason: Throttle::Rate
        }
    );
    // Idle for a while: the burst is available again, never more.
    clock.set(t0 + ms(10_000));
    for _ in 0..3 {
        assert_eq!(
            limits.admit(&co, &number(1), &rates).await.unwrap(),
            Admission::Admitted
        );
    }
    assert!(matches!(
        limits.admit(&co, &number(1), &rates).await.unwrap(),
        Admission::Wait { .. }
    ));
}

#[tokio::test]
async fn turns_are_booked_one_interval_apart_and_none_beyond_the_wait_allowed() {
    let clock = manual();
    let limits = limits_at(&namespace(), clock.clone()).await;
    let (co, other) = (company("turns-co"), company("other-co"));
    let ten = CallLimits {
        company: per_second(10),
        caller_id: None,
    };
    let max_wait = Duration::from_millis(500);
    let ms = chrono::Duration::milliseconds;
    let t0 = clock.now();
    for i in 0..=5 {
        assert_eq!(
            limits
                .reserve(&co, &number(1), &ten, max_wait)
                .await
                .unwrap(),
            Reservation::Booked {
                at: t0 + ms(100 * i)
            },
            "turn {i}"
        );
    }
    // The next turn (t0 + 600 ms) is beyond the wait allowed: nothing is booked, and the
    // answer says when it will not be.
    for _ in 0..2 {
        assert_eq!(
            limits
                .reserve(&co, &number(1), &ten, max_wait)
                .await
                .unwrap(),
            Reservation::Wait {
                until: t0 + ms(100),
                reason: Throttle::Rate
            }
        );
    }
    // Another company has its own turns.
    assert_eq!(
        limits
            .reserve(&other, &number(2), &ten, max_wait)
            .await
            .unwrap(),
        Reservation::Booked { at: t0 }
    );
    // Late callers do not lose turns: the schedule is absolute.
    clock.advance(ms(100));
    assert_eq!(
        limits
            .reserve(&co, &number(1), &ten, max_wait)
            .await
            .unwrap(),
        Reservation::Booked { at: t0 + ms(600) }
    );
    // A slow-down holds the company's turns.
    let until = clock.now() + chrono::Duration::seconds(5);
    limits.slow_down(&co, until).await.unwrap();
    assert_eq!(
        limits
            .reserve(&co, &number(1), &ten, max_wait)
            .await
            .unwrap(),
        Reservation::Wait {
            until,
            reason: Throttle::SlowedDown
        }
    );
    // A caller ID limit books the later of the two turns, and counts in both.
    let with_caller = CallLimits {
        company: per_second(10),
        caller_id: Some(per_second(2)),
    };
    let t1 = clock.now();
    assert_eq!(
        limits
            .reserve(&other, &number(3), &with_caller, max_wait)
            .await
            .unwrap(),
        Reservation::Booked { at: t1 }
    );
    assert_eq!(
        limits
            .reserve(&other, &number(3), &with_caller, max_wait)
            .await
            .unwrap(),
        Reservation::Booked { at: t1 + ms(500) }
    );
    assert_eq!(
        limits
            .reserve(&other, &number(4), &ten, Duration::from_secs(1))
            .await
            .unwrap(),
        Reservation::Booked { at: t1 + ms(600) },
        "the company's next turn comes after the caller-limited one"
    );
}

#[tokio::test]
async fn turns_booked_together_are_the_turns_booked_one_by_one() {
    let clock = manual();
    let limits = limits_at(&namespace(), clock.clone()).await;
    let (together, alone) = (company("together-co"), company("alone-co"));
    let ten = CallLimits {
        company: per_second(10),
        caller_id: Some(per_second(20)),
    };
    let max_wait = Duration::from_millis(450);
    let mut one_by_one = Vec::new();
    for _ in 0..8 {
        one_by_one.push(
            limits
                .reserve(&alone, &number(7), &ten, max_wait)
                .await
                .unwrap(),
        );
    }
    let booked = limits
        .reserve_many(&together, &number(8), &ten, max_wait, 8)
        .await
        .unwrap();
    assert_eq!(booked, one_by_one);
    let ms = chrono::Duration::milliseconds;
    let t0 = clock.now();
    assert_eq!(
        booked[..5],
        (0..5)
            .map(|i| Reservation::Booked {
                at: t0 + ms(100 * i)
            })
            .collect::<Vec<_>>()[..],
        "five turns within 450 ms"
    );
    assert!(
        booked[5..].iter().all(|r| matches!(
            r,
            Reservation::Wait {
                reason: Throttle::Rate,
                ..
            }
        )),
        "{booked:?}"
    );
    // The calls not booked spent nothing: the next turn is the sixth.
    clock.advance(ms(100));
    assert_eq!(
        limits
            .reserve(&together, &number(8), &ten, max_wait)
            .await
            .unwrap(),
        Reservation::Booked { at: t0 + ms(500) }
    );
    // A slowed-down company books nothing for any of them.
    limits
        .slow_down(&together, clock.now() + ms(2_000))
        .await
        .unwrap();
    let held = limits
        .reserve_many(&together, &number(8), &ten, max_wait, 3)
        .await
        .unwrap();
    assert_eq!(held.len(), 3);
    assert!(
        held.iter().all(|r| matches!(
            r,
            Reservation::Wait {
                reason: Throttle::SlowedDown,
                ..
            }
        )),
        "{held:?}"
    );
}

#[tokio::test]
async fn slots_taken_together_are_served_in_order_up_to_the_cap_and_released_together() {
    let clock = manual();
    let limits = limits_at(&namespace(), clock.clone()).await;
    let (co, other) = (company("slots-co"), company("slots-other"));
    let lease = Duration::from_secs(30);
    let held_before = key("held:0");
    assert!(matches!(
        limits
            .acquire_slot(&co, 3, &held_before, lease)
            .await
            .unwrap(),
        SlotGrant::Acquired { live: 1 }
    ));
    let holders: Vec<_> = (1..=4).map(|i| key(&format!("held:{i}"))).collect();
    let mut asked = vec![held_before.clone()];
    asked.extend(holders.iter().cloned());
    let grants = limits.acquire_slots(&co, 3, &asked, lease).await.unwrap();
    let expiry = clock.now() + chrono::Duration::seconds(30);
    assert_eq!(
        grants,
        vec![
            // A holder asking again keeps its one slot.
            SlotGrant::Acquired { live: 1 },
            SlotGrant::Acquired { live: 2 },
            SlotGrant::Acquired { live: 3 },
            SlotGrant::Full {
                next_expiry: expiry
            },
            SlotGrant::Full {
                next_expiry: expiry
            },
        ]
    );
    assert_eq!(limits.live_calls(&co).await.unwrap(), 3);
    let other_holder = key("other:1");
    limits
        .acquire_slot(&other, 1, &other_holder, lease)
        .await
        .unwrap();
    let released = limits
        .release_slots(&[
            (co.clone(), holders[0].clone()),
            (co.clone(), holders[2].clone()),
            (other.clone(), other_holder.clone()),
            (co.clone(), holders[0].clone()),
        ])
        .await
        .unwrap();
    assert_eq!(released, vec![true, false, true, false]);
    assert_eq!(limits.live_calls(&co).await.unwrap(), 2);
    assert_eq!(limits.live_calls(&other).await.unwrap(), 0);
}

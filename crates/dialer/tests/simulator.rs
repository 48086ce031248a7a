//! The simulated provider in process: determinism, idempotency, timing, events, faults.

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use outdial_dialer::callback::EventKind;
use outdial_dialer::{
    CallState, CompanyRef, DialContext, DialError, DialRequest, Dialer, Fault, IdempotencyKey,
    OutcomeMix, Scenario, SimConfig, Simulator, Timing, Unavailable, lookup_then_place,
};
use outdial_domain::{AttemptOutcome, Flag, ManualClock, PhoneNumber};

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(
        Utc.with_ymd_and_hms(2026, 11, 23, 15, 0, 0)
            .single()
            .expect("an instant"),
    ))
}

fn request(key: &str, n: u32, company: &str, task_type: &str) -> DialRequest {
    DialRequest {
        key: IdempotencyKey::new(key).expect("a valid key"),
        to: PhoneNumber::parse(&format!("+1415555{:04}", n % 10_000)).expect("a number"),
        caller_id: PhoneNumber::parse("+12125550100").expect("a number"),
        company: CompanyRef::new(company).expect("a company"),
        context: DialContext {
            customer_id: format!("cust-{n}"),
            task_type: task_type.to_owned(),
        },
    }
}

fn instant(seed: u64) -> Simulator {
    Simulator::new(SimConfig::new(seed).instant(), clock())
}

#[tokio::test]
async fn same_seed_and_key_give_the_same_call_in_any_arrival_order() {
    let (a, b, other_seed) = (instant(42), instant(42), instant(43));
    let keys: Vec<u32> = (0..200).collect();
    let mut in_a = Vec::new();
    for i in &keys {
        in_a.push(
            a.place(request(&format!("k{i}"), *i, "acme", "collections"))
                .await
                .unwrap(),
        );
    }
    let mut in_b = Vec::new();
    for i in keys.iter().rev() {
        in_b.push(
            b.place(request(&format!("k{i}"), *i, "acme", "collections"))
                .await
                .unwrap(),
        );
    }
    in_b.reverse();
    let mut differs = 0;
    for (i, (x, y)) in in_a.iter().zip(&in_b).enumerate() {
        assert_eq!(x.call.id, y.call.id, "k{i}");
        assert_eq!(x.call.result, y.call.result, "k{i}");
        let z = other_seed
            .place(request(&format!("k{i}"), i as u32, "acme", "collections"))
            .await
            .unwrap();
        differs += usize::from(z.call.result != x.call.result);
    }
    assert!(differs > 50, "another seed changes outcomes: {differs}/200");
}

#[tokio::test]
async fn a_repeated_key_returns_the_first_call_and_counts_every_request() {
    let sim = instant(1);
    let first = sim
        .place(request("call-1:1", 1, "acme", "collections"))
        .await
        .unwrap();
    let again = sim
        .place(request("call-1:1", 1, "acme", "collections"))
        .await
        .unwrap();
    assert!(!first.replayed);
    assert!(again.replayed);
    assert_eq!(first.call, again.call);
    let key = IdempotencyKey::new("call-1:1").unwrap();
    let stats = sim.stats();
    assert_eq!(stats.place_requests(&key), 2);
    assert_eq!(stats.calls_created(), 1);
    assert_eq!(sim.lookup(&key).await.unwrap(), Some(first.call));
    let other_number = sim
        .place(request("call-1:1", 2, "acme", "collections"))
        .await;
    assert_eq!(
        other_number.unwrap_err(),
        DialError::Rejected {
            status: 409,
            code: "idempotency_key_reused".into()
        }
    );
    assert_eq!(
        sim.lookup(&IdempotencyKey::new("nope").unwrap())
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn outcomes_follow_the_mix_and_carry_consistent_flags_transcripts_and_recordings() {
    let sim = instant(7);
    let n = 4000;
    let mut no_answer = 0;
    let mut cip = 0;
    for i in 0..n {
        let task = if i % 2 == 0 {
            "collections"
        } else {
            "verification"
        };
        let placed = sim
            .place(request(&format!("m{i}"), i, "acme", task))
            .await
            .unwrap();
        assert_eq!(placed.call.state, CallState::Ended);
        let result = placed.call.result.unwrap();
        no_answer += usize::from(
            result.outcome == AttemptOutcome::NoAnswer && result.flags == [Flag::NoAnswer],
        );
        let has_cip = result
            .flags
            .iter()
            .any(|f| matches!(f, Flag::CipPassed | Flag::CipFailed));
        assert!(
            !has_cip || task == "verification",
            "CIP only on verification calls"
        );
        cip += usize::from(has_cip);
        let answered = placed.call.answered_at.is_some();
        assert_eq!(result.transcript.is_some(), answered);
        assert_eq!(result.recording_url.is_some(), answered);
        if result.outcome == AttemptOutcome::Busy {
            assert!(!answered && result.flags.is_empty());
        }
    }
    let share = no_answer as f64 / f64::from(n);
    let expected = OutcomeMix::collections().share(Scenario::NoAnswer);
    assert!((share - expected).abs() < 0.04, "no-answer share {share}");
    let cip_expected = OutcomeMix::verification().share(Scenario::CipPassed)
        + OutcomeMix::verification().share(Scenario::CipFailed);
    let cip_share = cip as f64 / f64::from(n / 2);
    assert!(
        (cip_share - cip_expected).abs() < 0.05,
        "cip share {cip_share}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_realistic_call_rings_then_talks_then_ends_on_tokio_time() {
    let clock = clock();
    let config = SimConfig {
        timing: Timing::Realistic {
            ring_min: Duration::from_secs(10),
            ring_max: Duration::from_secs(10),
            talk_min: Duration::from_secs(60),
            talk_max: Duration::from_secs(60),
        },
        ..SimConfig::new(3)
    };
    let sim = Simulator::new(config, clock.clone());
    let mut events = sim.subscribe();
    let req = request("live:1", 9, "acme", "collections");
    sim.script(&req.to, Scenario::DoNotCall);
    let key = req.key.clone();
    let placed = sim.place(req).await.unwrap();
    let created = placed.call.created_at;
    assert_eq!(placed.call.state, CallState::Ringing);
    assert_eq!(placed.call.result, None);

    tokio::time::advance(Duration::from_secs(10)).await;
    let call = sim.lookup(&key).await.unwrap().unwrap();
    assert_eq!(call.state, CallState::InProgress);
    assert_eq!(
        call.answered_at,
        Some(created + chrono::Duration::seconds(10))
    );

    let answered = tokio::time::timeout(Duration::from_secs(1), events.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(answered.kind, EventKind::Answered);
    let ended = tokio::time::timeout(Duration::from_secs(120), events.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ended.kind, EventKind::Ended);
    assert_eq!(ended.occurred_at, created + chrono::Duration::seconds(70));
    let result = ended.call.result.unwrap();
    assert!(result.flags.contains(&Flag::Dnc));
    assert!(result.transcript.is_some() && result.recording_url.is_some());
    let looked_up = sim.lookup(&key).await.unwrap().unwrap();
    assert_eq!(looked_up.state, CallState::Ended);
    assert_eq!(
        looked_up.ended_at,
        Some(created + chrono::Duration::seconds(70))
    );
}

#[tokio::test]
async fn a_rate_limit_fault_throttles_one_company_only() {
    let sim = instant(5);
    sim.inject(Fault::RateLimit {
        company: CompanyRef::new("slow-co").unwrap(),
        retry_after: Duration::from_secs(3),
        times: 2,
    });
    let other = sim.place(request("b:1", 1, "fast-co", "collections")).await;
    assert!(other.is_ok());
    for _ in 0..2 {
        let err = sim
            .place(request("a:1", 2, "slow-co", "collections"))
            .await
            .unwrap_err();
        assert_eq!(err.retry_after(), Some(Duration::from_secs(3)));
        assert!(!err.consumes_attempt());
    }
    let key = IdempotencyKey::new("a:1").unwrap();
    assert_eq!(sim.lookup(&key).await.unwrap(), None, "429 creates nothing");
    assert!(
        sim.place(request("a:1", 2, "slow-co", "collections"))
            .await
            .is_ok()
    );
    assert_eq!(sim.place_requests(&key), 3);
}

#[tokio::test]
async fn after_a_lost_answer_lookup_finds_the_call_and_no_second_call_is_made() {
    let sim = instant(5);
    sim.inject(Fault::Unavailable {
        times: 1,
        after_create: true,
    });
    let req = request("lost:1", 3, "acme", "collections");
    let err = sim.place(req.clone()).await.unwrap_err();
    assert!(err.may_have_placed());
    let found = sim
        .lookup(&req.key)
        .await
        .unwrap()
        .expect("the call exists");
    let resolved = lookup_then_place(&sim, req.clone()).await.unwrap();
    assert!(resolved.replayed);
    assert_eq!(resolved.call.id, found.id);
    assert_eq!(
        sim.place_requests(&req.key),
        1,
        "resolved without a second place request"
    );

    sim.inject(Fault::Unavailable {
        times: 1,
        after_create: false,
    });
    let req = request("never:1", 4, "acme", "collections");
    assert_eq!(
        sim.place(req.clone()).await.unwrap_err(),
        DialError::Unavailable(Unavailable::Server { status: 503 })
    );
    assert_eq!(sim.lookup(&req.key).await.unwrap(), None);
    let placed = lookup_then_place(&sim, req.clone()).await.unwrap();
    assert!(!placed.replayed);
    assert_eq!(sim.stats().calls_created(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_slow_answer_times_out_the_caller_but_the_call_exists() {
    let sim = instant(5);
    sim.inject(Fault::Slow {
        delay: Duration::from_secs(30),
        times: 1,
    });
    let req = request("slow:1", 5, "acme", "collections");
    let timed_out = tokio::time::timeout(Duration::from_secs(2), sim.place(req.clone())).await;
    assert!(timed_out.is_err());
    assert!(sim.lookup(&req.key).await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_places_under_one_key_make_exactly_one_call() {
    let sim = instant(11);
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let sim = sim.clone();
            tokio::spawn(
                async move { sim.place(request("race:1", 1, "acme", "collections")).await },
            )
        })
        .collect();
    let mut placed = Vec::new();
    for task in tasks {
        placed.push(task.await.unwrap().unwrap());
    }
    assert_eq!(placed.iter().filter(|p| !p.replayed).count(), 1);
    assert!(placed.iter().all(|p| p.call.id == placed[0].call.id));
    let stats = sim.stats();
    assert_eq!(
        stats.place_requests(&IdempotencyKey::new("race:1").unwrap()),
        32
    );
    assert_eq!(stats.calls_created(), 1);
}

#[test]
fn debug_output_never_shows_numbers_or_transcripts() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let sim = instant(12);
    let placed = runtime
        .block_on(sim.place(request("pii:1", 4242, "acme", "collections")))
        .unwrap();
    let printed = format!(
        "{sim:?} {placed:?} {:?}",
        request("pii:1", 4242, "acme", "collections")
    );
    assert!(!printed.contains("4155554242"), "{printed}");
    assert!(!printed.contains("Agent:"), "{printed}");
}

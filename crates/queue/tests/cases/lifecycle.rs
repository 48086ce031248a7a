// The lifecycle cases, included by `lifecycle.rs` (the shared Redis) and `cluster.rs` (a
// Redis Cluster of the test binary's own); `support` is whichever the includer defines.
use std::collections::HashSet;
use std::time::Duration;

use outdial_queue::{Cancel, DialIntent, Enqueued, HandBack, QueueConfig, Resolution, State};
use support::*;

const LEASE: Duration = Duration::from_secs(30);

#[tokio::test]
async fn enqueue_is_idempotent_and_moves_the_due_time() {
    let q = queue();
    let mut j = new_job("acme", "c1", t0() + ms(1000));
    assert_eq!(q.enqueue(&j).await.unwrap(), Enqueued::Scheduled);
    j.due = t0() + ms(5000);
    assert_eq!(q.enqueue(&j).await.unwrap(), Enqueued::Moved);
    let p = part("acme");
    assert_eq!(q.stats(&p, t0()).await.unwrap().scheduled, 1);
    assert!(
        q.claim(t0() + ms(1000), 10, LEASE)
            .await
            .unwrap()
            .is_empty()
    );
    let got = q.claim(t0() + ms(5000), 10, LEASE).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].job.call, j.call);
    assert_eq!(got[0].due, j.due);
    // a leased job is left alone by enqueue
    assert_eq!(q.enqueue(&j).await.unwrap(), Enqueued::Leased);
    q.delete_namespace().await.unwrap();
}

#[tokio::test]
async fn a_call_given_twice_in_one_batch_is_one_job_at_its_last_due() {
    let q = queue();
    let p = part("acme");
    let a = new_job("acme", "c1", t0() + ms(300));
    let mut a2 = a.clone();
    a2.due = t0() + ms(100);
    let b = new_job("acme", "c2", t0() + ms(200));
    let codes = q
        .enqueue_many(&[a.clone(), b.clone(), a2.clone()])
        .await
        .unwrap();
    assert_eq!(
        codes,
        vec![Enqueued::Scheduled, Enqueued::Scheduled, Enqueued::Moved]
    );
    assert_eq!(q.stats(&p, t0()).await.unwrap().scheduled, 2);
    let got = q.claim(t0() + ms(150), 10, LEASE).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].job.call, got[0].due), (a.call, a2.due));
    // "nx" (reconciliation): the first of the batch stays, the repeat finds it
    let c = new_job("acme", "c3", t0() + ms(400));
    let mut c2 = c.clone();
    c2.due = t0() + ms(50);
    let r = q
        .enqueue_missing(&[c.clone(), c2, b.clone()])
        .await
        .unwrap();
    assert_eq!(r, vec![Some(Enqueued::Scheduled), None, None]);
    assert!(q.claim(t0() + ms(150), 10, LEASE).await.unwrap().is_empty());
    let got = q.claim(t0() + ms(400), 10, LEASE).await.unwrap();
    let mut calls: Vec<_> = got.iter().map(|j| j.job.call).collect();
    calls.sort();
    let mut want = vec![b.call, c.call];
    want.sort();
    assert_eq!(calls, want);
    q.delete_namespace().await.unwrap();
}

#[tokio::test]
async fn nothing_is_handed_out_before_its_due_millisecond() {
    let q = queue();
    let jobs: Vec<_> = (0..300)
        .map(|i| new_job("acme", &format!("c{i}"), t0() + ms(i % 150)))
        .collect();
    q.enqueue_many(&jobs).await.unwrap();
    let mut seen = HashSet::new();
    for now_ms in -5..160 {
        let now = t0() + ms(now_ms);
        for j in q.claim(now, 1000, LEASE).await.unwrap() {
            assert!(j.due <= now, "job due {} handed out at {}", j.due, now);
            assert!(seen.insert(j.job.call));
        }
        // everything due by now is out
        let due_now = jobs.iter().filter(|j| j.due <= now).count();
        assert_eq!(seen.len(), due_now, "at +{now_ms} ms");
    }
    assert_eq!(seen.len(), 300);
    q.delete_namespace().await.unwrap();
}

#[tokio::test]
async fn an_expired_lease_returns_the_job_to_due_with_a_new_token() {
    let q = queue();
    let j = new_job("acme", "c1", t0());
    q.enqueue(&j).await.unwrap();
    let first = q
        .claim(t0(), 1, Duration::from_millis(100))
        .await
        .unwrap()
        .remove(0);
    assert!(q.claim(t0() + ms(50), 1, LEASE).await.unwrap().is_empty());
    let second = q.claim(t0() + ms(101), 1, LEASE).await.unwrap().remove(0);
    assert_eq!(second.job, first.job);
    assert!(second.token > first.token);
    assert_eq!(second.attempt, 1, "an expired lease consumes no attempt");
    assert!(
        !q.ack(&first.job, first.token).await.unwrap(),
        "the old token is fenced off"
    );
    assert!(
        !q.renew(&first.job, first.token, t0() + ms(10_000))
            .await
            .unwrap()
    );
    assert!(
        q.renew(&second.job, second.token, t0() + ms(60_000))
            .await
            .unwrap()
    );
    assert!(q.ack(&second.job, second.token).await.unwrap());
    assert_eq!(q.show(&second.job).await.unwrap(), None);
    q.delete_namespace().await.unwrap();
}

#[tokio::test]
async fn an_expired_lease_after_dial_intent_goes_to_reconcile_not_due() {
    let q = queue();
    let p = part("acme");
    let j = new_job("acme", "c1", t0());
    q.enqueue(&j).await.unwrap();
    let c = q
        .claim(t0(), 1, Duration::from_millis(100))
        .await
        .unwrap()
        .remove(0);
    assert_eq!(
        q.mark_dialing(&c.job, c.token, t0() + ms(10))
            .await
            .unwrap(),
        DialIntent::Marked
    );
    assert_eq!(
        q.mark_dialing(&c.job, c.token, t0() + ms(11))
            .await
            .unwrap(),
        DialIntent::Marked
    );
    // the lease expires: the job must not come back
    assert!(q.claim(t0() + ms(500), 10, LEASE).await.unwrap().is_empty());
    assert!(q.claim(t0() + ms(900), 10, LEASE).await.unwrap().is_empty());
    let s = q.stats(&p, t0() + ms(900)).await.unwrap();
    assert_eq!((s.reconcile, s.leased, s.due, s.scheduled), (1, 0, 0, 0));
    let page = q.list(&p, State::Reconcile, None, 10).await.unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].job, c.job);
    let view = q.show(&c.job).await.unwrap().unwrap();
    assert_eq!(view.state, State::Reconcile);
    assert!(
        !q.mark_dialing(&c.job, c.token, t0() + ms(901))
            .await
            .unwrap()
            .eq(&DialIntent::Marked)
    );
    // resolved as "not dialed": back on schedule
    assert!(
        q.resolve_reconcile(&c.job, Resolution::Requeue(t0() + ms(1000)), t0() + ms(950))
            .await
            .unwrap()
    );
    let again = q.claim(t0() + ms(1000), 1, LEASE).await.unwrap().remove(0);
    assert_eq!(again.job, c.job);
    // a job that was dialed is settled as done
    assert_eq!(
        q.mark_dialing(&again.job, again.token, t0() + ms(1001))
            .await
            .unwrap(),
        DialIntent::Marked
    );
    assert!(
        q.claim(t0() + ms(40_000), 1, LEASE)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        q.resolve_reconcile(&c.job, Resolution::Done, t0() + ms(40_001))
            .await
            .unwrap()
    );
    assert_eq!(q.show(&c.job).await.unwrap(), None);
    q.delete_namespace().await.unwrap();
}

#[tokio::test]
async fn defer_consumes_no_attempt_retry_does_and_max_attempts_means_dead() {
    let q = queue_with(QueueConfig {
        max_attempts: 2,
        ..test_config()
    });
    let p = part("acme");
    let j = new_job("acme", "c1", t0());
    q.enqueue(&j).await.unwrap();
    let a = q.claim(t0(), 1, LEASE).await.unwrap().remove(0);
    assert_eq!(a.attempt, 1);
    assert_eq!(
        q.defer(&a.job, a.token, t0() + ms(100)).await.unwrap(),
        HandBack::Scheduled
    );
    assert!(q.claim(t0() + ms(99), 1, LEASE).await.unwrap().is_empty());
    let b = q.claim(t0() + ms(100), 1, LEASE).await.unwrap().remove(0);
    assert_eq!(b.attempt, 1, "defer consumed no attempt");
    let r = q
        .retry(
            &b.job,
            b.token,
            t0() + ms(100),
            Duration::from_millis(50),
            "no answer",
        )
        .await
        .unwrap();
    assert_eq!(r, HandBack::Scheduled);
    assert_eq!(q.stats(&p, t0()).await.unwrap().retrying, 1);
    assert!(q.claim(t0() + ms(149), 1, LEASE).await.unwrap().is_empty());
    let c = q.claim(t0() + ms(150), 1, LEASE).await.unwrap().remove(0);
    assert_eq!(c.attempt, 2, "retry consumed an attempt");
    let r = q
        .retry(
            &c.job,
            c.token,
            t0() + ms(150),
            Duration::from_millis(50),
            "busy",
        )
        .await
        .unwrap();
    assert_eq!(r, HandBack::Dead);
    assert!(
        q.claim(t0() + ms(10_000), 1, LEASE)
            .await
            .unwrap()
            .is_empty()
    );
    let view = q.show(&c.job).await.unwrap().unwrap();
    assert_eq!(view.state, State::Dead);
    assert_eq!(view.reason.unwrap().0, "busy");
    assert_eq!(q.stats(&p, t0()).await.unwrap().dead, 1);
    // stale holders are fenced off
    assert_eq!(
        q.defer(&c.job, c.token, t0()).await.unwrap(),
        HandBack::LeaseLost
    );
    // re-drive: attempts reset
    assert!(q.redrive(&c.job, t0() + ms(20_000)).await.unwrap());
    assert!(!q.redrive(&c.job, t0() + ms(20_000)).await.unwrap());
    let d = q
        .claim(t0() + ms(20_000), 1, LEASE)
        .await
        .unwrap()
        .remove(0);
    assert_eq!((d.job.call, d.attempt), (j.call, 1));
    // dead from a lease, then re-drive the oldest dead in bulk
    assert!(
        q.dead(&d.job, t0() + ms(20_001), "needs a human")
            .await
            .unwrap()
    );
    assert!(!q.ack(&d.job, d.token).await.unwrap());
    let back = q.redrive_oldest(&p, t0() + ms(30_000), 10).await.unwrap();
    assert_eq!(back, vec![d.job.clone()]);
    assert_eq!(q.claim(t0() + ms(30_000), 5, LEASE).await.unwrap().len(), 1);
    q.delete_namespace().await.unwrap();
}

#[tokio::test]
async fn cancel_removes_waiting_jobs_and_flags_leased_ones() {
    let q = queue();
    let p = part("acme");
    let waiting = new_job("acme", "c1", t0() + ms(10_000));
    let leased = new_job("acme", "c2", t0());
    q.enqueue_many(&[waiting.clone(), leased.clone()])
        .await
        .unwrap();
    let held = q.claim(t0(), 10, LEASE).await.unwrap().remove(0);
    let w = q.job_ref(&p, waiting.call, &waiting.customer);
    assert_eq!(q.cancel(&w).await.unwrap(), Cancel::Removed);
    assert_eq!(q.cancel(&w).await.unwrap(), Cancel::Unknown);
    assert_eq!(q.cancel(&held.job).await.unwrap(), Cancel::InFlight);
    assert_eq!(
        q.mark_dialing(&held.job, held.token, t0()).await.unwrap(),
        DialIntent::Cancelled
    );
    assert_eq!(
        q.defer(&held.job, held.token, t0() + ms(5)).await.unwrap(),
        HandBack::Cancelled
    );
    assert_eq!(q.show(&held.job).await.unwrap(), None);
    assert!(
        q.claim(t0() + ms(60_000), 10, LEASE)
            .await
            .unwrap()
            .is_empty()
    );
    q.delete_namespace().await.unwrap();
}

#[tokio::test]
async fn cancel_customer_returns_cancelled_and_in_flight_and_spares_others() {
    let q = queue();
    let p = part("acme");
    let mine: Vec<_> = (0..5)
        .map(|i| new_job("acme", "alice", t0() + ms(i * 1000)))
        .collect();
    let others: Vec<_> = (0..50)
        .map(|i| new_job("acme", &format!("bob{i}"), t0() + ms(100 + i)))
        .collect();
    q.enqueue_many(&mine).await.unwrap();
    q.enqueue_many(&others).await.unwrap();
    // alice's first job is leased
    let held = q
        .claim_partition(&p, t0(), 1, LEASE)
        .await
        .unwrap()
        .0
        .remove(0);
    assert_eq!(held.job.call, mine[0].call);
    let r = q.cancel_customer(&p, &cust("alice")).await.unwrap();
    assert_eq!(r.in_flight, vec![mine[0].call]);
    let mut want: Vec<_> = mine[1..].iter().map(|j| j.call).collect();
    let mut got = r.cancelled.clone();
    want.sort();
    got.sort();
    assert_eq!(got, want);
    let s = q.stats(&p, t0()).await.unwrap();
    assert_eq!(s.scheduled + s.due, 50, "other customers' jobs stay");
    q.delete_namespace().await.unwrap();
}

#[tokio::test]
async fn stats_and_pages_list_every_job_in_due_order() {
    let q = queue();
    let p = part("acme");
    // 700 jobs over 500 distinct due times (ties included) spread over several slabs
    let jobs: Vec<_> = (0..700)
        .map(|i| {
            new_job(
                "acme",
                &format!("c{i}"),
                t0() + ms(((i * 7919) % 500) as i64),
            )
        })
        .collect();
    q.enqueue_many(&jobs).await.unwrap();
    let s = q.stats(&p, t0() - ms(1)).await.unwrap();
    assert_eq!(
        (s.scheduled, s.due, s.leased, s.dead, s.reconcile),
        (700, 0, 0, 0, 0)
    );
    assert_eq!(s.oldest_due, Some(t0()));
    let mut listed = Vec::new();
    let mut cursor = None;
    loop {
        let page = q
            .list(&p, State::Scheduled, cursor.as_ref(), 64)
            .await
            .unwrap();
        listed.extend(page.items);
        match page.next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(listed.len(), 700);
    assert!(
        listed.windows(2).all(|w| w[0].at <= w[1].at),
        "ordered by due"
    );
    let ids: HashSet<_> = listed.iter().map(|l| l.job.call).collect();
    assert_eq!(ids.len(), 700);
    // lateness and due counts after promotion
    let got = q.claim(t0() + ms(100), 10, LEASE).await.unwrap();
    assert_eq!(got.len(), 10);
    let s = q.stats(&p, t0() + ms(300)).await.unwrap();
    assert_eq!(s.leased, 10);
    assert_eq!(s.scheduled + s.due + s.leased, 700);
    assert!(
        s.lateness >= ms(200),
        "oldest due job is late: {:?}",
        s.lateness
    );
    let due_page = q.list(&p, State::Due, None, 1000).await.unwrap();
    assert_eq!(due_page.items.len() as u64, s.due);
    let leased = q.list(&p, State::Leased, None, 1000).await.unwrap();
    assert_eq!(leased.items.len(), 10);
    let view = q.show(&got[0].job).await.unwrap().unwrap();
    assert_eq!(view.state, State::Leased);
    assert_eq!(view.lease.unwrap().token, got[0].token);
    q.delete_namespace().await.unwrap();
}

#[tokio::test]
async fn a_throttled_or_capped_partition_never_delays_another() {
    let q = queue();
    let (a, b) = (part("big"), part("small"));
    let big: Vec<_> = (0..2000)
        .map(|i| new_job("big", &format!("a{i}"), t0() - ms(60_000) + ms(i)))
        .collect();
    let small: Vec<_> = (0..10)
        .map(|i| new_job("small", &format!("b{i}"), t0() + ms(i)))
        .collect();
    q.enqueue_many(&big).await.unwrap();
    q.enqueue_many(&small).await.unwrap();
    // without a throttle both are served in turn, although "big" is older and larger
    let got = q.claim(t0() + ms(10), 20, LEASE).await.unwrap();
    let first = got.iter().filter(|j| j.job.partition == b).count();
    let got = q.claim(t0() + ms(10), 20, LEASE).await.unwrap();
    let second = got.iter().filter(|j| j.job.partition == b).count();
    assert_eq!(
        first + second,
        10,
        "the small partition is emptied within two claims"
    );
    // throttled: nothing from "big", and "small" still flows
    q.throttle(&a, t0() + ms(5_000)).await.unwrap();
    let more: Vec<_> = (0..10)
        .map(|i| new_job("small", &format!("c{i}"), t0() + ms(100 + i)))
        .collect();
    q.enqueue_many(&more).await.unwrap();
    let got = q.claim(t0() + ms(200), 50, LEASE).await.unwrap();
    assert_eq!(got.len(), 10);
    assert!(got.iter().all(|j| j.job.partition == b));
    assert_eq!(
        q.stats(&a, t0() + ms(200)).await.unwrap().throttled_until,
        Some(t0() + ms(5_000))
    );
    // after the throttle: capped at 3 leased jobs
    q.set_cap(&a, Some(3), t0() + ms(5_000)).await.unwrap();
    let got = q.claim(t0() + ms(5_000), 50, LEASE).await.unwrap();
    let from_a: Vec<_> = got.iter().filter(|j| j.job.partition == a).collect();
    // 20+ were leased before the cap was set: no room
    assert!(from_a.is_empty());
    let leased = q.stats(&a, t0() + ms(5_000)).await.unwrap().leased as usize;
    assert!(leased >= 3);
    for j in q
        .list(&a, State::Leased, None, 100)
        .await
        .unwrap()
        .items
        .iter()
        .take(leased - 2)
    {
        let v = q.show(&j.job).await.unwrap().unwrap();
        assert!(q.ack(&j.job, v.lease.unwrap().token).await.unwrap());
    }
    let got = q.claim(t0() + ms(5_001), 50, LEASE).await.unwrap();
    assert_eq!(
        got.iter().filter(|j| j.job.partition == a).count(),
        1,
        "room for one under the cap of 3"
    );
    q.delete_namespace().await.unwrap();
}

/// Many partitions (more than one claim reads from the index) and several processes claiming
/// in lockstep: the first claims of the fleet spread over every partition evenly. (Each
/// process once rotated on its own counter: processes started together visited the same
/// few partitions, and with 20 companies the dispatch bench's first tenth of an 08:00 burst
/// gave one company a third of its share.)
#[tokio::test]
async fn a_fleet_of_claimers_serves_many_partitions_evenly_from_the_start() {
    // every due partition read by each claim (the default), and more due partitions than
    // one claim reads
    for per_claim in [QueueConfig::default().partitions_per_claim, 8] {
        let counts = fleet_claims(QueueConfig {
            partitions_per_claim: per_claim,
            ..test_config()
        })
        .await;
        assert_eq!(counts.iter().sum::<usize>(), 1280);
        let (lo, hi) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
        assert!(
            *lo >= 48 && *hi <= 80,
            "{per_claim} partitions read per claim: each partition within 0.75-1.25x of its 64: {counts:?}"
        );
    }
}

/// More due partitions than a claim reads (200, 128 read): claims rotate over the longest
/// waiting, so every partition is served within a few claims of its turn, none twice before
/// the others once bar the last few. (A rotation over all the partitions read skipped the
/// longest waiting by chance: in the dispatch bench with 200 companies some got nothing in
/// the first quarter of a burst; serving strictly the oldest first made every process's
/// claims at one moment take the same few partitions.)
#[tokio::test]
async fn more_due_partitions_than_a_claim_reads_are_each_served_in_turn() {
    let (fleet, names) = fleet_of(test_config(), 200, 40).await;
    // 25 claims of 128 (8 partitions, 16 jobs from each) are 200 partition visits, each
    // partition still due after its visit; 4 more (the rotation's spread) reach the last
    let mut per: std::collections::BTreeMap<String, usize> = Default::default();
    for k in 0..29 {
        let now = t0() + ms(k);
        for j in fleet[k as usize % 4].claim(now, 128, LEASE).await.unwrap() {
            *per.entry(j.job.partition.as_str().to_owned()).or_default() += 1;
        }
    }
    let unserved: Vec<_> = names.iter().filter(|n| !per.contains_key(*n)).collect();
    assert!(unserved.is_empty(), "never served: {unserved:?}");
    let twice = per.values().filter(|&&n| n == 32).count();
    assert!(
        per.values().all(|&n| n == 16 || n == 32) && twice <= 32,
        "served once each, the rest of the visits spread: {per:?}"
    );
    fleet[0].delete_namespace().await.unwrap();
}

/// Four queue handles (four processes) on a fresh namespace, and `partitions` partitions
/// (names in name order) of `jobs` due jobs each.
#[allow(clippy::unwrap_used)] // a test helper: a failed call fails the test
async fn fleet_of(
    config: QueueConfig,
    partitions: usize,
    jobs: i64,
) -> (Vec<outdial_queue::Queue>, Vec<String>) {
    let ns = format!("t:{}", uuid::Uuid::new_v4());
    let fleet: Vec<_> = (0..4)
        .map(|_| outdial_queue::Queue::open(&redis_url(), &ns, config.clone()).unwrap())
        .collect();
    let names: Vec<String> = (0..partitions).map(|p| format!("co{p:03}")).collect();
    for name in &names {
        let due: Vec<_> = (0..jobs)
            .map(|i| new_job(name, &format!("{name}-{i}"), t0() - ms(1000 + i)))
            .collect();
        fleet[0].enqueue_many(&due).await.unwrap();
    }
    (fleet, names)
}

/// 20 partitions of 200 due jobs, 4 processes claiming 64 each in turn for five rounds:
/// the jobs each partition gave, in name order.
#[allow(clippy::unwrap_used)] // a test helper: a failed call fails the test
async fn fleet_claims(config: QueueConfig) -> Vec<usize> {
    let (fleet, names) = fleet_of(config, 20, 200).await;
    let mut per: std::collections::BTreeMap<String, usize> = Default::default();
    for round in 0..5 {
        for (i, q) in fleet.iter().enumerate() {
            let now = t0() + ms(round * 10 + i as i64);
            for j in q.claim(now, 64, LEASE).await.unwrap() {
                *per.entry(j.job.partition.as_str().to_owned()).or_default() += 1;
            }
        }
    }
    fleet[0].delete_namespace().await.unwrap();
    names
        .iter()
        .map(|n| per.get(n).copied().unwrap_or(0))
        .collect()
}

#[tokio::test]
async fn twenty_thousand_jobs_due_in_the_same_millisecond_stay_claimable() {
    let q = queue();
    let p = part("acme");
    q.enqueue(&new_job("acme", "first", t0() - ms(1)))
        .await
        .unwrap();
    let same: Vec<_> = (0..20_000)
        .map(|i| new_job("acme", &format!("c{i}"), t0()))
        .collect();
    for chunk in same.chunks(1000) {
        q.enqueue_many(chunk).await.unwrap();
    }
    // later dues force the one big slab to split
    let later: Vec<_> = (0..300)
        .map(|i| new_job("acme", &format!("d{i}"), t0() + ms(1 + i)))
        .collect();
    q.enqueue_many(&later).await.unwrap();
    q.enqueue(&new_job("acme", "earlier", t0() - ms(2)))
        .await
        .unwrap();
    assert_eq!(q.stats(&p, t0()).await.unwrap().scheduled, 20_302);
    let mut seen = HashSet::new();
    loop {
        let got = q.claim(t0(), 1000, LEASE).await.unwrap();
        if got.is_empty() {
            break;
        }
        for j in got {
            assert!(j.due <= t0());
            assert!(seen.insert(j.job.call));
        }
    }
    assert_eq!(seen.len(), 20_002);
    let mut n = 0;
    while !q
        .claim(t0() + ms(400), 1000, LEASE)
        .await
        .unwrap()
        .is_empty()
    {
        n += 1;
    }
    let s = q.stats(&p, t0() + ms(400)).await.unwrap();
    assert_eq!((s.scheduled, s.due, s.leased), (0, 0, 20_302));
    assert!(n >= 1);
    q.delete_namespace().await.unwrap();
}

/// A run of more than a slab's fill due in one millisecond is one slab; a job due before the
/// run, enqueued or deferred after it, must still come out at its own due time, before the
/// run (it once joined the run's slab at its tail, a slab promoted from its head as if every
/// element had the run's due: the earlier job waited for the whole run).
#[tokio::test]
async fn a_job_due_before_a_long_run_of_one_due_comes_out_first() {
    let q = queue();
    let run = |p: &str| -> Vec<_> {
        (0..300)
            .map(|i| new_job(p, &format!("r{i}"), t0() + ms(10_000)))
            .collect()
    };
    // enqueued behind a run (the batch path)
    q.enqueue_many(&run("acme")).await.unwrap();
    let early = new_job("acme", "early", t0() + ms(500));
    q.enqueue(&early).await.unwrap();
    // deferred behind a run (the single-job path)
    let x = new_job("beta", "x", t0());
    q.enqueue(&x).await.unwrap();
    let held = q.claim(t0(), 10, LEASE).await.unwrap();
    assert_eq!(held.len(), 1);
    q.enqueue_many(&run("beta")).await.unwrap();
    q.defer(&held[0].job, held[0].token, t0() + ms(700))
        .await
        .unwrap();

    // (64 asked: a claim visits n / 16 partitions)
    assert!(q.claim(t0() + ms(499), 64, LEASE).await.unwrap().is_empty());
    let mut got: Vec<_> = q
        .claim(t0() + ms(800), 64, LEASE)
        .await
        .unwrap()
        .iter()
        .map(|j| (j.job.call, j.due))
        .collect();
    got.sort();
    let mut want = vec![(early.call, early.due), (x.call, t0() + ms(700))];
    want.sort();
    assert_eq!(got, want, "the two early jobs and none of the runs");
    let rest = drain_run(&q, t0() + ms(10_000)).await;
    assert_eq!(rest.len(), 600);
    q.delete_namespace().await.unwrap();
}

/// Claims every job due at `at` (each once, each due exactly then); returns their calls.
#[allow(clippy::unwrap_used)] // a test helper: a failed call fails the test
async fn drain_run(
    q: &outdial_queue::Queue,
    at: chrono::DateTime<chrono::Utc>,
) -> HashSet<outdial_domain::CallId> {
    let mut seen = HashSet::new();
    loop {
        let got = q.claim(at, 64, LEASE).await.unwrap();
        if got.is_empty() {
            return seen;
        }
        for j in got {
            assert_eq!(j.due, at);
            assert!(seen.insert(j.job.call));
        }
    }
}

/// A long run's slab holding an earlier due at its tail, with its bound lowered to it (what
/// an earlier release wrote when the earlier job came after the run; rebuilt here with raw
/// commands), is cut in due order when promotion first reaches it: the earlier job comes
/// out at its own due time, the run at its own.
#[tokio::test]
async fn a_long_slab_holding_an_earlier_due_is_cut_before_it_is_promoted() {
    let ns = format!("t:{}", uuid::Uuid::new_v4());
    let q = outdial_queue::Queue::open(&redis_url(), &ns, test_config()).unwrap();
    let run: Vec<_> = (0..300)
        .map(|i| new_job("acme", &format!("r{i}"), t0() + ms(10_000)))
        .collect();
    q.enqueue_many(&run).await.unwrap();
    let early = new_job("acme", "early", t0() + ms(500));
    q.enqueue(&early).await.unwrap();

    let mut c = outdial_redis::Redis::open(&redis_url(), &outdial_redis::Options::default())
        .await
        .unwrap();
    let p = format!("{ns}:{{acme}}:");
    let ix: Vec<(String, i64)> = redis::cmd("ZRANGE")
        .arg(format!("{p}ix"))
        .arg(0)
        .arg(-1)
        .arg("WITHSCORES")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(ix.len(), 2, "the early job's slab, then the run's");
    let ((small, bound), (long, _)) = (&ix[0], &ix[1]);
    let el: Vec<u8> = redis::cmd("LPOP")
        .arg(format!("{p}s:{small}"))
        .query_async(&mut c)
        .await
        .unwrap();
    redis::pipe()
        .cmd("RPUSH")
        .arg(format!("{p}s:{long}"))
        .arg(el)
        .cmd("ZREM")
        .arg(format!("{p}ix"))
        .arg(small)
        .cmd("ZADD")
        .arg(format!("{p}ix"))
        .arg(bound)
        .arg(long)
        .query_async::<()>(&mut c)
        .await
        .unwrap();

    assert!(q.claim(t0() + ms(499), 64, LEASE).await.unwrap().is_empty());
    let got = q.claim(t0() + ms(800), 64, LEASE).await.unwrap();
    let got: Vec<_> = got.iter().map(|j| (j.job.call, j.due)).collect();
    assert_eq!(got, vec![(early.call, early.due)]);
    let rest = drain_run(&q, t0() + ms(10_000)).await;
    assert_eq!(rest.len(), 300);
    q.delete_namespace().await.unwrap();
}

#[tokio::test]
async fn moved_and_cancelled_jobs_keep_the_slab_index_exact() {
    let q = queue();
    let p = part("acme");
    let due = |i: usize, salt: usize| t0() + ms(((i * 7919 + salt * 104_729) % 50_000) as i64);
    let mut jobs: Vec<_> = (0..3000)
        .map(|i| new_job("acme", &format!("c{i}"), due(i, 0)))
        .collect();
    q.enqueue_many(&jobs).await.unwrap();
    // move a third of them, in two batches, to new due times
    for (i, j) in jobs.iter_mut().enumerate().filter(|(i, _)| i % 3 == 0) {
        j.due = due(i, 1);
    }
    let moved: Vec<_> = jobs.iter().step_by(3).cloned().collect();
    for chunk in moved.chunks(400) {
        for r in q.enqueue_many(chunk).await.unwrap() {
            assert_eq!(r, Enqueued::Moved);
        }
    }
    // cancel every fifth
    for j in jobs.iter().skip(1).step_by(5) {
        let r = q.job_ref(&p, j.call, &j.customer);
        assert_eq!(q.cancel(&r).await.unwrap(), Cancel::Removed);
    }
    let kept: Vec<_> = jobs
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 5 != 1)
        .map(|(_, j)| j)
        .collect();
    assert_eq!(
        q.stats(&p, t0()).await.unwrap().scheduled,
        kept.len() as u64
    );
    let mut listed = Vec::new();
    let mut cursor = None;
    loop {
        let page = q
            .list(&p, State::Scheduled, cursor.as_ref(), 333)
            .await
            .unwrap();
        listed.extend(page.items);
        match page.next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(listed.len(), kept.len());
    assert!(listed.windows(2).all(|w| w[0].at <= w[1].at));
    let by_call: std::collections::HashMap<_, _> =
        listed.iter().map(|l| (l.job.call, l.at)).collect();
    for j in &kept {
        assert_eq!(
            by_call.get(&j.call),
            Some(&j.due),
            "listed at its current due"
        );
    }
    // and every one is claimed exactly at its due
    let mut seen = 0;
    for step in 0..=50 {
        let now = t0() + ms(step * 1000);
        for c in q.claim(now, 1000, LEASE).await.unwrap() {
            assert!(
                c.due <= now && c.due > now - ms(1000),
                "due {} at {now}",
                c.due
            );
            assert!(q.ack(&c.job, c.token).await.unwrap());
            seen += 1;
        }
    }
    assert_eq!(seen, kept.len());
    q.delete_namespace().await.unwrap();
}

#[tokio::test]
async fn one_process_at_a_time_takes_a_periodic_turn() {
    let q = queue();
    let other = q.clone();
    let period = Duration::from_millis(300);
    assert!(q.take_turn("reconcile", period).await.unwrap());
    assert!(!other.take_turn("reconcile", period).await.unwrap(), "held");
    assert!(
        other.take_turn("other-task", period).await.unwrap(),
        "per task"
    );
    tokio::time::sleep(period + Duration::from_millis(50)).await;
    assert!(
        other.take_turn("reconcile", period).await.unwrap(),
        "released after the period"
    );
    q.delete_namespace().await.unwrap();
}

#[tokio::test]
async fn dial_intents_marked_together_answer_each_job_as_if_marked_alone() {
    let q = queue();
    let jobs: Vec<_> = ["c1", "c2", "c3"]
        .iter()
        .map(|c| new_job("acme", c, t0()))
        .chain([new_job("beta", "c4", t0())])
        .collect();
    q.enqueue_many(&jobs).await.unwrap();
    let mut held = Vec::new();
    for _ in 0..4 {
        held.extend(q.claim(t0(), 10, LEASE).await.unwrap());
    }
    assert_eq!(held.len(), 4);
    // c2 is cancelled while leased; c3 is asked with a stale token.
    let by_call = |c: &str| {
        let call = jobs.iter().find(|j| j.customer.as_str() == c).unwrap().call;
        held.iter().find(|h| h.job.call == call).unwrap().clone()
    };
    let (c1, c2, c3, c4) = (by_call("c1"), by_call("c2"), by_call("c3"), by_call("c4"));
    assert_eq!(q.cancel(&c2.job).await.unwrap(), Cancel::InFlight);
    let asked = vec![
        (c1.job.clone(), c1.token),
        (c2.job.clone(), c2.token),
        (c3.job.clone(), c3.token + 1),
        (c4.job.clone(), c4.token),
    ];
    assert_eq!(
        q.mark_dialing_many(&asked, t0() + ms(10)).await.unwrap(),
        vec![
            DialIntent::Marked,
            DialIntent::Cancelled,
            DialIntent::LeaseLost,
            DialIntent::Marked
        ]
    );
    // Marked again (idempotent for the holder), and after the lease ran out: lost.
    assert_eq!(
        q.mark_dialing_many(&asked[..1], t0() + ms(20))
            .await
            .unwrap(),
        vec![DialIntent::Marked]
    );
    assert_eq!(
        q.mark_dialing_many(&asked[3..], t0() + ms(31_000))
            .await
            .unwrap(),
        vec![DialIntent::LeaseLost]
    );
    // A marked job whose lease runs out goes to reconcile, never back to due.
    assert!(
        q.claim(t0() + ms(31_000), 10, LEASE)
            .await
            .unwrap()
            .iter()
            .all(|h| h.job.call != c1.job.call && h.job.call != c4.job.call)
    );
    q.delete_namespace().await.unwrap();
}

/// Jobs due at many instants and a run of 600 due in the same millisecond (one long slab):
/// read in small unordered pages, every scheduled job comes back exactly once.
#[tokio::test]
async fn scheduled_members_pages_cover_every_scheduled_job_once() {
    let q = queue();
    let mut jobs: Vec<_> = (0..700)
        .map(|i| new_job("acme", &format!("c{i}"), t0() + ms(1000 + (i % 350) * 7)))
        .collect();
    jobs.extend((0..600).map(|i| new_job("acme", &format!("d{i}"), t0() + ms(500))));
    q.enqueue_many(&jobs).await.unwrap();
    let p = part("acme");
    let mut seen = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let (page, next) = q.scheduled_members(&p, cursor.as_ref(), 37).await.unwrap();
        assert!(page.len() <= 37);
        seen.extend(page.into_iter().map(|j| j.call));
        pages += 1;
        match next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let unique: HashSet<_> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len(), "a job came back twice");
    let all: HashSet<_> = jobs.iter().map(|j| j.call).collect();
    assert_eq!(unique, all);
    assert!(pages >= 1300 / 37, "{pages} pages");
    q.delete_namespace().await.unwrap();
}

/// A reconcile pass drops the scheduled jobs whose rows are terminal, also inside a long
/// slab of one due, and leaves every other job where it was.
#[tokio::test]
async fn reconcile_drops_the_terminal_jobs_of_a_long_slab() {
    let q = queue();
    let truth = MemTruth::default();
    let jobs: Vec<_> = (0..1000)
        .map(|i| new_job("acme", &format!("c{i}"), t0() + ms(60_000)))
        .collect();
    for j in &jobs {
        truth.add(j);
    }
    q.enqueue_many(&jobs).await.unwrap();
    for j in jobs.iter().step_by(3) {
        truth.finish(j.call);
    }
    let r = q.reconcile(&truth, t0(), 100).await.unwrap();
    assert_eq!((r.restored, r.dropped), (0, 334));
    let p = part("acme");
    assert_eq!(q.stats(&p, t0()).await.unwrap().scheduled, 666);
    let mut claimed = HashSet::new();
    loop {
        let got = q.claim(t0() + ms(60_000), 200, LEASE).await.unwrap();
        if got.is_empty() {
            break;
        }
        claimed.extend(got.into_iter().map(|j| j.job.call));
    }
    let kept: HashSet<_> = jobs
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 3 != 0)
        .map(|(_, j)| j.call)
        .collect();
    assert_eq!(claimed.len(), 666);
    assert!(claimed == kept, "the jobs claimed are not the ones kept");
    q.delete_namespace().await.unwrap();
}

#[tokio::test]
async fn stats_count_deferred_jobs_until_done_and_dials_of_the_last_minute() {
    let q = queue();
    let p = part("acme");
    let a = new_job("acme", "c1", t0());
    let b = new_job("acme", "c2", t0());
    q.enqueue_many(&[a.clone(), b.clone()]).await.unwrap();
    let got = q.claim(t0(), 2, LEASE).await.unwrap();
    assert_eq!(got.len(), 2);
    for j in &got {
        q.defer(&j.job, j.token, t0() + ms(100)).await.unwrap();
    }
    let s = q.stats(&p, t0()).await.unwrap();
    assert_eq!((s.deferred, s.scheduled), (2, 2));
    let got = q.claim(t0() + ms(100), 2, LEASE).await.unwrap();
    // a second hand-back does not count twice
    q.defer(&got[1].job, got[1].token, t0() + ms(200))
        .await
        .unwrap();
    assert_eq!(q.stats(&p, t0()).await.unwrap().deferred, 2);
    // dialed twice over (the mark is idempotent) and finished: no longer deferred
    let d = &got[0];
    for _ in 0..2 {
        q.mark_dialing(&d.job, d.token, t0() + ms(150))
            .await
            .unwrap();
    }
    assert!(q.ack(&d.job, d.token).await.unwrap());
    let s = q.stats(&p, t0() + ms(200)).await.unwrap();
    assert_eq!((s.deferred, s.dials_last_minute), (1, 1));
    // the dial falls out of the last minute
    let s = q.stats(&p, t0() + ms(80_000)).await.unwrap();
    assert_eq!(s.dials_last_minute, 0);
    q.delete_namespace().await.unwrap();
}

//! Many jobs and concurrent claimers: 100,000 promoted and claimed, claimers never share a
//! job, cancel racing claim.

mod support;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use outdial_queue::{Cancel, DialIntent, Job, NewJob};
use support::*;

const LEASE: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_due_jobs_are_promoted_and_claimed_without_error() {
    let q = queue_with(outdial_queue::QueueConfig {
        buckets: 2048,
        ..test_config()
    });
    let n = 100_000;
    let jobs: Vec<NewJob> = (0..n)
        .map(|i| {
            new_job(
                ["acme", "globex", "initech"][i % 3],
                &format!("c{}", i / 2),
                t0() - ms((i % 5000) as i64),
            )
        })
        .collect();
    for chunk in jobs.chunks(10_000) {
        q.enqueue_many(chunk).await.unwrap();
    }
    let seen = Arc::new(Mutex::new(HashSet::new()));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (q, seen) = (q.clone(), seen.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let got = q.claim(t0(), 256, LEASE).await.unwrap();
                if got.is_empty() {
                    // the index may say "look again at now": make sure nothing is left
                    if q.next_wake().await.unwrap().is_none_or(|w| w > t0()) {
                        break;
                    }
                    let mut left = 0;
                    for p in ["acme", "globex", "initech"] {
                        let s = q.stats(&part(p), t0()).await.unwrap();
                        left += s.scheduled + s.due;
                    }
                    if left == 0 {
                        break;
                    }
                    continue;
                }
                for j in &got {
                    assert!(q.ack(&j.job, j.token).await.unwrap());
                    assert!(seen.lock().unwrap().insert(j.job.call), "claimed twice");
                }
            }
        }));
    }
    for t in tasks {
        tokio::time::timeout(Duration::from_secs(90), t)
            .await
            .expect("claimers finish")
            .unwrap();
    }
    assert_eq!(seen.lock().unwrap().len(), n);
    for p in ["acme", "globex", "initech"] {
        let s = q.stats(&part(p), t0()).await.unwrap();
        assert_eq!((s.scheduled, s.due, s.leased), (0, 0, 0), "{p}");
    }
    q.delete_namespace().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_claimers_never_hold_the_same_job() {
    let q = queue();
    let jobs: Vec<NewJob> = (0..6000)
        .map(|i| {
            new_job(
                ["a", "b"][i % 2],
                &format!("c{i}"),
                t0() - ms((i % 97) as i64),
            )
        })
        .collect();
    q.enqueue_many(&jobs).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let q = q.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine: Vec<Job> = Vec::new();
            loop {
                let got = q.claim(t0(), 17, LEASE).await.unwrap();
                if got.is_empty() {
                    break;
                }
                mine.extend(got);
            }
            mine
        }));
    }
    let mut all = HashSet::new();
    let mut total = 0;
    for t in tasks {
        let mine = t.await.unwrap();
        total += mine.len();
        for j in mine {
            assert!(all.insert(j.job.call), "two claimers hold {}", j.job.call);
        }
    }
    assert_eq!(total, 6000);
    assert_eq!(all.len(), 6000);
    q.delete_namespace().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_racing_claim_never_lets_a_cancelled_job_be_dialed() {
    let q = queue();
    let p = part("acme");
    let jobs: Vec<NewJob> = (0..3000)
        .map(|i| new_job("acme", &format!("c{i}"), t0() - ms((i % 50) as i64)))
        .collect();
    q.enqueue_many(&jobs).await.unwrap();
    let refs: Vec<_> = jobs
        .iter()
        .map(|j| q.job_ref(&p, j.call, &j.customer))
        .collect();
    let claimer = {
        let q = q.clone();
        tokio::spawn(async move {
            let mut dialed = Vec::new();
            let mut refused = 0;
            loop {
                let got = q.claim(t0(), 8, LEASE).await.unwrap();
                if got.is_empty() {
                    break;
                }
                for j in got {
                    match q.mark_dialing(&j.job, j.token, t0()).await.unwrap() {
                        DialIntent::Marked => dialed.push(j.job.call),
                        DialIntent::Cancelled => refused += 1,
                        DialIntent::LeaseLost => panic!("lease lost"),
                    }
                }
            }
            (dialed, refused)
        })
    };
    let canceller = {
        let q = q.clone();
        tokio::spawn(async move {
            let mut removed = HashSet::new();
            let mut flagged = HashSet::new();
            for r in refs.iter().rev() {
                match q.cancel(r).await.unwrap() {
                    Cancel::Removed => removed.insert(r.call),
                    Cancel::InFlight => flagged.insert(r.call),
                    Cancel::Unknown => panic!("job vanished"),
                };
            }
            (removed, flagged)
        })
    };
    let (dialed, refused) = claimer.await.unwrap();
    let (removed, flagged) = canceller.await.unwrap();
    for d in &dialed {
        assert!(
            !removed.contains(d),
            "a removed job was handed out and dialed"
        );
    }
    assert_eq!(removed.len() + flagged.len(), 3000);
    assert_eq!(
        dialed.len() + refused,
        flagged.len(),
        "every in-flight job was either dialed before the cancel or refused"
    );
    q.delete_namespace().await.unwrap();
}

//! Losing Redis loses no call: a flush followed by reconcile, and a Redis restart in the
//! middle of a claim loop. Both run on a redis-server of their own.

mod support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use outdial_queue::{NewJob, Queue, State};
use support::*;

const LEASE: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flushall_then_reconcile_restores_every_scheduled_call() {
    let redis = OwnRedis::start();
    let q = Queue::open(&redis.url(), "outdial", test_config()).unwrap();
    let truth = MemTruth::default();
    let jobs: Vec<NewJob> = (0..3000)
        .map(|i| {
            new_job(
                ["acme", "globex"][i % 2],
                &format!("c{i}"),
                t0() + ms((i % 700) as i64),
            )
        })
        .collect();
    for j in &jobs {
        truth.add(j);
    }
    q.enqueue_many(&jobs).await.unwrap();
    redis.flushall();
    let r = q.reconcile(&truth, t0(), 500).await.unwrap();
    assert_eq!((r.rows, r.restored, r.dropped), (3000, 3000, 0));
    // a second pass changes nothing
    let r = q.reconcile(&truth, t0(), 500).await.unwrap();
    assert_eq!((r.rows, r.restored), (3000, 0));
    // rows that became terminal are dropped
    for j in &jobs[..100] {
        truth.finish(j.call);
    }
    let r = q.reconcile(&truth, t0(), 500).await.unwrap();
    assert_eq!((r.rows, r.restored, r.dropped), (2900, 0, 100));
    // every remaining call is claimable at its due time, exactly once
    let mut seen = HashMap::new();
    loop {
        let got = q.claim(t0() + ms(1000), 500, LEASE).await.unwrap();
        if got.is_empty() {
            break;
        }
        for j in got {
            *seen.entry(j.job.call).or_insert(0) += 1;
        }
    }
    assert_eq!(seen.len(), 2900);
    assert!(seen.values().all(|&n| n == 1));
    for j in &jobs[100..] {
        assert!(seen.contains_key(&j.call));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_mid_claim_loop_loses_no_call_and_kills_no_worker() {
    let mut redis = OwnRedis::start();
    let q = Queue::open(&redis.url(), "outdial", test_config()).unwrap();
    let truth = Arc::new(MemTruth::default());
    let jobs: Vec<NewJob> = (0..4000)
        .map(|i| new_job("acme", &format!("c{i}"), t0() - ms((i % 300) as i64)))
        .collect();
    for j in &jobs {
        truth.add(j);
    }
    q.enqueue_many(&jobs).await.unwrap();
    let processed = Arc::new(Mutex::new(HashMap::new()));
    let done = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let (progress_tx, mut progress_rx) = tokio::sync::watch::channel(0usize);
    let worker = {
        let (q, truth, processed, done, stop) = (
            q.clone(),
            truth.clone(),
            processed.clone(),
            done.clone(),
            stop.clone(),
        );
        tokio::spawn(async move {
            let mut errors = 0;
            while !stop.load(Ordering::Relaxed) {
                // the worker loop survives errors (there should be none: the queue retries)
                let got = match q.claim(t0(), 20, LEASE).await {
                    Ok(g) => g,
                    Err(_) => {
                        errors += 1;
                        continue;
                    }
                };
                if got.is_empty() {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                }
                for j in got {
                    // the work: the row is settled in the system of record, then acked
                    truth.finish(j.job.call);
                    *processed.lock().unwrap().entry(j.job.call).or_insert(0) += 1;
                    if q.ack(&j.job, j.token).await.is_err() {
                        errors += 1;
                    }
                    let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                    let _ = progress_tx.send(n);
                }
            }
            errors
        })
    };
    // restart Redis (empty: no persistence) once a quarter is done
    tokio::time::timeout(
        Duration::from_secs(30),
        progress_rx.wait_for(|n| *n >= 1000),
    )
    .await
    .expect("progress before the restart")
    .unwrap();
    redis.restart();
    // the reconciler restores whatever was not settled
    let r = tokio::time::timeout(
        Duration::from_secs(30),
        q.reconcile(truth.as_ref(), t0(), 1000),
    )
    .await
    .expect("reconcile finishes")
    .unwrap();
    assert!(
        r.restored > 0 && r.restored <= 3000,
        "restored {}",
        r.restored
    );
    let all = jobs.len();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if processed.lock().unwrap().len() == all {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} of {all} processed",
            processed.lock().unwrap().len()
        );
        let _ = tokio::time::timeout(Duration::from_secs(1), progress_rx.changed()).await;
    }
    stop.store(true, Ordering::Relaxed);
    let errors = worker.await.unwrap();
    assert_eq!(errors, 0, "the queue absorbed the restart");
    // duplicates are only the few jobs in the worker's hands at the restart
    let dups = processed
        .lock()
        .unwrap()
        .values()
        .filter(|&&n| n > 1)
        .count();
    assert!(dups <= 20, "{dups} duplicates");
    let s = q.stats(&part("acme"), t0()).await.unwrap();
    assert_eq!((s.scheduled, s.due, s.leased), (0, 0, 0));
    assert!(
        q.list(&part("acme"), State::Due, None, 10)
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

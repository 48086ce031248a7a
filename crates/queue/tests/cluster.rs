//! The whole lifecycle suite (`cases/lifecycle.rs`: enqueue, claim, leases, dial intent,
//! defer, retry, dead, re-drive, cancel, inspection, fairness, reconcile) again on a Redis
//! Cluster of three primaries of this test binary's own. Redis refuses a script that touches
//! a key outside its keys' slot, so every script passing here is single-slot.

#![allow(clippy::unwrap_used)]

#[path = "support/mod.rs"]
mod shared;

/// The shared support, with queues on the cluster instead of the shared Redis.
mod support {
    pub use super::shared::*;
    use outdial_queue::{Queue, QueueConfig};

    pub fn redis_url() -> String {
        outdial_redis::testing::shared_cluster().url()
    }

    pub fn queue() -> Queue {
        queue_with(test_config())
    }

    pub fn queue_with(config: QueueConfig) -> Queue {
        Queue::open(&redis_url(), &format!("t:{}", uuid::Uuid::new_v4()), config).unwrap()
    }
}

include!("cases/lifecycle.rs");

#[tokio::test]
async fn partitions_spread_over_every_primary_and_are_all_served() {
    let q = queue();
    let jobs: Vec<_> = (0..60)
        .map(|i| new_job(&format!("co{i}"), &format!("c{i}"), t0() + ms(i)))
        .collect();
    q.enqueue_many(&jobs).await.unwrap();
    let counts = outdial_redis::testing::shared_cluster().key_counts();
    assert!(
        counts.iter().all(|n| *n > 0),
        "keys on every primary: {counts:?}"
    );
    let mut got = Vec::new();
    while got.len() < jobs.len() {
        let batch = q.claim(t0() + ms(100), 25, LEASE).await.unwrap();
        assert!(!batch.is_empty(), "claimed {} of {}", got.len(), jobs.len());
        got.extend(batch);
    }
    let mut calls: Vec<_> = got.iter().map(|j| j.job.call).collect();
    calls.sort();
    calls.dedup();
    assert_eq!(calls.len(), jobs.len(), "every job once");
    for j in &got {
        assert!(q.ack(&j.job, j.token).await.unwrap());
    }
    assert!(q.delete_namespace().await.unwrap() > 0);
}

//! Tunables of one [`Queue`](crate::Queue).

use std::time::Duration;

use crate::{Error, Result};

/// How a queue behaves. `Default` suits production; tests shorten the times.
#[derive(Debug, Clone)]
pub struct QueueConfig {
    /// Attempts a job may consume through [`retry`](crate::Queue::retry) before it is dead.
    pub max_attempts: u32,
    /// Customer table buckets per partition (a power of two, at most 65,536). Rows of one
    /// bucket share a small Redis hash; keep `jobs per partition / buckets` under about 100
    /// so each stays in Redis' compact listpack encoding (16,384 covers 1.5 M jobs).
    pub buckets: u32,
    /// The most scheduled jobs one claim call promotes to due.
    pub promote_batch: u32,
    /// The most expired leases one claim call recovers.
    pub recover_batch: u32,
    /// The most due partitions one [`claim`](crate::Queue::claim) call reads from the
    /// partition index (it visits `n / 16` of them). Up to this many due partitions, claims
    /// take them around a ring in name order; beyond it, they rotate over the longest
    /// waiting of those read (see `claim.rs`).
    pub partitions_per_claim: usize,
    /// Upper bound on how long a partition can go unvisited by claimers: its wake time in
    /// the partition index is never set later than `now + idle_recheck`. This bounds the
    /// delay a lost wake-up (an enqueue racing a claim) can cause.
    pub idle_recheck: Duration,
    /// Jobs per enqueue script call (batches are cut into chunks this size).
    pub enqueue_chunk: usize,
    /// How long an operation keeps retrying a Redis that cannot be reached before it
    /// returns [`Error::Redis`].
    pub retry_for: Duration,
    /// Time allowed for one Redis reply.
    pub response_timeout: Duration,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            buckets: 16_384,
            promote_batch: 512,
            recover_batch: 256,
            partitions_per_claim: 128,
            idle_recheck: Duration::from_secs(1),
            enqueue_chunk: 1000,
            retry_for: Duration::from_secs(10),
            response_timeout: Duration::from_secs(5),
        }
    }
}

impl QueueConfig {
    /// Checks the values.
    pub fn validate(&self) -> Result<()> {
        if self.max_attempts == 0 {
            return Err(Error::Config("max_attempts must be at least 1"));
        }
        if !self.buckets.is_power_of_two() || self.buckets > 65_536 {
            return Err(Error::Config("buckets must be a power of two up to 65536"));
        }
        if self.promote_batch == 0 || self.promote_batch > 1000 {
            return Err(Error::Config("promote_batch must be 1..=1000"));
        }
        if self.recover_batch == 0 || self.recover_batch > 1000 {
            return Err(Error::Config("recover_batch must be 1..=1000"));
        }
        if self.partitions_per_claim == 0 {
            return Err(Error::Config("partitions_per_claim must be at least 1"));
        }
        if self.enqueue_chunk == 0 || self.enqueue_chunk > 1000 {
            return Err(Error::Config("enqueue_chunk must be 1..=1000"));
        }
        Ok(())
    }
}

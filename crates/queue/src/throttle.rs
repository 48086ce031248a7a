//! Partition controls the worker's rate limiter uses: throttle until an instant, live-call
//! cap. Each is a write to the partition's meta hash plus an index update.

use chrono::{DateTime, Utc};

use crate::Result;
use crate::keys::Partition;
use crate::queue::{Queue, ms};

impl Queue {
    /// Claims nothing from `partition` before `until` (the worker's rate limiter calls this
    /// when a company is at its limit). Other partitions are not affected: claimers skip a
    /// throttled partition through the index.
    pub async fn throttle(&self, partition: &Partition, until: DateTime<Utc>) -> Result<()> {
        let (meta, index, p) = (
            self.keys.meta(partition),
            self.keys.index(),
            partition.to_string(),
        );
        let until = ms(until);
        self.conn
            .run("throttle", |mut c| {
                let mut pipe = redis::pipe();
                pipe.cmd("HSET")
                    .arg(&meta)
                    .arg("throttle")
                    .arg(until)
                    .ignore();
                pipe.cmd("ZADD")
                    .arg(&index)
                    .arg("GT")
                    .arg(until)
                    .arg(&p)
                    .ignore();
                async move { pipe.query_async::<()>(&mut c).await }
            })
            .await
    }

    /// Lifts a throttle and wakes the partition.
    pub async fn unthrottle(&self, partition: &Partition, now: DateTime<Utc>) -> Result<()> {
        let (meta, index, p) = (
            self.keys.meta(partition),
            self.keys.index(),
            partition.to_string(),
        );
        let now = ms(now);
        self.conn
            .run("unthrottle", |mut c| {
                let mut pipe = redis::pipe();
                pipe.cmd("HDEL").arg(&meta).arg("throttle").ignore();
                pipe.cmd("ZADD")
                    .arg(&index)
                    .arg("LT")
                    .arg(now)
                    .arg(&p)
                    .ignore();
                async move { pipe.query_async::<()>(&mut c).await }
            })
            .await
    }

    /// Sets (or with `None` lifts) the most jobs of `partition` leased at once (its
    /// live-call cap), honoured at claim time.
    pub async fn set_cap(
        &self,
        partition: &Partition,
        cap: Option<u32>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let (meta, index, p) = (
            self.keys.meta(partition),
            self.keys.index(),
            partition.to_string(),
        );
        let now = ms(now);
        self.conn
            .run("set_cap", |mut c| {
                let mut pipe = redis::pipe();
                match cap {
                    Some(n) => pipe
                        .cmd("HSET")
                        .arg(&meta)
                        .arg("cap")
                        .arg(n.max(1))
                        .ignore(),
                    None => pipe.cmd("HDEL").arg(&meta).arg("cap").ignore(),
                };
                pipe.cmd("ZADD")
                    .arg(&index)
                    .arg("LT")
                    .arg(now)
                    .arg(&p)
                    .ignore();
                async move { pipe.query_async::<()>(&mut c).await }
            })
            .await
    }
}
